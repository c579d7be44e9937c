// The counter deltas of the current transaction that are not rows yet (see transaction_deltas.hpp).
//
// The clients write findings as 100 single-row INSERTs in one transaction; a row per statement
// made the counters cost each of those statements a heap insert. Here each counted statement
// only appends its per-job change to a list in backend memory (TopTransactionContext), tagged
// with its command id and subtransaction; at XACT_EVENT_PRE_COMMIT or PRE_PREPARE the list is
// summed per job and written as one row per job, so the rows still commit atomically with the
// changes they count, and a crash loses neither or both.
//
// What keeps it exact:
// - Subtransactions: the list is in the order of the changes, and a subtransaction's entries are
//   its tail. Its abort drops them; its commit hands them to the parent.
// - Reads in the same transaction: pending_counter_deltas() returns the entries a snapshot sees
//   (command id below the snapshot's, as for the rows they stand for: a cursor opened before a
//   change does not see it), and job_progress_from_counters adds them to the table's rows. It is
//   PARALLEL RESTRICTED: a parallel worker does not have the list.
// - Statements that rewrite the counters in this transaction (TRUNCATE's negation, repair, the
//   maintenance switch) write the negation of the pending entries into the table: at commit the
//   entries cancel it, and if that statement's subtransaction aborts, the negation goes with it.
// - A long transaction: past kMaxPending entries, they are written as rows, one per command and
//   job as before 1.3, with their command ids (a snapshot sees exactly what it saw), except an
//   entry pending_counter_deltas() has already returned: a cursor or a rescanned subquery may
//   hold it in a materialized result, so its row gets the current command id, which no snapshot
//   taken so far sees (an older snapshot that has not read the view yet then misses it: see the
//   README's limits). Rows written in a subtransaction are that subtransaction's and vanish if it
//   aborts: an entry is dropped once the subtransaction that wrote it is its own (at once for its
//   own entries, at the commit of the child that wrote a parent's entry); until then it is kept,
//   marked, and pending again if the writer aborts. Memory stays bounded (kMaxPending entries per
//   open subtransaction level), also inside one long subtransaction (an EXCEPTION block, psql's
//   ON_ERROR_ROLLBACK, a driver's autosave), and a subtransaction's end walks only its own tail.
// - The list belongs to one transaction (its local transaction id); every end of a transaction
//   forgets it, its memory goes with TopTransactionContext.
#include "transaction_deltas.hpp"

#include "data_changes.hpp"

extern "C" {
#include "storage/proc.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
}

namespace s3scan {

namespace {

struct PendingDelta {
    DeltaRow row;
    CommandId cid;                // the command that made the change
    SubTransactionId subid;       // the subtransaction it belongs to (its parent's once it commits)
    SubTransactionId written_by;  // the subtransaction that wrote it as a row; invalid: not a row
    bool served;                  // pending_counter_deltas() has returned it to some snapshot
};

// Past this many entries, they are written out (about 0.7 MB).
constexpr int kMaxPending = 8192;

struct PendingList {
    LocalTransactionId lxid;  // the transaction the entries belong to
    Oid relid;                // the delta table they are for
    PendingDelta *items;      // inline_items, or in TopTransactionContext; in the order of the changes
    int count;
    int capacity;
    int written;  // how many items are marked written_by
};
PendingList pending = {InvalidLocalTransactionId, InvalidOid, nullptr, 0, 0, 0};
// The first entries of every transaction: most have one or a few, and need no allocation.
constexpr int kInlinePending = 4;
PendingDelta inline_items[kInlinePending];
bool callbacks_registered = false;

bool have_pending() {
    return pending.count > 0 && pending.lxid == MyProc->lxid;
}

void forget_pending() {
    pending.lxid = InvalidLocalTransactionId;
    pending.relid = InvalidOid;
    pending.items = inline_items;
    pending.count = 0;
    pending.capacity = kInlinePending;
    pending.written = 0;
}

bool is_row(const PendingDelta *item) {
    return item->written_by != InvalidSubTransactionId;
}

// Drops the entries written as rows by their own subtransaction (or by a committed child of it):
// the rows and the changes they count now stand or fall together. Entries of a parent written
// by a child stay, marked, until the child ends: if it aborts they are pending again.
void drop_written_by_own() {
    int kept = 0;
    for (int i = 0; i < pending.count; i++) {
        if (pending.items[i].written_by == pending.items[i].subid)
            continue;
        pending.items[kept++] = pending.items[i];
    }
    pending.written -= pending.count - kept;
    pending.count = kept;
}

// The delta table the entries are for, open for inserts; null when it no longer exists (the
// extension was dropped in this transaction).
DeltaTable *open_pending_table() {
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(pending.relid)))
        return nullptr;
    return delta_table_open(pending.relid);
}

// The command id a spilled entry's row gets. An entry pending_counter_deltas() never returned
// keeps its own: every snapshot that would have seen it pending sees the row instead. One it has
// returned may sit in a snapshot's materialized result (a cursor, a rescanned subquery reuse a
// function scan's rows): its row gets the current command id, which no snapshot taken so far
// sees, so no snapshot counts it twice.
CommandId row_command_id(const PendingDelta *item) {
    return item->served ? GetCurrentCommandId(true) : item->cid;
}

