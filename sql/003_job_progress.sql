--
-- 003_job_progress: the materialized view, active_jobs_progress,
-- refresh_job_progress(), the refresh log, manual REFRESH commands, and
-- refresh_history with its limit.
--
CREATE EXTENSION s3scan_jobs;

-- Populated when the extension is created: readable at once.
SELECT matviewname, ispopulated FROM pg_matviews WHERE matviewname = 'job_progress';
SELECT count(*) FROM job_progress;

-- the design note's columns, in its order
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = 'job_progress'::regclass AND attnum > 0
ORDER BY attnum;

-- a unique index on job_id alone (what REFRESH ... CONCURRENTLY needs)
SELECT count(*) AS unique_job_id_indexes
FROM pg_index i
WHERE i.indrelid = 'job_progress'::regclass AND i.indisunique AND i.indpred IS NULL
  AND i.indexprs IS NULL AND i.indnatts = 1
  AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                     WHERE attrelid = 'job_progress'::regclass AND attname = 'job_id');

-- Data with fixed times.
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'my-bucket',    'empty/', NULL,             '2024-02-01 10:00:00+00', '2024-02-01 10:00:00+00'),
 ('d0000000-0000-4000-8000-000000000002', 'my-bucket',    'mixed/', 'arn:exec:mixed', '2024-02-02 10:00:00+00', '2024-02-02 10:00:00+00'),
 ('d0000000-0000-4000-8000-000000000003', 'my-bucket',    'done/',  'arn:exec:done',  '2024-02-03 10:00:00+00', '2024-02-03 10:00:00+00'),
 ('d0000000-0000-4000-8000-000000000004', 'other-bucket', '',       NULL,             '2024-02-04 10:00:00+00', '2024-02-04 10:00:00+00');
-- job 2: 2 queued, 1 processing, 3 succeeded, 1 failed; 4 findings
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'd0000000-0000-4000-8000-000000000002', 'my-bucket', 'mixed/' || g, 'e' || g,
       (ARRAY['queued','queued','processing','succeeded','succeeded','succeeded','failed'])[g],
       '2024-02-02 11:00:00+00'::timestamptz + g * interval '1 min'
FROM generate_series(1, 7) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'd0000000-0000-4000-8000-000000000002', 'my-bucket', 'mixed/4', 'e4', 'email', 'x***@y.z', g
FROM generate_series(1, 4) g;
-- job 3: 2 succeeded, 1 failed, 2 findings
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'd0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/' || g, 'e' || g,
       CASE WHEN g <= 2 THEN 'succeeded' ELSE 'failed' END,
       '2024-02-03 11:00:00+00'::timestamptz + g * interval '1 min'
FROM generate_series(1, 3) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'd0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/1', 'e1', 'ssn', '***', g
FROM generate_series(1, 2) g;
-- job 4: 5 queued
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'd0000000-0000-4000-8000-000000000004', 'other-bucket', 'k' || g, 'e' || g, 'queued',
       '2024-02-04 11:00:00+00'::timestamptz + g * interval '1 min'
FROM generate_series(1, 5) g;

-- It is a cache: nothing shows until a refresh.
SELECT count(*) FROM job_progress;

SELECT coalesce(max(id), 0) AS hist0 FROM refresh_history \gset

