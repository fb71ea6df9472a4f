// The value grammar shared by profile files and command-line flags: sizes,
// durations, CIDRs, ports, tmpfs specs, user ids, enum spellings.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// Parses an unsigned decimal; nullopt when empty, not digits or above max.
std::optional<std::uint64_t> parse_unsigned(std::string_view s, std::uint64_t max) {
  if (!all_digits(s) || s.size() > 20) return std::nullopt;
  unsigned __int128 v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > max) return std::nullopt;
  }
  return static_cast<std::uint64_t>(v);
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

// ---------------------------------------------------------------- sizes

std::uint64_t parse_size(std::string_view text) {
  const auto bad = [&]() {
    return ProfileError(fmt::format("invalid size '{}'", text),
                        "write a number with an optional binary unit K, M, G or T, e.g. \"512M\", "
                        "\"4G\" or \"1.5G\"");
  };
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  std::string_view whole = text.substr(0, i);
  std::string_view frac;
  if (i < text.size() && text[i] == '.') {
    std::size_t start = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    frac = text.substr(start, i - start);
    if (frac.empty() || frac.size() > 9) throw bad();
  }
  if (whole.empty()) throw bad();
  std::string unit;
  for (char c : text.substr(i)) unit += lower(c);
  int shift = 0;
  if (!unit.empty()) {
    static constexpr std::array<std::pair<char, int>, 5> kUnits{
        {{'b', 0}, {'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}}};
    auto it = std::find_if(kUnits.begin(), kUnits.end(),
                           [&](const auto& u) { return u.first == unit[0]; });
    if (it == kUnits.end()) throw bad();
    shift = it->second;
    std::string_view rest = std::string_view(unit).substr(1);
    if (shift == 0 ? !rest.empty() : !(rest.empty() || rest == "b" || rest == "ib")) throw bad();
  }
  auto w = parse_unsigned(whole, std::numeric_limits<std::uint64_t>::max());
  if (!w) throw bad();
  unsigned __int128 bytes = static_cast<unsigned __int128>(*w) << shift;
  if (!frac.empty()) {
    unsigned __int128 f = 0, scale = 1;
    for (char c : frac) {
      f = f * 10 + static_cast<unsigned>(c - '0');
      scale *= 10;
    }
    unsigned __int128 part = f << shift;
    if (part % scale != 0) {
      throw ProfileError(fmt::format("size '{}' is not a whole number of bytes", text),
                         "use a smaller unit, e.g. \"1536M\" instead of \"1.5G\" works, \"0.3K\" "
                         "does not");
    }
    bytes += part / scale;
  }
  if (bytes > std::numeric_limits<std::uint64_t>::max()) {
    throw ProfileError(fmt::format("size '{}' is too large", text), "use a value below 16E");
  }
  return static_cast<std::uint64_t>(bytes);
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::pair<char, int>, 4> kUnits{
      {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}}};
  if (bytes != 0) {
    for (const auto& [unit, shift] : kUnits) {
      const std::uint64_t mult = std::uint64_t{1} << shift;
      if (bytes % mult == 0) return fmt::format("{}{}", bytes / mult, unit);
    }
  }
  return std::to_string(bytes);
}

// ------------------------------------------------------------ durations

std::chrono::milliseconds parse_duration(std::string_view text) {
  const auto bad = [&]() {
    return ProfileError(fmt::format("invalid duration '{}'", text),
                        "write numbers with units d, h, m, s or ms, e.g. \"15m\", \"1h30m\", "
                        "\"500ms\"");
  };
  if (text == "0") return std::chrono::milliseconds{0};
  if (text.empty()) throw bad();
  unsigned __int128 total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    auto n =
        parse_unsigned(text.substr(start, i - start), std::numeric_limits<std::uint32_t>::max());
    if (!n) throw bad();
    std::size_t ustart = i;
    while (i < text.size() && !is_digit(text[i])) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    std::uint64_t ms;
    if (unit == "ms") {
      ms = 1;
    } else if (unit == "s") {
      ms = 1000;
    } else if (unit == "m") {
      ms = 60'000;
    } else if (unit == "h") {
      ms = 3'600'000;
    } else if (unit == "d") {
      ms = 86'400'000;
    } else {
      throw bad();
    }
    total += static_cast<unsigned __int128>(*n) * ms;
  }
  // Cap at ~100 years: far beyond any sandbox and safe for chrono arithmetic.
  if (total > 3'153'600'000'000ull) {
    throw ProfileError(fmt::format("duration '{}' is too long", text), "use at most \"36500d\"");
  }
  return std::chrono::milliseconds{static_cast<std::int64_t>(total)};
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms <= 0) return "0";
  std::string out;
  const std::pair<const char*, std::int64_t> units[] = {
      {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}};
  for (const auto& [name, size] : units) {
    if (ms >= size) {
      out += fmt::format("{}{}", ms / size, name);
      ms %= size;
    }
  }
  return out;
}

// ---------------------------------------------------------------- CIDRs

