-- s3scan_jobs 1.2 -> 1.3: a transaction's counter deltas become rows when it commits.
--
-- A fresh CREATE EXTENSION s3scan_jobs runs the 1.0 script and every update script after it, so
-- a fresh 1.3 and an updated 1.0, 1.1 or 1.2 have the same objects. Nothing here changes what the
-- counters count: no recount is needed, and the update holds the counted tables' locks only to
-- recreate their triggers (milliseconds).
--
-- Until 1.2 every counted statement appended one delta row per job it changed. The clients
-- write findings as 100 single-row INSERTs in one transaction: 100 delta rows for one job. Since
-- 1.3 the counter triggers (argument 'per_transaction') sum a transaction's changes in backend
-- memory and write one row per job when it commits or prepares (src/transaction_deltas.cpp).
-- The rows still commit atomically with the changes they count. What keeps the counters exact:
-- - Reads in the same transaction add its pending deltas, pending_counter_deltas(), to the
--   table's: job_progress_from_counters (and so job_progress_live, job_summary, job_status,
--   verify_job_counters and the refresh) sums both. A snapshot sees the deltas of the commands it
--   sees, as it would rows.
-- - A subtransaction's deltas are dropped when it aborts.
-- - What rewrites the counters in a transaction with pending deltas (TRUNCATE's negation,
--   repair_job_counters(), set_counter_maintenance(false)) writes their negation as rows, which
--   the pending deltas cancel at commit (and which a rolled-back savepoint takes away with the
--   rewrite).
-- - A transaction with more than 8,192 pending entries writes them as rows, one per statement
--   and job as before (written inside a subtransaction, they are kept until it ends: if it
--   aborts, its rows go and they are pending again).
--
-- Same rules as the 1.0 script (CONTRIBUTING.md): every operator OPERATOR(pg_catalog.x), every
-- function pg_catalog.f(), explicit casts, the extension's objects qualified, search_path pinned.

\echo Use "ALTER EXTENSION s3scan_jobs UPDATE TO '1.3'" to load this file. \quit

-- The pending deltas ----------------------------------------------------------------------------

-- This transaction's counter deltas that are not rows yet and that the statement's snapshot
-- sees, shaped as job_counter_deltas rows (one per statement and job). Empty for any other
-- session. PARALLEL RESTRICTED: a parallel worker does not have them.
CREATE FUNCTION @extschema@.pending_counter_deltas()
    RETURNS TABLE (job_id uuid, total_objects integer, queued_count integer, processing_count integer,
                   succeeded_count integer, failed_count integer, total_findings integer,
                   last_object_update timestamptz, last_object_update_recheck boolean)
    LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_pending_counter_deltas';
COMMENT ON FUNCTION @extschema@.pending_counter_deltas() IS
    'this transaction''s counter deltas that become job_counter_deltas rows when it commits';

-- Writes the negation of this transaction's pending deltas (of one job, or all) as rows: called
-- by what has just rewritten those counters from the base tables, whose recount already holds
-- them. One row per pending entry, so each fits.
CREATE FUNCTION @extschema@.cancel_pending_counter_deltas(job_id uuid) RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        INSERT INTO @extschema@.job_counter_deltas (job_id, total_objects, queued_count, processing_count,
                                                   succeeded_count, failed_count, total_findings,
                                                   last_object_update, last_object_update_recheck)
        SELECT p.job_id, OPERATOR(pg_catalog.-) p.total_objects, OPERATOR(pg_catalog.-) p.queued_count,
               OPERATOR(pg_catalog.-) p.processing_count, OPERATOR(pg_catalog.-) p.succeeded_count,
               OPERATOR(pg_catalog.-) p.failed_count, OPERATOR(pg_catalog.-) p.total_findings,
               NULL::timestamptz, false
        FROM @extschema@.pending_counter_deltas() p
        WHERE cancel_pending_counter_deltas.job_id IS NULL
           OR p.job_id OPERATOR(pg_catalog.=) cancel_pending_counter_deltas.job_id;
    END;
REVOKE ALL ON FUNCTION @extschema@.cancel_pending_counter_deltas(uuid) FROM PUBLIC;

-- The counter triggers, recreated with 'per_transaction' --------------------------------------

