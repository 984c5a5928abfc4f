/* registry.c: every loss, once (registry.h). Adding a loss: define its ops
 * in its family's file, add one line here. */
#include "loss/registry.h"

#include <string.h>

static const sr_loss_ops *const LOSSES[] = {
    &sr_softmax_ops,
    &sr_ssm_ops,
    &sr_nce_ops,
    &sr_bpr_ops,
    &sr_hsm_ops,
    &sr_sparsemax_ops,
    &sr_entmax_ops,
    &sr_rankmax_ops,
};

const sr_loss_ops *sr_loss_ops_at(size_t i)
{
    return i < sizeof LOSSES / sizeof LOSSES[0] ? LOSSES[i] : NULL;
}

const sr_loss_ops *sr_loss_ops_find(const char *name)
{
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

const char *sr_loss_choice(size_t i, const char **help)
{
    const sr_loss_ops *o = sr_loss_ops_at(i);
    if (o && help) *help = o->help;
    return o ? o->name : NULL;
}

bool sr_loss_kind_parse(const char *name, sr_loss_kind *out)
{
    const sr_loss_ops *o = sr_loss_ops_find(name);
    if (o) *out = o->kind;
    return o != NULL;
}

const char *sr_loss_kind_name(sr_loss_kind k)
{
    const sr_loss_ops *o;
    for (size_t i = 0; (o = sr_loss_ops_at(i)) != NULL; i++)
        if (o->kind == k) return o->name;
    return "?";
}
