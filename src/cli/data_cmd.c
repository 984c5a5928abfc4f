/* data_cmd.c: "softrec data convert|synth|info|reorder" (cli.h).
 *
 * Options are parsed identically on every rank, so usage errors need no
 * communication; convert, synth and reorder run on rank 0 while the other
 * ranks wait in sr_comm_agree; info is collective (parallel read).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "core/log.h"
#include "io/convert.h"
#include "io/dataset.h"
#include "io/fault.h"
#include "io/info.h"
#include "io/reorder.h"
#include "io/synth.h"

/* ---- convert ---------------------------------------------------------------- */

typedef struct convert_args {
    sr_convert_opts o;
    const char *format, *sep, *split, *ratio; /* converted by convert_check */
    const char *col[4];                       /* --user-col ... --time-col: N or NAME */
} convert_args;

static void convert_init(void *opts)
{
    convert_args *a = opts;
    sr_convert_opts_default(&a->o);
    a->o.min_rating = NAN; /* NAN: no --min-rating */
}

static sr_status convert_check(void *opts, sr_error *err)
{
    convert_args *a = opts;
    sr_convert_opts *o = &a->o;
    SR_TRY(sr_convert_format_parse(a->format, &o->format, err));
    if (a->sep) {
        if (!strcmp(a->sep, "tab") || !strcmp(a->sep, "\\t")) o->sep = '\t';
        else if (strlen(a->sep) == 1) o->sep = a->sep[0];
        else SR_FAIL(err, SR_ERR_USAGE, "data convert: --sep '%s': expected one character (or 'tab')", a->sep);
    }
    static const char *const col_opt[4] = {"--user-col", "--item-col", "--rating-col", "--time-col"};
    int *col_num[4] = {&o->user_col, &o->item_col, &o->rating_col, &o->time_col};
    const char **col_name[4] = {&o->user_name, &o->item_name, &o->rating_name, &o->time_name};
    for (int k = 0; k < 4; k++) {
        const char *v = a->col[k];
        if (!v) continue;
        if (!*v) SR_FAIL(err, SR_ERR_USAGE, "data convert: %s: expected a 0-based number or a header name", col_opt[k]);
        if (strspn(v, "0123456789") != strlen(v)) {
            *col_name[k] = v; /* a header name */
        } else if (strlen(v) > 4 || atoi(v) > 1000) {
            SR_FAIL(err, SR_ERR_USAGE, "data convert: %s '%s': at most 1000", col_opt[k], v);
        } else {
            *col_num[k] = atoi(v);
        }
    }
    if (a->split) SR_TRY(sr_convert_split_parse(a->split, &o->split, err));
    if (a->ratio) SR_TRY(sr_convert_ratio_parse(a->ratio, o->ratio, err));
    o->use_min_rating = !isnan(o->min_rating);
    return SR_OK;
}

static sr_status convert_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const sr_convert_opts o = ((const convert_args *)opts)->o;
    sr_log log;
    sr_log_init(&log, c->rank, c->size);
    sr_convert_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = sr_time_now();
    if (c->rank == 0) sr_convert_run(&o, &rep, err);
    SR_TRY(sr_comm_agree(c, err));
    sr_log_root(&log, SR_LOG_INFO,
                "convert: %lld lines, %lld interactions read, %lld below --min-rating, %lld duplicate pairs %s, "
                "%lld removed by the %lld-core; %s ids, %s ids",
                (long long)rep.lines, (long long)rep.rows_read, (long long)rep.below_min_rating,
                (long long)rep.duplicates, rep.dedup ? "removed" : "kept", (long long)rep.kcore_removed,
                (long long)o.kcore, rep.string_ids[0] ? "string user" : "integer user",
                rep.string_ids[1] ? "string item" : "integer item");
    /* Published leave-one-out splits keep repeats: say when dedup moved them. */
    if (rep.last_changed > 0)
        sr_log_root(&log, SR_LOG_WARN,
                    "convert: de-duplication changed the last or second-last item (the leave-last-out test and "
                    "valid items) of %lld users; --no-dedup keeps repeated pairs as events",
                    (long long)rep.last_changed);
    sr_log_root(&log, SR_LOG_INFO,
                "convert: %s: %lld users, %lld items, train %lld, valid %lld, test %lld (%s) in %.2f s",
                o.output, (long long)rep.num_users, (long long)rep.num_items, (long long)rep.nnz[0],
                (long long)rep.nnz[1], (long long)rep.nnz[2], rep.split_protocol, sr_time_now() - t0);
    return SR_OK;
}

