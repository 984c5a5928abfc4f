/* test_io_convert_formats.c: the formats people have (issue 20): Amazon
 * ratings, RecBole atomic files and their benchmark split, CSV with quotes,
 * header names, string ids and ISO/float timestamps, --valid FILE, repeats in
 * sequences and the dedup warning count; string id maps read back with
 * sr_dataset_read_id_names; HDF5 strings of every kind (h5util). Serial. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/convert.h"
#include "io/h5util.h"

#ifndef SR_SOURCE_DIR
#define SR_SOURCE_DIR "."
#endif
#define FIXTURES SR_SOURCE_DIR "/tests/data/convert/"

typedef struct loaded {
    sr_dataset_meta meta;
    sr_csr split[SR_SPLIT_COUNT];
    sr_dataset_names users, items;
} loaded;

static char *tmp_path(const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", sr_test_tmpdir(), name);
    return strdup(p);
}

static char *write_text(const char *name, const char *text)
{
    char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return p;
}

static void load(const char *path, loaded *L)
{
    memset(L, 0, sizeof *L);
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_SELF, &err) == SR_OK);
    sr_dataset *ds = NULL;
    if (sr_dataset_open(&ds, &c, path, &err) != SR_OK) fprintf(stderr, "load: %s\n", err.msg);
    CU_ASSERT_FATAL(ds != NULL);
    L->meta = *sr_dataset_meta_get(ds);
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        CU_ASSERT_FATAL(sr_dataset_read_split(ds, (sr_split)s, 0, L->meta.num_users, &L->split[s], NULL, &err) == SR_OK);
    CU_ASSERT_FATAL(sr_dataset_read_id_names(ds, 0, 0, L->meta.num_users, &L->users, &err) == SR_OK);
    CU_ASSERT_FATAL(sr_dataset_read_id_names(ds, 1, 0, L->meta.num_items, &L->items, &err) == SR_OK);
    sr_dataset_close(&ds);
    sr_comm_destroy(&c);
}

static void unload(loaded *L)
{
    for (int s = 0; s < SR_SPLIT_COUNT; s++) sr_csr_free(&L->split[s], NULL);
    sr_dataset_names_free(&L->users);
    sr_dataset_names_free(&L->items);
}

static int64_t user_of(const loaded *L, const char *name)
{
    for (int64_t u = 0; u < L->meta.num_users; u++)
        if (!strcmp(L->users.name[u], name)) return u;
    return -1;
}

/* "a|b|c": user u's row in split s, items by name. */
static void row_str(const loaded *L, int s, int64_t u, char *buf, size_t n)
{
    const sr_csr *m = &L->split[s];
    buf[0] = '\0';
    for (int64_t k = m->indptr[u]; k < m->indptr[u + 1]; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", k > m->indptr[u] ? "|" : "", L->items.name[m->items[k]]);
    }
}

static sr_status convert(sr_convert_opts *o, const char *out, sr_convert_report *rep, sr_error *err)
{
    free((char *)o->output);
    o->output = tmp_path(out);
    o->overwrite = 1;
    sr_error_clear(err);
    sr_status st = sr_convert_run(o, rep, err);
    if (st != SR_OK) fprintf(stderr, "convert: %s\n", err->msg);
    return st;
}

static int names_sorted(const sr_dataset_names *n)
{
    for (int64_t k = 1; k < n->n; k++)
        if (strcmp(n->name[k - 1], n->name[k]) >= 0) return 0;
    return 1;
}

/* Amazon ratings: string ids (a leading zero stays), quoted id with a comma,
 * leave-last-out by time, the iterated k-core. */
