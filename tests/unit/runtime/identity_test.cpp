#include <catch2/catch.hpp>

#include <sbx/error.hpp>

#include "runtime/identity.hpp"
#include "runtime/plan.hpp"

using sbx::ProcessPolicy;
using sbx::runtime::IdentitySource;
using sbx::runtime::resolve_identity;

namespace {

IdentitySource user(uid_t uid, gid_t gid) {
  IdentitySource s;
  s.real_uid = uid;
  s.effective_uid = uid;
  s.real_gid = gid;
  return s;
}

}  // namespace

TEST_CASE("an unprivileged caller runs as itself", "[identity]") {
  auto id = resolve_identity(ProcessPolicy{}, user(1234, 2345));
  CHECK(id.uid == 1234);
  CHECK(id.gid == 2345);
  CHECK_FALSE(id.started_as_root);
  CHECK(id.host_uid == 1234);
}

TEST_CASE("an unprivileged caller cannot pick another uid", "[identity]") {
  ProcessPolicy p;
  p.uid = 0;
  CHECK_THROWS_AS(resolve_identity(p, user(1234, 1234)), sbx::Error);
  p.uid = 1234;  // its own: fine
  CHECK(resolve_identity(p, user(1234, 1234)).uid == 1234);
  ProcessPolicy g;
  g.gid = 0;
  CHECK_THROWS_AS(resolve_identity(g, user(1234, 1234)), sbx::Error);
}

TEST_CASE("root defaults to nobody, never to root", "[identity]") {
  auto id = resolve_identity(ProcessPolicy{}, user(0, 0));
  CHECK(id.started_as_root);
  CHECK(id.uid == sbx::runtime::kNobodyUid);
  CHECK(id.gid == sbx::runtime::kNobodyGid);
}

TEST_CASE("root under sudo runs as the sudo user", "[identity]") {
  auto source = user(0, 0);
  source.sudo_uid = "1000";
  source.sudo_gid = "1001";
  auto id = resolve_identity(ProcessPolicy{}, source);
  CHECK(id.uid == 1000);
  CHECK(id.gid == 1001);
  source.sudo_uid = "10x";  // garbage is ignored
  CHECK(resolve_identity(ProcessPolicy{}, source).uid == sbx::runtime::kNobodyUid);
}

TEST_CASE("root with --user uses it over SUDO_UID", "[identity]") {
  auto source = user(0, 0);
  source.sudo_uid = "1000";
  ProcessPolicy p;
  p.uid = 4242;
  p.gid = 4343;
  auto id = resolve_identity(p, source);
  CHECK(id.uid == 4242);
  CHECK(id.gid == 4343);
  CHECK_FALSE(id.in_host_passwd);
  CHECK(id.user_name == "sbx4242");
  ProcessPolicy explicit_root;
  explicit_root.uid = 0;
  CHECK(resolve_identity(explicit_root, source).uid == 0);
}

TEST_CASE("a setuid sbx is refused", "[identity]") {
  auto source = user(1000, 1000);
  source.effective_uid = 0;
  CHECK_THROWS_AS(resolve_identity(ProcessPolicy{}, source), sbx::Error);
}

TEST_CASE("what ~ hides is hidden in the command's home too (sudo, --user)", "[identity]") {
  sbx::Policy policy;
  policy.filesystem.deny_read = {"/root/.ssh", "/root/.config", "/etc/shadow"};
  policy.filesystem.allow_read = {"/root/.config/git"};
  sbx::runtime::Identity id;
  id.home = "/tmp";
  auto moved = sbx::runtime::hide_in_command_home(policy, id, "/root");
  REQUIRE(moved);
  CHECK(moved->filesystem.deny_read == std::vector<std::string>{"/root/.ssh", "/root/.config",
                                                                "/etc/shadow", "/tmp/.ssh",
                                                                "/tmp/.config"});
  CHECK(moved->filesystem.allow_read ==
        std::vector<std::string>{"/root/.config/git", "/tmp/.config/git"});
  // The same home, no $HOME, a home of "/" (unknown) or one that does not
  // exist (nobody's /nonexistent): nothing to add.
  id.home = "/root/";
  CHECK_FALSE(sbx::runtime::hide_in_command_home(policy, id, "/root"));
  CHECK_FALSE(sbx::runtime::hide_in_command_home(policy, id, nullptr));
  id.home = "/";
  CHECK_FALSE(sbx::runtime::hide_in_command_home(policy, id, "/root"));
  id.home = "/nonexistent";
  CHECK_FALSE(sbx::runtime::hide_in_command_home(policy, id, "/root"));
  // /rootfs is not below /root.
  id.home = "/tmp";
  policy.filesystem.deny_read = {"/rootfs/.ssh"};
  policy.filesystem.allow_read.clear();
  CHECK_FALSE(sbx::runtime::hide_in_command_home(policy, id, "/root"));
}
