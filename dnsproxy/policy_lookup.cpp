// The policy's domain patterns as a DomainLookup: profiles' DomainMatcher
// decides, and for names admitted only by a wildcard the zone of the
// narrowest matching `*.zone` pattern is reported for the per-wildcard cap.
#include <algorithm>
#include <memory>
#include <set>

#include "dnsproxy/dnsproxy.hpp"
#include "profiles/profiles.hpp"

namespace sbx::dns {

DomainLookup domain_lookup_for(const NetworkPolicy& network) {
  auto matcher =
      std::make_shared<const profiles::DomainMatcher>(network.allow_domains, network.deny_domains);
  auto exact = std::make_shared<std::set<std::string, std::less<>>>();
  auto zones = std::make_shared<std::vector<std::string>>();
  for (const auto& p : network.allow_domains) {
    auto n = profiles::normalize_domain_pattern(p, profiles::DomainList::allow);
    if (n.starts_with("*.")) {
      zones->push_back(n.substr(2));
    } else {
      exact->insert(n);
    }
  }
  // Longest zone first: the narrowest wildcard is the one that is capped.
  std::sort(zones->begin(), zones->end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return [matcher, exact, zones](std::string_view name) -> DomainMatch {
    switch (matcher->decide(name)) {
      case profiles::DomainDecision::deny:
        return {DomainVerdict::deny, ""};
      case profiles::DomainDecision::unlisted:
        return {DomainVerdict::unlisted, ""};
      case profiles::DomainDecision::allow:
        break;
    }
    auto normalized = profiles::normalize_domain_name(name);
    if (!normalized) return {DomainVerdict::deny, ""};  // decide() would have denied it too
    if (exact->count(*normalized)) return {DomainVerdict::allow, ""};
    for (const auto& zone : *zones) {
      const std::string& n = *normalized;
      if (n.size() > zone.size() + 1 && n.ends_with(zone) && n[n.size() - zone.size() - 1] == '.') {
        return {DomainVerdict::allow, zone};
      }
    }
    return {DomainVerdict::allow, ""};
  };
}

}  // namespace sbx::dns
