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
#       [--durable] [--keep DIR]
#
# --durable runs the persistence comparison instead: three brokers per
# scenario, in rotating order, each fresh with an empty database in the
# temporary directory (deleted after each run): cicada with
# "persistence true", "durability strict" (a QoS 1/2 message for a
# persistent session is acknowledged after its commit), cicada with
# "persistence false" (in memory), and mosquitto with "persistence true"
# and its default autosave_interval (1800 s: it writes its state that
# seldom and at exit, so it persists far less than strict does).  The
# bench runs with --durable (persistent subscriber sessions, removed at
# the end); the default scenarios are then
#   "fanin:qos=1:pubs=8:subs=1:window=100 latency:qos=1:rate=10000"
# and the table adds the publish->PUBACK p99 and the ratios of cicada
# strict to cicada in memory and to mosquitto.
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
durable=
scenarios_set=
keep=
scenarios="pairs:qos=0:n=50 fanout:qos=0:n=1000 fanin:qos=0:pubs=8:subs=1
fanin:qos=1:pubs=8:subs=1:window=100 fanin:qos=2:pubs=8:subs=1:window=100
fanin:qos=2:pubs=8:subs=1:window=100:mosq_inflight=0
latency:qos=0:rate=10000 latency:qos=1:rate=10000 conns:n=19000"
durable_scenarios="fanin:qos=1:pubs=8:subs=1:window=100
latency:qos=1:rate=10000"

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
	--scenarios) scenarios=${2:?}; scenarios_set=1; shift 2 ;;
	--shards) shards=${2:?}; shift 2 ;;
	--mosquitto-inflight0) mosq_inflight0=1; shift ;;
	--durable) durable=1; shift ;;
	--keep) keep=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" 2 ;;
	esac
done
case $runs in ''|*[!0-9]*|0) die "--runs: a positive number" 2 ;; esac
case $duration in ''|*[!0-9.]*) die "--duration: seconds" 2 ;; esac
if [ -n "$durable" ]; then
	brokers="cicada_strict cicada_mem mosquitto_persist"
	[ -n "$scenarios_set" ] || scenarios=$durable_scenarios
else
	brokers="cicada mosquitto"
fi

[ -x "$MOSQUITTO" ] || die "$MOSQUITTO not found: install Debian's mosquitto (contrib/scripts/deps-debian.sh)"
[ -x "$CICADA" ] || die "$CICADA not found: build it (make) or set CICADA"
[ -x "$BENCH" ] || die "$BENCH not found: build it (make) or set BENCH"
command -v ss >/dev/null || die "ss (iproute2) is needed to find free ports"

work=$(mktemp -d /tmp/cicada-compare.XXXXXX) || die "mktemp failed"
# --durable: the brokers' databases, made empty for each run.
dbdir=$work/db
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
		case $name in
		cicada*) broker_cmd="$CICADA -c $conf" ;;
		*) broker_cmd="$MOSQUITTO -c $conf" ;;
		esac
		rm -rf "$dbdir" && mkdir -p "$dbdir" || return 1
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
	rm -rf "$dbdir"
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

# --durable: cicada acknowledging after the commit, cicada in memory.
conf_cicada_strict() {
	conf_cicada "$1" | grep -v '^persistence '
	echo "persistence true"
	echo "persistence_file $dbdir/cicada.db"
	echo "durability strict"
}

conf_cicada_mem() {
	conf_cicada "$1"
}

# mosquitto with its default autosave_interval (1800 s).  Started as root
# it would run as user mosquitto, which cannot write in our private
# temporary directory: "user root" keeps it as it was started.
conf_mosquitto_persist() {
	conf_mosquitto "$1"
	echo "persistence true"
	echo "persistence_location $dbdir/"
	[ "$(id -u)" -eq 0 ] && echo "user root"
	return 0
}

# The column heading of a broker in the --durable table.
broker_title() {
	case $1 in
	cicada_strict) echo "cicada strict" ;;
	cicada_mem) echo "cicada in-memory" ;;
	mosquitto_persist) echo "mosquitto persistence true" ;;
	*) echo "$1" ;;
	esac
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
	if [ -n "$durable" ]; then
		case $1 in
		latency) echo "p50_us p99_us ack_p99_us msgs_per_sec" ;;
		*) echo "msgs_per_sec pub_per_sec ack_p99_us" ;;
		esac
		return
	fi
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
	[ -n "$durable" ] && [ "$scenario" != conns ] && args+=(--durable)
	declare -A vals=()
	declare -A oks=()
	read -ra blist <<< "$brokers"
	for r in $(seq "$runs"); do
		# Rotate: with two brokers, alternate.
		order=
		for i in $(seq 0 $(( ${#blist[@]} - 1 ))); do
			order="$order ${blist[$(( (i + r - 1) % ${#blist[@]} ))]}"
		done
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
		if [ -n "$durable" ]; then
			# shellcheck disable=SC2086
			cs=$(median ${vals[cicada_strict.$m]:-})
			# shellcheck disable=SC2086
			cm=$(median ${vals[cicada_mem.$m]:-})
			# shellcheck disable=SC2086
			mq=$(median ${vals[mosquitto_persist.$m]:-})
			printf '| %s | %s | %s | %s | %s | %s | %s | %s/%s/%s of %s ok |\n' \
				"$spec" "$m" "$cs" "$cm" "$mq" \
				"$(ratio "$cs" "$cm")" "$(ratio "$cs" "$mq")" \
				"${oks[cicada_strict]:-0}" "${oks[cicada_mem]:-0}" \
				"${oks[mosquitto_persist]:-0}" "$runs" >> "$table"
			continue
		fi
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
if [ -n "$durable" ]; then
	echo "Medians of $runs run(s) per broker, rotating, ${duration} s measured each;"
	echo "cicada-bench --durable: persistent subscriber sessions (3.1.1 clean"
	echo "session 0, 5.0 session expiry 3600), removed at the end of each run."
	echo "cicada strict: persistence true, durability strict (PUBACK after the"
	echo "commit, SQLite WAL, synchronous FULL); cicada in-memory: persistence"
	echo "false; mosquitto: persistence true, default autosave_interval 1800 s"
	echo "(state written every 30 min and at exit: it persists far less)."
	echo "Ratios are cicada strict over the other: above 1 is better for"
	echo "msgs_per_sec and pub_per_sec, below 1 for the latencies (us)."
	echo "ack_p99_us is publish->PUBACK (QoS 1) or PUBCOMP (QoS 2)."
	echo
	echo "| scenario | metric | $(broker_title cicada_strict) | $(broker_title cicada_mem) | $(broker_title mosquitto_persist) | strict/in-memory | strict/mosquitto | runs ok (strict/mem/mosq) |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	cat "$table"
else
echo "Medians of $runs run(s) per broker, alternating, ${duration} s measured each."
echo "Ratio is cicada/mosquitto: above 1 is better for msgs_per_sec,"
echo "pub_per_sec and connect_per_sec; below 1 is better for p50_us, p99_us"
echo "and rss_per_conn_b.  \"ok\" counts runs that passed verification."
echo
echo "| scenario | metric | cicada | mosquitto | ratio | cicada runs | mosquitto runs |"
echo "|---|---|---:|---:|---:|---|---|"
cat "$table"
fi
echo
echo "Commands (PORT chosen free per run; each broker started fresh):"
echo
echo '```'
cat "$commands"
echo '```'
exit "$status"
