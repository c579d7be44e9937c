--
-- 015_counter_edges: the edges of the per-job counters that version 1.4 closes. After each step,
-- job_progress_live, job_summary and job_status(id, true) equal an independent recount of
-- job_objects and findings (and, while the counters are maintained, verify_job_counters() finds
-- nothing and job_counters + deltas add up to the recount):
--  1. repair_job_counters() inside a statement that has job_objects or findings open (a writable
--     WITH, a query over the table, a trigger on it) is refused (55006) and counts nothing twice;
--     SELECT repair_job_counters(job_id) FROM jobs works.
--  2. Counter triggers changed outside set_counter_maintenance() (ALTER TABLE ... DISABLE/ENABLE
--     [ALWAYS|REPLICA] TRIGGER, ALL, USER or by name; ALTER TRIGGER ... RENAME): one WARNING while
--     reads used the counters, counter_maintenance() false, reads exact (they count the base
--     tables) until set_counter_maintenance(true) restores the counter triggers and rebuilds the
--     counters.
--  3. jobs, job_objects and findings take no part in inheritance or partitioning (0A000).
--  4. The internal tables keep their columns and names (0A000); storage parameters, statistics
--     and indexes may change.
--  5. Cursors and correlated subqueries over job_summary whose snapshot predates a spill of more
--     than 8,192 pending entries count each entry once.
--  6. TRUNCATE of a job counted past 2^31 - 1 negates it in delta rows within integer.
--  7. The memory of the pending entries stays bounded inside one long subtransaction and with a
--     subtransaction per statement.
--
CREATE EXTENSION s3scan_jobs;
SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs';
SELECT counter_maintenance();
-- (The checks below are large queries over few rows: compiling them with JIT would cost seconds
-- each.)
SET jit = off;

