/* gather.c: MPI_Allgatherv of int64 ids with checked narrowing. */
#include "comm/gather.h"

#include <stdlib.h>

sr_status sr_comm_allgather_ids(const sr_comm *c, const int64_t *send, const int64_t *counts,
                                int64_t *recv, sr_error *err)
{
    int *cnt = malloc((size_t)c->size * sizeof *cnt);
    int *dsp = malloc((size_t)c->size * sizeof *dsp);
    if (!cnt || !dsp) {
        free(cnt);
        free(dsp);
        /* One rank's failure leaves its peers in MPI_Allgatherv: abort. */
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "allgather ids: out of memory for %d ranks", c->size);
        sr_comm_abort(c, err);
    }
    int64_t off = 0;
    sr_status st = SR_OK;
    for (int r = 0; r < c->size && st == SR_OK; r++) {
        st = sr_comm_int(counts[r], &cnt[r], "allgather ids: count", err);
        if (st == SR_OK) st = sr_comm_int(off, &dsp[r], "allgather ids: displacement", err);
        off += counts[r];
    }
    if (st == SR_OK) sr_comm_count(c, counts[c->rank] * (int64_t)sizeof(int64_t));
    if (st == SR_OK &&
        MPI_Allgatherv(send, cnt[c->rank], MPI_INT64_T, recv, cnt, dsp, MPI_INT64_T, c->comm) != MPI_SUCCESS)
        st = sr_error_set(err, SR_ERR_MPI, __FILE__, __LINE__, "MPI_Allgatherv of ids failed");
    free(cnt);
    free(dsp);
    return st;
}
