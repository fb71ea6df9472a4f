#include "runtime/terminal.hpp"

#include <unistd.h>

namespace sbx::runtime {

HostTerminal inspect_host_terminal() {
  HostTerminal t;
  t.stdin_is_tty = isatty(STDIN_FILENO) == 1;
  t.stdout_is_tty = isatty(STDOUT_FILENO) == 1;
  if (t.stdin_is_tty) t.have_termios = tcgetattr(STDIN_FILENO, &t.termios) == 0;
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (ioctl(fd, TIOCGWINSZ, &t.winsize) == 0 && t.winsize.ws_row > 0) {
      t.have_winsize = true;
      break;
    }
  }
  return t;
}

bool wants_pty(TtyMode mode, const HostTerminal& terminal) {
  switch (mode) {
    case TtyMode::always:
      return true;
    case TtyMode::never:
      return false;
    case TtyMode::automatic:
      break;
  }
  return terminal.stdin_is_tty && terminal.stdout_is_tty;
}

void RawTerminalMode::enter(const HostTerminal& terminal) {
  if (active_ || !terminal.stdin_is_tty || !terminal.have_termios) return;
  saved_ = terminal.termios;
  struct termios raw = saved_;
  cfmakeraw(&raw);
  if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) active_ = true;
}

void RawTerminalMode::restore() {
  if (!active_) return;
  tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  active_ = false;
}

}  // namespace sbx::runtime
