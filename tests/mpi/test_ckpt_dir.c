/* test_ckpt_dir.c: the run-directory commit protocol and checkpoint v2.
 * Commit, `latest` and retention; bytes back exactly (tables, optimiser
 * state, training state) at another shard layout; same contents give the
 * same file bytes; a flipped byte is caught naming the table and block and
 * the loader falls back to the older checkpoint; injected errors in every
 * save phase leave the previous `latest` loadable on every rank; leftover
 * temporaries are removed and never taken for checkpoints. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/ckpt_dir.h"
#include "io/fault.h"

#define N 4100 /* two checksum blocks: rows 0-4095 and 4096-4099 */
#define U 7
#define D 3

static float value(int table, int64_t step, int64_t g, int64_t j)
{
    return (float)(table * 100000 + g * 10 + j) + 0.25f * (float)step;
}

/* Local state of one fake trainer: item and user tables, Adam m and v of
 * the item table, replicated and per-rank state. */
typedef struct model {
    sr_shard items, users;
    float *item, *user, *m, *v;
    int64_t counters[3]; /* step, epoch, cursor */
    uint64_t rng[4];     /* per rank */
} model;

static void model_init(model *md, const sr_comm *c, int layout_block)
{
    sr_error e;
    sr_error_clear(&e);
    if (layout_block) {
        /* Uneven blocks, rank 0 empty when there is more than one rank. */
        int64_t counts[8] = {0};
        for (int64_t i = 0; i < N; i++) counts[c->size == 1 ? 0 : 1 + i % (c->size - 1)]++;
        sr_shard_init_block(&md->items, N, c->size, counts, &e);
    } else {
        sr_shard_init_interleave(&md->items, N, c->size, &e);
    }
    sr_shard_init_block(&md->users, U, c->size, NULL, &e);
    int64_t ni = sr_shard_count(&md->items, c->rank) + 1, nu = sr_shard_count(&md->users, c->rank) + 1;
    md->item = calloc((size_t)(ni * D), sizeof(float));
    md->m = calloc((size_t)(ni * D), sizeof(float));
    md->v = calloc((size_t)(ni * D), sizeof(float));
    md->user = calloc((size_t)(nu * D), sizeof(float));
}

static void model_fill(model *md, int rank, int64_t step)
{
    for (int64_t k = 0; k < sr_shard_count(&md->items, rank); k++)
        for (int j = 0; j < D; j++) {
            int64_t g = sr_shard_global(&md->items, rank, k);
            md->item[k * D + j] = value(1, step, g, j);
            md->m[k * D + j] = value(2, step, g, j);
            md->v[k * D + j] = value(3, step, g, j);
        }
    for (int64_t k = 0; k < sr_shard_count(&md->users, rank); k++)
        for (int j = 0; j < D; j++) md->user[k * D + j] = value(4, step, sr_shard_global(&md->users, rank, k), j);
    md->counters[0] = step;
    md->counters[1] = step / 10;
    md->counters[2] = step * 7;
    for (int i = 0; i < 4; i++) md->rng[i] = (uint64_t)rank * 1000u + (uint64_t)step * 10u + (uint64_t)i + (1ull << 63);
}

/* Mismatching values on this rank (0 = exactly the step's values). */
static int model_check(const model *md, int rank, int64_t step)
{
    int bad = 0;
    for (int64_t k = 0; k < sr_shard_count(&md->items, rank); k++)
        for (int j = 0; j < D; j++) {
            int64_t g = sr_shard_global(&md->items, rank, k);
            bad += md->item[k * D + j] != value(1, step, g, j);
            bad += md->m[k * D + j] != value(2, step, g, j);
            bad += md->v[k * D + j] != value(3, step, g, j);
        }
    for (int64_t k = 0; k < sr_shard_count(&md->users, rank); k++)
        for (int j = 0; j < D; j++) bad += md->user[k * D + j] != value(4, step, sr_shard_global(&md->users, rank, k), j);
    bad += md->counters[0] != step || md->counters[1] != step / 10 || md->counters[2] != step * 7;
    for (int i = 0; i < 4; i++)
        bad += md->rng[i] != (uint64_t)rank * 1000u + (uint64_t)step * 10u + (uint64_t)i + (1ull << 63);
    return bad;
}

