// The supervisor process that sbx_run_start forks: the caller's chosen stdio
// on fds 0-2, the record pipe on fd 3, nothing else; then sbx::run, exactly
// as `sbx run` would, with events and the result written to the pipe.
//
// Why a process and not a thread of the caller: sbx::run blocks signals in
// its thread and reads them from a signalfd, owns fds 0-2 of its process
// (the command's stdio, the pty relay, raw mode) and must not share a signal
// disposition or a cwd with a host program such as Python. A child process
// gives it all of that to itself, and a pipe gives the caller one fd to poll.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capi/handles.hpp"

namespace sbx::capi {
namespace {

constexpr int kRecordFd = 3;
// Events the caller has not read yet, at most this many bytes; beyond, they
// are counted as dropped (in the result) instead of stalling the sandbox.
constexpr std::size_t kMaxQueuedBytes = 16u << 20;

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms.count() % 1000);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Writes records to the caller from its own thread, so a caller that reads
// slowly never stalls the supervisor loop (timeouts, pty relay). It also
// notices when the caller is gone (its read end closed: the handle freed or
// the process dead) and then stops the sandbox: SIGTERM to this process,
// which sbx::run forwards to the command, and SIGKILL after the grace.
class RecordRelay {
 public:
  explicit RecordRelay(std::chrono::milliseconds kill_after)
      : kill_after_(kill_after), wake_(eventfd(0, EFD_CLOEXEC)) {
    // The thread must not take the signals sbx::run reads from its signalfd.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  RecordRelay(const RecordRelay&) = delete;
  RecordRelay& operator=(const RecordRelay&) = delete;
  ~RecordRelay() {
    if (thread_.joinable()) finish({});
  }

  void push(char tag, const nlohmann::json& record) {
    std::string line = fmt::format("{} {}\n", tag, dump(record));
    {
      std::lock_guard lock(mutex_);
      if (queued_bytes_ + line.size() > kMaxQueuedBytes) {
        ++dropped_;
        return;
      }
      queued_bytes_ += line.size();
      queue_.push_back(std::move(line));
    }
    wake();
  }

  std::uint64_t dropped() {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

  // Queues the last record (never dropped) and waits until all is written
  // or the caller is gone.
  void finish(std::string last_line) {
    {
      std::lock_guard lock(mutex_);
      if (!last_line.empty()) queue_.push_back(std::move(last_line));
      finishing_ = true;
    }
    cv_.notify_all();
    wake();
    thread_.join();
  }

 private:
  void wake() {
    const std::uint64_t one = 1;
    if (wake_ >= 0) (void)!write(wake_, &one, sizeof one);
  }

  void loop() {
    for (;;) {
      std::deque<std::string> lines;
      bool finishing;
      {
        std::lock_guard lock(mutex_);
        lines.swap(queue_);
        queued_bytes_ = 0;
        finishing = finishing_;
      }
      for (const auto& line : lines) {
        if (!write_all(kRecordFd, line)) return caller_gone();
      }
      if (finishing) {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) return;
        continue;
      }
      // POLLERR on the write end: every read end is closed. Without an
      // eventfd (no fd was free) the queue is looked at every 20 ms.
      pollfd fds[2] = {{kRecordFd, 0, 0}, {wake_, POLLIN, 0}};
      if (poll(fds, wake_ >= 0 ? 2 : 1, wake_ >= 0 ? -1 : 20) < 0) continue;
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return caller_gone();
      std::uint64_t n;
      if (fds[1].revents & POLLIN) (void)!read(wake_, &n, sizeof n);
    }
  }

  void caller_gone() {
    kill(getpid(), SIGTERM);
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, kill_after_, [this] { return finishing_; })) {
      // The command ignored SIGTERM. Killing the supervisor kills init
      // (its parent-death signal) and with it the whole pid namespace.
      kill(getpid(), SIGKILL);
    }
  }

