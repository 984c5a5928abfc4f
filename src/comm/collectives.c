/* collectives.c: the collectives of collectives.h on top of MPI.
 *
 * What it does: every 64-bit count is narrowed with sr_comm_int before it
 * reaches MPI; vectors longer than the cap go in chunks; row collectives whose
 * total element count does not fit int fall back to one broadcast (or reduce)
 * per rank block. What it does not do: decide what an error means for the
 * job (callers agree or abort), or hold any state between calls except inside
 * an sr_exchange.
 */
#include "comm/collectives.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static sr_status check_cap(int64_t max_count, sr_error *err)
{
    if (max_count < 1 || max_count > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "collective count cap %lld is outside [1, %d]",
                (long long)max_count, INT_MAX);
    return SR_OK;
}

/* In-place all-reduce of n elements of type t, at most cap per call. */
static sr_status allreduce_chunked(const sr_comm *c, void *v, int64_t n, size_t elem, MPI_Datatype t,
                                   MPI_Op op, int64_t cap, const char *what, sr_error *err)
{
    if (n < 0) SR_FAIL(err, SR_ERR_INTERNAL, "%s: negative length %lld", what, (long long)n);
    sr_comm_count(c, n * (int64_t)elem);
    for (int64_t off = 0; off < n; off += cap) {
        int cnt = (int)(n - off < cap ? n - off : cap); /* <= cap <= INT_MAX */
        SR_MPI(err, MPI_Allreduce(MPI_IN_PLACE, (char *)v + (size_t)off * elem, cnt, t, op, c->comm));
    }
    return SR_OK;
}

/* ---- log-sum-exp all-reduce --------------------------------------------- */

_Static_assert(sizeof(sr_lse) == 3 * sizeof(double), "sr_lse must be three packed doubles");

/* MPI user function: inout[i] = in[i] (+) inout[i]. The merge is
 * commutative bit for bit (max, +, * are), so any reduction order MPI picks
 * gives every rank the same bits for a given tree. */
static void lse_op_fn(void *in, void *inout, int *len, MPI_Datatype *type)
{
    sr_lse_merge((sr_lse *)inout, (const sr_lse *)in, *len);
}

sr_status sr_comm_allreduce_lse_capped(const sr_comm *c, sr_lse *v, int64_t n, int64_t max_count,
                                       sr_error *err)
{
    SR_TRY(check_cap(max_count, err));
    if (n < 0) SR_FAIL(err, SR_ERR_INTERNAL, "LSE all-reduce: negative length %lld", (long long)n);
    /* Type and op are made per call: no globals, and the cost (~1 us) is
     * nothing next to the step that produced the triples. */
    MPI_Datatype t;
    MPI_Op op;
    SR_MPI(err, MPI_Type_contiguous(3, MPI_DOUBLE, &t));
    int rc = MPI_Type_commit(&t);
    if (rc != MPI_SUCCESS) {
        MPI_Type_free(&t);
        return sr_comm_check(rc, err, "MPI_Type_commit (LSE triple)", __FILE__, __LINE__);
    }
    rc = MPI_Op_create(lse_op_fn, 1, &op);
    if (rc != MPI_SUCCESS) {
        MPI_Type_free(&t);
        return sr_comm_check(rc, err, "MPI_Op_create (LSE merge)", __FILE__, __LINE__);
    }
    sr_status st = allreduce_chunked(c, v, n, sizeof(sr_lse), t, op, max_count,
                                     "MPI_Allreduce (LSE triples)", err);
    MPI_Op_free(&op);
    MPI_Type_free(&t);
    return st;
}

sr_status sr_comm_allreduce_lse(const sr_comm *c, sr_lse *v, int64_t n, sr_error *err)
{
    return sr_comm_allreduce_lse_capped(c, v, n, INT_MAX, err);
}

/* ---- plain all-reduces and all-gather ------------------------------------ */

sr_status sr_comm_allreduce_sum_capped(const sr_comm *c, double *v, int64_t n, int64_t max_count,
                                       sr_error *err)
{
    SR_TRY(check_cap(max_count, err));
    return allreduce_chunked(c, v, n, sizeof(double), MPI_DOUBLE, MPI_SUM, max_count,
                             "MPI_Allreduce (sum of doubles)", err);
}

sr_status sr_comm_allreduce_sum(const sr_comm *c, double *v, int64_t n, sr_error *err)
{
    return sr_comm_allreduce_sum_capped(c, v, n, INT_MAX, err);
}

