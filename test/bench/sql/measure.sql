-- Timing instruments, installed in schema "bench" of the read database (after the extension and
-- the baseline schema exist, since the static queries below name their objects).
--
-- Reads are timed one execution at a time inside the server with clock_timestamp(), so a sample
-- is the statement's own latency (executor + plan-cache lookup), without client round trips.
-- Every query is static plpgsql SQL: planned once and cached like a prepared statement, as a
-- client's prepared statement would be. Kinds are interleaved round by round (the order rotates)
-- so that drift on a shared machine hits all of them alike.

CREATE UNLOGGED TABLE bench.samples (
    seq   bigserial,
    label text NOT NULL,          -- what was measured on: '1000 objects', '10000 jobs', ...
    kind  text NOT NULL,          -- see bench.read_once and bench.measure_refresh
    ms    double precision NOT NULL,
    note  text
);

-- Facts about the run (scale, row counts, settings) that the report prints.
CREATE TABLE bench.meta (
    key   text PRIMARY KEY,
    value text
);

-- Results of bench.check_values, kept for the report.
CREATE TABLE bench.checks (
    check_name text,
    ok         boolean,
    detail     text
);

CREATE UNLOGGED TABLE bench.write_runs (
    scenario text NOT NULL,
    target   text NOT NULL,       -- 'plain' or 'extension'
    rep      integer NOT NULL,
    tps      double precision NOT NULL,
    xacts    bigint,
    mode     text NOT NULL            -- 'alternating' (alone, ABBA) or 'simultaneous' (both at once)
);

