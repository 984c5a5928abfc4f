/* convert.c: text formats -> rows -> filters -> dense ids -> splits -> writer.
 * Pipeline and error contract in convert.h. Everything is in memory (about
 * 40 bytes per interaction); the writer streams users in blocks. */
#include "io/convert.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/rng.h"
#include "io/sha256.h"

#define WRITE_BLOCK_USERS 65536

static const char *const format_names[SR_FORMAT_COUNT] = {"ml-100k",   "ml-1m", "lightgcn", "seq-pairs",
                                                          "seq-lines", "csv",   "amazon",   "recbole"};

void sr_convert_opts_default(sr_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = SR_FORMAT_COUNT;
    o->sep = ',';
    o->user_col = 0;
    o->item_col = 1;
    o->rating_col = -1;
    o->time_col = -1;
    o->dedup = -1;
    o->split = SR_SPLITK_DEFAULT;
    o->ratio[0] = 0.8;
    o->ratio[1] = 0.1;
    o->ratio[2] = 0.1;
    o->seed = 0;
}

const char *sr_convert_format_name(sr_convert_format f)
{
    return (f >= 0 && f < SR_FORMAT_COUNT) ? format_names[f] : "?";
}

sr_status sr_convert_format_parse(const char *name, sr_convert_format *out, sr_error *err)
{
    for (int f = 0; f < SR_FORMAT_COUNT; f++)
        if (!strcmp(name, format_names[f])) {
            *out = (sr_convert_format)f;
            return SR_OK;
        }
    SR_FAIL(err, SR_ERR_USAGE,
            "unknown --format '%s' (expected ml-100k, ml-1m, lightgcn, seq-pairs, seq-lines, csv, amazon or recbole)",
            name);
}

sr_status sr_convert_split_parse(const char *name, sr_split_kind *out, sr_error *err)
{
    if (!strcmp(name, "given")) *out = SR_SPLITK_GIVEN;
    else if (!strcmp(name, "random")) *out = SR_SPLITK_RANDOM;
    else if (!strcmp(name, "leave-last-out") || !strcmp(name, "llo")) *out = SR_SPLITK_LLO;
    else SR_FAIL(err, SR_ERR_USAGE, "unknown --split '%s' (expected given, random or leave-last-out)", name);
    return SR_OK;
}

sr_status sr_convert_ratio_parse(const char *s, double ratio[3], sr_error *err)
{
    double v[3] = {0, 0, 0};
    int n = 0;
    const char *p = s;
    while (*p) {
        if (n == 3) goto bad;
        char *end;
        errno = 0;
        v[n] = strtod(p, &end);
        if (end == p || errno || !isfinite(v[n]) || v[n] < 0 || v[n] > 1) goto bad;
        n++;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    if (n < 2 || fabs(v[0] + v[1] + v[2] - 1.0) > 1e-6) goto bad;
    if (n == 2) { /* train,test */
        v[2] = v[1];
        v[1] = 0;
    }
    memcpy(ratio, v, sizeof v);
    return SR_OK;
bad:
    SR_FAIL(err, SR_ERR_USAGE,
            "bad --ratio '%s': expected train,valid,test (or train,test) as numbers in [0, 1] summing to 1", s);
}

/* ---- rows ----------------------------------------------------------------- */

typedef struct row {
    int64_t user, item, time;
    int64_t seq;   /* input order, breaks ties and keeps files' order */
    int32_t split; /* given split (sr_split), then the assigned one */
    int32_t alive;
} row;

typedef struct rowvec {
    row *r;
    int64_t n, cap;
} rowvec;

static sr_status rows_push(rowvec *v, const row *x, sr_error *err)
{
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 1 << 16;
        row *p = realloc(v->r, (size_t)cap * sizeof *p);
        if (!p) SR_FAIL(err, SR_ERR_NOMEM, "out of memory after %lld interactions", (long long)v->n);
        v->r = p;
        v->cap = cap;
    }
    v->r[v->n++] = *x;
    return SR_OK;
}

/* ---- line reading (plain or gzip, via zlib's transparent mode) ----------- */

typedef struct reader {
    gzFile f;
    const char *path;
    char *buf;
    size_t cap;
    int64_t lineno;
    int64_t at; /* first line of the current record (quoted fields may span lines) */
} reader;

