// The supervisor's side of network mode "filtered": it owns the sockets init
// created inside the sandbox netns and serves them from one epoll set (nested
// in the supervisor's loop):
//  - the ruleset (netfilter/), loaded through the passed NETLINK_NETFILTER
//    socket before the command starts;
//  - the DNS filter (dnsproxy::DnsService) on port 53 of every address;
//  - the egress proxy: accept a connection to an allowed address (it lands
//    on the listener of its port, getsockname is where it was going), peek
//    SNI / Host, check, connect out from the host netns, splice relay;
//  - NFLOG -> net_blocked events;
//  - --publish (host 127.0.0.1:H -> sandbox 127.0.0.1:S through a socket init
//    creates in the netns on request) and host_ports (a listener inside on
//    127.0.0.1:N -> host 127.0.0.1:N).
#include "runtime/filtered_network.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_set>

#include "dnsproxy/dnsproxy.hpp"
#include "egress/egress.hpp"
#include "netfilter/netfilter.hpp"
#include "profiles/profiles.hpp"
#include "runtime/channel.hpp"
#include "runtime/supervisor.hpp"

namespace sbx::runtime {
namespace {

using dns::Clock;
using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 10s;
constexpr auto kHandOverTimeout = 10s;

std::string errno_name(int e) {
  const char* name = strerrorname_np(e);
  return name != nullptr ? name : fmt::format("errno {}", e);
}

// A default IPv6 route on the host (not via lo): else AAAA answers would make
// clients try addresses they cannot reach, so the filter answers NODATA.
bool host_has_ipv6_route() {
  std::ifstream in("/proc/net/ipv6_route");
  std::string dest, dest_len, src, src_len, next, metric, refs, use, flags, dev;
  while (in >> dest >> dest_len >> src >> src_len >> next >> metric >> refs >> use >> flags >>
         dev) {
    if (dest == std::string(32, '0') && dest_len == "00" && dev != "lo") return true;
  }
  return false;
}

std::string type_name(std::uint16_t type) {
  switch (type) {
    case dns::qtype::A:
      return "A";
    case dns::qtype::AAAA:
      return "AAAA";
    case dns::qtype::CNAME:
      return "CNAME";
    case dns::qtype::HTTPS:
      return "HTTPS";
    case dns::qtype::SVCB:
      return "SVCB";
    case dns::qtype::ANY:
      return "ANY";
    default:
      return std::to_string(type);
  }
}

std::string protocol_name(std::uint8_t p) {
  switch (p) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "icmpv6";
    default:
      return std::to_string(p);
  }
}

std::vector<net::Cidr> parse_cidrs(const std::vector<std::string>& texts, const char* key) {
  std::vector<net::Cidr> out;
  for (const auto& t : texts) {
    auto c = net::Cidr::parse(t);
    if (!c) {
      throw Error(fmt::format("network.{}: '{}' is not a CIDR", key, t),
                  "write ADDRESS/PREFIX with the host bits clear, e.g. 203.0.113.0/24");
    }
    out.push_back(*c);
  }
  return out;
}

socklen_t to_sockaddr(const net::IpAddress& a, std::uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (a.family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&out);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in*>(&out);
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  std::memcpy(&s->sin_addr, a.bytes.data(), 4);
  return sizeof *s;
}

// Records a sandbox can cause at will (a packet to a blocked address, a
// refused connection): one each up to a token bucket (a burst, then a rate);
// past it they are counted per destination and go out as one summary event
// at most every kInterval while they go on and when the run ends. So the
// sandbox cannot flood the audit log and make rotation drop its earlier
// records, and every attempt is still in the log, alone or in a count.
class Suppressor {
 public:
  static constexpr double kBurst = 200;
  static constexpr double kPerSecond = 50;
  static constexpr std::size_t kDestinations = 64;  // listed per summary; more are `unlisted`
  static constexpr std::chrono::seconds kInterval{1};

  // True: report this one on its own. False: it was counted, under its
  // destination ("address:port"), its verdict and the name it gave (SNI or
  // Host, with the port), when those are not empty.
  bool admit(Clock::time_point now, const std::string& destination, const std::string& verdict = {},
             const std::string& name = {}) {
    tokens_ = std::min(
        kBurst, tokens_ + std::chrono::duration<double>(now - refilled_).count() * kPerSecond);
    refilled_ = now;
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return true;
    }
    hold(now);
    ++count_;
    if (!verdict.empty()) ++verdicts_[verdict];
    if (!bump(destinations_, destination)) ++unlisted_;
    if (!name.empty() && !bump(names_, name)) ++unlisted_names_;
    return false;
  }
  // Reports lost before they were read (NFLOG's ENOBUFS).
  void lost(Clock::time_point now) {
    hold(now);
    ++lost_;
  }
  // When the summary is due; max() when nothing is counted.
  Clock::time_point due() const {
    return pending() ? since_ + kInterval : Clock::time_point::max();
  }
  // The summary's event data, resetting the counts; null when nothing is counted.
  nlohmann::json take_summary() {
    if (!pending()) return nullptr;
    nlohmann::json d;
    d["count"] = count_;
    d["destinations"] = destinations_;
    if (!verdicts_.empty()) d["verdicts"] = verdicts_;
    if (unlisted_ > 0) d["unlisted"] = unlisted_;
    // Names (dropped at audit level minimal, like every name field).
    if (!names_.empty()) d["names"] = names_;
    if (unlisted_names_ > 0) d["unlisted_names"] = unlisted_names_;
    if (lost_ > 0) d["lost_reads"] = lost_;
    count_ = lost_ = unlisted_ = unlisted_names_ = 0;
    destinations_.clear();
    names_.clear();
    verdicts_.clear();
    return d;
  }

 private:
  // Counts `key`; false when it is new and kDestinations are listed already.
  static bool bump(std::map<std::string, std::uint64_t>& counts, const std::string& key) {
    if (auto it = counts.find(key); it != counts.end()) {
      ++it->second;
    } else if (counts.size() < kDestinations) {
      counts.emplace(key, 1);
    } else {
      return false;
    }
    return true;
  }
  bool pending() const { return count_ > 0 || lost_ > 0; }
  void hold(Clock::time_point now) {
    if (!pending()) since_ = now;
  }

  double tokens_ = kBurst;
  Clock::time_point refilled_ = Clock::now();
  std::uint64_t count_ = 0, lost_ = 0, unlisted_ = 0, unlisted_names_ = 0;
  std::map<std::string, std::uint64_t> destinations_, names_, verdicts_;
  Clock::time_point since_{};
};

