// The refresh workers' shared memory and the slot protocol's operations (worker_slots.hpp says
// who may set what, and when).
#include "worker_slots.hpp"

#include "worker.hpp"

extern "C" {
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
}

#include <csignal>

namespace s3scan {

static WorkerShmem *shared = nullptr;

const char *worker_state_name(WorkerState state) {
    switch (state) {
        case WorkerState::Starting:
            return "starting";
        case WorkerState::Idle:
            return "idle";
        case WorkerState::Refreshing:
            return "refreshing";
        case WorkerState::WaitingForExtension:
            return "waiting for extension";
        case WorkerState::Disabled:
            return "disabled";
        case WorkerState::DatabaseMissing:
            return "database missing";
        case WorkerState::Stopped:
            return "stopped";
        case WorkerState::NoWorkerSlot:
            return "no free worker slot";
    }
    return "unknown";
}

Size worker_slots_size() {
    return MAXALIGN(sizeof(WorkerShmem));
}

void worker_slots_startup() {
    shared = nullptr;  // after a crash the postmaster makes shared memory anew
    worker_slots();
}

WorkerShmem *worker_slots() {
    if (shared != nullptr)
        return shared;
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    WorkerShmem *mem = (WorkerShmem *) ShmemInitStruct("s3scan_jobs workers", worker_slots_size(), &found);
    if (!found) {
        memset(mem, 0, sizeof *mem);
        pg_atomic_init_u64(&mem->data_changes, 0);
        mem->tranche_id = LWLockNewTrancheId();
        LWLockInitialize(&mem->lock, mem->tranche_id);
    }
    LWLockRelease(AddinShmemInitLock);
    LWLockRegisterTranche(mem->tranche_id, "s3scan_jobs");
    shared = mem;
    return shared;
}

int take_free_slot(WorkerShmem *mem, Oid dboid, const char *dbname, bool started_by_sql) {
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use)
            continue;
        memset(slot, 0, sizeof *slot);
        slot->in_use = true;
        slot->started_by_sql = started_by_sql;
        slot->dboid = dboid;
        strlcpy(slot->dbname, dbname, NAMEDATALEN);
        slot->state = WorkerState::Stopped;
        return i;
    }
    return -1;
}

bool slot_held(const WorkerSlot *slot) {
    return slot->held_by != 0 && BackendPidGetProc(slot->held_by) != nullptr;
}

void set_worker_state(int slot_index, WorkerState state) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    mem->slots[slot_index].state = state;
    LWLockRelease(&mem->lock);
}

bool start_refresh_worker(int slot_index, pid_t notify_pid, BackgroundWorkerHandle **handle) {
    WorkerShmem *mem = worker_slots();
    char dbname[NAMEDATALEN];
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    memcpy(dbname, mem->slots[slot_index].dbname, NAMEDATALEN);
    if (mem->slots[slot_index].pid == 0)
        mem->slots[slot_index].state = WorkerState::Starting;
    LWLockRelease(&mem->lock);

    BackgroundWorker worker;
    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "s3scan_jobs refresh worker for database %s", dbname);
    fill_worker(&worker, "s3scan_refresh_worker_main", name, "s3scan_jobs refresh worker");
    // Restarts are the launcher's decision (it knows whether the database still exists).
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    worker.bgw_main_arg = Int32GetDatum(slot_index);
    worker.bgw_notify_pid = notify_pid;
    if (RegisterDynamicBackgroundWorker(&worker, handle))
        return true;
    set_worker_state(slot_index, WorkerState::NoWorkerSlot);
    return false;
}

// Sleeps a little on the latch, then checks for interrupts.
static void nap(long ms) {
    (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
}

pid_t wait_for_claim(int slot_index, BackgroundWorkerHandle *handle) {
    WorkerShmem *mem = worker_slots();
    pid_t started;
    if (WaitForBackgroundWorkerStartup(handle, &started) == BGWH_POSTMASTER_DIED)
        ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN), errmsg("the postmaster died")));
    for (;;) {
        LWLockAcquire(&mem->lock, LW_SHARED);
        pid_t pid = mem->slots[slot_index].pid;
        LWLockRelease(&mem->lock);
        if (pid != 0)
            return pid;  // ours, or one that claimed it first
        pid_t running;
        BgwHandleStatus status = GetBackgroundWorkerPid(handle, &running);
        if (status == BGWH_POSTMASTER_DIED)
            ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN), errmsg("the postmaster died")));
        if (status == BGWH_STOPPED) {
            // It may have claimed and exited between the two looks: look once more.
            LWLockAcquire(&mem->lock, LW_SHARED);
            pid = mem->slots[slot_index].pid;
            LWLockRelease(&mem->lock);
            return pid;
        }
        nap(10);
    }
}

pid_t stop_slot_worker(int slot_index, long timeout_ms) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_SHARED);
    pid_t pid = mem->slots[slot_index].pid;
    LWLockRelease(&mem->lock);
    if (pid == 0)
        return 0;
    kill(pid, SIGTERM);
    for (long waited = 0; waited < timeout_ms; waited += 10) {
        LWLockAcquire(&mem->lock, LW_SHARED);
        bool gone = mem->slots[slot_index].pid != pid;
        LWLockRelease(&mem->lock);
        // The slot is released in before_shmem_exit; wait until the process is gone too, so
        // that it no longer counts as connected to its database.
        if (gone && BackendPidGetProc(pid) == nullptr)
            return pid;
        nap(10);
    }
    return pid;
}

}  // namespace s3scan
