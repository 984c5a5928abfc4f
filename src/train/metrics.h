/* metrics.h: full-ranking top-K metrics (NDCG, Precision, Recall, Hit, MRR,
 * MAP @K) and their accumulation over users and ranks.
 *
 * Definitions (RecBole's, binary relevance). For one user with test set T
 * (|T| >= 1) and ranked list r_1..r_K (global ids; -1 = padding, never a hit):
 *   hits@K      = |{i <= K : r_i in T}|
 *   Precision@K = hits@K / K        (K even when fewer than K items ranked)
 *   Recall@K    = hits@K / |T|
 *   NDCG@K      = DCG / IDCG, DCG = sum_{i <= K, r_i in T} 1 / log2(i + 1),
 *                 IDCG = sum_{i = 1}^{min(|T|, K)} 1 / log2(i + 1)
 *   Hit@K       = 1 when hits@K > 0, else 0
 *   MRR@K       = 1 / (rank of the first hit) when it is <= K, else 0
 *   MAP@K       = sum_{i <= K, r_i in T} Precision@i / min(|T|, K)
 * Users with an empty test set are skipped (not counted). For a list of K
 * values everything comes from one ranked list of length max(K).
 * An sr_metrics accumulates sums and the user count (all doubles, so one
 * sr_comm_allreduce_sum of sr_metrics_pack's vector combines ranks: see
 * sr_metrics_allreduce in eval_mpi.h); sr_metrics_finalise divides.
 * Pure functions; no MPI, no allocation.
 */
#ifndef SR_TRAIN_METRICS_H
#define SR_TRAIN_METRICS_H

#include <stdint.h>

#include "core/error.h"

#define SR_METRICS_MAX_K 8

typedef struct sr_metrics {
    int n_k;
    int64_t k[SR_METRICS_MAX_K]; /* as given (any order, each >= 1) */
    double ndcg[SR_METRICS_MAX_K];      /* sums over counted users, then means */
    double precision[SR_METRICS_MAX_K];
    double recall[SR_METRICS_MAX_K];
    double hit[SR_METRICS_MAX_K];
    double mrr[SR_METRICS_MAX_K];
    double map[SR_METRICS_MAX_K];
    double users;                       /* users with >= 1 test item */
} sr_metrics;

/* One user's values at one cut-off. */
typedef struct sr_metric_values {
    double ndcg, precision, recall, hit, mrr, map;
} sr_metric_values;

/* Zeroed accumulator for the cut-offs ks[0..n_k) (1 <= n_k <= SR_METRICS_MAX_K,
 * every k >= 1): SR_ERR_CONFIG otherwise. */
sr_status sr_metrics_init(sr_metrics *m, const int64_t *ks, int n_k, sr_error *err);

/* The largest cut-off: the ranked lists must hold this many entries. */
int64_t sr_metrics_kmax(const sr_metrics *m);

/* One user's metrics at each cut-off ks[j] into out[j] (no accumulation).
 * ranked: len entries; test: n_test >= 1 ids sorted ascending. Positions
 * past len are misses. */
void sr_metrics_user(const int64_t *ranked, int64_t len, const int64_t *test, int64_t n_test,
                     const int64_t *ks, int n_k, sr_metric_values *out);

/* Add one user (skipped when n_test == 0). Returns 1 if counted. */
int sr_metrics_add(sr_metrics *m, const int64_t *ranked, int64_t len, const int64_t *test,
                   int64_t n_test);

/* Add b users: ranked is b x stride (row i: user i's list, first len used),
 * test lists as CSR (test_indptr[b + 1], ids sorted ascending per user). */
void sr_metrics_add_batch(sr_metrics *m, const int64_t *ranked, int64_t b, int64_t stride, int64_t len,
                          const int64_t *test_indptr, const int64_t *test_ids);

/* into += from (same cut-offs): combining virtual ranks or batches. */
void sr_metrics_merge(sr_metrics *into, const sr_metrics *from);

/* Flatten the sums to 6 n_k + 1 doubles (ndcg, precision, recall, hit, mrr,
 * map, users) and back, for one all-reduce. */
int sr_metrics_packed_len(const sr_metrics *m);
void sr_metrics_pack(const sr_metrics *m, double *buf);
void sr_metrics_unpack(sr_metrics *m, const double *buf);

/* The metrics by name, in sr_metric_values' order. */
typedef enum sr_metric_kind {
    SR_METRIC_NDCG = 0, SR_METRIC_PRECISION, SR_METRIC_RECALL, SR_METRIC_HIT, SR_METRIC_MRR, SR_METRIC_MAP
} sr_metric_kind;
/* "ndcg@20" -> kind and the index of 20 in ks; empty text: ndcg at ks[0].
 * SR_ERR_CONFIG naming `what` (the key) when the name is unknown or K is
 * not one of ks. */
sr_status sr_metric_parse(const char *text, const int64_t *ks, int n_k, const char *what, sr_metric_kind *kind,
                          int *k_index, sr_error *err);

/* Means over the counted users (zeros when none), in place in out. */
void sr_metrics_finalise(const sr_metrics *m, sr_metrics *out);

#endif
