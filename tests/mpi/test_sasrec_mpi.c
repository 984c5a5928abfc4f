/* test_sasrec_mpi.c: one SASRec training step, distributed, equals the same
 * step on one process, at 1-4 ranks.
 *
 * Every rank builds the same global problem (23 items, 7 left-padded
 * sequences of max_len 7 with repeated items, d = 8, 2 heads, 2 blocks,
 * dropout 0.2 on) and runs it twice: on MPI_COMM_SELF with the whole batch
 * (the reference) and over MPI_COMM_WORLD with its share of the sequences
 * (uneven splits, a rank with none) and its shard of the items (balanced
 * blocks; uneven blocks with an empty rank; interleave). Two steps of:
 * seqembed lookup, forward (train), backward, push merged with a
 * row-sparse "loss" gradient, sr_sasrec_update (Adam) and the row-sparse
 * Adam update of the item table. Checked after each step: this rank's h
 * and dx rows, its pushed gradient rows (distinct, ascending, equal to the
 * reference rows of those items, no touched row missing), the transformer
 * weights and this rank's item rows (all to 1e-4 of the largest entry);
 * push_dense agrees with push; bytes are sent only when rows are remote.
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
#include "models/mf.h"
#include "models/sasrec.h"
#include "models/seqembed.h"

enum { NI = 23, D = 8, L = 7, B = 7, H = 2, NL = 2 };

static sr_comm g_world, g_self; /* test-only: CUnit tests take no arguments */

static int suite_init(void)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&g_world, MPI_COMM_WORLD, &e) != SR_OK) return 1;
    return sr_comm_init(&g_self, MPI_COMM_SELF, &e) == SR_OK ? 0 : 1;
}

static int suite_clean(void)
{
    sr_comm_destroy(&g_world);
    sr_comm_destroy(&g_self);
    return 0;
}

/* The global problem: ids (B x L, -1 padding), dh (B x L x d) per step. */
typedef struct problem {
    int64_t ids[B * L];
    float dh[2][B * L * D];
} problem;

static void problem_make(problem *p)
{
    sr_rng r;
    sr_rng_init(&r, 21, 0, SR_STREAM_SYNTH);
    const int lens[B] = {7, 3, 1, 5, 7, 2, 6};
    for (int q = 0; q < B; q++)
        for (int i = 0; i < L; i++)
            /* items 0..11 only: plenty of repeats within and across sequences */
            p->ids[q * L + i] = i < L - lens[q] ? -1 : (int64_t)sr_rng_below(&r, 12);
    p->ids[4 * L + 6] = p->ids[4 * L + 2]; /* a repeat in one sequence for sure */
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < B * L * D; k++) p->dh[s][k] = (float)sr_rng_normal(&r);
}

/* The "loss" gradient of the table: items with gid % 4 == 1 (a few untouched
 * by the sequences), rows on this rank only. */
static int64_t loss_grad(const sr_shard *map, int rank, int step, int64_t *rows, float *g)
{
    int64_t n = 0;
    for (int64_t k = 0; k < sr_shard_count(map, rank); k++) {
        int64_t gid = sr_shard_global(map, rank, k);
        if (gid % 4 != 1) continue;
        rows[n] = k;
        for (int j = 0; j < D; j++) g[n * D + j] = (float)(0.1 * sin(gid + 0.7 * j + step));
        n++;
    }
    return n;
}

/* One run of two steps on comm c with shard map `map` and sequences
 * [q0, q0 + nq). Outputs, per step: h, dx of the local sequences; the
 * pushed gradient scattered by global id into gfull (NI x D, zero where not
 * touched) and touched flags; the weights and this rank's table after. */
typedef struct run_out {
    float h[2][B * L * D], dx[2][B * L * D];
    float gfull[2][NI * D];
    int touched[2][NI];
    float table[NI * D]; /* by global id, this rank's rows only */
    float *w;            /* transformer weights after step 2 */
    int64_t bytes[2];
    int sorted_ok;
    float dense_diff;
} run_out;

