/* data_cmd.c: "softrec data convert|synth|info|reorder".
 *
 * Options are parsed identically on every rank, so usage errors agree
 * without communication; the conversion itself runs on rank 0 while the
 * other ranks wait in sr_comm_agree; info is collective (parallel read).
 */
#include "io/data_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/convert.h"
#include "io/info.h"
#include "io/reorder.h"
#include "io/synth.h"

static const char data_usage[] =
    "usage: softrec data convert --format FMT --input FILE --output OUT.h5 [options]\n"
    "       softrec data info FILE.h5 [--json]\n"
    "       softrec data synth [options]            (softrec data synth --help)\n"
    "       softrec data reorder --input A.h5 --output B.h5 --parts P [--seed S] [--force]\n"
    "\n"
    "convert formats (--format):\n"
    "  ml-100k    u.data lines 'user<TAB>item<TAB>rating<TAB>time'\n"
    "  ml-1m      ratings.dat lines 'user::item::rating::time' (.gz read directly)\n"
    "  lightgcn   --input train.txt [--test test.txt], lines 'user item item ...'\n"
    "  seq-pairs  one 'user item' pair per line, in time order (SASRec style)\n"
    "  seq-lines  one user per line: 'user item item ...' in time order (ICLRec/Amazon)\n"
    "  csv        generic: --sep C (default ','; 'tab' or '\\t' for tabs), --user-col N,\n"
    "             --item-col N, --rating-col N, --time-col N (0-based), --header\n"
    "convert options:\n"
    "  --min-rating R     keep only ratings >= R (implicit feedback threshold)\n"
    "  --kcore K          iterative K-core: every user and item keeps >= K interactions\n"
    "  --dedup | --no-dedup  keep only the earliest of repeated user-item pairs (default on)\n"
    "  --split given|random|leave-last-out\n"
    "                     default: given for lightgcn, leave-last-out for seq-*, random otherwise\n"
    "  --ratio TR,VA,TE   random split shares per user (default 0.8,0.1,0.1)\n"
    "  --valid-ratio R    given split: move a random share R of each user's train to valid\n"
    "  --seed S           seed of the random split (default 0)\n"
    "  --name NAME        dataset name (default: output file name)\n"
    "  --force            replace OUT.h5 if it exists (it is replaced only on success)\n"
    "Ids become dense 0-based ids in ascending order of the original id; the\n"
    "original ids are kept in /user_ids and /item_ids. See docs/dataset-format.md.\n"
    "\n"
    "info prints users, items, interactions per split, density, popularity skew and\n"
    "provenance; --json prints exactly one JSON object on stdout.\n"
    "\n"
    "reorder renumbers users and items so that METIS parts of the train graph\n"
    "(recursive bisection, balanced in users and in items) become contiguous id\n"
    "blocks: LightGCN's halo at P ranks (and P/2, P/4 for P a power of two)\n"
    "shrinks. The input ids are kept in /map/user_orig_id and /map/item_orig_id.\n";

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* Option value: "--opt=value" or "--opt value". */
static sr_status opt_value(int argc, char **argv, int *i, const char *name, const char **val, sr_error *err)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=') {
        *val = a + n + 1;
        return SR_OK;
    }
    if (*i + 1 >= argc) SR_FAIL(err, SR_ERR_USAGE, "option %s needs a value", name);
    *val = argv[++*i];
    return SR_OK;
}

static int opt_is(const char *a, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(a, name, n) && (a[n] == '\0' || a[n] == '=');
}

static sr_status parse_int(const char *opt, const char *s, int64_t lo, int64_t *out, sr_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo)
        SR_FAIL(err, SR_ERR_USAGE, "%s '%s': expected an integer >= %lld", opt, s, (long long)lo);
    *out = v;
    return SR_OK;
}

static sr_status parse_real(const char *opt, const char *s, double *out, sr_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) SR_FAIL(err, SR_ERR_USAGE, "%s '%s': expected a number", opt, s);
    *out = v;
    return SR_OK;
}

