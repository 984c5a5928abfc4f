/* test_sparsemap_mpi.c: sr_sparsemap_step on real ranks (1-4) against the
 * float64 sort-based reference computed by every rank over the whole
 * catalogue.
 *
 * For sparsemax, entmax (1.5 exact; 1.3 and 3 searched; 2 = sparsemax) and
 * rankmax, on balanced blocks, uneven blocks with an empty rank and an
 * interleaved layout, and on random logits, all logits equal (support = the
 * whole catalogue, beyond the candidate cap), one logit far above the rest
 * (support of one, logits near 1000), ties at the threshold, and a cap of 2
 * candidates (every query falls back to recomputed tiles), every rank checks:
 * the loss (bit-identical on all ranks, within 1e-5 of the reference), each
 * query's threshold and support size, the probabilities of its own items,
 * that dv holds exactly the support and target rows it owns with the
 * reference values, and the all-reduced partial dq. Also: alpha = 2 - 1e-7
 * through the searched path equals sparsemax; alpha -> 1 approaches the
 * softmax loss; bad targets and NaN embeddings fail on every rank alike.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/softmax.h"
#include "loss/sparsemap.h"

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

typedef enum gen { G_RANDOM, G_EQUAL, G_FAR, G_TIES } gen;

typedef struct problem {
    int64_t b, d, n;
    float *q, *v;
    int64_t *tg;
} problem;

static void problem_make(problem *P, gen g, int64_t b, int64_t d, int64_t n, uint64_t seed)
{
    P->b = b;
    P->d = d;
    P->n = n;
    P->q = calloc((size_t)(b * d), sizeof(float));
    P->v = calloc((size_t)(n * d), sizeof(float));
    P->tg = calloc((size_t)b, sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < n * d; i++) P->v[i] = (float)(0.8 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b * d; i++) P->q[i] = (float)(0.8 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) P->tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    if (g == G_EQUAL) { /* q = 0: every logit is exactly 0 */
        memset(P->q, 0, (size_t)(b * d) * sizeof(float));
    } else if (g == G_FAR) { /* item 3 scores ~1000, far above the rest */
        for (int64_t i = 0; i < b * d; i++) P->q[i] = fabsf(P->q[i]) + 0.5f;
        for (int64_t k = 0; k < d; k++) P->v[3 * d + k] = 200.0f;
        P->tg[0] = 3;
    } else if (g == G_TIES) { /* item 1 scores 1, all others exactly 0 */
        memset(P->q, 0, (size_t)(b * d) * sizeof(float));
        for (int64_t i = 0; i < b; i++) P->q[i * d] = 1.0f;
        for (int64_t j = 0; j < n; j++) P->v[j * d] = j == 1 ? 1.0f : 0.0f;
    }
}

static void problem_free(problem *P)
{
    free(P->q);
    free(P->v);
    free(P->tg);
}

static void init_cfg(sr_config *cfg, double alpha, int64_t tile)
{
    sr_config_defaults(cfg);
    cfg->loss_alpha = alpha;
    cfg->loss_rankmax_k = 1;
    cfg->loss_bisect_tol = 1e-11;
    cfg->loss_tile = tile;
}

/* Run one step; returns the loss (NAN on failure). */
static double run_step(const problem *P, const sr_shard *s, sr_loss_kind kind, double alpha, int64_t cap,
                       int64_t tile, sr_sparsemap **keep, float *dq, sr_item_grad *dv, sr_status *st_out)
{
    const sr_comm *c = &g_comm;
    int64_t nr = sr_shard_count(s, c->rank), d = P->d;
    float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
    for (int64_t j = 0; j < nr; j++)
        memcpy(vr + j * d, P->v + sr_shard_global(s, c->rank, j) * d, (size_t)d * sizeof(float));
    sr_config cfg;
    init_cfg(&cfg, alpha, tile);
    sr_loss_init in = {c, &cfg, s, NULL, NULL, P->b, d, NULL};
    sr_error e;
    sr_error_clear(&e);
    sr_sparsemap *sm = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sparsemap_create_capped(&sm, kind, &in, cap, &e), SR_OK);
    double loss = NAN;
    sr_status st = sr_sparsemap_step(sm, P->q, P->b, vr, P->tg, 1, &loss, dq, dv, &e);
    if (st) fprintf(stderr, "[rank %d] step: %s\n", c->rank, e.msg);
    if (st_out) *st_out = st;
    if (keep)
        *keep = sm;
    else
        sr_sparsemap_destroy(&sm);
    free(vr);
    return loss;
}

