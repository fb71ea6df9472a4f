// Network mode "filtered", both sides of clone (docs/network.md).
//
// Sandbox init (pid 1, all capabilities of U1, which owns the netns) brings
// lo up, adds `local default dev lo` (IPv4 + IPv6), creates the sockets the
// supervisor needs INSIDE the netns and passes them out over the control
// channel (SCM_RIGHTS): two NETLINK_NETFILTER sockets (ruleset + set updates,
// NFLOG), the DNS filter's UDP+TCP sockets on port 53 of every IPv4 and
// IPv6 address, one egress listener per allowed port P on every address
// (one dual-stack socket each; a connection to an allowed address:P lands
// there as it is, no NAT), and one listener per host_ports entry on
// 127.0.0.1:N that is not an allowed port (the egress listener serves
// 127.0.0.1:P too). All carry the SO_MARK the ruleset accepts
// (net::kOwnSocketMark). It then waits until the supervisor has loaded the
// ruleset (through the passed socket) before it goes on, so the command
// never runs unfiltered.
//
// The supervisor (FilteredNetwork) serves all of them from its epoll loop:
// DNS filter, egress proxy, NFLOG events, --publish and host ports.
#pragma once

#include <sbx/sbx.hpp>

#include <cstdint>
#include <memory>

#include "runtime/unique_fd.hpp"

namespace sbx::runtime {

// What a socket passed out by init is for (Message::value = role << 16 | port).
enum class NetSocket : int {
  netfilter = 1,  // NETLINK_NETFILTER: ruleset, allow-set updates
  nflog = 2,      // NETLINK_NETFILTER: NFLOG group of blocked packets
  dns_udp4 = 3,
  dns_tcp4 = 4,
  dns_udp6 = 5,
  dns_tcp6 = 6,
  egress4 = 7,
  egress6 = 8,
  host_port = 9,      // listener on 127.0.0.1:port inside -> host 127.0.0.1:port
  sandbox_conn = 10,  // an unconnected TCP socket of the netns (for --publish)
};

inline constexpr std::uint16_t kFilterDnsPort = 53;
inline constexpr std::uint16_t kNflogGroup = 7;
// Bytes on the control channel, supervisor -> init.
// The ruleset is loaded (filtered) and the controller has started: init may
// start the worker (LaunchPlan::wait_for_go).
inline constexpr char kGoOn = 'N';
inline constexpr char kSocketRequest = 'S';  // pass out one TCP socket (publish)

class FilteredNetwork;

// Supervisor, right after releasing init: receives init's sockets over the
// control channel, loads the ruleset and starts the services (start()).
// Throws sbx::Error (init's own failure, or the filter's). send_go then
// lets init go on.
void connect_filtered_network(int control_fd, FilteredNetwork& network);
void send_go(int control_fd);

class FilteredNetwork {
 public:
  // Before clone: checks the policy's network part (CIDRs, upstreams, domain
  // patterns) and opens the host-side --publish listeners. Throws sbx::Error.
  FilteredNetwork(const Policy& policy, const RunOptions& options);
  ~FilteredNetwork();
  FilteredNetwork(const FilteredNetwork&) = delete;
  FilteredNetwork& operator=(const FilteredNetwork&) = delete;

  // A socket init passed out.
  void add_socket(NetSocket role, std::uint16_t port, UniqueFd fd);
  // After init passed every socket: loads the ruleset into the sandbox netns
  // (acked), binds NFLOG, starts the DNS filter and the proxy. Throws
  // sbx::Error with cause and fix (e.g. no nf_tables). `control_fd` is used
  // later to ask init for sockets of the netns (--publish).
  void start(int control_fd);
  // Level-triggered epoll fd for the supervisor's loop; call on_ready().
  int fd() const;
  void on_ready();
  // A socket of the sandbox netns (--publish) that this process had no fd
  // for: counted with the connections lost for lack of fds (open_files).
  void note_fd_loss();
  // Writes the summaries of what was counted instead of reported one by
  // one (DNS refusals by a limit, blocked packets, refused connections).
  // `sandbox_gone`: first reads what the sandbox left queued (NFLOG, DNS
  // queries it never waited for: counted as "unanswered"); only then, since
  // a live sandbox could keep those queues full.
  void flush_events(bool sandbox_gone);

  // Live control (docs/control.md): the network policy in force with its
  // live changes and the resolved addresses; and a change, applied at once
  // (DNS filter overlay, allowc/allow sets, egress proxy). Throws sbx::Error.
  nlohmann::json describe() const;
  nlohmann::json change(const NetworkChange& change);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sbx::runtime
