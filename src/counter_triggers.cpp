// The triggers that keep the per-job counters: every change to job_objects or findings appends
// what it changed, per job, to job_counter_deltas (see s3scan_jobs--1.0--1.1.sql); and
// newest_object_update(), the one read of job_objects the counters' view may need.
//
// - count_changes(), statement level: reads the statement's transition tables, sums the change
//   per job (objects by status, findings, the newest updated_at written, whether a row that may
//   have been the newest left the job), and appends one delta row per job: at once (the triggers
//   of 1.1 and 1.2), or, with the argument 'per_transaction' (1.3), to the transaction's pending
//   deltas, which become one row per job at commit (transaction_deltas.cpp). Does nothing under
//   session_replication_role = replica, where the row-level trigger counts instead (logical
//   replication's apply worker fires row-level triggers only).
// - count_changes(), row level: the same for one row, only under session_replication_role =
//   replica (the row-level triggers are ENABLE REPLICA since 1.2; this function checks the role
//   too).
// - count_truncate(): after TRUNCATE, appends for every job the negation of its current counts
//   (read with the latest snapshot: TRUNCATE holds its table exclusively, every other writer of it
//   has committed), this transaction's pending deltas included.
//
// The delta rows are the extension's bookkeeping: written directly into job_counter_deltas (no
// SQL, no permission check), so a writer of job_objects needs no right on it; the
// TRUNCATE trigger's one statement runs as the table's owner with search_path pinned
// (pinned_sql.hpp). Nothing here waits for another writer: every writer only inserts. Every
// counted change also marks its transaction for the refresh worker (data_changes.hpp).
//
// On a Citus shard (the tables distributed by distribute_job_tables()) the triggers write into the
// co-located shard of job_counter_deltas, one row per statement and job at once (the
// coordinator's reads in the same transaction see rows, not this backend's memory), and stand
// down in the logical replication of a shard move (the deltas' shard moves along). The
// coordinator's own tables of a distributed database hold no rows: their triggers stand down.
#include "citus_shards.hpp"
#include "data_changes.hpp"
#include "delta_rows.hpp"
#include "pinned_sql.hpp"
#include "transaction_deltas.hpp"

