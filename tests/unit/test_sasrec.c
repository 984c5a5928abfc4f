/* test_sasrec.c: the SASRec backbone on one rank.
 *
 *  - finite differences of the float64 twin for every parameter table and
 *    the inputs (d = 8, 2 heads, 2 layers, L = 5, no dropout, left padding
 *    and a hole in a sequence);
 *  - the float path against the twin: h, dx and every weight gradient
 *    (relative error < 1e-4), without and with dropout (the flags are
 *    shared), at L = 5 and at L = 150 (several attention row tiles and
 *    prefixes that start inside a tile);
 *  - causality: changing a later item leaves every earlier position's
 *    encoding bit-identical (and does change the later ones);
 *  - padding rows of x are ignored; dropout reproduces per step and is off
 *    in eval mode; checkpoint views cover every parameter and optimiser
 *    state; update applies the optimiser to the summed gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "models/sasrec.h"

typedef struct fixture {
    sr_sasrec *m;
    sr_sasrec_opts o;
    int64_t n, L, d;
    float *x, *dh, *h, *dx;
    uint8_t *valid;
} fixture;

static sr_optim sgd(void) { return (sr_optim){SR_OPTIM_SGD, 0.1, 0.9, 0.999, 1e-8, 0.0}; }

/* Model with perturbed LN gains/biases and non-zero biases, so every
 * gradient is exercised; random x and dh; valid from pattern (one string of
 * '0'/'1' per sequence, or left padding of pad[q] positions). */
static void fixture_make(fixture *f, int64_t d, int64_t heads, int64_t layers, int64_t L, int64_t n,
                         double dropout, const int64_t *pad, const char *const *pattern)
{
    memset(f, 0, sizeof *f);
    f->o = (sr_sasrec_opts){d, layers, heads, L, dropout, true, 100, 11, 0.3};
    f->n = n, f->L = L, f->d = d;
    sr_error e;
    sr_error_clear(&e);
    sr_optim opt = sgd();
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_create(&f->m, &f->o, &opt, n, NULL, &e), SR_OK);
    const sr_sasrec_layout *lay = sr_sasrec_layout_of(f->m);
    float *w = sr_sasrec_weights(f->m);
    sr_rng r;
    sr_rng_init(&r, 5, 0, SR_STREAM_SYNTH);
    for (int64_t l = 0; l < layers; l++) {
        const sr_sasrec_layer_off *lo = &lay->layer[l];
        int64_t offs[] = {lo->ln1_g, lo->ln2_g}, bias[] = {lo->ln1_b, lo->ln2_b, lo->bo, lo->b1, lo->b2};
        for (int k = 0; k < 2; k++)
            for (int64_t j = 0; j < d; j++) w[offs[k] + j] += (float)(0.3 * sr_rng_normal(&r));
        for (int k = 0; k < 5; k++)
            for (int64_t j = 0; j < d; j++) w[bias[k] + j] = (float)(0.1 * sr_rng_normal(&r));
        for (int64_t j = 0; j < 3 * d; j++) w[lo->bqkv + j] = (float)(0.1 * sr_rng_normal(&r));
    }
    for (int64_t j = 0; j < d; j++) {
        w[lay->lnf_g + j] += (float)(0.3 * sr_rng_normal(&r));
        w[lay->lnf_b + j] = (float)(0.1 * sr_rng_normal(&r));
    }
    size_t rows = (size_t)(n * L), big = rows * (size_t)d;
    f->x = malloc(big * sizeof(float));
    f->dh = malloc(big * sizeof(float));
    f->h = malloc(big * sizeof(float));
    f->dx = malloc(big * sizeof(float));
    f->valid = malloc(rows);
    for (size_t i = 0; i < big; i++) {
        f->x[i] = (float)(0.4 * sr_rng_normal(&r));
        f->dh[i] = (float)sr_rng_normal(&r);
    }
    for (int64_t q = 0; q < n; q++)
        for (int64_t i = 0; i < L; i++)
            f->valid[q * L + i] = pattern ? (uint8_t)(pattern[q][i] == '1') : (uint8_t)(i >= pad[q]);
}

static void fixture_free(fixture *f)
{
    sr_sasrec_destroy(&f->m);
    free(f->x), free(f->dh), free(f->h), free(f->dx), free(f->valid);
}

static double *to_double(const float *a, int64_t n)
{
    double *o = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) o[i] = a[i];
    return o;
}

/* The named tables of one layout, for per-table reports. */
typedef struct table { char name[32]; int64_t off, len; } table;

