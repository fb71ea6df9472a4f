// File math of the cgroups module: value formatting and parsing of the
// kernel's cgroup files, /proc/self/cgroup and mountinfo, group naming.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "cgroups/cgroup_files.hpp"

using namespace sbx::cgroups;

TEST_CASE("cpu.max from a fractional cpu count", "[cgroups]") {
  CHECK(format_cpu_max(0.5) == "50000 100000");
  CHECK(format_cpu_max(1) == "100000 100000");
  CHECK(format_cpu_max(2.25) == "225000 100000");
  CHECK(cpu_quota_us(0.333) == 33300);
  // The kernel refuses quotas below 1 ms.
  CHECK(cpu_quota_us(0.001) == 1000);
  CHECK(cpu_quota_us(0.0001) == 1000);
  CHECK_THROWS(cpu_quota_us(0));
  CHECK_THROWS(cpu_quota_us(-1));
}

TEST_CASE("limit values: numbers and max", "[cgroups]") {
  CHECK(parse_limit_value("67108864\n") == 67108864u);
  CHECK(parse_limit_value("max\n") == std::nullopt);
  CHECK(parse_limit_value("0") == 0u);
  CHECK_THROWS(parse_limit_value("12k"));
  CHECK_THROWS(parse_limit_value(""));
}

TEST_CASE("keyed files: memory.events, cpu.stat, oom_control", "[cgroups]") {
  auto ev = parse_keyed_file("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n");
  CHECK(ev["max"] == 12);
  CHECK(ev["oom_kill"] == 1);
  CHECK(ev["oom_group_kill"] == 1);
  auto cpu = parse_keyed_file("usage_usec 1500123\nuser_usec 1000000\nsystem_usec 500123\n");
  CHECK(cpu["usage_usec"] == 1500123);
  auto oom = parse_keyed_file("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  CHECK(oom["oom_kill"] == 3);
  CHECK(oom.count("under_oom") == 1);
  CHECK(parse_keyed_file("garbage\n\n").empty());
}

TEST_CASE("/proc/self/cgroup on a hybrid host and on pure v2", "[cgroups]") {
  auto hybrid = parse_proc_cgroup(
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/8d24\n2:cpu,cpuacct:/a:b\n0::/\n");
  REQUIRE(hybrid.size() == 5);
  CHECK(unified_path(hybrid) == "/");
  CHECK(v1_path(hybrid, "memory") == "/process_api/8d24");
  CHECK(v1_path(hybrid, "cpuacct") == "/a:b");  // ':' inside the path survives
  CHECK(v1_path(hybrid, "cpu") == "/a:b");
  CHECK(v1_path(hybrid, "blkio") == std::nullopt);
  CHECK(v1_path(hybrid, "name=systemd") == "/");

  auto v2 = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
  CHECK(unified_path(v2) == "/user.slice/user-1000.slice/session-2.scope");
  CHECK(v1_path(v2, "memory") == std::nullopt);
}

TEST_CASE("cgroup mounts from mountinfo", "[cgroups]") {
  auto mounts = parse_cgroup_mounts(
      "30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw,nsdelegate\n"
      "33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "34 30 0:30 /sub /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n"
      "35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n");
  REQUIRE(mounts.size() == 4);
  CHECK(mounts[0].v2);
  CHECK(mounts[0].mount_point == "/sys/fs/cgroup/unified");
  CHECK(mounts[1].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(mounts[2].mount_point == "/sys/fs/cgroup/my memory");
  CHECK(mounts[2].root == "/sub");
  CHECK(mounts[3].controllers.empty());  // name=systemd is no controller
}

TEST_CASE("group names carry the owning supervisor", "[cgroups]") {
  GroupOwner o{4242, 987654};
  auto name = group_name("my box/../x", o);
  CHECK(name == "my_box____x@4242.987654");
  auto back = parse_group_name(name);
  REQUIRE(back);
  CHECK(back->pid == 4242);
  CHECK(back->start_time == 987654);
  CHECK(group_name("", o) == "sandbox@4242.987654");
  CHECK(group_name(std::string(200, 'a'), o).size() == 64 + 1 + 11);
  CHECK_FALSE(parse_group_name("sbx-supervisor"));
  CHECK_FALSE(parse_group_name("x@12"));
  CHECK_FALSE(parse_group_name("x@0.5"));
  CHECK_FALSE(parse_group_name("x@a.5"));
}

TEST_CASE("start time from /proc/<pid>/stat, comm with spaces and parens", "[cgroups]") {
  std::string line =
      "123 (a b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 55555 1000 10";
  CHECK(parse_stat_start_time(line) == 55555u);
  CHECK_FALSE(parse_stat_start_time("123 (x) S 1"));
  // This process is its own live owner; a recycled pid (other start time) is not.
  auto me = current_owner();
  CHECK(me.pid == ::getpid());
  CHECK(me.start_time > 0);
  CHECK(owner_alive(me));
  CHECK_FALSE(owner_alive(GroupOwner{me.pid, me.start_time + 1}));
}
