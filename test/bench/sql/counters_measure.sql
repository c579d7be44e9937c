-- counters.sh's instruments and results (the per-job counters), installed in schema "bench" of the database
-- "bench" after sql/generate.sql (which creates the schema, bench.jid and the loaders) and
-- sql/baseline_views.sql (the note's job_progress, for the refresh comparison).
--
-- Samples are written by counters.sh (pgbench logs, psql samplers) and by the refresh procedure
-- below; sql/counters_render.sql prints the report from them.

CREATE TABLE bench.meta (key text PRIMARY KEY, value text);

-- 1. Reads under write load: one row per read as a client saw it (pgbench --log, microseconds
-- converted to ms). block: 1, 2, 3 in the order the blocks ran (counters on, off, on again).
CREATE UNLOGGED TABLE bench.read_lat (
    size     bigint NOT NULL,         -- objects in the job read (and written)
    counters text NOT NULL,           -- 'on' / 'off'
    block    integer NOT NULL,
    kind     text NOT NULL,           -- status_live, summary, status_cached
    ms       double precision NOT NULL
);

-- The write load behind each read block, as the writers' pgbench reported it.
CREATE UNLOGGED TABLE bench.read_load (
    size     bigint NOT NULL,
    counters text NOT NULL,
    block    integer NOT NULL,
    seconds  double precision NOT NULL,
    tps      double precision,        -- updates per second achieved (the target is -R)
    lag_ms   double precision,        -- pgbench -R schedule lag, average
    pending_max bigint                -- largest count(*) of job_counter_deltas seen between chunks
);

-- 2. Write cost: one row per pgbench run.
CREATE UNLOGGED TABLE bench.write_runs (
    seq      bigserial,
    scenario text NOT NULL,
    config   text NOT NULL,           -- 'on', 'off' (w_ext, set_counter_maintenance), 'plain' (w_plain)
    round    integer NOT NULL,
    tps      double precision NOT NULL,
    xacts    bigint,
    lat_ms   double precision,
    failed   bigint
);

-- 3. Fold cost: pending deltas sampled by a client, and folds timed inside the server.
CREATE UNLOGGED TABLE bench.pending (
    mode text NOT NULL,               -- 'worker' (fold_interval 100ms) or 'manual' (a client folds every 100 ms)
    t    double precision NOT NULL,   -- epoch seconds
    n    bigint NOT NULL
);
CREATE UNLOGGED TABLE bench.folds (
    mode text NOT NULL,
    t    double precision NOT NULL,
    rows bigint NOT NULL,
    ms   double precision NOT NULL
);
CREATE UNLOGGED TABLE bench.fold_load (
    mode    text NOT NULL,
    seconds double precision,
    tps     double precision,         -- writers' rate (pgbench)
    lat_ms  double precision,         -- writers' average latency (pgbench)
    lag_ms  double precision          -- pgbench -R schedule lag, average
);

-- 4. Refresh, and the cost of switching counter maintenance on and off.
CREATE UNLOGGED TABLE bench.refresh (
    seq      bigserial,
    kind     text NOT NULL,           -- refresh_on, refresh_off, refresh_note, maintenance_on, maintenance_off
    counters text NOT NULL,
    round    integer NOT NULL,
    ms       double precision NOT NULL,
    note     text
);

CREATE TABLE bench.checks (check_name text, ok boolean, detail text);

CREATE FUNCTION bench.meta_get(k text) RETURNS text
    LANGUAGE sql STABLE RETURN (SELECT value FROM bench.meta WHERE key = k);

-- Change the status of about n random objects (queued -> processing -> succeeded), as scanner
-- workers do between two refreshes: one statement, objects of many jobs.
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

-- Refresh timing at the database's full size. Per round: with counters on, ABBA pairs of
-- refresh_job_progress() and the note's REFRESH MATERIALIZED VIEW CONCURRENTLY; then counters
-- off (today's 1.0 path), the same; the order inside each pair block flips every round. Every
-- refresh is in its own transaction, timed to its COMMIT, after the same churn. The switches
-- themselves (set_counter_maintenance) are timed too: "on" recounts every job.
CREATE PROCEDURE bench.measure_refresh(rounds integer, churn integer, have_counters boolean)
    LANGUAGE plpgsql AS $$
DECLARE
    t0   timestamptz;
    ms   double precision;
    res  record;
    mode text;
    kind text;
    ext_first boolean;
BEGIN
    FOR r IN 1..rounds LOOP
        FOREACH mode IN ARRAY CASE WHEN have_counters THEN ARRAY['on', 'off'] ELSE ARRAY['off'] END LOOP
            IF have_counters THEN
                t0 := clock_timestamp();
                PERFORM public.set_counter_maintenance(mode = 'on');
                COMMIT;
                INSERT INTO bench.refresh (kind, counters, round, ms)
                VALUES ('maintenance_' || mode, mode, r, extract(epoch FROM clock_timestamp() - t0) * 1000.0);
                COMMIT;
            END IF;
            ext_first := (r % 2 = 1);
            FOR s IN 1..4 LOOP
                PERFORM bench.churn(churn);
                COMMIT;
                IF (s IN (1, 4)) = ext_first THEN
                    kind := 'refresh_' || mode;
                    t0 := clock_timestamp();
                    SELECT * INTO res FROM public.refresh_job_progress();
                    COMMIT;
                    ms := extract(epoch FROM clock_timestamp() - t0) * 1000.0;
                    INSERT INTO bench.refresh (kind, counters, round, ms, note)
                    VALUES (kind, mode, r, ms, res.outcome || '/' || coalesce(res.mode, '-'));
                ELSE
                    t0 := clock_timestamp();
                    REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress;
                    COMMIT;
                    ms := extract(epoch FROM clock_timestamp() - t0) * 1000.0;
                    INSERT INTO bench.refresh (kind, counters, round, ms) VALUES ('refresh_note', mode, r, ms);
                END IF;
                COMMIT;
            END LOOP;
            -- The same refresh with JIT off for this session (jit_above_cost is passed by the
            -- planner's estimate of the matview's query, and compiling takes most of the time),
            -- and, with counters on, a plain (not CONCURRENTLY) REFRESH of job_progress: what
            -- the concurrent refresh's diff costs on top of the query.
            SET jit = off;
            PERFORM bench.churn(churn);
            COMMIT;
            t0 := clock_timestamp();
            SELECT * INTO res FROM public.refresh_job_progress();
            COMMIT;
            INSERT INTO bench.refresh (kind, counters, round, ms, note)
            VALUES ('refresh_' || mode || '_jit_off', mode, r, extract(epoch FROM clock_timestamp() - t0) * 1000.0,
                    res.outcome || '/' || coalesce(res.mode, '-'));
            COMMIT;
            IF mode = 'on' THEN
                PERFORM bench.churn(churn);
                COMMIT;
                t0 := clock_timestamp();
                REFRESH MATERIALIZED VIEW public.job_progress;
                COMMIT;
                INSERT INTO bench.refresh (kind, counters, round, ms)
                VALUES ('matview_plain_on_jit_off', mode, r, extract(epoch FROM clock_timestamp() - t0) * 1000.0);
                COMMIT;
            END IF;
            -- The floor of any materialized job_progress refreshed CONCURRENTLY: the same rows
            -- copied into a plain table (bench.floor_src) and a matview that only selects them,
            -- after the same churn of its updated_at column. No counting at all: the diff alone.
            IF mode = 'on' THEN
                UPDATE bench.floor_src f SET updated_at = pg_catalog.clock_timestamp()
                WHERE f.job_id IN (SELECT s.job_id FROM bench.floor_src s ORDER BY pg_catalog.random() LIMIT churn);
                COMMIT;
                t0 := clock_timestamp();
                REFRESH MATERIALIZED VIEW CONCURRENTLY bench.floor_mv;
                COMMIT;
                INSERT INTO bench.refresh (kind, counters, round, ms)
                VALUES ('floor_concurrently_jit_off', mode, r, extract(epoch FROM clock_timestamp() - t0) * 1000.0);
                COMMIT;
            END IF;
            RESET jit;
        END LOOP;
    END LOOP;
    IF have_counters THEN
        t0 := clock_timestamp();
        PERFORM public.set_counter_maintenance(true);
        COMMIT;
        INSERT INTO bench.refresh (kind, counters, round, ms)
        VALUES ('maintenance_on', 'on', rounds + 1, extract(epoch FROM clock_timestamp() - t0) * 1000.0);
        COMMIT;
    END IF;
END;
$$;

-- Statistics --------------------------------------------------------------------------------------

CREATE FUNCTION bench.fmt(ms double precision) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN ms IS NULL THEN '-'
                WHEN ms < 1 THEN round((ms * 1000)::numeric, 0) || ' µs'
                WHEN ms < 10 THEN round(ms::numeric, 2) || ' ms'
                WHEN ms < 1000 THEN round(ms::numeric, 1) || ' ms'
                ELSE round((ms / 1000)::numeric, 2) || ' s' END;

CREATE FUNCTION bench.fmtx(x double precision) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN x IS NULL THEN '-'
                WHEN x >= 100 THEN round(x::numeric, 0) || '×'
                WHEN x >= 10 THEN round(x::numeric, 1) || '×'
                ELSE round(x::numeric, 2) || '×' END;

CREATE FUNCTION bench.pct(x double precision) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN x IS NULL THEN '-' ELSE round((x * 100)::numeric, 1) || '%' END;

CREATE VIEW bench.read_stats AS
SELECT size, counters, kind, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
       max(ms) AS max,
       -- block-to-block spread of the median (counters on ran twice in the full scale)
       (SELECT max(m) / nullif(min(m), 0) - 1 FROM (
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b.ms) AS m
            FROM bench.read_lat b WHERE b.size = l.size AND b.counters = l.counters AND b.kind = l.kind
            GROUP BY b.block) x) AS block_spread
FROM bench.read_lat l
GROUP BY size, counters, kind;

CREATE FUNCTION bench.rcell(s bigint, c text, k text) RETURNS text
    LANGUAGE sql STABLE
    RETURN (SELECT bench.fmt(median) || ' / ' || bench.fmt(p99) || ' (n=' || n || ')'
            FROM bench.read_stats WHERE size = s AND counters = c AND kind = k);

CREATE FUNCTION bench.rmed(s bigint, c text, k text) RETURNS double precision
    LANGUAGE sql STABLE RETURN (SELECT median FROM bench.read_stats WHERE size = s AND counters = c AND kind = k);

CREATE FUNCTION bench.rp99(s bigint, c text, k text) RETURNS double precision
    LANGUAGE sql STABLE RETURN (SELECT p99 FROM bench.read_stats WHERE size = s AND counters = c AND kind = k);

-- Per scenario and configuration: median tps over the runs, min, max; the ratios use medians,
-- and "paired" the median over rounds of the ratio of the two runs of the same round (which ran
-- next to each other, ABCCBA), so that drift of the machine's other load cancels.
CREATE VIEW bench.write_stats AS
WITH per AS (
    SELECT scenario, config, count(*) AS runs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) AS med,
           min(tps) AS lo, max(tps) AS hi, min(seq) AS first_seq,
           sum(failed) AS failed
    FROM bench.write_runs GROUP BY scenario, config),
