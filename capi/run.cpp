// The C ABI's run handle, caller side: fork the supervisor process
// (supervisor_process.cpp), read its records from one non-blocking pipe,
// deliver events to the callback on the caller's thread, reap it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <new>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capi/handles.hpp"
#include "profiles/profiles.hpp"

namespace sbx::capi {
namespace {

Error errno_error(const std::string& what, int err, std::string fix = {}) {
  return Error(fmt::format("{}: {}", what, std::strerror(err)), std::move(fix));
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void require_state(const sbx_run* run, sbx_run::State state, const char* what) {
  if (run->state == state) return;
  switch (state) {
    case sbx_run::State::created:
      throw Error(fmt::format("{}: the run was already started", what),
                  "create a new handle with sbx_run_new for each run");
    case sbx_run::State::running:
    case sbx_run::State::finished:
      if (run->state == sbx_run::State::created) {
        throw Error(fmt::format("{}: the run was not started", what), "call sbx_run_start first");
      }
      throw Error(fmt::format("{}: the run has finished", what), "");
  }
}

struct Pty {
  int master = -1;
  int slave = -1;
};

Pty open_pty(unsigned short rows, unsigned short cols) {
  Pty p;
  p.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p.master < 0) throw errno_error("posix_openpt", errno, "check that /dev/pts is mounted");
  char name[128];
  if (grantpt(p.master) != 0 || unlockpt(p.master) != 0 ||
      ptsname_r(p.master, name, sizeof name) != 0) {
    int err = errno;
    close_fd(p.master);
    throw errno_error("unlockpt/ptsname", err);
  }
  p.slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p.slave < 0) {
    int err = errno;
    close_fd(p.master);
    throw errno_error(fmt::format("open {}", name), err);
  }
  struct winsize ws {};
  ws.ws_row = rows;
  ws.ws_col = cols;
  ioctl(p.slave, TIOCSWINSZ, &ws);
  return p;
}

// One record line from the supervisor: "E json", "R json" or "X json".
void handle_record(sbx_run* run, const std::string& line) {
  if (line.size() < 2 || line[1] != ' ') return;
  const char* body = line.c_str() + 2;
  switch (line[0]) {
    case 'E':
      if (run->on_event) run->on_event(body, run->user_data);
      break;
    case 'R': {
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_discarded()) break;
      run->have_result = true;
      run->exit_code = j.value("exit_code", kExitSbxError);
      run->term_signal = j.value("term_signal", 0);
      run->timed_out = j.value("timed_out", false);
      run->result_json = body;
      break;
    }
    case 'X': {
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_discarded()) break;
      run->have_result = true;
      run->exit_code = kExitSbxError;
      run->sbx_failed = true;
      run->error.set(j.value("error", std::string("the sandbox could not be built")),
                     j.value("fix", std::string()));
      run->result_json = body;
      break;
    }
    default:
      break;
  }
}

void deliver_early_warnings(sbx_run* run) {
  for (const auto& w : run->early_warnings) {
    if (!run->on_event) break;
    nlohmann::json e = {{"type", "warning"}, {"data", {{"message", w}}}};
    std::string text = e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    run->on_event(text.c_str(), run->user_data);
  }
  run->early_warnings.clear();
}

// Reaps the supervisor once its pipe is at EOF and settles the result when
// no record said it (the supervisor was killed).
void reap(sbx_run* run) {
  close_fd(run->event_fd);
  int status = 0;
  pid_t got;
  do {
    got = waitpid(run->pid, &status, 0);
  } while (got < 0 && errno == EINTR);
  run->reaped = true;
  run->state = sbx_run::State::finished;
  if (run->have_result) return;
  run->have_result = true;
  nlohmann::json result;
  if (got == run->pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && run->sent_sigkill) {
    // sbx_run_kill(SIGKILL): the sandbox died with its supervisor, on purpose.
    run->exit_code = 128 + SIGKILL;
    run->term_signal = SIGKILL;
    result = {{"exit_code", run->exit_code}, {"term_signal", SIGKILL}, {"timed_out", false}};
  } else {
    std::string how =
        got != run->pid       ? "was reaped by someone else (SIGCHLD ignored or waitpid(-1))"
        : WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                              : fmt::format("exited with status {}", WEXITSTATUS(status));
    run->exit_code = kExitSbxError;
    run->sbx_failed = true;
    run->error.set(fmt::format("the sbx supervisor (pid {}) {} without a result", run->pid, how),
                   "do not reap or signal the supervisor yourself; use sbx_run_kill and "
                   "sbx_run_wait");
    result = {{"exit_code", run->exit_code}, {"error", run->error.what}, {"fix", run->error.fix}};
  }
  run->result_json = result.dump();
}

