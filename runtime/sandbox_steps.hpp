// The steps the sandbox processes take between clone3 and execve, one kernel
// concern each. All are async-signal-safe: they read the LaunchPlan and make
// system calls; on failure they fill `err` and return false. The order in
// which they run is in launch.cpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "runtime/child_error.hpp"
#include "runtime/launch.hpp"

namespace sbx::runtime {

// ---- init (pid 1), init_steps.cpp
// Closes every fd above 2 that init does not need (its two channels, the
// mount plan's prepared trees, the cgroup.procs files the worker writes):
// what sbx or its caller had open, the supervisor's channel ends included.
bool keep_only_init_fds(const LaunchPlan& plan, int control_fd, int exec_fd, ChildError& err);
// Once the worker has joined the sandbox's cgroup: init keeps no way into it.
void close_cgroup_fds(const LaunchPlan& plan);
bool die_with_supervisor(int control_fd, ChildError& err);
bool wait_for_release(int control_fd, ChildError& err);
// An early start (launch.hpp init_before_release): init shares the
// supervisor's fd table until released, so no channel end closes when sbx
// dies; its process's pidfd says so instead, and the pidfd of init's parent
// thread (the parked thread; -1 before Linux 6.9) that this thread ended.
// die_with_supervisor_process arms PDEATHSIG; wait_for_release_early
// _exits when either pidfd says its process or thread ended (also before
// the flag was armed).
bool die_with_supervisor_process(ChildError& err);
bool wait_for_release_early(int control_fd, int supervisor_pidfd, int parent_thread_pidfd,
                            ChildError& err);
// Released: a copy of the shared fd table of its own (unshare CLONE_FILES),
// then keep_only_init_fds; tell_fd_table_own lets the supervisor close its
// copies of init's fds (a channel end it still held would never close).
bool take_own_fd_table(ChildError& err);
bool tell_fd_table_own(int control_fd, ChildError& err);
bool hide_from_command(ChildError& err);
bool become_sandbox_user(const Identity& identity, int control_fd, ChildError& err);
bool set_hostname(const LaunchPlan& plan, ChildError& err);
bool leave_host_session(ChildError& err);
bool block_signals_for_reaping(int* signal_fd, ChildError& err);
// Reaps every child, forwards signals to the worker, sends the worker's wait
// status to the supervisor and exits with its exit code. serve_sockets:
// also answers the supervisor's socket requests (network "filtered" with
// --publish: init passes out TCP sockets of the sandbox netns).
[[noreturn]] void reap_until_worker_exits(pid_t worker, int signal_fd, int control_fd,
                                          bool serve_sockets = false);

// ---- network, network.cpp
// Supervisor, before clone: the netlink request that sets lo up (libnl) and
// the `local default dev lo` route (AF_INET / AF_INET6).
std::vector<unsigned char> build_loopback_up_request();
inline constexpr unsigned short kIflaGsoMaxSize = 41;      // IFLA_GSO_MAX_SIZE
inline constexpr unsigned short kIflaGsoIpv4MaxSize = 63;  // IFLA_GSO_IPV4_MAX_SIZE (uapi 6.3)
// GSO_MAX_SIZE (8 * 65535), what the kernel allows for lo (its tso_max_size).
inline constexpr std::uint32_t kLoopbackSegmentBytes = 524280;
// The same request with lo's largest segments raised to 512 KiB for IPv6
// (IFLA_GSO_MAX_SIZE, Linux 5.19) and IPv4 (IFLA_GSO_IPV4_MAX_SIZE, 6.3):
// "BIG TCP" on the sandbox's loopback, which carries every connection of
// the sandbox to the egress proxy. One segment of up to 512 KiB instead of
// eight of 64 KiB: ~20 % more throughput through the proxy
// (docs/network.md).
std::vector<unsigned char> with_large_loopback_segments(
    std::vector<unsigned char> request, std::uint32_t bytes = kLoopbackSegmentBytes);
// Whether a kernel gets the large segments: Linux 6.4 or later. Before,
// the command could reach CVE-2023-53669 with them (skb_copy_ubufs() and
// BIG TCP: an out-of-bounds write from MSG_ZEROCOPY of huge pages to a
// local socket; fixed in 6.4 and in 6.1.28 / 6.2.15 / 6.3.2, which a
// distribution's version string does not tell). An unparsable release:
// no.
bool large_loopback_segments_safe(const char* kernel_release);
bool large_loopback_segments_safe();  // this kernel (uname)
std::vector<unsigned char> build_local_default_route_request(int family);
std::vector<unsigned char> build_sandbox_address_request();  // 127.0.0.2/32 on lo
// Filtered mode passes sockets out over control_fd (wait_for_go waits).
bool set_up_network(const LaunchPlan& plan, int control_fd, ChildError& err);
// With plan.wait_for_go: blocks until the supervisor's go, sent once the
// nftables ruleset is loaded (network "filtered") and the live controller
// has started (the CLI's name claim); the supervisor does both while init
// mounts. Nothing of the command may run before this returns true.
bool wait_for_go(const LaunchPlan& plan, int control_fd, ChildError& err);
// Init's reaper: one socket request from the supervisor (publish). False
// when the control channel is closed.
bool serve_socket_request(int control_fd);

// ---- worker, worker_steps.cpp
bool reset_signals(ChildError& err);
// Into the sandbox's cgroup (plan.cgroup_join_fds), then a cgroup
// namespace rooted there.
bool join_sandbox_cgroup(const LaunchPlan& plan, ChildError& err);
bool enter_nested_user_namespace(const LaunchPlan& plan, ChildError& err);
bool start_session(const LaunchPlan& plan, int exec_fd, ChildError& err);
bool set_resource_limits(const LaunchPlan& plan, ChildError& err);
bool close_inherited_fds(int keep_fd, ChildError& err);
bool drop_all_capabilities(const LaunchPlan& plan, ChildError& err);
bool set_no_new_privs(ChildError& err);
// Gives the caller's CPU set back (cpu_pin.hpp): the command is not pinned.
bool restore_caller_cpus(const LaunchPlan& plan, ChildError& err);
bool install_seccomp_last(const LaunchPlan& plan, int exec_fd, ChildError& err);
// execve with the PATH lookup done before clone; on failure reports errno
// over exec_fd and exits 126/127.
[[noreturn]] void exec_command(const LaunchPlan& plan, int exec_fd);

}  // namespace sbx::runtime
