/* blocks.c: query blocks and threads of the tiled kernels (blocks.h). */
#include "core/blocks.h"

#include <cblas.h>

#define SR_BLOCK_BYTES ((int64_t)2 << 20)

int64_t sr_blocks_queries(int64_t b_max, int64_t tile)
{
    int64_t qb = SR_BLOCK_BYTES / ((int64_t)sizeof(float) * tile);
    qb = qb < 16 ? 16 : qb / 16 * 16;
    return qb < b_max ? qb : b_max;
}

int sr_blocks_threads(int64_t b_max, int64_t qb)
{
#ifdef _OPENMP
    int64_t t = openblas_get_num_threads(), blocks = (b_max + qb - 1) / qb;
    t = t < blocks ? t : blocks;
    return t > 1 ? (int)t : 1;
#else
    (void)b_max;
    (void)qb;
    return 1;
#endif
}
