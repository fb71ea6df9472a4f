/* sbx-probe: attempts ONE named operation and reports the outcome.
 *
 *   sbx-probe OP [ARGS...]
 *
 * Prints "ok[ detail]" and exits 0 when the operation succeeded, prints
 * "errno=NAME" and exits 1 when it failed, exits 2 on bad usage and 3 when the
 * probe could not set up the attempt. A syscall from another ABI that the
 * sandbox kills leaves the process dead by SIGSYS (a shell reports 159).
 * See tests/probe/README.md for every operation.
 *
 * Every operation is harmless when run outside a sandbox, even as root:
 * targets are nonexistent paths, invalid magic numbers, the probe's own
 * namespaces or keyrings, or a temporary directory it removes again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#define OPEN_TREE_CLONE_ 1
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4

enum { EXIT_OK = 0, EXIT_ERRNO = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };

static int usage(void);

static int report(long rc, const char* detail) {
  if (rc < 0) {
    const char* name = strerrorname_np(errno);
    printf("errno=%s\n", name ? name : "UNKNOWN");
    return EXIT_ERRNO;
  }
  if (detail && *detail)
    printf("ok %s\n", detail);
  else
    printf("ok\n");
  return EXIT_OK;
}

/* report() for a call that returns an fd: closes it on success. */
static int report_fd(long fd) {
  int saved = errno;
  if (fd >= 0) close((int)fd);
  errno = saved;
  return report(fd < 0 ? -1 : 0, NULL);
}

static int setup_failed(const char* what) {
  printf("setup: %s: %s\n", what, strerror(errno));
  return EXIT_SETUP;
}

static unsigned long long num(const char* s) {
  return strtoull(s, NULL, 0);
}

/* ---- terminal ---- */

/* TIOCSTI only works on the caller's controlling terminal (else the kernel
 * itself says EPERM), so the probe makes a fresh pty its controlling tty in
 * a child of its own session. Without /dev/ptmx it falls back to fd 0 (a
 * filter answers EPERM before the kernel would say ENOTTY). */
static int tty_ioctl(unsigned long long cmd, void* arg) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    long rc = syscall(SYS_ioctl, 0, cmd, arg);
    return report(rc, rc < 0 ? NULL : "(fd 0)");
  }
  const char* slave = ptsname(master);
  int pipefd[2];
  if (!slave || pipe(pipefd) != 0) return setup_failed("pty");
  pid_t pid = fork();
  if (pid < 0) return setup_failed("fork");
  if (pid == 0) {
    int result[2] = {0, 0};
    if (setsid() < 0) {
      result[1] = errno;
    } else {
      int fd = open(slave, O_RDWR); /* becomes the controlling terminal */
      if (fd < 0) {
        result[1] = errno;
        result[0] = 2;
      } else {
        long rc = syscall(SYS_ioctl, fd, cmd, arg);
        result[0] = rc < 0 ? 1 : 0;
        result[1] = rc < 0 ? errno : 0;
      }
    }
    if (write(pipefd[1], result, sizeof result) != sizeof result) _exit(3);
    _exit(0);
  }
  close(pipefd[1]);
  int result[2] = {3, 0};
  ssize_t n = read(pipefd[0], result, sizeof result);
  int status = 0;
  waitpid(pid, &status, 0);
  if (n != sizeof result) {
    if (WIFSIGNALED(status)) {
      printf("killed by signal %d\n", WTERMSIG(status));
      return 128 + WTERMSIG(status);
    }
    return setup_failed("child");
  }
  if (result[0] == 2) {
    errno = result[1];
    return setup_failed("open pty slave");
  }
  errno = result[1];
  return report(result[0] ? -1 : 0, NULL);
}

static int op_tiocsti(int high) {
  char c = '\n';
  unsigned long long cmd = TIOCSTI;
  if (high) cmd |= 1ULL << 32;
  return tty_ioctl(cmd, &c);
}

static int op_tioclinux(int high) {
  char subcode = 6; /* TIOCL_GETSHIFTSTATE: harmless even on a real VT */
  unsigned long long cmd = TIOCLINUX;
  if (high) cmd |= 1ULL << 32;
  return tty_ioctl(cmd, &subcode);
}