static void check_case(const problem *P, const sr_shard *s, sr_loss_kind kind, double alpha, int64_t cap,
                       int64_t tile, const char *what)
{
    const sr_comm *c = &g_comm;
    const int64_t b = P->b, d = P->d, n = P->n, nr = sr_shard_count(s, c->rank);
    float *dq = malloc((size_t)(b * d) * sizeof(float));
    sr_item_grad dv = {0, NULL, NULL};
    sr_sparsemap *sm = NULL;
    sr_status st;
    double loss = run_step(P, s, kind, alpha, cap, tile, &sm, dq, &dv, &st);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);

    sr_error e;
    sr_error_clear(&e);
    sr_smap_params prm = sr_smap_params_make(kind, alpha, 1e-12);
    double rl, *rtau = malloc((size_t)b * sizeof(double)), *rp = malloc((size_t)(b * n) * sizeof(double));
    double *rdq = malloc((size_t)(b * d) * sizeof(double)), *rdv = malloc((size_t)(n * d) * sizeof(double));
    int64_t *rsup = malloc((size_t)b * sizeof(int64_t));
    CU_ASSERT_EQUAL_FATAL(sr_sparsemap_ref(&prm, P->q, b, d, P->v, n, P->tg, &rl, rtau, rsup, rp, rdq, rdv, &e),
                          SR_OK);
    int ok = fabs(loss - rl) <= 1e-5 * fmax(1.0, fabs(rl));
    CU_ASSERT(ok);
    if (!ok) fprintf(stderr, "[rank %d] %s: loss %.9g ref %.9g\n", c->rank, what, loss, rl);

    /* Same loss bits on every rank. */
    double lmax = loss, lmin = -loss;
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmax, 1, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmin, 1, &e), SR_OK);
    CU_ASSERT(lmax == -lmin);

    const double *tau = sr_sparsemap_tau(sm);
    const int64_t *sup = sr_sparsemap_support(sm);
    int bad_tau = 0, bad_sup = 0, bad_p = 0;
    for (int64_t i = 0; i < b; i++) {
        if (!(fabs(tau[i] - rtau[i]) <= 1e-5 * fmax(1.0, fabs(rtau[i])))) bad_tau++;
        if (sup[i] != rsup[i]) bad_sup++;
        if (bad_sup == 1 && sup[i] != rsup[i])
            fprintf(stderr, "[rank %d] %s: query %lld support %lld ref %lld (tau %.9g ref %.9g)\n", c->rank, what,
                    (long long)i, (long long)sup[i], (long long)rsup[i], tau[i], rtau[i]);
        for (int64_t j = 0; j < nr; j++) {
            int64_t gj = sr_shard_global(s, c->rank, j);
            if (kind == SR_LOSS_RANKMAX && gj == P->tg[i]) continue; /* target's p not given */
            double z = 0.0;
            for (int64_t k = 0; k < d; k++) z += (double)P->q[i * d + k] * (double)P->v[gj * d + k];
            /* Float logits: p moves by ~|z| x 6e-8; for alpha > 2, p ~ sqrt-like
             * at the threshold magnifies tiny logit errors. */
            double tol = (alpha > 2.0 ? 1e-3 : 1e-5) + 2e-7 * fabs(z);
            if (!(fabs(sr_sparsemap_prob(sm, i, z) - rp[i * n + gj]) <= tol)) bad_p++;
        }
    }
    CU_ASSERT_EQUAL(bad_tau, 0);
    CU_ASSERT_EQUAL(bad_sup, 0);
    CU_ASSERT_EQUAL(bad_p, 0);
    if (bad_tau || bad_p) fprintf(stderr, "[rank %d] %s: %d bad tau, %d bad p\n", c->rank, what, bad_tau, bad_p);

    /* dv: exactly the owned rows with a nonzero reference gradient plus the
     * owned targets, with the reference values. */
    double den = 0.0, num = 0.0;
    for (int64_t k = 0; k < n * d; k++) den = fmax(den, fabs(rdv[k]));
    unsigned char *in_dv = calloc((size_t)nr + 1, 1);
    CU_ASSERT_PTR_NOT_NULL(dv.rows);
    int dup = 0, extra = 0, missing = 0;
    for (int64_t r = 0; r < dv.n; r++) {
        int64_t j = dv.rows[r];
        if (j < 0 || j >= nr || in_dv[j]) {
            dup++;
            continue;
        }
        in_dv[j] = 1;
        int64_t gj = sr_shard_global(s, c->rank, j);
        int is_target = 0, in_support = 0;
        for (int64_t i = 0; i < b; i++) {
            is_target |= P->tg[i] == gj;
            in_support |= rp[i * n + gj] > 0.0;
        }
        for (int64_t k = 0; k < d; k++) num = fmax(num, fabs(dv.g[r * d + k] - rdv[gj * d + k]));
        if (!is_target && !in_support) extra++;
    }
    for (int64_t j = 0; j < nr; j++) {
        if (in_dv[j]) continue;
        int64_t gj = sr_shard_global(s, c->rank, j);
        int need = 0;
        for (int64_t i = 0; i < b; i++) need |= P->tg[i] == gj || rp[i * n + gj] > 0.0;
        missing += need;
    }
    CU_ASSERT_EQUAL(dup, 0);
    CU_ASSERT_EQUAL(extra, 0);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT(num <= 1e-5 * fmax(den, 1e-12));
    if (dup || extra || missing || !(num <= 1e-5 * fmax(den, 1e-12)))
        fprintf(stderr, "[rank %d] %s: dv dup %d extra %d missing %d err %.3g of %.3g\n", c->rank, what, dup, extra,
                missing, num, den);
    free(in_dv);

    double *sq = malloc((size_t)(b * d) * sizeof(double));
    for (int64_t k = 0; k < b * d; k++) sq[k] = dq[k];
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, sq, b * d, &e), SR_OK);
    num = den = 0.0;
    for (int64_t k = 0; k < b * d; k++) {
        num = fmax(num, fabs(sq[k] - rdq[k]));
        den = fmax(den, fabs(rdq[k]));
    }
    CU_ASSERT(num <= 1e-5 * fmax(den, 1e-12));
    if (!(num <= 1e-5 * fmax(den, 1e-12)))
        fprintf(stderr, "[rank %d] %s: dq err %.3g of %.3g\n", c->rank, what, num, den);

    free(sq);
    free(rtau);
    free(rp);
    free(rdq);
    free(rdv);
    free(rsup);
    free(dq);
    sr_sparsemap_destroy(&sm);
}

