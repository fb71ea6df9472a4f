// Equivalence test of sbx's libmnl implementation (deps/mnl/mnl.c, built a
// second time for this test with every symbol prefixed "sbxmnl_") against the
// system libmnl that this test binary links. Every scenario runs once per
// implementation and records a trace (bytes, return values, errno values,
// offsets); the traces must be identical. The one intended difference:
// mnl_attr_put zero-fills the alignment padding, libmnl 1.0.4 leaves the
// buffer's old bytes there (checked explicitly below).
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#define SBX_MNL_FUNCS(X)        \
  X(mnl_attr_get_len)           \
  X(mnl_attr_get_payload)       \
  X(mnl_attr_get_payload_len)   \
  X(mnl_attr_get_str)           \
  X(mnl_attr_get_type)          \
  X(mnl_attr_get_u16)           \
  X(mnl_attr_get_u32)           \
  X(mnl_attr_get_u64)           \
  X(mnl_attr_get_u8)            \
  X(mnl_attr_nest_end)          \
  X(mnl_attr_nest_start)        \
  X(mnl_attr_next)              \
  X(mnl_attr_ok)                \
  X(mnl_attr_parse)             \
  X(mnl_attr_parse_nested)      \
  X(mnl_attr_put)               \
  X(mnl_attr_put_str)           \
  X(mnl_attr_put_strz)          \
  X(mnl_attr_put_u16)           \
  X(mnl_attr_put_u32)           \
  X(mnl_attr_put_u64)           \
  X(mnl_attr_put_u8)            \
  X(mnl_attr_type_valid)        \
  X(mnl_attr_validate)          \
  X(mnl_cb_run)                 \
  X(mnl_nlmsg_batch_current)    \
  X(mnl_nlmsg_batch_head)       \
  X(mnl_nlmsg_batch_is_empty)   \
  X(mnl_nlmsg_batch_next)       \
  X(mnl_nlmsg_batch_reset)      \
  X(mnl_nlmsg_batch_size)       \
  X(mnl_nlmsg_batch_start)      \
  X(mnl_nlmsg_batch_stop)       \
  X(mnl_nlmsg_get_payload)      \
  X(mnl_nlmsg_next)             \
  X(mnl_nlmsg_ok)               \
  X(mnl_nlmsg_portid_ok)        \
  X(mnl_nlmsg_put_extra_header) \
  X(mnl_nlmsg_put_header)       \
  X(mnl_nlmsg_seq_ok)           \
  X(mnl_socket_bind)            \
  X(mnl_socket_close)           \
  X(mnl_socket_get_fd)          \
  X(mnl_socket_get_portid)      \
  X(mnl_socket_open)            \
  X(mnl_socket_recvfrom)        \
  X(mnl_socket_sendto)

// sbx's implementation under its test-only names: same types as libmnl.h.
#define SBX_MNL_DECLARE(n) extern "C" decltype(::n) sbxmnl_##n;
SBX_MNL_FUNCS(SBX_MNL_DECLARE)

namespace {

struct Mnl {
  const char* name;
#define SBX_MNL_MEMBER(n) decltype(&::n) n;
  SBX_MNL_FUNCS(SBX_MNL_MEMBER)
};

const Mnl kRef{"libmnl",
#define SBX_MNL_REF(n) &::n,
               SBX_MNL_FUNCS(SBX_MNL_REF)};
const Mnl kOurs{"sbx",
#define SBX_MNL_OURS(n) &::sbxmnl_##n,
                SBX_MNL_FUNCS(SBX_MNL_OURS)};

constexpr int kErrnoSentinel = 9999;

// A trace: what a scenario observed, as text (diffs are readable in Catch's output).
struct Trace {
  std::ostringstream out;
  template <typename T>
  Trace& operator<<(const T& v) {
    out << v;
    return *this;
  }
  void bytes(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    static const char* hex = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) out << hex[b[i] >> 4] << hex[b[i] & 15];
    out << '\n';
  }
  std::string str() const { return out.str(); }
};

long off(const void* base, const void* p) {
  return static_cast<const char*>(p) - static_cast<const char*>(base);
}

