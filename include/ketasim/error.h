/* ketasim — status codes and the caller-owned error record.
 *
 * Every fallible library function returns a ks_status (0 = success, negative =
 * failure, so `if (rc < 0)` catches every failure) and fills a ks_error that
 * the caller owns. The first error recorded wins: later calls to ks_error_set()
 * on a record that already holds an error leave it unchanged, so the message
 * the user sees names the root cause rather than a consequence of it.
 *
 * Thread-safety: ks_status_name() and ks_status_str() return static strings and
 * may be called from any thread; a ks_error must not be shared between threads.
 */
#ifndef KETASIM_ERROR_H
#define KETASIM_ERROR_H

#include <stddef.h>

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

/* X(name, value, description). The values are part of the ABI and of the
 * command line's documented exit codes: never renumber. */
#define KS_STATUS_LIST(X)                                                      \
  X(KS_OK, 0, "success")                                                       \
  X(KS_ERR_NOMEM, -1, "out of memory")                                         \
  X(KS_ERR_IO, -2, "file could not be read or written")                        \
  X(KS_ERR_SYNTAX, -3, "syntax error in input file")                           \
  X(KS_ERR_INPUT, -4, "invalid input")                                         \
  X(KS_ERR_UNIT, -5, "invalid or mismatched unit")                             \
  X(KS_ERR_MODEL, -6, "invalid model")                                         \
  X(KS_ERR_SOLVER, -7, "the ODE solver failed")                                \
  X(KS_ERR_HDF5, -8, "HDF5 error")                                             \
  X(KS_ERR_ARG, -9, "invalid argument")                                        \
  X(KS_ERR_LIMIT, -10, "a resource limit was exceeded")                        \
  X(KS_ERR_INTERRUPTED, -11, "interrupted")

typedef enum ks_status {
#define KS_STATUS_ENUM_(name, value, text) name = value,
  KS_STATUS_LIST(KS_STATUS_ENUM_)
#undef KS_STATUS_ENUM_
} ks_status;

/* Caller-owned error record. `line` and `column` are 1-based; 0 means unknown.
 * `file` is empty when the error has no input file. */
typedef struct ks_error {
  ks_status status;
  int line;
  int column;
  char file[512];
  char message[768];
} ks_error;

/* A place in an input file, passed to parsers so that their errors point at it.
 */
typedef struct ks_srcloc {
  const char *file; /* borrowed; may be NULL */
  int line;         /* 1-based, 0 = unknown */
  int column;       /* 1-based, 0 = unknown */
} ks_srcloc;

/* Static, thread-safe strings: "KS_ERR_UNIT" and "invalid or mismatched unit".
 */
const char *ks_status_name(ks_status status);
const char *ks_status_str(ks_status status);

/* Resets the record to KS_OK with empty fields. Accepts NULL. */
void ks_error_clear(ks_error *err);

/* Records an error unless `err` already holds one (first error wins) and
 * returns `status`, so a caller can write `return ks_error_set(...)`.
 * `loc` may be NULL. `err` may be NULL, in which case only the status is
 * returned. */
ks_status ks_error_set(ks_error *err, ks_status status, const ks_srcloc *loc,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Writes the compiler-style line "file:line:column: error: message" (parts
 * that are unknown are left out) into buf, truncating to size. Returns buf. */
char *ks_error_format(const ks_error *err, char *buf, size_t size);

/* The same with "warning:" for a record that holds a warning
 * (see ks_scenario_warning()). */
char *ks_warning_format(const ks_error *warning, char *buf, size_t size);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
