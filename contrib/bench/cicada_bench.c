/*
 * cicada-bench: load generator for MQTT brokers on this machine's loopback
 * (Cicada, and mosquitto to compare with).  It speaks MQTT 3.1.1 and 5.0
 * itself with Cicada's codec.  The scenarios pairs, fanout, fanin and
 * latency publish sequenced, timestamped messages at QoS 0, 1 or 2 and
 * verify every delivery (loss, duplicates, reordering); conns opens many
 * idle connections and measures the connect rate and the broker's memory
 * per connection.  Every run is bounded in time and in connections and
 * ends with one machine-readable RESULT line.  See cicada-bench(1).
 *
 * This file: options, the loopback-only rule, the open-files limit, the
 * run's topology, the control loop (phases, measurement window, drain)
 * and the report.  The workers and connections are in bench_conn.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "contrib/bench/bench.h"

enum {
	EXIT_VERIFY = 1, /* a verification failed */
	EXIT_USAGE = 2,
	EXIT_RUN = 3,    /* the run could not be carried out */
};

#define MAX_THREADS 64
#define MAX_TRACKS 4000000u
/* Open files the bench needs besides its connections. */
#define FD_RESERVE_BASE 16u
#define FD_RESERVE_PER_THREAD 4u
#define CONTROL_STEP_NS 5000000u
#define NS 1000000000.0

static volatile sig_atomic_t stop_requested;

static const char *const scenario_names[] = {
	[SC_PAIRS] = "pairs",
	[SC_FANOUT] = "fanout",
	[SC_FANIN] = "fanin",
	[SC_LATENCY] = "latency",
	[SC_CONNS] = "conns",
};

static void usage(FILE *f)
{
	fputs("Usage: cicada-bench SCENARIO [OPTION]...\n"
	      "MQTT load generator for a broker on the loopback interface.\n"
	      "\n"
	      "Scenarios:\n"
	      "  pairs     N publisher/subscriber pairs on distinct topics\n"
	      "  fanout    1 publisher -> N subscribers on one topic\n"
	      "  fanin     P publishers -> S subscribers on a PREFIX/+/x filter\n"
	      "  latency   N pairs at a fixed total rate; latency percentiles\n"
	      "  conns     N idle connections: connect rate, broker RSS\n"
	      "\n"
	      "Options:\n"
	      "  -H, --host ADDR        broker address: 127.0.0.0/8, ::1 or\n"
	      "                         localhost only (default 127.0.0.1)\n"
	      "  -p, --port PORT        broker port (default 1883)\n"
	      "  -n, --count N          pairs, subscribers (fanout), publishers\n"
	      "                         (fanin) or connections (conns)\n"
	      "      --pubs P           fanin publishers (default 8)\n"
	      "      --subs S           fanin subscribers (default 1)\n"
	      "  -q, --qos 0|1|2        QoS of publications and subscriptions\n"
	      "  -s, --size BYTES       payload size, 20..1048576 (default 64)\n"
	      "  -w, --window W         QoS 1/2 messages in flight per\n"
	      "                         publisher (default 100)\n"
	      "  -b, --backlog B        undelivered messages per publisher\n"
	      "                         before it pauses (default 1000;\n"
	      "                         fanout 100)\n"
	      "  -V, --version 4|5      MQTT 3.1.1 or 5.0 (default 4)\n"
	      "  -r, --rate MSGS        total publish rate per second (latency:\n"
	      "                         default 10000; others: unlimited)\n"
	      "  -d, --duration SECS    measured seconds (default 10)\n"
	      "      --warmup SECS      unmeasured seconds first (default 2)\n"
	      "      --drain SECS       longest wait for messages in flight at\n"
	      "                         the end (default 5)\n"
	      "      --connect-timeout SECS  setup limit (default 30)\n"
	      "  -t, --threads T        worker threads, one loop each (default 1)\n"
	      "      --sources K        connect from 127.0.0.2..127.0.0.(K+1)\n"
	      "                         (conns default 4, others 0: no bind)\n"
	      "      --concurrency C    connections opened at once per thread\n"
	      "                         (default 200)\n"
	      "  -k, --keepalive SECS   CONNECT keep alive (default 60)\n"
	      "      --pid PID          broker pid: report its RSS (conns)\n"
	      "      --topic-prefix P   topic prefix (default\n"
	      "                         cicada-bench/RUNID)\n"
	      "      --durable          subscribers keep sessions the broker\n"
	      "                         must persist (3.1.1 clean session 0;\n"
	      "                         5.0 clean start 0, session expiry\n"
	      "                         3600), removed again at the end\n"
	      "      --quiet            no per-second lines\n"
	      "  -h, --help             print this help, then exit\n"
	      "\n"
	      "Exit status: 0 verified, 1 verification failed (loss at QoS 1/2,\n"
	      "duplicates, reordering, errors, stalls), 2 bad usage, 3 the run\n"
	      "could not be carried out.  See cicada-bench(1).\n", f);
}

static int bad_arg(const char *opt, const char *arg, const char *why)
{
	fprintf(stderr, "cicada-bench: %s %s: %s\n", opt, arg, why);
	return -1;
}

