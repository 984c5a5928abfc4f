/* loss.h: every loss of the family behind one interface; which loss is
 * chosen by loss.name through the registry (registry.h), and the caller
 * never knows which it holds.
 *
 * Inputs of a step: the global batch of queries Q (b x d, the same on every
 * rank), its b global target ids, this rank's item shard V_r (n_local x d).
 * Outputs: the global mean loss (bit-identical on every rank); dq, this
 * rank's partial dL/dQ (the caller reduce-scatters it); dv = dL/dV_r, local,
 * dense or row-sparse (nn/item_grad.h). A loss with parameters of its own
 * (hsm) updates them in sr_loss_update_params. Sampling losses draw from
 * Philox streams keyed by (train.seed, rank) positioned by the global step,
 * so a run and its resume are bit-reproducible. Collective over c: create,
 * step, eval_prepare; errors are agreed on every rank (or abort the job when
 * one rank alone fails). The objectives are derived in docs/losses.md.
 */
#ifndef SR_LOSS_LOSS_H
#define SR_LOSS_LOSS_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/error.h"
#include "core/mem.h"
#include "nn/item_grad.h"
#include "nn/optim.h"

typedef enum sr_loss_kind {
    SR_LOSS_SOFTMAX = 0,
    SR_LOSS_SSM,
    SR_LOSS_NCE,
    SR_LOSS_BPR,
    SR_LOSS_HSM,
    SR_LOSS_SPARSEMAX,
    SR_LOSS_ENTMAX,
    SR_LOSS_RANKMAX
} sr_loss_kind;

/* From a loss.name value; false if unknown (both through the registry). */
bool sr_loss_kind_parse(const char *name, sr_loss_kind *out);
const char *sr_loss_kind_name(sr_loss_kind k);


/* What a loss needs at creation. Pointers are borrowed and must outlive the
 * loss (popularity may be freed after create). */
typedef struct sr_loss_init {
    const sr_comm *c;
    const sr_config *cfg;        /* loss.* keys, train.seed, model.dim, ... */
    const sr_shard *items;       /* item shard map, items->p == c->size */
    const int64_t *popularity;   /* train count of every item, global id order (items->n) */
    const sr_optim *opt;         /* for parameters the loss owns (hsm) */
    int64_t b_max;               /* largest b any step will pass */
    int64_t d;
    sr_mem *mem;                 /* counts every buffer the loss allocates */
} sr_loss_init;

typedef struct sr_loss sr_loss;

sr_status sr_loss_create(sr_loss **out, const sr_loss_init *in, sr_error *err);
void sr_loss_destroy(sr_loss **l);
sr_loss_kind sr_loss_get_kind(const sr_loss *l);
/* Its loss.name value. */
const char *sr_loss_name(const sr_loss *l);

/* One forward + backward. q, b, targets identical on every rank; v is this
 * rank's n_local rows; step >= 1 is the global optimiser step (positions the
 * sampler streams). loss may be NULL. */
sr_status sr_loss_step(sr_loss *l, const float *q, int64_t b, const float *v,
                       const int64_t *targets, int64_t step, double *loss, float *dq,
                       sr_item_grad *dv, sr_error *err);

/* Apply the optimiser to the loss's own parameters after a step (no-op for
 * losses without any). */
void sr_loss_update_params(sr_loss *l, int64_t step);

/* Learning rate of the loss's own parameters from now on (no-op without). */
void sr_loss_set_lr(sr_loss *l, double lr);

/* The loss's own sharded table for checkpoints (hsm inner nodes): local rows
 * and their map; NULL when the loss has none. */
float *sr_loss_params(sr_loss *l, const sr_shard **map, int64_t *n_local);
/* The optimiser state of that table (NULL when the loss has none). */
sr_optim_state *sr_loss_param_state(sr_loss *l);

/* Full ranking: true when an item's score is the dot product q . v (every
 * loss but hsm, whose score is the tree log-probability). */
bool sr_loss_scores_by_dot(const sr_loss *l);

/* For losses whose scores are not dot products: collective preparation once
 * per evaluation (hsm fetches the inner nodes on its items' paths). */
sr_status sr_loss_eval_prepare(sr_loss *l, sr_error *err);

/* Scores of local items [j0, j1) for b queries into out (b x (j1 - j0),
 * row-major). Local, after sr_loss_eval_prepare. */
void sr_loss_eval_scores(void *loss, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                         float *out);

#endif
