# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed_bytes.cmake
#
# Writes IN's bytes as a C array: const unsigned char NAME[], and its size,
# const size_t NAME_size. For data the build makes (a FileDescriptorSet from
# protoc) that the library carries.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 16 bytes (80 characters) a line
string(REGEX REPLACE "((0x..,){16})" "\\1\n  " bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN} by embed_bytes.cmake. */\n"
  "#include <stddef.h>\n\n"
  "extern const unsigned char ${NAME}[];\n"
  "extern const size_t ${NAME}_size;\n"
  "const unsigned char ${NAME}[] = {\n  ${bytes}\n};\n"
  "const size_t ${NAME}_size = ${size};\n")
