-- s3scan_jobs 1.0 -> 1.1: exact per-job counters maintained inside the server.
--
-- A fresh CREATE EXTENSION s3scan_jobs runs the 1.0 script and then this one (there is no
-- separate 1.1 install script), so a fresh 1.1 and an updated 1.0 have the same objects.
--
-- How the counters work (docs/design.md "The per-job counters"):
-- - C statement-level AFTER triggers with transition tables on job_objects and findings append
--   one row per (statement, job) to job_counter_deltas: the change of each count in that
--   statement. Writers only append: no row is updated in place, so writers to one job never wait
--   for each other, or for a reader, because of the counters.
-- - fold_job_counters() (the refresh worker every s3scan_jobs.fold_interval, and every refresh)
--   moves the deltas into job_counters in one statement.
-- - For every job: its job_counters row plus its pending deltas equals the aggregate of the base
--   tables, in every snapshot. job_progress_live reads exactly that sum, so job_summary,
--   job_status(id, true) and the refresh of job_progress read O(1) rows per job.
--
-- Same rules as the 1.0 script (CONTRIBUTING.md): every operator OPERATOR(pg_catalog.x), every
-- function pg_catalog.f(), explicit casts, the extension's objects qualified, search_path pinned.

\echo Use "ALTER EXTENSION s3scan_jobs UPDATE TO '1.1'" to load this file. \quit

-- Tables ------------------------------------------------------------------------------------------

-- Folded counts per job. No row means zeros. No foreign key: a job's deleted objects arrive
-- as negative deltas, and the fold removes rows of deleted jobs once they are all zero.
CREATE TABLE @extschema@.job_counters (
    job_id             uuid PRIMARY KEY,
    total_objects      bigint NOT NULL,
    queued_count       bigint NOT NULL,
    processing_count   bigint NOT NULL,
    succeeded_count    bigint NOT NULL,
    failed_count       bigint NOT NULL,
    total_findings     bigint NOT NULL,
    last_object_update timestamptz
);

-- Changes not folded yet: one row per statement and job (integers: one statement changes fewer
-- than 2^31 rows of a job, and sum(integer) adds in bigint, faster than sum(bigint) in numeric). last_object_update is the newest
-- updated_at the statement wrote (null if it wrote no object row); last_object_update_recheck
-- says that the statement removed an object row that may have been the job's newest (a DELETE,
-- or an UPDATE that lowered updated_at or moved rows to another job): the job's newest
-- updated_at is then read from job_objects until the next fold recomputes it.
CREATE TABLE @extschema@.job_counter_deltas (
    job_id                     uuid NOT NULL,
    total_objects              integer NOT NULL,
    queued_count               integer NOT NULL,
    processing_count           integer NOT NULL,
    succeeded_count            integer NOT NULL,
    failed_count               integer NOT NULL,
    total_findings             integer NOT NULL,
    last_object_update         timestamptz,
    last_object_update_recheck boolean NOT NULL
);
-- A job's pending deltas, for its real-time read.
CREATE INDEX job_counter_deltas_job_id_idx ON @extschema@.job_counter_deltas (job_id);
-- Folded every few hundred milliseconds: its dead rows are vacuumed early.
ALTER TABLE @extschema@.job_counter_deltas SET (autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_cost_delay = 0);

-- Triggers ---------------------------------------------------------------------------------------

-- One C function for every change: what it counts comes from the trigger's argument ('objects'
-- or 'findings'). Statement-level triggers read the statement's transition tables. Logical
-- replication's apply worker fires only row-level triggers (with session_replication_role =
-- replica), so row-level triggers count there, one row at a time, and the statement-level ones
-- do nothing under that role. All are ENABLE ALWAYS: they fire under every role. They write
-- the delta rows directly (no SQL, no permission check; the TRUNCATE one runs its statement as
-- the owner of job_counter_deltas): writers need no right on it.
CREATE FUNCTION @extschema@.count_changes() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_count_changes';
CREATE FUNCTION @extschema@.count_truncate() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_count_truncate';
REVOKE ALL ON FUNCTION @extschema@.count_changes() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.count_truncate() FROM PUBLIC;

