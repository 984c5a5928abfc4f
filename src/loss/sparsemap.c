/* sparsemap.c: distributed thresholds and sparse backward of sparsemax,
 * alpha-entmax and rankmax (contract and algorithm: sparsemap.h).
 *
 * Layout: the pure kernels (map values, stats, threshold search, loss) come
 * first; then the object, the tiled candidate pass, the search rounds (the
 * only collectives: one MAX of 3B before, one SUM of 6 x active per round)
 * and the sparse backward.
 */
#include "loss/sparsemap.h"

#include <cblas.h>
#include <float.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <limits.h>
#include <math.h>
#include <string.h>

#include "comm/collectives.h"
#include "loss/registry.h"
#include "core/blocks.h"
#include "core/log.h"

/* ------------------------------------------------------------------------ */
/* Pure kernels                                                             */
/* ------------------------------------------------------------------------ */

sr_smap_params sr_smap_params_make(sr_loss_kind kind, double alpha, double tol)
{
    sr_smap_params p = {SR_SMAP_SPARSEMAX, 2.0, tol};
    if (kind == SR_LOSS_RANKMAX) {
        p.form = SR_SMAP_RANKMAX;
    } else if (kind == SR_LOSS_ENTMAX) {
        p.alpha = alpha;
        if (alpha == 2.0)
            p.form = SR_SMAP_SPARSEMAX;
        else if (alpha == 1.5)
            p.form = SR_SMAP_ENTMAX15;
        else
            p.form = SR_SMAP_ENTMAX;
    }
    return p;
}

double sr_smap_phi(const sr_smap_params *p, double u)
{
    if (!(u > 0.0)) return 0.0;
    switch (p->form) {
    case SR_SMAP_ENTMAX15: return 0.25 * u * u;
    case SR_SMAP_ENTMAX: return pow((p->alpha - 1.0) * u, 1.0 / (p->alpha - 1.0));
    default: return u;
    }
}

double sr_smap_dphi(const sr_smap_params *p, double u)
{
    if (!(u > 0.0)) return 0.0;
    switch (p->form) {
    case SR_SMAP_ENTMAX15: return 0.5 * u;
    case SR_SMAP_ENTMAX: return pow((p->alpha - 1.0) * u, (2.0 - p->alpha) / (p->alpha - 1.0));
    default: return 1.0;
    }
}

double sr_smap_radius(const sr_smap_params *p)
{
    return (p->form == SR_SMAP_ENTMAX15 || p->form == SR_SMAP_ENTMAX) ? 1.0 / (p->alpha - 1.0) : 1.0;
}

void sr_smap_stats_add(const sr_smap_params *p, double x, const float *z, int64_t n, int64_t skip,
                       sr_smap_stats *st)
{
    sr_smap_stats a = *st;
    for (int64_t j = 0; j < n; j++) {
        double u = (double)z[j] - x;
        if (!(u > 0.0) || j == skip) continue;
        double f = sr_smap_phi(p, u);
        a.f += f;
        a.d += sr_smap_dphi(p, u);
        a.c += 1.0;
        a.s1 += u;
        a.s2 += u * u;
        a.a1 += f * u;
    }
    *st = a;
}

void sr_smap_search_init(sr_smap_search *s, const sr_smap_params *p, double m, double e)
{
    memset(s, 0, sizeof *s);
    s->lo = m - sr_smap_radius(p); /* f(lo) >= 1: the max item alone gives phi(radius) = 1 */
    s->hi = m;                     /* f(hi) = 0 */
    /* Below the largest dropped candidate the lists are incomplete: start at
     * it when it is inside the bracket (one round then tells which side). */
    s->x = e > s->lo ? e : s->lo;
}

/* Threshold on the support {z > lo} from the stats there (closed form for
 * the exact forms, a Newton step otherwise); NAN when it does not exist. */
static double candidate_(const sr_smap_params *p, double lo, const sr_smap_stats *st, int *closed)
{
    *closed = 0;
    if (!(st->c > 0.0)) return NAN;
    if (p->form == SR_SMAP_SPARSEMAX) {
        *closed = 1;
        return lo + (st->s1 - 1.0) / st->c;
    }
    if (p->form == SR_SMAP_ENTMAX15) {
        /* sum ((u - t)/2)^2 = 1 on the support: c t^2 - 2 s1 t + s2 - 4 = 0,
         * smaller root, rationalised (t is small near convergence). No real
         * root (the superset is spread wide): Newton, which is no closed
         * form, so an unchanged count there proves nothing. */
        double disc = st->s1 * st->s1 - st->c * (st->s2 - 4.0);
        if (disc >= 0.0) {
            *closed = 1;
            return lo + (st->s2 - 4.0) / (st->s1 + sqrt(disc));
        }
    }
    return st->d > 0.0 ? lo + (st->f - 1.0) / st->d : NAN;
}

static bool finish_(sr_smap_search *s, double tau, const sr_smap_stats *fin)
{
    s->tau = tau;
    s->fin = *fin;
    s->done = 1;
    return true;
}

bool sr_smap_search_next(sr_smap_search *s, const sr_smap_params *p, const sr_smap_stats *at_x)
{
    const bool exact = p->form == SR_SMAP_SPARSEMAX || p->form == SR_SMAP_ENTMAX15;
    s->rounds++;
    /* Exact forms: the closed form of the support {z > lo} evaluated at
     * itself keeps the same support, so it is the threshold (Michelot). */
    if (exact && s->x_is_cand && at_x->c == s->st_lo.c) return finish_(s, s->x, at_x);
    if (at_x->f >= 1.0) {
        s->lo = s->x;
        s->st_lo = *at_x;
        s->have_lo = 1;
    } else {
        s->hi = s->x;
    }
    if (!exact && at_x->d > 0.0 && fabs((at_x->f - 1.0) / at_x->d) <= p->tol)
        return finish_(s, s->x, at_x);
    double tol = exact ? 1e-13 * fmax(1.0, fabs(s->hi)) : p->tol;
    if (s->hi - s->lo <= tol || s->rounds >= 200) return finish_(s, s->x, at_x);
    s->x_is_cand = 0;
    if (s->have_lo) {
        int closed;
        double c = candidate_(p, s->lo, &s->st_lo, &closed);
        s->cand = c;
        /* c <= lo only when f(lo) == 1 up to rounding: lo is the threshold. */
        if (c <= s->lo) return finish_(s, s->lo, &s->st_lo);
        if (c < s->hi) {
            s->x = c;
            s->x_is_cand = closed;
            return false;
        }
        /* 1.5-entmax: the closed form of a superset of the support can
         * overshoot (it did: c >= hi); Newton from lo stays at or left of
         * tau (f convex, decreasing), where bisection would crawl. */
        if (p->form == SR_SMAP_ENTMAX15 && s->st_lo.d > 0.0) {
            double nt = s->lo + (s->st_lo.f - 1.0) / s->st_lo.d;
            if (nt > s->lo && nt < s->hi) {
                s->x = nt;
                return false;
            }
        }
    }
    double mid = 0.5 * (s->lo + s->hi);
    if (!(mid > s->lo && mid < s->hi)) return finish_(s, s->x, at_x);
    s->x = mid;
    return false;
}

