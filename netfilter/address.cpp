// IP address and CIDR values, and the ranges no sandbox may reach.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

namespace sbx::net {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddress r;
  r.family = AF_INET;
  r.bytes[0] = a;
  r.bytes[1] = b;
  r.bytes[2] = c;
  r.bytes[3] = d;
  return r;
}

IpAddress IpAddress::from_v4_bytes(const void* four_bytes) {
  IpAddress r;
  r.family = AF_INET;
  std::memcpy(r.bytes.data(), four_bytes, 4);
  return r;
}

IpAddress IpAddress::from_v6_bytes(const void* sixteen_bytes) {
  IpAddress r;
  r.family = AF_INET6;
  std::memcpy(r.bytes.data(), sixteen_bytes, 16);
  return r;
}

std::string IpAddress::str() const {
  if (family != AF_INET && family != AF_INET6) return "<none>";
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  c.address = *addr;
  unsigned max = addr->family == AF_INET ? 32 : 128;
  if (slash == std::string_view::npos) {
    c.prefix = static_cast<std::uint8_t>(max);
    return c;
  }
  auto digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  unsigned prefix = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
  }
  if (prefix > max) return std::nullopt;
  c.prefix = static_cast<std::uint8_t>(prefix);
  // Host bits set ("10.1.2.3/8") usually mean a typo; refuse rather than guess.
  for (unsigned bit = prefix; bit < max; ++bit) {
    if (c.address.bytes[bit / 8] & (0x80u >> (bit % 8))) return std::nullopt;
  }
  return c;
}

bool Cidr::contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes.data(), address.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (a.bytes[full] & mask) == (address.bytes[full] & mask);
}

std::string Cidr::str() const {
  return address.str() + "/" + std::to_string(prefix);
}

const std::vector<Cidr>& always_denied_cidrs() {
  static const std::vector<Cidr> ranges = [] {
    std::vector<Cidr> out;
    for (const char* text : {
             "0.0.0.0/8",       // "this network"
             "10.0.0.0/8",      // RFC 1918
             "100.64.0.0/10",   // CGNAT, RFC 6598
             "127.0.0.0/8",     // loopback (the host's, reached through the proxy)
             "169.254.0.0/16",  // link-local, incl. 169.254.169.254 metadata
             "172.16.0.0/12",   // RFC 1918
             "192.0.0.0/24",    // IETF protocol assignments
             "192.168.0.0/16",  // RFC 1918
             "198.18.0.0/15",   // benchmarking
             "224.0.0.0/4",     // multicast
             "240.0.0.0/4",     // reserved + broadcast
             "::/128",          // unspecified
             "::1/128",         // loopback
             "::/96",           // IPv4-compatible (deprecated; sit tunnels to any IPv4)
             "::ffff:0:0/96",   // IPv4-mapped: would bypass every IPv4 range above
             "64:ff9b:1::/48",  // local-use NAT64 (64:ff9b::/96: denied() checks its IPv4)
             "2001::/32",       // Teredo: IPv4 tunnel endpoints, obfuscated
             "fc00::/7",        // ULA, incl. fd00:ec2::254 (AWS metadata over IPv6)
             "fec0::/10",       // site-local (deprecated)
             "fe80::/10",       // link-local
             "ff00::/8",        // multicast
         }) {
      out.push_back(*Cidr::parse(text));
    }
    return out;
  }();
  return ranges;
}

bool in_any(std::span<const Cidr> ranges, const IpAddress& a) {
  for (const auto& r : ranges) {
    if (r.contains(a)) return true;
  }
  return false;
}

std::optional<IpAddress> embedded_ipv4(const IpAddress& a) {
  if (a.family != AF_INET6) return std::nullopt;
  static const Cidr nat64 = *Cidr::parse("64:ff9b::/96");
  static const Cidr six_to_four = *Cidr::parse("2002::/16");
  if (nat64.contains(a)) return IpAddress::from_v4_bytes(&a.bytes[12]);
  if (six_to_four.contains(a)) return IpAddress::from_v4_bytes(&a.bytes[2]);
  return std::nullopt;
}

bool denied(std::span<const Cidr> deny, const IpAddress& a) {
  if (in_any(deny, a)) return true;
  const auto v4 = embedded_ipv4(a);
  return v4 && in_any(deny, *v4);
}

std::vector<Cidr> effective_deny_cidrs(std::span<const std::string> policy_deny_cidrs) {
  std::vector<Cidr> out = always_denied_cidrs();
  for (const auto& text : policy_deny_cidrs) {
    auto c = Cidr::parse(text);
    if (!c) {
      throw Error("invalid network.deny_cidrs entry '" + text + "'",
                  "write an address with prefix length and no host bits, e.g. 10.0.0.0/8");
    }
    // The profiles repeat the built-in ranges (base.toml): list each once.
    if (std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
  }
  return out;
}

}  // namespace sbx::net