CREATE TRIGGER job_objects_count_inserts AFTER INSERT ON @extschema@.job_objects
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects');
CREATE TRIGGER job_objects_count_updates AFTER UPDATE ON @extschema@.job_objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects');
CREATE TRIGGER job_objects_count_deletes AFTER DELETE ON @extschema@.job_objects
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('objects');
CREATE TRIGGER job_objects_count_truncate AFTER TRUNCATE ON @extschema@.job_objects
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_truncate('objects');
CREATE TRIGGER job_objects_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.job_objects
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('session_replication_role'::text) OPERATOR(pg_catalog.=) 'replica'::text)
    EXECUTE FUNCTION @extschema@.count_changes('objects');

CREATE TRIGGER findings_count_inserts AFTER INSERT ON @extschema@.findings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings');
CREATE TRIGGER findings_count_updates AFTER UPDATE ON @extschema@.findings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings');
CREATE TRIGGER findings_count_deletes AFTER DELETE ON @extschema@.findings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_changes('findings');
CREATE TRIGGER findings_count_truncate AFTER TRUNCATE ON @extschema@.findings
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.count_truncate('findings');
CREATE TRIGGER findings_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.findings
    FOR EACH ROW
    WHEN (pg_catalog.current_setting('session_replication_role'::text) OPERATOR(pg_catalog.=) 'replica'::text)
    EXECUTE FUNCTION @extschema@.count_changes('findings');

ALTER TABLE @extschema@.job_objects ENABLE ALWAYS TRIGGER job_objects_count_inserts,
    ENABLE ALWAYS TRIGGER job_objects_count_updates, ENABLE ALWAYS TRIGGER job_objects_count_deletes,
    ENABLE ALWAYS TRIGGER job_objects_count_truncate, ENABLE ALWAYS TRIGGER job_objects_count_replicated;
ALTER TABLE @extschema@.findings ENABLE ALWAYS TRIGGER findings_count_inserts,
    ENABLE ALWAYS TRIGGER findings_count_updates, ENABLE ALWAYS TRIGGER findings_count_deletes,
    ENABLE ALWAYS TRIGGER findings_count_truncate, ENABLE ALWAYS TRIGGER findings_count_replicated;

-- The two definitions of a job's counts ---------------------------------------------------------

-- The newest updated_at of a job's objects, read from job_objects: for a job whose pending deltas
-- removed what may have been its newest object. In C, priced as cheap (the view calls it for
-- few jobs: priced as a subquery for every job it made large reads JIT-compiled), answering a
-- caller who may read job_progress_live, job_summary or job_objects (src/counter_triggers.cpp).
CREATE FUNCTION @extschema@.newest_object_update(job_id uuid) RETURNS timestamptz
    LANGUAGE c STABLE PARALLEL SAFE COST 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_newest_object_update';

-- From the counters: the folded row plus the job's pending deltas, in the statement's snapshot.
-- A filter on job_id reaches both (an index probe each).
CREATE VIEW @extschema@.job_progress_from_counters AS
SELECT s.job_id, s.bucket, s.prefix, s.execution_arn, s.created_at, s.updated_at,
       s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count,
       s.total_findings,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((s.succeeded_count OPERATOR(pg_catalog.+) s.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) s.total_objects::numeric
       END AS progress_percent,
       CASE WHEN s.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::timestamptz
            WHEN s.recheck THEN @extschema@.newest_object_update(s.job_id)
            ELSE GREATEST(s.folded_last_update, s.pending_last_update)
       END AS last_object_update
FROM (SELECT j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at,
             COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_objects, 0::bigint) AS total_objects,
             COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.queued_count, 0::bigint) AS queued_count,
             COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.processing_count, 0::bigint) AS processing_count,
             COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.succeeded_count, 0::bigint) AS succeeded_count,
             COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.failed_count, 0::bigint) AS failed_count,
             COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) COALESCE(d.total_findings, 0::bigint) AS total_findings,
             c.last_object_update AS folded_last_update,
             d.last_object_update AS pending_last_update,
             COALESCE(d.recheck, false) AS recheck
      FROM @extschema@.jobs j
      LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) j.job_id
      LEFT JOIN (SELECT x.job_id,
                        pg_catalog.sum(x.total_objects) AS total_objects,
                        pg_catalog.sum(x.queued_count) AS queued_count,
                        pg_catalog.sum(x.processing_count) AS processing_count,
                        pg_catalog.sum(x.succeeded_count) AS succeeded_count,
                        pg_catalog.sum(x.failed_count) AS failed_count,
                        pg_catalog.sum(x.total_findings) AS total_findings,
                        pg_catalog.max(x.last_object_update) AS last_object_update,
                        pg_catalog.bool_or(x.last_object_update_recheck) AS recheck
                 FROM @extschema@.job_counter_deltas x
                 GROUP BY x.job_id) d ON d.job_id OPERATOR(pg_catalog.=) j.job_id) s;

