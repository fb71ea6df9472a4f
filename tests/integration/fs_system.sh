#!/usr/bin/env bash
# Filesystem: fresh /proc with kernel internals masked and /proc/sys
# read-only, a minimal /dev, a size-limited /tmp, host IPC sockets hidden
# unless the profile names them, and a passwd entry for the sandbox user.
source "$SBX_SOURCE_DIR/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 needed to create test sockets"
NL=$'\n'

W=$(scratch)
cd "$W" || fail "cd"

run_sbx run --net none -- sh -c '
  for f in kcore keys sysrq-trigger timer_list kallsyms; do
    [ -e /proc/$f ] || continue
    n=$(head -c 64 /proc/$f 2>/dev/null | wc -c)
    echo "$f:$n"
  done
  echo 1 2>/dev/null > /proc/sysrq-trigger && echo SYSRQ
  echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && echo PROCSYS
  awk "\$5 == \"/proc/sys\" && \$6 ~ /^ro/ { found = 1 } END { if (found) print \"SYS_RO\" }" /proc/self/mountinfo
  cat /proc/1/cmdline >/dev/null && echo PROC_OK'
expect_rc 0 "sandbox ran"
expect_no_out "(kcore|keys|sysrq-trigger|timer_list|kallsyms):[1-9]" "kcore, keys, sysrq-trigger, timer_list, kallsyms read empty"
expect_no_out "SYSRQ|PROCSYS" "sysrq-trigger and /proc/sys are not writable"
expect_out "SYS_RO" "/proc/sys is mounted read-only"
expect_out "PROC_OK" "/proc is the sandbox's own and readable"

run_sbx run --net none -- sh -c 'ls -A /dev | tr "\n" " "; echo; ls -A /dev/pts | tr "\n" " "; echo
  readlink /dev/ptmx; echo x > /dev/null && echo NULL_OK; head -c 8 /dev/zero | wc -c
  touch /dev/sbx-evil 2>/dev/null && echo DEV_W; touch /dev/shm/x && echo SHM_OK
  ls /dev/sda /dev/mem /dev/kmsg 2>/dev/null && echo HOSTDEV; true'
expect_rc 0 "sandbox ran"
expect_out "^([^$NL]*$NL)?core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero $NL" "/dev holds only the minimal set"
expect_out "pts/ptmx" "/dev/ptmx points at the private devpts"
expect_out "NULL_OK" "/dev/null is writable"
expect_out "(^|$NL)8$NL" "/dev/zero reads"
expect_no_out "DEV_W|HOSTDEV" "/dev is read-only and holds no host devices"
expect_out "SHM_OK" "/dev/shm is writable"

# nosuid on every mount; nodev on every mount except the device binds and
# the private devpts (whose nodes must open).
run_sbx run --net none -- awk '$6 !~ /(^|,)nosuid(,|$)/ { print "SUID " $5 }
  $6 !~ /(^|,)nodev(,|$)/ && $5 !~ "^/dev/(null|zero|full|random|urandom|tty|pts)$" { print "DEV " $5 }
  END { print "checked " NR }' /proc/self/mountinfo
expect_out "checked [1-9]" "mount table read"
expect_no_out "SUID |DEV " "every mount is nosuid, and nodev except the /dev nodes"

P=$(scratch)
cat > "$P/small.toml" <<TOML
extends = "standard"
[filesystem]
tmp_size = "1M"
TOML
run_sbx run -p "$P/small.toml" --net none -- sh -c '
  dd if=/dev/zero of=/tmp/fill bs=64k count=64 2>&1; ls -l /tmp/fill | awk "{print \"size \" \$5}"'
expect_rc 0 "sandbox ran"
expect_out "No space left on device" "writing past tmp_size fails with ENOSPC"
expect_out "size 10[0-9]{5}$|size 104857[0-9]" "/tmp holds at most about 1 MiB"

# Host IPC sockets. Create the ones we may (root: docker.sock, /run/user),
# and an ssh agent socket outside /tmp (one python3 start: it is slow here).
A=$(mktemp -d /var/tmp/sbx-agent.XXXXXX)
chmod 755 "$A"  # reachable by the sandbox user (a root caller's command is uid 65534)
_SCRATCH_DIRS+=("$A")
socks=("$A/agent.sock")
created=()
made_dirs=()
if is_root; then
  [[ -e /run/docker.sock ]] || created+=(/run/docker.sock)
  [[ -d /run/user/0 ]] || { mkdir -p /run/user/0 && made_dirs+=(/run/user/0); }
  [[ -e /run/user/0/bus ]] || created+=(/run/user/0/bus)
  [[ -d /tmp/.X11-unix ]] || { mkdir -p /tmp/.X11-unix && made_dirs+=(/tmp/.X11-unix); }
  [[ -e /tmp/.X11-unix/X99 ]] || created+=(/tmp/.X11-unix/X99)
fi
socks+=("${created[@]}")
python3 -c '
import socket, sys
for p in sys.argv[1:]:
    socket.socket(socket.AF_UNIX).bind(p)' "${socks[@]}" || fail "cannot create the test sockets"
