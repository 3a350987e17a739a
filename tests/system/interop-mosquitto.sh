#!/bin/sh
# Interop: Debian's mosquitto_pub and mosquitto_sub (package
# mosquitto-clients, installed by contrib/scripts/deps-debian.sh) against a
# cicada of our own on a free loopback port, in MQTT 3.1.1 and 5.0: QoS 0,
# 1 and 2, retained messages, a will on SIGKILL, a persistent session,
# MQTT 5 properties and a large payload.  Payloads are compared byte for
# byte (mosquitto_sub prints them in hex).  Every wait is bounded.
#
# Run by `make check` with CICADA_BIN set; by hand:
#   CICADA_BIN=$PWD/cicada sh tests/system/interop-mosquitto.sh
# Ends with "interop: N passed, M failed"; exit status 0 only if M is 0.

set -u

CICADA_BIN=${CICADA_BIN:-./cicada}
T=10 # seconds any one client may take

die() {
	echo "interop: $*" >&2
	echo "interop: 0 passed, 1 failed"
	exit 1
}

for tool in mosquitto_pub mosquitto_sub timeout stdbuf od mktemp; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found: install mosquitto-clients and" \
			"coreutils (contrib/scripts/deps-debian.sh)"
done
[ -x "$CICADA_BIN" ] || die "CICADA_BIN=$CICADA_BIN is not an executable"

dir=$(mktemp -d "${TMPDIR:-/tmp}/cicada-interop-XXXXXX") || die "mktemp failed"
broker_pid=
bg_pids=

cleanup() {
	for p in $bg_pids; do
		kill -9 "$p" 2>/dev/null
	done
	if [ -n "$broker_pid" ]; then
		kill "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ------------------------------------------------------------ the broker

# A random port in 20000..59999; cicada fails to start if it is taken,
# and then we try another.
random_port() {
	n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $((20000 + n % 40000))
}

start_broker() {
	tries=0
	while [ $tries -lt 5 ]; do
		tries=$((tries + 1))
		port=$(random_port)
		cat >"$dir/cicada.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
EOF
		"$CICADA_BIN" -c "$dir/cicada.conf" >"$dir/cicada.log" 2>&1 &
		broker_pid=$!
		i=0
		while [ $i -lt 100 ]; do # 10 s
			grep -q "listening on 127.0.0.1:$port" "$dir/cicada.log" &&
				return 0
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.1
			i=$((i + 1))
		done
		kill "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
		broker_pid=
	done
	cat "$dir/cicada.log" >&2
	die "cicada did not start"
}

# ------------------------------------------------------------- helpers

passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "PASS: $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL: $1: $2"
}

# Hex of stdin's bytes, as mosquitto_sub's %x prints a payload.
hex() {
	od -An -v -tx1 | tr -d ' \n'
}

pub() {
	timeout $T mosquitto_pub -h 127.0.0.1 -p "$port" "$@"
}

# The line format every subscriber prints: MSG|topic|qos|retain|hex.
FMT='MSG|%t|%q|%r|%x'

# sub_start NAME ARGS...: a subscriber in the background, printing to
# $dir/NAME.out (with -d, so we can see its SUBACK); waits for the SUBACK.
sub_start() {
	name=$1
	shift
	# A name is reused across versions: the old output must not satisfy
	# wait_line before the new subscriber's shell has truncated it.
	rm -f "$dir/$name.out"
	timeout $T stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -d \
		-F "$FMT" "$@" >"$dir/$name.out" 2>&1 &
	eval "pid_$name=\$!"
	bg_pids="$bg_pids $!"
	wait_line "$dir/$name.out" "received SUBACK" ||
		fail "subscriber $name" "no SUBACK within 5 s:
$(sed 's/^/    /' "$dir/$name.out")"
}

# sub_wait NAME: wait (bounded by its timeout) for the subscriber to exit.
sub_wait() {
	eval "wait \$pid_$1" 2>/dev/null
}

