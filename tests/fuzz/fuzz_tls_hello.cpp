// Fuzzes the ClientHello SNI parser, one-shot and fed in two pieces: the
// incremental result must equal the one-shot result.
#include <cstdlib>

#include "egress/egress.hpp"

using namespace sbx::egress;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto whole = parse_client_hello(in);
  if (whole.status == PeekStatus::found && (whole.name.empty() || whole.name.size() > 253))
    std::abort();
  if (size > 0) {
    Peeker p(Inspection::tls);
    std::size_t cut = data[0] % size;
    auto first = p.feed(in.first(cut));
    if (first.status == PeekStatus::need_more || cut == 0) {
      auto second = p.feed(in.subspan(cut));
      if (second.status != whole.status || second.name != whole.name) std::abort();
    }
  }
  return 0;
}
