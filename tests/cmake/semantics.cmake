# semantics.cmake: Roboflow block semantics (issue 15): the reply parser's debug_traces
# checks, and the Roboflow-shaped blocks run in local mode and against the emulator.
add_executable(test_wire_traces ${CMAKE_SOURCE_DIR}/tests/unit/test_wire_traces.c)
target_include_directories(test_wire_traces PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests/unit)
target_link_libraries(test_wire_traces PRIVATE blockbox_static PkgConfig::CHECK m)
add_test(NAME wire.test_wire_traces COMMAND test_wire_traces)
set_tests_properties(wire.test_wire_traces PROPERTIES LABELS "unit;wire" TIMEOUT 120)

# Needs build/bin/blockbox and blockbox-worker (local mode) and the emulator (modal mode).
add_test(NAME semantics_blocks COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/semantics/test_blocks.py
         --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(semantics_blocks PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)

# The C API in local mode (the real zygote) and modal mode (bb_modal_emu, modal.cmake).
add_executable(test_semantics_api ${CMAKE_SOURCE_DIR}/tests/semantics/test_api.c)
target_include_directories(test_semantics_api PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_semantics_api PRIVATE bb_modal_emu blockbox_static PkgConfig::CHECK
                      PkgConfig::CJSON pthread)
add_dependencies(test_semantics_api blockbox-worker)
add_test(NAME semantics_api COMMAND test_semantics_api)
set_tests_properties(semantics_api PROPERTIES TIMEOUT 300
  ENVIRONMENT "BB_TEST_WORKER=$<TARGET_FILE:blockbox-worker>")
