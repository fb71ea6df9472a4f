#!/usr/bin/env bash
# The C ABI's behaviour, one assertion per promise of include/sbx/sbx.h:
# errors with a fix, overrides validated at once, JSON/TOML loading and round
# trip, exit codes, chosen stdio, a pty, kill, timeout, a sandbox that cannot
# be built, and sbx_run_free stopping a running sandbox. The test program is
# built against the build tree's libsbx.so.0 (embed_examples.sh covers the
# installed package).
source "$SBX_SOURCE_DIR/tests/lib.sh"
: "${SBX_BUILD_DIR:?}"
lib=$SBX_BUILD_DIR/capi
[[ -e $lib/libsbx.so.0 ]] || fail "$lib/libsbx.so.0 is missing: build the sbx_shared target"
tmp=$(scratch)
cd "$tmp" || fail "cd $tmp"

cat >"$tmp/t.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sbx/sbx.h>

static int failures = 0, passes = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (cond) {                                            \
      ++passes;                                            \
      printf("ok - " __VA_ARGS__);                         \
      printf("\n");                                        \
    } else {                                               \
      ++failures;                                          \
      printf("FAIL - " __VA_ARGS__);                       \
      printf("  (line %d)\n", __LINE__);                   \
    }                                                      \
  } while (0)

static char events[65536];
static void collect(const char *json, void *user) {
  (void)user;
  strncat(events, json, sizeof events - strlen(events) - 2);
  strcat(events, "\n");
}

static sbx_policy *airgapped(void) {
  sbx_policy *p = sbx_policy_new();
  if (sbx_policy_load_profile(p, "airgapped") != 0) {
    printf("FAIL - airgapped: %s\n", sbx_policy_error(p));
    exit(1);
  }
  return p;
}