static sr_status reader_open(reader *r, const char *path, sr_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    FILE *probe = fopen(path, "rb"); /* errno-accurate message for missing files */
    if (!probe) SR_FAIL(err, SR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    /* fopen opens a directory; zlib then calls the EISDIR read corrupt gzip. */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        SR_FAIL(err, SR_ERR_IO, "%s: is a directory, expected a ratings file", path);
    r->f = gzopen(path, "rb");
    if (!r->f) SR_FAIL(err, SR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(r->f, 1 << 17);
    r->cap = 1 << 12;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        gzclose(r->f);
        SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory", path);
    }
    return SR_OK;
}

static void reader_close(reader *r)
{
    if (r->f) gzclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

/* Next line without its newline (and CR), stored from buf + start. 1 = got
 * a line, 0 = end of file. */
static sr_status reader_read(reader *r, size_t start, int *got, size_t *len_out, sr_error *err)
{
    size_t len = start;
    *got = 0;
    for (;;) {
        if (r->cap - len < 2) {
            char *p = realloc(r->buf, r->cap * 2);
            if (!p) SR_FAIL(err, SR_ERR_NOMEM, "%s:%lld: out of memory for a long line", r->path, (long long)r->lineno + 1);
            r->buf = p;
            r->cap *= 2;
        }
        char *s = gzgets(r->f, r->buf + len, (int)(r->cap - len > INT_MAX ? INT_MAX : r->cap - len));
        if (!s) {
            int zerr = Z_OK;
            const char *msg = gzerror(r->f, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END) {
                /* zlib prefixes "path: "; the message already names the file. */
                size_t pl = strlen(r->path);
                if (msg && !strncmp(msg, r->path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
                SR_FAIL(err, SR_ERR_DATA, "%s:%lld: corrupt or truncated gzip data (%s)", r->path,
                        (long long)r->lineno + 1, msg ? msg : "zlib error");
            }
            if (len == start) return SR_OK; /* clean end of file */
            break;                      /* last line without a newline */
        }
        len += strlen(r->buf + len);
        if (len > 0 && r->buf[len - 1] == '\n') break;
    }
    while (len > start && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r')) r->buf[--len] = '\0';
    r->lineno++;
    *got = 1;
    *len_out = len;
    return SR_OK;
}

static sr_status reader_next(reader *r, int *got, size_t *len_out, sr_error *err)
{
    SR_TRY(reader_read(r, 0, got, len_out, err));
    r->at = r->lineno;
    return SR_OK;
}

/* ---- fields --------------------------------------------------------------- */

typedef struct fields {
    char **f;
    int n, cap;
} fields;

static int fields_add(fields *fs, char *p)
{
    if (fs->n == fs->cap) {
        int cap = fs->cap ? fs->cap * 2 : 16;
        char **q = realloc(fs->f, (size_t)cap * sizeof *q);
        if (!q) return -1;
        fs->f = q;
        fs->cap = cap;
    }
    fs->f[fs->n++] = p;
    return 0;
}

/* Split in place. sep == NULL: runs of blanks; else the exact separator
 * string (empty fields kept). */
static int split_line(char *line, const char *sep, fields *fs)
{
    fs->n = 0;
    if (!sep) {
        char *p = line;
        for (;;) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) return 0;
            if (fields_add(fs, p)) return -1;
            while (*p && *p != ' ' && *p != '\t') p++;
            if (!*p) return 0;
            *p++ = '\0';
        }
    }
    size_t sl = strlen(sep);
    char *p = line;
    for (;;) {
        if (fields_add(fs, p)) return -1;
        char *q = strstr(p, sep);
        if (!q) return 0;
        *q = '\0';
        p = q + sl;
    }
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Strict int64: optional '-', digits only, overflow detected. */
static sr_status parse_i64(const reader *r, const char *s, const char *what, int nonneg, int64_t *out, sr_error *err)
{
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!*p) goto notint;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') goto notint;
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10)
            SR_FAIL(err, SR_ERR_DATA, "%s:%lld: %s '%.40s' overflows int64", r->path, (long long)r->at, what, s);
        v = v * 10 + d;
    }
    int64_t x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (nonneg && x < 0)
        SR_FAIL(err, SR_ERR_DATA, "%s:%lld: negative %s %lld", r->path, (long long)r->at, what, (long long)x);
    *out = x;
    return SR_OK;
notint:
    SR_FAIL(err, SR_ERR_DATA, "%s:%lld: %s '%.40s' is not an integer", r->path, (long long)r->at, what, s);
}

static sr_status parse_f64(const reader *r, const char *s, const char *what, double *out, sr_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        SR_FAIL(err, SR_ERR_DATA, "%s:%lld: %s '%.40s' is not a finite number", r->path, (long long)r->at, what, s);
    *out = v;
    return SR_OK;
}

/* ---- string ids: a dictionary per column ---------------------------------- */

/* Tokens are interned in first-seen order; dict_finish then gives each the
 * id the rows carry into densify: the integer itself when every token of the
 * column is a canonical integer (the old int64 maps), else its rank in byte
 * order (the names are stored as strings). */
typedef struct dict {
    char *text;        /* tokens, NUL-terminated, back to back */
    size_t tlen, tcap;
    int64_t *off;      /* token k starts at text + off[k] */
    int64_t n, cap;
    int64_t *slot;     /* open addressing: token id + 1, 0 = empty */
    int64_t nslot;
    int all_int;       /* every token so far is a canonical non-negative integer */
    int64_t *value;    /* after dict_finish: the id rows carry, per token */
    const char **sorted; /* after dict_finish, string columns: names in rank order */
} dict;

static void dict_free(dict *d)
{
    free(d->text);
    free(d->off);
    free(d->slot);
    free(d->value);
    free(d->sorted);
    memset(d, 0, sizeof *d);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 1099511628211ULL;
    return h;
}

/* "0" or [1-9][0-9]* that fits int64: the same id as an integer column. */
static int canonical_int(const char *s, size_t n)
{
    if (n == 0 || n > 19 || (s[0] == '0' && n > 1)) return 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    return n < 19 || strncmp(s, "9223372036854775807", 19) <= 0;
}

static int dict_grow_slots(dict *d)
{
    int64_t ns = d->nslot ? d->nslot * 2 : 1 << 12;
    int64_t *sl = calloc((size_t)ns, sizeof *sl);
    if (!sl) return -1;
    for (int64_t k = 0; k < d->n; k++) {
        const char *t = d->text + d->off[k];
        uint64_t h = hash_bytes(t, strlen(t)) & (uint64_t)(ns - 1);
        while (sl[h]) h = (h + 1) & (uint64_t)(ns - 1);
        sl[h] = k + 1;
    }
    free(d->slot);
    d->slot = sl;
    d->nslot = ns;
    return 0;
}

/* Id of token s (interned on first sight); -1 when out of memory. */
static int64_t dict_intern(dict *d, const char *s)
{
    size_t n = strlen(s);
    if (d->n == 0 && d->nslot == 0) d->all_int = 1;
    if (2 * (d->n + 1) > d->nslot && dict_grow_slots(d)) return -1;
    uint64_t mask = (uint64_t)(d->nslot - 1), h = hash_bytes(s, n) & mask;
    for (; d->slot[h]; h = (h + 1) & mask)
        if (!strcmp(d->text + d->off[d->slot[h] - 1], s)) return d->slot[h] - 1;
    if (d->n == d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 1 << 12;
        int64_t *p = realloc(d->off, (size_t)cap * sizeof *p);
        if (!p) return -1;
        d->off = p;
        d->cap = cap;
    }
    if (d->tlen + n + 1 > d->tcap) {
        size_t cap = d->tcap ? 2 * d->tcap : 1 << 16;
        while (cap < d->tlen + n + 1) cap *= 2;
        char *p = realloc(d->text, cap);
        if (!p) return -1;
        d->text = p;
        d->tcap = cap;
    }
    memcpy(d->text + d->tlen, s, n + 1);
    d->off[d->n] = (int64_t)d->tlen;
    d->tlen += n + 1;
    d->all_int &= canonical_int(s, n);
    d->slot[h] = d->n + 1;
    return d->n++;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* value[token] for the rows; sorted[] (string columns) for the names. */
static sr_status dict_finish(dict *d, sr_error *err)
{
    d->value = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->value);
    if (!d->value) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the id dictionary");
    if (d->all_int) {
        for (int64_t k = 0; k < d->n; k++) d->value[k] = strtoll(d->text + d->off[k], NULL, 10);
        return SR_OK;
    }
    d->sorted = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->sorted);
    if (!d->sorted) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the id dictionary");
    for (int64_t k = 0; k < d->n; k++) d->sorted[k] = d->text + d->off[k];
    qsort(d->sorted, (size_t)d->n, sizeof *d->sorted, cmp_str_ptr);
    /* The token's rank: its pointer's offset finds it back (one pass). */
    for (int64_t r = 0; r < d->n; r++) {
        const char *t = d->sorted[r];
        uint64_t mask = (uint64_t)(d->nslot - 1), h = hash_bytes(t, strlen(t)) & mask;
        while (d->text + d->off[d->slot[h] - 1] != t) h = (h + 1) & mask;
        d->value[d->slot[h] - 1] = r;
    }
    return SR_OK;
}

