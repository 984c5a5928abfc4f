/* cli.h: the softrec command line: one command table, one option parser.
 *
 * Contract
 *  - A command is a descriptor (sr_cli_command): its name (with its group
 *    for "data convert"), a summary line, its usage text, its option table,
 *    whether it needs MPI, and three functions: init (defaults), check
 *    (cross-option rules) and run (the work).
 *  - sr_cli_parse turns argv into the command's option struct through
 *    getopt_long and the option table, the same way for every command:
 *    "--opt value" and "--opt=value", "-h"/"--help", "--" ends the options;
 *    an unknown option, a missing or malformed value, a missing required
 *    option or operand is SR_ERR_USAGE with one line naming it. Parsing and
 *    check need no MPI and give the same result on every rank.
 *  - sr_cli_main parses, prints --help (stdout, exit 0) and usage errors
 *    (exit 2) before MPI starts; only commands with needs_mpi call MPI_Init.
 *    Their errors are agreed by all ranks and printed once by rank 0
 *    (sr_comm_exit). Exit codes: src/core/error.h, docs/cli.md.
 */
#ifndef SR_CLI_CLI_H
#define SR_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"

typedef enum sr_cli_type {
    SR_CLI_FLAG,   /* no value: stores `set` into an int */
    SR_CLI_STRING, /* const char * (points into argv) */
    SR_CLI_INT64,  /* int64_t in [min, max] */
    SR_CLI_INT,    /* int in [min, max] */
    SR_CLI_UINT64, /* uint64_t in [min, max], min >= 0 */
    SR_CLI_REAL,   /* double, finite */
    SR_CLI_LIST    /* repeatable: appended, in command-line order, to an sr_cli_list */
} sr_cli_type;

/* One option (name without "--"), or with name NULL a positional operand
 * (SR_CLI_STRING only; meta names it in usage errors). */
typedef struct sr_cli_option {
    const char *name;
    sr_cli_type type;
    size_t offset;    /* of the field in the command's option struct */
    int64_t min, max; /* integer bounds (SR_CLI_INT*, SR_CLI_UINT64) */
    int set;          /* SR_CLI_FLAG: the value stored */
    bool required;
    const char *meta; /* operands: "FILE.h5" */
} sr_cli_option;

#define SR_CLI_FLAG_OPT(n, type_, field, v) {n, SR_CLI_FLAG, offsetof(type_, field), 0, 0, v, false, NULL}
#define SR_CLI_STR_OPT(n, type_, field, req) {n, SR_CLI_STRING, offsetof(type_, field), 0, 0, 0, req, NULL}
#define SR_CLI_INT_OPT(n, kind, type_, field, lo, hi) {n, kind, offsetof(type_, field), lo, hi, 0, false, NULL}
#define SR_CLI_REAL_OPT(n, type_, field) {n, SR_CLI_REAL, offsetof(type_, field), 0, 0, 0, false, NULL}
#define SR_CLI_LIST_OPT(n, type_, field) {n, SR_CLI_LIST, offsetof(type_, field), 0, 0, 0, false, NULL}
#define SR_CLI_OPERAND(meta_, type_, field, req) {NULL, SR_CLI_STRING, offsetof(type_, field), 0, 0, 0, req, meta_}
#define SR_CLI_END {NULL, SR_CLI_FLAG, 0, 0, 0, 0, false, NULL}

/* Repeatable options (--config, --set) in command-line order. */
typedef struct sr_cli_item {
    const char *opt; /* option name without "--" */
    const char *val;
} sr_cli_item;
typedef struct sr_cli_list {
    int n;
    sr_cli_item *items;
} sr_cli_list;

struct sr_cli_command;

/* What run sees: comm is NULL for commands without MPI. */
typedef struct sr_cli_ctx {
    const sr_comm *comm;
    const struct sr_cli_command *const *commands; /* the table (help lists it) */
    size_t ncommands;
} sr_cli_ctx;

typedef struct sr_cli_command {
    const char *group;   /* "data" for "data convert"; NULL for a top-level command */
    const char *name;
    const char *summary; /* one line in the general usage */
    const char *usage;   /* the --help text */
    const sr_cli_option *options; /* ends with SR_CLI_END */
    size_t opts_size;    /* of the option struct (zeroed, then init) */
    bool needs_mpi;
    void (*init)(void *opts);                          /* may be NULL */
    sr_status (*check)(void *opts, sr_error *err);     /* may be NULL; no MPI */
    sr_status (*run)(const sr_cli_ctx *ctx, void *opts, sr_error *err);
} sr_cli_command;

/* The commands (one descriptor each; launch/softrec.c lists them). */
extern const sr_cli_command sr_cli_data_convert, sr_cli_data_synth, sr_cli_data_info, sr_cli_data_reorder;
extern const sr_cli_command sr_cli_train, sr_cli_eval, sr_cli_checkpoint_verify;
extern const sr_cli_command sr_cli_analyze_lse_bias, sr_cli_analyze_jacobian;
extern const sr_cli_command sr_cli_export, sr_cli_recommend;
extern const sr_cli_command sr_cli_help, sr_cli_version;

/* Parse argv (argv[0] is the command's name) into opts (opts_size bytes,
 * initialised here); *help = 1 when -h/--help was given (then nothing else
 * is checked). Runs cmd->check. Free with sr_cli_free even on failure. */
sr_status sr_cli_parse(const sr_cli_command *cmd, int argc, char **argv, void *opts, int *help, sr_error *err);
void sr_cli_free(const sr_cli_command *cmd, void *opts);

/* "data convert" or "train" into buf. */
const char *sr_cli_full_name(const sr_cli_command *cmd, char *buf, size_t len);

/* Collective over c: parse, agree, print --help on rank 0 or run. Returns
 * an error agreed by all ranks (the tests drive commands through this). */
sr_status sr_cli_exec(const sr_cli_command *cmd, const sr_comm *c, int argc, char **argv, sr_error *err);

/* The whole program: dispatch argv[1] (and argv[2] for a group) through the
 * table; returns the exit code (or exits through sr_comm_exit). */
int sr_cli_main(const sr_cli_command *const *commands, size_t n, int argc, char **argv);

/* Print a JSON object as one stdout line (jansson: any path or text is
 * escaped) and release it; the commands' result lines go through here. */
struct json_t;
void sr_cli_print_json(struct json_t *row);

/* Shared by eval and analyze (collective): a trainer whose model is the
 * checkpoint's, built from the config stored in it, the dataset (NULL: the
 * stored data.path) and the --set items of sets applied on top; cfg
 * receives the resolved config. */
struct sr_trainer;
struct sr_config;
sr_status sr_cli_open_checkpoint(const sr_comm *c, const char *ckpt, const char *dataset, const sr_cli_list *sets,
                                 struct sr_config *cfg, struct sr_trainer **out, sr_error *err);

#endif
