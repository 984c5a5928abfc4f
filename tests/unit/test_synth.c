/* test_synth.c: the planted-data generator and "softrec data synth".
 *
 * Generation is checked through a sink that hashes and tallies every block
 * (no files), so the statistics tests are independent of the writer; one
 * end-to-end test writes a file with the command and reads it back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "comm/comm.h"
#include "io/dataset.h"
#include "io/synth.h"
#include "harness.h"

/* What a sink run saw: a hash of every user's rows and per-item tallies. */
typedef struct tally {
    uint64_t hash;
    int64_t users, nnz[3];
    int64_t *pop;      /* [items] train count per item, or NULL */
    int64_t items;
    int64_t bad_rows;  /* rows out of order, out of range, or overlapping splits */
    int64_t min_per_split[3];
    /* Topic concentration: share of each user's items inside its topics. */
    const sr_synth *s;
    double in_topic_sum, chance_sum;
    double *topic_share; /* [topics] share of total popularity mass, or NULL */
} tally;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static sr_status tally_sink(void *ctx, int64_t n_users, const int64_t *const indptr[3],
                            const int64_t *const items[3], sr_error *err)
{
    tally *t = ctx;
    for (int64_t u = 0; u < n_users; u++) {
        int64_t user = t->users + u, all = 0, inside = 0;
        int64_t topics[256];
        double w[256];
        int64_t k = t->s ? sr_synth_user_topics(t->s, user, topics, w) : 0;
        double chance = 0;
        for (int64_t i = 0; i < k && t->topic_share; i++) chance += t->topic_share[topics[i]];
        for (int sp = 0; sp < 3; sp++) {
            int64_t a = indptr[sp][u], b = indptr[sp][u + 1], len = b - a;
            t->hash = fnv(t->hash, &len, sizeof len);
            t->hash = fnv(t->hash, items[sp] + a, (size_t)len * sizeof(int64_t));
            if (len < t->min_per_split[sp]) t->min_per_split[sp] = len;
            for (int64_t j = a; j < b; j++) {
                int64_t it = items[sp][j];
                t->bad_rows += it < 0 || it >= t->items || (j > a && items[sp][j - 1] >= it);
                if (sp == 0 && t->pop) t->pop[it]++;
                if (t->s) {
                    int64_t top = sr_synth_item_topic(t->s, it);
                    for (int64_t i = 0; i < k; i++) inside += topics[i] == top;
                }
                all++;
            }
        }
        if (t->s && all > 0) {
            t->in_topic_sum += (double)inside / (double)all;
            t->chance_sum += chance;
        }
    }
    /* Splits of one user must not share items. */
    for (int64_t u = 0; u < n_users; u++)
        for (int x = 0; x < 3; x++)
            for (int y = x + 1; y < 3; y++)
                for (int64_t i = indptr[x][u]; i < indptr[x][u + 1]; i++)
                    for (int64_t j = indptr[y][u]; j < indptr[y][u + 1]; j++) t->bad_rows += items[x][i] == items[y][j];
    t->users += n_users;
    for (int sp = 0; sp < 3; sp++) t->nnz[sp] += indptr[sp][n_users];
    return SR_OK;
}

static void tally_init(tally *t, int64_t items)
{
    memset(t, 0, sizeof *t);
    t->hash = 1469598103934665603ull;
    t->items = items;
    for (int sp = 0; sp < 3; sp++) t->min_per_split[sp] = INT64_MAX;
}

