#include <catch2/catch.hpp>

#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;
using namespace std::chrono_literals;

namespace {

// good.test exact, *.pages.test wildcard, evil.test denied, rest unlisted.
DomainMatch lookup(std::string_view name) {
  if (name == "evil.test") return {DomainVerdict::deny, ""};
  if (name == "good.test") return {DomainVerdict::allow, ""};
  std::string_view zone = "pages.test";
  if (name.size() > zone.size() + 1 && name.ends_with(zone) &&
      name[name.size() - zone.size() - 1] == '.') {
    return {DomainVerdict::allow, "pages.test"};
  }
  return {DomainVerdict::unlisted, ""};
}

Query q(std::string name, std::uint16_t type) {
  auto r = parse_query(dnstest::query(name, type));
  REQUIRE(r.status == ParseStatus::ok);
  return r.query;
}

FilterConfig config() {
  FilterConfig c;
  c.lookup = lookup;
  return c;
}

}  // namespace

TEST_CASE("decide: policy verdicts and query types", "[dns]") {
  DnsFilter f(config());
  auto t = Clock::now();
  auto d = f.decide(q("good.test", qtype::A), t);
  CHECK(d.action == Action::resolve);
  CHECK(d.reason == "allowed");
  CHECK(f.decide(q("good.test", qtype::AAAA), t).action == Action::resolve);

  d = f.decide(q("evil.test", qtype::A), t);
  CHECK(d.action == Action::answer);
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.reason == "denied");
  d = f.decide(q("other.test", qtype::A), t);
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.reason == "unlisted");

  d = f.decide(q("good.test", qtype::HTTPS), t);
  CHECK(d.action == Action::answer);
  CHECK(d.rcode == Rcode::noerror);  // NODATA
  CHECK(d.reason == "https_svcb");
  CHECK(f.decide(q("good.test", qtype::SVCB), t).reason == "https_svcb");
  // A denied name stays refused whatever the type.
  CHECK(f.decide(q("evil.test", qtype::HTTPS), t).rcode == Rcode::refused);

  d = f.decide(q("good.test", qtype::ANY), t);
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.reason == "any");

  d = f.decide(q("good.test", 16 /*TXT*/), t);
  CHECK(d.action == Action::answer);
  CHECK(d.rcode == Rcode::noerror);
  CHECK(d.reason == "type_not_forwarded");
}

TEST_CASE("decide: NXDOMAIN refusal and hosts without IPv6", "[dns]") {
  auto c = config();
  c.refusal = sbx::DnsRefusal::nxdomain;
  c.host_has_ipv6 = false;
  DnsFilter f(c);
  auto t = Clock::now();
  CHECK(f.decide(q("evil.test", qtype::A), t).rcode == Rcode::nxdomain);
  CHECK(f.decide(q("nope.test", qtype::A), t).rcode == Rcode::nxdomain);
  auto d = f.decide(q("good.test", qtype::AAAA), t);
  CHECK(d.action == Action::answer);
  CHECK(d.rcode == Rcode::noerror);
  CHECK(d.reason == "no_ipv6");
  CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
  // No lookup configured: everything is unlisted.
  DnsFilter empty(FilterConfig{});
  CHECK(empty.decide(q("good.test", qtype::A), t).reason == "unlisted");
}

TEST_CASE("decide: rate limit is a token bucket, reported once", "[dns]") {
  auto c = config();
  c.limits.burst = 5;
  c.limits.queries_per_second = 10;
  DnsFilter f(c);
  auto t = Clock::now();
  for (int i = 0; i < 5; ++i)
    CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
  auto d = f.decide(q("good.test", qtype::A), t);
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.reason == "rate_limit");
  CHECK(d.report_limit);
  CHECK_FALSE(f.decide(q("good.test", qtype::A), t).report_limit);
  // 100 ms later one token is back (10/s), not two.
  t += 100ms;
  CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
  CHECK(f.decide(q("good.test", qtype::A), t).reason == "rate_limit");
  t += 10s;  // refills to the burst, not beyond
  for (int i = 0; i < 5; ++i)
    CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
  CHECK(f.decide(q("good.test", qtype::A), t).reason == "rate_limit");
}

