# src/loss: the exact sharded softmax against its float64 reference twin.
# Serial: P virtual shards in one process (no collectives needed).
sr_add_test(NAME test_softmax SOURCES unit/test_softmax.c LABELS loss)
# MPI: real ranks through sr_softmax_step; needs src/comm/collectives.c.
if(EXISTS ${PROJECT_SOURCE_DIR}/src/comm/collectives.c)
  sr_add_test(NAME test_softmax_mpi SOURCES mpi/test_softmax_mpi.c MPI LABELS loss)
endif()
# src/loss/registry: every registered loss through config and sr_loss_*.
sr_add_test(NAME test_losses_registry SOURCES unit/test_losses_registry.c LABELS loss)
