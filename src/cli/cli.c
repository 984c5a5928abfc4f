/* cli.c: the option parser, the dispatcher and the commands that need no MPI
 * (help, version); contract in cli.h.
 *
 * Usage errors and --help are settled before MPI_Init: every rank parses
 * the same argv the same way, so there is nothing to agree on, and a job
 * that only asks for help never pays for (or fails in) MPI start-up. Before
 * MPI the rank is unknown; the launcher's rank variable decides who prints.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define CLI_MAX_OPTIONS 48
#define CLI_OPT_BASE 256 /* getopt_long val of option i: CLI_OPT_BASE + i */

const char *sr_cli_full_name(const sr_cli_command *cmd, char *buf, size_t len)
{
    if (cmd->group) snprintf(buf, len, "%s %s", cmd->group, cmd->name);
    else snprintf(buf, len, "%s", cmd->name);
    return buf;
}

/* ---- the parser ---------------------------------------------------------- */

static sr_status parse_integer(const char *cmd, const sr_cli_option *o, const char *v, int64_t *out, sr_error *err)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end != v && !*end && !errno && x >= o->min && x <= o->max) {
        *out = x;
        return SR_OK;
    }
    if (o->max != INT64_MAX)
        SR_FAIL(err, SR_ERR_USAGE, "%s: --%s '%s': expected an integer in [%lld, %lld]", cmd, o->name, v,
                (long long)o->min, (long long)o->max);
    if (o->min != INT64_MIN)
        SR_FAIL(err, SR_ERR_USAGE, "%s: --%s '%s': expected an integer >= %lld", cmd, o->name, v, (long long)o->min);
    SR_FAIL(err, SR_ERR_USAGE, "%s: --%s '%s': expected an integer", cmd, o->name, v);
}

/* Store one option's value into its field. */
static sr_status store(const char *cmd, const sr_cli_option *o, const char *v, char *opts, sr_error *err)
{
    void *field = opts + o->offset;
    int64_t x = 0;
    switch (o->type) {
    case SR_CLI_FLAG: *(int *)field = o->set; return SR_OK;
    case SR_CLI_STRING: *(const char **)field = v; return SR_OK;
    case SR_CLI_INT64: SR_TRY(parse_integer(cmd, o, v, &x, err)); *(int64_t *)field = x; return SR_OK;
    case SR_CLI_INT: SR_TRY(parse_integer(cmd, o, v, &x, err)); *(int *)field = (int)x; return SR_OK;
    case SR_CLI_UINT64: SR_TRY(parse_integer(cmd, o, v, &x, err)); *(uint64_t *)field = (uint64_t)x; return SR_OK;
    case SR_CLI_REAL: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(d))
            SR_FAIL(err, SR_ERR_USAGE, "%s: --%s '%s': expected a finite number", cmd, o->name, v);
        *(double *)field = d;
        return SR_OK;
    }
    case SR_CLI_LIST: {
        sr_cli_list *l = field;
        sr_cli_item *g = realloc(l->items, (size_t)(l->n + 1) * sizeof *g);
        if (!g) SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory for --%s", cmd, o->name);
        l->items = g;
        l->items[l->n++] = (sr_cli_item){o->name, v};
        return SR_OK;
    }
    }
    SR_FAIL(err, SR_ERR_INTERNAL, "%s: --%s has an unknown option type", cmd, o->name);
}

/* getopt_long's report of a bad option as one line naming it. */
static sr_status bad_option(const char *cmd, const sr_cli_option *opts, int c, char **argv, sr_error *err)
{
    const char *arg = argv[optind - 1];
    if (c == ':' && optopt >= CLI_OPT_BASE)
        SR_FAIL(err, SR_ERR_USAGE, "%s: --%s needs a value", cmd, opts[optopt - CLI_OPT_BASE].name);
    if (optopt >= CLI_OPT_BASE)
        SR_FAIL(err, SR_ERR_USAGE, "%s: --%s takes no value", cmd, opts[optopt - CLI_OPT_BASE].name);
    if (optopt == 'h') SR_FAIL(err, SR_ERR_USAGE, "%s: --help takes no value", cmd);
    if (optopt) SR_FAIL(err, SR_ERR_USAGE, "%s: unknown option '-%c' (softrec %s --help)", cmd, optopt, cmd);
    /* unknown or ambiguous long option: name it without any "=value" */
    SR_FAIL(err, SR_ERR_USAGE, "%s: unknown option '%.*s' (softrec %s --help)", cmd, (int)strcspn(arg, "="), arg,
            cmd);
}

