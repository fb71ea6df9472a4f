# Shared set-up of the Claude Code tests (agent_claude*.sh); source it after
# tests/lib.sh, with AGENT_TEST naming the test. Gives: the client installed
# by scripts/install-deps on PATH, WANT_VERSION, a private tmux server
# (tmux_), and a home H and a work dir W outside /tmp (the sandbox's /tmp is
# its own tmpfs; as root the command runs as nobody), removed at exit.
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
