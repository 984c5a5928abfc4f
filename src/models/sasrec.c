/* sasrec.c: the SASRec transformer over OpenBLAS (contract in sasrec.h).
 *
 * Rows are the n*L positions of the batch, row-major n x L x d. Projections
 * and feed-forward layers are one SGEMM over all rows; attention is, per
 * (sequence, head), SGEMMs on the strided head columns of the packed
 * [q k v] rows, restricted to the sequence's valid suffix [s, L) and cut in
 * row tiles of SR_TILE so the upper triangle is mostly skipped (0.65 of the
 * square at L = 200). Softmax rows use the loss module's vector exp. Weight
 * gradients accumulate with beta = 1 SGEMMs; bias and LayerNorm gradients
 * are column sums in double.
 */
#include "models/sasrec.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "comm/collectives.h"
#include "core/rng.h"
#include "nn/vexp.h"

#define SR_TILE 64
#define SR_NAME_MAX 40
#define SR_TABLES_MAX (3 + 12 * SR_SASREC_MAX_LAYERS)

typedef struct sr_sasrec_act { /* what backward needs from one block */
    float *xh1, *rs1, *a1, *qkv, *p, *ctx, *xh2, *rs2, *a2, *f;
    uint8_t *kp, *ko; /* keep flags: attention probs (n x H x L x L), ffn out (rows x d) */
} sr_sasrec_act;

struct sr_sasrec {
    sr_sasrec_opts o;
    sr_optim opt;
    sr_sasrec_layout lay;
    int64_t n_max;
    sr_mem *mem;
    void *block; /* the one allocation every buffer below points into */
    float *w, *g;
    sr_optim_state st;
    double *red;   /* lay.total: the packed all-reduce */
    double *acc;   /* max(L d, 6 d) column-sum accumulators */
    /* last forward */
    int64_t n, first, first_fwd, step;
    bool drop;
    uint8_t *valid; /* n_max x L */
    int64_t *start; /* n_max: first valid position */
    uint8_t *k0;    /* rows x d input keep flags */
    sr_sasrec_act act[SR_SASREC_MAX_LAYERS];
    float *x, *xhf, *rsf;
    /* scratch */
    float *t1, *t2, *dqkv, *sc1, *sc2;
    int n_tables;
    char names[SR_TABLES_MAX * 3][SR_NAME_MAX];
    sr_param_view views[SR_TABLES_MAX * 3];
};

/* ---- layout ---------------------------------------------------------------- */

void sr_sasrec_layout_init(sr_sasrec_layout *lay, int64_t d, int64_t layers, int64_t heads,
                           int64_t max_len)
{
    memset(lay, 0, sizeof *lay);
    lay->d = d, lay->layers = layers, lay->heads = heads, lay->max_len = max_len;
    int64_t off = 0;
#define SR_TAKE(field, count) (field = off, off += (count))
    SR_TAKE(lay->pos, max_len * d);
    for (int64_t l = 0; l < layers && l < SR_SASREC_MAX_LAYERS; l++) {
        sr_sasrec_layer_off *o = &lay->layer[l];
        SR_TAKE(o->ln1_g, d), SR_TAKE(o->ln1_b, d);
        SR_TAKE(o->wqkv, d * 3 * d), SR_TAKE(o->bqkv, 3 * d);
        SR_TAKE(o->wo, d * d), SR_TAKE(o->bo, d);
        SR_TAKE(o->ln2_g, d), SR_TAKE(o->ln2_b, d);
        SR_TAKE(o->w1, d * d), SR_TAKE(o->b1, d);
        SR_TAKE(o->w2, d * d), SR_TAKE(o->b2, d);
    }
    SR_TAKE(lay->lnf_g, d), SR_TAKE(lay->lnf_b, d);
#undef SR_TAKE
    lay->total = off;
}

const sr_sasrec_layout *sr_sasrec_layout_of(const sr_sasrec *s) { return &s->lay; }
float *sr_sasrec_weights(sr_sasrec *s) { return s->w; }
float *sr_sasrec_grads(sr_sasrec *s) { return s->g; }
void sr_sasrec_set_first_seq(sr_sasrec *s, int64_t first) { s->first = first; }

/* ---- dropout flags --------------------------------------------------------- */

