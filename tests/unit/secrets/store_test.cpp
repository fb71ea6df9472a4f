// The secrets store: names, requests, file modes, add/read/list/rm.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "secrets/secrets.hpp"

namespace fs = std::filesystem;
using sbx::secrets::Store;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sbx-secrets-test.XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("secret names: file-name safe, validated") {
  for (const char* ok : {"a", "anthropic_api_key", "GH-TOKEN", "x.y", "_x", "0abc"}) {
    CHECK_NOTHROW(sbx::secrets::check_name(ok));
  }
  for (const char* bad : {"", ".hidden", "..", "-x", "a/b", "a b", "a:b", "tok\n", "ü"}) {
    CHECK_THROWS_AS(sbx::secrets::check_name(bad), sbx::Error);
  }
  CHECK_THROWS_AS(sbx::secrets::check_name(std::string(65, 'a')), sbx::Error);
  CHECK_NOTHROW(sbx::secrets::check_name(std::string(64, 'a')));
}

TEST_CASE("secret requests: NAME or NAME:ENVVAR") {
  using sbx::secrets::Request;
  CHECK(sbx::secrets::parse_request("api") == Request{"api", ""});
  CHECK(sbx::secrets::parse_request("api:ANTHROPIC_API_KEY") ==
        Request{"api", "ANTHROPIC_API_KEY"});
  CHECK_THROWS_AS(sbx::secrets::parse_request("api:"), sbx::Error);
  CHECK_THROWS_AS(sbx::secrets::parse_request("api:1X"), sbx::Error);
  CHECK_THROWS_AS(sbx::secrets::parse_request("api:A-B"), sbx::Error);
  CHECK_THROWS_AS(sbx::secrets::parse_request("../x:A"), sbx::Error);
}

TEST_CASE("store location: XDG_DATA_HOME, else HOME") {
  std::map<std::string, std::string> env;
  auto get = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  CHECK_THROWS_AS(sbx::secrets::default_store_dir(get), sbx::Error);
  env["HOME"] = "/home/u/";
  CHECK(sbx::secrets::default_store_dir(get) == "/home/u/.local/share/sbx/secrets");
  env["XDG_DATA_HOME"] = "relative";  // not absolute: ignored (XDG spec)
  CHECK(sbx::secrets::default_store_dir(get) == "/home/u/.local/share/sbx/secrets");
  env["XDG_DATA_HOME"] = "/data";
  CHECK(sbx::secrets::default_store_dir(get) == "/data/sbx/secrets");
}

TEST_CASE("add, read, list, remove, with modes 0700 and 0600") {
  TempDir tmp;
  Store store((tmp.path / "a" / "secrets").string());
  CHECK(store.list().empty());
  store.add("tok", "s3cr3t\n", false);
  CHECK(mode_of(tmp.path / "a" / "secrets") == 0700);
  CHECK(mode_of(tmp.path / "a") == 0700);
  CHECK(mode_of(tmp.path / "a" / "secrets" / "tok") == 0600);
  CHECK(store.read("tok") == "s3cr3t\n");  // bytes as given
  CHECK_THROWS_AS(store.add("tok", "other", false), sbx::Error);
  store.add("tok", "other", true);
  CHECK(store.read("tok") == "other");
  store.add("b", "x", false);
  auto list = store.list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "b");
  CHECK(list[1].name == "tok");
  CHECK(list[1].size == 5);
  CHECK(store.remove("tok"));
  CHECK_FALSE(store.remove("tok"));
  CHECK_THROWS_AS(store.read("tok"), sbx::Error);
  CHECK_THROWS_AS(store.add("e", "", false), sbx::Error);
  CHECK_THROWS_AS(store.add("big", std::string(sbx::secrets::kMaxSecretBytes + 1, 'x'), false),
                  sbx::Error);
  // No temporary files left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(store.dir())) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
}

TEST_CASE("a secret file others can read, or a shared store, is refused") {
  TempDir tmp;
  Store store((tmp.path / "s").string());
  store.add("tok", "v", false);
  ::chmod((tmp.path / "s" / "tok").c_str(), 0644);
  CHECK_THROWS_AS(store.read("tok"), sbx::Error);
  ::chmod((tmp.path / "s" / "tok").c_str(), 0600);
  CHECK(store.read("tok") == "v");
  ::chmod((tmp.path / "s").c_str(), 0755);
  CHECK_THROWS_AS(store.read("tok"), sbx::Error);
  CHECK_THROWS_AS(store.add("x", "v", false), sbx::Error);
  ::chmod((tmp.path / "s").c_str(), 0700);
  // A symlink planted as a secret is not followed.
  fs::create_symlink("/etc/hostname", tmp.path / "s" / "link");
  CHECK_THROWS_AS(store.read("link"), sbx::Error);
}
