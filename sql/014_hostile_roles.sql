--
-- 014_hostile_roles: what a role with little right can make the extension run, and what the
-- extension answers it (version 1.4).
-- 1. Hostile pg_temp objects. For each single table privilege on job_objects, findings and jobs
--    (SELECT, INSERT, UPDATE, DELETE, TRUNCATE: one role each, plus USAGE on the schema, the
--    sequence its INSERT needs, SELECT on the views and the refresh log, and EXECUTE on
--    refresh_job_progress(), repair_job_counters() and verify_job_counters()), the role plants in
--    its own pg_temp types named like those the extension's SQL uses, each with a cast to the
--    pg_catalog type (AS ASSIGNMENT, then again AS IMPLICIT) whose function is a trap; tables and
--    views named like the extension's, whose triggers and rows are traps; functions named like
--    those the extension calls. A trap counts its call in a sequence (not undone by a rollback),
--    logs it, warns, and when it runs as a superuser makes the role one (the issue's exploit).
--    Then, as that role, every path that switches user or runs the extension's SQL: TRUNCATE
--    (the counter trigger runs as the owner), INSERT/UPDATE/DELETE (counter triggers), job_status
--    both ways, the views (newest_object_update() for a pending recheck), the granted functions,
--    REFRESH, ALTER TABLE (the event triggers); one role also with a counter trigger changed by
--    hand (the DDL event trigger then runs SQL as the owner). After each: the role is no
--    superuser, no trap ran.
--    Positive controls first show that the traps fire and that the exploit works where a
--    superuser's code resolves the planted type (so this part can fail).
-- 2. The exact list of the extension's functions PUBLIC may execute.
-- 3. newest_object_update(): refused to a reader of job_summary only (42501); answers a reader of
--    job_progress_live (as the owner) and a reader of job_objects or of its job_id and updated_at
--    (with the reader's rights: row-level security on job_objects applies).
-- 4. Row-level security on jobs: job_status(id) and job_status(id, true) find no job the
--    caller's policies hide, 42501 for a caller without SELECT on jobs; the owner sees every job;
--    the views (job_summary, job_progress_live, job_progress) read with their owner's rights and
--    are not filtered (PostgreSQL's rules for views).
--
CREATE EXTENSION s3scan_jobs;

-- Two jobs: A (14..01) and B (14..02), with objects and findings at fixed times.
INSERT INTO jobs (job_id, bucket, prefix, created_at, updated_at) VALUES
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/', '2024-04-01 09:00:00+00', '2024-04-01 09:00:00+00'),
    ('14000000-0000-4000-8000-000000000002', 'bucket-b', 'b/', '2024-04-02 09:00:00+00', '2024-04-02 09:00:00+00');
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/1', 'e', 'succeeded', '2024-04-01 10:00:00+00'),
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/2', 'e', 'queued', '2024-04-01 10:05:00+00'),
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/3', 'e', 'failed', '2024-04-01 10:10:00+00'),
    ('14000000-0000-4000-8000-000000000002', 'bucket-b', 'b/1', 'e', 'succeeded', '2024-04-02 10:00:00+00'),
    ('14000000-0000-4000-8000-000000000002', 'bucket-b', 'b/2', 'e', 'succeeded', '2024-04-02 10:30:00+00');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/1', 'e', 'aws_key', '****', 10),
    ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'a/3', 'e', 'aws_key', '****', 20),
    ('14000000-0000-4000-8000-000000000002', 'bucket-b', 'b/2', 'e', 'email', '****', 5);
SELECT outcome FROM refresh_job_progress();

-- 1. Hostile pg_temp objects -----------------------------------------------------------------

-- What the traps record: a sequence (a call counts even if its statement is rolled back) and a
-- log, both open to every role.
CREATE SEQUENCE public.regress_s3scan_trap_calls;
CREATE TABLE public.regress_s3scan_trap_log (tag text, as_superuser boolean);
GRANT USAGE, SELECT ON SEQUENCE public.regress_s3scan_trap_calls TO PUBLIC;
GRANT INSERT, SELECT ON public.regress_s3scan_trap_log TO PUBLIC;
CREATE FUNCTION public.regress_s3scan_trap_count() RETURNS bigint LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM public.regress_s3scan_trap_calls s;
END;

-- The names the role plants in pg_temp: types (each with a cast to this target), tables (with
-- their columns) and views, functions (with their arguments). Every helper below qualifies every
-- name: once planted, an unqualified type or table name of the session is the role's.
CREATE TABLE public.regress_s3scan_planted_types (name text, target text);
INSERT INTO public.regress_s3scan_planted_types VALUES
    ('timestamptz', 'pg_catalog.timestamptz'), ('timestamp', 'pg_catalog.timestamp'),
    ('uuid', 'pg_catalog.uuid'), ('text', 'pg_catalog.text'), ('int4', 'pg_catalog.int4'),
    ('int8', 'pg_catalog.int8'), ('bool', 'pg_catalog.bool'), ('numeric', 'pg_catalog.numeric'),
    ('float8', 'pg_catalog.float8'), ('name', 'pg_catalog.name'), ('oid', 'pg_catalog.oid'),
    ('regclass', 'pg_catalog.regclass'), ('char', 'pg_catalog."char"'),
    ('job_status_result', 'public.job_status_result'), ('refresh_result', 'public.refresh_result');
CREATE TABLE public.regress_s3scan_planted_tables (name text, columns text);
INSERT INTO public.regress_s3scan_planted_tables VALUES
    ('jobs', 'job_id pg_catalog.uuid, bucket pg_catalog.text, prefix pg_catalog.text, execution_arn pg_catalog.text, created_at pg_catalog.timestamptz, updated_at pg_catalog.timestamptz'),
    ('job_objects', 'id pg_catalog.int8, job_id pg_catalog.uuid, bucket pg_catalog.text, key pg_catalog.text, etag pg_catalog.text, status pg_catalog.text, last_error pg_catalog.text, updated_at pg_catalog.timestamptz'),
    ('findings', 'id pg_catalog.int8, job_id pg_catalog.uuid, bucket pg_catalog.text, key pg_catalog.text, etag pg_catalog.text, detector pg_catalog.text, masked_match pg_catalog.text, context pg_catalog.text, byte_offset pg_catalog.int4, created_at pg_catalog.timestamptz'),
    ('job_counters', 'job_id pg_catalog.uuid, total_objects pg_catalog.int8, queued_count pg_catalog.int8, processing_count pg_catalog.int8, succeeded_count pg_catalog.int8, failed_count pg_catalog.int8, total_findings pg_catalog.int8, last_object_update pg_catalog.timestamptz'),
    ('job_counter_deltas', 'job_id pg_catalog.uuid, total_objects pg_catalog.int4, queued_count pg_catalog.int4, processing_count pg_catalog.int4, succeeded_count pg_catalog.int4, failed_count pg_catalog.int4, total_findings pg_catalog.int4, last_object_update pg_catalog.timestamptz, last_object_update_recheck pg_catalog.bool'),
    ('job_counters_lock', 'job_id pg_catalog.uuid'),
    ('materialized_view_refresh_log', 'view_name pg_catalog.text, last_refreshed_at pg_catalog.timestamptz, refresh_duration_ms pg_catalog.int4, total_jobs pg_catalog.int4, total_objects pg_catalog.int8'),
    ('refresh_history', 'id pg_catalog.int8, started_at pg_catalog.timestamptz, duration_ms pg_catalog.float8, outcome pg_catalog.text, mode pg_catalog.text, total_jobs pg_catalog.int8, total_objects pg_catalog.int8, error pg_catalog.text, origin pg_catalog.text');
CREATE TABLE public.regress_s3scan_planted_views (name text);
INSERT INTO public.regress_s3scan_planted_views VALUES
    ('job_progress_live'), ('job_progress_from_counters'), ('job_progress_from_tables'),
    ('job_summary'), ('job_progress'), ('active_jobs_progress'), ('job_statistics'),
    ('refresh_worker_status');
CREATE TABLE public.regress_s3scan_planted_functions (name text, args text);
INSERT INTO public.regress_s3scan_planted_functions VALUES
    ('job_status', 'pg_catalog.uuid, pg_catalog.bool'), ('newest_object_update', 'pg_catalog.uuid'),
    ('pending_counter_deltas', ''), ('cancel_pending_counter_deltas', 'pg_catalog.uuid'),
    ('counter_maintenance', ''), ('require_counter_maintenance', ''), ('require_counted_tables_idle', ''),
    ('counter_triggers_as_maintained', ''), ('job_progress_live_reads_counters', ''),
    ('define_job_progress_live', 'pg_catalog.bool'), ('stop_reading_counters', ''),
    ('notice_counter_trigger_changes', ''), ('set_counter_maintenance', 'pg_catalog.bool'),
    ('fold_job_counters', ''), ('repair_job_counters', 'pg_catalog.uuid'),
    ('verify_job_counters', 'pg_catalog.uuid'), ('refresh_job_progress', ''),
    ('now', ''), ('current_setting', 'pg_catalog.text'), ('format', 'pg_catalog.text, pg_catalog.text'),
    ('generate_series', 'pg_catalog.int8, pg_catalog.int8'), ('sign', 'pg_catalog.numeric'),
    ('abs', 'pg_catalog.numeric'), ('ceil', 'pg_catalog.numeric'), ('pg_get_viewdef', 'pg_catalog.regclass'),
    ('quote_ident', 'pg_catalog.text');
GRANT SELECT ON public.regress_s3scan_planted_types, public.regress_s3scan_planted_tables,
                public.regress_s3scan_planted_views, public.regress_s3scan_planted_functions TO PUBLIC;

-- Removes every pg_temp object of the current role; returns how many of its objects are left there.
CREATE FUNCTION public.regress_s3scan_unplant() RETURNS bigint LANGUAGE plpgsql
SET client_min_messages = warning AS $$
DECLARE
    o record;
    me pg_catalog.oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
BEGIN
    FOR o IN SELECT c.oid AS relid, c.relkind FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
               AND c.relowner OPERATOR(pg_catalog.=) me AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,v}'::pg_catalog."char"[]) LOOP
        IF pg_catalog.to_regclass(o.relid::pg_catalog.regclass::pg_catalog.text) IS NOT NULL THEN
            EXECUTE pg_catalog.format(CASE WHEN o.relkind OPERATOR(pg_catalog.=) 'v'::pg_catalog."char"
                                           THEN 'DROP VIEW %s CASCADE' ELSE 'DROP TABLE %s CASCADE' END,
                                      o.relid::pg_catalog.regclass);
        END IF;
    END LOOP;
    FOR o IN SELECT t.oid AS typid FROM pg_catalog.pg_type t
             WHERE t.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
               AND t.typowner OPERATOR(pg_catalog.=) me AND t.typtype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" LOOP
        EXECUTE pg_catalog.format('DROP TYPE %s CASCADE', o.typid::pg_catalog.regtype);
    END LOOP;
    FOR o IN SELECT p.oid AS procid FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
               AND p.proowner OPERATOR(pg_catalog.=) me LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) o.procid) THEN
            EXECUTE pg_catalog.format('DROP FUNCTION %s CASCADE', o.procid::pg_catalog.regprocedure);
        END IF;
    END LOOP;
    RETURN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
            WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relowner OPERATOR(pg_catalog.=) me)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type t
            WHERE t.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND t.typowner OPERATOR(pg_catalog.=) me)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p
            WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND p.proowner OPERATOR(pg_catalog.=) me);
