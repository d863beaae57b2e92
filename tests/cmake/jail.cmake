# Jail layer tests (tests/jail): one attack per layer with the layer on and off,
# cgroup cleanup, fail-closed configuration, doctor truthfulness; and the layer bench.
set(JAIL_TEST_DIR ${CMAKE_SOURCE_DIR}/tests/jail)
foreach(t test_layers test_doctor)
  add_executable(jail_${t} ${JAIL_TEST_DIR}/${t}.c ${JAIL_TEST_DIR}/jailtest.c)
  target_include_directories(jail_${t} PRIVATE ${CMAKE_SOURCE_DIR}/drivers/local ${CMAKE_SOURCE_DIR}/src
                             ${JAIL_TEST_DIR})
  target_link_libraries(jail_${t} blockbox_static PkgConfig::CHECK)
  add_test(NAME jail_${t} COMMAND jail_${t})
  # 77: needs root (the layer tests compare against an unjailed root worker).
  set_tests_properties(jail_${t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS jail)
endforeach()
set_tests_properties(jail_test_layers PROPERTIES RUN_SERIAL TRUE)

add_executable(jail_bench_layers ${JAIL_TEST_DIR}/bench_layers.c ${JAIL_TEST_DIR}/jailtest.c)
target_include_directories(jail_bench_layers PRIVATE ${CMAKE_SOURCE_DIR}/drivers/local ${CMAKE_SOURCE_DIR}/src
                           ${JAIL_TEST_DIR})
target_link_libraries(jail_bench_layers blockbox_static)
# A short run keeps the bench honest (it must still work); docs/SECURITY.md holds a long run.
add_test(NAME jail_bench_layers_smoke COMMAND jail_bench_layers --runs 5)
set_tests_properties(jail_bench_layers_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS jail RUN_SERIAL TRUE)
