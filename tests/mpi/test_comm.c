/* test_comm.c: collectives, row exchange, shard maps and the error protocol
 * at 1-4 ranks.
 *
 * Every rank can regenerate every other rank's inputs from (seed, rank), so
 * each rank recomputes the whole collective serially and compares. Values
 * are small integers wherever sums are involved, so float/double sums are
 * exact whatever order MPI adds them in and comparisons can be exact.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"

#define SEED 20240611u

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

/* Uneven row counts with a zero: rank 1 has none when there are >= 2 ranks. */
static void uneven_rows(int p, int64_t *rows)
{
    for (int r = 0; r < p; r++) rows[r] = 1 + (r * 7 + 3) % 5;
    if (p > 1) rows[1] = 0;
}

/* Small integer in [-50, 50] as double: exact in any summation order. */
static double small_int(sr_rng *g) { return (double)sr_rng_below(g, 101) - 50.0; }

/* ---- all-reduces and all-gather ------------------------------------------ */

static void fill_doubles(int rank, int64_t n, double *v, int stream_off)
{
    sr_rng g;
    sr_rng_init(&g, SEED + (uint64_t)stream_off, (uint32_t)rank, SR_STREAM_INIT);
    for (int64_t i = 0; i < n; i++) v[i] = small_int(&g);
}

static void test_allreduce_sum_max(void)
{
    const sr_comm *c = &g_comm;
    enum { N = 37 };
    double v[N], w[N], mx[N], sum[N], want_sum[N], want_max[N], tmp[N];
    fill_doubles(c->rank, N, v, 0);
    memcpy(w, v, sizeof v);
    memcpy(mx, v, sizeof v);
    memcpy(sum, v, sizeof v);
    for (int i = 0; i < N; i++) want_sum[i] = 0, want_max[i] = -INFINITY;
    for (int r = 0; r < c->size; r++) {
        fill_doubles(r, N, tmp, 0);
        for (int i = 0; i < N; i++) {
            want_sum[i] += tmp[i];
            want_max[i] = fmax(want_max[i], tmp[i]);
        }
    }
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, sum, N, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, mx, N, &e), SR_OK);
    /* Capped at 4 elements per call: 10 chunks, the last one short. */
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum_capped(c, w, N, 4, &e), SR_OK);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(sum[i], want_sum[i]);
        CU_ASSERT_EQUAL(w[i], want_sum[i]);
        CU_ASSERT_EQUAL(mx[i], want_max[i]);
    }
    /* n = 0 is a no-op; a bad cap is rejected on every rank alike. */
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, sum, 0, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum_capped(c, sum, N, 0, &e), SR_ERR_INTERNAL);
}

static void test_allreduce_i64_allgather(void)
{
    const sr_comm *c = &g_comm;
    enum { N = 9 };
    int64_t v[N], want[N] = {0};
    for (int i = 0; i < N; i++) v[i] = ((int64_t)1 << 40) * (c->rank + 1) + i;
    for (int r = 0; r < c->size; r++)
        for (int i = 0; i < N; i++) want[i] += ((int64_t)1 << 40) * (r + 1) + i;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum_i64(c, v, N, &e), SR_OK);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(v[i], want[i]);

    int64_t all[8];
    int64_t mine = c->rank == c->size - 1 ? INT64_MAX - 5 : (int64_t)c->rank * 3000000000LL;
    CU_ASSERT_EQUAL(sr_comm_allgather_i64(c, mine, all, &e), SR_OK);
    for (int r = 0; r < c->size; r++)
        CU_ASSERT_EQUAL(all[r], r == c->size - 1 ? INT64_MAX - 5 : (int64_t)r * 3000000000LL);
}

/* ---- row collectives ----------------------------------------------------- */

/* Row block of rank r for allgather: value = 1000*r + 10*row + col. */
static float gather_val(int r, int64_t row, int64_t col) { return (float)(1000 * r + 10 * row + col); }