rnd AS (
    SELECT scenario, round, config, avg(tps) AS tps FROM bench.write_runs GROUP BY 1, 2, 3),
paired AS (
    SELECT a.scenario,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.tps / b.tps) FILTER (WHERE b.config = 'off') AS on_off,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.tps / b.tps) FILTER (WHERE b.config = 'plain') AS on_plain,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY c.tps / b.tps) FILTER (WHERE b.config = 'plain') AS off_plain
    FROM rnd a JOIN rnd b ON b.scenario = a.scenario AND b.round = a.round AND b.config <> 'on'
    LEFT JOIN rnd c ON c.scenario = a.scenario AND c.round = a.round AND c.config = 'off'
    WHERE a.config = 'on'
    GROUP BY a.scenario)
SELECT s.scenario,
       min(p.first_seq) AS first_seq,
       max(p.runs) FILTER (WHERE p.config = 'on') AS runs,
       max(p.med) FILTER (WHERE p.config = 'on') AS on_tps,
       max(p.med) FILTER (WHERE p.config = 'off') AS off_tps,
       max(p.med) FILTER (WHERE p.config = 'plain') AS plain_tps,
       max(p.lo) FILTER (WHERE p.config = 'on') AS on_lo, max(p.hi) FILTER (WHERE p.config = 'on') AS on_hi,
       max(p.lo) FILTER (WHERE p.config = 'off') AS off_lo, max(p.hi) FILTER (WHERE p.config = 'off') AS off_hi,
       max(p.lo) FILTER (WHERE p.config = 'plain') AS plain_lo, max(p.hi) FILTER (WHERE p.config = 'plain') AS plain_hi,
       max((p.hi - p.lo) / p.med) AS spread,
       sum(p.failed) AS failed,
       max(q.on_off) AS paired_on_off, max(q.on_plain) AS paired_on_plain, max(q.off_plain) AS paired_off_plain
