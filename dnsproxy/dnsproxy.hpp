// dnsproxy — the sandbox's only resolver: a strict DNS query parser and
// response builder (c-ares 1.18 has no server side), the policy decision as a
// pure function of (query, policy, limits, time), the upstream-answer path
// (addresses + TTLs, rebinding filter, set timeouts) and the c-ares upstream
// client driven by the supervisor's epoll loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netfilter/netfilter.hpp"
#include "sbx/policy.hpp"

namespace sbx::dns {

using Clock = std::chrono::steady_clock;

enum class Rcode : std::uint8_t {
  noerror = 0,
  formerr = 1,
  servfail = 2,
  nxdomain = 3,
  notimp = 4,
  refused = 5,
};
std::string_view to_string(Rcode rcode);

namespace qtype {
inline constexpr std::uint16_t A = 1;
inline constexpr std::uint16_t CNAME = 5;
inline constexpr std::uint16_t AAAA = 28;
inline constexpr std::uint16_t OPT = 41;
inline constexpr std::uint16_t SVCB = 64;
inline constexpr std::uint16_t HTTPS = 65;
inline constexpr std::uint16_t ANY = 255;
}  // namespace qtype
inline constexpr std::uint16_t kClassIn = 1;
// Our advertised EDNS UDP payload size (DNS flag day 2020).
inline constexpr std::uint16_t kEdnsPayload = 1232;

// Protocol limits (RFC 1035): label <= 63 bytes, name <= 253 characters in
// presentation form without the trailing dot (255 on the wire).
struct NameLimits {
  std::size_t max_label = 63;
  std::size_t max_name = 253;
};

struct Query {
  std::uint16_t id = 0;
  std::uint8_t opcode = 0;
  bool rd = false;
  bool cd = false;
  std::string name;  // lower case, no trailing dot; "" is the root
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  bool has_opt = false;
  std::uint16_t udp_payload = 512;  // from OPT, clamped to [512, kEdnsPayload]
  // Response size limit for UDP (512 without OPT). TCP callers ignore it.
  std::size_t max_udp_response() const { return has_opt ? udp_payload : 512; }
};

enum class ParseStatus {
  ok,     // `query` is complete
  error,  // answer with `rcode` (FORMERR, NOTIMP); `query` has id/opcode/rd
          // and, if `question_parsed`, the question to echo
  drop,   // not answerable: shorter than a header, or a response (QR=1)
};

struct ParseResult {
  ParseStatus status = ParseStatus::drop;
  Rcode rcode = Rcode::noerror;
  Query query;
  bool question_parsed = false;
  std::string error;  // why, for the audit event
};

// Strict parser of one query message (UDP payload, or a TCP message without
// its 2-byte length): QR=0, QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT<=1 and then
// only an OPT with root owner and version 0; QNAME labels without compression
// pointers, bytes limited to letters, digits, '-' and '_'; class IN; nothing
// after the message. Opcode other than QUERY -> NOTIMP.
ParseResult parse_query(std::span<const std::uint8_t> message, const NameLimits& limits = {});

// Resource records the builder can write.
struct Record {
  std::string name;        // owner
  std::uint16_t type = 0;  // A, AAAA or CNAME
  std::uint32_t ttl = 0;
  net::IpAddress address;  // A / AAAA
  std::string target;      // CNAME
};

// Builds a response: echoes ID, opcode, RD, CD and the question; sets QR and
// RA; writes `answers` with each TTL capped at `ttl_cap`; adds an OPT when the
// query had one. When the message would exceed `max_size` the answers are
// left out and TC is set (the client retries over TCP).
std::vector<std::uint8_t> build_response(const Query& query, Rcode rcode,
                                         std::span<const Record> answers = {},
                                         std::uint32_t ttl_cap = UINT32_MAX,
                                         std::size_t max_size = 65535);
// The response for a ParseResult with status error (FORMERR, NOTIMP...).
std::vector<std::uint8_t> build_error_response(const ParseResult& parsed);

// ---------------------------------------------------------------------------
// Decision

enum class DomainVerdict { allow, deny, unlisted };
struct DomainMatch {
  DomainVerdict verdict = DomainVerdict::unlisted;
  // For an allow through a wildcard pattern `*.zone`: "zone". The unique-name
  // cap counts names per wildcard. Empty for exact patterns.
  std::string wildcard_zone;
};
// The policy's domain patterns (profiles' DomainMatcher adapts to this).
using DomainLookup = std::function<DomainMatch(std::string_view name)>;
// network.allow_domains / deny_domains through profiles::DomainMatcher, with
// the wildcard zone reported. Throws profiles::ProfileError on a bad pattern.
DomainLookup domain_lookup_for(const NetworkPolicy& network);

// Live changes to the policy's domain lists (sbx network allow/deny NAME
// --domain, docs/control.md), consulted before the policy's own patterns:
// an overlay deny beats everything; an overlay allow admits a name the
// policy leaves unlisted. The caller keeps a policy deny (it refuses the
// change). Not thread-safe: used from the supervisor's thread.
class DomainOverlay {
 public:
  // Normalise the pattern (throws profiles::ProfileError when invalid) and
  // return it; allow() drops it from the denied list and vice versa.
  std::string allow(std::string_view pattern);
  std::string deny(std::string_view pattern);
  // allow or deny when the overlay decides, unlisted when it has no opinion.
  DomainMatch decide(std::string_view name) const;
  const std::vector<std::string>& allowed() const { return allow_; }
  const std::vector<std::string>& denied() const { return deny_; }

