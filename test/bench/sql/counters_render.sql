-- Prints the Markdown body of counters.sh's report (psql -At, database bench). The header
-- (machine, settings, command, load) is written by counters.sh; definitions: counters_measure.sql.

SELECT '## Targets';
SELECT '';
SELECT '| target | at | measured | verdict |';
SELECT '|---|---|---|---|';
SELECT format('| %s | %s | %s | **%s** |', target, point, measured, verdict) FROM bench.target_results();
SELECT '';

SELECT '## 1. Real-time reads under write load, by job size';
SELECT '';
SELECT format('While %s pgbench clients (-R %s in total, -M prepared, synchronous_commit = off) send '
              'the scanner''s per-object status UPDATE into the job that is read (random objects of it), '
              'one more client runs one kind of read at a time, back to back (pgbench -M prepared, one '
              'connection, Unix socket, per-transaction latency from --log: what a client sees, round '
              'trip included). Kinds alternate in chunks of %s s (%s per kind and block); blocks in the '
              'order %s, each with its own write load. "counters off" is set_counter_maintenance(false): '
              'the views aggregate the base tables, the 1.0 path. Cells: median / p99 (n). '
              'The first reads of each chunk (plan cache warm-up) are not counted.',
              bench.meta_get('r_clients'), bench.meta_get('r_rate'), bench.meta_get('r_chunk'),
              bench.meta_get('r_chunks'), bench.meta_get('r_blocks'));
SELECT '';
SELECT '| objects in the job | job_status(id, true), on | job_summary, on | job_status(id) cached, on | live / cached | job_status(id, true), off | job_summary, off | off / on (live) |';
SELECT '|---:|---:|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |',
              to_char(size, 'FM999,999,999'),
              coalesce(bench.rcell(size, 'on', 'status_live'), '-'),
              coalesce(bench.rcell(size, 'on', 'summary'), '-'),
              coalesce(bench.rcell(size, 'on', 'status_cached'), '-'),
              bench.fmtx(bench.rmed(size, 'on', 'status_live') / bench.rmed(size, 'on', 'status_cached')),
              coalesce(bench.rcell(size, 'off', 'status_live'), '-'),
              coalesce(bench.rcell(size, 'off', 'summary'), '-'),
              bench.fmtx(bench.rmed(size, 'off', 'status_live') / bench.rmed(size, 'on', 'status_live')))
FROM (SELECT DISTINCT size FROM bench.read_stats) s ORDER BY size;
SELECT '';
SELECT 'The write load each block actually got (the writers'' pgbench over the whole block: warm-up, '
       'the reads, a margin; the target is the -R rate; "lag": how late pgbench started transactions '
       'on average, large when the server could not keep up) and the largest number of pending delta '
       'rows seen between two read chunks:';
SELECT '';
SELECT '| objects | counters | block | seconds | updates/s | lag | pending deltas, max seen |';
SELECT '|---:|---|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s |', to_char(size, 'FM999,999,999'), counters, block,
              round(seconds::numeric), round(tps::numeric), bench.fmt(lag_ms), coalesce(pending_max::text, '-'))
FROM bench.read_load ORDER BY block, size;
SELECT '';
SELECT 'Block-to-block spread of the medians (counters on ran in ' ||
       (SELECT count(DISTINCT block) FROM bench.read_lat WHERE counters = 'on') || ' blocks): ' ||
       coalesce((SELECT string_agg(to_char(size, 'FM999,999,999') || ' ' || kind || ' ' || bench.pct(block_spread), ', ' ORDER BY size, kind)
                 FROM bench.read_stats WHERE counters = 'on' AND block_spread IS NOT NULL AND block_spread > 0), 'one block') || '.';
SELECT '';