static sr_status parse_convert(int argc, char **argv, sr_convert_opts *o, int *help, sr_error *err)
{
    sr_convert_opts_default(o);
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int64_t n = 0;
        if (is_help(a)) {
            *help = 1;
            return SR_OK;
        } else if (opt_is(a, "--format")) {
            SR_TRY(opt_value(argc, argv, &i, "--format", &v, err));
            SR_TRY(sr_convert_format_parse(v, &o->format, err));
        } else if (opt_is(a, "--input")) {
            SR_TRY(opt_value(argc, argv, &i, "--input", &o->input, err));
        } else if (opt_is(a, "--test")) {
            SR_TRY(opt_value(argc, argv, &i, "--test", &o->test, err));
        } else if (opt_is(a, "--output")) {
            SR_TRY(opt_value(argc, argv, &i, "--output", &o->output, err));
        } else if (opt_is(a, "--name")) {
            SR_TRY(opt_value(argc, argv, &i, "--name", &o->name, err));
        } else if (opt_is(a, "--sep")) {
            SR_TRY(opt_value(argc, argv, &i, "--sep", &v, err));
            if (!strcmp(v, "tab") || !strcmp(v, "\\t")) o->sep = '\t';
            else if (strlen(v) == 1) o->sep = v[0];
            else SR_FAIL(err, SR_ERR_USAGE, "--sep '%s': expected one character (or 'tab')", v);
        } else if (!strcmp(a, "--header")) {
            o->header = 1;
        } else if (opt_is(a, "--user-col") || opt_is(a, "--item-col") || opt_is(a, "--rating-col") ||
                   opt_is(a, "--time-col")) {
            char name[16];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
            SR_TRY(opt_value(argc, argv, &i, name, &v, err));
            SR_TRY(parse_int(name, v, 0, &n, err));
            if (n > 1000) SR_FAIL(err, SR_ERR_USAGE, "%s %lld: too large", name, (long long)n);
            int *dst = name[2] == 'u' ? &o->user_col : name[2] == 'i' ? &o->item_col : name[2] == 'r' ? &o->rating_col : &o->time_col;
            *dst = (int)n;
        } else if (opt_is(a, "--min-rating")) {
            SR_TRY(opt_value(argc, argv, &i, "--min-rating", &v, err));
            SR_TRY(parse_real("--min-rating", v, &o->min_rating, err));
            o->use_min_rating = 1;
        } else if (opt_is(a, "--kcore")) {
            SR_TRY(opt_value(argc, argv, &i, "--kcore", &v, err));
            SR_TRY(parse_int("--kcore", v, 0, &o->kcore, err));
        } else if (!strcmp(a, "--dedup")) {
            o->dedup = 1;
        } else if (!strcmp(a, "--no-dedup")) {
            o->dedup = 0;
        } else if (opt_is(a, "--split")) {
            SR_TRY(opt_value(argc, argv, &i, "--split", &v, err));
            SR_TRY(sr_convert_split_parse(v, &o->split, err));
        } else if (opt_is(a, "--ratio")) {
            SR_TRY(opt_value(argc, argv, &i, "--ratio", &v, err));
            SR_TRY(sr_convert_ratio_parse(v, o->ratio, err));
        } else if (opt_is(a, "--valid-ratio")) {
            SR_TRY(opt_value(argc, argv, &i, "--valid-ratio", &v, err));
            SR_TRY(parse_real("--valid-ratio", v, &o->valid_ratio, err));
        } else if (opt_is(a, "--seed")) {
            SR_TRY(opt_value(argc, argv, &i, "--seed", &v, err));
            SR_TRY(parse_int("--seed", v, 0, &n, err));
            o->seed = (uint64_t)n;
        } else if (!strcmp(a, "--force")) {
            o->overwrite = 1;
        } else {
            SR_FAIL(err, SR_ERR_USAGE, "convert: unknown option '%s' (softrec data --help)", a);
        }
    }
    if (o->format == SR_FORMAT_COUNT) SR_FAIL(err, SR_ERR_USAGE, "convert: --format is required (softrec data --help)");
    if (!o->input) SR_FAIL(err, SR_ERR_USAGE, "convert: --input is required");
    if (!o->output) SR_FAIL(err, SR_ERR_USAGE, "convert: --output is required");
    return SR_OK;
}

/* After parsing on every rank: agree on the usage error, print help once. */
static sr_status agree_parsed(const sr_comm *c, int help, sr_error *err)
{
    SR_TRY(sr_comm_agree(c, err));
    if (help && c->rank == 0) fputs(data_usage, stdout);
    return SR_OK;
}

static sr_status cmd_convert(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_convert_opts o;
    int help = 0;
    parse_convert(argc, argv, &o, &help, err);
    SR_TRY(agree_parsed(c, help, err));
    if (help) return SR_OK;
    sr_log log;
    sr_log_init(&log, c->rank, c->size);
    sr_convert_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = sr_time_now();
    if (c->rank == 0) sr_convert_run(&o, &rep, err);
    SR_TRY(sr_comm_agree(c, err));
    sr_log_root(&log, SR_LOG_INFO,
                "convert: %lld lines, %lld interactions read, %lld below --min-rating, %lld duplicate pairs %s, "
                "%lld removed by the %lld-core",
                (long long)rep.lines, (long long)rep.rows_read, (long long)rep.below_min_rating,
                (long long)rep.duplicates, o.dedup ? "removed" : "kept", (long long)rep.kcore_removed,
                (long long)o.kcore);
    sr_log_root(&log, SR_LOG_INFO,
                "convert: %s: %lld users, %lld items, train %lld, valid %lld, test %lld (%s) in %.2f s",
                o.output, (long long)rep.num_users, (long long)rep.num_items, (long long)rep.nnz[0],
                (long long)rep.nnz[1], (long long)rep.nnz[2], rep.split_protocol, sr_time_now() - t0);
    return SR_OK;
}

