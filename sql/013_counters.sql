--
-- 013_counters: the per-job counters (issue 9, version 1.1) are exact for every way rows change.
-- After each change, in the same transaction and before any fold, job_progress_live, job_summary
-- and job_status(id, true) equal an independent recount of job_objects and findings written in
-- this file, verify_job_counters() returns no row, and job_counters + pending job_counter_deltas
-- add up to the recount (the invariant). Then: fold, refresh, repair after deliberate
-- corruption, the maintenance switch, session_replication_role = replica (the row-trigger
-- path), the triggers' states since 1.2, and the deltas kept per transaction since 1.3 (section 24;
-- the invariant counts them). Nothing here depends on whether the refresh worker folds in between.
--
CREATE EXTENSION s3scan_jobs;
SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs';
SELECT counter_maintenance();

-- The independent recount: per job of jobs, aggregates over job_objects and findings written
-- here (correlated, not the extension's views, counters or deltas).
CREATE TEMP VIEW recount AS
SELECT j.job_id,
       o.total_objects, o.queued_count, o.processing_count, o.succeeded_count, o.failed_count,
       (SELECT count(*) FROM findings fi WHERE fi.job_id = j.job_id) AS total_findings,
       CASE WHEN o.total_objects = 0 THEN 0::numeric
            ELSE (o.succeeded_count + o.failed_count) * 100.0 / o.total_objects END AS progress_percent,
       o.last_object_update,
       CASE WHEN o.succeeded_count + o.failed_count = o.total_objects THEN 'completed'
            ELSE 'processing' END AS status
FROM jobs j
CROSS JOIN LATERAL (
    SELECT count(*) AS total_objects,
           count(*) FILTER (WHERE jo.status = 'queued') AS queued_count,
           count(*) FILTER (WHERE jo.status = 'processing') AS processing_count,
           count(*) FILTER (WHERE jo.status = 'succeeded') AS succeeded_count,
           count(*) FILTER (WHERE jo.status = 'failed') AS failed_count,
           max(jo.updated_at) AS last_object_update
    FROM job_objects jo WHERE jo.job_id = j.job_id) o;

-- The invariant, for every job_id that has objects, findings, a counter row or deltas (deleted
-- jobs included): job_counters + the pending deltas = the base tables, column by column.
CREATE TEMP VIEW invariant_differences AS
SELECT job_id FROM (
    SELECT jo.job_id, 1::bigint AS o, (jo.status = 'queued')::int::bigint AS q,
           (jo.status = 'processing')::int::bigint AS p, (jo.status = 'succeeded')::int::bigint AS s,
           (jo.status = 'failed')::int::bigint AS f, 0::bigint AS fi
    FROM job_objects jo
    UNION ALL
    SELECT fi.job_id, 0, 0, 0, 0, 0, 1 FROM findings fi
    UNION ALL
    SELECT c.job_id, -coalesce(c.total_objects, 0), -coalesce(c.queued_count, 0),
           -coalesce(c.processing_count, 0), -coalesce(c.succeeded_count, 0),
           -coalesce(c.failed_count, 0), -coalesce(c.total_findings, 0)
    FROM job_counters c
    UNION ALL
    SELECT d.job_id, -coalesce(d.total_objects, 0), -coalesce(d.queued_count, 0),
           -coalesce(d.processing_count, 0), -coalesce(d.succeeded_count, 0),
           -coalesce(d.failed_count, 0), -coalesce(d.total_findings, 0)
    FROM job_counter_deltas d
    UNION ALL  -- (1.3: this transaction's deltas that become rows at commit)
    SELECT p.job_id, -p.total_objects, -p.queued_count, -p.processing_count, -p.succeeded_count,
           -p.failed_count, -p.total_findings
    FROM pending_counter_deltas() p) x
GROUP BY job_id
HAVING sum(o) <> 0 OR sum(q) <> 0 OR sum(p) <> 0 OR sum(s) <> 0 OR sum(f) <> 0 OR sum(fi) <> 0;

-- Every (job, source) where a read differs from the recount, verify_job_counters() reports a
-- row, or the invariant fails (these two only while maintenance is on: off, the counters are
-- emptied and there is nothing maintained to verify).
CREATE TEMP VIEW differences AS
SELECT job_id, 'job_progress_live' AS source FROM (
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM job_progress_live
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM pg_temp.recount)
    UNION
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM pg_temp.recount
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM job_progress_live)) d
UNION
SELECT job_id, 'job_summary' FROM (
    (SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings FROM job_summary
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings FROM pg_temp.recount)
    UNION
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings FROM pg_temp.recount
     EXCEPT
     SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings FROM job_summary)) d
UNION
SELECT job_id, 'job_status' FROM (
    (SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
            s.failed_count, s.total_findings, s.progress_percent, s.status, s.data_source
     FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) s
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, status, 'real_time' FROM pg_temp.recount)
    UNION
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, status, 'real_time' FROM pg_temp.recount
     EXCEPT
     SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
            s.failed_count, s.total_findings, s.progress_percent, s.status, s.data_source
     FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) s)) d
UNION
SELECT v.job_id, 'verify_job_counters' FROM verify_job_counters() v WHERE counter_maintenance()
UNION
SELECT i.job_id, 'counters+deltas' FROM pg_temp.invariant_differences i WHERE counter_maintenance();

-- One statement, one snapshot: the recount of the given jobs, the sources that differ for each
-- (null: none), and how many other jobs differ anywhere.
CREATE FUNCTION pg_temp.check(VARIADIC ids uuid[])
RETURNS TABLE (job_id uuid, objects bigint, queued bigint, processing bigint, succeeded bigint,
               failed bigint, findings bigint, differs text, other_jobs_differ bigint)
