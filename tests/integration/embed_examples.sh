#!/usr/bin/env bash
# The three embedding examples (examples/embed.c, embed.cpp, embed.py) built
# against the INSTALLED package — `cmake --install` to a scratch prefix, then
# pkg-config / find_package(sbx) from that prefix, never the build tree —
# each runs a sandbox (airgapped profile) whose default seccomp policy denies
# mount(2), and prints the syscall_denied event it receives.
source "$SBX_SOURCE_DIR/tests/lib.sh"
: "${SBX_BUILD_DIR:?}"
command -v cc >/dev/null && command -v pkg-config >/dev/null || skip "cc or pkg-config missing"

tmp=$(scratch)
prefix=$tmp/prefix
# Installs the build into $prefix. As a user who cannot write the build dir,
# cmake fails only at the very end, writing install_manifest.txt there.
OUT=$(cmake --install "$SBX_BUILD_DIR" --prefix "$prefix" 2>&1)
RC=$?
if ((RC != 0)) && [[ ! -w $SBX_BUILD_DIR && $OUT == *install_manifest* ]]; then RC=0; fi
expect_rc 0 "cmake --install to a scratch prefix"
[[ -e $prefix/lib/libsbx.so.0 && -e $prefix/include/sbx/sbx.h ]] || fail "install is incomplete"

# Nothing may point back into the source or build tree.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
OUT=$(pkg-config --cflags --libs sbx 2>&1)
RC=$?
expect_rc 0 "pkg-config finds sbx.pc in the prefix"
expect_out "^-I[^ ]+ -L[^ ]+ -lsbx" "flags: -I, -L, -lsbx"
[[ $(realpath "$(pkg-config --variable=includedir sbx)") == "$prefix/include" &&
  $(realpath "$(pkg-config --variable=libdir sbx)") == "$prefix/lib" ]] ||
  fail "sbx.pc does not point into the prefix: $OUT"
pass "sbx.pc is relocatable: it points into the prefix it was installed to"
expect_no_out "$SBX_SOURCE_DIR|$SBX_BUILD_DIR" "flags do not name the source or build tree"

# The events each example must print: the denied mount, and the command's
# own view of it (EPERM), and a clean exit 0.
check_demo_output() {
  local who=$1
  expect_out 'event: \{[^
]*"type": ?"syscall_denied"' "$who prints a syscall_denied event"
  expect_out '"syscall": ?"mount"' "$who: the event names mount"
  expect_out 'mount returned -1 Operation not permitted' "$who: the command saw EPERM"
  expect_out 'exit code 0, [1-9][0-9]* events' "$who: exit code 0 and a count of events"
}

# --- C, with pkg-config --------------------------------------------------
OUT=$(cc -std=c99 -Wall -Wextra -Werror -o "$tmp/embed-c" "$prefix/share/doc/sbx/examples/embed.c" \
  $(pkg-config --cflags --libs sbx) -Wl,-rpath,"$prefix/lib" 2>&1)
RC=$?
expect_rc 0 "embed.c builds with pkg-config against the prefix"
OUT=$(ldd "$tmp/embed-c" 2>&1)
expect_out "libsbx\.so\.0 => $prefix/lib/libsbx\.so\.0" "embed-c loads libsbx.so.0 from the prefix"
OUT=$(cd "$tmp" && "$tmp/embed-c" 2>&1 </dev/null)
RC=$?
expect_rc 0 "embed-c runs"
check_demo_output embed-c
expect_out 'result: \{"duration_ms' "embed-c prints the result JSON"

# A command's exit status passes through the C ABI unchanged.
OUT=$(cd "$tmp" && "$tmp/embed-c" -- sh -c 'echo inside; exit 7' 2>&1 </dev/null)
RC=$?
expect_rc 7 "embed-c -- sh -c 'exit 7' exits 7"
expect_out 'inside' "the command's stdout reaches embed-c's stdout"

# --- C++, with find_package(sbx) from the prefix -------------------------
OUT=$(cmake -S "$prefix/share/doc/sbx/examples" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release 2>&1 && cmake --build "$tmp/build" -j2 2>&1)
RC=$?
expect_rc 0 "the installed examples build with find_package(sbx COMPONENTS cpp)"
OUT=$(grep -h "sbx_DIR" "$tmp/build/CMakeCache.txt")
expect_out "sbx_DIR:PATH=$prefix/lib/cmake/sbx" "find_package used the prefix's config"
OUT=$(cd "$tmp" && "$tmp/build/embed-cpp" 2>&1 </dev/null)
RC=$?
expect_rc 0 "embed-cpp runs"
check_demo_output embed-cpp
OUT=$(cd "$tmp" && "$tmp/build/embed-c" 2>&1 </dev/null)
RC=$?
expect_rc 0 "embed-c built by CMake (sbx::sbx) runs"
check_demo_output "embed-c (CMake)"

# --- Python, ctypes over libsbx.so.0 -------------------------------------
OUT=$(cd "$tmp" && SBX_LIBRARY=$prefix/lib/libsbx.so.0 python3 "$prefix/share/doc/sbx/examples/embed.py" 2>&1 </dev/null)
RC=$?
expect_rc 0 "embed.py runs"
check_demo_output embed.py
expect_out '"events_dropped": 0' "embed.py parsed the result JSON"

done_testing
