/* test_trainer.c: the trainer through the backbone interface, with the toy
 * backbone of docs/design.md (tests/mpi/toy_backbone.c). The loop calls the
 * hooks in order (prepare before every step's queries, one update a step);
 * the toy's loss falls and its test metrics beat a random ranking; a run
 * stopped after 2 epochs and resumed to 4 keeps every metrics line from
 * epoch 1 and ends with the same tables as an uninterrupted run; an
 * unknown model.name is an error naming the registered ones. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "harness.h"
#include "io/dataset.h"
#include "toy_backbone.h"
#include "train/guard.h"
#include "train/train.h"

#define USERS 48
#define ITEMS 30

/* Rank 0 writes a dataset where popularity carries the signal: items 0-9
 * are popular, 10-29 rare. User u trains on 4 popular items at even
 * offsets from u and one rare item; its valid and test items are popular
 * ones at odd offsets. After masking, a popularity ranking puts the test
 * item among the 4 popular unknown items; a random one ranks 24 items. */
static void write_dataset(const char *path)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_test_rank() == 0) {
        int64_t ip[3][USERS + 1], it[3][USERS * 5];
        ip[0][0] = ip[1][0] = ip[2][0] = 0;
        for (int64_t u = 0; u < USERS; u++) {
            int64_t n = ip[0][u];
            for (int64_t j = 0; j < 4; j++) it[0][n++] = (u + 2 * j) % 10;
            it[0][n++] = 10 + u % 20;
            ip[0][u + 1] = n;
            it[1][u] = (u + 1) % 10, ip[1][u + 1] = u + 1;
            it[2][u] = (u + 3) % 10, ip[2][u + 1] = u + 1;
        }
        const int64_t *const ipp[3] = {ip[0], ip[1], ip[2]}, *const itp[3] = {it[0], it[1], it[2]};
        sr_dataset_attrs a = {"toy", "synthetic", "", "given", 0, 0, NULL};
        sr_dataset_writer *w = NULL;
        remove(path);
        CU_ASSERT_EQUAL_FATAL(sr_dataset_writer_create(&w, path, USERS, ITEMS, &a, &e), SR_OK);
        CU_ASSERT_EQUAL(sr_dataset_writer_append(w, USERS, ipp, itp, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL(sr_dataset_writer_commit(w, &e), SR_OK);
        sr_dataset_writer_abort(&w);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void toy_config(sr_config *cfg, const char *data, const char *run, int64_t epochs)
{
    sr_config_defaults(cfg);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", sr_test_tmpdir(), run);
    if (sr_test_rank() == 0 && system(cmd) != 0) fprintf(stderr, "cannot clear %s\n", run);
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(cfg->data_path, sizeof cfg->data_path, "%s", data);
    snprintf(cfg->run_dir, sizeof cfg->run_dir, "%s/%s", sr_test_tmpdir(), run);
    snprintf(cfg->model_name, sizeof cfg->model_name, "toy");
    cfg->model_dim = 4;
    cfg->train_epochs = epochs;
    cfg->train_batch_size = 32;
    cfg->train_lr = 1.0;
    cfg->train_shuffle = false; /* the same batches at any rank count */
    cfg->eval_topk[0] = 5;
    cfg->eval_topk_count = 1;
    snprintf(cfg->optim_name, sizeof cfg->optim_name, "sgd");
    cfg->run_progress_every = 1e9;
}

static sr_status fit(const sr_comm *c, const sr_config *cfg, sr_fit_result *res, toy_bb *calls)
{
    sr_error e;
    sr_error_clear(&e);
    sr_trainer *t = NULL;
    sr_guard *g = NULL; /* as train does: start-up watched, destroyed after the trainer */
    sr_status st = sr_guard_create(&g, c, cfg->train_watchdog_factor, cfg->train_watchdog_min_seconds, &e);
    if (st == SR_OK) sr_guard_watch(g, SR_GUARD_START, 0);
    if (st == SR_OK) st = sr_trainer_create_with(&t, c, cfg, &toy_backbone, &e);
    if (st == SR_OK) st = sr_trainer_fit(t, g, res, &e);
    if (st == SR_OK && calls) *calls = *(toy_bb *)sr_trainer_backbone(t);
    if (st != SR_OK && c->rank == 0) fprintf(stderr, "fit: %s\n", e.msg);
    sr_trainer_destroy(&t);
    sr_guard_destroy(&g);
    return st;
}

/* metrics.jsonl: how many lines name epoch e (e = 0: final lines), and the
 * loss of each epoch line. */
static int count_lines(const char *run_dir, int64_t e, double *loss)
{
    char path[2048], line[4096], want[64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    snprintf(want, sizeof want, e ? "{\"epoch\": %lld," : "{\"final\": true", (long long)e);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want))) {
            n++;
            const char *p = strstr(line, "\"loss\": ");
            if (loss && p) *loss = atof(p + 8);
        }
    fclose(f);
    return n;
}

/* The communicator and the dataset of a test. */
static void setup(sr_comm *c, char *data, size_t len)
{
    sr_error e;
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(c, MPI_COMM_WORLD, &e), SR_OK);
    snprintf(data, len, "%s/toy.h5", sr_test_tmpdir());
    write_dataset(data);
}

