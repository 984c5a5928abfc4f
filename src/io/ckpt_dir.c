/* ckpt_dir.c: commit protocol of <run_dir>/checkpoints (see ckpt_dir.h).
 * File-system steps (rename, fsync, delete) happen on rank 0 only; their
 * outcome reaches every rank through sr_comm_agree or a broadcast. */
#include "io/ckpt_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/collectives.h"
#include "io/sha256.h"

#define MAX_CANDIDATES 4096

void sr_ckpt_dir_name(int64_t step, char *buf, size_t len) { snprintf(buf, len, "ckpt-%012lld.h5", (long long)step); }

int sr_ckpt_dir_parse_name(const char *name, int64_t *step)
{
    if (strlen(name) != 20 || strncmp(name, "ckpt-", 5) != 0 || strcmp(name + 17, ".h5") != 0) return 0;
    int64_t v = 0;
    for (int i = 5; i < 17; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        v = v * 10 + (name[i] - '0');
    }
    *step = v;
    return 1;
}

static void dir_path(const char *run_dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run_dir, SR_CKPT_DIR_NAME);
}

/* fsync a file or directory by path. */
static int fsync_path(const char *path, int is_dir)
{
    int fd = open(path, is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write text into tmp, fsync, rename to final, fsync the directory. */
static sr_status write_atomic(const char *dir, const char *tmp, const char *final, const char *text, sr_error *err)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) SR_FAIL(err, SR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = errno;
    if (w != (ssize_t)n || fsync(fd) != 0) {
        if (w == (ssize_t)n) e = errno;
        close(fd);
        unlink(tmp);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        e = errno;
        unlink(tmp);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot close: %s", tmp, strerror(e));
    }
    if (rename(tmp, final) != 0) {
        e = errno;
        unlink(tmp);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot rename into place: %s", final, strerror(e));
    }
    if (fsync_path(dir, 1) != 0) SR_FAIL(err, SR_ERR_IO, "%s: cannot sync the directory: %s", dir, strerror(errno));
    return SR_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Committed steps, newest first. Returns the count (<= cap) or -1. */
static int list_committed(const char *dir, int64_t *steps, int cap)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s;
        if (sr_ckpt_dir_parse_name(e->d_name, &s) && n < cap) steps[n++] = s;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    return n;
}

/* The step `latest` names, if it is a valid name of an existing file. */
static int read_latest(const char *dir, int64_t *step, int *present)
{
    char p[SR_CKPT_DIR_PATH_MAX], buf[64] = "";
    snprintf(p, sizeof p, "%s/latest", dir);
    *present = 0;
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    *present = 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!sr_ckpt_dir_parse_name(buf, step)) return 0;
    char full[SR_CKPT_DIR_PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", dir, buf);
    return access(full, F_OK) == 0;
}

static int starts_with(const char *s, const char *pre) { return strncmp(s, pre, strlen(pre)) == 0; }

/* ---- whole-file digests: SHA-256 per fixed chunk, hashed in parallel ---- */

#define DIGEST_MAGIC "softrec-ckpt-digest 1"
#define DIGEST_CHUNK ((int64_t)16 << 20) /* bytes per digest chunk, any rank count */
#define DIGEST_MAX_CHUNKS (1 << 20)     /* 16 TiB files */

static void to_hex(const uint8_t d[32], char hex[65])
{
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* Collective: SHA-256 of every chunk of path; rank b mod P hashes chunk b
 * with pread, an all-reduce (BOR over zero-filled slots) gives every rank
 * all of them. size is the file size (the same on every rank). */
static sr_status chunk_digests(const sr_comm *c, const char *path, int64_t size, uint8_t *dig, int64_t nchunks,
                               sr_error *err)
{
    int cnt = 0;
    SR_TRY(sr_comm_int(nchunks * 32, &cnt, "digest bytes", err));
    uint8_t *mine = calloc((size_t)(nchunks ? nchunks : 1), 32);
    char *buf = malloc((size_t)1 << 20);
    int fd = open(path, O_RDONLY);
    if (!mine || !buf) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for digests", path);
    else if (fd < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot open: %s", path, strerror(errno));
    for (int64_t b = c->rank; err->code == SR_OK && b < nchunks; b += c->size) {
        int64_t off = b * DIGEST_CHUNK, end = off + DIGEST_CHUNK < size ? off + DIGEST_CHUNK : size;
        sr_sha256 s;
        sr_sha256_init(&s);
        while (off < end) {
            size_t want = (size_t)(end - off < ((int64_t)1 << 20) ? end - off : ((int64_t)1 << 20));
            ssize_t got = pread(fd, buf, want, (off_t)off);
            if (got <= 0) {
                sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot read bytes at %lld: %s", path,
                             (long long)off, got < 0 ? strerror(errno) : "file shorter than expected");
                break;
            }
            sr_sha256_update(&s, buf, (size_t)got);
            off += got;
        }
        char hex[65];
        sr_sha256_hex(&s, hex);
        for (int i = 0; i < 32; i++) {
            unsigned v = 0;
            sscanf(hex + 2 * i, "%2x", &v);
            mine[b * 32 + i] = (uint8_t)v;
        }
    }
    if (fd >= 0) close(fd);
    free(buf);
    /* Every rank joins, even without its buffer (dig is zero-filled by the
     * callers, so it adds nothing; the error is agreed below). */
    SR_MPI_CHECK(err, MPI_Allreduce(mine ? (void *)mine : MPI_IN_PLACE, dig, cnt, MPI_UNSIGNED_CHAR, MPI_BOR,
                                    c->comm));
    free(mine);
    return sr_comm_agree(c, err);
}

static int64_t nchunks_of(int64_t size) { return (size + DIGEST_CHUNK - 1) / DIGEST_CHUNK; }

/* Collective: digest text of a finished file (rank 0 gets it; malloc'ed). */
static sr_status make_digest(const sr_comm *c, const char *path, char **text, sr_error *err)
{
    *text = NULL;
    int64_t size = -1;
    struct stat st;
    if (c->rank == 0) {
        if (stat(path, &st) != 0)
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot stat: %s", path, strerror(errno));
        else
            size = (int64_t)st.st_size;
    }
    SR_TRY(sr_comm_agree(c, err));
    SR_TRY(sr_comm_bcast(c, &size, 1, MPI_INT64_T, 0, err));
    int64_t n = nchunks_of(size);
    if (n > DIGEST_MAX_CHUNKS) sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: file too large", path);
    SR_TRY(sr_comm_agree(c, err));
    uint8_t *dig = calloc((size_t)(n ? n : 1), 32);
    if (!dig) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for digests", path);
    if (sr_comm_agree(c, err) != SR_OK || chunk_digests(c, path, size, dig, n, err) != SR_OK) {
        free(dig);
        return err->code;
    }
    if (c->rank == 0) {
        size_t cap = 128 + (size_t)n * 66;
        char *t = malloc(cap);
        if (!t) {
            sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", path);
        } else {
            size_t at = (size_t)snprintf(t, cap, "%s\nchunk_bytes %lld\nsize %lld\n", DIGEST_MAGIC,
                                         (long long)DIGEST_CHUNK, (long long)size);
            for (int64_t b = 0; b < n; b++) {
                to_hex(dig + b * 32, t + at);
                at += 64;
                t[at++] = '\n';
            }
            t[at] = '\0';
            *text = t;
        }
    }
    free(dig);
    return sr_comm_agree(c, err);
}

/* Collective: check path against its digest file. *had = 0 (on every rank)
 * when there is none. The digest file is untrusted text: parsed strictly. */
static sr_status check_digest(const sr_comm *c, const char *path, int *had, sr_error *err)
{
    char side[SR_CKPT_DIR_PATH_MAX + 48];
    snprintf(side, sizeof side, "%s.sha256", path);
    int64_t hdr[3] = {0, 0, 0}; /* present, size, chunks */
    uint8_t *want = NULL;
    if (c->rank == 0) {
        FILE *f = fopen(side, "r");
        if (f) {
            hdr[0] = 1;
            char magic[64] = "";
            long long cb = 0, size = -1;
            int ok = fgets(magic, sizeof magic, f) && strcmp(magic, DIGEST_MAGIC "\n") == 0 &&
                     fscanf(f, "chunk_bytes %lld\nsize %lld\n", &cb, &size) == 2 && cb == DIGEST_CHUNK && size >= 0 &&
                     nchunks_of(size) <= DIGEST_MAX_CHUNKS;
            int64_t n = ok ? nchunks_of(size) : 0;
            want = calloc((size_t)(n ? n : 1), 32);
            for (int64_t b = 0; ok && want && b < n; b++) {
                char hx[80];
                ok = fgets(hx, sizeof hx, f) && strlen(hx) == 65 && hx[64] == '\n';
                for (int i = 0; ok && i < 32; i++) {
                    unsigned v;
                    ok = sscanf(hx + 2 * i, "%2x", &v) == 1;
                    want[b * 32 + i] = (uint8_t)v;
                }
            }
            fclose(f);
            if (!ok || !want)
                sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: malformed digest file", side);
            hdr[1] = size;
            hdr[2] = n;
        }
    }
    if (sr_comm_agree(c, err) != SR_OK) {
        free(want);
        return err->code;
    }
    if (sr_comm_bcast(c, hdr, 3, MPI_INT64_T, 0, err) != SR_OK) {
        free(want);
        return err->code;
    }
    *had = (int)hdr[0];
    if (!hdr[0]) return SR_OK;
    struct stat st;
    if (c->rank == 0 && stat(path, &st) != 0)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot stat: %s", path, strerror(errno));
    else if (c->rank == 0 && (int64_t)st.st_size != hdr[1])
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: size %lld bytes, its digest file says %lld (damaged file)",
                     path, (long long)st.st_size, (long long)hdr[1]);
    uint8_t *got = calloc((size_t)(hdr[2] ? hdr[2] : 1), 32);
    if (!want) want = calloc((size_t)(hdr[2] ? hdr[2] : 1), 32);
    if (!got || !want) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", path);
    if (sr_comm_agree(c, err) == SR_OK) {
        if (sr_comm_bcast(c, want, hdr[2] * 32, MPI_UNSIGNED_CHAR, 0, err) == SR_OK &&
            chunk_digests(c, path, hdr[1], got, hdr[2], err) == SR_OK) {
            for (int64_t b = 0; b < hdr[2]; b++)
                if (memcmp(got + b * 32, want + b * 32, 32) != 0) {
                    int64_t end = (b + 1) * DIGEST_CHUNK < hdr[1] ? (b + 1) * DIGEST_CHUNK : hdr[1];
                    sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                 "%s: bytes %lld-%lld fail the whole-file SHA-256 check (damaged file)", path,
                                 (long long)(b * DIGEST_CHUNK), (long long)(end - 1));
                    break;
                }
        }
    }
    free(got);
    free(want);
    return sr_comm_agree(c, err);
}