// "address:port" ("[v6]:port"), the run report's form of a destination.
std::string destination_key(const net::IpAddress& address, std::uint16_t port) {
  std::string d = address.str();
  if (d.find(':') != std::string::npos) d = "[" + d + "]";
  if (port != 0) d += ":" + std::to_string(port);
  return d;
}

}  // namespace

struct FilteredNetwork::Impl {
  enum class FdKind { timer, nflog, egress_listener, publish_listener, host_port_listener };

  struct Conn {
    enum class Kind { egress, publish, host_port } kind = Kind::egress;
    enum class State { peeking, waiting_socket, connecting, relaying } state = State::peeking;
    UniqueFd client, upstream;
    egress::Destination dest;  // egress: original destination; else where we connect
    std::unique_ptr<egress::Peeker> peeker;
    std::vector<std::uint8_t> prefix;
    std::unique_ptr<egress::SpliceRelay> relay;
    std::uint32_t armed[2] = {0, 0};  // epoll interest of the relay's client, upstream fd
    Clock::time_point started = Clock::now();
    Clock::time_point deadline = Clock::time_point::max();
    std::string name, reason;
    std::shared_ptr<std::size_t> live;  // Impl::live_connections, counted while this lives
    ~Conn() {
      if (live) --*live;
    }
  };

  const Policy& policy;
  EventSink on_event;
  UniqueFd epoll, timer;
  UniqueFd netfilter, nflog;
  UniqueFd routes;  // NETLINK_ROUTE of the supervisor's netns: egress's host-address gate
  std::unique_ptr<std::uint8_t[]> nflog_buf;  // on_nflog's receive buffer
  net::Acceptor acceptor;                     // sheds connections when out of fds (no busy loop)
  std::vector<UniqueFd> dns_udp, dns_tcp;
  std::map<int, UniqueFd> owned_listeners;      // egress + host-port listeners (inside)
  std::map<int, std::uint16_t> host_port_of;    // listener fd -> N
  std::map<int, std::uint16_t> publish_target;  // host listener fd -> sandbox port
  std::map<int, FdKind> kinds;
  std::set<int> dns_fds;
  std::map<int, std::shared_ptr<Conn>> conns;        // client and upstream fds
  std::deque<std::shared_ptr<Conn>> waiting_socket;  // publish: asked init for a socket
  std::unique_ptr<dns::DnsService> dns;
  egress::EgressPolicy egress;
  dns::DomainLookup lookup;  // the policy's patterns behind the live overlay
  dns::DomainLookup base_lookup;
  std::shared_ptr<dns::DomainOverlay> overlay = std::make_shared<dns::DomainOverlay>();
  std::vector<net::Cidr> live_allow_cidrs, live_deny_cidrs;  // sbx network allow/deny
  std::uint32_t control_seq = 1u << 28;
  std::vector<net::Cidr> deny, allow_cidrs;
  int control_fd = -1;
  bool started = false;

  // Proxied connections open at once (egress, host ports, publish; from
  // accept to the relay's end): each holds up to six fds and two pipes of
  // up to 1 MiB in the supervisor, whose memory the sandbox's limit does not
  // cover. Beyond it a connection is refused (verdict connection_limit).
  static constexpr std::size_t kMaxConnections = 1024;
  std::shared_ptr<std::size_t> live_connections = std::make_shared<std::size_t>(0);
  bool cap_warned = false;

  std::shared_ptr<Conn> new_conn(int client_fd) {
    auto c = std::make_shared<Conn>();
    c->client.reset(client_fd);
    c->live = live_connections;
    ++*live_connections;
    return c;
  }
  // Refuses `c` (its destination set) when it is one over the cap.
  bool over_connection_cap(const std::shared_ptr<Conn>& c) {
    if (*live_connections <= kMaxConnections) return false;
    if (!cap_warned && on_warning) {
      cap_warned = true;
      on_warning(
          fmt::format("the sandbox holds {} proxied connections open, sbx's limit: further "
                      "ones are reset (net_connect verdict connection_limit)",
                      kMaxConnections));
    }
    refuse(c, "connection_limit");
    return true;
  }

  // Connections accepted per listener and wake-up: a sandbox connecting as
  // fast as it can must not keep the loop from everything else (signals,
  // the time limit, DNS); the rest are accepted next round (level-triggered).
  static constexpr int kAcceptsPerWake = 64;

  // Blocked packets (net_blocked) and refused connections (net_connect that
  // were not allowed): see Suppressor.
  Suppressor blocked_packets, refused_connections;

  // Connections lost for lack of fds (open_files limit records): besides
  // the acceptors' (here and the DNS service's for DNS over TCP), those
  // whose upstream socket or relay pipes could not be made; how many were
  // recorded, and when the next record may go.
  std::size_t fd_losses = 0;
  std::size_t shed_recorded = 0;
  Clock::time_point shed_due{};
  WarningSink on_warning;

  Impl(const Policy& p, const RunOptions& options)
      : policy(p), on_event(options.on_event), on_warning(options.on_warning) {}

  void emit(const char* type, nlohmann::json data) {
    if (!on_event) return;
    Event e;
    e.type = type;
    e.data = std::move(data);
    on_event(e);
  }