void sr_sasrec_keep(uint64_t seed, int64_t step, int seg, int64_t e0, int64_t cnt, double p,
                    uint8_t *keep)
{
    const uint32_t thr = (uint32_t)llround(p * 65536.0);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint64_t base = (((uint64_t)step << 6) | (uint64_t)seg) << 32;
    uint32_t ctr[4] = {0, 0, 0, SR_STREAM_DROPOUT}, out[4];
    for (int64_t k = 0, e = e0; k < cnt;) {
        uint64_t blk = base + ((uint64_t)e >> 3);
        ctr[0] = (uint32_t)blk, ctr[1] = (uint32_t)(blk >> 32);
        sr_philox4x32_10(ctr, key, out);
        int64_t off = e & 7, m = 8 - off < cnt - k ? 8 - off : cnt - k;
        for (int64_t t = 0; t < m; t++) {
            int64_t i = off + t;
            uint32_t u = (i & 1) ? out[i >> 1] >> 16 : out[i >> 1] & 0xffffu;
            keep[k + t] = u >= thr;
        }
        k += m, e += m;
    }
}

/* ---- create / destroy ------------------------------------------------------ */

/* Carve n elements of size sz from the block (64-byte aligned); with base
 * NULL only counts. */
static void *carve(char *base, size_t *cur, size_t n, size_t sz)
{
    size_t at = (*cur + 63) & ~(size_t)63;
    *cur = at + n * sz;
    return base ? base + at : NULL;
}

static void carve_all(sr_sasrec *s, char *base, size_t *cur)
{
    const int64_t d = s->o.d, L = s->o.max_len, H = s->o.heads, rows = s->n_max * L;
    const size_t F = sizeof(float), T = (size_t)s->lay.total;
    s->w = carve(base, cur, T, F);
    s->g = carve(base, cur, T, F);
    s->red = carve(base, cur, T, sizeof(double));
    s->acc = carve(base, cur, (size_t)(L * d > 6 * d ? L * d : 6 * d), sizeof(double));
    s->valid = carve(base, cur, (size_t)rows, 1);
    s->start = carve(base, cur, (size_t)s->n_max, sizeof(int64_t));
    const bool drop = s->o.dropout > 0;
    s->k0 = drop ? carve(base, cur, (size_t)(rows * d), 1) : NULL;
    for (int64_t l = 0; l < s->o.layers; l++) {
        sr_sasrec_act *A = &s->act[l];
        A->xh1 = carve(base, cur, (size_t)(rows * d), F);
        A->rs1 = carve(base, cur, (size_t)rows, F);
        A->a1 = carve(base, cur, (size_t)(rows * d), F);
        A->qkv = carve(base, cur, (size_t)(rows * 3 * d), F);
        A->p = carve(base, cur, (size_t)(s->n_max * H * L * L), F);
        A->ctx = carve(base, cur, (size_t)(rows * d), F);
        A->xh2 = carve(base, cur, (size_t)(rows * d), F);
        A->rs2 = carve(base, cur, (size_t)rows, F);
        A->a2 = carve(base, cur, (size_t)(rows * d), F);
        A->f = carve(base, cur, (size_t)(rows * d), F);
        A->kp = drop ? carve(base, cur, (size_t)(s->n_max * H * L * L), 1) : NULL;
        A->ko = drop ? carve(base, cur, (size_t)(rows * d), 1) : NULL;
    }
    s->x = carve(base, cur, (size_t)(rows * d), F);
    s->xhf = carve(base, cur, (size_t)(rows * d), F);
    s->rsf = carve(base, cur, (size_t)rows, F);
    s->t1 = carve(base, cur, (size_t)(rows * d), F);
    s->t2 = carve(base, cur, (size_t)(rows * d), F);
    s->dqkv = carve(base, cur, (size_t)(rows * 3 * d), F);
    s->sc1 = carve(base, cur, (size_t)(L * L), F);
    s->sc2 = carve(base, cur, (size_t)(L * L), F);
}

/* Fill n values with U(-a, a) from table `table`'s init stream. */
static void init_uniform(float *w, int64_t n, double a, uint64_t seed, uint32_t table)
{
    sr_rng r;
    sr_rng_init(&r, seed, 100 + table, SR_STREAM_INIT);
    for (int64_t i = 0; i < n; i++) w[i] = (float)(a * (2.0 * sr_rng_uniform(&r) - 1.0));
}

