#!/usr/bin/env bash
# The environment is cleared to an allowlist; secrets pass only when named.
source "$SBX_SOURCE_DIR/tests/lib.sh"

export GITHUB_TOKEN=x AWS_SECRET_ACCESS_KEY=y LANG=C.UTF-8 TERM=xterm
run_sbx run --profile airgapped -- env
expect_rc 0 "env runs"
expect_no_out "GITHUB_TOKEN" "GITHUB_TOKEN does not leak"
expect_no_out "AWS_SECRET_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY does not leak"
expect_out $'(^|\n)LANG=C.UTF-8' "LANG passes"
expect_out $'(^|\n)TERM=xterm' "TERM passes"
expect_out $'(^|\n)PATH=' "PATH is set"

run_sbx run --profile airgapped --keep-env GITHUB_TOKEN -- env
expect_out $'(^|\n)GITHUB_TOKEN=x' "--keep-env GITHUB_TOKEN passes it"
expect_no_out "AWS_SECRET_ACCESS_KEY" "and only it"

run_sbx run --profile airgapped --env FOO=bar -- sh -c 'echo "$FOO"'
[[ $OUT == bar ]] || fail "--env FOO=bar: got '$OUT'"
pass "--env sets a variable"

done_testing
