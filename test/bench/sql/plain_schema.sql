-- The write benchmark's baseline: the scanner's tables created by plain SQL, as the design note's
-- system creates them (database_schema.sql), without the extension.
--
-- Tables, constraints and indexes are copied from the extension's install script
-- (s3scan_jobs--1.0.sql, with @extschema@ = public) so that the only difference measured is the
-- extension itself; the updated_at triggers are the clients' plain plpgsql ones. run.sh compares
-- the resulting catalog entries with the extension's (columns, constraints, indexes, triggers)
-- and reports any drift, so a change to the install script shows up in the report.

CREATE TABLE public.jobs (
    job_id        uuid PRIMARY KEY,
    bucket        text NOT NULL,
    prefix        text DEFAULT '',
    execution_arn text,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE public.job_objects (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    bucket     text NOT NULL,
    key        text NOT NULL,
    etag       text,
    status     text NOT NULL DEFAULT 'queued'
               CONSTRAINT job_objects_status_check
               CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT job_objects_natural_key UNIQUE NULLS NOT DISTINCT (job_id, bucket, key, etag)
);

CREATE TABLE public.findings (
    id           bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    bucket       text NOT NULL,
    key          text NOT NULL,
    etag         text,
    detector     text NOT NULL,
    masked_match text NOT NULL,
    context      text,
    byte_offset  integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT findings_dedup_key UNIQUE NULLS NOT DISTINCT (bucket, key, etag, detector, byte_offset)
);
CREATE INDEX findings_job_id_idx ON public.findings (job_id);
-- (The three below came with the migration issue's indexes in s3scan_jobs--1.0.sql; until
-- 2026-11-29, session 6, this file lacked them, so the plain tables' findings and job inserts
-- maintained one btree fewer than the extension's.)
CREATE INDEX findings_created_at_idx ON public.findings (created_at);
CREATE INDEX jobs_created_at_idx ON public.jobs (created_at);
CREATE INDEX jobs_execution_arn_idx ON public.jobs (execution_arn) WHERE execution_arn IS NOT NULL;

-- The clients' trigger: plain plpgsql.
CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON public.jobs
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
CREATE TRIGGER job_objects_touch_updated_at BEFORE UPDATE ON public.job_objects
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

CREATE TABLE public.materialized_view_refresh_log (
    view_name           text PRIMARY KEY,
    last_refreshed_at   timestamptz,
    refresh_duration_ms integer,
    total_jobs          integer,
    total_objects       bigint
);