LANGUAGE sql AS $$
    WITH d AS MATERIALIZED (SELECT * FROM pg_temp.differences)
    SELECT r.job_id, r.total_objects, r.queued_count, r.processing_count, r.succeeded_count,
           r.failed_count, r.total_findings,
           (SELECT string_agg(d.source, ', ' ORDER BY d.source) FROM d WHERE d.job_id = r.job_id),
           (SELECT count(DISTINCT d.job_id) FROM d
            WHERE d.job_id IS NULL OR d.job_id <> ALL (ids))
    FROM pg_temp.recount r
    WHERE r.job_id = ANY (ids)
    ORDER BY r.job_id
$$;

-- Delta rows of some jobs (for jobs whose only deltas are this transaction's), and this
-- transaction's entries that become rows at commit (1.3: one per statement and job).
CREATE FUNCTION pg_temp.delta_rows(VARIADIC ids uuid[])
RETURNS TABLE (job_id uuid, delta_rows bigint, pending_entries bigint)
LANGUAGE sql AS $$
    SELECT i, (SELECT count(*) FROM job_counter_deltas d WHERE d.job_id = i),
           (SELECT count(*) FROM pending_counter_deltas() p WHERE p.job_id = i)
    FROM unnest(ids) i ORDER BY i
$$;

INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
SELECT ('d0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'cnt-bucket', 'p' || g || '/',
       '2024-02-01 00:00:00+00'::timestamptz + g * interval '1 hour', '2024-02-01 00:00:00+00'
FROM generate_series(1, 9) g;
-- no objects yet: zeros, exact
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');

-- 1. Multi-row INSERT: one statement, two jobs, every status, one NULL etag. One pending entry
--    per (statement, job), no delta row before the commit (1.3).
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea', 'queued',     '2024-02-02 00:00:01+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'b', 'eb', 'queued',     '2024-02-02 00:00:02+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'c', 'ec', 'processing', '2024-02-02 00:00:03+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'd', 'ed', 'succeeded',  '2024-02-02 00:00:04+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'e', NULL, 'failed',     '2024-02-02 00:00:05+00'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'a', 'ea', 'queued',     '2024-02-02 00:00:06+00'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'b', 'eb', 'succeeded',  '2024-02-02 00:00:07+00');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
SELECT * FROM pg_temp.delta_rows('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
-- an UPDATE or DELETE that matches no row writes no delta row
UPDATE job_objects SET status = 'failed' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'nothing';
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000002' AND key = 'nothing';
SELECT * FROM pg_temp.delta_rows('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
SELECT last_object_update FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000001';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');

-- 2. INSERT ... SELECT: 1,000 rows, mixed statuses.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'd0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'bulk/' || g, 'e' || g,
       (ARRAY['queued', 'processing', 'succeeded', 'failed', 'queued'])[g % 5 + 1],
       '2024-02-03 00:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 1000) g;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
SELECT * FROM pg_temp.delta_rows('d0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');

-- 2b. One statement over 12 jobs (more than the few a statement usually touches): insert,
--     update, move between them, delete.
INSERT INTO jobs (job_id, bucket)
SELECT ('d1000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'cnt-bucket' FROM generate_series(1, 12) j;
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('d1000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'cnt-bucket', 'k' || g, 'e',
       (ARRAY['queued', 'processing', 'succeeded', 'failed'])[(j + g) % 4 + 1]
FROM generate_series(1, 12) j, generate_series(1, j) g;
SELECT * FROM pg_temp.check(VARIADIC ARRAY(SELECT job_id FROM jobs WHERE job_id::text LIKE 'd1%'));
SELECT (SELECT count(*) FROM job_counter_deltas WHERE job_id::text LIKE 'd1%') AS delta_rows,
       (SELECT count(*) FROM pending_counter_deltas() WHERE job_id::text LIKE 'd1%') AS pending_entries;
UPDATE job_objects SET status = 'succeeded' WHERE job_id::text LIKE 'd1%' AND key IN ('k1', 'k2', 'k3');
UPDATE job_objects SET job_id = ('d1000000-0000-4000-8000-' || lpad((13 - substr(job_id::text, 25)::int)::text, 12, '0'))::uuid,
                       key = key || '-moved'
WHERE job_id::text LIKE 'd1%' AND key = 'k1';
DELETE FROM job_objects WHERE job_id::text LIKE 'd1%' AND key IN ('k4', 'k5');
SELECT * FROM pg_temp.check(VARIADIC ARRAY(SELECT job_id FROM jobs WHERE job_id::text LIKE 'd1%'));
COMMIT;
SELECT * FROM pg_temp.check(VARIADIC ARRAY(SELECT job_id FROM jobs WHERE job_id::text LIKE 'd1%'));
DELETE FROM jobs WHERE job_id::text LIKE 'd1%';
SELECT count(*) AS differing FROM pg_temp.differences;

-- 3. INSERT ... ON CONFLICT DO NOTHING without a conflict target: rows that exist (one with a
--    NULL etag: NULLS NOT DISTINCT), a row repeated within the statement, new rows.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea', 'succeeded', now()),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'e', NULL, 'queued',    now()),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'f', 'ef', 'queued',    '2024-02-02 00:00:08+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'f', 'ef', 'failed',    now()),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'b', 'eb', 'queued',    now()),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'c', NULL, 'processing', '2024-02-02 00:00:09+00')
ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
-- every row conflicts: nothing changes
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'b', 'eb', 'failed'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'c', NULL, 'failed')
ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');

-- 4. ON CONFLICT DO NOTHING with a conflict target (the columns; the constraint's name).
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'd0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'bulk/' || g, 'e' || g, 'failed'
FROM generate_series(995, 1010) g
ON CONFLICT (job_id, bucket, key, etag) DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'a', 'ea', 'failed'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'd', 'ed', 'failed')
ON CONFLICT ON CONSTRAINT job_objects_natural_key DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');

-- 5. INSERT ... ON CONFLICT DO UPDATE: some rows inserted, some updated (status changed).
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'a', 'ea', 'processing'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'e', 'ee', 'queued'),
 ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'bulk/1', 'e1', 'succeeded')