-- The independent recount: per job of jobs, aggregates over job_objects and findings (not the
-- extension's views, counters or deltas).
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

-- The invariant, for every job_id that has objects, findings, a counter row or deltas:
-- job_counters + the pending deltas (rows, and this transaction's entries) = the base tables.
CREATE TEMP VIEW invariant_differences AS
SELECT job_id FROM (
    SELECT jo.job_id, 1::bigint AS o, (jo.status = 'queued')::int::bigint AS q,
           (jo.status = 'processing')::int::bigint AS p, (jo.status = 'succeeded')::int::bigint AS s,
           (jo.status = 'failed')::int::bigint AS f, 0::bigint AS fi
    FROM job_objects jo
    UNION ALL
    SELECT fi.job_id, 0, 0, 0, 0, 0, 1 FROM findings fi
    UNION ALL
    SELECT c.job_id, -c.total_objects, -c.queued_count, -c.processing_count, -c.succeeded_count,
           -c.failed_count, -c.total_findings
    FROM job_counters c
    UNION ALL
    SELECT d.job_id, -d.total_objects, -d.queued_count, -d.processing_count, -d.succeeded_count,
           -d.failed_count, -d.total_findings
    FROM job_counter_deltas d
    UNION ALL
    SELECT p.job_id, -p.total_objects, -p.queued_count, -p.processing_count, -p.succeeded_count,
           -p.failed_count, -p.total_findings
    FROM pending_counter_deltas() p) x
GROUP BY job_id
HAVING sum(o) <> 0 OR sum(q) <> 0 OR sum(p) <> 0 OR sum(s) <> 0 OR sum(f) <> 0 OR sum(fi) <> 0;

-- Every (job, source) where a read differs from the recount; verify_job_counters() and the
-- invariant only while the counters are maintained (otherwise they are emptied).
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

-- The states of the ten counter triggers, and whether every other trigger on the two tables
-- (foreign keys, updated_at) is enabled as the extension created it.
CREATE TEMP VIEW counter_triggers AS
SELECT t.tgrelid::regclass AS tbl, t.tgname, t.tgenabled
FROM pg_trigger t
WHERE t.tgrelid IN ('job_objects'::regclass, 'findings'::regclass) AND t.tgname ~ '_count_'
ORDER BY 1, 2;
CREATE FUNCTION pg_temp.triggers_as_created() RETURNS boolean
LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE t.tgname ~ '_count_(inserts|updates|deletes|truncate)$' AND t.tgenabled = 'A') = 8
       AND count(*) FILTER (WHERE t.tgname ~ '_count_replicated$' AND t.tgenabled = 'R') = 2
       AND bool_and(t.tgenabled = 'O') FILTER (WHERE t.tgname !~ '_count_')
    FROM pg_trigger t
    WHERE t.tgrelid IN ('job_objects'::regclass, 'findings'::regclass)
$$;

-- What a writer does to a job: objects inserted, updated and deleted, findings inserted and
-- deleted (two objects and one finding more per call).
CREATE FUNCTION pg_temp.write_some(job uuid, tag text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES
     (job, 'edge-bucket', tag || '/1', 'e', 'queued'),
     (job, 'edge-bucket', tag || '/2', 'e', 'processing'),
     (job, 'edge-bucket', tag || '/3', 'e', 'succeeded');
    UPDATE job_objects SET status = 'failed' WHERE job_id = job AND key = tag || '/1';
    DELETE FROM job_objects WHERE job_id = job AND key = tag || '/2';
    INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES
     (job, 'edge-bucket', job || '/' || tag, 'e', 'email', 'x', 1),
     (job, 'edge-bucket', job || '/' || tag, 'e', 'email', 'x', 2);
    DELETE FROM findings WHERE job_id = job AND key = job || '/' || tag AND byte_offset = 1;
END
$$;

-- A statement's outcome: 'ok', or its SQLSTATE and message.
CREATE FUNCTION pg_temp.outcome(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

INSERT INTO jobs (job_id, bucket)
SELECT ('e1500000-0000-4000-8000-0000000000' || n)::uuid, 'edge-bucket' FROM unnest(ARRAY['01', '02', '03']) n;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('e1500000-0000-4000-8000-0000000000' || n)::uuid, 'edge-bucket', 'o/' || g, 'e',
       (ARRAY['queued', 'processing', 'succeeded', 'failed'])[g % 4 + 1]
FROM unnest(ARRAY['01', '02', '03']) n, generate_series(1, 8) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ('e1500000-0000-4000-8000-0000000000' || n)::uuid, 'edge-bucket', n || '/o/1', 'e', 'email', 'x', g
FROM unnest(ARRAY['01', '02', '03']) n, generate_series(1, 3) g;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000002',
                            'e1500000-0000-4000-8000-000000000003');

-- 1. repair_job_counters() inside a statement that has a counted table open: 55006, and nothing
--    changes (on 1.3 it ran, and from a writable WITH it counted the statement's rows twice: the
--    recount saw them, and the statement's counter trigger then added them again).
\set VERBOSITY sqlstate
WITH added AS (
    INSERT INTO job_objects (job_id, bucket, key, etag, status)
    SELECT 'e1500000-0000-4000-8000-000000000001', 'edge-bucket', 'cte/' || g, 'e', 'queued'
    FROM generate_series(1, 5) g RETURNING job_id)
SELECT repair_job_counters('e1500000-0000-4000-8000-000000000001'), (SELECT count(*) FROM added);
WITH changed AS (
    UPDATE job_objects SET status = 'succeeded'
    WHERE job_id = 'e1500000-0000-4000-8000-000000000001' AND status = 'queued' RETURNING job_id)
SELECT repair_job_counters(), (SELECT count(*) FROM changed);
WITH gone AS (
    DELETE FROM findings WHERE job_id = 'e1500000-0000-4000-8000-000000000001' RETURNING job_id)
SELECT repair_job_counters('e1500000-0000-4000-8000-000000000001'), (SELECT count(*) FROM gone);
-- a query over job_objects or findings
SELECT repair_job_counters(job_id) FROM job_objects WHERE job_id = 'e1500000-0000-4000-8000-000000000001' LIMIT 1;
SELECT repair_job_counters(job_id) FROM findings WHERE job_id = 'e1500000-0000-4000-8000-000000000001' LIMIT 1;
SELECT repair_job_counters() WHERE EXISTS (SELECT FROM job_objects);
-- a trigger on job_objects
CREATE FUNCTION pg_temp.repair_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM repair_job_counters();
    RETURN NULL;
END
$$;
CREATE TRIGGER regress_repair_after_insert AFTER INSERT ON job_objects
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.repair_after_insert();
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('e1500000-0000-4000-8000-000000000001', 'edge-bucket', 'trigger/1', 'e', 'queued');
DROP TRIGGER regress_repair_after_insert ON job_objects;
\set VERBOSITY default
-- the message
SELECT repair_job_counters(job_id) FROM job_objects WHERE job_id = 'e1500000-0000-4000-8000-000000000001' LIMIT 1;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000002',
                            'e1500000-0000-4000-8000-000000000003');
-- over jobs (neither counted table open) it works, job by job; also inside a writing transaction
SELECT job_id, repair_job_counters(job_id) AS rebuilt FROM jobs ORDER BY job_id;
BEGIN;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000001', 'repair');
SELECT job_id, repair_job_counters(job_id) AS rebuilt FROM jobs ORDER BY job_id;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000002',
                            'e1500000-0000-4000-8000-000000000003');
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000002',
                            'e1500000-0000-4000-8000-000000000003');
