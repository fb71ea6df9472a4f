/* embed.c — run a command in an sbx sandbox through the C ABI (libsbx.so)
 * and print every event it produces.
 *
 *   cc embed.c $(pkg-config --cflags --libs sbx) -o embed-c
 *   ./embed-c                       # the default demo command (below)
 *   ./embed-c -- ls -l /            # any command
 *
 * The default command tries mount(2), which sbx's default seccomp policy
 * denies: the sandbox reports it as a "syscall_denied" event.
 * docs/embedding.md explains the API. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <sbx/sbx.h>

static void on_event(const char* json, void* user_data) {
  int* count = user_data;
  ++*count;
  printf("event: %s\n", json);
  fflush(stdout);
}

int main(int argc, char** argv) {
  static const char* const demo[] = {
      "python3", "-c",
      "import ctypes, os\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
      "print('mount returned', rc, os.strerror(ctypes.get_errno()), flush=True)\n",
      NULL};
  const char* const* command = demo;
  if (argc > 2 && strcmp(argv[1], "--") == 0) command = (const char* const*)&argv[2];

  printf("libsbx %s\n", sbx_version());
  sbx_policy* policy = sbx_policy_new();
  /* airgapped: no network at all; 256M and 64 processes are enough here. */
  if (sbx_policy_load_profile(policy, "airgapped") != 0 ||
      sbx_policy_set_network(policy, "none") != 0 ||
      sbx_policy_set_memory(policy, 256u << 20) != 0 || sbx_policy_set_pids(policy, 64) != 0 ||
      sbx_policy_set_timeout_ms(policy, 60000) != 0 ||
      sbx_policy_set_env(policy, "EMBEDDED_BY", "embed.c") != 0) {
    fprintf(stderr, "embed: %s\nfix: %s\n", sbx_policy_error(policy), sbx_policy_error_fix(policy));
    sbx_policy_free(policy);
    return 125;
  }

  int events = 0;
  sbx_run* run = sbx_run_new();
  sbx_run_set_event_callback(run, on_event, &events);
  sbx_run_set_stdio(run, -1, 1, 2); /* no stdin; our stdout and stderr */
  if (sbx_run_start(run, policy, command) != 0) {
    fprintf(stderr, "embed: %s\nfix: %s\n", sbx_run_error(run), sbx_run_error_fix(run));
    sbx_run_free(run);
    sbx_policy_free(policy);
    return 125;
  }
  printf("started: supervisor pid %d\n", (int)sbx_run_pid(run));
  fflush(stdout);

  /* Non-blocking style: poll the run's fd, as an event loop would. */
  for (;;) {
    struct pollfd p = {.fd = sbx_run_fd(run), .events = POLLIN};
    if (poll(&p, 1, -1) < 0) continue;
    int state = sbx_run_process_events(run);
    if (state != 0) break; /* 1: finished, -1: error (on the handle) */
  }
  int rc = sbx_run_wait(run); /* already finished: returns at once */
  char* result = sbx_run_result_json(run);
  printf("result: %s\n", result ? result : "(none)");
  sbx_free(result);
  int exit_code = sbx_run_exit_code(run);
  if (rc != 0) {
    fprintf(stderr, "embed: %s\nfix: %s\n", sbx_run_error(run), sbx_run_error_fix(run));
  }
  printf("exit code %d, %d events\n", exit_code, events);
  sbx_run_free(run);
  sbx_policy_free(policy);
  return exit_code;
}
