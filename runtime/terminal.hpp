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
  bool have_termios = false;
  struct termios termios {};  // stdin's settings, copied into the sandbox's pty
  bool have_winsize = false;
  struct winsize winsize {};
};

HostTerminal inspect_host_terminal();

// automatic: a pty when stdin and stdout are both terminals (an interactive
// session); piped output stays byte-exact (a pty would turn \n into \r\n).
bool wants_pty(TtyMode mode, const HostTerminal& terminal);

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