SELECT count(*) AS verify_rows FROM verify_job_counters();

-- 2. Counter triggers changed outside set_counter_maintenance(). While reads use the counters,
--    a change that leaves the ten triggers in other states than set_counter_maintenance(true) set
--    (statement-level ENABLE ALWAYS 'A', row-level ENABLE REPLICA 'R') warns once, empties the
--    counters and makes the reads count the base tables: counter_maintenance() is false and
--    every read stays exact, also for writes made in that state. set_counter_maintenance(true)
--    restores the states and the counters. (On 1.3 counter_maintenance() stayed true and the
--    writes made while a trigger was off were never counted.)
SELECT * FROM counter_triggers;
SELECT pg_temp.triggers_as_created();
-- The switch itself warns about nothing.
SELECT set_counter_maintenance(false);
SELECT counter_maintenance();
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();
-- A change rolled back: so is its effect.
BEGIN;
ALTER TABLE job_objects DISABLE TRIGGER ALL;
SELECT counter_maintenance();
ROLLBACK;
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2a. DISABLE TRIGGER ALL, as pg_restore --disable-triggers emits it, then ENABLE TRIGGER ALL
--     (a second change, no second WARNING), which leaves every counter trigger ORIGIN ('O').
ALTER TABLE job_objects DISABLE TRIGGER ALL;
SELECT counter_maintenance();
SELECT (SELECT count(*) FROM job_counters) AS counter_rows, (SELECT count(*) FROM job_counter_deltas) AS delta_rows;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2a-disabled');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002', 'e1500000-0000-4000-8000-000000000003');
ALTER TABLE job_objects ENABLE TRIGGER ALL;
SELECT counter_maintenance();
SELECT tgname, tgenabled FROM counter_triggers WHERE tbl = 'job_objects'::regclass;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2a-origin');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002', 'e1500000-0000-4000-8000-000000000003');
-- the refresh counts the base tables too
SELECT outcome FROM refresh_job_progress();
SELECT count(*) AS cache_differs FROM (
    SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
    FROM job_progress
    EXCEPT
    SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
    FROM pg_temp.recount) d;
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002', 'e1500000-0000-4000-8000-000000000003');

-- 2b. ENABLE TRIGGER ALL alone: the counter triggers become ORIGIN (logical replication's apply
--     would not be counted any more).
ALTER TABLE job_objects ENABLE TRIGGER ALL;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2b');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2c. DISABLE TRIGGER USER, then ENABLE TRIGGER USER (no second WARNING).
ALTER TABLE job_objects DISABLE TRIGGER USER;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2c-disabled');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
ALTER TABLE job_objects ENABLE TRIGGER USER;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2c-origin');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2d. ENABLE ALWAYS and ENABLE REPLICA (PostgreSQL has no ALL form of these: each trigger is
--     named). The row-level trigger made ALWAYS: it would count every row a second time.
ALTER TABLE job_objects ENABLE ALWAYS TRIGGER job_objects_count_replicated;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2d-always');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
-- every counter trigger of job_objects REPLICA: nothing a session writes is counted
ALTER TABLE job_objects ENABLE REPLICA TRIGGER job_objects_count_inserts,
    ENABLE REPLICA TRIGGER job_objects_count_updates, ENABLE REPLICA TRIGGER job_objects_count_deletes,
    ENABLE REPLICA TRIGGER job_objects_count_truncate, ENABLE REPLICA TRIGGER job_objects_count_replicated;
