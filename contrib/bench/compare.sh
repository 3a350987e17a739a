#!/bin/bash
# compare.sh: cicada against Debian's mosquitto with cicada-bench, side by
# side on this machine.  For each scenario it starts each broker itself,
# fresh, on a free loopback port with a generated config, runs the bench
# against cicada and mosquitto alternately RUNS times each, and prints per
# scenario the median figures of each broker and the cicada/mosquitto
# ratio as a markdown table, then the machine and the exact commands.
# Both brokers are killed when the script exits, however it exits.
#
#   contrib/bench/compare.sh [--runs N] [--duration SECS] [--warmup SECS]
#       [--scenarios "LIST"] [--shards N] [--mosquitto-inflight0]
#       [--keep DIR]
#
# LIST is space-separated SCENARIO[:key=value]..., for example
#   "pairs:qos=0:n=50 fanout:qos=0:n=1000 fanin:qos=1:pubs=8:window=100"
# Each key=value is passed to cicada-bench as --key value, except:
#   mosq_inflight=N   max_inflight_messages N in mosquitto's config
#   shards=N          shards N in cicada's config
#
# Environment: CICADA (default ./cicada), BENCH (default
# ./contrib/bench/cicada-bench), MOSQUITTO (default /usr/sbin/mosquitto).
# Exit status: 0 when every run verified, 1 when a tool is missing or a
# broker would not start, 2 on bad usage, 3 when some run failed
# verification (its figures are still in the table, marked).

# Functions called through trap and $conf_fn look unreachable to it.
# shellcheck disable=SC2317
set -u

CICADA=${CICADA:-./cicada}
BENCH=${BENCH:-./contrib/bench/cicada-bench}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}

runs=3
duration=10
warmup=
shards=
mosq_inflight0=
keep=
scenarios="pairs:qos=0:n=50 fanout:qos=0:n=1000 fanin:qos=0:pubs=8:subs=1
fanin:qos=1:pubs=8:subs=1:window=100 fanin:qos=2:pubs=8:subs=1:window=100
fanin:qos=2:pubs=8:subs=1:window=100:mosq_inflight=0
latency:qos=0:rate=10000 latency:qos=1:rate=10000 conns:n=19000"

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
}

# die MESSAGE [STATUS]
die() {
	echo "compare.sh: $1" >&2
	exit "${2:-1}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=${2:?}; shift 2 ;;
	--duration) duration=${2:?}; shift 2 ;;
	--warmup) warmup=${2:?}; shift 2 ;;
	--scenarios) scenarios=${2:?}; shift 2 ;;
	--shards) shards=${2:?}; shift 2 ;;
	--mosquitto-inflight0) mosq_inflight0=1; shift ;;
	--keep) keep=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" 2 ;;
	esac
done
case $runs in ''|*[!0-9]*|0) die "--runs: a positive number" 2 ;; esac
case $duration in ''|*[!0-9.]*) die "--duration: seconds" 2 ;; esac

[ -x "$MOSQUITTO" ] || die "$MOSQUITTO not found: install Debian's mosquitto (contrib/scripts/deps-debian.sh)"
[ -x "$CICADA" ] || die "$CICADA not found: build it (make) or set CICADA"
[ -x "$BENCH" ] || die "$BENCH not found: build it (make) or set BENCH"
command -v ss >/dev/null || die "ss (iproute2) is needed to find free ports"

work=$(mktemp -d /tmp/cicada-compare.XXXXXX) || die "mktemp failed"
broker_pid=
status=0

cleanup() {
	if [ -n "$broker_pid" ]; then
		kill "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
	fi
	if [ -n "$keep" ]; then
		mkdir -p "$keep" && cp -r "$work"/. "$keep"/ &&
			echo "compare.sh: logs and configs kept in $keep" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Brokers and bench may each hold ~19,000 sockets (the conns scenario).
ulimit -n "$(ulimit -Hn)" 2>/dev/null

is_listening() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# A free port below the ephemeral range, so no client socket holds it.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		is_listening "$p" || { echo "$p"; return; }
	done
}

# start_broker NAME CONF_BODY_FUNCTION: sets broker_pid, port, broker_cmd.
start_broker() {
	local name=$1 conf_fn=$2 try conf log
	for try in 1 2 3 4 5; do
		port=$(free_port)
		conf=$work/$name.conf
		log=$work/$name-$port.log
		$conf_fn "$port" > "$conf"
		if [ "$name" = cicada ]; then
			broker_cmd="$CICADA -c $conf"
		else
			broker_cmd="$MOSQUITTO -c $conf"
		fi
		$broker_cmd > "$log" 2>&1 &
		broker_pid=$!
		for _ in $(seq 100); do
			is_listening "$port" && return 0
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
		broker_pid=
		echo "compare.sh: $name did not start on port $port (try $try):" >&2
		tail -n 5 "$log" >&2
	done
	return 1
}

stop_broker() {
	[ -n "$broker_pid" ] || return
	kill "$broker_pid" 2>/dev/null
	wait "$broker_pid" 2>/dev/null
	broker_pid=
}

conf_cicada() {
	echo "listener $1 127.0.0.1"
	echo "allow_anonymous true"
	echo "persistence false"
	echo "max_queued_messages 100000"
	[ -n "$cur_shards" ] && echo "shards $cur_shards"
	return 0
}

