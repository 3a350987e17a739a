/*
 * Integration: CONNECT and the life of a connection, against a real
 * cicada.  CONNACK codes and Session Present, client identifier rules,
 * protocol name and level, malformed and misplaced CONNECTs, session
 * take-over, keep alive and connect timeout, anonymous access refused,
 * the packet size limit, the CONNACK properties of MQTT 5, and the
 * DISCONNECT a shutting-down broker sends.  Well-formed clients are Paho;
 * raw sockets send what Paho cannot and read the exact bytes that come
 * back.  Each test gets a fresh broker (checked fixture).
 */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

/* Loop tests run index 0 as MQTT 3.1.1 and index 1 as MQTT 5.0. */
#define VERSION(i) ((uint8_t)((i) == 0 ? MQTT_V311 : MQTT_V5))
#define WAIT_MS 3000

static struct broker_proc broker;

static void start_broker(const char *extra)
{
	broker_start_checked(&broker, extra);
}

static void setup_default(void)
{
	start_broker(NULL);
}

static void setup_limits(void)
{
	start_broker("max_keepalive 10\nmax_packet_size 1000\n"
		     "connect_timeout 1");
}

static void setup_no_anonymous(void)
{
	start_broker("allow_anonymous false");
}

/* Tests that stop the broker themselves leave pid 0. */
static void teardown(void)
{
	if (broker.pid > 0)
		ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker); /* kept when a test fails */
}

/* ------------------------------------------------------------ raw I/O */

static int raw_open(void)
{
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* A raw client connected (clean, keep alive 60) with the level given. */
static int raw_open_connected(uint8_t version, const char *client_id)
{
	int fd = raw_open();

	ck_assert_int_eq(raw_mqtt_connect(fd, version, client_id), 0);
	return fd;
}

static void expect_bytes(int fd, const uint8_t *want, size_t len)
{
	raw_expect_bytes(fd, want, len, WAIT_MS);
}

static void expect_closed(int fd)
{
	raw_expect_closed(fd, WAIT_MS);
}

/*
 * A connection the broker ends: MQTT 5 gets DISCONNECT with the reason
 * (and nothing else; a Reason String may say why), 3.1.1 just sees the
 * close [MQTT-3.14.0-1 (5.0)].
 */
static void expect_disconnect(int fd, uint8_t version, uint8_t reason)
{
	if (version == MQTT_V5) {
		struct mqtt_packet pkt;
		uint8_t buf[512];

		ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
						  MQTT_V5, &pkt),
				 MQTT_DISCONNECT);
		ck_assert_uint_eq(pkt.u.disconnect.reason, reason);
		ck_assert(!mqtt_props_has(&pkt.u.disconnect.props,
					  MQTT_PROP_SESSION_EXPIRY_INTERVAL));
	}
	expect_closed(fd);
}

/* A 5.0 CONNACK refusal: the reason, Session Present 0 [MQTT-3.2.2-6]. */
static void expect_connack_refused(int fd, uint8_t reason)
{
	struct mqtt_packet pkt;
	uint8_t buf[512];

	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_CONNACK);
	ck_assert_uint_eq(pkt.u.connack.reason, reason);
	ck_assert(!pkt.u.connack.session_present);
}

/* A CONNECT as raw bytes: protocol name, level, flags, keep alive, id. */
static size_t build_connect(uint8_t *out, const char *name, uint8_t level,
			    uint8_t flags, uint16_t keep_alive,
			    const char *client_id)
{
	size_t name_len = strlen(name), id_len = strlen(client_id), n = 0;
	size_t rl = 2 + name_len + 1 + 1 + 2 + (level == MQTT_V5 ? 1 : 0) +
		    2 + id_len;

	ck_assert_uint_lt(rl, 128);
	out[n++] = 0x10;
	out[n++] = (uint8_t)rl;
	out[n++] = 0;
	out[n++] = (uint8_t)name_len;
	memcpy(out + n, name, name_len);
	n += name_len;
	out[n++] = level;
	out[n++] = flags;
	out[n++] = (uint8_t)(keep_alive >> 8);
	out[n++] = (uint8_t)keep_alive;
	if (level == MQTT_V5)
		out[n++] = 0; /* no properties */
	out[n++] = (uint8_t)(id_len >> 8);
	out[n++] = (uint8_t)id_len;
	memcpy(out + n, client_id, id_len);
	return n + id_len;
}

static void send_connect(int fd, const char *name, uint8_t level,
			 uint8_t flags, uint16_t keep_alive,
			 const char *client_id)
{
	uint8_t pkt[160];
	size_t n = build_connect(pkt, name, level, flags, keep_alive,
				 client_id);

	ck_assert_int_eq(raw_send(fd, pkt, n), 0);
}

/* CONNECT through the codec; returns the CONNACK code, *ack its fields. */
static int raw_connect_full(int fd, uint8_t version, const char *client_id,
			    uint16_t keep_alive, uint8_t *buf, size_t cap,
			    struct mqtt_connack *ack)
{
	struct mqtt_connect c;

	raw_connect_init(&c, version, client_id);
	c.keep_alive = keep_alive;
	return raw_mqtt_connect_ex(fd, &c, buf, cap, ack);
}

