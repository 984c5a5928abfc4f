/* backbone.c: the registry of backbones and the checkpoint table set. */
#include "models/backbone.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/lightgcn.h"
#include "models/mf.h"
#include "models/sasrec.h"

/* Adding a backbone: its file, and one line here. */
static const sr_backbone_ops *const registry[] = {
    &sr_backbone_mf,
    &sr_backbone_sasrec,
    &sr_backbone_lightgcn,
};
#define N_REGISTRY ((int)(sizeof registry / sizeof registry[0]))

const sr_backbone_ops *sr_backbone_at(int i) { return i >= 0 && i < N_REGISTRY ? registry[i] : NULL; }

const sr_backbone_ops *sr_backbone_find(const char *name)
{
    for (int i = 0; i < N_REGISTRY; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

const char *sr_backbone_choice(size_t i, const char **help)
{
    if (i >= (size_t)N_REGISTRY) return NULL;
    if (help) *help = registry[i]->help;
    return registry[i]->name;
}

void sr_table_set_add(sr_table_set *s, float *data, int64_t rows, int64_t global_rows, int64_t cols,
                      const sr_shard *map, int64_t first, const char *fmt, ...)
{
    if (s->n >= SR_TABLES_MAX) return;
    sr_table *t = &s->t[s->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->data = data;
    t->rows = rows;
    t->global_rows = global_rows;
    t->cols = cols;
    t->map = map;
    t->first = first;
}

void sr_rows_gather(float *out, const float *table, const int64_t *rows, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++) memcpy(out + i * d, table + rows[i] * d, (size_t)d * sizeof(float));
}
