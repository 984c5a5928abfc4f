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

# Real file-system faults through the CLI at 2 and 3 ranks: a full tmpfs
# and a read-only bind mount (root only: skipped, exit 77, without mount).
add_test(NAME ckpt_fs_faults
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/ckpt_fs_faults.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/ckpt_fs_faults)
set_tests_properties(ckpt_fs_faults PROPERTIES TIMEOUT 600 PROCESSORS 2 SKIP_RETURN_CODE 77
                     LABELS "reliability;script" ENVIRONMENT "${SR_MPI_ENV}")

sr_add_test(NAME test_h5check SOURCES unit/test_h5check.c LABELS reliability)
set_property(TEST test_h5check APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
# The malformed checkpoints again at 2 and 3 ranks: the same exact error on
# every rank (collective load, agreed verdicts).
foreach(np 2 3)
  set(tdir ${CMAKE_CURRENT_BINARY_DIR}/work/test_h5check/ckpt_np${np})
  file(MAKE_DIRECTORY ${tdir})
  add_test(NAME test_h5check_ckpt_np${np}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} --oversubscribe
                   ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_h5check> ${MPIEXEC_POSTFLAGS}
           WORKING_DIRECTORY ${tdir})
  set_tests_properties(test_h5check_ckpt_np${np} PROPERTIES TIMEOUT 60 LABELS "mpi;reliability"
                       ENVIRONMENT "${SR_MPI_ENV};SR_TEST_TMP=${tdir};SR_H5CHECK_SUITE=checkpoints;ASAN_OPTIONS=detect_leaks=0")
endforeach()

# Fuzzing. Replays: each harness runs over its saved corpus with the normal
# compiler (no libFuzzer needed), so CI re-checks every seed and past finding.
set(SR_FUZZ_HARNESSES config convert h5check)
foreach(h ${SR_FUZZ_HARNESSES})
  add_executable(fuzz_replay_${h} fuzz/fuzz_${h}.c fuzz/replay.c)
  target_link_libraries(fuzz_replay_${h} PRIVATE softrec_lib)
  target_compile_options(fuzz_replay_${h} PRIVATE ${SR_WARN})
  add_test(NAME fuzz_replay_${h} COMMAND fuzz_replay_${h} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${h})
  set_tests_properties(fuzz_replay_${h} PROPERTIES TIMEOUT 300 LABELS "reliability;fuzz"
                       ENVIRONMENT "${SR_MPI_ENV};TMPDIR=${CMAKE_CURRENT_BINARY_DIR}/work")
  # libhdf5 allocates sizes read from a damaged file; glibc returns NULL for
  # absurd ones (HDF5 then fails cleanly) and so must ASan.
  set_property(TEST fuzz_replay_${h} APPEND PROPERTY ENVIRONMENT
               "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1")
endforeach()

# libFuzzer builds: cmake -DCMAKE_C_COMPILER=clang -DSOFTREC_FUZZ=ON, then
# cmake --build . --target fuzz_<name> and run e.g.
#   ./tests/fuzz_convert -jobs=1 -max_total_time=180 NEW_DIR ../tests/fuzz/corpus/convert
# The library is compiled a second time with coverage instrumentation (and
# ASan/UBSan), from the same source list, so the fuzzer sees inside it.
option(SOFTREC_FUZZ "Build the libFuzzer harnesses (needs clang)" OFF)
if(SOFTREC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SOFTREC_FUZZ=ON needs clang (cmake -DCMAKE_C_COMPILER=clang)")
  endif()
  set(SR_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g)
  add_library(softrec_fuzz_lib STATIC ${SR_SOURCES})
  target_include_directories(softrec_fuzz_lib PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(softrec_fuzz_lib PUBLIC _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE
                             SOFTREC_VERSION="${PROJECT_VERSION}")
  target_compile_options(softrec_fuzz_lib PRIVATE ${SR_FUZZ_FLAGS})
  target_link_libraries(softrec_fuzz_lib PUBLIC MPI::MPI_C HDF5::HDF5 PkgConfig::OPENBLAS
                        PkgConfig::INIH PkgConfig::JANSSON ZLIB::ZLIB m)
  foreach(h ${SR_FUZZ_HARNESSES})
    add_executable(fuzz_${h} fuzz/fuzz_${h}.c)
    target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${h} PRIVATE softrec_fuzz_lib)
  endforeach()
endif()

# Faults end cleanly (issue 18): SIGSTOP x20 of one rank (random moments,
# inside checkpoint saves and evaluations by SOFTREC_FAULT_ACTION=stop) ends
# with the watchdog's 10 within its limit and nothing left, kill -9 too;
# identical runs write identical checkpoint files; exit codes 0 / 11 / 10.
add_test(NAME faults_watchdog
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/scripts/faults_watchdog.py ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/faults_watchdog 20)
add_test(NAME ckpt_identical
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/ckpt_identical.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/ckpt_identical)
add_test(NAME exit_codes
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/exit_codes.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/work/exit_codes)
set_tests_properties(faults_watchdog ckpt_identical exit_codes PROPERTIES TIMEOUT 600 PROCESSORS 2
                     LABELS "reliability;script" ENVIRONMENT "${SR_MPI_ENV}")
