/* sha256.h: SHA-256 (FIPS 180-4) of byte streams and files, for the source
 * checksums recorded in dataset files. Small and dependency-free; speed is
 * not a concern (inputs are tens of MB, hashed once per conversion). */
#ifndef SR_IO_SHA256_H
#define SR_IO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct sr_sha256 {
    uint32_t h[8];
    uint64_t bytes;    /* total length so far */
    uint8_t buf[64];   /* partial block */
    size_t fill;
} sr_sha256;

void sr_sha256_init(sr_sha256 *s);
void sr_sha256_update(sr_sha256 *s, const void *data, size_t n);
/* Finish and write the digest as 64 lowercase hex digits + NUL. */
void sr_sha256_hex(sr_sha256 *s, char hex[65]);

/* Hash a whole file (its bytes as stored, e.g. the .gz itself). */
sr_status sr_sha256_file(const char *path, char hex[65], sr_error *err);

#endif
