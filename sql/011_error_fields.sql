--
-- 011_error_fields: an error raised while job_status() runs reaches the client exactly as
-- PostgreSQL raised it: SQLSTATE, message, detail, hint, context and the schema, table, column,
-- data type and constraint names that drivers expose. (The extension's C++ has no exception
-- boundary to lose them in: CONTRIBUTING.md.)
--
CREATE EXTENSION s3scan_jobs;

INSERT INTO jobs (job_id, bucket, created_at, updated_at)
VALUES ('11000000-0000-4000-8000-000000000001', 'b', '2024-05-01 10:00:00+00', '2024-05-01 10:00:00+00');
SELECT outcome FROM refresh_job_progress();

-- A row-level security policy on jobs whose function raises an error with every field set.
CREATE FUNCTION public.s3scan_policy_check(uuid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'S3X01', MESSAGE = 'policy refuses job ' || $1,
        DETAIL = 'the detail', HINT = 'the hint', SCHEMA = 'the_schema', TABLE = 'the_table',
        COLUMN = 'the_column', DATATYPE = 'the_type', CONSTRAINT = 'the_constraint';
END
$$;
CREATE ROLE regress_s3scan_rls;
GRANT SELECT ON jobs, job_objects, findings, job_progress, job_progress_live,
                materialized_view_refresh_log TO regress_s3scan_rls;
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY s3scan_raises ON jobs FOR SELECT TO regress_s3scan_rls USING (public.s3scan_policy_check(job_id));

-- What a client sees, read field by field.
CREATE FUNCTION pg_temp.error_fields(real_time boolean)
RETURNS TABLE (field text, value text) LANGUAGE plpgsql AS $$
DECLARE
    f_state text; f_message text; f_detail text; f_hint text; f_context text;
    f_schema text; f_table text; f_column text; f_type text; f_constraint text;
BEGIN
    PERFORM * FROM job_status('11000000-0000-4000-8000-000000000001', real_time);
    field := 'no error'; RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS f_state = RETURNED_SQLSTATE, f_message = MESSAGE_TEXT,
        f_detail = PG_EXCEPTION_DETAIL, f_hint = PG_EXCEPTION_HINT, f_context = PG_EXCEPTION_CONTEXT,
        f_schema = SCHEMA_NAME, f_table = TABLE_NAME, f_column = COLUMN_NAME,
        f_type = PG_DATATYPE_NAME, f_constraint = CONSTRAINT_NAME;
    RETURN QUERY VALUES ('sqlstate', f_state), ('message', f_message), ('detail', f_detail),
        ('hint', f_hint), ('schema', f_schema), ('table', f_table), ('column', f_column),
        ('datatype', f_type), ('constraint', f_constraint),
        ('context names the policy function', (f_context LIKE '%s3scan_policy_check%')::text);
END
$$;

SET ROLE regress_s3scan_rls;
-- cached path (row-level security: the read runs as a SQL plan)
SELECT * FROM pg_temp.error_fields(false);
RESET ROLE;
-- The real-time path honours the caller's row-level security on jobs too (since 1.4): the policy's
-- error arrives from it with its SQLSTATE, message and the context of the job_status call.
CREATE FUNCTION pg_temp.real_time_error()
RETURNS TABLE (field text, value text) LANGUAGE plpgsql AS $$
DECLARE
    f_state text; f_message text; f_context text;
BEGIN
    PERFORM * FROM job_status('11000000-0000-4000-8000-000000000001', true);
    field := 'no error'; RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS f_state = RETURNED_SQLSTATE, f_message = MESSAGE_TEXT, f_context = PG_EXCEPTION_CONTEXT;
    RETURN QUERY VALUES ('sqlstate', f_state), ('message', f_message),
        ('context names the caller', (f_context LIKE '%real_time_error%')::text);
END
$$;
SET ROLE regress_s3scan_rls;
SELECT * FROM pg_temp.real_time_error();
RESET ROLE;
-- Then it reads job_progress_live with the caller's rights on that view, and the view reads the
-- tables and counters with its owner's (a superuser: no row-level security applies, and no
-- function of a user's runs there). The error it can meet there is the caller's: no right on the
-- view.
ALTER TABLE jobs DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON job_progress_live FROM regress_s3scan_rls;
SET ROLE regress_s3scan_rls;
SELECT * FROM pg_temp.real_time_error();
RESET ROLE;

DROP POLICY s3scan_raises ON jobs;
ALTER TABLE jobs DISABLE ROW LEVEL SECURITY;
DROP ROLE regress_s3scan_rls;
DROP FUNCTION public.s3scan_policy_check(uuid);
DROP EXTENSION s3scan_jobs;
