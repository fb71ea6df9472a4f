// The c-ares 1.18 upstream client, driven by the supervisor's epoll loop:
// c-ares tells us which sockets to watch (sock-state callback), we call
// ares_process_fd on readiness and on the timer from ares_timeout().
#include <ares.h>
#include <sys/time.h>

#include <mutex>

#include "dnsproxy/dnsproxy.hpp"
#include "sbx/error.hpp"

namespace sbx::dns {

struct UpstreamResolver::Impl {
  ares_channel channel = nullptr;
  SocketWatch watch;
  std::size_t pending = 0;
  std::size_t sent = 0;      // queries on the current sockets
  std::size_t renewals = 0;  // times the sockets were renewed
  int depth = 0;             // > 0 inside c-ares: a callback may resolve() again
  bool destroying = false;

  void renew_sockets();
};

namespace {

// Held while c-ares runs: the sockets are not renewed under it, even if a
// callback throws.
struct InCares {
  explicit InCares(int& d) : depth(d) { ++depth; }
  ~InCares() { --depth; }
  InCares(const InCares&) = delete;
  InCares& operator=(const InCares&) = delete;
  int& depth;
};

struct Pending {
  UpstreamResolver::Callback done;
  std::size_t* counter;
};

void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* impl = static_cast<UpstreamResolver::Impl*>(data);
  if (impl->watch) impl->watch(fd, readable != 0, writable != 0);
}

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  --*p->counter;
  UpstreamResult r;
  // c-ares reports NOERROR and NXDOMAIN as success with the raw answer;
  // SERVFAIL/REFUSED/NOTIMP from every server, time-outs and network errors
  // arrive as a status without a buffer: the client then gets SERVFAIL.
  if (status == ARES_SUCCESS && abuf && alen > 0) {
    r.ok = true;
    r.answer.assign(abuf, abuf + alen);
  } else {
    r.error = ares_strerror(status);
  }
  if (p->done) p->done(std::move(r));
}

}  // namespace

// Once the sockets have carried kQueriesPerSocket queries and nothing is
// pending or running, they are closed by setting the channel's own servers
// again (c-ares 1.18 refuses that with a query pending): the next query
// opens a new socket with a new source port. The channel itself (its ID key,
// seeded once from /dev/urandom at start) is kept: a channel made at run
// time could meet an fd shortage the sandbox arranged, and c-ares 1.18 then
// seeds the key with rand() and falls back to 127.0.0.1 (CVE-2023-31147).
void UpstreamResolver::Impl::renew_sockets() {
  if (sent < kQueriesPerSocket || pending != 0 || depth > 0) return;
  ares_addr_port_node* servers = nullptr;
  if (ares_get_servers_ports(channel, &servers) != ARES_SUCCESS) return;
  int st = ares_set_servers_ports(channel, servers);  // closes the sockets
  ares_free_data(servers);
  if (st != ARES_SUCCESS) return;
  sent = 0;
  ++renewals;
}

UpstreamResolver::UpstreamResolver(UpstreamConfig config, SocketWatch watch)
    : impl_(std::make_unique<Impl>()) {
  static std::once_flag once;
  static int init_status = ARES_SUCCESS;
  std::call_once(once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    throw Error(std::string("cannot initialise c-ares: ") + ares_strerror(init_status));
  }
  impl_->watch = std::move(watch);
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS |
             ARES_OPT_TRIES;
  opts.sock_state_cb = on_sock_state;
  opts.sock_state_cb_data = impl_.get();
  // EDNS: without it c-ares 1.18 treats any UDP answer over 512 bytes as
  // truncated and retries over TCP. NOSEARCH/NOALIASES: never rewrite names.
  // STAYOPEN: the socket is kept between queries (renew_sockets).
  opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN;
  opts.ednspsz = kEdnsPayload;
  opts.timeout = static_cast<int>(config.timeout.count());
  opts.tries = config.tries;
  int st = ares_init_options(&impl_->channel, &opts, mask);
  if (st != ARES_SUCCESS) {
    throw Error(std::string("cannot create the DNS upstream client: ") + ares_strerror(st),
                "check /etc/resolv.conf or set network.dns_upstream");
  }
  if (!config.servers.empty()) {
    std::string csv;
    for (const auto& s : config.servers) csv += (csv.empty() ? "" : ",") + s;
    st = ares_set_servers_ports_csv(impl_->channel, csv.c_str());
    if (st != ARES_SUCCESS) {
      ares_destroy(impl_->channel);
      throw Error("invalid network.dns_upstream '" + csv + "': " + ares_strerror(st),
                  "write servers as ip, ip:port or [ipv6]:port");
    }
  }
}

UpstreamResolver::~UpstreamResolver() {
  // Calls every pending callback with ARES_EDESTRUCTION (answered SERVFAIL);
  // a callback resolving again is answered at once.
  impl_->destroying = true;
  ++impl_->depth;
  if (impl_->channel) ares_destroy(impl_->channel);
}

void UpstreamResolver::resolve(std::string_view name, std::uint16_t qtype, Callback done) {
  const auto fail = [&done](std::string error) {
    UpstreamResult r;
    r.error = std::move(error);
    if (done) done(std::move(r));
  };
  if (impl_->destroying) return fail("the DNS filter is shutting down");
  unsigned char* buf = nullptr;
  int len = 0;
  std::string n(name);
  // A fresh, normalised query: ares_send replaces the ID anyway, and 1.18's
  // EDNS fallback assumes the OPT record is the one c-ares wrote.
  int st = ares_create_query(n.c_str(), kClassIn, qtype, 0, 1, &buf, &len, kEdnsPayload);
  if (st != ARES_SUCCESS)
    return fail(std::string("cannot build the upstream query: ") + ares_strerror(st));
  impl_->renew_sockets();
  auto* p = new Pending{std::move(done), &impl_->pending};
  ++impl_->pending;
  ++impl_->sent;
  {
    InCares in(impl_->depth);
    ares_send(impl_->channel, buf, len, on_answer, p);
  }
  ares_free_string(buf);
}

void UpstreamResolver::process(int fd, bool readable, bool writable) {
  {
    InCares in(impl_->depth);
    ares_process_fd(impl_->channel, readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
  }
  // After the answer went out rather than before the next query.
  impl_->renew_sockets();
}

std::optional<std::chrono::milliseconds> UpstreamResolver::next_timeout() const {
  timeval tv{};
  timeval* t = ares_timeout(impl_->channel, nullptr, &tv);
  if (!t) return std::nullopt;
  return std::chrono::milliseconds(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
}

void UpstreamResolver::process_timeouts() {
  {
    InCares in(impl_->depth);
    ares_process_fd(impl_->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
  impl_->renew_sockets();
}

std::size_t UpstreamResolver::pending() const {
  return impl_->pending;
}

std::size_t UpstreamResolver::socket_renewals() const {
  return impl_->renewals;
}

}  // namespace sbx::dns