FROM (SELECT DISTINCT scenario FROM bench.write_runs) s
JOIN per p USING (scenario)
LEFT JOIN paired q USING (scenario)
GROUP BY s.scenario;

CREATE VIEW bench.pending_stats AS
SELECT mode, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS median,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY n) AS p99,
       max(n) AS max,
       (max(t) - min(t)) AS seconds
FROM bench.pending GROUP BY mode;

CREATE VIEW bench.fold_stats AS
SELECT mode, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99_ms,
       max(ms) AS max_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rows) AS median_rows,
       max(rows) AS max_rows,
       sum(rows) AS rows
FROM bench.folds GROUP BY mode;

CREATE VIEW bench.refresh_stats AS
SELECT kind, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median,
       min(ms) AS lo, max(ms) AS hi
FROM bench.refresh GROUP BY kind;

CREATE FUNCTION bench.refmed(k text) RETURNS double precision
    LANGUAGE sql STABLE RETURN (SELECT median FROM bench.refresh_stats WHERE kind = k);

-- The counters' targets, one row per measured point.
CREATE FUNCTION bench.target_results()
    RETURNS TABLE (target text, point text, measured text, verdict text)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    big bigint := (SELECT max(size) FROM bench.read_stats);
    r   record;
    x   double precision;
    y   double precision;
