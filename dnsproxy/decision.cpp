// DnsFilter::decide: what to do with one parsed query. Refusals are answered
// locally, so a name the policy does not allow never leaves the machine.
#include <algorithm>

#include "dnsproxy/dnsproxy.hpp"

namespace sbx::dns {

DnsFilter::DnsFilter(FilterConfig config)
    : config_(std::move(config)), tokens_(config_.limits.burst) {}

bool DnsFilter::take_token(Clock::time_point now) {
  if (last_refill_) {
    double seconds = std::chrono::duration<double>(now - *last_refill_).count();
    if (seconds > 0)
      tokens_ =
          std::min(config_.limits.burst, tokens_ + seconds * config_.limits.queries_per_second);
  }
  last_refill_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool DnsFilter::admit_wildcard_name(const std::string& zone, const std::string& name,
                                    Clock::time_point now) {
  auto& w = wildcard_windows_[zone];
  if (w.names.empty() || now - w.start >= std::chrono::minutes(1)) {
    w.start = now;
    w.names.clear();
  }
  if (w.names.count(name)) return true;
  if (w.names.size() >= config_.limits.unique_names_per_wildcard_per_minute) return false;
  w.names.insert(name);
  return true;
}

Decision DnsFilter::limit(std::string reason, const std::string& key) {
  Decision d;
  d.action = Action::answer;
  d.rcode = Rcode::refused;
  d.report_limit = reported_.insert(reason + "\n" + key).second;
  d.limited = true;
  d.reason = std::move(reason);
  return d;
}

Decision DnsFilter::decide(const Query& q, Clock::time_point now) {
  auto answer = [](Rcode rcode, std::string reason) {
    Decision d;
    d.action = Action::answer;
    d.rcode = rcode;
    d.reason = std::move(reason);
    return d;
  };
  const auto& lim = config_.limits;

  // The rate limit counts every query, refused ones included: a flood of
  // refused names still costs the supervisor work.
  if (!take_token(now)) return limit("rate_limit", "");
  if (q.klass != kClassIn) return answer(Rcode::refused, "class");
  if (q.name.size() > lim.max_name) return limit("name_cap", "");
  for (std::size_t start = 0; start <= q.name.size();) {
    auto dot = q.name.find('.', start);
    if (dot == std::string::npos) dot = q.name.size();
    if (dot - start > lim.max_label) return limit("label_cap", "");
    start = dot + 1;
  }
  // ANY would return every record type in one reply: refused regardless.
  if (q.type == qtype::ANY) return answer(Rcode::refused, "any");

  DomainMatch match;
  if (config_.lookup) match = config_.lookup(q.name);
  if (match.verdict != DomainVerdict::allow) {
    Rcode rc = config_.refusal == DnsRefusal::nxdomain ? Rcode::nxdomain : Rcode::refused;
    return answer(rc, match.verdict == DomainVerdict::deny ? "denied" : "unlisted");
  }
  // HTTPS/SVCB carry address hints that bypass the A/AAAA path into the allow
  // sets, and ECH configs that would hide the SNI the egress proxy checks.
  if (q.type == qtype::HTTPS || q.type == qtype::SVCB) return answer(Rcode::noerror, "https_svcb");
  // No IPv6 route on the host: an immediate NODATA keeps clients from waiting.
  if (q.type == qtype::AAAA && !config_.host_has_ipv6) return answer(Rcode::noerror, "no_ipv6");
  // Only address lookups feed the allow sets; TXT/MX/... of allowed names are
  // not needed to connect and are a classic tunnelling channel.
  if (q.type != qtype::A && q.type != qtype::AAAA)
    return answer(Rcode::noerror, "type_not_forwarded");
  if (!match.wildcard_zone.empty() && !admit_wildcard_name(match.wildcard_zone, q.name, now)) {
    return limit("wildcard_cap", match.wildcard_zone);
  }
  Decision d;
  d.action = Action::resolve;
  d.rcode = Rcode::noerror;
  d.reason = "allowed";
  return d;
}

}  // namespace sbx::dns