sr_status sr_comm_allreduce_max(const sr_comm *c, double *v, int64_t n, sr_error *err)
{
    return allreduce_chunked(c, v, n, sizeof(double), MPI_DOUBLE, MPI_MAX, INT_MAX,
                             "MPI_Allreduce (max of doubles)", err);
}

sr_status sr_comm_allreduce_sum_i64(const sr_comm *c, int64_t *v, int64_t n, sr_error *err)
{
    return allreduce_chunked(c, v, n, sizeof(int64_t), MPI_INT64_T, MPI_SUM, INT_MAX,
                             "MPI_Allreduce (sum of int64)", err);
}

sr_status sr_comm_bcast(const sr_comm *c, void *buf, int64_t count, MPI_Datatype t, int root, sr_error *err)
{
    int n = 0, size = 0;
    SR_TRY(sr_comm_int(count, &n, "broadcast count", err));
    SR_MPI(err, MPI_Type_size(t, &size));
    if (c->rank == root) sr_comm_count(c, count * size);
    SR_MPI(err, MPI_Bcast(buf, n, t, root, c->comm));
    return SR_OK;
}

sr_status sr_comm_allgather_i64(const sr_comm *c, int64_t mine, int64_t *all, sr_error *err)
{
    sr_comm_count(c, (int64_t)sizeof mine);
    SR_MPI(err, MPI_Allgather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, c->comm));
    return SR_OK;
}

/* ---- row collectives ----------------------------------------------------- */

/* Element counts and displacements of the row blocks; the total in *total.
 * Fails (the same way on every rank, since rows is the same) on a negative
 * size. Narrowing to int is left to the caller: the fallbacks need none. */
static sr_status row_layout(const sr_comm *c, const int64_t *rows, int64_t d, int64_t *count,
                            int64_t *displ, int64_t *total, const char *what, sr_error *err)
{
    if (d < 0) SR_FAIL(err, SR_ERR_INTERNAL, "%s: negative row width %lld", what, (long long)d);
    int64_t sum = 0;
    for (int r = 0; r < c->size; r++) {
        if (rows[r] < 0)
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: rank %d has %lld rows", what, r, (long long)rows[r]);
        if (d > 0 && rows[r] > (INT64_MAX - sum) / d)
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: %lld x %lld elements overflow int64", what,
                    (long long)rows[r], (long long)d);
        count[r] = rows[r] * d;
        displ[r] = sum;
        sum += count[r];
    }
    *total = sum;
    return SR_OK;
}

/* Narrow counts and displacements to int (they all fit when total does). */
static sr_status narrow_all(const sr_comm *c, const int64_t *count, const int64_t *displ, int *icount,
                            int *idispl, const char *what, sr_error *err)
{
    char name[96];
    for (int r = 0; r < c->size; r++) {
        snprintf(name, sizeof name, "%s count for rank %d", what, r);
        SR_TRY(sr_comm_int(count[r], &icount[r], name, err));
        snprintf(name, sizeof name, "%s displacement for rank %d", what, r);
        SR_TRY(sr_comm_int(displ[r], &idispl[r], name, err));
    }
    return SR_OK;
}

/* Scratch for p counts/displacements (int64 and int); freed by the caller. */
typedef struct row_scratch {
    int64_t *count, *displ;
    int *icount, *idispl;
} row_scratch;

static sr_status row_scratch_alloc(row_scratch *s, int p, sr_error *err)
{
    s->count = malloc((size_t)p * sizeof *s->count);
    s->displ = malloc((size_t)p * sizeof *s->displ);
    s->icount = malloc((size_t)p * sizeof *s->icount);
    s->idispl = malloc((size_t)p * sizeof *s->idispl);
    if (!s->count || !s->displ || !s->icount || !s->idispl)
        SR_FAIL(err, SR_ERR_NOMEM, "row collective: out of memory for %d counts", p);
    return SR_OK;
}

static void row_scratch_free(row_scratch *s)
{
    free(s->count);
    free(s->displ);
    free(s->icount);
    free(s->idispl);
}

