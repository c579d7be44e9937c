--
-- 012_read_plans: every read the scanner's clients and the design note run
-- uses an index where the scanner system's own schema has one (issue 8,
-- point 5; timings in test/bench/compare_system.sh). Data large enough, and
-- ANALYZEd, for the planner to choose the index by itself (no enable_*
-- settings): 2,000 jobs of 10 objects and 10 findings each, 100 buckets.
-- pg_temp.scans() keeps only the scan lines of a plan ("Index Scan using X
-- on T", "Bitmap Index Scan on X", "Seq Scan on T", ...), so that the
-- expected output names the index each read uses and nothing else: the test
-- fails when a read stops using its index.
--
CREATE EXTENSION s3scan_jobs;

INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
SELECT ('30000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100,
       'scan-' || j || '/', CASE WHEN j % 3 <> 0 THEN 'arn:job-' || j END,
       '2026-01-01 00:00:00+00'::timestamptz + j * interval '1 minute',
       '2026-01-01 00:00:00+00'::timestamptz + j * interval '1 minute'
FROM generate_series(1, 2000) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT ('30000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100,
       'scan-' || j || '/object-' || k, md5(j || '-' || k),
       CASE WHEN j % 5 = 0 THEN (ARRAY['queued', 'processing', 'succeeded', 'failed'])[k % 4 + 1]
            ELSE 'succeeded' END,
       '2026-01-01 00:00:00+00'::timestamptz + j * interval '1 minute' + k * interval '1 second'
FROM generate_series(1, 2000) j, generate_series(1, 10) k;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset, created_at)
SELECT ('30000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100,
       'scan-' || j || '/object-' || k, md5(j || '-' || k), 'email', '****', k,
       '2026-01-01 00:00:00+00'::timestamptz + j * interval '1 minute' + k * interval '1 second'
FROM generate_series(1, 2000) j, generate_series(1, 10) k;
SELECT outcome FROM refresh_job_progress();
VACUUM ANALYZE jobs, job_objects, findings, job_progress;

-- The scan lines of a statement's plan, in plan order.
CREATE FUNCTION pg_temp.scans(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        line := substring(line FROM '((Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)( Backward)?( using [a-z_0-9]+)?( on [a-z_0-9]+)?)');
        IF line IS NOT NULL THEN
            RETURN NEXT line;
        END IF;
    END LOOP;
END;
$$;

-- The API's job status, cached: the job's row of job_progress, by its
-- unique index. (job_status(id) itself reads the same index directly; see
-- 008_job_status_reads.)
SELECT pg_temp.scans($q$SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at,
    total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings,
    progress_percent FROM job_progress WHERE job_id = '30000000-0000-4000-8000-000000000077'$q$);

-- The API's job status, real time: the job row, its objects counted per
-- status, its findings counted. As the API sends them, and as
-- job_status(id, true) reads them (job_progress_live, one job: the job's
-- counters by index, the pending deltas by a scan of that short table,
-- which has no index since 1.2).
SELECT pg_temp.scans($q$SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at
    FROM jobs WHERE job_id = '30000000-0000-4000-8000-000000000077'$q$);
SELECT pg_temp.scans($q$SELECT status, count(*) FROM job_objects
    WHERE job_id = '30000000-0000-4000-8000-000000000077' GROUP BY status$q$);
SELECT pg_temp.scans($q$SELECT count(*) FROM findings
    WHERE job_id = '30000000-0000-4000-8000-000000000077'$q$);
SELECT pg_temp.scans($q$SELECT * FROM job_progress_live
    WHERE job_id = '30000000-0000-4000-8000-000000000077'$q$);
SELECT pg_temp.scans($q$SELECT * FROM job_summary
    WHERE job_id = '30000000-0000-4000-8000-000000000077'$q$);

-- The API's results listing: findings without a filter, by id (and the next
-- page after the last id seen, or with OFFSET) or newest first.
SELECT pg_temp.scans($q$SELECT * FROM findings ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE id > 10000 ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings ORDER BY id LIMIT 100 OFFSET 1000$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings ORDER BY created_at DESC LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings ORDER BY created_at DESC LIMIT 100 OFFSET 1000$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings ORDER BY created_at LIMIT 100$q$);

-- ... of one job, by id or newest first.
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE job_id = '30000000-0000-4000-8000-000000000077'
    ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE job_id = '30000000-0000-4000-8000-000000000077'
    AND id > 700 ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE job_id = '30000000-0000-4000-8000-000000000077'
    ORDER BY created_at DESC LIMIT 100$q$);

-- ... of one bucket, or one object (bucket and key): the dedup key's index,
-- whose leading columns they are.
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE bucket = 'bucket-7' ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE bucket = 'bucket-7' ORDER BY created_at DESC LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE bucket = 'bucket-7' AND key = 'scan-7/object-3'
    ORDER BY id LIMIT 100$q$);
SELECT pg_temp.scans($q$SELECT * FROM findings WHERE bucket = 'bucket-7' AND key = 'scan-7/object-3'
    ORDER BY created_at DESC LIMIT 100$q$);

-- The same reads prepared, as the API's driver sends them, with the plan the
-- plan cache settles on after five executions (generic): the parameters do
-- not turn an index scan into a sequential one.
SET plan_cache_mode = force_generic_plan;
PREPARE by_job(uuid) AS SELECT * FROM findings WHERE job_id = $1 ORDER BY id LIMIT 100;
PREPARE by_job_newest(uuid) AS SELECT * FROM findings WHERE job_id = $1 ORDER BY created_at DESC LIMIT 100;
PREPARE by_bucket_key(text, text) AS SELECT * FROM findings WHERE bucket = $1 AND key = $2 ORDER BY id LIMIT 100;
PREPARE after_id(bigint) AS SELECT * FROM findings WHERE id > $1 ORDER BY id LIMIT 100;
PREPARE cached(uuid) AS SELECT * FROM job_progress WHERE job_id = $1;
PREPARE live(uuid) AS SELECT * FROM job_progress_live WHERE job_id = $1;
SELECT pg_temp.scans($q$EXECUTE by_job('30000000-0000-4000-8000-000000000077')$q$);
SELECT pg_temp.scans($q$EXECUTE by_job_newest('30000000-0000-4000-8000-000000000077')$q$);
SELECT pg_temp.scans($q$EXECUTE by_bucket_key('bucket-7', 'scan-7/object-3')$q$);
SELECT pg_temp.scans($q$EXECUTE after_id(10000)$q$);
SELECT pg_temp.scans($q$EXECUTE cached('30000000-0000-4000-8000-000000000077')$q$);
SELECT pg_temp.scans($q$EXECUTE live('30000000-0000-4000-8000-000000000077')$q$);
DEALLOCATE ALL;
RESET plan_cache_mode;

-- The dashboard's newest-first list of jobs.
SELECT pg_temp.scans($q$SELECT * FROM job_progress ORDER BY created_at DESC LIMIT 50$q$);

-- The design note's job_progress newest first, every row: read once,
-- sorted (since 1.1 the cache's rows are written in the order of the
-- counters' join, not oldest first, so an index scan would visit the pages
-- out of order; with LIMIT, above, the index is used).
SELECT pg_temp.scans($q$SELECT job_id, bucket, total_objects, succeeded_count, failed_count,
    progress_percent FROM job_progress ORDER BY created_at DESC$q$);

-- active_jobs_progress, the note's execution_arn query and job_statistics
-- read every job of the cache (as on the system's schema): a sequential scan
-- of job_progress, one row per job, never of the tables.
SELECT pg_temp.scans($q$SELECT * FROM active_jobs_progress$q$);
SELECT pg_temp.scans($q$SELECT * FROM job_progress WHERE execution_arn IS NOT NULL AND total_objects > 0$q$);
SELECT pg_temp.scans($q$SELECT * FROM job_statistics$q$);

DROP EXTENSION s3scan_jobs CASCADE;
