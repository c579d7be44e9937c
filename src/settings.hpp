// The extension's settings (GUCs), defined in module.cpp.
#pragma once

extern "C" {
extern int s3scan_refresh_interval_s;  // s3scan_jobs.refresh_interval, seconds; 0 = off
extern char *s3scan_databases;         // s3scan_jobs.database, comma-separated
extern int s3scan_history_limit;       // s3scan_jobs.history_limit, rows
}
