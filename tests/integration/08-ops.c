/*
 * Integration tests: operating cicada.  The command line (--help,
 * --version, bad usage, --test-config), configuration errors naming file
 * and line, $SYS topics, SIGHUP reloads that change behaviour without
 * dropping connections, what the log says about clients, several
 * listeners, running out of file descriptors, and clean exits on SIGINT
 * and SIGTERM.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define WAIT_MS 3000

static struct broker_proc broker;
static char scratch[64]; /* CLI tests' directory for config files */

static void start_broker(const char *config)
{
	broker_start_checked(&broker, config);
}

static void setup(void)
{
	start_broker(NULL);
}

static void setup_sys(void)
{
	start_broker("sys_interval 1");
}

static void teardown(void)
{
	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
}

static void setup_scratch(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/cicada-ops-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void teardown_scratch(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text to scratch/name; the path goes to path. */
static void write_file(const char *name, const char *text, char *path,
		       size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", scratch, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* ------------------------------------------------------ command line */

START_TEST(ops_help)
{
	static const char *const args[] = { "--help", NULL };
	struct cicada_run r;

	harness_run_cicada(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "-c") && strstr(r.out, "--config"),
		      "--help does not mention -c/--config:\n%s", r.out);
	ck_assert_msg(strstr(r.out, "--test-config"),
		      "--help does not mention --test-config");
	ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(ops_version)
{
	static const char *const args[] = { "--version", NULL };
	struct cicada_run r;

	harness_run_cicada(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strncmp(r.out, "cicada ", 7) == 0,
		      "--version starts with '%.20s'", r.out);
	ck_assert_msg(strstr(r.out, "3.1.1") && strstr(r.out, "5.0"),
		      "--version does not name both protocols:\n%s", r.out);
	ck_assert_str_eq(r.err, "");
}
END_TEST

/* Bad usage: exit 2, a message naming the culprit, nothing on stdout. */
START_TEST(ops_bad_usage)
{
	static const char *const cases[][3] = {
		{ "--no-such-option", NULL, "--no-such-option" },
		{ "-x", NULL, "-x" },
		{ "-c", NULL, "-c" },
		{ "--version=3", NULL, "--version" },
		{ "surplus", NULL, "surplus" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cicada_run r;

		harness_run_cicada(&r, cases[i]);
		ck_assert_msg(r.status == 2, "cicada %s: exit %d, expected 2",
			      cases[i][0], r.status);
		ck_assert_msg(strstr(r.err, cases[i][2]) != NULL,
			      "cicada %s: stderr does not name it:\n%s",
			      cases[i][0], r.err);
		ck_assert_str_eq(r.out, "");
	}
}
END_TEST

START_TEST(ops_test_config_good)
{
	char path[128], conf[256];
	const char *args[] = { "--test-config", "-c", path, NULL };
	struct cicada_run r;
	int port = harness_free_port();

	snprintf(conf, sizeof(conf),
		 "# a comment\nlistener %d 127.0.0.1\nallow_anonymous true\n"
		 "persistence false\nmax_queued_messages 10\n"
		 "retain_available false\n", port);
	write_file("good.conf", conf, path, sizeof(path));
	harness_run_cicada(&r, args);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	/* It checked and left: nothing listens on the port. */
	broker.port = port;
	ck_assert_int_lt(raw_connect(&broker), 0);
	broker.port = 0;
}
END_TEST

/*
 * An option cicada does not know is an error naming file and line, with
 * --test-config and when starting; so is a value out of range.
 */
START_TEST(ops_config_errors_name_file_and_line)
{
	static const struct {
		const char *text, *what;
		int line;
	} cases[] = {
		{ "# comment\n\nlistener 1883 127.0.0.1\nno_such_option 1\n",
		  "no_such_option", 4 },
		{ "max_queued_messages -5\n", "max_queued_messages", 1 },
		{ "allow_anonymous true\nretain_available maybe\n",
		  "retain_available", 2 },
	};
	char path[128], where[160];
	const char *check[] = { "--test-config", "-c", path, NULL };
	const char *start[] = { "-c", path, NULL };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cicada_run r;

		write_file("bad.conf", cases[i].text, path, sizeof(path));
		snprintf(where, sizeof(where), "%s:%d:", path, cases[i].line);
		harness_run_cicada(&r, check);
		ck_assert_msg(r.status != 0 && r.status != -1,
			      "--test-config: exit %d", r.status);
		ck_assert_msg(strstr(r.err, where) &&
			      strstr(r.err, cases[i].what),
			      "stderr lacks '%s' / '%s':\n%s", where,
			      cases[i].what, r.err);
		harness_run_cicada(&r, start);
		ck_assert_msg(r.status != 0 && r.status != -1,
			      "start with a bad config: exit %d", r.status);
		ck_assert_msg(strstr(r.err, where) != NULL,
			      "stderr lacks '%s':\n%s", where, r.err);
	}
}
END_TEST

/* ----------------------------------------------------------- $SYS */

static MQTTClient client(const char *id, int version)
{
	MQTTClient c = pc_connect(&broker, id, version, true, 0, NULL);

	ck_assert_msg(c != NULL, "%s (MQTT %d) could not connect", id, version);
	return c;
}

/* Wait for a message on topic with exactly payload; others are skipped. */
static bool wait_for_value(MQTTClient c, const char *topic,
			   const char *payload, int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;

	while (harness_now_ms() < deadline) {
		MQTTClient_message *m;
		char *t;
		bool hit;

		if (pc_receive(c, (int)(deadline - harness_now_ms()), &t, &m) != 1)
			return false;
		hit = strcmp(t, topic) == 0 &&
		      m->payloadlen == (int)strlen(payload) &&
		      memcmp(m->payload, payload, strlen(payload)) == 0;
		pc_free(&t, &m);
		if (hit)
			return true;
	}
	return false;
}

/*
 * sys_interval 1: $SYS/broker/version is what --version says, and
 * $SYS/broker/clients/connected follows the connections.
 */
START_TEST(ops_sys_version_and_clients)
{
	static const char *const args[] = { "--version", NULL };
	int v = _i;
	MQTTClient sub = client("o-sys", v), other;
	char version[64];
	struct cicada_run r;

	harness_run_cicada(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strchr(r.out, '\n'));
	snprintf(version, sizeof(version), "%.*s",
		 (int)(strchr(r.out, '\n') - r.out), r.out);

	ck_assert_int_eq(pc_subscribe(sub, v, "$SYS/broker/version", 0, NULL),
			 0);
	ck_assert_msg(wait_for_value(sub, "$SYS/broker/version", version,
				     3500),
		      "$SYS/broker/version never said '%s'", version);
	ck_assert_int_eq(pc_subscribe(sub, v, "$SYS/broker/clients/connected",
				      0, NULL), 0);
	ck_assert(wait_for_value(sub, "$SYS/broker/clients/connected", "1",
				 3500));
	other = client("o-other", v);
	ck_assert(wait_for_value(sub, "$SYS/broker/clients/connected", "2",
				 3500));
	pc_close(&other);
	ck_assert(wait_for_value(sub, "$SYS/broker/clients/connected", "1",
				 3500));
	pc_close(&sub);
}
END_TEST

/* ------------------------------------------------------------ SIGHUP */

static void append_config(const char *line)
{
	FILE *f = fopen(broker.conf, "a");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", line);
	ck_assert_int_eq(fclose(f), 0);
}

/* SIGHUP and wait for the outcome line (n-th of its kind). */
static void reload(const char *outcome, int n)
{
	broker_signal(&broker, SIGHUP);
	ck_assert_msg(broker_wait_log_count(&broker, outcome, NULL, n, WAIT_MS),
		      "no '%s' in the log after SIGHUP", outcome);
}

static void raw_ping(int fd)
{
	uint8_t buf[16];

	ck_assert_int_eq(raw_send(fd, "\xc0\x00", 2), 0);
	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 2);
	ck_assert_int_eq(buf[0], 0xd0);
}

/*
 * retain_available true -> false by SIGHUP: a connection made before
 * stays up, a retained PUBLISH on it is now refused (5.0: DISCONNECT
 * 0x9A), a new 5.0 CONNACK says Retain Available 0.
 */
START_TEST(ops_sighup_reload_retain_available)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[256];
	int fd = raw_connect(&broker), fd2;

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, MQTT_V5, "o-old");
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack),
			 0);
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_RETAIN_AVAILABLE));

	append_config("retain_available false");
	reload("configuration reloaded", 1);
	raw_ping(fd); /* still connected */

	fd2 = raw_connect(&broker);
	ck_assert_int_ge(fd2, 0);
	raw_connect_init(&con, MQTT_V5, "o-new");
	ck_assert_int_eq(raw_mqtt_connect_ex(fd2, &con, buf, sizeof(buf), &ack),
			 0);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_RETAIN_AVAILABLE));
	ck_assert_int_eq(ack.props.retain_available, 0);
	close(fd2);

	pkt.u.publish.retain = true;
	pkt.u.publish.topic.data = (const uint8_t *)"o/r";
	pkt.u.publish.topic.len = 3;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_DISCONNECT);
	ck_assert_int_eq(pkt.u.disconnect.reason, MQTT_RC_RETAIN_NOT_SUPPORTED);
	close(fd);
}
END_TEST

