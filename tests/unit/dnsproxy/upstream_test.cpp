// The c-ares upstream client against a tiny UDP DNS responder on 127.0.0.1,
// driven by an epoll loop the way the supervisor drives it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "dnsproxy/dnsproxy.hpp"
#include "sbx/error.hpp"

using namespace sbx::dns;
using namespace std::chrono_literals;

namespace {

class TestResponder {
 public:
  TestResponder() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~TestResponder() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<Query> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  std::vector<std::uint16_t> source_ports() {  // one per query seen
    std::lock_guard<std::mutex> l(mu_);
    return ports_;
  }

 private:
  void run() {
    std::vector<std::uint8_t> buf(4096);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      ssize_t n =
          recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) continue;
      auto parsed = parse_query({buf.data(), static_cast<std::size_t>(n)});
      if (parsed.status != ParseStatus::ok) continue;
      const Query& q = parsed.query;
      {
        std::lock_guard<std::mutex> l(mu_);
        seen_.push_back(q);
        ports_.push_back(ntohs(reinterpret_cast<sockaddr_in*>(&from)->sin_port));
      }
      std::vector<std::uint8_t> out;
      if (q.name == "slow.test") continue;  // never answers: time-out path
      if (q.name == "fail.test") {
        out = build_response(q, Rcode::servfail);
      } else if (q.name == "good.test" && q.type == qtype::A) {
        Record r;
        r.name = q.name;
        r.type = qtype::A;
        r.ttl = 5;
        r.address = *sbx::net::IpAddress::parse("198.51.100.7");
        out = build_response(q, Rcode::noerror, {&r, 1});
      } else if (q.name == "big.test") {
        std::vector<Record> recs;
        for (int i = 1; i <= 40; ++i) {
          Record r;
          r.name = q.name;
          r.type = qtype::A;
          r.ttl = 60;
          r.address = sbx::net::IpAddress::v4(203, 0, 113, static_cast<std::uint8_t>(i));
          recs.push_back(r);
        }
        out = build_response(q, Rcode::noerror, recs, UINT32_MAX, q.max_udp_response());
      } else {
        out = build_response(q, Rcode::nxdomain);
      }
      sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Query> seen_;
  std::vector<std::uint16_t> ports_;
};

// The supervisor's loop, reduced to what the resolver needs.
struct Loop {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::map<int, bool> watched;
  ~Loop() { close(ep); }
  UpstreamResolver::SocketWatch watch() {
    return [this](int fd, bool r, bool w) {
      epoll_event ev{};
      ev.events = (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u);
      ev.data.fd = fd;
      if (!r && !w) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        watched.erase(fd);
      } else if (watched.count(fd)) {
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
      } else {
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        watched[fd] = true;
      }
    };
  }
  void run(UpstreamResolver& res, std::chrono::milliseconds limit) {
    auto until = Clock::now() + limit;
    while (res.pending() > 0 && Clock::now() < until) {
      auto t = res.next_timeout().value_or(100ms);
      epoll_event evs[8];
      int n = epoll_wait(ep, evs, 8, static_cast<int>(std::min<long>(t.count(), 100)));
      if (n == 0) res.process_timeouts();
      for (int i = 0; i < n; ++i) {
        res.process(evs[i].data.fd, evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                    evs[i].events & EPOLLOUT);
      }
    }
  }
};

// One try per query, against `responder`.
UpstreamConfig one_try(const TestResponder& responder, std::chrono::milliseconds timeout) {
  UpstreamConfig cfg;
  cfg.servers = {responder.server()};
  cfg.timeout = timeout;
  cfg.tries = 1;
  return cfg;
}

}  // namespace

TEST_CASE("upstream resolver: answers, NXDOMAIN, SERVFAIL and time-outs through epoll",
          "[dns][upstream]") {
  TestResponder responder;
  Loop loop;
  UpstreamResolver res(one_try(responder, 300ms), loop.watch());

  std::map<std::string, UpstreamResult> results;
  auto keep = [&](std::string key) {
    return [&results, key](UpstreamResult r) { results[key] = std::move(r); };
  };
  res.resolve("Good.Test", qtype::A, keep("good"));
  res.resolve("nothing.test", qtype::A, keep("nx"));
  res.resolve("fail.test", qtype::A, keep("fail"));
  res.resolve("slow.test", qtype::A, keep("slow"));
  res.resolve("big.test", qtype::A, keep("big"));
  CHECK(res.pending() == 5);
  auto t0 = Clock::now();
  loop.run(res, 5s);
  CHECK(res.pending() == 0);
  CHECK(Clock::now() - t0 < 3s);

  REQUIRE(results.size() == 5);
  REQUIRE(results["good"].ok);
  auto good = parse_upstream_answer(results["good"].answer, "good.test", qtype::A,
                                    sbx::net::always_denied_cidrs(), {});
  REQUIRE(good.usable);
  REQUIRE(good.addresses.size() == 1);
  CHECK(good.addresses[0].address.str() == "198.51.100.7");
  CHECK(good.addresses[0].ttl == 5);

  REQUIRE(results["nx"].ok);
  CHECK(parse_upstream_answer(results["nx"].answer, "nothing.test", qtype::A, {}, {}).rcode ==
        Rcode::nxdomain);
  CHECK_FALSE(results["fail"].ok);
  CHECK_FALSE(results["slow"].ok);
  INFO(results["big"].error);
  REQUIRE(results["big"].ok);  // > 512 bytes over UDP thanks to EDNS
  auto big = parse_upstream_answer(results["big"].answer, "big.test", qtype::A, {}, {});
  CHECK(big.addresses.size() == 40);

  // What went upstream: normalised (lower case), RD, EDNS 1232; never a name
  // the test did not resolve.
  for (const auto& q : responder.seen()) {
    CHECK(q.rd);
    CHECK(q.has_opt);
    CHECK(q.udp_payload == kEdnsPayload);
    CHECK(q.name != "Good.Test");
  }
}

