/* reorder.h: graph-partitioning renumbering of a dataset ("softrec data reorder").
 *
 * Why. LightGCN shards users and items in contiguous id blocks; with ids
 * that carry no locality every rank's edges touch almost every item, so the
 * halo is nearly the whole table. Renumbering once, so that each block holds
 * a community of users and the items they use, makes most edges rank-local.
 *
 * What. The bipartite graph of the TRAIN interactions (U + N vertices, one
 * edge per distinct user-item pair, weighted by its multiplicity) is cut into
 * P parts by METIS recursive bisection with two balance constraints (one
 * counts users, one counts items), so every part gets ~U/P users and ~N/P
 * items. Users are then renumbered in (part, old id) order and items too;
 * the contiguous balanced blocks at P ranks (first U % P blocks one row
 * longer, as sr_dataset_user_range and sr_shard_init_block cut them) line up
 * with the parts; where METIS left a part a few vertices over or under its
 * block, those vertices spill into the neighbouring block. Recursive
 * bisection numbers parts along its tree, so parts 2q and 2q+1 are the two
 * halves of one part of the P/2 cut: a renumbering made for P = 2^k also
 * gives locality at P/2, P/4, ... ranks. For P not a power of two (P = 3)
 * the parts still line up at P ranks, but blocks at other rank counts cut
 * through parts (P = 3 gives nothing at 2 ranks).
 *
 * Output. The same schema as the input (every split, time, id maps and
 * popularity permuted consistently; row order inside a user kept), plus
 *   /map/user_orig_id int64 [U]: the input file's id of each new user id
 *   /map/item_orig_id int64 [N]: the same for items
 * (a permutation each; reordering a reordered file composes them, so they
 * always name the ids of the file before any reordering), and /user_ids,
 * /item_ids (int64) and /map/user_ids, /map/item_ids (strings) permuted
 * with the users and items so they still give the raw ids. The /map group carries
 * attributes parts, seed, method. Written to a temporary file renamed into
 * place; nothing is left on error.
 *
 * Serial: sr_reorder_run runs in one process (the CLI runs it on rank 0).
 */
#ifndef SR_IO_REORDER_H
#define SR_IO_REORDER_H

#include <stdint.h>

#include "core/error.h"

#define SR_REORDER_LEVELS 8 /* rank counts reported: P, P/2, ... (at most) */

typedef struct sr_reorder_opts {
    const char *input;  /* required: a softrec dataset */
    const char *output; /* required */
    int64_t parts;      /* >= 1 and <= num_users */
    uint64_t seed;      /* METIS seed (default 0) */
    int overwrite;      /* replace an existing output */
} sr_reorder_opts;

typedef struct sr_reorder_report {
    int64_t num_users, num_items, nnz[3];
    int64_t cut;                  /* train pairs whose ends METIS put in different parts */
    int64_t spilled_users, spilled_items; /* renumbered into a block other than their part's */
    int levels;                   /* entries below */
    int64_t ranks[SR_REORDER_LEVELS];      /* P, P/2, ... down to 2 */
    int64_t halo_before[SR_REORDER_LEVELS]; /* remote halo rows summed over ranks, input ids */
    int64_t halo_after[SR_REORDER_LEVELS];  /* the same, new ids */
    double seconds_partition;
} sr_reorder_report;

/* Partition the bipartite graph (users 0..U-1, items 0..N-1, CSR rows of
 * users; duplicate pairs merge into one edge of weight = multiplicity) into
 * parts by METIS recursive bisection, ncon = 2. upart[U], ipart[N] get part
 * numbers; *cut the weight of cut edges. parts = 1 puts everything in part 0.
 * SR_ERR_USAGE if parts < 1 or parts > U; SR_ERR_INTERNAL on a METIS error. */
sr_status sr_reorder_partition(int64_t U, int64_t N, const int64_t *indptr, const int64_t *items, int64_t parts,
                               uint64_t seed, int64_t *upart, int64_t *ipart, int64_t *cut, sr_error *err);

/* New ids in (part, old id) order: new_id[old] (a permutation of 0..n-1).
 * Returns how many vertices land outside their part's balanced block. */
int64_t sr_reorder_renumber(int64_t n, int64_t parts, const int64_t *part, int64_t *new_id);

/* The LightGCN halo of balanced contiguous blocks at p ranks: the number of
 * (rank, item) pairs where the rank's users have an edge to an item another
 * rank owns, summed over ranks. Under ids uid[old user], iid[old item]
 * (NULL = identity). rank_rows (p entries, may be NULL) gets per rank the
 * rows it serves to others plus the rows it pushes: x d x 4 bytes is
 * sr_lgcn_round_bytes. The sum over ranks of round bytes is 2 x halo x d x 4. */
int64_t sr_reorder_halo(int64_t U, int64_t N, const int64_t *indptr, const int64_t *items, const int64_t *uid,
                        const int64_t *iid, int p, int64_t *rank_rows);

/* The whole command in this process. rep may be NULL. */
sr_status sr_reorder_run(const sr_reorder_opts *o, sr_reorder_report *rep, sr_error *err);

#endif
