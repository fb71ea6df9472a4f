// The probe part of `sbx check`: one real sandbox of the profile (through
// sbx::run, exactly as `sbx run` builds it) runs sbx-probe's batch of
// attempts; each protection row is decided from the errno, signal or value
// the attempt got. The sandbox works in a scratch directory of its own, so
// the user's files are never touched: the protected files of the work dir
// are created there as fixtures.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sbx/sbx.hpp>

#include <fmt/format.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "check/probes.hpp"
#include "profiles/profiles.hpp"

namespace sbx::check {
namespace {

namespace fs = std::filesystem;

// One attempt of the batch and what it got.
struct Outcome {
  bool ran = false;
  bool signaled = false;
  int code = 0;  // exit code, or the signal number
  long ms = 0;
  std::string out;  // "ok ...", "errno=EPERM", "setup: ..."
  bool ok() const { return ran && !signaled && code == 0; }
  bool failed_with_errno() const { return ran && !signaled && code == 1; }
  std::string errno_name() const {
    return out.starts_with("errno=") ? out.substr(6) : std::string();
  }
  std::string show() const {
    if (!ran) return "did not run";
    if (signaled)
      return code == SIGSYS ? "killed by SIGSYS" : fmt::format("killed by signal {}", code);
    std::string s = out.empty() ? fmt::format("exit {}", code) : out;
    // Slow attempts say so: a hint when a loaded machine is the cause.
    return ms >= 1000 ? fmt::format("{} ({} ms)", s, ms) : s;
  }
};

struct Attempt {
  std::string label;
  std::vector<std::string> argv;  // OP ARGS...
};

struct BatchRun {
  bool started = false;
  std::string error, fix;  // when it did not start
  std::map<std::string, Outcome> results;
  std::vector<std::string> warnings;
  std::vector<Event> events;
  std::string raw;
};

// Keeps fds 0-2 of sbx check while the sandbox writes into a memfd.
class CapturedStdio {
 public:
  CapturedStdio() : memfd_(memfd_create("sbx-check", MFD_CLOEXEC)) {
    for (int fd = 0; fd < 3; ++fd) saved_[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      close(null);
    }
    if (memfd_ >= 0) {
      dup2(memfd_, 1);
      dup2(memfd_, 2);
    }
  }
  ~CapturedStdio() { restore(); }
  std::string restore_and_read() {
    restore();
    std::string out;
    if (memfd_ < 0) return out;
    lseek(memfd_, 0, SEEK_SET);
    char buf[8192];
    ssize_t n;
    while ((n = read(memfd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(memfd_);
    memfd_ = -1;
    return out;
  }
  CapturedStdio(const CapturedStdio&) = delete;
  CapturedStdio& operator=(const CapturedStdio&) = delete;

 private:
  void restore() {
    for (int fd = 0; fd < 3; ++fd) {
      if (saved_[fd] >= 0) {
        dup2(saved_[fd], fd);
        close(saved_[fd]);
        saved_[fd] = -1;
      }
    }
  }
  int memfd_;
  int saved_[3] = {-1, -1, -1};
};

std::map<std::string, Outcome> parse_batch(const std::string& raw) {
  std::map<std::string, Outcome> results;
  std::istringstream lines(raw);
  std::string line;
  while (std::getline(lines, line)) {
    // LABEL \t exit=N|signal=N \t ms=T \t OUTPUT
    std::vector<std::string> f;
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      std::size_t tab = line.find('\t', start);
      if (tab == std::string::npos) break;
      f.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    if (f.size() != 3) continue;
    Outcome o;
    o.ran = true;
    o.out = line.substr(start);
    if (f[1].starts_with("signal=")) {
      o.signaled = true;
      o.code = std::atoi(f[1].c_str() + 7);
    } else if (f[1].starts_with("exit=")) {
      o.code = std::atoi(f[1].c_str() + 5);
    } else {
      continue;
    }
    if (f[2].starts_with("ms=")) o.ms = std::atol(f[2].c_str() + 3);
    results[f[0]] = o;
  }
  return results;
}

BatchRun run_batch(const Policy& profile_policy, const std::string& probe,
                   const std::vector<Attempt>& attempts, std::chrono::milliseconds timeout) {
  BatchRun run;
  // Bounded: a probe that hangs must not hang sbx check. Its attempts then
  // have no result and are unverified: the promises do not hold (exit 1).
  Policy policy = profile_policy;
  if (!policy.limits.timeout || *policy.limits.timeout > timeout) policy.limits.timeout = timeout;
  policy.limits.kill_after = std::chrono::seconds(2);
  RunOptions options;
  options.argv = {probe, "batch"};
  for (const auto& a : attempts) {
    if (options.argv.size() > 2) options.argv.push_back(";");
    options.argv.push_back(a.label);
    options.argv.insert(options.argv.end(), a.argv.begin(), a.argv.end());
  }
  options.on_warning = [&run](const std::string& w) { run.warnings.push_back(w); };
  options.on_event = [&run](const Event& e) { run.events.push_back(e); };
  CapturedStdio capture;
  try {
    RunResult result = sbx::run(policy, options);
    run.started = true;
    run.raw = capture.restore_and_read();
    if (result.timed_out) {
      run.warnings.push_back(fmt::format(
          "the probe sandbox did not finish within {} s and was stopped: attempts without a "
          "result are unverified, so the promises do not hold (on a loaded machine, give it "
          "longer with --timeout)",
          std::chrono::duration_cast<std::chrono::seconds>(*policy.limits.timeout).count()));
    } else if (result.exit_code != 0) {
      run.warnings.push_back(
          fmt::format("the probe batch exited {}: {}", result.exit_code, run.raw.substr(0, 400)));
    }
  } catch (const sbx::Error& e) {
    run.raw = capture.restore_and_read();
    run.error = e.what();
    run.fix = e.fix();
    return run;
  }
  run.results = parse_batch(run.raw);
  return run;
}

// The scratch directory of one check: removed in the destructor.
class Scratch {
 public:
  Scratch() {
    std::string base = "/var/tmp";
    if (access(base.c_str(), W_OK) != 0) {
      const char* t = std::getenv("TMPDIR");
      base = t && *t ? t : "/tmp";
    }
    std::string tmpl = base + "/sbx-check.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      throw Error(
          fmt::format("cannot create a scratch directory in {}: {}", base, std::strerror(errno)),
          "make /var/tmp or $TMPDIR writable");
    }
    root_ = tmpl;
    chmod(root_.c_str(), 0755);
    fs::create_directories(work());
    fs::create_directories(outside());
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::string work() const { return root_ + "/work"; }
  std::string outside() const { return root_ + "/outside"; }

 private:
  std::string root_;
};

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// A host loopback service the sandbox must not reach (only 127.0.0.1).
class LoopbackListener {
 public:
  LoopbackListener() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd_, 4) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~LoopbackListener() {
    if (fd_ >= 0) close(fd_);
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// ------------------------------------------------------------ row building

struct RowBuilder {
  std::vector<Row>& rows;
  const std::map<std::string, Outcome>& r;

  const Outcome& get(const std::string& label) const {
    static const Outcome missing;
    auto it = r.find(label);
    return it == r.end() ? missing : it->second;
  }

  // A row decided by a list of (label, contained?) checks.
  void add(std::string area, std::string name, bool promised,
           const std::vector<std::pair<std::string, bool>>& checks, std::string why_exposed,
           std::string fix, std::string not_promised_why = {}) {
    Row row;
    row.area = std::move(area);
    row.name = std::move(name);
    row.promised = promised;
    bool all_ran = true, all_contained = true;
    for (const auto& [label, contained] : checks) {
      const Outcome& o = get(label);
      if (!row.detail.empty()) row.detail += "; ";
      row.detail += fmt::format("{}: {}", label, o.show());
      if (!o.ran || (!o.signaled && o.code >= 2)) all_ran = false;
      if (!contained) all_contained = false;
    }
    if (!all_ran) {
      row.verdict = Verdict::unsupported;
      row.why = "the probe could not run this attempt";
      row.fix = "see the detail; reinstall sbx-probe if it is outdated";
    } else if (all_contained) {
      row.verdict = promised ? Verdict::contained : Verdict::not_applicable;
      if (!promised) row.why = not_promised_why + " (contained here anyway)";
    } else if (promised) {
      row.verdict = Verdict::exposed;
      row.why = std::move(why_exposed);
      row.fix = std::move(fix);
    } else {
      row.verdict = Verdict::not_applicable;
      row.why = std::move(not_promised_why);
    }
    rows.push_back(std::move(row));
  }
};

bool is_zero_mask(const std::string& caps, const std::string& key) {
  auto pos = caps.find(key + ":");
  if (pos == std::string::npos) return false;
  std::istringstream in(caps.substr(pos + key.size() + 1));
  std::string value;
  in >> value;
  return !value.empty() && value.find_first_not_of('0') == std::string::npos;
}

std::string field(const std::string& text, const std::string& key) {
  auto pos = text.find(key + ":");
  if (pos == std::string::npos) {
    pos = text.find(key + "=");
    if (pos == std::string::npos) return {};
  }
  std::istringstream in(text.substr(pos + key.size() + 1));
  std::string value;
  in >> value;
  return value;
}

bool empty_or_denied(const Outcome& o) {
  return o.failed_with_errno() || o.out == "ok bytes=0" || o.out == "ok entries=0";
}

}  // namespace

std::vector<Row> protection_rows(const Policy& resolved_for_cwd, const ProbeContext& ctx,
                                 std::vector<std::string>& notes) {
  std::vector<Row> rows;
  Scratch scratch;
  // The profile again, with $CWD = the scratch work dir: its work-dir
  // protections then apply to fixtures, never to the user's files.
  profiles::Environment env = profiles::Environment::from_process();
  env.cwd = scratch.work();
  Policy policy = profiles::resolve(ctx.profile, {}, env);
  policy.name = fmt::format("sbx-check-{}", getpid());
  policy.process.tty = TtyMode::never;
  policy.audit.report.clear();
  (void)resolved_for_cwd;

  const std::string W = scratch.work();
  const std::string hidden_canary = W + "/.sbx-check-hidden";
  write_text(hidden_canary, "sbx check canary\n");
  policy.filesystem.deny_read.push_back(hidden_canary);

  // Fixtures for the work-dir files the profile protects.
  const auto& dw = policy.filesystem.deny_write;
  const auto protects = [&](const std::string& rel) {
    return std::find(dw.begin(), dw.end(), W + "/" + rel) != dw.end();
  };
  const bool git_protected = protects(".git/hooks") || protects(".git/config");
  if (git_protected) {
    write_text(W + "/.git/HEAD", "ref: refs/heads/main\n");
    write_text(W + "/.git/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n");
    fs::create_directories(W + "/.git/hooks");
    fs::create_directories(W + "/.git/objects");
    fs::create_directories(W + "/.git/refs/heads");
  }
  std::vector<std::pair<std::string, std::string>> work_targets;  // label, path written
  const std::vector<std::pair<std::string, bool>> fixtures = {
      {".git/hooks", true}, {".git/config", false},     {".bashrc", false},
      {".mcp.json", false}, {".claude/commands", true}, {".vscode", true}};
  for (const auto& [rel, is_dir] : fixtures) {
    if (!protects(rel)) continue;
    if (is_dir) {
      fs::create_directories(W + "/" + rel);
    } else if (!fs::exists(W + "/" + rel)) {
      write_text(W + "/" + rel, "# sbx check fixture\n");
    }
    work_targets.emplace_back("protect:" + rel, W + "/" + rel + (is_dir ? "/sbx-check" : ""));
  }

  LoopbackListener loopback;
  std::vector<Attempt> attempts = {
      {"caps", {"caps"}},
      {"kill-supervisor", {"syscall", "62", std::to_string(getpid()), "0"}},
      {"ptrace-init", {"ptrace-attach", "1"}},
      {"x32", {"x32"}},
      {"int80", {"int80"}},
      {"io_uring", {"io_uring_setup"}},
      {"af_alg", {"socket-alg"}},
      {"af_alg-high", {"socket-alg-high"}},
      {"af_vsock", {"socket-vsock"}},
      {"tiocsti", {"tiocsti"}},
      {"tiocsti-high", {"tiocsti-high"}},
      {"unshare-user", {"unshare-user"}},
      {"clone-newuser", {"clone-newuser"}},
      {"mount", {"mount"}},
      {"open_tree", {"open_tree"}},
      {"fsopen", {"fsopen"}},
      {"clone3", {"clone3"}},
      {"keyctl", {"keyctl"}},
      {"bpf", {"bpf"}},
      {"perf_event_open", {"perf_event_open"}},
      {"userfaultfd", {"userfaultfd"}},
      {"write-outside", {"write-file", scratch.outside() + "/sbx-check"}},
      {"hidden-canary", {"read-file", hidden_canary}},
      {"proc-kallsyms", {"read-file", "/proc/kallsyms"}},
      {"proc-sys-write", {"write-file", "/proc/sys/kernel/domainname"}},
      {"limits", {"limits"}},
  };
  for (const auto& [label, path] : work_targets) attempts.push_back({label, {"write-file", path}});
  if (git_protected) attempts.push_back({"git-commondir", {"write-file", W + "/.git/commondir"}});
  // The profile's own hidden paths that exist here: read them (never write).
  std::vector<std::string> credential_labels;
  for (const auto& p : policy.filesystem.deny_read) {
    if (p == hidden_canary || credential_labels.size() >= 16) continue;
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) continue;
    std::string label = "hidden:" + p;
    credential_labels.push_back(label);
    attempts.push_back({label, {S_ISDIR(st.st_mode) ? "list-dir" : "read-file", p}});
  }
  const bool netns = policy.network.mode != NetworkMode::host;
  if (netns) {
    // Destinations that only the sandbox's own filter (or its empty
    // netns) answers: TEST-NET addresses, link-local, loopback.
    attempts.push_back({"connect-ipv4", {"connect", "198.51.100.7", "443"}});
    attempts.push_back({"connect-ipv6", {"connect", "2001:db8::7", "443"}});
    attempts.push_back({"metadata", {"connect", "169.254.169.254", "80"}});
    attempts.push_back({"dns-other", {"dns", "198.51.100.53", "sbx-check.invalid"}});
  }
  if (loopback.port() > 0) {
    attempts.push_back(
        {"host-loopback", {"connect", "127.0.0.1", std::to_string(loopback.port())}});
  }

  BatchRun run = run_batch(policy, ctx.probe, attempts, ctx.timeout);
  bool limits_refused = false;
  std::string limits_error, limits_fix;
  if (!run.started && policy.limits.required) {
    // Try again without limits.required: if that starts, the limits were
    // the reason, and every other protection can still be shown.
    Policy relaxed = policy;
    relaxed.limits.required = false;
    BatchRun retry = run_batch(relaxed, ctx.probe, attempts, ctx.timeout);
    if (retry.started) {
      limits_refused = true;
      limits_error = run.error;
      limits_fix = run.fix;
      run = std::move(retry);
      notes.push_back(fmt::format(
          "{} refuses to start for this user: {} The rows below come from a sandbox with "
          "limits.required = false.",
          ctx.profile, limits_error));
    }
  }
  if (!run.started) {
    Row row;
    row.area = "sandbox";
    row.name = fmt::format("a {} sandbox starts", ctx.profile);
    row.verdict = Verdict::unsupported;
    row.promised = true;
    row.detail = run.raw.substr(0, 300);
    row.why = run.error;
    row.fix = run.fix;
    rows.push_back(row);
    return rows;
  }
  for (const auto& w : run.warnings) {
    // The planted .git/commondir below is ours: its warning is the row.
    if (w.find(W + "/.git/commondir") == std::string::npos) notes.push_back(w);
  }

  RowBuilder b{rows, run.results};
  const auto& o = [&](const std::string& l) -> const Outcome& { return b.get(l); };
  const bool seccomp_on = policy.process.seccomp != SeccompMode::none;
  const std::string seccomp_off_why = "the profile turns seccomp off";
  const std::string seccomp_fix =
      "do not run with process.seccomp.mode = \"none\"; if sbx-test-hooks or SBX_TEST_BREAK is "
      "in use, use the real sbx";

  // Identity.
  const std::string caps = o("caps").out;
  b.add("identity", "no capabilities, no_new_privs", true,
        {{"caps", is_zero_mask(caps, "CapEff") && is_zero_mask(caps, "CapPrm") &&
                      is_zero_mask(caps, "CapBnd") && is_zero_mask(caps, "CapAmb") &&
                      field(caps, "NoNewPrivs") == "1"}},
        "the command holds capabilities or can regain privileges through setuid binaries",
        "report this as an sbx bug (runtime/worker_steps.cpp drops them)");
  b.add("identity", "host processes invisible (pid namespace)", true,
        {{"kill-supervisor", o("kill-supervisor").errno_name() == "ESRCH"},
         {"ptrace-init", o("ptrace-init").failed_with_errno()}},
        "the command can see or signal processes outside the sandbox",
        "report this as an sbx bug (the pid namespace is missing)");

  // Seccomp.
  b.add("seccomp", "seccomp filter installed", seccomp_on,
        {{"caps", field(caps, "Seccomp") == "2"}}, "no seccomp filter is installed", seccomp_fix,
        seccomp_off_why);
  const auto killed_or_enosys = [&](const std::string& l, bool segv_ok) {
    const Outcome& x = o(l);
    return (x.signaled && (x.code == SIGSYS || (segv_ok && x.code == SIGSEGV))) ||
           x.errno_name() == "ENOSYS";
  };
  b.add("seccomp", "32-bit and x32 syscalls (filter bypass)", seccomp_on,
        {{"x32", killed_or_enosys("x32", false)}, {"int80", killed_or_enosys("int80", true)}},
        "syscalls of another ABI bypass the filter's syscall numbers", seccomp_fix,
        seccomp_off_why);
  b.add("seccomp", "io_uring", seccomp_on, {{"io_uring", o("io_uring").failed_with_errno()}},
        "io_uring runs operations the filter never sees (it can open sockets without socket())",
        seccomp_fix, seccomp_off_why);
  b.add("seccomp", "AF_ALG and AF_VSOCK sockets", seccomp_on,
        {{"af_alg", o("af_alg").failed_with_errno()},
         {"af_alg-high", o("af_alg-high").failed_with_errno()},
         {"af_vsock", o("af_vsock").failed_with_errno()}},
        "the kernel crypto API and VM sockets are reachable (a large kernel attack surface)",
        seccomp_fix, seccomp_off_why);
  b.add("seccomp", "TIOCSTI terminal injection (CVE-2017-5226, CVE-2019-10063)", seccomp_on,
        {{"tiocsti", o("tiocsti").failed_with_errno()},
         {"tiocsti-high", o("tiocsti-high").failed_with_errno()}},
        "the command can push keystrokes into a terminal's input", seccomp_fix, seccomp_off_why);
  b.add("seccomp", "new namespaces and mounts (unshare, clone, mount API)", seccomp_on,
        {{"unshare-user", o("unshare-user").failed_with_errno()},
         {"clone-newuser", o("clone-newuser").failed_with_errno()},
         {"mount", o("mount").failed_with_errno()},
         {"open_tree", o("open_tree").failed_with_errno()},
         {"fsopen", o("fsopen").failed_with_errno()},
         {"clone3", o("clone3").errno_name() == "ENOSYS"}},
        "the command can build namespaces of its own and remount what it sees", seccomp_fix,
        seccomp_off_why);
  b.add("seccomp", "kernel attack surface (bpf, keyctl, perf_event_open, userfaultfd)", seccomp_on,
        {{"bpf", o("bpf").failed_with_errno()},
         {"keyctl", o("keyctl").failed_with_errno()},
         {"perf_event_open", o("perf_event_open").failed_with_errno()},
         {"userfaultfd", o("userfaultfd").failed_with_errno()}},
        "rarely needed kernel interfaces with a history of exploits are reachable", seccomp_fix,
        seccomp_off_why);

  // Filesystem.
  b.add("filesystem", "host file system read-only outside the writable paths", true,
        {{"write-outside", o("write-outside").failed_with_errno()}},
        "the command can write host files outside its work dir",
        "report this as an sbx bug (the root is bound read-only)");
  b.add("filesystem", "hidden paths unreadable (a canary)", true,
        {{"hidden-canary", empty_or_denied(o("hidden-canary"))}}, "a hidden file is readable",
        "report this as an sbx bug (filesystem.hidden)");
  if (credential_labels.empty()) {
    Row row = make_row("filesystem", "the profile's credential paths hidden",
                       Verdict::not_applicable, false);
    row.why = "none of them exists on this machine (the mechanism is checked with the canary)";
    rows.push_back(row);
  } else {
    std::vector<std::pair<std::string, bool>> checks;
    for (const auto& l : credential_labels) checks.emplace_back(l, empty_or_denied(o(l)));
    b.add("filesystem",
          fmt::format("the profile's credential paths hidden ({} exist here)",
                      credential_labels.size()),
          true, checks, "a credential path is readable inside",
          "report this as an sbx bug (filesystem.hidden)");
  }
  if (work_targets.empty()) {
    Row row = make_row("filesystem", "agent files write-protected in the work dir",
                       Verdict::not_applicable, false);
    row.why = "the profile does not protect files inside the work dir (strict does)";
    rows.push_back(row);
  } else {
    std::vector<std::pair<std::string, bool>> checks;
    for (const auto& [label, path] : work_targets) {
      checks.emplace_back(label, o(label).failed_with_errno());
    }
    b.add("filesystem", "agent files write-protected in the work dir (hooks, rc files, configs)",
          true, checks, "a file that your tools run later can be written from inside",
          "report this as an sbx bug (filesystem.read_only)");
  }
  if (git_protected) {
    // Written inside (the .git dir must stay writable for commits); the
    // supervisor must have moved it away at exit and said so.
    bool gone = !fs::exists(W + "/.git/commondir");
    bool reported = false;
    for (const auto& e : run.events) {
      if (e.type == "violation") reported = true;
    }
    Row row = make_row("filesystem", "git redirection files (.git/commondir) reverted at exit",
                       gone && reported ? Verdict::contained : Verdict::exposed, true);
    row.detail = fmt::format(
        "written inside: {}; on the host after the run: {}; violation event: {}",
        o("git-commondir").show(), gone ? "quarantined" : "STILL THERE", reported ? "yes" : "no");
    if (row.verdict == Verdict::exposed) {
      row.why = "a later git command on the host would read config chosen by the sandbox";
      row.fix = "report this as an sbx bug (runtime/git_guard.cpp)";
    }
    rows.push_back(row);
  }
  b.add("proc", "kernel /proc files masked, /proc/sys read-only", true,
        {{"proc-kallsyms", empty_or_denied(o("proc-kallsyms"))},
         {"proc-sys-write", o("proc-sys-write").failed_with_errno()}},
        "kernel symbols or sysctls are exposed", "report this as an sbx bug (/proc masks)");

  // Network.
  const std::string host_why = "network mode host: no network isolation (by design of the profile)";
  const auto refused_fast = [&](const std::string& l) {
    const Outcome& x = o(l);
    // Refused, not dropped: an errno other than the probe's own 5 s connect
    // timeout. No wall-clock bound of our own: under heavy load (2 busy
    // cores) the attempt's fork + connect + reject took over 2 s although
    // the filter rejected it; a dropped SYN still shows as ETIMEDOUT.
    return x.failed_with_errno() && x.errno_name() != "ETIMEDOUT";
  };
  const std::string net_fix = "report this as an sbx bug (netfilter ruleset / network namespace)";
  if (netns) {
    b.add("network", "raw-IP connect to a non-allowed address refused at once", true,
          {{"connect-ipv4", refused_fast("connect-ipv4")},
           {"connect-ipv6", refused_fast("connect-ipv6")}},
          "connections to addresses the profile does not allow leave the sandbox", net_fix);
    b.add("network", "cloud metadata service (169.254.169.254)", true,
          {{"metadata", refused_fast("metadata")}},
          "the cloud metadata service (instance credentials) is reachable", net_fix);
    const Outcome& dns = o("dns-other");
    bool dns_ok =
        (dns.ok() && field(dns.out, "answers") == "0" && field(dns.out, "rcode") != "0") ||
        (dns.failed_with_errno() && dns.errno_name() != "ETIMEDOUT");
    b.add("network",
          policy.network.mode == NetworkMode::filtered
              ? "DNS to another resolver answered by the filter"
              : "DNS to another resolver (no network)",
          true, {{"dns-other", dns_ok}},
          "DNS queries reach a resolver the filter does not control (a tunnel out)", net_fix);
  } else {
    for (const char* name : {"raw-IP connect to a non-allowed address refused at once",
                             "cloud metadata service (169.254.169.254)",
                             "DNS to another resolver answered by the filter"}) {
      Row row = make_row("network", name, Verdict::not_applicable, false);
      row.why = host_why;
      rows.push_back(row);
    }
  }
  if (loopback.port() > 0) {
    b.add("network", "host loopback services (127.0.0.1 on the host)", netns,
          {{"host-loopback", o("host-loopback").failed_with_errno()}},
          "services on the host's localhost are reachable", net_fix, host_why);
  }

  // Limits.
  const std::string lim = o("limits").out;
  if (policy.process.rlimits.core && *policy.process.rlimits.core == 0) {
    b.add("limits", "no core dumps (RLIMIT_CORE = 0)", true,
          {{"limits", field(lim, "core") == "0"}},
          "a crash would write the command's memory to disk", "report this as an sbx bug");
  }
  if (policy.process.rlimits.fsize) {
    b.add("limits", "file size limit (RLIMIT_FSIZE)", true,
          {{"limits", field(lim, "fsize") == std::to_string(*policy.process.rlimits.fsize)}},
          "a single file can fill the disk", "report this as an sbx bug");
  }
  const LimitsPolicy& L = policy.limits;
  if (L.memory_bytes || L.pids || L.cpus || L.swap_bytes) {
    Row row =
        make_row("limits", "cgroup limits (memory, pids, cpu)", Verdict::contained, L.required);
    std::string limit_warnings;
    for (const auto& w : run.warnings) {
      if (w.find("limit") != std::string::npos || w.find("cgroup") != std::string::npos)
        limit_warnings += (limit_warnings.empty() ? "" : "; ") + w;
    }
    if (limits_refused) {
      row.verdict = Verdict::unsupported;
      row.detail = "limits.required = true and they cannot be enforced: the profile refuses to run";
      row.why = limits_error;
      row.fix = limits_fix;
    } else if (!limit_warnings.empty()) {
      row.verdict = Verdict::unsupported;
      row.promised = false;
      row.detail = limit_warnings;
      row.why =
          "the profile's limits are best-effort (limits.required = false): it runs without them";
      row.fix =
          "give this user a delegated cgroup v2 subtree (systemd: Delegate=yes), or run as root";
    } else {
      row.detail = "the sandbox started with its limits written to its cgroup";
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace sbx::check
