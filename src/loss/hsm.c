/* hsm.c: hierarchical softmax: the path-term kernel, the collective step,
 * the row-sparse update and the chunked full-ranking scorer.
 *
 * Step: per (query, owned path node) one sdot and two saxpys (d floats);
 * that is b x depth x d / P flops per rank, tiny next to the all-reduce and
 * the caller's reduce-scatter, so no GEMM is needed there (the pairs are
 * sparse: a GEMM over the distinct nodes would compute mostly unused dots).
 * Scorer: see hsm.h; per chunk gather -> SGEMM -> vector exp -> prefix pass.
 */
#include "loss/hsm.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "loss/registry.h"
#include "nn/vexp.h"

/* Scorer workspace: nodes per chunk, queries per block. 16384 x 32 floats
 * (2 MiB) per logit block stay in L2/L3 between the SGEMM and the passes. */
#define SR_HSM_CHUNK_NODES 16384
#define SR_HSM_QBLOCK 32

typedef struct hsm_eval_ {
    int ready;
    int64_t u;          /* distinct nodes on the paths of the local items */
    int64_t n_items;    /* local items */
    /* Columns in preorder: local items in depth-first leaf order, each
     * item's new path nodes root side first. A chunk of consecutive leaves
     * then reads a nearly contiguous block of rows. */
    float *rows;        /* u x d: fetched node rows */
    int32_t *ncode;     /* u: 2 * parent column + bit, -1 at the root */
    int32_t *lcode;     /* n_items: 2 * parent column + bit of each local item */
    /* Chunks of the last range (cached: callers score one range for many
     * query blocks). Chunk c: nodes [cu[c], cu[c + 1]) of src/pc, leaves
     * [cm[c], cm[c + 1]) of lp/oc; nodes parents first. */
    int64_t o_j0, o_j1; /* that range (o_j0 < 0: none) */
    int64_t ucap;       /* nodes per chunk */
    int64_t cap_u, cap_c, n_chunks;
    uint64_t *order;    /* n_items: leaf position << 32 | offset in the range */
    int64_t *cu, *cm;   /* cap_c + 1 */
    int32_t *loc;       /* u: index of a column in the chunk being built, -1 */
    int32_t *src;       /* cap_u: column of each chunk node */
    int32_t *pc;        /* cap_u: 2 * chunk index of the parent + bit, -1 at the root */
    int32_t *stack;     /* max_depth */
    int32_t *lp;        /* n_items: 2 * chunk index of the leaf's parent + bit */
    int32_t *oc;        /* n_items: output column of the leaf */
    float *wg;          /* ucap x d: gathered rows */
    float *z, *a;       /* ucap x qb: logits, then prefix terms (node-major) */
    float *tb;          /* n_items x qb: leaf scores of a query block, item-major */
    void *leaf_bufs;    /* one block: order, lcode, stack */
    void *chunk_bufs;   /* one block: cu, cm, src, pc, lp, oc, rows, wg, z, a, tb */
} hsm_eval_;

struct sr_hsm {
    const sr_comm *c;
    const sr_shard *items; /* borrowed */
    sr_mem *mem;
    int64_t d, b_max;
    sr_huffman tree;
    sr_shard nodes;        /* block map of the n - 1 inner nodes */
    int64_t n_local;
    float *w;              /* n_local x d */
    sr_optim opt;
    sr_optim_state st;
    sr_hsm_grad grad;
    double *part;          /* b_max partial losses */
    hsm_eval_ ev;
};

/* ---- kernels ---------------------------------------------------------- */