// Writes every entry that is not a row yet as a row and marks it written by the current
// subtransaction; those of the current subtransaction are then dropped (drop_written_by_own).
void write_entries() {
    DeltaTable *table = open_pending_table();
    if (table != nullptr) {
        for (int i = 0; i < pending.count; i++)
            if (!is_row(&pending.items[i]))
                delta_table_insert(table, &pending.items[i].row, row_command_id(&pending.items[i]));
        delta_table_close(table);
    }
    SubTransactionId current = GetCurrentSubTransactionId();
    for (int i = 0; i < pending.count; i++) {
        if (!is_row(&pending.items[i])) {
            pending.items[i].written_by = current;
            pending.written++;
        }
    }
    drop_written_by_own();
}

void merge_into(DeltaRow *sum, const DeltaRow *row) {
    sum->total_objects += row->total_objects;
    for (int i = 0; i < 4; i++)
        sum->by_status[i] += row->by_status[i];
    sum->total_findings += row->total_findings;
    if (row->wrote)
        sum->newest_written = sum->wrote ? Max(sum->newest_written, row->newest_written) : row->newest_written;
    sum->wrote = sum->wrote || row->wrote;
    // As the fold and the reads combine rows: any of them may ask for the recheck.
    sum->recheck = sum->recheck || row->recheck;
}

// The sum of the entries that are not rows yet, when they are all of one job (or none): the
// common case, as each of the scanner's statements changes one job.
bool sum_of_one_job(DeltaRow *sum) {
    memset(sum, 0, sizeof *sum);
    bool first = true;
    for (int i = 0; i < pending.count; i++) {
        const DeltaRow *row = &pending.items[i].row;
        if (is_row(&pending.items[i]))
            continue;
        if (!first && memcmp(&row->job_id, &sum->job_id, sizeof(pg_uuid_t)) != 0)
            return false;
        sum->job_id = row->job_id;
        first = false;
        merge_into(sum, row);
    }
    return true;
}

struct JobSum {
    pg_uuid_t job_id;  // hash key: first
    DeltaRow sum;
    int first;  // the job's first entry: rows are written in the order of the jobs' first changes
};

// One row per job, the sum of its entries; a job whose sum does not fit the table's integers
// gets its entries' rows instead.
void write_sums_by_job(DeltaTable *table, CommandId cid) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.keysize = sizeof(pg_uuid_t);
    ctl.entrysize = sizeof(JobSum);
    ctl.hcxt = CurrentMemoryContext;
    HTAB *by_job = hash_create("s3scan_jobs pending deltas", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    for (int i = 0; i < pending.count; i++) {
        if (is_row(&pending.items[i]))
            continue;
        bool found;
        JobSum *s = (JobSum *) hash_search(by_job, &pending.items[i].row.job_id, HASH_ENTER, &found);
        if (!found) {
            memset(&s->sum, 0, sizeof s->sum);
            s->sum.job_id = pending.items[i].row.job_id;
            s->first = i;
        }
        merge_into(&s->sum, &pending.items[i].row);
    }
    for (int i = 0; i < pending.count; i++) {
        if (is_row(&pending.items[i]))
            continue;
        JobSum *s = (JobSum *) hash_search(by_job, &pending.items[i].row.job_id, HASH_FIND, nullptr);
        if (!delta_row_fits(&s->sum))
            delta_table_insert(table, &pending.items[i].row, cid);
        else if (s->first == i)
            delta_table_insert(table, &s->sum, cid);
    }
    hash_destroy(by_job);
}

// At commit or prepare: one row per job. No snapshot of this transaction reads the table any
// more, so the rows need no command ids of their own.
void write_merged() {
    DeltaTable *table = open_pending_table();
    if (table != nullptr) {
        CommandId cid = GetCurrentCommandId(true);
        DeltaRow sum;
        if (sum_of_one_job(&sum) && delta_row_fits(&sum))
            delta_table_insert(table, &sum, cid);
        else
            write_sums_by_job(table, cid);
        delta_table_close(table);
    }
    pending.count = 0;
}

void on_transaction_event(XactEvent event, void *) {
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        // An error here aborts the transaction (ABORT below forgets the list).
        if (have_pending())
            write_merged();
        forget_pending();
        break;
    case XACT_EVENT_PARALLEL_PRE_COMMIT:  // a parallel worker never counts (no DML there)
        break;
    default:  // COMMIT, ABORT, PREPARE and their parallel forms
        forget_pending();
        break;
    }
}

