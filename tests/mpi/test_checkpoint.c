/* test_checkpoint.c: checkpoints are layout-independent. Written at P ranks
 * with one shard layout, read back with another (and by every rank count the
 * ctest matrix runs), every value lands at its global id; bad files give the
 * same clear error on every rank and nothing half-written stays behind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/sha256.h"

#include <hdf5.h>

#define N 13
#define U 7
#define D 3

static float value(int table, int64_t g, int64_t j) { return (float)(table * 1000 + g * 10 + j); }

static void fill(float *buf, const sr_shard *s, int rank, int table, int64_t first)
{
    int64_t cnt = s ? sr_shard_count(s, rank) : 0;
    for (int64_t k = 0; k < cnt; k++)
        for (int64_t j = 0; j < D; j++) buf[k * D + j] = value(table, sr_shard_global(s, rank, k), j);
    (void)first;
}

static void test_roundtrip_across_layouts(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/ckpt_rt.h5", sr_test_tmpdir());

    sr_shard inter, block, users;
    sr_shard_init_interleave(&inter, N, c.size, &e);
    /* Uneven blocks with rank 0 empty when there is more than one rank. */
    int64_t counts[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < N; i++) counts[c.size == 1 ? 0 : 1 + i % (c.size - 1)]++;
    sr_shard_init_block(&block, N, c.size, counts, &e);
    sr_shard_init_block(&users, U, c.size, NULL, &e);

    float items[N * D], user[U * D];
    fill(items, &inter, c.rank, 1, 0);
    fill(user, &users, c.rank, 2, 0);
    sr_ckpt_table w[2] = {
        {"/model/item_embedding", items, sr_shard_count(&inter, c.rank), N, D, &inter, 0},
        {"/model/user_embedding", user, sr_shard_count(&users, c.rank), U, D, NULL,
         sr_shard_global(&users, c.rank, 0)},
    };
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.step = 42;
    info.epoch = 3;
    info.num_items = N;
    info.num_users = U;
    info.dim = D;
    snprintf(info.dataset, sizeof info.dataset, "data.h5");
    info.config_ini = "[model]\ndim = 3\n";
    CU_ASSERT_EQUAL_FATAL(sr_ckpt_write(&c, path, &info, w, 2, &e), SR_OK);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);

    float items2[N * D], user2[U * D];
    memset(items2, 0xff, sizeof items2);
    sr_ckpt_table r[2] = {
        {"/model/item_embedding", items2, sr_shard_count(&block, c.rank), N, D, &block, 0},
        {"/model/user_embedding", user2, sr_shard_count(&users, c.rank), U, D, NULL,
         sr_shard_global(&users, c.rank, 0)},
    };
    sr_ckpt_info got;
    CU_ASSERT_EQUAL_FATAL(sr_ckpt_read(&c, path, r, 2, &got, &e), SR_OK);
    CU_ASSERT_EQUAL(got.step, 42);
    CU_ASSERT_EQUAL(got.epoch, 3);
    CU_ASSERT_PTR_NOT_NULL(got.config_ini);
    if (got.config_ini) CU_ASSERT_STRING_EQUAL(got.config_ini, "[model]\ndim = 3\n");
    free(got.config_ini);
    int bad = 0;
    for (int64_t k = 0; k < sr_shard_count(&block, c.rank); k++)
        for (int j = 0; j < D; j++) bad += items2[k * D + j] != value(1, sr_shard_global(&block, c.rank, k), j);
    for (int64_t k = 0; k < sr_shard_count(&users, c.rank); k++)
        for (int j = 0; j < D; j++) bad += user2[k * D + j] != value(2, sr_shard_global(&users, c.rank, k), j);
    CU_ASSERT_EQUAL(bad, 0);

    /* Wrong shape: every rank gets the same message. */
    sr_ckpt_table wrong = {"/model/item_embedding", items2, sr_shard_count(&block, c.rank), N + 1, D, &block, 0};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_read(&c, path, &wrong, 1, NULL, &e), SR_ERR_DATA);
    char want[1200];
    snprintf(want, sizeof want, "%s: /model/item_embedding: shape 13x3, expected 14x3", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    /* Missing file. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_read(&c, "/nonexistent/ckpt.h5", r, 2, NULL, &e), SR_ERR_IO);
    CU_ASSERT_STRING_EQUAL(e.msg, "/nonexistent/ckpt.h5: cannot open checkpoint (missing or not HDF5)");
    /* Writing into a missing directory fails cleanly everywhere. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_write(&c, "/nonexistent/dir/x.h5", &info, w, 2, &e), SR_ERR_IO);

    sr_shard_destroy(&inter);
    sr_shard_destroy(&block);
    sr_shard_destroy(&users);
    sr_comm_destroy(&c);
}

/* Rank 0 rewrites /state/<name> of a closed file with vals (count doubles);
 * fix_digest recomputes its sha256 attribute (a forged file). */
static void forge_f64(const char *path, const char *name, const double *vals, int count, int fix_digest)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
    if (fix_digest) {
        sr_sha256 h;
        char hex[65];
        sr_sha256_init(&h);
        sr_sha256_update(&h, vals, (size_t)count * sizeof *vals);
        sr_sha256_hex(&h, hex);
        H5Adelete(ds, "sha256");
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, sizeof hex);
        hid_t at = H5Acreate2(ds, "sha256", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(at, t, hex);
        H5Aclose(at);
        H5Sclose(sp);
        H5Tclose(t);
    }
    H5Dclose(ds);
    H5Fclose(f);
}

