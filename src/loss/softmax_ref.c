/* softmax_ref.c: reference twin of the exact softmax, naive float64 loops.
 *
 * Deliberately simple: for each query, one pass for the max, one for the sum,
 * one for the gradient, every logit recomputed as a double dot product of the
 * float inputs. O(B N d) per pass, no workspace; for tests and small checks.
 */
#include <math.h>
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
