/* lightgcn.h: LightGCN propagation over the sharded user-item graph: K
 * rounds of D^-1/2 A D^-1/2 from the layer-0 tables, the output the
 * weighted sum of the layers (the maths, layout and limits: docs/models.md).
 *
 * Rank r owns users [u0, u1) with their train rows and the item rows of the
 * shard map; the halo exchange (the items the local edges touch) is planned
 * once at create. Memory per rank is O(local edges + (local users + local
 * items + halo rows) x d): nothing of num_items x d. Sums run in a fixed
 * order, so a rank count gives the same bits every call. create validates
 * its input and agrees the outcome on every rank; forward/backward fail
 * only on MPI errors (an allocation failure inside an exchange aborts the
 * job); their tables must not alias.
 */
#ifndef SR_MODELS_LIGHTGCN_H
#define SR_MODELS_LIGHTGCN_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"

typedef struct sr_lgcn sr_lgcn;

/* Collective. Builds the normalised local edge lists and the halo exchange
 * plan once. indptr has u1 - u0 + 1 entries (indptr[0] need not be 0: rows
 * are item_ids[indptr[k] .. indptr[k+1])), item_ids are global ids.
 * item_degree: the global train count of every item in global order (e.g.
 * the dataset's /item_popularity), or NULL: computed here by pushing counts
 * to the item owners (exact up to 2^33 per item and 8192 ranks). alpha:
 * layers + 1 weights, or NULL for the mean. num_users is checked against u1.
 * The graph copies what it needs; items, indptr, item_ids, item_degree and
 * alpha may be freed after the call (c's MPI communicator must stay alive).
 * mem counts the graph's allocations (may be NULL). *out is NULL on failure. */
sr_status sr_lgcn_create(sr_lgcn **out, const sr_comm *c, const sr_shard *items, int64_t u0, int64_t u1,
                         int64_t num_users, const int64_t *indptr, const int64_t *item_ids,
                         const int64_t *item_degree, int64_t layers, const double *alpha, int64_t d,
                         sr_mem *mem, sr_error *err);
void sr_lgcn_destroy(sr_lgcn **g);

/* Collective: K rounds. eu ((u1-u0) x d), ei (local items x d, the shard's
 * local row order) are the layer-0 tables; u_out, i_out (same shapes) get
 * the final embeddings. Outputs must not alias inputs. */
sr_status sr_lgcn_forward(sr_lgcn *g, const float *eu, const float *ei, float *u_out, float *i_out,
                          sr_error *err);

/* Collective: the transposed propagation. du_out, di_out (gradients wrt the
 * outputs, same shapes) -> deu, dei (gradients wrt the layer-0 tables,
 * overwritten, not accumulated). A^T = A, so this is forward() of the
 * gradients. */
sr_status sr_lgcn_backward(sr_lgcn *g, const float *du_out, const float *di_out, float *deu, float *dei,
                           sr_error *err);

/* Bytes this rank sends in one propagation round (fetch of the halo rows it
 * serves to other ranks + push of its partial rows for items owned
 * elsewhere), from the plan; 0 on one rank. forward/backward send
 * layers x this. */
int64_t sr_lgcn_round_bytes(const sr_lgcn *g);

/* What this rank would send in one round if every rank exchanged the whole
 * item table instead of its halo (all-gather of its item rows to the P-1
 * other ranks + reduce-scatter of partial sums for all N - n_local items
 * owned elsewhere): (P-1) n_local d 4 + (N - n_local) d 4. User rows never
 * leave their owner in either scheme. round_bytes <= this always (equal when
 * every rank's edges touch every item). The saving comes from locality:
 * on Gowalla with balanced user blocks each half of the users touches 99%
 * of the items, so at P = 2 a round is 20.3 MB against 21.0 MB. */
int64_t sr_lgcn_full_table_bytes(const sr_lgcn *g);

/* ---- additions ----------------------------------------------------------- */

/* Bytes this rank actually sent in the last forward or backward call (all
 * rounds, measured by the exchange), for checking the plan's figure. */
int64_t sr_lgcn_last_bytes(const sr_lgcn *g);
/* Distinct items this rank's edges touch (its halo), and its local edges. */
int64_t sr_lgcn_halo_rows(const sr_lgcn *g);
int64_t sr_lgcn_local_edges(const sr_lgcn *g);
/* Layer weight k (0 <= k <= layers) as used. */
double sr_lgcn_alpha(const sr_lgcn *g, int64_t k);

/* ---- float64 reference twin (lightgcn_ref.c) ------------------------------
 * The whole graph on one process, dense: builds the (num_users x num_items)
 * normalised matrix from the global CSR (indptr[0] = 0, num_users + 1
 * entries; degrees from its row and column sums) and propagates with naive
 * loops. eu/ei are num_users x d / num_items x d in global order. backward is
 * the reverse-mode recursion lambda_K = alpha_K g, lambda_k = alpha_k g +
 * A^T lambda_{k+1}, written with the explicit transpose (independent of the
 * forward's sum). Allocates num_users x num_items doubles plus a few
 * tables with malloc: for tests and small graphs only. */
sr_status sr_lgcn_ref_forward(int64_t num_users, int64_t num_items, const int64_t *indptr,
                              const int64_t *item_ids, int64_t layers, const double *alpha, int64_t d,
                              const double *eu, const double *ei, double *u_out, double *i_out,
                              sr_error *err);
sr_status sr_lgcn_ref_backward(int64_t num_users, int64_t num_items, const int64_t *indptr,
                               const int64_t *item_ids, int64_t layers, const double *alpha, int64_t d,
                               const double *du_out, const double *di_out, double *deu, double *dei,
                               sr_error *err);

/* LightGCN as a backbone (lightgcn_backbone.c). */
extern const struct sr_backbone_ops sr_backbone_lightgcn;

#endif
