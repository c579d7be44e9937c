--
-- 006_privileges: who may read, who may refresh, pinned search_path, the
-- extension not trusted, and the extension in a schema of its own.
--
CREATE EXTENSION s3scan_jobs;

INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/', '2024-04-01 10:00:00+00', '2024-04-01 10:00:00+00');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/1', 'e1', 'succeeded'),
       ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/2', 'e2', 'queued');
SELECT outcome FROM refresh_job_progress();

CREATE ROLE regress_s3scan_nobody;
CREATE ROLE regress_s3scan_reader;
CREATE ROLE regress_s3scan_refresher;
CREATE ROLE regress_s3scan_monitor IN ROLE pg_monitor;

\set VERBOSITY sqlstate

-- A role with no grants: permission denied (42501) on both paths.
SET ROLE regress_s3scan_nobody;
SELECT status, data_source FROM job_status('10000000-0000-4000-8000-000000000001');
SELECT status, data_source FROM job_status('10000000-0000-4000-8000-000000000001', true);
SELECT count(*) FROM job_status('10000000-0000-4000-8000-0000000000ff');
SELECT count(*) FROM job_progress;
SELECT count(*) FROM job_summary;
-- nor may it refresh
SELECT outcome FROM refresh_job_progress();
SELECT refresh_worker_start();
SELECT refresh_worker_stop();
-- nor see the workers of the server (database names, pids, errors)
SELECT count(*) FROM refresh_worker_status;
SELECT count(*) FROM refresh_worker_status_all();
RESET ROLE;

-- pg_monitor sees them, as it sees other sessions in pg_stat_activity.
SET ROLE regress_s3scan_monitor;
SELECT count(*) > 0 AS sees_workers FROM refresh_worker_status;
RESET ROLE;