sr_status sr_ckpt_dir_cleanup(const sr_comm *c, const char *run_dir, sr_error *err)
{
    char dir[SR_CKPT_DIR_PATH_MAX];
    dir_path(run_dir, dir, sizeof dir);
    if (c->rank == 0) {
        struct stat st;
        if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: run directory does not exist", run_dir);
        else if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create: %s", dir, strerror(errno));
        DIR *d = err->code == SR_OK ? opendir(dir) : NULL;
        if (err->code == SR_OK && !d)
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot list: %s", dir, strerror(errno));
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char full[SR_CKPT_DIR_PATH_MAX + 300];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            int64_t s;
            size_t n = strlen(e->d_name);
            if (starts_with(e->d_name, ".tmp-") || strcmp(e->d_name, "latest.tmp") == 0) {
                unlink(full);
            } else if (n == 27 && strcmp(e->d_name + 20, ".sha256") == 0) {
                /* Orphan digest: its checkpoint was never committed. */
                char h5[32];
                snprintf(h5, sizeof h5, "%.20s", e->d_name);
                char h5full[SR_CKPT_DIR_PATH_MAX + 40];
                snprintf(h5full, sizeof h5full, "%s/%s", dir, h5);
                if (sr_ckpt_dir_parse_name(h5, &s) && access(h5full, F_OK) != 0) unlink(full);
            }
        }
        if (d) closedir(d);
        /* Training must commit checkpoints: a directory it cannot write in
         * (read-only mount, permissions) fails now, not after the first
         * stretch of training. The deletes above are allowed to fail. */
        if (err->code == SR_OK) {
            char probe[SR_CKPT_DIR_PATH_MAX + 64];
            snprintf(probe, sizeof probe, "%s/.tmp-probe-%ld", dir, (long)getpid());
            int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot write in the checkpoint directory: %s",
                             dir, strerror(errno));
            else
                close(fd);
            unlink(probe);
        }
    }
    return sr_comm_agree(c, err);
}

