/* test_softmax.c: the tiled exact softmax over P virtual shards in one
 * process, against the float64 reference twin; finite-difference checks;
 * the vector exp; workspace accounting; error paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/shard.h"
#include "core/blocks.h"
#include "core/lse.h"
#include "core/mem.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/softmax.h"
#include "nn/vexp.h"

/* ---- problem set-up ---------------------------------------------------- */

typedef struct problem {
    int64_t b, d, n;
    float *q;        /* b x d */
    float *v;        /* n x d, global order */
    int64_t *target; /* b */
    const char *kernel; /* sr_softmax_ws_set_kernel's name; NULL: the default */
    const char *precision; /* sr_softmax_ws_set_precision's name; NULL: the default (fp32) */
} problem;

static void problem_make(problem *p, int64_t b, int64_t d, int64_t n, double scale, uint64_t seed)
{
    p->b = b;
    p->d = d;
    p->n = n;
    p->kernel = NULL;
    p->precision = NULL;
    p->q = malloc((size_t)(b * d) * sizeof(float));
    p->v = malloc((size_t)(n * d) * sizeof(float));
    p->target = malloc((size_t)b * sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < b * d; i++) p->q[i] = (float)(scale * sr_rng_normal(&r));
    for (int64_t i = 0; i < n * d; i++) p->v[i] = (float)(scale * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) p->target[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->v);
    free(p->target);
}

/* Result of the fast path over virtual shards, gradients in double so the
 * partial dQ of the shards can be summed without extra rounding. */
typedef struct result {
    double loss;
    double *dq; /* b x d */
    double *dv; /* n x d, global order */
} result;

static void result_alloc(result *r, const problem *p)
{
    r->dq = calloc((size_t)(p->b * p->d), sizeof(double));
    r->dv = calloc((size_t)(p->n * p->d), sizeof(double));
}

static void result_free(result *r)
{
    free(r->dq);
    free(r->dv);
}

/* Run partial -> merge -> backward over the shards of s, tile items a tile.
 * Returns the status of the first failing call (SR_OK normally). */
static sr_status run_virtual(const problem *p, const sr_shard *s, int64_t tile, result *out)
{
    sr_error e;
    sr_error_clear(&e);
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_softmax_ws *ws = NULL;
    sr_status st = sr_softmax_ws_create(&ws, p->b, tile, &m, &e);
    if (st) return st;
    if ((p->kernel && (st = sr_softmax_ws_set_kernel(ws, p->kernel, &e)) != SR_OK) ||
        (p->precision && (st = sr_softmax_ws_set_precision(ws, p->precision, p->d, NULL, &e)) != SR_OK)) {
        fprintf(stderr, "run_virtual: %s\n", e.msg);
        sr_softmax_ws_destroy(&ws);
        return st;
    }
    int64_t d = p->d;
    float **vr = calloc((size_t)s->p, sizeof *vr);
    sr_lse *part = malloc((size_t)p->b * sizeof *part);
    sr_lse *merged = malloc((size_t)p->b * sizeof *merged);
    float *dq = malloc((size_t)(p->b * d) * sizeof(float));
    for (int64_t i = 0; i < p->b; i++) merged[i] = sr_lse_empty();
    for (int r = 0; r < s->p && !st; r++) {
        int64_t nr = sr_shard_count(s, r);
        vr[r] = malloc((size_t)(nr * d + 1) * sizeof(float));
        for (int64_t j = 0; j < nr; j++)
            memcpy(vr[r] + j * d, p->v + sr_shard_global(s, r, j) * d, (size_t)d * sizeof(float));
        st = sr_softmax_partial(p->q, p->b, d, vr[r], nr, s, r, p->target, ws, part, &e);
        if (!st) sr_lse_merge(merged, part, p->b);
    }
    if (!st) out->loss = sr_softmax_loss(merged, p->b);
    memset(out->dq, 0, (size_t)(p->b * d) * sizeof(double));
    for (int r = 0; r < s->p && !st; r++) {
        int64_t nr = sr_shard_count(s, r);
        float *dv = malloc((size_t)(nr * d + 1) * sizeof(float));
        st = sr_softmax_backward(p->q, p->b, d, vr[r], nr, s, r, p->target, merged, ws, dq, dv, &e);
        if (!st) {
            for (int64_t k = 0; k < p->b * d; k++) out->dq[k] += dq[k];
            for (int64_t j = 0; j < nr; j++)
                for (int64_t k = 0; k < d; k++) out->dv[sr_shard_global(s, r, j) * d + k] = dv[j * d + k];
        }
        free(dv);
    }
    if (st) fprintf(stderr, "run_virtual: %s\n", e.msg);
    for (int r = 0; r < s->p; r++) free(vr[r]);
    free(vr);
    free(part);
    free(merged);
    free(dq);
    sr_softmax_ws_destroy(&ws);
    CU_ASSERT_EQUAL(m.current, 0);
    return st;
}

/* max |a - b| / max(max |b|, floor): norm-wise relative error of a vector;
 * floor > 0 where the exact value cancels to zero. */
