/* collectives.h: the collectives softrec's design needs, with 64-bit counts
 * checked before they reach MPI's int.
 *
 * All functions are collective over c; counts arrays have c->size entries and
 * are the same on every rank. Sizes are in elements (float32 or double).
 * Argument errors that every rank sees alike (negative sizes, counts that do
 * not fit MPI's int) are returned on every rank before any message is sent;
 * a failing MPI call returns SR_ERR_MPI with the MPI error string at the
 * call's file:line (comm.h). No function allocates more than
 * O(c->size) except the exchange, which owns its buffers.
 */
#ifndef SR_COMM_COLLECTIVES_H
#define SR_COMM_COLLECTIVES_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/lse.h"

/* Element-wise merge of n log-sum-exp triples across ranks with the
 * user-defined associative MPI_Op (double precision): one collective. */
sr_status sr_comm_allreduce_lse(const sr_comm *c, sr_lse *v, int64_t n, sr_error *err);

/* In-place sum / max of n doubles. */
sr_status sr_comm_allreduce_sum(const sr_comm *c, double *v, int64_t n, sr_error *err);
sr_status sr_comm_allreduce_max(const sr_comm *c, double *v, int64_t n, sr_error *err);
sr_status sr_comm_allreduce_sum_i64(const sr_comm *c, int64_t *v, int64_t n, sr_error *err);

/* Root's count elements of type t into buf on every rank (count and root
 * the same on every rank). Root counts count x size(t) bytes. */
sr_status sr_comm_bcast(const sr_comm *c, void *buf, int64_t count, MPI_Datatype t, int root, sr_error *err);

/* Every rank's value of mine, in rank order (all has c->size entries). */
sr_status sr_comm_allgather_i64(const sr_comm *c, int64_t mine, int64_t *all, sr_error *err);

/* Gather row blocks: rank r contributes rows[r] rows of width d; recv gets all
 * of them in rank order (sum(rows) x d). */
sr_status sr_comm_allgather_rows(const sr_comm *c, const float *send, const int64_t *rows,
                                 int64_t d, float *recv, sr_error *err);

/* Sum row blocks and scatter: send holds sum(rows) x d partial values on
 * every rank; rank r receives the element-wise sum of block r (rows[r] x d). */
sr_status sr_comm_reduce_scatter_rows(const sr_comm *c, const float *send, const int64_t *rows,
                                      int64_t d, float *recv, sr_error *err);

/* Row exchange by global id (embedding lookup across shards).
 * Plan once for a list of ids (duplicates allowed, any order): every id is
 * sent to its owner. fetch() fills out (n x d, in the order of ids) from the
 * owners' local tables; push() sends n x d rows (gradients) back to the owners,
 * who add them into their local tables (local row order of the shard map). */
typedef struct sr_exchange sr_exchange;

sr_status sr_exchange_plan(sr_exchange **out, const sr_comm *c, const sr_shard *s,
                           const int64_t *ids, int64_t n, sr_error *err);
sr_status sr_exchange_fetch(sr_exchange *x, const float *local_table, int64_t d, float *out,
                            sr_error *err);
sr_status sr_exchange_push(sr_exchange *x, const float *rows, int64_t d, float *local_table,
                           sr_error *err);
/* Bytes this rank sent in the last fetch/push (communication accounting). */
int64_t sr_exchange_bytes_sent(const sr_exchange *x);
void sr_exchange_destroy(sr_exchange **x);

/* ---- additions (below the original contract; signatures above are fixed) ----
 *
 * Exchange details. Duplicate ids are merged before anything is sent: an id
 * travels once per plan, fetch expands it back to every position, push sums
 * the duplicates' rows (in position order) before sending, so the owner does
 * one += per distinct id. Bytes counted are those sent to *other* ranks (the
 * rank's own part is a local copy). The plan copies what it needs: c and s
 * may go away after sr_exchange_plan (the MPI communicator itself must stay
 * alive). Errors one rank sees before the first message (an id outside
 * [0, n), a count that does not fit int, out of memory) are agreed across
 * ranks inside the plan at no extra cost on success (the count exchange
 * carries them); out of memory later, in the middle of an exchange, aborts
 * the job through sr_comm_abort (comm.h).
 */

/* Number of distinct ids this rank asked for, and number of rows it serves
 * to all requesters (its own included) in the plan. */
int64_t sr_exchange_unique(const sr_exchange *x);
int64_t sr_exchange_served(const sr_exchange *x);

/* The same collectives with every MPI count capped at max_count elements
 * (1 <= max_count <= INT_MAX) instead of INT_MAX: longer vectors are sent in
 * chunks, and row collectives whose total passes the cap take the fallback
 * (a loop of MPI_Bcast / MPI_Reduce per rank block). The plain functions call
 * these with INT_MAX; tests use a small cap to exercise the fallbacks. */
sr_status sr_comm_allreduce_lse_capped(const sr_comm *c, sr_lse *v, int64_t n, int64_t max_count,
                                       sr_error *err);
sr_status sr_comm_allreduce_sum_capped(const sr_comm *c, double *v, int64_t n, int64_t max_count,
                                       sr_error *err);
sr_status sr_comm_allgather_rows_capped(const sr_comm *c, const float *send, const int64_t *rows,
                                        int64_t d, float *recv, int64_t max_count, sr_error *err);
sr_status sr_comm_reduce_scatter_rows_capped(const sr_comm *c, const float *send,
                                             const int64_t *rows, int64_t d, float *recv,
                                             int64_t max_count, sr_error *err);

#endif
