/* softrec: the command-line entry point. One table of commands; the
 * parsing, --help, the exit codes and MPI start-up (only for commands that
 * need it) are src/cli/cli.c, the commands src/cli/<command>_cmd.c. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    static const sr_cli_command *const commands[] = {
        &sr_cli_data_convert, &sr_cli_data_synth, &sr_cli_data_info, &sr_cli_data_reorder,
        &sr_cli_train, &sr_cli_eval, &sr_cli_export, &sr_cli_recommend, &sr_cli_checkpoint_verify,
        &sr_cli_analyze_lse_bias, &sr_cli_analyze_jacobian,
        &sr_cli_help, &sr_cli_version,
    };
    return sr_cli_main(commands, sizeof commands / sizeof *commands, argc, argv);
}
