/* scores.h: how a query and an item row make a score, in one place.
 * model.temperature tau = 0: the dot product q . v, rows pass unchanged.
 * tau > 0: cos(q, v) / tau; item rows are normalised into the scorer's own
 * buffer, queries in place (scaled by 1/tau for the loss, by 1 for ranking,
 * where tau does not change the order), and the loss's gradients are pulled
 * back through both maps (normalize.h). Local; no communication.
 */
#ifndef SR_TRAIN_SCORES_H
#define SR_TRAIN_SCORES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/mem.h"
#include "loss/loss.h"

typedef struct sr_scores {
    float tau;                /* 0: dot product */
    int64_t n_items, d, q_max;
    float *vn, *vinv, *qinv;  /* normalised item rows, 1/|v|, 1/|q| (q_max rows) */
    sr_mem *mem;
} sr_scores;

/* Buffers for n_items local rows and up to q_max queries at once (none when
 * tau == 0); SR_ERR_NOMEM on failure. */
sr_status sr_scores_init(sr_scores *s, double tau, int64_t n_items, int64_t d, int64_t q_max, sr_mem *mem,
                         sr_error *err);
void sr_scores_free(sr_scores *s);

/* The item rows scores are computed from: rows itself, or their normalised
 * copy (valid until the next call). */
const float *sr_scores_items(sr_scores *s, const float *rows);
/* In place, n <= q_max rows: scaled as the loss sees them (for_loss) or for
 * ranking. */
void sr_scores_queries(sr_scores *s, float *q, int64_t n, bool for_loss);
/* The chain rule after a loss step on sr_scores_items' rows and queries q
 * (for_loss): dv and dq (n x d) become gradients of the raw rows. */
void sr_scores_backward(sr_scores *s, sr_item_grad *dv, const float *q, float *dq, int64_t n);

#endif