// Builds one message that uses every putter; returns the message bytes.
std::vector<uint8_t> build_message(const Mnl& m, uint8_t fill, Trace& t) {
  alignas(8) static uint8_t buf[1024];
  memset(buf, fill, sizeof(buf));
  nlmsghdr* nlh = m.mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = 0x1234;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 77;
  void* extra = m.mnl_nlmsg_put_extra_header(nlh, 5);
  memset(extra, 0x5a, 5);
  t << "extra@" << off(buf, extra) << " len " << nlh->nlmsg_len << '\n';
  t << "payload@" << off(buf, m.mnl_nlmsg_get_payload(nlh)) << '\n';
  m.mnl_attr_put_u8(nlh, 1, 0xab);
  m.mnl_attr_put_u16(nlh, 2, 0xbeef);
  m.mnl_attr_put_u32(nlh, 3, 0xdeadbeef);
  m.mnl_attr_put_u64(nlh, 4, 0x0123456789abcdefULL);
  const char raw[] = "0123456789";
  for (size_t len = 0; len <= 9; ++len)
    m.mnl_attr_put(nlh, static_cast<uint16_t>(10 + len), len, raw);
  m.mnl_attr_put_str(nlh, 20, "abc");
  m.mnl_attr_put_str(nlh, 21, "abcd");
  m.mnl_attr_put_str(nlh, 22, "");
  m.mnl_attr_put_strz(nlh, 23, "abc");
  m.mnl_attr_put_strz(nlh, 24, "abcd");
  m.mnl_attr_put_strz(nlh, 25, "");
  nlattr* outer = m.mnl_attr_nest_start(nlh, 30);
  t << "outer@" << off(buf, outer) << '\n';
  m.mnl_attr_put_u32(nlh, 1, 7);
  nlattr* inner = m.mnl_attr_nest_start(nlh, 2);
  m.mnl_attr_put_strz(nlh, 1, "nested string");
  m.mnl_attr_put_u8(nlh, 2, 3);
  m.mnl_attr_nest_end(nlh, inner);
  nlattr* empty = m.mnl_attr_nest_start(nlh, 3);
  m.mnl_attr_nest_end(nlh, empty);
  m.mnl_attr_nest_end(nlh, outer);
  m.mnl_attr_put_u16(nlh, NLA_F_NET_BYTEORDER | 31, htons(443));
  t << "len " << nlh->nlmsg_len << '\n';
  t.bytes(buf, nlh->nlmsg_len);
  return {buf, buf + nlh->nlmsg_len};
}

struct ParseCtx {
  const Mnl* m;
  Trace* t;
  int depth;
  int stop_at;   // attribute type that returns MNL_CB_STOP (-1: none)
  int error_at;  // attribute type that returns MNL_CB_ERROR (-1: none)
};

int parse_cb(const nlattr* a, void* data) {
  auto* c = static_cast<ParseCtx*>(data);
  const Mnl& m = *c->m;
  Trace& t = *c->t;
  uint16_t type = m.mnl_attr_get_type(a);
  uint16_t plen = m.mnl_attr_get_payload_len(a);
  t << std::string(static_cast<size_t>(c->depth) * 2, ' ') << "type " << type << " raw "
    << a->nla_type << " len " << m.mnl_attr_get_len(a) << " plen " << plen << " payload+"
    << off(a, m.mnl_attr_get_payload(a));
  if (plen >= 1) t << " u8 " << unsigned{m.mnl_attr_get_u8(a)};
  if (plen >= 2) t << " u16 " << m.mnl_attr_get_u16(a);
  if (plen >= 4) t << " u32 " << m.mnl_attr_get_u32(a);
  if (plen >= 8) t << " u64 " << m.mnl_attr_get_u64(a);
  if (plen >= 1 && memchr(m.mnl_attr_get_payload(a), 0, plen) != nullptr)
    t << " str '" << m.mnl_attr_get_str(a) << "'";
  errno = kErrnoSentinel;
  t << " tv " << m.mnl_attr_type_valid(a, 20) << '/' << errno;
  t << '\n';
  if ((a->nla_type & NLA_F_NESTED) && c->depth < 3) {
    ParseCtx sub{c->m, c->t, c->depth + 1, c->stop_at, c->error_at};
    int r = m.mnl_attr_parse_nested(a, parse_cb, &sub);
    t << "nested ret " << r << '\n';
  }
  if (type == c->stop_at) return MNL_CB_STOP;
  if (type == c->error_at) return MNL_CB_ERROR;
  return MNL_CB_OK;
}

