/* test_lse_bias.c: the gradient-bias kernels of lse_bias.h against the
 * float64 twin of the training losses (sr_sampled_ref).
 *
 * The twin gives gradients w.r.t. the logits through an identity catalogue:
 * d = N, v = I, q = s, so s_j = q . v_j and dq = dL/ds (b = 1). Checked:
 *   - NCE: the analytic E g against the mean of 100,000 twin gradients
 *     (y ~ P, k i.i.d. draws from Q), every component within 4.5 standard
 *     errors, with and without hit removal; the other hit rule's formula is
 *     rejected by the same test (so it has the power to fail); E g = 0 at
 *     Z = 1 without hit removal for every k; the k -> inf limit.
 *   - SSM: the per-sample kernel equals the twin on every (y, j1, j2) of a
 *     N = 5, k = 2 catalogue; the unbiased squared-norm estimator over R = 4
 *     repetitions averages, over 40,000 batches, to the exact ||E g||^2
 *     enumerated over all 125 samples (within 4 standard errors), and so does
 *     its control-variate form on h = g - (p - e_y) with a smaller standard
 *     error, while the plug-in ||mean g||^2 sits more than 10 standard
 *     errors above it.
 *   - SSM standard error with shared negatives (float64 twin of the design of
 *     sr_lse_grad_bias_run: 64 queries, k = 1, one negative per repetition
 *     shared by all, R = 50 in 5 groups r % 5), over 300 runs against the
 *     enumerated mean of ||E g_i||^2: the spread over queries / sqrt(b - 1)
 *     (the former SE) covers |error| < 2 SE in under 70% of the runs, the
 *     groups' SE (sr_lse_group_se) in 85-100%; the mean square of the groups'
 *     SE matches the group-mean estimator's variance over the runs (0.7-1.4),
 *     and the full-R estimate varies no more than the group mean.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "analysis/lse_bias.h"
#include "loss/sampled.h"

#define NMAX 8

/* Twin gradient w.r.t. the logits of one sample (target y, draws ids[k],
 * corrections lkq[item] = log(k Q(item))). */
static void twin_grad(sr_loss_kind kind, const float *s, int64_t n, int64_t y, const int64_t *ids, int64_t k,
                      const double *lkq, bool hits, double *g)
{
    float eye[NMAX * NMAX] = {0};
    for (int64_t j = 0; j < n; j++) eye[j * n + j] = 1.0f;
    double corr[16], tc = kind == SR_LOSS_NCE ? lkq[y] : 0.0, loss;
    for (int64_t e = 0; e < k; e++) corr[e] = lkq[ids[e]];
    sr_sample_view w = {kind, hits, 1, k, ids, corr, NULL, NULL, &tc, NULL};
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(sr_sampled_ref(&w, 1, s, 1, n, eye, n, &y, &loss, g, NULL, &err), SR_OK);
}

static int64_t draw(sr_rng *r, const double *p, int64_t n)
{
    double u = sr_rng_uniform(r), c = 0;
    for (int64_t j = 0; j < n; j++) {
        c += p[j];
        if (u < c) return j;
    }
    return n - 1;
}

/* Scores (float-exact), their softmax P, log Z, and Q (weights 1..n). */
static double setup(sr_rng *r, int64_t n, double shift, float *s, double *p, double *q)
{
    double mx = -INFINITY, z = 0, w = 0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = (float)(1.2 * sr_rng_normal(r) + shift);
        mx = fmax(mx, s[j]);
        w += (double)(j + 1);
    }
    for (int64_t j = 0; j < n; j++) z += exp(s[j] - mx);
    for (int64_t j = 0; j < n; j++) {
        p[j] = exp(s[j] - mx) / z;
        q[j] = (double)(j + 1) / w;
    }
    return mx + log(z);
}