static const sr_cli_option convert_options[] = {
    SR_CLI_STR_OPT("format", convert_args, format, true),
    SR_CLI_STR_OPT("input", convert_args, o.input, true),
    SR_CLI_STR_OPT("test", convert_args, o.test, false),
    SR_CLI_STR_OPT("valid", convert_args, o.valid, false),
    SR_CLI_STR_OPT("output", convert_args, o.output, true),
    SR_CLI_STR_OPT("name", convert_args, o.name, false),
    SR_CLI_STR_OPT("sep", convert_args, sep, false),
    SR_CLI_FLAG_OPT("header", convert_args, o.header, 1),
    SR_CLI_STR_OPT("user-col", convert_args, col[0], false),
    SR_CLI_STR_OPT("item-col", convert_args, col[1], false),
    SR_CLI_STR_OPT("rating-col", convert_args, col[2], false),
    SR_CLI_STR_OPT("time-col", convert_args, col[3], false),
    SR_CLI_REAL_OPT("min-rating", convert_args, o.min_rating),
    SR_CLI_INT_OPT("kcore", SR_CLI_INT64, convert_args, o.kcore, 0, INT64_MAX),
    SR_CLI_FLAG_OPT("dedup", convert_args, o.dedup, 1),
    SR_CLI_FLAG_OPT("no-dedup", convert_args, o.dedup, 0),
    SR_CLI_STR_OPT("split", convert_args, split, false),
    SR_CLI_STR_OPT("ratio", convert_args, ratio, false),
    SR_CLI_REAL_OPT("valid-ratio", convert_args, o.valid_ratio),
    SR_CLI_INT_OPT("seed", SR_CLI_UINT64, convert_args, o.seed, 0, INT64_MAX),
    SR_CLI_FLAG_OPT("force", convert_args, o.overwrite, 1),
    SR_CLI_END,
};

const sr_cli_command sr_cli_data_convert = {
    .group = "data",
    .name = "convert",
    .summary = "raw ratings/sequence files -> HDF5 dataset",
    .usage = "usage: softrec data convert --format FMT --input FILE --output OUT.h5 [options]\n"
             "  Converts raw interactions to a softrec HDF5 dataset (docs/dataset-format.md).\n"
             "formats (--format):\n"
             "  ml-100k    u.data lines 'user<TAB>item<TAB>rating<TAB>time'\n"
             "  ml-1m      ratings.dat lines 'user::item::rating::time' (.gz read directly)\n"
             "  lightgcn   --input train.txt [--test test.txt], lines 'user item item ...'\n"
             "  seq-pairs  one 'user item' pair per line, in time order (SASRec style)\n"
             "  seq-lines  one user per line: 'user item item ...' in time order (ICLRec/Amazon)\n"
             "  csv        generic: --sep C (default ','; 'tab' or '\\t' for tabs), --user-col N|NAME,\n"
             "             --item-col, --rating-col, --time-col (0-based, or a name of the --header line);\n"
             "             RFC 4180 quotes; ids may be any text; time: integer, decimal or ISO 8601\n"
             "  amazon     Amazon ratings CSV 'user,item,rating,timestamp', no header, string ids\n"
             "  recbole    RecBole atomic .inter: tab-separated, header 'user_id:token item_id:token\n"
             "             [rating:float] [timestamp:float]'; the benchmark split with\n"
             "             --input X.train.inter --valid X.valid.inter --test X.test.inter\n"
             "options:\n"
             "  --min-rating R     keep only ratings >= R (implicit feedback threshold)\n"
             "  --kcore K          iterative K-core: every user and item keeps >= K interactions (5 is usual)\n"
             "  --dedup | --no-dedup  keep only the earliest of repeated user-item pairs\n"
             "                     (default: off for seq-pairs/seq-lines, whose repeats are events; on otherwise)\n"
             "  --split given|random|leave-last-out\n"
             "                     default: given for lightgcn or with --test, leave-last-out for seq-* and\n"
             "                     amazon, random otherwise\n"
             "  --ratio TR,VA,TE   random split shares per user (default 0.8,0.1,0.1)\n"
             "  --valid-ratio R    given split: move a random share R of each user's train to valid\n"
             "  --seed S           seed of the random split (default 0)\n"
             "  --name NAME        dataset name (default: output file name)\n"
             "  --test FILE        the given test file (--input is then train)\n"
             "  --valid FILE       the given valid file (with --test)\n"
             "  --force            replace OUT.h5 if it exists (it is replaced only on success)\n"
             "Ids become dense 0-based ids in ascending order of the original id; the\n"
             "original ids are kept in /user_ids and /item_ids (int64) or, when a column's\n"
             "ids are not all integers, as strings in /map/user_ids and /map/item_ids.\n",
    .options = convert_options,
    .opts_size = sizeof(convert_args),
    .needs_mpi = true,
    .init = convert_init,
    .check = convert_check,
    .run = convert_run,
};

