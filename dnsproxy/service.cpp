// DnsService: parse -> decide -> (resolve upstream -> filter addresses ->
// acked set update) -> answer. The order is the security property: the
// answer leaves only after the kernel committed the allow-set elements.
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "dnsproxy/dnsproxy.hpp"
#include "sbx/error.hpp"

namespace sbx::dns {

DnsService::DnsService(ServiceConfig config, UpstreamResolver::SocketWatch watch,
                       EventCallback events)
    : config_(std::move(config)),
      filter_(config_.filter),
      cache_(config_.cache_capacity),
      events_(std::move(events)),
      watch_(std::move(watch)),
      upstream_(
          std::make_unique<UpstreamResolver>(config_.upstream, [this](int fd, bool r, bool w) {
            if (r || w) {
              upstream_fds_.insert(fd);
            } else {
              upstream_fds_.erase(fd);
            }
            if (watch_) watch_(fd, r, w);
          })) {}

DnsService::~DnsService() {
  // Pending upstream queries fail first (ARES_EDESTRUCTION); their replies
  // find their TCP connections still open, which are closed right after.
  // Queries still buffered on a connection are not started any more.
  closing_ = true;
  upstream_.reset();
  while (!tcp_.empty()) close_tcp(tcp_.begin()->first);
}

void DnsService::forget_addresses(std::span<const net::IpAddress> addresses) {
  for (const auto& a : addresses) elements_.forget(a);
  cache_.clear();
}

namespace {

// The socket's count of dropped datagrams (SK_MEMINFO_DROPS), or nullopt.
std::optional<std::uint32_t> socket_drops(int fd) {
  std::uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof meminfo;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 ||
      len < (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t))
    return std::nullopt;
  return meminfo[SK_MEMINFO_DROPS];
}

// The drop count a datagram carries (SO_RXQ_OVFL: the socket's count when
// it was queued), or nullopt.
std::optional<std::uint32_t> datagram_drops(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
        c->cmsg_len >= CMSG_LEN(sizeof(std::uint32_t))) {
      std::uint32_t v;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return std::nullopt;
}

}  // namespace

void DnsService::add_udp_socket(int fd) {
  udp_fds_.insert(fd);
  // Queries the kernel drops (the sandbox sending faster than the filter
  // reads) were otherwise invisible: counted from here on as unanswered.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  udp_drops_[fd] = socket_drops(fd).value_or(0);
  if (watch_) watch_(fd, true, false);
}

void DnsService::add_tcp_listener(int fd) {
  tcp_listeners_.insert(fd);
  if (watch_) watch_(fd, true, false);
}

void DnsService::on_ready(int fd, bool readable, bool writable) {
  if (udp_fds_.count(fd)) {
    on_udp_readable(fd);
  } else if (tcp_listeners_.count(fd)) {
    accept_tcp(fd);
  } else if (auto it = tcp_by_fd_.find(fd); it != tcp_by_fd_.end()) {
    on_tcp(it->second, readable, writable);
  } else if (upstream_fds_.count(fd)) {
    upstream_->process(fd, readable, writable);
  }
}

std::optional<std::chrono::milliseconds> DnsService::next_timeout() const {
  auto t = upstream_->next_timeout();
  auto now = Clock::now();
  if (counting()) {  // the summary is due kSummaryInterval after the first
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(suppressed_since_ + kSummaryInterval - now);
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    if (!t || left < *t) t = left;
  }
  for (const auto& entry : tcp_) {
    if (entry.second.in_flight > 0) continue;  // the upstream's time-out ends those first
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(entry.second.last_active +
                                                                      kTcpIdle - now);
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    if (!t || left < *t) t = left;
  }
  return t;
}

void DnsService::suppress(const std::string& verdict, Clock::time_point now) {
  hold(now);
  ++suppressed_[verdict];
}

