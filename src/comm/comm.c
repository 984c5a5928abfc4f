/* comm.c: communicator lifetime and the cross-rank error protocol. */
#include "comm/comm.h"

#include <stdio.h>
#include <stdlib.h>

sr_status sr_comm_init(sr_comm *c, MPI_Comm parent, sr_error *err)
{
    if (MPI_Comm_dup(parent, &c->comm) != MPI_SUCCESS)
        SR_FAIL(err, SR_ERR_MPI, "MPI_Comm_dup failed");
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->stats = calloc(1, sizeof *c->stats);
    if (!c->stats) {
        MPI_Comm_free(&c->comm);
        SR_FAIL(err, SR_ERR_NOMEM, "out of memory for communicator statistics");
    }
    return SR_OK;
}

void sr_comm_destroy(sr_comm *c)
{
    if (c->comm != MPI_COMM_NULL) MPI_Comm_free(&c->comm);
    c->comm = MPI_COMM_NULL;
    free(c->stats);
    c->stats = NULL;
}

sr_status sr_comm_agree(const sr_comm *c, sr_error *err)
{
    int mine = (err && err->code != SR_OK) ? c->rank : c->size;
    int first = c->size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm) != MPI_SUCCESS)
        sr_panic(__FILE__, __LINE__, "MPI_Allreduce failed while agreeing on errors");
    if (first == c->size) return SR_OK;
    /* sr_error is plain data: ship the first failing rank's record as bytes. */
    sr_error w;
    if (c->rank == first) w = *err;
    if (MPI_Bcast(&w, (int)sizeof w, MPI_BYTE, first, c->comm) != MPI_SUCCESS)
        sr_panic(__FILE__, __LINE__, "MPI_Bcast failed while agreeing on errors");
    if (err) *err = w;
    return w.code;
}

_Noreturn void sr_comm_exit(const sr_comm *c, const sr_error *err)
{
    int code = err && err->code != SR_OK ? (int)err->code : SR_ERR_INTERNAL;
    if (c->rank == 0) {
        char buf[SR_ERROR_MSG_MAX + 128];
        sr_error_format(err, buf, sizeof buf);
        fprintf(stderr, "softrec: error: %s\n", buf);
        fflush(stderr);
    }
    MPI_Barrier(c->comm);
    MPI_Finalize();
    exit(code);
}

_Noreturn void sr_comm_abort(const sr_comm *c, const sr_error *err)
{
    char buf[SR_ERROR_MSG_MAX + 128];
    sr_error_format(err, buf, sizeof buf);
    fprintf(stderr, "softrec: [rank %d] error: %s\n", c->rank, buf);
    fflush(stderr);
    MPI_Abort(c->comm, err && err->code != SR_OK ? (int)err->code : SR_ERR_INTERNAL);
    abort();
}

sr_status sr_comm_int(int64_t v, int *out, const char *what, sr_error *err)
{
    if (v < 0 || v > (int64_t)0x7fffffff)
        SR_FAIL(err, SR_ERR_MPI,
                "%s = %lld does not fit MPI's int count (max 2147483647); use more ranks or smaller blocks",
                what, (long long)v);
    *out = (int)v;
    return SR_OK;
}
