#!/usr/bin/env python3
"""embed.py - run a command in an sbx sandbox from Python, through the C ABI
of libsbx.so.0 with ctypes (no compiled binding), and print its events.

    python3 embed.py                 # the default demo command (below)
    python3 embed.py -- ls -l /      # any command
    SBX_LIBRARY=/opt/sbx/lib/libsbx.so.0 python3 embed.py

The default command tries mount(2), which sbx's default seccomp policy
denies: the sandbox reports a "syscall_denied" event. docs/embedding.md
explains the API; this file is also a minimal binding to copy.
"""
import ctypes
import ctypes.util
import json
import os
import select
import sys

EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


def load_libsbx():
    path = os.environ.get("SBX_LIBRARY") or ctypes.util.find_library("sbx") or "libsbx.so.0"
    lib = ctypes.CDLL(path)
    P, S, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs = {
        "sbx_version": (S, []),
        "sbx_free": (None, [P]),
        "sbx_policy_new": (P, []),
        "sbx_policy_free": (None, [P]),
        "sbx_policy_load_profile": (I, [P, S]),
        "sbx_policy_load_json": (I, [P, S, S]),
        "sbx_policy_set_network": (I, [P, S]),
        "sbx_policy_set_memory": (I, [P, ctypes.c_uint64]),
        "sbx_policy_set_pids": (I, [P, ctypes.c_uint64]),
        "sbx_policy_set_timeout_ms": (I, [P, ctypes.c_uint64]),
        "sbx_policy_set_env": (I, [P, S, S]),
        "sbx_policy_override": (I, [P, S, S]),
        "sbx_policy_error": (S, [P]),
        "sbx_policy_error_fix": (S, [P]),
        "sbx_run_new": (P, []),
        "sbx_run_free": (None, [P]),
        "sbx_run_set_stdio": (I, [P, I, I, I]),
        "sbx_run_set_event_callback": (I, [P, EVENT_FN, P]),
        "sbx_run_start": (I, [P, P, ctypes.POINTER(S)]),
        "sbx_run_fd": (I, [P]),
        "sbx_run_pid": (I, [P]),
        "sbx_run_process_events": (I, [P]),
        "sbx_run_wait": (I, [P]),
        "sbx_run_kill": (I, [P, I]),
        "sbx_run_exit_code": (I, [P]),
        "sbx_run_result_json": (P, [P]),  # a char* we must free: keep the pointer
        "sbx_run_error": (S, [P]),
        "sbx_run_error_fix": (S, [P]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class SbxError(Exception):
    pass


def main(argv):
    command = argv[argv.index("--") + 1:] if "--" in argv else [
        "python3", "-c",
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
        "print('mount returned', rc, os.strerror(ctypes.get_errno()), flush=True)\n"]
    lib = load_libsbx()
    print("libsbx", lib.sbx_version().decode(), flush=True)

    policy = lib.sbx_policy_new()
    def check_policy(rc):
        if rc != 0:
            raise SbxError("%s; fix: %s" % (lib.sbx_policy_error(policy).decode(),
                                           lib.sbx_policy_error_fix(policy).decode()))
    # A profile as JSON (the TOML structure), then overrides.
    check_policy(lib.sbx_policy_load_json(policy, json.dumps({
        "extends": "airgapped",
        "description": "embed.py demo",
        "network": {"mode": "none"},
        "limits": {"memory": "256M", "pids": 64},
    }).encode(), b"embed-py"))
    check_policy(lib.sbx_policy_set_timeout_ms(policy, 60000))
    check_policy(lib.sbx_policy_set_env(policy, b"EMBEDDED_BY", b"embed.py"))

    events = []
    @EVENT_FN
    def on_event(text, _user):
        event = json.loads(text.decode())
        events.append(event)
        print("event:", json.dumps(event), flush=True)

    run = lib.sbx_run_new()
    try:
        lib.sbx_run_set_event_callback(run, on_event, None)
        lib.sbx_run_set_stdio(run, -1, sys.stdout.fileno(), sys.stderr.fileno())
        c_argv = (ctypes.c_char_p * (len(command) + 1))(*[a.encode() for a in command], None)
        if lib.sbx_run_start(run, policy, c_argv) != 0:
            raise SbxError("%s; fix: %s" % (lib.sbx_run_error(run).decode(),
                                           lib.sbx_run_error_fix(run).decode()))
        print("started: supervisor pid", lib.sbx_run_pid(run), flush=True)
        # Event-loop style: wait for the fd, then let the library deliver.
        poller = select.poll()
        poller.register(lib.sbx_run_fd(run), select.POLLIN)
        while lib.sbx_run_process_events(run) == 0:
            poller.poll()
        ok = lib.sbx_run_wait(run) == 0
        raw = lib.sbx_run_result_json(run)
        result = json.loads(ctypes.string_at(raw).decode()) if raw else None
        lib.sbx_free(raw)
        print("result:", json.dumps(result), flush=True)
        if not ok:
            print("embed.py: %s; fix: %s" % (lib.sbx_run_error(run).decode(),
                                             lib.sbx_run_error_fix(run).decode()), file=sys.stderr)
        code = lib.sbx_run_exit_code(run)
        print("exit code %d, %d events" % (code, len(events)), flush=True)
        return code
    finally:
        lib.sbx_run_free(run)
        lib.sbx_policy_free(policy)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SbxError as e:
        print("embed.py:", e, file=sys.stderr)
        sys.exit(125)
