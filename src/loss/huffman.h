/* huffman.h: the Huffman tree of hierarchical softmax (hsm.h) over N items.
 *
 * Contract
 *  - Built from the train count of every item, global id order. A count of 0
 *    gets the floor weight 1 (sr_huffman_weight), so every item has a leaf
 *    and a probability > 0; negative counts are SR_ERR_DATA. N >= 2 and
 *    N <= 2^30 (ids and codes are stored in 32 bits), else SR_ERR_CONFIG.
 *  - Linear time after one sort: leaves sorted by (weight, id), then the
 *    two-queue merge (word2vec): the two lightest fronts of the leaf queue
 *    and the queue of merged nodes (created in non-decreasing weight) become
 *    the children of a new inner node; on equal weights the leaf goes first.
 *    Integer weights, a total order for the sort and a fixed tie rule make
 *    the tree a pure function of the counts: the same on every rank and at
 *    every rank count. The first child taken is child 0, the second child 1.
 *  - Node ids. The k-th merge (k = 0 .. N-2; the root is merge N-2) becomes
 *    inner node id (k * a) mod (N-1), a fixed a ~ 0.618 (N-1) coprime with
 *    N-1. The scatter does not depend on the rank count; it spreads the heavy
 *    nodes near the root (the late merges) over the whole id range, so a
 *    block shard map over node ids gives every rank a similar share of the
 *    path terms of a batch instead of one rank owning the top of every path.
 *  - Paths. Item i's probability under query q is the product over its
 *    root-to-leaf path of sigmoid(s_k q . w_{n_k}), with s_k = +1 when the
 *    path takes child 0 at node n_k and -1 for child 1.
 *  - Memory: O(N), replicated: up (2N - 1 int32) and leafpos (N int32),
 *    12 bytes per item (12 MB at N = 1M); no per-item path lists (a path is
 *    walked through `up` in at most max_depth steps). Build scratch O(N).
 * Pure: no MPI, no globals; allocations through sr_mem.
 */
#ifndef SR_LOSS_HUFFMAN_H
#define SR_LOSS_HUFFMAN_H

#include <stdint.h>

#include "core/error.h"
#include "core/mem.h"

/* Largest catalogue the 32-bit codes hold. */
#define SR_HUFFMAN_MAX_ITEMS ((int64_t)1 << 30)

typedef struct sr_huffman {
    int64_t n;        /* leaves (items); n - 1 inner nodes */
    int64_t root;     /* inner node id of the root */
    int max_depth;    /* longest path (code length), >= 1 */
    int64_t total;    /* sum of the leaf weights */
    /* up[v]: v < n is leaf (item) v, v = n + u is inner node u. Value
     * 2 * parent + bit (bit: which child of the parent v is), -1 at the root. */
    int32_t *up;
    int32_t *leafpos; /* n: position of each leaf in depth-first (child 0 first) order */
    sr_mem *mem;
} sr_huffman;

/* The weight of an item with train count `count` (>= 0): max(count, 1). */
int64_t sr_huffman_weight(int64_t count);

/* Build the tree of counts[0..n). On failure *t is zeroed (destroy is safe). */
sr_status sr_huffman_build(sr_huffman *t, const int64_t *counts, int64_t n, sr_mem *mem,
                           sr_error *err);
/* Free; *t is zeroed (a zeroed tree is a no-op). */
void sr_huffman_destroy(sr_huffman *t);

/* Root-to-leaf path of item (0 <= item < n): nodes[0] is the root,
 * nodes[len - 1] the leaf's parent; signs[k] = +1 (child 0) or -1 (child 1)
 * as above. Either array may be NULL; both need max_depth entries. Returns
 * len (1 <= len <= max_depth). */
int sr_huffman_path(const sr_huffman *t, int64_t item, int64_t *nodes, int8_t *signs);

/* Code length (depth) of item. */
int sr_huffman_depth(const sr_huffman *t, int64_t item);

#endif