static double rel_err_floor(const double *a, const double *b, int64_t n, double floor)
{
    double num = 0.0, den = floor;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

static double rel_err(const double *a, const double *b, int64_t n) { return rel_err_floor(a, b, n, 0.0); }

/* Compare the fast path on shard map s with the reference; returns the worst
 * relative error seen and asserts < tol. */
static double check_against_ref_floor(const problem *p, const sr_shard *s, int64_t tile, double tol,
                                      double floor, const char *what)
{
    sr_error e;
    sr_error_clear(&e);
    double ref_loss;
    double *rdq = malloc((size_t)(p->b * p->d) * sizeof(double));
    double *rdv = malloc((size_t)(p->n * p->d) * sizeof(double));
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref(p->q, p->b, p->d, p->v, p->n, p->target, &ref_loss, rdq, rdv, &e),
                          SR_OK);
    result got;
    result_alloc(&got, p);
    CU_ASSERT_EQUAL(run_virtual(p, s, tile, &got), SR_OK);
    double el = fabs(got.loss - ref_loss) / fmax(1.0, fabs(ref_loss));
    double eq = rel_err_floor(got.dq, rdq, p->b * p->d, floor);
    double ev = rel_err_floor(got.dv, rdv, p->n * p->d, floor);
    double worst = fmax(el, fmax(eq, ev));
    CU_ASSERT(worst < tol);
    if (getenv("SR_TEST_VERBOSE"))
        fprintf(stderr, "%s b=%lld d=%lld n=%lld P=%d: loss %.2e dq %.2e dv %.2e\n", what, (long long)p->b,
                (long long)p->d, (long long)p->n, s->p, el, eq, ev);
    if (!(worst < tol))
        fprintf(stderr, "%s (P=%d layout=%d tile=%lld): loss %.9g vs %.9g; rel err loss %.2e dq %.2e dv %.2e\n",
                what, s->p, (int)s->layout, (long long)tile, got.loss, ref_loss, el, eq, ev);
    result_free(&got);
    free(rdq);
    free(rdv);
    return worst;
}

static double check_against_ref(const problem *p, const sr_shard *s, int64_t tile, double tol,
                                const char *what)
{
    return check_against_ref_floor(p, s, tile, tol, 0.0, what);
}

/* ---- shard-count and tile invariance ----------------------------------- */

static void test_block_shards_and_tiles(void)
{
    problem p;
    problem_make(&p, 6, 8, 37, 0.7, 11);
    /* With P = 1..4 the shards hold 37 / 19,18 / 13,12,12 / 10,9,9,9 rows:
     * tiles below, equal to, not dividing and above the shard size. */
    const int64_t tiles[] = {1, 3, 4, 9, 10, 12, 19, 37, 64};
    double worst = 0;
    for (int P = 1; P <= 4; P++)
        for (size_t t = 0; t < sizeof tiles / sizeof *tiles; t++) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
            worst = fmax(worst, check_against_ref(&p, &s, tiles[t], 1e-5, "block"));
            sr_shard_destroy(&s);
        }
    problem_free(&p);
    if (sr_test_rank() == 0) fprintf(stderr, "  block shards: worst relative error %.2e\n", worst);
}

static void test_uneven_and_empty_shards(void)
{
    problem p;
    problem_make(&p, 5, 16, 37, 0.5, 12);
    const int64_t c1[] = {10, 0, 20, 7}, c2[] = {0, 37}, c3[] = {37, 0, 0}, c4[] = {1, 35, 0, 1};
    const int64_t *counts[] = {c1, c2, c3, c4};
    const int ps[] = {4, 2, 3, 4};
    for (int c = 0; c < 4; c++)
        for (int64_t tile = 2; tile <= 40; tile += 19) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, ps[c], counts[c], &e), SR_OK);
            check_against_ref(&p, &s, tile, 1e-5, "uneven block");
            sr_shard_destroy(&s);
        }
    problem_free(&p);
}

static void test_interleave_shards(void)
{
    problem p;
    problem_make(&p, 7, 5, 23, 1.0, 13);
    for (int P = 1; P <= 4; P++)
        for (int64_t tile = 1; tile <= 9; tile += 4) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, p.n, P, &e), SR_OK);
            check_against_ref(&p, &s, tile, 1e-5, "interleave");
            sr_shard_destroy(&s);
        }
    /* More ranks than items: rank 3 of 4 over 3 items is empty. */
    problem q3;
    problem_make(&q3, 4, 5, 3, 1.0, 14);
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, q3.n, 4, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_shard_count(&s, 3), 0);
    check_against_ref(&q3, &s, 2, 1e-5, "interleave, empty rank");
    sr_shard_destroy(&s);
    problem_free(&q3);
    problem_free(&p);
}

/* A batch and a catalogue large enough to take the 8-wide vector paths many
 * times over, with tails: 1 to 4 shards, tiles 64 and 100. */
static void test_vector_paths(void)
{
    problem p;
    problem_make(&p, 33, 24, 1001, 0.4, 15);
    for (int P = 1; P <= 4; P += 3)
        for (int64_t tile = 64; tile <= 100; tile += 36) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
            check_against_ref(&p, &s, tile, 1e-5, "vector paths");
            sr_shard_destroy(&s);
        }
    problem_free(&p);
}

/* A tile wider than 2 MiB / 4 bytes / 16 rows forces query blocks of 16
 * rows: 40 queries go through as 16 + 16 + 8. */
static void test_query_blocks(void)
{
    problem p;
    problem_make(&p, 40, 6, 300, 0.5, 16);
    for (int P = 1; P <= 3; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
        check_against_ref(&p, &s, 40000, 1e-5, "query blocks");
        sr_shard_destroy(&s);
    }
    /* one block of logits per thread (OPENBLAS_NUM_THREADS sets the count),
     * not 40 x 40000 */
    const int64_t qb = sr_blocks_queries(40, 40000);
    const size_t T = (size_t)sr_blocks_threads(40, qb);
    CU_ASSERT(qb <= 16);
    CU_ASSERT(sr_softmax_ws_bytes(40, 40000) < T * (size_t)qb * 40000 * 4 + 40 * 64 + 4096);
    problem_free(&p);
}

/* ---- extreme logits ---------------------------------------------------- */

