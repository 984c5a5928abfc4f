/* eval_mpi.h: the MPI layer of full-ranking evaluation.
 *
 * sr_eval_topk: every rank runs sr_eval_topk_local on its shard, the b x k
 * candidate lists are all-gathered (P b k entries, never B x N) and merged
 * with sr_eval_topk_merge, so every rank holds the same global top k for all
 * b queries. Ids travel as two exact floats (id >> 24, id & 0xFFFFFF: exact
 * for ids below 2^48) beside the score, in one sr_comm_allgather_rows.
 * sr_metrics_allreduce: sums the accumulators of all ranks (one
 * sr_comm_allreduce_sum of 3 n_k + 1 doubles); each rank should have added
 * only the users it owns, so every user counts once.
 * Collective over c. Argument errors and out-of-memory on any rank are agreed
 * (sr_comm_agree) before the gather, so all ranks return the same error and
 * none waits for a peer that gave up.
 */
#ifndef SR_TRAIN_EVAL_MPI_H
#define SR_TRAIN_EVAL_MPI_H

#include "comm/comm.h"
#include "train/eval_kernels.h"
#include "train/metrics.h"

/* Global top-k (b x k into top_score / top_id on every rank). The same q, b,
 * d, exclusions, k and shard map (shard->p == c->size) on every rank; v and
 * n_local are the rank's own rows. Scratch O(P b k) from the workspace's mem. */
sr_status sr_eval_topk(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                       int64_t n_local, const sr_shard *shard, const int64_t *excl_indptr,
                       const int64_t *excl_ids, int64_t k, sr_topk_ws *ws, float *top_score,
                       int64_t *top_id, sr_error *err);

/* m = sum over ranks of m (same cut-offs on every rank). */
sr_status sr_metrics_allreduce(const sr_comm *c, sr_metrics *m, sr_error *err);

#endif