-- The cached answer reads job_progress (and the job's row, and the refresh log) with the
-- caller's rights; the real-time answer reads job_progress_live with the caller's rights on
-- that view (since 1.1 it reads the per-job counters, which no client is granted), as a read of
-- job_summary does. SELECT on the tables alone is not enough for it.
GRANT SELECT ON jobs, job_objects, findings, job_progress, materialized_view_refresh_log TO regress_s3scan_reader;
SET ROLE regress_s3scan_reader;
SELECT total_objects, succeeded_count, status, data_source,
       cache_timestamp IS NOT NULL AS has_cache_timestamp
FROM job_status('10000000-0000-4000-8000-000000000001');
SELECT total_objects, succeeded_count, status, data_source
FROM job_status('10000000-0000-4000-8000-000000000001', true);
RESET ROLE;
GRANT SELECT ON job_progress_live TO regress_s3scan_reader;
SET ROLE regress_s3scan_reader;
SELECT total_objects, succeeded_count, status, data_source
FROM job_status('10000000-0000-4000-8000-000000000001', true);
SELECT count(*) FROM job_status('10000000-0000-4000-8000-0000000000ff');
-- reading does not give the right to refresh, or to write, or to read the counters directly
SELECT outcome FROM refresh_job_progress();
INSERT INTO jobs (job_id, bucket) VALUES ('10000000-0000-4000-8000-000000000002', 'b');
SELECT count(*) FROM job_counters;
SELECT count(*) FROM job_counter_deltas;
RESET ROLE;

-- REVOKE takes it away again.
REVOKE SELECT ON job_progress_live FROM regress_s3scan_reader;
SET ROLE regress_s3scan_reader;
SELECT status FROM job_status('10000000-0000-4000-8000-000000000001', true);
RESET ROLE;

-- A writer needs no right on the counters: the triggers append the deltas as their owner.
GRANT INSERT, UPDATE, DELETE ON job_objects, findings TO regress_s3scan_reader;
GRANT USAGE ON SEQUENCE job_objects_id_seq, findings_id_seq TO regress_s3scan_reader;
SET ROLE regress_s3scan_reader;
INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('10000000-0000-4000-8000-000000000001', 'b', 'written-by-reader', 'e');
UPDATE job_objects SET status = 'failed' WHERE key = 'written-by-reader';
INSERT INTO findings (job_id, bucket, key, detector, masked_match, byte_offset)
VALUES ('10000000-0000-4000-8000-000000000001', 'b', 'written-by-reader', 'd', '*', 1);
DELETE FROM findings WHERE key = 'written-by-reader';
DELETE FROM job_objects WHERE key = 'written-by-reader';
RESET ROLE;
SELECT count(*) AS differing FROM verify_job_counters();
REVOKE INSERT, UPDATE, DELETE ON job_objects, findings FROM regress_s3scan_reader;
REVOKE USAGE ON SEQUENCE job_objects_id_seq, findings_id_seq FROM regress_s3scan_reader;

-- job_summary and job_progress_live read with their owner's rights: SELECT on a view alone is
-- enough to read it (as before the extension existed, for a dashboard role), not the tables.
CREATE ROLE regress_s3scan_summary;
GRANT SELECT ON job_summary, job_progress_live TO regress_s3scan_summary;
SET ROLE regress_s3scan_summary;
SELECT total_objects, succeeded, queued FROM job_summary;
SELECT count(*) FROM job_progress_live;
SELECT count(*) FROM jobs;
RESET ROLE;
DROP OWNED BY regress_s3scan_summary;
DROP ROLE regress_s3scan_summary;

\set VERBOSITY default

-- PUBLIC cannot execute the refresh and worker functions; it can call
-- job_status (which then needs table privileges, as above).
SELECT f AS function, has_function_privilege('public', f, 'EXECUTE') AS public_can_execute
FROM unnest(ARRAY['refresh_job_progress()', 'refresh_worker_start()', 'refresh_worker_stop()',
                  'job_status(uuid, boolean)']) f;
-- and neither can the roles above
SELECT has_function_privilege('regress_s3scan_reader', 'refresh_job_progress()', 'EXECUTE') AS reader_can_refresh;

-- Delegated refresh: EXECUTE on refresh_job_progress() alone lets a role refresh (the function
-- is SECURITY DEFINER), and its refreshes are in the log and the history.
GRANT EXECUTE ON FUNCTION refresh_job_progress() TO regress_s3scan_refresher;
SELECT coalesce(max(id), 0) AS hist_before FROM refresh_history \gset
SET ROLE regress_s3scan_refresher;
BEGIN;
SELECT outcome, mode, total_jobs, total_objects FROM refresh_job_progress();
SELECT now() AS refreshed_in \gset
COMMIT;
RESET ROLE;
SELECT origin, outcome, mode, total_jobs, total_objects FROM refresh_history WHERE id > :hist_before ORDER BY id;
SELECT last_refreshed_at = :'refreshed_in' AS log_has_the_delegated_refresh, total_jobs, total_objects
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
-- It gained no other right: no table, no view, no REFRESH of its own (which leaves nothing in
-- the log or the history), no worker control.
SELECT coalesce(max(id), 0) AS hist_before FROM refresh_history \gset
SELECT last_refreshed_at AS log_before FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
SET ROLE regress_s3scan_refresher;
\set VERBOSITY sqlstate
SELECT count(*) FROM jobs;
SELECT count(*) FROM job_progress;
SELECT count(*) FROM refresh_history;
INSERT INTO materialized_view_refresh_log (view_name) VALUES ('x');
REFRESH MATERIALIZED VIEW job_progress;
REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress;
SELECT refresh_worker_start();
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS history_rows_from_denied_refreshes FROM refresh_history WHERE id > :hist_before;
SELECT last_refreshed_at = :'log_before' AS log_untouched_by_denied_refreshes
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
REVOKE EXECUTE ON FUNCTION refresh_job_progress() FROM regress_s3scan_refresher;
SET ROLE regress_s3scan_refresher;
\set VERBOSITY sqlstate
SELECT outcome FROM refresh_job_progress();
\set VERBOSITY default
RESET ROLE;

-- Every function of the extension pins search_path, except the updated_at trigger (a C function
-- that resolves no name, on the scanner's hottest statement, where the pin would cost ~10% of
-- UPDATE throughput), the two counter triggers (C; the TRUNCATE one pins it around its SQL), the
-- two REFRESH event-trigger functions and the table DDL event trigger of ddl_command_start (C
-- functions that must resolve the command's relation as the session does), and the one of
-- ddl_command_end (C, resolves no name; pins it around its SQL). They must stay the only
-- exceptions, and stay in C.
CREATE FUNCTION pg_temp.ext_functions(ext name)
RETURNS TABLE (fn regprocedure, pins_search_path boolean) LANGUAGE sql AS $$
    SELECT p.oid::regprocedure,
           EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = ext
$$;
SELECT count(*) >= 3 AS has_functions,
       bool_and(pins_search_path) FILTER (WHERE fn NOT IN ('touch_updated_at()'::regprocedure,
           'on_refresh_command_start()'::regprocedure, 'on_refresh_command_end()'::regprocedure,
           'count_changes()'::regprocedure, 'count_truncate()'::regprocedure,
           'on_table_ddl_start()'::regprocedure, 'on_table_ddl_end()'::regprocedure))
           AS all_others_pin_search_path
FROM pg_temp.ext_functions('s3scan_jobs');
-- (lists every function that does not, with its language)
SELECT f.fn, l.lanname
FROM pg_temp.ext_functions('s3scan_jobs') f
JOIN pg_proc p ON p.oid = f.fn JOIN pg_language l ON l.oid = p.prolang
WHERE NOT f.pins_search_path ORDER BY 1;

-- Five functions run with their owner's rights, so that each right can be granted alone:
-- refresh_job_progress(), and the counters' folds (of the tables, of a node's shards), verify and
-- repair. They pin search_path
-- (above). The counter triggers (C, no SQL name resolved with the session's search_path: their
-- statements are qualified) write as the owner of job_counter_deltas without being SECURITY
-- DEFINER.
SELECT f.fn AS security_definer_function
FROM pg_temp.ext_functions('s3scan_jobs') f JOIN pg_proc p ON p.oid = f.fn
WHERE p.prosecdef;

-- The extension is not trusted: only a superuser may create it.
SELECT name, version, superuser, trusted, relocatable
FROM pg_available_extension_versions WHERE name = 's3scan_jobs' AND version = '1.0';

DROP EXTENSION s3scan_jobs CASCADE;

-- CREATE EXTENSION ... SCHEMA: everything in that schema, nothing in
-- public, and job_status works called by its qualified name.
CREATE SCHEMA s3other;
CREATE EXTENSION s3scan_jobs SCHEMA s3other;
SELECT n.nspname, count(*) > 0 AS has_objects
FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 's3scan_jobs')
GROUP BY n.nspname;
SELECT n.nspname, count(*) > 0 AS has_functions
FROM pg_temp.ext_functions('s3scan_jobs') f JOIN pg_proc p ON p.oid = f.fn
JOIN pg_namespace n ON n.oid = p.pronamespace
GROUP BY n.nspname;
SELECT count(*) AS in_public FROM pg_class
WHERE relnamespace = 'public'::regnamespace
  AND relname IN ('jobs', 'job_objects', 'findings', 'job_progress', 'job_summary',
                  'active_jobs_progress', 'materialized_view_refresh_log', 'refresh_history');

