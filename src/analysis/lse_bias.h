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
 *
 * Gradient bias (sr_lse_grad_bias_run). The log Z estimates above do not
 * show NCE's structural bias (its per-query normaliser estimate is nearly
 * unbiased); what training sees is the expected GRADIENT w.r.t. the logits.
 * Draw y ~ P per query: the exact softmax gradient p - e_y then has
 * E[p - e_y] = 0 (the model is at the fixed point of the exact loss for this
 * data), so any nonzero E[g] of an estimator is bias. Losses as trained
 * (sampled.h), u_j = s_j - log(k Q(j)), h = remove_accidental_hits:
 *   NCE  g_y = -(1 - sig(u_y)) and g_j += sig(u_j) per noise draw of j
 *        (skipped when j = y and h). Linear in the draw counts (expected
 *        k Q(j), independent of y), so exactly
 *          E g_j = k Q(j) sig(u_j) (1 - h P_j) - P_j (1 - sig(u_j)),
 *        whatever the quotas. It vanishes iff s_j = log P_j + h log(1/(1-P_j))
 *        for all j: with h = 0 iff the model is self-normalised (Z = 1), at
 *        every k; with h = 1 never exactly (hit removal biases NCE too). As
 *        k -> inf (u_j -> -inf, k Q sig(u_j) -> e^{s_j}):
 *          E g_j -> e^{s_j} (1 - h P_j) - P_j = P_j (Z (1 - h P_j) - 1),
 *        nonzero unless Z (1 - h P_j) = 1: the bias does not vanish with k.
 *        Computed exactly: one pass over the shard (b x k_max SGEMM blocks),
 *        one all-reduce of b (2 + 2 nk) sums. Also on the self-normalised
 *        logits s - log Z (same P, Z = 1): what is left is hit removal's.
 *   SSM  D = e^{s_y} + sum over non-hit draws e of e^{u_e}; g_y = e^{s_y}/D - 1,
 *        g_j += e^{u_e}/D per non-hit draw e of item j (without h a hit adds
 *        to g_y). No closed form for E g: Monte Carlo over R repetitions
 *        r (positive and noise sample as above, the same streams), and the
 *        UNBIASED estimate of the squared norm
 *          ||E g||^2 ~ (||sum_r h_r||^2 - sum_r ||h_r||^2) / (R (R - 1))
 *        (E of the cross terms h_r . h_s, r != s, is ||E h||^2; the plug-in
 *        ||mean_r h_r||^2 adds tr Cov(h) / R, a noise floor), taken on the
 *        control variate h_r = g_r - (p - e_y) = a_r - p, which has the same
 *        mean (E[p - e_y] = 0) but not the e_y term, whose rare collisions
 *        y_r = y_s make the estimate on g heavy-tailed. a_r (the sampled
 *        distribution, k + 1 entries) is sparse and p is not, so the sums
 *        are expanded: with A = sum_r a_r,
 *          ||sum h||^2 - sum ||h||^2 = ||A||^2 - sum_r ||a_r||^2
 *                                      - 2 (R - 1) sum_r a_r . p + R (R - 1) ||p||^2,
 *        and a_r . p needs p only at the touched items.
 *        Standard error: within a repetition the noise sample is shared by
 *        all b queries, so the per-query estimates are correlated and their
 *        spread over queries understates the Monte Carlo error. Instead the
 *        repetitions are split into G groups (r goes to group r % G; by
 *        default G = min(5, R / 2), so every group has >= 2 repetitions and
 *        its own unbiased estimate); each group's estimate from its own sums,
 *        averaged over the queries, is est_g, and the est_g use disjoint
 *        repetitions, so they are independent and SE = sd_g(est_g) / sqrt(G)
 *        (G - 1 degrees of freedom: +-2 SE covers about 88% at G = 5, t_4).
 *        That is the SE of the group-mean estimator; the reported value is
 *        the full-R estimate (A = sum_g A_g, all pairs r != s, also across
 *        groups), which is the group mean's conditional expectation given
 *        the unordered set of repetitions (Rao-Blackwell), so its variance
 *        is no larger: the SE is conservative for it, in variance by up to
 *        G (R - 1) / (R - G) (5.4 at R = 50) where the pair term dominates
 *        (||E g|| small against the noise), by about 1 where it is resolved.
 *        NAN when G = 1.
 *        Memory: the A_g per query and group over the shard (b x n_local x G
 *        doubles), then one all-reduce of b (1 + 3G) sums per k
 *        (||sum_g A_g||^2, and per g ||A_g||^2, sum ||a_r||^2, sum a_r . p).
 * Reported per k, RMS over the b queries relative to the exact gradient's:
 *   rel2 = mean_i ||E g_i||^2 / mean_i E||p_i - e_y||^2, where
 *   E||p - e_y||^2 = 1 - ||p||^2 exactly; rel = sqrt(rel2). For SSM also the
 *   standard error of rel2 (Monte Carlo, from the groups above; the b
 *   queries are taken as given) and the plug-in value. The SSM expectation
 *   depends on the joint law of the sample (stratified quotas differ with
 *   the rank count) except at k = 1; NCE's depends only on the expected
 *   counts, so it is rank-independent.
 */
