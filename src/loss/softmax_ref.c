/* softmax_ref.c: reference twin of the exact softmax, naive float64 loops.
 *
 * Deliberately simple: for each query, one pass for the max, one for the sum,
 * one for the gradient, every logit recomputed as a double dot product of the
 * float inputs. O(B N d) per pass, no workspace; for tests and small checks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss/softmax.h"

static double dot_(const float *a, const float *b, int64_t d)
{
    double s = 0.0;
    for (int64_t k = 0; k < d; k++) s += (double)a[k] * (double)b[k];
    return s;
}

sr_status sr_softmax_ref(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                         const int64_t *targets, double *loss, double *dq, double *dv,
                         sr_error *err)
{
    if (b < 1 || d < 1 || n < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "softmax reference: batch %lld, dim %lld, items %lld",
                (long long)b, (long long)d, (long long)n);
    for (int64_t i = 0; i < b; i++)
        if (targets[i] < 0 || targets[i] >= n)
            SR_FAIL(err, SR_ERR_DATA, "softmax reference: target %lld of query %lld out of [0, %lld)",
                    (long long)targets[i], (long long)i, (long long)n);
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(double));
    if (dv) memset(dv, 0, (size_t)(n * d) * sizeof(double));
    double total = 0.0;
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) mx = fmax(mx, dot_(qi, v_all + j * d, d));
        double s = 0.0;
        for (int64_t j = 0; j < n; j++) s += exp(dot_(qi, v_all + j * d, d) - mx);
        double logz = mx + log(s);
        total += logz - dot_(qi, v_all + targets[i] * d, d);
        /* dL/dz_ij = (softmax_ij - [j == t_i]) / B */
        for (int64_t j = 0; j < n; j++) {
            const float *vj = v_all + j * d;
            double g = exp(dot_(qi, vj, d) - logz);
            if (j == targets[i]) g -= 1.0;
            g /= (double)b;
            for (int64_t k = 0; k < d; k++) {
                if (dq) dq[i * d + k] += g * (double)vj[k];
                if (dv) dv[j * d + k] += g * (double)qi[k];
            }
        }
    }
    *loss = total / (double)b;
    return SR_OK;
}

/* Per-query part of the bf16 bound: e[j] = c_z sum_k |q_k v_jk| for every j,
 * E = max_j e[j]; g[j] = the bracket of docs/losses.md ("bf16 precision")
 * with the reference P (|P - y| in h[j]). */
static void bf16_row_(const float *qi, int64_t d, const float *v_all, int64_t n, int64_t t, double *e, double *g,
                      double *h, double *emax)
{
    const double u = 0x1p-8, cz = 2 * u + u * u + (double)d * 0x1p-24 / (1 - (double)d * 0x1p-24);
    double mx = -INFINITY, s = 0.0, big = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double a = 0.0;
        for (int64_t k = 0; k < d; k++) a += fabs((double)qi[k] * (double)v_all[j * d + k]);
        e[j] = cz * a;
        big = fmax(big, e[j]);
        g[j] = dot_(qi, v_all + j * d, d);
        mx = fmax(mx, g[j]);
    }
    for (int64_t j = 0; j < n; j++) s += exp(g[j] - mx);
    for (int64_t j = 0; j < n; j++) {
        double p = exp(g[j] - mx) / s;
        h[j] = fabs(p - (j == t ? 1.0 : 0.0));
        /* |P~ - P| <= P (e^{2E} - 1); bf16(P~ - y) and bf16(v) add 2u + u^2 of |P - y|. */
        g[j] = (1 + u) * (1 + u) * p * expm1(2 * big) + (2 * u + u * u) * h[j];
    }
    *emax = big;
}

sr_status sr_softmax_ref_bf16_bound(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                                    const int64_t *targets, double *loss, double *dq, double *dv, sr_error *err)
{
    double ignored;
    SR_TRY(sr_softmax_ref(q, b, d, v_all, n, targets, &ignored, NULL, NULL, err)); /* argument checks */
    double *e = malloc((size_t)n * 3 * sizeof(double));
    if (!e) SR_FAIL(err, SR_ERR_NOMEM, "softmax bf16 bound: out of memory");
    double *g = e + n, *h = g + n, total = 0.0;
    const double u = 0x1p-8, ga_q = (double)n * 0x1p-24 * (1 + u) * (1 + u), ga_v = (double)b * 0x1p-24 * (1 + u) * (1 + u);
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(double));
    if (dv) memset(dv, 0, (size_t)(n * d) * sizeof(double));
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        double emax;
        bf16_row_(qi, d, v_all, n, targets[i], e, g, h, &emax);
        total += emax + e[targets[i]]; /* |d lse| <= max |dz|, plus the target's own */
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < d; k++) { /* fp32 accumulation: n (dQ), b (dV) terms */
                if (dq) dq[i * d + k] += (g[j] + ga_q * h[j]) * fabs((double)v_all[j * d + k]) / (double)b;
                if (dv) dv[j * d + k] += (g[j] + ga_v * h[j]) * fabs((double)qi[k]) / (double)b;
            }
    }
    *loss = total / (double)b;
    free(e);
    return SR_OK;
}
