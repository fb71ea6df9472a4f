// GitGuard: what the sandbox changed in the git redirection surface of a
// work tree is moved aside and the original put back (the "sandbox" here is
// the test itself, changing the files between snapshot and check).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/git_guard.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    std::string tmpl = "/var/tmp/sbx-gitguard.XXXXXX";
    dir = ::mkdtemp(tmpl.data());
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

struct Reported {
  std::vector<Event> events;
  std::vector<std::string> warnings;
  RunOptions options;
  Reported() {
    options.on_event = [this](const Event& e) { events.push_back(e); };
    options.on_warning = [this](const std::string& w) { warnings.push_back(w); };
  }
};

std::vector<fs::path> quarantined(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().starts_with(prefix + ".sbx-quarantine-"))
      found.push_back(e.path());
  return found;
}

}  // namespace

TEST_CASE("git guard: a directory where the .git link was is moved aside, the link put back",
          "[git_guard]") {
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_directories(s.dir / "outside.git/hooks");
  fs::create_directory_symlink(s.dir / "outside.git", s.dir / "work/.git");
  Policy policy;
  policy.filesystem.deny_write = {(s.dir / "work/.git/hooks").string(),
                                  (s.dir / "work/.git/config").string()};
  Reported r;
  {
    const GitGuard guard(policy, r.options);
    // What `rm .git; git init; git config core.fsmonitor ...` leaves.
    fs::remove(s.dir / "work/.git");
    fs::create_directories(s.dir / "work/.git/hooks");
    std::ofstream(s.dir / "work/.git/config") << "[core]\n\tfsmonitor = evil\n";
  }
  CHECK(fs::is_symlink(s.dir / "work/.git"));
  CHECK(fs::read_symlink(s.dir / "work/.git") == s.dir / "outside.git");
  const auto moved = quarantined(s.dir / "work", ".git");
  REQUIRE(moved.size() == 1);
  CHECK(fs::is_regular_file(moved[0] / "config"));
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].data["path"] == (s.dir / "work/.git").string());
  CHECK(r.events[0].data["change"] == "replaced");
  CHECK(r.events[0].data["restored"] == true);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("replaced") != std::string::npos);
}

TEST_CASE("git guard: a directory where the gitfile was is moved aside, the gitfile put back",
          "[git_guard]") {
  Scratch s;
  fs::create_directories(s.dir / "work");
  std::ofstream(s.dir / "work/.git") << "gitdir: /somewhere/worktrees/w\n";
  Policy policy;
  policy.filesystem.deny_write = {(s.dir / "work/.git/hooks").string()};
  Reported r;
  {
    const GitGuard guard(policy, r.options);
    fs::remove(s.dir / "work/.git");
    fs::create_directories(s.dir / "work/.git");
    std::ofstream(s.dir / "work/.git/config") << "[core]\n\tfsmonitor = evil\n";
  }
  REQUIRE(fs::is_regular_file(fs::symlink_status(s.dir / "work/.git")));
  std::ifstream in(s.dir / "work/.git");
  std::string line;
  std::getline(in, line);
  CHECK(line == "gitdir: /somewhere/worktrees/w");
  CHECK(quarantined(s.dir / "work", ".git").size() == 1);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].data["change"] == "replaced");
}

TEST_CASE("git guard: an unchanged .git (link, directory) reports nothing", "[git_guard]") {
  Scratch s;
  fs::create_directories(s.dir / "work/.git/hooks");
  fs::create_directories(s.dir / "linked");
  fs::create_directories(s.dir / "outside.git/hooks");
  fs::create_directory_symlink(s.dir / "outside.git", s.dir / "linked/.git");
  Policy policy;
  policy.filesystem.deny_write = {(s.dir / "work/.git/hooks").string(),
                                  (s.dir / "linked/.git/hooks").string()};
  Reported r;
  { const GitGuard guard(policy, r.options); }
  CHECK(r.events.empty());
  CHECK(r.warnings.empty());
}
