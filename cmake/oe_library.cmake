# oe_library(NAME SOURCES file... [PUBLIC dep...] [PRIVATE dep...])
#
# The library of one folder under src/ (one library per folder). Its headers are included as "FOLDER/name.h"
# through an include folder of its own in the build tree (include/NAME/FOLDER, a link to the source folder), and
# that include folder is the library's only public one. So a target sees the headers of exactly the libraries it
# links, directly or through their PUBLIC dependencies: a header that includes a library its own does not depend on
# publicly, or code that includes a layer above it, fails to compile (tests/layering).
function(oe_library name)
  cmake_parse_arguments(L "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  get_filename_component(folder "${CMAKE_CURRENT_SOURCE_DIR}" NAME)
  set(include_root "${CMAKE_BINARY_DIR}/include/${name}")
  file(MAKE_DIRECTORY "${include_root}")
  file(CREATE_LINK "${CMAKE_CURRENT_SOURCE_DIR}" "${include_root}/${folder}" SYMBOLIC)
  add_library(${name} ${L_SOURCES})
  target_include_directories(${name} PUBLIC "${include_root}")
  target_link_libraries(${name} PUBLIC ${L_PUBLIC} PRIVATE ${L_PRIVATE})
endfunction()
