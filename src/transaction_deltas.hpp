// The counter deltas a transaction has made but not yet written: since 1.3 the counter triggers
// sum a transaction's changes in backend memory and write one job_counter_deltas row per job when
// it commits (or prepares), instead of one row per statement. Reads in the same transaction see
// them through pending_counter_deltas() (transaction_deltas.cpp).
#pragma once

#include "delta_rows.hpp"

namespace s3scan {

// Records one job's change, made by the current command of the current (sub)transaction, for the
// delta table relid. Takes RowExclusiveLock on that table now (as a row insert would), so that
// the commit never waits for a lock the statement did not.
void pending_delta_add(Oid delta_relid, const DeltaRow *row);

// Adds to sums (total_objects, queued, processing, succeeded, failed, total_findings) this
// transaction's pending entries for the delta table relid and job that the snapshot sees, as
// pending_counter_deltas() returns them.
void pending_job_counts(Oid delta_relid, const pg_uuid_t *job, Snapshot snapshot, int64 sums[6]);

}  // namespace s3scan
