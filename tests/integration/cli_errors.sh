#!/usr/bin/env bash
# Table-driven: every bad flag, flag combination and profile file makes sbx
# exit 125 with exactly ONE line "sbx: <problem>; fix: <fix>" that names
# the problem (checked by a regex per case).
source "$SBX_SOURCE_DIR/tests/lib.sh"

D=$(scratch)
cd "$D" || fail "cd $D"
mk() { printf '%b' "$2" >"$D/$1"; }
mk unknown_key.toml   '[network]\nallow_domain = ["x.com"]\n'
mk wrong_section.toml '[network]\nmemory = "1G"\n'
mk unknown_sect.toml  '[netwrk]\nmode = "none"\n'
mk type_ports.toml    '[network]\nallow_ports = "443"\n'
mk bad_cidr.toml      '[network]\ndeny_cidrs = ["10.0.0.0/8", "10.0.0.1/8"]\n'
mk bad_size.toml      '[limits]\nmemory = "4X"\n'
mk size_unit.toml     '[limits]\nmemory = 4096\n'
mk bad_duration.toml  '[limits]\ntimeout = "15 minutes"\n'
mk psl.toml           '[network]\nallow_domains = ["*.co.uk"]\n'
mk star.toml          '[network]\nallow_domains = ["*"]\n'
mk bad_var.toml       '[filesystem]\nhidden = ["$SECRET/keys"]\n'
mk relative.toml      '[filesystem]\nwritable = ["build/out"]\n'
mk enum_typo.toml     '[network]\nmode = "filterd"\n'
mk cycle_a.toml       'extends = "cycle_b.toml"\n'
mk cycle_b.toml       'extends = "./cycle_a.toml"\n'
mk ext_unknown.toml   'extends = "no-such-profile"\n'
mk ext_type.toml      'extends = 5\n'
mk syntax.toml        '[network\nmode = "none"\n'
mk opaque.toml        '[network]\nmode = "filtered"\nopaque_ports = [22]\n'
mk bad_port.toml      '[network]\nallow_ports = [443, 70000]\n'
mk bad_bool.toml      '[limits]\nrequired = "yes"\n'
mk bad_env.toml       '[process.env]\nset = { "BAD-NAME" = "x" }\n'
mk bad_tmpfs.toml     '[filesystem]\ntmpfs = ["/x:size=1G,uid=0"]\n'

