// The three network modules together, in a fresh user+net namespace, with a
// test loop standing in for the supervisor: DNS query -> filter -> c-ares
// upstream -> acked allow-set update -> answer -> connect ->
// egress listener on the port -> getsockname -> SNI peek -> check -> splice relay.
// Upstream DNS and the "origin" server are loopback servers inside the netns.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "../netns_child.hpp"
#include "egress/egress.hpp"
#include "sbx/error.hpp"
#include "tls_samples.hpp"

using namespace sbx;
using namespace std::chrono_literals;
using Obs = sbx::testing::Observations;

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
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = v4(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw Error("bind failed");
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

// As sandbox init makes sbx's own sockets: port N of every address, marked
// for the ruleset, and (UDP) told where each query went.
int bound_every(int type, std::uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const std::uint32_t mark = net::kOwnSocketMark;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) throw Error("SO_MARK failed");
  if (type == SOCK_DGRAM) setsockopt(fd, SOL_IP, IP_PKTINFO, &one, sizeof one);
  auto a = v4("0.0.0.0", port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw Error("bind failed");
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

std::vector<std::uint8_t> dns_query(const std::string& name, std::uint16_t type, std::uint16_t id) {
  std::vector<std::uint8_t> v{static_cast<std::uint8_t>(id >> 8),
                              static_cast<std::uint8_t>(id),
                              1,
                              0,
                              0,
                              1,
                              0,
                              0,
                              0,
                              0,
                              0,
                              0};
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    v.push_back(static_cast<std::uint8_t>(dot - start));
    v.insert(v.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
             name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  v.push_back(0);
  v.push_back(static_cast<std::uint8_t>(type >> 8));
  v.push_back(static_cast<std::uint8_t>(type));
  v.push_back(0);
  v.push_back(1);
  return v;
}

// Sends a query to a "hard-coded resolver" (it lands on the filter) and
// returns rcode, A addresses and where the answer came from. `source`: the
// client binds to it first (127.0.0.1: the kernel would then answer from
// 127.0.0.1 too, unless the filter sets the source to the address asked).
struct DnsReply {
  int rcode = -1;
  std::vector<std::string> addrs;
  std::string from;
};
DnsReply ask(const std::string& name, std::uint16_t id, const char* source = nullptr) {
  DnsReply r;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (source != nullptr) {
    auto s = v4(source, 0);
    bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof s);
  }
  auto a = v4("8.8.8.8", 53);
  auto q = dns_query(name, 1, id);
  sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{fd, POLLIN, 0};
  std::uint8_t buf[1500];
  if (poll(&p, 1, 3000) == 1) {
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    char f[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &from.sin_addr, f, sizeof f);
    r.from = f;
    if (n >= 12) {
      r.rcode = buf[3] & 0x0f;
      struct ares_addrttl_like {
        in_addr a;
        int ttl;
      };
      // Walk the answer: question, then RRs (names written uncompressed by our builder).
      std::size_t at = 12;
      auto skip_name = [&] {
        while (at < static_cast<std::size_t>(n) && buf[at] != 0) at += buf[at] + 1u;
        at += 1;
      };
      skip_name();
      at += 4;
      int an = (buf[6] << 8) | buf[7];
      for (int i = 0; i < an && at < static_cast<std::size_t>(n); ++i) {
        skip_name();
        if (at + 10 > static_cast<std::size_t>(n)) break;
        int type = (buf[at] << 8) | buf[at + 1];
        std::size_t rdlen = static_cast<std::size_t>((buf[at + 8] << 8) | buf[at + 9]);
        at += 10;
        if (type == 1 && rdlen == 4 && at + 4 <= static_cast<std::size_t>(n)) {
          char t[INET_ADDRSTRLEN];
          inet_ntop(AF_INET, &buf[at], t, sizeof t);
          r.addrs.push_back(t);
        }
        at += rdlen;
      }
    }
  }
  close(fd);
  return r;
}

// Two pipelined queries over TCP to a hard-coded resolver; returns "id:rcode;"...
std::string ask_tcp(const std::string& a, const std::string& b) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = v4("8.8.8.8", 53);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    close(fd);
    return std::string("connect ") + strerrorname_np(e);
  }
  std::vector<std::uint8_t> out;
  for (const auto& [name, id] : {std::pair{a, 7001}, std::pair{b, 7002}}) {
    auto q = dns_query(name, 1, static_cast<std::uint16_t>(id));
    out.push_back(static_cast<std::uint8_t>(q.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(q.size()));
    out.insert(out.end(), q.begin(), q.end());
  }
  send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  std::vector<std::uint8_t> in;
  std::uint8_t buf[4096];
  pollfd p{fd, POLLIN, 0};
  std::string result;
  int answers = 0;
  while (answers < 2 && poll(&p, 1, 3000) == 1) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.insert(in.end(), buf, buf + n);
    while (in.size() >= 2 && in.size() >= 2u + static_cast<std::size_t>((in[0] << 8) | in[1])) {
      std::size_t len = static_cast<std::size_t>((in[0] << 8) | in[1]);
      int id = (in[2] << 8) | in[3];
      result += std::to_string(id) + ":" + std::to_string(in[5] & 0x0f) + ";";
      in.erase(in.begin(), in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      ++answers;
    }
  }
  close(fd);
  return result;
}

std::string connect_errno(const char* ip, std::uint16_t port, int* out_fd = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = v4(ip, port);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int e = errno;
  if (r == 0 && out_fd) {
    *out_fd = fd;
    return "ok";
  }
  close(fd);
  return r == 0 ? "ok" : strerrorname_np(e);
}

// Upstream DNS stand-in (runs in the loop thread, not a real resolver).
struct FakeUpstream {
  int fd;
  std::set<std::string> seen;
  void serve() {
    std::uint8_t buf[1500];
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    ssize_t n;
    while ((n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                         &flen)) > 0) {
      auto p = dns::parse_query({buf, static_cast<std::size_t>(n)});
      if (p.status != dns::ParseStatus::ok) continue;
      seen.insert(p.query.name);
      std::vector<dns::Record> recs;
      auto add = [&](const char* ip, std::uint32_t ttl) {
        dns::Record r;
        r.name = p.query.name;
        r.type = dns::qtype::A;
        r.ttl = ttl;
        r.address = *net::IpAddress::parse(ip);
        recs.push_back(r);
      };
      if (p.query.type == dns::qtype::A) {
        if (p.query.name == "good.test" || p.query.name == "api.good.test") add("198.51.100.7", 5);
        if (p.query.name == "evil.test") add("198.51.100.66", 5);
        if (p.query.name == "rebind.good.test") {
          add("127.0.0.1", 5);
          add("169.254.169.254", 5);
        }
      }
      auto out = dns::build_response(p.query,
                                     recs.empty() && p.query.name == "nothing.good.test"
                                         ? dns::Rcode::nxdomain
                                         : dns::Rcode::noerror,
                                     recs);
      sendto(fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }
};

// The supervisor stand-in: one epoll loop over the DNS filter socket, the
// c-ares sockets, the fake upstream, the egress listener and the relays.
class Supervisor {
 public:
  Supervisor(int netfilter_fd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    dns_fd_ = bound_every(SOCK_DGRAM, 53);
    dns_tcp_fd_ = bound_every(SOCK_STREAM, 53);
    upstream_.fd = bound(SOCK_DGRAM, "127.0.0.1", 5300);
    egress_fd_ = bound_every(SOCK_STREAM, 443);
    origin_fd_ = bound(SOCK_STREAM, "127.0.0.1", 9443);
    dns::ServiceConfig cfg;
    cfg.filter.lookup = [](std::string_view n) -> dns::DomainMatch {
      if (n == "good.test") return {dns::DomainVerdict::allow, ""};
      if (n.ends_with(".good.test")) return {dns::DomainVerdict::allow, "good.test"};
      return {dns::DomainVerdict::unlisted, ""};
    };
    cfg.filter.limits.burst = 100000;
    cfg.upstream.servers = {"127.0.0.1:5300"};
    cfg.netfilter_fd = netfilter_fd;
    // The race loop deletes elements behind the filter's back (sbx itself
    // calls forget_addresses then): every resolve must re-add the element.
    cfg.cache_capacity = 0;
    service_ = std::make_unique<dns::DnsService>(
        cfg, [this](int fd, bool r, bool w) { watch(fd, r, w); },
        [this](const dns::QueryEvent& e) {
          std::lock_guard<std::mutex> l(mu_);
          events_.push_back(e.name + " " + e.verdict);
        });
    policy_.allow_ports = {443};
    policy_.names = cfg.filter.lookup;
    policy_.resolved_names = [this](const net::IpAddress& a) {
      return service_->names().names(a, dns::Clock::now());
    };
    service_->add_udp_socket(dns_fd_);
    service_->add_tcp_listener(dns_tcp_fd_);
    for (int fd : {upstream_.fd, egress_fd_, origin_fd_}) add(fd, EPOLLIN);
    thread_ = std::thread([this] { run(); });
  }
  ~Supervisor() {
    stop_ = true;
    thread_.join();
    relays_.clear();
    service_.reset();
    for (auto& [fd, st] : pending_) close(fd);
    for (int fd : echo_) close(fd);
    for (int fd : {dns_fd_, dns_tcp_fd_, upstream_.fd, egress_fd_, origin_fd_, ep_}) close(fd);
  }
  std::set<std::string> upstream_seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_copy_;
  }
  std::vector<std::string> verdicts() {
    std::lock_guard<std::mutex> l(mu_);
    return verdicts_;
  }

 private:
  void add(int fd, std::uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
  }
  void watch(int fd, bool r, bool w) {
    if (!r && !w) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
      service_fds_.erase(fd);
      return;
    }
    service_fds_.insert(fd);
    add(fd, (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u));
  }
  void rearm(egress::SpliceRelay& r) {
    for (int fd : {r.client_fd(), r.upstream_fd()}) {
      epoll_event e{};
      e.events = r.interest(fd);
      e.data.fd = fd;
      epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
    }
  }
  void on_peek(int fd) {
    auto& st = pending_[fd];
    std::uint8_t buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      pending_.erase(fd);
      return;
    }
    if (n < 0) return;
    auto res = st.peeker->feed({buf, static_cast<std::size_t>(n)});
    if (res.status == egress::PeekStatus::need_more) return;
    auto v = egress::check_connection(policy_, st.dest, &res);
    {
      std::lock_guard<std::mutex> l(mu_);
      verdicts_.push_back(st.dest.address.str() + ":" + std::to_string(st.dest.port) + " " +
                          v.name + " " + v.reason);
    }
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    if (!v.allowed) {
      egress::close_with_reset(fd);
      pending_.erase(fd);
      return;
    }
    // The real proxy connects to st.dest from the host netns; here the origin
    // stand-in listens on loopback.
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = v4("127.0.0.1", 9443);
    connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a);
    auto relay = std::make_unique<egress::SpliceRelay>(fd, up, st.peeker->take_buffered());
    pending_.erase(fd);
    for (int x : {relay->client_fd(), relay->upstream_fd()}) add(x, 0);
    relay->pump();
    rearm(*relay);
    int key = relay->client_fd();
    relay_of_[relay->upstream_fd()] = key;
    relay_of_[key] = key;
    relays_[key] = std::move(relay);
  }
  void run() {
    while (!stop_) {
      epoll_event evs[16];
      auto t = service_->next_timeout().value_or(50ms);
      int n = epoll_wait(ep_, evs, 16, static_cast<int>(std::min<long>(t.count(), 50)));
      if (n == 0) service_->on_timeout();
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == upstream_.fd) {
          upstream_.serve();
          std::lock_guard<std::mutex> l(mu_);
          seen_copy_ = upstream_.seen;
        } else if (service_fds_.count(fd)) {
          service_->on_ready(fd, evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                             evs[i].events & EPOLLOUT);
        } else if (fd == egress_fd_) {
          int c;
          while ((c = accept4(egress_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
            auto dest = egress::original_destination(c);
            auto early =
                dest ? egress::check_connection(policy_, *dest, nullptr) : egress::EgressVerdict{};
            if (!dest || (!early.allowed && early.reason != "not_inspected")) {
              egress::close_with_reset(c);
              continue;
            }
            pending_[c] =
                Peek{*dest,
                     std::make_unique<egress::Peeker>(egress::inspection_for(policy_, dest->port))};
            add(c, EPOLLIN);
          }
        } else if (fd == origin_fd_) {
          int c;
          while ((c = accept4(origin_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
            echo_.insert(c);
            add(c, EPOLLIN);
          }
        } else if (echo_.count(fd)) {
          char b[8192];
          ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
          if (k > 0) {
            send(fd, b, static_cast<std::size_t>(k), MSG_NOSIGNAL);
          } else if (k == 0 || errno != EAGAIN) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
            echo_.erase(fd);
            close(fd);
          }
        } else if (pending_.count(fd)) {
          on_peek(fd);
        } else if (relay_of_.count(fd)) {
          int key = relay_of_[fd];
          auto& r = relays_[key];
          if (!r->pump()) {
            relay_of_.erase(r->client_fd());
            relay_of_.erase(r->upstream_fd());
            relays_.erase(key);
          } else {
            rearm(*r);
          }
        }
      }
    }
  }

  struct Peek {
    egress::Destination dest;
    std::unique_ptr<egress::Peeker> peeker;
  };
  int ep_, dns_fd_, dns_tcp_fd_, egress_fd_, origin_fd_;
  FakeUpstream upstream_;
  std::unique_ptr<dns::DnsService> service_;
  egress::EgressPolicy policy_;
  std::set<int> service_fds_, echo_;
  std::map<int, Peek> pending_;
  std::map<int, std::unique_ptr<egress::SpliceRelay>> relays_;
  std::map<int, int> relay_of_;
  std::mutex mu_;
  std::vector<std::string> events_, verdicts_;
  std::set<std::string> seen_copy_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string tls_roundtrip(const std::vector<std::uint8_t>& hello, std::string* err) {
  int fd = -1;
  auto c = connect_errno("198.51.100.7", 443, &fd);
  if (c != "ok") return "connect " + c;
  send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
  std::vector<std::uint8_t> back;
  std::uint8_t buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (back.size() < hello.size() && poll(&p, 1, 2000) == 1) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *err = n < 0 ? strerrorname_np(errno) : "EOF";
      break;
    }
    back.insert(back.end(), buf, buf + n);
  }
  close(fd);
  return back == hello ? "echoed" : "not echoed";
}

