#include <ares.h>

#include <catch2/catch.hpp>
#include <random>

#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;
using namespace std::chrono_literals;
using sbx::net::IpAddress;

namespace {

Query q(std::string name, std::uint16_t type) {
  auto r = parse_query(dnstest::query(name, type, true));
  REQUIRE(r.status == ParseStatus::ok);
  return r.query;
}

Record a(std::string name, const char* ip, std::uint32_t ttl) {
  Record r;
  r.name = std::move(name);
  r.address = *IpAddress::parse(ip);
  r.type = r.address.family == AF_INET ? qtype::A : qtype::AAAA;
  r.ttl = ttl;
  return r;
}

Record cname(std::string name, std::string target, std::uint32_t ttl) {
  Record r;
  r.name = std::move(name);
  r.type = qtype::CNAME;
  r.target = std::move(target);
  r.ttl = ttl;
  return r;
}

}  // namespace

TEST_CASE("set timeout = clamp(TTL) + grace; client TTL stays below it", "[dns]") {
  TtlPolicy p;
  CHECK(set_timeout_for(5, p) == 40s);
  CHECK(set_timeout_for(300, p) == 310s);
  CHECK(set_timeout_for(86400, p) == 3610s);
  CHECK(client_ttl_for(5, p) == 5);
  CHECK(client_ttl_for(300, p) == 300);
  CHECK(client_ttl_for(86400, p) == 3600);
  for (std::uint32_t ttl : {0u, 1u, 29u, 30u, 31u, 3599u, 3600u, 3601u, 100000u}) {
    CHECK(std::chrono::seconds(client_ttl_for(ttl, p)) < set_timeout_for(ttl, p));
  }
  TtlPolicy test_clamp{1s, 2s, 1s};  // what an expiry test configures
  CHECK(set_timeout_for(1, test_clamp) == 2s);
  CHECK(client_ttl_for(1, test_clamp) == 1);
}

TEST_CASE("upstream answers: CNAME chain, rebinding filter, TTLs", "[dns]") {
  auto query = q("good.test", qtype::A);
  std::vector<Record> recs{
      cname("good.test", "edge.cdn.test", 600), a("edge.cdn.test", "198.51.100.7", 120),
      a("edge.cdn.test", "127.0.0.1", 120),     a("edge.cdn.test", "169.254.169.254", 120),
      a("edge.cdn.test", "10.0.0.8", 120),      a("edge.cdn.test", "198.51.100.8", 7200),
      a("edge.cdn.test", "198.51.100.7", 120)};
  auto upstream = build_response(query, Rcode::noerror, recs);
  auto deny = sbx::net::effective_deny_cidrs(std::vector<std::string>{"198.51.100.8/32"});
  auto ans = parse_upstream_answer(upstream, "good.test", qtype::A, deny, TtlPolicy{});
  INFO(ans.error);
  REQUIRE(ans.usable);
  CHECK(ans.rcode == Rcode::noerror);
  REQUIRE(ans.addresses.size() == 1);  // duplicate folded, rest dropped
  CHECK(ans.addresses[0].address.str() == "198.51.100.7");
  CHECK(ans.addresses[0].ttl <= 120);
  CHECK(ans.addresses[0].set_timeout == set_timeout_for(ans.addresses[0].ttl, TtlPolicy{}));
  CHECK(ans.dropped.size() == 4);

  auto reply = build_answer_response(query, ans, 1232);
  ares_addrttl ttls[8];
  int n = 8;
  REQUIRE(ares_parse_a_reply(reply.data(), static_cast<int>(reply.size()), nullptr, ttls, &n) ==
          ARES_SUCCESS);
  REQUIRE(n == 1);
  CHECK(ttls[0].ttl == static_cast<int>(ans.addresses[0].client_ttl));
}

