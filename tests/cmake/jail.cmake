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

# The jail's trust boundary through the C API on the real zygote (denials recorded by
# the host, fresh entropy per worker) and ordinary Python through the CLI.
add_executable(jail_test_api ${JAIL_TEST_DIR}/test_jail_api.c)
target_include_directories(jail_test_api PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests/local)
target_link_libraries(jail_test_api PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::CJSON pthread)
set_target_properties(jail_test_api PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(jail_test_api blockbox-worker)
add_test(NAME jail_api COMMAND jail_test_api)
set_tests_properties(jail_api PROPERTIES LABELS "jail;local" TIMEOUT 300
  ENVIRONMENT "BB_TEST_WORKER=$<TARGET_FILE:blockbox-worker>;CK_DEFAULT_TIMEOUT=120")
find_program(BB_JAIL_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(BB_JAIL_PYTHON3 AND TARGET blockbox_cli)
  add_test(NAME jail_ordinary_python_py
    COMMAND ${BB_JAIL_PYTHON3} ${JAIL_TEST_DIR}/test_ordinary_python.py -v --bin $<TARGET_FILE:blockbox_cli>)
  set_tests_properties(jail_ordinary_python_py PROPERTIES LABELS "jail;local" TIMEOUT 300)
endif()