static void test_extreme_dominant_logit(void)
{
    /* Item 5 is aligned with every query at a logit near 1000 (exp would
     * overflow without the max shift); the other logits are O(1). Targets
     * alternate between the dominant item and others (loss ~ 1000). */
    problem p;
    problem_make(&p, 6, 4, 29, 0.3, 21);
    for (int64_t k = 0; k < p.d; k++) p.v[5 * p.d + k] = k == 0 ? 31.5f : 0.0f;
    for (int64_t i = 0; i < p.b; i++) {
        p.q[i * p.d] = 31.5f + 0.01f * (float)i;
        p.target[i] = i % 2 ? 5 : (int64_t)(3 * i + 1);
    }
    for (int P = 1; P <= 4; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
        check_against_ref(&p, &s, 4, 1e-5, "dominant logit");
        sr_shard_destroy(&s);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, p.n, P, &e), SR_OK);
        check_against_ref(&p, &s, 3, 1e-5, "dominant logit, interleave");
        sr_shard_destroy(&s);
    }
    problem_free(&p);
}

static void test_extreme_large_negative_and_equal(void)
{
    /* All logits equal (every item row the same): loss = log N exactly, every
     * probability 1/N. */
    problem p;
    problem_make(&p, 5, 6, 41, 1.0, 22);
    for (int64_t j = 1; j < p.n; j++) memcpy(p.v + j * p.d, p.v, (size_t)p.d * sizeof(float));
    for (int P = 1; P <= 4; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
        /* dQ = sum_j p_j v_j - v_t cancels to 0: measure it against the
         * size of its terms, |v| / B. */
        check_against_ref_floor(&p, &s, 8, 1e-5, 1.0 / (double)p.b, "equal logits");
        result got;
        result_alloc(&got, &p);
        CU_ASSERT_EQUAL(run_virtual(&p, &s, 8, &got), SR_OK);
        CU_ASSERT_DOUBLE_EQUAL(got.loss, log((double)p.n), 1e-6);
        result_free(&got);
        sr_shard_destroy(&s);
    }
    /* Huge spread: logits from about -2000 to +2000, so most exp terms
     * underflow to 0 and the shift must come from the global max. */
    problem h;
    problem_make(&h, 4, 3, 50, 1.0, 23);
    for (int64_t j = 0; j < h.n; j++) {
        h.v[j * h.d] = (float)(j - 25) * 2.0f;
        h.v[j * h.d + 1] = 0.1f * (float)(j % 7);
        h.v[j * h.d + 2] = 0.0f;
    }
    for (int64_t i = 0; i < h.b; i++) {
        h.q[i * h.d] = (i % 2 ? 40.0f : -40.0f);
        h.q[i * h.d + 1] = 1.0f;
        h.target[i] = i < 2 ? 49 - i : i;
    }
    for (int P = 1; P <= 4; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, h.n, P, NULL, &e), SR_OK);
        check_against_ref(&h, &s, 5, 1e-5, "huge spread");
        sr_shard_destroy(&s);
    }
    problem_free(&h);
    problem_free(&p);
}

/* ---- finite differences ------------------------------------------------- */

/* Central difference of the reference loss in each coordinate of x (which
 * aliases p->q or p->v), using the exactly representable step h. */
static double fd_ref(problem *p, float *x, int64_t idx, float h)
{
    sr_error e;
    sr_error_clear(&e);
    float x0 = x[idx];
    double lp, lm;
    x[idx] = x0 + h;
    sr_softmax_ref(p->q, p->b, p->d, p->v, p->n, p->target, &lp, NULL, NULL, &e);
    double dp = (double)x[idx] - (double)x0;
    x[idx] = x0 - h;
    sr_softmax_ref(p->q, p->b, p->d, p->v, p->n, p->target, &lm, NULL, NULL, &e);
    double dm = (double)x0 - (double)x[idx];
    x[idx] = x0;
    return (lp - lm) / (dp + dm);
}

static void test_finite_difference_reference(void)
{
    problem p;
    problem_make(&p, 3, 4, 9, 1.0, 31);
    p.target[1] = p.target[0]; /* two queries on one target */
    sr_error e;
    sr_error_clear(&e);
    double loss;
    double *dq = malloc((size_t)(p.b * p.d) * sizeof(double));
    double *dv = malloc((size_t)(p.n * p.d) * sizeof(double));
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref(p.q, p.b, p.d, p.v, p.n, p.target, &loss, dq, dv, &e), SR_OK);
    double *fq = malloc((size_t)(p.b * p.d) * sizeof(double));
    double *fv = malloc((size_t)(p.n * p.d) * sizeof(double));
    const float h = 1.0f / 4096.0f;
    for (int64_t k = 0; k < p.b * p.d; k++) fq[k] = fd_ref(&p, p.q, k, h);
    for (int64_t k = 0; k < p.n * p.d; k++) fv[k] = fd_ref(&p, p.v, k, h);
    double eq = rel_err(dq, fq, p.b * p.d), ev = rel_err(dv, fv, p.n * p.d);
    CU_ASSERT(eq < 1e-6 && ev < 1e-6);
    if (!(eq < 1e-6 && ev < 1e-6)) fprintf(stderr, "reference FD: dq %.2e dv %.2e\n", eq, ev);
    free(dq);
    free(dv);
    free(fq);
    free(fv);
    problem_free(&p);
}

/* The fast path's loss is float-accurate only (float logits), so its finite
 * differences need a large step: checked at 2e-3, enough to catch a wrong
 * sign, a missing 1/B or a wrong owner subtraction. */
static double fast_loss(problem *p, const sr_shard *s)
{
    result r;
    result_alloc(&r, p);
    run_virtual(p, s, 3, &r);
    double l = r.loss;
    result_free(&r);
    return l;
}

