--
-- 005_bad_input: bad input gets an error with the right SQLSTATE and changes
-- nothing.
--
CREATE EXTENSION s3scan_jobs;

INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', '', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', 'queued', now());
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', 'email', 'x***@y.z', NULL, 1, now());
SELECT outcome FROM refresh_job_progress();

-- what every check below compares against
CREATE FUNCTION pg_temp.state() RETURNS TABLE (jobs bigint, objects bigint, findings bigint, object_statuses text)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_objects), (SELECT count(*) FROM findings),
           (SELECT string_agg(key || '=' || status, ',' ORDER BY key) FROM job_objects)
$$;
SELECT * FROM pg_temp.state();

\set VERBOSITY sqlstate

-- A malformed job id: 22P02 (invalid_text_representation).
SELECT * FROM job_status('not-a-uuid');
SELECT * FROM job_status('f0000000-0000-4000-8000-00000000000', true);
SELECT * FROM job_status('');
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('job-42', 'my-bucket', '', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('f0000000-zzzz-4000-8000-000000000001', 'my-bucket', 'b', 'eb', 'queued', now()) ON CONFLICT DO NOTHING;
UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
WHERE job_id = 'nope' AND bucket = 'my-bucket' AND key = 'a' AND etag = 'ea';
SELECT * FROM pg_temp.state();

-- An unknown status: 23514 (check_violation), on update and on insert.
UPDATE job_objects SET status = 'done', last_error = NULL, updated_at = now()
WHERE job_id = 'f0000000-0000-4000-8000-000000000001' AND bucket = 'my-bucket' AND key = 'a' AND etag = 'ea';
UPDATE job_objects SET status = 'SUCCEEDED', last_error = NULL, updated_at = now()
WHERE job_id = 'f0000000-0000-4000-8000-000000000001' AND bucket = 'my-bucket' AND key = 'a' AND etag = 'ea';
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'b', 'eb', 'pending', now()) ON CONFLICT DO NOTHING;
SELECT * FROM pg_temp.state();

-- An object or a finding for a job that does not exist: 23503
-- (foreign_key_violation).
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('f0000000-0000-4000-8000-0000000000ff', 'my-bucket', 'b', 'eb', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
VALUES ('f0000000-0000-4000-8000-0000000000ff', 'my-bucket', 'b', 'eb', 'email', 'x', NULL, 1, now())
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
-- moving an object to another, missing job
UPDATE job_objects SET job_id = 'f0000000-0000-4000-8000-0000000000ff'
WHERE job_id = 'f0000000-0000-4000-8000-000000000001';
SELECT * FROM pg_temp.state();

-- One bad row in a client batch: the whole batch is rolled back.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'c', 'ec', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'd', 'ed', 'queud', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'e', 'ee', 'queued', now()) ON CONFLICT DO NOTHING;
COMMIT;
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', 'email', 'y', NULL, 2, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('f0000000-0000-4000-8000-0000000000fe', 'my-bucket', 'a', 'ea', 'email', 'z', NULL, 3, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
COMMIT;
SELECT * FROM pg_temp.state();

-- Required columns: 23502 (not_null_violation).
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('f0000000-0000-4000-8000-000000000002', NULL, '', now());
INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', NULL, 'x');
UPDATE job_objects SET status = NULL WHERE job_id = 'f0000000-0000-4000-8000-000000000001';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', NULL, 'm', 5);
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', 'email', 'm', NULL);
SELECT * FROM pg_temp.state();

-- Unique keys without ON CONFLICT: 23505 (unique_violation).
INSERT INTO jobs (job_id, bucket) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket');
INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('f0000000-0000-4000-8000-000000000001', 'my-bucket', 'a', 'ea', 'email', 'other', 1);
SELECT * FROM pg_temp.state();

\set VERBOSITY default

-- The errors name what is wrong.
\set VERBOSITY terse
UPDATE job_objects SET status = 'done' WHERE job_id = 'f0000000-0000-4000-8000-000000000001';
SELECT * FROM job_status('not-a-uuid');
\set VERBOSITY default

-- None of it reached the cache or job_status.
SELECT outcome, total_jobs, total_objects FROM refresh_job_progress();
SELECT total_objects, queued_count, total_findings, status, data_source
FROM job_status('f0000000-0000-4000-8000-000000000001');

DROP EXTENSION s3scan_jobs CASCADE;
