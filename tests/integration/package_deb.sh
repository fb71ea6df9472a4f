#!/usr/bin/env bash
# The Debian package, end to end (root only): build the .deb with CPack,
# `dpkg -i` it, use what it installed — `sbx` on PATH runs a sandbox (root
# and the unprivileged test user), `man sbx` shows the page, the bash
# completion completes `sbx run --pro` to --profile, a C program builds with
# pkg-config against the system's libsbx and prints a sandbox event — then
# `dpkg -r` removes every file (the AppArmor conffile stays until
# `dpkg --purge`, dpkg's rule for conffiles) and `dpkg --purge` the rest.
# A trap purges the package whatever happens. The installed `sbx check
# --profile airgapped` must find its probe at /usr/libexec/sbx/sbx-probe
# (never the build tree's) and report every promise held.
source "$SBX_SOURCE_DIR/tests/lib.sh"
: "${SBX_BUILD_DIR:?}"
is_root || skip "installs a .deb: root only"
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps: cmake, dpkg-dev)"
done
if dpkg-query -W -f='${Status}' sbx 2>/dev/null | grep -q installed; then
  fail "a package named sbx is already installed; remove it first: dpkg --purge sbx"
fi

tmp=$(scratch)
purge_package() {
  if dpkg-query -W -f='${Status}' sbx 2>/dev/null | grep -qv "not-installed"; then
    dpkg --purge sbx >/dev/null 2>&1 || echo "WARNING: dpkg --purge sbx failed" >&2
  fi
  _cleanup_scratch
}
trap purge_package EXIT

# A .deb built here, or one handed in (SBX_DEB=path) by a CI step.
deb=${SBX_DEB:-}
if [[ -z $deb ]]; then
  OUT=$(cpack -G DEB --config "$SBX_BUILD_DIR/CPackConfig.cmake" -B "$tmp/cpack" 2>&1)
  RC=$?
  expect_rc 0 "cpack builds the .deb"
  deb=$(ls "$tmp"/cpack/sbx_*_amd64.deb 2>/dev/null | head -1)
fi
[[ -f $deb ]] || fail "no .deb found (cpack output: $OUT)"

OUT=$(dpkg-deb -f "$deb" Package Version Depends)
expect_out "^Package: sbx" "package name sbx"
expect_out "Depends: .*libseccomp2.*libstdc\+\+6" "Depends computed by dpkg-shlibdeps"
OUT=$(dpkg-deb -c "$deb")
expect_out "\./usr/bin/sbx" "the binary is at /usr/bin/sbx"
expect_out "\./etc/apparmor\.d/sbx" "the AppArmor profile is at /etc/apparmor.d/sbx"
expect_no_out "usr/local" "nothing under /usr/local"
OUT=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[[ $OUT == "/etc/apparmor.d/sbx" ]] || fail "conffiles: $OUT"
pass "the AppArmor profile is a conffile"

