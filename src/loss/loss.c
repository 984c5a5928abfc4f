/* loss.c: the one loss interface (loss.h) over the registry's ops
 * (registry.h): no loss is named here. */
#include "loss/loss.h"

#include <stdlib.h>
#include <string.h>

#include "loss/registry.h"

struct sr_loss {
    const sr_loss_ops *ops;
    void *state; /* the family's object */
};

sr_status sr_loss_create(sr_loss **out, const sr_loss_init *in, sr_error *err)
{
    *out = NULL;
    const sr_loss_ops *ops = sr_loss_ops_find(in->cfg->loss_name);
    if (!ops) SR_FAIL(err, SR_ERR_CONFIG, "loss.name: unknown loss '%s'", in->cfg->loss_name);
    if (ops->kind != SR_LOSS_SOFTMAX && in->cfg->loss_precision[0] && strcmp(in->cfg->loss_precision, "fp32"))
        SR_FAIL(err, SR_ERR_CONFIG, "loss.precision = %s applies to loss.name = softmax only (the fused exact "
                "softmax kernels); loss.name = %s computes in fp32", in->cfg->loss_precision, in->cfg->loss_name);
    sr_loss *l = calloc(1, sizeof *l);
    if (!l) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the loss");
    l->ops = ops;
    sr_status st = ops->create(&l->state, ops, in, err);
    if (st != SR_OK) {
        free(l);
        return st;
    }
    *out = l;
    return SR_OK;
}

void sr_loss_destroy(sr_loss **lp)
{
    sr_loss *l = *lp;
    if (!l) return;
    l->ops->destroy(l->state);
    free(l);
    *lp = NULL;
}

sr_loss_kind sr_loss_get_kind(const sr_loss *l) { return l->ops->kind; }
const char *sr_loss_name(const sr_loss *l) { return l->ops->name; }

sr_status sr_loss_step(sr_loss *l, const float *q, int64_t b, const float *v,
                       const int64_t *targets, int64_t step, double *loss, float *dq,
                       sr_item_grad *dv, sr_error *err)
{
    return l->ops->step(l->state, q, b, v, targets, step, loss, dq, dv, err);
}

void sr_loss_update_params(sr_loss *l, int64_t step)
{
    if (l->ops->update_params) l->ops->update_params(l->state, step);
}

void sr_loss_set_lr(sr_loss *l, double lr)
{
    if (l->ops->set_lr) l->ops->set_lr(l->state, lr);
}

float *sr_loss_params(sr_loss *l, const sr_shard **map, int64_t *n_local)
{
    if (l->ops->params) return l->ops->params(l->state, map, n_local);
    *map = NULL;
    *n_local = 0;
    return NULL;
}

sr_optim_state *sr_loss_param_state(sr_loss *l)
{
    return l->ops->param_state ? l->ops->param_state(l->state) : NULL;
}

bool sr_loss_scores_by_dot(const sr_loss *l) { return l->ops->eval_scores == NULL; }

sr_status sr_loss_eval_prepare(sr_loss *l, sr_error *err)
{
    return l->ops->eval_prepare ? l->ops->eval_prepare(l->state, err) : SR_OK;
}

void sr_loss_eval_scores(void *loss, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                         float *out)
{
    sr_loss *l = loss;
    if (l->ops->eval_scores) l->ops->eval_scores(l->state, q, b, d, j0, j1, out);
}