SELECT counter_maintenance();
SELECT tgname, tgenabled FROM counter_triggers WHERE tbl = 'job_objects'::regclass;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2d-replica');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2e. One trigger: DISABLE TRIGGER job_objects_count_inserts; ENABLE TRIGGER
--     job_objects_count_replicated (ORIGIN).
ALTER TABLE job_objects DISABLE TRIGGER job_objects_count_inserts;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2e-inserts');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
ALTER TABLE job_objects ENABLE TRIGGER job_objects_count_replicated;
SELECT counter_maintenance();
SELECT tgname, tgenabled FROM counter_triggers WHERE tgname = 'job_objects_count_replicated';
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2e-replicated');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2f. The same on findings.
ALTER TABLE findings DISABLE TRIGGER ALL;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-disabled');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
ALTER TABLE findings ENABLE TRIGGER ALL;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-origin');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
ALTER TABLE findings DISABLE TRIGGER USER;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-user');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
ALTER TABLE findings ENABLE TRIGGER USER;
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
ALTER TABLE findings DISABLE TRIGGER findings_count_deletes;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-deletes');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
ALTER TABLE findings ENABLE TRIGGER findings_count_replicated;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-replicated');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
ALTER TABLE findings ENABLE ALWAYS TRIGGER findings_count_replicated;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2f-always');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');

-- 2g. The event trigger fires under session_replication_role = replica too (as logical
--     replication's apply would see it): the replicated trigger disabled there, then rows
--     applied in that role.
SET session_replication_role = replica;
ALTER TABLE findings DISABLE TRIGGER findings_count_replicated;
SELECT counter_maintenance();
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
VALUES ('e1500000-0000-4000-8000-000000000003', 'edge-bucket', '2g', 'e', 'email', 'x', 1),
       ('e1500000-0000-4000-8000-000000000003', 'edge-bucket', '2g', 'e', 'email', 'x', 2);
RESET session_replication_role;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000003');

-- 2h. ALTER TRIGGER ... RENAME: a counter trigger missing under its name. set_counter_maintenance
--     (true) cannot restore it (it names the triggers): it says which is missing and what to do,
--     and changes nothing; renamed back, it can.
ALTER TRIGGER job_objects_count_updates ON job_objects RENAME TO regress_s3scan_renamed;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2h');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
\set VERBOSITY default
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
ALTER TRIGGER regress_s3scan_renamed ON job_objects RENAME TO job_objects_count_updates;
SELECT counter_maintenance();
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');

-- 2i. Disabled, then enabled again by hand in exactly the state it had: the rows written in
--     between were not counted, so the counters may be wrong; reads keep counting the base
--     tables (counter_maintenance() false) until set_counter_maintenance(true) recounts.
ALTER TABLE job_objects DISABLE TRIGGER job_objects_count_deletes;
DELETE FROM job_objects WHERE job_id = 'e1500000-0000-4000-8000-000000000002' AND key = 'o/1';
ALTER TABLE job_objects ENABLE ALWAYS TRIGGER job_objects_count_deletes;
SELECT tgname, tgenabled FROM counter_triggers WHERE tgname = 'job_objects_count_deletes';
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
-- all ten
ALTER TABLE job_objects DISABLE TRIGGER job_objects_count_inserts, DISABLE TRIGGER job_objects_count_updates,
    DISABLE TRIGGER job_objects_count_deletes, DISABLE TRIGGER job_objects_count_truncate,
    DISABLE TRIGGER job_objects_count_replicated;
ALTER TABLE findings DISABLE TRIGGER findings_count_inserts, DISABLE TRIGGER findings_count_updates,
    DISABLE TRIGGER findings_count_deletes, DISABLE TRIGGER findings_count_truncate,
    DISABLE TRIGGER findings_count_replicated;
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2i');
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000003', '2i');
ALTER TABLE job_objects ENABLE ALWAYS TRIGGER job_objects_count_inserts, ENABLE ALWAYS TRIGGER job_objects_count_updates,
    ENABLE ALWAYS TRIGGER job_objects_count_deletes, ENABLE ALWAYS TRIGGER job_objects_count_truncate,
    ENABLE REPLICA TRIGGER job_objects_count_replicated;
ALTER TABLE findings ENABLE ALWAYS TRIGGER findings_count_inserts, ENABLE ALWAYS TRIGGER findings_count_updates,
    ENABLE ALWAYS TRIGGER findings_count_deletes, ENABLE ALWAYS TRIGGER findings_count_truncate,
    ENABLE REPLICA TRIGGER findings_count_replicated;
SELECT pg_temp.triggers_as_created();
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002', 'e1500000-0000-4000-8000-000000000003');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002', 'e1500000-0000-4000-8000-000000000003');

