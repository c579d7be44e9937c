-- s3scan_jobs 1.0 install script: the scanner's tables, the real-time and cached views, the
-- refresh log and history, job_status(), refresh_job_progress() and the worker's SQL functions.
--
-- Rules followed (PostgreSQL's rules for extension scripts, and CONTRIBUTING.md's hardening rule):
-- no CREATE OR REPLACE and no IF NOT EXISTS; references to the extension's own objects are
-- qualified with @extschema@; every operator is written OPERATOR(pg_catalog.x) and every function
-- call pg_catalog.f(...), with operands cast explicitly, so that nothing another role creates in a
-- schema on the search_path can capture a name; every function pins search_path, but for the
-- updated_at trigger and the two REFRESH event triggers (see there).

\echo Use "CREATE EXTENSION s3scan_jobs" to load this file. \quit

-- Tables the scanner's clients already use -----------------------------------------------------

CREATE TABLE @extschema@.jobs (
    job_id        uuid PRIMARY KEY,
    bucket        text NOT NULL,
    prefix        text DEFAULT '',
    execution_arn text,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.job_objects (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES @extschema@.jobs (job_id) ON DELETE CASCADE,
    bucket     text NOT NULL,
    key        text NOT NULL,
    etag       text,
    status     text NOT NULL DEFAULT 'queued'
               CONSTRAINT job_objects_status_check
               CHECK (status OPERATOR(pg_catalog.=) ANY
                      (ARRAY['queued'::text, 'processing'::text, 'succeeded'::text, 'failed'::text])),
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The natural key; also the index every per-job read of job_objects uses (job_id leads).
    CONSTRAINT job_objects_natural_key UNIQUE NULLS NOT DISTINCT (job_id, bucket, key, etag)
);

CREATE TABLE @extschema@.findings (
    id           bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES @extschema@.jobs (job_id) ON DELETE CASCADE,
    bucket       text NOT NULL,
    key          text NOT NULL,
    etag         text,
    detector     text NOT NULL,
    masked_match text NOT NULL,
    context      text,
    byte_offset  integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT findings_dedup_key UNIQUE NULLS NOT DISTINCT (bucket, key, etag, detector, byte_offset)
);
CREATE INDEX findings_job_id_idx ON @extschema@.findings (job_id);
-- The API lists findings newest first (or oldest first) without a job filter.
CREATE INDEX findings_created_at_idx ON @extschema@.findings (created_at);
-- The scanner system's own indexes on jobs, kept for the reads that use them.
CREATE INDEX jobs_created_at_idx ON @extschema@.jobs (created_at);
CREATE INDEX jobs_execution_arn_idx ON @extschema@.jobs (execution_arn) WHERE execution_arn IS NOT NULL;

-- updated_at kept current on every UPDATE, by a C trigger (same effect as the clients'
-- plpgsql "NEW.updated_at = now()" trigger, without a PL call per row). It does not pin
-- search_path: it resolves no name, and the pin (a GUC change and restore per row) would cost
-- about 10% of the scanner workers' per-object UPDATE throughput.
CREATE FUNCTION @extschema@.touch_updated_at() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_touch_updated_at';

CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON @extschema@.jobs
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();
CREATE TRIGGER job_objects_touch_updated_at BEFORE UPDATE ON @extschema@.job_objects
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();

-- Refresh bookkeeping --------------------------------------------------------------------------

-- One row per materialized view: when its data was taken, how long the refresh took, totals.
-- The API reads last_refreshed_at to say how old cached answers are.
CREATE TABLE @extschema@.materialized_view_refresh_log (
    view_name           text PRIMARY KEY,
    last_refreshed_at   timestamptz,
    refresh_duration_ms integer,
    total_jobs          integer,
    total_objects       bigint
);

-- Every refresh attempt, whoever started it; bounded by s3scan_jobs.history_limit.
CREATE TABLE @extschema@.refresh_history (
    id            bigserial PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    duration_ms   double precision NOT NULL,
    outcome       text NOT NULL CHECK (outcome OPERATOR(pg_catalog.=) ANY
                      (ARRAY['refreshed'::text, 'skipped'::text, 'failed'::text])),
    mode          text CHECK (mode OPERATOR(pg_catalog.=) ANY (ARRAY['concurrent'::text, 'full'::text])),
    total_jobs    bigint,
    total_objects bigint,
    error         text,
    origin        text NOT NULL CHECK (origin OPERATOR(pg_catalog.=) ANY
                      (ARRAY['worker'::text, 'sql'::text, 'pg_cron'::text, 'refresh_command'::text]))
);

-- Views ------------------------------------------------------------------------------------------

-- The one definition of a job's counts. job_progress materializes it, job_summary renames its
-- columns, job_status(real_time => true) reads it for one job. Objects and findings are
-- aggregated separately before the join, so a job's rows are never multiplied; a filter on
-- job_id is pushed into both aggregates, so a per-job read touches only that job's rows.
-- last_object_update (when an object of the job last changed: the stall signal of a dashboard)
-- comes last, so that positional readers of the other columns keep working.
-- Like job_summary, it reads with its owner's rights, so that SELECT on a view is enough to read
-- it; job_status's real-time answer reads its definition with the caller's own rights instead.
CREATE VIEW @extschema@.job_progress_live AS
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
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::text) AS queued_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::text) AS processing_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::text) AS succeeded_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::text) AS failed_count,
                  pg_catalog.max(jo.updated_at) AS last_object_update
           FROM @extschema@.job_objects jo
           GROUP BY jo.job_id) o ON o.job_id OPERATOR(pg_catalog.=) j.job_id