static void run(const sr_comm *c, const sr_shard *map, int64_t q0, int64_t nq, const problem *p, run_out *o)
{
    sr_error e;
    sr_error_clear(&e);
    memset(o, 0, sizeof *o);
    o->sorted_ok = 1;
    const int rank = c->rank;
    const int64_t nl = sr_shard_count(map, rank);
    sr_sasrec_opts so = {D, NL, H, L, 0.2, true, NI, 17, 0.2};
    sr_optim adam = {SR_OPTIM_ADAM, 0.01, 0.9, 0.999, 1e-3, 0.0};
    sr_sasrec *m = NULL;
    sr_seqembed *se = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sasrec_create(&m, &so, &adam, nq > 0 ? nq : 1, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_seqembed_create(&se, c, map, D, NULL, &e), SR_OK);
    float *table = malloc((size_t)(nl > 0 ? nl : 1) * D * sizeof(float));
    sr_table_init_normal(table, nl, D, 0.3, 99, 0, map, rank, 0);
    sr_optim_state tst;
    CU_ASSERT_EQUAL_FATAL(sr_optim_state_create(&tst, &adam, nl, D, NULL, &e), SR_OK);
    size_t big = (size_t)(nq > 0 ? nq : 1) * L * D;
    float *x = malloc(big * sizeof(float)), *dense = calloc((size_t)(nl > 0 ? nl : 1) * D, sizeof(float));
    uint8_t valid[B * L];
    int64_t lrows[NI];
    float lg[NI * D];
    const int64_t *ids = p->ids + q0 * L;
    for (int64_t k = 0; k < nq * L; k++) valid[k] = ids[k] >= 0;
    for (int step = 1; step <= 2; step++) {
        float *h = o->h[step - 1] + q0 * L * D, *dx = o->dx[step - 1] + q0 * L * D;
        CU_ASSERT_EQUAL_FATAL(sr_seqembed_lookup(se, ids, nq * L, table, x, &e), SR_OK);
        sr_sasrec_set_first_seq(m, q0);
        CU_ASSERT_EQUAL_FATAL(sr_sasrec_forward(m, x, valid, nq, true, step, h, &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_sasrec_backward(m, p->dh[step - 1] + q0 * L * D, dx, &e), SR_OK);
        sr_item_grad also = {0, lrows, lg}, out;
        also.n = loss_grad(map, rank, step, lrows, lg);
        if (step == 1) { /* the dense push must carry the same rows */
            CU_ASSERT_EQUAL_FATAL(sr_seqembed_push_dense(se, dx, dense, &e), SR_OK);
            for (int64_t k = 0; k < also.n; k++)
                for (int j = 0; j < D; j++) dense[lrows[k] * D + j] += lg[k * D + j];
        }
        CU_ASSERT_EQUAL_FATAL(sr_seqembed_push(se, dx, &also, &out, &e), SR_OK);
        o->bytes[step - 1] = sr_seqembed_bytes_sent(se);
        for (int64_t k = 0; k < out.n; k++) {
            if (k > 0 && out.rows[k] <= out.rows[k - 1]) o->sorted_ok = 0;
            int64_t gid = sr_shard_global(map, rank, out.rows[k]);
            o->touched[step - 1][gid] = 1;
            memcpy(o->gfull[step - 1] + gid * D, out.g + k * D, D * sizeof(float));
            if (step == 1)
                for (int j = 0; j < D; j++)
                    o->dense_diff = fmaxf(o->dense_diff, fabsf(dense[out.rows[k] * D + j] - out.g[k * D + j]));
        }
        CU_ASSERT_EQUAL_FATAL(sr_sasrec_update(m, c, step, &e), SR_OK);
        sr_optim_update(&adam, &tst, table, out.g, out.rows, out.n, D, step);
    }
    /* rows the dense push touched must all be in the sparse result */
    for (int64_t k = 0; k < nl; k++) {
        float mx = 0;
        for (int j = 0; j < D; j++) mx = fmaxf(mx, fabsf(dense[k * D + j]));
        if (mx > 0 && !o->touched[0][sr_shard_global(map, rank, k)]) o->sorted_ok = 0;
    }
    for (int64_t k = 0; k < nl; k++) memcpy(o->table + sr_shard_global(map, rank, k) * D, table + k * D, D * sizeof(float));
    const sr_sasrec_layout *lay = sr_sasrec_layout_of(m);
    o->w = malloc((size_t)lay->total * sizeof(float));
    memcpy(o->w, sr_sasrec_weights(m), (size_t)lay->total * sizeof(float));
    free(table), free(x), free(dense);
    sr_optim_state_destroy(&tst, NULL);
    sr_seqembed_destroy(&se);
    sr_sasrec_destroy(&m);
}

/* max |a - b| over n values, relative to max |b| (>= 1e-3). */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

static void split(int p, int64_t *cnt)
{
    static const int64_t t[5][4] = {{0}, {B}, {5, 2}, {0, 4, 3}, {2, 0, 3, 2}};
    for (int r = 0; r < p; r++) cnt[r] = p <= 4 ? t[p][r] : B / p + (r < B % p);
}

static void check_layout(int layout)
{
    const int p = g_world.size, rank = g_world.rank;
    sr_error e;
    sr_error_clear(&e);
    problem pb;
    problem_make(&pb);
    sr_shard one, map;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&one, NI, 1, NULL, &e), SR_OK);
    if (layout == 0) {
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&map, NI, p, NULL, &e), SR_OK);
    } else if (layout == 1) { /* uneven, the last rank empty when p > 1 */
        int64_t cnt[64] = {0}, left = NI;
        for (int r = 0; r < p - 1; r++) left -= (cnt[r] = r == p - 2 ? left : (r + 1) * 3);
        if (p == 1) cnt[0] = NI;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&map, NI, p, cnt, &e), SR_OK);
    } else {
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&map, NI, p, &e), SR_OK);
    }
    int64_t cnt[64], q0 = 0;
    split(p, cnt);
    for (int r = 0; r < rank; r++) q0 += cnt[r];
    run_out *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
    run(&g_self, &one, 0, B, &pb, ref);
    run(&g_world, &map, q0, cnt[rank], &pb, got);
    const int64_t nq = cnt[rank];
    for (int s = 0; s < 2; s++) {
        CU_ASSERT(rel_err(got->h[s] + q0 * L * D, ref->h[s] + q0 * L * D, nq * L * D) < 1e-4);
        CU_ASSERT(rel_err(got->dx[s] + q0 * L * D, ref->dx[s] + q0 * L * D, nq * L * D) < 1e-4);
        double eg = 0;
        for (int64_t k = 0; k < sr_shard_count(&map, rank); k++) {
            int64_t gid = sr_shard_global(&map, rank, k);
            CU_ASSERT_EQUAL(got->touched[s][gid], ref->touched[s][gid]);
            eg = fmax(eg, rel_err(got->gfull[s] + gid * D, ref->gfull[s] + gid * D, D));
        }
        CU_ASSERT(eg < 1e-4);
        if (eg >= 1e-4) fprintf(stderr, "[rank %d] layout %d step %d: pushed gradient error %.3g\n", rank, layout, s + 1, eg);
        CU_ASSERT_EQUAL(ref->bytes[s], 0);
    }
    CU_ASSERT(got->sorted_ok);
    CU_ASSERT(got->dense_diff < 1e-6f);
    sr_sasrec_layout lay;
    sr_sasrec_layout_init(&lay, D, NL, H, L);
    double ew = rel_err(got->w, ref->w, lay.total);
    if (ew >= 1e-4) fprintf(stderr, "[rank %d] layout %d: weights error %.3g\n", rank, layout, ew);
    CU_ASSERT(ew < 1e-4);
    double et = 0;
    for (int64_t k = 0; k < sr_shard_count(&map, rank); k++) {
        int64_t gid = sr_shard_global(&map, rank, k);
        et = fmax(et, rel_err(got->table + gid * D, ref->table + gid * D, D));
    }
    CU_ASSERT(et < 1e-4);
    /* some rank fetched remote rows iff there is more than one rank */
    double sent = (double)(got->bytes[0] + got->bytes[1]);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(&g_world, &sent, 1, &e), SR_OK);
    CU_ASSERT(p == 1 ? sent == 0 : sent > 0);
    free(ref->w), free(got->w), free(ref), free(got);
    sr_shard_destroy(&one);
    sr_shard_destroy(&map);
}

static void test_block(void) { check_layout(0); }
static void test_uneven(void) { check_layout(1); }
static void test_interleave(void) { check_layout(2); }

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sasrec_mpi", suite_init, suite_clean);
    CU_add_test(s, "step_matches_one_process_block", test_block);
    CU_add_test(s, "step_matches_one_process_uneven_empty_rank", test_uneven);
    CU_add_test(s, "step_matches_one_process_interleave", test_interleave);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