-- 2j. With maintenance off, trigger changes warn about nothing (reads count the base tables
--     already); on again, exact.
SELECT set_counter_maintenance(false);
ALTER TABLE job_objects ENABLE TRIGGER ALL;
ALTER TABLE findings DISABLE TRIGGER findings_count_inserts;
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000002', '2j');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000002');
SELECT set_counter_maintenance(true);
SELECT counter_maintenance(), pg_temp.triggers_as_created();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000002',
                            'e1500000-0000-4000-8000-000000000003');
SELECT count(*) AS verify_rows FROM verify_job_counters();

-- 3. No inheritance or partitioning for jobs, job_objects and findings: 0A000, nothing left
--    behind (the CREATE TABLE rolled back, no pg_inherits row, no partition).
CREATE TABLE regress_s3scan_like_jobs (LIKE jobs);
CREATE TABLE regress_s3scan_like_objects (LIKE job_objects INCLUDING CONSTRAINTS);
CREATE TABLE regress_s3scan_like_findings (LIKE findings);
CREATE TABLE regress_s3scan_parted_jobs (LIKE jobs) PARTITION BY RANGE (created_at);
CREATE TABLE regress_s3scan_parted_objects (LIKE job_objects) PARTITION BY RANGE (id);
CREATE TABLE regress_s3scan_parted_findings (LIKE findings) PARTITION BY LIST (detector);
SELECT pg_temp.outcome('CREATE TABLE regress_s3scan_child () INHERITS (jobs)');
SELECT pg_temp.outcome('CREATE TABLE regress_s3scan_child () INHERITS (job_objects)');
SELECT pg_temp.outcome('CREATE TABLE regress_s3scan_child () INHERITS (findings)');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_like_jobs INHERIT jobs');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_like_objects INHERIT job_objects');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_like_findings INHERIT findings');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_parted_jobs ATTACH PARTITION jobs FOR VALUES FROM (MINVALUE) TO (MAXVALUE)');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_parted_objects ATTACH PARTITION job_objects FOR VALUES FROM (MINVALUE) TO (MAXVALUE)');
SELECT pg_temp.outcome('ALTER TABLE regress_s3scan_parted_findings ATTACH PARTITION findings DEFAULT');
-- the whole message, once
CREATE TABLE regress_s3scan_child () INHERITS (job_objects);
SELECT to_regclass('regress_s3scan_child') AS child;
SELECT count(*) AS inheritance_rows FROM pg_inherits;
SELECT relname, relispartition, relhassubclass FROM pg_class
WHERE oid IN ('jobs'::regclass, 'job_objects'::regclass, 'findings'::regclass) ORDER BY relname;
DROP TABLE regress_s3scan_like_jobs, regress_s3scan_like_objects, regress_s3scan_like_findings,
    regress_s3scan_parted_jobs, regress_s3scan_parted_objects, regress_s3scan_parted_findings;
SELECT counter_maintenance();
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001');

