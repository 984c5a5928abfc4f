/* mf.h: the embedding tables every backbone starts from (a user table over
 * this rank's users, the sharded item table) and the MF backbone
 * (sr_backbone_mf): the query of user u is its embedding row; items are
 * scored by the dot product with the item table.
 *
 * Ownership: users [u0, u1) live on the rank that owns their training
 * examples; item rows follow the shard map. Initialisation draws row r of
 * a table from a Philox stream positioned by the row's *global* id, so the
 * model at step 0 is the same at any rank count and layout.
 */
#ifndef SR_MODELS_MF_H
#define SR_MODELS_MF_H

#include <stdint.h>

#include "comm/shard.h"
#include "core/config.h"
#include "core/error.h"
#include "core/mem.h"
#include "models/backbone.h"
#include "nn/optim.h"

typedef struct sr_mf {
    int64_t d;
    int64_t u0, u1;       /* local users: global ids [u0, u1) */
    int64_t n_items;      /* local item rows */
    float *user;          /* (u1 - u0) x d */
    float *item;          /* n_items x d, local row order of the shard map */
    sr_optim_state user_state, item_state;
} sr_mf;

/* The tables every backbone starts from, for what the trainer hands it
 * (this rank's users [u0, u1), the item shard, model.dim, init std, seed
 * and the optimiser's state), so each create passes its init along. */
sr_status sr_mf_create(sr_mf *m, const sr_backbone_init *in, sr_error *err);
void sr_mf_destroy(sr_mf *m, sr_mem *mem);

/* The model's tables (item, user) or their optimiser state's, in that order. */
void sr_mf_tables(sr_mf *m, const sr_shard *items, int64_t num_users, int64_t num_items, sr_table_kind kind,
                  sr_table_set *out);

/* Fill rows [0, n) of table (n x d) with N(0, std^2) drawn from the stream
 * (seed, table_id), row k taking the draws of global id gid(k). */
void sr_table_init_normal(float *table, int64_t n, int64_t d, double std, uint64_t seed,
                          uint32_t table_id, const sr_shard *map, int rank, int64_t first_global);

extern const sr_backbone_ops sr_backbone_mf;

#endif
