// Whether anything job_progress shows has changed since the worker's last refresh: a counter in
// shared memory that every transaction which changed jobs, job_objects or findings (or rewrote the
// counters) adds one to when it commits or prepares. The refresh worker reads it before each
// refresh; when it has not moved since a refresh that saw everything, the cache is still true and
// the worker skips the refresh (refresh.cpp). Counted only when the library is preloaded (every
// backend then shares the counter from its start).
#pragma once

#include "pg.hpp"

namespace s3scan {

// Set by _PG_init when the library is preloaded.
extern bool data_changes_counted;

// Marks the current transaction as one that changed what job_progress shows; the counter moves
// when it commits or prepares. Cheap: a flag, and a callback registered once per backend.
void note_data_change();

// The counter now (0 when not counted).
uint64 data_changes_now();

}  // namespace s3scan
