// egress — the transparent egress proxy's cores: the TLS ClientHello SNI and
// HTTP/1.x Host peekers (incremental, capped), the connection check
// (original destination + peeked name + policy + DNS name map -> verdict),
// the original destination, and the splice() relay for the supervisor's epoll loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dnsproxy/dnsproxy.hpp"
#include "netfilter/netfilter.hpp"

namespace sbx::egress {

// Bytes the proxy reads before it must decide (ClientHellos with post-quantum
// key shares are ~1.8 KiB; 16 KiB leaves room for large extensions).
inline constexpr std::size_t kPeekCap = std::size_t{16} * 1024;

enum class PeekStatus {
  need_more,       // valid so far, incomplete: read more (until cap or deadline)
  found,           // `name` is the SNI / Host (lower case, no port, no trailing dot)
  no_name,         // complete, but carries no server name / Host header
  wrong_protocol,  // not TLS (on a TLS port) / not HTTP/1.x (on port 80)
  malformed,       // the right protocol, but broken or ambiguous
  too_large,       // no decision within the byte cap
};
std::string_view to_string(PeekStatus status);

struct PeekResult {
  PeekStatus status = PeekStatus::need_more;
  std::string name;
  std::string error;  // why, for malformed / wrong_protocol
};

// Parses the bytes received so far (all of them, from the first) as TLS
// records carrying a ClientHello, possibly fragmented over several records
// and TCP segments. Stateless: call again with the grown buffer.
PeekResult parse_client_hello(std::span<const std::uint8_t> received, std::size_t cap = kPeekCap);
// Same for an HTTP/1.0 or 1.1 request head: exactly one Host header, CRLF
// line ends, no obs-fold, no CONNECT, absolute-form target must agree with Host.
PeekResult parse_http_host(std::span<const std::uint8_t> received, std::size_t cap = kPeekCap);

enum class Inspection { tls, http, opaque };

// Accumulates the bytes of one connection and re-runs the parser; the bytes
// are kept to be sent upstream first once the connection is allowed.
// A program that connects and sends nothing (or a byte a minute) must not
// hold a proxy slot: the loop closes the connection once expired().
inline constexpr std::chrono::milliseconds kPeekDeadline{5000};

class Peeker {
 public:
  explicit Peeker(Inspection kind, std::size_t cap = kPeekCap,
                  std::chrono::milliseconds deadline = kPeekDeadline,
                  dns::Clock::time_point start = dns::Clock::now())
      : kind_(kind), cap_(cap), until_(start + deadline) {}
  // Keeps every byte it is given (they go upstream first if the connection
  // is allowed): the caller reads at most room() at a time.
  PeekResult feed(std::span<const std::uint8_t> bytes);
  std::size_t room() const { return cap_ > buffer_.size() ? cap_ - buffer_.size() : 0; }
  bool expired(dns::Clock::time_point now) const { return now >= until_; }
  dns::Clock::time_point deadline() const { return until_; }
  const std::vector<std::uint8_t>& buffered() const { return buffer_; }
  std::vector<std::uint8_t> take_buffered() { return std::move(buffer_); }