static void model_free(model *md)
{
    sr_shard_destroy(&md->items);
    sr_shard_destroy(&md->users);
    free(md->item);
    free(md->m);
    free(md->v);
    free(md->user);
}

static int tables_of(model *md, int rank, sr_ckpt_table *t)
{
    int64_t ni = sr_shard_count(&md->items, rank), nu = sr_shard_count(&md->users, rank);
    int64_t u0 = sr_shard_global(&md->users, rank, 0);
    t[0] = (sr_ckpt_table){"/model/item_embedding", md->item, ni, N, D, &md->items, 0};
    t[1] = (sr_ckpt_table){"/model/user_embedding", md->user, nu, U, D, NULL, nu ? u0 : 0};
    t[2] = (sr_ckpt_table){"/optim/item_embedding/m", md->m, ni, N, D, &md->items, 0};
    t[3] = (sr_ckpt_table){"/optim/item_embedding/v", md->v, ni, N, D, &md->items, 0};
    return 4;
}

static int state_of(model *md, sr_ckpt_state *s)
{
    s[0] = (sr_ckpt_state){"counters", SR_CKPT_I64, md->counters, 3, 0, 0, 0, 0};
    s[1] = (sr_ckpt_state){"rng/sampler", SR_CKPT_U64, md->rng, 4, 1, 0, 0, 0};
    return 2;
}

static sr_ckpt_info info_of(int64_t step)
{
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.step = step;
    info.epoch = step / 10;
    info.num_items = N;
    info.num_users = U;
    info.dim = D;
    snprintf(info.dataset, sizeof info.dataset, "data.h5");
    snprintf(info.dataset_sha256, sizeof info.dataset_sha256, "%064d", 7);
    info.config_ini = "[model]\ndim = 3\n";
    return info;
}

static sr_status save_step(const sr_comm *c, model *md, const char *run, int64_t step, int64_t keep, sr_fault *f,
                           sr_error *e)
{
    model_fill(md, c->rank, step);
    sr_ckpt_table t[4];
    sr_ckpt_state s[2];
    int nt = tables_of(md, c->rank, t), ns = state_of(md, s);
    sr_ckpt_info info = info_of(step);
    return sr_ckpt_dir_save(c, run, step, &info, t, nt, s, ns, keep, f, e);
}

/* Fresh run directory under the test's scratch dir (same on every rank). */
static void fresh_run(const sr_comm *c, const char *name, char *run, size_t len)
{
    snprintf(run, len, "%s/%s", sr_test_tmpdir(), name);
    if (c->rank == 0) {
        char cmd[2 * 1200 + 64]; /* two copies of a run path (< 1200) */
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", run, run);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    MPI_Barrier(c->comm);
}

static int exists(const char *dir, const char *name)
{
    char p[1600];
    snprintf(p, sizeof p, "%s/checkpoints/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Count of entries starting with prefix in run/checkpoints (rank 0 looks,
 * every rank gets the answer). */
static int count_prefix(const char *run, const char *prefix)
{
    int n = -1;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) {
        MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
        return n;
    }
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "ls -a '%s/checkpoints' | grep -c '^%s' > '%s/count.txt'", run, prefix, run);
    if (system(cmd) < 0) return -1;
    snprintf(cmd, sizeof cmd, "%s/count.txt", run);
    FILE *f = fopen(cmd, "r");
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) fclose(f);
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return n;
}

