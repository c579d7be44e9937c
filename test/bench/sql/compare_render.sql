-- Prints the Markdown body of compare_system.sh's report (psql -At, results database).

SELECT '- machine load: at start ' || (SELECT value FROM meta WHERE key = 'load_start') ||
       '; after the reads ' || coalesce((SELECT value FROM meta WHERE key = 'load_after_reads'), '-') ||
       '; at end ' || coalesce((SELECT value FROM meta WHERE key = 'load_end'), '-');
SELECT '- data: ' || (SELECT value FROM meta WHERE key = 'data') || ' in each database; database sizes: system ' ||
       (SELECT value FROM meta WHERE key = 'size_system') || ', ext ' || (SELECT value FROM meta WHERE key = 'size_ext');
SELECT '- same rows in both: ' || (SELECT value FROM meta WHERE key = 'same_data');
SELECT '- read parameters: ' || (SELECT value FROM meta WHERE key = 'params');
SELECT '';
SELECT '## Reads';
SELECT '';
SELECT 'Latency of one execution as a client sees it: pgbench -n -M prepared, one connection over '
       'the Unix socket, per-transaction latency (--log); a transaction is the whole script, '
       'so where the system''s API makes several statements (round trips) they are all counted. '
       'Each read runs in chunks alternating system / ext (ABBA), after warm-up (6 executions, past '
       'the plan cache''s custom plans; one for reads of 200 ms or more). Medians over all samples. '
       '"noise": how far apart the chunk medians of one database are (the larger of the two, '
       'max/min - 1); "SLOWER" marks a read where ext / system exceeds 1 + noise.';
SELECT '';
SELECT '| # | read | system | ext | ext / system | noise | verdict | n (sys/ext) |';
SELECT '|---:|---|---:|---:|---:|---:|---|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s%% | %s | %s/%s |', ord, descr, fmt_us(sys_us), fmt_us(ext_us),
              to_char(ratio, 'FM990.00') || '×', round(noise * 100), 
              CASE WHEN verdict = 'SLOWER' THEN '**SLOWER**' ELSE verdict END, sys_n, ext_n)
FROM read_stats ORDER BY ord;
SELECT '';
SELECT '### Plans (scan nodes, EXPLAIN with the values in place of the parameters)';
SELECT '';
SELECT '| # | read | system | ext |';
SELECT '|---:|---|---|---|';
SELECT format('| %s | %s | %s | %s |', r.ord, r.name,
              replace(coalesce(s.plan, ''), ';', '; '), replace(coalesce(e.plan, ''), ';', '; '))
FROM reads r LEFT JOIN plans s ON s.name = r.name AND s.db = 'system'
LEFT JOIN plans e ON e.name = r.name AND e.db = 'ext'
ORDER BY r.ord;
SELECT '';
SELECT '## Writes: what each index the branch adds costs';
SELECT '';
SELECT 'pgbench on the ext database (its 10M objects), 8 clients, 2 threads, -M prepared, '
       'synchronous_commit = off, runs alternating between the extension''s indexes all present '
       'and dropped (order all, none, -jobs_created_at, -jobs_execution_arn, candidate, then the reverse, per '
       'round; then the same with the candidate index of the real-time reads added, for the two '
       'job_objects scenarios). update: per-object status UPDATE, own transaction, all clients on the 1M-object job; '
       'objects: 1000 single-row INSERTs ON CONFLICT DO NOTHING in one transaction, random job; '
       'findings: 100 INSERTs ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING in one '
       'transaction, random job; create_job: one INSERT INTO jobs; refresh: refresh_job_progress() '
       'after the same churn (2000 objects of the 1M-object job set to succeeded), duration in ms. '
       '"cost": throughput lost with the index (refresh: time added); "spread": the larger '
       'run-to-run (max - min) / median of the two sets.';
SELECT '';
SELECT '| scenario | index | runs each | with: median (min-max) | without: median (min-max) | cost | spread | verdict |';
SELECT '|---|---|---:|---:|---:|---:|---:|---|';
SELECT format('| %s | %s | %s | %s (%s-%s) | %s (%s-%s) | %s%% | %s%% | %s |', scenario, idx, n,
              round(with_med::numeric, 1), round(with_lo::numeric, 1), round(with_hi::numeric, 1),
              round(without_med::numeric, 1), round(without_lo::numeric, 1), round(without_hi::numeric, 1),
              to_char(cost * 100, 'FMS990.0'), round(spread * 100),
              CASE WHEN abs(cost) <= spread THEN 'within noise'
                   WHEN cost > 0 THEN '**costs ' || to_char(cost * 100, 'FM990.0') || '%**'
                   ELSE 'faster with it (noise)' END)
FROM write_stats ORDER BY ord;
SELECT '';
SELECT '### Write runs';
SELECT '';
SELECT '| scenario | indexes | rep | tps (refresh: ms) | load average at the end of the run |';
SELECT '|---|---|---:|---:|---|';
SELECT format('| %s | %s | %s | %s | %s |', scenario, config, rep, round(value::numeric, 1), load)
FROM write_runs ORDER BY scenario, rep, config;
