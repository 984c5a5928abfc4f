/* h5util.h: HDF5 strings as other writers store them.
 *
 * Contract
 *  - sr_h5_attr_read_text reads a string attribute (scalar or one element)
 *    whatever its writer chose: fixed or variable length, NULLTERM, NULLPAD
 *    or SPACEPAD, ASCII or UTF-8 (h5py writes variable-length UTF-8 by
 *    default, numpy bytes as NULLPAD of exactly the text's length). The text
 *    is returned malloc'ed and NUL-terminated; the bytes are not recoded.
 *  - sr_h5_read_texts reads elements [lo, lo + n) of a 1-D string dataset the
 *    same way into one malloc'ed block of NUL-terminated texts with a pointer
 *    per element (free both with sr_h5_texts_free).
 *  - sr_h5_write_texts writes a 1-D variable-length string dataset (UTF-8
 *    when any byte is >= 0x80, else ASCII).
 *  Failures return -1 and leave nothing allocated; the caller names the file
 *  and the object in its message (HDF5's reason is on its error stack).
 *  The readers return SR_H5_NOMEM instead when their own allocation failed,
 *  so callers report out of memory (exit 7), not a bad file.
 */
#ifndef SR_IO_H5UTIL_H
#define SR_IO_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#define SR_H5_NOMEM (-2) /* a reader's own malloc failed (not HDF5, not the data) */

typedef struct sr_h5_texts {
    int64_t n;
    char **text; /* n pointers into block */
    char *block;
} sr_h5_texts;

/* a: an open attribute. 0 = read, -1 = not a one-element string or unreadable,
 * SR_H5_NOMEM = out of memory. */
int sr_h5_attr_read_text(hid_t a, char **out);

/* d: an open 1-D dataset of a string type; dxpl may be H5P_DEFAULT. Every
 * rank of a parallel file may call it with its own range (n may be 0).
 * 0, -1 or SR_H5_NOMEM as above. */
int sr_h5_read_texts(hid_t d, hid_t dxpl, int64_t lo, int64_t n, sr_h5_texts *out);
void sr_h5_texts_free(sr_h5_texts *t);

int sr_h5_write_texts(hid_t loc, const char *name, const char *const *texts, int64_t n);

/* The innermost reason on HDF5's default error stack as one line, then the
 * stack is cleared. HDF5's file-driver messages span lines and dump
 * descriptors and buffers; one with "errno = N" becomes "<what>: <strerror
 * N>" (e.g. "file write failed: No space left on device"). Returns buf. */
const char *sr_h5_reason(char *buf, size_t n);

/* A closed file's end of allocation (what HDF5 will read; bytes past it are
 * a writer's unused reservation), -1 when it cannot be read. */
int64_t sr_h5_file_eoa(const char *path);

#endif