static int parse_u32(const char *opt, const char *arg, uint32_t min,
		     uint32_t max, uint32_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-')
		return bad_arg(opt, arg, "not a number");
	if (v < min || v > max) {
		char why[80];

		snprintf(why, sizeof(why), "out of range %u..%u", min, max);
		return bad_arg(opt, arg, why);
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_secs(const char *opt, const char *arg, double min,
		      double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v))
		return bad_arg(opt, arg, "not a number");
	if (v < min || v > max) {
		char why[80];

		snprintf(why, sizeof(why), "out of range %g..%g", min, max);
		return bad_arg(opt, arg, why);
	}
	*out = v;
	return 0;
}

static const struct option long_opts[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "count", required_argument, NULL, 'n' },
	{ "pubs", required_argument, NULL, 'P' },
	{ "subs", required_argument, NULL, 'S' },
	{ "qos", required_argument, NULL, 'q' },
	{ "size", required_argument, NULL, 's' },
	{ "window", required_argument, NULL, 'w' },
	{ "backlog", required_argument, NULL, 'b' },
	{ "version", required_argument, NULL, 'V' },
	{ "rate", required_argument, NULL, 'r' },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, 'W' },
	{ "drain", required_argument, NULL, 'D' },
	{ "connect-timeout", required_argument, NULL, 'T' },
	{ "threads", required_argument, NULL, 't' },
	{ "sources", required_argument, NULL, 'X' },
	{ "concurrency", required_argument, NULL, 'C' },
	{ "keepalive", required_argument, NULL, 'k' },
	{ "pid", required_argument, NULL, 'I' },
	{ "topic-prefix", required_argument, NULL, 'x' },
	{ "quiet", no_argument, NULL, 'Q' },
	{ "durable", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* "--name" of the option whose short form is ch, for messages. */
static const char *opt_name(int ch)
{
	static char buf[32];

	for (const struct option *lo = long_opts; lo->name; lo++)
		if (lo->val == ch) {
			snprintf(buf, sizeof(buf), "--%s", lo->name);
			return buf;
		}
	return "option";
}

/* Returns 0, 1 after --help, or -1 on bad usage. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	bool n_set = false, rate_set = false, backlog_set = false;
	const char *scenario = NULL;
	uint32_t v;
	int ch, rc = 0;

	o->host = "127.0.0.1";
	o->port = 1883;
	o->qos = 0;
	o->version = MQTT_V311;
	o->size = 64;
	o->window = 100;
	o->backlog = 1000;
	o->duration = 10;
	o->warmup = 2;
	o->drain = 5;
	o->connect_timeout = 30;
	o->threads = 1;
	o->concurrency = 200;
	o->keepalive = 60;
	o->pubs = 8;
	o->subs = 1;

	while ((ch = getopt_long(argc, argv, "H:p:n:q:s:w:b:V:r:d:t:k:h",
				 long_opts, NULL)) != -1 && rc == 0) {
		const char *name = opt_name(ch);

		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			rc = parse_u32(name, optarg, 1, 65535, &v);
			o->port = (uint16_t)v;
			break;
		case 'n':
			rc = parse_u32(name, optarg, 1, 1000000, &o->n);
			n_set = true;
			break;
		case 'P':
			rc = parse_u32(name, optarg, 1, 1000000, &o->pubs);
			break;
		case 'S':
			rc = parse_u32(name, optarg, 1, 1000000, &o->subs);
			break;
		case 'q':
			rc = parse_u32(name, optarg, 0, 2, &v);
			o->qos = (uint8_t)v;
			break;
		case 's':
			rc = parse_u32(name, optarg, PAYLOAD_MIN, PAYLOAD_MAX,
				       &o->size);
			break;
		case 'w':
			rc = parse_u32(name, optarg, 1, 65535, &o->window);
			break;
		case 'b':
			rc = parse_u32(name, optarg, 1, 10000000, &o->backlog);
			backlog_set = true;
			break;
		case 'V':
			if (!strcmp(optarg, "4") || !strcmp(optarg, "3.1.1"))
				o->version = MQTT_V311;
			else if (!strcmp(optarg, "5") || !strcmp(optarg, "5.0"))
				o->version = MQTT_V5;
			else
				rc = bad_arg(name, optarg, "not 4 or 5");
			break;
		case 'r':
			rc = parse_secs(name, optarg, 0, 1e8, &o->rate);
			rate_set = true;
			break;
		case 'd':
			rc = parse_secs(name, optarg, 0.1, 86400, &o->duration);
			break;
		case 'W':
			rc = parse_secs(name, optarg, 0, 3600, &o->warmup);
			break;
		case 'D':
			rc = parse_secs(name, optarg, 0, 3600, &o->drain);
			break;
		case 'T':
			rc = parse_secs(name, optarg, 0.1, 3600,
					&o->connect_timeout);
			break;
		case 't':
			rc = parse_u32(name, optarg, 1, MAX_THREADS,
				       &o->threads);
			break;
		case 'X':
			rc = parse_u32(name, optarg, 0, 250, &o->sources);
			o->sources_set = true;
			break;
		case 'C':
			rc = parse_u32(name, optarg, 1, 100000,
				       &o->concurrency);
			break;
		case 'k':
			rc = parse_u32(name, optarg, 0, 65535, &v);
			o->keepalive = (uint16_t)v;
			break;
		case 'I':
			rc = parse_u32(name, optarg, 1, INT32_MAX, &v);
			o->pid = (long)v;
			break;
		case 'x':
			o->prefix = optarg;
			break;
		case 'Q':
			o->quiet = true;
			break;
		case 'U':
			o->durable = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (rc)
		return -1;
	if (optind < argc)
		scenario = argv[optind++];
	if (!scenario || optind < argc) {
		fprintf(stderr, "cicada-bench: %s\n",
			scenario ? "one scenario only" : "no scenario given");
		usage(stderr);
		return -1;
	}
	for (size_t i = 0; i < sizeof(scenario_names) / sizeof(*scenario_names);
	     i++)
		if (!strcmp(scenario, scenario_names[i])) {
			o->scenario = (enum scenario)i;
			o->scenario_name = scenario_names[i];
		}
	if (!o->scenario_name) {
		fprintf(stderr, "cicada-bench: unknown scenario '%s'\n",
			scenario);
		return -1;
	}
	switch (o->scenario) {
	case SC_PAIRS:
		if (!n_set)
			o->n = 10;
		break;
	case SC_FANOUT:
		if (!n_set)
			o->n = 100;
		/* Each message is N deliveries: keep what is queued in the
		 * broker and the sockets near the other scenarios'. */
		if (!backlog_set)
			o->backlog = 100;
		break;
	case SC_FANIN:
		if (n_set)
			o->pubs = o->n;
		break;
	case SC_LATENCY:
		if (!n_set)
			o->n = 10;
		if (!rate_set)
			o->rate = 10000;
		if (o->rate <= 0) {
			fprintf(stderr, "cicada-bench: latency needs a rate\n");
			return -1;
		}
		break;
	case SC_CONNS:
		if (!n_set)
			o->n = 1000;
		if (!o->sources_set)
			o->sources = 4;
		if (o->durable) {
			fprintf(stderr, "cicada-bench: --durable: conns has "
				"no subscribers\n");
			return -1;
		}
		break;
	}
	if (o->prefix && (strlen(o->prefix) > 48 || !*o->prefix ||
			  strpbrk(o->prefix, "+#"))) {
		fprintf(stderr, "cicada-bench: --topic-prefix: 1..48 "
			"characters, no wildcards\n");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------ loopback rule */

/*
 * This tool loads a broker as hard as it can: it may only ever point at
 * this machine.  Addresses only (no name lookup), 127.0.0.0/8 or ::1.
 */
static int run_resolve(struct run *run)
{
	const char *host = run->o.host;
	char buf[64];
	size_t len = strlen(host);

	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (len > 2 && len < sizeof(buf) && host[0] == '[' &&
	    host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		host = buf;
	}
	memset(&run->dst, 0, sizeof(run->dst));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&run->dst;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			goto refuse;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(run->o.port);
		run->dst_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&run->dst;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
		    (ntohl(a->sin_addr.s_addr) >> 24) != 127)
			goto refuse;
		a->sin_family = AF_INET;
		a->sin_port = htons(run->o.port);
		run->dst_len = sizeof(*a);
	}
	if (run->o.sources && run->dst.ss_family == AF_INET6) {
		if (run->o.sources_set) {
			fprintf(stderr, "cicada-bench: --sources needs an IPv4"
				" broker address (::1 has no others)\n");
			return -1;
		}
		run->o.sources = 0;
	}
	run->nsrc = run->o.sources;
	if (run->nsrc) {
		run->src = calloc(run->nsrc, sizeof(*run->src));
		if (!run->src)
			return -1;
		for (uint32_t i = 0; i < run->nsrc; i++) {
			run->src[i].sin_family = AF_INET;
			run->src[i].sin_addr.s_addr =
				htonl(0x7f000002u + i); /* 127.0.0.2 + i */
		}
	}
	return 0;
