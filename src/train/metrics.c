/* metrics.c: NDCG / Precision / Recall / Hit / MRR / MAP @K for ranked lists, accumulated. */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
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
                     const int64_t *ks, int n_k, sr_metric_values *out)
{
    for (int j = 0; j < n_k; j++) {
        int64_t k = ks[j], lim = len < k ? len : k, hits = 0;
        double dcg = 0.0, idcg = 0.0, ap = 0.0, rr = 0.0;
        for (int64_t i = 0; i < lim; i++) {
            if (ranked[i] < 0 || !in_sorted_(test, n_test, ranked[i])) continue;
            hits++;
            dcg += 1.0 / log2((double)(i + 2)); /* rank i + 1 */
            ap += (double)hits / (double)(i + 1); /* Precision@(i + 1) at a hit */
            if (hits == 1) rr = 1.0 / (double)(i + 1);
        }
        int64_t ideal = n_test < k ? n_test : k;
        for (int64_t i = 0; i < ideal; i++) idcg += 1.0 / log2((double)(i + 2));
        out[j].ndcg = idcg > 0 ? dcg / idcg : 0.0;
        out[j].precision = (double)hits / (double)k;
        out[j].recall = n_test > 0 ? (double)hits / (double)n_test : 0.0;
        out[j].hit = hits > 0;
        out[j].mrr = rr;
        out[j].map = ideal > 0 ? ap / (double)ideal : 0.0;
    }
}

int sr_metrics_add(sr_metrics *m, const int64_t *ranked, int64_t len, const int64_t *test, int64_t n_test)
{
    if (n_test <= 0) return 0;
    sr_metric_values v[SR_METRICS_MAX_K];
    sr_metrics_user(ranked, len, test, n_test, m->k, m->n_k, v);
    for (int j = 0; j < m->n_k; j++) {
        m->ndcg[j] += v[j].ndcg;
        m->precision[j] += v[j].precision;
        m->recall[j] += v[j].recall;
        m->hit[j] += v[j].hit;
        m->mrr[j] += v[j].mrr;
        m->map[j] += v[j].map;
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

/* The six sums of an accumulator, in packing order. */
static void sums(sr_metrics *m, double *v[6])
{
    v[0] = m->ndcg, v[1] = m->precision, v[2] = m->recall, v[3] = m->hit, v[4] = m->mrr, v[5] = m->map;
}

void sr_metrics_merge(sr_metrics *into, const sr_metrics *from)
{
    double *a[6], *b[6];
    sums(into, a);
    sums((sr_metrics *)from, b);
    for (int s = 0; s < 6; s++)
        for (int j = 0; j < into->n_k; j++) a[s][j] += b[s][j];
    into->users += from->users;
}

int sr_metrics_packed_len(const sr_metrics *m) { return 6 * m->n_k + 1; }

void sr_metrics_pack(const sr_metrics *m, double *buf)
{
    double *a[6];
    sums((sr_metrics *)m, a);
    for (int s = 0; s < 6; s++)
        for (int j = 0; j < m->n_k; j++) buf[s * m->n_k + j] = a[s][j];
    buf[6 * m->n_k] = m->users;
}

void sr_metrics_unpack(sr_metrics *m, const double *buf)
{
    double *a[6];
    sums(m, a);
    for (int s = 0; s < 6; s++)
        for (int j = 0; j < m->n_k; j++) a[s][j] = buf[s * m->n_k + j];
    m->users = buf[6 * m->n_k];
}

void sr_metrics_finalise(const sr_metrics *m, sr_metrics *out)
{
    *out = *m;
    double u = m->users > 0 ? m->users : 1.0, *a[6];
    sums(out, a);
    for (int s = 0; s < 6; s++)
        for (int j = 0; j < out->n_k; j++) a[s][j] /= u;
}

sr_status sr_metric_parse(const char *text, const int64_t *ks, int n_k, const char *what, sr_metric_kind *kind,
                          int *k_index, sr_error *err)
{
    static const char *const names[] = {"ndcg", "precision", "recall", "hit", "mrr", "map"};
    *kind = SR_METRIC_NDCG;
    *k_index = 0;
    if (!text[0]) return SR_OK;
    const char *at = strchr(text, '@');
    char *end = NULL;
    long long k = at ? strtoll(at + 1, &end, 10) : -1;
    int found = -1;
    for (int i = 0; at && i < 6; i++)
        if ((size_t)(at - text) == strlen(names[i]) && !strncmp(text, names[i], strlen(names[i]))) found = i;
    if (found < 0 || !end || *end || end == at + 1)
        SR_FAIL(err, SR_ERR_CONFIG, "%s = '%s': want NAME@K with NAME one of ndcg, precision, recall, hit, mrr, map",
                what, text);
    for (int j = 0; j < n_k; j++)
        if (ks[j] == k) {
            *kind = (sr_metric_kind)found;
            *k_index = j;
            return SR_OK;
        }
    SR_FAIL(err, SR_ERR_CONFIG, "%s = '%s': K = %lld is not one of eval.topk", what, text, k);
}
