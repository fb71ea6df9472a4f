// Fuzzes the DNS query parser and the responses built from what it accepts.
#include <cstdlib>

#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto r = parse_query(in);
  if (r.status == ParseStatus::ok) {
    if (r.query.name.size() > 253) std::abort();
    // A response to an accepted query is well-formed: our own parser sees a
    // response (QR=1) and drops it rather than misreading it.
    auto out = build_response(r.query, Rcode::refused, {}, 60, r.query.max_udp_response());
    if (out.size() < 12 || parse_query(out).status != ParseStatus::drop) std::abort();
    Record rec;
    rec.name = r.query.name;
    rec.type = qtype::A;
    rec.ttl = 1;
    rec.address = sbx::net::IpAddress::v4(198, 51, 100, 7);
    auto with = build_response(r.query, Rcode::noerror, {&rec, 1}, 60, 512);
    if (with.size() > 512) std::abort();
  } else if (r.status == ParseStatus::error) {
    auto out = build_error_response(r);
    if (out.size() < 12 || out[0] != data[0] || out[1] != data[1]) std::abort();
  }
  // Lower caps never accept what the default caps refuse.
  auto strict = parse_query(in, NameLimits{20, 60});
  if (strict.status == ParseStatus::ok && r.status != ParseStatus::ok) std::abort();
  return 0;
}