END
$$;

-- Plants everything as the current role, its casts AS ASSIGNMENT or AS IMPLICIT (what was
-- planted before is removed first). Returns what it planted.
CREATE FUNCTION public.regress_s3scan_plant(cast_kind text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o record;
    me pg_catalog.text := CURRENT_USER;
    casts pg_catalog.int8 := 0;
BEGIN
    PERFORM public.regress_s3scan_unplant();
    -- The trap: counts, logs, warns; run by a superuser, it makes the planting role one.
    EXECUTE pg_catalog.format($f$
        CREATE FUNCTION pg_temp.s3trap(tag pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql AS $t$
        DECLARE
            su pg_catalog.bool;
        BEGIN
            PERFORM pg_catalog.nextval('public.regress_s3scan_trap_calls'::pg_catalog.regclass);
            SELECT r.rolsuper INTO su FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
            INSERT INTO public.regress_s3scan_trap_log (tag, as_superuser) VALUES (tag, su);
            RAISE WARNING 'trap "%%" called (as a superuser: %%)', tag, su;
            IF su THEN
                EXECUTE pg_catalog.format('ALTER ROLE %%I SUPERUSER', %L::pg_catalog.text);
            END IF;
            RETURN true;
        END
        $t$
        $f$, me);
    EXECUTE $f$
        CREATE FUNCTION pg_temp.s3trap_trigger() RETURNS trigger LANGUAGE plpgsql AS $t$
        BEGIN
            PERFORM pg_temp.s3trap(TG_OP OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) TG_TABLE_NAME);
            RETURN NULL;
        END
        $t$
        $f$;
    -- Types, each with a trap cast to the type of the same name.
    FOR o IN SELECT * FROM public.regress_s3scan_planted_types LOOP
        EXECUTE pg_catalog.format('CREATE TYPE pg_temp.%I AS ENUM (''x'')', o.name);
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(v pg_temp.%I) RETURNS %s LANGUAGE plpgsql '
                                  'CALLED ON NULL INPUT AS $t$ BEGIN PERFORM pg_temp.s3trap(%L); RETURN NULL; END $t$',
                                  's3trap_cast_' OPERATOR(pg_catalog.||) o.name, o.name, o.target,
                                  'cast ' OPERATOR(pg_catalog.||) o.name);
        EXECUTE pg_catalog.format('CREATE CAST (pg_temp.%I AS %s) WITH FUNCTION pg_temp.%I(pg_temp.%I) AS %s',
                                  o.name, o.target, 's3trap_cast_' OPERATOR(pg_catalog.||) o.name, o.name, cast_kind);
        casts := casts OPERATOR(pg_catalog.+) 1;
    END LOOP;
    -- Tables: one row for job A with absurd counts (a read of it would show), a trap for every write.
    FOR o IN SELECT * FROM public.regress_s3scan_planted_tables LOOP
        EXECUTE pg_catalog.format('CREATE TEMP TABLE %I (%s)', o.name, o.columns);
        EXECUTE pg_catalog.format('INSERT INTO pg_temp.%I DEFAULT VALUES', o.name);
        IF o.columns OPERATOR(pg_catalog.~~) '%job_id %' THEN
            EXECUTE pg_catalog.format('UPDATE pg_temp.%I SET job_id = ''14000000-0000-4000-8000-000000000001''', o.name);
        END IF;
        IF o.name OPERATOR(pg_catalog.~~) 'job_counter%' AND o.name OPERATOR(pg_catalog.<>) 'job_counters_lock' THEN
            EXECUTE pg_catalog.format('UPDATE pg_temp.%I SET total_objects = 999999, total_findings = 999999', o.name);
        END IF;
        EXECUTE pg_catalog.format('CREATE TRIGGER s3trap_rows BEFORE INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                                  'FOR EACH ROW EXECUTE FUNCTION pg_temp.s3trap_trigger()', o.name);
        EXECUTE pg_catalog.format('CREATE TRIGGER s3trap_truncate BEFORE TRUNCATE ON pg_temp.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.s3trap_trigger()', o.name);
    END LOOP;
    -- Views: a read runs the trap.
    FOR o IN SELECT * FROM public.regress_s3scan_planted_views LOOP
        EXECUTE pg_catalog.format('CREATE TEMP VIEW %I AS SELECT ''14000000-0000-4000-8000-000000000001''::pg_catalog.uuid AS job_id, '
                                  '999999::pg_catalog.int8 AS total_objects WHERE pg_temp.s3trap(%L)',
                                  o.name, 'read ' OPERATOR(pg_catalog.||) o.name);
    END LOOP;
    -- Functions named like those the extension calls (PostgreSQL never looks for an unqualified
    -- function name in pg_temp: these are there in case the extension named pg_temp itself).
    FOR o IN SELECT * FROM public.regress_s3scan_planted_functions LOOP
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(%s) RETURNS pg_catalog.bool LANGUAGE sql '
                                  'AS $t$ SELECT pg_temp.s3trap(%L) $t$',
                                  o.name, o.args, 'call ' OPERATOR(pg_catalog.||) o.name);
    END LOOP;
    RETURN pg_catalog.format('%s types, %s casts AS %s, %s tables, %s views, %s functions',
        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
            AND t.typtype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char"),
        casts, cast_kind,
        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
            AND c.relkind OPERATOR(pg_catalog.=) 'r'::pg_catalog."char"),
        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
            AND c.relkind OPERATOR(pg_catalog.=) 'v'::pg_catalog."char"),
        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()));