static int tables_of(const sr_sasrec_layout *lay, table *t)
{
    int k = 0;
    const int64_t d = lay->d;
#define T(nm, o, n) (snprintf(t[k].name, sizeof t[k].name, "%s", nm), t[k].off = (o), t[k].len = (n), k++)
    T("pos", lay->pos, lay->max_len * d);
    for (int64_t l = 0; l < lay->layers; l++) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        T("ln1_g", o->ln1_g, d), T("ln1_b", o->ln1_b, d), T("wqkv", o->wqkv, 3 * d * d);
        T("bqkv", o->bqkv, 3 * d), T("wo", o->wo, d * d), T("bo", o->bo, d), T("ln2_g", o->ln2_g, d);
        T("ln2_b", o->ln2_b, d), T("w1", o->w1, d * d), T("b1", o->b1, d), T("w2", o->w2, d * d);
        T("b2", o->b2, d);
    }
    T("lnf_g", lay->lnf_g, d), T("lnf_b", lay->lnf_b, d);
#undef T
    return k;
}

/* L = sum h . dh from the twin. */
static double ref_loss(const sr_sasrec_layout *lay, const double *w, const double *x, const fixture *f,
                       const double *dh, double *hbuf)
{
    sr_sasrec_ref(lay, w, x, f->valid, f->n, 0, 0.0, 0, 0, hbuf, NULL, NULL, NULL);
    double s = 0;
    for (int64_t i = 0; i < f->n * f->L * f->d; i++) s += hbuf[i] * dh[i];
    return s;
}

/* Central difference (step 1e-5) of ref_loss in the value *slot (an entry
 * of w or x). */
static double fd_at(const sr_sasrec_layout *lay, double *w, double *x, const fixture *f,
                    const double *dh, double *hbuf, double *slot)
{
    const double eps = 1e-5, keep = *slot;
    *slot = keep + eps;
    double lp = ref_loss(lay, w, x, f, dh, hbuf);
    *slot = keep - eps;
    double lm = ref_loss(lay, w, x, f, dh, hbuf);
    *slot = keep;
    return (lp - lm) / (2 * eps);
}

static void test_fd_gradients(void)
{
    const char *pat[] = {"11111", "00111", "00001", "10111"};
    fixture f;
    fixture_make(&f, 8, 2, 2, 5, 4, 0.0, NULL, pat);
    const sr_sasrec_layout *lay = sr_sasrec_layout_of(f.m);
    const int64_t T = lay->total, NX = f.n * f.L * f.d;
    double *w = to_double(sr_sasrec_weights(f.m), T), *x = to_double(f.x, NX), *dh = to_double(f.dh, NX);
    double *h = malloc((size_t)NX * sizeof(double)), *dx = malloc((size_t)NX * sizeof(double));
    double *dw = calloc((size_t)T, sizeof(double));
    sr_sasrec_ref(lay, w, x, f.valid, f.n, 0, 0.0, 0, 0, h, dh, dw, dx);
    table t[3 + 12 * SR_SASREC_MAX_LAYERS];
    int nt = tables_of(lay, t);
    int64_t covered = 0;
    for (int k = 0; k < nt; k++) {
        double worst = 0, gmax = 0;
        for (int64_t i = t[k].off; i < t[k].off + t[k].len; i++) {
            double num = fd_at(lay, w, x, &f, dh, h, &w[i]);
            worst = fmax(worst, fabs(num - dw[i]) / fmax(1.0, fabs(dw[i])));
            gmax = fmax(gmax, fabs(dw[i]));
        }
        covered += t[k].len;
        if (worst > 1e-6) fprintf(stderr, "fd %s: worst %.3g\n", t[k].name, worst);
        CU_ASSERT(worst < 1e-6);
        CU_ASSERT(gmax > 1e-3); /* every table really gets a gradient */
    }
    CU_ASSERT_EQUAL(covered, T);
    double worst = 0;
    for (int64_t i = 0; i < NX; i++) {
        double num = fd_at(lay, w, x, &f, dh, h, &x[i]);
        worst = fmax(worst, fabs(num - dx[i]) / fmax(1.0, fabs(dx[i])));
        if (!f.valid[i / f.d]) CU_ASSERT_EQUAL(dx[i], 0.0); /* padding gets no gradient */
    }
    CU_ASSERT(worst < 1e-6);
    free(w), free(x), free(dh), free(h), free(dx), free(dw);
    fixture_free(&f);
}