static void check_allgather_rows(int64_t cap)
{
    const sr_comm *c = &g_comm;
    int p = c->size;
    int64_t rows[8] = {0};
    uneven_rows(p, rows);
    const int64_t d = 3;
    int64_t total = 0;
    for (int r = 0; r < p; r++) total += rows[r];
    float *send = malloc((size_t)(rows[c->rank] * d + 1) * sizeof *send);
    float *recv = malloc((size_t)(total * d + 1) * sizeof *recv);
    for (int64_t i = 0; i < rows[c->rank]; i++)
        for (int64_t k = 0; k < d; k++) send[i * d + k] = gather_val(c->rank, i, k);
    for (int64_t i = 0; i < total * d; i++) recv[i] = NAN;
    sr_error e;
    sr_error_clear(&e);
    sr_status st = cap ? sr_comm_allgather_rows_capped(c, send, rows, d, recv, cap, &e)
                       : sr_comm_allgather_rows(c, send, rows, d, recv, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    int64_t at = 0, bad = 0;
    for (int r = 0; r < p; r++)
        for (int64_t i = 0; i < rows[r]; i++, at++)
            for (int64_t k = 0; k < d; k++) bad += recv[at * d + k] != gather_val(r, i, k);
    CU_ASSERT_EQUAL(bad, 0);
    free(send);
    free(recv);
}

static void test_allgather_rows(void)
{
    check_allgather_rows(0);  /* MPI_Allgatherv */
    check_allgather_rows(4);  /* totals over the cap: the MPI_Bcast fallback, chunks of 4 */
    check_allgather_rows(1);  /* one element per broadcast */

    /* Every rank has zero rows: a valid no-op. */
    const sr_comm *c = &g_comm;
    int64_t zero[8] = {0};
    float dummy = 7;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_allgather_rows(c, &dummy, zero, 5, &dummy, &e), SR_OK);
    CU_ASSERT_EQUAL(dummy, 7);
    /* A negative count is an argument error every rank reports. */
    int64_t neg[8] = {0};
    uneven_rows(c->size, neg);
    neg[c->size - 1] = -1;
    CU_ASSERT_EQUAL(sr_comm_allgather_rows(c, &dummy, neg, 5, &dummy, &e), SR_ERR_INTERNAL);
}

/* Partial value rank r holds for global row i, column k. */
static float rs_val(int r, int64_t i, int64_t k) { return (float)((r + 1) * (i % 7) - (int64_t)3 * k + r); }

