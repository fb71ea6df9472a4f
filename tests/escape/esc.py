#!/usr/bin/python3
"""Escape attempts for tests/escape: one line per attempt, run INSIDE a sandbox.

    esc.py LABEL:OP[:ARG[:ARG]] ...

For each attempt prints "LABEL=ok[ DETAIL]" when the operation succeeded or
"LABEL=ERRNO_NAME" (e.g. "LABEL=EROFS") when it failed. The test script then
asserts the exact outcome per label. Every operation is a plain syscall: no
shell quoting, no interpretation of the result here.

Ops: read P | write P (append "evil\n", create) | wronly P (open O_WRONLY, no
create) | ls P | readlink P | chdir P (then getcwd) | climb P (chdir P then
"..", 64 times, then list) | kill PID SIG | link A B | symlink A B | rename A B |
exchange A B (renameat2 RENAME_EXCHANGE) | unlink P | rmdir P | mkdir P |
ptrace PID (PTRACE_SEIZE) | vmread PID (process_vm_readv of 1 byte at the
target's stack) | fds (list /proc/self/fd without the listing fd) |
openfds (open /dev/null until failure, prints count) | exec P [ARGS] (execv in a
child, prints exit status) | ioctl FD REQ (raw, 64-bit REQ)
"""
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(label, e):
    code = e.errno if isinstance(e, OSError) else e
    print(f"{label}={errno.errorcode.get(code, code)}", flush=True)


def ok(label, detail=""):
    print(f"{label}=ok{(' ' + detail) if detail else ''}", flush=True)


def raw(label, rc, detail=""):
    if rc < 0:
        fail(label, ctypes.get_errno())
    else:
        ok(label, detail)


def attempt(spec):
    parts = spec.split(":")
    label, op, args = parts[0], parts[1], parts[2:]
    try:
        if op == "read":
            with open(args[0], "rb") as f:
                data = f.read(4096)
            ok(label, f"bytes={len(data)}")
        elif op == "write":
            fd = os.open(args[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, b"evil\n")
            os.close(fd)
            ok(label)
        elif op == "wronly":
            fd = os.open(args[0], os.O_WRONLY)
            os.close(fd)
            ok(label)
        elif op == "ls":
            ok(label, f"entries={len(os.listdir(args[0]))}")
        elif op == "readlink":
            ok(label, os.readlink(args[0]))
        elif op == "chdir":
            here = os.getcwd()
            os.chdir(args[0])
            try:
                ok(label, os.getcwd())
            finally:
                os.chdir(here)
        elif op == "climb":
            here = os.getcwd()
            os.chdir(args[0])
            for _ in range(64):
                os.chdir("..")
            st, root = os.stat("."), os.stat("/")
            detail = "same-as-root" if (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino) else "OTHER-ROOT"
            os.chdir(here)
            ok(label, detail)
        elif op == "kill":
            os.kill(int(args[0]), int(args[1]))
            ok(label)
        elif op == "link":
            os.link(args[0], args[1])
            ok(label)
        elif op == "symlink":
            os.symlink(args[0], args[1])
            ok(label)
        elif op == "rename":
            os.rename(args[0], args[1])
            ok(label)
        elif op == "exchange":
            AT_FDCWD, RENAME_EXCHANGE = -100, 2
            raw(label, libc.syscall(316, AT_FDCWD, args[0].encode(), AT_FDCWD, args[1].encode(),
                                    RENAME_EXCHANGE))
        elif op == "unlink":
            os.unlink(args[0])
            ok(label)
        elif op == "rmdir":
            os.rmdir(args[0])
            ok(label)
        elif op == "mkdir":
            os.mkdir(args[0])
            ok(label)
        elif op == "ptrace":
            PTRACE_SEIZE = 0x4206
            raw(label, libc.syscall(101, PTRACE_SEIZE, int(args[0]), 0, 0))
        elif op == "vmread":
            buf = ctypes.create_string_buffer(1)

            class iovec(ctypes.Structure):
                _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

            local = iovec(ctypes.cast(buf, ctypes.c_void_p), 1)
            remote = iovec(0x10000, 1)  # unmapped: EFAULT would mean the check passed
            rc = libc.syscall(310, int(args[0]), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
            raw(label, rc)
        elif op == "fds":
            d = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
            fds = sorted(int(x) for x in os.listdir(d) if int(x) != d)
            os.close(d)
            ok(label, " ".join(map(str, fds)))
        elif op == "openfds":
            n = 0
            try:
                while n < 1 << 20:
                    os.open("/dev/null", os.O_RDONLY)
                    n += 1
            except OSError as e:
                print(f"{label}={errno.errorcode.get(e.errno, e.errno)} after={n}", flush=True)
                return
            ok(label, f"opened={n}")
        elif op == "exec":
            pid = os.fork()
            if pid == 0:
                try:
                    os.execv(args[0], args)
                except OSError as e:
                    os._exit(200 + min(e.errno, 50))
            _, status = os.waitpid(pid, 0)
            ok(label, f"status={os.waitstatus_to_exitcode(status)}")
        elif op == "ioctl":
            c = ctypes.c_char(b"x")
            raw(label, libc.syscall(16, int(args[0]), ctypes.c_ulong(int(args[1], 0)), ctypes.byref(c)))
        else:
            print(f"{label}=BADOP", flush=True)
    except OSError as e:
        fail(label, e)


for spec in sys.argv[1:]:
    attempt(spec)
