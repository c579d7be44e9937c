// The PostgreSQL headers this extension uses, for its C++ translation units: postgres.h first, all
// of them inside extern "C". Include this instead of any PostgreSQL header.
//
// The C++/PostgreSQL error rule (CONTRIBUTING.md): PostgreSQL raises errors with longjmp, which
// skips C++ destructors. No code here has a C++ object with a destructor, allocates with new, or
// throws: the sources are compiled with -fno-exceptions -fno-rtti, so PostgreSQL errors pass
// through every frame untouched and reach the client as PostgreSQL raised them (SQLSTATE, message,
// detail, hint, context, object names, location). The check below makes the compiler hold to it.
#pragma once

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "s3scan_jobs is compiled without C++ exceptions (-fno-exceptions); see CONTRIBUTING.md"
#endif

extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

// Declares a function PostgreSQL calls by name (SQL function, trigger, worker main): C linkage.
#define S3SCAN_SQL_FUNCTION(name) \
    extern "C" {                  \
    PG_FUNCTION_INFO_V1(name);    \
    }                             \
    extern "C" Datum name(PG_FUNCTION_ARGS)
