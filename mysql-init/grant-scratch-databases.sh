#!/bin/bash
# Run by the MySQL image once, when it initialises an empty data volume
# (/docker-entrypoint-initdb.d).  restore_test and restore work in scratch databases
# named <MYSQL_DATABASE>_restoretest_<random> and <MYSQL_DATABASE>_restoreold_<random>,
# but the image grants MYSQL_USER only MYSQL_DATABASE itself.  On an existing volume:
#   docker compose exec rediska-mysql /docker-entrypoint-initdb.d/grant-scratch-databases.sh
set -euo pipefail
# `_` is a wildcard in GRANT database names: escape the name's own, then match its prefix.
pattern="${MYSQL_DATABASE//_/\\_}\\_%"
MYSQL_PWD="${MYSQL_ROOT_PASSWORD:-}" mysql -uroot <<SQL
GRANT ALL PRIVILEGES ON \`${pattern}\`.* TO '${MYSQL_USER}'@'%';
SQL