ON CONFLICT (job_id, bucket, key, etag) DO UPDATE SET status = EXCLUDED.status;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');

-- 6. COPY FROM STDIN: objects of two jobs, findings.
BEGIN;
COPY job_objects (job_id, bucket, key, etag, status, updated_at) FROM STDIN WITH (FORMAT csv);
d0000000-0000-4000-8000-000000000004,cnt-bucket,x1,e1,queued,2024-02-04 00:00:01+00
d0000000-0000-4000-8000-000000000004,cnt-bucket,x2,e2,processing,2024-02-04 00:00:02+00
d0000000-0000-4000-8000-000000000004,cnt-bucket,x3,,succeeded,2024-02-04 00:00:03+00
d0000000-0000-4000-8000-000000000004,cnt-bucket,x4,e4,failed,2024-02-04 00:00:04+00
d0000000-0000-4000-8000-000000000005,cnt-bucket,y1,e1,queued,2024-02-05 00:00:01+00
d0000000-0000-4000-8000-000000000005,cnt-bucket,y2,e2,succeeded,2024-02-05 00:00:02+00
\.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000005');
COPY findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) FROM STDIN WITH (FORMAT csv);
d0000000-0000-4000-8000-000000000004,cnt-bucket,x1,e1,email,a***@b.c,1
d0000000-0000-4000-8000-000000000004,cnt-bucket,x1,e1,email,a***@b.c,2
d0000000-0000-4000-8000-000000000004,cnt-bucket,x3,,ssn,***,0
d0000000-0000-4000-8000-000000000005,cnt-bucket,y2,e2,phone,***-1234,9
\.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000005');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000005');

-- 7. UPDATE: status changes, many rows at once and per object as the scanner workers send it.
BEGIN;
UPDATE job_objects SET status = 'processing', updated_at = now()
WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND status = 'queued' AND key LIKE 'bulk/1%';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
PREPARE upd_object AS
UPDATE job_objects SET status = $1, last_error = $2, updated_at = now()
WHERE job_id = $3 AND bucket = $4 AND key = $5 AND etag IS NOT DISTINCT FROM $6;
EXECUTE upd_object('processing', NULL, 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea');
EXECUTE upd_object('succeeded', NULL, 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea');
EXECUTE upd_object('failed', 'AccessDenied', 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'e', NULL);
EXECUTE upd_object('queued', NULL, 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'd', 'ed');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');

-- 8. No-op UPDATE (SET status = status): counts unchanged, last_object_update moves to now().
BEGIN;
UPDATE job_objects SET status = status WHERE job_id = 'd0000000-0000-4000-8000-000000000004';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004');
SELECT last_object_update = now() AS touched_now FROM job_progress_live
WHERE job_id = 'd0000000-0000-4000-8000-000000000004';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004');

-- 9. UPDATE moving rows to another job: alone, with a status change in the same statement, both
--    directions in one statement, and every object of a job (its last_object_update goes null).
BEGIN;
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000006'
WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key IN ('bulk/2', 'bulk/3', 'bulk/4');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000006');
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000006', status = 'failed'
WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key IN ('bulk/5', 'bulk/6');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000006');
UPDATE job_objects
SET job_id = CASE job_id WHEN 'd0000000-0000-4000-8000-000000000006'::uuid THEN 'd0000000-0000-4000-8000-000000000003'::uuid
                         ELSE 'd0000000-0000-4000-8000-000000000006'::uuid END
WHERE (job_id = 'd0000000-0000-4000-8000-000000000006' AND key = 'bulk/2')
   OR (job_id = 'd0000000-0000-4000-8000-000000000003' AND key IN ('bulk/7', 'bulk/8'));
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000006');
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000007'
WHERE job_id = 'd0000000-0000-4000-8000-000000000005';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000005', 'd0000000-0000-4000-8000-000000000007');
SELECT job_id, total_objects, last_object_update IS NULL AS no_last_update FROM job_progress_live
WHERE job_id = 'd0000000-0000-4000-8000-000000000005';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000005',
                            'd0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000007');

-- 10. last_object_update must follow a lower maximum. The updated_at trigger forces the
--     transaction's start time, so: the newest object (a clock ahead, 2100) is deleted, and the
--     next newest (2099) is updated (its updated_at drops to now()).
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000008', 'cnt-bucket', 'old', 'e', 'queued', '2024-02-08 00:00:00+00'),
 ('d0000000-0000-4000-8000-000000000008', 'cnt-bucket', 'ahead', 'e', 'queued', '2099-01-01 00:00:00+00'),
 ('d0000000-0000-4000-8000-000000000008', 'cnt-bucket', 'newest', 'e', 'queued', '2100-01-01 00:00:00+00');
SELECT last_object_update FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000008';
BEGIN;
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000008' AND key = 'newest';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000008');
SELECT last_object_update FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000008';
COMMIT;
SELECT last_object_update FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000008';
BEGIN;
UPDATE job_objects SET status = 'succeeded', updated_at = '2099-06-01 00:00:00+00'
WHERE job_id = 'd0000000-0000-4000-8000-000000000008' AND key = 'ahead';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000008');
SELECT last_object_update = now() AS lowered_to_now FROM job_progress_live
WHERE job_id = 'd0000000-0000-4000-8000-000000000008';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000008');
-- moving the newest object away lowers the maximum too
BEGIN;
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000009'
WHERE job_id = 'd0000000-0000-4000-8000-000000000008' AND key = 'ahead';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000008', 'd0000000-0000-4000-8000-000000000009');
SELECT last_object_update FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000008';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000008', 'd0000000-0000-4000-8000-000000000009');