static double log_sigmoid_(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

sr_status sr_hsm_grad_create(sr_hsm_grad *g, int64_t cap, int64_t n_rows, int64_t d, sr_mem *mem,
                             sr_error *err)
{
    memset(g, 0, sizeof *g);
    g->cap = cap;
    g->d = d;
    g->rows = sr_mem_calloc(mem, (size_t)cap, sizeof *g->rows, "hsm touched nodes", err);
    g->g = sr_mem_calloc(mem, (size_t)cap, (size_t)d * sizeof(float), "hsm node gradients", err);
    g->slot = sr_mem_calloc(mem, (size_t)n_rows, sizeof *g->slot, "hsm node slots", err);
    if (!g->rows || !g->g || !g->slot) {
        sr_hsm_grad_destroy(g, mem);
        return err ? err->code : SR_ERR_NOMEM;
    }
    for (int64_t r = 0; r < n_rows; r++) g->slot[r] = -1;
    return SR_OK;
}

void sr_hsm_grad_destroy(sr_hsm_grad *g, sr_mem *mem)
{
    sr_mem_free(mem, g->rows);
    sr_mem_free(mem, g->g);
    sr_mem_free(mem, g->slot);
    memset(g, 0, sizeof *g);
}

void sr_hsm_local_terms(const sr_huffman *t, const sr_shard *nodes, int rank, const float *w,
                        int64_t d, const float *q, int64_t b, const int64_t *targets, double *part,
                        float *dq, sr_hsm_grad *g)
{
    for (int64_t k = 0; k < g->n; k++) g->slot[g->rows[k]] = -1;
    g->n = 0;
    memset(dq, 0, (size_t)(b * d) * sizeof(float));
    const int64_t lo = sr_shard_global(nodes, rank, 0), hi = lo + sr_shard_count(nodes, rank);
    const double inv_b = 1.0 / (double)b;
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        double acc = 0.0;
        /* Leaf to root: the order is fixed, so sums do not depend on P. */
        for (int64_t v = targets[i]; t->up[v] >= 0; v = t->n + (t->up[v] >> 1)) {
            int64_t node = t->up[v] >> 1;
            if (node < lo || node >= hi) continue; /* another rank's term */
            int64_t r = node - lo;
            const float *wr = w + r * d;
            double s = (t->up[v] & 1) ? -1.0 : 1.0;
            double x = s * (double)cblas_sdot((int)d, qi, 1, wr, 1);
            acc -= log_sigmoid_(x);
            /* d(-log sigmoid(s z))/dz = -s sigmoid(-s z), mean over b. */
            float gz = (float)(-s / (1.0 + exp(x)) * inv_b);
            int64_t k = g->slot[r];
            if (k < 0) {
                k = g->slot[r] = g->n++;
                g->rows[k] = r;
                memset(g->g + k * d, 0, (size_t)d * sizeof(float));
            }
            cblas_saxpy((int)d, gz, wr, 1, dq + i * d, 1);
            cblas_saxpy((int)d, gz, qi, 1, g->g + k * d, 1);
        }
        part[i] = acc;
    }
}

/* ---- object ------------------------------------------------------------ */

static void eval_free_(sr_hsm *h)
{
    hsm_eval_ *e = &h->ev;
    void *bufs[] = {e->leaf_bufs, e->ncode, e->loc, e->chunk_bufs};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) sr_mem_free(h->mem, bufs[k]);
    memset(e, 0, sizeof *e);
}

void sr_hsm_destroy(sr_hsm **hp)
{
    if (!hp || !*hp) return;
    sr_hsm *h = *hp;
    eval_free_(h);
    sr_hsm_grad_destroy(&h->grad, h->mem);
    sr_optim_state_destroy(&h->st, h->mem);
    sr_mem_free(h->mem, h->w);
    sr_mem_free(h->mem, h->part);
    sr_shard_destroy(&h->nodes);
    sr_huffman_destroy(&h->tree);
    sr_mem_free(h->mem, h);
    *hp = NULL;
}

static sr_status create_local_(sr_hsm *h, const sr_loss_init *in, sr_error *err)
{
    const sr_comm *c = in->c;
    if (in->items->p != c->size || in->d < 1 || in->d > INT_MAX || in->b_max < 1 || !in->popularity)
        SR_FAIL(err, SR_ERR_INTERNAL,
                "hsm: item map over %d ranks (communicator %d), d %lld, b_max %lld, popularity %s",
                in->items->p, c->size, (long long)in->d, (long long)in->b_max,
                in->popularity ? "given" : "missing");
    SR_TRY(sr_huffman_build(&h->tree, in->popularity, in->items->n, h->mem, err));
    SR_TRY(sr_shard_init_block(&h->nodes, in->items->n - 1, c->size, NULL, err));
    h->n_local = sr_shard_count(&h->nodes, c->rank);
    h->w = sr_mem_calloc(h->mem, (size_t)h->n_local, (size_t)h->d * sizeof(float), "hsm node rows",
                         err);
    h->part = sr_mem_calloc(h->mem, (size_t)h->b_max, sizeof(double), "hsm partial losses", err);
    if (!h->w || !h->part) return err ? err->code : SR_ERR_NOMEM;
    SR_TRY(sr_optim_state_create(&h->st, &h->opt, h->n_local, h->d, h->mem, err));
    int64_t cap = h->tree.max_depth;
    cap = h->b_max > INT64_MAX / cap ? INT64_MAX : h->b_max * cap;
    if (cap > h->n_local) cap = h->n_local;
    return sr_hsm_grad_create(&h->grad, cap, h->n_local, h->d, h->mem, err);
}