-- Each is enabled as before: statement-level ENABLE ALWAYS and row-level (logical replication's
-- apply) ENABLE REPLICA while the counters are maintained, all disabled otherwise.
DO $triggers$
DECLARE
    on_off text := CASE WHEN @extschema@.counter_maintenance() THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END;
    replicated text := CASE WHEN @extschema@.counter_maintenance() THEN 'ENABLE REPLICA' ELSE 'DISABLE' END;
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('job_objects', 'job_objects', 'objects'), ('findings', 'findings', 'findings'))
                           AS v (tab, prefix, counted) LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %2$I ON %1$s.%3$I; DROP TRIGGER %4$I ON %1$s.%3$I; '
            'DROP TRIGGER %5$I ON %1$s.%3$I; DROP TRIGGER %6$I ON %1$s.%3$I; DROP TRIGGER %7$I ON %1$s.%3$I',
            '@extschema@', t.prefix OPERATOR(pg_catalog.||) '_count_inserts', t.tab,
            t.prefix OPERATOR(pg_catalog.||) '_count_updates', t.prefix OPERATOR(pg_catalog.||) '_count_deletes',
            t.prefix OPERATOR(pg_catalog.||) '_count_truncate', t.prefix OPERATOR(pg_catalog.||) '_count_replicated');
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER %3$I AFTER INSERT ON %1$s.%2$I REFERENCING NEW TABLE AS new_rows '
            '    FOR EACH STATEMENT EXECUTE FUNCTION %1$s.count_changes(%8$L, ''per_transaction''); '
            'CREATE TRIGGER %4$I AFTER UPDATE ON %1$s.%2$I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
            '    FOR EACH STATEMENT EXECUTE FUNCTION %1$s.count_changes(%8$L, ''per_transaction''); '
            'CREATE TRIGGER %5$I AFTER DELETE ON %1$s.%2$I REFERENCING OLD TABLE AS old_rows '
            '    FOR EACH STATEMENT EXECUTE FUNCTION %1$s.count_changes(%8$L, ''per_transaction''); '
            'CREATE TRIGGER %6$I AFTER TRUNCATE ON %1$s.%2$I '
            '    FOR EACH STATEMENT EXECUTE FUNCTION %1$s.count_truncate(%8$L, ''per_transaction''); '
            'CREATE TRIGGER %7$I AFTER INSERT OR UPDATE OR DELETE ON %1$s.%2$I '
            '    FOR EACH ROW EXECUTE FUNCTION %1$s.count_changes(%8$L, ''per_transaction''); '
            'ALTER TABLE %1$s.%2$I %9$s TRIGGER %3$I, %9$s TRIGGER %4$I, %9$s TRIGGER %5$I, %9$s TRIGGER %6$I, '
            '    %10$s TRIGGER %7$I',
            '@extschema@', t.tab, t.prefix OPERATOR(pg_catalog.||) '_count_inserts',
            t.prefix OPERATOR(pg_catalog.||) '_count_updates', t.prefix OPERATOR(pg_catalog.||) '_count_deletes',
            t.prefix OPERATOR(pg_catalog.||) '_count_truncate', t.prefix OPERATOR(pg_catalog.||) '_count_replicated',
            t.counted, on_off, replicated);
    END LOOP;
END
$triggers$;

-- Reads: the table's deltas and this transaction's pending ones ------------------------------

CREATE OR REPLACE VIEW @extschema@.job_progress_from_counters AS
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
                 FROM (SELECT r.job_id, r.total_objects, r.queued_count, r.processing_count, r.succeeded_count,
                              r.failed_count, r.total_findings, r.last_object_update, r.last_object_update_recheck
                       FROM @extschema@.job_counter_deltas r
                       UNION ALL
                       SELECT p.job_id, p.total_objects, p.queued_count, p.processing_count, p.succeeded_count,
                              p.failed_count, p.total_findings, p.last_object_update, p.last_object_update_recheck
                       FROM @extschema@.pending_counter_deltas() p) x
                 GROUP BY x.job_id) d ON d.job_id OPERATOR(pg_catalog.=) j.job_id) s;

-- job_progress_live is a copy of that definition while the counters are maintained.
DO $live$
BEGIN
    IF @extschema@.counter_maintenance() THEN
        PERFORM @extschema@.define_job_progress_live(true);
    END IF;
END
$live$;

-- Rewrites of the counters cancel this transaction's pending deltas ------------------------------

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
    -- This transaction's own pending deltas are in that recount already; they become rows at
    -- commit, where this cancels them.
    PERFORM @extschema@.cancel_pending_counter_deltas(repair_job_counters.job_id);
    RETURN rebuilt;
END
$body$;


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
        PERFORM @extschema@.cancel_pending_counter_deltas(NULL::uuid);
    END IF;
END
$body$;

