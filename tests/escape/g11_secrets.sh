#!/usr/bin/env bash
# Group 11: secrets. Canaries are planted on the host (~/.ssh, ~/.aws, the
# audit log dir ~/.local/state/sbx/audit, the secrets store
# ~/.local/share/sbx/secrets) and in sbx's environment (token-like
# variables); inside every profile none of them may be readable. Also
# /etc/shadow, other users' files (/root as the test user, a root-only file
# as root) and the audit log (readable = a record of the user's other
# sandboxes; writable = tampering with the evidence).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"

canary="SBXESCAPE-SECRET-$$-$RANDOM"
planted=()   # files we created
made=()      # directories we created (removed if empty, deepest first)
plant() {    # plant DIR: a canary file in DIR (created if missing)
  local d=$1 parts=() x
  x=$d
  while [[ ! -e $x ]]; do parts=("$x" "${parts[@]}"); x=$(dirname "$x"); done
  for x in "${parts[@]}"; do mkdir -m 700 "$x" && made=("$x" "${made[@]}"); done
  echo "$canary" >"$d/sbx-escape-canary-$$" && planted+=("$d/sbx-escape-canary-$$")
}
_g11_cleanup() {
  local f
  for f in "${planted[@]}"; do rm -f "$f"; done
  for f in "${made[@]}"; do rmdir "$f" 2>/dev/null; done
  [[ -n ${RD:-} ]] && rm -rf "$RD"
  _cleanup_scratch
}
trap _g11_cleanup EXIT
plant "$HOME/.ssh"
plant "$HOME/.aws"
AUDIT_DIR=${XDG_STATE_HOME:-$HOME/.local/state}/sbx/audit
plant "$AUDIT_DIR"
STORE=${XDG_DATA_HOME:-$HOME/.local/share}/sbx/secrets
plant "$STORE"
# A file of another user: as root, a root-only file on the read-only root
# (the command runs as nobody); as the test user, /root.
RD=""
if is_root; then
  RD=$(mktemp -d /var/tmp/sbx-escape.XXXXXX) && chmod 755 "$RD"
  echo "$canary" >"$RD/root-only" && chmod 600 "$RD/root-only"
  other=$RD/root-only
else
  other=/root
fi

envs=(GITHUB_TOKEN="$canary" GH_TOKEN="$canary" AWS_SECRET_ACCESS_KEY="$canary"
      AWS_SESSION_TOKEN="$canary" OPENAI_API_KEY="$canary" NPM_TOKEN="$canary"
      SSH_AUTH_SOCK="/nonexistent/$canary" DATABASE_URL="postgres://u:$canary@h/db")
declare -A audit_read store_read
for p in "${ESC_PROFILES[@]}"; do
  W=$(scratch)
  cd "$W" || fail "cd"
  esc_args "$p"
  OUT=$(env "${envs[@]}" "$SBX" run "${PA[@]}" -- sh -c '
    env | grep -c "SBXESCAPE-SECRET" | sed "s/^/env_hits=/"
    cat /proc/[0-9]*/environ 2>/dev/null | tr "\0" "\n" | grep -c "SBXESCAPE-SECRET" | sed "s/^/procenv_hits=/"
    exec "$@"' sh "$PY" "$ESC_PY" \
    "ssh_ls:ls:$HOME/.ssh" "ssh_canary:read:$HOME/.ssh/sbx-escape-canary-$$" \
    "aws_ls:ls:$HOME/.aws" "aws_canary:read:$HOME/.aws/sbx-escape-canary-$$" \
    "shadow:read:/etc/shadow" "gshadow:read:/etc/gshadow" "other:read:$other" "other_ls:ls:$other" \
    "audit_write:write:$AUDIT_DIR/sbx-escape-canary-$$" "audit_new:write:$AUDIT_DIR/sbx-escape-new-$$.jsonl" \
    "store_write:write:$STORE/sbx-escape-canary-$$" \
    "audit_read:read:$AUDIT_DIR/sbx-escape-canary-$$" "audit_ls:ls:$AUDIT_DIR" \
    "store_read:read:$STORE/sbx-escape-canary-$$" "store_ls:ls:$STORE" 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "$p: attempts ran"
  expect_res env_hits 0 "$p: no token-like host variable reaches the command's environment"
  expect_res procenv_hits 0 "$p: no process environment inside holds a host token"
  expect_res ssh_ls "ok entries=0|EACCES" "$p: ~/.ssh shows up empty (or unreachable)"
  expect_res ssh_canary "ENOENT|EACCES" "$p: a key in ~/.ssh cannot be read"
  expect_res aws_ls "ok entries=0|EACCES" "$p: ~/.aws shows up empty (or unreachable)"
  expect_res aws_canary "ENOENT|EACCES" "$p: ~/.aws credentials cannot be read"
  expect_res shadow EACCES "$p: /etc/shadow cannot be read"
  expect_res gshadow EACCES "$p: /etc/gshadow cannot be read"
  expect_res other EACCES "$p: another user's private file ($other) cannot be read"
  expect_res other_ls "EACCES|ENOTDIR" "$p: another user's private directory cannot be listed"
  expect_res audit_write "EROFS|EACCES|ENOENT" "$p: the audit log cannot be appended to"
  expect_res audit_new "EROFS|EACCES|ENOENT" "$p: no file can be created in the audit log dir"
  expect_res store_write "EROFS|EACCES|ENOENT" "$p: the secrets store cannot be written"
  [[ $(cat "$HOME/.ssh/sbx-escape-canary-$$" "$AUDIT_DIR/sbx-escape-canary-$$") == "$canary"$'\n'"$canary" ]] ||
    fail "$p: a canary changed on the host"
  [[ ! -e $AUDIT_DIR/sbx-escape-new-$$.jsonl ]] || fail "$p: a file appeared in the audit dir on the host"
  pass "$p: the canaries and the audit dir are unchanged on the host"
  audit_read[$p]="$(result audit_read) / $(result audit_ls)"
  store_read[$p]="$(result store_read) / $(result store_ls)"
  cd / || fail "cd /"
done

# Read access to the audit log and the secrets store. Asserted last so that a
# missing protection (a finding: fix in profiles/base.toml `hidden`, or let
# the runtime hide sbx's own state and data dirs) does not hide the results
# above.
for p in "${ESC_PROFILES[@]}"; do
  [[ ${audit_read[$p]} =~ ^(ENOENT|EACCES)\ /\ (ok\ entries=0|EACCES|ENOENT)$ ]] ||
    fail "$p: the audit log dir $AUDIT_DIR is readable inside (read canary / list: ${audit_read[$p]}): the sandbox can read the records of the user's other sandboxes. Fix: hide ~/.local/state/sbx (profiles/base.toml hidden, or runtime/mounts_plan.cpp always hides sbx's own state dir)"
  pass "$p: the audit log dir is hidden (${audit_read[$p]})"
  [[ ${store_read[$p]} =~ ^(ENOENT|EACCES)\ /\ (ok\ entries=0|EACCES|ENOENT)$ ]] ||
    fail "$p: the secrets store $STORE is readable inside (read canary / list: ${store_read[$p]}). Fix: hide ~/.local/share/sbx/secrets (profiles/base.toml hidden, or runtime always hides sbx's secrets store)"
  pass "$p: the secrets store is hidden (${store_read[$p]})"
done
esc_done "11 (secrets)"
