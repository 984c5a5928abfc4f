/* test_sampled_mpi.c: ssm, nce and bpr on real ranks (1-4) against the
 * float64 twin, and the exhaustive ssm against the exact softmax.
 *
 * Every rank generates the same global problem from a fixed seed, keeps its
 * shard, runs one sr_sampled_step, and all ranks gather every rank's drawn
 * sample (sr_sampled_last_sample) to evaluate sr_sampled_ref on the whole
 * catalogue. Checked: the loss (bit-identical on all ranks, relative error
 * < 1e-5 against the twin), the all-reduced partial dq and this rank's sparse
 * dv rows (distinct, increasing, every other row's reference gradient is 0)
 * within 1e-5 of the largest reference entry. Layouts: uneven blocks with an
 * empty rank, interleave, balanced blocks. With k = N, uniform, correction
 * on, the loss and gradients equal sr_softmax_ref's at every rank count
 * (hence across rank counts). Same step twice: same bits; next step: a
 * different sample.
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
#include "analysis/lse_bias.h"
#include "loss/sampled.h"
#include "loss/softmax.h"

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

/* ---- every rank's sample in one place -------------------------------------- */

typedef struct gathered {
    char *buf;
    sr_sample_view views[8];
    int n;
} gathered;

static int64_t keep_len(const sr_sample_view *w) { return !w->keep ? 0 : w->ptr ? w->n : w->b * w->n; }

static void gather_views(const sr_sample_view *mine, gathered *g)
{
    const int64_t b = mine->b, n = mine->n, kl = keep_len(mine);
    int64_t bytes = 8 * (2 * n + (mine->ptr ? b + 1 : 0) + b + (mine->neg ? b : 0)) + (kl + 7) / 8 * 8;
    int64_t hdr[5] = {n, mine->ptr != NULL, kl, mine->neg != NULL, bytes};
    char *send = calloc((size_t)bytes + 8, 1), *p = send;
    memcpy(p, mine->gid, (size_t)n * 8), p += n * 8;
    memcpy(p, mine->corr, (size_t)n * 8), p += n * 8;
    if (mine->ptr) memcpy(p, mine->ptr, (size_t)(b + 1) * 8), p += (b + 1) * 8;
    memcpy(p, mine->tcorr, (size_t)b * 8), p += b * 8;
    if (mine->neg) memcpy(p, mine->neg, (size_t)b * 8), p += b * 8;
    if (kl) memcpy(p, mine->keep, (size_t)kl);
    int size = g_comm.size;
    int64_t hdrs[40];
    MPI_Allgather(hdr, 5, MPI_INT64_T, hdrs, 5, MPI_INT64_T, g_comm.comm);
    int counts[8], displs[8], total = 0;
    for (int r = 0; r < size; r++) {
        counts[r] = (int)hdrs[5 * r + 4];
        displs[r] = total;
        total += counts[r];
    }
    g->buf = malloc((size_t)total + 8);
    MPI_Allgatherv(send, (int)bytes, MPI_BYTE, g->buf, counts, displs, MPI_BYTE, g_comm.comm);
    free(send);
    g->n = size;
    for (int r = 0; r < size; r++) {
        sr_sample_view *w = &g->views[r];
        const int64_t *h = hdrs + 5 * r;
        char *q = g->buf + displs[r];
        *w = *mine;
        w->n = h[0];
        w->gid = (const int64_t *)q, q += h[0] * 8;
        w->corr = (const double *)q, q += h[0] * 8;
        w->ptr = h[1] ? (const int64_t *)q : NULL, q += h[1] ? (b + 1) * 8 : 0;
        w->tcorr = (const double *)q, q += b * 8;
        w->neg = h[3] ? (const int64_t *)q : NULL, q += h[3] ? b * 8 : 0;
        w->keep = h[2] ? (const uint8_t *)q : NULL;
    }
}

/* ---- the problem ---------------------------------------------------------------- */

typedef struct problem {
    int64_t b, d, n;
    float *q, *v;
    int64_t *tg, *pop;
} problem;

