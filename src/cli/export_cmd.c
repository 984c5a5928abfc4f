/* export_cmd.c: `softrec export` (the vectors a model scores with) and
 * `softrec recommend` (every user's top K over the whole catalogue), both
 * from a checkpoint at any rank count; users and items carry their
 * original ids the dataset stores (string or integer maps; dense ids without). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "io/dataset.h"
#include "train/train.h"

typedef struct model_opts {
    const char *ckpt, *dataset, *output;
    sr_cli_list sets;
    int64_t k;
} model_opts;

static sr_status export_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const model_opts *o = opts;
    sr_config cfg;
    sr_trainer *t = NULL;
    SR_TRY(sr_cli_open_checkpoint(ctx->comm, o->ckpt, o->dataset, &o->sets, &cfg, &t, err));
    const sr_dataset_meta meta = *sr_trainer_meta(t);
    sr_status st = sr_trainer_export(t, o->output, err);
    sr_trainer_destroy(&t);
    if (st == SR_OK && ctx->comm->rank == 0) {
        json_t *row = json_object();
        json_object_set_new(row, "export", json_string(o->output));
        json_object_set_new(row, "checkpoint", json_string(o->ckpt));
        json_object_set_new(row, "users", json_integer(meta.num_users));
        json_object_set_new(row, "items", json_integer(meta.num_items));
        json_object_set_new(row, "dim", json_integer(cfg.model_dim));
        sr_cli_print_json(row);
    }
    return st;
}

/* ---- recommend --------------------------------------------------------------- */

/* Rank 0's output: a temporary renamed into place at the end, the id maps. */
typedef struct rec_out {
    int rank;
    FILE *f;
    char path[1100], tmp[1200];
    sr_dataset_names users, items; /* rank 0: the original id of every dense id */
    int64_t rows;
} rec_out;

/* One CSV field: quoted (RFC 4180) when it holds a separator, a quote or a
 * line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static sr_status rec_sink(void *ctx, const int64_t *users, int64_t n, const int64_t *items, const float *scores,
                          int64_t k, sr_error *err)
{
    rec_out *r = ctx;
    if (r->rank != 0) return SR_OK;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k && items[i * k + j] >= 0; j++) {
            csv_field(r->f, r->users.name[users[i]]);
            fprintf(r->f, ",%lld,", (long long)j + 1);
            csv_field(r->f, r->items.name[items[i * k + j]]);
            fprintf(r->f, ",%.6g\n", scores[i * k + j]);
            r->rows++;
        }
    if (ferror(r->f)) SR_FAIL(err, SR_ERR_IO, "%s: write failed: %s", r->tmp, strerror(errno));
    return SR_OK;
}

/* The dataset's original ids, all of them on rank 0 (collective read). */
static sr_status read_ids(const sr_comm *c, const sr_config *cfg, rec_out *r, sr_error *err)
{
    sr_dataset *ds = NULL;
    SR_TRY(sr_dataset_open(&ds, c, cfg->data_path, err));
    const sr_dataset_meta *m = sr_dataset_meta_get(ds);
    const int root = c->rank == 0;
    sr_status st = sr_dataset_read_id_names(ds, 0, 0, root ? m->num_users : 0, &r->users, err);
    if (st == SR_OK) st = sr_dataset_read_id_names(ds, 1, 0, root ? m->num_items : 0, &r->items, err);
    sr_dataset_close(&ds);
    return st;
}

static sr_status rec_open(const sr_comm *c, rec_out *r, const char *output, sr_error *err)
{
    r->rank = c->rank;
    snprintf(r->path, sizeof r->path, "%s", output);
    snprintf(r->tmp, sizeof r->tmp, "%s.tmp.%ld", output, (long)getpid());
    if (c->rank == 0 && !(r->f = fopen(r->tmp, "w")))
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create: %s", r->tmp, strerror(errno));
    if (r->f) fprintf(r->f, "user,rank,item,score\n");
    return sr_comm_agree(c, err);
}

