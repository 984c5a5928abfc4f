# src/io/synth: planted-data generator and "softrec data synth" (serial).
sr_add_test(NAME test_synth SOURCES unit/test_synth.c TIMEOUT 60 LABELS synth)
