// lookup_route in a fresh user+net namespace (unprivileged, no ip binary):
// the netns's own addresses -- loopback and an address added to lo -- are
// local, an address routed elsewhere is not, one without a route has none.
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "../netns_child.hpp"
#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

using namespace sbx::net;

namespace {

using sbx::testing::Observations;

// Sends one rtnetlink request with NLM_F_ACK; "ok" or the kernel's errno.
std::string rtnl(int fd, nlmsghdr* nlh) {
  static std::uint32_t seq = 100;
  nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++seq;
  if (send(fd, nlh, nlh->nlmsg_len, 0) < 0) return strerrorname_np(errno);
  char buf[8192];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) return strerrorname_np(errno);
  auto* reply = reinterpret_cast<nlmsghdr*>(buf);
  if (!mnl_nlmsg_ok(reply, static_cast<int>(n)) || reply->nlmsg_type != NLMSG_ERROR)
    return "no ack";
  int err = -static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(reply))->error;
  return err == 0 ? "ok" : strerrorname_np(err);
}

// `ip link set lo up`.
std::string lo_up(int fd) {
  alignas(nlmsghdr) char buf[512] = {};
  auto* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = 1;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return rtnl(fd, nlh);
}

// `ip addr add ADDRESS/PREFIX dev lo`.
std::string add_address(int fd, const char* text, std::uint8_t prefix) {
  auto a = IpAddress::parse(text);
  alignas(nlmsghdr) char buf[512] = {};
  auto* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<unsigned char>(a->family);
  ifa->ifa_prefixlen = prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = 1;
  mnl_attr_put(nlh, IFA_LOCAL, a->size(), a->bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, a->size(), a->bytes.data());
  return rtnl(fd, nlh);
}

// `ip route add CIDR dev lo` (a unicast route: not an address of the netns).
std::string add_route(int fd, const char* cidr_text) {
  auto c = Cidr::parse(cidr_text);
  alignas(nlmsghdr) char buf[512] = {};
  auto* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(c->address.family);
  rtm->rtm_dst_len = c->prefix;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_DST, c->address.size(), c->address.bytes.data());
  mnl_attr_put_u32(nlh, RTA_OIF, 1);
  return rtnl(fd, nlh);
}

// "local", "not local (type N)", "no route (ENETUNREACH)" or the exception.
std::string describe(int fd, const char* text) {
  try {
    Route r = lookup_route(fd, *IpAddress::parse(text));
    if (r.error != 0) return std::string("no route (") + strerrorname_np(r.error) + ")";
    if (r.local()) return "local";
    return "not local (type " + std::to_string(r.type) + ")";
  } catch (const sbx::Error& e) {
    return std::string("error: ") + e.what();
  }
}

Observations scenario() {
  Observations o;
  int setup = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  o["lo_up"] = lo_up(setup);
  o["add4"] = add_address(setup, "198.51.100.5", 32);
  o["add6"] = add_address(setup, "2001:db8:5::5", 128);
  o["route4"] = add_route(setup, "198.51.100.0/24");
  o["route6"] = add_route(setup, "2001:db8:77::/64");
  close(setup);

  int fd = open_route_socket();
  // An IPv6 address's local route is inserted once its DAD is done (at once
  // on lo, but from a kernel work queue): wait for it, up to 2 s.
  for (int i = 0; i < 200 && describe(fd, "2001:db8:5::5") != "local"; ++i) usleep(10'000);
  o["127.0.0.1"] = describe(fd, "127.0.0.1");
  o["127.3.2.1"] = describe(fd, "127.3.2.1");
  o["::1"] = describe(fd, "::1");
  o["198.51.100.5"] = describe(fd, "198.51.100.5");
  o["2001:db8:5::5"] = describe(fd, "2001:db8:5::5");
  o["198.51.100.77"] = describe(fd, "198.51.100.77");
  o["2001:db8:77::77"] = describe(fd, "2001:db8:77::77");
  o["203.0.113.9"] = describe(fd, "203.0.113.9");
  o["2001:db8:99::1"] = describe(fd, "2001:db8:99::1");
  // Many in a row on one socket: every answer is the right one's.
  int wrong = 0;
  for (int i = 0; i < 200; ++i) {
    if (describe(fd, i % 2 ? "198.51.100.5" : "198.51.100.77") !=
        (i % 2 ? "local" : o["198.51.100.77"]))
      ++wrong;
  }
  o["repeated_wrong"] = std::to_string(wrong);
  close(fd);
  // A socket that cannot answer: the lookup fails, it never says "remote".
  o["closed_socket"] = describe(fd, "198.51.100.77").starts_with("error: ") ? "error" : "answered";
  return o;
}

}  // namespace

TEST_CASE("Route::local: local, broadcast, anycast and multicast routes are the host's",
          "[netfilter]") {
  CHECK(Route{0, RTN_LOCAL}.local());
  CHECK(Route{0, RTN_BROADCAST}.local());
  CHECK(Route{0, RTN_ANYCAST}.local());
  CHECK(Route{0, RTN_MULTICAST}.local());
  CHECK_FALSE(Route{0, RTN_UNICAST}.local());
  CHECK_FALSE(Route{ENETUNREACH, 0}.local());
}

TEST_CASE("lookup_route in a user+net namespace: its own addresses are local, routed ones are not",
          "[netfilter][netns]") {
  auto o = sbx::testing::run_in_netns(scenario);
  INFO("observations:\n" << sbx::testing::describe(o));
  if (!sbx::testing::made_namespaces(o)) return;
  REQUIRE(o.count("exception") == 0);
  REQUIRE(o["lo_up"] == "ok");
  REQUIRE(o["add4"] == "ok");
  REQUIRE(o["add6"] == "ok");
  REQUIRE(o["route4"] == "ok");
  REQUIRE(o["route6"] == "ok");
  CHECK(o["127.0.0.1"] == "local");
  CHECK(o["127.3.2.1"] == "local");
  CHECK(o["::1"] == "local");
  CHECK(o["198.51.100.5"] == "local");
  CHECK(o["2001:db8:5::5"] == "local");
  CHECK(o["198.51.100.77"] == "not local (type " + std::to_string(RTN_UNICAST) + ")");
  CHECK(o["2001:db8:77::77"] == "not local (type " + std::to_string(RTN_UNICAST) + ")");
  CHECK(o["203.0.113.9"] == "no route (ENETUNREACH)");
  CHECK(o["2001:db8:99::1"] == "no route (ENETUNREACH)");
  CHECK(o["repeated_wrong"] == "0");
  CHECK(o["closed_socket"] == "error");
}
