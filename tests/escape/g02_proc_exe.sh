#!/usr/bin/env bash
# Group 2: overwrite the runtime through /proc (runc CVE-2019-5736) and reach
# the supervisor through /proc/1/{exe,mem,root,cwd}. The sandbox's pid 1 is
# sbx's own init (a clone of the sbx binary, holding capabilities over the
# sandbox's namespaces): it must be non-dumpable, so none of its /proc links
# open. The supervisor (host pid) must be invisible: not in the pid namespace.
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

sum_before=$(sha256sum "$SBX" | cut -d' ' -f1)
for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  esc_args "$p"
  # The command waits until the test has written the supervisor's host pid
  # into the work dir, then attacks it and init.
  "$SBX" run "${PA[@]}" -- sh -c '
    while [ ! -s sup ]; do sleep 0.05; done; s=$(cat sup)
    echo "INIT_PPID=$(awk "/^PPid:/ {print \$2}" /proc/1/status)"
    exec "$0" "$1" selfexe_w:wronly:/proc/self/exe \
      init_exe_w:wronly:/proc/1/exe init_exe_r:read:/proc/1/exe init_exe_l:readlink:/proc/1/exe \
      ppid_exe_w:wronly:/proc/$PPID/exe \
      init_mem_r:read:/proc/1/mem init_mem_w:wronly:/proc/1/mem \
      init_root:ls:/proc/1/root init_root_cd:chdir:/proc/1/root init_cwd:ls:/proc/1/cwd \
      init_fd:ls:/proc/1/fd init_environ:read:/proc/1/environ \
      sup_proc:ls:/proc/$s sup_exe_w:wronly:/proc/$s/exe sup_kill:kill:$s:0 sup_ptrace:ptrace:$s \
      sbx_bin_w:wronly:'"$SBX"'' "$PY" "$ESC_PY" >"$W/out" 2>&1 </dev/null &
  sbx_pid=$!
  echo "$sbx_pid" >"$W/sup.tmp" && mv "$W/sup.tmp" "$W/sup"
  wait "$sbx_pid"
  RC=$? OUT=$(cat "$W/out")
  expect_rc 0 "$p: attempts ran"
  expect_out "(^|$NL)INIT_PPID=0($NL|$)" "$p: the sandbox's pid 1 has no visible parent (supervisor outside the pid namespace)"
  expect_denied selfexe_w "$p: /proc/self/exe cannot be opened for writing"
  expect_res init_exe_w EACCES "$p: /proc/1/exe (the sbx binary) cannot be opened for writing"
  expect_res init_exe_r EACCES "$p: /proc/1/exe cannot be opened at all"
  expect_res init_exe_l EACCES "$p: /proc/1/exe cannot even be read as a link"
  expect_res ppid_exe_w EACCES "$p: /proc/\$PPID/exe cannot be opened for writing"
  expect_res init_mem_r EACCES "$p: /proc/1/mem is not readable"
  expect_res init_mem_w EACCES "$p: /proc/1/mem is not writable"
  expect_res init_root EACCES "$p: /proc/1/root is not listable"
  expect_res init_root_cd EACCES "$p: /proc/1/root is not enterable"
  expect_res init_cwd EACCES "$p: /proc/1/cwd is not listable"
  expect_res init_fd EACCES "$p: /proc/1/fd is not listable"
  expect_res init_environ EACCES "$p: /proc/1/environ (the supervisor's environment) is not readable"
  expect_res sup_proc ENOENT "$p: the supervisor's host pid has no /proc entry inside"
  expect_res sup_exe_w ENOENT "$p: the supervisor's /proc/<pid>/exe does not exist inside"
  expect_res sup_kill ESRCH "$p: the supervisor cannot be signalled"
  expect_res sup_ptrace "EPERM|ESRCH" "$p: the supervisor cannot be ptraced"
  expect_res sbx_bin_w "EROFS|EACCES|ETXTBSY" "$p: the sbx binary itself is not writable"
  cd / || fail "cd /"
done
[[ $(sha256sum "$SBX" | cut -d' ' -f1) == "$sum_before" ]] || fail "the sbx binary changed on the host"
pass "the sbx binary on the host is unchanged"
esc_done "2 (/proc/*/exe, /proc/1/*)"
