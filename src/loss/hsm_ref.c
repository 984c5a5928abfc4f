/* hsm_ref.c: float64 reference twin of hierarchical softmax: the path walked
 * node by node, dot products and log sigmoids in double. For tests. */
#include <math.h>
#include <string.h>

#include "loss/hsm.h"

/* log sigmoid(x) without overflow for either sign. */
static double log_sigmoid_(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

static double dot_(const float *a, const float *b, int64_t d)
{
    double s = 0.0;
    for (int64_t k = 0; k < d; k++) s += (double)a[k] * (double)b[k];
    return s;
}

double sr_hsm_ref_logp(const sr_huffman *t, const float *w_all, int64_t d, const float *q,
                       int64_t item)
{
    double lp = 0.0;
    for (int64_t v = item; t->up[v] >= 0; v = t->n + (t->up[v] >> 1)) {
        int32_t code = t->up[v];
        double s = (code & 1) ? -1.0 : 1.0;
        lp += log_sigmoid_(s * dot_(q, w_all + (int64_t)(code >> 1) * d, d));
    }
    return lp;
}

void sr_hsm_ref_step(const sr_huffman *t, const float *w_all, int64_t d, const float *q, int64_t b,
                     const int64_t *targets, double *loss, double *dq, double *dw)
{
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(double));
    if (dw) memset(dw, 0, (size_t)((t->n - 1) * d) * sizeof(double));
    double acc = 0.0;
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        for (int64_t v = targets[i]; t->up[v] >= 0; v = t->n + (t->up[v] >> 1)) {
            int32_t code = t->up[v];
            const float *w = w_all + (int64_t)(code >> 1) * d;
            double s = (code & 1) ? -1.0 : 1.0, x = s * dot_(qi, w, d);
            acc -= log_sigmoid_(x);
            /* d(-log sigmoid(s z))/dz = -s sigmoid(-s z), averaged over b. */
            double gz = -s / (1.0 + exp(x)) / (double)b;
            for (int64_t k = 0; k < d; k++) {
                if (dq) dq[i * d + k] += gz * (double)w[k];
                if (dw) dw[(int64_t)(code >> 1) * d + k] += gz * (double)qi[k];
            }
        }
    }
    if (loss) *loss = acc / (double)b;
}
