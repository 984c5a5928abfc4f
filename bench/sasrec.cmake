# SASRec training step of the transformer (max_len 200, d = 64, 2 blocks,
# batch 128, split over the ranks) and the sharded lookup + push (an
# executable, not a ctest); bench/torch_sasrec.py is the PyTorch twin.
add_executable(bench_sasrec ${CMAKE_CURRENT_SOURCE_DIR}/bench_sasrec.c)
target_compile_options(bench_sasrec PRIVATE ${SR_WARN} ${SR_OPT})
target_link_libraries(bench_sasrec PRIVATE softrec_lib)
