/* lightgcn_ref.c: float64 dense reference twin of the LightGCN propagation.
 *
 * Deliberately naive and independent of lightgcn.c: the normalised matrix is
 * built dense from the global CSR (degrees from its row and column sums, not
 * from row lengths or pushed counts), layers are plain dense mat-vec loops,
 * and the backward pass is the reverse-mode recursion through the layers
 * with the explicit transpose, not "forward of the gradients".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/lightgcn.h"

typedef struct ref_graph {
    int64_t nu, ni;
    double *a; /* nu x ni, normalised */
} ref_graph;

static sr_status ref_build_(ref_graph *g, int64_t nu, int64_t ni, const int64_t *indptr,
                            const int64_t *item_ids, int64_t layers, const double *alpha, int64_t d,
                            sr_error *err)
{
    g->a = NULL;
    if (nu < 0 || ni < 0 || layers < 0 || d < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "lightgcn ref: bad shape (users %lld, items %lld, layers %lld, d %lld)",
                (long long)nu, (long long)ni, (long long)layers, (long long)d);
    if (alpha)
        for (int64_t k = 0; k <= layers; k++)
            if (!isfinite(alpha[k])) SR_FAIL(err, SR_ERR_CONFIG, "lightgcn ref: layer weight %lld is not finite", (long long)k);
    g->nu = nu;
    g->ni = ni;
    g->a = calloc((size_t)(nu * ni > 0 ? nu * ni : 1), sizeof *g->a);
    double *rs = calloc((size_t)(nu > 0 ? nu : 1), sizeof *rs);
    double *cs = calloc((size_t)(ni > 0 ? ni : 1), sizeof *cs);
    if (!g->a || !rs || !cs) {
        free(g->a), free(rs), free(cs);
        g->a = NULL;
        SR_FAIL(err, SR_ERR_NOMEM, "lightgcn ref: out of memory for a %lld x %lld matrix", (long long)nu,
                (long long)ni);
    }
    for (int64_t u = 0; u < nu; u++)
        for (int64_t e = indptr[u]; e < indptr[u + 1]; e++) {
            int64_t i = item_ids[e];
            if (i < 0 || i >= ni) {
                free(g->a), free(rs), free(cs);
                g->a = NULL;
                SR_FAIL(err, SR_ERR_DATA, "lightgcn ref: item %lld of user %lld outside [0, %lld)", (long long)i,
                        (long long)u, (long long)ni);
            }
            g->a[u * ni + i] += 1.0;
        }
    for (int64_t u = 0; u < nu; u++)
        for (int64_t i = 0; i < ni; i++) {
            rs[u] += g->a[u * ni + i];
            cs[i] += g->a[u * ni + i];
        }
    for (int64_t u = 0; u < nu; u++)
        for (int64_t i = 0; i < ni; i++)
            if (g->a[u * ni + i] != 0.0) g->a[u * ni + i] /= sqrt(rs[u]) * sqrt(cs[i]);
    free(rs);
    free(cs);
    return SR_OK;
}

static double ref_alpha_(const double *alpha, int64_t layers, int64_t k)
{
    return alpha ? alpha[k] : 1.0 / (double)(layers + 1);
}

/* (yu, yi) = Ahat (xu, xi), Ahat = [[0, A], [A^T, 0]]. */
static void ref_apply_(const ref_graph *g, int64_t d, const double *xu, const double *xi, double *yu, double *yi)
{
    const int64_t nu = g->nu, ni = g->ni;
    memset(yu, 0, (size_t)(nu * d) * sizeof *yu);
    memset(yi, 0, (size_t)(ni * d) * sizeof *yi);
    for (int64_t u = 0; u < nu; u++)
        for (int64_t i = 0; i < ni; i++) {
            double w = g->a[u * ni + i];
            if (w == 0.0) continue;
            for (int64_t k = 0; k < d; k++) {
                yu[u * d + k] += w * xi[i * d + k];
                yi[i * d + k] += w * xu[u * d + k];
            }
        }
}

/* (yu, yi) = Ahat^T (xu, xi): the transpose spelled out, entry (i, u) of
 * the user block row and (u, i) of the item block row. */
