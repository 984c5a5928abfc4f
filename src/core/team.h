/* team.h: the OpenMP thread team of the tiled kernels (exact softmax,
 * full-ranking top-K).
 *
 * sr_team_run(want, n, fn, ctx) calls fn on every thread of a team of up to
 * `want` threads (one call per thread; nthr is what OpenMP gave, and every
 * partition must use it, not want), each with its contiguous share [lo, hi)
 * of n blocks; want <= 1 or no OpenMP: one call fn(t 0, nthr 1, [0, n)) on
 * the caller's thread. Inside a team OpenBLAS is held at one thread (its
 * pthread build does not see OpenMP regions, so each thread's SGEMM would
 * queue on its thread server) and restored after. No state is kept.
 */
#ifndef SR_CORE_TEAM_H
#define SR_CORE_TEAM_H

#include <stdint.h>

typedef struct sr_team_part {
    int t, nthr;    /* this thread and the team size */
    int64_t lo, hi; /* this thread's blocks: n * t / nthr to n * (t + 1) / nthr */
} sr_team_part;

typedef void (*sr_team_fn)(void *ctx, const sr_team_part *part);

void sr_team_run(int want, int64_t n, sr_team_fn fn, void *ctx);

/* A barrier for the whole team; every thread must reach the same ones. No-op
 * for a team of one. */
void sr_team_barrier(const sr_team_part *part);

#endif
