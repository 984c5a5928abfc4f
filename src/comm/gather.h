/* gather.h: all-gather of variable-length int64 id lists (targets of a
 * global batch, exclusion lists of eval queries). Collective over c. */
#ifndef SR_COMM_GATHER_H
#define SR_COMM_GATHER_H

#include <stdint.h>

#include "comm/comm.h"

/* Rank r contributes counts[r] ids (counts identical on every rank); recv
 * receives all of them in rank order (sum(counts) entries). */
sr_status sr_comm_allgather_ids(const sr_comm *c, const int64_t *send, const int64_t *counts,
                                int64_t *recv, sr_error *err);

#endif
