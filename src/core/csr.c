/* csr.c: split names and freeing of local CSR rows. */
#include "core/csr.h"

const char *sr_split_name(sr_split s)
{
    static const char *const names[SR_SPLIT_COUNT] = {"train", "valid", "test"};
    return (s >= 0 && s < SR_SPLIT_COUNT) ? names[s] : "?";
}

void sr_csr_free(sr_csr *m, sr_mem *mem)
{
    if (!m) return;
    sr_mem_free(mem, m->indptr);
    sr_mem_free(mem, m->items);
    sr_mem_free(mem, m->time);
    m->indptr = m->items = m->time = NULL;
    m->nnz = 0;
}
