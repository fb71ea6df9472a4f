// Talking to the kernel: acked batch sends over NETLINK_NETFILTER, NFLOG
// binding and parsing, the netns's loopback + `local default` routes, and
// route lookups (RTM_GETROUTE) for the egress proxy.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

namespace sbx::net {
namespace {

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

// Waits for `expected` acks of the messages sent with sequence numbers
// first_seq..last_seq. Acks of other numbers are skipped: those of an
// earlier request whose caller stopped waiting (a time-out) would otherwise
// count for this one, or pin its error on it. Any NLMSG_ERROR of the range
// with a non-zero code fails the whole call (for a batch: the kernel
// aborted the transaction, nothing of it is applied).
void wait_for_acks(int fd, std::uint32_t first_seq, std::uint32_t last_seq, std::uint32_t expected,
                   std::chrono::milliseconds deadline, const char* what) {
  auto until = std::chrono::steady_clock::now() + deadline;
  // Not zero-filled: acks are small (NETLINK_CAP_ACK), and clearing 64 KiB
  // per batch cost every ruleset load and every DNS answer's set update.
  constexpr std::size_t kBufSize = 1 << 16;
  const auto storage = std::make_unique_for_overwrite<char[]>(kBufSize);
  char* const buf = storage.get();
  std::uint32_t seen = 0;
  int first_error = 0;
  std::uint32_t error_seq = 0;
  while (seen < expected) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw Error(std::string(what) + ": no answer from the kernel within " +
                  std::to_string(deadline.count()) + " ms");
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(std::string(what) + ": poll: " + errno_text(errno));
    if (r == 0) continue;
    ssize_t n = recv(fd, buf, kBufSize, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      throw Error(std::string(what) + ": recv: " + errno_text(errno),
                  errno == ENOBUFS ? "the netlink receive buffer overflowed" : "");
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;  // events on a shared socket
      if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) continue;
      if (nlh->nlmsg_seq - first_seq > last_seq - first_seq) continue;  // not ours (wraps too)
      auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      ++seen;
      if (err->error != 0 && first_error == 0) {
        first_error = -err->error;
        error_seq = nlh->nlmsg_seq;
      }
    }
    // After an error the kernel may not ack the rest: stop once it settled.
    if (first_error != 0) break;
  }
  if (first_error != 0) {
    throw Error(std::string(what) + ": the kernel refused message seq " +
                    std::to_string(error_seq) + ": " + errno_text(first_error) + " (" +
                    std::strerror(first_error) + ")",
                first_error == EPERM
                    ? "the socket must belong to a netns whose user namespace grants CAP_NET_ADMIN"
                    : "");
  }
}

void send_all(int fd, const void* data, std::size_t len, const char* what) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = sendto(fd, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  if (n < 0) {
    throw Error(
        std::string(what) + ": sendto: " + errno_text(errno),
        errno == EMSGSIZE ? "the batch exceeds the socket send buffer: send fewer elements" : "");
  }
  if (static_cast<std::size_t>(n) != len) throw Error(std::string(what) + ": short netlink send");
}

}  // namespace

namespace {

int open_netlink_socket(int protocol, const char* name) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw Error(std::string("cannot open a ") + name + " socket: " + errno_text(errno));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
    int e = errno;
    close(fd);
    throw Error(std::string("cannot bind a ") + name + " socket: " + errno_text(e));
  }
  return fd;
}

}  // namespace

int open_netfilter_socket() {
  return open_netlink_socket(NETLINK_NETFILTER, "NETLINK_NETFILTER");
}

void send_batch(int netlink_fd, const Batch& batch, std::chrono::milliseconds deadline) {
  send_all(netlink_fd, batch.bytes.data(), batch.bytes.size(), "nftables batch");
  // BEGIN, the acked messages, END: an error may name BEGIN or END too.
  wait_for_acks(netlink_fd, batch.first_seq, batch.first_seq + batch.acked_messages + 1,
                batch.acked_messages, deadline, "nftables batch");
}

// ---------------------------------------------------------------------------
// NFLOG

