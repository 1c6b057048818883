-- Redshift functions PostgreSQL lacks (or defines for other types), as the translator calls them:
-- zetl_redshift.<name>(...). Each follows the Redshift SQL reference page of the same name.
CREATE SCHEMA IF NOT EXISTS zetl_redshift;
GRANT USAGE ON SCHEMA zetl_redshift TO PUBLIC;

-- TRUNC(timestamp) is the date; TRUNC(number) truncates toward zero (r_TRUNC.html).
CREATE OR REPLACE FUNCTION zetl_redshift.trunc(ts timestamp) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN ts::date;
CREATE OR REPLACE FUNCTION zetl_redshift.trunc(ts timestamptz) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE RETURN ts::date;
CREATE OR REPLACE FUNCTION zetl_redshift.trunc(n numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN pg_catalog.trunc(n);
CREATE OR REPLACE FUNCTION zetl_redshift.trunc(n double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN pg_catalog.trunc(n);

-- CONVERT_TIMEZONE([source,] target, ts): a timestamp is read in the source zone (UTC when
-- none is given); a timestamptz is an instant, shown in the target zone (CONVERT_TIMEZONE.html).
CREATE OR REPLACE FUNCTION zetl_redshift.convert_timezone(source text, target text, ts timestamp)
    RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    (ts AT TIME ZONE source) AT TIME ZONE target;
CREATE OR REPLACE FUNCTION zetl_redshift.convert_timezone(source text, target text, ts timestamptz)
    RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN ts AT TIME ZONE target;
CREATE OR REPLACE FUNCTION zetl_redshift.convert_timezone(source text, target text, ts date)
    RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    (ts::timestamp AT TIME ZONE source) AT TIME ZONE target;

-- ADD_MONTHS: the last day of a month stays the last day (r_ADD_MONTHS.html), unlike
-- PostgreSQL's interval arithmetic ('2008-02-29' + 1 month is '2008-03-29' there).
CREATE OR REPLACE FUNCTION zetl_redshift.add_months(ts timestamp, months bigint) RETURNS timestamp
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE WHEN ts::date = (date_trunc('month', ts) + interval '1 month - 1 day')::date
        THEN date_trunc('month', ts + make_interval(months => months::int))
             + interval '1 month - 1 day' + (ts - date_trunc('day', ts))
        ELSE ts + make_interval(months => months::int)
    END;

-- MONTHS_BETWEEN: whole months when both dates fall on the same day of the month or both on
-- the last day; otherwise the days count in 31sts of a month (r_MONTHS_BETWEEN_function.html).
CREATE OR REPLACE FUNCTION zetl_redshift.months_between(a timestamp, b timestamp)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE WHEN extract(day FROM a) = extract(day FROM b)
          OR (a::date = (date_trunc('month', a) + interval '1 month - 1 day')::date
              AND b::date = (date_trunc('month', b) + interval '1 month - 1 day')::date)
        THEN ((extract(year FROM a) - extract(year FROM b)) * 12
              + extract(month FROM a) - extract(month FROM b))::double precision
        ELSE ((extract(year FROM a) - extract(year FROM b)) * 12
              + extract(month FROM a) - extract(month FROM b)
              + (extract(day FROM a) - extract(day FROM b)) / 31.0
              + (extract(epoch FROM a - date_trunc('day', a))
                 - extract(epoch FROM b - date_trunc('day', b))) / (31.0 * 86400))::double precision
    END;

-- STRTOL(string, base): a number in base 2..36 to bigint (r_STRTOL.html).
CREATE OR REPLACE FUNCTION zetl_redshift.strtol(num text, base integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN (
        SELECT CASE WHEN left(trim(num), 1) = '-' THEN -1 ELSE 1 END
             * sum((strpos('0123456789abcdefghijklmnopqrstuvwxyz', d) - 1)::numeric
                   * power(base::numeric, length(digits) - i))::bigint
        FROM (SELECT CASE WHEN base = 16 THEN regexp_replace(ltrim(lower(trim(num)), '+-'), '^0x', '')
                          ELSE ltrim(lower(trim(num)), '+-') END AS digits) s,
             LATERAL regexp_split_to_table(digits, '')
                 WITH ORDINALITY AS c(d, i)
    );

-- IS_VALID_JSON is true for a JSON object or array text; IS_VALID_JSON_ARRAY only for an
-- array (IS_VALID_JSON.html, IS_VALID_JSON_ARRAY.html).
CREATE OR REPLACE FUNCTION zetl_redshift.is_valid_json(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN value IS JSON OBJECT OR value IS JSON ARRAY;
CREATE OR REPLACE FUNCTION zetl_redshift.is_valid_json_array(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN value IS JSON ARRAY;

-- JSON_EXTRACT_PATH_TEXT on a varchar: NULL for a missing path, an error for invalid JSON
-- unless null_if_invalid (JSON_EXTRACT_PATH_TEXT.html).
CREATE OR REPLACE FUNCTION zetl_redshift.json_extract_path_text(
    null_if_invalid boolean, value text, VARIADIC path text[]
) RETURNS varchar LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE WHEN null_if_invalid AND value IS NOT JSON THEN NULL
         ELSE pg_catalog.json_extract_path_text(value::json, VARIADIC path)
    END;

-- JSON_EXTRACT_ARRAY_ELEMENT_TEXT(json, pos [, null_if_invalid]) and JSON_ARRAY_LENGTH.
CREATE OR REPLACE FUNCTION zetl_redshift.json_extract_array_element_text(
    value text, pos integer, null_if_invalid boolean DEFAULT false
) RETURNS varchar LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE WHEN null_if_invalid AND value IS NOT JSON ARRAY THEN NULL
         ELSE value::json ->> pos
    END;
CREATE OR REPLACE FUNCTION zetl_redshift.json_array_length(
    value text, null_if_invalid boolean DEFAULT false
) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE WHEN null_if_invalid AND value IS NOT JSON ARRAY THEN NULL
         ELSE pg_catalog.json_array_length(value::json)
    END;

-- Distribution, sort keys and encodings CREATE TABLE declared (the translator records them;
-- PostgreSQL has no use for them). Keyed by the table's oid: a dropped table's row matches
-- nothing.
CREATE TABLE IF NOT EXISTS zetl_redshift.table_attributes (
    table_oid oid PRIMARY KEY,
    diststyle text,
    distkey text,
    sortkey text[] NOT NULL DEFAULT '{}',
    sortkey_type text,
    encodings jsonb NOT NULL DEFAULT '{}'
);
GRANT SELECT ON zetl_redshift.table_attributes TO PUBLIC;

-- Runs as the catalog's owner: a role records attributes only of a table it owns.
CREATE OR REPLACE FUNCTION zetl_redshift.record_table_attributes(
    tbl regclass, diststyle text, distkey text, sortkey text[], sortkey_type text, encodings jsonb
) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = '42501';
    END IF;
    DELETE FROM zetl_redshift.table_attributes WHERE table_oid = tbl;
    INSERT INTO zetl_redshift.table_attributes VALUES (tbl, diststyle, distkey, sortkey, sortkey_type, encodings);
END $$;
REVOKE ALL ON FUNCTION zetl_redshift.record_table_attributes(regclass, text, text, text[], text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zetl_redshift.record_table_attributes(regclass, text, text, text[], text, jsonb) TO PUBLIC;

-- dbt-redshift reads view columns from information_schema UNION this function's late-binding
-- views. PostgreSQL binds every view, so each one is in information_schema.columns already:
-- no view is late-binding here. (PL/pgSQL: no rows, so any column definition list the caller
-- gives fits; dbt says varchar where redshift_connector says text.)
CREATE OR REPLACE FUNCTION zetl_redshift.pg_get_late_binding_view_cols() RETURNS SETOF record
    LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN; END $$;
