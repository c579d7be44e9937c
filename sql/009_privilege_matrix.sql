--
-- 009_privilege_matrix: what each kind of role can do with every function, view, table, REFRESH
-- and setting of the extension, run for real as that role: 'allowed' or the SQLSTATE it gets.
-- The README's Security section states this matrix. Roles: the owner (the superuser who created
-- the extension), another superuser, the application role with the README's grants, a read-only
-- role, a delegated refresher (EXECUTE on refresh_job_progress() only), a pg_monitor member and a
-- role with nothing.
--
CREATE EXTENSION s3scan_jobs;
INSERT INTO jobs (job_id, bucket) VALUES ('12000000-0000-4000-8000-000000000001', 'b');
INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('12000000-0000-4000-8000-000000000001', 'b', 'k', 'e');
SELECT outcome FROM refresh_job_progress();
-- what the matrix must leave as it found it: this database's worker (started at server start by
-- the preloaded library, test/regress.conf), the tables, the log and the history
SELECT pid AS worker_pid_before FROM refresh_worker_status WHERE database = current_database() \gset
SELECT (SELECT count(*) FROM jobs) AS jobs_before, (SELECT count(*) FROM job_objects) AS objects_before,
       (SELECT count(*) FROM findings) AS findings_before,
       (SELECT max(id) FROM refresh_history) AS history_before,
       (SELECT last_refreshed_at FROM materialized_view_refresh_log) AS log_before \gset

CREATE ROLE regress_m_super SUPERUSER;
CREATE ROLE regress_m_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO regress_m_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO regress_m_app;
GRANT SELECT ON job_summary, job_progress, job_progress_live, active_jobs_progress, job_statistics,
                materialized_view_refresh_log TO regress_m_app;
GRANT EXECUTE ON FUNCTION job_status(uuid, boolean) TO regress_m_app;
CREATE ROLE regress_m_readonly;
GRANT SELECT ON jobs, job_objects, findings, job_summary, job_progress, job_progress_live,
                active_jobs_progress, job_statistics, materialized_view_refresh_log, refresh_history TO regress_m_readonly;
CREATE ROLE regress_m_refresher;
GRANT EXECUTE ON FUNCTION refresh_job_progress() TO regress_m_refresher;
CREATE ROLE regress_m_monitor IN ROLE pg_monitor;
CREATE ROLE regress_m_nothing;