static void check_reduce_scatter(int64_t cap)
{
    const sr_comm *c = &g_comm;
    int p = c->size;
    int64_t rows[8] = {0};
    uneven_rows(p, rows);
    const int64_t d = 5;
    int64_t total = 0, before = 0;
    for (int r = 0; r < p; r++) total += rows[r];
    for (int r = 0; r < c->rank; r++) before += rows[r];
    float *send = malloc((size_t)(total * d + 1) * sizeof *send);
    float *recv = malloc((size_t)(rows[c->rank] * d + 1) * sizeof *recv);
    for (int64_t i = 0; i < total; i++)
        for (int64_t k = 0; k < d; k++) send[i * d + k] = rs_val(c->rank, i, k);
    sr_error e;
    sr_error_clear(&e);
    sr_status st = cap ? sr_comm_reduce_scatter_rows_capped(c, send, rows, d, recv, cap, &e)
                       : sr_comm_reduce_scatter_rows(c, send, rows, d, recv, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    int64_t bad = 0;
    for (int64_t i = 0; i < rows[c->rank]; i++)
        for (int64_t k = 0; k < d; k++) {
            float want = 0;
            for (int r = 0; r < p; r++) want += rs_val(r, before + i, k);
            bad += recv[i * d + k] != want;
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(send);
    free(recv);
}

static void test_reduce_scatter_rows(void)
{
    check_reduce_scatter(0); /* MPI_Reduce_scatter */
    check_reduce_scatter(6); /* fallback: MPI_Reduce per block, chunks of 6 */
    check_reduce_scatter(1);
}

/* ---- log-sum-exp all-reduce ---------------------------------------------- */

enum { LSE_Q = 6, LSE_N = 53 };

/* Logit of query q for item j: wide range so exp() would overflow unshifted. */
static double lse_logit(int q, int64_t j)
{
    sr_rng g;
    sr_rng_init(&g, SEED, (uint32_t)q, SR_STREAM_SAMPLER);
    sr_rng_seek(&g, (uint64_t)j);
    return 40.0 * sr_rng_normal(&g) + (q == 3 ? 800.0 : 0.0);
}

/* Which items count for query q: query 0 only sees items of the last rank
 * (all its logits on one rank, the others empty); query 1 sees no items of
 * rank 0; the rest see every item. */
static int lse_counts(int q, int owner, int p)
{
    if (q == 0) return owner == p - 1;
    if (q == 1) return owner != 0 || p == 1;
    return 1;
}

static void check_lse(const sr_shard *s, int64_t cap)
{
    const sr_comm *c = &g_comm;
    sr_lse v[LSE_Q];
    int64_t target[LSE_Q];
    for (int q = 0; q < LSE_Q; q++) {
        v[q] = sr_lse_empty();
        /* A target item that counts for q. */
        target[q] = (q * 17 + 5) % LSE_N;
        while (!lse_counts(q, sr_shard_owner(s, target[q]), c->size)) target[q] = (target[q] + 1) % LSE_N;
        for (int64_t row = 0; row < sr_shard_count(s, c->rank); row++) {
            int64_t j = sr_shard_global(s, c->rank, row);
            if (!lse_counts(q, c->rank, c->size)) continue;
            double z = lse_logit(q, j);
            sr_lse one = {z, 1.0, j == target[q] ? z : 0.0};
            sr_lse_merge(&v[q], &one, 1);
        }
    }
    sr_error e;
    sr_error_clear(&e);
    sr_status st = cap ? sr_comm_allreduce_lse_capped(c, v, LSE_Q, cap, &e) : sr_comm_allreduce_lse(c, v, LSE_Q, &e);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);
    for (int q = 0; q < LSE_Q; q++) {
        /* Direct float64 log-sum-exp over every counted logit. */
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < LSE_N; j++)
            if (lse_counts(q, sr_shard_owner(s, j), c->size)) mx = fmax(mx, lse_logit(q, j));
        for (int64_t j = 0; j < LSE_N; j++)
            if (lse_counts(q, sr_shard_owner(s, j), c->size)) sum += exp(lse_logit(q, j) - mx);
        double want = mx + log(sum);
        double got = sr_lse_value(&v[q]);
        CU_ASSERT(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)));
        if (!(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want))))
            fprintf(stderr, "[rank %d] lse q=%d got %.17g want %.17g\n", c->rank, q, got, want);
        CU_ASSERT_EQUAL(v[q].target, lse_logit(q, target[q]));
        CU_ASSERT_EQUAL(v[q].max, mx);
    }
    /* Every rank holds the same bits (training relies on it). */
    sr_lse r0[LSE_Q];
    memcpy(r0, v, sizeof v);
    MPI_Bcast(r0, (int)sizeof r0, MPI_BYTE, 0, c->comm);
    CU_ASSERT_EQUAL(memcmp(r0, v, sizeof v), 0);
}

static void test_allreduce_lse(void)
{
    const sr_comm *c = &g_comm;
    int p = c->size;
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    /* Balanced blocks, then blocks with an empty rank 1, then interleave. */
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, LSE_N, p, NULL, &e), SR_OK);
    check_lse(&s, 0);
    check_lse(&s, 2); /* chunks of two triples */
    sr_shard_destroy(&s);
    int64_t counts[8] = {0};
    uneven_rows(p, counts);
    int64_t sum = 0;
    for (int r = 0; r < p - 1; r++) sum += counts[r];
    counts[p - 1] = LSE_N - sum;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, LSE_N, p, counts, &e), SR_OK);
    check_lse(&s, 0);
    sr_shard_destroy(&s);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, LSE_N, p, &e), SR_OK);
    check_lse(&s, 0);
    sr_shard_destroy(&s);

    /* Nothing anywhere: the empty triple survives (log Z = -inf). */
    sr_lse z = sr_lse_empty();
    CU_ASSERT_EQUAL(sr_comm_allreduce_lse(c, &z, 1, &e), SR_OK);
    CU_ASSERT(isinf(sr_lse_value(&z)) && z.sum == 0.0 && z.target == 0.0);
}