conf_mosquitto() {
	echo "listener $1 127.0.0.1"
	echo "allow_anonymous true"
	echo "max_queued_messages 100000"
	echo "set_tcp_nodelay true"
	[ -n "$cur_inflight" ] && echo "max_inflight_messages $cur_inflight"
	return 0
}

# field LINE KEY: the value of KEY=... in a RESULT line, or "".
field() {
	local kv
	for kv in $1; do
		case $kv in "$2="*) echo "${kv#*=}"; return ;; esac
	done
}

median() {
	[ $# -gt 0 ] || { echo "-"; return; }
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	case "$1$2" in *-*|'') echo "-"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b;
				       else print "-" }'
}

metrics_of() {
	case $1 in
	latency) echo "p50_us p99_us msgs_per_sec" ;;
	conns) echo "connect_per_sec rss_per_conn_b" ;;
	*) echo "msgs_per_sec pub_per_sec" ;;
	esac
}

commands=$work/commands
table=$work/table
: > "$commands"
: > "$table"

echo "compare.sh: $runs run(s) per broker per scenario, ${duration} s each" >&2
for spec in $scenarios; do
	scenario=${spec%%:*}
	args=()
	cur_inflight=$([ -n "$mosq_inflight0" ] && echo 0)
	cur_shards=$shards
	rest=${spec#"$scenario"}
	for kv in ${rest//:/ }; do
		key=${kv%%=*}
		val=${kv#*=}
		[ "$key" != "$kv" ] || die "bad key=value '$kv' in '$spec'" 2
		case $key in
		mosq_inflight) cur_inflight=$val ;;
		shards) cur_shards=$val ;;
		n) args+=(-n "$val") ;;
		*) args+=("--$key" "$val") ;;
		esac
	done
	args+=(--duration "$duration" --quiet)
	[ -n "$warmup" ] && args+=(--warmup "$warmup")
	declare -A vals=()
	declare -A oks=()
	for r in $(seq "$runs"); do
		if [ $((r % 2)) -eq 1 ]; then order="cicada mosquitto"
		else order="mosquitto cicada"; fi
		for b in $order; do
			start_broker "$b" "conf_$b" ||
				die "$b would not start; see the log above"
			cmd=("$BENCH" "$scenario" -p "$port" "${args[@]}")
			[ "$scenario" = conns ] && cmd+=(--pid "$broker_pid")
			out=$work/$b-$scenario-$r.out
			{
				echo "# $spec, run $r, $b (config $work/$b.conf):"
				sed 's/^/#   /' "$work/$b.conf"
				echo "$broker_cmd"
				echo "${cmd[*]}"
			} >> "$commands"
			timeout $(( ${duration%.*} + 120 )) "${cmd[@]}" \
				> "$out" 2>&1
			rc=$?
			stop_broker
			line=$(grep '^RESULT' "$out" | tail -n 1)
			if [ -z "$line" ]; then
				echo "compare.sh: $spec run $r $b: no RESULT (exit $rc):" >&2
				tail -n 5 "$out" >&2
				status=3
				continue
			fi
			st=$(field "$line" status)
			[ "$rc" -eq 0 ] || status=3
			[ "$st" = ok ] && oks[$b]=$(( ${oks[$b]:-0} + 1 ))
			summary=
			for m in $(metrics_of "$scenario"); do
				v=$(field "$line" "$m")
				[ -n "$v" ] && vals[$b.$m]="${vals[$b.$m]:-} $v"
				summary="$summary $m=${v:--}"
			done
			echo "  $spec run $r $b:$summary status=$st" >&2
			if [ "$st" != ok ]; then
				grep -E '^cicada-bench:|verify:' "$out" | head -n 4 |
					sed 's/^/    /' >&2
			fi
		done
	done
	for m in $(metrics_of "$scenario"); do
		# shellcheck disable=SC2086
		c=$(median ${vals[cicada.$m]:-})
		# shellcheck disable=SC2086
		mq=$(median ${vals[mosquitto.$m]:-})
		printf '| %s | %s | %s | %s | %s | %s/%s ok | %s/%s ok |\n' \
			"$spec" "$m" "$c" "$mq" "$(ratio "$c" "$mq")" \
			"${oks[cicada]:-0}" "$runs" "${oks[mosquitto]:-0}" \
			"$runs" >> "$table"
	done
	unset vals oks
done

echo
echo "Machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "Brokers: $("$CICADA" --version 2>&1 | head -n 1); $("$MOSQUITTO" -h 2>&1 | head -n 1)"
echo "Medians of $runs run(s) per broker, alternating, ${duration} s measured each."
echo "Ratio is cicada/mosquitto: above 1 is better for msgs_per_sec,"
echo "pub_per_sec and connect_per_sec; below 1 is better for p50_us, p99_us"
echo "and rss_per_conn_b.  \"ok\" counts runs that passed verification."
echo
echo "| scenario | metric | cicada | mosquitto | ratio | cicada runs | mosquitto runs |"
echo "|---|---|---:|---:|---:|---|---|"
cat "$table"
echo
echo "Commands (PORT chosen free per run; each broker started fresh):"
echo
echo '```'
cat "$commands"
echo '```'
exit "$status"
