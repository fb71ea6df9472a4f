#!/usr/bin/env bash
# The `strict` allow-list is enough for everyday tools: a shell, git, python
# (with threads, subprocess, ssl), pip, node, npm, gcc and make all run under
# seccomp strict and make no denied call at all (no syscall_denied event).
source "$SBX_SOURCE_DIR/tests/lib.sh"

dir=$(scratch)
printf 'extends = "standard"\n[process.seccomp]\nmode = "strict"\n' >"$dir/strict.toml"
work=$(scratch)
cd "$work" || fail "cd $work"

# strict_run DESCRIPTION REGEX CMD...: exit 0, output matches, no denial event.
strict_run() {
  local what=$1 re=$2; shift 2
  run_sbx run -v --net none --profile "$dir/strict.toml" -- "$@"
  expect_rc 0 "strict: $what exits 0"
  expect_out "$re" "strict: $what prints what it should"
  expect_no_out 'event syscall_denied' "strict: $what makes no denied syscall"
}

# Every tool here is installed by scripts/install-deps: missing is a failure.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || fail "$t is not installed: run scripts/install-deps"
  done
}
need bash git python3 node make gcc

strict_run "bash -c" 'sum=42' bash -c 'set -e; x=$((6 * 7)); echo "sum=$x"; ls / >/dev/null; (sleep 0.01 &) ; wait; cat /etc/hostname >/dev/null'

git init -q repo && git -C repo config user.email t@example.org && git -C repo config user.name t
echo hello >repo/file && git -C repo add file && git -C repo commit -qm init
echo change >>repo/file
strict_run "git status" 'M file' git -C repo status --short
strict_run "git log" 'init' git -C repo log --oneline

strict_run "python3 -c" 'py-ok 0 [0-9a-f]{64}' python3 -c '
import hashlib, socket, ssl, subprocess, threading, tempfile
t = threading.Thread(target=lambda: None); t.start(); t.join()
rc = subprocess.run(["true"]).returncode
with tempfile.TemporaryFile() as f: f.write(b"x")
s = socket.socketpair(); s[0].close(); s[1].close()
print("py-ok", rc, hashlib.sha256(b"x").hexdigest())'
if python3 -m pip --version >/dev/null 2>&1; then
  strict_run "pip --version" '^pip |[[:space:]]pip [0-9]' python3 -m pip --version
fi

strict_run "node -e" 'node-ok hi 3' node -e '
const cp = require("child_process"), fs = require("fs"), os = require("os");
fs.writeFileSync("n.txt", "abc");
const { Worker } = require("worker_threads");
new Worker("1", { eval: true }).on("exit", () =>
  console.log("node-ok", cp.execSync("echo hi").toString().trim(), fs.readFileSync("n.txt").length));'
if command -v npm >/dev/null 2>&1; then
  strict_run "npm --version" '(^|[[:space:]])[0-9]+\.[0-9]+\.[0-9]+' npm --version
fi

cat >hello.c <<'C'
#include <pthread.h>
#include <stdio.h>
static void* run(void* a) { return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_join(t, 0); puts("hello-ok"); return 0; }
C
printf 'all: hello\n\t./hello\nhello: hello.c\n\tgcc -O2 -pthread -o hello hello.c\n' >Makefile
strict_run "make (gcc, a threaded program)" 'hello-ok' make -s

done_testing