/* ---- row exchange -------------------------------------------------------- */

enum { X_N = 41, X_D = 4 };

/* Value of global item j, column k in the table (exact in float). */
static float x_val(int64_t j, int64_t k) { return (float)(j * 10 + k); }

/* Ids rank r asks for: duplicates, every owner's ids, rank 1 asks for none. */
static int64_t x_ids(int r, int p, const sr_shard *s, int64_t *ids)
{
    if (p > 1 && r == 1) return 0;
    sr_rng g;
    sr_rng_init(&g, SEED, (uint32_t)r, SR_STREAM_SHUFFLE);
    int64_t n = 0;
    /* One id of every rank that owns any. */
    for (int q = 0; q < p; q++)
        if (sr_shard_count(s, q) > 0) ids[n++] = sr_shard_global(s, q, sr_shard_count(s, q) - 1);
    int64_t extra = 20 + 3 * r;
    for (int64_t i = 0; i < extra; i++) ids[n++] = (int64_t)sr_rng_below(&g, 9); /* many repeats */
    for (int64_t i = 0; i < 10; i++) ids[n++] = (int64_t)sr_rng_below(&g, X_N);
    ids[n] = ids[0], n++; /* an exact duplicate of the first */
    return n;
}

/* Gradient row rank r pushes at position i (small integers: exact sums). */
static float x_grad(int r, int64_t i, int64_t k) { return (float)((r + 1) * 100 + i % 13 - k); }

static void check_exchange(const sr_shard *s)
{
    const sr_comm *c = &g_comm;
    int p = c->size, me = c->rank;
    int64_t nloc = sr_shard_count(s, me);
    float *table = malloc((size_t)(nloc * X_D + 1) * sizeof *table);
    for (int64_t row = 0; row < nloc; row++)
        for (int64_t k = 0; k < X_D; k++) table[row * X_D + k] = x_val(sr_shard_global(s, me, row), k);
    int64_t ids[128];
    int64_t n = x_ids(me, p, s, ids);
    sr_error e;
    sr_error_clear(&e);
    sr_exchange *x = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_exchange_plan(&x, c, s, ids, n, &e), SR_OK);

    /* fetch: every position gets its id's row. */
    float *out = malloc((size_t)(n * X_D + 1) * sizeof *out);
    CU_ASSERT_EQUAL(sr_exchange_fetch(x, table, X_D, out, &e), SR_OK);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < X_D; k++) bad += out[i * X_D + k] != x_val(ids[i], k);
    CU_ASSERT_EQUAL(bad, 0);

    /* Accounting: distinct ids others ask of me (fetch) and I ask of others (push). */
    int64_t served_others = 0, asked_others = 0, distinct = 0, served_all = 0;
    for (int r = 0; r < p; r++) {
        int64_t rid[128];
        int64_t rn = x_ids(r, p, s, rid);
        char seen[X_N] = {0};
        for (int64_t i = 0; i < rn; i++) {
            if (seen[rid[i]]) continue;
            seen[rid[i]] = 1;
            int own = sr_shard_owner(s, rid[i]);
            if (r == me) distinct++;
            if (own == me) served_all++;
            if (own == me && r != me) served_others++;
            if (r == me && own != me) asked_others++;
        }
    }
    CU_ASSERT_EQUAL(sr_exchange_unique(x), distinct);
    CU_ASSERT_EQUAL(sr_exchange_served(x), served_all);
    CU_ASSERT_EQUAL(sr_exchange_bytes_sent(x), served_others * X_D * (int64_t)sizeof(float));

    /* push: owners add every position's row into their table. */
    float *grad = malloc((size_t)(n * X_D + 1) * sizeof *grad);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < X_D; k++) grad[i * X_D + k] = x_grad(me, i, k);
    CU_ASSERT_EQUAL(sr_exchange_push(x, grad, X_D, table, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_exchange_bytes_sent(x), asked_others * X_D * (int64_t)sizeof(float));
    float *want = malloc((size_t)(nloc * X_D + 1) * sizeof *want);
    for (int64_t row = 0; row < nloc; row++)
        for (int64_t k = 0; k < X_D; k++) want[row * X_D + k] = x_val(sr_shard_global(s, me, row), k);
    for (int r = 0; r < p; r++) {
        int64_t rid[128];
        int64_t rn = x_ids(r, p, s, rid);
        for (int64_t i = 0; i < rn; i++)
            if (sr_shard_owner(s, rid[i]) == me)
                for (int64_t k = 0; k < X_D; k++) want[sr_shard_local(s, rid[i]) * X_D + k] += x_grad(r, i, k);
    }
    bad = 0;
    for (int64_t i = 0; i < nloc * X_D; i++) bad += table[i] != want[i];
    CU_ASSERT_EQUAL(bad, 0);

    /* The plan is reusable: a second fetch sees the updated rows. */
    CU_ASSERT_EQUAL(sr_exchange_fetch(x, table, X_D, out, &e), SR_OK);
    sr_exchange_destroy(&x);
    CU_ASSERT_PTR_NULL(x);
    sr_exchange_destroy(&x); /* NULL-safe */
    free(table);
    free(out);
    free(grad);
    free(want);
}

