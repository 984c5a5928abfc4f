/* lightgcn.c: distributed LightGCN propagation (contract in lightgcn.h).
 *
 * Create: local checks -> halo (sorted distinct item ids of the local
 * edges) -> CSR by user and CSC by halo item -> one sr_exchange on the halo
 * ids -> item degrees (given, or pushed to the owners and fetched back) ->
 * edge weights. Each round reuses that plan twice (fetch, then push), so
 * nothing is planned per call.
 */
#include "models/lightgcn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"

struct sr_lgcn {
    sr_comm c;          /* copy of the handle; the MPI communicator is not owned */
    sr_mem *mem;
    int64_t d, layers;
    int64_t n_items;    /* global catalogue size N */
    int64_t nu, ni;     /* local users, local item rows */
    int64_t nnz;        /* local edges */
    int64_t nh;         /* halo: distinct items the local edges touch */
    double *alpha;      /* [layers + 1] */
    int64_t *halo;      /* [nh] global ids, ascending */
    int64_t *row_ptr;   /* [nu + 1] CSR by local user */
    int64_t *row_col;   /* [nnz] halo index */
    float *row_w;       /* [nnz] 1 / sqrt(|N(u)| |N(i)|) */
    int64_t *col_ptr;   /* [nh + 1] CSC by halo item, users ascending */
    int64_t *col_user;  /* [nnz] local user */
    float *col_w;       /* [nnz] same weights as row_w, transposed */
    sr_exchange *x;     /* planned on halo */
    float *bu, *bi;     /* nu x d, ni x d: the current layer */
    float *h_in, *h_out; /* nh x d: fetched halo rows, partial item sums */
    int64_t round_bytes, full_bytes, last_bytes;
};

/* ---- kernels ---------------------------------------------------------------
 * One output row = sum_e w[e] * tab[idx[e]] (d contiguous). A d-slice of 64
 * (then 8) floats is held in registers across all edges, so each edge costs
 * one streaming read of its source row; per element the sum runs over the
 * edges in order in every tier, so the result does not depend on d's tiling. */

typedef float sr_f8_ __attribute__((vector_size(32)));

static inline sr_f8_ ld8_(const float *p)
{
    sr_f8_ v;
    memcpy(&v, p, sizeof v); /* unaligned load: rows of odd d are not aligned */
    return v;
}

static inline void st8_(float *p, sr_f8_ v) { memcpy(p, &v, sizeof v); }

static void gather_row_(float *restrict out, const float *restrict tab, int64_t d, const int64_t *restrict idx,
                        const float *restrict w, int64_t n)
{
    int64_t k = 0;
    for (; k + 64 <= d; k += 64) {
        sr_f8_ a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        for (int64_t e = 0; e < n; e++) {
            const float *s = tab + idx[e] * d + k;
            const float we = w[e];
            a0 += we * ld8_(s);
            a1 += we * ld8_(s + 8);
            a2 += we * ld8_(s + 16);
            a3 += we * ld8_(s + 24);
            a4 += we * ld8_(s + 32);
            a5 += we * ld8_(s + 40);
            a6 += we * ld8_(s + 48);
            a7 += we * ld8_(s + 56);
        }
        st8_(out + k, a0), st8_(out + k + 8, a1), st8_(out + k + 16, a2), st8_(out + k + 24, a3);
        st8_(out + k + 32, a4), st8_(out + k + 40, a5), st8_(out + k + 48, a6), st8_(out + k + 56, a7);
    }
    for (; k + 8 <= d; k += 8) {
        sr_f8_ a = {0};
        for (int64_t e = 0; e < n; e++) a += w[e] * ld8_(tab + idx[e] * d + k);
        st8_(out + k, a);
    }
    for (; k < d; k++) {
        float a = 0.0f;
        for (int64_t e = 0; e < n; e++) a += w[e] * tab[idx[e] * d + k];
        out[k] = a;
    }
}

/* Sparse rows times a dense table: out[r] = sum over ptr[r]..ptr[r+1]. */
static void spmm_(float *restrict out, int64_t rows, const int64_t *ptr, const int64_t *idx, const float *w,
                  const float *restrict tab, int64_t d)
{
    for (int64_t r = 0; r < rows; r++)
        gather_row_(out + r * d, tab, d, idx + ptr[r], w + ptr[r], ptr[r + 1] - ptr[r]);
}

