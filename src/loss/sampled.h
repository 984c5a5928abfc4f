/* sampled.h: sampled losses over the sharded catalogue: ssm (sampled
 * softmax), nce, bpr. Every rank draws its share of the negatives from its
 * own shard (sampler.h: exact global expected counts k Q(j)) under
 * loss.proposal, scores them against the global batch, and ONE collective a
 * step combines the per-query scalars. Gradients are exact for the sampled
 * objective: dq (b x d) is this rank's partial, dv is row-sparse over the
 * local rows the step touched, ascending, summed in a fixed order
 * (bit-reproducible). Memory O(b_max k_pool + k_pool d) per rank, nothing
 * O(N). Randomness: sampler.h streams positioned by `step`.
 * Errors (collective like loss.h): config errors at create alike on every
 * rank; a bad target id is SR_ERR_DATA on every rank before the collective,
 * a non-finite loss SR_ERR_NUMERIC on every rank after it.
 * Objectives and proposals: docs/losses.md, "Sampled losses (sampled.h)";
 * cost: docs/benchmarks.md, "Sampled step: cost and its limit".
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
