/* optim.c: optimiser kernels. Inner loops over d are simple so the compiler
 * vectorises them; the update is memory-bound (reads W, G, m, v; writes W,
 * m, v), so its limit is memory bandwidth, not FLOPs. */
#include "nn/optim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

sr_status sr_optim_from_config(sr_optim *o, const sr_config *cfg, sr_error *err)
{
    memset(o, 0, sizeof *o);
    if (!strcmp(cfg->optim_name, "sgd")) o->kind = SR_OPTIM_SGD;
    else if (!strcmp(cfg->optim_name, "adam")) o->kind = SR_OPTIM_ADAM;
    else if (!strcmp(cfg->optim_name, "adagrad")) o->kind = SR_OPTIM_ADAGRAD;
    else SR_FAIL(err, SR_ERR_CONFIG, "optim.name = '%s' is not one of sgd|adam|adagrad", cfg->optim_name);
    o->lr = cfg->train_lr;
    o->beta1 = cfg->optim_beta1;
    o->beta2 = cfg->optim_beta2;
    o->eps = cfg->optim_eps;
    o->weight_decay = cfg->optim_weight_decay;
    return SR_OK;
}

sr_status sr_lr_schedule_from_config(sr_lr_schedule *s, const sr_config *cfg, sr_error *err)
{
    memset(s, 0, sizeof *s);
    s->lr = cfg->train_lr;
    s->gamma = cfg->train_lr_gamma;
    const char *p = cfg->train_lr_milestones;
    while (*p) {
        char *end;
        errno = 0;
        long long e = strtoll(p, &end, 10);
        bool ok = end != p && !errno && e > 0 && (*end == ',' || !*end) && (s->n == 0 || e > s->epoch[s->n - 1]);
        if (!ok || s->n == SR_LR_MILESTONES_MAX)
            SR_FAIL(err, SR_ERR_CONFIG,
                    "train.lr_milestones = '%s': want at most %d strictly ascending positive epoch numbers "
                    "separated by commas",
                    cfg->train_lr_milestones, SR_LR_MILESTONES_MAX);
        s->epoch[s->n++] = e;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            SR_FAIL(err, SR_ERR_CONFIG, "train.lr_milestones = '%s': ends with a comma", cfg->train_lr_milestones);
    }
    return SR_OK;
}

double sr_lr_at(const sr_lr_schedule *s, int64_t step, int64_t steps_per_epoch)
{
    double lr = s->lr;
    for (int k = 0; k < s->n; k++)
        if (step - 1 >= s->epoch[k] * steps_per_epoch) lr *= s->gamma;
    return lr;
}

sr_status sr_optim_state_create(sr_optim_state *s, const sr_optim *o, int64_t rows, int64_t d,
                                sr_mem *mem, sr_error *err)
{
    memset(s, 0, sizeof *s);
    s->rows = rows;
    s->d = d;
    size_t n = (size_t)rows * (size_t)d;
    if (o->kind == SR_OPTIM_ADAM || o->kind == SR_OPTIM_ADAGRAD) {
        s->m = sr_mem_calloc(mem, n, sizeof(float), "optimiser state", err);
        if (!s->m) return err->code;
    }
    if (o->kind == SR_OPTIM_ADAM) {
        s->v = sr_mem_calloc(mem, n, sizeof(float), "optimiser state", err);
        if (!s->v) {
            sr_optim_state_destroy(s, mem);
            return err->code;
        }
    }
    return SR_OK;
}

void sr_optim_state_destroy(sr_optim_state *s, sr_mem *mem)
{
    sr_mem_free(mem, s->m);
    sr_mem_free(mem, s->v);
    s->m = s->v = NULL;
}

void sr_optim_update(const sr_optim *o, sr_optim_state *s, float *W, const float *G,
                     const int64_t *rows, int64_t n, int64_t d, int64_t t)
{
    const float lr = (float)o->lr, wd = (float)o->weight_decay;
    const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    /* Bias corrections folded into the step size (Kingma & Ba, section 2). */
    const double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
    const float alpha = (float)(o->lr * sqrt(c2) / c1);
    const float eps_hat = (float)(o->eps * sqrt(c2));
    for (int64_t k = 0; k < n; k++) {
        int64_t r = rows ? rows[k] : k;
        float *w = W + r * d;
        const float *g = G + k * d;
        switch (o->kind) {
        case SR_OPTIM_SGD:
            for (int64_t j = 0; j < d; j++) w[j] -= lr * (g[j] + wd * w[j]);
            break;
        case SR_OPTIM_ADAGRAD: {
            float *acc = s->m + r * d;
            for (int64_t j = 0; j < d; j++) {
                float gj = g[j] + wd * w[j];
                acc[j] += gj * gj;
                w[j] -= lr * gj / (sqrtf(acc[j]) + eps);
            }
            break;
        }
        case SR_OPTIM_ADAM: {
            float *m = s->m + r * d, *v = s->v + r * d;
            for (int64_t j = 0; j < d; j++) {
                float gj = g[j] + wd * w[j];
                m[j] = b1 * m[j] + (1.0f - b1) * gj;
                v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
                w[j] -= alpha * m[j] / (sqrtf(v[j]) + eps_hat);
            }
            break;
        }
        }
    }
}
