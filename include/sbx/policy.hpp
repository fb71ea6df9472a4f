// sbx::Policy — the complete, validated description of one sandbox.
//
// A Policy is a plain value: profiles/ produces it (built-in or TOML profile,
// `extends` chain, CLI overrides), runtime/ consumes it, every other module
// reads the section it owns. Paths in a resolved Policy are absolute and have
// their variables (~, $HOME, $CWD, $TMPDIR) expanded.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sbx {

enum class NetworkMode { none, filtered, host };
enum class SeccompMode { default_policy, strict, none };
enum class LandlockMode { best_effort, required, off };
enum class AuditLevel { minimal, standard, verbose };
enum class DnsRefusal { refused, nxdomain };
enum class TtyMode { automatic, always, never };

struct TmpfsMount {
  std::string path;
  std::uint64_t size_bytes = 64ull << 20;
  std::uint32_t mode = 01777;
  bool operator==(const TmpfsMount&) const = default;
};

// Agent state (profile key filesystem.state): a path sbx creates on the host
// when it is missing, before the sandbox starts, as the user the command
// runs as (directory 0700, file 0600 holding initial_content), so that a
// client's first run can keep its state. It is also writable: the loader
// adds it to allow_write. An existing path is never touched.
struct StatePath {
  std::string path;
  bool directory = false;
  std::string initial_content;  // files only; "" = an empty file
  bool operator==(const StatePath&) const = default;
};

struct FilesystemPolicy {
  // Working directory of the command; writable unless workdir_writable=false.
  // Empty means the invoking process's cwd.
  std::string workdir;
  bool workdir_writable = true;
  std::vector<std::string> allow_write;         // extra writable paths (--rw)
  std::vector<std::string> deny_write;          // read-only even inside writable areas (--ro)
  std::vector<std::string> deny_read;           // hidden: dirs empty, files unreadable (--hide)
  std::vector<std::string> allow_read;          // re-exposes a path below a deny_read entry
  std::vector<TmpfsMount> tmpfs;                // extra tmpfs mounts (--tmpfs)
  std::uint64_t tmp_size_bytes = 512ull << 20;  // size of the sandbox's private /tmp
  // Host unix sockets the command may reach (docker.sock, ssh-agent...). None by default.
  std::vector<std::string> allow_unix_sockets;
  std::vector<StatePath> state;  // created when missing, then writable (see StatePath)
  bool operator==(const FilesystemPolicy&) const = default;
};

struct PublishedPort {
  std::uint16_t host_port = 0;
  std::uint16_t sandbox_port = 0;
  bool operator==(const PublishedPort&) const = default;
};

struct NetworkPolicy {
  NetworkMode mode = NetworkMode::none;
  std::vector<std::string> allow_domains;  // domain patterns, see docs/domains.md
  std::vector<std::string> deny_domains;
  std::vector<std::string> allow_cidrs;  // normalised "addr/len"
  std::vector<std::string> deny_cidrs;
  std::vector<std::uint16_t> allow_ports;   // TCP ports reachable on allowed hosts
  std::vector<std::uint16_t> opaque_ports;  // checked by address only (no SNI/Host peek)
  std::vector<std::string> dns_upstream;    // "ip" or "ip:port"; empty = host resolv.conf
  DnsRefusal dns_refusal = DnsRefusal::refused;
  // DNS filter tuning (tests and benchmarks; the defaults are the secure
  // ones). An allowed address stays in the allow-set for clamp(TTL,
  // dns_min_ttl, 1 h) + dns_ttl_grace; whole seconds.
  std::chrono::milliseconds dns_min_ttl{30'000};
  std::chrono::milliseconds dns_ttl_grace{10'000};
  // Per-sandbox query rate limit (token bucket, burst = 2 x rate).
  std::uint32_t dns_query_rate = 200;
  std::vector<PublishedPort> publish;     // host 127.0.0.1:host_port -> sandbox_port
  std::vector<std::uint16_t> host_ports;  // sandbox may reach host 127.0.0.1:N
  bool operator==(const NetworkPolicy&) const = default;
};

struct Rlimits {
  std::optional<std::uint64_t> nofile;
  std::optional<std::uint64_t> nproc;
  std::optional<std::uint64_t> core = 0;
  std::optional<std::uint64_t> fsize;
  bool operator==(const Rlimits&) const = default;
};

struct ProcessPolicy {
  SeccompMode seccomp = SeccompMode::default_policy;
  std::vector<std::string> seccomp_allow;  // syscall names or @groups
  std::vector<std::string> seccomp_deny;
  LandlockMode landlock = LandlockMode::best_effort;
  std::vector<std::string> env_keep;           // host variables passed through
  std::map<std::string, std::string> env_set;  // variables set inside
  Rlimits rlimits;
  std::optional<std::uint32_t> uid;  // identity inside (and on the host when root)
  std::optional<std::uint32_t> gid;
  TtyMode tty = TtyMode::automatic;
  std::string hostname = "sbx";
  bool operator==(const ProcessPolicy&) const = default;
};

struct LimitsPolicy {
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint64_t> swap_bytes;
  std::optional<double> cpus;
  std::optional<std::uint64_t> pids;
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_after{10'000};
  // true: refuse to run when a limit cannot be enforced; false: warn once.
  bool required = false;
  bool operator==(const LimitsPolicy&) const = default;
};

struct AuditPolicy {
  std::string log;  // JSONL audit log path; empty = default under $XDG_STATE_HOME
  AuditLevel level = AuditLevel::standard;
  std::string report;  // run report path; "-" = stderr; empty = none
  std::uint64_t max_size_bytes = 64ull << 20;
  bool operator==(const AuditPolicy&) const = default;
};

struct Policy {
  std::string profile;      // name of the profile it was resolved from
  std::string description;  // one line, shown by `sbx profile list`
  std::string name;         // sandbox name (--name); empty = generated
  FilesystemPolicy filesystem;
  NetworkPolicy network;
  ProcessPolicy process;
  LimitsPolicy limits;
  AuditPolicy audit;
  bool operator==(const Policy&) const = default;
};

}  // namespace sbx
