# The jail layers of the local driver (namespaces, filesystem, cgroups, privileges,
# rlimits), the host probe and `blockbox doctor`; included by CMakeLists.txt here.
target_sources(blockbox_obj PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/jail.c
  ${CMAKE_CURRENT_LIST_DIR}/layers.c
  ${CMAKE_CURRENT_LIST_DIR}/ns.c
  ${CMAKE_CURRENT_LIST_DIR}/fs.c
  ${CMAKE_CURRENT_LIST_DIR}/cgroup.c
  ${CMAKE_CURRENT_LIST_DIR}/cgroup_v2.c
  ${CMAKE_CURRENT_LIST_DIR}/caps.c
  ${CMAKE_CURRENT_LIST_DIR}/rlimits.c
  ${CMAKE_CURRENT_LIST_DIR}/probe.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor.c)
