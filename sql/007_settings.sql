--
-- 007_settings: the settings (defaults, units, validation, who may change
-- them) and the refresh_worker_status view.
--
CREATE EXTENSION s3scan_jobs;

-- The settings exist with their documented defaults and units:
-- refresh_interval in seconds, fractions allowed (default 1min), history_limit in rows
-- (default 10000), database a list of names (default 'postgres'), worker_memory_limit in kB
-- (default 64MB). refresh_interval, database and worker_memory_limit are server-wide (reload);
-- history_limit a superuser may also set in a session.
SELECT name, boot_val, unit, vartype, min_val, context
FROM pg_settings WHERE name LIKE 's3scan\_jobs.%' ORDER BY name;

-- This test instance (test/regress.conf) runs with refreshing off, and serves two databases.
SHOW s3scan_jobs.refresh_interval;
SHOW s3scan_jobs.history_limit;
SHOW s3scan_jobs.database;
SHOW s3scan_jobs.worker_memory_limit;

-- refresh_interval is read from the configuration: not settable in a
-- session (55P02 cant_change_runtime_param) ...
\set VERBOSITY sqlstate
SET s3scan_jobs.refresh_interval = '5s';
SET s3scan_jobs.database = 'other';
SET s3scan_jobs.worker_memory_limit = '1MB';
\set VERBOSITY default
SHOW s3scan_jobs.refresh_interval;

-- ... and a value written to the configuration is checked as it is written:
-- units '5s', '1min' or a bare number of seconds are accepted, the rest is
-- refused (22023 invalid_parameter_value). No reload happens here: the
-- worker stays off.
-- (auto_conf shows what postgresql.auto.conf holds for a setting, and whether the server
-- would take it at a reload: pg_file_settings checks the value as a reload would)
CREATE FUNCTION pg_temp.auto_conf(setting_name text)
RETURNS TABLE (in_file text, valid boolean) LANGUAGE sql AS $$
    SELECT setting, error IS NULL FROM pg_file_settings
    WHERE name = setting_name AND sourcefile LIKE '%postgresql.auto.conf'
$$;
-- 0 turns refreshing off (the state of this instance: see refresh_worker_status below)
ALTER SYSTEM SET s3scan_jobs.refresh_interval = 0;
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
ALTER SYSTEM SET s3scan_jobs.refresh_interval = 90;
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '5s';
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1min';
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
-- sub-second intervals are honoured, down to 10ms ...
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '100ms';
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
ALTER SYSTEM SET s3scan_jobs.refresh_interval = 0.25;
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '10ms';
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
-- ... and below that refused, never rounded to 0 (which would silently turn refreshing off):
-- the value written before stays
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '5ms';
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1ms';
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '500us';
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.refresh_interval');
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1min';
\set VERBOSITY sqlstate
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '-1';
ALTER SYSTEM SET s3scan_jobs.refresh_interval = 'often';
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '5 parsecs';
ALTER SYSTEM SET s3scan_jobs.history_limit = -1;
\set VERBOSITY default
-- the last accepted value is what the file holds
SELECT name, setting FROM pg_file_settings
WHERE name LIKE 's3scan\_jobs.%' AND sourcefile LIKE '%postgresql.auto.conf';
ALTER SYSTEM RESET s3scan_jobs.refresh_interval;
SELECT count(*) AS left_in_auto_conf FROM pg_file_settings
WHERE name LIKE 's3scan\_jobs.%' AND sourcefile LIKE '%postgresql.auto.conf';
SHOW s3scan_jobs.refresh_interval;

-- database: a list of names, checked as it is written; a broken list is
-- refused with a detail instead of leaving every database unserved.
ALTER SYSTEM SET s3scan_jobs.database = 'scans, "Other DB"';
ALTER SYSTEM SET s3scan_jobs.database = 'scans,,other';
ALTER SYSTEM SET s3scan_jobs.database = 'scans, "unterminated';
SELECT name, setting FROM pg_file_settings
WHERE name = 's3scan_jobs.database' AND sourcefile LIKE '%postgresql.auto.conf';
-- at most 64 databases: a longer list is refused rather than served in part
SELECT string_agg('db' || g, ',') AS sixty_four FROM generate_series(1, 64) g \gset
SELECT string_agg('db' || g, ',') AS sixty_five FROM generate_series(1, 65) g \gset
ALTER SYSTEM SET s3scan_jobs.database = :'sixty_four';
SELECT in_file = :'sixty_four' AS sixty_four_names_in_file, valid
FROM pg_temp.auto_conf('s3scan_jobs.database');
ALTER SYSTEM SET s3scan_jobs.database = :'sixty_five';
-- (the 64 stay)
SELECT in_file = :'sixty_four' AS sixty_four_names_in_file, valid
FROM pg_temp.auto_conf('s3scan_jobs.database');
ALTER SYSTEM RESET s3scan_jobs.database;

-- worker_memory_limit: a size; 0 means no limit
ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '128MB';
ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = 0;
\set VERBOSITY sqlstate
ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '-1kB';
ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = 'lots';
\set VERBOSITY default
SELECT * FROM pg_temp.auto_conf('s3scan_jobs.worker_memory_limit');
ALTER SYSTEM RESET s3scan_jobs.worker_memory_limit;

-- history_limit: a superuser may set it in a session; bad values refused.
SET s3scan_jobs.history_limit = 50;
SHOW s3scan_jobs.history_limit;
SET s3scan_jobs.history_limit = '1000';
SHOW s3scan_jobs.history_limit;
\set VERBOSITY sqlstate
SET s3scan_jobs.history_limit = -1;
SET s3scan_jobs.history_limit = 'many';
\set VERBOSITY default
SHOW s3scan_jobs.history_limit;
RESET s3scan_jobs.history_limit;
SHOW s3scan_jobs.history_limit;

-- an ordinary role may not change history_limit (42501), nor, like anyone,
-- the server-wide settings in a session (55P02)
CREATE ROLE regress_s3scan_settings;
SET ROLE regress_s3scan_settings;
\set VERBOSITY sqlstate
SET s3scan_jobs.history_limit = 1;
SET s3scan_jobs.database = 'other';
\set VERBOSITY default
SHOW s3scan_jobs.history_limit;
RESET ROLE;
DROP ROLE regress_s3scan_settings;

-- refresh_worker_status: its columns, and it can be queried.
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = 'refresh_worker_status'::regclass AND attnum > 0
ORDER BY attnum;
-- This instance (test/regress.conf) serves contrib_regression, where this test runs, with
-- refreshing off, and isolation_regression, which does not exist while it runs.
SELECT database, pid IS NOT NULL AS running, state, started_by, last_refresh_outcome,
       consecutive_failures, next_refresh_due
FROM refresh_worker_status ORDER BY database;
-- with refreshing off, nothing is refreshing
SELECT count(*) AS refreshing FROM refresh_worker_status WHERE state = 'refreshing';

DROP EXTENSION s3scan_jobs CASCADE;