-- 11. DELETE: some objects, then every object of a job (zeros, last_object_update null).
BEGIN;
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND status = 'failed' AND key LIKE 'bulk/2%';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
DELETE FROM job_objects WHERE job_id IN ('d0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000003')
  AND key IN ('bulk/3', 'bulk/7', 'bulk/30');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000006');
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000009';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000009');
SELECT total_objects, last_object_update IS NULL AS no_last_update FROM job_progress_live
WHERE job_id = 'd0000000-0000-4000-8000-000000000009';
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000006',
                            'd0000000-0000-4000-8000-000000000009');

-- 12. MERGE: inserts, updates (one moves a row to another job) and deletes in one statement.
BEGIN;
MERGE INTO job_objects t
USING (VALUES ('d0000000-0000-4000-8000-000000000004'::uuid, 'x1', 'e1', 'succeeded'),
              ('d0000000-0000-4000-8000-000000000004'::uuid, 'x2', 'e2', 'delete'),
              ('d0000000-0000-4000-8000-000000000004'::uuid, 'x4', 'e4', 'move'),
              ('d0000000-0000-4000-8000-000000000004'::uuid, 'x5', 'e5', 'queued'),
              ('d0000000-0000-4000-8000-000000000004'::uuid, 'x6', 'e6', 'failed')) s (job_id, key, etag, action)
ON t.job_id = s.job_id AND t.bucket = 'cnt-bucket' AND t.key = s.key AND t.etag = s.etag
WHEN MATCHED AND s.action = 'delete' THEN DELETE
WHEN MATCHED AND s.action = 'move' THEN UPDATE SET job_id = 'd0000000-0000-4000-8000-000000000009'
WHEN MATCHED THEN UPDATE SET status = s.action
WHEN NOT MATCHED THEN INSERT (job_id, bucket, key, etag, status) VALUES (s.job_id, 'cnt-bucket', s.key, s.etag, s.action);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000009');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000009');

-- 12b. Writable CTEs: a DELETE and an INSERT of the same table in one query (an object
--      re-registered under another job), and two UPDATEs of the table in one query.
BEGIN;
WITH gone AS (
    DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key IN ('bulk/20', 'bulk/21', 'bulk/22')
    RETURNING key, etag, status)
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'd0000000-0000-4000-8000-000000000009', 'cnt-bucket', key, etag, status, '2024-02-09 00:00:00+00' FROM gone;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000009');
WITH first AS (
    UPDATE job_objects SET status = 'processing'
    WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key IN ('bulk/30', 'bulk/31', 'bulk/32')
    RETURNING id)
UPDATE job_objects SET status = 'failed'
WHERE job_id = 'd0000000-0000-4000-8000-000000000009' AND key IN ('bulk/20', 'bulk/21');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000009');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000009');

-- 13. Findings: multi-row inserts with conflicts (no target; the dedup key as target; a conflict
--     with another job's finding, since the dedup key has no job_id), a finding moved to another
--     job, deletes.
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea', 'email', 'm' || g, g
FROM generate_series(1, 6) g;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'a', 'ea', 'email', 'again' || g, g
FROM generate_series(4, 9) g
ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'a', 'ea', 'email', 'other job, same key', 1),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'c', NULL, 'email', 'new', 1),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'c', NULL, 'email', 'new again', 1),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'x3', NULL, 'ssn', 'job 4 has it', 0)
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000004');
UPDATE findings SET job_id = 'd0000000-0000-4000-8000-000000000002'
WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND byte_offset IN (8, 9);
UPDATE findings SET masked_match = 'remasked' WHERE job_id = 'd0000000-0000-4000-8000-000000000004';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000004');
DELETE FROM findings WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND byte_offset <= 2;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000004');

-- 14. DELETE FROM jobs, cascading to objects and findings; then the same job_id again: zeros.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
BEGIN;
DELETE FROM jobs WHERE job_id = 'd0000000-0000-4000-8000-000000000002';
SELECT count(*) AS rows_left FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000002';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
INSERT INTO jobs (job_id, bucket, created_at, updated_at)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', '2024-02-10 00:00:00+00', '2024-02-10 00:00:00+00');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
SELECT total_objects, total_findings, last_object_update IS NULL AS no_last_update
FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000002';
-- deleted and created again within one transaction
BEGIN;
DELETE FROM jobs WHERE job_id = 'd0000000-0000-4000-8000-000000000004';
INSERT INTO jobs (job_id, bucket) VALUES ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket', 'x1', 'e1', 'failed');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000004');

-- 15. ROLLBACK: every kind of change, exact inside the transaction, gone after.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003',
                            'd0000000-0000-4000-8000-000000000006');
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'rb/' || g, 'e', 'queued' FROM generate_series(1, 5) g;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND status = 'queued';
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000006';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'rb/1', 'e', 'email', 'x', 0);
DELETE FROM jobs WHERE job_id = 'd0000000-0000-4000-8000-000000000007';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003',
                            'd0000000-0000-4000-8000-000000000006');
ROLLBACK;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003',
                            'd0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000007');

-- 16. Savepoints: ROLLBACK TO undoes exactly what followed it; a statement that fails inside a
--     savepoint leaves nothing; RELEASE keeps its changes.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'sp/' || g, 'e', 'queued' FROM generate_series(1, 4) g;
SAVEPOINT a;
UPDATE job_objects SET status = 'processing' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key LIKE 'sp/%';
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key IN ('a', 'b');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'sp/1', 'e', 'email', 'x', 0);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
ROLLBACK TO SAVEPOINT a;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
SAVEPOINT b;
\set VERBOSITY terse
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'sp/9', 'e', 'queued'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'sp/10', 'e', 'bogus');
\set VERBOSITY default
ROLLBACK TO SAVEPOINT b;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
SAVEPOINT c;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'sp/1';
SAVEPOINT d;
UPDATE job_objects SET status = 'failed' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key LIKE 'sp/%';
ROLLBACK TO SAVEPOINT d;
RELEASE SAVEPOINT c;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');