static void init_weights(sr_sasrec *s)
{
    const sr_sasrec_layout *lay = &s->lay;
    const int64_t d = lay->d;
    const double xav = sqrt(6.0 / (2.0 * (double)d)); /* Xavier-uniform, d x d blocks */
    memset(s->w, 0, (size_t)lay->total * sizeof(float));
    sr_rng r;
    sr_rng_init(&r, s->o.seed, 100, SR_STREAM_INIT);
    for (int64_t i = 0; i < lay->max_len * d; i++) s->w[lay->pos + i] = (float)(s->o.init_std * sr_rng_normal(&r));
    for (int64_t l = 0; l < lay->layers; l++) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        uint32_t t = (uint32_t)(1 + 4 * l);
        init_uniform(s->w + o->wqkv, 3 * d * d, xav, s->o.seed, t);
        init_uniform(s->w + o->wo, d * d, xav, s->o.seed, t + 1);
        init_uniform(s->w + o->w1, d * d, xav, s->o.seed, t + 2);
        init_uniform(s->w + o->w2, d * d, xav, s->o.seed, t + 3);
        for (int64_t k = 0; k < d; k++) s->w[o->ln1_g + k] = s->w[o->ln2_g + k] = 1.0f;
    }
    for (int64_t k = 0; k < d; k++) s->w[lay->lnf_g + k] = 1.0f;
}

static void add_view(sr_sasrec *s, const char *name, float *data, int64_t rows, int64_t cols)
{
    int i = s->n_tables++;
    snprintf(s->names[i], SR_NAME_MAX, "%s", name);
    s->views[i] = (sr_param_view){s->names[i], data, rows, cols};
}

/* Views of one packed array (w, m or v) under a name suffix. */
static void add_views(sr_sasrec *s, float *base, const char *suffix)
{
    const sr_sasrec_layout *lay = &s->lay;
    const int64_t d = lay->d;
    char nm[SR_NAME_MAX];
    snprintf(nm, sizeof nm, "sasrec.pos%s", suffix);
    add_view(s, nm, base + lay->pos, lay->max_len, d);
    for (int64_t l = 0; l < lay->layers; l++) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        struct { const char *n; int64_t off, r, c; } t[12] = {
            {"ln1_g", o->ln1_g, 1, d}, {"ln1_b", o->ln1_b, 1, d}, {"wqkv", o->wqkv, d, 3 * d},
            {"bqkv", o->bqkv, 1, 3 * d}, {"wo", o->wo, d, d}, {"bo", o->bo, 1, d},
            {"ln2_g", o->ln2_g, 1, d}, {"ln2_b", o->ln2_b, 1, d}, {"w1", o->w1, d, d},
            {"b1", o->b1, 1, d}, {"w2", o->w2, d, d}, {"b2", o->b2, 1, d}};
        for (int k = 0; k < 12; k++) {
            snprintf(nm, sizeof nm, "sasrec.l%d.%s%s", (int)l, t[k].n, suffix);
            add_view(s, nm, base + t[k].off, t[k].r, t[k].c);
        }
    }
    snprintf(nm, sizeof nm, "sasrec.lnf_g%s", suffix);
    add_view(s, nm, base + lay->lnf_g, 1, d);
    snprintf(nm, sizeof nm, "sasrec.lnf_b%s", suffix);
    add_view(s, nm, base + lay->lnf_b, 1, d);
}

