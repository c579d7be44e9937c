// The refresh of job_progress: one code path for refresh_job_progress(), the worker and pg_cron.
#pragma once

#include "pg.hpp"

namespace s3scan {

enum class RefreshOrigin { Worker, Sql, PgCron, RefreshCommand };
// Unchanged: the worker's refresh found nothing changed since its last one (refresh_unneeded()).
enum class RefreshOutcome { Refreshed, Skipped, Failed, Unchanged };

// What one refresh attempt did; plain data, so it can cross PG_TRY.
struct RefreshReport {
    RefreshOutcome outcome;
    bool concurrent;         // REFRESH ... CONCURRENTLY (job_progress was populated)
    TimestampTz started_at;  // wall clock when the attempt started
    TimestampTz data_time;   // time of the data: the refresh transaction's start
    double duration_ms;
    int64 total_jobs;
    int64 total_objects;
    char error[512];  // the error message when outcome is Failed
};

// Refreshes nsp.job_progress: tries the lock and skips at once if another refresh holds it;
// CONCURRENTLY when populated, plainly when not. The refresh runs in a subtransaction: an error
// in it is caught, rolled back, reported (WARNING) and recorded, except a session's cancel
// request (Ctrl-C, statement_timeout), which is raised again. Log and history are written in
// the caller's transaction. Needs a transaction and an active snapshot; errors outside the
// refresh itself (writing the log) are raised as PostgreSQL errors.
void refresh_job_progress_now(Oid nsp, RefreshOrigin origin, RefreshReport *report);

// What the refresh worker knows of the cache: the change count (data_changes.hpp) read before
// its last successful refresh, and whether that refresh saw every change counted so far.
struct CacheKnowledge {
    bool valid;
    uint64 changes;    // data_changes_now() before the refresh's snapshot
    uint64 view_generation;  // live_view_generation() then
};

// The worker's refresh: skipped, as outcome Unchanged, when nothing job_progress shows has
// changed since the refresh known describes (the change count has not moved, job_progress_live
// reads the counters, the change triggers on jobs are enabled, job_progress_live was not
// redefined); then the refresh log's last_refreshed_at moves to counted_at (the cache is known
// true as of then) and the history gets an 'unchanged' row. Otherwise it refreshes
// (refresh_job_progress_now) and updates known. changes_before: data_changes_now(), read before
// this transaction took its first snapshot, at counted_at (the time an unchanged pass records as
// the time of the cache's data). Never skipped while job_progress holds no data (WITH NO DATA).
void refresh_job_progress_if_changed(Oid nsp, uint64 changes_before, TimestampTz counted_at,
                                     CacheKnowledge *known, RefreshReport *report);

// Who is calling refresh_job_progress() from SQL: pg_cron, or a session.
RefreshOrigin origin_of_current_session();

const char *outcome_name(RefreshOutcome outcome);

// Whether the installed version has the per-job counters (1.1 and later) in schema nsp.
bool counters_installed(Oid nsp);

// Takes the locks a fold needs, tables and their indexes, if each is free at once; false (and
// some of them held until the transaction ends) when one is not.
bool fold_locks_free(Oid nsp);

// Folds the pending counter deltas (fold_job_counters()); returns how many. Inside SPI, in a
// transaction with a snapshot.
int64 fold_counters(Oid nsp);

// The schema s3scan_jobs is installed in, or InvalidOid when it is not installed.
Oid installed_extension_namespace();

}  // namespace s3scan
