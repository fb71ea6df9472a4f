// Argument filters: syscalls whose verdict depends on their arguments
// (clone's namespace flags, ioctl's TIOCSTI/TIOCLINUX, socket's family,
// personality's value). Private to seccomp/.
#pragma once

#include <seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include <sbx/policy.hpp>

namespace sbx::seccomp {

struct Comparison {
  unsigned arg;
  scmp_compare op;
  std::uint64_t a;
  std::uint64_t b = 0;
};
using Conjunction = std::vector<Comparison>;  // all must hold

// `allow` and `deny` are each a disjunction of conjunctions. A default-allow
// filter adds the deny side, a default-deny filter the allow side. Where both
// are given they are exact complements over all 64-bit argument values (the
// unit tests check this), so `default` and `strict` agree on the syscall.
struct ArgFilter {
  std::vector<Conjunction> allow;
  std::vector<Conjunction> deny;
};

const std::vector<std::string>& filtered_syscalls();
const ArgFilter& arg_filter(const std::string& syscall, SeccompMode mode);

}  // namespace sbx::seccomp
