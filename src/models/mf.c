/* mf.c: MF tables and their layout-independent initialisation. */
#include "models/mf.h"

#include <string.h>

#include "core/rng.h"

void sr_table_init_normal(float *table, int64_t n, int64_t d, double std, uint64_t seed,
                          uint32_t table_id, const sr_shard *map, int rank, int64_t first_global)
{
    sr_rng r;
    sr_rng_init(&r, seed, table_id, SR_STREAM_INIT);
    for (int64_t k = 0; k < n; k++) {
        int64_t g = map ? sr_shard_global(map, rank, k) : first_global + k;
        /* One normal consumes one Philox block (4 words): row g starts at block g*d. */
        sr_rng_seek(&r, (uint64_t)g * (uint64_t)d);
        for (int64_t j = 0; j < d; j++) table[k * d + j] = (float)(std * sr_rng_normal(&r));
    }
}

sr_status sr_mf_create(sr_mf *m, const sr_config *cfg, const sr_optim *opt, int64_t u0, int64_t u1,
                       const sr_shard *items, int rank, sr_mem *mem, sr_error *err)
{
    memset(m, 0, sizeof *m);
    m->d = cfg->model_dim;
    m->u0 = u0;
    m->u1 = u1;
    m->n_items = sr_shard_count(items, rank);
    m->user = sr_mem_calloc(mem, (size_t)(u1 - u0), (size_t)m->d * sizeof(float), "user embeddings", err);
    m->item = sr_mem_calloc(mem, (size_t)m->n_items, (size_t)m->d * sizeof(float), "item embeddings", err);
    if (!m->user || !m->item) goto fail;
    uint64_t seed = (uint64_t)cfg->train_seed;
    sr_table_init_normal(m->item, m->n_items, m->d, cfg->model_init_std, seed, 0, items, rank, 0);
    sr_table_init_normal(m->user, u1 - u0, m->d, cfg->model_init_std, seed, 1, NULL, rank, u0);
    if (sr_optim_state_create(&m->user_state, opt, u1 - u0, m->d, mem, err) != SR_OK) goto fail;
    if (sr_optim_state_create(&m->item_state, opt, m->n_items, m->d, mem, err) != SR_OK) goto fail;
    return SR_OK;
fail:
    sr_mf_destroy(m, mem);
    return err->code;
}

void sr_mf_destroy(sr_mf *m, sr_mem *mem)
{
    sr_mem_free(mem, m->user);
    sr_mem_free(mem, m->item);
    sr_optim_state_destroy(&m->user_state, mem);
    sr_optim_state_destroy(&m->item_state, mem);
    m->user = m->item = NULL;
}
