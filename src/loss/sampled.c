/* sampled.c: ssm, nce and bpr over locally drawn negatives (sampled.h).
 *
 * A step: draw this rank's pool (sampler.h quotas) -> score it (one SGEMM for
 * shared negatives, dot products per query otherwise) -> mask accidental hits
 * and, for the dynamic proposal, keep each query's top k_r -> per-query
 * partials -> one collective -> gradients w.r.t. the logits -> dq (SGEMM or
 * saxpy) and the row-sparse dv (pool rows and owned targets sorted by row,
 * summed in a fixed order). For a plain shared pool the correction and hit
 * mask are applied by the objective's own pass over each row, and ssm keeps
 * exp(z - local max) in the logits with the per-row scale on the b x d GEMM
 * operands: each logit is read in one pass and exponentiated once
 * (profile in docs/benchmarks.md, "SSM step: profile").
 */
#include "loss/sampled.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "loss/registry.h"
#include "nn/vexp.h"

typedef enum prop_ { PROP_UNIFORM, PROP_POPULARITY, PROP_INBATCH, PROP_DYNAMIC } prop_;

typedef struct src_ {
    int64_t row; /* local row */
    int64_t src; /* < np: pool entry; np + i: target of query i */
} src_;

typedef struct sel_ {
    float s;
    int64_t e;
} sel_;

struct sr_sampled {
    sr_loss_kind kind;
    const sr_comm *c;
    const sr_shard *items;
    sr_mem *mem;
    int64_t d, b_max, k, m, n_local;
    prop_ prop;
    bool correct, remove_hits, shared;
    uint64_t seed;
    sr_sampler *smp; /* the proposal (dynamic: its base; inbatch: the data popularity) */

    int64_t cap;  /* pool capacity */
    int64_t np;   /* pool entries this step */
    int64_t b;    /* batch of the last step */
    int64_t *rows, *gid, *qidx; /* cap: local row, global id, query (per-query pools, bpr) */
    double *corr;               /* cap */
    uint8_t *used;              /* cap: entry enters some query's objective */
    uint8_t *keep;              /* dynamic: b_max x cap (shared) or cap */
    int64_t *ptr;               /* b_max + 1 (per-query pools) */
    int64_t *kq;                /* b_max: kept per query (dynamic) */
    float *vc, *dvc;            /* shared ssm/nce: cap x d gathered rows and their gradients */
    float *dvt;                 /* shared ssm/nce: d x cap, dvc transposed (the faster GEMM shape) */
    float *z;                   /* logits, then their gradients: b_max x cap (shared ssm/nce) or cap */
    sel_ *sel;                  /* dynamic selection scratch (one query's candidates) */
    sr_lse *lse;                /* b_max */
    double *part, *ts, *tcorr;  /* b_max: partial losses / scores, target logits, target corrections */
    float *gt;                  /* b_max: dL/ds_t on the target's owner */
    int64_t *trow, *neg;        /* b_max: local row of the target (-1), bpr negatives */
    src_ *srt;                  /* cap + b_max */
    src_ *byid;                 /* cap: shared pool entries sorted by (local row, entry), for the hit search */
    float *alpha;               /* b_max: ssm, dL/dz_ij = alpha_i z_ij once z holds exp(z - local max) */
    float *qs;                  /* shared ssm: b_max x d, alpha_i q_i (the dV GEMM's right operand) */
    int64_t dv_cap;
    int64_t *dv_rows;
    float *dv_g;
    void *bufs; /* the one block behind every buffer above (sr_mem_bufset_alloc) */
};

/* ---- create / destroy ---------------------------------------------------- */

/* The proposals, each name once: config's loss.proposal and loss.dns_base
 * choices come from here (sr_proposal_choice, sr_dns_base_choice). */
static const struct {
    const char *name;
    prop_ prop;
    bool base; /* may be dynamic's loss.dns_base */
    const char *help;
} PROPOSALS[] = {
    {"uniform", PROP_UNIFORM, true, "Q(j) = 1 / N"},
    {"popularity", PROP_POPULARITY, true, "Q(j) ~ (train count(j) + 1)^loss.proposal_beta"},
    {"inbatch", PROP_INBATCH, false, "the step's targets are the negatives (Q = the data's popularity)"},
    {"dynamic", PROP_DYNAMIC, false,
     "hard negatives: each query keeps the k highest-scoring of loss.dns_candidates base draws"},
};
#define N_PROPOSALS (sizeof PROPOSALS / sizeof PROPOSALS[0])

const char *sr_proposal_choice(size_t i, const char **help)
{
    if (i >= N_PROPOSALS) return NULL;
    if (help) *help = PROPOSALS[i].help;
    return PROPOSALS[i].name;
}

