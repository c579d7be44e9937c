--
-- 002_job_summary: the real-time view, its values, the design note's example
-- queries, and that a per-job read neither scans all of job_objects nor
-- multiplies objects by findings.
--
CREATE EXTENSION s3scan_jobs;

-- Jobs with fixed times so that SELECT * is stable.
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) VALUES
 ('b0000000-0000-4000-8000-000000000001', 'my-bucket',    'empty/', NULL,               '2024-01-01 10:00:00+00', '2024-01-01 10:00:00+00'),
 ('b0000000-0000-4000-8000-000000000002', 'my-bucket',    'mixed/', 'arn:exec:mixed',   '2024-01-02 10:00:00+00', '2024-01-02 10:00:00+00'),
 ('b0000000-0000-4000-8000-000000000003', 'my-bucket',    'done/',  NULL,               '2024-01-03 10:00:00+00', '2024-01-03 10:00:00+00'),
 ('b0000000-0000-4000-8000-000000000004', 'other-bucket', '',       'arn:exec:other',   '2024-01-04 10:00:00+00', '2024-01-04 10:00:00+00'),
 ('b0000000-0000-4000-8000-000000000005', 'my-bucket',    'big/',   NULL,               '2024-01-05 10:00:00+00', '2024-01-05 10:00:00+00');

-- job 2: 2 queued, 1 processing, 3 succeeded, 1 failed; 4 findings
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'b0000000-0000-4000-8000-000000000002', 'my-bucket', 'mixed/' || g, 'e' || g,
       (ARRAY['queued','queued','processing','succeeded','succeeded','succeeded','failed'])[g]
FROM generate_series(1, 7) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'b0000000-0000-4000-8000-000000000002', 'my-bucket', 'mixed/4', 'e4', 'email', 'x***@y.z', g
FROM generate_series(1, 4) g;
-- job 3: everything finished (2 succeeded, 2 failed), no findings
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'b0000000-0000-4000-8000-000000000003', 'my-bucket', 'done/' || g, 'e' || g,
       CASE WHEN g <= 2 THEN 'succeeded' ELSE 'failed' END
FROM generate_series(1, 4) g;
-- job 4: 3 queued, 1 finding
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'b0000000-0000-4000-8000-000000000004', 'other-bucket', 'k' || g, 'e' || g, 'queued'
FROM generate_series(1, 3) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('b0000000-0000-4000-8000-000000000004', 'other-bucket', 'k1', 'e1', 'aws_secret', '****', 7);
-- job 5: N = 30 objects (10 queued, 5 processing, 10 succeeded, 5 failed)
--        and M = 20 findings
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'b0000000-0000-4000-8000-000000000005', 'my-bucket', 'big/' || g, 'e' || g,
       CASE WHEN g <= 10 THEN 'queued' WHEN g <= 15 THEN 'processing'
            WHEN g <= 25 THEN 'succeeded' ELSE 'failed' END
FROM generate_series(1, 30) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'b0000000-0000-4000-8000-000000000005', 'my-bucket', 'big/' || (g % 5 + 1), 'e' || (g % 5 + 1), 'phone', '***-' || g, g
FROM generate_series(1, 20) g;

-- the columns of the design note, in its order
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = 'job_summary'::regclass AND attnum > 0
ORDER BY attnum;

SELECT * FROM job_summary ORDER BY job_id;

-- N objects and M findings give N and M, not N * M
SELECT total_objects, total_findings FROM job_summary
WHERE job_id = 'b0000000-0000-4000-8000-000000000005';

-- a job with no objects: one row of zeros
SELECT total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary WHERE job_id = 'b0000000-0000-4000-8000-000000000001';

-- a job that does not exist: no row
SELECT count(*) FROM job_summary WHERE job_id = 'b0000000-0000-4000-8000-0000000000ff';

-- The design note's example queries, unchanged.
-- Quick overview of all jobs
SELECT * FROM job_summary WHERE bucket = 'my-bucket' ORDER BY created_at DESC;

