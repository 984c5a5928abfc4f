/* state.h: a trainer's checkpoints (collective; errors agreed on every
 * rank). The tables are the backbone's and the loss's, their optimiser
 * state, and the training position below, all replicated scalars.
 */
#ifndef SR_TRAIN_STATE_H
#define SR_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/fault.h"
#include "train/guard.h"
#include "train/train.h"

typedef struct sr_train_pos {
    int64_t step, epoch, cursor; /* optimiser steps; epoch in progress; its steps done */
    int64_t best_epoch, skipped; /* epoch of the best validation; non-finite steps skipped */
    double best;                 /* best validation metric so far (-1: none) */
    double train_seconds;        /* training time so far (no evaluation) */
    double epoch_loss;           /* sum of this epoch's step losses so far */
} sr_train_pos;

/* Commit a training checkpoint of the current step in run.dir/checkpoints
 * (the save is watched by g when given). */
sr_status sr_trainer_save_checkpoint(sr_trainer *t, sr_train_pos *p, sr_guard *g, sr_fault *fault, sr_error *err);

/* Continue from run.dir's latest usable checkpoint when there is one: from
 * gets its path ("" when there is none, p untouched). A position this run
 * cannot have reached is SR_ERR_DATA. */
sr_status sr_trainer_resume(sr_trainer *t, sr_train_pos *p, sr_fault *fault, char *from, size_t len, sr_error *err);

/* The training time beside the checkpoints (the checkpoint files hold no
 * wall time, so identical runs write identical files). save: every rank's
 * p->train_seconds becomes the slowest rank's, and rank 0 records it for
 * step t->step before the checkpoint is written; load: p->train_seconds
 * of step p->step (0 when none was recorded). Collective. */
sr_status sr_trainer_save_seconds(sr_trainer *t, sr_train_pos *p, sr_error *err);
sr_status sr_trainer_load_seconds(sr_trainer *t, sr_train_pos *p, sr_error *err);

/* The model alone (no optimiser state, no position) as a committed file. */
sr_status sr_trainer_save_model(sr_trainer *t, const char *path, int64_t epoch, sr_error *err);

#endif
