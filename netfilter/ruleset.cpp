// The sandbox netns's nftables ruleset as one libnftnl batch, and the
// allow-set element batches the DNS filter sends for every answer.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

namespace sbx::net {
namespace {

// nft's datatype numbers, only for `nft list` to print the sets nicely.
constexpr std::uint32_t kTypeIpv4Addr = 7;
constexpr std::uint32_t kTypeIpv6Addr = 8;
constexpr std::uint32_t kTypeInetService = 13;

struct TableDeleter {
  void operator()(nftnl_table* p) const { nftnl_table_free(p); }
};
struct ChainDeleter {
  void operator()(nftnl_chain* p) const { nftnl_chain_free(p); }
};
struct SetDeleter {
  void operator()(nftnl_set* p) const { nftnl_set_free(p); }
};
struct RuleDeleter {
  void operator()(nftnl_rule* p) const { nftnl_rule_free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, TableDeleter>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainDeleter>;
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;

// Appends netlink messages to one contiguous buffer: the batch must reach the
// kernel in a single sendmsg() to be one transaction.
class BatchWriter {
 public:
  explicit BatchWriter(std::uint32_t seq) : seq_(seq) {
    batch_.first_seq = seq;
    nftnl_batch_begin(scratch_.data(), seq_++);
    append();
  }

  nlmsghdr* start(std::uint16_t type, std::uint16_t family, std::uint16_t flags) {
    clear();
    ++batch_.acked_messages;
    return nftnl_nlmsg_build_hdr(scratch_.data(), type, family, flags | NLM_F_ACK, seq_++);
  }
  void append() {
    auto* nlh = reinterpret_cast<nlmsghdr*>(scratch_.data());
    if (nlh->nlmsg_len > scratch_.size() - 64) {
      throw Error("internal: netlink message overflows the batch scratch buffer");
    }
    std::size_t len = NLMSG_ALIGN(nlh->nlmsg_len);
    batch_.bytes.insert(batch_.bytes.end(), scratch_.begin(), scratch_.begin() + len);
    dirty_ = std::max(dirty_, len);
  }
  Batch finish() {
    clear();
    nftnl_batch_end(scratch_.data(), seq_++);
    append();
    return std::move(batch_);
  }

 private:
  // Each message is built on a zeroed buffer. Only what the last one wrote
  // is cleared: zeroing all 64 KiB per message cost a ruleset ~0.2 ms and
  // every DNS answer's element batch a few dozen µs.
  void clear() {
    std::memset(scratch_.data(), 0, dirty_);
    dirty_ = 0;
  }

  std::uint32_t seq_;
  Batch batch_;
  std::vector<char> scratch_ = std::vector<char>(1 << 16);
  std::size_t dirty_ = 0;  // bytes of scratch_ written since the last clear()
};

// --- expression helpers (each appends one expression to the rule) ----------

void add_meta(nftnl_rule* r, std::uint32_t key) {
  auto* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  nftnl_rule_add_expr(r, e);
}

void add_cmp(nftnl_rule* r, std::uint32_t op, const void* data, std::uint32_t len) {
  auto* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  nftnl_rule_add_expr(r, e);
}

void add_payload(nftnl_rule* r, std::uint32_t base, std::uint32_t offset, std::uint32_t len) {
  auto* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_rule_add_expr(r, e);
}

void add_bitwise(nftnl_rule* r, const void* mask, std::uint32_t len) {
  std::array<std::uint8_t, 16> zero{};
  auto* e = nftnl_expr_alloc("bitwise");
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero.data(), len);
  nftnl_rule_add_expr(r, e);
}

void add_lookup(nftnl_rule* r, const char* set, std::uint32_t set_id) {
  auto* e = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
  nftnl_rule_add_expr(r, e);
}

void add_verdict(nftnl_rule* r, int verdict) {
  auto* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(verdict));
  nftnl_rule_add_expr(r, e);
}

void add_log(nftnl_rule* r, std::uint16_t group, const char* prefix) {
  auto* e = nftnl_expr_alloc("log");
  nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, group);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
  nftnl_rule_add_expr(r, e);
}

void add_reject_tcp_reset(nftnl_rule* r) {
  auto* e = nftnl_expr_alloc("reject");
  nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
  nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
  nftnl_rule_add_expr(r, e);
}

void add_reject_admin_prohibited(nftnl_rule* r) {
  auto* e = nftnl_expr_alloc("reject");
  nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
  nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
  nftnl_rule_add_expr(r, e);
}

// Match shorthands (each leaves nothing in registers that later ones need).
void match_nfproto(nftnl_rule* r, std::uint8_t proto) {
  add_meta(r, NFT_META_NFPROTO);
  add_cmp(r, NFT_CMP_EQ, &proto, 1);
}
void match_l4proto(nftnl_rule* r, std::uint8_t proto) {
  add_meta(r, NFT_META_L4PROTO);
  add_cmp(r, NFT_CMP_EQ, &proto, 1);
}
void match_dport(nftnl_rule* r, std::uint16_t port) {
  std::uint16_t be = htons(port);
  add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  add_cmp(r, NFT_CMP_EQ, &be, 2);
}
// Destination port (TCP/UDP) in a set of ports.
void match_dport_in(nftnl_rule* r, const char* set, std::uint32_t set_id) {
  add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  add_lookup(r, set, set_id);
}
// Offsets of the destination address in the IPv4 / IPv6 header.
void load_daddr(nftnl_rule* r, int family) {
  if (family == AF_INET) {
    add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
  } else {
    add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 24, 16);
  }
}

