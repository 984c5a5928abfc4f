/* hsm.h: hierarchical softmax over the sharded catalogue: the items are
 * the leaves of the Huffman tree of their train popularity (huffman.h),
 * log p(i | q) = sum over i's path of log sigmoid(s_k q . w_{n_k}), and the
 * loss is the batch mean of -log p(t | q). Item embeddings are not used;
 * the N - 1 inner node vectors are the loss's own parameters, block-sharded
 * over the ranks by node id (rank-count independent), zero-initialised.
 * Step (collective: one all-reduce of b doubles): loss identical on every
 * rank, dq this rank's partial, node gradients kept for sr_hsm_update.
 * Evaluation: sr_hsm_eval_prepare (collective) fetches the nodes on the
 * paths of this rank's items; sr_hsm_eval_scores (local) gives log p.
 * Errors: create and eval_prepare agree across ranks; step checks its
 * replicated arguments before the collective. Design, memory:
 * docs/losses.md, "Hierarchical softmax (hsm.h)"; timings:
 * docs/benchmarks.md, "HSM full-ranking scorer".
 */
#ifndef SR_LOSS_HSM_H
#define SR_LOSS_HSM_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "loss/huffman.h"
#include "loss/loss.h"

typedef struct sr_hsm sr_hsm;

/* Row-sparse gradient of one rank's nodes: n distinct local node rows (in
 * order of first use by the queries), row k of g belongs to rows[k].
 * slot[r] is the index of local row r in rows, -1 when untouched. */
typedef struct sr_hsm_grad {
    int64_t n, cap, d;
    int64_t *rows; /* cap */
    float *g;      /* cap x d */
    int64_t *slot; /* local node rows */
} sr_hsm_grad;

/* Collective. Builds the tree from in->popularity (counts >= 0, global id
 * order, in->items->n items), the block map of the N - 1 nodes over c->size
 * ranks, this rank's zero rows and their optimiser state (in->opt). */
sr_status sr_hsm_create(sr_hsm **out, const sr_loss_init *in, sr_error *err);
void sr_hsm_destroy(sr_hsm **h);

/* Collective forward + backward over the b queries q (b x d, replicated)
 * with targets (global item ids, replicated). loss (may be NULL) = mean of
 * -log p(target | q), identical on every rank; dq (b x d) = this rank's
 * partial dL/dQ. Keeps the node gradients for sr_hsm_update. Errors:
 * SR_ERR_INTERNAL (b outside [1, b_max]), SR_ERR_DATA (a target outside
 * [0, N)) before any collective; SR_ERR_NUMERIC when the loss is not finite
 * (after it, the same on every rank). */
sr_status sr_hsm_step(sr_hsm *h, const float *q, int64_t b, const int64_t *targets, double *loss,
                      float *dq, sr_error *err);

/* Local: one row-sparse optimiser update (global step >= 1) of every node
 * the last step touched. */
void sr_hsm_update(sr_hsm *h, int64_t step);

/* This rank's node rows (n_local x d, local row order of *map, a block map
 * over N - 1 node ids); writable (checkpoint restore). */
float *sr_hsm_params(sr_hsm *h, const sr_shard **map, int64_t *n_local);

/* The optimiser state of this rank's node rows (same rows as params), for
 * checkpoints. */
sr_optim_state *sr_hsm_optim_state(sr_hsm *h);

/* Learning rate of the following node updates (train.lr_milestones). */
void sr_hsm_set_lr(sr_hsm *h, double lr);

/* The tree and the last step's node gradients (tests, diagnostics). */
const sr_huffman *sr_hsm_tree(const sr_hsm *h);
const sr_hsm_grad *sr_hsm_last_grad(const sr_hsm *h);

/* Collective, once per evaluation (after the last update): fetch the rows
 * of the nodes on the paths of this rank's items. */
sr_status sr_hsm_eval_prepare(sr_hsm *h, sr_error *err);

/* Local, after sr_hsm_eval_prepare: out[i * (j1 - j0) + (j - j0)] =
 * log p(item of local row j | q_i) for 0 <= j0 <= j1 <= n_items_local.
 * d must equal the model's. Any b >= 0 (queries go in blocks). A call
 * without a prepared evaluation is a bug (sr_panic). */
void sr_hsm_eval_scores(void *h, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                        float *out);

/* ---- pure kernels (no MPI), shared by the step and the tests ---- */

/* Gradient buffers for up to cap touched rows of a shard of n_rows rows. */
sr_status sr_hsm_grad_create(sr_hsm_grad *g, int64_t cap, int64_t n_rows, int64_t d, sr_mem *mem,
                             sr_error *err);
void sr_hsm_grad_destroy(sr_hsm_grad *g, sr_mem *mem);

/* The path terms of the nodes `rank` owns under `nodes` (rows w, local row
 * order): part[i] = -sum of its owned log sigmoid terms of query i (not
 * divided by b), dq (b x d) = partial dL/dQ of the mean loss (overwritten),
 * g = dL/dw of the touched owned rows (reset first). Requires g->cap >=
 * min(n_local, b x max_depth) and valid targets (not checked here). */
void sr_hsm_local_terms(const sr_huffman *t, const sr_shard *nodes, int rank, const float *w,
                        int64_t d, const float *q, int64_t b, const int64_t *targets, double *part,
                        float *dq, sr_hsm_grad *g);

/* ---- float64 reference twin (hsm_ref.c): naive loops, no allocation ---- */

/* log p(item | q) with w_all the N - 1 node rows in node id order. */
double sr_hsm_ref_logp(const sr_huffman *t, const float *w_all, int64_t d, const float *q,
                       int64_t item);

/* Mean loss, dq (b x d) and dw (N - 1 x d, dense, node id order) of a
 * batch; dq and dw may be NULL. */
void sr_hsm_ref_step(const sr_huffman *t, const float *w_all, int64_t d, const float *q, int64_t b,
                     const int64_t *targets, double *loss, double *dq, double *dw);

#endif
