// Interim implementation so dependent modules link; the real filter follows.
#include "seccomp/seccomp.hpp"

#include <unistd.h>

#include <sbx/error.hpp>

namespace sbx::seccomp {

Program build_program(const ProcessPolicy& policy) {
  if (policy.seccomp == SeccompMode::none) return {};
  // Fail closed until the filter builder lands: never run "default" unfiltered.
  throw Error("seccomp filter builder not implemented yet",
              "use --seccomp none (or process.seccomp = \"none\") until it lands");
}

bool install(const Program& program, int* listener_fd, runtime::ChildError& err) {
  if (listener_fd != nullptr) *listener_fd = -1;
  if (program.instructions.empty()) return true;
  return err.fail("seccomp", 0, "not implemented");
}

struct NotifyListener::RateLimit {};

NotifyListener::NotifyListener(int listener_fd, EventSink sink)
    : fd_(listener_fd), sink_(std::move(sink)), rate_(new RateLimit) {}

NotifyListener::~NotifyListener() {
  if (fd_ >= 0) ::close(fd_);
  delete rate_;
}

void NotifyListener::on_readable() {}

}  // namespace sbx::seccomp
