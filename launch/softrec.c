/* softrec: the command-line entry point. It initialises MPI, dispatches to
 * a subcommand and turns an agreed error into one message and one exit code
 * on every rank. The subcommands live with their modules:
 *   data convert|synth|info   src/io/data_cmd.c
 *   train, eval               src/train/train_cmd.c
 *   analyze                   src/train/analyze_cmd.c */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "comm/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "io/data_cmd.h"
#include "train/analyze_cmd.h"
#include "train/train_cmd.h"

static void usage(FILE *out)
{
    fprintf(out,
            "softrec %s: softmax-family losses for recommendation on MPI\n"
            "\n"
            "usage: softrec COMMAND [options]\n"
            "  data convert   raw ratings/sequence files -> HDF5 dataset\n"
            "  data synth     planted synthetic dataset (millions of items)\n"
            "  data info      statistics of an HDF5 dataset (--json)\n"
            "  train          train a model (--config FILE.ini, --set key=value)\n"
            "  eval           full-ranking metrics of a checkpoint\n"
            "  checkpoint     verify a checkpoint (file or run directory) against its digests\n"
            "  analyze        lse-bias | jacobian of a checkpoint (bias of sampled log Z,\n"
            "                 spectral norms of the prediction maps)\n"
            "  help config    every configuration key with default, bounds and help\n"
            "  version        print the version\n"
            "Run under mpirun for more than one rank. 'softrec COMMAND --help' for details.\n",
            SOFTREC_VERSION);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sr_error err;
    sr_error_clear(&err);
    sr_comm comm;
    if (sr_comm_init(&comm, MPI_COMM_WORLD, &err) != SR_OK) sr_panic(__FILE__, __LINE__, "%s", err.msg);

    sr_status st = SR_OK;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc >= 3 && !strcmp(argv[1], "help") && !strcmp(argv[2], "config")) {
            if (comm.rank == 0) sr_config_print_help(stdout);
        } else if (argc < 2) {
            if (comm.rank == 0) usage(stderr);
            sr_error_set(&err, SR_ERR_USAGE, __FILE__, __LINE__, "no command given");
            st = SR_ERR_USAGE;
        } else if (comm.rank == 0) {
            usage(stdout);
        }
    } else if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        if (comm.rank == 0) printf("softrec %s\n", SOFTREC_VERSION);
    } else if (!strcmp(argv[1], "data")) {
        st = sr_cmd_data(&comm, argc - 2, argv + 2, &err);
    } else if (!strcmp(argv[1], "train")) {
        st = sr_cmd_train(&comm, argc - 1, argv + 1, &err);
    } else if (!strcmp(argv[1], "eval")) {
        st = sr_cmd_eval(&comm, argc - 1, argv + 1, &err);
    } else if (!strcmp(argv[1], "checkpoint")) {
        st = sr_cmd_checkpoint(&comm, argc - 1, argv + 1, &err);
    } else if (!strcmp(argv[1], "analyze")) {
        st = sr_cmd_analyze(&comm, argc - 1, argv + 1, &err);
    } else {
        if (comm.rank == 0) usage(stderr);
        st = sr_error_set(&err, SR_ERR_USAGE, __FILE__, __LINE__, "unknown command '%s'", argv[1]);
    }
    if (st != SR_OK) sr_comm_exit(&comm, &err);
    sr_comm_destroy(&comm);
    MPI_Finalize();
    return 0;
}