/* Rank 0: xor one byte of row `row`, column 0 of a table in a file. */
static void flip_row(const sr_comm *c, const char *path, const char *table, int64_t row)
{
    if (c->rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = H5Dopen2(f, table, H5P_DEFAULT);
        haddr_t off = H5Dget_offset(d);
        H5Dclose(d);
        H5Fclose(f);
        CU_ASSERT_NOT_EQUAL_FATAL(off, HADDR_UNDEF);
        int fd = open(path, O_RDWR);
        unsigned char b = 0;
        off_t at = (off_t)(off + (haddr_t)(row * D * 4) + 1);
        CU_ASSERT_EQUAL(pread(fd, &b, 1, at), 1);
        b ^= 0x40;
        CU_ASSERT_EQUAL(pwrite(fd, &b, 1, at), 1);
        close(fd);
    }
    MPI_Barrier(c->comm);
}

static int all_ok(const sr_comm *c, int bad)
{
    int any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, c->comm);
    return any == 0;
}

static void test_commit_latest_keep(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char run[1200], path[1600];
    fresh_run(&c, "commit", run, sizeof run);
    model md;
    model_init(&md, &c, 0);
    CU_ASSERT_EQUAL(sr_ckpt_dir_cleanup(&c, run, &e), SR_OK);
    /* An empty directory: no checkpoint, a fresh start. */
    CU_ASSERT_EQUAL(sr_ckpt_dir_latest(&c, run, path, sizeof path, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(path, "");
    for (int64_t s = 10; s <= 30; s += 10) CU_ASSERT_EQUAL(save_step(&c, &md, run, s, 2, NULL, &e), SR_OK);
    CU_ASSERT_FALSE(exists(run, "ckpt-000000000010.h5"));
    CU_ASSERT_FALSE(exists(run, "ckpt-000000000010.h5.sha256"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000020.h5"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000030.h5"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000030.h5.sha256"));
    CU_ASSERT_EQUAL(count_prefix(run, "\\.tmp"), 0);
    CU_ASSERT_FALSE(exists(run, "latest.tmp"));
    char lp[1600];
    snprintf(lp, sizeof lp, "%s/checkpoints/latest", run);
    FILE *f = fopen(lp, "r");
    char line[64] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(line, "ckpt-000000000030.h5\n");
    CU_ASSERT_EQUAL(sr_ckpt_dir_latest(&c, run, path, sizeof path, &e), SR_OK);
    char want[1600];
    snprintf(want, sizeof want, "%s/checkpoints/ckpt-000000000030.h5", run);
    CU_ASSERT_STRING_EQUAL(path, want);
    CU_ASSERT_EQUAL(sr_ckpt_verify(&c, path, NULL, &e), SR_OK);

    /* Going back: a save at step 25 drops 30 (abandoned timeline). */
    CU_ASSERT_EQUAL(save_step(&c, &md, run, 25, 2, NULL, &e), SR_OK);
    CU_ASSERT_FALSE(exists(run, "ckpt-000000000030.h5"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000020.h5"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000025.h5"));
    model_free(&md);
    sr_comm_destroy(&c);
}

static void test_roundtrip_reshard_bytes(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char run[1200], run2[1200], path[1600];
    fresh_run(&c, "reshard", run, sizeof run);
    fresh_run(&c, "reshard2", run2, sizeof run2);
    model w;
    model_init(&w, &c, 0); /* written interleaved */
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &w, run, 40, 3, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &w, run2, 40, 3, NULL, &e), SR_OK);
    /* Same contents, same rank count: the same bytes. */
    if (c.rank == 0) {
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "cmp -s '%s/checkpoints/ckpt-000000000040.h5' '%s/checkpoints/ckpt-000000000040.h5'",
                 run, run2);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    /* Read back into uneven blocks (rank 0 empty at P > 1). */
    model r;
    model_init(&r, &c, 1);
    sr_ckpt_table t[4];
    sr_ckpt_state s[2];
    int nt = tables_of(&r, c.rank, t), ns = state_of(&r, s);
    sr_ckpt_info info;
    CU_ASSERT_EQUAL_FATAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, &info, NULL, NULL, path, sizeof path, &e), SR_OK);
    CU_ASSERT_TRUE(all_ok(&c, model_check(&r, c.rank, 40)));
    CU_ASSERT_EQUAL(info.step, 40);
    CU_ASSERT_EQUAL(info.format_version, 2);
    CU_ASSERT_STRING_EQUAL(info.dataset_sha256, "0000000000000000000000000000000000000000000000000000000000000007");
    CU_ASSERT_PTR_NOT_NULL(info.config_ini);
    if (info.config_ini) CU_ASSERT_STRING_EQUAL(info.config_ini, "[model]\ndim = 3\n");
    free(info.config_ini);

    /* Model tables only (train.init): no state needed. */
    CU_ASSERT_EQUAL(sr_ckpt_read(&c, path, t, 2, NULL, &e), SR_OK);

    /* Per-rank state cannot be resharded: simulate a save at another rank
     * count by asking for it at P+1 through a communicator of P ranks is not
     * possible, so check the message on a file saved by a sub-communicator. */
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, c.rank == 0 ? 0 : MPI_UNDEFINED, 0, &half);
    char solo[1600];
    snprintf(solo, sizeof solo, "%s/solo.h5", run);
    if (c.size > 1 && half != MPI_COMM_NULL) {
        sr_comm one;
        sr_error e1;
        sr_error_clear(&e1);
        sr_comm_init(&one, half, &e1);
        model m1;
        model_init(&m1, &one, 0);
        model_fill(&m1, 0, 5);
        sr_ckpt_table t1[4];
        sr_ckpt_state s1[2];
        int n1 = tables_of(&m1, 0, t1), k1 = state_of(&m1, s1);
        sr_ckpt_info i1 = info_of(5);
        CU_ASSERT_EQUAL(sr_ckpt_save(&one, solo, &i1, t1, n1, s1, k1, NULL, &e1), SR_OK);
        model_free(&m1);
        sr_comm_destroy(&one);
    }
    if (half != MPI_COMM_NULL) MPI_Comm_free(&half);
    MPI_Barrier(c.comm);
    if (c.size > 1) {
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_load(&c, solo, t, nt, s, ns, NULL, NULL, &e), SR_ERR_DATA);
        char want[1800];
        snprintf(want, sizeof want,
                 "%s: /state/rng/sampler: per-rank state saved at 1 ranks cannot be loaded at %d ranks", solo, c.size);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        /* Replicated state and tables still load from it at any rank count. */
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_load(&c, solo, t, nt, s, 1, NULL, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL(r.counters[0], 5);
    }
    model_free(&w);
    model_free(&r);
    sr_comm_destroy(&c);
}

