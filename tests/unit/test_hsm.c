/* test_hsm.c: the Huffman tree and hierarchical softmax in one process.
 *
 * Tree: optimal (weighted path length equals an independent heap-based
 * Huffman cost), heavier items never deeper, a full binary tree (Kraft sum
 * 1), depth-first leaf positions consistent with the codes, a golden hash
 * (test_hsm_mpi checks its own at every rank count). Loss: the path
 * kernel over P virtual node shards (uneven, empty) against the float64
 * twin, node gradients bit-identical for every P, finite differences,
 * probabilities summing to 1, the chunked scorer against the reference
 * (multi-chunk, arbitrary ranges), the row-sparse update with shared nodes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/hsm.h"
#include "loss/huffman.h"

/* ---- helpers ----------------------------------------------------------- */

/* Zipf-like counts with zeros and ties. */
static int64_t *make_counts(int64_t n, uint64_t seed)
{
    int64_t *c = malloc((size_t)n * sizeof *c);
    sr_rng r;
    sr_rng_init(&r, seed, 0, 9);
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = sr_rng_below(&r, 4);
        c[i] = k == 0 ? 0 : (int64_t)(1000.0 / (1.0 + (double)sr_rng_below(&r, (uint64_t)n)));
    }
    return c;
}

/* Independent Huffman cost: binary min-heap, cost = sum of merged weights
 * (= weighted path length of any Huffman tree). */
static void heap_push(int64_t *h, int64_t *len, int64_t x)
{
    int64_t i = (*len)++;
    h[i] = x;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        int64_t p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static int64_t heap_pop(int64_t *h, int64_t *len)
{
    int64_t top = h[0];
    h[0] = h[--(*len)];
    for (int64_t i = 0;;) {
        int64_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < *len && h[l] < h[s]) s = l;
        if (r < *len && h[r] < h[s]) s = r;
        if (s == i) break;
        int64_t t = h[s];
        h[s] = h[i];
        h[i] = t;
        i = s;
    }
    return top;
}

static int64_t heap_huffman_cost(const int64_t *counts, int64_t n)
{
    int64_t *h = malloc((size_t)n * sizeof *h), len = 0, cost = 0;
    for (int64_t i = 0; i < n; i++) heap_push(h, &len, counts[i] > 0 ? counts[i] : 1);
    while (len > 1) {
        int64_t a = heap_pop(h, &len), b = heap_pop(h, &len);
        cost += a + b;
        heap_push(h, &len, a + b);
    }
    free(h);
    return cost;
}

static uint64_t tree_hash(const sr_huffman *t)
{
    uint64_t x = 1469598103934665603ull;
    for (int64_t v = 0; v < 2 * t->n - 1; v++) x = (x ^ (uint32_t)t->up[v]) * 1099511628211ull;
    for (int64_t v = 0; v < t->n; v++) x = (x ^ (uint32_t)t->leafpos[v]) * 1099511628211ull;
    return x;
}

/* Golden hash of the tree of make_counts(1000, 77), taken once: a change of
 * the tree's construction (tie rule, numbering) must be deliberate.
 * test_hsm_mpi holds its own golden tree, checked at 1-4 ranks. */
#define GOLDEN_N 1000
#define GOLDEN_SEED 77
#define GOLDEN_HASH 0xcf79966684eb3907ull

static void fill_normal(float *x, int64_t n, double s, uint64_t seed)
{
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * sr_rng_normal(&r));
}

/* ---- tree -------------------------------------------------------------- */