double sr_smap_loss(const sr_smap_params *p, double tau, const sr_smap_stats *fin, double zt)
{
    if (p->form == SR_SMAP_RANKMAX) {
        /* L = S2 / (2G) + G / 2 over the gaps z_j - z_t > 0 (docs/losses.md). */
        return fin->s1 > 0.0 ? fin->s2 / (2.0 * fin->s1) + 0.5 * fin->s1 : 0.0;
    }
    /* FY loss with Tsallis Omega: sum p (z - tau) (1 - 1/a) + 1/(a(a-1)) + tau - z_t,
     * p normalised by f (f = 1 for the exact forms up to rounding). */
    double a = p->alpha;
    double a1 = fin->a1 / fin->f;
    return a1 * (1.0 - 1.0 / a) + 1.0 / (a * (a - 1.0)) + (tau - zt);
}

/* Lanes of the row passes: independent partial sums in a fixed order (the
 * compiler may not reorder one FP sum; 8 lanes let it use vector registers,
 * and the result does not depend on how it does). */
#define SR_LANES 8

/* Max of row[0..n); *bad |= 1 when an entry is NaN or infinite. */
static float row_max_(const float *row, int64_t n, unsigned char *bad)
{
    float mx[SR_LANES], pz[SR_LANES];
    for (int l = 0; l < SR_LANES; l++) mx[l] = -INFINITY, pz[l] = 0.0f;
    int64_t j = 0;
    for (; j + SR_LANES <= n; j += SR_LANES)
        for (int l = 0; l < SR_LANES; l++) {
            float z = row[j + l];
            pz[l] += z * 0.0f; /* NaN if any entry is NaN or infinite */
            mx[l] = z > mx[l] ? z : mx[l];
        }
    for (; j < n; j++) {
        pz[0] += row[j] * 0.0f;
        mx[0] = row[j] > mx[0] ? row[j] : mx[0];
    }
    float m = mx[0], p = pz[0];
    for (int l = 1; l < SR_LANES; l++) m = mx[l] > m ? mx[l] : m, p += pz[l];
    if (p != p) *bad = 1;
    return m;
}

/* Sums over z[0..n) above x for the exact forms (no pow, branch-free;
 * z finite): count, sum u, u^2, u^3 (u = z - x), turned into the stats of
 * sparsemax or entmax-1.5 at x (rankmax uses the sparsemax sums). */
static void stats_exact_(const sr_smap_params *p, double x, const float *z, int64_t n, sr_smap_stats *st)
{
    double C = 0.0, S1 = 0.0, S2 = 0.0, S3 = 0.0;
    int64_t j = 0;
#ifdef __AVX__
    /* 4 double lanes (gcc leaves this loop scalar), summed in a fixed order. */
    const __m256d xv = _mm256_set1_pd(x), zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    __m256d cv = zero, v1 = zero, v2 = zero, v3 = zero;
    for (; j + 4 <= n; j += 4) {
        __m256d u = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(z + j)), xv);
        __m256d m = _mm256_cmp_pd(u, zero, _CMP_GT_OQ);
        __m256d uu = _mm256_and_pd(u, m), u2 = _mm256_mul_pd(uu, uu);
        cv = _mm256_add_pd(cv, _mm256_and_pd(one, m));
        v1 = _mm256_add_pd(v1, uu);
        v2 = _mm256_add_pd(v2, u2);
        v3 = _mm256_add_pd(v3, _mm256_mul_pd(u2, uu));
    }
    double l[4][4];
    _mm256_storeu_pd(l[0], cv);
    _mm256_storeu_pd(l[1], v1);
    _mm256_storeu_pd(l[2], v2);
    _mm256_storeu_pd(l[3], v3);
    for (int k = 0; k < 4; k++) C += l[0][k], S1 += l[1][k], S2 += l[2][k], S3 += l[3][k];
#endif
    for (; j < n; j++) {
        double u = (double)z[j] - x;
        if (!(u > 0.0)) continue;
        C += 1.0;
        S1 += u;
        S2 += u * u;
        S3 += u * u * u;
    }
    st->c = C;
    st->s1 = S1;
    st->s2 = S2;
    if (p->form == SR_SMAP_ENTMAX15) {
        st->f = 0.25 * S2;
        st->d = 0.5 * S1;
        st->a1 = 0.25 * S3;
    } else {
        st->f = S1;
        st->d = C;
        st->a1 = S2;
    }
}

/* Threshold of one query from all of its items z[0..n) held here (m: their
 * max) and the stats at it; -inf and zero stats when n is 0. Exact forms:
 * from x = m - radius (f >= 1), the closed form t of the support {z > x}
 * is the threshold when no item lies in (x, t] (the count above t equals
 * the count above x: the support is fixed); else a Newton step, which stays
 * at or left of tau since f is convex and decreasing (sparsemax: Michelot's
 * step). Whole catalogue in the support: a compaction pass and two stats
 * passes. Other alpha: the bracketed search on the items, dropping those at
 * or below its lower end as it rises. `scr` holds n. */
static double local_tau_(const sr_smap_params *p, const float *z, int64_t n, double m, float *scr,
                         sr_smap_stats *fin)
{
    memset(fin, 0, sizeof *fin);
    if (n == 0) return -INFINITY;
    double x = m - sr_smap_radius(p);
    sr_smap_stats st;
    if (p->form == SR_SMAP_SPARSEMAX || p->form == SR_SMAP_ENTMAX15) {
        /* Items at or below x (<= tau) are out for good: the passes run
         * over the survivors, compacted into scr as x rises. */
        int64_t na = 0, j = 0;
        float xf = (float)x; /* the largest float <= x: z > xf iff z > x */
        if ((double)xf > x) xf = nextafterf(xf, -INFINITY);
#ifdef __AVX__
        for (; j + 8 <= n; j += 8)
            for (int msk = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(z + j), _mm256_set1_ps(xf), _CMP_GT_OQ));
                 msk; msk &= msk - 1)
                scr[na++] = z[j + __builtin_ctz((unsigned)msk)];
#endif
        for (; j < n; j++)
            if (z[j] > xf) scr[na++] = z[j];
        stats_exact_(p, x, scr, na, &st);
        for (int it = 0; it < 200; it++) {
            /* The closed form only (candidate_ falls back to Newton). */
            double t = x + (st.s1 - 1.0) / st.c, disc = st.s1 * st.s1 - st.c * (st.s2 - 4.0);
            if (p->form == SR_SMAP_ENTMAX15) t = disc >= 0.0 ? x + (st.s2 - 4.0) / (st.s1 + sqrt(disc)) : NAN;
            if (t >= x) {
                stats_exact_(p, t, scr, na, fin);
                if (fin->c == st.c) return t; /* no item in (x, t]: the support is fixed */
            }
            double xn = st.d > 0.0 ? x + (st.f - 1.0) / st.d : NAN;
            if (!(xn > x)) break; /* f(x) = 1 up to rounding */
            x = xn;
            int64_t w = 0;
            for (j = 0; j < na; j++) {
                scr[w] = scr[j];
                w += (double)scr[j] > x;
            }
            na = w;
            /* Sparsemax: t = xn, whose stats are already in fin. */
            if (p->form == SR_SMAP_SPARSEMAX && t == x)
                st = *fin;
            else
                stats_exact_(p, x, scr, na, &st);
        }
        *fin = st; /* stalled at rounding: x is tau */
        return x;
    }
    int64_t k = 0;
    for (int64_t j = 0; j < n; j++)
        if ((double)z[j] > x) scr[k++] = z[j];
    sr_smap_search sr;
    sr_smap_search_init(&sr, p, m, -INFINITY);
    for (;;) {
        memset(&st, 0, sizeof st);
        sr_smap_stats_add(p, sr.x, scr, k, -1, &st);
        if (sr_smap_search_next(&sr, p, &st)) break;
        if (!sr.have_lo) continue;
        int64_t w = 0;
        for (int64_t j = 0; j < k; j++)
            if ((double)scr[j] > sr.lo) scr[w++] = scr[j];
        k = w;
    }
    *fin = sr.fin;
    return sr.tau;
}