-- 17. Fold: inside a writing transaction it folds the delta rows it sees and leaves none; the
--     transaction's own entries stay pending until it commits (1.3); the reads stay exact; a
--     rolled-back fold leaves the deltas.
BEGIN;
UPDATE job_objects SET status = 'failed' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'sp/2';
SELECT fold_job_counters() >= 0 AS folded;
SELECT count(*) AS pending_deltas, (SELECT count(*) FROM pending_counter_deltas()) AS pending_entries
FROM job_counter_deltas;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
ROLLBACK;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
BEGIN;
UPDATE job_objects SET status = 'failed' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'sp/3';
SELECT fold_job_counters() >= 0 AS folded;
SELECT count(*) AS pending_deltas, (SELECT count(*) FROM pending_counter_deltas()) AS pending_entries
FROM job_counter_deltas;
UPDATE job_objects SET status = 'queued' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'sp/4';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
SELECT fold_job_counters() >= 0 AS folded;
SELECT count(*) AS pending_deltas FROM job_counter_deltas;
-- folded: the counter rows alone hold the counts now
SELECT c.job_id, c.total_objects, c.queued_count, c.processing_count, c.succeeded_count, c.failed_count,
       c.total_findings, c.last_object_update IS NOT DISTINCT FROM r.last_object_update AS last_update_exact
FROM job_counters c JOIN pg_temp.recount r USING (job_id)
WHERE (c.total_objects, c.queued_count, c.processing_count, c.succeeded_count, c.failed_count, c.total_findings)
      IS DISTINCT FROM (r.total_objects, r.queued_count, r.processing_count, r.succeeded_count, r.failed_count, r.total_findings)
   OR c.last_object_update IS DISTINCT FROM r.last_object_update;
SELECT count(*) AS jobs_differing FROM pg_temp.differences;
-- a second fold with nothing pending folds nothing
BEGIN;
SELECT fold_job_counters() AS folded;
ROLLBACK;

-- 18. A refresh folds first and computes job_progress from the counters: equal to the recount.
SELECT outcome FROM refresh_job_progress();
SELECT count(*) AS pending_deltas FROM job_counter_deltas;
SELECT count(*) AS differing FROM (
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM job_progress
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM pg_temp.recount)
    UNION ALL
    (SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM pg_temp.recount
     EXCEPT
     SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
            total_findings, progress_percent, last_object_update FROM job_progress)) d;
SELECT total_jobs, total_objects = (SELECT count(*) FROM job_objects) AS objects_exact
FROM materialized_view_refresh_log WHERE view_name = 'job_progress';

-- 19. Verify and repair. A counter row corrupted by hand: the reads show it (they read the
--     counters), verify reports the job's differing columns, repair of that job fixes it.
SELECT fold_job_counters() >= 0 AS folded;
UPDATE job_counters SET succeeded_count = succeeded_count + 5, total_findings = total_findings - 1
WHERE job_id = 'd0000000-0000-4000-8000-000000000001';
SELECT s.succeeded - r.succeeded_count AS succeeded_off_by, s.total_findings - r.total_findings AS findings_off_by
FROM job_summary s JOIN pg_temp.recount r USING (job_id)
WHERE job_id = 'd0000000-0000-4000-8000-000000000001';
-- (the check of this file sees it in every source)
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
SELECT job_id, item, maintained, counted FROM verify_job_counters() ORDER BY job_id, item;
SELECT job_id, item, maintained, counted FROM verify_job_counters('d0000000-0000-4000-8000-000000000001') ORDER BY item;
SELECT count(*) FROM verify_job_counters('d0000000-0000-4000-8000-000000000003');
SELECT repair_job_counters('d0000000-0000-4000-8000-000000000001');
SELECT count(*) AS verify_rows FROM verify_job_counters();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
-- a wrong last_object_update, and a bogus pending delta for another job
UPDATE job_counters SET last_object_update = '2000-01-01 00:00:00+00'
WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
INSERT INTO job_counter_deltas (job_id, total_objects, queued_count, processing_count, succeeded_count,
                                failed_count, total_findings, last_object_update, last_object_update_recheck)
VALUES ('d0000000-0000-4000-8000-000000000004', 2, 2, 0, 0, 0, 0, NULL, false);
SELECT job_id, item FROM verify_job_counters() ORDER BY job_id, item;
SELECT total_objects - 1 AS extra_objects FROM job_summary WHERE job_id = 'd0000000-0000-4000-8000-000000000004';
SELECT repair_job_counters() >= 2 AS repaired;
SELECT count(*) AS verify_rows FROM verify_job_counters();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000004');
-- a counter row left for a job id that does not exist: repair of all jobs removes it
INSERT INTO job_counters (job_id, total_objects, queued_count, processing_count, succeeded_count,
                          failed_count, total_findings, last_object_update)
VALUES ('d0000000-0000-4000-8000-0000000000fe', 3, 3, 0, 0, 0, 0, '2024-01-01 00:00:00+00');
SELECT repair_job_counters() >= 1 AS repaired;
SELECT count(*) AS counter_rows FROM job_counters WHERE job_id = 'd0000000-0000-4000-8000-0000000000fe';
-- a wrong counter row that a new job with its id finds: the job reads it, verify reports it,
-- repair of all jobs fixes it
INSERT INTO job_counters (job_id, total_objects, queued_count, processing_count, succeeded_count,
                          failed_count, total_findings, last_object_update)
