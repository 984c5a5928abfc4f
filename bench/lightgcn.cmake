# LightGCN propagation forward + backward on Gowalla (3 layers, d = 64) at
# 1 and 2 ranks; bench/torch_lightgcn.py is the PyTorch twin for the ratio
# (an executable, not a ctest; skips when the data is absent).
add_executable(bench_lightgcn ${CMAKE_CURRENT_SOURCE_DIR}/bench_lightgcn.c)
target_compile_options(bench_lightgcn PRIVATE ${SR_WARN} ${SR_OPT})
target_compile_definitions(bench_lightgcn PRIVATE SR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(bench_lightgcn PRIVATE softrec_lib)
