/* failalloc.c: LD_PRELOAD library for tests/scripts/alloc_sweep.sh. Fails
 * the nth plain malloc/calloc/realloc called directly from the softrec
 * executable (the return address lies in the main program: softrec's own
 * sites such as the dataset writer and data convert, not HDF5's, MPI's or
 * libc's), on one rank. Test tooling, so process-wide state is fine here.
 *   SR_FAILALLOC=N        fail the Nth such call (once); 0 or unset: count only
 *   SR_FAILALLOC_RANK=R   only on this rank (OMPI_COMM_WORLD_RANK; unset or -1: all)
 * At exit it prints "failalloc: rank R: N" (calls counted) to stderr.
 * Load it before libasan (LD_PRELOAD=failalloc.so:libasan.so.N) with
 * ASAN_OPTIONS=verify_asan_link_order=0; it forwards to the next malloc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static uintptr_t exe_lo, exe_hi, exe_base; /* executable segments of the main program, its load address */
static long fail_at, counted, active, rank = -1;
static char boot[4096]; /* dlsym may calloc before next_calloc is known */
static size_t boot_used;
static int resolving;
static void (*next_free)(void *);

/* Lazily: other libraries' constructors allocate before ours runs. */
static void resolve(void)
{
    if (next_malloc || resolving) return;
    resolving = 1;
    next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    resolving = 0;
}

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!exe_lo || lo < exe_lo) exe_lo = lo;
        if (hi > exe_hi) exe_hi = hi;
    }
    exe_base = info->dlpi_addr;
    return 1; /* the first object is the main program */
}

__attribute__((constructor)) static void failalloc_init(void)
{
    resolve();
    dl_iterate_phdr(first_object, NULL);
    const char *n = getenv("SR_FAILALLOC"), *r = getenv("SR_FAILALLOC_RANK"), *w = getenv("OMPI_COMM_WORLD_RANK");
    long me = w ? atol(w) : 0;
    fail_at = n ? atol(n) : 0;
    active = !r || atol(r) < 0 || atol(r) == me;
    rank = me;
}

__attribute__((destructor)) static void failalloc_report(void)
{
    if (!active) return;
    char msg[96];
    int len = snprintf(msg, sizeof msg, "failalloc: rank %ld: %ld\n", rank, counted);
    if (len > 0) {
        ssize_t wr = write(2, msg, (size_t)len);
        (void)wr;
    }
}

/* 1: this call (from return address ra) is the one to fail. */
static int should_fail(void *ra)
{
    uintptr_t a = (uintptr_t)ra;
    if (!active || a < exe_lo || a >= exe_hi) return 0;
    if (++counted != fail_at) return 0;
    /* Name the site: addr2line -e BIN OFFSET gives file:line. */
    char msg[128];
    int len = snprintf(msg, sizeof msg, "failalloc: rank %ld: failing call %ld from offset 0x%lx\n", rank, counted,
                       (unsigned long)(a - exe_base));
    if (len > 0) {
        ssize_t wr = write(2, msg, (size_t)len);
        (void)wr;
    }
    return 1;
}

void *malloc(size_t n)
{
    resolve();
    if (!next_malloc) return NULL;
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return next_malloc(n);
}

void *calloc(size_t n, size_t s)
{
    resolve();
    if (!next_calloc) { /* dlsym's own request, before init finished */
        size_t b = (n * s + 15) & ~(size_t)15;
        if (b > sizeof boot - boot_used) return NULL;
        void *p = boot + boot_used;
        boot_used += b;
        return p; /* zero: static storage */
    }
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return next_calloc(n, s);
}

void *realloc(void *p, size_t n)
{
    resolve();
    if (!next_realloc) return NULL;
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return next_realloc(p, n);
}

void free(void *p)
{
    if ((char *)p >= boot && (char *)p < boot + sizeof boot) return;
    resolve();
    if (next_free) next_free(p);
}