const char *sr_dns_base_choice(size_t i, const char **help)
{
    for (size_t j = 0; j < N_PROPOSALS; j++)
        if (PROPOSALS[j].base && i-- == 0) return sr_proposal_choice(j, help);
    return NULL;
}

static sr_status parse_prop_(const char *name, prop_ *out, sr_error *err)
{
    for (size_t i = 0; i < N_PROPOSALS; i++)
        if (!strcmp(name, PROPOSALS[i].name)) {
            *out = PROPOSALS[i].prop;
            return SR_OK;
        }
    SR_FAIL(err, SR_ERR_CONFIG, "loss.proposal: unknown proposal '%s'", name);
}

sr_status sr_sampled_create(sr_sampled **out, sr_loss_kind kind, const sr_loss_init *in,
                            sr_error *err)
{
    *out = NULL;
    const sr_config *cfg = in->cfg;
    if (kind != SR_LOSS_SSM && kind != SR_LOSS_NCE && kind != SR_LOSS_BPR)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampled loss: kind %d is not ssm, nce or bpr", (int)kind);
    if (in->items->p != in->c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampled loss: shard map over %d ranks, communicator of %d",
                in->items->p, in->c->size);
    if (in->b_max < 1 || in->b_max > INT_MAX || in->d < 1 || in->d > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampled loss: batch %lld, dimension %lld", (long long)in->b_max,
                (long long)in->d);
    prop_ prop = PROP_UNIFORM, base = PROP_UNIFORM;
    SR_TRY(parse_prop_(cfg->loss_proposal, &prop, err));
    SR_TRY(parse_prop_(cfg->loss_dns_base, &base, err));
    if (prop == PROP_DYNAMIC && base != PROP_UNIFORM && base != PROP_POPULARITY)
        SR_FAIL(err, SR_ERR_CONFIG, "loss.dns_base: '%s' (uniform or popularity)", cfg->loss_dns_base);
    int64_t k = cfg->loss_negatives, m = cfg->loss_dns_candidates;
    if (kind == SR_LOSS_BPR) {
        prop = PROP_UNIFORM;
        k = 1;
        if (in->items->n < 2) SR_FAIL(err, SR_ERR_CONFIG, "bpr needs at least 2 items");
    }
    if (k < 1) SR_FAIL(err, SR_ERR_CONFIG, "loss.negatives: %lld (>= 1)", (long long)k);
    if (prop == PROP_DYNAMIC && m < k)
        SR_FAIL(err, SR_ERR_CONFIG, "loss.dns_candidates (%lld) must be >= loss.negatives (%lld)",
                (long long)m, (long long)k);
    if (prop != PROP_DYNAMIC) m = k;
    if ((prop == PROP_POPULARITY || prop == PROP_INBATCH ||
         (prop == PROP_DYNAMIC && base == PROP_POPULARITY)) && !in->popularity)
        SR_FAIL(err, SR_ERR_CONFIG, "loss.proposal %s needs the train popularity of the items",
                cfg->loss_proposal);
    bool shared = cfg->loss_shared_negatives || prop == PROP_INBATCH || kind == SR_LOSS_BPR;
    /* Per-step draws must stay inside one step's 2^32 Philox blocks. */
    if ((double)in->b_max * (double)m > 4294967296.0)
        SR_FAIL(err, SR_ERR_CONFIG, "sampled loss: batch %lld x %lld candidates exceeds 2^32 draws a step",
                (long long)in->b_max, (long long)m);

    sr_sampled *s = sr_mem_alloc(in->mem, sizeof *s, 1, "sampled loss", err);
    if (!s) return err ? err->code : SR_ERR_NOMEM;
    s->kind = kind;
    s->c = in->c;
    s->items = in->items;
    s->mem = in->mem;
    s->d = in->d;
    s->b_max = in->b_max;
    s->k = k;
    s->m = m;
    s->n_local = sr_shard_count(in->items, in->c->rank);
    s->prop = prop;
    s->correct = cfg->loss_logq_correction;
    s->remove_hits = cfg->loss_remove_accidental_hits;
    s->shared = shared;
    s->seed = (uint64_t)cfg->train_seed;

    sr_proposal pk = SR_PROPOSAL_UNIFORM;
    double beta = cfg->loss_proposal_beta;
    if (prop == PROP_POPULARITY || (prop == PROP_DYNAMIC && base == PROP_POPULARITY))
        pk = SR_PROPOSAL_POPULARITY;
    if (prop == PROP_INBATCH) {
        pk = SR_PROPOSAL_POPULARITY;
        beta = 1.0; /* the data distribution itself */
    }
    sr_status st = sr_sampler_create(&s->smp, in->items, in->c->rank, pk, in->popularity, beta,
                                     in->mem, err);
    if (st != SR_OK) {
        sr_sampled_destroy(&s);
        return st;
    }

    const int64_t b = s->b_max, d = s->d;
    if (kind == SR_LOSS_BPR) s->cap = b;
    else if (prop == PROP_INBATCH) s->cap = b;
    else s->cap = shared ? m : b * m;
    /* bpr scores pool entry e against its own query only (one score an
     * entry, bpr_): no b x cap logit matrix and none of the dense GEMM
     * operands, so O(b d) bytes instead of O(b^2). */
    const bool dense = shared && kind != SR_LOSS_BPR;
    const int64_t zsize = dense ? b * s->cap : s->cap;
    const bool dyn = prop == PROP_DYNAMIC;
    s->dv_cap = s->cap + b < s->n_local ? s->cap + b : s->n_local;
    /* Every buffer at least one element (n_local may be 0); optional ones 0 (NULL). */
#define N1(n) ((n) > 0 ? (n) : 1)
    const sr_mem_buf bufs[] = {
        SR_MEM_BUF(s->rows, N1(s->cap)),        SR_MEM_BUF(s->gid, N1(s->cap)),
        SR_MEM_BUF(s->qidx, N1(s->cap)),        SR_MEM_BUF(s->corr, N1(s->cap)),
        SR_MEM_BUF(s->used, N1(s->cap)),        SR_MEM_BUF(s->keep, dyn ? N1(zsize) : 0),
        SR_MEM_BUF(s->ptr, N1(b + 1)),          SR_MEM_BUF(s->kq, N1(b)),
        SR_MEM_BUF(s->z, N1(zsize)),            SR_MEM_BUF(s->sel, dyn ? N1(m) : 0),
        SR_MEM_BUF(s->lse, N1(b)),              SR_MEM_BUF(s->part, N1(b)),
        SR_MEM_BUF(s->ts, N1(b)),               SR_MEM_BUF(s->tcorr, N1(b)),
        SR_MEM_BUF(s->gt, N1(b)),               SR_MEM_BUF(s->trow, N1(b)),
        SR_MEM_BUF(s->neg, N1(b)),              SR_MEM_BUF(s->srt, N1(s->cap + b)),
        SR_MEM_BUF(s->dv_rows, N1(s->dv_cap)),  SR_MEM_BUF(s->dv_g, N1(s->dv_cap * d)),
        SR_MEM_BUF(s->vc, dense ? N1(s->cap * d) : 0),
        SR_MEM_BUF(s->dvc, dense ? N1(s->cap * d) : 0),
        SR_MEM_BUF(s->byid, dense ? N1(s->cap) : 0),
        SR_MEM_BUF(s->dvt, dense ? N1(s->cap * d) : 0),
        SR_MEM_BUF(s->qs, dense ? N1(b * d) : 0),
        SR_MEM_BUF(s->alpha, N1(b)),
    };
#undef N1
    s->bufs = sr_mem_bufset_alloc(s->mem, bufs, sizeof bufs / sizeof bufs[0], "sampled loss buffers", err);
    if (!s->bufs) {
        sr_sampled_destroy(&s);
        return err ? err->code : SR_ERR_NOMEM;
    }
    *out = s;
    return SR_OK;
}

