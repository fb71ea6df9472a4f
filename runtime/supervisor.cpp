#include "runtime/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "runtime/channel.hpp"
#include "runtime/exit_status.hpp"
#include "runtime/filtered_network.hpp"
#include "runtime/live_sandbox.hpp"
#include "runtime/pidfd.hpp"
#include "runtime/startup_trace.hpp"
#include "seccomp/seccomp.hpp"

namespace sbx::runtime {
namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

void routed_signal_set(sigset_t* set) {
  sigemptyset(set);
  for (int sig : kForwardedSignals) sigaddset(set, sig);
  sigaddset(set, SIGCHLD);
  // A closed stdout must not kill sbx with the terminal still in raw mode.
  sigaddset(set, SIGPIPE);
}

enum Tag : std::uint32_t {
  kSignal = 1,
  kInit,
  kControl,
  kExec,
  kPtyMaster,
  kStdin,
  kNotify,
  kTimeout,
  kKillAfter,
  kCgroupPoll,
  kNetwork,
  kLiveControl,
};

UniqueFd make_timer() {
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer) throw Error(fmt::format("timerfd_create: {}", std::strerror(errno)));
  return timer;
}

void arm_timer(int fd, std::chrono::milliseconds after, std::chrono::milliseconds every = {}) {
  struct itimerspec spec {};
  auto ms = std::max<std::int64_t>(after.count(), 1);
  spec.it_value.tv_sec = ms / 1000;
  spec.it_value.tv_nsec = (ms % 1000) * 1'000'000;
  spec.it_interval.tv_sec = every.count() / 1000;
  spec.it_interval.tv_nsec = (every.count() % 1000) * 1'000'000;
  timerfd_settime(fd, 0, &spec, nullptr);
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd {
          fd, POLLOUT, 0
        };
        poll(&pfd, 1, 1000);
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

std::string describe_errno(int error_number) {
  if (error_number == 0) return "failed";
  return fmt::format("{} ({})", std::strerror(error_number),
                     strerrorname_np(error_number) ? strerrorname_np(error_number) : "?");
}

class Loop {
 public:
  Loop(Sandbox& sandbox, const SuperviseContext& context)
      : sandbox_(sandbox), ctx_(context), epoll_(epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_) throw Error(fmt::format("epoll_create1: {}", std::strerror(errno)));
  }

  RunResult run() {
    auto started = std::chrono::steady_clock::now();
    watch(ctx_.signals.fd(), kSignal);
    watch(sandbox_.pidfd.get(), kInit);
    watch(sandbox_.control.get(), kControl);
    watch(sandbox_.exec.get(), kExec);
    if (ctx_.policy.limits.timeout) {
      timeout_timer_ = make_timer();
      arm_timer(timeout_timer_.get(), *ctx_.policy.limits.timeout);
      watch(timeout_timer_.get(), kTimeout);
    }
    if (ctx_.cgroup.active() && ctx_.options.on_event) {
      cgroup_timer_ = make_timer();
      arm_timer(cgroup_timer_.get(), std::chrono::milliseconds(500),
                std::chrono::milliseconds(500));
      watch(cgroup_timer_.get(), kCgroupPoll);
    }

    if (ctx_.network != nullptr) watch(ctx_.network->fd(), kNetwork);
    LiveSandbox live(sandbox_, ctx_);  // sbx ps/stop/network while the loop runs
    if (ctx_.options.controller != nullptr) watch(ctx_.options.controller->fd(), kLiveControl);

    try {
      while (!init_exited_) {
        struct epoll_event events[16];
        int n = epoll_wait(epoll_.get(), events, 16, -1);
        if (n < 0) {
          if (errno == EINTR) continue;
          throw Error(fmt::format("epoll_wait: {}", std::strerror(errno)));
        }
        for (int i = 0; i < n; ++i) dispatch(events[i]);
      }
    } catch (...) {
      // What the rate limits counted is written however the loop ends.
      try {
        flush_counted(false);
      } catch (...) {  // the loop's own error is the one to report
      }
      throw;
    }
    // init is gone and with it every process of the sandbox: collect what
    // they wrote before dying.
    read_exec_channel();
    read_control_channel();
    drain_pty();
    if (ctx_.cgroup.active() && ctx_.options.on_event)
      ctx_.cgroup.poll_events(ctx_.options.on_event);
    flush_counted(true);
    raw_mode_.restore();

    if (launch_error_) throw sandbox_step_error(*launch_error_);
    RunResult result;
    result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    result.timed_out = timed_out_;
    int status = worker_status_ ? *worker_status_ : init_status_;
    if (exec_error_) {
      result.exit_code = exit_code_for_exec_errno(exec_error_->error_number);
      if (ctx_.options.on_warning) {
        ctx_.options.on_warning(
            fmt::format("{}: {}", exec_error_->detail,
                        result.exit_code == kExitNotFound
                            ? "command not found in the sandbox"
                            : "cannot execute: " + describe_errno(exec_error_->error_number)));
      }
    } else {
      result.exit_code = exit_code_from_wait_status(status);
      if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
    }
    fill_usage(result);
    startup_trace::mark("supervisor: result");
    return result;
  }

 private:
  // Attempts the rate limits counted instead of reporting one by one
  // (denied calls, refused DNS queries, blocked packets and connections):
  // without this, a sandbox that spent a burst on noise and exited at once
  // left every later attempt out of the log and the report. `sandbox_gone`:
  // what it left queued (blocked packets, DNS queries) is read first.
  void flush_counted(bool sandbox_gone) {
    if (notify_) notify_->flush();
    if (ctx_.network != nullptr) ctx_.network->flush_events(sandbox_gone);
  }

  void watch(int fd, Tag tag, std::uint32_t events = EPOLLIN) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.u32 = tag;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw Error(fmt::format("epoll_ctl: {}", std::strerror(errno)));
    }
  }
  void modify(int fd, Tag tag, std::uint32_t events) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.u32 = tag;
    epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }
  void unwatch(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

  void dispatch(const struct epoll_event& ev) {
    // The launch's hand-offs (init's channels, its exit) keep the loop on the
    // launch CPU; anything else is work (a DNS query, a proxied connection,
    // the terminal, a signal, sbx ps): from then on the scheduler places it.
    const bool hand_off = ev.data.u32 == kInit || ev.data.u32 == kControl || ev.data.u32 == kExec;
    if (!hand_off && ctx_.cpu_pin != nullptr) ctx_.cpu_pin->release();
    switch (ev.data.u32) {
      case kSignal:
        on_signal();
        break;
      case kInit:
        on_init_exit();
        break;
      case kControl:
        read_control_channel();
        break;
      case kExec:
        read_exec_channel();
        break;
      case kPtyMaster:
        if (ev.events & EPOLLOUT) flush_to_pty();
        if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) relay_pty_output();
        break;
      case kStdin:
        relay_stdin();
        break;
      case kNotify:
        if (notify_ && (ev.events & EPOLLIN)) notify_->on_readable();
        // HUP: no process uses the filter any more. Level-triggered, it
        // would wake the loop forever.
        if (notify_ && (ev.events & (EPOLLHUP | EPOLLERR))) unwatch(notify_->fd());
        break;
      case kTimeout:
        on_timeout();
        break;
      case kKillAfter:
        kill_sandbox();
        break;
      case kCgroupPoll: {
        std::uint64_t ticks;
        if (read(cgroup_timer_.get(), &ticks, sizeof ticks) > 0) {
          ctx_.cgroup.poll_events(ctx_.options.on_event);
        }
        break;
      }
      case kNetwork:
        ctx_.network->on_ready();
        break;
      case kLiveControl:
        ctx_.options.controller->on_ready();
        break;
      default:
        break;
    }
  }

  void signal_init(int sig) {
    if (!init_exited_) pidfd_signal(sandbox_.pidfd.get(), sig);
  }

  void on_signal() {
    struct signalfd_siginfo info {};
    while (read(ctx_.signals.fd(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGCHLD || sig == SIGPIPE) continue;  // init is watched through its pidfd
      if (sig == SIGWINCH && pty_master_) {
        // The pty is ours: resizing its master makes the kernel send
        // SIGWINCH to the command's foreground process group.
        copy_window_size();
        continue;
      }
      // init forwards it to the command.
      signal_init(sig);
    }
  }

  void on_timeout() {
    std::uint64_t ticks;
    if (read(timeout_timer_.get(), &ticks, sizeof ticks) <= 0) return;
    timed_out_ = true;
    if (ctx_.options.on_event) {
      Event event;
      event.type = "timeout";
      event.data["timeout_ms"] = ctx_.policy.limits.timeout->count();
      event.data["kill_after_ms"] = ctx_.policy.limits.kill_after.count();
      ctx_.options.on_event(event);
    }
    // Polite first; SIGCONT so a stopped command sees the SIGTERM now.
    signal_init(SIGTERM);
    signal_init(SIGCONT);
    kill_timer_ = make_timer();
    arm_timer(kill_timer_.get(), ctx_.policy.limits.kill_after);
    watch(kill_timer_.get(), kKillAfter);
  }

  void kill_sandbox() {
    std::uint64_t ticks;
    if (kill_timer_ && read(kill_timer_.get(), &ticks, sizeof ticks) <= 0) return;
    // SIGKILL of init makes the kernel SIGKILL every process of the pid
    // namespace; stopped ones too (SIGCONT first, as nsjail does). The
    // cgroup catches anything that left the namespace.
    signal_init(SIGCONT);
    signal_init(SIGKILL);
    if (ctx_.cgroup.active()) ctx_.cgroup.kill_all();
  }

  void on_init_exit() {
    // waitid on the pidfd (no pid-reuse race), with init's rusage, which
    // includes the worker and everything init reaped.
    siginfo_t info{};
    struct rusage usage {};
    long rc;
    do {
      rc = syscall(SYS_waitid, P_PIDFD, sandbox_.pidfd.get(), &info, WEXITED, &usage);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) throw Error(fmt::format("waitid(init): {}", std::strerror(errno)));
    sandbox_.reaped = true;
    init_exited_ = true;
    startup_trace::mark("supervisor: init reaped");
    if (sandbox_.shared_init) sandbox_.shared_init->release();  // it ends meanwhile
    // Every process of the pid namespace is gone before init's exit is
    // reported: nothing inside can use the sandbox's mounts any more.
    if (ctx_.sandbox_gone) ctx_.sandbox_gone();
    rusage_ = usage;
    if (info.si_code == CLD_EXITED) {
      init_status_ = (info.si_status & 0xff) << 8;
    } else {
      init_status_ = info.si_status & 0x7f;  // WIFSIGNALED form
    }
  }

  void read_control_channel() {
    if (!sandbox_.control) return;
    for (;;) {
      Message message;
      int fd = -1;
      int rc = receive_message(sandbox_.control.get(), message, &fd);
      if (rc == 1 && message.kind == MessageKind::net_socket && ctx_.network != nullptr) {
        // A socket of the sandbox netns asked for by the network (--publish).
        ctx_.network->add_socket(static_cast<NetSocket>(message.value >> 16),
                                 static_cast<std::uint16_t>(message.value & 0xffff), UniqueFd(fd));
        continue;
      }
      if (fd >= 0) close(fd);  // nothing else carries fds
      if (rc == 1) {
        if (message.kind == MessageKind::worker_status) worker_status_ = message.value;
        // No process of the sandbox left but init, which only exits now:
        // host-side clean-up (placeholders, cgroup) overlaps init's exit --
        // with another CPU to run it: pinned to one (or with one), it shares
        // that CPU with init's exit and the work only moves (the first VM:
        // 1.01x); then it starts once init is reaped, as before.
        if (message.kind == MessageKind::sandbox_empty &&
            (ctx_.cpu_pin == nullptr || ctx_.cpu_pin->other_cpu())) {
          startup_trace::mark("supervisor: sandbox empty");
          ctx_.cgroup.retire(ctx_.options.on_event);  // its last events, then removed
          if (ctx_.sandbox_gone) ctx_.sandbox_gone();
        }
        if (message.kind == MessageKind::failure && !launch_error_) launch_error_ = message.error;
        continue;
      }
      if (rc == 0) {
        unwatch(sandbox_.control.get());
        sandbox_.control.reset();
      }
      // A publish socket that found no free fd here: its connection times
      // out waiting, and the loss is counted (open_files).
      if (rc < 0 && errno == EMFILE && ctx_.network != nullptr) {
        ctx_.network->note_fd_loss();
        continue;
      }
      return;
    }
  }

  void read_exec_channel() {
    if (!sandbox_.exec) return;
    for (;;) {
      Message message;
      int fd = -1;
      int rc = receive_message(sandbox_.exec.get(), message, &fd);
      if (rc == 1) {
        if (message.kind == MessageKind::pty_master && fd >= 0) {
          start_pty_relay(UniqueFd(fd));
        } else if (message.kind == MessageKind::notify_fd && fd >= 0) {
          notify_ = std::make_unique<seccomp::NotifyListener>(fd, ctx_.options.on_event);
          watch(notify_->fd(), kNotify);
        } else if (message.kind == MessageKind::failure) {
          if (fd >= 0) close(fd);
          if (std::strcmp(message.error.step, "execve") == 0) {
            exec_error_ = message.error;
          } else if (!launch_error_) {
            launch_error_ = message.error;
          }
        } else if (fd >= 0) {
          close(fd);
        }
        continue;
      }
      if (rc == 0) {
        // EOF: the worker's end closed on execve (or it died).
        unwatch(sandbox_.exec.get());
        sandbox_.exec.reset();
      }
      // The fd did not fit: without it the command's output would go
      // nowhere, or its seccomp listener would be missing. Fail the run
      // (~Sandbox kills it).
      if (rc < 0 && errno == EMFILE) {
        throw out_of_fds_error(message.kind == MessageKind::pty_master ? "the command's terminal"
                               : message.kind == MessageKind::notify_fd
                                   ? "the sandbox's seccomp listener"
                                   : "a descriptor from the sandbox");
      }
      return;
    }
  }

  void start_pty_relay(UniqueFd master) {
    if (pty_master_) return;
    pty_master_ = std::move(master);
    fcntl(pty_master_.get(), F_SETFL, fcntl(pty_master_.get(), F_GETFL) | O_NONBLOCK);
    watch(pty_master_.get(), kPtyMaster);
    output_fd_ = pty_output_fd(ctx_.plan.pty_stdio);
    // Resizes between inspecting the terminal and now would be lost.
    copy_window_size();
    if ((ctx_.plan.pty_stdio & 1u) == 0) return;  // the command reads our stdin itself
    // Keys go to the command's pty as typed (^C included).
    raw_mode_.enter(ctx_.terminal);
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u32 = kStdin;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0) {
      stdin_watched_ = true;
    } else {
      stdin_eof_ = true;  // /dev/null or a regular file: nothing to relay
      send_eof_to_pty();
    }
  }

  void copy_window_size() {
    struct winsize ws {};
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
      if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        ioctl(pty_master_.get(), TIOCSWINSZ, &ws);
        return;
      }
    }
  }

  void relay_pty_output() {
    char buf[16384];
    for (;;) {
      ssize_t n = read(pty_master_.get(), buf, sizeof buf);
      if (n > 0) {
        if (output_fd_ >= 0) write_all(output_fd_, buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      // EIO: every slave fd is closed (the sandbox is gone).
      unwatch(pty_master_.get());
      pty_closed_ = true;
      return;
    }
  }

  void drain_pty() {
    if (pty_master_ && !pty_closed_) relay_pty_output();
  }

  void relay_stdin() {
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      unwatch(STDIN_FILENO);
      stdin_watched_ = false;
      stdin_eof_ = true;
      send_eof_to_pty();
      return;
    }
    to_pty_.append(buf, static_cast<std::size_t>(n));
    flush_to_pty();
  }

  void send_eof_to_pty() {
    // Piped input into a pty: the end of input is the terminal's EOF
    // character, which a reader in canonical mode sees as end of file.
    if (ctx_.terminal.stdin_is_tty || !pty_master_) return;
    struct termios tio {};
    char eof = 4;
    if (tcgetattr(pty_master_.get(), &tio) == 0 && tio.c_cc[VEOF] != 0)
      eof = static_cast<char>(tio.c_cc[VEOF]);
    to_pty_.push_back(eof);
    flush_to_pty();
  }

  void flush_to_pty() {
    if (!pty_master_ || pty_closed_) {
      to_pty_.clear();
      return;
    }
    while (!to_pty_.empty()) {
      ssize_t n = write(pty_master_.get(), to_pty_.data(), to_pty_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      to_pty_.erase(0, static_cast<std::size_t>(n));
    }
    // The command is not reading: stop reading our stdin until it does, so
    // neither side blocks the loop.
    bool pending = !to_pty_.empty();
    modify(pty_master_.get(), kPtyMaster, EPOLLIN | (pending ? EPOLLOUT : 0u));
    if (stdin_watched_) modify(STDIN_FILENO, kStdin, pending ? 0u : EPOLLIN);
  }

  void fill_usage(RunResult& result) {
    result.usage.user_cpu = std::chrono::seconds(rusage_.ru_utime.tv_sec) +
                            std::chrono::microseconds(rusage_.ru_utime.tv_usec);
    result.usage.system_cpu = std::chrono::seconds(rusage_.ru_stime.tv_sec) +
                              std::chrono::microseconds(rusage_.ru_stime.tv_usec);
    result.usage.peak_memory_bytes = static_cast<std::uint64_t>(rusage_.ru_maxrss) * 1024;
    if (ctx_.cgroup.active()) {
      cgroups::Stats stats = ctx_.cgroup.stats();
      if (stats.peak_memory_bytes > 0) result.usage.peak_memory_bytes = stats.peak_memory_bytes;
      result.usage.peak_pids = stats.peak_pids;
    }
  }

  Sandbox& sandbox_;
  const SuperviseContext& ctx_;
  UniqueFd epoll_;
  UniqueFd timeout_timer_;
  UniqueFd kill_timer_;
  UniqueFd cgroup_timer_;
  UniqueFd pty_master_;
  int output_fd_ = STDOUT_FILENO;
  bool pty_closed_ = false;
  bool stdin_watched_ = false;
  bool stdin_eof_ = false;
  std::string to_pty_;
  RawTerminalMode raw_mode_;
  std::unique_ptr<seccomp::NotifyListener> notify_;
  bool init_exited_ = false;
  bool timed_out_ = false;
  int init_status_ = 0;
  struct rusage rusage_ {};
  std::optional<int> worker_status_;
  std::optional<ChildError> launch_error_;
  std::optional<ChildError> exec_error_;
};

}  // namespace