TEST_CASE("decide: unique names per wildcard per minute", "[dns]") {
  auto c = config();
  c.limits.unique_names_per_wildcard_per_minute = 3;
  DnsFilter f(c);
  auto t = Clock::now();
  for (const char* n : {"a.pages.test", "b.pages.test", "c.pages.test"}) {
    CHECK(f.decide(q(n, qtype::A), t).action == Action::resolve);
  }
  auto d = f.decide(q("d.pages.test", qtype::A), t);
  CHECK(d.reason == "wildcard_cap");
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.report_limit);
  CHECK_FALSE(f.decide(q("e.pages.test", qtype::A), t).report_limit);
  // Names already seen in the window still resolve; exact patterns are not capped.
  CHECK(f.decide(q("a.pages.test", qtype::AAAA), t).action == Action::resolve);
  CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
  t += 61s;
  CHECK(f.decide(q("d.pages.test", qtype::A), t).action == Action::resolve);
}

TEST_CASE("decide: label and name caps for exfiltration", "[dns]") {
  auto c = config();
  c.limits.max_label = 16;
  c.limits.max_name = 40;
  DnsFilter f(c);
  auto t = Clock::now();
  CHECK(f.decide(q(std::string(16, 'x') + ".pages.test", qtype::A), t).action == Action::resolve);
  auto d = f.decide(q(std::string(17, 'x') + ".pages.test", qtype::A), t);
  CHECK(d.reason == "label_cap");
  CHECK(d.rcode == Rcode::refused);
  CHECK(d.report_limit);
  d = f.decide(q("aaaaaaaaaa.bbbbbbbbbb.cccccccccc.pages.test", qtype::A), t);
  CHECK(d.reason == "name_cap");
}

TEST_CASE("NameMap keeps names per address until they expire", "[dns]") {
  NameMap m;
  auto t = Clock::now();
  auto a = *sbx::net::IpAddress::parse("198.51.100.7");
  auto b = *sbx::net::IpAddress::parse("2001:db8::5");
  m.add(a, "good.test", t + 40s);
  m.add(a, "www.good.test", t + 10s);
  m.add(b, "good.test", t + 40s);
  m.add(a, "www.good.test", t + 5s);  // never shortens
  CHECK(m.names(a, t) == std::vector<std::string>{"good.test", "www.good.test"});
  CHECK(m.resolved_to(a, "www.good.test", t + 9s));
  CHECK_FALSE(m.resolved_to(a, "www.good.test", t + 10s));
  CHECK_FALSE(m.resolved_to(a, "evil.test", t));
  CHECK(m.names(a, t + 20s) == std::vector<std::string>{"good.test"});
  CHECK(m.names(*sbx::net::IpAddress::parse("198.51.100.8"), t).empty());
  m.expire(t + 20s);
  CHECK(m.size() == 2);
  m.expire(t + 41s);
  CHECK(m.size() == 0);
}

TEST_CASE("domain_lookup_for adapts the policy's patterns and reports wildcard zones", "[dns]") {
  sbx::NetworkPolicy net;
  net.allow_domains = {"good.test", "*.good.test", "*.api.good.test", "Example.ORG"};
  net.deny_domains = {"evil.good.test"};
  auto lookup = domain_lookup_for(net);
  auto m = lookup("good.test");
  CHECK(m.verdict == DomainVerdict::allow);
  CHECK(m.wildcard_zone.empty());
  m = lookup("www.good.test");
  CHECK(m.verdict == DomainVerdict::allow);
  CHECK(m.wildcard_zone == "good.test");
  CHECK(lookup("x.api.good.test").wildcard_zone == "api.good.test");
  CHECK(lookup("example.org").verdict == DomainVerdict::allow);
  CHECK(lookup("evil.good.test").verdict == DomainVerdict::deny);
  CHECK(lookup("other.test").verdict == DomainVerdict::unlisted);
  CHECK(lookup("badgood.test").verdict == DomainVerdict::unlisted);

  // Wired into the filter: unique names under *.good.test are capped.
  FilterConfig c;
  c.lookup = lookup;
  c.limits.unique_names_per_wildcard_per_minute = 2;
  DnsFilter f(c);
  auto t = Clock::now();
  CHECK(f.decide(q("a.good.test", qtype::A), t).action == Action::resolve);
  CHECK(f.decide(q("b.good.test", qtype::A), t).action == Action::resolve);
  CHECK(f.decide(q("c.good.test", qtype::A), t).reason == "wildcard_cap");
  CHECK(f.decide(q("good.test", qtype::A), t).action == Action::resolve);
}
