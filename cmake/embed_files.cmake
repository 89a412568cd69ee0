# cmake -DOUT=header.h -DFILES=a|b|c -P embed_files.cmake
# Writes a C++ header with each file's text as a raw string literal, for generated projects
# (the MCU export's runtime files: framework/mcu/files).
set(body "// Generated from framework/mcu/files by cmake/embed_files.cmake. Do not edit.\n#pragma once\n\nnamespace lowbit::mcu::embedded {\n\nstruct File {\n  const char* name;\n  const char* text;\n};\n\ninline constexpr File files[] = {\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  file(READ ${f} text)
  get_filename_component(name ${f} NAME)
  string(APPEND body "    {\"${name}\", R\"LBEMBED(${text})LBEMBED\"},\n")
endforeach()
string(APPEND body "};\n\n}  // namespace lowbit::mcu::embedded\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