static void check_tree(int64_t n, uint64_t seed)
{
    int64_t *c = make_counts(n, seed);
    sr_huffman t;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_huffman_build(&t, c, n, NULL, &e), SR_OK);
    int *len = malloc((size_t)n * sizeof *len);
    int64_t wpl = 0;
    double kraft = 0;
    int maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        len[i] = sr_huffman_depth(&t, i);
        wpl += sr_huffman_weight(c[i]) * len[i];
        kraft += ldexp(1.0, -len[i]);
        if (len[i] > maxd) maxd = len[i];
    }
    CU_ASSERT_EQUAL(wpl, heap_huffman_cost(c, n));
    CU_ASSERT(fabs(kraft - 1.0) < 1e-12);
    CU_ASSERT_EQUAL(maxd, t.max_depth);
    /* Heavier never deeper. */
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n && n <= 2000; j++)
            if (sr_huffman_weight(c[i]) > sr_huffman_weight(c[j]) && len[i] > len[j]) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* Every inner node has exactly one child 0 and one child 1. */
    int *kids = calloc((size_t)(2 * (n - 1)), sizeof *kids);
    for (int64_t v = 0; v < 2 * n - 1; v++)
        if (t.up[v] >= 0) kids[t.up[v]]++;
    int roots = 0;
    for (int64_t u = 0; u < n - 1; u++) roots += t.up[n + u] < 0;
    CU_ASSERT_EQUAL(roots, 1);
    CU_ASSERT(t.up[n + t.root] < 0);
    for (int64_t k = 0; k < 2 * (n - 1); k++) CU_ASSERT_EQUAL(kids[k], 1);
    /* Leaf positions: a permutation, and codes increase in that order
     * (depth-first, child 0 first). */
    int64_t *inv = malloc((size_t)n * sizeof *inv);
    for (int64_t i = 0; i < n; i++) inv[i] = -1;
    for (int64_t i = 0; i < n; i++)
        if (t.leafpos[i] >= 0 && t.leafpos[i] < n) inv[t.leafpos[i]] = i;
    for (int64_t i = 0; i < n; i++) CU_ASSERT(inv[i] >= 0);
    int64_t *pa = malloc((size_t)t.max_depth * sizeof *pa), *pb = malloc((size_t)t.max_depth * sizeof *pb);
    int8_t *sa = malloc((size_t)t.max_depth), *sb = malloc((size_t)t.max_depth);
    int order_bad = 0;
    for (int64_t k = 0; k + 1 < n; k++) {
        int la = sr_huffman_path(&t, inv[k], pa, sa), lb = sr_huffman_path(&t, inv[k + 1], pb, sb);
        CU_ASSERT(pa[0] == t.root && pb[0] == t.root);
        int m = 0;
        while (m < la && m < lb && sa[m] == sb[m]) m++;
        /* First difference: a goes to child 0 (+1), b to child 1 (-1). */
        if (!(m < la && m < lb && sa[m] == 1 && sb[m] == -1)) order_bad++;
    }
    CU_ASSERT_EQUAL(order_bad, 0);
    free(pa);
    free(pb);
    free(sa);
    free(sb);
    free(inv);
    free(kids);
    free(len);
    sr_huffman_destroy(&t);
    free(c);
}

static void test_tree_optimal(void)
{
    check_tree(2, 1);
    check_tree(3, 2);
    check_tree(5, 3);
    check_tree(64, 4);
    check_tree(1000, 5);
    check_tree(20000, 6);
    /* All-equal weights: a complete tree, depths differ by at most 1. */
    int64_t c[37] = {0};
    sr_huffman t;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_huffman_build(&t, c, 37, NULL, &e), SR_OK);
    int lo = 99, hi = 0;
    for (int64_t i = 0; i < 37; i++) {
        int l = sr_huffman_depth(&t, i);
        lo = l < lo ? l : lo;
        hi = l > hi ? l : hi;
    }
    CU_ASSERT(lo == 5 && hi == 6);
    sr_huffman_destroy(&t);
}

static void test_tree_deterministic(void)
{
    int64_t *c = make_counts(GOLDEN_N, GOLDEN_SEED);
    sr_huffman a, b;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_huffman_build(&a, c, GOLDEN_N, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_huffman_build(&b, c, GOLDEN_N, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(a.up, b.up, (size_t)(2 * GOLDEN_N - 1) * sizeof *a.up), 0);
    uint64_t hsh = tree_hash(&a);
    if (hsh != GOLDEN_HASH) fprintf(stderr, "tree hash 0x%016llxull\n", (unsigned long long)hsh);
    CU_ASSERT_EQUAL(hsh, GOLDEN_HASH);
    sr_huffman_destroy(&a);
    sr_huffman_destroy(&b);
    free(c);
}

static void test_tree_errors(void)
{
    sr_huffman t;
    sr_error e;
    sr_error_clear(&e);
    int64_t c[3] = {4, -1, 2};
    CU_ASSERT_EQUAL(sr_huffman_build(&t, c, 1, NULL, &e), SR_ERR_CONFIG);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_huffman_build(&t, c, 3, NULL, &e), SR_ERR_DATA);
    CU_ASSERT(strstr(e.msg, "item 1") != NULL);
    sr_huffman_destroy(&t);
}