/* An operand into the next operand slot. */
static sr_status take_operand(const char *cmd, const sr_cli_option *const *ops, int nops, int *used, const char *v,
                              char *opts, sr_error *err)
{
    if (*used >= nops) SR_FAIL(err, SR_ERR_USAGE, "%s: unexpected argument '%s' (softrec %s --help)", cmd, v, cmd);
    *(const char **)(opts + ops[(*used)++]->offset) = v;
    return SR_OK;
}

sr_status sr_cli_parse(const sr_cli_command *cmd, int argc, char **argv, void *opts, int *help, sr_error *err)
{
    char name[64];
    sr_cli_full_name(cmd, name, sizeof name);
    sr_error_clear(err);
    memset(opts, 0, cmd->opts_size);
    if (cmd->init) cmd->init(opts);
    *help = 0;
    struct option lo[CLI_MAX_OPTIONS + 2];
    const sr_cli_option *ops[CLI_MAX_OPTIONS];
    bool seen[CLI_MAX_OPTIONS] = {false};
    int n = 0, nops = 0, used = 0;
    for (const sr_cli_option *o = cmd->options; o->name || o->meta; o++, n++) {
        SR_ASSERT(n < CLI_MAX_OPTIONS);
        if (!o->name) ops[nops++] = o;
        /* an operand's slot keeps the indices aligned; its "" name can
         * only match "--=x", which is rejected below */
        lo[n] = (struct option){o->name ? o->name : "", o->type == SR_CLI_FLAG ? no_argument : required_argument,
                                NULL, CLI_OPT_BASE + n};
    }
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};
    /* glibc's getopt state is process-wide: optind = 0 restarts it (the
     * tests parse many command lines in one process). "-": operands come
     * back in place as code 1, whatever POSIXLY_CORRECT says; ":": a
     * missing value is ':' rather than '?'. Errors are reported by us. */
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "-:h", lo, NULL)) != -1) {
        if (c == 'h') *help = 1;
        else if (c == 1) take_operand(name, ops, nops, &used, optarg, opts, err);
        else if (c == '?' || c == ':') bad_option(name, cmd->options, c, argv, err);
        else if (!cmd->options[c - CLI_OPT_BASE].name) { /* "--=x" matched an operand's empty name */
            optopt = 0;
            bad_option(name, cmd->options, '?', argv, err);
        } else {
            seen[c - CLI_OPT_BASE] = true;
            store(name, &cmd->options[c - CLI_OPT_BASE], optarg, opts, err);
        }
    }
    for (; optind < argc; optind++) take_operand(name, ops, nops, &used, argv[optind], opts, err); /* after "--" */
    /* --help wins over any error: "softrec X --bad --help" shows the usage. */
    if (*help) {
        sr_error_clear(err);
        return SR_OK;
    }
    for (int i = 0; i < n && err->code == SR_OK; i++) {
        const sr_cli_option *o = &cmd->options[i];
        if (o->required && o->name && !seen[i])
            sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "%s: --%s is required", name, o->name);
    }
    for (int i = used; i < nops && err->code == SR_OK; i++)
        if (ops[i]->required)
            sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "%s: %s is required (softrec %s --help)", name,
                         ops[i]->meta, name);
    if (err->code != SR_OK) return err->code;
    return cmd->check ? cmd->check(opts, err) : SR_OK;
}

void sr_cli_free(const sr_cli_command *cmd, void *opts)
{
    if (!opts) return;
    for (const sr_cli_option *o = cmd->options; o->name || o->meta; o++)
        if (o->type == SR_CLI_LIST) {
            sr_cli_list *l = (sr_cli_list *)((char *)opts + o->offset);
            free(l->items);
            l->items = NULL;
            l->n = 0;
        }
}

/* ---- usage texts --------------------------------------------------------- */

