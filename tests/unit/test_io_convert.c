/* test_io_convert.c: converters on small inline text and the fixtures of
 * tests/data/convert: every format (Amazon, RecBole and its benchmark split,
 * CSV with quotes, header names, string ids, ISO/float times), the rating
 * threshold, k-core, dedup and repeats in sequences, each split protocol and
 * --valid FILE, seed determinism, id remapping and names, provenance; HDF5
 * strings of every kind; sha256 known answers. Serial (one rank). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/convert.h"
#include "io/h5util.h"
#include "io/sha256.h"

/* Everything of one converted file, read back with the real reader. */
typedef struct loaded {
    sr_dataset_meta meta;
    sr_csr split[SR_SPLIT_COUNT];
    int64_t *uids, *iids, *pop; /* the int64 maps (zeros when a column has string ids) */
    sr_dataset_names users, items; /* every file: names (sr_dataset_read_id_names) */
} loaded;

static char g_path[1024];

static const char *tmp_file(const char *name)
{
    snprintf(g_path, sizeof g_path, "%s/%s", sr_test_tmpdir(), name);
    return g_path;
}

static char *write_text(const char *name, const char *text)
{
    char *p = strdup(tmp_file(name));
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
    L->uids = calloc((size_t)L->meta.num_users + 1, sizeof(int64_t));
    L->iids = calloc((size_t)L->meta.num_items + 1, sizeof(int64_t));
    L->pop = calloc((size_t)L->meta.num_items + 1, sizeof(int64_t));
    if (L->meta.has_id_maps) {
        CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 0, 0, L->meta.num_users, L->uids, &err) == SR_OK);
        CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 1, 0, L->meta.num_items, L->iids, &err) == SR_OK);
    }
    CU_ASSERT_FATAL(sr_dataset_read_id_names(ds, 0, 0, L->meta.num_users, &L->users, &err) == SR_OK);
    CU_ASSERT_FATAL(sr_dataset_read_id_names(ds, 1, 0, L->meta.num_items, &L->items, &err) == SR_OK);
    CU_ASSERT_FATAL(sr_dataset_read_popularity(ds, 0, L->meta.num_items, L->pop, &err) == SR_OK);
    sr_dataset_close(&ds);
    sr_comm_destroy(&c);
}

static void unload(loaded *L)
{
    for (int s = 0; s < SR_SPLIT_COUNT; s++) sr_csr_free(&L->split[s], NULL);
    free(L->uids);
    free(L->iids);
    free(L->pop);
    sr_dataset_names_free(&L->users);
    sr_dataset_names_free(&L->items);
}

/* "i i i" of user u's row in split s as original item ids. */
static void row_str(const loaded *L, int s, int64_t u, char *buf, size_t n)
{
    const sr_csr *m = &L->split[s];
    buf[0] = '\0';
    for (int64_t k = m->indptr[u]; k < m->indptr[u + 1]; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%lld", k > m->indptr[u] ? " " : "", (long long)L->iids[m->items[k]]);
    }
}

static sr_status convert(sr_convert_opts *o, const char *out, sr_convert_report *rep, sr_error *err)
{
    free((char *)o->output); /* a previous call's */
    o->output = strdup(tmp_file(out));
    o->overwrite = 1;
    sr_error_clear(err);
    sr_status st = sr_convert_run(o, rep, err);
    if (st != SR_OK) fprintf(stderr, "convert: %s\n", err->msg);
    return st;
}

static void free_out(sr_convert_opts *o)
{
    free((char *)o->output);
    o->output = NULL;
}

