#!/usr/bin/env bash
# The warehouse's least-privilege roles and the postgres_fdw link to the replica (roles.psql).
# The Postgres entrypoint runs this once, as the superuser, when it initialises an empty data
# directory; the role tests run the same script. Passwords come from ZETL_<ROLE>_PASSWORD or
# the file named by ZETL_<ROLE>_PASSWORD_FILE, and reach psql through its environment only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# One copy for both servers: beside this directory in the repo, mounted at /secrets.bash by compose.
# shellcheck source=../secrets.bash
. "$here/../secrets.bash"
export_secret ZETL_REPLICATOR_PASSWORD ZETL_TRANSFORM_PASSWORD ZETL_DQ_PASSWORD \
  ZETL_DASHBOARD_PASSWORD ZETL_ORCHESTRATION_PASSWORD ZETL_REDSHIFT_PASSWORD
export ZETL_REPLICA_DATABASE="${ZETL_REPLICA_DATABASE:-raw_transactions}"
# The transform service's set-up of the postgres_fdw link (one copy: compose mounts it here).
export ZETL_REPLICA_LINK_SQL="${ZETL_REPLICA_LINK_SQL:-$here/../../services/transform/src/zetl_transform/sql/setup_replica_link.sql}"
[[ -r "$ZETL_REPLICA_LINK_SQL" ]] || { echo "zetl roles: no $ZETL_REPLICA_LINK_SQL" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
  --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" -f "$here/roles.psql"

