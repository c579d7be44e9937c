-- s3scan_jobs 1.3 -> 1.4: counters that no role can ride and no maintenance command silently
-- breaks.
--
-- A fresh CREATE EXTENSION s3scan_jobs runs the 1.0 script and every update script after it, so
-- a fresh 1.4 and an updated 1.0 to 1.3 have the same objects. Nothing here changes what the
-- counters count: no recount is needed.
--
-- What changes (README "Security" and "What the extension refuses"):
-- - The SQL that TRUNCATE's counter trigger runs as the tables' owner pins search_path and
--   qualifies its types (the library: a role with TRUNCATE could have its pg_temp type and cast
--   run as the owner); newest_object_update() answers only readers of job_progress_live (as the
--   owner) or of job_objects (with their own rights, row-level security included). job_status()
--   honours the caller's row-level security on jobs (the library).
-- - require_counter_maintenance() and touch_updated_at() are no longer executable by PUBLIC.
-- - repair_job_counters() refuses to run inside a statement that reads or changes job_objects or
--   findings (require_counted_tables_idle()): from a writable WITH it counted that statement's
--   rows twice.
-- - Two event triggers (ENABLE ALWAYS): ALTER TABLE may not change the columns or names of the
--   internal tables; jobs, job_objects and findings may take no part in inheritance or
--   partitioning; and when the counter triggers are changed by anything but
--   set_counter_maintenance() (ALTER TABLE ... DISABLE/ENABLE TRIGGER ALL, as pg_restore
--   --disable-triggers emits), reads go back to counting the base tables until
--   set_counter_maintenance(true). counter_maintenance() says whether reads use the counters and
--   the triggers are as that left them, not only whether one trigger is enabled.
-- - set_counter_maintenance() locks the tables before the folds' turn, as repairs and folds do.
-- - job_counter_deltas has REPLICA IDENTITY FULL: under a publication FOR ALL TABLES the folds'
--   deletes were refused (no replica identity), and every fold and refresh failed.
--
-- Same rules as the 1.0 script (CONTRIBUTING.md): every operator OPERATOR(pg_catalog.x), every
-- function pg_catalog.f(), types qualified where they are not keywords, explicit casts, the
-- extension's objects qualified, search_path pinned.

\echo Use "ALTER EXTENSION s3scan_jobs UPDATE TO '1.4'" to load this file. \quit

-- The library ------------------------------------------------------------------------------------

-- A server that preloads the library (shared_preload_libraries) keeps the one it started with,
-- and a session that has loaded it keeps it too: installing 1.4's files does not replace it until
-- a restart (or a new session), and this script's C functions would not be found. Say so before
-- anything changes.
DO $library$
BEGIN
    CREATE FUNCTION pg_temp.s3scan_jobs_library_probe() RETURNS event_trigger
        LANGUAGE c AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_end';
    DROP FUNCTION pg_temp.s3scan_jobs_library_probe();
EXCEPTION WHEN undefined_function THEN
    RAISE EXCEPTION 'the s3scan_jobs library loaded in this server is older than version 1.4'
        USING ERRCODE = '55000', DETAIL = SQLERRM,
              HINT = CASE WHEN pg_catalog.strpos(pg_catalog.current_setting('shared_preload_libraries'),
                                                 's3scan_jobs') OPERATOR(pg_catalog.>) 0
                          THEN 'The server preloads it (shared_preload_libraries): restart the server after '
                               'installing s3scan_jobs 1.4, then run ALTER EXTENSION s3scan_jobs UPDATE again.'
                          ELSE 'This session loaded it before s3scan_jobs 1.4 was installed: run ALTER EXTENSION '
                               's3scan_jobs UPDATE in a new session.' END;
END
$library$;

-- Privileges ---------------------------------------------------------------------------------------

-- Only repair and verify (SECURITY DEFINER) call it.
REVOKE ALL ON FUNCTION @extschema@.require_counter_maintenance() FROM PUBLIC;
-- A trigger function: triggers fire it without an EXECUTE check.
REVOKE ALL ON FUNCTION @extschema@.touch_updated_at() FROM PUBLIC;

-- Publications ---------------------------------------------------------------------------------------

-- The folds delete every row they fold: a publication that publishes the table's deletes (FOR ALL
-- TABLES does) needs a replica identity. FULL logs the old row only under wal_level = logical.
ALTER TABLE @extschema@.job_counter_deltas REPLICA IDENTITY FULL;

-- Rebuilding the counters inside a statement that counts -------------------------------------------

