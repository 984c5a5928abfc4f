# src/core: errors, config, RNG, allocation, LSE merge (serial).
sr_add_test(NAME test_core SOURCES unit/test_core.c)
