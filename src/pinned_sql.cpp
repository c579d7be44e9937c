// SQL run on someone else's behalf: the pinned search_path and the switch to an object's owner
// (see pinned_sql.hpp).
#include "pinned_sql.hpp"

extern "C" {
#include "utils/syscache.h"
}

namespace s3scan {

int pin_search_path() {
    int level = NewGUCNestLevel();
    (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                             true, 0, false);
    return level;
}

void unpin_search_path(int level) {
    AtEOXact_GUC(true, level);
}

Oid relation_owner(Oid relid) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for relation %u", relid);
    Oid owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

void run_as_owner_begin(Oid relid, SavedUser *saved) {
    GetUserIdAndSecContext(&saved->user, &saved->context);
    SetUserIdAndSecContext(relation_owner(relid),
                           saved->context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    // After the switch: the owner's session settings are not in play, ours are pinned.
    saved->guc_level = pin_search_path();
}

void run_as_owner_end(const SavedUser *saved) {
    unpin_search_path(saved->guc_level);
    SetUserIdAndSecContext(saved->user, saved->context);
}

}  // namespace s3scan
