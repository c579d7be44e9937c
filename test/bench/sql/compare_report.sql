-- compare_system.sh's results database: what was measured, the samples, and the statistics the
-- report prints (sql/compare_render.sql). Lives in its own database ("results") of the
-- benchmark's server, so that the two measured databases hold nothing but the scanner's rows.

CREATE TABLE meta (key text PRIMARY KEY, value text);

-- One row per kind of read: the statements each database ran (one pgbench script each).
CREATE TABLE reads (
    name       text PRIMARY KEY,
    grp        text NOT NULL,          -- status, findings, note, dashboard
    descr      text NOT NULL,
    system_sql text NOT NULL,
    ext_sql    text NOT NULL,
    ord        integer NOT NULL
);

-- The scan lines of each read's plan, per database (EXPLAIN (COSTS OFF) with the values).
CREATE TABLE plans (name text, db text, plan text);

-- Latency of one pgbench transaction (the whole script, all its round trips), µs.
CREATE UNLOGGED TABLE samples (
    query text NOT NULL,
    db    text NOT NULL,               -- system or ext
    chunk integer NOT NULL,            -- chunks alternate between the two databases
    us    double precision NOT NULL
);

-- Write runs: pgbench tps (refresh: duration in ms), per set of indexes present.
CREATE UNLOGGED TABLE write_runs (
    scenario text NOT NULL,            -- update, objects, findings, create_job, refresh
    config   text NOT NULL,            -- all, none, no_jobs_created, no_jobs_arn
    rep      integer NOT NULL,
    value    double precision NOT NULL,
    load     text
);

-- Median per read and database, over all samples; and noise: how far apart the medians of one
-- database's chunks are (the larger of the two databases' max/min - 1).
CREATE VIEW read_stats AS
WITH chunk AS (
    SELECT query, db, chunk, percentile_cont(0.5) WITHIN GROUP (ORDER BY us) AS med
    FROM samples GROUP BY query, db, chunk
), spread AS (
    SELECT query, max(hi / nullif(lo, 0) - 1) AS noise
    FROM (SELECT query, db, max(med) AS hi, min(med) AS lo FROM chunk GROUP BY query, db) c
    GROUP BY query
), med AS (
    SELECT query,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FILTER (WHERE db = 'system') AS sys_us,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FILTER (WHERE db = 'ext') AS ext_us,
           count(*) FILTER (WHERE db = 'system') AS sys_n,
           count(*) FILTER (WHERE db = 'ext') AS ext_n
    FROM samples GROUP BY query
)
SELECT r.ord, r.name, r.grp, r.descr, m.sys_us, m.ext_us, m.sys_n, m.ext_n,
       m.ext_us / m.sys_us AS ratio, s.noise,
       CASE WHEN m.ext_us / m.sys_us > 1 + s.noise THEN 'SLOWER'
            WHEN m.sys_us / m.ext_us > 1 + s.noise THEN 'faster'
            ELSE 'same (within noise)' END AS verdict
FROM reads r JOIN med m ON m.query = r.name JOIN spread s ON s.query = r.name;

CREATE FUNCTION fmt_us(us double precision) RETURNS text LANGUAGE sql IMMUTABLE RETURN
    CASE WHEN us IS NULL THEN '-'
         WHEN us < 1000 THEN round(us)::text || ' µs'
         WHEN us < 1000000 THEN to_char(us / 1000, 'FM999990.00') || ' ms'
         ELSE to_char(us / 1000000, 'FM999990.00') || ' s' END;

-- Write comparisons: which two sets of indexes, on which scenario.
CREATE VIEW write_stats AS
WITH cmp (ord, scenario, idx, with_cfg, without_cfg) AS (VALUES
    (1, 'findings', 'findings_created_at_idx (the only added index on findings)', 'all', 'none'),
    (2, 'create_job', 'jobs_created_at_idx', 'all', 'no_jobs_created'),
    (3, 'create_job', 'jobs_execution_arn_idx', 'all', 'no_jobs_arn'),
    (4, 'create_job', 'both jobs indexes', 'all', 'none'),
    (5, 'refresh', 'job_progress_created_at_idx (refresh_job_progress(), ms)', 'all', 'none'),
    (6, 'update', 'none on job_objects: all four vs none (noise floor)', 'all', 'none'),
    (7, 'objects', 'none on job_objects: all four vs none (noise floor)', 'all', 'none'),
    (8, 'update', 'candidate job_objects (job_id, status) INCLUDE (updated_at), not in the branch', 'candidate', 'all'),
    (9, 'objects', 'candidate job_objects (job_id, status) INCLUDE (updated_at), not in the branch', 'candidate', 'all')
), per AS (
    SELECT scenario, config, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med, min(value) AS lo, max(value) AS hi
    FROM write_runs GROUP BY scenario, config
)
SELECT c.ord, c.scenario, c.idx, w.n, w.med AS with_med, w.lo AS with_lo, w.hi AS with_hi,
       o.med AS without_med, o.lo AS without_lo, o.hi AS without_hi,
       -- cost: throughput lost with the index (refresh: time added)
       CASE WHEN c.scenario = 'refresh' THEN w.med / o.med - 1 ELSE 1 - w.med / o.med END AS cost,
       greatest((w.hi - w.lo) / w.med, (o.hi - o.lo) / o.med) AS spread
FROM cmp c JOIN per w ON w.scenario = c.scenario AND w.config = c.with_cfg
JOIN per o ON o.scenario = c.scenario AND o.config = c.without_cfg;
