// The c-ares 1.18 upstream client, driven by the supervisor's epoll loop:
// c-ares tells us which sockets to watch (sock-state callback), we call
// ares_process_fd on readiness and on the timer from ares_timeout().
#include <ares.h>
#include <sys/time.h>

#include <list>
#include <map>
#include <mutex>

#include "dnsproxy/dnsproxy.hpp"
#include "sbx/error.hpp"

namespace sbx::dns {

struct UpstreamChannel {
  UpstreamResolver::Impl* impl = nullptr;
  ares_channel channel = nullptr;
  std::size_t sent = 0;
  std::size_t pending = 0;
};

struct UpstreamResolver::Impl {
  UpstreamConfig config;
  SocketWatch watch;
  std::size_t pending = 0;
  // back() takes new queries; the others only finish theirs.
  std::list<std::unique_ptr<UpstreamChannel>> channels;
  std::map<int, UpstreamChannel*> by_fd;
  int depth = 0;  // > 0 inside c-ares: a callback may resolve() again
  bool destroying = false;

  UpstreamChannel& current() { return *channels.back(); }
  void open_channel();
  bool renew_sockets(UpstreamChannel& ch);
  void tidy();
};

namespace {

// Held while c-ares runs: no channel is destroyed under it, even if a
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
  UpstreamChannel* channel;
};

void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* ch = static_cast<UpstreamChannel*>(data);
  if (readable || writable) {
    ch->impl->by_fd[fd] = ch;
  } else {
    ch->impl->by_fd.erase(fd);
  }
  if (ch->impl->watch) ch->impl->watch(fd, readable != 0, writable != 0);
}

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  --p->channel->pending;
  --p->channel->impl->pending;
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

void UpstreamResolver::Impl::open_channel() {
  auto ch = std::make_unique<UpstreamChannel>();
  ch->impl = this;
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS |
             ARES_OPT_TRIES;
  opts.sock_state_cb = on_sock_state;
  opts.sock_state_cb_data = ch.get();
  // EDNS: without it c-ares 1.18 treats any UDP answer over 512 bytes as
  // truncated and retries over TCP. NOSEARCH/NOALIASES: never rewrite names.
  opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN;
  opts.ednspsz = kEdnsPayload;
  opts.timeout = static_cast<int>(config.timeout.count());
  opts.tries = config.tries;
  int st = ares_init_options(&ch->channel, &opts, mask);
  if (st != ARES_SUCCESS) {
    throw Error(std::string("cannot create the DNS upstream client: ") + ares_strerror(st),
                "check /etc/resolv.conf or set network.dns_upstream");
  }
  if (!config.servers.empty()) {
    std::string csv;
    for (const auto& s : config.servers) csv += (csv.empty() ? "" : ",") + s;
    st = ares_set_servers_ports_csv(ch->channel, csv.c_str());
    if (st != ARES_SUCCESS) {
      ares_destroy(ch->channel);
      throw Error("invalid network.dns_upstream '" + csv + "': " + ares_strerror(st),
                  "write servers as ip, ip:port or [ipv6]:port");
    }
  }
  channels.push_back(std::move(ch));
}

// An idle channel's sockets are closed by setting its servers again (c-ares
// 1.18 allows it only with no query pending): its next query opens a new
// socket, with a new source port, and no new channel is needed. Cheaper than
// a channel (ares_init_options reads resolv.conf and seeds its IDs).
bool UpstreamResolver::Impl::renew_sockets(UpstreamChannel& ch) {
  if (ch.pending != 0 || depth > 0) return false;
  ares_addr_port_node* servers = nullptr;
  if (ares_get_servers_ports(ch.channel, &servers) != ARES_SUCCESS) return false;
  int st = ares_set_servers_ports(ch.channel, servers);
  ares_free_data(servers);
  if (st != ARES_SUCCESS) return false;
  ch.sent = 0;
  return true;
}