/* SR_CKPT_F64: doubles round-trip bit for bit (NaN and infinities too),
 * are stored as float64 datasets, are covered by the digest, and ranged
 * entries reject non-finite and out-of-range values even when the digest
 * was forged to match. */
static void test_state_f64(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    char path[1024], want[1400];
    snprintf(path, sizeof path, "%s/ckpt_f64.h5", sr_test_tmpdir());
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.dataset, sizeof info.dataset, "data.h5");
    double metrics[3] = {0.1857, 123.25, NAN}, mine[2] = {c.rank + 0.5, -INFINITY};
    sr_ckpt_state w[2] = {{"metrics", SR_CKPT_F64, metrics, 3, 0, 0, 0, 0},
                          {"per_rank/f64", SR_CKPT_F64, mine, 2, 1, 0, 0, 0}};
    CU_ASSERT_EQUAL_FATAL(sr_ckpt_save(&c, path, &info, NULL, 0, w, 2, NULL, &e), SR_OK);

    double m2[3], r2[2];
    memset(m2, 0, sizeof m2);
    memset(r2, 0, sizeof r2);
    sr_ckpt_state r[2] = {{"metrics", SR_CKPT_F64, m2, 3, 0, 0, 0, 0},
                          {"per_rank/f64", SR_CKPT_F64, r2, 2, 1, 0, 0, 0}};
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, r, 2, NULL, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(m2, metrics, sizeof m2), 0);
    CU_ASSERT_EQUAL(memcmp(r2, mine, sizeof r2), 0);
    CU_ASSERT_EQUAL(sr_ckpt_verify(&c, path, NULL, &e), SR_OK);

    /* Ranged: [0, 1] holds 0.1857 but not 123.25. */
    sr_ckpt_state one = {"metrics", SR_CKPT_F64, m2, 3, 0, 1, 0, 200};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, &one, 1, NULL, NULL, &e), SR_ERR_DATA);
    snprintf(want, sizeof want, "%s: /state/metrics: value nan is not finite", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    /* The wrong type is named (by the schema check). */
    int64_t i3[3];
    sr_ckpt_state as_int = {"metrics", SR_CKPT_I64, i3, 3, 0, 0, 0, 0};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, &as_int, 1, NULL, NULL, &e), SR_ERR_DATA);
    snprintf(want, sizeof want, "%s: /state/metrics: dtype float64, expected an integer type", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);

    /* Stored as float64; a changed value fails the digest. */
    MPI_Barrier(c.comm);
    double bad[3] = {0.5, 123.25, 2.0};
    if (c.rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t ds = H5Dopen2(f, "/state/metrics", H5P_DEFAULT), ft = H5Dget_type(ds);
        CU_ASSERT_EQUAL(H5Tget_class(ft), H5T_FLOAT);
        CU_ASSERT_EQUAL(H5Tget_size(ft), 8);
        H5Tclose(ft);
        H5Dclose(ds);
        H5Fclose(f);
        forge_f64(path, "/state/metrics", bad, 3, 0);
    }
    MPI_Barrier(c.comm);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, r, 1, NULL, NULL, &e), SR_ERR_DATA);
    snprintf(want, sizeof want, "%s: /state/metrics: fails its SHA-256 check (damaged file)", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    /* Forged with a matching digest: the range check still catches it. */
    if (c.rank == 0) forge_f64(path, "/state/metrics", bad, 3, 1);
    MPI_Barrier(c.comm);
    sr_ckpt_state unit = {"metrics", SR_CKPT_F64, m2, 3, 0, 1, 0, 1};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, &unit, 1, NULL, NULL, &e), SR_ERR_DATA);
    snprintf(want, sizeof want, "%s: /state/metrics: value 123.25 is outside 0 to 1", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_ckpt_state wide = {"metrics", SR_CKPT_F64, m2, 3, 0, 1, 0, 200};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, NULL, 0, &wide, 1, NULL, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(m2, bad, sizeof m2), 0);
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("checkpoint", NULL, NULL);
    CU_add_test(s, "roundtrip_across_layouts", test_roundtrip_across_layouts);
    CU_add_test(s, "state_f64", test_state_f64);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