sr_status sr_sasrec_create(sr_sasrec **out, const sr_sasrec_opts *o, const sr_optim *opt,
                           int64_t n_max, sr_mem *mem, sr_error *err)
{
    *out = NULL;
    if (o->d < 1 || o->heads < 1 || o->d % o->heads)
        SR_FAIL(err, SR_ERR_CONFIG, "model.heads = %lld must divide model.dim = %lld", (long long)o->heads,
                (long long)o->d);
    if (o->layers < 1 || o->layers > SR_SASREC_MAX_LAYERS)
        SR_FAIL(err, SR_ERR_CONFIG, "model.layers = %lld: sasrec takes 1 to %d", (long long)o->layers,
                SR_SASREC_MAX_LAYERS);
    if (o->max_len < 1) SR_FAIL(err, SR_ERR_CONFIG, "model.max_len = %lld must be >= 1", (long long)o->max_len);
    if (!(o->dropout >= 0 && o->dropout < 1))
        SR_FAIL(err, SR_ERR_CONFIG, "model.dropout = %g must be in [0, 1)", o->dropout);
    if (n_max < 1) SR_FAIL(err, SR_ERR_INTERNAL, "sasrec: n_max = %lld must be >= 1", (long long)n_max);
    /* Dropout elements of one segment must fit the 2^35 a step allots it. */
    if ((double)n_max * (double)o->heads * (double)o->max_len * (double)o->max_len > 0x1p34)
        SR_FAIL(err, SR_ERR_CONFIG, "sasrec: %lld sequences x %lld heads x max_len^2 is too large",
                (long long)n_max, (long long)o->heads);
    sr_sasrec *s = sr_mem_calloc(mem, 1, sizeof *s, "sasrec model", err);
    if (!s) return err->code;
    s->o = *o;
    s->opt = *opt;
    s->n_max = n_max;
    s->mem = mem;
    sr_sasrec_layout_init(&s->lay, o->d, o->layers, o->heads, o->max_len);
    size_t bytes = 0;
    carve_all(s, NULL, &bytes);
    s->block = sr_mem_alloc(mem, bytes, 1, "sasrec weights, activations and scratch", err);
    if (!s->block) {
        sr_mem_free(mem, s);
        return err->code;
    }
    bytes = 0;
    carve_all(s, s->block, &bytes);
    if (sr_optim_state_create(&s->st, opt, 1, s->lay.total, mem, err) != SR_OK) {
        sr_sasrec_destroy(&s);
        return err->code;
    }
    init_weights(s);
    add_views(s, s->w, "");
    if (s->st.m) add_views(s, s->st.m, opt->kind == SR_OPTIM_ADAM ? ".m" : ".g2");
    if (s->st.v) add_views(s, s->st.v, ".v");
    *out = s;
    return SR_OK;
}

void sr_sasrec_destroy(sr_sasrec **ps)
{
    if (!ps || !*ps) return;
    sr_sasrec *s = *ps;
    sr_optim_state_destroy(&s->st, s->mem);
    sr_mem_free(s->mem, s->block);
    sr_mem_free(s->mem, s);
    *ps = NULL;
}

int sr_sasrec_params(sr_sasrec *s, sr_param_view *out, int max)
{
    for (int i = 0; i < s->n_tables && i < max; i++) out[i] = s->views[i];
    return s->n_tables;
}

/* ---- kernels --------------------------------------------------------------- */

static void mm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *A,
               int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static void ln_fwd(const float *x, const float *g, const float *b, int64_t rows, int64_t d,
                   float *xh, float *rs, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float mu = 0, var = 0;
        for (int64_t k = 0; k < d; k++) mu += xr[k];
        mu /= (float)d;
        for (int64_t k = 0; k < d; k++) var += (xr[k] - mu) * (xr[k] - mu);
        float rstd = 1.0f / sqrtf(var / (float)d + (float)SR_SASREC_LN_EPS);
        rs[r] = rstd;
        float *xo = xh + r * d, *yo = y + r * d;
        for (int64_t k = 0; k < d; k++) {
            xo[k] = (xr[k] - mu) * rstd;
            yo[k] = xo[k] * g[k] + b[k];
        }
    }
}

/* dx = LN'(dy); dgb[0..d) += dy * xh, dgb[d..2d) += dy (double sums). */
static void ln_bwd(const float *dy, const float *xh, const float *rs, const float *g, int64_t rows,
                   int64_t d, float *dx, double *dgb)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * d, *xr = xh + r * d;
        float m1 = 0, m2 = 0;
        for (int64_t k = 0; k < d; k++) {
            float t = dyr[k] * g[k];
            m1 += t;
            m2 += t * xr[k];
            dgb[k] += (double)(dyr[k] * xr[k]);
            dgb[d + k] += (double)dyr[k];
        }
        m1 /= (float)d;
        m2 /= (float)d;
        for (int64_t k = 0; k < d; k++) dx[r * d + k] = rs[r] * (dyr[k] * g[k] - m1 - xr[k] * m2);
    }
}

static void add_bias(float *y, const float *b, int64_t rows, int64_t m)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < m; j++) y[r * m + j] += b[j];
}

