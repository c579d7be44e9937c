--
-- 008_job_status_reads: what job_status reads. The cached path reads the
-- cache, never job_objects or findings; the real-time path reads only the
-- job's rows of job_objects and findings, by index, never a sequential scan.
-- Measured with the current transaction's table statistics
-- (pg_stat_xact_user_tables), which only this transaction touches.
--
CREATE EXTENSION s3scan_jobs;

-- 60 jobs of 200 objects and 20 findings each, plus the job under test with
-- 30 objects and 10 findings.
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
SELECT ('20000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk', '',
       '2024-06-01 00:00:00+00', '2024-06-01 00:00:00+00'
FROM generate_series(1, 61) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('20000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk', 'o' || g, 'e' || g,
       (ARRAY['queued', 'processing', 'succeeded', 'failed'])[g % 4 + 1]
FROM generate_series(1, 60) j, generate_series(1, 200) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ('20000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bulk', 'o1', 'e' || j, 'd', 'm', g
FROM generate_series(1, 60) j, generate_series(1, 20) g;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT '20000000-0000-4000-8000-000000000061', 'bulk', 'x' || g, 'e' || g,
       CASE WHEN g <= 20 THEN 'succeeded' ELSE 'queued' END
FROM generate_series(1, 30) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT '20000000-0000-4000-8000-000000000061', 'bulk', 'x1', 'e1', 'd', 'm', g
FROM generate_series(1, 10) g;
ANALYZE jobs, job_objects, findings;
-- no autovacuum ANALYZE in the middle of the test (it would invalidate plans)
ALTER TABLE jobs SET (autovacuum_enabled = false);
ALTER TABLE job_objects SET (autovacuum_enabled = false);
ALTER TABLE findings SET (autovacuum_enabled = false);
SELECT outcome FROM refresh_job_progress();

-- Scan counters of job_objects and findings as this backend counts them.
-- Inside a transaction block they are not flushed, so differences between
-- two readings in one transaction count exactly the scans in between.
CREATE FUNCTION pg_temp.counters() RETURNS TABLE (jo_seq bigint, jo_idx bigint, f_seq bigint, f_idx bigint,
                                                  c_seq bigint, c_idx bigint, d_seq bigint, d_idx bigint)
LANGUAGE sql AS $$
    SELECT (SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'job_objects'::regclass),
           (SELECT coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'job_objects'::regclass),
           (SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'findings'::regclass),
           (SELECT coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'findings'::regclass),
           (SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'job_counters'::regclass),
           (SELECT coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'job_counters'::regclass),
           (SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'job_counter_deltas'::regclass),
           (SELECT coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'job_counter_deltas'::regclass)
$$;

-- Cached: job_objects and findings are not read at all. (Several calls, so
-- that plans kept by the session are used too.)
BEGIN;
SELECT * FROM pg_temp.counters() \gset c0_
SELECT total_objects, succeeded_count, total_findings, status, data_source
FROM job_status('20000000-0000-4000-8000-000000000061');
-- (g < 0 is false: the argument depends on g, so job_status runs once per row)
SELECT count(*) FROM generate_series(1, 10) g, job_status('20000000-0000-4000-8000-000000000061', g < 0);
SELECT jo_seq - :c0_jo_seq AS job_objects_seq_scans, jo_idx - :c0_jo_idx AS job_objects_index_scans,
       f_seq - :c0_f_seq AS findings_seq_scans, f_idx - :c0_f_idx AS findings_index_scans
FROM pg_temp.counters();
COMMIT;

-- Real time: exact counts from the job's counters, read by index, and the
-- pending deltas, one scan of that short table per read (no index since 1.2);
-- job_objects and findings are not read at all.
BEGIN;
SELECT * FROM pg_temp.counters() \gset c1_
SELECT total_objects, succeeded_count, total_findings, status, data_source
FROM job_status('20000000-0000-4000-8000-000000000061', true);
SELECT count(*) FROM generate_series(1, 10) g, job_status('20000000-0000-4000-8000-000000000061', g > 0);
SELECT jo_seq - :c1_jo_seq AS job_objects_seq_scans, jo_idx - :c1_jo_idx AS job_objects_index_scans,
       f_seq - :c1_f_seq AS findings_seq_scans, f_idx - :c1_f_idx AS findings_index_scans
FROM pg_temp.counters();
SELECT c_seq - :c1_c_seq AS counters_seq_scans, c_idx - :c1_c_idx > 0 AS counters_by_index,
       d_seq - :c1_d_seq AS deltas_seq_scans, d_idx - :c1_d_idx > 0 AS deltas_by_index
FROM pg_temp.counters();
COMMIT;

-- The fallback for a job not in the cache, and an unknown job, read by
-- index in the same way.
INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('20000000-0000-4000-8000-000000000062', 'bulk', '', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('20000000-0000-4000-8000-000000000062', 'bulk', 'y', 'e', 'queued');
BEGIN;
SELECT * FROM pg_temp.counters() \gset c2_
SELECT total_objects, status, data_source FROM job_status('20000000-0000-4000-8000-000000000062');
SELECT count(*) FROM job_status('20000000-0000-4000-8000-0000000000ff');
SELECT count(*) FROM job_status('20000000-0000-4000-8000-0000000000ff', true);
SELECT jo_seq - :c2_jo_seq AS job_objects_seq_scans, f_seq - :c2_f_seq AS findings_seq_scans
FROM pg_temp.counters();
COMMIT;

-- No SQL catalog queries on the hot path: once a session has answered,
-- further answers (cached or real time) scan no system catalog or catalog
-- index (a cache miss or a query on the catalogs would). Counted in one
-- transaction: each reading of the counter scans pg_class once itself, so
-- ten calls of job_status between two readings must add nothing to what two
-- readings in a row add. A query on the catalogs in job_status would fail
-- every attempt; the first attempt also plans the statements, and a stray
-- cache invalidation (autovacuum) could spoil one more, hence three tries.
CREATE FUNCTION pg_temp.catalog_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_stat_get_xact_numscans(c.oid))::bigint
    FROM pg_class c
    WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind IN ('r', 'i')
$$;
CREATE FUNCTION pg_temp.scans_no_catalog(id uuid, rt boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    k0 bigint;
    k1 bigint;
    k2 bigint;
BEGIN
    FOR attempt IN 1..3 LOOP
        k0 := pg_temp.catalog_scans();
        k1 := pg_temp.catalog_scans();
        -- rt OR g < 0 is rt, but makes job_status run once per row
        PERFORM count(*) FROM generate_series(1, 10) g, job_status(id, rt OR g < 0);
        k2 := pg_temp.catalog_scans();
        IF k2 - k1 = k1 - k0 THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pg_temp.scans_no_catalog('20000000-0000-4000-8000-000000000061', false) AS cached_calls_scan_no_catalog;
SELECT pg_temp.scans_no_catalog('20000000-0000-4000-8000-000000000061', true) AS real_time_calls_scan_no_catalog;

DROP EXTENSION s3scan_jobs CASCADE;