/*
 * max_queued_messages lowered by SIGHUP applies to a session that is
 * already offline; the publisher's connection is not dropped by the
 * reload.
 */
START_TEST(ops_sighup_reload_max_queued_messages)
{
	int v = _i;
	struct mqtt_connect con;
	struct mqtt_packet pkt;
	MQTTClient pub = client("o-pub", v);
	uint8_t buf[256];
	int fd = raw_connect(&broker), got = 0;

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, (uint8_t)v, "o-sub");
	con.clean_start = false;
	if (v == 5) {
		con.props.session_expiry_interval = 60;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), NULL),
			 0);
	ck_assert_int_eq(raw_subscribe(fd, (uint8_t)v, 1, "mq/#", 1), 1);
	pkt.type = MQTT_DISCONNECT;
	memset(&pkt.u, 0, sizeof(pkt.u));
	ck_assert_int_eq(raw_send_packet(fd, &pkt, (uint8_t)v), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);

	append_config("max_queued_messages 2");
	reload("configuration reloaded", 1);
	ck_assert(MQTTClient_isConnected(pub));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pc_publish_str(pub, v, "mq/a", "m", 1, false),
				 0);

	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), NULL),
			 0);
	/* Only two come; nothing else is in flight (window 20). */
	while (raw_recv_decoded(fd, buf, sizeof(buf), 300, (uint8_t)v, &pkt) ==
	       MQTT_PUBLISH)
		got++;
	ck_assert_int_eq(got, 2);
	close(fd);
	pc_close(&pub);
}
END_TEST