/* ------------------------------------------------------------------------ */
/* The object                                                               */
/* ------------------------------------------------------------------------ */

#define BLOCK_BYTES ((int64_t)2 << 20) /* a query block of logits stays in cache */

struct sr_sparsemap {
    sr_loss_kind kind;
    sr_smap_params prm;
    const sr_comm *c;
    const sr_shard *items;
    sr_mem *mem;
    int64_t b_max, d, n_local, tile, qb, cap;
    float *logits;        /* qb x tile */
    float *cz;            /* b_max x 2 cap: candidate logits */
    int32_t *crow;        /* b_max x 2 cap: their local rows */
    int64_t *cn;          /* b_max: candidates held */
    float *mloc;          /* b_max: running local max */
    double *eloc, *ztloc; /* b_max: largest dropped, owned target logit */
    double *red;          /* SR_SMAP_NSTATS x b_max: reduction buffer */
    double *gm, *ge, *zt; /* b_max: global max, dropped max, target logit */
    double *zy;           /* b_max: rankmax target logit (dot product) */
    double *tlb;          /* b_max: threshold of the local lists (a lower bound of tau) */
    int64_t *trow;        /* b_max: target's local row or -1 */
    unsigned char *bad;   /* b_max: non-finite logit seen */
    sr_smap_search *srch; /* b_max */
    sr_smap_stats *lst;   /* b_max: this rank's stats at the trial point */
    double *tau, *scale, *rc; /* b_max: threshold, 1/f (rankmax alpha), rankmax c */
    int64_t *supp, *act, *sub;
    float *qsub, *dqsub;  /* b_max x d */
    float *dvtmp;         /* tile x d */
    unsigned char *colnz; /* tile */
    int32_t *slot;        /* n_local: row -> dv slot, -1 */
    int64_t *rows;        /* gcap */
    float *g;             /* gcap x d */
    int64_t ng, gcap;
    /* One rank with a small shard (the block path): whole local rows of bq
     * queries at a time, thresholds found in cache, dense dV. */
    int blk;
    int64_t bq;
    float *rowbuf;        /* bq x n_local logits, then gradients */
    float *scr;           /* max(n_local, 2 cap) floats: local search scratch */
    unsigned char *touch; /* n_local: row holds a support item or a target */
    void *bufs;           /* the one block behind the buffers above but rows, g */
    sr_sparsemap_info info;
};

void sr_sparsemap_destroy(sr_sparsemap **sp)
{
    if (!sp || !*sp) return;
    sr_sparsemap *s = *sp;
    sr_mem *m = s->mem;
    sr_mem_free(m, s->bufs);
    sr_mem_free(m, s->rows);
    sr_mem_free(m, s->g);
    sr_mem_free(m, s);
    *sp = NULL;
}

sr_status sr_sparsemap_create(sr_sparsemap **out, sr_loss_kind kind, const sr_loss_init *in,
                              sr_error *err)
{
    return sr_sparsemap_create_capped(out, kind, in, SR_SPARSEMAP_CAND_DEFAULT, err);
}