void DnsService::flush_suppressed() {
  if (!suppressed_.empty()) {
    QueryEvent e;
    e.verdict = "suppressed";
    e.rcode = Rcode::refused;
    e.suppressed = std::move(suppressed_);
    suppressed_.clear();
    if (events_) events_(e);
  }
  if (unanswered_ > 0) {
    QueryEvent e;
    e.verdict = "unanswered";
    e.unanswered = unanswered_;
    unanswered_ = 0;
    if (events_) events_(e);
  }
}

void DnsService::on_timeout() {
  upstream_->process_timeouts();
  auto now = Clock::now();
  if (counting() && now - suppressed_since_ >= kSummaryInterval) flush_suppressed();
  elements_.expire(now);
  std::vector<std::uint64_t> idle;
  for (const auto& entry : tcp_) {
    if (entry.second.in_flight == 0 && now - entry.second.last_active >= kTcpIdle) {
      idle.push_back(entry.first);
    }
  }
  for (auto id : idle) close_tcp(id);
}

std::size_t DnsService::accept_tcp(int listener, std::size_t max) {
  std::size_t taken = 0;
  for (; taken < max; ++taken) {
    int fd = acceptor_.accept(listener);
    if (fd < 0) break;
    if (tcp_.size() >= kMaxTcpConnections) {
      close(fd);  // over the limit: the client retries later
      continue;
    }
    std::uint64_t id = next_tcp_id_++;
    TcpConn c;
    c.fd = fd;
    c.last_active = Clock::now();
    tcp_.emplace(id, std::move(c));
    tcp_by_fd_[fd] = id;
    if (watch_) watch_(fd, true, false);
  }
  return taken;
}

void DnsService::close_tcp(std::uint64_t id) {
  auto it = tcp_.find(id);
  if (it == tcp_.end()) return;
  count_unanswered(it->second.in);
  if (watch_) watch_(it->second.fd, false, false);
  tcp_by_fd_.erase(it->second.fd);
  close(it->second.fd);
  tcp_.erase(it);
}

std::size_t DnsService::tcp_buffered() const {
  std::size_t n = 0;
  for (const auto& entry : tcp_) n += entry.second.in.size() + entry.second.out.size();
  return n;
}

namespace {

// The length of the complete message at the front of `in` (2-byte length
// prefix, RFC 7766); nullopt while it is incomplete.
std::optional<std::size_t> complete_message(const std::vector<std::uint8_t>& in) {
  if (in.size() < 2) return std::nullopt;
  const auto len = static_cast<std::size_t>((in[0] << 8) | in[1]);
  if (in.size() < 2 + len) return std::nullopt;
  return len;
}

}  // namespace

void DnsService::count_unanswered(std::vector<std::uint8_t>& in) {
  const auto now = Clock::now();
  while (const auto len = complete_message(in)) {
    hold(now);
    ++unanswered_;
    in.erase(in.begin(), in.begin() + 2 + static_cast<std::ptrdiff_t>(*len));
  }
}

void DnsService::count_drops(int fd, std::uint32_t now_dropped, Clock::time_point now) {
  auto it = udp_drops_.find(fd);
  if (it == udp_drops_.end() || now_dropped == it->second) return;
  hold(now);
  unanswered_ += static_cast<std::uint32_t>(now_dropped - it->second);  // wraps as the kernel's
  it->second = now_dropped;
}

void DnsService::count_unread() {
  const auto now = Clock::now();
  std::uint8_t buf[4096];
  for (int fd : udp_fds_) {
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      hold(now);
      ++unanswered_;
    }
    if (auto d = socket_drops(fd)) count_drops(fd, *d, now);
  }
  // Every open connection: what it holds and what waits in its socket.
  auto count_and_close = [&] {
    while (!tcp_.empty()) {
      auto it = tcp_.begin();
      TcpConn& c = it->second;
      for (;;) {
        count_unanswered(c.in);
        ssize_t n = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        c.in.insert(c.in.end(), buf, buf + n);
      }
      close_tcp(it->first);  // counts nothing more: the buffer is empty
    }
  };
  count_and_close();
  // Then the connections never accepted, a batch at a time (within
  // kMaxTcpConnections, which would otherwise close them uncounted).
  for (int listener : tcp_listeners_) {
    while (accept_tcp(listener, kMaxTcpConnections) > 0) count_and_close();
  }
}

