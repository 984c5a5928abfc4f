/* synth.c: the planted-data generator behind "softrec data synth" (the
 * command itself, options and file writing, is src/cli/data_cmd.c).
 *
 * What it does: builds the catalogue (topic groups, alias tables) once, then
 * generates users block by block and hands each block to a sink (the command
 * streams them to the dataset writer), so memory is O(items + block), never
 * O(interactions). What it does not do: parallel generation, or store the planted factors in the file (they can be
 * recomputed from the parameters, which are stored in the "source" attribute).
 */
#include "io/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/rng.h"

#define SYNTH_CATALOGUE_STREAM 0xffffffffu /* rank slot of the catalogue stream */
#define SYNTH_MAX_DIM 256                  /* topic draws per user (merged by a scan) */
#define SYNTH_MIN_PER_USER 3               /* one train, one valid, one test */

/* One alias-table slot with the ids it resolves to, so a draw touches one
 * 12-byte slot (one cache miss) instead of three parallel arrays. */
typedef struct synth_slot {
    float prob;    /* keep `self` when u < prob, else take `alias` */
    int32_t self;  /* the item (or topic) of this slot */
    int32_t alias; /* the item (or topic) it borrows from */
} synth_slot;

struct sr_synth {
    sr_synth_params p;
    sr_mem *mem;
    uint64_t topic_key;   /* hash key of the item -> topic map */
    uint64_t perm_key[4]; /* Feistel round keys of the popularity permutation */
    int perm_half;        /* Feistel half width in bits: 2^(2 half) >= items */
    int64_t nonempty;     /* topics with at least one item */
    int64_t *start;       /* [T + 1] offsets of each topic's items */
    synth_slot *slot;     /* [N] per topic: its items (ascending) and alias table */
    synth_slot *tslot;    /* [T] alias table of topics by mass */
    double *tmass;        /* [T] topic masses (sum of item weights) */
};

/* ---- parameters ---------------------------------------------------------- */

void sr_synth_params_default(sr_synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->users = 10000;
    p->items = 100000;
    p->interactions = 0; /* 0: 20 per user */
    p->dim = 4;
    p->topics = 64;
    p->zipf = 1.0;
    p->noise = 0.1;
    p->valid_ratio = 0.1;
    p->test_ratio = 0.1;
    p->seed = 1;
    p->block_users = 4096;
}

sr_status sr_synth_params_check(const sr_synth_params *p, sr_error *err)
{
    if (p->users < 1 || p->users >= (int64_t)SYNTH_CATALOGUE_STREAM)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --users = %lld must be in [1, %lld]", (long long)p->users,
                (long long)SYNTH_CATALOGUE_STREAM - 1);
    if (p->items < 1 || p->items > INT32_MAX)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --items = %lld must be in [1, %d]", (long long)p->items,
                INT32_MAX);
    if (p->interactions < 1)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --interactions = %lld must be >= 1", (long long)p->interactions);
    if (p->interactions / SYNTH_MIN_PER_USER < p->users)
        SR_FAIL(err, SR_ERR_USAGE,
                "data synth: --interactions = %lld must be at least %d x --users (%lld): every user "
                "needs a train, a valid and a test item",
                (long long)p->interactions, SYNTH_MIN_PER_USER, (long long)p->users);
    if (p->topics < 1 || p->topics > INT32_MAX)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --topics = %lld must be in [1, %d]", (long long)p->topics,
                INT32_MAX);
    if (p->dim < 1 || p->dim > SYNTH_MAX_DIM || p->dim > p->topics)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --dim = %lld must be in [1, min(--topics, %d)] (--topics = %lld)",
                (long long)p->dim, SYNTH_MAX_DIM, (long long)p->topics);
    if (!(p->zipf >= 0 && p->zipf <= 10))
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --zipf = %g must be in [0, 10]", p->zipf);
    if (!(p->noise >= 0 && p->noise <= 1))
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --noise = %g must be in [0, 1]", p->noise);
    if (!(p->valid_ratio >= 0 && p->valid_ratio < 1))
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --valid-ratio = %g must be in [0, 1)", p->valid_ratio);
    if (!(p->test_ratio >= 0 && p->test_ratio < 1))
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --test-ratio = %g must be in [0, 1)", p->test_ratio);
    if (!(p->valid_ratio + p->test_ratio < 1))
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --valid-ratio + --test-ratio = %g must be below 1 (no train items left)",
                p->valid_ratio + p->test_ratio);
    if (p->block_users < 1)
        SR_FAIL(err, SR_ERR_USAGE, "data synth: --block-users = %lld must be >= 1", (long long)p->block_users);
    return SR_OK;
}

