/* sampled.h: sampled losses over the sharded catalogue: ssm (sampled
 * softmax), nce, bpr (issue 4 parts 1, 2, 3, 5; DESIGN.md section 2).
 *
 * Every rank draws its share of the negatives from its own shard (sampler.h:
 * quotas with exact global expected counts k Q(j)), scores them against the
 * global batch, and per-query scalars are combined by ONE collective:
 *   ssm  the log-sum-exp triples (sr_comm_allreduce_lse), as the exact loss;
 *   nce  per-query partial losses (sum);
 *   bpr  per-query partial score differences (sum).
 * Gradients are exact for the sampled objective; dq is this rank's partial
 * (b x d, the caller reduce-scatters it), dv is row-sparse: the distinct
 * local rows the step touched (negatives and owned targets), in increasing
 * row order, accumulated in a fixed order (bit-reproducible).
 *
 * Objectives (mean over the b queries; c_j = log(k Q(j)) the log expected
 * count of j in the whole sample when loss.logq_correction, else 0; N_i the
 * negatives query i sees, without those equal to its target when
 * loss.remove_accidental_hits):
 *   ssm  L_i = log(exp(s_it) + sum_{j in N_i} exp(s_ij - c_j)) - s_it.
 *        The positive is NOT corrected: with hits removed the denominator is
 *        exp(s_t) plus an unbiased importance-sampling estimate of the rest
 *        of Z (E[count_j] = k Q(j)), so the loss is a consistent estimate of
 *        the exact softmax loss, and it IS the exact loss when every item is
 *        drawn once (k = N, uniform: c_j = 0). TF's sampled_softmax_loss also
 *        subtracts log(kQ_t) from the positive; that removes the positive's
 *        p_t from the gradient as k grows, so we do not.
 *   nce  L_i = -log sig(s_it - c_t) - sum_{j in N_i} log sig(-(s_ij - c_j)),
 *        with log sig(x) = -(max(-x, 0) + log1p(exp(-|x|))) (stable).
 *   bpr  L_i = -log sig(s_it - s_in), one negative n_i uniform over the N
 *        items drawn from the replicated stream (all ranks draw alike);
 *        with hits removed it is uniform over the N - 1 others. loss.proposal
 *        and loss.negatives do not apply.
 *
 * Proposals (loss.proposal):
 *   uniform, popularity   Q(j) ~ 1 or (count_j + 1)^beta (sampler.h).
 *   inbatch   the candidates are the b targets of the step (with their
 *             multiplicity); each rank uses those it owns. The batch is b
 *             draws from the data, so c_j = log(b Q_data(j)) with
 *             Q_data(j) = (count_j + 1) / sum(count + 1) (same +1 floor). A
 *             query's own target is an accidental hit. Always shared.
 *   dynamic   hard negatives: the rank's quota k_r of k is chosen as usual
 *             (base proposal loss.dns_base), it draws m_r = ceil(k_r m / k)
 *             candidates (m = loss.dns_candidates >= k) from the base proposal,
 *             and each query keeps the k_r highest raw scores s_ij among them
 *             (ties to the earlier draw; hits excluded first). So each query
 *             keeps k negatives, the union of per-rank top lists (a stratified
 *             stand-in for the global top k of m). c_j = log(k Q_base(j)): the
 *             selection is biased by design (it over-represents high scores,
 *             so the sampled Z is overestimated and hard negatives get more
 *             weight than their softmax share); no unbiased correction exists
 *             for a top-k selection.
 * loss.shared_negatives (default): one negative set for the global batch, the
 * logits are one b x k_r SGEMM; false: every query draws its own k (quotas
 * per query from per-query shared uniforms), scored by dot products.
 *
 * Memory: O(b_max k_pool + k_pool d) per rank (k_pool = k, m for dynamic,
 * b_max for inbatch; b_max k for per-query negatives, without the d factor),
 * plus the dv rows (min(n_local, pool + b_max) x d). No b x N buffers.
 *
 * Cost and its limit (shared pool of k_r rows): three SGEMMs of 2 b k_r d
 * flops (logits, dQ = E V_c, dV_c^T = (alpha Q)^T E), where E = exp(z - m_i)
 * is formed in place by one pass a row (correction, hit mask from the sorted
 * pool, max, one exp, sum) and the collective's per-row scale alpha_i goes on
 * the b x d operands, not on the b x k_r logits. The rest touches O(k_r d +
 * b d) bytes of the table (gather, target rows) plus the b x k_r logits a
 * few times in cache; nothing is O(N). So the step's limit is the SGEMM
 * rate: at N = 1M, d = 64, b = k = 1024, 1 thread, the GEMMs are 403 MFLOP
 * = 6.0-6.7 ms at 60-67 GFLOP/s of a 10 ms step (docs/benchmarks.md).
 *
 * Randomness: sampler.h streams positioned by `step`.
 * Errors (collective like loss.h): config errors at create are seen by every
 * rank alike; a bad target id is SR_ERR_DATA on every rank before the
 * collective; a non-finite loss is SR_ERR_NUMERIC on every rank after it.
 */
#ifndef SR_LOSS_SAMPLED_H
#define SR_LOSS_SAMPLED_H

#include <stdbool.h>
#include <stdint.h>

#include "loss/loss.h"
#include "loss/sampler.h"

typedef struct sr_sampled sr_sampled;

/* kind: SR_LOSS_SSM, SR_LOSS_NCE or SR_LOSS_BPR. Reads loss.negatives,
 * loss.proposal, loss.dns_base, loss.dns_candidates, loss.proposal_beta,
 * loss.logq_correction, loss.remove_accidental_hits, loss.shared_negatives,
 * train.seed. Collective only in that every rank must call it. */
sr_status sr_sampled_create(sr_sampled **out, sr_loss_kind kind, const sr_loss_init *in,
                            sr_error *err);
void sr_sampled_destroy(sr_sampled **s);

/* One forward + backward (collective, see loss.h sr_loss_step). */
sr_status sr_sampled_step(sr_sampled *s, const float *q, int64_t b, const float *v,
                          const int64_t *targets, int64_t step, double *loss, float *dq,
                          sr_item_grad *dv, sr_error *err);

/* This rank's sample of the last step, for reference checks and analysis.
 * Valid until the next step. */
typedef struct sr_sample_view {
    sr_loss_kind kind;
    bool remove_hits;
    int64_t b;
    int64_t n;            /* pool entries on this rank */
    const int64_t *gid;   /* n global ids */
    const double *corr;   /* n: subtracted from the logit (log k Q, 0 without correction) */
    const int64_t *ptr;   /* NULL: every query sees [0, n); else query i sees [ptr[i], ptr[i+1]) */
    const uint8_t *keep;  /* NULL, or dynamic's selection: b x n (shared) or n (ptr) */
    const double *tcorr;  /* b: the target's correction on its owner, 0 on other ranks (nce) */
    const int64_t *neg;   /* bpr: b negatives (global ids, replicated); NULL otherwise */
} sr_sample_view;

void sr_sampled_last_sample(const sr_sampled *s, sr_sample_view *out);

/* Float64 reference twin (sampled_ref.c): naive loops over the whole
 * catalogue v_all (n_items x d, global order) with the sample given as the
 * views of all ranks (any order; for bpr one view is enough). Computes the
 * objective above: loss, dq (b x d) and dv (n_items x d), either may be NULL. */
sr_status sr_sampled_ref(const sr_sample_view *views, int nviews, const float *q, int64_t b,
                         int64_t d, const float *v_all, int64_t n_items, const int64_t *targets,
                         double *loss, double *dq, double *dv, sr_error *err);

#endif
