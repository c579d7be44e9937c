--
-- 001_tables: the tables and the statements the existing clients send,
-- unchanged (reference/s3-scanner-interface.md, "What the clients send").
--
CREATE EXTENSION s3scan_jobs;

-- 1. Create a job: with and without execution_arn, created_at = now().
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at)
VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/',
        'arn:aws:states:us-east-1:123456789012:execution:s3-scan:run-1', now());
INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('a0000000-0000-4000-8000-000000000002', 'other-bucket', '', now());

-- the defaults: updated_at filled in, equal to created_at at creation
SELECT job_id, bucket, prefix, execution_arn,
       created_at = updated_at AS updated_is_created,
       created_at >= now() - interval '1 min' AS fresh
FROM jobs ORDER BY job_id;

-- prefix defaults to the empty string
INSERT INTO jobs (job_id, bucket) VALUES ('a0000000-0000-4000-8000-000000000003', 'third-bucket');
SELECT prefix = '' AS prefix_defaults_to_empty, execution_arn IS NULL AS no_arn
FROM jobs WHERE job_id = 'a0000000-0000-4000-8000-000000000003';

-- 2. Register listed objects: single-row inserts, ON CONFLICT DO NOTHING (no
--    conflict target), in one transaction; a repeated object is ignored.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/c.csv', 'etag-c', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/d.csv', 'etag-d', 'queued', now()) ON CONFLICT DO NOTHING;
-- the same object listed twice: ignored
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'queued', now()) ON CONFLICT DO NOTHING;
-- same key, new etag (object rewritten): a distinct natural key, kept
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a2', 'queued', now()) ON CONFLICT DO NOTHING;
COMMIT;

-- a batch of 1,000 rows, as the clients send at most, plus a repeat of it
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'a0000000-0000-4000-8000-000000000002', 'other-bucket', 'obj/' || g, 'e' || g, 'queued', now()
FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT 'a0000000-0000-4000-8000-000000000002', 'other-bucket', 'obj/' || g, 'e' || g, 'queued', now()
FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
COMMIT;

SELECT job_id, count(*) AS objects, count(DISTINCT id) AS ids,
       bool_and(status = 'queued') AS all_queued,
       bool_and(last_error IS NULL) AS no_errors
FROM job_objects GROUP BY job_id ORDER BY job_id;

SELECT key, etag, status FROM job_objects
WHERE job_id = 'a0000000-0000-4000-8000-000000000001' ORDER BY key, etag;

-- the status column defaults to 'queued'
INSERT INTO job_objects (job_id, bucket, key, etag)
VALUES ('a0000000-0000-4000-8000-000000000003', 'third-bucket', 'x', 'ex');
SELECT status, updated_at >= now() - interval '1 min' AS fresh
FROM job_objects WHERE job_id = 'a0000000-0000-4000-8000-000000000003';

-- 3. The per-object update, each in its own transaction: as a literal
--    statement and as a prepared statement with the six parameters.
UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now() WHERE job_id = 'a0000000-0000-4000-8000-000000000001' AND bucket = 'scan-bucket' AND key = 'logs/2024/a.csv' AND etag = 'etag-a';

PREPARE upd_object AS
UPDATE job_objects SET status = $1, last_error = $2, updated_at = now()
WHERE job_id = $3 AND bucket = $4 AND key = $5 AND etag = $6;