/* ---- hashing and the popularity permutation ------------------------------ */

/* splitmix64 finaliser: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int64_t sr_synth_item_topic(const sr_synth *s, int64_t item)
{
    /* Multiply-shift maps the hash's top 32 bits onto [0, T) evenly. */
    uint64_t h = mix64(s->topic_key ^ mix64((uint64_t)item)) >> 32;
    return (int64_t)((h * (uint64_t)s->p.topics) >> 32);
}

/* A random bijection of [0, N): a 4-round Feistel network on 2*half bits
 * with cycle walking (the domain is < 4N, so < 4 steps on average). O(1)
 * memory instead of an N-entry shuffled array. */
int64_t sr_synth_item_rank(const sr_synth *s, int64_t item)
{
    const int h = s->perm_half;
    const uint64_t mask = ((uint64_t)1 << h) - 1;
    uint64_t x = (uint64_t)item;
    do {
        uint64_t l = x >> h, r = x & mask;
        for (int k = 0; k < 4; k++) {
            uint64_t f = mix64(r ^ s->perm_key[k]) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << h) | r;
    } while (x >= (uint64_t)s->p.items);
    return (int64_t)x;
}

static double item_weight(const sr_synth *s, int64_t item)
{
    return pow(1.0 + (double)sr_synth_item_rank(s, item), -s->p.zipf);
}

/* ---- alias tables (Vose) -------------------------------------------------- */

/* Build the alias table of m weights w (scaled in place) into slot[0..m)
 * whose `self` ids are already set; work holds m ints. Both worklists share
 * work: small from the front, large from the back (together they never hold
 * more than m entries). */
static void alias_build(double *w, int64_t m, double mass, synth_slot *slot, int32_t *work)
{
    int64_t ns = 0, nl = 0;
    for (int64_t k = 0; k < m; k++) {
        w[k] = mass > 0 ? w[k] * (double)m / mass : 1.0;
        if (w[k] < 1.0) work[ns++] = (int32_t)k;
        else work[m - 1 - nl++] = (int32_t)k;
    }
    while (ns > 0 && nl > 0) {
        int32_t sm = work[--ns];
        int32_t lg = work[m - nl--];
        slot[sm].prob = (float)w[sm];
        slot[sm].alias = slot[lg].self;
        w[lg] = (w[lg] + w[sm]) - 1.0;
        if (w[lg] < 1.0) work[ns++] = lg;
        else work[m - 1 - nl++] = lg;
    }
    /* Leftovers are 1 up to rounding. */
    while (ns > 0) {
        int32_t k = work[--ns];
        slot[k].prob = 1.0f;
        slot[k].alias = slot[k].self;
    }
    while (nl > 0) {
        int32_t k = work[m - nl--];
        slot[k].prob = 1.0f;
        slot[k].alias = slot[k].self;
    }
}

/* Uniform float in [0, 1) with 24 bits: enough to compare with a float. */
static float uniform24(sr_rng *g) { return (float)(sr_rng_u32(g) >> 8) * 0x1.0p-24f; }

static int64_t alias_draw(const synth_slot *slot, int64_t m, sr_rng *g)
{
    const synth_slot *sl = slot + sr_rng_below(g, (uint64_t)m);
    return uniform24(g) < sl->prob ? sl->self : sl->alias;
}

/* ---- catalogue ------------------------------------------------------------ */

void sr_synth_destroy(sr_synth **sp)
{
    if (!sp || !*sp) return;
    sr_synth *s = *sp;
    sr_mem_free(s->mem, s->start);
    sr_mem_free(s->mem, s->slot);
    sr_mem_free(s->mem, s->tslot);
    sr_mem_free(s->mem, s->tmass);
    free(s);
    *sp = NULL;
}