OUT=$(dpkg -i "$deb" 2>&1)
RC=$?
expect_rc 0 "dpkg -i"
mapfile -t files < <(dpkg -L sbx | while read -r f; do [[ -f $f || -L $f ]] && echo "$f"; done)
((${#files[@]} > 20)) || fail "dpkg -L sbx lists only ${#files[@]} files"
pass "dpkg -L lists ${#files[@]} files"

# sbx on PATH runs a sandbox.
OUT=$(command -v sbx)
[[ $OUT == /usr/bin/sbx ]] || fail "sbx on PATH is '$OUT', want /usr/bin/sbx"
pass "sbx on PATH is /usr/bin/sbx"
work=$(scratch)
OUT=$(cd "$work" && PATH=/usr/bin:/bin sbx run --profile airgapped -- true 2>&1 </dev/null)
RC=$?
expect_rc 0 "sbx run --profile airgapped -- true (root)"
if id sbx-test >/dev/null 2>&1; then
  OUT=$(cd "$work" && setpriv --reuid=sbx-test --regid=sbx-test --init-groups --reset-env \
    env PATH=/usr/bin:/bin HOME=/tmp sbx run --profile airgapped -- sh -c 'id -u; exit 4' 2>&1 </dev/null)
  RC=$?
  expect_rc 4 "the installed sbx runs a sandbox as the unprivileged user"
  expect_out "^$(id -u sbx-test)" "the command ran as that user"
fi

# sbx check from the package: its probe is the installed one.
[[ -x /usr/libexec/sbx/sbx-probe ]] || fail "/usr/libexec/sbx/sbx-probe is not installed"
pass "the probe helper is at /usr/libexec/sbx/sbx-probe"
OUT=$(cd "$work" && env -u SBX_PROBE PATH=/usr/bin:/bin sbx check --profile airgapped 2>&1 </dev/null)
RC=$?
expect_rc 0 "installed sbx check --profile airgapped: every promise holds (exit 0)"
expect_out "airgapped: [0-9]+ contained, 0 exposed" "sbx check's summary line: nothing exposed"
expect_no_out "probe helper \\(sbx-probe\\)" "no 'probe helper' row: the installed probe was found"
expect_out "contained +seccomp" "the protection rows ran live (a seccomp row is contained)"
OUT=$(cd "$work" && env -u SBX_PROBE PATH=/usr/bin:/bin sbx check --profile airgapped --json 2>&1 </dev/null)
RC=$?
expect_rc 0 "sbx check --json"
expect_out '"promises_hold": ?true' "--json: promises_hold is true"
if id sbx-test >/dev/null 2>&1; then
  OUT=$(cd "$work" && setpriv --reuid=sbx-test --regid=sbx-test --init-groups --reset-env \
    env PATH=/usr/bin:/bin HOME=/tmp sbx check --profile airgapped 2>&1 </dev/null)
  RC=$?
  expect_rc 0 "installed sbx check --profile airgapped as the unprivileged user"
  expect_out "airgapped: [0-9]+ contained, 0 exposed" "user: nothing exposed"
fi

# man sbx shows the page; sbx-run(1), sbx-check(1), sbx-profile(5) too.
command -v man >/dev/null || fail "man is missing: scripts/install-deps installs man-db"
OUT=$(MANWIDTH=80 man -P cat sbx 2>&1)
expect_out "sbx - run a command in a setuid-free Linux sandbox" "man sbx shows the page"
OUT=$(MANWIDTH=80 man -P cat sbx-run 2>&1)
expect_out "sbx-run - run a command in an sbx sandbox" "man sbx-run"
OUT=$(MANWIDTH=80 man -P cat sbx-check 2>&1)
expect_out "sbx-check +- +show +which +protections" "man sbx-check"
OUT=$(MANWIDTH=80 man -P cat 5 sbx-profile 2>&1)
expect_out "sbx-profile - sbx sandbox profile" "man 5 sbx-profile"

# bash completion: the installed file, driven the way bash calls it.
comp=/usr/share/bash-completion/completions/sbx
[[ -f $comp ]] || fail "$comp is missing"
OUT=$(bash --norc -c 'source "$1"; COMP_WORDS=(sbx run --pro); COMP_CWORD=2; _sbx; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp")
[[ $OUT == "--profile" ]] || fail "sbx run --pro completes to '$OUT'"
pass "bash completion: sbx run --pro -> --profile"
if [[ -f /usr/share/bash-completion/bash_completion ]]; then
  # bash-completion's on-demand loader finds it by the command's name.
  OUT=$(bash --norc -c 'source /usr/share/bash-completion/bash_completion; _completion_loader sbx; complete -p sbx' 2>&1)
  expect_out "complete -F _sbx sbx" "bash-completion's loader finds the sbx completion"
fi

# The library: linked by name from the system paths, and working.
OUT=$(ldconfig -p | grep 'libsbx\.so\.0 ')
expect_out "(/usr)?/lib/libsbx\.so\.0$" "ldconfig knows libsbx.so.0 (the ldconfig trigger ran)"
OUT=$(cc -std=c99 -o "$tmp/embed-c" /usr/share/doc/sbx/examples/embed.c $(pkg-config --cflags --libs sbx) 2>&1)
RC=$?
expect_rc 0 "embed.c builds against the system package with pkg-config"
OUT=$(cd "$work" && "$tmp/embed-c" 2>&1 </dev/null)
RC=$?
expect_rc 0 "embed-c runs"
expect_out '"type": ?"syscall_denied"' "it prints the syscall_denied event"
[[ -f /etc/apparmor.d/sbx ]] || fail "/etc/apparmor.d/sbx is missing"
pass "/etc/apparmor.d/sbx is installed"

# Removal: every file goes; the conffile only with --purge.
OUT=$(dpkg -r sbx 2>&1)
RC=$?
expect_rc 0 "dpkg -r sbx"
left=()
for f in "${files[@]}"; do
  [[ $f == /etc/apparmor.d/sbx ]] && continue
  [[ -e $f || -L $f ]] && left+=("$f")
done
((${#left[@]} == 0)) || fail "left after dpkg -r: ${left[*]}"
pass "dpkg -r removed all ${#files[@]} files but the conffile"
[[ ! -e /usr/bin/sbx ]] && ! command -v sbx >/dev/null || fail "sbx is still on PATH"
pass "sbx is gone from PATH"
OUT=$(dpkg --purge sbx 2>&1)
RC=$?
expect_rc 0 "dpkg --purge sbx"
[[ ! -e /etc/apparmor.d/sbx ]] || fail "/etc/apparmor.d/sbx survived --purge"
pass "the conffile is gone after --purge"
OUT=$(dpkg-query -W -f='${Status}' sbx 2>&1)
[[ $OUT != *installed* || $OUT == *not-installed* ]] || fail "dpkg still lists sbx: $OUT"
pass "dpkg no longer lists sbx"
for d in /usr/share/doc/sbx /usr/include/sbx /usr/lib/cmake/sbx; do
  [[ ! -e $d ]] || fail "directory left behind: $d"
done
pass "no directory of the package is left"

done_testing
