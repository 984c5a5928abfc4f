/* sparsemap.h: sparsemax, alpha-entmax and rankmax as Fenchel-Young
 * losses over the sharded item catalogue: L = Omega*(z) + Omega(e_t) - z_t,
 * gradient p - e_t (rankmax: its exact gradient), batch mean. Per query the
 * threshold tau is found over all ranks' logits without a B x n_r buffer
 * (tiles, candidate lists, rounds of small all-reduces; one rank with a
 * small shard takes a block path in cache). dq is this rank's partial, dv
 * row-sparse (support and targets). Collective over in->c.
 * Errors: a bad target id (SR_ERR_DATA) and non-finite logits
 * (SR_ERR_NUMERIC) alike on every rank; inconsistencies local to one rank
 * and out of memory mid-step abort the job (sr_comm_abort).
 * Maps, steps, memory: docs/losses.md, "Sparse maps: the distributed step
 * (sparsemap.h)" and sections 1-2.
 */
#ifndef SR_LOSS_SPARSEMAP_H
#define SR_LOSS_SPARSEMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "loss/loss.h"

/* Candidates kept per query and rank by sr_sparsemap_create. */
#define SR_SPARSEMAP_CAND_DEFAULT 2048
/* One rank whose shard has at most SR_SPARSEMAP_BLOCK_ITEMS items takes the
 * block path (whole rows in cache, no lists, no rounds) unless the cap is
 * below SR_SPARSEMAP_BLOCK_MIN_CAP (tiny caps ask for the lists and their
 * recompute fallback, as the tests do). */
#define SR_SPARSEMAP_BLOCK_ITEMS 65536
#define SR_SPARSEMAP_BLOCK_MIN_CAP 64

typedef struct sr_sparsemap sr_sparsemap;

/* kind: SR_LOSS_SPARSEMAX, SR_LOSS_ENTMAX (cfg->loss_alpha > 1) or
 * SR_LOSS_RANKMAX (cfg->loss_rankmax_k == 1). Collective only in the sense
 * that every rank must create one; no communication. *out is NULL on error. */
sr_status sr_sparsemap_create(sr_sparsemap **out, sr_loss_kind kind, const sr_loss_init *in,
                              sr_error *err);
/* The same with `cap` candidates per query (>= 1; tests use tiny caps to
 * force the recompute fallback). */
sr_status sr_sparsemap_create_capped(sr_sparsemap **out, sr_loss_kind kind, const sr_loss_init *in,
                                     int64_t cap, sr_error *err);
/* Free and set *s to NULL (NULL or *s == NULL: no-op). */
void sr_sparsemap_destroy(sr_sparsemap **s);

/* One forward + backward (loss.h semantics). loss may be NULL; dq (b x d)
 * receives this rank's partial; dv is row-sparse (rows never NULL), its
 * buffers owned by s and valid until the next step. */
sr_status sr_sparsemap_step(sr_sparsemap *s, const float *q, int64_t b, const float *v,
                            const int64_t *targets, int64_t step, double *loss, float *dq,
                            sr_item_grad *dv, sr_error *err);

/* ---- diagnostics of the last step (replicated on every rank) ---- */
/* Per query: threshold tau in logit units (rankmax: z_t), support size. */
const double *sr_sparsemap_tau(const sr_sparsemap *s);
const int64_t *sr_sparsemap_support(const sr_sparsemap *s);
/* p of an item of query i whose logit is z (the map at the last step). */
double sr_sparsemap_prob(const sr_sparsemap *s, int64_t i, double z);

typedef struct sr_sparsemap_info {
    int64_t rounds;            /* search rounds (all-reduces of 6 x active) */
    int64_t recompute_rounds;  /* rounds that recomputed tiles */
    int64_t overflow_queries;  /* queries whose backward recomputed tiles */
    int64_t dv_rows;           /* rows in dv on this rank */
    double t_forward, t_search, t_backward; /* seconds on this rank */
    double t_gemm;             /* block path: seconds in its three SGEMMs */
} sr_sparsemap_info;
void sr_sparsemap_get_info(const sr_sparsemap *s, sr_sparsemap_info *info);

