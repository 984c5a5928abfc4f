/* softmax_fused.h: register-tiled exact-softmax kernels (forward triples,
 * backward dQ / dV) that keep each block of logits in vector registers: no
 * SGEMM, no logit buffer. AVX-512, AVX-512 + BF16 and AVX2+FMA variants, all compiled in
 * every build (function target attributes) and chosen at run time; the
 * caller (softmax.c) checks the CPU and the shape first. Covered shapes:
 * d a multiple of 16 in [16, SR_FUSED_D_MAX]. Same results as the SGEMM
 * path up to float rounding (order of the d-sums, float pair-sums of exp).
 * Design, figures and limits: docs/benchmarks.md, "fused exact softmax".
 * The kernels are pure: caller arrays and sizes only, no allocation, no
 * globals; sr_fused_choose reads CPUID.
 */
#ifndef SR_LOSS_SOFTMAX_FUSED_H
#define SR_LOSS_SOFTMAX_FUSED_H

#include <stdint.h>

#include "core/error.h"
#include "core/lse.h"

#define SR_FUSED_D_MAX 512

/* SR_FUSED_AVX512_BF16: the AVX-512 tiles with every product (logits, dQ,
 * dV) on bf16-rounded inputs (vdpbf16ps, fp32 accumulation); exp, sums, max
 * as fp32. Needs AVX512_BF16 (and BW, VL). Error bound: docs/losses.md. */
typedef enum sr_fused_isa { SR_FUSED_AVX512 = 0, SR_FUSED_AVX2 = 1, SR_FUSED_AVX512_BF16 = 2 } sr_fused_isa;

/* A kernel name (loss.kernel) -> *isa, the fused variant to run, or -1 for
 * the SGEMM path: "blas" -1; "auto" the widest variant this CPU has, else
 * -1; "fused-avx512", "fused-avx2" (SR_ERR_CONFIG "<what> kernel NAME: this
 * CPU lacks ..." where it does not); anything else SR_ERR_CONFIG. `what`
 * names the caller in messages ("softmax", "eval"). */
sr_status sr_fused_choose(const char *what, const char *name, int *isa, sr_error *err);

/* Items per packed tile for dimension d (a multiple of 32, ~128 KiB of V). */
int64_t sr_fused_tile(int64_t d);
/* Floats of the pack buffer one thread needs for tiles of nt items. */
int64_t sr_fused_pack_floats(int64_t nt, int64_t d);

/* Forward: fold the logits of queries q[0..nq) (row-major, stride d) against
 * the n items v (row-major) into part[0..nq) (in: running triples, out:
 * updated; part.max stays a float logit or -inf). trow[i]: local row of the
 * query's target or -1. A NaN or +inf logit poisons part.sum with NaN.
 * pack: sr_fused_pack_floats(nt, d) floats, nt = sr_fused_tile(d). */
void sr_fused_forward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                      const int64_t *trow, float *pack, sr_lse *part);

/* Backward over items [j_lo, j_hi) of v for all nq queries: with per-query
 * shift mx[i] (the merged max), scale[i] = 1 / (B S_i), P = exp(z - mx) *
 * scale - inv_b at the target row trow[i] (local row or -1):
 *   dq (nq x d) += P V[j_lo, j_hi)   (accumulated; NULL: skipped)
 *   dv rows [j_lo, j_hi) = P^T Q     (written; NULL: skipped). */
void sr_fused_backward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t j_lo,
                       int64_t j_hi, const float *mx, const float *scale, const int64_t *trow, float inv_b,
                       float *pack, float *dq, float *dv);

#endif
