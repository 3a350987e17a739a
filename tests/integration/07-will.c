/*
 * Integration tests: the will message [MQTT-3.1.2-8 ff.] against a real
 * cicada.  The client with the will is a raw socket, so that each way of
 * ending a connection is exact (close without DISCONNECT, silence past the
 * keep alive, a malformed packet, a second CONNECT, a take-over, DISCONNECT
 * with reason 0 or 0x04); the observers are Paho clients in 3.1.1 and 5.0.
 *
 * The will is published when the broker closes the connection, before it
 * logs nothing else for that client; "no will" is checked with a sentinel
 * published after the broker has closed the connection (see 04-retain.c).
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define WAIT_MS 3000

static struct broker_proc broker;

static void setup(void)
{
	broker_start_checked(&broker, NULL);
}

static void teardown(void)
{
	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
}

static MQTTClient client(const char *id, int version)
{
	MQTTClient c = pc_connect(&broker, id, version, true, 0, NULL);

	ck_assert_msg(c != NULL, "%s (MQTT %d) could not connect", id, version);
	return c;
}

static void subscribe(MQTTClient c, int version, const char *filter, int qos)
{
	ck_assert_int_eq(pc_subscribe(c, version, filter, qos, NULL), qos);
}

/* An observer of "will/#" at qos, also holding "sentinel". */
static MQTTClient observer(const char *id, int version, int qos)
{
	MQTTClient c = client(id, version);

	subscribe(c, version, "sentinel", 1);
	subscribe(c, version, "will/#", qos);
	return c;
}

/* The next message is exactly this; returns it (caller frees) if keep. */
static MQTTClient_message *expect_msg_keep(MQTTClient c, const char *topic,
					   const char *payload, int qos,
					   int retained, bool keep)
{
	MQTTClient_message *m;
	char *t;

	ck_assert_msg(pc_receive(c, WAIT_MS, &t, &m) == 1,
		      "expected '%s' on %s, got nothing", payload, topic);
	ck_assert_str_eq(t, topic);
	ck_assert_int_eq(m->payloadlen, (int)strlen(payload));
	ck_assert_mem_eq(m->payload, payload, strlen(payload));
	ck_assert_int_eq(m->qos, qos);
	ck_assert_int_eq(m->retained, retained);
	MQTTClient_free(t);
	if (keep)
		return m;
	MQTTClient_freeMessage(&m);
	return NULL;
}

static void expect_msg(MQTTClient c, const char *topic, const char *payload,
		       int qos, int retained)
{
	(void)expect_msg_keep(c, topic, payload, qos, retained, false);
}

/* Nothing (no will) reached obs before the sentinel. */
static void expect_nothing(MQTTClient obs, int version)
{
	MQTTClient pub = client("w-sentinel", version);

	ck_assert_int_eq(pc_publish_str(pub, version, "sentinel", "end", 1,
					false), 0);
	expect_msg(obs, "sentinel", "end", 1, 0);
	pc_close(&pub);
}

struct will {
	const char *topic, *payload;
	uint8_t qos;
	bool retain;
	uint16_t keep_alive;
	struct mqtt_props props; /* 5.0 will properties */
	uint32_t session_expiry; /* 5.0 CONNECT Session Expiry Interval */
	bool resume; /* clean start 0 */
};

/* A raw client with the will; returns its socket after CONNACK 0. */
static int will_client(const char *id, uint8_t version, const struct will *w)
{
	struct mqtt_connect con;
	uint8_t buf[256];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, version, id);
	con.keep_alive = w->keep_alive ? w->keep_alive : 60;
	con.will_flag = true;
	con.will_qos = w->qos;
	con.will_retain = w->retain;
	con.will_topic.data = (const uint8_t *)w->topic;
	con.will_topic.len = strlen(w->topic);
	con.will_payload.data = (const uint8_t *)w->payload;
	con.will_payload.len = strlen(w->payload);
	if (version == MQTT_V5)
		con.will_props = w->props;
	if (w->session_expiry) {
		con.props.session_expiry_interval = w->session_expiry;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	con.clean_start = !w->resume;
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), NULL),
			 0);
	return fd;
}

