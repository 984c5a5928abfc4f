/* hsm.h: hierarchical softmax over the sharded catalogue (DESIGN.md
 * section 2, step 3 "for its inner nodes").
 *
 * Model. The N items are the leaves of the Huffman tree of their train
 * popularity (huffman.h); each of the N - 1 inner nodes n has a vector w_n.
 *     log p(i | q) = sum over the path of i of log sigmoid(s_k q . w_{n_k})
 * (s_k = +1 for child 0, -1 for child 1), so sum_i p(i | q) = 1 exactly.
 * The loss of a batch is the mean over its b queries of -log p(t | q).
 * The query is the user vector; item embeddings are not used.
 *
 * Sharding. The inner nodes are split over the c->size ranks by a block
 * sr_shard over node ids (independent of the item map): rank r owns the rows
 * w_n of its nodes and their optimiser state. Node ids are fixed by the tree
 * (huffman.h): a node's init and its row in a checkpoint do not depend on
 * the rank count. Init: zeros (word2vec's syn1), so at step 0 every item has
 * p = 2^-depth and the first steps move the nodes, not the queries.
 *
 * Step (collective). Every rank walks the b target paths (replicated tree)
 * and computes the terms of the nodes it owns: per-query partial losses
 * (combined by one all-reduce of b doubles), its partial dq (b x d, zero
 * for queries none of whose path nodes it owns; the caller reduce-scatters
 * it) and the gradients of its nodes. A node on the paths of several
 * queries gets their gradients summed, in query order, into one row before
 * the update (no skipped updates, no saturated-sigmoid cut-off as in
 * word2vec's |z| >= 6): one row-sparse optimiser update per touched node.
 * That sum never crosses ranks, so node gradients are bit-identical at every
 * rank count; the loss and dq differ only by the order of the cross-rank sum.
 *
 * Evaluation. sr_hsm_eval_prepare fetches (sr_exchange) the vectors of the
 * U_r distinct nodes on the paths of this rank's items (item map in->items):
 * U_r <= min(N - 1, n_items_local x max_depth), about n_items_local x (1 +
 * log2 P) for scattered items; they are stored in depth-first preorder.
 * sr_hsm_eval_scores takes the range's items in depth-first leaf order and
 * cuts them into chunks of <= 16384 distinct nodes (a chunk of consecutive
 * leaves needs about one node per leaf plus one root path). Per chunk and
 * block of 32 queries: one SGEMM (nodes x queries) over the gathered node
 * rows, one vector exp, then a root-to-leaf pass that turns the logits into
 * prefix log-probabilities (one log sigmoid per node and query, not per item
 * and path step), then one read per leaf into an item-major block, which a
 * blocked transpose writes into the caller's rows. The chunk layout of the
 * last range is cached (the caller scores one range for many query blocks).
 * Measured on the 2-core dev VM (one rank, N = 1M, d = 64, max depth 24,
 * 32 queries, shared machine): ~16 ms per query over the whole shard, ~18 ms
 * in ranges of 4096 items, vs ~5 ms for the dot-product SGEMM of the same
 * size.
 *
 * Memory per rank: the tree (12 bytes per item, replicated); node rows and
 * optimiser state (n_nodes_local x d each, x2 for Adam); step gradients
 * min(n_nodes_local, b_max x max_depth) x d floats plus n_nodes_local
 * int64; eval: U_r x d floats (fetched rows), n_items_local x 32 floats
 * (leaf block), ~U_r x 16 + n_items_local x 20 bytes of chunk topology and
 * a fixed 16384 x (d + 64) floats of chunk workspace; eval_prepare briefly
 * holds (N - 1) int32 node-to-column map.
 * Errors: create and eval_prepare agree on errors across ranks; step checks
 * the replicated arguments (b, targets) before its collective, so every rank
 * returns the same status.
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
