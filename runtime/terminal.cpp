#include "runtime/terminal.hpp"

#include <unistd.h>

namespace sbx::runtime {

HostTerminal inspect_host_terminal() {
  HostTerminal t;
  t.stdin_is_tty = isatty(STDIN_FILENO) == 1;
  t.stdout_is_tty = isatty(STDOUT_FILENO) == 1;
  t.stderr_is_tty = isatty(STDERR_FILENO) == 1;
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (isatty(fd) == 1 && tcgetattr(fd, &t.termios) == 0) {
      t.have_termios = true;
      break;
    }
  }
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (ioctl(fd, TIOCGWINSZ, &t.winsize) == 0 && t.winsize.ws_row > 0) {
      t.have_winsize = true;
      break;
    }
  }
  return t;
}

unsigned pty_stdio_mask(TtyMode mode, const HostTerminal& terminal) {
  if (mode == TtyMode::never) return 0;
  unsigned mask = (terminal.stdin_is_tty ? 1u : 0u) | (terminal.stdout_is_tty ? 2u : 0u) |
                  (terminal.stderr_is_tty ? 4u : 0u);
  if (mode == TtyMode::always && mask == 0) mask = 7;
  return mask;
}

int pty_output_fd(unsigned mask) {
  if (mask & 2u) return STDOUT_FILENO;
  if (mask & 4u) return STDERR_FILENO;
  return -1;
}

void RawTerminalMode::enter(const HostTerminal& terminal) {
  if (active_ || !terminal.stdin_is_tty || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
  struct termios raw = saved_;
  cfmakeraw(&raw);
  // Keep output processing (ONLCR): what the pty sends already has \r\n, and
  // output that bypasses the pty (a pipe to the same terminal) still
  // displays as lines rather than a staircase.
  raw.c_oflag = saved_.c_oflag;
  if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) active_ = true;
}

void RawTerminalMode::restore() {
  if (!active_) return;
  tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  active_ = false;
}

}  // namespace sbx::runtime
