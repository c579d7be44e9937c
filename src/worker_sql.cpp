// The SQL functions around the refresh workers: refresh_worker_start(), refresh_worker_stop()
// and the rows of the refresh_worker_status view.
#include "pg_boundary.hpp"
#include "worker.hpp"
#include "worker_shmem.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
}

#include <csignal>

namespace {

using namespace s3scan;

constexpr long kStartWaitMs = 30 * 1000;

int slot_of_database(WorkerShmem *mem, Oid dboid) {
    for (int i = 0; i < kMaxWorkerSlots; i++)
        if (mem->slots[i].in_use && mem->slots[i].dboid == dboid)
            return i;
    return -1;
}

// Waits until the worker of slot i has a pid (it started) or the wait times out.
pid_t wait_for_worker_pid(WorkerShmem *mem, int i) {
    for (long waited = 0; waited < kStartWaitMs; waited += 20) {
        LWLockAcquire(&mem->lock, LW_SHARED);
        pid_t pid = mem->slots[i].pid;
        LWLockRelease(&mem->lock);
        if (pid != 0)
            return pid;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("the refresh worker for database \"%s\" did not start", get_database_name(MyDatabaseId)),
             errhint("Look in the server log for why.")));
    return 0;
}

int32 start_worker_for_this_database() {
    WorkerShmem *mem = worker_shmem();
    char *dbname = get_database_name(MyDatabaseId);

    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    int i = slot_of_database(mem, MyDatabaseId);
    bool existing = i >= 0;
    bool launcher_owned = existing && !mem->slots[i].started_by_sql;
    pid_t pid = existing ? mem->slots[i].pid : 0;
    bool need_start = false;
    if (existing) {
        mem->slots[i].stop_requested = false;  // undoes refresh_worker_stop()
        // A worker started from SQL that exited is started again here; the launcher restarts its own.
        need_start = pid == 0 && !launcher_owned && mem->slots[i].state != WorkerState::Starting;
    } else {
        i = -1;
        for (int k = 0; k < kMaxWorkerSlots && i < 0; k++)
            if (!mem->slots[k].in_use)
                i = k;
        if (i >= 0) {
            memset(&mem->slots[i], 0, sizeof mem->slots[i]);
            mem->slots[i].in_use = true;
            mem->slots[i].started_by_sql = true;
            mem->slots[i].dboid = MyDatabaseId;
            snprintf(mem->slots[i].dbname, NAMEDATALEN, "%s", dbname);
            need_start = true;
        }
    }
    if (need_start) {
        mem->slots[i].state = WorkerState::Starting;
    }
    LWLockRelease(&mem->lock);

    if (i < 0)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                        errmsg("could not start a refresh worker: all %d s3scan_jobs worker slots are in use",
                               kMaxWorkerSlots)));
    if (pid != 0) {
        ereport(NOTICE,
                (errmsg("a refresh worker already serves database \"%s\" (pid %d)", dbname, (int) pid)));
        return pid;
    }
    if (need_start) {
        BackgroundWorkerHandle *handle;
        if (!start_refresh_worker(i, true, MyProcPid, &handle)) {
            LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
            mem->slots[i].state = WorkerState::NoWorkerSlot;
            if (!existing)
                mem->slots[i].in_use = false;
            LWLockRelease(&mem->lock);
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                            errmsg("could not start a refresh worker for database \"%s\": no background "
                                   "worker slot is free",
                                   dbname),
                            errhint("Raise max_worker_processes (now %d), or stop another background worker.",
                                    max_worker_processes)));
        }
        pid_t started;
        BgwHandleStatus status = WaitForBackgroundWorkerStartup(handle, &started);
        if (status == BGWH_POSTMASTER_DIED)
            ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN), errmsg("the postmaster died")));
    }
    return wait_for_worker_pid(mem, i);
}

bool stop_worker_of_this_database() {
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    int i = slot_of_database(mem, MyDatabaseId);
    pid_t pid = 0;
    if (i >= 0) {
        mem->slots[i].stop_requested = true;  // the launcher does not restart it
        pid = mem->slots[i].pid;
    }
    LWLockRelease(&mem->lock);
    if (pid == 0)
        return false;
    kill(pid, SIGTERM);
    // Wait until it is gone, so that a start right after finds no worker.
    for (long waited = 0; waited < kStartWaitMs; waited += 20) {
        LWLockAcquire(&mem->lock, LW_SHARED);
        bool gone = mem->slots[i].pid != pid;
        LWLockRelease(&mem->lock);
        if (gone)
            return true;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    return true;
}

void status_rows(FunctionCallInfo fcinfo) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    WorkerShmem *mem = worker_shmem();
    static WorkerSlot copy[kMaxWorkerSlots];
    LWLockAcquire(&mem->lock, LW_SHARED);
    memcpy(copy, mem->slots, sizeof copy);
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

S3SCAN_FUNCTION(s3scan_refresh_worker_start) {
    return Int32GetDatum(pg_call([&] { return start_worker_for_this_database(); }));
}

S3SCAN_FUNCTION(s3scan_refresh_worker_stop) {
    return BoolGetDatum(pg_call([&] { return stop_worker_of_this_database(); }));
}

S3SCAN_FUNCTION(s3scan_refresh_worker_status) {
    pg_call([&] { status_rows(fcinfo); });
    return (Datum) 0;
}