/* db += column sums of y (rows x m), summed in double. */
static void colsum_into(const float *y, int64_t rows, int64_t m, double *acc, float *db)
{
    memset(acc, 0, (size_t)m * sizeof(double));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < m; j++) acc[j] += (double)y[r * m + j];
    for (int64_t j = 0; j < m; j++) db[j] += (float)acc[j];
}

static void acc_into(const double *acc, int64_t m, float *dst)
{
    for (int64_t j = 0; j < m; j++) dst[j] += (float)acc[j];
}

/* ---- forward --------------------------------------------------------------- */

/* Attention of sequence q, head hh: P (stored), keep flags, ctx columns. */
static void attn_fwd(sr_sasrec *s, sr_sasrec_act *A, int64_t q, int64_t hh)
{
    const int64_t d = s->o.d, L = s->o.max_len, H = s->o.heads, dh = d / H, st = s->start[q];
    const int64_t Ls = L - st, ld3 = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh), kscale = s->drop ? 1.0f / (1.0f - (float)s->o.dropout) : 1.0f;
    const float *Q = A->qkv + (q * L + st) * ld3 + hh * dh, *K = Q + d, *V = Q + 2 * d;
    const int64_t pb = ((q * H + hh) * L + st) * L + st; /* P[st][st] of this (q, hh) */
    float *P = A->p + pb, *Pd = s->drop ? s->sc1 : P;
    float *ctx = A->ctx + (q * L + st) * d + hh * dh;
    const uint8_t *val = s->valid + q * L + st;
    const int seg = (int)(1 + 3 * (A - s->act));
    for (int64_t r0 = 0; r0 < Ls; r0 += SR_TILE) {
        int64_t r1 = r0 + SR_TILE < Ls ? r0 + SR_TILE : Ls;
        mm(false, true, r1 - r0, r1, dh, scale, Q + r0 * ld3, ld3, K, ld3, 0.0f, P + r0 * L, L);
        for (int64_t i = r0; i < r1; i++) {
            float *row = P + i * L;
            if (!val[i]) {
                memset(row, 0, (size_t)r1 * sizeof(float));
            } else {
                for (int64_t j = 0; j < i; j++)
                    if (!val[j]) row[j] = -INFINITY;
                float shift = -INFINITY;
                int bad = 0;
                double sum = sr_vexp_row_lse(row, i + 1, &shift, &bad);
                sr_vexp_row_scale(row, i + 1, shift, (float)(1.0 / sum));
                for (int64_t j = i + 1; j < r1; j++) row[j] = 0.0f;
            }
            if (s->drop) {
                uint8_t *kp = A->kp + pb + i * L;
                int64_t e0 = (((s->first_fwd + q) * H + hh) * L + st + i) * L + st;
                sr_sasrec_keep(s->o.seed, s->step, seg, e0, i + 1, s->o.dropout, kp);
                float *pd = Pd + i * L;
                for (int64_t j = 0; j <= i; j++) pd[j] = row[j] * (float)kp[j] * kscale;
                for (int64_t j = i + 1; j < r1; j++) pd[j] = 0.0f;
            }
        }
        mm(false, false, r1 - r0, dh, r1, 1.0f, Pd + r0 * L, L, V, ld3, 0.0f, ctx + r0 * d, d);
    }
}