static sr_status allgather_rows_impl(const sr_comm *c, const float *send, const int64_t *rows,
                                     int64_t d, float *recv, int64_t cap, row_scratch *s,
                                     sr_error *err)
{
    const char *what = "allgather_rows";
    int64_t total = 0;
    SR_TRY(row_layout(c, rows, d, s->count, s->displ, &total, what, err));
    sr_comm_count(c, s->count[c->rank] * (int64_t)sizeof(float));
    if (total <= cap) {
        SR_TRY(narrow_all(c, s->count, s->displ, s->icount, s->idispl, what, err));
        SR_MPI(err, MPI_Allgatherv(send, s->icount[c->rank], MPI_FLOAT, recv, s->icount, s->idispl,
                              MPI_FLOAT, c->comm));
        return SR_OK;
    }
    /* Too large for int displacements: each rank broadcasts its own block,
     * in chunks of at most cap elements, straight into place. */
    float *own = recv + s->displ[c->rank];
    if (s->count[c->rank] > 0 && own != send)
        memmove(own, send, (size_t)s->count[c->rank] * sizeof *recv);
    for (int r = 0; r < c->size; r++) {
        for (int64_t off = 0; off < s->count[r]; off += cap) {
            int cnt = (int)(s->count[r] - off < cap ? s->count[r] - off : cap);
            SR_MPI(err, MPI_Bcast(recv + s->displ[r] + off, cnt, MPI_FLOAT, r, c->comm));
        }
    }
    return SR_OK;
}

sr_status sr_comm_allgather_rows_capped(const sr_comm *c, const float *send, const int64_t *rows,
                                        int64_t d, float *recv, int64_t max_count, sr_error *err)
{
    SR_TRY(check_cap(max_count, err));
    row_scratch s = {0};
    /* One rank's failure here leaves its peers in the collective: abort. */
    if (row_scratch_alloc(&s, c->size, err) != SR_OK) sr_comm_abort(c, err);
    sr_status st = allgather_rows_impl(c, send, rows, d, recv, max_count, &s, err);
    row_scratch_free(&s);
    return st;
}

sr_status sr_comm_allgather_rows(const sr_comm *c, const float *send, const int64_t *rows, int64_t d,
                                 float *recv, sr_error *err)
{
    return sr_comm_allgather_rows_capped(c, send, rows, d, recv, INT_MAX, err);
}

static sr_status reduce_scatter_impl(const sr_comm *c, const float *send, const int64_t *rows,
                                     int64_t d, float *recv, int64_t cap, row_scratch *s,
                                     sr_error *err)
{
    const char *what = "reduce_scatter_rows";
    int64_t total = 0;
    SR_TRY(row_layout(c, rows, d, s->count, s->displ, &total, what, err));
    sr_comm_count(c, total * (int64_t)sizeof(float));
    if (total <= cap) {
        SR_TRY(narrow_all(c, s->count, s->displ, s->icount, s->idispl, what, err));
        if (total == 0) return SR_OK; /* nothing anywhere: skip the call (same on all ranks) */
        SR_MPI(err, MPI_Reduce_scatter(send, recv, s->icount, MPI_FLOAT, MPI_SUM, c->comm));
        return SR_OK;
    }
    /* Fallback: reduce each block to its rank, in chunks of at most cap. */
    for (int r = 0; r < c->size; r++) {
        for (int64_t off = 0; off < s->count[r]; off += cap) {
            int cnt = (int)(s->count[r] - off < cap ? s->count[r] - off : cap);
            SR_MPI(err, MPI_Reduce(send + s->displ[r] + off, r == c->rank ? recv + off : NULL, cnt,
                              MPI_FLOAT, MPI_SUM, r, c->comm));
        }
    }
    return SR_OK;
}

sr_status sr_comm_reduce_scatter_rows_capped(const sr_comm *c, const float *send,
                                             const int64_t *rows, int64_t d, float *recv,
                                             int64_t max_count, sr_error *err)
{
    SR_TRY(check_cap(max_count, err));
    row_scratch s = {0};
    if (row_scratch_alloc(&s, c->size, err) != SR_OK) sr_comm_abort(c, err); /* peers wait in the collective */
    sr_status st = reduce_scatter_impl(c, send, rows, d, recv, max_count, &s, err);
    row_scratch_free(&s);
    return st;
}

sr_status sr_comm_reduce_scatter_rows(const sr_comm *c, const float *send, const int64_t *rows,
                                      int64_t d, float *recv, sr_error *err)
{
    return sr_comm_reduce_scatter_rows_capped(c, send, rows, d, recv, INT_MAX, err);
}

/* ---- row exchange by global id ------------------------------------------- */