/* ---- loss kernel over virtual shards ----------------------------------- */

typedef struct problem {
    int64_t n, d, b;
    int64_t *counts, *tg;
    sr_huffman t;
    float *w, *q; /* (n - 1) x d, b x d */
} problem;

static void problem_make(problem *p, int64_t n, int64_t d, int64_t b, double scale, uint64_t seed)
{
    p->n = n;
    p->d = d;
    p->b = b;
    p->counts = make_counts(n, seed);
    sr_error e;
    sr_error_clear(&e);
    SR_ASSERT(sr_huffman_build(&p->t, p->counts, n, NULL, &e) == SR_OK);
    p->w = malloc((size_t)((n - 1) * d) * sizeof(float));
    p->q = malloc((size_t)(b * d) * sizeof(float));
    fill_normal(p->w, (n - 1) * d, scale, seed + 1);
    fill_normal(p->q, b * d, scale, seed + 2);
    p->tg = malloc((size_t)b * sizeof *p->tg);
    sr_rng r;
    sr_rng_init(&r, seed + 3, 0, 1);
    for (int64_t i = 0; i < b; i++) p->tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    p->tg[b - 1] = p->tg[0]; /* a shared path: gradients must add up */
}

static void problem_free(problem *p)
{
    sr_huffman_destroy(&p->t);
    free(p->counts);
    free(p->tg);
    free(p->w);
    free(p->q);
}

/* Fast path over P virtual shards: loss, summed dq (double), dense dw. */
static void run_virtual(const problem *p, const int64_t *counts, int np, double *loss, double *dq,
                        float *dw)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    SR_ASSERT(sr_shard_init_block(&s, p->n - 1, np, counts, &e) == SR_OK);
    int64_t d = p->d, b = p->b;
    memset(dq, 0, (size_t)(b * d) * sizeof(double));
    memset(dw, 0, (size_t)((p->n - 1) * d) * sizeof(float));
    double *part = calloc((size_t)b, sizeof(double)), *tot = calloc((size_t)b, sizeof(double));
    float *dqr = malloc((size_t)(b * d) * sizeof(float));
    for (int r = 0; r < np; r++) {
        int64_t nl = sr_shard_count(&s, r), lo = sr_shard_global(&s, r, 0);
        sr_hsm_grad g;
        int64_t cap = nl < b * p->t.max_depth ? nl : b * p->t.max_depth;
        SR_ASSERT(sr_hsm_grad_create(&g, cap, nl, d, NULL, &e) == SR_OK);
        sr_hsm_local_terms(&p->t, &s, r, p->w + lo * d, d, p->q, b, p->tg, part, dqr, &g);
        for (int64_t i = 0; i < b; i++) tot[i] += part[i];
        for (int64_t k = 0; k < b * d; k++) dq[k] += dqr[k];
        for (int64_t k = 0; k < g.n; k++)
            memcpy(dw + (lo + g.rows[k]) * d, g.g + k * d, (size_t)d * sizeof(float));
        sr_hsm_grad_destroy(&g, NULL);
    }
    double acc = 0;
    for (int64_t i = 0; i < b; i++) acc += tot[i];
    *loss = acc / (double)b;
    free(part);
    free(tot);
    free(dqr);
    sr_shard_destroy(&s);
}

static double max_rel_err(const double *ref, const double *x, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t k = 0; k < n; k++) {
        num = fmax(num, fabs(x[k] - ref[k]));
        den = fmax(den, fabs(ref[k]));
    }
    return den > 0 ? num / den : num;
}

