#!/usr/bin/env bash
# Web (gunicorn) + Celery worker with embedded beat.  Ctrl-C, SIGTERM to this
# script or to its process group, or either process dying stops them all within
# STOP_TIMEOUT seconds (default 6): a polite SIGTERM first, then SIGKILL for
# whatever is still running (a job interrupted that way resumes from its cursor,
# see "Surviving crashes" in docs/OPERATIONS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
STOP_TIMEOUT=${STOP_TIMEOUT:-6}
DATA=$("$PY" -c 'import django, os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rediska.settings"); django.setup(); from django.conf import settings; print(settings.DATA_DIR)')

# Each child leads its own process group (setsid): the terminal's Ctrl-C reaches
# only this script, which then stops each group as a whole (gunicorn's and the
# worker's own children included), in order and with a deadline.
groups=()
stopping=""

alive() {
  local g
  for g in "${groups[@]}"; do kill -0 -- "-$g" 2>/dev/null && return 0; done
  return 1
}

stop() {
  [ -n "$stopping" ] && return
  stopping=1
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  local g
  # The leaders first: gunicorn and Celery stop their own children gracefully.
  for g in "${groups[@]}"; do kill -TERM "$g" 2>/dev/null || true; done
  # A deadline by the clock (not a count of sleeps, which stretch on a loaded machine).
  local now deadline=$(( ${EPOCHREALTIME/[.,]/} + STOP_TIMEOUT * 1000000 ))
  while alive; do
    now=${EPOCHREALTIME/[.,]/}
    [ "$now" -ge "$deadline" ] && break
    sleep 0.1
  done
  if alive; then
    echo "run.sh: still running after ${STOP_TIMEOUT}s, killing" >&2
    for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  fi
  wait 2>/dev/null || true
}

trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM HUP
trap 'stop' EXIT

setsid "$PY" -m gunicorn rediska.wsgi:application --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-2}" \
  --timeout 120 --graceful-timeout 5 --limit-request-line 16384 --access-logfile - &
groups+=("$!")
setsid "$PY" -m celery -A rediska worker --beat --loglevel "${LOG_LEVEL:-INFO}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" --schedule "$DATA/celerybeat-schedule" &
groups+=("$!")
# Either process ending ends the app; `wait -n` returns early on a trapped signal too.
wait -n || true
