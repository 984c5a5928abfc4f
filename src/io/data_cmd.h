/* data_cmd.h: "softrec data convert|synth|info|reorder". */
#ifndef SR_IO_DATA_CMD_H
#define SR_IO_DATA_CMD_H

#include "comm/comm.h"
#include "core/error.h"

/* argv[0] is the data subcommand ("convert", "synth", "info", "reorder"). Returns an
 * error agreed by all ranks. */
sr_status sr_cmd_data(const sr_comm *c, int argc, char **argv, sr_error *err);

#endif
