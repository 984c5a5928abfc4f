/* loss.c: dispatch from the one loss interface to the modules (loss.h). */
#include "loss/loss.h"

#include <stdlib.h>
#include <string.h>

#include "loss/hsm.h"
#include "loss/sampled.h"
#include "loss/softmax_mpi.h"
#include "loss/sparsemap.h"

static const char *const NAMES[] = {"softmax", "ssm", "nce", "bpr", "hsm", "sparsemax", "entmax", "rankmax"};

bool sr_loss_kind_parse(const char *name, sr_loss_kind *out)
{
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(name, NAMES[i])) {
            *out = (sr_loss_kind)i;
            return true;
        }
    return false;
}

const char *sr_loss_kind_name(sr_loss_kind k)
{
    return (size_t)k < sizeof NAMES / sizeof NAMES[0] ? NAMES[k] : "?";
}

struct sr_loss {
    sr_loss_kind kind;
    const sr_comm *c;
    const sr_shard *items;
    int64_t d, n_local;
    sr_mem *mem;
    /* exactly one of these, by kind */
    sr_softmax_ws *ws;
    float *dv; /* softmax: n_local x d */
    sr_sampled *sampled;
    sr_hsm *hsm;
    sr_sparsemap *smap;
};

sr_status sr_loss_create(sr_loss **out, const sr_loss_init *in, sr_error *err)
{
    *out = NULL;
    sr_loss_kind kind;
    if (!sr_loss_kind_parse(in->cfg->loss_name, &kind))
        SR_FAIL(err, SR_ERR_CONFIG, "loss.name: unknown loss '%s'", in->cfg->loss_name);
    sr_loss *l = calloc(1, sizeof *l);
    if (!l) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the loss");
    l->kind = kind;
    l->c = in->c;
    l->items = in->items;
    l->d = in->d;
    l->mem = in->mem;
    l->n_local = sr_shard_count(in->items, in->c->rank);
    sr_status st = SR_OK;
    switch (kind) {
    case SR_LOSS_SOFTMAX:
        st = sr_softmax_ws_create(&l->ws, in->b_max, in->cfg->loss_tile, in->mem, err);
        if (st == SR_OK) {
            l->dv = sr_mem_calloc(in->mem, (size_t)(l->n_local > 0 ? l->n_local : 1) * (size_t)in->d,
                                  sizeof(float), "item gradient", err);
            if (!l->dv) st = err->code;
        }
        break;
    case SR_LOSS_SSM:
    case SR_LOSS_NCE:
    case SR_LOSS_BPR:
        st = sr_sampled_create(&l->sampled, kind, in, err);
        break;
    case SR_LOSS_HSM:
        st = sr_hsm_create(&l->hsm, in, err);
        break;
    case SR_LOSS_SPARSEMAX:
    case SR_LOSS_ENTMAX:
    case SR_LOSS_RANKMAX:
        st = sr_sparsemap_create(&l->smap, kind, in, err);
        break;
    }
    if (st != SR_OK) {
        sr_loss_destroy(&l);
        return st;
    }
    *out = l;
    return SR_OK;
}

void sr_loss_destroy(sr_loss **lp)
{
    sr_loss *l = *lp;
    if (!l) return;
    sr_softmax_ws_destroy(&l->ws);
    sr_mem_free(l->mem, l->dv);
    sr_sampled_destroy(&l->sampled);
    sr_hsm_destroy(&l->hsm);
    sr_sparsemap_destroy(&l->smap);
    free(l);
    *lp = NULL;
}

sr_loss_kind sr_loss_get_kind(const sr_loss *l) { return l->kind; }

sr_status sr_loss_step(sr_loss *l, const float *q, int64_t b, const float *v,
                       const int64_t *targets, int64_t step, double *loss, float *dq,
                       sr_item_grad *dv, sr_error *err)
{
    switch (l->kind) {
    case SR_LOSS_SOFTMAX:
        SR_TRY(sr_softmax_step(l->c, q, b, l->d, v, l->n_local, l->items, targets, l->ws, loss, dq,
                               l->dv, err));
        dv->n = l->n_local;
        dv->rows = NULL;
        dv->g = l->dv;
        return SR_OK;
    case SR_LOSS_SSM:
    case SR_LOSS_NCE:
    case SR_LOSS_BPR:
        return sr_sampled_step(l->sampled, q, b, v, targets, step, loss, dq, dv, err);
    case SR_LOSS_HSM:
        /* The output side is the tree: item rows get no gradient. */
        dv->n = 0;
        dv->rows = NULL;
        dv->g = NULL;
        return sr_hsm_step(l->hsm, q, b, targets, loss, dq, err);
    case SR_LOSS_SPARSEMAX:
    case SR_LOSS_ENTMAX:
    case SR_LOSS_RANKMAX:
        return sr_sparsemap_step(l->smap, q, b, v, targets, step, loss, dq, dv, err);
    }
    SR_FAIL(err, SR_ERR_INTERNAL, "loss %s has no step", sr_loss_kind_name(l->kind));
}

void sr_loss_update_params(sr_loss *l, int64_t step)
{
    if (l->hsm) sr_hsm_update(l->hsm, step);
}

float *sr_loss_params(sr_loss *l, const sr_shard **map, int64_t *n_local)
{
    if (l->hsm) return sr_hsm_params(l->hsm, map, n_local);
    *map = NULL;
    *n_local = 0;
    return NULL;
}

sr_optim_state *sr_loss_param_state(sr_loss *l) { return l->hsm ? sr_hsm_optim_state(l->hsm) : NULL; }

void sr_loss_set_lr(sr_loss *l, double lr)
{
    if (l->hsm) sr_hsm_set_lr(l->hsm, lr);
}

bool sr_loss_scores_by_dot(const sr_loss *l) { return l->kind != SR_LOSS_HSM; }

sr_status sr_loss_eval_prepare(sr_loss *l, sr_error *err)
{
    return l->hsm ? sr_hsm_eval_prepare(l->hsm, err) : SR_OK;
}

void sr_loss_eval_scores(void *loss, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                         float *out)
{
    sr_loss *l = loss;
    if (l->hsm) sr_hsm_eval_scores(l->hsm, q, b, d, j0, j1, out);
}
