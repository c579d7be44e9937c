-- s3scan_jobs 1.1 -> 1.2: a cheaper write path for the per-job counters.
--
-- A fresh CREATE EXTENSION s3scan_jobs runs the 1.0 script, the 1.0 -> 1.1 script and then this
-- one, so a fresh 1.2 and an updated 1.0 or 1.1 have the same objects. Nothing here changes what
-- the counters count or how they are read: no recount is needed, and the update holds the
-- counted tables' locks only for the trigger and index changes below (milliseconds).
--
-- What changes, each measured side by side with test/bench/write_parts.sh (README "Performance"):
-- - job_counter_deltas loses its btree on job_id. Every counted statement inserted one entry
--   into it, all writers of a job into the same leaf page; it cost more of the per-object
--   UPDATE's throughput (about 5 points of the 17 the counters cost) than the delta row itself.
--   A job's real-time read now scans every pending delta, which the worker's fold keeps to a few
--   hundred rows (README "Per-job counters": what that costs when nothing folds).
-- - The row-level counter triggers for logical replication fire by ENABLE REPLICA instead of a
--   WHEN clause on session_replication_role: the same rows fire them, but a statement no longer
--   compiles and evaluates that clause for every row it writes.
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

-- Turning maintenance on enables the statement-level triggers always and the row-level ones
-- for replication; otherwise as in 1.1.
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
    LOCK TABLE @extschema@.job_counters IN EXCLUSIVE MODE;
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
