-- Dataset generator for the benchmark, installed in schema "bench" of every database it loads
-- (the read database with the extension, and both write databases).
--
-- Rows are written with the clients' own statement shapes (shared/reference/
-- s3-scanner-interface.md), only set-based for speed:
--   jobs:        INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at) ...
--   job_objects: INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) ...
--                ON CONFLICT DO NOTHING
--   findings:    INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context,
--                byte_offset, created_at) ... ON CONFLICT (bucket, key, etag, detector, byte_offset)
--                DO NOTHING
-- Objects are loaded with their final status (the clients insert 'queued' and update later), so
-- the tables start without dead rows; run.sh VACUUM ANALYZEs after every load.
--
-- Every identifier is a pure function of (job number i, object number k), so pgbench scripts can
-- name existing rows:
--   job_id  bench.jid(i)                       = md5('s3scan-bench-job-' || i)::uuid
--   bucket  'bucket-' || abs(i) % 50
--   prefix  'scan-' || i || '/'
--   key     'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat'
--   etag    md5('etag-' || i || '-' || k)
-- Measured jobs have negative numbers: the job of N objects is i = -N.

CREATE SCHEMA bench;

CREATE FUNCTION bench.jid(i bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN md5('s3scan-bench-job-' || i)::uuid;

-- Status of object k of job i. A job "in progress" has 40% queued, 10% processing, 45% succeeded,
-- 5% failed objects; a finished job 95% succeeded, 5% failed.
CREATE FUNCTION bench.status(i bigint, k bigint, in_progress boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN in_progress THEN
            CASE WHEN (k * 7 + abs(i) * 13) % 100 < 40 THEN 'queued'
                 WHEN (k * 7 + abs(i) * 13) % 100 < 50 THEN 'processing'
                 WHEN (k * 7 + abs(i) * 13) % 100 < 95 THEN 'succeeded'
                 ELSE 'failed' END
        ELSE
            CASE WHEN (k * 7 + abs(i) * 13) % 100 < 95 THEN 'succeeded' ELSE 'failed' END
    END;

-- Number of objects of small job i: avg exactly when vary is false, else 1 .. 2*avg-1
-- (mean avg) spread deterministically.
CREATE FUNCTION bench.nobj(i bigint, avg integer, vary boolean) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN NOT vary OR avg <= 1 THEN avg
                ELSE 1 + ((i * 7919) % (2 * avg - 1))::integer END;

-- Jobs first .. last (positive numbers), avg objects each; every 5th job in progress, the rest
-- finished; a finding on object k of job i when (k + i) % findings_every = 0 (0: no findings),
-- so that small jobs get findings too. One statement per table, committed per chunk of jobs so
-- that no transaction grows huge.
CREATE PROCEDURE bench.load_small_jobs(first bigint, last bigint, avg integer, vary boolean,
                                       findings_every integer, chunk integer DEFAULT 5000)
    LANGUAGE plpgsql AS $$
DECLARE
    a bigint := first;
    b bigint;
BEGIN
    WHILE a <= last LOOP
        b := least(a + chunk - 1, last);

        INSERT INTO public.jobs (job_id, bucket, prefix, execution_arn, created_at)
        SELECT bench.jid(i), 'bucket-' || abs(i) % 50, 'scan-' || i || '/',
               CASE WHEN i % 3 = 0 THEN NULL
                    ELSE 'arn:aws:states:us-east-1:123456789012:execution:s3-scanner:job-' || i END,
               now() - (last - i) * interval '1 second'
        FROM generate_series(a, b) AS i;

        INSERT INTO public.job_objects (job_id, bucket, key, etag, status, updated_at)
        SELECT bench.jid(i), 'bucket-' || abs(i) % 50,
               'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
               md5('etag-' || i || '-' || k),
               bench.status(i, k, i % 5 = 0), now()
        FROM generate_series(a, b) AS i,
             LATERAL generate_series(1, bench.nobj(i, avg, vary)) AS k
        ON CONFLICT DO NOTHING;

        IF findings_every > 0 THEN
            INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context,
                                         byte_offset, created_at)
            SELECT bench.jid(i), 'bucket-' || abs(i) % 50,
                   'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
                   md5('etag-' || i || '-' || k),
                   (ARRAY['aws_access_key', 'credit_card', 'email', 'us_ssn'])[1 + (k + i / findings_every) % 4],
                   '****' || right(md5(i || ':' || k), 4),
                   'line ' || k % 500 || ': ... ****' || right(md5(k::text), 4) || ' ...',
                   ((k * 37) % 100000)::integer, now()
            FROM generate_series(a, b) AS i,
                 LATERAL generate_series(1, bench.nobj(i, avg, vary)) AS k
            WHERE (k + i) % findings_every = 0
            ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
        END IF;

        COMMIT;
        a := b + 1;
    END LOOP;
END;
$$;

-- One measured job of n objects (job number -n), in progress, with n_findings findings spread
-- over its first objects (one each). Loaded in chunks of 100,000 objects.
CREATE PROCEDURE bench.load_measured_job(n integer, n_findings integer)
    LANGUAGE plpgsql AS $$
DECLARE
    i bigint := -n;
    a bigint := 1;
    b bigint;
BEGIN
    INSERT INTO public.jobs (job_id, bucket, prefix, execution_arn, created_at)
    VALUES (bench.jid(i), 'bucket-' || abs(i) % 50, 'scan-' || i || '/',
            'arn:aws:states:us-east-1:123456789012:execution:s3-scanner:job-' || i, now());
    WHILE a <= n LOOP
        b := least(a + 99999, n);
        INSERT INTO public.job_objects (job_id, bucket, key, etag, status, updated_at)
        SELECT bench.jid(i), 'bucket-' || abs(i) % 50,
               'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
               md5('etag-' || i || '-' || k),
               bench.status(i, k, true), now()
        FROM generate_series(a, b) AS k
        ON CONFLICT DO NOTHING;
        COMMIT;
        a := b + 1;
    END LOOP;
    INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context,
                                 byte_offset, created_at)
    SELECT bench.jid(i), 'bucket-' || abs(i) % 50,
           'scan-' || i || '/part-' || k / 1000 || '/object-' || k || '.dat',
           md5('etag-' || i || '-' || k),
           (ARRAY['aws_access_key', 'credit_card', 'email', 'us_ssn'])[1 + k % 4],
           '****' || right(md5(i || ':' || k), 4),
           'line ' || k % 500 || ': ... ****' || right(md5(k::text), 4) || ' ...',
           ((k * 37) % 100000)::integer, now()
    FROM generate_series(1, least(n_findings, n)) AS k
    ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
    COMMIT;
END;
$$;