// Reads what is there; returns true at EOF (the run is over).
bool read_records(sbx_run* run) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(run->event_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    if (n < 0) throw errno_error("reading the supervisor's records", errno);
    if (n == 0) return true;
    run->pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = run->pending.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      handle_record(run, run->pending.substr(start, nl - start));
    }
    run->pending.erase(0, start);
  }
}

int process_events(sbx_run* run) {
  require_state(run, sbx_run::State::running, "sbx_run_process_events");
  deliver_early_warnings(run);
  if (!read_records(run)) return 0;
  reap(run);
  return 1;
}

// sbx_run_free on a running sandbox: SIGTERM (forwarded to the command),
// SIGKILL after the policy's grace, then reap. Events are discarded.
void stop_and_reap(sbx_run* run) {
  run->on_event = nullptr;
  kill(run->pid, SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(run->kill_after_ms);
  bool eof = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{run->event_fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
      try {
        eof = read_records(run);
      } catch (const Error&) {
        break;
      }
    }
  }
  if (!eof) {
    run->sent_sigkill = true;
    kill(run->pid, SIGKILL);
  }
  reap(run);
}

}  // namespace
}  // namespace sbx::capi

using namespace sbx;
using namespace sbx::capi;

extern "C" {

sbx_run* sbx_run_new(void) {
  return new (std::nothrow) sbx_run();
}

void sbx_run_free(sbx_run* run) {
  if (run == nullptr) return;
  if (run->state == sbx_run::State::running && !run->reaped) stop_and_reap(run);
  close_fd(run->event_fd);
  close_fd(run->pty_master);
  delete run;
}

int sbx_run_set_stdio(sbx_run* run, int stdin_fd, int stdout_fd, int stderr_fd) {
  if (run == nullptr) return -1;
  try {
    run->error.clear();
    require_state(run, sbx_run::State::created, "sbx_run_set_stdio");
    for (int fd : {stdin_fd, stdout_fd, stderr_fd}) {
      if (fd >= 0 && fcntl(fd, F_GETFD) < 0) {
        throw errno_error(fmt::format("stdio fd {}", fd), errno,
                          "pass an open fd, or -1 for /dev/null");
      }
    }
    run->stdio[0] = stdin_fd;
    run->stdio[1] = stdout_fd;
    run->stdio[2] = stderr_fd;
    run->use_pty = false;
    return 0;
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_use_pty(sbx_run* run, unsigned short rows, unsigned short cols) {
  if (run == nullptr) return -1;
  try {
    run->error.clear();
    require_state(run, sbx_run::State::created, "sbx_run_use_pty");
    if (rows == 0 || cols == 0) {
      throw Error(fmt::format("pty size {}x{} is empty", rows, cols), "give rows and cols above 0");
    }
    run->use_pty = true;
    run->pty_rows = rows;
    run->pty_cols = cols;
    return 0;
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_set_event_callback(sbx_run* run, sbx_event_fn fn, void* user_data) {
  if (run == nullptr) return -1;
  try {
    run->error.clear();
    require_state(run, sbx_run::State::created, "sbx_run_set_event_callback");
    run->on_event = fn;
    run->user_data = user_data;
    return 0;
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_start(sbx_run* run, sbx_policy* policy, const char* const argv[]) {
  if (run == nullptr) return -1;
  int pipe_fds[2] = {-1, -1};
  Pty pty;
  try {
    run->error.clear();
    require_state(run, sbx_run::State::created, "sbx_run_start");
    if (policy == nullptr) throw Error("the policy is NULL", "create one with sbx_policy_new");
    if (!policy->policy) {
      throw Error(
          "the policy has no profile loaded",
          "call sbx_policy_load_profile, sbx_policy_load_toml or sbx_policy_load_json first");
    }
    if (argv == nullptr || argv[0] == nullptr || argv[0][0] == '\0') {
      throw Error("no command given", "pass argv as a NULL-terminated array with argv[0] set");
    }
    // Everything the child needs is prepared here, before fork.
    const Policy resolved = *policy->policy;
    run->early_warnings = profiles::validate(resolved);  // throws for an invalid policy
    SupervisorSetup setup;
    setup.policy = &resolved;
    for (const char* const* a = argv; *a != nullptr; ++a) setup.argv.emplace_back(*a);
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw errno_error("pipe2", errno);
    setup.event_pipe = pipe_fds[1];
    setup.want_events = run->on_event != nullptr;
    if (run->use_pty) {
      pty = open_pty(run->pty_rows, run->pty_cols);
      setup.stdio[0] = setup.stdio[1] = setup.stdio[2] = pty.slave;
      setup.new_session = true;
    } else {
      for (int i = 0; i < 3; ++i) setup.stdio[i] = run->stdio[i];
    }

    pid_t pid = fork();
    if (pid == 0) supervisor_process_main(setup);
    if (pid < 0)
      throw errno_error("fork (the sbx supervisor)", errno, "check RLIMIT_NPROC and memory");

    close_fd(pipe_fds[1]);
    close_fd(pty.slave);
    fcntl(pipe_fds[0], F_SETFL, fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
    run->pid = pid;
    run->event_fd = pipe_fds[0];
    run->pty_master = pty.master;
    run->kill_after_ms = resolved.limits.kill_after.count();
    run->state = sbx_run::State::running;
    return 0;
  } catch (...) {
    close_fd(pipe_fds[0]);
    close_fd(pipe_fds[1]);
    close_fd(pty.master);
    close_fd(pty.slave);
    return record_current_exception(run->error);
  }
}

int sbx_run_fd(const sbx_run* run) {
  return run ? run->event_fd : -1;
}

pid_t sbx_run_pid(const sbx_run* run) {
  return run && !run->reaped ? run->pid : -1;
}

int sbx_run_pty_fd(const sbx_run* run) {
  return run ? run->pty_master : -1;
}

int sbx_run_process_events(sbx_run* run) {
  if (run == nullptr) return -1;
  if (run->state == sbx_run::State::finished) return 1;
  try {
    return process_events(run);
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_wait(sbx_run* run) {
  if (run == nullptr) return -1;
  try {
    if (run->state != sbx_run::State::finished) {
      while (process_events(run) == 0) {
        pollfd p{run->event_fd, POLLIN, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) throw errno_error("poll", errno);
      }
    }
    return run->sbx_failed ? -1 : 0;
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_kill(sbx_run* run, int sig) {
  if (run == nullptr) return -1;
  try {
    run->error.clear();
    require_state(run, sbx_run::State::running, "sbx_run_kill");
    if (sig == SIGKILL) run->sent_sigkill = true;
    // Not reaped yet, so the pid cannot have been reused.
    if (kill(run->pid, sig) != 0) throw errno_error(fmt::format("kill({})", sig), errno);
    return 0;
  } catch (...) {
    return record_current_exception(run->error);
  }
}

int sbx_run_exit_code(const sbx_run* run) {
  return run && run->have_result && run->reaped ? run->exit_code : -1;
}

int sbx_run_term_signal(const sbx_run* run) {
  return run && run->have_result ? run->term_signal : 0;
}

int sbx_run_timed_out(const sbx_run* run) {
  return run && run->have_result && run->timed_out ? 1 : 0;
}

char* sbx_run_result_json(const sbx_run* run) {
  if (run == nullptr || !run->reaped) return nullptr;
  char* out = static_cast<char*>(std::malloc(run->result_json.size() + 1));
  if (out != nullptr) std::memcpy(out, run->result_json.c_str(), run->result_json.size() + 1);
  return out;
}

const char* sbx_run_error(const sbx_run* run) {
  return run ? run->error.what.c_str() : "the run handle is NULL";
}

const char* sbx_run_error_fix(const sbx_run* run) {
  return run ? run->error.fix.c_str() : "create one with sbx_run_new";
}

}  // extern "C"
