// The background workers: the launcher (one per server, when preloaded) and the refresh worker
// (one per database served). The launcher starts a refresh worker for each database named in
// s3scan_jobs.database that exists, restarts it when it exits, and stops it when the database
// leaves the list. A refresh worker refreshes job_progress every s3scan_jobs.refresh_interval
// through refresh_job_progress_now(), the same code as refresh_job_progress().
//
// Both follow PostgreSQL's worker_spi: die() on SIGTERM, config reload on SIGHUP, a latch wait
// that exits when the postmaster dies, CHECK_FOR_INTERRUPTS() on every pass, and one transaction
// per pass, so that between passes a worker holds no lock and no snapshot.
//
// The two mains are C-linkage entry points with no guard: nothing here can throw a C++
// exception (no standard library, no new), and no C++ object with a destructor is alive when
// PostgreSQL raises; a PostgreSQL error is caught by run_pass() or ends the process.
#include "worker.hpp"

#include "refresh.hpp"
#include "settings.hpp"
#include "worker_shmem.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timeout.h"
#include "utils/varlena.h"
}

#include <csignal>

namespace s3scan {

namespace {

constexpr long kLauncherNapMs = 1000;           // the launcher looks at its databases this often
constexpr long kExtensionPollMs = 5000;         // a worker without the extension looks this often
constexpr int kMaxBackoffIntervals = 4;         // failed refreshes are retried at most this late
constexpr long kQuickExitSeconds = 10;          // a worker that lived less than this exited quickly
constexpr long kMaxRestartDelayMs = 60 * 1000;  // quick exits back off up to this

void fill_worker(BackgroundWorker *worker, const char *function, const char *name, const char *type) {
    memset(worker, 0, sizeof *worker);
    worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // Never on a hot standby: refreshing starts once the server is promoted.
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    snprintf(worker->bgw_library_name, BGW_MAXLEN, "s3scan_jobs");
    snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(worker->bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

}  // namespace

void register_launcher() {
    BackgroundWorker worker;
    fill_worker(&worker, "s3scan_launcher_main", "s3scan_jobs launcher", "s3scan_jobs launcher");
    worker.bgw_restart_time = 10;
    RegisterBackgroundWorker(&worker);
}

bool start_refresh_worker(int slot_index, bool started_by_sql, pid_t notify_pid,
                          BackgroundWorkerHandle **handle) {
    WorkerShmem *mem = worker_shmem();
    char dbname[NAMEDATALEN];
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[slot_index];
    slot->started_by_sql = started_by_sql;
    slot->state = WorkerState::Starting;
    memcpy(dbname, slot->dbname, NAMEDATALEN);
    LWLockRelease(&mem->lock);

    BackgroundWorker worker;
    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "s3scan_jobs refresh worker for database %s", dbname);
    fill_worker(&worker, "s3scan_refresh_worker_main", name, "s3scan_jobs refresh worker");
    // Restarts are the launcher's decision (it knows whether the database still exists).
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    worker.bgw_main_arg = Int32GetDatum(slot_index);
    worker.bgw_notify_pid = notify_pid;
    return RegisterDynamicBackgroundWorker(&worker, handle);
}

// ---------------------------------------------------------------------------------------------
// The refresh worker

namespace {

int my_slot = -1;

// Runs as the worker exits (also on FATAL): the slot no longer has a running worker.
void release_slot(int code, Datum arg) {
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[DatumGetInt32(arg)];
    if (slot->pid == MyProcPid) {
        slot->pid = 0;
        slot->state = WorkerState::Stopped;
        slot->next_refresh_due = 0;
    }
    LWLockRelease(&mem->lock);
}

void publish_next_due(TimestampTz due) {
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    mem->slots[my_slot].next_refresh_due = due;
    LWLockRelease(&mem->lock);
}

void publish_report(const RefreshReport *report, int failures) {
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[my_slot];
    slot->last_refresh_start = report->started_at;
    slot->last_refresh_duration_ms = report->duration_ms;
    snprintf(slot->last_refresh_outcome, sizeof slot->last_refresh_outcome, "%s",
             outcome_name(report->outcome));
    if (report->outcome == RefreshOutcome::Failed)
        snprintf(slot->last_error, sizeof slot->last_error, "%s", report->error);
    slot->consecutive_failures = failures;
    LWLockRelease(&mem->lock);
}

// What one pass found.
enum class PassResult { Done, NoExtension };

// One pass: one transaction, one snapshot. A refresh error is caught and recorded by the
// refresh itself; any other error is caught here, logged, and counted as a failed refresh.
PassResult run_pass(int *failures, MemoryContext pass_context) {
    volatile PassResult result = PassResult::Done;
    RefreshReport report;
    memset(&report, 0, sizeof report);

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
            set_worker_state(my_slot, WorkerState::Refreshing);
            pgstat_report_activity(STATE_RUNNING, "s3scan_jobs: refreshing job_progress");
            // statement_timeout bounds a refresh as it would a client's statement.
            if (StatementTimeout > 0)
                enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
            refresh_job_progress_now(nsp, RefreshOrigin::Worker, &report);
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
        RESUME_INTERRUPTS();
        report.outcome = RefreshOutcome::Failed;
        report.started_at = report.started_at ? report.started_at : GetCurrentTimestamp();
        snprintf(report.error, sizeof report.error, "%s", edata->message ? edata->message : "unknown error");
    }
    PG_END_TRY();
    pgstat_report_stat(false);

