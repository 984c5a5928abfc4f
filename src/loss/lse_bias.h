/* lse_bias.h: estimators of the log-partition function log Z, for the bias /
 * variance analysis behind `softrec analyze lse-bias` (issue 4 part 7).
 *
 * For a query q with scores s_j = q . v_j over the N items, Z = sum_j exp(s_j)
 * and P(j) = exp(s_j) / Z (the model's softmax). With k items j_1..j_k drawn
 * from the proposal Q by the shard-local sampler (expected count k Q(j)) and
 * u_j = s_j - log(k Q(j)):
 *
 *   SSM  log Z_ssm = log((1/k) sum_{i<=k} exp(s_{j_i}) / Q(j_i))
 *                  = logsumexp_i u_{j_i}.
 *        Z_ssm is unbiased for Z, so log Z_ssm is biased low (Jensen),
 *        bias ~ -Var(Z_ssm) / (2 Z^2) = O(1/k); with Q = P every term equals
 *        Z and the estimate is exact.
 *   NCE  the normaliser c of the model log p(j) = s_j - c that maximises the
 *        sampled NCE objective with one positive x ~ P and the k noise items:
 *          J(c) = log sig(u_x - c) + sum_i log sig(c - u_{j_i}),
 *        J is strictly concave, J'(c) = sum_i sig(u_{j_i} - c) - sig(c - u_x)
 *        is decreasing with J'(lo) >= 0 at lo = min(u_x, min u) and
 *        J'(hi) <= 0 at hi = max(u_x, max u) + log k, so the root c* is found
 *        by Newton steps safeguarded by bisection on [lo, hi] (a fixed 60
 *        iterations: every rank does the same work, no data-dependent exit).
 *        log Z_nce = c*.
 *
 * Per query i, k and R repetitions r: d_ir = estimate - log Z_i;
 *   bias_i = mean_r d_ir, var_i = mean_r d_ir^2 - bias_i^2 (1/R, so that
 *   mse_i = mean_r d_ir^2 = bias_i^2 + var_i); the row for k reports the
 *   means over the b queries of bias_i, var_i and mse_i.
 * Sampling: repetition r draws one positive per query from P (two-stage:
 * the owner rank by its share of Z, then the item within the shard, from the
 * replicated and owner's streams), shared by all k (common random numbers);
 * for each k the noise sample is drawn as in training (sampler.h) and the
 * same sample feeds both estimators. Streams: (seed, rank | shared,
 * SR_STREAM_SAMPLER) positioned at "steps" 2^31 + r (positives) and
 * 2^31 + 2^24 + r * nk + ki (noise), away from training steps (< 2^31).
 *
 * Cost per (k, r): one b x k_r SGEMM, one LSE all-reduce (SSM), one
 * all-reduce of 2b maxima and 60 of 2b sums (NCE). Per r: one pass over the
 * shard for the positives of the queries whose draw landed on this rank.
 */
#ifndef SR_LOSS_LSE_BIAS_H
#define SR_LOSS_LSE_BIAS_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"
#include "loss/sampler.h"

/* Pure kernels (one process): the SSM estimate from k scores s and log Q,
 * and the NCE estimate from the corrected positive u_x and noise u[0..k). */
double sr_lse_ssm_estimate(const double *s, const double *logq, int64_t k);
double sr_lse_nce_estimate(double ux, const double *u, int64_t k);

typedef struct sr_lse_bias_row {
    int64_t k;
    double ssm_bias, ssm_var, ssm_mse;
    double nce_bias, nce_var, nce_mse;
} sr_lse_bias_row;

/* Collective over c. q (b x d) replicated; v this rank's rows of the map
 * items; smp this rank's sampler over the same map (the proposal Q); ks[nk]
 * sample sizes >= 1; reps >= 1. Writes logz[b] (exact, may be NULL) and
 * rows[nk]; identical on every rank. Scratch through mem. */
sr_status sr_lse_bias_run(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                          int64_t b, int64_t d, const float *v, const int64_t *ks, int64_t nk, int64_t reps,
                          uint64_t seed, sr_mem *mem, double *logz, sr_lse_bias_row *rows, sr_error *err);

#endif