-- From the base tables: 1.0's definition, what reads aggregate when counter maintenance is off,
-- and what verify_job_counters() compares with.
CREATE VIEW @extschema@.job_progress_from_tables AS
SELECT j.job_id,
       j.bucket,
       j.prefix,
       j.execution_arn,
       j.created_at,
       j.updated_at,
       COALESCE(o.total_objects, 0::bigint)    AS total_objects,
       COALESCE(o.queued_count, 0::bigint)     AS queued_count,
       COALESCE(o.processing_count, 0::bigint) AS processing_count,
       COALESCE(o.succeeded_count, 0::bigint)  AS succeeded_count,
       COALESCE(o.failed_count, 0::bigint)     AS failed_count,
       COALESCE(f.total_findings, 0::bigint)   AS total_findings,
       CASE WHEN COALESCE(o.total_objects, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint THEN 0.0::numeric
            ELSE ((o.succeeded_count OPERATOR(pg_catalog.+) o.failed_count)::numeric
                  OPERATOR(pg_catalog.*) 100.0::numeric)
                 OPERATOR(pg_catalog./) o.total_objects::numeric
       END AS progress_percent,
       o.last_object_update
FROM @extschema@.jobs j
LEFT JOIN (SELECT jo.job_id,
                  pg_catalog.count(*) AS total_objects,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::text) AS queued_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::text) AS processing_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::text) AS succeeded_count,
                  pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::text) AS failed_count,
                  pg_catalog.max(jo.updated_at) AS last_object_update
           FROM @extschema@.job_objects jo
           GROUP BY jo.job_id) o ON o.job_id OPERATOR(pg_catalog.=) j.job_id
LEFT JOIN (SELECT fi.job_id, pg_catalog.count(*) AS total_findings
           FROM @extschema@.findings fi
           GROUP BY fi.job_id) f ON f.job_id OPERATOR(pg_catalog.=) j.job_id;

-- Counter maintenance on or off ------------------------------------------------------------------

-- Whether the counters are maintained: the state of the insert trigger on job_objects.
CREATE FUNCTION @extschema@.counter_maintenance() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT t.tgenabled OPERATOR(pg_catalog.<>) 'D'::"char"
        FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid OPERATOR(pg_catalog.=) '@extschema@.job_objects'::pg_catalog.regclass
          AND t.tgname OPERATOR(pg_catalog.=) 'job_objects_count_inserts'::name;
    END;

-- True when the counters are maintained; else error 55000 (for verify and repair).
CREATE FUNCTION @extschema@.require_counter_maintenance() RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    IF NOT @extschema@.counter_maintenance() THEN
        RAISE EXCEPTION 'counter maintenance is off: there are no counters'
            USING ERRCODE = '55000', HINT = 'Turn it on with set_counter_maintenance(true), which rebuilds every counter.';
    END IF;
    RETURN true;
END
$body$;

