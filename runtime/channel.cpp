#include "runtime/channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sbx::runtime {

ssize_t read_go_byte(int sock, char* byte) {
  ssize_t got;
  do {
    got = read(sock, byte, 1);
  } while (got < 0 && errno == EINTR);
  return got;
}

bool send_message(int sock, const Message& message, int pass_fd) {
  struct iovec iov {};
  iov.iov_base = const_cast<Message*>(&message);
  iov.iov_len = sizeof message;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
  }
  ssize_t sent;
  do {
    sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(sizeof message);
}

bool send_failure(int sock, const ChildError& error) {
  Message message;
  message.kind = MessageKind::failure;
  message.error = error;
  return send_message(sock, message);
}

int receive_message(int sock, Message& message, int* received_fd) {
  *received_fd = -1;
  struct iovec iov {};
  iov.iov_base = &message;
  iov.iov_len = sizeof message;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got;
  do {
    got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return -1;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      std::memcpy(received_fd, CMSG_DATA(cmsg), sizeof(int));
    }
  }
  if (got == 0) return 0;
  if (got != static_cast<ssize_t>(sizeof message) || (msg.msg_flags & MSG_CTRUNC) != 0) {
    if (*received_fd >= 0) close(*received_fd);
    *received_fd = -1;
    // A whole message whose fd was dropped: most likely this process had no
    // fd free (a security module refusing the fd, or a sender attaching
    // more than one, would look the same; init sends one).
    errno = got == static_cast<ssize_t>(sizeof message) ? EMFILE : EPROTO;
    return -1;
  }
  // Never trust the sandbox's strings to be terminated.
  message.error.step[sizeof message.error.step - 1] = '\0';
  message.error.detail[sizeof message.error.detail - 1] = '\0';
  return 1;
}

}  // namespace sbx::runtime
