/* jacobian.h: spectral norm of the prediction map's Jacobian dp/dz at a
 * model's logits, over the sharded catalogue, by power iteration (the
 * kernel behind `softrec analyze jacobian`; formulas in docs/losses.md).
 *
 *   softmax    J = diag(p) - p p^T                      (norm <= 1/2)
 *   sparsemax  J = diag(s) - s s^T / |S|                (1 when |S| >= 2)
 *   entmax     J = diag(g) - g g^T / sum g, g = p^(2-alpha) on the support
 *   rankmax    p = sparsemax(a z), a = 1 / sum_j [z_j - z_t]_+, with a's own
 *              dependence on z: J = a (I_A - 1_A e_t^T)
 *                                   - a^2 gap_A (1_A - |A| e_t)^T
 *              on A = {j != t : z_j > z_t}, gap_j = z_j - z_t (not symmetric:
 *              the iteration runs on J^T J).
 * No N x N matrix: the iteration vectors live on the ranks' own items, every
 * product needs per-query dot products combined by all-reduce (2 per
 * iteration for the symmetric maps, 3 for rankmax). Queries are processed
 * in blocks sized so that a block's dense per-item vectors (logits as float,
 * three double vectors) fit opts->mem_budget bytes on the rank with the most
 * items (the block size must agree across ranks). Collective over c; every
 * rank passes the same q, b, d, targets, opts and shard map.
 * The starting vector is a hash of (seed, query, global item id): the result
 * does not depend on the rank count beyond rounding.
 */
#ifndef SR_LOSS_JACOBIAN_H
#define SR_LOSS_JACOBIAN_H

#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"
#include "loss/loss.h"

typedef struct sr_jacobian_opts {
    sr_loss_kind kind; /* SOFTMAX, SPARSEMAX, ENTMAX or RANKMAX */
    double alpha;      /* entmax alpha > 1 */
    int64_t k;         /* rankmax k (only 1 is defined) */
    int64_t max_iter;  /* power iterations per query (>= 1) */
    double tol;        /* stop when the estimate changes by <= tol relative */
    double thresh_tol; /* entmax (alpha not 1.5 or 2) threshold tolerance */
    size_t mem_budget; /* bytes for one block's dense vectors; 0: 256 MiB */
    uint64_t seed;
    sr_mem *mem;       /* counts the buffers (may be NULL) */
} sr_jacobian_opts;

/* Per query i < b: norm[i] = ||J_i||_2, support[i] = |support of p_i|
 * (softmax: items with p > 0 in double), iters[i] = iterations run (may be
 * NULL). targets: needed for rankmax (may be NULL otherwise). Errors:
 * argument errors (replicated) before any collective; non-finite logits are
 * SR_ERR_NUMERIC on every rank; out of memory is SR_ERR_NOMEM (agreed). */
sr_status sr_jacobian_norms(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                            int64_t n_local, const sr_shard *shard, const int64_t *targets,
                            const sr_jacobian_opts *o, double *norm, int64_t *support, int64_t *iters,
                            sr_error *err);

/* Reference: the dense Jacobian J (n x n, row-major, J[j*n+k] = dp_j/dz_k)
 * of the map at double logits z, from the float64 reference map. */
sr_status sr_jacobian_dense_ref(sr_loss_kind kind, double alpha, const double *z, int64_t n, int64_t target,
                                double *J, sr_error *err);

#endif
