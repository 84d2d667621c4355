#!/usr/bin/env bash
# Gives MLflow its own role and database, apart from the platform's tables, and sets the
# passwords of both roles to those in the environment (POSTGRES_PASSWORD, MLFLOW_DB_PASSWORD).
#
# The postgres image runs /docker-entrypoint-initdb.d/* once, when the data volume is empty.
# Running it again is safe and is how passwords change on an existing volume (after editing
# .env: docs/operations.md, "Changing passwords"):
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-mlflow-database.sh
# It connects over the container's Unix socket, where the image needs no password.
# psql's :'value' variables and format(%I, %L) keep any character of a password harmless.
set -euo pipefail

: "${POSTGRES_USER:?POSTGRES_USER is not set}"
: "${POSTGRES_DB:?POSTGRES_DB is not set}"
: "${MLFLOW_DB_USER:?MLFLOW_DB_USER is not set}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=mlflow_user="$MLFLOW_DB_USER" \
    --set=mlflow_password="$MLFLOW_DB_PASSWORD" \
    --set=platform_user="$POSTGRES_USER" \
    --set=platform_password="${POSTGRES_PASSWORD:-}" \
    --set=platform_db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'mlflow_user')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'mlflow_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'mlflow_user', :'mlflow_password') \gexec
SELECT format('CREATE DATABASE mlflow OWNER %I', :'mlflow_user')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow') \gexec
-- The platform's own role: its password as in .env (no-op when POSTGRES_PASSWORD is unset).
SELECT format('ALTER ROLE %I PASSWORD %L', :'platform_user', :'platform_password')
    WHERE :'platform_password' <> '' \gexec
-- Each role reaches only its own database.
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE :"platform_db" FROM PUBLIC;
SQL