/* ---- CSV (RFC 4180) and timestamps ---------------------------------------- */

/* Inside an open quote at the end of s? (quotes toggle; "" toggles twice) */
static int quote_open(const char *s)
{
    int open = 0;
    for (; *s; s++)
        if (*s == '"') open = !open;
    return open;
}

/* Split in place on sep; a field starting with '"' runs to the closing quote,
 * with "" standing for one quote. 0 ok, -1 out of memory, else the 1-based
 * field after whose closing quote a stray character follows. */
static int split_csv(char *line, char sep, fields *fs)
{
    fs->n = 0;
    char *p = line;
    for (;;) {
        char *w = p;
        if (fields_add(fs, w)) return -1;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) break; /* unterminated: the caller read the whole record */
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            if (*p && *p != sep) return fs->n;
        } else {
            while (*p && *p != sep) *w++ = *p++;
        }
        int more = *p == sep;
        *w = '\0';
        if (!more) return 0;
        p++;
    }
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits at *p into *v; advances *p. */
static int digits(const char **p, int n, int64_t *v)
{
    *v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (**p < '0' || **p > '9') return 0;
        *v = *v * 10 + (**p - '0');
    }
    return 1;
}

/* ISO 8601: YYYY-MM-DD[(T| )hh:mm[:ss[.fff]]][Z|(+|-)hh[:]mm] -> UTC seconds. */
static int parse_iso8601(const char *s, int64_t *out)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int64_t y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d)) return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return 0;
    if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) return 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) return 0;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &se)) return 0;
            if (*p == '.' || *p == ',') /* fractions of a second: dropped */
                for (p++; *p >= '0' && *p <= '9'; p++) {}
        }
        if (h > 24 || mi > 59 || se > 60) return 0;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int neg = *p++ == '-';
        if (!digits(&p, 2, &oh)) return 0;
        if (*p == ':') p++;
        if (!digits(&p, 2, &om) || oh > 23 || om > 59) return 0;
        if (neg) oh = -oh, om = -om;
    }
    if (*p) return 0;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - oh * 3600 - om * 60;
    return 1;
}

/* Integer, decimal (881250949.0: floor) or ISO-8601 date: seconds. */
static sr_status parse_time(const reader *r, const char *s, int64_t *out, sr_error *err)
{
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    int all_digits = *p != '\0';
    for (const char *q = p; *q && all_digits; q++) all_digits = *q >= '0' && *q <= '9';
    if (all_digits) return parse_i64(r, s, "timestamp", 0, out, err);
    if (parse_iso8601(s, out)) return SR_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && !*end && errno != ERANGE && isfinite(v) && v >= -9.2e18 && v <= 9.2e18) {
        *out = (int64_t)floor(v);
        return SR_OK;
    }
    SR_FAIL(err, SR_ERR_DATA, "%s:%lld: timestamp '%.40s' is not a number or an ISO-8601 date", r->path,
            (long long)r->at, s);
}

/* ---- parsing one file ----------------------------------------------------- */

/* Where a file's fields are (0-based; -1 = absent), from the options or its
 * header. */
typedef struct cols {
    int user, item, rating, time;
} cols;

typedef struct parse_ctx {
    const sr_convert_opts *o;
    rowvec *rows;
    sr_convert_report *rep;
    int64_t seq;
    dict ids[2];   /* token formats: users, items */
    int files, files_with_time;
} parse_ctx;

static int token_format(sr_convert_format f)
{
    return f == SR_FORMAT_CSV || f == SR_FORMAT_AMAZON || f == SR_FORMAT_RECBOLE;
}

static sr_status add_row(parse_ctx *c, int64_t u, int64_t i, int64_t t, int split, sr_error *err)
{
    row x = {.user = u, .item = i, .time = t, .seq = c->seq++, .split = split, .alive = 1};
    c->rep->rows_read++;
    return rows_push(c->rows, &x, err);
}

/* Keep or drop by --min-rating. */
static sr_status rating_gate(parse_ctx *c, const reader *r, const char *field, int *keep, sr_error *err)
{
    *keep = 1;
    double rating = 0;
    SR_TRY(parse_f64(r, field, "rating", &rating, err));
    if (c->o->use_min_rating && rating < c->o->min_rating) {
        *keep = 0;
        c->rep->below_min_rating++;
    }
    return SR_OK;
}

static sr_status token_id(parse_ctx *c, const reader *r, int which, char *field, int64_t *out, sr_error *err)
{
    const char *t = trim(field);
    const char *what = which ? "item id" : "user id";
    if (!*t) SR_FAIL(err, SR_ERR_DATA, "%s:%lld: %s is empty", r->path, (long long)r->at, what);
    *out = dict_intern(&c->ids[which], t);
    if (*out < 0) SR_FAIL(err, SR_ERR_NOMEM, "%s:%lld: out of memory for the %s dictionary", r->path, (long long)r->at, what);
    return SR_OK;
}

/* One record of a token format (csv, amazon, recbole): fields by cols. */
static sr_status parse_record(parse_ctx *c, const reader *r, fields *fs, const cols *cl, int split, sr_error *err)
{
    const sr_convert_opts *o = c->o;
    long long ln = (long long)r->at;
    int need = cl->user > cl->item ? cl->user : cl->item;
    if (cl->rating > need) need = cl->rating;
    if (cl->time > need) need = cl->time;
    if (o->format == SR_FORMAT_AMAZON && fs->n != 4)
        SR_FAIL(err, SR_ERR_DATA, "%s:%lld: expected 4 fields (user,item,rating,timestamp), found %d", r->path, ln, fs->n);
    if (fs->n < need + 1) {
        char sep[3] = {o->sep, '\0', '\0'};
        if (o->sep == '\t') memcpy(sep, "\\t", 3);
        SR_FAIL(err, SR_ERR_DATA, "%s:%lld: expected at least %d fields separated by '%s', found %d", r->path, ln,
                need + 1, sep, fs->n);
    }
    int64_t u, i, t = 0;
    int keep = 1;
    SR_TRY(token_id(c, r, 0, fs->f[cl->user], &u, err));
    SR_TRY(token_id(c, r, 1, fs->f[cl->item], &i, err));
    if (cl->rating >= 0) SR_TRY(rating_gate(c, r, trim(fs->f[cl->rating]), &keep, err));
    if (cl->time >= 0) SR_TRY(parse_time(r, trim(fs->f[cl->time]), &t, err));
    return keep ? add_row(c, u, i, t, split, err) : SR_OK;
}

