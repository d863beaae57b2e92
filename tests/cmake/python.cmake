# python.cmake: the Python binding's unittest suites (bindings/python/tests) with Debian's
# /usr/bin/python3: values/errors/threads, the Workflows example in local and modal mode,
# and the install test (cmake --install to a temp prefix, pip install offline).
# Not in sanitizer builds: an ASan libblockbox cannot be loaded into an uninstrumented
# python3 without preloading the ASan runtime; the release stage of scripts/test.sh runs them.
if(BLOCKBOX_SANITIZE)
  message(STATUS "python binding suites: release builds only (ASan library in python3)")
  return()
endif()
set(BB_PY_TESTS ${CMAKE_SOURCE_DIR}/bindings/python/tests)
set(BB_PY_ENV "BLOCKBOX_LIBRARY=$<TARGET_FILE:blockbox>" "PYTHONDONTWRITEBYTECODE=1")
add_test(NAME python.binding COMMAND /usr/bin/python3 ${BB_PY_TESTS}/test_blockbox.py -v)
add_test(NAME python.example COMMAND /usr/bin/python3 ${BB_PY_TESTS}/test_example.py -v)
add_test(NAME python.install COMMAND /usr/bin/python3 ${BB_PY_TESTS}/test_install.py -v)
set_tests_properties(python.binding python.example PROPERTIES LABELS "python" TIMEOUT 300
  ENVIRONMENT "${BB_PY_ENV}")
set_tests_properties(python.install PROPERTIES LABELS "python" TIMEOUT 300
  ENVIRONMENT "${BB_PY_ENV};BLOCKBOX_BUILD_DIR=${CMAKE_BINARY_DIR};CMAKE_COMMAND=${CMAKE_COMMAND}")