/* ---- info ------------------------------------------------------------------- */

typedef struct info_opts {
    const char *path;
    int json;
} info_opts;

static sr_status info_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const char *path = ((const info_opts *)opts)->path;
    const int json = ((const info_opts *)opts)->json;
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

static const sr_cli_option info_options[] = {
    SR_CLI_FLAG_OPT("json", info_opts, json, 1),
    SR_CLI_OPERAND("FILE.h5", info_opts, path, true),
    SR_CLI_END,
};

const sr_cli_command sr_cli_data_info = {
    .group = "data",
    .name = "info",
    .summary = "statistics of an HDF5 dataset (--json)",
    .usage = "usage: softrec data info FILE.h5 [--json]\n"
             "  Users, items, interactions per split, density, popularity skew and provenance\n"
             "  of a dataset (validated against docs/dataset-format.md on the way).\n"
             "  --json   print exactly one JSON object on stdout\n",
    .options = info_options,
    .opts_size = sizeof(info_opts),
    .needs_mpi = true,
    .run = info_run,
};

/* ---- reorder ---------------------------------------------------------------- */

static sr_status reorder_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const sr_reorder_opts o = *(const sr_reorder_opts *)opts;
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

static const sr_cli_option reorder_options[] = {
    SR_CLI_STR_OPT("input", sr_reorder_opts, input, true),
    SR_CLI_STR_OPT("output", sr_reorder_opts, output, true),
    {"parts", SR_CLI_INT64, offsetof(sr_reorder_opts, parts), 1, INT64_MAX, 0, true, NULL},
    SR_CLI_INT_OPT("seed", SR_CLI_UINT64, sr_reorder_opts, seed, 0, INT64_MAX),
    SR_CLI_FLAG_OPT("force", sr_reorder_opts, overwrite, 1),
    SR_CLI_END,
};

const sr_cli_command sr_cli_data_reorder = {
    .group = "data",
    .name = "reorder",
    .summary = "renumber users and items by METIS parts of the train graph (LightGCN locality)",
    .usage = "usage: softrec data reorder --input A.h5 --output B.h5 --parts P [--seed S] [--force]\n"
             "  Renumbers users and items so that METIS parts of the train graph (recursive\n"
             "  bisection, balanced in users and in items) become contiguous id blocks:\n"
             "  LightGCN's halo at P ranks (and P/2, P/4 for P a power of two) shrinks. The input\n"
             "  ids are kept in /map/user_orig_id and /map/item_orig_id; the original ids\n"
             "  (/user_ids, /item_ids, /map/user_ids, /map/item_ids) follow the new order.\n"
             "  --parts P   parts, 1 <= P <= users (use the rank count you will train at)\n"
             "  --seed S    METIS seed (default 0)\n"
             "  --force     replace B.h5 if it exists\n",
    .options = reorder_options,
    .opts_size = sizeof(sr_reorder_opts),
    .needs_mpi = true,
    .run = reorder_run,
};

/* ---- synth ------------------------------------------------------------------ */

typedef struct synth_opts {
    sr_synth_params p;
    const char *output;
    const char *name;
    double progress_s;
    int json;
    int force;
} synth_opts;

static void synth_init(void *opts)
{
    synth_opts *o = opts;
    sr_synth_params_default(&o->p);
    o->p.interactions = -1; /* -1: 20 per user */
    o->name = "synth";
    o->progress_s = 5.0;
}

static sr_status synth_check(void *opts, sr_error *err)
{
    synth_opts *o = opts;
    if (o->p.interactions == -1) o->p.interactions = o->p.users > 0 && o->p.users < INT64_MAX / 20 ? 20 * o->p.users : 0;
    SR_TRY(sr_synth_params_check(&o->p, err));
    if (!*o->output) SR_FAIL(err, SR_ERR_USAGE, "data synth: --output must not be empty");
    if (!*o->name) SR_FAIL(err, SR_ERR_USAGE, "data synth: --name must not be empty");
    return SR_OK;
}

