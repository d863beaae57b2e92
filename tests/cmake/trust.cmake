# trust.cmake: the trust-boundary suites of issue 8 beyond the serializer's unit tests:
# the C API on the echo driver (reply keys, strict outputs, value limits) and the host
# cost of the issue's two attack blocks on the real local driver (C API and CLI).
add_executable(test_api_trust ${CMAKE_SOURCE_DIR}/tests/api/test_api_trust.c)
target_include_directories(test_api_trust PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests/api)
target_link_libraries(test_api_trust PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::CJSON
                      ${CMAKE_DL_LIBS} pthread)
set_target_properties(test_api_trust PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(test_api_trust ${BB_ECHO_PLUGINS})
add_test(NAME api_trust COMMAND test_api_trust)
set_tests_properties(api_trust PROPERTIES LABELS "unit;api" TIMEOUT 120
  ENVIRONMENT "${BB_ECHO_ENV};CK_DEFAULT_TIMEOUT=60")

# The attack blocks of issue 8 on the real local driver: host RSS measured in-process
# (getrusage) against the bound stated in docs/SECURITY.md. Memory-heavy: run alone.
add_executable(test_host_bound ${CMAKE_SOURCE_DIR}/tests/api/test_host_bound.c)
target_include_directories(test_host_bound PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests/local)
target_link_libraries(test_host_bound PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::CJSON pthread)
add_dependencies(test_host_bound blockbox-worker)
add_test(NAME api_host_bound COMMAND test_host_bound)
# ASan's quarantine keeps freed blocks resident; a small one keeps the figure honest.
set_tests_properties(api_host_bound PROPERTIES LABELS "local;api" RUN_SERIAL TRUE
  TIMEOUT ${LOCAL_PY_TIMEOUT} ENVIRONMENT "${LOCAL_TEST_ENV};ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16")

# The same two attacks through the CLI (peak RSS of the CLI process from /proc).
if(BB_SYSTEM_PYTHON3 AND TARGET blockbox_cli)
  add_test(NAME cli_host_bound
    COMMAND ${BB_SYSTEM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/integration/test_cli_bound.py -v
            --bin $<TARGET_FILE:blockbox_cli>)
  set_tests_properties(cli_host_bound PROPERTIES LABELS "local;cli" RUN_SERIAL TRUE
    TIMEOUT ${LOCAL_PY_TIMEOUT} ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16")
endif()
