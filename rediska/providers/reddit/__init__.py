"""The Reddit provider (PRAW).  The only package that names the network."""
