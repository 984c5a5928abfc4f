/* test_losses_registry.c: the loss registry (loss/registry.h) and config's
 * registry-backed choices (core/config.h choice_fn).
 *
 * Facts: every registered name is a valid loss.name and `help config` lists
 * it with its help (unknown values: test_core.c); every registered loss is created,
 * stepped and destroyed through sr_loss_* alone (1 rank, no leaked bytes),
 * and only losses with their own scorer are not scored by dot products.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/loss.h"
#include "loss/registry.h"

static void test_names_are_config_choices(void)
{
    size_t n = 0;
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++, n++) {
        sr_config c;
        sr_config_defaults(&c);
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_config_set(&c, "loss.name", o->name, "test", &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(c.loss_name, o->name);
        CU_ASSERT_PTR_EQUAL(sr_loss_ops_find(o->name), o);
        CU_ASSERT_PTR_NOT_NULL(o->help);
        CU_ASSERT_PTR_NOT_NULL(o->create);
        CU_ASSERT_PTR_NOT_NULL(o->destroy);
        CU_ASSERT_PTR_NOT_NULL(o->step);
        sr_loss_kind k;
        CU_ASSERT(sr_loss_kind_parse(o->name, &k) && k == o->kind);
        CU_ASSERT_STRING_EQUAL(sr_loss_kind_name(o->kind), o->name);
        for (size_t j = 0; j < i; j++) CU_ASSERT(strcmp(sr_loss_ops_at(j)->name, o->name) != 0);
    }
    CU_ASSERT_EQUAL(n, 8);
    CU_ASSERT_PTR_NULL(sr_loss_ops_find("softmaxx"));
}

static void test_help_lists_names(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sr_config_print_help(f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "one of softmax|ssm|nce|bpr|hsm|sparsemax|entmax|rankmax\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "one of uniform|popularity|inbatch|dynamic\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "one of uniform|popularity\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "one of mf|sasrec|lightgcn\n"));
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++) {
        char line[512];
        snprintf(line, sizeof line, "      %-12s %s\n", o->name, o->help);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
    }
    const char *name, *help;
    for (size_t i = 0; (name = sr_proposal_choice(i, &help)) != NULL; i++) {
        char line[512];
        snprintf(line, sizeof line, "      %-12s %s\n", name, help);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
    }
    free(text);
}

/* The messages of unknown loss.name / loss.proposal / loss.dns_base values
 * are checked with the other config errors in test_core.c. */
static void test_unknown_name_at_create(void)
{
    /* A name that bypassed config reaches sr_loss_create (before any use of c). */
    sr_config c;
    sr_config_defaults(&c);
    snprintf(c.loss_name, sizeof c.loss_name, "%s", "nope");
    sr_loss_init in = {NULL, &c, NULL, NULL, NULL, 1, 1, NULL};
    sr_loss *l = (sr_loss *)&c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_loss_create(&l, &in, &e), SR_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(l);
    CU_ASSERT_STRING_EQUAL(e.msg, "loss.name: unknown loss 'nope'");
}

/* loss.precision = bf16 with any loss but the exact softmax: refused at
 * create, before the loss touches c, with the exact text. */
static void test_bf16_only_softmax(void)
{
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++) {
        if (o->kind == SR_LOSS_SOFTMAX) continue;
        sr_config c;
        sr_config_defaults(&c);
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_config_set(&c, "loss.name", o->name, "test", &e), SR_OK);
        CU_ASSERT_EQUAL_FATAL(sr_config_set(&c, "loss.precision", "bf16", "test", &e), SR_OK);
        sr_loss_init in = {NULL, &c, NULL, NULL, NULL, 1, 1, NULL};
        sr_loss *l = NULL;
        CU_ASSERT_EQUAL(sr_loss_create(&l, &in, &e), SR_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(l);
        char want[256];
        snprintf(want, sizeof want,
                 "loss.precision = bf16 applies to loss.name = softmax only (the fused exact softmax kernels); "
                 "loss.name = %s computes in fp32", o->name);
        CU_ASSERT_STRING_EQUAL(e.msg, want);
    }
}

