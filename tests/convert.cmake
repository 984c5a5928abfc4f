# data convert for the formats people have (Amazon, RecBole, CSV with quotes
# and string ids), string id maps, HDF5 strings of any writer (h5py).
# The unit tests are in test_io_convert (io.cmake, tests/unit/test_io_convert.c);
# its fixtures are found from the source tree.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_io_convert.c PROPERTIES
                            COMPILE_DEFINITIONS SR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The id-name dump used by the scripts (reads names the way later outputs do).
add_executable(sr_id_names ${CMAKE_CURRENT_SOURCE_DIR}/tools/id_names.c)
target_link_libraries(sr_id_names PRIVATE softrec_lib)
target_compile_options(sr_id_names PRIVATE ${SR_WARN})

add_test(NAME convert_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/convert_e2e.sh $<TARGET_FILE:softrec> $<TARGET_FILE:sr_id_names>
                 ${CMAKE_CURRENT_SOURCE_DIR}/data/convert ${CMAKE_CURRENT_BINARY_DIR}/work/convert_e2e)
set_tests_properties(convert_e2e PROPERTIES TIMEOUT 300 PROCESSORS 2 LABELS "io;convert"
                     ENVIRONMENT "${SR_MPI_ENV}")
add_test(NAME h5py_dataset
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/h5py_dataset.sh $<TARGET_FILE:softrec> $<TARGET_FILE:sr_id_names>
                 ${CMAKE_CURRENT_BINARY_DIR}/work/h5py_dataset)
set_tests_properties(h5py_dataset PROPERTIES TIMEOUT 300 PROCESSORS 2 LABELS "io;convert" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SR_MPI_ENV}")
