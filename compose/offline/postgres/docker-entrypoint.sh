#!/usr/bin/env bash
# Entrypoint of the offline postgres stand-in (compose/offline/postgres). It honours the
# official postgres image's contract so compose files, init scripts and tests written for
# postgres:17 run unchanged on it:
#
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user), each also as *_FILE;
#   POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, PGDATA;
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz|*.sql.xz|*.sql.zst run once, on an empty
#   PGDATA, against a socket-only temporary server; "docker run IMAGE -c key=value" means
#   "postgres -c key=value"; root is dropped to the postgres user.
#
# No -u: init scripts written for the official image are sourced into this shell and may
# test variables that are not set, which the official entrypoint allows.
set -Eeo pipefail

err() { printf >&2 '%s: error: %s\n' "${0##*/}" "$*"; }

# file_env VAR [DEFAULT]: VAR from the environment, or from the file named by VAR_FILE (how
# Docker and Compose secrets arrive), else DEFAULT. Exported, and VAR_FILE unset, so the
# re-executed entrypoint (no longer root, maybe unable to read the file) sees the value.
file_env() {
    local var="$1" file_var="${1}_FILE" default="${2:-}" value
    if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
        err "both $var and $file_var are set (but are exclusive)"
        exit 1
    fi
    value="$default"
    if [[ -n "${!var:-}" ]]; then
        value="${!var}"
    elif [[ -n "${!file_var:-}" ]]; then
        if [[ ! -r "${!file_var}" ]]; then
            err "$file_var=${!file_var} is not a readable file"
            exit 1
        fi
        value="$(<"${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

setup_env() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=}"
    : "${PGDATA:=/var/lib/postgresql/data}"
    export PGDATA
    DATABASE_ALREADY_EXISTS=
    if [[ -s "$PGDATA/PG_VERSION" ]]; then
        DATABASE_ALREADY_EXISTS=true
    fi
}

# Directories a fresh volume (or bind mount) lacks, owned by postgres when we are root.
create_db_directories() {
    mkdir -p "$PGDATA"
    # Postgres refuses a data directory others can read; a bind mount may not allow chmod.
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    chmod 03775 /var/run/postgresql || :
    if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
        mkdir -p "$POSTGRES_INITDB_WALDIR"
        chmod 700 "$POSTGRES_INITDB_WALDIR" || :
    fi
    if [[ "$(id -u)" == 0 ]]; then
        find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
        if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
            find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres:postgres '{}' +
        fi
    fi
}

verify_minimum_env() {
    if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
        # Same wording as the official image, so whoever greps its logs finds it here too.
        cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.

       See PostgreSQL documentation about "trust":
       https://www.postgresql.org/docs/current/auth-trust.html
EOE
        exit 1
    fi
    if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
        printf >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every connection is accepted without a password.\n'
    fi
}

init_database_dir() {
    local extra=()
    if [[ -n "$POSTGRES_PASSWORD" ]]; then
        extra+=("--pwfile=/dev/fd/3")
    fi
    if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
        extra+=(--waldir "$POSTGRES_INITDB_WALDIR")
    fi
    # initdb's own default authentication is kept on purpose: trust on the socket (and
    # loopback), so this entrypoint's psql steps below need no password. Remote connections
    # get a password method from pg_hba lines appended afterwards.
    # POSTGRES_INITDB_ARGS is one string that may hold quoted words ("--locale=... -E UTF8");
    # eval splits it as a shell would, as the official image does.
    # The password travels on fd 3, never in argv or on disk.
    eval 'initdb --username="$POSTGRES_USER" '"$POSTGRES_INITDB_ARGS"' "${extra[@]}"' \
        3< <(printf '%s\n' "$POSTGRES_PASSWORD")
    # The server binaries are built with upstream's socket directory, /tmp; the official image's
    # (and Debian's psql and pg_isready, which run inside the container) is /var/run/postgresql.
    # initdb writes the built-in value into postgresql.conf, so the image's choice goes after it.
    if [[ "$(postgres -C unix_socket_directories -D "$PGDATA")" == /tmp ]]; then
        printf "\nunix_socket_directories = '/var/run/postgresql'\n" >>"$PGDATA/postgresql.conf"
    fi
}

