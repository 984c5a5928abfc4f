/* bench_util.h: what every MPI benchmark in bench/ does the same way:
 * start and stop MPI with an sr_comm, read "--name value" options, reduce a
 * timing over ranks, time one SGEMM shape, read the load average, and print
 * one JSON result line on rank 0.
 *
 * Header-only (static inline: a benchmark is one .c file and uses a subset).
 * Failures in MPI or the collectives abort the job through sr_comm_abort: a
 * benchmark has nothing to recover.
 */
#ifndef SR_BENCH_UTIL_H
#define SR_BENCH_UTIL_H

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"

/* ---- the machine's peak, measured in this run -------------------------- */

/* The job's peak in GFLOP/s of measure (sr_cpu_fma_peak_gflops, ...): every
 * rank measures its core at the same time (shared-core and frequency effects
 * included), times its BLAS threads, summed over ranks; *per_core gets the
 * slowest rank's core. */
static inline double sr_bench_peak(const sr_comm *c, int threads, double *per_core,
                                   double (*measure)(const sr_cpu *, double))
{
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    MPI_Barrier(c->comm);
    double mine = measure(&cpu, 0.3), lo = mine;
    sr_error e;
    sr_error_clear(&e);
    double neg = -mine;
    if (sr_comm_allreduce_max(c, &neg, 1, &e)) sr_comm_abort(c, &e);
    lo = -neg;
    if (per_core) *per_core = lo;
    double total = mine * threads;
    if (sr_comm_allreduce_sum(c, &total, 1, &e)) sr_comm_abort(c, &e);
    return total;
}

/* The job's FP32 FMA peak (sr_bench_peak). */
static inline double sr_bench_fma_peak(const sr_comm *c, int threads, double *per_core)
{
    return sr_bench_peak(c, threads, per_core, sr_cpu_fma_peak_gflops);
}

/* ---- start, stop, options ----------------------------------------------- */

static inline void sr_bench_start(int *argc, char ***argv, sr_comm *c)
{
    sr_error e;
    sr_error_clear(&e);
    MPI_Init(argc, argv);
    if (sr_comm_init(c, MPI_COMM_WORLD, &e)) sr_comm_abort(c, &e);
}

static inline void sr_bench_stop(sr_comm *c)
{
    sr_comm_destroy(c);
    MPI_Finalize();
}

/* The value after `name` on the command line, or def. */
static inline const char *sr_bench_arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static inline int64_t sr_bench_arg_i64(int argc, char **argv, const char *name, int64_t def)
{
    const char *s = sr_bench_arg_str(argc, argv, name, NULL);
    return s ? strtoll(s, NULL, 10) : def;
}

static inline double sr_bench_arg_f(int argc, char **argv, const char *name, double def)
{
    const char *s = sr_bench_arg_str(argc, argv, name, NULL);
    return s ? strtod(s, NULL) : def;
}

/* ---- reductions and measurements ----------------------------------------- */

/* Timings are reported for the slowest rank. */
static inline double sr_bench_max(const sr_comm *c, double x)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_allreduce_max(c, &x, 1, &e)) sr_comm_abort(c, &e);
    return x;
}

static inline double sr_bench_sum(const sr_comm *c, double x)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_allreduce_sum(c, &x, 1, &e)) sr_comm_abort(c, &e);
    return x;
}

/* CPU seconds of this process: on a shared, loaded machine the wall time
 * mostly measures the neighbours; CPU time is what the work itself cost. */
static inline double sr_bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1-minute load average (-1 if unreadable): the dev machine is shared, so
 * every figure carries the load it was measured under. */
static inline double sr_bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* Seconds per call of one row-major SGEMM shape (ta/tb: transpose A/B), over
 * `reps` calls after one warm-up call. */
static inline double sr_bench_time_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                                         const float *b, int ldb, float *c, int ldc, int reps)
{
    const enum CBLAS_TRANSPOSE A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
    cblas_sgemm(CblasRowMajor, A, B, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    double t0 = sr_time_now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, A, B, m, n, k, 1.0f, a, lda, b, ldb, r == 0 ? 0.0f : 1.0f, c, ldc);
    return (sr_time_now() - t0) / reps;
}

/* ---- one JSON line ------------------------------------------------------- */

/* {"bench":"name","key":value,...}: keys are added in order, then printed
 * (rank 0) as one line on stdout. Too long a line is cut, still closed. */
typedef struct sr_bench_json {
    char buf[4096];
    size_t len;
} sr_bench_json;

static inline void sr_bench_json_add_(sr_bench_json *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void sr_bench_json_add_(sr_bench_json *j, const char *fmt, ...)
{
    size_t room = sizeof j->buf - j->len; /* > 0: len stays below the size */
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(j->buf + j->len, room, fmt, ap);
    va_end(ap);
    if (w > 0) j->len += (size_t)w < room ? (size_t)w : room - 1;
}

static inline void sr_bench_json_begin(sr_bench_json *j, const char *bench)
{
    j->len = 0;
    j->buf[0] = '\0';
    sr_bench_json_add_(j, "{\"bench\":\"%s\"", bench);
}

static inline void sr_bench_json_str(sr_bench_json *j, const char *key, const char *v)
{
    sr_bench_json_add_(j, ",\"%s\":\"%s\"", key, v);
}

static inline void sr_bench_json_int(sr_bench_json *j, const char *key, int64_t v)
{
    sr_bench_json_add_(j, ",\"%s\":%lld", key, (long long)v);
}

/* digits after the point; a non-finite value prints as null. */
static inline void sr_bench_json_num(sr_bench_json *j, const char *key, double v, int digits)
{
    if (isfinite(v)) sr_bench_json_add_(j, ",\"%s\":%.*f", key, digits, v);
    else sr_bench_json_add_(j, ",\"%s\":null", key);
}

/* Closes the object and prints it on rank 0 (with the load average). */
static inline void sr_bench_json_print(sr_bench_json *j, const sr_comm *c)
{
    sr_bench_json_num(j, "loadavg_1m", sr_bench_loadavg(), 2);
    if (c->rank != 0) return;
    printf("%s}\n", j->buf);
    fflush(stdout);
}

#endif