static void problem_make(problem *p, int64_t n, int64_t b, int64_t d, uint64_t seed)
{
    p->n = n;
    p->b = b;
    p->d = d;
    p->q = malloc((size_t)(b * d) * sizeof(float));
    p->v = malloc((size_t)(n * d) * sizeof(float));
    p->tg = malloc((size_t)b * sizeof(int64_t));
    p->pop = malloc((size_t)n * sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < b * d; i++) p->q[i] = (float)(0.7 * sr_rng_normal(&r));
    for (int64_t i = 0; i < n * d; i++) p->v[i] = (float)(0.7 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) p->tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    for (int64_t j = 0; j < n; j++) p->pop[j] = j % 6 == 0 ? 0 : (int64_t)sr_rng_below(&r, 40);
    if (b > 3) p->tg[3] = p->tg[1]; /* a repeated positive (in-batch duplicates) */
}

static void problem_free(problem *p)
{
    free(p->q);
    free(p->v);
    free(p->tg);
    free(p->pop);
}

static void set_cfg(sr_config *cfg, int64_t k, const char *prop, bool shared)
{
    sr_config_defaults(cfg);
    cfg->loss_negatives = k;
    snprintf(cfg->loss_proposal, sizeof cfg->loss_proposal, "%s", prop);
    cfg->loss_shared_negatives = shared;
    cfg->loss_proposal_beta = 0.7;
    cfg->train_seed = 77;
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Dynamic selection: per query and rank, every kept candidate scores at
 * least as high as every dropped eligible one, and the ranks together keep k
 * (fewer only when hits leave a rank too few eligible candidates). */
static void check_dynamic(const gathered *g, const problem *p, int64_t k, const char *what)
{
    int ok = 1;
    for (int64_t i = 0; i < p->b; i++) {
        int64_t kept = 0, hits = 0;
        for (int r = 0; r < g->n; r++) {
            const sr_sample_view *w = &g->views[r];
            int64_t e0 = w->ptr ? w->ptr[i] : 0, e1 = w->ptr ? w->ptr[i + 1] : w->n, kb = w->ptr ? 0 : i * w->n;
            double lo_kept = INFINITY, hi_drop = -INFINITY;
            for (int64_t e = e0; e < e1; e++) {
                double sc = 0;
                for (int64_t t = 0; t < p->d; t++) sc += (double)p->q[i * p->d + t] * p->v[w->gid[e] * p->d + t];
                if (w->gid[e] == p->tg[i]) {
                    hits++;
                    ok &= !w->keep[kb + e];
                } else if (w->keep[kb + e]) {
                    kept++;
                    lo_kept = fmin(lo_kept, sc);
                } else {
                    hi_drop = fmax(hi_drop, sc);
                }
            }
            ok &= lo_kept >= hi_drop - 1e-5;
        }
        ok &= kept <= k && kept >= k - hits && kept > 0;
    }
    CU_ASSERT(ok);
    if (!ok) fprintf(stderr, "[rank %d] %s: dynamic selection is not a per-rank top k\n", g_comm.rank, what);
}

/* One step on this rank; compare with the twin (exact == 1: with the exact
 * softmax reference instead). */
static void run_case(const sr_shard *s, const sr_config *cfg, sr_loss_kind kind, const problem *p, int exact,
                     const char *what)
{
    const sr_comm *c = &g_comm;
    const int64_t b = p->b, d = p->d, n = p->n, nr = sr_shard_count(s, c->rank);
    float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
    for (int64_t j = 0; j < nr; j++) memcpy(vr + j * d, p->v + sr_shard_global(s, c->rank, j) * d, (size_t)d * 4);
    sr_error e;
    sr_error_clear(&e);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    sr_loss_init in = {c, cfg, s, p->pop, NULL, b, d, &mem};
    sr_sampled *sl = NULL;
    sr_status st = sr_sampled_create(&sl, kind, &in, &e);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);
    float *dq = malloc((size_t)(b * d) * sizeof(float));
    sr_item_grad dv = {0, NULL, NULL};
    double loss = NAN;
    st = sr_sampled_step(sl, p->q, b, vr, p->tg, 5, &loss, dq, &dv, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    if (st) fprintf(stderr, "[rank %d] %s: %s\n", c->rank, what, e.msg);

    sr_sample_view mine;
    sr_sampled_last_sample(sl, &mine);
    gathered g;
    gather_views(&mine, &g);
    double ref;
    double *rdq = malloc((size_t)(b * d) * sizeof(double));
    double *rdv = malloc((size_t)(n * d) * sizeof(double));
    if (exact) st = sr_softmax_ref(p->q, b, d, p->v, n, p->tg, &ref, rdq, rdv, &e);
    else st = sr_sampled_ref(g.views, g.n, p->q, b, d, p->v, n, p->tg, &ref, rdq, rdv, &e);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);
    int ok_loss = fabs(loss - ref) <= 1e-5 * fmax(1.0, fabs(ref));
    CU_ASSERT(ok_loss);

    double lmax = loss, lmin = -loss;
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmax, 1, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmin, 1, &e), SR_OK);
    CU_ASSERT(lmax == -lmin);

    double *sq = malloc((size_t)(b * d) * sizeof(double));
    for (int64_t k = 0; k < b * d; k++) sq[k] = dq[k];
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, sq, b * d, &e), SR_OK);
    double eq = 0;
    for (int64_t k = 0; k < b * d; k++) eq = fmax(eq, fabs(sq[k] - rdq[k]));
    double sdq = max_abs(rdq, b * d);
    CU_ASSERT(eq <= 1e-5 * sdq);

    /* Sparse dV: distinct increasing rows; densify and compare the shard. */
    double *dense = calloc((size_t)(nr * d + 1), sizeof(double));
    int rows_ok = 1;
    for (int64_t i = 0; i < dv.n; i++) {
        rows_ok &= dv.rows[i] >= 0 && dv.rows[i] < nr && (i == 0 || dv.rows[i] > dv.rows[i - 1]);
        if (dv.rows[i] >= 0 && dv.rows[i] < nr)
            for (int64_t k = 0; k < d; k++) dense[dv.rows[i] * d + k] = dv.g[i * d + k];
    }
    CU_ASSERT(rows_ok);
    double ev = 0, sdv = max_abs(rdv, n * d);
    for (int64_t j = 0; j < nr; j++)
        for (int64_t k = 0; k < d; k++)
            ev = fmax(ev, fabs(dense[j * d + k] - rdv[sr_shard_global(s, c->rank, j) * d + k]));
    CU_ASSERT(ev <= 1e-5 * sdv);
    if (!ok_loss || !(eq <= 1e-5 * sdq) || !(ev <= 1e-5 * sdv))
        fprintf(stderr, "[rank %d] %s: loss %.9g ref %.9g, dq err %.3g of %.3g, dv err %.3g of %.3g\n", c->rank,
                what, loss, ref, eq, sdq, ev, sdv);

    if (mine.keep) check_dynamic(&g, p, cfg->loss_negatives, what);

    /* Reproducible: the same step gives the same bits; the next one differs. */
    double again = NAN, next = NAN;
    CU_ASSERT_EQUAL(sr_sampled_step(sl, p->q, b, vr, p->tg, 5, &again, dq, &dv, &e), SR_OK);
    CU_ASSERT(again == loss);
    CU_ASSERT_EQUAL(sr_sampled_step(sl, p->q, b, vr, p->tg, 6, &next, dq, &dv, &e), SR_OK);
    if (!exact && kind != SR_LOSS_BPR && strcmp(cfg->loss_proposal, "inbatch") != 0) CU_ASSERT(next != loss);

    free(g.buf);
    free(sq);
    free(dense);
    free(rdq);
    free(rdv);
    free(dq);
    sr_sampled_destroy(&sl);
    CU_ASSERT_PTR_NULL(sl);
    CU_ASSERT_EQUAL(mem.current, 0);
    free(vr);
}

