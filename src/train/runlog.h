/* runlog.h: a run's log file, run.dir/log.txt (rank 0): a header of what
 * the run ran on (version, commit, build flags, CPU and BLAS path, threads,
 * MPI library, hosts, dataset digest), then every message rank 0 logs
 * (sr_log's copy). Collective (the host names); a file that cannot be
 * opened is a warning, never the end of a run. A resumed run appends.
 */
#ifndef SR_TRAIN_RUNLOG_H
#define SR_TRAIN_RUNLOG_H

#include <stdbool.h>
#include <stdio.h>

#include "core/error.h"
#include "train/train.h"

/* *out: the open file on rank 0 (close it with fclose), NULL elsewhere. */
sr_status sr_runlog_open(sr_trainer *t, bool resumed, FILE **out, sr_error *err);

#endif