-- 4. The internal tables keep their columns and names, and their indexes their names: 0A000 for
--    ADD/DROP/RENAME COLUMN, RENAME TO, SET SCHEMA, ALTER COLUMN ... TYPE, RENAME CONSTRAINT, an
--    index renamed.
SELECT pg_temp.outcome('ALTER TABLE job_counter_deltas ADD COLUMN regress_s3scan_extra integer');
SELECT pg_temp.outcome('ALTER TABLE job_counter_deltas DROP COLUMN last_object_update_recheck');
SELECT pg_temp.outcome('ALTER TABLE job_counter_deltas RENAME COLUMN job_id TO regress_s3scan_job');
SELECT pg_temp.outcome('ALTER TABLE job_counter_deltas RENAME TO regress_s3scan_deltas');
CREATE SCHEMA regress_s3scan_elsewhere;
SELECT pg_temp.outcome('ALTER TABLE job_counter_deltas SET SCHEMA regress_s3scan_elsewhere');
DROP SCHEMA regress_s3scan_elsewhere;
SELECT pg_temp.outcome('ALTER TABLE job_counters ALTER COLUMN total_objects TYPE numeric');
SELECT pg_temp.outcome('ALTER TABLE job_counters RENAME CONSTRAINT job_counters_pkey TO regress_s3scan_pkey');
-- (its index by name, as an index or as a relation: the folds name job_counters_pkey)
SELECT pg_temp.outcome('ALTER INDEX job_counters_pkey RENAME TO regress_s3scan_pkey');
SELECT pg_temp.outcome('ALTER TABLE job_counters_pkey RENAME TO regress_s3scan_pkey');
SELECT pg_temp.outcome('ALTER TABLE job_counters_lock ADD COLUMN regress_s3scan_extra integer');
-- (unchanged)
SELECT c.relname,
       (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c
WHERE c.oid IN ('job_counter_deltas'::regclass, 'job_counters'::regclass, 'job_counters_lock'::regclass)
ORDER BY c.relname;
SELECT conname FROM pg_constraint WHERE conrelid = 'job_counters'::regclass;
-- the whole message, once
ALTER TABLE job_counter_deltas ADD COLUMN regress_s3scan_extra integer;
-- Allowed: storage parameters, statistics, an index; writes are still counted, exact.
ALTER TABLE job_counter_deltas SET (autovacuum_vacuum_threshold = 5000);
ALTER TABLE job_counters ALTER COLUMN total_objects SET STATISTICS 500;
CREATE INDEX regress_s3scan_deltas_job ON job_counter_deltas (job_id);
SELECT 'autovacuum_vacuum_threshold=5000' = ANY (reloptions) AS threshold_set
FROM pg_class WHERE oid = 'job_counter_deltas'::regclass;
SELECT attstattarget FROM pg_attribute WHERE attrelid = 'job_counters'::regclass AND attname = 'total_objects';
SELECT counter_maintenance();
SELECT pg_temp.write_some('e1500000-0000-4000-8000-000000000001', '4');
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001');
SELECT fold_job_counters() >= 0 AS folded;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001');
DROP INDEX regress_s3scan_deltas_job;
ALTER TABLE job_counter_deltas SET (autovacuum_vacuum_threshold = 1000);
ALTER TABLE job_counters ALTER COLUMN total_objects SET STATISTICS -1;

-- 5. Cursors and correlated subqueries over job_summary across a spill. Three jobs of 10 queued
--    objects; each row of cursor_rows reads job_summary and recounts job_objects in the same
--    snapshot.
INSERT INTO jobs (job_id, bucket)
SELECT ('e1500000-0000-4000-8000-0000000000' || n)::uuid, 'edge-bucket' FROM unnest(ARRAY['10', '11', '12']) n;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('e1500000-0000-4000-8000-0000000000' || n)::uuid, 'edge-bucket', 'c/' || g, 'e', 'queued'
FROM unnest(ARRAY['10', '11', '12']) n, generate_series(1, 10) g;
-- (The rows come from a function scan in the array's order, with no sort: each row's subqueries
-- run when it is fetched, and again when a fetch goes back to it.)
CREATE TEMP VIEW cursor_rows AS
SELECT j.job_id,
       (SELECT s.total_objects FROM job_summary s WHERE s.job_id = j.job_id) AS total,
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id) AS recounted_total,
       (SELECT s.succeeded FROM job_summary s WHERE s.job_id = j.job_id) AS succeeded,
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'succeeded') AS recounted_succeeded,
       (SELECT s.processing FROM job_summary s WHERE s.job_id = j.job_id) AS processing,
       (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'processing') AS recounted_processing
FROM unnest('{e1500000-0000-4000-8000-000000000010, e1500000-0000-4000-8000-000000000011,
              e1500000-0000-4000-8000-000000000012}'::uuid[]) AS j (job_id);
