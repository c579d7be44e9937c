// The background workers: the launcher (one per server, when preloaded) and the refresh worker
// (one per database served); their registration and entry points.
#pragma once

#include "pg.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace s3scan {

// Fills a background worker registration of this library.
void fill_worker(BackgroundWorker *worker, const char *function, const char *name, const char *type);

// Registers the launcher at server start (shared_preload_libraries).
void register_launcher();

}  // namespace s3scan

extern "C" {
PGDLLEXPORT void s3scan_launcher_main(Datum arg);
PGDLLEXPORT void s3scan_refresh_worker_main(Datum arg);
}