static void test_finite_difference_fast(void)
{
    problem p;
    problem_make(&p, 3, 4, 11, 1.0, 32);
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, 3, NULL, &e), SR_OK);
    result g;
    result_alloc(&g, &p);
    CU_ASSERT_EQUAL_FATAL(run_virtual(&p, &s, 3, &g), SR_OK);
    const float h = 1.0f / 128.0f;
    double *fq = malloc((size_t)(p.b * p.d) * sizeof(double));
    double *fv = malloc((size_t)(p.n * p.d) * sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        float *x = pass ? p.v : p.q;
        double *f = pass ? fv : fq;
        int64_t cnt = pass ? p.n * p.d : p.b * p.d;
        for (int64_t k = 0; k < cnt; k++) {
            float x0 = x[k];
            x[k] = x0 + h;
            double lp = fast_loss(&p, &s);
            x[k] = x0 - h;
            double lm = fast_loss(&p, &s);
            x[k] = x0;
            f[k] = (lp - lm) / (2.0 * (double)h);
        }
    }
    double eq = rel_err(g.dq, fq, p.b * p.d), ev = rel_err(g.dv, fv, p.n * p.d);
    CU_ASSERT(eq < 2e-3 && ev < 2e-3);
    if (!(eq < 2e-3 && ev < 2e-3)) fprintf(stderr, "fast FD: dq %.2e dv %.2e\n", eq, ev);
    free(fq);
    free(fv);
    result_free(&g);
    sr_shard_destroy(&s);
    problem_free(&p);
}

/* ---- building blocks ---------------------------------------------------- */

static void test_vexp_accuracy(void)
{
    double worst = 0.0;
    enum { NX = 880001 };
    float *xs = malloc(NX * sizeof(float)), *ys = malloc(NX * sizeof(float));
    for (int64_t i = 0; i < NX; i++) xs[i] = -87.0f + (float)i * (175.0f / (float)(NX - 1));
    sr_vexp_array(xs, ys, NX);
    for (int64_t i = 0; i < NX; i++) {
        if (xs[i] > 88.0f) continue;
        double ref = exp((double)xs[i]);
        worst = fmax(worst, fabs((double)ys[i] - ref) / ref);
    }
    free(xs);
    free(ys);
    CU_ASSERT(worst < 2e-7);
    if (sr_test_rank() == 0) fprintf(stderr, "  vexp: max relative error %.3g on [-87, 88]\n", worst);
    float sp[4] = {-INFINITY, -87.5f, 0.0f, -1e30f}, so[4];
    sr_vexp_array(sp, so, 4);
    CU_ASSERT_EQUAL(so[0], 0.0f);
    CU_ASSERT_EQUAL(so[1], 0.0f);
    CU_ASSERT_EQUAL(so[2], 1.0f);
    CU_ASSERT_EQUAL(so[3], 0.0f);
    /* Row helpers with tails: 13 elements = one vector + 5. The maximum sits
     * in the tail so the lazy shift must rescale there. */
    float row[13];
    for (int k = 0; k < 13; k++) row[k] = -0.37f * (float)k;
    row[10] = 2.5f;
    double want = 0.0;
    for (int k = 0; k < 13; k++) want += exp((double)row[k] - 2.5);
    int bad = 0;
    float shift = -INFINITY;
    double got = sr_vexp_row_lse(row, 13, &shift, &bad);
    CU_ASSERT_EQUAL(shift, 2.5f);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(fabs(got - want) < 1e-6 * want);
    /* A running shift above the row stays; the sum is relative to it. */
    shift = 4.0f;
    got = sr_vexp_row_lse(row, 13, &shift, &bad);
    CU_ASSERT_EQUAL(shift, 4.0f);
    CU_ASSERT(fabs(got - want * exp(-1.5)) < 1e-6 * want);
    /* Empty row: nothing changes. */
    shift = -INFINITY;
    CU_ASSERT_EQUAL(sr_vexp_row_lse(row, 0, &shift, &bad), 0.0);
    CU_ASSERT(isinf(shift) && shift < 0);
    sr_vexp_row_scale(row, 13, 0.5f, 2.0f);
    CU_ASSERT(fabs(row[12] - 2.0 * exp(-0.37 * 12 - 0.5)) < 1e-6);
    CU_ASSERT(fabs(row[10] - 2.0 * exp(2.0)) < 1e-6 * 2.0 * exp(2.0));
    for (int k = 0; k < 13; k++) row[k] = (float)k;
    row[11] = NAN;
    shift = -INFINITY;
    sr_vexp_row_lse(row, 13, &shift, &bad);
    CU_ASSERT_EQUAL(bad, 1);
    bad = 0;
    row[11] = 1.0f;
    row[3] = INFINITY;
    shift = -INFINITY;
    sr_vexp_row_lse(row, 13, &shift, &bad);
    CU_ASSERT_EQUAL(bad, 1);
    /* Long rows with a rising trend (many rescales) against double. */
    enum { NL = 1037 };
    float *lr = malloc(NL * sizeof(float));
    want = 0.0;
    for (int k = 0; k < NL; k++) lr[k] = 0.05f * (float)k + (float)((k * 7919) % 13) * 0.3f - 60.0f;
    float mx = -INFINITY;
    for (int k = 0; k < NL; k++) mx = fmaxf(mx, lr[k]);
    for (int k = 0; k < NL; k++) want += exp((double)lr[k] - mx);
    shift = -INFINITY;
    bad = 0;
    got = sr_vexp_row_lse(lr, NL, &shift, &bad);
    CU_ASSERT_EQUAL(shift, mx);
    CU_ASSERT(fabs(got - want) < 3e-7 * want);
    free(lr);
}

