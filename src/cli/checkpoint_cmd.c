/* checkpoint_cmd.c: "softrec checkpoint verify FILE.h5|RUN_DIR" (cli.h). */
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "io/checkpoint.h"
#include "io/ckpt_dir.h"

typedef struct verify_opts {
    const char *path;
} verify_opts;

static sr_status verify_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const char *arg = ((const verify_opts *)opts)->path;
    char path[SR_CONFIG_PATH_MAX + 128];
    struct stat sb;
    if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        SR_TRY(sr_ckpt_dir_latest(c, arg, path, sizeof path, err));
        if (!path[0]) SR_FAIL(err, SR_ERR_IO, "%s: no committed checkpoint in %s/checkpoints", arg, arg);
    } else {
        snprintf(path, sizeof path, "%s", arg);
    }
    /* The checks a resume runs on this file, through the same code. */
    sr_ckpt_info info;
    int had = 0;
    SR_TRY(sr_ckpt_dir_verify(c, path, &info, &had, err));
    sr_ckpt_info_free(&info);
    if (c->rank == 0) {
        json_t *row = json_object();
        json_object_set_new(row, "checkpoint", json_string(path));
        json_object_set_new(row, "verified", json_true());
        json_object_set_new(row, "step", json_integer(info.step));
        json_object_set_new(row, "file_digest", json_boolean(had));
        sr_cli_print_json(row);
    }
    return SR_OK;
}

static const sr_cli_option verify_options[] = {
    SR_CLI_OPERAND("FILE.h5|RUN_DIR", verify_opts, path, true),
    SR_CLI_END,
};

const sr_cli_command sr_cli_checkpoint_verify = {
    .group = "checkpoint",
    .name = "verify",
    .summary = "run the checks a resume runs on a checkpoint (file or run directory)",
    .usage = "usage: softrec checkpoint verify FILE.h5|RUN_DIR\n"
             "  Runs exactly the checks train.resume=auto runs on a checkpoint: schema, every\n"
             "  table's block digests, every /state entry's digest, the whole-file digest and\n"
             "  size (FILE.h5.sha256); for a run directory, the checkpoint its\n"
             "  checkpoints/latest names. Prints {\"checkpoint\": PATH, \"verified\": true,\n"
             "  \"step\": S, \"file_digest\": true|false} (false: no digest file, a warning);\n"
             "  a damaged file exits 5 (data), a missing or unreadable one 4 (I/O).\n",
    .options = verify_options,
    .opts_size = sizeof(verify_opts),
    .needs_mpi = true,
    .run = verify_run,
};