VALUES ('d0000000-0000-4000-8000-0000000000ff', 7, 7, 0, 0, 0, 1, '2024-01-01 00:00:00+00');
INSERT INTO jobs (job_id, bucket) VALUES ('d0000000-0000-4000-8000-0000000000ff', 'cnt-bucket');
SELECT total_objects, total_findings FROM job_summary WHERE job_id = 'd0000000-0000-4000-8000-0000000000ff';
SELECT job_id, item, maintained, counted FROM verify_job_counters()
WHERE job_id = 'd0000000-0000-4000-8000-0000000000ff' ORDER BY item;
SELECT repair_job_counters() >= 1 AS repaired;
SELECT count(*) AS verify_rows FROM verify_job_counters();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-0000000000ff');
DELETE FROM jobs WHERE job_id = 'd0000000-0000-4000-8000-0000000000ff';
-- repair inside a writing transaction: the transaction's own later changes are kept
BEGIN;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key = 'bulk/11';
SELECT repair_job_counters('d0000000-0000-4000-8000-000000000003');
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key = 'bulk/12';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');

-- 20. TRUNCATE: each table, rolled back, rolled back to a savepoint, committed; changes before
--     and after a TRUNCATE in the same transaction; jobs with CASCADE.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'tr', 'e', 'email', 'x', 0);
TRUNCATE findings;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
ROLLBACK;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
BEGIN;
UPDATE job_objects SET status = 'processing' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'sp/1';
SAVEPOINT t;
TRUNCATE job_objects;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
ROLLBACK TO SAVEPOINT t;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'before-truncate', 'e', 'queued');
TRUNCATE job_objects;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'after-truncate', 'e', 'succeeded', '2024-02-11 00:00:00+00'),
 ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket', 'after-truncate', 'e', 'queued', '2024-02-11 00:00:00+00');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
SELECT job_id, last_object_update FROM job_progress_live
WHERE job_id = 'd0000000-0000-4000-8000-000000000001';
TRUNCATE findings;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
SELECT fold_job_counters() >= 0 AS folded;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket', 'after-truncate', 'e', 'email', 'x', 0);
TRUNCATE jobs CASCADE;
SELECT count(*) AS jobs, (SELECT count(*) FROM job_progress_live) AS live_rows FROM jobs;
SELECT count(*) AS differing FROM pg_temp.differences;
INSERT INTO jobs (job_id, bucket) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket'),
 ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('d0000000-0000-4000-8000-000000000004', 'cnt-bucket', 'after-cascade', 'e', 'processing');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000004');
SELECT count(*) AS verify_rows FROM verify_job_counters();

-- Data for the next parts: three jobs with objects and findings.
INSERT INTO jobs (job_id, bucket) VALUES
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket'),
 ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('d0000000-0000-4000-8000-00000000000' || j)::uuid, 'cnt-bucket', 'm/' || g, 'e',
       (ARRAY['queued', 'processing', 'succeeded', 'failed'])[g % 4 + 1]
FROM generate_series(1, 3) j, generate_series(1, 20) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ('d0000000-0000-4000-8000-00000000000' || j)::uuid, 'cnt-bucket', 'm/' || j, 'e', 'email', 'x', g
FROM generate_series(1, 3) j, generate_series(1, 3) g;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');

-- 21. The maintenance switch. Turned off in a transaction that rolls back: still on, exact.
BEGIN;
SELECT set_counter_maintenance(false);
SELECT counter_maintenance();
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'm/1';
ROLLBACK;
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
-- Off: counters and deltas emptied, reads aggregate the base tables (exact), writes leave no
-- delta.
SELECT set_counter_maintenance(false);
SELECT counter_maintenance();
SELECT (SELECT count(*) FROM job_counters) AS counter_rows, (SELECT count(*) FROM job_counter_deltas) AS delta_rows;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT 'd0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'off/' || g, 'e', 'queued' FROM generate_series(1, 7) g;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000002' AND status = 'queued';
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000003', key = 'moved/1'
WHERE job_id = 'd0000000-0000-4000-8000-000000000002' AND key = 'm/1';
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND status = 'failed';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'off', 'e', 'email', 'x', 0);
DELETE FROM findings WHERE job_id = 'd0000000-0000-4000-8000-000000000001';
SELECT (SELECT count(*) FROM job_counters) AS counter_rows, (SELECT count(*) FROM job_counter_deltas) AS delta_rows;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
-- On again: every counter rebuilt, exact; verify finds nothing.
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();
SELECT count(*) AS verify_rows FROM verify_job_counters();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
UPDATE job_objects SET status = 'failed' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key LIKE 'off/%';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
-- on when already on changes nothing
SELECT set_counter_maintenance(true);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');

-- 22. session_replication_role = replica, as logical replication applies changes: the row
--     triggers count, exact. (The updated_at trigger and the foreign keys do not fire in this
--     role, so an UPDATE can set an older updated_at here.)
SET session_replication_role = replica;
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/1', 'e', 'queued', '2024-03-01 00:00:00+00'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/2', 'e', 'processing', '2024-03-02 00:00:00+00'),
 ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'r/1', 'e', 'succeeded', '2100-03-01 00:00:00+00');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/1', 'e', 'failed'),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/3', 'e', 'failed')
ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001');
COPY job_objects (job_id, bucket, key, etag, status) FROM STDIN WITH (FORMAT csv);
d0000000-0000-4000-8000-000000000003,cnt-bucket,r/1,e,queued
d0000000-0000-4000-8000-000000000003,cnt-bucket,r/2,,succeeded
\.
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key LIKE 'r/%';
UPDATE job_objects SET status = status WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
-- an older updated_at on the newest object: last_object_update goes down
UPDATE job_objects SET updated_at = '2024-03-03 00:00:00+00'
WHERE job_id = 'd0000000-0000-4000-8000-000000000002' AND key = 'r/1';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
SELECT job_id, last_object_update = (SELECT max(updated_at) FROM job_objects
                                     WHERE job_id = 'd0000000-0000-4000-8000-000000000002') AS follows,
       last_object_update < '2100-01-01' AS lowered