END
$$;

-- Runs the statements as the current role in a subtransaction that is always rolled back:
-- 'ok' or the SQLSTATE; whether the role was a superuser after them (checked before the
-- rollback, and after it); how many trap calls they made.
CREATE FUNCTION public.regress_s3scan_try(statements text[])
RETURNS TABLE (outcome text, became_superuser boolean, trap_calls bigint) LANGUAGE plpgsql AS $$
DECLARE
    q pg_catalog.text;
    calls_before pg_catalog.int8 := public.regress_s3scan_trap_count();
    su pg_catalog.bool := false;
BEGIN
    BEGIN
        FOREACH q IN ARRAY statements LOOP
            EXECUTE q;
        END LOOP;
        SELECT r.rolsuper INTO su FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
        RAISE EXCEPTION USING ERRCODE = 'S3OK0';
    EXCEPTION WHEN OTHERS THEN
        outcome := CASE WHEN SQLSTATE OPERATOR(pg_catalog.=) 'S3OK0' THEN 'ok' ELSE SQLSTATE END;
    END;
    became_superuser := su OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
    trap_calls := public.regress_s3scan_trap_count() OPERATOR(pg_catalog.-) calls_before;
    RETURN NEXT;
END
$$;

-- Every path, for every role (a role lacking a right gets 42501 there). Job A has a pending
-- recheck (below), so a read of job_progress_live's last_object_update calls newest_object_update().
CREATE TABLE public.regress_s3scan_actions (n int, what text, statements text[]);
GRANT SELECT ON public.regress_s3scan_actions TO PUBLIC;
INSERT INTO public.regress_s3scan_actions VALUES
    (1, 'TRUNCATE job_objects', '{"TRUNCATE public.job_objects"}'),
    (2, 'TRUNCATE findings', '{"TRUNCATE public.findings"}'),
    (3, 'TRUNCATE jobs', '{"TRUNCATE public.jobs"}'),
    (4, 'INSERT job_objects', $${"INSERT INTO public.job_objects (job_id, bucket, key, etag) VALUES ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'hostile', 'e')"}$$),
    (5, 'INSERT findings', $${"INSERT INTO public.findings (job_id, bucket, key, detector, masked_match, byte_offset) VALUES ('14000000-0000-4000-8000-000000000001', 'bucket-a', 'hostile', 'd', '*', 1)"}$$),
    (6, 'INSERT jobs', $${"INSERT INTO public.jobs (job_id, bucket) VALUES ('14000000-0000-4000-8000-000000000009', 'bucket-h')"}$$),
    (7, 'UPDATE job_objects', $${"UPDATE public.job_objects SET status = 'failed'"}$$),
    (8, 'UPDATE findings', $${"UPDATE public.findings SET detector = 'x'"}$$),
    (9, 'UPDATE jobs', $${"UPDATE public.jobs SET execution_arn = 'x'"}$$),
    (10, 'DELETE job_objects', '{"DELETE FROM public.job_objects"}'),
    (11, 'DELETE findings', '{"DELETE FROM public.findings"}'),
    (12, 'DELETE jobs (cascades)', '{"DELETE FROM public.jobs"}'),
    (13, 'job_status(id)', $${"SELECT * FROM public.job_status('14000000-0000-4000-8000-000000000001')"}$$),
    (14, 'job_status(id, true)', $${"SELECT * FROM public.job_status('14000000-0000-4000-8000-000000000001', true)"}$$),
    (15, 'SELECT job_summary', '{"SELECT * FROM public.job_summary"}'),
    (16, 'SELECT job_progress_live', '{"SELECT * FROM public.job_progress_live"}'),
    (17, 'SELECT job_progress', '{"SELECT * FROM public.job_progress"}'),
    (18, 'newest_object_update(id)', $${"SELECT public.newest_object_update('14000000-0000-4000-8000-000000000001')"}$$),
    (19, 'pending_counter_deltas()', '{"SELECT * FROM public.pending_counter_deltas()"}'),
    (20, 'counter_maintenance()', '{"SELECT public.counter_maintenance()"}'),
    (21, 'refresh_job_progress()', '{"SELECT * FROM public.refresh_job_progress()"}'),
    (22, 'repair_job_counters()', '{"SELECT public.repair_job_counters()"}'),
    (23, 'repair_job_counters(id)', $${"SELECT public.repair_job_counters('14000000-0000-4000-8000-000000000001')"}$$),
    (24, 'verify_job_counters()', '{"SELECT * FROM public.verify_job_counters()"}'),
    (25, 'REFRESH job_progress', '{"REFRESH MATERIALIZED VIEW public.job_progress"}'),
    (26, 'ALTER TABLE job_counters (own)', '{"ALTER TABLE job_counters ADD COLUMN extra pg_catalog.int4"}');