extern "C" {
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

using s3scan::column_of;
using s3scan::delta_table_close;
using s3scan::delta_table_in_schema_of;
using s3scan::delta_table_insert;
using s3scan::delta_table_open;
using s3scan::DeltaRow;
using s3scan::DeltaTable;
using s3scan::pending_delta_add;
using s3scan::pin_search_path;
using s3scan::run_as_owner_begin;
using s3scan::run_as_owner_end;
using s3scan::SavedUser;
using s3scan::unpin_search_path;

namespace {

enum class Counted { Objects, Findings };

// The change one statement made to one job.
struct JobDelta {
    pg_uuid_t job_id;  // hash key: first
    int64 total_objects;
    int64 by_status[4];  // queued, processing, succeeded, failed
    int64 total_findings;
    TimestampTz newest_written;  // newest updated_at among the rows written
    TimestampTz newest_removed;  // newest updated_at among the rows removed
    bool wrote;
    bool removed;
};

const char *const kStatuses[4] = {"queued", "processing", "succeeded", "failed"};

// Where the counted columns are in the table's rows (1-based attribute numbers).
struct Columns {
    AttrNumber job_id;
    AttrNumber status;
    AttrNumber updated_at;
};

// The deltas of one statement, by job: a short array (one job in the common case), a hash table
// past kInlineJobs jobs.
constexpr int kInlineJobs = 8;
struct DeltaSet {
    JobDelta inline_jobs[kInlineJobs];
    int inline_count;
    HTAB *by_job;
};

JobDelta *delta_for(DeltaSet *set, const pg_uuid_t *job_id) {
    if (set->by_job == nullptr) {
        for (int i = 0; i < set->inline_count; i++)
            if (memcmp(&set->inline_jobs[i].job_id, job_id, sizeof(pg_uuid_t)) == 0)
                return &set->inline_jobs[i];
        if (set->inline_count < kInlineJobs) {
            JobDelta *d = &set->inline_jobs[set->inline_count++];
            memset(d, 0, sizeof *d);
            d->job_id = *job_id;
            return d;
        }
        HASHCTL ctl;
        memset(&ctl, 0, sizeof ctl);
        ctl.keysize = sizeof(pg_uuid_t);
        ctl.entrysize = sizeof(JobDelta);
        ctl.hcxt = CurrentMemoryContext;
        set->by_job = hash_create("s3scan_jobs statement deltas", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
        for (int i = 0; i < set->inline_count; i++) {
            JobDelta *d = (JobDelta *) hash_search(set->by_job, &set->inline_jobs[i].job_id, HASH_ENTER, nullptr);
            *d = set->inline_jobs[i];
        }
    }
    bool found;
    JobDelta *d = (JobDelta *) hash_search(set->by_job, job_id, HASH_ENTER, &found);
    if (!found) {
        memset(d, 0, sizeof *d);
        d->job_id = *job_id;
    }
    return d;
}

int status_index(Datum status) {
    text *t = DatumGetTextPP(status);
    const char *s = VARDATA_ANY(t);
    int len = VARSIZE_ANY_EXHDR(t);
    for (int i = 0; i < 4; i++)
        if ((int) strlen(kStatuses[i]) == len && memcmp(s, kStatuses[i], len) == 0)
            return i;
    return -1;  // the table's CHECK constraint makes this impossible
}

// Adds one row, written (sign +1) or removed (sign -1), to the set.
void count_row(DeltaSet *set, Counted what, const Columns *cols, TupleTableSlot *slot, int sign) {
    bool isnull;
    Datum job = slot_getattr(slot, cols->job_id, &isnull);
    if (isnull)
        return;  // NOT NULL column: cannot happen
    JobDelta *d = delta_for(set, DatumGetUUIDP(job));
    if (what == Counted::Findings) {
        d->total_findings += sign;
        return;
    }
    d->total_objects += sign;
    Datum status = slot_getattr(slot, cols->status, &isnull);
    int i = isnull ? -1 : status_index(status);
    if (i >= 0)
        d->by_status[i] += sign;
    Datum updated = slot_getattr(slot, cols->updated_at, &isnull);
    if (!isnull) {
        TimestampTz ts = DatumGetTimestampTz(updated);
        if (sign > 0) {
            d->newest_written = d->wrote ? Max(d->newest_written, ts) : ts;
            d->wrote = true;
        } else {
            d->newest_removed = d->removed ? Max(d->newest_removed, ts) : ts;
            d->removed = true;
        }
    }
}

void count_tuplestore(DeltaSet *set, Counted what, const Columns *cols, Tuplestorestate *rows, TupleDesc desc,
                      int sign) {
    if (rows == nullptr)
        return;
    TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
    tuplestore_rescan(rows);
    while (tuplestore_gettupleslot(rows, true, false, slot))
        count_row(set, what, cols, slot, sign);
    ExecDropSingleTupleTableSlot(slot);
}

void count_heap_tuple(DeltaSet *set, Counted what, const Columns *cols, HeapTuple tuple, TupleDesc desc, int sign) {
    TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
    ExecStoreHeapTuple(tuple, slot, false);
    count_row(set, what, cols, slot, sign);
    ExecDropSingleTupleTableSlot(slot);
}

// A statement's change for one job as a delta row.
DeltaRow delta_row_of(const JobDelta *d) {
    DeltaRow row;
    row.job_id = d->job_id;
    row.total_objects = d->total_objects;
    for (int i = 0; i < 4; i++)
        row.by_status[i] = d->by_status[i];
    row.total_findings = d->total_findings;
    row.newest_written = d->newest_written;
    row.wrote = d->wrote;
    // A removed row may have been the job's newest unless a row at least as new was written.
    row.recheck = d->removed && (!d->wrote || d->newest_removed > d->newest_written);
    return row;
}

// When the set's deltas become rows: now, one per job (the triggers of 1.1 and 1.2), or when the
// transaction commits, one per job for all its statements (1.3: transaction_deltas.cpp).
enum class Written { PerStatement, PerTransaction };

// The set's deltas as rows, one per job, in the current memory context.
int delta_rows_of(DeltaSet *set, DeltaRow **rows) {
    if (set->by_job == nullptr) {
        *rows = (DeltaRow *) palloc(set->inline_count * sizeof(DeltaRow));
        for (int i = 0; i < set->inline_count; i++)
            (*rows)[i] = delta_row_of(&set->inline_jobs[i]);
        return set->inline_count;
    }
    long n = hash_get_num_entries(set->by_job);
    *rows = (DeltaRow *) palloc(n * sizeof(DeltaRow));
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, set->by_job);
    int count = 0;
    for (JobDelta *d; (d = (JobDelta *) hash_seq_search(&seq)) != nullptr;)
        (*rows)[count++] = delta_row_of(d);
    return count;
}

const char *table_of(Counted what) {
    return what == Counted::Objects ? "job_objects" : "findings";
}

// The delta table of the triggering table: job_counter_deltas in its schema, or, when it is a
// Citus shard, the co-located shard of job_counter_deltas on this node (error 55000 without one).
Oid delta_table_for(Relation triggering, Counted what, int64 *shardid) {
    *shardid = 0;
    if (!s3scan::shard_of(triggering, table_of(what), shardid))
        return delta_table_in_schema_of(triggering);
    Oid relid = s3scan::colocated_shard(*shardid, RelationGetNamespace(triggering), "job_counter_deltas");
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("no shard of job_counter_deltas next to shard %s on this node",
                               RelationGetRelationName(triggering)),
                        errdetail("The counters of a distributed database are kept in the shards of "
                                  "job_counter_deltas co-located with job_objects and findings."),
                        errhint("distribute_job_tables() distributes them together; see the README.")));
    return relid;
}

