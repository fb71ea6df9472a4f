// The answer cache and the allow-set element lifetimes it depends on. The
// invariant: a cached address is served only while its allow4/allow6 element
// is certain to outlive the TTL the client is given (plus a margin), so a
// connect after a cached answer never meets an expired element.
#include <algorithm>

#include "dnsproxy/dnsproxy.hpp"

namespace sbx::dns {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---------------------------------------------------------------- lifetimes

milliseconds ElementLifetimes::timeout_for(const net::IpAddress& address, milliseconds wanted,
                                           Clock::time_point now) const {
  auto it = expiry_.find(address);
  if (it == expiry_.end() || it->second <= now) return wanted;
  // Round up: the element must not end a millisecond before the old one.
  auto left = std::chrono::ceil<milliseconds>(it->second - now);
  return std::max(wanted, left);
}

void ElementLifetimes::added(const net::IpAddress& address, milliseconds timeout,
                             Clock::time_point sent) {
  auto until = sent + timeout;
  auto [it, inserted] = expiry_.emplace(address, until);
  // timeout_for() never shortens, so the new expiry is the later one; max()
  // keeps that true for callers that sent a shorter timeout anyway.
  if (!inserted) it->second = std::max(it->second, until);
}

std::optional<Clock::time_point> ElementLifetimes::expires(const net::IpAddress& address) const {
  auto it = expiry_.find(address);
  if (it == expiry_.end()) return std::nullopt;
  return it->second;
}

void ElementLifetimes::forget(const net::IpAddress& address) {
  expiry_.erase(address);
}

void ElementLifetimes::expire(Clock::time_point now) {
  std::erase_if(expiry_, [&](const auto& kv) { return kv.second <= now; });
}

// ---------------------------------------------------------------- negative TTL

namespace {

std::uint16_t u16(std::span<const std::uint8_t> m, std::size_t at) {
  return static_cast<std::uint16_t>((m[at] << 8) | m[at + 1]);
}
std::uint32_t u32(std::span<const std::uint8_t> m, std::size_t at) {
  return (std::uint32_t{u16(m, at)} << 16) | u16(m, at + 2);
}

// Skips a (possibly compressed) name; never follows pointers, so no loops.
std::optional<std::size_t> skip_name(std::span<const std::uint8_t> m, std::size_t at) {
  for (int labels = 0; labels < 128; ++labels) {
    if (at >= m.size()) return std::nullopt;
    std::uint8_t len = m[at];
    if (len == 0) return at + 1;
    if ((len & 0xc0) == 0xc0) return at + 2 <= m.size() ? std::optional(at + 2) : std::nullopt;
    if (len & 0xc0) return std::nullopt;  // 0x40/0x80: extended label types
    at += 1 + len;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint32_t> negative_ttl(std::span<const std::uint8_t> m) {
  if (m.size() < 12) return std::nullopt;
  std::size_t qd = u16(m, 4), an = u16(m, 6), ns = u16(m, 8);
  std::size_t at = 12;
  for (std::size_t i = 0; i < qd; ++i) {
    auto end = skip_name(m, at);
    if (!end || *end + 4 > m.size()) return std::nullopt;
    at = *end + 4;
  }
  for (std::size_t i = 0; i < an + ns; ++i) {
    auto end = skip_name(m, at);
    if (!end || *end + 10 > m.size()) return std::nullopt;
    std::uint16_t type = u16(m, *end);
    std::uint32_t ttl = u32(m, *end + 4);
    std::size_t rdlen = u16(m, *end + 8);
    std::size_t rdata = *end + 10;
    if (rdata + rdlen > m.size()) return std::nullopt;
    if (i >= an && type == 6) {  // SOA in the authority section
      auto mname = skip_name(m, rdata);
      auto rname = mname ? skip_name(m, *mname) : std::nullopt;
      if (!rname || *rname + 20 > rdata + rdlen) return std::nullopt;
      std::uint32_t minimum = u32(m, *rname + 16);
      // RFC 2181: a TTL with the top bit set is 0.
      if (ttl & 0x80000000u) ttl = 0;
      if (minimum & 0x80000000u) minimum = 0;
      return std::min(ttl, minimum);
    }
    at = rdata + rdlen;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- validity

std::optional<Clock::time_point> cache_valid_until(
    const UpstreamAnswer& answer, Clock::time_point received, const ElementLifetimes& elements,
    const TtlPolicy& ttl, std::optional<std::uint32_t> negative, milliseconds margin) {
  if (!answer.usable) return std::nullopt;  // SERVFAIL: ask again next time
  if (answer.rcode != Rcode::noerror || answer.addresses.empty()) {
    // NXDOMAIN, NODATA (also when the rebinding filter removed everything):
    // nothing was added to the sets, only the SOA says how long it holds.
    if (!negative || *negative == 0) return std::nullopt;
    return received + std::min<seconds>(seconds(*negative), ttl.max);
  }
  Clock::time_point until = Clock::time_point::max();
  for (const auto& a : answer.addresses) {
    auto element = elements.expires(a.address);
    if (!element) return std::nullopt;  // not in the set: never serve it
    until = std::min({until, received + seconds(a.client_ttl), *element - margin});
  }
  if (until <= received) return std::nullopt;
  return until;
}

// ---------------------------------------------------------------- cache

std::string AnswerCache::key(const std::string& name, std::uint16_t type) {
  std::string k;
  k.reserve(name.size() + 3);
  k += static_cast<char>(type >> 8);
  k += static_cast<char>(type & 0xff);
  k += name;
  return k;
}

void AnswerCache::store(const std::string& name, std::uint16_t type, const UpstreamAnswer& answer,
                        Clock::time_point received, Clock::time_point valid_until) {
  if (capacity_ == 0 || valid_until <= received) return;
  if (entries_.size() >= capacity_) {
    // Stale entries first; if all are fresh, the one that expires soonest.
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.valid_until <= received; });
    if (entries_.size() >= capacity_) {
      auto soonest = std::min_element(
          entries_.begin(), entries_.end(),
          [](const auto& a, const auto& b) { return a.second.valid_until < b.second.valid_until; });
      entries_.erase(soonest);
    }
  }
  Entry& e = entries_[key(name, type)];
  e.answer = answer;
  e.served = answer;
  e.received = received;
  e.valid_until = valid_until;
}

const UpstreamAnswer* AnswerCache::lookup(const std::string& name, std::uint16_t type,
                                          Clock::time_point now) {
  if (entries_.empty()) return nullptr;
  scratch_key_.assign(1, static_cast<char>(type >> 8));
  scratch_key_ += static_cast<char>(type & 0xff);
  scratch_key_ += name;
  auto it = entries_.find(scratch_key_);
  if (it == entries_.end()) return nullptr;
  Entry& e = it->second;
  if (now >= e.valid_until || now < e.received) {
    entries_.erase(it);
    return nullptr;
  }
  // Whole seconds a client may still keep the answer: rounded down, so the
  // client forgets it no later than valid_until.
  auto left = static_cast<std::uint32_t>(std::chrono::floor<seconds>(e.valid_until - now).count());
  auto spent = static_cast<std::uint32_t>(std::chrono::ceil<seconds>(now - e.received).count());
  for (std::size_t i = 0; i < e.answer.addresses.size(); ++i) {
    std::uint32_t original = e.answer.addresses[i].client_ttl;
    std::uint32_t aged = original > spent ? original - spent : 0;
    e.served.addresses[i].client_ttl = std::min(aged, left);
  }
  return &e.served;
}

}  // namespace sbx::dns