/* Generate every user of p through the tally sink. */
static sr_status run(const sr_synth_params *p, tally *t, int with_structure)
{
    sr_error e;
    sr_error_clear(&e);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    sr_synth *s = NULL;
    sr_status st = sr_synth_create(&s, p, &mem, &e);
    CU_ASSERT_EQUAL_FATAL(st, SR_OK);
    tally_init(t, p->items);
    if (with_structure) {
        t->s = s;
        t->pop = calloc((size_t)p->items, sizeof *t->pop);
        t->topic_share = calloc((size_t)p->topics, sizeof *t->topic_share);
        double total = 0;
        for (int64_t j = 0; j < p->items; j++) {
            double w = pow(1.0 + (double)sr_synth_item_rank(s, j), -p->zipf);
            t->topic_share[sr_synth_item_topic(s, j)] += w;
            total += w;
        }
        for (int64_t k = 0; k < p->topics; k++) t->topic_share[k] /= total;
    }
    sr_synth_stats stats;
    st = sr_synth_generate(s, 0, p->users, tally_sink, t, NULL, 0, &stats, &mem, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    CU_ASSERT_EQUAL(stats.users, p->users);
    CU_ASSERT_EQUAL(stats.nnz[0] + stats.nnz[1] + stats.nnz[2], t->nnz[0] + t->nnz[1] + t->nnz[2]);
    t->s = NULL;
    sr_synth_destroy(&s);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(mem.current, 0); /* everything went back */
    free(t->topic_share);
    t->topic_share = NULL;
    return st;
}

static void small_params(sr_synth_params *p)
{
    sr_synth_params_default(p);
    p->users = 3000;
    p->items = 4000;
    p->interactions = 60000;
    p->topics = 16;
    p->dim = 3;
    p->seed = 7;
    p->block_users = 256;
}

static void test_deterministic(void)
{
    sr_synth_params p;
    small_params(&p);
    p.users = 500;
    p.interactions = 10000;
    tally a, b, c, d;
    run(&p, &a, 0);
    run(&p, &b, 0);
    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_EQUAL(a.nnz[0], b.nnz[0]);
    /* Block size does not change the data (each user has its own stream). */
    p.block_users = 7;
    run(&p, &c, 0);
    CU_ASSERT_EQUAL(a.hash, c.hash);
    /* Another seed: other data. */
    p.seed = 8;
    run(&p, &d, 0);
    CU_ASSERT_NOT_EQUAL(a.hash, d.hash);
}

static void test_counts_and_rows(void)
{
    sr_synth_params p;
    small_params(&p);
    tally t;
    run(&p, &t, 0);
    int64_t total = t.nnz[0] + t.nnz[1] + t.nnz[2];
    /* Sum of 3000 shifted geometrics with mean 20: sd ~ 1.6% of the target. */
    CU_ASSERT(llabs(total - p.interactions) <= p.interactions / 20);
    CU_ASSERT_EQUAL(t.users, p.users);
    CU_ASSERT_EQUAL(t.bad_rows, 0);
    for (int sp = 0; sp < 3; sp++) CU_ASSERT(t.min_per_split[sp] >= 1); /* >= 3 items per user */
    /* Valid and test are ~10% each (at least one per user, so a bit more). */
    double vshare = (double)t.nnz[1] / (double)total;
    CU_ASSERT(vshare > 0.09 && vshare < 0.14);
    CU_ASSERT_EQUAL(t.nnz[1], t.nnz[2]);

    /* No valid split at all: those rows are empty, train takes the rest. */
    p.valid_ratio = 0;
    p.users = 200;
    p.interactions = 2000;
    run(&p, &t, 0);
    CU_ASSERT_EQUAL(t.nnz[1], 0);
    CU_ASSERT(t.min_per_split[2] >= 1 && t.min_per_split[0] >= 1);
    CU_ASSERT_EQUAL(t.bad_rows, 0);

    /* A catalogue smaller than a user's count: users get every item, once. */
    small_params(&p);
    p.items = 5;
    p.topics = 3;
    p.dim = 2;
    p.users = 50;
    p.interactions = 1000;
    run(&p, &t, 0);
    CU_ASSERT_EQUAL(t.bad_rows, 0);
    CU_ASSERT(t.nnz[0] + t.nnz[1] + t.nnz[2] <= 50 * 5);
    p.items = 1; /* one item: one train interaction each, no valid/test */
    p.topics = 1;
    p.dim = 1;
    run(&p, &t, 0);
    CU_ASSERT_EQUAL(t.nnz[0], 50);
    CU_ASSERT_EQUAL(t.nnz[1] + t.nnz[2], 0);
}

/* Least-squares slope of log(count) on log(1 + rank) over ranks [r0, r1). */
static double zipf_slope(const sr_synth_params *p, const int64_t *pop, int64_t r0, int64_t r1)
{
    sr_error e;
    sr_error_clear(&e);
    sr_synth *s = NULL;
    CU_ASSERT_FATAL(sr_synth_create(&s, p, NULL, &e) == SR_OK);
    int64_t *by_rank = calloc((size_t)p->items, sizeof *by_rank);
    for (int64_t j = 0; j < p->items; j++) by_rank[sr_synth_item_rank(s, j)] = pop[j];
    sr_synth_destroy(&s);
    double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
    for (int64_t r = r0; r < r1; r++) {
        if (by_rank[r] <= 0) continue;
        double x = log(1.0 + (double)r), y = log((double)by_rank[r]);
        sx += x, sy += y, sxx += x * x, sxy += x * y, n += 1;
    }
    free(by_rank);
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

static void test_zipf_popularity(void)
{
    /* Ranks are a permutation (every rank used once). */
    sr_synth_params p;
    small_params(&p);
    sr_error e;
    sr_error_clear(&e);
    sr_synth *s = NULL;
    CU_ASSERT_FATAL(sr_synth_create(&s, &p, NULL, &e) == SR_OK);
    char *seen = calloc((size_t)p.items, 1);
    int64_t dup = 0;
    for (int64_t j = 0; j < p.items; j++) dup += seen[sr_synth_item_rank(s, j)]++ != 0;
    CU_ASSERT_EQUAL(dup, 0);
    free(seen);
    sr_synth_destroy(&s);

    /* The head of the train popularity follows the exponent: fit ranks
     * 10..1000. Light users (mean 5) over a big catalogue keep saturation
     * small: a user takes an item only once, which flattens the very top
     * (ranks < 10) for heavy users. */
    const double expo[3] = {1.0, 0.6, 0.0};
    for (int i = 0; i < 3; i++) {
        sr_synth_params_default(&p);
        p.users = 8000, p.items = 20000, p.interactions = 40000, p.topics = 8, p.dim = 2;
        p.zipf = expo[i];
        tally t;
        run(&p, &t, 1);
        double slope = zipf_slope(&p, t.pop, 10, 1000);
        fprintf(stderr, "zipf %.2f: fitted slope on ranks 10..1000: %.3f\n", expo[i], slope);
        CU_ASSERT(fabs(slope + expo[i]) < 0.1);
        free(t.pop);
    }
}

static void test_topic_concentration(void)
{
    sr_synth_params p;
    small_params(&p);
    tally t;
    run(&p, &t, 1);
    double inside = t.in_topic_sum / (double)t.users, chance = t.chance_sum / (double)t.users;
    fprintf(stderr, "items inside the user's topics: %.3f (chance %.3f)\n", inside, chance);
    /* noise 0.1: ~90% from the user's topics (plus what noise lands there). */
    CU_ASSERT(inside > 0.8);
    CU_ASSERT(inside > 3 * chance);
    free(t.pop);

    /* Mixture weights are a distribution over distinct topics. */
    sr_error e;
    sr_error_clear(&e);
    sr_synth *s = NULL;
    CU_ASSERT_FATAL(sr_synth_create(&s, &p, NULL, &e) == SR_OK);
    int64_t topics[256];
    double w[256];
    for (int64_t u = 0; u < 50; u++) {
        int64_t k = sr_synth_user_topics(s, u, topics, w);
        CU_ASSERT(k >= 1 && k <= p.dim);
        double sum = 0;
        for (int64_t i = 0; i < k; i++) {
            sum += w[i];
            CU_ASSERT(w[i] >= 0 && topics[i] >= 0 && topics[i] < p.topics);
            for (int64_t j = 0; j < i; j++) CU_ASSERT(topics[i] != topics[j]);
        }
        CU_ASSERT(fabs(sum - 1.0) < 1e-12);
    }
    sr_synth_destroy(&s);
}

/* ---- the command ----------------------------------------------------------- */

static sr_status cmd(const sr_comm *c, const char *args, sr_error *e)
{
    char buf[1024];
    char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "synth %s", args);
    for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    sr_error_clear(e);
    return sr_cli_exec(&sr_cli_data_synth, c, argc, argv, e);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_usage(const sr_comm *c, const char *args, const char *msg, const char *out)
{
    sr_error e;
    CU_ASSERT_EQUAL(cmd(c, args, &e), SR_ERR_USAGE);
    CU_ASSERT_STRING_EQUAL(e.msg, msg);
    if (strcmp(e.msg, msg)) fprintf(stderr, "args '%s'\n  got: %s\n want: %s\n", args, e.msg, msg);
    CU_ASSERT_FALSE(exists(out)); /* nothing written */
}

static void test_command_errors(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e) == SR_OK);
    char out[512], args[700];
    snprintf(out, sizeof out, "%s/bad.h5", sr_test_tmpdir());
    remove(out);
#define BAD(fmt, msg)                                  \
    do {                                               \
        snprintf(args, sizeof args, fmt, out);         \
        expect_usage(&c, args, msg, out);              \
    } while (0)
    BAD("--items 0 --output %s", "data synth: --items = 0 must be in [1, 2147483647]");
    BAD("--users -5 --output %s", "data synth: --users = -5 must be in [1, 4294967294]");
    BAD("--items 12x --output %s", "data synth: --items '12x': expected an integer");
    BAD("--valid-ratio 0.6 --test-ratio 0.5 --output %s",
        "data synth: --valid-ratio + --test-ratio = 1.1 must be below 1 (no train items left)");
    BAD("--zipf nan --output %s", "data synth: --zipf 'nan': expected a finite number");
    BAD("--users 10 --interactions 29 --output %s",
        "data synth: --interactions = 29 must be at least 3 x --users (10): every user needs a train, a "
        "valid and a test item");
    BAD("--dim 9 --topics 8 --output %s", "data synth: --dim = 9 must be in [1, min(--topics, 256)] (--topics = 8)");
    BAD("--colour red --output %s", "data synth: unknown option '--colour' (softrec data synth --help)");
    BAD("--output %s --seed", "data synth: --seed needs a value");
    expect_usage(&c, "--users 10", "data synth: --output is required", out);
#undef BAD
    /* An existing file is kept unless --force. */
    FILE *f = fopen(out, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("keep", f);
    fclose(f);
    snprintf(args, sizeof args, "--users 10 --items 20 --output %s --progress 0", out);
    CU_ASSERT_EQUAL(cmd(&c, args, &e), SR_ERR_IO);
    struct stat st;
    CU_ASSERT(stat(out, &st) == 0 && st.st_size == 4);
    remove(out);
    sr_comm_destroy(&c);
}

static void test_command_writes_dataset(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e) == SR_OK);
    char out[512], args[800];
    snprintf(out, sizeof out, "%s/synth.h5", sr_test_tmpdir());
    remove(out);
    snprintf(args, sizeof args,
             "--users 300 --items 900 --interactions 4500 --topics 8 --dim 2 --seed 11 --block-users 64 "
             "--name tiny --progress 0 --json --output %s", out);
    CU_ASSERT_EQUAL_FATAL(cmd(&c, args, &e), SR_OK);

    /* The same parameters through the sink: the file holds exactly that. */
    sr_synth_params p;
    sr_synth_params_default(&p);
    p.users = 300, p.items = 900, p.interactions = 4500, p.topics = 8, p.dim = 2, p.seed = 11;
    tally want;
    run(&p, &want, 0);

    sr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_dataset_open(&ds, &c, out, &e), SR_OK);
    const sr_dataset_meta *m = sr_dataset_meta_get(ds);
    CU_ASSERT_EQUAL(m->num_users, 300);
    CU_ASSERT_EQUAL(m->num_items, 900);
    CU_ASSERT_STRING_EQUAL(m->name, "tiny");
    CU_ASSERT_EQUAL(m->split_seed, 11);
    CU_ASSERT(strstr(m->source, "--zipf 1 ") != NULL);
    sr_csr sp[3];
    memset(sp, 0, sizeof sp);
    for (int k = 0; k < 3; k++) CU_ASSERT_EQUAL(sr_dataset_read_split(ds, (sr_split)k, 0, 300, &sp[k], NULL, &e), SR_OK);
    const int64_t *ip[3] = {sp[0].indptr, sp[1].indptr, sp[2].indptr};
    const int64_t *it[3] = {sp[0].items, sp[1].items, sp[2].items};
    tally got;
    tally_init(&got, 900);
    tally_sink(&got, 300, ip, it, &e);
    CU_ASSERT_EQUAL(got.hash, want.hash);
    CU_ASSERT_EQUAL(got.bad_rows, 0);
    for (int k = 0; k < 3; k++) sr_csr_free(&sp[k], NULL);
    sr_dataset_close(&ds);
    remove(out);
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("synth", NULL, NULL);
    CU_add_test(s, "deterministic", test_deterministic);
    CU_add_test(s, "counts_and_rows", test_counts_and_rows);
    CU_add_test(s, "zipf_popularity", test_zipf_popularity);
    CU_add_test(s, "topic_concentration", test_topic_concentration);
    CU_add_test(s, "command_errors", test_command_errors);
    CU_add_test(s, "command_writes_dataset", test_command_writes_dataset);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
