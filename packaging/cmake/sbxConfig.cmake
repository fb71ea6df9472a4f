# find_package(sbx [COMPONENTS c cpp]) — imported targets:
#   sbx::sbx  libsbx.so.0, the C ABI (#include <sbx/sbx.h>); needs nothing else.
#   sbx::cpp  the C++ API (#include <sbx/sbx.hpp>, <profiles/profiles.hpp>) as a
#             static archive; only when fmt, nlohmann_json and tomlplusplus are
#             found (apt install libfmt-dev nlohmann-json3-dev libtomlplusplus-dev
#             and the -dev packages of libseccomp, libcap, libnl, libnftnl,
#             libmnl, c-ares, libidn2 it links with).
include(${CMAKE_CURRENT_LIST_DIR}/sbxTargets.cmake)
set(sbx_c_FOUND TRUE)

set(sbx_cpp_FOUND FALSE)
find_package(fmt QUIET)
find_package(nlohmann_json QUIET)
find_package(tomlplusplus QUIET)
if(fmt_FOUND AND nlohmann_json_FOUND AND tomlplusplus_FOUND)
  include(${CMAKE_CURRENT_LIST_DIR}/sbxCppTargets.cmake)
  set(sbx_cpp_FOUND TRUE)
endif()

foreach(component ${sbx_FIND_COMPONENTS})
  if(NOT sbx_${component}_FOUND AND sbx_FIND_REQUIRED_${component})
    set(sbx_FOUND FALSE)
    if(component STREQUAL "cpp")
      set(sbx_NOT_FOUND_MESSAGE
          "sbx::cpp needs fmt, nlohmann_json and tomlplusplus: apt install libfmt-dev nlohmann-json3-dev libtomlplusplus-dev")
    else()
      set(sbx_NOT_FOUND_MESSAGE "unknown sbx component '${component}' (components: c, cpp)")
    endif()
  endif()
endforeach()
