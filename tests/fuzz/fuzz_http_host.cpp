// Fuzzes the HTTP/1.x Host parser, one-shot and fed in two pieces.
#include <cstdlib>

#include "egress/egress.hpp"

using namespace sbx::egress;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto whole = parse_http_host(in);
  if (whole.status == PeekStatus::found && whole.name.empty()) std::abort();
  if (size > 0) {
    Peeker p(Inspection::http);
    std::size_t cut = data[size - 1] % size;
    auto first = p.feed(in.first(cut));
    if (first.status == PeekStatus::need_more || cut == 0) {
      auto second = p.feed(in.subspan(cut));
      if (second.status != whole.status || second.name != whole.name) std::abort();
    }
  }
  return 0;
}