/* ---- processes and namespaces ---- */

static int wait_child(long pid) {
  if (pid < 0) return report(-1, NULL);
  if (pid == 0) _exit(0);
  int status;
  waitpid((pid_t)pid, &status, 0);
  return report(0, NULL);
}

static int op_clone(unsigned long long flags) {
  /* fork-like raw clone: no CLONE_VM, so the child runs on a copy */
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  return wait_child(pid);
}

static int op_clone3(unsigned long long flags) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof args);
  return wait_child(pid);
}

static int op_setns(void) {
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return setup_failed("open /proc/self/ns/net");
  return report(setns(fd, 0), NULL); /* joining the namespace it is in */
}

static int op_ptrace(pid_t pid) {
  /* SEIZE does not stop the target; the tracee is detached when we exit. */
  return report(ptrace(PTRACE_SEIZE, pid, 0, 0), NULL);
}

static int op_process_vm_readv(pid_t pid) {
  char buf[1];
  struct iovec local = {buf, 1}, remote = {(void*)0x10000, 1};
  /* EFAULT or EIO means the permission check passed (the address is bogus). */
  return report(process_vm_readv(pid, &local, 1, &remote, 1, 0), NULL);
}

/* ---- mounts ---- */

static int op_mount(void) {
  char dir[] = "/tmp/sbx-probe-mnt.XXXXXX";
  if (!mkdtemp(dir)) return setup_failed("mkdtemp");
  long rc = mount("sbx-probe", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k");
  int saved = errno;
  if (rc == 0) umount2(dir, MNT_DETACH);
  rmdir(dir);
  errno = saved;
  return report(rc, NULL);
}

/* ---- sockets ---- */

static int op_socket(unsigned long long family, int type, unsigned long long protocol) {
  return report_fd(syscall(SYS_socket, family, type, protocol));
}

static int op_connect(const char* host, const char* port, int udp) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)atoi(port));
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)atoi(port));
    len = sizeof *in6;
  } else {
    fprintf(stderr, "connect: HOST must be an IPv4 or IPv6 literal\n");
    return EXIT_USAGE;
  }
  int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return report(-1, NULL);
  if (udp) {
    long rc = connect(fd, (struct sockaddr*)&ss, len);
    if (rc == 0) rc = send(fd, "sbx-probe\n", 10, 0);
    return report(rc, NULL);
  }
  /* a 5 s timeout so a dropped SYN does not hang the test */
  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (connect(fd, (struct sockaddr*)&ss, len) != 0) {
    if (errno != EINPROGRESS) return report(-1, NULL);
    struct pollfd p = {fd, POLLOUT, 0};
    int n = poll(&p, 1, 5000);
    if (n == 0) {
      errno = ETIMEDOUT;
      return report(-1, NULL);
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      errno = err;
      return report(-1, NULL);
    }
  }
  return report(0, NULL);
}

static int op_resolve(const char* name) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(name, NULL, &hints, &res);
  if (rc != 0) {
    printf("error=%s\n", gai_strerror(rc));
    return EXIT_ERRNO;
  }
  printf("ok");
  for (struct addrinfo* a = res; a; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN];
    const void* addr = a->ai_family == AF_INET
                           ? (const void*)&((struct sockaddr_in*)a->ai_addr)->sin_addr
                           : (const void*)&((struct sockaddr_in6*)a->ai_addr)->sin6_addr;
    if (inet_ntop(a->ai_family, addr, buf, sizeof buf)) printf(" %s", buf);
  }
  printf("\n");
  freeaddrinfo(res);
  return EXIT_OK;
}

/* ---- other ABIs ---- */

static int op_int80(void) {
  long ret = 20; /* i386 getpid */
  __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
  if (ret < 0 && ret > -4096) {
    errno = (int)-ret;
    return report(-1, NULL);
  }
  char detail[64];
  snprintf(detail, sizeof detail, "pid=%ld", ret);
  return report(0, detail);
}

static int op_x32(void) {
  return report(syscall(__X32_SYSCALL_BIT | SYS_getpid), NULL);
}

/* ---- files and status ---- */

static int op_caps(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return setup_failed("/proc/self/status");
  char line[256];
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
        !strncmp(line, "Seccomp", 7) || !strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3))
      fputs(line, stdout);
  fclose(f);
  return EXIT_OK;
}

