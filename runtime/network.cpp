// The sandbox's network namespace. Mode "none": loopback only, brought up
// over rtnetlink (no `ip` binary runs at start). Mode "host": no namespace.
// Mode "filtered": loopback, `local default dev lo` routes, and the sockets
// the supervisor serves, created here inside the netns and passed out
// (runtime/filtered_network.hpp). Everything after clone only sends bytes
// built before it and makes system calls (async-signal-safe).
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <netinet/in.h>
#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "netfilter/netfilter.hpp"
#include "runtime/channel.hpp"
#include "runtime/filtered_network.hpp"
#include "runtime/sandbox_steps.hpp"

namespace sbx::runtime {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using MsgPtr = std::unique_ptr<nl_msg, Deleter<nl_msg, nlmsg_free>>;

// Sends one prebuilt rtnetlink request that asks for an ACK and checks it.
// `skip_errno`: an error code that means "not applicable here" (IPv6 routes
// on a kernel without IPv6): *skipped is set instead of failing.
bool netlink_request(const std::vector<unsigned char>& request, const char* what, ChildError& err,
                     int skip_errno = 0, bool* skipped = nullptr) {
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return err.fail("socket(NETLINK_ROUTE)", errno);
  struct sockaddr_nl kernel {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) != static_cast<ssize_t>(request.size())) {
    int saved = errno;
    close(sock);
    return err.fail("netlink send", saved, what);
  }
  // The request asks for an ACK: an nlmsgerr with error 0 means done.
  alignas(struct nlmsghdr) unsigned char reply[1024];
  ssize_t got;
  do {
    got = recv(sock, reply, sizeof reply, 0);
  } while (got < 0 && errno == EINTR);
  int saved = errno;
  close(sock);
  if (got < 0) return err.fail("netlink recv", saved, what);
  auto* header = reinterpret_cast<struct nlmsghdr*>(reply);
  if (got < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(struct nlmsgerr))) ||
      header->nlmsg_type != NLMSG_ERROR) {
    return err.fail("netlink", EPROTO, what);
  }
  const auto* ack = static_cast<const struct nlmsgerr*>(NLMSG_DATA(header));
  if (ack->error != 0 && skipped != nullptr && -ack->error == skip_errno) {
    *skipped = true;
    return true;
  }
  if (ack->error != 0) return err.fail("netlink", -ack->error, what);
  return true;
}

bool bring_up_loopback(const LaunchPlan& plan, ChildError& err) {
  // With the large segments first (when planned); on any refusal the plain
  // request, whose error is the one reported. Before Linux 6.4 a refused
  // size could leave lo up already (the size was checked after the flags):
  // setting it up again is harmless.
  ChildError ignored;
  if (!plan.loopback_large_segments_request.empty() &&
      netlink_request(plan.loopback_large_segments_request, "set loopback up", ignored))
    return true;
  return netlink_request(plan.loopback_up_request, "set loopback up", err);
}

bool send_socket(int control_fd, NetSocket role, std::uint16_t port, int fd, ChildError& err) {
  Message message;
  message.kind = MessageKind::net_socket;
  message.value = (static_cast<int>(role) << 16) | port;
  bool sent = send_message(control_fd, message, fd);
  int saved = errno;
  close(fd);
  if (!sent) return err.fail("pass a network socket to the supervisor", saved);
  return true;
}

// Where a socket made for the supervisor is bound: 127.0.0.1:N (host_ports)
// or port N of every address, IPv4 and IPv6 (DNS filter, egress listeners).
enum class Bind { loopback, every_address };

// A socket bound inside the netns, passed out and closed here. For every
// address: one IPv6 socket that takes IPv4 too (IPV6_V6ONLY off; its IPv4
// peers and addresses read as ::ffff:a.b.c.d), or an IPv4 socket on a
// kernel without IPv6. `roles`: the role to report for IPv4 and for IPv6.
bool make_and_send(int control_fd, std::pair<NetSocket, NetSocket> roles, int type,
                   std::uint16_t port, Bind where, ChildError& err, const char* what) {
  int family = where == Bind::loopback ? AF_INET : AF_INET6;
  int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 && family == AF_INET6 && errno == EAFNOSUPPORT) {
    family = AF_INET;
    fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  }
  if (fd < 0) return err.fail("socket", errno, what);
  int one = 1, zero = 0;
  if (type == SOCK_STREAM) (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // The ruleset accepts what sbx's own sockets send (net::kOwnSocketMark):
  // the DNS filter's replies go to whatever address the program used.
  const std::uint32_t mark = net::kOwnSocketMark;
  int rc = setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  if (rc == 0 && family == AF_INET6)
    rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (rc == 0 && type == SOCK_DGRAM) {
    // A reply must come from the address the query went to (a resolver
    // checks): recvmsg learns it (PKTINFO; IPV6_PKTINFO for IPv4 queries
    // too, as ::ffff:a.b.c.d), sendmsg sets it, which for an IPv6 address
    // no device carries needs IP_FREEBIND.
    rc = family == AF_INET ? setsockopt(fd, SOL_IP, IP_PKTINFO, &one, sizeof one)
                           : setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    if (rc == 0 && family == AF_INET6) rc = setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one);
  }
  if (rc != 0) {
    int saved = errno;
    close(fd);
    return err.fail("setsockopt", saved, what);
  }
  if (family == AF_INET) {
    struct sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(where == Bind::loopback ? INADDR_LOOPBACK : INADDR_ANY);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    struct sockaddr_in6 a {};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_any;
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc == 0 && type == SOCK_STREAM) rc = listen(fd, SOMAXCONN);
  if (rc != 0) {
    int saved = errno;
    close(fd);
    return err.fail("bind", saved, what);
  }
  return send_socket(control_fd, family == AF_INET ? roles.first : roles.second, port, fd, err);
}

