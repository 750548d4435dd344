#!/usr/bin/env bash
# Web (gunicorn) + Celery worker with embedded beat, in one process group:
# Ctrl-C (or either process dying) stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DATA=$("$PY" -c 'import django, os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rediska.settings"); django.setup(); from django.conf import settings; print(settings.DATA_DIR)')

trap 'trap - INT TERM EXIT; kill 0 2>/dev/null || true; wait 2>/dev/null || true' INT TERM EXIT

"$PY" -m gunicorn rediska.wsgi:application --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-2}" \
  --timeout 120 --limit-request-line 16384 --access-logfile - &
"$PY" -m celery -A rediska worker --beat --loglevel "${LOG_LEVEL:-INFO}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" --schedule "$DATA/celerybeat-schedule" &
wait -n