static void test_damage_and_fallback(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char run[1200], path[1600], newest[1600], older[1600];
    fresh_run(&c, "damage", run, sizeof run);
    model md;
    model_init(&md, &c, 0);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 1, 3, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 2, 3, NULL, &e), SR_OK);
    snprintf(newest, sizeof newest, "%s/checkpoints/ckpt-000000000002.h5", run);
    snprintf(older, sizeof older, "%s/checkpoints/ckpt-000000000001.h5", run);
    sr_ckpt_table t[4];
    sr_ckpt_state s[2];
    int nt = tables_of(&md, c.rank, t), ns = state_of(&md, s);

    /* Row 4097 is in block 1 of the optimiser's v table. */
    flip_row(&c, newest, "/optim/item_embedding/v", 4097);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, newest, t, nt, s, ns, NULL, NULL, &e), SR_ERR_DATA);
    char want[1800];
    snprintf(want, sizeof want,
             "%s: /optim/item_embedding/v: block 1 (rows 4096-4099) fails its SHA-256 check (damaged file)", newest);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_verify(&c, newest, NULL, &e), SR_ERR_DATA);
    CU_ASSERT_STRING_EQUAL(e.msg, want);

    /* The directory loader falls back to step 1 on every rank. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(path, older);
    CU_ASSERT_TRUE(all_ok(&c, model_check(&md, c.rank, 1)));

    /* Block 0 of the item table: named too. */
    flip_row(&c, older, "/model/item_embedding", 5);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_ERR_DATA);
    snprintf(want, sizeof want,
             "%s: /optim/item_embedding/v: block 1 (rows 4096-4099) fails its SHA-256 check (damaged file)", newest);
    CU_ASSERT_STRING_EQUAL(e.msg, want); /* the newest one's error */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, older, t, nt, s, ns, NULL, NULL, &e), SR_ERR_DATA);
    snprintf(want, sizeof want,
             "%s: /model/item_embedding: block 0 (rows 0-4095) fails its SHA-256 check (damaged file)", older);
    CU_ASSERT_STRING_EQUAL(e.msg, want);

    /* Damage outside the tables (the last byte: HDF5 metadata or state) is
     * caught by some check: never a silent success. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 3, 3, NULL, &e), SR_OK);
    char third[1600];
    snprintf(third, sizeof third, "%s/checkpoints/ckpt-000000000003.h5", run);
    if (c.rank == 0) {
        int fd = open(third, O_RDWR);
        struct stat st;
        fstat(fd, &st);
        unsigned char b = 0;
        CU_ASSERT_EQUAL(pread(fd, &b, 1, 100), 1);
        b ^= 0x01;
        CU_ASSERT_EQUAL(pwrite(fd, &b, 1, 100), 1);
        close(fd);
    }
    MPI_Barrier(c.comm);
    sr_error_clear(&e);
    CU_ASSERT_NOT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_OK);
    model_free(&md);
    sr_comm_destroy(&c);
}

static void test_injected_errors(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char run[1200], path[1600], want_path[1600];
    fresh_run(&c, "faults", run, sizeof run);
    model md;
    model_init(&md, &c, 0);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 100, 5, NULL, &e), SR_OK);
    snprintf(want_path, sizeof want_path, "%s/checkpoints/ckpt-000000000100.h5", run);
    const char *phases[] = {"ckpt_write", "ckpt_before_commit", "ckpt_after_rename", "ckpt_latest"};
    int last = c.size - 1;
    for (int i = 0; i < 4; i++) {
        char spec[64];
        /* ckpt_latest runs on rank 0 only. */
        snprintf(spec, sizeof spec, "%s@%d", phases[i], i == 3 ? 0 : last);
        sr_fault f;
        CU_ASSERT_EQUAL_FATAL(sr_fault_parse(&f, spec, "error", &e), SR_OK);
        sr_error_clear(&e);
        sr_status st = save_step(&c, &md, run, 101 + i, 5, &f, &e);
        CU_ASSERT_EQUAL(st, SR_ERR_IO);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "injected fault at"));
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, phases[i]));
        CU_ASSERT_EQUAL(count_prefix(run, "\\.tmp"), 0);
        /* `latest` still names step 100 and it loads on every rank. */
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_dir_latest(&c, run, path, sizeof path, &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(path, want_path);
        sr_ckpt_table t[4];
        sr_ckpt_state s[2];
        int nt = tables_of(&md, c.rank, t), ns = state_of(&md, s);
        CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(path, want_path);
        CU_ASSERT_TRUE(all_ok(&c, model_check(&md, c.rank, 100)));
    }
    /* A read fault fails the newest on every rank and falls back to nothing
     * older here: the error names the phase. */
    sr_fault f;
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_read", "error", &e), SR_OK);
    sr_ckpt_table t[4];
    sr_ckpt_state s[2];
    int nt = tables_of(&md, c.rank, t), ns = state_of(&md, s);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, &f, path, sizeof path, &e), SR_ERR_IO);
    char want[1800];
    snprintf(want, sizeof want, "%s: injected fault at ckpt_read on rank 0", want_path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    /* A read-only directory: a clear error, latest untouched. */
    if (getuid() != 0) {
        char d[1400];
        snprintf(d, sizeof d, "%s/checkpoints", run);
        if (c.rank == 0) chmod(d, 0555);
        MPI_Barrier(c.comm);
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(save_step(&c, &md, run, 200, 5, NULL, &e), SR_ERR_IO);
        if (c.rank == 0) chmod(d, 0755);
    }
    model_free(&md);
    sr_comm_destroy(&c);
}

