/* test_core.c: error records, config table, RNG, allocation accounting, LSE merge. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/lse.h"
#include "core/mem.h"
#include "core/rng.h"
#include "harness.h"

static void test_error_first_wins(void)
{
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(e.code, SR_OK);
    sr_error_set(&e, SR_ERR_DATA, "src/io/x.c", 12, "first %d", 1);
    sr_error_set(&e, SR_ERR_IO, "src/io/y.c", 99, "second");
    CU_ASSERT_EQUAL(e.code, SR_ERR_DATA);
    CU_ASSERT_STRING_EQUAL(e.msg, "first 1");
    char buf[256];
    sr_error_format(&e, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "first 1 [src/io/x.c:12]");
}

static sr_status fails_here(sr_error *err) { SR_FAIL(err, SR_ERR_CONFIG, "bad %s", "thing"); }
static sr_status propagates(sr_error *err)
{
    SR_TRY(fails_here(err));
    return SR_OK;
}

static void test_error_macros_record_location(void)
{
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(propagates(&e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.file, "tests/unit/test_core.c");
    CU_ASSERT(e.line > 0);
}

static void test_config_defaults_and_set(void)
{
    sr_config c;
    sr_config_defaults(&c);
    CU_ASSERT_EQUAL(c.model_dim, 64);
    CU_ASSERT_STRING_EQUAL(c.loss_name, "softmax");
    CU_ASSERT_EQUAL(c.eval_topk_count, 1);
    CU_ASSERT_EQUAL(c.eval_topk[0], 20);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_set_assignment(&c, "train.lr = 0.05", &e), SR_OK);
    CU_ASSERT_DOUBLE_EQUAL(c.train_lr, 0.05, 0);
    CU_ASSERT_EQUAL(sr_config_set_assignment(&c, "eval.topk=10,20,50", &e), SR_OK);
    CU_ASSERT_EQUAL(c.eval_topk_count, 3);
    CU_ASSERT_EQUAL(c.eval_topk[2], 50);
    CU_ASSERT_EQUAL(sr_config_set_assignment(&c, "train.shuffle=false", &e), SR_OK);
    CU_ASSERT_FALSE(c.train_shuffle);
}

static void expect_config_error(const char *assignment, const char *message)
{
    sr_config c;
    sr_config_defaults(&c);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_set_assignment(&c, assignment, &e), SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, message);
    if (strcmp(e.msg, message)) fprintf(stderr, "got: %s\n", e.msg);
}

static void test_config_errors(void)
{
    expect_config_error("train.nope=1", "--set: unknown key 'train.nope' (softrec help config lists them)");
    expect_config_error("model.dim=0", "--set: model.dim = 0 is below the minimum 1");
    expect_config_error("model.dim=12x", "--set: model.dim = '12x' is not an integer");
    expect_config_error("train.lr=nan", "--set: train.lr = 'nan' is not a finite number");
    expect_config_error("optim.name=lbfgs", "--set: optim.name = 'lbfgs' is not one of sgd|adam|adagrad");
    /* Choices from the registries (loss/registry.c, loss/sampled.c): same message. */
    expect_config_error("loss.name=softmaxx",
                        "--set: loss.name = 'softmaxx' is not one of softmax|ssm|nce|bpr|hsm|sparsemax|entmax|rankmax");
    expect_config_error("loss.proposal=zipf", "--set: loss.proposal = 'zipf' is not one of uniform|popularity|inbatch|dynamic");
    expect_config_error("loss.dns_base=dynamic", "--set: loss.dns_base = 'dynamic' is not one of uniform|popularity");
    expect_config_error("train.shuffle=maybe", "--set: train.shuffle = 'maybe' is not a boolean (true/false)");
    expect_config_error("model.dim", "--set model.dim: expected key=value");
    /* strtok_r used to skip empty elements: "10,,20" read as 10,20. */
    expect_config_error("eval.topk=10,,20",
                        "--set: eval.topk = '10,,20' has an empty element (expected comma-separated integers)");
    expect_config_error("eval.topk=10,", "--set: eval.topk = '10,' has an empty element (expected comma-separated integers)");
    expect_config_error("eval.topk= ,5", "--set: eval.topk = ',5' has an empty element (expected comma-separated integers)");
    expect_config_error("eval.topk=", "--set: eval.topk: empty list");
}

