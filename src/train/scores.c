/* scores.c: dot-product or cosine / temperature scores (scores.h). */
#include "train/scores.h"

#include <string.h>

#include "models/normalize.h"

sr_status sr_scores_init(sr_scores *s, double tau, int64_t n_items, int64_t d, int64_t q_max, sr_mem *mem,
                         sr_error *err)
{
    memset(s, 0, sizeof *s);
    s->tau = (float)tau;
    s->n_items = n_items;
    s->d = d;
    s->q_max = q_max;
    s->mem = mem;
    if (tau <= 0) return SR_OK;
    s->vn = sr_mem_calloc(mem, (size_t)(n_items * d > 0 ? n_items * d : 1), sizeof(float), "normalised item rows", err);
    s->vinv = sr_mem_calloc(mem, (size_t)(n_items > 0 ? n_items : 1), sizeof(float), "item norms", err);
    s->qinv = sr_mem_calloc(mem, (size_t)(q_max > 0 ? q_max : 1), sizeof(float), "query norms", err);
    if (!s->vn || !s->vinv || !s->qinv) {
        sr_scores_free(s);
        return err->code;
    }
    return SR_OK;
}

void sr_scores_free(sr_scores *s)
{
    sr_mem_free(s->mem, s->vn);
    sr_mem_free(s->mem, s->vinv);
    sr_mem_free(s->mem, s->qinv);
    s->vn = s->vinv = s->qinv = NULL;
}

const float *sr_scores_items(sr_scores *s, const float *rows)
{
    if (s->tau <= 0) return rows;
    sr_rows_normalize(rows, s->n_items, s->d, 1.0f, s->vn, s->vinv);
    return s->vn;
}

void sr_scores_queries(sr_scores *s, float *q, int64_t n, bool for_loss)
{
    if (s->tau <= 0 || n <= 0) return;
    sr_rows_normalize(q, n, s->d, for_loss ? 1.0f / s->tau : 1.0f, q, s->qinv);
}

void sr_scores_backward(sr_scores *s, sr_item_grad *dv, const float *q, float *dq, int64_t n)
{
    if (s->tau <= 0) return;
    const int64_t d = s->d;
    if (dv->rows)
        for (int64_t k = 0; k < dv->n; k++)
            sr_rows_normalize_backward(s->vn + dv->rows[k] * d, s->vinv + dv->rows[k], 1, d, 1.0f, dv->g + k * d);
    else
        sr_rows_normalize_backward(s->vn, s->vinv, dv->n, d, 1.0f, dv->g);
    sr_rows_normalize_backward(q, s->qinv, n, d, 1.0f / s->tau, dq);
}