static void test_cleanup_and_names(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char run[1200], path[1600], want[1600];
    fresh_run(&c, "cleanup", run, sizeof run);
    model md;
    model_init(&md, &c, 0);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 7, 2, NULL, &e), SR_OK);
    /* Leftovers of a crashed save, and names that look almost right. */
    if (c.rank == 0) {
        const char *junk[] = {".tmp-9-1234.h5", ".tmp-9-1234.sha256", "latest.tmp", "ckpt-000000000009.h5.sha256",
                              "ckpt-000000000099.h5.tmp", "ckpt-99.h5", "ckpt-000000000098.h5~"};
        for (int i = 0; i < 7; i++) {
            char p[1600];
            snprintf(p, sizeof p, "%s/checkpoints/%s", run, junk[i]);
            FILE *f = fopen(p, "w");
            if (f) {
                fputs("junk", f);
                fclose(f);
            }
        }
    }
    MPI_Barrier(c.comm);
    snprintf(want, sizeof want, "%s/checkpoints/ckpt-000000000007.h5", run);
    /* Before cleanup the loader already ignores them. */
    sr_ckpt_table t[4];
    sr_ckpt_state s[2];
    int nt = tables_of(&md, c.rank, t), ns = state_of(&md, s);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(path, want);
    CU_ASSERT_EQUAL(sr_ckpt_dir_cleanup(&c, run, &e), SR_OK);
    CU_ASSERT_FALSE(exists(run, ".tmp-9-1234.h5"));
    CU_ASSERT_FALSE(exists(run, ".tmp-9-1234.sha256"));
    CU_ASSERT_FALSE(exists(run, "latest.tmp"));
    CU_ASSERT_FALSE(exists(run, "ckpt-000000000009.h5.sha256"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000007.h5.sha256"));
    CU_ASSERT_TRUE(exists(run, "ckpt-000000000007.h5"));
    /* `latest` missing: the newest committed one, with a warning. */
    if (c.rank == 0) {
        char p[1600];
        snprintf(p, sizeof p, "%s/checkpoints/latest", run);
        unlink(p);
    }
    MPI_Barrier(c.comm);
    CU_ASSERT_EQUAL(sr_ckpt_dir_latest(&c, run, path, sizeof path, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(path, want);

    /* Whole-file digests: a byte appended to step 8 (HDF5 ignores bytes
     * past its end, the tables verify) is caught by the size in the digest
     * file: the loader falls back to 7; then a malformed digest file of 7
     * makes both unusable and the newest one's reason is returned. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(save_step(&c, &md, run, 8, 2, NULL, &e), SR_OK);
    char p8[1600], p7side[1700];
    snprintf(p8, sizeof p8, "%s/checkpoints/ckpt-000000000008.h5", run);
    snprintf(p7side, sizeof p7side, "%s.sha256", want);
    struct stat st8;
    CU_ASSERT_EQUAL_FATAL(stat(p8, &st8), 0);
    MPI_Barrier(c.comm);
    if (c.rank == 0) {
        FILE *f = fopen(p8, "ab");
        fputc('x', f);
        fclose(f);
    }
    MPI_Barrier(c.comm);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(path, want);
    CU_ASSERT_TRUE(all_ok(&c, model_check(&md, c.rank, 7)));
    if (c.rank == 0) {
        FILE *f = fopen(p7side, "w");
        fputs("softrec-ckpt-digest 1\nchunk_bytes 16777216\nsize 12\nnot-hex\n", f);
        fclose(f);
    }
    MPI_Barrier(c.comm);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_dir_load(&c, run, t, nt, s, ns, NULL, NULL, NULL, path, sizeof path, &e), SR_ERR_DATA);
    char msg[1800];
    snprintf(msg, sizeof msg, "%s: size %lld bytes, its digest file says %lld (damaged file)", p8,
             (long long)st8.st_size + 1, (long long)st8.st_size);
    CU_ASSERT_STRING_EQUAL(e.msg, msg);

    int64_t step = 0;
    CU_ASSERT_TRUE(sr_ckpt_dir_parse_name("ckpt-000000001234.h5", &step));
    CU_ASSERT_EQUAL(step, 1234);
    CU_ASSERT_FALSE(sr_ckpt_dir_parse_name(".tmp-1234-5.h5", &step));
    CU_ASSERT_FALSE(sr_ckpt_dir_parse_name("ckpt-00000000123x.h5", &step));
    CU_ASSERT_FALSE(sr_ckpt_dir_parse_name("ckpt-000000001234.h5.sha256", &step));
    model_free(&md);
    sr_comm_destroy(&c);
}

/* Version 1 files (model tables only) still initialise a model. */
static void test_version1(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s/v1.h5", sr_test_tmpdir());
    float tab[U * D];
    for (int i = 0; i < U * D; i++) tab[i] = (float)i;
    if (c.rank == 0) {
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, strlen(SR_CKPT_FORMAT) + 1);
        hid_t a = H5Acreate2(f, "softrec_format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, st, SR_CKPT_FORMAT);
        H5Aclose(a);
        int64_t one = 1;
        a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &one);
        H5Aclose(a);
        hid_t g = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t dims[2] = {U, D};
        hid_t ds = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(g, "user_embedding", H5T_IEEE_F64LE, ds, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        double dv[U * D];
        for (int i = 0; i < U * D; i++) dv[i] = i;
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dv);
        H5Dclose(d);
        H5Sclose(ds);
        H5Gclose(g);
        H5Tclose(st);
        H5Sclose(sp);
        H5Fclose(f);
    }
    MPI_Barrier(c.comm);
    sr_shard users;
    sr_shard_init_block(&users, U, c.size, NULL, &e);
    int64_t nu = sr_shard_count(&users, c.rank);
    float got[U * D];
    sr_ckpt_table t = {"/model/user_embedding", got, nu, U, D, NULL, nu ? sr_shard_global(&users, c.rank, 0) : 0};
    sr_ckpt_info info;
    CU_ASSERT_EQUAL(sr_ckpt_read(&c, path, &t, 1, &info, &e), SR_OK);
    CU_ASSERT_EQUAL(info.format_version, 1);
    free(info.config_ini);
    int bad = 0;
    for (int64_t k = 0; k < nu * D; k++) bad += got[k] != tab[t.first_global * D + k];
    CU_ASSERT_TRUE(all_ok(&c, bad));
    int64_t cnt[1] = {0};
    sr_ckpt_state s = {"counters", SR_CKPT_I64, cnt, 1, 0, 0, 0, 0};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, &t, 1, &s, 1, NULL, NULL, &e), SR_ERR_DATA);
    char want[1600];
    snprintf(want, sizeof want,
             "%s: format_version 1 checkpoint holds no training state (needed: /state/counters); it can only "
             "initialise a model (train.init)", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_shard_destroy(&users);
    sr_comm_destroy(&c);
}

static void test_fault_parse(void)
{
    sr_fault f;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, NULL, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(f.phase, SR_FAULT_NONE);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 0, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_write@1#3", "error", &e), SR_OK);
    CU_ASSERT_EQUAL(f.phase, SR_FAULT_CKPT_WRITE);
    CU_ASSERT_EQUAL(f.rank, 1);
    CU_ASSERT_EQUAL(f.nth, 3);
    CU_ASSERT_EQUAL(f.action, SR_FAULT_ERROR);
    /* Fires on the third hit on rank 1 only, once. */
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 0, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 1, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_READ, 1, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 1, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 1, "f.h5", &e), SR_ERR_IO);
    CU_ASSERT_STRING_EQUAL(e.msg, "f.h5: injected fault at ckpt_write on rank 1");
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_fault_hit(&f, SR_FAULT_CKPT_WRITE, 1, "x", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_wrote", NULL, &e), SR_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "SOFTREC_FAULT='ckpt_wrote': unknown phase"));
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_read#0", NULL, &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, "SOFTREC_FAULT='ckpt_read#0': bad count (>= 1) after '#'");
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_read@x", NULL, &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, "SOFTREC_FAULT='ckpt_read@x': bad rank after '@'");
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "ckpt_read", "explode", &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, "SOFTREC_FAULT_ACTION='explode': expected kill, error or stop");
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("ckpt_dir", NULL, NULL);
    CU_add_test(s, "fault_parse", test_fault_parse);
    CU_add_test(s, "commit_latest_keep", test_commit_latest_keep);
    CU_add_test(s, "roundtrip_reshard_bytes", test_roundtrip_reshard_bytes);
    CU_add_test(s, "damage_and_fallback", test_damage_and_fallback);
    CU_add_test(s, "injected_errors", test_injected_errors);
    CU_add_test(s, "cleanup_and_names", test_cleanup_and_names);
    CU_add_test(s, "version1", test_version1);
}

