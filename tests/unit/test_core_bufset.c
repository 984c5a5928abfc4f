/* test_core_bufset.c: sr_mem_bufset_alloc (core/mem.h): one counted block,
 * aligned zeroed views, optional rows, one failure for the whole set. */
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "harness.h"
#include "io/fault.h"

typedef struct three_ {
    float *f;
    int64_t *rows;
    uint8_t *flags;
    double *none;
} three_;

static void test_bufset_views(void)
{
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_error e;
    sr_error_clear(&e);
    three_ t = {NULL, NULL, NULL, (double *)&t}; /* views are overwritten, even the unused one */
    sr_mem_buf tab[] = {SR_MEM_BUF(t.f, 100), SR_MEM_BUF(t.rows, 3), SR_MEM_BUF(t.flags, 65),
                        SR_MEM_BUF(t.none, 0)};
    void *blk = sr_mem_bufset_alloc(&m, tab, 4, "test set", &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    CU_ASSERT_EQUAL(m.allocs, 1);
    CU_ASSERT_EQUAL(m.current, 448 + 64 + 128); /* each view rounded up to 64 bytes */
    CU_ASSERT_PTR_EQUAL(t.f, blk);
    CU_ASSERT_PTR_NULL(t.none);
    CU_ASSERT_EQUAL((uintptr_t)t.rows % 64, 0);
    CU_ASSERT_EQUAL((uintptr_t)t.flags % 64, 0);
    CU_ASSERT((char *)t.rows >= (char *)(t.f + 100));
    CU_ASSERT((char *)t.flags >= (char *)(t.rows + 3));
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= t.f[i] == 0.0f;
    for (int i = 0; i < 3; i++) zero &= t.rows[i] == 0;
    for (int i = 0; i < 65; i++) zero &= t.flags[i] == 0;
    CU_ASSERT(zero);
    memset(t.flags, 0xff, 65); /* the last view is writable to its end (ASan) */
    sr_mem_free(&m, blk);
    CU_ASSERT_EQUAL(m.current, 0);
    CU_ASSERT_EQUAL(m.allocs, 0);
}

static void test_bufset_failure(void)
{
    sr_mem m;
    sr_mem_init(&m, 1000);
    sr_error e;
    sr_error_clear(&e);
    three_ t = {(float *)&m, (int64_t *)&m, NULL, NULL};
    sr_mem_buf tab[] = {SR_MEM_BUF(t.f, 200), SR_MEM_BUF(t.rows, 100)};
    CU_ASSERT_PTR_NULL(sr_mem_bufset_alloc(&m, tab, 2, "big set", &e));
    CU_ASSERT_EQUAL(e.code, SR_ERR_NOMEM);
    CU_ASSERT(strstr(e.msg, "big set") != NULL);
    CU_ASSERT_PTR_NULL(t.f);
    CU_ASSERT_PTR_NULL(t.rows);
    CU_ASSERT_EQUAL(m.current, 0);
    sr_error_clear(&e);
    sr_mem_buf huge[] = {SR_MEM_BUF(t.f, SIZE_MAX / 2), SR_MEM_BUF(t.rows, 1)};
    CU_ASSERT_PTR_NULL(sr_mem_bufset_alloc(&m, huge, 2, "huge set", &e));
    CU_ASSERT_EQUAL(e.code, SR_ERR_NOMEM);
    CU_ASSERT(strstr(e.msg, "huge set") != NULL);
    CU_ASSERT_EQUAL(m.allocs, 0);
    /* An empty set still gives a block to free (like sr_mem_alloc of 0 bytes). */
    sr_error_clear(&e);
    void *blk = sr_mem_bufset_alloc(NULL, NULL, 0, "empty", &e);
    CU_ASSERT_PTR_NOT_NULL(blk);
    sr_mem_free(NULL, blk);
}

/* SOFTREC_FAULT=alloc@rank#n (io/fault.h): the nth counted allocation of
 * an armed sr_mem fails once; another rank's fault leaves it unarmed. */
static void test_alloc_fault(void)
{
    sr_fault f;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_fault_parse(&f, "alloc@1#2", NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(f.phase, SR_FAULT_ALLOC);
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_fault_arm_mem(&f, 0, &m);
    CU_ASSERT_EQUAL(m.fail_at, 0);
    sr_fault_arm_mem(&f, 1, &m);
    CU_ASSERT_EQUAL(m.fail_at, 2);
    void *a = sr_mem_alloc(&m, 8, 0, "first", &e);
    CU_ASSERT_PTR_NOT_NULL(a);
    int64_t *v = NULL;
    sr_mem_buf tab[] = {SR_MEM_BUF(v, 4)};
    CU_ASSERT_PTR_NULL(sr_mem_bufset_alloc(&m, tab, 1, "second", &e));
    CU_ASSERT_EQUAL(e.code, SR_ERR_NOMEM);
    CU_ASSERT(strstr(e.msg, "second: injected failure of allocation 2") != NULL);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(m.allocs, 1);
    sr_error_clear(&e);
    void *c = sr_mem_calloc(&m, 2, 4, "third", &e);
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_EQUAL(m.counted, 3);
    sr_mem_free(&m, a);
    sr_mem_free(&m, c);
    CU_ASSERT_EQUAL(m.current, 0);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "alloc-count", NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(f.phase, SR_FAULT_ALLOC_COUNT);
    CU_ASSERT_EQUAL(sr_fault_parse(&f, "alloc#0", NULL, &e), SR_ERR_CONFIG);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("core_bufset", NULL, NULL);
    CU_add_test(s, "views", test_bufset_views);
    CU_add_test(s, "failure", test_bufset_failure);
    CU_add_test(s, "alloc fault", test_alloc_fault);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