std::vector<std::uint8_t> build_nflog_bind(std::uint16_t group, std::uint32_t seq) {
  std::vector<std::uint8_t> out;
  std::vector<char> buf(8192);
  auto message = [&](auto&& fill) {
    std::fill(buf.begin(), buf.end(), 0);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = seq++;
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = AF_UNSPEC;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = htons(group);
    fill(nlh);
    out.insert(out.end(), buf.data(), buf.data() + NLMSG_ALIGN(nlh->nlmsg_len));
  };
  message([](nlmsghdr* nlh) {
    nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
    mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof cmd, &cmd);
  });
  message([](nlmsghdr* nlh) {
    nfulnl_msg_config_mode mode{};
    mode.copy_mode = NFULNL_COPY_PACKET;
    mode.copy_range = htonl(128);  // IP + transport headers are all we read
    mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof mode, &mode);
    // Deliver each packet at once: the default queue threshold (100) and
    // flush timeout (1 s) would delay the event for a blocked connect.
    mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(1));
    mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(1));
  });
  return out;
}

void nflog_bind(int netlink_fd, std::uint16_t group) {
  // Room for a few thousand reports (the default ~200 KiB holds a few
  // hundred): a burst of blocked packets then costs the kernel fewer
  // dropped reports (ENOBUFS). The kernel doubles the request: 4 MiB. FORCE
  // passes rmem_max: the supervisor holds CAP_NET_ADMIN over the sandbox
  // netns, which owns the socket; where it does not, the plain size (capped
  // at rmem_max) is the fallback.
  const int bytes = 2 << 20;
  if (setsockopt(netlink_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    (void)setsockopt(netlink_fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  auto msgs = build_nflog_bind(group, 1);  // two messages, seq 1 and 2
  send_all(netlink_fd, msgs.data(), msgs.size(), "NFLOG bind");
  wait_for_acks(netlink_fd, 1, 2, 2, std::chrono::milliseconds(2000), "NFLOG bind");
}

namespace {

bool parse_ip_packet(const std::uint8_t* p, std::size_t len, LoggedPacket& out) {
  if (len < 1) return false;
  unsigned version = p[0] >> 4;
  std::size_t l4 = 0;
  if (version == 4) {
    if (len < 20) return false;
    std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
    if (ihl < 20 || ihl > len) return false;
    out.protocol = p[9];
    out.source = IpAddress::from_v4_bytes(p + 12);
    out.destination = IpAddress::from_v4_bytes(p + 16);
    std::uint16_t frag = static_cast<std::uint16_t>((p[6] << 8) | p[7]) & 0x1fff;
    if (frag != 0) return true;  // a later fragment has no ports
    l4 = ihl;
  } else if (version == 6) {
    if (len < 40) return false;
    out.protocol = p[6];
    out.source = IpAddress::from_v6_bytes(p + 8);
    out.destination = IpAddress::from_v6_bytes(p + 24);
    l4 = 40;  // extension headers: ports left at 0, protocol as the next header
  } else {
    return false;
  }
  if ((out.protocol == IPPROTO_TCP || out.protocol == IPPROTO_UDP) && len >= l4 + 4) {
    out.destination_port = static_cast<std::uint16_t>((p[l4 + 2] << 8) | p[l4 + 3]);
  }
  return true;
}

}  // namespace

std::vector<LoggedPacket> parse_nflog(std::span<const std::uint8_t> buffer) {
  std::vector<LoggedPacket> out;
  // Walk the messages by hand with bounds checks: the buffer is kernel data,
  // but the parser is also fuzzed and must not trust lengths.
  std::size_t off = 0;
  while (buffer.size() - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, buffer.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > buffer.size() - off) break;
    std::size_t msg_end = off + h.nlmsg_len;
    if (h.nlmsg_type == ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) &&
        h.nlmsg_len >= NLMSG_LENGTH(sizeof(nfgenmsg))) {
      LoggedPacket pkt;
      bool have_payload = false;
      std::size_t a = off + NLMSG_LENGTH(sizeof(nfgenmsg));
      a = off + NLMSG_ALIGN(a - off);
      while (a + sizeof(nlattr) <= msg_end) {
        nlattr attr;
        std::memcpy(&attr, buffer.data() + a, sizeof attr);
        if (attr.nla_len < sizeof(nlattr) || attr.nla_len > msg_end - a) break;
        const std::uint8_t* data = buffer.data() + a + sizeof(nlattr);
        std::size_t dlen = attr.nla_len - sizeof(nlattr);
        switch (attr.nla_type & NLA_TYPE_MASK) {
          case NFULA_PREFIX:
            pkt.prefix.assign(reinterpret_cast<const char*>(data),
                              strnlen(reinterpret_cast<const char*>(data), dlen));
            break;
          case NFULA_PAYLOAD:
            have_payload = parse_ip_packet(data, dlen, pkt);
            break;
          default:
            break;
        }
        a += NLA_ALIGN(attr.nla_len);
      }
      if (have_payload) out.push_back(std::move(pkt));
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
    if (off > buffer.size()) break;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Routes

namespace {

void rtnl_request(int fd, nlmsghdr* nlh, const char* what) {
  send_all(fd, nlh, nlh->nlmsg_len, what);
  wait_for_acks(fd, nlh->nlmsg_seq, nlh->nlmsg_seq, 1, std::chrono::milliseconds(2000), what);
}

}  // namespace

void configure_netns_routes() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw Error("cannot open a NETLINK_ROUTE socket: " + errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  char buf[8192];
  const unsigned lo_index = 1;  // lo is always ifindex 1 in a new netns

  std::memset(buf, 0, sizeof buf);
  auto* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 1;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = lo_index;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  rtnl_request(fd, nlh, "set lo up");

  // `ip route add local default dev lo` (and -6): every destination becomes a
  // local address of the netns, so packets to the internet go through the
  // output hook (ruleset) and, when accepted, reach the listener of their
  // port (sbx binds its listeners to every address).
  for (unsigned char family : {AF_INET, AF_INET6}) {
    std::memset(buf, 0, sizeof buf);
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    nlh->nlmsg_seq = 2;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = family;
    rtm->rtm_dst_len = 0;
    rtm->rtm_table = RT_TABLE_LOCAL;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_HOST;
    rtm->rtm_type = RTN_LOCAL;
    mnl_attr_put_u32(nlh, RTA_OIF, lo_index);
    rtnl_request(
        fd, nlh,
        family == AF_INET ? "add IPv4 local default route" : "add IPv6 local default route");
  }
}

// ---------------------------------------------------------------------------
// Route lookup

int open_route_socket() {
  return open_netlink_socket(NETLINK_ROUTE, "NETLINK_ROUTE");
}

bool Route::local() const {
  if (error != 0) return false;
  return type == RTN_LOCAL || type == RTN_BROADCAST || type == RTN_ANYCAST || type == RTN_MULTICAST;
}

Route lookup_route(int route_fd, const IpAddress& destination, std::chrono::milliseconds deadline) {
  const std::string what = "route lookup for " + destination.str();
  if (destination.family != AF_INET && destination.family != AF_INET6)
    throw Error(what + ": not an IPv4 or IPv6 address");
  // Each request its own number: the answer to an earlier one whose caller
  // stopped waiting (a time-out) is skipped, never taken for this one's.
  static std::atomic<std::uint32_t> next_seq{1};
  const std::uint32_t seq = next_seq.fetch_add(1);

  alignas(nlmsghdr) char request[256] = {};
  auto* nlh = mnl_nlmsg_put_header(request);
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = seq;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(destination.family);
  rtm->rtm_dst_len = static_cast<unsigned char>(destination.size() * 8);
  mnl_attr_put(nlh, RTA_DST, destination.size(), destination.bytes.data());
  send_all(route_fd, nlh, nlh->nlmsg_len, what.c_str());

  // The kernel answers within sendto() (rtnetlink is synchronous): the
  // deadline only guards against a socket that never answers.
  auto until = std::chrono::steady_clock::now() + deadline;
  alignas(nlmsghdr) char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw Error(what + ": no answer from the kernel within " + std::to_string(deadline.count()) +
                  " ms");
    }
    pollfd p{route_fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(what + ": poll: " + errno_text(errno));
    if (r == 0) continue;
    sockaddr_nl from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(route_fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) throw Error(what + ": recv: " + errno_text(errno));
    if (from.nl_pid != 0) continue;  // not the kernel's
    if (static_cast<std::size_t>(n) > sizeof buf)
      throw Error(what + ": the kernel's answer (" + std::to_string(n) + " bytes) was truncated");
    int len = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len)) {
      if (m->nlmsg_seq != seq) continue;  // an earlier request's late answer
      if (m->nlmsg_type == NLMSG_ERROR) {
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr)))
          throw Error(what + ": a truncated error from the kernel");
        const int err = -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m))->error;
        if (err == ENETUNREACH || err == EHOSTUNREACH) return Route{err, 0};
        throw Error(what + ": the kernel answered " +
                    (err == 0 ? "without a route" : errno_text(err)));
      }
      if (m->nlmsg_type != RTM_NEWROUTE || m->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)))
        throw Error(what + ": an unexpected answer from the kernel (type " +
                    std::to_string(m->nlmsg_type) + ")");
      return Route{0, static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m))->rtm_type};
    }
  }
}

}  // namespace sbx::net