#ifndef SR_LOSS_LSE_BIAS_H
#define SR_LOSS_LSE_BIAS_H

#include <stdbool.h>
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

/* Gradient-bias kernels (pure). For one query: st = s_y, u[n] the noise
 * logits corrected by log(k Q), id[n] their item ids, t the target's id
 * (hits: id[e] == t). */
double sr_lse_ssm_logd(double st, const double *u, const int64_t *id, int64_t n, int64_t t, bool remove_hits);
/* SSM per-sample sampled distribution a (the gradient is g = a - e_y):
 * w[e] = e^{u_e - logd} for draw e (0 for a removed hit); returns the
 * target's own share e^{st - logd}. */
double sr_lse_ssm_grad(double st, double logd, const double *u, const int64_t *id, int64_t n, int64_t t,
                       bool remove_hits, double *w);
/* NCE expected gradient of item j (score s, logkq = log(k Q(j)), the query's
 * log Z), and its k -> inf limit. */
double sr_lse_nce_grad(double s, double logkq, double logz, bool remove_hits);
double sr_lse_nce_grad_limit(double s, double logz, bool remove_hits);
/* Folds the sparse gradient {(rows[e], w[e])} (repeats allowed) into sum[],
 * returns its squared norm. tmp[] (indexed like sum) must be zero, and is
 * left zero. */
double sr_lse_grad_accum(double *sum, double *tmp, const int64_t *rows, const double *w, int64_t n);
/* The SE's default number of groups of repetitions, min(5, reps / 2). */
int64_t sr_lse_grad_groups(int64_t reps);
/* SE of the mean of groups independent estimates est[]: their sample
 * standard deviation (groups - 1) over sqrt(groups); NAN for groups < 2. */
double sr_lse_group_se(const double *est, int64_t groups);
/* (sq_of_sum - sum_of_sq) / (R (R - 1)), R >= 2. */
double sr_lse_sqnorm_unbiased(double sq_of_sum, double sum_of_sq, int64_t reps);
/* The same for h_r = a_r - p from the sums over the a_r: sq_of_sum =
 * ||sum_r a_r||^2, sum_of_sq = sum_r ||a_r||^2, sum_dot = sum_r a_r . p,
 * pp = ||p||^2: the above minus 2 sum_dot / R plus pp. */
double sr_lse_sqnorm_unbiased_cv(double sq_of_sum, double sum_of_sq, double sum_dot, double pp, int64_t reps);

typedef struct sr_lse_grad_row {
    int64_t k;
    double ssm_rel2, ssm_rel2_se, ssm_naive_rel2; /* unbiased (all R), SE from the groups, plug-in */
    double nce_rel2, nce_sn_rel2;                 /* exact; on the self-normalised logits */
} sr_lse_grad_row;

typedef struct sr_lse_grad_summary {
    double mean_logz;
    double grad_ms;      /* mean_i E||p_i - e_y||^2 = mean_i (1 - ||p_i||^2) */
    double nce_lim_rel2; /* NCE's k -> inf limit, relative as the rows */
} sr_lse_grad_summary;

#define SR_LSE_MAX_GROUPS 64

/* Collective, arguments as sr_lse_bias_run, reps >= 2; groups: the SE's
 * groups of repetitions, 0 for sr_lse_grad_groups(reps), else 1..reps / 2
 * and <= SR_LSE_MAX_GROUPS (ssm_rel2 and the plug-in do not depend on it, up
 * to rounding); remove_hits as loss.remove_accidental_hits. Writes *sum and
 * rows[nk], identical on every rank. Extra memory: b x n_local x groups
 * doubles. */
sr_status sr_lse_grad_bias_run(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                               int64_t b, int64_t d, const float *v, const int64_t *ks, int64_t nk, int64_t reps,
                               int64_t groups, bool remove_hits, uint64_t seed, sr_mem *mem,
                               sr_lse_grad_summary *sum, sr_lse_grad_row *rows, sr_error *err);

#endif
