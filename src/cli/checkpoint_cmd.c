/* checkpoint_cmd.c: "softrec checkpoint verify FILE.h5|RUN_DIR" (cli.h). */
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
    SR_TRY(sr_ckpt_verify(c, path, err));
    if (c->rank == 0) printf("{\"checkpoint\": \"%s\", \"verified\": true}\n", path);
    return SR_OK;
}

static const sr_cli_option verify_options[] = {
    SR_CLI_OPERAND("FILE.h5|RUN_DIR", verify_opts, path, true),
    SR_CLI_END,
};

const sr_cli_command sr_cli_checkpoint_verify = {
    .group = "checkpoint",
    .name = "verify",
    .summary = "check a checkpoint (file or run directory) against its SHA-256 digests",
    .usage = "usage: softrec checkpoint verify FILE.h5|RUN_DIR\n"
             "  Checks every table and state entry of a checkpoint against its SHA-256 digests;\n"
             "  for a run directory, the checkpoint its checkpoints/latest names. Prints\n"
             "  {\"checkpoint\": PATH, \"verified\": true}; a mismatch exits 5 (data), a missing\n"
             "  or unreadable file 4 (I/O).\n",
    .options = verify_options,
    .opts_size = sizeof(verify_opts),
    .needs_mpi = true,
    .run = verify_run,
};