std::string parse_scenario(const Mnl& m) {
  Trace t;
  // Build with the reference, so both parse exactly the same bytes.
  Trace ignored;
  std::vector<uint8_t> msg = build_message(kRef, 0, ignored);
  alignas(8) uint8_t buf[1024];
  memcpy(buf, msg.data(), msg.size());
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf);
  for (unsigned offset : {5u, 8u}) {
    for (auto [stop, error] : {std::pair{-1, -1}, {12, -1}, {-1, 3}, {-1, 1}}) {
      ParseCtx c{&m, &t, 0, stop, error};
      t << "parse offset " << offset << " stop " << stop << " error " << error << '\n';
      t << "ret " << m.mnl_attr_parse(nlh, offset, parse_cb, &c) << '\n';
    }
  }
  // A last attribute that claims more than the message holds is not parsed.
  auto* last = reinterpret_cast<nlattr*>(buf + nlh->nlmsg_len);
  last->nla_type = 40;
  last->nla_len = 8;
  nlh->nlmsg_len += 6;
  ParseCtx c{&m, &t, 0, -1, -1};
  t << "truncated ret " << m.mnl_attr_parse(nlh, 8, parse_cb, &c) << '\n';
  // An attribute shorter than its header stops the walk.
  nlh->nlmsg_len -= 6;
  last->nla_len = 2;
  nlh->nlmsg_len += 4;
  t << "short ret " << m.mnl_attr_parse(nlh, 8, parse_cb, &c) << '\n';
  // The iterators directly, with every remaining length around an attribute.
  alignas(8) uint8_t attrs[32] = {};
  auto* a = reinterpret_cast<nlattr*>(attrs);
  a->nla_len = 7;
  a->nla_type = 1;
  for (int len = -1; len <= 12; ++len) t << m.mnl_attr_ok(a, len);
  t << " next+" << off(a, m.mnl_attr_next(a)) << '\n';
  for (uint16_t l = 0; l <= 5; ++l) {
    a->nla_len = l;
    t << m.mnl_attr_ok(a, 16) << off(a, m.mnl_attr_next(a)) << ' ';
  }
  t << '\n';
  return t.str();
}

std::string validate_scenario(const Mnl& m) {
  Trace t;
  // nla_len < 4 makes the payload length wrap to ~64 KiB, which both read.
  alignas(8) static uint8_t buf[70000];
  memset(buf, 'a', sizeof(buf));
  auto* a = reinterpret_cast<nlattr*>(buf);
  for (int type = 0; type <= MNL_TYPE_MAX + 2; ++type) {
    t << "type " << type << ':';
    for (int tail : {0, int{'x'}}) {
      for (uint16_t len = 0; len <= 24; ++len) {
        memset(buf, 'a', 64);
        a->nla_type = 5;
        a->nla_len = len;
        if (len > MNL_ATTR_HDRLEN) buf[len - 1] = static_cast<uint8_t>(tail);
        errno = kErrnoSentinel;
        int r = m.mnl_attr_validate(a, static_cast<mnl_attr_data_type>(type));
        t << ' ' << r << '/' << (r < 0 ? errno : 0);
      }
    }
    t << '\n';
  }
  for (uint16_t type : {0, 1, 5, 6, 0x8006, 0x4006, 0x7fff}) {
    for (uint16_t max : {0, 5, 6, 0xffff}) {
      a->nla_type = type;
      errno = kErrnoSentinel;
      int r = m.mnl_attr_type_valid(a, max);
      t << r << '/' << errno << ' ';
    }
  }
  t << '\n';
  return t.str();
}

struct CbCtx {
  Trace* t;
  int stop_at_type;
  int error_at_type;
  int other_at_type;
};

int data_cb(const nlmsghdr* nlh, void* data) {
  auto* c = static_cast<CbCtx*>(data);
  *c->t << "cb type " << nlh->nlmsg_type << " len " << nlh->nlmsg_len << " seq " << nlh->nlmsg_seq
        << '\n';
  if (nlh->nlmsg_type == c->stop_at_type) return MNL_CB_STOP;
  if (nlh->nlmsg_type == c->error_at_type) {
    errno = ENOTTY;
    return MNL_CB_ERROR;
  }
  if (nlh->nlmsg_type == c->other_at_type) return 5;
  return MNL_CB_OK;
}

