# src/core/mem: the buffer-set helper (serial).
sr_add_test(NAME test_core_bufset SOURCES unit/test_core_bufset.c)
