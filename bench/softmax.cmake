# Exact softmax step and full-ranking top-K eval at N = 1M, d = 64, B = 1024
# (an executable, not a ctest: docs/benchmarks.md "exact softmax step").
add_executable(bench_softmax ${CMAKE_CURRENT_SOURCE_DIR}/bench_softmax.c)
target_compile_options(bench_softmax PRIVATE ${SR_WARN} ${SR_OPT})
target_link_libraries(bench_softmax PRIVATE softrec_lib)