bool open_netfilter_and_send(int control_fd, NetSocket role, ChildError& err) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return err.fail("socket(NETLINK_NETFILTER)", errno, "nfnetlink");
  // Error acks carry only the header, never the whole (large) batch.
  int one = 1;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return send_socket(control_fd, role, 0, fd, err);
}

// Filtered: routes, sockets out, then wait for the supervisor's ruleset.
bool set_up_filtered(const LaunchPlan& plan, int control_fd, ChildError& err) {
  if (!bring_up_loopback(plan, err)) return false;
  // Every destination becomes local to the netns: any connect() passes the
  // output hook (accepted to a listener of sbx, or rejected at once) instead
  // of ENETUNREACH.
  // 127.0.0.2 on lo: glibc's getaddrinfo(AI_ADDRCONFIG) (getent ahosts,
  // Node's dns.lookup, ...) returns nothing for IPv4 when 127.0.0.1 is the
  // only address; any other address counts. It is loopback: reaching it is
  // reaching the sandbox itself.
  if (!netlink_request(plan.address_request, "add address 127.0.0.2/32 dev lo", err)) return false;
  for (std::size_t i = 0; i < plan.route_requests.size(); ++i) {
    bool skipped = false;
    if (!netlink_request(plan.route_requests[i],
                         i == 0 ? "add route local default dev lo (IPv4)"
                                : "add route local default dev lo (IPv6)",
                         err, i == 0 ? 0 : EAFNOSUPPORT, &skipped))
      return false;
  }
  constexpr auto every = Bind::every_address;
  if (!open_netfilter_and_send(control_fd, NetSocket::netfilter, err) ||
      !open_netfilter_and_send(control_fd, NetSocket::nflog, err) ||
      !make_and_send(control_fd, {NetSocket::dns_udp4, NetSocket::dns_udp6}, SOCK_DGRAM,
                     kFilterDnsPort, every, err, "[::]:53/udp (DNS filter)") ||
      !make_and_send(control_fd, {NetSocket::dns_tcp4, NetSocket::dns_tcp6}, SOCK_STREAM,
                     kFilterDnsPort, every, err, "[::]:53/tcp (DNS filter)"))
    return false;
  for (std::uint16_t port : plan.egress_ports) {
    if (!make_and_send(control_fd, {NetSocket::egress4, NetSocket::egress6}, SOCK_STREAM, port,
                       every, err, "[::] (egress proxy, an allowed port)"))
      return false;
  }
  for (std::uint16_t port : plan.host_ports) {
    if (!make_and_send(control_fd, {NetSocket::host_port, NetSocket::host_port}, SOCK_STREAM, port,
                       Bind::loopback, err, "127.0.0.1 (host_ports)"))
      return false;
  }
  Message done;
  done.kind = MessageKind::net_sockets_done;
  if (!send_message(control_fd, done)) return err.fail("network sockets done", errno);
  // The supervisor now loads the ruleset through the passed socket and binds
  // NFLOG while we mount; wait_for_go holds the command back until then.
  return true;
}

}  // namespace

bool wait_for_go(const LaunchPlan& plan, int control_fd, ChildError& err) {
  if (!plan.wait_for_go) return true;
  char go = 0;
  const ssize_t got = read_go_byte(control_fd, &go);
  if (got == 0) _exit(kExitSbxError);  // the supervisor gave up (it reports why)
  if (got != 1 || go != kGoOn)
    return err.fail("wait for the supervisor's go", got < 0 ? errno : EPROTO);
  return true;
}

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

bool large_loopback_segments_safe(const char* kernel_release) {
  unsigned major = 0;
  unsigned minor = 0;
  if (kernel_release == nullptr || std::sscanf(kernel_release, "%u.%u", &major, &minor) != 2)
    return false;  // unknown: the plain loopback
  return major > 6 || (major == 6 && minor >= 4);
}

bool large_loopback_segments_safe() {
  struct utsname name {};
  return ::uname(&name) == 0 && large_loopback_segments_safe(name.release);
}