/* Integer-id formats (ml-100k, ml-1m, lightgcn, seq-*). */
static sr_status parse_line(parse_ctx *c, reader *r, fields *fs, int split, sr_error *err)
{
    const sr_convert_opts *o = c->o;
    const char *path = r->path;
    long long ln = (long long)r->at;
    int64_t u, i, t = 0;
    int keep = 1;
    switch (o->format) {
    case SR_FORMAT_ML100K:
    case SR_FORMAT_ML1M: {
        int ml1m = o->format == SR_FORMAT_ML1M;
        if (split_line(r->buf, ml1m ? "::" : NULL, fs)) SR_FAIL(err, SR_ERR_NOMEM, "%s:%lld: out of memory", path, ln);
        if (fs->n != 4)
            SR_FAIL(err, SR_ERR_DATA, "%s:%lld: expected 4 fields (%s), found %d", path, ln,
                    ml1m ? "user::item::rating::time" : "user item rating time, tab-separated", fs->n);
        SR_TRY(parse_i64(r, trim(fs->f[0]), "user id", 1, &u, err));
        SR_TRY(parse_i64(r, trim(fs->f[1]), "item id", 1, &i, err));
        SR_TRY(rating_gate(c, r, trim(fs->f[2]), &keep, err));
        SR_TRY(parse_i64(r, trim(fs->f[3]), "timestamp", 0, &t, err));
        return keep ? add_row(c, u, i, t, split, err) : SR_OK;
    }
    case SR_FORMAT_SEQ_PAIRS:
        if (split_line(r->buf, NULL, fs)) SR_FAIL(err, SR_ERR_NOMEM, "%s:%lld: out of memory", path, ln);
        if (fs->n != 2) SR_FAIL(err, SR_ERR_DATA, "%s:%lld: expected 2 fields (user item), found %d", path, ln, fs->n);
        SR_TRY(parse_i64(r, fs->f[0], "user id", 1, &u, err));
        SR_TRY(parse_i64(r, fs->f[1], "item id", 1, &i, err));
        return add_row(c, u, i, 0, split, err);
    case SR_FORMAT_LIGHTGCN:
    case SR_FORMAT_SEQ_LINES:
        if (split_line(r->buf, NULL, fs)) SR_FAIL(err, SR_ERR_NOMEM, "%s:%lld: out of memory", path, ln);
        SR_TRY(parse_i64(r, fs->f[0], "user id", 1, &u, err));
        for (int k = 1; k < fs->n; k++) {
            SR_TRY(parse_i64(r, fs->f[k], "item id", 1, &i, err));
            SR_TRY(add_row(c, u, i, 0, split, err));
        }
        return SR_OK;
    default: break;
    }
    SR_FAIL(err, SR_ERR_INTERNAL, "unknown format %d", (int)o->format);
}

/* Column of a header: by --*-col NAME, or RecBole's "name:type". */
static int header_find(const fields *fs, const char *name, int recbole)
{
    size_t n = strlen(name);
    for (int k = 0; k < fs->n; k++) {
        const char *f = fs->f[k];
        if (recbole ? !strncmp(f, name, n) && f[n] == ':' : !strcmp(f, name)) return k;
    }
    return -1;
}

/* The header line of a csv (--header) or RecBole file: where each field is. */
static sr_status parse_header(parse_ctx *c, const reader *r, fields *fs, cols *cl, sr_error *err)
{
    const sr_convert_opts *o = c->o;
    int recbole = o->format == SR_FORMAT_RECBOLE;
    for (int k = 0; k < fs->n; k++) fs->f[k] = trim(fs->f[k]);
    if (recbole)
        for (int k = 0; k < fs->n; k++) {
            const char *ty = strchr(fs->f[k], ':');
            if (!ty || (strcmp(ty, ":token") && strcmp(ty, ":float") && strcmp(ty, ":token_seq") &&
                        strcmp(ty, ":float_seq")))
                SR_FAIL(err, SR_ERR_DATA,
                        "%s:%lld: header field '%.60s' is not name:type (token, float, token_seq or float_seq)",
                        r->path, (long long)r->at, fs->f[k]);
        }
    const char *names[4] = {o->user_name, o->item_name, o->rating_name, o->time_name};
    static const char *const rb[4] = {"user_id", "item_id", "rating", "timestamp"};
    static const char *const what[4] = {"user", "item", "rating", "time"};
    int *dst[4] = {&cl->user, &cl->item, &cl->rating, &cl->time};
    for (int k = 0; k < 4; k++) {
        const char *nm = names[k] ? names[k] : recbole ? rb[k] : NULL;
        if (!nm) continue;
        *dst[k] = header_find(fs, nm, recbole);
        /* RecBole's rating and timestamp are optional unless asked for. */
        if (*dst[k] < 0 && (k < 2 || names[k] || (k == 2 && o->use_min_rating)))
            SR_FAIL(err, SR_ERR_DATA, "%s:%lld: no %s column '%s' in the header", r->path, (long long)r->at, what[k],
                    nm);
    }
    return SR_OK;
}