// Destination in 127.0.0.0/8 (an IPv4 packet), or ::1 (an IPv6 packet).
void match_loopback4(nftnl_rule* r) {
  match_nfproto(r, NFPROTO_IPV4);
  load_daddr(r, AF_INET);
  const std::uint8_t mask[4] = {0xff, 0, 0, 0}, net[4] = {127, 0, 0, 0};
  add_bitwise(r, mask, 4);
  add_cmp(r, NFT_CMP_EQ, net, 4);
}
void match_loopback6(nftnl_rule* r) {
  match_nfproto(r, NFPROTO_IPV6);
  load_daddr(r, AF_INET6);
  const in6_addr lo = IN6ADDR_LOOPBACK_INIT;
  add_cmp(r, NFT_CMP_EQ, &lo, 16);
}

struct SetIds {
  std::uint32_t allow4 = 1, allow6 = 2, deny4 = 3, deny6 = 4, ports = 5, allowc4 = 6, allowc6 = 7,
                lo_ports = 8, lo_host_ports = 9;
};

class RuleAdder {
 public:
  RuleAdder(BatchWriter& w, const std::string& table) : w_(w), table_(table) {}
  template <typename Fill>
  void add(const char* chain, Fill&& fill) {
    RulePtr r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table_.c_str());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    fill(r.get());
    auto* nlh = w_.start(NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_CREATE | NLM_F_APPEND);
    nftnl_rule_nlmsg_build_payload(nlh, r.get());
    w_.append();
  }

 private:
  BatchWriter& w_;
  const std::string& table_;
};

SetPtr make_set(const std::string& table, const char* name, std::uint32_t id) {
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  return s;
}

void add_set(BatchWriter& w, const std::string& table, const char* name, std::uint32_t id,
             std::uint32_t key_type, std::uint32_t key_len, std::uint32_t flags) {
  auto s = make_set(table, name, id);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, key_type);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, flags);
  auto* nlh = w.start(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL);
  nftnl_set_nlmsg_build_payload(nlh, s.get());
  w.append();
}

// 128-bit big-endian arithmetic on address bytes, for interval ends.
using Key = std::array<std::uint8_t, 16>;
bool increment(Key& k, std::size_t len) {  // returns false on overflow
  for (std::size_t i = len; i-- > 0;) {
    if (++k[i] != 0) return true;
  }
  return false;
}
Key range_last(const Cidr& c, std::size_t len) {
  Key k = c.address.bytes;
  for (std::size_t bit = c.prefix; bit < len * 8; ++bit) k[bit / 8] |= 0x80u >> (bit % 8);
  return k;
}

