-- s3scan_jobs_migrate.sql: moves a database built by the S3 scanner system's own schema file and
-- its two migrations (the state of existing-deployment.sql, with its data) onto the extension
-- s3scan_jobs, in place and in one transaction: every job, object and finding (finding ids kept),
-- the rights roles had, and nothing dropped that the extension's constraints refuse (those rows are
-- kept in schema s3scan_migration, and counted).
--
-- Run it as a superuser, with psql, on the database to migrate:
--
--   psql -v ON_ERROR_STOP=1 -d scans -f "$(pg_config --sharedir)/extension/s3scan_jobs_migrate.sql"
--   (-v schema=other for a deployment in another schema than public; -v status_index=off to drop
--   the system's (job_id, status) index instead of keeping it: see step 4)
--
-- It refuses, changing nothing, when the database is not in that state (the extension already
-- there, a table or column missing or unknown, another object depending on the old ones). Any
-- error rolls everything back. Writers and readers of the scanner's tables wait for it to commit.
--
-- Like the extension's own scripts, it follows CONTRIBUTING.md's hardening rule: the schema it works
-- in belongs to another role, so every operator and function is qualified and every name quoted.

\set ON_ERROR_STOP 1
\if :{?schema}
\else
\set schema public
\endif
\if :{?status_index}
\else
\set status_index on
\endif

BEGIN;
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL client_min_messages = notice;

CREATE TEMP TABLE s3scan_migrate_target ON COMMIT DROP AS
SELECT pg_catalog.quote_ident(:'schema'::text) AS schema_ident, :'schema'::text AS schema_name,
       :'status_index'::boolean AS status_index;

-- 1. Is this the scanner's database, and only that? -----------------------------------------------
DO $check$
DECLARE
    target text := (SELECT schema_name FROM s3scan_migrate_target);
    nsp oid := (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) target);
    problem text;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'the migration must be run by a superuser'
            USING ERRCODE = '42501', HINT = 'CREATE EXTENSION s3scan_jobs needs one.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 's3scan_jobs') THEN
        RAISE EXCEPTION 'the extension s3scan_jobs is already installed in this database: nothing to migrate'
            USING ERRCODE = '55000';
    END IF;
    IF nsp IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', target USING ERRCODE = '3F000';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 's3scan_migration') THEN
        RAISE EXCEPTION 'schema "s3scan_migration" already exists'
            USING ERRCODE = '42P06', HINT = 'It holds what an earlier migration kept aside; rename or drop it first.';
    END IF;

    -- The tables and their columns, exactly (name and type; order does not matter).
    WITH expected(relname, attname, typname) AS (VALUES
        ('jobs', 'job_id', 'uuid'), ('jobs', 'bucket', 'text'), ('jobs', 'prefix', 'text'),
        ('jobs', 'execution_arn', 'text'), ('jobs', 'created_at', 'timestamp with time zone'),
        ('jobs', 'updated_at', 'timestamp with time zone'),
        ('job_objects', 'job_id', 'uuid'), ('job_objects', 'bucket', 'text'), ('job_objects', 'key', 'text'),
        ('job_objects', 'etag', 'text'), ('job_objects', 'status', 'text'), ('job_objects', 'last_error', 'text'),
        ('job_objects', 'updated_at', 'timestamp with time zone'),
        ('findings', 'id', 'bigint'), ('findings', 'job_id', 'uuid'), ('findings', 'bucket', 'text'),
        ('findings', 'key', 'text'), ('findings', 'etag', 'text'), ('findings', 'detector', 'text'),
        ('findings', 'masked_match', 'text'), ('findings', 'context', 'text'), ('findings', 'byte_offset', 'integer'),
        ('findings', 'created_at', 'timestamp with time zone'),
        ('materialized_view_refresh_log', 'view_name', 'text'),
        ('materialized_view_refresh_log', 'last_refreshed_at', 'timestamp with time zone'),
        ('materialized_view_refresh_log', 'refresh_duration_ms', 'integer'),
        ('materialized_view_refresh_log', 'total_jobs', 'integer'),
        ('materialized_view_refresh_log', 'total_objects', 'bigint')),
    tables AS (SELECT DISTINCT e.relname FROM expected e),
    actual AS (
        SELECT c.relname::text AS relname, a.attname::text AS attname,
               pg_catalog.format_type(a.atttypid, a.atttypmod) AS typname
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
        WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp AND c.relkind OPERATOR(pg_catalog.=) 'r'
          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
          AND c.relname::text OPERATOR(pg_catalog.=) ANY (SELECT t.relname FROM tables t))
    SELECT pg_catalog.string_agg(p, '; ' ORDER BY p) INTO problem FROM (
        SELECT pg_catalog.format('table %s.%s is missing', target, t.relname) AS p
        FROM tables t
        WHERE NOT EXISTS (SELECT FROM actual a WHERE a.relname OPERATOR(pg_catalog.=) t.relname)
        UNION ALL
        SELECT pg_catalog.format('column %s.%s is missing', e.relname, e.attname)
        FROM expected e
        WHERE EXISTS (SELECT FROM actual a WHERE a.relname OPERATOR(pg_catalog.=) e.relname)
          AND NOT EXISTS (SELECT FROM actual a WHERE a.relname OPERATOR(pg_catalog.=) e.relname
                                                 AND a.attname OPERATOR(pg_catalog.=) e.attname)
        UNION ALL
        SELECT pg_catalog.format('column %s.%s is %s, not %s', e.relname, e.attname, a.typname, e.typname)
        FROM expected e JOIN actual a ON a.relname OPERATOR(pg_catalog.=) e.relname
                                     AND a.attname OPERATOR(pg_catalog.=) e.attname
        WHERE a.typname OPERATOR(pg_catalog.<>) e.typname
        UNION ALL
        SELECT pg_catalog.format('column %s.%s is unknown', a.relname, a.attname)
        FROM actual a
        WHERE NOT EXISTS (SELECT FROM expected e WHERE e.relname OPERATOR(pg_catalog.=) a.relname
                                                   AND e.attname OPERATOR(pg_catalog.=) a.attname)
        UNION ALL
        SELECT pg_catalog.format('%s.job_progress is not the system''s materialized view', target)
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                          WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
                            AND c.relname OPERATOR(pg_catalog.=) 'job_progress'
                            AND c.relkind OPERATOR(pg_catalog.=) 'm')) problems;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'this database is not in the state the migration starts from'
            USING ERRCODE = '55000', DETAIL = problem OPERATOR(pg_catalog.||) '.',
                  HINT = 'The migration starts from the S3 scanner''s own schema (existing-deployment.sql) with its data.';
    END IF;

    -- Names the extension creates, other than the system objects the migration replaces.
    SELECT pg_catalog.string_agg(pg_catalog.format('%s.%s', target, c.relname), ', ') INTO problem
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
      AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['job_progress_live', 'refresh_history',
          'refresh_worker_status', 'job_status_result', 'refresh_result', 'job_objects_id_seq',
          'refresh_history_id_seq']);
    IF problem IS NULL THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%s.%s()', target, p.proname), ', ') INTO problem
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp
          AND p.proname::text OPERATOR(pg_catalog.=) ANY (ARRAY['job_status', 'touch_updated_at',
              'on_refresh_command_start', 'on_refresh_command_end', 'refresh_worker_start',
              'refresh_worker_stop', 'refresh_worker_status_all']);
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'objects with the names the extension creates already exist: %', problem
            USING ERRCODE = '42710';
    END IF;

    -- Nothing else may depend on what is replaced: it would be dropped or broken silently.
    WITH replaced AS (
        SELECT c.oid FROM pg_catalog.pg_class c
        WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
          AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings',
              'materialized_view_refresh_log', 'job_summary', 'job_progress', 'active_jobs_progress',
              'job_statistics']))
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%s (depends on %s)',
               pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
               pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)), '; ')
    INTO problem
    FROM pg_catalog.pg_depend d
    LEFT JOIN pg_catalog.pg_rewrite r ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                     AND r.oid OPERATOR(pg_catalog.=) d.objid
    LEFT JOIN pg_catalog.pg_constraint k ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass
                                        AND k.oid OPERATOR(pg_catalog.=) d.objid
    WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM replaced)
      AND d.deptype OPERATOR(pg_catalog.=) 'n'
      -- the old tables' own constraints go with them; another table's foreign key does not
      AND NOT (k.conrelid IS NOT NULL AND k.conrelid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM replaced))
      AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_trigger'::pg_catalog.regclass
      AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
      AND NOT (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.objid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM replaced))
      AND NOT (r.ev_class IS NOT NULL AND r.ev_class OPERATOR(pg_catalog.=) ANY (SELECT oid FROM replaced));
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'other objects depend on the tables and views the migration replaces'
            USING ERRCODE = '2BP01', DETAIL = problem OPERATOR(pg_catalog.||) '.',
                  HINT = 'Drop them first (and create them again after the migration).';
    END IF;

    -- What someone added to the old tables would go with them: triggers, policies, indexes.
    SELECT pg_catalog.string_agg(x, '; ' ORDER BY x) INTO problem FROM (
        SELECT pg_catalog.format('trigger %s on %s', t.tgname, t.tgrelid::pg_catalog.regclass) AS x
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
        WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp AND NOT t.tgisinternal
          AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings', 'materialized_view_refresh_log'])
          AND t.tgname::text OPERATOR(pg_catalog.<>) ALL (ARRAY['update_jobs_updated_at', 'update_job_objects_updated_at'])
        UNION ALL
        SELECT pg_catalog.format('policy %s on %s', p.polname, p.polrelid::pg_catalog.regclass)
        FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
        WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
          AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings', 'materialized_view_refresh_log'])
        UNION ALL
        SELECT pg_catalog.format('index %s on %s', i.indexrelid::pg_catalog.regclass, i.indrelid::pg_catalog.regclass)
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
        JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
        WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
          AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings', 'materialized_view_refresh_log'])
          AND ic.relname::text OPERATOR(pg_catalog.<>) ALL (ARRAY['jobs_pkey', 'idx_jobs_created_at',
              'idx_jobs_execution_arn', 'job_objects_pkey', 'idx_job_objects_job_id', 'idx_job_objects_status',
              'idx_job_objects_bucket_key', 'idx_job_objects_job_status', 'idx_job_objects_job_updated',
              'idx_job_objects_bucket_key_composite', 'findings_pkey', 'findings_bucket_key_etag_detector_byte_offset_key',
              'idx_findings_job_id', 'idx_findings_bucket_key', 'idx_findings_detector', 'idx_findings_created_at',
              'idx_findings_dedup', 'idx_findings_job_detector', 'materialized_view_refresh_log_pkey'])) added;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'the old tables have objects the migration does not know, which it would drop'
            USING ERRCODE = '55000', DETAIL = problem OPERATOR(pg_catalog.||) '.',
                  HINT = 'Drop them first (and create them again on the extension''s tables after the migration).';
    END IF;