refuse:
	fprintf(stderr, "cicada-bench: --host %s: refused: this tool only "
		"connects to the loopback interface (127.0.0.0/8, ::1, "
		"localhost)\n", run->o.host);
	return -1;
}

/* Raise the soft open-files limit to the hard one; refuse what exceeds it. */
static int check_nofile(uint32_t nconns, uint32_t threads)
{
	uint64_t reserve = FD_RESERVE_BASE + FD_RESERVE_PER_THREAD * threads;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || nconns + reserve <= rl.rlim_cur)
		return 0;
	fprintf(stderr, "cicada-bench: %u connections need %llu open files; "
		"the limit is %llu (hard %llu): at most %llu connections\n",
		nconns, (unsigned long long)(nconns + reserve),
		(unsigned long long)rl.rlim_cur,
		(unsigned long long)rl.rlim_max,
		rl.rlim_cur > reserve ?
		(unsigned long long)(rl.rlim_cur - reserve) : 0ull);
	return -1;
}

/* ------------------------------------------------------------- topology */

static int run_build(struct run *run)
{
	struct opts *o = &run->o;
	uint32_t nidle = 0, tracks_per_sub = 1, t;
	uint64_t ntracks;

	switch (o->scenario) {
	case SC_PAIRS:
	case SC_LATENCY:
		run->npubs = run->nsubs = o->n;
		break;
	case SC_FANOUT:
		run->npubs = 1;
		run->nsubs = o->n;
		break;
	case SC_FANIN:
		run->npubs = o->pubs;
		run->nsubs = o->subs;
		tracks_per_sub = o->pubs;
		break;
	case SC_CONNS:
		nidle = o->n;
		break;
	}
	if ((uint64_t)run->npubs + run->nsubs + nidle > 1000000) {
		fprintf(stderr, "cicada-bench: too many connections\n");
		return -1;
	}
	run->nconns = run->npubs + run->nsubs + nidle;
	ntracks = (uint64_t)run->nsubs * tracks_per_sub;
	if (ntracks > MAX_TRACKS) {
		fprintf(stderr, "cicada-bench: publishers x subscribers is "
			"over %u\n", MAX_TRACKS);
		return -1;
	}
	if (o->threads > run->nconns)
		o->threads = run->nconns;
	if (check_nofile(run->nconns, o->threads) < 0)
		return -1;

	snprintf(run->runid, sizeof(run->runid), "%06x",
		 (unsigned)(((uint64_t)getpid() * 2654435761u) ^ mono_ns()) &
		 0xffffffu);
	if (o->prefix)
		snprintf(run->prefix, sizeof(run->prefix), "%s", o->prefix);
	else
		snprintf(run->prefix, sizeof(run->prefix), "cicada-bench/%s",
			 run->runid);
	run->max_packet = o->size + 4096;
	run->filler = malloc(o->size);
	run->conns = calloc(run->nconns, sizeof(*run->conns));
	run->pubs = calloc(run->npubs ? run->npubs : 1, sizeof(*run->pubs));
	run->pubsh = aligned_alloc(CACHELINE, (run->npubs ? run->npubs : 1) *
				   sizeof(*run->pubsh));
	run->subs = calloc(run->nsubs ? run->nsubs : 1, sizeof(*run->subs));
	run->tracks = calloc(ntracks ? ntracks : 1, sizeof(*run->tracks));
	run->workers = calloc(o->threads, sizeof(*run->workers));
	if (!run->filler || !run->conns || !run->pubs || !run->pubsh ||
	    !run->subs || !run->tracks || !run->workers)
		goto nomem;
	for (uint32_t i = 0; i < o->size; i++)
		run->filler[i] = (uint8_t)('a' + i % 26);
	memset(run->pubsh, 0, (run->npubs ? run->npubs : 1) *
	       sizeof(*run->pubsh));

	/* Subscribers first: they connect and subscribe before anyone
	 * publishes anyway, and come first in each worker's list. */
	for (uint32_t i = 0; i < run->nsubs; i++) {
		struct sub *s = &run->subs[i];
		struct conn *c = &run->conns[i];

		c->role = ROLE_SUB;
		c->sub = s;
		s->c = c;
		s->tracks = &run->tracks[(uint64_t)i * tracks_per_sub];
		s->ntracks = tracks_per_sub;
		switch (o->scenario) {
		case SC_FANOUT:
			snprintf(s->filter, sizeof(s->filter), "%s/fanout",
				 run->prefix);
			break;
		case SC_FANIN:
			snprintf(s->filter, sizeof(s->filter), "%s/+/x",
				 run->prefix);
			break;
		default:
			s->pub_base = i;
			snprintf(s->filter, sizeof(s->filter), "%s/pair/%u",
				 run->prefix, i);
			break;
		}
	}
	for (uint32_t i = 0; i < run->npubs; i++) {
		struct pub *p = &run->pubs[i];
		struct conn *c = &run->conns[run->nsubs + i];

		c->role = ROLE_PUB;
		c->pub = p;
		p->c = c;
		p->id = i;
		p->sh = &run->pubsh[i];
		p->sh->owner = &run->workers[(run->nsubs + i) % o->threads];
		p->rate = o->rate / run->npubs;
		p->phase_frac = (double)i / run->npubs;
		switch (o->scenario) {
		case SC_FANOUT:
			p->fanout = run->nsubs;
			snprintf(p->topic, sizeof(p->topic), "%s/fanout",
				 run->prefix);
			break;
		case SC_FANIN:
			p->fanout = run->nsubs;
			snprintf(p->topic, sizeof(p->topic), "%s/%u/x",
				 run->prefix, i);
			break;
		default:
			p->fanout = 1;
			snprintf(p->topic, sizeof(p->topic), "%s/pair/%u",
				 run->prefix, i);
			break;
		}
		if (pub_prepare(run, p) < 0) {
			fprintf(stderr, "cicada-bench: cannot encode "
				"PUBLISH\n");
			return -1;
		}
	}
	for (uint32_t i = run->nsubs + run->npubs; i < run->nconns; i++)
		run->conns[i].role = ROLE_IDLE;
	for (uint32_t i = 0; i < run->nconns; i++)
		run->conns[i].id = i;

	/* Round robin over the workers. */
	for (t = 0; t < o->threads; t++) {
		struct worker *w = &run->workers[t];
		uint32_t nc = run->nconns / o->threads +
			      (t < run->nconns % o->threads);

		w->conns = calloc(nc ? nc : 1, sizeof(*w->conns));
		w->pubs = calloc(run->npubs ? run->npubs : 1,
				 sizeof(*w->pubs));
		if (!w->conns || !w->pubs)
			goto nomem;
	}
	for (uint32_t i = 0; i < run->nconns; i++) {
		struct worker *w = &run->workers[i % o->threads];
		struct conn *c = &run->conns[i];

		w->conns[w->nconns++] = c;
		if (c->role == ROLE_PUB)
			w->pubs[w->npubs++] = c->pub;
	}
	for (t = 0; t < o->threads; t++)
		if (worker_init(&run->workers[t], run, t) < 0) {
			fprintf(stderr, "cicada-bench: cannot set up worker\n");
			return -1;
		}
	return 0;
nomem:
	fprintf(stderr, "cicada-bench: out of memory\n");
	return -1;
}