/* ---- pure kernels (no MPI), shared with jacobian.c and the tests ---- */

typedef enum sr_smap_form {
    SR_SMAP_SPARSEMAX = 0, /* alpha = 2 */
    SR_SMAP_ENTMAX15,      /* alpha = 1.5, exact */
    SR_SMAP_ENTMAX,        /* any other alpha > 1, searched to tol */
    SR_SMAP_RANKMAX
} sr_smap_form;

typedef struct sr_smap_params {
    sr_smap_form form;
    double alpha; /* 2 for sparsemax and rankmax */
    double tol;   /* threshold tolerance (SR_SMAP_ENTMAX) */
} sr_smap_params;

/* Params from a loss kind and alpha (entmax alpha 2 -> sparsemax form). */
sr_smap_params sr_smap_params_make(sr_loss_kind kind, double alpha, double tol);

/* Unnormalised map value of u = z - tau (0 for u <= 0) and its derivative. */
double sr_smap_phi(const sr_smap_params *p, double u);
double sr_smap_dphi(const sr_smap_params *p, double u);
/* Items below max - radius are never in the support (sparsemax/rankmax 1,
 * entmax 1/(alpha - 1)). */
double sr_smap_radius(const sr_smap_params *p);

/* Sums over the items with z > x (all fields add across shards). */
typedef struct sr_smap_stats {
    double f;  /* sum phi(z - x) */
    double d;  /* sum phi'(z - x) */
    double c;  /* count */
    double s1; /* sum (z - x) */
    double s2; /* sum (z - x)^2 */
    double a1; /* sum phi(z - x)(z - x) */
} sr_smap_stats;
#define SR_SMAP_NSTATS 6

/* st += stats of z[0..n) above x, skipping index `skip` (-1: none). */
void sr_smap_stats_add(const sr_smap_params *p, double x, const float *z, int64_t n, int64_t skip,
                       sr_smap_stats *st);

/* Per-query threshold search: init, then alternately evaluate the global
 * stats at s->x and call next until it returns true; s->tau, s->fin then hold
 * the threshold and the stats at it. Pure and deterministic: ranks that feed
 * it the same all-reduced stats take the same steps. */
typedef struct sr_smap_search {
    double lo, hi, x, cand, tau;
    sr_smap_stats st_lo, fin;
    int have_lo, x_is_cand, done;
    int64_t rounds;
} sr_smap_search;
/* m: global max logit; e: global max of dropped candidates (-inf if none). */
void sr_smap_search_init(sr_smap_search *s, const sr_smap_params *p, double m, double e);
bool sr_smap_search_next(sr_smap_search *s, const sr_smap_params *p, const sr_smap_stats *at_x);

/* Loss of one query from the final stats: tau, stats at tau, target logit. */
double sr_smap_loss(const sr_smap_params *p, double tau, const sr_smap_stats *fin, double zt);

/* ---- reference twin (sparsemap_ref.c): float64, sort-based ---- */

/* One query over a full logit vector z (n): p (n, may be NULL), tau,
 * support size, loss and gradient dL/dz (n, may be NULL). Sparsemax and
 * entmax-1.5 by sorting; other alpha by 200 bisection steps in double;
 * rankmax by its definition. */
sr_status sr_sparsemap_ref_map(const sr_smap_params *p, const double *z, int64_t n, int64_t target,
                               double *prob, double *tau, int64_t *support, double *loss,
                               double *grad, sr_error *err);

/* The whole batch: logits as double dot products of the float inputs over
 * the full catalogue v_all (n x d, global id order). Outputs may be NULL:
 * tau, support (b), prob (b x n), dq (b x d), dv (n x d); loss is the mean. */
sr_status sr_sparsemap_ref(const sr_smap_params *p, const float *q, int64_t b, int64_t d,
                           const float *v_all, int64_t n, const int64_t *targets, double *loss,
                           double *tau, int64_t *support, double *prob, double *dq, double *dv,
                           sr_error *err);

#endif
