/* softmax_mpi.c: partial -> allreduce of the LSE triples -> backward; the
 * "softmax" entry of the loss registry (registry.h). */
#include "loss/softmax_mpi.h"

#include <math.h>
#include <stdlib.h>

#include "comm/collectives.h"
#include "core/log.h"
#include "loss/registry.h"

sr_status sr_softmax_step(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                          int64_t n_local, const sr_shard *shard, const int64_t *targets,
                          sr_softmax_ws *ws, double *loss, float *dq, float *dv, sr_error *err)
{
    if (shard->p != c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "softmax step: shard map over %d ranks, communicator of %d",
                shard->p, c->size);
    sr_lse *lse = sr_softmax_ws_lse(ws);
    sr_status st = sr_softmax_partial(q, b, d, v, n_local, shard, c->rank, targets, ws, lse, err);
    /* Data errors (a bad target id) come from replicated inputs: every rank
     * returns the same one. An internal error (n_local or the workspace
     * inconsistent on this rank) may be this rank's alone, and its peers are
     * about to wait in the all-reduce: abort the job instead. */
    if (st == SR_ERR_INTERNAL) sr_comm_abort(c, err);
    if (st != SR_OK) return st;
    SR_TRY(sr_comm_allreduce_lse(c, lse, b, err));
    double l = sr_softmax_loss(lse, b);
    if (!isfinite(l))
        SR_FAIL(err, SR_ERR_NUMERIC, "softmax step: loss is %g (NaN or infinite embeddings)", l);
    if (loss) *loss = l;
    return sr_softmax_backward(q, b, d, v, n_local, shard, c->rank, targets, lse, ws, dq, dv, err);
}

/* ---- the loss registry's "softmax": a workspace and a dense dv -------- */

typedef struct softmax_loss_ {
    const sr_comm *c;
    const sr_shard *items;
    int64_t d, n_local;
    sr_mem *mem;
    sr_softmax_ws *ws;
    float *dv; /* n_local x d */
} softmax_loss_;

static void softmax_destroy_(void *state)
{
    softmax_loss_ *l = state;
    if (!l) return;
    sr_softmax_ws_destroy(&l->ws);
    sr_mem_free(l->mem, l->dv);
    free(l);
}

static sr_status softmax_create_(void **state, const sr_loss_ops *ops, const sr_loss_init *in,
                                 sr_error *err)
{
    *state = NULL;
    softmax_loss_ *l = calloc(1, sizeof *l);
    if (!l) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the loss");
    l->c = in->c;
    l->items = in->items;
    l->d = in->d;
    l->mem = in->mem;
    l->n_local = sr_shard_count(in->items, in->c->rank);
    sr_status st = sr_softmax_ws_create(&l->ws, in->b_max, in->cfg->loss_tile, in->mem, err);
    if (st == SR_OK && in->cfg->loss_kernel[0]) st = sr_softmax_ws_set_kernel(l->ws, in->cfg->loss_kernel, err);
    const char *prec = in->cfg->loss_precision[0] ? in->cfg->loss_precision : "fp32";
    if (st == SR_OK) st = sr_softmax_ws_set_precision(l->ws, prec, in->d, NULL, err);
    if (st == SR_OK) { /* the path this run takes, beside the "cpu:" line */
        sr_log lg;
        sr_log_init(&lg, in->c->rank, in->c->size);
        sr_log_root(&lg, SR_LOG_INFO, "loss: exact softmax kernel %s (loss.kernel = %s, loss.precision = %s, d = %lld)",
                    sr_softmax_ws_kernel(l->ws, in->d), in->cfg->loss_kernel[0] ? in->cfg->loss_kernel : "blas",
                    prec, (long long)in->d);
    }
    if (st == SR_OK) {
        l->dv = sr_mem_calloc(in->mem, (size_t)(l->n_local > 0 ? l->n_local : 1) * (size_t)in->d,
                              sizeof(float), "item gradient", err);
        if (!l->dv) st = err->code;
    }
    if (st != SR_OK) {
        softmax_destroy_(l);
        return st;
    }
    *state = l;
    return SR_OK;
}

static sr_status softmax_step_(void *state, const float *q, int64_t b, const float *v,
                               const int64_t *targets, int64_t step, double *loss, float *dq,
                               sr_item_grad *dv, sr_error *err)
{
    softmax_loss_ *l = state;
    SR_TRY(sr_softmax_step(l->c, q, b, l->d, v, l->n_local, l->items, targets, l->ws, loss, dq,
                           l->dv, err));
    dv->n = l->n_local;
    dv->rows = NULL;
    dv->g = l->dv;
    return SR_OK;
}

const sr_loss_ops sr_softmax_ops = {
    .name = "softmax",
    .help = "exact softmax over the whole sharded catalogue (tiled, one all-reduce a step)",
    .kind = SR_LOSS_SOFTMAX,
    .create = softmax_create_,
    .destroy = softmax_destroy_,
    .step = softmax_step_,
};
