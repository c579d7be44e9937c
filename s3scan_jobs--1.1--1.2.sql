-- s3scan_jobs 1.1 -> 1.2: a cheaper write path for the per-job counters.
--
-- A fresh CREATE EXTENSION s3scan_jobs runs the 1.0 script, the 1.0 -> 1.1 script and then this
-- one, so a fresh 1.2 and an updated 1.0 or 1.1 have the same objects. Nothing here changes what
-- the counters count or how they are read: no recount is needed, and the update holds the
-- counted tables' locks only for the trigger and index changes below (milliseconds).
--
-- What changes, each measured side by side with test/bench/write_parts.sh (docs/performance.md):
-- - job_counter_deltas loses its btree on job_id. Every counted statement inserted one entry
--   into it, all writers of a job into the same leaf page: in server CPU per UPDATE about as much
--   again as the delta row itself. A job's real-time read now scans every pending delta, which
--   the worker's fold keeps to a few hundred rows (docs/design.md "The per-job counters": what that costs
--   when nothing folds). The triggers still maintain any index a DBA adds to the table.
-- - The row-level counter triggers for logical replication fire by ENABLE REPLICA instead of a
--   WHEN clause on session_replication_role: the same rows fire them, but a statement no longer
--   compiles and evaluates that clause for every row it writes.
-- - Folds, repairs and the maintenance switch take turns by an EXCLUSIVE lock on a new, empty
--   table, job_counters_lock, instead of on job_counters itself. EXCLUSIVE conflicts with the
--   SHARE UPDATE EXCLUSIVE lock that VACUUM and ANALYZE take: while autovacuum worked on
--   job_counters (100K rows, all rewritten by a recount), every fold of the worker was skipped and
--   the deltas piled up (most likely what a full-size benchmark saw: 7,241 pending rows at 5,000
--   updates/s).
--   Nobody vacuums the empty table.
-- - job_counter_deltas has vacuum_truncate off: a vacuum no longer takes ACCESS EXCLUSIVE on it
--   to give back its emptied last pages, which writers' inserts would wait for (the worker's own
--   vacuum already skipped that since 1.1).
--
-- Same rules as the 1.0 script (CONTRIBUTING.md): every operator OPERATOR(pg_catalog.x), every
-- function pg_catalog.f(), explicit casts, the extension's objects qualified, search_path pinned.

\echo Use "ALTER EXTENSION s3scan_jobs UPDATE TO '1.2'" to load this file. \quit

-- The deltas table ------------------------------------------------------------------------------

DROP INDEX @extschema@.job_counter_deltas_job_id_idx;
ALTER TABLE @extschema@.job_counter_deltas SET (vacuum_truncate = false);

-- The replicated rows' triggers -----------------------------------------------------------------

-- Logical replication's apply worker fires only row-level triggers, with session_replication_role
-- = replica: these count there, one row at a time (count_changes() does nothing at row level
-- otherwise). ENABLE REPLICA makes them fire in that role only. They are enabled, as the other
-- counter triggers are, when the counters are maintained, and disabled otherwise.
DO $replicated$
DECLARE
    how text := CASE WHEN @extschema@.counter_maintenance() THEN 'ENABLE REPLICA' ELSE 'DISABLE' END;
BEGIN
    DROP TRIGGER job_objects_count_replicated ON @extschema@.job_objects;
    DROP TRIGGER findings_count_replicated ON @extschema@.findings;
    CREATE TRIGGER job_objects_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.job_objects
        FOR EACH ROW EXECUTE FUNCTION @extschema@.count_changes('objects');
    CREATE TRIGGER findings_count_replicated AFTER INSERT OR UPDATE OR DELETE ON @extschema@.findings
        FOR EACH ROW EXECUTE FUNCTION @extschema@.count_changes('findings');
    EXECUTE pg_catalog.format('ALTER TABLE %s.job_objects %s TRIGGER job_objects_count_replicated', '@extschema@', how);
    EXECUTE pg_catalog.format('ALTER TABLE %s.findings %s TRIGGER findings_count_replicated', '@extschema@', how);
END
$replicated$;

-- Folds and repairs take turns ------------------------------------------------------------------

-- An empty table whose EXCLUSIVE lock is the turn of fold_job_counters(), repair_job_counters()
-- and set_counter_maintenance() (each takes it after the tables it reads). Readers and writers
-- never lock it; no client is granted it, so no client can hold a fold up with it.
CREATE TABLE @extschema@.job_counters_lock ();
ALTER TABLE @extschema@.job_counters_lock SET (autovacuum_enabled = false);
COMMENT ON TABLE @extschema@.job_counters_lock IS
    'empty: its EXCLUSIVE lock makes folds and repairs of the counters take turns';

CREATE OR REPLACE FUNCTION @extschema@.repair_job_counters(job_id uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    rebuilt bigint;
BEGIN
    PERFORM @extschema@.require_counter_maintenance();
    -- The tables it reads first, then the folds' and repairs' turn: it never holds the turn while
    -- it waits for a lock someone holds on a table (DDL, a TRUNCATE).
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects, @extschema@.findings IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
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

CREATE OR REPLACE FUNCTION @extschema@.fold_job_counters() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    folded bigint;
BEGIN
    -- As in repair_job_counters(): the tables it reads first, then the turn.
    LOCK TABLE @extschema@.jobs, @extschema@.job_objects IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
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

-- Turning maintenance on enables the statement-level triggers always and the row-level ones
-- for replication; the turn is job_counters_lock's; otherwise as in 1.1.
CREATE OR REPLACE FUNCTION @extschema@.set_counter_maintenance(enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    how text := CASE WHEN enabled THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END;
    how_replicated text := CASE WHEN enabled THEN 'ENABLE REPLICA' ELSE 'DISABLE' END;
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
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.job_objects %2$s TRIGGER job_objects_count_inserts, '
        '%2$s TRIGGER job_objects_count_updates, %2$s TRIGGER job_objects_count_deletes, '
        '%2$s TRIGGER job_objects_count_truncate, %3$s TRIGGER job_objects_count_replicated',
        '@extschema@', how, how_replicated);
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.findings %2$s TRIGGER findings_count_inserts, '
        '%2$s TRIGGER findings_count_updates, %2$s TRIGGER findings_count_deletes, '
        '%2$s TRIGGER findings_count_truncate, %3$s TRIGGER findings_count_replicated',
        '@extschema@', how, how_replicated);
    PERFORM @extschema@.define_job_progress_live(enabled);
    IF enabled THEN
        PERFORM @extschema@.repair_job_counters(NULL::uuid);
    ELSE
        DELETE FROM @extschema@.job_counter_deltas;
        DELETE FROM @extschema@.job_counters;
    END IF;
END
$body$;