static void print_general_usage(const sr_cli_ctx *ctx, FILE *out)
{
    fprintf(out,
            "softrec %s: softmax-family losses for recommendation on MPI\n"
            "\n"
            "usage: softrec COMMAND [options]\n",
            SOFTREC_VERSION);
    for (size_t i = 0; i < ctx->ncommands; i++) {
        char name[64];
        fprintf(out, "  %-18s %s\n", sr_cli_full_name(ctx->commands[i], name, sizeof name),
                ctx->commands[i]->summary);
    }
    fprintf(out, "Run under mpirun (or launch/softrec-run -n P) for more than one rank.\n"
                 "'softrec COMMAND --help' or 'softrec help COMMAND' for a command's options.\n");
}

/* "data", "analyze": the subcommands of a group. */
static void print_group_usage(const sr_cli_ctx *ctx, const char *group, FILE *out)
{
    fprintf(out, "usage: softrec %s SUBCOMMAND [options]\n", group);
    for (size_t i = 0; i < ctx->ncommands; i++)
        if (ctx->commands[i]->group && !strcmp(ctx->commands[i]->group, group))
            fprintf(out, "  %-10s %s\n", ctx->commands[i]->name, ctx->commands[i]->summary);
    fprintf(out, "'softrec %s SUBCOMMAND --help' for a subcommand's options.\n", group);
}

static bool is_group(const sr_cli_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->ncommands; i++)
        if (ctx->commands[i]->group && !strcmp(ctx->commands[i]->group, name)) return true;
    return false;
}

/* The command named by words[0] (and words[1] for a group). On a miss:
 * NULL and a usage error naming what was not found. */
static const sr_cli_command *find_command(const sr_cli_ctx *ctx, int nwords, char **words, sr_error *err)
{
    const char *w = words[0];
    for (size_t i = 0; i < ctx->ncommands; i++)
        if (!ctx->commands[i]->group && !strcmp(ctx->commands[i]->name, w)) return ctx->commands[i];
    if (!is_group(ctx, w)) {
        sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "unknown command '%s' (softrec --help lists them)", w);
        return NULL;
    }
    char subs[256] = "";
    for (size_t i = 0; i < ctx->ncommands; i++)
        if (ctx->commands[i]->group && !strcmp(ctx->commands[i]->group, w)) {
            if (nwords > 1 && !strcmp(ctx->commands[i]->name, words[1])) return ctx->commands[i];
            size_t k = strlen(subs);
            snprintf(subs + k, sizeof subs - k, "%s%s", k ? ", " : "", ctx->commands[i]->name);
        }
    if (nwords > 1)
        sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "%s: unknown subcommand '%s' (%s)", w, words[1], subs);
    else
        sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "%s: missing subcommand (%s)", w, subs);
    return NULL;
}

/* ---- help and version (no MPI) -------------------------------------------- */

typedef struct help_opts {
    const char *topic, *sub;
    int json;
} help_opts;

static const char *config_type_name(sr_config_type t)
{
    static const char *const names[] = {"int", "float", "bool", "string", "enum", "int list"};
    return (size_t)t < sizeof names / sizeof *names ? names[t] : "?";
}

/* "help config --json": the key table as one JSON object. */
static sr_status print_config_json(sr_error *err)
{
    size_t n;
    const sr_config_key *t = sr_config_table(&n);
    json_t *keys = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_pack("{s:s, s:s, s:s, s:s}", "name", t[i].name, "type", config_type_name(t[i].type),
                              "default", t[i].def, "help", t[i].help);
        if (k && t[i].type == SR_CFG_ENUM) {
            json_t *ch = json_array();
            char buf[256];
            snprintf(buf, sizeof buf, "%s", t[i].choices);
            char *save = NULL;
            for (char *tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
                json_array_append_new(ch, json_string(tok));
            json_object_set_new(k, "choices", ch);
        } else if (k && (t[i].min != 0 || t[i].max != 0)) {
            json_object_set_new(k, "min", json_real(t[i].min));
            json_object_set_new(k, "max", json_real(t[i].max));
        }
        if (!k || json_array_append_new(keys, k)) {
            json_decref(keys);
            SR_FAIL(err, SR_ERR_NOMEM, "help config: cannot build the JSON table");
        }
    }
    json_t *root = json_pack("{s:s, s:o}", "version", SOFTREC_VERSION, "keys", keys);
    char *txt = root ? json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!txt) SR_FAIL(err, SR_ERR_NOMEM, "help config: cannot format the JSON table");
    printf("%s\n", txt);
    free(txt);
    return SR_OK;
}