std::string parse_cidr(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return ProfileError(fmt::format("invalid CIDR '{}': {}", text, why),
                        "write ADDRESS/PREFIX, e.g. \"10.0.0.0/8\" or \"fc00::/7\"");
  };
  std::string_view addr = text;
  std::optional<std::uint64_t> len;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = parse_unsigned(text.substr(slash + 1), 128);
    if (!len) throw bad("the prefix length is not a number from 0 to 128");
  }
  std::string a(addr);
  unsigned char bytes[16] = {};
  int family;
  int bits;
  if (inet_pton(AF_INET, a.c_str(), bytes) == 1) {
    family = AF_INET;
    bits = 32;
  } else if (inet_pton(AF_INET6, a.c_str(), bytes) == 1) {
    family = AF_INET6;
    bits = 128;
  } else {
    throw bad("not an IPv4 or IPv6 address");
  }
  const int prefix = len ? static_cast<int>(*len) : bits;
  if (prefix > bits)
    throw bad(fmt::format("an IPv{} prefix is at most /{}", bits == 32 ? 4 : 6, bits));
  for (int bit = prefix; bit < bits; ++bit) {
    if (bytes[bit / 8] & (0x80 >> (bit % 8))) {
      unsigned char net[16];
      std::memcpy(net, bytes, sizeof net);
      for (int b = prefix; b < bits; ++b)
        net[b / 8] &= static_cast<unsigned char>(~(0x80 >> (b % 8)));
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(family, net, buf, sizeof buf);
      throw ProfileError(
          fmt::format("invalid CIDR '{}': host bits are set after /{}", text, prefix),
          fmt::format("write \"{}/{}\" for the network or \"{}\" for the single address", buf,
                      prefix, addr));
    }
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family, bytes, buf, sizeof buf);
  return fmt::format("{}/{}", buf, prefix);
}

// ---------------------------------------------------------------- ports

std::uint16_t check_port(std::int64_t value) {
  if (value < 1 || value > 65535) {
    throw ProfileError(fmt::format("invalid port {}", value), "use a port from 1 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

std::uint16_t parse_port(std::string_view text) {
  auto v = parse_unsigned(text, 65535);
  if (!v || *v == 0) {
    throw ProfileError(fmt::format("invalid port '{}'", text), "use a port from 1 to 65535");
  }
  return static_cast<std::uint16_t>(*v);
}

PublishedPort parse_publish(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    throw ProfileError(fmt::format("invalid published port '{}'", text),
                       "write HOST_PORT:SANDBOX_PORT, e.g. \"8080:3000\"");
  }
  return PublishedPort{parse_port(text.substr(0, colon)), parse_port(text.substr(colon + 1))};
}

// ---------------------------------------------------------------- tmpfs

TmpfsMount parse_tmpfs(std::string_view spec, const Environment& env) {
  TmpfsMount mount;
  std::string_view path = spec;
  std::string_view options;
  if (auto colon = spec.rfind(':'); colon != std::string_view::npos) {
    std::string_view rest = spec.substr(colon + 1);
    if (rest.starts_with("size=") || rest.starts_with("mode=")) {
      path = spec.substr(0, colon);
      options = rest;
    }
  }
  mount.path = expand_path(path, env);
  while (!options.empty()) {
    auto comma = options.find(',');
    std::string_view opt = options.substr(0, comma);
    options = comma == std::string_view::npos ? std::string_view{} : options.substr(comma + 1);
    if (opt.starts_with("size=")) {
      mount.size_bytes = parse_size(opt.substr(5));
      if (mount.size_bytes == 0) {
        throw ProfileError(fmt::format("tmpfs '{}': size must be above 0", spec),
                           "give a size such as size=64M");
      }
    } else if (opt.starts_with("mode=")) {
      std::string_view m = opt.substr(5);
      if (m.empty() || m.size() > 5 ||
          !std::all_of(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        throw ProfileError(fmt::format("tmpfs '{}': invalid mode '{}'", spec, m),
                           "write the mode in octal, e.g. mode=0755 or mode=1777");
      }
      mount.mode = static_cast<std::uint32_t>(std::stoul(std::string(m), nullptr, 8));
      if (mount.mode > 07777) {
        throw ProfileError(fmt::format("tmpfs '{}': invalid mode '{}'", spec, m),
                           "the mode is at most 7777 (octal)");
      }
    } else {
      throw ProfileError(fmt::format("tmpfs '{}': unknown option '{}'", spec, opt),
                         "write PATH[:size=SIZE,mode=OCTAL], e.g. /scratch:size=1G,mode=0700");
    }
  }
  return mount;
}

std::string format_tmpfs(const TmpfsMount& mount) {
  return fmt::format("{}:size={},mode={:04o}", mount.path, format_size(mount.size_bytes),
                     mount.mode);
}

// ----------------------------------------------------------- identities

std::pair<std::optional<std::uint32_t>, std::optional<std::uint32_t>> parse_user(
    std::string_view text) {
  const auto bad = [&]() {
    return ProfileError(fmt::format("invalid user '{}'", text),
                        "write UID or UID:GID with numeric ids, e.g. 1000 or 1000:1000");
  };
  // 4294967295 is (uid_t)-1, which the kernel reads as "unchanged".
  constexpr std::uint64_t kMaxId = 4294967294u;
  std::pair<std::optional<std::uint32_t>, std::optional<std::uint32_t>> out;
  auto colon = text.find(':');
  std::string_view uid = text.substr(0, colon);
  if (!uid.empty()) {
    auto v = parse_unsigned(uid, kMaxId);
    if (!v) throw bad();
    out.first = static_cast<std::uint32_t>(*v);
  }
  if (colon != std::string_view::npos) {
    auto v = parse_unsigned(text.substr(colon + 1), kMaxId);
    if (!v) throw bad();
    out.second = static_cast<std::uint32_t>(*v);
  }
  if (!out.first && !out.second) throw bad();
  return out;
}

// ---------------------------------------------------------------- DNS

std::string parse_dns_upstream(std::string_view text) {
  const auto bad = [&]() {
    return ProfileError(fmt::format("invalid DNS server '{}'", text),
                        "write an IP address with an optional port: \"1.1.1.1\", "
                        "\"1.1.1.1:53\", \"[2606:4700::1111]:53\"");
  };
  std::string host(text);
  std::optional<std::uint16_t> port;
  unsigned char buf[16];
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) throw bad();
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw bad();
      port = parse_port(rest.substr(1));
    }
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) throw bad();
  } else if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    // bare IPv6 address, no port
  } else {
    if (auto colon = text.find(':'); colon != std::string_view::npos) {
      host = std::string(text.substr(0, colon));
      port = parse_port(text.substr(colon + 1));
    }
    if (inet_pton(AF_INET, host.c_str(), buf) != 1) throw bad();
  }
  char out[INET6_ADDRSTRLEN];
  const bool v6 = host.find(':') != std::string::npos;
  inet_ntop(v6 ? AF_INET6 : AF_INET, buf, out, sizeof out);
  if (!port) return out;
  return v6 ? fmt::format("[{}]:{}", out, *port) : fmt::format("{}:{}", out, *port);
}