static void run_free(struct run *run)
{
	for (uint32_t t = 0; run->workers && t < run->o.threads; t++) {
		worker_free(&run->workers[t]);
		free(run->workers[t].conns);
		free(run->workers[t].pubs);
	}
	for (uint32_t i = 0; run->conns && i < run->nconns; i++) {
		free(run->conns[i].out.data);
		free(run->conns[i].in.data);
	}
	for (uint32_t i = 0; run->pubs && i < run->npubs; i++) {
		free(run->pubs[i].pid_state);
		free(run->pubs[i].pid_ts);
	}
	free(run->workers);
	free(run->conns);
	free(run->pubs);
	free(run->pubsh);
	free(run->subs);
	free(run->tracks);
	free(run->filler);
	free(run->src);
}

/* --------------------------------------------------------- control loop */

struct control {
	uint64_t t_start;       /* workers started */
	uint64_t t_ready;       /* every connection ready */
	uint64_t t_phase;       /* current phase entered */
	uint64_t t_measure0, t_measure1;
	uint64_t deliv0, deliv1, done0, done1;
	uint64_t sec_t, sec_deliv, sec_done;
	uint32_t sec_k;
	uint32_t stalls;        /* measured seconds with nothing delivered */
	uint64_t quiet_sum;     /* drain: deliveries + acks last seen */
	uint64_t quiet_t;
	long rss_before, rss_after;
	double drain_secs;
	bool drained;           /* everything in flight arrived */
	const char *abort;      /* why the run stopped early */
};

