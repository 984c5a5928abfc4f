/* test_reorder.c: "softrec data reorder" (io/reorder.h), at 1-4 ranks.
 *
 * The input is a planted graph: 4 communities of 60 users and 40 items,
 * with community membership scrambled over the ids (id * 7 mod 4), so the
 * input ids carry no locality. Each user has 8 train items in its community
 * and one outside with probability 1/4 (X cross pairs). With the planted
 * parts as blocks every cross pair costs at most one remote halo row, so a
 * partition that finds the communities has halo <= X at 4 ranks and at 2;
 * the scrambled ids give a halo of several times X. The test asserts that,
 * that ids are bijections, that every split, time, popularity and id map is
 * carried over consistently, that /map composes over two reorders, that the
 * reader rejects a broken map, the exact errors of bad arguments, and that
 * LightGCN's plan on this rank count sends exactly 2 x halo x d x 4 bytes
 * per round and propagates the same embeddings (permuted) on both files.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "cli/cli.h"
#include "io/dataset.h"
#include "io/reorder.h"
#include "models/lightgcn.h"
#include "harness.h"

enum { C = 4, UPC = 60, IPC = 40, U = C * UPC, N = C * IPC, DEG = 8 };

static int user_comm(int64_t u) { return (int)(u * 7 % C); }
static int item_comm(int64_t i) { return (int)(i * 7 % C); }

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* The j-th item of community c (ids with item_comm == c, ascending). */
static int64_t comm_item(int c, int64_t j)
{
    for (int64_t i = 0, k = 0; i < N; i++)
        if (item_comm(i) == c && k++ == j) return i;
    return -1;
}

typedef struct planted {
    int64_t indptr[3][U + 1];
    int64_t items[3][U * (DEG + 1)];
    int64_t time[3][U * (DEG + 1)];
    int64_t cross; /* train pairs across communities */
} planted;

static void plant(planted *g)
{
    uint64_t s = 12345;
    memset(g, 0, sizeof *g);
    for (int64_t u = 0; u < U; u++) {
        int c = user_comm(u);
        for (int sp = 0; sp < 3; sp++) {
            int64_t at = g->indptr[sp][u], n = sp == 0 ? DEG : 1;
            for (int64_t k = 0; k < n; k++) {
                g->items[sp][at + k] = comm_item(c, (int64_t)((lcg(&s) % IPC)));
                g->time[sp][at + k] = 100 * u + 10 * sp + k;
            }
            if (sp == 0 && lcg(&s) % 4 == 0) {
                g->items[sp][at + n] = comm_item((c + 1 + (int)(lcg(&s) % (C - 1))) % C, (int64_t)(lcg(&s) % IPC));
                g->time[sp][at + n] = 100 * u + 9;
                n++;
                g->cross++;
            }
            g->indptr[sp][u + 1] = at + n;
        }
    }
}

static void write_input(const char *path, const planted *g)
{
    sr_error e;
    sr_error_clear(&e);
    sr_dataset_attrs at = {"planted", "synthetic", "", "given", -1, 1, NULL};
    sr_dataset_writer *w = NULL;
    CU_ASSERT_FATAL(sr_dataset_writer_create(&w, path, U, N, &at, &e) == SR_OK);
    const int64_t *const ip[] = {g->indptr[0], g->indptr[1], g->indptr[2]};
    const int64_t *const it[] = {g->items[0], g->items[1], g->items[2]};
    const int64_t *const tm[] = {g->time[0], g->time[1], g->time[2]};
    int64_t uids[U], iids[N];
    for (int64_t u = 0; u < U; u++) uids[u] = 1000 + 3 * u;
    for (int64_t i = 0; i < N; i++) iids[i] = 500000 + i * i;
    CU_ASSERT(sr_dataset_writer_append(w, U, ip, it, tm, &e) == SR_OK);
    CU_ASSERT(sr_dataset_writer_set_id_maps(w, uids, iids, &e) == SR_OK);
    CU_ASSERT(sr_dataset_writer_commit(w, &e) == SR_OK);
    sr_dataset_writer_abort(&w);
}

/* "softrec data reorder ..." on the world communicator. */
static sr_status cmd(const sr_comm *c, const char *args, sr_error *e)
{
    char buf[2048], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "reorder %s", args);
    for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " ")) argv[argc++] = t;
    sr_error_clear(e);
    return sr_cli_exec(&sr_cli_data_reorder, c, argc, argv, e);
}