static void test_sha256_known_answers(void)
{
    sr_sha256 s;
    char hex[65];
    sr_sha256_init(&s);
    sr_sha256_hex(&s, hex);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sr_sha256_init(&s);
    sr_sha256_update(&s, "abc", 3);
    sr_sha256_hex(&s, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sr_sha256_init(&s); /* fed in odd pieces to cross block boundaries */
    for (size_t i = 0; i < strlen(two); i += 7) sr_sha256_update(&s, two + i, strlen(two) - i < 7 ? strlen(two) - i : 7);
    sr_sha256_hex(&s, hex);
    CU_ASSERT_STRING_EQUAL(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* ml-100k: tabs, duplicates (earliest kept), --min-rating, ids remapped in
 * ascending original order, time kept and rows in time order. */
static void test_ml100k_threshold_dedup_ids(void)
{
    char *in = write_text("a.data", "42\t7\t5\t300\n"
                                    "5\t7\t4\t200\n"
                                    "42\t3\t2\t100\n"   /* below 3: dropped */
                                    "42\t9\t4\t50\n"
                                    "42\t7\t3\t10\n"    /* dup of (42,7), earlier: kept */
                                    "100\t9\t5\t1\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_ML100K;
    o.input = in;
    o.use_min_rating = 1;
    o.min_rating = 3;
    o.split = SR_SPLITK_RANDOM;
    o.ratio[0] = 1;
    o.ratio[1] = o.ratio[2] = 0;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "a.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.rows_read, 5);
    CU_ASSERT_EQUAL(rep.below_min_rating, 1);
    CU_ASSERT_EQUAL(rep.duplicates, 1);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 3);
    CU_ASSERT_EQUAL(L.meta.num_items, 2);
    CU_ASSERT_EQUAL(L.meta.nnz[0], 4);
    CU_ASSERT_TRUE(L.meta.has_time);
    CU_ASSERT_EQUAL(L.uids[0], 5);
    CU_ASSERT_EQUAL(L.uids[1], 42);
    CU_ASSERT_EQUAL(L.uids[2], 100);
    CU_ASSERT_EQUAL(L.iids[0], 7);
    CU_ASSERT_EQUAL(L.iids[1], 9);
    char row[128];
    row_str(&L, 0, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "7 9"); /* (42,7) at t=10 kept, before (42,9) at t=50 */
    CU_ASSERT_EQUAL(L.split[0].time[L.split[0].indptr[1]], 10);
    CU_ASSERT_EQUAL(L.pop[0], 2);
    CU_ASSERT_EQUAL(L.pop[1], 2);
    CU_ASSERT_STRING_EQUAL(L.meta.split_protocol, "random per user 1/0/0");
    char sha[65];
    CU_ASSERT_EQUAL(sr_sha256_file(in, sha, &err), SR_OK);
    CU_ASSERT_STRING_EQUAL(L.meta.source_sha256, sha);
    CU_ASSERT_STRING_EQUAL(L.meta.name, "a");
    unload(&L);
    /* dedup off: the duplicate is kept and counted */
    o.dedup = 0;
    CU_ASSERT_FATAL(convert(&o, "a2.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.duplicates, 1);
    CU_ASSERT_EQUAL(rep.nnz[0], 5);
    free_out(&o);
    free(in);
}

/* ml-1m "::" separated, gzip-compressed input read directly. */
static void test_ml1m_gz(void)
{
    char *p = strdup(tmp_file("r.dat.gz"));
    gzFile g = gzopen(p, "wb");
    CU_ASSERT_FATAL(g != NULL);
    for (int u = 1; u <= 4; u++)
        for (int i = 1; i <= 5; i++) gzprintf(g, "%d::%d::%d::%d\n", u, 10 * i, 1 + (u + i) % 5, 1000 + i);
    gzclose(g);
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_ML1M;
    o.input = p;
    o.split = SR_SPLITK_LLO;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "r.h5", &rep, &err) == SR_OK);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 4);
    CU_ASSERT_EQUAL(L.meta.num_items, 5);
    CU_ASSERT_EQUAL(L.meta.nnz[0], 12);
    CU_ASSERT_EQUAL(L.meta.nnz[1], 4);
    CU_ASSERT_EQUAL(L.meta.nnz[2], 4);
    char row[64];
    row_str(&L, 2, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "50"); /* latest */
    row_str(&L, 1, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "40");
    CU_ASSERT_EQUAL(L.meta.split_seed, -1);
    unload(&L);
    free_out(&o);
    free(p);
}

/* lightgcn: the given split, dedup across the files, --valid-ratio. */
static void test_lightgcn_given(void)
{
    char *tr = write_text("tr.txt", "0 1 2 3 4 5 6 7 8 9 10\n1 2 3\n3 5\n");
    char *te = write_text("te.txt", "0 11\n1 3 4\n\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_LIGHTGCN;
    o.input = tr;
    o.test = te;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "g.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.duplicates, 1); /* (1,3) in both: train's copy kept */
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 3);
    CU_ASSERT_EQUAL(L.meta.num_items, 11);
    CU_ASSERT_EQUAL(L.meta.nnz[0], 13);
    CU_ASSERT_EQUAL(L.meta.nnz[1], 0);
    CU_ASSERT_EQUAL(L.meta.nnz[2], 2);
    CU_ASSERT_FALSE(L.meta.has_time);
    CU_ASSERT_STRING_EQUAL(L.meta.split_protocol, "given");
    CU_ASSERT(strstr(L.meta.source_files, "tr.txt\n") != NULL);
    CU_ASSERT(strstr(L.meta.source_files, "te.txt\n") != NULL);
    char row[128];
    row_str(&L, 0, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "1 2 3 4 5 6 7 8 9 10");
    row_str(&L, 2, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "4");
    unload(&L);
    /* carve 20% of each user's train into valid, deterministically */
    o.valid_ratio = 0.2;
    o.seed = 3;
    CU_ASSERT_FATAL(convert(&o, "g2.h5", &rep, &err) == SR_OK);
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.nnz[1], 2); /* round(10 * .2) + round(2 * .2) + round(1 * .2) */
    CU_ASSERT_EQUAL(L.meta.nnz[0] + L.meta.nnz[1], 13);
    CU_ASSERT_EQUAL(L.meta.split_seed, 3);
    unload(&L);
    free_out(&o);
    free(tr);
    free(te);
}

/* seq-pairs: positions are the time; leave-last-out handles short users. */
static void test_seq_pairs_llo(void)
{
    char *in = write_text("sp.txt", "1 10\n2 20\n1 11\n3 30\n1 12\n2 21\n1 13\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_PAIRS;
    o.input = in;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "sp.h5", &rep, &err) == SR_OK);
    CU_ASSERT_STRING_EQUAL(rep.split_protocol, "leave-last-out");
    loaded L;
    load(o.output, &L);
    CU_ASSERT_TRUE(L.meta.has_time);
    char row[64];
    row_str(&L, 0, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "10 11");
    row_str(&L, 1, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "12");
    row_str(&L, 2, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "13");
    CU_ASSERT_EQUAL(L.split[2].time[0], 3); /* position 3 in user 1's sequence */
    row_str(&L, 0, 1, row, sizeof row); /* 2 items: train + test */
    CU_ASSERT_STRING_EQUAL(row, "20");
    row_str(&L, 2, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "21");
    row_str(&L, 0, 2, row, sizeof row); /* 1 item: train only */
    CU_ASSERT_STRING_EQUAL(row, "30");
    CU_ASSERT_EQUAL(L.meta.nnz[0], 4);
    CU_ASSERT_EQUAL(L.meta.nnz[1], 1);
    CU_ASSERT_EQUAL(L.meta.nnz[2], 2);
    unload(&L);
    free_out(&o);
    free(in);
}

