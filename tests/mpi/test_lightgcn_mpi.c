/* test_lightgcn_mpi.c: distributed LightGCN propagation on real ranks (1-4)
 * against the float64 dense reference over the whole graph.
 *
 * Every rank builds the same global graph from a fixed seed (users with no
 * edges, items with no edges), takes its user range (balanced, skewed, or
 * with rank 0 empty) and item shard (uneven blocks with an empty rank 1,
 * interleave, balanced blocks), and runs forward and backward on its slices
 * of the same global tables. Checked on every rank: forward and backward
 * within 1e-5 (normwise, relative to the largest reference entry) of
 * sr_lgcn_ref_*, hence equal across rank counts; the same call twice gives
 * the same bits; degrees computed by pushing counts give the same bits as
 * the given popularity array; the bytes measured in a call equal layers x
 * sr_lgcn_round_bytes; round bytes <= the full-table figure, far below it on
 * a banded (sparse) graph, equal to it on a complete graph; a bad id on one
 * rank is every rank's SR_ERR_DATA.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "harness.h"
#include "io/dataset.h"
#include "models/lightgcn.h"

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

/* ---- a global graph, the same on every rank --------------------------------- */

static uint64_t mix_(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unif_(uint64_t *s) { return (double)(mix_(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

typedef struct graph {
    int64_t nu, ni, nnz;
    int64_t *indptr, *items, *degree;
} graph;

static void graph_finish_(graph *g)
{
    g->nnz = g->indptr[g->nu];
    g->degree = calloc((size_t)g->ni, sizeof *g->degree);
    for (int64_t e = 0; e < g->nnz; e++) g->degree[g->items[e]]++;
}

/* Random: every 5th user has no edges, items 3, 17 and 30 are never used,
 * the others get 1..7 distinct items. */
static graph graph_random_(int64_t nu, int64_t ni, uint64_t seed)
{
    graph g = {nu, ni, 0, calloc((size_t)nu + 1, sizeof(int64_t)), calloc((size_t)(nu * 7 + 1), sizeof(int64_t)), NULL};
    uint64_t s = seed;
    int64_t e = 0;
    for (int64_t u = 0; u < nu; u++) {
        int64_t want = u % 5 == 4 ? 0 : 1 + (int64_t)(mix_(&s) % 7);
        for (int64_t k = 0; k < want; k++) {
            int64_t i = (int64_t)(mix_(&s) % (uint64_t)ni);
            int dup = i == 3 || i == 17 || i == 30;
            for (int64_t f = g.indptr[u]; f < e; f++) dup |= g.items[f] == i;
            if (!dup) g.items[e++] = i;
        }
        g.indptr[u + 1] = e;
    }
    graph_finish_(&g);
    return g;
}

/* Banded: user u likes items u .. u + w - 1 (mod ni); with block shards and
 * balanced users, nearly every edge stays on its rank. */
static graph graph_band_(int64_t n, int64_t w)
{
    graph g = {n, n, 0, calloc((size_t)n + 1, sizeof(int64_t)), calloc((size_t)(n * w), sizeof(int64_t)), NULL};
    for (int64_t u = 0; u < n; u++) {
        for (int64_t k = 0; k < w; k++) g.items[u * w + k] = (u + k) % n;
        g.indptr[u + 1] = (u + 1) * w;
    }
    graph_finish_(&g);
    return g;
}

static graph graph_complete_(int64_t nu, int64_t ni)
{
    graph g = {nu, ni, 0, calloc((size_t)nu + 1, sizeof(int64_t)), calloc((size_t)(nu * ni), sizeof(int64_t)), NULL};
    for (int64_t u = 0; u < nu; u++) {
        for (int64_t i = 0; i < ni; i++) g.items[u * ni + i] = i;
        g.indptr[u + 1] = (u + 1) * ni;
    }
    graph_finish_(&g);
    return g;
}

static void graph_free_(graph *g)
{
    free(g->indptr), free(g->items), free(g->degree);
}

/* ---- layouts ------------------------------------------------------------------ */

typedef enum users_split { USERS_BALANCED, USERS_SKEWED, USERS_FIRST_EMPTY } users_split;
typedef enum items_layout { ITEMS_UNEVEN_EMPTY, ITEMS_INTERLEAVE, ITEMS_BALANCED } items_layout;

static void user_range_(users_split how, int64_t nu, int p, int r, int64_t *u0, int64_t *u1)
{
    if (how == USERS_BALANCED) {
        sr_dataset_user_range(nu, p, r, u0, u1);
        return;
    }
    /* weights r + 1 (skewed) or 0, 1, 1, ... (rank 0 empty when p > 1) */
    int64_t tot = 0, before = 0;
    for (int q = 0; q < p; q++) {
        int64_t wq = how == USERS_SKEWED ? q + 1 : (q == 0 && p > 1 ? 0 : 1);
        if (q < r) before += wq;
        tot += wq;
    }
    int64_t wr = how == USERS_SKEWED ? r + 1 : (r == 0 && p > 1 ? 0 : 1);
    *u0 = nu * before / tot;
    *u1 = nu * (before + wr) / tot;
}

static void item_shard_(items_layout how, int64_t ni, int p, sr_shard *s)
{
    sr_error e;
    sr_error_clear(&e);
    if (how == ITEMS_INTERLEAVE) {
        CU_ASSERT_FATAL(sr_shard_init_interleave(s, ni, p, &e) == SR_OK);
    } else if (how == ITEMS_BALANCED) {
        CU_ASSERT_FATAL(sr_shard_init_block(s, ni, p, NULL, &e) == SR_OK);
    } else {
        /* rank 1 empty; the rest get 1, 2, 3, ... parts of what is left */
        int64_t counts[8] = {0}, parts = 0, left = ni;
        for (int q = 0; q < p; q++) parts += q == 1 ? 0 : q + 1;
        for (int q = 0; q < p; q++) {
            counts[q] = q == 1 ? 0 : ni * (q + 1) / parts;
            left -= counts[q];
        }
        counts[0] += left;
        CU_ASSERT_FATAL(sr_shard_init_block(s, ni, p, counts, &e) == SR_OK);
    }
}

/* ---- one case ------------------------------------------------------------------ */

static double max_abs_(const double *x, int64_t n)
{
    double m = 0.0;
    for (int64_t j = 0; j < n; j++) m = fmax(m, fabs(x[j]));
    return m;
}

/* Largest |fast - ref| over this rank's rows, relative to the largest
 * reference entry of the table (users: rows u0.., items: shard rows). */
static double rel_err_users_(const float *fast, const double *ref, int64_t u0, int64_t u1, int64_t d, double scale)
{
    double m = 0.0;
    for (int64_t u = u0; u < u1; u++)
        for (int64_t k = 0; k < d; k++) m = fmax(m, fabs((double)fast[(u - u0) * d + k] - ref[u * d + k]));
    return m / fmax(scale, 1e-30);
}

static double rel_err_items_(const float *fast, const double *ref, const sr_shard *s, int r, int64_t d, double scale)
{
    double m = 0.0;
    for (int64_t row = 0; row < sr_shard_count(s, r); row++) {
        int64_t i = sr_shard_global(s, r, row);
        for (int64_t k = 0; k < d; k++) m = fmax(m, fabs((double)fast[row * d + k] - ref[i * d + k]));
    }
    return m / fmax(scale, 1e-30);
}

typedef struct case_result {
    double err_fwd, err_bwd;
    int64_t round_bytes, full_bytes;
} case_result;

/* Run forward + backward of graph gr on this rank's part and compare with
 * the reference; asserts bits-stability and the byte accounting too. */
static case_result run_case_(const graph *gr, users_split us, items_layout il, int64_t layers, const double *alpha,
                             int64_t d, int given_degree)
{
    case_result res = {0};
    const int p = g_comm.size, r = g_comm.rank;
    int64_t u0, u1;
    user_range_(us, gr->nu, p, r, &u0, &u1);
    sr_shard s;
    item_shard_(il, gr->ni, p, &s);
    const int64_t nu = u1 - u0, nl = sr_shard_count(&s, r);

    /* Global tables (float, then widened for the reference). */
    uint64_t seed = 1234 + (uint64_t)d;
    float *eu = malloc((size_t)(gr->nu * d) * sizeof *eu), *ei = malloc((size_t)(gr->ni * d) * sizeof *ei);
    float *gu = malloc((size_t)(gr->nu * d) * sizeof *gu), *gi = malloc((size_t)(gr->ni * d) * sizeof *gi);
    double *deu = malloc((size_t)(gr->nu * d) * sizeof *deu), *dei = malloc((size_t)(gr->ni * d) * sizeof *dei);
    double *dgu = malloc((size_t)(gr->nu * d) * sizeof *dgu), *dgi = malloc((size_t)(gr->ni * d) * sizeof *dgi);
    double *ru = malloc((size_t)(gr->nu * d) * sizeof *ru), *ri = malloc((size_t)(gr->ni * d) * sizeof *ri);
    double *rgu = malloc((size_t)(gr->nu * d) * sizeof *rgu), *rgi = malloc((size_t)(gr->ni * d) * sizeof *rgi);
    for (int64_t j = 0; j < gr->nu * d; j++) deu[j] = eu[j] = (float)unif_(&seed), dgu[j] = gu[j] = (float)unif_(&seed);
    for (int64_t j = 0; j < gr->ni * d; j++) dei[j] = ei[j] = (float)unif_(&seed), dgi[j] = gi[j] = (float)unif_(&seed);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_lgcn_ref_forward(gr->nu, gr->ni, gr->indptr, gr->items, layers, alpha, d, deu, dei, ru, ri, &e) == SR_OK);
    CU_ASSERT_FATAL(sr_lgcn_ref_backward(gr->nu, gr->ni, gr->indptr, gr->items, layers, alpha, d, dgu, dgi, rgu, rgi, &e) == SR_OK);

    /* Local slices. */
    size_t ub = (size_t)(nu * d + 1) * sizeof(float), ib = (size_t)(nl * d + 1) * sizeof(float);
    float *lu = malloc(ub), *li = malloc(ib), *lgu = malloc(ub), *lgi = malloc(ib);
    float *ou = malloc(ub), *oi = malloc(ib), *ou2 = malloc(ub), *oi2 = malloc(ib);
    if (nu > 0) {
        memcpy(lu, eu + u0 * d, (size_t)(nu * d) * sizeof(float));
        memcpy(lgu, gu + u0 * d, (size_t)(nu * d) * sizeof(float));
    }
    for (int64_t row = 0; row < nl; row++) {
        int64_t i = sr_shard_global(&s, r, row);
        memcpy(li + row * d, ei + i * d, (size_t)d * sizeof(float));
        memcpy(lgi + row * d, gi + i * d, (size_t)d * sizeof(float));
    }

    sr_mem mem;
    sr_mem_init(&mem, 0);
    sr_lgcn *g = NULL;
    /* indptr + u0: the rows are not rebased (indptr[0] != 0 on rank > 0). */
    sr_status st = sr_lgcn_create(&g, &g_comm, &s, u0, u1, gr->nu, gr->indptr + u0, gr->items,
                                  given_degree ? gr->degree : NULL, layers, alpha, d, &mem, &e);
    CU_ASSERT_FATAL(st == SR_OK && g != NULL);

    CU_ASSERT_FATAL(sr_lgcn_forward(g, lu, li, ou, oi, &e) == SR_OK);
    res.err_fwd = fmax(rel_err_users_(ou, ru, u0, u1, d, max_abs_(ru, gr->nu * d)),
                       rel_err_items_(oi, ri, &s, r, d, max_abs_(ri, gr->ni * d)));
    res.round_bytes = sr_lgcn_round_bytes(g);
    res.full_bytes = sr_lgcn_full_table_bytes(g);
    CU_ASSERT_EQUAL(sr_lgcn_last_bytes(g), layers * res.round_bytes);
    CU_ASSERT(res.round_bytes <= res.full_bytes);
    if (p == 1) CU_ASSERT_EQUAL(res.full_bytes, 0);

    /* Same call again: same bits. */
    CU_ASSERT_FATAL(sr_lgcn_forward(g, lu, li, ou2, oi2, &e) == SR_OK);
    CU_ASSERT(nu == 0 || memcmp(ou, ou2, (size_t)(nu * d) * sizeof(float)) == 0);
    CU_ASSERT(nl == 0 || memcmp(oi, oi2, (size_t)(nl * d) * sizeof(float)) == 0);

    CU_ASSERT_FATAL(sr_lgcn_backward(g, lgu, lgi, ou2, oi2, &e) == SR_OK);
    res.err_bwd = fmax(rel_err_users_(ou2, rgu, u0, u1, d, max_abs_(rgu, gr->nu * d)),
                       rel_err_items_(oi2, rgi, &s, r, d, max_abs_(rgi, gr->ni * d)));
    CU_ASSERT_EQUAL(sr_lgcn_last_bytes(g), layers * res.round_bytes);

    /* The other way of getting degrees: identical weights, identical bits. */
    sr_lgcn *g2 = NULL;
    CU_ASSERT_FATAL(sr_lgcn_create(&g2, &g_comm, &s, u0, u1, gr->nu, gr->indptr + u0, gr->items,
                                   given_degree ? NULL : gr->degree, layers, alpha, d, &mem, &e) == SR_OK);
    CU_ASSERT_FATAL(sr_lgcn_forward(g2, lu, li, ou2, oi2, &e) == SR_OK);
    CU_ASSERT(nu == 0 || memcmp(ou, ou2, (size_t)(nu * d) * sizeof(float)) == 0);
    CU_ASSERT(nl == 0 || memcmp(oi, oi2, (size_t)(nl * d) * sizeof(float)) == 0);
    sr_lgcn_destroy(&g2);

    sr_lgcn_destroy(&g);
    CU_ASSERT(g == NULL);
    CU_ASSERT_EQUAL(mem.current, 0);
    sr_shard_destroy(&s);
    free(eu), free(ei), free(gu), free(gi), free(deu), free(dei), free(dgu), free(dgi);
    free(ru), free(ri), free(rgu), free(rgi);
    free(lu), free(li), free(lgu), free(lgi), free(ou), free(oi), free(ou2), free(oi2);
    return res;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_reference_all_layouts(void)
{
    graph gr = graph_random_(41, 37, 7);
    const double alpha[4] = {0.4, 0.3, 0.2, 0.1};
    for (int us = 0; us < 3; us++)
        for (int il = 0; il < 3; il++)
            for (int di = 0; di < 2; di++) {
                int64_t d = di ? 64 : 5;
                case_result cr = run_case_(&gr, (users_split)us, (items_layout)il, 3, (us & 1) ? alpha : NULL, d,
                                           (us + il) & 1);
                if (cr.err_fwd >= 1e-5 || cr.err_bwd >= 1e-5)
                    fprintf(stderr, "[rank %d] users %d items %d d %lld: fwd %.3g bwd %.3g\n", g_comm.rank, us, il,
                            (long long)d, cr.err_fwd, cr.err_bwd);
                CU_ASSERT(cr.err_fwd < 1e-5);
                CU_ASSERT(cr.err_bwd < 1e-5);
            }
    graph_free_(&gr);
}

static void test_reference_layer_counts(void)
{
    graph gr = graph_random_(23, 19, 99);
    for (int64_t layers = 0; layers <= 4; layers++) {
        case_result cr = run_case_(&gr, USERS_SKEWED, ITEMS_UNEVEN_EMPTY, layers, NULL, 9, 0);
        CU_ASSERT(cr.err_fwd < 1e-5);
        CU_ASSERT(cr.err_bwd < 1e-5);
    }
    graph_free_(&gr);
}

/* Banded graph, 5 items per user: a rank's halo is its own block plus the
 * 4 items after it, so a round sends O(P) rows against O(N) for the table. */
static void test_volume_sparse_graph(void)
{
    graph gr = graph_band_(480, 5);
    case_result cr = run_case_(&gr, USERS_BALANCED, ITEMS_BALANCED, 3, NULL, 16, 1);
    CU_ASSERT(cr.err_fwd < 1e-5 && cr.err_bwd < 1e-5);
    if (g_comm.size > 1) {
        CU_ASSERT(cr.round_bytes > 0);
        CU_ASSERT(cr.round_bytes * 20 < cr.full_bytes);
        /* 4 rows to the next rank's owner, 4 served to the previous rank */
        CU_ASSERT_EQUAL(cr.round_bytes, 8 * 16 * 4);
    } else {
        CU_ASSERT_EQUAL(cr.round_bytes, 0);
    }
    if (g_comm.rank == 0)
        printf("\n  banded 480x480, d 16, P %d: round bytes %lld, full table %lld\n", g_comm.size,
               (long long)cr.round_bytes, (long long)cr.full_bytes);
    graph_free_(&gr);
}

/* Complete graph: every rank needs every item, the halo is the table. */
static void test_volume_complete_graph(void)
{
    graph gr = graph_complete_(12, 10);
    case_result cr = run_case_(&gr, USERS_BALANCED, ITEMS_BALANCED, 2, NULL, 3, 0);
    CU_ASSERT(cr.err_fwd < 1e-5 && cr.err_bwd < 1e-5);
    CU_ASSERT_EQUAL(cr.round_bytes, cr.full_bytes);
    graph_free_(&gr);
}

/* One rank's bad edge is every rank's error, and nobody hangs. */
static void test_bad_id_agreed(void)
{
    graph gr = graph_random_(20, 15, 3);
    const int p = g_comm.size, r = g_comm.rank;
    int64_t u0, u1;
    sr_dataset_user_range(gr.nu, p, r, &u0, &u1);
    int64_t *items = malloc((size_t)(gr.nnz + 1) * sizeof *items);
    memcpy(items, gr.items, (size_t)gr.nnz * sizeof *items);
    if (r == p - 1 && gr.indptr[u1] > gr.indptr[u0]) items[gr.indptr[u1] - 1] = gr.ni; /* out of range */
    sr_shard s;
    item_shard_(ITEMS_BALANCED, gr.ni, p, &s);
    sr_error e;
    sr_error_clear(&e);
    sr_lgcn *g = NULL;
    sr_status st = sr_lgcn_create(&g, &g_comm, &s, u0, u1, gr.nu, gr.indptr + u0, items, NULL, 2, NULL, 4, NULL, &e);
    CU_ASSERT_EQUAL(st, SR_ERR_DATA);
    CU_ASSERT_EQUAL(e.code, SR_ERR_DATA);
    CU_ASSERT(g == NULL);
    CU_ASSERT(strstr(e.msg, "outside") != NULL);
    /* degrees that cannot be this graph's, seen only by ranks with edges */
    int64_t *deg = calloc((size_t)gr.ni, sizeof *deg);
    sr_error_clear(&e);
    st = sr_lgcn_create(&g, &g_comm, &s, u0, u1, gr.nu, gr.indptr + u0, gr.items, deg, 2, NULL, 4, NULL, &e);
    CU_ASSERT_EQUAL(st, SR_ERR_DATA);
    CU_ASSERT(g == NULL);
    free(deg);
    free(items);
    sr_shard_destroy(&s);
    graph_free_(&gr);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("lightgcn_mpi", suite_init, suite_clean);
    CU_add_test(s, "forward/backward = float64 reference, 3 user splits x 3 item layouts", test_reference_all_layouts);
    CU_add_test(s, "layers 0..4 = reference", test_reference_layer_counts);
    CU_add_test(s, "sparse (banded) graph: round bytes << full table", test_volume_sparse_graph);
    CU_add_test(s, "complete graph: round bytes = full table", test_volume_complete_graph);
    CU_add_test(s, "a bad id on one rank is every rank's error", test_bad_id_agreed);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