LEFT JOIN (SELECT fi.job_id, pg_catalog.count(*) AS total_findings
           FROM @extschema@.findings fi
           GROUP BY fi.job_id) f ON f.job_id OPERATOR(pg_catalog.=) j.job_id;

-- The design note's real-time view, with its column names; always exact.
CREATE VIEW @extschema@.job_summary AS
SELECT job_id, bucket, prefix, created_at, updated_at,
       total_objects,
       queued_count     AS queued,
       processing_count AS processing,
       succeeded_count  AS succeeded,
       failed_count     AS failed,
       total_findings
FROM @extschema@.job_progress_live;

-- The cache. Refreshed by refresh_job_progress(), the worker, pg_cron or a person.
CREATE MATERIALIZED VIEW @extschema@.job_progress AS
SELECT * FROM @extschema@.job_progress_live;
CREATE UNIQUE INDEX job_progress_job_id_idx ON @extschema@.job_progress (job_id);
-- The dashboard's newest-first list of jobs.
CREATE INDEX job_progress_created_at_idx ON @extschema@.job_progress (created_at DESC);

-- Jobs not finished, newest first, as the scanner system counts them: progress below 100,
-- including jobs whose objects are still being listed (none yet).
CREATE VIEW @extschema@.active_jobs_progress AS
SELECT * FROM @extschema@.job_progress
WHERE progress_percent OPERATOR(pg_catalog.<) 100::numeric
ORDER BY created_at DESC;

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

-- The cache was just populated: say so in the log.
INSERT INTO @extschema@.materialized_view_refresh_log
    (view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects)
VALUES ('job_progress', pg_catalog.now(), 0, 0, 0);

-- job_status -----------------------------------------------------------------------------------

CREATE TYPE @extschema@.job_status_result AS (
    job_id           uuid,
    bucket           text,
    prefix           text,
    execution_arn    text,
    created_at       timestamptz,
    updated_at       timestamptz,
    total_objects    bigint,
    queued_count     bigint,
    processing_count bigint,
    succeeded_count  bigint,
    failed_count     bigint,
    total_findings   bigint,
    progress_percent numeric,
    status           text,
    data_source      text,
    cache_timestamp  timestamptz
);