/* seq-lines: one user per line, order preserved. */
static void test_seq_lines(void)
{
    char *in = write_text("sl.txt", "7 5 3 9 1\n2 3 5 \r\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_LINES;
    o.input = in;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "sl.h5", &rep, &err) == SR_OK);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.uids[0], 2);
    CU_ASSERT_EQUAL(L.uids[1], 7);
    char row[64];
    row_str(&L, 0, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "5 3");
    row_str(&L, 1, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "9");
    row_str(&L, 2, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "1");
    row_str(&L, 2, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "5");
    unload(&L);
    free_out(&o);
    free(in);
}

/* csv: header, custom separator and columns, rating and time. */
static void test_csv(void)
{
    char *in = write_text("c.csv", "ts;rating;item;user\n5;4.5;100;1\n3;2.0;101;1\n4;5;102;2\n1;3.5;100;2\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_CSV;
    o.input = in;
    o.sep = ';';
    o.header = 1;
    o.user_col = 3;
    o.item_col = 2;
    o.rating_col = 1;
    o.time_col = 0;
    o.use_min_rating = 1;
    o.min_rating = 3.5;
    o.split = SR_SPLITK_GIVEN;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "c.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.below_min_rating, 1);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 2);
    CU_ASSERT_EQUAL(L.meta.num_items, 2);
    char row[64];
    row_str(&L, 0, 1, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "100 102"); /* time 1 then 4 */
    unload(&L);
    free_out(&o);
    free(in);
}

/* k-core cascades: removing user 3 drops item 30 below k, which drops
 * user 2, ... until the dense 2x2 block {1,4} x {10,11} remains. */
static void test_kcore(void)
{
    char *in = write_text("k.txt", "1 10\n1 11\n4 10\n4 11\n2 10\n2 30\n3 30\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_PAIRS;
    o.input = in;
    o.kcore = 2;
    sr_convert_report rep;
    sr_error err;
    CU_ASSERT_FATAL(convert(&o, "k.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.kcore_removed, 3);
    loaded L;
    load(o.output, &L);
    CU_ASSERT_EQUAL(L.meta.num_users, 2);
    CU_ASSERT_EQUAL(L.meta.num_items, 2);
    CU_ASSERT_EQUAL(L.uids[1], 4);
    CU_ASSERT_EQUAL(L.iids[1], 11);
    unload(&L);
    free_out(&o);
    free(in);
}

static void splits_of(const loaded *L, int64_t *out, int64_t n)
{
    /* split label of each (user, item) in a dense user x item table */
    for (int64_t k = 0; k < n; k++) out[k] = -1;
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        for (int64_t u = 0; u < L->meta.num_users; u++)
            for (int64_t k = L->split[s].indptr[u]; k < L->split[s].indptr[u + 1]; k++)
                out[u * L->meta.num_items + L->split[s].items[k]] = s;
}

/* random split: per-user shares, same seed -> same split, other seed -> other. */
static void test_random_split_seeded(void)
{
    char text[8192] = "";
    for (int u = 0; u < 6; u++)
        for (int i = 0; i < 20; i++) {
            size_t l = strlen(text);
            snprintf(text + l, sizeof text - l, "%d %d\n", u, i);
        }
    char *in = write_text("rs.txt", text);
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_PAIRS;
    o.input = in;
    o.split = SR_SPLITK_RANDOM;
    o.seed = 11;
    sr_convert_report rep;
    sr_error err;
    loaded A, B, C;
    CU_ASSERT_FATAL(convert(&o, "rs1.h5", &rep, &err) == SR_OK);
    load(o.output, &A);
    free_out(&o);
    CU_ASSERT_FATAL(convert(&o, "rs2.h5", &rep, &err) == SR_OK);
    load(o.output, &B);
    free_out(&o);
    o.seed = 12;
    CU_ASSERT_FATAL(convert(&o, "rs3.h5", &rep, &err) == SR_OK);
    load(o.output, &C);
    free_out(&o);
    for (int64_t u = 0; u < 6; u++) {
        CU_ASSERT_EQUAL(A.split[0].indptr[u + 1] - A.split[0].indptr[u], 16);
        CU_ASSERT_EQUAL(A.split[1].indptr[u + 1] - A.split[1].indptr[u], 2);
        CU_ASSERT_EQUAL(A.split[2].indptr[u + 1] - A.split[2].indptr[u], 2);
    }
    int64_t sa[120], sb[120], sc[120];
    splits_of(&A, sa, 120);
    splits_of(&B, sb, 120);
    splits_of(&C, sc, 120);
    CU_ASSERT_EQUAL(memcmp(sa, sb, sizeof sa), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(sa, sc, sizeof sa), 0);
    for (int k = 0; k < 120; k++) CU_ASSERT(sa[k] >= 0);
    CU_ASSERT_EQUAL(A.meta.split_seed, 11);
    unload(&A);
    unload(&B);
    unload(&C);
    free(in);
}

/* Errors through the API: message names file and line; nothing is left. */
static void test_errors_leave_nothing(void)
{
    char *in = write_text("bad.data", "1\t2\t3\t4\n1\t2\t3\n");
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_ML100K;
    o.input = in;
    sr_error err;
    CU_ASSERT_EQUAL(convert(&o, "bad.h5", NULL, &err), SR_ERR_DATA);
    CU_ASSERT(strstr(err.msg, "bad.data:2: expected 4 fields") != NULL);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(o.output, &st), 0);
    double r[3];
    CU_ASSERT_EQUAL(sr_convert_ratio_parse("0.8,0.1,0.1", r, &err), SR_OK);
    CU_ASSERT_DOUBLE_EQUAL(r[1], 0.1, 1e-12);
    CU_ASSERT_EQUAL(sr_convert_ratio_parse("0.9,0.1", r, &err), SR_OK);
    CU_ASSERT_DOUBLE_EQUAL(r[2], 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r[1], 0.0, 1e-12);
    sr_error_clear(&err);
    CU_ASSERT_EQUAL(sr_convert_ratio_parse("0.8,0.1,", r, &err), SR_ERR_USAGE);
    sr_error_clear(&err);
    CU_ASSERT_EQUAL(sr_convert_ratio_parse("1.5,-0.5", r, &err), SR_ERR_USAGE);
    sr_convert_format f;
    sr_error_clear(&err);
    CU_ASSERT_EQUAL(sr_convert_format_parse("seq-lines", &f, &err), SR_OK);
    CU_ASSERT_EQUAL(f, SR_FORMAT_SEQ_LINES);
    CU_ASSERT_EQUAL(sr_convert_format_parse("parquet", &f, &err), SR_ERR_USAGE);
    free_out(&o);
    free(in);
}

/* ---- the formats people have (issue 20) ----------------------------------- */

#ifndef SR_SOURCE_DIR /* set by tests/convert.cmake */
#define SR_SOURCE_DIR "."
#endif
#define fixture(name) (SR_SOURCE_DIR "/tests/data/convert/" name)

static int64_t user_of(const loaded *L, const char *name)
{
    for (int64_t u = 0; u < L->meta.num_users; u++)
        if (!strcmp(L->users.name[u], name)) return u;
    return -1;
}

/* "a|b|c": user u's row in split s, items by name. */
static void row_names(const loaded *L, int s, int64_t u, char *buf, size_t n)
{
    const sr_csr *m = &L->split[s];
    buf[0] = '\0';
    for (int64_t k = m->indptr[u]; k < m->indptr[u + 1]; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", k > m->indptr[u] ? "|" : "", L->items.name[m->items[k]]);
    }
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
    o.input = fixture("amazon_ratings.csv");
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
    row_names(&L, SR_SPLIT_VALID, q, row, sizeof row); /* its second-last by time */
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
    free_out(&o);
}

/* RecBole: one atomic file (float timestamps, --min-rating on rating:float)
 * and the benchmark split, whose valid file orders its columns differently. */
static void test_recbole(void)
{
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_RECBOLE;
    o.input = fixture("toy.inter");
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
    o.input = fixture("toy.train.inter");
    o.valid = fixture("toy.valid.inter");
    o.test = fixture("toy.test.inter");
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
    row_names(&L, SR_SPLIT_VALID, q, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "0375557033");
    unload(&L);
    free_out(&o);

    char *bad = write_text("bad.inter", "user_id:token\titem:token\n1\t2\n");
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_RECBOLE;
    o.input = bad;
    CU_ASSERT_EQUAL(convert(&o, "bad.h5", NULL, &err), SR_ERR_DATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad.inter:1: no item column 'item_id' in the header"));
    free_out(&o);
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
    row_names(&L, SR_SPLIT_TRAIN, 0, row, sizeof row); /* time order: 1577923200 < ...210 */
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
    free_out(&o);
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
    row_names(&L, SR_SPLIT_VALID, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "c");
    unload(&L);
    o.test = NULL; /* --valid alone is a usage error */
    CU_ASSERT_EQUAL(convert(&o, "g2.h5", NULL, &err), SR_ERR_USAGE);
    free(tr);
    free(va);
    free(te);
    free_out(&o);
}

/* Sequences keep repeats by default; --dedup drops them and counts the users
 * whose last two items (the leave-one-out test/valid) changed. */
static void test_seq_repeats(void)
{
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = SR_FORMAT_SEQ_LINES;
    o.input = fixture("yelp_like.txt");
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
    row_names(&L, SR_SPLIT_TEST, 0, row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "12"); /* the repeat is user 1's test item */
    unload(&L);
    o.dedup = 1;
    CU_ASSERT_FATAL(convert(&o, "yd.h5", &rep, &err) == SR_OK);
    CU_ASSERT_EQUAL(rep.duplicates, 4);
    /* users 1, 2 and 4 end on a repeat; user 3 has none */
    CU_ASSERT_EQUAL(rep.last_changed, 3);
    free_out(&o);
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
        free_out(&o);
        free(in);
    }
}

/* Every string attribute kind another writer may use reads back whole. */
static void test_h5_strings_any_writer(void)
{
    char *path = strdup(tmp_file("strings.h5"));
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
    CU_pSuite s = CU_add_suite("io_convert", NULL, NULL);
    CU_add_test(s, "sha256_known_answers", test_sha256_known_answers);
    CU_add_test(s, "ml100k_threshold_dedup_ids", test_ml100k_threshold_dedup_ids);
    CU_add_test(s, "ml1m_gz", test_ml1m_gz);
    CU_add_test(s, "lightgcn_given", test_lightgcn_given);
    CU_add_test(s, "seq_pairs_llo", test_seq_pairs_llo);
    CU_add_test(s, "seq_lines", test_seq_lines);
    CU_add_test(s, "csv", test_csv);
    CU_add_test(s, "kcore", test_kcore);
    CU_add_test(s, "random_split_seeded", test_random_split_seeded);
    CU_add_test(s, "errors_leave_nothing", test_errors_leave_nothing);
    CU_add_test(s, "amazon", test_amazon);
    CU_add_test(s, "recbole", test_recbole);
    CU_add_test(s, "csv_quotes_names_times", test_csv_quotes_names_times);
    CU_add_test(s, "given_valid_file", test_given_valid_file);
    CU_add_test(s, "seq_repeats", test_seq_repeats);
    CU_add_test(s, "format_errors", test_errors);
    CU_add_test(s, "h5_strings_any_writer", test_h5_strings_any_writer);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