-- (what the above relies on: the cursor's plan starts with the function scan, no Sort or
-- Materialize between)
CREATE FUNCTION pg_temp.plan_top(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || statement LOOP
        RETURN line;
    END LOOP;
END
$$;
SELECT pg_temp.plan_top('DECLARE spilled SCROLL CURSOR FOR SELECT * FROM cursor_rows');
-- 9,000 single-row UPDATEs, each a counted statement (one pending entry): more than 8,192.
CREATE FUNCTION pg_temp.spill(n integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        UPDATE job_objects SET status = CASE WHEN i % 2 = 0 THEN 'queued' ELSE 'processing' END
        WHERE job_id = 'e1500000-0000-4000-8000-000000000012' AND key = 'c/10';
    END LOOP;
    RETURN n;
END
$$;
-- 5a. A scroll cursor fetched once (its subqueries read the transaction's pending entries of
--     jobs 11 and 12), 9,000 statements, then the rest of it and a rescan: every value as its
--     snapshot sees it (on 1.3 the spilled entries were counted twice: as rows and from the
--     cursor's materialized read of the pending entries).
BEGIN;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'e1500000-0000-4000-8000-000000000011' AND key = 'c/1';
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('e1500000-0000-4000-8000-000000000011', 'edge-bucket', 'c/new', 'e', 'succeeded');
UPDATE job_objects SET status = 'processing' WHERE job_id = 'e1500000-0000-4000-8000-000000000012' AND key = 'c/1';
DECLARE spilled SCROLL CURSOR FOR SELECT * FROM cursor_rows;
FETCH 1 FROM spilled;
SELECT pg_temp.spill(9000);
SELECT count(*) AS still_pending FROM pending_counter_deltas();
FETCH ALL FROM spilled;
MOVE ABSOLUTE 0 IN spilled;
FETCH ALL FROM spilled;
FETCH BACKWARD ALL FROM spilled;
CLOSE spilled;
-- a new statement sees the transaction's later changes as well
SELECT * FROM cursor_rows;
COMMIT;
SELECT * FROM cursor_rows;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000010', 'e1500000-0000-4000-8000-000000000011',
                            'e1500000-0000-4000-8000-000000000012');
-- 5b. The same inside one statement: its first row reads the pending entries, then 9,000
--     statements run before the next rows' subqueries read job_summary again.
BEGIN;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'e1500000-0000-4000-8000-000000000011' AND key = 'c/2';
UPDATE job_objects SET status = 'processing' WHERE job_id = 'e1500000-0000-4000-8000-000000000012' AND key = 'c/2';
SELECT r.*, CASE WHEN r.job_id = 'e1500000-0000-4000-8000-000000000010' THEN pg_temp.spill(9000) END AS statements
FROM cursor_rows r;
SELECT * FROM cursor_rows;
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000010', 'e1500000-0000-4000-8000-000000000011',
                            'e1500000-0000-4000-8000-000000000012');
-- 5c. A cursor declared before the spill and first fetched after it (nothing read the pending
--     entries before): it counts what its snapshot saw, once.
BEGIN;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = 'e1500000-0000-4000-8000-000000000011' AND key = 'c/3';
INSERT INTO job_objects (job_id, bucket, key, etag, status)
VALUES ('e1500000-0000-4000-8000-000000000011', 'edge-bucket', 'c/new2', 'e', 'processing');
DECLARE declared_before CURSOR FOR SELECT * FROM cursor_rows;
SELECT pg_temp.spill(9000);
FETCH ALL FROM declared_before;
SELECT * FROM cursor_rows;
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000010', 'e1500000-0000-4000-8000-000000000011',
                            'e1500000-0000-4000-8000-000000000012');

-- 6. TRUNCATE of a job counted past 2^31 - 1 (set directly in job_counters; the job has no rows):
--    the negation is written as several delta rows within integer (on 1.3: integer out of range),
--    counters + deltas come to 0, and every read says 0.
INSERT INTO jobs (job_id, bucket) VALUES ('e1500000-0000-4000-8000-000000000020', 'edge-bucket');
INSERT INTO job_counters (job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
                          total_findings, last_object_update)
VALUES ('e1500000-0000-4000-8000-000000000020', 5000000000, 2000000000, 1000000000, 1500000000, 500000000,
        3000000000, '2024-06-01 00:00:00+00');
SELECT total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary WHERE job_id = 'e1500000-0000-4000-8000-000000000020';
-- (the counts are not those of the base tables: every source differs for this job)
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000020');
CREATE FUNCTION pg_temp.big_job_deltas() RETURNS TABLE (delta_rows bigint, objects bigint, queued bigint,
    processing bigint, succeeded bigint, failed bigint, findings bigint)
LANGUAGE sql AS $$
    SELECT count(*), sum(total_objects), sum(queued_count), sum(processing_count), sum(succeeded_count),
           sum(failed_count), sum(total_findings)
    FROM job_counter_deltas WHERE job_id = 'e1500000-0000-4000-8000-000000000020'
$$;
CREATE FUNCTION pg_temp.big_job_sums() RETURNS TABLE (objects numeric, queued numeric, processing numeric,
    succeeded numeric, failed numeric, findings numeric)
LANGUAGE sql AS $$
    SELECT sum(total_objects), sum(queued_count), sum(processing_count), sum(succeeded_count),
           sum(failed_count), sum(total_findings)
    FROM (SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
          FROM job_counters WHERE job_id = 'e1500000-0000-4000-8000-000000000020'
          UNION ALL
          SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
          FROM job_counter_deltas WHERE job_id = 'e1500000-0000-4000-8000-000000000020'
          UNION ALL
          SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
          FROM pending_counter_deltas() WHERE job_id = 'e1500000-0000-4000-8000-000000000020') x
