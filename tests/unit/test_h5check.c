/* test_h5check.c: schema checks of untrusted HDF5 files, one problem per
 * file, each with its exact one-line message: missing objects, wrong dtype
 * class and size, rank, shape, ids out of range past the first chunk,
 * external / soft links, external storage, virtual datasets, filters
 * outside the allow-list, non-HDF5 input; and malformed checkpoints through
 * sr_ckpt_read. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/h5check.h"

static char path_buf[1024];

static const char *tmp_path(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", sr_test_tmpdir(), name);
    return path_buf;
}

static hid_t new_file(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    return f;
}

/* n x cols dataset of type t, values i (converted). */
static void add_dataset(hid_t f, const char *name, hid_t t, int nd, hsize_t n, hsize_t cols, hid_t dcpl)
{
    hsize_t dims[2] = {n, cols};
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    size_t total = (size_t)(n * (nd == 2 ? cols : 1));
    int64_t *v = calloc(total + 1, sizeof *v);
    for (size_t i = 0; i < total; i++) v[i] = (int64_t)(i % 5);
    if (total) H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v);
    H5Dclose(d);
    H5Sclose(sp);
}

/* The spec every file below is checked against. */
static const sr_h5check_obj spec[] = {
    {"/f", 1, SR_H5_FLOAT, 4, 4, 2, {4, 2}, -1, NULL},
    {"/ids", 1, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, 5, "item id"},
    {"/opt", 0, SR_H5_INTEGER, 8, 8, 1, {3, -1}, -1, NULL},
};

static void good_objects(hid_t f, int skip_f, int skip_ids)
{
    if (!skip_f) add_dataset(f, "/f", H5T_IEEE_F32LE, 2, 4, 2, H5P_DEFAULT);
    if (!skip_ids) add_dataset(f, "/ids", H5T_STD_I32LE, 1, 70000, 0, H5P_DEFAULT);
}

/* Check path against spec; expect `want` (NULL: success). */
static void expect(const char *path, const char *want)
{
    sr_error e;
    sr_error_clear(&e);
    sr_status st = sr_h5check_path(path, spec, 3, &e);
    if (!want) {
        CU_ASSERT_EQUAL(st, SR_OK);
        if (st != SR_OK) fprintf(stderr, "unexpected: %s\n", e.msg);
        return;
    }
    CU_ASSERT_EQUAL(st, SR_ERR_DATA);
    char full[2048];
    snprintf(full, sizeof full, "%s: %s", path, want);
    CU_ASSERT_STRING_EQUAL(e.msg, full);
    if (strcmp(e.msg, full) != 0) fprintf(stderr, "got:  %s\nwant: %s\n", e.msg, full);
}