static void test_amazon(void)
{
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_AMAZON;
    o.input = FIXTURES "amazon_ratings.csv";
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "amz.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.rows_read, 188);
    CU_ASSERT_TRUE(rep.string_ids[0] && rep.string_ids[1]);
    CU_ASSERT_STRING_EQUAL(rep.split_protocol, "leave-last-out");
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 25);
    CU_ASSERT_TRUE(L.meta.has_time);
    CU_ASSERT_TRUE(names_sorted(&L.users) && names_sorted(&L.items));
    int64_t q = user_of(&L, "A,QUOTED USER");
    CU_ASSERT_FATAL(q >= 0);
    char row[256];
    row_str(&L, SR_SPLIT_VALID, q, row, sizeof row); /* its second-last by time */
    CU_ASSERT_STRING_EQUAL(row, "0375557033");
    int zero_led = 0;
    for (int64_t i = 0; i < L.items.n; i++) zero_led |= L.items.name[i][0] == '0';
    CU_ASSERT_TRUE(zero_led); /* "0703315655" is a name, not the number 703315655 */
    unload(&L);
    o.kcore = 4; /* the quoted user has 3 rows: gone, and the cascade is stable */
    CU_ASSERT_FATAL(convert(&o, "amz4.h5", &rep, &err) == SR_OK);
    CU_ASSERT_TRUE(rep.kcore_removed >= 3);
    load(o.output, &L);
    CU_ASSERT_EQUAL(user_of(&L, "A,QUOTED USER"), -1);
    int64_t *cu = calloc((size_t)L.meta.num_users, sizeof *cu), *ci = calloc((size_t)L.meta.num_items, sizeof *ci);
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        for (int64_t u = 0; u < L.meta.num_users; u++)
            for (int64_t k = L.split[s].indptr[u]; k < L.split[s].indptr[u + 1]; k++) cu[u]++, ci[L.split[s].items[k]]++;
    for (int64_t u = 0; u < L.meta.num_users; u++) CU_ASSERT_TRUE(cu[u] >= 4);
    for (int64_t i = 0; i < L.meta.num_items; i++) CU_ASSERT_TRUE(ci[i] >= 4);
    free(cu);
    free(ci);
    unload(&L);
    free((char *)o.output);
}

/* RecBole: one atomic file (float timestamps, --min-rating on rating:float)
 * and the benchmark split, whose valid file orders its columns differently. */