static sr_status parse_file(parse_ctx *c, const char *path, int split, sr_error *err)
{
    const sr_convert_opts *o = c->o;
    reader r;
    SR_TRY(reader_open(&r, path, err));
    fields fs = {0};
    sr_status st = SR_OK;
    int64_t data_lines = 0;
    int tokens = token_format(o->format);
    int header = o->format == SR_FORMAT_RECBOLE || (o->format == SR_FORMAT_CSV && o->header);
    char sep = o->format == SR_FORMAT_RECBOLE ? '\t' : o->format == SR_FORMAT_AMAZON ? ',' : o->sep;
    cols cl = {o->user_col, o->item_col, o->rating_col, o->time_col};
    if (o->format == SR_FORMAT_AMAZON) cl = (cols){0, 1, 2, 3};
    if (o->format == SR_FORMAT_RECBOLE) cl = (cols){-1, -1, -1, -1};
    for (;;) {
        int got = 0;
        size_t len = 0;
        if ((st = reader_next(&r, &got, &len, err)) != SR_OK || !got) break;
        if (r.lineno == 1 && !strncmp(r.buf, "\xEF\xBB\xBF", 3)) /* a UTF-8 byte order mark */
            memmove(r.buf, r.buf + 3, strlen(r.buf + 3) + 1), len -= 3;
        /* A quoted field may hold line breaks: read on until it closes. */
        while (tokens && o->format != SR_FORMAT_RECBOLE && quote_open(r.buf)) {
            r.buf[len] = '\n';
            if ((st = reader_read(&r, len + 1, &got, &len, err)) != SR_OK) break;
            if (!got) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s:%lld: quoted field not closed before the end of the file", path, (long long)r.at);
                break;
            }
        }
        if (st != SR_OK) break;
        if (is_blank(r.buf)) continue; /* also before a header */
        if (tokens) {
            int bad = o->format == SR_FORMAT_RECBOLE ? split_line(r.buf, "\t", &fs) : split_csv(r.buf, sep, &fs);
            if (bad < 0) {
                st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s:%lld: out of memory", path, (long long)r.at);
                break;
            }
            if (bad > 0) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s:%lld: field %d: text after the closing quote (a quote inside a quoted field is "
                                  "written \"\")",
                                  path, (long long)r.at, bad);
                break;
            }
        }
        if (header) {
            header = 0;
            if (o->format == SR_FORMAT_RECBOLE || o->user_name || o->item_name || o->rating_name || o->time_name)
                if ((st = parse_header(c, &r, &fs, &cl, err)) != SR_OK) break;
            continue;
        }
        data_lines++;
        st = tokens ? parse_record(c, &r, &fs, &cl, split, err) : parse_line(c, &r, &fs, split, err);
        if (st != SR_OK) break;
    }
    if (st == SR_OK && data_lines == 0)
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: empty file (no interaction lines)", path);
    c->rep->lines += data_lines;
    c->files++;
    c->files_with_time += cl.time >= 0;
    free(fs.f);
    reader_close(&r);
    return st;
}

/* ---- ordering and filters -------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Dedup order: pair, then earliest (time, input order). */
static int cmp_pair_time(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->user != y->user) return (x->user > y->user) - (x->user < y->user);
    if (x->item != y->item) return (x->item > y->item) - (x->item < y->item);
    if (x->time != y->time) return (x->time > y->time) - (x->time < y->time);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Canonical order: user, then time, then input order. */
static int cmp_user_time(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->user != y->user) return (x->user > y->user) - (x->user < y->user);
    if (x->time != y->time) return (x->time > y->time) - (x->time < y->time);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int64_t lookup(const int64_t *sorted, int64_t n, int64_t v)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Replace the original ids by dense ones (ascending original id); returns
 * the sorted distinct originals in *ids_out (caller frees). */
static sr_status densify(rowvec *v, int which_item, int64_t **ids_out, int64_t *n_out, sr_error *err)
{
    int64_t *ids = malloc((size_t)(v->n ? v->n : 1) * sizeof *ids);
    if (!ids) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the id map");
    for (int64_t k = 0; k < v->n; k++) ids[k] = which_item ? v->r[k].item : v->r[k].user;
    qsort(ids, (size_t)v->n, sizeof *ids, cmp_i64);
    int64_t n = 0;
    for (int64_t k = 0; k < v->n; k++)
        if (n == 0 || ids[n - 1] != ids[k]) ids[n++] = ids[k];
    for (int64_t k = 0; k < v->n; k++) {
        int64_t *f = which_item ? &v->r[k].item : &v->r[k].user;
        *f = lookup(ids, n, *f);
    }
    *ids_out = ids;
    *n_out = n;
    return SR_OK;
}

static void compact(rowvec *v)
{
    int64_t n = 0;
    for (int64_t k = 0; k < v->n; k++)
        if (v->r[k].alive) v->r[n++] = v->r[k];
    v->n = n;
}

static int64_t dedup(rowvec *v, int remove)
{
    /* v->r is NULL when every row was filtered out (qsort needs non-NULL). */
    if (v->n > 1) qsort(v->r, (size_t)v->n, sizeof *v->r, cmp_pair_time);
    int64_t dups = 0;
    for (int64_t k = 1; k < v->n; k++)
        if (v->r[k].user == v->r[k - 1].user && v->r[k].item == v->r[k - 1].item) {
            dups++;
            if (remove) v->r[k].alive = 0;
        }
    if (remove) compact(v);
    return dups;
}

/* Iterative k-core on dense ids: drop users and items with < k rows until
 * none is left below k. */
static sr_status kcore(rowvec *v, int64_t k, int64_t nu, int64_t ni, int64_t *removed, sr_error *err)
{
    int64_t *cu = malloc((size_t)(nu + 1) * sizeof *cu), *ci = malloc((size_t)(ni + 1) * sizeof *ci);
    if (!cu || !ci) {
        free(cu);
        free(ci);
        SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the k-core filter");
    }
    int64_t before = v->n;
    for (;;) {
        memset(cu, 0, (size_t)(nu + 1) * sizeof *cu);
        memset(ci, 0, (size_t)(ni + 1) * sizeof *ci);
        for (int64_t j = 0; j < v->n; j++) {
            cu[v->r[j].user]++;
            ci[v->r[j].item]++;
        }
        int64_t drop = 0;
        for (int64_t j = 0; j < v->n; j++)
            if (cu[v->r[j].user] < k || ci[v->r[j].item] < k) {
                v->r[j].alive = 0;
                drop++;
            }
        if (!drop) break;
        compact(v);
    }
    free(cu);
    free(ci);
    *removed = before - v->n;
    return SR_OK;
}

/* Renumber surviving ids 0.. in ascending order; map[] old dense -> original. */
static sr_status renumber(rowvec *v, int which_item, const int64_t *orig, int64_t n_old, int64_t **orig_out,
                          int64_t *n_out, sr_error *err)
{
    int64_t *newid = malloc((size_t)(n_old + 1) * sizeof *newid);
    if (!newid) SR_FAIL(err, SR_ERR_NOMEM, "out of memory renumbering ids");
    for (int64_t j = 0; j < n_old; j++) newid[j] = -1;
    for (int64_t k = 0; k < v->n; k++) newid[which_item ? v->r[k].item : v->r[k].user] = 0;
    int64_t n = 0;
    for (int64_t j = 0; j < n_old; j++)
        if (newid[j] == 0) newid[j] = n++;
    int64_t *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) {
        free(newid);
        SR_FAIL(err, SR_ERR_NOMEM, "out of memory renumbering ids");
    }
    for (int64_t j = 0; j < n_old; j++)
        if (newid[j] >= 0) o[newid[j]] = orig[j];
    for (int64_t k = 0; k < v->n; k++) {
        int64_t *f = which_item ? &v->r[k].item : &v->r[k].user;
        *f = newid[*f];
    }
    free(newid);
    *orig_out = o;
    *n_out = n;
    return SR_OK;
}

