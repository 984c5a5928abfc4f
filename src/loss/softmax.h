/* softmax.h: exact full-catalogue softmax cross-entropy over a sharded item
 * table, never materialising the B x n_r logits. Three phases, so one code
 * serves P virtual shards in a process (tests) and P MPI ranks:
 * sr_softmax_partial (per-query log-sum-exp triples over the local shard,
 * tiled SGEMMs), a merge (sr_lse_merge, or sr_comm_allreduce_lse in
 * softmax_mpi.h), sr_softmax_backward (tiles recomputed; dV complete and
 * local, dQ this shard's partial for the caller to reduce-scatter).
 * Agrees with the float64 twin sr_softmax_ref to 1e-5 relative. Workspace:
 * O(min(B_max, qb) x tile + B_max) floats through sr_mem. Kernels are pure
 * (no MPI, no globals, no allocation); argument checks depend only on
 * replicated arguments, except n_local != sr_shard_count (SR_ERR_INTERNAL).
 * Derivation and accuracy: docs/losses.md, "Exact softmax (softmax.h)".
 */
#ifndef SR_LOSS_SOFTMAX_H
#define SR_LOSS_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#include "comm/shard.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/lse.h"
#include "core/mem.h"

/* Opaque scratch for up to b_max queries and tiles of `tile` items. */
typedef struct sr_softmax_ws sr_softmax_ws;

/* Bytes sr_softmax_ws_create will allocate through sr_mem. */
size_t sr_softmax_ws_bytes(int64_t b_max, int64_t tile);

/* Create a workspace (b_max >= 1, tile >= 1) whose buffers are counted in
 * mem (NULL: uncounted). mem must outlive it. On failure *out is NULL. */
sr_status sr_softmax_ws_create(sr_softmax_ws **out, int64_t b_max, int64_t tile, sr_mem *mem,
                               sr_error *err);
/* Free and set *ws to NULL (NULL or *ws == NULL is a no-op). */
void sr_softmax_ws_destroy(sr_softmax_ws **ws);
/* b_max triples owned by the workspace, free for the caller's merge. */
sr_lse *sr_softmax_ws_lse(sr_softmax_ws *ws);
int64_t sr_softmax_ws_tile(const sr_softmax_ws *ws);
/* Queries per block (min(b_max, ~2 MiB / (4 tile)), a multiple of 16). */
int64_t sr_softmax_ws_qblock(const sr_softmax_ws *ws);

/* Kernel path (docs/benchmarks.md, "fused exact softmax"). "blas": tiled
 * SGEMM + vector passes (the default); "auto": the widest fused
 * register-tiled variant this CPU has (SGEMM if none); "fused-avx512",
 * "fused-avx2": that variant, SR_ERR_CONFIG where the CPU lacks it. Fused
 * kernels cover d % 16 == 0, d <= 512; other d take the SGEMM path whatever
 * the choice. Fused allocates a ~128 KiB pack buffer per thread (through the
 * workspace's sr_mem). Rounding differs from the SGEMM path (not its bits). */
sr_status sr_softmax_ws_set_kernel(sr_softmax_ws *ws, const char *name, sr_error *err);
/* Precision of the fused path (docs/losses.md, "bf16 precision"): "fp32"
 * (the default) or "bf16": every product of the AVX-512 fused kernels on
 * bf16-rounded inputs with fp32 accumulation (softmax_fused.h). bf16 is
 * refused (SR_ERR_CONFIG, the message names loss.precision) where cpu
 * (NULL: this one, detected) lacks AVX512_BF16, where the kernel set before
 * (sr_softmax_ws_set_kernel) is not fused-avx512, or where d is not covered;
 * a later call at another d fails rather than run fp32. */
sr_status sr_softmax_ws_set_precision(sr_softmax_ws *ws, const char *name, int64_t d, const sr_cpu *cpu,
                                      sr_error *err);
/* The path a call of dimension d takes: "blas", "fused-avx512",
 * "fused-avx512-bf16", "fused-avx2". */
const char *sr_softmax_ws_kernel(const sr_softmax_ws *ws, int64_t d);

/* Phase 1. part[i] = triple of query i over this shard's items: max and sum
 * of exp over the n_local logits (the empty triple when n_local == 0), and the
 * target logit when this rank owns targets[i] (0 otherwise). A query whose
 * local logits hold a NaN or an infinity gets sum = NaN, so the merged loss is
 * non-finite on every rank. Targets must lie in [0, shard->n) (SR_ERR_DATA).
 * Requires 1 <= b <= b_max, d >= 1, n_local == sr_shard_count(shard, rank). */
sr_status sr_softmax_partial(const float *q, int64_t b, int64_t d, const float *v,
                             int64_t n_local, const sr_shard *shard, int rank,
                             const int64_t *targets, sr_softmax_ws *ws, sr_lse *part,
                             sr_error *err);

/* The loss from merged triples: mean over i of (log Z_i - target_i). */
double sr_softmax_loss(const sr_lse *merged, int64_t b);

/* Phase 3, with the merged (global) triples. Writes dq (b x d, this shard's
 * partial of dL/dQ) and dv (n_local x d, dL/dV_r, complete). Either may be
 * NULL to skip that product. Returns SR_ERR_NUMERIC (and writes nothing) when
 * a merged triple is not finite: same inputs, same verdict on every rank. */
sr_status sr_softmax_backward(const float *q, int64_t b, int64_t d, const float *v,
                              int64_t n_local, const sr_shard *shard, int rank,
                              const int64_t *targets, const sr_lse *merged, sr_softmax_ws *ws,
                              float *dq, float *dv, sr_error *err);

/* Reference twin (softmax_ref.c): naive float64 loops over the whole
 * catalogue v_all (n x d, global id order). loss: the mean loss; dq (b x d)
 * and dv (n x d) may be NULL. No workspace, no allocation. */
sr_status sr_softmax_ref(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                         const int64_t *targets, double *loss, double *dq, double *dv,
                         sr_error *err);
/* Bounds on |bf16 fused path - sr_softmax_ref| for the same inputs (docs/
 * losses.md, "bf16 precision"): the mean loss, dq (b x d) and dv (n x d)
 * elementwise (either may be NULL). From bf16's unit roundoff u = 2^-8 (8
 * significant bits, nearest even) per input: logit error
 * e_ij <= (2u + u^2 + d 2^-24) sum_k |q_ik v_jk|;
 * the fp32 path's own rounding (exp polynomial) is not included. Allocates
 * 3 n doubles (SR_ERR_NOMEM). */
sr_status sr_softmax_ref_bf16_bound(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                                    const int64_t *targets, double *loss, double *dq, double *dv, sr_error *err);

#endif
