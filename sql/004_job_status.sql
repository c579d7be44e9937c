--
-- 004_job_status: cached and real-time answers, their equality, every
-- fallback to real time, zero rows, the overall status, cache_timestamp.
--
CREATE EXTENSION s3scan_jobs;

INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) VALUES
 ('e0000000-0000-4000-8000-000000000001', 'my-bucket', 'mixed/', 'arn:exec:1', '2024-03-01 10:00:00+00', '2024-03-01 10:00:00+00'),
 ('e0000000-0000-4000-8000-000000000002', 'my-bucket', 'empty/', NULL,         '2024-03-02 10:00:00+00', '2024-03-02 10:00:00+00'),
 ('e0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/',  NULL,         '2024-03-03 10:00:00+00', '2024-03-03 10:00:00+00'),
 ('e0000000-0000-4000-8000-000000000004', 'my-bucket', 'queued/', NULL,        '2024-03-04 10:00:00+00', '2024-03-04 10:00:00+00');
-- job 1: 2 queued, 1 processing, 3 succeeded, 1 failed; 4 findings
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'e0000000-0000-4000-8000-000000000001', 'my-bucket', 'mixed/' || g, 'e' || g,
       (ARRAY['queued','queued','processing','succeeded','succeeded','succeeded','failed'])[g]
FROM generate_series(1, 7) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'e0000000-0000-4000-8000-000000000001', 'my-bucket', 'mixed/4', 'e4', 'email', 'x***@y.z', g
FROM generate_series(1, 4) g;
-- job 2: no objects
-- job 3: all finished: 2 succeeded, 1 failed; 1 finding
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'e0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/' || g, 'e' || g,
       CASE WHEN g <= 2 THEN 'succeeded' ELSE 'failed' END
FROM generate_series(1, 3) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('e0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/1', 'e1', 'ssn', '***', 0);
-- job 4: 3 queued
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'e0000000-0000-4000-8000-000000000004', 'my-bucket', 'queued/' || g, 'e' || g, 'queued'
FROM generate_series(1, 3) g;

SELECT outcome, mode FROM refresh_job_progress();

-- The result columns and their types.
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_proc p JOIN pg_attribute a ON a.attrelid = (SELECT typrelid FROM pg_type WHERE oid = p.prorettype)
WHERE p.proname = 'job_status' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;
SELECT proretset FROM pg_proc WHERE proname = 'job_status';

-- Real time: the whole row (cache_timestamp null).
SELECT * FROM job_status('e0000000-0000-4000-8000-000000000001', true);
SELECT * FROM job_status('e0000000-0000-4000-8000-000000000001', real_time => true);

-- Cached (the default): the same values, data_source 'cached', and the
-- refresh time of the log as cache_timestamp.
SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects,
       queued_count, processing_count, succeeded_count, failed_count, total_findings,
       progress_percent, status, data_source,
       cache_timestamp = (SELECT last_refreshed_at FROM materialized_view_refresh_log
                          WHERE view_name = 'job_progress') AS cache_timestamp_is_refresh_time
FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT data_source FROM job_status('e0000000-0000-4000-8000-000000000001', false);

-- For every job unchanged since the refresh, cached and real-time rows are
-- equal column for column, apart from data_source and cache_timestamp.
CREATE FUNCTION pg_temp.same_answer(id uuid) RETURNS boolean LANGUAGE sql AS $$
    SELECT (c.job_id, c.bucket, c.prefix, c.execution_arn, c.created_at, c.updated_at,
            c.total_objects, c.queued_count, c.processing_count, c.succeeded_count,
            c.failed_count, c.total_findings, c.progress_percent, c.status)
           IS NOT DISTINCT FROM
           (r.job_id, r.bucket, r.prefix, r.execution_arn, r.created_at, r.updated_at,
            r.total_objects, r.queued_count, r.processing_count, r.succeeded_count,
            r.failed_count, r.total_findings, r.progress_percent, r.status)
       AND c.data_source = 'cached' AND r.data_source = 'real_time'
       AND c.cache_timestamp IS NOT NULL AND r.cache_timestamp IS NULL
    FROM job_status(id) c, job_status(id, true) r
