# src/io/reorder: "softrec data reorder" (METIS renumbering for LightGCN's
# halo): planted communities, bijections, split consistency, /map checks,
# exact errors, and the LightGCN plan's bytes at 1-4 ranks.
sr_add_test(NAME test_reorder SOURCES unit/test_reorder.c MPI TIMEOUT 120 LABELS io)