/* y = a x (add == 0) or y += a x (add != 0), n floats. */
static void axpy_(float *restrict y, float a, const float *restrict x, int64_t n, int add)
{
    int64_t j = 0;
    if (add) {
        for (; j + 8 <= n; j += 8) st8_(y + j, ld8_(y + j) + a * ld8_(x + j));
        for (; j < n; j++) y[j] += a * x[j];
    } else {
        for (; j + 8 <= n; j += 8) st8_(y + j, a * ld8_(x + j));
        for (; j < n; j++) y[j] = a * x[j];
    }
}

/* ---- create ---------------------------------------------------------------- */

static int cmp_i64_(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t halo_index_(const int64_t *halo, int64_t nh, int64_t id)
{
    int64_t lo = 0, hi = nh; /* halo[lo..hi) may hold id; it always does */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (halo[mid] <= id) lo = mid;
        else hi = mid;
    }
    return lo;
}

static void *alloc_(sr_lgcn *g, int64_t count, size_t size, const char *what, sr_error *err)
{
    return sr_mem_calloc(g->mem, (size_t)(count > 0 ? count : 0), size, what, err);
}

/* Checks every rank makes alike (shapes, options): no communication needed
 * to agree on them. */
static sr_status check_args_(const sr_comm *c, const sr_shard *items, int64_t layers, const double *alpha, int64_t d,
                             sr_error *err)
{
    if (items->p != c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "lightgcn: item shard map has %d ranks, communicator %d", items->p, c->size);
    if (layers < 0) SR_FAIL(err, SR_ERR_CONFIG, "lightgcn: model.layers = %lld must be >= 0", (long long)layers);
    if (d < 1) SR_FAIL(err, SR_ERR_CONFIG, "lightgcn: embedding dim %lld must be >= 1", (long long)d);
    if (alpha)
        for (int64_t k = 0; k <= layers; k++)
            if (!isfinite(alpha[k]))
                SR_FAIL(err, SR_ERR_CONFIG, "lightgcn: model.layer_weights[%lld] is not finite", (long long)k);
    if (c->size > 8192)
        SR_FAIL(err, SR_ERR_CONFIG, "lightgcn: %d ranks: degree counting is exact up to 8192", c->size);
    return SR_OK;
}