/*
 * Read from several sockets at once until each is closed or timeout_ms
 * passes, keeping the bytes each received and when it was closed (ms
 * after start; -1 if still open).
 */
struct sink {
	int fd;
	uint8_t buf[512];
	size_t len;
	long closed_after;
};

/* What a 5.0 sink got is exactly one DISCONNECT with this reason. */
static void expect_sink_disconnect(const struct sink *s, uint8_t reason)
{
	struct mqtt_packet pkt;
	size_t plen = 0;

	ck_assert_int_eq(mqtt_frame_peek(s->buf, s->len, 0, &plen), 0);
	ck_assert_uint_eq(plen, s->len);
	ck_assert_int_eq(mqtt_decode(s->buf, s->len, MQTT_V5, &pkt), 0);
	ck_assert_uint_eq(pkt.type, MQTT_DISCONNECT);
	ck_assert_uint_eq(pkt.u.disconnect.reason, reason);
}

static void collect_until_closed(struct sink *s, int n, long start,
				 int timeout_ms)
{
	long deadline = start + timeout_ms;
	int open = n;

	for (int i = 0; i < n; i++) {
		s[i].len = 0;
		s[i].closed_after = -1;
	}
	while (open > 0 && harness_now_ms() < deadline) {
		struct pollfd pfd[8];

		ck_assert_int_le(n, 8);
		for (int i = 0; i < n; i++) {
			pfd[i].fd = s[i].closed_after < 0 ? s[i].fd : -1;
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, (int)(deadline - harness_now_ms())) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			uint8_t tmp[512];
			ssize_t got;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN |
								  POLLHUP |
								  POLLERR)))
				continue;
			got = recv(s[i].fd, tmp, sizeof(tmp), 0);
			if (got > 0) {
				ck_assert_uint_le(s[i].len + (size_t)got,
						  sizeof(s[i].buf));
				memcpy(s[i].buf + s[i].len, tmp, (size_t)got);
				s[i].len += (size_t)got;
				continue;
			}
			s[i].closed_after = harness_now_ms() - start;
			open--;
		}
	}
}

/* ------------------------------------------------------------ Paho */

/* A Paho connection attempt and what CONNACK said. */
struct pconn {
	MQTTClient c;
	int rc; /* CONNACK return code / reason code, or a Paho error */
	bool present;
	MQTTProperties props; /* 5.0 CONNACK properties */
};

static void pconnect(struct pconn *p, int version, const char *client_id,
		     bool clean, uint32_t session_expiry, int keep_alive)
{
	MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
	MQTTClient_connectOptions v3 = MQTTClient_connectOptions_initializer;
	MQTTClient_connectOptions v5 = MQTTClient_connectOptions_initializer5;
	MQTTClient_connectOptions *opts = version == MQTT_V5 ? &v5 : &v3;
	MQTTProperties cprops = MQTTProperties_initializer;

	memset(p, 0, sizeof(*p));
	co.MQTTVersion = version;
	ck_assert_int_eq(MQTTClient_createWithOptions(&p->c, broker.uri,
						      client_id,
						      MQTTCLIENT_PERSISTENCE_NONE,
						      NULL, &co),
			 MQTTCLIENT_SUCCESS);
	opts->MQTTVersion = version;
	opts->keepAliveInterval = keep_alive;
	opts->connectTimeout = 5;
	if (version == MQTT_V5) {
		MQTTResponse r;

		opts->cleanstart = clean;
		if (session_expiry) {
			MQTTProperty prop = {
				.identifier =
				MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
			};

			prop.value.integer4 = session_expiry;
			MQTTProperties_add(&cprops, &prop);
		}
		r = MQTTClient_connect5(p->c, opts, &cprops, NULL);
		p->rc = (int)r.reasonCode;
		if (r.properties)
			p->props = MQTTProperties_copy(r.properties);
		MQTTResponse_free(r);
		MQTTProperties_free(&cprops);
	} else {
		opts->cleansession = clean;
		p->rc = MQTTClient_connect(p->c, opts);
	}
	p->present = opts->returned.sessionPresent != 0;
}

static void pconn_close(struct pconn *p)
{
	if (!p->c)
		return;
	if (MQTTClient_isConnected(p->c))
		MQTTClient_disconnect(p->c, 1000);
	MQTTClient_destroy(&p->c);
	MQTTProperties_free(&p->props);
}

/* Raw CONNECT with Clean Start and (5.0) Session Expiry; Session Present. */
static bool raw_session_connect(int fd, uint8_t version, const char *id,
				bool clean, uint32_t expiry)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];

	raw_connect_init(&c, version, id);
	c.clean_start = clean;
	if (expiry) {
		c.props.session_expiry_interval = expiry;
		mqtt_props_set(&c.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 0);
	return ack.session_present;
}

/* Normal DISCONNECT; the broker closes. */
static void raw_disconnect(int fd)
{
	const uint8_t disconnect[] = { 0xE0, 0x00 };

	ck_assert_int_eq(raw_send(fd, disconnect, sizeof(disconnect)), 0);
	expect_closed(fd);
	close(fd);
}

/* ------------------------------------------------------------ tests */

/*
 * Session Present [MQTT-3.2.2-2, -3]: 0 for a new session, 1 when a kept
 * session is resumed, 0 again after a clean start discards it.  Raw, to
 * read the flag itself (Paho reports it for 3.1.1 only, checked too).
 */