/* A reload with a bad config keeps the running one and the broker. */
START_TEST(ops_sighup_bad_config_kept_running)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	struct mqtt_connect con;
	uint8_t buf[256];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, MQTT_V5, "o-old");
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), NULL),
			 0);
	append_config("retain_available false\nno_such_option 1");
	reload("reload failed", 1);
	ck_assert(broker_log_contains(&broker, "no_such_option"));
	raw_ping(fd);
	/* retain_available false was not applied: retained PUBLISH is fine. */
	pkt.u.publish.retain = true;
	pkt.u.publish.qos = 1;
	pkt.u.publish.packet_id = 7;
	pkt.u.publish.topic.data = (const uint8_t *)"o/r";
	pkt.u.publish.topic.len = 3;
	pkt.u.publish.payload.data = (const uint8_t *)"x";
	pkt.u.publish.payload.len = 1;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_PUBACK);
	ck_assert_int_eq(pkt.u.ack.packet_id, 7);
	ck_assert_int_lt(pkt.u.ack.reason, 0x80);
	close(fd);
}
END_TEST

/* --------------------------------------------------------------- log */

/* Connect and disconnect lines name the client id and the peer. */
START_TEST(ops_log_names_client_and_peer)
{
	uint8_t v = (uint8_t)_i;
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	char who[96], addr[64];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, v, "o-logged"), 0);
	raw_local_addr(fd, addr, sizeof(addr));
	snprintf(who, sizeof(who), "o-logged %s", addr);
	ck_assert_msg(broker_wait_log_count(&broker, who, "connected", 1,
					    WAIT_MS),
		      "no connect line with '%s'", who);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
	ck_assert_msg(broker_wait_log_count(&broker, who, "disconnected", 1,
					    WAIT_MS),
		      "no disconnect line with '%s'", who);
}
END_TEST

