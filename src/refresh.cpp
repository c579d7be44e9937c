// The refresh of job_progress and its bookkeeping (materialized_view_refresh_log and
// refresh_history), the SQL function refresh_job_progress(), and the event triggers that record
// a REFRESH MATERIALIZED VIEW job_progress typed by a person.
//
// Every statement here is qualified (OPERATOR(pg_catalog.x), pg_catalog.f) and runs under
// search_path = pg_catalog, pg_temp, whoever calls: the SQL function pins it, the worker pins it for
// its life, and the event triggers, which must not pin it (they resolve the person's view name as
// the session does), pin it in C around their bookkeeping. In a database with Citus a refresh
// waits for no lock (skipped instead), folds through fold_job_counter_shards() once the tables are
// distributed, and happens on the coordinator only.
#include "refresh.hpp"

#include "citus_shards.hpp"
#include "data_changes.hpp"
#include "live_counts.hpp"
#include "pinned_sql.hpp"

#include "settings.hpp"

extern "C" {
#include "catalog/pg_extension.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"
}

#include <cstdio>

namespace s3scan {

// True while this backend runs a REFRESH on behalf of refresh_job_progress_now(): the event
// triggers then leave the bookkeeping to it.
static bool refresh_by_extension = false;

// Start of the REFRESH command the event trigger saw begin (for its duration).
static TimestampTz refresh_command_started_at = 0;

// The lock that makes refreshes of one job_progress take turns: a transaction-level advisory
// lock keyed by the view, taken by every refresh the extension runs and by a person's REFRESH
// (at the command's start). Tried, never waited for, by the extension's refreshes.
static void set_refresh_locktag(LOCKTAG *tag, Oid matview) {
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x53335343 /* "S3SC" */, matview, 2);
}

static bool try_refresh_lock(Oid matview) {
    LOCKTAG tag;
    set_refresh_locktag(&tag, matview);
    return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

static void wait_for_refresh_lock(Oid matview) {
    LOCKTAG tag;
    set_refresh_locktag(&tag, matview);
    (void) LockAcquire(&tag, ExclusiveLock, false, false);
}

const char *outcome_name(RefreshOutcome outcome) {
    switch (outcome) {
        case RefreshOutcome::Refreshed:
            return "refreshed";
        case RefreshOutcome::Skipped:
            return "skipped";
        case RefreshOutcome::Failed:
            return "failed";
        case RefreshOutcome::Unchanged:
            return "unchanged";
    }
    return "failed";
}

static const char *mode_name(const RefreshReport *report) {
    return report->concurrent ? "concurrent" : "full";
}

static const char *origin_name(RefreshOrigin origin) {
    switch (origin) {
        case RefreshOrigin::Worker:
            return "worker";
        case RefreshOrigin::Sql:
            return "sql";
        case RefreshOrigin::PgCron:
            return "pg_cron";
        case RefreshOrigin::RefreshCommand:
            return "refresh_command";
    }
    return "sql";
}

RefreshOrigin origin_of_current_session() {
    // pg_cron runs jobs either in its own background workers or over libpq with
    // application_name 'pg_cron'.
    if (MyBgworkerEntry != nullptr && strncmp(MyBgworkerEntry->bgw_type, "pg_cron", 7) == 0)
        return RefreshOrigin::PgCron;
    if (application_name != nullptr && strcmp(application_name, "pg_cron") == 0)
        return RefreshOrigin::PgCron;
    return RefreshOrigin::Sql;
}

Oid installed_extension_namespace() {
    // PostgreSQL 15 has no get_extension_schema(): read pg_extension by name.
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
                CStringGetDatum("s3scan_jobs"));
    SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid nsp = HeapTupleIsValid(tuple) ? ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return nsp;
}

bool counters_installed(Oid nsp) {
    return OidIsValid(get_relname_relid("job_counter_deltas", nsp));
}

// Takes a lock on relid and on each of its indexes (in the same mode: the planner opens every index
// of a table it reads, the executor those of a table it writes) if each is free at once.
static bool relation_and_indexes_lock_free(Oid relid, LOCKMODE mode) {
    if (!ConditionalLockRelationOid(relid, mode))
        return false;
    Relation rel = relation_open(relid, NoLock);
    List *indexes = RelationGetIndexList(rel);
    relation_close(rel, NoLock);
    ListCell *lc;
    foreach (lc, indexes) {
        if (!ConditionalLockRelationOid(lfirst_oid(lc), mode))
            return false;
    }
    list_free(indexes);
    return true;
}

