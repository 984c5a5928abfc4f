/* synth.h: "softrec data synth", planted synthetic datasets at scale.
 * (Owned by the synth work; this header is its contract with data_cmd.c.) */
#ifndef SR_IO_SYNTH_H
#define SR_IO_SYNTH_H

#include "comm/comm.h"
#include "core/error.h"

/* argv[0] == "synth". Parses its options, generates, writes the dataset.
 * Returns an error agreed by all ranks. */
sr_status sr_cmd_data_synth(const sr_comm *c, int argc, char **argv, sr_error *err);

#endif
