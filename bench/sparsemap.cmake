# Sparse-map training steps (sparsemax, entmax-1.5, rankmax) beside the exact
# softmax step at N = 1M, d = 64, B = 1024 (an executable, not a ctest).
add_executable(bench_sparsemap ${CMAKE_CURRENT_SOURCE_DIR}/bench_sparsemap.c)
target_compile_options(bench_sparsemap PRIVATE ${SR_WARN} ${SR_OPT})
target_link_libraries(bench_sparsemap PRIVATE softrec_lib)
