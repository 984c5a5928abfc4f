/* step.c: one optimiser step (train.h, docs/design.md "One step"): the
 * backbone's queries of this rank's examples -> all-gather (Q, targets) ->
 * the loss scores every rank's item shard and combines in its collective ->
 * query gradients reduce-scattered back to their owners -> the backbone's
 * backward and update. */
#include <math.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/gather.h"
#include "core/rng.h"
#include "train/trainer.h"

void sr_trainer_shuffle(sr_trainer *t, int64_t epoch)
{
    int64_t n = t->n_ex;
    for (int64_t i = 0; i < n; i++) t->ex_order[i] = i;
    if (!t->cfg.train_shuffle) return;
    sr_rng r;
    sr_rng_init(&r, (uint64_t)t->cfg.train_seed, (uint32_t)t->c->rank, SR_STREAM_SHUFFLE);
    sr_rng_seek(&r, (uint64_t)epoch << 40); /* one disjoint block range per epoch */
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sr_rng_below(&r, (uint64_t)i + 1);
        int64_t tmp = t->ex_order[i];
        t->ex_order[i] = t->ex_order[j];
        t->ex_order[j] = tmp;
    }
}

void sr_trainer_step_range(const sr_trainer *t, int64_t s, int64_t *lo, int64_t *hi)
{
    const int64_t n = t->n_ex, steps = t->steps_per_epoch;
    if (t->cfg.train_shuffle) {
        *lo = s * n / steps;
        *hi = (s + 1) * n / steps;
        return;
    }
    /* Unshuffled: global batch s is the same whatever the rank count. */
    int64_t gs = s * t->ex_total / steps, ge = (s + 1) * t->ex_total / steps;
    int64_t a = gs > t->ex_offset ? gs : t->ex_offset;
    int64_t b = ge < t->ex_offset + n ? ge : t->ex_offset + n;
    if (b < a) b = a;
    *lo = a - t->ex_offset;
    *hi = b - t->ex_offset;
}

/* Queries of the step on every rank: the global batch (B rows). */
static sr_status gather_batch(sr_trainer *t, int64_t nq, int64_t *B, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t d = t->cfg.model_dim;
    SR_TRY(sr_comm_allgather_i64(c, nq, t->counts, err));
    *B = 0;
    for (int r = 0; r < c->size; r++) *B += t->counts[r];
    SR_TRY(sr_comm_allgather_rows(c, t->q_local, t->counts, d, t->q_all, err));
    return sr_comm_allgather_ids(c, t->t_local, t->counts, t->t_all, err);
}

/* A non-finite gradient on any rank: every rank skips the step before
 * touching a parameter (one all-reduce of a flag). */
static sr_status check_finite(sr_trainer *t, int64_t nq, const sr_item_grad *dv, sr_error *err)
{
    const int64_t d = t->cfg.model_dim;
    double bad = 0;
    for (int64_t k = 0; k < nq * d && bad == 0; k++) bad = !isfinite(t->dq_local[k]);
    for (int64_t k = 0; k < dv->n * d && bad == 0; k++) bad = !isfinite(dv->g[k]);
    SR_TRY(sr_comm_allreduce_max(t->c, &bad, 1, err));
    if (bad != 0) SR_FAIL(err, SR_ERR_NUMERIC, "a gradient is not finite");
    return SR_OK;
}

sr_status sr_trainer_step(sr_trainer *t, int64_t lo, int64_t hi, double *loss, sr_error *err)
{
    const sr_backbone_ops *ops = t->ops;
    const int64_t d = t->cfg.model_dim, nb = hi - lo;
    const int64_t *ex = t->ex_order + lo;
    if (ops->prepare) SR_TRY(ops->prepare(t->bb, err));
    int64_t nq = 0, B = 0;
    SR_TRY(ops->train_queries(t->bb, ex, nb, t->step + 1, t->q_local, t->t_local, &nq, err));
    SR_TRY(gather_batch(t, nq, &B, err));
    const float *items = sr_scores_items(&t->scores, ops->item_rows(t->bb));
    sr_scores_queries(&t->scores, t->q_all, B, true);
    sr_item_grad dv;
    SR_TRY(sr_loss_step(t->loss, t->q_all, B, items, t->t_all, t->step + 1, loss, t->dq_all, &dv, err));
    sr_scores_backward(&t->scores, &dv, t->q_all, t->dq_all, B);
    SR_TRY(sr_comm_reduce_scatter_rows(t->c, t->dq_all, t->counts, d, t->dq_local, err));
    SR_TRY(check_finite(t, nq, &dv, err));
    t->step++;
    /* Every optimiser follows the schedule (a function of the step). */
    const double lr = sr_lr_at(&t->lrs, t->step, t->steps_per_epoch);
    t->opt.lr = lr;
    ops->set_lr(t->bb, lr);
    sr_loss_set_lr(t->loss, lr);
    sr_backbone_grads g = {ex, nb, t->dq_local, nq, &dv, t->t_all, B, t->step};
    SR_TRY(ops->update(t->bb, &g, err));
    sr_loss_update_params(t->loss, t->step);
    return SR_OK;
}
