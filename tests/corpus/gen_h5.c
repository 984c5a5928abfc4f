/* gen_h5.c: writes the HDF5 half of the bad-input corpus into a directory.
 *
 * usage: sr_io_corpus_gen OUTDIR
 *
 * Each file is a tiny dataset (5 users, 4 items) written with raw HDF5 calls
 * and broken in exactly one way, so the reader's message for that one
 * problem can be checked (tests/corpus/cases.tsv). good.h5 is the unbroken
 * original; truncated.h5 is a writer-made file cut in half.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset.h"

enum mut {
    M_NONE, M_MISSING_DATASET, M_WRONG_DTYPE, M_WRONG_SHAPE, M_NONMONOTONE, M_LAST_MISMATCH, M_ITEM_RANGE,
    M_MISSING_ATTR, M_BAD_VERSION, M_NO_FORMAT, M_EXTERNAL_LINK, M_EXTERNAL_STORAGE, M_TWO_D, M_TIME_PARTIAL,
    M_POP_SUM, M_INDPTR0, M_MISSING_GROUP, M_ATTR_TYPE
};

static const char *const mut_file[] = {
    "good.h5", "missing_dataset.h5", "wrong_dtype.h5", "wrong_shape.h5", "nonmonotone.h5", "last_mismatch.h5",
    "item_range.h5", "missing_attr.h5", "bad_version.h5", "no_format.h5", "external_link.h5",
    "external_storage.h5", "two_d.h5", "time_partial.h5", "pop_sum.h5", "indptr0.h5", "missing_group.h5",
    "attr_type.h5"};

#define NU 5
#define NI 4

static void die(const char *what)
{
    fprintf(stderr, "gen_h5: %s failed\n", what);
    exit(1);
}

static void attr_str(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, v) < 0) die(name);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void attr_i64(hid_t f, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t x = v;
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &x) < 0) die(name);
    H5Aclose(a);
    H5Sclose(sp);
}

/* 1-D (or 2-D when two_d) dataset of n int64 values stored as ftype. */
static void dset(hid_t loc, const char *name, hid_t ftype, const int64_t *v, hsize_t n, int two_d, hid_t dcpl)
{
    hsize_t dims[2] = {two_d ? n / 2 : n, 2};
    hid_t sp = H5Screate_simple(two_d ? 2 : 1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) die(name);
    if (n && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die(name);
    H5Dclose(d);
    H5Sclose(sp);
}

static void write_case(const char *dir, enum mut m)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, mut_file[m]);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) die(path);
    if (m != M_NO_FORMAT) attr_str(f, "softrec_format", SR_DATASET_FORMAT);
    attr_i64(f, "format_version", m == M_BAD_VERSION ? 7 : 1);
    attr_i64(f, "num_users", NU);
    if (m == M_ATTR_TYPE) attr_str(f, "num_items", "four");
    else if (m != M_MISSING_ATTR) attr_i64(f, "num_items", NI);
    attr_str(f, "name", "corpus");
    /* train: users 0,1,3,4 ; valid: 0,4 ; test: 0,2,4 */
    int64_t tr_ip[NU + 1] = {0, 2, 3, 3, 5, 6}, tr_it[7] = {0, 1, 2, 3, 0, 1, 2};
    int64_t va_ip[NU + 1] = {0, 1, 1, 1, 1, 2}, va_it[2] = {2, 3};
    int64_t te_ip[NU + 1] = {0, 1, 1, 2, 2, 3}, te_it[3] = {3, 0, 2};
    int64_t pop[NI] = {2, 2, 1, 1}, tm[7] = {1, 2, 3, 4, 5, 6, 7};
    hsize_t tr_n = 6;
    if (m == M_NONMONOTONE) tr_ip[3] = 1; /* 3 > 1 at user 2 */
    if (m == M_INDPTR0) tr_ip[0] = 1;
    if (m == M_LAST_MISMATCH) tr_n = 7;
    if (m == M_ITEM_RANGE) tr_it[4] = 9;
    if (m == M_POP_SUM) pop[0] = 5;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const char *splits[3] = {"train", "valid", "test"};
    for (int s = 0; s < 3; s++) {
        if (m == M_MISSING_GROUP && s == 2) break;
        hid_t g = H5Gcreate2(f, splits[s], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const int64_t *ip = s == 0 ? tr_ip : s == 1 ? va_ip : te_ip;
        const int64_t *it = s == 0 ? tr_it : s == 1 ? va_it : te_it;
        hsize_t n = s == 0 ? tr_n : s == 1 ? 2 : 3;
        if (!(m == M_MISSING_DATASET && s == 2))
            dset(g, "indptr", H5T_STD_I64LE, ip, m == M_WRONG_SHAPE && s == 0 ? NU : NU + 1, 0, H5P_DEFAULT);
        if (m == M_WRONG_DTYPE && s == 1) {
            dset(g, "items", H5T_IEEE_F32LE, it, n, 0, H5P_DEFAULT);
        } else if (m == M_EXTERNAL_LINK && s == 0) {
            char ext[2048];
            snprintf(ext, sizeof ext, "%s/external_target.h5", dir);
            hid_t ef = H5Fcreate(ext, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
            dset(ef, "items", H5T_STD_I32LE, it, n, 0, H5P_DEFAULT);
            H5Fclose(ef);
            if (H5Lcreate_external("external_target.h5", "/items", g, "items", H5P_DEFAULT, H5P_DEFAULT) < 0)
                die("external link");
        } else if (m == M_EXTERNAL_STORAGE && s == 0) {
            hid_t ep = H5Pcreate(H5P_DATASET_CREATE);
            if (H5Pset_external(ep, "external_storage.raw", 0, n * 4) < 0) die("H5Pset_external");
            char cwd[2048];
            /* external raw files are relative to the working directory */
            if (!getcwd(cwd, sizeof cwd) || chdir(dir) != 0) die("chdir");
            dset(g, "items", H5T_STD_I32LE, it, n, 0, ep);
            if (chdir(cwd) != 0) die("chdir back");
            H5Pclose(ep);
        } else {
            dset(g, "items", H5T_STD_I32LE, it, n, m == M_TWO_D && s == 0, H5P_DEFAULT);
        }
        if (m == M_TIME_PARTIAL && s == 0) dset(g, "time", H5T_STD_I64LE, tm, n, 0, H5P_DEFAULT);
        H5Gclose(g);
    }
    dset(f, "item_popularity", H5T_STD_I64LE, pop, NI, 0, H5P_DEFAULT);
    H5Pclose(dcpl);
    if (H5Fclose(f) < 0) die("close");
}

/* A larger writer-made file, then cut: metadata at the end goes missing. */
static void write_truncated(const char *dir)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/truncated.h5", dir);
    sr_error err;
    sr_error_clear(&err);
    sr_dataset_writer *w = NULL;
    sr_dataset_attrs attrs = {.name = "truncated", .source = "synthetic", .source_sha256 = "",
                              .split_protocol = "given", .split_seed = -1, .has_time = 0};
    enum { U = 2000, PER = 20 };
    if (sr_dataset_writer_create(&w, path, U, 100, &attrs, &err) != SR_OK) die(err.msg);
    static int64_t ip[U + 1], it[U * PER], ip0[U + 1];
    for (int u = 0; u <= U; u++) {
        ip[u] = (int64_t)u * PER;
        ip0[u] = 0;
    }
    for (int k = 0; k < U * PER; k++) it[k] = k % 100;
    const int64_t *const ips[3] = {ip, ip0, ip0}, *const its[3] = {it, it, it};
    if (sr_dataset_writer_append(w, U, ips, its, NULL, &err) != SR_OK || sr_dataset_writer_commit(w, &err) != SR_OK)
        die(err.msg);
    sr_dataset_writer_abort(&w);
    FILE *f = fopen(path, "rb");
    if (!f) die("reopen");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (truncate(path, size / 2) != 0) die("truncate");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    for (int m = M_NONE; m <= M_ATTR_TYPE; m++) write_case(argv[1], (enum mut)m);
    write_truncated(argv[1]);
    char path[2048];
    snprintf(path, sizeof path, "%s/not_hdf5.h5", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs("user item\n1 2\n", f) < 0 || fclose(f) != 0) die("not_hdf5");
    snprintf(path, sizeof path, "%s/empty.h5", argv[1]);
    f = fopen(path, "w");
    if (!f || fclose(f) != 0) die("empty");
    return 0;
}