-- refresh_job_progress(): concurrent (the view is populated), totals right,
-- the time of the data (the transaction's start) and the totals logged in
-- the same transaction.
BEGIN;
SELECT outcome, mode, total_jobs, total_objects,
       started_at >= now() - interval '1 min' AND started_at <= clock_timestamp() AS started_now,
       duration_ms >= 0 AS has_duration,
       message IS NOT NULL AND message <> '' AS has_message
FROM refresh_job_progress();
SELECT view_name, last_refreshed_at = now() AS time_is_transaction_start,
       refresh_duration_ms >= 0 AS has_duration, total_jobs, total_objects
FROM materialized_view_refresh_log;
COMMIT;

SELECT job_id, bucket, prefix, execution_arn, total_objects, queued_count, processing_count,
       succeeded_count, failed_count, total_findings, progress_percent
FROM job_progress ORDER BY job_id;

-- SELECT * works with the fixed times
SELECT * FROM job_progress WHERE job_id = 'd0000000-0000-4000-8000-000000000002';

-- one history row for that refresh, origin 'sql' (no second row from the
-- event trigger for the REFRESH the function ran)
SELECT origin, outcome, mode, total_jobs, total_objects, error,
       duration_ms >= 0 AS has_duration, started_at >= now() - interval '1 min' AS fresh
FROM refresh_history WHERE id > :hist0 ORDER BY id;

-- active_jobs_progress: the jobs not finished (progress below 100), newest first, including
-- a job whose objects are still being listed (none yet), as the scanner system counts them
SELECT job_id, bucket, queued_count, processing_count, progress_percent
FROM active_jobs_progress;

-- last_object_update: when an object of the job last changed (null: no objects)
SELECT job_id, last_object_update FROM job_progress ORDER BY job_id;

-- job_statistics: the dashboard's one-row summary, the scanner system's columns
SELECT * FROM job_statistics;

-- The design note's job_progress example queries, unchanged.
SELECT 
    job_id, 
    bucket, 
    total_objects, 
    succeeded_count, 
    failed_count,
    progress_percent  -- Pre-calculated!
FROM job_progress
ORDER BY created_at DESC;

SELECT * FROM active_jobs_progress;

SELECT * FROM job_progress 
WHERE execution_arn IS NOT NULL
AND total_objects > 0;

-- The API's check that the view exists.
SELECT count(*) FROM pg_matviews WHERE schemaname = 'public' AND matviewname = 'job_progress';

-- Changes show after the next refresh, not before.
UPDATE job_objects SET status = 'succeeded', updated_at = now()
WHERE job_id = 'd0000000-0000-4000-8000-000000000004' AND key IN ('k1', 'k2');
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('d0000000-0000-4000-8000-000000000005', 'my-bucket', 'new/', '2024-02-05 10:00:00+00', '2024-02-05 10:00:00+00');
DELETE FROM jobs WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT job_id, queued_count, succeeded_count FROM job_progress ORDER BY job_id;

SELECT last_refreshed_at AS t1 FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
SELECT coalesce(max(id), 0) AS hist1 FROM refresh_history \gset
SELECT outcome, mode, total_jobs, total_objects FROM refresh_job_progress();
SELECT job_id, queued_count, succeeded_count, progress_percent FROM job_progress ORDER BY job_id;
SELECT last_refreshed_at > :'t1'::timestamptz AS moved_forward, total_jobs, total_objects
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';

-- A refresh rolled back with its transaction leaves the log as it was.
SELECT last_refreshed_at AS t2 FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
INSERT INTO jobs (job_id, bucket, created_at, updated_at)
VALUES ('d0000000-0000-4000-8000-000000000006', 'my-bucket', '2024-02-06 10:00:00+00', '2024-02-06 10:00:00+00');
BEGIN;
SELECT outcome, total_jobs FROM refresh_job_progress();
ROLLBACK;
SELECT last_refreshed_at = :'t2'::timestamptz AS log_unchanged, total_jobs
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
SELECT count(*) AS cached_jobs FROM job_progress;

-- REFRESH MATERIALIZED VIEW CONCURRENTLY typed by a person: works, and the
-- log and the history follow it.
SELECT last_refreshed_at AS t3 FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress;
SELECT last_refreshed_at > :'t3'::timestamptz AS moved_forward, total_jobs, total_objects,
       last_refreshed_at >= now() - interval '1 min' AS fresh
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
SELECT count(*) AS cached_jobs FROM job_progress;

-- the same for a plain REFRESH MATERIALIZED VIEW, after one more object
INSERT INTO job_objects (job_id, bucket, key, etag)
VALUES ('d0000000-0000-4000-8000-000000000006', 'my-bucket', 'only', 'e');
SELECT last_refreshed_at AS t4 FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
REFRESH MATERIALIZED VIEW job_progress;
SELECT last_refreshed_at > :'t4'::timestamptz AS moved_forward, total_jobs, total_objects
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
SELECT job_id, total_objects, queued_count FROM job_progress ORDER BY job_id;

-- in a transaction: the log holds the transaction's start time
BEGIN;
REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress;
SELECT last_refreshed_at = now() AS time_is_transaction_start
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
COMMIT;

-- the history since hist1: one row per refresh, by origin
SELECT origin, outcome, mode, total_jobs, total_objects, error
FROM refresh_history WHERE id > :hist1 ORDER BY id;

-- Not populated (WITH NO DATA): refresh_job_progress() refreshes plainly,
-- then concurrently again.
REFRESH MATERIALIZED VIEW job_progress WITH NO DATA;
SELECT ispopulated FROM pg_matviews WHERE matviewname = 'job_progress';
SELECT outcome, mode, total_jobs, total_objects FROM refresh_job_progress();
SELECT ispopulated FROM pg_matviews WHERE matviewname = 'job_progress';
SELECT count(*) AS cached_jobs FROM job_progress;
SELECT outcome, mode, total_jobs, total_objects FROM refresh_job_progress();
SELECT total_jobs, total_objects FROM materialized_view_refresh_log WHERE view_name = 'job_progress';

-- refresh_history keeps at most s3scan_jobs.history_limit rows, newest.
SET s3scan_jobs.history_limit = 3;
SELECT outcome FROM refresh_job_progress();
SELECT outcome FROM refresh_job_progress();
SELECT outcome FROM refresh_job_progress();
SELECT outcome FROM refresh_job_progress();
SELECT coalesce(max(id), 0) AS hist_last FROM refresh_history \gset
SELECT outcome FROM refresh_job_progress();
SELECT count(*) AS history_rows, min(id) > :hist_last - 3 AS newest_kept,
       max(id) > :hist_last AS last_refresh_kept
FROM refresh_history;
-- a manual REFRESH is pruned the same way
REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress;
SELECT count(*) AS history_rows,
       (SELECT origin FROM refresh_history ORDER BY id DESC LIMIT 1) AS newest_origin
FROM refresh_history;
RESET s3scan_jobs.history_limit;

DROP EXTENSION s3scan_jobs CASCADE;
