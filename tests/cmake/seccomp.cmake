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

# The default policy against real CPython+numpy+cv2 (embedded, forked like the zygote).
add_executable(seccomp_python ${CMAKE_SOURCE_DIR}/tests/unit/seccomp_python.c)
target_include_directories(seccomp_python PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/drivers/local)
target_link_libraries(seccomp_python PRIVATE blockbox_static PkgConfig::SECCOMP PkgConfig::PYEMBED)
add_test(NAME seccomp.python COMMAND seccomp_python)
# Embedded CPython (and the OpenSSL it loads) never frees its heap at exit: no leak check.
set_tests_properties(seccomp.python PROPERTIES LABELS "seccomp;python" TIMEOUT 300
  ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
