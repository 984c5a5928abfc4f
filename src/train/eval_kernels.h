/* eval_kernels.h: full-ranking top-K over a sharded item table, with each
 * user's training items masked (docs/design.md, section 1).
 *
 * Each rank scores the B eval queries against its shard in tiles (one SGEMM
 * per tile and block of queries into a workspace of about 2 MiB of scores), sets the scores of the query's
 * excluded items to -inf, and keeps the best K per query in a small heap.
 * With sr_topk_ws_set_kernel a register-tiled kernel (eval_fused.h) does
 * the scoring and the selection instead, with the same results up to float
 * rounding of the scores.
 * The P local lists merge into the global top K (sr_eval_topk_merge, a pure
 * function; sr_eval_topk in eval_mpi.h does the gather). B x N scores are
 * never stored or sent.
 *
 * Order: score descending, ties broken by the smaller global id; the same
 * rule in the local kernel, the merge and the reference, so the result does
 * not depend on the number of shards, the layout or the tile size (as long
 * as the scores themselves do not: SGEMM rounding can differ with the tile
 * width only through the BLAS kernel's blocking, never in the tests' exact
 * integer-valued cases).
 * Padding: when fewer than K items are eligible, the list ends with
 * (-inf, -1) entries. Excluded items, NaN scores and -inf scores never appear.
 * Exclusions: CSR, excl_indptr[b + 1] and excl_ids (global ids, sorted
 * ascending within each query, in [0, N)); excl_indptr == NULL: no masking.
 * Kernels are pure over their arguments: no MPI, no globals, no allocation.
 */
#ifndef SR_TRAIN_EVAL_KERNELS_H
#define SR_TRAIN_EVAL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"

/* Opaque scratch for up to b_max queries, tiles of `tile` items, K <= k_max. */
typedef struct sr_topk_ws sr_topk_ws;

size_t sr_topk_ws_bytes(int64_t b_max, int64_t tile, int64_t k_max);
/* Buffers counted in mem (NULL: uncounted; must outlive the workspace). */
sr_status sr_topk_ws_create(sr_topk_ws **out, int64_t b_max, int64_t tile, int64_t k_max, sr_mem *mem,
                            sr_error *err);
void sr_topk_ws_destroy(sr_topk_ws **ws);
sr_mem *sr_topk_ws_mem(const sr_topk_ws *ws);
/* Scores that are not dot products (hsm's tree log-probabilities): fn fills
 * out (b x (j1 - j0), row-major) with the scores of local rows [j0, j1) for
 * the b queries q; it replaces the tile's SGEMM (v is then unused).
 * fn == NULL restores dot products. */
typedef void (*sr_score_fn)(void *ctx, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                            float *out);
void sr_topk_ws_set_scorer(sr_topk_ws *ws, sr_score_fn fn, void *ctx);

/* The scoring path (eval_fused.h), like sr_softmax_ws_set_kernel: "blas"
 * (SGEMM + scan, the default), "auto" (the widest fused variant the CPU has,
 * else blas), "fused-avx512", "fused-avx2" (SR_ERR_CONFIG when the CPU lacks
 * it). Fused covers dot-product scores with 1 <= d <= SR_FUSED_D_MAX; a
 * custom scorer or a larger d takes the SGEMM path. A fused choice adds a
 * 128 KiB pack buffer a thread (from the workspace's mem, beyond
 * sr_topk_ws_bytes). sr_topk_ws_kernel: the path a call with dimension d
 * takes. */
sr_status sr_topk_ws_set_kernel(sr_topk_ws *ws, const char *name, sr_error *err);
const char *sr_topk_ws_kernel(const sr_topk_ws *ws, int64_t d);

/* Local top-k of the b queries q (b x d) against this rank's rows v (n_local
 * x d, n_local == sr_shard_count(shard, rank)). Writes top_score / top_id
 * (b x k, row i sorted best first, padded with -inf / -1). Errors (from
 * sr_eval_topk_check, nothing written): SR_ERR_INTERNAL for sizes outside
 * the workspace or n_local not matching the map, SR_ERR_DATA for an exclusion
 * list that is unsorted or out of range (same verdict on every rank, since
 * the lists are replicated). */
sr_status sr_eval_topk_local(const float *q, int64_t b, int64_t d, const float *v, int64_t n_local,
                             const sr_shard *shard, int rank, const int64_t *excl_indptr,
                             const int64_t *excl_ids, int64_t k, sr_topk_ws *ws, float *top_score,
                             int64_t *top_id, sr_error *err);

/* Checks of sr_eval_topk_local's arguments, separate so callers (the MPI
 * wrapper) can run them before any collective. */
sr_status sr_eval_topk_check(int64_t b, int64_t d, int64_t n_local, const sr_shard *shard, int rank,
                             const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                             const sr_topk_ws *ws, sr_error *err);

/* Merge p candidate lists per query into the global top k. cand_score /
 * cand_id hold p blocks of b x k (block r = list of shard r, each row sorted
 * best first and padded as above, as sr_eval_topk_local writes them).
 * Output b x k, same order and padding. Pure; O(b k p). */
void sr_eval_topk_merge(int p, int64_t b, int64_t k, const float *cand_score, const int64_t *cand_id,
                        float *top_score, int64_t *top_id);

/* Reference twin: scores in double by naive loops over the whole catalogue
 * v_all (n x d, global order), full sort of the eligible items per query.
 * For tests; O(b n (d + log n)) time and O(n) scratch from mem. */
sr_status sr_eval_topk_ref(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                           const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                           double *top_score, int64_t *top_id, sr_mem *mem, sr_error *err);

#endif
