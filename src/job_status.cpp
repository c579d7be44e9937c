// job_status(job_id, real_time): one job's progress, from the job_progress cache when it can be
// trusted, else in real time from job_progress_live.
//
// The decision: cached unless real time is asked for, job_progress is missing or not populated,
// or the job is not in it (created after the last refresh; deleted jobs are never served from
// the cache). Both reads are plans prepared once per session; the hot path makes no SQL catalog
// query, only syscache and relcache look-ups.
#include "pg_boundary.hpp"

namespace {

constexpr int kProgressColumns = 13;  // job_id .. progress_percent, as in job_progress
constexpr int kResultColumns = 16;    // + status, data_source, cache_timestamp

// The session's prepared reads, for the schema they were prepared for. Plain pointers: the
// plans are owned by PostgreSQL's plan cache (SPI_keepplan).
struct StatusPlans {
    Oid nsp;
    SPIPlanPtr cached;
    SPIPlanPtr live;
};
StatusPlans plans = {InvalidOid, nullptr, nullptr};

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

// Prepares the two reads for schema nsp, once per session (again if the schema changes).
void ensure_plans(Oid nsp) {
    if (plans.nsp == nsp && plans.cached != nullptr && plans.live != nullptr)
        return;
    if (plans.cached != nullptr)
        SPI_freeplan(plans.cached);
    if (plans.live != nullptr)
        SPI_freeplan(plans.live);
    plans = {InvalidOid, nullptr, nullptr};

    const char *schema = quote_identifier(get_namespace_name(nsp));
    // The cached row, only while its job still exists as it was (same created_at: not deleted,
    // not deleted and created again), with the time of the data it was computed from.
    char *cached_sql = psprintf(
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
    char *live_sql = psprintf("SELECT %s FROM %s.job_progress_live WHERE job_id OPERATOR(pg_catalog.=) $1",
                              kColumns, schema);
    SPIPlanPtr cached = prepare_kept(cached_sql);
    SPIPlanPtr live = prepare_kept(live_sql);
    plans = {nsp, cached, live};
}

// Whether nsp.job_progress exists and holds data (not after WITH NO DATA or a restore).
bool cache_usable(Oid nsp) {
    Oid matview = get_relname_relid("job_progress", nsp);
    if (!OidIsValid(matview) || get_rel_relkind(matview) != RELKIND_MATVIEW)
        return false;
    Relation rel = table_open(matview, AccessShareLock);
    bool populated = RelationIsPopulated(rel);
    table_close(rel, NoLock);
    return populated;
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

    // completed: no objects, or every object succeeded or failed.
    int64 total = DatumGetInt64(values[6]);
    int64 done = DatumGetInt64(values[9]) + DatumGetInt64(values[10]);
    values[13] = CStringGetTextDatum(total == 0 || done >= total ? "completed" : "processing");
    nulls[13] = false;
    values[14] = CStringGetTextDatum(cached ? "cached" : "real_time");
    nulls[14] = false;
    if (cached) {
        values[15] = SPI_getbinval(row, desc, kProgressColumns + 1, &nulls[15]);
    } else {
        values[15] = (Datum) 0;
        nulls[15] = true;
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    return true;
}

void job_status_rows(FunctionCallInfo fcinfo) {
    InitMaterializedSRF(fcinfo, 0);
    if (PG_ARGISNULL(0))
        return;  // no job has a NULL id
    Datum job_id = PG_GETARG_DATUM(0);
    bool real_time = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    Oid nsp = get_func_namespace(fcinfo->flinfo->fn_oid);

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    ensure_plans(nsp);
    bool found = !real_time && cache_usable(nsp) && read_into(plans.cached, job_id, true, rsinfo);
    if (!found)
        read_into(plans.live, job_id, false, rsinfo);
    SPI_finish();
}

}  // namespace

using s3scan::pg_call;

S3SCAN_FUNCTION(s3scan_job_status) {
    pg_call([&] { job_status_rows(fcinfo); });
    return (Datum) 0;
}
