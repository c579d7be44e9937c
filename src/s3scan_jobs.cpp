// The module entry: magic block, _PG_init, the settings, the shared memory hooks, and, when the
// library is preloaded, the launcher's registration and the hook that stops a database's refresh
// worker before DROP / RENAME / copy of that database.
#include "data_changes.hpp"
#include "database_commands.hpp"
#include "pg.hpp"
#include "settings.hpp"
#include "worker.hpp"
#include "worker_slots.hpp"

#include <cmath>

extern "C" {
#include "storage/ipc.h"
#include "utils/varlena.h"

PG_MODULE_MAGIC;

double s3scan_refresh_interval = 60.0;
char *s3scan_databases = nullptr;
int s3scan_history_limit = 10000;
int s3scan_worker_memory_limit = 64 * 1024;
double s3scan_fold_interval = 0.1;

void _PG_init(void);
}

namespace s3scan {

// The shortest refresh interval: below it a worker would do little else than refresh.
constexpr double kMinRefreshIntervalS = 0.010;

long refresh_interval_ms() {
    return std::lround(s3scan_refresh_interval * 1000.0);
}

long fold_interval_ms() {
    return std::lround(s3scan_fold_interval * 1000.0);
}

}  // namespace s3scan

static shmem_request_hook_type previous_shmem_request_hook = nullptr;
static shmem_startup_hook_type previous_shmem_startup_hook = nullptr;

static void request_shared_memory() {
    if (previous_shmem_request_hook)
        previous_shmem_request_hook();
    RequestAddinShmemSpace(s3scan::worker_slots_size());
}

static void create_shared_memory() {
    if (previous_shmem_startup_hook)
        previous_shmem_startup_hook();
    s3scan::worker_slots_startup();
}

// A refresh interval is 0 (off) or at least 10ms: a smaller value is refused, never rounded to
// "off" or to something else than what was asked.
static bool check_refresh_interval(double *newval, void **extra, GucSource source) {
    if (*newval == 0.0 || *newval >= s3scan::kMinRefreshIntervalS - 1e-9)
        return true;
    GUC_check_errdetail("The refresh interval is 0 (refreshing off) or at least 10ms.");
    return false;
}

// The same for the fold interval.
static bool check_fold_interval(double *newval, void **extra, GucSource source) {
    if (*newval == 0.0 || *newval >= s3scan::kMinRefreshIntervalS - 1e-9)
        return true;
    GUC_check_errdetail("The fold interval is 0 (fold only when refreshing) or at least 10ms.");
    return false;
}

// s3scan_jobs.database must be a list of at most kMaxWorkerSlots names: rejected at SET, ALTER
// SYSTEM or reload otherwise (the old value stays), rather than serving fewer databases than named.
static bool check_database_list(char **newval, void **extra, GucSource source) {
    char *raw = pstrdup(*newval);
    List *names = NIL;
    bool ok = SplitIdentifierString(raw, ',', &names);
    int count = list_length(names);
    list_free(names);
    pfree(raw);
    if (!ok) {
        GUC_check_errdetail("List syntax is invalid: give database names separated by commas.");
        return false;
    }
    if (count > s3scan::kMaxWorkerSlots) {
        GUC_check_errdetail("%d databases are named; one server serves at most %d.", count,
                            s3scan::kMaxWorkerSlots);
        return false;
    }
    return true;
}

static void define_settings() {
    DefineCustomRealVariable(
        "s3scan_jobs.refresh_interval", "Time between two refreshes of job_progress by the refresh worker.",
        "0 turns the worker's refreshing off; otherwise at least 10ms. A number without unit is seconds.",
        &s3scan_refresh_interval, 60.0, 0.0, INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, check_refresh_interval,
        nullptr, nullptr);
    DefineCustomStringVariable("s3scan_jobs.database", "Databases whose job_progress the refresh workers keep fresh.",
                               "A comma-separated list of at most 64 names; unquoted names are folded to lower "
                               "case, as in SQL. One worker serves each database.",
                               &s3scan_databases, "postgres", PGC_SIGHUP, GUC_LIST_INPUT, check_database_list,
                               nullptr, nullptr);
    DefineCustomIntVariable("s3scan_jobs.history_limit", "Number of rows refresh_history keeps; older rows are pruned.",
                            nullptr, &s3scan_history_limit, 10000, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("s3scan_jobs.worker_memory_limit",
                            "Memory a refresh worker may grow to before it hands over to a fresh process.",
                            "0 means no limit.", &s3scan_worker_memory_limit, 64 * 1024, 0, INT_MAX, PGC_SIGHUP,
                            GUC_UNIT_KB, nullptr, nullptr, nullptr);
    DefineCustomRealVariable(
        "s3scan_jobs.fold_interval", "Time between two folds of the per-job counter deltas by the refresh worker.",
        "0 folds only when job_progress is refreshed; otherwise at least 10ms. A number without unit is seconds.",
        &s3scan_fold_interval, 0.1, 0.0, INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, check_fold_interval, nullptr,
        nullptr);
    MarkGUCPrefixReserved("s3scan_jobs");
}

void _PG_init(void) {
    define_settings();
    // In every session that loads the library; with preloading that is every session.
    s3scan::install_database_command_hook();
    if (!process_shared_preload_libraries_in_progress)
        return;
    s3scan::data_changes_counted = true;
    previous_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shared_memory;
    previous_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = create_shared_memory;
    s3scan::register_launcher();
}