// Appends a message (header + payload of `plen` bytes) to `buf` at `*pos`.
nlmsghdr* add_msg(uint8_t* buf, size_t* pos, uint16_t type, uint16_t flags, uint32_t seq,
                  uint32_t pid, uint32_t plen) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf + *pos);
  memset(nlh, 0, NLMSG_ALIGN(NLMSG_HDRLEN + plen));
  nlh->nlmsg_len = NLMSG_HDRLEN + plen;
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_pid = pid;
  *pos += NLMSG_ALIGN(nlh->nlmsg_len);
  return nlh;
}

nlmsghdr* add_error(uint8_t* buf, size_t* pos, uint32_t seq, int error, uint32_t plen) {
  nlmsghdr* nlh = add_msg(buf, pos, NLMSG_ERROR, 0, seq, 100, plen);
  if (plen >= sizeof(int)) {
    auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(nlh));
    e->error = error;
  }
  return nlh;
}

std::string cb_run_scenario(const Mnl& m) {
  Trace t;
  alignas(8) uint8_t buf[1024];
  auto run = [&](const char* what, size_t len, unsigned seq, unsigned portid, bool with_cb,
                 CbCtx ctx) {
    ctx.t = &t;
    errno = kErrnoSentinel;
    int r = m.mnl_cb_run(buf, len, seq, portid, with_cb ? data_cb : nullptr, &ctx);
    t << what << ": ret " << r << " errno " << errno << '\n';
  };
  const CbCtx plain{nullptr, -1, -1, -1};
  size_t pos = 0;
  // Data messages only: every one reaches the callback, the run returns MNL_CB_OK.
  add_msg(buf, &pos, 16, NLM_F_MULTI, 5, 100, 3);
  add_msg(buf, &pos, 17, NLM_F_MULTI, 5, 100, 0);
  add_msg(buf, &pos, 0x1000, NLM_F_MULTI, 0, 0, 9);
  size_t data_end = pos;
  run("data", data_end, 5, 100, true, plain);
  run("data seq 0", data_end, 0, 100, true, plain);
  run("data portid 0", data_end, 5, 0, true, plain);
  run("data no cb", data_end, 5, 100, false, plain);
  run("data stop", data_end, 5, 100, true, {nullptr, 17, -1, -1});
  run("data error", data_end, 5, 100, true, {nullptr, -1, 17, -1});
  run("data ret 5", data_end, 5, 100, true, {nullptr, -1, -1, 16});
  run("wrong seq", data_end, 6, 100, true, plain);
  run("wrong portid", data_end, 5, 101, true, plain);
  run("wrong both", data_end, 6, 101, true, plain);
  run("empty", 0, 5, 100, true, plain);
  run("short", 15, 5, 100, true, plain);
  // Truncated: the second message claims more bytes than the buffer holds.
  run("truncated", data_end - 3, 5, 100, true, plain);
  // Control messages: NOOP, OVERRUN and unknown control types are skipped; DONE stops.
  pos = data_end;
  add_msg(buf, &pos, NLMSG_NOOP, 0, 5, 100, 0);
  add_msg(buf, &pos, NLMSG_OVERRUN, 0, 5, 100, 0);
  add_msg(buf, &pos, 0, 0, 5, 100, 0);
  add_msg(buf, &pos, 7, 0, 5, 100, 0);
  add_msg(buf, &pos, 15, 0, 5, 100, 0);
  size_t ctl_end = pos;
  add_msg(buf, &pos, NLMSG_DONE, NLM_F_MULTI, 5, 100, 4);
  add_msg(buf, &pos, 18, 0, 5, 100, 0);  // after DONE: never reached
  run("controls", ctl_end, 5, 100, true, plain);
  run("done", pos, 5, 100, true, plain);
  // NLMSG_ERROR: errno from the error field (either sign); 0 is an ACK.
  for (int error : {-EPERM, ENOENT, 0, -EEXIST}) {
    pos = data_end;
    add_error(buf, &pos, 5, error, sizeof(nlmsgerr));
    add_msg(buf, &pos, 18, 0, 5, 100, 0);
    run(("error " + std::to_string(error)).c_str(), pos, 5, 100, true, plain);
  }
  // A NLMSG_ERROR too short to hold struct nlmsgerr.
  for (uint32_t plen : {0u, 4u, 19u, 20u}) {
    pos = data_end;
    add_error(buf, &pos, 5, -EPERM, plen);
    run(("short error " + std::to_string(plen)).c_str(), pos, 5, 100, true, plain);
  }
  // An interrupted dump fails with EINTR, whatever the type.
  for (uint16_t type : {uint16_t{16}, uint16_t{NLMSG_DONE}}) {
    pos = 0;
    add_msg(buf, &pos, 16, NLM_F_MULTI, 5, 100, 0);
    add_msg(buf, &pos, type, NLM_F_MULTI | NLM_F_DUMP_INTR, 5, 100, 0);
    run(("dump intr " + std::to_string(type)).c_str(), pos, 5, 100, true, plain);
  }
  // The message iterators with odd lengths.
  pos = 0;
  add_msg(buf, &pos, 16, 0, 1, 1, 5);
  add_msg(buf, &pos, 17, 0, 1, 1, 0);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf);
  for (int len : {-4, 0, 15, 16, 20, 21, 24, 40, 41}) {
    int left = len;
    const nlmsghdr* cur = nlh;
    t << "iter " << len << ':';
    while (m.mnl_nlmsg_ok(cur, left)) {
      t << ' ' << cur->nlmsg_type;
      cur = m.mnl_nlmsg_next(cur, &left);
      t << '@' << off(buf, cur) << '/' << left;
    }
    t << '\n';
  }
  // The seq and port id helpers.
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  for (uint32_t v : {0u, 3u}) {
    h->nlmsg_seq = v;
    h->nlmsg_pid = v;
    for (unsigned want : {0u, 3u, 4u})
      t << m.mnl_nlmsg_seq_ok(h, want) << m.mnl_nlmsg_portid_ok(h, want);
  }
  t << '\n';
  return t.str();
}

