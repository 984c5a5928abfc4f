/* comm.c: communicator lifetime, checked MPI calls and the cross-rank error
 * protocol. */
#include "comm/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sr_status sr_comm_check(int rc, sr_error *err, const char *call, const char *file, int line)
{
    if (rc == MPI_SUCCESS) return SR_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error code %d", rc);
    /* "MPI_Bcast(buf, n, ...)" -> "MPI_Bcast": the line already says which. */
    int name = (int)strcspn(call, "( ");
    return sr_error_set(err, SR_ERR_MPI, file, line, "%.*s failed: %s", name, call, text);
}

sr_status sr_comm_init(sr_comm *c, MPI_Comm parent, sr_error *err)
{
    c->comm = MPI_COMM_NULL;
    c->stats = NULL;
    /* World's default handler aborts the job at the first failing call,
     * before any check can report where it was. */
    if (parent == MPI_COMM_WORLD) SR_MPI(err, MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN));
    SR_MPI(err, MPI_Comm_dup(parent, &c->comm));
    sr_status st = SR_MPI_CHECK(err, MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN));
    if (st == SR_OK) st = SR_MPI_CHECK(err, MPI_Comm_rank(c->comm, &c->rank));
    if (st == SR_OK) st = SR_MPI_CHECK(err, MPI_Comm_size(c->comm, &c->size));
    if (st == SR_OK && !(c->stats = calloc(1, sizeof *c->stats)))
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory for communicator statistics");
    if (st != SR_OK) sr_comm_destroy(c);
    return st;
}

void sr_comm_destroy(sr_comm *c)
{
    /* Nothing can be done about a failed free at teardown: best effort. */
    if (c->comm != MPI_COMM_NULL && MPI_Comm_free(&c->comm) != MPI_SUCCESS) c->comm = MPI_COMM_NULL;
    c->comm = MPI_COMM_NULL;
    free(c->stats);
    c->stats = NULL;
}

sr_status sr_comm_agree(const sr_comm *c, sr_error *err)
{
    int mine = (err && err->code != SR_OK) ? c->rank : c->size;
    int first = c->size;
    /* The agreement itself failing leaves no way to tell the peers: abort. */
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
    /* A barrier that fails means the peers may be gone: end the job. */
    if (MPI_Barrier(c->comm) != MPI_SUCCESS) MPI_Abort(c->comm, code);
    MPI_Finalize();
    exit(code);
}

_Noreturn void sr_comm_abort(const sr_comm *c, const sr_error *err)
{
    char buf[SR_ERROR_MSG_MAX + 128];
    sr_error_format(err, buf, sizeof buf);
    fprintf(stderr, "softrec: [rank %d] error: %s\n", c->rank, buf);
    fflush(stderr);
    /* abort() below covers an MPI_Abort that returns. */
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
