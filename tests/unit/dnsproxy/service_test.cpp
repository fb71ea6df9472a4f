// DnsService without a netns: local decisions over UDP and TCP, and fail
// closed (SERVFAIL) when the allow-set update cannot be made.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <map>
#include <set>
#include <thread>

#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;
using namespace std::chrono_literals;

namespace {

int bound(int type, std::uint16_t& port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  if (type == SOCK_STREAM) listen(fd, 64);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

struct Harness {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::set<int> fds;
  std::vector<QueryEvent> events;
  std::map<std::string, int> upstream_queries;
  std::unique_ptr<DnsService> service;
  std::uint16_t udp_port = 0, tcp_port = 0, upstream_port = 0;
  int udp, tcp, upstream;
  bool upstream_silent = false;  // reads queries, never answers

  Harness() {
    udp = bound(SOCK_DGRAM, udp_port);
    tcp = bound(SOCK_STREAM, tcp_port);
    upstream = bound(SOCK_DGRAM, upstream_port);  // answers good.test below
    ServiceConfig cfg;
    cfg.filter.lookup = [](std::string_view n) -> DomainMatch {
      return {n == "good.test" || n == "nx.test" ? DomainVerdict::allow : DomainVerdict::unlisted,
              ""};
    };
    cfg.upstream.servers = {"127.0.0.1:" + std::to_string(upstream_port)};
    cfg.netfilter_fd = -1;  // no netns: every set update fails
    service = std::make_unique<DnsService>(
        cfg,
        [this](int fd, bool r, bool w) {
          epoll_event e{};
          e.events = (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u);
          e.data.fd = fd;
          if (!r && !w) {
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
            fds.erase(fd);
          } else if (fds.insert(fd).second) {
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
          } else {
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
          }
        },
        [this](const QueryEvent& e) { events.push_back(e); });
    service->add_udp_socket(udp);
    service->add_tcp_listener(tcp);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = upstream;
    epoll_ctl(ep, EPOLL_CTL_ADD, upstream, &e);
  }
  ~Harness() {
    service.reset();
    for (int fd : {udp, tcp, upstream, ep}) close(fd);
  }
  void serve_upstream() {
    std::uint8_t buf[1500];
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    ssize_t n;
    while ((n = recvfrom(upstream, buf, sizeof buf, MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&from), &flen)) > 0) {
      auto p = parse_query({buf, static_cast<std::size_t>(n)});
      ++upstream_queries[p.query.name];
      if (upstream_silent) continue;
      if (p.query.name == "nx.test") {  // NXDOMAIN with an SOA: negative TTL min(120, 30)
        dnstest::Bytes m;
        m.header(p.query.id, 0x8183, 1, 0, 1, 0).name("nx.test").u16(p.query.type).u16(1);
        m.u8(0).u16(6).u16(1).u32(120);  // root SOA, TTL 120
        dnstest::Bytes rd;
        rd.name("ns.test").name("host.test").u32(1).u32(3600).u32(600).u32(86400).u32(30);
        m.u16(static_cast<std::uint16_t>(rd.v.size()))
            .v.insert(m.v.end(), rd.v.begin(), rd.v.end());
        sendto(upstream, m.v.data(), m.v.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
        continue;
      }
      Record r;
      r.name = p.query.name;
      r.type = qtype::A;
      r.ttl = 60;
      r.address = *sbx::net::IpAddress::parse("198.51.100.7");
      auto out = build_response(p.query, Rcode::noerror, {&r, 1});
      sendto(upstream, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }
  void spin(std::chrono::milliseconds d) {
    auto until = Clock::now() + d;
    while (Clock::now() < until) {
      epoll_event evs[8];
      int n = epoll_wait(ep, evs, 8, 10);
      if (n == 0) service->on_timeout();
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.fd == upstream) {
          serve_upstream();
        } else {
          service->on_ready(evs[i].data.fd, evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR),
                            evs[i].events & EPOLLOUT);
        }
      }
    }
  }
};

int rcode_of(const std::vector<std::uint8_t>& m) {
  return m.size() >= 4 ? (m[3] & 0x0f) : -1;
}

// A TCP client of the service's listener on `port` (blocking unless `flags`
// say otherwise; a receive buffer of `rcvbuf` bytes when not 0).
int connect_tcp(std::uint16_t port, int flags = 0, int rcvbuf = 0) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (rcvbuf != 0) setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  int rc = connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  return c;
}

