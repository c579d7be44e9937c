// The refresh workers' shared memory: one slot per database served, and the protocol by which the
// launcher, the SQL functions, the database-command hook and the workers themselves share it.
//
// The slot protocol. Every field is read and written under WorkerShmem::lock.
//
//   in_use, dboid, dbname, started_by_sql
//       The slot's identity. Written by whoever takes the slot: the launcher, for a database named
//       in s3scan_jobs.database (started_by_sql = false), or refresh_worker_start() for the current
//       database (started_by_sql = true). Freed by the launcher when its database leaves the list,
//       by refresh_worker_start() when its first start fails, and by DROP DATABASE for a slot
//       taken from SQL.
//   pid
//       The one truth about whether a worker serves the database. Only a refresh worker sets it, to
//       its own pid, when it claims the slot (claim_slot: the slot is in use for its database, no
//       pid, no stop requested, no hold); only that worker clears it, when it exits or hands over
//       to its successor. So at most one worker serves a database, however many were started.
//   stop_requested
//       refresh_worker_stop() sets it (and signals the worker); refresh_worker_start() clears it.
//       While it is set no worker claims the slot and the launcher starts none.
//   held_by
//       The pid of a backend running DROP DATABASE, ALTER DATABASE ... RENAME or SET TABLESPACE,
//       or CREATE DATABASE ... TEMPLATE on the slot's database: while that backend lives and holds
//       it, no worker claims the slot. Cleared by that backend when its command is over.
//   state, last_*, consecutive_failures, next_refresh_due
//       What people see in refresh_worker_status. Written by whoever did the thing; never read
//       to decide anything.
//
// Starting a worker is registering a dynamic background worker (start_refresh_worker) and, for a
// caller that must know, waiting on its handle until it claimed the slot or stopped
// (wait_for_claim): control follows the handle's status and the slot's pid, never the state.
#pragma once

#include "pg.hpp"

extern "C" {
#include "postmaster/bgworker.h"
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

struct WorkerSlot {
    bool in_use;
    bool started_by_sql;
    Oid dboid;
    char dbname[NAMEDATALEN];
    pid_t pid;
    bool stop_requested;
    pid_t held_by;
    // For people only.
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
    pg_atomic_uint64 data_changes;  // committed changes to what job_progress shows (data_changes.hpp)
    WorkerSlot slots[kMaxWorkerSlots];
};

Size worker_slots_size();

// Attaches to (creating it if needed) the workers' shared memory. With the library preloaded the
// space is reserved at server start; without, it comes from the server's spare shared memory.
WorkerShmem *worker_slots();

// The postmaster's shared memory startup hook: creates the workers' shared memory.
void worker_slots_startup();

// Takes a free slot for a database (lock held by the caller); -1 when none is free.
int take_free_slot(WorkerShmem *mem, Oid dboid, const char *dbname, bool started_by_sql);

// Whether a backend running a command on the slot's database holds it (lock held by the caller).
bool slot_held(const WorkerSlot *slot);

// Sets a slot's state (for people) under the lock.
void set_worker_state(int slot_index, WorkerState state);

// Registers a refresh worker for the slot's database. notify_pid gets the postmaster's start and
// stop signals (0: nobody). Returns false when no background worker slot is free. The handle,
// when asked for, is allocated in the current memory context.
bool start_refresh_worker(int slot_index, pid_t notify_pid, BackgroundWorkerHandle **handle);

// Waits until the worker of handle claimed the slot (returns its pid) or stopped without
// claiming it (returns 0).
pid_t wait_for_claim(int slot_index, BackgroundWorkerHandle *handle);

// Signals the slot's worker to stop and waits until it is gone (at most timeout_ms). Returns the
// pid it stopped, or 0 when no worker served the slot.
pid_t stop_slot_worker(int slot_index, long timeout_ms);

}  // namespace s3scan
