#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "../loopback.hpp"
#include "egress/egress.hpp"

using namespace sbx::egress;
using sbx::net::IpAddress;

namespace {

EgressPolicy policy() {
  EgressPolicy p;
  p.allow_ports = {80, 443, 22};
  p.opaque_ports = {22};
  p.allow_cidrs = {*sbx::net::Cidr::parse("203.0.113.0/28")};
  p.names = [](std::string_view n) -> sbx::dns::DomainMatch {
    if (n == "evil.good.test") return {sbx::dns::DomainVerdict::deny, ""};
    if (n == "good.test" || n.ends_with(".good.test")) return {sbx::dns::DomainVerdict::allow, ""};
    return {sbx::dns::DomainVerdict::unlisted, ""};
  };
  p.resolved_names = [](const IpAddress& a) -> std::vector<std::string> {
    if (a.str() == "198.51.100.7") return {"good.test", "www.good.test"};
    if (a.str() == "198.51.100.9") return {"other.test"};
    return {};
  };
  return p;
}

Destination dest(const char* ip, std::uint16_t port) {
  return {*IpAddress::parse(ip), port};
}

PeekResult found(std::string name) {
  PeekResult r;
  r.status = PeekStatus::found;
  r.name = std::move(name);
  return r;
}

}  // namespace

TEST_CASE("check_connection: address gate, name gate, second gate", "[egress]") {
  auto p = policy();
  auto v = check_connection(p, dest("198.51.100.7", 443), nullptr);
  CHECK_FALSE(v.allowed);
  CHECK(v.reason == "not_inspected");
  auto ok = found("good.test");
  v = check_connection(p, dest("198.51.100.7", 443), &ok);
  CHECK(v.allowed);
  CHECK(v.reason == "allowed");
  CHECK(v.name == "good.test");

  CHECK(check_connection(p, dest("198.51.100.7", 8443), &ok).reason == "port_not_allowed");
  CHECK(check_connection(p, dest("198.51.100.8", 443), &ok).reason == "address_not_resolved");
  CHECK(check_connection(p, dest("127.0.0.1", 443), &ok).reason == "denied_address");
  CHECK(check_connection(p, dest("169.254.169.254", 80), &ok).reason == "denied_address");

  auto evil = found("evil.good.test");
  CHECK(check_connection(p, dest("198.51.100.7", 443), &evil).reason == "name_denied");
  auto other = found("other.test");
  CHECK(check_connection(p, dest("198.51.100.9", 443), &other).reason == "name_not_allowed");
  // Allowed name, but it never resolved to this address (shared CDN IP with
  // an attacker-chosen SNI): refused by the second gate.
  auto api = found("api.good.test");
  v = check_connection(p, dest("198.51.100.7", 443), &api);
  CHECK(v.reason == "name_not_resolved_to_address");
  p.require_name_resolved_to_address = false;
  CHECK(check_connection(p, dest("198.51.100.7", 443), &api).allowed);
  p.require_name_resolved_to_address = true;
  // allow_cidrs: any allowed name, no DNS needed; IP literal only as itself.
  CHECK(check_connection(p, dest("203.0.113.5", 443), &api).allowed);
  auto lit = found("203.0.113.5");
  CHECK(check_connection(p, dest("203.0.113.5", 80), &lit).allowed);
  CHECK_FALSE(check_connection(p, dest("203.0.113.6", 80), &lit).allowed);
  CHECK_FALSE(check_connection(p, dest("198.51.100.7", 80), &lit).allowed);

  // Opaque ports: address only.
  v = check_connection(p, dest("198.51.100.7", 22), nullptr);
  CHECK(v.allowed);
  CHECK(v.reason == "opaque_port");
  CHECK(check_connection(p, dest("198.51.100.8", 22), nullptr).reason == "address_not_resolved");

  PeekResult bad;
  for (auto [st, reason] : {std::pair{PeekStatus::need_more, "incomplete"},
                            {PeekStatus::no_name, "no_name"},
                            {PeekStatus::wrong_protocol, "wrong_protocol"},
                            {PeekStatus::malformed, "malformed"},
                            {PeekStatus::too_large, "too_large"}}) {
    bad.status = st;
    CHECK(check_connection(p, dest("198.51.100.7", 443), &bad).reason == reason);
  }
  CHECK(inspection_for(p, 80) == Inspection::http);
  CHECK(inspection_for(p, 443) == Inspection::tls);
  CHECK(inspection_for(p, 22) == Inspection::opaque);
}

namespace {

using sbx::testing::connect_loopback;
using sbx::testing::listen_loopback;

// client <-> [proxy_client_side | relay | proxy_upstream_side] <-> server
struct Pairs {
  int client, proxy_in, proxy_out, server;
};

Pairs make_pairs() {
  std::uint16_t p1, p2;
  int l1 = listen_loopback(p1), l2 = listen_loopback(p2);
  Pairs s;
  s.client = connect_loopback(p1);
  s.proxy_in = accept4(l1, nullptr, nullptr, SOCK_CLOEXEC);
  s.proxy_out = connect_loopback(p2);
  s.server = accept4(l2, nullptr, nullptr, SOCK_CLOEXEC);
  close(l1);
  close(l2);
  return s;
}

void run_relay(SpliceRelay& relay, std::chrono::seconds limit) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {relay.client_fd(), relay.upstream_fd()}) {
    epoll_event ev{};
    ev.data.fd = fd;
    ev.events = relay.interest(fd);
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    epoll_event evs[2];
    epoll_wait(ep, evs, 2, 100);
    if (!relay.pump()) break;
    for (int fd : {relay.client_fd(), relay.upstream_fd()}) {
      epoll_event ev{};
      ev.data.fd = fd;
      ev.events = relay.interest(fd);
      epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
  }
  close(ep);
}

}  // namespace