/* max |a - b| / max |b| over n values. */
static double rel_err(const float *a, const double *b, int64_t n)
{
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static void check_float_vs_ref(fixture *f, bool train, int64_t step)
{
    sr_error e;
    sr_error_clear(&e);
    const sr_sasrec_layout *lay = sr_sasrec_layout_of(f->m);
    const int64_t T = lay->total, NX = f->n * f->L * f->d;
    memset(sr_sasrec_grads(f->m), 0, (size_t)T * sizeof(float));
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_forward(f->m, f->x, f->valid, f->n, train, step, f->h, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_backward(f->m, f->dh, f->dx, &e), SR_OK);
    double *w = to_double(sr_sasrec_weights(f->m), T), *x = to_double(f->x, NX), *dh = to_double(f->dh, NX);
    double *h = malloc((size_t)NX * sizeof(double)), *dx = malloc((size_t)NX * sizeof(double));
    double *dw = calloc((size_t)T, sizeof(double));
    sr_sasrec_ref(lay, w, x, f->valid, f->n, 0, train ? f->o.dropout : 0.0, f->o.seed, step, h, dh, dw, dx);
    double eh = rel_err(f->h, h, NX), edx = rel_err(f->dx, dx, NX);
    if (eh >= 1e-4 || edx >= 1e-4) fprintf(stderr, "float vs ref: h %.3g dx %.3g\n", eh, edx);
    CU_ASSERT(eh < 1e-4);
    CU_ASSERT(edx < 1e-4);
    table t[3 + 12 * SR_SASREC_MAX_LAYERS];
    int nt = tables_of(lay, t);
    const float *g = sr_sasrec_grads(f->m);
    for (int k = 0; k < nt; k++) {
        double er = rel_err(g + t[k].off, dw + t[k].off, t[k].len);
        if (er >= 1e-4) fprintf(stderr, "float vs ref: %s %.3g\n", t[k].name, er);
        CU_ASSERT(er < 1e-4);
    }
    free(w), free(x), free(dh), free(h), free(dx), free(dw);
}

static void test_float_matches_ref(void)
{
    const char *pat[] = {"11111", "00111", "00001", "10111"};
    fixture f;
    fixture_make(&f, 8, 2, 2, 5, 4, 0.3, NULL, pat);
    check_float_vs_ref(&f, false, 0);
    check_float_vs_ref(&f, true, 3); /* dropout on: same flags in both */
    fixture_free(&f);
}

static void test_float_matches_ref_long(void)
{
    /* L = 150: row tiles of 64, prefixes ending inside and on tile edges */
    const int64_t pad[] = {0, 20, 64, 149};
    fixture f;
    fixture_make(&f, 8, 2, 1, 150, 4, 0.2, pad, NULL);
    check_float_vs_ref(&f, false, 0);
    check_float_vs_ref(&f, true, 9);
    fixture_free(&f);
}

static void test_causality(void)
{
    const int64_t pad[] = {0, 30};
    for (int train = 0; train < 2; train++) {
        fixture f;
        fixture_make(&f, 16, 2, 2, 90, 2, 0.2, pad, NULL);
        sr_error e;
        sr_error_clear(&e);
        const int64_t L = f.L, d = f.d, NX = f.n * L * d, j = 71;
        float *h2 = malloc((size_t)NX * sizeof(float));
        CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, train, 4, f.h, &e), SR_OK);
        for (int64_t q = 0; q < f.n; q++)
            for (int64_t k = 0; k < d; k++) f.x[(q * L + j) * d + k] += 1.0f;
        CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, train, 4, h2, &e), SR_OK);
        for (int64_t q = 0; q < f.n; q++) {
            /* earlier positions: the same bits */
            CU_ASSERT_EQUAL(memcmp(f.h + q * L * d, h2 + q * L * d, (size_t)(j * d) * sizeof(float)), 0);
            /* the changed position and every later one move */
            for (int64_t i = j; i < L; i++)
                CU_ASSERT_NOT_EQUAL(memcmp(f.h + (q * L + i) * d, h2 + (q * L + i) * d, (size_t)d * sizeof(float)), 0);
        }
        free(h2);
        fixture_free(&f);
    }
}

