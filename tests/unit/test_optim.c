/* test_optim.c: optimiser kernels against a float64 transcription of the
 * textbook update rules, dense and row-sparse; MF init is layout-independent. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "models/mf.h"
#include "models/normalize.h"
#include "nn/optim.h"

#define ROWS 5
#define D 3

/* One reference step of row w (double) with gradient g. */
static void ref_step(sr_optim_kind kind, double lr, double wd, double b1, double b2, double eps,
                     double *w, double *m, double *v, const double *g, int t)
{
    for (int j = 0; j < D; j++) {
        double gj = g[j] + wd * w[j];
        if (kind == SR_OPTIM_SGD) {
            w[j] -= lr * gj;
        } else if (kind == SR_OPTIM_ADAGRAD) {
            m[j] += gj * gj;
            w[j] -= lr * gj / (sqrt(m[j]) + eps);
        } else {
            m[j] = b1 * m[j] + (1 - b1) * gj;
            v[j] = b2 * v[j] + (1 - b2) * gj * gj;
            double mh = m[j] / (1 - pow(b1, t)), vh = v[j] / (1 - pow(b2, t));
            w[j] -= lr * mh / (sqrt(vh) + eps);
        }
    }
}

static void check_kind(sr_optim_kind kind)
{
    sr_optim o = {kind, 0.05, 0.9, 0.999, 1e-8, 0.01};
    sr_optim_state s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_optim_state_create(&s, &o, ROWS, D, NULL, &e), SR_OK);
    float W[ROWS * D];
    double Wr[ROWS * D], M[ROWS * D] = {0}, V[ROWS * D] = {0};
    for (int i = 0; i < ROWS * D; i++) Wr[i] = W[i] = (float)(0.1 * (i % 7) - 0.3);
    /* Steps alternate between a dense update and a sparse one of rows {4, 1}. */
    for (int t = 1; t <= 6; t++) {
        float G[ROWS * D];
        for (int i = 0; i < ROWS * D; i++) G[i] = (float)sin(1.3 * i + t);
        if (t % 2) {
            sr_optim_update(&o, &s, W, G, NULL, ROWS, D, t);
            for (int r = 0; r < ROWS; r++) {
                double g[D];
                for (int j = 0; j < D; j++) g[j] = G[r * D + j];
                ref_step(kind, o.lr, o.weight_decay, o.beta1, o.beta2, o.eps, Wr + r * D, M + r * D,
                         V + r * D, g, t);
            }
        } else {
            int64_t rows[2] = {4, 1};
            sr_optim_update(&o, &s, W, G, rows, 2, D, t);
            for (int k = 0; k < 2; k++) {
                double g[D];
                for (int j = 0; j < D; j++) g[j] = G[k * D + j];
                int64_t r = rows[k];
                ref_step(kind, o.lr, o.weight_decay, o.beta1, o.beta2, o.eps, Wr + r * D, M + r * D,
                         V + r * D, g, t);
            }
        }
    }
    for (int i = 0; i < ROWS * D; i++) SR_ASSERT_CLOSE(W[i], Wr[i], 1e-5);
    sr_optim_state_destroy(&s, NULL);
}

static void test_sgd(void) { check_kind(SR_OPTIM_SGD); }
static void test_adam(void) { check_kind(SR_OPTIM_ADAM); }
static void test_adagrad(void) { check_kind(SR_OPTIM_ADAGRAD); }

static void test_init_layout_independent(void)
{
    /* The same global row gets the same values under any shard map. */
    const int64_t n = 11, d = 4;
    float whole[11 * 4];
    sr_table_init_normal(whole, n, d, 0.1, 7, 0, NULL, 0, 0);
    for (int p = 1; p <= 4; p++) {
        for (int layout = 0; layout < 2; layout++) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            if (layout == 0) sr_shard_init_block(&s, n, p, NULL, &e);
            else sr_shard_init_interleave(&s, n, p, &e);
            for (int r = 0; r < p; r++) {
                float part[11 * 4];
                int64_t cnt = sr_shard_count(&s, r);
                sr_table_init_normal(part, cnt, d, 0.1, 7, 0, &s, r, 0);
                for (int64_t k = 0; k < cnt; k++)
                    CU_ASSERT_EQUAL(memcmp(part + k * d, whole + sr_shard_global(&s, r, k) * d,
                                           (size_t)d * sizeof(float)), 0);
            }
            sr_shard_destroy(&s);
        }
    }
    /* Roughly N(0, 0.1^2), and a different table id gives other values. */
    float other[11 * 4];
    sr_table_init_normal(other, n, d, 0.1, 7, 1, NULL, 0, 0);
    CU_ASSERT_NOT_EQUAL(memcmp(other, whole, sizeof whole), 0);
}

/* L(y) = sum_j w_j y_j with y = scale * x / |x|: the pulled-back gradient
 * matches central differences of L in x, in double. */
static double lin_loss(const float *x, int64_t d, float scale, const double *w)
{
    double ss = 0, l = 0;
    for (int64_t j = 0; j < d; j++) ss += (double)x[j] * x[j];
    for (int64_t j = 0; j < d; j++) l += w[j] * scale * x[j] / sqrt(ss);
    return l;
}