static void test_loss_vs_ref_virtual(void)
{
    problem p;
    problem_make(&p, 300, 16, 40, 0.5, 11);
    int64_t d = p.d, b = p.b, m = p.n - 1;
    double ref_loss, *rdq = malloc((size_t)(b * d) * sizeof(double));
    double *rdw = malloc((size_t)(m * d) * sizeof(double));
    sr_hsm_ref_step(&p.t, p.w, d, p.q, b, p.tg, &ref_loss, rdq, rdw);
    double *dq = malloc((size_t)(b * d) * sizeof(double)), *dwd = malloc((size_t)(m * d) * sizeof(double));
    float *dw = malloc((size_t)(m * d) * sizeof(float)), *dw1 = malloc((size_t)(m * d) * sizeof(float));
    int64_t uneven[4] = {200, 0, 90, 9}; /* an empty shard */
    const struct {
        int np;
        const int64_t *counts;
    } cases[] = {{1, NULL}, {2, NULL}, {3, NULL}, {4, uneven}, {7, NULL}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double loss;
        run_virtual(&p, cases[c].counts, cases[c].np, &loss, dq, dw);
        SR_ASSERT_CLOSE(loss, ref_loss, 1e-6);
        CU_ASSERT(max_rel_err(rdq, dq, b * d) < 1e-5);
        for (int64_t k = 0; k < m * d; k++) dwd[k] = dw[k];
        CU_ASSERT(max_rel_err(rdw, dwd, m * d) < 1e-5);
        /* Node gradients never cross shards: the same bits for every P. */
        if (c == 0) memcpy(dw1, dw, (size_t)(m * d) * sizeof(float));
        else CU_ASSERT_EQUAL(memcmp(dw1, dw, (size_t)(m * d) * sizeof(float)), 0);
    }
    /* The loss is not trivial: above zero, below the depth bound at w = 0. */
    CU_ASSERT(ref_loss > 0.1);
    free(rdq);
    free(rdw);
    free(dq);
    free(dwd);
    free(dw);
    free(dw1);
    problem_free(&p);
}

/* Central differences of the float64 loss in entries x[0], x[step], ...
 * (x is p->w or p->q) against the reference gradient ref and the fast
 * path's gradient fast; counts checked entries and mismatches. */
static void fd_check(problem *p, float *x, int64_t n, int64_t step, const double *ref,
                     const double *fast, int *checked, int *bad)
{
    const float h = 1e-2f;
    for (int64_t k = 0; k < n; k += step) {
        if (ref[k] == 0.0) continue; /* a node off every target path */
        float keep = x[k];
        double lp, lm;
        x[k] = keep + h;
        sr_hsm_ref_step(&p->t, p->w, p->d, p->q, p->b, p->tg, &lp, NULL, NULL);
        x[k] = keep - h;
        sr_hsm_ref_step(&p->t, p->w, p->d, p->q, p->b, p->tg, &lm, NULL, NULL);
        x[k] = keep;
        double fd = (lp - lm) / (2.0 * (double)h);
        (*checked)++;
        if (fabs(fd - ref[k]) > 1e-4 + 1e-3 * fabs(ref[k]) || fabs(fd - fast[k]) > 1e-4 + 1e-3 * fabs(fd))
            (*bad)++;
    }
}

static void test_finite_differences(void)
{
    problem p;
    problem_make(&p, 50, 6, 7, 0.7, 21);
    int64_t d = p.d, b = p.b, m = p.n - 1;
    double l0, *dq = malloc((size_t)(b * d) * sizeof(double)), *dw = malloc((size_t)(m * d) * sizeof(double));
    float *fdw = malloc((size_t)(m * d) * sizeof(float));
    double *fdq = malloc((size_t)(b * d) * sizeof(double)), *fdwd = malloc((size_t)(m * d) * sizeof(double));
    run_virtual(&p, NULL, 2, &l0, fdq, fdw);
    for (int64_t k = 0; k < m * d; k++) fdwd[k] = fdw[k];
    sr_hsm_ref_step(&p.t, p.w, d, p.q, b, p.tg, &l0, dq, dw);
    int checked = 0, bad = 0;
    fd_check(&p, p.w, m * d, 5, dw, fdwd, &checked, &bad);
    fd_check(&p, p.q, b * d, 3, dq, fdq, &checked, &bad);
    CU_ASSERT(checked > 20);
    CU_ASSERT_EQUAL(bad, 0);
    free(dq);
    free(dw);
    free(fdw);
    free(fdwd);
    free(fdq);
    problem_free(&p);
}

/* ---- the object on one rank: eval scorer, update --------------------- */