static int op_write_file(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return report(-1, NULL);
  long rc = write(fd, "sbx-probe\n", 10);
  close(fd);
  return report(rc < 0 ? -1 : 0, NULL);
}

static int op_read_file(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return report(-1, NULL);
  char buf[4096];
  long total = 0, n;
  while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
  close(fd);
  if (n < 0) return report(-1, NULL);
  char detail[64];
  snprintf(detail, sizeof detail, "bytes=%ld", total);
  return report(0, detail);
}

static int op_list_dir(const char* path) {
  DIR* d = opendir(path);
  if (!d) return report(-1, NULL);
  long n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  char detail[64];
  snprintf(detail, sizeof detail, "entries=%ld", n);
  return report(0, detail);
}

static int op_limits(void) {
  static const struct {
    int resource;
    const char* name;
  } limits[] = {{RLIMIT_CORE, "core"},
                {RLIMIT_NOFILE, "nofile"},
                {RLIMIT_NPROC, "nproc"},
                {RLIMIT_FSIZE, "fsize"}};
  char detail[256] = "";
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    struct rlimit rl;
    if (getrlimit(limits[i].resource, &rl) != 0) return report(-1, NULL);
    size_t used = strlen(detail);
    if (rl.rlim_max == RLIM_INFINITY)
      snprintf(detail + used, sizeof detail - used, "%s%s=unlimited", used ? " " : "",
               limits[i].name);
    else
      snprintf(detail + used, sizeof detail - used, "%s%s=%llu", used ? " " : "", limits[i].name,
               (unsigned long long)rl.rlim_max);
  }
  return report(0, detail);
}

/* One DNS query (type A, recursion desired) over UDP to SERVER:53; prints
 * the answer's rcode and answer count, or the errno (ETIMEDOUT after 3 tries, 7.5 s).
 * Used by `sbx check` to see that a query to ANY resolver is answered by
 * the sandbox's DNS filter (a refused or NXDOMAIN answer), never sent out. */
static int op_dns(const char* server, const char* name) {
  unsigned char q[512];
  size_t n = 0;
  const unsigned char header[12] = {0x5b, 0x78, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(q, header, sizeof header);
  n = sizeof header;
  const char* label = name;
  while (*label) {
    const char* dot = strchr(label, '.');
    size_t len = dot ? (size_t)(dot - label) : strlen(label);
    if (len == 0 || len > 63 || n + len + 6 > sizeof q) {
      fprintf(stderr, "dns: bad name\n");
      return EXIT_USAGE;
    }
    q[n++] = (unsigned char)len;
    memcpy(q + n, label, len);
    n += len;
    label += len + (dot ? 1 : 0);
  }
  const unsigned char tail[5] = {0, 0, 1, 0, 1}; /* root, type A, class IN */
  memcpy(q + n, tail, sizeof tail);
  n += sizeof tail;

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, server, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(53);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, server, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(53);
    len = sizeof *in6;
  } else {
    fprintf(stderr, "dns: SERVER must be an IPv4 or IPv6 literal\n");
    return EXIT_USAGE;
  }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return report(-1, NULL);
  if (connect(fd, (struct sockaddr*)&ss, len) != 0) return report(-1, NULL);
  /* Like a stub resolver: 3 tries, 2.5 s apart (7.5 s, inside the batch's
   * 10 s per attempt). One try of 3 s timed out under heavy load although
   * the sandbox's DNS filter answered a moment later. */
  struct pollfd p = {fd, POLLIN, 0};
  int ready = 0;
  for (int try = 0; try < 3 && !ready; try++) {
    if (send(fd, q, n, 0) < 0) return report(-1, NULL);
    ready = poll(&p, 1, 2500);
    if (ready < 0) return report(-1, NULL);
  }
  if (!ready) {
    errno = ETIMEDOUT;
    return report(-1, NULL);
  }
  unsigned char r[1500];
  long got = recv(fd, r, sizeof r, 0);
  if (got < 0) return report(-1, NULL);
  if (got < 12 || r[0] != q[0] || r[1] != q[1]) {
    printf("setup: dns: malformed answer\n");
    return EXIT_SETUP;
  }
  char detail[64];
  snprintf(detail, sizeof detail, "rcode=%d answers=%d", r[3] & 0x0f, (r[6] << 8) | r[7]);
  return report(0, detail);
}

