# Shared set-up of the Claude Code tests (agent_claude*.sh); source it after
# tests/lib.sh, with AGENT_TEST naming the test. Gives: the client installed
# by scripts/install-deps on PATH, WANT_VERSION, a private tmux server
# (tmux_, start_pane, pane, wait_pane, quit_claude), a home H and a work dir W outside
# /tmp (the sandbox's /tmp is its own tmpfs; as root the command runs as
# nobody), removed at exit, and use_strict_profile.
CLAUDE_BIN=/opt/sbx-test/claude/node_modules/.bin
[[ -x $CLAUDE_BIN/claude ]] || skip "Claude Code is not installed (scripts/install-deps installs it)"
command -v tmux >/dev/null || skip "needs tmux"
export PATH=$CLAUDE_BIN:$PATH
WANT_VERSION=$(node -p "require('/opt/sbx-test/claude/node_modules/@anthropic-ai/claude-code/package.json').version")

TMUX_SOCKET="sbx-${AGENT_TEST:-agent}-$$"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
_agent_cleanup() { tmux_ kill-server 2>/dev/null; _cleanup_scratch; }
trap _agent_cleanup EXIT
unset TMUX

H=$(mktemp -d "/var/tmp/sbx-${AGENT_TEST:-agent}-home.XXXXXX") || fail "mktemp"
W=$(mktemp -d "/var/tmp/sbx-${AGENT_TEST:-agent}-work.XXXXXX") || fail "mktemp"
_SCRATCH_DIRS+=("$H" "$W")

start_pane() {
  tmux_ kill-session -t t 2>/dev/null
  tmux_ new-session -d -s t -x 120 -y 40 "$1" || fail "tmux new-session failed"
}
pane() { tmux_ capture-pane -p -t t 2>/dev/null; }
wait_pane() {  # REGEX [SECONDS]
  for _ in $(seq $((${2:-30} * 10))); do
    [[ $(pane) =~ $1 ]] && return 0
    sleep 0.1
  done
  fail "pane never showed /$1/. Pane:
$(pane)"
}
# Claude Code's quit keys (Ctrl-C twice), then OUT = the pane once the
# command line that ran sbx printed its exit code (RC=N).
quit_claude() {
  tmux_ send-keys -t t C-c
  sleep 0.5
  tmux_ send-keys -t t C-c
  wait_pane "RC=[0-9]+" 30
  OUT=$(pane)
}

# Sets P to `run` + the strict profile with HOME=$H. As a user without a
# delegated cgroup strict refuses (limits.required): that refusal is
# checked, and P becomes strict with limits.required=false (a profile file
# in DIR).
use_strict_profile() {  # DIR
  P=(run -p strict --env "HOME=$H")
  is_root && return 0
  run_sbx "${P[@]}" -- true
  if [[ $RC -ne 125 ]]; then
    expect_rc 0 "strict runs unprivileged (delegated cgroup available)"
    return 0
  fi
  expect_out "cannot enforce resource limits" "strict refuses when limits cannot be enforced"
  expect_out "fix: .*systemd-run --user --scope" "the refusal says how to get a delegated cgroup"
  printf 'extends = "strict"\n[limits]\nrequired = false\n' >"$1/strict-soft.toml"
  P=(run -p "$1/strict-soft.toml" --env "HOME=$H")
  run_sbx "${P[@]}" -- true
  expect_rc 0 "strict + limits.required=false runs unprivileged"
  expect_out "warning" "sbx warns that the limits are not enforced"
}
