/* train_cmd.c: "softrec train" and "softrec eval" (cli.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "train/train.h"

/* The result row: one JSON object, the last line on stdout (launch/report
 * and the slurm studies collect these). */
static void print_result_row(const sr_comm *c, const sr_config *cfg, const sr_fit_result *res)
{
    /* Metrics in the same text as metrics.jsonl and `softrec eval` print
     * (sr_eval_result_json), the rest through jansson. */
    char tj[1024], vj[1024];
    sr_eval_result_json(&res->test, tj, sizeof tj);
    sr_eval_result_json(&res->best_valid, vj, sizeof vj);
    json_t *row = json_object(), *conf = json_object();
    size_t nkeys = 0;
    const sr_config_key *keys = sr_config_table(&nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        char val[SR_CONFIG_PATH_MAX];
        if (sr_config_get(cfg, keys[i].name, val, sizeof val))
            json_object_set_new(conf, keys[i].name, json_string(val));
    }
    const char *th = getenv("OPENBLAS_NUM_THREADS");
    json_object_set_new(row, "best_epoch", json_integer(res->best_epoch));
    json_object_set_new(row, "train_seconds", json_real(res->train_seconds));
    json_object_set_new(row, "epoch_seconds", json_real(res->epoch_seconds));
    json_object_set_new(row, "epochs", json_integer(res->epochs));
    json_object_set_new(row, "steps", json_integer(res->steps));
    json_object_set_new(row, "ranks", json_integer(c->size));
    json_object_set_new(row, "threads", json_integer(th ? atoi(th) : 0));
    json_object_set_new(row, "model", json_string(cfg->model_name));
    json_object_set_new(row, "loss", json_string(cfg->loss_name));
    json_object_set_new(row, "negatives", json_integer(cfg->loss_negatives));
    json_object_set_new(row, "proposal", json_string(cfg->loss_proposal));
    json_object_set_new(row, "dataset", json_string(cfg->data_path));
    json_object_set_new(row, "num_users", json_integer(res->num_users));
    json_object_set_new(row, "num_items", json_integer(res->num_items));
    json_object_set_new(row, "peak_mem_bytes", json_integer(res->peak_mem_bytes));
    json_object_set_new(row, "comm_bytes_per_step", json_integer(res->comm_bytes_per_step));
    if (res->full_table_bytes > 0) {
        json_object_set_new(row, "propagation_round_bytes", json_integer(res->round_bytes));
        json_object_set_new(row, "full_table_round_bytes", json_integer(res->full_table_bytes));
    }
    json_object_set_new(row, "run_dir", json_string(cfg->run_dir));
    json_object_set_new(row, "skipped_steps", json_integer(res->skipped_steps));
    json_object_set_new(row, "resumed_from", json_string(res->resumed_from));
    json_object_set_new(row, "version", json_string(SOFTREC_VERSION));
    json_object_set_new(row, "config", conf);
    char *txt = json_dumps(row, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    if (txt) {
        printf("{\"test\": %s, \"best_valid\": %s, %s\n", tj, vj, txt + 1);
        fflush(stdout);
        char path[SR_CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/result.json", cfg->run_dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "{\"test\": %s, \"best_valid\": %s, %s\n", tj, vj, txt + 1);
            fclose(f);
        }
        free(txt);
    }
    json_decref(row);
}

typedef struct train_opts {
    sr_cli_list sources; /* --config FILE and --set key=value, in command-line order */
} train_opts;

/* Defaults, then every --config and --set in command-line order (a later
 * one wins). */
static sr_status apply_sources(sr_config *cfg, const sr_cli_list *l, sr_error *err)
{
    for (int i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].opt, "config")) SR_TRY(sr_config_load_file(cfg, l->items[i].val, err));
        else SR_TRY(sr_config_set_assignment(cfg, l->items[i].val, err));
    }
    return SR_OK;
}

static sr_status train_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const train_opts *o = opts;
    sr_config cfg;
    sr_config_defaults(&cfg);
    (void)apply_sources(&cfg, &o->sources, err);
    SR_TRY(sr_comm_agree(c, err));
    if (c->rank == 0) {
        fprintf(stderr, "softrec: resolved config (%d ranks):\n", c->size);
        sr_config_print(&cfg, stderr);
    }
    sr_trainer *t = NULL;
    SR_TRY(sr_trainer_create(&t, c, &cfg, err));
    sr_fit_result res;
    sr_status st = sr_trainer_fit(t, &res, err);
    sr_trainer_destroy(&t);
    if (st != SR_OK) return st;
    if (res.stopped) /* preempted: the checkpoint is committed; no result row; exit code 11 */
        SR_FAIL(err, SR_STOPPED, "stopped by signal %d, checkpoint committed; resume with --set train.resume=auto "
                "(run.dir %s)", res.stopped, cfg.run_dir);
    if (c->rank == 0) print_result_row(c, &cfg, &res);
    return SR_OK;
}