static sr_status help_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const help_opts *o = opts;
    if (o->json && (!o->topic || strcmp(o->topic, "config")))
        SR_FAIL(err, SR_ERR_USAGE, "help: --json goes with 'help config' only");
    if (!o->topic) {
        print_general_usage(ctx, stdout);
        return SR_OK;
    }
    if (!strcmp(o->topic, "config")) {
        if (o->sub) SR_FAIL(err, SR_ERR_USAGE, "help config: unexpected argument '%s'", o->sub);
        if (o->json) return print_config_json(err);
        sr_config_print_help(stdout);
        return SR_OK;
    }
    char *words[2] = {(char *)o->topic, (char *)o->sub};
    if (is_group(ctx, o->topic) && !o->sub) {
        print_group_usage(ctx, o->topic, stdout);
        return SR_OK;
    }
    sr_error e;
    sr_error_clear(&e);
    const sr_cli_command *cmd = find_command(ctx, o->sub ? 2 : 1, words, &e);
    if (!cmd || (o->sub && !cmd->group))
        SR_FAIL(err, SR_ERR_USAGE, "help: unknown topic '%s%s%s' (softrec help lists the commands)", o->topic,
                o->sub ? " " : "", o->sub ? o->sub : "");
    fputs(cmd->usage, stdout);
    return SR_OK;
}

static const sr_cli_option help_options[] = {
    SR_CLI_FLAG_OPT("json", help_opts, json, 1),
    SR_CLI_OPERAND("TOPIC", help_opts, topic, false),
    SR_CLI_OPERAND("SUBTOPIC", help_opts, sub, false),
    SR_CLI_END,
};

const sr_cli_command sr_cli_help = {
    .name = "help",
    .summary = "this text; 'help COMMAND': its usage; 'help config [--json]': every config key",
    .usage = "usage: softrec help [COMMAND [SUBCOMMAND]]\n"
             "       softrec help config [--json]\n"
             "  Without a topic: the list of commands. With a command: its usage (as --help).\n"
             "  config: every configuration key with type, default, bounds or choices and help;\n"
             "  --json prints the same table as one JSON object {\"version\", \"keys\": [...]}.\n",
    .options = help_options,
    .opts_size = sizeof(help_opts),
    .run = help_run,
};

static sr_status version_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    printf("softrec %s\n", SOFTREC_VERSION);
    return SR_OK;
}

static const sr_cli_option no_options[] = {SR_CLI_END};

const sr_cli_command sr_cli_version = {
    .name = "version",
    .summary = "print the version (also --version)",
    .usage = "usage: softrec version\n"
             "  Prints 'softrec VERSION'. Needs no MPI (it works where MPI cannot start).\n",
    .options = no_options,
    .run = version_run,
};

/* ---- running -------------------------------------------------------------- */

sr_status sr_cli_exec(const sr_cli_command *cmd, const sr_comm *c, int argc, char **argv, sr_error *err)
{
    void *opts = calloc(1, cmd->opts_size ? cmd->opts_size : 1);
    int help = 0;
    if (!opts) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory");
    else sr_cli_parse(cmd, argc, argv, opts, &help, err);
    sr_status st = sr_comm_agree(c, err);
    if (st == SR_OK && help && c->rank == 0) fputs(cmd->usage, stdout);
    if (st == SR_OK && !help) {
        const sr_cli_ctx ctx = {c, NULL, 0};
        st = cmd->run(&ctx, opts, err);
    }
    if (opts) sr_cli_free(cmd, opts);
    free(opts);
    return st;
}

/* The rank the launcher gave this process, before MPI can tell: 0 when
 * started without one. Only rank 0 prints help and usage errors. */
static int launcher_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

