// Helpers to write DNS messages by hand in tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dnstest {

struct Bytes {
  std::vector<std::uint8_t> v;
  Bytes& u8(std::uint8_t x) {
    v.push_back(x);
    return *this;
  }
  Bytes& u16(std::uint16_t x) {
    v.push_back(static_cast<std::uint8_t>(x >> 8));
    v.push_back(static_cast<std::uint8_t>(x));
    return *this;
  }
  Bytes& u32(std::uint32_t x) {
    u16(static_cast<std::uint16_t>(x >> 16));
    return u16(static_cast<std::uint16_t>(x));
  }
  Bytes& raw(std::string_view s) {
    v.insert(v.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& name(std::string_view n) {
    std::size_t start = 0;
    while (start < n.size()) {
      auto dot = n.find('.', start);
      if (dot == std::string_view::npos) dot = n.size();
      u8(static_cast<std::uint8_t>(dot - start));
      raw(n.substr(start, dot - start));
      start = dot + 1;
    }
    return u8(0);
  }
  Bytes& header(std::uint16_t id, std::uint16_t flags, std::uint16_t qd, std::uint16_t an,
                std::uint16_t ns, std::uint16_t ar) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  Bytes& opt(std::uint16_t payload = 4096, std::uint8_t version = 0) {
    return u8(0).u16(41).u16(payload).u8(0).u8(version).u16(0).u16(0);
  }
};

// A standard query: RD set, one question, optional OPT.
inline std::vector<std::uint8_t> query(std::string_view name, std::uint16_t type,
                                       bool with_opt = false, std::uint16_t id = 0x1234) {
  Bytes b;
  b.header(id, 0x0100, 1, 0, 0, with_opt ? 1 : 0).name(name).u16(type).u16(1);
  if (with_opt) b.opt();
  return b.v;
}

}  // namespace dnstest
