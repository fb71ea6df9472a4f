// netfilter — the sandbox netns's packet filter, built without any binary:
// IP address/CIDR values, the nftables ruleset as ONE libnftnl batch, allow-set
// updates (with the pre-6.12 timeout refresh), acked sends over a netlink fd,
// the NFLOG reader, and the netns's loopback/route setup over rtnetlink.
//
// Everything here that talks to the kernel takes a file descriptor: the
// sockets are opened inside the sandbox's netns (by the launcher) and used by
// the supervisor from the host netns (passed out with SCM_RIGHTS). The one
// exception is the route lookup's socket: the supervisor opens it in its own
// netns, whose routes the egress proxy's connections take.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

namespace sbx::net {

// An IPv4 or IPv6 address in network byte order. IPv4 uses bytes[0..3].
struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6; 0 = empty
  std::array<std::uint8_t, 16> bytes{};

  static std::optional<IpAddress> parse(std::string_view text);  // "1.2.3.4", "::1"
  static IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
  static IpAddress from_v4_bytes(const void* four_bytes);
  static IpAddress from_v6_bytes(const void* sixteen_bytes);
  std::size_t size() const { return family == AF_INET6 ? 16 : 4; }
  std::string str() const;
  // 127.0.0.0/8 or ::1.
  bool is_loopback() const {
    if (family == AF_INET) return bytes[0] == 127;
    static constexpr std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0,
                                                             0, 0, 0, 0, 0, 0, 0, 1};
    return family == AF_INET6 && bytes == kLoopback6;
  }
  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress address;  // host bits are cleared by parse()
  std::uint8_t prefix = 0;

  // "10.0.0.0/8", "fe80::/10"; a bare address is a /32 or /128. Host bits set
  // in the address are rejected (ambiguous intent): returns nullopt.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
  std::string str() const;
  bool operator==(const Cidr&) const = default;
};

// Ranges a sandbox never reaches through the filter, whatever the policy says:
// this-network, loopback, RFC 1918, CGNAT (RFC 6598), link-local incl. the
// cloud metadata address 169.254.169.254, multicast, reserved, broadcast;
// IPv6 unspecified, loopback, IPv4-mapped and -compatible, local-use NAT64,
// Teredo, ULA (incl. fd00:ec2::254), site-local, link-local, multicast. DNS
// answers inside them are dropped (rebinding).
const std::vector<Cidr>& always_denied_cidrs();
bool in_any(std::span<const Cidr> ranges, const IpAddress& a);
// The IPv4 address an IPv6 address carries to an IPv4 host: the well-known
// NAT64 prefix 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056).
std::optional<IpAddress> embedded_ipv4(const IpAddress& a);
// `a` is in `deny`, or carries an IPv4 address that is (64:ff9b::a9fe:a9fe
// is 169.254.169.254 behind a NAT64 gateway). The check for every address a
// sandbox asks for; in_any alone is for allow lists.
bool denied(std::span<const Cidr> deny, const IpAddress& a);
// always_denied_cidrs() plus the policy's deny_cidrs. Throws sbx::Error on a
// malformed entry (the policy is validated earlier; this is the last gate).
std::vector<Cidr> effective_deny_cidrs(std::span<const std::string> policy_deny_cidrs);

// ---------------------------------------------------------------------------
// Ruleset

// The SO_MARK sandbox init puts on the sockets it makes for sbx inside the
// netns (DNS filter, egress listeners): their packets are accepted as they
// are. Only a process with CAP_NET_ADMIN or CAP_NET_RAW over the netns can
// set a mark; the sandboxed program has neither (tested).
inline constexpr std::uint32_t kOwnSocketMark = 0x5b580001;

struct RulesetConfig {
  std::string table = "sbx";                        // table inet <table>
  std::uint16_t nflog_group = 7;                    // blocked packets are logged here
  std::vector<std::uint16_t> allow_ports{80, 443};  // TCP ports reachable on allowed addresses
  std::vector<std::uint16_t> host_ports;            // served on 127.0.0.1 (network.host_ports)
  std::vector<Cidr> deny_cidrs = always_denied_cidrs();
  // network.allow_cidrs: reachable on allow_ports without a DNS answer (still
  // through the egress proxy). Held in interval sets allowc4/allowc6.
  std::vector<Cidr> allow_cidrs;
};

// Names used in the ruleset (sets and chains), for tests and debugging.
inline constexpr const char* kSetAllow4 = "allow4";
inline constexpr const char* kSetAllow6 = "allow6";
inline constexpr const char* kSetDeny4 = "deny4";
inline constexpr const char* kSetDeny6 = "deny6";
inline constexpr const char* kSetPorts = "ports";
inline constexpr const char* kSetLoopbackPorts = "lo_ports";
inline constexpr const char* kSetLoopbackHostPorts = "lo_host_ports";
inline constexpr const char* kSetAllowCidr4 = "allowc4";
inline constexpr const char* kSetAllowCidr6 = "allowc6";
inline constexpr const char* kChainFilter = "filter_out";
inline constexpr const char* kLogPrefixBlocked = "sbx-blocked ";
inline constexpr const char* kLogPrefixDenied = "sbx-denied ";

// A serialised nfnetlink batch (BEGIN ... END), ready for one sendmsg().
struct Batch {
  std::vector<std::uint8_t> bytes;
  std::uint32_t first_seq = 0;
  std::uint32_t acked_messages = 0;  // messages that carry NLM_F_ACK
};

