/* test_hsm_mpi.c: hierarchical softmax on real ranks (1-4) against the
 * float64 reference every rank computes over the whole tree.
 *
 * Checks: the tree is the same (a golden hash, and across ranks) at every
 * rank count; one step's loss (the same bits on every rank), the all-reduced
 * partial dQ and each rank's node gradients against the reference, with
 * node maps where a rank owns no node and item maps with an empty rank;
 * three Adam steps leave the same node rows as a one-shard run in this
 * process; eval_prepare + eval_scores give the reference log-probabilities
 * of each rank's items and the probabilities over all ranks sum to 1; a bad
 * target fails on every rank without a hang.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/hsm.h"
#include "loss/huffman.h"

static sr_comm g_comm; /* test-only: CUnit tests take no arguments */

static int suite_init(void)
{
    sr_error e;
    sr_error_clear(&e);
    return sr_comm_init(&g_comm, MPI_COMM_WORLD, &e) == SR_OK ? 0 : 1;
}

static int suite_clean(void)
{
    sr_comm_destroy(&g_comm);
    return 0;
}

/* Zipf-like counts, a quarter of them 0, with ties (a generator of its own;
 * the golden hash below is that of its tree, taken once). */
static int64_t *make_counts(int64_t n, uint64_t seed)
{
    int64_t *c = malloc((size_t)n * sizeof *c);
    for (int64_t i = 0; i < n; i++)
        c[i] = (i + (int64_t)seed) % 4 == 0 ? 0 : 1000 / (1 + (i * 7919 + (int64_t)seed) % n);
    return c;
}

#define GOLDEN_N 1000
#define GOLDEN_SEED 77
#define GOLDEN_HASH 0xb98c3451ef6b1b8bull

static uint64_t tree_hash(const sr_huffman *t)
{
    uint64_t x = 1469598103934665603ull;
    for (int64_t v = 0; v < 2 * t->n - 1; v++) x = (x ^ (uint32_t)t->up[v]) * 1099511628211ull;
    for (int64_t v = 0; v < t->n; v++) x = (x ^ (uint32_t)t->leafpos[v]) * 1099511628211ull;
    return x;
}

static void fill_normal(float *x, int64_t n, double s, uint64_t seed)
{
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * sr_rng_normal(&r));
}

/* Uneven item map: rank 1 empty, rank 0 the most (p >= 2). */
static void uneven_items(sr_shard *s, int64_t n)
{
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0};
    if (p == 1) counts[0] = n;
    else {
        int64_t rest = n;
        for (int r = 2; r < p; r++) rest -= (counts[r] = n / 7);
        counts[0] = rest;
    }
    sr_error e;
    sr_error_clear(&e);
    SR_ASSERT(sr_shard_init_block(s, n, p, counts, &e) == SR_OK);
}

typedef struct fixture {
    sr_config cfg;
    sr_optim opt;
    int64_t *counts;
    sr_hsm *h;
    float *w_all; /* (n - 1) x d, node id order */
} fixture;

static int fixture_make(fixture *f, const sr_shard *items, int64_t d, int64_t b_max,
                        sr_optim_kind kind, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    int64_t n = items->n;
    f->counts = make_counts(n, seed);
    f->opt = (sr_optim){kind, 0.05, 0.9, 0.999, 1e-8, 0.0};
    sr_loss_init in = {&g_comm, &f->cfg, items, f->counts, &f->opt, b_max, d, NULL};
    sr_error e;
    sr_error_clear(&e);
    if (sr_hsm_create(&f->h, &in, &e) != SR_OK) {
        fprintf(stderr, "[rank %d] hsm create: %s\n", g_comm.rank, e.msg);
        return 1;
    }
    f->w_all = malloc((size_t)((n - 1) * d) * sizeof(float));
    fill_normal(f->w_all, (n - 1) * d, 0.5, seed + 1);
    const sr_shard *map;
    int64_t nl;
    float *w = sr_hsm_params(f->h, &map, &nl);
    if (map->n != n - 1 || map->p != g_comm.size || nl != sr_shard_count(map, g_comm.rank)) return 1;
    for (int64_t r = 0; r < nl; r++)
        memcpy(w + r * d, f->w_all + sr_shard_global(map, g_comm.rank, r) * d, (size_t)d * sizeof(float));
    return 0;
}