void DnsService::flush_tcp(std::uint64_t id) {
  auto it = tcp_.find(id);
  if (it == tcp_.end()) return;
  TcpConn& c = it->second;
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(c.out.begin(), c.out.begin() + n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    close_tcp(id);
    return;
  }
  const bool buffered = complete_message(c.in).has_value();
  if (c.out.empty() && c.peer_closed && c.in_flight == 0 && !c.busy && !buffered) {
    close_tcp(id);
    return;
  }
  // A complete query held back (by kMaxTcpOutput) while there is room again:
  // asking for writability wakes on_tcp at once on the next round, fair to
  // the other fds; nothing else would (the client may send nothing more).
  const bool held_back = c.room() && buffered && !c.busy;
  if (watch_) watch_(c.fd, !c.peer_closed && c.room(), !c.out.empty() || held_back);
}

void DnsService::on_tcp(std::uint64_t id, bool readable, bool /*writable*/) {
  auto it = tcp_.find(id);
  if (it == tcp_.end()) return;
  TcpConn& c = it->second;
  c.last_active = Clock::now();
  if (readable && !c.peer_closed) {
    std::uint8_t buf[4096];
    // Bounded: at most one maximal message plus one read ahead is buffered.
    while (c.in.size() < 2 + 65535 + sizeof buf) {
      ssize_t n = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c.in.insert(c.in.end(), buf, buf + n);
        continue;
      }
      if (n == 0) c.peer_closed = true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close_tcp(id);
        return;
      }
      break;
    }
  }
  process_tcp_input(id);
  flush_tcp(id);
}

void DnsService::process_tcp_input(std::uint64_t id) {
  // Every complete length-prefixed message is a query (RFC 7766 pipelining).
  // The connection is looked up again after each step: a reply may close it.
  while (!closing_) {
    auto it = tcp_.find(id);
    if (it == tcp_.end()) return;
    TcpConn& c = it->second;
    if (!c.room()) return;
    const auto len = complete_message(c.in);
    if (!len) return;
    auto end = c.in.begin() + 2 + static_cast<std::ptrdiff_t>(*len);
    std::vector<std::uint8_t> msg(c.in.begin() + 2, end);
    c.in.erase(c.in.begin(), end);
    ++c.in_flight;
    c.busy = true;
    bool replies = handle(msg, 65535, [this, id](std::vector<std::uint8_t> out) {
      auto conn = tcp_.find(id);
      if (conn == tcp_.end()) return;  // closed meanwhile
      TcpConn& k = conn->second;
      --k.in_flight;
      k.out.push_back(static_cast<std::uint8_t>(out.size() >> 8));
      k.out.push_back(static_cast<std::uint8_t>(out.size()));
      k.out.insert(k.out.end(), out.begin(), out.end());
      bool later = !k.busy;  // an upstream answer: resume reading queries
      flush_tcp(id);
      if (later) {
        process_tcp_input(id);
        flush_tcp(id);
      }
    });
    it = tcp_.find(id);
    if (it == tcp_.end()) return;
    it->second.busy = false;
    if (!replies) {
      // Not a query (e.g. a response): the stream cannot be trusted further.
      close_tcp(id);
      return;
    }
  }
}

