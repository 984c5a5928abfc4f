/* item_grad.h: the item-table gradient a loss hands to the backbone.
 *
 * dL/dV_r of one step on one rank. rows == NULL: dense, rows 0..n-1 (n ==
 * n_local); otherwise n distinct local row ids, gradient row i belongs to
 * rows[i]. The buffers belong to whoever filled it (a loss, seqembed) and
 * stay valid until its next step. Plain data: no functions, no allocation.
 */
#ifndef SR_NN_ITEM_GRAD_H
#define SR_NN_ITEM_GRAD_H

#include <stdint.h>

typedef struct sr_item_grad {
    int64_t n;
    const int64_t *rows;
    float *g; /* n x d */
} sr_item_grad;

#endif
