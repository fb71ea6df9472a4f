// The sandbox's loopback with large segments (runtime/network.cpp): the
// request's bytes, and in a fresh user+net namespace what the kernel makes
// of it, including the fallback when a kernel refuses the size.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../netns_child.hpp"
#include "runtime/launch.hpp"
#include "runtime/sandbox_steps.hpp"

using namespace sbx::runtime;

namespace {

struct LoState {
  bool up = false;
  std::uint32_t gso_ipv6 = 0;  // IFLA_GSO_MAX_SIZE
  std::uint32_t gso_ipv4 = 0;  // IFLA_GSO_IPV4_MAX_SIZE (0: not reported)
};

// RTM_GETLINK for ifindex 1 in the caller's netns.
bool read_lo(LoState& out) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return false;
  struct {
    nlmsghdr header;
    ifinfomsg info;
  } request{};
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_GETLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.info.ifi_index = 1;
  alignas(nlmsghdr) unsigned char reply[16384];
  bool ok = send(fd, &request, sizeof request, 0) == static_cast<ssize_t>(sizeof request);
  ssize_t got = ok ? recv(fd, reply, sizeof reply, 0) : -1;
  close(fd);
  if (got < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(ifinfomsg)))) return false;
  const auto* header = reinterpret_cast<const nlmsghdr*>(reply);
  if (header->nlmsg_type != RTM_NEWLINK || header->nlmsg_len > static_cast<std::size_t>(got))
    return false;
  const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(header));
  out.up = (info->ifi_flags & IFF_UP) != 0;
  int left = static_cast<int>(header->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
  for (const rtattr* a = IFLA_RTA(info); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if (RTA_PAYLOAD(a) < 4) continue;
    std::uint32_t value;
    std::memcpy(&value, RTA_DATA(a), 4);
    if (a->rta_type == kIflaGsoMaxSize) out.gso_ipv6 = value;
    if (a->rta_type == kIflaGsoIpv4MaxSize) out.gso_ipv4 = value;
  }
  return true;
}

// In a child in a new user+net namespace: set_up_network(plan) for network
// "none", then lo's state. nullopt where the namespaces cannot be made
// (unprivileged user namespaces off): the caller skips.
struct Outcome {
  bool ok = false;
  int error_number = 0;
  LoState lo;
};

std::optional<Outcome> bring_up_in_new_netns(const LaunchPlan& plan) {
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (!sbx::testing::enter_user_and_net_namespace()) _exit(3);
    ChildError err;
    Outcome outcome;
    outcome.ok = set_up_network(plan, -1, err);
    outcome.error_number = err.error_number;
    if (!read_lo(outcome.lo)) _exit(2);
    (void)!write(fds[1], &outcome, sizeof outcome);
    _exit(0);
  }
  close(fds[1]);
  Outcome outcome;
  const bool got = read(fds[0], &outcome, sizeof outcome) == static_cast<ssize_t>(sizeof outcome);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) {
    WARN("no user+net namespace here (unshare failed): skipped");
    return std::nullopt;
  }
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got);
  return outcome;
}

LaunchPlan none_plan(std::uint32_t segment_bytes) {
  LaunchPlan plan;
  plan.network = sbx::NetworkMode::none;
  plan.loopback_up_request = build_loopback_up_request();
  plan.loopback_large_segments_request =
      with_large_loopback_segments(plan.loopback_up_request, segment_bytes);
  return plan;
}

}  // namespace

