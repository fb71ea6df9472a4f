// The floor of issue 11's start-up targets: the least a launcher can do for
// the same isolation as `bwrap --unshare-all --ro-bind / / --dev /dev
// --proc /proc` -- one clone3 with user, mount, pid, net, ipc, uts and cgroup
// namespaces, the id maps, the host tree read-only in one recursive
// mount_setattr, a fresh /proc, an empty /dev tmpfs, pivot_root, no_new_privs
// and a one-rule seccomp filter, then execve. No init/worker split, no
// device nodes, no masks, no Landlock, no capability drop, no policy: a
// yardstick for bench/run, not a sandbox. Built static by bench/run.
//
//   minimal_launcher COMMAND [ARGS...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
  perror(what);
  _exit(125);
}

static void write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
  close(fd);
}

static void child(int go, char** argv) {
  char c;
  if (read(go, &c, 1) != 1) _exit(125);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
  if (mount("none", "/mnt", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")) die("tmpfs");
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/",
                          OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
  if (tree < 0) die("open_tree /");
  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof ro))
    die("mount_setattr");
  if (mkdir("/mnt/root", 0755)) die("mkdir");
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/mnt/root", MOVE_MOUNT_F_EMPTY_PATH))
    die("move_mount");
  if (mount("proc", "/mnt/root/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("proc");
  if (mount("none", "/mnt/root/dev", "tmpfs", MS_NOSUID, "mode=0755")) die("dev");
  if (chdir("/mnt/root") || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) ||
      chdir("/"))
    die("pivot_root");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) die("seccomp");
  execvp(argv[0], argv);
  die(argv[0]);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: minimal_launcher COMMAND [ARGS...]\n");
    return 125;
  }
  int go[2];
  if (pipe2(go, O_CLOEXEC)) die("pipe");
  struct clone_args args = {.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                                     CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP,
                            .exit_signal = SIGCHLD};
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) die("clone3");
  if (pid == 0) {
    close(go[1]);
    child(go[0], argv + 1);
  }
  close(go[0]);
  char path[64], map[64];
  snprintf(path, sizeof path, "/proc/%ld/setgroups", pid);
  write_file(path, "deny");
  snprintf(map, sizeof map, "%u %u 1", getuid(), getuid());
  snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
  write_file(path, map);
  snprintf(map, sizeof map, "%u %u 1", getgid(), getgid());
  snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
  write_file(path, map);
  if (write(go[1], "g", 1) != 1) die("release");
  int status;
  if (waitpid((pid_t)pid, &status, 0) < 0) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