static void test_nce_expected_gradient(void)
{
    enum { N = 6, K = 3, M = 100000 };
    sr_rng r;
    sr_rng_init(&r, 2024, 0, 1);
    float s[N];
    double p[N], q[N], lkq[N];
    const double logz = setup(&r, N, 0.7, s, p, q);
    CU_ASSERT(fabs(logz) > 1.0); /* not self-normalised: NCE is biased here */
    for (int64_t j = 0; j < N; j++) lkq[j] = log(K * q[j]);
    for (int h = 0; h < 2; h++) {
        double mean[N] = {0}, m2[N] = {0}, g[N];
        int64_t ids[K];
        for (int m = 0; m < M; m++) {
            int64_t y = draw(&r, p, N);
            for (int e = 0; e < K; e++) ids[e] = draw(&r, q, N);
            twin_grad(SR_LOSS_NCE, s, N, y, ids, K, lkq, h, g);
            for (int64_t j = 0; j < N; j++) {
                mean[j] += g[j] / M;
                m2[j] += g[j] * g[j] / M;
            }
        }
        int ok = 1, other_ok = 1;
        double bias2 = 0;
        for (int64_t j = 0; j < N; j++) {
            double se = sqrt((m2[j] - mean[j] * mean[j]) / (M - 1));
            double ex = sr_lse_nce_grad(s[j], lkq[j], logz, h), wrong = sr_lse_nce_grad(s[j], lkq[j], logz, !h);
            ok &= fabs(mean[j] - ex) < 4.5 * se;
            other_ok &= fabs(mean[j] - wrong) < 4.5 * se;
            bias2 += ex * ex;
            printf("\n  nce h=%d j=%lld: MC %+.5f +- %.5f, analytic %+.5f", h, (long long)j, mean[j], se, ex);
        }
        CU_ASSERT(ok);
        CU_ASSERT(!other_ok);
        CU_ASSERT(sqrt(bias2) > 0.05);
    }
    /* Self-normalised logits, no hit removal: E g = 0 at every k. With hit
     * removal it is not, and the limit is P (Z (1 - P) - 1) = -P^2 at Z = 1. */
    for (int64_t k = 1; k <= 4096; k *= 8)
        for (int64_t j = 0; j < N; j++) {
            double lk = log((double)k * q[j]), sn = s[j] - logz;
            CU_ASSERT(fabs(sr_lse_nce_grad(sn, lk, 0.0, false)) < 1e-15);
            CU_ASSERT(sr_lse_nce_grad(sn, lk, 0.0, true) < 0);
        }
    for (int64_t j = 0; j < N; j++) {
        double lk = log(1e12 * q[j]);
        for (int h = 0; h < 2; h++) {
            double lim = sr_lse_nce_grad_limit(s[j], logz, h);
            SR_ASSERT_CLOSE(lim, p[j] * (exp(logz) * (1 - h * p[j]) - 1), 1e-12);
            CU_ASSERT(fabs(sr_lse_nce_grad(s[j], lk, logz, h) - lim) < 1e-6 * fmax(1, fabs(lim)));
        }
    }
}

