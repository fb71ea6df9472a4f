// The host terminal as the supervisor sees it: whether to give the command a
// pty, the state to copy into it, and raw mode while relaying.
#pragma once

#include <sys/ioctl.h>
#include <termios.h>

#include <sbx/policy.hpp>

namespace sbx::runtime {

struct HostTerminal {
  bool stdin_is_tty = false;
  bool stdout_is_tty = false;
  bool stderr_is_tty = false;
  bool have_termios = false;
  struct termios termios {};  // the first terminal's settings, copied into the sandbox's pty
  bool have_winsize = false;
  struct winsize winsize {};
};

HostTerminal inspect_host_terminal();

// Which of fds 0, 1, 2 (bit 0, 1, 2) the command gets as the slave of its
// own pty; 0 = no pty. The sandbox never gets the user's terminal: with
// `automatic` (and `always`), every fd that is a terminal is replaced by the
// pty, and fds that are pipes or files stay as they are, so piped output
// stays byte-exact (a pty would turn \n into \r\n). `always` with no
// terminal at all gives all three. `never`: stdio passed as is (still in a
// new session, so TIOCSTI fails).
unsigned pty_stdio_mask(TtyMode mode, const HostTerminal& terminal);

// Where the supervisor writes what the pty master reads: the host's stdout
// when the command's stdout is the pty, else its stderr, else nowhere (-1:
// only the echo of typed keys, which must not corrupt piped output).
int pty_output_fd(unsigned mask);

// Puts stdin's terminal into raw mode (keys go to the command's pty, ^C
// included) and restores the saved settings on destruction, on every path
// out of sbx::run, exceptions included.
class RawTerminalMode {
 public:
  RawTerminalMode() = default;
  RawTerminalMode(const RawTerminalMode&) = delete;
  RawTerminalMode& operator=(const RawTerminalMode&) = delete;
  ~RawTerminalMode() { restore(); }
  void enter(const HostTerminal& terminal);
  void restore();

 private:
  bool active_ = false;
  struct termios saved_ {};
};

}  // namespace sbx::runtime