typedef struct one {
    sr_comm c;
    sr_config cfg;
    sr_shard items;
    sr_optim opt;
    sr_hsm *h;
} one;

static int one_make(one *o, const int64_t *counts, int64_t n, int64_t d, int64_t b_max,
                    sr_optim_kind kind)
{
    sr_error e;
    sr_error_clear(&e);
    memset(o, 0, sizeof *o);
    if (sr_comm_init(&o->c, MPI_COMM_SELF, &e) != SR_OK) return 1;
    if (sr_shard_init_block(&o->items, n, 1, NULL, &e) != SR_OK) return 1;
    o->opt = (sr_optim){kind, 0.1, 0.9, 0.999, 1e-8, 0.0};
    sr_loss_init in = {&o->c, &o->cfg, &o->items, counts, &o->opt, b_max, d, NULL};
    return sr_hsm_create(&o->h, &in, &e) != SR_OK;
}

static void one_free(one *o)
{
    sr_hsm_destroy(&o->h);
    sr_shard_destroy(&o->items);
    sr_comm_destroy(&o->c);
}

/* Scores of every item through the scorer in tiles of `tile` items. */
static void score_all(sr_hsm *h, const float *q, int64_t b, int64_t d, int64_t n, int64_t tile,
                      float *all)
{
    float *buf = malloc((size_t)(b * tile) * sizeof(float));
    for (int64_t j0 = 0; j0 < n; j0 += tile) {
        int64_t j1 = j0 + tile < n ? j0 + tile : n;
        sr_hsm_eval_scores(h, q, b, d, j0, j1, buf);
        for (int64_t i = 0; i < b; i++)
            memcpy(all + i * n + j0, buf + i * (j1 - j0), (size_t)(j1 - j0) * sizeof(float));
    }
    free(buf);
}

static void check_scores(int64_t n, int64_t d, int64_t b, const int64_t *tiles, int ntiles)
{
    int64_t *counts = make_counts(n, 31 + (uint64_t)n);
    one o;
    CU_ASSERT_EQUAL_FATAL(one_make(&o, counts, n, d, 8, SR_OPTIM_SGD), 0);
    int64_t nl;
    float *w = sr_hsm_params(o.h, NULL, &nl);
    CU_ASSERT_EQUAL(nl, n - 1);
    fill_normal(w, (n - 1) * d, 0.4, 41);
    float *q = malloc((size_t)(b * d) * sizeof(float));
    fill_normal(q, b * d, 0.4, 42);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_hsm_eval_prepare(o.h, &e), SR_OK);
    float *all = malloc((size_t)(b * n) * sizeof(float)), *first = malloc((size_t)(b * n) * sizeof(float));
    const sr_huffman *t = sr_hsm_tree(o.h);
    for (int c = 0; c < ntiles; c++) {
        score_all(o.h, q, b, d, n, tiles[c], all);
        if (c == 0) memcpy(first, all, (size_t)(b * n) * sizeof(float));
        double worst = 0, sum_bad = 0, sum_ref_bad = 0;
        for (int64_t i = 0; i < b; i++) {
            double s = 0, sr = 0;
            for (int64_t j = 0; j < n; j++) {
                double ref = sr_hsm_ref_logp(t, w, d, q + i * d, j);
                worst = fmax(worst, fabs(all[i * n + j] - ref) / fmax(1.0, fabs(ref)));
                s += exp((double)all[i * n + j]);
                sr += exp(ref);
            }
            sum_bad = fmax(sum_bad, fabs(s - 1.0));
            sum_ref_bad = fmax(sum_ref_bad, fabs(sr - 1.0));
        }
        CU_ASSERT(worst < 1e-5);
        CU_ASSERT(sum_bad < 1e-5);
        CU_ASSERT(sum_ref_bad < 1e-9);
        if (!(worst < 1e-5 && sum_bad < 1e-5 && sum_ref_bad < 1e-9))
            fprintf(stderr, "n %lld tile %lld: score err %.3g, sum err %.3g (ref %.3g)\n", (long long)n,
                    (long long)tiles[c], worst, sum_bad, sum_ref_bad);
        /* The tiling changes the chunks, hardly the values. */
        double diff = 0;
        for (int64_t k = 0; k < b * n; k++) diff = fmax(diff, fabs(all[k] - first[k]));
        CU_ASSERT(diff < 1e-5);
    }
    free(all);
    free(first);
    free(q);
    one_free(&o);
    free(counts);
}

