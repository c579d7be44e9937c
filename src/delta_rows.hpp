// One row of job_counter_deltas as the counters' C code writes it, and the writer that puts such
// rows into the table (heap and any index a DBA added) without SQL or a permission check: the rows
// are the extension's bookkeeping, and a writer of job_objects or findings needs no right on them.
#pragma once

#include "pg.hpp"

extern "C" {
#include "utils/uuid.h"
}

namespace s3scan {

// The attribute number of a column of rel, which must have the given type (error 42703).
AttrNumber column_of(Relation rel, const char *name, Oid type);

// The change to one job's counts that one delta row records.
struct DeltaRow {
    pg_uuid_t job_id;
    int64 total_objects;
    int64 by_status[4];  // queued, processing, succeeded, failed
    int64 total_findings;
    TimestampTz newest_written;  // newest updated_at among the object rows written (if wrote)
    bool wrote;                  // an object row was written
    bool recheck;                // a removed object row may have been the job's newest
};

// Whether the change is worth a row: it changed a count, wrote an object row (its updated_at may
// be the job's newest) or asks for a recheck.
bool delta_row_changes_something(const DeltaRow *row);

// job_counter_deltas, open for inserts.
struct DeltaTable;

// The delta table next to a table of the extension (its schema); error 42P01 without it.
Oid delta_table_in_schema_of(Relation base);

// Opens the delta table (RowExclusiveLock) for inserts; checks its columns.
DeltaTable *delta_table_open(Oid relid);

// Inserts one row as command cid of the current (sub)transaction; nothing for a row that changes
// nothing. Error 22003 for a count outside integer: a row holds the change of one statement, or
// what one transaction changed.
void delta_table_insert(DeltaTable *table, const DeltaRow *row, CommandId cid);

// Where the columns of job_counter_deltas are in rel's rows (checked as for inserts): job_id,
// total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings,
// last_object_update, last_object_update_recheck.
const AttrNumber *delta_table_columns(Relation rel);

// Whether the row's counts fit the table's integer columns.
bool delta_row_fits(const DeltaRow *row);

void delta_table_close(DeltaTable *table);

}  // namespace s3scan
