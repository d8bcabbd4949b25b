# CMake package of the cortex_q4 C library, installed by `cargo cinstall`
# into <prefix>/share/cmake/cortex_q4/ beside the library, its header and
# its pkg-config file:
#
#   find_package(cortex_q4 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE cortex_q4::cortex_q4)
#
# cortex_q4::cortex_q4 is the shared library, or the static one when
# cortex_q4_USE_STATIC_LIBS is true before the first find_package. The static
# library brings the system libraries Rust's standard library needs, read
# from the Libs.private of the installed cortex_q4.pc (what rustc printed for
# the target it was built for).
#
# Paths are found relative to this file, so the installed tree may be moved:
# <prefix>/include/cortex_q4.h, and the libraries in <prefix>/lib/<arch>,
# <prefix>/lib64 or <prefix>/lib (cargo-c's default library directories).

if(TARGET cortex_q4::cortex_q4)
  return()
endif()

get_filename_component(_cq4_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

set(_cq4_dirs lib64 lib)
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_cq4_dirs "lib/${CMAKE_LIBRARY_ARCHITECTURE}" ${_cq4_dirs})
endif()
set(_cq4_libdir "")
foreach(_cq4_dir IN LISTS _cq4_dirs)
  if(EXISTS "${_cq4_prefix}/${_cq4_dir}/pkgconfig/cortex_q4.pc")
    set(_cq4_libdir "${_cq4_prefix}/${_cq4_dir}")
    break()
  endif()
endforeach()
if(_cq4_libdir STREQUAL "" OR NOT EXISTS "${_cq4_prefix}/include/cortex_q4.h")
  set(cortex_q4_FOUND FALSE)
  set(cortex_q4_NOT_FOUND_MESSAGE
      "no include/cortex_q4.h and lib*/pkgconfig/cortex_q4.pc under ${_cq4_prefix}")
  return()
endif()

if(cortex_q4_USE_STATIC_LIBS)
  add_library(cortex_q4::cortex_q4 STATIC IMPORTED)
  set(_cq4_file "${CMAKE_STATIC_LIBRARY_PREFIX}cortex_q4${CMAKE_STATIC_LIBRARY_SUFFIX}")
  file(STRINGS "${_cq4_libdir}/pkgconfig/cortex_q4.pc" _cq4_private REGEX "^Libs\\.private:")
  string(REGEX REPLACE "^Libs\\.private:" "" _cq4_private "${_cq4_private}")
  separate_arguments(_cq4_private UNIX_COMMAND "${_cq4_private}")
  set_target_properties(cortex_q4::cortex_q4 PROPERTIES INTERFACE_LINK_LIBRARIES "${_cq4_private}")
else()
  add_library(cortex_q4::cortex_q4 SHARED IMPORTED)
  set(_cq4_file "${CMAKE_SHARED_LIBRARY_PREFIX}cortex_q4${CMAKE_SHARED_LIBRARY_SUFFIX}")
endif()
if(NOT EXISTS "${_cq4_libdir}/${_cq4_file}")
  set(cortex_q4_FOUND FALSE)
  set(cortex_q4_NOT_FOUND_MESSAGE "no ${_cq4_file} in ${_cq4_libdir}")
  return()
endif()
set_target_properties(cortex_q4::cortex_q4 PROPERTIES
  IMPORTED_LOCATION "${_cq4_libdir}/${_cq4_file}"
  INTERFACE_INCLUDE_DIRECTORIES "${_cq4_prefix}/include")