static sr_status writer_sink(void *ctx, int64_t n_users, const int64_t *const indptr[3],
                             const int64_t *const items[3], sr_error *err)
{
    return sr_dataset_writer_append((sr_dataset_writer *)ctx, n_users, indptr, items, NULL, err);
}

/* Rank 0: build, generate, write, summarise. */
static sr_status synth_run(const sr_comm *c, const synth_opts *o, sr_error *err)
{
    double t0 = sr_time_now();
    sr_log log;
    sr_log_init(&log, c->rank, c->size);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    sr_fault fault; /* allocation-failure injection (tests) */
    SR_TRY(sr_fault_from_env(&fault, err));
    sr_fault_arm_mem(&fault, c->rank, &mem);
    const sr_synth_params *p = &o->p;

    sr_synth *s = NULL;
    SR_TRY(sr_synth_create(&s, p, &mem, err));
    double t_build = sr_time_now() - t0;
    size_t catalogue_bytes = mem.current;
    sr_log_root(&log, SR_LOG_INFO, "synth: catalogue of %lld items in %lld topics built in %.2fs (%.1f MB)",
                (long long)p->items, (long long)p->topics, t_build, (double)catalogue_bytes / 1e6);

    char source[512], protocol[128];
    snprintf(source, sizeof source,
             "synthetic: softrec data synth --users %lld --items %lld --interactions %lld --topics %lld "
             "--dim %lld --zipf %g --noise %g --valid-ratio %g --test-ratio %g --seed %llu",
             (long long)p->users, (long long)p->items, (long long)p->interactions, (long long)p->topics,
             (long long)p->dim, p->zipf, p->noise, p->valid_ratio, p->test_ratio, (unsigned long long)p->seed);
    snprintf(protocol, sizeof protocol, "random per-user valid %g test %g", p->valid_ratio, p->test_ratio);
    sr_dataset_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.name = o->name;
    attrs.source = source;
    attrs.source_sha256 = "";
    attrs.split_protocol = protocol;
    attrs.split_seed = (int64_t)p->seed;
    attrs.has_time = 0;

    sr_dataset_writer *w = NULL;
    sr_synth_stats stats;
    memset(&stats, 0, sizeof stats);
    sr_status st = sr_dataset_writer_create(&w, o->output, p->users, p->items, &attrs, err);
    if (st == SR_OK)
        st = sr_synth_generate(s, 0, p->users, writer_sink, w, &log, o->progress_s, &stats, &mem, err);
    if (st == SR_OK) st = sr_dataset_writer_commit(w, err);
    sr_dataset_writer_abort(&w); /* frees; deletes the temporary file after a failure */
    sr_synth_destroy(&s);
    sr_fault_report_mem(&fault, c->rank, &mem, "data synth");
    if (st != SR_OK) return st;

    double secs = sr_time_now() - t0;
    int64_t total = stats.nnz[0] + stats.nnz[1] + stats.nnz[2];
    double peak = (double)sr_mem_process_peak();
    /* CPU time next to wall time: on a shared machine the two differ. */
    struct rusage ru;
    double cpu = getrusage(RUSAGE_SELF, &ru) == 0
                     ? (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)
                     : 0.0;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I,"
                              " s:{s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:I}}",
                              "command", "data synth", "output", o->output, "name", o->name,
                              "users", (json_int_t)p->users, "items", (json_int_t)p->items,
                              "interactions", (json_int_t)total, "train", (json_int_t)stats.nnz[0],
                              "valid", (json_int_t)stats.nnz[1], "test", (json_int_t)stats.nnz[2],
                              "seconds", secs, "cpu_seconds", cpu, "build_seconds", t_build,
                              "interactions_per_s", secs > 0 ? (double)total / secs : 0.0,
                              "peak_rss_mb", peak / 1048576.0, "peak_rss_bytes", (json_int_t)peak,
                              "catalogue_bytes", (json_int_t)catalogue_bytes, "params",
                              "topics", (json_int_t)p->topics, "dim", (json_int_t)p->dim, "zipf", p->zipf,
                              "noise", p->noise, "valid_ratio", p->valid_ratio, "test_ratio", p->test_ratio,
                              "seed", (json_int_t)p->seed, "target_interactions", (json_int_t)p->interactions);
        if (!j) SR_FAIL(err, SR_ERR_INTERNAL, "data synth: cannot build the JSON summary");
        char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        json_decref(j);
        if (!txt) SR_FAIL(err, SR_ERR_NOMEM, "data synth: out of memory for the JSON summary");
        printf("%s\n", txt);
        free(txt);
    } else {
        printf("synth: wrote %s: %lld users, %lld items, %lld interactions (train %lld, valid %lld, test %lld)\n"
               "synth: %.2fs (catalogue %.2fs, cpu %.2fs), %.2fM interactions/s, peak RSS %.1f MB\n",
               o->output, (long long)p->users, (long long)p->items, (long long)total, (long long)stats.nnz[0],
               (long long)stats.nnz[1], (long long)stats.nnz[2], secs, t_build, cpu,
               secs > 0 ? (double)total / secs / 1e6 : 0.0, peak / 1048576.0);
    }
    fflush(stdout);
    return SR_OK;
}