static void test_hooks_and_learning(void)
{
    sr_comm c;
    char data[1024];
    setup(&c, data, sizeof data);
    sr_config cfg;
    toy_config(&cfg, data, "fit", 6);
    sr_fit_result res;
    toy_bb calls;
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &res, &calls), SR_OK);
    /* 240 train examples / batch 32 = 8 steps an epoch */
    CU_ASSERT_EQUAL(res.steps, 6 * 8);
    CU_ASSERT_EQUAL(calls.queries, res.steps);
    CU_ASSERT_EQUAL(calls.updates, res.steps);
    CU_ASSERT_EQUAL(calls.out_of_order, 0);
    CU_ASSERT(calls.prepares >= res.steps + 6 + 1); /* every step, every validation, the test */
    CU_ASSERT_EQUAL(res.test.users, USERS);
    if (c.rank == 0) {
        double first = 0, last = 0;
        CU_ASSERT_EQUAL(count_lines(cfg.run_dir, 1, &first), 1);
        CU_ASSERT_EQUAL(count_lines(cfg.run_dir, 6, &last), 1);
        CU_ASSERT(last < first - 0.05);
    }
    /* A random ranking puts the test item in the top 5 for 5 / 24 of the
     * users; popularity for nearly all. */
    CU_ASSERT(res.test.recall[0] > 0.8);
    sr_comm_destroy(&c);
}

/* One table of a model file, read whole (rank 0). */
static float *read_table(const char *path, const char *name, int64_t n)
{
    float *v = calloc((size_t)n, sizeof *v);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (f < 0 || d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) free(v), v = NULL;
    H5Dclose(d);
    H5Fclose(f);
    return v;
}

static void test_resume_keeps_metrics(void)
{
    sr_comm c;
    char data[1024];
    setup(&c, data, sizeof data);
    sr_config cfg;
    sr_fit_result res;
    toy_config(&cfg, data, "whole", 4);
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &res, NULL), SR_OK);
    const sr_eval_result whole = res.test;
    toy_config(&cfg, data, "resumed", 2);
    snprintf(cfg.train_resume, sizeof cfg.train_resume, "auto");
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &res, NULL), SR_OK);
    CU_ASSERT_EQUAL(res.resumed_from[0], '\0');
    cfg.train_epochs = 4; /* the same run.dir: continues after epoch 2 */
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &res, NULL), SR_OK);
    CU_ASSERT_NOT_EQUAL(res.resumed_from[0], '\0');
    CU_ASSERT_EQUAL(res.test.ndcg[0], whole.ndcg[0]);
    if (c.rank == 0) {
        for (int64_t ep = 1; ep <= 4; ep++) CU_ASSERT_EQUAL(count_lines(cfg.run_dir, ep, NULL), 1);
        CU_ASSERT_EQUAL(count_lines(cfg.run_dir, 0, NULL), 2); /* one per run */
        char a[2048], b[2048];
        snprintf(a, sizeof a, "%s/whole/model.h5", sr_test_tmpdir());
        snprintf(b, sizeof b, "%s/model.h5", cfg.run_dir);
        const char *names[2] = {"/model/item_embedding", "/model/toy_query"};
        const int64_t sizes[2] = {ITEMS * 4, 4};
        for (int k = 0; k < 2; k++) {
            float *x = read_table(a, names[k], sizes[k]), *y = read_table(b, names[k], sizes[k]);
            CU_ASSERT_FATAL(x && y);
            CU_ASSERT_EQUAL(memcmp(x, y, (size_t)sizes[k] * sizeof(float)), 0);
            free(x), free(y);
        }
    }
    sr_comm_destroy(&c);
}

/* Early stopping and the best-validation model: the run stops
 * train.early_stop_patience validations after its best, run.dir/best.h5
 * holds that epoch's model, and the reported test metrics are that model's
 * (the last epoch's beside them). */