sr_status sr_sparsemap_create_capped(sr_sparsemap **out, sr_loss_kind kind, const sr_loss_init *in,
                                     int64_t cap, sr_error *err)
{
    *out = NULL;
    const sr_config *cfg = in->cfg;
    if (kind != SR_LOSS_SPARSEMAX && kind != SR_LOSS_ENTMAX && kind != SR_LOSS_RANKMAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map: loss kind %d is not sparsemax/entmax/rankmax", (int)kind);
    if (kind == SR_LOSS_ENTMAX && !(cfg->loss_alpha > 1.0))
        SR_FAIL(err, SR_ERR_CONFIG, "loss.alpha = %g: entmax needs alpha > 1", cfg->loss_alpha);
    if (kind == SR_LOSS_RANKMAX && cfg->loss_rankmax_k != 1)
        SR_FAIL(err, SR_ERR_CONFIG,
                "loss.rankmax_k = %lld: with one target per example only k = 1 is defined (the "
                "one-hot target must lie in the (n,k)-simplex; docs/losses.md)",
                (long long)cfg->loss_rankmax_k);
    if (in->b_max < 1 || in->d < 1 || in->d > INT_MAX || in->b_max > INT_MAX || cap < 1 ||
        cap > INT_MAX / 2 || cfg->loss_tile < 1 || cfg->loss_tile > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map: batch %lld, dim %lld, cap %lld, tile %lld",
                (long long)in->b_max, (long long)in->d, (long long)cap, (long long)cfg->loss_tile);
    if (in->items->p != in->c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map: shard map over %d ranks, communicator of %d",
                in->items->p, in->c->size);
    int64_t nl = sr_shard_count(in->items, in->c->rank);
    if (nl > INT32_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "sparse map: %lld local rows exceed int32 row ids", (long long)nl);

    sr_sparsemap *s = sr_mem_alloc(in->mem, sizeof *s, 1, "sparse map", err);
    if (!s) return err ? err->code : SR_ERR_NOMEM;
    s->kind = kind;
    s->prm = sr_smap_params_make(kind, cfg->loss_alpha, cfg->loss_bisect_tol);
    s->c = in->c;
    s->items = in->items;
    s->mem = in->mem;
    s->b_max = in->b_max;
    s->d = in->d;
    s->n_local = nl;
    s->tile = cfg->loss_tile;
    int64_t qb = BLOCK_BYTES / ((int64_t)sizeof(float) * s->tile);
    qb = qb < 16 ? 16 : qb / 16 * 16;
    s->qb = qb < s->b_max ? qb : s->b_max;
    s->cap = cap;
    /* Whole rows of a query block in ~2 MiB (at least 16 rows: <= 4 MiB). */
    s->blk = in->c->size == 1 && nl >= 1 && nl <= SR_SPARSEMAP_BLOCK_ITEMS && cap >= SR_SPARSEMAP_BLOCK_MIN_CAP;
    s->bq = s->blk ? sr_blocks_queries(s->b_max, nl) : 0;
    const size_t B = (size_t)s->b_max, D = (size_t)s->d, T = (size_t)s->tile, C2 = 2 * (size_t)cap;
    /* The block path holds no candidate lists nor packed queries. */
    const size_t BL = s->blk ? 1 : B;
    sr_mem *m = s->mem;
    s->gcap = nl < 4096 || s->blk ? (nl > 0 ? nl : 1) : 4096;
    const size_t NL = (size_t)nl;
    const sr_mem_buf bufs[] = {
        SR_MEM_BUF(s->logits, (size_t)s->qb * T), SR_MEM_BUF(s->cz, BL * C2),
        SR_MEM_BUF(s->crow, BL * C2),   SR_MEM_BUF(s->cn, B),      SR_MEM_BUF(s->mloc, B),
        SR_MEM_BUF(s->eloc, B),         SR_MEM_BUF(s->ztloc, B),   SR_MEM_BUF(s->red, B * SR_SMAP_NSTATS),
        SR_MEM_BUF(s->gm, B),           SR_MEM_BUF(s->ge, B),      SR_MEM_BUF(s->zt, B),
        SR_MEM_BUF(s->zy, B),           SR_MEM_BUF(s->tlb, B),     SR_MEM_BUF(s->trow, B),
        SR_MEM_BUF(s->bad, B),          SR_MEM_BUF(s->srch, B),    SR_MEM_BUF(s->lst, B),
        SR_MEM_BUF(s->tau, B),          SR_MEM_BUF(s->scale, B),   SR_MEM_BUF(s->rc, B),
        SR_MEM_BUF(s->supp, B),         SR_MEM_BUF(s->act, B),     SR_MEM_BUF(s->sub, B),
        SR_MEM_BUF(s->qsub, BL * D),    SR_MEM_BUF(s->dqsub, BL * D),
        SR_MEM_BUF(s->dvtmp, T * D),    SR_MEM_BUF(s->colnz, T),   SR_MEM_BUF(s->slot, NL + 1),
        SR_MEM_BUF(s->rowbuf, s->blk ? (size_t)s->bq * NL : 1),
        SR_MEM_BUF(s->scr, NL > C2 ? NL : C2),
        SR_MEM_BUF(s->touch, NL + 1),
    };
    s->bufs = sr_mem_bufset_alloc(m, bufs, sizeof bufs / sizeof bufs[0], "sparse map buffers", err);
    /* dv grows with the support (slot_): its own blocks. */
    s->rows = sr_mem_calloc(m, (size_t)s->gcap, sizeof(int64_t), "sparse map dv rows", err);
    s->g = sr_mem_calloc(m, (size_t)s->gcap * D, sizeof(float), "sparse map dv", err);
    if (!s->bufs || !s->rows || !s->g) {
        sr_sparsemap_destroy(&s);
        return err ? err->code : SR_ERR_NOMEM;
    }
    for (int64_t j = 0; j < nl; j++) s->slot[j] = -1;
    *out = s;
    return SR_OK;
}

const double *sr_sparsemap_tau(const sr_sparsemap *s) { return s->tau; }
const int64_t *sr_sparsemap_support(const sr_sparsemap *s) { return s->supp; }
void sr_sparsemap_get_info(const sr_sparsemap *s, sr_sparsemap_info *info) { *info = s->info; }

double sr_sparsemap_prob(const sr_sparsemap *s, int64_t i, double z)
{
    if (s->prm.form == SR_SMAP_RANKMAX) return s->scale[i] * fmax(z - s->tau[i], 0.0);
    return sr_smap_phi(&s->prm, z - s->tau[i]) * s->scale[i];
}

/* ------------------------------------------------------------------------ */
/* Forward: tiles -> max, target logit, capped candidate lists              */
/* ------------------------------------------------------------------------ */

/* Keep the `keep` largest of n (z, row) pairs in front (quickselect). */
static void select_top_(float *z, int32_t *r, int64_t n, int64_t keep)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float piv = z[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (z[i] > piv) i++;
            while (z[j] < piv) j--;
            if (i <= j) {
                float tz = z[i];
                z[i] = z[j];
                z[j] = tz;
                int32_t tr = r[i];
                r[i] = r[j];
                r[j] = tr;
                i++;
                j--;
            }
        }
        if (keep - 1 <= j)
            hi = j;
        else if (keep - 1 >= i)
            lo = i;
        else
            break;
    }
}

/* Append the items of one logit row above the query's floor. */
static void collect_row_(sr_sparsemap *s, int64_t i, const float *row, int64_t nt, int64_t j0,
                         double floor_z, int64_t skip)
{
    const int64_t c2 = 2 * s->cap;
    float *cz = s->cz + i * c2;
    int32_t *cr = s->crow + i * c2;
    for (int64_t j = 0; j < nt; j++) {
        double z = (double)row[j];
        if (!(z > floor_z) || !(z > s->eloc[i]) || j == skip) continue;
        if (s->cn[i] == c2) {
            /* Full: keep the largest cap, remember the largest dropped. */
            select_top_(cz, cr, c2, s->cap);
            float e = cz[s->cap];
            for (int64_t k = s->cap + 1; k < c2; k++) e = cz[k] > e ? cz[k] : e;
            if ((double)e > s->eloc[i]) s->eloc[i] = e;
            s->cn[i] = s->cap;
            if (!(z > s->eloc[i])) continue;
        }
        cz[s->cn[i]] = row[j];
        cr[s->cn[i]] = (int32_t)(j0 + j);
        s->cn[i]++;
    }
}

static void forward_pass_(sr_sparsemap *s, const float *q, int64_t b, const float *v)
{
    const int64_t d = s->d, tile = s->tile, qb = s->qb;
    const double r = sr_smap_radius(&s->prm);
    const bool rank = s->prm.form == SR_SMAP_RANKMAX;
    for (int64_t i = 0; i < b; i++) {
        s->cn[i] = 0;
        s->mloc[i] = -INFINITY;
        s->eloc[i] = -INFINITY;
        s->ztloc[i] = -INFINITY;
        s->bad[i] = 0;
    }
    for (int64_t j0 = 0; j0 < s->n_local; j0 += tile) {
        int64_t nt = s->n_local - j0 < tile ? s->n_local - j0 : tile;
        for (int64_t i0 = 0; i0 < b; i0 += qb) {
            int64_t nb = b - i0 < qb ? b - i0 : qb;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f,
                        q + i0 * d, (int)d, v + j0 * d, (int)d, 0.0f, s->logits, (int)nt);
            for (int64_t ii = 0; ii < nb; ii++) {
                const int64_t i = i0 + ii;
                const float *row = s->logits + ii * nt;
                float mx = row_max_(row, nt, &s->bad[i]);
                mx = mx > s->mloc[i] ? mx : s->mloc[i];
                s->mloc[i] = mx;
                int64_t tr = s->trow[i];
                int64_t skip = -1;
                if (tr >= j0 && tr < j0 + nt) {
                    s->ztloc[i] = row[tr - j0];
                    if (rank) skip = tr - j0; /* rankmax: the target is the reference point */
                }
                double fl = rank ? s->zy[i] : (double)mx - r;
                collect_row_(s, i, row, nt, j0, fl, skip);
            }
        }
    }
}

/* Stats at each listed query's trial point by recomputing its logits. */
static void recompute_stats_(sr_sparsemap *s, const float *q, const float *v, const int64_t *sub,
                             int64_t nsub)
{
    const int64_t d = s->d, tile = s->tile, qb = s->qb;
    const bool rank = s->prm.form == SR_SMAP_RANKMAX;
    for (int64_t k = 0; k < nsub; k++) memcpy(s->qsub + k * d, q + sub[k] * d, (size_t)d * sizeof(float));
    for (int64_t j0 = 0; j0 < s->n_local; j0 += tile) {
        int64_t nt = s->n_local - j0 < tile ? s->n_local - j0 : tile;
        for (int64_t k0 = 0; k0 < nsub; k0 += qb) {
            int64_t nb = nsub - k0 < qb ? nsub - k0 : qb;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f,
                        s->qsub + k0 * d, (int)d, v + j0 * d, (int)d, 0.0f, s->logits, (int)nt);
            for (int64_t kk = 0; kk < nb; kk++) {
                int64_t i = sub[k0 + kk], tr = s->trow[i];
                int64_t skip = rank && tr >= j0 && tr < j0 + nt ? tr - j0 : -1;
                double x = rank ? s->zy[i] : s->srch[i].x;
                sr_smap_stats_add(&s->prm, x, s->logits + kk * nt, nt, skip, &s->lst[i]);
            }
        }
    }
}