// Appends `q` with its 2-byte length prefix (DNS over TCP).
void frame(std::vector<std::uint8_t>& out, const std::vector<std::uint8_t>& q) {
  out.push_back(static_cast<std::uint8_t>(q.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(q.size()));
  out.insert(out.end(), q.begin(), q.end());
}

}  // namespace

TEST_CASE("DnsService over UDP: local answers, FORMERR, fail closed without the set",
          "[dns][service]") {
  Harness h;
  int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(h.udp_port);
  std::map<int, int> rcodes;
  auto send_q = [&](const std::vector<std::uint8_t>& q) {
    sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  };
  send_q(dnstest::query("evil.test", qtype::A, false, 1));
  send_q(dnstest::query(std::string(200, 'x') + ".test", qtype::A, false, 2));
  send_q(dnstest::query("good.test", qtype::A, false, 3));
  send_q(dnstest::query("good.test", qtype::HTTPS, false, 4));
  h.spin(400ms);
  std::uint8_t buf[1500];
  ssize_t n;
  while ((n = recv(c, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
    rcodes[(buf[0] << 8) | buf[1]] = buf[3] & 0x0f;
  }
  close(c);
  CHECK(rcodes[1] == 5);  // REFUSED
  CHECK(rcodes[2] == 1);  // FORMERR
  CHECK(rcodes[3] == 2);  // SERVFAIL: the address could not be allowed, so it is not given out
  CHECK(rcodes[4] == 0);  // NODATA
  bool saw_failure = false;
  for (const auto& e : h.events) {
    if (e.name == "good.test" && e.type == qtype::A) {
      saw_failure = e.verdict.find("allow-set update failed") != std::string::npos;
    }
  }
  CHECK(saw_failure);
}

TEST_CASE("DnsService over TCP: framing, pipelining, garbage closes", "[dns][service]") {
  Harness h;
  int c = connect_tcp(h.tcp_port);
  std::vector<std::uint8_t> out;
  for (auto q : {dnstest::query("evil.test", qtype::A, false, 11),
                 dnstest::query("good.test", qtype::ANY, false, 12),
                 dnstest::query("good.test", qtype::A, true, 13)}) {
    frame(out, q);
  }
  // Sent in two pieces, splitting a length prefix.
  send(c, out.data(), 1, 0);
  h.spin(50ms);
  send(c, out.data() + 1, out.size() - 1, 0);
  h.spin(400ms);
  std::vector<std::uint8_t> in(4096);
  ssize_t n = recv(c, in.data(), in.size(), MSG_DONTWAIT);
  REQUIRE(n > 0);
  in.resize(static_cast<std::size_t>(n));
  std::map<int, int> rcodes;
  std::size_t at = 0;
  while (at + 2 <= in.size()) {
    std::size_t len = static_cast<std::size_t>((in[at] << 8) | in[at + 1]);
    REQUIRE(at + 2 + len <= in.size());
    std::vector<std::uint8_t> m(in.begin() + static_cast<std::ptrdiff_t>(at + 2),
                                in.begin() + static_cast<std::ptrdiff_t>(at + 2 + len));
    rcodes[(m[0] << 8) | m[1]] = rcode_of(m);
    at += 2 + len;
  }
  CHECK(rcodes.size() == 3);
  CHECK(rcodes[11] == 5);
  CHECK(rcodes[12] == 5);
  CHECK(rcodes[13] == 2);
  CHECK(h.service->tcp_connections() == 1);

  // A response (QR=1) on the stream: the connection is closed.
  auto bogus = dnstest::query("good.test", qtype::A, false, 14);
  bogus[2] |= 0x80;
  std::vector<std::uint8_t> framed{0, static_cast<std::uint8_t>(bogus.size())};
  framed.insert(framed.end(), bogus.begin(), bogus.end());
  send(c, framed.data(), framed.size(), 0);
  h.spin(100ms);
  CHECK(h.service->tcp_connections() == 0);
  char b;
  CHECK(recv(c, &b, 1, MSG_DONTWAIT) == 0);  // EOF
  close(c);
}

TEST_CASE("DnsService answer cache: negative answers cached by SOA, failures never",
          "[dns][service][cache]") {
  Harness h;
  int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(h.udp_port);
  std::map<int, int> rcodes;
  auto ask = [&](const char* name, std::uint16_t id) {
    auto q = dnstest::query(name, qtype::A, false, id);
    sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    h.spin(150ms);
    std::uint8_t buf[1500];
    ssize_t n;
    while ((n = recv(c, buf, sizeof buf, MSG_DONTWAIT)) > 0)
      rcodes[(buf[0] << 8) | buf[1]] = buf[3] & 0x0f;
  };
  ask("nx.test", 1);
  ask("nx.test", 2);
  ask("NX.test", 3);  // normalised name: the same entry
  ask("good.test", 4);
  ask("good.test", 5);
  ask("evil.test", 6);
  ask("evil.test", 7);
  close(c);
  CHECK(rcodes[1] == 3);
  CHECK(rcodes[2] == 3);
  CHECK(rcodes[3] == 3);
  CHECK(h.upstream_queries["nx.test"] == 1);  // the 2nd and 3rd came from the cache
  // good.test: the set update fails here (no netns), so SERVFAIL is never
  // cached and each query goes upstream again.
  CHECK(rcodes[4] == 2);
  CHECK(rcodes[5] == 2);
  CHECK(h.upstream_queries["good.test"] == 2);
  // Refusals are local answers: never upstream, never cached.
  CHECK(rcodes[6] == 5);
  CHECK(rcodes[7] == 5);
  CHECK(h.upstream_queries.count("evil.test") == 0);
  int cached = 0;
  for (const auto& e : h.events) cached += e.cached ? 1 : 0;
  CHECK(cached == 2);
  CHECK(h.service->cache().size() == 1);
}

TEST_CASE("DnsService: torn down with TCP queries in flight and one more buffered",
          "[dns][service]") {
  // Destruction fails the in-flight queries; each failure's reply lets the
  // connection take its next buffered query, which must not reach the
  // resolver being destroyed (it did: the supervisor crashed at teardown).
  Harness h;
  h.upstream_silent = true;
  int c = connect_tcp(h.tcp_port);
  std::vector<std::uint8_t> out;
  const std::size_t queries = DnsService::kMaxTcpInFlight + 2;
  for (std::size_t i = 0; i < queries; ++i) {
    auto q = dnstest::query("good.test", qtype::A, true, static_cast<std::uint16_t>(100 + i));
    frame(out, q);
  }
  REQUIRE(send(c, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
  h.spin(200ms);
  CHECK(h.upstream_queries["good.test"] == static_cast<int>(DnsService::kMaxTcpInFlight));
  h.service.reset();
  // Every answer the connection got is SERVFAIL; then it is closed.
  std::vector<std::uint8_t> in(65536);
  std::size_t got = 0;
  while (true) {
    ssize_t n = recv(c, in.data() + got, in.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  std::size_t answers = 0;
  for (std::size_t at = 0; at + 2 <= got;) {
    std::size_t len = static_cast<std::size_t>((in[at] << 8) | in[at + 1]);
    REQUIRE(at + 2 + len <= got);
    CHECK((in[at + 2 + 3] & 0x0f) == 2);  // SERVFAIL
    ++answers;
    at += 2 + len;
  }
  CHECK(answers >= DnsService::kMaxTcpInFlight);
  close(c);
}

TEST_CASE("DnsService over TCP: a client that never reads its answers holds bounded memory",
          "[dns][service]") {
  Harness h;
  // Small kernel buffers both ways (the accepted socket inherits the
  // listener's): the answers back up in the service itself.
  int small = 4096;
  setsockopt(h.tcp, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  int c = connect_tcp(h.tcp_port, SOCK_NONBLOCK, small);
  h.spin(20ms);
  auto q = dnstest::query("evil.test", qtype::A, true, 7);  // refused locally: answered at once
  std::vector<std::uint8_t> framed;
  frame(framed, q);
  std::vector<std::uint8_t> chunk;
  for (int i = 0; i < 256; ++i) chunk.insert(chunk.end(), framed.begin(), framed.end());
  // Write queries for as long as the service reads them; never read.
  std::size_t written = 0, most = 0;
  for (int round = 0; round < 400 && written < 16 * DnsService::kMaxTcpOutput; ++round) {
    ssize_t n = send(c, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) written += static_cast<std::size_t>(n);
    h.spin(2ms);
    most = std::max(most, h.service->tcp_buffered());
  }
  INFO("written " << written << " bytes of queries, most held " << most);
  CHECK(written >= 16 * DnsService::kMaxTcpOutput);  // the client did get ahead
  CHECK(most > DnsService::kMaxTcpOutput / 2);       // the service did hold answers
  CHECK(most <= DnsService::kMaxTcpOutput + 2 * 65537 + 4096);
  // Reading the answers lets every written query be answered, in order.
  std::size_t answered = 0;
  std::vector<std::uint8_t> buf(65536);
  std::vector<std::uint8_t> got;
  auto until = Clock::now() + 30s;
  while (answered < written / framed.size() && Clock::now() < until) {
    ssize_t n = recv(c, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) got.insert(got.end(), buf.begin(), buf.begin() + n);
    std::size_t at = 0;
    while (at + 2 <= got.size()) {
      std::size_t len = static_cast<std::size_t>((got[at] << 8) | got[at + 1]);
      if (at + 2 + len > got.size()) break;
      CHECK((got[at + 2 + 3] & 0x0f) == 5);  // REFUSED
      ++answered;
      at += 2 + len;
    }
    got.erase(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(at));
    h.spin(1ms);
  }
  CHECK(answered == written / framed.size());
  close(c);
}

TEST_CASE(
    "DnsService over TCP: queries held back by the answer limit are answered "
    "without more input",
    "[dns][service]") {
  // Small queries with large answers (cache hits of 40 addresses): what the
  // service reads at once answers to many times kMaxTcpOutput. Large kernel
  // buffers, so each flush empties the answers. The queries held back must
  // be answered although the client sends nothing more (they waited for
  // input, then the idle time-out closed the connection).
  Harness h;
  UpstreamAnswer forty;
  forty.usable = true;
  forty.rcode = Rcode::noerror;
  for (int i = 1; i <= 40; ++i) {
    forty.addresses.push_back({sbx::net::IpAddress::v4(203, 0, 113, static_cast<std::uint8_t>(i)),
                               300, std::chrono::seconds(310), 300});
  }
  h.service->cache().store("good.test", qtype::A, forty, Clock::now(), Clock::now() + 60s);
  int big = 4 << 20;
  setsockopt(h.tcp, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);  // inherited when accepted
  int c = connect_tcp(h.tcp_port, SOCK_NONBLOCK, big);
  h.spin(20ms);
  auto q = dnstest::query("good.test", qtype::A, true, 9);
  std::vector<std::uint8_t> framed;
  frame(framed, q);
  const std::size_t queries = 1000;
  REQUIRE(queries * framed.size() < 2 + 65535 + 4096);  // read by the service at once
  std::vector<std::uint8_t> burst;
  for (std::size_t i = 0; i < queries; ++i) burst.insert(burst.end(), framed.begin(), framed.end());
  REQUIRE(send(c, burst.data(), burst.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(burst.size()));
  // The client reads on its own thread, as a client process would: a flush
  // can then find the answers all read and empty them, with queries still
  // held back.
  std::atomic<std::size_t> answered{0}, answer_bytes{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::vector<std::uint8_t> buf(1 << 16), got;
    while (!stop && answered < queries) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 10) != 1) continue;
      ssize_t n;
      while ((n = recv(c, buf.data(), buf.size(), MSG_DONTWAIT)) > 0) {
        got.insert(got.end(), buf.begin(), buf.begin() + n);
      }
      std::size_t at = 0;
      while (at + 2 <= got.size()) {
        std::size_t len = static_cast<std::size_t>((got[at] << 8) | got[at + 1]);
        if (at + 2 + len > got.size()) break;
        ++answered;
        answer_bytes += 2 + len;
        at += 2 + len;
      }
      got.erase(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(at));
    }
  });
  auto until = Clock::now() + 3s;  // under kTcpIdle: a stalled connection is not closed yet
  while (answered < queries && Clock::now() < until) h.spin(2ms);
  stop = true;
  reader.join();
  CHECK(answered == queries);
  CHECK(answer_bytes > 4 * DnsService::kMaxTcpOutput);  // several rounds of the limit
  close(c);
}

namespace {

ServiceConfig refusing_config(double per_second, double burst) {
  ServiceConfig cfg;
  cfg.filter.lookup = [](std::string_view) -> DomainMatch { return {DomainVerdict::unlisted, ""}; };
  cfg.filter.limits.queries_per_second = per_second;
  cfg.filter.limits.burst = burst;
  cfg.upstream.servers = {"127.0.0.1:9"};  // never asked: every name is refused locally
  return cfg;
}

std::vector<std::uint8_t> numbered_query(int i) {
  return dnstest::query("n" + std::to_string(i) + ".test", qtype::A, false,
                        static_cast<std::uint16_t>(i));
}

}  // namespace

TEST_CASE("DnsService: refusals by a limit after the first are counted and summarised",
          "[dns][service]") {
  // Practically no refill: the test does not depend on how fast it runs.
  std::vector<QueryEvent> events;
  DnsService s(refusing_config(1e-3, 5), {}, [&](const QueryEvent& e) { events.push_back(e); });
  int replies = 0;
  auto count_reply = [&](std::vector<std::uint8_t>) { ++replies; };
  for (int i = 0; i < 100; ++i) s.handle(numbered_query(i), 512, count_reply);
  const std::vector<std::uint8_t> junk = {1, 2, 3};  // too short to be a message
  for (int i = 0; i < 20; ++i) s.handle(junk, 512, count_reply);

  // The burst, then the limit's first refusal; the rest are counted only.
  std::map<std::string, int> verdicts;
  for (const auto& e : events) {
    REQUIRE(e.suppressed.empty());
    ++verdicts[e.verdict + (e.limit_first_report ? " (first)" : "")];
  }
  CHECK(verdicts == std::map<std::string, int>{{"unlisted", 5}, {"rate_limit (first)", 1}});
  CHECK(replies == 100);  // every well-formed query is answered; junk over the limit is not
  // The summary is due kSummaryInterval after the first counted refusal.
  auto due = s.next_timeout();
  REQUIRE(due);
  CHECK(*due <=
        std::chrono::duration_cast<std::chrono::milliseconds>(DnsService::kSummaryInterval));

  s.flush_suppressed();
  REQUIRE(events.size() == 7);
  const auto& summary = events.back();
  CHECK(summary.verdict == "suppressed");
  // Every message is accounted for: reported one by one or counted.
  CHECK(summary.suppressed == std::map<std::string, std::uint64_t>{{"rate_limit", 114}});
  s.flush_suppressed();  // nothing counted since: no second summary
  CHECK(events.size() == 7);

  // While refusals go on, the timer writes the summary once the interval is
  // over, without waiting for the next reported event.
  s.handle(numbered_query(1000), 512, count_reply);
  CHECK(events.size() == 7);
  std::this_thread::sleep_for(DnsService::kSummaryInterval + 50ms);
  s.on_timeout();
  REQUIRE(events.size() == 8);
  CHECK(events.back().suppressed == std::map<std::string, std::uint64_t>{{"rate_limit", 1}});
}

TEST_CASE("DnsService: a malformed message can be the limit's first report", "[dns][service]") {
  std::vector<QueryEvent> events;
  DnsService s(refusing_config(1e-3, 1), {}, [&](const QueryEvent& e) { events.push_back(e); });
  const std::vector<std::uint8_t> junk = {1, 2, 3};
  for (int i = 0; i < 3; ++i) s.handle(junk, 512, [](std::vector<std::uint8_t>) {});
  REQUIRE(events.size() == 2);
  CHECK(events[0].verdict.starts_with("dropped"));
  CHECK(events[1].verdict == "rate_limit");
  CHECK(events[1].limit_first_report);
  s.flush_suppressed();
  REQUIRE(events.size() == 3);
  CHECK(events.back().suppressed == std::map<std::string, std::uint64_t>{{"rate_limit", 1}});
}

TEST_CASE("DnsService: the summary comes before the next reported event once due",
          "[dns][service]") {
  // Two tokens a second: after the burst of one, the flood is refused; a
  // query answered a second later writes the summary first.
  std::vector<QueryEvent> events;
  DnsService s(refusing_config(2, 1), {}, [&](const QueryEvent& e) { events.push_back(e); });
  auto ignore = [](std::vector<std::uint8_t>) {};
  for (int i = 0; i < 21; ++i) s.handle(numbered_query(i), 512, ignore);
  const std::size_t before = events.size();  // the first, the limit's first report (+ a refill)
  std::this_thread::sleep_for(DnsService::kSummaryInterval + 100ms);
  s.handle(numbered_query(100), 512, ignore);
  REQUIRE(events.size() == before + 2);
  const auto& summary = events[before];
  REQUIRE(summary.suppressed.count("rate_limit") == 1);
  CHECK(before + summary.suppressed.at("rate_limit") == 21);  // all 21 accounted for
  CHECK(events.back().verdict == "unlisted");
  CHECK(events.back().suppressed.empty());
}

TEST_CASE("DnsService: queries the sandbox left unread are counted as unanswered",
          "[dns][service]") {
  Harness h;
  int t = connect_tcp(h.tcp_port);
  h.spin(100ms);  // accepted
  REQUIRE(h.service->tcp_connections() == 1);
  // Sent after the loop's last round: 3 over UDP, 2 over TCP plus half a
  // message (not a query yet, not counted).
  int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(h.udp_port);
  for (int i = 0; i < 3; ++i) {
    auto q = numbered_query(i);
    sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  close(c);
  std::vector<std::uint8_t> out;
  for (int i = 0; i < 2; ++i) frame(out, numbered_query(10 + i));
  out.insert(out.end(), {0, 40, 1, 2});
  REQUIRE(write(t, out.data(), out.size()) == static_cast<ssize_t>(out.size()));
  close(t);
  h.service->count_unread();
  h.service->flush_suppressed();
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].verdict == "unanswered");
  CHECK(h.events[0].unanswered == 5);
  CHECK(h.events[0].suppressed.empty());  // not refusals
  CHECK(h.service->tcp_connections() == 0);
}

TEST_CASE("DnsService: datagrams the kernel dropped for a full buffer count as unanswered",
          "[dns][service]") {
  Harness h;
  int small = 1;  // the kernel's minimum: a few datagrams fit
  REQUIRE(setsockopt(h.udp, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(h.udp_port);
  constexpr int kSent = 300;
  // Two rounds: drops a later datagram reports (SO_RXQ_OVFL), then drops
  // only the end-of-run count sees (SO_MEMINFO).
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kSent / 2; ++i) {
      auto q = numbered_query(round * 1000 + i);
      sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (round == 0) {
      h.spin(100ms);
      // One more after the drops: it carries the count.
      auto q = numbered_query(999);
      sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      h.spin(100ms);
      h.service->flush_suppressed();  // the summary the loop writes a second later
      REQUIRE(!h.events.empty());
      CHECK(h.events.back().unanswered > 0);  // the first round's drops, seen during the run
    }
  }
  close(c);
  h.service->count_unread();
  h.service->flush_suppressed();
  std::uint64_t answered = 0, unanswered = 0, suppressed = 0;
  for (const auto& e : h.events) {
    if (e.unanswered > 0) {
      unanswered += e.unanswered;
    } else if (!e.suppressed.empty()) {
      for (const auto& [verdict, n] : e.suppressed) suppressed += n;
    } else {
      ++answered;
    }
  }
  INFO("answered " << answered << ", suppressed " << suppressed << ", unanswered " << unanswered);
  CHECK(unanswered > 0);
  CHECK(answered + suppressed + unanswered == kSent + 1);  // every datagram accounted for
}

TEST_CASE("DnsService: a TCP stream closed for a bad message counts the queries after it",
          "[dns][service]") {
  Harness h;
  int c = connect_tcp(h.tcp_port);
  std::vector<std::uint8_t> out;
  frame(out, dnstest::query("evil.test", qtype::A, false, 1));  // answered (REFUSED)
  auto bogus = dnstest::query("good.test", qtype::A, false, 2);
  bogus[2] |= 0x80;  // a response: the stream cannot be trusted further
  frame(out, bogus);
  frame(out, dnstest::query("evil.test", qtype::A, false, 3));
  frame(out, dnstest::query("evil.test", qtype::A, false, 4));
  REQUIRE(send(c, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
  h.spin(100ms);
  CHECK(h.service->tcp_connections() == 0);
  h.service->flush_suppressed();
  std::map<std::string, std::uint64_t> seen;
  for (const auto& e : h.events) seen[e.verdict] += e.unanswered > 0 ? e.unanswered : 1;
  CHECK(seen["unlisted"] == 1);
  CHECK(seen["unanswered"] == 2);  // 3 and 4
  close(c);

  // A normal exchange leaves nothing unanswered.
  h.events.clear();
  int d = connect_tcp(h.tcp_port);
  std::vector<std::uint8_t> q;
  frame(q, dnstest::query("evil.test", qtype::A, false, 5));
  REQUIRE(send(d, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
  h.spin(100ms);
  close(d);
  h.spin(100ms);
  h.service->count_unread();
  h.service->flush_suppressed();
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].verdict == "unlisted");
}

TEST_CASE("DnsService: queries on connections never accepted are counted, past the TCP limit",
          "[dns][service]") {
  Harness h;  // listen backlog 64
  const int clients = static_cast<int>(DnsService::kMaxTcpConnections) + 8;
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i) {
    int c = connect_tcp(h.tcp_port);
    std::vector<std::uint8_t> q;
    frame(q, numbered_query(i));
    REQUIRE(send(c, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
    fds.push_back(c);
  }
  h.service->count_unread();  // the loop never ran: nothing was accepted
  h.service->flush_suppressed();
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].unanswered == static_cast<std::uint64_t>(clients));
  CHECK(h.service->tcp_connections() == 0);
  for (int c : fds) close(c);
}
