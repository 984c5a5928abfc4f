/* metrics.c: NDCG / Precision / Recall @K for ranked lists, accumulated. */
#include "train/metrics.h"

#include <math.h>
#include <string.h>

sr_status sr_metrics_init(sr_metrics *m, const int64_t *ks, int n_k, sr_error *err)
{
    memset(m, 0, sizeof *m);
    if (n_k < 1 || n_k > SR_METRICS_MAX_K)
        SR_FAIL(err, SR_ERR_CONFIG, "metrics: %d cut-offs given, between 1 and %d allowed", n_k,
                SR_METRICS_MAX_K);
    for (int j = 0; j < n_k; j++) {
        if (ks[j] < 1) SR_FAIL(err, SR_ERR_CONFIG, "metrics: cut-off K = %lld, must be >= 1", (long long)ks[j]);
        m->k[j] = ks[j];
    }
    m->n_k = n_k;
    return SR_OK;
}

int64_t sr_metrics_kmax(const sr_metrics *m)
{
    int64_t kmax = 0;
    for (int j = 0; j < m->n_k; j++)
        if (m->k[j] > kmax) kmax = m->k[j];
    return kmax;
}

static int in_sorted_(const int64_t *ids, int64_t n, int64_t id)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id;
}

void sr_metrics_user(const int64_t *ranked, int64_t len, const int64_t *test, int64_t n_test,
                     const int64_t *ks, int n_k, double *ndcg, double *precision, double *recall)
{
    for (int j = 0; j < n_k; j++) {
        int64_t k = ks[j], lim = len < k ? len : k;
        double dcg = 0.0, idcg = 0.0;
        int64_t hits = 0;
        for (int64_t i = 0; i < lim; i++) {
            if (ranked[i] >= 0 && in_sorted_(test, n_test, ranked[i])) {
                hits++;
                dcg += 1.0 / log2((double)(i + 2)); /* rank i + 1 */
            }
        }
        int64_t ideal = n_test < k ? n_test : k;
        for (int64_t i = 0; i < ideal; i++) idcg += 1.0 / log2((double)(i + 2));
        ndcg[j] = idcg > 0 ? dcg / idcg : 0.0;
        precision[j] = (double)hits / (double)k;
        recall[j] = n_test > 0 ? (double)hits / (double)n_test : 0.0;
    }
}

int sr_metrics_add(sr_metrics *m, const int64_t *ranked, int64_t len, const int64_t *test, int64_t n_test)
{
    if (n_test <= 0) return 0;
    double nd[SR_METRICS_MAX_K], pr[SR_METRICS_MAX_K], rc[SR_METRICS_MAX_K];
    sr_metrics_user(ranked, len, test, n_test, m->k, m->n_k, nd, pr, rc);
    for (int j = 0; j < m->n_k; j++) {
        m->ndcg[j] += nd[j];
        m->precision[j] += pr[j];
        m->recall[j] += rc[j];
    }
    m->users += 1.0;
    return 1;
}

void sr_metrics_add_batch(sr_metrics *m, const int64_t *ranked, int64_t b, int64_t stride, int64_t len,
                          const int64_t *test_indptr, const int64_t *test_ids)
{
    for (int64_t i = 0; i < b; i++)
        sr_metrics_add(m, ranked + i * stride, len, test_ids + test_indptr[i],
                       test_indptr[i + 1] - test_indptr[i]);
}

void sr_metrics_merge(sr_metrics *into, const sr_metrics *from)
{
    for (int j = 0; j < into->n_k; j++) {
        into->ndcg[j] += from->ndcg[j];
        into->precision[j] += from->precision[j];
        into->recall[j] += from->recall[j];
    }
    into->users += from->users;
}

int sr_metrics_packed_len(const sr_metrics *m) { return 3 * m->n_k + 1; }

void sr_metrics_pack(const sr_metrics *m, double *buf)
{
    int n = m->n_k;
    for (int j = 0; j < n; j++) {
        buf[j] = m->ndcg[j];
        buf[n + j] = m->precision[j];
        buf[2 * n + j] = m->recall[j];
    }
    buf[3 * n] = m->users;
}

void sr_metrics_unpack(sr_metrics *m, const double *buf)
{
    int n = m->n_k;
    for (int j = 0; j < n; j++) {
        m->ndcg[j] = buf[j];
        m->precision[j] = buf[n + j];
        m->recall[j] = buf[2 * n + j];
    }
    m->users = buf[3 * n];
}

void sr_metrics_finalise(const sr_metrics *m, sr_metrics *out)
{
    sr_metrics r = *m;
    double u = m->users > 0 ? m->users : 1.0;
    for (int j = 0; j < r.n_k; j++) {
        r.ndcg[j] /= u;
        r.precision[j] /= u;
        r.recall[j] /= u;
    }
    *out = r;
}
