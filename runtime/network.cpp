// The sandbox's network namespace. Mode "none": loopback only, brought up
// over rtnetlink (no `ip` binary runs at start). Mode "host": no namespace.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <cerrno>
#include <cstring>
#include <memory>

#include "runtime/sandbox_steps.hpp"

namespace sbx::runtime {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using MsgPtr = std::unique_ptr<nl_msg, Deleter<nl_msg, nlmsg_free>>;

bool bring_up_loopback(const LaunchPlan& plan, ChildError& err) {
  const auto& request = plan.loopback_up_request;
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return err.fail("socket(NETLINK_ROUTE)", errno);
  struct sockaddr_nl kernel {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) != static_cast<ssize_t>(request.size())) {
    int saved = errno;
    close(sock);
    return err.fail("netlink send (lo up)", saved);
  }
  // The request asks for an ACK: an nlmsgerr with error 0 means done.
  alignas(struct nlmsghdr) unsigned char reply[1024];
  ssize_t got;
  do {
    got = recv(sock, reply, sizeof reply, 0);
  } while (got < 0 && errno == EINTR);
  int saved = errno;
  close(sock);
  if (got < 0) return err.fail("netlink recv (lo up)", saved);
  auto* header = reinterpret_cast<struct nlmsghdr*>(reply);
  if (got < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(struct nlmsgerr))) ||
      header->nlmsg_type != NLMSG_ERROR) {
    return err.fail("netlink (lo up)", EPROTO, "unexpected reply");
  }
  const auto* ack = static_cast<const struct nlmsgerr*>(NLMSG_DATA(header));
  if (ack->error != 0) return err.fail("set loopback up", -ack->error, "lo");
  return true;
}

}  // namespace

std::vector<unsigned char> build_loopback_up_request() {
  // The loopback device of a fresh netns is always ifindex 1.
  LinkPtr orig(rtnl_link_alloc());
  LinkPtr change(rtnl_link_alloc());
  if (!orig || !change) throw std::bad_alloc();
  rtnl_link_set_ifindex(orig.get(), 1);
  rtnl_link_set_flags(change.get(), IFF_UP);
  struct nl_msg* raw = nullptr;
  int rc = rtnl_link_build_change_request(orig.get(), change.get(), 0, &raw);
  MsgPtr msg(raw);
  if (rc < 0 || !msg) {
    throw Error("cannot build the netlink request for the sandbox's loopback",
                "libnl-route is broken or too old; reinstall libnl-route-3");
  }
  struct nlmsghdr* header = nlmsg_hdr(msg.get());
  header->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  header->nlmsg_seq = 1;
  header->nlmsg_pid = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(header);
  return {bytes, bytes + header->nlmsg_len};
}

bool set_up_network(const LaunchPlan& plan, ChildError& err) {
  switch (plan.network) {
    case NetworkMode::host:
      return true;  // no netns: the host's network, by the user's choice
    case NetworkMode::none:
      // A netns starts with lo down: without this even 127.0.0.1 fails.
      return bring_up_loopback(plan, err);
    case NetworkMode::filtered:
      break;  // refused before clone; never run a command unfiltered
  }
  return err.fail("network", ENOSYS, "network mode filtered is not implemented");
}

}  // namespace sbx::runtime
