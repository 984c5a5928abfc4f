/* softmax_mpi.c: partial -> allreduce of the LSE triples -> backward. */
#include "loss/softmax_mpi.h"

#include <math.h>

#include "comm/collectives.h"

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