struct sr_exchange {
    sr_comm c;             /* copy of the handle (the MPI comm is not owned) */
    int64_t n;             /* positions in the caller's id list */
    int64_t n_unique;      /* distinct ids, grouped by owner, ascending local row */
    int64_t *pos;          /* [n] position -> index in the distinct list */
    int *send_count;       /* [p] distinct ids asked of each owner */
    int *send_displ;       /* [p] */
    int *recv_count;       /* [p] ids each requester asked of this rank */
    int *recv_displ;       /* [p] */
    int64_t n_served;      /* sum(recv_count) */
    int64_t *served_local; /* [n_served] local rows requested of this rank */
    float *buf_mine;       /* n_unique x d scratch */
    float *buf_served;     /* n_served x d scratch */
    int64_t cap_mine, cap_served; /* scratch capacities in floats */
    int64_t bytes_sent;
};

/* Sort key: owner first, then local row (owners then walk their tables in
 * order), then position, so the order is total and the plan deterministic. */
typedef struct xkey {
    int64_t local;
    int64_t idx;
    int owner;
} xkey;

static int xkey_cmp(const void *a, const void *b)
{
    const xkey *x = a, *y = b;
    if (x->owner != y->owner) return x->owner < y->owner ? -1 : 1;
    if (x->local != y->local) return x->local < y->local ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

void sr_exchange_destroy(sr_exchange **x)
{
    if (!x || !*x) return;
    sr_exchange *e = *x;
    free(e->pos);
    free(e->send_count);
    free(e->send_displ);
    free(e->recv_count);
    free(e->recv_displ);
    free(e->served_local);
    free(e->buf_mine);
    free(e->buf_served);
    free(e);
    *x = NULL;
}

/* Local part of the plan: validate, dedupe, bucket by owner. Fills the
 * exchange's send side and the distinct local rows to request (*want). */
static sr_status plan_local(sr_exchange *e, const sr_shard *s, const int64_t *ids, int64_t n,
                            int64_t *send64, int64_t **want, sr_error *err)
{
    int p = e->c.size;
    if (s->p != p)
        SR_FAIL(err, SR_ERR_INTERNAL, "exchange plan: shard map has %d ranks, communicator %d", s->p, p);
    if (n < 0) SR_FAIL(err, SR_ERR_INTERNAL, "exchange plan: negative id count %lld", (long long)n);
    e->pos = malloc((size_t)(n > 0 ? n : 1) * sizeof *e->pos);
    xkey *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    *want = malloc((size_t)(n > 0 ? n : 1) * sizeof **want);
    if (!e->pos || !keys || !*want) {
        free(keys);
        SR_FAIL(err, SR_ERR_NOMEM, "exchange plan: out of memory for %lld ids", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= s->n) {
            int64_t bad = ids[i];
            free(keys);
            SR_FAIL(err, SR_ERR_INTERNAL, "exchange plan: id %lld at position %lld is outside [0, %lld)",
                    (long long)bad, (long long)i, (long long)s->n);
        }
        keys[i].owner = sr_shard_owner(s, ids[i]);
        keys[i].local = sr_shard_local(s, ids[i]);
        keys[i].idx = i;
    }
    qsort(keys, (size_t)n, sizeof *keys, xkey_cmp);
    int64_t u = 0;
    for (int64_t k = 0; k < n; k++) {
        int fresh = k == 0 || keys[k].owner != keys[k - 1].owner || keys[k].local != keys[k - 1].local;
        if (fresh) {
            (*want)[u] = keys[k].local;
            send64[keys[k].owner]++;
            u++;
        }
        e->pos[keys[k].idx] = u - 1;
    }
    free(keys);
    e->n_unique = u;
    char name[96];
    int64_t off = 0;
    for (int r = 0; r < p; r++) {
        snprintf(name, sizeof name, "exchange plan: ids for rank %d", r);
        SR_TRY(sr_comm_int(send64[r], &e->send_count[r], name, err));
        snprintf(name, sizeof name, "exchange plan: id offset for rank %d", r);
        SR_TRY(sr_comm_int(off, &e->send_displ[r], name, err));
        off += send64[r];
    }
    return SR_OK;
}

sr_status sr_exchange_plan(sr_exchange **out, const sr_comm *c, const sr_shard *s, const int64_t *ids,
                           int64_t n, sr_error *err)
{
    *out = NULL;
    int p = c->size;
    sr_exchange *e = calloc(1, sizeof *e);
    int64_t *send64 = calloc((size_t)p, sizeof *send64);
    int64_t *recv64 = calloc((size_t)p, sizeof *recv64);
    int64_t *want = NULL;
    sr_error local;
    sr_error_clear(&local);
    sr_status st = SR_OK;
    if (!e || !send64 || !recv64) {
        st = sr_error_set(&local, SR_ERR_NOMEM, __FILE__, __LINE__,
                          "exchange plan: out of memory for %d ranks", p);
    } else {
        e->c = *c;
        e->n = n;
        e->send_count = calloc((size_t)p, sizeof *e->send_count);
        e->send_displ = calloc((size_t)p, sizeof *e->send_displ);
        e->recv_count = calloc((size_t)p, sizeof *e->recv_count);
        e->recv_displ = calloc((size_t)p, sizeof *e->recv_displ);
        if (!e->send_count || !e->send_displ || !e->recv_count || !e->recv_displ)
            st = sr_error_set(&local, SR_ERR_NOMEM, __FILE__, __LINE__,
                              "exchange plan: out of memory for %d ranks", p);
        else
            st = plan_local(e, s, ids, n, send64, &want, &local);
    }
    if (!send64 || !recv64) {
        /* Cannot even take part in the count exchange: nothing sane left. */
        sr_comm_abort(c, &local);
    }
    /* The count exchange doubles as the error vote: a rank that failed
     * sends -1 to everyone, so on success agreement costs nothing extra. */
    if (st != SR_OK)
        for (int r = 0; r < p; r++) send64[r] = -1;
    int rc = MPI_Alltoall(send64, 1, MPI_INT64_T, recv64, 1, MPI_INT64_T, c->comm);
    if (rc != MPI_SUCCESS) {
        sr_comm_check(rc, &local, "MPI_Alltoall (exchange counts)", __FILE__, __LINE__);
        sr_comm_abort(c, &local);
    }
    int failed = 0;
    for (int r = 0; r < p; r++) failed |= recv64[r] < 0;
    if (failed) {
        /* Every rank saw the same -1s: agree on the lowest failing rank's
         * error (a vote record, so a stale caller record cannot vote). */
        sr_error vote = local;
        sr_status agreed = sr_comm_agree(c, &vote);
        if (err && err->code == SR_OK) *err = vote;
        free(send64);
        free(recv64);
        free(want);
        sr_exchange_destroy(&e);
        return agreed;
    }
    /* From here on a failure is one rank's (out of memory mid-exchange). */
    int64_t off = 0;
    for (int r = 0; r < p; r++) {
        if (sr_comm_int(recv64[r], &e->recv_count[r], "exchange plan: ids received", &local) != SR_OK ||
            sr_comm_int(off, &e->recv_displ[r], "exchange plan: received id offset", &local) != SR_OK)
            sr_comm_abort(c, &local);
        off += recv64[r];
    }
    e->n_served = off;
    e->served_local = malloc((size_t)(off > 0 ? off : 1) * sizeof *e->served_local);
    if (!e->served_local) {
        sr_error_set(&local, SR_ERR_NOMEM, __FILE__, __LINE__,
                     "exchange plan: out of memory for %lld requested ids", (long long)off);
        sr_comm_abort(c, &local);
    }
    rc = MPI_Alltoallv(want, e->send_count, e->send_displ, MPI_INT64_T, e->served_local, e->recv_count,
                       e->recv_displ, MPI_INT64_T, c->comm);
    if (rc != MPI_SUCCESS) {
        sr_comm_check(rc, &local, "MPI_Alltoallv (exchange ids)", __FILE__, __LINE__);
        sr_comm_abort(c, &local);
    }
    free(send64);
    free(recv64);
    free(want);
    *out = e;
    return SR_OK;
}

/* Grow a scratch buffer to at least need floats; aborts on OOM because the
 * peers are already committed to the exchange. */
static void ensure_scratch(const sr_exchange *x, float **buf, int64_t *cap, int64_t need)
{
    if (need <= *cap) return;
    float *nb = realloc(*buf, (size_t)need * sizeof **buf);
    if (!nb) {
        sr_error e;
        sr_error_clear(&e);
        sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "exchange: out of memory for %lld floats",
                     (long long)need);
        sr_comm_abort(&x->c, &e);
    }
    *buf = nb;
    *cap = need;
}

