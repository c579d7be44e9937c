// The counter of committed changes to what job_progress shows (see data_changes.hpp), and the two
// SQL entry points that move it: the trigger on jobs (note_job_changes(): a job created, changed,
// deleted or truncated) and note_data_change() (repair and the switch to counting the tables
// rewrite the counters). The counter triggers of job_objects and findings mark their
// transactions directly.
#include "data_changes.hpp"

#include "worker_slots.hpp"

namespace s3scan {

bool data_changes_counted = false;

namespace {

bool marked = false;
bool callback_registered = false;

// After the commit (the changes are visible to every snapshot taken from now on) or the prepare
// (a prepared transaction's changes become visible at COMMIT PREPARED, which may run elsewhere:
// the worker does not skip while one exists). Nothing here can fail: the shared memory was
// attached when the postmaster created it.
void on_transaction_end(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PREPARE:
            if (marked)
                pg_atomic_fetch_add_u64(&worker_slots()->data_changes, 1);
            marked = false;
            break;
        case XACT_EVENT_ABORT:
            marked = false;
            break;
        default:
            break;
    }
}

}  // namespace

void note_data_change() {
    if (!data_changes_counted)
        return;
    if (!callback_registered) {
        RegisterXactCallback(on_transaction_end, nullptr);
        callback_registered = true;
    }
    marked = true;
}

uint64 data_changes_now() {
    return data_changes_counted ? pg_atomic_read_u64(&worker_slots()->data_changes) : 0;
}

}  // namespace s3scan

// note_job_changes(): AFTER INSERT OR UPDATE OR DELETE (row level) and AFTER TRUNCATE (statement
// level) on jobs, ENABLE ALWAYS: row level so that logical replication's apply fires it too.
S3SCAN_SQL_FUNCTION(s3scan_note_job_changes) {
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(((TriggerData *) fcinfo->context)->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("note_job_changes() must be fired AFTER, as a trigger")));
    s3scan::note_data_change();
    return PointerGetDatum(nullptr);
}

// note_data_change(): called by what rewrites the counters (repair_job_counters(),
// stop_reading_counters()).
S3SCAN_SQL_FUNCTION(s3scan_note_data_change) {
    s3scan::note_data_change();
    PG_RETURN_VOID();
}
