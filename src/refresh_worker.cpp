// The refresh worker: one per database served, started by the launcher (preloaded) or by
// refresh_worker_start(). It refreshes job_progress every s3scan_jobs.refresh_interval through
// refresh_job_progress_now(), the same code as refresh_job_progress(), and between refreshes
// folds the per-job counter deltas every s3scan_jobs.fold_interval (version 1.1).
//
// Its loop follows PostgreSQL's worker_spi: say what it does, wait on the latch, reset it, check
// for interrupts, reload the configuration when asked, and refresh when due; one transaction, one snapshot and one
// memory context per pass, so that between passes it holds no lock and no snapshot. SIGTERM is
// die(); SIGINT cancels a refresh in progress and nothing else. Every statement it runs sees
// search_path = pg_catalog, pg_temp, whatever ALTER DATABASE or ALTER ROLE set. When its memory
// grows past s3scan_jobs.worker_memory_limit (PostgreSQL's caches grow with every REFRESH
// CONCURRENTLY), it hands its slot to a fresh process and exits. On a worker node of a Citus
// cluster it only folds the shards the node holds (once the tables are distributed) and gives
// the node's sequences their id range; the coordinator's worker refreshes.
#include "citus_shards.hpp"
#include "data_changes.hpp"
#include "refresh.hpp"
#include "settings.hpp"
#include "worker.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "commands/vacuum.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/lsyscache.h"
#include "utils/timeout.h"
}

namespace s3scan {

namespace {

constexpr long kExtensionPollMs = 5000;  // a worker without the extension looks this often
constexpr int kMaxBackoffIntervals = 4;  // failed refreshes are retried at most this late
constexpr int64 kVacuumAfterFoldedRows = 2000;  // the worker vacuums job_counter_deltas this often

int my_slot = -1;

// Runs as the worker exits (also on FATAL): the slot no longer has a running worker.
void release_slot(int code, Datum arg) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[DatumGetInt32(arg)];
    if (slot->pid == MyProcPid) {
        slot->pid = 0;
        slot->state = WorkerState::Stopped;
        slot->next_refresh_due = 0;
    }
    LWLockRelease(&mem->lock);
}

// Claims the slot (worker_slots.hpp): false when another worker serves the database, a stop was
// requested, or a command on the database holds it. *inherited_due is the next refresh a recycled
// predecessor had scheduled (0: none, refresh at once).
bool claim_slot(Oid *dboid, TimestampTz *inherited_due) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[my_slot];
    bool mine = slot->in_use && slot->pid == 0 && !slot->stop_requested && !slot_held(slot);
    if (mine) {
        slot->pid = MyProcPid;
        slot->state = WorkerState::Idle;
        *dboid = slot->dboid;
        *inherited_due = slot->next_refresh_due;
    }
    LWLockRelease(&mem->lock);
    return mine;
}

void publish(WorkerState state, TimestampTz next_due) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    mem->slots[my_slot].state = state;
    mem->slots[my_slot].next_refresh_due = next_due;
    LWLockRelease(&mem->lock);
}

void publish_report(const RefreshReport *report, int failures) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[my_slot];
    slot->last_refresh_start = report->started_at;
    slot->last_refresh_duration_ms = report->duration_ms;
    strlcpy(slot->last_refresh_outcome, outcome_name(report->outcome), sizeof slot->last_refresh_outcome);
    if (report->outcome == RefreshOutcome::Failed)
        strlcpy(slot->last_error, report->error, sizeof slot->last_error);
    slot->consecutive_failures = failures;
    LWLockRelease(&mem->lock);
}

// What one pass found. Unchanged: nothing to refresh, so nothing was folded either.
enum class PassResult { Done, NoExtension, Unchanged };

// What this worker knows of the cache since its last refresh (nothing, when it starts).
CacheKnowledge cache_knowledge = {false, 0, 0};