// Appends the set's deltas to job_counter_deltas. On a Citus shard, at once (one row per
// statement and job): a read of the coordinator in the same distributed transaction reaches the
// shard in another statement, and sees rows, not this backend's memory.
void append_deltas(Relation triggering, Counted what, DeltaSet *set, Written when) {
    if (set->inline_count == 0)
        return;
    s3scan::note_data_change();
    int64 shardid;
    Oid relid = delta_table_for(triggering, what, &shardid);
    if (shardid != 0)
        when = Written::PerStatement;
    DeltaRow *rows;
    int count = delta_rows_of(set, &rows);
    if (when == Written::PerTransaction) {
        for (int i = 0; i < count; i++)
            pending_delta_add(relid, &rows[i]);
    } else {
        DeltaTable *table = delta_table_open(relid);
        CommandId cid = GetCurrentCommandId(true);
        for (int i = 0; i < count; i++)
            delta_table_insert(table, &rows[i], cid);
        delta_table_close(table);
    }
    pfree(rows);
}

// The trigger's arguments: what it counts ('objects' or 'findings'), and since 1.3 a second,
// 'per_transaction': the deltas become rows when the transaction commits. The triggers of a
// database not yet updated to 1.3 have one argument; their deltas are rows at once, as its views
// expect.
Counted counted_by(TriggerData *trigdata, const char *function, Written *when) {
    Trigger *trigger = trigdata->tg_trigger;
    bool args_ok = trigger->tgnargs == 1 ||
                   (trigger->tgnargs == 2 && strcmp(trigger->tgargs[1], "per_transaction") == 0);
    *when = trigger->tgnargs == 2 ? Written::PerTransaction : Written::PerStatement;
    if (args_ok && strcmp(trigger->tgargs[0], "objects") == 0)
        return Counted::Objects;
    if (args_ok && strcmp(trigger->tgargs[0], "findings") == 0)
        return Counted::Findings;
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("%s() takes 'objects' or 'findings', optionally followed by 'per_transaction'",
                           function)));
    return Counted::Objects;
}


