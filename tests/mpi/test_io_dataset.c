/* test_io_dataset.c: dataset writer -> parallel reader round trip at 1-4
 * ranks, writer atomicity (abort, failed commit, no clobbering), agreed
 * reader errors, and data-info figures (content digest included) of a tiny known dataset. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/dataset.h"
#include "io/info.h"
#include "io/sha256.h"

#define NU 37
#define NI 23

/* The truth, computable on every rank: row length and items of user u in
 * split s. Users 5, 6, 20 and the last are empty in train; valid is empty. */
static int64_t row_len(int s, int64_t u)
{
    if (s == SR_SPLIT_VALID) return 0;
    if (s == SR_SPLIT_TRAIN) return (u == 5 || u == 6 || u == 20 || u == NU - 1) ? 0 : (u * 7) % 11 + 1;
    return u % 3;
}
static int64_t item_of(int s, int64_t u, int64_t k) { return (u * 13 + k * (s + 5)) % NI; }
static int64_t time_of(int s, int64_t u, int64_t k) { return 1000 * u + 10 * k + s; }

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void path_in_tmp(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", sr_test_tmpdir(), name);
}

/* Write the truth in uneven blocks (10, 0, 17, rest). Rank 0 only. */
static sr_status write_truth(const char *path, sr_error *err)
{
    sr_dataset_writer *w = NULL;
    sr_dataset_attrs a = {.name = "roundtrip", .source = "synthetic", .source_sha256 = "",
                          .split_protocol = "test", .split_seed = 7, .has_time = 1};
    SR_TRY(sr_dataset_writer_create(&w, path, NU, NI, &a, err));
    int64_t blocks[] = {10, 0, 17, NU - 27};
    int64_t u0 = 0;
    sr_status st = SR_OK;
    for (int b = 0; b < 4 && st == SR_OK; b++) {
        int64_t n = blocks[b];
        int64_t *ip[3], *it[3], *tm[3];
        for (int s = 0; s < 3; s++) {
            ip[s] = calloc((size_t)n + 1, sizeof(int64_t));
            it[s] = calloc(16 * (size_t)n + 1, sizeof(int64_t));
            tm[s] = calloc(16 * (size_t)n + 1, sizeof(int64_t));
            for (int64_t u = 0; u < n; u++) {
                int64_t len = row_len(s, u0 + u), base = ip[s][u];
                for (int64_t k = 0; k < len; k++) {
                    it[s][base + k] = item_of(s, u0 + u, k);
                    tm[s][base + k] = time_of(s, u0 + u, k);
                }
                ip[s][u + 1] = base + len;
            }
        }
        st = sr_dataset_writer_append(w, n, (const int64_t *const *)ip, (const int64_t *const *)it,
                                      (const int64_t *const *)tm, err);
        for (int s = 0; s < 3; s++) {
            free(ip[s]);
            free(it[s]);
            free(tm[s]);
        }
        u0 += n;
    }
    int64_t uids[NU], iids[NI];
    for (int64_t u = 0; u < NU; u++) uids[u] = 100 + 2 * u;
    for (int64_t i = 0; i < NI; i++) iids[i] = 5000 + i;
    if (st == SR_OK) st = sr_dataset_writer_set_id_maps(w, uids, iids, err);
    if (st == SR_OK) st = sr_dataset_writer_commit(w, err);
    sr_dataset_writer_abort(&w);
    return st;
}

