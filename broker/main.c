/*
 * cicada(8): the broker's entry point.  Parses the command line, loads the
 * configuration (file on top of the embedded defaults), opens the
 * listeners and runs the shards' loops until SIGINT or SIGTERM; SIGHUP
 * reloads the values that can change while running.
 *
 * Exit status: 0 on success (--help, --version), 1 when the broker cannot
 * run, 2 on bad usage.
 */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>
#include <signal.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/listener.h"
#include "broker/log.h"
#include "broker/persist.h"
#include "broker/redirect.h"
#include "broker/retain.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/share.h"
#include "conf/config.h"
#include "protocol/mqtt.h"

enum {
	EXIT_USAGE = 2,
};

/* Long-only options get values outside the char range. */
enum {
	OPT_TEST_CONFIG = 256,
	OPT_VERSION,
	OPT_CHECK_DB,
};

struct options {
	const char *config_file;	/* -c FILE, NULL: embedded defaults */
	bool test_config;		/* check the configuration and exit */
	const char *check_db;		/* --check-db FILE, NULL: none */
	int verbose;			/* each -v raises the log level */
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "test-config", no_argument, NULL, OPT_TEST_CONFIG },
	{ "check-db", required_argument, NULL, OPT_CHECK_DB },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: cicada [OPTION]...\n"
		"MQTT 3.1.1 and 5.0 broker.\n"
		"\n"
		"  -c, --config FILE  read the configuration from FILE\n"
		"                     (mosquitto.conf format; default: built-in defaults)\n"
		"      --test-config  check the configuration, then exit\n"
		"      --check-db FILE  verify a persistence database, then exit\n"
		"  -v, --verbose      log more; repeat for more detail\n"
		"      --version      print the version and supported protocols, then exit\n"
		"  -h, --help         print this help, then exit\n"
		"\n"
		"Exit status: 0 success, 1 the broker cannot run, 2 bad usage.\n"
		"See cicada(8).\n");
}

static void version(void)
{
	printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
	printf("MQTT protocols: 3.1 (level %d), 3.1.1 (level %d), 5.0 (level %d)\n",
	       MQTT_V31, MQTT_V311, MQTT_V5);
	printf("libev %d.%d\n", ev_version_major(), ev_version_minor());
}

/*
 * getopt_long() found an option it does not accept.  For a long option the
 * argument is the one it just passed; for a short one (maybe inside a group
 * such as -vx) only optopt names it.
 */
static void bad_option(const char *arg, int opt)
{
	const char *eq;

	if (strncmp(arg, "--", 2) != 0) {
		fprintf(stderr, "cicada: unknown option '-%c'\n", opt);
		return;
	}
	eq = strchr(arg, '=');
	if (eq && opt)
		fprintf(stderr, "cicada: option '%.*s' takes no argument\n",
			(int)(eq - arg), arg);
	else
		fprintf(stderr, "cicada: unknown option '%s'\n", arg);
}