-- Error 55006 when job_objects or findings is open in a statement of this session that has not
-- finished (a writable WITH around the call, a trigger on the table, a query over it): a recount
-- then would see that statement's changes, which its counter trigger adds again.
CREATE FUNCTION @extschema@.require_counted_tables_idle() RETURNS boolean
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's3scan_require_counted_tables_idle';
REVOKE ALL ON FUNCTION @extschema@.require_counted_tables_idle() FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.repair_job_counters(job_id uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    rebuilt bigint;
BEGIN
    PERFORM @extschema@.require_counter_maintenance();
    PERFORM @extschema@.require_counted_tables_idle();
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
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'queued'::pg_catalog.text) AS queued_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'processing'::pg_catalog.text) AS processing_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'succeeded'::pg_catalog.text) AS succeeded_count,
               pg_catalog.count(*) FILTER (WHERE jo.status OPERATOR(pg_catalog.=) 'failed'::pg_catalog.text) AS failed_count,
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
        INSERT INTO @extschema@.job_counters AS c (job_id, total_objects, queued_count, processing_count,
                                                   succeeded_count, failed_count, total_findings,
                                                   last_object_update)
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

-- Whether the counters are maintained: the truth, from the catalogs ------------------------------

-- Whether every counter trigger is as set_counter_maintenance(true) leaves it: statement-level
-- ENABLE ALWAYS ('A'), row-level ENABLE REPLICA ('R', logical replication's apply).
CREATE FUNCTION @extschema@.counter_triggers_as_maintained() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 10::bigint
        FROM (VALUES ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_inserts'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_updates'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_deletes'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_truncate'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.job_objects'::pg_catalog.regclass, 'job_objects_count_replicated'::pg_catalog.name, 'R'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_inserts'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_updates'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_deletes'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_truncate'::pg_catalog.name, 'A'::pg_catalog."char"),
                     ('@extschema@.findings'::pg_catalog.regclass, 'findings_count_replicated'::pg_catalog.name, 'R'::pg_catalog."char"))
             AS e (rel, name, state)
        JOIN pg_catalog.pg_trigger t
          ON t.tgrelid OPERATOR(pg_catalog.=) e.rel::pg_catalog.oid
         AND t.tgname OPERATOR(pg_catalog.=) e.name
         AND t.tgenabled OPERATOR(pg_catalog.=) e.state;
    END;
-- PUBLIC, as counter_maintenance() is: it reads catalogs everyone may read.

-- Whether job_progress_live (and so job_summary, job_status(id, true) and the refresh) reads the
-- counters, not the base tables: its rule depends on job_counters.
CREATE FUNCTION @extschema@.job_progress_live_reads_counters() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT EXISTS (
            SELECT FROM pg_catalog.pg_rewrite r
            JOIN pg_catalog.pg_depend d
              ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid
             AND d.objid OPERATOR(pg_catalog.=) r.oid
            WHERE r.ev_class OPERATOR(pg_catalog.=) '@extschema@.job_progress_live'::pg_catalog.regclass::pg_catalog.oid
              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
              AND d.refobjid OPERATOR(pg_catalog.=) '@extschema@.job_counters'::pg_catalog.regclass::pg_catalog.oid);
    END;
-- PUBLIC, as counter_maintenance() is.

-- True when reads use the counters and the triggers keep them: what repair and verify need.
CREATE OR REPLACE FUNCTION @extschema@.counter_maintenance() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT @extschema@.job_progress_live_reads_counters() AND @extschema@.counter_triggers_as_maintained();
    END;

-- Reads count the base tables; the counters are emptied (the triggers are left as they are).
-- Takes the folds' turn after the counted tables, as repairs and folds do.
CREATE FUNCTION @extschema@.stop_reading_counters() RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    LOCK TABLE @extschema@.jobs IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_objects, @extschema@.findings IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    PERFORM @extschema@.define_job_progress_live(false);
    DELETE FROM @extschema@.job_counter_deltas;
    DELETE FROM @extschema@.job_counters;
    PERFORM @extschema@.cancel_pending_counter_deltas(NULL::pg_catalog.uuid);
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.stop_reading_counters() FROM PUBLIC;

-- Called by the ddl_command_end event trigger (as the owner of job_counters) when a counter
-- trigger may have changed: if reads use the counters but the triggers are no longer as
-- set_counter_maintenance(true) left them, the counts may already be wrong (a disabled trigger
-- missed changes; an ORIGIN trigger misses logical replication's apply): reads count the base
-- tables from now on, exact, until set_counter_maintenance(true) restores the triggers and
-- rebuilds the counters.
CREATE FUNCTION @extschema@.notice_counter_trigger_changes() RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
BEGIN
    IF @extschema@.job_progress_live_reads_counters() AND NOT @extschema@.counter_triggers_as_maintained() THEN
        PERFORM @extschema@.stop_reading_counters();
        RAISE WARNING 'the counter triggers of s3scan_jobs were changed outside set_counter_maintenance(): '
                      'job_summary, job_status and refreshes count the base tables until it runs again'
            USING HINT = 'SELECT set_counter_maintenance(true) restores the ten counter triggers (not others a '
                         'DISABLE TRIGGER ALL turned off) and rebuilds the counters.';
    END IF;
END
$body$;
REVOKE ALL ON FUNCTION @extschema@.notice_counter_trigger_changes() FROM PUBLIC;

-- The switch, with the locks in the order of repairs and folds (the tables, then the turn): a
-- TRUNCATE followed by a repair in another transaction could deadlock with it before. Turning it
-- off switches reads to the base tables before the triggers, and turning it on enables the
-- triggers before reads use the counters: the event trigger never finds reads on counters whose
-- triggers are off.
CREATE OR REPLACE FUNCTION @extschema@.set_counter_maintenance(enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $body$
DECLARE
    how pg_catalog.text := CASE WHEN enabled THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END;
    how_replicated pg_catalog.text := CASE WHEN enabled THEN 'ENABLE REPLICA' ELSE 'DISABLE' END;
    missing pg_catalog.text;
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
    LOCK TABLE @extschema@.jobs IN ACCESS SHARE MODE;
    LOCK TABLE @extschema@.job_objects, @extschema@.findings IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE @extschema@.job_counters_lock IN EXCLUSIVE MODE;
    -- A counter trigger renamed or dropped by hand: say which, rather than fail in ALTER TABLE.
    SELECT pg_catalog.string_agg(e.name, ', ' ORDER BY e.name) INTO missing
    FROM (VALUES ('job_objects_count_inserts'::pg_catalog.text), ('job_objects_count_updates'),
                 ('job_objects_count_deletes'), ('job_objects_count_truncate'), ('job_objects_count_replicated'),
                 ('findings_count_inserts'), ('findings_count_updates'), ('findings_count_deletes'),
                 ('findings_count_truncate'), ('findings_count_replicated')) AS e (name)
    WHERE NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@.job_objects'::pg_catalog.regclass,
                                                        '@extschema@.findings'::pg_catalog.regclass]::pg_catalog.oid[])
          AND t.tgname OPERATOR(pg_catalog.=) e.name::pg_catalog.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'counter triggers of s3scan_jobs are missing: %', missing
            USING ERRCODE = '55000',
                  HINT = 'Rename a renamed one back (ALTER TRIGGER ... RENAME TO ...). A dropped one is recreated '
                         'by dropping and creating the extension (after saving its tables'' data).';
    END IF;
    IF NOT enabled THEN
        PERFORM @extschema@.stop_reading_counters();
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.job_objects %2$s TRIGGER job_objects_count_inserts, '
        '%2$s TRIGGER job_objects_count_updates, %2$s TRIGGER job_objects_count_deletes, '
        '%2$s TRIGGER job_objects_count_truncate, %3$s TRIGGER job_objects_count_replicated',
        '@extschema@', how, how_replicated);
    EXECUTE pg_catalog.format('ALTER TABLE %1$s.findings %2$s TRIGGER findings_count_inserts, '
        '%2$s TRIGGER findings_count_updates, %2$s TRIGGER findings_count_deletes, '
        '%2$s TRIGGER findings_count_truncate, %3$s TRIGGER findings_count_replicated',
        '@extschema@', how, how_replicated);
    IF enabled THEN
        PERFORM @extschema@.define_job_progress_live(true);
        PERFORM @extschema@.repair_job_counters(NULL::pg_catalog.uuid);
    END IF;
