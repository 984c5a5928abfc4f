/* lse.c: merge of log-sum-exp triples. */
#include "core/lse.h"

#include <math.h>

void sr_lse_merge(sr_lse *inout, const sr_lse *in, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        sr_lse *a = &inout[i];
        const sr_lse *b = &in[i];
        double target = a->target + b->target;
        if (b->sum == 0.0) {
            a->target = target;
            continue;
        }
        if (a->sum == 0.0) {
            a->max = b->max;
            a->sum = b->sum;
            a->target = target;
            continue;
        }
        double m = a->max > b->max ? a->max : b->max;
        a->sum = a->sum * exp(a->max - m) + b->sum * exp(b->max - m);
        a->max = m;
        a->target = target;
    }
}

double sr_lse_value(const sr_lse *t)
{
    if (t->sum == 0.0) return -INFINITY;
    return t->max + log(t->sum);
}