DefaultChildSignal::DefaultChildSignal() {
  struct sigaction current {};
  if (sigaction(SIGCHLD, nullptr, &current) != 0 || current.sa_handler != SIG_IGN) return;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  was_ignored_ = sigaction(SIGCHLD, &dfl, nullptr) == 0;
}

DefaultChildSignal::~DefaultChildSignal() {
  if (!was_ignored_) return;
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGCHLD, &ign, nullptr);
}

SignalRouting::SignalRouting() {
  sigset_t set;
  routed_signal_set(&set);
  if (pthread_sigmask(SIG_BLOCK, &set, &old_mask_) != 0) {
    throw Error("cannot block signals for forwarding");
  }
  fd_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd_) {
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    throw Error(fmt::format("signalfd: {}", std::strerror(saved)));
  }
}

SignalRouting::~SignalRouting() {
  // Signals that arrived after the command exited have nobody to go to;
  // unblocking them now would kill or interrupt the embedding program.
  struct signalfd_siginfo info {};
  while (read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

Sandbox::~Sandbox() {
  if (init_pid <= 0 || reaped || !pidfd) return;
  // An exception on the way: nothing of the sandbox may survive it.
  kill_and_reap(pidfd.get());
}

RunResult supervise(Sandbox& sandbox, const SuperviseContext& context) {
  Loop loop(sandbox, context);
  return loop.run();
}

}  // namespace sbx::runtime