END
$check$;

-- 2. The rights roles have on what is replaced, before it goes (the owner's own rights included,
--    since the extension's objects will belong to the superuser who creates it).
CREATE TEMP TABLE s3scan_migrate_grants ON COMMIT DROP AS
-- (the owner's own rights come with grant options, which aclexplode does not show)
SELECT c.relname::text AS object, NULL::text AS column_name, a.grantee, a.privilege_type,
       a.is_grantable OR a.grantee OPERATOR(pg_catalog.=) c.relowner AS is_grantable
FROM pg_catalog.pg_class c
CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault(
    CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner))) a
WHERE c.relnamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n, s3scan_migrate_target t
                                             WHERE n.nspname OPERATOR(pg_catalog.=) t.schema_name)
  AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings', 'findings_id_seq',
      'materialized_view_refresh_log', 'job_summary', 'job_progress', 'active_jobs_progress', 'job_statistics'])
UNION ALL
-- column-level grants
SELECT c.relname::text, t.attname::text, a.grantee, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute t ON t.attrelid OPERATOR(pg_catalog.=) c.oid
CROSS JOIN LATERAL pg_catalog.aclexplode(t.attacl) a
WHERE t.attacl IS NOT NULL AND t.attnum OPERATOR(pg_catalog.>) 0 AND NOT t.attisdropped
  AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n, s3scan_migrate_target x
                                             WHERE n.nspname OPERATOR(pg_catalog.=) x.schema_name)
  AND c.relname::text OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings',
      'materialized_view_refresh_log', 'job_summary', 'job_progress', 'active_jobs_progress', 'job_statistics'])
