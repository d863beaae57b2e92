# bench.cmake: the benchmark smoke test: `blockbox bench --quick --json` runs every
# scenario and baseline in seconds, its JSON has the documented shape, the chart draws.
add_test(NAME bench.quick_json
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/bench/check_json.py
          --bin $<TARGET_FILE:blockbox_cli> --timeout 50)
# RUN_SERIAL: the numbers mean little while other suites load the cores, and the
# throughput scenario would slow them down in turn.
set_tests_properties(bench.quick_json PROPERTIES LABELS "bench" TIMEOUT 60 RUN_SERIAL TRUE
  # The embedded CPython of the in-process baseline never frees its heap at exit.
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;ASAN_OPTIONS=detect_leaks=0")
