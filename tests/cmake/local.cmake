# local.cmake: the local driver's own end-to-end suite (tests/local): block instance
# semantics, concurrency, zygote lifecycle through the C API; layers, fail-closed
# configuration, bad input and secrets through the CLI. ctest label "local".
set(LOCAL_TEST_DIR ${CMAKE_SOURCE_DIR}/tests/local)
# Sanitizer builds fork and start Python several times slower: scale every timeout.
if(BLOCKBOX_SANITIZE)
  set(LOCAL_SLOWDOWN 5)
else()
  set(LOCAL_SLOWDOWN 1)
endif()
math(EXPR LOCAL_C_TIMEOUT "120 * ${LOCAL_SLOWDOWN}")
math(EXPR LOCAL_PY_TIMEOUT "180 * ${LOCAL_SLOWDOWN}")
set(LOCAL_TEST_ENV "BB_TEST_WORKER=$<TARGET_FILE:blockbox-worker>;CK_DEFAULT_TIMEOUT=60"
    "CK_TIMEOUT_MULTIPLIER=${LOCAL_SLOWDOWN}")

foreach(name instances concurrency lifecycle longlived faults soak)
  add_executable(test_local_${name} ${LOCAL_TEST_DIR}/test_local_${name}.c)
  target_include_directories(test_local_${name} PRIVATE ${CMAKE_SOURCE_DIR}/include ${LOCAL_TEST_DIR})
  target_link_libraries(test_local_${name} PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::CJSON pthread)
  set_target_properties(test_local_${name} PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(test_local_${name} blockbox-worker)
  add_test(NAME local_${name} COMMAND test_local_${name})
  set_tests_properties(local_${name} PROPERTIES LABELS "local" TIMEOUT ${LOCAL_C_TIMEOUT} ENVIRONMENT "${LOCAL_TEST_ENV}")
endforeach()
# The lifecycle test kills zygotes and scans /proc and the cgroup tree.
set_tests_properties(local_lifecycle local_faults local_soak PROPERTIES RUN_SERIAL TRUE)
math(EXPR LOCAL_SOAK_TIMEOUT "600 * ${LOCAL_SLOWDOWN}")
set_tests_properties(local_soak PROPERTIES TIMEOUT ${LOCAL_SOAK_TIMEOUT})

find_program(BB_LOCAL_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(BB_LOCAL_PYTHON3 AND TARGET blockbox_cli)
  foreach(name layers cli)
    add_test(NAME local_${name}_py
      COMMAND ${BB_LOCAL_PYTHON3} ${LOCAL_TEST_DIR}/test_local_${name}.py -v --bin $<TARGET_FILE:blockbox_cli>)
    set_tests_properties(local_${name}_py PROPERTIES LABELS "local" TIMEOUT ${LOCAL_PY_TIMEOUT})
  endforeach()
endif()
