/* csr.h: a rank's rows of one split of the user-item matrix (compressed
 * sparse rows over users), the data type every layer above io reads.
 * Rows [u0, u1): indptr is rebased (indptr[0] = 0, indptr[u1 - u0] = nnz);
 * items (and time, or NULL) hold nnz entries. Freed with sr_csr_free on the
 * sr_mem that allocated it.
 */
#ifndef SR_CORE_CSR_H
#define SR_CORE_CSR_H

#include <stdint.h>

#include "core/mem.h"

typedef enum sr_split { SR_SPLIT_TRAIN = 0, SR_SPLIT_VALID = 1, SR_SPLIT_TEST = 2 } sr_split;
#define SR_SPLIT_COUNT 3
const char *sr_split_name(sr_split s); /* "train", "valid", "test" */

typedef struct sr_csr {
    int64_t u0, u1;
    int64_t nnz;
    int64_t *indptr;
    int64_t *items;
    int64_t *time;
} sr_csr;

/* Entries of local row u (0-based within [u0, u1)). */
static inline int64_t sr_csr_row_len(const sr_csr *m, int64_t u) { return m->indptr[u + 1] - m->indptr[u]; }

void sr_csr_free(sr_csr *m, sr_mem *mem);

#endif