/* Fill the topic groups and alias tables (allocations already made). */
static sr_status catalogue_build(sr_synth *s, sr_error *err)
{
    const int64_t n = s->p.items, t = s->p.topics;
    /* Counting sort of items by topic; ids stay ascending within a topic. */
    int64_t *cursor = sr_mem_calloc(s->mem, (size_t)t, sizeof *cursor, "synth topic cursors", err);
    if (!cursor) return err ? err->code : SR_ERR_NOMEM;
    for (int64_t j = 0; j < n; j++) s->start[sr_synth_item_topic(s, j) + 1]++;
    int64_t biggest = 0;
    for (int64_t k = 0; k < t; k++) {
        int64_t m = s->start[k + 1];
        biggest = m > biggest ? m : biggest;
        s->nonempty += m > 0;
        s->start[k + 1] += s->start[k];
        cursor[k] = s->start[k];
    }
    for (int64_t j = 0; j < n; j++) s->slot[cursor[sr_synth_item_topic(s, j)]++].self = (int32_t)j;
    sr_mem_free(s->mem, cursor);

    /* Per-topic alias tables; scratch sized for the biggest topic. */
    int64_t scratch_n = biggest > t ? biggest : t;
    double *w = sr_mem_calloc(s->mem, (size_t)scratch_n, sizeof *w, "synth alias weights", err);
    int32_t *work = sr_mem_calloc(s->mem, (size_t)scratch_n, sizeof *work, "synth alias worklist", err);
    if (!w || !work) {
        sr_mem_free(s->mem, w);
        sr_mem_free(s->mem, work);
        return err ? err->code : SR_ERR_NOMEM;
    }
    for (int64_t k = 0; k < t; k++) {
        int64_t a = s->start[k], m = s->start[k + 1] - a;
        double mass = 0;
        for (int64_t i = 0; i < m; i++) {
            w[i] = item_weight(s, s->slot[a + i].self);
            mass += w[i];
        }
        s->tmass[k] = mass;
        if (m > 0) alias_build(w, m, mass, s->slot + a, work);
    }
    /* Topics by mass: empty topics get weight 0 and are never drawn. */
    double total = 0;
    for (int64_t k = 0; k < t; k++) {
        w[k] = s->tmass[k];
        total += w[k];
        s->tslot[k].self = (int32_t)k;
    }
    alias_build(w, t, total, s->tslot, work);
    sr_mem_free(s->mem, w);
    sr_mem_free(s->mem, work);
    return SR_OK;
}

/* Every draw hits a random slot of an O(N) table: with 4 KiB pages that is
 * a TLB miss too. Ask for transparent huge pages before the first touch
 * (best effort: where THP is off the call fails and nothing changes). */
static void advise_huge(void *p, size_t bytes)
{
    const uintptr_t page = 4096;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + bytes) & ~(page - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
}

sr_status sr_synth_create(sr_synth **out, const sr_synth_params *p, sr_mem *mem, sr_error *err)
{
    *out = NULL;
    SR_TRY(sr_synth_params_check(p, err));
    sr_synth *s = calloc(1, sizeof *s);
    if (!s) SR_FAIL(err, SR_ERR_NOMEM, "data synth: out of memory");
    s->p = *p;
    s->mem = mem;
    sr_rng g;
    sr_rng_init(&g, p->seed, SYNTH_CATALOGUE_STREAM, SR_STREAM_SYNTH);
    s->topic_key = sr_rng_u64(&g);
    for (int k = 0; k < 4; k++) s->perm_key[k] = sr_rng_u64(&g);
    s->perm_half = 1;
    while (((uint64_t)1 << (2 * s->perm_half)) < (uint64_t)p->items) s->perm_half++;

    size_t n = (size_t)p->items, t = (size_t)p->topics;
    s->start = sr_mem_calloc(mem, t + 1, sizeof *s->start, "synth topic offsets", err);
    s->slot = n <= SIZE_MAX / sizeof *s->slot
                  ? sr_mem_alloc(mem, n * sizeof *s->slot, 0, "synth item alias tables", err)
                  : NULL;
    if (s->slot) advise_huge(s->slot, n * sizeof *s->slot);
    s->tslot = sr_mem_calloc(mem, t, sizeof *s->tslot, "synth topic alias table", err);
    s->tmass = sr_mem_calloc(mem, t, sizeof *s->tmass, "synth topic masses", err);
    sr_status st = SR_OK;
    if (!s->start || !s->slot || !s->tslot || !s->tmass)
        st = err && err->code ? err->code : SR_ERR_NOMEM;
    if (st == SR_OK) st = catalogue_build(s, err);
    if (st != SR_OK) {
        sr_synth_destroy(&s);
        return st;
    }
    *out = s;
    return SR_OK;
}

