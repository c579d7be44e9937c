// A job's exact counts read straight from the per-job counters (see live_counts.hpp).
#include "live_counts.hpp"

#include "delta_rows.hpp"
#include "transaction_deltas.hpp"

extern "C" {
#include "access/skey.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_rewrite.h"
#include "utils/inval.h"
}

namespace s3scan {

namespace {

// What live_view_reads_counters() last found, for which view.
struct ReadsCounters {
    Oid view;
    bool known;
    bool reads;
};
ReadsCounters reads_counters = {InvalidOid, false, false};
uint64 view_generation = 0;
bool callback_registered = false;

void forget_reads_counters(Datum, Oid relid) {
    if (relid == InvalidOid || relid == reads_counters.view) {
        reads_counters.known = false;
        view_generation++;
    }
}

// Whether a rewrite rule of view depends on relation counters: pg_depend, by the referenced side.
bool rule_depends_on(Oid view, Oid counters) {
    Relation depend = table_open(DependRelationId, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(RelationRelationId));
    ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(counters));
    SysScanDesc scan = systable_beginscan(depend, DependReferenceIndexId, true, nullptr, 2, keys);
    bool found = false;
    for (HeapTuple tuple; !found && HeapTupleIsValid(tuple = systable_getnext(scan));) {
        Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tuple);
        if (dep->classid != RewriteRelationId)
            continue;
        // The rule's relation.
        Relation rewrite = table_open(RewriteRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_rewrite_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(dep->objid));
        SysScanDesc rules = systable_beginscan(rewrite, RewriteOidIndexId, true, nullptr, 1, &key);
        HeapTuple rule = systable_getnext(rules);
        found = HeapTupleIsValid(rule) && ((Form_pg_rewrite) GETSTRUCT(rule))->ev_class == view;
        systable_endscan(rules);
        table_close(rewrite, AccessShareLock);
    }
    systable_endscan(scan);
    table_close(depend, AccessShareLock);
    return found;
}

void add_counter_row(Relation counters, Oid key_index, Datum job_id, JobCounts *counts) {
    const char *const names[6] = {"total_objects",   "queued_count", "processing_count",
                                  "succeeded_count", "failed_count", "total_findings"};
    AttrNumber columns[6];
    for (int i = 0; i < 6; i++)
        columns[i] = column_of(counters, names[i], INT8OID);
    Relation index = index_open(key_index, AccessShareLock);
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0], F_UUID_EQ,
                           job_id);
    IndexScanDesc scan = index_beginscan(counters, index, GetActiveSnapshot(), 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);
    TupleTableSlot *slot = table_slot_create(counters, nullptr);
    if (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        int64 *sums[6] = {&counts->total_objects, &counts->by_status[0], &counts->by_status[1],
                          &counts->by_status[2],  &counts->by_status[3], &counts->total_findings};
        for (int i = 0; i < 6; i++) {
            bool isnull;
            Datum value = slot_getattr(slot, columns[i], &isnull);
            *sums[i] += isnull ? 0 : DatumGetInt64(value);
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(index, NoLock);
}

// Every unfolded delta of the job: the table has no index (1.2), and the worker's folds keep it to
// a few hundred rows.
void add_delta_rows(Relation deltas, Datum job_id, JobCounts *counts) {
    const AttrNumber *columns = delta_table_columns(deltas);
    const pg_uuid_t *job = DatumGetUUIDP(job_id);
    TableScanDesc scan = table_beginscan(deltas, GetActiveSnapshot(), 0, nullptr);
    TupleTableSlot *slot = table_slot_create(deltas, nullptr);
    int64 *sums[6] = {&counts->total_objects, &counts->by_status[0], &counts->by_status[1],
                      &counts->by_status[2],  &counts->by_status[3], &counts->total_findings};
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        bool isnull;
        Datum row_job = slot_getattr(slot, columns[0], &isnull);
        if (isnull || memcmp(DatumGetUUIDP(row_job), job, sizeof(pg_uuid_t)) != 0)
            continue;
        for (int i = 0; i < 6; i++) {
            Datum value = slot_getattr(slot, columns[i + 1], &isnull);
            *sums[i] += isnull ? 0 : DatumGetInt32(value);
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
}

}  // namespace

bool live_view_reads_counters(Oid live_view, Oid counters) {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(forget_reads_counters, (Datum) 0);
        callback_registered = true;
    }
    if (!reads_counters.known || reads_counters.view != live_view) {
        reads_counters.view = live_view;
        reads_counters.reads = rule_depends_on(live_view, counters);
        reads_counters.known = true;
    }
    return reads_counters.reads;
}

uint64 live_view_generation() {
    return view_generation;
}

void read_job_counts(Oid counters, Oid counters_key, Oid deltas, Datum job_id, JobCounts *counts) {
    memset(counts, 0, sizeof *counts);
    Relation counter_rel = table_open(counters, AccessShareLock);
    add_counter_row(counter_rel, counters_key, job_id, counts);
    table_close(counter_rel, NoLock);
    Relation delta_rel = table_open(deltas, AccessShareLock);
    add_delta_rows(delta_rel, job_id, counts);
    table_close(delta_rel, NoLock);
    int64 pending[6] = {0, 0, 0, 0, 0, 0};
    pending_job_counts(deltas, DatumGetUUIDP(job_id), GetActiveSnapshot(), pending);
    counts->total_objects += pending[0];
    for (int i = 0; i < 4; i++)
        counts->by_status[i] += pending[i + 1];
    counts->total_findings += pending[5];
}

}  // namespace s3scan
