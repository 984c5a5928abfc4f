/* shard.c: item-to-rank maps. */
#include "comm/shard.h"

#include <stdlib.h>
#include <string.h>

sr_status sr_shard_init_block(sr_shard *s, int64_t n, int p, const int64_t *counts, sr_error *err)
{
    memset(s, 0, sizeof *s);
    if (n < 0) SR_FAIL(err, SR_ERR_INTERNAL, "shard map: negative size %lld", (long long)n);
    if (p < 1) SR_FAIL(err, SR_ERR_INTERNAL, "shard map: %d ranks", p);
    s->start = malloc(((size_t)p + 1) * sizeof *s->start);
    if (!s->start) SR_FAIL(err, SR_ERR_NOMEM, "shard map: out of memory for %d ranks", p);
    s->n = n;
    s->p = p;
    s->layout = SR_SHARD_BLOCK;
    s->start[0] = 0;
    for (int r = 0; r < p; r++) {
        int64_t cnt;
        if (counts) {
            cnt = counts[r];
            if (cnt < 0) {
                sr_shard_destroy(s);
                SR_FAIL(err, SR_ERR_INTERNAL, "shard map: rank %d given %lld items", r, (long long)cnt);
            }
        } else {
            cnt = n / p + (r < n % p ? 1 : 0); /* the first n % p ranks take one more */
        }
        s->start[r + 1] = s->start[r] + cnt;
    }
    if (s->start[p] != n) {
        int64_t got = s->start[p];
        sr_shard_destroy(s);
        SR_FAIL(err, SR_ERR_INTERNAL, "shard map: counts sum to %lld, expected %lld", (long long)got,
                (long long)n);
    }
    return SR_OK;
}

sr_status sr_shard_init_interleave(sr_shard *s, int64_t n, int p, sr_error *err)
{
    memset(s, 0, sizeof *s);
    if (n < 0 || p < 1) SR_FAIL(err, SR_ERR_INTERNAL, "shard map: bad size %lld over %d ranks", (long long)n, p);
    s->n = n;
    s->p = p;
    s->layout = SR_SHARD_INTERLEAVE;
    return SR_OK;
}

sr_status sr_shard_init_named(sr_shard *s, const char *layout, int64_t n, int p, sr_error *err)
{
    if (!strcmp(layout, "block")) return sr_shard_init_block(s, n, p, NULL, err);
    if (!strcmp(layout, "interleave")) return sr_shard_init_interleave(s, n, p, err);
    SR_FAIL(err, SR_ERR_CONFIG, "shard.layout = '%s' is not one of block|interleave", layout);
}

void sr_shard_destroy(sr_shard *s)
{
    free(s->start);
    s->start = NULL;
}

int sr_shard_owner(const sr_shard *s, int64_t id)
{
    if (s->layout == SR_SHARD_INTERLEAVE) return (int)(id % s->p);
    /* Binary search: the last rank whose start <= id (skips empty ranks). */
    int lo = 0, hi = s->p - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->start[mid] <= id) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int64_t sr_shard_local(const sr_shard *s, int64_t id)
{
    if (s->layout == SR_SHARD_INTERLEAVE) return id / s->p;
    return id - s->start[sr_shard_owner(s, id)];
}

int64_t sr_shard_global(const sr_shard *s, int rank, int64_t row)
{
    if (s->layout == SR_SHARD_INTERLEAVE) return row * s->p + rank;
    return s->start[rank] + row;
}

int64_t sr_shard_count(const sr_shard *s, int rank)
{
    if (s->layout == SR_SHARD_INTERLEAVE) return s->n > rank ? (s->n - rank + s->p - 1) / s->p : 0;
    return s->start[rank + 1] - s->start[rank];
}