/* Rank 0: delete committed checkpoints above `step` and beyond `keep`. */
static void prune(const char *dir, int64_t step, int64_t keep)
{
    int64_t *steps = malloc(MAX_CANDIDATES * sizeof *steps);
    int n = steps ? list_committed(dir, steps, MAX_CANDIDATES) : -1;
    int64_t kept = 0;
    for (int i = 0; i < n; i++) {
        int drop = steps[i] > step || kept >= keep;
        if (!drop) {
            kept++;
            continue;
        }
        char name[32], full[SR_CKPT_DIR_PATH_MAX + 40], side[SR_CKPT_DIR_PATH_MAX + 48];
        sr_ckpt_dir_name(steps[i], name, sizeof name);
        snprintf(full, sizeof full, "%s/%s", dir, name);
        snprintf(side, sizeof side, "%s.sha256", full);
        if (unlink(full) != 0) fprintf(stderr, "softrec: warning: cannot delete old checkpoint %s: %s\n", full, strerror(errno));
        unlink(side);
    }
    free(steps);
}

sr_status sr_ckpt_dir_save(const sr_comm *c, const char *run_dir, int64_t step, const sr_ckpt_info *info,
                           const sr_ckpt_table *tables, int ntables, const sr_ckpt_state *state, int nstate,
                           int64_t keep, sr_fault *fault, sr_error *err)
{
    char dir[SR_CKPT_DIR_PATH_MAX], tmp[SR_CKPT_DIR_PATH_MAX + 64], tmpsum[SR_CKPT_DIR_PATH_MAX + 64];
    char name[32], final[SR_CKPT_DIR_PATH_MAX + 40], side[SR_CKPT_DIR_PATH_MAX + 48];
    dir_path(run_dir, dir, sizeof dir);
    if (step < 0 || keep < 1)
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: save: bad step %lld or keep %lld", dir,
                     (long long)step, (long long)keep);
    /* One temporary name on every rank: rank 0's pid. */
    long pid = (long)getpid();
    SR_TRY(sr_comm_bcast(c, &pid, 1, MPI_LONG, 0, err));
    snprintf(tmp, sizeof tmp, "%s/.tmp-%lld-%ld.h5", dir, (long long)step, pid);
    snprintf(tmpsum, sizeof tmpsum, "%s/.tmp-%lld-%ld.sha256", dir, (long long)step, pid);
    sr_ckpt_dir_name(step, name, sizeof name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    snprintf(side, sizeof side, "%s.sha256", final);
    if (c->rank == 0 && err->code == SR_OK && mkdir(dir, 0755) != 0 && errno != EEXIST)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create: %s", dir, strerror(errno));
    SR_TRY(sr_comm_agree(c, err));

    /* 1. write and agree */
    if (sr_ckpt_save(c, tmp, info, tables, ntables, state, nstate, fault, err) != SR_OK) {
        if (c->rank == 0) unlink(tmp);
        return err->code;
    }
    sr_fault_hit(fault, SR_FAULT_CKPT_BEFORE_COMMIT, c->rank, tmp, err);
    if (sr_comm_agree(c, err) != SR_OK) {
        if (c->rank == 0) unlink(tmp);
        return err->code;
    }
    /* 2. commit: data on disk, digest beside it, then the rename that
     * makes it count */
    if (c->rank == 0 && fsync_path(tmp, 0) != 0)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot sync: %s", tmp, strerror(errno));
    char *digest = NULL;
    if (sr_comm_agree(c, err) == SR_OK) make_digest(c, tmp, &digest, err);
    if (c->rank == 0 && err->code == SR_OK) {
        /* A committed file of the same step belongs to an abandoned
         * timeline: un-commit it first, so a digest never describes the
         * wrong file. */
        unlink(side);
        unlink(final);
        if (write_atomic(dir, tmpsum, side, digest, err) == SR_OK) {
            if (rename(tmp, final) != 0)
                sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot rename into place: %s", final,
                             strerror(errno));
            else if (fsync_path(dir, 1) != 0)
                sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot sync the directory: %s", dir,
                             strerror(errno));
        }
    }
    free(digest);
    if (c->rank == 0 && err->code != SR_OK) {
        unlink(tmp);
        unlink(tmpsum);
    }
    SR_TRY(sr_comm_agree(c, err));
    sr_fault_hit(fault, SR_FAULT_CKPT_AFTER_RENAME, c->rank, final, err);
    SR_TRY(sr_comm_agree(c, err));
    /* 3. point `latest` at it */
    if (c->rank == 0 && sr_fault_hit(fault, SR_FAULT_CKPT_LATEST, c->rank, dir, err) == SR_OK) {
        char lt[SR_CKPT_DIR_PATH_MAX + 16], lf[SR_CKPT_DIR_PATH_MAX + 16], line[64];
        snprintf(lt, sizeof lt, "%s/latest.tmp", dir);
        snprintf(lf, sizeof lf, "%s/latest", dir);
        snprintf(line, sizeof line, "%s\n", name);
        write_atomic(dir, lt, lf, line, err);
    }
    SR_TRY(sr_comm_agree(c, err));
    /* 4. retention */
    if (c->rank == 0) prune(dir, step, keep);
    return sr_comm_agree(c, err);
}