-- decoys in public with the same names must not be picked up: search_path
-- is pinned to the extension's schema
CREATE TABLE public.jobs (job_id uuid, bucket text);
INSERT INTO public.jobs VALUES ('10000000-0000-4000-8000-000000000001', 'decoy');
SHOW search_path;

INSERT INTO s3other.jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/', '2024-04-01 10:00:00+00', '2024-04-01 10:00:00+00');
INSERT INTO s3other.job_objects (job_id, bucket, key, etag, status)
VALUES ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/1', 'e1', 'succeeded'),
       ('10000000-0000-4000-8000-000000000001', 'my-bucket', 'p/2', 'e2', 'failed');
SELECT * FROM s3other.job_status('10000000-0000-4000-8000-000000000001');
SELECT outcome, mode, total_jobs, total_objects FROM s3other.refresh_job_progress();
SELECT job_id, bucket, total_objects, progress_percent, status, data_source
FROM s3other.job_status('10000000-0000-4000-8000-000000000001');
SELECT bucket, total_objects FROM s3other.job_summary;
SELECT view_name, total_jobs, total_objects FROM s3other.materialized_view_refresh_log;
-- a manual REFRESH of the view in that schema is logged there
REFRESH MATERIALIZED VIEW CONCURRENTLY s3other.job_progress;
SELECT origin, outcome, mode FROM s3other.refresh_history ORDER BY id DESC LIMIT 1;
-- and with the schema on the search_path, unqualified names work
SET search_path = s3other, public;
SELECT status, data_source FROM job_status('10000000-0000-4000-8000-000000000001');
RESET search_path;

DROP TABLE public.jobs;
DROP EXTENSION s3scan_jobs CASCADE;
DROP SCHEMA s3other;

DROP ROLE regress_s3scan_nobody;
DROP ROLE regress_s3scan_reader;
DROP ROLE regress_s3scan_refresher;
DROP ROLE regress_s3scan_monitor;
