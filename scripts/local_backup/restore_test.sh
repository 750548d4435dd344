#!/usr/bin/env bash
# Weekly proof that the newest backup (or the one named) restores: into a scratch
# database, checksums, row counts and every attachment's hash.  Exit 0 only if all match.
#   crontab:  0 4 * * 0  /srv/rediska/scripts/local_backup/restore_test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
exec "$PY" manage.py restore_test "$@"