/* Rank 0: candidate steps, newest first. *warn_latest: 0, or why every
 * committed one is a candidate: LATEST_MISSING (committed files but no
 * `latest`), LATEST_BAD (unreadable or naming a missing file). */
enum { LATEST_OK = 0, LATEST_MISSING, LATEST_BAD };
static int candidates(const char *dir, int64_t *steps, int cap, int *warn_latest)
{
    int64_t lstep = -1;
    int present = 0;
    int ok = read_latest(dir, &lstep, &present);
    int n = list_committed(dir, steps, cap);
    *warn_latest = ok || n <= 0 ? LATEST_OK : present ? LATEST_BAD : LATEST_MISSING;
    if (n < 0) return 0;
    if (!ok) return n;
    /* latest's target first, then the older ones (steps is sorted newest
     * first, so the older ones are a suffix); newer ones never had `latest`
     * updated, so they are not committed. */
    int k = 0;
    while (k < n && steps[k] >= lstep) k++;
    int m = n - k < cap - 1 ? n - k : cap - 1;
    memmove(steps + 1, steps + k, (size_t)m * sizeof *steps);
    steps[0] = lstep;
    return m + 1;
}

sr_status sr_ckpt_dir_latest(const sr_comm *c, const char *run_dir, char *path_out, size_t len, sr_error *err)
{
    char dir[SR_CKPT_DIR_PATH_MAX];
    dir_path(run_dir, dir, sizeof dir);
    int64_t found = -1;
    if (c->rank == 0) {
        int64_t *all = malloc(MAX_CANDIDATES * sizeof *all);
        int warn = 0;
        int n = all ? candidates(dir, all, MAX_CANDIDATES, &warn) : 0;
        if (n > 0) found = all[0];
        if (warn)
            fprintf(stderr, "softrec: warning: %s/latest %s; using the newest committed checkpoint\n", dir,
                    warn == LATEST_MISSING ? "is missing" : "is unreadable or names a missing file");
        free(all);
    }
    path_out[0] = '\0';
    SR_TRY(sr_comm_bcast(c, &found, 1, MPI_INT64_T, 0, err));
    if (found >= 0) {
        char name[32];
        sr_ckpt_dir_name(found, name, sizeof name);
        if ((size_t)snprintf(path_out, len, "%s/%s", dir, name) >= len)
            sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: path buffer too small", dir);
    }
    return sr_comm_agree(c, err);
}

