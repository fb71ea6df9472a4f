// Domain patterns and the DomainMatcher (docs/domains.md).
#include <catch2/catch.hpp>

#include "profiles/profiles.hpp"

using namespace sbx::profiles;

TEST_CASE("patterns are lower-cased, lose the trailing dot, IDNs become punycode") {
  CHECK(normalize_domain_pattern("Example.COM.", DomainList::allow) == "example.com");
  CHECK(normalize_domain_pattern("*.GitHub.com", DomainList::allow) == "*.github.com");
  CHECK(normalize_domain_pattern("bücher.example", DomainList::allow) == "xn--bcher-kva.example");
  CHECK(normalize_domain_pattern("*.Bücher.de", DomainList::allow) == "*.xn--bcher-kva.de");
  CHECK(normalize_domain_pattern("xn--bcher-kva.example", DomainList::allow) ==
        "xn--bcher-kva.example");
  // RFC 3492's own sample: Japanese labels.
  CHECK(normalize_domain_pattern("例え.テスト", DomainList::deny) == "xn--r8jz45g.xn--zckzah");
}

TEST_CASE("invalid patterns are refused") {
  for (const char* bad :
       {"", ".", "a..b", ".example.com", "ex ample.com", "foo*.com", "a.*.com", "*example.com",
        "**.com", "-a.com", "a-.com", "1.2.3.4", "http://x.com", "x.com/path", "x.com:443"}) {
    INFO(bad);
    CHECK_THROWS_AS(normalize_domain_pattern(bad, DomainList::deny), ProfileError);
  }
  CHECK_THROWS_AS(normalize_domain_pattern(std::string(64, 'a') + ".com", DomainList::deny),
                  ProfileError);
}

TEST_CASE("'*' alone only in deny lists") {
  CHECK(normalize_domain_pattern("*", DomainList::deny) == "*");
  CHECK_THROWS_AS(normalize_domain_pattern("*", DomainList::allow), ProfileError);
}

TEST_CASE("allow-list wildcards directly above a public suffix are refused") {
  for (const char* bad : {"*.com", "*.co.uk", "*.CO.UK.", "*.github.io", "*.githubusercontent.com",
                          "*.uk", "*.internal", "*.xn--p1ai" /* .рф */, "*.рф"}) {
    INFO(bad);
    CHECK_THROWS_AS(normalize_domain_pattern(bad, DomainList::allow), ProfileError);
    CHECK_NOTHROW(normalize_domain_pattern(bad, DomainList::deny));
  }
  CHECK_NOTHROW(normalize_domain_pattern("*.example.co.uk", DomainList::allow));
  CHECK_NOTHROW(normalize_domain_pattern("*.github.com", DomainList::allow));
  // An exact public suffix names one host only: allowed.
  CHECK_NOTHROW(normalize_domain_pattern("github.io", DomainList::allow));
}

TEST_CASE("public suffix list rules, wildcards and exceptions") {
  CHECK(is_public_suffix("com"));
  CHECK(is_public_suffix("co.uk"));
  CHECK_FALSE(is_public_suffix("example.com"));
  CHECK(is_public_suffix("github.io"));
  // "*.ck" is a wildcard rule, "!www.ck" an exception.
  CHECK(is_public_suffix("anything.ck"));
  CHECK_FALSE(is_public_suffix("www.ck"));
  CHECK(is_public_suffix("notatld"));
}

TEST_CASE("matcher: exact, subdomains (not the apex), deny beats allow") {
  DomainMatcher m({"example.com", "*.github.com", "Bücher.example"},
                  {"*.evil.github.com", "pastebin.com"});
  CHECK(m.decide("example.com") == DomainDecision::allow);
  CHECK(m.decide("EXAMPLE.com.") == DomainDecision::allow);
  CHECK(m.decide("www.example.com") == DomainDecision::unlisted);
  CHECK(m.decide("api.github.com") == DomainDecision::allow);
  CHECK(m.decide("a.b.api.github.com") == DomainDecision::allow);
  CHECK(m.decide("github.com") == DomainDecision::unlisted);
  CHECK(m.decide("malicious-github.com") == DomainDecision::unlisted);
  CHECK(m.decide("githubxcom") == DomainDecision::unlisted);
  CHECK(m.decide("x.evil.github.com") == DomainDecision::deny);
  CHECK(m.decide("evil.github.com") == DomainDecision::allow);
  CHECK(m.decide("pastebin.com") == DomainDecision::deny);
  CHECK(m.decide("xn--bcher-kva.example") == DomainDecision::allow);
  CHECK(m.decide("bücher.example") == DomainDecision::allow);
  CHECK(m.decide("bad..name") == DomainDecision::deny);
  CHECK(m.decide("") == DomainDecision::deny);
}

TEST_CASE("matcher: '*' in deny blocks everything, also allowed names") {
  DomainMatcher m({"example.com"}, {"*"});
  CHECK(m.decide("example.com") == DomainDecision::deny);
  CHECK(m.decide("other.org") == DomainDecision::deny);
  DomainMatcher empty;
  CHECK(empty.decide("example.com") == DomainDecision::unlisted);
}

TEST_CASE("matcher refuses invalid patterns") {
  CHECK_THROWS_AS(DomainMatcher({"*.com"}, {}), ProfileError);
  CHECK_THROWS_AS(DomainMatcher({"*"}, {}), ProfileError);
}

TEST_CASE("matcher cost does not grow with the number of patterns") {
  // A DNS filter decides on every query: decide() must be hash lookups, not
  // a scan of the lists. Compare 10 patterns with 100000 (best of 3 runs
  // each, so a loaded machine does not make the test flaky): a linear scan
  // would be ~10000x slower, hashing about the same.
  const auto matcher_with = [](int n) {
    std::vector<std::string> allow;
    for (int i = 0; i < n; ++i) allow.push_back("host" + std::to_string(i) + ".example.com");
    allow.push_back("*.github.com");
    return DomainMatcher(allow, {"*.ngrok.io"});
  };
  const auto best_time = [](const DomainMatcher& m) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int run = 0; run < 3; ++run) {
      auto start = std::chrono::steady_clock::now();
      int allowed = 0;
      for (int i = 0; i < 20000; ++i)
        allowed += m.decide("a.b.c.api.github.com") == DomainDecision::allow;
      auto elapsed = std::chrono::steady_clock::now() - start;
      REQUIRE(allowed == 20000);
      best = std::min(best, elapsed);
    }
    return best;
  };
  auto small = best_time(matcher_with(10));
  auto large = best_time(matcher_with(100000));
  INFO("10 patterns: " << small.count() << " ns, 100000 patterns: " << large.count() << " ns");
  CHECK(large < small * 20);
}