 private:
  void rebuild();
  std::vector<std::string> allow_, deny_;
  DomainLookup lookup_;
};
// `base` with `overlay` consulted first (the overlay may change later).
DomainLookup with_overlay(DomainLookup base, std::shared_ptr<const DomainOverlay> overlay);

// Exfiltration limits: tunnelling through allowed wildcards of user-creatable
// zones (`*.github.io`) needs many unique, long names at a high rate.
struct ExfiltrationLimits {
  double queries_per_second = 200;  // token bucket refill, per sandbox
  double burst = 400;               // bucket size
  std::size_t unique_names_per_wildcard_per_minute = 200;
  std::size_t max_label = 63;  // lower these to refuse long labels/names
  std::size_t max_name = 253;
};

struct FilterConfig {
  DomainLookup lookup;
  DnsRefusal refusal = DnsRefusal::refused;
  bool host_has_ipv6 = true;
  ExfiltrationLimits limits;
};

enum class Action {
  answer,   // answer locally with `rcode` (and no records: NODATA when noerror)
  resolve,  // ask upstream, then answer from the upstream answer
};

struct Decision {
  Action action = Action::answer;
  Rcode rcode = Rcode::refused;
  // "allowed", "denied", "unlisted", "https_svcb", "any", "no_ipv6",
  // "type_not_forwarded", "class", "rate_limit", "wildcard_cap",
  // "label_cap", "name_cap".
  std::string reason;
  // True the first time a limit trips (per limit and wildcard): the caller
  // emits one audit event instead of one per refused query.
  bool report_limit = false;
  // Refused by a limit (rate_limit, wildcard_cap, label_cap, name_cap).
  bool limited = false;
};

// Per-sandbox state for the limits. decide() is otherwise a pure function of
// its inputs; `now` is passed in so tests control time.
class DnsFilter {
 public:
  explicit DnsFilter(FilterConfig config);
  Decision decide(const Query& query, Clock::time_point now);
  // The rate limit alone, for a message that never becomes a Query (it is
  // dropped or answered FORMERR/NOTIMP): the limit's decision when it is
  // over the limit (report_limit the first time), nullopt otherwise.
  std::optional<Decision> rate_limited(Clock::time_point now) {
    if (take_token(now)) return std::nullopt;
    return limit("rate_limit", "");
  }
  const FilterConfig& config() const { return config_; }

 private:
  bool take_token(Clock::time_point now);
  bool admit_wildcard_name(const std::string& zone, const std::string& name, Clock::time_point now);
  Decision limit(std::string reason, const std::string& key);

