// Domain patterns (docs/domains.md): normalisation, the public-suffix check
// for allow-list wildcards, and the compiled DomainMatcher used by the DNS
// filter and the egress proxy.
#include <dlfcn.h>
#include <idn2.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

// The Public Suffix List (Debian package `publicsuffix`) as three sorted
// lists, generated at build time by profiles/embed.cmake: for each of
// rules, wildcards and exceptions a NUL-separated kPublicSuffix_<kind>_text
// and its kPublicSuffix_<kind>_offsets (one past the last entry included).
#include "sbx_public_suffix_list.inc"

// One embedded list: entry i is text[offsets[i] .. offsets[i + 1] - 1).
struct SuffixList {
  const char* text;
  const std::uint32_t* offsets;
  std::size_t size;

  constexpr std::string_view operator[](std::size_t i) const {
    return {text + offsets[i], offsets[i + 1] - offsets[i] - 1};
  }
};

template <std::size_t N, std::size_t M>
constexpr SuffixList suffix_list(const char (&text)[N], const std::uint32_t (&offsets)[M]) {
  static_assert(M >= 1);
  return {text, offsets, M - 1};
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

void ascii_lower(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

// libidn2 is loaded on first use, not at start-up: only names with non-ASCII
// or punycode labels need it, and loading it (with libunistring) costs every
// sbx run time in the dynamic loader. Same library, same calls.
struct Idn2 {
  decltype(&idn2_to_ascii_8z) to_ascii_8z = nullptr;
  decltype(&idn2_to_unicode_8z8z) to_unicode_8z8z = nullptr;
  decltype(&idn2_free) free = nullptr;
};

const Idn2& idn2() {
  static const Idn2 lib = [] {
    Idn2 l;
    void* handle = ::dlopen("libidn2.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr)
      throw ProfileError(fmt::format("cannot load libidn2 for an internationalised domain "
                                     "name: {}",
                                     ::dlerror()),
                         "install libidn2 (Debian: libidn2-0)");
    l.to_ascii_8z = reinterpret_cast<decltype(l.to_ascii_8z)>(::dlsym(handle, "idn2_to_ascii_8z"));
    l.to_unicode_8z8z =
        reinterpret_cast<decltype(l.to_unicode_8z8z)>(::dlsym(handle, "idn2_to_unicode_8z8z"));
    l.free = reinterpret_cast<decltype(l.free)>(::dlsym(handle, "idn2_free"));
    if (l.to_ascii_8z == nullptr || l.to_unicode_8z8z == nullptr || l.free == nullptr)
      throw ProfileError("libidn2.so.0 lacks idn2_to_ascii_8z/idn2_to_unicode_8z8z/idn2_free",
                         "install libidn2 >= 2.0 (Debian: libidn2-0)");
    return l;
  }();
  return lib;
}

// UTS #46 non-transitional processing (IDNA2008 as browsers do it): maps
// case and compatibility forms, then encodes each label in punycode
// (RFC 3492). Returns nullopt when the name is not a valid IDN.
std::optional<std::string> idn_to_ascii(std::string_view name) {
  std::string in(name);
  char* out = nullptr;
  const Idn2& lib = idn2();
  int rc = lib.to_ascii_8z(in.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) return std::nullopt;
  std::unique_ptr<char, decltype(lib.free)> guard(out, lib.free);
  std::string result(out);
  ascii_lower(result);
  return result;
}

// Why a host name is not valid, or empty when it is. `name` is ASCII, lower case.
std::string host_name_problem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > 253) return "it is longer than 253 characters";
  std::size_t start = 0;
  std::string_view last;
  while (true) {
    std::size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) return "it has an empty label (two dots in a row, or a leading dot)";
    if (label.size() > 63) return fmt::format("label '{}' is longer than 63 characters", label);
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
        return fmt::format("'{}' is not allowed in a host name", c);
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("label '{}' starts or ends with '-'", label);
    }
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // No top-level domain is numeric; a numeric last label means an IP address.
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "it is an IP address";
  }
  return {};
}

// Lower case, one trailing dot stripped, punycode. Error text or the name.
std::optional<std::string> canonical_name(std::string_view raw, std::string* problem) {
  std::string_view name = raw;
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string out;
  if (is_ascii(name)) {
    out = std::string(name);
    ascii_lower(out);
  } else {
    auto converted = idn_to_ascii(name);
    if (!converted) {
      if (problem) *problem = "it is not a valid internationalised domain name";
      return std::nullopt;
    }
    out = std::move(*converted);
  }
  std::string why = host_name_problem(out);
  if (!why.empty()) {
    if (problem) *problem = std::move(why);
    return std::nullopt;
  }
  return out;
}

constexpr bool sorted(const SuffixList& rules) {
  for (std::size_t i = 1; i < rules.size; ++i)
    if (rules[i] < rules[i - 1]) return false;
  return true;
}

constexpr SuffixList kExceptions =
    suffix_list(kPublicSuffix_exceptions_text, kPublicSuffix_exceptions_offsets);
