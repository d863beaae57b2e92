# seccomp.cmake: the seccomp layer's tests — the policy parser (test_policy) and real
# enforcement of the compiled default filter in forked children (test_seccomp).
foreach(name test_policy test_seccomp)
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/unit/${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/drivers/local)
  target_compile_definitions(${name} PRIVATE POLICY_DIR="${CMAKE_SOURCE_DIR}/policies")
  target_link_libraries(${name} PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::SECCOMP pthread)
  add_test(NAME seccomp.${name} COMMAND ${name})
  set_tests_properties(seccomp.${name} PROPERTIES LABELS "unit;seccomp" TIMEOUT 180)
endforeach()