/* Write text to name in the test's scratch directory; its path into path. */
static void write_tmp_file(char *path, size_t len, const char *name, const char *text)
{
    snprintf(path, len, "%s/%s", sr_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A key set twice in one INI file used to be "last wins", silently. */
static void test_config_duplicate_key(void)
{
    char path[1024];
    write_tmp_file(path, sizeof path, "cfg_dup.ini",
                   "[train]\nepochs = 3\n; comment\nlr = 0.5\n\n[model]\ndim = 8\n[train]\nepochs = 4\n");
    sr_config c;
    sr_config_defaults(&c);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_file(&c, path, &e), SR_ERR_CONFIG);
    char want[1200];
    snprintf(want, sizeof want, "%s:9: duplicate key 'train.epochs' (first set at line 2; set each key once per file)",
             path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    if (strcmp(e.msg, want)) fprintf(stderr, "got: %s\n", e.msg);
    /* The same in text held in memory (checkpoints), and across sections. */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_string(&c, "[model]\ndim = 8\n[eval]\ntopk = 5\n[model]\ndim = 16\n", "ckpt", &e),
                    SR_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(e.msg, "ckpt:6: duplicate key 'model.dim' (first set at line 2; set each key once per file)");
    /* Two files (or a file and --set) still apply in order: a later one wins. */
    sr_config_defaults(&c);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_string(&c, "[train]\nepochs = 3\n", "a.ini", &e), SR_OK);
    CU_ASSERT_EQUAL(sr_config_load_string(&c, "[train]\nepochs = 5\n", "b.ini", &e), SR_OK);
    CU_ASSERT_EQUAL(c.train_epochs, 5);
    /* A line longer than inih's buffer: the line numbers are inih's own. */
    char text[600];
    snprintf(text, sizeof text, "[train]\nepochs = 1\n[data]\npath = %0300d\n[train]\nepochs = 2\n", 0);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_string(&c, text, "long", &e), SR_ERR_CONFIG);
    /* inih's count (the handler's line and its return value agree), not the file's 6. */
    CU_ASSERT_STRING_EQUAL(e.msg, "long:5: duplicate key 'train.epochs' (first set at line 2; set each key once per file)");
}

static void test_config_file_roundtrip(void)
{
    char path[1024];
    write_tmp_file(path, sizeof path, "cfg_rt.ini", "; comment\n[model]\ndim = 32\n[train]\nepochs = 3\nlr = 0.5\n");
    sr_config c;
    sr_config_defaults(&c);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_file(&c, path, &e), SR_OK);
    CU_ASSERT_EQUAL(c.model_dim, 32);
    CU_ASSERT_EQUAL(c.train_epochs, 3);
    /* The written INI reads back to the same struct. */
    char text[8192];
    size_t need = sr_config_write_ini(&c, text, sizeof text);
    CU_ASSERT(need < sizeof text);
    sr_config d;
    sr_config_defaults(&d);
    CU_ASSERT_EQUAL(sr_config_load_string(&d, text, "ckpt", &e), SR_OK);
    CU_ASSERT_EQUAL(memcmp(&c, &d, sizeof c), 0);

    /* Unknown key in a file names the file and line. */
    write_tmp_file(path, sizeof path, "cfg_rt.ini", "[model]\ndim = 32\n\n[trian]\nepochs = 3\n");
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_file(&c, path, &e), SR_ERR_CONFIG);
    char want[1200];
    snprintf(want, sizeof want, "%s:5: unknown key 'trian.epochs' (softrec help config lists them)", path);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_config_load_file(&c, "/nonexistent/x.ini", &e), SR_ERR_IO);
}

/* Known-answer vectors of Philox4x32-10 from Random123's kat_vectors. */
static void test_philox_kat(void)
{
    uint32_t out[4];
    const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    sr_philox4x32_10(c0, k0, out);
    CU_ASSERT_EQUAL(out[0], 0x6627e8d5u);
    CU_ASSERT_EQUAL(out[1], 0xe169c58du);
    CU_ASSERT_EQUAL(out[2], 0xbc57ac4cu);
    CU_ASSERT_EQUAL(out[3], 0x9b00dbd8u);
    const uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t k1[2] = {0xffffffffu, 0xffffffffu};
    sr_philox4x32_10(c1, k1, out);
    CU_ASSERT_EQUAL(out[0], 0x408f276du);
    CU_ASSERT_EQUAL(out[1], 0x41c83b0eu);
    CU_ASSERT_EQUAL(out[2], 0xa20bc7c6u);
    CU_ASSERT_EQUAL(out[3], 0x6d5451fdu);
}