TEST_CASE("upstream resolver: bad server list is a clear error; destruction fails pending queries",
          "[dns][upstream]") {
  Loop loop;
  UpstreamConfig bad;
  bad.servers = {"not an address"};
  CHECK_THROWS_AS(UpstreamResolver(bad, loop.watch()), sbx::Error);

  TestResponder responder;
  UpstreamConfig cfg;
  cfg.servers = {responder.server()};
  bool called = false, ok = true;
  {
    UpstreamResolver res(cfg, loop.watch());
    res.resolve("slow.test", qtype::A, [&](UpstreamResult r) {
      called = true;
      ok = r.ok;
    });
  }
  CHECK(called);
  CHECK_FALSE(ok);
}

namespace {

// Resolves `name` and runs the loop until it is answered (or 2 s pass).
void resolve_one(UpstreamResolver& res, Loop& loop, const std::string& name,
                 std::size_t* answered = nullptr) {
  std::size_t before = res.pending();
  res.resolve(name, qtype::A, [answered](UpstreamResult r) {
    if (answered && r.ok) ++*answered;
  });
  auto until = Clock::now() + 2s;
  while (res.pending() > before && Clock::now() < until) {
    epoll_event evs[8];
    int n = epoll_wait(loop.ep, evs, 8, 50);
    for (int j = 0; j < n; ++j) {
      res.process(evs[j].data.fd, evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                  evs[j].events & EPOLLOUT);
    }
  }
}

}  // namespace

TEST_CASE(
    "upstream resolver: the socket is kept, and renewed (a new source port) every "
    "kQueriesPerSocket queries",
    "[dns][upstream]") {
  TestResponder responder;
  Loop loop;
  UpstreamResolver res(one_try(responder, 400ms), loop.watch());
  constexpr std::size_t k = UpstreamResolver::kQueriesPerSocket;
  std::size_t answered = 0;
  for (std::size_t i = 0; i < 3 * k; ++i) {
    resolve_one(res, loop, "n" + std::to_string(i) + ".test", &answered);
    // Kept open between queries, closed right after the k-th answer.
    CHECK(loop.watched.size() == ((i + 1) % k == 0 ? 0u : 1u));
  }
  CHECK(answered == 3 * k);
  CHECK(res.socket_renewals() == 3);
  auto ports = responder.source_ports();
  REQUIRE(ports.size() == 3 * k);
  for (std::size_t i = 0; i < ports.size(); ++i) {
    INFO("query " << i);
    CHECK(ports[i] == ports[i / k * k]);  // k queries per port
  }
  CHECK(ports[0] != ports[k]);
  CHECK(ports[k] != ports[2 * k]);
}

TEST_CASE("upstream resolver: while a query is pending the socket stays; renewed once it ends",
          "[dns][upstream]") {
  TestResponder responder;
  Loop loop;
  UpstreamResolver res(one_try(responder, 300ms), loop.watch());
  constexpr std::size_t k = UpstreamResolver::kQueriesPerSocket;
  bool slow_done = false;
  res.resolve("slow.test", qtype::A, [&](UpstreamResult r) {
    slow_done = true;
    CHECK_FALSE(r.ok);
  });
  for (std::size_t i = 0; i < k + 5; ++i) resolve_one(res, loop, "n" + std::to_string(i) + ".test");
  CHECK_FALSE(slow_done);
  CHECK(res.socket_renewals() == 0);  // c-ares cannot renew with a query pending
  loop.run(res, 3s);                  // the slow query times out...
  CHECK(slow_done);
  CHECK(res.socket_renewals() == 1);  // ...and the sockets are renewed at once
  resolve_one(res, loop, "after.test");
  auto ports = responder.source_ports();
  REQUIRE(ports.size() == k + 7);
  for (std::size_t i = 0; i < k + 6; ++i) CHECK(ports[i] == ports[0]);
  CHECK(ports.back() != ports[0]);
}
