// The boundary between C++ and PostgreSQL errors.
//
// PostgreSQL raises errors with longjmp, which skips C++ destructors; C++ exceptions must never
// unwind through PostgreSQL's C frames. So:
//  - pg_call(f) runs f, which calls PostgreSQL, inside PG_TRY; a PostgreSQL error becomes a
//    PgError (SQLSTATE, message, detail, hint kept). Nothing is thrown inside the PG_TRY body.
//    After a PgError the current (sub)transaction must be aborted: let it reach the boundary.
//  - S3SCAN_FUNCTION(name) defines a SQL-callable function: a C-linkage shim that runs the C++
//    body in a guard and raises the PostgreSQL error only after the C++ scope has unwound.
#pragma once

#include "pg.hpp"

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace s3scan {

// A PostgreSQL error carried through C++ frames.
class PgError : public std::exception {
public:
    PgError(int sqlerrcode, std::string message, std::string detail = {}, std::string hint = {})
        : sqlerrcode_(sqlerrcode),
          message_(std::move(message)),
          detail_(std::move(detail)),
          hint_(std::move(hint)) {}
    const char *what() const noexcept override { return message_.c_str(); }
    int sqlerrcode() const noexcept { return sqlerrcode_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

private:
    int sqlerrcode_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

// Turns the error PG_CATCH caught into a PgError and throws it. Called outside PG_TRY.
[[noreturn]] void throw_caught_error(ErrorData *edata);

// Copies the current error out of ErrorContext and clears the error state (call in PG_CATCH).
ErrorData *take_current_error(MemoryContext into);

// Runs f inside PG_TRY; returns the PostgreSQL error it raised, or nullptr. Never inlined, so
// that no caller's variable shares a frame with setjmp.
template <typename F>
__attribute__((noinline)) ErrorData *try_postgres(F &f) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile edata = nullptr;
    PG_TRY();
    { f(); }
    PG_CATCH();
    { edata = take_current_error(caller_context); }
    PG_END_TRY();
    return edata;
}

// Runs f, which calls PostgreSQL; a PostgreSQL error becomes a PgError.
template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
    using Result = decltype(f());
    if constexpr (std::is_void_v<Result>) {
        if (ErrorData *edata = try_postgres(f))
            throw_caught_error(edata);
    } else {
        static_assert(std::is_trivially_copyable_v<Result>,
                      "pg_call returns only plain values: no destructor may be skipped");
        Result result{};
        auto store = [&] { result = f(); };
        if (ErrorData *edata = try_postgres(store))
            throw_caught_error(edata);
        return result;
    }
}

// A C++ error on its way to PostgreSQL: plain fixed-size storage, so that keeping it needs no
// allocation and no destructor.
struct PendingError {
    bool set;
    int sqlerrcode;
    char message[1024];
    char detail[1024];
    char hint[512];
};

// Runs body(fcinfo) and converts any C++ exception into *pending. No exception leaves it.
Datum run_guarded(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo, PendingError *pending) noexcept;

// Raises the pending error as a PostgreSQL ERROR. Called from a frame with no C++ objects.
[[noreturn]] void raise_pending_error(const PendingError *pending);

}  // namespace s3scan

// Defines SQL-callable function `name`: a C-linkage shim around the C++ body that follows.
#define S3SCAN_FUNCTION(name)                                              \
    static Datum name##_body(FunctionCallInfo fcinfo);                     \
    extern "C" {                                                           \
    PG_FUNCTION_INFO_V1(name);                                             \
    Datum name(PG_FUNCTION_ARGS) {                                         \
        s3scan::PendingError pending;                                      \
        pending.set = false;                                               \
        Datum result = s3scan::run_guarded(name##_body, fcinfo, &pending); \
        if (pending.set)                                                   \
            s3scan::raise_pending_error(&pending);                         \
        return result;                                                     \
    }                                                                      \
    }                                                                      \
    static Datum name##_body(FunctionCallInfo fcinfo)