void on_subtransaction_event(SubXactEvent event, SubTransactionId subid, SubTransactionId parent, void *) {
    if (!have_pending())
        return;
    // The subtransaction's entries (and those its committed children handed it) are the tail.
    int i = pending.count;
    while (i > 0 && pending.items[i - 1].subid >= subid)
        i--;
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        for (int k = i; k < pending.count; k++)
            pending.written -= is_row(&pending.items[k]) ? 1 : 0;
        pending.count = i;
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (; i < pending.count; i++)
            pending.items[i].subid = parent;
    } else {
        return;
    }
    // Entries of its parents that it (or a child) wrote as rows: pending again if it aborted,
    // its parent's rows if it committed.
    if (pending.written == 0)
        return;
    for (int k = 0; k < pending.count; k++) {
        PendingDelta *item = &pending.items[k];
        if (!is_row(item) || item->written_by < subid)
            continue;
        if (event == SUBXACT_EVENT_ABORT_SUB) {
            item->written_by = InvalidSubTransactionId;
            pending.written--;
        } else {
            item->written_by = parent;
        }
    }
    if (event == SUBXACT_EVENT_COMMIT_SUB)
        drop_written_by_own();
}

// The entries a snapshot sees, for the delta table relid.
bool visible(const PendingDelta *item, Snapshot snapshot) {
    return snapshot == nullptr || item->cid < snapshot->curcid;
}

}  // namespace

void pending_delta_add(Oid delta_relid, const DeltaRow *row) {
    if (!delta_row_changes_something(row))
        return;
    note_data_change();
    if (!delta_row_fits(row))  // as a row of its own would be
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("one statement changed more than %d rows of one job; s3scan_jobs counts at most that many "
                               "per statement",
                               PG_INT32_MAX)));
    LockRelationOid(delta_relid, RowExclusiveLock);
    if (!callbacks_registered) {
        RegisterXactCallback(on_transaction_event, nullptr);
        RegisterSubXactCallback(on_subtransaction_event, nullptr);
        callbacks_registered = true;
    }
    if (pending.lxid != MyProc->lxid || pending.items == nullptr)
        forget_pending();  // the entries of an ended transaction (its memory is gone)
    // (A second delta table would be a second installation of the extension in this database,
    // which PostgreSQL does not allow: the entries are written for the first.)
    if ((pending.count > 0 && pending.relid != delta_relid) || pending.count - pending.written >= kMaxPending)
        write_entries();
    if (pending.count == pending.capacity) {
        int capacity = Max(pending.capacity * 2, 64);
        if (pending.items == inline_items) {
            PendingDelta *items =
                (PendingDelta *) MemoryContextAlloc(TopTransactionContext, capacity * sizeof(PendingDelta));
            memcpy(items, inline_items, pending.count * sizeof(PendingDelta));
            pending.items = items;
        } else {
            pending.items = (PendingDelta *) repalloc(pending.items, capacity * sizeof(PendingDelta));
        }
        pending.capacity = capacity;
    }
    pending.lxid = MyProc->lxid;
    pending.relid = delta_relid;
    PendingDelta *item = &pending.items[pending.count++];
    item->row = *row;
    item->cid = GetCurrentCommandId(true);
    item->subid = GetCurrentSubTransactionId();
    item->written_by = InvalidSubTransactionId;
    item->served = false;
}

void pending_job_counts(Oid delta_relid, const pg_uuid_t *job, Snapshot snapshot, int64 sums[6]) {
    if (!have_pending() || pending.relid != delta_relid)
        return;
    for (int i = 0; i < pending.count; i++) {
        const PendingDelta *item = &pending.items[i];
        if (is_row(item) || !visible(item, snapshot) || memcmp(&item->row.job_id, job, sizeof(pg_uuid_t)) != 0)
            continue;
        // (Not marked served: the caller's answer is computed here and now, with the rows it
        // scanned in the same snapshot.)
        sums[0] += item->row.total_objects;
        for (int k = 0; k < 4; k++)
            sums[k + 1] += item->row.by_status[k];
        sums[5] += item->row.total_findings;
    }
}

}  // namespace s3scan

// pending_counter_deltas(): the calling transaction's counter deltas that are not rows yet and
// that the statement's snapshot sees, in the shape of job_counter_deltas rows (one per command and
// job). Empty in any other session: they are this transaction's own.
S3SCAN_SQL_FUNCTION(s3scan_pending_counter_deltas) {
    using namespace s3scan;
    InitMaterializedSRF(fcinfo, 0);
    if (!have_pending())
        return (Datum) 0;
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    if (get_relname_relid("job_counter_deltas", nsp) != pending.relid)
        return (Datum) 0;
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    Snapshot snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : nullptr;
    for (int i = 0; i < pending.count; i++) {
        const PendingDelta *item = &pending.items[i];
        if (is_row(item) || !visible(item, snapshot))
            continue;
        pending.items[i].served = true;
        const DeltaRow *r = &item->row;
        // Each entry fits: it is one statement's change, checked when it was counted.
        Datum values[9] = {UUIDPGetDatum(&r->job_id),
                           Int32GetDatum((int32) r->total_objects),
                           Int32GetDatum((int32) r->by_status[0]),
                           Int32GetDatum((int32) r->by_status[1]),
                           Int32GetDatum((int32) r->by_status[2]),
                           Int32GetDatum((int32) r->by_status[3]),
                           Int32GetDatum((int32) r->total_findings),
                           TimestampTzGetDatum(r->newest_written),
                           BoolGetDatum(r->recheck)};
        bool nulls[9] = {false, false, false, false, false, false, false, !r->wrote, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
