# "softrec data synth" at 200k users x 1M items x 10M interactions; not a
# ctest (minutes of work): `cmake --build B --target bench_synth`.
add_custom_target(bench_synth
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bench_synth.sh $<TARGET_FILE:softrec>
  DEPENDS softrec
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  USES_TERMINAL
  COMMENT "bench_synth: softrec data synth, 10M interactions")
