#!/usr/bin/env bash
# The warehouse's least-privilege roles and the postgres_fdw link to the replica (roles.psql).
# The Postgres entrypoint runs this once, as the superuser, when it initialises an empty data
# directory; the role tests run the same script. Passwords come from ZETL_<ROLE>_PASSWORD or
# the file named by ZETL_<ROLE>_PASSWORD_FILE, and reach psql through its environment only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=secrets.bash
. "$here/secrets.bash"
export_secret ZETL_REPLICATOR_PASSWORD ZETL_TRANSFORM_PASSWORD ZETL_DQ_PASSWORD \
  ZETL_DASHBOARD_PASSWORD
export ZETL_REPLICA_DATABASE="${ZETL_REPLICA_DATABASE:-raw_transactions}"
# The fdw connects to this same server; inside the container that is localhost:5432.
export ZETL_FDW_HOST="${ZETL_FDW_HOST:-localhost}" ZETL_FDW_PORT="${ZETL_FDW_PORT:-5432}"
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
  --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" -f "$here/roles.psql"

# The fdw logs in over the container's loopback. Postgres refuses a non-superuser's fdw
# connection unless the server asked it for a password, and initdb trusts loopback: so
# loopback TCP asks for one (scram), as every other TCP connection does. The socket stays
# trusted (the entrypoint and pg_isready use it). Only where this runs beside the data
# directory (inside the container).
hba="${PGDATA:-/var/lib/postgresql/data}/pg_hba.conf"
if [[ -w "$hba" ]]; then
  sed -ri 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)trust[[:space:]]*$/\1scram-sha-256/' "$hba"
  psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" -c 'SELECT pg_reload_conf()' >/dev/null
fi
