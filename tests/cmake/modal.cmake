# modal.cmake: the modal driver's tests: unit tests of the URL rule and helpers, the
# driver against the HTTPS emulator (every fault), app.py with a stub modal module,
# the CLI differential suite (local vs modal-against-emulator), the app against blockbox serve
# (Roboflow client protocol), and the benchmark.
set(BB_MODAL_DIR ${CMAKE_SOURCE_DIR}/tests/modal)
set(BB_EMULATOR_PY ${CMAKE_SOURCE_DIR}/tests/emulator/emulator.py)

add_executable(test_modal_url ${BB_MODAL_DIR}/test_modal_url.c)
target_include_directories(test_modal_url PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/drivers/modal)
target_link_libraries(test_modal_url PRIVATE blockbox_static PkgConfig::CHECK PkgConfig::ZLIB pthread)
add_test(NAME modal_url COMMAND test_modal_url)

add_library(bb_modal_emu STATIC ${BB_MODAL_DIR}/emu.c)
target_include_directories(bb_modal_emu PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include ${BB_MODAL_DIR})
target_compile_definitions(bb_modal_emu PRIVATE BB_EMULATOR_PY="${BB_EMULATOR_PY}")
target_link_libraries(bb_modal_emu PUBLIC blockbox_static PkgConfig::CURL PkgConfig::CJSON)

add_executable(test_modal_driver ${BB_MODAL_DIR}/test_modal_driver.c)
target_link_libraries(test_modal_driver PRIVATE bb_modal_emu blockbox_static PkgConfig::CHECK
                      PkgConfig::CJSON ${CMAKE_DL_LIBS} pthread)
add_test(NAME modal_driver COMMAND test_modal_driver)
# The driver reads no MODAL_* variable in these tests (configs are explicit), but a
# proxy in the environment must not matter either: that is the point of one test.
set_tests_properties(modal_driver PROPERTIES TIMEOUT 300
  ENVIRONMENT "CK_DEFAULT_TIMEOUT=60;HTTPS_PROXY=http://127.0.0.1:9;https_proxy=http://127.0.0.1:9")

add_test(NAME modal_app COMMAND /usr/bin/python3 ${BB_MODAL_DIR}/test_app.py)
set_tests_properties(modal_app PROPERTIES TIMEOUT 120)

# Needs build/bin/blockbox and blockbox-worker (the CLI and local mode).
add_test(NAME modal_cli COMMAND /usr/bin/python3 ${BB_MODAL_DIR}/test_cli.py
         --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(modal_cli PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77)

add_executable(bench_modal ${CMAKE_SOURCE_DIR}/bench/modal_bench.c)
target_link_libraries(bench_modal PRIVATE bb_modal_emu blockbox_static PkgConfig::CJSON pthread m)
add_test(NAME modal_bench_quick COMMAND bench_modal --quick)
set_tests_properties(modal_bench_quick PROPERTIES TIMEOUT 300)

# Roboflow's client protocol against the app's endpoint (local sandboxes) and `blockbox serve`.
add_test(NAME modal_app_vs_serve COMMAND /usr/bin/python3 ${BB_MODAL_DIR}/test_app_vs_serve.py
         --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(modal_app_vs_serve PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)