START_TEST(test_session_present)
{
	uint8_t v = VERSION(_i);
	uint32_t expiry = v == MQTT_V5 ? 300 : 0;
	struct pconn p;
	int fd;

	fd = raw_open();
	ck_assert(!raw_session_connect(fd, v, "present", false, expiry));
	raw_disconnect(fd);
	fd = raw_open();
	ck_assert(raw_session_connect(fd, v, "present", false, expiry));
	raw_disconnect(fd);
	fd = raw_open();
	/* a clean session that ends with the connection: 3.1.1 Clean
	 * Session 1 [MQTT-3.1.2-6], 5.0 Session Expiry absent (0) */
	ck_assert(!raw_session_connect(fd, v, "present", true, 0));
	raw_disconnect(fd);
	fd = raw_open();
	ck_assert(!raw_session_connect(fd, v, "present", false, 0));
	raw_disconnect(fd);
	if (v == MQTT_V5)
		return;

	pconnect(&p, v, "paho-present", false, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert(!p.present);
	pconn_close(&p);
	pconnect(&p, v, "paho-present", false, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert(p.present);
	pconn_close(&p);
	pconnect(&p, v, "paho-present", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert(!p.present);
	pconn_close(&p);
}
END_TEST

/* 3.1.1: an empty client id with Clean Session 1 is accepted [MQTT-3.1.3-6]. */
START_TEST(test_empty_id_v311_clean)
{
	const uint8_t accepted[] = { 0x20, 0x02, 0x00, 0x00 };
	const uint8_t pingresp[] = { 0xD0, 0x00 };
	const uint8_t pingreq[] = { 0xC0, 0x00 };
	int fd = raw_open();

	send_connect(fd, "MQTT", MQTT_V311, 0x02, 60, "");
	expect_bytes(fd, accepted, sizeof(accepted));
	/* and the connection is usable */
	ck_assert_int_eq(raw_send(fd, pingreq, sizeof(pingreq)), 0);
	expect_bytes(fd, pingresp, sizeof(pingresp));
	close(fd);
}
END_TEST

/*
 * 3.1.1: an empty client id with Clean Session 0 is refused with return
 * code 0x02 and closed [MQTT-3.1.3-8]; Paho sees return code 2.
 */
START_TEST(test_empty_id_v311_not_clean)
{
	const uint8_t refused[] = { 0x20, 0x02, 0x00, 0x02 };
	struct pconn p;
	int fd = raw_open();

	send_connect(fd, "MQTT", MQTT_V311, 0x00, 60, "");
	expect_bytes(fd, refused, sizeof(refused));
	expect_closed(fd);
	close(fd);

	pconnect(&p, MQTT_V311, "", false, 0, 60);
	ck_assert_int_eq(p.rc, 2);
	pconn_close(&p);
}
END_TEST

/*
 * 5.0: an empty client id is accepted, even without Clean Start, and the
 * CONNACK carries the Assigned Client Identifier [MQTT-3.2.2-16]; two
 * clients get two different ones.
 */
START_TEST(test_empty_id_v5_assigned)
{
	struct pconn a, b;
	MQTTProperty *ida, *idb;

	pconnect(&a, MQTT_V5, "", false, 0, 60);
	ck_assert_int_eq(a.rc, 0);
	ida = MQTTProperties_getProperty(&a.props,
		MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER);
	ck_assert_ptr_nonnull(ida);
	ck_assert_int_gt(ida->value.data.len, 0);

	pconnect(&b, MQTT_V5, "", true, 0, 60);
	ck_assert_int_eq(b.rc, 0);
	idb = MQTTProperties_getProperty(&b.props,
		MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER);
	ck_assert_ptr_nonnull(idb);
	ck_assert(ida->value.data.len != idb->value.data.len ||
		  memcmp(ida->value.data.data, idb->value.data.data,
			 (size_t)ida->value.data.len) != 0);
	/* both connections stay up: neither took the other over */
	ck_assert(MQTTClient_isConnected(a.c));
	ck_assert(MQTTClient_isConnected(b.c));
	pconn_close(&a);
	pconn_close(&b);
}
END_TEST

/*
 * An assigned id is never one a session has: with "cicada-...01" taken
 * by a client that chose it (or by a session a restart restored), the
 * next client without an id gets another one and takes nothing over.
 */
START_TEST(test_assigned_id_skips_taken)
{
	struct pconn taken, p;
	MQTTProperty *id;

	pconnect(&taken, MQTT_V5, "cicada-0000000000000001", true, 0, 60);
	ck_assert_int_eq(taken.rc, 0);
	pconnect(&p, MQTT_V5, "", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	id = MQTTProperties_getProperty(&p.props,
		MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER);
	ck_assert_ptr_nonnull(id);
	ck_assert_int_eq(id->value.data.len, 23);
	ck_assert(memcmp(id->value.data.data, "cicada-0000000000000001",
			 23) != 0);
	ck_assert(MQTTClient_isConnected(taken.c));
	pconn_close(&p);
	pconn_close(&taken);
}
END_TEST

/*
 * A client id given by the client gets no Assigned Client Identifier
 * [MQTT-3.2.2-16 only applies to a zero-length id].
 */
START_TEST(test_given_id_not_assigned)
{
	struct pconn p;

	pconnect(&p, MQTT_V5, "named", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert(!MQTTProperties_hasProperty(&p.props,
		MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER));
	pconn_close(&p);
}
END_TEST

/* MQTT 3.1 (MQIsdp) allows client ids of 1 to 23 bytes: 24 is refused (2). */
START_TEST(test_v31_client_id_length)
{
	struct pconn p;

	pconnect(&p, MQTTVERSION_3_1, "abcdefghijklmnopqrstuvwx", true, 0, 60);
	ck_assert_int_eq(p.rc, 2);
	pconn_close(&p);

	pconnect(&p, MQTTVERSION_3_1, "abcdefghijklmnopqrstuvw", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert(MQTTClient_isConnected(p.c));
	pconn_close(&p);
}
END_TEST

/*
 * An unsupported protocol level: CONNACK 0x01 in the 3.1.1 layout, then
 * close [MQTT-3.1.2-2 (3.1.1)]; a client that claims level 5 gets the 5.0
 * layout with 0x84 Unsupported Protocol Version (5.0 section 3.1.2.2).
 */
START_TEST(test_unsupported_protocol_level)
{
	static const struct {
		const char *name;
		uint8_t level;
	} v3_cases[] = {
		{ "MQTT", 6 },
		{ "MQTT", 3 },
		{ "MQIsdp", 4 },
		{ "MQTT", 0 },
	};
	const uint8_t refused_v3[] = { 0x20, 0x02, 0x00, 0x01 };
	const uint8_t refused_v5[] = { 0x20, 0x03, 0x00, 0x84, 0x00 };
	int fd;

	for (size_t i = 0; i < sizeof(v3_cases) / sizeof(v3_cases[0]); i++) {
		fd = raw_open();
		send_connect(fd, v3_cases[i].name, v3_cases[i].level, 0x02,
			     60, "level");
		expect_bytes(fd, refused_v3, sizeof(refused_v3));
		expect_closed(fd);
		close(fd);
	}
	fd = raw_open();
	send_connect(fd, "MQIsdp", MQTT_V5, 0x02, 60, "level");
	expect_bytes(fd, refused_v5, sizeof(refused_v5));
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * Bridges (mosquitto's convention) set the top bit of the level: 0x83 and
 * 0x84 are accepted as 3.1 and 3.1.1.
 */
START_TEST(test_bridge_level_accepted)
{
	const uint8_t accepted[] = { 0x20, 0x02, 0x00, 0x00 };
	int fd;

	fd = raw_open();
	send_connect(fd, "MQTT", 0x84, 0x02, 60, "bridge-311");
	expect_bytes(fd, accepted, sizeof(accepted));
	close(fd);
	fd = raw_open();
	send_connect(fd, "MQIsdp", 0x83, 0x02, 60, "bridge-31");
	expect_bytes(fd, accepted, sizeof(accepted));
	close(fd);
}
END_TEST

/* Not "MQTT" / "MQIsdp": closed without a CONNACK [MQTT-3.1.2-1]. */
START_TEST(test_wrong_protocol_name)
{
	static const char *names[] = { "MQTX", "mqtt", "MQT", "HTTP/1.1" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int fd = raw_open();

		send_connect(fd, names[i], MQTT_V311, 0x02, 60, "name");
		expect_closed(fd);
		close(fd);
	}
}
END_TEST

/* The first packet must be CONNECT [MQTT-3.1.0-1]: else closed, no reply. */
START_TEST(test_first_packet_not_connect)
{
	const uint8_t pingreq[] = { 0xC0, 0x00 };
	const uint8_t publish[] = { 0x30, 0x05, 0x00, 0x01, 'a', 'h', 'i' };
	const uint8_t subscribe[] = { 0x82, 0x06, 0x00, 0x01, 0x00, 0x01,
				      'a', 0x00 };
	const struct {
		const uint8_t *bytes;
		size_t len;
	} cases[] = {
		{ pingreq, sizeof(pingreq) },
		{ publish, sizeof(publish) },
		{ subscribe, sizeof(subscribe) },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = raw_open();

		ck_assert_int_eq(raw_send(fd, cases[i].bytes, cases[i].len), 0);
		expect_closed(fd);
		close(fd);
	}
	ck_assert(broker_log_contains(&broker, "first packet is not CONNECT"));
}
END_TEST

/*
 * A second CONNECT is a Protocol Error [MQTT-3.1.0-2]: 3.1.1 closes,
 * 5.0 sends DISCONNECT 0x82 first.
 */
START_TEST(test_second_connect)
{
	uint8_t v = VERSION(_i);
	int fd = raw_open_connected(v, "twice");

	send_connect(fd, "MQTT", v, 0x02, 60, "twice");
	expect_disconnect(fd, v, MQTT_RC_PROTOCOL_ERROR);
	close(fd);
}
END_TEST

/*
 * The reserved CONNECT flag must be 0 [MQTT-3.1.2-3]: 3.1.1 closes without
 * CONNACK; 5.0 treats it as a Malformed Packet and may answer with CONNACK
 * 0x81 before closing (5.0 section 4.13.1), Session Present 0
 * [MQTT-3.2.2-6].
 */
START_TEST(test_reserved_connect_flag)
{
	uint8_t v = VERSION(_i);
	const uint8_t malformed_v5[] = { 0x20, 0x03, 0x00, 0x81, 0x00 };
	int fd = raw_open();

	send_connect(fd, "MQTT", v, 0x03, 60, "reserved");
	if (v == MQTT_V5)
		expect_bytes(fd, malformed_v5, sizeof(malformed_v5));
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * Will QoS or Will Retain without the Will Flag [MQTT-3.1.2-11, -13 in
 * 3.1.1; malformed in 5.0], password without user name in 3.1.1
 * [MQTT-3.1.2-22]: refused like the reserved flag.
 */
START_TEST(test_bad_connect_flags)
{
	uint8_t v = VERSION(_i);
	const uint8_t malformed_v5[] = { 0x20, 0x03, 0x00, 0x81, 0x00 };
	const uint8_t flags[] = { 0x0A, 0x22, 0x1A };

	for (size_t i = 0; i < sizeof(flags); i++) {
		int fd = raw_open();

		send_connect(fd, "MQTT", v, flags[i], 60, "flags");
		if (v == MQTT_V5)
			expect_bytes(fd, malformed_v5, sizeof(malformed_v5));
		expect_closed(fd);
		close(fd);
	}
	if (v == MQTT_V311) {
		int fd = raw_open();

		send_connect(fd, "MQTT", v, 0x42, 60, "flags");
		expect_closed(fd);
		close(fd);
	}
}
END_TEST

/* A 5.0 CONNECT carrying props: the CONNACK refusal, then the close. */
static void check_connect_props_refused(const struct mqtt_props *props,
					uint8_t reason)
{
	const uint8_t want[] = { 0x20, 0x03, 0x00, reason, 0x00 };
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	int fd = raw_open();

	raw_connect_init(&pkt.u.connect, MQTT_V5, "props");
	pkt.u.connect.props = *props;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	expect_bytes(fd, want, sizeof(want));
	expect_closed(fd);
	close(fd);
}

/*
 * 5.0 CONNECT properties out of range are Protocol Errors: Receive
 * Maximum 0, Maximum Packet Size 0, Request Problem Information 2, a
 * property given twice (section 3.1.2.11); a property not allowed in
 * CONNECT is malformed (section 2.2.2.2).  The server may answer with
 * CONNACK and that reason before closing (section 4.13.1).
 */
START_TEST(test_connect_bad_properties)
{
	struct mqtt_props p;
	/* Session Expiry Interval twice */
	const uint8_t twice[] = { 0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T',
				  0x05, 0x02, 0x00, 0x3C, 0x0A,
				  0x11, 0x00, 0x00, 0x00, 0x3C,
				  0x11, 0x00, 0x00, 0x00, 0x3C,
				  0x00, 0x01, 'x' };
	const uint8_t want[] = { 0x20, 0x03, 0x00, 0x82, 0x00 };
	int fd;

	memset(&p, 0, sizeof(p));
	mqtt_props_set(&p, MQTT_PROP_RECEIVE_MAXIMUM);
	check_connect_props_refused(&p, MQTT_RC_PROTOCOL_ERROR);

	memset(&p, 0, sizeof(p));
	mqtt_props_set(&p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	check_connect_props_refused(&p, MQTT_RC_PROTOCOL_ERROR);

	memset(&p, 0, sizeof(p));
	mqtt_props_set(&p, MQTT_PROP_REQUEST_PROBLEM_INFORMATION);
	p.request_problem_information = 2;
	check_connect_props_refused(&p, MQTT_RC_PROTOCOL_ERROR);

	memset(&p, 0, sizeof(p));
	mqtt_props_set(&p, MQTT_PROP_TOPIC_ALIAS);
	p.topic_alias = 1;
	check_connect_props_refused(&p, MQTT_RC_MALFORMED_PACKET);

	fd = raw_open();
	ck_assert_int_eq(raw_send(fd, twice, sizeof(twice)), 0);
	expect_bytes(fd, want, sizeof(want));
	expect_closed(fd);
	close(fd);
}
END_TEST

/*
 * An Authentication Method the server does not support (cicada supports
 * none): it MAY answer CONNACK 0x8C Bad authentication method or 0x87
 * Not authorized and MUST close the connection [MQTT-4.12.0-1].
 */
START_TEST(test_unsupported_auth_method)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	uint8_t buf[256];
	int fd = raw_open(), type;

	raw_connect_init(&pkt.u.connect, MQTT_V5, "auth");
	mqtt_props_set(&pkt.u.connect.props,
		       MQTT_PROP_AUTHENTICATION_METHOD);
	pkt.u.connect.props.authentication_method.data =
		(const uint8_t *)"SCRAM-SHA-1";
	pkt.u.connect.props.authentication_method.len = 11;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, MQTT_V5,
				&pkt);
	if (type == MQTT_CONNACK) {
		ck_assert_msg(pkt.u.connack.reason ==
				      MQTT_RC_BAD_AUTHENTICATION_METHOD ||
			      pkt.u.connack.reason == MQTT_RC_NOT_AUTHORIZED,
			      "CONNACK reason 0x%02x for an unsupported "
			      "Authentication Method",
			      pkt.u.connack.reason);
		expect_closed(fd);
	} else {
		ck_assert_int_eq(type, 0); /* closed without CONNACK */
	}
	close(fd);
}
END_TEST

/*
 * Same client id twice: the first connection is closed [MQTT-3.1.4-3];
 * 5.0 tells it why with DISCONNECT 0x8E Session taken over.  The new one
 * works.
 */
START_TEST(test_takeover)
{
	uint8_t v = VERSION(_i);
	int fd = raw_open_connected(v, "twin");
	struct pconn p;
	MQTTClient_message *msg = NULL;
	char *topic = NULL;

	pconnect(&p, v, "twin", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	expect_disconnect(fd, v, MQTT_RC_SESSION_TAKEN_OVER);
	close(fd);

	ck_assert(MQTTClient_isConnected(p.c));
	ck_assert_int_eq(pc_subscribe(p.c, v, "twin/t", 1, NULL), 1);
	ck_assert_int_eq(pc_publish_str(p.c, v, "twin/t", "still here", 1,
					false), 0);
	ck_assert_int_eq(pc_receive(p.c, WAIT_MS, &topic, &msg), 1);
	ck_assert_str_eq(topic, "twin/t");
	ck_assert_int_eq(msg->payloadlen, 10);
	ck_assert_mem_eq(msg->payload, "still here", 10);
	pc_free(&topic, &msg);
	pconn_close(&p);
	ck_assert(broker_log_contains(&broker, "session taken over"));
}
END_TEST

/*
 * Keep alive 1 and silence: closed after one and a half times the keep
 * alive [MQTT-3.1.2-24 (3.1.1), MQTT-3.1.2-22 (5.0)], not before; the
 * broker's one-second timer wheel notices within two seconds of that
 * deadline (3.5 s; 3.8 allowed for scheduling).  5.0 gets DISCONNECT
 * 0x8D Keep Alive timeout.  Both versions run side by side.
 */
START_TEST(test_keepalive_timeout)
{
	struct sink s[2];
	uint8_t buf[256];
	struct mqtt_connack ack;
	long start;

	s[0].fd = raw_open();
	s[1].fd = raw_open();
	ck_assert_int_eq(raw_connect_full(s[0].fd, MQTT_V311, "ka3", 1, buf,
					  sizeof(buf), &ack), 0);
	ck_assert_int_eq(raw_connect_full(s[1].fd, MQTT_V5, "ka5", 1, buf,
					  sizeof(buf), &ack), 0);
	/* the server accepted 1 as is: no Server Keep Alive */
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_SERVER_KEEP_ALIVE));
	start = harness_now_ms();
	collect_until_closed(s, 2, start, 5000);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_ge(s[i].closed_after, 1400);
		ck_assert_int_le(s[i].closed_after, 3800);
		close(s[i].fd);
	}
	ck_assert_uint_eq(s[0].len, 0);
	expect_sink_disconnect(&s[1], MQTT_RC_KEEP_ALIVE_TIMEOUT);
}
END_TEST

/*
 * PINGREQ -> PINGRESP [MQTT-3.12.4-1], and any packet resets the keep
 * alive: with keep alive 1 and a PINGREQ every 0.5 s the connection is
 * still open after 3.5 s, past the latest silent close.
 */
START_TEST(test_pingreq_keeps_alive)
{
	const uint8_t pingreq[] = { 0xC0, 0x00 };
	const uint8_t pingresp[] = { 0xD0, 0x00 };
	uint8_t buf[256];
	struct mqtt_connack ack;
	int fd[2];
	long start;

	fd[0] = raw_open();
	fd[1] = raw_open();
	ck_assert_int_eq(raw_connect_full(fd[0], MQTT_V311, "ping3", 1, buf,
					  sizeof(buf), &ack), 0);
	ck_assert_int_eq(raw_connect_full(fd[1], MQTT_V5, "ping5", 1, buf,
					  sizeof(buf), &ack), 0);
	start = harness_now_ms();
	while (harness_now_ms() - start < 3500) {
		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(raw_send(fd[i], pingreq,
						  sizeof(pingreq)), 0);
			expect_bytes(fd[i], pingresp, sizeof(pingresp));
		}
		usleep(500 * 1000);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(raw_send(fd[i], pingreq, sizeof(pingreq)), 0);
		expect_bytes(fd[i], pingresp, sizeof(pingresp));
		close(fd[i]);
	}
}
END_TEST

/*
 * max_keepalive 10, client asks 60: 5.0 is accepted with Server Keep
 * Alive 10 [MQTT-3.2.2-21]; 3.1.1 has no way to say so and is refused
 * with 0x02, as mosquitto does.  A keep alive within the limit is
 * accepted as is.
 */
START_TEST(test_max_keepalive)
{
	struct pconn p;
	uint8_t buf[256];
	struct mqtt_connack ack;
	int fd;

	pconnect(&p, MQTT_V5, "ka-limit5", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(MQTTProperties_getNumericValue(&p.props,
			 MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE), 10);
	pconn_close(&p);

	pconnect(&p, MQTT_V311, "ka-limit3", true, 0, 60);
	ck_assert_int_eq(p.rc, 2);
	pconn_close(&p);

	fd = raw_open();
	ck_assert_int_eq(raw_connect_full(fd, MQTT_V5, "ka-ok5", 10, buf,
					  sizeof(buf), &ack), 0);
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_SERVER_KEEP_ALIVE));
	close(fd);
	fd = raw_open();
	ck_assert_int_eq(raw_connect_full(fd, MQTT_V311, "ka-ok3", 10, buf,
					  sizeof(buf), &ack), 0);
	close(fd);
}
END_TEST

/*
 * connect_timeout 1: a socket that never sends CONNECT is closed without
 * a byte, within 1 to 3.5 s (the timer wheel notices within 2 s of the
 * deadline); so is one that trickles a CONNECT a byte at
 * a time, since the timeout counts from the TCP connection, not from the
 * last byte (5.0 section 3.1.4: "within a reasonable amount of time after
 * the Network Connection is established").
 */
START_TEST(test_connect_timeout)
{
	uint8_t connect[160];
	size_t len = build_connect(connect, "MQTT", MQTT_V311, 0x02, 60,
				   "a-rather-long-client-identifier");
	struct sink silent;
	long start = harness_now_ms(), closed_after = -1;
	size_t sent = 0;
	int trickle;

	silent.fd = raw_open();
	collect_until_closed(&silent, 1, start, 5000);
	ck_assert_int_ge(silent.closed_after, 900);
	ck_assert_int_le(silent.closed_after, 3500);
	ck_assert_uint_eq(silent.len, 0);
	close(silent.fd);

	/* one byte every 300 ms: the whole CONNECT would take 13 s */
	trickle = raw_open();
	start = harness_now_ms();
	while (sent < len && harness_now_ms() - start < 4500) {
		struct pollfd pfd = { .fd = trickle, .events = POLLIN };

		if (poll(&pfd, 1, 300) > 0) {
			uint8_t b;

			if (recv(trickle, &b, 1, 0) <= 0) {
				closed_after = harness_now_ms() - start;
				break;
			}
			ck_abort_msg("unexpected byte before CONNECT");
		}
		if (raw_send(trickle, connect + sent, 1) < 0) {
			closed_after = harness_now_ms() - start;
			break;
		}
		sent++;
	}
	ck_assert_msg(closed_after >= 0,
		      "a CONNECT trickled byte by byte kept the connection "
		      "open %ld ms past connect_timeout 1 (%zu bytes sent)",
		      harness_now_ms() - start, sent);
	ck_assert_int_le(closed_after, 3500);
	close(trickle);
}
END_TEST

/*
 * allow_anonymous false and no password file: a client without user name
 * is refused, 3.1.1 with 0x05 Not authorized, 5.0 with 0x87.
 */
START_TEST(test_anonymous_refused)
{
	uint8_t v = VERSION(_i);
	const uint8_t want_v3[] = { 0x20, 0x02, 0x00, 0x05 };
	struct pconn p;
	int fd;

	pconnect(&p, v, "anon", true, 0, 60);
	ck_assert_int_eq(p.rc, v == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 5);
	ck_assert(!MQTTClient_isConnected(p.c));
	pconn_close(&p);

	fd = raw_open();
	send_connect(fd, "MQTT", v, 0x02, 60, "anon-raw");
	if (v == MQTT_V5)
		expect_connack_refused(fd, MQTT_RC_NOT_AUTHORIZED);
	else
		expect_bytes(fd, want_v3, sizeof(want_v3));
	expect_closed(fd);
	close(fd);
}
END_TEST

/* A QoS 1 PUBLISH of exactly total bytes (fixed header included). */
static void send_publish_of_size(int fd, uint8_t version, size_t total,
				 uint16_t packet_id)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	static uint8_t payload[2048];
	size_t size;

	pkt.u.publish.qos = 1;
	pkt.u.publish.packet_id = packet_id;
	pkt.u.publish.topic.data = (const uint8_t *)"big";
	pkt.u.publish.topic.len = 3;
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = total - 20;
	size = mqtt_encoded_size(&pkt, version);
	pkt.u.publish.payload.len = total - 20 - (size - total);
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, version), total);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, version), 0);
}