static void test_scores_small(void)
{
    const int64_t tiles[] = {1000, 1, 7, 64};
    check_scores(2, 3, 5, tiles, 4);
    check_scores(3, 4, 33, tiles, 4); /* two query blocks */
    check_scores(257, 8, 70, tiles, 4);
}

static void test_scores_many_chunks(void)
{
    /* More nodes than one chunk holds (16384): chunks flush mid-range. */
    const int64_t tiles[] = {40000, 5000};
    check_scores(40000, 4, 3, tiles, 2);
}

static void test_update_no_skips(void)
{
    int64_t n = 40, d = 5, b = 6;
    int64_t *counts = make_counts(n, 51);
    one o;
    CU_ASSERT_EQUAL_FATAL(one_make(&o, counts, n, d, b, SR_OPTIM_SGD), 0);
    int64_t nl;
    float *w = sr_hsm_params(o.h, NULL, &nl);
    fill_normal(w, nl * d, 0.3, 52);
    /* Saturated scores too: word2vec would skip |z| >= 6, we must not. */
    const int64_t root = sr_hsm_tree(o.h)->root;
    for (int64_t k = 0; k < d; k++) w[root * d + k] *= 40.0f;
    float *w0 = malloc((size_t)(nl * d) * sizeof(float)), *q = malloc((size_t)(b * d) * sizeof(float));
    memcpy(w0, w, (size_t)(nl * d) * sizeof(float));
    fill_normal(q, b * d, 1.0, 53);
    int64_t tg[6] = {3, 3, 17, 3, 39, 0};
    float dq[30];
    double loss, ref_loss, rdw[39 * 5];
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_hsm_step(o.h, q, b, tg, &loss, dq, &e), SR_OK);
    sr_hsm_ref_step(sr_hsm_tree(o.h), w, d, q, b, tg, &ref_loss, NULL, rdw);
    SR_ASSERT_CLOSE(loss, ref_loss, 1e-6);
    /* Touched = union of the target paths, each once. */
    const sr_huffman *t = sr_hsm_tree(o.h);
    char *on = calloc((size_t)nl, 1);
    int64_t uni = 0;
    for (int i = 0; i < b; i++)
        for (int64_t v = tg[i]; t->up[v] >= 0; v = n + (t->up[v] >> 1))
            if (!on[t->up[v] >> 1]) {
                on[t->up[v] >> 1] = 1;
                uni++;
            }
    const sr_hsm_grad *g = sr_hsm_last_grad(o.h);
    CU_ASSERT_EQUAL(g->n, uni);
    sr_hsm_update(o.h, 1);
    int bad = 0;
    for (int64_t r = 0; r < nl; r++)
        for (int64_t k = 0; k < d; k++) {
            double want = on[r] ? (double)w0[r * d + k] - 0.1 * rdw[r * d + k] : (double)w0[r * d + k];
            if (fabs((double)w[r * d + k] - want) > 1e-6 * fmax(1.0, fabs(want))) bad++;
            if (on[r] && fabs(rdw[r * d + k]) > 1e-6 && w[r * d + k] == w0[r * d + k]) bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* A bad target is a data error, nothing computed. */
    tg[2] = n;
    CU_ASSERT_EQUAL(sr_hsm_step(o.h, q, b, tg, &loss, dq, &e), SR_ERR_DATA);
    free(on);
    free(w0);
    free(q);
    one_free(&o);
    free(counts);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("hsm", NULL, NULL);
    CU_add_test(s, "tree_optimal", test_tree_optimal);
    CU_add_test(s, "tree_deterministic", test_tree_deterministic);
    CU_add_test(s, "tree_errors", test_tree_errors);
    CU_add_test(s, "loss_vs_ref_virtual", test_loss_vs_ref_virtual);
    CU_add_test(s, "finite_differences", test_finite_differences);
    CU_add_test(s, "scores_small", test_scores_small);
    CU_add_test(s, "scores_many_chunks", test_scores_many_chunks);
    CU_add_test(s, "update_no_skips", test_update_no_skips);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