/* One search round over the active queries: local stats, one all-reduce. */
static sr_status round_(sr_sparsemap *s, const float *q, const float *v, int64_t nact, sr_error *err)
{
    const bool rank = s->prm.form == SR_SMAP_RANKMAX;
    int64_t nsub = 0;
    for (int64_t k = 0; k < nact; k++) {
        int64_t i = s->act[k];
        double x = rank ? s->zy[i] : s->srch[i].x;
        memset(&s->lst[i], 0, sizeof s->lst[i]);
        if (x >= s->ge[i])
            sr_smap_stats_add(&s->prm, x, s->cz + i * 2 * s->cap, s->cn[i], -1, &s->lst[i]);
        else
            s->sub[nsub++] = i; /* the lists miss items above x: count from tiles */
    }
    if (nsub > 0) {
        recompute_stats_(s, q, v, s->sub, nsub);
        s->info.recompute_rounds++;
    }
    for (int64_t k = 0; k < nact; k++)
        memcpy(s->red + k * SR_SMAP_NSTATS, &s->lst[s->act[k]], sizeof(sr_smap_stats));
    s->info.rounds++;
    return sr_comm_allreduce_sum(s->c, s->red, nact * SR_SMAP_NSTATS, err);
}

/* Drop candidates that can no longer be in the support (z <= lo). */
static void compact_(sr_sparsemap *s, int64_t i, double lo)
{
    float *cz = s->cz + i * 2 * s->cap;
    int32_t *cr = s->crow + i * 2 * s->cap;
    int64_t w = 0;
    for (int64_t k = 0; k < s->cn[i]; k++)
        if ((double)cz[k] > lo) {
            cz[w] = cz[k];
            cr[w++] = cr[k];
        }
    s->cn[i] = w;
}

/* Rankmax's scale, gradient constant and support of query i from the stats
 * of its items above the target. */
static void rank_finish_(sr_sparsemap *s, int64_t i, const sr_smap_stats *st)
{
    s->srch[i].fin = *st;
    s->tau[i] = s->zy[i];
    double g = st->s1;
    s->scale[i] = g > 0.0 ? 1.0 / g : 0.0;
    s->rc[i] = g > 0.0 ? 0.5 * (1.0 - st->s2 / (g * g)) : 0.0;
    s->supp[i] = g > 0.0 ? (int64_t)st->c : 1;
}

static sr_status search_(sr_sparsemap *s, const float *q, int64_t b, const float *v, sr_error *err)
{
    const sr_smap_params *p = &s->prm;
    if (p->form == SR_SMAP_RANKMAX) {
        for (int64_t i = 0; i < b; i++) s->act[i] = i;
        SR_TRY(round_(s, q, v, b, err));
        for (int64_t i = 0; i < b; i++) {
            sr_smap_stats st;
            memcpy(&st, s->red + i * SR_SMAP_NSTATS, sizeof st);
            rank_finish_(s, i, &st);
        }
        return SR_OK;
    }
    /* The lists' own threshold is <= tau (a subset of the items sums to at
     * most F): it starts the bracket, and on one rank it is tau itself when
     * the lists hold every item above it (nothing dropped at or above). */
    int64_t nact = 0;
    for (int64_t i = 0; i < b; i++) {
        sr_smap_search *sr = &s->srch[i];
        sr_smap_search_init(sr, p, s->gm[i], s->ge[i]);
        double lb = s->tlb[i];
        if (s->c->size == 1 && lb > s->ge[i]) {
            sr->tau = lb;
            sr->fin = s->lst[i];
            sr->done = 1;
            continue;
        }
        if (lb > sr->lo && lb < sr->hi) {
            sr->lo = lb;
            sr->x = s->ge[i] > lb ? s->ge[i] : lb;
        }
        s->act[nact++] = i;
    }
    while (nact > 0) {
        SR_TRY(round_(s, q, v, nact, err));
        int64_t keep = 0;
        for (int64_t k = 0; k < nact; k++) {
            int64_t i = s->act[k];
            sr_smap_stats st;
            memcpy(&st, s->red + k * SR_SMAP_NSTATS, sizeof st);
            if (!sr_smap_search_next(&s->srch[i], p, &st)) {
                s->act[keep++] = i;
                if (s->srch[i].have_lo) compact_(s, i, s->srch[i].lo);
            }
        }
        nact = keep;
    }
    for (int64_t i = 0; i < b; i++) {
        const sr_smap_search *sr = &s->srch[i];
        s->tau[i] = sr->tau;
        s->scale[i] = sr->fin.f > 0.0 ? 1.0 / sr->fin.f : 0.0;
        s->supp[i] = (int64_t)sr->fin.c;
    }
    return SR_OK;
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */
/* ------------------------------------------------------------------------ */

/* Gradient coefficient dL/dz_ij * B of a non-target item with logit z. */
static double coef_(const sr_sparsemap *s, int64_t i, double z)
{
    double u = z - s->tau[i];
    if (!(u > 0.0)) return 0.0;
    if (s->prm.form == SR_SMAP_RANKMAX) return s->scale[i] > 0.0 ? s->scale[i] * u + s->rc[i] : 0.0;
    return sr_smap_phi(&s->prm, u) * s->scale[i];
}

/* dv slot of a local row, growing the buffers when needed (abort on OOM:
 * the peers are past the last collective of the step, but the next step's
 * would hang). */
static float *slot_(sr_sparsemap *s, int64_t row)
{
    if (s->slot[row] >= 0) return s->g + (int64_t)s->slot[row] * s->d;
    if (s->ng == s->gcap) {
        sr_error e;
        sr_error_clear(&e);
        int64_t nc = s->gcap * 2 < s->n_local ? s->gcap * 2 : s->n_local;
        int64_t *nr = sr_mem_calloc(s->mem, (size_t)nc, sizeof(int64_t), "sparse map dv rows", &e);
        float *ng = sr_mem_calloc(s->mem, (size_t)nc * (size_t)s->d, sizeof(float), "sparse map dv", &e);
        if (!nr || !ng) sr_comm_abort(s->c, &e);
        memcpy(nr, s->rows, (size_t)s->ng * sizeof(int64_t));
        memcpy(ng, s->g, (size_t)(s->ng * s->d) * sizeof(float));
        sr_mem_free(s->mem, s->rows);
        sr_mem_free(s->mem, s->g);
        s->rows = nr;
        s->g = ng;
        s->gcap = nc;
    }
    int64_t k = s->ng++;
    s->slot[row] = (int32_t)k;
    s->rows[k] = row;
    float *gr = s->g + k * s->d;
    memset(gr, 0, (size_t)s->d * sizeof(float));
    return gr;
}

/* Recomputed backward for queries whose support is not in the lists. */
static void backward_tiles_(sr_sparsemap *s, const float *q, const float *v, int64_t b, const int64_t *sub,
                            int64_t nsub, float *dq)
{
    const int64_t d = s->d, tile = s->tile, qb = s->qb;
    const float w = (float)(1.0 / (double)b);
    const bool rank = s->prm.form == SR_SMAP_RANKMAX;
    for (int64_t k = 0; k < nsub; k++) memcpy(s->qsub + k * d, q + sub[k] * d, (size_t)d * sizeof(float));
    memset(s->dqsub, 0, (size_t)(nsub * d) * sizeof(float));
    for (int64_t j0 = 0; j0 < s->n_local; j0 += tile) {
        int64_t nt = s->n_local - j0 < tile ? s->n_local - j0 : tile;
        const float *vt = v + j0 * d;
        for (int64_t k0 = 0; k0 < nsub; k0 += qb) {
            int64_t nb = nsub - k0 < qb ? nsub - k0 : qb;
            const float *qblk = s->qsub + k0 * d;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f, qblk,
                        (int)d, vt, (int)d, 0.0f, s->logits, (int)nt);
            memset(s->colnz, 0, (size_t)nt);
            int any = 0;
            for (int64_t kk = 0; kk < nb; kk++) {
                int64_t i = sub[k0 + kk], tr = s->trow[i];
                float *row = s->logits + kk * nt;
                for (int64_t j = 0; j < nt; j++) {
                    double g = (rank && tr == j0 + j) ? 0.0 : coef_(s, i, (double)row[j]);
                    row[j] = (float)g * w;
                    if (g != 0.0) s->colnz[j] = 1, any = 1;
                }
            }
            if (!any) continue;
            /* dV_tile = G^T Q_blk, dQ_blk += G V_tile (dense within the tile). */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nt, (int)d, (int)nb, 1.0f, s->logits,
                        (int)nt, qblk, (int)d, 0.0f, s->dvtmp, (int)d);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)nt, 1.0f, s->logits,
                        (int)nt, vt, (int)d, 1.0f, s->dqsub + k0 * d, (int)d);
            for (int64_t j = 0; j < nt; j++) {
                if (!s->colnz[j]) continue;
                float *gr = slot_(s, j0 + j);
                const float *src = s->dvtmp + j * d;
                for (int64_t k = 0; k < d; k++) gr[k] += src[k];
            }
        }
    }
    for (int64_t k = 0; dq && k < nsub; k++) {
        float *dst = dq + sub[k] * d;
        const float *src = s->dqsub + k * d;
        for (int64_t c = 0; c < d; c++) dst[c] += src[c];
    }
}

