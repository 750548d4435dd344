"""Backups of the database and attachments, restore tests and restores (spec §8).

`services` holds the rules; `targets` says where backups live (pluggable);
`dump`, `snapshot` and `manifest` do the work; the `maintenance.*` tasks in
`rediska/tasks.py` and the backup/restore_test/restore commands call `services`.
"""
