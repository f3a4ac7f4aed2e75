#!/bin/bash
# Creates doce's own role and database in the compose file's PostgreSQL, next to Temporal's.
# The postgres image runs it once, on the first start of an empty data volume
# (/docker-entrypoint-initdb.d); on a volume made before, run it by hand:
#   docker-compose exec -e DOCE_DB_PASSWORD=... postgresql bash /docker-entrypoint-initdb.d/init-doce.sh
set -euo pipefail
: "${DOCE_DB_PASSWORD:?set DOCE_DB_PASSWORD, the password of the doce database role}"
# psql's :"name" and :'value' quote what they insert.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v user="${DOCE_DB_USER:-doce}" -v db="${DOCE_DB_NAME:-doce}" -v password="$DOCE_DB_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user" ENCODING 'UTF8';
-- Only doce's role (and superusers) may connect: Temporal's role has no business here.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
