// The answer cache against the real allow sets, in a fresh user+net
// namespace (fork + unshare, like tests/unit/netfilter): a hit is answered
// without the upstream and its address is still reachable (the element is
// live); the TTL ends the entry; forget_addresses (sbx's live deny) empties
// it so a deleted element is re-added by the next query.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <sstream>

#include "../netns_child.hpp"
#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx;
using namespace sbx::dns;
using namespace std::chrono_literals;

namespace {

sockaddr_in v4(const char* ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

int bound(int type, const char* ip, std::uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  auto a = v4(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

std::map<std::string, std::string> scenario() {
  std::map<std::string, std::string> o;
  net::configure_netns_routes();
  int nfd = net::open_netfilter_socket();
  net::RulesetConfig rc;
  rc.allow_ports = {443};
  net::send_batch(nfd, net::build_ruleset_batch(rc, 1));
  int egress = bound(SOCK_STREAM, "0.0.0.0", 443);  // the egress listener of port 443
  int upstream = bound(SOCK_DGRAM, "127.0.0.1", 5300);
  int dns_fd = bound(SOCK_DGRAM, "127.0.0.1", 53);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::map<std::string, int> asked;
  std::map<std::string, std::uint32_t> ttl_of{{"good.test", 300}, {"ttl1.test", 1}};

  ServiceConfig cfg;
  cfg.filter.lookup = [](std::string_view) -> DomainMatch { return {DomainVerdict::allow, ""}; };
  cfg.ttl.min = 1s;
  cfg.ttl.grace = 1s;
  cfg.upstream.servers = {"127.0.0.1:5300"};
  cfg.netfilter_fd = nfd;
  std::vector<QueryEvent> events;
  DnsService service(
      cfg,
      [&](int fd, bool r, bool w) {
        epoll_event e{};
        e.events = (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u);
        e.data.fd = fd;
        if (!r && !w) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        } else if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) {
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
        }
      },
      [&](const QueryEvent& e) { events.push_back(e); });
  service.add_udp_socket(dns_fd);
  epoll_event ue{};
  ue.events = EPOLLIN;
  ue.data.fd = upstream;
  epoll_ctl(ep, EPOLL_CTL_ADD, upstream, &ue);

  int client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto server = v4("127.0.0.1", 53);
  // One query through the loop; returns "rcode/ttl" of the first answer.
  auto ask = [&](const std::string& name, std::uint16_t id) {
    auto q = dnstest::query(name, qtype::A, false, id);
    sendto(client, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&server), sizeof server);
    auto until = Clock::now() + 2s;
    std::uint8_t buf[1500];
    while (Clock::now() < until) {
      ssize_t n = recv(client, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        auto m = std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n));
        std::string out = std::to_string(m[3] & 15);
        // Answer TTL: after header (12), question (name + 4), owner (2-byte
        // pointer or name), type, class.
        if (((m[6] << 8) | m[7]) > 0) {
          std::size_t at = 12 + name.size() + 2 + 4;
          at += (m[at] & 0xc0) == 0xc0 ? 2 : name.size() + 2;
          std::uint32_t ttl =
              (std::uint32_t(m[at + 4]) << 24) | (m[at + 5] << 16) | (m[at + 6] << 8) | m[at + 7];
          out += "/" + std::to_string(ttl);
        }
        return out;
      }
      epoll_event evs[8];
      int k = epoll_wait(ep, evs, 8, 5);
      if (k == 0) service.on_timeout();
      for (int i = 0; i < k; ++i) {
        if (evs[i].data.fd != upstream) {
          service.on_ready(evs[i].data.fd, evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                           evs[i].events & EPOLLOUT);
          continue;
        }
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        ssize_t got =
            recvfrom(upstream, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (got <= 0) continue;
        auto p = parse_query({buf, static_cast<std::size_t>(got)});
        ++asked[p.query.name];
        Record r;
        r.name = p.query.name;
        r.type = qtype::A;
        r.ttl = ttl_of[p.query.name];
        r.address = *net::IpAddress::parse("198.51.100.7");
        auto out = build_response(p.query, Rcode::noerror, {&r, 1});
        sendto(upstream, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      }
    }
    return std::string("timeout");
  };
  auto reachable = [&] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = v4("198.51.100.7", 443);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    int c = accept4(egress, nullptr, nullptr, SOCK_CLOEXEC);  // drain
    if (c >= 0) close(c);
    return ok ? "yes" : "no";
  };

  o["before"] = reachable();
  o["first"] = ask("good.test", 1);
  o["second"] = ask("good.test", 2);
  o["asked_good"] = std::to_string(asked["good.test"]);
  o["cached_events"] = std::to_string(
      std::count_if(events.begin(), events.end(), [](const QueryEvent& e) { return e.cached; }));
  o["reachable_after_hit"] = reachable();
  // Live deny: the element goes, the filter is told.
  auto addr = *net::IpAddress::parse("198.51.100.7");
  net::send_batch(nfd, net::build_delete_allow_batch("sbx", {&addr, 1}, 9000));
  service.forget_addresses({&addr, 1});
  o["reachable_after_delete"] = reachable();
  o["third"] = ask("good.test", 3);
  o["asked_good_after_forget"] = std::to_string(asked["good.test"]);
  o["reachable_after_third"] = reachable();
  // TTL 1 s: a hit within the second, upstream again after it.
  o["ttl1_first"] = ask("ttl1.test", 4);
  o["ttl1_second"] = ask("ttl1.test", 5);
  o["asked_ttl1"] = std::to_string(asked["ttl1.test"]);
  usleep(1'200'000);
  o["ttl1_third"] = ask("ttl1.test", 6);
  o["asked_ttl1_later"] = std::to_string(asked["ttl1.test"]);
  return o;
}

}  // namespace

TEST_CASE("Answer cache with the real allow sets in a netns", "[dns][cache][netns]") {
  auto o = sbx::testing::run_in_netns(scenario);
  INFO(sbx::testing::describe(o));
  if (!sbx::testing::made_namespaces(o)) return;
  REQUIRE(o.count("exception") == 0);
  CHECK(o["before"] == "no");
  CHECK(o["first"] == "0/300");
  // The hit: no second upstream query, TTL aged (at most the first one).
  CHECK((o["second"] == "0/300" || o["second"] == "0/299"));
  CHECK(o["asked_good"] == "1");
  CHECK(o["cached_events"] == "1");
  CHECK(o["reachable_after_hit"] == "yes");
  CHECK(o["reachable_after_delete"] == "no");
  // After forget_addresses the query goes upstream and re-adds the element.
  CHECK(o["third"] == "0/300");
  CHECK(o["asked_good_after_forget"] == "2");
  CHECK(o["reachable_after_third"] == "yes");
  CHECK(o["ttl1_first"] == "0/1");
  CHECK((o["ttl1_second"] == "0/0" || o["ttl1_second"] == "0/1"));
  CHECK(o["asked_ttl1"] == "1");
  CHECK(o["ttl1_third"] == "0/1");
  CHECK(o["asked_ttl1_later"] == "2");
}
