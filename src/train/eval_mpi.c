/* eval_mpi.c: gather-and-merge of local top-k lists; metric sums across ranks. */
#include "train/eval_mpi.h"

#include <math.h>
#include <string.h>

#include "comm/collectives.h"

/* A candidate as 3 floats: score, id high part, id low part (both < 2^24,
 * so exact in float); padding has a negative high part. */
static void encode_(float s, int64_t id, float *out)
{
    out[0] = s;
    out[1] = id < 0 ? -1.0f : (float)(id >> 24);
    out[2] = id < 0 ? 0.0f : (float)(id & 0xFFFFFF);
}

static int64_t decode_id_(const float *in)
{
    return in[1] < 0 ? -1 : ((int64_t)in[1] << 24) | (int64_t)in[2];
}

sr_status sr_eval_topk(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                       int64_t n_local, const sr_shard *shard, const int64_t *excl_indptr,
                       const int64_t *excl_ids, int64_t k, sr_topk_ws *ws, float *top_score,
                       int64_t *top_id, sr_error *err)
{
    sr_error mine;
    sr_error_clear(&mine);
    sr_mem *mem = sr_topk_ws_mem(ws);
    const int64_t bk = b * k, p = c->size;
    float *send = NULL, *recv = NULL, *cs = NULL;
    int64_t *cid = NULL, *rows = NULL;
    if (shard->p != c->size)
        sr_error_set(&mine, SR_ERR_INTERNAL, __FILE__, __LINE__,
                     "eval top-k: shard map over %d ranks, communicator of %d", shard->p, c->size);
    else if (sr_eval_topk_check(b, d, n_local, shard, c->rank, excl_indptr, excl_ids, k, ws, &mine) == SR_OK &&
             shard->n >= ((int64_t)1 << 48))
        sr_error_set(&mine, SR_ERR_INTERNAL, __FILE__, __LINE__, "eval top-k: %lld items exceed 2^48 ids",
                     (long long)shard->n);
    if (mine.code == SR_OK) {
        send = sr_mem_calloc(mem, (size_t)bk * 3, sizeof(float), "top-k send rows", &mine);
        recv = sr_mem_calloc(mem, (size_t)(p * bk) * 3, sizeof(float), "top-k gathered rows", &mine);
        cs = sr_mem_calloc(mem, (size_t)(p * bk), sizeof(float), "top-k candidate scores", &mine);
        cid = sr_mem_calloc(mem, (size_t)(p * bk), sizeof(int64_t), "top-k candidate ids", &mine);
        rows = sr_mem_calloc(mem, (size_t)p, sizeof(int64_t), "top-k row counts", &mine);
    }
    /* Local problems become everyone's before the first collective payload. */
    sr_status st = sr_comm_agree(c, &mine);
    if (st == SR_OK) {
        /* Local list into cs/cid block 0 as scratch, then encode. */
        st = sr_eval_topk_local(q, b, d, v, n_local, shard, c->rank, excl_indptr, excl_ids, k, ws, cs,
                                cid, &mine);
        SR_ASSERT(st == SR_OK); /* checked above */
        for (int64_t e = 0; e < bk; e++) encode_(cs[e], cid[e], send + 3 * e);
        for (int64_t r = 0; r < p; r++) rows[r] = bk;
        st = sr_comm_allgather_rows(c, send, rows, 3, recv, &mine);
    }
    if (st == SR_OK) {
        for (int64_t e = 0; e < p * bk; e++) {
            cs[e] = recv[3 * e];
            cid[e] = decode_id_(recv + 3 * e);
        }
        sr_eval_topk_merge(c->size, b, k, cs, cid, top_score, top_id);
    } else {
        sr_error_set(err, mine.code, mine.file, mine.line, "%s", mine.msg);
    }
    sr_mem_free(mem, send);
    sr_mem_free(mem, recv);
    sr_mem_free(mem, cs);
    sr_mem_free(mem, cid);
    sr_mem_free(mem, rows);
    return st;
}

sr_status sr_metrics_allreduce(const sr_comm *c, sr_metrics *m, sr_error *err)
{
    double buf[6 * SR_METRICS_MAX_K + 1];
    sr_metrics_pack(m, buf);
    SR_TRY(sr_comm_allreduce_sum(c, buf, sr_metrics_packed_len(m), err));
    sr_metrics_unpack(m, buf);
    return SR_OK;
}
