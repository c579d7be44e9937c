-- Data for compare_system.sh: the same rows, deterministically, in the database built by the
-- scanner system's own schema (existing-deployment.sql) and in the one built by
-- CREATE EXTENSION s3scan_jobs. Run by psql in each database with
--   -v jobs=N -v big=N -v small=N -v avg=N -v every=N
-- Every value is a pure function of (job number i, object number k), so both databases get the
-- same jobs, objects and findings, and findings get the same ids (inserted in the same order,
-- one session, sequence starting at 1).
--
--   job i       job_id md5('cmp-job-' || i)::uuid, bucket 'bucket-' || i % 50, created 10 minutes
--               after job i - 1; execution_arn null for every 3rd job
--   objects     job 1: :big objects (the 1M-object job); job :jobs - 1: :small objects (the
--               1K-object job); every 500th job: none yet (still being listed); the others
--               1 .. 2 * :avg - 1, :avg on average. Every 5th job and the two measured jobs are in
--               progress (40% queued, 10% processing, 45% succeeded, 5% failed), the others finished
--               (95% succeeded, 5% failed)
--   findings    one on every :every-th object, created 5 ms after the object's last change
--
-- Objects and findings are written with the clients' column lists, set-based, one transaction per
-- chunk of 100 jobs. session_replication_role = replica skips the foreign-key checks of the
-- extension's tables during the load (the rows are consistent by construction); the system's
-- secondary indexes are dropped before the load and created again after it from their own
-- definitions (pg_get_indexdef), which gives the same indexes as maintaining them row by row, in
-- a fraction of the time.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA cmp_load;

CREATE FUNCTION cmp_load.jid(i integer) RETURNS uuid
    LANGUAGE sql IMMUTABLE RETURN md5('cmp-job-' || i)::uuid;

CREATE FUNCTION cmp_load.nobj(i integer, jobs integer, big integer, small integer, avg integer)
    RETURNS integer LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN i = 1 THEN big
                WHEN i = jobs - 1 THEN small
                WHEN i % 500 = 0 THEN 0
                ELSE 1 + (i * 7919) % (2 * avg - 1) END;

CREATE FUNCTION cmp_load.status(i integer, k integer, in_progress boolean) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE
        WHEN in_progress THEN
            CASE WHEN (k * 7 + i * 13) % 100 < 40 THEN 'queued'
                 WHEN (k * 7 + i * 13) % 100 < 50 THEN 'processing'
                 WHEN (k * 7 + i * 13) % 100 < 95 THEN 'succeeded'
                 ELSE 'failed' END
        ELSE CASE WHEN (k * 7 + i * 13) % 100 < 95 THEN 'succeeded' ELSE 'failed' END
    END;

CREATE TABLE cmp_load.dropped_indexes (def text);

-- The system's secondary indexes of job_objects and findings (not the primary keys, not the
-- UNIQUE constraint): dropped here, created again after the load.
INSERT INTO cmp_load.dropped_indexes
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid IN ('public.job_objects'::regclass, 'public.findings'::regclass)
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 's3scan_jobs');
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS idx
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid IN ('public.job_objects'::regclass, 'public.findings'::regclass)
               AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
               AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 's3scan_jobs')
    LOOP
        EXECUTE 'DROP INDEX ' || r.idx;
    END LOOP;
END $$;

CREATE PROCEDURE cmp_load.load(jobs integer, big integer, small integer, avg integer, every integer)
    LANGUAGE plpgsql AS $$
DECLARE
    a integer := 1;
    b integer;
    t0 constant timestamptz := '2026-10-01 00:00:00+00';
BEGIN
    SET LOCAL session_replication_role = replica;
    INSERT INTO public.jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
    SELECT cmp_load.jid(i), 'bucket-' || i % 50, 'scan-' || i || '/',
           CASE WHEN i % 3 = 0 THEN NULL
                ELSE 'arn:aws:states:us-east-1:123456789012:execution:s3-scanner:job-' || i END,
           t0 + i * interval '10 minutes', t0 + i * interval '10 minutes'
    FROM generate_series(1, jobs) AS i;
    COMMIT;
    WHILE a <= jobs LOOP
        b := least(a + 99, jobs);
        SET LOCAL session_replication_role = replica;
        INSERT INTO public.job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
        SELECT cmp_load.jid(i), 'bucket-' || i % 50,
               'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
               md5('etag-' || i || '-' || k), s,
               CASE WHEN s = 'failed' THEN 'AccessDenied: GetObject' END,
               t0 + i * interval '10 minutes' + k * interval '10 milliseconds'
        FROM generate_series(a, b) AS i,
             LATERAL generate_series(1, cmp_load.nobj(i, jobs, big, small, avg)) AS k,
             LATERAL cmp_load.status(i, k, i % 5 = 0 OR i = 1 OR i = jobs - 1) AS s
        ORDER BY i, k;
        INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context,
                                     byte_offset, created_at)
        SELECT cmp_load.jid(i), 'bucket-' || i % 50,
               'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
               md5('etag-' || i || '-' || k),
               (ARRAY['aws_access_key', 'credit_card', 'email', 'us_ssn'])[1 + (k / every) % 4],
               '****' || right(md5(i || ':' || k), 4),
               'line ' || k % 500 || ': ... ****' || right(md5(k::text), 4) || ' ...',
               (k * 37) % 100000,
               t0 + i * interval '10 minutes' + k * interval '10 milliseconds' + interval '5 milliseconds'
        FROM generate_series(a, b) AS i,
             LATERAL generate_series(1, cmp_load.nobj(i, jobs, big, small, avg)) AS k
        WHERE (k + i) % every = 0
        ORDER BY i, k;
        COMMIT;
        a := b + 1;
    END LOOP;
END;
$$;

CALL cmp_load.load(:jobs, :big, :small, :avg, :every);

SET maintenance_work_mem = '1GB';
SELECT def || ';' FROM cmp_load.dropped_indexes \gexec
DROP SCHEMA cmp_load CASCADE;