// ------------------------------------------------------------- names

void check_env_name(std::string_view name, bool allow_prefix_glob) {
  std::string_view body = name;
  if (allow_prefix_glob && body.ends_with('*')) body.remove_suffix(1);
  bool ok = !body.empty() || (allow_prefix_glob && name == "*");
  for (std::size_t i = 0; i < body.size() && ok; ++i) {
    char c = body[i];
    ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && is_digit(c));
  }
  if (name == "*") ok = false;  // "keep everything" defeats scrubbing; refuse it
  if (!ok) {
    throw ProfileError(
        fmt::format("invalid environment variable name '{}'", name),
        allow_prefix_glob
            ? "use letters, digits and '_' (not starting with a digit); a trailing '*' keeps "
              "every variable with that prefix, e.g. \"LC_*\""
            : "use letters, digits and '_' (not starting with a digit)");
  }
}

void check_syscall_name(std::string_view name) {
  std::string_view body = name.starts_with('@') ? name.substr(1) : name;
  bool ok = !body.empty() && std::all_of(body.begin(), body.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || (name[0] == '@' && c == '-');
  });
  if (!ok) {
    throw ProfileError(fmt::format("invalid syscall name '{}'", name),
                       "write a syscall name such as \"ptrace\" or a group such as \"@mount\" "
                       "(docs/seccomp.md)");
  }
}

// ------------------------------------------------------------- enums

NetworkMode parse_network_mode(std::string_view text) {
  if (text == "none") return NetworkMode::none;
  if (text == "filtered") return NetworkMode::filtered;
  if (text == "host") return NetworkMode::host;
  throw ProfileError(fmt::format("invalid network mode '{}'", text),
                     "use one of: none, filtered, host");
}

std::string_view to_string(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::none:
      return "none";
    case NetworkMode::filtered:
      return "filtered";
    case NetworkMode::host:
      return "host";
  }
  return "?";
}

std::string_view to_string(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::default_policy:
      return "default";
    case SeccompMode::strict:
      return "strict";
    case SeccompMode::none:
      return "none";
  }
  return "?";
}

std::string_view to_string(LandlockMode mode) {
  switch (mode) {
    case LandlockMode::best_effort:
      return "best-effort";
    case LandlockMode::required:
      return "required";
    case LandlockMode::off:
      return "off";
  }
  return "?";
}

std::string_view to_string(AuditLevel level) {
  switch (level) {
    case AuditLevel::minimal:
      return "minimal";
    case AuditLevel::standard:
      return "standard";
    case AuditLevel::verbose:
      return "verbose";
  }
  return "?";
}

std::string_view to_string(DnsRefusal refusal) {
  switch (refusal) {
    case DnsRefusal::refused:
      return "refused";
    case DnsRefusal::nxdomain:
      return "nxdomain";
  }
  return "?";
}

std::string_view to_string(TtyMode mode) {
  switch (mode) {
    case TtyMode::automatic:
      return "auto";
    case TtyMode::always:
      return "always";
    case TtyMode::never:
      return "never";
  }
  return "?";
}

}  // namespace sbx::profiles
