// Landlock: the filesystem policy again, enforced by the kernel's LSM rather
// than by mounts. Defence in depth: if a mount mask were ever bypassed, the
// command still may write only to its writable paths.
//
// What Landlock cannot express (rights only add up down a hierarchy): "the
// work dir is writable except .git/hooks" and "/ is readable except ~/.ssh".
// Those stay the job of the mount masks (mounts_plan.cpp); see
// docs/filesystem.md.
#include <dirent.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sbx/error.hpp>

#include <fcntl.h>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/host_paths.hpp"
#include "runtime/mount_plan.hpp"

namespace sbx::runtime {

namespace {

// The installed uapi header may predate the running kernel: spell out the
// newer rights ourselves.
constexpr std::uint64_t kTruncate = 1ULL << 14;          // ABI 3
constexpr std::uint64_t kIoctlDev = 1ULL << 15;          // ABI 5
constexpr std::uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ULL << 1;        // ABI 6

struct RulesetAttr {  // struct landlock_ruleset_attr, ABI 6 layout
  std::uint64_t handled_access_fs;
  std::uint64_t handled_access_net;
  std::uint64_t scoped;
};

constexpr std::uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t kExec = LANDLOCK_ACCESS_FS_EXECUTE;
constexpr std::uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                      LANDLOCK_ACCESS_FS_READ_FILE | kTruncate | kIoctlDev;

std::uint64_t handled_for_abi(int abi) {
  std::uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) all |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) all |= kTruncate;
  if (abi >= 5) all |= kIoctlDev;
  return all;
}

std::string real_or_same(const std::string& p) {
  return existing_real_path(p).value_or(p);
}

constexpr std::size_t kMaxReadRules = 4096;

}  // namespace

struct LandlockPlanData {
  struct Rule {
    std::string path;
    std::uint64_t access = 0;
  };
  LandlockMode mode = LandlockMode::off;
  int abi = 0;
  std::uint64_t handled = 0;
  std::uint64_t scoped = 0;
  std::vector<Rule> rules;
  std::string status;
};

namespace {

// Read access everywhere except the hidden paths. Landlock cannot subtract,
// so instead of one rule on "/" every directory on the way to a hidden path
// gets only READ_DIR (listing; inherited, harmless: the mask is empty) and
// each of its other entries gets full read. Entries are listed now, on the
// host; what appears later in such a directory is not readable (the mounts
// still decide what exists). Falls back to "/" when that would take too many
// rules.
void add_readable_tree(LandlockPlanData& d, const Policy& policy, std::uint64_t read) {
  std::vector<std::string> hidden;
  // Most hidden paths share their parents (~, ~/.config): resolved once.
  std::map<std::string, std::optional<std::string>> resolved;
  const auto real_of = [&](const std::string& path) -> const std::optional<std::string>& {
    auto [it, fresh] = resolved.try_emplace(path);
    if (fresh) it->second = existing_real_path(path);
    return it->second;
  };
  for (const auto& p : policy.filesystem.deny_read) {
    if (p.empty() || p[0] != '/') continue;
    // A hidden path that does not exist yet (~/.config/gh before `gh auth
    // login`) is kept too, below its nearest existing ancestor: that
    // ancestor then gets only READ_DIR, so what the host creates there
    // during the run is not readable (the mounts hide only what exists).
    std::string rest;
    std::string at = p;
    std::optional<std::string> real;
    while (!(real = real_of(at)) && at.size() > 1) {
      const auto slash = at.rfind('/');
      rest = at.substr(slash) + rest;
      at = slash == 0 ? "/" : at.substr(0, slash);
    }
    if (!real) continue;
    std::string path = *real == "/" ? (rest.empty() ? "/" : rest) : *real + rest;
    if (path != "/") hidden.push_back(std::move(path));
  }
  auto within = [](const std::string& path, const std::string& root) {
    return root == "/" || (path.compare(0, root.size(), root) == 0 &&
                           (path.size() == root.size() || path[root.size()] == '/'));
  };
  std::vector<LandlockPlanData::Rule> rules;
  bool overflow = false;
  // Depth-first over the ancestors of hidden paths only.
  std::vector<std::string> todo{"/"};
  while (!todo.empty() && !overflow) {
    std::string dir = todo.back();
    todo.pop_back();
    rules.push_back({dir, LANDLOCK_ACCESS_FS_READ_DIR});
    DIR* dp = ::opendir(dir.c_str());
    if (dp == nullptr) continue;
    while (struct dirent* e = ::readdir(dp)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = dir == "/" ? "/" + name : dir + "/" + name;
      bool is_hidden = false, is_ancestor = false;
      for (const auto& h : hidden) {
        if (within(path, h))
          is_hidden = true;
        else if (within(h, path))
          is_ancestor = true;
      }
      if (is_hidden) continue;
      struct stat st {};
      // A symlink's target is checked by its own path: no rule for the link.
      if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
      if (is_ancestor && S_ISDIR(st.st_mode))
        todo.push_back(path);
      else
        rules.push_back({path, read});
      if (rules.size() > kMaxReadRules) overflow = true;
    }
    ::closedir(dp);
  }
  if (hidden.empty() || overflow) {
    d.rules.push_back({"/", read});
  } else {
    for (auto& r : rules) d.rules.push_back(std::move(r));
    // `visible` paths below a hidden one are readable again.
    for (const auto& p : policy.filesystem.allow_read) {
      if (p.empty() || p[0] != '/') continue;
      if (auto real = existing_real_path(p)) d.rules.push_back({std::move(*real), read});
    }
  }
}

}  // namespace

