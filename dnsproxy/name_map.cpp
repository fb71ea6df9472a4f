// Address -> names map with expiry, shared by the DNS filter and the egress proxy.
#include "dnsproxy/dnsproxy.hpp"

namespace sbx::dns {

void NameMap::add(const net::IpAddress& address, const std::string& name,
                  Clock::time_point expires) {
  auto& names = entries_[address];
  auto [it, inserted] = names.emplace(name, expires);
  if (!inserted && it->second < expires) it->second = expires;
}

std::vector<std::string> NameMap::names(const net::IpAddress& address,
                                        Clock::time_point now) const {
  std::vector<std::string> out;
  auto it = entries_.find(address);
  if (it == entries_.end()) return out;
  for (const auto& [name, expires] : it->second) {
    if (expires > now) out.push_back(name);
  }
  return out;
}

bool NameMap::resolved_to(const net::IpAddress& address, std::string_view name,
                          Clock::time_point now) const {
  auto it = entries_.find(address);
  if (it == entries_.end()) return false;
  auto n = it->second.find(name);
  return n != it->second.end() && n->second > now;
}

void NameMap::expire(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto& names = it->second;
    std::erase_if(names, [&](const auto& kv) { return kv.second <= now; });
    it = names.empty() ? entries_.erase(it) : std::next(it);
  }
}

std::vector<std::pair<net::IpAddress, std::vector<std::string>>> NameMap::entries(
    Clock::time_point now) const {
  std::vector<std::pair<net::IpAddress, std::vector<std::string>>> out;
  for (const auto& [address, names] : entries_) {
    std::vector<std::string> valid;
    for (const auto& [name, expires] : names)
      if (expires > now) valid.push_back(name);
    if (!valid.empty()) out.emplace_back(address, std::move(valid));
  }
  return out;
}

}  // namespace sbx::dns
