/* h5util.c: HDF5 strings of any writer (h5util.h). Fixed-length strings are
 * read with the file's own type (no conversion, so HDF5 neither drops the
 * last byte of a NULLPAD string nor refuses a UTF-8 one) and cut here;
 * variable-length ones with a memory type of the file's character set. */
#include "io/h5util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of a fixed-length element as its padding says. */
static size_t fixed_len(const char *p, size_t sz, H5T_str_t pad)
{
    size_t n = 0;
    while (n < sz && p[n]) n++;
    if (pad == H5T_STR_SPACEPAD)
        while (n > 0 && p[n - 1] == ' ') n--;
    return n;
}

static hid_t vlen_mem_type(hid_t ft)
{
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt >= 0 && (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0)) {
        H5Tclose(mt);
        mt = H5I_INVALID_HID;
    }
    return mt;
}

/* n texts of total length total: one block, pointers filled by the caller. */
static int texts_alloc(sr_h5_texts *t, int64_t n, size_t total)
{
    t->n = n;
    t->text = malloc((size_t)(n ? n : 1) * sizeof *t->text);
    t->block = malloc(total ? total : 1);
    if (!t->text || !t->block) {
        sr_h5_texts_free(t);
        return SR_H5_NOMEM;
    }
    return 0;
}

void sr_h5_texts_free(sr_h5_texts *t)
{
    free(t->text);
    free(t->block);
    t->text = NULL;
    t->block = NULL;
    t->n = 0;
}

/* Decode n raw elements (fixed: n * sz bytes; variable: n char pointers). */
static int texts_from(sr_h5_texts *t, int64_t n, int vlen, const void *raw, size_t sz, H5T_str_t pad)
{
    size_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        const char *s = vlen ? ((char *const *)raw)[k] : (const char *)raw + (size_t)k * sz;
        total += (vlen ? (s ? strlen(s) : 0) : fixed_len(s, sz, pad)) + 1;
    }
    int rc = texts_alloc(t, n, total);
    if (rc) return rc;
    char *q = t->block;
    for (int64_t k = 0; k < n; k++) {
        const char *s = vlen ? ((char *const *)raw)[k] : (const char *)raw + (size_t)k * sz;
        size_t l = vlen ? (s ? strlen(s) : 0) : fixed_len(s, sz, pad);
        if (l) memcpy(q, s, l);
        q[l] = '\0';
        t->text[k] = q;
        q += l + 1;
    }
    return 0;
}

/* Read the selection (fs/ms: n elements) of an attribute or a dataset. */
static int read_sel(hid_t obj, int is_attr, hid_t dxpl, hid_t ms, hid_t fs, int64_t n, sr_h5_texts *out)
{
    hid_t ft = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    if (ft < 0) return -1;
    int rc = -1;
    htri_t vlen = H5Tget_class(ft) == H5T_STRING ? H5Tis_variable_str(ft) : -1;
    size_t sz = H5Tget_size(ft);
    if (vlen > 0) {
        hid_t mt = vlen_mem_type(ft);
        char **p = calloc((size_t)(n ? n : 1), sizeof *p);
        if (!p) rc = SR_H5_NOMEM;
        herr_t r = (mt < 0 || !p) ? -1
                   : is_attr      ? H5Aread(obj, mt, p)
                                  : H5Dread(obj, mt, ms, fs, dxpl, p);
        if (r >= 0) {
            rc = texts_from(out, n, 1, p, 0, H5T_STR_NULLTERM);
            H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, p);
        }
        free(p);
        if (mt >= 0) H5Tclose(mt);
    } else if (vlen == 0 && sz > 0 && sz < ((size_t)1 << 30) && (uint64_t)n < ((uint64_t)1 << 34) / sz) {
        char *raw = malloc((size_t)n * sz + 1);
        if (!raw) rc = SR_H5_NOMEM;
        herr_t r = !raw ? -1 : is_attr ? H5Aread(obj, ft, raw) : H5Dread(obj, ft, ms, fs, dxpl, raw);
        if (r >= 0) rc = texts_from(out, n, 0, raw, sz, H5Tget_strpad(ft));
        free(raw);
    }
    H5Tclose(ft);
    return rc;
}

