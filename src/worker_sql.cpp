// The SQL functions around the refresh workers: refresh_worker_start(), refresh_worker_stop()
// and the rows of the refresh_worker_status view. They follow the slot protocol of
// worker_slots.hpp.
#include "worker.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
}

namespace {

using namespace s3scan;

constexpr long kStopWaitMs = 30 * 1000;

// The slot of the current database: by OID, or by name when the launcher took it while the
// database did not exist yet (it learns the OID on its next look).
int slot_of_database(WorkerShmem *mem, Oid dboid, const char *dbname) {
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use && slot->dboid == dboid)
            return i;
    }
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use && !OidIsValid(slot->dboid) && strcmp(slot->dbname, dbname) == 0) {
            slot->dboid = dboid;
            return i;
        }
    }
    return -1;
}

int32 start_worker_for_this_database() {
    WorkerShmem *mem = worker_slots();
    char *dbname = get_database_name(MyDatabaseId);

    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    int i = slot_of_database(mem, MyDatabaseId, dbname);
    bool created = i < 0;
    if (created)
        i = take_free_slot(mem, MyDatabaseId, dbname, true);
    pid_t pid = 0;
    if (i >= 0) {
        mem->slots[i].stop_requested = false;  // undoes refresh_worker_stop()
        pid = mem->slots[i].pid;
    }
    LWLockRelease(&mem->lock);

    if (i < 0)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                        errmsg("could not start a refresh worker: all %d s3scan_jobs worker slots are in use",
                               kMaxWorkerSlots)));
    if (pid != 0) {
        ereport(NOTICE, (errmsg("a refresh worker already serves database \"%s\" (pid %d)", dbname, (int) pid)));
        return pid;
    }
    // Two starts at once may each register a worker: the slot lets one of them serve.
    BackgroundWorkerHandle *handle;
    if (!start_refresh_worker(i, MyProcPid, &handle)) {
        if (created) {
            LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
            mem->slots[i].in_use = false;
            LWLockRelease(&mem->lock);
        }
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                        errmsg("could not start a refresh worker for database \"%s\": no background worker slot "
                               "is free",
                               dbname),
                        errhint("Raise max_worker_processes (now %d), or stop another background worker.",
                                max_worker_processes)));
    }
    pid = wait_for_claim(i, handle);
    pfree(handle);
    if (pid != 0)
        return pid;

    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    bool stopped = mem->slots[i].stop_requested;
    bool held = slot_held(&mem->slots[i]);
    if (mem->slots[i].pid == 0)
        mem->slots[i].state = WorkerState::Stopped;
    LWLockRelease(&mem->lock);
    if (stopped)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the refresh worker for database \"%s\" was stopped while it started", dbname),
                        errdetail("refresh_worker_stop() was called meanwhile.")));
    if (held)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the refresh worker for database \"%s\" cannot start now", dbname),
                        errdetail("A DROP, RENAME or copy of the database is in progress.")));
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("the refresh worker for database \"%s\" exited before it started", dbname),
                    errhint("Look in the server log for why.")));
    return 0;
}

bool stop_worker_of_this_database() {
    WorkerShmem *mem = worker_slots();
    char *dbname = get_database_name(MyDatabaseId);
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    int i = slot_of_database(mem, MyDatabaseId, dbname);
    if (i >= 0)
        mem->slots[i].stop_requested = true;  // no worker claims it, the launcher starts none
    LWLockRelease(&mem->lock);
    if (i < 0)
        return false;
    // Wait until it is gone, so that a start right after finds no worker.
    pid_t stopped = stop_slot_worker(i, kStopWaitMs);
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    if (mem->slots[i].pid == 0)
        mem->slots[i].state = WorkerState::Stopped;
    LWLockRelease(&mem->lock);
    return stopped != 0;
}

void status_rows(FunctionCallInfo fcinfo) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    WorkerShmem *mem = worker_slots();
    WorkerSlot *copy = (WorkerSlot *) palloc(sizeof mem->slots);
    LWLockAcquire(&mem->lock, LW_SHARED);
    memcpy(copy, mem->slots, sizeof mem->slots);
    LWLockRelease(&mem->lock);

    for (int i = 0; i < kMaxWorkerSlots; i++) {
        const WorkerSlot *slot = &copy[i];
        if (!slot->in_use)
            continue;
        Datum values[10];
        bool nulls[10] = {};
        NameData name;
        namestrcpy(&name, slot->dbname);
        values[0] = NameGetDatum(&name);
        values[1] = Int32GetDatum(slot->pid);
        nulls[1] = slot->pid == 0;
        values[2] = CStringGetTextDatum(worker_state_name(slot->state));
        values[3] = CStringGetTextDatum(slot->started_by_sql ? "sql" : "preload");
        values[4] = TimestampTzGetDatum(slot->last_refresh_start);
        nulls[4] = slot->last_refresh_start == 0;
        values[5] = Float8GetDatum(slot->last_refresh_duration_ms);
        nulls[5] = slot->last_refresh_start == 0;
        values[6] = CStringGetTextDatum(slot->last_refresh_outcome);
        nulls[6] = slot->last_refresh_outcome[0] == '\0';
        values[7] = CStringGetTextDatum(slot->last_error);
        nulls[7] = slot->last_error[0] == '\0';
        values[8] = Int32GetDatum(slot->consecutive_failures);
        values[9] = TimestampTzGetDatum(slot->next_refresh_due);
        nulls[9] = slot->next_refresh_due == 0;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
}

}  // namespace

S3SCAN_SQL_FUNCTION(s3scan_refresh_worker_start) {
    PG_RETURN_INT32(start_worker_for_this_database());
}

S3SCAN_SQL_FUNCTION(s3scan_refresh_worker_stop) {
    PG_RETURN_BOOL(stop_worker_of_this_database());
}

S3SCAN_SQL_FUNCTION(s3scan_refresh_worker_status) {
    status_rows(fcinfo);
    return (Datum) 0;
}
