// The module entry: magic block, _PG_init, the settings, shared memory hooks and the launcher's
// registration when the library is preloaded. _PG_init only calls PostgreSQL (nothing in it can
// throw a C++ exception), so it needs no guard.
#include "pg_boundary.hpp"
#include "settings.hpp"
#include "worker.hpp"
#include "worker_shmem.hpp"

extern "C" {
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/varlena.h"

PG_MODULE_MAGIC;

int s3scan_refresh_interval_s = 60;
char *s3scan_databases = nullptr;
int s3scan_history_limit = 10000;

void _PG_init(void);
}

static shmem_request_hook_type previous_shmem_request_hook = nullptr;
static shmem_startup_hook_type previous_shmem_startup_hook = nullptr;

static void request_shared_memory() {
    if (previous_shmem_request_hook)
        previous_shmem_request_hook();
    RequestAddinShmemSpace(s3scan::worker_shmem_size());
}

static void create_shared_memory() {
    if (previous_shmem_startup_hook)
        previous_shmem_startup_hook();
    s3scan::worker_shmem_startup();
}

// s3scan_jobs.database must be a list of names: rejected at SET, ALTER SYSTEM or reload
// otherwise, rather than leaving every database unserved.
static bool check_database_list(char **newval, void **extra, GucSource source) {
    char *raw = pstrdup(*newval);
    List *names = NIL;
    bool ok = SplitIdentifierString(raw, ',', &names);
    list_free(names);
    pfree(raw);
    if (!ok)
        GUC_check_errdetail("List syntax is invalid: give database names separated by commas.");
    return ok;
}

static void define_settings() {
    DefineCustomIntVariable("s3scan_jobs.refresh_interval",
                            "Time between two refreshes of job_progress by the refresh worker.",
                            "0 turns the worker's refreshing off.", &s3scan_refresh_interval_s, 60, 0,
                            INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("s3scan_jobs.database",
                               "Databases whose job_progress the refresh workers keep fresh.",
                               "A comma-separated list; one worker serves each database.", &s3scan_databases,
                               "postgres", PGC_SIGHUP, GUC_LIST_INPUT, check_database_list, nullptr, nullptr);
    DefineCustomIntVariable(
        "s3scan_jobs.history_limit", "Number of rows refresh_history keeps; older rows are pruned.", nullptr,
        &s3scan_history_limit, 10000, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("s3scan_jobs");
}

void _PG_init(void) {
    define_settings();
    if (!process_shared_preload_libraries_in_progress)
        return;
    previous_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shared_memory;
    previous_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = create_shared_memory;
    s3scan::register_launcher();
}
