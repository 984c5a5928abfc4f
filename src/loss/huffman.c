/* huffman.c: sort + two-queue merge (word2vec's CreateBinaryTree without
 * its fixed 40-level code arrays), then the node-id scatter, the parent
 * codes and the depth-first leaf positions. */
#include "loss/huffman.h"

#include <stdlib.h>
#include <string.h>

int64_t sr_huffman_weight(int64_t count) { return count > 0 ? count : 1; }

typedef struct wid_ {
    int64_t w, id;
} wid_;

/* Total order (weight, then id): the sort's result is unique, whatever
 * qsort's algorithm, which is what makes the tree deterministic. */
static int cmp_wid_(const void *a, const void *b)
{
    const wid_ *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int64_t gcd_(int64_t a, int64_t b)
{
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Multiplier of the id scatter: ~0.618 m (consecutive merges land far
 * apart, golden-ratio spacing) and coprime with m (a bijection). */
static int64_t scatter_mult_(int64_t m)
{
    int64_t a = (int64_t)(0.6180339887498949 * (double)m);
    if (a < 1) a = 1;
    while (gcd_(a, m) != 1) a++;
    return a;
}

void sr_huffman_destroy(sr_huffman *t)
{
    if (!t) return;
    sr_mem_free(t->mem, t->up);
    sr_mem_free(t->mem, t->leafpos);
    memset(t, 0, sizeof *t);
}

sr_status sr_huffman_build(sr_huffman *t, const int64_t *counts, int64_t n, sr_mem *mem,
                           sr_error *err)
{
    memset(t, 0, sizeof *t);
    t->mem = mem;
    if (n < 2 || n > SR_HUFFMAN_MAX_ITEMS)
        SR_FAIL(err, SR_ERR_CONFIG, "huffman tree: %lld items (need 2 .. 2^30)", (long long)n);
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (counts[i] < 0)
            SR_FAIL(err, SR_ERR_DATA, "huffman tree: item %lld has count %lld < 0", (long long)i,
                    (long long)counts[i]);
        int64_t w = sr_huffman_weight(counts[i]);
        if (w > INT64_MAX - total)
            SR_FAIL(err, SR_ERR_DATA, "huffman tree: the sum of the item counts overflows 64 bits");
        total += w;
    }
    const int64_t m = n - 1; /* inner nodes = merges */
    wid_ *lv = sr_mem_calloc(mem, (size_t)n, sizeof *lv, "huffman sorted leaves", err);
    int64_t *iw = sr_mem_calloc(mem, (size_t)m, sizeof *iw, "huffman merge weights", err);
    int32_t *ch = sr_mem_calloc(mem, (size_t)(2 * m), sizeof *ch, "huffman children", err);
    int32_t *aux = sr_mem_calloc(mem, (size_t)m, sizeof *aux, "huffman depth/size", err);
    int32_t *off = sr_mem_calloc(mem, (size_t)m, sizeof *off, "huffman offsets", err);
    t->up = sr_mem_calloc(mem, (size_t)(2 * n - 1), sizeof *t->up, "huffman parent codes", err);
    t->leafpos = sr_mem_calloc(mem, (size_t)n, sizeof *t->leafpos, "huffman leaf positions", err);
    sr_status st = SR_OK;
    if (!lv || !iw || !ch || !aux || !off || !t->up || !t->leafpos) {
        st = err ? err->code : SR_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) lv[i] = (wid_){sr_huffman_weight(counts[i]), i};
    qsort(lv, (size_t)n, sizeof *lv, cmp_wid_);

    /* Two queues: sorted leaves lv[li..n), merged nodes iw[ki..k) (created in
     * non-decreasing weight, so the queue stays sorted). Vertices in merge
     * space: leaf i is i, merge k is n + k. */
    int64_t li = 0, ki = 0;
    for (int64_t k = 0; k < m; k++) {
        int64_t w = 0;
        for (int c = 0; c < 2; c++) {
            if (li < n && (ki >= k || lv[li].w <= iw[ki])) {
                ch[2 * k + c] = (int32_t)lv[li].id;
                w += lv[li++].w;
            } else {
                ch[2 * k + c] = (int32_t)(n + ki);
                w += iw[ki++];
            }
        }
        iw[k] = w;
    }

    /* Merge k -> node id; parent codes of every vertex. */
    const int64_t a = scatter_mult_(m);
#define SR_HUFF_ID_(k) ((int64_t)(((uint64_t)(k) * (uint64_t)a) % (uint64_t)m))
#define SR_HUFF_SLOT_(v) ((v) < n ? (v) : n + SR_HUFF_ID_((v) - n))
    for (int64_t k = 0; k < m; k++)
        for (int c = 0; c < 2; c++)
            t->up[SR_HUFF_SLOT_(ch[2 * k + c])] = (int32_t)(2 * SR_HUFF_ID_(k) + c);
    t->root = SR_HUFF_ID_(m - 1);
    t->up[n + t->root] = -1;

    /* Depths top-down (parents are later merges): aux[k] = depth of merge k. */
    int maxd = 0;
    aux[m - 1] = 0;
    for (int64_t k = m - 1; k >= 0; k--)
        for (int c = 0; c < 2; c++) {
            int64_t v = ch[2 * k + c];
            if (v >= n) aux[v - n] = aux[k] + 1;
            else if (aux[k] + 1 > maxd) maxd = aux[k] + 1;
        }
    t->max_depth = maxd;

    /* Leaf counts bottom-up (aux reused), then depth-first offsets top-down. */
    for (int64_t k = 0; k < m; k++) {
        int32_t s = 0;
        for (int c = 0; c < 2; c++) s += ch[2 * k + c] >= n ? aux[ch[2 * k + c] - n] : 1;
        aux[k] = s;
    }
    off[m - 1] = 0;
    for (int64_t k = m - 1; k >= 0; k--) {
        int32_t o = off[k];
        for (int c = 0; c < 2; c++) {
            int64_t v = ch[2 * k + c];
            if (v >= n) {
                off[v - n] = o;
                o += aux[v - n];
            } else {
                t->leafpos[v] = o++;
            }
        }
    }
#undef SR_HUFF_SLOT_
#undef SR_HUFF_ID_
    t->n = n;
    t->total = total;
done:
    sr_mem_free(mem, lv);
    sr_mem_free(mem, iw);
    sr_mem_free(mem, ch);
    sr_mem_free(mem, aux);
    sr_mem_free(mem, off);
    if (st != SR_OK) sr_huffman_destroy(t);
    return st;
}

int sr_huffman_depth(const sr_huffman *t, int64_t item)
{
    int len = 0;
    for (int32_t code = t->up[item]; code >= 0; code = t->up[t->n + (code >> 1)]) len++;
    return len;
}

int sr_huffman_path(const sr_huffman *t, int64_t item, int64_t *nodes, int8_t *signs)
{
    int len = sr_huffman_depth(t, item);
    int64_t v = item;
    for (int k = len - 1; k >= 0; k--) {
        int32_t code = t->up[v];
        if (nodes) nodes[k] = code >> 1;
        if (signs) signs[k] = (int8_t)((code & 1) ? -1 : 1);
        v = t->n + (code >> 1);
    }
    return len;
}