/* ------------------------------------------------- listeners, signals */

/* Two listeners: both accept, and messages cross between them. */
START_TEST(ops_two_listeners)
{
	int v = _i;
	struct broker_proc second;
	MQTTClient a, b;
	char extra[64], line[64];
	int port2 = harness_free_port();

	ck_assert_int_gt(port2, 0);
	snprintf(extra, sizeof(extra), "listener %d 127.0.0.1", port2);
	start_broker(extra);
	snprintf(line, sizeof(line), "127.0.0.1:%d", port2);
	ck_assert(broker_log_contains(&broker, line));

	second = broker;
	second.port = port2;
	snprintf(second.uri, sizeof(second.uri), "tcp://127.0.0.1:%d", port2);
	a = client("o-first", v);
	b = pc_connect(&second, "o-second", v, true, 0, NULL);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pc_subscribe(a, v, "l/#", 1, NULL), 1);
	ck_assert_int_eq(pc_subscribe(b, v, "l/#", 1, NULL), 1);
	ck_assert_int_eq(pc_publish_str(b, v, "l/from2", "two", 1, false), 0);
	ck_assert(wait_for_value(a, "l/from2", "two", WAIT_MS));
	ck_assert(wait_for_value(b, "l/from2", "two", WAIT_MS));
	ck_assert_int_eq(pc_publish_str(a, v, "l/from1", "one", 1, false), 0);
	ck_assert(wait_for_value(b, "l/from1", "one", WAIT_MS));
	pc_close(&a);
	pc_close(&b);
	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
}
END_TEST

/* SIGINT stops the broker cleanly: exit 0. */
START_TEST(ops_sigint_clean_exit)
{
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, MQTT_V311, "o-int"), 0);
	broker_signal(&broker, SIGINT);
	ck_assert(broker_wait_log(&broker, "cicada stopped", WAIT_MS));
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
}
END_TEST

/* SIGTERM: a 5.0 client is told 0x8B Server shutting down, exit 0. */
START_TEST(ops_sigterm_tells_v5_clients)
{
	struct mqtt_packet pkt;
	uint8_t buf[64];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, MQTT_V5, "o-term"), 0);
	broker_signal(&broker, SIGTERM);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_DISCONNECT);
	ck_assert_int_eq(pkt.u.disconnect.reason, MQTT_RC_SERVER_SHUTTING_DOWN);
	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 0);
	close(fd);
}
END_TEST

/*
 * Out of file descriptors: the accept loop pauses and says so once instead
 * of spinning or dying, connected clients are still served, and accepting
 * resumes once descriptors are free again.
 */
START_TEST(ops_emfile_survived)
{
	struct rlimit lim = { 40, 40 };
	uint8_t buf[64];
	int fds[60], client, fd;
	ssize_t n;

	client = raw_connect(&broker);
	ck_assert_int_ge(client, 0);
	ck_assert_int_eq(raw_mqtt_connect(client, 4, "emfile-client"), 0);
	ck_assert_int_eq(prlimit(broker.pid, RLIMIT_NOFILE, &lim, NULL), 0);

	for (size_t i = 0; i < 60; i++) {
		fds[i] = raw_connect(&broker); /* the kernel's backlog takes them */
		ck_assert_int_ge(fds[i], 0);
	}
	ck_assert(broker_wait_log(&broker, "pausing accepts", WAIT_MS));
	ck_assert_int_eq(broker_log_count(&broker, "pausing accepts", NULL), 1);

	/* The connected client is still served. */
	ck_assert_int_eq(raw_send(client, "\xc0\x00", 2), 0);
	n = raw_recv_packet(client, buf, sizeof(buf), WAIT_MS);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(buf[0], 0xd0);

	for (size_t i = 0; i < 60; i++)
		close(fds[i]);
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, 4, "after-emfile"), 0);
	close(fd);
	close(client);
}
END_TEST