  FilterConfig config_;
  double tokens_;
  std::optional<Clock::time_point> last_refill_;
  struct Window {
    Clock::time_point start;
    std::set<std::string> names;
  };
  std::map<std::string, Window> wildcard_windows_;
  std::set<std::string> reported_;
};

// ---------------------------------------------------------------------------
// Upstream answers

struct TtlPolicy {
  std::chrono::seconds min{30};
  std::chrono::seconds max{3600};
  std::chrono::seconds grace{10};
};

struct ResolvedAddress {
  net::IpAddress address;
  std::uint32_t ttl = 0;                  // as received
  std::chrono::milliseconds set_timeout;  // clamp(ttl, min, max) + grace
  std::uint32_t client_ttl = 0;           // min(ttl, max): below set_timeout
};

struct UpstreamAnswer {
  bool usable = false;  // false: answer SERVFAIL (garbled or wrong answer)
  Rcode rcode = Rcode::servfail;
  std::vector<ResolvedAddress> addresses;  // after the rebinding filter
  std::vector<net::IpAddress> dropped;     // removed by the rebinding filter
  std::string error;
};

// Parses an upstream answer to `query_name`/`qtype` (A or AAAA) with c-ares's
// ares_parse_a_reply / ares_parse_aaaa_reply, which follow the CNAME chain of
// the asked name. Addresses in `deny` (always_denied_cidrs() + deny_cidrs)
// are dropped: a public name must not make the sandbox reach 127.0.0.1 or
// 169.254.169.254 (DNS rebinding).
UpstreamAnswer parse_upstream_answer(std::span<const std::uint8_t> answer,
                                     std::string_view query_name, std::uint16_t qtype,
                                     std::span<const net::Cidr> deny, const TtlPolicy& ttl);

std::chrono::milliseconds set_timeout_for(std::uint32_t ttl, const TtlPolicy& policy);
std::uint32_t client_ttl_for(std::uint32_t ttl, const TtlPolicy& policy);

// The client's response for an upstream answer: NOERROR with the surviving
// addresses as records of the asked name (TTL capped), NODATA if none
// survived, NXDOMAIN passed through, SERVFAIL when not usable.
std::vector<std::uint8_t> build_answer_response(const Query& query, const UpstreamAnswer& answer,
                                                std::size_t max_size);

// ---------------------------------------------------------------------------
// Allow-set element lifetimes and the answer cache.

// The allow4/allow6 elements the filter added and the earliest moment each
// can expire (send time + timeout: the kernel's clock starts later). An
// element is never shortened: a second name with a short TTL resolving to an
// address must not cut the life of an element that an earlier, longer answer
// (already in a client's cache, or in ours) relies on. The timeout is replaced
// on refresh (add, delete, add before 6.12; a plain re-add after), so the
// caller must send timeout_for(), not the answer's own timeout.
class ElementLifetimes {
 public:
  // The timeout to send so the element lives at least `wanted` from `now`
  // and no shorter than it already does.
  std::chrono::milliseconds timeout_for(const net::IpAddress& address,
                                        std::chrono::milliseconds wanted,
                                        Clock::time_point now) const;
  // The kernel acknowledged `address` with `timeout`; `sent` is when the
  // batch was sent (before the ack).
  void added(const net::IpAddress& address, std::chrono::milliseconds timeout,
             Clock::time_point sent);
  // Lower bound of the element's expiry; nullopt when not (known to be) in the set.
  std::optional<Clock::time_point> expires(const net::IpAddress& address) const;
  // The element was deleted (live deny): forget it.
  void forget(const net::IpAddress& address);
  void expire(Clock::time_point now);
  std::size_t size() const { return expiry_.size(); }

 private:
  std::map<net::IpAddress, Clock::time_point> expiry_;
};

// Negative-caching TTL of an upstream NXDOMAIN/NODATA answer (RFC 2308):
// min(SOA record TTL, SOA MINIMUM) of the authority section's SOA; nullopt
// without one (then the answer is not cached). Bounds-checked like the rest.
std::optional<std::uint32_t> negative_ttl(std::span<const std::uint8_t> answer);

// Until when a usable upstream answer received at `received` may be served
// from the cache: positive answers while their smallest client TTL runs and
// at least `margin` before any of their allow-set elements can expire (a
// cached address must never outlive its element); negative answers for
// min(negative TTL, ttl.max). nullopt: do not cache (SERVFAIL, unknown
// element, no SOA, TTL 0).
std::optional<Clock::time_point> cache_valid_until(
    const UpstreamAnswer& answer, Clock::time_point received, const ElementLifetimes& elements,
    const TtlPolicy& ttl, std::optional<std::uint32_t> negative, std::chrono::milliseconds margin);

// Per-sandbox cache of upstream answers keyed by (normalised name, type).
// Only answers the policy allowed are ever stored or looked up: the caller
// decides every query first (policy, limits), so a live deny or a rate limit
// is never bypassed by a hit.
class AnswerCache {
 public:
  explicit AnswerCache(std::size_t capacity = 4096) : capacity_(capacity) {}
  void store(const std::string& name, std::uint16_t type, const UpstreamAnswer& answer,
             Clock::time_point received, Clock::time_point valid_until);
  // The answer with client TTLs lowered by the time it spent here (and never
  // beyond valid_until); nullptr when absent or stale. The pointer is valid
  // until the next store/clear.
  const UpstreamAnswer* lookup(const std::string& name, std::uint16_t type, Clock::time_point now);
  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    UpstreamAnswer answer;  // as received (client TTLs at `received`)
    UpstreamAnswer served;  // scratch: TTLs adjusted for the last lookup
    Clock::time_point received, valid_until;
  };
  static std::string key(const std::string& name, std::uint16_t type);
  std::size_t capacity_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::string scratch_key_;
};

