/* sparsemap_ref.c: reference twin of the sparse maps, float64 and sort-based.
 *
 * Deliberately independent of sparsemap.c's search: the support comes from
 * sorting the whole logit vector (sparsemax: largest k with
 * 1 + k z_(k) > sum_{j<=k} z_(j); entmax-1.5: largest k whose closed-form
 * threshold lies below z_(k)), general alpha from 200 bisection steps, and
 * the loss from its definition Omega*(z) + Omega(e_t) - z_t written as
 * sum_j p_j (z_j - z_t) - Omega(p) (+ 1/2 for sparsemax), not from the
 * stats formula the fast path uses. For tests and small checks; allocates
 * one n-vector per call (malloc).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss/sparsemap.h"

static int desc_(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Threshold of sparsemax / entmax-1.5 from the sorted logits. */
static double tau_sorted_(const sr_smap_params *p, const double *zs, int64_t n)
{
    double cs = 0.0, cq = 0.0, tau = zs[0] - 1.0;
    const double top = zs[0]; /* shift: sums of z - top stay small */
    for (int64_t k = 1; k <= n; k++) {
        double u = zs[k - 1] - top;
        cs += u;
        cq += u * u;
        double t;
        if (p->form == SR_SMAP_SPARSEMAX) {
            t = (cs - 1.0) / (double)k;
        } else {
            double mean = cs / (double)k, var = cq / (double)k - mean * mean;
            double r = 4.0 / (double)k - var;
            if (r < 0.0) break;
            t = mean - sqrt(r);
        }
        if (!(t < u)) break; /* item k is not above its own threshold */
        tau = t + top;
    }
    return tau;
}

sr_status sr_sparsemap_ref_map(const sr_smap_params *p, const double *z, int64_t n, int64_t target,
                               double *prob, double *tau, int64_t *support, double *loss,
                               double *grad, sr_error *err)
{
    if (n < 1 || target < 0 || target >= n)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map reference: %lld items, target %lld", (long long)n,
                (long long)target);
    double *pr = malloc((size_t)n * sizeof(double));
    if (!pr) SR_FAIL(err, SR_ERR_NOMEM, "sparse map reference: %lld doubles", (long long)n);
    double th, l;
    int64_t ns = 0;
    if (p->form == SR_SMAP_RANKMAX) {
        double zy = z[target], g = 0.0, s2 = 0.0, na = 0.0;
        for (int64_t j = 0; j < n; j++)
            if (j != target && z[j] > zy) {
                g += z[j] - zy;
                s2 += (z[j] - zy) * (z[j] - zy);
                na += 1.0;
            }
        th = zy;
        double c = g > 0.0 ? 0.5 * (1.0 - s2 / (g * g)) : 0.0;
        for (int64_t j = 0; j < n; j++) {
            double u = j != target && z[j] > zy ? z[j] - zy : 0.0;
            pr[j] = g > 0.0 ? u / g : (j == target ? 1.0 : 0.0);
            if (grad) grad[j] = u > 0.0 && g > 0.0 ? pr[j] + c : 0.0;
        }
        if (grad && g > 0.0) grad[target] = -1.0 - na * c;
        /* The scaled FY loss (1/a)[Omega*(a z) + 1/2 - a z_t] with a = 1/G. */
        double a = g > 0.0 ? 1.0 / g : 0.0, sp = 0.0, pp = 0.0;
        for (int64_t j = 0; j < n; j++) {
            sp += pr[j] * (z[j] - zy);
            pp += pr[j] * pr[j];
        }
        l = g > 0.0 ? sp - pp / (2.0 * a) + 1.0 / (2.0 * a) : 0.0;
        ns = g > 0.0 ? (int64_t)na : 1;
    } else {
        double *zs = malloc((size_t)n * sizeof(double));
        if (!zs) {
            free(pr);
            SR_FAIL(err, SR_ERR_NOMEM, "sparse map reference: %lld doubles", (long long)n);
        }
        memcpy(zs, z, (size_t)n * sizeof(double));
        qsort(zs, (size_t)n, sizeof(double), desc_);
        double sum = 0.0;
        if (p->form == SR_SMAP_ENTMAX) {
            double lo = zs[0] - sr_smap_radius(p), hi = zs[0];
            for (int it = 0; it < 200; it++) {
                double mid = 0.5 * (lo + hi), f = 0.0;
                for (int64_t j = 0; j < n; j++) f += sr_smap_phi(p, z[j] - mid);
                if (f >= 1.0)
                    lo = mid;
                else
                    hi = mid;
            }
            th = lo;
        } else {
            th = tau_sorted_(p, zs, n);
        }
        free(zs);
        for (int64_t j = 0; j < n; j++) sum += (pr[j] = sr_smap_phi(p, z[j] - th));
        const double a = p->alpha;
        double sp = 0.0, spa = 0.0;
        for (int64_t j = 0; j < n; j++) {
            pr[j] /= sum;
            if (pr[j] > 0.0) ns++;
            sp += pr[j] * (z[j] - z[target]);
            spa += pow(pr[j], a);
            if (grad) grad[j] = pr[j] - (j == target ? 1.0 : 0.0);
        }
        l = sp - (spa - 1.0) / (a * (a - 1.0)); /* Omega(e_t) = 0 in the Tsallis form */
    }
    if (prob) memcpy(prob, pr, (size_t)n * sizeof(double));
    if (tau) *tau = th;
    if (support) *support = ns;
    if (loss) *loss = l;
    free(pr);
    return SR_OK;
}

sr_status sr_sparsemap_ref(const sr_smap_params *p, const float *q, int64_t b, int64_t d,
                           const float *v_all, int64_t n, const int64_t *targets, double *loss,
                           double *tau, int64_t *support, double *prob, double *dq, double *dv,
                           sr_error *err)
{
    if (b < 1 || d < 1 || n < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map reference: batch %lld, dim %lld, items %lld",
                (long long)b, (long long)d, (long long)n);
    double *z = malloc((size_t)n * sizeof(double)), *g = malloc((size_t)n * sizeof(double));
    if (!z || !g) {
        free(z);
        free(g);
        SR_FAIL(err, SR_ERR_NOMEM, "sparse map reference: %lld doubles", (long long)n);
    }
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(double));
    if (dv) memset(dv, 0, (size_t)(n * d) * sizeof(double));
    double total = 0.0;
    sr_status st = SR_OK;
    for (int64_t i = 0; i < b && st == SR_OK; i++) {
        const float *qi = q + i * d;
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++) s += (double)qi[k] * (double)v_all[j * d + k];
            z[j] = s;
        }
        double li = 0.0;
        st = sr_sparsemap_ref_map(p, z, n, targets[i], prob ? prob + i * n : NULL, tau ? tau + i : NULL,
                                  support ? support + i : NULL, &li, g, err);
        total += li;
        for (int64_t j = 0; j < n; j++) {
            double gj = g[j] / (double)b;
            if (gj == 0.0) continue;
            for (int64_t k = 0; k < d; k++) {
                if (dq) dq[i * d + k] += gj * (double)v_all[j * d + k];
                if (dv) dv[j * d + k] += gj * (double)qi[k];
            }
        }
    }
    free(z);
    free(g);
    if (st == SR_OK && loss) *loss = total / (double)b;
    return st;
}
