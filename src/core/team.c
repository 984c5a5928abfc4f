/* team.c: the OpenMP + OpenBLAS thread team (team.h). */
#include "core/team.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void run_part(int64_t n, int t, int nthr, sr_team_fn fn, void *ctx)
{
    sr_team_part p = {t, nthr, n * t / nthr, n * (t + 1) / nthr};
    fn(ctx, &p);
}

void sr_team_run(int want, int64_t n, sr_team_fn fn, void *ctx)
{
#ifdef _OPENMP
    if (want > 1) {
        int blas = openblas_get_num_threads();
        openblas_set_num_threads(1);
#pragma omp parallel num_threads(want)
        run_part(n, omp_get_thread_num(), omp_get_num_threads(), fn, ctx);
        openblas_set_num_threads(blas);
        return;
    }
#else
    (void)want;
#endif
    run_part(n, 0, 1, fn, ctx);
}

void sr_team_barrier(const sr_team_part *part)
{
#ifdef _OPENMP
    if (part->nthr > 1) {
#pragma omp barrier
    }
#else
    (void)part;
#endif
}