/* Runs argv to the end; returns the handle (caller frees). */
static sbx_run *run_cmd(sbx_policy *p, const char *const *argv, int out_fd) {
  sbx_run *r = sbx_run_new();
  sbx_run_set_event_callback(r, collect, NULL);
  sbx_run_set_stdio(r, -1, out_fd, 2);
  if (sbx_run_start(r, p, argv) != 0) printf("# start: %s\n", sbx_run_error(r));
  sbx_run_wait(r);
  return r;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
  /* --- policies ------------------------------------------------------ */
  sbx_policy *p = sbx_policy_new();
  CHECK(sbx_policy_set_memory(p, 1 << 30) == -1 && strstr(sbx_policy_error(p), "no profile"),
        "an override before a profile fails: %s", sbx_policy_error(p));
  CHECK(sbx_policy_load_profile(p, "no-such-profile") == -1 &&
            strstr(sbx_policy_error(p), "no-such-profile") && *sbx_policy_error_fix(p),
        "an unknown profile fails with a fix: %s / %s", sbx_policy_error(p),
        sbx_policy_error_fix(p));
  CHECK(sbx_policy_load_profile(p, "airgapped") == 0 && *sbx_policy_error(p) == 0,
        "airgapped loads and clears the error");
  CHECK(sbx_policy_override(p, "--memory", "4X") == -1 && strstr(sbx_policy_error(p), "--memory") &&
            *sbx_policy_error_fix(p),
        "a bad --memory names the flag and a fix: %s", sbx_policy_error(p));
  char *j = sbx_policy_to_json(p);
  CHECK(j && strstr(j, "\"memory_bytes\": null"), "a rejected override leaves the policy unchanged");
  sbx_free(j);
  CHECK(sbx_policy_override(p, "bogus", "1") == -1 && strstr(sbx_policy_error(p), "unknown option"),
        "an unknown option is refused: %s", sbx_policy_error(p));
  CHECK(sbx_policy_set_memory(p, 512u << 20) == 0 && sbx_policy_set_pids(p, 100) == 0 &&
            sbx_policy_set_timeout_ms(p, 90000) == 0 && sbx_policy_allow_domain(p, "example.org") == 0 &&
            sbx_policy_add_hidden(p, "/etc/hostname") == 0 && sbx_policy_set_env(p, "A", "b c") == 0 &&
            sbx_policy_override(p, "cpus", "1.5") == 0,
        "the typed overrides are accepted");
  j = sbx_policy_to_json(p);
  CHECK(j && strstr(j, "\"memory_bytes\": 536870912") && strstr(j, "\"pids\": 100") &&
            strstr(j, "\"timeout_ms\": 90000") && strstr(j, "\"example.org\"") &&
            strstr(j, "\"/etc/hostname\"") && strstr(j, "\"A\": \"b c\"") && strstr(j, "\"cpus\": 1.5"),
        "they show in the resolved JSON");
  sbx_free(j);
  CHECK(sbx_policy_set_env(p, "A=B", "x") == -1, "an env name with '=' is refused");
  CHECK(sbx_policy_allow_domain(p, "*.com") == -1 && strstr(sbx_policy_error(p), "public suffix"),
        "*.com is refused like on the command line: %s", sbx_policy_error(p));
  char *t = sbx_policy_to_toml(p);
  sbx_policy *q = sbx_policy_new();
  CHECK(t && sbx_policy_load_toml(q, t, "airgapped") == 0, "to_toml loads back: %s", sbx_policy_error(q));
  char *j1 = sbx_policy_to_json(p), *j2 = sbx_policy_to_json(q);
  CHECK(j1 && j2 && strcmp(j1, j2) == 0, "and gives the same policy");
  sbx_free(t);
  sbx_free(j1);
  sbx_free(j2);
  CHECK(sbx_policy_load_toml(q, "[network]\nmode = \"nowhere\"\n", "bad") == -1 &&
            strstr(sbx_policy_error(q), "bad"),
        "bad TOML fails naming the profile: %s", sbx_policy_error(q));
  CHECK(sbx_policy_load_json(q, "{\"extends\":\"airgapped\",\"limits\":{\"memory\":\"1G\",\"pids\":7}}", "j") == 0,
        "JSON profile loads: %s", sbx_policy_error(q));
  j = sbx_policy_to_json(q);
  CHECK(j && strstr(j, "\"memory_bytes\": 1073741824") && strstr(j, "\"pids\": 7") &&
            strstr(j, "\"mode\": \"none\""),
        "JSON profile values and extends apply");
  sbx_free(j);
  CHECK(sbx_policy_load_json(q, "{\"limits\":{\"memory\":null}}", "j") == -1 &&
            strstr(sbx_policy_error(q), "limits.memory"),
        "null in JSON is refused by path: %s", sbx_policy_error(q));
  CHECK(sbx_policy_load_json(q, "[1,2]", "j") == -1, "a JSON array is refused");
  CHECK(sbx_policy_load_json(q, "{\"network\":{\"allow_domain\":[]}}", "j") == -1 &&
            strstr(sbx_policy_error(q), "allow_domain"),
        "an unknown JSON key is refused: %s", sbx_policy_error(q));
  sbx_policy_free(q);
  sbx_policy_free(p);

  /* --- runs ----------------------------------------------------------- */
  p = airgapped();
  sbx_run *r = sbx_run_new();
  CHECK(sbx_run_process_events(r) == -1 && strstr(sbx_run_error(r), "not started"),
        "process_events before start fails: %s", sbx_run_error(r));
  CHECK(sbx_run_exit_code(r) == -1 && sbx_run_fd(r) == -1 && sbx_run_pid(r) == -1,
        "no exit code, fd or pid before start");
  const char *none[] = {NULL};
  CHECK(sbx_run_start(r, p, none) == -1 && strstr(sbx_run_error(r), "no command"), "empty argv refused");
  sbx_run_free(r);

  const char *exit7[] = {"sh", "-c", "exit 7", NULL};
  r = run_cmd(p, exit7, 1);
  CHECK(sbx_run_exit_code(r) == 7 && sbx_run_term_signal(r) == 0, "exit 7 passes through (%d)",
        sbx_run_exit_code(r));
  sbx_run_free(r);

  const char *missing[] = {"no-such-command-xyz", NULL};
  r = run_cmd(p, missing, 1);
  CHECK(sbx_run_exit_code(r) == 127, "a missing command gives 127 (%d)", sbx_run_exit_code(r));
  sbx_run_free(r);

  int fds[2];
  if (pipe(fds) != 0) return 1;
  const char *echo[] = {"sh", "-c", "echo out-$((6*7)); echo err >&2", NULL};
  r = run_cmd(p, echo, fds[1]);
  close(fds[1]);
  char buf[4096] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  CHECK(n > 0 && strcmp(buf, "out-42\n") == 0, "stdout goes to the chosen fd, byte-exact (%s)", buf);
  CHECK(sbx_run_exit_code(r) == 0, "echo exits 0");
  sbx_run_free(r);

  /* Events: a denied syscall under the default seccomp policy. */
  events[0] = 0;
  const char *unshare[] = {"unshare", "-U", "true", NULL};
  r = run_cmd(p, unshare, 1);
  CHECK(sbx_run_exit_code(r) != 0 && strstr(events, "\"type\":\"syscall_denied\"") &&
            strstr(events, "\"time\":\""),
        "unshare -U is denied and reported as a JSON event: %.300s", events);
  sbx_run_free(r);

  /* Kill: SIGTERM is forwarded to the command. */
  const char *sleeper[] = {"sleep", "30", NULL};
  r = sbx_run_new();
  sbx_run_set_stdio(r, -1, 1, 2);
  CHECK(sbx_run_start(r, p, sleeper) == 0 && sbx_run_pid(r) > 0 && sbx_run_fd(r) >= 0,
        "start returns at once with a pid and an fd");
  CHECK(sbx_run_process_events(r) == 0, "process_events says running");
  usleep(300 * 1000);
  CHECK(sbx_run_kill(r, SIGTERM) == 0, "kill SIGTERM");
  double t0 = now();
  sbx_run_wait(r);
  CHECK(sbx_run_exit_code(r) == 143 && sbx_run_term_signal(r) == SIGTERM && now() - t0 < 5,
        "the command died of SIGTERM: exit %d", sbx_run_exit_code(r));
  CHECK(sbx_run_kill(r, SIGTERM) == -1, "kill after the end fails");
  sbx_run_free(r);

  /* Kill with SIGKILL: supervisor and sandbox die, exit 137. */
  r = sbx_run_new();
  sbx_run_set_stdio(r, -1, 1, 2);
  sbx_run_start(r, p, sleeper);
  usleep(300 * 1000);
  sbx_run_kill(r, SIGKILL);
  t0 = now();
  CHECK(sbx_run_wait(r) == 0 && sbx_run_exit_code(r) == 137 && now() - t0 < 5,
        "SIGKILL ends the run with 137 (%d)", sbx_run_exit_code(r));
  sbx_run_free(r);

  /* Timeout from the policy: a timeout event, timed_out set. */
  sbx_policy *pt = airgapped();
  sbx_policy_set_timeout_ms(pt, 400);
  sbx_policy_override(pt, "kill-after", "1s");
  events[0] = 0;
  t0 = now();
  r = run_cmd(pt, sleeper, 1);
  CHECK(sbx_run_timed_out(r) == 1 && now() - t0 < 10 && strstr(events, "\"type\":\"timeout\""),
        "the timeout stops sleep 30 and says so (exit %d)", sbx_run_exit_code(r));
  sbx_policy_free(pt);
  sbx_run_free(r);

  /* A pty: the command sees a terminal of the size asked for. */
  r = sbx_run_new();
  CHECK(sbx_run_use_pty(r, 33, 101) == 0, "use_pty");
  const char *tty[] = {"sh", "-c", "tty; stty size", NULL};
  CHECK(sbx_run_start(r, p, tty) == 0 && sbx_run_pty_fd(r) >= 0, "start with a pty");
  char out[8192] = {0};
  size_t used = 0;
  for (;;) {
    struct pollfd pf[2] = {{sbx_run_pty_fd(r), POLLIN, 0}, {sbx_run_fd(r), POLLIN, 0}};
    poll(pf, 2, 5000);
    if (pf[0].revents & POLLIN) {
      ssize_t k = read(sbx_run_pty_fd(r), out + used, sizeof out - used - 1);
      if (k > 0) used += (size_t)k;
    }
    if (sbx_run_process_events(r) != 0) break;
  }
  for (;;) { /* what is left in the pty after the end */
    struct pollfd pf = {sbx_run_pty_fd(r), POLLIN, 0};
    if (poll(&pf, 1, 200) <= 0 || !(pf.revents & POLLIN)) break;
    ssize_t k = read(sbx_run_pty_fd(r), out + used, sizeof out - used - 1);
    if (k <= 0) break;
    used += (size_t)k;
  }
  CHECK(strstr(out, "/dev/pts/") && strstr(out, "33 101") && sbx_run_exit_code(r) == 0,
        "the command has a pty of 33x101: %s", out);
  sbx_run_free(r);

  /* A sandbox that cannot be built: 125, the reason and a fix. */
  sbx_policy *pf = airgapped();
  sbx_policy_override(pf, "tmpfs", "/proc/no-such-dir"); /* no mount target inside */
  const char *truecmd[] = {"true", NULL};
  r = sbx_run_new();
  int started = sbx_run_start(r, pf, truecmd);
  int waited = started == 0 ? sbx_run_wait(r) : 0;
  char *res = sbx_run_result_json(r);
  CHECK(started == 0 && waited == -1 && sbx_run_exit_code(r) == 125 &&
            strstr(sbx_run_error(r), "no-such-dir") && *sbx_run_error_fix(r) && res &&
            strstr(res, "\"fix\""),
        "a policy that cannot run fails with a fix: %s / %s", sbx_run_error(r), sbx_run_error_fix(r));
  sbx_free(res);
  sbx_run_free(r);
  sbx_policy_free(pf);

  /* Freeing a running handle stops the sandbox and reaps the supervisor. */
  r = sbx_run_new();
  sbx_run_set_stdio(r, -1, 1, 2);
  sbx_run_start(r, p, sleeper);
  pid_t sup = sbx_run_pid(r);
  usleep(300 * 1000);
  t0 = now();
  sbx_run_free(r);
  CHECK(kill(sup, 0) == -1 && errno == ESRCH && now() - t0 < 5,
        "sbx_run_free stops and reaps the supervisor (%.1fs)", now() - t0);

  sbx_policy_free(p);
  printf("# %d passed, %d failed\n", passes, failures);
  return failures ? 1 : 0;
}
EOF
OUT=$(cc -std=c11 -Wall -Wextra -Werror -I"$SBX_SOURCE_DIR/include" -o "$tmp/t" "$tmp/t.c" \
  -L"$lib" -lsbx -Wl,-rpath,"$lib" 2>&1)
