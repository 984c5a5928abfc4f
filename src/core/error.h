/* error.h: status codes and error records that carry file:line and what failed.
 *
 * Contract
 *  - Fallible functions return sr_status (SR_OK == 0) and, on failure, fill the
 *    caller's sr_error with the code, the source location and one line of text.
 *    Use SR_FAIL / SR_TRY so the location is always the place that detected it.
 *  - The text names the object (file, HDF5 path, config key) and the reason; the
 *    first error recorded wins, later ones do not overwrite it (the root cause).
 *  - This module never exits; deciding what to do with an error across ranks is
 *    sr_comm_agree() (all ranks see it) or sr_comm_abort() (one rank sees it),
 *    src/comm/comm.h and docs/reliability.md, "Errors across ranks".
 *  - file is relative to the checkout wherever it lives ("src/io/dataset.c"):
 *    the build strips the source root from __FILE__.
 */
#ifndef SR_CORE_ERROR_H
#define SR_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* Exit codes are documented in docs/cli.md; keep the numbers stable. */
typedef enum sr_status {
    SR_OK = 0,
    SR_ERR_USAGE = 2,    /* bad command line */
    SR_ERR_CONFIG = 3,   /* bad config key or value */
    SR_ERR_IO = 4,       /* file missing, unreadable, unwritable */
    SR_ERR_DATA = 5,     /* malformed input file or HDF5 schema violation */
    SR_ERR_MPI = 6,      /* an MPI call failed or a count does not fit */
    SR_ERR_NOMEM = 7,    /* allocation failed */
    SR_ERR_NUMERIC = 8,  /* non-finite values */
    SR_ERR_INTERNAL = 9, /* a bug: an invariant did not hold */
    /* Not failures of a call: how a training job ended (exit codes). */
    SR_WATCHDOG = 10,    /* the watchdog ended the job (src/train/guard.h) */
    SR_STOPPED = 11,     /* stopped by a signal, checkpoint committed: resume */
    SR_ERR_CPU = 12      /* this CPU lacks an instruction set the binary was built for (launch/softrec.c) */
} sr_status;

#define SR_ERROR_MSG_MAX 768

typedef struct sr_error {
    sr_status code;
    char file[96]; /* source file that detected it, relative to the checkout */
    int line;
    char msg[SR_ERROR_MSG_MAX];
} sr_error;

/* Reset to "no error". */
void sr_error_clear(sr_error *err);

/* Record an error unless one is already recorded; returns code for chaining.
 * err may be NULL (the error is then dropped: only for best-effort cleanup). */
sr_status sr_error_set(sr_error *err, sr_status code, const char *file, int line,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
sr_status sr_error_vset(sr_error *err, sr_status code, const char *file, int line,
                        const char *fmt, va_list ap);

/* Short name of a status ("data", "io", ...). */
const char *sr_status_name(sr_status code);

/* "msg [src/file.c:123]" into buf (always NUL-terminated). */
void sr_error_format(const sr_error *err, char *buf, size_t len);

/* Record and return from the current function. */
#define SR_FAIL(err, code, ...) return sr_error_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failing call's status (its record already holds the root cause). */
#define SR_TRY(expr)                       \
    do {                                   \
        sr_status sr_try_s_ = (expr);      \
        if (sr_try_s_ != SR_OK) return sr_try_s_; \
    } while (0)

/* Internal invariant (a bug if false). Always on: users' runs must not go on
 * silently with broken state. */
#define SR_ASSERT(cond)                                                               \
    do {                                                                              \
        if (!(cond)) sr_panic(__FILE__, __LINE__, "internal assertion failed: %s", #cond); \
    } while (0)

/* Print "[softrec] file:line: msg" to stderr and abort the whole MPI job
 * (MPI_Abort on MPI_COMM_WORLD when MPI is up, abort() otherwise). For bugs and
 * for one-rank failures where no recovery is possible. Never returns. */
_Noreturn void sr_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