TEST_CASE("splice relay moves 32 MiB each way, prefix first, half-close passed on",
          "[egress][relay]") {
  auto s = make_pairs();
  const std::size_t total = 32u << 20;
  std::uint64_t up_sum = 0, down_sum = 0, up_got = 0, down_got = 0, up_recv_sum = 0,
                down_recv_sum = 0;
  std::string first;
  std::thread client([&] {
    std::vector<std::uint8_t> buf(1 << 16);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 7);
    std::size_t sent = 0;
    while (sent < total) {
      ssize_t n = send(s.client, buf.data(), std::min(buf.size(), total - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) up_sum += buf[static_cast<std::size_t>(i)];
      sent += static_cast<std::size_t>(n);
    }
    shutdown(s.client, SHUT_WR);
    std::vector<std::uint8_t> r(1 << 16);
    ssize_t n;
    while ((n = recv(s.client, r.data(), r.size(), 0)) > 0) {
      down_got += static_cast<std::uint64_t>(n);
      for (ssize_t i = 0; i < n; ++i) down_recv_sum += r[static_cast<std::size_t>(i)];
    }
  });
  std::thread server([&] {
    std::vector<std::uint8_t> r(1 << 16);
    ssize_t n;
    bool got_prefix = false;
    std::string pre;
    std::uint64_t got = 0;
    while ((n = recv(s.server, r.data(), r.size(), 0)) > 0) {
      std::size_t i = 0;
      while (!got_prefix && i < static_cast<std::size_t>(n)) {
        pre += static_cast<char>(r[i++]);
        if (pre.size() == 5) got_prefix = true;
      }
      for (; i < static_cast<std::size_t>(n); ++i) up_recv_sum += r[i];
      got += static_cast<std::uint64_t>(n);
    }
    first = pre;
    up_got = got;
    // Answer only after the client's EOF arrived (half-close relayed).
    std::vector<std::uint8_t> buf(1 << 16);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 13);
    std::size_t sent = 0;
    while (sent < total) {
      ssize_t k = send(s.server, buf.data(), std::min(buf.size(), total - sent), MSG_NOSIGNAL);
      if (k <= 0) break;
      for (ssize_t i = 0; i < k; ++i) down_sum += buf[static_cast<std::size_t>(i)];
      sent += static_cast<std::size_t>(k);
    }
    close(s.server);
  });
  {
    SpliceRelay relay(s.proxy_in, s.proxy_out, {'h', 'e', 'l', 'l', 'o'});
    run_relay(relay, std::chrono::seconds(60));
    CHECK(relay.finished());
    CHECK(relay.error().empty());
    CHECK(relay.bytes_up() == total + 5);
    CHECK(relay.bytes_down() == total);
  }
  client.join();
  server.join();
  close(s.client);
  CHECK(first == "hello");
  CHECK(up_got == total + 5);
  CHECK(up_recv_sum == up_sum);
  CHECK(down_got == total);
  CHECK(down_recv_sum == down_sum);
}

TEST_CASE("relay: upstream reset reaches the client as a reset", "[egress][relay]") {
  auto s = make_pairs();
  close_with_reset(s.server);  // upstream fails
  send(s.client, "x", 1, MSG_NOSIGNAL);
  {
    SpliceRelay relay(s.proxy_in, s.proxy_out);
    run_relay(relay, std::chrono::seconds(5));
    CHECK(relay.finished());
    CHECK_FALSE(relay.error().empty());
  }
  char b;
  pollfd p{s.client, POLLIN, 0};
  REQUIRE(poll(&p, 1, 2000) == 1);
  ssize_t n = recv(s.client, &b, 1, 0);
  CHECK(n < 0);
  CHECK(errno == ECONNRESET);
  close(s.client);
}

namespace {
// Sizes of this process's pipes larger than the kernel's default.
std::vector<int> enlarged_pipes() {
  std::vector<int> sizes;
  for (int fd = 0; fd < 4096; ++fd) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) continue;
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > (64 << 10)) sizes.push_back(size);
  }
  return sizes;
}
}  // namespace

TEST_CASE("relay pipes: at most 64 MiB enlarged in all, given back when a relay ends",
          "[egress][relay]") {
  REQUIRE(relay_pipe_bytes() == 0);
  std::vector<std::unique_ptr<SpliceRelay>> relays;
  for (int i = 0; i < 40; ++i) {
    int a[2], b[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0);
    close(a[1]);
    close(b[1]);
    relays.push_back(std::make_unique<SpliceRelay>(a[0], b[0]));
  }
  // Each pipe is counted where its write end is (the read end shares it).
  std::size_t in_pipes = 0;
  for (int size : enlarged_pipes()) in_pipes += static_cast<std::size_t>(size);
  in_pipes /= 2;
  CHECK(relay_pipe_bytes() <= (64u << 20));
  CHECK(in_pipes == relay_pipe_bytes());
  if (relay_pipe_bytes() > 0) {                // the kernel let this process grow pipes
    CHECK(relay_pipe_bytes() == (64u << 20));  // 80 pipes asked for 80 MiB
    relays.resize(10);
    CHECK(relay_pipe_bytes() <= (20u << 20));
    int a[2], b[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0);
    close(a[1]);
    close(b[1]);
    const std::size_t before = relay_pipe_bytes();
    relays.push_back(std::make_unique<SpliceRelay>(a[0], b[0]));
    CHECK(relay_pipe_bytes() == before + (2u << 20));  // big pipes again
  }
  relays.clear();
  CHECK(relay_pipe_bytes() == 0);
  CHECK(enlarged_pipes().empty());
}