static void fixture_free(fixture *f)
{
    sr_hsm_destroy(&f->h);
    free(f->counts);
    free(f->w_all);
}

static void test_tree_same_everywhere(void)
{
    int64_t *c = make_counts(GOLDEN_N, GOLDEN_SEED);
    sr_huffman t;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_huffman_build(&t, c, GOLDEN_N, NULL, &e), SR_OK);
    uint64_t h = tree_hash(&t);
    if (h != GOLDEN_HASH) fprintf(stderr, "tree hash 0x%016llxull\n", (unsigned long long)h);
    CU_ASSERT_EQUAL(h, GOLDEN_HASH);
    double v[4] = {(double)(h >> 32), (double)(h & 0xffffffffu), -(double)(h >> 32),
                   -(double)(h & 0xffffffffu)};
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(&g_comm, v, 4, &e), SR_OK);
    CU_ASSERT(v[0] == -v[2] && v[1] == -v[3]);
    sr_huffman_destroy(&t);
    free(c);
}

static void run_step(const sr_shard *items, int64_t d, int64_t b, uint64_t seed, const char *what)
{
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, items, d, b, SR_OPTIM_SGD, seed), 0);
    int64_t n = items->n, m = n - 1;
    float *q = malloc((size_t)(b * d) * sizeof(float)), *dq = malloc((size_t)(b * d) * sizeof(float));
    fill_normal(q, b * d, 0.5, seed + 2);
    int64_t *tg = malloc((size_t)b * sizeof *tg);
    sr_rng r;
    sr_rng_init(&r, seed + 3, 0, 1);
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    tg[b - 1] = tg[0];
    sr_error e;
    sr_error_clear(&e);
    double loss = NAN, ref_loss;
    sr_status st = sr_hsm_step(f.h, q, b, tg, &loss, dq, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    if (st) fprintf(stderr, "[rank %d] %s: %s\n", g_comm.rank, what, e.msg);
    double *rdq = malloc((size_t)(b * d) * sizeof(double)), *rdw = malloc((size_t)(m * d) * sizeof(double));
    const sr_huffman *t = sr_hsm_tree(f.h);
    sr_hsm_ref_step(t, f.w_all, d, q, b, tg, &ref_loss, rdq, rdw);
    SR_ASSERT_CLOSE(loss, ref_loss, 1e-6);
    double lmax = loss, lmin = -loss;
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(&g_comm, &lmax, 1, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(&g_comm, &lmin, 1, &e), SR_OK);
    CU_ASSERT(lmax == -lmin);

    double *sq = malloc((size_t)(b * d) * sizeof(double)), num = 0, den = 0;
    for (int64_t k = 0; k < b * d; k++) sq[k] = dq[k];
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(&g_comm, sq, b * d, &e), SR_OK);
    for (int64_t k = 0; k < b * d; k++) {
        num = fmax(num, fabs(sq[k] - rdq[k]));
        den = fmax(den, fabs(rdq[k]));
    }
    CU_ASSERT(den > 0 && num <= 1e-5 * den);
    if (!(num <= 1e-5 * den)) fprintf(stderr, "[rank %d] %s: dq err %.3g of %.3g\n", g_comm.rank, what, num, den);

    /* Node gradients: this rank's touched rows, and every owned node on a
     * target path is touched. */
    const sr_shard *map;
    int64_t nl;
    sr_hsm_params(f.h, &map, &nl);
    const sr_hsm_grad *g = sr_hsm_last_grad(f.h);
    int64_t lo = sr_shard_global(map, g_comm.rank, 0), on_path = 0;
    char *seen = calloc((size_t)nl + 1, 1);
    for (int64_t i = 0; i < b; i++)
        for (int64_t v = tg[i]; t->up[v] >= 0; v = n + (t->up[v] >> 1)) {
            int64_t node = t->up[v] >> 1;
            if (node >= lo && node < lo + nl && !seen[node - lo]) {
                seen[node - lo] = 1;
                on_path++;
            }
        }
    CU_ASSERT_EQUAL(g->n, on_path);
    den = 0;
    num = 0;
    for (int64_t k = 0; k < m * d; k++) den = fmax(den, fabs(rdw[k]));
    for (int64_t k = 0; k < g->n; k++)
        for (int64_t j = 0; j < d; j++)
            num = fmax(num, fabs(g->g[k * d + j] - rdw[(lo + g->rows[k]) * d + j]));
    CU_ASSERT(num <= 1e-5 * den);
    if (!(num <= 1e-5 * den)) fprintf(stderr, "[rank %d] %s: dw err %.3g of %.3g\n", g_comm.rank, what, num, den);
    free(seen);
    free(sq);
    free(rdq);
    free(rdw);
    free(q);
    free(dq);
    free(tg);
    fixture_free(&f);
}