$$;
BEGIN;
TRUNCATE job_objects;
SELECT * FROM pg_temp.big_job_deltas();
TRUNCATE findings;
SELECT * FROM pg_temp.big_job_deltas();
SELECT * FROM pg_temp.big_job_sums();
SELECT total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary WHERE job_id = 'e1500000-0000-4000-8000-000000000020';
COMMIT;
SELECT * FROM pg_temp.big_job_sums();
SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings, status
FROM job_status('e1500000-0000-4000-8000-000000000020', true);
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000001', 'e1500000-0000-4000-8000-000000000010',
                            'e1500000-0000-4000-8000-000000000020');

-- 7. Memory: 40,000 counted single-row INSERTs in one transaction, (a) inside one PL/pgSQL
--    exception block (one long subtransaction), (b) each in an exception block of its own (a
--    subtransaction per statement, as psql's ON_ERROR_ROLLBACK or a driver's autosave make it),
--    (c) the same inside one outer exception block. What TopTransactionContext and its
--    descendants hold stays below 4 MB (the pending entries: at most 8,192 per open level, about
--    0.7 MB each; on 1.3 (a) and (c) grew by about 150 bytes per statement). Not counted: the
--    8 kB CurTransactionContext PostgreSQL keeps until the transaction ends for each committed
--    subtransaction in which a trigger with transition tables fired, the extension's or any
--    other. The counts are exact after each commit.
INSERT INTO jobs (job_id, bucket) VALUES ('e1500000-0000-4000-8000-000000000030', 'edge-bucket');
CREATE FUNCTION pg_temp.transaction_memory_below(bound bigint) RETURNS boolean
LANGUAGE sql AS $$
    -- pg_get_backend_memory_contexts() lists the contexts depth first: TopTransactionContext's
    -- descendants are the rows after it, up to the next one at its level or above.
    WITH c AS (
        SELECT m.name, m.level, m.total_bytes, m.n
        FROM pg_get_backend_memory_contexts() WITH ORDINALITY
             AS m (name, ident, parent, level, total_bytes, total_nblocks, free_bytes, free_chunks, used_bytes, n)),
    top AS (SELECT n, level FROM c WHERE name = 'TopTransactionContext'),
    after AS (SELECT min(c.n) AS n FROM c, top WHERE c.n > top.n AND c.level <= top.level)
    SELECT sum(c.total_bytes) < bound
    FROM c, top, after
    WHERE c.n >= top.n AND (after.n IS NULL OR c.n < after.n)
      AND NOT (c.name = 'CurTransactionContext' AND c.level > top.level)
$$;
BEGIN;
DO $one_block$
BEGIN
    BEGIN
        FOR i IN 1..40000 LOOP
            INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
            VALUES ('e1500000-0000-4000-8000-000000000030', 'edge-bucket', 'one-block', 'e', 'email', 'x', i);
        END LOOP;
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END
$one_block$;
SELECT pg_temp.transaction_memory_below(4 * 1024 * 1024) AS below_4mb;
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000030');
BEGIN;
DO $each_block$
BEGIN
    FOR i IN 1..40000 LOOP
        BEGIN
            INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
            VALUES ('e1500000-0000-4000-8000-000000000030', 'edge-bucket', 'each-block', 'e', 'email', 'x', i);
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
END
$each_block$;
SELECT pg_temp.transaction_memory_below(4 * 1024 * 1024) AS below_4mb;
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000030');
BEGIN;
DO $nested$
BEGIN
    BEGIN
        FOR i IN 1..40000 LOOP
            BEGIN
                INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
                VALUES ('e1500000-0000-4000-8000-000000000030', 'edge-bucket', 'nested', 'e', 'email', 'x', i);
            EXCEPTION WHEN raise_exception THEN
                NULL;
            END;
        END LOOP;
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END
$nested$;
SELECT pg_temp.transaction_memory_below(4 * 1024 * 1024) AS below_4mb;
COMMIT;
SELECT * FROM pg_temp.check('e1500000-0000-4000-8000-000000000030');
SELECT count(*) AS verify_rows FROM verify_job_counters();

DROP VIEW cursor_rows, counter_triggers, differences, invariant_differences, recount;
RESET jit;
DROP EXTENSION s3scan_jobs;
