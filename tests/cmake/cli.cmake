# cli.cmake: the test-only echo driver plugin (and its broken variants), the Check
# tests of the public API, config and registry, and the CLI integration tests.

# The echo driver: a plugin loaded through BLOCKBOX_DRIVER_PATH, touching no core file.
# Its symbols from the library (bb_registry_add, bb_error_new, …) come from the
# executable that loads it, so it links nothing of blockbox.
function(blockbox_echo_plugin target)
  add_library(${target} MODULE ${CMAKE_SOURCE_DIR}/tests/plugin/echo_driver.c)
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${target} PRIVATE PkgConfig::CJSON)
  target_compile_definitions(${target} PRIVATE ${ARGN})
endfunction()
blockbox_echo_plugin(blockbox_test_driver)
blockbox_echo_plugin(blockbox_test_driver_badabi ECHO_BAD_ABI)
blockbox_echo_plugin(blockbox_test_driver_noentry ECHO_NO_ENTRY)
blockbox_echo_plugin(blockbox_test_driver_dup ECHO_DUPLICATE)
blockbox_echo_plugin(blockbox_test_driver_refuses ECHO_ENTRY_FAILS)
blockbox_echo_plugin(blockbox_test_driver_other ECHO_NAME="echo2")

set(BB_ECHO_ENV
  "BB_TEST_ECHO_DRIVER=$<TARGET_FILE:blockbox_test_driver>"
  "BB_TEST_ECHO_BADABI=$<TARGET_FILE:blockbox_test_driver_badabi>"
  "BB_TEST_ECHO_NOENTRY=$<TARGET_FILE:blockbox_test_driver_noentry>"
  "BB_TEST_ECHO_DUP=$<TARGET_FILE:blockbox_test_driver_dup>"
  "BB_TEST_ECHO_REFUSES=$<TARGET_FILE:blockbox_test_driver_refuses>"
  "BB_TEST_ECHO_OTHER=$<TARGET_FILE:blockbox_test_driver_other>")
set(BB_ECHO_PLUGINS blockbox_test_driver blockbox_test_driver_badabi blockbox_test_driver_noentry
    blockbox_test_driver_dup blockbox_test_driver_refuses blockbox_test_driver_other)

# Check tests. ENABLE_EXPORTS: the plugins resolve the library's symbols in the test.
foreach(name api config registry)
  add_executable(test_${name} ${CMAKE_SOURCE_DIR}/tests/api/test_${name}.c)
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests/api)
  target_link_libraries(test_${name} PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::CJSON
                        ${CMAKE_DL_LIBS} pthread)
  set_target_properties(test_${name} PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(test_${name} ${BB_ECHO_PLUGINS})
  add_test(NAME api_${name} COMMAND test_${name})
  # Run with a clean driver environment; each test sets what it needs.
  set_tests_properties(api_${name} PROPERTIES LABELS "unit;api" TIMEOUT 120
    ENVIRONMENT "${BB_ECHO_ENV};CK_DEFAULT_TIMEOUT=60")
endforeach()

# CLI integration tests: through build/bin/blockbox with the echo driver (no sandbox).
find_program(BB_SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(BB_SYSTEM_PYTHON3 AND TARGET blockbox_cli)
  add_test(NAME cli_integration
    COMMAND ${BB_SYSTEM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/integration/test_cli.py -v
            --bin $<TARGET_FILE:blockbox_cli> --echo $<TARGET_FILE:blockbox_test_driver>)
  set_tests_properties(cli_integration PROPERTIES LABELS "integration;cli" TIMEOUT 300)
endif()
