// job_status(job_id, real_time): one job's progress, from the job_progress cache when it can be
// trusted, else in real time from job_progress_live.
//
// The decision: cached unless real time is asked for, job_progress is missing or not populated,
// or the job is not in it (created after the last refresh; deleted jobs are never served from
// the cache). The cached read goes straight to three unique indexes (job_progress by job_id,
// jobs by job_id, the refresh log by view name) with the statement's snapshot, after the same
// privilege checks the executor would make; a client sees it cost about 1.3x a direct lookup
// in job_progress. When that shortcut does not apply (row-level security, column-only grants) the same
// read runs as a prepared SQL plan. The real-time read, while job_progress_live reads the
// per-job counters (since 1.1), adds them up for the job without SQL (live_counts.cpp: its jobs and
// job_counters rows by key, its unfolded deltas, this transaction's pending ones), after the
// privilege checks the view's read would make; otherwise it is a plan of the caller's SELECT on
// job_progress_live (checked with the caller's rights on that view, as a read of job_summary is).
// Each SQL plan is prepared at its first use in a session; PostgreSQL's plan cache plans it again
// when the view is redefined (ALTER EXTENSION ... UPDATE, set_counter_maintenance()).
// Row-level security on jobs is honoured on both paths: a job the caller's policies hide is not
// found. The hot path makes no SQL catalog query, only syscache and relcache look-ups (and, once
// per redefinition of job_progress_live, a pg_depend look-up); every relation is locked before it
// is used and a relation dropped meanwhile (DROP EXTENSION) counts as missing. On a database
// distributed over Citus (citus_shards.hpp) the rows are in shards on other nodes: the real-time
// read is always the SQL plan (Citus runs it on the job's one shard), and the cached read checks
// the job's jobs row with a SQL plan too.
#include "citus_shards.hpp"
#include "live_counts.hpp"
#include "pg.hpp"
#include "pinned_sql.hpp"

extern "C" {
#include "utils/numeric.h"
}