    if (result == PassResult::Done) {
        if (report.outcome == RefreshOutcome::Failed)
            (*failures)++;
        else if (report.outcome == RefreshOutcome::Refreshed)
            *failures = 0;
        publish_report(&report, *failures);
    }
    return result;
}

// The delay before the next refresh: the interval, doubled per consecutive failure up to
// kMaxBackoffIntervals intervals.
long next_delay_ms(long interval_ms, int failures) {
    long factor = 1;
    for (int i = 1; i < failures && factor < kMaxBackoffIntervals; i++)
        factor *= 2;
    return interval_ms * factor;
}

}  // namespace

}  // namespace s3scan

using namespace s3scan;

void s3scan_refresh_worker_main(Datum arg) {
    my_slot = DatumGetInt32(arg);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    // Claim the slot: at most one worker per database, however it was started.
    WorkerShmem *mem = worker_shmem();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    WorkerSlot *slot = &mem->slots[my_slot];
    bool mine = slot->in_use && slot->pid == 0 && !slot->stop_requested;
    Oid dboid = slot->dboid;
    if (mine)
        slot->pid = MyProcPid;
    LWLockRelease(&mem->lock);
    if (!mine)
        proc_exit(0);  // another worker serves this database, or it was stopped meanwhile
    before_shmem_exit(release_slot, Int32GetDatum(my_slot));

    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

    MemoryContext pass_context =
        AllocSetContextCreate(TopMemoryContext, "s3scan_jobs refresh pass", ALLOCSET_DEFAULT_SIZES);
    int failures = 0;
    TimestampTz last_attempt_end = 0;
    TimestampTz next_due = GetCurrentTimestamp();  // refresh once right after start
    bool waiting_for_extension = false;

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            // A new interval applies at once: count it from the last attempt.
            if (last_attempt_end != 0)
                next_due = TimestampTzPlusMilliseconds(
                    last_attempt_end, next_delay_ms(s3scan_refresh_interval_s * 1000L, failures));
        }

        long interval_ms = s3scan_refresh_interval_s * 1000L;
        long timeout_ms = -1;
        if (interval_ms == 0) {
            set_worker_state(my_slot, WorkerState::Disabled);
            publish_next_due(0);
            pgstat_report_activity(STATE_IDLE, "s3scan_jobs: refreshing is off (refresh_interval = 0)");
        } else {
            if (GetCurrentTimestamp() >= next_due) {
                MemoryContextReset(pass_context);
                MemoryContext old = MemoryContextSwitchTo(pass_context);
                PassResult result = run_pass(&failures, pass_context);
                MemoryContextSwitchTo(old);
                last_attempt_end = GetCurrentTimestamp();
                waiting_for_extension = result == PassResult::NoExtension;
                long delay = waiting_for_extension ? Min(interval_ms, kExtensionPollMs)
                                                   : next_delay_ms(interval_ms, failures);
                next_due = TimestampTzPlusMilliseconds(last_attempt_end, delay);
            }
            set_worker_state(my_slot,
                             waiting_for_extension ? WorkerState::WaitingForExtension : WorkerState::Idle);
            publish_next_due(waiting_for_extension ? 0 : next_due);
            pgstat_report_activity(STATE_IDLE,
                                   waiting_for_extension
                                       ? "s3scan_jobs: waiting for CREATE EXTENSION s3scan_jobs"
                                       : "s3scan_jobs: waiting for the next refresh of job_progress");
            long remaining = (long) ((next_due - GetCurrentTimestamp()) / 1000);
            timeout_ms = Max(remaining, 1L);
        }

        int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0);
        (void) WaitLatch(MyLatch, events, timeout_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

// ---------------------------------------------------------------------------------------------
// The launcher

namespace {

// The launcher's own knowledge of the workers it started (process-local).
struct LaunchedWorker {
    BackgroundWorkerHandle *handle;
    TimestampTz started_at;
    TimestampTz restart_after;
    int quick_exits;
};
LaunchedWorker launched[kMaxWorkerSlots];

// The databases named in s3scan_jobs.database, with their OIDs (InvalidOid: does not exist).
int configured_databases(char names[kMaxWorkerSlots][NAMEDATALEN], Oid oids[kMaxWorkerSlots]) {
    char *raw = pstrdup(s3scan_databases != nullptr ? s3scan_databases : "");
    List *list = NIL;
    if (!SplitIdentifierString(raw, ',', &list)) {
        ereport(LOG, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("s3scan_jobs.database has invalid syntax: \"%s\"", s3scan_databases)));
        return 0;
    }
    int count = 0;
    ListCell *cell;
    MemoryContext caller_context = CurrentMemoryContext;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    foreach (cell, list) {
        if (count == kMaxWorkerSlots)
            break;
        snprintf(names[count], NAMEDATALEN, "%s", (const char *) lfirst(cell));
        oids[count] = InvalidOid;
        count++;
    }
    // Connected to no database, the launcher can read shared catalogs only with a plain heap
    // scan (as PostgreSQL's logical replication launcher does).
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
        for (int d = 0; d < count; d++)
            if (strcmp(NameStr(db->datname), names[d]) == 0 && db->datconnlimit != DATCONNLIMIT_INVALID_DB)
                oids[d] = db->oid;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
    MemoryContextSwitchTo(caller_context);
    return count;
}

int find_slot(WorkerShmem *mem, const char *dbname, bool by_sql) {
    for (int i = 0; i < kMaxWorkerSlots; i++)
        if (mem->slots[i].in_use && mem->slots[i].started_by_sql == by_sql &&
            strcmp(mem->slots[i].dbname, dbname) == 0)
            return i;
    return -1;
}

int claim_free_slot(WorkerShmem *mem) {
    for (int i = 0; i < kMaxWorkerSlots; i++)
        if (!mem->slots[i].in_use) {
            memset(&mem->slots[i], 0, sizeof mem->slots[i]);
            mem->slots[i].in_use = true;
            return i;
        }
    return -1;
}

// Whether the worker of slot i runs or is being started; forgets handles of exited workers.
bool worker_alive(int i, pid_t slot_pid) {
    LaunchedWorker *w = &launched[i];
    if (w->handle != nullptr) {
        pid_t pid;
        BgwHandleStatus status = GetBackgroundWorkerPid(w->handle, &pid);
        if (status == BGWH_POSTMASTER_DIED)
            proc_exit(1);
        if (status != BGWH_STOPPED)
            return true;
        pfree(w->handle);
        w->handle = nullptr;
        TimestampTz now = GetCurrentTimestamp();
        bool quick = TimestampDifferenceExceeds(w->started_at, now, kQuickExitSeconds * 1000) == false;
        w->quick_exits = quick ? w->quick_exits + 1 : 0;
        long delay = kLauncherNapMs;
        for (int k = 0; k < w->quick_exits && delay < kMaxRestartDelayMs; k++)
            delay *= 2;
        w->restart_after = TimestampTzPlusMilliseconds(now, Min(delay, kMaxRestartDelayMs));
        return slot_pid != 0;
    }
    return slot_pid != 0;  // started by an earlier launcher
}

void stop_worker(int i, pid_t pid) {
    if (launched[i].handle != nullptr) {
        TerminateBackgroundWorker(launched[i].handle);
        pfree(launched[i].handle);
        launched[i].handle = nullptr;
    } else if (pid != 0) {
        kill(pid, SIGTERM);
    }
}

// One look at the configured databases: start, restart or stop workers.
void launcher_pass() {
    static char names[kMaxWorkerSlots][NAMEDATALEN];
    static Oid oids[kMaxWorkerSlots];
    int count = configured_databases(names, oids);
    WorkerShmem *mem = worker_shmem();
    bool wanted[kMaxWorkerSlots] = {};
    int to_start[kMaxWorkerSlots];
    int starts = 0;
    TimestampTz now = GetCurrentTimestamp();

    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    for (int d = 0; d < count; d++) {
        if (find_slot(mem, names[d], true) >= 0)
            continue;  // refresh_worker_start() already serves it
        int i = find_slot(mem, names[d], false);
        if (i < 0) {
            i = claim_free_slot(mem);
            if (i < 0)
                continue;
            snprintf(mem->slots[i].dbname, NAMEDATALEN, "%s", names[d]);
            launched[i] = {nullptr, 0, 0, 0};
        }
        wanted[i] = true;
        WorkerSlot *slot = &mem->slots[i];
        if (worker_alive(i, slot->pid))
            continue;
        if (!OidIsValid(oids[d])) {
            slot->state = WorkerState::DatabaseMissing;
            continue;
        }
        slot->dboid = oids[d];
        if (slot->stop_requested) {
            slot->state = WorkerState::Stopped;
            continue;
        }
        if (now >= launched[i].restart_after)
            to_start[starts++] = i;
    }
    // Databases no longer configured: stop their workers, free their slots.
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use && !slot->started_by_sql && !wanted[i]) {
            stop_worker(i, slot->pid);
            slot->in_use = false;
        }
    }
    LWLockRelease(&mem->lock);

    for (int k = 0; k < starts; k++) {
        int i = to_start[k];
        // The handle outlives the pass.
        MemoryContext pass_context = MemoryContextSwitchTo(TopMemoryContext);
        bool started = start_refresh_worker(i, false, MyProcPid, &launched[i].handle);
        MemoryContextSwitchTo(pass_context);
        if (started) {
            launched[i].started_at = GetCurrentTimestamp();
        } else {
            launched[i].handle = nullptr;
            launched[i].restart_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10 * 1000);
            set_worker_state(i, WorkerState::NoWorkerSlot);
            ereport(WARNING, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                              errmsg("s3scan_jobs could not start a refresh worker for database \"%s\"",
                                     mem->slots[i].dbname),
                              errhint("Raise max_worker_processes.")));
        }
    }
}

}  // namespace

void s3scan_launcher_main(Datum arg) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    // Connected to no database: it never blocks CREATE DATABASE or DROP DATABASE.
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);

    (void) worker_shmem();

    MemoryContext pass_context =
        AllocSetContextCreate(TopMemoryContext, "s3scan_jobs launcher pass", ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        MemoryContextReset(pass_context);
        MemoryContext old = MemoryContextSwitchTo(pass_context);
        launcher_pass();
        MemoryContextSwitchTo(old);
        pgstat_report_activity(STATE_IDLE, "s3scan_jobs: watching the refresh workers");
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kLauncherNapMs,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