int sr_h5_attr_read_text(hid_t a, char **out)
{
    *out = NULL;
    hid_t sp = H5Aget_space(a);
    if (sp < 0) return -1;
    sr_h5_texts t = {0};
    int rc = H5Sget_simple_extent_npoints(sp) == 1 ? read_sel(a, 1, H5P_DEFAULT, sp, sp, 1, &t) : -1;
    H5Sclose(sp);
    if (rc) return rc;
    *out = t.block; /* the one text starts the block */
    free(t.text);
    return 0;
}

int sr_h5_read_texts(hid_t d, hid_t dxpl, int64_t lo, int64_t n, sr_h5_texts *out)
{
    memset(out, 0, sizeof *out);
    hsize_t start = (hsize_t)lo, cnt = (hsize_t)n, one = 1;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, n ? &cnt : &one, NULL);
    int rc = (fs < 0 || ms < 0) ? -1 : 0;
    if (rc == 0)
        rc = n ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL)
               : (H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0);
    rc = rc < 0 ? -1 : read_sel(d, 0, dxpl, ms, fs, n, out); /* 0, -1 or SR_H5_NOMEM */
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    return rc;
}

int sr_h5_write_texts(hid_t loc, const char *name, const char *const *texts, int64_t n)
{
    int utf8 = 0;
    for (int64_t k = 0; k < n && !utf8; k++)
        for (const unsigned char *p = (const unsigned char *)texts[k]; *p; p++)
            if (*p >= 0x80) utf8 = 1;
    hsize_t dim = (hsize_t)n;
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate_simple(1, &dim, NULL);
    herr_t rc = (t < 0 || sp < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 ||
                 H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) < 0)
                    ? -1
                    : 0;
    hid_t d = rc < 0 ? H5I_INVALID_HID : H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) rc = -1;
    if (rc >= 0 && n > 0) rc = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

typedef struct reason_buf {
    char *buf;
    size_t n;
} reason_buf;

static herr_t reason_first(unsigned i, const H5E_error2_t *e, void *data)
{
    reason_buf *r = data;
    if (i == 0 && e->desc) snprintf(r->buf, r->n, "%s", e->desc);
    return 0;
}

const char *sr_h5_reason(char *buf, size_t n)
{
    if (!buf || n == 0) return "";
    buf[0] = '\0';
    reason_buf r = {buf, n};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, reason_first, &r);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0]) {
        snprintf(buf, n, "unknown HDF5 error");
        return buf;
    }
    /* sec2's "file write failed: time = ..., errno = 28, error message = ..." */
    const char *en = strstr(buf, "errno = ");
    int e = en ? atoi(en + 8) : 0;
    if (e > 0) {
        const char *colon = strchr(buf, ':');
        size_t k = colon && colon < en ? (size_t)(colon - buf) : 0;
        char head[128];
        snprintf(head, sizeof head, "%.*s", (int)(k < sizeof head ? k : sizeof head - 1), buf);
        snprintf(buf, n, "%s%s%s", head, k ? ": " : "", strerror(e));
        return buf;
    }
    /* Otherwise whitespace runs (line breaks included) become one space. */
    size_t w = 0;
    for (size_t i = 0; buf[i]; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (isspace(ch)) {
            if (w > 0 && buf[w - 1] != ' ') buf[w++] = ' ';
        } else {
            buf[w++] = (char)ch;
        }
    }
    while (w > 0 && buf[w - 1] == ' ') w--;
    buf[w] = '\0';
    return buf;
}

int64_t sr_h5_file_eoa(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    haddr_t eoa = HADDR_UNDEF;
    if (f >= 0 && H5Fget_eoa(f, &eoa) < 0) eoa = HADDR_UNDEF;
    if (f >= 0) H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return eoa == HADDR_UNDEF ? -1 : (int64_t)eoa;
}