// ---------------------------------------------------------------------------
// Name map: address -> names it was resolved from, until the set element
// expires. The egress proxy's second gate (the SNI/Host must be a name that
// resolved to the address) and the events ("blocked 203.0.113.9 (evil.test)").

class NameMap {
 public:
  // Records that `name` resolved to `address`, valid until `expires`
  // (extends an existing entry, never shortens it).
  void add(const net::IpAddress& address, const std::string& name, Clock::time_point expires);
  // Names still valid for the address at `now`, sorted.
  std::vector<std::string> names(const net::IpAddress& address, Clock::time_point now) const;
  bool resolved_to(const net::IpAddress& address, std::string_view name,
                   Clock::time_point now) const;
  // Drops expired entries; call from a timer.
  void expire(Clock::time_point now);
  // Every address with its names still valid at `now` (sbx network show,
  // and a live deny finding the addresses a name resolved to).
  std::vector<std::pair<net::IpAddress, std::vector<std::string>>> entries(
      Clock::time_point now) const;
  std::size_t size() const { return entries_.size(); }

 private:
  std::map<net::IpAddress, std::map<std::string, Clock::time_point, std::less<>>> entries_;
};

// ---------------------------------------------------------------------------
// Upstream client (c-ares 1.18), driven by the caller's epoll loop.

struct UpstreamConfig {
  // "ip" or "ip:port" or "[v6]:port"; empty = the host's /etc/resolv.conf.
  std::vector<std::string> servers;
  std::chrono::milliseconds timeout{1500};  // per try
  int tries = 2;
};

struct UpstreamResult {
  bool ok = false;                   // false: the caller answers SERVFAIL
  std::string error;                 // c-ares status text when !ok
  std::vector<std::uint8_t> answer;  // raw answer (NOERROR or NXDOMAIN)
};

class UpstreamResolver {
 public:
  // The UDP socket stays open between queries (ARES_FLAG_STAYOPEN: a socket,
  // three fcntls, a connect and two epoll changes per query were most of
  // what forwarding added). So that the source port still changes, the
  // sockets are renewed once they carried this many queries and no query is
  // pending (while one is, the port stays: c-ares cannot renew then).
  static constexpr std::size_t kQueriesPerSocket = 32;

  // Called when c-ares wants a socket watched (readable/writable) or removed
  // (both false). The caller mirrors this into its epoll set.
  using SocketWatch = std::function<void(int fd, bool readable, bool writable)>;
  using Callback = std::function<void(UpstreamResult)>;

  UpstreamResolver(UpstreamConfig config, SocketWatch watch);  // throws sbx::Error
  ~UpstreamResolver();
  UpstreamResolver(const UpstreamResolver&) = delete;
  UpstreamResolver& operator=(const UpstreamResolver&) = delete;

  // Sends a normalised query (ares_create_query: lower-case name, class IN,
  // RD, EDNS0 with payload 1232): the client's own bytes never go upstream.
  void resolve(std::string_view name, std::uint16_t qtype, Callback done);
  // On epoll readiness of a watched fd.
  void process(int fd, bool readable, bool writable);
  // Time until c-ares needs process_timeouts(); nullopt when idle.
  std::optional<std::chrono::milliseconds> next_timeout() const;
  void process_timeouts();
  std::size_t pending() const;          // queries not yet called back
  std::size_t socket_renewals() const;  // times the sockets were renewed

