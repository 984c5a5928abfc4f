/* train_cmd.c: "softrec train" and "softrec eval". */
#include "train/train_cmd.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "io/ckpt_dir.h"
#include "train/train.h"

static void train_usage(FILE *out)
{
    fprintf(out,
            "usage: softrec train [--config FILE.ini] [--set key=value]...\n"
            "  Trains the model on data.path; writes run.dir/{config.ini,metrics.jsonl,model.h5};\n"
            "  the last stdout line is one JSON object with the test metrics.\n"
            "  'softrec help config' lists every key.\n"
            "usage: softrec eval --checkpoint MODEL.h5 [--dataset DATA.h5] [--split valid|test] [--set key=value]...\n"
            "  Full-ranking metrics of a saved model; prints one JSON object.\n");
}

/* Shared option parsing: --config and --set apply in command-line order
 * after the defaults (a later --set wins). */
static sr_status parse_common(int argc, char **argv, int i, sr_config *cfg, int *used, sr_error *err)
{
    if (!strcmp(argv[i], "--config")) {
        if (i + 1 >= argc) SR_FAIL(err, SR_ERR_USAGE, "--config needs a file");
        SR_TRY(sr_config_load_file(cfg, argv[i + 1], err));
        *used = 2;
        return SR_OK;
    }
    if (!strcmp(argv[i], "--set")) {
        if (i + 1 >= argc) SR_FAIL(err, SR_ERR_USAGE, "--set needs key=value");
        SR_TRY(sr_config_set_assignment(cfg, argv[i + 1], err));
        *used = 2;
        return SR_OK;
    }
    if (!strncmp(argv[i], "--set=", 6)) {
        SR_TRY(sr_config_set_assignment(cfg, argv[i] + 6, err));
        *used = 1;
        return SR_OK;
    }
    *used = 0;
    return SR_OK;
}

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

sr_status sr_cmd_train(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_config cfg;
    sr_config_defaults(&cfg);
    for (int i = 1; i < argc && err->code == SR_OK;) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (c->rank == 0) train_usage(stdout);
            return SR_OK;
        }
        int used = 0;
        if (parse_common(argc, argv, i, &cfg, &used, err) != SR_OK) break;
        if (!used) {
            sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "train: unknown option '%s' (see softrec train --help)", argv[i]);
            break;
        }
        i += used;
    }
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
    if (res.stopped) { /* preempted: the checkpoint is committed; no result row */
        if (c->rank == 0)
            fprintf(stderr, "softrec: stopped by signal %d; resume with --set train.resume=auto (run.dir %s)\n",
                    res.stopped, cfg.run_dir);
        return SR_OK;
    }
    if (c->rank == 0) print_result_row(c, &cfg, &res);
    return SR_OK;
}

sr_status sr_trainer_open_checkpoint(const sr_comm *c, const char *ckpt, const char *dataset,
                                    char **sets, int nsets, sr_config *cfg, sr_trainer **out,
                                    sr_error *err)
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
    for (int i = 0; i < nsets && st == SR_OK; i++) st = sr_config_set_assignment(cfg, sets[i], err);
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

sr_status sr_cmd_eval(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_config cfg;
    sr_config_defaults(&cfg);
    const char *ckpt = NULL, *dataset = NULL;
    int split = 2;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    if (!sets) SR_FAIL(err, SR_ERR_NOMEM, "out of memory");
    for (int i = 1; i < argc && err->code == SR_OK; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (c->rank == 0) train_usage(stdout);
            free(sets);
            return SR_OK;
        } else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) {
            ckpt = argv[++i];
        } else if (!strcmp(argv[i], "--dataset") && i + 1 < argc) {
            dataset = argv[++i];
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "valid")) split = 1;
            else if (!strcmp(argv[i], "test")) split = 2;
            else sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "eval: --split must be valid or test, not '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else {
            sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "eval: unknown or incomplete option '%s' (see softrec eval --help)", argv[i]);
        }
    }
    if (err->code == SR_OK && !ckpt)
        sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "eval: --checkpoint is required");
    if (sr_comm_agree(c, err) != SR_OK) {
        free(sets);
        return err->code;
    }
    sr_trainer *t = NULL;
    sr_status st = sr_trainer_open_checkpoint(c, ckpt, dataset, sets, nsets, &cfg, &t, err);
    free(sets);
    if (st != SR_OK) return st;
    sr_eval_result res;
    st = sr_trainer_evaluate(t, split, &res, err);
    sr_trainer_destroy(&t);
    if (st != SR_OK) return st;
    if (c->rank == 0) {
        char js[1024];
        sr_eval_result_json(&res, js, sizeof js);
        printf("{\"%s\": %s, \"checkpoint\": \"%s\", \"dataset\": \"%s\", \"ranks\": %d, \"seconds\": %.3f}\n",
               split == 1 ? "valid" : "test", js, ckpt, cfg.data_path, c->size, res.seconds);
        fflush(stdout);
    }
    return SR_OK;
}

sr_status sr_cmd_checkpoint(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    if (argc != 3 || strcmp(argv[1], "verify")) {
        if (c->rank == 0)
            fprintf(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
                    "usage: softrec checkpoint verify FILE.h5|RUN_DIR\n"
                    "  Checks every table and state entry of a checkpoint against its SHA-256 digests;\n"
                    "  for a run directory, the checkpoint its checkpoints/latest names.\n");
        if (argc >= 2 && !strcmp(argv[1], "--help")) return SR_OK;
        SR_FAIL(err, SR_ERR_USAGE, "checkpoint: expected 'verify FILE.h5|RUN_DIR'");
    }
    char path[SR_CONFIG_PATH_MAX + 128];
    struct stat sb;
    if (stat(argv[2], &sb) == 0 && S_ISDIR(sb.st_mode)) {
        SR_TRY(sr_ckpt_dir_latest(c, argv[2], path, sizeof path, err));
        if (!path[0]) SR_FAIL(err, SR_ERR_IO, "%s: no committed checkpoint in %s/checkpoints", argv[2], argv[2]);
    } else {
        snprintf(path, sizeof path, "%s", argv[2]);
    }
    SR_TRY(sr_ckpt_verify(c, path, err));
    if (c->rank == 0) printf("{\"checkpoint\": \"%s\", \"verified\": true}\n", path);
    return SR_OK;
}
