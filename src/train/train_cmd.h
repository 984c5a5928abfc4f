/* train_cmd.h: "softrec train" and "softrec eval" (argv[0] is the command). */
#ifndef SR_TRAIN_TRAIN_CMD_H
#define SR_TRAIN_TRAIN_CMD_H

#include "comm/comm.h"
#include "core/error.h"

sr_status sr_cmd_train(const sr_comm *c, int argc, char **argv, sr_error *err);
sr_status sr_cmd_eval(const sr_comm *c, int argc, char **argv, sr_error *err);
/* "softrec checkpoint verify FILE|RUN_DIR" */
sr_status sr_cmd_checkpoint(const sr_comm *c, int argc, char **argv, sr_error *err);

/* Collective: a trainer whose model is the checkpoint's, built from the
 * config stored in it, the dataset (NULL: the stored data.path) and the
 * --set assignments applied on top; cfg receives the resolved config. */
struct sr_trainer;
struct sr_config;
sr_status sr_trainer_open_checkpoint(const sr_comm *c, const char *ckpt, const char *dataset,
                                    char **sets, int nsets, struct sr_config *cfg,
                                    struct sr_trainer **out, sr_error *err);

#endif