sr_status sr_cli_open_checkpoint(const sr_comm *c, const char *ckpt, const char *dataset, const sr_cli_list *sets,
                                 sr_config *cfg, sr_trainer **out, sr_error *err)
{
    *out = NULL;
    /* The checkpoint carries the config it was trained with; read its
     * attributes first (no tables), then apply the overrides. */
    sr_config_defaults(cfg);
    sr_ckpt_info info;
    sr_status st = sr_ckpt_read(c, ckpt, NULL, 0, &info, err);
    if (st == SR_OK && info.config_ini) {
        st = sr_config_load_string(cfg, info.config_ini, ckpt, err);
        free(info.config_ini);
    }
    if (st == SR_OK && dataset) st = sr_config_set(cfg, "data.path", dataset, "--dataset", err);
    for (int i = 0; sets && i < sets->n && st == SR_OK; i++) st = sr_config_set_assignment(cfg, sets->items[i].val, err);
    cfg->train_init[0] = '\0'; /* the model comes from the checkpoint, never from train.init */
    SR_TRY(sr_comm_agree(c, err));
    sr_trainer *t = NULL;
    SR_TRY(sr_trainer_create(&t, c, cfg, err));
    if ((st = sr_trainer_load(t, ckpt, err)) != SR_OK) {
        sr_trainer_destroy(&t);
        return st;
    }
    *out = t;
    return SR_OK;
}

typedef struct eval_opts {
    const char *ckpt, *dataset, *split_name;
    sr_cli_list sets;
    int split; /* 1 valid, 2 test */
} eval_opts;

static sr_status eval_check(void *opts, sr_error *err)
{
    eval_opts *o = opts;
    if (!strcmp(o->split_name, "valid")) o->split = 1;
    else if (!strcmp(o->split_name, "test")) o->split = 2;
    else SR_FAIL(err, SR_ERR_USAGE, "eval: --split must be valid or test, not '%s'", o->split_name);
    return SR_OK;
}

static sr_status eval_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const eval_opts *o = opts;
    sr_config cfg;
    sr_trainer *t = NULL;
    SR_TRY(sr_cli_open_checkpoint(c, o->ckpt, o->dataset, &o->sets, &cfg, &t, err));
    sr_eval_result res;
    sr_status st = sr_trainer_evaluate(t, o->split, &res, err);
    sr_trainer_destroy(&t);
    if (st != SR_OK) return st;
    if (c->rank == 0) {
        char js[1024];
        sr_eval_result_json(&res, js, sizeof js);
        printf("{\"%s\": %s, \"checkpoint\": \"%s\", \"dataset\": \"%s\", \"ranks\": %d, \"seconds\": %.3f}\n",
               o->split == 1 ? "valid" : "test", js, o->ckpt, cfg.data_path, c->size, res.seconds);
        fflush(stdout);
    }
    return SR_OK;
}

/* ---- the descriptors ------------------------------------------------------- */

static const sr_cli_option train_options[] = {
    SR_CLI_LIST_OPT("config", train_opts, sources),
    SR_CLI_LIST_OPT("set", train_opts, sources),
    SR_CLI_END,
};

const sr_cli_command sr_cli_train = {
    .name = "train",
    .summary = "train a model (--config FILE.ini, --set key=value)",
    .usage = "usage: softrec train [--config FILE.ini] [--set key=value]...\n"
             "  Trains the model on data.path. --config and --set apply in command-line order\n"
             "  after the defaults (a later one wins); 'softrec help config' lists every key.\n"
             "  Writes run.dir/{config.ini,metrics.jsonl,model.h5,result.json} and checkpoints/;\n"
             "  the last stdout line is one JSON object with the test metrics (also result.json).\n"
             "  --config FILE.ini   INI file of keys ([train] epochs = 10 sets train.epochs)\n"
             "  --set key=value     one key (repeatable)\n",
    .options = train_options,
    .opts_size = sizeof(train_opts),
    .needs_mpi = true,
    .run = train_run,
};

static void eval_init(void *opts) { ((eval_opts *)opts)->split_name = "test"; }

static const sr_cli_option eval_options[] = {
    SR_CLI_STR_OPT("checkpoint", eval_opts, ckpt, true),
    SR_CLI_STR_OPT("dataset", eval_opts, dataset, false),
    SR_CLI_STR_OPT("split", eval_opts, split_name, false),
    SR_CLI_LIST_OPT("set", eval_opts, sets),
    SR_CLI_END,
};

const sr_cli_command sr_cli_eval = {
    .name = "eval",
    .summary = "full-ranking metrics of a checkpoint",
    .usage = "usage: softrec eval --checkpoint MODEL.h5 [--dataset DATA.h5] [--split valid|test] [--set key=value]...\n"
             "  Full-ranking metrics of a saved model (model.h5 or a checkpoint), built from the\n"
             "  config stored in it; prints one JSON object.\n"
             "  --checkpoint FILE   the model (required)\n"
             "  --dataset PATH      dataset (default: the data.path stored in the checkpoint)\n"
             "  --split S           valid or test (default test)\n"
             "  --set key=value     config override on top of the stored config (repeatable)\n",
    .options = eval_options,
    .opts_size = sizeof(eval_opts),
    .needs_mpi = true,
    .init = eval_init,
    .check = eval_check,
    .run = eval_run,
};
