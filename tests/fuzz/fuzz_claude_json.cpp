// Fuzzes how the Claude config guard reads a .claude.json the sandbox
// wrote (ClaudeConfigGuard::as_node_reads, then nlohmann's parser and the
// guarded keys).
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/claude_guard.hpp"

using sbx::runtime::ClaudeConfigGuard;

namespace {

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80         ? 1
                          : (c >> 5) == 6  ? 2
                          : (c >> 4) == 14 ? 3
                          : (c >> 3) == 30 ? 4
                                           : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::string out = ClaudeConfigGuard::as_node_reads(in);
  if (!valid_utf8(out)) std::abort();
  // A document nlohmann reads already is read the same (nlohmann stops at
  // a NUL; the guard refuses those before).
  const auto direct = nlohmann::ordered_json::parse(in, nullptr, false);
  if (!direct.is_discarded() && in.find('\0') == std::string::npos && out != in) std::abort();
  const auto doc = nlohmann::ordered_json::parse(out, nullptr, false);
  if (!doc.is_discarded()) (void)ClaudeConfigGuard::guarded_keys(doc);
  return 0;
}