static void test_step_vs_ref(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 53, sr_test_size(), NULL, &e), SR_OK);
    run_step(&s, 12, 9, 101, "53 items, balanced");
    sr_shard_destroy(&s);
    /* 4 items, 3 nodes: at 4 ranks one rank owns no node; and only one item
     * on some ranks. */
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 4, sr_test_size(), NULL, &e), SR_OK);
    run_step(&s, 5, 6, 102, "4 items, a rank without nodes");
    sr_shard_destroy(&s);
    uneven_items(&s, 200);
    run_step(&s, 7, 33, 103, "uneven items with an empty rank");
    sr_shard_destroy(&s);
}

static void test_training_rank_invariant(void)
{
    const int64_t n = 120, d = 6, b = 10, steps = 3;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    uneven_items(&s, n);
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, &s, d, b, SR_OPTIM_ADAM, 201), 0);
    const sr_huffman *t = sr_hsm_tree(f.h);
    /* One-shard twin in this process: same kernel, full table. */
    sr_shard one;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&one, n - 1, 1, NULL, &e), SR_OK);
    sr_optim_state st1;
    CU_ASSERT_EQUAL_FATAL(sr_optim_state_create(&st1, &f.opt, n - 1, d, NULL, &e), SR_OK);
    sr_hsm_grad g1;
    CU_ASSERT_EQUAL_FATAL(sr_hsm_grad_create(&g1, n - 1, n - 1, d, NULL, &e), SR_OK);
    float *q = malloc((size_t)(b * d) * sizeof(float)), *dq = malloc((size_t)(b * d) * sizeof(float));
    double part[10];
    int64_t tg[10];
    double worst_loss = 0;
    for (int64_t step = 1; step <= steps; step++) {
        fill_normal(q, b * d, 0.8, 300 + (uint64_t)step);
        sr_rng r;
        sr_rng_init(&r, 400 + (uint64_t)step, 0, 1);
        for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
        double loss;
        CU_ASSERT_EQUAL_FATAL(sr_hsm_step(f.h, q, b, tg, &loss, dq, &e), SR_OK);
        sr_hsm_update(f.h, step);
        sr_hsm_local_terms(t, &one, 0, f.w_all, d, q, b, tg, part, dq, &g1);
        double acc = 0;
        for (int64_t i = 0; i < b; i++) acc += part[i];
        worst_loss = fmax(worst_loss, fabs(loss - acc / (double)b));
        sr_optim_update(&f.opt, &st1, f.w_all, g1.g, g1.rows, g1.n, d, step);
    }
    CU_ASSERT(worst_loss < 1e-9);
    const sr_shard *map;
    int64_t nl;
    float *w = sr_hsm_params(f.h, &map, &nl);
    double num = 0, den = 0;
    for (int64_t k = 0; k < (n - 1) * d; k++) den = fmax(den, fabs(f.w_all[k]));
    for (int64_t r = 0; r < nl; r++)
        for (int64_t j = 0; j < d; j++)
            num = fmax(num, fabs(w[r * d + j] - f.w_all[sr_shard_global(map, g_comm.rank, r) * d + j]));
    CU_ASSERT(num <= 1e-6 * den);
    if (!(num <= 1e-6 * den)) fprintf(stderr, "[rank %d] trained rows differ by %.3g of %.3g\n", g_comm.rank, num, den);
    sr_hsm_grad_destroy(&g1, NULL);
    sr_optim_state_destroy(&st1, NULL);
    sr_shard_destroy(&one);
    free(q);
    free(dq);
    fixture_free(&f);
    sr_shard_destroy(&s);
}

