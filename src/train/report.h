/* report.h: what a run tells its user while and after it trains: the
 * run directory's config.ini and metrics.jsonl (one JSON line per epoch
 * and a final one), progress lines on stderr. Rank 0 writes; other ranks
 * return at once. A metrics line that cannot be written is a warning, never
 * the end of a run.
 */
#ifndef SR_TRAIN_REPORT_H
#define SR_TRAIN_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "train/train.h"

/* Rank 0: write run.dir/config.ini; a fresh run (resumed == false) starts
 * metrics.jsonl empty, a resumed one appends to it. */
void sr_report_run_files(const sr_config *cfg, int rank, bool resumed);

/* Rank 0: append one JSON object as a line to run.dir/metrics.jsonl. */
void sr_report_append(const sr_config *cfg, const sr_log *log, int rank, const json_t *line);

/* A number rounded to a multiple of `step` (0: as is); NaN or an infinity
 * is JSON null (JSON has no such numbers). */
json_t *sr_json_number(double v, double step);

/* Rank 0: "epoch e/E step s/S loss L N ex/s ETA hh:mm:ss" on stderr (one
 * rewritten line on a terminal). */
typedef struct sr_progress {
    int64_t epoch, epochs, step, steps;
    double loss, examples_per_second, eta_seconds;
} sr_progress;
void sr_report_progress(const sr_log *log, int rank, const sr_progress *p);

#endif