BEGIN
    target := 'real-time job_status under 5,000 updates/s: <= 1 ms median, <= 5 ms p99 (client)';
    point := to_char(big, 'FM999,999,999') || ' objects';
    x := bench.rmed(big, 'on', 'status_live');
    y := bench.rp99(big, 'on', 'status_live');
    measured := coalesce(bench.fmt(x) || ' median, ' || bench.fmt(y) || ' p99 (counters off: ' ||
                         bench.fmt(bench.rmed(big, 'off', 'status_live')) || ' median)', 'not measured');
    verdict := CASE WHEN x IS NULL THEN 'NOT MEASURED' WHEN x <= 1 AND y <= 5 THEN 'PASS' ELSE 'MISS' END;
    RETURN NEXT;

    target := 'real-time job_status within 5x of the cached read (aim)';
    x := bench.rmed(big, 'on', 'status_live') / bench.rmed(big, 'on', 'status_cached');
    measured := coalesce(bench.fmtx(x) || ' (' || bench.fmt(bench.rmed(big, 'on', 'status_live')) || ' vs ' ||
                         bench.fmt(bench.rmed(big, 'on', 'status_cached')) || ')', 'not measured');
    verdict := CASE WHEN x IS NULL THEN 'NOT MEASURED' WHEN x <= 5 THEN 'PASS' ELSE 'MISS (aim only)' END;
    RETURN NEXT;

    target := 'job_summary for one job <= 1 ms (median, client, under the write load)';
    x := bench.rmed(big, 'on', 'summary');
    measured := coalesce(bench.fmt(x) || ' median, ' || bench.fmt(bench.rp99(big, 'on', 'summary')) ||
                         ' p99 (counters off: ' || bench.fmt(bench.rmed(big, 'off', 'summary')) || ')', 'not measured');
    verdict := CASE WHEN x IS NULL THEN 'NOT MEASURED' WHEN x <= 1 THEN 'PASS' ELSE 'MISS' END;
    RETURN NEXT;

    FOR r IN SELECT * FROM bench.write_stats ORDER BY first_seq LOOP
        IF r.scenario LIKE 'update%' THEN
            target := 'per-object status UPDATE >= 95% of plain tables and of counters off';
            x := least(r.on_tps / r.plain_tps, r.on_tps / r.off_tps);
            y := least(r.paired_on_plain, r.paired_on_off);
        ELSE
            target := 'batch inserts >= 95% of plain tables';
            x := r.on_tps / r.plain_tps;
            y := r.paired_on_plain;
        END IF;
        point := r.scenario;
        measured := 'on/plain ' || bench.pct(r.on_tps / r.plain_tps) || ', on/off ' || bench.pct(r.on_tps / r.off_tps) ||
                    ' (medians; paired ' || bench.pct(r.paired_on_plain) || ', ' || bench.pct(r.paired_on_off) ||
                    '; run-to-run spread ' || bench.pct(r.spread) || ')';
        verdict := CASE
            WHEN x >= 0.95 AND coalesce(y >= 0.95, true) THEN 'PASS'
            WHEN x < 0.95 AND coalesce(y < 0.95, true) AND x < 1 - r.spread THEN 'MISS'
            ELSE 'INCONCLUSIVE (within the run-to-run spread, or medians and pairs disagree)' END;
        RETURN NEXT;
    END LOOP;

    target := 'refresh_job_progress() <= 10% of the 1.0 path's (counters off) and <= 5% of the note''s REFRESH CONCURRENTLY';
    point := bench.meta_get('data_short');
    x := bench.refmed('refresh_on') / bench.refmed('refresh_off');
    y := bench.refmed('refresh_on') / bench.refmed('refresh_note');
    measured := coalesce(bench.fmt(bench.refmed('refresh_on')) || ': ' || bench.pct(x) || ' of ' ||
                         bench.fmt(bench.refmed('refresh_off')) || ', ' || bench.pct(y) || ' of ' ||
                         bench.fmt(bench.refmed('refresh_note')), 'not measured');
    verdict := CASE WHEN x IS NULL OR y IS NULL THEN 'NOT MEASURED' WHEN x <= 0.10 AND y <= 0.05 THEN 'PASS' ELSE 'MISS' END;
    RETURN NEXT;

    target := 'pending deltas between folds bounded by the cadence (worker, fold_interval 100ms)';
    point := '5,000 updates/s';
    SELECT 'median ' || round(median) || ', p99 ' || round(p99) || ', max ' || max || ' rows (' || n || ' samples)'
      INTO measured FROM bench.pending_stats WHERE mode = 'worker';
    x := (SELECT p99 FROM bench.pending_stats WHERE mode = 'worker');
    -- 5,000 changes/s x 0.1 s = 500 rows per interval; bounded means: not growing past a few intervals
    verdict := CASE WHEN x IS NULL THEN 'NOT MEASURED' WHEN x <= 5 * 500 THEN 'PASS' ELSE 'MISS' END;
    measured := coalesce(measured, 'not measured');
    RETURN NEXT;
END;
$$;

CREATE FUNCTION bench.chart_data()
    RETURNS TABLE (size bigint, live_on double precision, live_on_p99 double precision,
                   summary_on double precision, cached_on double precision,
                   live_off double precision, summary_off double precision)
    LANGUAGE sql STABLE AS $$
    SELECT size,
           max(median) FILTER (WHERE counters = 'on' AND kind = 'status_live'),
           max(p99) FILTER (WHERE counters = 'on' AND kind = 'status_live'),
           max(median) FILTER (WHERE counters = 'on' AND kind = 'summary'),
           max(median) FILTER (WHERE counters = 'on' AND kind = 'status_cached'),
           max(median) FILTER (WHERE counters = 'off' AND kind = 'status_live'),
           max(median) FILTER (WHERE counters = 'off' AND kind = 'summary')
    FROM bench.read_stats GROUP BY size ORDER BY size;
$$;