// Takes the locks a fold needs if they are free at once: a fold that would wait (for DDL, a
// TRUNCATE or a REINDEX on a table or one of its indexes, or for a refresh or repair folding) is
// skipped; the next one comes at the next interval, and the worker stays free to refresh, or to
// skip a refresh, meanwhile. The locks are released at the end of the transaction.
// Folds and repairs take turns by an EXCLUSIVE lock on job_counters_lock (1.2), which nothing
// else takes; in 1.1 the turn was an EXCLUSIVE lock on job_counters itself, which a VACUUM or
// ANALYZE of job_counters (SHARE UPDATE EXCLUSIVE) also holds off: while autovacuum worked on it,
// every fold was skipped. A database still at 1.1 is folded the 1.1 way.
bool fold_locks_free(Oid nsp) {
    struct Needed {
        const char *relname;
        LOCKMODE mode;
    };
    const char *turn =
        OidIsValid(get_relname_relid("job_counters_lock", nsp)) ? "job_counters_lock" : "job_counters";
    const Needed needed[] = {{"jobs", AccessShareLock},
                             {"job_objects", AccessShareLock},
                             {turn, ExclusiveLock},
                             {"job_counters", RowExclusiveLock},
                             {"job_counter_deltas", RowExclusiveLock}};
    for (const Needed &n : needed) {
        Oid relid = get_relname_relid(n.relname, nsp);
        if (!OidIsValid(relid) || !relation_and_indexes_lock_free(relid, n.mode))
            return false;
    }
    return true;
}

int64 fold_counters(Oid nsp) {
    // On a node of a distributed database: the shards this node holds, where they are.
    char *sql = psprintf("SELECT %s.%s()", quote_identifier(get_namespace_name(nsp)),
                         job_tables_distributed(nsp) ? "fold_job_counter_shards" : "fold_job_counters");
    if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not fold the counter deltas");
    bool isnull;
    Datum folded = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return isnull ? 0 : DatumGetInt64(folded);
}

static double elapsed_ms(TimestampTz from, TimestampTz to) {
    return (double) (to - from) / 1000.0;
}

static char *qualified(Oid nsp, const char *relname) {
    return quote_qualified_identifier(get_namespace_name(nsp), relname);
}

