// The control socket of a running sandbox: claims the name, builds the state
// dir, and answers requests from the supervisor's loop (docs/control.md).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "control/control.hpp"
#include "control/internal.hpp"

namespace sbx::control {

std::string socket_path(const std::string& dir) {
  return dir + "/" + kSocketFile;
}

namespace {

constexpr int kMaxClients = 16;
constexpr std::size_t kMaxRequest = 64 * 1024;

std::string random_suffix() {
  unsigned char b[6];
  if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    return fmt::format("{}", ::getpid());
  }
  std::string s;
  for (unsigned char c : b) s += fmt::format("{:02x}", c);
  return s;
}

// Writes a new file into the state dir before it is published (renamed to
// the sandbox's name): nobody reads it yet, and it is never rewritten, so
// no reader ever sees it half-written.
void write_file_at(int dir_fd, const char* name, const std::string& text) {
  int fd = ::openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw Error(fmt::format("cannot write {}: {}", name, std::strerror(errno)));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(fmt::format("cannot write {}: {}", name, std::strerror(err)));
}

// The user namespace of a process, as the inode of /proc/PID/ns/user.
// 0 when it cannot be read (gone, or not ours to inspect).
ino_t user_namespace_of(const std::string& pid) {
  struct stat st {};
  if (::stat(fmt::format("/proc/{}/ns/user", pid).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace

struct ControlServer::Impl {
  Options options;
  std::string dir;
  std::string base;
  UniqueFdLite dir_fd, listener, epoll, grace_timer;  // dir_fd holds the flock
  std::map<int, UniqueFdLite> clients;
  std::map<int, std::string> refused;  // client fd -> why (answered once it has asked)
  RunningSandbox* sandbox = nullptr;
  bool ended = false;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  ino_t own_userns = 0;

  void emit(nlohmann::json data) {
    if (!options.on_event) return;
    Event e;
    e.type = "control";
    e.data = std::move(data);
    options.on_event(e);
  }

  void epoll_add(int fd) {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw Error(fmt::format("epoll_ctl (control): {}", std::strerror(errno)));
    }
  }

  // Builds the complete dir under a temporary name, then renames it to the
  // sandbox's name: a reader never sees a half-made one, and the rename
  // fails when the name is taken.
  void claim() {
    if (options.info.sbx_pid == ::getpid()) {
      if (auto self = process_stamp(::getpid())) {
        options.info.sbx_pid_ns = self->pid_ns;
        options.info.sbx_time_ns = self->time_ns;
        options.info.sbx_start = self->start;
      }
    }
    const SandboxInfo& info = options.info;  // a valid name (the constructor checks)
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) base = state_base(true);  // made by the constructor; again after ENOENT
      std::string tmp = fmt::format("{}/.new-{}-{}", base, ::getpid(), random_suffix());
      const bool spare = take_spare(tmp);  // locked already when taken
      if (!spare) tmp = fmt::format("{}/.new-{}-{}", base, ::getpid(), random_suffix());
      if (!spare && ::mkdir(tmp.c_str(), 0700) != 0) {
        if (errno == ENOENT && attempt < 5) continue;  // base removed by a finishing sbx
        throw Error(fmt::format("cannot create the state dir {}: {}", tmp, std::strerror(errno)),
                    "check the permissions of " + base);
      }
      // The lock is the directory's own flock, held through dir_fd until
      // the dir is removed: no lock file to create and free per run.
      if (!spare)
        dir_fd.reset(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
      if (dir_fd.get() < 0 || (!spare && ::flock(dir_fd.get(), LOCK_EX | LOCK_NB) != 0)) {
        const int err = errno;
        if (dir_fd.get() >= 0) remove_dir_contents(dir_fd.get());
        ::rmdir(tmp.c_str());
        throw Error(fmt::format("cannot lock the state dir {}: {}", tmp, std::strerror(err)));
      }
      try {
        make_socket(tmp);
        write_file_at(dir_fd.get(), kStateFile, info.to_json().dump(2) + "\n");
      } catch (...) {  // out of fds, a full disk: the temporary dir goes now, not at the next start
        listener.reset();  // first: listing the dir takes an fd (out of fds, this one)
        remove_dir_contents(dir_fd.get());
        ::rmdir(tmp.c_str());
        dir_fd.reset();
        throw;
      }
      dir = base + "/" + info.name;
      if (::rename(tmp.c_str(), dir.c_str()) == 0) return;
      const int err = errno;
      remove_dir_contents(dir_fd.get());
      ::rmdir(tmp.c_str());
      listener.reset();
      dir_fd.reset();
      if (err != ENOTEMPTY && err != EEXIST) {
        throw Error(fmt::format("cannot create the state dir {}: {}", dir, std::strerror(err)),
                    "check the permissions of " + base);
      }
      refuse_if_live();
      if (attempt >= 5) {
        throw Error(
            fmt::format("cannot claim the sandbox name '{}' ({} is in the way)", info.name, dir),
            fmt::format("remove {}", dir));
      }
      clean_stale(base);  // its sbx died: remove the leftover and retry
    }
  }

  // A live sandbox of this name: sbx::Error with its pid and the fix.
  void refuse_if_live() const {
    const std::string& name = options.info.name;
    if (!is_live(base + "/" + name)) return;
    auto live = find_live(base, name);
    std::string pid = live ? live->state.value("sbx_pid", nlohmann::json(0)).dump() : "?";
    throw Error(fmt::format("a sandbox named '{}' is already running (sbx pid {})", name, pid),
                fmt::format("choose another --name, or stop it: sbx stop {}", name));
  }

  // Takes the emptied state dir of a finished sandbox (remove_state), if one
  // waits in the base, renaming it to `tmp` with its flock held: a mkdir and,
  // at the end, an rmdir saved. Freeing a directory's block is what costs:
  // ext4 with `discard` and no journal (the benchmark VM's /run) discards it
  // synchronously at the last close, ~0.7 ms. Only the holder of the spare's
  // flock renames it away, nothing else removes it (clean_stale skips it),
  // and a finishing sandbox parks its dir there only when the name is free
  // (RENAME_NOREPLACE): so once the inode locked here is checked to be the
  // one named .spare, the rename moves that inode.
  bool take_spare(const std::string& tmp) {
    if (!keeps_spare()) return false;
    const std::string spare = base + "/" + kSpareDir;
    UniqueFdLite d(::open(spare.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (d.get() < 0 || ::flock(d.get(), LOCK_EX | LOCK_NB) != 0) return false;
    struct stat st {};
    struct stat named {};
    if (::fstat(d.get(), &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 07777) != 0700 ||
        st.st_nlink == 0 || ::lstat(spare.c_str(), &named) != 0 || named.st_dev != st.st_dev ||
        named.st_ino != st.st_ino) {
      return false;  // taken and given back or removed between open and flock
    }
    // Fresh for clean_stale, which leaves a young .new- dir alone.
    if (::futimens(d.get(), nullptr) != 0) return false;
    if (::renameat2(AT_FDCWD, spare.c_str(), AT_FDCWD, tmp.c_str(), RENAME_NOREPLACE) != 0)
      return false;
    // Empty by construction, checked on this fd: a start short of fds (the
    // claim runs late in the start, with the sandbox's channels open) must
    // not leave it renamed. If it cannot be read, it goes back to being the
    // spare. If not empty and not emptied (a directory in it), it stays
    // under its .new- name for clean_stale, no longer in the way of a usable
    // spare.
    const std::optional<bool> empty = directory_is_empty(d.get());
    if (!empty) {
      (void)::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, spare.c_str(), RENAME_NOREPLACE);
      return false;
    }
    if (!*empty && !remove_dir_contents(d.get())) return false;
    dir_fd = std::move(d);
    return true;
  }

  // Not in the shared /tmp: there the base itself goes once empty.
  bool keeps_spare() const { return base.rfind("/tmp/", 0) != 0; }

  void make_socket(const std::string& tmp_dir) {
    // Bound under the temporary name; the rename keeps the socket's inode,
    // which is what connect() finds.
    const std::string path = socket_path(tmp_dir);
    const std::string final_path = socket_path(base + "/" + options.info.name);
    struct sockaddr_un sa {};
    sa.sun_family = AF_UNIX;
    if (std::max(path.size(), final_path.size()) >= sizeof sa.sun_path) {
      remove_dir_contents(dir_fd.get());
      ::rmdir(tmp_dir.c_str());
      throw Error(
          fmt::format("the control socket path {} is too long for a unix socket", final_path),
          "use a shorter --name or a shorter XDG_RUNTIME_DIR");
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    listener.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    // umask 077 around bind: the socket file is created 0600 at once.
    const mode_t old = ::umask(077);
    const bool bound = listener.get() >= 0 &&
                       ::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::umask(old);
    if (!bound || ::chmod(path.c_str(), 0600) != 0 || ::listen(listener.get(), kMaxClients) != 0) {
      const int err = errno;
      remove_dir_contents(dir_fd.get());
      ::rmdir(tmp_dir.c_str());
      throw Error(fmt::format("cannot create the control socket {}: {}", path, std::strerror(err)));
    }
  }

  void remove_state() {
    if (dir_fd.get() < 0) return;
    // Parked as the base's spare for the next start (take_spare) unless one
    // waits already, and emptied there; its flock goes with dir_fd below.
    // Renamed while it still holds its files: a rename cannot replace a full
    // directory, so the name moved is ours. Emptied first, a new sandbox of
    // the same name could have replaced it (rename onto an empty directory
    // succeeds) and its live dir would have been moved.
    const std::string spare = base + "/" + kSpareDir;
    struct stat own {};
    struct stat named {};
    const bool parked =
        keeps_spare() && ::fstat(dir_fd.get(), &own) == 0 && ::lstat(dir.c_str(), &named) == 0 &&
        own.st_dev == named.st_dev && own.st_ino == named.st_ino &&
        ::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, spare.c_str(), RENAME_NOREPLACE) == 0;
    remove_dir_contents(dir_fd.get());
    // By name: if it meanwhile belongs to a new sandbox's complete dir, that
    // one is not empty and rmdir fails (ENOTEMPTY).
    if (!parked) (void)::rmdir(dir.c_str());
    // The base stays (0700, empty but for the spare) in the user's own runtime dirs, as
    // /run/user does: re-creating it would cost every start-up a directory.
    // Not in the shared /tmp, where a base left by a uid that exists only in
    // a user namespace would stand in the way of the host's user of that uid.
    if (!keeps_spare()) (void)::rmdir(base.c_str());  // fails unless empty
    dir_fd.reset();  // last: its flock made the dir count as live until here
  }

  // ---- serving

  void accept_clients() {
    for (;;) {
      int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      UniqueFdLite client(fd);
      if (clients.size() >= static_cast<std::size_t>(kMaxClients)) {
        reply(fd, {{"ok", false}, {"error", "too many control connections"}});
        continue;
      }
      // A refused peer still gets its answer, after its request (closing
      // on an unread request would reset the connection, losing the reason).
      std::string why;
      if (!peer_allowed(fd, why)) refused[fd] = why;
      epoll_add(fd);
      clients.emplace(fd, std::move(client));
    }
  }

  // Same uid or root, and in sbx's own user namespace: the sandbox's
  // processes run as the same uid (mapped) but in their own user
  // namespaces, and must never steer their own sandbox.
  bool peer_allowed(int fd, std::string& why) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      why = fmt::format("SO_PEERCRED: {}", std::strerror(errno));
      return false;
    }
    if (cred.uid != ::geteuid() && cred.uid != 0) {
      why = fmt::format("uid {} may not control a sandbox of uid {}", cred.uid, ::geteuid());
      return false;
    }
    const ino_t peer_ns = user_namespace_of(std::to_string(cred.pid));
    if (own_userns == 0 || peer_ns != own_userns) {
      why = "the peer is not in sbx's user namespace (a sandboxed process?)";
      return false;
    }
    return true;
  }

  void reply(int fd, const nlohmann::json& j) {
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  void serve(int fd) {
    std::string buf(kMaxRequest, '\0');
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    nlohmann::json answer;
    if (n <= 0) {
      // closed without a request
    } else if (auto r = refused.find(fd); r != refused.end()) {
      reply(fd, {{"ok", false}, {"error", r->second}});
    } else if (static_cast<std::size_t>(n) > buf.size()) {
      reply(fd, {{"ok", false}, {"error", "request too large"}});
    } else {
      buf.resize(static_cast<std::size_t>(n));
      auto req = nlohmann::json::parse(buf, nullptr, false);
      struct ucred cred {};
      socklen_t len = sizeof cred;
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
      try {
        if (!req.is_object()) throw Error("the request is not a JSON object");
        answer = handle(req, cred);
        answer["ok"] = true;
      } catch (const Error& e) {
        answer = {{"ok", false}, {"error", e.what()}, {"fix", e.fix()}};
      } catch (const std::exception& e) {
        answer = {{"ok", false}, {"error", e.what()}};
      }
      reply(fd, answer);
    }
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    refused.erase(fd);
    clients.erase(fd);
  }

  RunningSandbox& running() {
    if (sandbox == nullptr) {
      throw Error(ended ? "the sandbox has ended" : "the sandbox is not running yet",
                  "retry in a moment");
    }
    return *sandbox;
  }

  nlohmann::json status() {
    nlohmann::json j = options.info.to_json();
    j["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
    j["running"] = sandbox != nullptr;
    if (sandbox != nullptr) j["usage"] = sandbox->usage();
    if (options.status_extra) {
      const nlohmann::json extra = options.status_extra();  // items() must not outlive it
      for (auto& [k, v] : extra.items()) j[k] = v;
    }
    return j;
  }

  nlohmann::json handle(const nlohmann::json& req, const struct ucred& peer) {
    const std::string op = req.value("op", std::string());
    // Addressed to this sandbox: a socket moved into another's state dir
    // (by a sandbox that may write the base) must not act for that one.
    if (req.value("name", std::string()) != options.info.name) {
      throw Error(fmt::format("this is the control socket of '{}', not of '{}'", options.info.name,
                              req.value("name", std::string())),
                  "see sbx ps; a request names the sandbox it is for");
    }
    nlohmann::json who = {{"peer_uid", peer.uid}, {"peer_pid", peer.pid}};
    if (op == "status") return status();
    if (op == "stop") {
      const auto grace_ms = req.value("grace_ms", std::int64_t{10000});
      if (grace_ms < 0) throw Error("negative grace");
      RunningSandbox& s = running();
      nlohmann::json ev = who;
      ev["action"] = "stop";
      ev["grace_ms"] = grace_ms;
      emit(ev);
      // Polite first; SIGCONT so a stopped command sees the SIGTERM now.
      s.signal(SIGTERM);
      s.signal(SIGCONT);
      struct itimerspec spec {};
      const auto ms = std::max<std::int64_t>(grace_ms, 1);
      spec.it_value.tv_sec = ms / 1000;
      spec.it_value.tv_nsec = (ms % 1000) * 1'000'000;
      ::timerfd_settime(grace_timer.get(), 0, &spec, nullptr);
      return {{"signal", SIGTERM}, {"grace_ms", grace_ms}};
    }
    if (op == "kill") {
      const int sig = req.value("signal", SIGKILL);
      if (sig <= 0 || sig >= NSIG) throw Error(fmt::format("bad signal {}", sig));
      RunningSandbox& s = running();
      nlohmann::json ev = who;
      ev["action"] = "kill";
      ev["signal"] = sig;
      emit(ev);
      if (sig == SIGKILL) {
        s.kill_all();
      } else if (!s.signal(sig)) {
        throw Error("the sandbox has ended");
      }
      return {{"signal", sig}};
    }
    if (op == "network_show") return running().network();
    if (op == "network") {
      NetworkChange change;
      const std::string action = req.value("action", std::string());
      if (action != "allow" && action != "deny") throw Error("action must be allow or deny");
      change.action =
          action == "allow" ? NetworkChange::Action::allow : NetworkChange::Action::deny;
      change.domain = req.value("domain", std::string());
      change.cidr = req.value("cidr", std::string());
      if (change.domain.empty() == change.cidr.empty())
        throw Error("give exactly one of --domain or --cidr");
      nlohmann::json ev = who;
      ev["action"] = "network_" + action;
      if (!change.domain.empty()) ev["domain"] = change.domain;
      if (!change.cidr.empty()) ev["cidr"] = change.cidr;
      nlohmann::json result;
      try {
        result = running().change_network(change);
      } catch (const Error& e) {
        ev["applied"] = false;
        ev["error"] = e.what();
        emit(ev);
        throw;
      }
      ev["applied"] = true;
      if (result.contains("removed_addresses"))
        ev["removed_addresses"] = result["removed_addresses"];
      if (result.contains("cut_connections")) ev["cut_connections"] = result["cut_connections"];
      emit(ev);
      return result;
    }
    throw Error(fmt::format("unknown request '{}'", op),
                "use status, stop, kill, network_show or network");
  }

  void on_grace_expired() {
    std::uint64_t ticks;
    if (::read(grace_timer.get(), &ticks, sizeof ticks) <= 0) return;
    if (sandbox == nullptr) return;
    emit({{"action", "stop_kill"}, {"signal", SIGKILL}});
    sandbox->kill_all();
  }
};

ControlServer::ControlServer(Options options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = std::move(options);
  m.own_userns = user_namespace_of("self");
  m.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  m.grace_timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (m.epoll.get() < 0 || m.grace_timer.get() < 0) {
    throw Error(fmt::format("epoll/timerfd (control): {}", std::strerror(errno)));
  }
  if (!valid_name(m.options.info.name)) {  // at once, even with claim_at_start
    throw Error(fmt::format("invalid sandbox name '{}'", m.options.info.name),
                "use up to 64 letters, digits, '-', '_' and '.' (not starting with '.')");
  }
  m.epoll_add(m.grace_timer.get());
  // The base exists from here: the sandbox's mount plan masks it only if it
  // does (/run/sbx on a fresh /run would otherwise stay visible inside).
  m.base = state_base(true);
  if (!m.options.claim_at_start) {
    start();
    return;
  }
  // Claimed later (start()); a live sandbox of the name is refused now,
  // before anything of this run exists or is recorded. start() still
  // refuses one that took the name meanwhile.
  m.refuse_if_live();
}

void ControlServer::start() {
  Impl& m = *impl_;
  if (m.dir_fd.get() >= 0) return;  // claimed already
  clean_stale(m.base);              // also what kill -9'd sbx processes left behind
  m.claim();
  dir_ = m.dir;
  try {
    m.epoll_add(m.listener.get());
  } catch (...) {
    m.remove_state();
    throw;
  }
}

ControlServer::~ControlServer() {
  impl_->clients.clear();
  impl_->listener.reset();
  impl_->remove_state();
}

int ControlServer::fd() const {
  return impl_->epoll.get();
}

void ControlServer::attach(RunningSandbox* sandbox) {
  Impl& m = *impl_;
  m.sandbox = sandbox;
  if (sandbox == nullptr) {
    m.ended = true;
    return;
  }
  // In the status reply only: state.json is written once, before the dir
  // is published, so a reader never sees it torn (liveness reads the
  // owner's stamp from it).
  m.options.info.init_pid = sandbox->init_pid();
}

void ControlServer::on_ready() {
  Impl& m = *impl_;
  struct epoll_event events[16];
  int n = ::epoll_wait(m.epoll.get(), events, 16, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == m.listener.get()) {
      m.accept_clients();
    } else if (fd == m.grace_timer.get()) {
      m.on_grace_expired();
    } else if (m.clients.count(fd) != 0) {
      m.serve(fd);
    }
  }
}

}  // namespace sbx::control