// The attribute number of a column of relation relid (error 42703 without it).
AttrNumber column_of_name(Oid relid, const char *name) {
    AttrNumber attnum = get_attnum(relid, name);
    if (attnum == InvalidAttrNumber)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of relation \"%s\" does not exist", name, get_rel_name(relid))));
    return attnum;
}

TriggerData *trigger_data(FunctionCallInfo fcinfo, const char *function) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s() can only be called as a trigger", function)));
    TriggerData *trigdata = (TriggerData *) fcinfo->context;
    if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s() must be fired AFTER", function)));
    return trigdata;
}

}  // namespace

S3SCAN_SQL_FUNCTION(s3scan_count_changes) {
    TriggerData *trigdata = trigger_data(fcinfo, "count_changes");
    Written when;
    Counted what = counted_by(trigdata, "count_changes", &when);
    bool replica = SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA;
    bool row_level = TRIGGER_FIRED_FOR_ROW(trigdata->tg_event);
    // One of the two counts each change: the row-level trigger under the replica role, the
    // statement-level one otherwise.
    if (row_level != replica || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
        return PointerGetDatum(nullptr);

    Relation rel = trigdata->tg_relation;
    // Citus moves and splits a shard by logical replication, together with the co-located shard
    // of job_counter_deltas that already counts its rows.
    int64 shardid;
    bool shard = s3scan::shard_of(rel, table_of(what), &shardid);
    if (shard && s3scan::applying_logical_replication())
        return PointerGetDatum(nullptr);
    // The coordinator's table of a distributed database holds no rows; its shards count.
    if (!shard && s3scan::job_tables_distributed(RelationGetNamespace(rel)))
        return PointerGetDatum(nullptr);
    Columns cols = {column_of(rel, "job_id", UUIDOID), 0, 0};
    if (what == Counted::Objects) {
        cols.status = column_of(rel, "status", TEXTOID);
        cols.updated_at = column_of(rel, "updated_at", TIMESTAMPTZOID);
    }
    TupleDesc desc = RelationGetDescr(rel);
    DeltaSet set;
    set.inline_count = 0;
    set.by_job = nullptr;
    if (row_level) {
        if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)) {
            count_heap_tuple(&set, what, &cols, trigdata->tg_trigtuple, desc, +1);
        } else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)) {
            count_heap_tuple(&set, what, &cols, trigdata->tg_trigtuple, desc, -1);
        } else {
            count_heap_tuple(&set, what, &cols, trigdata->tg_trigtuple, desc, -1);
            count_heap_tuple(&set, what, &cols, trigdata->tg_newtuple, desc, +1);
        }
    } else {
        count_tuplestore(&set, what, &cols, trigdata->tg_oldtable, desc, -1);
        count_tuplestore(&set, what, &cols, trigdata->tg_newtable, desc, +1);
    }
    append_deltas(rel, what, &set, when);
    return PointerGetDatum(nullptr);
}