// Counts the rows of job_progress (jobs, objects) as of now. Inside SPI.
static void count_cached_totals(Oid nsp, RefreshReport *report) {
    char *sql = psprintf(
        "SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(total_objects), 0::numeric)::bigint "
        "FROM %s",
        qualified(nsp, "job_progress"));
    if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not count the rows of job_progress");
    bool isnull;
    report->total_jobs =
        DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    report->total_objects =
        DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

// Upserts the job_progress row of the refresh log. Inside SPI. A NULL time says the view holds
// no data (REFRESH ... WITH NO DATA).
static void write_refresh_log(Oid nsp, const RefreshReport *report, bool has_data) {
    char *sql = psprintf(
        "INSERT INTO %s AS l (view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects) "
        "VALUES ('job_progress', $1, $2, $3, $4) "
        "ON CONFLICT (view_name) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at, "
        "refresh_duration_ms = EXCLUDED.refresh_duration_ms, total_jobs = EXCLUDED.total_jobs, "
        "total_objects = EXCLUDED.total_objects",
        qualified(nsp, "materialized_view_refresh_log"));
    Oid types[4] = {TIMESTAMPTZOID, INT4OID, INT4OID, INT8OID};
    int32 duration = (int32) Min(report->duration_ms + 0.5, (double) PG_INT32_MAX);
    int32 jobs = (int32) Min(report->total_jobs, (int64) PG_INT32_MAX);
    Datum values[4] = {TimestampTzGetDatum(report->data_time), Int32GetDatum(duration), Int32GetDatum(jobs),
                       Int64GetDatum(report->total_objects)};
    char nulls[4] = {has_data ? ' ' : 'n', ' ', has_data ? ' ' : 'n', has_data ? ' ' : 'n'};
    if (SPI_execute_with_args(sql, 4, types, values, nulls, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "could not write the refresh log");
}

// Appends one row to refresh_history and prunes it to s3scan_jobs.history_limit rows. Inside SPI.
static void write_refresh_history(Oid nsp, RefreshOrigin origin, const RefreshReport *report,
                                  bool has_totals) {
    char *history = qualified(nsp, "refresh_history");
    char *insert = psprintf(
        "INSERT INTO %s (started_at, duration_ms, outcome, mode, total_jobs, "
        "total_objects, error, origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        history);
    Oid types[8] = {TIMESTAMPTZOID, FLOAT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID};
    bool skipped = report->outcome == RefreshOutcome::Skipped || report->outcome == RefreshOutcome::Unchanged;
    bool failed = report->outcome == RefreshOutcome::Failed;
    Datum values[8] = {TimestampTzGetDatum(report->started_at),
                       Float8GetDatum(report->duration_ms),
                       CStringGetTextDatum(outcome_name(report->outcome)),
                       CStringGetTextDatum(mode_name(report)),
                       Int64GetDatum(report->total_jobs),
                       Int64GetDatum(report->total_objects),
                       CStringGetTextDatum(report->error),
                       CStringGetTextDatum(origin_name(origin))};
    char nulls[8] = {' ',
                     ' ',
                     ' ',
                     skipped ? 'n' : ' ',
                     has_totals ? ' ' : 'n',
                     has_totals ? ' ' : 'n',
                     failed ? ' ' : 'n',
                     ' '};
    if (SPI_execute_with_args(insert, 8, types, values, nulls, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "could not write the refresh history");

    int limit = s3scan_history_limit;
    char *prune = limit == 0 ? psprintf("DELETE FROM %s", history)
                             : psprintf(
                                   "DELETE FROM %s WHERE id OPERATOR(pg_catalog.<) (SELECT id FROM %s "
                                   "ORDER BY id DESC OFFSET %d LIMIT 1)",
                                   history, history, limit - 1);
    if (SPI_execute(prune, false, 0) != SPI_OK_DELETE)
        elog(ERROR, "could not prune the refresh history");
}

// The refresh proper, in the current (sub)transaction. Inside SPI. With version 1.1's counters
// the pending deltas are folded first: job_progress is computed from the counters, and without
// the worker (not preloaded) refreshes are what folds them. Not in a REPEATABLE READ or
// SERIALIZABLE transaction: its snapshot may predate a concurrent fold, whose deleted deltas it
// could not delete again (a serialization failure); and not when a lock the fold needs is taken
// (fold_locks_free): the refresh is as exact without folding.
static void run_refresh(Oid nsp, RefreshReport *report) {
    if (counters_installed(nsp) && !IsolationUsesXactSnapshot() && fold_locks_free(nsp))
        fold_counters(nsp);
    char *sql = psprintf("REFRESH MATERIALIZED VIEW %s%s", report->concurrent ? "CONCURRENTLY " : "",
                         qualified(nsp, "job_progress"));
    refresh_by_extension = true;
    if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "could not refresh job_progress");
    refresh_by_extension = false;
    count_cached_totals(nsp, report);
}

// Takes, if each is free at once, the locks a refresh of job_progress in a Citus database takes:
// the tables its query reads (ACCESS SHARE, on the coordinator; Citus locks their shards on the
// workers) and the view (EXCLUSIVE, as REFRESH ... CONCURRENTLY; ACCESS EXCLUSIVE while it holds
// no data).
static bool distributed_refresh_locks_free(Oid nsp, Oid matview) {
    const char *const kRead[] = {"jobs", "job_objects", "findings", "job_counters", "job_counter_deltas"};
    for (const char *name : kRead) {
        Oid relid = get_relname_relid(name, nsp);
        if (OidIsValid(relid) && !ConditionalLockRelationOid(relid, AccessShareLock))
            return false;
    }
    if (!ConditionalLockRelationOid(matview, ExclusiveLock))
        return false;
    Relation rel = relation_open(matview, NoLock);
    bool populated = RelationIsPopulated(rel);
    relation_close(rel, NoLock);
    return populated || ConditionalLockRelationOid(matview, AccessExclusiveLock);
}

void refresh_job_progress_now(Oid nsp, RefreshOrigin origin, RefreshReport *report) {
    memset(report, 0, sizeof *report);
    report->started_at = GetCurrentTimestamp();
    report->data_time = GetCurrentTransactionStartTimestamp();

    Oid matview = get_relname_relid("job_progress", nsp);
    if (!OidIsValid(matview) || get_rel_relkind(matview) != RELKIND_MATVIEW)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("materialized view \"job_progress\" does not exist in schema \"%s\"",
                               get_namespace_name(nsp))));

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");

    // Another refresh (the worker's, pg_cron's, a session's, a person's REFRESH) is running:
    // skip rather than queue behind it.
    if (!try_refresh_lock(matview)) {
        report->outcome = RefreshOutcome::Skipped;
        report->duration_ms = elapsed_ms(report->started_at, GetCurrentTimestamp());
        write_refresh_history(nsp, origin, report, false);
        SPI_finish();
        return;
    }

    // In a Citus database the refresh waits for no lock: to Citus's deadlock detector a wait of
    // this backend (which has no distributed transaction id) is the wait of every such backend,
    // the folds of the worker nodes included, and DROP EXTENSION and distribute_job_tables(),
    // waiting for one of them or queued behind this, were cancelled as distributed deadlocks.
    // Skipped instead.
    if (citus_in_database() && !distributed_refresh_locks_free(nsp, matview)) {
        report->outcome = RefreshOutcome::Skipped;
        report->duration_ms = elapsed_ms(report->started_at, GetCurrentTimestamp());
        write_refresh_history(nsp, origin, report, false);
        SPI_finish();
        return;
    }

    MemoryContext caller_context = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;
    BeginInternalSubTransaction(NULL);
    MemoryContextSwitchTo(caller_context);
    PG_TRY();
    {
        // The lock REFRESH ... CONCURRENTLY takes; readers (ACCESS SHARE) never conflict with it.
        // Waiting here is for autovacuum (cancelled for us) or DDL, not for another refresh.
        Relation rel = table_open(matview, ExclusiveLock);
        report->concurrent = RelationIsPopulated(rel);
        table_close(rel, NoLock);
        run_refresh(nsp, report);
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller_context);
        CurrentResourceOwner = caller_owner;
        report->outcome = RefreshOutcome::Refreshed;
    }
    PG_CATCH();
    {
        refresh_by_extension = false;
        MemoryContextSwitchTo(caller_context);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller_context);
        CurrentResourceOwner = caller_owner;
        // A session's cancel request (Ctrl-C, statement_timeout) cancels its statement as
        // usual; the worker records it like any other failure.
        if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && origin != RefreshOrigin::Worker)
            ReThrowError(edata);
        // The subtransaction's SPI connection went with it; this one is still ours.
        report->outcome = RefreshOutcome::Failed;
        snprintf(report->error, sizeof report->error, "%s",
                 edata->message ? edata->message : "unknown error");
        ereport(WARNING,
                (errcode(edata->sqlerrcode), errmsg("refresh of job_progress failed: %s", report->error),
                 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
        FreeErrorData(edata);
    }
    PG_END_TRY();

    TimestampTz finished = GetCurrentTimestamp();
    report->duration_ms = elapsed_ms(report->started_at, finished);
    if (report->outcome == RefreshOutcome::Refreshed)
        write_refresh_log(nsp, report, true);
    write_refresh_history(nsp, origin, report, report->outcome == RefreshOutcome::Refreshed);
    SPI_finish();
}