SELECT '## 2. Write cost: counters on, counters off, the plain tables';
SELECT '';
SELECT format('pgbench, %s clients, %s threads, -M prepared, synchronous_commit = off (CPU-bound), unthrottled; '
              'all clients on one job of %s objects (plus %s jobs of %s objects). "on" / "off": the '
              'database w_ext (CREATE EXTENSION) with set_counter_maintenance(true / false), the '
              'refresh worker folding it every fold_interval; "plain": the database w_plain '
              '(sql/plain_schema.sql: the same tables by plain SQL, the clients'' plpgsql updated_at '
              'trigger). Each round runs the three in the order A B C C B A (rotated every round). '
              'Runs: %s s for the UPDATE, %s s for the inserts. "paired": median over rounds of the '
              'ratio of the two runs of the same round; "spread": largest (max - min) / median of one '
              'configuration.',
              bench.meta_get('w_clients'), bench.meta_get('w_threads'),
              to_char(bench.meta_get('w_big')::bigint, 'FM999,999,999'), bench.meta_get('w_jobs'),
              bench.meta_get('w_per'), bench.meta_get('w_upd_s'), bench.meta_get('w_ins_s'));
SELECT '';
SELECT '| scenario | transaction | runs each | on tps | off tps | plain tps | on / off | on / plain | off / plain | paired on/off, on/plain | spread |';
SELECT '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s (%s-%s) | %s (%s-%s) | %s (%s-%s) | %s | %s | %s | %s, %s | %s |',
              scenario, bench.meta_get('scenario:' || scenario), runs,
              round(on_tps::numeric), round(on_lo::numeric), round(on_hi::numeric),
              round(off_tps::numeric), round(off_lo::numeric), round(off_hi::numeric),
              round(plain_tps::numeric), round(plain_lo::numeric), round(plain_hi::numeric),
              bench.pct(on_tps / off_tps), bench.pct(on_tps / plain_tps), bench.pct(off_tps / plain_tps),
              bench.pct(paired_on_off), bench.pct(paired_on_plain), bench.pct(spread))
FROM bench.write_stats ORDER BY first_seq;
SELECT '';
SELECT 'Failed transactions in the write runs: ' || coalesce(sum(failed), 0) FROM bench.write_runs;
SELECT '';
SELECT '<details><summary>every write run</summary>';
SELECT '';
SELECT '| # | scenario | config | round | tps | avg latency |';
SELECT '|---:|---|---|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s |', seq, scenario, config, round, round(tps::numeric, 1), bench.fmt(lat_ms))
FROM bench.write_runs ORDER BY seq;
SELECT '';
SELECT '</details>';
SELECT '';

SELECT '## 3. Fold cost under 5,000 updates/s';
SELECT '';
SELECT format('%s clients send the per-object status UPDATE at -R %s into the %s-object job for %s s, '
              'twice: "worker": the refresh worker folds every s3scan_jobs.fold_interval = 100ms; '
              '"manual": fold_interval = 0 and a client runs SELECT fold_job_counters() every 100 ms '
              '(timed inside the server, without the commit). Meanwhile another client counts '
              'job_counter_deltas (all pending rows, every job) every ~5 ms.',
              bench.meta_get('r_clients'), bench.meta_get('r_rate'),
              to_char(bench.meta_get('f_size')::bigint, 'FM999,999,999'), bench.meta_get('f_seconds'));
SELECT '';
SELECT '| folding | pending deltas: median | p99 | max | samples | writers: tps | avg latency | schedule lag |';
SELECT '|---|---:|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |', p.mode, round(p.median), round(p.p99), p.max, p.n,
              coalesce(round(l.tps::numeric)::text, '-'), bench.fmt(l.lat_ms), bench.fmt(l.lag_ms))
FROM bench.pending_stats p LEFT JOIN bench.fold_load l USING (mode) ORDER BY p.mode DESC;
SELECT '';
SELECT '| folding | folds | duration: median | p99 | max | rows per fold: median | max | rows/s folded |';
SELECT '|---|---:|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |', mode, n, bench.fmt(median_ms), bench.fmt(p99_ms), bench.fmt(max_ms),
              round(median_rows), max_rows,
              round((rows / nullif((SELECT max(t) - min(t) FROM bench.folds f WHERE f.mode = s.mode), 0))::numeric))