static void backward_(sr_sparsemap *s, const float *q, int64_t b, const float *v, float *dq)
{
    const int64_t d = s->d;
    const double w = 1.0 / (double)b;
    const bool rank = s->prm.form == SR_SMAP_RANKMAX;
    for (int64_t k = 0; k < s->ng; k++) s->slot[s->rows[k]] = -1;
    s->ng = 0;
    if (dq) memset(dq, 0, (size_t)(b * d) * sizeof(float));
    int64_t nsub = 0;
    for (int64_t i = 0; i < b; i++) {
        if (!(s->tau[i] >= s->ge[i])) {
            s->sub[nsub++] = i; /* support reaches below the dropped candidates */
            continue;
        }
        const float *qi = q + i * d;
        float *dqi = dq ? dq + i * d : NULL;
        const float *cz = s->cz + i * 2 * s->cap;
        const int32_t *cr = s->crow + i * 2 * s->cap;
        for (int64_t k = 0; k < s->cn[i]; k++) {
            double g = coef_(s, i, (double)cz[k]);
            if (g == 0.0) continue;
            float gw = (float)(g * w);
            const float *vj = v + (int64_t)cr[k] * d;
            float *gr = slot_(s, cr[k]);
            for (int64_t c = 0; c < d; c++) gr[c] += gw * qi[c];
            if (dqi)
                for (int64_t c = 0; c < d; c++) dqi[c] += gw * vj[c];
        }
    }
    s->info.overflow_queries = nsub;
    if (nsub > 0) backward_tiles_(s, q, v, b, s->sub, nsub, dq);
    /* The target's -1 (rankmax: -1 - |A| c), on its owner only. */
    for (int64_t i = 0; i < b; i++) {
        int64_t tr = s->trow[i];
        if (tr < 0) continue;
        double wt = w;
        if (rank) wt = s->scale[i] > 0.0 ? w * (1.0 + s->srch[i].fin.c * s->rc[i]) : 0.0;
        float gw = (float)wt;
        const float *qi = q + i * d, *vt = v + tr * d;
        float *gr = slot_(s, tr);
        for (int64_t c = 0; c < d; c++) gr[c] -= gw * qi[c];
        if (dq)
            for (int64_t c = 0; c < d; c++) dq[i * d + c] -= gw * vt[c];
    }
}

/* ------------------------------------------------------------------------ */
/* Block path: one rank, whole rows in cache                                */
/* ------------------------------------------------------------------------ */

/* Threshold, stats, support and loss of query i from its whole row (one
 * rank: the row is the catalogue); SR_ERR_NUMERIC on a non-finite logit. */
static sr_status row_threshold_(sr_sparsemap *s, int64_t i, float *row, double *loss, sr_error *err)
{
    const int64_t n = s->n_local, tr = s->trow[i];
    unsigned char bad = 0;
    float mx = row_max_(row, n, &bad);
    s->gm[i] = bad ? INFINITY : (double)mx;
    s->zt[i] = row[tr];
    if (!isfinite(s->gm[i]) || !isfinite(s->zt[i]) || (s->prm.form == SR_SMAP_RANKMAX && !isfinite(s->zy[i])))
        SR_FAIL(err, SR_ERR_NUMERIC,
                "sparse map step: query %lld has non-finite logits (max %g, target %g): NaN or infinite "
                "embeddings",
                (long long)i, s->gm[i], s->zt[i]);
    sr_smap_search *sr = &s->srch[i];
    if (s->prm.form == SR_SMAP_RANKMAX) {
        /* Gaps above the target, the target itself masked out (phi(u) = u:
         * the sparsemax sums). */
        sr_smap_stats st;
        float keep = row[tr];
        row[tr] = -FLT_MAX;
        stats_exact_(&s->prm, s->zy[i], row, n, &st);
        row[tr] = keep;
        rank_finish_(s, i, &st);
        *loss = sr_smap_loss(&s->prm, s->tau[i], &st, s->zy[i]);
        return SR_OK;
    }
    s->tau[i] = local_tau_(&s->prm, row, n, (double)mx, s->scr, &sr->fin);
    s->scale[i] = sr->fin.f > 0.0 ? 1.0 / sr->fin.f : 0.0;
    s->supp[i] = (int64_t)sr->fin.c;
    *loss = sr_smap_loss(&s->prm, s->tau[i], &sr->fin, s->zt[i]);
    return SR_OK;
}

/* row[j] = (k2 u + k1) u + k0 where u = row[j] - tau > 0, else 0 (double
 * arithmetic, float result). */