/* Returns -1 to go on and run, otherwise the exit status. */
static int parse_args(int argc, char **argv, struct options *opt)
{
	int c;

	opterr = 0; /* we print our own messages */
	while ((c = getopt_long(argc, argv, ":c:vh", long_options, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt->config_file = optarg;
			break;
		case OPT_TEST_CONFIG:
			opt->test_config = true;
			break;
		case OPT_CHECK_DB:
			opt->check_db = optarg;
			break;
		case 'v':
			opt->verbose++;
			break;
		case OPT_VERSION:
			version();
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ':':
			fprintf(stderr, "cicada: option '%s' needs an argument\n",
				argv[optind - 1]);
			goto bad_usage;
		case '?':
		default:
			bad_option(argv[optind - 1], optopt);
			goto bad_usage;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cicada: unexpected argument '%s'\n", argv[optind]);
		goto bad_usage;
	}
	if (opt->check_db)
		return persist_check_db(opt->check_db);
	return -1;

bad_usage:
	fprintf(stderr, "Try 'cicada --help' for more information.\n");
	return EXIT_USAGE;
}

/* The broker's own copy: cfg's strings go with cfg. */
static void apply_response_information(struct broker *b,
				       const struct config *cfg)
{
	const char *ri = cfg->response_information;

	free(b->response_information);
	b->response_information = ri && *ri ? strdup(ri) : NULL;
	if (ri && *ri && !b->response_information)
		log_at(LOGL_ERROR, "out of memory: response_information not set");
}

/* Values of the configuration the running broker consults. */
static void apply_limits(struct broker_limits *lim, const struct config *cfg)
{
	lim->retain_available = cfg->retain_available;
	lim->max_qos = (uint8_t)cfg->max_qos;
	lim->queue_qos0_messages = cfg->queue_qos0_messages;
	lim->max_connections = cfg->max_connections;
	lim->max_packet_size = cfg->max_packet_size;
	lim->max_inflight_messages = cfg->max_inflight_messages;
	lim->max_queued_messages = cfg->max_queued_messages;
	lim->max_queued_bytes = cfg->max_queued_bytes;
	lim->max_keepalive = cfg->max_keepalive;
	lim->connect_timeout = cfg->connect_timeout;
	lim->sys_interval = cfg->sys_interval;
	lim->topic_alias_maximum = 10;
	lim->max_client_id_length = cfg->max_client_id_length;
	lim->max_topic_length = cfg->max_topic_length;
	lim->max_topic_levels = cfg->max_topic_levels;
}

static int apply_logging(const struct config *cfg, int verbose)
{
	unsigned levels = cfg->log_type;
	int rc;

	if (verbose)
		levels |= LOGL_INFO | (verbose > 1 ? LOGL_DEBUG : 0);
	/* config_log_type and config_log_dest share log.h's bit values. */
	rc = log_configure(cfg->log_dest, cfg->log_file, levels,
			   cfg->log_timestamp);
	if (rc < 0) {
		log_at(LOGL_ERROR, "cannot open log file %s: %s", cfg->log_file,
		       strerror(-rc));
		return -1;
	}
	return 0;
}

/* Load -c FILE (if any) over the defaults; errors name file and line. */
static int load_config(const struct options *opt, struct config *cfg)
{
	char err[512];

	config_init(cfg);
	if (opt->config_file &&
	    config_load(cfg, opt->config_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "cicada: %s\n", err);
		config_free(cfg);
		return -1;
	}
	if (config_finish(cfg) < 0) {
		fprintf(stderr, "cicada: out of memory\n");
		config_free(cfg);
		return -1;
	}
	return 0;
}

/*
 * The pid file for init scripts, as mosquitto writes it.  Written before
 * the listeners open, removed at exit and when they fail to open.
 */
static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		log_at(LOGL_ERROR, "cannot write pid_file %s: %s", path,
		       strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return 0;
}

struct runtime {
	struct broker broker;
	struct listener *listeners;
	const struct options *opt;
	ev_signal sigint, sigterm, sighup;
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct runtime *rt = w->signum == SIGINT ?
		container_of(w, struct runtime, sigint) :
		container_of(w, struct runtime, sigterm);

	(void)loop;
	(void)revents;
	log_at(LOGL_NOTICE, "%s received, shutting down",
	       w->signum == SIGINT ? "SIGINT" : "SIGTERM");
	/* Each shard closes its connections and leaves its loop. */
	shard_stop_all(&rt->broker);
}

static void reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct runtime *rt = container_of(w, struct runtime, sighup);
	struct config cfg;

	(void)loop;
	(void)revents;
	log_at(LOGL_NOTICE, "SIGHUP received, reloading %s",
	       rt->opt->config_file ? rt->opt->config_file : "(defaults)");
	if (load_config(rt->opt, &cfg) < 0) {
		log_at(LOGL_ERROR, "reload failed; keeping the running configuration");
		return;
	}
	/* What the shards share changes while they wait. */
	shard_pause_all(&rt->broker);
	apply_limits(&rt->broker.limits, &cfg);
	apply_response_information(&rt->broker, &cfg);
	apply_logging(&cfg, 0);
	listener_reload_passwd(rt->listeners);
	redirect_reload(&rt->broker, rt->listeners, &cfg);
	shard_resume_all(&rt->broker);
	log_at(LOGL_NOTICE, "configuration reloaded (listeners keep their sockets)");
	config_free(&cfg);
}

/* shards 0: one per online CPU, within what the config allows. */
static unsigned shards_wanted(const struct config *cfg)
{
	long n = cfg->shards ? (long)cfg->shards : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > SHARE_MAX_SHARDS)
		n = SHARE_MAX_SHARDS;
	return (unsigned)n;
}

/*
 * The shared parts and every shard; shard 0 runs on the default loop,
 * which has the signal watchers.  -1 after logging.
 */
static int broker_init(struct broker *b, const struct config *cfg)
{
	unsigned n = shards_wanted(cfg);

	pthread_rwlock_init(&b->retain_lock, NULL);
	pthread_mutex_init(&b->pause_lock, NULL);
	pthread_cond_init(&b->pause_cond, NULL);
	b->retain = retain_new();
	b->shares = share_registry_new(n);
	b->shards = calloc(n, sizeof(*b->shards));
	if (!b->retain || !b->shares || !b->shards)
		goto oom;
	b->shard_count = n;
	for (unsigned i = 0; i < n; i++) {
		struct ev_loop *loop = i == 0 ? ev_default_loop(EVFLAG_AUTO) :
						ev_loop_new(EVFLAG_AUTO);

		if (!loop || shard_init(&b->shards[i], b, i, loop) < 0) {
			if (loop && i > 0)
				ev_loop_destroy(loop);
			b->shard_count = i;
			goto oom;
		}
	}
	b->start_time = shard_now(&b->shards[0]);
	return 0;
oom:
	log_at(LOGL_ERROR, "out of memory at start-up");
	return -1;
}