  // ---- epoll bookkeeping
  void ctl(int op, int fd, std::uint32_t events) {
    struct epoll_event ev {};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epoll.get(), op, fd, &ev) != 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
      epoll_ctl(epoll.get(), EPOLL_CTL_MOD, fd, &ev);
  }
  void add(int fd, std::uint32_t events) { ctl(EPOLL_CTL_ADD, fd, events); }
  void mod(int fd, std::uint32_t events) { ctl(EPOLL_CTL_MOD, fd, events); }
  void del(int fd) { epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr); }

  void dns_watch(int fd, bool readable, bool writable) {
    if (!readable && !writable) {
      del(fd);
      dns_fds.erase(fd);
      return;
    }
    dns_fds.insert(fd);
    add(fd, (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u));
  }

  // ---- start
  void start() {
    if (!netfilter || !nflog || dns_udp.empty()) {
      throw Error("the sandbox did not pass its network sockets",
                  "this is a bug in sbx; run with --net none meanwhile");
    }
    net::RulesetConfig rules;
    rules.nflog_group = kNflogGroup;
    rules.allow_ports = policy.network.allow_ports;
    rules.host_ports = policy.network.host_ports;
    rules.deny_cidrs = deny;
    rules.allow_cidrs = allow_cidrs;
    try {
      net::send_batch(netfilter.get(), net::build_ruleset_batch(rules, 1));
    } catch (const Error& e) {
      throw Error(fmt::format("cannot load the sandbox's nftables ruleset: {}", e.what()),
                  "network \"filtered\" needs nf_tables usable in a user namespace (kernel "
                  "options NF_TABLES, NF_TABLES_INET, NFT_REJECT, NFT_LOG, "
                  "NETFILTER_NETLINK_LOG; the modules loaded; not disabled by a hardening "
                  "sysctl); "
                  "or run with --net none or --net host");
    }
    try {
      net::nflog_bind(nflog.get(), kNflogGroup);
    } catch (const Error& e) {
      throw Error(fmt::format("cannot read blocked packets (NFLOG): {}", e.what()),
                  "the kernel needs nfnetlink_log (NETFILTER_NETLINK_LOG); or run with "
                  "--net none or --net host");
    }
    kinds[nflog.get()] = FdKind::nflog;
    add(nflog.get(), EPOLLIN);

    dns::ServiceConfig cfg;
    cfg.filter.lookup = lookup;
    cfg.filter.refusal = policy.network.dns_refusal;
    cfg.filter.host_has_ipv6 = host_has_ipv6_route();
    cfg.filter.limits.queries_per_second = policy.network.dns_query_rate;
    cfg.filter.limits.burst = 2.0 * policy.network.dns_query_rate;
    cfg.ttl.min = std::chrono::duration_cast<std::chrono::seconds>(policy.network.dns_min_ttl);
    cfg.ttl.grace = std::chrono::duration_cast<std::chrono::seconds>(policy.network.dns_ttl_grace);
    cfg.upstream.servers = policy.network.dns_upstream;
    cfg.deny = deny;
    cfg.netfilter_fd = netfilter.get();
    // Always add, delete, add: before 6.12 a re-add keeps the old expiry
    // (commit 4201f3938914), and sbx's plain re-add (no expiration attribute)
    // did not refresh on 6.18 either (tests/vm/nft_refresh.cpp reports it).
    cfg.refresh_elements = true;
    dns = std::make_unique<dns::DnsService>(
        cfg, [this](int fd, bool r, bool w) { dns_watch(fd, r, w); },
        [this](const dns::QueryEvent& q) { on_query(q); });
    for (auto& fd : dns_udp) dns->add_udp_socket(fd.get());
    for (auto& fd : dns_tcp) dns->add_tcp_listener(fd.get());

    for (auto& [fd, owned] : owned_listeners) add(fd, EPOLLIN);  // egress, host ports, publish
    started = true;
  }

  // ---- events from the DNS filter and NFLOG
  void on_query(const dns::QueryEvent& q) {
    if (!q.suppressed.empty()) {  // refusals by a limit, counted (DnsService::flush_suppressed)
      std::uint64_t count = 0;
      for (const auto& [verdict, n] : q.suppressed) count += n;
      emit("dns_suppressed", {{"count", count}, {"verdicts", q.suppressed}});
      return;
    }
    if (q.unanswered > 0) {  // queries never answered (DnsService::count_unread)
      emit("dns", {{"verdict", "unanswered"},
                   {"count", q.unanswered},
                   {"qtype", "0"},
                   {"rcode", "NOERROR"},
                   {"answers", 0},
                   {"latency_us", 0}});
      return;
    }
    nlohmann::json d;
    d["name"] = q.name;
    d["qtype"] = type_name(q.type);
    d["verdict"] = q.verdict;
    d["rcode"] = std::string(dns::to_string(q.rcode));
    d["answers"] = q.answers;
    if (!q.dropped.empty()) {
      auto& dropped = d["dropped"] = nlohmann::json::array();
      for (const auto& a : q.dropped) dropped.push_back(a.str());
    }
    d["latency_us"] = q.latency.count();
    if (q.limit_first_report) d["limit_first_report"] = true;
    emit("dns", std::move(d));
  }

  // `max_reads`: bounded in the loop, since a sandbox sending to blocked
  // addresses as fast as it can must not keep it here (DNS, the proxy,
  // signals and the time limit wait meanwhile); what is left is read on the
  // next round (level-triggered). Once the sandbox is gone nothing new comes
  // and everything queued is read.
  void on_nflog(int max_reads = 64) {
    // Not zeroed, and kept: zero-filling 64 KiB per call was 16 page faults,
    // ~0.2 ms of every filtered run's end (the final drain finds nothing).
    constexpr std::size_t kBufSize = 1 << 16;
    if (!nflog_buf) nflog_buf = std::make_unique_for_overwrite<std::uint8_t[]>(kBufSize);
    std::uint8_t* buf = nflog_buf.get();
    for (int reads = 0; reads < max_reads; ++reads) {
      ssize_t n = recv(nflog.get(), buf, kBufSize, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == ENOBUFS) {  // the kernel dropped packets' reports: count the loss
        blocked_packets.lost(Clock::now());
        continue;
      }
      if (n <= 0) return;
      for (const auto& p : net::parse_nflog({buf, static_cast<std::size_t>(n)})) {
        const auto now = Clock::now();
        if (!blocked_packets.admit(now, destination_key(p.destination, p.destination_port)))
          continue;
        flush_summaries(now);
        nlohmann::json d;
        d["protocol"] = protocol_name(p.protocol);
        d["address"] = p.destination.str();
        if (p.destination_port != 0) d["port"] = p.destination_port;
        std::string prefix = p.prefix;
        while (!prefix.empty() && prefix.back() == ' ') prefix.pop_back();
        d["reason"] = prefix == "sbx-denied" ? "denied_range" : "not_allowed";
        auto names =
            dns ? dns->names().names(p.destination, Clock::now()) : std::vector<std::string>{};
        if (!names.empty()) d["names"] = names;
        emit("net_blocked", std::move(d));
      }
    }
  }

  // Connections lost because the supervisor had no fd left: a `limit`
  // record of kind open_files at most once a second, the first also a
  // warning with the fix. Written by flush_summaries: rearm_timer wakes the
  // loop for it (at once for the first) while a loss is unrecorded. Not a
  // policy verdict: the sandbox sees a reset, as for any connection sbx
  // cannot carry.
  std::size_t fds_short() const {
    return acceptor.shed() + fd_losses + (dns ? dns->tcp_shed() : 0);
  }
  bool shed_pending() const { return fds_short() > shed_recorded; }
  void record_shed(Clock::time_point now) {
    if (!shed_pending() || now < shed_due) return;
    struct rlimit rl {};
    getrlimit(RLIMIT_NOFILE, &rl);
    const std::size_t total = fds_short();
    nlohmann::json d = {{"kind", "open_files"}, {"count", total - shed_recorded}, {"total", total}};
    if (rl.rlim_cur != RLIM_INFINITY) d["limit"] = rl.rlim_cur;
    if (shed_recorded == 0 && on_warning) {
      on_warning(fmt::format(
          "sbx ran out of file descriptors (open-file limit {}): connections from the sandbox "
          "are reset; {}",
          rl.rlim_cur,
          rl.rlim_cur < rl.rlim_max
              ? "raise the open-file limit (ulimit -n) before starting sbx"
              : "raise the hard open-file limit before starting sbx (ulimit -Hn, or "
                "LimitNOFILE= for a service)"));
    }
    emit("limit", std::move(d));
    shed_recorded = total;
    // At the end (now = max) nothing comes after: no next time to compute.
    shed_due = now == Clock::time_point::max() ? now : now + std::chrono::seconds(1);
  }

  // Writes the summaries that are due by `now` (all: max()).
  void flush_summaries(Clock::time_point now) {
    record_shed(now);
    if (blocked_packets.due() <= now)
      if (auto d = blocked_packets.take_summary(); !d.is_null())
        emit("net_blocked_suppressed", std::move(d));
    if (refused_connections.due() <= now)
      if (auto d = refused_connections.take_summary(); !d.is_null())
        emit("net_connect_suppressed", std::move(d));
  }

  // ---- connections
  void connection_event(const Conn& c, bool allowed, const std::string& reason,
                        const std::string& error = {}) {
    nlohmann::json d;
    const char* kind = c.kind == Conn::Kind::egress    ? "egress"
                       : c.kind == Conn::Kind::publish ? "publish"
                                                       : "host_port";
    d["kind"] = kind;
    if (!c.name.empty()) d["name"] = c.name;
    d["address"] = c.dest.address.str();
    d["port"] = c.dest.port;
    d["allowed"] = allowed;
    d["verdict"] = reason;
    if (!error.empty()) d["error"] = error;
    if (c.relay) {
      d["bytes_up"] = c.relay->bytes_up();
      d["bytes_down"] = c.relay->bytes_down();
    }
    d["duration_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.started).count();
    emit("net_connect", std::move(d));
  }

  void forget(Conn& c) {
    for (int fd : {c.client.get(), c.upstream.get()}) {
      if (fd < 0) continue;
      del(fd);
      conns.erase(fd);
    }
    if (c.relay) {
      del(c.relay->client_fd());
      del(c.relay->upstream_fd());
      conns.erase(c.relay->client_fd());
      conns.erase(c.relay->upstream_fd());
    }
  }

  // Refused or failed before relaying: the sandbox side sees a reset. The
  // sandbox causes these at will: the record goes through refused_connections.
  void refuse(const std::shared_ptr<Conn>& c, const std::string& reason,
              const std::string& error = {}) {
    record_refusal(*c, reason, error);
    reset_unrelayed(c);
  }
  void record_refusal(const Conn& c, const std::string& reason, const std::string& error) {
    const auto now = Clock::now();
    if (refused_connections.admit(
            now, destination_key(c.dest.address, c.dest.port), reason,
            c.name.empty() ? std::string() : c.name + ":" + std::to_string(c.dest.port))) {
      flush_summaries(now);
      connection_event(c, false, reason, error);
    }
  }

  // Ends a connection that is not relaying yet: the sandbox side sees a reset.
  void reset_unrelayed(const std::shared_ptr<Conn>& c) {
    forget(*c);
    c->deadline = Clock::time_point::max();
    if (c->client) egress::close_with_reset(c->client.release());
    c->upstream.reset();
  }

  // ---- live deny (docs/control.md): it also ends what it now denies among
  // the connections already open -- relayed or still connecting upstream --
  // to a name now denied or no longer allowed, to an address inside a denied
  // range, or, on an opaque port (no name was sent), to an address that no
  // allowed name resolves to any more. Never because a DNS answer expired.
  bool denied_now(const Conn& c) const {
    if (c.kind != Conn::Kind::egress) return false;
    if (c.state != Conn::State::connecting && c.state != Conn::State::relaying) return false;
    if (net::denied(egress.deny_cidrs, c.dest.address)) return true;
    const bool by_cidr = net::in_any(egress.allow_cidrs, c.dest.address);
    auto allowed = [&](const std::string& n) {
      return lookup(n).verdict == dns::DomainVerdict::allow;
    };
    if (egress::inspection_for(egress, c.dest.port) == egress::Inspection::opaque) {
      if (by_cidr) return false;
      std::vector<std::string> names;
      if (egress.resolved_names) names = egress.resolved_names(c.dest.address);
      if (names.empty() && !c.name.empty()) names.push_back(c.name);  // the answer expired
      return !names.empty() && std::none_of(names.begin(), names.end(), allowed);
    }
    // The SNI/Host it sent: an address literal was admitted by its range
    // (checked above); a name must still be allowed.
    if (c.name.empty() || net::IpAddress::parse(c.name)) return false;
    return !allowed(c.name);
  }

  std::size_t cut_denied_connections() {
    std::vector<std::shared_ptr<Conn>> cut;
    std::unordered_set<const Conn*> seen;  // a connection is listed under two fds
    for (const auto& [fd, c] : conns)
      if (seen.insert(c.get()).second && denied_now(*c)) cut.push_back(c);
    for (const auto& c : cut) {
      // Each is a record of its own: the user's act, not the sandbox's, so
      // not through refused_connections.
      if (!c->relay) {  // connecting upstream
        connection_event(*c, false, "denied_live");
        reset_unrelayed(c);
        continue;
      }
      forget(*c);
      egress::reset_on_close(c->relay->client_fd());  // the sandbox sees ECONNRESET
      egress::reset_on_close(c->relay->upstream_fd());
      connection_event(*c, false, "denied_live", c->relay->error());
      c->relay.reset();  // closes both sides
    }
    return cut.size();
  }

  void accept_egress(int listener) {
    for (int n = 0; n < kAcceptsPerWake; ++n) {
      int fd = acceptor.accept(listener);
      if (fd < 0) return;
      auto c = new_conn(fd);
      auto dest = egress::original_destination(fd);
      if (!dest) {
        refuse(c, "no_original_destination");
        continue;
      }
      c->dest = *dest;
      if (dest->address.is_loopback()) {
        // Only 127.0.0.1:N of a host_ports entry N that is also an allowed
        // port reaches the egress listener on loopback: the ruleset refuses
        // the rest (lo_ports, lo_host_ports); checked again here.
        if (dest->address == net::IpAddress::v4(127, 0, 0, 1) &&
            std::find(policy.network.host_ports.begin(), policy.network.host_ports.end(),
                      dest->port) != policy.network.host_ports.end()) {
          connect_host_port(c, dest->port);
        } else {
          refuse(c, "denied_address");
        }
        continue;
      }
      if (over_connection_cap(c)) continue;
      auto early = egress::check_connection(egress, *dest, nullptr);
      if (!early.allowed && early.reason != "not_inspected") {
        c->name = early.name;
        refuse(c, early.reason);
        continue;
      }
      if (early.allowed) {  // opaque port: the address is all there is to check
        c->name = early.name;
        c->reason = early.reason;
        conns[fd] = c;
        connect_upstream(c);
        continue;
      }
      c->peeker = std::make_unique<egress::Peeker>(egress::inspection_for(egress, dest->port));
      c->deadline = c->peeker->deadline();
      conns[fd] = c;
      add(fd, EPOLLIN);
    }
  }

  void on_peek(const std::shared_ptr<Conn>& c) {
    // No more than the peeker can hold: what is read here goes upstream
    // from its buffer, or is lost (a request head and body sent together
    // lost the body's bytes past the cap).
    std::uint8_t buf[4096];
    ssize_t n = recv(c->client.get(), buf, std::min(sizeof buf, c->peeker->room()), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      refuse(c, "incomplete", n < 0 ? errno_name(errno) : "closed before a name was sent");
      return;
    }
    auto res = c->peeker->feed({buf, static_cast<std::size_t>(n)});
    if (res.status == egress::PeekStatus::need_more) return;
    auto verdict = egress::check_connection(egress, c->dest, &res);
    c->name = verdict.name.empty() ? res.name : verdict.name;
    if (!verdict.allowed) {
      refuse(c, verdict.reason, res.error);
      return;
    }
    c->reason = verdict.reason;
    c->prefix = c->peeker->take_buffered();
    c->peeker.reset();
    del(c->client.get());
    connect_upstream(c);
  }

  // Egress connects from the supervisor's netns, where every address of the
  // host is local, not only 127.0.0.0/8 (denied already): a public address
  // of eth0, a veth's, a global IPv6 one. A connection to one would arrive
  // at the host's own services over lo, past any firewall on the external
  // interfaces. The kernel's route decides, per connection, right before
  // connect(): a local, broadcast, anycast or multicast route is refused
  // (host_address); no route is left to connect(), which fails with it
  // (upstream_failed); a lookup that fails refuses (fail closed). True when
  // `c` was refused.
  bool refuse_host_address(const std::shared_ptr<Conn>& c) {
    try {
      if (!net::lookup_route(routes.get(), c->dest.address).local()) return false;
      refuse(c, "host_address");
    } catch (const Error& e) {
      refuse(c, "upstream_failed",
             fmt::format("cannot tell whether it is an address of this host: {}", e.what()));
    }
    return true;
  }

  // Non-blocking connect from the supervisor's netns (the host's for egress
  // and host ports; for publish the socket came from the sandbox netns).
  void connect_upstream(const std::shared_ptr<Conn>& c, UniqueFd sock = {}) {
    // Not host ports (the host's 127.0.0.1:N by design) nor publish (the
    // sandbox's own loopback).
    if (c->kind == Conn::Kind::egress && refuse_host_address(c)) return;
    sockaddr_storage sa{};
    socklen_t len = to_sockaddr(c->dest.address, c->dest.port, sa);
    if (!sock) sock.reset(socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) {
      const int err = errno;
      if (err == EMFILE || err == ENFILE) ++fd_losses;
      refuse(c, "upstream_failed", errno_name(err));
      return;
    }
    int rc = connect(sock.get(), reinterpret_cast<sockaddr*>(&sa), len);
    if (rc != 0 && errno != EINPROGRESS) {
      refuse(c, "upstream_failed", errno_name(errno));
      return;
    }
    c->upstream = std::move(sock);
    conns[c->upstream.get()] = c;
    if (rc == 0) {
      start_relay(c);
      return;
    }
    c->state = Conn::State::connecting;
    c->deadline = Clock::now() + kConnectTimeout;
    add(c->upstream.get(), EPOLLOUT);
  }

  void on_connected(const std::shared_ptr<Conn>& c) {
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(c->upstream.get(), SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      refuse(c, "upstream_failed", errno_name(error));
      return;
    }
    // Still connecting: the event was for an earlier socket with this fd
    // number, closed and the number reused within one epoll batch (SO_ERROR
    // is 0 while a connect is in progress). The real event comes later.
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    if (getpeername(c->upstream.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 &&
        errno == ENOTCONN)
      return;
    start_relay(c);
  }

  void start_relay(const std::shared_ptr<Conn>& c) {
    del(c->client.get());
    del(c->upstream.get());
    int client = c->client.release();
    int upstream = c->upstream.release();
    try {
      c->relay = std::make_unique<egress::SpliceRelay>(client, upstream, std::move(c->prefix));
    } catch (const Error& e) {
      // Out of fds for its pipes (pipe2's only failure here): this
      // connection fails (the relay closed both sockets), the sandbox and
      // its other connections go on.
      conns.erase(client);
      conns.erase(upstream);
      ++fd_losses;
      record_refusal(*c, "upstream_failed", e.what());  // the sandbox can repeat it at will
      return;
    }
    c->state = Conn::State::relaying;
    c->deadline = Clock::time_point::max();
    conns[client] = c;
    conns[upstream] = c;
    add(client, 0);
    add(upstream, 0);
    pump(c);
  }

  // `fd`/`events`: what woke it. epoll reports ERR and HUP even on an fd armed
  // with no interest; such an fd (closed or reset by its peer while the relay
  // has nothing to move through it, e.g. the other side not reading) would be
  // reported again at once, forever: it leaves the epoll set until the relay
  // wants it again (then a write fails and ends the relay, or it drains).
  static constexpr std::uint32_t kDetached = ~0u;
  void pump(const std::shared_ptr<Conn>& c, int fd = -1, std::uint32_t events = 0) {
    if (!c->relay->pump()) {
      forget(*c);
      connection_event(*c, true, c->reason.empty() ? "allowed" : c->reason, c->relay->error());
      c->relay.reset();  // closes both sides
      return;
    }
    // epoll_ctl only when the interest changed: at full speed the relay is
    // pumped tens of thousands of times a second.
    const int fds[2] = {c->relay->client_fd(), c->relay->upstream_fd()};
    for (int i = 0; i < 2; ++i) {
      std::uint32_t want = c->relay->interest(fds[i]);
      const bool dead = fds[i] == fd && (events & (EPOLLERR | EPOLLHUP)) != 0;
      if (want == 0 && (dead || c->armed[i] == kDetached)) {
        if (c->armed[i] != kDetached) del(fds[i]);
        c->armed[i] = kDetached;
      } else if (c->armed[i] != want) {
        if (c->armed[i] == kDetached) {
          add(fds[i], want);
        } else {
          mod(fds[i], want);
        }
        c->armed[i] = want;
      }
    }
  }

  void accept_host_port(int listener) {
    for (int n = 0; n < kAcceptsPerWake; ++n) {
      int fd = acceptor.accept(listener);
      if (fd < 0) return;
      connect_host_port(new_conn(fd), host_port_of[listener]);
    }
  }

  // An accepted connection to host_ports entry N: to the host's 127.0.0.1:N.
  void connect_host_port(const std::shared_ptr<Conn>& c, std::uint16_t port) {
    c->kind = Conn::Kind::host_port;
    c->dest = {net::IpAddress::v4(127, 0, 0, 1), port};
    c->reason = "host_port";
    if (over_connection_cap(c)) return;
    conns[c->client.get()] = c;
    connect_upstream(c);
  }

  void accept_publish(int listener) {
    for (int n = 0; n < kAcceptsPerWake; ++n) {
      int fd = acceptor.accept(listener);
      if (fd < 0) return;
      auto c = new_conn(fd);
      c->kind = Conn::Kind::publish;
      c->dest = {net::IpAddress::v4(127, 0, 0, 1), publish_target[listener]};
      if (over_connection_cap(c)) continue;
      c->reason = "publish";
      c->state = Conn::State::waiting_socket;
      c->deadline = Clock::now() + kConnectTimeout;
      // init creates an unconnected socket in the sandbox netns for us.
      const char request = kSocketRequest;
      if (control_fd < 0 || send(control_fd, &request, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
        refuse(c, "sandbox_unreachable", errno_name(errno));
        continue;
      }
      conns[fd] = c;
      waiting_socket.push_back(c);
    }
  }

  void on_sandbox_socket(UniqueFd fd) {
    while (!waiting_socket.empty()) {
      auto c = waiting_socket.front();
      waiting_socket.pop_front();
      if (c->state != Conn::State::waiting_socket || !c->client) continue;  // timed out
      if (!fd) {
        refuse(c, "sandbox_unreachable", "init could not create a socket");
        return;
      }
      connect_upstream(c, std::move(fd));
      return;
    }
  }

  // ---- timers
  void expire() {
    auto now = Clock::now();
    std::vector<std::shared_ptr<Conn>> late;
    for (auto& [fd, c] : conns)
      if (c->deadline <= now && c->state != Conn::State::relaying) late.push_back(c);
    for (auto& c : late) {
      if (!c->client) continue;  // already handled through its other fd
      refuse(c, c->state == Conn::State::peeking ? "incomplete" : "upstream_failed",
             c->state == Conn::State::peeking ? "no name within the peek deadline" : "timed out");
    }
    if (dns) dns->names().expire(now);
    flush_summaries(now);
  }

  void rearm_timer() {
    auto now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    if (dns) {
      if (auto t = dns->next_timeout()) next = now + *t;
    }
    for (auto& [fd, c] : conns) next = std::min(next, c->deadline);
    next = std::min({next, blocked_packets.due(), refused_connections.due()});
    if (shed_pending()) next = std::min(next, shed_due);
    struct itimerspec spec {};
    if (next != Clock::time_point::max()) {
      auto ms = std::max<std::int64_t>(
          1, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1);
      spec.it_value.tv_sec = ms / 1000;
      spec.it_value.tv_nsec = (ms % 1000) * 1'000'000;
    }
    timerfd_settime(timer.get(), 0, &spec, nullptr);
  }

  void on_ready() {
    struct epoll_event events[32];
    int n = epoll_wait(epoll.get(), events, 32, 0);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      std::uint32_t ev = events[i].events;
      if (auto k = kinds.find(fd); k != kinds.end()) {
        switch (k->second) {
          case FdKind::timer: {
            std::uint64_t ticks;
            (void)!read(fd, &ticks, sizeof ticks);
            if (dns) dns->on_timeout();
            expire();
            break;
          }
          case FdKind::nflog:
            on_nflog();
            break;
          case FdKind::egress_listener:
            accept_egress(fd);
            break;
          case FdKind::publish_listener:
            accept_publish(fd);
            break;
          case FdKind::host_port_listener:
            accept_host_port(fd);
            break;
        }
        continue;
      }
      if (auto it = conns.find(fd); it != conns.end()) {
        auto c = it->second;  // keeps it alive while handled
        switch (c->state) {
          case Conn::State::peeking:
            on_peek(c);
            break;
          case Conn::State::connecting:
            if (fd == c->upstream.get()) on_connected(c);
            break;
          case Conn::State::relaying:
            pump(c, fd, ev);
            break;
          case Conn::State::waiting_socket:
            break;
        }
        continue;
      }
      if (dns && dns_fds.count(fd) != 0) {
        dns->on_ready(fd, (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0, (ev & EPOLLOUT) != 0);
      }
    }
    rearm_timer();
  }
};

FilteredNetwork::FilteredNetwork(const Policy& policy, const RunOptions& options)
    : impl_(std::make_unique<Impl>(policy, options)) {
  Impl& m = *impl_;
  const NetworkPolicy& net = policy.network;
  m.deny = net::effective_deny_cidrs(net.deny_cidrs);
  m.allow_cidrs = parse_cidrs(net.allow_cidrs, "allow_cidrs");
  m.base_lookup = dns::domain_lookup_for(net);
  m.lookup = dns::with_overlay(m.base_lookup, m.overlay);  // live changes (control.cpp)
  m.egress.allow_ports = net.allow_ports;
  m.egress.opaque_ports = net.opaque_ports;
  m.egress.allow_cidrs = m.allow_cidrs;
  m.egress.deny_cidrs = m.deny;
  m.egress.names = m.lookup;
  m.egress.resolved_names = [&m](const net::IpAddress& a) {
    auto names = m.dns ? m.dns->names().names(a, Clock::now()) : std::vector<std::string>{};
    // A name denied live no longer vouches for its addresses.
    std::erase_if(names, [&m](const std::string& n) {
      return m.overlay->decide(n).verdict == dns::DomainVerdict::deny;
    });
    return names;
  };
  for (const auto& u : net.dns_upstream) {
    if (u.empty())
      throw Error("network.dns_upstream: empty entry", "write IP, IP:PORT or [IPv6]:PORT");
  }

  // Opened here, in the supervisor's netns: the one egress connects from.
  try {
    m.routes.reset(net::open_route_socket());
  } catch (const Error& e) {
    // Out of fds: with_open_files_fix (sbx::run) gives the open-file fix.
    throw Error(
        fmt::format("cannot look up the host's routes for network \"filtered\": {}", e.what()),
        "sbx asks the kernel's routes to keep egress off this host's own addresses: allow sbx "
        "NETLINK_ROUTE sockets if a security policy denies them, or run with --net none or "
        "--net host");
  }

  m.epoll.reset(epoll_create1(EPOLL_CLOEXEC));
  m.timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!m.epoll || !m.timer)
    throw Error(fmt::format("epoll/timerfd for the network: {}", std::strerror(errno)));
  m.kinds[m.timer.get()] = Impl::FdKind::timer;
  m.add(m.timer.get(), EPOLLIN);

  // --publish: bound now, so a busy port fails before anything starts.
  for (const auto& p : net.publish) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage sa{};
    socklen_t len = to_sockaddr(net::IpAddress::v4(127, 0, 0, 1), p.host_port, sa);
    if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
        listen(fd.get(), SOMAXCONN) != 0) {
      throw Error(fmt::format("cannot publish port {}: 127.0.0.1:{}: {}", p.sandbox_port,
                              p.host_port, std::strerror(errno)),
                  "choose a free host port (--publish HOST:SANDBOX)");
    }
    m.publish_target[fd.get()] = p.sandbox_port;
    m.kinds[fd.get()] = Impl::FdKind::publish_listener;
    m.owned_listeners[fd.get()] = std::move(fd);
  }
}