  struct Impl;  // opaque: the c-ares channel

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// The DNS filter service: serves queries arriving on UDP sockets bound inside
// the sandbox netns, from the supervisor's loop. Allowed names are resolved
// upstream; their addresses go into allow4/allow6 in one acked batch BEFORE
// the answer is sent, so a connect() right after the answer never races the
// set update.

struct QueryEvent {
  std::string name;
  std::uint16_t type = 0;
  std::string verdict;  // Decision::reason, or "formerr"/"notimp"/"servfail"...
  Rcode rcode = Rcode::noerror;
  std::size_t answers = 0;
  std::vector<net::IpAddress> dropped;  // rebinding addresses removed
  std::chrono::microseconds latency{0};
  bool limit_first_report = false;
  bool cached = false;  // answered from the answer cache
  // Not a query: the summary of refusals by a limit that were not reported
  // one by one since the last summary (verdict -> count; see
  // DnsService::flush_suppressed). Empty for every query event.
  std::map<std::string, std::uint64_t> suppressed;
  // Not a query either: the number of queries the sandbox sent and the
  // filter never answered (left unread when it ended, or the rest of a TCP
  // stream closed for a bad message). Not refusals: the record says so.
  std::uint64_t unanswered = 0;
};

struct ServiceConfig {
  FilterConfig filter;
  UpstreamConfig upstream;
  TtlPolicy ttl;
  std::vector<net::Cidr> deny = net::always_denied_cidrs();  // rebinding filter
  std::string table = "sbx";
  int netfilter_fd = -1;  // NETLINK_NETFILTER socket of the sandbox netns
  // add, delete, add: needed before Linux 6.12 to refresh a timeout (and
  // sbx's plain re-add did not refresh on 6.18 either: tests/vm/nft_refresh.cpp).
  bool refresh_elements = true;
  NameLimits parse_limits;
  // Answer cache (0 = off). A hit is served only while every address's
  // allow-set element outlives the client TTL by cache_margin.
  std::size_t cache_capacity = 4096;
  std::chrono::milliseconds cache_margin{1000};
};

class DnsService {
 public:
  using EventCallback = std::function<void(const QueryEvent&)>;
  // `watch` is told about every fd the service needs polled: the c-ares
  // sockets, the listeners added below and accepted TCP connections. The
  // loop calls on_ready() for any of them.
  DnsService(ServiceConfig config, UpstreamResolver::SocketWatch watch, EventCallback events);
  ~DnsService();

  // Sockets bound inside the sandbox netns (the service does not own them).
  void add_udp_socket(int fd);
  void add_tcp_listener(int fd);
  // Readiness of any fd passed to `watch`.
  void on_ready(int fd, bool readable, bool writable);
  // When the loop must call on_timeout() at the latest (upstream retries,
  // idle TCP connections); nullopt when nothing is pending.
  std::optional<std::chrono::milliseconds> next_timeout() const;
  void on_timeout();
  // Refusals by a limit (rate_limit, wildcard_cap, name_cap, label_cap)
  // after the first of each are counted, not reported one by one: a flood
  // yields one event per limit plus a summary event (QueryEvent::suppressed)
  // at most every kSummaryInterval while it lasts. Writes the summary now if
  // anything is counted; call when the run ends.
  void flush_suppressed();
  // When the sandbox is gone: counts the queries it left unread (queued on
  // the UDP sockets, or sent over TCP and not yet handled; connections not
  // yet accepted included) as unanswered and closes the TCP connections.
  // Datagrams the kernel dropped for a full receive buffer count as
  // unanswered too, as they are seen during the run and here at the end.
  // Call before flush_suppressed(), which reports them.
  void count_unread();
  static constexpr std::chrono::seconds kSummaryInterval{1};

  // Reads every queued datagram of `udp_fd` (non-blocking) and answers or
  // starts an upstream query for each.
  void on_udp_readable(int udp_fd);
  // Handles one query message from any transport; `reply` is called once
  // (possibly later, after the upstream answer). Returns false when the
  // message is dropped (no reply will come).
  bool handle(std::span<const std::uint8_t> message, std::size_t max_response,
              std::function<void(std::vector<std::uint8_t>)> reply);