S3SCAN_SQL_FUNCTION(s3scan_count_truncate) {
    TriggerData *trigdata = trigger_data(fcinfo, "count_truncate");
    Written when;
    Counted what = counted_by(trigdata, "count_truncate", &when);
    if (!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("count_truncate() must be fired by TRUNCATE")));
    int64 shardid;
    // The coordinator's table of a distributed database holds no rows; its shards count (each
    // TRUNCATE of a shard fires this trigger there).
    if (!s3scan::shard_of(trigdata->tg_relation, table_of(what), &shardid) &&
        s3scan::job_tables_distributed(RelationGetNamespace(trigdata->tg_relation)))
        return PointerGetDatum(nullptr);
    Oid deltas = delta_table_for(trigdata->tg_relation, what, &shardid);
    const char *nsp = quote_identifier(get_namespace_name(get_rel_namespace(deltas)));
    // On a Citus shard: the co-located shards of the counters, whose deltas are rows at once.
    Oid counters = shardid == 0 ? get_relname_relid("job_counters", get_rel_namespace(deltas))
                                : s3scan::colocated_shard(shardid, get_rel_namespace(deltas), "job_counters");
    if (!OidIsValid(counters))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("no job_counters next to \"%s\"", get_rel_name(deltas))));
    if (shardid != 0)
        when = Written::PerStatement;
    const char *deltas_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(deltas)),
                                                         get_rel_name(deltas));
    const char *counters_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(counters)),
                                                           get_rel_name(counters));
    s3scan::note_data_change();

    // Every job's count of the truncated table's rows (folded plus pending) is negated; for
    // objects, the newest updated_at is re-read from the (now empty) table. Since 1.3 the pending
    // deltas include this transaction's that are not rows yet: they become rows at commit, where
    // this negation meets them. A negation beyond the table's integers (a job of more than
    // 2^31 - 1 objects or findings) is written as several rows, each within them.
    const char *const kCounted[6] = {"total_objects",   "queued_count", "processing_count",
                                     "succeeded_count", "failed_count", "total_findings"};
    StringInfoData negated, chunked, nonzero, magnitudes;
    initStringInfo(&negated);
    initStringInfo(&chunked);
    initStringInfo(&nonzero);
    initStringInfo(&magnitudes);
    for (int i = 0; i < 6; i++) {
        bool counted = (what == Counted::Findings) == (i == 5);
        const char *sep = i == 0 ? "" : ", ";
        if (counted)
            appendStringInfo(&negated, "%sOPERATOR(pg_catalog.-) pg_catalog.sum(s.%s) AS %s", sep, kCounted[i],
                             kCounted[i]);
        else
            appendStringInfo(&negated, "%s0::numeric AS %s", sep, kCounted[i]);
        // The k-th chunk of at most 2^31 - 1 of the negation.
        appendStringInfo(&chunked,
                         ", (pg_catalog.sign(n.%1$s) OPERATOR(pg_catalog.*) "
                         "LEAST(GREATEST(pg_catalog.abs(n.%1$s) OPERATOR(pg_catalog.-) "
                         "(k.i::numeric OPERATOR(pg_catalog.*) 2147483647::numeric), 0::numeric), "
                         "2147483647::numeric))::integer",
                         kCounted[i]);
        appendStringInfo(&nonzero, "%sn.%s OPERATOR(pg_catalog.<>) 0::numeric", i == 0 ? "" : " OR ",
                         kCounted[i]);
        appendStringInfo(&magnitudes, "%spg_catalog.abs(n.%s)", sep, kCounted[i]);
    }
    char *sql = psprintf(
        "INSERT INTO %1$s (job_id, total_objects, queued_count, processing_count, "
        "succeeded_count, failed_count, total_findings, last_object_update, last_object_update_recheck) "
        "SELECT n.job_id%2$s, NULL::pg_catalog.timestamptz, %3$s "
        "FROM (SELECT s.job_id, %4$s "
        "      FROM (SELECT c.job_id, c.total_objects, c.queued_count, c.processing_count, c.succeeded_count, "
        "                   c.failed_count, c.total_findings FROM %8$s c "
        "            UNION ALL "
        "            SELECT d.job_id, d.total_objects::bigint, d.queued_count::bigint, d.processing_count::bigint, "
        "                   d.succeeded_count::bigint, d.failed_count::bigint, d.total_findings::bigint "
        "            FROM %1$s d %5$s) s "
        "      GROUP BY s.job_id) n "
        "CROSS JOIN LATERAL pg_catalog.generate_series(0::bigint, "
        "    pg_catalog.ceil(GREATEST(%6$s) OPERATOR(pg_catalog./) 2147483647::numeric)::bigint "
        "    OPERATOR(pg_catalog.-) 1::bigint) k (i) "
        "WHERE %7$s",
        deltas_name, chunked.data, what == Counted::Objects ? "true" : "false", negated.data,
        when == Written::PerTransaction
            ? psprintf("UNION ALL SELECT p.job_id, p.total_objects::bigint, p.queued_count::bigint, "
                       "p.processing_count::bigint, p.succeeded_count::bigint, p.failed_count::bigint, "
                       "p.total_findings::bigint FROM %s.pending_counter_deltas() p",
                       nsp)
            : "",
        magnitudes.data, nonzero.data, counters_name);

    // As the owner of the deltas, with search_path pinned: the truncating role's pg_temp types,
    // casts and functions are never resolved by it.
    SavedUser saved;
    run_as_owner_begin(deltas, &saved);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "s3scan_jobs: SPI_connect failed");
    SPIPlanPtr plan = SPI_prepare(sql, 0, nullptr);
    if (plan == nullptr)
        elog(ERROR, "s3scan_jobs: could not prepare the truncate delta: %s", SPI_result_code_string(SPI_result));
    // The latest snapshot: every other writer of the truncated table has committed (TRUNCATE
    // holds it exclusively), also in a REPEATABLE READ transaction whose snapshot is older.
    int rc = SPI_execute_snapshot(plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, false, false, 0);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "s3scan_jobs: truncate delta insert failed: %s", SPI_result_code_string(rc));
    SPI_finish();
    run_as_owner_end(&saved);
    return PointerGetDatum(nullptr);
}