static void test_workspace_accounting(void)
{
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_error e;
    sr_error_clear(&e);
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 128, 512, &m, &e), SR_OK);
    CU_ASSERT_EQUAL(m.current, sr_softmax_ws_bytes(128, 512));
    CU_ASSERT(m.current < 128 * 512 * 4 + 128 * 64 + 4096);
    CU_ASSERT_EQUAL(sr_softmax_ws_tile(ws), 512);
    sr_softmax_ws_destroy(&ws);
    CU_ASSERT_PTR_NULL(ws);
    CU_ASSERT_EQUAL(m.current, 0);
    sr_softmax_ws_destroy(&ws); /* no-op */
    CU_ASSERT_EQUAL(sr_softmax_ws_create(&ws, 0, 512, &m, &e), SR_ERR_INTERNAL);
    /* A limit below the tile fails cleanly and leaks nothing. */
    sr_mem_init(&m, 1000);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_softmax_ws_create(&ws, 64, 64, &m, &e), SR_ERR_NOMEM);
    CU_ASSERT_PTR_NULL(ws);
    CU_ASSERT_EQUAL(m.current, 0);
}

static void test_errors_and_nan(void)
{
    problem p;
    problem_make(&p, 4, 3, 10, 1.0, 41);
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, 2, NULL, &e), SR_OK);
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, p.b, 4, NULL, &e), SR_OK);
    sr_lse part[4];
    /* Out-of-range target: a data error naming the query. */
    p.target[2] = 10;
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, ws, part, &e), SR_ERR_DATA);
    CU_ASSERT(strstr(e.msg, "query 2") != NULL);
    p.target[2] = 3;
    /* Wrong local row count for the rank: a bug in the caller. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, 6, &s, 0, p.target, ws, part, &e), SR_ERR_INTERNAL);
    /* Batch larger than the workspace. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, 5, p.d, p.v, 5, &s, 0, p.target, ws, part, &e), SR_ERR_INTERNAL);
    /* A NaN in one item row poisons every query's sum, and backward refuses. */
    sr_error_clear(&e);
    p.v[1 * p.d + 1] = NAN;
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, ws, part, &e), SR_OK);
    CU_ASSERT(isnan(sr_softmax_loss(part, p.b)));
    float dq[12], dv[15];
    CU_ASSERT_EQUAL(sr_softmax_backward(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, part, ws, dq, dv, &e),
                    SR_ERR_NUMERIC);
    /* NULL dq / dv skip their products without touching anything else. */
    p.v[1 * p.d + 1] = 0.5f;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, ws, part, &e), SR_OK);
    sr_lse merged[4];
    memcpy(merged, part, sizeof part);
    CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v + 5 * p.d, 5, &s, 1, p.target, ws, part, &e), SR_OK);
    sr_lse_merge(merged, part, p.b);
    CU_ASSERT_EQUAL(sr_softmax_backward(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, merged, ws, NULL, dv, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_softmax_backward(p.q, p.b, p.d, p.v, 5, &s, 0, p.target, merged, ws, dq, NULL, &e), SR_OK);
    sr_softmax_ws_destroy(&ws);
    sr_shard_destroy(&s);
    problem_free(&p);
}


/* ---- fused register-tiled kernels ------------------------------------------ */

/* check over block shards (P = 4 uneven with an empty one) and interleaved
 * shards at P = 1..4 (1 and 4 for n > 500); the worst value it returned. */
static double over_shards(const problem *p, double (*check)(const problem *, const sr_shard *, const char *),
                          const char *what)
{
    double worst = 0;
    for (int P = 1; P <= 4; P += (p->n > 500 ? 3 : 1)) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        const int64_t counts[4] = {p->n / 2, 0, p->n - p->n / 2 - p->n / 5, p->n / 5};
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p->n, P, P == 4 ? counts : NULL, &e), SR_OK);
        worst = fmax(worst, check(p, &s, what));
        sr_shard_destroy(&s);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, p->n, P, &e), SR_OK);
        worst = fmax(worst, check(p, &s, what));
        sr_shard_destroy(&s);
    }
    return worst;
}

static double check_fused(const problem *p, const sr_shard *s, const char *what)
{
    return check_against_ref(p, s, 4096, 1e-5, what);
}

/* The fused variants this CPU runs; the others are skipped with a message. */
static int fused_kernels(const char **names)
{
    static const char *const all[] = {"fused-avx512", "fused-avx2"};
    int n = 0;
    for (int k = 0; k < 2; k++) {
        sr_softmax_ws *ws = NULL;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 1, 16, NULL, &e), SR_OK);
        if (sr_softmax_ws_set_kernel(ws, all[k], &e) == SR_OK) names[n++] = all[k];
        else if (sr_test_rank() == 0) fprintf(stderr, "  SKIP %s: %s\n", all[k], e.msg);
        sr_softmax_ws_destroy(&ws);
    }
    return n;
}

/* Odd shapes against the float64 twin: b not a multiple of the query block
 * (6 / 8 / 4), n_local not a multiple of the 16- / 32-item panel or of the
 * packed tile (512 items at d = 64), empty shards, targets at panel and tile
 * edges, d from 16 to 256. */