/* ---- benchmark loops ---- */

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints wall time and CPU time (user + system): on a loaded machine the
 * CPU time is the steadier measure of per-syscall cost. */
static int op_loop(const char* what, long n) {
  if (n <= 0) return usage();
  double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  if (!strcmp(what, "getppid")) {
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
  } else if (!strcmp(what, "openat")) {
    for (long i = 0; i < n; i++) {
      long fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return report(-1, NULL);
      syscall(SYS_close, fd);
    }
  } else {
    fprintf(stderr, "loop: getppid or openat\n");
    return EXIT_USAGE;
  }
  double wall = clock_s(CLOCK_MONOTONIC) - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  printf("ok seconds=%.6f cpu_seconds=%.6f ns_per_iter=%.1f\n", wall, cpu, cpu * 1e9 / (double)n);
  return EXIT_OK;
}

static int usage(void) {
  fputs(
      "usage: sbx-probe OP [ARGS]   (see tests/probe/README.md)\n"
      "terminal: tiocsti tiocsti-high tioclinux tioclinux-high\n"
      "namespaces: clone-newuser clone-newns clone-newnet clone FLAGS clone3 [FLAGS]\n"
      "            unshare-user unshare-mount unshare-net setns\n"
      "mounts: mount umount pivot_root open_tree move_mount fsopen\n"
      "kernel: io_uring_setup keyctl add_key bpf perf_event_open userfaultfd syslog\n"
      "        open_by_handle_at name_to_handle_at acct swapon reboot kexec_load\n"
      "        init_module settimeofday clock_settime iopl ioperm personality VALUE\n"
      "processes: ptrace-attach PID process_vm_readv PID getpid\n"
      "sockets: socket-alg socket-alg-high socket-vsock socket-packet socket-key\n"
      "         socket-netlink-route socket-netlink-audit raw-socket socket FAMILY TYPE PROTO\n"
      "network: connect HOST PORT, udp HOST PORT, resolve NAME, dns SERVER NAME\n"
      "abi: int80 x32 syscall NR [ARGS...]\n"
      "files: caps limits write-file PATH read-file PATH list-dir PATH\n"
      "many: batch LABEL OP [ARGS...] [; LABEL OP [ARGS...]]...\n"
      "bench: loop getppid|openat N\n",
      stderr);
  return EXIT_USAGE;
}

static int run_op(int argc, char** argv);
static int op_batch(int argc, char** argv);

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2) return usage();
  if (strcmp(argv[1], "batch") == 0) return op_batch(argc - 2, argv + 2);
  return run_op(argc, argv);
}

/* batch LABEL OP [ARGS...] [; LABEL OP [ARGS...]]...: runs each operation in
 * its own child (so a SIGSYS kills only that attempt) and prints one line
 * per attempt: "LABEL<TAB>exit=N<TAB>ms=T<TAB>OUTPUT" or with "signal=N" (T: its
 * wall time in milliseconds).
 * Each attempt has 10 s; `sbx check` runs all its probes in one sandbox. */
static int op_batch(int argc, char** argv) {
  int i = 0;
  while (i < argc) {
    int end = i;
    while (end < argc && strcmp(argv[end], ";") != 0) end++;
    if (end - i < 2) {
      fprintf(stderr, "batch: each attempt needs LABEL OP\n");
      return EXIT_USAGE;
    }
    const char* label = argv[i];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int pipefd[2];
    if (pipe(pipefd) != 0) return setup_failed("pipe");
    pid_t pid = fork();
    if (pid < 0) return setup_failed("fork");
    if (pid == 0) {
      close(pipefd[0]);
      dup2(pipefd[1], STDOUT_FILENO);
      close(pipefd[1]);
      alarm(10);
      argv[end] = NULL;
      /* run_op sees argv[0] = LABEL (its program name) and argv[1] = OP */
      _exit(run_op(end - i, argv + i));
    }
    close(pipefd[1]);
    char out[512];
    size_t used = 0;
    long n;
    while ((n = read(pipefd[0], out + used, sizeof out - 1 - used)) > 0) {
      used += (size_t)n;
      if (used == sizeof out - 1) break;
    }
    close(pipefd[0]);
    out[used] = 0;
    for (size_t k = 0; k < used; k++)
      if (out[k] == '\n' || out[k] == '\t') out[k] = (k + 1 == used) ? 0 : ' ';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (WIFSIGNALED(status))
      printf("%s\tsignal=%d\tms=%ld\t%s\n", label, WTERMSIG(status), ms, out);
    else
      printf("%s\texit=%d\tms=%ld\t%s\n", label, WEXITSTATUS(status), ms, out);
    i = end + 1;
  }
  return EXIT_OK;
}

