# cmake -DSBX=... -DSHELL_NAME=bash|zsh|fish -DOUT=FILE -P completion.cmake
# Writes what `sbx completion SHELL_NAME` prints to OUT (build time).
execute_process(COMMAND ${SBX} completion ${SHELL_NAME} OUTPUT_FILE ${OUT}.tmp
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sbx completion ${SHELL_NAME} failed: ${rc}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
