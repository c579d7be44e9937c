--
-- 010_catalog_dependencies: nothing of the extension depends on an operator, function, cast or
-- type outside pg_catalog and the extension itself, so no object another role creates in a
-- schema on a search_path can be bound into its views, defaults, constraints or functions
-- (CONTRIBUTING.md's hardening rule). The check is shown to catch a planted operator first.
--
CREATE EXTENSION s3scan_jobs;

-- Every object that belongs to the extension, or to one of its members (the rules of its views,
-- column defaults, constraints, triggers, indexes), and every operator, function, cast or type
-- it depends on, with that dependency's schema.
CREATE FUNCTION pg_temp.foreign_dependencies(ext name)
RETURNS TABLE (dependent text, depends_on text, in_schema name) LANGUAGE sql AS $$
    WITH RECURSIVE members(classid, objid) AS (
        SELECT d.classid, d.objid FROM pg_depend d
        WHERE d.refclassid = 'pg_extension'::regclass
          AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = ext) AND d.deptype = 'e'
        UNION
        SELECT d.classid, d.objid FROM pg_depend d JOIN members m
          ON d.refclassid = m.classid AND d.refobjid = m.objid
        WHERE d.deptype IN ('n', 'a', 'i')
          AND d.classid IN ('pg_rewrite'::regclass, 'pg_attrdef'::regclass, 'pg_constraint'::regclass,
                            'pg_trigger'::regclass, 'pg_class'::regclass, 'pg_type'::regclass)
    ),
    deps AS (
        SELECT DISTINCT m.classid, m.objid, d.refclassid, d.refobjid
        FROM members m JOIN pg_depend d ON d.classid = m.classid AND d.objid = m.objid
        WHERE d.refclassid IN ('pg_operator'::regclass, 'pg_proc'::regclass, 'pg_cast'::regclass,
                               'pg_type'::regclass)
    ),
    placed AS (
        SELECT x.*, CASE x.refclassid
            WHEN 'pg_operator'::regclass THEN (SELECT oprnamespace FROM pg_operator WHERE oid = x.refobjid)
            WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = x.refobjid)
            WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = x.refobjid)
            WHEN 'pg_cast'::regclass THEN (SELECT p.pronamespace FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc
                                           WHERE c.oid = x.refobjid)
            END AS nsp
        FROM deps x
    )
    SELECT pg_describe_object(p.classid, p.objid, 0), pg_describe_object(p.refclassid, p.refobjid, 0), n.nspname
    FROM placed p JOIN pg_namespace n ON n.oid = p.nsp
    WHERE n.nspname <> 'pg_catalog'
      -- the extension's own objects
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = p.refclassid AND m.objid = p.refobjid)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = p.refclassid AND d.objid = p.refobjid
                        AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
                        AND EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_class'::regclass
                                                              AND m.objid = d.refobjid))
    ORDER BY 1, 2
$$;

-- It catches them: an operator, functions and a type planted in public, bound into a view, a
-- column default, a column type, a check constraint and a trigger of a view and a table that
-- are made members of the extension for the moment of the check.
CREATE FUNCTION public.planted_mul(bigint, numeric) RETURNS numeric LANGUAGE sql
    AS 'SELECT $1::numeric OPERATOR(pg_catalog.*) $2';
CREATE OPERATOR public.* (LEFTARG = bigint, RIGHTARG = numeric, FUNCTION = public.planted_mul);
CREATE FUNCTION public.planted_default() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
CREATE FUNCTION public.planted_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE DOMAIN public.planted_text AS text;
CREATE VIEW public.captured_view AS SELECT total_objects * 100.0 AS x FROM job_progress;
CREATE TABLE public.captured_table (
    a bigint DEFAULT planted_default(),
    b planted_text,
    CONSTRAINT captured_check CHECK (a * 1.0 > 0));
CREATE TRIGGER captured_trigger BEFORE INSERT ON public.captured_table
    FOR EACH ROW EXECUTE FUNCTION planted_trigger();
ALTER EXTENSION s3scan_jobs ADD VIEW public.captured_view;
ALTER EXTENSION s3scan_jobs ADD TABLE public.captured_table;
SELECT * FROM pg_temp.foreign_dependencies('s3scan_jobs');
ALTER EXTENSION s3scan_jobs DROP VIEW public.captured_view;
ALTER EXTENSION s3scan_jobs DROP TABLE public.captured_table;
DROP VIEW public.captured_view;
DROP TABLE public.captured_table;

-- The extension itself: none, though the planted operator is still there (CREATE EXTENSION
-- again, with it in place, binds nothing to it).
DROP EXTENSION s3scan_jobs;
CREATE EXTENSION s3scan_jobs;
SELECT * FROM pg_temp.foreign_dependencies('s3scan_jobs');
-- (pg_depend records no dependency on pg_catalog's own objects, which are pinned: a
-- dependency shown here is one on an object someone created.)

-- Every function pins search_path but the seven documented exceptions (the updated_at trigger,
-- the two REFRESH event triggers, the two counter triggers, the two table DDL event triggers),
-- and every SECURITY DEFINER function pins it.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 's3scan_jobs') AND d.deptype = 'e'
  AND (p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp'] OR p.prosecdef)
ORDER BY 1;

-- (the extension first: were anything of it bound to the planted objects, they could still go)
DROP EXTENSION s3scan_jobs;
DROP OPERATOR public.* (bigint, numeric);
DROP FUNCTION public.planted_mul(bigint, numeric);
DROP FUNCTION public.planted_default();
DROP FUNCTION public.planted_trigger();
DROP DOMAIN public.planted_text;
