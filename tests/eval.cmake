# src/train eval kernels and metrics: local top-K + merge against a sort-based
# reference over virtual shards; metrics on hand-computed examples.
sr_add_test(NAME test_eval SOURCES unit/test_eval.c LABELS eval)
# MPI: gather-and-merge and metric all-reduce at 1-4 ranks; needs collectives.c.
if(EXISTS ${PROJECT_SOURCE_DIR}/src/comm/collectives.c)
  sr_add_test(NAME test_eval_mpi SOURCES mpi/test_eval_mpi.c MPI LABELS eval)
endif()
