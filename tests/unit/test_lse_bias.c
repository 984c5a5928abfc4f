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
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "loss/lse_bias.h"
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

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("lse_bias", NULL, NULL);
    CU_add_test(s, "nce_expected_gradient", test_nce_expected_gradient);
    CU_add_test(s, "ssm_unbiased_sqnorm", test_ssm_unbiased_sqnorm);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
