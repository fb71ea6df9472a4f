#!/usr/bin/env bash
# The real Claude Code client (npm @anthropic-ai/claude-code, installed by
# scripts/install-deps into /opt/sbx-test/claude) under the strict profile:
# `claude --version`; the interactive TUI under tmux reaches its prompt
# (trust-folder and API-key questions answered) and quits cleanly on
# Ctrl-C Ctrl-C, writing its state (~/.claude.json, ~/.claude/) through to
# the host; node, npm, git and rg work; the npm registry call fails fast.
#
# strict has limits.required = true. As root, sbx enforces the limits
# (cgroup v1 here). An unprivileged user without a delegated cgroup cannot
# have them, and strict refuses (checked below); the rest of the test then
# runs with strict-soft.toml = strict + `limits.required = false` (an
# explicit, visible override: sbx warns that the limits are not enforced).
source "$SBX_SOURCE_DIR/tests/lib.sh"
# The point is that the client's state reaches the real home H while the
# rest of the home stays read-only (tests/lib_agent.sh: H, W, tmux_).
AGENT_TEST=agent
source "$SBX_SOURCE_DIR/tests/lib_agent.sh"
command -v rg >/dev/null || skip "needs ripgrep (scripts/install-deps)"
# An installed, onboarded client: ~/.claude exists, ~/.claude.json says
# onboarding is done (else the first run shows the welcome flow).
mkdir -p "$H/.claude"
echo '{"hasCompletedOnboarding":true}' >"$H/.claude.json"
echo "needle-$$" >"$W/haystack.txt"
if is_root; then chown -R 65534:65534 "$H" "$W"; fi
cd "$W" || fail "cd $W"
export HOME=$H
# The policy expands ~ from HOME; --env HOME makes the command's HOME the
# same (as root the command is nobody, whose passwd home is /nonexistent).
use_strict_profile "$W"

# --- the client and its tools ------------------------------------------------
run_sbx "${P[@]}" -- claude --version
expect_rc 0 "claude --version under strict"
expect_out $'(^|\n)'"$WANT_VERSION \(Claude Code\)" "prints the installed version $WANT_VERSION"
run_sbx "${P[@]}" -- node --version
expect_rc 0 "node --version under strict"
expect_out $'(^|\n)'"v[0-9]+\." "node prints its version"
run_sbx "${P[@]}" -- npm --version
expect_rc 0 "npm --version under strict"
expect_out $'(^|\n)[0-9]+\.[0-9]+\.[0-9]+' "npm prints its version"
run_sbx "${P[@]}" -- rg -n "needle-$$" .
expect_rc 0 "rg under strict"
expect_out "haystack.txt:1:needle-$$" "rg finds the needle in the work dir"
run_sbx "${P[@]}" -- sh -c 'git init -q repo && cd repo && echo a > a &&
  git -c user.name=t -c user.email=t@t add a && git -c user.name=t -c user.email=t@t commit -qm one &&
  git log --oneline | wc -l'
expect_rc 0 "git init/add/commit under strict"
expect_out $'(^|\n)1(\n|$)' "the commit exists"

# The registry call Claude Code makes at start (npm view ...@latest): the
# sandbox refuses the name at once. (npm retries a failed lookup for ~70 s
# by default; Claude Code aborts its call after 5 s.)
start=$(date +%s)
run_sbx "${P[@]}" -- npm view @anthropic-ai/claude-code@latest version --fetch-retries=0
took=$(($(date +%s) - start))
[[ $RC -ne 0 ]] || fail "npm reached the registry under strict: $OUT"
expect_out "EAI_AGAIN|ENOTFOUND" "the registry name is refused by the DNS filter"
((took < 20)) || fail "npm view took $took s to fail"
pass "npm view fails fast ($took s), no hang"

# --- the interactive client ------------------------------------------------------
printf -v sbx_cmd '%q ' "$SBX" "${P[@]}" --keep-env ANTHROPIC_API_KEY -- claude
start_pane "ANTHROPIC_API_KEY=sk-ant-api03-sbx-test-dummy-key $sbx_cmd; echo RC=\$?; sleep 60"
wait_pane "trust this folder" 60
OUT=$(pane)
expect_out "Yes, I trust this folder" "the TUI draws the trust-folder question"
tmux_ send-keys -t t Enter
wait_pane "Do you want to use this API key" 30
pass "the TUI asks about the API key from the environment"
tmux_ send-keys -t t Up
sleep 0.5
tmux_ send-keys -t t Enter
wait_pane "for shortcuts" 30
OUT=$(pane)
expect_out "Claude Code v$WANT_VERSION" "the main screen shows the version"
expect_out "❯" "the prompt is drawn"
quit_claude
expect_out "RC=0" "Ctrl-C Ctrl-C quits cleanly (exit 0 through sbx)"

# State written through to the host; nothing else in the home.
grep -q '"hasTrustDialogAccepted": *true' "$H/.claude.json" ||
  fail "~/.claude.json on the host lacks the accepted trust dialog: $(cat "$H/.claude.json")"
pass "~/.claude.json: the client's writes reach the host"
[[ -n $(ls -A "$H/.claude") ]] || fail "~/.claude on the host stayed empty"
pass "~/.claude: the client's state reaches the host ($(ls -A "$H/.claude" | tr '\n' ' '))"
extra=$(cd "$H" && ls -A | grep -v -x -e .claude -e .claude.json -e .local)
[[ -z $extra ]] || fail "files other than the agent state appeared in the home: $extra"
pass "nothing else was written to the home"

done_testing