void sr_sampled_destroy(sr_sampled **sp)
{
    if (!sp || !*sp) return;
    sr_sampled *s = *sp;
    sr_sampler_destroy(&s->smp);
    sr_mem_free(s->mem, s->bufs);
    sr_mem_free(s->mem, s);
    *sp = NULL;
}

/* ---- drawing ------------------------------------------------------------- */

static void add_entry_(sr_sampled *s, int64_t row, int64_t kk, int64_t query)
{
    int64_t e = s->np++;
    s->rows[e] = row;
    s->gid[e] = sr_shard_global(s->items, s->c->rank, row);
    s->qidx[e] = query;
    s->corr[e] = s->correct ? log((double)kk) + sr_sampler_logq(s->smp, row) : 0.0;
}

/* Draw this rank's quota for one sample of k (all queries, or query i) and
 * append it; returns the quota of kept negatives (k_r). */
static int64_t draw_one_(sr_sampled *s, sr_rng *rs, sr_rng *ss, int64_t query)
{
    double u = sr_rng_uniform(ss); /* the same on every rank */
    int64_t kr = sr_sampler_quotas(s->smp, s->k, u, NULL);
    int64_t mr = kr;
    if (s->prop == PROP_DYNAMIC) mr = (kr * s->m + s->k - 1) / s->k; /* ceil(k_r m / k) >= k_r */
    int64_t e0 = s->np;
    sr_sampler_draw(s->smp, mr, rs, s->rows + e0);
    for (int64_t j = 0; j < mr; j++) add_entry_(s, s->rows[e0 + j], s->k, query);
    return kr;
}

