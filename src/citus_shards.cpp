// What the extension's C++ knows of Citus (see citus_shards.hpp). Citus's catalog tables
// (pg_dist_partition, pg_dist_shard, pg_dist_local_group, in pg_catalog) are read directly, as
// catalogs are: no SQL, no name resolution through a search_path, no privilege a writer of
// job_objects would need. Their columns are found by name.
#include "citus_shards.hpp"

extern "C" {
#include "access/skey.h"
#include "catalog/pg_namespace.h"
#include "replication/logicalworker.h"
#include "utils/inval.h"
}

namespace s3scan {

namespace {

bool callback_registered = false;

// What job_tables_distributed() last found.
struct Distributed {
    Oid nsp;
    Oid jobs;
    bool known;
    bool value;
};
Distributed distributed = {InvalidOid, InvalidOid, false, false};

// Co-located shards found so far: a shard's id and a table → that table's shard on this node.
struct ColocatedShard {
    int64 shardid;
    Oid nsp;
    NameData table;
    Oid relid;  // InvalidOid: not on this node
};
constexpr int kColocatedCapacity = 512;
ColocatedShard colocated[kColocatedCapacity];
int colocated_count = 0;

// Any relcache invalidation may be a shard created, moved or dropped: forget them all (finding
// one again is a scan of a few hundred catalog rows). One of jobs (or of everything) may be
// distribute_job_tables() or undistribute_table().
void forget(Datum, Oid relid) {
    colocated_count = 0;
    if (relid == InvalidOid || relid == distributed.jobs)
        distributed.known = false;
}

void register_callback() {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(forget, (Datum) 0);
        callback_registered = true;
    }
}

bool citus_installed() {
    return OidIsValid(get_extension_oid("citus", true));
}

// A Citus catalog table in pg_catalog, or InvalidOid.
Oid citus_catalog(const char *name) {
    return get_relname_relid(name, PG_CATALOG_NAMESPACE);
}

AttrNumber catalog_column(Oid relid, const char *name) {
    AttrNumber attnum = get_attnum(relid, name);
    if (attnum == InvalidAttrNumber)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of Citus catalog \"%s\" does not exist", name, get_rel_name(relid)),
                        errhint("s3scan_jobs reads the catalogs of Citus 13.")));
    return attnum;
}

bool is_distributed_table(Oid relid) {
    Oid partition = citus_catalog("pg_dist_partition");
    if (!OidIsValid(partition))
        return false;
    Relation rel = table_open(partition, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, catalog_column(partition, "logicalrelid"), BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
    bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
}

// The shard of table target whose hash range starts where shard shardid's does; 0 if none.
int64 shard_with_same_range(int64 shardid, Oid target) {
    Oid shard_catalog = citus_catalog("pg_dist_shard");
    if (!OidIsValid(shard_catalog))
        return 0;
    AttrNumber logicalrelid = catalog_column(shard_catalog, "logicalrelid");
    AttrNumber shardid_col = catalog_column(shard_catalog, "shardid");
    AttrNumber minvalue_col = catalog_column(shard_catalog, "shardminvalue");
    Relation rel = table_open(shard_catalog, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);

    // The range of shardid.
    char *minvalue = nullptr;
    ScanKeyData key;
    ScanKeyInit(&key, shardid_col, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shardid));
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    if (HeapTupleIsValid(tuple)) {
        bool isnull;
        Datum value = heap_getattr(tuple, minvalue_col, desc, &isnull);
        if (!isnull)
            minvalue = TextDatumGetCString(value);
    }
    systable_endscan(scan);

    int64 found = 0;
    if (minvalue != nullptr) {
        ScanKeyInit(&key, logicalrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(target));
        scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
        while (found == 0 && HeapTupleIsValid(tuple = systable_getnext(scan))) {
            bool isnull;
            Datum value = heap_getattr(tuple, minvalue_col, desc, &isnull);
            if (!isnull && strcmp(TextDatumGetCString(value), minvalue) == 0)
                found = DatumGetInt64(heap_getattr(tuple, shardid_col, desc, &isnull));
        }
        systable_endscan(scan);
    }
    table_close(rel, AccessShareLock);
    return found;
}

}  // namespace