/* pid_file holds the broker's pid while it runs and is gone after. */
START_TEST(ops_pid_file)
{
	char path[160], line[32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cicada.pid", scratch);
	{
		char conf[200];

		snprintf(conf, sizeof(conf), "pid_file %s", path);
		start_broker(conf);
	}
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_int_eq(atol(line), broker.pid);
	ck_assert_int_eq(broker_stop(&broker), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	broker_remove_files(&broker);
}
END_TEST

/*
 * A broker that cannot open its listener does not start and leaves no pid
 * file behind (it is written before the listeners open, so that it exists
 * once a client can connect).
 */
START_TEST(ops_pid_file_gone_when_listener_fails)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char path[128], pid_path[160], conf[256], where[32];
	const char *args[] = { "-c", path, NULL };
	struct cicada_run r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port held without SO_REUSEPORT: cicada's bind must fail. */
	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(pid_path, sizeof(pid_path), "%s/cicada.pid", scratch);
	snprintf(conf, sizeof(conf),
		 "listener %u 127.0.0.1\nallow_anonymous true\n"
		 "persistence false\npid_file %s\n",
		 ntohs(sa.sin_port), pid_path);
	write_file("busy.conf", conf, path, sizeof(path));
	harness_run_cicada(&r, args);
	close(fd);
	ck_assert_msg(r.status != 0 && r.status != -1, "exit %d: %s",
		      r.status, r.err);
	snprintf(where, sizeof(where), "127.0.0.1:%u", ntohs(sa.sin_port));
	ck_assert_msg(strstr(r.err, where) != NULL,
		      "stderr does not name %s:\n%s", where, r.err);
	ck_assert_int_ne(access(pid_path, F_OK), 0);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("08-ops");
	TCase *cli = tcase_create("cli");
	TCase *sys = tcase_create("sys");
	TCase *run = tcase_create("running");
	TCase *own = tcase_create("own-broker");

	tcase_add_checked_fixture(cli, setup_scratch, teardown_scratch);
	tcase_set_timeout(cli, 30);
	tcase_add_test(cli, ops_help);
	tcase_add_test(cli, ops_version);
	tcase_add_test(cli, ops_bad_usage);
	tcase_add_test(cli, ops_test_config_good);
	tcase_add_test(cli, ops_config_errors_name_file_and_line);
	tcase_add_test(cli, ops_pid_file);
	tcase_add_test(cli, ops_pid_file_gone_when_listener_fails);
	suite_add_tcase(s, cli);

	tcase_add_checked_fixture(sys, setup_sys, teardown);
	tcase_set_timeout(sys, 15);
	tcase_add_loop_test(sys, ops_sys_version_and_clients, 4, 6);
	suite_add_tcase(s, sys);

	tcase_add_checked_fixture(run, setup, teardown);
	tcase_set_timeout(run, 15);
	tcase_add_test(run, ops_sighup_reload_retain_available);
	tcase_add_loop_test(run, ops_sighup_reload_max_queued_messages, 4, 6);
	tcase_add_test(run, ops_sighup_bad_config_kept_running);
	tcase_add_loop_test(run, ops_log_names_client_and_peer, 4, 6);
	tcase_add_test(run, ops_sigint_clean_exit);
	tcase_add_test(run, ops_sigterm_tells_v5_clients);
	tcase_add_test(run, ops_emfile_survived);
	suite_add_tcase(s, run);

	tcase_set_timeout(own, 15);
	tcase_add_loop_test(own, ops_two_listeners, 4, 6);
	suite_add_tcase(s, own);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ops_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