static void test_padding_and_dropout_modes(void)
{
    const int64_t pad[] = {3, 0};
    fixture f;
    fixture_make(&f, 8, 2, 2, 12, 2, 0.25, pad, NULL);
    sr_error e;
    sr_error_clear(&e);
    const int64_t NX = f.n * f.L * f.d;
    size_t B = (size_t)NX * sizeof(float);
    float *a = malloc(B), *b = malloc(B), *c = malloc(B);
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, false, 1, a, &e), SR_OK);
    /* garbage in padding rows changes nothing; padding h rows are 0 */
    for (int64_t i = 0; i < 3 * f.d; i++) f.x[i] = 1e3f;
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, false, 1, b, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, B), 0);
    for (int64_t i = 0; i < 3 * f.d; i++) CU_ASSERT_EQUAL(a[i], 0.0f);
    /* eval mode ignores the step */
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, false, 7, c, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(a, c, B), 0);
    /* train: same step, same bits; another step or another batch offset, other flags */
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, true, 5, a, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, true, 5, b, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, B), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, B), 0);
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, true, 6, b, &e), SR_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, B), 0);
    sr_sasrec_set_first_seq(f.m, 2);
    CU_ASSERT_EQUAL(sr_sasrec_forward(f.m, f.x, f.valid, f.n, true, 5, b, &e), SR_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, B), 0);
    /* keep rate: about 1 - p of a large draw, and random access agrees with one pass */
    enum { N = 200000 };
    uint8_t *k1 = malloc(N), *k2 = malloc(N);
    sr_sasrec_keep(3, 2, 1, 1000, N, 0.25, k1);
    int64_t kept = 0;
    for (int i = 0; i < N; i++) kept += k1[i];
    CU_ASSERT(fabs((double)kept / N - 0.75) < 0.005);
    sr_sasrec_keep(3, 2, 1, 1000 + 13, 100, 0.25, k2);
    CU_ASSERT_EQUAL(memcmp(k1 + 13, k2, 100), 0);
    free(k1), free(k2), free(a), free(b), free(c);
    fixture_free(&f);
}

static void test_params_and_update(void)
{
    sr_sasrec_opts o = {16, 3, 4, 20, 0.1, true, 50, 1, 0.05};
    sr_optim adam = {SR_OPTIM_ADAM, 0.01, 0.9, 0.999, 1e-8, 0.0};
    sr_sasrec *m = NULL;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_create(&m, &o, &adam, 4, NULL, &e), SR_OK);
    const sr_sasrec_layout *lay = sr_sasrec_layout_of(m);
    sr_param_view v[200];
    int n = sr_sasrec_params(m, v, 200);
    CU_ASSERT_EQUAL(n, 3 * (3 + 12 * 3)); /* weights, Adam m, Adam v */
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i].rows * v[i].cols;
        for (int j = 0; j < i; j++) CU_ASSERT_NOT_EQUAL(strcmp(v[i].name, v[j].name), 0);
    }
    CU_ASSERT_EQUAL(sum, 3 * lay->total);
    CU_ASSERT_EQUAL(v[0].data, sr_sasrec_weights(m) + lay->pos);
    CU_ASSERT_STRING_EQUAL(v[0].name, "sasrec.pos");
    CU_ASSERT_EQUAL(sr_sasrec_params(m, v, 2), n); /* count even when truncated */
    /* bad configs are refused with the key named */
    sr_sasrec *bad = NULL;
    sr_sasrec_opts ob = o;
    ob.heads = 3;
    CU_ASSERT_EQUAL(sr_sasrec_create(&bad, &ob, &adam, 4, NULL, &e), SR_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "model.heads"));
    CU_ASSERT_PTR_NULL(bad);
    sr_sasrec_destroy(&m);

    /* update on one rank: SGD moves w by -lr * g and clears the gradient */
    sr_comm c;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_SELF, &e), SR_OK);
    sr_optim opt = sgd();
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_create(&m, &o, &opt, 4, NULL, &e), SR_OK);
    lay = sr_sasrec_layout_of(m); /* the first model's layout went with it */
    float *w = sr_sasrec_weights(m), *g = sr_sasrec_grads(m);
    float w0 = w[lay->layer[1].w1 + 5];
    g[lay->layer[1].w1 + 5] = 2.0f;
    CU_ASSERT_EQUAL(sr_sasrec_update(m, &c, 1, &e), SR_OK);
    SR_ASSERT_CLOSE(w[lay->layer[1].w1 + 5], w0 - 0.1 * 2.0, 1e-6);
    CU_ASSERT_EQUAL(g[lay->layer[1].w1 + 5], 0.0f);
    sr_sasrec_destroy(&m);
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sasrec", NULL, NULL);
    CU_add_test(s, "fd_gradients_every_table_and_input", test_fd_gradients);
    CU_add_test(s, "float_matches_float64_twin", test_float_matches_ref);
    CU_add_test(s, "float_matches_twin_long_tiled", test_float_matches_ref_long);
    CU_add_test(s, "later_items_never_change_earlier_positions", test_causality);
    CU_add_test(s, "padding_ignored_dropout_reproducible", test_padding_and_dropout_modes);
    CU_add_test(s, "param_views_and_update", test_params_and_update);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