static void test_round_trip(void)
{
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &err) == SR_OK);
    char path[1024];
    path_in_tmp(path, sizeof path, "roundtrip.h5");
    if (c.rank == 0) {
        unlink(path);
        write_truth(path, &err);
    }
    CU_ASSERT_FATAL(sr_comm_agree(&c, &err) == SR_OK);
    sr_dataset *ds = NULL;
    CU_ASSERT_FATAL(sr_dataset_open(&ds, &c, path, &err) == SR_OK);
    const sr_dataset_meta *m = sr_dataset_meta_get(ds);
    CU_ASSERT_EQUAL(m->num_users, NU);
    CU_ASSERT_EQUAL(m->num_items, NI);
    CU_ASSERT_EQUAL(m->format_version, 1);
    CU_ASSERT_TRUE(m->has_time);
    CU_ASSERT_TRUE(m->has_id_maps);
    CU_ASSERT_EQUAL(m->split_seed, 7);
    CU_ASSERT_STRING_EQUAL(m->name, "roundtrip");
    CU_ASSERT_STRING_EQUAL(m->split_protocol, "test");
    CU_ASSERT_EQUAL(m->nnz[SR_SPLIT_VALID], 0);
    int64_t want_nnz[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++)
        for (int64_t u = 0; u < NU; u++) want_nnz[s] += row_len(s, u);
    for (int s = 0; s < 3; s++) CU_ASSERT_EQUAL(m->nnz[s], want_nnz[s]);

    int64_t u0, u1;
    sr_dataset_user_range(NU, c.size, c.rank, &u0, &u1);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    int64_t mine[3] = {0, 0, 0}, users[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++) {
        sr_csr csr;
        CU_ASSERT_FATAL(sr_dataset_read_split(ds, (sr_split)s, u0, u1, &csr, &mem, &err) == SR_OK);
        CU_ASSERT_EQUAL(csr.u0, u0);
        CU_ASSERT_EQUAL(csr.u1, u1);
        CU_ASSERT_EQUAL(csr.indptr[0], 0);
        int bad = 0;
        for (int64_t u = u0; u < u1; u++) {
            int64_t b = csr.indptr[u - u0], len = csr.indptr[u - u0 + 1] - b;
            if (len != row_len(s, u)) bad++;
            for (int64_t k = 0; k < len && k < row_len(s, u); k++) {
                if (csr.items[b + k] != item_of(s, u, k)) bad++;
                if (csr.time[b + k] != time_of(s, u, k)) bad++;
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        mine[s] = csr.nnz;
        users[s] = u1 - u0;
        sr_csr_free(&csr, &mem);
    }
    /* The union of every rank's rows is everything that was written. */
    int64_t tot[3], totu[3];
    MPI_Allreduce(mine, tot, 3, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(users, totu, 3, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    for (int s = 0; s < 3; s++) {
        CU_ASSERT_EQUAL(tot[s], want_nnz[s]);
        CU_ASSERT_EQUAL(totu[s], NU);
    }
    CU_ASSERT_EQUAL(mem.current, 0);

    /* Ranks may ask for different ranges, including empty ones. */
    sr_csr odd;
    int64_t a = c.rank % 2 ? 3 : 0, b = c.rank % 2 ? 3 : NU;
    CU_ASSERT_FATAL(sr_dataset_read_split(ds, SR_SPLIT_TEST, a, b, &odd, NULL, &err) == SR_OK);
    int64_t want = 0;
    for (int64_t u = a; u < b; u++) want += row_len(SR_SPLIT_TEST, u);
    CU_ASSERT_EQUAL(odd.nnz, want);
    sr_csr_free(&odd, NULL);

    /* Popularity of this rank's item block equals the train counts. */
    int64_t i0, i1, pop[NI], truth[NI] = {0};
    sr_dataset_user_range(NI, c.size, c.rank, &i0, &i1);
    for (int64_t u = 0; u < NU; u++)
        for (int64_t k = 0; k < row_len(SR_SPLIT_TRAIN, u); k++) truth[item_of(SR_SPLIT_TRAIN, u, k)]++;
    CU_ASSERT_FATAL(sr_dataset_read_popularity(ds, i0, i1, pop, &err) == SR_OK);
    for (int64_t i = i0; i < i1; i++) CU_ASSERT_EQUAL(pop[i - i0], truth[i]);
    int64_t ids[NU];
    CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 0, u0, u1, ids, &err) == SR_OK);
    for (int64_t u = u0; u < u1; u++) CU_ASSERT_EQUAL(ids[u - u0], 100 + 2 * u);
    CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 1, 0, NI, ids, &err) == SR_OK);
    CU_ASSERT_EQUAL(ids[NI - 1], 5000 + NI - 1);
    sr_dataset_close(&ds);
    CU_ASSERT_PTR_NULL(ds);
    sr_comm_destroy(&c);
}

static void test_user_range(void)
{
    for (int64_t n = 0; n < 40; n++)
        for (int p = 1; p <= 7; p++) {
            int64_t prev = 0, lo = n, hi = 0;
            for (int r = 0; r < p; r++) {
                int64_t u0, u1;
                sr_dataset_user_range(n, p, r, &u0, &u1);
                CU_ASSERT_EQUAL(u0, prev);
                CU_ASSERT(u1 >= u0);
                if (u1 - u0 < lo) lo = u1 - u0;
                if (u1 - u0 > hi) hi = u1 - u0;
                prev = u1;
            }
            CU_ASSERT_EQUAL(prev, n);
            CU_ASSERT(hi - lo <= 1);
        }
}