static uint64_t total_delivered(struct run *run)
{
	uint64_t n = 0;

	for (uint32_t t = 0; t < run->o.threads; t++)
		n += atomic_load_explicit(&run->workers[t].delivered,
					  memory_order_relaxed);
	return n;
}

static uint64_t total_done(struct run *run)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < run->npubs; i++)
		n += atomic_load_explicit(&run->pubsh[i].done,
					  memory_order_relaxed);
	return n;
}

/* Every message sent was acknowledged and reached every subscriber. */
static bool run_is_drained(struct run *run)
{
	for (uint32_t i = 0; i < run->npubs; i++) {
		struct pub_shared *sh = &run->pubsh[i];
		uint64_t sent = atomic_load(&sh->sent);

		if (run->o.qos && atomic_load(&sh->done) != sent)
			return false;
		if (atomic_load(&sh->progress) < sent * run->pubs[i].fanout)
			return false;
	}
	return true;
}

static void run_set_phase(struct run *run, struct control *ctl, int phase,
			  uint64_t now)
{
	ctl->t_phase = now;
	atomic_store(&run->phase, phase);
	for (uint32_t t = 0; t < run->o.threads; t++)
		worker_wake(&run->workers[t]);
}

static void control_second(struct run *run, struct control *ctl,
			   uint64_t now)
{
	uint64_t d = total_delivered(run), a = total_done(run);
	double secs = (double)(now - ctl->sec_t) / NS;

	ctl->sec_k++;
	if (d == ctl->sec_deliv && (run->o.rate <= 0 || run->o.rate >= 1))
		ctl->stalls++;
	if (!run->o.quiet)
		printf("  %4u s  %12.0f msg/s delivered  %12.0f msg/s "
		       "published%s\n", ctl->sec_k,
		       (double)(d - ctl->sec_deliv) / secs,
		       (double)(a - ctl->sec_done) / secs,
		       d == ctl->sec_deliv ? "  STALL" : "");
	fflush(stdout);
	ctl->sec_t = now;
	ctl->sec_deliv = d;
	ctl->sec_done = a;
}

static void control_start_measure(struct run *run, struct control *ctl,
				  uint64_t now)
{
	ctl->t_measure0 = ctl->sec_t = now;
	ctl->deliv0 = ctl->sec_deliv = total_delivered(run);
	ctl->done0 = ctl->sec_done = total_done(run);
	run_set_phase(run, ctl, PH_MEASURE, now);
}

