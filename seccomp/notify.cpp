// Supervisor side of SECCOMP_RET_USER_NOTIF: every denied call blocks in the
// kernel until we answer, so answer first and cheaply (EPERM, or ENOSYS for
// clone3), and turn the call into an event without ever reading the target's
// memory: only the syscall number, the six register values and the pid.
#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "seccomp/seccomp.hpp"

namespace sbx::seccomp {
namespace {

// Token bucket: a burst of kBurst events, then kPerSecond; the rest are
// counted and summarised, so a loop of denied calls cannot flood the log.
constexpr double kBurst = 32;
constexpr double kPerSecond = 10;

std::string errno_name(int e) {
  return e == ENOSYS ? "ENOSYS" : "EPERM";
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

const char* family_name(std::uint64_t f) {
  switch (f & 0xffffffff) {
    case AF_UNIX:
      return "AF_UNIX";
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_NETLINK:
      return "AF_NETLINK";
    case AF_PACKET:
      return "AF_PACKET";
    case AF_KEY:
      return "AF_KEY";
    case AF_ALG:
      return "AF_ALG";
    case AF_VSOCK:
      return "AF_VSOCK";
    default:
      return nullptr;
  }
}

std::string clone_flags(std::uint64_t flags) {
  static const std::pair<std::uint64_t, const char*> names[] = {
      {CLONE_NEWNS, "CLONE_NEWNS"},     {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
      {CLONE_NEWUTS, "CLONE_NEWUTS"},   {CLONE_NEWIPC, "CLONE_NEWIPC"},
      {CLONE_NEWUSER, "CLONE_NEWUSER"}, {CLONE_NEWPID, "CLONE_NEWPID"},
      {CLONE_NEWNET, "CLONE_NEWNET"}};
  std::string out;
  for (const auto& [bit, name] : names) {
    if (!(flags & bit)) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out;
}

// Argument details that need no memory access: numbers with a known meaning.
void decode(const std::string& name, const seccomp_data& d, nlohmann::json& data) {
  if (name == "socket" || name == "socketpair") {
    if (const char* f = family_name(d.args[0])) data["family"] = f;
    data["protocol"] = d.args[2];
  } else if (name == "ioctl") {
    const auto cmd = d.args[1] & 0xffffffff;
    data["request"] = cmd == 0x5412 ? "TIOCSTI" : cmd == 0x541C ? "TIOCLINUX" : hex(d.args[1]);
  } else if (name == "clone" || name == "unshare") {
    data["flags"] = clone_flags(d.args[0]);
  } else if (name == "personality") {
    data["persona"] = hex(d.args[0]);
  } else if (name == "ptrace") {
    data["request"] = d.args[0];
    data["target_pid"] = d.args[1];
  } else if (name == "process_vm_readv" || name == "process_vm_writev" || name == "kcmp" ||
             name == "pidfd_getfd") {
    data["target_pid"] = d.args[0];
  } else if (name == "bpf") {
    data["cmd"] = d.args[0];
  } else if (name == "keyctl") {
    data["operation"] = d.args[0];
  }
}

// /proc/PID/comm of the (blocked) caller: kernel-owned text, not the
// target's memory. Checked for pid reuse by SECCOMP_IOCTL_NOTIF_ID_VALID after.
std::string read_comm(std::uint32_t pid) {
  std::ifstream f(fmt::format("/proc/{}/comm", pid));
  std::string comm;
  std::getline(f, comm);
  return comm;
}

}  // namespace

struct NotifyListener::RateLimit {
  double tokens = kBurst;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  std::uint64_t suppressed = 0;
  std::map<std::uint32_t, std::uint64_t> suppressed_by_nr;
  std::uint64_t answered = 0;
  std::uint64_t reported = 0;
  std::vector<unsigned char> req;   // sized by SECCOMP_GET_NOTIF_SIZES: the
  std::vector<unsigned char> resp;  // kernel's structs may outgrow our headers

  bool take() {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - last).count();
    last = now;
    tokens = std::min(kBurst, tokens + elapsed * kPerSecond);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

NotifyListener::NotifyListener(int listener_fd, EventSink sink)
    : fd_(listener_fd), sink_(std::move(sink)), rate_(new RateLimit) {
  seccomp_notif_sizes sizes{};
  if (::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) {
    sizes.seccomp_notif = sizeof(seccomp_notif);
    sizes.seccomp_notif_resp = sizeof(seccomp_notif_resp);
  }
  rate_->req.assign(std::max<std::size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)), 0);
  rate_->resp.assign(std::max<std::size_t>(sizes.seccomp_notif_resp, sizeof(seccomp_notif_resp)),
                     0);
}

NotifyListener::~NotifyListener() {
  // Closing the listener makes every later notifying call fail with ENOSYS
  // (kernel), so a process outliving the supervisor never hangs on us.
  if (fd_ >= 0) ::close(fd_);
  delete rate_;
}

std::uint64_t NotifyListener::answered() const {
  return rate_->answered;
}
std::uint64_t NotifyListener::reported() const {
  return rate_->reported;
}

void NotifyListener::flush() {
  if (rate_->suppressed == 0) return;
  Event e;
  e.type = "syscall_denied_suppressed";
  e.data["count"] = rate_->suppressed;
  e.data["syscalls"] = nlohmann::json::object();
  for (const auto& [nr, n] : rate_->suppressed_by_nr) e.data["syscalls"][syscall_name(int(nr))] = n;
  rate_->suppressed = 0;
  rate_->suppressed_by_nr.clear();
  if (sink_) sink_(e);
}

bool NotifyListener::on_readable() {
  if (fd_ < 0) return false;
  for (;;) {
    // RECV blocks when nothing is pending (O_NONBLOCK is not honoured by
    // older kernels), so ask poll first; POLLHUP alone = no targets left.
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    if (!(p.revents & POLLIN)) return (p.revents & (POLLHUP | POLLERR | POLLNVAL)) == 0;

    auto* req = reinterpret_cast<seccomp_notif*>(rate_->req.data());
    std::fill(rate_->req.begin(), rate_->req.end(), 0);  // the kernel insists
    if (::ioctl(fd_, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;  // ENOENT: caller died meanwhile
      return true;
    }
    const seccomp_data d = req->data;
    const int err = d.nr == __NR_clone3 ? ENOSYS : EPERM;
    const bool report = rate_->take();

    std::string name;
    std::string comm;
    if (report) {
      name = d.arch == AUDIT_ARCH_X86_64 ? syscall_name(d.nr) : fmt::format("syscall_{}", d.nr);
      comm = read_comm(req->pid);
      // The pid may have been reused if the caller was killed meanwhile.
      std::uint64_t id = req->id;
      if (::ioctl(fd_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) comm.clear();
    }

    auto* resp = reinterpret_cast<seccomp_notif_resp*>(rate_->resp.data());
    std::fill(rate_->resp.begin(), rate_->resp.end(), 0);
    resp->id = req->id;
    resp->error = -err;
    resp->val = 0;
    resp->flags = 0;
    // ENOENT here means the caller was interrupted or killed: nothing to do.
    (void)::ioctl(fd_, SECCOMP_IOCTL_NOTIF_SEND, resp);
    ++rate_->answered;

    if (!report) {
      ++rate_->suppressed;
      ++rate_->suppressed_by_nr[static_cast<std::uint32_t>(d.nr)];
      continue;
    }
    flush();  // a summary of what the bucket held back comes first
    Event e;
    e.type = "syscall_denied";
    e.data["syscall"] = name;
    e.data["nr"] = d.nr;
    e.data["pid"] = req->pid;
    if (!comm.empty()) e.data["comm"] = comm;
    e.data["errno"] = errno_name(err);
    e.data["args"] = nlohmann::json::array();
    for (auto a : d.args) e.data["args"].push_back(a);
    decode(name, d, e.data);
    ++rate_->reported;
    if (sink_) sink_(e);
  }
}

}  // namespace sbx::seccomp
