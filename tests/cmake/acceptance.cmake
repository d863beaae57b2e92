# The shared acceptance suite (../shared/acceptance), run against the built CLI when
# it is present beside the repository, as in CI.
set(BLOCKBOX_ACCEPTANCE ${CMAKE_SOURCE_DIR}/../shared/acceptance/run.py)
if(EXISTS ${BLOCKBOX_ACCEPTANCE})
  add_test(NAME acceptance
           COMMAND /usr/bin/python3 ${BLOCKBOX_ACCEPTANCE} --bin $<TARGET_FILE:blockbox_cli>)
  set_tests_properties(acceptance PROPERTIES TIMEOUT 900 RUN_SERIAL TRUE)
else()
  message(WARNING "../shared/acceptance not found: the acceptance suite will not run")
endif()