# wait_line FILE TEXT: until FILE has a line containing TEXT, at most 5 s.
wait_line() {
	i=0
	while [ $i -lt 50 ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# expect NAME TEST WANT...: the MSG lines of NAME.out are exactly WANT...
expect() {
	name=$1
	test=$2
	shift 2
	got=$(grep '^MSG|' "$dir/$name.out")
	want=$(for w in "$@"; do echo "$w"; done)
	if [ "$got" = "$want" ]; then
		pass "$test"
	else
		fail "$test" "expected:
$want
got:
$got
($name.out:)
$(sed 's/^/    /' "$dir/$name.out")"
	fi
}

# msg TOPIC QOS RETAIN PAYLOAD: the line a subscriber prints for it.
msg() {
	echo "MSG|$1|$2|$3|$(printf '%s' "$4" | hex)"
}

# --------------------------------------------------------------- tests

start_broker
echo "interop: cicada on 127.0.0.1:$port ($CICADA_BIN)"

for V in mqttv311 mqttv5; do
	# QoS 0, 1 and 2, each at a subscription of the same QoS.
	for Q in 0 1 2; do
		body="héllo wörld | $V qos $Q ✓"
		sub_start q$Q -V $V -q $Q -C 1 -t "interop/$V/q$Q"
		pub -V $V -q $Q -t "interop/$V/q$Q" -m "$body" ||
			fail "$V QoS $Q publish" "mosquitto_pub exit $?"
		sub_wait q$Q
		expect q$Q "$V QoS $Q" "$(msg "interop/$V/q$Q" $Q 0 "$body")"
	done

	# QoS is the minimum of publish and subscription.
	sub_start down -V $V -q 1 -C 1 -t "interop/$V/down"
	pub -V $V -q 2 -t "interop/$V/down" -m "two to one"
	sub_wait down
	expect down "$V QoS 2 to a QoS 1 subscription" \
		"$(msg "interop/$V/down" 1 0 "two to one")"

	# Retained: set, delivered with retain 1 on subscribe; live copies
	# to an existing subscription have retain 0; cleared by -r -n.
	sub_start live -V $V -q 1 -C 1 -t "interop/$V/ret"
	pub -V $V -q 1 -r -t "interop/$V/ret" -m "kept for $V"
	sub_wait live
	expect live "$V retained, live subscription" \
		"$(msg "interop/$V/ret" 1 0 "kept for $V")"
	timeout $T mosquitto_sub -h 127.0.0.1 -p "$port" -V $V -q 1 -C 1 \
		-F "$FMT" -t "interop/$V/ret" >"$dir/ret.out" 2>&1
	expect ret "$V retained, new subscription" \
		"$(msg "interop/$V/ret" 1 1 "kept for $V")"
	pub -V $V -q 1 -r -n -t "interop/$V/ret"
	sub_start clr -V $V -q 1 -C 1 -t "interop/$V/ret" -t "interop/$V/end"
	pub -V $V -q 1 -t "interop/$V/end" -m "end"
	sub_wait clr
	expect clr "$V retained, cleared" "$(msg "interop/$V/end" 1 0 "end")"

	# Will: a client killed with SIGKILL; its will reaches the watcher.
	sub_start watch -V $V -q 1 -C 1 -t "interop/$V/will"
	stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -V $V -d -i "will-$V" \
		--will-topic "interop/$V/will" --will-payload "died ($V)" \
		--will-qos 1 -t "interop/$V/nothing" >"$dir/dying.out" 2>&1 &
	dying=$!
	bg_pids="$bg_pids $dying"
	if wait_line "$dir/dying.out" "received SUBACK"; then
		kill -9 "$dying"
		wait "$dying" 2>/dev/null
	else
		fail "$V will" "the will client did not connect"
		kill -9 "$dying" 2>/dev/null
	fi
	sub_wait watch
	expect watch "$V will on SIGKILL" \
		"$(msg "interop/$V/will" 1 0 "died ($V)")"

	# Persistent session (-c): QoS 1 published while offline arrives.
	timeout $T mosquitto_sub -h 127.0.0.1 -p "$port" -V $V -c -i "pers-$V" \
		-q 1 -t "interop/$V/pers" -E >/dev/null 2>&1 ||
		fail "$V persistent session" "first mosquitto_sub -E failed"
	pub -V $V -q 1 -t "interop/$V/pers" -m "while you were away"
	timeout $T mosquitto_sub -h 127.0.0.1 -p "$port" -V $V -c -i "pers-$V" \
		-q 1 -t "interop/$V/pers" -C 1 -W 5 -F "$FMT" \
		>"$dir/pers.out" 2>&1
	expect pers "$V persistent session" \
		"$(msg "interop/$V/pers" 1 0 "while you were away")"

	# A 48 KiB payload, byte for byte.
	head -c 36864 /dev/urandom | od -An -v -tx1 | tr -d ' \n' |
		head -c 49152 >"$dir/big"
	sub_start big -V $V -q 1 -C 1 -t "interop/$V/big"
	pub -V $V -q 1 -t "interop/$V/big" -f "$dir/big"
	sub_wait big
	expect big "$V 48 KiB payload" \
		"MSG|interop/$V/big|1|0|$(hex <"$dir/big")"
done

# Across versions: 3.1.1 publisher to a 5.0 subscriber and back.
sub_start x5 -V mqttv5 -q 2 -C 1 -t interop/x/to5
pub -V mqttv311 -q 2 -t interop/x/to5 -m "from 3.1.1"
sub_wait x5
expect x5 "3.1.1 to 5.0" "$(msg interop/x/to5 2 0 "from 3.1.1")"
sub_start x3 -V mqttv311 -q 2 -C 1 -t interop/x/to3
pub -V mqttv5 -q 2 -t interop/x/to3 -m "from 5.0"
sub_wait x3
expect x3 "5.0 to 3.1.1" "$(msg interop/x/to3 2 0 "from 5.0")"

# MQTT 5 properties travel: user properties, content type, response
# topic, payload format indicator.
timeout $T stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -V mqttv5 -d \
	-q 1 -C 1 -F 'PROPS|%C|%R|%F|%P|%p' -t interop/props \
	>"$dir/props.out" 2>&1 &
props_pid=$!
bg_pids="$bg_pids $props_pid"
wait_line "$dir/props.out" "received SUBACK"
pub -V mqttv5 -q 1 -t interop/props -m "with properties" \
	-D publish user-property sensor kitchen \
	-D publish content-type text/plain \
	-D publish response-topic interop/reply \
	-D publish payload-format-indicator 1
wait "$props_pid" 2>/dev/null
got=$(grep '^PROPS|' "$dir/props.out")
want='PROPS|text/plain|interop/reply|1|sensor:kitchen|with properties'
if [ "$got" = "$want" ]; then
	pass "5.0 properties"
else
	fail "5.0 properties" "expected '$want', got '$got'"
fi

# The broker survived all that and exits cleanly on SIGTERM.
kill "$broker_pid"
if wait "$broker_pid"; then
	pass "cicada exits 0 on SIGTERM"
else
	fail "cicada exit status" "$? (log follows)"
	sed 's/^/    /' "$dir/cicada.log"
fi
broker_pid=

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