static void test_exchange(void)
{
    const sr_comm *c = &g_comm;
    int p = c->size;
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, X_N, p, NULL, &e), SR_OK);
    check_exchange(&s);
    sr_shard_destroy(&s);
    /* Uneven blocks with an empty rank 1. */
    int64_t counts[8] = {0};
    uneven_rows(p, counts);
    int64_t sum = 0;
    for (int r = 0; r < p - 1; r++) sum += counts[r];
    counts[p - 1] = X_N - sum;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, X_N, p, counts, &e), SR_OK);
    check_exchange(&s);
    sr_shard_destroy(&s);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, X_N, p, &e), SR_OK);
    check_exchange(&s);
    sr_shard_destroy(&s);
}

static void test_exchange_bad_id_agreed(void)
{
    /* The last rank passes an id out of range: every rank gets its error
     * from the plan, nobody hangs. */
    const sr_comm *c = &g_comm;
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, X_N, c->size, &e), SR_OK);
    int64_t ids[3] = {0, 1, c->rank == c->size - 1 ? X_N : 2};
    sr_exchange *x = (sr_exchange *)&e; /* must be reset to NULL */
    CU_ASSERT_EQUAL(sr_exchange_plan(&x, c, &s, ids, 3, &e), SR_ERR_INTERNAL);
    CU_ASSERT_PTR_NULL(x);
    CU_ASSERT_STRING_EQUAL(e.msg, "exchange plan: id 41 at position 2 is outside [0, 41)");
    CU_ASSERT_STRING_EQUAL(e.file, "src/comm/collectives.c");
    sr_shard_destroy(&s);
    /* And the communicator still works afterwards. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_OK);
}

/* ---- shard maps (pure, checked on every rank) ---------------------------- */