// One pass: one transaction, one snapshot. A refresh error is caught and recorded by the
// refresh itself; any other error (a cancel, a timeout) is caught here, logged, and counted as a
// failed refresh.
PassResult run_pass(int *failures, MemoryContext pass_context) {
    volatile PassResult result = PassResult::Done;
    RefreshReport report;
    memset(&report, 0, sizeof report);
    // Before the transaction's first snapshot: every change counted after it is one the refresh
    // may not see, and moves the count for the next pass. An unchanged pass says the cache was
    // true as of this moment.
    uint64 changes_before = data_changes_now();
    TimestampTz counted_at = GetCurrentTimestamp();

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "s3scan_jobs: looking for the extension");
    PG_TRY();
    {
        Oid nsp = IsBinaryUpgrade || RecoveryInProgress() ? InvalidOid : installed_extension_namespace();
        if (!OidIsValid(nsp)) {
            result = PassResult::NoExtension;
        } else {
            publish(WorkerState::Refreshing, 0);
            pgstat_report_activity(STATE_RUNNING, "s3scan_jobs: refreshing job_progress");
            // statement_timeout bounds a refresh as it would a client's statement.
            if (StatementTimeout > 0)
                enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
            refresh_job_progress_if_changed(nsp, changes_before, counted_at, &cache_knowledge, &report);
            disable_timeout(STATEMENT_TIMEOUT, false);
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        HOLD_INTERRUPTS();
        disable_timeout(STATEMENT_TIMEOUT, false);
        MemoryContextSwitchTo(pass_context);
        ErrorData *edata = CopyErrorData();
        EmitErrorReport();
        AbortCurrentTransaction();
        FlushErrorState();
        // A cancel cancels this refresh, not the next one.
        QueryCancelPending = false;
        RESUME_INTERRUPTS();
        report.outcome = RefreshOutcome::Failed;
        cache_knowledge.valid = false;
        report.started_at = report.started_at ? report.started_at : GetCurrentTimestamp();
        strlcpy(report.error, edata->message ? edata->message : "unknown error", sizeof report.error);
    }
    PG_END_TRY();
    pgstat_report_stat(false);

    if (result == PassResult::Done) {
        if (report.outcome == RefreshOutcome::Failed)
            (*failures)++;
        else if (report.outcome == RefreshOutcome::Refreshed || report.outcome == RefreshOutcome::Unchanged)
            *failures = 0;
        publish_report(&report, *failures);
        if (report.outcome == RefreshOutcome::Unchanged)
            return PassResult::Unchanged;
    }
    return result;
}

// After an error in a fold or vacuum pass (each in its own transaction): logs it, aborts the
// transaction and forgets a cancel, which cancels this pass, not the next one.
void abandon_pass(MemoryContext pass_context) {
    HOLD_INTERRUPTS();
    disable_timeout(STATEMENT_TIMEOUT, false);
    MemoryContextSwitchTo(pass_context);
    EmitErrorReport();
    AbortCurrentTransaction();
    FlushErrorState();
    QueryCancelPending = false;
    RESUME_INTERRUPTS();
}

