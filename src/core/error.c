/* error.c: error records and the last-resort panic. */
#include "core/error.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *short_path(const char *file);

void sr_error_clear(sr_error *err)
{
    if (!err) return;
    err->code = SR_OK;
    err->file[0] = '\0';
    err->line = 0;
    err->msg[0] = '\0';
}

sr_status sr_error_vset(sr_error *err, sr_status code, const char *file, int line,
                        const char *fmt, va_list ap)
{
    if (!err || code == SR_OK) return code;
    if (err->code != SR_OK) return code; /* keep the root cause */
    err->code = code;
    snprintf(err->file, sizeof err->file, "%s", short_path(file ? file : "?"));
    err->line = line;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

sr_status sr_error_set(sr_error *err, sr_status code, const char *file, int line,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sr_error_vset(err, code, file, line, fmt, ap);
    va_end(ap);
    return code;
}

const char *sr_status_name(sr_status code)
{
    switch (code) {
    case SR_OK: return "ok";
    case SR_ERR_USAGE: return "usage";
    case SR_ERR_CONFIG: return "config";
    case SR_ERR_IO: return "io";
    case SR_ERR_DATA: return "data";
    case SR_ERR_MPI: return "mpi";
    case SR_ERR_NOMEM: return "nomem";
    case SR_ERR_NUMERIC: return "numeric";
    case SR_ERR_INTERNAL: return "internal";
    case SR_WATCHDOG: return "watchdog";
    case SR_STOPPED: return "stopped";
    case SR_ERR_CPU: return "cpu";
    }
    return "unknown";
}

/* Paths relative to the checkout, whatever directory it sits in: the build
 * maps the source root away from __FILE__ (-fmacro-prefix-map); a compiler
 * without that flag leaves the root, known at build time, at the front. */
static const char *short_path(const char *file)
{
#ifdef SR_SOURCE_ROOT
    size_t n = strlen(SR_SOURCE_ROOT);
    if (strncmp(file, SR_SOURCE_ROOT, n) == 0 && file[n] == '/') return file + n + 1;
#endif
    return file;
}

void sr_error_format(const sr_error *err, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (!err || err->code == SR_OK) {
        snprintf(buf, len, "no error");
        return;
    }
    snprintf(buf, len, "%s [%s:%d]", err->msg, err->file, err->line);
}

_Noreturn void sr_panic(const char *file, int line, const char *fmt, ...)
{
    char msg[SR_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Last resort: a failing MPI query means "MPI is not usable", and
     * abort() ends this process should MPI_Abort return. */
    int up = 0, down = 0, rank = -1;
    if (MPI_Initialized(&up) != MPI_SUCCESS) up = 0;
    if (up && MPI_Finalized(&down) != MPI_SUCCESS) down = 1;
    if (up && !down && MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS) rank = -1;
    fprintf(stderr, "softrec: [rank %d] %s:%d: %s\n", rank, short_path(file), line, msg);
    fflush(stderr);
    if (up && !down) MPI_Abort(MPI_COMM_WORLD, SR_ERR_INTERNAL);
    abort();
}