UNION ALL
SELECT 'refresh_job_progress()', NULL, a.grantee, a.privilege_type,
       a.is_grantable OR a.grantee OPERATOR(pg_catalog.=) p.proowner
FROM pg_catalog.pg_proc p
CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f'::"char", p.proowner))) a
WHERE p.pronamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n, s3scan_migrate_target t
                                             WHERE n.nspname OPERATOR(pg_catalog.=) t.schema_name)
  AND p.proname OPERATOR(pg_catalog.=) 'refresh_job_progress' AND p.pronargs OPERATOR(pg_catalog.=) 0;

-- 3. Move the old tables aside, drop the old views and function, create the extension. From here
--    on every reader and writer of the scanner's tables waits for this transaction.
CREATE SCHEMA s3scan_migration;
COMMENT ON SCHEMA s3scan_migration IS
    'rows s3scan_jobs_migrate.sql could not move into the extension''s tables, kept as they were';
DO $aside$
DECLARE
    target text := (SELECT schema_ident FROM s3scan_migrate_target);
BEGIN
    -- The views before the tables: a reader of a view holds the view while it waits for the tables,
    -- so locking the tables first would deadlock with it at DROP VIEW.
    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', (
        SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I', target, v.name), ', ' ORDER BY v.n)
        FROM (VALUES (1, 'job_statistics'), (2, 'active_jobs_progress'), (3, 'job_summary'), (4, 'jobs'),
                     (5, 'job_objects'), (6, 'findings'), (7, 'materialized_view_refresh_log')) v(n, name)
        WHERE pg_catalog.to_regclass(pg_catalog.format('%s.%I', target, v.name)) IS NOT NULL));
    EXECUTE pg_catalog.format('DROP VIEW IF EXISTS %1$s.job_statistics, %1$s.active_jobs_progress, %1$s.job_summary', target);
    EXECUTE pg_catalog.format('DROP MATERIALIZED VIEW %s.job_progress', target);
    EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s.refresh_job_progress()', target);
    EXECUTE pg_catalog.format('ALTER TABLE %s.jobs SET SCHEMA s3scan_migration', target);
    EXECUTE pg_catalog.format('ALTER TABLE %s.job_objects SET SCHEMA s3scan_migration', target);
    EXECUTE pg_catalog.format('ALTER TABLE %s.findings SET SCHEMA s3scan_migration', target);
    EXECUTE pg_catalog.format('ALTER TABLE %s.materialized_view_refresh_log SET SCHEMA s3scan_migration', target);
    EXECUTE pg_catalog.format('CREATE EXTENSION s3scan_jobs SCHEMA %s', target);