// newest_object_update(job_id): the newest updated_at of the job's objects, read from job_objects
// (null without objects). job_progress_from_counters calls it only for a job whose pending deltas
// removed what may have been its newest object. A function, not a subquery in the view, so that
// the planner does not price that rare read into every row of every read of the view (a subquery
// priced for each of 10,000 jobs made the view cost enough to be JIT-compiled, 0.7 s). It runs
// where the view runs, with the caller's identity, so it answers only what the caller could read
// otherwise: a reader of job_progress_live (the view that has the column; views read with their
// owner's rights) gets it read as job_objects' owner; a reader of job_objects' job_id and
// updated_at gets it read with its own rights, row-level security included. Anyone else (a
// reader of job_summary only, which has no such column) gets error 42501.
S3SCAN_SQL_FUNCTION(s3scan_newest_object_update) {
    if (PG_ARGISNULL(0))
        PG_RETURN_NULL();
    Datum job_id = PG_GETARG_DATUM(0);
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    Oid objects = get_relname_relid("job_objects", nsp);
    if (!OidIsValid(objects))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("table \"job_objects\" does not exist in schema \"%s\"", get_namespace_name(nsp))));
    Oid caller = GetUserId();
    Oid live = get_relname_relid("job_progress_live", nsp);
    bool as_owner = OidIsValid(live) && pg_class_aclcheck(live, caller, ACL_SELECT) == ACLCHECK_OK;
    // (pg_attribute_aclcheck() looks at column grants only: a table-level SELECT counts too.)
    bool as_caller = !as_owner && (pg_class_aclcheck(objects, caller, ACL_SELECT) == ACLCHECK_OK ||
                                   (pg_attribute_aclcheck(objects, column_of_name(objects, "job_id"), caller,
                                                          ACL_SELECT) == ACLCHECK_OK &&
                                    pg_attribute_aclcheck(objects, column_of_name(objects, "updated_at"), caller,
                                                          ACL_SELECT) == ACLCHECK_OK));
    if (!as_owner && !as_caller)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied for function newest_object_update"),
                        errdetail("It answers roles that may read job_progress_live, or job_id and updated_at of "
                                  "job_objects.")));

    SavedUser saved;
    int pinned = 0;
    if (as_owner)
        run_as_owner_begin(objects, &saved);
    else
        pinned = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "s3scan_jobs: SPI_connect failed");
    char *sql = psprintf("SELECT pg_catalog.max(jo.updated_at) FROM %s.job_objects jo "
                         "WHERE jo.job_id OPERATOR(pg_catalog.=) $1",
                         quote_identifier(get_namespace_name(nsp)));
    Oid types[1] = {UUIDOID};
    Datum values[1] = {job_id};
    if (SPI_execute_with_args(sql, 1, types, values, nullptr, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "s3scan_jobs: could not read the newest updated_at of a job");
    bool isnull;
    Datum newest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    SPI_finish();
    if (as_owner)
        run_as_owner_end(&saved);
    else
        unpin_search_path(pinned);
    if (isnull)
        PG_RETURN_NULL();
    return newest;  // timestamptz is passed by value
}
