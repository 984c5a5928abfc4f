/* log.h: rank-aware logging.
 *
 * sr_log_root prints on rank 0 only (progress, the resolved config, results);
 * sr_log_rank prints on every rank, prefixed "[rank r]" (per-rank problems).
 * Messages go to stderr so stdout stays machine-readable (JSON result lines),
 * and to log->copy as well when the caller set one (a run's log.txt).
 */
#ifndef SR_CORE_LOG_H
#define SR_CORE_LOG_H

#include <stdio.h>

typedef enum sr_log_level { SR_LOG_ERROR = 0, SR_LOG_WARN, SR_LOG_INFO, SR_LOG_DEBUG } sr_log_level;

typedef struct sr_log {
    int rank;
    int size;
    sr_log_level level; /* messages above it are dropped */
    int tty;            /* stderr is a terminal: live progress bars allowed */
    FILE *out;
    FILE *copy;         /* rank 0: every message printed goes here too (run.dir/log.txt), or NULL */
    double t0;          /* wall time at init, for elapsed stamps */
} sr_log;

/* Level from $SOFTREC_LOG (error|warn|info|debug), default info. */
void sr_log_init(sr_log *log, int rank, int size);
void sr_log_root(const sr_log *log, sr_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sr_log_rank(const sr_log *log, sr_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Monotonic wall clock in seconds. */
double sr_time_now(void);

#endif
