#include <ares.h>
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <random>

#include "dns_test_util.hpp"
#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;
using dnstest::Bytes;

TEST_CASE("parse_query accepts a plain query and normalises the name", "[dns]") {
  auto r = parse_query(dnstest::query("WWW.Good.TEST", qtype::A));
  REQUIRE(r.status == ParseStatus::ok);
  CHECK(r.query.id == 0x1234);
  CHECK(r.query.rd);
  CHECK(r.query.name == "www.good.test");
  CHECK(r.query.type == qtype::A);
  CHECK(r.query.klass == kClassIn);
  CHECK_FALSE(r.query.has_opt);
  CHECK(r.query.max_udp_response() == 512);

  auto e = parse_query(dnstest::query("good.test", qtype::AAAA, true));
  REQUIRE(e.status == ParseStatus::ok);
  CHECK(e.query.has_opt);
  CHECK(e.query.udp_payload == kEdnsPayload);  // 4096 clamped

  auto root = parse_query(dnstest::query("", qtype::A));
  REQUIRE(root.status == ParseStatus::ok);
  CHECK(root.query.name.empty());
  CHECK(parse_query(dnstest::query("_dmarc.x-y.test", qtype::A)).status == ParseStatus::ok);
}

TEST_CASE("parse_query refuses malformed queries with FORMERR", "[dns]") {
  auto formerr = [](const std::vector<std::uint8_t>& m) {
    auto r = parse_query(m);
    INFO(r.error);
    CHECK(r.status == ParseStatus::error);
    CHECK(r.rcode == Rcode::formerr);
    CHECK(r.query.id == 0x1234);
    return r;
  };
  // QDCOUNT 0 and 2
  formerr(Bytes().header(0x1234, 0x0100, 0, 0, 0, 0).v);
  formerr(Bytes()
              .header(0x1234, 0x0100, 2, 0, 0, 0)
              .name("a.test")
              .u16(1)
              .u16(1)
              .name("b.test")
              .u16(1)
              .u16(1)
              .v);
  // answer section in a query
  formerr(Bytes().header(0x1234, 0x0100, 1, 1, 0, 0).name("a.test").u16(1).u16(1).v);
  // compression pointer in the question (even a self-loop)
  formerr(
      Bytes().header(0x1234, 0x0100, 1, 0, 0, 0).u8(1).raw("a").u8(0xc0).u8(12).u16(1).u16(1).v);
  formerr(Bytes().header(0x1234, 0x0100, 1, 0, 0, 0).u8(0x40).u16(1).u16(1).v);
  // 64- and 200-byte labels
  formerr(dnstest::query(std::string(64, 'a') + ".test", qtype::A));
  auto r200 = formerr(dnstest::query(std::string(200, 'a') + ".test", qtype::A));
  CHECK_FALSE(r200.question_parsed);
  // names over 253 characters (four 63-byte labels = 255)
  std::string l63(63, 'b');
  formerr(dnstest::query(l63 + "." + l63 + "." + l63 + "." + l63, qtype::A));
  // truncations
  auto good = dnstest::query("good.test", qtype::A, true);
  for (std::size_t cut = 12; cut < good.size(); ++cut) {
    INFO("cut at " << cut);
    formerr({good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)});
  }
  // trailing garbage
  auto trailing = dnstest::query("good.test", qtype::A);
  trailing.push_back(0);
  formerr(trailing);
  // bytes outside LDH/underscore
  formerr(dnstest::query("a b.test", qtype::A));
  formerr(dnstest::query("a\\.test", qtype::A));
  formerr(Bytes()
              .header(0x1234, 0x0100, 1, 0, 0, 0)
              .u8(3)
              .raw(std::string("a\0b", 3))
              .u8(0)
              .u16(1)
              .u16(1)
              .v);
  // OPT version 1, non-OPT additional, OPT with a non-root owner, bad option length
  formerr(Bytes().header(0x1234, 0x0100, 1, 0, 0, 1).name("a.test").u16(1).u16(1).opt(1232, 1).v);
  formerr(Bytes()
              .header(0x1234, 0x0100, 1, 0, 0, 1)
              .name("a.test")
              .u16(1)
              .u16(1)
              .u8(0)
              .u16(1)
              .u16(1)
              .u32(0)
              .u16(0)
              .v);
  formerr(Bytes()
              .header(0x1234, 0x0100, 1, 0, 0, 1)
              .name("a.test")
              .u16(1)
              .u16(1)
              .name("x")
              .u16(41)
              .u16(512)
              .u32(0)
              .u16(0)
              .v);
  formerr(Bytes()
              .header(0x1234, 0x0100, 1, 0, 0, 1)
              .name("a.test")
              .u16(1)
              .u16(1)
              .u8(0)
              .u16(41)
              .u16(512)
              .u32(0)
              .u16(4)
              .u16(10)
              .u16(9)
              .v);
  formerr(Bytes().header(0x1234, 0x0100, 1, 0, 0, 2).name("a.test").u16(1).u16(1).opt().opt().v);
}

TEST_CASE("parse_query: drop, NOTIMP and class handling", "[dns]") {
  CHECK(parse_query(std::vector<std::uint8_t>(11, 0)).status == ParseStatus::drop);
  auto resp = dnstest::query("good.test", qtype::A);
  resp[2] |= 0x80;
  CHECK(parse_query(resp).status == ParseStatus::drop);
  auto notify = dnstest::query("good.test", qtype::A);
  notify[2] = static_cast<std::uint8_t>(4 << 3);
  auto n = parse_query(notify);
  CHECK(n.status == ParseStatus::error);
  CHECK(n.rcode == Rcode::notimp);
  auto chaos = Bytes().header(0x1234, 0x0100, 1, 0, 0, 0).name("version.bind").u16(16).u16(3).v;
  auto c = parse_query(chaos);
  CHECK(c.status == ParseStatus::error);
  CHECK(c.rcode == Rcode::refused);
  CHECK(c.question_parsed);
}