-- Runs q as role r in a subtransaction that is always rolled back: 'allowed' or the SQLSTATE.
CREATE FUNCTION pg_temp.try(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', r);
        EXECUTE q;
        RAISE EXCEPTION USING ERRCODE = 'S3OK0';
    EXCEPTION WHEN OTHERS THEN
        RETURN CASE WHEN SQLSTATE = 'S3OK0' THEN 'allowed' ELSE SQLSTATE END;
    END;
END
$$;

CREATE TEMP TABLE roles (n int, who text, r text);
INSERT INTO roles VALUES (1, 'owner', current_user), (2, 'superuser', 'regress_m_super'),
    (3, 'app', 'regress_m_app'), (4, 'readonly', 'regress_m_readonly'),
    (5, 'refresher', 'regress_m_refresher'), (6, 'monitor', 'regress_m_monitor'),
    (7, 'nothing', 'regress_m_nothing');
CREATE TEMP TABLE actions (n serial, what text, q text);
INSERT INTO actions (what, q) VALUES
    ('job_status(id)',              $q$SELECT * FROM job_status('12000000-0000-4000-8000-000000000001')$q$),
    ('job_status(id, true)',        $q$SELECT * FROM job_status('12000000-0000-4000-8000-000000000001', true)$q$),
    ('refresh_job_progress()',      'SELECT refresh_job_progress()'),
    ('REFRESH job_progress',        'REFRESH MATERIALIZED VIEW job_progress'),
    ('REFRESH CONCURRENTLY',        'REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress'),
    -- (no worker is stopped or started: the call is planned and its EXECUTE privilege checked,
    --  as for every call, but WHERE false never runs it)
    ('refresh_worker_stop()',       'SELECT refresh_worker_stop() WHERE false'),
    ('refresh_worker_start()',      'SELECT refresh_worker_start() WHERE false'),
    ('refresh_worker_status',       'SELECT * FROM refresh_worker_status'),
    ('refresh_worker_status_all()', 'SELECT * FROM refresh_worker_status_all()'),
    ('SELECT job_summary',          'SELECT * FROM job_summary'),
    ('SELECT job_progress_live',    'SELECT * FROM job_progress_live'),
    ('SELECT job_progress',         'SELECT * FROM job_progress'),
    ('SELECT active_jobs_progress', 'SELECT * FROM active_jobs_progress'),
    ('SELECT job_statistics',       'SELECT * FROM job_statistics'),
    ('SELECT jobs',                 'SELECT * FROM jobs'),
    ('INSERT jobs',                 $q$INSERT INTO jobs (job_id, bucket) VALUES ('12000000-0000-4000-8000-000000000002', 'b')$q$),
    ('UPDATE jobs',                 $q$UPDATE jobs SET bucket = 'x' WHERE false$q$),
    ('DELETE jobs',                 'DELETE FROM jobs WHERE false'),
    ('SELECT job_objects',          'SELECT * FROM job_objects'),
    ('INSERT job_objects',          $q$INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('12000000-0000-4000-8000-000000000001', 'b', 'k2', 'e')$q$),
    ('UPDATE job_objects',          $q$UPDATE job_objects SET status = 'failed' WHERE false$q$),
    ('DELETE job_objects',          'DELETE FROM job_objects WHERE false'),
    ('SELECT findings',             'SELECT * FROM findings'),
    ('INSERT findings',             $q$INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES ('12000000-0000-4000-8000-000000000001', 'b', 'k', 'e', 'd', '*', 1)$q$),
    ('UPDATE findings',             $q$UPDATE findings SET detector = 'x' WHERE false$q$),
    ('DELETE findings',             'DELETE FROM findings WHERE false'),
    ('SELECT refresh log',          'SELECT * FROM materialized_view_refresh_log'),
    ('INSERT refresh log',          $q$INSERT INTO materialized_view_refresh_log (view_name) VALUES ('x')$q$),
    ('UPDATE refresh log',          $q$UPDATE materialized_view_refresh_log SET total_jobs = 0 WHERE false$q$),
    ('DELETE refresh log',          'DELETE FROM materialized_view_refresh_log WHERE false'),
    ('SELECT refresh_history',      'SELECT * FROM refresh_history'),
    ('INSERT refresh_history',      $q$INSERT INTO refresh_history (started_at, duration_ms, outcome, origin) VALUES (now(), 0, 'skipped', 'sql')$q$),
    ('UPDATE refresh_history',      $q$UPDATE refresh_history SET error = 'x' WHERE false$q$),
    ('DELETE refresh_history',      'DELETE FROM refresh_history WHERE false'),
    ('SET history_limit',           'SET s3scan_jobs.history_limit = 5'),
    ('SET refresh_interval',        $q$SET s3scan_jobs.refresh_interval = '5s'$q$),
    ('SET database',                $q$SET s3scan_jobs.database = 'x'$q$),
    ('SET worker_memory_limit',     $q$SET s3scan_jobs.worker_memory_limit = '1MB'$q$),
    ('SET fold_interval',           $q$SET s3scan_jobs.fold_interval = '1s'$q$),
    ('SELECT job_counters',         'SELECT * FROM job_counters'),
    ('INSERT job_counters',         $q$INSERT INTO job_counters VALUES ('12000000-0000-4000-8000-0000000000ff', 1, 1, 0, 0, 0, 0, now())$q$),
    ('SELECT job_counter_deltas',   'SELECT * FROM job_counter_deltas'),
    ('INSERT job_counter_deltas',   $q$INSERT INTO job_counter_deltas VALUES ('12000000-0000-4000-8000-000000000001', 1, 1, 0, 0, 0, 0, now(), false)$q$),
    ('fold_job_counters()',         'SELECT fold_job_counters()'),
    ('verify_job_counters()',       'SELECT * FROM verify_job_counters()'),
    ('repair_job_counters()',       'SELECT repair_job_counters()'),
    ('counter_maintenance()',       'SELECT counter_maintenance()'),
    ('set_counter_maintenance()',   'SELECT set_counter_maintenance(true)');

CREATE TEMP TABLE matrix AS
SELECT a.n AS action_n, a.what, ro.n AS role_n, ro.who, pg_temp.try(ro.r, a.q) AS result
FROM actions a CROSS JOIN roles ro ORDER BY a.n, ro.n;

SELECT what,
       max(result) FILTER (WHERE who = 'owner')     AS owner,
       max(result) FILTER (WHERE who = 'superuser') AS superuser,
       max(result) FILTER (WHERE who = 'app')       AS app,
       max(result) FILTER (WHERE who = 'readonly')  AS readonly,
       max(result) FILTER (WHERE who = 'refresher') AS refresher,
       max(result) FILTER (WHERE who = 'monitor')   AS monitor,
       max(result) FILTER (WHERE who = 'nothing')   AS nothing
FROM matrix GROUP BY action_n, what ORDER BY action_n;

-- The matrix changed nothing: the same worker serves this database, and every row written
-- (jobs, objects, findings, refreshes in the log and the history) was rolled back.
SELECT pid = :worker_pid_before AS same_worker, started_by, state
FROM refresh_worker_status WHERE database = current_database();
SELECT (SELECT count(*) FROM jobs) = :jobs_before AS jobs_unchanged,
       (SELECT count(*) FROM job_objects) = :objects_before AS objects_unchanged,
       (SELECT count(*) FROM findings) = :findings_before AS findings_unchanged,
       (SELECT max(id) FROM refresh_history) = :history_before AS history_unchanged,
       (SELECT last_refreshed_at FROM materialized_view_refresh_log) = :'log_before' AS log_unchanged;

DROP EXTENSION s3scan_jobs;
DROP ROLE regress_m_super, regress_m_app, regress_m_readonly, regress_m_refresher, regress_m_monitor,
          regress_m_nothing;