static void test_fused_shapes(void)
{
    const char *names[3] = {"blas"}; /* the SGEMM path on the same shapes, for comparison */
    int nk = 1 + fused_kernels(names + 1);
    static const int64_t shapes[][3] = {/* b, d, n */
                                        {1, 16, 1},    {5, 16, 31},  {7, 32, 33},   {13, 64, 100},
                                        {9, 64, 1100}, {33, 48, 97}, {17, 256, 70}, {8, 128, 257},
                                        {300, 32, 700}}; /* 3 query blocks: a team at T > 1 */
    static const int64_t edges[] = {0, 15, 16, 31, 32, 33, 63, 64, 511, 512, 1023, 1024};
    double worst = 0;
    for (int k = 0; k < nk; k++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
            problem p;
            problem_make(&p, shapes[sh][0], shapes[sh][1], shapes[sh][2], 0.6, 100 + sh);
            p.kernel = names[k];
            for (int64_t i = 0; i < p.b; i++)
                p.target[i] = i < (int64_t)(sizeof edges / sizeof *edges) ? edges[i] % p.n : p.target[i];
            p.target[p.b - 1] = p.n - 1;
            worst = fmax(worst, over_shards(&p, check_fused, names[k]));
            problem_free(&p);
        }
    if (sr_test_rank() == 0) fprintf(stderr, "  fused shapes: worst relative error %.2e\n", worst);
}

/* Extreme logits through the fused kernels: a dominant item near 1000 and a
 * spread from -2000 to 2000 (the lazy shift and its rescaling). */
static void test_fused_extreme(void)
{
    const char *names[2];
    int nk = fused_kernels(names);
    for (int k = 0; k < nk; k++) {
        problem p;
        problem_make(&p, 11, 16, 77, 0.3, 121);
        p.kernel = names[k];
        for (int64_t c = 0; c < p.d; c++) p.v[40 * p.d + c] = c == 0 ? 31.5f : 0.0f;
        for (int64_t i = 0; i < p.b; i++) {
            p.q[i * p.d] = 31.5f + 0.01f * (float)i;
            p.target[i] = i % 2 ? 40 : (int64_t)(5 * i + 1);
        }
        problem h;
        problem_make(&h, 6, 16, 150, 1.0, 122);
        h.kernel = names[k];
        for (int64_t j = 0; j < h.n; j++)
            for (int64_t c = 0; c < h.d; c++)
                h.v[j * h.d + c] = c == 0 ? (float)(j - 75) * 0.66f : c == 1 ? 0.1f * (float)(j % 7) : 0.0f;
        for (int64_t i = 0; i < h.b; i++) {
            for (int64_t c = 0; c < h.d; c++) h.q[i * h.d + c] = c == 0 ? (i % 2 ? 40.0f : -40.0f) : c == 1;
            h.target[i] = i < 2 ? 149 - i : 31 * i % h.n;
        }
        for (int P = 1; P <= 3; P++) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
            check_against_ref(&p, &s, 4096, 1e-5, "fused dominant logit");
            sr_shard_destroy(&s);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, h.n, P, NULL, &e), SR_OK);
            check_against_ref(&h, &s, 4096, 1e-5, "fused huge spread");
            sr_shard_destroy(&s);
        }
        problem_free(&p);
        problem_free(&h);
    }
}

/* Kernel names, the SGEMM fallback for d % 16 != 0, and non-finite inputs
 * (the documented NaN sum, then SR_ERR_NUMERIC in backward). */
static void test_fused_paths_and_nan(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 8, 64, NULL, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, 64), "blas");
    CU_ASSERT_EQUAL(sr_softmax_ws_set_kernel(ws, "gemm", &e), SR_ERR_CONFIG);
    CU_ASSERT_EQUAL(sr_softmax_ws_set_kernel(ws, "auto", &e), SR_OK);
    const char *a = sr_softmax_ws_kernel(ws, 64);
    CU_ASSERT(!strcmp(a, "fused-avx512") || !strcmp(a, "fused-avx2") || !strcmp(a, "blas"));
    CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, 24), "blas");
    CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, 1024), "blas");
    CU_ASSERT_EQUAL(sr_softmax_ws_set_kernel(ws, "blas", &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, 64), "blas");
    sr_softmax_ws_destroy(&ws);

    const char *names[2];
    int nk = fused_kernels(names);
    for (int k = 0; k < nk; k++) {
        problem p; /* d = 24: not covered, the SGEMM path runs */
        problem_make(&p, 7, 24, 45, 0.5, 131);
        p.kernel = names[k];
        sr_shard s;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, 2, NULL, &e), SR_OK);
        check_against_ref(&p, &s, 16, 1e-5, "fused fallback d=24");
        sr_shard_destroy(&s);
        problem_free(&p);

        problem_make(&p, 9, 32, 70, 0.5, 132);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, 2, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, p.b, 4096, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_kernel(ws, names[k], &e), SR_OK);
        sr_lse part[9];
        float dq[9 * 32], dv[35 * 32];
        for (int c = 0; c < 3; c++) {
            /* NaN in an item row (in the last, partial panel); +inf in one
             * query; -inf logits alone are fine (exp gives 0). */
            float *x = c == 0 ? &p.v[33 * p.d + 5] : c == 1 ? &p.q[4 * p.d + 3] : &p.v[2 * p.d];
            float keep = *x;
            *x = c == 0 ? NAN : INFINITY;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, 35, &s, 0, p.target, ws, part, &e), SR_OK);
            if (c == 0)
                for (int64_t i = 0; i < p.b; i++) CU_ASSERT(isnan(part[i].sum));
            if (c == 1) CU_ASSERT(isnan(part[4].sum) && !isnan(part[3].sum));
            CU_ASSERT(isnan(sr_softmax_loss(part, p.b)) || c == 2);
            if (c < 2)
                CU_ASSERT_EQUAL(sr_softmax_backward(p.q, p.b, p.d, p.v, 35, &s, 0, p.target, part, ws, dq, dv, &e),
                                SR_ERR_NUMERIC);
            *x = keep;
        }
        sr_softmax_ws_destroy(&ws);
        sr_shard_destroy(&s);
        problem_free(&p);
    }
}

/* ---- bf16 precision --------------------------------------------------------- */

