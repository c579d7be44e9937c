// The boundary between C++ and PostgreSQL errors: PostgreSQL errors into C++ exceptions and
// back, keeping the SQLSTATE, message, detail and hint.
#include "pg_boundary.hpp"

#include <cstdio>
#include <new>

namespace s3scan {

ErrorData *take_current_error(MemoryContext into) {
    MemoryContextSwitchTo(into);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    return edata;
}

void throw_caught_error(ErrorData *edata) {
    // std::string construction may throw bad_alloc: that is fine, it is a C++ exception too.
    // The ErrorData lives in the caller's memory context and is freed with it.
    PgError error(edata->sqlerrcode, edata->message ? edata->message : "unknown error",
                  edata->detail ? edata->detail : "", edata->hint ? edata->hint : "");
    throw error;
}

static void copy_text(char *to, size_t size, const char *from) {
    std::snprintf(to, size, "%s", from);
}

Datum run_guarded(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo, PendingError *pending) noexcept {
    try {
        return body(fcinfo);
    } catch (const PgError &e) {
        pending->sqlerrcode = e.sqlerrcode();
        copy_text(pending->message, sizeof pending->message, e.what());
        copy_text(pending->detail, sizeof pending->detail, e.detail().c_str());
        copy_text(pending->hint, sizeof pending->hint, e.hint().c_str());
    } catch (const std::bad_alloc &) {
        pending->sqlerrcode = ERRCODE_OUT_OF_MEMORY;
        copy_text(pending->message, sizeof pending->message, "out of memory");
        pending->detail[0] = pending->hint[0] = '\0';
    } catch (const std::exception &e) {
        pending->sqlerrcode = ERRCODE_INTERNAL_ERROR;
        copy_text(pending->message, sizeof pending->message, e.what());
        pending->detail[0] = pending->hint[0] = '\0';
    } catch (...) {
        pending->sqlerrcode = ERRCODE_INTERNAL_ERROR;
        copy_text(pending->message, sizeof pending->message, "unknown C++ exception");
        pending->detail[0] = pending->hint[0] = '\0';
    }
    pending->set = true;
    return (Datum) 0;
}

void raise_pending_error(const PendingError *pending) {
    ereport(ERROR, (errcode(pending->sqlerrcode), errmsg_internal("%s", pending->message),
                    pending->detail[0] ? errdetail_internal("%s", pending->detail) : 0,
                    pending->hint[0] ? errhint("%s", pending->hint) : 0));
    pg_unreachable();
}

}  // namespace s3scan
