/* seqembed.c: sharded input-embedding lookup and gradient push (contract in
 * seqembed.h), a thin layer over sr_exchange. */
#include "models/seqembed.h"

#include <string.h>

struct sr_seqembed {
    const sr_comm *c;
    const sr_shard *items;
    int64_t d, n_local;
    sr_mem *mem;
    sr_exchange *x;      /* plan of the last lookup */
    int64_t n, m;        /* positions, non-padding positions of the last lookup */
    int64_t *pos;        /* [m] non-padding positions */
    int64_t *gid;        /* [m] their ids */
    float *buf;          /* m x (d + 1) rows in exchange order */
    int64_t cap_pos, cap_gid, cap_buf; /* capacities in elements */
    float *acc;          /* n_local x (d + 1), zero between pushes; NULL until used */
    int64_t *rows;       /* push output */
    float *g;
    int64_t cap_rows, cap_g, cap_acc;
    int64_t bytes;
};

/* Grow *p to need elements of elem bytes (contents dropped). One rank's
 * failure in a collective path: abort the job (docs/design.md, "Errors"). */
static void grow(sr_seqembed *s, void **p, int64_t *cap, int64_t need, size_t elem, const char *what)
{
    if (need <= *cap && *p) return;
    sr_error e;
    sr_error_clear(&e);
    sr_mem_free(s->mem, *p);
    *p = sr_mem_calloc(s->mem, (size_t)(need > 0 ? need : 1), elem, what, &e);
    if (!*p) sr_comm_abort(s->c, &e);
    *cap = need;
}

sr_status sr_seqembed_create(sr_seqembed **out, const sr_comm *c, const sr_shard *items, int64_t d,
                             sr_mem *mem, sr_error *err)
{
    *out = NULL;
    if (d < 1) SR_FAIL(err, SR_ERR_INTERNAL, "seqembed: row width %lld must be >= 1", (long long)d);
    if (items->p != c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "seqembed: shard map has %d ranks, communicator %d", items->p, c->size);
    sr_seqembed *s = sr_mem_calloc(mem, 1, sizeof *s, "seqembed", err);
    if (!s) return err->code;
    s->c = c, s->items = items, s->d = d, s->mem = mem;
    s->n_local = sr_shard_count(items, c->rank);
    *out = s;
    return SR_OK;
}

void sr_seqembed_destroy(sr_seqembed **ps)
{
    if (!ps || !*ps) return;
    sr_seqembed *s = *ps;
    sr_exchange_destroy(&s->x);
    sr_mem_free(s->mem, s->pos);
    sr_mem_free(s->mem, s->gid);
    sr_mem_free(s->mem, s->buf);
    sr_mem_free(s->mem, s->acc);
    sr_mem_free(s->mem, s->rows);
    sr_mem_free(s->mem, s->g);
    sr_mem_free(s->mem, s);
    *ps = NULL;
}

sr_status sr_seqembed_lookup(sr_seqembed *s, const int64_t *ids, int64_t n, const float *local_table,
                             float *x, sr_error *err)
{
    const int64_t d = s->d;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += ids[i] != -1;
    grow(s, (void **)&s->pos, &s->cap_pos, m, sizeof(int64_t), "seqembed positions");
    grow(s, (void **)&s->gid, &s->cap_gid, m, sizeof(int64_t), "seqembed ids");
    grow(s, (void **)&s->buf, &s->cap_buf, m * (d + 1), sizeof(float), "seqembed rows");
    m = 0;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] != -1) s->pos[m] = i, s->gid[m++] = ids[i];
    s->n = n, s->m = m;
    sr_exchange_destroy(&s->x);
    /* ids outside [0, N) (other than -1) are agreed as an error by the plan */
    SR_TRY(sr_exchange_plan(&s->x, s->c, s->items, s->gid, m, err));
    SR_TRY(sr_exchange_fetch(s->x, local_table, d, s->buf, err));
    s->bytes = sr_exchange_bytes_sent(s->x);
    memset(x, 0, (size_t)(n * d) * sizeof(float));
    for (int64_t k = 0; k < m; k++) memcpy(x + s->pos[k] * d, s->buf + k * d, (size_t)d * sizeof(float));
    return SR_OK;
}

sr_status sr_seqembed_push_dense(sr_seqembed *s, const float *dx, float *dense, sr_error *err)
{
    const int64_t d = s->d;
    if (!s->x) SR_FAIL(err, SR_ERR_INTERNAL, "seqembed push before any lookup");
    for (int64_t k = 0; k < s->m; k++) memcpy(s->buf + k * d, dx + s->pos[k] * d, (size_t)d * sizeof(float));
    SR_TRY(sr_exchange_push(s->x, s->buf, d, dense, err));
    s->bytes += sr_exchange_bytes_sent(s->x);
    return SR_OK;
}

sr_status sr_seqembed_push(sr_seqembed *s, const float *dx, const sr_item_grad *also,
                           sr_item_grad *out, sr_error *err)
{
    const int64_t d = s->d, w = d + 1, nl = s->n_local;
    if (!s->x) SR_FAIL(err, SR_ERR_INTERNAL, "seqembed push before any lookup");
    if (also && also->n > 0 && !also->rows)
        SR_FAIL(err, SR_ERR_INTERNAL, "seqembed push: a dense gradient to merge (use push_dense)");
    grow(s, (void **)&s->acc, &s->cap_acc, nl * w, sizeof(float), "seqembed gradient accumulator");
    /* Rows of width d + 1: the last column counts contributions, so the
     * owner can tell which rows were touched (see seqembed.h). */
    for (int64_t k = 0; k < s->m; k++) {
        memcpy(s->buf + k * w, dx + s->pos[k] * d, (size_t)d * sizeof(float));
        s->buf[k * w + d] = 1.0f;
    }
    SR_TRY(sr_exchange_push(s->x, s->buf, w, s->acc, err));
    s->bytes += sr_exchange_bytes_sent(s->x);
    for (int64_t k = 0; also && k < also->n; k++) {
        float *a = s->acc + also->rows[k] * w;
        const float *gk = also->g + k * d;
        for (int64_t j = 0; j < d; j++) a[j] += gk[j];
        a[d] += 1.0f;
    }
    int64_t cnt = 0;
    for (int64_t r = 0; r < nl; r++) cnt += s->acc[r * w + d] != 0.0f;
    grow(s, (void **)&s->rows, &s->cap_rows, cnt, sizeof(int64_t), "seqembed gradient rows");
    grow(s, (void **)&s->g, &s->cap_g, cnt * d, sizeof(float), "seqembed gradient");
    int64_t k = 0;
    for (int64_t r = 0; r < nl; r++) {
        float *a = s->acc + r * w;
        if (a[d] == 0.0f) continue;
        s->rows[k] = r;
        memcpy(s->g + k * d, a, (size_t)d * sizeof(float));
        memset(a, 0, (size_t)w * sizeof(float));
        k++;
    }
    out->n = cnt, out->rows = s->rows, out->g = s->g;
    return SR_OK;
}

int64_t sr_seqembed_bytes_sent(const sr_seqembed *s) { return s ? s->bytes : 0; }
