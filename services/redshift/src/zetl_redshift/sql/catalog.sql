-- Redshift's system views over PostgreSQL's catalog, in schema zetl_redshift (the translator
-- maps svv_tables and pg_catalog.svv_tables alike). Columns and their order follow each view's
-- page in the Redshift Database Developer Guide (r_<VIEW>.html). Each view shows only what the
-- reading role may see in PostgreSQL's own catalog.

-- The user tables and views of this database the reading role can see.
CREATE OR REPLACE VIEW zetl_redshift.user_relations AS
SELECT c.oid, current_database()::varchar(128) AS database_name, n.nspname AS schema_name,
       c.relname AS table_name, c.relkind, c.relowner, c.relacl, c.reltuples,
       obj_description(c.oid, 'pg_class') AS remarks
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'zetl_redshift', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%'
  AND (pg_has_role(c.relowner, 'USAGE') OR has_table_privilege(c.oid, 'SELECT'));

CREATE OR REPLACE VIEW zetl_redshift.user_columns AS
SELECT r.database_name, r.schema_name, r.table_name, a.attname AS column_name,
       a.attnum::int AS ordinal_position,
       CASE format_type(a.atttypid, a.atttypmod)
           WHEN 'jsonb' THEN 'super'
           ELSE format_type(a.atttypid, a.atttypmod)
       END AS data_type,
       pg_get_expr(d.adbin, d.adrelid) AS column_default,
       CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END::varchar(3) AS is_nullable,
       information_schema._pg_char_max_length(a.atttypid, a.atttypmod) AS character_maximum_length,
       information_schema._pg_numeric_precision(a.atttypid, a.atttypmod) AS numeric_precision,
       information_schema._pg_numeric_scale(a.atttypid, a.atttypmod) AS numeric_scale,
       coalesce(t.encodings ->> a.attname, 'none') AS encoding,
       coalesce(t.distkey = a.attname, false) AS distkey,
       coalesce(array_position(t.sortkey, a.attname::text), 0)
           * CASE WHEN t.sortkey_type = 'interleaved' THEN -1 ELSE 1 END AS sortkey,
       col_description(r.oid, a.attnum) AS remarks,
       r.oid AS table_oid
FROM zetl_redshift.user_relations r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
LEFT JOIN zetl_redshift.table_attributes t ON t.table_oid = r.oid;

CREATE OR REPLACE VIEW zetl_redshift.pg_table_def AS
SELECT schema_name::name AS schemaname, table_name::name AS tablename, column_name::name AS "column",
       data_type AS type, encoding::character(32) AS encoding, distkey, sortkey::int AS sortkey,
       is_nullable = 'NO' AS notnull
FROM zetl_redshift.user_columns c
WHERE pg_table_is_visible(c.table_oid);  -- as on Redshift: the schemas of the search_path

CREATE OR REPLACE VIEW zetl_redshift.svv_table_info AS
SELECT r.database_name::text AS database, r.schema_name::text AS schema, r.oid AS table_id,
       r.table_name::text AS "table",
       CASE WHEN t.encodings IS NOT NULL AND t.encodings <> '{}' THEN 'Y' ELSE 'N' END AS encoded,
       CASE WHEN t.diststyle = 'KEY' THEN 'KEY(' || t.distkey || ')'
            WHEN t.diststyle IS NOT NULL THEN t.diststyle
            ELSE 'AUTO(EVEN)' END AS diststyle,
       coalesce(t.sortkey[1], 'AUTO(SORTKEY)') AS sortkey1,
       (SELECT max(character_maximum_length) FROM zetl_redshift.user_columns c
         WHERE c.table_oid = r.oid AND c.data_type LIKE 'character varying%')::int AS max_varchar,
       coalesce(t.encodings ->> t.sortkey[1], 'none')::character(32) AS sortkey1_enc,
       coalesce(cardinality(t.sortkey), 0)::int AS sortkey_num,
       ceil(pg_total_relation_size(r.oid) / 1048576.0)::bigint AS size,
       0::numeric(10, 4) AS pct_used, 0::bigint AS empty, 0::numeric(5, 2) AS unsorted,
       0::numeric(5, 2) AS stats_off,
       greatest(r.reltuples, 0)::numeric(38, 0) AS tbl_rows,
       NULL::numeric(19, 2) AS skew_sortkey1, NULL::numeric(19, 2) AS skew_rows,
       greatest(r.reltuples, 0)::numeric(38, 0) AS estimated_visible_rows,
       NULL::text AS risk_event, NULL::numeric(12, 2) AS vacuum_sort_benefit,
       NULL::timestamp AS create_time
FROM zetl_redshift.user_relations r
LEFT JOIN zetl_redshift.table_attributes t ON t.table_oid = r.oid
WHERE r.relkind IN ('r', 'p', 'm');

CREATE OR REPLACE VIEW zetl_redshift.svv_tables AS
SELECT table_catalog, table_schema, table_name, table_type, NULL::text AS remarks
FROM information_schema.tables;

CREATE OR REPLACE VIEW zetl_redshift.svv_columns AS
SELECT table_catalog, table_schema, table_name, column_name, ordinal_position, column_default,
       is_nullable, CASE data_type WHEN 'jsonb' THEN 'super' ELSE data_type END AS data_type,
       character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale,
       datetime_precision, interval_type, interval_precision, character_set_catalog,
       character_set_schema, character_set_name, collation_catalog, collation_schema,
       collation_name, domain_name, NULL::text AS remarks
FROM information_schema.columns;