std::string batch_scenario(const Mnl& m) {
  Trace t;
  alignas(8) static uint8_t buf[512];
  memset(buf, 0xee, sizeof(buf));
  // The limit leaves room past it, as libnftnl does (the last message may overflow);
  // messages 0-3 fill it exactly.
  mnl_nlmsg_batch* b = m.mnl_nlmsg_batch_start(buf, 104);
  REQUIRE(b != nullptr);
  auto state = [&](const char* what) {
    t << what << ": size " << m.mnl_nlmsg_batch_size(b) << " head+"
      << off(buf, m.mnl_nlmsg_batch_head(b)) << " cur+" << off(buf, m.mnl_nlmsg_batch_current(b))
      << " empty " << m.mnl_nlmsg_batch_is_empty(b) << '\n';
  };
  state("start");
  for (int i = 0; i < 8; ++i) {
    auto* nlh = m.mnl_nlmsg_put_header(m.mnl_nlmsg_batch_current(b));
    nlh->nlmsg_type = static_cast<uint16_t>(100 + i);
    nlh->nlmsg_seq = static_cast<uint32_t>(i);
    // Lengths without padding: the padding bytes are the one intended difference.
    m.mnl_attr_put(nlh, 1, static_cast<size_t>(i * 4), "abcdefghijklmnopqrstuvwxyz0123456789");
    bool ok = m.mnl_nlmsg_batch_next(b);
    t << "msg " << i << " len " << nlh->nlmsg_len << " next " << ok << '\n';
    state("after");
    if (!ok) {
      t.bytes(buf, m.mnl_nlmsg_batch_size(b));
      m.mnl_nlmsg_batch_reset(b);
      state("reset (overflow carried)");
      t.bytes(buf, m.mnl_nlmsg_batch_size(b));
    }
  }
  m.mnl_nlmsg_batch_reset(b);
  state("reset");
  t.bytes(buf, 200);
  m.mnl_nlmsg_batch_stop(b);
  return t.str();
}

std::string fd_info(int fd) {
  int type = 0, proto = 0;
  socklen_t l1 = sizeof(type), l2 = sizeof(proto);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1);
  getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2);
  std::ostringstream o;
  o << "type " << type << " proto " << proto << " fdflags " << fcntl(fd, F_GETFD) << " flflags "
    << fcntl(fd, F_GETFL);
  return o.str();
}

sockaddr_nl local_addr(int fd) {
  sockaddr_nl sa{};
  socklen_t len = sizeof(sa);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  return sa;
}