CREATE FUNCTION @extschema@.job_status(job_id uuid, real_time boolean DEFAULT false)
    RETURNS SETOF @extschema@.job_status_result
    LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_job_status';
COMMENT ON FUNCTION @extschema@.job_status(uuid, boolean) IS
    'progress of one scan job: from job_progress when it can, else real time; zero rows for an unknown job';

-- Refresh ----------------------------------------------------------------------------------------

CREATE TYPE @extschema@.refresh_result AS (
    outcome       text,
    mode          text,
    started_at    timestamptz,
    duration_ms   double precision,
    total_jobs    bigint,
    total_objects bigint,
    message       text
);

-- SECURITY DEFINER, so that the one right to refresh can be handed to a role (GRANT EXECUTE)
-- without ownership of job_progress or any right on the tables. Safe because search_path is
-- pinned and every name the refresh runs (the view's query, the bookkeeping) is qualified.
CREATE FUNCTION @extschema@.refresh_job_progress()
    RETURNS @extschema@.refresh_result
    LANGUAGE c VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_job_progress';
REVOKE ALL ON FUNCTION @extschema@.refresh_job_progress() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.refresh_job_progress() IS
    'refresh job_progress (concurrently when populated), log it; skips at once if a refresh is running';

-- A REFRESH MATERIALIZED VIEW job_progress typed by a person also keeps the log and the
-- history right: an event trigger around the command (refreshes made by
-- refresh_job_progress() are recorded by it and ignored here). These two do not pin
-- search_path: they must resolve the command's view name exactly as the person's session does.
-- They resolve no other name; their bookkeeping SQL is qualified and runs under a search_path
-- pinned in C.
CREATE FUNCTION @extschema@.on_refresh_command_start() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_refresh_command_start';
CREATE FUNCTION @extschema@.on_refresh_command_end() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_refresh_command_end';
REVOKE ALL ON FUNCTION @extschema@.on_refresh_command_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.on_refresh_command_end() FROM PUBLIC;
CREATE EVENT TRIGGER s3scan_jobs_refresh_command_start ON ddl_command_start
    WHEN TAG IN ('REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION @extschema@.on_refresh_command_start();
CREATE EVENT TRIGGER s3scan_jobs_refresh_command_end ON ddl_command_end
    WHEN TAG IN ('REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION @extschema@.on_refresh_command_end();

-- The refresh worker -----------------------------------------------------------------------------

CREATE FUNCTION @extschema@.refresh_worker_start() RETURNS integer
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_start';
CREATE FUNCTION @extschema@.refresh_worker_stop() RETURNS boolean
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_stop';
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_stop() FROM PUBLIC;

CREATE FUNCTION @extschema@.refresh_worker_status_all(
    OUT database name, OUT pid integer, OUT state text, OUT started_by text,
    OUT last_refresh_start timestamptz, OUT last_refresh_duration_ms double precision,
    OUT last_refresh_outcome text, OUT last_error text, OUT consecutive_failures integer,
    OUT next_refresh_due timestamptz)
    RETURNS SETOF record
    LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_refresh_worker_status';

-- What each refresh worker is doing, one row per database it serves (or is configured to), for
-- every database of the server: shown to superusers and to pg_monitor, as pg_stat_activity's
-- details of other sessions are.
CREATE VIEW @extschema@.refresh_worker_status AS
SELECT * FROM @extschema@.refresh_worker_status_all();
REVOKE ALL ON FUNCTION @extschema@.refresh_worker_status_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.refresh_worker_status_all() TO pg_monitor;
GRANT SELECT ON @extschema@.refresh_worker_status TO pg_monitor;

-- pg_dump keeps the rows of the data tables and their sequences. The refresh log is not dumped:
-- it describes this database's job_progress, which pg_dump does not copy either.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_objects', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.findings', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_objects_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.findings_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_history_id_seq', '');
