/* test_io_convert.c: converters on small inline text: every format, the
 * rating threshold, k-core, dedup, each split protocol, seed determinism,
 * id remapping, provenance; sha256 known answers. Serial (one rank). */
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
#include "io/sha256.h"

/* Everything of one converted file, read back with the real reader. */
typedef struct loaded {
    sr_dataset_meta meta;
    sr_csr split[SR_SPLIT_COUNT];
    int64_t *uids, *iids, *pop;
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
    CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 0, 0, L->meta.num_users, L->uids, &err) == SR_OK);
    CU_ASSERT_FATAL(sr_dataset_read_id_map(ds, 1, 0, L->meta.num_items, L->iids, &err) == SR_OK);
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
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