/* In 5.0 the broker may say why it closes; if it does, with reason. */
static void expect_closed(int fd, uint8_t version, uint8_t reason)
{
	struct mqtt_packet pkt;
	uint8_t buf[256];
	int type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, version,
				    &pkt);

	if (version == MQTT_V5) {
		ck_assert_int_eq(type, MQTT_DISCONNECT);
		ck_assert_int_eq(pkt.u.disconnect.reason, reason);
		type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, version,
					&pkt);
	}
	ck_assert_msg(type == 0, "expected the broker to close, got %d", type);
}

/* Closed without DISCONNECT: the will is published [MQTT-3.1.2-8]. */
START_TEST(will_on_socket_close)
{
	uint8_t v = (uint8_t)_i;
	struct will w = { .topic = "will/a", .payload = "gone", .qos = 1 };
	MQTTClient obs = observer("w-obs", v, 2);
	int fd = will_client("w-client", v, &w);

	close(fd);
	expect_msg(obs, "will/a", "gone", 1, 0);
	pc_close(&obs);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Keep alive 1 and silence: closed after one and a half times the keep
 * alive [MQTT-3.1.2-24, MQTT-3.1.2-22], not before, and the will is
 * published.
 */
START_TEST(will_on_keep_alive_timeout)
{
	uint8_t v = (uint8_t)_i;
	struct will w = {
		.topic = "will/ka", .payload = "timed out", .qos = 1,
		.keep_alive = 1,
	};
	MQTTClient obs = observer("w-obs", v, 1);
	double t0 = now_s(), took;
	int fd = will_client("w-client", v, &w);

	expect_closed(fd, v, MQTT_RC_KEEP_ALIVE_TIMEOUT);
	took = now_s() - t0;
	ck_assert_msg(took >= 1.45 && took < 4.0,
		      "closed after %.2f s with keep alive 1", took);
	close(fd);
	expect_msg(obs, "will/ka", "timed out", 1, 0);
	pc_close(&obs);
}
END_TEST

/*
 * A malformed packet (PUBLISH with QoS 3 [MQTT-3.3.1-4]) closes the
 * connection (5.0: DISCONNECT 0x81) and the will is published.
 */
START_TEST(will_on_malformed_packet)
{
	static const uint8_t bad_publish[] = { 0x36, 0x05, 0x00, 0x01, 'x',
					       0x00, 0x01 };
	uint8_t v = (uint8_t)_i;
	struct will w = { .topic = "will/bad", .payload = "malformed" };
	MQTTClient obs = observer("w-obs", v, 1);
	int fd = will_client("w-client", v, &w);

	ck_assert_int_eq(raw_send(fd, bad_publish, sizeof(bad_publish)), 0);
	expect_closed(fd, v, MQTT_RC_MALFORMED_PACKET);
	close(fd);
	expect_msg(obs, "will/bad", "malformed", 0, 0);
	pc_close(&obs);
}
END_TEST

/*
 * A second CONNECT is a protocol violation [MQTT-3.1.0-2]: closed (5.0:
 * DISCONNECT 0x82) and the will is published.
 */
START_TEST(will_on_protocol_error)
{
	uint8_t v = (uint8_t)_i;
	struct will w = { .topic = "will/pe", .payload = "protocol", .qos = 1 };
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	MQTTClient obs = observer("w-obs", v, 1);
	int fd = will_client("w-client", v, &w);

	raw_connect_init(&pkt.u.connect, v, "w-client");
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	expect_closed(fd, v, MQTT_RC_PROTOCOL_ERROR);
	close(fd);
	expect_msg(obs, "will/pe", "protocol", 1, 0);
	pc_close(&obs);
}
END_TEST

/*
 * A new connection with the same client id takes the session over; the
 * old connection is closed (5.0: DISCONNECT 0x8E [MQTT-3.1.4-3]) and its
 * will is published.
 */
START_TEST(will_on_takeover)
{
	uint8_t v = (uint8_t)_i, buf[256];
	struct will w = { .topic = "will/to", .payload = "taken", .qos = 1 };
	MQTTClient obs = observer("w-obs", v, 1);
	int fd = will_client("w-client", v, &w), fd2;

	fd2 = raw_connect(&broker);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd2, v, "w-client"), 0);
	expect_closed(fd, v, MQTT_RC_SESSION_TAKEN_OVER);
	close(fd);
	expect_msg(obs, "will/to", "taken", 1, 0);
	/* The new connection is alive: PINGREQ, PINGRESP. */
	ck_assert_int_eq(raw_send(fd2, "\xc0\x00", 2), 0);
	ck_assert_int_eq(raw_recv_packet(fd2, buf, sizeof(buf), WAIT_MS), 2);
	ck_assert_int_eq(buf[0], 0xd0);
	close(fd2);
	pc_close(&obs);
}
END_TEST

