// Fuzzes the upstream-answer path: c-ares parsing, the rebinding filter and
// the client response rebuilt from it.
#include <cstdlib>

#include "dnsproxy/dnsproxy.hpp"

using namespace sbx::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint16_t type = (data[0] & 1) ? qtype::AAAA : qtype::A;
  std::span<const std::uint8_t> in(data + 1, size - 1);
  const auto& deny = sbx::net::always_denied_cidrs();
  auto a = parse_upstream_answer(in, "good.test", type, deny, TtlPolicy{});
  for (const auto& r : a.addresses) {
    if (sbx::net::in_any(deny, r.address)) std::abort();  // rebinding filter holds
    if (std::chrono::seconds(r.client_ttl) >= r.set_timeout) std::abort();
  }
  Query q;
  q.id = 7;
  q.rd = true;
  q.name = "good.test";
  q.type = type;
  q.klass = kClassIn;
  auto out = build_answer_response(q, a, 1232);
  if (out.size() < 12 || out.size() > 1232) std::abort();
  return 0;
}