// Whether the change triggers on nsp.jobs exist and fire (ENABLE ALWAYS): only then does every
// change of a job move the change count.
static bool job_change_triggers_fire(Oid nsp) {
    Oid jobs = get_relname_relid("jobs", nsp);
    if (!OidIsValid(jobs) || !ConditionalLockRelationOid(jobs, AccessShareLock))
        return false;
    Relation rel = relation_open(jobs, NoLock);
    int firing = 0;
    for (int t = 0; rel->trigdesc != nullptr && t < rel->trigdesc->numtriggers; t++) {
        const Trigger *trigger = &rel->trigdesc->triggers[t];
        if ((strcmp(trigger->tgname, "jobs_note_changes") == 0 || strcmp(trigger->tgname, "jobs_note_truncate") == 0) &&
            trigger->tgenabled == TRIGGER_FIRES_ALWAYS)
            firing++;
    }
    relation_close(rel, AccessShareLock);
    return firing == 2;
}

// Whether no prepared transaction exists: a prepared one's changes become visible at COMMIT
// PREPARED, which moves no change count.
static bool no_prepared_transactions() {
    if (SPI_execute("SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_prepared_xacts)", true, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        elog(ERROR, "could not look for prepared transactions");
    bool isnull;
    return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

// The state that decides whether a later pass may skip: the view read, its generation, the
// triggers. Inside SPI.
static bool skipping_possible(Oid nsp, uint64 *view_generation) {
    Oid live = get_relname_relid("job_progress_live", nsp);
    Oid counters = get_relname_relid("job_counters", nsp);
    // On a distributed database, the changes are counted on the nodes that hold the shards, not
    // on the coordinator that refreshes.
    if (!data_changes_counted || !OidIsValid(live) || !OidIsValid(counters) || job_tables_distributed(nsp))
        return false;
    // (Not waiting: a view being redefined is a change; the pass refreshes.)
    if (!ConditionalLockRelationOid(live, AccessShareLock))
        return false;
    bool reads = live_view_reads_counters(live, counters);
    *view_generation = live_view_generation();
    // Released at once: a refresh locks job_progress before what it reads, and a pass that held
    // the view while it waited for job_progress deadlocked with a redefinition of the view by a
    // session that held job_progress (distribute_job_tables(), an update script).
    UnlockRelationOid(live, AccessShareLock);
    // (A person's REFRESH ... WITH NO DATA empties the cache: the next pass fills it.)
    Oid matview = get_relname_relid("job_progress", nsp);
    if (!OidIsValid(matview) || !ConditionalLockRelationOid(matview, AccessShareLock))
        return false;
    Relation rel = relation_open(matview, NoLock);
    bool populated = RelationIsPopulated(rel);
    relation_close(rel, AccessShareLock);
    return reads && populated && job_change_triggers_fire(nsp);
}

// Records an Unchanged pass: the log's time of the data moves to now, the history gets a row.
static void record_unchanged(Oid nsp, RefreshReport *report) {
    report->outcome = RefreshOutcome::Unchanged;
    char *sql = psprintf("UPDATE %s l SET last_refreshed_at = $1 WHERE l.view_name OPERATOR(pg_catalog.=) 'job_progress' "
                         "AND l.last_refreshed_at IS NOT NULL",
                         qualified(nsp, "materialized_view_refresh_log"));
    Oid types[1] = {TIMESTAMPTZOID};
    Datum values[1] = {TimestampTzGetDatum(report->data_time)};
    if (SPI_execute_with_args(sql, 1, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not write the refresh log");
    report->duration_ms = elapsed_ms(report->started_at, GetCurrentTimestamp());
    write_refresh_history(nsp, RefreshOrigin::Worker, report, false);
}

void refresh_job_progress_if_changed(Oid nsp, uint64 changes_before, TimestampTz counted_at,
                                     CacheKnowledge *known, RefreshReport *report) {
    // A worker node of a Citus cluster holds shards (once the tables are distributed), not the
    // cache its clients read: the coordinator refreshes job_progress. Nothing to refresh here,
    // nothing recorded. (Refreshing its empty copy held locks that Citus's operations on the node
    // waited for, which its deadlock detector took for a distributed deadlock.)
    if (!citus_coordinator()) {
        // The ids written through this node: a range of its own (a node added after
        // distribute_job_tables() gets it here).
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
        if (SPI_execute(psprintf("SELECT %s.claim_node_id_range()", quote_identifier(get_namespace_name(nsp))), false,
                        1) != SPI_OK_SELECT)
            elog(ERROR, "could not claim this node's range of ids");
        SPI_finish();
        memset(report, 0, sizeof *report);
        report->started_at = GetCurrentTimestamp();
        report->data_time = counted_at;
        report->outcome = RefreshOutcome::Unchanged;
        return;
    }
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    uint64 generation = 0;
    bool possible = skipping_possible(nsp, &generation);
    if (possible && known->valid && known->changes == changes_before && known->view_generation == generation) {
        memset(report, 0, sizeof *report);
        report->started_at = GetCurrentTimestamp();
        report->data_time = counted_at;
        record_unchanged(nsp, report);
        SPI_finish();
        return;
    }
    bool complete = possible && no_prepared_transactions();
    SPI_finish();
    refresh_job_progress_now(nsp, RefreshOrigin::Worker, report);
    known->valid = complete && report->outcome == RefreshOutcome::Refreshed;
    known->changes = changes_before;
    known->view_generation = generation;
}

// The result row of refresh_job_progress().
static Datum refresh_result_datum(FunctionCallInfo fcinfo, const RefreshReport *report) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "refresh_job_progress() must return a composite type");
    tupdesc = BlessTupleDesc(tupdesc);

    char message[700];
    switch (report->outcome) {
        case RefreshOutcome::Refreshed:
            snprintf(message, sizeof message,
                     "refreshed job_progress %sin %.1f ms: " INT64_FORMAT " jobs, " INT64_FORMAT " objects",
                     report->concurrent ? "concurrently " : "", report->duration_ms, report->total_jobs,
                     report->total_objects);
            break;
        case RefreshOutcome::Skipped:
            snprintf(message, sizeof message, "skipped: another refresh of job_progress is running");
            break;
        case RefreshOutcome::Failed:
            snprintf(message, sizeof message, "failed: %s", report->error);
            break;
        case RefreshOutcome::Unchanged:  // (only the worker skips so)
            snprintf(message, sizeof message, "unchanged since the last refresh");
            break;
    }
    bool refreshed = report->outcome == RefreshOutcome::Refreshed;
    Datum values[7] = {CStringGetTextDatum(outcome_name(report->outcome)),
                       CStringGetTextDatum(mode_name(report)),
                       TimestampTzGetDatum(report->started_at),
                       Float8GetDatum(report->duration_ms),
                       Int64GetDatum(report->total_jobs),
                       Int64GetDatum(report->total_objects),
                       CStringGetTextDatum(message)};
    bool nulls[7] = {false, report->outcome == RefreshOutcome::Skipped, false, false, !refreshed, !refreshed,
                     false};
    return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

// Whether this REFRESH command is of the job_progress of the schema the called function lives
// in: its relation is resolved as the session resolves it (the event trigger functions do not pin
// search_path, so this is the person's own search_path) and compared by OID. At the command's end
// the view must also be locked by this transaction as a REFRESH locks it.
static bool command_refreshes_job_progress(FunctionCallInfo fcinfo, bool at_end,
                                           RefreshMatViewStmt **stmt_out, Oid *matview_out) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("function can only be called as an event trigger")));
    EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
    if (refresh_by_extension || trigdata->parsetree == NULL || !IsA(trigdata->parsetree, RefreshMatViewStmt))
        return false;
    RefreshMatViewStmt *stmt = (RefreshMatViewStmt *) trigdata->parsetree;
    Oid matview = get_relname_relid("job_progress", get_func_namespace(fcinfo->flinfo->fn_oid));
    if (!OidIsValid(matview) || RangeVarGetRelid(stmt->relation, NoLock, true) != matview)
        return false;
    if (at_end) {
        LOCKTAG tag;
        SET_LOCKTAG_RELATION(tag, MyDatabaseId, matview);
        if (!LockHeldByMe(&tag, stmt->concurrent ? ExclusiveLock : AccessExclusiveLock))
            return false;
    }
    *stmt_out = stmt;
    *matview_out = matview;
    return true;
}

}  // namespace s3scan