$$;
SELECT j.job_id, pg_temp.same_answer(j.job_id) AS same_answer FROM jobs j ORDER BY j.job_id;
-- also equal to the cached view row and the real-time job_summary
SELECT (c.job_id, c.bucket, c.prefix, c.execution_arn, c.created_at, c.updated_at,
        c.total_objects, c.queued_count, c.processing_count, c.succeeded_count,
        c.failed_count, c.total_findings, c.progress_percent)
       IS NOT DISTINCT FROM
       (v.job_id, v.bucket, v.prefix, v.execution_arn, v.created_at, v.updated_at,
        v.total_objects, v.queued_count, v.processing_count, v.succeeded_count,
        v.failed_count, v.total_findings, v.progress_percent) AS same_as_job_progress,
       (s.total_objects, s.queued, s.processing, s.succeeded, s.failed, s.total_findings)
       IS NOT DISTINCT FROM
       (c.total_objects, c.queued_count, c.processing_count, c.succeeded_count,
        c.failed_count, c.total_findings) AS same_counts_as_job_summary
FROM jobs j
CROSS JOIN LATERAL job_status(j.job_id) c
JOIN job_progress v ON v.job_id = j.job_id
JOIN job_summary s ON s.job_id = j.job_id
ORDER BY j.job_id;

-- The overall status: 'completed' with no objects or all finished,
-- 'processing' otherwise; the same on both paths.
SELECT s.job_id, s.total_objects, s.progress_percent, s.status, s.data_source
FROM jobs j CROSS JOIN LATERAL job_status(j.job_id) s ORDER BY s.job_id;
SELECT s.job_id, s.total_objects, s.progress_percent, s.status, s.data_source
FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) s ORDER BY s.job_id;

-- Zero rows: a job that does not exist, a NULL id.
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-0000000000ff');
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-0000000000ff', true);
SELECT count(*) FROM job_status(NULL);
SELECT count(*) FROM job_status(NULL, true);
SELECT count(*) FROM job_status(NULL::uuid, false);

-- A cached answer is as of the refresh: a change made since shows in real
-- time and in the cache after the next refresh.
UPDATE job_objects SET status = 'succeeded', updated_at = now()
WHERE job_id = 'e0000000-0000-4000-8000-000000000004' AND key = 'queued/1';
SELECT queued_count, succeeded_count, progress_percent, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000004');
SELECT queued_count, succeeded_count, progress_percent, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000004', true);
SELECT outcome FROM refresh_job_progress();
SELECT queued_count, succeeded_count, progress_percent, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000004');

-- Fallback: a job created after the last refresh answers in real time.
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at)
VALUES ('e0000000-0000-4000-8000-000000000005', 'my-bucket', 'new/', NULL, now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('e0000000-0000-4000-8000-000000000005', 'my-bucket', 'new/1', 'e1', 'queued', now()) ON CONFLICT DO NOTHING;
SELECT job_id, total_objects, queued_count, progress_percent, status, data_source,
       cache_timestamp IS NULL AS no_cache_timestamp
FROM job_status('e0000000-0000-4000-8000-000000000005');
-- even when the job's created_at is older than the refresh (it was inserted
-- with an explicit past time after the refresh: it is not in the cache)
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('e0000000-0000-4000-8000-000000000006', 'my-bucket', 'backfill/', '2020-01-01 00:00:00+00', '2020-01-01 00:00:00+00');
SELECT * FROM job_status('e0000000-0000-4000-8000-000000000006');
-- after a refresh both come from the cache
SELECT outcome FROM refresh_job_progress();
SELECT job_id, total_objects, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000005');
SELECT job_id, total_objects, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000006');

