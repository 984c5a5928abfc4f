# src/loss sparse maps: sparsemax / entmax / rankmax against the float64
# sort-based reference (unit: kernels, virtual shards, finite differences;
# MPI: real ranks 1-4), and the Jacobian spectral norms.
if(EXISTS ${PROJECT_SOURCE_DIR}/src/loss/sparsemap.c)
  sr_add_test(NAME test_sparsemap SOURCES unit/test_sparsemap.c LABELS loss)
  sr_add_test(NAME test_sparsemap_mpi SOURCES mpi/test_sparsemap_mpi.c MPI LABELS loss)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/src/analysis/jacobian.c)
  sr_add_test(NAME test_jacobian_mpi SOURCES mpi/test_jacobian_mpi.c MPI LABELS loss)
endif()