/* One step of the control loop; false when the run is over. */
static bool control_step(struct run *run, struct control *ctl, uint64_t now)
{
	const struct opts *o = &run->o;
	int phase = atomic_load(&run->phase);
	double in_phase = (double)(now - ctl->t_phase) / NS;
	bool conns = o->scenario == SC_CONNS;

	if (stop_requested) {
		ctl->abort = "interrupted";
		return false;
	}
	switch (phase) {
	case PH_SETUP: {
		uint32_t ready = atomic_load(&run->ready);
		uint32_t failed = atomic_load(&run->failed);

		if (failed && !conns) {
			ctl->abort = "connections failed during setup";
			return false;
		}
		if (ready + failed < run->nconns) {
			if (in_phase > o->connect_timeout) {
				ctl->abort = "setup timed out";
				return false;
			}
			return true;
		}
		ctl->t_ready = now;
		printf("  setup: %u connections ready in %.2f s%s\n", ready,
		       (double)(now - ctl->t_start) / NS,
		       failed ? " (some failed)" : "");
		if (conns) {
			ctl->t_measure0 = now;
			run_set_phase(run, ctl, PH_MEASURE, now);
			return true;
		}
		run->rate_t0 = now;
		if (o->warmup > 0)
			run_set_phase(run, ctl, PH_WARMUP, now);
		else
			control_start_measure(run, ctl, now);
		return true;
	}
	case PH_WARMUP:
		if (in_phase >= o->warmup)
			control_start_measure(run, ctl, now);
		return true;
	case PH_MEASURE:
		if (conns) {
			if (in_phase < o->duration)
				return true;
			ctl->t_measure1 = now;
			if (o->pid)
				ctl->rss_after = proc_rss_kb(o->pid);
			return false;
		}
		if (now - ctl->sec_t >= 1000000000u &&
		    now - ctl->t_measure0 + 500000000u <
		    (uint64_t)(o->duration * NS))
			control_second(run, ctl, now);
		if (in_phase < o->duration)
			return true;
		if (ctl->sec_k < (uint32_t)o->duration)
			control_second(run, ctl, now);
		ctl->t_measure1 = now;
		ctl->deliv1 = total_delivered(run);
		ctl->done1 = total_done(run);
		ctl->quiet_sum = ctl->deliv1 + ctl->done1;
		ctl->quiet_t = now;
		run_set_phase(run, ctl, PH_DRAIN, now);
		return true;
	case PH_DRAIN: {
		uint64_t sum = total_delivered(run) + total_done(run);
		/* Nothing moves without a reconnect: a quiet broker is done. */
		double quiet = o->qos ? 2.0 : 1.0;

		ctl->drain_secs = in_phase;
		if (run_is_drained(run)) {
			ctl->drained = true;
			return false;
		}
		if (sum != ctl->quiet_sum) {
			ctl->quiet_sum = sum;
			ctl->quiet_t = now;
		}
		return in_phase < o->drain &&
		       (double)(now - ctl->quiet_t) / NS < quiet;
	}
	default:
		return false;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int run_control(struct run *run, struct control *ctl)
{
	const struct opts *o = &run->o;
	double bound = o->connect_timeout + o->warmup + o->duration +
		       o->drain + 10;
	struct timespec step = { 0, CONTROL_STEP_NS };
	struct sigaction sa;
	sigset_t all, old;
	uint32_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o->pid) {
		ctl->rss_before = proc_rss_kb(o->pid);
		if (ctl->rss_before < 0)
			fprintf(stderr, "cicada-bench: --pid %ld: cannot read "
				"/proc/%ld/status\n", o->pid, o->pid);
	}
	/* Signals go to the control thread only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ctl->t_start = ctl->t_phase = mono_ns();
	for (t = 0; t < o->threads; t++)
		if (worker_start(&run->workers[t]) < 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (t < o->threads) {
		ctl->abort = "cannot start threads";
		atomic_store(&run->phase, PH_STOP);
	} else {
		for (;;) {
			uint64_t now;

			nanosleep(&step, NULL);
			now = mono_ns();
			if ((double)(now - ctl->t_start) / NS > bound) {
				ctl->abort = "the run overran its time bound";
				break;
			}
			if (!control_step(run, ctl, now))
				break;
		}
		run_set_phase(run, ctl, PH_STOP, mono_ns());
	}
	while (t-- > 0)
		worker_join(&run->workers[t]);
	return 0;
}

/* --------------------------------------------------------------- report */

static const char *version_name(uint8_t v)
{
	return v == MQTT_V5 ? "5.0" : "3.1.1";
}

static void print_header(const struct run *run)
{
	const struct opts *o = &run->o;

	printf("cicada-bench %s: ", o->scenario_name);
	switch (o->scenario) {
	case SC_PAIRS:
	case SC_LATENCY:
		printf("%u publisher/subscriber pairs", o->n);
		break;
	case SC_FANOUT:
		printf("1 publisher -> %u subscribers", o->n);
		break;
	case SC_FANIN:
		printf("%u publishers -> %u subscribers on %s/+/x", run->npubs,
		       run->nsubs, run->prefix);
		break;
	case SC_CONNS:
		printf("%u idle connections, keep alive %u s", o->n,
		       o->keepalive);
		break;
	}
	printf(", MQTT %s\n", version_name(o->version));
	printf("  broker %s port %u, %u thread%s", o->host, o->port,
	       o->threads, o->threads == 1 ? "" : "s");
	if (run->nsrc)
		printf(", sources 127.0.0.2-127.0.0.%u", 1 + run->nsrc);
	if (o->scenario == SC_CONNS) {
		printf(", hold %.1f s\n", o->duration);
		return;
	}
	printf("\n  QoS %u, payload %u B, ", o->qos, o->size);
	if (o->qos)
		printf("window %u, ", o->window);
	printf("backlog %u, ", o->backlog);
	if (o->rate > 0)
		printf("rate %.0f msg/s, ", o->rate);
	printf("warm-up %.1f s, measure %.1f s\n", o->warmup, o->duration);
	if (o->durable)
		printf("  durable: subscribers %s, client ids cb%s-sN, "
		       "sessions removed at the end\n", o->version == MQTT_V5 ?
		       "clean start 0, session expiry 3600 s" :
		       "clean session 0", run->runid);
	fflush(stdout);
}

static int report_conns(struct run *run, const struct control *ctl)
{
	const struct opts *o = &run->o;
	uint32_t ready = atomic_load(&run->ready);
	uint32_t failed = atomic_load(&run->failed);
	uint32_t closed = atomic_load(&run->closed);
	uint64_t errors = atomic_load(&run->errors);
	uint64_t last = atomic_load(&run->last_ready_ns);
	double csecs = last > ctl->t_start ?
		       (double)(last - ctl->t_start) / NS : 0;
	double rate = csecs > 0 ? ready / csecs : 0;
	double held = ctl->t_measure1 > ctl->t_measure0 ?
		      (double)(ctl->t_measure1 - ctl->t_measure0) / NS : 0;
	bool ok = !ctl->abort && !failed && !closed && !errors &&
		  ready == run->nconns;
	bool rss = o->pid && ctl->rss_before >= 0 && ctl->rss_after >= 0;
	double per = rss && ready ?
		     (double)(ctl->rss_after - ctl->rss_before) * 1024 / ready :
		     0;

	printf("  connected %u of %u in %.2f s: %.0f CONNACK/s", ready,
	       run->nconns, csecs, rate);
	if (failed)
		printf(", %u failed", failed);
	printf("\n  held %.1f s: %u closed by the broker\n", held, closed);
	if (rss)
		printf("  broker pid %ld RSS: %ld kB before, %ld kB after: "
		       "%.0f B per connection\n", o->pid, ctl->rss_before,
		       ctl->rss_after, per);
	if (ctl->abort)
		printf("  stopped early: %s\n", ctl->abort);
	printf("RESULT scenario=conns version=%u conns=%u connected=%u "
	       "failed=%u closed=%u sources=%u threads=%u duration=%.1f "
	       "connect_secs=%.2f connect_per_sec=%.0f",
	       o->version, run->nconns, ready, failed, closed, run->nsrc,
	       o->threads, held, csecs, rate);
	if (rss)
		printf(" rss_before_kb=%ld rss_after_kb=%ld "
		       "rss_per_conn_b=%.0f", ctl->rss_before, ctl->rss_after,
		       per);
	printf(" errors=%llu status=%s\n", (unsigned long long)errors,
	       ok ? "ok" : "fail");
	if (ctl->abort && !ready)
		return EXIT_RUN;
	return ok ? 0 : EXIT_RUN;
}

/* The first few (publisher, subscriber) pairs that failed, on stderr. */
static void report_track(struct run *run, uint32_t sub, const struct pub *p,
			 const struct track *tr, uint64_t miss)
{
	static unsigned shown;

	if (shown++ >= 8) {
		if (shown == 9)
			fprintf(stderr, "cicada-bench: further failing "
				"publisher/subscriber pairs not shown\n");
		return;
	}
	fprintf(stderr, "cicada-bench: subscriber %u <- publisher %u: sent %llu"
		" (acknowledged %llu), received %llu, missing %llu, highest "
		"seen %lld, dup %llu, reorder %llu\n", sub, p->id,
		(unsigned long long)p->seq, (unsigned long long)p->done,
		(unsigned long long)tr->received, (unsigned long long)miss,
		(long long)tr->next - 1, (unsigned long long)tr->dup,
		(unsigned long long)tr->reorder);
	(void)run;
}

static int report_messages(struct run *run, const struct control *ctl)
{
	const struct opts *o = &run->o;
	struct hist *h = calloc(2, sizeof(*h)), *ah = h + 1;
	uint64_t sent = 0, expected = 0, received = 0, lost = 0, dup = 0;
	uint64_t reorder = 0, unexpected = 0, unacked = 0, written_off = 0;
	uint64_t errors = atomic_load(&run->errors);
	uint32_t closed = atomic_load(&run->closed);
	double secs = ctl->t_measure1 > ctl->t_measure0 ?
		      (double)(ctl->t_measure1 - ctl->t_measure0) / NS : 0;
	double mps = secs > 0 ? (double)(ctl->deliv1 - ctl->deliv0) / secs : 0;
	double pps = secs > 0 ? (double)(ctl->done1 - ctl->done0) / secs : 0;
	double p50, p90, p99, p999, pmax, a50, a99, a999, amax;
	uint32_t resumed = atomic_load(&run->resumed);
	uint32_t cleaned = atomic_load(&run->cleaned);
	uint32_t cleanup_failed = atomic_load(&run->cleanup_failed);
	uint32_t cleanup_present = atomic_load(&run->cleanup_present);
	bool ok;

	if (!h) {
		fprintf(stderr, "cicada-bench: out of memory\n");
		return EXIT_RUN;
	}
	for (uint32_t t = 0; t < o->threads; t++) {
		hist_merge(h, &run->workers[t].hist);
		hist_merge(ah, &run->workers[t].ack_hist);
		received += run->workers[t].ndelivered;
	}
	for (uint32_t i = 0; i < run->npubs; i++) {
		const struct pub *p = &run->pubs[i];

		sent += p->seq;
		expected += p->seq * p->fanout;
		written_off += p->written_off;
		if (o->qos)
			unacked += p->seq - p->done;
	}
	for (uint32_t i = 0; i < run->nsubs; i++) {
		const struct sub *s = &run->subs[i];

		unexpected += s->unexpected;
		for (uint32_t k = 0; k < s->ntracks; k++) {
			const struct track *tr = &s->tracks[k];
			const struct pub *p = &run->pubs[s->pub_base + k];
			uint64_t miss = p->seq > tr->received ?
					p->seq - tr->received : 0;

			if ((miss && o->qos) || tr->dup || tr->reorder)
				report_track(run, i, p, tr, miss);
			lost += miss;
			dup += tr->dup;
			reorder += tr->reorder;
		}
	}
	p50 = (double)hist_quantile(h, 0.50) / 1e3;
	p90 = (double)hist_quantile(h, 0.90) / 1e3;
	p99 = (double)hist_quantile(h, 0.99) / 1e3;
	p999 = (double)hist_quantile(h, 0.999) / 1e3;
	pmax = (double)h->max / 1e3;
	a50 = (double)hist_quantile(ah, 0.50) / 1e3;
	a99 = (double)hist_quantile(ah, 0.99) / 1e3;
	a999 = (double)hist_quantile(ah, 0.999) / 1e3;
	amax = (double)ah->max / 1e3;
	ok = !ctl->abort && !(o->qos && (lost || unacked)) && !dup &&
	     !reorder && !unexpected && !errors && !closed && !ctl->stalls;

	printf("  measured %.2f s: %llu deliveries, %.0f msg/s delivered, "
	       "%.0f msg/s published%s\n", secs,
	       (unsigned long long)(ctl->deliv1 - ctl->deliv0), mps, pps,
	       o->qos ? " (acknowledged)" : "");
	printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
	       "max %.1f  (%llu samples)\n", p50, p90, p99, p999, pmax,
	       (unsigned long long)h->count);
	if (o->qos)
		printf("  %s latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  "
		       "max %.1f  (%llu samples)\n",
		       o->qos == 1 ? "publish->PUBACK" : "publish->PUBCOMP",
		       a50, a99, a999, amax, (unsigned long long)ah->count);
	printf("  drain: %.2f s, %s\n", ctl->drain_secs,
	       ctl->drained ? "everything in flight arrived" :
	       "gave up waiting");
	printf("  verify: sent %llu, deliveries expected %llu, received %llu,"
	       " lost %llu%s, dup %llu, reorder %llu, unacked %llu, "
	       "unexpected %llu, errors %llu, closed %u, stalls %u: %s\n",
	       (unsigned long long)sent, (unsigned long long)expected,
	       (unsigned long long)received, (unsigned long long)lost,
	       o->qos ? "" : " (allowed at QoS 0)", (unsigned long long)dup,
	       (unsigned long long)reorder, (unsigned long long)unacked,
	       (unsigned long long)unexpected, (unsigned long long)errors,
	       closed, ctl->stalls, ok ? "OK" : "FAILED");
	if (written_off)
		printf("  QoS 0: publishers gave up waiting for %llu "
		       "deliveries the broker dropped\n",
		       (unsigned long long)written_off);
	if (o->durable)
		printf("  durable: %u of %u subscriber sessions removed at the "
		       "end%s%s\n", cleaned, run->nsubs,
		       cleanup_failed ? " (some failed: they may remain in "
		       "the broker)" : "",
		       cleanup_present ? " (some 5.0 sessions outlived "
		       "DISCONNECT with Session Expiry Interval 0)" : "");
	if (resumed)
		printf("  %u subscribers found a session present at setup\n",
		       resumed);
	if (ctl->abort)
		printf("  stopped early: %s\n", ctl->abort);
	printf("RESULT scenario=%s qos=%u version=%u conns=%u size=%u "
	       "duration=%.1f sent=%llu received=%llu msgs_per_sec=%.0f "
	       "lost=%llu dup=%llu reorder=%llu p50_us=%.1f p99_us=%.1f "
	       "pubs=%u subs=%u window=%u backlog=%u threads=%u "
	       "pub_per_sec=%.0f expected=%llu unacked=%llu unexpected=%llu "
	       "errors=%llu closed=%u stalls=%u",
	       o->scenario_name, o->qos, o->version, run->nconns, o->size,
	       secs, (unsigned long long)sent, (unsigned long long)received,
	       mps, (unsigned long long)lost, (unsigned long long)dup,
	       (unsigned long long)reorder, p50, p99, run->npubs, run->nsubs,
	       o->window, o->backlog, o->threads, pps,
	       (unsigned long long)expected, (unsigned long long)unacked,
	       (unsigned long long)unexpected, (unsigned long long)errors,
	       closed, ctl->stalls);
	if (o->rate > 0)
		printf(" rate=%.0f", o->rate);
	printf(" p90_us=%.1f p999_us=%.1f max_us=%.1f", p90, p999, pmax);
	if (o->qos)
		printf(" ack_p50_us=%.1f ack_p99_us=%.1f ack_p999_us=%.1f "
		       "ack_max_us=%.1f", a50, a99, a999, amax);
	if (o->durable)
		printf(" durable=1 cleaned=%u cleanup_failed=%u "
		       "cleanup_present=%u", cleaned, cleanup_failed,
		       cleanup_present);
	printf(" status=%s\n", ok ? "ok" : "fail");
	free(h);
	if (ctl->abort && !ctl->t_measure1)
		return EXIT_RUN;
	return ok ? 0 : EXIT_VERIFY;
}

int main(int argc, char **argv)
{
	static struct run run;
	struct control ctl;
	int rc;

	rc = parse_args(&run.o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (run_resolve(&run) < 0)
		return EXIT_USAGE;
	if (run_build(&run) < 0) {
		run_free(&run);
		return EXIT_USAGE;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.rss_before = ctl.rss_after = -1;
	print_header(&run);
	run_control(&run, &ctl);
	if (ctl.abort)
		fprintf(stderr, "cicada-bench: %s (%u of %u connections ready,"
			" %u failed)\n", ctl.abort, atomic_load(&run.ready),
			run.nconns, atomic_load(&run.failed));
	if (run.o.scenario == SC_CONNS)
		rc = report_conns(&run, &ctl);
	else
		rc = report_messages(&run, &ctl);
	run_free(&run);
	return rc;
}