RC=$?
expect_rc 0 "the C ABI test program builds"
OUT=$(timeout 120 "$tmp/t" 2>&1 </dev/null)
RC=$?
echo "$OUT"
expect_rc 0 "every C ABI check passed"
expect_out "# [0-9]+ passed, 0 failed" "the checks ran"

# The supervisor dies with its caller: kill -9 the embedding process and
# the sandbox must go too (the record pipe's reader is gone).
cat >"$tmp/orphan.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
#include <sbx/sbx.h>
int main(int argc, char **argv) {
  (void)argc;
  sbx_policy *p = sbx_policy_new();
  if (sbx_policy_load_profile(p, "airgapped") != 0) return 2;
  sbx_run *r = sbx_run_new();
  sbx_run_set_stdio(r, -1, -1, -1);
  const char *cmd[] = {"sleep", argv[1], NULL};
  if (sbx_run_start(r, p, cmd) != 0) return 3;
  printf("%d\n", (int)sbx_run_pid(r));
  fflush(stdout);
  pause();
  return 0;
}
EOF
OUT=$(cc -std=c11 -I"$SBX_SOURCE_DIR/include" -o "$tmp/orphan" "$tmp/orphan.c" -L"$lib" -lsbx \
  -Wl,-rpath,"$lib" 2>&1)
