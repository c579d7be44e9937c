// The launcher and the per-database refresh workers (background workers).
#pragma once

#include "pg.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace s3scan {

// Registers the launcher at server start (shared_preload_libraries).
void register_launcher();

// Starts a refresh worker for the database of slot_index as a dynamic background worker.
// notify_pid gets the postmaster's start/stop signals. Returns false when no background worker
// slot is free; the handle is allocated in the current memory context.
bool start_refresh_worker(int slot_index, bool started_by_sql, pid_t notify_pid,
                          BackgroundWorkerHandle **handle);

}  // namespace s3scan

extern "C" {
PGDLLEXPORT void s3scan_launcher_main(Datum arg);
PGDLLEXPORT void s3scan_refresh_worker_main(Datum arg);
}