static void check_shard_inverse(const sr_shard *s)
{
    int64_t total = 0, bad = 0;
    for (int r = 0; r < s->p; r++) {
        int64_t cnt = sr_shard_count(s, r);
        total += cnt;
        for (int64_t row = 0; row < cnt; row++) {
            int64_t g = sr_shard_global(s, r, row);
            bad += g < 0 || g >= s->n || sr_shard_owner(s, g) != r || sr_shard_local(s, g) != row;
        }
    }
    for (int64_t id = 0; id < s->n; id++) {
        int o = sr_shard_owner(s, id);
        int64_t l = sr_shard_local(s, id);
        bad += o < 0 || o >= s->p || l < 0 || l >= sr_shard_count(s, o) || sr_shard_global(s, o, l) != id;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(total, s->n);
}

static void test_shard_maps(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    for (int p = 1; p <= 5; p++) {
        for (int64_t n = 0; n <= 23; n += 1) {
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, NULL, &e), SR_OK);
            check_shard_inverse(&s);
            int64_t lo = INT64_MAX, hi = 0;
            for (int r = 0; r < p; r++) {
                lo = sr_shard_count(&s, r) < lo ? sr_shard_count(&s, r) : lo;
                hi = sr_shard_count(&s, r) > hi ? sr_shard_count(&s, r) : hi;
            }
            CU_ASSERT(hi - lo <= 1); /* balanced */
            sr_shard_destroy(&s);

            CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, n, p, &e), SR_OK);
            check_shard_inverse(&s);
            /* Interleave spreads: any p consecutive ids land on p distinct ranks. */
            for (int64_t id = 0; id + p <= n; id++) {
                int seen[8] = {0}, distinct = 0;
                for (int64_t j = id; j < id + p; j++) distinct += !seen[sr_shard_owner(&s, j)]++;
                CU_ASSERT_EQUAL(distinct, p);
            }
            sr_shard_destroy(&s);
        }
    }
    /* Blocks with empty ranks (first, middle, last): owner never names one. */
    int64_t counts[5] = {0, 4, 0, 3, 0};
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 7, 5, counts, &e), SR_OK);
    check_shard_inverse(&s);
    for (int64_t id = 0; id < 7; id++) CU_ASSERT(sr_shard_owner(&s, id) == 1 || sr_shard_owner(&s, id) == 3);
    sr_shard_destroy(&s);
    /* Counts that do not sum to n are refused. */
    int64_t wrong[2] = {3, 3};
    CU_ASSERT_EQUAL(sr_shard_init_block(&s, 7, 2, wrong, &e), SR_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(e.msg, "shard map: counts sum to 6, expected 7");
    CU_ASSERT_PTR_NULL(s.start);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_shard_init_named(&s, "striped", 7, 2, &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, "shard.layout = 'striped' is not one of block|interleave");
}

/* ---- checked narrowing and the error protocol ---------------------------- */

static void test_comm_int(void)
{
    sr_error e;
    sr_error_clear(&e);
    int out = -7;
    CU_ASSERT_EQUAL(sr_comm_int(INT_MAX, &out, "rows", &e), SR_OK);
    CU_ASSERT_EQUAL(out, INT_MAX);
    CU_ASSERT_EQUAL(sr_comm_int(0, &out, "rows", &e), SR_OK);
    CU_ASSERT_EQUAL(out, 0);
    out = 5;
    CU_ASSERT_EQUAL(sr_comm_int((int64_t)1 << 31, &out, "allgather count", &e), SR_ERR_MPI);
    CU_ASSERT_EQUAL(out, 5); /* untouched on failure */
    CU_ASSERT_STRING_EQUAL(e.msg, "allgather count = 2147483648 does not fit MPI's int count "
                                  "(max 2147483647); use more ranks or smaller blocks");
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_int(-1, &out, "displacement", &e), SR_ERR_MPI);
    CU_ASSERT_STRING_EQUAL(e.msg, "displacement = -1 does not fit MPI's int count "
                                  "(max 2147483647); use more ranks or smaller blocks");
}