/* Uneven blocks: rank 1 empty (p >= 2), rank 0 most of it. */
static void uneven(sr_shard *s, int64_t n)
{
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0};
    counts[0] = n;
    for (int r = 2; r < p; r++) {
        counts[r] = 5;
        counts[0] -= 5;
    }
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(s, n, p, counts, &e), SR_OK);
}

static void layouts(int which, sr_shard *s, int64_t n)
{
    sr_error e;
    sr_error_clear(&e);
    sr_status st = SR_OK;
    if (which == 0) uneven(s, n);
    else if (which == 1) st = sr_shard_init_interleave(s, n, sr_test_size(), &e);
    else st = sr_shard_init_block(s, n, sr_test_size(), NULL, &e);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);
}

static void test_exhaustive_equals_softmax(void)
{
    problem p;
    problem_make(&p, 43, 9, 8, 901);
    for (int l = 0; l < 3; l++) {
        sr_shard s;
        layouts(l, &s, p.n);
        sr_config cfg;
        set_cfg(&cfg, p.n, "uniform", true);
        run_case(&s, &cfg, SR_LOSS_SSM, &p, 1, "exhaustive ssm = softmax");
        sr_shard_destroy(&s);
    }
    problem_free(&p);
}

static void test_ssm(void)
{
    problem p;
    problem_make(&p, 41, 9, 8, 902);
    struct {
        const char *prop;
        int64_t k;
        bool shared, correct, hits;
    } cs[] = {{"uniform", 12, true, true, true},    {"popularity", 20, true, true, true},
              {"popularity", 6, false, true, true}, {"uniform", 5, false, true, true},
              {"inbatch", 1, true, true, true},     {"dynamic", 8, true, true, true},
              {"dynamic", 4, false, true, true},    {"uniform", 30, true, false, false},
              {"popularity", 50, true, true, false}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int l = 0; l < 2; l++) {
            sr_shard s;
            layouts(l, &s, p.n);
            sr_config cfg;
            set_cfg(&cfg, cs[i].k, cs[i].prop, cs[i].shared);
            cfg.loss_logq_correction = cs[i].correct;
            cfg.loss_remove_accidental_hits = cs[i].hits;
            cfg.loss_dns_candidates = 3 * cs[i].k;
            if (i == 6) snprintf(cfg.loss_dns_base, sizeof cfg.loss_dns_base, "popularity");
            char what[96];
            snprintf(what, sizeof what, "ssm %s k=%lld shared=%d layout %d", cs[i].prop, (long long)cs[i].k,
                     cs[i].shared, l);
            run_case(&s, &cfg, SR_LOSS_SSM, &p, 0, what);
            sr_shard_destroy(&s);
        }
    problem_free(&p);
}