static void test_ssm_unbiased_sqnorm(void)
{
    enum { N = 5, K = 2, R = 4, M = 40000 };
    sr_rng r;
    sr_rng_init(&r, 77, 0, 1);
    float s[N];
    double p[N], q[N], lkq[N];
    setup(&r, N, 0.0, s, p, q);
    for (int64_t j = 0; j < N; j++) lkq[j] = log(K * q[j]);
    for (int h = 0; h < 2; h++) {
        /* Exact E g over all (y, j1, j2); the kernel against the twin on each. */
        double eg[N] = {0}, g[N], dense[N], tmp[N] = {0};
        int kernel_ok = 1;
        for (int64_t y = 0; y < N; y++)
            for (int64_t a = 0; a < N; a++)
                for (int64_t b = 0; b < N; b++) {
                    int64_t ids[K] = {a, b}, rows[K + 1] = {a, b, y};
                    double u[K] = {s[a] - lkq[a], s[b] - lkq[b]}, wt[K + 1];
                    twin_grad(SR_LOSS_SSM, s, N, y, ids, K, lkq, h, g);
                    double pr = p[y] * q[a] * q[b], twin2 = 0;
                    for (int64_t j = 0; j < N; j++) {
                        eg[j] += pr * g[j];
                        twin2 += g[j] * g[j];
                        dense[j] = 0;
                    }
                    double logd = sr_lse_ssm_logd(s[y], u, ids, K, y, h);
                    wt[K] = sr_lse_ssm_grad(s[y], logd, u, ids, K, y, h, wt) - 1.0;
                    double sq = sr_lse_grad_accum(dense, tmp, rows, wt, K + 1);
                    for (int64_t j = 0; j < N; j++) kernel_ok &= fabs(dense[j] - g[j]) < 1e-12 && tmp[j] == 0;
                    kernel_ok &= fabs(sq - twin2) < 1e-12;
                }
        CU_ASSERT(kernel_ok);
        double exact = 0;
        for (int64_t j = 0; j < N; j++) exact += eg[j] * eg[j];
        /* Monte Carlo: M independent batches of R repetitions; the estimator
         * on g and on the control variate h = a - p (a = g + e_y). */
        double pp = 0, me = 0, me2 = 0, mn = 0, mn2 = 0, mc = 0, mc2 = 0;
        for (int64_t j = 0; j < N; j++) pp += p[j] * p[j];
        for (int m = 0; m < M; m++) {
            double sum[N] = {0}, suma[N] = {0}, ssq = 0, ssqa = 0, dot = 0;
            for (int rep = 0; rep < R; rep++) {
                int64_t y = draw(&r, p, N), ids[K], rows[K + 1];
                double u[K], wt[K + 1];
                for (int e = 0; e < K; e++) {
                    ids[e] = rows[e] = draw(&r, q, N);
                    u[e] = s[ids[e]] - lkq[ids[e]];
                }
                rows[K] = y;
                wt[K] = sr_lse_ssm_grad(s[y], sr_lse_ssm_logd(s[y], u, ids, K, y, h), u, ids, K, y, h, wt);
                for (int e = 0; e <= K; e++) dot += wt[e] * p[rows[e]];
                ssqa += sr_lse_grad_accum(suma, tmp, rows, wt, K + 1);
                wt[K] -= 1.0;
                ssq += sr_lse_grad_accum(sum, tmp, rows, wt, K + 1);
            }
            double a = 0, aa = 0;
            for (int64_t j = 0; j < N; j++) {
                a += sum[j] * sum[j];
                aa += suma[j] * suma[j];
            }
            double est = sr_lse_sqnorm_unbiased(a, ssq, R), naive = a / (R * R);
            double cv = sr_lse_sqnorm_unbiased_cv(aa, ssqa, dot, pp, R);
            me += est / M;
            me2 += est * est / M;
            mn += naive / M;
            mn2 += naive * naive / M;
            mc += cv / M;
            mc2 += cv * cv / M;
        }
        double se = sqrt((me2 - me * me) / (M - 1)), sen = sqrt((mn2 - mn * mn) / (M - 1));
        double sec = sqrt((mc2 - mc * mc) / (M - 1));
        printf("\n  ssm h=%d: exact ||E g||^2 %.6f, unbiased %.6f +- %.6f, with control variate %.6f +- %.6f, "
               "plug-in %.6f +- %.6f",
               h, exact, me, se, mc, sec, mn, sen);
        CU_ASSERT(fabs(me - exact) < 4 * se);
        CU_ASSERT(fabs(mc - exact) < 4 * sec);
        CU_ASSERT(sec < se);
        CU_ASSERT(mn - exact > 10 * sen);
    }
}

