# vm.cmake: the cgroup layer's own suite (tests/vm/test_cgroup.c), run on this host by
# ctest and inside the VM of scripts/vm-test.sh (pure cgroup v2, per position).
# The VM itself is not a ctest: `scripts/vm-test.sh` (full) or `--quick` (CI).
set(VM_TEST_DIR ${CMAKE_SOURCE_DIR}/tests/vm)
add_executable(vm_test_cgroup ${VM_TEST_DIR}/test_cgroup.c ${CMAKE_SOURCE_DIR}/tests/jail/jailtest.c)
target_include_directories(vm_test_cgroup PRIVATE ${CMAKE_SOURCE_DIR}/drivers/local ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_SOURCE_DIR}/tests/jail)
target_link_libraries(vm_test_cgroup blockbox_static PkgConfig::CHECK)
add_test(NAME cgroup_layer COMMAND vm_test_cgroup)
# It kills zygotes and sweeps the cgroup tree, like the other cgroup suites.
set_tests_properties(cgroup_layer PROPERTIES TIMEOUT 600 LABELS jail RUN_SERIAL TRUE)