static void test_recbole(void)
{
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_RECBOLE;
    o.input = FIXTURES "toy.inter";
    o.use_min_rating = 1;
    o.min_rating = 3;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "rb.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.rows_read + rep.below_min_rating, 188);
    CU_ASSERT_TRUE(rep.below_min_rating > 0);
    CU_ASSERT_TRUE(rep.has_time);

    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_RECBOLE;
    o.input = FIXTURES "toy.train.inter";
    o.valid = FIXTURES "toy.valid.inter";
    o.test = FIXTURES "toy.test.inter";
    CU_ASSERT_FATAL(convert(&o, "rbsplit.h5", &rep, &err) == SR_OK);
    CU_ASSERT_STRING_EQUAL(rep.split_protocol, "given");
    CU_ASSERT_EQUAL(rep.nnz[0], 138);
    CU_ASSERT_EQUAL(rep.nnz[1], 25);
    CU_ASSERT_EQUAL(rep.nnz[2], 25);
    loaded L;
    load(o.output, &L);
    int64_t q = user_of(&L, "A,QUOTED USER");
    CU_ASSERT_FATAL(q >= 0);
    char row[256];
    row_str(&L, SR_SPLIT_VALID, q, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "0375557033");
    unload(&L);
    free((char *)o.output);

    char *bad = write_text("bad.inter", "user_id:token\titem:token\n1\t2\n");
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_RECBOLE;
    o.input = bad;
    CU_ASSERT_EQUAL(convert(&o, "bad.h5", NULL, &err), SR_ERR_DATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad.inter:1: no item column 'item_id' in the header"));
    free((char *)o.output);
    free(bad);
}

/* CSV: header names, RFC 4180 quotes (a "" inside, a line break inside),
 * ISO-8601 and decimal timestamps, a BOM; integer ids keep int64 maps. */
static void test_csv_quotes_names_times(void)
{
    char *in = write_text("q.csv", "\xEF\xBB\xBFwhen,who,what\n"
                                   "2020-01-02T00:00:10Z,\"Smith, J \"\"JJ\"\"\",b\n"
                                   "1577923200.5,\"Smith, J \"\"JJ\"\"\",\"a\nline two\"\n"
                                   "2020-01-02 00:00:05+01:00,u2,b\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_CSV;
    o.input = in;
    o.header = 1;
    o.user_name = "who";
    o.item_name = "what";
    o.time_name = "when";
    o.split = SR_SPLITK_GIVEN;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "q.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.lines, 3);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 2);
    CU_ASSERT_STRING_EQUAL(L.users.name[0], "Smith, J \"JJ\"");
    CU_ASSERT_STRING_EQUAL(L.users.name[1], "u2");
    char row[256];
    row_str(&L, SR_SPLIT_TRAIN, 0, row, sizeof row); /* time order: 1577923200 < ...210 */
    CU_ASSERT_STRING_EQUAL(row, "a\nline two|b");
    CU_ASSERT_EQUAL(L.split[0].time[0], 1577923200);
    CU_ASSERT_EQUAL(L.split[0].time[1], 1577923210);
    CU_ASSERT_EQUAL(L.split[0].time[2], 1577919605);
    unload(&L);
    free(in);

    /* Integer ids (not zero-led) stay numbers: ascending numeric order. */
    in = write_text("n.csv", "10,7\n9,7\n10,8\n");
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_CSV;
    o.input = in;
    o.split = SR_SPLITK_GIVEN;
    CU_ASSERT_FATAL(convert(&o, "n.h5", &rep, &err) == SR_OK);
    CU_ASSERT_FALSE(rep.string_ids[0] || rep.string_ids[1]);
    load(o.output, &L);
    CU_ASSERT_TRUE(L.meta.has_id_maps);
    CU_ASSERT_STRING_EQUAL(L.users.name[0], "9");
    CU_ASSERT_STRING_EQUAL(L.users.name[1], "10");
    unload(&L);
    free(in);
    free((char *)o.output);
}

/* --valid FILE beside --test FILE, any format; dedup across the files. */
static void test_given_valid_file(void)
{
    char *tr = write_text("g_tr.csv", "u1,a\nu1,b\nu2,a\n");
    char *va = write_text("g_va.csv", "u1,c\n");
    char *te = write_text("g_te.csv", "u2,c\nu1,d\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_CSV;
    o.input = tr;
    o.valid = va;
    o.test = te;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "g.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.nnz[0], 3);
    CU_ASSERT_EQUAL(rep.nnz[1], 1);
    CU_ASSERT_EQUAL(rep.nnz[2], 2);
    loaded L;
    load(o.output, &L);
    char row[64];
    row_str(&L, SR_SPLIT_VALID, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "c");
    unload(&L);
    o.test = NULL; /* --valid alone is a usage error */
    CU_ASSERT_EQUAL(convert(&o, "g2.h5", NULL, &err), SR_ERR_USAGE);
    free(tr);
    free(va);
    free(te);
    free((char *)o.output);
}

/* Sequences keep repeats by default; --dedup drops them and counts the users
 * whose last two items (the leave-one-out test/valid) changed. */
static void test_seq_repeats(void)
{
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_LINES;
    o.input = FIXTURES "yelp_like.txt";
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "y.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.duplicates, 4);
    CU_ASSERT_EQUAL(rep.dedup, 0);
    CU_ASSERT_EQUAL(rep.last_changed, 0);
    CU_ASSERT_EQUAL(rep.nnz[2], 4);
    CU_ASSERT_EQUAL(rep.nnz[0] + rep.nnz[1] + rep.nnz[2], 16);
    loaded L;
    load(o.output, &L);
    char row[64];
    row_str(&L, SR_SPLIT_TEST, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "12"); /* the repeat is user 1's test item */
    unload(&L);
    o.dedup = 1;
    CU_ASSERT_FATAL(convert(&o, "yd.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.duplicates, 4);
    /* users 1, 2 and 4 end on a repeat; user 3 has none */
    CU_ASSERT_EQUAL(rep.last_changed, 3);
    free((char *)o.output);
}

/* Errors name file:line and the field; nothing is left behind. */
static void test_errors(void)
{
    static const struct {
        const char *text, *want;
        int time_col;
    } cases[] = {
        {"a,b\n\"x\"y,1\n", "e.csv:2: field 1: text after the closing quote", -1},
        {"a,b\n\"xy,1\n", "e.csv:2: quoted field not closed before the end of the file", -1},
        {"a,b,1\nc,d,1e400\n", "e.csv:2: timestamp '1e400' is not a number or an ISO-8601 date", 2},
        {"a,b,2021-02-29\n", "e.csv:1: timestamp '2021-02-29' is not a number or an ISO-8601 date", 2},
        {"a,b\n ,c\n", "e.csv:2: user id is empty", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *in = write_text("e.csv", cases[k].text);
        sr_convert_opts o;
        sr_convert_opts_default(&o);
        o.format = SR_FORMAT_CSV;
        o.input = in;
        o.time_col = cases[k].time_col;
        sr_error err;
        CU_ASSERT_EQUAL(convert(&o, "e.h5", NULL, &err), SR_ERR_DATA);
        if (!strstr(err.msg, cases[k].want)) fprintf(stderr, "case %zu: got '%s'\n", k, err.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[k].want));
        struct stat st;
        CU_ASSERT_NOT_EQUAL(stat(o.output, &st), 0);
        free((char *)o.output);
        free(in);
    }
}

/* Every string attribute kind another writer may use reads back whole. */
static void test_h5_strings_any_writer(void)
{
    char *path = tmp_path("strings.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    const char *text = "softrec-dataset";
    static const H5T_str_t pads[3] = {H5T_STR_NULLTERM, H5T_STR_NULLPAD, H5T_STR_SPACEPAD};
    static const H5T_cset_t csets[2] = {H5T_CSET_ASCII, H5T_CSET_UTF8};
    hid_t sp = H5Screate(H5S_SCALAR);
    char name[32];
    for (int c = 0; c < 2; c++) {
        for (int p = 0; p < 3; p++) { /* fixed, exactly the text's length (numpy bytes) */
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, strlen(text));
            H5Tset_strpad(t, pads[p]);
            H5Tset_cset(t, csets[c]);
            snprintf(name, sizeof name, "fixed%d%d", c, p);
            hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, t, text);
            H5Aclose(a);
            H5Tclose(t);
        }
        hid_t t = H5Tcopy(H5T_C_S1); /* variable length (h5py's default) */
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, csets[c]);
        snprintf(name, sizeof name, "vlen%d", c);
        hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, &text);
        H5Aclose(a);
        H5Tclose(t);
    }
    hid_t t = H5Tcopy(H5T_C_S1); /* Fortran style: blank-padded to 20 */
    H5Tset_size(t, 20);
    H5Tset_strpad(t, H5T_STR_SPACEPAD);
    hid_t a = H5Acreate2(f, "spaces", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, "softrec-dataset     ");
    H5Aclose(a);
    H5Tclose(t);
    hid_t ia = H5Acreate2(f, "int", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t one = 1;
    H5Awrite(ia, H5T_NATIVE_INT64, &one);
    H5Aclose(ia);
    /* A fixed-length NULLPAD string dataset, as another writer's id map. */
    const char ids[3][4] = {"ab", "cde", "fghi"};
    hsize_t three = 3;
    hid_t ds_sp = H5Screate_simple(1, &three, NULL);
    t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 4);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t d = H5Dcreate2(f, "ids", t, ds_sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    H5Dclose(d);
    H5Tclose(t);
    H5Sclose(ds_sp);
    H5Sclose(sp);
    H5Fclose(f);

    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    const char *names[] = {"fixed00", "fixed01", "fixed02", "fixed10", "fixed11", "fixed12", "vlen0", "vlen1", "spaces"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        hid_t at = H5Aopen(f, names[k], H5P_DEFAULT);
        char *s = NULL;
        CU_ASSERT_EQUAL(sr_h5_attr_read_text(at, &s), 0);
        if (!s || strcmp(s, text)) fprintf(stderr, "%s: got '%s'\n", names[k], s ? s : "(null)");
        CU_ASSERT_TRUE(s && !strcmp(s, text));
        free(s);
        H5Aclose(at);
    }
    hid_t at = H5Aopen(f, "int", H5P_DEFAULT);
    char *s = NULL;
    CU_ASSERT_EQUAL(sr_h5_attr_read_text(at, &s), -1);
    CU_ASSERT_PTR_NULL(s);
    H5Aclose(at);
    d = H5Dopen2(f, "ids", H5P_DEFAULT);
    sr_h5_texts tx;
    CU_ASSERT_EQUAL_FATAL(sr_h5_read_texts(d, H5P_DEFAULT, 1, 2, &tx), 0);
    CU_ASSERT_STRING_EQUAL(tx.text[0], "cde");
    CU_ASSERT_STRING_EQUAL(tx.text[1], "fghi");
    sr_h5_texts_free(&tx);
    H5Dclose(d);
    H5Fclose(f);
    free(path);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("io_convert_formats", NULL, NULL);
    CU_add_test(s, "amazon", test_amazon);
    CU_add_test(s, "recbole", test_recbole);
    CU_add_test(s, "csv_quotes_names_times", test_csv_quotes_names_times);
    CU_add_test(s, "given_valid_file", test_given_valid_file);
    CU_add_test(s, "seq_repeats", test_seq_repeats);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "h5_strings_any_writer", test_h5_strings_any_writer);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
