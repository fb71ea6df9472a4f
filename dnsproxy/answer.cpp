// The upstream-answer path: addresses with TTLs along the CNAME chain (via
// c-ares's parsers), the rebinding filter, set timeouts and client TTLs.
#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "dnsproxy/dnsproxy.hpp"

namespace sbx::dns {

std::chrono::milliseconds set_timeout_for(std::uint32_t ttl, const TtlPolicy& p) {
  auto t = std::clamp(std::chrono::seconds(ttl), p.min, p.max) + p.grace;
  return std::chrono::duration_cast<std::chrono::milliseconds>(t);
}

std::uint32_t client_ttl_for(std::uint32_t ttl, const TtlPolicy& p) {
  // The client may cache no longer than the set element lives (minus grace):
  // a cached address whose element expired would just fail to connect.
  // min(ttl, max) <= clamp(ttl, min, max) < set timeout (grace > 0).
  auto cap = static_cast<std::uint32_t>(std::max<std::chrono::seconds::rep>(0, p.max.count()));
  return std::min(ttl, cap);
}

namespace {

bool lower_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto la = static_cast<char>(a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i]);
    auto lb = static_cast<char>(b[i] >= 'A' && b[i] <= 'Z' ? b[i] - 'A' + 'a' : b[i]);
    if (la != lb) return false;
  }
  return true;
}

}  // namespace

UpstreamAnswer parse_upstream_answer(std::span<const std::uint8_t> m, std::string_view query_name,
                                     std::uint16_t qt, std::span<const net::Cidr> deny,
                                     const TtlPolicy& ttl) {
  UpstreamAnswer out;
  if (m.size() < 12 || m.size() > 65535) {
    out.error = "answer shorter than a header";
    return out;
  }
  if (!(m[2] & 0x80)) {
    out.error = "not a response";
    return out;
  }
  auto rcode = static_cast<std::uint8_t>(m[3] & 0x0f);
  std::uint16_t qd = static_cast<std::uint16_t>((m[4] << 8) | m[5]);
  if (qd != 1) {
    out.error = "answer does not carry exactly one question";
    return out;
  }
  // The answer must be for the question we asked (c-ares checks this for
  // ares_send, but the parser is also used on its own and fuzzed).
  char* qname = nullptr;
  long enclen = 0;
  int alen = static_cast<int>(m.size());
  if (ares_expand_name(m.data() + 12, m.data(), alen, &qname, &enclen) != ARES_SUCCESS) {
    out.error = "question name unreadable";
    return out;
  }
  bool same = lower_equal(qname, query_name);
  ares_free_string(qname);
  std::size_t after_q = 12 + static_cast<std::size_t>(enclen);
  if (!same || m.size() < after_q + 4 || ((m[after_q] << 8) | m[after_q + 1]) != qt) {
    out.error = "answer is for another question";
    return out;
  }
  if (rcode == 3) {
    out.usable = true;
    out.rcode = Rcode::nxdomain;
    return out;
  }
  if (rcode != 0) {
    out.error = "upstream rcode " + std::to_string(rcode);
    return out;
  }
  constexpr int kMax = 64;
  int n = kMax;
  int status;
  std::vector<std::pair<net::IpAddress, std::uint32_t>> found;
  if (qt == qtype::A) {
    ares_addrttl ttls[kMax];
    status = ares_parse_a_reply(m.data(), alen, nullptr, ttls, &n);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < n; ++i) {
        found.push_back({net::IpAddress::from_v4_bytes(&ttls[i].ipaddr),
                         static_cast<std::uint32_t>(std::max(0, ttls[i].ttl))});
      }
    }
  } else if (qt == qtype::AAAA) {
    ares_addr6ttl ttls[kMax];
    status = ares_parse_aaaa_reply(m.data(), alen, nullptr, ttls, &n);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < n; ++i) {
        found.push_back({net::IpAddress::from_v6_bytes(&ttls[i].ip6addr),
                         static_cast<std::uint32_t>(std::max(0, ttls[i].ttl))});
      }
    }
  } else {
    out.error = "only A and AAAA answers are parsed";
    return out;
  }
  if (status != ARES_SUCCESS && status != ARES_ENODATA) {
    out.error = std::string("malformed answer: ") + ares_strerror(status);
    return out;
  }
  out.usable = true;
  out.rcode = Rcode::noerror;
  for (const auto& entry : found) {
    const net::IpAddress& addr = entry.first;  // not a structured binding: clang 14
    std::uint32_t t = entry.second;            // cannot capture those in lambdas
    if (net::denied(deny, addr)) {
      out.dropped.push_back(addr);
      continue;
    }
    if (std::any_of(out.addresses.begin(), out.addresses.end(),
                    [&](const ResolvedAddress& r) { return r.address == addr; })) {
      continue;
    }
    out.addresses.push_back({addr, t, set_timeout_for(t, ttl), client_ttl_for(t, ttl)});
  }
  return out;
}

std::vector<std::uint8_t> build_answer_response(const Query& q, const UpstreamAnswer& a,
                                                std::size_t max_size) {
  if (!a.usable) return build_response(q, Rcode::servfail, {}, UINT32_MAX, max_size);
  if (a.rcode != Rcode::noerror) return build_response(q, a.rcode, {}, UINT32_MAX, max_size);
  // Records are rebuilt as the asked name's own A/AAAA: the CNAME chain was
  // authorised by the asked name, and the client needs only the addresses.
  std::vector<Record> records;
  for (const auto& r : a.addresses) {
    Record rec;
    rec.name = q.name;
    rec.type = r.address.family == AF_INET ? qtype::A : qtype::AAAA;
    if (rec.type != q.type) continue;
    rec.ttl = r.client_ttl;
    rec.address = r.address;
    records.push_back(std::move(rec));
  }
  return build_response(q, Rcode::noerror, records, UINT32_MAX, max_size);
}

}  // namespace sbx::dns
