// The answer cache, the allow-set element lifetimes it relies on, and the
// negative-TTL reader. Time is passed in, so expiry is tested exactly.
#include <catch2/catch.hpp>

#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;
using namespace std::chrono_literals;
using sbx::net::IpAddress;

namespace {

const Clock::time_point t0 = Clock::time_point() + 1000h;

ResolvedAddress resolved(const char* ip, std::uint32_t ttl, const TtlPolicy& p = {}) {
  return {*IpAddress::parse(ip), ttl, set_timeout_for(ttl, p), client_ttl_for(ttl, p)};
}

UpstreamAnswer positive(std::vector<ResolvedAddress> addrs) {
  UpstreamAnswer a;
  a.usable = true;
  a.rcode = Rcode::noerror;
  a.addresses = std::move(addrs);
  return a;
}

}  // namespace

TEST_CASE("ElementLifetimes never shortens an element", "[dns][cache]") {
  ElementLifetimes el;
  auto ip = *IpAddress::parse("198.51.100.7");
  CHECK(el.timeout_for(ip, 40s, t0) == 40s);  // unknown: as asked
  el.added(ip, 310s, t0);
  REQUIRE(el.expires(ip));
  CHECK(*el.expires(ip) == t0 + 310s);
  // A second name with TTL 1 (timeout 40 s) 10 s later: the element keeps
  // the 300 s left, else the first name's answer would outlive it.
  CHECK(el.timeout_for(ip, 40s, t0 + 10s) == 300s);
  // A longer one extends it.
  CHECK(el.timeout_for(ip, 900s, t0 + 10s) == 900s);
  el.added(ip, 900s, t0 + 10s);
  CHECK(*el.expires(ip) == t0 + 910s);
  // A shorter add (a caller that ignored timeout_for) does not move it back.
  el.added(ip, 5s, t0 + 20s);
  CHECK(*el.expires(ip) == t0 + 910s);
  // Expired elements are forgotten and then asked timeouts apply again.
  el.expire(t0 + 911s);
  CHECK_FALSE(el.expires(ip));
  CHECK(el.timeout_for(ip, 40s, t0 + 911s) == 40s);
  el.added(ip, 40s, t0);
  el.forget(ip);
  CHECK_FALSE(el.expires(ip));
}

TEST_CASE("negative_ttl reads the authority SOA", "[dns][cache]") {
  auto soa = [](std::uint32_t rr_ttl, std::uint32_t minimum, bool compressed) {
    dnstest::Bytes m;
    m.header(1, 0x8183, 1, 0, 1, 0).name("nx.test").u16(1).u16(1);
    if (compressed) {
      m.u16(0xc000 | 12);  // owner: pointer to the question name
    } else {
      m.name("test");
    }
    m.u16(6).u16(1).u32(rr_ttl);
    dnstest::Bytes rd;
    if (compressed) {
      rd.u16(0xc000 | 12).u16(0xc000 | 12);
    } else {
      rd.name("ns.test").name("hostmaster.test");
    }
    rd.u32(2024).u32(3600).u32(600).u32(86400).u32(minimum);
    m.u16(static_cast<std::uint16_t>(rd.v.size()));
    m.v.insert(m.v.end(), rd.v.begin(), rd.v.end());
    return m.v;
  };
  CHECK(negative_ttl(soa(300, 60, false)) == 60u);
  CHECK(negative_ttl(soa(20, 60, false)) == 20u);
  CHECK(negative_ttl(soa(300, 45, true)) == 45u);
  CHECK(negative_ttl(soa(0x80000000u, 45, false)) == 0u);
  // No authority section: not cacheable.
  dnstest::Bytes bare;
  bare.header(1, 0x8183, 1, 0, 0, 0).name("nx.test").u16(1).u16(1);
  CHECK_FALSE(negative_ttl(bare.v));
  // Truncated anywhere: nullopt, never a read past the end.
  auto full = soa(300, 60, false);
  for (std::size_t n = 0; n < full.size(); ++n) {
    CHECK_FALSE(negative_ttl({full.data(), n}));
  }
  // A pointer loop is skipped, never followed.
  dnstest::Bytes loop;
  loop.header(1, 0x8183, 1, 0, 1, 0).u16(0xc000 | 12).u16(1).u16(1);
  CHECK_FALSE(negative_ttl(loop.v));
}