// One fold of the counter deltas (version 1.1): one transaction. False when there is nothing to
// fold into (the extension, or its 1.1 counters, not installed). A fold that would have to wait
// for a lock is skipped. An error is logged and the next fold comes at the next interval.
bool run_fold_pass(MemoryContext pass_context, int64 *folded_rows) {
    volatile bool found = false;
    *folded_rows = 0;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    PG_TRY();
    {
        Oid nsp = IsBinaryUpgrade || RecoveryInProgress() ? InvalidOid : installed_extension_namespace();
        found = OidIsValid(nsp) && counters_installed(nsp);
        // A worker node of a Citus cluster folds only the shards it holds, once the tables are
        // distributed; its own copies of the tables are empty shells.
        if (found && !citus_coordinator() && !job_tables_distributed(nsp))
            found = false;
        if (found && fold_locks_free(nsp)) {
            pgstat_report_activity(STATE_RUNNING, "s3scan_jobs: folding counter deltas");
            if (StatementTimeout > 0)
                enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
            *folded_rows = fold_counters(nsp);
            SPI_finish();
            disable_timeout(STATEMENT_TIMEOUT, false);
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        abandon_pass(pass_context);
    }
    PG_END_TRY();
    pgstat_report_stat(false);
    return found;
}

// Vacuums job_counter_deltas, as VACUUM would (its own transactions): the folds delete every
// row it gets, and until a vacuum the dead rows stay in its pages, which a read of a job's
// pending deltas then scans. Autovacuum looks at a database once a minute by default, when a
// busy job has left some 300,000 dead rows; the worker vacuums after every
// kVacuumAfterFoldedRows folded rows instead. An error is logged.
// (SKIP_LOCKED, TRUNCATE false): it never waits, for autovacuum busy with the same table or for
// anything else, and never truncates: after a fold the table's last pages are empty, and a
// truncation wants an ACCESS EXCLUSIVE lock, which VACUUM tries to get again and again for up to
// 5 s while writers append. The worker then did not fold for that long (a full-size benchmark saw
// 5,716 pending delta rows, over a second of writes at 5,000/s), and once it got the lock every
// writer's delta insert waited for it. Empty pages are reused by the next inserts instead.
void vacuum_deltas(MemoryContext pass_context) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PG_TRY();
    {
        PushActiveSnapshot(GetTransactionSnapshot());
        Oid nsp = IsBinaryUpgrade || RecoveryInProgress() ? InvalidOid : installed_extension_namespace();
        Oid deltas = OidIsValid(nsp) ? get_relname_relid("job_counter_deltas", nsp) : InvalidOid;
        PopActiveSnapshot();
        // A vacuum of the table in progress (autovacuum's, say): skip quietly this time, rather
        // than have SKIP_LOCKED log a WARNING (it still does if one starts in between).
        bool unlocked = OidIsValid(deltas) && ConditionalLockRelationOid(deltas, ShareUpdateExclusiveLock);
        if (unlocked)
            UnlockRelationOid(deltas, ShareUpdateExclusiveLock);
        if (unlocked) {
            pgstat_report_activity(STATE_RUNNING, "s3scan_jobs: vacuuming job_counter_deltas");
            MemoryContext old = MemoryContextSwitchTo(pass_context);
            VacuumStmt *stmt = makeNode(VacuumStmt);
            stmt->options = list_make2(makeDefElem(pstrdup("skip_locked"), nullptr, -1),
                                       makeDefElem(pstrdup("truncate"), (Node *) makeString(pstrdup("false")), -1));
            stmt->is_vacuumcmd = true;
            stmt->rels = list_make1(makeVacuumRelation(
                makeRangeVar(pstrdup(get_namespace_name(nsp)), pstrdup("job_counter_deltas"), -1), InvalidOid, NIL));
            ParseState *pstate = make_parsestate(nullptr);
            MemoryContextSwitchTo(old);
            ExecVacuum(pstate, stmt, true);
        }
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        abandon_pass(pass_context);
    }
    PG_END_TRY();
    pgstat_report_stat(false);
}

// When the next fold is due, counted from the end of the last fold or refresh (0: folding only
// at refreshes). Without the counters to fold into, a look at most every kExtensionPollMs.
TimestampTz next_fold_due(TimestampTz last_end, long interval_ms, bool nothing_to_fold) {
    if (interval_ms == 0)
        return 0;
    long delay = nothing_to_fold ? Max(interval_ms, kExtensionPollMs) : interval_ms;
    return TimestampTzPlusMilliseconds(last_end == 0 ? GetCurrentTimestamp() : last_end, delay);
}

// The earlier of two due times, where 0 means never.
TimestampTz earliest(TimestampTz a, TimestampTz b) {
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return Min(a, b);
}