static void draw_pool_(sr_sampled *s, int64_t b, const int64_t *targets, int64_t step)
{
    sr_rng rs, ss;
    sr_sampler_stream(&rs, s->seed, s->c->rank, step);
    sr_sampler_shared_stream(&ss, s->seed, step);
    s->np = 0;
    const int rank = s->c->rank;
    if (s->kind == SR_LOSS_BPR) {
        const uint64_t n = (uint64_t)s->items->n;
        for (int64_t i = 0; i < b; i++) {
            int64_t g;
            if (s->remove_hits) { /* uniform over the n - 1 others: no rejection loop */
                g = (int64_t)sr_rng_below(&ss, n - 1);
                if (g >= targets[i]) g++;
            } else {
                g = (int64_t)sr_rng_below(&ss, n);
            }
            s->neg[i] = g;
            if (sr_shard_owner(s->items, g) == rank) {
                int64_t e = s->np++;
                s->rows[e] = sr_shard_local(s->items, g);
                s->gid[e] = g;
                s->qidx[e] = i;
                s->corr[e] = 0.0;
            }
        }
        return;
    }
    if (s->prop == PROP_INBATCH) {
        for (int64_t i = 0; i < b; i++)
            if (sr_shard_owner(s->items, targets[i]) == rank)
                add_entry_(s, sr_shard_local(s->items, targets[i]), b, -1);
        return;
    }
    if (s->shared) {
        int64_t kr = draw_one_(s, &rs, &ss, -1);
        for (int64_t i = 0; i < b; i++) s->kq[i] = kr;
        return;
    }
    for (int64_t i = 0; i < b; i++) {
        s->ptr[i] = s->np;
        s->kq[i] = draw_one_(s, &rs, &ss, i);
    }
    s->ptr[b] = s->np;
}

/* ---- scoring and masking ------------------------------------------------- */

/* Rows of the N x d table are read in random order (pool, targets): ask for
 * a row PREFETCH_ iterations ahead so the misses overlap. */
#define PREFETCH_ 8
static inline void prefetch_row_(const float *v, int64_t d, int64_t row)
{
    if (row < 0) return;
    const char *p = (const char *)(v + row * d);
    for (int64_t off = 0; off < d * (int64_t)sizeof(float); off += 64) __builtin_prefetch(p + off, 0, 0);
}

static double dot_(const float *a, const float *b, int64_t d)
{
    double acc = 0.0;
    for (int64_t k = 0; k < d; k++) acc += (double)a[k] * (double)b[k];
    return acc;
}

static int cmp_sel_(const void *pa, const void *pb)
{
    const sel_ *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1; /* higher score first */
    return a->e < b->e ? -1 : (a->e > b->e);       /* then the earlier draw */
}

/* Keep the kq highest raw scores among the eligible entries of one query
 * (row: the query's logits, ent: pool index of row[j], hit: row[j] is a hit). */
static void select_top_(sr_sampled *s, float *row, int64_t n, int64_t e0, uint8_t *keep,
                        int64_t kq, int64_t target)
{
    int64_t ne = 0;
    for (int64_t j = 0; j < n; j++) {
        keep[j] = 0;
        if (s->remove_hits && s->gid[e0 + j] == target) continue;
        s->sel[ne].s = isnan(row[j]) ? INFINITY : row[j]; /* NaN kept: it poisons the loss */
        s->sel[ne].e = j;
        ne++;
    }
    if (kq < ne) qsort(s->sel, (size_t)ne, sizeof(sel_), cmp_sel_);
    for (int64_t j = 0; j < ne && j < kq; j++) keep[s->sel[j].e] = 1;
}

static int cmp_src_(const void *pa, const void *pb)
{
    const src_ *a = pa, *b = pb;
    if (a->row != b->row) return a->row < b->row ? -1 : 1;
    return a->src < b->src ? -1 : (a->src > b->src);
}

/* Shared pool without a dynamic selection: score_ leaves the raw logits and
 * the objective corrects and masks each row (fix_row_) right before its own
 * pass over it, so a row is read from memory once, not once per pass. */
static bool deferred_(const sr_sampled *s)
{
    return s->shared && !s->keep && s->kind != SR_LOSS_BPR;
}

/* Query i's row: logits minus corrections, hits (pool entries whose row is
 * the query's owned target, found in the sorted pool) at -inf. */
