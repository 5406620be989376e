#!/usr/bin/env bash
# A database and a login role per Ordo service, each owning only its own database: a service can
# never read another's store. Run by the postgres image on first start (docker-entrypoint-initdb.d)
# as the superuser; safe to run again (it creates what is missing and resets the passwords).
#
# ORDO_DATABASES       services to create a database for (default: the six services)
# ORDO_DB_PASSWORD_<S> the password of service S's role, e.g. ORDO_DB_PASSWORD_ORDER
set -euo pipefail

databases="${ORDO_DATABASES:-signal order risk execution reconciler notifier}"

for name in $databases; do
  variable="ORDO_DB_PASSWORD_$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')"
  password="${!variable:-}"
  if [ -z "$password" ]; then
    echo "create-databases: $variable is not set" >&2
    exit 1
  fi
  # psql quotes the names (%I: `order` is a reserved word) and the password (%L) itself;
  # \gexec runs each generated statement on its own, as CREATE DATABASE must be.
  psql --no-psqlrc -v ON_ERROR_STOP=1 --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
  echo "create-databases: database and role '$name' ready"
done