void FilteredNetwork::flush_events(bool sandbox_gone) {
  if (impl_->dns) {
    if (sandbox_gone) impl_->dns->count_unread();
    impl_->dns->flush_suppressed();
  }
  // What the sandbox's last packets left queued: the sandbox is gone, so
  // this ends (the bound is only a backstop).
  if (impl_->started && sandbox_gone) impl_->on_nflog(1 << 20);
  impl_->flush_summaries(Clock::time_point::max());
}

FilteredNetwork::~FilteredNetwork() {
  // Relays and pending connections close their fds; the DNS service first
  // (its c-ares callbacks reference the maps).
  if (impl_) {
    impl_->dns.reset();
    impl_->waiting_socket.clear();
    impl_->conns.clear();
  }
}

void FilteredNetwork::add_socket(NetSocket role, std::uint16_t port, UniqueFd fd) {
  Impl& m = *impl_;
  switch (role) {
    case NetSocket::netfilter:
      m.netfilter = std::move(fd);
      break;
    case NetSocket::nflog:
      m.nflog = std::move(fd);
      break;
    case NetSocket::dns_udp4:
    case NetSocket::dns_udp6:
      m.dns_udp.push_back(std::move(fd));
      break;
    case NetSocket::dns_tcp4:
    case NetSocket::dns_tcp6:
      m.dns_tcp.push_back(std::move(fd));
      break;
    case NetSocket::egress4:
    case NetSocket::egress6:
      m.kinds[fd.get()] = Impl::FdKind::egress_listener;
      m.owned_listeners[fd.get()] = std::move(fd);
      break;
    case NetSocket::host_port:
      m.kinds[fd.get()] = Impl::FdKind::host_port_listener;
      m.host_port_of[fd.get()] = port;
      m.owned_listeners[fd.get()] = std::move(fd);
      break;
    case NetSocket::sandbox_conn:
      m.on_sandbox_socket(std::move(fd));
      m.rearm_timer();
      break;
  }
}

