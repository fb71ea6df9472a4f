// What `sbx run` records about one run: log, sandbox_start/exit, report.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <fmt/format.h>

#include "audit/audit.hpp"

namespace sbx::audit {
namespace {

bool is_within(const std::string& path, const std::string& dir) {
  if (dir.empty()) return false;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return path == d || d == "/" || path.starts_with(d + "/");
}

// The directory of `path` with symlinks resolved (the file may not exist yet).
std::string real_parent(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  char buf[PATH_MAX];
  if (::realpath(dir.c_str(), buf) == nullptr) return dir;
  return buf;
}

}  // namespace

RunRecorder::RunRecorder(const Policy& policy, const std::string& policy_text,
                         std::vector<std::string> argv, WarningSink warn,
                         const std::function<const char*(const char*)>& getenv_fn)
    : policy_(policy), policy_text_(policy_text), argv_(std::move(argv)), warn_(std::move(warn)) {
  who_.id = new_sandbox_id();
  who_.name = policy.name.empty()
                  ? fmt::format("{}-{}", sandbox_label(policy), who_.id.substr(0, 8))
                  : policy.name;
  const bool explicit_log = !policy.audit.log.empty();
  const std::string path =
      explicit_log ? policy.audit.log : default_log_path(sandbox_label(policy), getenv_fn);
  if (path.empty()) {
    if (warn_) warn_("no audit log: neither XDG_STATE_HOME nor HOME is set; give --audit-log FILE");
    return;
  }
  try {
    log_ = std::make_unique<LogWriter>(LogWriter::Options{path, policy.audit.max_size_bytes, 5});
  } catch (const Error& e) {
    if (explicit_log) throw;
    if (warn_) warn_(fmt::format("no audit log: {} ({})", e.what(), e.fix()));
    return;
  }
  // The sandbox must not be able to rewrite its own trail.
  const std::string where = real_parent(path) + "/";
  std::vector<std::string> writable = policy.filesystem.allow_write;
  if (policy.filesystem.workdir_writable) {
    std::string wd = policy.filesystem.workdir;
    if (wd.empty()) {
      char buf[PATH_MAX];
      if (::getcwd(buf, sizeof buf)) wd = buf;
    }
    writable.push_back(wd);
  }
  for (const auto& w : writable) {
    char buf[PATH_MAX];
    const std::string real = ::realpath(w.c_str(), buf) ? std::string(buf) : w;
    if (is_within(where, real)) {
      if (warn_) {
        warn_(fmt::format(
            "the audit log {} is inside {}, which the sandbox may write: it could alter the log; "
            "put it elsewhere (--audit-log FILE outside writable paths)",
            path, w));
      }
      break;
    }
  }
}

RunRecorder::~RunRecorder() = default;

std::string RunRecorder::log_path() const {
  return log_ ? log_->path() : std::string();
}

nlohmann::json RunRecorder::record(const Event& event) {
  auto r = to_record(event, who_, policy_.audit.level, ++seq_);
  report_.add(r);
  if (log_) log_->append(r);
  return r;
}

EventSink RunRecorder::sink() {
  return [this](const Event& e) { record(e); };
}

void RunRecorder::start() {
  record(start_event(policy_, policy_text_, argv_));
}

nlohmann::json RunRecorder::finish(const RunResult& result, const std::string& error) {
  Event e = exit_event(result);
  if (!error.empty()) e.data["error"] = error;
  if (log_) e.data["audit_dropped"] = log_->dropped();
  record(e);
  nlohmann::json j = report_.finish(who_, policy_, result);
  if (!error.empty()) j["error"] = error;
  if (log_) {
    j["audit_log"] = {{"path", log_->path()},
                      {"records", log_->written()},
                      {"dropped", log_->dropped()},
                      {"rotations", log_->rotations()}};
    if (log_->dropped() > 0 && warn_) {
      warn_(fmt::format("audit log {}: {} record(s) could not be written: {}", log_->path(),
                        log_->dropped(), log_->last_error()));
    }
  } else {
    j["audit_log"] = nullptr;
  }
  return j;
}

void write_report(const std::string& path, const nlohmann::json& report) {
  // Written beside the target and renamed: a reader never sees half a report.
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    throw Error(fmt::format("cannot write the run report {}: {}", path, std::strerror(errno)),
                "choose a writable file with --report FILE, or --report - for stderr");
  }
  const std::string text = report.dump(2) + "\n";
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("cannot write the run report {}: {}", path, std::strerror(err)),
                  "free space or choose another file with --report FILE");
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot write the run report {}: {}", path, std::strerror(err)),
                "choose a writable file with --report FILE");
  }
}

}  // namespace sbx::audit