// When the next pass is due, counted from the end of the last one: the interval, doubled per
// consecutive failure up to kMaxBackoffIntervals intervals; without the extension, a poll at
// most every kExtensionPollMs. 0 when refreshing is off.
TimestampTz next_pass_due(TimestampTz last_pass_end, long interval_ms, int failures, bool no_extension) {
    if (interval_ms == 0)
        return 0;
    if (last_pass_end == 0)
        return GetCurrentTimestamp();  // right after start
    long delay = interval_ms;
    if (no_extension)
        delay = Min(interval_ms, kExtensionPollMs);
    else
        for (int i = 1; i < failures && delay < kMaxBackoffIntervals * interval_ms; i++)
            delay *= 2;
    return TimestampTzPlusMilliseconds(last_pass_end, delay);
}

// The memory of this process, all contexts.
Size memory_in_use() {
    return MemoryContextMemAllocated(TopMemoryContext, true);
}

// Hands the slot to a fresh worker process when this one grew past the memory limit: the slot
// is released, with the refresh this worker had scheduled, and a successor registered before this
// process exits, so that the database is served again within moments and on the same schedule.
// Keeps going when no background worker slot is free. A limit that a fresh worker already exceeds
// after its first refresh would only make workers replace each other: it is reported once and
// not acted on.
void recycle_if_grown(long passes, TimestampTz next_due) {
    static Size first_pass_memory = 0;
    static bool limit_reported = false;
    Size used = memory_in_use();
    if (first_pass_memory == 0)
        first_pass_memory = used;
    if (s3scan_worker_memory_limit <= 0 || used <= (Size) s3scan_worker_memory_limit * 1024)
        return;
    if (first_pass_memory > (Size) s3scan_worker_memory_limit * 1024) {
        if (!limit_reported)
            ereport(WARNING, (errmsg("s3scan_jobs.worker_memory_limit (%d kB) is below what a fresh refresh worker "
                                     "uses (%zu kB): the worker is not recycled",
                                     s3scan_worker_memory_limit, first_pass_memory / 1024),
                              errhint("Raise s3scan_jobs.worker_memory_limit, or set it to 0.")));
        limit_reported = true;
        return;
    }
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[my_slot];
    char dbname[NAMEDATALEN];
    memcpy(dbname, slot->dbname, NAMEDATALEN);
    slot->pid = 0;
    slot->next_refresh_due = next_due;  // the successor's first refresh
    LWLockRelease(&mem->lock);
    if (!start_refresh_worker(my_slot, 0, nullptr)) {
        // No background worker slot for a successor: keep serving, unless another worker or a
        // stop took the slot meanwhile.
        LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
        bool keep = slot->pid == 0 && !slot->stop_requested && !slot_held(slot);
        if (keep)
            slot->pid = MyProcPid;
        LWLockRelease(&mem->lock);
        if (!keep)
            proc_exit(0);
        return;
    }
    ereport(LOG, (errmsg("refresh worker for database \"%s\" recycled after %ld refreshes: %zu kB of memory",
                         dbname, passes, used / 1024),
                  errdetail("s3scan_jobs.worker_memory_limit is %d kB; a fresh worker takes over.",
                            s3scan_worker_memory_limit)));
    proc_exit(0);
}

const char *activity_for(WorkerState state) {
    switch (state) {
        case WorkerState::Disabled:
            return "s3scan_jobs: refreshing is off (refresh_interval = 0)";
        case WorkerState::WaitingForExtension:
            return "s3scan_jobs: waiting for CREATE EXTENSION s3scan_jobs";
        default:
            return "s3scan_jobs: waiting for the next refresh of job_progress";
    }
}

}  // namespace

}  // namespace s3scan

using namespace s3scan;