static void test_nce(void)
{
    problem p;
    problem_make(&p, 41, 9, 8, 903);
    struct {
        const char *prop;
        int64_t k;
        bool shared, correct;
    } cs[] = {{"uniform", 12, true, true}, {"popularity", 7, false, true}, {"inbatch", 1, true, true},
              {"dynamic", 6, true, true},  {"popularity", 15, true, false}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int l = 0; l < 2; l++) {
            sr_shard s;
            layouts(l, &s, p.n);
            sr_config cfg;
            set_cfg(&cfg, cs[i].k, cs[i].prop, cs[i].shared);
            cfg.loss_logq_correction = cs[i].correct;
            cfg.loss_dns_candidates = 2 * cs[i].k;
            char what[96];
            snprintf(what, sizeof what, "nce %s k=%lld layout %d", cs[i].prop, (long long)cs[i].k, l);
            run_case(&s, &cfg, SR_LOSS_NCE, &p, 0, what);
            sr_shard_destroy(&s);
        }
    problem_free(&p);
}

static void test_bpr(void)
{
    problem p;
    problem_make(&p, 41, 11, 8, 904);
    for (int hits = 0; hits < 2; hits++)
        for (int l = 0; l < 3; l++) {
            sr_shard s;
            layouts(l, &s, p.n);
            sr_config cfg;
            set_cfg(&cfg, 1, "uniform", true);
            cfg.loss_remove_accidental_hits = hits;
            run_case(&s, &cfg, SR_LOSS_BPR, &p, 0, hits ? "bpr" : "bpr with hits");
            sr_shard_destroy(&s);
        }
    problem_free(&p);
}

static void test_bad_target_everywhere(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 10, sr_test_size(), NULL, &e), SR_OK);
    sr_config cfg;
    set_cfg(&cfg, 3, "uniform", true);
    sr_loss_init in = {&g_comm, &cfg, &s, NULL, NULL, 2, 2, NULL};
    sr_sampled *sl = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sampled_create(&sl, SR_LOSS_SSM, &in, &e), SR_OK);
    float q[4] = {1, 2, 3, 4}, v[40] = {0}, dq[4];
    int64_t tg[2] = {3, 10};
    sr_item_grad dv;
    CU_ASSERT_EQUAL(sr_sampled_step(sl, q, 2, v, tg, 1, NULL, dq, &dv, &e), SR_ERR_DATA);
    sr_sampled_destroy(&sl);
    /* Config errors are seen alike by every rank. */
    snprintf(cfg.loss_proposal, sizeof cfg.loss_proposal, "popularity");
    CU_ASSERT_EQUAL(sr_sampled_create(&sl, SR_LOSS_SSM, &in, &e), SR_ERR_CONFIG); /* no counts */
    sr_shard_destroy(&s);
}

/* lse-bias on a small catalogue: exact log Z against a naive double
 * computation; the SSM bias is negative (Jensen) at k = 1 and shrinks towards
 * 0 as k grows, its MSE too; the same table on every rank. */
