# gitrev.cmake — writes version.h with the source tree's git revision, at
# build time (a `make` after a pull or a commit records the new revision in
# every results file, not the one seen when cmake first ran). "-dirty" is
# appended when tracked files differ from HEAD; "unknown" outside a git
# checkout. The file is rewritten only when its text changes, so an
# unchanged revision rebuilds nothing.
# Inputs: -DSRC=<source dir> -DIN=<version.h.in> -DOUT=<version.h> -DPROJECT_VERSION=<x.y.z>
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE MECHDIFF_GIT_REV
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT MECHDIFF_GIT_REV)
  set(MECHDIFF_GIT_REV "unknown")
else()
  # `git diff` compares contents (diff-index alone trusts the index's stat
  # data: a touched but unchanged file would read as dirty)
  execute_process(COMMAND git diff --quiet --no-ext-diff HEAD --
    WORKING_DIRECTORY ${SRC} RESULT_VARIABLE dirty OUTPUT_QUIET ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    string(APPEND MECHDIFF_GIT_REV "-dirty")
  endif()
endif()
configure_file(${IN} ${OUT}.tmp @ONLY)
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)
