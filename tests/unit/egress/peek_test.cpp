#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "egress/egress.hpp"
#include "tls_samples.hpp"

using namespace sbx::egress;

namespace {

void put16(std::vector<std::uint8_t>& v, std::size_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x));
}

struct Ext {
  std::uint16_t type;
  std::vector<std::uint8_t> data;
};

Ext sni(const std::vector<std::string>& names) {
  std::vector<std::uint8_t> list;
  for (const auto& n : names) {
    list.push_back(0);
    put16(list, n.size());
    list.insert(list.end(), n.begin(), n.end());
  }
  Ext e{0, {}};
  put16(e.data, list.size());
  e.data.insert(e.data.end(), list.begin(), list.end());
  return e;
}

// The handshake message (type 1 + length + body).
std::vector<std::uint8_t> hello_message(const std::vector<Ext>& exts, bool with_ext_block = true) {
  std::vector<std::uint8_t> body{3, 3};
  body.insert(body.end(), 32, 0xab);
  body.push_back(0);  // session id
  put16(body, 2);
  body.push_back(0x13);
  body.push_back(0x01);
  body.push_back(1);  // compression
  body.push_back(0);
  if (with_ext_block) {
    std::vector<std::uint8_t> eb;
    for (const auto& e : exts) {
      put16(eb, e.type);
      put16(eb, e.data.size());
      eb.insert(eb.end(), e.data.begin(), e.data.end());
    }
    put16(body, eb.size());
    body.insert(body.end(), eb.begin(), eb.end());
  }
  std::vector<std::uint8_t> msg{1, 0, 0, 0};
  msg[1] = static_cast<std::uint8_t>(body.size() >> 16);
  msg[2] = static_cast<std::uint8_t>(body.size() >> 8);
  msg[3] = static_cast<std::uint8_t>(body.size());
  msg.insert(msg.end(), body.begin(), body.end());
  return msg;
}

