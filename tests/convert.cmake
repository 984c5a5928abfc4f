# data convert for the formats people have (Amazon, RecBole, CSV with quotes
# and string ids), string id maps, HDF5 strings of any writer (h5py).
sr_add_test(NAME test_io_convert_formats SOURCES unit/test_io_convert_formats.c LABELS "io;convert")
target_compile_definitions(test_io_convert_formats PRIVATE SR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
set_property(TEST test_io_convert_formats APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