// Interval sets hold [start, end) pairs; overlapping or touching ranges must be
// merged first or the kernel refuses the batch (EEXIST).
void add_interval_elements(BatchWriter& w, const std::string& table, const char* name,
                           std::uint32_t id, std::span<const Cidr> all, int family) {
  std::size_t len = family == AF_INET ? 4 : 16;
  std::vector<std::pair<Key, Key>> ranges;  // inclusive [first, last]
  for (const auto& c : all) {
    if (c.address.family == family) ranges.push_back({c.address.bytes, range_last(c, len)});
  }
  if (ranges.empty()) return;
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<Key, Key>> merged;
  for (auto& r : ranges) {
    if (!merged.empty()) {
      Key after = merged.back().second;
      bool overflow = !increment(after, len);
      if (overflow || r.first <= after) {
        if (r.second > merged.back().second) merged.back().second = r.second;
        continue;
      }
    }
    merged.push_back(r);
  }
  auto s = make_set(table, name, id);
  if (id == 0) nftnl_set_unset(s.get(), NFTNL_SET_ID);  // an existing set, found by name
  for (auto& [first, last] : merged) {
    auto* start = nftnl_set_elem_alloc();
    nftnl_set_elem_set(start, NFTNL_SET_ELEM_KEY, first.data(), static_cast<std::uint32_t>(len));
    nftnl_set_elem_add(s.get(), start);
    Key end = last;
    if (increment(end, len)) {  // a range reaching the top address has no end element
      auto* stop = nftnl_set_elem_alloc();
      nftnl_set_elem_set(stop, NFTNL_SET_ELEM_KEY, end.data(), static_cast<std::uint32_t>(len));
      nftnl_set_elem_set_u32(stop, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
      nftnl_set_elem_add(s.get(), stop);
    }
  }
  auto* nlh = w.start(NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE);
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  w.append();
}

void add_port_elements(BatchWriter& w, const std::string& table, const char* name, std::uint32_t id,
                       std::vector<std::uint16_t> ports) {
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  if (ports.empty()) return;
  auto s = make_set(table, name, id);
  for (auto p : ports) {
    std::uint16_t be = htons(p);
    auto* e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &be, 2);
    nftnl_set_elem_add(s.get(), e);
  }
  auto* nlh = w.start(NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE);
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  w.append();
}

}  // namespace

