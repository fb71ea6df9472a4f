// Fuzzes the git index reader GitGuard uses for gitlinks (an index the
// sandbox may have written), SHA-1 and SHA-256 layouts (first byte picks).
#include <cstdlib>
#include <string_view>

#include "runtime/git_index.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t hash_size = data[0] & 1 ? 32 : 20;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto index = sbx::runtime::parse_git_index(in, hash_size);
  if (!index.shared_index.empty() && index.shared_index.size() != 2 * hash_size) std::abort();
  if (index.shared_index.find_first_not_of("0123456789abcdef") != std::string::npos) std::abort();
  for (const auto& path : index.gitlinks)
    if (path.size() > in.size() * 2 + 1) std::abort();  // v4 names grow from prefixes only
  return 0;
}
