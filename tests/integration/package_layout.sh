#!/usr/bin/env bash
# `cmake --install` lays out everything a user and an embedder need, in a
# scratch prefix: the binary, the library with its SONAME links, headers,
# pkg-config, the CMake package, docs, man pages that render, the shell
# completions (exactly `sbx completion SHELL`, valid for each shell, and
# completing `sbx run --pro` to --profile) and the AppArmor profile. The
# installed sbx runs a sandbox.
source "$SBX_SOURCE_DIR/tests/lib.sh"
: "${SBX_BUILD_DIR:?}"

tmp=$(scratch)
prefix=$tmp/prefix
OUT=$(cmake --install "$SBX_BUILD_DIR" --prefix "$prefix" 2>&1)
RC=$?
# A user who cannot write the build dir: cmake fails only at the very end,
# writing install_manifest.txt there.
if ((RC != 0)) && [[ ! -w $SBX_BUILD_DIR && $OUT == *install_manifest* ]]; then RC=0; fi
expect_rc 0 "cmake --install to a scratch prefix"

for f in bin/sbx lib/libsbx.so.0.1.0 include/sbx/sbx.h include/sbx/sbx.hpp include/sbx/policy.hpp \
  include/sbx/events.hpp include/sbx/error.hpp include/sbx/profiles/profiles.hpp lib/libsbx-cpp.a \
  lib/pkgconfig/sbx.pc lib/cmake/sbx/sbxConfig.cmake lib/cmake/sbx/sbxConfigVersion.cmake \
  lib/cmake/sbx/sbxTargets.cmake share/doc/sbx/embedding.md share/doc/sbx/cli.md \
  share/doc/sbx/examples/embed.c share/doc/sbx/examples/embed.cpp share/doc/sbx/examples/embed.py \
  share/man/man1/sbx.1 share/man/man1/sbx-run.1 share/man/man1/sbx-check.1 \
  share/man/man5/sbx-profile.5 include/sbx/control.hpp libexec/sbx/sbx-probe \
  share/bash-completion/completions/sbx share/zsh/vendor-completions/_sbx \
  share/fish/vendor_completions.d/sbx.fish etc/apparmor.d/sbx; do
  [[ -f $prefix/$f ]] || fail "missing after install: $f"
done
pass "every file of the layout is installed"
[[ $(readlink "$prefix/lib/libsbx.so.0") == libsbx.so.0.1.0 && $(readlink "$prefix/lib/libsbx.so") == libsbx.so.0 ]] ||
  fail "library links: $(ls -l "$prefix"/lib/libsbx.so*)"
pass "libsbx.so -> libsbx.so.0 -> libsbx.so.0.1.0"
[[ -x $prefix/bin/sbx ]] || fail "bin/sbx is not executable"
OUT=$(find "$prefix" -perm /6000 -type f)
[[ -z $OUT ]] || fail "setuid/setgid files installed: $OUT"
pass "nothing is setuid or setgid"
OUT=$(grep -rl -- "$SBX_BUILD_DIR" "$prefix/lib/cmake" "$prefix/lib/pkgconfig" 2>&1)
[[ -z $OUT ]] || fail "the CMake/pkg-config files name the build tree: $OUT"
pass "the CMake and pkg-config files do not name the build tree"

# The installed binary runs a sandbox, unprivileged as well as root.
tmpwork=$(scratch)
OUT=$(cd "$tmpwork" && "$prefix/bin/sbx" run --profile airgapped -- sh -c 'echo in-sandbox; exit 3' 2>&1 </dev/null)
RC=$?
expect_rc 3 "the installed sbx runs a sandbox (exit 3 passes through)"
expect_out "in-sandbox" "its output arrives"

# Man pages render without warnings and have their NAME section.
if command -v man >/dev/null; then
  for page in man1/sbx.1 man1/sbx-run.1 man1/sbx-check.1 man5/sbx-profile.5; do
    OUT=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$prefix/share/man/$page" 2>&1 >/dev/null)
    [[ -z $OUT ]] || fail "$page: groff warnings: $OUT"
    OUT=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$prefix/share/man/$page" 2>/dev/null)
    expect_out "NAME" "$page renders with a NAME section"
  done
  OUT=$(MANPATH=$prefix/share/man MANWIDTH=80 man -P cat sbx-run 2>&1)
  expect_out "sbx-run - run a command in an sbx sandbox" "man sbx-run finds the page by name"