static void grad_poly_(float *row, int64_t n, double tau, double k2, double k1, double k0)
{
    int64_t j = 0;
#ifdef __AVX__
    const __m256d tv = _mm256_set1_pd(tau), zero = _mm256_setzero_pd(), a2 = _mm256_set1_pd(k2),
                  a1 = _mm256_set1_pd(k1), a0 = _mm256_set1_pd(k0);
    for (; j + 4 <= n; j += 4) {
        __m256d u = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + j)), tv);
        __m256d m = _mm256_cmp_pd(u, zero, _CMP_GT_OQ);
        __m256d g = _mm256_add_pd(_mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(a2, u), a1), u), a0);
        _mm_storeu_ps(row + j, _mm256_cvtpd_ps(_mm256_and_pd(g, m)));
    }
#endif
    for (; j < n; j++) {
        double u = (double)row[j] - tau;
        row[j] = u > 0.0 ? (float)((k2 * u + k1) * u + k0) : 0.0f;
    }
}

/* Overwrite query i's row with its gradient row dL/dz / B (the target's
 * -1 included). */
static void row_gradient_(sr_sparsemap *s, int64_t i, float *row, int64_t b)
{
    const int64_t n = s->n_local, tr = s->trow[i];
    const double w = 1.0 / (double)b, tau = s->tau[i], sc = s->scale[i] * w;
    switch (s->prm.form) {
    case SR_SMAP_RANKMAX:
        grad_poly_(row, n, tau, 0.0, sc, s->scale[i] > 0.0 ? s->rc[i] * w : 0.0);
        row[tr] = s->scale[i] > 0.0 ? (float)(-w * (1.0 + s->srch[i].fin.c * s->rc[i])) : 0.0f;
        return;
    case SR_SMAP_ENTMAX15: grad_poly_(row, n, tau, 0.25 * sc, 0.0, 0.0); break;
    case SR_SMAP_SPARSEMAX: grad_poly_(row, n, tau, 0.0, sc, 0.0); break;
    default:
        for (int64_t j = 0; j < n; j++) row[j] = (float)(sr_smap_phi(&s->prm, (double)row[j] - tau) * sc);
    }
    row[tr] = (float)((double)row[tr] - w);
}

/* dL/dz_j of query i (times B) for item j with logit z, the target's -1
 * included when j is the target. */
static double row_coef_(const sr_sparsemap *s, int64_t i, int64_t j, double z)
{
    if (j != s->trow[i]) return coef_(s, i, z);
    if (s->prm.form == SR_SMAP_RANKMAX) return s->scale[i] > 0.0 ? -(1.0 + s->srch[i].fin.c * s->rc[i]) : 0.0;
    return coef_(s, i, z) - 1.0;
}

/* dq_i = sum_j g_j v_j and dV_j += g_j q_i over query i's support and
 * target only: one scan of its logit row for z > tau (AVX compare against
 * the largest float <= tau, which selects exactly those). */
static void row_sparse_backward_(sr_sparsemap *s, int64_t i, const float *row, const float *qi, const float *v,
                                 float *dqi, int64_t b)
{
    const int64_t n = s->n_local, d = s->d, tr = s->trow[i];
    const double w = 1.0 / (double)b, tau = s->tau[i];
    float tf = (float)tau;
    if ((double)tf > tau) tf = nextafterf(tf, -INFINITY);
    if (dqi) memset(dqi, 0, (size_t)d * sizeof(float));
    int64_t hits[8], nh, j = 0;
    for (;;) {
        nh = 0;
#ifdef __AVX__
        if (j + 8 <= n) {
            int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + j), _mm256_set1_ps(tf), _CMP_GT_OQ));
            for (; m; m &= m - 1) hits[nh++] = j + __builtin_ctz((unsigned)m);
            j += 8;
        } else
#endif
        if (j < n) {
            if (row[j] > tf) hits[nh++] = j;
            j++;
        } else {
            hits[nh++] = tr; /* last: the target, always in dv */
            j = n + 1;
        }
        for (int64_t h = 0; h < nh; h++) {
            const int64_t jj = hits[h];
            if (jj == tr && j <= n) continue; /* the target once, at the end */
            const float gw = (float)(row_coef_(s, i, jj, (double)row[jj]) * w);
            s->touch[jj] = 1;
            if (gw == 0.0f) continue;
            const float *vj = v + jj * d;
            float *gr = s->g + jj * d;
            for (int64_t c = 0; c < d; c++) gr[c] += gw * qi[c];
            if (dqi)
                for (int64_t c = 0; c < d; c++) dqi[c] += gw * vj[c];
        }
        if (j > n) break;
    }
}

/* The whole step on the block path: per block of bq queries one SGEMM for
 * the rows, thresholds and gradients in place, then dQ_blk = G V and
 * dV += G^T Q_blk (sparse axpys instead when the block's gradient is
 * sparse). dV is dense (n_local x d) and packed to the touched rows. */
static sr_status block_step_(sr_sparsemap *s, const float *q, int64_t b, const float *v, double *loss_acc,
                             float *dq, sr_error *err)
{
    const int64_t n = s->n_local, d = s->d, bq = s->bq;
    double tg = 0.0, tf = 0.0, ts = 0.0, tb = 0.0, acc = 0.0;
    memset(s->g, 0, (size_t)(n * d) * sizeof(float));
    memset(s->touch, 0, (size_t)n);
    for (int64_t i0 = 0; i0 < b; i0 += bq) {
        const int64_t nb = b - i0 < bq ? b - i0 : bq;
        const float *qb = q + i0 * d;
        double t0 = sr_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)d, 1.0f, qb, (int)d, v, (int)d,
                    0.0f, s->rowbuf, (int)n);
        double t1 = sr_time_now();
        for (int64_t ii = 0; ii < nb; ii++) {
            double l = 0.0;
            SR_TRY(row_threshold_(s, i0 + ii, s->rowbuf + ii * n, &l, err));
            acc += l;
        }
        double t2 = sr_time_now(), t3 = t2;
        int64_t nz = 0;
        for (int64_t ii = 0; ii < nb; ii++) nz += s->supp[i0 + ii] + 1;
        if (nz * 16 >= nb * n) {
            /* Dense enough for the GEMMs (sparse axpys run ~16x below their rate). */
            for (int64_t ii = 0; ii < nb; ii++) {
                float *gi = s->rowbuf + ii * n;
                row_gradient_(s, i0 + ii, gi, b);
                s->touch[s->trow[i0 + ii]] = 1;
                for (int64_t j = 0; j < n; j++) s->touch[j] |= gi[j] != 0.0f;
            }
            t3 = sr_time_now();
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)n, 1.0f, s->rowbuf,
                            (int)n, v, (int)d, 0.0f, dq + i0 * d, (int)d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)d, (int)nb, 1.0f, s->rowbuf, (int)n,
                        qb, (int)d, 1.0f, s->g, (int)d);
        } else {
            for (int64_t ii = 0; ii < nb; ii++)
                row_sparse_backward_(s, i0 + ii, s->rowbuf + ii * n, qb + ii * d, v, dq ? dq + (i0 + ii) * d : NULL, b);
        }
        double t4 = sr_time_now();
        tg += t1 - t0 + (t3 > t2 ? t4 - t3 : 0.0);
        tf += t1 - t0;
        ts += t2 - t1;
        tb += t4 - t2;
    }
    /* Pack dV to the touched rows, in row order (slot k <= row j). */
    int64_t k = 0;
    for (int64_t j = 0; j < n; j++) {
        if (!s->touch[j]) continue;
        if (k != j) memcpy(s->g + k * d, s->g + j * d, (size_t)d * sizeof(float));
        s->rows[k++] = j;
    }
    s->ng = k;
    s->info.t_gemm = tg;
    s->info.t_forward = tf;
    s->info.t_search = ts;
    s->info.t_backward = tb;
    *loss_acc = acc;
    return SR_OK;
}

