-- s3scan_jobs 1.4 install script: everything a fresh CREATE EXTENSION s3scan_jobs creates, in one
-- file, readable top to bottom.
--
-- PostgreSQL runs this script, and no update script, for CREATE EXTENSION s3scan_jobs (1.4 is the
-- default version). The update scripts (--1.0--1.1 to --1.3--1.4) stay for databases created at
-- an older version; 1.0 + every update must create exactly what this script creates:
-- test/t/017_counters_upgrade_dump.pl compares the two with pg_dump --schema-only --binary-upgrade
-- and the catalogs (definitions, owners, grants, trigger states, storage parameters, comments).
-- So a change goes into both: here, and into a new update script. PL/pgSQL bodies are stored as
-- written: each is character for character the one its last update script defines.
--
-- Who uses what (the COMMENT of every object starts with it; README "What the extension creates"):
-- - for applications (the scanner's API and workers): the tables jobs, job_objects and findings;
--   the views job_summary, job_progress_live, job_progress (the cache), active_jobs_progress and
--   job_statistics; the table materialized_view_refresh_log; job_status() and its row type.
-- - for operators (DBAs): refresh_job_progress() and its row type, refresh_worker_start(),
--   refresh_worker_stop(), the view refresh_worker_status, the table refresh_history, and the
--   counters' upkeep: fold_job_counters(), verify_job_counters(), repair_job_counters(),
--   counter_maintenance(), set_counter_maintenance().
-- - internal to s3scan_jobs: everything else (the counters' tables, the two definitions of a job's
--   counts, trigger and event trigger functions, helpers). Never called or granted by users.
--
-- Rules followed (PostgreSQL's rules for extension scripts, and CONTRIBUTING.md's): no CREATE OR
-- REPLACE and no IF NOT EXISTS; the extension's own objects are qualified with @extschema@; every
-- operator is written OPERATOR(pg_catalog.x) and every function call pg_catalog.f(...), with
-- operands cast explicitly; types that are not keywords are qualified with pg_catalog; every
-- function pins search_path but the trigger and event trigger functions that say why not.
--
-- Sections: the clients' tables; the counters' tables; the views; job_status; refresh; the
-- refresh worker; the counters' upkeep; the guards (event triggers); pg_dump.

\echo Use "CREATE EXTENSION s3scan_jobs" to load this file. \quit

-- The library ------------------------------------------------------------------------------------

-- A server that preloads the library (shared_preload_libraries) keeps the one it started with,
-- and a session that has loaded it keeps it too: installing 1.4's files does not replace it until
-- a restart (or a new session), and this script's C functions would not be found. Say so before
-- anything is created. The probe is a function in the extension's schema, created
-- and dropped at once, not a temporary one: Citus runs this script on its worker nodes in prepared
-- transactions, and PREPARE TRANSACTION refuses a transaction that touched a temporary object.
DO $library$
BEGIN
    CREATE FUNCTION @extschema@.s3scan_jobs_library_probe() RETURNS pg_catalog.event_trigger
        LANGUAGE c AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_end';
    DROP FUNCTION @extschema@.s3scan_jobs_library_probe();
EXCEPTION WHEN undefined_function THEN
    RAISE EXCEPTION 'the s3scan_jobs library loaded in this server is older than version 1.4'
        USING ERRCODE = '55000', DETAIL = SQLERRM,
              HINT = CASE WHEN pg_catalog.strpos(pg_catalog.current_setting('shared_preload_libraries'),
                                                 's3scan_jobs') OPERATOR(pg_catalog.>) 0
                          THEN 'The server preloads it (shared_preload_libraries): restart the server after '
                               'installing s3scan_jobs 1.4, then run CREATE EXTENSION s3scan_jobs again.'
                          ELSE 'This session loaded it before s3scan_jobs 1.4 was installed: run CREATE '
                               'EXTENSION s3scan_jobs in a new session.' END;
END
$library$;

-- The clients' tables ----------------------------------------------------------------------------
-- The scanner's tables, with the names and types its clients already use.

-- One row per scan job.
CREATE TABLE @extschema@.jobs (
    job_id        pg_catalog.uuid PRIMARY KEY,
    bucket        pg_catalog.text NOT NULL,
    prefix        pg_catalog.text DEFAULT '',
    execution_arn pg_catalog.text,
    created_at    pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- The scanner system's own indexes on jobs, kept for the reads that use them.
CREATE INDEX jobs_created_at_idx ON @extschema@.jobs (created_at);
CREATE INDEX jobs_execution_arn_idx ON @extschema@.jobs (execution_arn) WHERE execution_arn IS NOT NULL;
COMMENT ON TABLE @extschema@.jobs IS
    'for applications: one row per scan job; its objects and findings are deleted with it';
COMMENT ON COLUMN @extschema@.jobs.job_id IS
    'the job''s id';
COMMENT ON COLUMN @extschema@.jobs.bucket IS
    'the S3 bucket the job scans';
COMMENT ON COLUMN @extschema@.jobs.prefix IS
    'the key prefix the job scans ('''': the whole bucket)';
COMMENT ON COLUMN @extschema@.jobs.execution_arn IS
    'ARN of the execution that runs the scan, if any';
COMMENT ON COLUMN @extschema@.jobs.created_at IS
    'when the job was created';
COMMENT ON COLUMN @extschema@.jobs.updated_at IS
    'when the job''s row last changed (set by a trigger on every UPDATE)';

-- One row per S3 object of a job, with its scan status.
CREATE TABLE @extschema@.job_objects (
    id         bigserial PRIMARY KEY,
    job_id     pg_catalog.uuid NOT NULL REFERENCES @extschema@.jobs (job_id) ON DELETE CASCADE,
    bucket     pg_catalog.text NOT NULL,
    key        pg_catalog.text NOT NULL,
    etag       pg_catalog.text,
    status     pg_catalog.text NOT NULL DEFAULT 'queued'
               CONSTRAINT job_objects_status_check
               CHECK (status OPERATOR(pg_catalog.=) ANY
                      (ARRAY['queued'::pg_catalog.text, 'processing'::pg_catalog.text,
                             'succeeded'::pg_catalog.text, 'failed'::pg_catalog.text])),
    last_error pg_catalog.text,
    updated_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The natural key; also the index every per-job read of job_objects uses (job_id leads).
    CONSTRAINT job_objects_natural_key UNIQUE NULLS NOT DISTINCT (job_id, bucket, key, etag)
);
COMMENT ON TABLE @extschema@.job_objects IS
    'for applications: one row per S3 object of a scan job, with its scan status; every change is counted in the job''s counters';
COMMENT ON COLUMN @extschema@.job_objects.id IS
    'the row''s id';
COMMENT ON COLUMN @extschema@.job_objects.job_id IS
    'the job the object belongs to (deleted with it)';
COMMENT ON COLUMN @extschema@.job_objects.bucket IS
    'the object''s S3 bucket';
COMMENT ON COLUMN @extschema@.job_objects.key IS
    'the object''s S3 key; (job_id, bucket, key, etag) is unique, nulls not distinct';
COMMENT ON COLUMN @extschema@.job_objects.etag IS
    'the ETag of the object''s version, if known';
COMMENT ON COLUMN @extschema@.job_objects.status IS
    'queued, processing, succeeded or failed; succeeded and failed objects are done';
COMMENT ON COLUMN @extschema@.job_objects.last_error IS
    'why the object''s scan last failed, if it did';
COMMENT ON COLUMN @extschema@.job_objects.updated_at IS
    'when the object''s row last changed (set by a trigger on every UPDATE); a job''s newest is its last_object_update';

-- What the detectors found in a job's objects.
CREATE TABLE @extschema@.findings (
    id           bigserial PRIMARY KEY,
    job_id       pg_catalog.uuid NOT NULL REFERENCES @extschema@.jobs (job_id) ON DELETE CASCADE,
    bucket       pg_catalog.text NOT NULL,
    key          pg_catalog.text NOT NULL,
    etag         pg_catalog.text,
    detector     pg_catalog.text NOT NULL,
    masked_match pg_catalog.text NOT NULL,
    context      pg_catalog.text,
    byte_offset  integer NOT NULL,
    created_at   pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT findings_dedup_key UNIQUE NULLS NOT DISTINCT (bucket, key, etag, detector, byte_offset)
);
CREATE INDEX findings_job_id_idx ON @extschema@.findings (job_id);
-- The API lists findings newest first (or oldest first) without a job filter.
CREATE INDEX findings_created_at_idx ON @extschema@.findings (created_at);
COMMENT ON TABLE @extschema@.findings IS
    'for applications: what the detectors found in a scan job''s objects; every change is counted in the job''s counters';
COMMENT ON COLUMN @extschema@.findings.id IS
    'the row''s id';
COMMENT ON COLUMN @extschema@.findings.job_id IS
    'the job the finding belongs to (deleted with it)';
COMMENT ON COLUMN @extschema@.findings.bucket IS
    'the S3 bucket of the object the finding is in';
COMMENT ON COLUMN @extschema@.findings.key IS
    'the S3 key of the object the finding is in';
COMMENT ON COLUMN @extschema@.findings.etag IS
    'the ETag of that object''s version, if known';
COMMENT ON COLUMN @extschema@.findings.detector IS
    'the detector that matched; (bucket, key, etag, detector, byte_offset) is unique, nulls not distinct';
COMMENT ON COLUMN @extschema@.findings.masked_match IS
    'the matched text, masked';
COMMENT ON COLUMN @extschema@.findings.context IS
    'text around the match, if kept';
COMMENT ON COLUMN @extschema@.findings.byte_offset IS
    'where the match starts in the object, in bytes';
COMMENT ON COLUMN @extschema@.findings.created_at IS
    'when the finding was recorded';

COMMENT ON SEQUENCE @extschema@.job_objects_id_seq IS
    'for applications: the ids of job_objects (the default of its id column)';
COMMENT ON SEQUENCE @extschema@.findings_id_seq IS
    'for applications: the ids of findings (the default of its id column)';

-- updated_at kept current on every UPDATE, by a C trigger (same effect as the clients' plpgsql
-- "NEW.updated_at = now()" trigger, without a PL call per row). It does not pin search_path: it
-- resolves no name, and the pin (a GUC change and restore per row) would cost about 10% of the
-- scanner workers' per-object UPDATE throughput. Triggers fire it without an EXECUTE check.
CREATE FUNCTION @extschema@.touch_updated_at() RETURNS pg_catalog.trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_touch_updated_at';
REVOKE ALL ON FUNCTION @extschema@.touch_updated_at() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.touch_updated_at() IS
    'internal to s3scan_jobs: trigger function that sets updated_at on every UPDATE of jobs and job_objects';

CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON @extschema@.jobs
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();
CREATE TRIGGER job_objects_touch_updated_at BEFORE UPDATE ON @extschema@.job_objects
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();

-- A change of a job (created, changed, deleted, truncated) moves the count of changes the refresh
-- worker compares before it refreshes: with nothing changed since its last refresh it skips it
-- (outcome 'unchanged'). Row level, so that logical replication's apply fires it too; ENABLE
-- ALWAYS, so that it fires under every session_replication_role. It resolves no name.
CREATE FUNCTION @extschema@.note_job_changes() RETURNS pg_catalog.trigger
    LANGUAGE c
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_note_job_changes';
REVOKE ALL ON FUNCTION @extschema@.note_job_changes() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.note_job_changes() IS
    'internal to s3scan_jobs: trigger function on jobs that tells the refresh worker something changed';
CREATE TRIGGER jobs_note_changes AFTER INSERT OR UPDATE OR DELETE ON @extschema@.jobs
    FOR EACH ROW EXECUTE FUNCTION @extschema@.note_job_changes();
CREATE TRIGGER jobs_note_truncate AFTER TRUNCATE ON @extschema@.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.note_job_changes();
ALTER TABLE @extschema@.jobs ENABLE ALWAYS TRIGGER jobs_note_changes, ENABLE ALWAYS TRIGGER jobs_note_truncate;

-- The counters' tables ---------------------------------------------------------------------------
-- Exact per-job counts kept inside the server (docs/design.md "The per-job counters"). The counter triggers
-- (in "The counters' upkeep" below) sum what each transaction changes per job and, when it
-- commits (or prepares), append one row per job to job_counter_deltas; fold_job_counters() moves
-- the deltas into job_counters. For every job, its job_counters row plus its pending deltas
-- (rows, and the reading transaction's own sums not written yet) equals the aggregate of the base
-- tables, in every snapshot: that sum is what the views below read.

-- Folded counts per job. No row means zeros. No foreign key: a job's deleted objects arrive as
-- negative deltas, and the fold removes rows of deleted jobs once they are all zero.
CREATE TABLE @extschema@.job_counters (
    job_id             pg_catalog.uuid PRIMARY KEY,
    total_objects      bigint NOT NULL,
    queued_count       bigint NOT NULL,
    processing_count   bigint NOT NULL,
    succeeded_count    bigint NOT NULL,
    failed_count       bigint NOT NULL,
    total_findings     bigint NOT NULL,
    last_object_update pg_catalog.timestamptz
);
COMMENT ON TABLE @extschema@.job_counters IS
    'internal to s3scan_jobs: the folded per-job counts (no row: zeros); with the pending job_counter_deltas, what job_progress_live reads';

-- Changes not folded yet: one row per transaction and job (per statement and job once a
-- transaction holds more than 8,192 sums; integers: one statement changes fewer than 2^31 rows of
-- a job, and sum(integer) adds in bigint, faster than sum(bigint) in numeric).
-- last_object_update is the newest updated_at written (null if no object row was);
-- last_object_update_recheck says that an object row that may have been the job's newest was
-- removed (a DELETE, or an UPDATE that lowered updated_at or moved rows to another job): the
-- job's newest updated_at is then read from job_objects until the next fold recomputes it.
-- No index (each counted transaction would add an entry, all writers of a job in one leaf page):
-- the worker's fold keeps the table short. Folded every few hundred milliseconds: its dead rows
-- are vacuumed early, and never truncated (the ACCESS EXCLUSIVE lock writers would wait for).
-- REPLICA IDENTITY FULL: a publication FOR ALL TABLES publishes the folds' deletes.
CREATE TABLE @extschema@.job_counter_deltas (
    job_id                     pg_catalog.uuid NOT NULL,
    total_objects              integer NOT NULL,
    queued_count               integer NOT NULL,
    processing_count           integer NOT NULL,
    succeeded_count            integer NOT NULL,
    failed_count               integer NOT NULL,
    total_findings             integer NOT NULL,
    last_object_update         pg_catalog.timestamptz,
    last_object_update_recheck boolean NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0,
        autovacuum_vacuum_cost_delay = 0, vacuum_truncate = false);
ALTER TABLE @extschema@.job_counter_deltas REPLICA IDENTITY FULL;
COMMENT ON TABLE @extschema@.job_counter_deltas IS
    'internal to s3scan_jobs: per-job count changes not folded into job_counters yet, appended by the counter triggers when a transaction commits';

-- An empty table whose EXCLUSIVE lock is the turn of fold_job_counters(), repair_job_counters()
-- and set_counter_maintenance() (each takes it after the tables it reads). Readers and writers
-- never lock it; no client is granted it, so no client can hold a fold up with it; nobody vacuums
-- it (a lock on job_counters itself would conflict with VACUUM and ANALYZE of that table).
CREATE TABLE @extschema@.job_counters_lock () WITH (autovacuum_enabled = false);
COMMENT ON TABLE @extschema@.job_counters_lock IS
    'internal to s3scan_jobs: empty; its EXCLUSIVE lock makes folds and repairs of the counters take turns';

-- This transaction's counter deltas that are not rows yet and that the statement's snapshot
-- sees, shaped as job_counter_deltas rows (one per statement and job). Empty for any other
-- session. PARALLEL RESTRICTED: a parallel worker does not have them. PUBLIC: every reader of
-- job_progress_live calls it.
CREATE FUNCTION @extschema@.pending_counter_deltas()
    RETURNS TABLE (job_id pg_catalog.uuid, total_objects integer, queued_count integer, processing_count integer,
                   succeeded_count integer, failed_count integer, total_findings integer,
                   last_object_update pg_catalog.timestamptz, last_object_update_recheck boolean)
    LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_pending_counter_deltas';
COMMENT ON FUNCTION @extschema@.pending_counter_deltas() IS
    'internal to s3scan_jobs: this transaction''s counter deltas that become job_counter_deltas rows when it commits';

-- The newest updated_at of a job's objects, read from job_objects (null without objects): for a
-- job whose pending deltas removed what may have been its newest object. In C, priced as cheap
-- (the view calls it for few jobs: priced as a subquery for every job it made large reads
-- JIT-compiled). It answers only a caller who may read job_progress_live (read as the owner of
-- job_objects) or job_objects' job_id and updated_at (read with the caller's own rights,
-- row-level security included); anyone else gets 42501 (src/counter_triggers.cpp).
CREATE FUNCTION @extschema@.newest_object_update(job_id pg_catalog.uuid) RETURNS pg_catalog.timestamptz
    LANGUAGE c STABLE PARALLEL SAFE COST 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_newest_object_update';
COMMENT ON FUNCTION @extschema@.newest_object_update(pg_catalog.uuid) IS
    'internal to s3scan_jobs: the newest updated_at of a job''s objects, for job_progress_live when a removal made its counter unsure';

-- The views -------------------------------------------------------------------------------------

-- A job's counts, from the counters: the folded row plus the job's pending deltas (the table's
-- and this transaction's own), in the statement's snapshot. A filter on job_id reaches the
-- counters' primary key; the deltas table is scanned (the worker keeps it short).
CREATE VIEW @extschema@.job_progress_from_counters AS
SELECT s.job_id, s.bucket, s.prefix, s.execution_arn, s.created_at, s.updated_at,
       s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count,
       s.total_findings,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((s.succeeded_count OPERATOR(pg_catalog.+) s.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) s.total_objects::numeric
       END AS progress_percent,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::pg_catalog.timestamptz
            WHEN s.recheck THEN @extschema@.newest_object_update(s.job_id)
            ELSE GREATEST(s.folded_last_update, s.pending_last_update)
       END AS last_object_update
FROM (SELECT j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at,
             COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_objects, 0::bigint) AS total_objects,
             COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.queued_count, 0::bigint) AS queued_count,
             COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.processing_count, 0::bigint) AS processing_count,
             COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.succeeded_count, 0::bigint) AS succeeded_count,
             COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.failed_count, 0::bigint) AS failed_count,
             COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_findings, 0::bigint) AS total_findings,
             c.last_object_update AS folded_last_update,
             d.last_object_update AS pending_last_update,
             COALESCE(d.recheck, false) AS recheck
      FROM @extschema@.jobs j
      LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) j.job_id
      LEFT JOIN (SELECT x.job_id,
                        pg_catalog.sum(x.total_objects) AS total_objects,
                        pg_catalog.sum(x.queued_count) AS queued_count,
                        pg_catalog.sum(x.processing_count) AS processing_count,
                        pg_catalog.sum(x.succeeded_count) AS succeeded_count,
                        pg_catalog.sum(x.failed_count) AS failed_count,
                        pg_catalog.sum(x.total_findings) AS total_findings,
                        pg_catalog.max(x.last_object_update) AS last_object_update,
                        pg_catalog.bool_or(x.last_object_update_recheck) AS recheck
                 FROM (SELECT r.job_id, r.total_objects, r.queued_count, r.processing_count, r.succeeded_count,
                              r.failed_count, r.total_findings, r.last_object_update, r.last_object_update_recheck
                       FROM @extschema@.job_counter_deltas r
                       UNION ALL
                       SELECT p.job_id, p.total_objects, p.queued_count, p.processing_count, p.succeeded_count,
                              p.failed_count, p.total_findings, p.last_object_update, p.last_object_update_recheck
                       FROM @extschema@.pending_counter_deltas() p) x
                 GROUP BY x.job_id) d ON d.job_id OPERATOR(pg_catalog.=) j.job_id) s;
COMMENT ON VIEW @extschema@.job_progress_from_counters IS
    'internal to s3scan_jobs: a job''s counts from the counters (folded plus pending), the definition job_progress_live takes while counters are maintained';

-- A job's counts, from the base tables: objects and findings are aggregated separately before the
-- join, so a job's rows are never multiplied; a filter on job_id is pushed into both aggregates.
-- What reads aggregate when counter maintenance is off, and what verify_job_counters() compares
-- with.
CREATE VIEW @extschema@.job_progress_from_tables AS
SELECT j.job_id,
       j.bucket,
       j.prefix,
       j.execution_arn,
       j.created_at,
       j.updated_at,
       COALESCE(o.total_objects, 0::bigint)    AS total_objects,
       COALESCE(o.queued_count, 0::bigint)     AS queued_count,
       COALESCE(o.processing_count, 0::bigint) AS processing_count,
       COALESCE(o.succeeded_count, 0::bigint)  AS succeeded_count,
       COALESCE(o.failed_count, 0::bigint)     AS failed_count,
       COALESCE(f.total_findings, 0::bigint)   AS total_findings,
       CASE WHEN COALESCE(o.total_objects, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((o.succeeded_count OPERATOR(pg_catalog.+) o.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) o.total_objects::numeric
       END AS progress_percent,
       o.last_object_update
FROM @extschema@.jobs j
LEFT JOIN (SELECT jo.job_id,
                  pg_catalog.count(*) AS total_objects,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::pg_catalog.text) AS queued_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::pg_catalog.text) AS processing_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::pg_catalog.text) AS succeeded_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::pg_catalog.text) AS failed_count,
                  pg_catalog.max(jo.updated_at) AS last_object_update
           FROM @extschema@.job_objects jo
           GROUP BY jo.job_id) o ON o.job_id OPERATOR(pg_catalog.=) j.job_id
LEFT JOIN (SELECT fi.job_id, pg_catalog.count(*) AS total_findings
           FROM @extschema@.findings fi
           GROUP BY fi.job_id) f ON f.job_id OPERATOR(pg_catalog.=) j.job_id;
COMMENT ON VIEW @extschema@.job_progress_from_tables IS
    'internal to s3scan_jobs: a job''s counts aggregated from the base tables, the definition job_progress_live takes while counters are not maintained';

-- The one definition of a job's counts that everything reads: job_summary renames its columns,
-- job_progress materializes it, job_status(real_time => true) reads it for one job. It is a copy
-- of job_progress_from_counters (while counter maintenance is on, as here) or of
-- job_progress_from_tables (off): define_job_progress_live() rewrites it, so its current text is
-- whichever of the two pg_get_viewdef() shows. Like job_summary, it reads with its owner's rights,
-- so that SELECT on a view is enough to read it; job_status's real-time answer reads it with the
-- caller's own rights, so a role calling job_status(id, true) needs SELECT on it.
-- last_object_update (when an object of the job last changed: the stall signal of a dashboard)
-- comes last, so that positional readers of the other columns keep working.
CREATE VIEW @extschema@.job_progress_live AS
SELECT s.job_id, s.bucket, s.prefix, s.execution_arn, s.created_at, s.updated_at,
       s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count,
       s.total_findings,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((s.succeeded_count OPERATOR(pg_catalog.+) s.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) s.total_objects::numeric
       END AS progress_percent,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::pg_catalog.timestamptz
            WHEN s.recheck THEN @extschema@.newest_object_update(s.job_id)
            ELSE GREATEST(s.folded_last_update, s.pending_last_update)
       END AS last_object_update
FROM (SELECT j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at,
             COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_objects, 0::bigint) AS total_objects,
             COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.queued_count, 0::bigint) AS queued_count,
             COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.processing_count, 0::bigint) AS processing_count,
             COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.succeeded_count, 0::bigint) AS succeeded_count,
             COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.failed_count, 0::bigint) AS failed_count,
             COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_findings, 0::bigint) AS total_findings,
             c.last_object_update AS folded_last_update,
             d.last_object_update AS pending_last_update,
             COALESCE(d.recheck, false) AS recheck
      FROM @extschema@.jobs j
      LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) j.job_id
      LEFT JOIN (SELECT x.job_id,
                        pg_catalog.sum(x.total_objects) AS total_objects,
                        pg_catalog.sum(x.queued_count) AS queued_count,
                        pg_catalog.sum(x.processing_count) AS processing_count,
                        pg_catalog.sum(x.succeeded_count) AS succeeded_count,
                        pg_catalog.sum(x.failed_count) AS failed_count,
                        pg_catalog.sum(x.total_findings) AS total_findings,
                        pg_catalog.max(x.last_object_update) AS last_object_update,
                        pg_catalog.bool_or(x.last_object_update_recheck) AS recheck
                 FROM (SELECT r.job_id, r.total_objects, r.queued_count, r.processing_count, r.succeeded_count,
                              r.failed_count, r.total_findings, r.last_object_update, r.last_object_update_recheck
                       FROM @extschema@.job_counter_deltas r
                       UNION ALL
                       SELECT p.job_id, p.total_objects, p.queued_count, p.processing_count, p.succeeded_count,
                              p.failed_count, p.total_findings, p.last_object_update, p.last_object_update_recheck
                       FROM @extschema@.pending_counter_deltas() p) x
                 GROUP BY x.job_id) d ON d.job_id OPERATOR(pg_catalog.=) j.job_id) s;
COMMENT ON VIEW @extschema@.job_progress_live IS
    'for applications: every job''s counts and progress in real time, exact in the statement''s snapshot; job_status(id, true) reads it with the caller''s rights, so its callers need SELECT on it';
COMMENT ON COLUMN @extschema@.job_progress_live.job_id IS
    'the job''s id';
COMMENT ON COLUMN @extschema@.job_progress_live.bucket IS
    'the S3 bucket the job scans';
COMMENT ON COLUMN @extschema@.job_progress_live.prefix IS
    'the key prefix the job scans';
COMMENT ON COLUMN @extschema@.job_progress_live.execution_arn IS
    'ARN of the execution that runs the scan, if any';
COMMENT ON COLUMN @extschema@.job_progress_live.created_at IS
    'when the job was created';
COMMENT ON COLUMN @extschema@.job_progress_live.updated_at IS
    'when the job''s row last changed';
COMMENT ON COLUMN @extschema@.job_progress_live.total_objects IS
    'objects of the job';
COMMENT ON COLUMN @extschema@.job_progress_live.queued_count IS
    'objects with status queued';
COMMENT ON COLUMN @extschema@.job_progress_live.processing_count IS
    'objects with status processing';
COMMENT ON COLUMN @extschema@.job_progress_live.succeeded_count IS
    'objects with status succeeded';
COMMENT ON COLUMN @extschema@.job_progress_live.failed_count IS
    'objects with status failed';
COMMENT ON COLUMN @extschema@.job_progress_live.total_findings IS
    'findings of the job';
COMMENT ON COLUMN @extschema@.job_progress_live.progress_percent IS
    'objects done (succeeded or failed) in percent of total_objects; 0 for a job without objects';
COMMENT ON COLUMN @extschema@.job_progress_live.last_object_update IS
    'when an object of the job last changed (its newest updated_at); null without objects';

-- The real-time view with the scanner's summary column names; always exact.
CREATE VIEW @extschema@.job_summary AS
SELECT job_id, bucket, prefix, created_at, updated_at,
       total_objects,
       queued_count     AS queued,
       processing_count AS processing,
       succeeded_count  AS succeeded,
       failed_count     AS failed,
       total_findings
FROM @extschema@.job_progress_live;
COMMENT ON VIEW @extschema@.job_summary IS
    'for applications: every job''s counts in real time, exact, with the scanner''s summary column names (over job_progress_live)';
COMMENT ON COLUMN @extschema@.job_summary.job_id IS
    'the job''s id';
COMMENT ON COLUMN @extschema@.job_summary.bucket IS
    'the S3 bucket the job scans';
COMMENT ON COLUMN @extschema@.job_summary.prefix IS
    'the key prefix the job scans';
COMMENT ON COLUMN @extschema@.job_summary.created_at IS
    'when the job was created';
COMMENT ON COLUMN @extschema@.job_summary.updated_at IS
    'when the job''s row last changed';
COMMENT ON COLUMN @extschema@.job_summary.total_objects IS
    'objects of the job';
COMMENT ON COLUMN @extschema@.job_summary.queued IS
    'objects with status queued';
COMMENT ON COLUMN @extschema@.job_summary.processing IS
    'objects with status processing';
COMMENT ON COLUMN @extschema@.job_summary.succeeded IS
    'objects with status succeeded';
COMMENT ON COLUMN @extschema@.job_summary.failed IS
    'objects with status failed';
COMMENT ON COLUMN @extschema@.job_summary.total_findings IS
    'findings of the job';

-- The log of the cache below: one row per materialized view, when its data was taken, how long
-- the refresh took, totals. The API reads last_refreshed_at to say how old cached answers are.
CREATE TABLE @extschema@.materialized_view_refresh_log (
    view_name           pg_catalog.text PRIMARY KEY,
    last_refreshed_at   pg_catalog.timestamptz,
    refresh_duration_ms integer,
    total_jobs          integer,
    total_objects       bigint
);
COMMENT ON TABLE @extschema@.materialized_view_refresh_log IS
    'for applications: how old the cache is: one row per materialized view (job_progress), kept by every refresh, also a REFRESH typed by a person';
COMMENT ON COLUMN @extschema@.materialized_view_refresh_log.view_name IS
    'the materialized view: job_progress';
COMMENT ON COLUMN @extschema@.materialized_view_refresh_log.last_refreshed_at IS
    'the time of the data the view holds (its last refresh''s transaction start); null when it is not populated';
COMMENT ON COLUMN @extschema@.materialized_view_refresh_log.refresh_duration_ms IS
    'how long the last refresh took, in milliseconds';
COMMENT ON COLUMN @extschema@.materialized_view_refresh_log.total_jobs IS
    'jobs in the view after the last refresh';
COMMENT ON COLUMN @extschema@.materialized_view_refresh_log.total_objects IS
    'objects of those jobs';

-- The cache: job_progress_live as of the last refresh (refresh_job_progress(), the refresh
-- worker, pg_cron or a person's REFRESH). Populated here, at creation.
CREATE MATERIALIZED VIEW @extschema@.job_progress AS
SELECT * FROM @extschema@.job_progress_live;
-- One row per job: also what REFRESH ... CONCURRENTLY needs.
CREATE UNIQUE INDEX job_progress_job_id_idx ON @extschema@.job_progress (job_id);
-- The dashboard's newest-first list of jobs.
CREATE INDEX job_progress_created_at_idx ON @extschema@.job_progress (created_at DESC);
-- The cache was just populated: say so in the log.
INSERT INTO @extschema@.materialized_view_refresh_log
    (view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects)
VALUES ('job_progress', pg_catalog.now(), 0, 0, 0);
COMMENT ON MATERIALIZED VIEW @extschema@.job_progress IS
    'for applications: the cache: job_progress_live as of the last refresh (its time: materialized_view_refresh_log); cheap to read, refreshed by refresh_job_progress()';
COMMENT ON COLUMN @extschema@.job_progress.job_id IS
    'the job''s id';
COMMENT ON COLUMN @extschema@.job_progress.bucket IS
    'the S3 bucket the job scans';
COMMENT ON COLUMN @extschema@.job_progress.prefix IS
    'the key prefix the job scans';
COMMENT ON COLUMN @extschema@.job_progress.execution_arn IS
    'ARN of the execution that runs the scan, if any';
COMMENT ON COLUMN @extschema@.job_progress.created_at IS
    'when the job was created';
COMMENT ON COLUMN @extschema@.job_progress.updated_at IS
    'when the job''s row last changed, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.total_objects IS
    'objects of the job, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.queued_count IS
    'objects with status queued, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.processing_count IS
    'objects with status processing, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.succeeded_count IS
    'objects with status succeeded, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.failed_count IS
    'objects with status failed, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.total_findings IS
    'findings of the job, as of the last refresh';
COMMENT ON COLUMN @extschema@.job_progress.progress_percent IS
    'objects done (succeeded or failed) in percent of total_objects; 0 for a job without objects';
COMMENT ON COLUMN @extschema@.job_progress.last_object_update IS
    'when an object of the job last changed (its newest updated_at), as of the last refresh; null without objects';

-- Jobs not finished, newest first, as the scanner system counts them: progress below 100,
-- including jobs whose objects are still being listed (none yet).
CREATE VIEW @extschema@.active_jobs_progress AS
SELECT * FROM @extschema@.job_progress
WHERE progress_percent OPERATOR(pg_catalog.<) 100::numeric
ORDER BY created_at DESC;
COMMENT ON VIEW @extschema@.active_jobs_progress IS
    'for applications: the jobs not finished (progress below 100, also those without objects yet), newest first, from the cache job_progress';

-- The dashboard's one-row summary of every job, with the scanner system's columns.
CREATE VIEW @extschema@.job_statistics AS
SELECT pg_catalog.count(*) AS total_jobs,
       pg_catalog.count(*) FILTER (WHERE p.progress_percent OPERATOR(pg_catalog.=) 100::numeric) AS completed_jobs,
       pg_catalog.count(*) FILTER (WHERE p.progress_percent OPERATOR(pg_catalog.>) 0::numeric
                                     AND p.progress_percent OPERATOR(pg_catalog.<) 100::numeric) AS in_progress_jobs,
       pg_catalog.count(*) FILTER (WHERE p.progress_percent OPERATOR(pg_catalog.=) 0::numeric) AS pending_jobs,
       pg_catalog.sum(p.total_objects) AS total_objects_all_jobs,
       pg_catalog.sum(p.succeeded_count) AS total_objects_processed,
       pg_catalog.sum(p.total_findings) AS total_findings_all_jobs,
       pg_catalog.avg(p.progress_percent) AS avg_progress,
       pg_catalog.max(p.created_at) AS most_recent_job,
       pg_catalog.min(p.created_at) FILTER (WHERE p.progress_percent OPERATOR(pg_catalog.<) 100::numeric)
           AS oldest_active_job
FROM @extschema@.job_progress p;
COMMENT ON VIEW @extschema@.job_statistics IS
    'for applications: a one-row summary of every job for a dashboard, from the cache job_progress';
COMMENT ON COLUMN @extschema@.job_statistics.total_jobs IS
    'jobs';
COMMENT ON COLUMN @extschema@.job_statistics.completed_jobs IS
    'jobs at 100 percent';
COMMENT ON COLUMN @extschema@.job_statistics.in_progress_jobs IS
    'jobs above 0 and below 100 percent';
COMMENT ON COLUMN @extschema@.job_statistics.pending_jobs IS
    'jobs at 0 percent, also those without objects';
COMMENT ON COLUMN @extschema@.job_statistics.total_objects_all_jobs IS
    'objects of all jobs';
COMMENT ON COLUMN @extschema@.job_statistics.total_objects_processed IS
    'objects that succeeded, in all jobs';
COMMENT ON COLUMN @extschema@.job_statistics.total_findings_all_jobs IS
    'findings of all jobs';
COMMENT ON COLUMN @extschema@.job_statistics.avg_progress IS
    'the average of the jobs'' progress_percent';
COMMENT ON COLUMN @extschema@.job_statistics.most_recent_job IS
    'when the newest job was created';
COMMENT ON COLUMN @extschema@.job_statistics.oldest_active_job IS
    'when the oldest job below 100 percent was created';

-- job_status ------------------------------------------------------------------------------------

-- The row job_status() returns: job_progress's columns but last_object_update, then three of its
-- own.
CREATE TYPE @extschema@.job_status_result AS (
    job_id           pg_catalog.uuid,
    bucket           pg_catalog.text,
    prefix           pg_catalog.text,
    execution_arn    pg_catalog.text,
    created_at       pg_catalog.timestamptz,
    updated_at       pg_catalog.timestamptz,
    total_objects    bigint,
    queued_count     bigint,
    processing_count bigint,
    succeeded_count  bigint,
    failed_count     bigint,
    total_findings   bigint,
    progress_percent numeric,
    status           pg_catalog.text,
    data_source      pg_catalog.text,
    cache_timestamp  pg_catalog.timestamptz
);
COMMENT ON TYPE @extschema@.job_status_result IS
    'for applications: the row job_status() returns';
COMMENT ON COLUMN @extschema@.job_status_result.job_id IS
    'the job''s id';
COMMENT ON COLUMN @extschema@.job_status_result.bucket IS
    'the S3 bucket the job scans';
COMMENT ON COLUMN @extschema@.job_status_result.prefix IS
    'the key prefix the job scans';
COMMENT ON COLUMN @extschema@.job_status_result.execution_arn IS
    'ARN of the execution that runs the scan, if any';
COMMENT ON COLUMN @extschema@.job_status_result.created_at IS
    'when the job was created';
COMMENT ON COLUMN @extschema@.job_status_result.updated_at IS
    'when the job''s row last changed';
COMMENT ON COLUMN @extschema@.job_status_result.total_objects IS
    'objects of the job';
COMMENT ON COLUMN @extschema@.job_status_result.queued_count IS
    'objects with status queued';
COMMENT ON COLUMN @extschema@.job_status_result.processing_count IS
    'objects with status processing';
COMMENT ON COLUMN @extschema@.job_status_result.succeeded_count IS
    'objects with status succeeded';
COMMENT ON COLUMN @extschema@.job_status_result.failed_count IS
    'objects with status failed';
COMMENT ON COLUMN @extschema@.job_status_result.total_findings IS
    'findings of the job';
COMMENT ON COLUMN @extschema@.job_status_result.progress_percent IS
    'objects done (succeeded or failed) in percent of total_objects; 0 for a job without objects';
COMMENT ON COLUMN @extschema@.job_status_result.status IS
    'completed when the job has no objects or all are done (succeeded or failed), else processing';
COMMENT ON COLUMN @extschema@.job_status_result.data_source IS
    'cached (read from job_progress) or real_time (from job_progress_live)';
COMMENT ON COLUMN @extschema@.job_status_result.cache_timestamp IS
    'for a cached row, the time of the data it comes from (as last_refreshed_at in materialized_view_refresh_log); null in real time';

-- One job's progress: from job_progress when the cache has the job, else (or with real_time =>
-- true) in real time from job_progress_live, read with the caller's rights; zero rows for an
-- unknown job. In C (src/job_status.cpp).
CREATE FUNCTION @extschema@.job_status(job_id pg_catalog.uuid, real_time boolean DEFAULT false)
    RETURNS SETOF @extschema@.job_status_result
    LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_job_status';
COMMENT ON FUNCTION @extschema@.job_status(pg_catalog.uuid, boolean) IS
    'for applications: progress of one scan job, from the cache job_progress when it has the job, else (or with real_time => true) exact from job_progress_live; zero rows for an unknown job';

-- Refresh ---------------------------------------------------------------------------------------

-- Every refresh attempt, whoever started it; bounded by s3scan_jobs.history_limit.
CREATE TABLE @extschema@.refresh_history (
    id            bigserial PRIMARY KEY,
    started_at    pg_catalog.timestamptz NOT NULL,
    duration_ms   double precision NOT NULL,
    outcome       pg_catalog.text NOT NULL CHECK (outcome OPERATOR(pg_catalog.=) ANY
                      (ARRAY['refreshed'::pg_catalog.text, 'skipped'::pg_catalog.text, 'failed'::pg_catalog.text,
                             'unchanged'::pg_catalog.text])),
    mode          pg_catalog.text CHECK (mode OPERATOR(pg_catalog.=) ANY
                      (ARRAY['concurrent'::pg_catalog.text, 'full'::pg_catalog.text])),
    total_jobs    bigint,
    total_objects bigint,
    error         pg_catalog.text,
    origin        pg_catalog.text NOT NULL CHECK (origin OPERATOR(pg_catalog.=) ANY
                      (ARRAY['worker'::pg_catalog.text, 'sql'::pg_catalog.text, 'pg_cron'::pg_catalog.text,
                             'refresh_command'::pg_catalog.text]))
);
COMMENT ON TABLE @extschema@.refresh_history IS
    'for operators: every refresh attempt of job_progress, whoever started it; the newest s3scan_jobs.history_limit rows are kept';
COMMENT ON COLUMN @extschema@.refresh_history.id IS
    'the row''s id';
COMMENT ON COLUMN @extschema@.refresh_history.started_at IS
    'when the attempt started';
COMMENT ON COLUMN @extschema@.refresh_history.duration_ms IS
    'how long it took, in milliseconds';
COMMENT ON COLUMN @extschema@.refresh_history.outcome IS
    'refreshed, skipped (another refresh was running), failed, or unchanged (the worker found nothing changed since its last refresh and did not refresh)';
COMMENT ON COLUMN @extschema@.refresh_history.mode IS
    'concurrent (the view was populated) or full';
COMMENT ON COLUMN @extschema@.refresh_history.total_jobs IS
    'jobs in the view after a refresh';
COMMENT ON COLUMN @extschema@.refresh_history.total_objects IS
    'objects of those jobs';
COMMENT ON COLUMN @extschema@.refresh_history.error IS
    'why a failed refresh failed';
COMMENT ON COLUMN @extschema@.refresh_history.origin IS
    'who started it: worker, sql (refresh_job_progress()), pg_cron, or refresh_command (a REFRESH MATERIALIZED VIEW typed by a person)';
COMMENT ON SEQUENCE @extschema@.refresh_history_id_seq IS
    'for operators: the ids of refresh_history (the default of its id column)';

-- The row refresh_job_progress() returns.
CREATE TYPE @extschema@.refresh_result AS (
    outcome       pg_catalog.text,
    mode          pg_catalog.text,
    started_at    pg_catalog.timestamptz,
    duration_ms   double precision,
    total_jobs    bigint,
    total_objects bigint,
    message       pg_catalog.text
);
COMMENT ON TYPE @extschema@.refresh_result IS
    'for operators: the row refresh_job_progress() returns';
COMMENT ON COLUMN @extschema@.refresh_result.outcome IS
    'refreshed, skipped (another refresh of job_progress was running) or failed';
COMMENT ON COLUMN @extschema@.refresh_result.mode IS
    'concurrent (the view was populated) or full; null when skipped';
COMMENT ON COLUMN @extschema@.refresh_result.started_at IS
    'when the attempt started';
COMMENT ON COLUMN @extschema@.refresh_result.duration_ms IS
    'how long it took, in milliseconds';
COMMENT ON COLUMN @extschema@.refresh_result.total_jobs IS
    'jobs in the view after the refresh; null unless refreshed';
COMMENT ON COLUMN @extschema@.refresh_result.total_objects IS
    'objects of those jobs; null unless refreshed';
COMMENT ON COLUMN @extschema@.refresh_result.message IS
    'what happened, in words (for a failure, the error)';

-- Refreshes job_progress, after folding the counters: tries the refresh lock and skips at once if
-- another refresh holds it, refreshes CONCURRENTLY when the view is populated, and writes the log
-- and the history in the same transaction; a failed refresh is rolled back, recorded and returned
-- (src/refresh.cpp). SECURITY DEFINER, so that the one right to refresh can be handed to a role
-- (GRANT EXECUTE) without ownership of job_progress or any right on the tables. Safe because
-- search_path is pinned and every name the refresh runs (the view's query, the bookkeeping) is
-- qualified.
CREATE FUNCTION @extschema@.refresh_job_progress()
    RETURNS @extschema@.refresh_result
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_job_progress';
REVOKE ALL ON FUNCTION @extschema@.refresh_job_progress() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.refresh_job_progress() IS
    'for operators: refresh job_progress now (concurrently when populated) and log it; skips at once if a refresh is running; GRANT EXECUTE hands out the right to refresh';

-- A REFRESH MATERIALIZED VIEW job_progress typed by a person also keeps the log and the history
-- right: an event trigger around the command (refreshes made by refresh_job_progress() are
-- recorded by it and ignored here). These two do not pin search_path: they must resolve the
-- command's view name exactly as the person's session does. They resolve no other name; their
-- bookkeeping SQL is qualified and runs under a search_path pinned in C.
CREATE FUNCTION @extschema@.on_refresh_command_start() RETURNS pg_catalog.event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_refresh_command_start';
CREATE FUNCTION @extschema@.on_refresh_command_end() RETURNS pg_catalog.event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_refresh_command_end';
REVOKE ALL ON FUNCTION @extschema@.on_refresh_command_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.on_refresh_command_end() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.on_refresh_command_start() IS
    'internal to s3scan_jobs: event trigger function: a REFRESH MATERIALIZED VIEW job_progress typed by a person takes the refresh turn';
COMMENT ON FUNCTION @extschema@.on_refresh_command_end() IS
    'internal to s3scan_jobs: event trigger function: a REFRESH MATERIALIZED VIEW job_progress typed by a person is logged';
CREATE EVENT TRIGGER s3scan_jobs_refresh_command_start ON ddl_command_start
    WHEN TAG IN ('REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION @extschema@.on_refresh_command_start();
CREATE EVENT TRIGGER s3scan_jobs_refresh_command_end ON ddl_command_end
    WHEN TAG IN ('REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION @extschema@.on_refresh_command_end();
COMMENT ON EVENT TRIGGER s3scan_jobs_refresh_command_start IS
    'internal to s3scan_jobs: a REFRESH MATERIALIZED VIEW job_progress typed by a person takes turns with the extension''s refreshes';
COMMENT ON EVENT TRIGGER s3scan_jobs_refresh_command_end IS
    'internal to s3scan_jobs: records a REFRESH MATERIALIZED VIEW job_progress typed by a person in the refresh log and history';

-- The refresh worker ----------------------------------------------------------------------------
-- With shared_preload_libraries = 's3scan_jobs', a launcher starts one refresh worker per
-- database of s3scan_jobs.database; it folds the counters every s3scan_jobs.fold_interval and
-- refreshes job_progress every s3scan_jobs.refresh_interval (src/refresh_worker.cpp).

-- Start a worker for the current database now (a dynamic background worker: without preloading,
-- or after refresh_worker_stop()); returns its pid. Stop it: true if one was stopped.
CREATE FUNCTION @extschema@.refresh_worker_start() RETURNS integer
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_start';
CREATE FUNCTION @extschema@.refresh_worker_stop() RETURNS boolean
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_stop';
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_stop() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.refresh_worker_start() IS
    'for operators: start a refresh worker for this database now (without preloading, or after refresh_worker_stop()); returns its pid';
COMMENT ON FUNCTION @extschema@.refresh_worker_stop() IS
    'for operators: stop this database''s refresh worker, also a preloaded one until refresh_worker_start(); true if one was stopped';

-- The rows of refresh_worker_status, from shared memory.
CREATE FUNCTION @extschema@.refresh_worker_status_all(
    OUT database pg_catalog.name, OUT pid integer, OUT state pg_catalog.text, OUT started_by pg_catalog.text,
    OUT last_refresh_start pg_catalog.timestamptz, OUT last_refresh_duration_ms double precision,
    OUT last_refresh_outcome pg_catalog.text, OUT last_error pg_catalog.text, OUT consecutive_failures integer,
    OUT next_refresh_due pg_catalog.timestamptz)
    RETURNS SETOF pg_catalog.record
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_status';
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_status_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.refresh_worker_status_all() TO pg_monitor;
COMMENT ON FUNCTION @extschema@.refresh_worker_status_all() IS
    'internal to s3scan_jobs: the rows of the view refresh_worker_status';

-- What each refresh worker is doing, one row per database it serves (or is configured to), for
-- every database of the server: shown to superusers and to pg_monitor, as pg_stat_activity's
-- details of other sessions are.
CREATE VIEW @extschema@.refresh_worker_status AS
SELECT * FROM @extschema@.refresh_worker_status_all();
GRANT SELECT ON @extschema@.refresh_worker_status TO pg_monitor;
COMMENT ON VIEW @extschema@.refresh_worker_status IS
    'for operators: what each refresh worker of the server is doing, one row per database it serves or is configured to serve';
COMMENT ON COLUMN @extschema@.refresh_worker_status.database IS
    'the database served';
COMMENT ON COLUMN @extschema@.refresh_worker_status.pid IS
    'the worker''s process id; null when none runs';
COMMENT ON COLUMN @extschema@.refresh_worker_status.state IS
    'starting, idle, refreshing, waiting for extension, disabled, database missing, stopped or no free worker slot';
COMMENT ON COLUMN @extschema@.refresh_worker_status.started_by IS
    'preload (s3scan_jobs.database) or sql (refresh_worker_start())';
COMMENT ON COLUMN @extschema@.refresh_worker_status.last_refresh_start IS
    'when the last refresh started';
COMMENT ON COLUMN @extschema@.refresh_worker_status.last_refresh_duration_ms IS
    'how long the last refresh took, in milliseconds';
COMMENT ON COLUMN @extschema@.refresh_worker_status.last_refresh_outcome IS
    'refreshed, skipped or failed';
COMMENT ON COLUMN @extschema@.refresh_worker_status.last_error IS
    'the last refresh error';
COMMENT ON COLUMN @extschema@.refresh_worker_status.consecutive_failures IS
    'refreshes failed in a row (the worker backs off: the interval doubled per failure, at most 4 intervals)';
COMMENT ON COLUMN @extschema@.refresh_worker_status.next_refresh_due IS
    'when the next refresh is due';

-- The counters' upkeep ---------------------------------------------------------------------------
-- The triggers that keep the counters, and the functions that fold, verify, repair and switch
-- them (docs/design.md "The per-job counters"). They take turns by job_counters_lock's EXCLUSIVE lock, always
-- after the locks on the tables they read.

-- The counter triggers' functions, in C: what they count comes from the trigger's first argument
-- ('objects' or 'findings'); the second, 'per_transaction', makes them sum a transaction's
-- changes in backend memory and write one row per job when it commits or prepares
-- (src/transaction_deltas.cpp; a rolled-back subtransaction drops its sums). They write the
-- delta rows directly (no SQL, no permission check; the TRUNCATE one runs its statement as the
-- owner of job_counter_deltas, under a search_path pinned in C): writers need no right on it.
-- Neither pins search_path: they resolve no name.
CREATE FUNCTION @extschema@.count_changes() RETURNS pg_catalog.trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_count_changes';
CREATE FUNCTION @extschema@.count_truncate() RETURNS pg_catalog.trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_count_truncate';
REVOKE ALL ON FUNCTION @extschema@.count_changes() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.count_truncate() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.count_changes() IS
    'internal to s3scan_jobs: trigger function that counts the changes of job_objects and findings into the job counters';
COMMENT ON FUNCTION @extschema@.count_truncate() IS
    'internal to s3scan_jobs: trigger function that counts a TRUNCATE of job_objects or findings into the job counters';

-- Five counter triggers per counted table. The statement-level ones read the statement's
-- transition tables; they are ENABLE ALWAYS (they fire under every session_replication_role
-- and stand down by themselves under replica). Logical replication's apply worker fires only
-- row-level triggers, with session_replication_role = replica: the row-level ones count there,
-- one row at a time, and are ENABLE REPLICA so that they fire in that role only.
-- set_counter_maintenance() switches all ten; counter_triggers_as_maintained() checks them.
CREATE TRIGGER job_objects_count_inserts AFTER INSERT ON @extschema@.job_objects
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects', 'per_transaction');
CREATE TRIGGER job_objects_count_updates AFTER UPDATE ON @extschema@.job_objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects', 'per_transaction');
CREATE TRIGGER job_objects_count_deletes AFTER DELETE ON @extschema@.job_objects
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects', 'per_transaction');
CREATE TRIGGER job_objects_count_truncate AFTER TRUNCATE ON @extschema@.job_objects
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_truncate('objects', 'per_transaction');
CREATE TRIGGER job_objects_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.job_objects
    FOR EACH ROW EXECUTE FUNCTION @extschema@.count_changes('objects', 'per_transaction');
ALTER TABLE @extschema@.job_objects ENABLE ALWAYS TRIGGER job_objects_count_inserts,
    ENABLE ALWAYS TRIGGER job_objects_count_updates, ENABLE ALWAYS TRIGGER job_objects_count_deletes,
    ENABLE ALWAYS TRIGGER job_objects_count_truncate, ENABLE REPLICA TRIGGER job_objects_count_replicated;

CREATE TRIGGER findings_count_inserts AFTER INSERT ON @extschema@.findings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings', 'per_transaction');
CREATE TRIGGER findings_count_updates AFTER UPDATE ON @extschema@.findings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings', 'per_transaction');
CREATE TRIGGER findings_count_deletes AFTER DELETE ON @extschema@.findings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings', 'per_transaction');
CREATE TRIGGER findings_count_truncate AFTER TRUNCATE ON @extschema@.findings
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_truncate('findings', 'per_transaction');
CREATE TRIGGER findings_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.findings
    FOR EACH ROW EXECUTE FUNCTION @extschema@.count_changes('findings', 'per_transaction');
ALTER TABLE @extschema@.findings ENABLE ALWAYS TRIGGER findings_count_inserts,
    ENABLE ALWAYS TRIGGER findings_count_updates, ENABLE ALWAYS TRIGGER findings_count_deletes,
    ENABLE ALWAYS TRIGGER findings_count_truncate, ENABLE REPLICA TRIGGER findings_count_replicated;

-- Writes the negation of this transaction's pending deltas (of one job, or all) as rows: called
-- by what has just rewritten those counters from the base tables, whose recount already holds
-- them. One row per pending entry, so each fits.
CREATE FUNCTION @extschema@.cancel_pending_counter_deltas(job_id pg_catalog.uuid) RETURNS pg_catalog.void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        INSERT INTO @extschema@.job_counter_deltas (job_id, total_objects, queued_count, processing_count,
                                                   succeeded_count, failed_count, total_findings,
                                                   last_object_update, last_object_update_recheck)
        SELECT p.job_id, OPERATOR(pg_catalog.-) p.total_objects, OPERATOR(pg_catalog.-) p.queued_count,
               OPERATOR(pg_catalog.-) p.processing_count, OPERATOR(pg_catalog.-) p.succeeded_count,
               OPERATOR(pg_catalog.-) p.failed_count, OPERATOR(pg_catalog.-) p.total_findings,
               NULL::pg_catalog.timestamptz, false
        FROM @extschema@.pending_counter_deltas() p
        WHERE cancel_pending_counter_deltas.job_id IS NULL
           OR p.job_id OPERATOR(pg_catalog.=) cancel_pending_counter_deltas.job_id;
    END;
REVOKE ALL ON FUNCTION @extschema@.cancel_pending_counter_deltas(pg_catalog.uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.cancel_pending_counter_deltas(pg_catalog.uuid) IS
    'internal to s3scan_jobs: writes the negation of this transaction''s pending counter deltas (one job or all) after a recount';

-- Whether every counter trigger is as set_counter_maintenance(true) leaves it: statement-level
-- ENABLE ALWAYS ('A'), row-level ENABLE REPLICA ('R', logical replication's apply). PUBLIC, as
-- counter_maintenance() is: it reads catalogs everyone may read.
CREATE FUNCTION @extschema@.counter_triggers_as_maintained() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 10::bigint
        FROM (VALUES ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_inserts'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_updates'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_deletes'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_truncate'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_replicated'::pg_catalog.name, 'R'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_inserts'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_updates'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_deletes'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_truncate'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_replicated'::pg_catalog.name, 'R'::pg_catalog."char"))
             AS e (rel, name, state)
        JOIN pg_catalog.pg_trigger t
          ON t.tgrelid OPERATOR(pg_catalog.=) e.rel::pg_catalog.oid
         AND t.tgname OPERATOR(pg_catalog.=) e.name
         AND t.tgenabled OPERATOR(pg_catalog.=) e.state;
    END;
COMMENT ON FUNCTION @extschema@.counter_triggers_as_maintained() IS
    'internal to s3scan_jobs: whether all ten counter triggers are as set_counter_maintenance(true) leaves them';

-- Whether job_progress_live (and so job_summary, job_status(id, true) and the refresh) reads the
-- counters, not the base tables: its rule depends on job_counters. PUBLIC, as
-- counter_maintenance() is.
CREATE FUNCTION @extschema@.job_progress_live_reads_counters() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT EXISTS (
            SELECT FROM pg_catalog.pg_rewrite r
            JOIN pg_catalog.pg_depend d
              ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid
             AND d.objid OPERATOR(pg_catalog.=) r.oid
            WHERE r.ev_class OPERATOR(pg_catalog.=) '@extschema@.job_progress_live'::pg_catalog.regclass::pg_catalog.oid
              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
              AND d.refobjid OPERATOR(pg_catalog.=) '@extschema@.job_counters'::pg_catalog.regclass::pg_catalog.oid);
    END;
COMMENT ON FUNCTION @extschema@.job_progress_live_reads_counters() IS
    'internal to s3scan_jobs: whether job_progress_live reads the counters (not the base tables)';

-- True when reads use the counters and the triggers keep them: what repair and verify need.
CREATE FUNCTION @extschema@.counter_maintenance() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT @extschema@.job_progress_live_reads_counters() AND @extschema@.counter_triggers_as_maintained();
    END;
COMMENT ON FUNCTION @extschema@.counter_maintenance() IS
    'for operators: whether the per-job counters are maintained: reads use them and all ten counter triggers are as set_counter_maintenance(true) left them';

-- True when the counters are maintained; else error 55000, or 0A000 once the tables are distributed
-- (for verify, repair and distribute_job_tables(), which alone call it).
CREATE FUNCTION @extschema@.require_counter_maintenance() RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    IF @extschema@.job_tables_distributed() THEN
        RAISE EXCEPTION 'verify_job_counters() and repair_job_counters() are not supported on a distributed database'
            USING ERRCODE = '0A000',
                  HINT = 'The README''s "Spreading over a Citus cluster" lists what a distributed database does differently.';
    END IF;
    IF NOT @extschema@.counter_maintenance() THEN
        RAISE EXCEPTION 'counter maintenance is off: there are no counters'
            USING ERRCODE = '55000', HINT = 'Turn it on with set_counter_maintenance(true), which rebuilds every counter.';
    END IF;
    RETURN true;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.require_counter_maintenance() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.require_counter_maintenance() IS
    'internal to s3scan_jobs: true when the counters are maintained, else error 55000 (0A000 on a distributed database; for verify and repair)';

-- Error 55006 when job_objects or findings is open in a statement of this session that has not
-- finished (a writable WITH around the call, a trigger on the table, a query over it): a recount
-- then would see that statement's changes, which its counter trigger adds again.
-- Tells the refresh worker that what job_progress shows may have changed (repair and the switch
-- to counting the tables rewrite the counters).
CREATE FUNCTION @extschema@.note_data_change() RETURNS void
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_note_data_change';
REVOKE ALL ON FUNCTION @extschema@.note_data_change() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.note_data_change() IS
    'internal to s3scan_jobs: tells the refresh worker that what job_progress shows may have changed';

CREATE FUNCTION @extschema@.require_counted_tables_idle() RETURNS boolean
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_require_counted_tables_idle';
REVOKE ALL ON FUNCTION @extschema@.require_counted_tables_idle() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.require_counted_tables_idle() IS
    'internal to s3scan_jobs: error 55006 when job_objects or findings is in use by an unfinished statement of this session (for repair)';

-- Rebuilds the counters of one job (or of all when job_id is null) from the base tables, in one
-- statement and so in one snapshot: the deltas that snapshot sees are deleted and the counters
-- set to the counts it sees; deltas committed after it stay pending, so no change made while it
-- runs is lost or counted twice. This transaction's own pending deltas are cancelled. Writers are
-- never blocked; folds wait (the turn). Returns the number of jobs rebuilt.
CREATE FUNCTION @extschema@.repair_job_counters(job_id pg_catalog.uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    rebuilt bigint;
BEGIN
    PERFORM @extschema@.require_counter_maintenance();
    PERFORM @extschema@.require_counted_tables_idle();
    -- The tables it reads first, then the folds' and repairs' turn: it never holds the turn while
    -- it waits for a lock someone holds on a table (DDL, a TRUNCATE).
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects, @extschema@.findings IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    WITH gone AS (
        DELETE FROM @extschema@.job_counter_deltas d
        WHERE repair_job_counters.job_id IS NULL OR d.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        RETURNING d.job_id),
    objects AS (
        SELECT jo.job_id,
               pg_catalog.count(*) AS total_objects,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::pg_catalog.text) AS queued_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::pg_catalog.text) AS processing_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::pg_catalog.text) AS succeeded_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::pg_catalog.text) AS failed_count,
               pg_catalog.max(jo.updated_at) AS last_object_update
        FROM @extschema@.job_objects jo
        WHERE repair_job_counters.job_id IS NULL OR jo.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        GROUP BY jo.job_id),
    found AS (
        SELECT fi.job_id, pg_catalog.count(*) AS total_findings
        FROM @extschema@.findings fi
        WHERE repair_job_counters.job_id IS NULL OR fi.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        GROUP BY fi.job_id),
    counted AS (
        SELECT COALESCE(o.job_id, f.job_id) AS job_id,
               COALESCE(o.total_objects, 0::bigint) AS total_objects,
               COALESCE(o.queued_count, 0::bigint) AS queued_count,
               COALESCE(o.processing_count, 0::bigint) AS processing_count,
               COALESCE(o.succeeded_count, 0::bigint) AS succeeded_count,
               COALESCE(o.failed_count, 0::bigint) AS failed_count,
               COALESCE(f.total_findings, 0::bigint) AS total_findings,
               o.last_object_update
        FROM objects o FULL JOIN found f ON f.job_id OPERATOR(pg_catalog.=) o.job_id),
    stale AS (
        DELETE FROM @extschema@.job_counters c
        WHERE (repair_job_counters.job_id IS NULL OR c.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id)
          AND NOT EXISTS (SELECT FROM counted n WHERE n.job_id OPERATOR(pg_catalog.=) c.job_id)
        RETURNING c.job_id),
    put AS (
        INSERT INTO @extschema@.job_counters AS c (job_id, total_objects, queued_count, processing_count,
                                                   succeeded_count, failed_count, total_findings,
                                                   last_object_update)
        SELECT n.job_id, n.total_objects, n.queued_count, n.processing_count, n.succeeded_count,
               n.failed_count, n.total_findings, n.last_object_update
        FROM counted n
        ON CONFLICT ON CONSTRAINT job_counters_pkey DO UPDATE
        SET total_objects = excluded.total_objects, queued_count = excluded.queued_count,
            processing_count = excluded.processing_count, succeeded_count = excluded.succeeded_count,
            failed_count = excluded.failed_count, total_findings = excluded.total_findings,
            last_object_update = excluded.last_object_update
        RETURNING c.job_id)
    -- (gone runs although nothing reads it: a data-modifying WITH always runs to completion.)
    SELECT (SELECT pg_catalog.count(*) FROM put) OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM stale)
    INTO rebuilt;
    -- This transaction's own pending deltas are in that recount already; they become rows at
    -- commit, where this cancels them.
    PERFORM @extschema@.cancel_pending_counter_deltas(repair_job_counters.job_id);
    -- What job_progress shows may have changed: the refresh worker's next pass refreshes.
    PERFORM @extschema@.note_data_change();
    RETURN rebuilt;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.repair_job_counters(pg_catalog.uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.repair_job_counters(pg_catalog.uuid) IS
    'for operators: rebuild the counters of one job (or all) from the base tables, exactly, while writers keep writing; returns the jobs rebuilt';

-- Moves every pending delta this snapshot sees into job_counters, in one statement: a reader
-- sees the deltas or their sum, never both or neither. A job's newest updated_at is recomputed
-- where a folded delta asks for it. The row of a job that no longer exists is removed once its
-- counts are zero (no row means zeros). Readers and writers never wait for it; it waits for
-- another fold or a repair. The refresh worker calls it every s3scan_jobs.fold_interval, and
-- every refresh does.
CREATE FUNCTION @extschema@.fold_job_counters() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    folded bigint;
BEGIN
    -- As in repair_job_counters(): the tables it reads first, then the turn.
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    WITH moved AS (
        DELETE FROM @extschema@.job_counter_deltas d RETURNING d.*),
    summed AS (
        SELECT m.job_id,
               pg_catalog.sum(m.total_objects) AS total_objects,
               pg_catalog.sum(m.queued_count) AS queued_count,
               pg_catalog.sum(m.processing_count) AS processing_count,
               pg_catalog.sum(m.succeeded_count) AS succeeded_count,
               pg_catalog.sum(m.failed_count) AS failed_count,
               pg_catalog.sum(m.total_findings) AS total_findings,
               pg_catalog.max(m.last_object_update) AS last_object_update,
               pg_catalog.bool_or(m.last_object_update_recheck) AS recheck,
               pg_catalog.count(*) AS deltas
        FROM moved m GROUP BY m.job_id),
    added AS (
        SELECT s.job_id,
               COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) s.total_objects AS total_objects,
               COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) s.queued_count AS queued_count,
               COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) s.processing_count AS processing_count,
               COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) s.succeeded_count AS succeeded_count,
               COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) s.failed_count AS failed_count,
               COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) s.total_findings AS total_findings,
               CASE WHEN s.recheck THEN @extschema@.newest_object_update(s.job_id)
                    ELSE GREATEST(c.last_object_update, s.last_object_update)
               END AS last_object_update,
               NOT EXISTS (SELECT FROM @extschema@.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) s.job_id) AS job_gone
        FROM summed s LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) s.job_id),
    put AS (
        INSERT INTO @extschema@.job_counters AS c
        SELECT a.job_id, a.total_objects, a.queued_count, a.processing_count, a.succeeded_count,
               a.failed_count, a.total_findings,
               CASE WHEN a.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::timestamptz
                    ELSE a.last_object_update END
        FROM added a
        WHERE NOT (a.job_gone AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint
                   AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
        ON CONFLICT ON CONSTRAINT job_counters_pkey DO UPDATE
        SET total_objects = excluded.total_objects, queued_count = excluded.queued_count,
            processing_count = excluded.processing_count, succeeded_count = excluded.succeeded_count,
            failed_count = excluded.failed_count, total_findings = excluded.total_findings,
            last_object_update = excluded.last_object_update),
    dropped AS (
        DELETE FROM @extschema@.job_counters c USING added a
        WHERE c.job_id OPERATOR(pg_catalog.=) a.job_id AND a.job_gone
          AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
    -- (put and dropped run although nothing reads them: a data-modifying WITH always runs to
    -- completion; they touch disjoint rows.)
    SELECT COALESCE(pg_catalog.sum(s.deltas), 0::numeric)::bigint INTO folded FROM summed s;
    RETURN folded;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.fold_job_counters() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.fold_job_counters() IS
    'for operators: move the pending counter deltas into job_counters now; returns how many were folded';

-- The jobs whose counts, as reads return them, differ from a recount of the base tables in the
-- same snapshot: one row per job and column. No row: exact.
CREATE FUNCTION @extschema@.verify_job_counters(job_id pg_catalog.uuid DEFAULT NULL)
    RETURNS TABLE (job_id pg_catalog.uuid, item pg_catalog.text, maintained pg_catalog.text, counted pg_catalog.text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT COALESCE(m.job_id, t.job_id), v.item, v.maintained, v.counted
        FROM (SELECT * FROM @extschema@.job_progress_from_counters c
              WHERE verify_job_counters.job_id IS NULL OR c.job_id OPERATOR(pg_catalog.=) verify_job_counters.job_id) m
        FULL JOIN (SELECT * FROM @extschema@.job_progress_from_tables b
                   WHERE verify_job_counters.job_id IS NULL OR b.job_id OPERATOR(pg_catalog.=) verify_job_counters.job_id) t
            ON t.job_id OPERATOR(pg_catalog.=) m.job_id
        CROSS JOIN LATERAL (VALUES
            ('total_objects'::pg_catalog.text, m.total_objects::pg_catalog.text, t.total_objects::pg_catalog.text),
            ('queued_count'::pg_catalog.text, m.queued_count::pg_catalog.text, t.queued_count::pg_catalog.text),
            ('processing_count'::pg_catalog.text, m.processing_count::pg_catalog.text, t.processing_count::pg_catalog.text),
            ('succeeded_count'::pg_catalog.text, m.succeeded_count::pg_catalog.text, t.succeeded_count::pg_catalog.text),
            ('failed_count'::pg_catalog.text, m.failed_count::pg_catalog.text, t.failed_count::pg_catalog.text),
            ('total_findings'::pg_catalog.text, m.total_findings::pg_catalog.text, t.total_findings::pg_catalog.text),
            ('last_object_update'::pg_catalog.text, m.last_object_update::pg_catalog.text,
             t.last_object_update::pg_catalog.text))
            AS v (item, maintained, counted)
        -- (evaluated once, before any row: refuses when there are no counters to verify)
        WHERE @extschema@.require_counter_maintenance()
          AND v.maintained IS DISTINCT FROM v.counted
        ORDER BY 1, 2;
    END;
REVOKE ALL ON FUNCTION @extschema@.verify_job_counters(pg_catalog.uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.verify_job_counters(pg_catalog.uuid) IS
    'for operators: the jobs (one or all) whose counts as reads return them differ from a recount of the base tables; no row: exact';

-- Reads count the base tables; the counters are emptied (the triggers are left as they are).
-- Takes the folds' turn after the counted tables, as repairs and folds do.
CREATE FUNCTION @extschema@.stop_reading_counters() RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    LOCK TABLE @extschema@.jobs IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_objects, @extschema@.findings IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    PERFORM @extschema@.define_job_progress_live(false);
    DELETE FROM @extschema@.job_counter_deltas;
    DELETE FROM @extschema@.job_counters;
    PERFORM @extschema@.cancel_pending_counter_deltas(NULL::pg_catalog.uuid);
    PERFORM @extschema@.note_data_change();
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.stop_reading_counters() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.stop_reading_counters() IS
    'internal to s3scan_jobs: makes reads count the base tables and empties the counters (the triggers are left as they are)';

-- Called by the ddl_command_end event trigger (as the owner of job_counters) when a counter
-- trigger may have changed: if reads use the counters but the triggers are no longer as
-- set_counter_maintenance(true) left them, the counts may already be wrong (a disabled trigger
-- missed changes; an ORIGIN trigger misses logical replication's apply): reads count the base
-- tables from now on, exact, until set_counter_maintenance(true) restores the triggers and
-- rebuilds the counters.
CREATE FUNCTION @extschema@.notice_counter_trigger_changes() RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    IF @extschema@.job_progress_live_reads_counters() AND NOT @extschema@.counter_triggers_as_maintained() THEN
        PERFORM @extschema@.stop_reading_counters();
        RAISE WARNING 'the counter triggers of s3scan_jobs were changed outside set_counter_maintenance(): '
                      'job_summary, job_status and refreshes count the base tables until it runs again'
            USING HINT = 'SELECT set_counter_maintenance(true) restores the ten counter triggers (not others a '
                         'DISABLE TRIGGER ALL turned off) and rebuilds the counters.';
    END IF;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.notice_counter_trigger_changes() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.notice_counter_trigger_changes() IS
    'internal to s3scan_jobs: when the counter triggers were changed outside set_counter_maintenance(), makes reads count the base tables, with a warning';

-- Turns counter maintenance off (reads aggregate the base tables as in 1.0, the counters are
-- emptied, then the triggers are disabled) or on (in READ COMMITTED only: the triggers are
-- enabled, reads use the counters, and every counter is rebuilt; writers wait for that recount,
-- which runs in this transaction). The locks come in the order of repairs and folds (the tables,
-- then the turn); turning it off switches reads to the base tables before the triggers, and
-- turning it on enables the triggers before reads use the counters: the event trigger never
-- finds reads on counters whose triggers are off.
CREATE FUNCTION @extschema@.set_counter_maintenance(enabled boolean) RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    how pg_catalog.text := CASE WHEN enabled THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END;
    how_replicated pg_catalog.text := CASE WHEN enabled THEN 'ENABLE REPLICA' ELSE 'DISABLE' END;
    missing pg_catalog.text;
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_counter_maintenance() takes true or false, not null' USING ERRCODE = '22004';
    END IF;
    PERFORM @extschema@.refuse_when_distributed('set_counter_maintenance()');
    -- The recount must see every change made before the triggers were enabled: a snapshot older
    -- than the trigger locks (REPEATABLE READ, SERIALIZABLE) would miss the writes committed
    -- while it waited for them, which no delta records.
    IF enabled AND pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'set_counter_maintenance(true) must run in a READ COMMITTED transaction'
            USING ERRCODE = '25001', HINT = 'Its recount needs a snapshot taken after the triggers are enabled.';
    END IF;
    LOCK TABLE @extschema@.jobs IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_objects, @extschema@.findings IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    -- A counter trigger renamed or dropped by hand: say which, rather than fail in ALTER TABLE.
    SELECT pg_catalog.string_agg(e.name, ', ' ORDER BY e.name) INTO missing
    FROM (VALUES ('job_objects_count_inserts'::pg_catalog.text), ('job_objects_count_updates'),
                 ('job_objects_count_deletes'), ('job_objects_count_truncate'), ('job_objects_count_replicated'),
                 ('findings_count_inserts'), ('findings_count_updates'), ('findings_count_deletes'),
                 ('findings_count_truncate'), ('findings_count_replicated')) AS e (name)
    WHERE NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@.job_objects'::pg_catalog.regclass,
                                                        '@extschema@.findings'::pg_catalog.regclass]::pg_catalog.oid[])
          AND t.tgname OPERATOR(pg_catalog.=) e.name::pg_catalog.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'counter triggers of s3scan_jobs are missing: %', missing
            USING ERRCODE = '55000',
                  HINT = 'Rename a renamed one back (ALTER TRIGGER ... RENAME TO ...). A dropped one is recreated '
                         'by dropping and creating the extension (after saving its tables'' data).';
    END IF;
    IF NOT enabled THEN
        PERFORM @extschema@.stop_reading_counters();
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.job_objects %2$s TRIGGER job_objects_count_inserts, '
        '%2$s TRIGGER job_objects_count_updates, %2$s TRIGGER job_objects_count_deletes, '
        '%2$s TRIGGER job_objects_count_truncate, %3$s TRIGGER job_objects_count_replicated',
        '@extschema@', how, how_replicated);
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.findings %2$s TRIGGER findings_count_inserts, '
        '%2$s TRIGGER findings_count_updates, %2$s TRIGGER findings_count_deletes, '
        '%2$s TRIGGER findings_count_truncate, %3$s TRIGGER findings_count_replicated',
        '@extschema@', how, how_replicated);
    IF enabled THEN
        PERFORM @extschema@.define_job_progress_live(true);
        PERFORM @extschema@.repair_job_counters(NULL::pg_catalog.uuid);
    END IF;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.set_counter_maintenance(boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.set_counter_maintenance(boolean) IS
    'for operators: maintain the per-job counters (true: rebuilds them; writers wait for the recount) or not (false: reads aggregate the base tables)';

-- Citus ------------------------------------------------------------------------------------------
-- A database that outgrows one server can spread the per-job tables over the worker nodes of a
-- Citus cluster, sharded by job_id: distribute_job_tables() does it once, on the coordinator
-- (docs/design.md "On Citus", README "Spreading over a Citus cluster"). Every per-job row of a job then
-- lives in one shard group on one node: jobs, job_objects, findings, job_counters and
-- job_counter_deltas, co-located. The counter triggers fire on the shards and append their
-- deltas, one row per statement, to the co-located shard of job_counter_deltas; each node's
-- refresh worker folds the shards it holds; the coordinator's refresh worker refreshes
-- job_progress, which stays a table of the coordinator. Nothing here needs Citus until distribute_job_tables() runs.

-- Whether jobs is a Citus distributed table (in C: reads Citus's catalog when Citus is there).
CREATE FUNCTION @extschema@.job_tables_distributed() RETURNS boolean
    LANGUAGE c STABLE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_job_tables_distributed';
REVOKE ALL ON FUNCTION @extschema@.job_tables_distributed() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.job_tables_distributed() IS
    'for operators: whether distribute_job_tables() has spread the per-job tables over a Citus cluster';

-- A job's counts from the counters of a distributed database: job_progress_from_counters without
-- the reading transaction's own pending sums (on shards every statement's deltas are rows at
-- once) and with the newest update re-read by a join, not a function (a function reads its own
-- node's tables, not the shard the query runs on). Every table is joined on job_id, so a read of
-- one job runs on one shard and a read of all jobs runs on every shard in parallel.
CREATE VIEW @extschema@.job_progress_from_shards AS
SELECT s.job_id, s.bucket, s.prefix, s.execution_arn, s.created_at, s.updated_at,
       s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count,
       s.total_findings,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((s.succeeded_count OPERATOR(pg_catalog.+) s.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) s.total_objects::numeric
       END AS progress_percent,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::pg_catalog.timestamptz
            WHEN s.recheck THEN s.rechecked_last_update
            ELSE GREATEST(s.folded_last_update, s.pending_last_update)
       END AS last_object_update
FROM (SELECT j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at,
             COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_objects, 0::bigint) AS total_objects,
             COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.queued_count, 0::bigint) AS queued_count,
             COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.processing_count, 0::bigint) AS processing_count,
             COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.succeeded_count, 0::bigint) AS succeeded_count,
             COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.failed_count, 0::bigint) AS failed_count,
             COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_findings, 0::bigint) AS total_findings,
             c.last_object_update AS folded_last_update,
             d.last_object_update AS pending_last_update,
             COALESCE(d.recheck, false) AS recheck,
             r.newest AS rechecked_last_update
      FROM @extschema@.jobs j
      LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) j.job_id
      LEFT JOIN (SELECT x.job_id,
                        pg_catalog.sum(x.total_objects) AS total_objects,
                        pg_catalog.sum(x.queued_count) AS queued_count,
                        pg_catalog.sum(x.processing_count) AS processing_count,
                        pg_catalog.sum(x.succeeded_count) AS succeeded_count,
                        pg_catalog.sum(x.failed_count) AS failed_count,
                        pg_catalog.sum(x.total_findings) AS total_findings,
                        pg_catalog.max(x.last_object_update) AS last_object_update,
                        pg_catalog.bool_or(x.last_object_update_recheck) AS recheck
                 FROM @extschema@.job_counter_deltas x
                 GROUP BY x.job_id) d ON d.job_id OPERATOR(pg_catalog.=) j.job_id
      LEFT JOIN (SELECT o.job_id, pg_catalog.max(o.updated_at) AS newest
                 FROM @extschema@.job_objects o
                 WHERE o.job_id OPERATOR(pg_catalog.=) ANY (SELECT y.job_id FROM @extschema@.job_counter_deltas y
                                    WHERE y.last_object_update_recheck)
                 GROUP BY o.job_id) r ON r.job_id OPERATOR(pg_catalog.=) j.job_id) s;
COMMENT ON VIEW @extschema@.job_progress_from_shards IS
    'internal to s3scan_jobs: a job''s counts from the counters of a distributed database, the definition job_progress_live takes there';

-- Makes job_progress_live read the counters (true) or aggregate the base tables (false): its
-- definition becomes that of job_progress_from_counters (job_progress_from_shards once the tables
-- are distributed) or job_progress_from_tables. A distributed database always reads its counters.
CREATE OR REPLACE FUNCTION @extschema@.define_job_progress_live(from_counters boolean) RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    distributed boolean := @extschema@.job_tables_distributed();
BEGIN
    IF distributed AND NOT from_counters THEN
        RAISE EXCEPTION 'the reads of a distributed database always use the per-job counters'
            USING ERRCODE = '0A000',
                  HINT = 'Counter maintenance stays on once distribute_job_tables() has run; see the README.';
    END IF;
    EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s.job_progress_live AS %s',
        '@extschema@',
        pg_catalog.pg_get_viewdef(CASE WHEN NOT from_counters THEN '@extschema@.job_progress_from_tables'::pg_catalog.regclass
                                       WHEN distributed THEN '@extschema@.job_progress_from_shards'::pg_catalog.regclass
                                       ELSE '@extschema@.job_progress_from_counters'::pg_catalog.regclass END));
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.define_job_progress_live(boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.define_job_progress_live(boolean) IS
    'internal to s3scan_jobs: makes job_progress_live a copy of job_progress_from_counters or job_progress_from_shards (true) or of job_progress_from_tables (false)';

-- Error 0A000 when the tables are distributed: what (a function's name) works on one server only.
CREATE FUNCTION @extschema@.refuse_when_distributed(what pg_catalog.text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    IF @extschema@.job_tables_distributed() THEN
        RAISE EXCEPTION '% is not supported on a distributed database', what
            USING ERRCODE = '0A000',
                  HINT = 'The README''s "Spreading over a Citus cluster" lists what a distributed database does differently.';
    END IF;
    RETURN true;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.refuse_when_distributed(pg_catalog.text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.refuse_when_distributed(pg_catalog.text) IS
    'internal to s3scan_jobs: error 0A000 when the tables are distributed (for what works on one server only)';

-- Whether a shard of job_counter_deltas has a row to fold, found without planning a query and
-- without waiting for a lock (false when the lock is taken: a shard being dropped or moved).
CREATE FUNCTION @extschema@.deltas_waiting(shard pg_catalog.regclass) RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_deltas_waiting';
REVOKE ALL ON FUNCTION @extschema@.deltas_waiting(pg_catalog.regclass) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.deltas_waiting(pg_catalog.regclass) IS
    'internal to s3scan_jobs: whether a shard of job_counter_deltas has rows to fold (false when its lock is taken), without planning a query';

-- Folds the deltas of the shards this node holds into their co-located counter shards, each in
-- the way fold_job_counters() folds the whole tables, and returns how many were folded. Runs
-- where the shards are, without a distributed transaction; the refresh worker of every node of
-- a distributed database calls it instead of fold_job_counters(). A shard another fold is folding
-- is skipped (a transaction-level advisory lock per shard is the turn), as is one that is being
-- moved away. On one server, it is fold_job_counters().
CREATE FUNCTION @extschema@.fold_job_counter_shards() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off
    AS $body$
DECLARE
    shard record;
    folded bigint := 0;
    n bigint;
BEGIN
    IF NOT @extschema@.job_tables_distributed() THEN
        RETURN @extschema@.fold_job_counters();
    END IF;
    -- Citus refuses changes of shards by sessions it did not open unless this is on.
    PERFORM pg_catalog.set_config('citus.enable_manual_changes_to_shards', 'on', true);
    FOR shard IN
        SELECT pg_catalog.format('%I.%I', '@extschema@', 'job_counter_deltas_' OPERATOR(pg_catalog.||) d.shardid) AS deltas,
               pg_catalog.format('%I.%I', '@extschema@', 'job_counters_' OPERATOR(pg_catalog.||) c.shardid) AS counters,
               pg_catalog.format('%I.%I', '@extschema@', 'jobs_' OPERATOR(pg_catalog.||) j.shardid) AS jobs,
               pg_catalog.format('%I.%I', '@extschema@', 'job_objects_' OPERATOR(pg_catalog.||) o.shardid) AS objects,
               c.shardid AS turn
        FROM pg_catalog.pg_dist_shard d
        JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) d.shardid
        JOIN pg_catalog.pg_dist_shard c ON c.logicalrelid OPERATOR(pg_catalog.=) '@extschema@.job_counters'::pg_catalog.regclass
                                       AND c.shardminvalue OPERATOR(pg_catalog.=) d.shardminvalue
        JOIN pg_catalog.pg_dist_shard j ON j.logicalrelid OPERATOR(pg_catalog.=) '@extschema@.jobs'::pg_catalog.regclass
                                       AND j.shardminvalue OPERATOR(pg_catalog.=) d.shardminvalue
        JOIN pg_catalog.pg_dist_shard o ON o.logicalrelid OPERATOR(pg_catalog.=) '@extschema@.job_objects'::pg_catalog.regclass
                                       AND o.shardminvalue OPERATOR(pg_catalog.=) d.shardminvalue
        WHERE d.logicalrelid OPERATOR(pg_catalog.=) '@extschema@.job_counter_deltas'::pg_catalog.regclass
          AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
        ORDER BY d.shardid
    LOOP
        CONTINUE WHEN pg_catalog.to_regclass(shard.deltas) IS NULL OR pg_catalog.to_regclass(shard.counters) IS NULL
                   OR pg_catalog.to_regclass(shard.jobs) IS NULL OR pg_catalog.to_regclass(shard.objects) IS NULL;
        -- An idle node's shards: nothing planned (and no JIT: the statement's estimate, with the
        -- newest update's subquery over a large shard of job_objects, can pass jit_above_cost).
        CONTINUE WHEN NOT @extschema@.deltas_waiting(pg_catalog.to_regclass(shard.deltas));
        CONTINUE WHEN NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('s3scan_jobs fold'), shard.turn::integer);
        -- A fold waits for no lock (a shard being dropped or moved is skipped): to Citus's deadlock
        -- detector a wait of this backend, which has no distributed transaction id, is the wait of
        -- every such backend, and a DROP EXTENSION that waited for a fold was cancelled as a
        -- distributed deadlock.
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE %s, %s IN ROW EXCLUSIVE MODE NOWAIT', shard.deltas, shard.counters);
            EXECUTE pg_catalog.format('LOCK TABLE %s, %s IN ACCESS SHARE MODE NOWAIT', shard.jobs, shard.objects);
        EXCEPTION WHEN lock_not_available THEN
            CONTINUE;
        END;
        EXECUTE pg_catalog.format($fold$
            WITH moved AS (
                DELETE FROM %1$s d RETURNING d.*),
            summed AS (
                SELECT m.job_id,
                       pg_catalog.sum(m.total_objects) AS total_objects,
                       pg_catalog.sum(m.queued_count) AS queued_count,
                       pg_catalog.sum(m.processing_count) AS processing_count,
                       pg_catalog.sum(m.succeeded_count) AS succeeded_count,
                       pg_catalog.sum(m.failed_count) AS failed_count,
                       pg_catalog.sum(m.total_findings) AS total_findings,
                       pg_catalog.max(m.last_object_update) AS last_object_update,
                       pg_catalog.bool_or(m.last_object_update_recheck) AS recheck,
                       pg_catalog.count(*) AS deltas
                FROM moved m GROUP BY m.job_id),
            added AS (
                SELECT s.job_id,
                       COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) s.total_objects AS total_objects,
                       COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) s.queued_count AS queued_count,
                       COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) s.processing_count AS processing_count,
                       COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) s.succeeded_count AS succeeded_count,
                       COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) s.failed_count AS failed_count,
                       COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) s.total_findings AS total_findings,
                       CASE WHEN s.recheck
                            THEN (SELECT pg_catalog.max(o.updated_at) FROM %4$s o
                                  WHERE o.job_id OPERATOR(pg_catalog.=) s.job_id)
                            ELSE GREATEST(c.last_object_update, s.last_object_update)
                       END AS last_object_update,
                       NOT EXISTS (SELECT FROM %3$s j WHERE j.job_id OPERATOR(pg_catalog.=) s.job_id) AS job_gone
                FROM summed s LEFT JOIN %2$s c ON c.job_id OPERATOR(pg_catalog.=) s.job_id),
            put AS (
                INSERT INTO %2$s AS c
                SELECT a.job_id, a.total_objects, a.queued_count, a.processing_count, a.succeeded_count,
                       a.failed_count, a.total_findings,
                       CASE WHEN a.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::pg_catalog.timestamptz
                            ELSE a.last_object_update END
                FROM added a
                WHERE NOT (a.job_gone AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint
                           AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
                ON CONFLICT (job_id) DO UPDATE
                SET total_objects = excluded.total_objects, queued_count = excluded.queued_count,
                    processing_count = excluded.processing_count, succeeded_count = excluded.succeeded_count,
                    failed_count = excluded.failed_count, total_findings = excluded.total_findings,
                    last_object_update = excluded.last_object_update),
            dropped AS (
                DELETE FROM %2$s c USING added a
                WHERE c.job_id OPERATOR(pg_catalog.=) a.job_id AND a.job_gone
                  AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
            SELECT COALESCE(pg_catalog.sum(s.deltas), 0::numeric)::bigint FROM summed s
            $fold$, shard.deltas, shard.counters, shard.jobs, shard.objects) INTO n;
        folded := folded OPERATOR(pg_catalog.+) n;
    END LOOP;
    RETURN folded;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.fold_job_counter_shards() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.fold_job_counter_shards() IS
    'for operators: on a node of a distributed database, move the pending counter deltas of the shards it holds into their counters now (on one server: fold_job_counters()); returns how many were folded';

-- On a worker node, the ids of job_objects and findings written through it come from the node's
-- own sequences, which start where the coordinator's do. This gives them a range of their own
-- (as Citus gives the sequences of the tables it distributes): from the node's group id times
-- 2^48, plus 1, for 2^48 values. The coordinator (group 0) keeps its range from 1. Run on every
-- worker node by distribute_job_tables(), and by each node's refresh worker (for nodes added
-- later); true when it changed something.
CREATE FUNCTION @extschema@.claim_node_id_range() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    node_group bigint;
    first bigint;
    seq pg_catalog.text;
    changed boolean := false;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT g.groupid FROM pg_catalog.pg_dist_local_group g' INTO node_group;
    IF node_group IS NULL OR node_group OPERATOR(pg_catalog.<=) 0 THEN
        RETURN false;
    END IF;
    first := (node_group OPERATOR(pg_catalog.<<) 48) OPERATOR(pg_catalog.+) 1;
    FOREACH seq IN ARRAY ARRAY['job_objects_id_seq', 'findings_id_seq'] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_sequences s
                              WHERE s.schemaname OPERATOR(pg_catalog.=) '@extschema@'
                                AND s.sequencename OPERATOR(pg_catalog.=) seq
                                AND s.min_value OPERATOR(pg_catalog.=) first);
        EXECUTE pg_catalog.format('ALTER SEQUENCE %I.%I MINVALUE %s MAXVALUE %s START %s RESTART %s',
                                  '@extschema@', seq, first,
                                  first OPERATOR(pg_catalog.+) (1::bigint OPERATOR(pg_catalog.<<) 48) OPERATOR(pg_catalog.-) 1,
                                  first, first);
        changed := true;
    END LOOP;
    RETURN changed;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.claim_node_id_range() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.claim_node_id_range() IS
    'internal to s3scan_jobs: on a Citus worker node, gives the sequences of job_objects and findings a range of ids of their own';

-- Spreads the per-job tables over the worker nodes of the Citus cluster this database is the
-- coordinator of: jobs, job_objects, findings, job_counters and job_counter_deltas become
-- distributed tables sharded by job_id, co-located, in shard_count shards, with the rows already
-- there. A distributed table's keys must contain job_id: the primary keys of job_objects and
-- findings become (job_id, id), and findings' de-duplication key (job_id, bucket, key, etag,
-- detector, byte_offset), per job. The coordinator keeps job_progress (the cache), the refresh
-- log and history. Once, in one transaction; refuses (55000) without Citus, on a worker node,
-- without an active worker node, or when it has run already.
CREATE FUNCTION @extschema@.distribute_job_tables(shard_count integer DEFAULT 32) RETURNS pg_catalog.void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    distributed pg_catalog.text;
BEGIN
    IF shard_count IS NULL OR shard_count OPERATOR(pg_catalog.<) 1 OR shard_count OPERATOR(pg_catalog.>) 64000 THEN
        RAISE EXCEPTION 'shard_count must be between 1 and 64000, not %', shard_count USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = '55000',
                  HINT = 'Load citus first in shared_preload_libraries on every node, run CREATE EXTENSION citus, '
                         'add the worker nodes with citus_add_node(), then call distribute_job_tables() again.';
    END IF;
    IF @extschema@.job_tables_distributed() THEN
        RAISE EXCEPTION 'the job tables are distributed already'
            USING ERRCODE = '55000', DETAIL = 'distribute_job_tables() runs once.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'distribute_job_tables() runs on the coordinator, and this node is not it'
            USING ERRCODE = '55000',
                  HINT = 'Connect to the coordinator; a node that has not been added to a cluster yet becomes its '
                         'coordinator with citus_set_coordinator_host().';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_node n
                   WHERE n.groupid OPERATOR(pg_catalog.<>) 0 AND n.isactive AND n.noderole OPERATOR(pg_catalog.=) 'primary'
                     AND n.shouldhaveshards) THEN
        RAISE EXCEPTION 'the Citus cluster has no active worker node to hold shards'
            USING ERRCODE = '55000', HINT = 'Add one with citus_add_node(), then call distribute_job_tables() again.';
    END IF;

    -- job_progress first, as a refresh locks it, then what the refresh reads: never hold what a
    -- running refresh waits for while waiting for it. COMMENT ON takes SHARE UPDATE EXCLUSIVE
    -- (LOCK TABLE takes no materialized view); the comment stays as it is.
    EXECUTE pg_catalog.format('COMMENT ON MATERIALIZED VIEW %I.job_progress IS %L', '@extschema@',
        pg_catalog.obj_description('@extschema@.job_progress'::pg_catalog.regclass, 'pg_class'));
    -- Nothing writes or folds meanwhile. The counter triggers of the shards count the rows as
    -- Citus copies them in: the counters start empty there (this transaction's pending sums too).
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects, @extschema@.findings, @extschema@.job_counters_lock,
               @extschema@.job_counters, @extschema@.job_counter_deltas IN ACCESS EXCLUSIVE MODE;
    PERFORM @extschema@.require_counter_maintenance();
    DELETE FROM @extschema@.job_counter_deltas;
    DELETE FROM @extschema@.job_counters;
    PERFORM @extschema@.cancel_pending_counter_deltas(NULL::pg_catalog.uuid);

    -- Keys with the distribution column.
    ALTER TABLE @extschema@.job_objects DROP CONSTRAINT job_objects_pkey,
        ADD CONSTRAINT job_objects_pkey PRIMARY KEY (job_id, id);
    ALTER TABLE @extschema@.findings DROP CONSTRAINT findings_pkey,
        ADD CONSTRAINT findings_pkey PRIMARY KEY (job_id, id);
    ALTER TABLE @extschema@.findings DROP CONSTRAINT findings_dedup_key,
        ADD CONSTRAINT findings_dedup_key UNIQUE NULLS NOT DISTINCT (job_id, bucket, key, etag, detector, byte_offset);

    -- The counter triggers fire on the shards (Citus calls triggers on distributed tables unsafe:
    -- ours write only to the co-located shard of job_counter_deltas, which is safe).
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- One connection per node for the whole transaction: a shard's trigger, as Citus copies the
    -- rows into that shard, must see the counters' shards created before it on the same node.
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- The counters' shards first: the triggers of the others' shards write into them.
    PERFORM pg_catalog.create_distributed_table('@extschema@.jobs', 'job_id', shard_count => shard_count);
    PERFORM pg_catalog.create_distributed_table('@extschema@.job_counters', 'job_id', colocate_with => '@extschema@.jobs');
    PERFORM pg_catalog.create_distributed_table('@extschema@.job_counter_deltas', 'job_id', colocate_with => '@extschema@.jobs');
    PERFORM pg_catalog.create_distributed_table('@extschema@.job_objects', 'job_id', colocate_with => '@extschema@.jobs');
    PERFORM pg_catalog.create_distributed_table('@extschema@.findings', 'job_id', colocate_with => '@extschema@.jobs');
    -- The coordinator's copies of the rows, now in the shards.
    FOREACH distributed IN ARRAY ARRAY['findings', 'job_objects', 'jobs', 'job_counters', 'job_counter_deltas'] LOOP
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(
            pg_catalog.format('%I.%I', '@extschema@', distributed)::pg_catalog.regclass);
    END LOOP;

    PERFORM @extschema@.define_job_progress_live(true);
    REFRESH MATERIALIZED VIEW @extschema@.job_progress;
    PERFORM @extschema@.note_data_change();
    -- Ids written through a worker node: a range per node (its refresh worker does the same for
    -- a node added later). Citus runs this on each node in a transaction of its own.
    PERFORM pg_catalog.run_command_on_workers(
        pg_catalog.format('SELECT %I.claim_node_id_range()', '@extschema@'));
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.distribute_job_tables(integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.distribute_job_tables(integer) IS
    'for operators: spread the per-job tables over the Citus cluster this database is the coordinator of, sharded by job_id (once; see the README)';

-- DROP EXTENSION s3scan_jobs of a distributed database: Citus runs it on every worker node too,
-- where the shards' counter triggers depend on the extension's functions (the drop would fail)
-- and the shards are no members of it (they would stay behind: Citus drops no shard of a table an
-- extension owns). This event trigger, on the coordinator, drops every shard of the extension's
-- tables first (citus_drop_all_shards()), in the dropping transaction, so a failed drop keeps
-- them. On one server it does nothing.
CREATE FUNCTION @extschema@.on_extension_drop() RETURNS pg_catalog.event_trigger
    LANGUAGE c
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_on_extension_drop';
REVOKE ALL ON FUNCTION @extschema@.on_extension_drop() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.on_extension_drop() IS
    'internal to s3scan_jobs: event trigger function: before DROP EXTENSION s3scan_jobs of a distributed database, drops the shards this node holds';
CREATE EVENT TRIGGER s3scan_jobs_extension_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION @extschema@.on_extension_drop();
ALTER EVENT TRIGGER s3scan_jobs_extension_drop ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER s3scan_jobs_extension_drop IS
    'internal to s3scan_jobs: before DROP EXTENSION s3scan_jobs of a distributed database, drops the shards each node holds';

-- The guards ------------------------------------------------------------------------------------
-- Two event triggers, ENABLE ALWAYS (also for a session with session_replication_role = replica
-- or local): ALTER TABLE and ALTER INDEX may not change the columns or names of the internal
-- tables or the names of their indexes; jobs, job_objects and findings take no part in
-- inheritance or partitioning (a child's rows would not be counted); and when the counter
-- triggers are changed by anything but set_counter_maintenance() (ALTER TABLE ... DISABLE/ENABLE
-- TRIGGER ALL, as pg_restore --disable-triggers emits), reads go back to counting the base tables
-- until set_counter_maintenance(true). Created last: they do nothing inside CREATE EXTENSION
-- anyway.

-- Neither pins search_path: the first resolves the command's table name as the session does; the
-- second resolves no name and runs its one statement as the owner of job_counters under a
-- search_path pinned in C (src/table_guards.cpp).
CREATE FUNCTION @extschema@.on_table_ddl_start() RETURNS pg_catalog.event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_start';
CREATE FUNCTION @extschema@.on_table_ddl_end() RETURNS pg_catalog.event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_end';
REVOKE ALL ON FUNCTION @extschema@.on_table_ddl_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.on_table_ddl_end() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.on_table_ddl_start() IS
    'internal to s3scan_jobs: event trigger function: refuses changes of the internal tables'' columns and names and of their indexes'' names';
COMMENT ON FUNCTION @extschema@.on_table_ddl_end() IS
    'internal to s3scan_jobs: event trigger function: refuses inheritance and partitioning of the counted tables, notices counter trigger changes';

-- The internal tables keep their columns and names, and their indexes their names (the folds
-- name job_counters_pkey).
CREATE EVENT TRIGGER s3scan_jobs_table_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX')
    EXECUTE FUNCTION @extschema@.on_table_ddl_start();
-- No inheritance or partitioning; counter triggers changed outside set_counter_maintenance().
CREATE EVENT TRIGGER s3scan_jobs_table_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
                 'DROP TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION @extschema@.on_table_ddl_end();
ALTER EVENT TRIGGER s3scan_jobs_table_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER s3scan_jobs_table_ddl_end ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER s3scan_jobs_table_ddl_start IS
    'internal to s3scan_jobs: refuses changes of the columns and names of job_counters, job_counter_deltas and job_counters_lock and of their indexes'' names';
COMMENT ON EVENT TRIGGER s3scan_jobs_table_ddl_end IS
    'internal to s3scan_jobs: refuses inheritance and partitioning of jobs, job_objects and findings; makes reads count the base tables when the counter triggers change outside set_counter_maintenance()';

-- pg_dump ---------------------------------------------------------------------------------------

-- pg_dump keeps the rows of the data tables and their sequences. Not the refresh log: it
-- describes this database's job_progress, which pg_dump does not copy either. Nor the counters:
-- restoring the base tables fires the counter triggers, which count the restored rows.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_objects', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.findings', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_objects_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.findings_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_history_id_seq', '');
