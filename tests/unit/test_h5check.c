/* test_h5check.c: schema checks of untrusted HDF5 files, one problem per
 * file, each with its exact one-line message: missing objects, wrong dtype
 * class and size, rank, shape, ids out of range past the first chunk,
 * external / soft links, external storage, virtual datasets, filters
 * outside the allow-list, non-HDF5 input, truncated files; and malformed
 * checkpoints through sr_ckpt_load (tables, optimiser tables, digests,
 * state entries, links and storage), serially and at 2 and 3 ranks. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/h5check.h"
#include "io/sha256.h"

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

/* A dataset over an arbitrary dataspace, no data written. */
static void add_raw(hid_t f, const char *name, hid_t t, hid_t sp, hid_t dcpl)
{
    hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

/* Further malformed datasets, one problem each (kind), built from the good
 * objects with one replaced or added. */
static void build_more(hid_t f, int kind)
{
    int skip_f = kind <= 7 || kind == 11 || kind == 12, skip_ids = (kind >= 8 && kind <= 10) || kind == 17;
    good_objects(f, skip_f, skip_ids);
    hsize_t d3[3] = {4, 2, 1};
    hid_t t, dcpl;
    switch (kind) {
    case 0: /* string */
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        add_dataset(f, "/f", t, 2, 4, 2, H5P_DEFAULT);
        H5Tclose(t);
        break;
    case 1: /* compound of one float */
        t = H5Tcreate(H5T_COMPOUND, 4);
        H5Tinsert(t, "x", 0, H5T_IEEE_F32LE);
        add_dataset(f, "/f", t, 2, 4, 2, H5P_DEFAULT);
        H5Tclose(t);
        break;
    case 2: add_raw(f, "/f", H5T_IEEE_F32LE, H5Screate(H5S_SCALAR), H5P_DEFAULT); break;
    case 3: add_raw(f, "/f", H5T_IEEE_F32LE, H5Screate(H5S_NULL), H5P_DEFAULT); break;
    case 4: add_raw(f, "/f", H5T_IEEE_F32LE, H5Screate_simple(3, d3, NULL), H5P_DEFAULT); break;
    case 5: add_dataset(f, "/f", H5T_IEEE_F32LE, 2, 4, 3, H5P_DEFAULT); break;
    case 6: /* a named datatype where the dataset should be */
        t = H5Tcopy(H5T_IEEE_F32LE);
        H5Tcommit2(f, "/f", t, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Tclose(t);
        break;
    case 7: H5Lcreate_soft("/nowhere", f, "/f", H5P_DEFAULT, H5P_DEFAULT); break;
    case 8: { /* enum over int32 */
        t = H5Tenum_create(H5T_STD_I32LE);
        int v = 0;
        H5Tenum_insert(t, "zero", &v);
        add_raw(f, "/ids", t, H5Screate_simple(1, d3, NULL), H5P_DEFAULT);
        H5Tclose(t);
    } break;
    case 9: add_dataset(f, "/ids", H5T_STD_I32LE, 2, 10, 2, H5P_DEFAULT); break;
    case 10: add_dataset(f, "/ids", H5T_STD_I8LE, 1, 10, 0, H5P_DEFAULT); break;
    case 11: /* a group (holding the real data) where /f should be */
        H5Gclose(H5Gcreate2(f, "/f", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        add_dataset(f, "/f/data", H5T_IEEE_F32LE, 2, 4, 2, H5P_DEFAULT);
        break;
    case 12: add_dataset(f, "/f", H5T_IEEE_F64BE, 2, 4, 2, H5P_DEFAULT); break;
    case 13: add_dataset(f, "/opt", H5T_STD_I64LE, 2, 3, 1, H5P_DEFAULT); break;
    case 14: add_dataset(f, "/opt", H5T_STD_I32LE, 1, 3, 0, H5P_DEFAULT); break;
    case 15: add_dataset(f, "/opt", H5T_IEEE_F64LE, 1, 3, 0, H5P_DEFAULT); break;
    case 16: { /* n-bit filter (a built-in, but not allowed) */
        hsize_t ch = 3;
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &ch);
        H5Pset_nbit(dcpl);
        add_dataset(f, "/opt", H5T_STD_I64LE, 1, 3, 0, dcpl);
        H5Pclose(dcpl);
    } break;
    case 17: break; /* /ids missing */
    case 18:
        H5Gclose(H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5Lcreate_external("other.h5", "/ids", f, "/g/ext", H5P_DEFAULT, H5P_DEFAULT);
        break;
    case 19:
        H5Gclose(H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_external(dcpl, "raw.bin", 0, 24);
        add_dataset(f, "/g/xs", H5T_STD_I64LE, 1, 3, 0, dcpl);
        H5Pclose(dcpl);
        break;
    case 20: /* a hard link cycle plus a soft link deep inside it */
        H5Gclose(H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5Lcreate_hard(f, "/g", f, "/g/self", H5P_DEFAULT, H5P_DEFAULT);
        H5Lcreate_soft("/ids", f, "/g/alias", H5P_DEFAULT, H5P_DEFAULT);
        break;
    }
}

static void test_more_datasets(void)
{
    static const struct {
        const char *file;
        int kind;
        const char *want;
    } cases[] = {
        {"f_string.h5", 0, "/f: dtype string, expected a floating-point type"},
        {"f_compound.h5", 1, "/f: dtype compound, expected a floating-point type"},
        {"f_scalar.h5", 2, "/f: is not a simple array"},
        {"f_null.h5", 3, "/f: is not a simple array"},
        {"f_rank3.h5", 4, "/f: has 3 dimensions, expected 2-D"},
        {"f_cols.h5", 5, "/f: shape 4x3, expected 4x2"},
        {"f_named_type.h5", 6, "/f: is not a dataset"},
        {"f_dangling_soft.h5", 7, "/f: is a soft or user-defined link, not allowed"},
        {"ids_enum.h5", 8, "/ids: dtype enum, expected an integer type"},
        {"ids_2d.h5", 9, "/ids: has 2 dimensions, expected 1-D"},
        {"ids_int8.h5", 10, "/ids: dtype int8 (1 bytes), expected 4 to 8 bytes"},
        {"f_group.h5", 11, "/f: is not a dataset"},
        {"f_float64be.h5", 12, "/f: dtype float64 (8 bytes), expected 4 to 4 bytes"},
        {"opt_2d.h5", 13, "/opt: has 2 dimensions, expected 1-D"},
        {"opt_int32.h5", 14, "/opt: dtype int32 (4 bytes), expected 8 to 8 bytes"},
        {"opt_float.h5", 15, "/opt: dtype float64, expected an integer type"},
        {"opt_nbit.h5", 16, "/opt: uses filter 5, not allowed (allowed: deflate, shuffle, fletcher32)"},
        {"ids_missing.h5", 17, "missing dataset /ids"},
        {"nested_extlink.h5", 18, "/g/ext: is an external link to another file, not allowed"},
        {"nested_extstore.h5", 19, "/g/xs: uses external storage (raw data in another file), not allowed"},
        {"cycle_soft.h5", 20, "/g/alias: is a soft or user-defined link, not allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = tmp_path(cases[i].file);
        hid_t f = new_file(p);
        build_more(f, cases[i].kind);
        H5Fclose(f);
        expect(p, cases[i].want);
    }

    /* Index values at the edges: the first element, the most negative
     * int64 at the last position, a uint64 past INT64_MAX. */
    const char *p = tmp_path("ids_edges.h5");
    hid_t f = new_file(p);
    good_objects(f, 0, 1);
    add_dataset(f, "/ids", H5T_STD_I64LE, 1, 70000, 0, H5P_DEFAULT);
    H5Fclose(f);
    set_id(p, 0, 5);
    expect(p, "/ids: item id 5 out of range [0, 5) at position 0");
    set_id(p, 0, 0);
    set_id(p, 69999, INT64_MIN);
    expect(p, "/ids: item id -9223372036854775808 out of range [0, 5) at position 69999");

    p = tmp_path("ids_uint64.h5");
    f = new_file(p);
    good_objects(f, 0, 1);
    add_dataset(f, "/ids", H5T_STD_U64LE, 1, 10, 0, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/ids", H5P_DEFAULT);
    uint64_t big[10] = {0, 1, 2, 3, (uint64_t)1 << 63, 0, 0, 0, 0, 0};
    H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, big);
    H5Dclose(d);
    H5Fclose(f);
    expect(p, "/ids: item id 9223372036854775807 out of range [0, 5) at position 4");

    /* Not HDF5 at all, or cut short. */
    static const char *const broken[] = {"empty.h5", "sig_only.h5", "truncated.h5"};
    for (int k = 0; k < 3; k++) {
        char bp[1024];
        snprintf(bp, sizeof bp, "%s", tmp_path(broken[k]));
        FILE *out = fopen(bp, "wb");
        CU_ASSERT_FATAL(out != NULL);
        static const char sig[] = "\x89HDF\r\n\x1a\n garbage after the signature";
        if (k == 1) fwrite(sig, 1, sizeof sig - 1, out);
        if (k == 2) {
            FILE *in = fopen(tmp_path("good.h5"), "rb");
            char buf[1024];
            size_t got = in ? fread(buf, 1, sizeof buf, in) : 0;
            fwrite(buf, 1, got, out);
            if (in) fclose(in);
        }
        fclose(out);
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_h5check_path(bp, spec, 3, &e), SR_ERR_DATA);
        char want[1200];
        snprintf(want, sizeof want, "%s: cannot open as HDF5", bp);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        if (strcmp(e.msg, want) != 0) fprintf(stderr, "got:  %s\nwant: %s\n", e.msg, want);
    }
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

/* Replace dataset name by an n x cols (nd-D) dataset of type t. */
static void replace_dataset(hid_t f, const char *name, hid_t t, int nd, hsize_t n, hsize_t cols, hid_t dcpl)
{
    H5Ldelete(f, name, H5P_DEFAULT);
    add_dataset(f, name, t, nd, n, cols, dcpl);
}

static void set_attr_i64(hid_t f, const char *name, int64_t v)
{
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
}

/* A forger who knows the format: a new value for a one-value int64 state
 * entry and its sha256 attribute recomputed, so only a range check can
 * tell. */
static void forge_state(hid_t f, const char *name, int64_t v)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    sr_sha256 s;
    char hex[65];
    sr_sha256_init(&s);
    sr_sha256_update(&s, &v, sizeof v);
    sr_sha256_hex(&s, hex);
    hid_t a = H5Aopen(d, "sha256", H5P_DEFAULT), t = H5Aget_type(a);
    CU_ASSERT(H5Awrite(a, t, hex) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    H5Dclose(d);
}

/* One problem (kind) in a good checkpoint, opened read-write. */
static void break_checkpoint(hid_t f, const char *path, int kind)
{
    hid_t d, dcpl;
    hsize_t ch = 3;
    switch (kind) {
    case 0: H5Ldelete(f, "/checksums/model/x", H5P_DEFAULT); break;
    case 1: replace_dataset(f, "/model/x", H5T_IEEE_F64LE, 2, 6, 2, H5P_DEFAULT); break;
    case 2: replace_dataset(f, "/model/x", H5T_IEEE_F32LE, 2, 5, 2, H5P_DEFAULT); break;
    case 3: H5Lcreate_external("/etc/passwd", "/x", f, "evil", H5P_DEFAULT, H5P_DEFAULT); break;
    case 4: set_attr_i64(f, "format_version", 9); break;
    case 5: H5Adelete(f, "softrec_format"); break;
    case 6: {
        d = H5Dopen2(f, "/model/x", H5P_DEFAULT);
        float v[12];
        for (int k = 0; k < 12; k++) v[k] = (float)k;
        v[7] = 7.5f;
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
    } break;
    case 7: replace_dataset(f, "/checksums/model/x", H5T_STD_U8LE, 2, 2, 32, H5P_DEFAULT); break;
    case 8: replace_dataset(f, "/optim/x/m", H5T_IEEE_F64LE, 2, 6, 2, H5P_DEFAULT); break;
    case 9: H5Lcreate_external("other.h5", "/model/x", f, "/model/evil", H5P_DEFAULT, H5P_DEFAULT); break;
    case 10: H5Lcreate_soft("/model/x", f, "/model/alias", H5P_DEFAULT, H5P_DEFAULT); break;
    case 11:
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_external(dcpl, "raw.bin", 0, 24);
        add_dataset(f, "/model/raw", H5T_STD_I64LE, 1, 3, 0, dcpl);
        H5Pclose(dcpl);
        break;
    case 12:
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &ch);
        H5Pset_scaleoffset(dcpl, H5Z_SO_INT, H5Z_SO_INT_MINBITS_DEFAULT);
        add_dataset(f, "/optim/x/v", H5T_STD_I64LE, 1, 3, 0, dcpl);
        H5Pclose(dcpl);
        break;
    case 13: {
        hsize_t n = 3;
        hid_t vsp = H5Screate_simple(1, &n, NULL), ssp = H5Screate_simple(1, &n, NULL);
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_virtual(dcpl, vsp, "other.h5", "/model/x", ssp);
        d = H5Dcreate2(f, "/model/v", H5T_IEEE_F32LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        CU_ASSERT(d >= 0);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(vsp);
        H5Sclose(ssp);
    } break;
    case 14:
        H5Ldelete(f, "/model/x", H5P_DEFAULT);
        H5Gclose(H5Gcreate2(f, "/model/x", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        break;
    case 15: H5Ldelete(f, "/optim/x/m", H5P_DEFAULT); break;
    case 16: set_attr_i64(f, "checksum_block_rows", 100); break;
    case 17: replace_dataset(f, "/checksums/model/x", H5T_STD_U16LE, 2, 1, 32, H5P_DEFAULT); break;
    case 18: {
        d = H5Dopen2(f, "/optim/x/m", H5P_DEFAULT);
        float v[12] = {0};
        v[11] = -1.0f;
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
    } break;
    case 19: H5Ldelete(f, "/state/step", H5P_DEFAULT); break;
    case 20: replace_dataset(f, "/state/step", H5T_IEEE_F64LE, 1, 1, 0, H5P_DEFAULT); break;
    case 21: { /* a different step, its digest attribute left as it was */
        d = H5Dopen2(f, "/state/step", H5P_DEFAULT);
        int64_t v = -42;
        H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
        H5Dclose(d);
    } break;
    case 22: replace_dataset(f, "/state/step", H5T_STD_I64LE, 1, 2, 0, H5P_DEFAULT); break;
    case 23: replace_dataset(f, "/state/rng", H5T_STD_I64LE, 1, 2, 0, H5P_DEFAULT); break;
    case 24: replace_dataset(f, "/state/step", H5T_STD_I64LE, 2, 3, 1, H5P_DEFAULT); break;
    case 25: set_attr_i64(f, "format_version", 1); break;
    case 26: forge_state(f, "/state/step", -1); break;
    case 27: forge_state(f, "/state/step", 101); break;
    case 28: forge_state(f, "/state/step", INT64_MIN); break;
    }
    (void)path;
}

/* Malformed checkpoints through the reader the trainer uses: two tables
 * (model and optimiser) and two state entries, each case one problem, each
 * with its exact one-line message, the same on every rank. */
static void test_bad_checkpoints(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    float tab[6 * 2], opt[6 * 2], got[6 * 2], got2[6 * 2];
    for (int i = 0; i < 12; i++) tab[i] = (float)i, opt[i] = 0.5f * (float)i;
    /* Rank r holds rows [lo, hi) (also run at 2 and 3 ranks: see main). */
    int64_t lo = 6 * c.rank / c.size, hi = 6 * (c.rank + 1) / c.size;
    sr_ckpt_table t[2] = {{"/model/x", tab + 2 * lo, hi - lo, 6, 2, NULL, lo},
                          {"/optim/x/m", opt + 2 * lo, hi - lo, 6, 2, NULL, lo}};
    sr_ckpt_table r[2] = {{"/model/x", got, hi - lo, 6, 2, NULL, lo}, {"/optim/x/m", got2, hi - lo, 6, 2, NULL, lo}};
    int64_t step = 7, step_in = 0;
    uint64_t rng[2] = {1, 2}, rng_in[2];
    sr_ckpt_state st[2] = {{"step", SR_CKPT_I64, &step, 1, 0, 0, 0, 0}, {"rng", SR_CKPT_U64, rng, 2, 0, 0, 0, 0}};
    /* The reader allows steps 0 to 100 (the trainer: its own ranges). */
    sr_ckpt_state st_in[2] = {{"step", SR_CKPT_I64, &step_in, 1, 0, 1, 0, 100},
                              {"rng", SR_CKPT_U64, rng_in, 2, 0, 0, 0, 0}};
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    struct {
        const char *name;
        int kind;
        sr_status code;
        const char *want;
    } cases[] = {
        {"ck_no_checksums.h5", 0, SR_ERR_DATA, "missing dataset /checksums/model/x"},
        {"ck_float64.h5", 1, SR_ERR_DATA, "/model/x: dtype float64 (8 bytes), expected 4 to 4 bytes"},
        {"ck_shape.h5", 2, SR_ERR_DATA, "/model/x: shape 5x2, expected 6x2"},
        {"ck_extlink.h5", 3, SR_ERR_DATA, "/evil: is an external link to another file, not allowed"},
        {"ck_version.h5", 4, SR_ERR_DATA, "checkpoint format_version 9 is not supported (this softrec reads 1 to 2)"},
        {"ck_format.h5", 5, SR_ERR_DATA, "not a softrec checkpoint (attribute softrec_format)"},
        {"ck_digest.h5", 6, SR_ERR_DATA, "/model/x: block 0 (rows 0-5) fails its SHA-256 check (damaged file)"},
        {"ck_digest_shape.h5", 7, SR_ERR_DATA, "/checksums/model/x: shape 2x32, expected 1x32"},
        {"ck_optim_dtype.h5", 8, SR_ERR_DATA, "/optim/x/m: dtype float64 (8 bytes), expected 4 to 4 bytes"},
        {"ck_model_extlink.h5", 9, SR_ERR_DATA, "/model/evil: is an external link to another file, not allowed"},
        {"ck_model_softlink.h5", 10, SR_ERR_DATA, "/model/alias: is a soft or user-defined link, not allowed"},
        {"ck_extstore.h5", 11, SR_ERR_DATA,
         "/model/raw: uses external storage (raw data in another file), not allowed"},
        {"ck_filter.h5", 12, SR_ERR_DATA,
         "/optim/x/v: uses filter 6, not allowed (allowed: deflate, shuffle, fletcher32)"},
        {"ck_virtual.h5", 13, SR_ERR_DATA, "/model/v: is a virtual dataset (data in other files), not allowed"},
        {"ck_table_group.h5", 14, SR_ERR_DATA, "/model/x: is not a dataset"},
        {"ck_no_optim.h5", 15, SR_ERR_DATA, "missing dataset /optim/x/m"},
        {"ck_block_rows.h5", 16, SR_ERR_DATA, "checksum_block_rows 100, expected 4096"},
        {"ck_digest_dtype.h5", 17, SR_ERR_DATA, "/checksums/model/x: dtype uint16 (2 bytes), expected 1 to 1 bytes"},
        {"ck_optim_digest.h5", 18, SR_ERR_DATA,
         "/optim/x/m: block 0 (rows 0-5) fails its SHA-256 check (damaged file)"},
        {"ck_no_step.h5", 19, SR_ERR_DATA, "missing dataset /state/step"},
        {"ck_step_float.h5", 20, SR_ERR_DATA, "/state/step: dtype float64, expected an integer type"},
        {"ck_step_forged.h5", 21, SR_ERR_DATA, "/state/step: fails its SHA-256 check (damaged file)"},
        {"ck_step_count.h5", 22, SR_ERR_DATA, "/state/step: 2 values, expected 1"},
        {"ck_rng_sign.h5", 23, SR_ERR_DATA, "/state/rng: is int64, expected uint64"},
        {"ck_step_per_rank.h5", 24, SR_ERR_DATA, "/state/step: is per-rank state, expected replicated"},
        {"ck_v1_state.h5", 25, SR_ERR_DATA,
         "format_version 1 checkpoint holds no training state (needed: /state/step); it can only initialise a "
         "model (train.init)"},
        {"ck_step_forged_neg.h5", 26, SR_ERR_DATA, "/state/step: value -1 is outside 0 to 100"},
        {"ck_step_forged_big.h5", 27, SR_ERR_DATA, "/state/step: value 101 is outside 0 to 100"},
        {"ck_step_forged_min.h5", 28, SR_ERR_DATA, "/state/step: value -9223372036854775808 is outside 0 to 100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", tmp_path(cases[i].name));
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_ckpt_save(&c, path, &info, t, 2, st, 2, NULL, &e), SR_OK);
        MPI_Barrier(c.comm);
        if (c.rank == 0) {
            hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
            CU_ASSERT_FATAL(f >= 0);
            break_checkpoint(f, path, cases[i].kind);
            H5Fclose(f);
        }
        MPI_Barrier(c.comm);
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, r, 2, st_in, 2, NULL, NULL, &e), cases[i].code);
        char want[2048];
        snprintf(want, sizeof want, "%s: %s", path, cases[i].want);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        if (strcmp(e.msg, want) != 0) fprintf(stderr, "[%s] got:  %s\nwant: %s\n", cases[i].name, e.msg, want);
    }

    /* Not a checkpoint file at all: empty, and cut short. */
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", tmp_path(k ? "ck_truncated.h5" : "ck_empty.h5"));
        sr_error_clear(&e);
        if (k) CU_ASSERT_EQUAL_FATAL(sr_ckpt_save(&c, path, &info, t, 2, st, 2, NULL, &e), SR_OK);
        MPI_Barrier(c.comm);
        if (c.rank == 0 && k) CU_ASSERT_EQUAL(truncate(path, 2048), 0);
        if (c.rank == 0 && !k) {
            FILE *out = fopen(path, "w");
            CU_ASSERT_FATAL(out != NULL);
            fclose(out);
        }
        MPI_Barrier(c.comm);
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_ckpt_load(&c, path, r, 2, st_in, 2, NULL, NULL, &e), SR_ERR_IO);
        char want[2048];
        snprintf(want, sizeof want, "%s: cannot open checkpoint (missing or not HDF5)", path);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
        if (strcmp(e.msg, want) != 0) fprintf(stderr, "got:  %s\nwant: %s\n", e.msg, want);
    }
    sr_comm_destroy(&c);
}

/* SR_H5CHECK_SUITE=checkpoints: only the checkpoint cases (collective;
 * the MPI runs at 2 and 3 ranks, tests/reliability.cmake). */
static void register_tests(void)
{
    const char *only = getenv("SR_H5CHECK_SUITE");
    if (only && strcmp(only, "checkpoints") == 0) {
        CU_add_test(CU_add_suite("h5check_ckpt", NULL, NULL), "bad_checkpoints", test_bad_checkpoints);
        return;
    }
    CU_pSuite s = CU_add_suite("h5check", NULL, NULL);
    CU_add_test(s, "good_and_shapes", test_good_and_shapes);
    CU_add_test(s, "more_datasets", test_more_datasets);
    CU_add_test(s, "id_ranges", test_id_ranges);
    CU_add_test(s, "outside_references", test_outside_references);
    CU_add_test(s, "bad_checkpoints", test_bad_checkpoints);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