static int run_op(int argc, char** argv) {
  const char* op = argv[1];
  const char* a1 = argc > 2 ? argv[2] : NULL;
  const char* a2 = argc > 3 ? argv[3] : NULL;
#define IS(name) (strcmp(op, name) == 0)
#define NEED(n)                         \
  do {                                  \
    if (argc < 2 + (n)) return usage(); \
  } while (0)

  if (IS("tiocsti")) return op_tiocsti(0);
  if (IS("tiocsti-high")) return op_tiocsti(1);
  if (IS("tioclinux")) return op_tioclinux(0);
  if (IS("tioclinux-high")) return op_tioclinux(1);

  if (IS("clone-newuser")) return op_clone(CLONE_NEWUSER);
  if (IS("clone-newns")) return op_clone(CLONE_NEWNS);
  if (IS("clone-newnet")) return op_clone(CLONE_NEWNET);
  if (IS("clone-newpid")) return op_clone(CLONE_NEWPID);
  if (IS("clone")) {
    NEED(1);
    return op_clone(num(a1));
  }
  if (IS("clone3")) return op_clone3(a1 ? num(a1) : 0);
  if (IS("unshare-user")) return report(unshare(CLONE_NEWUSER), NULL);
  if (IS("unshare-mount")) return report(unshare(CLONE_NEWNS), NULL);
  if (IS("unshare-net")) return report(unshare(CLONE_NEWNET), NULL);
  if (IS("setns")) return op_setns();

  if (IS("mount")) return op_mount();
  if (IS("umount")) return report(umount2("/nonexistent-sbx-probe", MNT_DETACH), NULL);
  if (IS("pivot_root"))
    return report(syscall(SYS_pivot_root, "/nonexistent-sbx-probe-a", "/nonexistent-sbx-probe-b"),
                  NULL);
  if (IS("open_tree")) return report_fd(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE_));
  if (IS("move_mount"))
    return report(syscall(SYS_move_mount, -1, "", AT_FDCWD, "/nonexistent-sbx-probe",
                          MOVE_MOUNT_F_EMPTY_PATH_),
                  NULL);
  if (IS("fsopen")) return report_fd(syscall(SYS_fsopen, "tmpfs", 0));

  if (IS("io_uring_setup")) {
    unsigned char params[120]; /* struct io_uring_params */
    memset(params, 0, sizeof params);
    return report_fd(syscall(SYS_io_uring_setup, 1, params));
  }
  if (IS("keyctl"))
    return report(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1), NULL);
  if (IS("add_key"))
    return report(syscall(SYS_add_key, "user", "sbx-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING),
                  NULL);
  if (IS("bpf")) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return report_fd(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  }
  if (IS("perf_event_open")) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return report_fd(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  if (IS("userfaultfd"))
    return report_fd(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* USER_MODE_ONLY */));
  if (IS("syslog")) return report(syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0), NULL);
  if (IS("open_by_handle_at")) {
    struct {
      unsigned int bytes;
      int type;
      unsigned char h[8];
    } handle = {8, 1, {0}};
    return report_fd(syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY));
  }
  if (IS("name_to_handle_at")) {
    struct {
      unsigned int bytes;
      int type;
      unsigned char h[128];
    } handle = {128, 0, {0}};
    int mount_id;
    return report(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &handle, &mount_id, 0), NULL);
  }
  if (IS("acct")) return report(syscall(SYS_acct, "/nonexistent-sbx-probe"), NULL);
  if (IS("swapon")) return report(syscall(SYS_swapon, "/nonexistent-sbx-probe", 0), NULL);
  if (IS("reboot")) /* wrong magic: EINVAL even for root */
    return report(syscall(SYS_reboot, 0xfee1dead, 0, 0, NULL), NULL);
  if (IS("kexec_load")) return report(syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL), NULL);
  if (IS("init_module")) return report(syscall(SYS_init_module, NULL, 0, ""), NULL);
  if (IS("settimeofday")) {
    struct timezone tz = {15 * 60 + 1, 0}; /* out of range: EINVAL even for root */
    return report(syscall(SYS_settimeofday, NULL, &tz), NULL);
  }
  if (IS("clock_settime")) {
    struct timespec ts = {0, 0}; /* CLOCK_MONOTONIC cannot be set: EINVAL for root */
    return report(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts), NULL);
  }
  if (IS("iopl")) return report(syscall(SYS_iopl, 0), NULL);
  if (IS("ioperm")) return report(syscall(SYS_ioperm, 0x80, 1, 0), NULL);
  if (IS("personality")) {
    NEED(1);
    long old = syscall(SYS_personality, num(a1));
    if (old < 0) return report(-1, NULL);
    char detail[64];
    snprintf(detail, sizeof detail, "previous=%#lx", old);
    return report(0, detail);
  }

  if (IS("ptrace-attach")) {
    NEED(1);
    return op_ptrace((pid_t)atoi(a1));
  }
  if (IS("process_vm_readv")) {
    NEED(1);
    return op_process_vm_readv((pid_t)atoi(a1));
  }
  if (IS("getpid")) {
    char detail[32];
    snprintf(detail, sizeof detail, "pid=%d", getpid());
    return report(0, detail);
  }

  if (IS("socket-alg")) return op_socket(AF_ALG, SOCK_SEQPACKET, 0);
  if (IS("socket-alg-high")) return op_socket(AF_ALG | (1ULL << 32), SOCK_SEQPACKET, 0);
  if (IS("socket-vsock")) return op_socket(AF_VSOCK, SOCK_STREAM, 0);
  if (IS("socket-packet")) return op_socket(AF_PACKET, SOCK_RAW, htons(0x0003 /* ETH_P_ALL */));
  if (IS("socket-key")) return op_socket(AF_KEY, SOCK_RAW, 2 /* PF_KEY_V2 */);
  if (IS("socket-netlink-route")) return op_socket(AF_NETLINK, SOCK_RAW, 0);
  if (IS("socket-netlink-audit")) return op_socket(AF_NETLINK, SOCK_RAW, 9);
  if (IS("raw-socket")) return op_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (IS("socket")) {
    NEED(3);
    return op_socket(num(a1), (int)num(a2), num(argv[4]));
  }
  if (IS("connect")) {
    NEED(2);
    return op_connect(a1, a2, 0);
  }
  if (IS("udp")) {
    NEED(2);
    return op_connect(a1, a2, 1);
  }
  if (IS("resolve")) {
    NEED(1);
    return op_resolve(a1);
  }

  if (IS("int80")) return op_int80();
  if (IS("x32")) return op_x32();
  if (IS("syscall")) {
    NEED(1);
    unsigned long long a[6] = {0};
    for (int i = 0; i < 6 && 3 + i < argc; i++) a[i] = num(argv[3 + i]);
    long rc = syscall((long)num(a1), a[0], a[1], a[2], a[3], a[4], a[5]);
    char detail[32];
    snprintf(detail, sizeof detail, "ret=%ld", rc);
    return report(rc, detail);
  }

  if (IS("caps")) return op_caps();
  if (IS("write-file")) {
    NEED(1);
    return op_write_file(a1);
  }
  if (IS("read-file")) {
    NEED(1);
    return op_read_file(a1);
  }
  if (IS("list-dir")) {
    NEED(1);
    return op_list_dir(a1);
  }
  if (IS("limits")) return op_limits();
  if (IS("dns")) {
    NEED(2);
    return op_dns(a1, a2);
  }
  if (IS("loop")) {
    NEED(2);
    return op_loop(a1, atol(a2));
  }
  fprintf(stderr, "sbx-probe: unknown operation '%s'\n", op);
  return usage();
}