/*
 * max_packet_size 1000: a packet of exactly 1000 bytes passes, one of
 * 1001 is refused: 5.0 DISCONNECT 0x95 Packet too large, 3.1.1 closed.
 */
START_TEST(test_max_packet_size)
{
	uint8_t v = VERSION(_i);
	struct mqtt_connack connack;
	struct mqtt_packet ack;
	uint8_t buf[256];
	int fd = raw_open();

	/* keep alive within max_keepalive 10, or 3.1.1 is refused */
	ck_assert_int_eq(raw_connect_full(fd, v, "big", 10, buf, sizeof(buf),
					  &connack), 0);

	send_publish_of_size(fd, v, 1000, 1);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &ack), MQTT_PUBACK);
	ck_assert_uint_eq(ack.u.ack.packet_id, 1);

	send_publish_of_size(fd, v, 1001, 2);
	expect_disconnect(fd, v, MQTT_RC_PACKET_TOO_LARGE);
	close(fd);
}
END_TEST

/*
 * 5.0 CONNACK properties with limits configured: Maximum Packet Size
 * 1000 [MQTT-3.2.2.3.6], Topic Alias Maximum 10, Server Keep Alive for a
 * keep alive above max_keepalive; nothing that the client did not need.
 */
START_TEST(test_connack_props_limits)
{
	uint8_t buf[256];
	struct mqtt_connack ack;
	int fd = raw_open();

	ck_assert_int_eq(raw_connect_full(fd, MQTT_V5, "props", 60, buf,
					  sizeof(buf), &ack), 0);
	ck_assert(!ack.session_present);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_MAXIMUM_PACKET_SIZE));
	ck_assert_uint_eq(ack.props.maximum_packet_size, 1000);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM));
	ck_assert_uint_eq(ack.props.topic_alias_maximum, 10);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_SERVER_KEEP_ALIVE));
	ck_assert_uint_eq(ack.props.server_keep_alive, 10);
	ck_assert(!mqtt_props_has(&ack.props,
				  MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER));
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_RETAIN_AVAILABLE));
	close(fd);
}
END_TEST