TEST_CASE("upstream answers: only rebinding addresses leave NODATA", "[dns]") {
  auto query = q("rebind.test", qtype::A);
  std::vector<Record> recs{a("rebind.test", "127.0.0.1", 60),
                           a("rebind.test", "169.254.169.254", 60)};
  auto upstream = build_response(query, Rcode::noerror, recs);
  auto ans =
      parse_upstream_answer(upstream, "rebind.test", qtype::A, sbx::net::always_denied_cidrs(), {});
  REQUIRE(ans.usable);
  CHECK(ans.addresses.empty());
  auto reply = build_answer_response(query, ans, 1232);
  CHECK((reply[3] & 0x0f) == 0);
  CHECK(reply[7] == 0);  // no answers
}

TEST_CASE("upstream answers: AAAA, NXDOMAIN, errors and mismatches", "[dns]") {
  auto q6 = q("good.test", qtype::AAAA);
  // NAT64 and 6to4 addresses carrying the metadata address or loopback,
  // and an IPv4-compatible one, go the way of the IPv4 address they carry;
  // NAT64 of a public address stays (IPv6-only networks with DNS64).
  std::vector<Record> recs{
      a("good.test", "2001:db8::5", 60),       a("good.test", "fd00::1", 60),
      a("good.test", "::ffff:10.0.0.1", 60),   a("good.test", "64:ff9b::a9fe:a9fe", 60),
      a("good.test", "2002:7f00:1::1", 60),    a("good.test", "::c633:6401", 60),
      a("good.test", "64:ff9b::cb00:710a", 60)};
  auto up6 = build_response(q6, Rcode::noerror, recs);
  auto a6 =
      parse_upstream_answer(up6, "good.test", qtype::AAAA, sbx::net::always_denied_cidrs(), {});
  REQUIRE(a6.usable);
  REQUIRE(a6.addresses.size() == 2);
  CHECK(a6.addresses[0].address.str() == "2001:db8::5");
  CHECK(a6.addresses[1].address.str() == "64:ff9b::cb00:710a");

  auto q4 = q("gone.test", qtype::A);
  auto nx =
      parse_upstream_answer(build_response(q4, Rcode::nxdomain), "gone.test", qtype::A, {}, {});
  CHECK(nx.usable);
  CHECK(nx.rcode == Rcode::nxdomain);
  CHECK((build_answer_response(q4, nx, 512)[3] & 0x0f) == 3);

  auto sf =
      parse_upstream_answer(build_response(q4, Rcode::servfail), "gone.test", qtype::A, {}, {});
  CHECK_FALSE(sf.usable);
  CHECK((build_answer_response(q4, sf, 512)[3] & 0x0f) == 2);

  // An answer to another name or type is not trusted.
  auto other = build_response(q("good.test", qtype::A), Rcode::noerror, {});
  CHECK_FALSE(parse_upstream_answer(other, "evil.test", qtype::A, {}, {}).usable);
  CHECK_FALSE(parse_upstream_answer(other, "good.test", qtype::AAAA, {}, {}).usable);
  // A query is not an answer.
  CHECK_FALSE(
      parse_upstream_answer(dnstest::query("good.test", qtype::A), "good.test", qtype::A, {}, {})
          .usable);
}

TEST_CASE("upstream answer parser survives mutated answers (smoke fuzz)", "[dns][fuzz]") {
  auto query = q("good.test", qtype::A);
  std::vector<Record> recs{cname("good.test", "x.cdn.test", 60),
                           a("x.cdn.test", "198.51.100.7", 60),
                           a("x.cdn.test", "198.51.100.9", 60)};
  auto seed = build_response(query, Rcode::noerror, recs);
  std::mt19937 rng(777);
  for (int i = 0; i < 20000; ++i) {
    auto m = seed;
    int flips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 3 == 0) m.resize(rng() % (m.size() + 1));
    auto ans = parse_upstream_answer(m, "good.test", qtype::A, sbx::net::always_denied_cidrs(), {});
    for (const auto& r : ans.addresses)
      CHECK_FALSE(sbx::net::denied(sbx::net::always_denied_cidrs(), r.address));
    auto reply = build_answer_response(query, ans, 1232);
    CHECK(reply.size() >= 12);
  }
}