namespace {

// The address a UDP query went to, from its IP_PKTINFO / IPV6_PKTINFO
// control message, as the control message that makes the reply come from
// there. A socket bound to every address of the sandbox netns receives
// queries to any resolver address; a resolver drops an answer from another
// address than it asked. Empty when the message carries none (a socket
// without the option, in tests): the kernel then picks the source.
struct ReplySource {
  alignas(cmsghdr) unsigned char buf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  std::size_t len = 0;
};

ReplySource reply_source(msghdr& msg) {
  ReplySource src;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    auto* out = reinterpret_cast<cmsghdr*>(src.buf);
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo in{};
      std::memcpy(&in, CMSG_DATA(c), sizeof in);
      in_pktinfo reply{};
      reply.ipi_spec_dst = in.ipi_addr;  // the source; no interface forced
      out->cmsg_level = SOL_IP;
      out->cmsg_type = IP_PKTINFO;
      out->cmsg_len = CMSG_LEN(sizeof reply);
      std::memcpy(CMSG_DATA(out), &reply, sizeof reply);
      src.len = CMSG_SPACE(sizeof reply);
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
      in6_pktinfo in{};
      std::memcpy(&in, CMSG_DATA(c), sizeof in);
      in6_pktinfo reply{};
      reply.ipi6_addr = in.ipi6_addr;
      out->cmsg_level = SOL_IPV6;
      out->cmsg_type = IPV6_PKTINFO;
      out->cmsg_len = CMSG_LEN(sizeof reply);
      std::memcpy(CMSG_DATA(out), &reply, sizeof reply);
      src.len = CMSG_SPACE(sizeof reply);
    }
  }
  return src;
}

}  // namespace

void DnsService::on_udp_readable(int fd) {
  std::vector<std::uint8_t>& buf = udp_buf_;  // not zeroed again per datagram
  for (int i = 0; i < 64; ++i) {              // bounded: other fds get their turn
    sockaddr_storage peer{};
    iovec iov{buf.data(), buf.size()};
    // PKTINFO (v4 or v6) and SO_RXQ_OVFL, with room to spare.
    alignas(cmsghdr) unsigned char
        control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(std::uint32_t)) + 64];
    msghdr msg{};
    msg.msg_name = &peer;
    msg.msg_namelen = sizeof peer;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) return;  // EAGAIN, or an error the next readiness reports again
    const socklen_t plen = msg.msg_namelen;
    const ReplySource source = reply_source(msg);
    if (auto d = datagram_drops(msg)) count_drops(fd, *d, Clock::now());
    auto parsed = parse_query({buf.data(), static_cast<std::size_t>(n)}, config_.parse_limits);
    std::size_t max = parsed.status == ParseStatus::ok ? parsed.query.max_udp_response() : 512;
    handle({buf.data(), static_cast<std::size_t>(n)}, max,
           [fd, peer, plen, source](std::vector<std::uint8_t> out) mutable {
             iovec out_iov{out.data(), out.size()};
             msghdr reply{};
             reply.msg_name = &peer;
             reply.msg_namelen = plen;
             reply.msg_iov = &out_iov;
             reply.msg_iovlen = 1;
             if (source.len != 0) {
               reply.msg_control = const_cast<unsigned char*>(source.buf);
               reply.msg_controllen = source.len;
             }
             sendmsg(fd, &reply, MSG_DONTWAIT | MSG_NOSIGNAL);
           });
  }
}