-- A job deleted since the last refresh is not reported from the cache.
DELETE FROM jobs WHERE job_id = 'e0000000-0000-4000-8000-000000000003';
SELECT count(*) FROM job_progress WHERE job_id = 'e0000000-0000-4000-8000-000000000003';
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-000000000003');
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-000000000003', true);
-- nor a job deleted and created again under the same id since the refresh:
-- the new job is answered (in real time), not the old cached row
SELECT count(*) FROM job_progress WHERE job_id = 'e0000000-0000-4000-8000-000000000004';
BEGIN;
DELETE FROM jobs WHERE job_id = 'e0000000-0000-4000-8000-000000000004';
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('e0000000-0000-4000-8000-000000000004', 'recreated-bucket', 'again/', '2024-03-11 10:00:00+00', '2024-03-11 10:00:00+00');
COMMIT;
SELECT bucket, prefix, total_objects, status, data_source
FROM job_status('e0000000-0000-4000-8000-000000000004');

-- cache_timestamp follows the log after a manual REFRESH: it moves forward,
-- and a job created since the previous refresh is now answered from the
-- cache with the new time.
SELECT last_refreshed_at AS before_manual FROM materialized_view_refresh_log WHERE view_name = 'job_progress' \gset
INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('e0000000-0000-4000-8000-000000000007', 'my-bucket', 'manual/', now());
REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress;
SELECT data_source,
       cache_timestamp > :'before_manual'::timestamptz AS moved_forward,
       cache_timestamp >= (SELECT created_at FROM jobs WHERE job_id = 'e0000000-0000-4000-8000-000000000007') AS not_older_than_job
FROM job_status('e0000000-0000-4000-8000-000000000007');
SELECT data_source,
       cache_timestamp = (SELECT last_refreshed_at FROM materialized_view_refresh_log
                          WHERE view_name = 'job_progress') AS cache_timestamp_is_refresh_time,
       cache_timestamp >= now() - interval '1 min' AS fresh
FROM job_status('e0000000-0000-4000-8000-000000000001');

-- Fallback: job_progress not populated (REFRESH ... WITH NO DATA): real
-- time, no error.
REFRESH MATERIALIZED VIEW job_progress WITH NO DATA;
SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
       total_findings, progress_percent, status, data_source, cache_timestamp
FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-0000000000ff');
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-000000000003');
-- and cached again once refreshed
SELECT outcome, mode FROM refresh_job_progress();
SELECT data_source FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT j.job_id, pg_temp.same_answer(j.job_id) AS same_answer FROM jobs j ORDER BY j.job_id;

-- Fallback: job_progress missing altogether (dropped by hand): real time,
-- no error.
ALTER EXTENSION s3scan_jobs DROP VIEW active_jobs_progress;
ALTER EXTENSION s3scan_jobs DROP VIEW job_statistics;
ALTER EXTENSION s3scan_jobs DROP MATERIALIZED VIEW job_progress;
DROP VIEW active_jobs_progress;
DROP VIEW job_statistics;
DROP MATERIALIZED VIEW job_progress;
SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
       total_findings, progress_percent, status, data_source, cache_timestamp
FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT data_source FROM job_status('e0000000-0000-4000-8000-000000000001', true);
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-0000000000ff');

DROP EXTENSION s3scan_jobs CASCADE;

-- The same session after the extension is dropped and created again: no
-- plan or cached state of the old objects is used.
CREATE EXTENSION s3scan_jobs;
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('e0000000-0000-4000-8000-000000000001', 'again-bucket', '', '2024-03-09 10:00:00+00', '2024-03-09 10:00:00+00');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('e0000000-0000-4000-8000-000000000001', 'again-bucket', 'k', 'e', 'succeeded');
SELECT bucket, total_objects, status, data_source FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT outcome, mode FROM refresh_job_progress();
SELECT bucket, total_objects, status, data_source FROM job_status('e0000000-0000-4000-8000-000000000001');
SELECT bucket, total_objects, status, data_source FROM job_status('e0000000-0000-4000-8000-000000000001', true);
SELECT count(*) FROM job_status('e0000000-0000-4000-8000-000000000004');

DROP EXTENSION s3scan_jobs CASCADE;
