/* mem.c: aligned, counted allocation. A 64-byte header before each block
 * holds its size so free can account without the caller passing it. */
#include "core/mem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sr_mem_init(sr_mem *m, size_t limit)
{
    m->current = 0;
    m->peak = 0;
    m->limit = limit;
    m->allocs = 0;
    m->fail_at = 0;
    m->counted = 0;
}

void *sr_mem_alloc(sr_mem *m, size_t bytes, int zero, const char *what, sr_error *err)
{
    if (bytes > SIZE_MAX - SR_MEM_ALIGN) {
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "allocating %s: %zu bytes is too large",
                     what, bytes);
        return NULL;
    }
    if (m && m->limit && m->current + bytes > m->limit) {
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__,
                     "allocating %s: %zu bytes would exceed the memory limit of %zu bytes (%zu in use)",
                     what, bytes, m->limit, m->current);
        return NULL;
    }
    if (m && m->fail_at != 0 && ++m->counted == m->fail_at) {
        /* Injected (io/fault.h "alloc"): the error path a real ENOMEM takes. */
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "allocating %s: injected failure of allocation %lld",
                     what, (long long)m->counted);
        return NULL;
    }
    void *base = NULL;
    if (posix_memalign(&base, SR_MEM_ALIGN, bytes + SR_MEM_ALIGN) != 0 || !base) {
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "allocating %s: out of memory for %zu bytes",
                     what, bytes);
        return NULL;
    }
    *(size_t *)base = bytes;
    char *p = (char *)base + SR_MEM_ALIGN;
    if (zero) memset(p, 0, bytes);
    if (m) {
        m->current += bytes;
        if (m->current > m->peak) m->peak = m->current;
        m->allocs++;
    }
    return p;
}

void *sr_mem_calloc(sr_mem *m, size_t count, size_t size, const char *what, sr_error *err)
{
    if (size && count > SIZE_MAX / size) {
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__,
                     "allocating %s: %zu x %zu bytes overflows", what, count, size);
        return NULL;
    }
    return sr_mem_alloc(m, count * size, 1, what, err);
}

void sr_mem_free(sr_mem *m, void *p)
{
    if (!p) return;
    char *base = (char *)p - SR_MEM_ALIGN;
    size_t bytes = *(size_t *)base;
    if (m) {
        m->current -= bytes;
        m->allocs--;
    }
    free(base);
}

static void set_view_(const sr_mem_buf *b, void *p)
{
    memcpy(b->view, &p, sizeof p); /* b->view is the address of some T *: store bytes, not via void ** */
}

void *sr_mem_bufset_alloc(sr_mem *m, const sr_mem_buf *bufs, size_t n, const char *what,
                          sr_error *err)
{
    size_t total = 0;
    bool too_large = false;
    for (size_t i = 0; i < n; i++) {
        set_view_(&bufs[i], NULL);
        const size_t sz = bufs[i].size, c = bufs[i].count;
        if (sz && c > (SIZE_MAX - SR_MEM_ALIGN) / sz) too_large = true;
        size_t bytes = too_large ? 0 : (c * sz + SR_MEM_ALIGN - 1) / SR_MEM_ALIGN * SR_MEM_ALIGN;
        if (bytes > SIZE_MAX - SR_MEM_ALIGN - total) too_large = true;
        if (too_large) break;
        total += bytes;
    }
    if (too_large) {
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "allocating %s: buffer sizes overflow", what);
        return NULL;
    }
    char *base = sr_mem_alloc(m, total, 1, what, err);
    if (!base) return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t bytes = bufs[i].count * bufs[i].size;
        if (!bytes) continue;
        set_view_(&bufs[i], base + off);
        off += (bytes + SR_MEM_ALIGN - 1) / SR_MEM_ALIGN * SR_MEM_ALIGN;
    }
    return base;
}

size_t sr_mem_process_peak(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            sscanf(line + 6, "%zu", &kb);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}