static void run_eval(const sr_shard *items, int64_t d, int64_t b, uint64_t seed, const char *what)
{
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, items, d, 4, SR_OPTIM_SGD, seed), 0);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_hsm_eval_prepare(f.h, &e), SR_OK);
    int64_t ni = sr_shard_count(items, g_comm.rank);
    float *q = malloc((size_t)(b * d) * sizeof(float)), *out = malloc((size_t)(b * ni + 1) * sizeof(float));
    fill_normal(q, b * d, 0.6, seed + 5);
    /* Two ranges: scores must not depend on the split. */
    int64_t mid = ni / 3;
    float *tmp = malloc((size_t)(b * ni + 1) * sizeof(float));
    sr_hsm_eval_scores(f.h, q, b, d, 0, mid, tmp);
    for (int64_t i = 0; i < b; i++) memcpy(out + i * ni, tmp + i * mid, (size_t)mid * sizeof(float));
    sr_hsm_eval_scores(f.h, q, b, d, mid, ni, tmp);
    for (int64_t i = 0; i < b; i++)
        memcpy(out + i * ni + mid, tmp + i * (ni - mid), (size_t)(ni - mid) * sizeof(float));
    const sr_huffman *t = sr_hsm_tree(f.h);
    double worst = 0, *sum = calloc((size_t)b, sizeof(double));
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < ni; j++) {
            double ref = sr_hsm_ref_logp(t, f.w_all, d, q + i * d, sr_shard_global(items, g_comm.rank, j));
            worst = fmax(worst, fabs(out[i * ni + j] - ref) / fmax(1.0, fabs(ref)));
            sum[i] += exp((double)out[i * ni + j]);
        }
    CU_ASSERT(worst < 1e-5);
    if (!(worst < 1e-5)) fprintf(stderr, "[rank %d] %s: score err %.3g\n", g_comm.rank, what, worst);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(&g_comm, sum, b, &e), SR_OK);
    for (int64_t i = 0; i < b; i++) CU_ASSERT(fabs(sum[i] - 1.0) < 1e-5);
    free(sum);
    free(tmp);
    free(q);
    free(out);
    fixture_free(&f);
}

static void test_eval(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    uneven_items(&s, 300);
    run_eval(&s, 8, 5, 501, "uneven items with an empty rank");
    sr_shard_destroy(&s);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 157, sr_test_size(), &e), SR_OK);
    run_eval(&s, 5, 3, 502, "interleave");
    sr_shard_destroy(&s);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 3, sr_test_size(), NULL, &e), SR_OK);
    run_eval(&s, 4, 2, 503, "3 items: ranks without items or nodes");
    sr_shard_destroy(&s);
}

static void test_bad_target_everywhere(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 10, sr_test_size(), NULL, &e), SR_OK);
    fixture f;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, &s, 2, 2, SR_OPTIM_SGD, 601), 0);
    float q[4] = {1, 2, 3, 4}, dq[4];
    int64_t tg[2] = {3, 10};
    CU_ASSERT_EQUAL(sr_hsm_step(f.h, q, 2, tg, NULL, dq, &e), SR_ERR_DATA);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_hsm_step(f.h, q, 3, tg, NULL, dq, &e), SR_ERR_INTERNAL);
    fixture_free(&f);
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("hsm_mpi", suite_init, suite_clean);
    CU_add_test(s, "tree_same_everywhere", test_tree_same_everywhere);
    CU_add_test(s, "step_vs_ref", test_step_vs_ref);
    CU_add_test(s, "training_rank_invariant", test_training_rank_invariant);
    CU_add_test(s, "eval", test_eval);
    CU_add_test(s, "bad_target_everywhere", test_bad_target_everywhere);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