FROM job_progress_live WHERE job_id = 'd0000000-0000-4000-8000-000000000002';
UPDATE job_objects SET job_id = 'd0000000-0000-4000-8000-000000000003', key = 'moved/' || key, status = 'failed'
WHERE job_id = 'd0000000-0000-4000-8000-000000000002' AND key IN ('m/2', 'm/3');
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key IN ('m/4', 'm/5', 'r/1');
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/1', 'e', 'email', 'x', 1),
 ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'r/1', 'e', 'email', 'x', 2),
 ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'm/3', 'e', 'email', 'dup', 1)
ON CONFLICT DO NOTHING;
UPDATE findings SET job_id = 'd0000000-0000-4000-8000-000000000003'
WHERE job_id = 'd0000000-0000-4000-8000-000000000001' AND key = 'r/1' AND byte_offset = 2;
DELETE FROM findings WHERE job_id = 'd0000000-0000-4000-8000-000000000002';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
SAVEPOINT r;
UPDATE job_objects SET status = 'queued' WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
DELETE FROM findings WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
ROLLBACK TO SAVEPOINT r;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
-- a rolled-back transaction in this role
BEGIN;
DELETE FROM job_objects WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'r/9', 'e', 'email', 'x', 1);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
ROLLBACK;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
-- TRUNCATE in this role
BEGIN;
TRUNCATE findings;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003');
ROLLBACK;
RESET session_replication_role;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');
SELECT fold_job_counters() >= 0 AS folded;
SELECT count(*) AS verify_rows FROM verify_job_counters();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002',
                            'd0000000-0000-4000-8000-000000000003');

-- 23. The counter triggers' states (version 1.2): the statement-level ones fire always, the
-- row-level ones only for replication (ENABLE REPLICA, no WHEN clause to evaluate per row), and
-- all are disabled while maintenance is off. The deltas table has no index and is not truncated
-- by vacuum; an index added to it is maintained.
CREATE TEMP VIEW counter_triggers AS
SELECT t.tgrelid::regclass AS tbl, t.tgname, t.tgenabled, t.tgqual IS NOT NULL AS has_when
FROM pg_trigger t
WHERE t.tgrelid IN ('job_objects'::regclass, 'findings'::regclass) AND t.tgname ~ '_count_'
ORDER BY 1, 2;
SELECT * FROM counter_triggers;
BEGIN;
SELECT set_counter_maintenance(false);
SELECT tbl, tgname, tgenabled FROM counter_triggers;
SELECT set_counter_maintenance(true);
SELECT tbl, tgname, tgenabled FROM counter_triggers;
ROLLBACK;
SELECT count(*) AS delta_indexes FROM pg_index WHERE indrelid = 'job_counter_deltas'::regclass;
-- Folds and repairs take turns by a lock on an empty table that nobody is granted (1.2).
SELECT relnatts, relacl, reloptions FROM pg_class WHERE oid = 'job_counters_lock'::regclass;
SELECT count(*) AS rows FROM job_counters_lock;
SELECT 'vacuum_truncate=false' = ANY (reloptions) AS no_vacuum_truncate
FROM pg_class WHERE oid = 'job_counter_deltas'::regclass;
-- An index a DBA adds to the deltas (1.1's btree, say, for reads while deltas pile up) is kept
-- up to date by the triggers' direct inserts: amcheck finds every delta row in it.
-- (Since 1.3 the rows are written at commit: a prepared transaction holding a lock the fold needs
-- keeps the worker from folding them before the check.)
CREATE INDEX deltas_by_job ON job_counter_deltas (job_id);
BEGIN;
LOCK TABLE job_counters_lock IN ROW SHARE MODE;
PREPARE TRANSACTION 's3scan_no_folds';
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('d0000000-0000-4000-8000-000000000001', 'cnt-bucket', 'indexed/1', 'e', 'queued'),
       ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'indexed/2', 'e', 'queued');
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE 'indexed/%';
SELECT count(*) > 0 AS deltas_pending FROM job_counter_deltas;
CREATE EXTENSION amcheck;
SELECT bt_index_check('deltas_by_job', heapallindexed => true);
COMMIT PREPARED 's3scan_no_folds';
DROP EXTENSION amcheck;
DROP INDEX deltas_by_job;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002');

-- 24. Deltas per transaction (version 1.3): the counter triggers keep a transaction's changes in
--     memory and write one delta row per job when it commits or prepares. A prepared transaction
--     holding a lock that the fold needs keeps the worker from folding while rows are counted.
SELECT tgname, tgargs FROM pg_trigger
WHERE tgrelid = 'findings'::regclass AND tgname ~ '_count_' ORDER BY 1;
BEGIN;
LOCK TABLE job_counters_lock IN ROW SHARE MODE;
PREPARE TRANSACTION 's3scan_no_folds';
SELECT count(*) AS pending_deltas FROM job_counter_deltas;
-- the clients' findings batch: 100 single-row INSERTs in one transaction
BEGIN;
DO $batch$
BEGIN
    FOR i IN 1..100 LOOP
        INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
        VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'batch', 'e', 'email', 'x', i)
        ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
    END LOOP;
