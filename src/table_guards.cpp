// What the extension refuses or notices of what is done to its tables, so that no DDL or statement
// leaves the per-job counters silently wrong:
// - on_table_ddl_start() (event trigger, ddl_command_start, ALTER TABLE and ALTER INDEX): the
//   internal tables (job_counter_deltas, job_counters, job_counters_lock) keep their columns and
//   names, and their indexes their names: the counter triggers write job_counter_deltas' rows
//   directly, in its layout, and the SQL folds and repairs name every column and
//   job_counters_pkey. Storage settings, statistics, replica identity, owner and the like are
//   allowed.
// - on_table_ddl_end() (event trigger, ddl_command_end: ALTER/CREATE [FOREIGN] TABLE, DROP/ALTER
//   TRIGGER): jobs, job_objects and findings take no part in inheritance or partitioning (a
//   child's rows would not be counted, yet a parent-level UPDATE or DELETE would subtract them);
//   and when the counter triggers are no longer as set_counter_maintenance(true) left them
//   (ALTER TABLE ... DISABLE/ENABLE TRIGGER [ALL|USER|name], as pg_restore --disable-triggers and
//   bulk loads do; a dropped or renamed trigger) while reads use the counters, reads go back to
//   counting the base tables (notice_counter_trigger_changes()) until set_counter_maintenance(true)
//   restores the triggers and rebuilds the counters. Both event triggers are ENABLE ALWAYS: they
//   fire under session_replication_role = replica too. Neither acts inside CREATE or ALTER
//   EXTENSION, whose scripts build these objects step by step, or in pg_upgrade's restore.
// - require_counted_tables_idle(): repair_job_counters() refuses to run inside a statement that
//   reads or changes job_objects or findings (a writable WITH, a trigger, a query over the table):
//   its recount would see that statement's changes, which the statement's counter trigger then
//   adds again.
#include "data_changes.hpp"
#include "pinned_sql.hpp"

extern "C" {
#include "catalog/index.h"
#include "catalog/pg_inherits.h"
#include "nodes/parsenodes.h"
}

namespace {

using namespace s3scan;

const char *const kInternalTables[] = {"job_counter_deltas", "job_counters", "job_counters_lock"};
const char *const kCountedTables[] = {"job_objects", "findings"};

bool is_internal_table(Oid relid, Oid nsp) {
    for (const char *name : kInternalTables)
        if (OidIsValid(relid) && get_relname_relid(name, nsp) == relid)
            return true;
    return false;
}

// ALTER TABLE subcommands that leave the table's columns, names and rows as the extension writes
// and reads them.
bool harmless_on_internal_table(AlterTableType subtype) {
    switch (subtype) {
        case AT_SetRelOptions:
        case AT_ResetRelOptions:
        case AT_ReplaceRelOptions:
        case AT_SetStatistics:
        case AT_SetStorage:
        case AT_SetCompression:
        case AT_ReplicaIdentity:
        case AT_ClusterOn:
        case AT_DropCluster:
        case AT_SetTableSpace:
        case AT_ChangeOwner:
            return true;
        default:
            return false;
    }
}

void refuse_internal_change(Oid relid) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("cannot change the columns or the names of table \"%s\" or its indexes", get_rel_name(relid)),
                    errdetail("It is internal to s3scan_jobs, whose counters write and read it in this layout."),
                    errhint("Storage parameters, statistics, replica identity, tablespace and owner may be changed; "
                            "indexes may be added.")));
}

// The relation an ALTER TABLE-tagged command names, as the command will resolve it; InvalidOid
// when it names none or one that does not exist.
Oid altered_relation(Node *parsetree, bool *internal_change) {
    *internal_change = false;
    if (IsA(parsetree, AlterTableStmt)) {
        AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            *internal_change = *internal_change || !harmless_on_internal_table(cmd->subtype);
        }
        return RangeVarGetRelid(stmt->relation, NoLock, true);
    }
    RangeVar *renamed = nullptr;
    if (IsA(parsetree, RenameStmt))
        renamed = ((RenameStmt *) parsetree)->relation;
    else if (IsA(parsetree, AlterObjectSchemaStmt))
        renamed = ((AlterObjectSchemaStmt *) parsetree)->relation;
    if (renamed == nullptr)
        return InvalidOid;
    *internal_change = true;
    // An index is renamed for its table: the folds name job_counters_pkey.
    Oid relid = RangeVarGetRelid(renamed, NoLock, true);
    if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_INDEX)
        relid = IndexGetRelation(relid, true);
    return relid;
}

EventTriggerData *event_trigger_data(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("function can only be called as an event trigger")));
    return (EventTriggerData *) fcinfo->context;
}

void refuse_inheritance(Oid nsp) {
    const char *const tables[] = {"jobs", "job_objects", "findings"};
    for (const char *name : tables) {
        Oid relid = get_relname_relid(name, nsp);
        if (!OidIsValid(relid))
            continue;
        bool child = has_superclass(relid);
        List *children = find_inheritance_children(relid, NoLock);
        if (child || children != NIL)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("table \"%s\" of s3scan_jobs cannot %s", name,
                            child ? "inherit from another table or be a partition" : "have child tables"),
                     errdetail("The per-job counters count the rows of job_objects and findings by their own triggers: "
                               "rows of a child table or a partition would be missed, or subtracted without being "
                               "counted."),
                     errhint("Keep such rows in a table of their own.")));
    }
}

