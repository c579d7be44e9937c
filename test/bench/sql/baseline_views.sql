-- The baseline: the design note's own definitions of job_summary and job_progress
-- (shared/seed/DATABASE_VIEWS_COMPARISON.md, "Technical Details"), copied verbatim, created in
-- the schema "baseline" over the extension's tables (public.jobs, public.job_objects,
-- public.findings), plus the unique index that REFRESH ... CONCURRENTLY needs.
-- Nothing below the SET line is edited: the text between the markers is the note's.

CREATE SCHEMA baseline;
SET search_path = baseline, public;

-- ---- design note: job_summary (terraform/database_schema.sql) ----
CREATE OR REPLACE VIEW job_summary AS
SELECT 
    j.job_id,
    j.bucket,
    j.prefix,
    j.created_at,
    j.updated_at,
    COUNT(DISTINCT jo.id) as total_objects,
    COUNT(DISTINCT CASE WHEN jo.status = 'queued' THEN jo.id END) as queued,
    COUNT(DISTINCT CASE WHEN jo.status = 'processing' THEN jo.id END) as processing,
    COUNT(DISTINCT CASE WHEN jo.status = 'succeeded' THEN jo.id END) as succeeded,
    COUNT(DISTINCT CASE WHEN jo.status = 'failed' THEN jo.id END) as failed,
    COUNT(DISTINCT f.id) as total_findings
FROM jobs j
LEFT JOIN job_objects jo ON j.job_id = jo.job_id
LEFT JOIN findings f ON j.job_id = f.job_id
GROUP BY j.job_id, j.bucket, j.prefix, j.created_at, j.updated_at;
-- ---- end of the note's job_summary ----

-- ---- design note: job_progress (terraform/migrations/002_optimize_for_scale.sql) ----
CREATE MATERIALIZED VIEW IF NOT EXISTS job_progress AS
SELECT
    j.job_id,
    j.bucket,
    j.prefix,
    j.execution_arn,
    j.created_at,
    j.updated_at,
    COALESCE(SUM(CASE WHEN jo.status IS NOT NULL THEN 1 ELSE 0 END), 0) AS total_objects,
    COALESCE(SUM(CASE WHEN jo.status = 'queued' THEN 1 ELSE 0 END), 0) AS queued_count,
    COALESCE(SUM(CASE WHEN jo.status = 'processing' THEN 1 ELSE 0 END), 0) AS processing_count,
    COALESCE(SUM(CASE WHEN jo.status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded_count,
    COALESCE(SUM(CASE WHEN jo.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed_count,
    COALESCE(f.total_findings, 0) AS total_findings,
    CASE
        WHEN COALESCE(SUM(CASE WHEN jo.status IS NOT NULL THEN 1 ELSE 0 END), 0) = 0 THEN 0.0
        ELSE (COALESCE(SUM(CASE WHEN jo.status = 'succeeded' THEN 1 ELSE 0 END), 0) + 
              COALESCE(SUM(CASE WHEN jo.status = 'failed' THEN 1 ELSE 0 END), 0)) * 100.0 / 
              COALESCE(SUM(CASE WHEN jo.status IS NOT NULL THEN 1 ELSE 0 END), 0)
    END AS progress_percent
FROM jobs j
LEFT JOIN job_objects jo ON j.job_id = jo.job_id
LEFT JOIN (SELECT job_id, COUNT(*) AS total_findings FROM findings GROUP BY job_id) f 
    ON j.job_id = f.job_id
GROUP BY j.job_id, j.bucket, j.prefix, j.execution_arn, j.created_at, j.updated_at, f.total_findings;
-- ---- end of the note's job_progress ----

-- REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index (the note: "requires unique index").
CREATE UNIQUE INDEX job_progress_job_id_idx ON baseline.job_progress (job_id);

RESET search_path;