sr_status sr_sasrec_forward(sr_sasrec *s, const float *x, const uint8_t *valid, int64_t n, bool train,
                            int64_t step, float *h, sr_error *err)
{
    if (n < 0 || n > s->n_max)
        SR_FAIL(err, SR_ERR_INTERNAL, "sasrec forward: %lld sequences, created for at most %lld",
                (long long)n, (long long)s->n_max);
    if (step < 0 || step >= ((int64_t)1 << 26))
        SR_FAIL(err, SR_ERR_INTERNAL, "sasrec forward: step %lld outside the dropout stream's [0, 2^26)",
                (long long)step);
    const int64_t d = s->o.d, L = s->o.max_len, H = s->o.heads, rows = n * L;
    const sr_sasrec_layout *lay = &s->lay;
    s->n = n, s->step = step, s->first_fwd = s->first;
    s->drop = train && s->o.dropout > 0;
    const float kscale = s->drop ? 1.0f / (1.0f - (float)s->o.dropout) : 1.0f, sq = sqrtf((float)d);
    memcpy(s->valid, valid, (size_t)rows);
    for (int64_t q = 0; q < n; q++) {
        int64_t st = 0;
        while (st < L && !valid[q * L + st]) st++;
        s->start[q] = st;
    }
    /* x0 = valid * drop(sqrt(d) e + pos) */
    if (s->drop) sr_sasrec_keep(s->o.seed, step, 0, s->first_fwd * L * d, rows * d, s->o.dropout, s->k0);
    for (int64_t r = 0; r < rows; r++) {
        float *xr = s->x + r * d;
        const float *pos = s->w + lay->pos + (r % L) * d;
        if (!valid[r]) {
            memset(xr, 0, (size_t)d * sizeof(float));
            continue;
        }
        for (int64_t k = 0; k < d; k++) xr[k] = sq * x[r * d + k] + pos[k];
        if (s->drop)
            for (int64_t k = 0; k < d; k++) xr[k] *= (float)s->k0[r * d + k] * kscale;
    }
    for (int64_t l = 0; l < s->o.layers; l++) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        sr_sasrec_act *A = &s->act[l];
        const float *w = s->w;
        ln_fwd(s->x, w + o->ln1_g, w + o->ln1_b, rows, d, A->xh1, A->rs1, A->a1);
        mm(false, false, rows, 3 * d, d, 1.0f, A->a1, d, w + o->wqkv, 3 * d, 0.0f, A->qkv, 3 * d);
        add_bias(A->qkv, w + o->bqkv, rows, 3 * d);
        for (int64_t q = 0; q < n; q++) {
            /* the padded prefix attends to nothing: its context is 0 */
            memset(A->ctx + q * L * d, 0, (size_t)(s->start[q] * d) * sizeof(float));
            for (int64_t hh = 0; hh < H && s->start[q] < L; hh++) attn_fwd(s, A, q, hh);
        }
        mm(false, false, rows, d, d, 1.0f, A->ctx, d, w + o->wo, d, 1.0f, s->x, d);
        add_bias(s->x, w + o->bo, rows, d);
        ln_fwd(s->x, w + o->ln2_g, w + o->ln2_b, rows, d, A->xh2, A->rs2, A->a2);
        mm(false, false, rows, d, d, 1.0f, A->a2, d, w + o->w1, d, 0.0f, A->f, d);
        add_bias(A->f, w + o->b1, rows, d);
        for (int64_t e = 0; e < rows * d; e++) A->f[e] = A->f[e] > 0.0f ? A->f[e] : 0.0f;
        if (s->drop) {
            /* the ReLU flags are not kept: a dropped unit has f == 0, like an
             * inactive one, and both get zero gradient (backward tests f > 0) */
            uint8_t *kf = A->ko; /* borrow the ffn-out flag buffer, refilled below */
            sr_sasrec_keep(s->o.seed, step, (int)(2 + 3 * l), s->first_fwd * L * d, rows * d, s->o.dropout, kf);
            for (int64_t e = 0; e < rows * d; e++) A->f[e] *= (float)kf[e] * kscale;
            sr_sasrec_keep(s->o.seed, step, (int)(3 + 3 * l), s->first_fwd * L * d, rows * d, s->o.dropout, A->ko);
            mm(false, false, rows, d, d, 1.0f, A->f, d, w + o->w2, d, 0.0f, s->t1, d);
            add_bias(s->t1, w + o->b2, rows, d);
            for (int64_t e = 0; e < rows * d; e++) s->x[e] += s->t1[e] * (float)A->ko[e] * kscale;
        } else {
            mm(false, false, rows, d, d, 1.0f, A->f, d, w + o->w2, d, 1.0f, s->x, d);
            add_bias(s->x, w + o->b2, rows, d);
        }
    }
    ln_fwd(s->x, s->w + lay->lnf_g, s->w + lay->lnf_b, rows, d, s->xhf, s->rsf, h);
    for (int64_t r = 0; r < rows; r++)
        if (!valid[r]) memset(h + r * d, 0, (size_t)d * sizeof(float));
    return SR_OK;
}

/* ---- backward -------------------------------------------------------------- */

