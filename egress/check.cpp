// check_connection: the egress proxy's decision for one accepted
// connection, and where it was going.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "egress/egress.hpp"

namespace sbx::egress {

std::optional<Destination> original_destination(int fd) {
  // The listener is bound to port P of every address and every address is
  // local to the netns: the accepted socket's own address is the one the
  // program connected to (no NAT in between).
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return std::nullopt;
  if (local.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(local);
    return Destination{net::IpAddress::from_v4_bytes(&a.sin_addr), ntohs(a.sin_port)};
  }
  if (local.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(local);
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr))
      return Destination{net::IpAddress::from_v4_bytes(&a.sin6_addr.s6_addr[12]),
                         ntohs(a.sin6_port)};
    return Destination{net::IpAddress::from_v6_bytes(&a.sin6_addr), ntohs(a.sin6_port)};
  }
  return std::nullopt;
}

Inspection inspection_for(const EgressPolicy& p, std::uint16_t port) {
  auto has = [](const std::vector<std::uint16_t>& v, std::uint16_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (has(p.opaque_ports, port)) return Inspection::opaque;
  if (has(p.http_ports, port)) return Inspection::http;
  return Inspection::tls;
}

EgressVerdict check_connection(const EgressPolicy& p, const Destination& d,
                               const PeekResult* peeked) {
  auto deny = [](std::string reason, std::string name = {}) {
    return EgressVerdict{false, std::move(reason), std::move(name)};
  };
  if (std::find(p.allow_ports.begin(), p.allow_ports.end(), d.port) == p.allow_ports.end()) {
    return deny("port_not_allowed");
  }
  // The ruleset rejects these already; checked again because the proxy is
  // the gate that connects from the host (where 127.0.0.1 is the host's).
  if (net::denied(p.deny_cidrs, d.address)) return deny("denied_address");
  bool by_cidr = net::in_any(p.allow_cidrs, d.address);
  std::vector<std::string> resolved;
  if (p.resolved_names) resolved = p.resolved_names(d.address);
  if (!by_cidr && resolved.empty()) return deny("address_not_resolved");

  Inspection kind = inspection_for(p, d.port);
  if (kind == Inspection::opaque) {
    return EgressVerdict{true, "opaque_port", resolved.empty() ? std::string() : resolved.front()};
  }
  if (!peeked) return deny("not_inspected");
  switch (peeked->status) {
    case PeekStatus::found:
      break;
    case PeekStatus::need_more:
      return deny("incomplete");
    case PeekStatus::no_name:
      return deny("no_name");
    case PeekStatus::wrong_protocol:
      return deny("wrong_protocol");
    case PeekStatus::malformed:
      return deny("malformed");
    case PeekStatus::too_large:
      return deny("too_large");
  }
  const std::string& name = peeked->name;
  // An IP literal as SNI/Host names no domain: it is acceptable only as the
  // very address connected to, and only when allow_cidrs admits that address.
  if (auto literal = net::IpAddress::parse(name)) {
    if (by_cidr && *literal == d.address) return EgressVerdict{true, "allowed", name};
    return deny("name_not_allowed", name);
  }
  dns::DomainMatch m;
  if (p.names) m = p.names(name);
  if (m.verdict == dns::DomainVerdict::deny) return deny("name_denied", name);
  if (m.verdict != dns::DomainVerdict::allow) return deny("name_not_allowed", name);
  if (!by_cidr && p.require_name_resolved_to_address &&
      std::find(resolved.begin(), resolved.end(), name) == resolved.end()) {
    return deny("name_not_resolved_to_address", name);
  }
  return EgressVerdict{true, "allowed", name};
}

}  // namespace sbx::egress