/* The whole-file digest of a file that passed its in-file checks (the
 * second half of every load and of verify); info is freed on failure. */
static sr_status check_whole_file(const sr_comm *c, const char *path, sr_ckpt_info *info, int *had, sr_error *err)
{
    check_digest(c, path, had, err);
    if (c->rank == 0 && err->code == SR_OK && !*had)
        fprintf(stderr, "softrec: warning: %s has no whole-file digest; only its tables and state were verified\n",
                path);
    if (sr_comm_agree(c, err) != SR_OK) sr_ckpt_info_free(info);
    return err->code;
}

sr_status sr_ckpt_dir_verify(const sr_comm *c, const char *path, sr_ckpt_info *info, int *had_digest,
                             sr_error *err)
{
    int had = 1;
    SR_TRY(sr_ckpt_verify(c, path, info, err));
    SR_TRY(check_whole_file(c, path, info, &had, err));
    if (had_digest) *had_digest = had;
    return SR_OK;
}

/* The accept hook on a candidate's attributes. SR_OK: go on loading it (or
 * the attributes cannot be read: the load will say why, and fall back);
 * *refused = 1 and the hook's error otherwise. */
static sr_status ask_accept(const sr_comm *c, const sr_ckpt_accept *accept, const char *path, int *refused,
                            sr_error *err)
{
    *refused = 0;
    if (!accept) return SR_OK;
    sr_ckpt_info pre;
    sr_error scratch;
    sr_error_clear(&scratch);
    if (sr_ckpt_read_info(c, path, &pre, &scratch) != SR_OK) return SR_OK;
    accept->fn(accept->ctx, path, &pre, err);
    sr_ckpt_info_free(&pre);
    *refused = sr_comm_agree(c, err) != SR_OK;
    return err->code;
}