static void fix_row_(const sr_sampled *s, int64_t i, float *row)
{
    const int64_t np = s->np, t = s->trow[i];
    const double *corr = s->corr;
    for (int64_t e = 0; e < np; e++) row[e] = (float)((double)row[e] - corr[e]);
    if (!s->remove_hits || t < 0) return;
    int64_t lo = 0, hi = np; /* first entry with row >= t */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->byid[mid].row < t) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < np && s->byid[lo].row == t; lo++) row[s->byid[lo].src] = -INFINITY;
}

/* Logits of the pool, corrected and masked (-inf: not in the query's
 * objective; deferred to fix_row_ for plain shared pools); used[e] set when
 * some query keeps entry e. */
static void score_(sr_sampled *s, const float *q, int64_t b, const float *v, const int64_t *targets)
{
    const int64_t d = s->d, np = s->np;
    memset(s->used, 0, (size_t)(np > 0 ? np : 1));
    if (s->kind == SR_LOSS_BPR) return;
    if (s->shared) {
        for (int64_t e = 0; e < np; e++) {
            prefetch_row_(v, d, e + PREFETCH_ < np ? s->rows[e + PREFETCH_] : -1);
            memcpy(s->vc + e * d, v + s->rows[e] * d, (size_t)d * sizeof(float));
        }
        if (np > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)np, (int)d, 1.0f, q, (int)d,
                        s->vc, (int)d, 0.0f, s->z, (int)np);
        if (deferred_(s)) {
            /* An entry is in some query's objective unless it is a hit of
             * every query, i.e. all targets are its item. */
            bool same = true;
            for (int64_t i = 1; i < b && same; i++) same = targets[i] == targets[0];
            for (int64_t e = 0; e < np; e++) {
                s->used[e] = !(s->remove_hits && same && s->gid[e] == targets[0]);
                s->byid[e] = (src_){s->rows[e], e};
            }
            if (s->remove_hits) qsort(s->byid, (size_t)np, sizeof(src_), cmp_src_);
            return;
        }
        for (int64_t i = 0; i < b; i++) {
            float *row = s->z + i * np;
            uint8_t *keep = s->keep ? s->keep + i * np : NULL;
            if (keep) select_top_(s, row, np, 0, keep, s->kq[i], targets[i]);
            for (int64_t e = 0; e < np; e++) {
                bool in = keep ? keep[e] : !(s->remove_hits && s->gid[e] == targets[i]);
                row[e] = in ? (float)((double)row[e] - s->corr[e]) : -INFINITY;
                s->used[e] |= in;
            }
        }
        return;
    }
    for (int64_t i = 0; i < b; i++) {
        const float *qi = q + i * d;
        int64_t e0 = s->ptr[i], n = s->ptr[i + 1] - e0;
        for (int64_t e = e0; e < e0 + n; e++) s->z[e] = (float)dot_(qi, v + s->rows[e] * d, d);
        if (s->keep) select_top_(s, s->z + e0, n, e0, s->keep + e0, s->kq[i], targets[i]);
        for (int64_t e = e0; e < e0 + n; e++) {
            bool in = s->keep ? s->keep[e] : !(s->remove_hits && s->gid[e] == targets[i]);
            s->z[e] = in ? (float)((double)s->z[e] - s->corr[e]) : -INFINITY;
            s->used[e] = in;
        }
    }
}

/* Target logits and corrections on their owners. */
static void targets_(sr_sampled *s, const float *q, int64_t b, const float *v, const int64_t *targets)
{
    const int64_t d = s->d;
    int64_t kk = s->prop == PROP_INBATCH ? b : s->k;
    for (int64_t i = 0; i < b; i++)
        s->trow[i] = sr_shard_owner(s->items, targets[i]) == s->c->rank ? sr_shard_local(s->items, targets[i]) : -1;
    for (int64_t i = 0; i < b; i++) {
        s->ts[i] = 0.0;
        s->tcorr[i] = 0.0;
        prefetch_row_(v, d, i + PREFETCH_ < b ? s->trow[i + PREFETCH_] : -1);
        if (s->trow[i] < 0) continue;
        s->ts[i] = (double)(float)dot_(q + i * d, v + s->trow[i] * d, d);
        if (s->correct && s->kind == SR_LOSS_NCE)
            s->tcorr[i] = log((double)kk) + sr_sampler_logq(s->smp, s->trow[i]);
    }
}

/* ---- the three objectives ------------------------------------------------ */

static float *zrow_(sr_sampled *s, int64_t i, int64_t *n)
{
    if (s->shared) {
        *n = s->np;
        return s->z + i * s->np;
    }
    *n = s->ptr[i + 1] - s->ptr[i];
    return s->z + s->ptr[i];
}