/* ---- splits --------------------------------------------------------------- */

/* Random subset of the m indices idx[]: Fisher-Yates with the user's own
 * Philox block range, so a user's split depends only on (seed, user, rows). */
static void shuffle(int64_t *idx, int64_t m, sr_rng *rng)
{
    for (int64_t j = m - 1; j > 0; j--) {
        int64_t k = (int64_t)sr_rng_below(rng, (uint64_t)j + 1);
        int64_t t = idx[j];
        idx[j] = idx[k];
        idx[k] = t;
    }
}

static sr_status assign_splits(rowvec *v, const sr_convert_opts *o, sr_split_kind kind, sr_error *err)
{
    int64_t cap = 0, *idx = NULL;
    sr_rng rng;
    sr_rng_init(&rng, o->seed, 0, SR_STREAM_SPLIT);
    for (int64_t a = 0; a < v->n;) {
        int64_t b = a;
        while (b < v->n && v->r[b].user == v->r[a].user) b++;
        int64_t n = b - a;
        row *r = v->r + a;
        if (n > cap) {
            int64_t *p = realloc(idx, (size_t)n * sizeof *p);
            if (!p) {
                free(idx);
                SR_FAIL(err, SR_ERR_NOMEM, "out of memory splitting");
            }
            idx = p;
            cap = n;
        }
        /* 2^24 blocks (2^26 draws) per user: far more than any row needs. */
        sr_rng_seek(&rng, (uint64_t)r[0].user << 24);
        if (kind == SR_SPLITK_LLO) {
            for (int64_t j = 0; j < n; j++) r[j].split = SR_SPLIT_TRAIN;
            if (n >= 2) r[n - 1].split = SR_SPLIT_TEST;
            if (n >= 3) r[n - 2].split = SR_SPLIT_VALID;
        } else if (kind == SR_SPLITK_RANDOM) {
            for (int64_t j = 0; j < n; j++) idx[j] = j;
            shuffle(idx, n, &rng);
            int64_t c1 = llround((double)n * o->ratio[0]);
            int64_t c2 = llround((double)n * (o->ratio[0] + o->ratio[1]));
            if (c1 > n) c1 = n;
            if (c2 > n) c2 = n;
            if (c2 < c1) c2 = c1;
            for (int64_t j = 0; j < n; j++)
                r[idx[j]].split = j < c1 ? SR_SPLIT_TRAIN : j < c2 ? SR_SPLIT_VALID : SR_SPLIT_TEST;
        } else if (o->valid_ratio > 0) { /* given, carve valid out of train */
            int64_t m = 0;
            for (int64_t j = 0; j < n; j++)
                if (r[j].split == SR_SPLIT_TRAIN) idx[m++] = j;
            shuffle(idx, m, &rng);
            int64_t nv = llround((double)m * o->valid_ratio);
            for (int64_t j = 0; j < nv && j < m; j++) r[idx[j]].split = SR_SPLIT_VALID;
        }
        a = b;
    }
    free(idx);
    return SR_OK;
}

/* ---- writing -------------------------------------------------------------- */

static sr_status write_rows(sr_dataset_writer *w, const rowvec *v, int64_t nu, int has_time, sr_error *err)
{
    int64_t *ip[SR_SPLIT_COUNT] = {0}, *it[SR_SPLIT_COUNT] = {0}, *tm[SR_SPLIT_COUNT] = {0};
    int64_t bu = nu < WRITE_BLOCK_USERS ? nu : WRITE_BLOCK_USERS;
    sr_status st = SR_OK;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        ip[s] = malloc((size_t)(bu + 1) * sizeof(int64_t));
        if (!ip[s]) st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory writing");
    }
    int64_t k = 0; /* rows are sorted by user */
    for (int64_t u0 = 0; st == SR_OK && u0 < nu; u0 += bu) {
        int64_t u1 = u0 + bu < nu ? u0 + bu : nu;
        int64_t k0 = k, k1 = k;
        while (k1 < v->n && v->r[k1].user < u1) k1++;
        for (int s = 0; s < SR_SPLIT_COUNT && st == SR_OK; s++) {
            free(it[s]);
            free(tm[s]);
            it[s] = malloc((size_t)(k1 - k0 + 1) * sizeof(int64_t));
            tm[s] = malloc((size_t)(k1 - k0 + 1) * sizeof(int64_t));
            if (!it[s] || !tm[s]) {
                st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory writing");
                break;
            }
            int64_t n = 0, j = k0;
            ip[s][0] = 0;
            for (int64_t u = u0; u < u1; u++) {
                for (; j < k1 && v->r[j].user == u; j++)
                    if (v->r[j].split == s) {
                        it[s][n] = v->r[j].item;
                        tm[s][n] = v->r[j].time;
                        n++;
                    }
                ip[s][u - u0 + 1] = n;
            }
        }
        if (st == SR_OK)
            st = sr_dataset_writer_append(w, u1 - u0, (const int64_t *const *)ip, (const int64_t *const *)it,
                                          has_time ? (const int64_t *const *)tm : NULL, err);
        k = k1;
    }
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        free(ip[s]);
        free(it[s]);
        free(tm[s]);
    }
    return st;
}

/* ---- the pipeline ---------------------------------------------------------- */

