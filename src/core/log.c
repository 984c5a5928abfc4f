/* log.c: rank-aware logging to stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

double sr_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sr_log_init(sr_log *log, int rank, int size)
{
    log->rank = rank;
    log->size = size;
    log->level = SR_LOG_INFO;
    log->out = stderr;
    log->copy = NULL;
    log->tty = isatty(fileno(stderr));
    log->t0 = sr_time_now();
    const char *env = getenv("SOFTREC_LOG");
    if (env) {
        if (!strcasecmp(env, "error")) log->level = SR_LOG_ERROR;
        else if (!strcasecmp(env, "warn")) log->level = SR_LOG_WARN;
        else if (!strcasecmp(env, "debug")) log->level = SR_LOG_DEBUG;
    }
}

static const char *level_tag(sr_log_level lvl)
{
    switch (lvl) {
    case SR_LOG_ERROR: return "error: ";
    case SR_LOG_WARN: return "warning: ";
    default: return "";
    }
}

static void vlog(const sr_log *log, sr_log_level lvl, int with_rank, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    FILE *to[2] = {log->out, log->copy};
    for (int k = 0; k < 2 && to[k]; k++) {
        if (with_rank)
            fprintf(to[k], "softrec: [rank %d] %s%s\n", log->rank, level_tag(lvl), msg);
        else
            fprintf(to[k], "softrec: %s%s\n", level_tag(lvl), msg);
        fflush(to[k]);
    }
}

void sr_log_root(const sr_log *log, sr_log_level lvl, const char *fmt, ...)
{
    if (log->rank != 0 || lvl > log->level) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(log, lvl, 0, fmt, ap);
    va_end(ap);
}

void sr_log_rank(const sr_log *log, sr_log_level lvl, const char *fmt, ...)
{
    if (lvl > log->level) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(log, lvl, log->size > 1, fmt, ap);
    va_end(ap);
}
