-- Prints the Markdown body of the report (psql -At). The header (machine, settings, command) is
-- written by run.sh; the definitions used here are in report.sql.

SELECT '## Reads: one job''s summary, by job size';
SELECT '';
SELECT 'Per execution, inside the server (static plpgsql SQL = cached plans, like prepared '
       'statements; no client round trip). Cells: median / p95 (n = samples). '
       '"vs note": the note''s job_summary median divided by this one; '
       '"vs lookup": job_status cached median divided by the direct job_progress lookup median.';
SELECT '';
SELECT '| job size (objects) | note''s job_summary | extension job_summary | vs note | '
       'job_progress lookup | job_status cached | vs lookup | job_status real time | vs note |';
SELECT '|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s |',
              to_char(size, 'FM999,999,999'),
              bench.cell('objects', size, 'note_summary'),
              bench.cell('objects', size, 'ext_summary'),
              bench.fmtx(bench.med('objects', size, 'note_summary') / bench.med('objects', size, 'ext_summary')) || ' faster',
              bench.cell('objects', size, 'direct_lookup'),
              bench.cell('objects', size, 'status_cached'),
              bench.fmtx(bench.med('objects', size, 'status_cached') / bench.med('objects', size, 'direct_lookup')),
              bench.cell('objects', size, 'status_live'),
              bench.fmtx(bench.med('objects', size, 'note_summary') / bench.med('objects', size, 'status_live')) || ' faster')
FROM (SELECT DISTINCT size FROM bench.stats WHERE dim = 'objects') s
ORDER BY size;
SELECT '';
SELECT '';
SELECT 'The two cached reads as a client sees them: pgbench -M prepared, one connection over the '
       'Unix socket, one statement per transaction, per-transaction latency (pgbench --log), '
       'chunks alternating between the two.';
SELECT '';
SELECT '| job size (objects) | job_progress lookup | job_status cached | vs lookup |';
SELECT '|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s |',
              to_char(size, 'FM999,999,999'),
              bench.cell('objects', size, 'client_direct_lookup'),
              bench.cell('objects', size, 'client_status_cached'),
              bench.fmtx(bench.med('objects', size, 'client_status_cached') / bench.med('objects', size, 'client_direct_lookup')))
FROM (SELECT DISTINCT size FROM bench.stats WHERE dim = 'objects' AND kind = 'client_direct_lookup') s
ORDER BY size;
SELECT '';
SELECT 'The design note''s published figures: job_summary 50 ms / 500 ms / 5 s for 1K / 100K / 1M '
       'objects; job_progress 10 to 50 ms at any size.';
SELECT '';

SELECT '## Refresh of job_progress, by job count';
SELECT '';
SELECT 'Each sample: the statement and its COMMIT, in its own transaction; before each pair the '
       'same churn (' || bench.meta_get('churn') || ' random objects picked, those queued or '
       'processing move one status on), so that both refreshes have the same differences to apply; '
       'the two kinds alternate ABBA. '
       '"worker": refreshes made by the background worker (s3scan_jobs.refresh_interval = 1s for a few '
       'seconds), durations as the worker recorded them in refresh_history, no churn in between.';
SELECT '';
SELECT '| jobs | objects | note''s REFRESH ... CONCURRENTLY | refresh_job_progress() | extension / note | worker refresh |';
SELECT '|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s |',
              to_char(size, 'FM999,999,999'),
              to_char(bench.meta_get('objects_at_jobs:' || size)::bigint, 'FM999,999,999'),
              bench.cell('jobs', size, 'refresh_note'),
              bench.cell('jobs', size, 'refresh_ext'),
              bench.fmtx(bench.med('jobs', size, 'refresh_ext') / bench.med('jobs', size, 'refresh_note')),
              coalesce(bench.cell('jobs', size, 'refresh_worker'), '-'))
FROM (SELECT DISTINCT size FROM bench.stats WHERE dim = 'jobs') s
ORDER BY size;
SELECT '';
SELECT 'The design note''s published figures: 100 ms / 1 s / 10 s for 10K / 100K / 1M jobs.';
SELECT '';

SELECT '## Writes: the clients'' statements, pgbench';
SELECT '';
SELECT format('%s clients, %s threads, -M prepared, %s s per run, synchronous_commit = off (CPU-bound: '
              'the commit flush would hide differences), runs alternating ABBA between the database '
              'with the extension and the one with the same tables made by plain SQL (plpgsql '
              'updated_at triggers), then runs with both at once. Each database: one job of %s objects and %s jobs of %s objects, '
              'findings on every 50th object.',
              bench.meta_get('w_clients'), bench.meta_get('w_threads'), bench.meta_get('w_duration'),
              to_char(bench.meta_get('w_big')::bigint, 'FM999,999,999'),
              to_char(bench.meta_get('w_jobs')::bigint, 'FM999,999,999'), bench.meta_get('w_per'));
SELECT '';
SELECT '| scenario | transaction | runs each | plain SQL tps: median (min-max) | extension tps: median (min-max) | extension vs plain | run-to-run spread | both at once: extension vs plain |';
SELECT '|---|---|---:|---:|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s (%s-%s) | %s (%s-%s) | %s%% | %s%% | %s |',
              scenario, bench.meta_get('scenario:' || scenario), runs,
              round(plain_tps::numeric), round(plain_min::numeric), round(plain_max::numeric),
              round(ext_tps::numeric), round(ext_min::numeric), round(ext_max::numeric),
              to_char(100 * (ext_tps / plain_tps - 1), 'FMS990.0'),
              round((100 * noise)::numeric),
              coalesce(to_char(100 * (sim_ratio - 1), 'FMS990.0') || '% (' || sim_runs || ' runs)', '-'))
FROM bench.write_stats
ORDER BY first_seq;
SELECT '';
SELECT format('Load average (1, 5, 15 min) before the writes: %s; after: %s. "run-to-run spread": '
              '(max - min) / median over the runs of one database, the larger of the two; a '
              'difference smaller than it is not resolved. "both at once": both databases driven '
              'at the same time with %s clients each, so that other load on the machine hits both '
              'alike; median ratio of the pairs. The two databases differ in the BEFORE UPDATE '
              'updated_at trigger (C in the extension, plpgsql in the plain one) and in the '
              'extension''s counter triggers (statement triggers on the inserts, updates, deletes '
              'and truncates of job_objects and findings): every scenario pays the counters, the '
              'updates also the updated_at trigger (the Checks section lists both databases'' '
              'triggers).',
              bench.meta_get('load_before_writes'), bench.meta_get('load_after_writes'),
              bench.meta_get('w_clients'));
SELECT '';

SELECT '## Targets';
SELECT '';
SELECT '| target | at | measured | verdict |';
SELECT '|---|---|---|---|';
SELECT format('| %s | %s | %s | **%s** |', target, point, measured, verdict)
FROM bench.target_results();
SELECT '';

SELECT '## Checks';
SELECT '';
SELECT format('- %s %s%s', CASE WHEN ok THEN 'OK' ELSE '**MISMATCH**' END, check_name,
              coalesce(': ' || detail, ''))
FROM bench.checks;
SELECT format('- %s', value) FROM bench.meta WHERE key LIKE 'note:%' ORDER BY key;