/* dq, dk, dv columns of sequence q, head hh from dctx (s->t1). */
static void attn_bwd(sr_sasrec *s, const sr_sasrec_act *A, int64_t q, int64_t hh)
{
    const int64_t d = s->o.d, L = s->o.max_len, H = s->o.heads, dh = d / H, st = s->start[q];
    const int64_t Ls = L - st, ld3 = 3 * d;
    const float scale = 1.0f / sqrtf((float)dh), kscale = s->drop ? 1.0f / (1.0f - (float)s->o.dropout) : 1.0f;
    const float *Q = A->qkv + (q * L + st) * ld3 + hh * dh, *K = Q + d, *V = Q + 2 * d;
    float *dQ = s->dqkv + (q * L + st) * ld3 + hh * dh, *dK = dQ + d, *dV = dQ + 2 * d;
    const int64_t pb = ((q * H + hh) * L + st) * L + st;
    const float *P = A->p + pb, *dctx = s->t1 + (q * L + st) * d + hh * dh;
    float *Pd = s->drop ? s->sc1 : (float *)P, *dS = s->sc2;
    if (s->drop) /* Pd = P * keep * scale, rebuilt from the stored flags */
        for (int64_t i = 0; i < Ls; i++) {
            int64_t r1 = (i / SR_TILE + 1) * SR_TILE < Ls ? (i / SR_TILE + 1) * SR_TILE : Ls;
            const uint8_t *kp = A->kp + pb + i * L;
            for (int64_t j = 0; j <= i; j++) Pd[i * L + j] = P[i * L + j] * (float)kp[j] * kscale;
            for (int64_t j = i + 1; j < r1; j++) Pd[i * L + j] = 0.0f;
        }
    for (int64_t r0 = 0; r0 < Ls; r0 += SR_TILE) {
        int64_t r1 = r0 + SR_TILE < Ls ? r0 + SR_TILE : Ls;
        mm(false, true, r1 - r0, r1, dh, 1.0f, dctx + r0 * d, d, V, ld3, 0.0f, dS + r0 * L, L);
        mm(true, false, r1, dh, r1 - r0, 1.0f, Pd + r0 * L, L, dctx + r0 * d, d, 1.0f, dV, ld3);
        for (int64_t i = r0; i < r1; i++) {
            float *row = dS + i * L;
            const float *pr = P + i * L;
            if (s->drop) {
                const uint8_t *kp = A->kp + pb + i * L;
                for (int64_t j = 0; j <= i; j++) row[j] *= (float)kp[j] * kscale;
            }
            float dot = 0;
            for (int64_t j = 0; j <= i; j++) dot += row[j] * pr[j];
            for (int64_t j = 0; j <= i; j++) row[j] = pr[j] * (row[j] - dot) * scale;
            for (int64_t j = i + 1; j < r1; j++) row[j] = 0.0f;
        }
        mm(false, false, r1 - r0, dh, r1, 1.0f, dS + r0 * L, L, K, ld3, 0.0f, dQ + r0 * ld3, ld3);
        mm(true, false, r1, dh, r1 - r0, 1.0f, dS + r0 * L, L, Q + r0 * ld3, ld3, 1.0f, dK, ld3);
    }
}

