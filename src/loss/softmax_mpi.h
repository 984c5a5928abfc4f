/* softmax_mpi.h: the MPI layer of the exact softmax (one collective a step).
 *
 * sr_softmax_step runs phase 1 on this rank's shard, merges the per-query
 * triples with sr_comm_allreduce_lse (one all-reduce of 3 B doubles), and runs
 * phase 3. Collective over c; every rank passes the same q, b, d, targets and
 * shard map (shard->p == c->size) and its own v / n_local. The loss it
 * returns is bit-identical on every rank (it is computed from the all-reduced
 * triples). dq is this rank's partial: reduce-scatter it to the query owners
 * (sr_comm_reduce_scatter_rows); dv is complete.
 * Errors: data errors (bad target id, non-finite loss) are seen by every rank
 * alike and returned on all of them before or after the single collective,
 * so no rank is left waiting; an inconsistency that may be local to one rank
 * (n_local not matching the shard map, batch larger than the workspace)
 * aborts the job through sr_comm_abort; an MPI failure is SR_ERR_MPI.
 */
#ifndef SR_LOSS_SOFTMAX_MPI_H
#define SR_LOSS_SOFTMAX_MPI_H

#include "comm/comm.h"
#include "loss/softmax.h"

/* One exact-softmax step. loss may be NULL; dq / dv as in sr_softmax_backward.
 * The merged triples are left in sr_softmax_ws_lse(ws) (b entries). */
sr_status sr_softmax_step(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                          int64_t n_local, const sr_shard *shard, const int64_t *targets,
                          sr_softmax_ws *ws, double *loss, float *dq, float *dv, sr_error *err);

#endif
