// Loads the real ruleset into a fresh user+net namespace (unprivileged, no nft
// binary) and checks what connect()/sendto() can and cannot reach.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "../netns_child.hpp"
#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

using namespace sbx::net;
using Clock = std::chrono::steady_clock;

namespace {

using sbx::testing::Observations;

sockaddr_storage make_addr(const char* ip, std::uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  auto a = IpAddress::parse(ip);
  if (a->family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a->bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, a->bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

// As sandbox init makes sbx's sockets: marked, so the ruleset lets their
// packets out whatever the destination.
int listen_on(const char* ip, std::uint16_t port, int type = SOCK_STREAM, bool marked = true) {
  socklen_t len;
  auto ss = make_addr(ip, port, len);
  // Non-blocking: a missing connection makes accept() fail the check, not hang.
  int fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const std::uint32_t mark = kOwnSocketMark;
  if (marked && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) return -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return -1;
  if (type == SOCK_STREAM && listen(fd, 16) != 0) return -1;
  return fd;
}

// The accepted connection's own address: where the program connected to.
std::string accepted_destination(int listener) {
  pollfd p{listener, POLLIN, 0};
  poll(&p, 1, 500);
  int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0) return "none";
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  getsockname(c, reinterpret_cast<sockaddr*>(&local), &len);
  close(c);
  char b[INET6_ADDRSTRLEN] = {};
  if (local.ss_family == AF_INET) {
    auto& a = reinterpret_cast<sockaddr_in&>(local);
    inet_ntop(AF_INET, &a.sin_addr, b, sizeof b);
    return std::string(b) + ":" + std::to_string(ntohs(a.sin_port));
  }
  auto& a = reinterpret_cast<sockaddr_in6&>(local);
  inet_ntop(AF_INET6, &a.sin6_addr, b, sizeof b);
  return std::string(b) + ":" + std::to_string(ntohs(a.sin6_port));
}

// connect() result: "ok" or the errno name, plus the time it took.
std::string try_connect(const char* ip, std::uint16_t port, double* ms = nullptr) {
  socklen_t len;
  auto ss = make_addr(ip, port, len);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto t0 = Clock::now();
  int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int e = errno;
  if (ms) *ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  close(fd);
  return r == 0 ? "ok" : strerrorname_np(e);
}

std::string drain_nflog(int fd, int wait_ms) {
  std::string out;
  std::vector<std::uint8_t> buf(65536);
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, wait_ms) > 0) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    for (const auto& pkt : parse_nflog({buf.data(), static_cast<std::size_t>(n)})) {
      out += pkt.prefix + std::to_string(pkt.protocol) + " " + pkt.destination.str() + ":" +
             std::to_string(pkt.destination_port) + ";";
    }
    wait_ms = 50;
  }
  return out;
}

void add_allow(int nfd, const char* ip, std::chrono::milliseconds timeout) {
  AllowElement el{*IpAddress::parse(ip), timeout};
  static std::uint32_t seq = 1000;
  auto batch = build_allow_batch("sbx", {&el, 1}, seq);
  seq += 100;
  send_batch(nfd, batch);
}

