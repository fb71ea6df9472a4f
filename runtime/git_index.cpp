#include "runtime/git_index.hpp"

#include <cstdint>

#include <fmt/format.h>

namespace sbx::runtime {

GitIndex parse_git_index(std::string_view data, std::size_t hash_size) {
  GitIndex out;
  std::vector<std::string>& links = out.gitlinks;
  const auto u32 = [&](std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           p[3];
  };
  if (data.size() < 12 || data.substr(0, 4) != "DIRC") return out;
  const std::uint32_t version = u32(4), count = u32(8);
  if (version < 2 || version > 4) return out;
  std::size_t pos = 12;
  std::string previous;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t start = pos;
    const std::size_t flags_at = start + 40 + hash_size;
    if (flags_at + 2 > data.size()) return out;
    const std::uint32_t mode = u32(start + 24);
    const unsigned flags = (static_cast<unsigned char>(data[flags_at]) << 8) |
                           static_cast<unsigned char>(data[flags_at + 1]);
    std::size_t name_at = flags_at + 2 + ((version >= 3 && (flags & 0x4000)) ? 2 : 0);
    std::string name;
    if (version == 4) {
      // Prefix compression: strip N bytes of the previous name, then a suffix.
      if (name_at >= data.size()) return out;
      unsigned char c = static_cast<unsigned char>(data[name_at++]);
      std::size_t strip = c & 127;
      while (c & 128) {
        if (name_at >= data.size()) return out;
        c = static_cast<unsigned char>(data[name_at++]);
        strip = ((strip + 1) << 7) + (c & 127);
      }
      if (strip > previous.size()) return out;
      std::size_t end = data.find('\0', name_at);
      if (end == std::string_view::npos) return out;
      name = previous.substr(0, previous.size() - strip);
      name += data.substr(name_at, end - name_at);
      pos = end + 1;
    } else {
      std::size_t end = data.find('\0', name_at);
      if (end == std::string_view::npos) return out;
      name = std::string(data.substr(name_at, end - name_at));
      pos = start + ((name_at - start + name.size() + 8) & ~std::size_t{7});
    }
    previous = name;
    if ((mode & 0170000) == 0160000) links.push_back(name);
  }
  // The extensions, up to the trailing checksum: a split index ("link")
  // keeps most entries, gitlinks included, in sharedindex.HASH.
  const std::size_t ext_end = data.size() >= hash_size ? data.size() - hash_size : 0;
  while (pos + 8 <= ext_end) {
    const std::uint32_t size = u32(pos + 4);
    if (size > ext_end - pos - 8) break;
    if (data.substr(pos, 4) == "link" && size >= hash_size && out.shared_index.empty()) {
      for (std::size_t k = 0; k < hash_size; ++k)
        out.shared_index += fmt::format("{:02x}", static_cast<unsigned char>(data[pos + 8 + k]));
    }
    pos += 8 + size;
  }
  return out;
}

}  // namespace sbx::runtime