EXECUTE upd_object('succeeded', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a');
EXECUTE upd_object('processing', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b');
EXECUTE upd_object('failed', 'AccessDenied: s3:GetObject', 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b');
-- a retried object goes back to processing, then succeeds
EXECUTE upd_object('processing', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b');
EXECUTE upd_object('succeeded', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b');
EXECUTE upd_object('processing', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/c.csv', 'etag-c');
EXECUTE upd_object('failed', 'timeout', 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/c.csv', 'etag-c');
-- an update that matches nothing changes nothing
EXECUTE upd_object('succeeded', NULL, 'a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/zzz.csv', 'etag-z');

SELECT key, etag, status, last_error FROM job_objects
WHERE job_id = 'a0000000-0000-4000-8000-000000000001' ORDER BY key, etag;

-- updated_at is kept current by the BEFORE UPDATE triggers: an old value
-- written explicitly is replaced by the time of the update.
UPDATE job_objects SET updated_at = '2001-01-01 00:00:00+00'
WHERE job_id = 'a0000000-0000-4000-8000-000000000001' AND key = 'logs/2024/d.csv';
SELECT updated_at > '2001-01-01 00:00:00+00' AS object_updated_at_current,
       updated_at <= clock_timestamp() AS not_in_future
FROM job_objects
WHERE job_id = 'a0000000-0000-4000-8000-000000000001' AND key = 'logs/2024/d.csv';

-- a status update, in a later transaction, leaves a newer updated_at
SELECT updated_at AS obj_before FROM job_objects
WHERE job_id = 'a0000000-0000-4000-8000-000000000003' \gset
SELECT pg_sleep(0.01);
UPDATE job_objects SET status = 'processing'
WHERE job_id = 'a0000000-0000-4000-8000-000000000003';
SELECT updated_at > :'obj_before'::timestamptz AS object_updated_at_advanced
FROM job_objects WHERE job_id = 'a0000000-0000-4000-8000-000000000003';

-- the same on jobs: a job created at a fixed past time ...
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at)
VALUES ('a0000000-0000-4000-8000-000000000004', 'old-bucket', '', '2020-01-01 00:00:00+00', '2020-01-01 00:00:00+00');
SELECT updated_at = '2020-01-01 00:00:00+00' AS insert_keeps_given_updated_at
FROM jobs WHERE job_id = 'a0000000-0000-4000-8000-000000000004';
-- ... gets a current updated_at when updated, created_at untouched
UPDATE jobs SET execution_arn = 'arn:aws:states:us-east-1:123456789012:execution:s3-scan:run-4'
WHERE job_id = 'a0000000-0000-4000-8000-000000000004';
SELECT created_at = '2020-01-01 00:00:00+00' AS created_at_unchanged,
       updated_at > '2020-01-01 00:00:00+00' AS job_updated_at_current,
       updated_at <= clock_timestamp() AS not_in_future
FROM jobs WHERE job_id = 'a0000000-0000-4000-8000-000000000004';
-- an explicit old value in the UPDATE is overwritten too
UPDATE jobs SET updated_at = '1999-01-01 00:00:00+00'
WHERE job_id = 'a0000000-0000-4000-8000-000000000004';
SELECT updated_at > '2020-01-01 00:00:00+00' AS job_updated_at_overwritten
FROM jobs WHERE job_id = 'a0000000-0000-4000-8000-000000000004';

-- 4. Findings: batches of inserts with
--    ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING.
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'aws_access_key', 'AKIA************MPLE', 'key=AKIA...', 120, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'email', 'j***@example.com', NULL, 300, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'email', 'k***@example.com', NULL, 512, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/b.csv', 'etag-b', 'credit_card', '4111********1111', 'card: 4111...', 0, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
-- the same finding reported again (a retried object): ignored
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('a0000000-0000-4000-8000-000000000001', 'scan-bucket', 'logs/2024/a.csv', 'etag-a', 'email', 'j***@example.com', 'retry', 300, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
COMMIT;

-- a batch of 100 findings on the second job, repeated once
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT 'a0000000-0000-4000-8000-000000000002', 'other-bucket', 'obj/' || (g % 10 + 1), 'e' || (g % 10 + 1), 'ssn', '***-**-' || lpad(g::text, 4, '0'), NULL, g, now()
FROM generate_series(1, 100) g
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT 'a0000000-0000-4000-8000-000000000002', 'other-bucket', 'obj/' || (g % 10 + 1), 'e' || (g % 10 + 1), 'ssn', '***-**-' || lpad(g::text, 4, '0'), NULL, g, now()
FROM generate_series(1, 100) g
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
COMMIT;

SELECT key, etag, detector, masked_match, context, byte_offset,
       created_at >= now() - interval '1 min' AS fresh
FROM findings WHERE job_id = 'a0000000-0000-4000-8000-000000000001'
ORDER BY key, detector, byte_offset;
SELECT job_id, count(*) AS findings FROM findings GROUP BY job_id ORDER BY job_id;

-- ids of job_objects and findings are distinct surrogate keys
SELECT count(*) = count(DISTINCT id) AS object_ids_unique FROM job_objects;
SELECT count(*) = count(DISTINCT id) AS finding_ids_unique FROM findings;

-- 5. Deleting a job deletes its objects and findings, and nothing else.
DELETE FROM jobs WHERE job_id = 'a0000000-0000-4000-8000-000000000002';
SELECT (SELECT count(*) FROM job_objects WHERE job_id = 'a0000000-0000-4000-8000-000000000002') AS objects_left,
       (SELECT count(*) FROM findings WHERE job_id = 'a0000000-0000-4000-8000-000000000002') AS findings_left;
SELECT job_id, count(*) AS objects FROM job_objects GROUP BY job_id ORDER BY job_id;
SELECT job_id, count(*) AS findings FROM findings GROUP BY job_id ORDER BY job_id;
SELECT job_id FROM jobs ORDER BY job_id;

DROP EXTENSION s3scan_jobs CASCADE;
