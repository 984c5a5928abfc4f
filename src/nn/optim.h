/* optim.h: SGD, Adam and Adagrad over embedding tables, dense or row-sparse.
 *
 * A table is rows x d float32, row-major. Its optimiser state (Adam m and v,
 * Adagrad's accumulated g^2) lives in an sr_optim_state of the same shape,
 * created by sr_optim_state_create and freed by sr_optim_state_destroy.
 * Updates take the gradient of the rows given (rows == NULL: all rows in
 * order, i.e. a dense update) and touch only those rows, so a step that used
 * k rows costs O(k d) whatever the table size. Weight decay is L2 on the rows
 * updated (g += wd * w), applied before the optimiser (classic L2, not AdamW).
 * Adam on row-sparse updates is "lazy Adam": moments of untouched rows do not
 * decay; bias correction uses the global step t (1-based).
 * Pure kernels: no MPI, no allocation in the update path.
 */
#ifndef SR_NN_OPTIM_H
#define SR_NN_OPTIM_H

#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/mem.h"

typedef enum sr_optim_kind { SR_OPTIM_SGD = 0, SR_OPTIM_ADAM = 1, SR_OPTIM_ADAGRAD = 2 } sr_optim_kind;

typedef struct sr_optim {
    sr_optim_kind kind;
    double lr, beta1, beta2, eps, weight_decay;
} sr_optim;

typedef struct sr_optim_state {
    int64_t rows, d;
    float *m; /* Adam first moment; Adagrad sum of g^2; NULL for SGD */
    float *v; /* Adam second moment; NULL otherwise */
} sr_optim_state;

/* From optim.name, train.lr, optim.*. */
sr_status sr_optim_from_config(sr_optim *o, const sr_config *cfg, sr_error *err);

/* Step decay of the learning rate (PyTorch's MultiStepLR, by epochs): the
 * update after `step - 1` completed steps uses lr x gamma^m, m = the number
 * of milestones e with step - 1 >= e x steps_per_epoch. A function of the
 * global step alone, so a resumed run follows the same schedule. */
#define SR_LR_MILESTONES_MAX 32
typedef struct sr_lr_schedule {
    double lr, gamma;
    int n;
    int64_t epoch[SR_LR_MILESTONES_MAX];
} sr_lr_schedule;

/* From train.lr, train.lr_milestones, train.lr_gamma; SR_ERR_CONFIG naming
 * the key unless the milestones are strictly ascending positive integers. */
sr_status sr_lr_schedule_from_config(sr_lr_schedule *s, const sr_config *cfg, sr_error *err);

/* Learning rate of update `step` (1-based global step). */
double sr_lr_at(const sr_lr_schedule *s, int64_t step, int64_t steps_per_epoch);

sr_status sr_optim_state_create(sr_optim_state *s, const sr_optim *o, int64_t rows, int64_t d,
                                sr_mem *mem, sr_error *err);
void sr_optim_state_destroy(sr_optim_state *s, sr_mem *mem);

/* Update n rows of W (rows[k] indexes W and the state; rows == NULL means rows
 * 0..n-1) with gradients G (n x d, G row k belongs to rows[k]). t >= 1 is the
 * global step. Row indices must be distinct. */
void sr_optim_update(const sr_optim *o, sr_optim_state *s, float *W, const float *G,
                     const int64_t *rows, int64_t n, int64_t d, int64_t t);

#endif
