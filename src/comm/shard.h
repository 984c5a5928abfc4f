/* shard.h: the map from N global ids (items) to P ranks.
 *
 * Two layouts. BLOCK: rank r owns the contiguous range [start[r], start[r+1]);
 * sizes differ by at most one when balanced, any sizes (including 0) when the
 * caller gives them. INTERLEAVE: id i lives on rank i % P at local row i / P,
 * so a popularity-sorted catalogue spreads its head over all ranks.
 * Pure arithmetic, no MPI: every rank builds the same map from (N, P).
 */
#ifndef SR_COMM_SHARD_H
#define SR_COMM_SHARD_H

#include <stdint.h>

#include "core/error.h"

typedef enum sr_shard_layout { SR_SHARD_BLOCK = 0, SR_SHARD_INTERLEAVE = 1 } sr_shard_layout;

typedef struct sr_shard {
    int64_t n;              /* global ids */
    int p;                  /* ranks */
    sr_shard_layout layout;
    int64_t *start;         /* BLOCK: p + 1 offsets; NULL for INTERLEAVE */
} sr_shard;

/* Balanced blocks (counts == NULL) or blocks of the given sizes (p values
 * summing to n, zeros allowed). */
sr_status sr_shard_init_block(sr_shard *s, int64_t n, int p, const int64_t *counts, sr_error *err);
sr_status sr_shard_init_interleave(sr_shard *s, int64_t n, int p, sr_error *err);
/* From the config name "block" / "interleave". */
sr_status sr_shard_init_named(sr_shard *s, const char *layout, int64_t n, int p, sr_error *err);
void sr_shard_destroy(sr_shard *s);

int sr_shard_owner(const sr_shard *s, int64_t id);
int64_t sr_shard_local(const sr_shard *s, int64_t id);            /* row on its owner */
int64_t sr_shard_global(const sr_shard *s, int rank, int64_t row); /* inverse */
int64_t sr_shard_count(const sr_shard *s, int rank);               /* rows on rank */

#endif