  UpstreamResolver& upstream() { return *upstream_; }
  NameMap& names() { return names_; }
  AnswerCache& cache() { return cache_; }
  // The allow sets changed behind the filter's back (live deny removed
  // `addresses`): cached answers may name them, so the cache is emptied.
  void forget_addresses(std::span<const net::IpAddress> addresses);
  DnsFilter& filter() { return filter_; }
  std::size_t tcp_connections() const { return tcp_.size(); }
  std::size_t tcp_buffered() const;  // bytes held for all TCP connections, in and out
  // TCP connections reset because the process had no fd left (net::Acceptor).
  std::size_t tcp_shed() const { return acceptor_.shed(); }

  // DNS over TCP limits (RFC 7766 allows several queries per connection).
  static constexpr std::size_t kMaxTcpConnections = 32;
  static constexpr std::size_t kMaxTcpInFlight = 16;  // per connection
  // Answers not yet read by the client: no query is read or started beyond
  // this (a client that writes queries and never reads would otherwise grow
  // the supervisor's memory without bound).
  static constexpr std::size_t kMaxTcpOutput = 64 * 1024;
  static constexpr std::chrono::seconds kTcpIdle{10};

 private:
  struct TcpConn {
    int fd = -1;
    std::vector<std::uint8_t> in, out;
    std::size_t in_flight = 0;
    bool peer_closed = false;
    bool busy = false;  // inside process_tcp_input: do not close under it
    Clock::time_point last_active;
    // Another of its queries may be read and started now.
    bool room() const { return in_flight < kMaxTcpInFlight && out.size() < kMaxTcpOutput; }
  };
  void finish(const Query& q, const UpstreamResult& r, Clock::time_point start,
              std::size_t max_response,
              const std::function<void(std::vector<std::uint8_t>)>& reply);
  // At most `max` connections (the loop's share per wake-up); returns how
  // many were taken (accepted, or closed over kMaxTcpConnections).
  std::size_t accept_tcp(int listener, std::size_t max = 64);
  void on_tcp(std::uint64_t id, bool readable, bool writable);
  void process_tcp_input(std::uint64_t id);
  void flush_tcp(std::uint64_t id);
  void close_tcp(std::uint64_t id);
  // Counts a refusal by a limit that is not reported on its own.
  void suppress(const std::string& verdict, Clock::time_point now);
  // Counts (and removes) the complete messages in a TCP input buffer.
  void count_unanswered(std::vector<std::uint8_t>& in);

  ServiceConfig config_;
  DnsFilter filter_;
  NameMap names_;
  ElementLifetimes elements_;
  AnswerCache cache_;
  EventCallback events_;
  UpstreamResolver::SocketWatch watch_;
  std::uint32_t seq_ = 1u << 20;
  std::set<int> udp_fds_, tcp_listeners_, upstream_fds_;
  // Per UDP socket: datagrams the kernel dropped (receive buffer full), as
  // last seen (SO_RXQ_OVFL on each datagram, SO_MEMINFO at the end).
  std::map<int, std::uint32_t> udp_drops_;
  void count_drops(int fd, std::uint32_t now_dropped, Clock::time_point now);
  std::vector<std::uint8_t> udp_buf_ = std::vector<std::uint8_t>(4096);  // one datagram
  std::map<std::uint64_t, TcpConn> tcp_;
  std::map<int, std::uint64_t> tcp_by_fd_;
  std::uint64_t next_tcp_id_ = 1;
  net::Acceptor acceptor_;
  // Set by the destructor: a failed query's reply must not start the next
  // buffered TCP query on the resolver being destroyed.
  bool closing_ = false;
  std::map<std::string, std::uint64_t> suppressed_;  // verdict -> count since the last summary
  std::uint64_t unanswered_ = 0;                     // since the last summary
  Clock::time_point suppressed_since_{};             // the first of them
  bool counting() const { return !suppressed_.empty() || unanswered_ > 0; }
  // Before counting one more: the first since the last summary sets when
  // the next summary is due.
  void hold(Clock::time_point now) {
    if (!counting()) suppressed_since_ = now;
  }
  // Last: destroyed first, while the members its pending callbacks use live.
  std::unique_ptr<UpstreamResolver> upstream_;
};

}  // namespace sbx::dns