-- Every action as the current role.
CREATE FUNCTION public.regress_s3scan_drive()
RETURNS TABLE (action_n int, outcome text, became_superuser boolean, trap_calls bigint) LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    FOR a IN SELECT x.n, x.statements FROM public.regress_s3scan_actions x ORDER BY x.n LOOP
        action_n := a.n;
        SELECT t.outcome, t.became_superuser, t.trap_calls INTO outcome, became_superuser, trap_calls
        FROM public.regress_s3scan_try(a.statements) t;
        RETURN NEXT;
    END LOOP;
END
$$;

-- One role's attack: as the role, plant with ASSIGNMENT casts and drive every action, then the
-- same with IMPLICIT casts; then remove what it planted. Returns the role's outcomes.
CREATE FUNCTION public.regress_s3scan_attack(r name)
RETURNS TABLE (pass text, action_n int, outcome text, became_superuser boolean, trap_calls bigint,
               left_in_pg_temp bigint) LANGUAGE plpgsql AS $$
DECLARE
    kind pg_catalog.text;
    left_over pg_catalog.int8;
BEGIN
    EXECUTE pg_catalog.format('SET LOCAL ROLE %I', r);
    FOREACH kind IN ARRAY '{ASSIGNMENT,IMPLICIT}'::pg_catalog.text[] LOOP
        PERFORM public.regress_s3scan_plant(kind);
        RETURN QUERY SELECT kind, d.action_n, d.outcome, d.became_superuser, d.trap_calls, NULL::pg_catalog.int8
                     FROM public.regress_s3scan_drive() d;
    END LOOP;
    left_over := public.regress_s3scan_unplant();
    RESET ROLE;
    RETURN QUERY SELECT 'unplanted'::pg_catalog.text, 0, NULL::pg_catalog.text, NULL::pg_catalog.bool,
                        NULL::pg_catalog.int8, left_over;