static void test_normalize_gradient(void)
{
    const int64_t n = 3, d = 5;
    const float scale = 1.0f / 0.2f;
    float x[15], y[15], inv[3], g[15];
    double w[5] = {0.3, -1.2, 0.7, 2.0, -0.4};
    for (int i = 0; i < 15; i++) x[i] = (float)(0.5 * sin(2.1 * i) + (i % 5 == 2 ? 0.8 : 0.0));
    for (int j = 0; j < 5; j++) x[10 + j] = 0; /* a zero row: zero in, zero out */
    sr_rows_normalize(x, n, d, scale, y, inv);
    for (int r = 0; r < 2; r++) {
        double nn = 0;
        for (int j = 0; j < d; j++) nn += (double)y[r * d + j] * y[r * d + j];
        SR_ASSERT_CLOSE(sqrt(nn), scale, 1e-6);
    }
    for (int i = 0; i < 15; i++) g[i] = (float)w[i % 5];
    sr_rows_normalize_backward(y, inv, n, d, scale, g);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < d; j++) {
            float xp[5], xm[5];
            memcpy(xp, x + r * d, sizeof xp);
            memcpy(xm, x + r * d, sizeof xm);
            const float h = 1e-3f;
            xp[j] += h;
            xm[j] -= h;
            double fd = (lin_loss(xp, d, scale, w) - lin_loss(xm, d, scale, w)) / (xp[j] - xm[j]);
            CU_ASSERT(fabs(fd - g[r * d + j]) < 2e-3 * fmax(1.0, fabs(fd)));
        }
    for (int j = 0; j < d; j++) CU_ASSERT_EQUAL(g[10 + j], 0.0f);
}

/* train.lr_milestones: the lr of each step, its boundaries, bad input. */
static void test_lr_schedule(void)
{
    sr_config cfg;
    sr_config_defaults(&cfg);
    sr_error err = {0};
    sr_lr_schedule s;
    cfg.train_lr = 0.005;
    CU_ASSERT_EQUAL(sr_lr_schedule_from_config(&s, &cfg, &err), SR_OK);
    CU_ASSERT_EQUAL(s.n, 0); /* default: constant */
    CU_ASSERT_EQUAL(sr_lr_at(&s, 100000, 99), 0.005);
    CU_ASSERT_EQUAL(sr_config_set(&cfg, "train.lr_milestones", "16,32", "test", &err), SR_OK);
    CU_ASSERT_EQUAL(sr_config_set(&cfg, "train.lr_gamma", "0.2", "test", &err), SR_OK);
    CU_ASSERT_EQUAL(sr_lr_schedule_from_config(&s, &cfg, &err), SR_OK);
    CU_ASSERT_EQUAL(s.n, 2);
    /* 99 steps an epoch: steps 1..1584 are epochs 1-16, 1585 the first of 17. */
    CU_ASSERT_EQUAL(sr_lr_at(&s, 1, 99), 0.005);
    CU_ASSERT_EQUAL(sr_lr_at(&s, 1584, 99), 0.005);
    CU_ASSERT_DOUBLE_EQUAL(sr_lr_at(&s, 1585, 99), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sr_lr_at(&s, 3168, 99), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sr_lr_at(&s, 3169, 99), 0.0002, 1e-15);
    static const char *bad[] = {"16,8", "0", "-3", "4,4", "x", "16,", "3.5"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        CU_ASSERT_EQUAL(sr_config_set(&cfg, "train.lr_milestones", bad[k], "test", &err), SR_OK);
        CU_ASSERT_EQUAL(sr_lr_schedule_from_config(&s, &cfg, &err), SR_ERR_CONFIG);
    }
    char want[256];
    snprintf(want, sizeof want,
             "train.lr_milestones = '16,8': want at most %d strictly ascending positive epoch numbers "
             "separated by commas", SR_LR_MILESTONES_MAX);
    sr_config_set(&cfg, "train.lr_milestones", "16,8", "test", &err);
    err = (sr_error){0}; /* an sr_error keeps its first message */
    sr_lr_schedule_from_config(&s, &cfg, &err);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    sr_config_set(&cfg, "train.lr_milestones", "16,", "test", &err);
    err = (sr_error){0};
    sr_lr_schedule_from_config(&s, &cfg, &err);
    CU_ASSERT_STRING_EQUAL(err.msg, "train.lr_milestones = '16,': ends with a comma");
    CU_ASSERT_NOT_EQUAL(sr_config_set(&cfg, "train.lr_gamma", "0", "test", &err), SR_OK);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("optim", NULL, NULL);
    CU_add_test(s, "sgd_matches_reference", test_sgd);
    CU_add_test(s, "adam_matches_reference", test_adam);
    CU_add_test(s, "adagrad_matches_reference", test_adagrad);
    CU_add_test(s, "mf_init_layout_independent", test_init_layout_independent);
    CU_add_test(s, "cosine_normalize_gradient", test_normalize_gradient);
    CU_add_test(s, "lr_schedule_milestones", test_lr_schedule);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