TEST_CASE("cache_valid_until: client TTL, element lifetime, margin", "[dns][cache]") {
  TtlPolicy p;  // min 30 s, max 1 h, grace 10 s
  ElementLifetimes el;
  auto a = positive({resolved("198.51.100.7", 300, p)});
  // Not (known to be) in the set: never cached.
  CHECK_FALSE(cache_valid_until(a, t0, el, p, std::nullopt, 1s));
  el.added(*IpAddress::parse("198.51.100.7"), 310s, t0);
  CHECK(cache_valid_until(a, t0, el, p, std::nullopt, 1s) == t0 + 300s);
  // The element lives shorter than the TTL (it was added 250 s earlier):
  // served only until 1 s before it can expire.
  ElementLifetimes older;
  older.added(*IpAddress::parse("198.51.100.7"), 310s, t0 - 250s);
  CHECK(cache_valid_until(a, t0, older, p, std::nullopt, 1s) == t0 + 59s);
  // The smallest TTL of several addresses bounds the entry.
  auto two = positive({resolved("198.51.100.7", 300, p), resolved("198.51.100.8", 1, p)});
  el.added(*IpAddress::parse("198.51.100.8"), set_timeout_for(1, p), t0);
  CHECK(cache_valid_until(two, t0, el, p, std::nullopt, 1s) == t0 + 1s);
  // TTL 0: not cached.
  auto zero = positive({resolved("198.51.100.7", 0, p)});
  CHECK_FALSE(cache_valid_until(zero, t0, el, p, std::nullopt, 1s));
  // Negative answers: by the SOA, capped at the clamp's max; none without.
  UpstreamAnswer nx;
  nx.usable = true;
  nx.rcode = Rcode::nxdomain;
  CHECK(cache_valid_until(nx, t0, el, p, 60u, 1s) == t0 + 60s);
  CHECK(cache_valid_until(nx, t0, el, p, 86400u, 1s) == t0 + 3600s);
  CHECK_FALSE(cache_valid_until(nx, t0, el, p, std::nullopt, 1s));
  UpstreamAnswer servfail;  // not usable
  CHECK_FALSE(cache_valid_until(servfail, t0, el, p, 60u, 1s));
}

TEST_CASE("AnswerCache: hits age TTLs, stale entries go, keys are (name, type)", "[dns][cache]") {
  AnswerCache cache(2);
  auto a = positive({resolved("198.51.100.7", 300)});
  cache.store("good.test", qtype::A, a, t0, t0 + 300s);
  CHECK_FALSE(cache.lookup("good.test", qtype::AAAA, t0));
  CHECK_FALSE(cache.lookup("other.test", qtype::A, t0));
  const UpstreamAnswer* hit = cache.lookup("good.test", qtype::A, t0 + 100s);
  REQUIRE(hit);
  REQUIRE(hit->addresses.size() == 1);
  CHECK(hit->addresses[0].client_ttl == 200);
  // Part of a second spent counts as a whole one (the client must not keep
  // it past the element).
  hit = cache.lookup("good.test", qtype::A, t0 + 100s + 1ms);
  REQUIRE(hit);
  CHECK(hit->addresses[0].client_ttl == 199);
  CHECK(hit->addresses[0].address.str() == "198.51.100.7");
  // Never past valid_until, even when the TTL says more.
  cache.store("short.test", qtype::A, a, t0, t0 + 10s);
  hit = cache.lookup("short.test", qtype::A, t0 + 2s);
  REQUIRE(hit);
  CHECK(hit->addresses[0].client_ttl == 8);
  CHECK_FALSE(cache.lookup("short.test", qtype::A, t0 + 10s));
  CHECK(cache.size() == 1);  // the stale entry was dropped
  // Capacity 2: a third entry evicts the one that expires soonest.
  cache.store("b.test", qtype::A, a, t0, t0 + 50s);
  cache.store("c.test", qtype::A, a, t0, t0 + 200s);
  CHECK(cache.size() == 2);
  CHECK_FALSE(cache.lookup("b.test", qtype::A, t0 + 1s));
  CHECK(cache.lookup("good.test", qtype::A, t0 + 1s));
  CHECK(cache.lookup("c.test", qtype::A, t0 + 1s));
  cache.clear();
  CHECK_FALSE(cache.lookup("good.test", qtype::A, t0 + 1s));
  AnswerCache off(0);
  off.store("good.test", qtype::A, a, t0, t0 + 300s);
  CHECK_FALSE(off.lookup("good.test", qtype::A, t0));
}
