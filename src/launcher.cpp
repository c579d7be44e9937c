// The launcher: one per server, when the library is preloaded. It starts a refresh worker for
// each database named in s3scan_jobs.database that exists, restarts one that exited (backing off
// when it keeps exiting quickly), and stops it when its database leaves the list. It is connected
// to no database, so it never blocks CREATE DATABASE or DROP DATABASE; it ignores cancel
// requests (there is nothing of it to cancel), and SIGTERM ends it (the postmaster restarts it).
#include "settings.hpp"
#include "worker.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/heapam.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/varlena.h"
}

#include <csignal>

namespace s3scan {

void fill_worker(BackgroundWorker *worker, const char *function, const char *name, const char *type) {
    memset(worker, 0, sizeof *worker);
    worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // Never on a hot standby: refreshing starts once the server is promoted.
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    strlcpy(worker->bgw_library_name, "s3scan_jobs", BGW_MAXLEN);
    strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
    strlcpy(worker->bgw_name, name, BGW_MAXLEN);
    strlcpy(worker->bgw_type, type, BGW_MAXLEN);
}

void register_launcher() {
    BackgroundWorker worker;
    fill_worker(&worker, "s3scan_launcher_main", "s3scan_jobs launcher", "s3scan_jobs launcher");
    worker.bgw_restart_time = 10;
    RegisterBackgroundWorker(&worker);
}

namespace {

constexpr long kLauncherNapMs = 1000;           // the launcher looks at its databases this often
constexpr long kQuickExitSeconds = 10;          // a worker that lived less than this exited quickly
constexpr long kMaxRestartDelayMs = 60 * 1000;  // quick exits back off up to this

// The launcher's own knowledge of the workers it started (process-local).
struct LaunchedWorker {
    BackgroundWorkerHandle *handle;
    TimestampTz started_at;
    TimestampTz restart_after;
    int quick_exits;
    bool warned_case;  // said that only a database in another case exists
};
LaunchedWorker launched[kMaxWorkerSlots];

// One database named in s3scan_jobs.database.
struct ConfiguredDatabase {
    char name[NAMEDATALEN];
    Oid oid;                             // InvalidOid: no such database (or being dropped)
    char other_case[NAMEDATALEN];        // a database whose name differs only in case, if any
};

// The databases named in s3scan_jobs.database, looked up in pg_database.
int configured_databases(ConfiguredDatabase dbs[kMaxWorkerSlots]) {
    char *raw = pstrdup(s3scan_databases != nullptr ? s3scan_databases : "");
    List *list = NIL;
    if (!SplitIdentifierString(raw, ',', &list))
        return 0;  // the setting's check refuses such a value
    int count = 0;
    ListCell *cell;
    foreach (cell, list) {
        if (count == kMaxWorkerSlots)
            break;
        strlcpy(dbs[count].name, (const char *) lfirst(cell), NAMEDATALEN);
        dbs[count].oid = InvalidOid;
        dbs[count].other_case[0] = '\0';
        count++;
    }
    // Connected to no database, the launcher can read shared catalogs only with a plain heap
    // scan (as PostgreSQL's logical replication launcher does).
    MemoryContext caller_context = CurrentMemoryContext;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
        if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
            continue;
        for (int d = 0; d < count; d++) {
            if (strcmp(NameStr(db->datname), dbs[d].name) == 0)
                dbs[d].oid = db->oid;
            else if (pg_strcasecmp(NameStr(db->datname), dbs[d].name) == 0)
                strlcpy(dbs[d].other_case, NameStr(db->datname), NAMEDATALEN);
        }
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

// Whether the launcher's worker of slot i may still be starting or running; forgets the handle of
// one that stopped and schedules its restart, later when it keeps exiting quickly.
bool launched_worker_pending(int i) {
    LaunchedWorker *w = &launched[i];
    if (w->handle == nullptr)
        return false;
    pid_t pid;
    BgwHandleStatus status = GetBackgroundWorkerPid(w->handle, &pid);
    if (status == BGWH_POSTMASTER_DIED)
        proc_exit(1);
    if (status != BGWH_STOPPED)
        return true;
    pfree(w->handle);
    w->handle = nullptr;
    TimestampTz now = GetCurrentTimestamp();
    bool quick = !TimestampDifferenceExceeds(w->started_at, now, kQuickExitSeconds * 1000);
    w->quick_exits = quick ? w->quick_exits + 1 : 0;
    long delay = kLauncherNapMs;
    for (int k = 0; k < w->quick_exits && delay < kMaxRestartDelayMs; k++)
        delay *= 2;
    w->restart_after = TimestampTzPlusMilliseconds(now, Min(delay, kMaxRestartDelayMs));
    return false;
}

void stop_launched_worker(int i, pid_t pid) {
    if (launched[i].handle != nullptr) {
        TerminateBackgroundWorker(launched[i].handle);
        pfree(launched[i].handle);
        launched[i].handle = nullptr;
    } else if (pid != 0) {
        kill(pid, SIGTERM);
    }
}

// Says once, when a configured database goes missing, why; with a hint when only the case differs.
void report_missing(const ConfiguredDatabase *db) {
    if (db->other_case[0] != '\0')
        ereport(WARNING,
                (errcode(ERRCODE_UNDEFINED_DATABASE),
                 errmsg("database \"%s\" named in s3scan_jobs.database does not exist", db->name),
                 errhint("Unquoted names are folded to lower case. To serve database \"%s\", write it "
                         "double-quoted: s3scan_jobs.database = '\"%s\"'.",
                         db->other_case, db->other_case)));
    else
        ereport(LOG, (errmsg("database \"%s\" named in s3scan_jobs.database does not exist", db->name)));
}

// One look at the configured databases: start, restart or stop workers.
void launcher_pass() {
    static ConfiguredDatabase dbs[kMaxWorkerSlots];
    int count = configured_databases(dbs);
    WorkerShmem *mem = worker_slots();
    bool wanted[kMaxWorkerSlots] = {};
    int to_start[kMaxWorkerSlots];
    const ConfiguredDatabase *newly_missing[kMaxWorkerSlots];
    int starts = 0;
    int missing = 0;
    TimestampTz now = GetCurrentTimestamp();

    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    for (int d = 0; d < count; d++) {
        if (find_slot(mem, dbs[d].name, true) >= 0)
            continue;  // refresh_worker_start() already serves it
        int i = find_slot(mem, dbs[d].name, false);
        if (i < 0) {
            i = take_free_slot(mem, InvalidOid, dbs[d].name, false);
            if (i < 0)
                continue;
            launched[i] = {nullptr, 0, 0, 0, false};
        }
        wanted[i] = true;
        WorkerSlot *slot = &mem->slots[i];
        if (slot->pid != 0 || launched_worker_pending(i))
            continue;
        if (!OidIsValid(dbs[d].oid)) {
            bool case_news = dbs[d].other_case[0] != '\0' && !launched[i].warned_case;
            if (slot->state != WorkerState::DatabaseMissing || case_news)
                newly_missing[missing++] = &dbs[d];
            launched[i].warned_case = dbs[d].other_case[0] != '\0';
            slot->state = WorkerState::DatabaseMissing;
            continue;
        }
        launched[i].warned_case = false;
        slot->dboid = dbs[d].oid;
        if (slot->stop_requested) {
            slot->state = WorkerState::Stopped;
            continue;
        }
        if (!slot_held(slot) && now >= launched[i].restart_after)
            to_start[starts++] = i;
    }
    // Databases no longer configured: stop their workers, free their slots.
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use && !slot->started_by_sql && !wanted[i]) {
            stop_launched_worker(i, slot->pid);
            slot->in_use = false;
        }
    }
    LWLockRelease(&mem->lock);