END
$$;

-- Positive control: a superuser's SECURITY DEFINER function that does not pin search_path and
-- names a type unqualified, as 1.3's TRUNCATE trigger did (as the owner, with the TRUNCATEing
-- role's search_path, in which pg_temp comes first for types).
CREATE TABLE public.regress_s3scan_sink (at timestamptz);
CREATE FUNCTION public.regress_s3scan_unpinned_definer() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO public.regress_s3scan_sink (at) SELECT NULL::timestamptz;
END
$$;

-- The fifteen roles: one table privilege each, and what every role gets (see the header).
CREATE TABLE public.regress_s3scan_hostile (n int, tab text, priv text, role name);
INSERT INTO public.regress_s3scan_hostile
SELECT row_number() OVER (ORDER BY t.tn, p.pn), t.tab, p.priv, format('regress_s3scan_h_%s_%s', t.short, p.priv)
FROM (VALUES (1, 'job_objects', 'objects'), (2, 'findings', 'findings'), (3, 'jobs', 'jobs')) t (tn, tab, short)
CROSS JOIN (VALUES (1, 'select'), (2, 'insert'), (3, 'update'), (4, 'delete'), (5, 'truncate')) p (pn, priv)
ORDER BY t.tn, p.pn;
DO $$
DECLARE
    h record;
BEGIN
    FOR h IN SELECT * FROM public.regress_s3scan_hostile ORDER BY n LOOP
        EXECUTE format('CREATE ROLE %I', h.role);
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', h.role);
        EXECUTE format('GRANT %s ON public.%I TO %I', h.priv, h.tab, h.role);
        IF h.priv = 'insert' AND h.tab <> 'jobs' THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE public.%I TO %I', h.tab || '_id_seq', h.role);
        END IF;
        EXECUTE format('GRANT SELECT ON public.job_summary, public.job_progress_live, public.job_progress, '
                       'public.materialized_view_refresh_log TO %I', h.role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION public.refresh_job_progress(), public.repair_job_counters(uuid), '
                       'public.verify_job_counters(uuid) TO %I', h.role);
    END LOOP;
END
$$;
SELECT h.role, array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS on_its_table
FROM public.regress_s3scan_hostile h
JOIN pg_class c ON c.relname = h.tab AND c.relnamespace = 'public'::regnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE a.grantee = h.role::regrole
GROUP BY h.n, h.role ORDER BY h.n;