static void test_model_selection(void)
{
    sr_comm c;
    char data[1024];
    setup(&c, data, sizeof data);
    sr_config cfg;
    sr_fit_result res;
    toy_config(&cfg, data, "select", 40);
    cfg.train_early_stop_patience = 2;
    snprintf(cfg.eval_valid_metric, sizeof cfg.eval_valid_metric, "mrr@5");
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &res, NULL), SR_OK);
    CU_ASSERT(res.best_epoch >= 1);
    CU_ASSERT_EQUAL(res.stopped_early, res.best_epoch + 2); /* validation every epoch */
    CU_ASSERT_EQUAL(res.epochs, res.stopped_early);
    CU_ASSERT(res.epochs < 40);
    CU_ASSERT_EQUAL(res.test_epoch, res.best_epoch);
    /* best.h5 is the best epoch's model: loaded into a fresh trainer, it
     * gives the reported test metrics; model.h5 gives the last epoch's. */
    sr_error e;
    sr_error_clear(&e);
    const char *files[2] = {"best.h5", "model.h5"};
    const sr_eval_result *want[2] = {&res.test, &res.test_last};
    for (int k = 0; k < 2; k++) {
        sr_trainer *t = NULL;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", cfg.run_dir, files[k]);
        CU_ASSERT_EQUAL_FATAL(sr_trainer_create_with(&t, &c, &cfg, &toy_backbone, &e), SR_OK);
        CU_ASSERT_EQUAL(sr_trainer_load(t, path, &e), SR_OK);
        sr_eval_result r;
        CU_ASSERT_EQUAL(sr_trainer_evaluate(t, SR_SPLIT_TEST, &r, &e), SR_OK);
        CU_ASSERT_EQUAL(r.ndcg[0], want[k]->ndcg[0]);
        CU_ASSERT_EQUAL(r.mrr[0], want[k]->mrr[0]);
        sr_trainer_destroy(&t);
    }
    /* A resume of the early-stopped run trains nothing and reports the same
     * rows (before, it trained on from the stop: seeds sweeps re-ran
     * finished seeds); a larger patience continues it. */
    snprintf(cfg.train_resume, sizeof cfg.train_resume, "auto");
    sr_fit_result again;
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &again, NULL), SR_OK);
    CU_ASSERT_EQUAL(again.steps, 0);
    CU_ASSERT_EQUAL(again.stopped_early, res.stopped_early);
    CU_ASSERT_EQUAL(again.epochs, res.epochs);
    CU_ASSERT_EQUAL(again.best_epoch, res.best_epoch);
    CU_ASSERT_EQUAL(again.test_epoch, res.test_epoch);
    CU_ASSERT_EQUAL(again.test.ndcg[0], res.test.ndcg[0]);
    CU_ASSERT_EQUAL(again.test_last.ndcg[0], res.test_last.ndcg[0]);
    CU_ASSERT_EQUAL(again.best_valid.users, res.best_valid.users); /* measured again, the same */
    CU_ASSERT_EQUAL(again.best_valid.mrr[0], res.best_valid.mrr[0]);
    cfg.train_early_stop_patience = 40;
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &again, NULL), SR_OK);
    CU_ASSERT(again.steps > 0);
    CU_ASSERT(again.epochs > res.epochs);
    /* eval.test_model = last reports the last epoch's model */
    toy_config(&cfg, data, "select-last", 40);
    cfg.train_early_stop_patience = 2;
    snprintf(cfg.eval_valid_metric, sizeof cfg.eval_valid_metric, "mrr@5");
    snprintf(cfg.eval_test_model, sizeof cfg.eval_test_model, "last");
    sr_fit_result last;
    CU_ASSERT_EQUAL_FATAL(fit(&c, &cfg, &last, NULL), SR_OK);
    CU_ASSERT_EQUAL(last.test_epoch, last.epochs);
    CU_ASSERT_EQUAL(last.test.ndcg[0], res.test_last.ndcg[0]);
    sr_comm_destroy(&c);
}

static void test_unknown_backbone(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    sr_config cfg;
    toy_config(&cfg, "unused.h5", "none", 1);
    sr_trainer *t = NULL;
    CU_ASSERT_EQUAL(sr_trainer_create(&t, &c, &cfg, &e), SR_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_STRING_EQUAL(e.msg, "model.name = 'toy': not one of mf|sasrec|lightgcn");
    sr_comm_destroy(&c);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("trainer", NULL, NULL);
    CU_add_test(s, "hooks_and_learning", test_hooks_and_learning);
    CU_add_test(s, "resume_keeps_metrics", test_resume_keeps_metrics);
    CU_add_test(s, "model_selection", test_model_selection);
    CU_add_test(s, "unknown_backbone", test_unknown_backbone);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
