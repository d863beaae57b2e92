# The jail layers of the local driver (namespaces, filesystem, cgroups, privileges,
# rlimits) with their detect() rules, the host probe and `blockbox doctor` (in the
# library: doctor asks the layers); included by CMakeLists.txt here.
target_sources(blockbox_obj PRIVATE   # names relative to drivers/local, whose CMakeLists.txt includes this
  jail.c ns.c fs.c cgroup.c cgroup_v2.c cgroup_slot.c caps.c rlimits.c probe.c doctor.c)

# The zygote's side of the seam (jail.h): set-up once, the self-test, the layers per
# worker. Only the zygote (blockbox-worker) and the jail tests run it, so it is kept
# out of libblockbox: the static library blockbox_jail.
add_library(blockbox_jail STATIC ${CMAKE_CURRENT_LIST_DIR}/layers.c)
target_include_directories(blockbox_jail PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(blockbox_jail PUBLIC blockbox_static)
