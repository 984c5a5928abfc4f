/* train_cmd.h: "softrec train" and "softrec eval" (argv[0] is the command). */
#ifndef SR_TRAIN_TRAIN_CMD_H
#define SR_TRAIN_TRAIN_CMD_H

#include "comm/comm.h"
#include "core/error.h"

sr_status sr_cmd_train(const sr_comm *c, int argc, char **argv, sr_error *err);
sr_status sr_cmd_eval(const sr_comm *c, int argc, char **argv, sr_error *err);

#endif