-- One execution of one kind of read for job jid; returns its latency in ms.
--   note_summary   SELECT * FROM baseline.job_summary WHERE job_id = $1   (the note's view)
--   ext_summary    SELECT * FROM job_summary WHERE job_id = $1            (the extension's view)
--   direct_lookup  SELECT * FROM job_progress WHERE job_id = $1           (the API's cached read)
--   status_cached  SELECT * FROM job_status($1)
--   status_live    SELECT * FROM job_status($1, true)
CREATE FUNCTION bench.read_once(kind text, jid uuid) RETURNS double precision
    LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    r  record;
BEGIN
    IF kind = 'note_summary' THEN
        t0 := clock_timestamp();
        SELECT * INTO r FROM baseline.job_summary WHERE job_id = jid;
        t1 := clock_timestamp();
    ELSIF kind = 'ext_summary' THEN
        t0 := clock_timestamp();
        SELECT * INTO r FROM public.job_summary WHERE job_id = jid;
        t1 := clock_timestamp();
    ELSIF kind = 'direct_lookup' THEN
        t0 := clock_timestamp();
        SELECT * INTO r FROM public.job_progress WHERE job_id = jid;
        t1 := clock_timestamp();
    ELSIF kind = 'status_cached' THEN
        t0 := clock_timestamp();
        SELECT * INTO r FROM public.job_status(jid);
        t1 := clock_timestamp();
    ELSIF kind = 'status_live' THEN
        t0 := clock_timestamp();
        SELECT * INTO r FROM public.job_status(jid, true);
        t1 := clock_timestamp();
    ELSE
        RAISE EXCEPTION 'unknown read kind %', kind;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% returned no row for job %', kind, jid;
    END IF;
    RETURN extract(epoch FROM t1 - t0) * 1000.0;
END;
$$;

-- Sample the given read kinds for one job, interleaved. run.sh calls it twice per job: the
-- aggregating reads together, then the two index lookups together (so that the fast ones are
-- not measured between multi-millisecond scans at one size and back to back at another). A kind stops when it has max_n samples, or
-- when it has used budget_ms and has min_n samples (min_slow when one execution takes more
-- than a second). Warm-up executions (plans, caches) are not recorded.
CREATE PROCEDURE bench.measure_reads(label text, jid uuid, kinds text[], min_n integer,
                                     max_n integer, budget_ms double precision,
                                     min_slow integer DEFAULT 5)
    LANGUAGE plpgsql AS $$
DECLARE
    nk     integer := cardinality(kinds);
    n      integer[] := ARRAY[0, 0, 0, 0, 0];
    spent  double precision[] := ARRAY[0, 0, 0, 0, 0];
    lim    integer[] := ARRAY[0, 0, 0, 0, 0];
    ms     double precision;
    rnd    integer := 0;
    active boolean;
    idx    integer;
BEGIN
    -- Warm-up: once each; ten times more for the fast ones (past the plan cache's custom-plan
    -- phase, so what is measured is the steady state).
    FOR j IN 1..nk LOOP
        ms := bench.read_once(kinds[j], jid);
        lim[j] := CASE WHEN ms > 1000 THEN min_slow ELSE min_n END;
        IF ms < 50 THEN
            FOR w IN 1..10 LOOP
                PERFORM bench.read_once(kinds[j], jid);
            END LOOP;
        END IF;
    END LOOP;
    COMMIT;

    LOOP
        rnd := rnd + 1;
        active := false;
        FOR j IN 0..nk - 1 LOOP
            idx := 1 + (j + rnd) % nk;
            CONTINUE WHEN n[idx] >= max_n OR (n[idx] >= lim[idx] AND spent[idx] >= budget_ms);
            active := true;
            ms := bench.read_once(kinds[idx], jid);
            INSERT INTO bench.samples (label, kind, ms) VALUES (label, kinds[idx], ms);
            n[idx] := n[idx] + 1;
            spent[idx] := spent[idx] + ms;
        END LOOP;
        EXIT WHEN NOT active;
        IF rnd % 50 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
    COMMIT;
END;
$$;

-- Change the status of about n random objects (queued -> processing -> succeeded), as scanner
-- workers do between two refreshes, so that every refresh has real differences to apply.
CREATE FUNCTION bench.churn(n integer) RETURNS bigint
    LANGUAGE sql AS $$
    WITH picked AS (
        SELECT DISTINCT (1 + floor(random() * (SELECT max(id) FROM public.job_objects)))::bigint AS id
        FROM generate_series(1, n)
    ), changed AS (
        UPDATE public.job_objects o
           SET status = CASE o.status WHEN 'queued' THEN 'processing'
                                      WHEN 'processing' THEN 'succeeded'
                                      ELSE o.status END,
               updated_at = now()
          FROM picked
         WHERE o.id = picked.id AND o.status IN ('queued', 'processing')
        RETURNING 1
    )
    SELECT count(*) FROM changed;
$$;

-- Refresh timing: pairs of (the note's REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress,
-- the extension's refresh_job_progress()), order alternating ABBA, each preceded by the same churn
-- and each in its own transaction; a sample runs from the statement to its COMMIT.
CREATE PROCEDURE bench.measure_refresh(label text, pairs integer, churn integer)
    LANGUAGE plpgsql AS $$
DECLARE
    t0  timestamptz;
    ms  double precision;
    res record;
    ext_first boolean;
BEGIN
    FOR p IN 1..pairs LOOP
        PERFORM bench.churn(churn);
        COMMIT;
        ext_first := p % 2 = 0;
        FOR s IN 1..2 LOOP
            IF ext_first = (s = 1) THEN
                t0 := clock_timestamp();
                SELECT * INTO res FROM public.refresh_job_progress();
                COMMIT;
                ms := extract(epoch FROM clock_timestamp() - t0) * 1000.0;
                INSERT INTO bench.samples (label, kind, ms, note)
                VALUES (label, 'refresh_ext', ms,
                        res.outcome || '/' || coalesce(res.mode, '-') || ' ' ||
                        round(res.duration_ms::numeric, 1) || ' ms inside');
            ELSE
                t0 := clock_timestamp();
                REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress;
                COMMIT;
                ms := extract(epoch FROM clock_timestamp() - t0) * 1000.0;
                INSERT INTO bench.samples (label, kind, ms) VALUES (label, 'refresh_note', ms);
            END IF;
            COMMIT;
        END LOOP;
    END LOOP;
END;
$$;

-- Same values: the note's views against the extension's, for the measured jobs and a sample of
-- small jobs, and the two materialized views in full (both must have been refreshed after the
-- last write). One row per check; ok = false is a mismatch, with the rows in detail.
-- The extension's job_progress has the note's 13 columns and then last_object_update (the newest
-- updated_at of the job's objects), which the note's has not: the note's columns are compared
-- with the note's, last_object_update with the job's objects. job_status's result has the same
-- 13 columns and then status, data_source and cache_timestamp (the refresh log's time).
CREATE FUNCTION bench.note_columns(p public.job_progress) RETURNS text
    LANGUAGE sql STABLE
    RETURN row(p.job_id, p.bucket, p.prefix, p.execution_arn, p.created_at, p.updated_at,
               p.total_objects, p.queued_count, p.processing_count, p.succeeded_count,
               p.failed_count, p.total_findings, p.progress_percent)::text;

CREATE FUNCTION bench.check_values(measured uuid[], sample uuid[])
    RETURNS TABLE (check_name text, ok boolean, detail text)
    LANGUAGE plpgsql AS $$
DECLARE
    jid uuid;
    b   text;
    e   text;
    bad bigint;
    s   record;
    lp  record;
    refreshed timestamptz := (SELECT l.last_refreshed_at FROM public.materialized_view_refresh_log l
                              WHERE l.view_name = 'job_progress');
BEGIN
    FOREACH jid IN ARRAY measured || sample LOOP
        SELECT t::text INTO b FROM baseline.job_summary t WHERE t.job_id = jid;
        SELECT t::text INTO e FROM public.job_summary t WHERE t.job_id = jid;
        IF b IS DISTINCT FROM e THEN
            check_name := 'job_summary ' || jid; ok := false;
            detail := 'note: ' || coalesce(b, '(none)') || ' | extension: ' || coalesce(e, '(none)');
            RETURN NEXT;
        END IF;
    END LOOP;
    check_name := 'job_summary: note = extension for ' ||
                  cardinality(measured) || ' measured + ' || cardinality(sample) || ' sampled jobs';
    ok := NOT EXISTS (
        SELECT 1 FROM unnest(measured || sample) AS u(j)
        WHERE (SELECT t::text FROM baseline.job_summary t WHERE t.job_id = u.j)
              IS DISTINCT FROM (SELECT t::text FROM public.job_summary t WHERE t.job_id = u.j));
    detail := NULL;
    RETURN NEXT;

    SELECT count(*) INTO bad FROM (
        (SELECT t::text FROM baseline.job_progress t EXCEPT ALL SELECT bench.note_columns(t) FROM public.job_progress t)
        UNION ALL
        (SELECT bench.note_columns(t) FROM public.job_progress t EXCEPT ALL SELECT t::text FROM baseline.job_progress t)) d;
    check_name := 'job_progress: note = extension in the note''s 13 columns, all ' ||
                  (SELECT count(*) FROM public.job_progress) || ' rows';
    ok := bad = 0;
    detail := CASE WHEN bad > 0 THEN bad || ' differing rows' END;
    RETURN NEXT;

    SELECT count(*) INTO bad
    FROM public.job_progress t
    LEFT JOIN (SELECT o.job_id, max(o.updated_at) AS newest FROM public.job_objects o GROUP BY o.job_id) o
           ON o.job_id = t.job_id
    WHERE t.last_object_update IS DISTINCT FROM o.newest;
    check_name := 'job_progress.last_object_update = the newest updated_at of the job''s objects, all ' ||
                  (SELECT count(*) FROM public.job_progress) || ' rows';
    ok := bad = 0;
    detail := CASE WHEN bad > 0 THEN bad || ' differing rows' END;
    RETURN NEXT;

    FOREACH jid IN ARRAY measured LOOP
        SELECT * INTO s FROM public.job_status(jid, true);
        SELECT t::text INTO b FROM baseline.job_summary t WHERE t.job_id = jid;
        SELECT * INTO lp FROM baseline.job_summary t WHERE t.job_id = jid;
        check_name := 'job_status(real time) = note''s job_summary, job ' || jid;
        ok := s.data_source = 'real_time'
              AND (s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
                   s.failed_count, s.total_findings)
                  IS NOT DISTINCT FROM
                  (lp.total_objects, lp.queued, lp.processing, lp.succeeded, lp.failed,
                   lp.total_findings);
        detail := CASE WHEN NOT ok THEN 'job_status: ' || s::text || ' | note: ' || b END;
        RETURN NEXT;

        SELECT * INTO s FROM public.job_status(jid);
        SELECT bench.note_columns(t) INTO e FROM public.job_progress t WHERE t.job_id = jid;
        check_name := 'job_status(cached) = its job_progress row (13 columns), cache_timestamp = the refresh log''s, job ' || jid;
        ok := s.data_source = 'cached'
              AND row(s.job_id, s.bucket, s.prefix, s.execution_arn, s.created_at, s.updated_at,
                      s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
                      s.failed_count, s.total_findings, s.progress_percent)::text = e
              AND s.cache_timestamp IS NOT DISTINCT FROM refreshed;
        detail := CASE WHEN NOT ok THEN 'job_status: ' || s::text || ' | job_progress: ' || e ||
                                        ' | refreshed at ' || coalesce(refreshed::text, '(none)') END;
        RETURN NEXT;
    END LOOP;
END;
$$;
