#!/usr/bin/env bash
# The source's least-privilege roles (roles.psql). The Postgres entrypoint runs this once, as the
# superuser, when it initialises an empty data directory; the role tests run the same script.
# Passwords come from ZETL_<ROLE>_PASSWORD or the file named by ZETL_<ROLE>_PASSWORD_FILE. They
# travel to psql in its environment (\getenv), never on a command line or in a log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# One copy for both servers: beside this directory in the repo, mounted at /secrets.bash by compose.
# shellcheck source=../secrets.bash
. "$here/../secrets.bash"
export_secret ZETL_OWNER_PASSWORD ZETL_APP_PASSWORD ZETL_REPLICATION_PASSWORD ZETL_ANALYST_PASSWORD
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
  --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" -f "$here/roles.psql"
