// DROP EXTENSION s3scan_jobs on a distributed database (on_extension_drop(), event trigger,
// ddl_command_start, DROP EXTENSION). Citus sends the coordinator's DROP EXTENSION to every worker
// node, where the shards of the extension's tables are no members of the extension and their
// counter triggers depend on its functions: the drop would fail there, and with CASCADE it would
// leave the shard tables behind (Citus drops no shards of a table an extension owns). So on the
// coordinator, before anything else of the drop, this drops every shard of the extension's
// distributed tables as Citus's DROP TABLE does (citus_drop_all_shards()), in the dropping
// transaction, which Citus prepares on every node: if the drop fails anywhere, nothing is
// dropped. The drop of the extension then removes the tables and Citus's metadata of them.
#include "citus_shards.hpp"
#include "pinned_sql.hpp"

extern "C" {
#include "nodes/parsenodes.h"
}

namespace {

// Whether the command is a DROP EXTENSION that names s3scan_jobs.
bool drops_this_extension(Node *parsetree) {
    if (parsetree == nullptr || !IsA(parsetree, DropStmt))
        return false;
    DropStmt *drop = (DropStmt *) parsetree;
    if (drop->removeType != OBJECT_EXTENSION)
        return false;
    ListCell *lc;
    foreach (lc, drop->objects) {
        Node *object = (Node *) lfirst(lc);
        if (IsA(object, String) && strcmp(strVal(object), "s3scan_jobs") == 0)
            return true;
    }
    return false;
}

// The SQL that drops every shard of the extension's distributed tables in schema nsp, as Citus's
// own DROP TABLE would (citus_drop_all_shards(), in the coordinated transaction); names and
// operators qualified (it runs with search_path pinned). The tables that reference jobs first.
char *drop_all_shards_sql(Oid nsp) {
    const char *schema = quote_literal_cstr(get_namespace_name(nsp));
    return psprintf(
        "SELECT pg_catalog.citus_drop_all_shards(t.oid::pg_catalog.regclass, n.nspname::pg_catalog.text, "
        "t.relname::pg_catalog.text) "
        "FROM pg_catalog.pg_class t "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace "
        "JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid OPERATOR(pg_catalog.=) t.oid "
        "WHERE n.nspname OPERATOR(pg_catalog.=) %s "
        "  AND t.relname OPERATOR(pg_catalog.=) ANY ('{jobs,job_objects,findings,job_counters,job_counter_deltas}'::pg_catalog.name[]) "
        "ORDER BY t.relname OPERATOR(pg_catalog.=) 'jobs', t.relname",
        schema);
}

}  // namespace

S3SCAN_SQL_FUNCTION(s3scan_on_extension_drop) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("on_extension_drop() can only be called as an event trigger")));
    EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
    if (!drops_this_extension(trigdata->parsetree))
        PG_RETURN_VOID();
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
    if (!s3scan::job_tables_distributed(nsp))
        PG_RETURN_VOID();

    // Worker nodes: Citus refuses a DROP EXTENSION sent to them by anyone but the coordinator, and
    // has removed the tables' metadata there by the time the coordinator's reaches them.
    if (!s3scan::citus_coordinator())
        PG_RETURN_VOID();
    // The locks the drop takes anyway, first, in the order a refresh and a reader take theirs (the
    // cache, then the coordinator's tables, then their shards): a refresh running meanwhile
    // finishes before any shard is dropped, instead of waiting on a worker for a shard lock the
    // drop holds while the drop waits here for the cache (a distributed deadlock).
    const char *const kLocked[] = {"job_progress", "jobs", "job_objects", "findings", "job_counters",
                                   "job_counter_deltas"};
    for (const char *name : kLocked) {
        Oid relid = get_relname_relid(name, nsp);
        if (OidIsValid(relid))
            LockRelationOid(relid, AccessExclusiveLock);
    }
    int pinned = s3scan::pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (SPI_execute(drop_all_shards_sql(nsp), false, 0) != SPI_OK_SELECT)
        elog(ERROR, "s3scan_jobs: could not drop the shards of the extension's tables");
    SPI_finish();
    s3scan::unpin_search_path(pinned);
    PG_RETURN_VOID();
}