# pg_hba lines for connections from outside the container. Without a method given, the one
# that matches password_encryption (scram-sha-256 on 14+), as the official image does.
setup_hba_conf() {
    if [[ "${1:-}" == postgres ]]; then
        shift
    fi
    if [[ -z "$POSTGRES_HOST_AUTH_METHOD" ]]; then
        POSTGRES_HOST_AUTH_METHOD="$(postgres -C password_encryption "$@")"
    fi
    {
        printf '\n'
        if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
            printf '# warning: trust is enabled for all connections\n'
        fi
        printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
        # "all" does not match physical replication connections; logical replication
        # (replication=database) already matches the line above.
        printf 'host replication all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
    } >>"$PGDATA/pg_hba.conf"
}

# The server that runs the init scripts listens on the socket only (listen_addresses=''),
# so nothing outside the container can mistake the init phase for a ready server.
temp_server_start() {
    if [[ "${1:-}" == postgres ]]; then
        shift
    fi
    set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
    PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
    PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

# psql as the superuser over the socket, stopping at the first error. Named as in the
# official entrypoint because sourced init scripts may call it.
docker_process_sql() {
    local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [[ -n "$POSTGRES_DB" ]]; then
        runner+=(--dbname "$POSTGRES_DB")
    fi
    PGHOST='' PGHOSTADDR='' "${runner[@]}" "$@"
}

setup_db() {
    local db="$POSTGRES_DB"
    # Connect to the maintenance database; \gexec runs the CREATE only when the SELECT
    # returns it: create-if-missing in one call.
    POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$db" --quiet <<'EOSQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
EOSQL
}

process_init_files() {
    local f files=()
    shopt -s nullglob
    files=(/docker-entrypoint-initdb.d/*)
    shopt -u nullglob
    printf '\n'
    for f in "${files[@]}"; do
        case "$f" in
            *.sh)
                if [[ -x "$f" ]]; then
                    printf '%s: running %s\n' "$0" "$f"
                    "$f"
                else
                    printf '%s: sourcing %s\n' "$0" "$f"
                    # shellcheck disable=SC1090  # the scripts are the user's, unknown here
                    . "$f"
                fi
                ;;
            *.sql)
                printf '%s: running %s\n' "$0" "$f"
                docker_process_sql -f "$f"
                ;;
            *.sql.gz)
                printf '%s: running %s\n' "$0" "$f"
                gunzip -c "$f" | docker_process_sql
                ;;
            *.sql.xz)
                printf '%s: running %s\n' "$0" "$f"
                xz -dc "$f" | docker_process_sql
                ;;
            *.sql.zst)
                printf '%s: running %s\n' "$0" "$f"
                zstd -dc "$f" | docker_process_sql
                ;;
            *)
                printf '%s: ignoring %s\n' "$0" "$f"
                ;;
        esac
        printf '\n'
    done
}

# Arguments that make postgres print something and exit need no data directory at all.
pg_wants_help() {
    local arg
    for arg; do
        case "$arg" in
            -'?' | --help | --describe-config | -V | --version | -C) return 0 ;;
        esac
    done
    return 1
}

main() {
    # "docker run IMAGE -c wal_level=logical" means "postgres -c wal_level=logical".
    if [[ "${1:0:1}" == - ]]; then
        set -- postgres "$@"
    fi

    if [[ "$1" == postgres ]] && ! pg_wants_help "$@"; then
        setup_env
        create_db_directories
        if [[ "$(id -u)" == 0 ]]; then
            # Start over as postgres; HOME as the postgres user's, as gosu would set it.
            export HOME=/var/lib/postgresql USER=postgres LOGNAME=postgres
            exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
        fi

        if [[ -z "$DATABASE_ALREADY_EXISTS" ]]; then
            verify_minimum_env
            # Fail now, not half way through, if the init directory is unreadable.
            ls /docker-entrypoint-initdb.d/ >/dev/null
            init_database_dir
            setup_hba_conf "$@"
            # In case POSTGRES_INITDB_ARGS made the socket ask for a password after all.
            export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
            temp_server_start "$@"
            setup_db
            process_init_files
            temp_server_stop
            unset PGPASSWORD
            printf '\nPostgreSQL init process complete; ready for start up.\n\n'
        else
            printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
        fi
    fi

    exec "$@"
}

main "$@"