// Whether the counter triggers are as set_counter_maintenance(true) leaves them: the
// statement-level ones ENABLE ALWAYS, the row-level ones (logical replication's apply) ENABLE
// REPLICA. The quick look, in the relation cache; counter_triggers_as_maintained() is the SQL
// truth that the fallback consults. A table another session is changing (its lock is not free)
// is left to the event trigger of that session's command.
bool counter_triggers_look_maintained(Oid nsp) {
    const char *const kinds[] = {"inserts", "updates", "deletes", "truncate", "replicated"};
    for (const char *table : kCountedTables) {
        Oid relid = get_relname_relid(table, nsp);
        if (!OidIsValid(relid))
            return false;
        if (!ConditionalLockRelationOid(relid, AccessShareLock))
            continue;
        Relation rel = relation_open(relid, NoLock);
        TriggerDesc *triggers = rel->trigdesc;
        int as_set = 0;
        for (int t = 0; triggers != nullptr && t < triggers->numtriggers; t++) {
            const Trigger *trigger = &triggers->triggers[t];
            for (const char *kind : kinds) {
                char name[NAMEDATALEN];
                snprintf(name, sizeof name, "%s_count_%s", table, kind);
                char expected = strcmp(kind, "replicated") == 0 ? TRIGGER_FIRES_ON_REPLICA : TRIGGER_FIRES_ALWAYS;
                if (strcmp(trigger->tgname, name) == 0 && trigger->tgenabled == expected)
                    as_set++;
            }
        }
        relation_close(rel, AccessShareLock);
        if (as_set != 5)
            return false;
    }
    return true;
}

// Runs notice_counter_trigger_changes() as the owner of job_counters (it may switch reads to the
// base tables and empty the counters, which the role that altered a table may not be allowed to).
void notice_counter_trigger_changes(Oid nsp) {
    Oid counters = get_relname_relid("job_counters", nsp);
    if (!OidIsValid(counters))
        return;
    SavedUser saved;
    run_as_owner_begin(counters, &saved);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    char *sql = psprintf("SELECT %s.notice_counter_trigger_changes()", quote_identifier(get_namespace_name(nsp)));
    if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not check the counter triggers");
    SPI_finish();
    run_as_owner_end(&saved);
}

}  // namespace

S3SCAN_SQL_FUNCTION(s3scan_on_table_ddl_start) {
    EventTriggerData *trigdata = event_trigger_data(fcinfo);
    if (creating_extension || IsBinaryUpgrade || trigdata->parsetree == nullptr)
        PG_RETURN_VOID();
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    bool internal_change;
    Oid relid = altered_relation(trigdata->parsetree, &internal_change);
    if (internal_change && is_internal_table(relid, nsp))
        refuse_internal_change(relid);
    PG_RETURN_VOID();
}

S3SCAN_SQL_FUNCTION(s3scan_on_table_ddl_end) {
    EventTriggerData *trigdata = event_trigger_data(fcinfo);
    if (creating_extension || IsBinaryUpgrade)
        PG_RETURN_VOID();
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    refuse_inheritance(nsp);
    // A trigger on jobs disabled and enabled again in this transaction, with changes in between,
    // moved no count: an ALTER TABLE of jobs makes the worker refresh after it commits. (Not
    // every DDL: REFRESH ... CONCURRENTLY creates a temporary table, which would make every
    // refresh call for the next.)
    if (trigdata->parsetree != nullptr && IsA(trigdata->parsetree, AlterTableStmt)) {
        Oid jobs = get_relname_relid("jobs", nsp);
        if (OidIsValid(jobs) &&
            RangeVarGetRelid(((AlterTableStmt *) trigdata->parsetree)->relation, NoLock, true) == jobs)
            s3scan::note_data_change();
    }
    if (!counter_triggers_look_maintained(nsp))
        notice_counter_trigger_changes(nsp);
    PG_RETURN_VOID();
}

S3SCAN_SQL_FUNCTION(s3scan_require_counted_tables_idle) {
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    for (const char *name : kCountedTables) {
        Oid relid = get_relname_relid(name, nsp);
        if (!OidIsValid(relid))
            continue;
        // Every reference but ours is a statement of this session that has the table open, as
        // TRUNCATE and ALTER TABLE check (CheckTableNotInUse).
        Relation rel = relation_open(relid, AccessShareLock);
        bool in_use = rel->rd_refcnt != (rel->rd_isnailed ? 2 : 1);
        relation_close(rel, NoLock);
        if (in_use)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                            errmsg("cannot rebuild the counters while \"%s\" is in use by a statement of this session",
                                   name),
                            errdetail("A statement that reads or changes it (a writable WITH, a trigger, a query over "
                                      "the table) is still running: the recount would see its changes, which its "
                                      "counter trigger then adds again."),
                            errhint("Call repair_job_counters() in a statement of its own.")));
    }
    PG_RETURN_BOOL(true);
}