Obs scenario() {
  Obs o;
  net::configure_netns_routes();
  int nfd = net::open_netfilter_socket();
  net::RulesetConfig rc;
  rc.allow_ports = {443};
  net::send_batch(nfd, net::build_ruleset_batch(rc, 1));
  int nfd2 = net::open_netfilter_socket();  // the test's own, for deletes
  Supervisor sup(nfd);

  auto good = ask("good.test", 1);
  o["good_rcode"] = std::to_string(good.rcode);
  o["good_addrs"] = good.addrs.empty() ? "" : good.addrs[0];
  o["good_from"] = good.from;
  // From 127.0.0.1 to 8.8.8.8: the answer must still come from 8.8.8.8
  // (IP_PKTINFO on the filter's socket).
  o["bound_from"] = ask("good.test", 7, "127.0.0.1").from;
  // Zero races: remove the element, resolve, connect at once; 300 times.
  int races = 0;
  auto addr = *net::IpAddress::parse("198.51.100.7");
  for (int i = 0; i < 300; ++i) {
    net::send_batch(nfd2, net::build_delete_allow_batch("sbx", {&addr, 1},
                                                        5000u + static_cast<std::uint32_t>(i) * 4));
    if (connect_errno("198.51.100.7", 443) != "ECONNREFUSED") ++races;  // really removed?
    auto r = ask("good.test", static_cast<std::uint16_t>(100 + i));
    int fd = -1;
    if (r.rcode != 0 || connect_errno("198.51.100.7", 443, &fd) != "ok") ++races;
    if (fd >= 0) egress::close_with_reset(fd);
  }
  o["races"] = std::to_string(races);

  auto evil = ask("evil.test", 2);
  o["evil_rcode"] = std::to_string(evil.rcode);
  o["evil_connect"] = connect_errno("198.51.100.66", 443);
  auto rebind = ask("rebind.good.test", 3);
  o["rebind"] = std::to_string(rebind.rcode) + "/" + std::to_string(rebind.addrs.size());
  o["nx"] = std::to_string(ask("nothing.good.test", 4).rcode);
  o["long_label"] = std::to_string(ask(std::string(200, 'a') + ".good.test", 5).rcode);

  o["tcp_dns"] = ask_tcp("evil.test", "good.test");
  ask("api.good.test", 6);
  std::string err;
  o["tls_allowed"] = tls_roundtrip(real_hello(), &err);
  // Same address, SNI of a name that never resolved there: reset.
  auto other = real_hello();
  // "API.Good.test" -> "API.Evil.test" inside the server_name extension.
  for (std::size_t i = 0; i + 4 < other.size(); ++i) {
    if (std::memcmp(&other[i], "Good", 4) == 0) std::memcpy(&other[i], "Evil", 4);
  }
  err.clear();
  o["tls_other_sni"] = tls_roundtrip(other, &err) + " " + err;
  std::vector<std::uint8_t> http{'G', 'E', 'T', ' ', '/', ' ', 'H',  'T',
                                 'T', 'P', '/', '1', '.', '1', '\r', '\n'};
  err.clear();
  o["not_tls"] = tls_roundtrip(http, &err) + " " + err;

  auto seen = sup.upstream_seen();
  o["upstream_saw_evil"] = seen.count("evil.test") ? "yes" : "no";
  o["upstream_saw_good"] = seen.count("good.test") ? "yes" : "no";
  std::string v;
  for (auto& s : sup.verdicts()) v += s + ";";
  o["verdicts"] = v;
  close(nfd2);
  return o;
}

}  // namespace