std::vector<unsigned char> with_large_loopback_segments(std::vector<unsigned char> request,
                                                        std::uint32_t segment_bytes) {
  // Each attribute: an rtattr and a u32, appended to the request's end (its
  // length is NLMSG_ALIGNed, so the first attribute starts aligned).
  for (unsigned short type : {kIflaGsoMaxSize, kIflaGsoIpv4MaxSize}) {
    struct {
      struct rtattr header;
      std::uint32_t value;
    } attribute{};
    static_assert(sizeof attribute == RTA_LENGTH(4));
    attribute.header.rta_len = RTA_LENGTH(4);
    attribute.header.rta_type = type;
    attribute.value = segment_bytes;
    const auto* bytes = reinterpret_cast<const unsigned char*>(&attribute);
    request.insert(request.end(), bytes, bytes + sizeof attribute);
  }
  struct nlmsghdr header;
  std::memcpy(&header, request.data(), sizeof header);
  header.nlmsg_len = static_cast<std::uint32_t>(request.size());
  std::memcpy(request.data(), &header, sizeof header);
  return request;
}

std::vector<unsigned char> build_local_default_route_request(int family) {
  // `ip route add local default dev lo table local` (-4 / -6), by hand: a
  // header, an rtmsg and one RTA_OIF attribute.
  struct {
    struct nlmsghdr header;
    struct rtmsg rtm;
    struct rtattr oif_attr;
    std::uint32_t oif;
  } request{};
  static_assert(sizeof request == NLMSG_LENGTH(sizeof(struct rtmsg)) + RTA_LENGTH(4));
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_NEWROUTE;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  request.header.nlmsg_seq = 2;
  request.rtm.rtm_family = static_cast<unsigned char>(family);
  request.rtm.rtm_dst_len = 0;
  request.rtm.rtm_table = RT_TABLE_LOCAL;
  request.rtm.rtm_protocol = RTPROT_BOOT;
  request.rtm.rtm_scope = RT_SCOPE_HOST;
  request.rtm.rtm_type = RTN_LOCAL;
  request.oif_attr.rta_len = RTA_LENGTH(4);
  request.oif_attr.rta_type = RTA_OIF;
  request.oif = 1;  // lo is ifindex 1 in a new netns
  const auto* bytes = reinterpret_cast<const unsigned char*>(&request);
  return {bytes, bytes + sizeof request};
}

std::vector<unsigned char> build_sandbox_address_request() {
  // `ip addr add 127.0.0.2/32 dev lo`: ifaddrmsg + IFA_LOCAL + IFA_ADDRESS.
  struct {
    struct nlmsghdr header;
    struct ifaddrmsg ifa;
    struct rtattr local_attr;
    std::uint32_t local;
    struct rtattr address_attr;
    std::uint32_t address;
  } request{};
  static_assert(sizeof request == NLMSG_LENGTH(sizeof(struct ifaddrmsg)) + 2 * RTA_LENGTH(4));
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_NEWADDR;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  request.header.nlmsg_seq = 3;
  request.ifa.ifa_family = AF_INET;
  request.ifa.ifa_prefixlen = 32;
  request.ifa.ifa_scope = RT_SCOPE_HOST;
  request.ifa.ifa_index = 1;
  request.local_attr.rta_len = RTA_LENGTH(4);
  request.local_attr.rta_type = IFA_LOCAL;
  request.local = htonl(0x7f000002);
  request.address_attr.rta_len = RTA_LENGTH(4);
  request.address_attr.rta_type = IFA_ADDRESS;
  request.address = htonl(0x7f000002);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&request);
  return {bytes, bytes + sizeof request};
}

bool set_up_network(const LaunchPlan& plan, int control_fd, ChildError& err) {
  switch (plan.network) {
    case NetworkMode::host:
      return true;  // no netns: the host's network, by the user's choice
    case NetworkMode::none:
      // A netns starts with lo down: without this even 127.0.0.1 fails.
      return bring_up_loopback(plan, err);
    case NetworkMode::filtered:
      return set_up_filtered(plan, control_fd, err);
  }
  return err.fail("network", EINVAL, "unknown network mode");
}

bool serve_socket_request(int control_fd) {
  char request = 0;
  ssize_t got = recv(control_fd, &request, 1, MSG_DONTWAIT);
  if (got < 0) return errno == EINTR || errno == EAGAIN;
  if (got == 0) return false;  // supervisor gone: PDEATHSIG follows
  if (request != kSocketRequest) return true;
  // An unconnected TCP socket of the sandbox netns: the supervisor connects
  // it to 127.0.0.1:SANDBOX_PORT (connect works from any process and netns).
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  Message message;
  message.kind = MessageKind::net_socket;
  message.value = static_cast<int>(NetSocket::sandbox_conn) << 16;
  (void)send_message(control_fd, message, fd);  // fd -1: the supervisor resets the client
  if (fd >= 0) close(fd);
  return true;
}

}  // namespace sbx::runtime