constexpr SuffixList kRules = suffix_list(kPublicSuffix_rules_text, kPublicSuffix_rules_offsets);
constexpr SuffixList kWildcards =
    suffix_list(kPublicSuffix_wildcards_text, kPublicSuffix_wildcards_offsets);
// Binary search relies on embed.cmake's byte-wise sort: checked by the
// compiler, not at every start (that read the whole list each run).
static_assert(sorted(kExceptions) && sorted(kRules) && sorted(kWildcards),
              "profiles/embed.cmake must sort the public suffix lists byte-wise");

bool listed(const SuffixList& rules, std::string_view name) {
  std::size_t lo = 0, hi = rules.size;
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    if (rules[mid] < name)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < rules.size && rules[lo] == name;
}

}  // namespace

bool is_public_suffix(std::string_view domain) {
  // The list's implicit default rule "*": every unlisted top-level label.
  auto dot = domain.find('.');
  if (dot == std::string_view::npos) return true;
  std::string d(domain);
  std::string parent(domain.substr(dot + 1));
  // IDN rules are kept in UTF-8, as in the list: compare the Unicode form.
  if (d.find("xn--") != std::string::npos) {
    char* out = nullptr;
    const Idn2& lib = idn2();
    if (lib.to_unicode_8z8z(d.c_str(), &out, 0) == IDN2_OK) {
      std::unique_ptr<char, decltype(lib.free)> guard(out, lib.free);
      d = out;
      auto udot = d.find('.');
      parent = udot == std::string::npos ? std::string() : d.substr(udot + 1);
    }
  }
  if (listed(kExceptions, d)) return false;
  if (listed(kRules, d)) return true;
  return listed(kWildcards, parent);
}

std::string normalize_domain_pattern(std::string_view pattern, DomainList list) {
  const bool allow = list == DomainList::allow;
  if (pattern == "*") {
    if (allow) {
      throw ProfileError("domain pattern '*' (every domain) is only allowed in deny lists",
                         "list the domains to allow, or use network mode \"host\" for no "
                         "filtering");
    }
    return "*";
  }
  const bool wildcard = pattern.starts_with("*.");
  std::string_view rest = wildcard ? pattern.substr(2) : pattern;
  if (rest.find('*') != std::string_view::npos) {
    throw ProfileError(fmt::format("invalid domain pattern '{}': '*' must be the whole first "
                                   "label",
                                   pattern),
                       "write \"*.example.com\" for every subdomain of example.com");
  }
  std::string problem;
  auto name = canonical_name(rest, &problem);
  if (!name) {
    const bool ip = problem == "it is an IP address";
    throw ProfileError(fmt::format("invalid domain pattern '{}': {}", pattern, problem),
                       ip ? "put addresses in the CIDR lists (allow_cidrs / --allow-cidr)"
                          : "write a host name such as \"example.com\" or \"*.example.com\"");
  }
  if (wildcard && allow && is_public_suffix(*name)) {
    throw ProfileError(
        fmt::format("domain pattern '{}' would allow every site under the public suffix '{}'",
                    pattern, *name),
        fmt::format("list the sites instead, e.g. \"example.{}\" or \"*.example.{}\"", *name,
                    *name));
  }
  return wildcard ? "*." + *name : *name;
}

std::optional<std::string> normalize_domain_name(std::string_view name) {
  return canonical_name(name, nullptr);
}

std::string_view to_string(DomainDecision decision) {
  switch (decision) {
    case DomainDecision::allow:
      return "allow";
    case DomainDecision::deny:
      return "deny";
    case DomainDecision::unlisted:
      return "unlisted";
  }
  return "?";
}

DomainMatcher::DomainMatcher(const std::vector<std::string>& allow,
                             const std::vector<std::string>& deny) {
  const auto add = [](Set& set, const std::string& raw, DomainList list) {
    std::string p = normalize_domain_pattern(raw, list);
    if (p == "*") {
      set.everything = true;
    } else if (p.starts_with("*.")) {
      set.below.insert(p.substr(2));
    } else {
      set.exact.insert(std::move(p));
    }
  };
  for (const auto& p : allow) add(allow_, p, DomainList::allow);
  for (const auto& p : deny) add(deny_, p, DomainList::deny);
}

bool DomainMatcher::Set::matches(std::string_view name) const {
  if (everything) return true;
  if (exact.find(name) != exact.end()) return true;
  // "*.x" matches every name that ends in ".x": look up each proper suffix.
  for (auto dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (below.find(name.substr(dot + 1)) != below.end()) return true;
  }
  return false;
}

DomainDecision DomainMatcher::decide(std::string_view name) const {
  auto canonical = canonical_name(name, nullptr);
  if (!canonical) return DomainDecision::deny;
  if (deny_.matches(*canonical)) return DomainDecision::deny;
  if (allow_.matches(*canonical)) return DomainDecision::allow;
  return DomainDecision::unlisted;
}

}  // namespace sbx::profiles