sr_status sr_hsm_create(sr_hsm **out, const sr_loss_init *in, sr_error *err)
{
    *out = NULL;
    sr_error local;
    sr_error_clear(&local);
    sr_hsm *h = sr_mem_alloc(in->mem, sizeof *h, 1, "hsm", &local);
    if (h) {
        h->c = in->c;
        h->items = in->items;
        h->mem = in->mem;
        h->d = in->d;
        h->b_max = in->b_max;
        h->opt = *in->opt;
        h->ev.o_j0 = -1;
        (void)create_local_(h, in, &local);
    }
    /* The tree and the maps are replicated (same verdict everywhere); an
     * allocation may fail on one rank only: agree before anyone goes on. */
    if (sr_comm_agree(in->c, &local) != SR_OK) {
        sr_hsm_destroy(&h);
        if (err) *err = local;
        return local.code;
    }
    *out = h;
    return SR_OK;
}

sr_status sr_hsm_step(sr_hsm *h, const float *q, int64_t b, const int64_t *targets, double *loss,
                      float *dq, sr_error *err)
{
    /* Replicated arguments: every rank fails alike, before the collective. */
    if (b < 1 || b > h->b_max)
        SR_FAIL(err, SR_ERR_INTERNAL, "hsm step: batch %lld outside [1, %lld]", (long long)b,
                (long long)h->b_max);
    for (int64_t i = 0; i < b; i++)
        if (targets[i] < 0 || targets[i] >= h->tree.n)
            SR_FAIL(err, SR_ERR_DATA, "hsm step: target %lld of query %lld is not an item id in [0, %lld)",
                    (long long)targets[i], (long long)i, (long long)h->tree.n);
    sr_hsm_local_terms(&h->tree, &h->nodes, h->c->rank, h->w, h->d, q, b, targets, h->part, dq,
                       &h->grad);
    SR_TRY(sr_comm_allreduce_sum(h->c, h->part, b, err));
    double acc = 0.0;
    for (int64_t i = 0; i < b; i++) acc += h->part[i];
    double l = acc / (double)b;
    if (!isfinite(l))
        SR_FAIL(err, SR_ERR_NUMERIC, "hsm step: loss is %g (NaN or infinite queries or node rows)", l);
    if (loss) *loss = l;
    return SR_OK;
}

void sr_hsm_update(sr_hsm *h, int64_t step)
{
    sr_optim_update(&h->opt, &h->st, h->w, h->grad.g, h->grad.rows, h->grad.n, h->d, step);
    /* The model changed: a prepared evaluation is stale. */
    h->ev.ready = 0;
}

float *sr_hsm_params(sr_hsm *h, const sr_shard **map, int64_t *n_local)
{
    if (map) *map = &h->nodes;
    if (n_local) *n_local = h->n_local;
    return h->w;
}

sr_optim_state *sr_hsm_optim_state(sr_hsm *h) { return &h->st; }
void sr_hsm_set_lr(sr_hsm *h, double lr) { h->opt.lr = lr; }
const sr_huffman *sr_hsm_tree(const sr_hsm *h) { return &h->tree; }
const sr_hsm_grad *sr_hsm_last_grad(const sr_hsm *h) { return &h->grad; }

/* ---- evaluation -------------------------------------------------------- */