std::vector<std::uint16_t> egress_listener_ports(std::span<const std::uint16_t> allow_ports) {
  std::vector<std::uint16_t> ports;
  for (auto p : allow_ports) {
    if (p != 53 && std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

Batch build_ruleset_batch(const RulesetConfig& config, std::uint32_t seq) {
  if (config.table.empty() || config.table.size() > 31) throw Error("internal: bad nft table name");
  const std::string& table = config.table;
  SetIds ids;
  BatchWriter w(seq);

  {
    TablePtr t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    auto* nlh = w.start(NFT_MSG_NEWTABLE, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    w.append();
  }

  add_set(w, table, kSetAllow4, ids.allow4, kTypeIpv4Addr, 4, NFT_SET_TIMEOUT);
  add_set(w, table, kSetAllow6, ids.allow6, kTypeIpv6Addr, 16, NFT_SET_TIMEOUT);
  add_set(w, table, kSetDeny4, ids.deny4, kTypeIpv4Addr, 4, NFT_SET_INTERVAL);
  add_set(w, table, kSetDeny6, ids.deny6, kTypeIpv6Addr, 16, NFT_SET_INTERVAL);
  add_set(w, table, kSetPorts, ids.ports, kTypeInetService, 2, 0);
  add_set(w, table, kSetLoopbackPorts, ids.lo_ports, kTypeInetService, 2, 0);
  add_set(w, table, kSetLoopbackHostPorts, ids.lo_host_ports, kTypeInetService, 2, 0);
  add_set(w, table, kSetAllowCidr4, ids.allowc4, kTypeIpv4Addr, 4, NFT_SET_INTERVAL);
  add_set(w, table, kSetAllowCidr6, ids.allowc6, kTypeIpv6Addr, 16, NFT_SET_INTERVAL);
  add_interval_elements(w, table, kSetAllowCidr4, ids.allowc4, config.allow_cidrs, AF_INET);
  add_interval_elements(w, table, kSetAllowCidr6, ids.allowc6, config.allow_cidrs, AF_INET6);
  add_interval_elements(w, table, kSetDeny4, ids.deny4, config.deny_cidrs, AF_INET);
  add_interval_elements(w, table, kSetDeny6, ids.deny6, config.deny_cidrs, AF_INET6);
  // TCP ports with an egress listener (allow_ports but 53, which is DNS's):
  // on loopback addresses they are refused unless a host_ports entry serves
  // them, as if nothing listened (see rule 1).
  std::vector<std::uint16_t> listened = egress_listener_ports(config.allow_ports);
  std::vector<std::uint16_t> lo_refused, lo_host;
  for (auto p : listened) {
    const bool host =
        std::find(config.host_ports.begin(), config.host_ports.end(), p) != config.host_ports.end();
    (host ? lo_host : lo_refused).push_back(p);
  }
  add_port_elements(w, table, kSetPorts, ids.ports, config.allow_ports);
  add_port_elements(w, table, kSetLoopbackPorts, ids.lo_ports, lo_refused);
  add_port_elements(w, table, kSetLoopbackHostPorts, ids.lo_host_ports, lo_host);

  ChainPtr c(nftnl_chain_alloc());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, kChainFilter);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_OUT);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, 0);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_DROP);
  auto* chain_nlh = w.start(NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL);
  nftnl_chain_nlmsg_build_payload(chain_nlh, c.get());
  w.append();

  // No nat chain and no conntrack: every destination is local to the netns
  // (`local default dev lo`), so a connection to an allowed address lands on
  // the egress listener of its port as it is, and getsockname() tells where
  // it was going. Leaving out nat and ct matters for start-up: their hooks
  // (8 static keys, each a kernel text patch on first use in the system)
  // made the ruleset cost ~3 ms instead of ~1 ms (docs/network.md).
  RuleAdder rules(w, table);
  const char* F = kChainFilter;
  const std::uint16_t group = config.nflog_group;

  // 0. Packets from sbx's own sockets in the netns (the DNS filter's
  //    replies go to the program's address, which may be any address). The
  //    program cannot set a mark: SO_MARK needs CAP_NET_ADMIN or CAP_NET_RAW
  //    over the netns.
  rules.add(F, [&](nftnl_rule* r) {
    add_meta(r, NFT_META_MARK);
    add_cmp(r, NFT_CMP_EQ, &kOwnSocketMark, 4);
    add_verdict(r, NF_ACCEPT);
  });
  // 1. Loopback: the program's own local servers, the DNS filter, the
  //    host_ports listeners. Not `oif lo`: with `local default dev lo` every
  //    destination leaves through lo, so oif would accept everything. An
  //    egress listener's port on loopback is refused first (RST): only the
  //    listener is there, and a connection to it is not egress. A host
  //    port that is also an egress port is served on 127.0.0.1 only, as
  //    any other host port (lo_host_ports).
  rules.add(F, [&](nftnl_rule* r) {
    match_l4proto(r, IPPROTO_TCP);
    match_loopback4(r);
    match_dport_in(r, kSetLoopbackPorts, ids.lo_ports);
    add_reject_tcp_reset(r);
  });
  rules.add(F, [&](nftnl_rule* r) {
    match_l4proto(r, IPPROTO_TCP);
    match_loopback4(r);
    load_daddr(r, AF_INET);
    const std::uint8_t host[4] = {127, 0, 0, 1};
    add_cmp(r, NFT_CMP_NEQ, host, 4);
    match_dport_in(r, kSetLoopbackHostPorts, ids.lo_host_ports);
    add_reject_tcp_reset(r);
  });
  for (const auto& [set, id] : {std::pair{kSetLoopbackPorts, ids.lo_ports},
                                std::pair{kSetLoopbackHostPorts, ids.lo_host_ports}}) {
    rules.add(F, [&](nftnl_rule* r) {
      match_l4proto(r, IPPROTO_TCP);
      match_loopback6(r);
      match_dport_in(r, set, id);
      add_reject_tcp_reset(r);
    });
  }
  rules.add(F, [](nftnl_rule* r) {
    match_loopback4(r);
    add_verdict(r, NF_ACCEPT);
  });
  rules.add(F, [](nftnl_rule* r) {
    match_loopback6(r);
    add_verdict(r, NF_ACCEPT);
  });
  // 2. TCP that does not open a connection (anything but a SYN without ACK):
  //    only a connection whose SYN was accepted below can send it, because
  //    the program has no raw sockets (CAP_NET_RAW over the netns). This
  //    keeps an admitted connection alive when its set element expires and
  //    lets replies and resets through, which conntrack's `established` did.
  rules.add(F, [](nftnl_rule* r) {
    match_l4proto(r, IPPROTO_TCP);
    add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);
    const std::uint8_t syn_ack = 0x12, syn = 0x02;
    add_bitwise(r, &syn_ack, 1);
    add_cmp(r, NFT_CMP_NEQ, &syn, 1);
    add_verdict(r, NF_ACCEPT);
  });
  // 3. ICMP: only the kernel sends it here (the program has neither raw nor
  //    ping sockets: net.ipv4.ping_group_range is empty in a new netns), e.g.
  //    the unreachable errors the reject rules below generate, which pass
  //    this hook too. Nothing leaves the netns: its only device is lo.
  for (std::uint8_t proto : {std::uint8_t{IPPROTO_ICMP}, std::uint8_t{IPPROTO_ICMPV6}}) {
    rules.add(F, [proto](nftnl_rule* r) {
      match_l4proto(r, proto);
      add_verdict(r, NF_ACCEPT);
    });
  }
  // 4. DNS to any resolver: the DNS filter listens on port 53 of every
  //    address, so hard-coded resolvers (8.8.8.8) are answered by policy,
  //    not bypassed.
  for (std::uint8_t proto : {IPPROTO_UDP, IPPROTO_TCP}) {
    rules.add(F, [proto](nftnl_rule* r) {
      match_l4proto(r, proto);
      match_dport(r, 53);
      add_verdict(r, NF_ACCEPT);
    });
  }
  // 5. Denied ranges, even if an allow set holds them: logged and rejected.
  for (int family : {AF_INET, AF_INET6}) {
    const char* set = family == AF_INET ? kSetDeny4 : kSetDeny6;
    std::uint32_t id = family == AF_INET ? ids.deny4 : ids.deny6;
    std::uint8_t nfproto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
    rules.add(F, [&](nftnl_rule* r) {
      match_nfproto(r, nfproto);
      match_l4proto(r, IPPROTO_TCP);
      load_daddr(r, family);
      add_lookup(r, set, id);
      add_log(r, group, kLogPrefixDenied);
      add_reject_tcp_reset(r);
    });
    rules.add(F, [&](nftnl_rule* r) {
      match_nfproto(r, nfproto);
      load_daddr(r, family);
      add_lookup(r, set, id);
      add_log(r, group, kLogPrefixDenied);
      add_reject_admin_prohibited(r);
    });
  }
  // 6. TCP to an address the DNS filter put in allow4/allow6, or inside
  //    allow_cidrs (allowc4/allowc6), on an allowed port: accepted, and so
  //    delivered to the egress listener on that port.
  struct AllowSet {
    int family;
    const char* name;
    std::uint32_t id;
  };
  const AllowSet allow_sets[] = {{AF_INET, kSetAllow4, ids.allow4},
                                 {AF_INET6, kSetAllow6, ids.allow6},
                                 {AF_INET, kSetAllowCidr4, ids.allowc4},
                                 {AF_INET6, kSetAllowCidr6, ids.allowc6}};
  for (const auto& as : allow_sets) {
    int family = as.family;
    const char* set = as.name;
    std::uint32_t id = as.id;
    std::uint8_t nfproto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
    rules.add(F, [&](nftnl_rule* r) {
      match_nfproto(r, nfproto);
      match_l4proto(r, IPPROTO_TCP);
      load_daddr(r, family);
      add_lookup(r, set, id);
      match_dport_in(r, kSetPorts, ids.ports);
      add_verdict(r, NF_ACCEPT);
    });
  }
  // 7. Everything else: logged for the supervisor, rejected at once so the
  //    program fails in microseconds instead of waiting for SYN retries.
  rules.add(F, [&](nftnl_rule* r) {
    match_l4proto(r, IPPROTO_TCP);
    add_log(r, group, kLogPrefixBlocked);
    add_reject_tcp_reset(r);
  });
  rules.add(F, [&](nftnl_rule* r) {
    add_log(r, group, kLogPrefixBlocked);
    add_reject_admin_prohibited(r);
  });
  return w.finish();
}

