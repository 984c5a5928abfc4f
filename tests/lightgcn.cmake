# src/models/lightgcn.h: LightGCN propagation against its float64 dense twin
# (serial: hand values, finite differences, kernel tiers; MPI: 1-4 ranks,
# uneven user ranges and item shards, communication volume).
sr_add_test(NAME test_lightgcn SOURCES unit/test_lightgcn.c LABELS models)
sr_add_test(NAME test_lightgcn_mpi SOURCES mpi/test_lightgcn_mpi.c MPI LABELS models)