static void test_good_and_shapes(void)
{
    const char *p = tmp_path("good.h5");
    hid_t f = new_file(p);
    good_objects(f, 0, 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t ch = 3;
    H5Pset_chunk(dcpl, 1, &ch);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    add_dataset(f, "/opt", H5T_STD_I64LE, 1, 3, 0, dcpl); /* allowed filters */
    H5Pclose(dcpl);
    H5Fclose(f);
    expect(p, NULL);

    p = tmp_path("missing.h5");
    f = new_file(p);
    good_objects(f, 1, 0);
    H5Fclose(f);
    expect(p, "missing dataset /f");

    /* One object replaced by a wrong one: its exact message. */
    static const struct {
        const char *file, *obj;
        hid_t *type;
        int nd;
        hsize_t n, cols;
        const char *want;
    } cases[] = {
        {"dtype_class.h5", "/f", &H5T_STD_I32LE_g, 2, 4, 2, "/f: dtype int32, expected a floating-point type"},
        {"dtype_size.h5", "/f", &H5T_IEEE_F64LE_g, 2, 4, 2, "/f: dtype float64 (8 bytes), expected 4 to 4 bytes"},
        {"rank.h5", "/f", &H5T_IEEE_F32LE_g, 1, 8, 0, "/f: has 1 dimensions, expected 2-D"},
        {"shape.h5", "/f", &H5T_IEEE_F32LE_g, 2, 3, 2, "/f: shape 3x2, expected 4x2"},
        {"opt_shape.h5", "/opt", &H5T_STD_I64LE_g, 1, 4, 0, "/opt: shape [4], expected [3]"},
        {"ids_float.h5", "/ids", &H5T_IEEE_F32LE_g, 1, 10, 0, "/ids: dtype float32, expected an integer type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = tmp_path(cases[i].file);
        f = new_file(p);
        good_objects(f, strcmp(cases[i].obj, "/f") == 0, strcmp(cases[i].obj, "/ids") == 0);
        add_dataset(f, cases[i].obj, *cases[i].type, cases[i].nd, cases[i].n, cases[i].cols, H5P_DEFAULT);
        H5Fclose(f);
        expect(p, cases[i].want);
    }

    p = tmp_path("group.h5");
    f = new_file(p);
    good_objects(f, 1, 0);
    hid_t g = H5Gcreate2(f, "/f", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    expect(p, "/f: is not a dataset");
}

static void set_id(const char *path, hsize_t at, int64_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/ids", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t one = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_id_ranges(void)
{
    const char *p = tmp_path("ids.h5");
    hid_t f = new_file(p);
    good_objects(f, 0, 0);
    H5Fclose(f);
    /* Past the first chunk of 65536, then a negative one before it. */
    set_id(p, 65537, 5);
    expect(p, "/ids: item id 5 out of range [0, 5) at position 65537");
    set_id(p, 12, -1);
    expect(p, "/ids: item id -1 out of range [0, 5) at position 12");
    /* Collective form at this rank count: the same verdict. */
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_EQUAL(sr_h5check_run(&c, f, p, spec, 3, &e), SR_ERR_DATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "at position 12"));
    H5Fclose(f);
    sr_comm_destroy(&c);
}

static void test_outside_references(void)
{
    const char *p = tmp_path("extlink.h5");
    hid_t f = new_file(p);
    good_objects(f, 0, 0);
    H5Lcreate_external("/etc/passwd", "/x", f, "ext", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect(p, "/ext: is an external link to another file, not allowed");

    p = tmp_path("softlink.h5");
    f = new_file(p);
    good_objects(f, 0, 0);
    H5Lcreate_soft("/f", f, "soft", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect(p, "/soft: is a soft or user-defined link, not allowed");

    p = tmp_path("extstore.h5");
    f = new_file(p);
    good_objects(f, 0, 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_external(dcpl, "/etc/hostname", 0, 24);
    add_dataset(f, "/xs", H5T_STD_I64LE, 1, 3, 0, dcpl);
    H5Pclose(dcpl);
    H5Fclose(f);
    expect(p, "/xs: uses external storage (raw data in another file), not allowed");

    /* A virtual dataset mapping another file's data. */
    const char *src = "good.h5";
    p = tmp_path("vds.h5");
    f = new_file(p);
    good_objects(f, 0, 0);
    hsize_t n = 3;
    hid_t vsp = H5Screate_simple(1, &n, NULL), ssp = H5Screate_simple(1, &n, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_virtual(dcpl, vsp, src, "/opt", ssp);
    hid_t d = H5Dcreate2(f, "/vds", H5T_STD_I64LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(vsp);
    H5Sclose(ssp);
    H5Fclose(f);
    expect(p, "/vds: is a virtual dataset (data in other files), not allowed");

    p = tmp_path("filter.h5");
    f = new_file(p);
    good_objects(f, 0, 0);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t ch = 3;
    H5Pset_chunk(dcpl, 1, &ch);
    H5Pset_scaleoffset(dcpl, H5Z_SO_INT, H5Z_SO_INT_MINBITS_DEFAULT);
    add_dataset(f, "/opt", H5T_STD_I64LE, 1, 3, 0, dcpl);
    H5Pclose(dcpl);
    H5Fclose(f);
    expect(p, "/opt: uses filter 6, not allowed (allowed: deflate, shuffle, fletcher32)");

    p = tmp_path("text.h5");
    FILE *tf = fopen(p, "w");
    fputs("user item\n1 2\n", tf);
    fclose(tf);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_h5check_path(p, spec, 3, &e), SR_ERR_DATA);
    char want[1200];
    snprintf(want, sizeof want, "%s: cannot open as HDF5", p);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
}

/* Malformed checkpoints through the reader the trainer uses. */
static void test_bad_checkpoints(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    float tab[6 * 2], got[6 * 2];
    for (int i = 0; i < 12; i++) tab[i] = (float)i;
    sr_ckpt_table t = {"/model/x", tab, 6, 6, 2, NULL, 0};
    sr_ckpt_table r = {"/model/x", got, 6, 6, 2, NULL, 0};
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    struct {
        const char *name;
        int kind;
        const char *want;
    } cases[] = {
        {"ck_no_checksums.h5", 0, "missing dataset /checksums/model/x"},
        {"ck_float64.h5", 1, "/model/x: dtype float64 (8 bytes), expected 4 to 4 bytes"},
        {"ck_shape.h5", 2, "/model/x: shape 5x2, expected 6x2"},
        {"ck_extlink.h5", 3, "/evil: is an external link to another file, not allowed"},
        {"ck_version.h5", 4, "checkpoint format_version 9 is not supported (this softrec reads 1 to 2)"},
        {"ck_format.h5", 5, "not a softrec checkpoint (attribute softrec_format)"},
        {"ck_digest.h5", 6, "/model/x: block 0 (rows 0-5) fails its SHA-256 check (damaged file)"},
        {"ck_digest_shape.h5", 7, "/checksums/model/x: shape 2x32, expected 1x32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = tmp_path(cases[i].name);
        char path[1024];
        snprintf(path, sizeof path, "%s", p);
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_ckpt_save(&c, path, &info, &t, 1, NULL, 0, NULL, &e), SR_OK);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        switch (cases[i].kind) {
        case 0: H5Ldelete(f, "/checksums/model/x", H5P_DEFAULT); break;
        case 1:
            H5Ldelete(f, "/model/x", H5P_DEFAULT);
            add_dataset(f, "/model/x", H5T_IEEE_F64LE, 2, 6, 2, H5P_DEFAULT);
            break;
        case 2:
            H5Ldelete(f, "/model/x", H5P_DEFAULT);
            add_dataset(f, "/model/x", H5T_IEEE_F32LE, 2, 5, 2, H5P_DEFAULT);
            break;
        case 3: H5Lcreate_external("/etc/passwd", "/x", f, "evil", H5P_DEFAULT, H5P_DEFAULT); break;
        case 4: {
            hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
            int64_t v = 9;
            H5Awrite(a, H5T_NATIVE_INT64, &v);
            H5Aclose(a);
        } break;
        case 5: H5Adelete(f, "softrec_format"); break;
        case 6: {
            hid_t d = H5Dopen2(f, "/model/x", H5P_DEFAULT);
            float v[12];
            for (int k = 0; k < 12; k++) v[k] = (float)k;
            v[7] = 7.5f;
            H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            H5Dclose(d);
        } break;
        case 7:
            H5Ldelete(f, "/checksums/model/x", H5P_DEFAULT);
            add_dataset(f, "/checksums/model/x", H5T_STD_U8LE, 2, 2, 32, H5P_DEFAULT);
            break;
        }
        H5Fclose(f);
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_read(&c, path, &r, 1, NULL, &e), SR_ERR_DATA);
        char want[2048];
        snprintf(want, sizeof want, "%s: %s", path, cases[i].want);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        if (strcmp(e.msg, want) != 0) fprintf(stderr, "got:  %s\nwant: %s\n", e.msg, want);
    }
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("h5check", NULL, NULL);
    CU_add_test(s, "good_and_shapes", test_good_and_shapes);
    CU_add_test(s, "id_ranges", test_id_ranges);
    CU_add_test(s, "outside_references", test_outside_references);
    CU_add_test(s, "bad_checkpoints", test_bad_checkpoints);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
