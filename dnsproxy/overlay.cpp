// DomainOverlay: live allow/deny changes of a running sandbox's domain lists,
// consulted before the policy's patterns (sbx network allow/deny).
#include <algorithm>

#include "dnsproxy/dnsproxy.hpp"
#include "profiles/profiles.hpp"

namespace sbx::dns {

std::string DomainOverlay::allow(std::string_view pattern) {
  auto n = profiles::normalize_domain_pattern(pattern, profiles::DomainList::allow);
  std::erase(deny_, n);
  if (std::find(allow_.begin(), allow_.end(), n) == allow_.end()) allow_.push_back(n);
  rebuild();
  return n;
}

std::string DomainOverlay::deny(std::string_view pattern) {
  auto n = profiles::normalize_domain_pattern(pattern, profiles::DomainList::deny);
  std::erase(allow_, n);
  if (std::find(deny_.begin(), deny_.end(), n) == deny_.end()) deny_.push_back(n);
  rebuild();
  return n;
}

void DomainOverlay::rebuild() {
  NetworkPolicy p;
  p.allow_domains = allow_;
  p.deny_domains = deny_;
  lookup_ = domain_lookup_for(p);
}

DomainMatch DomainOverlay::decide(std::string_view name) const {
  if (!lookup_) return {};
  return lookup_(name);
}

DomainLookup with_overlay(DomainLookup base, std::shared_ptr<const DomainOverlay> overlay) {
  return [base = std::move(base), overlay = std::move(overlay)](std::string_view name) {
    DomainMatch m = overlay->decide(name);
    if (m.verdict == DomainVerdict::deny) return m;
    DomainMatch b = base ? base(name) : DomainMatch{};
    // The policy's own deny stands; the overlay only admits unlisted names.
    if (m.verdict == DomainVerdict::allow && b.verdict != DomainVerdict::deny) return m;
    return b;
  };
}

}  // namespace sbx::dns