typedef struct kcase {
    sr_loss_kind kind;
    double alpha;
    const char *name;
} kcase;

static const kcase KINDS[] = {
    {SR_LOSS_SPARSEMAX, 2.0, "sparsemax"}, {SR_LOSS_ENTMAX, 1.5, "entmax1.5"}, {SR_LOSS_ENTMAX, 1.3, "entmax1.3"},
    {SR_LOSS_ENTMAX, 2.0, "entmax2"},      {SR_LOSS_ENTMAX, 3.0, "entmax3"},   {SR_LOSS_RANKMAX, 2.0, "rankmax"},
};

static void all_cases(const sr_shard *s, const char *layout)
{
    char what[160];
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        const kcase *kc = &KINDS[k];
        struct {
            gen g;
            int64_t b, d, cap, tile;
            const char *name;
        } cases[] = {
            {G_RANDOM, 9, 8, 512, 5, "random"}, {G_RANDOM, 9, 8, 2, 7, "random, cap 2"},
            {G_EQUAL, 5, 6, 3, 4, "all equal, cap 3"}, {G_FAR, 6, 4, 512, 8, "one far above"},
            {G_TIES, 5, 3, 512, 6, "ties at threshold"},
        };
        for (size_t g = 0; g < sizeof cases / sizeof cases[0]; g++) {
            problem P;
            problem_make(&P, cases[g].g, cases[g].b, cases[g].d, s->n, 1000 + 17 * k + g);
            snprintf(what, sizeof what, "%s / %s / %s", kc->name, cases[g].name, layout);
            check_case(&P, s, kc->kind, kc->alpha, cases[g].cap, cases[g].tile, what);
            problem_free(&P);
        }
    }
}

static void test_block(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 53, sr_test_size(), NULL, &e), SR_OK);
    all_cases(&s, "balanced block");
    sr_shard_destroy(&s);
}

