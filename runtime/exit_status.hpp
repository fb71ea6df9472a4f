// Exit codes of `sbx run` (docs/exit-codes.md).
#pragma once

#include <sys/wait.h>

#include <cerrno>
#include <sbx/error.hpp>

namespace sbx::runtime {

// The command's own code, or 128+N when signal N killed it (shell convention).
inline int exit_code_from_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitSbxError;
}

// execve's failure as the shell reports it: 127 when no such file, 126 when
// it exists but cannot be executed (permissions, format, noexec mount).
inline int exit_code_for_exec_errno(int error_number) {
  return error_number == ENOENT || error_number == ENOTDIR ? kExitNotFound : kExitNotExecutable;
}

}  // namespace sbx::runtime
