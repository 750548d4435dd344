#!/usr/bin/env bash
# Nightly backup for cron users: database dump + attachments snapshot + manifest
# into BACKUPS_PATH/<timestamp>/, then pruning to BACKUP_KEEP.  Same code as the
# maintenance.mysql_dump_local task; exits non-zero with one line on stderr on failure.
#   crontab:  0 3 * * *  /srv/rediska/scripts/local_backup/backup.sh >> /var/log/rediska-backup.log 2>&1
# Extra arguments go to `manage.py backup` (e.g. --attachments-only).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
exec "$PY" manage.py backup "$@"
