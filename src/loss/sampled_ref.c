/* sampled_ref.c: float64 reference twin of the sampled losses.
 *
 * Given the drawn sample (the views of every rank), naive double loops: every
 * logit recomputed as a double dot product of the float inputs, the
 * objectives of sampled.h written out term by term. O(b (k + 1) d); for
 * tests.
 */
#include <math.h>
#include <string.h>

#include "loss/sampled.h"

static double dot_(const float *a, const float *b, int64_t d)
{
    double s = 0.0;
    for (int64_t k = 0; k < d; k++) s += (double)a[k] * (double)b[k];
    return s;
}

static double softplus_(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static double sigmoid_(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

/* dq_i += g v_j, dv_j += g q_i */
static void acc_(double g, const float *qi, const float *vj, int64_t d, double *dqi, double *dvj)
{
    for (int64_t k = 0; k < d; k++) {
        if (dqi) dqi[k] += g * (double)vj[k];
        if (dvj) dvj[k] += g * (double)qi[k];
    }
}

/* Entries of query i in view r: [*e0, *e1), keep index of entry e at
 * *kbase + e (or no keep array). */
static void range_(const sr_sample_view *w, int64_t i, int64_t *e0, int64_t *e1, int64_t *kbase)
{
    if (w->ptr) {
        *e0 = w->ptr[i];
        *e1 = w->ptr[i + 1];
        *kbase = 0;
    } else {
        *e0 = 0;
        *e1 = w->n;
        *kbase = i * w->n;
    }
}

static int in_(const sr_sample_view *w, int64_t e, int64_t kbase, int64_t target)
{
    if (w->keep && !w->keep[kbase + e]) return 0;
    return !(w->remove_hits && w->gid[e] == target);
}

sr_status sr_sampled_ref(const sr_sample_view *views, int nviews, const float *q, int64_t b,
                         int64_t d, const float *v_all, int64_t n_items, const int64_t *targets,
                         double *loss, double *dq, double *dv, sr_error *err)
{
    if (nviews < 1 || b < 1 || d < 1 || n_items < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampled reference: %d views, batch %lld, dim %lld, items %lld", nviews,
                (long long)b, (long long)d, (long long)n_items);
    for (int64_t i = 0; i < b; i++)
        if (targets[i] < 0 || targets[i] >= n_items)
            SR_FAIL(err, SR_ERR_DATA, "sampled reference: target %lld out of range", (long long)targets[i]);
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(double));
    if (dv) memset(dv, 0, (size_t)(n_items * d) * sizeof(double));
    const sr_loss_kind kind = views[0].kind;
    double total = 0.0;
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        const int64_t t = targets[i];
        const double st = dot_(qi, v_all + t * d, d);
        double *dqi = dq ? dq + i * d : NULL;
        if (kind == SR_LOSS_BPR) {
            int64_t n = views[0].neg[i];
            double diff = st - dot_(qi, v_all + n * d, d);
            total += softplus_(-diff);
            double g = sigmoid_(-diff) / (double)b;
            acc_(-g, qi, v_all + t * d, d, dqi, dv ? dv + t * d : NULL);
            acc_(g, qi, v_all + n * d, d, dqi, dv ? dv + n * d : NULL);
            continue;
        }
        if (kind == SR_LOSS_NCE) {
            double tc = 0.0;
            for (int r = 0; r < nviews; r++) tc += views[r].tcorr[i];
            total += softplus_(-(st - tc));
            acc_(-sigmoid_(-(st - tc)) / (double)b, qi, v_all + t * d, d, dqi, dv ? dv + t * d : NULL);
            for (int r = 0; r < nviews; r++) {
                const sr_sample_view *w = &views[r];
                int64_t e0, e1, kb;
                range_(w, i, &e0, &e1, &kb);
                for (int64_t e = e0; e < e1; e++) {
                    if (!in_(w, e, kb, t)) continue;
                    const float *vj = v_all + w->gid[e] * d;
                    double z = dot_(qi, vj, d) - w->corr[e];
                    total += softplus_(z);
                    acc_(sigmoid_(z) / (double)b, qi, vj, d, dqi, dv ? dv + w->gid[e] * d : NULL);
                }
            }
            continue;
        }
        /* ssm: two passes over the sample (max, then sum and gradients). */
        double mx = st;
        for (int r = 0; r < nviews; r++) {
            const sr_sample_view *w = &views[r];
            int64_t e0, e1, kb;
            range_(w, i, &e0, &e1, &kb);
            for (int64_t e = e0; e < e1; e++)
                if (in_(w, e, kb, t)) mx = fmax(mx, dot_(qi, v_all + w->gid[e] * d, d) - w->corr[e]);
        }
        double sum = exp(st - mx);
        for (int r = 0; r < nviews; r++) {
            const sr_sample_view *w = &views[r];
            int64_t e0, e1, kb;
            range_(w, i, &e0, &e1, &kb);
            for (int64_t e = e0; e < e1; e++)
                if (in_(w, e, kb, t)) sum += exp(dot_(qi, v_all + w->gid[e] * d, d) - w->corr[e] - mx);
        }
        double logz = mx + log(sum);
        total += logz - st;
        acc_((exp(st - logz) - 1.0) / (double)b, qi, v_all + t * d, d, dqi, dv ? dv + t * d : NULL);
        for (int r = 0; r < nviews; r++) {
            const sr_sample_view *w = &views[r];
            int64_t e0, e1, kb;
            range_(w, i, &e0, &e1, &kb);
            for (int64_t e = e0; e < e1; e++) {
                if (!in_(w, e, kb, t)) continue;
                const float *vj = v_all + w->gid[e] * d;
                double p = exp(dot_(qi, vj, d) - w->corr[e] - logz) / (double)b;
                acc_(p, qi, vj, d, dqi, dv ? dv + w->gid[e] * d : NULL);
            }
        }
    }
    *loss = total / (double)b;
    return SR_OK;
}