void FilteredNetwork::note_fd_loss() {
  ++impl_->fd_losses;
  impl_->rearm_timer();  // the open_files record goes out within a second
}

void FilteredNetwork::start(int control_fd) {
  impl_->control_fd = control_fd;
  impl_->start();
}

int FilteredNetwork::fd() const {
  return impl_->epoll.get();
}

void FilteredNetwork::on_ready() {
  impl_->on_ready();
}

// ---- live control (sbx network show/allow/deny, docs/control.md)

namespace {

nlohmann::json cidr_strings(const std::vector<net::Cidr>& cidrs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : cidrs) out.push_back(c.str());
  return out;
}

bool overlaps(const net::Cidr& a, const net::Cidr& b) {
  return a.address.family == b.address.family && (a.contains(b.address) || b.contains(a.address));
}

}  // namespace

nlohmann::json FilteredNetwork::describe() const {
  const Impl& m = *impl_;
  const NetworkPolicy& net = m.policy.network;
  nlohmann::json j;
  j["mode"] = "filtered";
  j["allow_domains"] = net.allow_domains;
  j["deny_domains"] = net.deny_domains;
  j["allow_cidrs"] = cidr_strings(m.egress.allow_cidrs);
  j["deny_cidrs"] = cidr_strings(m.egress.deny_cidrs);
  j["allow_ports"] = net.allow_ports;
  j["overlay"] = {{"allow_domains", m.overlay->allowed()},
                  {"deny_domains", m.overlay->denied()},
                  {"allow_cidrs", cidr_strings(m.live_allow_cidrs)},
                  {"deny_cidrs", cidr_strings(m.live_deny_cidrs)}};
  // What the DNS filter put into allow4/allow6 and is still valid.
  nlohmann::json resolved = nlohmann::json::array();
  if (m.dns) {
    for (const auto& [address, names] : m.dns->names().entries(Clock::now()))
      resolved.push_back({{"address", address.str()}, {"names", names}});
  }
  j["resolved"] = resolved;
  return j;
}