static sr_status check_opts(const sr_convert_opts *o, sr_split_kind *kind, int *dedup, sr_error *err)
{
    if (o->format < 0 || o->format >= SR_FORMAT_COUNT) SR_FAIL(err, SR_ERR_USAGE, "convert: --format is required");
    if (!o->input || !*o->input) SR_FAIL(err, SR_ERR_USAGE, "convert: --input is required");
    if (!o->output || !*o->output) SR_FAIL(err, SR_ERR_USAGE, "convert: --output is required");
    if (o->valid && !o->test) SR_FAIL(err, SR_ERR_USAGE, "convert: --valid FILE needs --test FILE");
    if (o->valid && o->valid_ratio > 0)
        SR_FAIL(err, SR_ERR_USAGE, "convert: --valid FILE and --valid-ratio both give the valid split; pass one");
    int has_rating = o->format == SR_FORMAT_ML100K || o->format == SR_FORMAT_ML1M || o->format == SR_FORMAT_AMAZON ||
                     o->format == SR_FORMAT_RECBOLE ||
                     (o->format == SR_FORMAT_CSV && (o->rating_col >= 0 || o->rating_name));
    if ((o->user_name || o->item_name || o->rating_name || o->time_name) && o->format != SR_FORMAT_RECBOLE &&
        !(o->format == SR_FORMAT_CSV && o->header))
        SR_FAIL(err, SR_ERR_USAGE, "convert: a column given by name needs a header (--format csv --header, or recbole)");
    if (o->use_min_rating && !has_rating)
        SR_FAIL(err, SR_ERR_USAGE, "convert: --min-rating needs a rating column (format %s has none%s)",
                sr_convert_format_name(o->format), o->format == SR_FORMAT_CSV ? "; set --rating-col" : "");
    if (o->format == SR_FORMAT_CSV) {
        if (o->user_col < 0 || o->item_col < 0 || o->user_col == o->item_col)
            SR_FAIL(err, SR_ERR_USAGE, "convert: csv needs distinct --user-col and --item-col (0-based)");
        if (o->sep == '\0' || o->sep == '\n') SR_FAIL(err, SR_ERR_USAGE, "convert: bad --sep");
    }
    if (o->kcore < 0) SR_FAIL(err, SR_ERR_USAGE, "convert: --kcore must be >= 0");
    int seq = o->format == SR_FORMAT_SEQ_PAIRS || o->format == SR_FORMAT_SEQ_LINES;
    *kind = o->split;
    if (*kind == SR_SPLITK_DEFAULT)
        *kind = (o->format == SR_FORMAT_LIGHTGCN || o->test)       ? SR_SPLITK_GIVEN
                : (seq || o->format == SR_FORMAT_AMAZON) ? SR_SPLITK_LLO
                                                         : SR_SPLITK_RANDOM;
    *dedup = o->dedup >= 0 ? o->dedup : !seq;
    if (o->valid_ratio < 0 || o->valid_ratio >= 1)
        SR_FAIL(err, SR_ERR_USAGE, "convert: --valid-ratio must be in [0, 1)");
    if (o->valid_ratio > 0 && *kind != SR_SPLITK_GIVEN)
        SR_FAIL(err, SR_ERR_USAGE, "convert: --valid-ratio only applies to --split given");
    if (o->test && *kind != SR_SPLITK_GIVEN)
        SR_FAIL(err, SR_ERR_USAGE, "convert: --test gives the split; use --split given (the default with --test)");
    return SR_OK;
}

/* Append with truncation (provenance strings are informative only). */
static void append(char *dst, size_t n, const char *s)
{
    size_t l = strlen(dst), m = strlen(s);
    if (l + 1 >= n) return;
    if (m > n - l - 1) m = n - l - 1;
    memcpy(dst + l, s, m);
    dst[l + m] = '\0';
}

/* Provenance: sha256 of each input; with several inputs the recorded digest is
 * the sha256 of the sha256sum-style listing (both are stored). */
static sr_status provenance(const sr_convert_opts *o, char *source, size_t ns, char sha[65], char *files, size_t nf,
                            sr_error *err)
{
    const char *paths[3] = {o->input, o->test, o->valid};
    int n = o->valid ? 3 : o->test ? 2 : 1;
    source[0] = files[0] = '\0';
    char hex[3][65];
    for (int k = 0; k < n; k++) {
        SR_TRY(sr_sha256_file(paths[k], hex[k], err));
        char full[PATH_MAX];
        const char *p = realpath(paths[k], full) ? full : paths[k];
        if (k) append(source, ns, ",");
        append(source, ns, p);
        append(files, nf, hex[k]);
        append(files, nf, "  ");
        append(files, nf, p);
        append(files, nf, "\n");
    }
    if (n == 1) {
        memcpy(sha, hex[0], 65);
    } else {
        sr_sha256 s;
        sr_sha256_init(&s);
        sr_sha256_update(&s, files, strlen(files));
        sr_sha256_hex(&s, sha);
    }
    return SR_OK;
}

static void default_name(const char *output, char *buf, size_t n)
{
    const char *b = strrchr(output, '/');
    b = b ? b + 1 : output;
    snprintf(buf, n, "%s", b);
    size_t l = strlen(buf);
    if (l > 3 && !strcmp(buf + l - 3, ".h5")) buf[l - 3] = '\0';
}

/* Each user's last and second-last item in time order (ties: input order),
 * in any row order: last[2u], last[2u + 1]; -1 when absent. */
static sr_status last_two(const rowvec *v, int64_t nu, int64_t **out, sr_error *err)
{
    int64_t *last = malloc((size_t)(2 * nu + 1) * sizeof *last);
    const row **at = calloc((size_t)(2 * nu + 1), sizeof *at);
    if (!last || !at) {
        free(last);
        free(at);
        SR_FAIL(err, SR_ERR_NOMEM, "out of memory comparing the last items");
    }
    for (int64_t k = 0; k < v->n; k++) {
        const row *x = v->r + k, **a = at + 2 * x->user;
        if (!a[0] || cmp_user_time(x, a[0]) > 0) {
            a[1] = a[0];
            a[0] = x;
        } else if (!a[1] || cmp_user_time(x, a[1]) > 0) {
            a[1] = x;
        }
    }
    for (int64_t j = 0; j < 2 * nu; j++) last[j] = at[j] ? at[j]->item : -1;
    free(at);
    *out = last;
    return SR_OK;
}

/* Dedup; with repeats removed, count the users whose last two items (the
 * leave-last-out test and valid items) it changed. */
static sr_status dedup_rows(rowvec *v, int remove, int64_t nu, sr_convert_report *rep, sr_error *err)
{
    rep->duplicates = dedup(v, 0);
    if (!remove || rep->duplicates == 0) return SR_OK;
    int64_t *before = NULL, *after = NULL;
    SR_TRY(last_two(v, nu, &before, err));
    dedup(v, 1);
    sr_status st = last_two(v, nu, &after, err);
    for (int64_t u = 0; st == SR_OK && u < nu; u++)
        rep->last_changed += before[2 * u] != after[2 * u] || before[2 * u + 1] != after[2 * u + 1];
    free(before);
    free(after);
    return st;
}