/* After the shard threads are joined: sessions, shards, shared parts. */
static void broker_fini(struct broker *b)
{
	for (unsigned i = 0; i < b->shard_count; i++)
		session_destroy_all(&b->shards[i]);
	/* What is dropped from an inbox may wake another shard's loop. */
	for (unsigned i = 0; i < b->shard_count; i++)
		shard_fini(&b->shards[i]);
	for (unsigned i = 1; i < b->shard_count; i++)
		ev_loop_destroy(b->shards[i].loop);
	free(b->shards);
	b->shards = NULL;
	b->shard_count = 0;
	share_registry_free(b->shares);
	b->shares = NULL;
	retain_free(b->retain);
	b->retain = NULL;
}

int main(int argc, char **argv)
{
	static struct runtime rt;
	struct options opt = { 0 };
	struct ev_loop *loop;
	struct config cfg;
	char *pid_file = NULL;
	int rc;

	rc = parse_args(argc, argv, &opt);
	if (rc >= 0)
		return rc;
	if (load_config(&opt, &cfg) < 0)
		return EXIT_FAILURE;
	if (opt.test_config) {
		if (auth_test_config(&cfg) < 0) {
			config_free(&cfg);
			return EXIT_FAILURE;
		}
		printf("%s: configuration OK\n",
		       opt.config_file ? opt.config_file : "embedded defaults");
		config_free(&cfg);
		return EXIT_SUCCESS;
	}
	if (apply_logging(&cfg, opt.verbose) < 0)
		goto err_config;
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit, a write should fail, not kill the broker. */
	signal(SIGXFSZ, SIG_IGN);

	rt.opt = &opt;
	apply_limits(&rt.broker.limits, &cfg);
	apply_response_information(&rt.broker, &cfg);
	if (broker_init(&rt.broker, &cfg) < 0)
		goto err_broker;
	loop = rt.broker.shards[0].loop;
	log_at(LOGL_NOTICE, "cicada %s starting (%s), %u shard%s", PACKAGE_VERSION,
	       opt.config_file ? opt.config_file : "embedded defaults",
	       rt.broker.shard_count, rt.broker.shard_count == 1 ? "" : "s");
	if (cfg.default_listener)
		log_at(LOGL_WARNING,
		       "no listener configured: serving port 1883 on every address "
		       "to anonymous clients; configure listeners for production");
	if (persist_open(&rt.broker, &cfg) < 0)
		goto err_broker;
	if (!cfg.persistence)
		log_at(LOGL_NOTICE, "persistence false: sessions, queued and "
		       "retained messages are kept in memory only");
	/*
	 * Before the listeners: once clients can connect, a SIGTERM must
	 * find its handler, not kill the broker (it is run by ev_run()).
	 */
	ev_signal_init(&rt.sigint, stop_cb, SIGINT);
	ev_signal_init(&rt.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&rt.sighup, reload_cb, SIGHUP);
	ev_signal_start(loop, &rt.sigint);
	ev_signal_start(loop, &rt.sigterm);
	ev_signal_start(loop, &rt.sighup);
	/*
	 * The pid file before the listeners: the kernel accepts connections
	 * from listen() on, and whoever connects first (a service manager
	 * or a test) may look the broker up by its pid file.
	 */
	if (cfg.pid_file) {
		pid_file = strdup(cfg.pid_file);
		if (!pid_file || write_pid_file(pid_file) < 0)
			goto err_pid_file;
	}
	if (listener_open_all(&rt.broker, &cfg, &rt.listeners) < 0)
		goto err_listeners;
	for (unsigned i = 0; i < rt.broker.shard_count; i++)
		rt.broker.shards[i].listeners = rt.listeners;

	config_free(&cfg);

	if (shard_start_threads(&rt.broker) < 0) {
		shard_stop_all(&rt.broker);
		shard_join_threads(&rt.broker);
		rc = EXIT_FAILURE;
		goto stop;
	}
	/* The main thread is shard 0's from here to the last turn. */
	msg_cache_bind(rt.broker.shards[0].msgs);
	ev_run(loop, 0);
	rc = EXIT_SUCCESS;
stop:
	/* One more turn flushes the DISCONNECTs and frees closed connections. */
	ev_run(loop, EVRUN_NOWAIT);
	msg_cache_bind(NULL);
	shard_join_threads(&rt.broker);
	listener_close_all(rt.listeners);
	/* First: what stays stored must not be deleted as memory is freed. */
	persist_close(&rt.broker);
	broker_fini(&rt.broker);
	free(rt.broker.response_information);
	if (pid_file)
		unlink(pid_file);
	free(pid_file);
	log_at(LOGL_NOTICE, "cicada stopped");
	log_close();
	return rc;

err_listeners:
	if (pid_file)
		unlink(pid_file);
err_pid_file:
	free(pid_file);
	persist_close(&rt.broker);
err_broker:
	broker_fini(&rt.broker);
err_config:
	free(rt.broker.response_information);
	config_free(&cfg);
	return EXIT_FAILURE;
}