/* A normal DISCONNECT discards the will [MQTT-3.1.2-10, MQTT-3.14.4-3]. */
START_TEST(will_not_on_normal_disconnect)
{
	uint8_t v = (uint8_t)_i;
	struct will w = { .topic = "will/no", .payload = "never", .qos = 1 };
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	MQTTClient obs = observer("w-obs", v, 1);
	int fd = will_client("w-client", v, &w);

	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
	expect_nothing(obs, v);
	pc_close(&obs);
}
END_TEST

/* 5.0 DISCONNECT 0x04, Disconnect with Will Message: published. */
START_TEST(will_on_disconnect_with_will_message)
{
	struct will w = { .topic = "will/04", .payload = "asked", .qos = 1 };
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	MQTTClient obs = observer("w-obs", 5, 1);
	int fd = will_client("w-client", MQTT_V5, &w);

	pkt.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
	expect_msg(obs, "will/04", "asked", 1, 0);
	pc_close(&obs);
}
END_TEST

/*
 * Will Retain 1: the will is also kept as the retained message of its
 * topic [MQTT-3.1.2-17]; live observers get retain 0 [MQTT-3.3.1-9],
 * a later subscriber gets it retained.
 */
START_TEST(will_retain_honoured)
{
	uint8_t v = (uint8_t)_i;
	struct will w = {
		.topic = "will/r", .payload = "remembered", .qos = 1,
		.retain = true,
	};
	MQTTClient obs = observer("w-obs", v, 1), late;
	int fd = will_client("w-client", v, &w);

	close(fd);
	expect_msg(obs, "will/r", "remembered", 1, 0);
	late = client("w-late", v);
	subscribe(late, v, "will/r", 2);
	expect_msg(late, "will/r", "remembered", 1, 1);
	pc_close(&late);
	pc_close(&obs);
}
END_TEST

/* Will QoS: delivered at min(will QoS, subscription QoS). */
START_TEST(will_qos_honoured)
{
	uint8_t v = (uint8_t)_i;
	struct will w2 = { .topic = "will/q2", .payload = "two", .qos = 2 };
	struct will w1 = { .topic = "will/q1", .payload = "one", .qos = 1 };
	MQTTClient o2 = observer("w-obs2", v, 2), o1 = observer("w-obs1", v, 1);
	MQTTClient o0 = observer("w-obs0", v, 0);
	int fd;

	fd = will_client("w-client2", v, &w2);
	close(fd);
	expect_msg(o2, "will/q2", "two", 2, 0);
	expect_msg(o1, "will/q2", "two", 1, 0);
	expect_msg(o0, "will/q2", "two", 0, 0);
	fd = will_client("w-client1", v, &w1);
	close(fd);
	expect_msg(o2, "will/q1", "one", 1, 0);
	expect_msg(o1, "will/q1", "one", 1, 0);
	expect_msg(o0, "will/q1", "one", 0, 0);
	pc_close(&o0);
	pc_close(&o1);
	pc_close(&o2);
}
END_TEST

