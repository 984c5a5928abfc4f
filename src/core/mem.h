/* mem.h: allocation with byte accounting.
 *
 * Every long-lived buffer (tables, optimiser state, scratch) is allocated
 * through an sr_mem so a run can report its peak bytes, the figure the
 * benchmarks compare with B x N. Blocks are 64-byte aligned (AVX-512 rows).
 *
 * Ownership: memory from sr_mem_alloc must go back through sr_mem_free on the
 * same sr_mem. A NULL sr_mem is allowed and means "do not count".
 * Not thread-safe: one sr_mem per thread of control (softrec is one thread
 * per rank; BLAS threads never allocate through it).
 */
#ifndef SR_CORE_MEM_H
#define SR_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SR_MEM_ALIGN 64 /* alignment of every block and buffer-set view */

typedef struct sr_mem {
    size_t current; /* bytes live now */
    size_t peak;    /* high-water mark of current */
    size_t limit;   /* 0 = none; else allocations beyond it fail with SR_ERR_NOMEM */
    int64_t allocs; /* number of live blocks */
    /* Fault injection (tests; io/fault.h sr_fault_arm_mem sets it): 0 off;
     * n > 0: the n-th allocation fails with SR_ERR_NOMEM; -1: count only. */
    int64_t fail_at;
    int64_t counted; /* allocations attempted while fail_at != 0 */
} sr_mem;

void sr_mem_init(sr_mem *m, size_t limit);

/* Allocate bytes (zeroed when zero != 0). On failure returns NULL and records
 * SR_ERR_NOMEM in err naming `what` and the size. bytes == 0 returns a valid
 * unique pointer. */
void *sr_mem_alloc(sr_mem *m, size_t bytes, int zero, const char *what, sr_error *err);

/* Allocate count * size with an overflow check. */
void *sr_mem_calloc(sr_mem *m, size_t count, size_t size, const char *what, sr_error *err);

/* Free a block from sr_mem_alloc (NULL is a no-op). */
void sr_mem_free(sr_mem *m, void *p);

/* A buffer set: many buffers carved from ONE counted allocation (llm.c's
 * malloc_and_point_parameters). List the buffers in a table, allocate once,
 * check once, free once:
 *     sr_mem_buf t[] = {SR_MEM_BUF(s->z, b * k), SR_MEM_BUF(s->rows, k)};
 *     s->bufs = sr_mem_bufset_alloc(mem, t, 2, "sampled loss", err);
 *     if (!s->bufs) ...;          ...  sr_mem_free(mem, s->bufs);
 * Every view is zeroed and 64-byte aligned; a row with count 0 gets NULL (an
 * optional buffer). On failure the result and every view are NULL and err
 * names `what` and the total size. */
typedef struct sr_mem_buf {
    void *view;   /* address of the pointer to set, e.g. &s->z (any T *) */
    size_t count; /* elements */
    size_t size;  /* bytes per element */
} sr_mem_buf;
#define SR_MEM_BUF(ptr, n) {(void *)&(ptr), (size_t)(n), sizeof *(ptr)}

/* Returns the block to pass to sr_mem_free, or NULL. */
void *sr_mem_bufset_alloc(sr_mem *m, const sr_mem_buf *bufs, size_t n, const char *what,
                          sr_error *err);

/* Resident-set high-water mark of this process in bytes (VmHWM), 0 if unknown. */
size_t sr_mem_process_peak(void);

#endif