else
  skip "man is not installed (scripts/install-deps installs man-db)"
fi

# Completions: the installed files are what `sbx completion SHELL` prints.
cmp -s <("$prefix/bin/sbx" completion bash) "$prefix/share/bash-completion/completions/sbx" ||
  fail "the bash completion file differs from 'sbx completion bash'"
cmp -s <("$prefix/bin/sbx" completion zsh) "$prefix/share/zsh/vendor-completions/_sbx" ||
  fail "the zsh completion file differs from 'sbx completion zsh'"
cmp -s <("$prefix/bin/sbx" completion fish) "$prefix/share/fish/vendor_completions.d/sbx.fish" ||
  fail "the fish completion file differs from 'sbx completion fish'"
pass "installed completions are exactly 'sbx completion SHELL'"
run_sbx completion tcsh
expect_rc 125 "an unknown shell is an error"
expect_out "unknown shell 'tcsh'.*bash\|zsh\|fish" "it names the shells"

# bash: drive the completion function as bash's programmable completion does.
complete_bash() {
  bash --norc -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _sbx; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$prefix/share/bash-completion/completions/sbx" "$@"
}
OUT=$(complete_bash sbx run --pro)
[[ $OUT == "--profile" ]] || fail "bash: 'sbx run --pro' completes to '$OUT', want --profile"
pass "bash: sbx run --pro -> --profile"
OUT=$(complete_bash sbx run --profile air)
[[ $OUT == "airgapped" ]] || fail "bash: '--profile air' completes to '$OUT'"
pass "bash: --profile air -> airgapped"
# The sub-commands offered are exactly those `sbx --help` lists.
OUT=$(complete_bash sbx "")
want=$("$prefix/bin/sbx" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[[ -n $want && $(echo $OUT) == $(echo $want) ]] || fail "bash: sub-commands '$(echo $OUT)', sbx --help: '$(echo $want)'"
pass "bash: the sub-commands of sbx --help ($(echo $want))"
OUT=$(complete_bash sbx profile s)
[[ $OUT == "show" ]] || fail "bash: 'sbx profile s' -> '$OUT'"
pass "bash: sbx profile s -> show"
OUT=$(complete_bash sbx run --net "")
[[ $(echo $OUT) == "none filtered host" ]] || fail "bash: --net values '$OUT'"
pass "bash: --net values"
OUT=$(complete_bash sbx run -p strict -- --pro)
[[ $OUT != *--profile* ]] || fail "bash: after -- the words are the command's, not sbx options"
pass "bash: after -- no sbx options are offered"
# Every long option of `sbx run --help` is offered.
OUT=$(complete_bash sbx run --)
for opt in $("$prefix/bin/sbx" run --help | grep -oE '^\s+(-[a-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
  grep -qx -- "$opt" <<<"$OUT" || fail "bash: 'sbx run --' does not offer $opt"
done
pass "bash: every option of sbx run --help is offered"

# zsh and fish: the scripts parse; fish completes like bash.
if command -v zsh >/dev/null; then
  OUT=$(zsh -n "$prefix/share/zsh/vendor-completions/_sbx" 2>&1)
  RC=$?
  expect_rc 0 "zsh: the completion parses"
fi
if command -v fish >/dev/null; then
  OUT=$(fish --no-config -n "$prefix/share/fish/vendor_completions.d/sbx.fish" 2>&1)
  RC=$?
  expect_rc 0 "fish: the completion parses"
  OUT=$(HOME=$tmp fish --no-config -c "source $prefix/share/fish/vendor_completions.d/sbx.fish; complete -C 'sbx run --pro'" 2>&1)
  expect_out "^--profile" "fish: sbx run --pro -> --profile"
  OUT=$(HOME=$tmp fish --no-config -c "source $prefix/share/fish/vendor_completions.d/sbx.fish; complete -C 'sbx '" 2>&1)
  expect_out "run" "fish: sub-commands offered"
fi

# The AppArmor profile: grants userns to /usr/bin/sbx, nothing else.
OUT=$(cat "$prefix/etc/apparmor.d/sbx")
expect_out "abi <abi/4\.0>," "AppArmor: ABI 4.0 (Ubuntu 24.04)"
expect_out "profile sbx /usr/bin/sbx flags=\(unconfined\) \{" "AppArmor: attaches to /usr/bin/sbx"
expect_out $'\n  userns,\n' "AppArmor: grants userns"

done_testing