nlohmann::json FilteredNetwork::change(const NetworkChange& c) {
  Impl& m = *impl_;
  if (!m.started) throw Error("the sandbox's network is not up yet", "retry in a moment");
  const bool allow = c.action == NetworkChange::Action::allow;
  nlohmann::json out;
  std::size_t cut = 0;  // open connections the deny ended
  if (!c.domain.empty()) {
    if (allow) {
      auto n = profiles::normalize_domain_pattern(c.domain, profiles::DomainList::allow);
      const std::string probe = n.starts_with("*.") ? n.substr(2) : n;
      if (m.base_lookup(probe).verdict == dns::DomainVerdict::deny) {
        throw Error(fmt::format("{} is denied by the profile (network.deny_domains)", n),
                    "a live allow does not override the profile's deny; change the profile");
      }
      out["domain"] = m.overlay->allow(n);
    } else {
      out["domain"] = m.overlay->deny(c.domain);
      cut = m.cut_denied_connections();
    }
  } else {
    auto cidr = net::Cidr::parse(c.cidr);
    if (!cidr) {
      throw Error(fmt::format("'{}' is not a CIDR", c.cidr),
                  "write ADDRESS/PREFIX with the host bits clear, e.g. 203.0.113.0/24");
    }
    if (allow) {
      for (const auto& d : m.deny) {
        if (overlaps(*cidr, d)) {
          throw Error(fmt::format("{} overlaps the denied range {}", cidr->str(), d.str()),
                      "denied ranges (private, loopback, metadata, network.deny_cidrs) stay "
                      "denied; allow a public range");
        }
      }
      std::erase(m.live_deny_cidrs, *cidr);
      std::erase(m.egress.deny_cidrs, *cidr);
      if (std::find(m.allow_cidrs.begin(), m.allow_cidrs.end(), *cidr) == m.allow_cidrs.end()) {
        m.allow_cidrs.push_back(*cidr);
        m.live_allow_cidrs.push_back(*cidr);
      }
    } else {
      // Ranges inside the denied one go; a wider allowed range stays in the
      // set, and the egress proxy (deny checked first) refuses the rest.
      std::erase_if(m.allow_cidrs, [&](const net::Cidr& a) {
        return a.address.family == cidr->address.family && a.prefix >= cidr->prefix &&
               cidr->contains(a.address);
      });
      std::erase_if(m.live_allow_cidrs, [&](const net::Cidr& a) {
        return std::find(m.allow_cidrs.begin(), m.allow_cidrs.end(), a) == m.allow_cidrs.end();
      });
      if (std::find(m.live_deny_cidrs.begin(), m.live_deny_cidrs.end(), *cidr) ==
          m.live_deny_cidrs.end()) {
        m.live_deny_cidrs.push_back(*cidr);
        m.egress.deny_cidrs.push_back(*cidr);
      }
    }
    m.egress.allow_cidrs = m.allow_cidrs;
    // Before nftables is asked: the proxy enforces the deny from here on,
    // so what is open into the range ends even if the set update fails.
    if (!allow) cut = m.cut_denied_connections();
    net::send_batch(m.netfilter.get(),
                    net::build_replace_allow_cidrs_batch(net::RulesetConfig{}.table, m.allow_cidrs,
                                                         m.control_seq += 16));
    out["cidr"] = cidr->str();
  }
  if (!allow && m.dns) {
    // Addresses left without an allowed name (or inside a denied range)
    // leave allow4/allow6 now, not when their DNS TTL runs out.
    nlohmann::json removed = nlohmann::json::array();
    std::vector<net::IpAddress> gone;
    for (const auto& [address, names] : m.dns->names().entries(Clock::now())) {
      bool keep = !net::denied(m.egress.deny_cidrs, address) &&
                  std::any_of(names.begin(), names.end(), [&](const std::string& n) {
                    return m.lookup(n).verdict == dns::DomainVerdict::allow;
                  });
      if (keep) continue;
      try {  // one per batch: an element that already timed out fails alone
        const net::IpAddress one[] = {address};
        net::send_batch(m.netfilter.get(), net::build_delete_allow_batch(net::RulesetConfig{}.table,
                                                                         one, m.control_seq += 16));
        removed.push_back(address.str());
        gone.push_back(address);
      } catch (const Error&) {
        // ENOENT: the element expired already
      }
    }
    // Cached answers may name removed addresses: never serve them again.
    m.dns->forget_addresses(gone);
    out["removed_addresses"] = removed;
  }
  if (!allow) out["cut_connections"] = cut;
  out["action"] = allow ? "allow" : "deny";
  return out;
}