bool job_tables_distributed(Oid nsp) {
    register_callback();
    if (distributed.known && distributed.nsp == nsp)
        return distributed.value;
    Oid jobs = get_relname_relid("jobs", nsp);
    bool value = OidIsValid(jobs) && citus_installed() && is_distributed_table(jobs);
    distributed = {nsp, jobs, true, value};
    return value;
}

bool citus_in_database() {
    return citus_installed();
}

bool citus_coordinator() {
    if (!citus_installed())
        return true;
    Oid local_group = citus_catalog("pg_dist_local_group");
    if (!OidIsValid(local_group))
        return true;
    AttrNumber groupid = catalog_column(local_group, "groupid");
    Relation rel = table_open(local_group, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tuple = systable_getnext(scan);
    bool coordinator = true;
    if (HeapTupleIsValid(tuple)) {
        bool isnull;
        Datum value = heap_getattr(tuple, groupid, RelationGetDescr(rel), &isnull);
        coordinator = isnull || DatumGetInt32(value) == 0;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return coordinator;
}

bool shard_of(Relation rel, const char *table, int64 *shardid) {
    const char *name = RelationGetRelationName(rel);
    size_t len = strlen(table);
    if (strncmp(name, table, len) != 0 || name[len] != '_' || name[len + 1] == '\0')
        return false;
    int64 id = 0;
    for (const char *p = name + len + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || id > (PG_INT64_MAX - 9) / 10)
            return false;
        id = id * 10 + (*p - '0');
    }
    *shardid = id;
    return true;
}

Oid colocated_shard(int64 shardid, Oid nsp, const char *table) {
    register_callback();
    for (int i = 0; i < colocated_count; i++)
        if (colocated[i].shardid == shardid && colocated[i].nsp == nsp &&
            strcmp(NameStr(colocated[i].table), table) == 0)
            return colocated[i].relid;
    Oid target = get_relname_relid(table, nsp);
    Oid relid = InvalidOid;
    if (OidIsValid(target)) {
        int64 found = shard_with_same_range(shardid, target);
        if (found != 0)
            relid = get_relname_relid(psprintf("%s_" INT64_FORMAT, table, found), nsp);
    }
    if (colocated_count == kColocatedCapacity)
        colocated_count = 0;
    ColocatedShard *entry = &colocated[colocated_count++];
    entry->shardid = shardid;
    entry->nsp = nsp;
    namestrcpy(&entry->table, table);
    entry->relid = relid;
    return relid;
}

bool applying_logical_replication() {
    return IsLogicalWorker();
}

}  // namespace s3scan

S3SCAN_SQL_FUNCTION(s3scan_job_tables_distributed) {
    PG_RETURN_BOOL(s3scan::job_tables_distributed(get_func_namespace(fcinfo->flinfo->fn_oid)));
}

// deltas_waiting(shard regclass): whether a shard of job_counter_deltas has a row the active
// snapshot sees, found without waiting for a lock (false when its lock is not free at once: a
// shard being dropped or moved) and without planning a query. fold_job_counter_shards() asks it
// before folding a shard: an idle node's folds, every s3scan_jobs.fold_interval over every shard
// it holds, planned a fold statement for each (about 11 ms a pass over 16 shards).
S3SCAN_SQL_FUNCTION(s3scan_deltas_waiting) {
    Oid relid = PG_GETARG_OID(0);
    if (get_rel_relkind(relid) != RELKIND_RELATION)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("deltas_waiting() takes a table, not \"%s\"", get_rel_name(relid))));
    if (!ConditionalLockRelationOid(relid, AccessShareLock))
        PG_RETURN_BOOL(false);
    Relation rel = try_relation_open(relid, NoLock);
    if (rel == nullptr)
        PG_RETURN_BOOL(false);
    TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
    TupleTableSlot *slot = table_slot_create(rel, nullptr);
    bool found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    relation_close(rel, NoLock);
    PG_RETURN_BOOL(found);
}