/* Program modes for tests/scripts/ckpt_kill.sh:
 *   test_ckpt_dir save RUN STEP    cleanup, then commit STEP (keep 2) with
 *                                  SOFTREC_FAULT / SOFTREC_FAULT_ACTION applied
 *   test_ckpt_dir check RUN STEP   load the newest usable checkpoint (any
 *                                  rank count): it must be STEP's, exactly
 * Exit 0 on success, 1 with a message otherwise. */
static int program(const char *mode, const char *run, int64_t step)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &e) != SR_OK) return 1;
    model md;
    model_init(&md, &c, strcmp(mode, "check") == 0);
    int rc = 0;
    if (strcmp(mode, "save") == 0) {
        sr_fault f;
        if (sr_fault_from_env(&f, &e) != SR_OK || sr_ckpt_dir_cleanup(&c, run, &e) != SR_OK ||
            save_step(&c, &md, run, step, 2, &f, &e) != SR_OK)
            rc = 1;
    } else {
        sr_ckpt_table t[4];
        sr_ckpt_state s[2];
        int nt = tables_of(&md, c.rank, t);
        state_of(&md, s);
        char path[1600], name[32];
        /* Per-rank state only loads at the rank count that saved it: the
         * check reads the replicated state, at any rank count. */
        if (sr_ckpt_dir_load(&c, run, t, nt, s, 1, NULL, NULL, NULL, path, sizeof path, &e) != SR_OK) {
            rc = 1;
        } else {
            sr_ckpt_dir_name(step, name, sizeof name);
            for (int i = 0; i < 4; i++) md.rng[i] = (uint64_t)c.rank * 1000u + (uint64_t)step * 10u + (uint64_t)i + (1ull << 63);
            int bad = model_check(&md, c.rank, step), any = 0;
            MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, c.comm);
            const char *base = strrchr(path, '/');
            if (any || !base || strcmp(base + 1, name) != 0) {
                if (c.rank == 0) fprintf(stderr, "check: loaded %s, expected %s with exact values (bad %d)\n", path, name, any);
                rc = 1;
            } else if (c.rank == 0) {
                printf("check: loaded %s at %d ranks, values exact\n", path, c.size);
            }
        }
    }
    if (rc && e.code != SR_OK && c.rank == 0) fprintf(stderr, "softrec: error: %s\n", e.msg);
    model_free(&md);
    sr_comm_destroy(&c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && (strcmp(argv[1], "save") == 0 || strcmp(argv[1], "check") == 0)) {
        MPI_Init(&argc, &argv);
        int rc = program(argv[1], argv[2], atoll(argv[3]));
        MPI_Finalize();
        return rc;
    }
    return sr_test_main(argc, argv, register_tests);
}
