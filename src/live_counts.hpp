// A job's exact counts read straight from the per-job counters, without SQL: its job_counters row
// (by key), its deltas not folded yet (a scan of job_counter_deltas) and this transaction's pending
// entries, in one snapshot; what job_progress_from_counters adds up for one job. job_status(id,
// true) answers from it when job_progress_live reads the counters (live_counts.cpp).
#pragma once

#include "pg.hpp"

namespace s3scan {

// The counted columns, in the order of job_progress_live.
struct JobCounts {
    int64 total_objects;
    int64 by_status[4];  // queued, processing, succeeded, failed
    int64 total_findings;
};

// Whether nsp.job_progress_live reads the counters (its rule depends on job_counters), as
// job_progress_live_reads_counters() says; remembered until the view's relcache entry is
// invalidated (CREATE OR REPLACE VIEW, set_counter_maintenance(), the fallback of 1.4).
bool live_view_reads_counters(Oid live_view, Oid counters);

// A number that changes whenever the relcache entry of the view live_view_reads_counters() last
// looked at is invalidated (or every entry is): the view may have been redefined.
uint64 live_view_generation();

// The job's counts in the active snapshot. The relations are locked as a SELECT would lock them.
void read_job_counts(Oid counters, Oid counters_key, Oid deltas, Datum job_id, JobCounts *counts);

}  // namespace s3scan