// The complete ruleset in one transaction: table inet sbx with sets
// allow4/allow6 (timeout), allowc4/allowc6 and deny4/deny6 (interval),
// ports and lo_ports; one chain, filter_out (output, priority 0, policy
// drop). No nat and no conntrack: see docs/network.md for the rule list and
// why each rule is there.
Batch build_ruleset_batch(const RulesetConfig& config, std::uint32_t seq);

// The TCP ports that get an egress listener on every address of the netns:
// allow_ports without duplicates and without 53 (always the DNS filter's),
// sorted.
std::vector<std::uint16_t> egress_listener_ports(std::span<const std::uint16_t> allow_ports);

struct AllowElement {
  IpAddress address;
  std::chrono::milliseconds timeout{0};
};
// Adds (or refreshes) addresses in allow4/allow6 in one transaction. With
// refresh=true each element is sent as add, delete, add: before Linux 6.12 a
// plain re-add keeps the old expiry (commit 4201f3938914); the transaction is
// atomic, so the element is never missing.
Batch build_allow_batch(const std::string& table, std::span<const AllowElement> elements,
                        std::uint32_t seq, bool refresh = true);
Batch build_delete_allow_batch(const std::string& table, std::span<const IpAddress> addresses,
                               std::uint32_t seq);
// Replaces the contents of allowc4/allowc6 (network.allow_cidrs) in one
// transaction: live allow/deny of a range (sbx network allow NAME --cidr).
Batch build_replace_allow_cidrs_batch(const std::string& table, std::span<const Cidr> cidrs,
                                      std::uint32_t seq);

// Sends the batch over a NETLINK_NETFILTER socket and waits until the kernel
// acknowledged every message (the transaction is committed then: an element
// is live when this returns). Throws sbx::Error with the kernel's errno and
// the failing message on error or after `deadline` without an answer.
void send_batch(int netlink_fd, const Batch& batch,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(2000));

// Opens a NETLINK_NETFILTER socket in the caller's netns (SOCK_CLOEXEC).
int open_netfilter_socket();

// ---------------------------------------------------------------------------
// NFLOG

struct LoggedPacket {
  std::string prefix;         // "sbx-blocked " / "sbx-denied "
  std::uint8_t protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, ...
  IpAddress source;
  IpAddress destination;
  std::uint16_t destination_port = 0;  // TCP/UDP only, else 0
};

// Messages that bind `fd` to NFLOG group `group` with packet copy (range 128).
std::vector<std::uint8_t> build_nflog_bind(std::uint16_t group, std::uint32_t seq);
// Binds and waits for the kernel's acks. Throws sbx::Error.
void nflog_bind(int netlink_fd, std::uint16_t group);
// Parses one recv() buffer of NFULNL_MSG_PACKET messages. Malformed messages
// and packets are skipped (never trusted further than their lengths).
std::vector<LoggedPacket> parse_nflog(std::span<const std::uint8_t> buffer);

// ---------------------------------------------------------------------------
// Netns plumbing (call inside the sandbox netns, needs CAP_NET_ADMIN there)

// Sets lo up and adds `local default dev lo` for IPv4 and IPv6: every
// destination is then local to the netns, so any connect() reaches the
// ruleset (and is accepted or rejected) instead of failing with ENETUNREACH.
// Throws sbx::Error.
void configure_netns_routes();

// ---------------------------------------------------------------------------
// Route lookup (the caller's netns: the supervisor's, where the egress proxy
// connects from)

// Opens a NETLINK_ROUTE socket in the caller's netns (SOCK_CLOEXEC), for
// lookup_route. Throws sbx::Error.
int open_route_socket();

// The kernel's route to one address, as `ip route get ADDRESS` shows it.
struct Route {
  // 0: a route was found, of `type`. ENETUNREACH or EHOSTUNREACH: there is
  // none (a connect() fails with that error).
  int error = 0;
  std::uint8_t type = 0;  // rtm_type: RTN_UNICAST, RTN_LOCAL, ...
  // The address is the netns's own: a local, broadcast, anycast or multicast
  // route (a connection to it stays on this host).
  bool local() const;
};

// Asks the kernel (RTM_GETROUTE with RTA_DST) how it routes a connection to
// `destination` from the socket's netns now: its rules and tables, every
// interface's addresses. Throws sbx::Error when the lookup itself fails (the
// socket, no answer within `deadline`, an answer that is not a route, any
// error other than no route): a caller deciding on it must refuse then.
Route lookup_route(int route_fd, const IpAddress& destination,
                   std::chrono::milliseconds deadline = std::chrono::milliseconds(1000));

// ---------------------------------------------------------------------------
// Listeners the sandbox connects to (egress proxy, DNS over TCP, ports)

// accept4 (non-blocking, close-on-exec) that does not spin when the process
// is out of file descriptors: accept then fails with EMFILE, the backlog never
// empties, and a level-triggered epoll reports the listener ready again at
// once. A descriptor kept in reserve is given up to take each waiting
// connection and reset it (the client sees ECONNRESET), then taken back.
class Acceptor {
 public:
  Acceptor();
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;
  // A connected fd, or -1 when none is waiting (or on another error).
  int accept(int listener);
  std::size_t shed() const { return shed_; }  // connections reset for lack of fds

 private:
  int reserve_ = -1;
  std::size_t shed_ = 0;
};

}  // namespace sbx::net
