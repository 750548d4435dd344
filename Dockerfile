# Rediska app image: the web (gunicorn), the Celery worker and beat all run from it.
# Not built on the development machine (no Docker engine there); see docs/OPERATIONS.md.

# --- build: wheels for everything, mysqlclient compiled here ---------------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential default-libmysqlclient-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rediska ./rediska
COPY identities ./identities
COPY inbox ./inbox
COPY leads ./leads
COPY agents ./agents
COPY search ./search
COPY today ./today
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[mysql]" "setuptools>=69" wheel

# --- runtime -------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/var/lib/rediska \
    LOG_FORMAT=json
# The MySQL/MariaDB client tools: mysqldump and mysql for backups and restore tests.
RUN apt-get update \
 && apt-get install -y --no-install-recommends default-mysql-client libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --user-group --home-dir /app rediska \
 && mkdir -p /var/lib/rediska && chown rediska:rediska /var/lib/rediska
WORKDIR /app
COPY --from=build /wheels /wheels
COPY --chown=rediska:rediska . /app
# Editable (compat) install: templates and static files are read from /app.
RUN pip install --no-index --find-links /wheels -e ".[mysql]" --config-settings editable_mode=compat \
 && rm -rf /wheels
USER rediska
EXPOSE 8000
CMD ["gunicorn", "rediska.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120", \
     "--limit-request-line", "16384", "--access-logfile", "-"]