static sr_status cmd_info(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    const char *path = NULL;
    int json = 0, help = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) help = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "info: unknown option '%s'", argv[i]);
        else if (path) sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "info: one dataset file expected, got '%s' and '%s'", path, argv[i]);
        else path = argv[i];
    }
    if (!help && !path && err->code == SR_OK)
        sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "info: no dataset file given (softrec data info FILE.h5 [--json])");
    SR_TRY(sr_comm_agree(c, err));
    if (help) {
        if (c->rank == 0) fputs(data_usage, stdout);
        return SR_OK;
    }
    sr_data_info *in = malloc(sizeof *in);
    if (!in) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "info: out of memory");
    SR_TRY(sr_comm_agree(c, err));
    sr_status st = sr_data_info_compute(c, path, in, err);
    if (st == SR_OK && c->rank == 0) {
        if (json) {
            json_t *o = sr_data_info_json(in);
            char *s = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
            if (s) {
                printf("%s\n", s);
                fflush(stdout);
            } else {
                sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "info: cannot format JSON");
            }
            free(s);
            json_decref(o);
        } else {
            sr_data_info_print(in, stdout);
        }
    }
    free(in);
    if (st != SR_OK) return st;
    return sr_comm_agree(c, err);
}

static sr_status parse_reorder(int argc, char **argv, sr_reorder_opts *o, int *help, sr_error *err)
{
    memset(o, 0, sizeof *o);
    o->parts = -1;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int64_t n = 0;
        if (is_help(a)) {
            *help = 1;
            return SR_OK;
        } else if (opt_is(a, "--input")) {
            SR_TRY(opt_value(argc, argv, &i, "--input", &o->input, err));
        } else if (opt_is(a, "--output")) {
            SR_TRY(opt_value(argc, argv, &i, "--output", &o->output, err));
        } else if (opt_is(a, "--parts")) {
            SR_TRY(opt_value(argc, argv, &i, "--parts", &v, err));
            SR_TRY(parse_int("--parts", v, 1, &o->parts, err));
        } else if (opt_is(a, "--seed")) {
            SR_TRY(opt_value(argc, argv, &i, "--seed", &v, err));
            SR_TRY(parse_int("--seed", v, 0, &n, err));
            o->seed = (uint64_t)n;
        } else if (!strcmp(a, "--force")) {
            o->overwrite = 1;
        } else {
            SR_FAIL(err, SR_ERR_USAGE, "reorder: unknown option '%s' (softrec data --help)", a);
        }
    }
    if (!o->input) SR_FAIL(err, SR_ERR_USAGE, "reorder: --input is required");
    if (!o->output) SR_FAIL(err, SR_ERR_USAGE, "reorder: --output is required");
    if (o->parts < 0) SR_FAIL(err, SR_ERR_USAGE, "reorder: --parts is required");
    return SR_OK;
}

static sr_status cmd_reorder(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    sr_reorder_opts o;
    int help = 0;
    parse_reorder(argc, argv, &o, &help, err);
    SR_TRY(agree_parsed(c, help, err));
    if (help) return SR_OK;
    sr_log log;
    sr_log_init(&log, c->rank, c->size);
    sr_reorder_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = sr_time_now();
    if (c->rank == 0) sr_reorder_run(&o, &rep, err);
    SR_TRY(sr_comm_agree(c, err));
    sr_log_root(&log, SR_LOG_INFO,
                "reorder: %s: %lld users, %lld items, %lld train pairs, %lld parts: cut %lld, spilled %lld users "
                "and %lld items across part boundaries (METIS %.2f s, total %.2f s)",
                o.output, (long long)rep.num_users, (long long)rep.num_items, (long long)rep.nnz[0],
                (long long)o.parts, (long long)rep.cut, (long long)rep.spilled_users, (long long)rep.spilled_items,
                rep.seconds_partition, sr_time_now() - t0);
    for (int l = 0; l < rep.levels; l++)
        sr_log_root(&log, SR_LOG_INFO,
                    "reorder: halo at %lld ranks (remote item rows summed over ranks): %lld -> %lld (%.1f%%); "
                    "the full table is %lld",
                    (long long)rep.ranks[l], (long long)rep.halo_before[l], (long long)rep.halo_after[l],
                    rep.halo_before[l] ? 100.0 * (double)rep.halo_after[l] / (double)rep.halo_before[l] : 0.0,
                    (long long)((rep.ranks[l] - 1) * rep.num_items));
    return SR_OK;
}

sr_status sr_cmd_data(const sr_comm *c, int argc, char **argv, sr_error *err)
{
    if (argc < 1 || is_help(argv[0]) || !strcmp(argv[0], "help")) {
        if (c->rank == 0) fputs(data_usage, argc < 1 ? stderr : stdout);
        if (argc < 1) sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "data: missing subcommand (convert, synth, info, reorder)");
        return sr_comm_agree(c, err);
    }
    if (!strcmp(argv[0], "convert")) return cmd_convert(c, argc, argv, err);
    if (!strcmp(argv[0], "info")) return cmd_info(c, argc, argv, err);
    if (!strcmp(argv[0], "synth")) return sr_cmd_data_synth(c, argc, argv, err);
    if (!strcmp(argv[0], "reorder")) return cmd_reorder(c, argc, argv, err);
    sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "data: unknown subcommand '%s' (expected convert, synth, info or reorder)",
                 argv[0]);
    return sr_comm_agree(c, err);
}
