// The writer of job_counter_deltas rows (see delta_rows.hpp): the same heap and index calls as the
// executor's INSERT (and logical replication's apply), without a plan, as the counter triggers and
// the per-transaction deltas need it once per statement or transaction of every writer.
#include "delta_rows.hpp"

namespace s3scan {

namespace {

// The columns of job_counter_deltas, in the order values are given below.
constexpr int kDeltaColumns = 9;
const char *const kDeltaColumnNames[kDeltaColumns] = {
    "job_id",         "total_objects",  "queued_count",       "processing_count",          "succeeded_count",
    "failed_count",   "total_findings", "last_object_update", "last_object_update_recheck"};
const Oid kDeltaColumnTypes[kDeltaColumns] = {UUIDOID, INT4OID, INT4OID,        INT4OID, INT4OID,
                                              INT4OID, INT4OID, TIMESTAMPTZOID, BOOLOID};

// Where each of those columns is in the delta table's rows, for the table it was found for.
Oid mapped_relid = InvalidOid;
AttrNumber mapped_columns[kDeltaColumns];

void map_delta_columns(Relation rel) {
    if (mapped_relid == RelationGetRelid(rel))
        return;
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < kDeltaColumns; i++)
        mapped_columns[i] = column_of(rel, kDeltaColumnNames[i], kDeltaColumnTypes[i]);
    int live = 0;
    for (int a = 0; a < desc->natts; a++)
        live += TupleDescAttr(desc, a)->attisdropped ? 0 : 1;
    if (live != kDeltaColumns)
        ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                        errmsg("table \"%s\" has %d columns; s3scan_jobs writes %d", RelationGetRelationName(rel),
                               live, kDeltaColumns)));
    mapped_relid = RelationGetRelid(rel);
}

bool fits(int64 change) {
    return change <= PG_INT32_MAX && change >= PG_INT32_MIN;
}

// A count change as the delta table stores it.
Datum delta_datum(int64 change) {
    if (!fits(change))
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("one statement changed %lld rows of one job; s3scan_jobs counts at most %d per statement",
                               (long long) change, PG_INT32_MAX)));
    return Int32GetDatum((int32) change);
}

}  // namespace

AttrNumber column_of(Relation rel, const char *name, Oid type) {
    TupleDesc desc = RelationGetDescr(rel);
    int attnum = SPI_fnumber(desc, name);
    if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != type)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("table \"%s\" has no column \"%s\" of type %s", RelationGetRelationName(rel), name,
                               format_type_be(type))));
    return (AttrNumber) attnum;
}

struct DeltaTable {
    Relation rel;
    EState *estate;       // with rri, only when the table has an index
    ResultRelInfo *rri;
    TupleTableSlot *slot;
};

const AttrNumber *delta_table_columns(Relation rel) {
    map_delta_columns(rel);
    return mapped_columns;
}

bool delta_row_changes_something(const DeltaRow *row) {
    bool changed = row->total_objects != 0 || row->total_findings != 0 || row->wrote || row->recheck;
    for (int i = 0; i < 4; i++)
        changed = changed || row->by_status[i] != 0;
    return changed;
}

bool delta_row_fits(const DeltaRow *row) {
    bool ok = fits(row->total_objects) && fits(row->total_findings);
    for (int i = 0; i < 4; i++)
        ok = ok && fits(row->by_status[i]);
    return ok;
}

Oid delta_table_in_schema_of(Relation base) {
    Oid nsp = RelationGetNamespace(base);
    Oid relid = get_relname_relid("job_counter_deltas", nsp);
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("table \"job_counter_deltas\" does not exist in schema \"%s\"", get_namespace_name(nsp)),
                        errhint("The counter triggers of s3scan_jobs 1.1 need it; ALTER EXTENSION s3scan_jobs UPDATE "
                                "creates it.")));
    return relid;
}

DeltaTable *delta_table_open(Oid relid) {
    DeltaTable *table = (DeltaTable *) palloc0(sizeof(DeltaTable));
    table->rel = table_open(relid, RowExclusiveLock);
    map_delta_columns(table->rel);
    // The table has no index since 1.2; one a DBA adds is kept up to date. The executor state that
    // index insertion needs is built only then.
    List *indexes = RelationGetIndexList(table->rel);
    bool indexed = indexes != NIL;
    list_free(indexes);
    if (indexed) {
        table->estate = CreateExecutorState();
        table->rri = makeNode(ResultRelInfo);
        InitResultRelInfo(table->rri, table->rel, 1, nullptr, 0);
        ExecOpenIndices(table->rri, false);
    }
    table->slot = MakeSingleTupleTableSlot(RelationGetDescr(table->rel), &TTSOpsVirtual);
    return table;
}

void delta_table_insert(DeltaTable *table, const DeltaRow *row, CommandId cid) {
    if (!delta_row_changes_something(row))
        return;
    Datum values[kDeltaColumns] = {UUIDPGetDatum(&row->job_id),
                                   delta_datum(row->total_objects),
                                   delta_datum(row->by_status[0]),
                                   delta_datum(row->by_status[1]),
                                   delta_datum(row->by_status[2]),
                                   delta_datum(row->by_status[3]),
                                   delta_datum(row->total_findings),
                                   TimestampTzGetDatum(row->newest_written),
                                   BoolGetDatum(row->recheck)};
    bool nulls[kDeltaColumns] = {false, false, false, false, false, false, false, !row->wrote, false};
    TupleTableSlot *slot = table->slot;
    ExecClearTuple(slot);
    int natts = RelationGetDescr(table->rel)->natts;
    for (int a = 0; a < natts; a++) {
        slot->tts_values[a] = (Datum) 0;
        slot->tts_isnull[a] = true;  // dropped columns
    }
    for (int i = 0; i < kDeltaColumns; i++) {
        slot->tts_values[mapped_columns[i] - 1] = values[i];
        slot->tts_isnull[mapped_columns[i] - 1] = nulls[i];
    }
    ExecStoreVirtualTuple(slot);
    table_tuple_insert(table->rel, slot, cid, 0, nullptr);
    if (table->rri != nullptr)
        (void) ExecInsertIndexTuples(table->rri, slot, table->estate, false, false, nullptr, NIL);
}

void delta_table_close(DeltaTable *table) {
    ExecDropSingleTupleTableSlot(table->slot);
    if (table->rri != nullptr) {
        ExecCloseIndices(table->rri);
        FreeExecutorState(table->estate);
    }
    table_close(table->rel, NoLock);
    pfree(table);
}

}  // namespace s3scan