int count_links(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_type == RTM_NEWLINK) ++*static_cast<int*>(data);
  return MNL_CB_OK;
}

// `pid_base`: each implementation binds its own fixed port ids (both run in one process).
std::string socket_scenario(const Mnl& m, uint32_t pid_base) {
  Trace t;
  errno = kErrnoSentinel;
  mnl_socket* bad = m.mnl_socket_open(4242);
  t << "bad bus " << (bad == nullptr) << " errno " << errno << '\n';

  // NETLINK_ROUTE with a kernel-chosen port id and a multicast group.
  mnl_socket* nl = m.mnl_socket_open(NETLINK_ROUTE);
  REQUIRE(nl != nullptr);
  int fd = m.mnl_socket_get_fd(nl);
  t << "route " << fd_info(fd) << " portid before bind " << m.mnl_socket_get_portid(nl) << '\n';
  t << "bind " << m.mnl_socket_bind(nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) << '\n';
  sockaddr_nl sa = local_addr(fd);
  t << "portid is the bound one " << (m.mnl_socket_get_portid(nl) == sa.nl_pid) << " nonzero "
    << (sa.nl_pid != 0) << " groups " << sa.nl_groups << '\n';

  // A dump request through sendto/recvfrom, parsed with cb_run.
  alignas(8) uint8_t buf[32768];
  auto send_dump = [&](uint32_t seq) {
    nlmsghdr* nlh = m.mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    auto* ifm = static_cast<rtgenmsg*>(m.mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
    ifm->rtgen_family = AF_UNSPEC;
    ssize_t n = m.mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
    t << "sendto " << (n == static_cast<ssize_t>(nlh->nlmsg_len)) << '\n';
  };
  send_dump(1000);
  int links = 0;
  int ret = MNL_CB_OK;
  int rounds = 0;
  while (ret > MNL_CB_STOP && rounds++ < 100) {
    ssize_t n = m.mnl_socket_recvfrom(nl, buf, sizeof(buf));
    REQUIRE(n > 0);
    ret = m.mnl_cb_run(buf, static_cast<size_t>(n), 1000, m.mnl_socket_get_portid(nl), count_links,
                       &links);
  }
  t << "dump ret " << ret << " saw links " << (links > 0) << '\n';
  // Too small a buffer: MSG_TRUNC is ENOSPC.
  send_dump(1001);
  errno = kErrnoSentinel;
  ssize_t n = m.mnl_socket_recvfrom(nl, buf, 16);
  t << "small recv " << n << " errno " << errno << '\n';
  t << "close " << m.mnl_socket_close(nl) << '\n';

  // NETLINK_NETFILTER, the bus sbx's rulesets use.
  nl = m.mnl_socket_open(NETLINK_NETFILTER);
  REQUIRE(nl != nullptr);
  t << "netfilter " << fd_info(m.mnl_socket_get_fd(nl)) << '\n';
  t << "bind " << m.mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) << " portid matches "
    << (m.mnl_socket_get_portid(nl) == local_addr(m.mnl_socket_get_fd(nl)).nl_pid) << '\n';
  t << "close " << m.mnl_socket_close(nl) << '\n';

  // Explicit port ids; a taken one is EADDRINUSE. NETLINK_USERSOCK lets user
  // sockets message each other: recvfrom takes a message from a user port.
  mnl_socket* a = m.mnl_socket_open(NETLINK_USERSOCK);
  mnl_socket* b = m.mnl_socket_open(NETLINK_USERSOCK);
  mnl_socket* c = m.mnl_socket_open(NETLINK_USERSOCK);
  REQUIRE((a && b && c));
  t << "bind a " << m.mnl_socket_bind(a, 0, static_cast<pid_t>(pid_base)) << " portid "
    << (m.mnl_socket_get_portid(a) - pid_base) << '\n';
  t << "bind b " << m.mnl_socket_bind(b, 0, static_cast<pid_t>(pid_base + 1)) << '\n';
  errno = kErrnoSentinel;
  int r = m.mnl_socket_bind(c, 0, static_cast<pid_t>(pid_base));
  t << "bind c (taken) " << r << " errno " << errno << '\n';
  alignas(8) uint8_t msg[64];
  size_t pos = 0;
  add_msg(msg, &pos, 16, 0, 1, pid_base, 12);
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  to.nl_pid = pid_base + 1;
  REQUIRE(sendto(m.mnl_socket_get_fd(a), msg, pos, 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof(to)) == static_cast<ssize_t>(pos));
  errno = kErrnoSentinel;
  n = m.mnl_socket_recvfrom(b, buf, sizeof(buf));
  t << "from user port " << n << " errno " << errno << " same " << (memcmp(buf, msg, pos) == 0)
    << '\n';
  t << "close " << m.mnl_socket_close(a) << m.mnl_socket_close(b) << m.mnl_socket_close(c) << '\n';
  return t.str();
}

}  // namespace