TEST_CASE("DNS filter, ruleset and egress proxy together in a netns", "[egress][netns]") {
  auto o = sbx::testing::run_in_netns(scenario);
  INFO(sbx::testing::describe(o));
  if (!sbx::testing::made_namespaces(o)) return;
  REQUIRE(o.count("exception") == 0);
  CHECK(o["good_rcode"] == "0");
  CHECK(o["good_addrs"] == "198.51.100.7");
  CHECK(o["good_from"] == "8.8.8.8");
  CHECK(o["bound_from"] == "8.8.8.8");
  CHECK(o["races"] == "0");
  CHECK(o["evil_rcode"] == "5");  // REFUSED, answered locally
  CHECK(o["evil_connect"] == "ECONNREFUSED");
  CHECK(o["upstream_saw_evil"] == "no");
  CHECK(o["upstream_saw_good"] == "yes");
  CHECK(o["rebind"] == "0/0");  // NOERROR, no usable address
  CHECK(o["nx"] == "3");
  CHECK(o["long_label"] == "1");  // FORMERR
  // DNS over TCP, two pipelined queries: the refusal and the upstream answer
  // (in that order: the refusal is immediate).
  CHECK(o["tcp_dns"] == "7001:5;7002:0;");
  CHECK(o["tls_allowed"] == "echoed");
  CHECK(o["tls_other_sni"] == "not echoed ECONNRESET");
  CHECK(o["not_tls"] == "not echoed ECONNRESET");
  CHECK(o["verdicts"].find("198.51.100.7:443 api.good.test allowed;") != std::string::npos);
  CHECK(o["verdicts"].find("198.51.100.7:443 api.evil.test name_not_allowed;") !=
        std::string::npos);
  CHECK(o["verdicts"].find("198.51.100.7:443  wrong_protocol;") != std::string::npos);
}
