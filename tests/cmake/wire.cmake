# wire.cmake: the serializer's tests (envelopes, typed values, responses, base64)
# and, when the compiler is clang, a libFuzzer target for the response and input checks.
foreach(name test_wire test_wire_values test_wire_response test_wire_strict)
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/unit/${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE blockbox_static PkgConfig::CHECK m)
  add_test(NAME wire.${name} COMMAND ${name})
  set_tests_properties(wire.${name} PROPERTIES LABELS "unit;wire" TIMEOUT 120)
endforeach()

# libFuzzer: the serializer's sources are compiled into the target itself so they are
# instrumented for coverage. Not run by ctest; run ./bin/fuzz_wire [corpus dir].
if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
  add_executable(fuzz_wire ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_wire.c
    ${CMAKE_SOURCE_DIR}/src/wire.c ${CMAKE_SOURCE_DIR}/src/wire_reply.c ${CMAKE_SOURCE_DIR}/src/json_scan.c
    ${CMAKE_SOURCE_DIR}/src/wire_values.c ${CMAKE_SOURCE_DIR}/src/wire_traces.c ${CMAKE_SOURCE_DIR}/src/errtext.c
    ${CMAKE_SOURCE_DIR}/src/base64.c ${CMAKE_SOURCE_DIR}/src/buf.c ${CMAKE_SOURCE_DIR}/src/error.c)
  target_include_directories(fuzz_wire PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  # -Wno-format-nonliteral: clang counts error.c's vasprintf(fmt) under -Wformat=2.
  target_compile_options(fuzz_wire PRIVATE -fsanitize=fuzzer,address,undefined -Wno-format-nonliteral)
  target_link_options(fuzz_wire PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_wire PRIVATE PkgConfig::CJSON PkgConfig::OPENSSL m)
endif()