/* Local part: the user range, CSR checks, halo, CSR/CSC structure, buffers. */
static sr_status build_local_(sr_lgcn *g, const sr_comm *c, const sr_shard *items, int64_t u0, int64_t u1,
                              int64_t num_users, const int64_t *indptr, const int64_t *item_ids, sr_error *err)
{
    if (u0 < 0 || u1 < u0 || u1 > num_users)
        SR_FAIL(err, SR_ERR_INTERNAL, "lightgcn: user range [%lld, %lld) is not inside [0, %lld)", (long long)u0,
                (long long)u1, (long long)num_users);
    const int64_t nu = u1 - u0, base = (nu > 0 && indptr) ? indptr[0] : 0;
    if (nu > 0 && !indptr) SR_FAIL(err, SR_ERR_INTERNAL, "lightgcn: %lld users but no indptr", (long long)nu);
    if (base < 0) SR_FAIL(err, SR_ERR_DATA, "lightgcn: indptr[0] = %lld is negative", (long long)base);
    for (int64_t u = 0; u < nu; u++)
        if (indptr[u + 1] < indptr[u])
            SR_FAIL(err, SR_ERR_DATA, "lightgcn: indptr decreases at user %lld (%lld -> %lld)",
                    (long long)(u0 + u), (long long)indptr[u], (long long)indptr[u + 1]);
    const int64_t nnz = nu > 0 ? indptr[nu] - base : 0;
    for (int64_t e = 0; e < nnz; e++)
        if (item_ids[base + e] < 0 || item_ids[base + e] >= items->n)
            SR_FAIL(err, SR_ERR_DATA, "lightgcn: train item %lld at edge %lld is outside [0, %lld)",
                    (long long)item_ids[base + e], (long long)(base + e), (long long)items->n);
    g->nu = nu;
    g->ni = sr_shard_count(items, c->rank);
    g->nnz = nnz;
    g->n_items = items->n;

    /* Halo: sort a copy of the edge targets, keep distinct ids. */
    g->halo = alloc_(g, nnz, sizeof *g->halo, "lightgcn halo ids", err);
    if (!g->halo) return err ? err->code : SR_ERR_NOMEM;
    if (nnz > 0) memcpy(g->halo, item_ids + base, (size_t)nnz * sizeof *g->halo);
    qsort(g->halo, (size_t)nnz, sizeof *g->halo, cmp_i64_);
    int64_t nh = 0;
    for (int64_t e = 0; e < nnz; e++)
        if (nh == 0 || g->halo[e] != g->halo[nh - 1]) g->halo[nh++] = g->halo[e];
    g->nh = nh;

    g->row_ptr = alloc_(g, nu + 1, sizeof *g->row_ptr, "lightgcn CSR offsets", err);
    g->row_col = alloc_(g, nnz, sizeof *g->row_col, "lightgcn CSR columns", err);
    g->row_w = alloc_(g, nnz, sizeof *g->row_w, "lightgcn CSR weights", err);
    g->col_ptr = alloc_(g, nh + 1, sizeof *g->col_ptr, "lightgcn CSC offsets", err);
    g->col_user = alloc_(g, nnz, sizeof *g->col_user, "lightgcn CSC users", err);
    g->col_w = alloc_(g, nnz, sizeof *g->col_w, "lightgcn CSC weights", err);
    g->bu = alloc_(g, nu * g->d, sizeof *g->bu, "lightgcn user layer", err);
    g->bi = alloc_(g, g->ni * g->d, sizeof *g->bi, "lightgcn item layer", err);
    g->h_in = alloc_(g, nh * g->d, sizeof *g->h_in, "lightgcn halo rows", err);
    g->h_out = alloc_(g, nh * g->d, sizeof *g->h_out, "lightgcn halo partial sums", err);
    if (!g->row_ptr || !g->row_col || !g->row_w || !g->col_ptr || !g->col_user || !g->col_w || !g->bu ||
        !g->bi || !g->h_in || !g->h_out)
        return err ? err->code : SR_ERR_NOMEM;

    /* CSR into the halo; CSC by counting sort, users ascending (stable). */
    for (int64_t u = 0; u <= nu; u++) g->row_ptr[u] = nu > 0 ? indptr[u] - base : 0;
    for (int64_t e = 0; e < nnz; e++) {
        g->row_col[e] = halo_index_(g->halo, nh, item_ids[base + e]);
        g->col_ptr[g->row_col[e] + 1]++;
    }
    for (int64_t h = 0; h < nh; h++) g->col_ptr[h + 1] += g->col_ptr[h];
    for (int64_t u = 0; u < nu; u++)
        for (int64_t e = g->row_ptr[u]; e < g->row_ptr[u + 1]; e++) {
            int64_t h = g->row_col[e];
            g->col_user[g->col_ptr[h]++] = u; /* col_ptr[h] now counts up to col_ptr[h+1] */
        }
    for (int64_t h = nh; h > 0; h--) g->col_ptr[h] = g->col_ptr[h - 1];
    g->col_ptr[0] = 0;
    return SR_OK;
}

/* Degrees of the halo items when none were given: this rank's edge counts
 * go to the owners as 3 floats of 11 bits each (sums of <= 8192 such digits
 * stay exact in float), owners add them, and every rank fetches the totals
 * back for its halo. Collective; a local failure is recorded in err and the
 * exchanges still run so peers are not left waiting. */
static sr_status count_degrees_(sr_lgcn *g, int64_t *deg, sr_error *err)
{
    const int64_t nh = g->nh, base = 2048;
    sr_status st = SR_OK;
    float *dig = alloc_(g, nh * 3, sizeof *dig, "lightgcn degree digits", err);
    float *own = alloc_(g, g->ni * 3, sizeof *own, "lightgcn owner degrees", err);
    if (!dig || !own) {
        /* Cannot take part: abort rather than leave peers in the exchange. */
        sr_comm_abort(&g->c, err);
    }
    for (int64_t h = 0; h < nh; h++) {
        int64_t cnt = g->col_ptr[h + 1] - g->col_ptr[h];
        if (cnt >= base * base * base && st == SR_OK)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                              "lightgcn: item %lld has %lld local edges, more than degree counting holds",
                              (long long)g->halo[h], (long long)cnt);
        dig[3 * h] = (float)(cnt % base);
        dig[3 * h + 1] = (float)(cnt / base % base);
        dig[3 * h + 2] = (float)(cnt / base / base % base);
    }
    sr_status rc = sr_exchange_push(g->x, dig, 3, own, err);
    if (rc == SR_OK) rc = sr_exchange_fetch(g->x, own, 3, dig, err);
    if (rc != SR_OK) st = rc;
    for (int64_t h = 0; h < nh && rc == SR_OK; h++)
        deg[h] = (int64_t)dig[3 * h] + base * ((int64_t)dig[3 * h + 1] + base * (int64_t)dig[3 * h + 2]);
    sr_mem_free(g->mem, dig);
    sr_mem_free(g->mem, own);
    return st;
}

