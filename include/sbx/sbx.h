/* sbx.h — the stable C ABI of libsbx (libsbx.so.0).
 *
 * Run a command in an sbx sandbox from any language that can call C: build a
 * policy from a profile (built-in name, TOML file, TOML text or JSON), adjust
 * it, start the command with the stdio you choose (or a pty), poll one fd,
 * receive audit events as JSON, wait for the exit status.
 *
 *     sbx_policy *p = sbx_policy_new();
 *     if (sbx_policy_load_profile(p, "airgapped") != 0)
 *       fprintf(stderr, "%s\nfix: %s\n", sbx_policy_error(p), sbx_policy_error_fix(p));
 *     sbx_run *r = sbx_run_new();
 *     sbx_run_set_event_callback(r, on_event, NULL);
 *     const char *argv[] = {"make", "test", NULL};
 *     if (sbx_run_start(r, p, argv) == 0 && sbx_run_wait(r) == 0)
 *       printf("exit %d\n", sbx_run_exit_code(r));
 *     sbx_run_free(r);
 *     sbx_policy_free(p);
 *
 * Process model: sbx_run_start forks a supervisor process (the `sbx run`
 * supervisor, in a child of the caller) whose stdio are the fds the caller
 * chose. The library starts no thread in the caller's process; callbacks run
 * only inside sbx_run_wait and sbx_run_process_events, on the calling thread.
 * Full guide: docs/embedding.md.
 *
 * Conventions:
 *  - Functions returning int return 0 on success and -1 on failure; the
 *    reason (one line) and the fix are then in sbx_policy_error /
 *    sbx_policy_error_fix or sbx_run_error / sbx_run_error_fix. Those strings
 *    stay valid until the next call on the same handle.
 *  - Strings are UTF-8 and NUL-terminated; the library copies what it keeps.
 *  - Strings returned as `char *` are the caller's: free them with sbx_free.
 *  - A handle is not thread-safe; different handles may be used on different
 *    threads at once.
 *  - ABI: only the functions below are exported. New functions may be added
 *    in later 0.x releases; none is removed or changes signature without a
 *    new SONAME.
 */
#ifndef SBX_SBX_H
#define SBX_SBX_H

#include <stdint.h>
#include <sys/types.h>

#if defined(SBX_BUILDING_LIBRARY)
#define SBX_API __attribute__((visibility("default")))
#else
#define SBX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ library */

/* The library's version, e.g. "0.1.0". */
SBX_API const char* sbx_version(void);
/* Frees a string returned by the library (NULL is ignored). */
SBX_API void sbx_free(void* string);

/* ------------------------------------------------------------------- policy */

typedef struct sbx_policy sbx_policy;

/* A new, empty policy handle. It must be loaded from a profile (one of the
 * sbx_policy_load_* calls) before it can run anything. NULL only when out of
 * memory. */
SBX_API sbx_policy* sbx_policy_new(void);
SBX_API void sbx_policy_free(sbx_policy* policy);

/* Loads a built-in profile ("strict", "standard", "airgapped", ...) or a
 * profile file (a name containing '/' or ending in ".toml"), replacing what
 * the handle held. Paths in it are expanded with the caller's $HOME, cwd and
 * $TMPDIR. */
SBX_API int sbx_policy_load_profile(sbx_policy* policy, const char* name_or_file);
/* Loads a profile from TOML text (the profile file format, docs/profiles.md;
 * `extends` may name built-ins or absolute paths). `name` names the profile
 * in errors and reports; NULL means "inline". */
SBX_API int sbx_policy_load_toml(sbx_policy* policy, const char* toml, const char* name);
/* Loads a profile from JSON with the same structure as the TOML format (what
 * `sbx profile show NAME --json` prints): {"extends": "base", "network":
 * {"mode": "none"}, "limits": {"memory": "2G"}}. */
SBX_API int sbx_policy_load_json(sbx_policy* policy, const char* json, const char* name);

/* Overrides, exactly like the `sbx run` options of the same name (list
 * options append, single options replace). Each value is validated at once;
 * a bad one fails here and leaves the policy unchanged. */
/* --net: "none", "filtered" or "host". */
SBX_API int sbx_policy_set_network(sbx_policy* policy, const char* mode);
/* --allow-domain: "example.com", "*.example.com". */
SBX_API int sbx_policy_allow_domain(sbx_policy* policy, const char* pattern);
/* --rw, --ro, --hide: a writable, read-only or hidden path. */
SBX_API int sbx_policy_add_writable(sbx_policy* policy, const char* path);
SBX_API int sbx_policy_add_read_only(sbx_policy* policy, const char* path);
SBX_API int sbx_policy_add_hidden(sbx_policy* policy, const char* path);
/* --memory in bytes, --pids as a count, --timeout in milliseconds; 0 removes
 * the limit ("unlimited"). */
SBX_API int sbx_policy_set_memory(sbx_policy* policy, uint64_t bytes);
SBX_API int sbx_policy_set_pids(sbx_policy* policy, uint64_t max_pids);
SBX_API int sbx_policy_set_timeout_ms(sbx_policy* policy, uint64_t milliseconds);
/* --env NAME=VALUE: set a variable inside the sandbox. */
SBX_API int sbx_policy_set_env(sbx_policy* policy, const char* name, const char* value);
/* --keep-env NAME: pass the caller's variable (or PREFIX*) through. */
SBX_API int sbx_policy_keep_env(sbx_policy* policy, const char* name);
/* Any `sbx run` option that takes a value, by its long name with or without
 * the dashes: sbx_policy_override(p, "--cpus", "2"),
 * sbx_policy_override(p, "tmpfs", "/scratch:size=1G"). Options: net,
 * allow-domain, deny-domain, allow-cidr, deny-cidr, allow-port, rw, ro, hide,
 * tmpfs, memory, cpus, pids, timeout, kill-after, env, keep-env, name,
 * audit-log, report, user, tty (always|never|auto). */
