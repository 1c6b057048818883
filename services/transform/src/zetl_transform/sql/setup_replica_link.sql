-- The privileged, one-time half of the local cross-database link (run by a superuser in the
-- warehouse database `dev`; idempotent, so init scripts and `zetl transform setup` may run it
-- again). It defines zetl_transform.setup_replica_link(...), which:
--   * creates the postgres_fdw extension and the foreign server `replica` pointing at the
--     replica database on this same server (fetch_size 10000: scans are not row by row);
--   * creates (or re-keys) the login role zetl_replica_reader, which may connect to the
--     replica database and, like everyone, only SELECT its tables (the replicator grants
--     SELECT to PUBLIC and alone owns them): nothing can be written there through the link;
--   * maps every local user to that reader (a mapping FOR PUBLIC grants no more than what any
--     warehouse login may already read) and lets the transform role use the server and own
--     the import schema, so the per-run refresh (IMPORT FOREIGN SCHEMA) needs no privilege.
-- Nothing is created inside the replica database.
CREATE SCHEMA IF NOT EXISTS zetl_transform;

CREATE OR REPLACE FUNCTION zetl_transform.setup_replica_link(
    replica_database text,
    grantee text DEFAULT current_user,
    remote_host text DEFAULT 'localhost',
    remote_port integer DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    port text := coalesce(remote_port::text, current_setting('port'));
    secret text := md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text);
    import_schema text := replica_database || '_public';
    options_verb text;
    option_name text;
    option_value text;
BEGIN
    CREATE EXTENSION IF NOT EXISTS postgres_fdw;

    -- use_remote_estimate: the planner asks the replica for row counts instead of guessing
    -- (foreign tables have no local statistics); without it a join against a foreign table can
    -- become a nested loop that rescans the whole table once per outer row.
    -- sslmode=require: the server refuses unencrypted connections, its own included.
    -- cursor_tuple_fraction=1 on the replica's side: postgres_fdw reads every result through a
    -- cursor, which the remote planner otherwise plans for the first 10% of rows; with the
    -- staging casts hiding column statistics that chose a nested loop for the pushed-down
    -- customer-affiliate join (30 s instead of 0.1 s on 40k players). Every fdw read is read
    -- to its end, so plan for the whole result.
    IF NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = 'replica') THEN
        CREATE SERVER replica FOREIGN DATA WRAPPER postgres_fdw;
    END IF;
    FOR option_name, option_value IN
        SELECT * FROM (VALUES ('host', remote_host), ('port', port),
                              ('dbname', replica_database), ('fetch_size', '10000'),
                              ('use_remote_estimate', 'true'), ('sslmode', 'require'),
                              ('options', '-c cursor_tuple_fraction=1')) AS o(name, value)
    LOOP
        EXECUTE format('ALTER SERVER replica OPTIONS (%s %I %L)',
            CASE WHEN EXISTS (
                SELECT 1 FROM pg_foreign_server, unnest(srvoptions) AS o
                WHERE srvname = 'replica' AND o LIKE option_name || '=%'
            ) THEN 'SET' ELSE 'ADD' END,
            option_name, option_value);
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zetl_replica_reader') THEN
        CREATE ROLE zetl_replica_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    EXECUTE format('ALTER ROLE zetl_replica_reader PASSWORD %L', secret);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO zetl_replica_reader', replica_database);

    -- password_required off: on a server whose local connections are trusted, the remote side
    -- asks no password, which postgres_fdw refuses for non-superusers unless told otherwise.
    options_verb := CASE WHEN EXISTS (
        SELECT 1 FROM pg_user_mappings WHERE srvname = 'replica' AND usename = 'public'
    ) THEN 'ALTER' ELSE 'CREATE' END;
    IF options_verb = 'CREATE' THEN
        EXECUTE format(
            'CREATE USER MAPPING FOR PUBLIC SERVER replica'
            ' OPTIONS (user %L, password %L, password_required %L)',
            'zetl_replica_reader', secret, 'false');
    ELSE
        EXECUTE format(
            'ALTER USER MAPPING FOR PUBLIC SERVER replica OPTIONS (SET password %L)', secret);
    END IF;

    EXECUTE format('GRANT USAGE ON FOREIGN SERVER replica TO %I', grantee);
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', import_schema, grantee);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', import_schema, grantee);
    -- The refresh imports into this scratch schema first and moves only what changed.
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I',
                   import_schema || '__import', grantee);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', import_schema || '__import', grantee);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA zetl_transform TO %I', grantee);
END
$fn$;

REVOKE ALL ON FUNCTION zetl_transform.setup_replica_link(text, text, text, integer) FROM PUBLIC;
