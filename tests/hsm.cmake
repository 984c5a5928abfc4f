# src/loss/hsm*: Huffman tree and hierarchical softmax against the float64
# twin. Serial: virtual node shards, the scorer, the update. MPI: real ranks.
sr_add_test(NAME test_hsm SOURCES unit/test_hsm.c LABELS loss)
if(EXISTS ${PROJECT_SOURCE_DIR}/src/comm/collectives.c)
  sr_add_test(NAME test_hsm_mpi SOURCES mpi/test_hsm_mpi.c MPI LABELS loss)
endif()
