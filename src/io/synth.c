/* synth.c: placeholder until the generator lands. */
#include "io/synth.h"

sr_status sr_cmd_data_synth(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "data synth: not built yet");
    return sr_comm_agree(c, err);
}