void connect_filtered_network(int control_fd, FilteredNetwork& network) {
  auto until = Clock::now() + kHandOverTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) {
      throw Error("the sandbox did not set up its network within 10 s",
                  "this is a bug in sbx; run with --net none meanwhile");
    }
    struct pollfd p {
      control_fd, POLLIN, 0
    };
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    Message message;
    int fd = -1;
    int rc = receive_message(control_fd, message, &fd);
    if (rc < 0 && errno == EAGAIN) continue;
    if (rc < 0 && errno == EMFILE) {
      throw out_of_fds_error("the sandbox's network sockets",
                             "list fewer allowed, host or published ports");
    }
    if (rc <= 0) {
      // init died before the command ran without telling why.
      throw Error("the sandbox exited while setting up its network",
                  "run with -v; this is a bug in sbx if no other error is shown");
    }
    if (message.kind == MessageKind::failure) {
      if (fd >= 0) close(fd);
      throw sandbox_step_error(message.error);
    }
    if (message.kind == MessageKind::net_socket) {
      network.add_socket(static_cast<NetSocket>(message.value >> 16),
                         static_cast<std::uint16_t>(message.value & 0xffff), UniqueFd(fd));
      continue;
    }
    if (fd >= 0) close(fd);
    if (message.kind == MessageKind::net_sockets_done) break;
  }
  network.start(control_fd);
}

void send_go(int control_fd) {
  // Init mounted meanwhile; a failure there (init gone: EPIPE) is in the
  // channel already and the supervisor's loop reports it.
  const char go = kGoOn;
  if (send(control_fd, &go, 1, MSG_NOSIGNAL) != 1 && errno != EPIPE && errno != ECONNRESET) {
    throw Error(fmt::format("cannot let the sandbox go on: {}", std::strerror(errno)));
  }
}

}  // namespace sbx::runtime