static double softplus_(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static double sigmoid_(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* row := exp(row - m) in place, m the row's max (returned); *sum = the sum
 * of the new row in double; *bad = 1 on a NaN or +inf. One exp an element:
 * the max pass and the sum pass run on the row while it is in L1. */
static float row_exp_(float *row, int64_t n, double *sum, int *bad)
{
    float mx = -INFINITY;
    int nan = 0;
#ifdef _OPENMP
#pragma omp simd reduction(max : mx) reduction(| : nan)
#endif
    for (int64_t j = 0; j < n; j++) {
        mx = row[j] > mx ? row[j] : mx;
        nan |= row[j] != row[j];
    }
    *bad = nan || mx == INFINITY;
    double acc = 0.0;
    if (mx == -INFINITY || *bad) { /* nothing in the objective (or a poisoned row) */
        memset(row, 0, (size_t)n * sizeof(float));
    } else {
        sr_vexp_row_scale(row, n, mx, 1.0f);
#ifdef _OPENMP
#pragma omp simd reduction(+ : acc)
#endif
        for (int64_t j = 0; j < n; j++) acc += (double)row[j];
    }
    *sum = acc;
    return mx;
}

static sr_status ssm_(sr_sampled *s, int64_t b, double *loss, sr_error *err)
{
    const bool defer = deferred_(s);
    /* One thread: an OpenMP team here (with the default active wait) kept
     * spinning into OpenBLAS's threaded GEMMs that follow and made the 2-thread
     * step 3x slower on the 2-core dev VM. */
    for (int64_t i = 0; i < b; i++) {
        int64_t n;
        float *row = zrow_(s, i, &n);
        if (defer) fix_row_(s, i, row);
        /* exp(z - local max) in place while the row is in cache: after the
         * collective the global max and sum are one scale a row (alpha). */
        int bad = 0;
        double sum = 0.0;
        float mx = row_exp_(row, n, &sum, &bad);
        s->alpha[i] = mx;
        sr_lse t = {mx, bad ? NAN : sum, 0.0};
        if (s->trow[i] >= 0) {
            sr_lse tt = {s->ts[i], 1.0, s->ts[i]};
            if (isnan(s->ts[i])) tt.sum = NAN;
            sr_lse_merge(&t, &tt, 1);
        }
        s->lse[i] = t;
    }
    SR_TRY(sr_comm_allreduce_lse(s->c, s->lse, b, err));
    double l = 0.0;
    for (int64_t i = 0; i < b; i++) l += sr_lse_value(&s->lse[i]) - s->lse[i].target;
    l /= (double)b;
    if (!isfinite(l)) SR_FAIL(err, SR_ERR_NUMERIC, "ssm step: loss is %g (NaN or infinite embeddings)", l);
    *loss = l;
    /* dL/dz = exp(z - M) / S / b = alpha_i exp(z - m_i) (m_i the local max);
     * the owner subtracts 1/b at the target. Shared pools keep alpha for the
     * B x d operands of the GEMMs (grads_); per-query rows take it here. */
    for (int64_t i = 0; i < b; i++) {
        const sr_lse *t = &s->lse[i];
        double a = s->alpha[i] == -INFINITY ? 0.0 : exp((double)s->alpha[i] - t->max) / (t->sum * (double)b);
        s->alpha[i] = (float)a;
        s->gt[i] = s->trow[i] >= 0 ? (float)((exp(s->ts[i] - t->max) / t->sum - 1.0) / (double)b) : 0.0f;
        if (s->shared) continue;
        int64_t n;
        float *row = zrow_(s, i, &n);
        for (int64_t j = 0; j < n; j++) row[j] *= s->alpha[i];
    }
    return SR_OK;
}

static sr_status nce_(sr_sampled *s, int64_t b, double *loss, sr_error *err)
{
    const bool defer = deferred_(s);
    for (int64_t i = 0; i < b; i++) {
        int64_t n;
        float *row = zrow_(s, i, &n);
        if (defer) fix_row_(s, i, row);
        double acc = 0.0;
        for (int64_t j = 0; j < n; j++)
            if (row[j] != -INFINITY) acc += softplus_((double)row[j]); /* -log sig(-x) */
        if (s->trow[i] >= 0) acc += softplus_(-(s->ts[i] - s->tcorr[i])); /* -log sig(x_t) */
        s->part[i] = acc;
    }
    SR_TRY(sr_comm_allreduce_sum(s->c, s->part, b, err));
    double l = 0.0;
    for (int64_t i = 0; i < b; i++) l += s->part[i];
    l /= (double)b;
    if (!isfinite(l)) SR_FAIL(err, SR_ERR_NUMERIC, "nce step: loss is %g (NaN or infinite embeddings)", l);
    *loss = l;
    const double inv_b = 1.0 / (double)b;
    for (int64_t i = 0; i < b; i++) {
        int64_t n;
        float *row = zrow_(s, i, &n);
        for (int64_t j = 0; j < n; j++)
            row[j] = row[j] == -INFINITY ? 0.0f : (float)(sigmoid_((double)row[j]) * inv_b);
        s->gt[i] = s->trow[i] >= 0 ? (float)(-sigmoid_(-(s->ts[i] - s->tcorr[i])) * inv_b) : 0.0f;
    }
    return SR_OK;
}

static sr_status bpr_(sr_sampled *s, const float *q, int64_t b, const float *v, double *loss, sr_error *err)
{
    const int64_t d = s->d;
    for (int64_t i = 0; i < b; i++) s->part[i] = s->ts[i]; /* owner of the target: + s_t */
    for (int64_t e = 0; e < s->np; e++) {
        int64_t i = s->qidx[e];
        s->z[e] = (float)dot_(q + i * d, v + s->rows[e] * d, d);
        s->part[i] -= (double)s->z[e]; /* owner of the negative: - s_n */
    }
    SR_TRY(sr_comm_allreduce_sum(s->c, s->part, b, err));
    double l = 0.0;
    for (int64_t i = 0; i < b; i++) l += softplus_(-s->part[i]);
    l /= (double)b;
    if (!isfinite(l)) SR_FAIL(err, SR_ERR_NUMERIC, "bpr step: loss is %g (NaN or infinite embeddings)", l);
    *loss = l;
    /* dL/ds_t = -sig(-diff) / b, dL/ds_n = +sig(-diff) / b. */
    for (int64_t i = 0; i < b; i++)
        s->gt[i] = s->trow[i] >= 0 ? (float)(-sigmoid_(-s->part[i]) / (double)b) : 0.0f;
    for (int64_t e = 0; e < s->np; e++) {
        s->z[e] = (float)(sigmoid_(-s->part[s->qidx[e]]) / (double)b);
        s->used[e] = 1;
    }
    return SR_OK;
}

/* ---- gradients ----------------------------------------------------------- */

static void grads_(sr_sampled *s, const float *q, int64_t b, const float *v, float *dq, sr_item_grad *dv)
{
    const int64_t d = s->d, np = s->np;
    const bool dense = s->shared && s->kind != SR_LOSS_BPR;
    const bool scaled = dense && s->kind == SR_LOSS_SSM; /* z holds exp(z - m_i), alpha_i apart */
    if (dq) {
        if (dense && np > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b, (int)d, (int)np, 1.0f, s->z, (int)np,
                        s->vc, (int)d, 0.0f, dq, (int)d);
            if (scaled)
                for (int64_t i = 0; i < b; i++)
                    for (int64_t j = 0; j < d; j++) dq[i * d + j] *= s->alpha[i];
        } else
            memset(dq, 0, (size_t)(b * d) * sizeof(float));
        if (!dense)
            for (int64_t e = 0; e < np; e++)
                if (s->used[e] && s->z[e] != 0.0f) {
                    cblas_saxpy((int)d, s->z[e], v + s->rows[e] * d, 1, dq + s->qidx[e] * d, 1);
                }
        for (int64_t i = 0; i < b; i++)
            if (s->trow[i] >= 0) cblas_saxpy((int)d, s->gt[i], v + s->trow[i] * d, 1, dq + i * d, 1);
    }
    if (!dv) return;
    if (dense && np > 0) {
        const float *qq = q;
        if (scaled) {
            for (int64_t i = 0; i < b; i++)
                for (int64_t j = 0; j < d; j++) s->qs[i * d + j] = s->alpha[i] * q[i * d + j];
            qq = s->qs;
        }
        /* dVc^T = Qs^T E (d x np), then transposed: with OpenBLAS 0.3 this
         * shape ran ~15% faster than E^T Qs on the dev VM (1 thread, 1024^2 x 64). */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)np, (int)b, 1.0f, qq, (int)d, s->z,
                    (int)np, 0.0f, s->dvt, (int)np);
        for (int64_t e = 0; e < np; e++)
            for (int64_t j = 0; j < d; j++) s->dvc[e * d + j] = s->dvt[j * np + e];
    }
    int64_t ns = 0;
    for (int64_t e = 0; e < np; e++)
        if (s->used[e]) s->srt[ns++] = (src_){s->rows[e], e};
    for (int64_t i = 0; i < b; i++)
        if (s->trow[i] >= 0) s->srt[ns++] = (src_){s->trow[i], np + i};
    qsort(s->srt, (size_t)ns, sizeof(src_), cmp_src_);
    int64_t nr = -1;
    for (int64_t j = 0; j < ns; j++) {
        const src_ *x = &s->srt[j];
        if (nr < 0 || s->dv_rows[nr] != x->row) {
            nr++;
            s->dv_rows[nr] = x->row;
            memset(s->dv_g + nr * d, 0, (size_t)d * sizeof(float));
        }
        float *out = s->dv_g + nr * d;
        if (x->src >= np) {
            int64_t i = x->src - np;
            cblas_saxpy((int)d, s->gt[i], q + i * d, 1, out, 1);
        } else if (dense) {
            cblas_saxpy((int)d, 1.0f, s->dvc + x->src * d, 1, out, 1);
        } else {
            /* per-query pools and bpr: dL/ds_e q_i of the entry's query */
            cblas_saxpy((int)d, s->z[x->src], q + s->qidx[x->src] * d, 1, out, 1);
        }
    }
    dv->n = nr + 1;
    dv->rows = s->dv_rows;
    dv->g = s->dv_g;
}

