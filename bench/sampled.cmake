# Sampled softmax / NCE steps next to the exact softmax step at N = 1M,
# d = 64, B = 1024, k in {64, 256, 1024, 4096} (an executable, not a ctest).
add_executable(bench_sampled ${CMAKE_CURRENT_SOURCE_DIR}/bench_sampled.c)
target_compile_options(bench_sampled PRIVATE ${SR_WARN} ${SR_OPT})
target_link_libraries(bench_sampled PRIVATE softrec_lib)