/*
 * Default 5.0 CONNACK: reason 0, Topic Alias Maximum 10, and no Maximum
 * Packet Size (no limit but the protocol's) nor Server Keep Alive.
 */
START_TEST(test_connack_props_default)
{
	uint8_t buf[256];
	struct mqtt_connack ack;
	int fd = raw_open();

	ck_assert_int_eq(raw_connect_full(fd, MQTT_V5, "props", 60, buf,
					  sizeof(buf), &ack), 0);
	ck_assert(!ack.session_present);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM));
	ck_assert_uint_eq(ack.props.topic_alias_maximum, 10);
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_MAXIMUM_PACKET_SIZE));
	ck_assert(!mqtt_props_has(&ack.props, MQTT_PROP_SERVER_KEEP_ALIVE));
	close(fd);
}
END_TEST

/*
 * SIGTERM: every 5.0 client gets DISCONNECT 0x8B Server shutting down,
 * 3.1.1 clients are closed, a Paho client sees the connection go, and the
 * broker exits 0.
 */
START_TEST(test_sigterm_shutdown)
{
	struct sink s[2];
	struct pconn p;
	int rc;

	s[0].fd = raw_open_connected(MQTT_V311, "term3");
	s[1].fd = raw_open_connected(MQTT_V5, "term5");
	pconnect(&p, MQTT_V5, "term-paho", true, 0, 60);
	ck_assert_int_eq(p.rc, 0);

	broker_signal(&broker, SIGTERM);
	collect_until_closed(s, 2, harness_now_ms(), 5000);
	ck_assert_int_ge(s[0].closed_after, 0);
	ck_assert_int_ge(s[1].closed_after, 0);
	ck_assert_uint_eq(s[0].len, 0);
	expect_sink_disconnect(&s[1], MQTT_RC_SERVER_SHUTTING_DOWN);
	close(s[0].fd);
	close(s[1].fd);

	rc = broker_stop(&broker);
	ck_assert_int_eq(rc, 0);
	ck_assert(broker_log_contains(&broker, "SIGTERM received"));
	ck_assert(broker_log_contains(&broker, "cicada stopped"));
	{
		MQTTClient_message *msg = NULL;
		char *topic = NULL;

		ck_assert_int_eq(pc_receive(p.c, 2000, &topic, &msg), -1);
		pc_free(&topic, &msg);
	}
	pconn_close(&p);
}
END_TEST