Observations scenario() {
  Observations o;
  configure_netns_routes();
  int nfd = open_netfilter_socket();
  RulesetConfig cfg;
  cfg.allow_ports = {443, 8443};
  cfg.host_ports = {8443};
  cfg.nflog_group = 7;
  auto denies = effective_deny_cidrs(std::vector<std::string>{"198.51.100.200/32"});
  cfg.deny_cidrs = denies;
  cfg.allow_cidrs = {*Cidr::parse("203.0.113.0/28"), *Cidr::parse("2001:db8:1::/64"),
                     *Cidr::parse("10.9.0.0/16")};
  send_batch(nfd, build_ruleset_batch(cfg, 1));
  o["ruleset"] = "ok";
  int logfd = open_netfilter_socket();
  nflog_bind(logfd, 7);

  // As in the sandbox: an egress listener per allowed port on every
  // address, the DNS filter on port 53 of every address.
  int egress4 = listen_on("0.0.0.0", 443);
  int egress6 = listen_on("::", 443);
  int egress4b = listen_on("0.0.0.0", 8443);
  int egress6b = listen_on("::", 8443);
  int local = listen_on("127.0.0.1", 9000, SOCK_STREAM, false);
  int dns = listen_on("0.0.0.0", 53, SOCK_DGRAM);
  o["listeners"] =
      (egress4 >= 0 && egress6 >= 0 && egress4b >= 0 && egress6b >= 0 && local >= 0 && dns >= 0)
          ? "ok"
          : "fail";

  o["loopback"] = try_connect("127.0.0.1", 9000);
  // An egress port on loopback: refused as if nothing listened, not logged,
  // unless a host_ports entry is served there.
  o["loopback_egress_port"] = try_connect("127.0.0.1", 443);
  o["loopback_egress_port6"] = try_connect("::1", 443);
  o["loopback_host_port"] = try_connect("127.0.0.1", 8443);
  if (o["loopback_host_port"] == "ok") accepted_destination(egress4b);
  // A host port that is also an egress port: 127.0.0.1 only, as any host port.
  o["loopback_host_port_other"] = try_connect("127.0.0.2", 8443);
  o["loopback_host_port6"] = try_connect("::1", 8443);
  o["loopback_log"] = drain_nflog(logfd, 100);

  double ms = 0;
  o["unlisted"] = try_connect("198.51.100.7", 443, &ms);
  o["unlisted_ms"] = std::to_string(ms);
  o["unlisted_log"] = drain_nflog(logfd, 500);

  add_allow(nfd, "198.51.100.7", std::chrono::seconds(60));
  o["allowed"] = try_connect("198.51.100.7", 443);
  o["allowed_original_dst"] = accepted_destination(egress4);
  o["allowed_wrong_port"] = try_connect("198.51.100.7", 22);
  drain_nflog(logfd, 200);

  // deny_cidrs win over the allow set.
  add_allow(nfd, "10.1.2.3", std::chrono::seconds(60));
  add_allow(nfd, "198.51.100.200", std::chrono::seconds(60));
  o["denied_private"] = try_connect("10.1.2.3", 443, &ms);
  o["denied_private_ms"] = std::to_string(ms);
  o["denied_policy"] = try_connect("198.51.100.200", 443);
  o["denied_log"] = drain_nflog(logfd, 500);
  o["metadata"] = try_connect("169.254.169.254", 80);

  // allow_cidrs: reachable on allowed ports without DNS; deny still wins.
  o["cidr_in"] = try_connect("203.0.113.5", 443);
  o["cidr_edge"] = try_connect("203.0.113.15", 8443);
  o["cidr_out"] = try_connect("203.0.113.16", 443);
  o["cidr_port"] = try_connect("203.0.113.5", 22);
  o["cidr_v6"] = try_connect("2001:db8:1::77", 443);
  o["cidr_denied"] = try_connect("10.9.1.1", 443);
  drain_nflog(logfd, 100);

  // UDP to anything but DNS is rejected (QUIC falls back to TCP).
  {
    socklen_t len;
    auto ss = make_addr("198.51.100.7", 443, len);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    connect(u, reinterpret_cast<sockaddr*>(&ss), len);
    ssize_t s1 = send(u, "x", 1, 0);
    int e1 = s1 < 0 ? errno : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ssize_t s2 = send(u, "x", 1, 0);
    int e2 = s2 < 0 ? errno : 0;
    o["udp"] =
        std::string(e1 ? strerrorname_np(e1) : "sent") + "," + (e2 ? strerrorname_np(e2) : "sent");
    close(u);
    o["udp_log"] = drain_nflog(logfd, 500);
  }

  // DNS to a hard-coded resolver lands on the filter's socket, and the
  // filter's (marked) reply comes back from that address.
  {
    socklen_t len;
    auto ss = make_addr("8.8.8.8", 53, len);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sendto(u, "q", 1, 0, reinterpret_cast<sockaddr*>(&ss), len);
    pollfd p{dns, POLLIN, 0};
    char b[16];
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    bool got = poll(&p, 1, 1000) == 1 &&
               recvfrom(dns, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&from), &flen) == 1;
    o["dns_to_filter"] = got ? "ok" : "lost";
    if (got) sendto(dns, "a", 1, 0, reinterpret_cast<sockaddr*>(&from), flen);
    pollfd q{u, POLLIN, 0};
    sockaddr_storage src{};
    socklen_t slen = sizeof src;
    got = poll(&q, 1, 1000) == 1 &&
          recvfrom(u, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&src), &slen) == 1;
    o["dns_reply"] =
        got ? IpAddress::from_v4_bytes(&reinterpret_cast<sockaddr_in&>(src).sin_addr).str()
            : "lost";
    close(u);
  }
  // A reply from a socket that is not sbx's (no mark) to such an address is
  // blocked like any other packet.
  {
    int plain = listen_on("127.0.0.1", 5300, SOCK_DGRAM, false);
    socklen_t len;
    auto ss = make_addr("198.51.100.9", 5301, len);
    o["unmarked_send"] = sendto(plain, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) == 1
                             ? "sent"
                             : strerrorname_np(errno);
    close(plain);
    drain_nflog(logfd, 100);
  }

  // Drain connections queued by the checks above.
  for (int l : {egress4, egress6}) {
    int c;
    pollfd p{l, POLLIN, 0};
    while (poll(&p, 1, 0) == 1 && (c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) close(c);
  }
  // IPv6 follows the same path.
  o["v6_unlisted"] = try_connect("2001:db8::5", 443);
  add_allow(nfd, "2001:db8::5", std::chrono::seconds(60));
  o["v6_allowed"] = try_connect("2001:db8::5", 443);
  o["v6_original_dst"] = accepted_destination(egress6);
  o["v6_ula"] = try_connect("fd00::2", 443);
  drain_nflog(logfd, 100);

  // Expiry, and the add/delete/add refresh; a connection admitted before
  // its element expired goes on (no conntrack: its packets are not SYNs).
  add_allow(nfd, "198.51.100.40", std::chrono::milliseconds(400));
  int live = -1, live_server = -1;
  {
    socklen_t len;
    auto ss = make_addr("198.51.100.40", 443, len);
    live = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(live, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
      pollfd p{egress4, POLLIN, 0};
      poll(&p, 1, 500);
      live_server = accept4(egress4, nullptr, nullptr, SOCK_CLOEXEC);
    }
  }
  add_allow(nfd, "198.51.100.41", std::chrono::milliseconds(400));
  add_allow(nfd, "198.51.100.41", std::chrono::seconds(60));  // refresh (also if it exists)
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  o["expired"] = try_connect("198.51.100.40", 443);
  {
    char b[8] = {};
    bool ok = live_server >= 0 && send(live, "ping", 4, 0) == 4;
    pollfd p{live_server, POLLIN, 0};
    ok = ok && poll(&p, 1, 1000) == 1 && recv(live_server, b, sizeof b, 0) == 4;
    ok = ok && send(live_server, "pong", 4, 0) == 4;
    pollfd q{live, POLLIN, 0};
    ok = ok && poll(&q, 1, 1000) == 1 && recv(live, b, sizeof b, 0) == 4;
    o["live_after_expiry"] = ok ? "ok" : "cut";
    close(live);
    if (live_server >= 0) close(live_server);
  }
  o["refreshed"] = try_connect("198.51.100.41", 443);

  // Acks of a batch nobody waited for (a caller that timed out) do not count
  // for the next one: it waits for its own, and leaves none behind.
  {
    int fd = open_netfilter_socket();
    AllowElement first{*IpAddress::parse("198.51.100.77"), std::chrono::seconds(60)};
    AllowElement second{*IpAddress::parse("198.51.100.78"), std::chrono::seconds(60)};
    auto unwaited = build_allow_batch("sbx", {&first, 1}, 50000);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    sendto(fd, unwaited.bytes.data(), unwaited.bytes.size(), 0,
           reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    send_batch(fd, build_allow_batch("sbx", {&second, 1}, 60000));
    pollfd p{fd, POLLIN, 0};
    o["stale_acks"] = poll(&p, 1, 100) == 1 ? "own acks left unread" : "none left";
    close(fd);
  }

  // A nested user namespace (the sandboxed command) holds no CAP_NET_ADMIN
  // over this netns: the kernel refuses its batches. Nor CAP_NET_RAW: the
  // ruleset's accept rules for marked packets, non-SYN TCP and ICMP rest on
  // the program having no way to mark, forge TCP or send ICMP.
  {
    int pfd[2];
    pipe2(pfd, O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
      std::string r;
      if (unshare(CLONE_NEWUSER) != 0) {
        r = "unshare failed";
      } else {
        try {
          int fd = open_netfilter_socket();
          AllowElement el{*IpAddress::parse("198.51.100.99"), std::chrono::seconds(60)};
          send_batch(fd, build_allow_batch("sbx", {&el, 1}, 1));
          r = "accepted";
        } catch (const sbx::Error& e) {
          r = std::string(e.what()).find("EPERM") != std::string::npos ? "EPERM" : e.what();
        }
        const auto outcome = [](int rc) {
          return rc >= 0 ? std::string("allowed") : std::string(strerrorname_np(errno));
        };
        const auto sock_outcome = [&](int family, int type, int proto) {
          int fd = socket(family, type | SOCK_CLOEXEC, proto);
          std::string res = outcome(fd);
          if (fd >= 0) close(fd);
          return res;
        };
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const std::uint32_t mark = kOwnSocketMark;
        int one = 1;
        r += ";mark=" + outcome(setsockopt(t, SOL_SOCKET, SO_MARK, &mark, sizeof mark));
        r += ";transparent=" + outcome(setsockopt(t, SOL_IP, IP_TRANSPARENT, &one, sizeof one));
        r += ";repair=" + outcome(setsockopt(t, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one));
        close(t);
        r += ";raw=" + sock_outcome(AF_INET, SOCK_RAW, IPPROTO_TCP);
        r += ";raw6=" + sock_outcome(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
        r += ";packet=" + sock_outcome(AF_PACKET, SOCK_RAW, 0);
        r += ";ping=" + sock_outcome(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
        r += ";ping6=" + sock_outcome(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
      }
      write(pfd[1], r.data(), r.size());
      _exit(0);
    }
    close(pfd[1]);
    char b[512] = {};
    read(pfd[0], b, sizeof b - 1);
    waitpid(pid, nullptr, 0);
    close(pfd[0]);
    o["nested_userns"] = b;
  }
  o["after_nested"] = try_connect("198.51.100.99", 443);
  return o;
}

}  // namespace

TEST_CASE(
    "ruleset in a user+net namespace filters and logs connects, allowed ones land on their port's "
    "listener",
    "[netfilter][netns]") {
  auto o = sbx::testing::run_in_netns(scenario);
  INFO("observations:\n" << sbx::testing::describe(o));
  if (!sbx::testing::made_namespaces(o)) return;
  REQUIRE(o.count("exception") == 0);
  CHECK(o["ruleset"] == "ok");
  CHECK(o["listeners"] == "ok");
  CHECK(o["loopback"] == "ok");
  CHECK(o["loopback_egress_port"] == "ECONNREFUSED");
  CHECK(o["loopback_egress_port6"] == "ECONNREFUSED");
  CHECK(o["loopback_host_port"] == "ok");
  CHECK(o["loopback_host_port_other"] == "ECONNREFUSED");
  CHECK(o["loopback_host_port6"] == "ECONNREFUSED");
  CHECK(o["loopback_log"].empty());
  // Blocked TCP fails at once with RST (ECONNREFUSED), not by time-out.
  CHECK(o["unlisted"] == "ECONNREFUSED");
  CHECK(std::stod(o["unlisted_ms"]) < 100.0);
  CHECK(o["unlisted_log"].find("sbx-blocked 6 198.51.100.7:443;") != std::string::npos);
  // Allowed: delivered to the egress listener of its port as it is.
  CHECK(o["allowed"] == "ok");
  CHECK(o["allowed_original_dst"] == "198.51.100.7:443");
  CHECK(o["allowed_wrong_port"] == "ECONNREFUSED");
  CHECK(o["denied_private"] == "ECONNREFUSED");
  CHECK(std::stod(o["denied_private_ms"]) < 100.0);
  CHECK(o["denied_policy"] == "ECONNREFUSED");
  CHECK(o["denied_log"].find("sbx-denied 6 10.1.2.3:443;") != std::string::npos);
  CHECK(o["denied_log"].find("sbx-denied 6 198.51.100.200:443;") != std::string::npos);
  CHECK(o["metadata"] == "ECONNREFUSED");
  CHECK(o["cidr_in"] == "ok");
  CHECK(o["cidr_edge"] == "ok");
  CHECK(o["cidr_out"] == "ECONNREFUSED");
  CHECK(o["cidr_port"] == "ECONNREFUSED");
  CHECK(o["cidr_v6"] == "ok");
  CHECK(o["cidr_denied"] == "ECONNREFUSED");
  // The first datagram is rejected by ICMP; the connected socket then reports it.
  // The first send is refused locally (EPERM, the packet was rejected in the
  // output hook) or the ICMP error arrives; either way nothing leaves.
  CHECK((o["udp"] == "EPERM,EHOSTUNREACH" || o["udp"] == "EPERM,EPERM" ||
         o["udp"] == "sent,EHOSTUNREACH"));
  CHECK(o["udp_log"].find("sbx-blocked 17 198.51.100.7:443;") != std::string::npos);
  // The ICMP errors the reject rules send pass the same hook: accepted, not
  // logged as attempts of the program.
  CHECK(o["udp_log"].find("sbx-blocked 1 ") == std::string::npos);
  CHECK(o["dns_to_filter"] == "ok");
  CHECK(o["dns_reply"] == "8.8.8.8");
  CHECK(o["unmarked_send"] == "EPERM");
  CHECK(o["v6_unlisted"] == "ECONNREFUSED");
  CHECK(o["v6_allowed"] == "ok");
  CHECK(o["v6_original_dst"] == "2001:db8::5:443");
  CHECK(o["v6_ula"] == "ECONNREFUSED");
  CHECK(o["expired"] == "ECONNREFUSED");
  CHECK(o["live_after_expiry"] == "ok");
  CHECK(o["refreshed"] == "ok");
  CHECK(o["stale_acks"] == "none left");
  CHECK(o["nested_userns"] ==
        "EPERM;mark=EPERM;transparent=EPERM;repair=EPERM;raw=EPERM;raw6=EPERM;packet=EPERM;"
        "ping=EACCES;ping6=EACCES");
  CHECK(o["after_nested"] == "ECONNREFUSED");
}