FROM bench.fold_stats s ORDER BY mode;
SELECT '';
SELECT '- worker''s own statistics after the run: ' || coalesce(bench.meta_get('worker_fold_stats'), 'none exposed');
SELECT '';

SELECT '## 4. Refresh at ' || bench.meta_get('data_short');
SELECT '';
SELECT 'Each refresh in its own transaction, timed to its COMMIT, after the same churn ('
       || bench.meta_get('churn') || ' random objects picked, those queued or processing move one '
       'status on, in one statement); per round: counters on, ABBA pairs of refresh_job_progress() and '
       'the note''s REFRESH MATERIALIZED VIEW CONCURRENTLY (test/bench/sql/baseline_views.sql), then '
       'counters off (the 1.0 path), the same. fold_interval = 0 while this runs, so every '
       'refresh_job_progress() with counters on folds the churn itself. "maintenance on": '
       'set_counter_maintenance(true), which recounts every job while writers wait.';
SELECT '';
SELECT '| what | runs | median | min-max | vs note''s REFRESH CONCURRENTLY | vs refresh with counters off |';
SELECT '|---|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s-%s | %s | %s |',
              CASE kind WHEN 'refresh_on' THEN 'refresh_job_progress(), counters on'
                        WHEN 'refresh_off' THEN 'refresh_job_progress(), counters off (1.0 path)'
                        WHEN 'refresh_note' THEN 'note''s REFRESH MATERIALIZED VIEW CONCURRENTLY'
                        WHEN 'refresh_on_jit_off' THEN 'refresh_job_progress(), counters on, SET jit = off'
                        WHEN 'refresh_off_jit_off' THEN 'refresh_job_progress(), counters off, SET jit = off'
                        WHEN 'matview_plain_on_jit_off' THEN 'REFRESH MATERIALIZED VIEW job_progress (not concurrently), counters on, jit off'
                        WHEN 'floor_concurrently_jit_off' THEN 'floor: REFRESH CONCURRENTLY of a matview selecting job_progress''s rows from a table (no counting), jit off'
                        WHEN 'maintenance_on' THEN 'set_counter_maintenance(true) (recount)'
                        WHEN 'maintenance_off' THEN 'set_counter_maintenance(false)' END,
              n, bench.fmt(median), bench.fmt(lo), bench.fmt(hi),
              CASE WHEN kind LIKE 'refresh%' THEN bench.pct(median / bench.refmed('refresh_note')) ELSE '' END,
              CASE WHEN kind LIKE 'refresh%' THEN bench.pct(median / bench.refmed('refresh_off')) ELSE '' END)
FROM bench.refresh_stats
ORDER BY array_position(ARRAY['refresh_on', 'refresh_off', 'refresh_note', 'refresh_on_jit_off', 'refresh_off_jit_off',
                              'matview_plain_on_jit_off', 'floor_concurrently_jit_off', 'maintenance_on', 'maintenance_off'], kind);
SELECT '';
SELECT '- plans of the refresh''s query (SELECT * FROM job_progress_live, counters on; EXPLAIN ANALYZE, default settings): ' ||
       coalesce(bench.meta_get('refresh_plan'), '-');
SELECT '';
SELECT '- refresh outcomes: ' || coalesce(string_agg(DISTINCT kind || ' ' || note, ', '), '-')
FROM bench.refresh WHERE note IS NOT NULL;
SELECT '';

SELECT '## Checks';
SELECT '';
SELECT format('- %s %s%s', CASE WHEN ok THEN 'OK' ELSE '**FAILED**' END, check_name, coalesce(': ' || detail, ''))
FROM bench.checks;
SELECT format('- %s', value) FROM bench.meta WHERE key LIKE 'note:%' ORDER BY key;
