/* cmd.h: the signature every softrec subcommand implements.
 *
 * A command runs on every rank of c (MPI is initialised by main). It returns
 * SR_OK or an error that every rank has agreed on (sr_comm_agree), so main
 * can print it once and exit all ranks with the same code. argv[0] is the
 * subcommand's own name ("convert", "train", ...).
 */
#ifndef SR_CORE_CMD_H
#define SR_CORE_CMD_H

#include "core/error.h"

struct sr_comm;
typedef sr_status (*sr_cmd_fn)(const struct sr_comm *c, int argc, char **argv, sr_error *err);

#endif