static TCase *tcase(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	return tc;
}

static Suite *connect_suite(void)
{
	Suite *s = suite_create("01-connect");
	TCase *tc = tcase("connect", setup_default);

	tcase_add_loop_test(tc, test_session_present, 0, 2);
	tcase_add_test(tc, test_empty_id_v311_clean);
	tcase_add_test(tc, test_empty_id_v311_not_clean);
	tcase_add_test(tc, test_empty_id_v5_assigned);
	tcase_add_test(tc, test_given_id_not_assigned);
	tcase_add_test(tc, test_assigned_id_skips_taken);
	tcase_add_test(tc, test_v31_client_id_length);
	tcase_add_test(tc, test_unsupported_protocol_level);
	tcase_add_test(tc, test_bridge_level_accepted);
	tcase_add_test(tc, test_wrong_protocol_name);
	tcase_add_test(tc, test_first_packet_not_connect);
	tcase_add_loop_test(tc, test_second_connect, 0, 2);
	tcase_add_loop_test(tc, test_reserved_connect_flag, 0, 2);
	tcase_add_loop_test(tc, test_bad_connect_flags, 0, 2);
	tcase_add_test(tc, test_connect_bad_properties);
	tcase_add_test(tc, test_unsupported_auth_method);
	tcase_add_loop_test(tc, test_takeover, 0, 2);
	tcase_add_test(tc, test_connack_props_default);
	tcase_add_test(tc, test_sigterm_shutdown);
	suite_add_tcase(s, tc);

	tc = tcase("keepalive", setup_default);
	tcase_add_test(tc, test_keepalive_timeout);
	tcase_add_test(tc, test_pingreq_keeps_alive);
	suite_add_tcase(s, tc);

	tc = tcase("limits", setup_limits);
	tcase_add_test(tc, test_max_keepalive);
	tcase_add_test(tc, test_connect_timeout);
	tcase_add_loop_test(tc, test_max_packet_size, 0, 2);
	tcase_add_test(tc, test_connack_props_limits);
	suite_add_tcase(s, tc);

	tc = tcase("anonymous", setup_no_anonymous);
	tcase_add_loop_test(tc, test_anonymous_refused, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(connect_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