sr_status sr_sasrec_backward(sr_sasrec *s, const float *dh, float *dx, sr_error *err)
{
    const int64_t d = s->o.d, L = s->o.max_len, H = s->o.heads, n = s->n, rows = n * L;
    const sr_sasrec_layout *lay = &s->lay;
    const float kscale = s->drop ? 1.0f / (1.0f - (float)s->o.dropout) : 1.0f, sq = sqrtf((float)d);
    float *g = s->x; /* the residual stream's gradient reuses its buffer */
    const float *w = s->w;
    float *G = s->g;
    double *acc = s->acc;
    for (int64_t r = 0; r < rows; r++) {
        if (s->valid[r]) memcpy(s->t1 + r * d, dh + r * d, (size_t)d * sizeof(float));
        else memset(s->t1 + r * d, 0, (size_t)d * sizeof(float));
    }
    memset(acc, 0, (size_t)(2 * d) * sizeof(double));
    ln_bwd(s->t1, s->xhf, s->rsf, w + lay->lnf_g, rows, d, g, acc);
    acc_into(acc, d, G + lay->lnf_g);
    acc_into(acc + d, d, G + lay->lnf_b);
    for (int64_t l = s->o.layers - 1; l >= 0; l--) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        const sr_sasrec_act *A = &s->act[l];
        /* feed-forward */
        const float *dF = g;
        if (s->drop) {
            for (int64_t e = 0; e < rows * d; e++) s->t1[e] = g[e] * (float)A->ko[e] * kscale;
            dF = s->t1;
        }
        colsum_into(dF, rows, d, acc, G + o->b2);
        mm(true, false, d, d, rows, 1.0f, A->f, d, dF, d, 1.0f, G + o->w2, d);
        mm(false, true, rows, d, d, 1.0f, dF, d, w + o->w2, d, 0.0f, s->t2, d);
        for (int64_t e = 0; e < rows * d; e++) s->t2[e] = A->f[e] > 0.0f ? s->t2[e] * kscale : 0.0f;
        colsum_into(s->t2, rows, d, acc, G + o->b1);
        mm(true, false, d, d, rows, 1.0f, A->a2, d, s->t2, d, 1.0f, G + o->w1, d);
        mm(false, true, rows, d, d, 1.0f, s->t2, d, w + o->w1, d, 0.0f, s->t1, d);
        memset(acc, 0, (size_t)(2 * d) * sizeof(double));
        ln_bwd(s->t1, A->xh2, A->rs2, w + o->ln2_g, rows, d, s->t2, acc);
        acc_into(acc, d, G + o->ln2_g);
        acc_into(acc + d, d, G + o->ln2_b);
        for (int64_t e = 0; e < rows * d; e++) g[e] += s->t2[e];
        /* attention output projection */
        colsum_into(g, rows, d, acc, G + o->bo);
        mm(true, false, d, d, rows, 1.0f, A->ctx, d, g, d, 1.0f, G + o->wo, d);
        mm(false, true, rows, d, d, 1.0f, g, d, w + o->wo, d, 0.0f, s->t1, d); /* dctx */
        memset(s->dqkv, 0, (size_t)(rows * 3 * d) * sizeof(float));
        for (int64_t q = 0; q < n; q++)
            for (int64_t hh = 0; hh < H && s->start[q] < L; hh++) attn_bwd(s, A, q, hh);
        colsum_into(s->dqkv, rows, 3 * d, acc, G + o->bqkv);
        mm(true, false, d, 3 * d, rows, 1.0f, A->a1, d, s->dqkv, 3 * d, 1.0f, G + o->wqkv, 3 * d);
        mm(false, true, rows, d, 3 * d, 1.0f, s->dqkv, 3 * d, w + o->wqkv, 3 * d, 0.0f, s->t1, d);
        memset(acc, 0, (size_t)(2 * d) * sizeof(double));
        ln_bwd(s->t1, A->xh1, A->rs1, w + o->ln1_g, rows, d, s->t2, acc);
        acc_into(acc, d, G + o->ln1_g);
        acc_into(acc + d, d, G + o->ln1_b);
        for (int64_t e = 0; e < rows * d; e++) g[e] += s->t2[e];
    }
    /* input: x0 = valid * drop(sqrt(d) e + pos) */
    memset(acc, 0, (size_t)(L * d) * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        float *dxr = dx + r * d, *gr = g + r * d;
        if (!s->valid[r]) {
            memset(dxr, 0, (size_t)d * sizeof(float));
            continue;
        }
        if (s->drop)
            for (int64_t k = 0; k < d; k++) gr[k] *= (float)s->k0[r * d + k] * kscale;
        double *ap = acc + (r % L) * d;
        for (int64_t k = 0; k < d; k++) {
            ap[k] += (double)gr[k];
            dxr[k] = sq * gr[k];
        }
    }
    acc_into(acc, L * d, G + lay->pos);
    (void)err;
    return SR_OK;
}

/* ---- update ---------------------------------------------------------------- */

void sr_sasrec_set_lr(sr_sasrec *s, double lr) { s->opt.lr = lr; }

sr_status sr_sasrec_update(sr_sasrec *s, const sr_comm *c, int64_t t, sr_error *err)
{
    const int64_t T = s->lay.total;
    for (int64_t i = 0; i < T; i++) s->red[i] = (double)s->g[i];
    SR_TRY(sr_comm_allreduce_sum(c, s->red, T, err));
    for (int64_t i = 0; i < T; i++) s->g[i] = (float)s->red[i];
    sr_optim_update(&s->opt, &s->st, s->w, s->g, NULL, 1, T, t);
    memset(s->g, 0, (size_t)T * sizeof(float));
    return SR_OK;
}
