"""Inbox services: ingest (archive and sync), sending, local hiding."""