void s3scan_refresh_worker_main(Datum arg) {
    my_slot = DatumGetInt32(arg);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    pqsignal(SIGINT, StatementCancelHandler);
    BackgroundWorkerUnblockSignals();

    // At most one worker per database, however it was started.
    Oid dboid;
    TimestampTz inherited_due = 0;
    if (!claim_slot(&dboid, &inherited_due))
        proc_exit(0);
    before_shmem_exit(release_slot, Int32GetDatum(my_slot));

    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    // Whatever the database's or the role's settings say: nothing it runs resolves a name through
    // a schema another role can write to. PGC_S_OVERRIDE also outlives configuration reloads.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

    MemoryContext pass_context =
        AllocSetContextCreate(TopMemoryContext, "s3scan_jobs refresh pass", ALLOCSET_DEFAULT_SIZES);
    int failures = 0;
    long passes = 0;
    bool no_extension = false;
    TimestampTz last_pass_end = 0;
    TimestampTz last_fold_end = 0;
    int64 folded_since_vacuum = 0;
    bool nothing_to_fold = false;
    // Right after start, or when a recycled predecessor had scheduled it.
    TimestampTz next_due = next_pass_due(0, refresh_interval_ms(), 0, false);
    if (next_due != 0 && inherited_due > next_due)
        next_due = inherited_due;
    TimestampTz next_fold = next_fold_due(0, fold_interval_ms(), false);

    for (;;) {
        WorkerState state = next_due == 0  ? WorkerState::Disabled
                            : no_extension ? WorkerState::WaitingForExtension
                                           : WorkerState::Idle;
        publish(state, state == WorkerState::Idle ? next_due : 0);
        pgstat_report_activity(STATE_IDLE, activity_for(state));

        TimestampTz wake = earliest(next_due, next_fold);
        long timeout_ms = wake == 0 ? -1 : Max((long) ((wake - GetCurrentTimestamp()) / 1000), 0L);
        int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0);
        (void) WaitLatch(MyLatch, events, timeout_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);

        // A cancel that arrives between refreshes has nothing to cancel.
        QueryCancelPending = false;
        CHECK_FOR_INTERRUPTS();

        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            // A new interval applies at once, counted from the last pass.
            next_due = next_pass_due(last_pass_end, refresh_interval_ms(), failures, no_extension);
            next_fold = next_fold_due(last_fold_end, fold_interval_ms(), nothing_to_fold);
        }

        if (next_due != 0 && GetCurrentTimestamp() >= next_due) {
            MemoryContextReset(pass_context);
            MemoryContext old = MemoryContextSwitchTo(pass_context);
            PassResult pass = run_pass(&failures, pass_context);
            no_extension = pass == PassResult::NoExtension;
            MemoryContextSwitchTo(old);
            passes++;
            last_pass_end = GetCurrentTimestamp();
            next_due = next_pass_due(last_pass_end, refresh_interval_ms(), failures, no_extension);
            // A refresh folds first; a pass that found nothing changed did not. A pass that found
            // the extension tells the folds there is something to fold into.
            if (pass != PassResult::Unchanged)
                last_fold_end = last_pass_end;
            nothing_to_fold = nothing_to_fold && no_extension;
            next_fold = next_fold_due(last_fold_end, fold_interval_ms(), nothing_to_fold);
            recycle_if_grown(passes, next_due);
        } else if (next_fold != 0 && GetCurrentTimestamp() >= next_fold) {
            MemoryContextReset(pass_context);
            MemoryContext old = MemoryContextSwitchTo(pass_context);
            int64 folded = 0;
            nothing_to_fold = !run_fold_pass(pass_context, &folded);
            folded_since_vacuum += folded;
            if (folded_since_vacuum >= kVacuumAfterFoldedRows) {
                vacuum_deltas(pass_context);
                folded_since_vacuum = 0;
            }
            MemoryContextSwitchTo(old);
            last_fold_end = GetCurrentTimestamp();
            next_fold = next_fold_due(last_fold_end, fold_interval_ms(), nothing_to_fold);
            recycle_if_grown(passes, next_due);
        }
    }
}