SBX_API int sbx_policy_override(sbx_policy* policy, const char* option, const char* value);

/* The resolved policy as JSON (`sbx profile show --resolved --json`) or as a
 * stand-alone TOML profile that sbx_policy_load_toml reads back to the same
 * policy. NULL on error. Free with sbx_free. */
SBX_API char* sbx_policy_to_json(sbx_policy* policy);
SBX_API char* sbx_policy_to_toml(sbx_policy* policy);

/* The last error on this handle: what failed and why (one line), and what to
 * do about it ("" when there is no fix to suggest). "" when no error. */
SBX_API const char* sbx_policy_error(const sbx_policy* policy);
SBX_API const char* sbx_policy_error_fix(const sbx_policy* policy);

/* ---------------------------------------------------------------------- run */

typedef struct sbx_run sbx_run;

/* Called once per event with one JSON object:
 *   {"type": "syscall_denied", "time": "2026-01-01T12:00:00.000Z",
 *    "data": {"syscall": "mount", "errno": "EPERM", ...}}
 * Types: docs/embedding.md. Warnings (e.g. a limit that cannot be enforced)
 * arrive as {"type": "warning", "time": ..., "data": {"message": "..."}}.
 * `json` is valid only during the call. */
typedef void (*sbx_event_fn)(const char* json, void* user_data);

SBX_API sbx_run* sbx_run_new(void);
/* Frees the handle. If the sandbox still runs, it is stopped first: SIGTERM,
 * then SIGKILL after the policy's kill-after grace, and reaped. */
SBX_API void sbx_run_free(sbx_run* run);

/* Before start. The command's stdin, stdout, stderr: fds of the caller,
 * duplicated at start (the caller may close them afterwards); -1 means
 * /dev/null. Default: the caller's own 0, 1, 2. A terminal among them gets a
 * private pty (policy's tty mode), never the terminal itself. */
SBX_API int sbx_run_set_stdio(sbx_run* run, int stdin_fd, int stdout_fd, int stderr_fd);
/* Before start. Give the command a new pseudo-terminal of rows x cols as its
 * stdin, stdout and stderr; after start, sbx_run_pty_fd returns the master
 * (read the command's output, write its input). Replaces sbx_run_set_stdio. */
SBX_API int sbx_run_use_pty(sbx_run* run, unsigned short rows, unsigned short cols);
/* Before start. Events go to fn(json, user_data); NULL turns them off. */
SBX_API int sbx_run_set_event_callback(sbx_run* run, sbx_event_fn fn, void* user_data);

/* Starts argv (NULL-terminated; argv[0] is looked up in the sandbox's PATH)
 * under the policy and returns at once. The policy is copied: it may be
 * changed or freed afterwards. A policy that cannot run (bad value, network
 * mode not available, ...) fails here; a sandbox that cannot be built fails
 * at sbx_run_wait with exit code 125 and the error on the handle. One start
 * per handle. */
SBX_API int sbx_run_start(sbx_run* run, sbx_policy* policy, const char* const argv[]);

/* After start: an fd that is readable whenever events are waiting or the run
 * has finished (poll/epoll it for POLLIN, then call sbx_run_process_events).
 * Owned by the handle: do not read or close it. -1 before start. */
SBX_API int sbx_run_fd(const sbx_run* run);
/* After start: the supervisor's pid (the child of the caller that runs the
 * sandbox). Signals sent to it are forwarded to the command. The library
 * reaps it: do not waitpid it. -1 before start. */
SBX_API pid_t sbx_run_pid(const sbx_run* run);
/* After start with sbx_run_use_pty: the pty master; owned by the handle. */
SBX_API int sbx_run_pty_fd(const sbx_run* run);

/* Delivers the events waiting now, without blocking. Returns 1 when the run
 * has finished (the result is available), 0 while it runs, -1 on error. */
SBX_API int sbx_run_process_events(sbx_run* run);
/* Blocks until the run finishes, delivering events meanwhile. Returns 0 when
 * the result is available (even if the command failed: see the exit code),
 * -1 when the sandbox could not be built or the supervisor failed (exit code
 * 125; the reason and fix on the handle). */
SBX_API int sbx_run_wait(sbx_run* run);
/* Sends sig to the command (through the supervisor, which forwards SIGTERM,
 * SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH); SIGKILL kills the
 * supervisor and with it, at once, every process of the sandbox. */
SBX_API int sbx_run_kill(sbx_run* run, int sig);

/* After the run finished. The command's exit code as `sbx run` would exit:
 * its own, 128+N when killed by signal N, 125 when sbx failed, 126/127 when
 * the command is not executable / not found. -1 before the run finished. */
SBX_API int sbx_run_exit_code(const sbx_run* run);
/* The signal that killed the command, 0 if it exited. */
SBX_API int sbx_run_term_signal(const sbx_run* run);
/* 1 if the policy's timeout stopped the command. */
SBX_API int sbx_run_timed_out(const sbx_run* run);
/* The whole result as JSON: exit_code, term_signal, timed_out, duration_ms,
 * user_cpu_us, system_cpu_us, peak_memory_bytes, peak_pids, events_dropped,
 * and error/fix when sbx failed. NULL before the run finished. */
SBX_API char* sbx_run_result_json(const sbx_run* run);

SBX_API const char* sbx_run_error(const sbx_run* run);
SBX_API const char* sbx_run_error_fix(const sbx_run* run);

#ifdef __cplusplus
}
#endif

#endif /* SBX_SBX_H */
