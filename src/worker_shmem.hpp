// Shared memory of the refresh workers: one slot per database served, read by the status view.
#pragma once

#include "pg.hpp"

extern "C" {
#include "storage/lwlock.h"
}

namespace s3scan {

constexpr int kMaxWorkerSlots = 64;

enum class WorkerState : int {
    Starting,
    Idle,
    Refreshing,
    WaitingForExtension,
    Disabled,
    DatabaseMissing,
    Stopped,
    NoWorkerSlot,
};

const char *worker_state_name(WorkerState state);

// What one database's refresh worker is and does. Protected by WorkerShmem::lock.
struct WorkerSlot {
    bool in_use;
    bool started_by_sql;  // refresh_worker_start(); else by the launcher (preload)
    bool stop_requested;  // refresh_worker_stop(): do not restart
    Oid dboid;
    char dbname[NAMEDATALEN];
    pid_t pid;  // 0 while not running
    WorkerState state;
    TimestampTz last_refresh_start;
    double last_refresh_duration_ms;
    char last_refresh_outcome[16];
    char last_error[256];
    int consecutive_failures;
    TimestampTz next_refresh_due;
};

struct WorkerShmem {
    LWLock lock;
    int tranche_id;
    WorkerSlot slots[kMaxWorkerSlots];
};

Size worker_shmem_size();

// Attaches to (creating it if needed) the workers' shared memory. With the library preloaded the
// space is reserved at server start; without, it comes from the server's spare shared memory.
WorkerShmem *worker_shmem();

// The postmaster's shared memory startup hook: creates the workers' shared memory.
void worker_shmem_startup();

// Sets a slot's state under the lock.
void set_worker_state(int slot_index, WorkerState state);

}  // namespace s3scan
