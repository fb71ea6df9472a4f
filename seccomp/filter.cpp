// Policy -> FilterPlan -> BPF. Runs in the supervisor, before clone: the
// worker only receives the finished instructions (see install.cpp).
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <sbx/error.hpp>

#include "seccomp/arg_filters.hpp"
#include "seccomp/seccomp.hpp"

namespace sbx::seccomp {
namespace {

const char* mode_name(SeccompMode m) {
  switch (m) {
    case SeccompMode::default_policy:
      return "default";
    case SeccompMode::strict:
      return "strict";
    case SeccompMode::none:
      return "none";
  }
  return "?";
}

void set_all(FilterPlan& plan, const std::string& entry, Verdict v) {
  for (const auto& name : expand(entry)) plan.rules[name] = v;
}

// RAII for libseccomp's context.
struct Context {
  scmp_filter_ctx ctx;
  explicit Context(std::uint32_t def) : ctx(seccomp_init(def)) {
    if (ctx == nullptr) throw Error("seccomp: cannot initialise libseccomp (out of memory?)");
  }
  ~Context() { seccomp_release(ctx); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
};

void check(int rc, const std::string& what) {
  if (rc < 0)
    throw Error(fmt::format("seccomp: {}: {}", what, std::strerror(-rc)),
                "this is a bug in sbx's filter tables; report it with the profile used");
}

std::vector<scmp_arg_cmp> to_cmp(const Conjunction& conj) {
  std::vector<scmp_arg_cmp> out;
  for (const auto& c : conj) out.push_back(scmp_arg_cmp{c.arg, c.op, c.a, c.b});
  return out;
}

std::vector<sock_filter> export_bpf(scmp_filter_ctx ctx) {
  // libseccomp 2.5 exports only to an fd; a memfd keeps it off the filesystem.
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "sbx-seccomp-bpf", MFD_CLOEXEC));
  if (fd < 0) throw Error(fmt::format("seccomp: memfd_create: {}", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  check(seccomp_export_bpf(ctx, fd), "export BPF");
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0)
    throw Error("seccomp: exported BPF has an odd size");
  std::vector<sock_filter> prog(static_cast<std::size_t>(size) / sizeof(sock_filter));
  auto* p = reinterpret_cast<char*>(prog.data());
  std::size_t done = 0;
  while (done < static_cast<std::size_t>(size)) {
    ssize_t n =
        ::pread(fd, p + done, static_cast<std::size_t>(size) - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("seccomp: reading exported BPF: {}", std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
  // The kernel caps a filter at BPF_MAXINSNS (4096) instructions.
  if (prog.size() > BPF_MAXINSNS)
    throw Error(fmt::format("seccomp filter too large ({} instructions)", prog.size()),
                "shorten process.seccomp_allow / seccomp_deny");
  return prog;
}

}  // namespace

Verdict FilterPlan::verdict(const std::string& name) const {
  auto it = rules.find(name);
  return it == rules.end() ? fallback : it->second;
}

FilterPlan plan_filter(const ProcessPolicy& policy) {
  FilterPlan plan;
  plan.mode = policy.seccomp;
  switch (policy.seccomp) {
    case SeccompMode::none:
      plan.fallback = Verdict::allow;
      break;
    case SeccompMode::default_policy:
      plan.fallback = Verdict::allow;
      set_all(plan, "@default-deny", Verdict::deny);
      break;
    case SeccompMode::strict:
      plan.fallback = Verdict::deny;
      set_all(plan, "@system-service", Verdict::allow);
      // strict never allows what default denies.
      set_all(plan, "@default-deny", Verdict::deny);
      break;
  }
  if (policy.seccomp != SeccompMode::none) {
    for (const auto& name : filtered_syscalls()) plan.rules[name] = Verdict::filtered;
    // clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes
    // glibc (>= 2.34) fall back to clone, whose flags are checked.
    plan.rules["clone3"] = Verdict::enosys;
  }
  // The profile's lists apply on top, deny last so it wins over allow. An
  // allowed syscall is allowed whatever its arguments.
  for (const auto& e : policy.seccomp_allow)
    for (const auto& name : expand(e, "process.seccomp_allow")) plan.rules[name] = Verdict::allow;
  for (const auto& e : policy.seccomp_deny)
    for (const auto& name : expand(e, "process.seccomp_deny")) plan.rules[name] = Verdict::deny;
  return plan;
}

bool notify_supported() {
  std::uint32_t action = SECCOMP_RET_USER_NOTIF;
  if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0) return false;
  return seccomp_api_get() >= 5;  // libseccomp's own notify support
}

std::vector<sock_filter> compile(const FilterPlan& plan, bool notify) {
  const std::uint32_t deny_action = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);
  const bool default_allow = plan.fallback == Verdict::allow;
  Context c(default_allow ? SCMP_ACT_ALLOW : deny_action);
  // Another ABI's syscall numbers mean other syscalls, and i386's socketcall
  // hides socket()'s family in memory: kill, never guess (the only kill).
  check(seccomp_attr_set(c.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action");
  // The launcher sets no_new_privs itself; the exported program carries no flag.
  check(seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0), "no_new_privs attribute");
  // Binary search over syscall numbers instead of a linear chain.
  check(seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimize attribute");

  for (const auto& [name, verdict] : plan.rules) {
    const int nr = syscall_number(name);
    if (nr < 0) continue;  // not a syscall on this architecture
    const std::string what = fmt::format("rule for {}", name);
    switch (verdict) {
      case Verdict::allow:
        if (!default_allow) check(seccomp_rule_add(c.ctx, SCMP_ACT_ALLOW, nr, 0), what);
        break;
      case Verdict::deny:
        if (default_allow) check(seccomp_rule_add(c.ctx, deny_action, nr, 0), what);
        break;
      case Verdict::enosys:
        check(seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0), what);
        break;
      case Verdict::filtered: {
        const ArgFilter& f = arg_filter(name, plan.mode);
        const auto& side = default_allow ? f.deny : f.allow;
        if (side.empty())
          throw Error(fmt::format("seccomp: no {} rules for {} in mode {}",
                                  default_allow ? "deny" : "allow", name, mode_name(plan.mode)));
        for (const auto& conj : side) {
          auto cmp = to_cmp(conj);
          check(seccomp_rule_add_array(c.ctx, default_allow ? deny_action : SCMP_ACT_ALLOW, nr,
                                       static_cast<unsigned>(cmp.size()), cmp.data()),
                what);
        }
        break;
      }
    }
  }
  return export_bpf(c.ctx);
}

std::vector<sock_filter> without_notify(std::vector<sock_filter> program) {
  // libseccomp ends every path with a constant return (BPF_RET|BPF_K); the
  // notify action appears only there. Swapping it for EPERM is exactly the
  // program compile(plan, false) yields, for half the start-up work.
  for (auto& insn : program) {
    if (insn.code == (BPF_RET | BPF_K) && insn.k == SECCOMP_RET_USER_NOTIF) {
      insn.k = SECCOMP_RET_ERRNO | EPERM;
    }
  }
  return program;
}

Program build_program(const ProcessPolicy& policy) {
  const FilterPlan plan = plan_filter(policy);
  Program p;
  if (plan.fallback == Verdict::allow && plan.rules.empty()) return p;  // mode none
  if (notify_supported()) {
    if (!prebuilt_notify_program(plan, p.instructions)) p.instructions = compile(plan, true);
    p.fallback_instructions = without_notify(p.instructions);
    p.uses_notify = true;
  } else {
    p.fallback_instructions = compile(plan, false);
    p.instructions = p.fallback_instructions;
  }
  return p;
}

}  // namespace sbx::seccomp