-- Rebuilds the counters of one job (or of all when job_id is null) from the base tables, in one
-- statement and so in one snapshot: the deltas that snapshot sees are deleted and the counters
-- set to the counts it sees; deltas committed after it stay pending, so no change made while it
-- runs is lost or counted twice. Writers are never blocked; folds wait (the lock).
CREATE FUNCTION @extschema@.repair_job_counters(job_id uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    rebuilt bigint;
BEGIN
    PERFORM @extschema@.require_counter_maintenance();
    -- The tables it reads first, then the counters: it never holds the counters while it waits
    -- for a lock someone holds on a table (DDL, a TRUNCATE).
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects, @extschema@.findings IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters IN EXCLUSIVE MODE;
    WITH gone AS (
        DELETE FROM @extschema@.job_counter_deltas d
        WHERE repair_job_counters.job_id IS NULL OR d.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        RETURNING d.job_id),
    objects AS (
        SELECT jo.job_id,
               pg_catalog.count(*) AS total_objects,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::text) AS queued_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::text) AS processing_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::text) AS succeeded_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::text) AS failed_count,
               pg_catalog.max(jo.updated_at) AS last_object_update
        FROM @extschema@.job_objects jo
        WHERE repair_job_counters.job_id IS NULL OR jo.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        GROUP BY jo.job_id),
    found AS (
        SELECT fi.job_id, pg_catalog.count(*) AS total_findings
        FROM @extschema@.findings fi
        WHERE repair_job_counters.job_id IS NULL OR fi.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id
        GROUP BY fi.job_id),
    counted AS (
        SELECT COALESCE(o.job_id, f.job_id) AS job_id,
               COALESCE(o.total_objects, 0::bigint) AS total_objects,
               COALESCE(o.queued_count, 0::bigint) AS queued_count,
               COALESCE(o.processing_count, 0::bigint) AS processing_count,
               COALESCE(o.succeeded_count, 0::bigint) AS succeeded_count,
               COALESCE(o.failed_count, 0::bigint) AS failed_count,
               COALESCE(f.total_findings, 0::bigint) AS total_findings,
               o.last_object_update
        FROM objects o FULL JOIN found f ON f.job_id OPERATOR(pg_catalog.=) o.job_id),
    stale AS (
        DELETE FROM @extschema@.job_counters c
        WHERE (repair_job_counters.job_id IS NULL OR c.job_id OPERATOR(pg_catalog.=) repair_job_counters.job_id)
          AND NOT EXISTS (SELECT FROM counted n WHERE n.job_id OPERATOR(pg_catalog.=) c.job_id)
        RETURNING c.job_id),
    put AS (
        INSERT INTO @extschema@.job_counters AS c
        SELECT n.job_id, n.total_objects, n.queued_count, n.processing_count, n.succeeded_count,
               n.failed_count, n.total_findings, n.last_object_update
        FROM counted n
        ON CONFLICT ON CONSTRAINT job_counters_pkey DO UPDATE
        SET total_objects = excluded.total_objects, queued_count = excluded.queued_count,
            processing_count = excluded.processing_count, succeeded_count = excluded.succeeded_count,
            failed_count = excluded.failed_count, total_findings = excluded.total_findings,
            last_object_update = excluded.last_object_update
        RETURNING c.job_id)
    -- (gone runs although nothing reads it: a data-modifying WITH always runs to completion.)
    SELECT (SELECT pg_catalog.count(*) FROM put) OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM stale)
    INTO rebuilt;
    RETURN rebuilt;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.repair_job_counters(uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.repair_job_counters(uuid) IS
    'rebuild the counters of one job (or all) from the base tables, exactly, while writers keep writing';

-- Moves every pending delta this snapshot sees into job_counters, in one statement: a reader
-- sees the deltas or their sum, never both or neither. A job's newest updated_at is recomputed
-- where a folded delta asks for it. The row of a job that no longer exists is removed once its
-- counts are zero (no row means zeros). Readers and writers never wait for it; it waits for
-- another fold or a repair.
CREATE FUNCTION @extschema@.fold_job_counters() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    folded bigint;
BEGIN
    -- As in repair_job_counters(): the tables it reads first, then the counters.
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters IN EXCLUSIVE MODE;
    WITH moved AS (
        DELETE FROM @extschema@.job_counter_deltas d RETURNING d.*),
    summed AS (
        SELECT m.job_id,
               pg_catalog.sum(m.total_objects) AS total_objects,
               pg_catalog.sum(m.queued_count) AS queued_count,
               pg_catalog.sum(m.processing_count) AS processing_count,
               pg_catalog.sum(m.succeeded_count) AS succeeded_count,
               pg_catalog.sum(m.failed_count) AS failed_count,
               pg_catalog.sum(m.total_findings) AS total_findings,
               pg_catalog.max(m.last_object_update) AS last_object_update,
               pg_catalog.bool_or(m.last_object_update_recheck) AS recheck,
               pg_catalog.count(*) AS deltas
        FROM moved m GROUP BY m.job_id),
    added AS (
        SELECT s.job_id,
               COALESCE(c.total_objects, 0::bigint) OPERATOR(pg_catalog.+) s.total_objects AS total_objects,
               COALESCE(c.queued_count, 0::bigint) OPERATOR(pg_catalog.+) s.queued_count AS queued_count,
               COALESCE(c.processing_count, 0::bigint) OPERATOR(pg_catalog.+) s.processing_count AS processing_count,
               COALESCE(c.succeeded_count, 0::bigint) OPERATOR(pg_catalog.+) s.succeeded_count AS succeeded_count,
               COALESCE(c.failed_count, 0::bigint) OPERATOR(pg_catalog.+) s.failed_count AS failed_count,
               COALESCE(c.total_findings, 0::bigint) OPERATOR(pg_catalog.+) s.total_findings AS total_findings,
               CASE WHEN s.recheck THEN @extschema@.newest_object_update(s.job_id)
                    ELSE GREATEST(c.last_object_update, s.last_object_update)
               END AS last_object_update,
               NOT EXISTS (SELECT FROM @extschema@.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) s.job_id) AS job_gone
        FROM summed s LEFT JOIN @extschema@.job_counters c ON c.job_id OPERATOR(pg_catalog.=) s.job_id),
    put AS (
        INSERT INTO @extschema@.job_counters AS c
        SELECT a.job_id, a.total_objects, a.queued_count, a.processing_count, a.succeeded_count,
               a.failed_count, a.total_findings,
               CASE WHEN a.total_objects OPERATOR(pg_catalog.=) 0::bigint THEN NULL::timestamptz
                    ELSE a.last_object_update END
        FROM added a
        WHERE NOT (a.job_gone AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint
                   AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
        ON CONFLICT ON CONSTRAINT job_counters_pkey DO UPDATE
        SET total_objects = excluded.total_objects, queued_count = excluded.queued_count,
            processing_count = excluded.processing_count, succeeded_count = excluded.succeeded_count,
            failed_count = excluded.failed_count, total_findings = excluded.total_findings,
            last_object_update = excluded.last_object_update),
    dropped AS (
        DELETE FROM @extschema@.job_counters c USING added a
        WHERE c.job_id OPERATOR(pg_catalog.=) a.job_id AND a.job_gone
          AND a.total_objects OPERATOR(pg_catalog.=) 0::bigint AND a.total_findings OPERATOR(pg_catalog.=) 0::bigint)
    -- (put and dropped run although nothing reads them: a data-modifying WITH always runs to
    -- completion; they touch disjoint rows.)
    SELECT COALESCE(pg_catalog.sum(s.deltas), 0::numeric)::bigint INTO folded FROM summed s;
    RETURN folded;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.fold_job_counters() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.fold_job_counters() IS
    'move the pending counter deltas into job_counters; returns how many were folded';

-- The jobs whose counts, as reads return them, differ from a recount of the base tables in the
-- same snapshot: one row per job and column. No row: exact.
CREATE FUNCTION @extschema@.verify_job_counters(job_id uuid DEFAULT NULL)
    RETURNS TABLE (job_id uuid, item text, maintained text, counted text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT COALESCE(m.job_id, t.job_id), v.item, v.maintained, v.counted
        FROM (SELECT * FROM @extschema@.job_progress_from_counters c
              WHERE verify_job_counters.job_id IS NULL OR c.job_id OPERATOR(pg_catalog.=) verify_job_counters.job_id) m
        FULL JOIN (SELECT * FROM @extschema@.job_progress_from_tables b
                   WHERE verify_job_counters.job_id IS NULL OR b.job_id OPERATOR(pg_catalog.=) verify_job_counters.job_id) t
            ON t.job_id OPERATOR(pg_catalog.=) m.job_id
        CROSS JOIN LATERAL (VALUES
            ('total_objects'::text, m.total_objects::text, t.total_objects::text),
            ('queued_count'::text, m.queued_count::text, t.queued_count::text),
            ('processing_count'::text, m.processing_count::text, t.processing_count::text),
            ('succeeded_count'::text, m.succeeded_count::text, t.succeeded_count::text),
            ('failed_count'::text, m.failed_count::text, t.failed_count::text),
            ('total_findings'::text, m.total_findings::text, t.total_findings::text),
            ('last_object_update'::text, m.last_object_update::text, t.last_object_update::text))
            AS v (item, maintained, counted)
        -- (evaluated once, before any row: refuses when there are no counters to verify)
        WHERE @extschema@.require_counter_maintenance()
          AND v.maintained IS DISTINCT FROM v.counted
        ORDER BY 1, 2;
    END;
REVOKE ALL ON FUNCTION @extschema@.verify_job_counters(uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.verify_job_counters(uuid) IS
    'the jobs (one or all) whose maintained counts differ from a recount of the base tables; no row: exact';

-- Makes job_progress_live read the counters (true) or aggregate the base tables (false): its
-- definition becomes that of job_progress_from_counters or job_progress_from_tables.
CREATE FUNCTION @extschema@.define_job_progress_live(from_counters boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s.job_progress_live AS %s',
        '@extschema@',
        pg_catalog.pg_get_viewdef(CASE WHEN from_counters THEN '@extschema@.job_progress_from_counters'::pg_catalog.regclass
                                       ELSE '@extschema@.job_progress_from_tables'::pg_catalog.regclass END));
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.define_job_progress_live(boolean) FROM PUBLIC;

-- Turns counter maintenance off (the triggers are disabled, the counters emptied, reads aggregate
-- the base tables as in 1.0) or on (the triggers are enabled, reads use the counters, and every
-- counter is rebuilt: writers wait for that recount, which runs in this transaction).
CREATE FUNCTION @extschema@.set_counter_maintenance(enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    how text := CASE WHEN enabled THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END;
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_counter_maintenance() takes true or false, not null' USING ERRCODE = '22004';
    END IF;
    -- The recount must see every change made before the triggers were enabled: a snapshot older
    -- than the trigger locks (REPEATABLE READ, SERIALIZABLE) would miss the writes committed
    -- while it waited for them, which no delta records.
    IF enabled AND pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'set_counter_maintenance(true) must run in a READ COMMITTED transaction'
            USING ERRCODE = '25001', HINT = 'Its recount needs a snapshot taken after the triggers are enabled.';
    END IF;
    LOCK TABLE @extschema@.job_counters IN EXCLUSIVE MODE;
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.job_objects %2$s TRIGGER job_objects_count_inserts, '
        '%2$s TRIGGER job_objects_count_updates, %2$s TRIGGER job_objects_count_deletes, '
        '%2$s TRIGGER job_objects_count_truncate, %2$s TRIGGER job_objects_count_replicated', '@extschema@', how);
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.findings %2$s TRIGGER findings_count_inserts, '
        '%2$s TRIGGER findings_count_updates, %2$s TRIGGER findings_count_deletes, '
        '%2$s TRIGGER findings_count_truncate, %2$s TRIGGER findings_count_replicated', '@extschema@', how);
    PERFORM @extschema@.define_job_progress_live(enabled);
    IF enabled THEN
        PERFORM @extschema@.repair_job_counters(NULL::uuid);
    ELSE
        DELETE FROM @extschema@.job_counter_deltas;
        DELETE FROM @extschema@.job_counters;
    END IF;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.set_counter_maintenance(boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.set_counter_maintenance(boolean) IS
    'maintain the per-job counters (true: rebuilds them; writers wait for the recount) or not (false: reads aggregate the base tables)';

-- The recount below must see every row written before the triggers above existed: in a
-- REPEATABLE READ or SERIALIZABLE transaction its snapshot would be older than the triggers'
-- locks, and rows committed while the update waited for them would be counted nowhere.
DO $isolation$
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'ALTER EXTENSION s3scan_jobs UPDATE TO ''1.1'' must run in a READ COMMITTED transaction'
            USING ERRCODE = '25001',
                  HINT = 'SET default_transaction_isolation = ''read committed'' in the session first.';
    END IF;
END
$isolation$;

-- job_progress_live now reads the counters; build them from the rows already there (the
-- triggers above exist and this transaction holds their tables' locks until it commits, so
-- writers wait for this recount and no change escapes it).
SELECT @extschema@.define_job_progress_live(true);
SELECT @extschema@.repair_job_counters(NULL::uuid);

-- In 1.0, job_status(id, true) read the tables with the caller's rights; since 1.1 it reads
-- job_progress_live with the caller's rights on that view (the counters are granted to no
-- client). So every grantee that could read all three tables, and so call it, may read the view.
DO $grant$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)::text) END
        FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
        WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@.jobs'::pg_catalog.regclass,
                  '@extschema@.job_objects'::pg_catalog.regclass, '@extschema@.findings'::pg_catalog.regclass]::pg_catalog.oid[])
          AND a.privilege_type OPERATOR(pg_catalog.=) 'SELECT'::text
          AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        GROUP BY a.grantee
        HAVING pg_catalog.count(DISTINCT c.oid) OPERATOR(pg_catalog.=) 3::bigint
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s.job_progress_live TO %s', '@extschema@', grantee);
    END LOOP;
END
$grant$;

-- The counters are not dumped: restoring the base tables fires the triggers, which count the
-- restored rows.
