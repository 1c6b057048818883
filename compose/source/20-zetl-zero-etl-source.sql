-- The source side of zero-ETL that plain Postgres lacks: DDL capture, and (at the end)
-- rds.replica_identity_full.
--
-- DDL capture puts every table and schema DDL into the replication stream, at its place among
-- the row changes, so the replicator applies it when it happens (not at the table's next row
-- change). An event trigger writes a transactional logical message (prefix 'zetl.ddl') with
-- the table's new shape, read from the catalog inside the DDL's own transaction: it is decoded
-- only if that transaction commits, at the position of the DDL.
--
-- Event triggers need a superuser: the Postgres entrypoint runs this file once, as the
-- superuser, when it initialises the source (the test harness runs it in each test database).
-- On RDS nothing is installed: zero-ETL reads DDL itself, and rds.replica_identity_full is a
-- parameter. Without these triggers the replicator still works; a changed table's shape then
-- reaches the replica with its next row change, and NOTHING / USING INDEX tables are Failed.
-- Idempotent. The last part emulates rds.replica_identity_full (below).
CREATE SCHEMA IF NOT EXISTS zetl_capture;
REVOKE ALL ON SCHEMA zetl_capture FROM PUBLIC;

CREATE OR REPLACE FUNCTION zetl_capture.ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  tables jsonb;
  schemas jsonb;
  dropped jsonb;
BEGIN
  IF tg_event = 'sql_drop' THEN
    SELECT jsonb_agg(jsonb_build_object(
             'type', d.object_type, 'schema', d.schema_name, 'name', d.object_name))
      INTO dropped
      FROM pg_event_trigger_dropped_objects() d
     WHERE d.object_type IN ('table', 'schema') AND d.original AND NOT d.is_temporary;
  ELSE
    -- One entry per table the command touched, with its columns as pgoutput sends them
    -- (name, type oid, modifier, key) and what the replicator would otherwise ask the catalog
    -- later, when it may have changed again: the attribute number, the value rows already
    -- there hold in an added column (atthasmissing, its text), whether it has a default.
    SELECT jsonb_agg(jsonb_build_object(
             'oid', c.oid, 'schema', n.nspname, 'name', c.relname,
             'identity', c.relreplident,
             'newest', (SELECT max(attnum) FROM pg_attribute WHERE attrelid = c.oid),
             'dropped', (SELECT count(*) FROM pg_attribute
                          WHERE attrelid = c.oid AND attisdropped),
             'columns', coalesce((
               SELECT jsonb_agg(jsonb_build_array(
                        a.attname, a.atttypid, a.atttypmod,
                        coalesce(a.attnum = ANY (i.indkey), false),
                        a.attnum, a.atthasmissing, (a.attmissingval::text::text[])[1],
                        d.adnum IS NOT NULL) ORDER BY a.attnum)
                 FROM pg_attribute a
                 LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attgenerated = ''), '[]'::jsonb)))
      INTO tables
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'  -- temporary: never replicated
       AND c.oid IN (SELECT e.objid FROM pg_event_trigger_ddl_commands() e
                      WHERE e.classid = 'pg_class'::regclass
                        AND e.object_type IN ('table', 'table column'));
    SELECT jsonb_agg(DISTINCT e.object_identity)
      INTO schemas
      FROM pg_event_trigger_ddl_commands() e
     WHERE e.object_type = 'schema';
  END IF;
  IF tables IS NULL AND schemas IS NULL AND dropped IS NULL THEN
    RETURN;
  END IF;
  PERFORM pg_logical_emit_message(true, 'zetl.ddl', jsonb_strip_nulls(jsonb_build_object(
    'tag', tg_tag, 'tables', tables, 'schemas', schemas, 'dropped', dropped))::text);
END
$$;
REVOKE ALL ON FUNCTION zetl_capture.ddl() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS zetl_capture_ddl;
CREATE EVENT TRIGGER zetl_capture_ddl ON ddl_command_end EXECUTE FUNCTION zetl_capture.ddl();
DROP EVENT TRIGGER IF EXISTS zetl_capture_drop;
CREATE EVENT TRIGGER zetl_capture_drop ON sql_drop EXECUTE FUNCTION zetl_capture.ddl();

-- rds.replica_identity_full = 1, as zero-ETL's source parameter group sets it: RDS treats every
-- table as REPLICA IDENTITY FULL, so tables set to NOTHING or USING INDEX replicate too. Plain
-- Postgres has no such parameter: this trigger gives every table that is (or becomes) NOTHING or
-- USING INDEX the identity FULL right away, in the same transaction. Tables with the default
-- identity (their primary key) are left as they are: for replication they behave the same.
CREATE OR REPLACE FUNCTION zetl_capture.replica_identity_full() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  target regclass;
BEGIN
  FOR target IN
    SELECT DISTINCT c.oid::regclass FROM pg_event_trigger_ddl_commands() e
      JOIN pg_class c ON c.oid = e.objid
     WHERE e.classid = 'pg_class'::regclass AND c.relkind = 'r'
       AND c.relreplident IN ('n', 'i')
  LOOP
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', target);
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION zetl_capture.replica_identity_full() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS zetl_replica_identity_full;
CREATE EVENT TRIGGER zetl_replica_identity_full ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
  EXECUTE FUNCTION zetl_capture.replica_identity_full();
-- Tables that were there before: the same.
DO $$
DECLARE
  target regclass;
BEGIN
  FOR target IN
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND c.relreplident IN ('n', 'i')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  LOOP
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', target);
  END LOOP;
END
$$;