/* Token columns: rows get the dictionary's value (dict_finish). */
static sr_status apply_dicts(parse_ctx *pc, rowvec *v, sr_convert_report *rep, sr_error *err)
{
    for (int w = 0; w < 2; w++) {
        SR_TRY(dict_finish(&pc->ids[w], err));
        rep->string_ids[w] = !pc->ids[w].all_int;
    }
    for (int64_t k = 0; k < v->n; k++) {
        v->r[k].user = pc->ids[0].value[v->r[k].user];
        v->r[k].item = pc->ids[1].value[v->r[k].item];
    }
    return SR_OK;
}

/* Names of the final dense ids of a string column: ranks -> tokens. */
static sr_status names_of(const dict *d, const int64_t *rank, int64_t n, const char ***out, sr_error *err)
{
    *out = malloc((size_t)(n ? n : 1) * sizeof **out);
    if (!*out) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the id names");
    for (int64_t k = 0; k < n; k++) (*out)[k] = d->sorted[rank[k]];
    return SR_OK;
}

sr_status sr_convert_run(const sr_convert_opts *o, sr_convert_report *rep_out, sr_error *err)
{
    sr_convert_report rep_local, *rep = rep_out ? rep_out : &rep_local;
    memset(rep, 0, sizeof *rep);
    sr_split_kind kind = SR_SPLITK_DEFAULT;
    SR_TRY(check_opts(o, &kind, &rep->dedup, err));
    SR_TRY(sr_dataset_check_output(o->output, o->overwrite, err));

    rowvec v = {0};
    int64_t *uorig = NULL, *iorig = NULL, *ufinal = NULL, *ifinal = NULL;
    const char **unames = NULL, **inames = NULL;
    int64_t nu = 0, ni = 0, nuf = 0, nif = 0;
    sr_dataset_writer *w = NULL;
    sr_status st;
    parse_ctx pc = {.o = o, .rows = &v, .rep = rep};
    if ((st = parse_file(&pc, o->input, SR_SPLIT_TRAIN, err))) goto done;
    if (o->valid && (st = parse_file(&pc, o->valid, SR_SPLIT_VALID, err))) goto done;
    if (o->test && (st = parse_file(&pc, o->test, SR_SPLIT_TEST, err))) goto done;
    int tokens = token_format(o->format);
    if (tokens && (st = apply_dicts(&pc, &v, rep, err))) goto done;

    /* Token formats have time when every file has a time column. */
    int real_time = o->format == SR_FORMAT_ML100K || o->format == SR_FORMAT_ML1M ||
                    (tokens && pc.files_with_time == pc.files);
    if (tokens && !real_time)
        for (int64_t k = 0; k < v.n; k++) v.r[k].time = 0;
    int seq_time = o->format == SR_FORMAT_SEQ_PAIRS || o->format == SR_FORMAT_SEQ_LINES;
    rep->has_time = real_time || seq_time;

    if ((st = densify(&v, 0, &uorig, &nu, err)) || (st = densify(&v, 1, &iorig, &ni, err))) goto done;
    if ((st = dedup_rows(&v, rep->dedup, nu, rep, err))) goto done;
    if (o->kcore > 0 && (st = kcore(&v, o->kcore, nu, ni, &rep->kcore_removed, err))) goto done;
    if (v.n == 0) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: no interactions left after filtering (%lld read, %lld below --min-rating, %lld removed by the %lld-core)",
                          o->input, (long long)rep->rows_read, (long long)rep->below_min_rating,
                          (long long)rep->kcore_removed, (long long)o->kcore);
        goto done;
    }
    if ((st = renumber(&v, 0, uorig, nu, &ufinal, &nuf, err)) || (st = renumber(&v, 1, iorig, ni, &ifinal, &nif, err)))
        goto done;
    qsort(v.r, (size_t)v.n, sizeof *v.r, cmp_user_time);
    if (seq_time) { /* position in the user's sequence is the time */
        for (int64_t k = 0; k < v.n; k++) v.r[k].time = (k > 0 && v.r[k].user == v.r[k - 1].user) ? v.r[k - 1].time + 1 : 0;
    }
    if ((st = assign_splits(&v, o, kind, err))) goto done;

    char name[128], source[1024], sha[65], files[1400];
    if (o->name) snprintf(name, sizeof name, "%s", o->name);
    else default_name(o->output, name, sizeof name);
    if ((st = provenance(o, source, sizeof source, sha, files, sizeof files, err))) goto done;
    switch (kind) {
    case SR_SPLITK_GIVEN:
        if (o->valid_ratio > 0)
            snprintf(rep->split_protocol, sizeof rep->split_protocol, "given; valid = %g of each user's train (random)",
                     o->valid_ratio);
        else snprintf(rep->split_protocol, sizeof rep->split_protocol, "given");
        break;
    case SR_SPLITK_RANDOM:
        snprintf(rep->split_protocol, sizeof rep->split_protocol, "random per user %g/%g/%g", o->ratio[0], o->ratio[1],
                 o->ratio[2]);
        break;
    default: snprintf(rep->split_protocol, sizeof rep->split_protocol, "leave-last-out"); break;
    }
    int seeded = kind == SR_SPLITK_RANDOM || (kind == SR_SPLITK_GIVEN && o->valid_ratio > 0);
    sr_dataset_attrs attrs = {.name = name,
                              .source = source,
                              .source_sha256 = sha,
                              .split_protocol = rep->split_protocol,
                              .split_seed = seeded ? (int64_t)o->seed : -1,
                              .has_time = rep->has_time,
                              .source_files = files};
    if ((st = sr_dataset_writer_create(&w, o->output, nuf, nif, &attrs, err))) goto done;
    if ((st = write_rows(w, &v, nuf, rep->has_time, err))) goto done;
    if (rep->string_ids[0] && (st = names_of(&pc.ids[0], ufinal, nuf, &unames, err))) goto done;
    if (rep->string_ids[1] && (st = names_of(&pc.ids[1], ifinal, nif, &inames, err))) goto done;
    if ((st = sr_dataset_writer_set_id_maps(w, unames ? NULL : ufinal, inames ? NULL : ifinal, err))) goto done;
    if ((st = sr_dataset_writer_set_id_names(w, unames, inames, err))) goto done;
    if ((st = sr_dataset_writer_commit(w, err))) goto done;
    rep->num_users = nuf;
    rep->num_items = nif;
    for (int64_t k = 0; k < v.n; k++) rep->nnz[v.r[k].split]++;
done:
    sr_dataset_writer_abort(&w);
    free(v.r);
    free(uorig);
    free(iorig);
    free(ufinal);
    free(ifinal);
    free(unames);
    free(inames);
    dict_free(&pc.ids[0]);
    dict_free(&pc.ids[1]);
    return st;
}
