#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>

#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

using namespace sbx::net;

TEST_CASE("IpAddress parses and prints both families", "[netfilter]") {
  auto a = IpAddress::parse("198.51.100.7");
  REQUIRE(a);
  CHECK(a->family == AF_INET);
  CHECK(a->str() == "198.51.100.7");
  auto b = IpAddress::parse("2001:db8::5");
  REQUIRE(b);
  CHECK(b->family == AF_INET6);
  CHECK(b->str() == "2001:db8::5");
  CHECK_FALSE(IpAddress::parse(""));
  CHECK_FALSE(IpAddress::parse("1.2.3"));
  CHECK_FALSE(IpAddress::parse("example.com"));
  CHECK_FALSE(IpAddress::parse("1.2.3.4 "));
}

TEST_CASE("Cidr parses, refuses host bits, and matches", "[netfilter]") {
  auto c = Cidr::parse("10.0.0.0/8");
  REQUIRE(c);
  CHECK(c->contains(*IpAddress::parse("10.255.1.2")));
  CHECK_FALSE(c->contains(*IpAddress::parse("11.0.0.1")));
  CHECK_FALSE(c->contains(*IpAddress::parse("::a00:1")));
  CHECK_FALSE(Cidr::parse("10.1.0.0/8"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/x"));
  CHECK(Cidr::parse("203.0.113.9")->prefix == 32);
  auto v6 = Cidr::parse("fe80::/10");
  REQUIRE(v6);
  CHECK(v6->contains(*IpAddress::parse("febf::1")));
  CHECK_FALSE(v6->contains(*IpAddress::parse("fec0::1")));
  CHECK(Cidr::parse("100.64.0.0/10")->contains(*IpAddress::parse("100.127.255.255")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
}

TEST_CASE("always-denied ranges cover rebinding targets and spare documentation ranges",
          "[netfilter]") {
  const auto& d = always_denied_cidrs();
  for (const char* bad :
       {"127.0.0.1",  "10.1.2.3",    "172.31.0.1",          "192.168.1.1",     "169.254.169.254",
        "100.64.0.1", "0.0.0.0",     "224.0.0.1",           "255.255.255.255", "::1",
        "::",         "fd00::2",     "fd00:ec2::254",       "fe80::1",         "::ffff:127.0.0.1",
        "ff02::1",    "::a9fe:a9fe", "2001:0:4136:e378::1", "fec0::1",         "64:ff9b:1::1"}) {
    INFO(bad);
    CHECK(in_any(d, *IpAddress::parse(bad)));
  }
  for (const char* good :
       {"198.51.100.7", "203.0.113.9", "8.8.8.8", "2001:db8::5", "2606:4700::1"}) {
    INFO(good);
    CHECK_FALSE(in_any(d, *IpAddress::parse(good)));
  }
  auto eff = effective_deny_cidrs(std::vector<std::string>{"198.51.100.0/24"});
  CHECK(in_any(eff, *IpAddress::parse("198.51.100.7")));
  // IPv6 addresses carrying an IPv4 one (NAT64, 6to4) are denied with it.
  for (const char* bad : {"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::a00:1",
                          "2002:a9fe:a9fe::1", "2002:7f00:1:ffff::1"}) {
    INFO(bad);
    CHECK(denied(d, *IpAddress::parse(bad)));
    CHECK_FALSE(in_any(d, *IpAddress::parse(bad)));  // in_any alone misses them
  }
  for (const char* good : {"64:ff9b::cb00:710a", "2002:cb00:710a::1", "2001:db8::5"}) {
    INFO(good);
    CHECK_FALSE(denied(d, *IpAddress::parse(good)));
  }
  CHECK(denied(eff, *IpAddress::parse("64:ff9b::c633:6407")));  // 198.51.100.7: the policy's
  CHECK(embedded_ipv4(*IpAddress::parse("64:ff9b::c633:6407"))->str() == "198.51.100.7");
  CHECK(embedded_ipv4(*IpAddress::parse("2002:c633:6407::"))->str() == "198.51.100.7");
  CHECK_FALSE(embedded_ipv4(*IpAddress::parse("2001:db8::c633:6407")));
  CHECK_FALSE(embedded_ipv4(*IpAddress::parse("198.51.100.7")));
  CHECK_THROWS_AS(effective_deny_cidrs(std::vector<std::string>{"nonsense"}), sbx::Error);
  // A built-in range named again (as base.toml does) is listed once.
  const auto builtin = always_denied_cidrs();
  auto again = effective_deny_cidrs(std::vector<std::string>{"10.0.0.0/8", "10.0.0.0/8"});
  REQUIRE(std::count(builtin.begin(), builtin.end(), *Cidr::parse("10.0.0.0/8")) == 1);
  CHECK(again.size() == builtin.size());
  CHECK(std::count(again.begin(), again.end(), *Cidr::parse("10.0.0.0/8")) == 1);
}

TEST_CASE("batches are framed by BEGIN/END and count their acks", "[netfilter]") {
  auto b = build_ruleset_batch(RulesetConfig{}, 10);
  REQUIRE(b.bytes.size() > 2 * sizeof(nlmsghdr));
  CHECK(b.first_seq == 10);
  std::size_t off = 0, count = 0, acked = 0;
  std::uint16_t first_type = 0, last_type = 0;
  while (off + sizeof(nlmsghdr) <= b.bytes.size()) {
    nlmsghdr h;
    std::memcpy(&h, b.bytes.data() + off, sizeof h);
    REQUIRE(h.nlmsg_len >= sizeof h);
    if (count == 0) first_type = h.nlmsg_type;
    last_type = h.nlmsg_type;
    if (h.nlmsg_flags & NLM_F_ACK) ++acked;
    ++count;
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  CHECK(off == b.bytes.size());
  CHECK(first_type == NFNL_MSG_BATCH_BEGIN);
  CHECK(last_type == NFNL_MSG_BATCH_END);
  CHECK(acked == b.acked_messages);
  CHECK(acked > 20);  // table, 5 sets, elements, 2 chains, the rules

  AllowElement el{*IpAddress::parse("203.0.113.9"), std::chrono::seconds(40)};
  CHECK(build_allow_batch("sbx", {&el, 1}, 1, true).acked_messages == 3);  // add, del, add
  CHECK(build_allow_batch("sbx", {&el, 1}, 1, false).acked_messages == 1);
  std::vector<AllowElement> both{el, {*IpAddress::parse("2001:db8::1"), std::chrono::seconds(40)}};
  CHECK(build_allow_batch("sbx", both, 1, true).acked_messages == 6);
}

namespace {
std::vector<std::uint8_t> nflog_message(const std::string& prefix,
                                        const std::vector<std::uint8_t>& packet) {
  std::vector<std::uint8_t> m(NLMSG_LENGTH(sizeof(nfgenmsg)));
  auto attr = [&](std::uint16_t type, const void* data, std::size_t len) {
    nlattr a{static_cast<std::uint16_t>(sizeof(nlattr) + len), type};
    auto* p = reinterpret_cast<const std::uint8_t*>(&a);
    m.insert(m.end(), p, p + sizeof a);
    auto* d = static_cast<const std::uint8_t*>(data);
    m.insert(m.end(), d, d + len);
    m.resize(NLA_ALIGN(m.size()));
  };
  attr(NFULA_PREFIX, prefix.c_str(), prefix.size() + 1);
  attr(NFULA_PAYLOAD, packet.data(), packet.size());
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(m.size());
  h.nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
  std::memcpy(m.data(), &h, sizeof h);
  return m;
}
}  // namespace

TEST_CASE("parse_nflog extracts protocol, destination and port", "[netfilter]") {
  std::vector<std::uint8_t> ip4(28, 0);
  ip4[0] = 0x45;
  ip4[9] = 17;  // UDP
  std::uint8_t dst[4] = {203, 0, 113, 9};
  std::memcpy(&ip4[16], dst, 4);
  ip4[20 + 2] = 0x01;
  ip4[20 + 3] = 0xbb;  // 443
  auto msg = nflog_message("sbx-blocked ", ip4);
  auto v6 = std::vector<std::uint8_t>(44, 0);
  v6[0] = 0x60;
  v6[6] = 6;
  auto d6 = IpAddress::parse("2001:db8::5");
  std::memcpy(&v6[24], d6->bytes.data(), 16);
  v6[42] = 0;
  v6[43] = 22;
  auto msg2 = nflog_message("sbx-denied ", v6);
  msg.insert(msg.end(), msg2.begin(), msg2.end());
  auto pkts = parse_nflog(msg);
  REQUIRE(pkts.size() == 2);
  CHECK(pkts[0].prefix == "sbx-blocked ");
  CHECK(pkts[0].protocol == 17);
  CHECK(pkts[0].destination.str() == "203.0.113.9");
  CHECK(pkts[0].destination_port == 443);
  CHECK(pkts[1].protocol == 6);
  CHECK(pkts[1].destination.str() == "2001:db8::5");
  CHECK(pkts[1].destination_port == 22);

  // Truncations never read out of bounds and yield no bogus packet.
  for (std::size_t cut = 0; cut < msg.size(); ++cut) {
    auto part = parse_nflog({msg.data(), cut});
    CHECK(part.size() <= 1);
  }
}