-- Positive controls, as the role that may TRUNCATE job_objects, with everything planted.
\set VERBOSITY terse
SET ROLE regress_s3scan_h_objects_truncate;
SELECT public.regress_s3scan_plant('ASSIGNMENT') AS planted;
-- a planted cast called directly runs its trap (as the role: it stays what it is)
SELECT * FROM public.regress_s3scan_try('{"SELECT NULL::pg_temp.timestamptz::pg_catalog.timestamptz"}');
-- a planted table's trigger and a planted view run theirs, for a statement that names them unqualified
SELECT * FROM public.regress_s3scan_try('{"INSERT INTO job_counter_deltas (job_id) VALUES (NULL)"}');
SELECT * FROM public.regress_s3scan_try('{"SELECT * FROM job_progress_live"}');
-- the exploit: a superuser's code that resolves the planted type makes the role a superuser
SELECT * FROM public.regress_s3scan_try('{"SELECT public.regress_s3scan_unpinned_definer()"}');
SELECT public.regress_s3scan_plant('IMPLICIT') AS planted;
SELECT * FROM public.regress_s3scan_try('{"SELECT public.regress_s3scan_unpinned_definer()"}');
SELECT public.regress_s3scan_unplant() AS left_in_pg_temp;
RESET ROLE;
\set VERBOSITY sqlstate
-- (every control was rolled back: no role is a superuser, the log is empty)
SELECT count(*) AS superuser_roles FROM pg_roles WHERE rolname LIKE 'regress_s3scan_h_%' AND rolsuper;
SELECT count(*) AS logged_calls FROM public.regress_s3scan_trap_log;
SELECT public.regress_s3scan_trap_count() AS trap_calls_before_the_attack \gset

-- The attack, in one transaction in which job A has a pending change that removed its newest
-- object: every read of its last_object_update (job_progress_live, the refresh) calls
-- newest_object_update() for it.
CREATE TABLE public.regress_s3scan_outcomes (role name, pass text, action_n int, outcome text,
                                             became_superuser boolean, trap_calls bigint, left_in_pg_temp bigint);
BEGIN;
DELETE FROM job_objects WHERE key = 'a/3';
SELECT job_id, total_objects, last_object_update_recheck FROM pending_counter_deltas();
INSERT INTO public.regress_s3scan_outcomes
SELECT h.role, a.* FROM public.regress_s3scan_hostile h CROSS JOIN LATERAL public.regress_s3scan_attack(h.role) a
ORDER BY h.n;
COMMIT;

-- The role that may TRUNCATE job_objects again, while a counter trigger is not as
-- set_counter_maintenance() left it (disabled by hand): reads count the base tables, and every
-- CREATE TABLE or ALTER TABLE, of its own pg_temp tables too, makes the DDL event trigger run
-- notice_counter_trigger_changes() as the owner of job_counters.
\set VERBOSITY terse
ALTER TABLE job_objects DISABLE TRIGGER job_objects_count_inserts;
\set VERBOSITY sqlstate
SELECT counter_maintenance();
INSERT INTO public.regress_s3scan_outcomes
SELECT 'regress_s3scan_h_objects_truncate', 'fallback ' || a.pass, a.action_n, a.outcome, a.became_superuser,
       a.trap_calls, a.left_in_pg_temp
FROM public.regress_s3scan_attack('regress_s3scan_h_objects_truncate') a;
SELECT set_counter_maintenance(true);
SELECT counter_maintenance();

-- What each role could do (ASSIGNMENT pass): 'ok' or the SQLSTATE.
CREATE FUNCTION pg_temp.matrix(t text)
RETURNS TABLE (action text, "select" text, "insert" text, "update" text, "delete" text, "truncate" text)
LANGUAGE sql AS $$
    SELECT a.what,
           max(o.outcome) FILTER (WHERE h.priv = 'select'), max(o.outcome) FILTER (WHERE h.priv = 'insert'),
           max(o.outcome) FILTER (WHERE h.priv = 'update'), max(o.outcome) FILTER (WHERE h.priv = 'delete'),
           max(o.outcome) FILTER (WHERE h.priv = 'truncate')
    FROM public.regress_s3scan_outcomes o
    JOIN public.regress_s3scan_hostile h ON h.role = o.role
    JOIN public.regress_s3scan_actions a ON a.n = o.action_n
    WHERE h.tab = t AND o.pass = 'ASSIGNMENT'
    GROUP BY a.n, a.what ORDER BY a.n
$$;
-- roles holding one privilege on job_objects
SELECT * FROM pg_temp.matrix('job_objects');
-- on findings
SELECT * FROM pg_temp.matrix('findings');
-- on jobs
SELECT * FROM pg_temp.matrix('jobs');
-- The IMPLICIT passes had the same outcomes as the ASSIGNMENT ones.
SELECT count(*) AS compared, count(*) FILTER (WHERE i.outcome IS DISTINCT FROM a.outcome) AS differing
FROM public.regress_s3scan_outcomes a
JOIN public.regress_s3scan_outcomes i ON i.role = a.role AND i.action_n = a.action_n
                                     AND i.pass = replace(a.pass, 'ASSIGNMENT', 'IMPLICIT')
WHERE a.pass LIKE '%ASSIGNMENT';
-- With the trigger changed by hand, only repair and verify answered otherwise: they need the
-- counters (55000).
SELECT a.what, m.outcome AS counters_maintained, f.outcome AS trigger_changed_by_hand
FROM public.regress_s3scan_outcomes f
JOIN public.regress_s3scan_outcomes m ON m.role = f.role AND m.action_n = f.action_n AND m.pass = 'ASSIGNMENT'
JOIN public.regress_s3scan_actions a ON a.n = f.action_n
WHERE f.pass = 'fallback ASSIGNMENT' AND f.outcome IS DISTINCT FROM m.outcome
ORDER BY a.n;
-- After every action of every role: no superuser, no trap call; nothing left in pg_temp.
SELECT count(*) FILTER (WHERE action_n > 0) AS actions_run,
       count(*) FILTER (WHERE became_superuser) AS became_superuser,
       coalesce(sum(trap_calls), 0) AS trap_calls,
       count(*) FILTER (WHERE action_n = 0) AS attacks_unplanted,
       sum(left_in_pg_temp) AS left_in_pg_temp
