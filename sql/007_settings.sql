--
-- 007_settings: the settings (defaults, units, validation) and the
-- refresh_worker_status view.
--
CREATE EXTENSION s3scan_jobs;

-- The settings exist with their documented defaults and units.
SELECT name, boot_val, unit, vartype, min_val, context
FROM pg_settings WHERE name LIKE 's3scan\_jobs.%' ORDER BY name;

-- This test instance runs with the worker off.
SHOW s3scan_jobs.refresh_interval;
SHOW s3scan_jobs.history_limit;
SELECT current_setting('s3scan_jobs.database') <> '' AS database_set;

-- Units: seconds, written as '5s' or '1min'.
SET s3scan_jobs.refresh_interval = '5s';
SHOW s3scan_jobs.refresh_interval;
SET s3scan_jobs.refresh_interval = '1min';
SHOW s3scan_jobs.refresh_interval;
SET s3scan_jobs.refresh_interval = 90;
SHOW s3scan_jobs.refresh_interval;
SELECT setting, unit FROM pg_settings WHERE name = 's3scan_jobs.refresh_interval';
SET s3scan_jobs.refresh_interval = 0;
SHOW s3scan_jobs.refresh_interval;
RESET s3scan_jobs.refresh_interval;

SET s3scan_jobs.history_limit = 50;
SHOW s3scan_jobs.history_limit;
RESET s3scan_jobs.history_limit;

-- Invalid values are rejected (22023 invalid_parameter_value) and leave the
-- setting as it was.
\set VERBOSITY sqlstate
SET s3scan_jobs.refresh_interval = '-1';
SET s3scan_jobs.refresh_interval = 'often';
SET s3scan_jobs.refresh_interval = '5 parsecs';
SET s3scan_jobs.history_limit = -1;
SET s3scan_jobs.history_limit = 'many';
\set VERBOSITY default
SHOW s3scan_jobs.refresh_interval;
SHOW s3scan_jobs.history_limit;

-- refresh_worker_status: its columns, and it can be queried.
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = 'refresh_worker_status'::regclass AND attnum > 0
ORDER BY attnum;
SELECT count(*) >= 0 AS queryable,
       coalesce(bool_and(state IN ('starting', 'idle', 'refreshing', 'waiting for extension',
                                   'disabled', 'database missing', 'stopped')), true) AS known_states,
       coalesce(bool_and(started_by IN ('preload', 'sql')), true) AS known_started_by
FROM refresh_worker_status;

DROP EXTENSION s3scan_jobs CASCADE;