/* A failed or aborted write leaves neither the output nor a temp file, and
 * never touches an existing file at the output path. */
static void test_writer_atomic(void)
{
    if (sr_test_rank() != 0) return; /* the writer is one process */
    char path[1024], tmp[1200];
    path_in_tmp(path, sizeof path, "atomic.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(path);
    sr_error err;
    sr_error_clear(&err);
    sr_dataset_writer *w = NULL;
    sr_dataset_attrs a = {.name = "x"};
    CU_ASSERT_FATAL(sr_dataset_writer_create(&w, path, 3, 2, &a, &err) == SR_OK);
    CU_ASSERT_TRUE(file_exists(tmp));
    CU_ASSERT_FALSE(file_exists(path));
    int64_t ip[3] = {0, 1, 2}, it[2] = {0, 1}, z[3] = {0, 0, 0};
    const int64_t *const ips[3] = {ip, z, z}, *const its[3] = {it, it, it};
    CU_ASSERT_EQUAL(sr_dataset_writer_append(w, 2, ips, its, NULL, &err), SR_OK);
    /* one user missing: commit refuses */
    CU_ASSERT_NOT_EQUAL(sr_dataset_writer_commit(w, &err), SR_OK);
    sr_dataset_writer_abort(&w);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_FALSE(file_exists(tmp));
    CU_ASSERT_FALSE(file_exists(path));

    /* a good file exists; a second write that fails leaves it intact */
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("precious", f);
    fclose(f);
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_dataset_writer_create(&w, path, 3, 2, &a, &err) == SR_OK);
    int64_t bad[2] = {0, 7}; /* item 7 out of range */
    const int64_t *const bits[3] = {bad, it, it};
    CU_ASSERT_NOT_EQUAL(sr_dataset_writer_append(w, 2, ips, bits, NULL, &err), SR_OK);
    CU_ASSERT(strstr(err.msg, "out of range") != NULL);
    sr_dataset_writer_abort(&w);
    CU_ASSERT_FALSE(file_exists(tmp));
    f = fopen(path, "r");
    char buf[16] = {0};
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "precious");
    /* non-monotone indptr is refused before anything is written */
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_dataset_writer_create(&w, path, 3, 2, &a, &err) == SR_OK);
    int64_t nm[3] = {0, 2, 1};
    const int64_t *const nips[3] = {nm, z, z};
    CU_ASSERT_NOT_EQUAL(sr_dataset_writer_append(w, 2, nips, its, NULL, &err), SR_OK);
    CU_ASSERT(strstr(err.msg, "not monotone") != NULL);
    sr_dataset_writer_abort(&w);
    CU_ASSERT_FALSE(file_exists(tmp));
    unlink(path);
}

/* Corrupt one item id of the last user's test row: every rank must return
 * the same error (the one rank that sees it tells the others). */
static void test_reader_error_agreed(void)
{
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &err) == SR_OK);
    char path[1024];
    path_in_tmp(path, sizeof path, "corrupt.h5");
    if (c.rank == 0) {
        unlink(path);
        if (write_truth(path, &err) == SR_OK) {
            H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
            hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
            hid_t d = H5Dopen2(f, "/test/items", H5P_DEFAULT);
            hid_t fs = H5Dget_space(d);
            hsize_t n = 0, one = 1;
            H5Sget_simple_extent_dims(fs, &n, NULL);
            hsize_t last = n - 1;
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, &last, NULL, &one, NULL);
            hid_t ms = H5Screate_simple(1, &one, NULL);
            int64_t v = 999;
            if (H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v) < 0)
                sr_error_set(&err, SR_ERR_INTERNAL, __FILE__, __LINE__, "corrupting failed");
            H5Sclose(ms);
            H5Sclose(fs);
            H5Dclose(d);
            H5Fclose(f);
        }
    }
    CU_ASSERT_FATAL(sr_comm_agree(&c, &err) == SR_OK);
    sr_dataset *ds = NULL;
    CU_ASSERT_FATAL(sr_dataset_open(&ds, &c, path, &err) == SR_OK); /* cheap checks pass */
    int64_t u0, u1;
    sr_dataset_user_range(NU, c.size, c.rank, &u0, &u1);
    sr_csr csr;
    CU_ASSERT_EQUAL(sr_dataset_read_split(ds, SR_SPLIT_TEST, u0, u1, &csr, NULL, &err), SR_ERR_DATA);
    CU_ASSERT(strstr(err.msg, "/test/items: item id 999 out of range [0, 23) at position") != NULL);
    CU_ASSERT_PTR_NULL(csr.items);
    /* same text everywhere */
    char mine[SR_ERROR_MSG_MAX], root[SR_ERROR_MSG_MAX];
    snprintf(mine, sizeof mine, "%s", err.msg);
    memcpy(root, mine, sizeof root);
    MPI_Bcast(root, (int)sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    CU_ASSERT_STRING_EQUAL(mine, root);
    sr_dataset_close(&ds);
    sr_comm_destroy(&c);
}