FROM public.regress_s3scan_outcomes;
-- (each action that made a role a superuser or called a trap)
SELECT o.role, o.pass, a.what, o.outcome, o.became_superuser, o.trap_calls
FROM public.regress_s3scan_outcomes o JOIN public.regress_s3scan_actions a ON a.n = o.action_n
WHERE o.became_superuser OR o.trap_calls <> 0
ORDER BY o.role, o.pass, o.action_n;
SELECT public.regress_s3scan_trap_count() - :trap_calls_before_the_attack AS trap_calls_during_the_attack;
SELECT count(*) AS superuser_roles FROM pg_roles WHERE rolname LIKE 'regress_s3scan_h_%' AND rolsuper;
SELECT count(*) AS logged_calls FROM public.regress_s3scan_trap_log;
-- and the counters are exact (every action was rolled back; the deletion of a/3 committed)
SELECT count(*) AS differing FROM verify_job_counters();
SELECT job_id, total_objects, succeeded, failed, total_findings FROM job_summary ORDER BY job_id;

-- 2. What PUBLIC may execute ---------------------------------------------------------------------

-- job_status() (which then needs table privileges), counter_maintenance() and the two catalog
-- checks it calls (a SQL function, not SECURITY DEFINER: its caller must be able to execute them),
-- and the two functions the views call (a view's functions are checked against the caller).
-- Nothing else.
SELECT p.oid::regprocedure AS public_may_execute
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                AND d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 's3scan_jobs')
WHERE has_function_privilege('public', p.oid, 'EXECUTE')
ORDER BY p.oid::regprocedure::text;

-- 3. newest_object_update() ----------------------------------------------------------------------

CREATE ROLE regress_s3scan_h_summary;
CREATE ROLE regress_s3scan_h_live;
CREATE ROLE regress_s3scan_h_objects_reader;
CREATE ROLE regress_s3scan_h_columns_reader;
CREATE ROLE regress_s3scan_h_id_reader;
GRANT SELECT ON job_summary TO regress_s3scan_h_summary;
GRANT SELECT ON job_progress_live TO regress_s3scan_h_live;
GRANT SELECT ON job_objects TO regress_s3scan_h_objects_reader;
GRANT SELECT (job_id, updated_at) ON job_objects TO regress_s3scan_h_columns_reader;
GRANT SELECT (job_id) ON job_objects TO regress_s3scan_h_id_reader;

-- A reader of job_summary only: refused (job_summary has no such column).
\set VERBOSITY default
SET ROLE regress_s3scan_h_summary;
SELECT newest_object_update('14000000-0000-4000-8000-000000000001');
RESET ROLE;
\set VERBOSITY sqlstate
-- It still reads job_summary, also while a change is pending that removed a job's newest object.
BEGIN;
DELETE FROM job_objects WHERE key = 'b/2';
SET LOCAL ROLE regress_s3scan_h_summary;
SELECT job_id, total_objects FROM job_summary ORDER BY job_id;
ROLLBACK;
-- A reader of job_progress_live: answered, read as the owner; the view calls it for a pending
-- removal of the newest object.
SET ROLE regress_s3scan_h_live;
SELECT newest_object_update('14000000-0000-4000-8000-000000000001') = '2024-04-01 10:05:00+00' AS newest_a,
       newest_object_update('14000000-0000-4000-8000-000000000002') = '2024-04-02 10:30:00+00' AS newest_b;
RESET ROLE;
BEGIN;
DELETE FROM job_objects WHERE key = 'b/2';
SELECT last_object_update_recheck FROM pending_counter_deltas();
SET LOCAL ROLE regress_s3scan_h_live;
SELECT job_id, total_objects, last_object_update = '2024-04-02 10:00:00+00' AS newest_is_b1
FROM job_progress_live WHERE job_id = '14000000-0000-4000-8000-000000000002';
ROLLBACK;
-- A reader of job_objects (the table, or its job_id and updated_at): answered; of job_id alone:
-- refused.
SET ROLE regress_s3scan_h_objects_reader;
SELECT newest_object_update('14000000-0000-4000-8000-000000000002') = '2024-04-02 10:30:00+00' AS newest_b;
RESET ROLE;
SET ROLE regress_s3scan_h_columns_reader;
SELECT newest_object_update('14000000-0000-4000-8000-000000000002') = '2024-04-02 10:30:00+00' AS newest_b;
RESET ROLE;
SET ROLE regress_s3scan_h_id_reader;
SELECT newest_object_update('14000000-0000-4000-8000-000000000002');
RESET ROLE;
-- A reader of job_objects reads with its own rights: a policy that hides job B's objects from it
-- makes the answer for B null, as its own max(updated_at) would be.
ALTER TABLE job_objects ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_s3scan_hide_b ON job_objects FOR SELECT TO regress_s3scan_h_objects_reader
    USING (job_id <> '14000000-0000-4000-8000-000000000002');
SET ROLE regress_s3scan_h_objects_reader;
SELECT count(*) AS objects_of_b_it_sees FROM job_objects WHERE job_id = '14000000-0000-4000-8000-000000000002';
SELECT newest_object_update('14000000-0000-4000-8000-000000000002') IS NULL AS newest_b_is_null,
       newest_object_update('14000000-0000-4000-8000-000000000001') = '2024-04-01 10:05:00+00' AS newest_a;
