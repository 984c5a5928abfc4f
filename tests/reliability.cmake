# Reliability: checkpoint commit protocol, schema checks of untrusted files,
# fault injection, preemption and the watchdog, fuzz corpus replay.
sr_add_test(NAME test_ckpt_dir SOURCES mpi/test_ckpt_dir.c MPI LABELS reliability TIMEOUT 180)
foreach(np ${SR_TEST_RANKS})
  if(TEST test_ckpt_dir_np${np})
    set_property(TEST test_ckpt_dir_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endforeach()