    for (int k = 0; k < missing; k++)
        report_missing(newly_missing[k]);
    for (int k = 0; k < starts; k++) {
        int i = to_start[k];
        // The handle outlives the pass.
        MemoryContext pass_context = MemoryContextSwitchTo(TopMemoryContext);
        bool started = start_refresh_worker(i, MyProcPid, &launched[i].handle);
        MemoryContextSwitchTo(pass_context);
        if (started) {
            launched[i].started_at = GetCurrentTimestamp();
        } else {
            launched[i].handle = nullptr;
            launched[i].restart_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10 * 1000);
            ereport(WARNING, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                              errmsg("s3scan_jobs could not start a refresh worker for database \"%s\"",
                                     mem->slots[i].dbname),
                              errhint("Raise max_worker_processes.")));
        }
    }
}

}  // namespace

}  // namespace s3scan

using namespace s3scan;

void s3scan_launcher_main(Datum arg) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    pqsignal(SIGINT, SIG_IGN);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);

    (void) worker_slots();

    MemoryContext pass_context =
        AllocSetContextCreate(TopMemoryContext, "s3scan_jobs launcher pass", ALLOCSET_DEFAULT_SIZES);
    long nap_ms = 0;  // the first look right away
    for (;;) {
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, nap_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
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
        nap_ms = kLauncherNapMs;
    }
}