-- All jobs with their current status
SELECT 
    job_id, 
    bucket, 
    total_objects, 
    succeeded, 
    failed,
    CASE 
        WHEN total_objects = 0 THEN 0
        ELSE (succeeded + failed) * 100.0 / total_objects
    END as progress
FROM job_summary
ORDER BY created_at DESC;

-- Jobs with active processing
SELECT * FROM job_summary 
WHERE processing > 0 OR queued > 0
ORDER BY created_at DESC;

-- Always real time: a change shows at once, no refresh involved.
UPDATE job_objects SET status = 'succeeded', updated_at = now()
WHERE job_id = 'b0000000-0000-4000-8000-000000000002' AND status IN ('queued', 'processing');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('b0000000-0000-4000-8000-000000000002', 'my-bucket', 'mixed/1', 'e1', 'email', 'a***@b.c', 99);
DELETE FROM job_objects WHERE job_id = 'b0000000-0000-4000-8000-000000000003' AND key = 'done/4';
SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary
WHERE job_id IN ('b0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000003')
ORDER BY job_id;

-- A deleted job disappears from the view.
DELETE FROM jobs WHERE job_id = 'b0000000-0000-4000-8000-000000000004';
SELECT job_id FROM job_summary ORDER BY job_id;

-- Plans. Make job_objects and findings big enough (50 more jobs of 200
-- objects and 20 findings each) that reading them whole is not an option.
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
SELECT ('c0000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk-bucket', '',
       '2023-06-01 00:00:00+00', '2023-06-01 00:00:00+00'
FROM generate_series(1, 50) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('c0000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk-bucket', 'o' || g, 'e' || g,
       (ARRAY['queued','processing','succeeded','failed'])[g % 4 + 1]
FROM generate_series(1, 50) j, generate_series(1, 200) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ('c0000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk-bucket', 'o' || j, 'e' || j, 'd', 'm', g
FROM generate_series(1, 50) j, generate_series(1, 20) g;
ANALYZE jobs, job_objects, findings;

-- the plan nodes of a query, from EXPLAIN ANALYZE in JSON
CREATE FUNCTION pg_temp.plan_nodes(q text) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO p;
    RETURN QUERY SELECT n FROM jsonb_path_query(p, 'strict $.** ? (exists(@."Node Type"))') n;
END
$$;

-- The values of job 5 are still right with the bulk data around.
SELECT total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary WHERE job_id = 'b0000000-0000-4000-8000-000000000005';

-- SELECT * FROM job_summary WHERE job_id = ... reads the job's counters by
-- job_id through an index (never a sequential scan of them, never an index
-- scan without a condition), its pending deltas by a scan of that table (no
-- index since 1.2: the fold keeps it to a few hundred rows), and neither
-- job_objects nor findings (version 1.1: the per-job counters).
SELECT node->>'Relation Name' AS rel,
       count(*) >= 1 AS scanned,
       bool_and(CASE WHEN node->>'Node Type' IN ('Index Scan', 'Index Only Scan') THEN node ? 'Index Cond'
                     WHEN node->>'Node Type' = 'Bitmap Heap Scan' THEN true
                     ELSE false END) AS keyed_by_index
FROM pg_temp.plan_nodes($q$SELECT * FROM job_summary WHERE job_id = 'b0000000-0000-4000-8000-000000000005'$q$) AS p(node)
WHERE node->>'Relation Name' IN ('job_objects', 'findings', 'job_counters', 'job_counter_deltas')
GROUP BY 1 ORDER BY 1;

-- and no plan node handles anywhere near N * M = 600 rows: objects are not
-- joined with findings (the design note's view would produce 600 join rows)
SELECT max((n->>'Actual Rows')::numeric * (n->>'Actual Loops')::numeric) < 600 AS no_row_multiplication,
       max((n->>'Actual Rows')::numeric * (n->>'Actual Loops')::numeric) >= 1 AS plan_has_rows
FROM pg_temp.plan_nodes($q$SELECT * FROM job_summary WHERE job_id = 'b0000000-0000-4000-8000-000000000005'$q$) n;

DROP EXTENSION s3scan_jobs CASCADE;