namespace {

void append_elements(BatchWriter& w, const std::string& table, const char* set_name,
                     std::span<const AllowElement> elements, int family, std::uint16_t type,
                     bool with_timeout) {
  auto s = make_set(table, set_name, 0);
  nftnl_set_unset(s.get(), NFTNL_SET_ID);
  bool any = false;
  for (const auto& el : elements) {
    if (el.address.family != family) continue;
    auto* e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, el.address.bytes.data(),
                       static_cast<std::uint32_t>(el.address.size()));
    if (with_timeout) {
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT,
                             static_cast<std::uint64_t>(el.timeout.count()));
    }
    nftnl_set_elem_add(s.get(), e);
    any = true;
  }
  if (!any) return;
  // No NLM_F_EXCL on add: adding an existing element is then a no-op, which
  // is what makes add, delete, add safe whether or not the element exists.
  auto* nlh = w.start(type, NFPROTO_INET, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  w.append();
}

}  // namespace

Batch build_allow_batch(const std::string& table, std::span<const AllowElement> elements,
                        std::uint32_t seq, bool refresh) {
  BatchWriter w(seq);
  for (int family : {AF_INET, AF_INET6}) {
    const char* set = family == AF_INET ? kSetAllow4 : kSetAllow6;
    append_elements(w, table, set, elements, family, NFT_MSG_NEWSETELEM, true);
    if (refresh) {
      append_elements(w, table, set, elements, family, NFT_MSG_DELSETELEM, false);
      append_elements(w, table, set, elements, family, NFT_MSG_NEWSETELEM, true);
    }
  }
  return w.finish();
}

