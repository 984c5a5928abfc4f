# Reliability: checkpoint commit protocol, schema checks of untrusted files,
# fault injection, preemption and the watchdog, fuzz corpus replay.
sr_add_test(NAME test_ckpt_dir SOURCES mpi/test_ckpt_dir.c MPI LABELS reliability TIMEOUT 180)
foreach(np ${SR_TEST_RANKS})
  if(TEST test_ckpt_dir_np${np})
    set_property(TEST test_ckpt_dir_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endforeach()

sr_add_test(NAME test_guard SOURCES mpi/test_guard.c MPI LABELS reliability)

# Script tests: whole mpirun jobs that must die (kill -9 in a save phase, a
# stuck or SIGSTOPped rank) and what must hold afterwards.
add_test(NAME ckpt_kill
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/ckpt_kill.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:test_ckpt_dir> ${CMAKE_CURRENT_BINARY_DIR}/work/ckpt_kill)
add_test(NAME guard_watchdog
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/guard_watchdog.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:test_guard> ${CMAKE_CURRENT_BINARY_DIR}/work/guard_watchdog)
set_tests_properties(ckpt_kill guard_watchdog PROPERTIES TIMEOUT 600 PROCESSORS 2 LABELS "reliability;script"
                     ENVIRONMENT "${SR_MPI_ENV}")

sr_add_test(NAME test_h5check SOURCES unit/test_h5check.c LABELS reliability)
set_property(TEST test_h5check APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