/* One committed row type of d floats, so counts stay in rows (not d times
 * larger) and fit int as long as the id counts do. */
static sr_status row_type(int64_t d, MPI_Datatype *t, sr_error *err)
{
    int di = 0;
    SR_TRY(sr_comm_int(d, &di, "exchange row width", err));
    SR_MPI(err, MPI_Type_contiguous(di, MPI_FLOAT, t));
    int rc = MPI_Type_commit(t);
    if (rc != MPI_SUCCESS) {
        MPI_Type_free(t);
        return sr_comm_check(rc, err, "MPI_Type_commit (row)", __FILE__, __LINE__);
    }
    return SR_OK;
}

/* Bytes of rows sent to ranks other than this one. */
static int64_t bytes_to_others(const sr_exchange *x, const int *count, int64_t d)
{
    int64_t rows = 0;
    for (int r = 0; r < x->c.size; r++)
        if (r != x->c.rank) rows += count[r];
    return rows * d * (int64_t)sizeof(float);
}

sr_status sr_exchange_fetch(sr_exchange *x, const float *local_table, int64_t d, float *out,
                            sr_error *err)
{
    x->bytes_sent = 0;
    if (d <= 0) {
        if (d < 0) SR_FAIL(err, SR_ERR_INTERNAL, "exchange fetch: negative row width %lld", (long long)d);
        return SR_OK; /* d is the same on every rank: nobody communicates */
    }
    MPI_Datatype t;
    SR_TRY(row_type(d, &t, err));
    ensure_scratch(x, &x->buf_served, &x->cap_served, x->n_served * d);
    ensure_scratch(x, &x->buf_mine, &x->cap_mine, x->n_unique * d);
    size_t rb = (size_t)d * sizeof(float);
    for (int64_t j = 0; j < x->n_served; j++)
        memcpy(x->buf_served + j * d, local_table + x->served_local[j] * d, rb);
    int rc = MPI_Alltoallv(x->buf_served, x->recv_count, x->recv_displ, t, x->buf_mine, x->send_count,
                           x->send_displ, t, x->c.comm);
    MPI_Type_free(&t);
    if (rc != MPI_SUCCESS) return sr_comm_check(rc, err, "MPI_Alltoallv (exchange fetch)", __FILE__, __LINE__);
    for (int64_t i = 0; i < x->n; i++) memcpy(out + i * d, x->buf_mine + x->pos[i] * d, rb);
    x->bytes_sent = bytes_to_others(x, x->recv_count, d);
    sr_comm_count(&x->c, x->bytes_sent);
    return SR_OK;
}