Batch build_delete_allow_batch(const std::string& table, std::span<const IpAddress> addresses,
                               std::uint32_t seq) {
  std::vector<AllowElement> elements;
  for (const auto& a : addresses) elements.push_back({a, {}});
  BatchWriter w(seq);
  append_elements(w, table, kSetAllow4, elements, AF_INET, NFT_MSG_DELSETELEM, false);
  append_elements(w, table, kSetAllow6, elements, AF_INET6, NFT_MSG_DELSETELEM, false);
  return w.finish();
}

Batch build_replace_allow_cidrs_batch(const std::string& table, std::span<const Cidr> cidrs,
                                      std::uint32_t seq) {
  BatchWriter w(seq);
  for (const char* set : {kSetAllowCidr4, kSetAllowCidr6}) {
    // DELSETELEM without elements flushes the set (Linux >= 4.10); the new
    // ranges follow in the same transaction, so no address is ever between.
    auto s = make_set(table, set, 0);
    nftnl_set_unset(s.get(), NFTNL_SET_ID);
    auto* nlh = w.start(NFT_MSG_DELSETELEM, NFPROTO_INET, 0);
    nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
    w.append();
  }
  add_interval_elements(w, table, kSetAllowCidr4, 0, cidrs, AF_INET);
  add_interval_elements(w, table, kSetAllowCidr6, 0, cidrs, AF_INET6);
  return w.finish();
}

}  // namespace sbx::net