static void test_comm_agree(void)
{
    const sr_comm *c = &g_comm;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_OK);
    CU_ASSERT_EQUAL(e.code, SR_OK);

    /* Only the last rank fails: everyone gets its code, text and location. */
    int line = 0;
    if (c->rank == c->size - 1) {
        line = __LINE__ + 1;
        sr_error_set(&e, SR_ERR_DATA, __FILE__, __LINE__, "rank %d: bad block in %s", c->rank, "x.h5");
    }
    MPI_Bcast(&line, 1, MPI_INT, c->size - 1, c->comm);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_ERR_DATA);
    CU_ASSERT_EQUAL(e.code, SR_ERR_DATA);
    char want[128];
    snprintf(want, sizeof want, "rank %d: bad block in x.h5", c->size - 1);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    CU_ASSERT_STRING_EQUAL(e.file, "tests/mpi/test_comm.c");
    CU_ASSERT_EQUAL(e.line, line);

    /* Two failing ranks: the lowest one wins. */
    sr_error_clear(&e);
    if (c->rank == 0 || c->rank == c->size - 1)
        sr_error_set(&e, c->rank == 0 ? SR_ERR_IO : SR_ERR_CONFIG, __FILE__, __LINE__, "from %d", c->rank);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_ERR_IO);
    CU_ASSERT_STRING_EQUAL(e.msg, "from 0");
}

/* MPI errors are returned, not fatal (MPI_ERRORS_RETURN on the duplicate):
 * a bad root through the checked broadcast and a bad count at a call site
 * are SR_ERR_MPI naming the call and the line that made it, every rank sees
 * the same, and the communicator keeps working. */
static void test_mpi_error_returned(void)
{
    const sr_comm *c = &g_comm;
    sr_error e;
    sr_error_clear(&e);
    int64_t v = 7;
    CU_ASSERT_EQUAL(sr_comm_bcast(c, &v, 1, MPI_INT64_T, c->size, &e), SR_ERR_MPI); /* root out of range */
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_STRING_EQUAL(e.file, "src/comm/collectives.c");
    CU_ASSERT(e.line > 0);
    CU_ASSERT(strncmp(e.msg, "MPI_Bcast failed: ", 18) == 0);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_ERR_MPI);

    /* A count that does not fit int never reaches MPI. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_comm_bcast(c, &v, -1, MPI_INT64_T, 0, &e), SR_ERR_MPI);
    CU_ASSERT_STRING_EQUAL(e.msg, "broadcast count = -1 does not fit MPI's int count "
                                  "(max 2147483647); use more ranks or smaller blocks");

    /* At the call site: the test's own file and line. */
    sr_error_clear(&e);
    int line = __LINE__ + 1;
    sr_status st = SR_MPI_CHECK(&e, MPI_Allreduce(MPI_IN_PLACE, &v, -1, MPI_INT64_T, MPI_SUM, c->comm));
    CU_ASSERT_EQUAL(st, SR_ERR_MPI);
    CU_ASSERT_STRING_EQUAL(e.file, "tests/mpi/test_comm.c");
    CU_ASSERT_EQUAL(e.line, line);
    CU_ASSERT(strncmp(e.msg, "MPI_Allreduce failed: ", 22) == 0);
    CU_ASSERT_EQUAL(sr_comm_agree(c, &e), SR_ERR_MPI);

    sr_error_clear(&e);
    v = c->rank == 0 ? 11 : 0;
    CU_ASSERT_EQUAL(sr_comm_bcast(c, &v, 1, MPI_INT64_T, 0, &e), SR_OK);
    CU_ASSERT_EQUAL(v, 11);
    CU_ASSERT_EQUAL(SR_MPI_CHECK(&e, MPI_Barrier(c->comm)), SR_OK);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("comm", suite_init, suite_clean);
    CU_add_test(s, "allreduce_sum_max", test_allreduce_sum_max);
    CU_add_test(s, "allreduce_i64_allgather", test_allreduce_i64_allgather);
    CU_add_test(s, "allgather_rows", test_allgather_rows);
    CU_add_test(s, "reduce_scatter_rows", test_reduce_scatter_rows);
    CU_add_test(s, "allreduce_lse", test_allreduce_lse);
    CU_add_test(s, "exchange", test_exchange);
    CU_add_test(s, "exchange_bad_id_agreed", test_exchange_bad_id_agreed);
    CU_add_test(s, "shard_maps", test_shard_maps);
    CU_add_test(s, "comm_int", test_comm_int);
    CU_add_test(s, "comm_agree", test_comm_agree);
    CU_add_test(s, "mpi_error_returned", test_mpi_error_returned);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