static void test_ssm_group_se(void)
{
    enum { N = 7, B = 64, R = 50, G = 5, M = 300 };
    sr_rng r;
    sr_rng_init(&r, 515, 0, 1);
    float s[B][N];
    double p[B][N], q[N], lkq[N], pp[B] = {0}, exact = 0, g[N];
    for (int i = 0; i < B; i++) {
        setup(&r, N, 0.0, s[i], p[i], q);
        for (int64_t j = 0; j < N; j++) {
            lkq[j] = log(q[j]);
            pp[i] += p[i][j] * p[i][j];
        }
        double eg[N] = {0};
        for (int64_t y = 0; y < N; y++)
            for (int64_t j = 0; j < N; j++) {
                twin_grad(SR_LOSS_SSM, s[i], N, y, &j, 1, lkq, true, g);
                for (int64_t t = 0; t < N; t++) eg[t] += p[i][y] * q[j] * g[t];
            }
        for (int64_t t = 0; t < N; t++) exact += eg[t] * eg[t] / B;
    }
    CU_ASSERT(sr_lse_grad_groups(R) == G && sr_lse_grad_groups(3) == 1 && sr_lse_grad_groups(11) == 5);
    static double sum[B][G][N];
    int cov_old = 0, cov_new = 0;
    double mf = 0, mf2 = 0, mg = 0, mg2 = 0, se2 = 0;
    for (int m = 0; m < M; m++) {
        double ssq[B][G] = {{0}}, dot[B][G] = {{0}}, tmp[N] = {0};
        memset(sum, 0, sizeof sum);
        for (int rep = 0; rep < R; rep++) {
            int64_t j = draw(&r, q, N), rows[2] = {j, 0};
            for (int i = 0; i < B; i++) {
                int64_t y = draw(&r, p[i], N);
                double ui = s[i][j] - lkq[j], wt[2];
                rows[1] = y;
                const double logd = sr_lse_ssm_logd(s[i][y], &ui, &j, 1, y, true);
                wt[1] = sr_lse_ssm_grad(s[i][y], logd, &ui, &j, 1, y, true, wt);
                dot[i][rep % G] += wt[0] * p[i][j] + wt[1] * p[i][y];
                ssq[i][rep % G] += sr_lse_grad_accum(sum[i][rep % G], tmp, rows, wt, 2);
            }
        }
        double full = 0, full2 = 0, est[G] = {0};
        for (int i = 0; i < B; i++) {
            double tot2 = 0, ts = 0, td = 0;
            for (int64_t t = 0; t < N; t++) {
                double a = 0;
                for (int gi = 0; gi < G; gi++) a += sum[i][gi][t];
                tot2 += a * a;
            }
            for (int gi = 0; gi < G; gi++) {
                double a2 = 0;
                for (int64_t t = 0; t < N; t++) a2 += sum[i][gi][t] * sum[i][gi][t];
                est[gi] += sr_lse_sqnorm_unbiased_cv(a2, ssq[i][gi], dot[i][gi], pp[i], R / G) / B;
                ts += ssq[i][gi];
                td += dot[i][gi];
            }
            double e = sr_lse_sqnorm_unbiased_cv(tot2, ts, td, pp[i], R);
            full += e / B;
            full2 += e * e / B;
        }
        const double se_old = sqrt((full2 - full * full) / (B - 1)), se_new = sr_lse_group_se(est, G);
        double gm = 0, gss = 0;
        for (int gi = 0; gi < G; gi++) gm += est[gi] / G;
        for (int gi = 0; gi < G; gi++) gss += (est[gi] - gm) * (est[gi] - gm);
        SR_ASSERT_CLOSE(se_new, sqrt(gss / (G - 1) / G), 1e-12);
        cov_old += fabs(full - exact) < 2 * se_old;
        cov_new += fabs(full - exact) < 2 * se_new;
        mf += full / M;
        mf2 += full * full / M;
        mg += gm / M;
        mg2 += gm * gm / M;
        se2 += se_new * se_new / M;
    }
    const double vf = mf2 - mf * mf, vg = mg2 - mg * mg;
    printf("\n  exact %.6f, full-R %.6f (sd %.6f), group mean %.6f (sd %.6f), RMS SE %.6f; |err| < 2 SE in "
           "%d (groups) and %d (queries) of %d runs",
           exact, mf, sqrt(vf), mg, sqrt(vg), sqrt(se2), cov_new, cov_old, M);
    CU_ASSERT(fabs(mf - exact) < 4 * sqrt(vf / M));
    CU_ASSERT(cov_new >= 0.85 * M);
    CU_ASSERT(cov_old < 0.7 * M);
    CU_ASSERT(se2 > 0.7 * vg && se2 < 1.4 * vg);
    CU_ASSERT(vf <= vg);
    CU_ASSERT(isnan(sr_lse_group_se(&exact, 1)));
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("lse_bias", NULL, NULL);
    CU_add_test(s, "nce_expected_gradient", test_nce_expected_gradient);
    CU_add_test(s, "ssm_unbiased_sqnorm", test_ssm_unbiased_sqnorm);
    CU_add_test(s, "ssm_group_se", test_ssm_group_se);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
