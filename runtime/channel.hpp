// Messages between the sandbox (init, worker) and the supervisor.
//
// Two SOCK_SEQPACKET socketpairs, created before clone:
//  - control: supervisor <-> init. The supervisor releases init with one byte
//    once the id maps are written; init reports its own failure, and at the
//    end the worker's raw wait status (init, as pid 1, cannot die by the
//    worker's signal itself).
//  - exec: worker -> supervisor. Only the worker keeps the sandbox end, close-
//    on-exec, so EOF means "execve succeeded" (or the worker died); before it,
//    the worker sends the pty master and the seccomp listener (SCM_RIGHTS) or
//    a failure.
// SEQPACKET keeps each message whole, so init and worker never interleave.
// The sending side is async-signal-safe (one sendmsg, no allocation).
#pragma once

#include <sys/types.h>

#include "runtime/child_error.hpp"

namespace sbx::runtime {

enum class MessageKind : int {
  failure = 1,        // error holds the failed step
  pty_master = 2,     // fd attached: the master of the worker's pty
  notify_fd = 3,      // fd attached: the seccomp user-notification listener
  worker_status = 4,  // value = raw wait status of the worker
  // Network "filtered" (filtered_network.hpp), init -> supervisor:
  net_socket = 5,        // fd attached; value = NetSocket role << 16 | port
  net_sockets_done = 6,  // every socket sent; init waits for the ruleset
  // init -> supervisor, right before worker_status: the worker is reaped and
  // init has no child left, so no process of the sandbox is (init's own
  // exit aside): host-side clean-up may start (supervisor.hpp sandbox_gone),
  // which removes the placeholders that keep protected paths uncreatable.
  // Sound only while (a) only init holds the control channel (the worker
  // closes it; init is not dumpable) and (b) nothing enters the sandbox's
  // pid namespace from outside (no exec/attach feature: such a process's
  // parent is not below init). Whoever changes either must change this.
  sandbox_empty = 7,
  // init -> supervisor, first after the release of an early start
  // (shared_init.hpp): init has an fd table of its own now, so the
  // supervisor closes its copies of init's channel ends and join fds.
  fd_table_own = 8,
};

struct Message {
  MessageKind kind = MessageKind::failure;
  int value = 0;
  ChildError error;
};

// Sandbox side. Returns false (errno set) when the message could not be sent.
bool send_message(int sock, const Message& message, int pass_fd = -1);
bool send_failure(int sock, const ChildError& error);

// Sandbox side: waits for the supervisor's one-byte go-ahead (release,
// ruleset loaded) into *byte. 1 = read, 0 = EOF (the supervisor is gone or
// gave up), -1 = error (errno set). Retries EINTR; async-signal-safe.
ssize_t read_go_byte(int sock, char* byte);

// Supervisor side: 1 = message read (*received_fd = attached fd or -1),
// 0 = EOF, -1 = error (errno set; EAGAIN when nothing is pending; EMFILE when
// the message came but its fd could not be installed here, most likely for
// lack of a free fd).
int receive_message(int sock, Message& message, int* received_fd);

}  // namespace sbx::runtime