/* ---- users ------------------------------------------------------------------ */

/* n_u = 3 + Geometric(mean m - 3), at most N (and at least min(3, N)). The
 * first draw of the user's stream, so a block can size its buffers first. */
static int64_t user_count(const sr_synth *s, sr_rng *g)
{
    double mean = (double)s->p.interactions / (double)s->p.users - SYNTH_MIN_PER_USER;
    double u = sr_rng_uniform(g);
    int64_t extra = 0;
    if (mean > 0) {
        double q = mean / (mean + 1.0); /* failure probability 1 - p */
        double k = floor(log1p(-u) / log(q));
        extra = k < 1e15 ? (int64_t)k : (int64_t)1e15;
    }
    int64_t n = SYNTH_MIN_PER_USER + extra;
    return n < s->p.items ? n : s->p.items;
}

/* Split sizes of a user with n items: valid/test shares rounded, at least
 * one each when the ratio is > 0, and always one train item. */
static void split_sizes(const sr_synth *s, int64_t n, int64_t sz[3])
{
    int64_t v = s->p.valid_ratio > 0 ? llround((double)n * s->p.valid_ratio) : 0;
    int64_t t = s->p.test_ratio > 0 ? llround((double)n * s->p.test_ratio) : 0;
    if (s->p.valid_ratio > 0 && v < 1) v = 1;
    if (s->p.test_ratio > 0 && t < 1) t = 1;
    while (n - v - t < 1 && v + t > 0) {
        if (v >= t) v--; /* keep test items over valid ones when short */
        else t--;
    }
    sz[0] = n - v - t;
    sz[1] = v;
    sz[2] = t;
}

/* The user's topics and cumulative mixture weights; returns how many. Draws
 * follow user_count on the same stream. dim topics are drawn by mass *with*
 * replacement and get Dirichlet(1) weights; a repeated topic merges its
 * weights. Since the weights do not depend on the topics, the expected
 * weight of topic t over users is exactly mass_t / total: the item
 * frequencies summed over users stay Zipf (drawing distinct topics would
 * under-weight the heavy ones and flatten the head). */
static int64_t user_mixture(const sr_synth *s, sr_rng *g, int64_t *topics, double *cum)
{
    int64_t got = 0;
    double w[SYNTH_MAX_DIM], sum = 0;
    for (int64_t d = 0; d < s->p.dim; d++) {
        int64_t k;
        /* An empty topic has mass 0; the table can return one only by rounding. */
        do k = alias_draw(s->tslot, s->p.topics, g);
        while (s->start[k + 1] == s->start[k]);
        double e = -log1p(-sr_rng_uniform(g)); /* standard exponential */
        sum += e;
        int64_t i = 0;
        while (i < got && topics[i] != k) i++;
        if (i == got) {
            topics[got] = k;
            w[got++] = 0;
        }
        w[i] += e;
    }
    double acc = 0;
    for (int64_t i = 0; i < got; i++) {
        acc += w[i] / sum;
        cum[i] = acc;
    }
    cum[got - 1] = 1.0;
    return got;
}

int64_t sr_synth_user_topics(const sr_synth *s, int64_t user, int64_t *topics, double *weights)
{
    sr_rng g;
    sr_rng_init(&g, s->p.seed, (uint32_t)user, SR_STREAM_SYNTH);
    (void)user_count(s, &g);
    int64_t k = user_mixture(s, &g, topics, weights);
    for (int64_t i = k - 1; i > 0; i--) weights[i] -= weights[i - 1];
    return k;
}

/* Open-addressing set of item ids for one user (slot = id + 1, 0 = empty). */
typedef struct idset {
    uint64_t *slot;
    uint64_t mask;
} idset;

