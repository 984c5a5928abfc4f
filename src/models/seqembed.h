/* seqembed.h: the input side of a sequence backbone over the sharded item
 * table: look up the rows of a batch of item sequences from their owner
 * ranks, and send the rows' gradients back to the owners.
 *
 * Contract
 *  - Positions carry global item ids, -1 for padding. Each lookup plans one
 *    sr_exchange for the batch's non-padding ids (duplicates travel once) and
 *    fetches their rows; padding positions get zero rows. The plan is kept
 *    for the push of the same batch (the next lookup replaces it).
 *  - The push sends the gradient rows of the lookup's positions (padding
 *    rows are ignored) to their owners, which sum them per local row:
 *      sr_seqembed_push        row-sparse: the distinct local rows touched
 *                              (ascending) and their summed gradient, with an
 *                              optional row-sparse gradient of the same table
 *                              (the loss's) merged in, so the trainer updates
 *                              the table once;
 *      sr_seqembed_push_dense  adds into a dense n_local x d gradient (the
 *                              exact softmax's dV, or the table itself).
 *  - Summation order is fixed (duplicates in position order on the
 *    requester, requesters in rank order on the owner, the merged gradient
 *    last), so a push is bit-reproducible at a given rank count; across
 *    rank counts results agree to float rounding.
 *  - Bytes: the exchange counts what it sends to other ranks in the comm's
 *    stats (sr_comm_count); sr_seqembed_bytes_sent gives the last
 *    lookup + push.
 *  - Memory: position buffers grow to the largest batch; the row-sparse push
 *    keeps an n_local x (d + 1) accumulator (allocated at its first use,
 *    zero between pushes: only touched rows are cleared): sr_exchange adds
 *    into a table indexed by local row and does not expose which rows it
 *    served, so the extra column counts contributions to find them (one
 *    O(n_local) scan a push).
 *  - Collective: lookup and push are collective over c (every rank calls
 *    them, with its own batch, possibly empty). Id errors (outside [-1, n))
 *    are agreed across ranks inside the exchange plan.
 */
#ifndef SR_MODELS_SEQEMBED_H
#define SR_MODELS_SEQEMBED_H

#include <stdint.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"
#include "nn/item_grad.h"

typedef struct sr_seqembed sr_seqembed;

/* c and items are borrowed and must outlive the lookup helper; d is the row
 * width. Local. */
sr_status sr_seqembed_create(sr_seqembed **out, const sr_comm *c, const sr_shard *items, int64_t d,
                             sr_mem *mem, sr_error *err);
void sr_seqembed_destroy(sr_seqembed **s);

/* Collective. ids: n positions (global ids, -1 = padding); local_table: this
 * rank's rows (sr_shard_count x d). Writes x (n x d). */
sr_status sr_seqembed_lookup(sr_seqembed *s, const int64_t *ids, int64_t n, const float *local_table,
                             float *x, sr_error *err);

/* Collective. dx: n x d gradient for the last lookup's positions. out gets
 * the distinct local rows touched by any rank's batch or by also (NULL or a
 * row-sparse gradient with distinct rows; dense is refused), ascending, and
 * their summed gradient; its buffers belong to s and stay valid until the
 * next push or destroy. */
sr_status sr_seqembed_push(sr_seqembed *s, const float *dx, const sr_item_grad *also,
                           sr_item_grad *out, sr_error *err);

/* Collective. dense (n_local x d) += the gradient of this rank's rows. */
sr_status sr_seqembed_push_dense(sr_seqembed *s, const float *dx, float *dense, sr_error *err);

/* Bytes this rank sent to other ranks in the last lookup and push. */
int64_t sr_seqembed_bytes_sent(const sr_seqembed *s);

#endif