trap 'rm -f "${created[@]}"; rmdir "${made_dirs[@]}" 2>/dev/null; _cleanup_scratch' EXIT
run_sbx run --net none -- sh -c "
  [ -S /run/docker.sock ] && echo DOCKER
  [ -S /var/run/docker.sock ] && echo VARDOCKER
  ls -A /run/user 2>/dev/null | grep . && echo RUNUSER
  [ -e /run/user/0/bus ] && echo BUS
  [ -S '$A/agent.sock' ] && echo AGENT
  [ -e /tmp/.X11-unix/X99 ] && echo X11
  true"
expect_rc 0 "sandbox ran"
OUT_NOAGENT=$OUT
[[ ! $OUT_NOAGENT =~ DOCKER|VARDOCKER|RUNUSER|BUS|X11 ]] || fail "a host socket is visible: $OUT_NOAGENT"
pass "docker.sock, /run/user (D-Bus session bus) and X11 sockets are not visible"
OUT=$(SSH_AUTH_SOCK="$A/agent.sock" "$SBX" run --net none -- sh -c "[ -S '$A/agent.sock' ] && echo AGENT; true" 2>&1)
expect_no_out "AGENT" "\$SSH_AUTH_SOCK is not visible"
# The agent's directory is hidden too when it is a private one (ssh-agent's
# /tmp/ssh-XXXX is 0700); a shared one ($A is 0755, like /run or /var/tmp)
# keeps its other entries: hiding it would hide /run/systemd/resolve and the
# rest of /run for an agent socket at /run/agent.sock.
echo shared >"$A/sibling" && chmod 644 "$A/sibling"
PRIV=$(mktemp -d /var/tmp/sbx-agentp.XXXXXX)  # 0700, the caller's
_SCRATCH_DIRS+=("$PRIV")
echo private >"$PRIV/sibling"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$PRIV/agent.sock" ||
  fail "cannot create the private agent socket"
# As root the command runs as 65534: the private dir is that user's, so
# only the mask keeps it out (not the permissions).
if is_root; then chown -R 65534:65534 "$PRIV" || fail "chown $PRIV"; fi
OUT=$(SSH_AUTH_SOCK="$A/agent.sock" "$SBX" run --net none -- sh -c "cat '$A/sibling'; [ -S '$A/agent.sock' ] && echo AGENT; true" 2>&1)
expect_out "shared" "a shared directory holding \$SSH_AUTH_SOCK keeps its other entries"
expect_no_out "AGENT" "\$SSH_AUTH_SOCK in a shared directory is not visible"
OUT=$(SSH_AUTH_SOCK="$PRIV/agent.sock" "$SBX" run --net none -- sh -c "ls -A '$PRIV'; cat '$PRIV/sibling'; true" 2>&1)
expect_no_out "private|agent.sock" "the private directory holding \$SSH_AUTH_SOCK is hidden whole"
cat > "$P/agent.toml" <<TOML
extends = "standard"
[filesystem]
unix_sockets = ["$A/agent.sock"]
TOML
OUT=$(SSH_AUTH_SOCK="$A/agent.sock" "$SBX" run -p "$P/agent.toml" --net none -- sh -c "[ -S '$A/agent.sock' ] && echo AGENT; true" 2>&1)
expect_out "AGENT" "a socket named in unix_sockets is visible"
# A runtime dir outside /run/user ($XDG_RUNTIME_DIR elsewhere) is hidden like
# /run/user: the user's sockets, and sbx's own state dirs ($XDG_RUNTIME_DIR/sbx
# when not root). Fails without the mask: the bus file shows.
X=$(mktemp -d /var/tmp/sbx-xdg.XXXXXX)
_SCRATCH_DIRS+=("$X")
chmod 700 "$X" && echo s >"$X/bus"
OUT=$(XDG_RUNTIME_DIR=$X "$SBX" run --net none -- sh -c "ls -A '$X'; [ -e '$X/bus' ] && echo XDGBUS; true" 2>&1)
expect_no_out "XDGBUS|sbx" "a runtime dir outside /run/user and sbx's state dirs in it are not visible"

# The sandbox user has a name, even when the host has no passwd entry.
if is_root; then
  run_sbx run --net none --user 43210:43210 -- sh -c 'id -un; id -gn; touch /etc/passwd 2>/dev/null && echo PW_W; true'
  expect_rc 0 "sandbox ran"
  expect_out "(^|$NL)[a-z_][a-z0-9_.-]*$NL[a-z_][a-z0-9_.-]*($NL|$)" "an unknown uid/gid gets passwd and group entries"
  expect_no_out "PW_W" "the generated /etc/passwd is read-only"
  grep -q ":43210:" /etc/passwd && fail "host /etc/passwd was changed"
  pass "host /etc/passwd unchanged"
else
  run_sbx run --net none -- sh -c 'id -un'
  expect_out "(^|$NL)$(id -un)($NL|$)" "the command sees the invoking user's name"
fi
done_testing