/* Insert; returns 0 when id was already there. */
static int idset_add(idset *h, int64_t id)
{
    uint64_t key = (uint64_t)id + 1;
    for (uint64_t i = mix64(key) & h->mask;; i = (i + 1) & h->mask) {
        if (h->slot[i] == key) return 0;
        if (h->slot[i] == 0) {
            h->slot[i] = key;
            return 1;
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Draw user's n distinct items into out (order random). */
static void user_items(const sr_synth *s, sr_rng *g, const int64_t *topics, const double *cum, int64_t k,
                       int64_t n, idset *h, int64_t *out)
{
    int64_t got = 0;
    const int64_t budget = 16 * n + 64;
    for (int64_t tries = 0; got < n && tries < budget; tries++) {
        int64_t t;
        if (k == 0 || uniform24(g) < s->p.noise) {
            t = alias_draw(s->tslot, s->p.topics, g);
        } else {
            double u = (double)sr_rng_u32(g) * 0x1.0p-32; /* 32 bits pick among <= 256 */
            int64_t i = 0;
            while (i < k - 1 && u >= cum[i]) i++;
            t = topics[i];
        }
        int64_t a = s->start[t], m = s->start[t + 1] - a;
        if (m == 0) continue; /* an empty topic drawn by rounding: redraw */
        int64_t item = alias_draw(s->slot + a, m, g);
        if (idset_add(h, item)) out[got++] = item;
    }
    /* The user's topics ran dry (tiny catalogues, very heavy users): fill
     * uniformly, then by a scan, so generation always ends. */
    for (int64_t tries = 0; got < n && tries < 4 * n; tries++) {
        int64_t item = (int64_t)sr_rng_below(g, (uint64_t)s->p.items);
        if (idset_add(h, item)) out[got++] = item;
    }
    for (int64_t j = (int64_t)sr_rng_below(g, (uint64_t)s->p.items); got < n; j = (j + 1) % s->p.items)
        if (idset_add(h, j)) out[got++] = j;
}

/* Grow-only scratch through sr_mem (contents are not kept). */
static sr_status scratch_reserve(sr_mem *mem, void **p, size_t *cap, size_t bytes, const char *what,
                                 sr_error *err)
{
    if (bytes <= *cap) return SR_OK;
    size_t want = bytes + bytes / 2;
    void *q = sr_mem_alloc(mem, want, 0, what, err);
    if (!q) return err ? err->code : SR_ERR_NOMEM;
    sr_mem_free(mem, *p);
    *p = q;
    *cap = want;
    return SR_OK;
}

typedef struct block_buf {
    int64_t *count;      /* [block] items per user */
    int64_t *indptr[3];  /* [block + 1] */
    int64_t *items[3];
    int64_t *user;       /* one user's items */
    uint64_t *set;       /* its duplicate filter */
    size_t cap_items[3], cap_user, cap_set;
} block_buf;

static void block_free(block_buf *b, sr_mem *mem)
{
    sr_mem_free(mem, b->count);
    for (int k = 0; k < 3; k++) {
        sr_mem_free(mem, b->indptr[k]);
        sr_mem_free(mem, b->items[k]);
    }
    sr_mem_free(mem, b->user);
    sr_mem_free(mem, b->set);
}

static void progress_line(const sr_log *log, int64_t done, int64_t total, int64_t nnz, double t0, double now)
{
    double el = now - t0, rate = el > 0 ? (double)nnz / el : 0;
    double eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
    sr_log_root(log, SR_LOG_INFO, "synth: users %lld/%lld (%.1f%%), interactions %.2fM, %.2fM/s, ETA %.0fs",
                (long long)done, (long long)total, 100.0 * (double)done / (double)total, (double)nnz / 1e6,
                rate / 1e6, eta);
}

/* One block [b0, b1): counts, then each user's items, split and sorted. */
static sr_status block_generate(const sr_synth *s, int64_t b0, int64_t b1, block_buf *b, sr_mem *mem,
                                sr_error *err)
{
    int64_t nb = b1 - b0, tot[3] = {0, 0, 0}, biggest = 0;
    for (int64_t i = 0; i < nb; i++) {
        sr_rng g;
        sr_rng_init(&g, s->p.seed, (uint32_t)(b0 + i), SR_STREAM_SYNTH);
        int64_t n = user_count(s, &g), sz[3];
        b->count[i] = n;
        biggest = n > biggest ? n : biggest;
        split_sizes(s, n, sz);
        for (int k = 0; k < 3; k++) tot[k] += sz[k];
    }
    for (int k = 0; k < 3; k++)
        SR_TRY(scratch_reserve(mem, (void **)&b->items[k], &b->cap_items[k], (size_t)(tot[k] ? tot[k] : 1) * 8,
                               "synth block items", err));
    SR_TRY(scratch_reserve(mem, (void **)&b->user, &b->cap_user, (size_t)biggest * 8, "synth user items", err));
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)biggest) slots <<= 1;
    SR_TRY(scratch_reserve(mem, (void **)&b->set, &b->cap_set, (size_t)slots * 8, "synth duplicate filter", err));

    int64_t topics[SYNTH_MAX_DIM];
    double cum[SYNTH_MAX_DIM];
    for (int k = 0; k < 3; k++) b->indptr[k][0] = 0;
    for (int64_t i = 0; i < nb; i++) {
        sr_rng g;
        sr_rng_init(&g, s->p.seed, (uint32_t)(b0 + i), SR_STREAM_SYNTH);
        int64_t n = user_count(s, &g);
        int64_t k = user_mixture(s, &g, topics, cum);
        /* A filter sized for this user (>= 2n slots), cleared in O(n). */
        uint64_t us = 16;
        while (us < 2 * (uint64_t)n) us <<= 1;
        memset(b->set, 0, (size_t)us * sizeof *b->set);
        idset h = {b->set, us - 1};
        user_items(s, &g, topics, cum, k, n, &h, b->user);
        /* Random split: shuffle, then test | valid | train segments. */
        for (int64_t j = n - 1; j > 0; j--) {
            int64_t r = (int64_t)sr_rng_below(&g, (uint64_t)j + 1);
            int64_t tmp = b->user[j];
            b->user[j] = b->user[r];
            b->user[r] = tmp;
        }
        int64_t sz[3];
        split_sizes(s, n, sz);
        const int64_t *seg[3] = {b->user + sz[2] + sz[1], b->user + sz[2], b->user};
        for (int sp = 0; sp < 3; sp++) {
            int64_t at = b->indptr[sp][i];
            memcpy(b->items[sp] + at, seg[sp], (size_t)sz[sp] * sizeof(int64_t));
            qsort(b->items[sp] + at, (size_t)sz[sp], sizeof(int64_t), cmp_i64);
            b->indptr[sp][i + 1] = at + sz[sp];
        }
    }
    return SR_OK;
}

sr_status sr_synth_generate(const sr_synth *s, int64_t u0, int64_t u1, sr_synth_sink sink, void *ctx,
                            const sr_log *log, double progress_s, sr_synth_stats *stats, sr_mem *mem,
                            sr_error *err)
{
    memset(stats, 0, sizeof *stats);
    if (u0 < 0 || u1 < u0 || u1 > s->p.users)
        SR_FAIL(err, SR_ERR_INTERNAL, "data synth: user range [%lld, %lld) outside [0, %lld)", (long long)u0,
                (long long)u1, (long long)s->p.users);
    double t0 = sr_time_now(), last = t0;
    int64_t bs = s->p.block_users;
    if (bs > u1 - u0 && u1 > u0) bs = u1 - u0;
    block_buf b;
    memset(&b, 0, sizeof b);
    sr_status st = SR_OK;
    b.count = sr_mem_calloc(mem, (size_t)bs, sizeof *b.count, "synth block counts", err);
    for (int k = 0; k < 3; k++)
        b.indptr[k] = sr_mem_calloc(mem, (size_t)bs + 1, sizeof *b.indptr[k], "synth block indptr", err);
    if (!b.count || !b.indptr[0] || !b.indptr[1] || !b.indptr[2]) st = err && err->code ? err->code : SR_ERR_NOMEM;
    for (int64_t b0 = u0; st == SR_OK && b0 < u1; b0 += bs) {
        int64_t b1 = b0 + bs < u1 ? b0 + bs : u1;
        st = block_generate(s, b0, b1, &b, mem, err);
        if (st != SR_OK) break;
        const int64_t *const ip[3] = {b.indptr[0], b.indptr[1], b.indptr[2]};
        const int64_t *const it[3] = {b.items[0], b.items[1], b.items[2]};
        st = sink(ctx, b1 - b0, ip, it, err);
        if (st != SR_OK) break;
        stats->users += b1 - b0;
        for (int k = 0; k < 3; k++) stats->nnz[k] += b.indptr[k][b1 - b0];
        double now = sr_time_now();
        if (log && progress_s > 0 && now - last >= progress_s) {
            progress_line(log, stats->users, u1 - u0, stats->nnz[0] + stats->nnz[1] + stats->nnz[2], t0, now);
            last = now;
        }
    }
    block_free(&b, mem);
    stats->seconds = sr_time_now() - t0;
    return st;
}