/* ------------------------------------------------------------------------ */
/* The step                                                                 */
/* ------------------------------------------------------------------------ */

static sr_status list_step_(sr_sparsemap *s, const float *q, int64_t b, const float *v, double *loss, float *dq,
                            double t0, sr_error *err);

sr_status sr_sparsemap_step(sr_sparsemap *s, const float *q, int64_t b, const float *v,
                            const int64_t *targets, int64_t step, double *loss, float *dq,
                            sr_item_grad *dv, sr_error *err)
{
    const sr_comm *c = s->c;
    const sr_shard *sh = s->items;
    if (b < 1 || b > s->b_max) {
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "sparse map step: batch %lld outside [1, %lld]",
                     (long long)b, (long long)s->b_max);
        sr_comm_abort(c, err);
    }
    /* Replicated inputs: every rank returns the same verdict, before any collective. */
    for (int64_t i = 0; i < b; i++) {
        int64_t t = targets[i];
        if (t < 0 || t >= sh->n)
            SR_FAIL(err, SR_ERR_DATA, "sparse map step: target %lld of query %lld is not an item id in [0, %lld)",
                    (long long)t, (long long)i, (long long)sh->n);
        s->trow[i] = sr_shard_owner(sh, t) == c->rank ? sr_shard_local(sh, t) : -1;
    }
    memset(&s->info, 0, sizeof s->info);
    const int64_t d = s->d;
    double t0 = sr_time_now();
    if (s->prm.form == SR_SMAP_RANKMAX) {
        /* The target logits first: they are rankmax's candidate floor. */
        for (int64_t i = 0; i < b; i++) {
            double z = -INFINITY;
            if (s->trow[i] >= 0) {
                const float *qi = q + i * d, *vt = v + s->trow[i] * d;
                z = 0.0;
                for (int64_t k = 0; k < d; k++) z += (double)qi[k] * (double)vt[k];
            }
            s->zy[i] = z;
        }
        SR_TRY(sr_comm_allreduce_max(c, s->zy, b, err));
    }
    if (s->blk) {
        /* One rank, rows in cache: no lists, no rounds. */
        double acc = 0.0;
        SR_TRY(block_step_(s, q, b, v, &acc, dq, err));
        double l = acc / (double)b;
        if (!isfinite(l)) SR_FAIL(err, SR_ERR_NUMERIC, "sparse map step: loss is %g", l);
        if (loss) *loss = l;
    } else {
        SR_TRY(list_step_(s, q, b, v, loss, dq, t0, err));
    }
    s->info.dv_rows = s->ng;
    if (dv) {
        dv->n = s->ng;
        dv->rows = s->rows;
        dv->g = s->g;
    }
    (void)step;
    return SR_OK;
}

/* The list path: tiled pass, search rounds, sparse backward (sparsemap.h). */
static sr_status list_step_(sr_sparsemap *s, const float *q, int64_t b, const float *v, double *loss, float *dq,
                            double t0, sr_error *err)
{
    const sr_comm *c = s->c;
    forward_pass_(s, q, b, v);
    for (int64_t i = 0; i < b; i++) {
        s->red[i] = s->bad[i] ? INFINITY : (double)s->mloc[i];
        s->red[b + i] = s->eloc[i];
        s->red[2 * b + i] = s->ztloc[i];
        /* The local lists' threshold (their stats kept in lst: exact at one rank). */
        s->red[3 * b + i] = s->prm.form == SR_SMAP_RANKMAX
                                ? -INFINITY
                                : local_tau_(&s->prm, s->cz + i * 2 * s->cap, s->cn[i], (double)s->mloc[i], s->scr,
                                             &s->lst[i]);
    }
    SR_TRY(sr_comm_allreduce_max(c, s->red, 4 * b, err));
    for (int64_t i = 0; i < b; i++) {
        s->tlb[i] = s->red[3 * b + i];
        s->gm[i] = s->red[i];
        s->ge[i] = s->red[b + i];
        s->zt[i] = s->red[2 * b + i];
        if (!isfinite(s->gm[i]) || !isfinite(s->zt[i]) ||
            (s->prm.form == SR_SMAP_RANKMAX && !isfinite(s->zy[i])))
            SR_FAIL(err, SR_ERR_NUMERIC,
                    "sparse map step: query %lld has non-finite logits (max %g, target %g): NaN or "
                    "infinite embeddings",
                    (long long)i, s->gm[i], s->zt[i]);
    }
    double t1 = sr_time_now();
    SR_TRY(search_(s, q, b, v, err));
    double t2 = sr_time_now();
    double acc = 0.0;
    for (int64_t i = 0; i < b; i++) {
        double zt = s->prm.form == SR_SMAP_RANKMAX ? s->zy[i] : s->zt[i];
        acc += sr_smap_loss(&s->prm, s->tau[i], &s->srch[i].fin, zt);
    }
    double l = acc / (double)b;
    if (!isfinite(l)) SR_FAIL(err, SR_ERR_NUMERIC, "sparse map step: loss is %g", l);
    if (loss) *loss = l;
    backward_(s, q, b, v, dq);
    double t3 = sr_time_now();
    s->info.t_forward = t1 - t0;
    s->info.t_search = t2 - t1;
    s->info.t_backward = t3 - t2;
    return SR_OK;
}

/* ---- the loss registry's sparsemax, entmax, rankmax ---------------------- */

static sr_status smap_create_(void **state, const sr_loss_ops *ops, const sr_loss_init *in,
                              sr_error *err)
{
    sr_sparsemap *s = NULL;
    sr_status st = sr_sparsemap_create(&s, ops->kind, in, err);
    *state = s;
    return st;
}

static void smap_destroy_(void *state)
{
    sr_sparsemap *s = state;
    sr_sparsemap_destroy(&s);
}

static sr_status smap_step_(void *state, const float *q, int64_t b, const float *v,
                            const int64_t *targets, int64_t step, double *loss, float *dq,
                            sr_item_grad *dv, sr_error *err)
{
    return sr_sparsemap_step(state, q, b, v, targets, step, loss, dq, dv, err);
}

#define SMAP_OPS(kind_, name_, help_) \
    {.name = name_, .help = help_, .kind = kind_, .create = smap_create_, .destroy = smap_destroy_, \
     .step = smap_step_}
const sr_loss_ops sr_sparsemax_ops = SMAP_OPS(SR_LOSS_SPARSEMAX, "sparsemax",
    "sparsemax Fenchel-Young loss (sparse probabilities, distributed threshold)");
const sr_loss_ops sr_entmax_ops = SMAP_OPS(SR_LOSS_ENTMAX, "entmax",
    "alpha-entmax Fenchel-Young loss, alpha = loss.alpha");
const sr_loss_ops sr_rankmax_ops = SMAP_OPS(SR_LOSS_RANKMAX, "rankmax",
    "rankmax: sparsemax scaled per example so the target sits on the support boundary (k = 1)");
