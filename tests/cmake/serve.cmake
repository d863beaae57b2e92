# serve.cmake: `blockbox serve` against a live server: the Roboflow-shaped client
# (protocol, auth, tenancy, concurrency, hostile tenants and bodies, SIGTERM), the
# differential suite (local vs the modal driver through serve) and the fuzz target.
find_program(BB_SERVE_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_test(NAME serve_live
  COMMAND ${BB_SERVE_PYTHON3} -W ignore ${CMAKE_SOURCE_DIR}/tests/serve/test_serve.py
          --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_live PROPERTIES LABELS "integration;serve" TIMEOUT 600)

# Local mode vs the modal driver through a live `blockbox serve`: identical CLI reports.
add_test(NAME serve_differential
  COMMAND ${BB_SERVE_PYTHON3} -W ignore ${CMAKE_SOURCE_DIR}/tests/serve/test_differential.py
          --bin $<TARGET_FILE:blockbox_cli>)
set_tests_properties(serve_differential PROPERTIES LABELS "integration;serve" TIMEOUT 600)