/* info on a hand-checked dataset: 3 users, 4 items;
 * train rows {0,1}, {0}, {0,2}: popularity 3,1,1,0. */
/* 3 users, 4 items, no time: the data info fixture. */
static void write_tiny(const char *path, sr_error *err)
{
    unlink(path);
    sr_dataset_writer *w = NULL;
    sr_dataset_attrs a = {.name = "tiny", .source = "hand", .source_sha256 = "abc",
                          .split_protocol = "given", .split_seed = -1};
    int64_t tip[4] = {0, 2, 3, 5}, tit[5] = {0, 1, 0, 0, 2};
    int64_t vip[4] = {0, 0, 1, 1}, vit[1] = {3};
    int64_t sip[4] = {0, 1, 1, 2}, sit[2] = {3, 1};
    const int64_t *const ip[3] = {tip, vip, sip}, *const it[3] = {tit, vit, sit};
    if (sr_dataset_writer_create(&w, path, 3, 4, &a, err) == SR_OK &&
        sr_dataset_writer_append(w, 3, ip, it, NULL, err) == SR_OK)
        sr_dataset_writer_commit(w, err);
    sr_dataset_writer_abort(&w);
}

static void test_info_values(void)
{
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &err) == SR_OK);
    char path[1024];
    path_in_tmp(path, sizeof path, "info.h5");
    if (c.rank == 0) write_tiny(path, &err);
    CU_ASSERT_FATAL(sr_comm_agree(&c, &err) == SR_OK);
    sr_data_info in;
    CU_ASSERT_FATAL(sr_data_info_compute(&c, path, &in, &err) == SR_OK);
    CU_ASSERT_EQUAL(in.meta.num_users, 3);
    CU_ASSERT_EQUAL(in.meta.num_items, 4);
    CU_ASSERT_EQUAL(in.total, 8);
    SR_ASSERT_CLOSE(in.density, 8.0 / 12.0, 1e-12);
    CU_ASSERT_EQUAL(in.users_with[0], 3);
    CU_ASSERT_EQUAL(in.users_with[1], 1);
    CU_ASSERT_EQUAL(in.users_with[2], 2);
    CU_ASSERT_EQUAL(in.row_min[0], 1);
    CU_ASSERT_EQUAL(in.row_max[0], 2);
    CU_ASSERT_EQUAL(in.row_min[1], 0);
    CU_ASSERT_FALSE(in.meta.has_time);
    CU_ASSERT_FALSE(in.meta.has_id_maps);
    if (c.rank == 0) {
        /* sorted 0,1,1,3: gini = 2*(0+2+3+12)/(4*5) - 5/4 = 0.45 */
        SR_ASSERT_CLOSE(in.gini, 0.45, 1e-12);
        CU_ASSERT_EQUAL(in.top1_items, 1);
        SR_ASSERT_CLOSE(in.top1_share, 0.6, 1e-12);
        CU_ASSERT_EQUAL(in.pop_max, 3);
        SR_ASSERT_CLOSE(in.pop_median, 1.0, 1e-12);
        CU_ASSERT_EQUAL(in.cold_items, 1);
        json_t *j = sr_data_info_json(&in);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "interactions"), "test")), 2);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(j, "provenance"), "source_sha256")),
                               "abc");
        SR_ASSERT_CLOSE(json_real_value(json_object_get(json_object_get(j, "popularity"), "gini")), 0.45, 1e-12);
        json_decref(j);
    }
    sr_comm_destroy(&c);
}

/* The content digest (dataset.h): the writer's attribute equals the
 * definition computed from the truth (values as int64, whatever the blocks
 * appended), and a file without the attribute gets the same digest at open
 * (content_computed), on every rank. */