static void test_rng_streams(void)
{
    sr_rng a, b, c;
    sr_rng_init(&a, 42, 0, 1);
    sr_rng_init(&b, 42, 0, 1);
    sr_rng_init(&c, 42, 1, 1);
    int same_ab = 1, same_ac = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sr_rng_u64(&a), y = sr_rng_u64(&b), z = sr_rng_u64(&c);
        same_ab &= x == y;
        same_ac += x == z;
    }
    CU_ASSERT(same_ab);
    CU_ASSERT_EQUAL(same_ac, 0);
    /* seek gives random access to the same sequence */
    sr_rng_init(&a, 7, 3, 2);
    for (int i = 0; i < 40; i++) sr_rng_u32(&a);
    uint32_t w = sr_rng_u32(&a); /* word 40 = block 10, word 0 */
    sr_rng_init(&b, 7, 3, 2);
    sr_rng_seek(&b, 10);
    CU_ASSERT_EQUAL(sr_rng_u32(&b), w);
    /* uniform moments and below() range */
    sr_rng_init(&a, 1, 0, 0);
    double s = 0, s2 = 0;
    int n = 200000, bad = 0;
    for (int i = 0; i < n; i++) {
        double u = sr_rng_uniform(&a);
        s += u;
        s2 += u * u;
        bad += !(u >= 0 && u < 1);
        bad += sr_rng_below(&a, 7) >= 7;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(fabs(s / n - 0.5) < 0.005);
    CU_ASSERT(fabs(s2 / n - 1.0 / 3) < 0.005);
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) {
        double g = sr_rng_normal(&a);
        m += g;
        v += g * g;
    }
    CU_ASSERT(fabs(m / n) < 0.01);
    CU_ASSERT(fabs(v / n - 1) < 0.02);
}

static void test_mem_accounting(void)
{
    sr_mem m;
    sr_mem_init(&m, 1 << 20);
    sr_error e;
    sr_error_clear(&e);
    float *a = sr_mem_alloc(&m, 1000, 1, "a", &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(((uintptr_t)a) % 64, 0);
    CU_ASSERT_EQUAL(m.current, 1000);
    void *b = sr_mem_alloc(&m, 5000, 0, "b", &e);
    CU_ASSERT_EQUAL(m.peak, 6000);
    sr_mem_free(&m, a);
    CU_ASSERT_EQUAL(m.current, 5000);
    CU_ASSERT_EQUAL(m.peak, 6000);
    CU_ASSERT_PTR_NULL(sr_mem_alloc(&m, 2 << 20, 0, "item table", &e));
    CU_ASSERT_EQUAL(e.code, SR_ERR_NOMEM);
    CU_ASSERT(strstr(e.msg, "item table") != NULL);
    CU_ASSERT_PTR_NULL(sr_mem_calloc(&m, SIZE_MAX / 2, 4, "big", &e));
    sr_mem_free(&m, b);
    CU_ASSERT_EQUAL(m.current, 0);
    CU_ASSERT_EQUAL(m.allocs, 0);
}

static void test_lse_merge(void)
{
    /* Split 7 logits into 3 sets (one empty) and compare with the direct value. */
    double z[7] = {0.5, -3, 12, 11.5, -100, 2, 7};
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < 7; i++) mx = fmax(mx, z[i]);
    for (int i = 0; i < 7; i++) s += exp(z[i] - mx);
    sr_lse parts[3] = {sr_lse_empty(), sr_lse_empty(), sr_lse_empty()};
    int set[7] = {0, 0, 2, 2, 0, 2, 0};
    for (int i = 0; i < 7; i++) {
        sr_lse one = {z[i], 1.0, i == 3 ? z[i] : 0.0};
        sr_lse_merge(&parts[set[i]], &one, 1);
    }
    sr_lse acc = sr_lse_empty();
    sr_lse_merge(&acc, &parts[1], 1); /* empty first */
    sr_lse_merge(&acc, &parts[2], 1);
    sr_lse_merge(&acc, &parts[0], 1);
    CU_ASSERT_DOUBLE_EQUAL(sr_lse_value(&acc), mx + log(s), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(acc.target, 11.5, 0);
    sr_lse e = sr_lse_empty();
    CU_ASSERT(isinf(sr_lse_value(&e)) && sr_lse_value(&e) < 0);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("core", NULL, NULL);
    CU_add_test(s, "error_first_wins", test_error_first_wins);
    CU_add_test(s, "error_macros_record_location", test_error_macros_record_location);
    CU_add_test(s, "config_defaults_and_set", test_config_defaults_and_set);
    CU_add_test(s, "config_errors", test_config_errors);
    CU_add_test(s, "config_file_roundtrip", test_config_file_roundtrip);
    CU_add_test(s, "config_duplicate_key", test_config_duplicate_key);
    CU_add_test(s, "philox_kat", test_philox_kat);
    CU_add_test(s, "rng_streams", test_rng_streams);
    CU_add_test(s, "mem_accounting", test_mem_accounting);
    CU_add_test(s, "lse_merge", test_lse_merge);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
