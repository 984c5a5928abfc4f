/* train_cmd.c: "softrec train" and "softrec eval". */
#include "train/train_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "io/checkpoint.h"
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
    sr_eval_result test;
    double secs = 0;
    sr_status st = sr_trainer_fit(t, &test, &secs, err);
    sr_trainer_destroy(&t);
    if (st != SR_OK) return st;
    if (c->rank == 0) {
        char js[1024];
        sr_eval_result_json(&test, js, sizeof js);
        printf("{\"test\": %s, \"train_seconds\": %.3f, \"epochs\": %lld, \"ranks\": %d, "
               "\"model\": \"%s\", \"loss\": \"%s\", \"dataset\": \"%s\", \"run_dir\": \"%s\"}\n",
               js, secs, (long long)cfg.train_epochs, c->size, cfg.model_name, cfg.loss_name,
               cfg.data_path, cfg.run_dir);
        fflush(stdout);
    }
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
    /* The checkpoint carries the config it was trained with; read its
     * attributes first (no tables), then apply the overrides. */
    sr_ckpt_info info;
    sr_status st = sr_ckpt_read(c, ckpt, NULL, 0, &info, err);
    if (st == SR_OK && info.config_ini)
        st = sr_config_load_string(&cfg, info.config_ini, ckpt, err);
    if (st == SR_OK) free(info.config_ini);
    if (st == SR_OK && dataset) st = sr_config_set(&cfg, "data.path", dataset, "--dataset", err);
    for (int i = 0; i < nsets && st == SR_OK; i++) st = sr_config_set_assignment(&cfg, sets[i], err);
    free(sets);
    if (st == SR_OK) {
        /* Evaluation starts from the checkpoint, never from train.init. */
        cfg.train_init[0] = '\0';
    }
    st = sr_comm_agree(c, err);
    if (st != SR_OK) return st;
    sr_trainer *t = NULL;
    SR_TRY(sr_trainer_create(&t, c, &cfg, err));
    sr_eval_result res;
    st = sr_trainer_load(t, ckpt, err);
    if (st == SR_OK) st = sr_trainer_evaluate(t, split, &res, err);
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
