# src/comm: collectives, row exchange, shard maps, error protocol (MPI, 1-4 ranks).
sr_add_test(NAME test_comm SOURCES mpi/test_comm.c MPI TIMEOUT 60 LABELS comm)
# An MPI error ends every rank with exit code 6 and one located message
# (not MPI_Abort): a bad broadcast root through the checked wrapper at 2 ranks.
add_executable(mpi_error_exit mpi/mpi_error_exit.c)
target_link_libraries(mpi_error_exit PRIVATE softrec_lib)
target_compile_options(mpi_error_exit PRIVATE ${SR_WARN})
add_test(NAME comm_mpi_error_exit
         COMMAND sh -c "out=$(\"$0\" -n 2 --oversubscribe \"$1\" 2>&1); rc=$?; echo \"$out\"; echo \"exit code $rc\"; [ $rc -eq 6 ] && echo \"$out\" | grep -q 'softrec: error: MPI_Bcast failed: .*\\[src/comm/collectives.c:[0-9]*\\]' && ! echo \"$out\" | grep -q MPI_ABORT"
                 ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mpi_error_exit>)
set_tests_properties(comm_mpi_error_exit PROPERTIES TIMEOUT 60 LABELS "mpi;comm" ENVIRONMENT "${SR_MPI_ENV}")
