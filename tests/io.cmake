# src/io: dataset format, converters, data info; bad-input corpus.
sr_add_test(NAME test_io_convert SOURCES unit/test_io_convert.c LABELS io)
sr_add_test(NAME test_io_dataset SOURCES mpi/test_io_dataset.c MPI LABELS io)

# HDF5 half of the corpus is generated (no h5py needed).
add_executable(sr_io_corpus_gen ${CMAKE_CURRENT_SOURCE_DIR}/corpus/gen_h5.c)
target_link_libraries(sr_io_corpus_gen PRIVATE softrec_lib)
target_compile_options(sr_io_corpus_gen PRIVATE ${SR_WARN})

add_test(NAME io_corpus
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/run_corpus.sh $<TARGET_FILE:softrec>
                 $<TARGET_FILE:sr_io_corpus_gen> ${CMAKE_CURRENT_SOURCE_DIR}/corpus
                 ${CMAKE_CURRENT_BINARY_DIR}/work/io_corpus)
set_tests_properties(io_corpus PROPERTIES TIMEOUT 600 PROCESSORS 2 LABELS "io;corpus"
                     ENVIRONMENT "${SR_MPI_ENV};MPIEXEC=${MPIEXEC_EXECUTABLE};ASAN_OPTIONS=detect_leaks=0")

# Real shared datasets through the user-facing path (convert, then info --json);
# skipped (exit 77, reason printed) when shared/data is absent.
add_test(NAME io_real_data
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/io_real_data.sh $<TARGET_FILE:softrec>
                 ${PROJECT_SOURCE_DIR}/../shared/data ${CMAKE_CURRENT_BINARY_DIR}/work/io_real_data)
set_tests_properties(io_real_data PROPERTIES TIMEOUT 300 PROCESSORS 2 LABELS "io;realdata" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SR_MPI_ENV};MPIEXEC=${MPIEXEC_EXECUTABLE};ASAN_OPTIONS=detect_leaks=0")

# Open MPI leaks by design (and unloads the components that leaked, so
# suppressions cannot name them): sanitizer builds check everything but leaks.
foreach(np ${SR_TEST_RANKS})
  list(APPEND SR_IO_TESTS test_io_dataset_np${np})
endforeach()
foreach(t test_io_convert ${SR_IO_TESTS})
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endforeach()