LandlockPlan::LandlockPlan() : data_(std::make_unique<LandlockPlanData>()) {}
LandlockPlan::LandlockPlan(LandlockPlan&&) noexcept = default;
LandlockPlan& LandlockPlan::operator=(LandlockPlan&&) noexcept = default;
LandlockPlan::~LandlockPlan() = default;

const std::string& landlock_status(const LandlockPlan& plan) {
  return plan.data().status;
}

LandlockPlan prepare_landlock(const Policy& policy) {
  LandlockPlan plan;
  auto& d = plan.data();
  d.mode = policy.process.landlock;
  if (d.mode == LandlockMode::off) {
    d.status = "landlock off (policy)";
    return plan;
  }
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    int e = errno;
    std::string why = e == EOPNOTSUPP ? "disabled at boot"
                      : e == ENOSYS   ? "not built into this kernel"
                                      : std::strerror(e);
    if (d.mode == LandlockMode::required)
      throw Error(fmt::format("Landlock is required by the policy but unavailable: {}", why),
                  "boot with landlock in the lsm= list (Linux >= 5.13), or set landlock = "
                  "\"best-effort\"");
    d.mode = LandlockMode::off;
    d.status = fmt::format("landlock unavailable ({}): not applied", why);
    return plan;
  }
  d.abi = static_cast<int>(abi);
  // "required" means every right sbx relies on is enforced: truncate (ABI 3)
  // closes the O_TRUNC hole of older ABIs.
  if (d.mode == LandlockMode::required && d.abi < 3)
    throw Error(fmt::format("Landlock ABI {} cannot enforce the whole policy (truncation is not "
                            "restricted before ABI 3, Linux 6.2)",
                            d.abi),
                "upgrade the kernel, or set landlock = \"best-effort\"");
  d.handled = handled_for_abi(d.abi);
  // Abstract unix sockets and signals stay inside the sandbox (ABI 6): with
  // --net host the host's @/tmp/.X11-unix and friends are otherwise reachable.
  if (d.abi >= 6) d.scoped = kScopeAbstractUnix | kScopeSignal;
  const std::uint64_t all = d.handled;
  auto add = [&](const std::string& path, std::uint64_t access) {
    d.rules.push_back({path, access & all});
  };
  add_readable_tree(d, policy, kRead | kExec);
  add("/dev", kRead | LANDLOCK_ACCESS_FS_WRITE_FILE | kTruncate | kIoctlDev);
  add("/proc", kRead | LANDLOCK_ACCESS_FS_WRITE_FILE | kTruncate);
  add("/tmp", all);
  add("/dev/shm", all);
  const std::string base = current_dir();
  auto abs = [&](const std::string& p) { return p.empty() || p[0] == '/' ? p : base + "/" + p; };
  const auto& fs = policy.filesystem;
  if (fs.workdir_writable) add(real_or_same(fs.workdir.empty() ? base : abs(fs.workdir)), all);
  for (const auto& p : fs.allow_write) add(real_or_same(abs(p)), all);
  for (const auto& t : fs.tmpfs) add(abs(t.path), all);
  d.status = fmt::format("landlock ABI {} ({})", d.abi,
                         d.mode == LandlockMode::required ? "required" : "best-effort");
  return plan;
}

bool apply_landlock(const LandlockPlan& plan, ChildError& err) {
  const LandlockPlanData& d = plan.data();
  if (d.mode == LandlockMode::off) return true;
  const bool required = d.mode == LandlockMode::required;
  RulesetAttr attr{d.handled, 0, d.scoped};
  std::size_t size = d.abi >= 6 ? sizeof attr : sizeof attr.handled_access_fs;
  int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return required ? err.fail("landlock_create_ruleset", errno) : true;
  for (const auto& rule : d.rules) {
    int fd = ::open(rule.path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) continue;  // not in this sandbox: nothing to allow
    struct stat st {};
    std::uint64_t access = rule.access;
    if (::fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) access &= kFileRights;
    struct landlock_path_beneath_attr pb {};
    pb.allowed_access = access;
    pb.parent_fd = fd;
    long rc = ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    ::close(fd);
    if (rc != 0 && required) {
      ::close(ruleset);
      return err.fail("landlock_add_rule", e, rule.path.c_str());
    }
  }
  long rc = ::syscall(SYS_landlock_restrict_self, ruleset, 0);
  int e = errno;
  ::close(ruleset);
  if (rc != 0 && required) return err.fail("landlock_restrict_self", e);
  return true;
}

}  // namespace sbx::runtime
