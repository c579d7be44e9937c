// The ProcessUtility hook that lets DROP DATABASE, ALTER DATABASE ... RENAME TO / SET TABLESPACE and
// CREATE DATABASE ... TEMPLATE work on a database a refresh worker serves, as they do without the
// extension. Those commands refuse a database with other connections; the idle worker is one. So,
// when the command's user may run it (superuser or the database's owner), the hook holds the
// database's slot (no worker may claim it: worker_slots.hpp), stops its worker, runs the command,
// and releases the hold whether the command succeeded or not. The launcher then restarts the
// worker of a database it still serves; a worker started by refresh_worker_start() is started again
// here, unless its database was dropped, in which case its slot is freed.
#include "database_commands.hpp"

#include "pg.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "catalog/pg_database.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/syscache.h"
}

namespace s3scan {

namespace {

constexpr long kStopWaitMs = 10 * 1000;

ProcessUtility_hook_type previous_hook = nullptr;

// The database a command needs without connections, or nullptr.
const char *database_needing_no_connections(Node *parsetree, bool *dropping) {
    *dropping = false;
    switch (nodeTag(parsetree)) {
        case T_DropdbStmt:
            *dropping = true;
            return ((DropdbStmt *) parsetree)->dbname;
        case T_RenameStmt: {
            RenameStmt *stmt = (RenameStmt *) parsetree;
            return stmt->renameType == OBJECT_DATABASE ? stmt->subname : nullptr;
        }
        case T_CreatedbStmt: {
            ListCell *cell;
            foreach (cell, ((CreatedbStmt *) parsetree)->options) {
                DefElem *option = (DefElem *) lfirst(cell);
                if (strcmp(option->defname, "template") == 0 && option->arg != nullptr)
                    return defGetString(option);
            }
            return nullptr;
        }
        case T_AlterDatabaseStmt: {
            ListCell *cell;
            foreach (cell, ((AlterDatabaseStmt *) parsetree)->options)
                if (strcmp(((DefElem *) lfirst(cell))->defname, "tablespace") == 0)
                    return ((AlterDatabaseStmt *) parsetree)->dbname;
            return nullptr;
        }
        default:
            return nullptr;
    }
}

// Holds every slot of dboid for this backend and stops their workers. Returns a bit per slot held
// (bit i: slot i), and which of them were started from SQL and had a worker.
uint64 hold_and_stop(Oid dboid, uint64 *restart_from_sql) {
    WorkerShmem *mem = worker_slots();
    uint64 held = 0;
    *restart_from_sql = 0;
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (slot->in_use && slot->dboid == dboid && !slot_held(slot)) {
            slot->held_by = MyProcPid;
            held |= UINT64CONST(1) << i;
            if (slot->started_by_sql && slot->pid != 0 && !slot->stop_requested)
                *restart_from_sql |= UINT64CONST(1) << i;
        }
    }
    LWLockRelease(&mem->lock);
    for (int i = 0; i < kMaxWorkerSlots; i++)
        if (held & (UINT64CONST(1) << i))
            (void) stop_slot_worker(i, kStopWaitMs);
    return held;
}

// Releases the holds; frees the SQL slots of a dropped database, restarts the others' workers.
void release(uint64 held, uint64 restart_from_sql, bool database_gone) {
    WorkerShmem *mem = worker_slots();
    LWLockAcquire(&mem->lock, LW_EXCLUSIVE);
    for (int i = 0; i < kMaxWorkerSlots; i++) {
        WorkerSlot *slot = &mem->slots[i];
        if (!(held & (UINT64CONST(1) << i)) || slot->held_by != MyProcPid)
            continue;
        slot->held_by = 0;
        if (database_gone && slot->started_by_sql)
            slot->in_use = false;
    }
    LWLockRelease(&mem->lock);
    if (database_gone)
        return;
    for (int i = 0; i < kMaxWorkerSlots; i++)
        if (restart_from_sql & (UINT64CONST(1) << i))
            (void) start_refresh_worker(i, 0, nullptr);
}

bool may_run_command_on(Oid dboid) {
    return superuser() || pg_database_ownercheck(dboid, GetUserId());
}

void run_command(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
                 ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) {
    if (previous_hook != nullptr)
        previous_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

void process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                     ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                     DestReceiver *dest, QueryCompletion *qc) {
    bool dropping = false;
    const char *dbname = database_needing_no_connections(pstmt->utilityStmt, &dropping);
    Oid dboid = dbname != nullptr ? get_database_oid(dbname, true) : InvalidOid;
    uint64 restart_from_sql = 0;
    uint64 held = OidIsValid(dboid) && may_run_command_on(dboid) ? hold_and_stop(dboid, &restart_from_sql) : 0;
    if (held == 0) {
        run_command(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        return;
    }
    const volatile uint64 held_slots = held;
    const volatile uint64 restart_slots = restart_from_sql;
    const volatile bool database_dropped = dropping;
    PG_TRY();
    { run_command(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc); }
    PG_CATCH();
    {
        release(held_slots, restart_slots, false);
        PG_RE_THROW();
    }
    PG_END_TRY();
    // DROP DATABASE cannot run in a transaction block: when it returns, the database is gone.
    release(held_slots, restart_slots, database_dropped);
}

}  // namespace

void install_database_command_hook() {
    if (ProcessUtility_hook == process_utility)
        return;
    previous_hook = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
}

}  // namespace s3scan
