/* data_cmd.c: placeholder dispatcher, replaced by the data pipeline. */
#include "io/data_cmd.h"

sr_status sr_cmd_data(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "data: not built yet");
    return sr_comm_agree(c, err);
}