TEST_CASE("the loopback request carries the two segment sizes", "[loopback_segments]") {
  const std::vector<unsigned char> plain = build_loopback_up_request();
  const std::vector<unsigned char> large = with_large_loopback_segments(plain);
  REQUIRE(large.size() == plain.size() + 2 * RTA_LENGTH(4));
  CHECK(
      std::equal(plain.begin() + sizeof(nlmsghdr), plain.end(), large.begin() + sizeof(nlmsghdr)));
  nlmsghdr header;
  std::memcpy(&header, large.data(), sizeof header);
  CHECK(header.nlmsg_len == large.size());
  CHECK(header.nlmsg_type == RTM_NEWLINK);
  unsigned short types[2];
  std::uint32_t values[2];
  for (int i = 0; i < 2; ++i) {
    rtattr a;
    const std::size_t at = plain.size() + static_cast<std::size_t>(i) * RTA_LENGTH(4);
    std::memcpy(&a, large.data() + at, sizeof a);
    std::memcpy(&values[i], large.data() + at + sizeof a, 4);
    CHECK(a.rta_len == RTA_LENGTH(4));
    types[i] = a.rta_type;
  }
  CHECK(types[0] == kIflaGsoMaxSize);
  CHECK(types[1] == kIflaGsoIpv4MaxSize);
  CHECK(values[0] == kLoopbackSegmentBytes);
  CHECK(values[1] == kLoopbackSegmentBytes);
}

TEST_CASE("large segments only from Linux 6.4 (CVE-2023-53669 before)", "[loopback_segments]") {
  CHECK(large_loopback_segments_safe("6.4.0"));
  CHECK(large_loopback_segments_safe("6.18.44-fc-v657"));
  CHECK(large_loopback_segments_safe("7.0.1"));
  CHECK(large_loopback_segments_safe("10.2"));
  CHECK_FALSE(large_loopback_segments_safe("6.3.13"));
  CHECK_FALSE(large_loopback_segments_safe("6.1.0-28-amd64"));  // Debian 12: fixed or not, unknown
  CHECK_FALSE(large_loopback_segments_safe("5.19.17"));
  CHECK_FALSE(large_loopback_segments_safe("4.18.0-553.el8"));
  CHECK_FALSE(large_loopback_segments_safe("linux"));
  CHECK_FALSE(large_loopback_segments_safe(""));
  CHECK_FALSE(large_loopback_segments_safe(nullptr));
}

TEST_CASE("lo comes up with 512 KiB segments", "[loopback_segments]") {
  if (!large_loopback_segments_safe()) {
    WARN("a kernel before 6.4: sbx plans no large segments here; skipped");
    return;
  }
  const auto outcome = bring_up_in_new_netns(none_plan(kLoopbackSegmentBytes));
  if (!outcome) return;
  CHECK(outcome->ok);
  CHECK(outcome->lo.up);
  CHECK(outcome->lo.gso_ipv6 == kLoopbackSegmentBytes);
  CHECK(outcome->lo.gso_ipv4 == kLoopbackSegmentBytes);
}

TEST_CASE("a kernel that refuses the size still gets lo up, without it", "[loopback_segments]") {
  // More than lo's tso_max_size: refused with EINVAL, as a kernel before
  // 5.19 refuses anything over 64 KiB.
  LaunchPlan refused = none_plan(kLoopbackSegmentBytes + 8);
  SECTION("the large request alone fails (the check of the fallback's own error)") {
    refused.loopback_up_request = refused.loopback_large_segments_request;
    const auto outcome = bring_up_in_new_netns(refused);
    if (!outcome) return;
    CHECK_FALSE(outcome->ok);
    CHECK(outcome->error_number == EINVAL);
  }
  SECTION("with the plain request after it, lo is up at the default size") {
    const auto outcome = bring_up_in_new_netns(refused);
    if (!outcome) return;
    CHECK(outcome->ok);
    CHECK(outcome->lo.up);
    CHECK(outcome->lo.gso_ipv6 == 65536);
  }
  SECTION("none planned (before 6.4): the plain request alone") {
    refused.loopback_large_segments_request.clear();
    const auto outcome = bring_up_in_new_netns(refused);
    if (!outcome) return;
    CHECK(outcome->ok);
    CHECK(outcome->lo.up);
    CHECK(outcome->lo.gso_ipv6 == 65536);
  }
}