static void ref_apply_t_(const ref_graph *g, int64_t d, const double *xu, const double *xi, double *yu,
                         double *yi)
{
    const int64_t nu = g->nu, ni = g->ni;
    memset(yu, 0, (size_t)(nu * d) * sizeof *yu);
    memset(yi, 0, (size_t)(ni * d) * sizeof *yi);
    /* Ahat^T[u][nu + i] = Ahat[nu + i][u] = A^T[i][u] = a[u][i] */
    for (int64_t i = 0; i < ni; i++)
        for (int64_t u = 0; u < nu; u++) {
            double at = g->a[u * ni + i];
            if (at == 0.0) continue;
            for (int64_t k = 0; k < d; k++) {
                yu[u * d + k] += at * xi[i * d + k];
                yi[i * d + k] += at * xu[u * d + k];
            }
        }
}

sr_status sr_lgcn_ref_forward(int64_t num_users, int64_t num_items, const int64_t *indptr,
                              const int64_t *item_ids, int64_t layers, const double *alpha, int64_t d,
                              const double *eu, const double *ei, double *u_out, double *i_out, sr_error *err)
{
    ref_graph g;
    SR_TRY(ref_build_(&g, num_users, num_items, indptr, item_ids, layers, alpha, d, err));
    const int64_t nu = num_users * d, ni = num_items * d;
    double *cu = malloc((size_t)(nu + 1) * sizeof *cu), *ci = malloc((size_t)(ni + 1) * sizeof *ci);
    double *nxu = malloc((size_t)(nu + 1) * sizeof *nxu), *nxi = malloc((size_t)(ni + 1) * sizeof *nxi);
    if (!cu || !ci || !nxu || !nxi) {
        free(cu), free(ci), free(nxu), free(nxi), free(g.a);
        SR_FAIL(err, SR_ERR_NOMEM, "lightgcn ref: out of memory for the layer tables");
    }
    memcpy(cu, eu, (size_t)nu * sizeof *cu);
    memcpy(ci, ei, (size_t)ni * sizeof *ci);
    double a0 = ref_alpha_(alpha, layers, 0);
    for (int64_t j = 0; j < nu; j++) u_out[j] = a0 * cu[j];
    for (int64_t j = 0; j < ni; j++) i_out[j] = a0 * ci[j];
    for (int64_t k = 1; k <= layers; k++) {
        ref_apply_(&g, d, cu, ci, nxu, nxi);
        double ak = ref_alpha_(alpha, layers, k);
        for (int64_t j = 0; j < nu; j++) u_out[j] += ak * (cu[j] = nxu[j]);
        for (int64_t j = 0; j < ni; j++) i_out[j] += ak * (ci[j] = nxi[j]);
    }
    free(cu), free(ci), free(nxu), free(nxi), free(g.a);
    return SR_OK;
}

sr_status sr_lgcn_ref_backward(int64_t num_users, int64_t num_items, const int64_t *indptr,
                               const int64_t *item_ids, int64_t layers, const double *alpha, int64_t d,
                               const double *du_out, const double *di_out, double *deu, double *dei,
                               sr_error *err)
{
    ref_graph g;
    SR_TRY(ref_build_(&g, num_users, num_items, indptr, item_ids, layers, alpha, d, err));
    const int64_t nu = num_users * d, ni = num_items * d;
    double *tu = malloc((size_t)(nu + 1) * sizeof *tu), *ti = malloc((size_t)(ni + 1) * sizeof *ti);
    if (!tu || !ti) {
        free(tu), free(ti), free(g.a);
        SR_FAIL(err, SR_ERR_NOMEM, "lightgcn ref: out of memory for the adjoint tables");
    }
    /* out = sum_k alpha_k Ahat^k e0  =>  dL/de0 = lambda_0 with
     * lambda_K = alpha_K g, lambda_k = alpha_k g + Ahat^T lambda_{k+1}. */
    double aK = ref_alpha_(alpha, layers, layers);
    for (int64_t j = 0; j < nu; j++) deu[j] = aK * du_out[j];
    for (int64_t j = 0; j < ni; j++) dei[j] = aK * di_out[j];
    for (int64_t k = layers - 1; k >= 0; k--) {
        ref_apply_t_(&g, d, deu, dei, tu, ti);
        double ak = ref_alpha_(alpha, layers, k);
        for (int64_t j = 0; j < nu; j++) deu[j] = ak * du_out[j] + tu[j];
        for (int64_t j = 0; j < ni; j++) dei[j] = ak * di_out[j] + ti[j];
    }
    free(tu), free(ti), free(g.a);
    return SR_OK;
}
