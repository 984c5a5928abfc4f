/* topk_heap.h: the ordering and the size-k heap of the top-K kernels
 * (eval_kernels.c's SGEMM scan and merge, eval_fused.c's register kernel),
 * shared so both keep exactly one tie rule. Internal header, static inline.
 *
 * Order: a ranks before b when its score is higher, or equal with the
 * smaller id. A heap of capacity k is a min-heap on that order (the root is
 * the entry every other one beats), so an offer compares with the root only.
 */
#ifndef SR_TRAIN_TOPK_HEAP_H
#define SR_TRAIN_TOPK_HEAP_H

#include <math.h>
#include <stdint.h>

/* a ranks before b: higher score, then smaller id. */
static inline int sr_topk_better(float sa, int64_t ia, float sb, int64_t ib)
{
    return sa > sb || (sa == sb && ia < ib);
}

static inline void sr_topk_sift_down(float *hs, int64_t *hid, int64_t len, int64_t pos)
{
    float s = hs[pos];
    int64_t id = hid[pos];
    for (;;) {
        int64_t c = 2 * pos + 1;
        if (c >= len) break;
        if (c + 1 < len && sr_topk_better(hs[c], hid[c], hs[c + 1], hid[c + 1])) c++; /* the worse child */
        if (!sr_topk_better(s, id, hs[c], hid[c])) break;
        hs[pos] = hs[c];
        hid[pos] = hid[c];
        pos = c;
    }
    hs[pos] = s;
    hid[pos] = id;
}

static inline void sr_topk_push(float *hs, int64_t *hid, int64_t *len, float s, int64_t id)
{
    int64_t pos = (*len)++;
    while (pos > 0) {
        int64_t par = (pos - 1) / 2;
        if (!sr_topk_better(hs[par], hid[par], s, id)) break; /* parent already worse */
        hs[pos] = hs[par];
        hid[pos] = hid[par];
        pos = par;
    }
    hs[pos] = s;
    hid[pos] = id;
}

/* Offer (s, id) to a heap of capacity k; returns the new admission threshold
 * (the root's score when full, -inf otherwise). */
static inline float sr_topk_offer(float *hs, int64_t *hid, int64_t *len, int64_t k, float s, int64_t id)
{
    if (*len < k) {
        sr_topk_push(hs, hid, len, s, id);
    } else if (sr_topk_better(s, id, hs[0], hid[0])) {
        hs[0] = s;
        hid[0] = id;
        sr_topk_sift_down(hs, hid, *len, 0);
    }
    return *len < k ? -INFINITY : hs[0];
}

/* Empty the heap into out (best first) and pad to k with (-inf, -1). */
static inline void sr_topk_drain(float *hs, int64_t *hid, int64_t len, int64_t k, float *out_s, int64_t *out_id)
{
    for (int64_t j = len; j < k; j++) {
        out_s[j] = -INFINITY;
        out_id[j] = -1;
    }
    while (len > 0) {
        out_s[len - 1] = hs[0];
        out_id[len - 1] = hid[0];
        len--;
        hs[0] = hs[len];
        hid[0] = hid[len];
        sr_topk_sift_down(hs, hid, len, 0);
    }
}

#endif