# description | regex the one line must match | sbx arguments...
cases=(
  "bad size|--memory 4X: invalid size '4X'|run --memory 4X -- true"
  "zero memory|--memory 0: must be above 0|run --memory 0 -- true"
  "bad cpus|--cpus abc: invalid CPU count|run --cpus abc -- true"
  "zero cpus|--cpus 0: invalid CPU count|run --cpus 0 -- true"
  "zero pids|--pids 0: invalid process count|run --pids 0 -- true"
  "duration without unit|--timeout 15: invalid duration '15'|run --timeout 15 -- true"
  "bad kill-after|--kill-after 5x: invalid duration|run --kill-after 5x -- true"
  "bad network mode|--net bridge: invalid network mode 'bridge'|run --net bridge -- true"
  "wildcard above .com|--allow-domain \*\.com: .*public suffix 'com'|run --allow-domain *.com -- true"
  "wildcard above co.uk|public suffix 'co\.uk'|run --allow-domain *.co.uk -- true"
  "star in allow list|'\*' \(every domain\) is only allowed in deny lists|run --allow-domain * -- true"
  "star inside a label|'\*' must be the whole first label|run --allow-domain foo*.com -- true"
  "IP as domain|it is an IP address; fix: put addresses in the CIDR lists|run --allow-domain 1.2.3.4 -- true"
  "CIDR host bits|--allow-cidr 10.0.0.1/8: .*host bits are set.*10\.0\.0\.0/8|run --allow-cidr 10.0.0.1/8 -- true"
  "bad CIDR address|--deny-cidr 300.0.0.0/8: invalid CIDR|run --deny-cidr 300.0.0.0/8 -- true"
  "port zero|--allow-port 0: invalid port|run --allow-port 0 -- true"
  "port too big|--allow-port 70000: invalid port|run --allow-port 70000 -- true"
  "publish without colon|--publish 8080: invalid published port '8080'; fix: write HOST_PORT:SANDBOX_PORT|run --publish 8080 -- true"
  "publish port zero|--publish 8080:0: invalid port '0'|run --publish 8080:0 -- true"
  "publish port too big|--publish 70000:80: invalid port '70000'|run --publish 70000:80 -- true"
  "host-port not a number|--host-port http: invalid port 'http'|run --host-port http -- true"
  "host-port too big|--host-port 65536: invalid port|run --host-port 65536 -- true"
  "publish without a network|--publish needs network mode .filtered. \(this run uses .none.\); fix: add --net filtered|run --net none --publish 8080:8000 -- true"
  "host-port in host mode|--host-port needs network mode .filtered. \(this run uses .host.\)|run --net host --host-port 5432 -- true"
  "host-port on the DNS port|network.host_ports: port 53 is used inside the sandbox by sbx \(DNS filter\)|run --host-port 53 -- true"
  "publish an allowed port|network.publish: sandbox port 443 is in allow_ports, so sbx's egress listener holds it|run --net filtered --allow-port 443 --publish 8443:443 -- true"
  "publish a host port twice|network.publish: host port 8080 is published twice; fix: give each --publish its own HOST_PORT|run --publish 8080:8000 --publish 8080:9000 -- true"
  "publish sbx's DNS port|network.publish: sandbox port 53 is sbx's own DNS filter|run --publish 8053:53 -- true"
  "tmpfs bad size|--tmpfs /x:size=abc: invalid size|run --tmpfs /x:size=abc -- true"
  "tmpfs bad mode|--tmpfs /x:mode=999: .*invalid mode|run --tmpfs /x:mode=999 -- true"
  "env without value|--env NOEQUALS: expected NAME=VALUE|run --env NOEQUALS -- true"
  "env bad name|--env 1BAD=x: invalid environment variable name|run --env 1BAD=x -- true"
  "keep-env bad name|--keep-env A-B: invalid environment variable name|run --keep-env A-B -- true"
  "user not numeric|--user root: invalid user 'root'|run --user root -- true"
  "bad sandbox name|--name a/b: invalid sandbox name|run --name a/b -- true"
  "undefined variable in flag|--rw \\\$NOPE/x: .*undefined variable \\\$NOPE|run --rw \$NOPE/x -- true"
  "unknown profile|unknown profile 'nosuchprofile'; fix: use one of .*strict|run -p nosuchprofile -- true"
  "missing profile file|cannot read profile '/nonexistent/p.toml'|run -p /nonexistent/p.toml -- true"
  "tty and no-tty|--tty and --no-tty contradict|run --tty --no-tty -- true"
  "unknown option|unknown option '--bogus'|run --bogus -- true"
  "unknown option before command|unknown option '--frob'|run --frob ls"
  "option without value|--profile: 1 required .* missing|run -p"
  "no command|no command given; fix: write sbx run|run"
  "unknown sub-command|unknown sub-command .frobnicate.|frobnicate"
  "no sub-command|no sub-command given|"
  "unknown profile sub-command|unknown sub-command .profile frob.|profile frob"
  "profile without sub-command|A subcommand is required|profile"
  "-- outside run|only valid after 'sbx run'|profile list -- true"
  "show without name|profile is required|profile show"
  "profile: unknown key|unknown_key.toml:2:1: unknown key 'allow_domain' in \[network\]; fix: did you mean 'allow_domains'\?|run -p $D/unknown_key.toml --dry-run -- true"
  "profile: key in another section|wrong_section.toml:2:1: unknown key 'memory' in \[network\]; fix: did you mean 'memory' in \[limits\]\?|run -p $D/wrong_section.toml --dry-run -- true"
  "profile: unknown section|unknown_sect.toml:1:2: unknown key 'netwrk' in the top level; fix: did you mean 'network'\?|run -p $D/unknown_sect.toml --dry-run -- true"
  "profile: type error|type_ports.toml:2:15: network.allow_ports: expected an array of port numbers, found a string|run -p $D/type_ports.toml --dry-run -- true"
  "profile: CIDR host bits|bad_cidr.toml:2:29: network.deny_cidrs: invalid CIDR '10.0.0.1/8'|profile validate $D/bad_cidr.toml"
  "profile: bad size|bad_size.toml:2:10: limits.memory: invalid size '4X'|profile validate $D/bad_size.toml"
  "profile: size without unit|size_unit.toml:2:10: limits.memory: a size needs a unit; fix: write it as a string, e.g. memory = \"4096M\"|profile validate $D/size_unit.toml"
  "profile: bad duration|bad_duration.toml:2:11: limits.timeout: invalid duration '15 minutes'|profile validate $D/bad_duration.toml"
  "profile: public suffix wildcard|psl.toml:2:18: network.allow_domains: domain pattern '\*\.co\.uk' would allow every site|profile validate $D/psl.toml"
  "profile: star in allow list|star.toml:2:18: network.allow_domains: .*only allowed in deny lists|profile validate $D/star.toml"
  "profile: undefined variable|bad_var.toml:2:11: filesystem.hidden: path '\\\$SECRET/keys' uses undefined variable \\\$SECRET|profile validate $D/bad_var.toml"
  "profile: relative path|relative.toml:2:13: filesystem.writable: path 'build/out' is not absolute|profile validate $D/relative.toml"
  "profile: enum typo|enum_typo.toml:2:8: network.mode: invalid value \"filterd\"; fix: did you mean \"filtered\"\?|profile validate $D/enum_typo.toml"
  "profile: extends cycle|profile extends itself: .*cycle_a.toml -> .*cycle_b.toml -> .*cycle_a.toml|profile validate $D/cycle_a.toml"
  "profile: extends unknown|ext_unknown.toml:1:11: extends: unknown profile 'no-such-profile'|profile validate $D/ext_unknown.toml"
  "profile: extends not a string|ext_type.toml:1:11: extends: expected a string, found an integer|profile validate $D/ext_type.toml"
  "profile: TOML syntax|syntax.toml:1:[0-9]+: invalid TOML|profile validate $D/syntax.toml"
  "profile: opaque port not allowed|opaque_ports: port 22 is not in allow_ports|profile validate $D/opaque.toml"
  "profile: port out of range|bad_port.toml:2:21: network.allow_ports: invalid port 70000|profile validate $D/bad_port.toml"
  "profile: bool type|bad_bool.toml:2:12: limits.required: expected a boolean, found a string|profile validate $D/bad_bool.toml"
  "profile: bad env name|bad_env.toml:2:9: process.env.set: invalid environment variable name 'BAD-NAME'|profile validate $D/bad_env.toml"
  "profile: bad tmpfs option|bad_tmpfs.toml:2:10: filesystem.tmpfs: tmpfs '/x:size=1G,uid=0': unknown option 'uid=0'|profile validate $D/bad_tmpfs.toml"
  "show --resolved of a bad file|unknown_key.toml:2:1: unknown key|profile show $D/unknown_key.toml --resolved"
)

n=0
for row in "${cases[@]}"; do
  IFS='|' read -r desc regex argline <<<"$row"
  read -r -a argv <<<"$argline"
  set -f  # keep * and *.com literal
  run_sbx "${argv[@]}"
  set +f
  lines=$(printf '%s\n' "$OUT" | grep -c .)
  [[ $RC -eq 125 ]] || fail "$desc: exit $RC, want 125. Output: $OUT"
  [[ $lines -eq 1 ]] || fail "$desc: $lines lines of output, want exactly 1: $OUT"
  [[ $OUT == "sbx: "* ]] || fail "$desc: does not start with 'sbx: ': $OUT"
  [[ $OUT =~ $regex ]] || fail "$desc: output does not match /$regex/: $OUT"
  [[ $OUT == *"fix: "* ]] || fail "$desc: no fix in: $OUT"
  pass "$desc -> 125: $OUT"
  n=$((n + 1))
done
((n >= 30)) || fail "only $n cases"
done_testing
