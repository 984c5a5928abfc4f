/* convert.h: raw interaction files -> softrec HDF5 dataset (schema v1).
 *
 * One process does the whole conversion (the CLI runs it on rank 0 while the
 * other ranks wait for the agreed status). The pipeline:
 *   parse lines into (user, item[, time]) rows, dropping rating < min_rating
 *   -> dedup (keep the earliest occurrence of a user-item pair; input order
 *      breaks ties; default on, off for the sequence formats, whose repeats
 *      are events) -> iterative k-core on users and items
 *   -> dense 0-based ids in ascending order of the original id (numeric when
 *      every id of the column is an integer, stored as int64 /user_ids and
 *      /item_ids; else byte order of the text, stored as strings in
 *      /map/user_ids and /map/item_ids)
 *   -> per-user split (given / random / leave-last-out)
 *   -> streamed into the writer (temp file + rename; nothing left on error).
 * Inside a user's row the items keep time order (input order when the format
 * has no timestamps). Sequence formats without timestamps store the position
 * in the user's sequence as time.
 *
 * Every malformed input produces one error naming the file, the line and the
 * reason ("u.data:17: expected 4 fields ..."), SR_ERR_DATA for bad content,
 * SR_ERR_IO for unreadable files, SR_ERR_USAGE for inconsistent options.
 */
#ifndef SR_IO_CONVERT_H
#define SR_IO_CONVERT_H

#include <stdint.h>

#include "core/error.h"
#include "io/dataset.h"

typedef enum sr_convert_format {
    SR_FORMAT_ML100K = 0, /* u.data: user \t item \t rating \t time */
    SR_FORMAT_ML1M,       /* ratings.dat: user::item::rating::time (.gz ok) */
    SR_FORMAT_LIGHTGCN,   /* train.txt (+ test.txt): "user item item ..." */
    SR_FORMAT_SEQ_PAIRS,  /* "user item" per line, in time order */
    SR_FORMAT_SEQ_LINES,  /* "user item item ..." per line, in time order */
    SR_FORMAT_CSV,        /* generic: --sep, --*-col, --header; RFC 4180 quotes, string ids */
    SR_FORMAT_AMAZON,     /* Amazon ratings: user,item,rating,timestamp; no header */
    SR_FORMAT_RECBOLE,    /* RecBole atomic .inter: tab-separated, "name:type" header */
    SR_FORMAT_COUNT
} sr_convert_format;

typedef enum sr_split_kind {
    SR_SPLITK_DEFAULT = 0, /* given for lightgcn, leave-last-out for seq-*, random otherwise */
    SR_SPLITK_GIVEN,       /* train file -> train, --test file -> test */
    SR_SPLITK_RANDOM,      /* per user, ratio[] of each user's rows, seeded */
    SR_SPLITK_LLO          /* per user by time: last -> test, second last -> valid */
} sr_split_kind;

typedef struct sr_convert_opts {
    sr_convert_format format;
    const char *input;  /* required */
    const char *test;   /* the given test file (optional; implies split given) */
    const char *valid;  /* the given valid file (optional; needs test) */
    const char *output; /* required */
    const char *name;   /* dataset name; default: output file name without .h5 */
    /* csv */
    char sep;           /* field separator, default ',' */
    int header;         /* skip the first line */
    int user_col, item_col, rating_col, time_col; /* 0-based; -1 = absent */
    /* By name instead (csv --header, recbole; NULL = by index / RecBole's
     * user_id, item_id, rating, timestamp). */
    const char *user_name, *item_name, *rating_name, *time_name;
    /* filters */
    int use_min_rating;
    double min_rating;  /* keep rating >= min_rating */
    int64_t kcore;      /* 0 = off */
    int dedup;          /* 1 on, 0 off, -1 (default): off for seq-*, on otherwise */
    /* split */
    sr_split_kind split;
    double ratio[3];    /* random: train, valid, test; sums to 1 */
    double valid_ratio; /* given: share of each user's train rows moved to valid */
    uint64_t seed;
    int overwrite;      /* replace an existing output file */
} sr_convert_opts;

typedef struct sr_convert_report {
    int64_t lines;            /* data lines read (all inputs) */
    int64_t rows_read;        /* interactions parsed */
    int64_t below_min_rating; /* dropped by --min-rating */
    int64_t duplicates;       /* dropped by dedup (or kept, when dedup is off) */
    int64_t last_changed;     /* users whose last or second-last item dedup changed */
    int dedup;                /* dedup as resolved */
    int string_ids[2];        /* users, items: names stored as strings */
    int64_t kcore_removed;    /* dropped by the k-core filter */
    int64_t num_users, num_items;
    int64_t nnz[SR_SPLIT_COUNT];
    int has_time;
    char split_protocol[128];
} sr_convert_report;

void sr_convert_opts_default(sr_convert_opts *o);

/* "ml-100k" -> SR_FORMAT_ML100K etc.; SR_ERR_USAGE listing the choices. */
sr_status sr_convert_format_parse(const char *name, sr_convert_format *out, sr_error *err);
const char *sr_convert_format_name(sr_convert_format f);
/* "given" | "random" | "leave-last-out" (also "llo"). */
sr_status sr_convert_split_parse(const char *name, sr_split_kind *out, sr_error *err);
/* "0.8,0.1,0.1" (or "0.8,0.2" = no valid): non-negative, summing to 1. */
sr_status sr_convert_ratio_parse(const char *s, double ratio[3], sr_error *err);

/* Run the whole conversion in this process. rep may be NULL. On failure no
 * output and no temporary file remain. */
sr_status sr_convert_run(const sr_convert_opts *o, sr_convert_report *rep, sr_error *err);

#endif