bool DnsService::handle(std::span<const std::uint8_t> message, std::size_t max_response,
                        std::function<void(std::vector<std::uint8_t>)> reply) {
  auto start = Clock::now();
  auto parsed = parse_query(message, config_.parse_limits);
  auto emit = [&](QueryEvent e) {
    e.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    if (counting() && start - suppressed_since_ >= kSummaryInterval) flush_suppressed();
    if (events_) events_(e);
  };
  // A message that never becomes a query still counts against the rate
  // limit: a flood of malformed packets would otherwise cost an event each.
  // Over the limit it is dropped unanswered.
  if (parsed.status != ParseStatus::ok) {
    if (auto d = filter_.rate_limited(start)) {
      if (d->report_limit) {
        emit({"", 0, d->reason, d->rcode, 0, {}, {}, true, false, {}});
      } else {
        suppress(d->reason, start);
      }
      return false;
    }
  }
  if (parsed.status == ParseStatus::drop) {
    emit({"", 0, "dropped: " + parsed.error, Rcode::noerror, 0, {}, {}, false, false, {}});
    return false;
  }
  if (parsed.status == ParseStatus::error) {
    reply(build_error_response(parsed));
    emit({parsed.question_parsed ? parsed.query.name : "",
          parsed.query.type,
          std::string(to_string(parsed.rcode)) + ": " + parsed.error,
          parsed.rcode,
          0,
          {},
          {},
          false,
          false,
          {}});
    return true;
  }
  const Query& q = parsed.query;
  Decision d = filter_.decide(q, start);
  if (d.action == Action::answer) {
    reply(build_response(q, d.rcode, {}, UINT32_MAX, max_response));
    if (d.limited && !d.report_limit) {
      suppress(d.reason, start);
    } else {
      emit({q.name, q.type, d.reason, d.rcode, 0, {}, {}, d.report_limit, false, {}});
    }
    return true;
  }
  // Decided first, cached second: a hit never skips the policy or the limits.
  if (const UpstreamAnswer* hit = cache_.lookup(q.name, q.type, start)) {
    reply(build_answer_response(q, *hit, max_response));
    emit({q.name, q.type, "allowed", hit->rcode, hit->addresses.size(), {}, {}, false, true, {}});
    return true;
  }
  upstream_->resolve(q.name, q.type,
                     [this, q, start, max_response, reply = std::move(reply)](
                         const UpstreamResult& r) { finish(q, r, start, max_response, reply); });
  return true;
}

void DnsService::finish(const Query& q, const UpstreamResult& r, Clock::time_point start,
                        std::size_t max_response,
                        const std::function<void(std::vector<std::uint8_t>)>& reply) {
  QueryEvent e;
  e.name = q.name;
  e.type = q.type;
  UpstreamAnswer a;
  if (r.ok) {
    a = parse_upstream_answer(r.answer, q.name, q.type, config_.deny, config_.ttl);
  } else {
    a.error = "upstream: " + r.error;
  }
  e.dropped = a.dropped;
  auto received = Clock::now();
  if (a.usable && !a.addresses.empty()) {
    std::vector<net::AllowElement> elements;
    for (const auto& addr : a.addresses) {
      // Never shorter than the element already lives (see ElementLifetimes).
      elements.push_back(
          {addr.address, elements_.timeout_for(addr.address, addr.set_timeout, received)});
    }
    try {
      // Blocks for the kernel's ack (microseconds): the element is live
      // before the client can learn the address.
      net::send_batch(config_.netfilter_fd, net::build_allow_batch(config_.table, elements, seq_,
                                                                   config_.refresh_elements));
      seq_ += 16 + static_cast<std::uint32_t>(elements.size()) * 4;
    } catch (const Error& err) {
      a.usable = false;
      a.error = std::string("allow-set update failed: ") + err.what();
    }
    if (a.usable) {
      for (const auto& el : elements) {
        elements_.added(el.address, el.timeout, received);
        names_.add(el.address, q.name, received + el.timeout);
      }
    }
  }
  if (elements_.size() > 4 * config_.cache_capacity + 1024) elements_.expire(received);
  if (a.usable && config_.cache_capacity > 0) {
    auto neg = a.rcode != Rcode::noerror || a.addresses.empty() ? negative_ttl(r.answer)
                                                                : std::optional<std::uint32_t>{};
    if (auto until =
            cache_valid_until(a, received, elements_, config_.ttl, neg, config_.cache_margin)) {
      cache_.store(q.name, q.type, a, received, *until);
    }
  }
  auto out = build_answer_response(q, a, max_response);
  reply(out);
  e.rcode = a.usable ? a.rcode : Rcode::servfail;
  e.verdict = a.usable ? "allowed" : a.error;
  e.answers = a.usable ? a.addresses.size() : 0;
  e.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  if (events_) events_(e);
}

}  // namespace sbx::dns