namespace {

constexpr int kProgressColumns = 13;  // job_id .. progress_percent, as in job_progress
constexpr int kResultColumns = 16;    // + status, data_source, cache_timestamp

// The session's prepared reads, for the schema they were prepared for. Plain pointers: the
// plans are owned by PostgreSQL's plan cache (SPI_keepplan), which plans them again when a
// relation they read changes (the real-time read names job_progress_live, so a redefined view is
// followed).
struct StatusPlans {
    Oid nsp;
    SPIPlanPtr cached;
    SPIPlanPtr live;
};
StatusPlans plans = {InvalidOid, nullptr, nullptr};

// Whether the caller sees the job's row in jobs, for a caller that row-level security applies to
// (prepared at the first such call, for the schema it was prepared for).
struct VisiblePlan {
    Oid nsp;
    SPIPlanPtr plan;
};
VisiblePlan visible_plan = {InvalidOid, nullptr};
// The created_at of a job in jobs, read with SQL (on a distributed database, where the row is in
// a shard on another node).
VisiblePlan created_plan = {InvalidOid, nullptr};

const char *const kColumns =
    "job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects, queued_count, "
    "processing_count, succeeded_count, failed_count, total_findings, progress_percent";

SPIPlanPtr prepare_kept(const char *sql) {
    Oid argtypes[1] = {UUIDOID};
    SPIPlanPtr plan = SPI_prepare(sql, 1, argtypes);
    if (plan == nullptr)
        elog(ERROR, "could not prepare job_status query: %s", SPI_result_code_string(SPI_result));
    if (SPI_keepplan(plan) != 0)
        elog(ERROR, "could not keep job_status plan");
    return plan;
}

// The SQL of the two reads of schema nsp.
char *cached_read_sql(Oid nsp) {
    const char *schema = quote_identifier(get_namespace_name(nsp));
    // The cached row, only while its job still exists as it was (same created_at: not deleted,
    // not deleted and created again), with the time of the data it was computed from.
    return psprintf(
        "SELECT p.job_id, p.bucket, p.prefix, p.execution_arn, p.created_at, p.updated_at, "
        "p.total_objects, p.queued_count, p.processing_count, p.succeeded_count, p.failed_count, "
        "p.total_findings, p.progress_percent, l.last_refreshed_at "
        "FROM %s.job_progress p "
        "JOIN %s.jobs j ON j.job_id OPERATOR(pg_catalog.=) p.job_id "
        "AND j.created_at OPERATOR(pg_catalog.=) p.created_at "
        "LEFT JOIN %s.materialized_view_refresh_log l "
        "ON l.view_name OPERATOR(pg_catalog.=) 'job_progress' "
        "WHERE p.job_id OPERATOR(pg_catalog.=) $1",
        schema, schema, schema);
}

char *live_read_sql(Oid nsp) {
    return psprintf("SELECT %s FROM %s.job_progress_live WHERE job_id OPERATOR(pg_catalog.=) $1", kColumns,
                    quote_identifier(get_namespace_name(nsp)));
}

// The session's plan of one of the reads for schema nsp, prepared at its first use (again if the
// schema changes): a connection that never needs one never parses it.
SPIPlanPtr plan_for(Oid nsp, bool cached) {
    if (plans.nsp != nsp) {
        if (plans.cached != nullptr)
            SPI_freeplan(plans.cached);
        if (plans.live != nullptr)
            SPI_freeplan(plans.live);
        plans = {nsp, nullptr, nullptr};
    }
    SPIPlanPtr *plan = cached ? &plans.cached : &plans.live;
    if (*plan == nullptr)
        *plan = prepare_kept(cached ? cached_read_sql(nsp) : live_read_sql(nsp));
    return *plan;
}

// Opens nsp.relname, locked as a SELECT would lock it; nullptr when it does not exist or was
// dropped before the lock was granted.
Relation open_named(Oid nsp, const char *relname) {
    Oid relid = get_relname_relid(relname, nsp);
    return OidIsValid(relid) ? try_relation_open(relid, AccessShareLock) : nullptr;
}

// Whether nsp.job_progress exists and holds data (not after WITH NO DATA or a restore).
bool cache_usable(Oid nsp) {
    Relation rel = open_named(nsp, "job_progress");
    if (rel == nullptr)
        return false;
    bool usable = rel->rd_rel->relkind == RELKIND_MATVIEW && RelationIsPopulated(rel);
    relation_close(rel, NoLock);
    return usable;
}

// Whether the current user may read relid through the shortcut: table-level SELECT and no
// row-level security. Otherwise the SQL plan reads it, with every rule the executor applies.
bool shortcut_allowed(Oid relid) {
    return pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
           check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED;
}

// Looks up the one row of rel whose unique index's single key equals key (with the statement's
// snapshot); copies its first natts attributes into values/nulls. The index is locked as a
// SELECT would lock it.
bool lookup_in(Relation rel, Oid indexid, Oid eqproc, Datum key, int natts, Datum *values, bool *nulls) {
    Relation index = index_open(indexid, AccessShareLock);
    // Compared with the index's collation, as the index is ordered.
    ScanKeyData scankey;
    ScanKeyEntryInitialize(&scankey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0], eqproc,
                           key);
    IndexScanDesc scan = index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
    index_rescan(scan, &scankey, 1, nullptr, 0);
    TupleTableSlot *slot = table_slot_create(rel, nullptr);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    if (found) {
        slot_getsomeattrs(slot, natts);
        TupleDesc desc = RelationGetDescr(rel);
        for (int i = 0; i < natts; i++) {
            nulls[i] = slot->tts_isnull[i];
            Form_pg_attribute att = TupleDescAttr(desc, i);
            values[i] = nulls[i] ? (Datum) 0 : datumCopy(slot->tts_values[i], att->attbyval, att->attlen);
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(index, NoLock);
    return found;
}

void put_result(ReturnSetInfo *rsinfo, Datum *values, bool *nulls, bool cached);

// Whether nsp.jobs has the job, and its created_at, read with SQL: on a distributed database
// Citus runs it on the one shard that holds the job (the coordinator's jobs holds no rows).
bool distributed_job_created_at(Oid nsp, Datum job_id, Datum *created_at, bool *isnull) {
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (created_plan.nsp != nsp || created_plan.plan == nullptr) {
        if (created_plan.plan != nullptr)
            SPI_freeplan(created_plan.plan);
        created_plan = {InvalidOid, nullptr};
        SPIPlanPtr plan =
            prepare_kept(psprintf("SELECT j.created_at FROM %s.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) $1",
                                  quote_identifier(get_namespace_name(nsp))));
        created_plan = {nsp, plan};
    }
    Datum args[1] = {job_id};
    int rc = SPI_execute_plan(created_plan.plan, args, nullptr, true, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "job_status query failed: %s", SPI_result_code_string(rc));
    bool found = SPI_processed > 0;
    if (found)
        *created_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);  // by value
    SPI_finish();
    return found;
}

// What the cached read through the indexes found.
enum class CachedRead {
    Hit,         // the row is in the tuplestore
    Miss,        // not served from the cache: answer in real time
    NoCache,     // job_progress missing or not populated: answer in real time
    NoShortcut,  // privileges or row-level security need the SQL plan
};

// The cached read through the indexes, on relations already open.
CachedRead read_cached_from(Oid nsp, Relation matview, Relation jobs, Relation log, Datum job_id,
                            ReturnSetInfo *rsinfo) {
    if (matview->rd_rel->relkind != RELKIND_MATVIEW || !RelationIsPopulated(matview))
        return CachedRead::NoCache;
    Oid matview_index = get_relname_relid("job_progress_job_id_idx", nsp);
    Oid jobs_index = get_relname_relid("jobs_pkey", nsp);
    Oid log_index = get_relname_relid("materialized_view_refresh_log_pkey", nsp);
    if (jobs == nullptr || log == nullptr || !OidIsValid(matview_index) || !OidIsValid(jobs_index) ||
        !OidIsValid(log_index) || !shortcut_allowed(RelationGetRelid(matview)) ||
        !shortcut_allowed(RelationGetRelid(jobs)) || !shortcut_allowed(RelationGetRelid(log)))
        return CachedRead::NoShortcut;

    Datum values[kResultColumns];
    bool nulls[kResultColumns];
    if (!lookup_in(matview, matview_index, F_UUID_EQ, job_id, kProgressColumns, values, nulls))
        return CachedRead::Miss;
    // Served from the cache only while the job still exists as it was: not deleted, not
    // deleted and created again (same created_at).
    Datum job[5];
    bool job_nulls[5];
    bool exists = s3scan::job_tables_distributed(nsp)
                      ? distributed_job_created_at(nsp, job_id, &job[4], &job_nulls[4])
                      : lookup_in(jobs, jobs_index, F_UUID_EQ, job_id, 5, job, job_nulls);
    if (!exists || job_nulls[4] || nulls[4] || DatumGetTimestampTz(job[4]) != DatumGetTimestampTz(values[4]))
        return CachedRead::Miss;
    Datum entry[2];
    bool entry_nulls[2];
    if (lookup_in(log, log_index, F_TEXTEQ, CStringGetTextDatum("job_progress"), 2, entry, entry_nulls)) {
        values[15] = entry[1];
        nulls[15] = entry_nulls[1];
    } else {
        values[15] = (Datum) 0;
        nulls[15] = true;
    }
    put_result(rsinfo, values, nulls, true);
    return CachedRead::Hit;
}

// The cached read through the indexes.
CachedRead read_cached_directly(Oid nsp, Datum job_id, ReturnSetInfo *rsinfo) {
    Relation matview = open_named(nsp, "job_progress");
    if (matview == nullptr)
        return CachedRead::NoCache;
    Relation jobs = open_named(nsp, "jobs");
    Relation log = open_named(nsp, "materialized_view_refresh_log");
    CachedRead result = read_cached_from(nsp, matview, jobs, log, job_id, rsinfo);
    if (log != nullptr)
        relation_close(log, NoLock);
    if (jobs != nullptr)
        relation_close(jobs, NoLock);
    relation_close(matview, NoLock);
    return result;
}

// Adds status and data_source to the first 13 (and, cached, the 16th) columns and stores the row.
void put_result(ReturnSetInfo *rsinfo, Datum *values, bool *nulls, bool cached) {
    // completed: no objects, or every object succeeded or failed.
    int64 total = DatumGetInt64(values[6]);
    int64 done = DatumGetInt64(values[9]) + DatumGetInt64(values[10]);
    values[13] = CStringGetTextDatum(total == 0 || done >= total ? "completed" : "processing");
    nulls[13] = false;
    values[14] = CStringGetTextDatum(cached ? "cached" : "real_time");
    nulls[14] = false;
    if (!cached) {
        values[15] = (Datum) 0;
        nulls[15] = true;
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

// Runs one of the reads; on a hit, puts the result row into the tuplestore. Inside SPI.
bool read_into(SPIPlanPtr plan, Datum job_id, bool cached, ReturnSetInfo *rsinfo) {
    Datum args[1] = {job_id};
    int rc = SPI_execute_plan(plan, args, nullptr, true, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "job_status query failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 0)
        return false;

    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    Datum values[kResultColumns];
    bool nulls[kResultColumns];
    for (int i = 0; i < kProgressColumns; i++)
        values[i] = SPI_getbinval(row, desc, i + 1, &nulls[i]);
    if (cached)
        values[15] = SPI_getbinval(row, desc, kProgressColumns + 1, &nulls[15]);
    put_result(rsinfo, values, nulls, cached);
    return true;
}

// What the real-time read through the counters found.
enum class LiveRead {
    Hit,         // the row is in the tuplestore
    Miss,        // no such job: zero rows, as the view answers
    NoShortcut,  // the SQL plan of job_progress_live must answer
};

// progress_percent as job_progress_live computes it: ((succeeded + failed)::numeric * 100.0) /
// total::numeric, 0.0 without objects (the same numeric functions, so the same scale).
Datum progress_percent(int64 total, int64 done) {
    if (total == 0)
        return DirectFunctionCall3(numeric_in, CStringGetDatum("0.0"), ObjectIdGetDatum(InvalidOid),
                                   Int32GetDatum(-1));
    Datum hundred =
        DirectFunctionCall3(numeric_in, CStringGetDatum("100.0"), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
    Datum product = DirectFunctionCall2(numeric_mul, NumericGetDatum(int64_to_numeric(done)), hundred);
    return DirectFunctionCall2(numeric_div, product, NumericGetDatum(int64_to_numeric(total)));
}

// The real-time read without SQL, when job_progress_live reads the counters: what the view
// returns for one job (its jobs row, its counter row plus its unfolded and pending deltas), with
// the same rights: the caller's SELECT on the view, and the view owner's on what it reads
// (without row-level security there; otherwise the SQL plan applies it). A new connection pays no
// parse and plan of the view, a warm one no executor: a few index probes and a scan of the
// unfolded deltas.
LiveRead read_live_directly(Oid nsp, Datum job_id, ReturnSetInfo *rsinfo) {
    Oid live = get_relname_relid("job_progress_live", nsp);
    Oid jobs_id = get_relname_relid("jobs", nsp);
    Oid jobs_key = get_relname_relid("jobs_pkey", nsp);
    Oid counters = get_relname_relid("job_counters", nsp);
    Oid counters_key = get_relname_relid("job_counters_pkey", nsp);
    Oid deltas = get_relname_relid("job_counter_deltas", nsp);
    if (!OidIsValid(live) || !OidIsValid(jobs_id) || !OidIsValid(jobs_key) || !OidIsValid(counters) ||
        !OidIsValid(counters_key) || !OidIsValid(deltas) ||
        pg_class_aclcheck(live, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
        return LiveRead::NoShortcut;
    // On a distributed database the rows are in the shards, on other nodes: Citus runs the SQL
    // plan on the one shard that holds the job.
    if (s3scan::job_tables_distributed(nsp))
        return LiveRead::NoShortcut;
    // As the rewriter locks a view it expands; then what the view reads now.
    LockRelationOid(live, AccessShareLock);
    if (!s3scan::live_view_reads_counters(live, counters))
        return LiveRead::NoShortcut;
    Oid owner = s3scan::relation_owner(live);
    const Oid read[3] = {jobs_id, counters, deltas};
    for (Oid relid : read)
        if (pg_class_aclcheck(relid, owner, ACL_SELECT) != ACLCHECK_OK ||
            check_enable_rls(relid, owner, true) == RLS_ENABLED)
            return LiveRead::NoShortcut;

    Datum values[kResultColumns];
    bool nulls[kResultColumns];
    Relation jobs = table_open(jobs_id, AccessShareLock);
    bool found = lookup_in(jobs, jobs_key, F_UUID_EQ, job_id, 6, values, nulls);
    table_close(jobs, NoLock);
    if (!found)
        return LiveRead::Miss;
    s3scan::JobCounts counts;
    s3scan::read_job_counts(counters, counters_key, deltas, job_id, &counts);
    const int64 column_values[6] = {counts.total_objects, counts.by_status[0], counts.by_status[1],
                                    counts.by_status[2],  counts.by_status[3], counts.total_findings};
    for (int i = 0; i < 6; i++) {
        values[6 + i] = Int64GetDatum(column_values[i]);
        nulls[6 + i] = false;
    }
    values[12] = progress_percent(counts.total_objects, counts.by_status[2] + counts.by_status[3]);
    nulls[12] = false;
    put_result(rsinfo, values, nulls, false);
    return LiveRead::Hit;
}

// Row-level security on jobs decides which jobs the caller may ask about, on both paths. The
// cached read alone would apply it (no shortcut under policies; its SQL plan joins jobs with the
// caller's rights), but a job it does not find is answered in real time from job_progress_live, a
// view, which reads with its owner's rights. So when policies apply to the caller, the job's row
// must first be visible to it in jobs, read with its own rights (error 42501 without SELECT on
// jobs; as the executor decides, also when row_security is off). Inside SPI.
bool job_visible_to_caller(Oid nsp, Datum job_id) {
    if (visible_plan.nsp != nsp || visible_plan.plan == nullptr) {
        if (visible_plan.plan != nullptr)
            SPI_freeplan(visible_plan.plan);
        visible_plan = {InvalidOid, nullptr};
        SPIPlanPtr plan = prepare_kept(psprintf("SELECT FROM %s.jobs j WHERE j.job_id OPERATOR(pg_catalog.=) $1",
                                                quote_identifier(get_namespace_name(nsp))));
        visible_plan = {nsp, plan};
    }
    Datum args[1] = {job_id};
    int rc = SPI_execute_plan(visible_plan.plan, args, nullptr, true, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "job_status query failed: %s", SPI_result_code_string(rc));
    return SPI_processed > 0;
}

// Whether row-level security on nsp.jobs applies to the current user.
bool jobs_policies_apply(Oid nsp) {
    Oid jobs = get_relname_relid("jobs", nsp);
    return OidIsValid(jobs) && check_enable_rls(jobs, InvalidOid, true) == RLS_ENABLED;
}

void job_status_rows(FunctionCallInfo fcinfo) {
    InitMaterializedSRF(fcinfo, 0);
    if (PG_ARGISNULL(0))
        return;  // no job has a NULL id
    Datum job_id = PG_GETARG_DATUM(0);
    bool real_time = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);

    if (jobs_policies_apply(nsp)) {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
        bool visible = job_visible_to_caller(nsp, job_id);
        SPI_finish();
        if (!visible)
            return;  // as for a job that does not exist
    }

    CachedRead cached = real_time ? CachedRead::NoCache : read_cached_directly(nsp, job_id, rsinfo);
    if (cached == CachedRead::Hit)
        return;
    if (cached == CachedRead::NoShortcut && cache_usable(nsp)) {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
        bool found = read_into(plan_for(nsp, true), job_id, true, rsinfo);
        SPI_finish();
        if (found)
            return;
    }
    if (read_live_directly(nsp, job_id, rsinfo) != LiveRead::NoShortcut)
        return;
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    read_into(plan_for(nsp, false), job_id, false, rsinfo);
    SPI_finish();
}

}  // namespace

S3SCAN_SQL_FUNCTION(s3scan_job_status) {
    job_status_rows(fcinfo);
    return (Datum) 0;
}