/* An error before (or without) MPI: one line, from launcher rank 0. */
static int fail_early(const sr_error *err)
{
    if (launcher_rank() == 0) {
        char buf[SR_ERROR_MSG_MAX + 128];
        sr_error_format(err, buf, sizeof buf);
        fprintf(stderr, "softrec: error: %s\n", buf);
    }
    return err->code != SR_OK ? (int)err->code : SR_ERR_INTERNAL;
}

/* MPI from here on: run the parsed command on every rank. */
static int run_mpi(const sr_cli_ctx *base, const sr_cli_command *cmd, void *opts, int *argc, char ***argv)
{
    sr_error err;
    sr_error_clear(&err);
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        sr_error_set(&err, SR_ERR_MPI, __FILE__, __LINE__, "MPI_Init failed");
        return fail_early(&err);
    }
    sr_comm comm;
    if (sr_comm_init(&comm, MPI_COMM_WORLD, &err) != SR_OK) {
        /* Abort on the world with the error's own code (7 when out of
         * memory), not sr_panic's 9: this is no bug. */
        sr_comm world = {.comm = MPI_COMM_WORLD};
        if (MPI_Comm_rank(MPI_COMM_WORLD, &world.rank) != MPI_SUCCESS) world.rank = -1;
        sr_comm_abort(&world, &err);
    }
    const sr_cli_ctx ctx = {&comm, base->commands, base->ncommands};
    sr_status st = cmd->run(&ctx, opts, &err);
    sr_cli_free(cmd, opts);
    free(opts);
    if (st != SR_OK) sr_comm_exit(&comm, &err);
    sr_comm_destroy(&comm);
    if (MPI_Finalize() != MPI_SUCCESS) {
        sr_error_set(&err, SR_ERR_MPI, __FILE__, __LINE__, "MPI_Finalize failed");
        return fail_early(&err);
    }
    return 0;
}

int sr_cli_main(const sr_cli_command *const *commands, size_t n, int argc, char **argv)
{
    const sr_cli_ctx ctx = {NULL, commands, n};
    sr_error err;
    sr_error_clear(&err);
    const bool root = launcher_rank() == 0;
    if (argc < 2) {
        if (root) print_general_usage(&ctx, stderr);
        sr_error_set(&err, SR_ERR_USAGE, __FILE__, __LINE__, "no command given");
        return fail_early(&err);
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        if (root) print_general_usage(&ctx, stdout);
        return 0;
    }
    char version[] = "version";
    if (!strcmp(a, "--version")) argv[1] = version;
    /* A group alone or with --help: the group's page. */
    if (is_group(&ctx, argv[1]) && argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        if (root) print_group_usage(&ctx, argv[1], stdout);
        return 0;
    }
    const sr_cli_command *cmd = find_command(&ctx, argc - 1, argv + 1, &err);
    if (!cmd) return fail_early(&err);
    int skip = cmd->group ? 2 : 1; /* argv + skip: the command's own argv, argv[0] its name */
    void *opts = calloc(1, cmd->opts_size ? cmd->opts_size : 1);
    if (!opts) {
        sr_error_set(&err, SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory");
        return fail_early(&err);
    }
    int help = 0;
    if (sr_cli_parse(cmd, argc - skip, argv + skip, opts, &help, &err) != SR_OK || help) {
        if (help && root) fputs(cmd->usage, stdout);
        sr_cli_free(cmd, opts);
        free(opts);
        return help ? 0 : fail_early(&err);
    }
    if (cmd->needs_mpi) return run_mpi(&ctx, cmd, opts, &argc, &argv);
    /* help, version: every process runs them (same exit code everywhere);
     * under a launcher only rank 0's output is kept */
    if (!root && !freopen("/dev/null", "w", stdout)) return fail_early(&err);
    sr_status st = cmd->run(&ctx, opts, &err);
    sr_cli_free(cmd, opts);
    free(opts);
    return st == SR_OK ? 0 : fail_early(&err);
}

void sr_cli_print_json(json_t *row)
{
    char *txt = row ? json_dumps(row, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    if (txt) printf("%s\n", txt);
    else fprintf(stderr, "softrec: warning: cannot format the result line (out of memory)\n");
    fflush(stdout);
    free(txt);
    json_decref(row);
}