// Not while c-ares runs (a callback resolving again): only once no
// ares_process_fd or ares_send of ours is on the stack. Drained old channels
// are destroyed; the current one gets new sockets once it has carried its
// share, here, after the answer went out, rather than before the next query.
void UpstreamResolver::Impl::tidy() {
  if (depth > 0) return;
  for (auto it = channels.begin(); std::next(it) != channels.end();) {
    if ((*it)->pending == 0) {
      ares_destroy((*it)->channel);  // closes its socket (sock-state callback first)
      it = channels.erase(it);
    } else {
      ++it;
    }
  }
  if (current().sent >= kQueriesPerChannel) renew_sockets(current());
}

UpstreamResolver::UpstreamResolver(UpstreamConfig config, SocketWatch watch)
    : impl_(std::make_unique<Impl>()) {
  static std::once_flag once;
  static int init_status = ARES_SUCCESS;
  std::call_once(once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    throw Error(std::string("cannot initialise c-ares: ") + ares_strerror(init_status));
  }
  impl_->config = std::move(config);
  impl_->watch = std::move(watch);
  impl_->open_channel();
}

UpstreamResolver::~UpstreamResolver() {
  // Calls every pending callback with ARES_EDESTRUCTION (answered SERVFAIL);
  // a callback resolving again is answered at once, and nothing is tidied.
  impl_->destroying = true;
  ++impl_->depth;
  for (auto& ch : impl_->channels) ares_destroy(ch->channel);
}

void UpstreamResolver::resolve(std::string_view name, std::uint16_t qtype, Callback done) {
  unsigned char* buf = nullptr;
  int len = 0;
  std::string n(name);
  // A fresh, normalised query: ares_send replaces the ID anyway, and 1.18's
  // EDNS fallback assumes the OPT record is the one c-ares wrote.
  int st = ares_create_query(n.c_str(), kClassIn, qtype, 0, 1, &buf, &len, kEdnsPayload);
  if (st != ARES_SUCCESS || impl_->destroying) {
    if (buf) ares_free_string(buf);
    UpstreamResult r;
    r.error = st != ARES_SUCCESS
                  ? std::string("cannot build the upstream query: ") + ares_strerror(st)
                  : std::string("the DNS filter is shutting down");
    if (done) done(std::move(r));
    return;
  }
  // A new channel only while the current one waits for an answer; bounded:
  // while kMaxChannels wait, the newest takes more.
  if (impl_->current().sent >= kQueriesPerChannel && !impl_->renew_sockets(impl_->current()) &&
      impl_->channels.size() < kMaxChannels) {
    try {
      impl_->open_channel();
    } catch (const Error& e) {
      ares_free_string(buf);
      UpstreamResult r;
      r.error = e.what();
      if (done) done(std::move(r));
      return;
    }
  }
  UpstreamChannel& ch = impl_->current();
  auto* p = new Pending{std::move(done), &ch};
  ++ch.sent;
  ++ch.pending;
  ++impl_->pending;
  {
    InCares in(impl_->depth);
    ares_send(ch.channel, buf, len, on_answer, p);
  }
  ares_free_string(buf);
  impl_->tidy();
}

void UpstreamResolver::process(int fd, bool readable, bool writable) {
  auto it = impl_->by_fd.find(fd);
  if (it == impl_->by_fd.end()) return;
  {
    InCares in(impl_->depth);
    ares_process_fd(it->second->channel, readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
  }
  impl_->tidy();
}

std::optional<std::chrono::milliseconds> UpstreamResolver::next_timeout() const {
  std::optional<std::chrono::milliseconds> next;
  for (const auto& ch : impl_->channels) {
    timeval tv{};
    timeval* t = ares_timeout(ch->channel, nullptr, &tv);
    if (!t) continue;
    std::chrono::milliseconds left(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
    if (!next || left < *next) next = left;
  }
  return next;
}

void UpstreamResolver::process_timeouts() {
  {
    InCares in(impl_->depth);
    for (auto& ch : impl_->channels) ares_process_fd(ch->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
  impl_->tidy();
}

std::size_t UpstreamResolver::pending() const {
  return impl_->pending;
}

std::size_t UpstreamResolver::channels() const {
  return impl_->channels.size();
}

}  // namespace sbx::dns
