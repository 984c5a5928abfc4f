/* synth.h: planted synthetic datasets at scale ("softrec data synth",
 * src/cli/data_cmd.c, is the command).
 *
 * The generative model (docs/benchmarks.md "data synth" has measured costs):
 *  - Popularity: item j has weight (1 + rank_j)^-zipf, where rank is a random
 *    permutation of 0..N-1 (the popular items are spread over the id range).
 *  - Topics (the planted latent factors): item j belongs to one of T topics,
 *    chosen by a hash of (seed, j); topic t's mass is the sum of its items'
 *    weights. Within a topic items are drawn from an alias table of their
 *    weights: O(1) per draw, 12 bytes per item in all.
 *  - Users: user u draws `dim` topics by topic mass (with replacement; a
 *    repeat merges) and gives them Dirichlet(1) weights, so the expected
 *    weight of a topic over users is its mass share and the global item
 *    frequency stays Zipf (up to each user taking an item only once).
 *  - Interactions: user u gets n_u = 3 + Geometric(mean M/U - 3) distinct
 *    items (at most N). Each draw: with probability `noise` a topic by mass
 *    (pure popularity), else a topic from the user's mixture; then an item
 *    from that topic's alias table; duplicates are redrawn.
 *  - Split: per user, a random valid_ratio / test_ratio share of its items
 *    (at least one each when the ratio is > 0, always at least one train
 *    item); ids are sorted within each user's row of each split.
 * Every user draws from its own Philox stream (seed, user, SR_STREAM_SYNTH)
 * and the catalogue from (seed, 2^32 - 1, SR_STREAM_SYNTH), so the output
 * depends only on the parameters, not on the block size or rank count.
 *
 * Memory: O(N) for the catalogue (12 bytes/item: one alias slot holding the
 * acceptance probability, the item and its alias item; plus 12 bytes per item
 * of the largest topic while it is built) and O(block) for users; never the
 * whole interaction list.
 */
#ifndef SR_IO_SYNTH_H
#define SR_IO_SYNTH_H

#include <stdint.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- the generator (no MPI, no files) ------------------------------------ */

typedef struct sr_synth_params {
    int64_t users;        /* >= 1, < 2^32 - 1 */
    int64_t items;        /* >= 1, <= INT32_MAX */
    int64_t interactions; /* target total over all splits, >= 1 */
    int64_t dim;          /* topics mixed per user, 1 <= dim <= topics */
    int64_t topics;       /* >= 1 */
    double zipf;          /* popularity exponent, >= 0 */
    double noise;         /* share of draws by popularity alone, [0, 1] */
    double valid_ratio;   /* per-user shares, >= 0, sum < 1 */
    double test_ratio;
    uint64_t seed;
    int64_t block_users;  /* users generated (and written) per block, >= 1 */
} sr_synth_params;

/* The documented defaults (softrec data synth --help). */
void sr_synth_params_default(sr_synth_params *p);
/* One line naming the first bad value ("--items = 0 must be >= 1"). */
sr_status sr_synth_params_check(const sr_synth_params *p, sr_error *err);

/* The catalogue: item-topic map, popularity and alias tables. */
typedef struct sr_synth sr_synth;

/* Build the catalogue (O(N) time and memory, counted in mem, may be NULL).
 * On failure *out is NULL and nothing is left allocated. */
sr_status sr_synth_create(sr_synth **out, const sr_synth_params *p, sr_mem *mem, sr_error *err);
void sr_synth_destroy(sr_synth **s);

/* Planted structure, for tests and analysis. */
int64_t sr_synth_item_topic(const sr_synth *s, int64_t item);
int64_t sr_synth_item_rank(const sr_synth *s, int64_t item); /* 0 = most popular */
/* User u's distinct topics and their mixture weights (summing to 1), at most
 * dim entries each: returns the number written. */
int64_t sr_synth_user_topics(const sr_synth *s, int64_t user, int64_t *topics, double *weights);

/* One block of users as three CSR splits (the arrays the dataset writer's
 * append takes). indptr[s] has n_users + 1 entries from 0. */
typedef sr_status (*sr_synth_sink)(void *ctx, int64_t n_users, const int64_t *const indptr[3],
                                   const int64_t *const items[3], sr_error *err);

typedef struct sr_synth_stats {
    int64_t users;
    int64_t nnz[3]; /* train, valid, test */
    double seconds;
} sr_synth_stats;

/* Generate users [u0, u1) in blocks of p->block_users and hand each block to
 * sink. log (may be NULL) gets a progress line every progress_s seconds
 * (<= 0: none). Stops at the first sink error. */
sr_status sr_synth_generate(const sr_synth *s, int64_t u0, int64_t u1, sr_synth_sink sink, void *ctx,
                            const sr_log *log, double progress_s, sr_synth_stats *stats, sr_mem *mem,
                            sr_error *err);

#endif