RC=$?
expect_rc 0 "the orphan test program builds"
# A duration unique to this test run names the sandboxed sleep.
nap="1000.$$"
"$tmp/orphan" "$nap" >"$tmp/orphan.out" &
caller=$!
for _ in $(seq 50); do [[ -s $tmp/orphan.out ]] && break; sleep 0.1; done
sup=$(cat "$tmp/orphan.out")
[[ $sup =~ ^[0-9]+$ ]] || fail "no supervisor pid from the orphan program"
sleep 0.5
kill -0 "$sup" 2>/dev/null || fail "the supervisor is not running"
for _ in $(seq 50); do pgrep -x -f "sleep $nap" >/dev/null && break; sleep 0.1; done
pgrep -x -f "sleep $nap" >/dev/null || fail "the sandboxed sleep $nap is not visible (the check below would prove nothing)"
pass "the sandboxed command runs (visible from the host)"
kill -9 "$caller"
wait "$caller" 2>/dev/null
gone=0
for _ in $(seq 100); do
  if ! kill -0 "$sup" 2>/dev/null || [[ $(ps -o stat= -p "$sup" 2>/dev/null) == Z* ]]; then gone=1; break; fi
  sleep 0.1
done
((gone)) || { kill -9 "$sup" 2>/dev/null; fail "the supervisor outlived its caller"; }
pass "the supervisor stops when the embedding process dies"
for _ in $(seq 100); do pgrep -x -f "sleep $nap" >/dev/null || break; sleep 0.1; done
OUT=$(pgrep -a -x -f "sleep $nap")
[[ -z $OUT ]] || fail "the sandboxed command survived its caller: $OUT"
pass "no sandboxed process survives"

done_testing