/* 1 where this CPU runs the bf16 kernels (else a SKIP line). */
static int bf16_available(void)
{
    sr_softmax_ws *ws = NULL;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 1, 16, NULL, &e), SR_OK);
    int ok = sr_softmax_ws_set_kernel(ws, "fused-avx512", &e) == SR_OK &&
             sr_softmax_ws_set_precision(ws, "bf16", 64, NULL, &e) == SR_OK;
    if (!ok && sr_test_rank() == 0) fprintf(stderr, "  SKIP bf16: %s\n", e.msg);
    sr_softmax_ws_destroy(&ws);
    return ok;
}

/* worst over k of |a_k - r_k| / (bound_k + floor): <= 1 passes. */
static double bound_ratio(const double *a, const double *r, const double *bound, int64_t n, double floor)
{
    double worst = 0.0;
    for (int64_t k = 0; k < n; k++) worst = fmax(worst, fabs(a[k] - r[k]) / (bound[k] + floor));
    return worst;
}

/* The bf16 path on shard map s against the float64 twin, within the bound
 * computed from the data (sr_softmax_ref_bf16_bound) plus the fp32 path's
 * own tolerance (1e-5 of the largest entry, as the fp32 fused tests). Returns
 * the worst error / allowed ratio. */
static double check_bf16(const problem *p, const sr_shard *s, const char *what)
{
    sr_error e;
    sr_error_clear(&e);
    const int64_t nq = p->b * p->d, nv = p->n * p->d;
    double rl, bl, *r = malloc((size_t)(2 * (nq + nv)) * sizeof(double));
    double *rdq = r, *rdv = r + nq, *bdq = rdv + nv, *bdv = bdq + nq;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref(p->q, p->b, p->d, p->v, p->n, p->target, &rl, rdq, rdv, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref_bf16_bound(p->q, p->b, p->d, p->v, p->n, p->target, &bl, bdq, bdv, &e),
                          SR_OK);
    result got;
    result_alloc(&got, p);
    CU_ASSERT_EQUAL(run_virtual(p, s, 4096, &got), SR_OK);
    double mq = 0, mv = 0;
    for (int64_t k = 0; k < nq; k++) mq = fmax(mq, fabs(rdq[k]));
    for (int64_t k = 0; k < nv; k++) mv = fmax(mv, fabs(rdv[k]));
    double rloss = fabs(got.loss - rl) / (bl + 1e-5 * fmax(1.0, fabs(rl)));
    double rq = bound_ratio(got.dq, rdq, bdq, nq, 1e-5 * mq), rv = bound_ratio(got.dv, rdv, bdv, nv, 1e-5 * mv);
    double worst = fmax(rloss, fmax(rq, rv));
    CU_ASSERT(worst <= 1.0);
    if (!(worst <= 1.0) || getenv("SR_TEST_VERBOSE"))
        fprintf(stderr, "%s b=%lld d=%lld n=%lld P=%d: error/bound loss %.3f (%.2e of %.2e) dq %.3f dv %.3f\n", what,
                (long long)p->b, (long long)p->d, (long long)p->n, s->p, rloss, fabs(got.loss - rl), bl, rq, rv);
    result_free(&got);
    free(r);
    return worst;
}

/* bf16 loss and gradients against the float64 twin within the derived bound
 * (docs/losses.md, "bf16 precision"): b off the 6 / 8 query blocks, n off
 * the 32-item panels and the 512-item tile at d = 64 (odd n: a padded item
 * pair in dQ), d from 16 to 256, block and interleaved shards at P = 1..4
 * with an empty shard, targets at panel edges. */
static void test_fused_bf16_bound(void)
{
    if (!bf16_available()) return;
    static const int64_t shapes[][3] = {/* b, d, n */
                                        {1, 16, 1},   {5, 16, 31},   {7, 32, 33},  {13, 64, 100}, {9, 64, 1101},
                                        {33, 48, 97}, {17, 256, 70}, {8, 128, 257}, {150, 32, 523}};
    double worst = 0;
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        problem p;
        problem_make(&p, shapes[sh][0], shapes[sh][1], shapes[sh][2], 0.6, 700 + sh);
        p.kernel = "fused-avx512";
        p.precision = "bf16";
        for (int64_t i = 0; i < p.b && i < 6; i++) p.target[i] = (int64_t[]){0, 31, 32, 63, 511, 512}[i] % p.n;
        p.target[p.b - 1] = p.n - 1;
        worst = fmax(worst, over_shards(&p, check_bf16, "bf16"));
        problem_free(&p);
    }
    if (sr_test_rank() == 0) fprintf(stderr, "  bf16: worst error / bound %.3f\n", worst);
}

/* x rounded to bf16 (nearest, ties to even), as a float; finite x only. */
static float bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* Really bf16: each target logit of the bf16 forward is the dot product of
 * the bf16-rounded inputs (to fp32 accumulation, d 2^-24 sum |q~ v~|), and
 * most differ from the fp32 fused kernel's logits by more than that. */