static int cmp_u64_(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Local items [j0, j1) sorted by leaf position into e->order. */
static void leaf_order_(const sr_hsm *h, int64_t j0, int64_t j1)
{
    const hsm_eval_ *e = &h->ev;
    for (int64_t j = j0; j < j1; j++)
        e->order[j - j0] = (uint64_t)h->tree.leafpos[sr_shard_global(h->items, h->c->rank, j)] << 32 |
                           (uint64_t)(j - j0);
    qsort(e->order, (size_t)(j1 - j0), sizeof *e->order, cmp_u64_);
}

/* Everything of eval_prepare before the collective fetch, local: the
 * preorder node list (ids, for the exchange), parent codes, buffers. */
static sr_status eval_plan_(sr_hsm *h, int64_t **ids_out, sr_error *err)
{
    hsm_eval_ *e = &h->ev;
    const sr_huffman *t = &h->tree;
    const int64_t m = t->n - 1, d = h->d, maxd = t->max_depth;
    e->n_items = sr_shard_count(h->items, h->c->rank);
    e->o_j0 = -1;
    /* At least one element each: a rank may hold no items. */
    const size_t ni = e->n_items > 0 ? (size_t)e->n_items : 1;
    const sr_mem_buf leaf_bufs[] = {SR_MEM_BUF(e->order, ni), SR_MEM_BUF(e->lcode, ni),
                                    SR_MEM_BUF(e->stack, maxd > 0 ? (size_t)maxd : 1)};
    e->leaf_bufs = sr_mem_bufset_alloc(h->mem, leaf_bufs, 3, "hsm eval leaves", err);
    int64_t bound = e->n_items > m / maxd ? m : e->n_items * maxd;
    int32_t *col = sr_mem_calloc(h->mem, (size_t)m, sizeof(int32_t), "hsm eval node columns", err);
    int64_t *ids = sr_mem_calloc(h->mem, (size_t)bound, sizeof *ids, "hsm eval node ids", err);
    if (!e->leaf_bufs || !col || !ids) {
        sr_mem_free(h->mem, col);
        sr_mem_free(h->mem, ids);
        return err ? err->code : SR_ERR_NOMEM;
    }
    for (int64_t k = 0; k < m; k++) col[k] = -1;
    leaf_order_(h, 0, e->n_items);
    for (int64_t l = 0; l < e->n_items; l++) {
        int64_t top = 0;
        int64_t v = sr_shard_global(h->items, h->c->rank, (int64_t)(e->order[l] & 0xffffffffu));
        for (; t->up[v] >= 0 && col[t->up[v] >> 1] < 0; v = t->n + (t->up[v] >> 1))
            e->stack[top++] = t->up[v] >> 1;
        while (top > 0) {
            int32_t node = e->stack[--top];
            col[node] = (int32_t)e->u;
            ids[e->u++] = node;
        }
    }
    e->ncode = sr_mem_calloc(h->mem, (size_t)e->u, sizeof(int32_t), "hsm eval node codes", err);
    e->loc = sr_mem_calloc(h->mem, (size_t)e->u, sizeof(int32_t), "hsm eval chunk index", err);
    if (e->ncode && e->loc) {
        for (int64_t k = 0; k < e->u; k++) {
            int32_t up = t->up[t->n + ids[k]];
            e->ncode[k] = up < 0 ? -1 : 2 * col[up >> 1] + (up & 1);
            e->loc[k] = -1;
        }
        for (int64_t j = 0; j < e->n_items; j++) {
            int32_t up = t->up[sr_shard_global(h->items, h->c->rank, j)];
            e->lcode[j] = 2 * col[up >> 1] + (up & 1);
        }
    }
    sr_mem_free(h->mem, col);
    *ids_out = ids;
    if (!e->ncode || !e->loc) return err ? err->code : SR_ERR_NOMEM;

    /* Chunk capacity. A chunk closes when the next leaf could overflow it,
     * so every chunk but the last holds > ucap - maxd nodes, and a chunk
     * repeats at most one root path (maxd nodes) of the previous one:
     * total nodes <= u + (u / (ucap - 2 maxd) + 1) maxd. */
    int64_t cmin = 4 * maxd + 1 > SR_HSM_CHUNK_NODES ? 4 * maxd + 1 : SR_HSM_CHUNK_NODES;
    e->ucap = e->u < cmin ? e->u : cmin;
    if (e->ucap == e->u) {
        e->cap_u = e->u;
        e->cap_c = 1;
    } else {
        e->cap_u = e->u + (e->u / (e->ucap - 2 * maxd) + 1) * maxd;
        e->cap_c = e->cap_u / (e->ucap - maxd) + 2;
    }
    const size_t cap_u = e->cap_u > 0 ? (size_t)e->cap_u : 1, ucap = e->ucap > 0 ? (size_t)e->ucap : 1;
    const size_t u = e->u > 0 ? (size_t)e->u : 1;
    const sr_mem_buf chunk_bufs[] = {
        SR_MEM_BUF(e->cu, (size_t)e->cap_c + 1), SR_MEM_BUF(e->cm, (size_t)e->cap_c + 1),
        SR_MEM_BUF(e->src, cap_u),               SR_MEM_BUF(e->pc, cap_u),
        SR_MEM_BUF(e->lp, ni),                   SR_MEM_BUF(e->oc, ni),
        SR_MEM_BUF(e->rows, u * (size_t)d),      SR_MEM_BUF(e->wg, ucap * (size_t)d),
        SR_MEM_BUF(e->z, ucap * SR_HSM_QBLOCK),  SR_MEM_BUF(e->a, ucap * SR_HSM_QBLOCK),
        SR_MEM_BUF(e->tb, ni * SR_HSM_QBLOCK),
    };
    e->chunk_bufs = sr_mem_bufset_alloc(h->mem, chunk_bufs, sizeof chunk_bufs / sizeof chunk_bufs[0],
                                        "hsm eval chunks", err);
    if (!e->chunk_bufs) return err ? err->code : SR_ERR_NOMEM;
    return SR_OK;
}

sr_status sr_hsm_eval_prepare(sr_hsm *h, sr_error *err)
{
    eval_free_(h);
    int64_t *ids = NULL;
    sr_error local;
    sr_error_clear(&local);
    /* A local failure still takes part in the exchange (with no ids), so the
     * peers' collectives complete; the vote afterwards fails everywhere. */
    if (eval_plan_(h, &ids, &local) != SR_OK) h->ev.u = 0;
    sr_exchange *x = NULL;
    sr_status xs = sr_exchange_plan(&x, h->c, &h->nodes, ids, h->ev.u, err);
    if (xs == SR_OK) xs = sr_exchange_fetch(x, h->w, h->d, h->ev.rows, err);
    sr_exchange_destroy(&x);
    sr_mem_free(h->mem, ids);
    if (xs == SR_OK && sr_comm_agree(h->c, &local) != SR_OK) {
        if (err) *err = local;
        xs = local.code;
    }
    if (xs != SR_OK) {
        eval_free_(h);
        return xs;
    }
    h->ev.ready = 1;
    return SR_OK;
}

/* Chunks of the range [j0, j1): leaves in depth-first order; a leaf adds the
 * nodes of its path not yet in the chunk, root side first (parents precede
 * children); a chunk closes before the next leaf could overflow it. */
static void build_chunks_(sr_hsm *h, int64_t j0, int64_t j1)
{
    hsm_eval_ *e = &h->ev;
    const int64_t nt = j1 - j0, maxd = h->tree.max_depth;
    leaf_order_(h, j0, j1);
    int64_t u = 0, tot = 0;
    e->n_chunks = 0;
    e->cu[0] = e->cm[0] = 0;
    for (int64_t l = 0; l < nt; l++) {
        int64_t j = j0 + (int64_t)(e->order[l] & 0xffffffffu);
        int64_t need = e->u - u < maxd ? e->u - u : maxd;
        if (u > 0 && u + need > e->ucap) {
            for (int64_t k = tot - u; k < tot; k++) e->loc[e->src[k]] = -1;
            e->n_chunks++;
            e->cu[e->n_chunks] = tot;
            e->cm[e->n_chunks] = l;
            u = 0;
        }
        int64_t top = 0;
        for (int32_t c = e->lcode[j] >> 1; c >= 0 && e->loc[c] < 0;) {
            e->stack[top++] = c;
            c = e->ncode[c] < 0 ? -1 : e->ncode[c] >> 1;
        }
        SR_ASSERT(tot + top <= e->cap_u && e->n_chunks < e->cap_c);
        while (top > 0) {
            int32_t c = e->stack[--top], nc = e->ncode[c];
            e->loc[c] = (int32_t)u;
            e->src[tot] = c;
            e->pc[tot] = nc < 0 ? -1 : 2 * e->loc[nc >> 1] + (nc & 1);
            u++;
            tot++;
        }
        e->lp[l] = 2 * e->loc[e->lcode[j] >> 1] + (e->lcode[j] & 1);
        e->oc[l] = (int32_t)(j - j0);
    }
    for (int64_t k = tot - u; k < tot; k++) e->loc[e->src[k]] = -1;
    e->n_chunks++;
    e->cu[e->n_chunks] = tot;
    e->cm[e->n_chunks] = nt;
    e->o_j0 = j0;
    e->o_j1 = j1;
}

/* log sigmoid(x) = min(x, 0) - log1p(e) with e = exp(-|x|) in (0, 1]:
 * log1p(e) = 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series to s^15
 * (truncation < 3e-9 relative). Plain arithmetic, so the loop vectorises. */
static inline float log1p_unit_(float e)
{
    float s = e / (2.0f + e), s2 = s * s;
    float p = 2.0f / 15;
    p = p * s2 + 2.0f / 13;
    p = p * s2 + 2.0f / 11;
    p = p * s2 + 2.0f / 9;
    p = p * s2 + 2.0f / 7;
    p = p * s2 + 2.0f / 5;
    p = p * s2 + 2.0f / 3;
    p = p * s2 + 2.0f;
    return s * p;
}

/* Row passes over one block of QB queries (all QB lanes, whatever the
 * block's real size: a fixed trip count, restrict rows and no libm calls
 * let -O2 vectorise them; unused lanes hold stale finite values and are
 * never read back). ak holds exp(-|z_k|) on entry:
 * ak = base + log sigmoid(zk), base = ap - bit * zp (0 at the root). */
#define QB SR_HSM_QBLOCK
static void prefix_row_(float *restrict ak, const float *restrict zk, const float *restrict ap,
                        const float *restrict zp, float bit)
{
    for (int i = 0; i < QB; i++) {
        float lo = zk[i] < 0.0f ? zk[i] : 0.0f;
        ak[i] = (ap[i] - bit * zp[i]) + (lo - log1p_unit_(ak[i]));
    }
}

static void root_row_(float *restrict ak, const float *restrict zk)
{
    for (int i = 0; i < QB; i++) {
        float lo = zk[i] < 0.0f ? zk[i] : 0.0f;
        ak[i] = lo - log1p_unit_(ak[i]);
    }
}

static void leaf_row_(float *restrict o, const float *restrict ap, const float *restrict zp, float bit)
{
    for (int i = 0; i < QB; i++) o[i] = ap[i] - bit * zp[i];
}

static void negabs_row_(float *restrict a, const float *restrict z)
{
    for (int i = 0; i < QB; i++) a[i] = -fabsf(z[i]);
}

/* Leaf scores of chunk c for queries q (nb x d) into e->tb (item-major). */
static void chunk_scores_(hsm_eval_ *e, int64_t c, int64_t d, const float *q, int64_t nb)
{
    const int64_t k0 = e->cu[c], u = e->cu[c + 1] - k0;
    const int32_t *src = e->src + k0, *pcs = e->pc + k0;
    for (int64_t k = 0; k < u; k++)
        memcpy(e->wg + k * d, e->rows + (int64_t)src[k] * d, (size_t)d * sizeof(float));
    float *z = e->z, *a = e->a;
    /* Z (u x QB, nb columns used) = W_chunk (u x d) . Q_blk^T: node-major,
     * so the prefix pass below runs over contiguous queries per node. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)u, (int)nb, (int)d, 1.0f, e->wg, (int)d,
                q, (int)d, 0.0f, z, QB);
    for (int64_t k = 0; k < u; k++) negabs_row_(a + k * QB, z + k * QB);
    sr_vexp_array(a, a, u * QB);
    /* A_k = log p(reach k) + log sigmoid(z_k); child 1 of k: A_k - z_k. */
    for (int64_t k = 0; k < u; k++) {
        int32_t pc = pcs[k];
        if (pc < 0) root_row_(a + k * QB, z + k * QB);
        else
            prefix_row_(a + k * QB, z + k * QB, a + (int64_t)(pc >> 1) * QB,
                        z + (int64_t)(pc >> 1) * QB, (float)(pc & 1));
    }
    for (int64_t l = e->cm[c]; l < e->cm[c + 1]; l++) {
        int32_t lp = e->lp[l];
        leaf_row_(e->tb + (int64_t)e->oc[l] * QB, a + (int64_t)(lp >> 1) * QB,
                  z + (int64_t)(lp >> 1) * QB, (float)(lp & 1));
    }
}

/* out rows (nb x nt, leading dimension nt) = tb^T (tb: nt x QB), in column
 * blocks so the reads stay in L1 and every write is contiguous. */
static void transpose_out_(const float *restrict tb, int64_t nt, int64_t nb, float *restrict out)
{
    const int64_t jb = 64;
    for (int64_t j0 = 0; j0 < nt; j0 += jb) {
        int64_t j1 = j0 + jb < nt ? j0 + jb : nt;
        for (int64_t i = 0; i < nb; i++) {
            float *o = out + i * nt;
            for (int64_t j = j0; j < j1; j++) o[j] = tb[j * QB + i];
        }
    }
}

void sr_hsm_eval_scores(void *hv, const float *q, int64_t b, int64_t d, int64_t j0, int64_t j1,
                        float *out)
{
    sr_hsm *h = hv;
    hsm_eval_ *e = &h->ev;
    if (!e->ready || d != h->d || j0 < 0 || j1 < j0 || j1 > e->n_items || b < 0)
        sr_panic(__FILE__, __LINE__,
                 "hsm eval scores: prepared %d, d %lld (model %lld), range [%lld, %lld) of %lld items",
                 e->ready, (long long)d, (long long)h->d, (long long)j0, (long long)j1,
                 (long long)e->n_items);
    const int64_t nt = j1 - j0;
    if (nt == 0 || b == 0) return;
    if (e->o_j0 != j0 || e->o_j1 != j1) build_chunks_(h, j0, j1);
    for (int64_t i0 = 0; i0 < b; i0 += SR_HSM_QBLOCK) {
        const int64_t nb = b - i0 < SR_HSM_QBLOCK ? b - i0 : SR_HSM_QBLOCK;
        for (int64_t c = 0; c < e->n_chunks; c++) chunk_scores_(e, c, d, q + i0 * d, nb);
        /* Leaf order -> item order went through tb (whole rows of nb
         * floats); now a blocked transpose into the caller's rows. */
        transpose_out_(e->tb, nt, nb, out + i0 * nt);
    }
}

/* ---- the loss registry's "hsm": own parameters, tree scores ------------- */

static sr_status hsm_create_(void **state, const sr_loss_ops *ops, const sr_loss_init *in,
                             sr_error *err)
{
    sr_hsm *h = NULL;
    sr_status st = sr_hsm_create(&h, in, err);
    *state = h;
    return st;
}

static void hsm_destroy_(void *state)
{
    sr_hsm *h = state;
    sr_hsm_destroy(&h);
}

static sr_status hsm_step_(void *state, const float *q, int64_t b, const float *v,
                           const int64_t *targets, int64_t step, double *loss, float *dq,
                           sr_item_grad *dv, sr_error *err)
{
    /* The output side is the tree: item rows get no gradient. */
    dv->n = 0;
    dv->rows = NULL;
    dv->g = NULL;
    return sr_hsm_step(state, q, b, targets, loss, dq, err);
}

static void hsm_update_(void *state, int64_t step) { sr_hsm_update(state, step); }
static void hsm_set_lr_(void *state, double lr) { sr_hsm_set_lr(state, lr); }
static float *hsm_params_(void *state, const sr_shard **map, int64_t *n_local)
{
    return sr_hsm_params(state, map, n_local);
}
static sr_optim_state *hsm_param_state_(void *state) { return sr_hsm_optim_state(state); }
static sr_status hsm_eval_prepare_(void *state, sr_error *err) { return sr_hsm_eval_prepare(state, err); }

const sr_loss_ops sr_hsm_ops = {
    .name = "hsm",
    .help = "hierarchical softmax over the Huffman tree of train popularity (own node vectors)",
    .kind = SR_LOSS_HSM,
    .create = hsm_create_,
    .destroy = hsm_destroy_,
    .step = hsm_step_,
    .update_params = hsm_update_,
    .set_lr = hsm_set_lr_,
    .params = hsm_params_,
    .param_state = hsm_param_state_,
    .eval_prepare = hsm_eval_prepare_,
    .eval_scores = sr_hsm_eval_scores,
};
