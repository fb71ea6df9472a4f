#!/usr/bin/env bash
# libsbx.so exports exactly the documented C ABI: the SBX_API functions of
# include/sbx/sbx.h, all under the version node SBX_0, nothing else (no C++
# symbol of the modules linked in, no libstdc++ template instance), with
# SONAME libsbx.so.0. The version script capi/libsbx.map lists the same names.
source "$SBX_SOURCE_DIR/tests/lib.sh"
: "${SBX_BUILD_DIR:?}"

lib=$SBX_BUILD_DIR/capi/libsbx.so.0
[[ -e $lib ]] || fail "$lib is missing: build it with cmake --build $SBX_BUILD_DIR --target sbx_shared"
command -v nm >/dev/null || skip "nm (binutils) is not installed"

# The documented API: every "SBX_API <type> sbx_name(" declaration.
documented=$(grep -oE '^SBX_API [^(]*\bsbx_[a-z0-9_]+\(' "$SBX_SOURCE_DIR/include/sbx/sbx.h" |
  grep -oE 'sbx_[a-z0-9_]+\($' | tr -d '(' | sort -u)
n_doc=$(wc -l <<<"$documented")
((n_doc >= 30)) || fail "found only $n_doc documented functions in sbx.h: the parser is broken"
pass "sbx.h documents $n_doc functions"

# Defined dynamic symbols; the version node itself (an absolute symbol) aside.
OUT=$(nm -D --defined-only "$lib")
exported=$(awk '$2 != "A" {print $3}' <<<"$OUT" | sed 's/@.*//' | sort -u)
extra=$(comm -13 <(echo "$documented") <(echo "$exported"))
missing=$(comm -23 <(echo "$documented") <(echo "$exported"))
[[ -z $extra ]] || fail "libsbx.so exports symbols outside the documented API:
$extra"
pass "nothing outside sbx.h is exported"
[[ -z $missing ]] || fail "documented functions not exported by libsbx.so:
$missing"
pass "every documented function is exported"

# Only functions (T), each versioned SBX_0.
bad=$(awk '$2 != "A" && $2 != "T" {print}' <<<"$OUT")
[[ -z $bad ]] || fail "exported non-function symbols: $bad"
pass "only functions are exported"
unversioned=$(awk '$2 == "T" && $3 !~ /@@SBX_0$/ {print $3}' <<<"$OUT")
[[ -z $unversioned ]] || fail "symbols without the SBX_0 version: $unversioned"
pass "every symbol carries version SBX_0"

# The version script names the same set.
mapped=$(grep -oE '^\s+sbx_[a-z0-9_]+;' "$SBX_SOURCE_DIR/capi/libsbx.map" | tr -d ' ;' | sort -u)
[[ $mapped == "$documented" ]] || fail "capi/libsbx.map and sbx.h differ:
$(diff <(echo "$documented") <(echo "$mapped"))"
pass "capi/libsbx.map lists exactly the documented functions"

OUT=$(readelf -d "$lib")
[[ $OUT =~ \(SONAME\)[^[]*\[libsbx\.so\.0\] ]] || fail "SONAME is not libsbx.so.0:
$OUT"
pass "SONAME libsbx.so.0"
[[ $(readlink "$lib") == libsbx.so.0.* ]] || fail "libsbx.so.0 does not link to the versioned file"
pass "libsbx.so.0 -> $(readlink "$lib")"

# The header compiles as C (C99, pedantic) and as C++ on its own.
tmp=$(scratch)
printf '#include <sbx/sbx.h>\nint main(void) { return sbx_version() == 0; }\n' >"$tmp/h.c"
OUT=$(cc -std=c99 -Wall -Wextra -pedantic -Werror -I"$SBX_SOURCE_DIR/include" -c "$tmp/h.c" -o "$tmp/h.o" 2>&1)
RC=$?
expect_rc 0 "sbx.h compiles as pedantic C99"
OUT=$(c++ -x c++ -std=c++17 -Wall -Wextra -Werror -I"$SBX_SOURCE_DIR/include" -c "$tmp/h.c" -o "$tmp/h2.o" 2>&1)
RC=$?
expect_rc 0 "sbx.h compiles as C++17"

done_testing