TEST_CASE("configurable lower name limits", "[dns]") {
  NameLimits lim{20, 60};
  CHECK(parse_query(dnstest::query(std::string(20, 'a') + ".test", qtype::A), lim).status ==
        ParseStatus::ok);
  CHECK(parse_query(dnstest::query(std::string(21, 'a') + ".test", qtype::A), lim).rcode ==
        Rcode::formerr);
  CHECK(parse_query(dnstest::query(std::string(19, 'a') + "." + std::string(19, 'a') + "." +
                                       std::string(19, 'a') + ".test",
                                   qtype::A),
                    lim)
            .rcode == Rcode::formerr);
}

TEST_CASE("build_response echoes the query and writes records c-ares can read", "[dns]") {
  auto parsed = parse_query(dnstest::query("good.test", qtype::A, false, 0xbeef));
  REQUIRE(parsed.status == ParseStatus::ok);
  std::vector<Record> recs(2);
  recs[0].name = "good.test";
  recs[0].type = qtype::A;
  recs[0].ttl = 7200;
  recs[0].address = *sbx::net::IpAddress::parse("198.51.100.7");
  recs[1] = recs[0];
  recs[1].ttl = 20;
  recs[1].address = *sbx::net::IpAddress::parse("198.51.100.8");
  auto out = build_response(parsed.query, Rcode::noerror, recs, 300);
  REQUIRE(out.size() > 12);
  CHECK(out[0] == 0xbe);
  CHECK(out[1] == 0xef);
  CHECK((out[2] & 0x80) != 0);  // QR
  CHECK((out[2] & 0x01) != 0);  // RD echoed
  CHECK((out[3] & 0x80) != 0);  // RA
  CHECK((out[3] & 0x0f) == 0);
  ares_addrttl ttls[4];
  int n = 4;
  REQUIRE(ares_parse_a_reply(out.data(), static_cast<int>(out.size()), nullptr, ttls, &n) ==
          ARES_SUCCESS);
  REQUIRE(n == 2);
  char b[16];
  inet_ntop(AF_INET, &ttls[0].ipaddr, b, sizeof b);
  CHECK(std::string(b) == "198.51.100.7");
  CHECK(ttls[0].ttl == 300);  // capped
  CHECK(ttls[1].ttl == 20);

  // CNAME then A: c-ares follows the chain from the question name.
  std::vector<Record> chain(2);
  chain[0].name = "good.test";
  chain[0].type = qtype::CNAME;
  chain[0].ttl = 60;
  chain[0].target = "cdn.other.test";
  chain[1].name = "cdn.other.test";
  chain[1].type = qtype::A;
  chain[1].ttl = 60;
  chain[1].address = *sbx::net::IpAddress::parse("203.0.113.9");
  auto c = build_response(parsed.query, Rcode::noerror, chain);
  n = 4;
  REQUIRE(ares_parse_a_reply(c.data(), static_cast<int>(c.size()), nullptr, ttls, &n) ==
          ARES_SUCCESS);
  REQUIRE(n == 1);
  inet_ntop(AF_INET, &ttls[0].ipaddr, b, sizeof b);
  CHECK(std::string(b) == "203.0.113.9");

  // Too big for the client's UDP size: no answers, TC set.
  std::vector<Record> many(40, recs[0]);
  auto big = build_response(parsed.query, Rcode::noerror, many, 300, 512);
  CHECK(big.size() <= 512);
  CHECK((big[2] & 0x02) != 0);
  CHECK(big[7] == 0);
  CHECK(build_response(parsed.query, Rcode::noerror, many, 300, 65535).size() > 512);
}

TEST_CASE("error responses", "[dns]") {
  auto p = parse_query(dnstest::query(std::string(200, 'a') + ".test", qtype::A));
  auto out = build_error_response(p);
  REQUIRE(out.size() == 12);
  CHECK(out[0] == 0x12);
  CHECK(out[1] == 0x34);
  CHECK((out[2] & 0x80) != 0);
  CHECK((out[3] & 0x0f) == 1);  // FORMERR
  CHECK(out[5] == 0);           // no question echoed

  auto q = parse_query(dnstest::query("evil.test", qtype::A, true));
  auto refused = build_response(q.query, Rcode::refused);
  CHECK((refused[3] & 0x0f) == 5);
  CHECK(refused[5] == 1);   // question echoed
  CHECK(refused[11] == 1);  // OPT because the query had one
  // The response is itself a well-formed message (QR=1: our parser drops it).
  CHECK(parse_query(refused).status == ParseStatus::drop);
}

TEST_CASE("parser survives random and mutated input (smoke fuzz)", "[dns][fuzz]") {
  std::mt19937 rng(12345);
  auto seed = dnstest::query("www.good.test", qtype::AAAA, true);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> m;
    if (i % 2) {
      m = seed;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<std::uint8_t>(rng());
      if (rng() % 4 == 0) m.resize(rng() % (m.size() + 1));
    } else {
      m.resize(rng() % 80);
      for (auto& b : m) b = static_cast<std::uint8_t>(rng());
    }
    auto r = parse_query(m);
    if (r.status == ParseStatus::ok) {
      CHECK(r.query.name.size() <= 253);
      auto out = build_response(r.query, Rcode::refused);
      CHECK(out.size() >= 12);
    } else if (r.status == ParseStatus::error) {
      CHECK(build_error_response(r).size() >= 12);
    }
  }
}
