// SQL that the extension's C++ runs on someone else's behalf: under search_path = pg_catalog,
// pg_temp, and, where it reads or writes what the caller may not, as the owner of an extension
// object. Every path that switches user goes through here (CONTRIBUTING.md: a role's pg_temp type,
// cast or function must never be resolved by it).
#pragma once

#include "pg.hpp"

namespace s3scan {

// Pins search_path to pg_catalog, pg_temp until unpin_search_path(level) (or the end of the
// (sub)transaction, if an error comes first: the GUC stack is unwound by the abort).
int pin_search_path();
void unpin_search_path(int level);

// The user and security context to return to after run_as_owner_begin().
struct SavedUser {
    Oid user;
    int context;
    int guc_level;
};

// Becomes the owner of relation relid (a SECURITY_RESTRICTED_OPERATION, as a SECURITY DEFINER
// function or REFRESH would) and pins search_path; run_as_owner_end() undoes both. An error in
// between leaves it to the (sub)transaction's abort, which restores the user and the GUCs.
void run_as_owner_begin(Oid relid, SavedUser *saved);
void run_as_owner_end(const SavedUser *saved);

// The owner of relation relid.
Oid relation_owner(Oid relid);

}  // namespace s3scan