static void test_lse_bias(void)
{
    const sr_comm *c = &g_comm;
    problem p;
    problem_make(&p, 40, 5, 6, 905);
    const int64_t ks[4] = {1, 8, 64, 512};
    for (int prop = 0; prop < 2; prop++) {
        sr_shard s;
        layouts(prop, &s, p.n);
        int64_t nr = sr_shard_count(&s, c->rank);
        float *vr = malloc((size_t)(nr * p.d + 1) * sizeof(float));
        for (int64_t j = 0; j < nr; j++)
            memcpy(vr + j * p.d, p.v + sr_shard_global(&s, c->rank, j) * p.d, (size_t)p.d * 4);
        sr_error e;
        sr_error_clear(&e);
        sr_sampler *sm = NULL;
        CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm, &s, c->rank, SR_PROPOSAL_POPULARITY, p.pop, prop ? 0.5 : 1.0,
                                                NULL, &e), SR_OK);
        sr_lse_bias_row rows[4];
        double logz[5];
        sr_mem mem;
        sr_mem_init(&mem, 0);
        CU_ASSERT_EQUAL_FATAL(sr_lse_bias_run(c, &s, sm, p.q, p.b, p.d, vr, ks, 4, 40, 7, &mem, logz, rows, &e),
                              SR_OK);
        CU_ASSERT_EQUAL(mem.current, 0);
        for (int64_t i = 0; i < p.b; i++) {
            double mx = -INFINITY, z = 0, sc[40];
            for (int64_t j = 0; j < p.n; j++) {
                sc[j] = 0;
                for (int64_t t = 0; t < p.d; t++) sc[j] += (double)p.q[i * p.d + t] * p.v[j * p.d + t];
                mx = fmax(mx, sc[j]);
            }
            for (int64_t j = 0; j < p.n; j++) z += exp(sc[j] - mx);
            CU_ASSERT(fabs(logz[i] - (mx + log(z))) < 1e-5);
        }
        CU_ASSERT(rows[0].ssm_bias < 0);
        /* |bias| falls with k and at k = 512 is within 4 standard errors
         * (sqrt(var / (R b)), R = 40, b = 5) plus 0.005 of zero. */
        CU_ASSERT(fabs(rows[1].ssm_bias) < fabs(rows[0].ssm_bias));
        CU_ASSERT(fabs(rows[3].ssm_bias) < 0.1 * fabs(rows[0].ssm_bias));
        CU_ASSERT(fabs(rows[3].ssm_bias) < 4 * sqrt(rows[3].ssm_var / 200.0) + 0.005);
        CU_ASSERT(rows[3].ssm_mse < rows[0].ssm_mse / 20);
        for (int ki = 0; ki < 4; ki++) {
            CU_ASSERT(isfinite(rows[ki].nce_bias) && rows[ki].nce_var >= -1e-12);
            /* mse = mean_i bias_i^2 + var >= (mean_i bias_i)^2 + var */
            CU_ASSERT(rows[ki].ssm_mse >= rows[ki].ssm_bias * rows[ki].ssm_bias + rows[ki].ssm_var - 1e-12);
            double x = rows[ki].ssm_bias, y = -x;
            CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &x, 1, &e), SR_OK);
            CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &y, 1, &e), SR_OK);
            CU_ASSERT(x == -y);
            if (c->rank == 0)
                printf("\n  lse-bias np %d beta %.1f k %4lld: ssm bias %+.4f var %.4f mse %.4f | nce bias %+.4f var %.4f mse %.4f",
                       c->size, prop ? 0.5 : 1.0, (long long)ks[ki], rows[ki].ssm_bias, rows[ki].ssm_var,
                       rows[ki].ssm_mse, rows[ki].nce_bias, rows[ki].nce_var, rows[ki].nce_mse);
        }
        sr_sampler_destroy(&sm);
        free(vr);
        sr_shard_destroy(&s);
    }
    problem_free(&p);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sampled_mpi", suite_init, suite_clean);
    CU_add_test(s, "exhaustive_equals_softmax", test_exhaustive_equals_softmax);
    CU_add_test(s, "ssm", test_ssm);
    CU_add_test(s, "nce", test_nce);
    CU_add_test(s, "bpr", test_bpr);
    CU_add_test(s, "bad_target_everywhere", test_bad_target_everywhere);
    CU_add_test(s, "lse_bias", test_lse_bias);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