  std::chrono::milliseconds kill_after_;
  int wake_;  // eventfd; -1 if none could be made (the loop polls then)
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t dropped_ = 0;
  bool finishing_ = false;
};

nlohmann::json event_record(const Event& e) {
  return {{"type", e.type}, {"time", iso_time(e.time)}, {"data", e.data}};
}

// fds 0-2 become the chosen stdio, fd 3 the record pipe; every other fd of
// the caller is closed (the supervisor must not hold the caller's pipes open
// or pass them on). Only async-signal-safe calls: the caller may have had
// threads when it forked. Returns false on failure.
bool place_fds(const SupervisorSetup& setup) {
  int moved[4];
  const int wanted[4] = {setup.stdio[0], setup.stdio[1], setup.stdio[2], setup.event_pipe};
  for (int i = 0; i < 4; ++i) {
    int fd = wanted[i];
    if (fd < 0) fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    // Above the targets first, so placing one never overwrites another.
    moved[i] = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (moved[i] < 0) return false;
  }
  for (int i = 0; i < 4; ++i) {
    if (dup2(moved[i], i) != i) return false;  // dup2 clears close-on-exec
  }
  if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0) {
    for (int fd = 4; fd < 65536; ++fd) close(fd);
  }
  return true;
}

// The caller's signal dispositions (Python ignores SIGPIPE and handles
// SIGINT) and mask are its own, not the supervisor's.
void reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    (void)signal(sig, SIG_DFL);  // EINVAL for the few numbers glibc reserves
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

void supervisor_process_main(const SupervisorSetup& setup) {
  if (!place_fds(setup)) _exit(kExitSbxError);
  reset_signals();
  if (setup.new_session) {
    // The pty slave becomes the controlling terminal: resizing the master
    // sends SIGWINCH here, which sbx::run forwards to the command.
    setsid();
    ioctl(0, TIOCSCTTY, 0);
  }

  int code = 0;
  std::string last;
  {
    RecordRelay relay(setup.policy->limits.kill_after);
    RunOptions options;
    options.argv = setup.argv;
    options.share_address_space = true;  // this process runs this one sandbox
    options.raise_open_file_limit = true;
    if (setup.want_events) {
      options.on_event = [&relay](const Event& e) { relay.push('E', event_record(e)); };
    }
    options.on_warning = [&relay](const std::string& w) {
      Event e;
      e.type = "warning";
      e.data["message"] = w;
      relay.push('E', event_record(e));
    };
    try {
      RunResult r = sbx::run(*setup.policy, options);
      nlohmann::json result = {
          {"exit_code", r.exit_code},
          {"term_signal", r.term_signal},
          {"timed_out", r.timed_out},
          {"duration_ms", r.duration.count()},
          {"user_cpu_us", r.usage.user_cpu.count()},
          {"system_cpu_us", r.usage.system_cpu.count()},
          {"peak_memory_bytes", r.usage.peak_memory_bytes},
          {"peak_pids", r.usage.peak_pids},
          {"events_dropped", relay.dropped()},
      };
      last = "R " + dump(result) + "\n";
    } catch (const Error& e) {
      code = kExitSbxError;
      nlohmann::json error = {{"exit_code", kExitSbxError},
                              {"error", e.what()},
                              {"fix", e.fix()},
                              {"events_dropped", relay.dropped()}};
      last = "X " + dump(error) + "\n";
    } catch (const std::exception& e) {
      code = kExitSbxError;
      nlohmann::json error = {{"exit_code", kExitSbxError},
                              {"error", fmt::format("internal error: {}", e.what())},
                              {"fix", "please report this with the policy and the command"},
                              {"events_dropped", relay.dropped()}};
      last = "X " + dump(error) + "\n";
    }
    relay.finish(std::move(last));
  }
  // _exit: the caller's atexit handlers and static destructors are not ours.
  _exit(code);
}

}  // namespace sbx::capi
