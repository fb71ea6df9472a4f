// DnsService: parse -> decide -> (resolve upstream -> filter addresses ->
// acked set update) -> answer. The order is the security property: the
// answer leaves only after the kernel committed the allow-set elements.
#include <netinet/in.h>
#include <sys/socket.h>

#include "dnsproxy/dnsproxy.hpp"
#include "sbx/error.hpp"

namespace sbx::dns {

DnsService::DnsService(ServiceConfig config, UpstreamResolver::SocketWatch watch,
                       EventCallback events)
    : config_(std::move(config)),
      filter_(config_.filter),
      events_(std::move(events)),
      upstream_(std::make_unique<UpstreamResolver>(config_.upstream, std::move(watch))) {}

void DnsService::on_udp_readable(int fd) {
  std::vector<std::uint8_t> buf(4096);
  for (int i = 0; i < 64; ++i) {  // bounded: other fds get their turn
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n < 0) return;  // EAGAIN, or an error the next readiness reports again
    auto parsed = parse_query({buf.data(), static_cast<std::size_t>(n)}, config_.parse_limits);
    std::size_t max = parsed.status == ParseStatus::ok ? parsed.query.max_udp_response() : 512;
    handle({buf.data(), static_cast<std::size_t>(n)}, max,
           [fd, peer, plen](std::vector<std::uint8_t> out) {
             sendto(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&peer), plen);
           });
  }
}

void DnsService::handle(std::span<const std::uint8_t> message, std::size_t max_response,
                        std::function<void(std::vector<std::uint8_t>)> reply) {
  auto start = Clock::now();
  auto parsed = parse_query(message, config_.parse_limits);
  auto emit = [&](QueryEvent e) {
    e.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    if (events_) events_(e);
  };
  if (parsed.status == ParseStatus::drop) {
    emit({"", 0, "dropped: " + parsed.error, Rcode::noerror, 0, {}, {}, false});
    return;
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
          false});
    return;
  }
  const Query& q = parsed.query;
  Decision d = filter_.decide(q, start);
  if (d.action == Action::answer) {
    reply(build_response(q, d.rcode, {}, UINT32_MAX, max_response));
    emit({q.name, q.type, d.reason, d.rcode, 0, {}, {}, d.report_limit});
    return;
  }
  upstream_->resolve(q.name, q.type, [this, q, start, max_response, reply](UpstreamResult r) {
    finish(q, r, start, max_response, reply);
  });
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
  if (a.usable && !a.addresses.empty()) {
    std::vector<net::AllowElement> elements;
    for (const auto& addr : a.addresses) elements.push_back({addr.address, addr.set_timeout});
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
      auto now = Clock::now();
      for (const auto& addr : a.addresses) names_.add(addr.address, q.name, now + addr.set_timeout);
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