END
$aside$;

-- 4. The rows. The filters here check what the foreign keys would, so the copy runs with
--    session_replication_role = replica, without a trigger call per row (the extension's updated_at
--    trigger fires on UPDATE only anyway). The counters are off during the copy (under the replica
--    role their row-level triggers would count every row, one delta row each) and are built after
--    it by one recount, in this transaction.
CREATE TABLE s3scan_migration.rejected_jobs (reason text NOT NULL, LIKE s3scan_migration.jobs);
CREATE TABLE s3scan_migration.rejected_job_objects (reason text NOT NULL, LIKE s3scan_migration.job_objects);
CREATE TABLE s3scan_migration.rejected_findings (reason text NOT NULL, LIKE s3scan_migration.findings);
DO $copy$
DECLARE
    target text := (SELECT schema_ident FROM s3scan_migrate_target);
    n bigint;
BEGIN
    EXECUTE pg_catalog.format('SELECT %s.set_counter_maintenance(false)', target);
    SET LOCAL session_replication_role = replica;

    INSERT INTO s3scan_migration.rejected_jobs
    SELECT 'created_at or updated_at is null', j.* FROM s3scan_migration.jobs j
    WHERE j.created_at IS NULL OR j.updated_at IS NULL;
    EXECUTE pg_catalog.format(
        'INSERT INTO %s.jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) '
        'SELECT j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at '
        'FROM s3scan_migration.jobs j WHERE j.created_at IS NOT NULL AND j.updated_at IS NOT NULL', target);

    EXECUTE pg_catalog.format(
        'INSERT INTO s3scan_migration.rejected_job_objects '
        'SELECT CASE WHEN o.updated_at IS NULL THEN ''updated_at is null'' ELSE ''its job was rejected'' END, o.* '
        'FROM s3scan_migration.job_objects o WHERE o.updated_at IS NULL '
        'OR NOT EXISTS (SELECT FROM %s.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) o.job_id)', target);
    EXECUTE pg_catalog.format(
        'INSERT INTO %1$s.job_objects (job_id, bucket, key, etag, status, last_error, updated_at) '
        'SELECT o.job_id, o.bucket, o.key, o.etag, o.status, o.last_error, o.updated_at '
        'FROM s3scan_migration.job_objects o WHERE o.updated_at IS NOT NULL '
        'AND EXISTS (SELECT FROM %1$s.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) o.job_id)', target);

    -- Findings: the old table had no foreign key (findings of deleted jobs stayed), and its
    -- de-duplication key let rows with a null etag repeat (the extension's treats nulls as equal).
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE s3scan_migrate_finding_fate ON COMMIT DROP AS '
        'SELECT f.id, CASE '
        'WHEN NOT f.job_moved AND f.job_id OPERATOR(pg_catalog.=) ANY (SELECT r.job_id FROM s3scan_migration.rejected_jobs r) '
        'THEN ''its job was rejected'' '
        'WHEN NOT f.job_moved THEN ''its job does not exist'' '
        'WHEN f.created_at IS NULL THEN ''created_at is null'' '
        -- the lowest id among the findings that move otherwise (nulls equal, as the new key has it)
        'WHEN f.id OPERATOR(pg_catalog.<>) pg_catalog.min(f.id) FILTER (WHERE f.job_moved AND f.created_at IS NOT NULL) '
        'OVER (PARTITION BY f.bucket, f.key, f.etag, f.detector, f.byte_offset) '
        'THEN ''a duplicate of a finding with a lower id'' END AS reason '
        'FROM (SELECT g.*, EXISTS (SELECT FROM %s.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) g.job_id) AS job_moved '
        '      FROM s3scan_migration.findings g) f', target);
    INSERT INTO s3scan_migration.rejected_findings
    SELECT x.reason, f.* FROM s3scan_migration.findings f
    JOIN s3scan_migrate_finding_fate x ON x.id OPERATOR(pg_catalog.=) f.id WHERE x.reason IS NOT NULL;
    EXECUTE pg_catalog.format(
        'INSERT INTO %s.findings (id, job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) '
        'SELECT f.id, f.job_id, f.bucket, f.key, f.etag, f.detector, f.masked_match, f.context, f.byte_offset, f.created_at '
        'FROM s3scan_migration.findings f JOIN s3scan_migrate_finding_fate x ON x.id OPERATOR(pg_catalog.=) f.id '
        'WHERE x.reason IS NULL', target);
    -- New findings continue past every id the old table handed out (rejected ones included).
    SELECT pg_catalog.max(f.id) INTO n FROM s3scan_migration.findings f;
    IF n IS NOT NULL THEN
        PERFORM pg_catalog.setval(pg_catalog.format('%s.findings_id_seq', target)::pg_catalog.regclass, n, true);
    END IF;

    -- Other views' rows of the refresh log; the extension keeps job_progress's own.
    EXECUTE pg_catalog.format(
        'INSERT INTO %s.materialized_view_refresh_log SELECT l.* FROM s3scan_migration.materialized_view_refresh_log l '
        'WHERE l.view_name OPERATOR(pg_catalog.<>) ''job_progress''', target);

    SET LOCAL session_replication_role = origin;
    EXECUTE pg_catalog.format('SELECT %s.set_counter_maintenance(true)', target);

    -- The system's (job_id, status) index, kept unless -v status_index=off: the API's own real-time
    -- read (SELECT status, count(*) FROM job_objects WHERE job_id = $1 GROUP BY status) is an
    -- index-only scan of it, and without it reads every object of the job (15x slower at 1M
    -- objects). It makes every status UPDATE write all of the table's indexes (not HOT): about 9%
    -- fewer UPDATEs per second than without it (test/bench/results/*-write-parts.md), which this
    -- database already pays today, with more indexes. Not part of the extension: pg_dump does not dump it (see the
    -- README, "Moving an existing scanner database"). Built after the copy, in one pass.
    IF (SELECT t.status_index FROM s3scan_migrate_target t) THEN
        EXECUTE pg_catalog.format('CREATE INDEX idx_job_objects_job_status ON %s.job_objects (job_id, status)', target);
    END IF;
END
$copy$;

-- 5. The rights roles had, on the objects that replace the old ones.
DO $grants$
DECLARE
    target text := (SELECT schema_ident FROM s3scan_migrate_target);
    g record;
BEGIN
    FOR g IN
        SELECT x.object, x.column_name, x.privilege_type, x.is_grantable,
               CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(r.rolname::text) END AS grantee_sql
        FROM s3scan_migrate_grants x
        LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) x.grantee
        -- The old refresh_job_progress() was executable by PUBLIC, but it ran REFRESH as its
        -- caller, so only the view's owner (and superusers) could refresh with it: the owner's
        -- right carries over, PUBLIC's does not (the new one refreshes for whoever may call it).
        WHERE NOT (x.object OPERATOR(pg_catalog.=) 'refresh_job_progress()'
                   AND x.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid)
    LOOP
        EXECUTE pg_catalog.format('GRANT %s%s ON %s %s.%s TO %s%s', g.privilege_type,
            CASE WHEN g.column_name IS NULL THEN '' ELSE pg_catalog.format(' (%I)', g.column_name) END,
            CASE WHEN g.object OPERATOR(pg_catalog.=) 'refresh_job_progress()' THEN 'FUNCTION'
                 WHEN g.object OPERATOR(pg_catalog.=) 'findings_id_seq' THEN 'SEQUENCE' ELSE 'TABLE' END,
            target, g.object, g.grantee_sql, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        -- Inserting into job_objects now takes ids from its sequence.
        IF g.object OPERATOR(pg_catalog.=) 'job_objects' AND g.privilege_type OPERATOR(pg_catalog.=) 'INSERT' THEN
            EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s.job_objects_id_seq TO %s', target, g.grantee_sql);
        END IF;
    END LOOP;
    -- A role that could read all three tables could count a job's objects itself; the extension's
    -- real-time answer, job_status(id, true), reads job_progress_live: it may read that view.
    FOR g IN
        SELECT CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(r.rolname::text) END AS grantee_sql
        FROM s3scan_migrate_grants x
        LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) x.grantee
        WHERE x.object OPERATOR(pg_catalog.=) ANY (ARRAY['jobs', 'job_objects', 'findings'])
          AND x.privilege_type OPERATOR(pg_catalog.=) 'SELECT' AND x.column_name IS NULL
        GROUP BY x.grantee, r.rolname
        HAVING pg_catalog.count(DISTINCT x.object) OPERATOR(pg_catalog.=) 3::bigint
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s.job_progress_live TO %s', target, g.grantee_sql);
    END LOOP;
END
$grants$;

-- 6. The old tables go; the rows the extension refused stay in s3scan_migration; the cache is
--    refreshed from the moved rows; and the command says what it did.
DROP TABLE s3scan_migration.findings, s3scan_migration.job_objects, s3scan_migration.jobs,
           s3scan_migration.materialized_view_refresh_log;
DO $finish$
DECLARE
    target text := (SELECT schema_ident FROM s3scan_migrate_target);
    trigger_function oid;
    moved record;
    rejected record;
    refreshed text;
BEGIN
    -- The system's updated_at trigger function, unless something else still uses it.
    SELECT p.oid INTO trigger_function FROM pg_catalog.pg_proc p
    WHERE p.pronamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n, s3scan_migrate_target t
                                                 WHERE n.nspname OPERATOR(pg_catalog.=) t.schema_name)
      AND p.proname OPERATOR(pg_catalog.=) 'update_updated_at_column' AND p.pronargs OPERATOR(pg_catalog.=) 0;
    IF trigger_function IS NOT NULL AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_depend d
            WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
              AND d.refobjid OPERATOR(pg_catalog.=) trigger_function) THEN
        EXECUTE pg_catalog.format('DROP FUNCTION %s.update_updated_at_column()', target);
    END IF;

    EXECUTE pg_catalog.format('SELECT r.outcome FROM %s.refresh_job_progress() r', target) INTO refreshed;
    IF refreshed OPERATOR(pg_catalog.<>) 'refreshed' THEN
        RAISE EXCEPTION 'the refresh of job_progress after the copy did not succeed: %', refreshed;
    END IF;

    EXECUTE pg_catalog.format('SELECT (SELECT pg_catalog.count(*) FROM %1$s.jobs) AS jobs, '
                              '(SELECT pg_catalog.count(*) FROM %1$s.job_objects) AS objects, '
                              '(SELECT pg_catalog.count(*) FROM %1$s.findings) AS findings', target) INTO moved;
    SELECT (SELECT pg_catalog.count(*) FROM s3scan_migration.rejected_jobs) AS jobs,
           (SELECT pg_catalog.count(*) FROM s3scan_migration.rejected_job_objects) AS objects,
           (SELECT pg_catalog.count(*) FROM s3scan_migration.rejected_findings) AS findings INTO rejected;
    RAISE NOTICE 's3scan_jobs migration: moved % jobs, % objects, % findings; kept aside % jobs, % objects, % findings',
        moved.jobs, moved.objects, moved.findings, rejected.jobs, rejected.objects, rejected.findings;
    IF rejected.jobs OPERATOR(pg_catalog.+) rejected.objects OPERATOR(pg_catalog.+) rejected.findings
       OPERATOR(pg_catalog.=) 0::bigint THEN
        DROP TABLE s3scan_migration.rejected_jobs, s3scan_migration.rejected_job_objects,
                   s3scan_migration.rejected_findings;
        DROP SCHEMA s3scan_migration;
    ELSE
        RAISE NOTICE 'rows the extension''s constraints refuse are in s3scan_migration.rejected_jobs, '
                     'rejected_job_objects and rejected_findings, each with its reason';
    END IF;
END
$finish$;

COMMIT;