 private:
  Inspection kind_;
  std::size_t cap_;
  dns::Clock::time_point until_;
  std::vector<std::uint8_t> buffer_;
};

struct Destination {
  net::IpAddress address;
  std::uint16_t port = 0;
  bool operator==(const Destination&) const = default;
};

// The destination the sandboxed program connected to: the accepted socket's
// own address (getsockname), since the egress listener of port P is bound to
// P on every address and every address is local to the sandbox netns.
std::optional<Destination> original_destination(int accepted_fd);

struct EgressPolicy {
  std::vector<std::uint16_t> allow_ports{80, 443};
  std::vector<std::uint16_t> opaque_ports;    // address check only (ssh 22, git 9418)
  std::vector<std::uint16_t> http_ports{80};  // Host peek; every other allowed port: SNI
  std::vector<net::Cidr> allow_cidrs;         // reachable without a DNS answer
  std::vector<net::Cidr> deny_cidrs = net::always_denied_cidrs();
  dns::DomainLookup names;  // the policy's domain patterns
  // Names the DNS filter resolved to an address (dns::NameMap::names).
  std::function<std::vector<std::string>(const net::IpAddress&)> resolved_names;
  // Second gate: for an address known only from DNS, the SNI/Host must be
  // one of the names that resolved to it (stops an allowed CDN IP being used
  // with another SNI). Off only for tests of the first gate.
  bool require_name_resolved_to_address = true;
};

Inspection inspection_for(const EgressPolicy& policy, std::uint16_t port);

struct EgressVerdict {
  bool allowed = false;
  // "allowed", "opaque_port", "port_not_allowed", "denied_address",
  // "address_not_resolved", "not_inspected", "no_name", "wrong_protocol",
  // "malformed", "too_large", "incomplete", "name_denied", "name_not_allowed",
  // "name_not_resolved_to_address".
  std::string reason;
  std::string name;  // the peeked name, or for opaque ports a resolved name
};

// Decides one accepted connection. `peeked` is null before peeking (and
// for opaque ports): then only the address gate is checked — call it at
// accept() to refuse early, and again with the peek result.
EgressVerdict check_connection(const EgressPolicy& policy, const Destination& destination,
                               const PeekResult* peeked);

// Closes with RST (SO_LINGER 0): the sandbox's connect() already succeeded,
// so an upstream failure must surface as ECONNRESET, not as a clean EOF.
void close_with_reset(int fd);
// The same for a socket that something else closes later (a SpliceRelay).
void reset_on_close(int fd);

// Relays two connected, non-blocking sockets with splice() through a pipe per
// direction (no copy to user space). Owns both fds. Level-triggered: after
// every pump() the caller sets each fd's epoll events to interest(fd).
// Bytes of enlarged relay pipes open in this process (all relays): at most
// 64 MiB, past which new relays keep the kernel's default 64 KiB pipes.
std::size_t relay_pipe_bytes();

class SpliceRelay {
 public:
  // `to_upstream_first` (e.g. the peeked ClientHello) is written upstream
  // before anything else is relayed.
  SpliceRelay(int client_fd, int upstream_fd, std::vector<std::uint8_t> to_upstream_first = {});
  ~SpliceRelay();
  SpliceRelay(const SpliceRelay&) = delete;
  SpliceRelay& operator=(const SpliceRelay&) = delete;

  // Moves what can be moved now, in both directions. Returns false when the
  // relay is finished (both directions closed, or an error: see error()).
  bool pump();
  std::uint32_t interest(int fd) const;  // EPOLLIN / EPOLLOUT for that fd
  int client_fd() const { return client_; }
  int upstream_fd() const { return upstream_; }
  std::uint64_t bytes_up() const { return up_.bytes; }      // client -> upstream
  std::uint64_t bytes_down() const { return down_.bytes; }  // upstream -> client
  const std::string& error() const { return error_; }
  bool finished() const { return finished_; }

 private:
  struct Direction {
    int from = -1, to = -1;
    int pipe_r = -1, pipe_w = -1;
    std::size_t pipe_charge = 0;  // what its enlarged pipe counts against the budget
    std::size_t in_pipe = 0;
    std::vector<std::uint8_t> prefix;  // written before splicing starts
    std::size_t prefix_sent = 0;
    bool eof = false;   // `from` reached EOF
    bool done = false;  // EOF and everything delivered, `to` shut down for writing
    bool blocked_read = false, blocked_write = false;
    std::uint64_t bytes = 0;
  };
  bool pump_direction(Direction& d);

  int client_ = -1, upstream_ = -1;
  Direction up_, down_;
  std::string error_;
  bool finished_ = false;
};

}  // namespace sbx::egress