sr_status sr_exchange_push(sr_exchange *x, const float *rows, int64_t d, float *local_table,
                           sr_error *err)
{
    x->bytes_sent = 0;
    if (d <= 0) {
        if (d < 0) SR_FAIL(err, SR_ERR_INTERNAL, "exchange push: negative row width %lld", (long long)d);
        return SR_OK;
    }
    MPI_Datatype t;
    SR_TRY(row_type(d, &t, err));
    ensure_scratch(x, &x->buf_served, &x->cap_served, x->n_served * d);
    ensure_scratch(x, &x->buf_mine, &x->cap_mine, x->n_unique * d);
    /* Combine duplicates locally, in position order (deterministic sums). */
    if (x->n_unique > 0) memset(x->buf_mine, 0, (size_t)(x->n_unique * d) * sizeof(float));
    for (int64_t i = 0; i < x->n; i++) {
        float *dst = x->buf_mine + x->pos[i] * d;
        const float *src = rows + i * d;
        for (int64_t k = 0; k < d; k++) dst[k] += src[k];
    }
    int rc = MPI_Alltoallv(x->buf_mine, x->send_count, x->send_displ, t, x->buf_served, x->recv_count,
                           x->recv_displ, t, x->c.comm);
    MPI_Type_free(&t);
    if (rc != MPI_SUCCESS) return sr_comm_check(rc, err, "MPI_Alltoallv (exchange push)", __FILE__, __LINE__);
    /* Owners add in requester-rank order, then ascending row: same bits at
     * a given rank count. */
    for (int64_t j = 0; j < x->n_served; j++) {
        float *dst = local_table + x->served_local[j] * d;
        const float *src = x->buf_served + j * d;
        for (int64_t k = 0; k < d; k++) dst[k] += src[k];
    }
    x->bytes_sent = bytes_to_others(x, x->send_count, d);
    sr_comm_count(&x->c, x->bytes_sent);
    return SR_OK;
}

int64_t sr_exchange_bytes_sent(const sr_exchange *x) { return x ? x->bytes_sent : 0; }
int64_t sr_exchange_unique(const sr_exchange *x) { return x ? x->n_unique : 0; }
int64_t sr_exchange_served(const sr_exchange *x) { return x ? x->n_served : 0; }
