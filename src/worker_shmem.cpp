// Shared memory of the refresh workers: allocation, attachment, and small state helpers.
#include "worker_shmem.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/shmem.h"
}

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

Size worker_shmem_size() {
    return MAXALIGN(sizeof(WorkerShmem));
}

void worker_shmem_startup() {
    shared = nullptr;  // after a crash the postmaster makes shared memory anew
    worker_shmem();
}

WorkerShmem *worker_shmem() {
    if (shared != nullptr)
        return shared;
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    WorkerShmem *mem = (WorkerShmem *) ShmemInitStruct("s3scan_jobs workers", worker_shmem_size(), &found);
    if (!found) {
        memset(mem, 0, sizeof *mem);
        mem->tranche_id = LWLockNewTrancheId();
        LWLockInitialize(&mem->lock, mem->tranche_id);
    }
    LWLockRelease(AddinShmemInitLock);
    LWLockRegisterTranche(mem->tranche_id, "s3scan_jobs");
    shared = mem;
    return shared;
}

void set_worker_state(int slot_index, WorkerState state) {
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    mem->slots[slot_index].state = state;
    LWLockRelease(&mem->lock);
}

}  // namespace s3scan
