/* registry.h: the table of losses, one sr_loss_ops per loss.name value.
 *
 * A family implements the hooks in its own file and defines one ops value
 * per name (softmax_mpi.c, sampled.c, hsm.c, sparsemap.c); registry.c lists
 * them, once each. loss.c calls only through the ops, so the trainer never
 * knows which loss it holds, and config's loss.name choices and their help
 * come from the same list (sr_loss_choice, core/config.h).
 * Hooks follow loss.h (collective where the sr_loss_* call is). Optional
 * hooks are NULL when the loss has nothing to do there.
 */
#ifndef SR_LOSS_REGISTRY_H
#define SR_LOSS_REGISTRY_H

#include <stddef.h>

#include "loss/loss.h"

typedef struct sr_loss_ops sr_loss_ops;
struct sr_loss_ops {
    const char *name; /* loss.name */
    const char *help; /* one line for `softrec help config` */
    sr_loss_kind kind;
    /* Required. create leaves *state NULL on error; destroy accepts NULL. */
    sr_status (*create)(void **state, const sr_loss_ops *ops, const sr_loss_init *in, sr_error *err);
    void (*destroy)(void *state);
    sr_status (*step)(void *state, const float *q, int64_t b, const float *v,
                      const int64_t *targets, int64_t step, double *loss, float *dq,
                      sr_item_grad *dv, sr_error *err);
    /* Parameters of the loss's own (NULL: none): optimiser update after a
     * step, learning rate, the sharded table and its optimiser state. */
    void (*update_params)(void *state, int64_t step);
    void (*set_lr)(void *state, double lr);
    float *(*params)(void *state, const sr_shard **map, int64_t *n_local);
    sr_optim_state *(*param_state)(void *state);
    /* Scores that are not dot products q . v (NULL: dot products). */
    sr_status (*eval_prepare)(void *state, sr_error *err);
    void (*eval_scores)(void *state, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                        float *out);
};

/* The families' ops (defined in their files, listed in registry.c). */
extern const sr_loss_ops sr_softmax_ops;
extern const sr_loss_ops sr_ssm_ops, sr_nce_ops, sr_bpr_ops;
extern const sr_loss_ops sr_hsm_ops;
extern const sr_loss_ops sr_sparsemax_ops, sr_entmax_ops, sr_rankmax_ops;

/* The i-th registered loss, NULL past the last. */
const sr_loss_ops *sr_loss_ops_at(size_t i);
/* The loss named name (a loss.name value), NULL if none. */
const sr_loss_ops *sr_loss_ops_find(const char *name);

#endif