/* One candidate: the accept hook, then the checks verify runs, loading
 * what was asked for. *refused: the hook's error (no fallback). */
static sr_status load_candidate(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables,
                                sr_ckpt_state *state, int nstate, sr_ckpt_info *info, const sr_ckpt_accept *accept,
                                sr_fault *fault, int *refused, sr_error *err)
{
    SR_TRY(ask_accept(c, accept, path, refused, err));
    int had = 1;
    SR_TRY(sr_ckpt_load(c, path, tables, ntables, state, nstate, info, fault, err));
    return check_whole_file(c, path, info, &had, err);
}

sr_status sr_ckpt_dir_load(const sr_comm *c, const char *run_dir, sr_ckpt_table *tables, int ntables,
                           sr_ckpt_state *state, int nstate, sr_ckpt_info *info, const sr_ckpt_accept *accept,
                           sr_fault *fault, char *path_out, size_t len, sr_error *err)
{
    char dir[SR_CKPT_DIR_PATH_MAX];
    dir_path(run_dir, dir, sizeof dir);
    if (path_out && len) path_out[0] = '\0';
    int64_t *steps = malloc(MAX_CANDIDATES * sizeof *steps);
    int n = 0;
    if (!steps) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", dir);
    if (c->rank == 0 && steps) {
        int warn = 0;
        n = candidates(dir, steps, MAX_CANDIDATES, &warn);
        if (warn)
            fprintf(stderr, "softrec: warning: %s/latest %s; trying every committed checkpoint, newest first\n",
                    dir, warn == LATEST_MISSING ? "is missing" : "is unreadable or names a missing file");
    }
    if (sr_comm_agree(c, err) != SR_OK) {
        free(steps);
        return err->code;
    }
    if (sr_comm_bcast(c, &n, 1, MPI_INT, 0, err) != SR_OK ||
        sr_comm_bcast(c, steps, n, MPI_INT64_T, 0, err) != SR_OK) {
        free(steps);
        return err->code;
    }
    sr_error first;
    sr_error_clear(&first);
    for (int i = 0; i < n; i++) {
        char name[32], path[SR_CKPT_DIR_PATH_MAX + 40];
        sr_ckpt_dir_name(steps[i], name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        sr_error e;
        sr_error_clear(&e);
        int refused = 0;
        if (load_candidate(c, path, tables, ntables, state, nstate, info, accept, fault, &refused, &e) == SR_OK) {
            if (path_out && len) snprintf(path_out, len, "%s", path);
            free(steps);
            return SR_OK;
        }
        if (refused) {
            free(steps);
            *err = e;
            return err->code;
        }
        if (first.code == SR_OK) first = e;
        if (c->rank == 0) {
            char older[32] = "nothing (no older checkpoint)";
            if (i + 1 < n) sr_ckpt_dir_name(steps[i + 1], older, sizeof older);
            fprintf(stderr, "softrec: warning: checkpoint %s is unusable (%s); falling back to %s\n", path, e.msg,
                    older);
        }
    }
    free(steps);
    if (first.code != SR_OK) {
        if (err->code == SR_OK) *err = first;
        return err->code;
    }
    return SR_OK; /* no checkpoint at all: a fresh start */
}