/* ---- the step ------------------------------------------------------------ */

sr_status sr_sampled_step(sr_sampled *s, const float *q, int64_t b, const float *v,
                          const int64_t *targets, int64_t step, double *loss, float *dq,
                          sr_item_grad *dv, sr_error *err)
{
    if (b < 1 || b > s->b_max)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampled step: batch %lld outside [1, %lld]", (long long)b,
                (long long)s->b_max);
    if (step < 0) SR_FAIL(err, SR_ERR_INTERNAL, "sampled step: step %lld", (long long)step);
    for (int64_t i = 0; i < b; i++)
        if (targets[i] < 0 || targets[i] >= s->items->n)
            SR_FAIL(err, SR_ERR_DATA, "sampled step: target %lld of query %lld is not an item id in [0, %lld)",
                    (long long)targets[i], (long long)i, (long long)s->items->n);
    s->b = b;
    draw_pool_(s, b, targets, step);
    score_(s, q, b, v, targets);
    targets_(s, q, b, v, targets);
    double l = 0.0;
    if (s->kind == SR_LOSS_SSM) SR_TRY(ssm_(s, b, &l, err));
    else if (s->kind == SR_LOSS_NCE) SR_TRY(nce_(s, b, &l, err));
    else SR_TRY(bpr_(s, q, b, v, &l, err));
    if (loss) *loss = l;
    grads_(s, q, b, v, dq, dv);
    return SR_OK;
}