static void read_map(const char *path, const char *obj, int64_t n, int64_t *out)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    (void)n;
}

static int is_perm(const int64_t *v, int64_t n)
{
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int64_t k = 0; k < n && ok; k++) {
        if (v[k] < 0 || v[k] >= n || seen[v[k]]) ok = 0;
        else seen[v[k]] = 1;
    }
    free(seen);
    return ok;
}

static void paths(char *in, char *out, char *out2, size_t n)
{
    snprintf(in, n, "%s/planted.h5", sr_test_tmpdir());
    snprintf(out, n, "%s/planted-r4.h5", sr_test_tmpdir());
    if (out2) snprintf(out2, n, "%s/planted-r4-r2.h5", sr_test_tmpdir());
}

/* Every rank: the world communicator, the paths, the planted graph; the
 * input file written by rank 0 (visible to all after the barrier). */
static void setup(sr_comm *c, sr_error *e, char *in, char *out, char *out2, planted *g)
{
    sr_error_clear(e);
    CU_ASSERT_FATAL(sr_comm_init(c, MPI_COMM_WORLD, e) == SR_OK);
    paths(in, out, out2, 512);
    plant(g);
    if (c->rank == 0) {
        remove(in);
        write_input(in, g);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Serial: the partition finds the planted communities (halo <= X). */
static void test_planted_halo(void)
{
    static planted g;
    plant(&g);
    int64_t upart[U], ipart[N], uid[U], iid[N], cut = -1;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_reorder_partition(U, N, g.indptr[0], g.items[0], 4, 0, upart, ipart, &cut, &e) == SR_OK);
    CU_ASSERT(cut >= 0 && cut <= g.cross);
    CU_ASSERT_EQUAL(sr_reorder_renumber(U, 4, upart, uid), 0); /* 60 users per part: no spill */
    CU_ASSERT_EQUAL(sr_reorder_renumber(N, 4, ipart, iid), 0);
    CU_ASSERT(is_perm(uid, U) && is_perm(iid, N));
    /* Every part holds exactly one community. */
    for (int64_t u = 1; u < U; u++) CU_ASSERT_EQUAL(upart[u] == upart[0], user_comm(u) == user_comm(0));
    for (int p = 4; p >= 2; p /= 2) {
        int64_t before = sr_reorder_halo(U, N, g.indptr[0], g.items[0], NULL, NULL, p, NULL);
        int64_t rows[4];
        int64_t after = sr_reorder_halo(U, N, g.indptr[0], g.items[0], uid, iid, p, rows);
        int64_t sum = 0;
        for (int r = 0; r < p; r++) sum += rows[r];
        CU_ASSERT_EQUAL(sum, 2 * after);
        CU_ASSERT(after <= g.cross);
        CU_ASSERT(before >= 3 * after);
        if (sr_test_rank() == 0)
            printf("\n  P=%d: cross pairs %lld, cut %lld, halo %lld -> %lld ", p, (long long)g.cross, (long long)cut,
                   (long long)before, (long long)after);
    }
    /* One part: identity. */
    CU_ASSERT(sr_reorder_partition(U, N, g.indptr[0], g.items[0], 1, 0, upart, ipart, &cut, &e) == SR_OK);
    CU_ASSERT_EQUAL(sr_reorder_renumber(U, 1, upart, uid), 0);
    for (int64_t u = 0; u < U; u++) CU_ASSERT_EQUAL(uid[u], u);
}

static void test_errors(void)
{
    sr_comm c;
    sr_error e;
    char in[512], out[512], args[1200];
    static planted g;
    setup(&c, &e, in, out, NULL, &g);
    remove(out);
    MPI_Barrier(MPI_COMM_WORLD);
    struct {
        const char *fmt;
        int code;
        const char *msg;
    } bad[] = {
        {"--input %s --output %s --parts 0", SR_ERR_USAGE, "data reorder: --parts '0': expected an integer >= 1"},
        {"--input %s --output %s --parts -3", SR_ERR_USAGE, "data reorder: --parts '-3': expected an integer >= 1"},
        {"--input %s --output %s --parts 241", SR_ERR_USAGE, "reorder: --parts 241 exceeds the 240 users of %s"},
        {"--input %s --output %s", SR_ERR_USAGE, "data reorder: --parts is required"},
        {"--input %s --output %s --parts 2 --colour red", SR_ERR_USAGE,
         "data reorder: unknown option '--colour' (softrec data reorder --help)"},
        {"--input %s.missing --output %s --parts 2", SR_ERR_IO, "%s.missing: cannot open: No such file or directory"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char want[1200];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* formats from the table above */
        snprintf(args, sizeof args, bad[k].fmt, in, out);
        snprintf(want, sizeof want, bad[k].msg, in);
#pragma GCC diagnostic pop
        CU_ASSERT_EQUAL(cmd(&c, args, &e), bad[k].code);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        if (strcmp(e.msg, want)) fprintf(stderr, "got '%s'\nwant '%s'\n", e.msg, want);
        CU_ASSERT(access(out, F_OK) != 0); /* nothing written */
    }
    CU_ASSERT_EQUAL(cmd(&c, "--output x.h5 --parts 2", &e), SR_ERR_USAGE);
    CU_ASSERT_STRING_EQUAL(e.msg, "data reorder: --input is required");
    sr_comm_destroy(&c);
}

/* The command end to end: consistency, maps, composition, the reader. */
static void test_command(void)
{
    sr_comm c;
    sr_error e;
    char in[512], out[512], out2[512], args[1600];
    static planted g;
    setup(&c, &e, in, out, out2, &g);
    snprintf(args, sizeof args, "--input %s --output %s --parts 4 --seed 3 --force", in, out);
    CU_ASSERT_EQUAL_FATAL(cmd(&c, args, &e), SR_OK);
    /* An existing output is kept without --force. */
    snprintf(args, sizeof args, "--input %s --output %s --parts 4", in, out);
    CU_ASSERT_EQUAL(cmd(&c, args, &e), SR_ERR_IO);
    sr_error_clear(&e);

    /* The reader (schema + h5check, /map included) accepts it. */
    sr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_dataset_open(&ds, &c, out, &e), SR_OK);
    const sr_dataset_meta *m = sr_dataset_meta_get(ds);
    CU_ASSERT_EQUAL(m->num_users, U);
    CU_ASSERT_EQUAL(m->num_items, N);
    CU_ASSERT(m->has_time && m->has_id_maps);
    CU_ASSERT_STRING_EQUAL(m->name, "planted");
    static int64_t uorig[U], iorig[N], uraw[U], iraw[N], pop[N];
    read_map(out, "/map/user_orig_id", U, uorig);
    read_map(out, "/map/item_orig_id", N, iorig);
    CU_ASSERT(is_perm(uorig, U) && is_perm(iorig, N));
    CU_ASSERT(sr_dataset_read_id_map(ds, 0, 0, U, uraw, &e) == SR_OK);
    CU_ASSERT(sr_dataset_read_id_map(ds, 1, 0, N, iraw, &e) == SR_OK);
    for (int64_t v = 0; v < U; v++) CU_ASSERT_EQUAL(uraw[v], 1000 + 3 * uorig[v]);
    for (int64_t j = 0; j < N; j++) CU_ASSERT_EQUAL(iraw[j], 500000 + iorig[j] * iorig[j]);
    /* Every split: new user v's row is the old row of uorig[v], renamed, in order, with its times. */
    int64_t bad = 0;
    for (int s = 0; s < 3; s++) {
        sr_csr r;
        CU_ASSERT_FATAL(sr_dataset_read_split(ds, (sr_split)s, 0, U, &r, NULL, &e) == SR_OK);
        CU_ASSERT_EQUAL(r.nnz, g.indptr[s][U]);
        for (int64_t v = 0; v < U; v++) {
            int64_t u = uorig[v], a = g.indptr[s][u], n = g.indptr[s][u + 1] - a;
            if (r.indptr[v + 1] - r.indptr[v] != n) {
                bad++;
                continue;
            }
            for (int64_t k = 0; k < n; k++) {
                bad += iorig[r.items[r.indptr[v] + k]] != g.items[s][a + k];
                bad += r.time[r.indptr[v] + k] != g.time[s][a + k];
            }
        }
        sr_csr_free(&r, NULL);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(sr_dataset_read_popularity(ds, 0, N, pop, &e) == SR_OK);
    int64_t oldpop[N] = {0};
    for (int64_t k = 0; k < g.indptr[0][U]; k++) oldpop[g.items[0][k]]++;
    for (int64_t j = 0; j < N; j++) CU_ASSERT_EQUAL(pop[j], oldpop[iorig[j]]);
    sr_dataset_close(&ds);

    /* Reordering the output again composes: /map still names the input's ids. */
    snprintf(args, sizeof args, "--input %s --output %s --parts 2 --force", out, out2);
    CU_ASSERT_EQUAL_FATAL(cmd(&c, args, &e), SR_OK);
    static int64_t u2[U], u2raw[U];
    read_map(out2, "/map/user_orig_id", U, u2);
    CU_ASSERT_EQUAL_FATAL(sr_dataset_open(&ds, &c, out2, &e), SR_OK);
    CU_ASSERT(sr_dataset_read_id_map(ds, 0, 0, U, u2raw, &e) == SR_OK);
    for (int64_t v = 0; v < U; v++) CU_ASSERT_EQUAL(u2raw[v], 1000 + 3 * u2[v]);
    sr_dataset_close(&ds);

    /* A broken map is rejected with the exact error, at every rank. */
    MPI_Barrier(MPI_COMM_WORLD);
    if (c.rank == 0) {
        hid_t f = H5Fopen(out2, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t d = H5Dopen2(f, "/map/item_orig_id", H5P_DEFAULT);
        int64_t v[N];
        H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        v[7] = v[3];
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
        H5Ldelete(f, "/map/user_orig_id", H5P_DEFAULT);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char want[1200];
    CU_ASSERT_EQUAL(sr_dataset_open(&ds, &c, out2, &e), SR_ERR_DATA);
    snprintf(want, sizeof want, "%s: /map/item_orig_id without /map/user_orig_id (the renumbering maps come in pairs)",
             out2);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    MPI_Barrier(MPI_COMM_WORLD);
    if (c.rank == 0) {
        hid_t f = H5Fopen(out2, H5F_ACC_RDWR, H5P_DEFAULT);
        hsize_t n = U;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d = H5Dcreate2(f, "/map/user_orig_id", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, u2);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_dataset_open(&ds, &c, out2, &e), SR_ERR_DATA);
    int64_t v3;
    read_map(out2, "/map/item_orig_id", N, iorig);
    v3 = iorig[3];
    snprintf(want, sizeof want, "%s: /map/item_orig_id: item id %lld repeated at position 7 (not a permutation)", out2,
             (long long)v3);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_comm_destroy(&c);
}

/* LightGCN on this rank count: plan bytes = 2 x halo x d x 4 on both files,
 * and the same propagated embeddings (permuted) up to float rounding. */
static void lgcn_run(const sr_comm *c, const char *path, int64_t d, const int64_t *uorig, const int64_t *iorig,
                     double *eu_all, double *ei_all, int64_t *bytes)
{
    sr_error e;
    sr_error_clear(&e);
    sr_dataset *ds = NULL;
    CU_ASSERT_FATAL(sr_dataset_open(&ds, c, path, &e) == SR_OK);
    int64_t u0, u1;
    sr_dataset_user_range(U, c->size, c->rank, &u0, &u1);
    sr_csr tr;
    CU_ASSERT_FATAL(sr_dataset_read_split(ds, SR_SPLIT_TRAIN, u0, u1, &tr, NULL, &e) == SR_OK);
    sr_dataset_close(&ds);
    sr_shard sh;
    CU_ASSERT_FATAL(sr_shard_init_block(&sh, N, c->size, NULL, &e) == SR_OK);
    sr_lgcn *g = NULL;
    CU_ASSERT_FATAL(sr_lgcn_create(&g, c, &sh, u0, u1, U, tr.indptr, tr.items, NULL, 2, NULL, d, NULL, &e) == SR_OK);
    int64_t ni = sr_shard_count(&sh, c->rank), nu = u1 - u0;
    float *eu = malloc((size_t)(nu * d + 1) * sizeof *eu), *ei = malloc((size_t)(ni * d + 1) * sizeof *ei);
    float *uo = malloc((size_t)(nu * d + 1) * sizeof *uo), *io = malloc((size_t)(ni * d + 1) * sizeof *io);
    /* Layer 0 as a function of the input's id: the same model on both files. */
    for (int64_t v = 0; v < nu; v++)
        for (int64_t k = 0; k < d; k++) eu[v * d + k] = (float)sin(0.37 * (double)uorig[u0 + v] + 1.3 * (double)k);
    for (int64_t r = 0; r < ni; r++)
        for (int64_t k = 0; k < d; k++)
            ei[r * d + k] = (float)cos(0.11 * (double)iorig[sr_shard_global(&sh, c->rank, r)] + 0.7 * (double)k);
    CU_ASSERT(sr_lgcn_forward(g, eu, ei, uo, io, &e) == SR_OK);
    memset(eu_all, 0, (size_t)(U * d) * sizeof *eu_all);
    memset(ei_all, 0, (size_t)(N * d) * sizeof *ei_all);
    for (int64_t v = 0; v < nu; v++)
        for (int64_t k = 0; k < d; k++) eu_all[uorig[u0 + v] * d + k] = uo[v * d + k];
    for (int64_t r = 0; r < ni; r++)
        for (int64_t k = 0; k < d; k++) ei_all[iorig[sr_shard_global(&sh, c->rank, r)] * d + k] = io[r * d + k];
    MPI_Allreduce(MPI_IN_PLACE, eu_all, (int)(U * d), MPI_DOUBLE, MPI_SUM, c->comm);
    MPI_Allreduce(MPI_IN_PLACE, ei_all, (int)(N * d), MPI_DOUBLE, MPI_SUM, c->comm);
    int64_t b = sr_lgcn_round_bytes(g);
    MPI_Allreduce(&b, bytes, 1, MPI_INT64_T, MPI_SUM, c->comm);
    free(eu), free(ei), free(uo), free(io);
    sr_lgcn_destroy(&g);
    sr_shard_destroy(&sh);
    sr_csr_free(&tr, NULL);
}

static void test_lightgcn_halo(void)
{
    sr_comm c;
    sr_error e;
    char in[512], out[512], args[1200];
    static planted g;
    setup(&c, &e, in, out, NULL, &g);
    snprintf(args, sizeof args, "--input %s --output %s --parts 4 --force", in, out);
    CU_ASSERT_EQUAL_FATAL(cmd(&c, args, &e), SR_OK);
    static int64_t id_u[U], id_i[N], uorig[U], iorig[N], uid[U], iid[N];
    for (int64_t k = 0; k < U; k++) id_u[k] = k;
    for (int64_t k = 0; k < N; k++) id_i[k] = k;
    read_map(out, "/map/user_orig_id", U, uorig);
    read_map(out, "/map/item_orig_id", N, iorig);
    for (int64_t v = 0; v < U; v++) uid[uorig[v]] = v;
    for (int64_t j = 0; j < N; j++) iid[iorig[j]] = j;
    enum { D = 4 };
    static double u_a[U * D], i_a[N * D], u_b[U * D], i_b[N * D];
    int64_t bytes_a = 0, bytes_b = 0;
    lgcn_run(&c, in, D, id_u, id_i, u_a, i_a, &bytes_a);
    lgcn_run(&c, out, D, uorig, iorig, u_b, i_b, &bytes_b);
    int p = c.size;
    int64_t halo_a = sr_reorder_halo(U, N, g.indptr[0], g.items[0], NULL, NULL, p, NULL);
    int64_t halo_b = sr_reorder_halo(U, N, g.indptr[0], g.items[0], uid, iid, p, NULL);
    CU_ASSERT_EQUAL(bytes_a, 2 * halo_a * D * 4);
    CU_ASSERT_EQUAL(bytes_b, 2 * halo_b * D * 4);
    if (p == 2 || p == 4) CU_ASSERT(halo_b <= g.cross && 3 * halo_b <= halo_a);
    if (p == 3) CU_ASSERT(halo_b < halo_a); /* blocks cut through parts: less gain */
    double worst = 0;
    for (int64_t k = 0; k < U * D; k++) worst = fmax(worst, fabs(u_a[k] - u_b[k]));
    for (int64_t k = 0; k < N * D; k++) worst = fmax(worst, fabs(i_a[k] - i_b[k]));
    CU_ASSERT(worst <= 1e-5);
    if (c.rank == 0)
        printf("\n  np=%d: round bytes %lld -> %lld, max |diff| %.2e ", p, (long long)bytes_a, (long long)bytes_b,
               worst);
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("reorder", NULL, NULL);
    CU_add_test(s, "planted_halo", test_planted_halo);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "command", test_command);
    CU_add_test(s, "lightgcn_halo", test_lightgcn_halo);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
