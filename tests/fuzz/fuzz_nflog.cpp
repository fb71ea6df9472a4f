// Fuzzes the NFLOG message parser (kernel data, but parsed without trust).
#include "netfilter/netfilter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto pkts = sbx::net::parse_nflog({data, size});
  for (const auto& p : pkts) (void)p.destination.str();
  return 0;
}