// Splits a handshake message over records of at most `frag` bytes.
std::vector<std::uint8_t> records(const std::vector<std::uint8_t>& msg, std::size_t frag = 16384) {
  std::vector<std::uint8_t> out;
  for (std::size_t at = 0; at < msg.size(); at += frag) {
    std::size_t n = std::min(frag, msg.size() - at);
    out.push_back(0x16);
    out.push_back(3);
    out.push_back(1);
    put16(out, n);
    out.insert(out.end(), msg.begin() + static_cast<std::ptrdiff_t>(at),
               msg.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return out;
}

std::vector<std::uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

}  // namespace

TEST_CASE("SNI from a real ClientHello, fed byte by byte", "[egress][tls]") {
  const auto& h = real_hello();
  REQUIRE(h.size() == 517);
  auto r = parse_client_hello(h);
  INFO(r.error);
  REQUIRE(r.status == PeekStatus::found);
  CHECK(r.name == "api.good.test");
  Peeker p(Inspection::tls);
  for (std::size_t i = 0; i + 1 < h.size(); ++i) {
    REQUIRE(p.feed({&h[i], 1}).status == PeekStatus::need_more);
  }
  auto last = p.feed({&h.back(), 1});
  CHECK(last.status == PeekStatus::found);
  CHECK(last.name == "api.good.test");
  CHECK(p.buffered() == h);
}

TEST_CASE("SNI across several TLS records", "[egress][tls]") {
  auto msg = hello_message({Ext{10, {0, 2, 0, 29}}, sni({"www.good.test"})});
  for (std::size_t frag : {1, 7, 40, 16384}) {
    INFO("fragment size " << frag);
    auto r = parse_client_hello(records(msg, frag));
    INFO(r.error);
    CHECK(r.status == PeekStatus::found);
    CHECK(r.name == "www.good.test");
  }
}

TEST_CASE("ClientHello verdicts: no name, not TLS, malformed, too large", "[egress][tls]") {
  CHECK(parse_client_hello({}).status == PeekStatus::need_more);
  CHECK(parse_client_hello(bytes("GET / HTTP/1.1\r\n")).status == PeekStatus::wrong_protocol);
  CHECK(parse_client_hello(bytes("SSH-2.0-OpenSSH_9.2\r\n")).status == PeekStatus::wrong_protocol);
  CHECK(parse_client_hello(std::vector<std::uint8_t>{0x16, 0x02}).status ==
        PeekStatus::wrong_protocol);
  CHECK(parse_client_hello(records(hello_message({}, false))).status == PeekStatus::no_name);
  CHECK(parse_client_hello(records(hello_message({Ext{10, {0, 2, 0, 29}}}))).status ==
        PeekStatus::no_name);

  auto malformed = [](const std::vector<std::uint8_t>& data) {
    auto r = parse_client_hello(data);
    INFO(r.error);
    CHECK(r.status == PeekStatus::malformed);
  };
  malformed(records(hello_message({sni({"a.test", "b.test"})})));         // two host names
  malformed(records(hello_message({sni({"a.test"}), sni({"b.test"})})));  // duplicate extension
  malformed(records(hello_message({sni({"bad name.test"})})));
  malformed(records(hello_message({sni({"a.test."})})));
  malformed(records(hello_message({sni({""})})));
  malformed(records(hello_message({Ext{0, {}}})));
  malformed(records(hello_message({Ext{0, {0, 9, 0, 0, 1, 'a'}}})));  // list length mismatch
  auto serverhello = hello_message({sni({"a.test"})});
  serverhello[0] = 2;
  malformed(records(serverhello));
  // A non-handshake record in the middle of the ClientHello.
  auto split = records(hello_message({sni({"a.test"})}), 20);
  std::vector<std::uint8_t> alert{0x15, 3, 3, 0, 2, 1, 0};
  split.insert(split.begin() + 25, alert.begin(), alert.end());
  malformed(split);
  // Zero-length record.
  malformed({0x16, 3, 1, 0, 0});

  // A handshake claiming 1 MiB: refused at once, not buffered.
  std::vector<std::uint8_t> huge{0x16, 3, 1, 0, 4, 1, 0x10, 0, 0};
  CHECK(parse_client_hello(huge).status == PeekStatus::too_large);
  // Records that never complete a hello within the cap.
  auto big =
      records(hello_message({Ext{21, std::vector<std::uint8_t>(20000, 0)}, sni({"a.test"})}));
  Peeker p(Inspection::tls);
  PeekResult r;
  for (std::size_t at = 0; at < big.size();) {  // as the proxy reads: at most room()
    const std::size_t n = std::min<std::size_t>({1000, big.size() - at, p.room()});
    r = p.feed({big.data() + at, n});
    at += n;
    if (r.status != PeekStatus::need_more) break;
  }
  CHECK(r.status == PeekStatus::too_large);
  CHECK(p.buffered().size() == kPeekCap);
}

TEST_CASE("HTTP Host: incremental, normalised", "[egress][http]") {
  std::string req =
      "GET /index.html HTTP/1.1\r\nUser-Agent: t\r\nHOST:  WWW.Good.Test:8080 \r\nAccept: "
      "*/*\r\n\r\n";
  Peeker p(Inspection::http);
  PeekResult r;
  for (std::size_t i = 0; i < req.size(); ++i) {
    r = p.feed({reinterpret_cast<const std::uint8_t*>(&req[i]), 1});
    if (i + 1 < req.size()) REQUIRE(r.status == PeekStatus::need_more);
  }
  REQUIRE(r.status == PeekStatus::found);
  CHECK(r.name == "www.good.test");
  auto f =
      parse_http_host(bytes("POST http://good.test/x HTTP/1.0\r\nHost: good.test.\r\n\r\nbody"));
  CHECK(f.status == PeekStatus::found);
  CHECK(f.name == "good.test");
  auto abs = parse_http_host(bytes("GET http://good.test:80/ HTTP/1.0\r\n\r\n"));
  CHECK(abs.status == PeekStatus::found);
  CHECK(abs.name == "good.test");
  auto lit = parse_http_host(bytes("GET / HTTP/1.1\r\nHost: [2001:db8::5]:80\r\n\r\n"));
  CHECK(lit.status == PeekStatus::found);
  CHECK(lit.name == "2001:db8::5");
}

TEST_CASE("Peeker keeps every byte it is given, and says how many more it takes",
          "[egress][http]") {
  // A head that ends near the cap and its body, read together: the bytes
  // past the cap go upstream too (they were lost, 2,712 of a 4,000-byte body).
  const std::string head = "POST /u HTTP/1.1\r\nHost: good.test\r\n\r\n";
  const std::string body(70, 'b');
  Peeker p(Inspection::http, 64);
  CHECK(p.room() == 64);
  const std::string all = head + body;
  auto r = p.feed(bytes(all));
  CHECK(r.status == PeekStatus::found);
  CHECK(p.room() == 0);
  auto kept = p.take_buffered();
  CHECK(std::string(kept.begin(), kept.end()) == all);

  Peeker q(Inspection::http, 64);
  const std::string part = "GET / HTTP/1.1\r\nHost: x";
  CHECK(q.feed(bytes(part)).status == PeekStatus::need_more);
  CHECK(q.room() == 64 - part.size());
}

TEST_CASE("HTTP Host: not HTTP, ambiguous, missing, too large", "[egress][http]") {
  CHECK(parse_http_host(bytes("G")).status == PeekStatus::need_more);
  CHECK(parse_http_host(bytes("GET")).status == PeekStatus::need_more);
  CHECK(parse_http_host(records(hello_message({sni({"a.test"})}))).status ==
        PeekStatus::wrong_protocol);
  CHECK(parse_http_host(bytes("SSH-2.0-x\r\n")).status == PeekStatus::wrong_protocol);
  CHECK(parse_http_host(bytes("get / HTTP/1.1\r\n")).status == PeekStatus::wrong_protocol);
  CHECK(parse_http_host(bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).status ==
        PeekStatus::wrong_protocol);
  CHECK(parse_http_host(bytes("GET / HTTP/1.1\r\n\r\n")).status == PeekStatus::no_name);
  auto malformed = [](std::string_view s) {
    auto r = parse_http_host(bytes(s));
    INFO(s << " -> " << r.error);
    CHECK(r.status == PeekStatus::malformed);
  };
  malformed("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n");
  malformed("GET / HTTP/1.1\r\nHost: a.test\nX: y\r\n\r\n");
  malformed("GET / HTTP/1.1\nHost: a.test\r\n\r\n");
  malformed("GET / HTTP/1.1\r\nX: y\r\n Host: a.test\r\n\r\n");
  malformed("GET / HTTP/1.1\r\nHost : a.test\r\n\r\n");
  malformed("GET / HTTP/1.1\r\nHost: a test\r\n\r\n");
  malformed("GET / HTTP/1.1\r\nHost: a.test:http\r\n\r\n");
  malformed("GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n");
  malformed("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n");
  malformed("GET a.test HTTP/1.1\r\nHost: a.test\r\n\r\n");
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(kPeekCap, 'a');
  CHECK(parse_http_host(bytes(huge)).status == PeekStatus::too_large);
}

TEST_CASE("parsers survive random and mutated input (smoke fuzz)", "[egress][fuzz]") {
  std::mt19937 rng(4242);
  auto tls_seed = real_hello();
  auto http_seed = bytes("GET /x HTTP/1.1\r\nHost: good.test\r\nAccept: */*\r\n\r\n");
  for (int i = 0; i < 20000; ++i) {
    auto t = tls_seed;
    auto h = http_seed;
    for (int f = 0; f < 1 + static_cast<int>(rng() % 5); ++f) {
      t[rng() % t.size()] = static_cast<std::uint8_t>(rng());
      h[rng() % h.size()] = static_cast<std::uint8_t>(rng());
    }
    if (rng() % 3 == 0) t.resize(rng() % (t.size() + 1));
    if (rng() % 3 == 0) h.resize(rng() % (h.size() + 1));
    auto rt = parse_client_hello(t);
    auto rh = parse_http_host(h);
    if (rt.status == PeekStatus::found) CHECK((!rt.name.empty() && rt.name.size() <= 253));
    if (rh.status == PeekStatus::found) CHECK(!rh.name.empty());
  }
}

TEST_CASE("Peeker deadline", "[egress]") {
  auto t0 = sbx::dns::Clock::now();
  Peeker p(Inspection::tls, kPeekCap, std::chrono::milliseconds(5000), t0);
  CHECK_FALSE(p.expired(t0 + std::chrono::milliseconds(4999)));
  CHECK(p.expired(t0 + std::chrono::milliseconds(5000)));
  CHECK(p.deadline() == t0 + std::chrono::milliseconds(5000));
}