/* Halo degrees from the caller's global array, checked against the local
 * edge counts (a smaller global count means the array is not this graph's). */
static sr_status lookup_degrees_(sr_lgcn *g, const int64_t *item_degree, int64_t *deg, sr_error *err)
{
    for (int64_t h = 0; h < g->nh; h++) {
        int64_t cnt = g->col_ptr[h + 1] - g->col_ptr[h];
        deg[h] = item_degree[g->halo[h]];
        if (deg[h] < cnt)
            SR_FAIL(err, SR_ERR_DATA,
                    "lightgcn: item %lld has degree %lld but %lld train edges on rank %d (popularity not of this train split?)",
                    (long long)g->halo[h], (long long)deg[h], (long long)cnt, g->c.rank);
    }
    return SR_OK;
}

static void set_weights_(sr_lgcn *g, const int64_t *deg)
{
    for (int64_t u = 0; u < g->nu; u++) {
        double du = (double)(g->row_ptr[u + 1] - g->row_ptr[u]);
        for (int64_t e = g->row_ptr[u]; e < g->row_ptr[u + 1]; e++)
            g->row_w[e] = (float)(1.0 / sqrt(du * (double)deg[g->row_col[e]]));
    }
    for (int64_t h = 0; h < g->nh; h++)
        for (int64_t e = g->col_ptr[h]; e < g->col_ptr[h + 1]; e++) {
            int64_t u = g->col_user[e];
            double du = (double)(g->row_ptr[u + 1] - g->row_ptr[u]);
            g->col_w[e] = (float)(1.0 / sqrt(du * (double)deg[h]));
        }
}

/* Traffic of one round from the plan (see the header). */
static void set_bytes_(sr_lgcn *g, const sr_shard *items)
{
    const int p = g->c.size;
    const int64_t row = g->d * (int64_t)sizeof(float);
    int64_t own = 0;
    for (int64_t h = 0; h < g->nh; h++) own += sr_shard_owner(items, g->halo[h]) == g->c.rank;
    int64_t served_others = sr_exchange_served(g->x) - own, pushed_others = g->nh - own;
    g->round_bytes = p > 1 ? (served_others + pushed_others) * row : 0;
    g->full_bytes = p > 1 ? ((int64_t)(p - 1) * g->ni + (g->n_items - g->ni)) * row : 0;
}

sr_status sr_lgcn_create(sr_lgcn **out, const sr_comm *c, const sr_shard *items, int64_t u0, int64_t u1,
                         int64_t num_users, const int64_t *indptr, const int64_t *item_ids,
                         const int64_t *item_degree, int64_t layers, const double *alpha, int64_t d,
                         sr_mem *mem, sr_error *err)
{
    *out = NULL;
    SR_TRY(check_args_(c, items, layers, alpha, d, err));
    sr_error local;
    sr_error_clear(&local);
    sr_lgcn *g = sr_mem_alloc(mem, sizeof *g, 1, "lightgcn graph", &local);
    if (g) {
        g->c = *c;
        g->mem = mem;
        g->d = d;
        g->layers = layers;
        g->alpha = sr_mem_calloc(mem, (size_t)(layers + 1), sizeof *g->alpha, "lightgcn layer weights", &local);
        if (g->alpha)
            for (int64_t k = 0; k <= layers; k++) g->alpha[k] = alpha ? alpha[k] : 1.0 / (double)(layers + 1);
        if (g->alpha) build_local_(g, c, items, u0, u1, num_users, indptr, item_ids, &local);
    }
    /* Local failures (bad ids, out of memory) become every rank's error
     * before anyone enters the exchange plan. */
    if (sr_comm_agree(c, &local) == SR_OK)
        sr_exchange_plan(&g->x, c, items, g->halo, g->nh, &local);
    int64_t *deg = NULL;
    if (local.code == SR_OK) {
        deg = sr_mem_calloc(mem, (size_t)g->nh, sizeof *deg, "lightgcn halo degrees", &local);
        if (!deg) sr_comm_abort(c, &local); /* a collective count may follow: cannot skip it alone */
        if (item_degree) lookup_degrees_(g, item_degree, deg, &local);
        else count_degrees_(g, deg, &local);
        if (sr_comm_agree(c, &local) == SR_OK) {
            set_weights_(g, deg);
            set_bytes_(g, items);
        }
        sr_mem_free(mem, deg);
    }
    if (local.code != SR_OK) {
        if (err && err->code == SR_OK) *err = local;
        sr_lgcn_destroy(&g);
        return local.code;
    }
    *out = g;
    return SR_OK;
}

