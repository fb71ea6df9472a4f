// secrets — the per-user secrets store (`sbx secrets add|list|rm|path`) and
// the `--secret NAME[:ENVVAR]` requests of `sbx run`. This is the module's
// only public header; docs/secrets.md describes the behaviour.
//
// A secret is one file, $XDG_DATA_HOME/sbx/secrets/NAME (default
// ~/.local/share/sbx/secrets), mode 0600 in a 0700 directory, holding the
// value's bytes as given. No encryption: the protection is the file mode,
// the base profile hiding ~/.local/share/sbx from every sandbox, and sbx
// never putting a value in argv, its own environment, the audit log or the
// run report.
#pragma once

#include <sbx/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::secrets {

// Largest value accepted (the sandbox's /run/secrets is a small tmpfs).
inline constexpr std::size_t kMaxSecretBytes = 1 << 20;

// Where the store lives: $XDG_DATA_HOME/sbx/secrets if XDG_DATA_HOME is an
// absolute path, else $HOME/.local/share/sbx/secrets. Throws sbx::Error when
// neither gives an absolute path.
std::string default_store_dir(const std::function<const char*(const char*)>& getenv);

// A secret name: 1-64 of [A-Za-z0-9_.-], starting with a letter, digit or
// '_' (no "..", no '/', no leading '.' or '-'). It is also a file name in
// the store and below /run/secrets. Throws sbx::Error with a fix.
void check_name(std::string_view name);

// A --secret request: NAME or NAME:ENVVAR. ENVVAR is an environment variable
// name ([A-Za-z_][A-Za-z0-9_]*).
struct Request {
  std::string name;
  std::string env;  // empty: the file only
  bool operator==(const Request&) const = default;
};
Request parse_request(std::string_view spec);

struct Info {
  std::string name;
  std::chrono::system_clock::time_point modified;
  std::uint64_t size = 0;
};

class Store {
 public:
  explicit Store(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  // Writes NAME atomically (temporary file + rename, fsync'd), mode 0600;
  // creates the store (0700) as needed. Refuses an existing NAME unless
  // `replace`, an empty value and one above kMaxSecretBytes.
  void add(std::string_view name, std::string_view value, bool replace) const;
  // The value. Refuses (with the fix) a file that is not a regular file
  // owned by this user with no group/other permission bits, and a store
  // directory others can enter.
  std::string read(std::string_view name) const;
  // False when NAME does not exist.
  bool remove(std::string_view name) const;
  // Sorted by name; an absent store lists nothing.
  std::vector<Info> list() const;
  bool exists(std::string_view name) const;

 private:
  std::string path_of(std::string_view name) const;
  void check_dir_private() const;
  std::string dir_;
};

}  // namespace sbx::secrets
