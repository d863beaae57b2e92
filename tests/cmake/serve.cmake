# serve.cmake: `blockbox serve` against a live server: the Roboflow-shaped client
# (protocol, auth, tenancy, concurrency, hostile tenants and bodies, SIGTERM), the
# differential suite (local vs the modal driver through serve) and the fuzz target.
find_program(BB_SERVE_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_test(NAME serve_live
  COMMAND ${BB_SERVE_PYTHON3} -W ignore ${CMAKE_SOURCE_DIR}/tests/serve/test_serve.py
          --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_live PROPERTIES LABELS "integration;serve" TIMEOUT 600)

# The red team's resource attacks: bytes in flight, reply blow-up, connections, headers.
add_test(NAME serve_limits
  COMMAND ${BB_SERVE_PYTHON3} -W ignore ${CMAKE_SOURCE_DIR}/tests/serve/test_limits.py
          --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_limits PROPERTIES LABELS "integration;serve" TIMEOUT 300)

# Local mode vs the modal driver through a live `blockbox serve`: identical CLI reports.
add_test(NAME serve_differential
  COMMAND ${BB_SERVE_PYTHON3} -W ignore ${CMAKE_SOURCE_DIR}/tests/serve/test_differential.py
          --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_differential PROPERTIES LABELS "integration;serve" TIMEOUT 600)

# libFuzzer target of the request path (auth headers, inflation, envelope, ndarray
# rewriting), built with clang against the built library and run for 20 s. Not in the
# sanitizer build (scripts/test.sh): it brings its own ASan, which gcc's would clash with.
add_test(NAME serve_fuzz
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz_serve.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR} 20)
set_tests_properties(serve_fuzz PROPERTIES LABELS "fuzz;serve" TIMEOUT 300)

# The benchmark (serve vs the C API in the same run); ctest runs the quick form, which
# checks every answer and reports figures without judging them.
add_executable(bench_serve ${CMAKE_SOURCE_DIR}/bench/serve_bench.c)
target_include_directories(bench_serve PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(bench_serve PRIVATE blockbox_static PkgConfig::CURL PkgConfig::ZLIB pthread m)
add_test(NAME serve_bench_quick COMMAND bench_serve --quick --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_bench_quick PROPERTIES LABELS "bench;serve" TIMEOUT 300)