void sr_sampled_last_sample(const sr_sampled *s, sr_sample_view *out)
{
    out->kind = s->kind;
    out->remove_hits = s->remove_hits;
    out->b = s->b;
    out->n = s->np;
    out->gid = s->gid;
    out->corr = s->corr;
    out->ptr = s->shared ? NULL : s->ptr;
    out->keep = s->keep;
    out->tcorr = s->tcorr;
    out->neg = s->kind == SR_LOSS_BPR ? s->neg : NULL;
}

/* ---- the loss registry's ssm, nce, bpr ---------------------------------- */

static sr_status sampled_create_(void **state, const sr_loss_ops *ops, const sr_loss_init *in,
                                 sr_error *err)
{
    sr_sampled *s = NULL;
    sr_status st = sr_sampled_create(&s, ops->kind, in, err);
    *state = s;
    return st;
}

static void sampled_destroy_(void *state)
{
    sr_sampled *s = state;
    sr_sampled_destroy(&s);
}

static sr_status sampled_step_(void *state, const float *q, int64_t b, const float *v,
                               const int64_t *targets, int64_t step, double *loss, float *dq,
                               sr_item_grad *dv, sr_error *err)
{
    return sr_sampled_step(state, q, b, v, targets, step, loss, dq, dv, err);
}

#define SAMPLED_OPS(kind_, name_, help_) \
    {.name = name_, .help = help_, .kind = kind_, .create = sampled_create_, \
     .destroy = sampled_destroy_, .step = sampled_step_}
const sr_loss_ops sr_ssm_ops = SAMPLED_OPS(SR_LOSS_SSM, "ssm",
    "sampled softmax over loss.negatives draws from loss.proposal (logQ-corrected)");
const sr_loss_ops sr_nce_ops = SAMPLED_OPS(SR_LOSS_NCE, "nce",
    "noise-contrastive estimation against loss.negatives draws from loss.proposal");
const sr_loss_ops sr_bpr_ops = SAMPLED_OPS(SR_LOSS_BPR, "bpr",
    "Bayesian personalised ranking: one uniform negative per query");
