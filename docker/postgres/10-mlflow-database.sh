#!/usr/bin/env bash
# Gives MLflow its own role and database, apart from the platform's tables.
#
# The postgres image runs /docker-entrypoint-initdb.d/* once, when the data volume is
# empty; on an existing volume run the same statements by hand (docs/operations.md).
# psql's :"name" / :'value' quoting keeps any character of the password harmless.
set -euo pipefail

: "${MLFLOW_DB_USER:?MLFLOW_DB_USER is not set}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=mlflow_user="$MLFLOW_DB_USER" \
    --set=mlflow_password="$MLFLOW_DB_PASSWORD" \
    --set=platform_db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER :"mlflow_user";
-- Each role reaches only its own database.
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE :"platform_db" FROM PUBLIC;
SQL
