/* loss.c: dispatch from the one loss interface to the modules (loss.h). */
#include "loss/loss.h"

#include <stdlib.h>
#include <string.h>

#include "loss/softmax_mpi.h"

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
    /* softmax */
    sr_softmax_ws *ws;
    float *dv; /* n_local x d */
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
    default:
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "loss.name=%s is not available in this build",
                     sr_loss_kind_name(kind));
        st = SR_ERR_CONFIG;
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
    default:
        SR_FAIL(err, SR_ERR_INTERNAL, "loss %s has no step", sr_loss_kind_name(l->kind));
    }
}

void sr_loss_update_params(sr_loss *l, int64_t step) { (void)l, (void)step; }

float *sr_loss_params(sr_loss *l, const sr_shard **map, int64_t *n_local)
{
    (void)l;
    *map = NULL;
    *n_local = 0;
    return NULL;
}

bool sr_loss_scores_by_dot(const sr_loss *l) { return l->kind != SR_LOSS_HSM; }

sr_status sr_loss_eval_prepare(sr_loss *l, sr_error *err)
{
    (void)l, (void)err;
    return SR_OK;
}

void sr_loss_eval_scores(void *loss, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                         float *out)
{
    (void)loss, (void)q, (void)b, (void)d, (void)j0, (void)j1, (void)out;
}