END
$batch$;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'batch/1', 'e', 'queued');
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'd0000000-0000-4000-8000-000000000003' AND key = 'batch/1';
-- no row yet; the reads see the 103 pending entries
SELECT * FROM pg_temp.delta_rows('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
SELECT job_id, count(*) AS entries, sum(total_findings) AS findings, sum(total_objects) AS objects,
       sum(succeeded_count) AS succeeded
FROM pending_counter_deltas() GROUP BY job_id ORDER BY job_id;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
-- one row per job for the whole transaction, nothing pending in memory
SELECT * FROM pg_temp.delta_rows('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
SELECT count(*) AS pending_entries FROM pending_counter_deltas();
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
COMMIT PREPARED 's3scan_no_folds';  -- (folds, repairs and the switch below need the lock)
-- A cursor sees the counts of its snapshot: a change after it was opened is not in its rows,
-- as it is not in the base tables it reads; a new statement sees both.
BEGIN;
DECLARE before_change CURSOR FOR
    SELECT l.total_findings, (SELECT count(*) FROM findings f WHERE f.job_id = l.job_id) AS recounted
    FROM job_progress_live l WHERE l.job_id = 'd0000000-0000-4000-8000-000000000002';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'cursor', 'e', 'email', 'x', 1);
FETCH before_change;
SELECT l.total_findings, (SELECT count(*) FROM findings f WHERE f.job_id = l.job_id) AS recounted
FROM job_progress_live l WHERE l.job_id = 'd0000000-0000-4000-8000-000000000002';
COMMIT;
-- Savepoints: a rolled-back one drops its pending entries, a released one keeps them; nested.
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'sp', 'e', 'email', 'x', 1);
SAVEPOINT a;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'sp', 'e', 'email', 'x', 2);
SAVEPOINT b;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'sp', 'e', 'email', 'x', 3);
RELEASE SAVEPOINT b;
SAVEPOINT c;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'sp', 'e', 'email', 'x', 4);
ROLLBACK TO SAVEPOINT c;
SELECT count(*) AS pending_entries FROM pending_counter_deltas();
ROLLBACK TO SAVEPOINT a;
SELECT count(*) AS pending_entries FROM pending_counter_deltas();
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'sp', 'e', 'email', 'x', 5);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
-- More than 8,192 pending entries are written as rows (one per statement, as before 1.3), also
-- from inside PL/pgSQL exception blocks, each a subtransaction of its own, every tenth of them
-- rolled back after its insert. REPEATABLE READ: the counts of rows below are not disturbed by a
-- concurrent fold.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS rows_before FROM job_counter_deltas WHERE job_id = 'd0000000-0000-4000-8000-000000000003' \gset
DO $many$
BEGIN
    FOR i IN 1..10000 LOOP
        BEGIN
            INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
            VALUES ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'many', 'e', 'email', 'x', i);
            IF i % 10 = 0 THEN
                RAISE EXCEPTION 'roll this one back';
            END IF;
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
END
$many$;
SELECT count(*) - :rows_before AS rows_written,
       (SELECT count(*) FROM pending_counter_deltas()) AS still_pending
FROM job_counter_deltas WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
-- The same at the top level, and a rolled-back savepoint after the entries were written there:
-- its rows go, the entries they stood for are pending again.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS rows_before FROM job_counter_deltas WHERE job_id = 'd0000000-0000-4000-8000-000000000003' \gset
DO $top$
BEGIN
    FOR i IN 1..8000 LOOP
        INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
        VALUES ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'top', 'e', 'email', 'x', i);
    END LOOP;
END
$top$;
SAVEPOINT s;
DO $sub$
BEGIN
    FOR i IN 1..500 LOOP
        INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
        VALUES ('d0000000-0000-4000-8000-000000000003', 'cnt-bucket', 'sub', 'e', 'email', 'x', i);
    END LOOP;
END
$sub$;
SELECT count(*) - :rows_before AS rows_written,
       (SELECT count(*) FROM pending_counter_deltas()) AS still_pending
FROM job_counter_deltas WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) - :rows_before AS rows_written,
       (SELECT count(*) FROM pending_counter_deltas()) AS still_pending
FROM job_counter_deltas WHERE job_id = 'd0000000-0000-4000-8000-000000000003';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000003');
-- Rewrites of the counters in a transaction with pending entries: TRUNCATE (its negation), a
-- repair and the maintenance switch; each also rolled back to a savepoint.
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'rw', 'e', 'email', 'x', 1);
SAVEPOINT r;
SELECT repair_job_counters() > 0 AS repaired;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
ROLLBACK TO SAVEPOINT r;
SELECT repair_job_counters('d0000000-0000-4000-8000-000000000002') AS repaired;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'rw', 'e', 'email', 'x', 2);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
SAVEPOINT t;
TRUNCATE findings;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
ROLLBACK TO SAVEPOINT t;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'rw', 'e', 'email', 'x', 3);
SELECT set_counter_maintenance(false);
COMMIT;
-- (the pending entry and its cancellation: no count, whether a fold met them or not)
SELECT count(*) AS counter_rows_with_counts FROM job_counters WHERE total_objects <> 0 OR total_findings <> 0;
SELECT set_counter_maintenance(true);
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000003');
-- Two-phase commit: the rows are written at PREPARE; COMMIT PREPARED counts them, ROLLBACK
-- PREPARED does not.
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', '2pc', 'e', 'email', 'x', 1),
       ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', '2pc', 'e', 'email', 'x', 2);
PREPARE TRANSACTION 's3scan_committed';
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', '2pc', 'e', 'email', 'x', 3);
PREPARE TRANSACTION 's3scan_rolled_back';
SELECT count(*) AS pending_entries FROM pending_counter_deltas();
COMMIT PREPARED 's3scan_committed';
ROLLBACK PREPARED 's3scan_rolled_back';
SELECT * FROM pg_temp.check('d0000000-0000-4000-8000-000000000002');
-- A transaction that writes and then drops the extension commits (no table to write to).
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('d0000000-0000-4000-8000-000000000002', 'cnt-bucket', 'dropped', 'e', 'email', 'x', 1);
DROP EXTENSION s3scan_jobs CASCADE;
COMMIT;
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 's3scan_jobs';