void sr_lgcn_destroy(sr_lgcn **gp)
{
    if (!gp || !*gp) return;
    sr_lgcn *g = *gp;
    sr_mem *m = g->mem;
    sr_exchange_destroy(&g->x);
    sr_mem_free(m, g->alpha);
    sr_mem_free(m, g->halo);
    sr_mem_free(m, g->row_ptr);
    sr_mem_free(m, g->row_col);
    sr_mem_free(m, g->row_w);
    sr_mem_free(m, g->col_ptr);
    sr_mem_free(m, g->col_user);
    sr_mem_free(m, g->col_w);
    sr_mem_free(m, g->bu);
    sr_mem_free(m, g->bi);
    sr_mem_free(m, g->h_in);
    sr_mem_free(m, g->h_out);
    sr_mem_free(m, g);
    *gp = NULL;
}

/* ---- propagation ----------------------------------------------------------- */

/* out = sum_k alpha_k Ahat^k x over K rounds. Round k reads the current
 * layer (the inputs for k = 1, then bu/bi) and overwrites bu/bi in place:
 * the item layer is first copied out by the fetch, the user layer is read
 * by the CSC gather before the CSR gather overwrites it. */
static sr_status propagate_(sr_lgcn *g, const float *xu, const float *xi, float *ou, float *oi, sr_error *err)
{
    const int64_t d = g->d, nud = g->nu * d, nid = g->ni * d;
    axpy_(ou, (float)g->alpha[0], xu, nud, 0);
    axpy_(oi, (float)g->alpha[0], xi, nid, 0);
    g->last_bytes = 0;
    const float *cu = xu, *ci = xi;
    for (int64_t k = 1; k <= g->layers; k++) {
        SR_TRY(sr_exchange_fetch(g->x, ci, d, g->h_in, err));
        g->last_bytes += sr_exchange_bytes_sent(g->x);
        spmm_(g->h_out, g->nh, g->col_ptr, g->col_user, g->col_w, cu, d);
        spmm_(g->bu, g->nu, g->row_ptr, g->row_col, g->row_w, g->h_in, d);
        if (nid > 0) memset(g->bi, 0, (size_t)nid * sizeof *g->bi);
        SR_TRY(sr_exchange_push(g->x, g->h_out, d, g->bi, err));
        g->last_bytes += sr_exchange_bytes_sent(g->x);
        axpy_(ou, (float)g->alpha[k], g->bu, nud, 1);
        axpy_(oi, (float)g->alpha[k], g->bi, nid, 1);
        cu = g->bu;
        ci = g->bi;
    }
    return SR_OK;
}

sr_status sr_lgcn_forward(sr_lgcn *g, const float *eu, const float *ei, float *u_out, float *i_out, sr_error *err)
{
    return propagate_(g, eu, ei, u_out, i_out, err);
}

sr_status sr_lgcn_backward(sr_lgcn *g, const float *du_out, const float *di_out, float *deu, float *dei,
                           sr_error *err)
{
    /* Ahat is symmetric: d/de0 sum_k alpha_k Ahat^k e0 applied to g is
     * sum_k alpha_k (Ahat^T)^k g = the forward of g. */
    return propagate_(g, du_out, di_out, deu, dei, err);
}

int64_t sr_lgcn_round_bytes(const sr_lgcn *g) { return g ? g->round_bytes : 0; }
int64_t sr_lgcn_full_table_bytes(const sr_lgcn *g) { return g ? g->full_bytes : 0; }
int64_t sr_lgcn_last_bytes(const sr_lgcn *g) { return g ? g->last_bytes : 0; }
int64_t sr_lgcn_halo_rows(const sr_lgcn *g) { return g ? g->nh : 0; }
int64_t sr_lgcn_local_edges(const sr_lgcn *g) { return g ? g->nnz : 0; }
double sr_lgcn_alpha(const sr_lgcn *g, int64_t k) { return g && k >= 0 && k <= g->layers ? g->alpha[k] : 0.0; }