static void test_uneven_empty(void)
{
    /* Rank 1 holds nothing; rank 0 holds most of it. */
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0}, n = 41;
    counts[0] = p == 1 ? n : 30;
    for (int r = 2; r < p; r++) counts[r] = r == p - 1 ? n - 30 - 3 * (p - 3) : 3;
    if (p == 2) counts[0] = n;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, counts, &e), SR_OK);
    all_cases(&s, "uneven block, empty rank");
    sr_shard_destroy(&s);
}

static void test_interleave(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 30, sr_test_size(), &e), SR_OK);
    all_cases(&s, "interleave");
    sr_shard_destroy(&s);
}

static void test_alpha_limits(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 47, sr_test_size(), NULL, &e), SR_OK);
    problem P;
    problem_make(&P, G_RANDOM, 7, 8, s.n, 77);
    float *dq = malloc((size_t)(P.b * P.d) * sizeof(float));
    sr_item_grad dv;
    sr_status st;
    /* alpha = 2 - 1e-7 goes through the searched (Newton/bisection) path. */
    double ls = run_step(&P, &s, SR_LOSS_SPARSEMAX, 2.0, 512, 8, NULL, dq, &dv, &st);
    double le = run_step(&P, &s, SR_LOSS_ENTMAX, 2.0 - 1e-7, 512, 8, NULL, dq, &dv, &st);
    CU_ASSERT(fabs(ls - le) <= 1e-5);
    /* alpha -> 1: the loss approaches softmax cross-entropy, monotonically. */
    double lsm;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref(P.q, P.b, P.d, P.v, P.n, P.tg, &lsm, NULL, NULL, &e), SR_OK);
    double gap_prev = INFINITY;
    const double alphas[] = {1.2, 1.05, 1.01, 1.001};
    for (int k = 0; k < 4; k++) {
        double la = run_step(&P, &s, SR_LOSS_ENTMAX, alphas[k], 512, 8, NULL, dq, &dv, &st);
        CU_ASSERT_EQUAL(st, SR_OK);
        double gap = fabs(la - lsm);
        CU_ASSERT(gap < gap_prev);
        gap_prev = gap;
    }
    CU_ASSERT(gap_prev < 5e-3 * fmax(1.0, lsm));
    if (!(gap_prev < 5e-3 * fmax(1.0, lsm)))
        fprintf(stderr, "alpha 1.001: gap to softmax %.3g (softmax %.6g)\n", gap_prev, lsm);
    free(dq);
    problem_free(&P);
    sr_shard_destroy(&s);
}

static void test_errors_everywhere(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 20, sr_test_size(), NULL, &e), SR_OK);
    problem P;
    problem_make(&P, G_RANDOM, 4, 3, s.n, 5);
    float dq[12];
    sr_item_grad dv;
    sr_status st;
    P.tg[2] = 20; /* not an item id: every rank sees it before any collective */
    run_step(&P, &s, SR_LOSS_SPARSEMAX, 2.0, 512, 8, NULL, dq, &dv, &st);
    CU_ASSERT_EQUAL(st, SR_ERR_DATA);
    P.tg[2] = 1;
    P.v[11 * 3 + 1] = NAN; /* on whichever rank owns item 11 */
    run_step(&P, &s, SR_LOSS_ENTMAX, 1.5, 512, 8, NULL, dq, &dv, &st);
    CU_ASSERT_EQUAL(st, SR_ERR_NUMERIC);
    /* rankmax with k > 1 is a config error. */
    sr_config cfg;
    init_cfg(&cfg, 1.5, 8);
    cfg.loss_rankmax_k = 3;
    sr_loss_init in = {&g_comm, &cfg, &s, NULL, NULL, 4, 3, NULL};
    sr_sparsemap *sm = NULL;
    CU_ASSERT_EQUAL(sr_sparsemap_create(&sm, SR_LOSS_RANKMAX, &in, &e), SR_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(sm);
    problem_free(&P);
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sparsemap_mpi", suite_init, suite_clean);
    CU_add_test(s, "block", test_block);
    CU_add_test(s, "uneven_empty", test_uneven_empty);
    CU_add_test(s, "interleave", test_interleave);
    CU_add_test(s, "alpha_limits", test_alpha_limits);
    CU_add_test(s, "errors_everywhere", test_errors_everywhere);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
