# One static library per folder (a "layer", target lowbit_layer_<folder>), with the folders it
# may use. An #include "X/..." of a layer X that is not among a layer's dependencies (transitively) fails the build: each layer
# gets a check step (cmake/check_layer_includes.cmake) that runs before it compiles, over its
# sources and headers. The table itself is in the top-level CMakeLists.txt.

set(LOWBIT_LAYERS "" CACHE INTERNAL "")

# lowbit_layer(NAME DIRS dir... [DEPS layer...])
#   NAME  the include prefix of the folder ("io" for #include "io/...")
#   DIRS  folders whose *.cpp build the library and whose *.h/*.cpp are checked
#   DEPS  layers this one may include and link (their own DEPS are allowed too)
function(lowbit_layer name)
  cmake_parse_arguments(L "" "" "DIRS;DEPS" ${ARGN})
  set(sources "")
  set(checked "")
  foreach(dir ${L_DIRS})
    file(GLOB cpp CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/*.cpp)
    file(GLOB hdr CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/*.h)
    list(APPEND sources ${cpp})
    list(APPEND checked ${cpp} ${hdr})
  endforeach()
  set(allowed ${name})
  foreach(dep ${L_DEPS})
    list(FIND LOWBIT_LAYERS ${dep} known)
    if(known LESS 0)
      message(FATAL_ERROR "layer '${name}' depends on '${dep}', which is not declared before it")
    endif()
    get_property(dep_allowed GLOBAL PROPERTY LOWBIT_LAYER_ALLOWED_${dep})
    list(APPEND allowed ${dep_allowed})
  endforeach()
  list(REMOVE_DUPLICATES allowed)
  set_property(GLOBAL PROPERTY LOWBIT_LAYER_ALLOWED_${name} ${allowed})
  set(LOWBIT_LAYERS ${LOWBIT_LAYERS} ${name} CACHE INTERNAL "")

  add_library(lowbit_layer_${name} STATIC ${sources})
  target_link_libraries(lowbit_layer_${name} PUBLIC lowbit_headers)
  foreach(dep ${L_DEPS})
    target_link_libraries(lowbit_layer_${name} PUBLIC lowbit_layer_${dep})
  endforeach()

  set(stamp ${CMAKE_BINARY_DIR}/layer_check/${name}.stamp)
  string(REPLACE ";" "," allowed_csv "${allowed}")
  string(REPLACE ";" "," dirs_csv "${L_DIRS}")
  add_custom_command(OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DLAYER=${name} -DALLOWED=${allowed_csv} -DDIRS=${dirs_csv}
            -DROOT=${CMAKE_SOURCE_DIR} -DSTAMP=${stamp} -P ${CMAKE_SOURCE_DIR}/cmake/check_layer_includes.cmake
    DEPENDS ${checked} ${CMAKE_SOURCE_DIR}/cmake/check_layer_includes.cmake
    COMMENT "Checking that ${name}/ includes only: ${allowed}" VERBATIM)
  add_custom_target(lowbit_layer_${name}_includes DEPENDS ${stamp})
  add_dependencies(lowbit_layer_${name} lowbit_layer_${name}_includes)
endfunction()

# After the last layer: the list of every layer name, for the check script (a prefix that names
# no layer, like "gtest/", is not checked).
function(lowbit_layers_done)
  string(REPLACE ";" "," all_csv "${LOWBIT_LAYERS}")
  file(WRITE ${CMAKE_BINARY_DIR}/layer_check/layers.txt "${all_csv}")
endfunction()