static void expected_content(char out[65])
{
    char part[SR_SPLIT_COUNT][3][65];
    for (int s = 0; s < 3; s++) {
        sr_sha256 h[3];
        for (int a = 0; a < 3; a++) sr_sha256_init(&h[a]);
        int64_t at = 0;
        sr_sha256_update(&h[0], &at, sizeof at);
        for (int64_t u = 0; u < NU; u++) {
            for (int64_t k = 0; k < row_len(s, u); k++) {
                int64_t it = item_of(s, u, k), tm = time_of(s, u, k);
                sr_sha256_update(&h[1], &it, sizeof it);
                sr_sha256_update(&h[2], &tm, sizeof tm);
            }
            at += row_len(s, u);
            sr_sha256_update(&h[0], &at, sizeof at);
        }
        for (int a = 0; a < 3; a++) sr_sha256_hex(&h[a], part[s][a]);
    }
    sr_dataset_content_hex(NU, NI, 1, (const char(*)[3][65])part, out);
}

static void test_content_digest(void)
{
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &err) == SR_OK);
    char path[1024], want[65];
    path_in_tmp(path, sizeof path, "content.h5");
    expected_content(want);
    if (c.rank == 0) {
        unlink(path);
        write_truth(path, &err);
    }
    CU_ASSERT_FATAL(sr_comm_agree(&c, &err) == SR_OK);
    for (int old = 0; old < 2; old++) {
        if (old && c.rank == 0) { /* as written before the attribute existed */
            hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
            CU_ASSERT(f >= 0 && H5Adelete(f, "content_sha256") >= 0);
            H5Fclose(f);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        sr_dataset *ds = NULL;
        CU_ASSERT_FATAL(sr_dataset_open(&ds, &c, path, &err) == SR_OK);
        const sr_dataset_meta *m = sr_dataset_meta_get(ds);
        CU_ASSERT_STRING_EQUAL(m->content_sha256, want);
        CU_ASSERT_EQUAL(m->content_computed, old);
        sr_dataset_close(&ds);
    }
    sr_comm_destroy(&c);
}

/* data info prints content_sha256 (the run fingerprint's data digest) as
 * the file stores it, in the text and the JSON; a file without the
 * attribute says so and shows the digest computed at open, the same one. */
static void test_info_content(void)
{
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &err) == SR_OK);
    char path[1024], stored[80] = "", line[160], *text = NULL;
    size_t len = 0;
    path_in_tmp(path, sizeof path, "info_content.h5");
    if (c.rank == 0) write_tiny(path, &err);
    CU_ASSERT_FATAL(sr_comm_agree(&c, &err) == SR_OK);
    for (int old = 0; old < 2; old++) {
        if (c.rank == 0) {
            hid_t f = H5Fopen(path, old ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
            if (!old) { /* the attribute as any HDF5 reader sees it (fixed-length string) */
                hid_t a = H5Aopen(f, "content_sha256", H5P_DEFAULT), t = H5Aget_type(a);
                CU_ASSERT(H5Tget_size(t) < sizeof stored && H5Aread(a, t, stored) >= 0);
                H5Tclose(t), H5Aclose(a);
                CU_ASSERT_EQUAL(strlen(stored), 64);
            } else {
                CU_ASSERT(H5Adelete(f, "content_sha256") >= 0);
            }
            H5Fclose(f);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        sr_data_info in;
        CU_ASSERT_FATAL(sr_data_info_compute(&c, path, &in, &err) == SR_OK);
        if (c.rank != 0) continue;
        FILE *out = open_memstream(&text, &len);
        sr_data_info_print(&in, out);
        fclose(out);
        snprintf(line, sizeof line, old ? "  content sha256 absent (computed: %s)\n" : "  content sha256 %s\n", stored);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
        free(text);
        json_t *j = sr_data_info_json(&in), *prov = json_object_get(j, "provenance");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(prov, "content_sha256")), stored);
        CU_ASSERT(json_is_true(json_object_get(prov, "content_sha256_computed")) == old);
        json_decref(j);
    }
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("io_dataset", NULL, NULL);
    CU_add_test(s, "user_range", test_user_range);
    CU_add_test(s, "round_trip", test_round_trip);
    CU_add_test(s, "writer_atomic", test_writer_atomic);
    CU_add_test(s, "reader_error_agreed", test_reader_error_agreed);
    CU_add_test(s, "info_values", test_info_values);
    CU_add_test(s, "info_content", test_info_content);
    CU_add_test(s, "content_digest", test_content_digest);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
