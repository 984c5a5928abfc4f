# src/cli/train_cmd.c: train.seeds (one run per seed, mean/sd/95% CI in seeds.json).
add_test(NAME seeds_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/seeds_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/seeds_e2e)
set_tests_properties(seeds_e2e PROPERTIES TIMEOUT 300 LABELS "e2e" PROCESSORS 2)