TEST_CASE("sbx's libmnl builds the same bytes as libmnl", "[netfilter][mnl]") {
  Trace ref_trace, ours_trace, ours_dirty_trace;
  std::vector<uint8_t> ref = build_message(kRef, 0, ref_trace);
  std::vector<uint8_t> ours = build_message(kOurs, 0, ours_trace);
  CHECK(ours_trace.str() == ref_trace.str());
  CHECK(ours == ref);
  // Known bytes, so the comparison cannot pass by both being empty or wrong alike.
  REQUIRE(ref.size() > 200);
  CHECK(ref[16 + 8] == 5);      // first attribute: nla_len 5 (u8, padding excluded)
  CHECK(ref[16 + 8 + 2] == 1);  // type 1
  // Padding: sbx zero-fills it; libmnl 1.0.4 leaves what the buffer held. On a
  // dirty buffer sbx still produces the bytes libmnl produces on a zeroed one.
  std::vector<uint8_t> ours_dirty = build_message(kOurs, 0xaa, ours_dirty_trace);
  CHECK(ours_dirty == ref);
  Trace ref_dirty_trace;
  std::vector<uint8_t> ref_dirty = build_message(kRef, 0xaa, ref_dirty_trace);
  REQUIRE(ref_dirty.size() == ref.size());
  size_t differing = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (ref_dirty[i] != ref[i]) {
      CHECK(ref_dirty[i] == 0xaa);  // only padding, which libmnl does not clear
      CHECK(ours_dirty[i] == 0);
      ++differing;
    }
  }
  CHECK(differing > 0);
}

TEST_CASE("sbx's libmnl parses attributes like libmnl", "[netfilter][mnl]") {
  std::string ref = parse_scenario(kRef);
  CHECK(parse_scenario(kOurs) == ref);
  CHECK(ref.find("str 'nested string'") != std::string::npos);
  CHECK(ref.find("u64 81985529216486895") != std::string::npos);
}

TEST_CASE("sbx's libmnl validates attributes like libmnl", "[netfilter][mnl]") {
  std::string ref = validate_scenario(kRef);
  CHECK(validate_scenario(kOurs) == ref);
  CHECK(ref.find(std::to_string(ERANGE)) != std::string::npos);
  CHECK(ref.find(std::to_string(EINVAL)) != std::string::npos);
  CHECK(ref.find(std::to_string(EOPNOTSUPP)) != std::string::npos);
}

TEST_CASE("sbx's libmnl runs callbacks like libmnl", "[netfilter][mnl]") {
  std::string ref = cb_run_scenario(kRef);
  CHECK(cb_run_scenario(kOurs) == ref);
  for (int e : {ESRCH, EPROTO, EINTR, EPERM, ENOENT, EBADMSG, ENOTTY})
    CHECK(ref.find("errno " + std::to_string(e)) != std::string::npos);
}

TEST_CASE("sbx's libmnl batches like libmnl", "[netfilter][mnl]") {
  std::string ref = batch_scenario(kRef);
  CHECK(batch_scenario(kOurs) == ref);
  CHECK(ref.find("next 0") != std::string::npos);
}

TEST_CASE("sbx's libmnl sockets behave like libmnl's", "[netfilter][mnl]") {
  uint32_t base = 0x40000000u + (static_cast<uint32_t>(getpid()) << 4);
  std::string ref = socket_scenario(kRef, base);
  std::string ours = socket_scenario(kOurs, base + 8);
  CHECK(ours == ref);
  CHECK(ref.find("bind 0") != std::string::npos);
  CHECK(ref.find("errno " + std::to_string(EADDRINUSE)) != std::string::npos);
  CHECK(ref.find("small recv -1 errno " + std::to_string(ENOSPC)) != std::string::npos);
}