using namespace s3scan;

S3SCAN_SQL_FUNCTION(s3scan_refresh_job_progress) {
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    RefreshReport report;
    refresh_job_progress_now(nsp, origin_of_current_session(), &report);
    return refresh_result_datum(fcinfo, &report);
}

S3SCAN_SQL_FUNCTION(s3scan_on_refresh_command_start) {
    RefreshMatViewStmt *stmt;
    Oid matview;
    // Only for someone the REFRESH will let through: a role that may not refresh the view gets
    // the usual error from the command, and no one's refresh waits for it.
    if (command_refreshes_job_progress(fcinfo, false, &stmt, &matview) &&
        pg_class_ownercheck(matview, GetUserId())) {
        // Take turns with the extension's refreshes: they skip while this one runs.
        wait_for_refresh_lock(matview);
        refresh_command_started_at = GetCurrentTimestamp();
    }
    PG_RETURN_VOID();
}

// A REFRESH MATERIALIZED VIEW [CONCURRENTLY] job_progress [WITH NO DATA] typed by a person has
// just run: bring the log and the history up to date, in the same transaction.
S3SCAN_SQL_FUNCTION(s3scan_on_refresh_command_end) {
    RefreshMatViewStmt *stmt;
    Oid matview;
    if (!command_refreshes_job_progress(fcinfo, true, &stmt, &matview))
        PG_RETURN_VOID();
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    RefreshReport report;
    memset(&report, 0, sizeof report);
    TimestampTz now = GetCurrentTimestamp();
    report.started_at = refresh_command_started_at != 0 ? refresh_command_started_at : now;
    report.data_time = GetCurrentTransactionStartTimestamp();
    report.duration_ms = elapsed_ms(report.started_at, now);
    report.concurrent = stmt->concurrent;
    report.outcome = RefreshOutcome::Refreshed;
    refresh_command_started_at = 0;
    int pinned = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    bool has_data = !stmt->skipData;
    if (has_data)
        count_cached_totals(nsp, &report);
    write_refresh_log(nsp, &report, has_data);
    write_refresh_history(nsp, RefreshOrigin::RefreshCommand, &report, has_data);
    SPI_finish();
    unpin_search_path(pinned);
    PG_RETURN_VOID();
}