enum { N = 23, B = 5, D = 4 };

static void test_create_every_loss(void)
{
    sr_rng r;
    sr_rng_init(&r, 7, 0, 1);
    float q[B * D], v[N * D], dq[B * D];
    int64_t tg[B], pop[N];
    for (int i = 0; i < B * D; i++) q[i] = (float)(0.5 * sr_rng_normal(&r));
    for (int i = 0; i < N * D; i++) v[i] = (float)(0.5 * sr_rng_normal(&r));
    for (int i = 0; i < B; i++) tg[i] = (int64_t)sr_rng_below(&r, N);
    for (int j = 0; j < N; j++) pop[j] = 1 + j % 5;
    sr_comm comm;
    sr_error ce;
    sr_error_clear(&ce);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&comm, MPI_COMM_WORLD, &ce), SR_OK);
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++) {
        sr_error e;
        sr_error_clear(&e);
        sr_shard s;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, N, 1, NULL, &e), SR_OK);
        sr_config cfg;
        sr_config_defaults(&cfg);
        CU_ASSERT_EQUAL_FATAL(sr_config_set(&cfg, "loss.name", o->name, "test", &e), SR_OK);
        cfg.loss_negatives = 6;
        sr_optim opt;
        CU_ASSERT_EQUAL_FATAL(sr_optim_from_config(&opt, &cfg, &e), SR_OK);
        sr_mem mem;
        sr_mem_init(&mem, 0);
        sr_loss_init in = {&comm, &cfg, &s, pop, &opt, B, D, &mem};
        sr_loss *l = NULL;
        CU_ASSERT_EQUAL_FATAL(sr_loss_create(&l, &in, &e), SR_OK);
        CU_ASSERT_STRING_EQUAL(sr_loss_name(l), o->name);
        CU_ASSERT_EQUAL(sr_loss_get_kind(l), o->kind);
        sr_item_grad dv;
        double loss = -1.0;
        CU_ASSERT_EQUAL(sr_loss_step(l, q, B, v, tg, 1, &loss, dq, &dv, &e), SR_OK);
        CU_ASSERT(loss >= 0.0 && loss < 1e3);
        sr_loss_update_params(l, 1);
        sr_loss_set_lr(l, 0.01);
        const sr_shard *map = &s;
        int64_t nl = -1;
        float *w = sr_loss_params(l, &map, &nl);
        CU_ASSERT_EQUAL(w != NULL, o->params != NULL);
        CU_ASSERT_EQUAL(sr_loss_param_state(l) != NULL, o->param_state != NULL);
        if (!w) CU_ASSERT(map == NULL && nl == 0);
        CU_ASSERT_EQUAL(sr_loss_scores_by_dot(l), o->eval_scores == NULL);
        CU_ASSERT_EQUAL(sr_loss_eval_prepare(l, &e), SR_OK);
        if (!sr_loss_scores_by_dot(l)) {
            float sc[B * N];
            sr_loss_eval_scores(l, q, B, D, 0, N, sc);
            for (int k = 0; k < B * N; k++) CU_ASSERT(sc[k] <= 0.0f); /* log-probabilities */
        }
        sr_loss_destroy(&l);
        CU_ASSERT_PTR_NULL(l);
        CU_ASSERT_EQUAL(mem.current, 0);
        CU_ASSERT_EQUAL(mem.allocs, 0);
        sr_shard_destroy(&s);
    }
    sr_comm_destroy(&comm);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("losses_registry", NULL, NULL);
    CU_add_test(s, "names_are_config_choices", test_names_are_config_choices);
    CU_add_test(s, "help_lists_names", test_help_lists_names);
    CU_add_test(s, "unknown_name_at_create", test_unknown_name_at_create);
    CU_add_test(s, "bf16_only_softmax", test_bf16_only_softmax);
    CU_add_test(s, "create_every_loss", test_create_every_loss);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
