// The extension's settings (GUCs), defined in s3scan_jobs.cpp.
#pragma once

extern "C" {
extern double s3scan_refresh_interval;   // s3scan_jobs.refresh_interval, seconds; 0 = off
extern char *s3scan_databases;           // s3scan_jobs.database, comma-separated
extern int s3scan_history_limit;         // s3scan_jobs.history_limit, rows
extern int s3scan_worker_memory_limit;   // s3scan_jobs.worker_memory_limit, kB; 0 = no limit
extern double s3scan_fold_interval;      // s3scan_jobs.fold_interval, seconds; 0 = only at refreshes
}

namespace s3scan {

// The refresh interval in milliseconds (0: refreshing is off).
long refresh_interval_ms();

// The fold interval in milliseconds (0: the worker folds only when it refreshes).
long fold_interval_ms();

}  // namespace s3scan
