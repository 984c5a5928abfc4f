/* blocks.h: how the tiled kernels (exact softmax, full-ranking top-K) cut
 * their queries into blocks and how many threads share them.
 *
 * A block of qb queries x one tile of items is about 2 MiB of float scores,
 * so the SGEMM that writes it and the pass that reads it meet in cache
 * (measurements in softmax.c). With OpenMP, each of T threads takes its own
 * blocks and calls single-threaded SGEMM; T is OpenBLAS's thread count (what
 * the rank was given: OPENBLAS_NUM_THREADS, else its affinity mask), at most
 * one per block, and 1 without OpenMP.
 */
#ifndef SR_CORE_BLOCKS_H
#define SR_CORE_BLOCKS_H

#include <stdint.h>

/* Queries per block for tiles of `tile` items: a multiple of 16, >= 16,
 * at most b_max. */
int64_t sr_blocks_queries(int64_t b_max, int64_t tile);

/* Threads that share the blocks of b_max queries in blocks of qb. */
int sr_blocks_threads(int64_t b_max, int64_t qb);

#endif
