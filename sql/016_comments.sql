--
-- 016_comments: every object of the extension says what it is and for whom, in its COMMENT (what
-- psql's \d+, \dv+, \df+ and \dT+ show): the comment starts with "for applications:", "for
-- operators:" or "internal to s3scan_jobs:" (README "What the extension creates"). The columns of
-- the two result types and of the tables and views users read have comments too. The checks are
-- shown to catch a missing comment first; then the whole classification is listed.
--
CREATE EXTENSION s3scan_jobs;

-- Every member of the extension (relations, sequences, functions, types, event triggers) with the
-- audience its comment starts with; '-' when it has no comment or names no audience.
CREATE VIEW pg_temp.members AS
SELECT pg_describe_object(d.classid, d.objid, 0) AS member,
       CASE WHEN c.description LIKE 'for applications: _%' THEN 'for applications'
            WHEN c.description LIKE 'for operators: _%' THEN 'for operators'
            WHEN c.description LIKE 'internal to s3scan\_jobs: _%' THEN 'internal'
            ELSE '-' END AS audience
FROM pg_depend d
LEFT JOIN pg_description c ON c.classoid = d.classid AND c.objoid = d.objid AND c.objsubid = 0
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 's3scan_jobs');

-- The columns that must have a comment: those of the result types and of the tables and views
-- that applications and operators read.
CREATE VIEW pg_temp.uncommented_columns AS
SELECT a.attrelid::regclass AS relation, a.attname AS column_name
FROM pg_attribute a
WHERE a.attrelid IN (SELECT c.oid FROM pg_class c
                     WHERE c.relnamespace = 'public'::regnamespace
                       AND c.relname IN ('jobs', 'job_objects', 'findings', 'job_summary', 'job_progress_live',
                                         'job_progress', 'job_statistics', 'materialized_view_refresh_log',
                                         'refresh_history', 'refresh_worker_status', 'job_status_result',
                                         'refresh_result'))
  AND a.attnum > 0 AND NOT a.attisdropped
  AND COALESCE(col_description(a.attrelid, a.attnum), '') = ''
ORDER BY 1, 2;

-- (all twelve are there)
SELECT count(*) AS relations_checked FROM pg_class
WHERE relnamespace = 'public'::regnamespace
  AND relname IN ('jobs', 'job_objects', 'findings', 'job_summary', 'job_progress_live', 'job_progress',
                  'job_statistics', 'materialized_view_refresh_log', 'refresh_history', 'refresh_worker_status',
                  'job_status_result', 'refresh_result');

-- They catch: a function added to the extension without a comment, a function whose comment is
-- removed, one whose comment names no audience, and a column whose comment is removed.
CREATE FUNCTION public.s3scan_uncommented() RETURNS integer LANGUAGE sql AS 'SELECT 1';
ALTER EXTENSION s3scan_jobs ADD FUNCTION public.s3scan_uncommented();
COMMENT ON FUNCTION job_status(uuid, boolean) IS NULL;
COMMENT ON FUNCTION fold_job_counters() IS 'folds the counters';
COMMENT ON COLUMN job_summary.queued IS NULL;
COMMENT ON COLUMN refresh_result.message IS '';
SELECT member FROM pg_temp.members WHERE audience = '-' ORDER BY member COLLATE "C";
SELECT * FROM pg_temp.uncommented_columns;
ALTER EXTENSION s3scan_jobs DROP FUNCTION public.s3scan_uncommented();
DROP FUNCTION public.s3scan_uncommented();
DROP EXTENSION s3scan_jobs;

-- The extension as CREATE EXTENSION makes it: every member names its audience, every such column
-- is commented.
CREATE EXTENSION s3scan_jobs;
SELECT member FROM pg_temp.members WHERE audience = '-' ORDER BY member COLLATE "C";
SELECT * FROM pg_temp.uncommented_columns;

-- The classification, as users see it (README: for applications / for operators / internal).
SELECT audience, member FROM pg_temp.members ORDER BY audience COLLATE "C", member COLLATE "C";

DROP EXTENSION s3scan_jobs;