/*
 * 5.0 will properties travel with the will (section 3.1.3.2): User
 * Properties in their order, Content Type, Payload Format Indicator,
 * Response Topic, Correlation Data; Will Delay Interval does not.
 */
START_TEST(will_properties_forwarded)
{
	static const struct mqtt_user_prop users[] = {
		{ { (const uint8_t *)"k", 1 }, { (const uint8_t *)"v", 1 } },
		{ { (const uint8_t *)"k", 1 }, { (const uint8_t *)"w2", 2 } },
	};
	struct will w = { .topic = "will/p", .payload = "{\"up\":false}",
			  .qos = 1 };
	struct mqtt_props *p = &w.props;
	MQTTClient obs = observer("w-obs", 5, 1);
	MQTTClient_message *m;
	MQTTProperty *prop;
	int fd;

	p->users = users;
	p->user_count = 2;
	mqtt_props_set(p, MQTT_PROP_USER_PROPERTY);
	p->content_type.data = (const uint8_t *)"application/json";
	p->content_type.len = 16;
	mqtt_props_set(p, MQTT_PROP_CONTENT_TYPE);
	p->payload_format_indicator = 1;
	mqtt_props_set(p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	p->response_topic.data = (const uint8_t *)"resp/t";
	p->response_topic.len = 6;
	mqtt_props_set(p, MQTT_PROP_RESPONSE_TOPIC);
	p->correlation_data.data = (const uint8_t *)"\x01\x00\x02";
	p->correlation_data.len = 3;
	mqtt_props_set(p, MQTT_PROP_CORRELATION_DATA);

	fd = will_client("w-client", MQTT_V5, &w);
	close(fd);
	m = expect_msg_keep(obs, "will/p", "{\"up\":false}", 1, 0, true);

	ck_assert_int_eq(MQTTProperties_propertyCount(&m->properties,
			 MQTTPROPERTY_CODE_USER_PROPERTY), 2);
	prop = MQTTProperties_getPropertyAt(&m->properties,
					    MQTTPROPERTY_CODE_USER_PROPERTY, 0);
	ck_assert_int_eq(prop->value.data.len, 1);
	ck_assert_mem_eq(prop->value.data.data, "k", 1);
	ck_assert_int_eq(prop->value.value.len, 1);
	ck_assert_mem_eq(prop->value.value.data, "v", 1);
	prop = MQTTProperties_getPropertyAt(&m->properties,
					    MQTTPROPERTY_CODE_USER_PROPERTY, 1);
	ck_assert_int_eq(prop->value.value.len, 2);
	ck_assert_mem_eq(prop->value.value.data, "w2", 2);

	prop = MQTTProperties_getProperty(&m->properties,
					  MQTTPROPERTY_CODE_CONTENT_TYPE);
	ck_assert_ptr_nonnull(prop);
	ck_assert_int_eq(prop->value.data.len, 16);
	ck_assert_mem_eq(prop->value.data.data, "application/json", 16);
	ck_assert_int_eq(MQTTProperties_getNumericValue(&m->properties,
			 MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR), 1);
	prop = MQTTProperties_getProperty(&m->properties,
					  MQTTPROPERTY_CODE_RESPONSE_TOPIC);
	ck_assert_ptr_nonnull(prop);
	ck_assert_int_eq(prop->value.data.len, 6);
	ck_assert_mem_eq(prop->value.data.data, "resp/t", 6);
	prop = MQTTProperties_getProperty(&m->properties,
					  MQTTPROPERTY_CODE_CORRELATION_DATA);
	ck_assert_ptr_nonnull(prop);
	ck_assert_int_eq(prop->value.data.len, 3);
	ck_assert_mem_eq(prop->value.data.data, "\x01\x00\x02", 3);
	ck_assert(!MQTTProperties_hasProperty(&m->properties,
			MQTTPROPERTY_CODE_WILL_DELAY_INTERVAL));
	MQTTClient_freeMessage(&m);
	pc_close(&obs);
}
END_TEST

/* A will with a Will Delay Interval of seconds, session kept 60 s. */
static struct will delayed_will(uint32_t delay, uint32_t session_expiry)
{
	struct will w = { .topic = "will/delayed", .payload = "late", .qos = 1,
			  .session_expiry = session_expiry };

	w.props.will_delay_interval = delay;
	mqtt_props_set(&w.props, MQTT_PROP_WILL_DELAY_INTERVAL);
	return w;
}

/* Not before the Will Delay Interval, then sent [MQTT-3.1.3-9]. */
START_TEST(will_delay_waits)
{
	struct will w = delayed_will(2, 60);
	MQTTClient obs = observer("w-obs", MQTT_V5, 1);
	int fd = will_client("w-delay", MQTT_V5, &w);
	double closed;
	char *topic = NULL;
	MQTTClient_message *m = NULL;

	close(fd);
	closed = now_s();
	ck_assert_int_eq(pc_receive(obs, 1000, &topic, &m), 0);
	expect_msg(obs, "will/delayed", "late", 1, 0);
	ck_assert(now_s() - closed >= 1.5);
	pc_close(&obs);
}
END_TEST

/* The client comes back within the delay: no will [MQTT-3.1.3-9]. */
START_TEST(will_delay_cancelled_by_reconnect)
{
	struct will w = delayed_will(2, 60);
	MQTTClient obs = observer("w-obs", MQTT_V5, 1);
	int fd = will_client("w-back", MQTT_V5, &w);
	struct will again = { .topic = "will/other", .payload = "x",
			      .session_expiry = 60, .resume = true };

	close(fd);
	fd = will_client("w-back", MQTT_V5, &again);
	usleep(3000 * 1000); /* past the first will's delay */
	expect_nothing(obs, MQTT_V5);
	close(fd);
	expect_msg(obs, "will/other", "x", 0, 0);
	pc_close(&obs);
}
END_TEST

/* The session ends before the delay: the will goes then [MQTT-3.1.3-9]. */
START_TEST(will_delay_session_ends_first)
{
	struct will w = delayed_will(30, 1);
	MQTTClient obs = observer("w-obs", MQTT_V5, 1);
	int fd = will_client("w-short", MQTT_V5, &w);

	close(fd);
	expect_msg(obs, "will/delayed", "late", 1, 0);
	pc_close(&obs);
}
END_TEST

static Suite *will_suite(void)
{
	Suite *s = suite_create("07-will");
	TCase *tc = tcase_create("will");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, will_on_socket_close, 4, 6);
	tcase_add_loop_test(tc, will_on_keep_alive_timeout, 4, 6);
	tcase_add_loop_test(tc, will_on_malformed_packet, 4, 6);
	tcase_add_loop_test(tc, will_on_protocol_error, 4, 6);
	tcase_add_loop_test(tc, will_on_takeover, 4, 6);
	tcase_add_loop_test(tc, will_not_on_normal_disconnect, 4, 6);
	tcase_add_test(tc, will_on_disconnect_with_will_message);
	tcase_add_loop_test(tc, will_retain_honoured, 4, 6);
	tcase_add_loop_test(tc, will_qos_honoured, 4, 6);
	tcase_add_test(tc, will_properties_forwarded);
	tcase_add_test(tc, will_delay_waits);
	tcase_add_test(tc, will_delay_cancelled_by_reconnect);
	tcase_add_test(tc, will_delay_session_ends_first);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(will_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