END
$body$;

-- The event triggers ------------------------------------------------------------------------------

-- Neither pins search_path: the first resolves the command's table name as the session does; the
-- second resolves no name and runs its one statement as the owner of job_counters under a
-- search_path pinned in C (src/table_guards.cpp).
CREATE FUNCTION @extschema@.on_table_ddl_start() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_start';
CREATE FUNCTION @extschema@.on_table_ddl_end() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's3scan_on_table_ddl_end';
REVOKE ALL ON FUNCTION @extschema@.on_table_ddl_start() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.on_table_ddl_end() FROM PUBLIC;

-- The internal tables keep their columns and names, and their indexes their names (the folds
-- name job_counters_pkey).
CREATE EVENT TRIGGER s3scan_jobs_table_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX')
    EXECUTE FUNCTION @extschema@.on_table_ddl_start();
-- No inheritance or partitioning; counter triggers changed outside set_counter_maintenance().
CREATE EVENT TRIGGER s3scan_jobs_table_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
                 'DROP TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION @extschema@.on_table_ddl_end();
-- Also for a session with session_replication_role = replica (or local).
ALTER EVENT TRIGGER s3scan_jobs_table_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER s3scan_jobs_table_ddl_end ENABLE ALWAYS;

-- A database whose counter triggers were already changed by hand reads the base tables from now on.
SELECT @extschema@.notice_counter_trigger_changes();