static void test_fused_bf16_logits(void)
{
    if (!bf16_available()) return;
    problem p;
    problem_make(&p, 29, 64, 300, 0.6, 741);
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, 1, NULL, &e), SR_OK);
    sr_lse t16[29], t32[29];
    for (int pass = 0; pass < 2; pass++) {
        sr_softmax_ws *ws = NULL;
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, p.b, 4096, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_kernel(ws, "fused-avx512", &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_precision(ws, pass ? "bf16" : "fp32", p.d, NULL, &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, p.d), pass ? "fused-avx512-bf16" : "fused-avx512");
        CU_ASSERT_EQUAL(sr_softmax_partial(p.q, p.b, p.d, p.v, p.n, &s, 0, p.target, ws, pass ? t16 : t32, &e),
                        SR_OK);
        sr_softmax_ws_destroy(&ws);
    }
    int far = 0;
    for (int64_t i = 0; i < p.b; i++) {
        const float *qi = p.q + i * p.d, *vt = p.v + p.target[i] * p.d;
        double z = 0, a = 0;
        for (int64_t k = 0; k < p.d; k++) {
            double x = (double)bf16_round(qi[k]) * (double)bf16_round(vt[k]);
            z += x;
            a += fabs(x);
        }
        double acc = (double)p.d * 0x1p-24 * a;
        CU_ASSERT(fabs(t16[i].target - z) <= acc);
        if (fabs(t16[i].target - z) > acc)
            fprintf(stderr, "bf16 logit %lld: %.9g, bf16 inputs give %.9g\n", (long long)i, t16[i].target, z);
        far += fabs(t32[i].target - z) > acc;
    }
    CU_ASSERT(far > p.b / 2);
    if (sr_test_rank() == 0) fprintf(stderr, "  bf16 logits: %d of %lld fp32 logits off the bf16 ones\n", far, (long long)p.b);
    sr_shard_destroy(&s);
    problem_free(&p);
}

/* set_precision(name, d, cpu) refuses with SR_ERR_CONFIG and exactly want. */
static void refuse(sr_softmax_ws *ws, const char *name, int64_t d, const sr_cpu *cpu, const char *want)
{
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_softmax_ws_set_precision(ws, name, d, cpu, &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    if (strcmp(e.msg, want)) fprintf(stderr, "got:  %s\nwant: %s\n", e.msg, want);
}

/* set_precision's refusals, text exact; a bf16 workspace called at an
 * uncovered d fails instead of running fp32. */
static void test_fused_bf16_refusals(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 4, 64, NULL, &e), SR_OK);
    refuse(ws, "fp16", 64, NULL, "loss.precision = fp16: expected fp32 or bf16");
    sr_cpu no_bf16 = {.fma = true, .avx2 = true, .avx512f = true, .avx512_bf16 = false, .vector_bits = 512};
    refuse(ws, "bf16", 64, &no_bf16, "loss.precision = bf16: this CPU lacks AVX512_BF16 (vdpbf16ps); use fp32");
    CU_ASSERT_EQUAL(sr_softmax_ws_set_precision(ws, "fp32", 64, &no_bf16, &e), SR_OK);
    sr_cpu has = no_bf16;
    has.avx512_bf16 = true;
    refuse(ws, "bf16", 64, &has,
           "loss.precision = bf16 needs loss.kernel = auto or fused-avx512 (bf16 has fused AVX-512 kernels only), "
           "not blas");
    if (sr_softmax_ws_set_kernel(ws, "fused-avx2", &e) == SR_OK)
        refuse(ws, "bf16", 64, &has,
               "loss.precision = bf16 needs loss.kernel = auto or fused-avx512 (bf16 has fused AVX-512 kernels "
               "only), not fused-avx2");
    if (sr_softmax_ws_set_kernel(ws, "fused-avx512", &e) == SR_OK) {
        refuse(ws, "bf16", 24, &has,
               "loss.precision = bf16: dimension 24 is not covered by the fused kernels (a multiple of 16, at most "
               "512)");
        refuse(ws, "bf16", 528, &has,
               "loss.precision = bf16: dimension 528 is not covered by the fused kernels (a multiple of 16, at "
               "most 512)");
    }
    if (bf16_available()) {
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_precision(ws, "bf16", 64, NULL, &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(sr_softmax_ws_kernel(ws, 64), "fused-avx512-bf16");
        sr_shard s;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 3, 1, NULL, &e), SR_OK);
        float q[4 * 24] = {0}, v[3 * 24] = {0};
        int64_t tg[4] = {0, 1, 2, 0};
        sr_lse part[4];
        CU_ASSERT_EQUAL(sr_softmax_partial(q, 4, 24, v, 3, &s, 0, tg, ws, part, &e), SR_ERR_CONFIG);
        CU_ASSERT_STRING_EQUAL(e.msg, "softmax forward: precision bf16 but kernel blas at dimension 24");
        sr_shard_destroy(&s);
    }
    sr_softmax_ws_destroy(&ws);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("softmax", NULL, NULL);
    CU_add_test(s, "vexp_accuracy", test_vexp_accuracy);
    CU_add_test(s, "workspace_accounting", test_workspace_accounting);
    CU_add_test(s, "block_shards_and_tiles", test_block_shards_and_tiles);
    CU_add_test(s, "uneven_and_empty_shards", test_uneven_and_empty_shards);
    CU_add_test(s, "interleave_shards", test_interleave_shards);
    CU_add_test(s, "vector_paths", test_vector_paths);
    CU_add_test(s, "query_blocks", test_query_blocks);
    CU_add_test(s, "extreme_dominant_logit", test_extreme_dominant_logit);
    CU_add_test(s, "extreme_large_negative_and_equal", test_extreme_large_negative_and_equal);
    CU_add_test(s, "finite_difference_reference", test_finite_difference_reference);
    CU_add_test(s, "finite_difference_fast", test_finite_difference_fast);
    CU_add_test(s, "errors_and_nan", test_errors_and_nan);
    CU_add_test(s, "fused_shapes", test_fused_shapes);
    CU_add_test(s, "fused_extreme", test_fused_extreme);
    CU_add_test(s, "fused_paths_and_nan", test_fused_paths_and_nan);
    CU_add_test(s, "fused_bf16_bound", test_fused_bf16_bound);
    CU_add_test(s, "fused_bf16_logits", test_fused_bf16_logits);
    CU_add_test(s, "fused_bf16_refusals", test_fused_bf16_refusals);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