RESET ROLE;
-- (a reader of job_progress_live, which the policy does not concern, and the owner get B's: read
-- as the owner)
SET ROLE regress_s3scan_h_live;
SELECT newest_object_update('14000000-0000-4000-8000-000000000002') = '2024-04-02 10:30:00+00' AS newest_b;
RESET ROLE;
SELECT newest_object_update('14000000-0000-4000-8000-000000000002') = '2024-04-02 10:30:00+00' AS owner_newest_b;
DROP POLICY regress_s3scan_hide_b ON job_objects;
ALTER TABLE job_objects DISABLE ROW LEVEL SECURITY;

-- 4. Row-level security on jobs -----------------------------------------------------------------

-- An application role with the README's grants, whose policy hides job B; a dashboard role that
-- may read the views (and the cache) but not jobs.
CREATE ROLE regress_s3scan_h_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO regress_s3scan_h_app;
GRANT SELECT ON job_summary, job_progress, job_progress_live, materialized_view_refresh_log TO regress_s3scan_h_app;
CREATE ROLE regress_s3scan_h_dashboard;
GRANT SELECT ON job_summary, job_progress, job_progress_live, materialized_view_refresh_log TO regress_s3scan_h_dashboard;
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_s3scan_app_jobs ON jobs TO regress_s3scan_h_app
    USING (job_id <> '14000000-0000-4000-8000-000000000002');
-- both jobs are in the cache
SELECT outcome FROM refresh_job_progress();
SELECT job_id FROM job_progress ORDER BY job_id;

SET ROLE regress_s3scan_h_app;
SELECT job_id FROM jobs ORDER BY job_id;
SELECT count(*) AS rows_of_b_in_jobs FROM jobs WHERE job_id = '14000000-0000-4000-8000-000000000002';
-- the hidden job: zero rows on both paths
SELECT count(*) AS cached_rows_of_b FROM job_status('14000000-0000-4000-8000-000000000002');
SELECT count(*) AS real_time_rows_of_b FROM job_status('14000000-0000-4000-8000-000000000002', true);
-- the visible job: answered on both paths
SELECT job_id, total_objects, succeeded_count, failed_count, total_findings, status, data_source
FROM job_status('14000000-0000-4000-8000-000000000001');
SELECT job_id, total_objects, succeeded_count, failed_count, total_findings, status, data_source
FROM job_status('14000000-0000-4000-8000-000000000001', true);
-- the views read with their owner's rights: the policy on jobs does not filter them
SELECT job_id, total_objects, total_findings FROM job_summary ORDER BY job_id;
SELECT count(*) AS rows_of_b_in_job_progress_live FROM job_progress_live WHERE job_id = '14000000-0000-4000-8000-000000000002';
SELECT count(*) AS rows_of_b_in_job_progress FROM job_progress WHERE job_id = '14000000-0000-4000-8000-000000000002';
-- with row_security off, as a query on jobs would: 42501
SET row_security = off;
SELECT count(*) FROM jobs;
SELECT count(*) FROM job_status('14000000-0000-4000-8000-000000000001');
SELECT count(*) FROM job_status('14000000-0000-4000-8000-000000000001', true);
RESET row_security;
RESET ROLE;

-- A role that row-level security applies to but that may not read jobs: 42501 on both paths,
-- although it may read the views and the cache.
SET ROLE regress_s3scan_h_dashboard;
SELECT count(*) FROM job_status('14000000-0000-4000-8000-000000000001');
SELECT count(*) FROM job_status('14000000-0000-4000-8000-000000000001', true);
SELECT count(*) FROM job_status('14000000-0000-4000-8000-000000000002', true);
SELECT job_id, total_objects FROM job_summary ORDER BY job_id;
RESET ROLE;

-- The owner (a superuser): every job, on both paths.
SELECT count(*) AS rows_of_b_in_jobs FROM jobs WHERE job_id = '14000000-0000-4000-8000-000000000002';
SELECT job_id, total_objects, status, data_source FROM job_status('14000000-0000-4000-8000-000000000002');
SELECT job_id, total_objects, status, data_source FROM job_status('14000000-0000-4000-8000-000000000002', true);
\set VERBOSITY default

DROP EXTENSION s3scan_jobs CASCADE;
DROP TABLE public.regress_s3scan_outcomes, public.regress_s3scan_actions, public.regress_s3scan_hostile,
           public.regress_s3scan_sink, public.regress_s3scan_trap_log, public.regress_s3scan_planted_types,
           public.regress_s3scan_planted_tables, public.regress_s3scan_planted_views,
           public.regress_s3scan_planted_functions;
DROP FUNCTION public.regress_s3scan_attack(name), public.regress_s3scan_drive(), public.regress_s3scan_try(text[]),
              public.regress_s3scan_plant(text), public.regress_s3scan_unplant(), public.regress_s3scan_trap_count(),
              public.regress_s3scan_unpinned_definer();
DROP SEQUENCE public.regress_s3scan_trap_calls;
DROP FUNCTION pg_temp.matrix(text);
DO $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_s3scan_h_%' ORDER BY rolname LOOP
        EXECUTE format('DROP OWNED BY %I', r);
        EXECUTE format('DROP ROLE %I', r);
    END LOOP;
END
$$;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'regress_s3scan_h_%';