CREATE OR REPLACE VIEW zetl_redshift.svv_redshift_databases AS
SELECT d.datname::varchar(128) AS database_name, pg_get_userbyid(d.datdba)::varchar(128) AS database_owner,
       'local'::varchar(32) AS database_type, d.datacl::text AS database_acl,
       NULL::varchar(128) AS database_options, 'Snapshot Isolation'::varchar(128) AS database_isolation_level
FROM pg_database d
WHERE NOT d.datistemplate AND has_database_privilege(d.oid, 'CONNECT');

CREATE OR REPLACE VIEW zetl_redshift.svv_redshift_schemas AS
SELECT current_database()::varchar(128) AS database_name, n.nspname::varchar(128) AS schema_name,
       pg_get_userbyid(n.nspowner)::varchar(128) AS schema_owner, 'local'::varchar(32) AS schema_type,
       n.nspacl::text AS schema_acl, NULL::varchar(128) AS schema_option
FROM pg_namespace n
WHERE n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND n.nspname <> 'zetl_redshift'
  AND (pg_has_role(n.nspowner, 'USAGE') OR has_schema_privilege(n.oid, 'USAGE'));

CREATE OR REPLACE VIEW zetl_redshift.svv_all_schemas AS
SELECT current_database()::varchar(128) AS database_name, n.nspname::varchar(128) AS schema_name,
       n.nspowner::int AS schema_owner, 'local'::varchar(32) AS schema_type,
       n.nspacl::text AS schema_acl, NULL::varchar(128) AS source_database,
       NULL::varchar(128) AS schema_option
FROM pg_namespace n
WHERE n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND n.nspname <> 'zetl_redshift'
  AND (pg_has_role(n.nspowner, 'USAGE') OR has_schema_privilege(n.oid, 'USAGE'));

CREATE OR REPLACE VIEW zetl_redshift.svv_redshift_tables AS
SELECT database_name, schema_name::varchar(128), table_name::varchar(128),
       CASE WHEN relkind IN ('v', 'm') THEN 'VIEW' ELSE 'TABLE' END::varchar(128) AS table_type,
       relacl::text AS table_acl, remarks::varchar(256)
FROM zetl_redshift.user_relations;

CREATE OR REPLACE VIEW zetl_redshift.svv_all_tables AS
SELECT database_name, schema_name, table_name, table_type, table_acl, remarks
FROM zetl_redshift.svv_redshift_tables;

CREATE OR REPLACE VIEW zetl_redshift.svv_redshift_columns AS
SELECT database_name, schema_name::varchar(128), table_name::varchar(128),
       column_name::varchar(128), ordinal_position, data_type::varchar(128),
       column_default::varchar(4000), is_nullable, encoding::varchar(128), distkey, sortkey,
       NULL::varchar(128) AS column_acl, remarks::varchar(256)
FROM zetl_redshift.user_columns;

CREATE OR REPLACE VIEW zetl_redshift.svv_all_columns AS
SELECT database_name, schema_name::varchar(128), table_name::varchar(128),
       column_name::varchar(128), ordinal_position, column_default::varchar(4000), is_nullable,
       data_type::varchar(128), character_maximum_length, numeric_precision, numeric_scale,
       remarks::varchar(256)
FROM zetl_redshift.user_columns;

-- Redshift's pg_proc with its oid as a column (redshift_connector's get_procedures reads it).
CREATE OR REPLACE VIEW zetl_redshift.pg_proc_info AS
SELECT p.oid AS prooid, p.* FROM pg_proc p;

-- Spectrum and datashares are not emulated: the views exist, empty, so clients that read them
-- (dbt-redshift's columns query reads svv_external_columns) work.
CREATE OR REPLACE VIEW zetl_redshift.svv_external_schemas AS
SELECT NULL::oid AS esoid, NULL::int AS eskind, NULL::name AS schemaname, NULL::int AS esowner,
       NULL::text AS databasename, NULL::text AS esoptions WHERE false;
CREATE OR REPLACE VIEW zetl_redshift.svv_external_tables AS
SELECT NULL::text AS redshift_database_name, NULL::name AS schemaname, NULL::name AS tablename,
       NULL::text AS location, NULL::text AS input_format, NULL::text AS output_format,
       NULL::text AS serialization_lib, NULL::text AS serde_parameters, NULL::int AS compressed,
       NULL::text AS parameters, NULL::text AS tabletype WHERE false;
CREATE OR REPLACE VIEW zetl_redshift.svv_external_columns AS
SELECT NULL::text AS redshift_database_name, NULL::name AS schemaname, NULL::name AS tablename,
       NULL::name AS columnname, NULL::text AS external_type, NULL::int AS columnnum,
       NULL::int AS part_key, NULL::text AS is_nullable WHERE false;
CREATE OR REPLACE VIEW zetl_redshift.svv_datashares AS
SELECT NULL::varchar(128) AS share_name, NULL::int AS share_id, NULL::varchar(128) AS share_owner,
       NULL::varchar(128) AS source_database, NULL::varchar(128) AS consumer_database,
       NULL::varchar(8) AS share_type, NULL::timestamp AS createdate,
       NULL::boolean AS is_publicaccessible, NULL::varchar(256) AS share_acl,
       NULL::varchar(16) AS producer_account, NULL::varchar(64) AS producer_namespace,
       NULL::varchar(64) AS managed_by WHERE false;

GRANT SELECT ON ALL TABLES IN SCHEMA zetl_redshift TO PUBLIC;
