/* fuzz_util.h: scratch files for the fuzz harnesses (test code only).
 * libFuzzer runs every input in one process, so each harness keeps one
 * scratch directory per process, made on first use. */
#ifndef SR_FUZZ_UTIL_H
#define SR_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directory $TMPDIR/sr_fuzz_<pid>/ (created once); name appended into buf. */
static inline const char *sr_fuzz_path(char *buf, size_t len, const char *name)
{
    const char *t = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sr_fuzz_%ld", t && *t ? t : "/tmp", (long)getpid());
    mkdir(dir, 0700);
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* Write the input to path; 0 on success. */
static inline int sr_fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    fclose(f);
    return w == size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
