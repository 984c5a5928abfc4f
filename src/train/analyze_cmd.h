/* analyze_cmd.h: "softrec analyze lse-bias|jacobian" (argv[0] = "analyze").
 *
 * Both load a trained model from a checkpoint (its stored config and
 * dataset, --set overrides on top), draw a sample of users with a seeded
 * stream shared by all ranks (so the sample does not depend on the rank
 * count), build their queries as the loss sees them, and run a collective
 * kernel over the sharded catalogue:
 *   lse-bias   exact log Z against the SSM and NCE estimates for a list of k
 *              with R repetitions each (analysis/lse_bias.h): bias, variance,
 *              MSE per k;
 *   jacobian   spectral norm of the prediction map's Jacobian at the model's
 *              logits for softmax / sparsemax / entmax / rankmax, with
 *              support sizes (analysis/jacobian.h).
 * Output on rank 0: a Markdown table on stdout, then one JSON object as the
 * last stdout line (also written to --out FILE when given).
 */
#ifndef SR_TRAIN_ANALYZE_CMD_H
#define SR_TRAIN_ANALYZE_CMD_H

#include "comm/comm.h"
#include "core/error.h"

sr_status sr_cmd_analyze(const sr_comm *c, int argc, char **argv, sr_error *err);

#endif