/* Commit (rank 0 renames) or discard; the verdict is agreed. */
static sr_status rec_close(const sr_comm *c, rec_out *r, sr_status st, sr_error *err)
{
    if (r->f) {
        if (fclose(r->f) != 0 && st == SR_OK)
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: write failed: %s", r->tmp, strerror(errno));
        if (st == SR_OK && rename(r->tmp, r->path) != 0)
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot rename to %s: %s", r->tmp, r->path,
                              strerror(errno));
        if (st != SR_OK) remove(r->tmp);
    }
    sr_dataset_names_free(&r->users);
    sr_dataset_names_free(&r->items);
    return st == SR_OK ? sr_comm_agree(c, err) : st;
}

static sr_status recommend_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const model_opts *o = opts;
    sr_config cfg;
    sr_trainer *t = NULL;
    SR_TRY(sr_cli_open_checkpoint(c, o->ckpt, o->dataset, &o->sets, &cfg, &t, err));
    rec_out r;
    memset(&r, 0, sizeof r);
    sr_status st = read_ids(c, &cfg, &r, err);
    if (st == SR_OK) st = rec_open(c, &r, o->output, err);
    if (st == SR_OK) st = sr_trainer_recommend(t, o->k, rec_sink, &r, err);
    const int64_t users = sr_trainer_meta(t)->num_users;
    sr_trainer_destroy(&t);
    st = rec_close(c, &r, st, err);
    if (st == SR_OK && c->rank == 0) {
        json_t *row = json_object();
        json_object_set_new(row, "recommend", json_string(o->output));
        json_object_set_new(row, "checkpoint", json_string(o->ckpt));
        json_object_set_new(row, "users", json_integer(users));
        json_object_set_new(row, "k", json_integer(o->k));
        json_object_set_new(row, "rows", json_integer(r.rows));
        sr_cli_print_json(row);
    }
    return st;
}

/* ---- the descriptors ------------------------------------------------------- */

static void rec_init(void *opts) { ((model_opts *)opts)->k = 20; }

static const sr_cli_option export_options[] = {
    SR_CLI_STR_OPT("checkpoint", model_opts, ckpt, true),
    SR_CLI_STR_OPT("output", model_opts, output, true),
    SR_CLI_STR_OPT("dataset", model_opts, dataset, false),
    SR_CLI_LIST_OPT("set", model_opts, sets),
    SR_CLI_END,
};

const sr_cli_command sr_cli_export = {
    .name = "export",
    .summary = "the user and item vectors a checkpoint scores with, as HDF5",
    .usage = "usage: softrec export --checkpoint MODEL.h5 --output VECTORS.h5 [--dataset DATA.h5] [--set key=value]...\n"
             "  Writes /export/user_vectors (num_users x d: each user's query for ranking, from\n"
             "  its train and valid history, after LightGCN's propagation or SASRec's encoder,\n"
             "  scaled as the loss sees it) and /export/item_vectors (num_items x d, normalised\n"
             "  when model.temperature > 0): q . v is the model's score. Not for loss.name = hsm.\n",
    .options = export_options,
    .opts_size = sizeof(model_opts),
    .needs_mpi = true,
    .run = export_run,
};

static const sr_cli_option recommend_options[] = {
    SR_CLI_STR_OPT("checkpoint", model_opts, ckpt, true),
    SR_CLI_STR_OPT("output", model_opts, output, true),
    SR_CLI_STR_OPT("dataset", model_opts, dataset, false),
    SR_CLI_INT_OPT("k", SR_CLI_INT64, model_opts, k, 1, INT64_MAX),
    SR_CLI_LIST_OPT("set", model_opts, sets),
    SR_CLI_END,
};

const sr_cli_command sr_cli_recommend = {
    .name = "recommend",
    .summary = "every user's top K items over the whole catalogue, as CSV",
    .usage = "usage: softrec recommend --checkpoint MODEL.h5 --output TOP.csv [--k K] [--dataset DATA.h5] [--set key=value]...\n"
             "  Ranks the whole catalogue for every user with its known items (train, valid,\n"
             "  test) masked and writes 'user,rank,item,score' rows (K per user, default 20),\n"
             "  ids as the dataset's original ids when it stores them. Any rank count.\n",
    .options = recommend_options,
    .opts_size = sizeof(model_opts),
    .needs_mpi = true,
    .init = rec_init,
    .run = recommend_run,
};