static sr_status synth_cmd_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const synth_opts *o = opts;
    /* The output path is checked where it will be written, before anything
     * is generated. */
    sr_status st = c->rank == 0 ? sr_dataset_check_output(o->output, o->force, err) : SR_OK;
    SR_TRY(sr_comm_agree(c, err));
    if (c->rank == 0) st = synth_run(c, o, err);
    (void)st;
    return sr_comm_agree(c, err);
}

#define SYNTH_INT(n, f) SR_CLI_INT_OPT(n, SR_CLI_INT64, synth_opts, f, INT64_MIN, INT64_MAX)
static const sr_cli_option synth_options[] = {
    SYNTH_INT("users", p.users),
    SYNTH_INT("items", p.items),
    {"interactions", SR_CLI_INT64, offsetof(synth_opts, p.interactions), 0, INT64_MAX, 0, false, NULL},
    SYNTH_INT("topics", p.topics),
    SYNTH_INT("dim", p.dim),
    SR_CLI_REAL_OPT("zipf", synth_opts, p.zipf),
    SR_CLI_REAL_OPT("noise", synth_opts, p.noise),
    SR_CLI_REAL_OPT("valid-ratio", synth_opts, p.valid_ratio),
    SR_CLI_REAL_OPT("test-ratio", synth_opts, p.test_ratio),
    SR_CLI_INT_OPT("seed", SR_CLI_UINT64, synth_opts, p.seed, 0, INT64_MAX),
    SR_CLI_STR_OPT("name", synth_opts, name, false),
    SR_CLI_STR_OPT("output", synth_opts, output, true),
    SYNTH_INT("block-users", p.block_users),
    SR_CLI_REAL_OPT("progress", synth_opts, progress_s),
    SR_CLI_FLAG_OPT("force", synth_opts, force, 1),
    SR_CLI_FLAG_OPT("json", synth_opts, json, 1),
    SR_CLI_END,
};
#undef SYNTH_INT

const sr_cli_command sr_cli_data_synth = {
    .group = "data",
    .name = "synth",
    .summary = "planted synthetic dataset (millions of items)",
    .usage = "usage: softrec data synth --output PATH [options]\n"
             "Planted synthetic dataset: Zipf popularity, items in topics, users mixing a few topics.\n"
             "  --users U            users (default 10000)\n"
             "  --items N            items (default 100000, up to 2147483647)\n"
             "  --interactions M     target total interactions, ~M/U per user, >= 3U (default 20 U)\n"
             "  --topics T           topics (default 64)\n"
             "  --dim D              topics mixed per user, the planted latent rank (default 4, <= 256)\n"
             "  --zipf S             popularity exponent (default 1.0)\n"
             "  --noise E            share of draws by popularity alone (default 0.1)\n"
             "  --valid-ratio R      per-user random valid share (default 0.1)\n"
             "  --test-ratio R       per-user random test share (default 0.1)\n"
             "  --seed S             seed (default 1)\n"
             "  --name NAME          dataset name attribute (default synth)\n"
             "  --block-users B      users generated and written per block (default 4096)\n"
             "  --progress SEC       progress line interval on stderr, 0 = off (default 5)\n"
             "  --force              replace an existing output file\n"
             "  --json               print the summary as one JSON object\n",
    .options = synth_options,
    .opts_size = sizeof(synth_opts),
    .needs_mpi = true,
    .init = synth_init,
    .check = synth_check,
    .run = synth_cmd_run,
};
