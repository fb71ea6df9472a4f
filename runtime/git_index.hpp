// A git index, as far as GitGuard reads it: the gitlinks (a gitlink added
// by the sandbox makes the host's `git status` run git inside its path).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::runtime {

struct GitIndex {
  std::vector<std::string> gitlinks;  // paths of the entries of mode 160000
  std::string shared_index;           // a split index's sharedindex.HEX name part, or ""
};

// Versions 2-4, SHA-1 or SHA-256 (hash_size 20 or 32). Sandbox-written
// bytes (tests/fuzz/fuzz_git_index.cpp): what cannot be read is left out.
GitIndex parse_git_index(std::string_view data, std::size_t hash_size);

}  // namespace sbx::runtime
