# runtime.cmake: registers the unit tests of the Python runtime (src/runtime) with ctest.
# They use Debian's /usr/bin/python3, the interpreter that has numpy and cv2.
add_test(NAME runtime_unit
  COMMAND /usr/bin/python3 -m unittest discover -s ${CMAKE_SOURCE_DIR}/tests/runtime -v)
set_tests_properties(runtime_unit PROPERTIES
  ENVIRONMENT "PYTHONPATH=${CMAKE_SOURCE_DIR}/src/runtime;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 300)
