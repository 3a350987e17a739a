/*
 * Integration tests: sessions [MQTT-4.1] against a real cicada.  What
 * survives a reconnect (subscriptions, messages queued offline, messages
 * in flight), what does not (clean start, expiry, QoS 0 by default), the
 * queue and in-flight limits, and MQTT 5 Session Expiry and Receive
 * Maximum.  Paho plays ordinary clients; raw sockets play the subscriber
 * whose acknowledgements must be withheld or whose connection must drop
 * at an exact point of a QoS flow.
 *
 * Assertions that nothing arrives use a sentinel message where the broker
 * would send it in order (see 04-retain.c); where a window holds messages
 * back, so that a sentinel would wait too, a bounded 200 ms silence is
 * required instead.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define WAIT_MS 3000
#define SILENCE_MS 200

static struct broker_proc broker;

static void start_broker(const char *config)
{
	broker_start_checked(&broker, config);
}

static void setup(void)
{
	start_broker(NULL);
}

static void setup_queue_qos0(void)
{
	start_broker("queue_qos0_messages true");
}

static void setup_max_queued(void)
{
	start_broker("max_queued_messages 5\nsys_interval 1");
}

static void setup_qos0_first(void)
{
	start_broker("max_queued_messages 2\nqueue_qos0_messages true");
}

static void setup_max_inflight(void)
{
	start_broker("max_inflight_messages 2");
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

static void publish(MQTTClient c, int version, const char *topic,
		    const char *payload, int qos)
{
	ck_assert_int_eq(pc_publish_str(c, version, topic, payload, qos,
					false), 0);
}

/* ------------------------------------------------------------ raw side */

/*
 * Raw CONNECT.  persistent: a session that outlives the connection
 * (3.1.1 Clean Session 0; 5.0 Session Expiry `expiry` with Clean Start on
 * the first connection only); otherwise Clean Session / Clean Start 1 and
 * no expiry.  *present gets Session Present.
 */
static int raw_session(const char *id, uint8_t version, bool persistent,
		       bool first, uint32_t expiry, bool *present)
{
	struct mqtt_connack ack;
	struct mqtt_connect con;
	uint8_t buf[256];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, version, id);
	con.clean_start = !persistent || (version == MQTT_V5 && first);
	if (version == MQTT_V5 && persistent) {
		con.props.session_expiry_interval = expiry;
		mqtt_props_set(&con.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), &ack),
			 0);
	*present = ack.session_present;
	return fd;
}

static int raw_persistent(const char *id, uint8_t version, bool first,
			  bool *present)
{
	return raw_session(id, version, true, first, 60, present);
}

/* DISCONNECT (reason 0) and wait until the broker has closed. */
static void raw_disconnect(int fd, uint8_t version)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

	ck_assert_int_eq(raw_send_packet(fd, &pkt, version), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);
}

/* Close without DISCONNECT and wait until the broker has noticed. */
static void raw_drop(int fd, const char *id)
{
	char who[128], addr[64];

	raw_local_addr(fd, addr, sizeof(addr));
	snprintf(who, sizeof(who), "%s %s: disconnected", id, addr);
	close(fd);
	ck_assert_msg(broker_wait_log(&broker, who, WAIT_MS),
		      "the broker did not log '%s'", who);
}

/* The next packet is a PUBLISH exactly so; returns its packet id. */
static uint16_t raw_expect_publish(int fd, uint8_t version, const char *topic,
				   const char *payload, uint8_t qos, bool dup)
{
	struct mqtt_packet pkt;
	uint8_t buf[512];

	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  version, &pkt), MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.topic.len, strlen(topic));
	ck_assert_mem_eq(pkt.u.publish.topic.data, topic, strlen(topic));
	ck_assert_uint_eq(pkt.u.publish.payload.len, strlen(payload));
	ck_assert_mem_eq(pkt.u.publish.payload.data, payload, strlen(payload));
	ck_assert_int_eq(pkt.u.publish.qos, qos);
	ck_assert_int_eq(pkt.u.publish.dup, dup);
	ck_assert_int_eq(pkt.u.publish.retain, 0);
	if (qos)
		ck_assert_int_ne(pkt.u.publish.packet_id, 0);
	return pkt.u.publish.packet_id;
}

/* The next packet is a PUBREL for id. */
static void raw_expect_pubrel(int fd, uint8_t version, uint16_t id)
{
	struct mqtt_packet pkt;
	uint8_t buf[256];

	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  version, &pkt), MQTT_PUBREL);
	ck_assert_int_eq(pkt.u.ack.packet_id, id);
}

/* Take a PUBLISH exactly so and complete its QoS flow. */
static void raw_take(int fd, uint8_t version, const char *topic,
		     const char *payload, uint8_t qos)
{
	uint16_t id = raw_expect_publish(fd, version, topic, payload, qos,
					 false);

	if (qos == 1)
		ck_assert_int_eq(raw_send_ack(fd, version, MQTT_PUBACK, id), 0);
	if (qos == 2) {
		ck_assert_int_eq(raw_send_ack(fd, version, MQTT_PUBREC, id), 0);
		raw_expect_pubrel(fd, version, id);
		ck_assert_int_eq(raw_send_ack(fd, version, MQTT_PUBCOMP, id),
				 0);
	}
}

/*
 * Nothing else is on its way to the raw subscriber fd (which holds
 * "sentinel" at QoS 1): pub's sentinel is the next packet.
 */
static void raw_expect_nothing(int fd, uint8_t version, MQTTClient pub)
{
	publish(pub, version, "sentinel", "end", 1);
	raw_take(fd, version, "sentinel", "end", 1);
}

static void raw_expect_silence(int fd)
{
	uint8_t buf[512];

	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), SILENCE_MS), -1);
}

/* -------------------------------------------------------------- tests */

/* Subscriptions survive a reconnect; Session Present says so [MQTT-3.2.2-2]. */
START_TEST(session_subscriptions_survive_reconnect)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	bool present = true;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert(!present); /* [MQTT-3.2.2-3] */
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "s/1", 1), 1);
	raw_disconnect(fd, v);

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	publish(pub, v, "s/1", "still here", 1);
	raw_take(fd, v, "s/1", "still here", 1);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/*
 * QoS 1 and 2 messages published while offline arrive on reconnect, in
 * the order published, each at the QoS it was published.  The spec asks
 * for the order per topic (and QoS) [MQTT-4.6.0-5, -6]; cicada keeps one
 * queue per session, so the order is total, and that is what we check.
 */
START_TEST(session_offline_messages_delivered_in_order)
{
	static const struct {
		const char *topic, *payload;
		uint8_t qos;
	} msgs[] = {
		{ "q/1", "m1", 1 }, { "q/2", "m2", 2 }, { "q/1", "m3", 1 },
		{ "q/2", "m4", 2 }, { "q/3", "m5", 2 }, { "q/3", "m6", 1 },
	};
	enum { N = sizeof(msgs) / sizeof(msgs[0]) };
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	uint16_t ids[N];
	bool present;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "sentinel", 1), 1);
	ck_assert_int_eq(raw_subscribe(fd, v, 2, "q/#", 2), 2);
	raw_disconnect(fd, v);
	for (size_t i = 0; i < N; i++)
		publish(pub, v, msgs[i].topic, msgs[i].payload, msgs[i].qos);

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	for (size_t i = 0; i < N; i++)
		ids[i] = raw_expect_publish(fd, v, msgs[i].topic,
					    msgs[i].payload, msgs[i].qos,
					    false);
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(raw_send_ack(fd, v, msgs[i].qos == 1 ?
					      MQTT_PUBACK : MQTT_PUBREC,
					      ids[i]), 0);
	for (size_t i = 0; i < N; i++) {
		if (msgs[i].qos != 2)
			continue;
		raw_expect_pubrel(fd, v, ids[i]);
		ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBCOMP, ids[i]), 0);
	}
	raw_expect_nothing(fd, v, pub);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/* By default QoS 0 messages are not queued for an offline session. */
START_TEST(session_offline_qos0_not_queued)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	bool present;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "z/#", 1), 1);
	raw_disconnect(fd, v);
	publish(pub, v, "z/0", "lost", 0);
	publish(pub, v, "z/1", "kept", 1);

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	raw_take(fd, v, "z/1", "kept", 1);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/* queue_qos0_messages true: queued, in order with the rest. */
START_TEST(session_offline_qos0_queued_when_configured)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	bool present;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "z/#", 1), 1);
	raw_disconnect(fd, v);
	publish(pub, v, "z/0", "zero", 0);
	publish(pub, v, "z/1", "one", 1);
	publish(pub, v, "z/2", "two", 0);

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	raw_take(fd, v, "z/0", "zero", 0);
	raw_take(fd, v, "z/1", "one", 1);
	raw_take(fd, v, "z/2", "two", 0);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/*
 * max_queued_messages 5: of 8 messages for an offline session 5 are kept,
 * 3 dropped and counted in $SYS/broker/publish/messages/dropped.
 */
START_TEST(session_max_queued_messages)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v), sys;
	MQTTClient_message *m;
	bool present, got3 = false;
	char payload[8], *t;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "sentinel", 1), 1);
	ck_assert_int_eq(raw_subscribe(fd, v, 2, "mq/#", 1), 1);
	raw_disconnect(fd, v);
	for (int i = 0; i < 8; i++) {
		snprintf(payload, sizeof(payload), "m%d", i);
		publish(pub, v, "mq/x", payload, 1);
	}

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	for (int i = 0; i < 5; i++) {
		snprintf(payload, sizeof(payload), "m%d", i);
		raw_take(fd, v, "mq/x", payload, 1);
	}
	raw_expect_nothing(fd, v, pub);
	raw_disconnect(fd, v);

	/* $SYS is published every second; wait for a value with the drops. */
	sys = client("s-sys", v);
	ck_assert_int_eq(pc_subscribe(sys, v,
				      "$SYS/broker/publish/messages/dropped",
				      0, NULL), 0);
	while (!got3 && pc_receive(sys, 3500, &t, &m) == 1) {
		char value[32] = "";

		ck_assert_int_lt(m->payloadlen, (int)sizeof(value));
		memcpy(value, m->payload, (size_t)m->payloadlen);
		ck_assert_msg(strcmp(value, "0") == 0 ||
			      strcmp(value, "3") == 0,
			      "dropped count %s, expected 3", value);
		got3 = strcmp(value, "3") == 0;
		pc_free(&t, &m);
	}
	ck_assert_msg(got3, "$SYS dropped count never reached 3");
	pc_close(&sys);
	pc_close(&pub);
}
END_TEST

/*
 * cicada.conf(5), max_queued_messages: "when the queue is full QoS 0
 * messages are dropped first".  With room for 2 and QoS 0 messages
 * queued, a QoS 1 message still gets in and a QoS 0 one goes.
 */
START_TEST(session_queue_full_drops_qos0_first)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	struct mqtt_packet pkt;
	uint8_t buf[256];
	bool present;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "d/#", 1), 1);
	raw_disconnect(fd, v);
	publish(pub, v, "d/0", "a", 0);
	publish(pub, v, "d/0", "b", 0);
	publish(pub, v, "d/1", "c", 1);

	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(present);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBLISH);
	ck_assert_int_eq(pkt.u.publish.qos, 0);
	ck_assert_uint_eq(pkt.u.publish.payload.len, 1);
	ck_assert_msg(pkt.u.publish.payload.data[0] == 'a' ||
		      pkt.u.publish.payload.data[0] == 'b',
		      "first queued message '%c'",
		      pkt.u.publish.payload.data[0]);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBLISH);
	ck_assert_msg(pkt.u.publish.qos == 1 &&
		      pkt.u.publish.payload.len == 1 &&
		      pkt.u.publish.payload.data[0] == 'c',
		      "the QoS 1 message was dropped for a QoS 0 one: second "
		      "message '%.*s' at QoS %d",
		      (int)pkt.u.publish.payload.len,
		      (const char *)pkt.u.publish.payload.data,
		      pkt.u.publish.qos);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK,
				      pkt.u.publish.packet_id), 0);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/* Clean Session / Clean Start 1 discards the session [MQTT-3.1.2-6, -4]. */
START_TEST(session_clean_start_discards)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	bool present = true;
	int fd;

	fd = raw_persistent("s-sub", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "cs/#", 1), 1);
	raw_disconnect(fd, v);
	publish(pub, v, "cs/a", "queued", 1);

	fd = raw_session("s-sub", v, false, false, 0, &present);
	ck_assert(!present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "sentinel", 1), 1);
	/* Neither the queued message nor the subscription survived. */
	publish(pub, v, "cs/a", "after", 1);
	raw_expect_nothing(fd, v, pub);
	raw_disconnect(fd, v);

	/* And the clean connection left no session behind either. */
	fd = raw_persistent("s-sub", v, false, &present);
	ck_assert(!present);
	raw_disconnect(fd, v);
	pc_close(&pub);
}
END_TEST

/* 5.0: a session with Session Expiry 1 is gone 2.5 s after disconnect. */
START_TEST(session_expiry_elapsed)
{
	MQTTClient pub = client("s-pub", 5);
	bool present = true;
	int fd;

	fd = raw_session("s-sub", MQTT_V5, true, true, 1, &present);
	ck_assert(!present);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "se/#", 1), 1);
	raw_disconnect(fd, MQTT_V5);
	publish(pub, 5, "se/a", "queued", 1);
	usleep(2500 * 1000);

	fd = raw_persistent("s-sub", MQTT_V5, false, &present);
	ck_assert(!present);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "sentinel", 1), 1);
	publish(pub, 5, "se/a", "after", 1);
	raw_expect_nothing(fd, MQTT_V5, pub);
	raw_disconnect(fd, MQTT_V5);
	pc_close(&pub);
}
END_TEST

/*
 * 5.0: a message queued for an offline session past its Message Expiry
 * Interval is not delivered [MQTT-3.3.2-5]; one still alive carries the
 * time it has left [MQTT-3.3.2-6].
 */
START_TEST(session_queued_message_expiry)
{
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p = {
		.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL,
	};
	MQTTClient pub = client("s-pub", 5);
	struct mqtt_packet pkt;
	uint8_t buf[256];
	bool present;
	int fd;

	fd = raw_persistent("s-sub", MQTT_V5, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "me/#", 1), 1);
	raw_disconnect(fd, MQTT_V5);
	p.value.integer4 = 1;
	MQTTProperties_add(&props, &p);
	ck_assert_int_eq(pc_publish(pub, 5, "me/short", "gone", 4, 1, false,
				    &props), 0);
	MQTTProperties_free(&props);
	p.value.integer4 = 60;
	MQTTProperties_add(&props, &p);
	ck_assert_int_eq(pc_publish(pub, 5, "me/long", "alive", 5, 1, false,
				    &props), 0);
	MQTTProperties_free(&props);
	usleep(2000 * 1000);

	fd = raw_persistent("s-sub", MQTT_V5, false, &present);
	ck_assert(present);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.topic.len, 7);
	ck_assert_mem_eq(pkt.u.publish.topic.data, "me/long", 7);
	ck_assert(mqtt_props_has(&pkt.u.publish.props,
				 MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
	ck_assert_msg(pkt.u.publish.props.message_expiry_interval >= 57 &&
		      pkt.u.publish.props.message_expiry_interval <= 59,
		      "expiry left %u after 2 s of 60",
		      pkt.u.publish.props.message_expiry_interval);
	ck_assert_int_eq(raw_send_ack(fd, MQTT_V5, MQTT_PUBACK,
				      pkt.u.publish.packet_id), 0);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 2, "sentinel", 1), 1);
	raw_expect_nothing(fd, MQTT_V5, pub);
	raw_disconnect(fd, MQTT_V5);
	pc_close(&pub);
}
END_TEST

/*
 * 5.0: DISCONNECT setting Session Expiry when CONNECT had 0 is a Protocol
 * Error [MQTT-3.14.2-2]: DISCONNECT 0x82, and no session is kept.
 */
START_TEST(session_disconnect_expiry_from_zero_is_protocol_error)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	uint8_t buf[256];
	bool present;
	int fd;

	fd = raw_session("s-raw", MQTT_V5, false, false, 0, &present);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "pe/#", 1), 1);
	pkt.u.disconnect.props.session_expiry_interval = 30;
	mqtt_props_set(&pkt.u.disconnect.props,
		       MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_DISCONNECT);
	ck_assert_int_eq(pkt.u.disconnect.reason, MQTT_RC_PROTOCOL_ERROR);
	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 0);
	close(fd);

	fd = raw_persistent("s-raw", MQTT_V5, false, &present);
	ck_assert(!present);
	raw_disconnect(fd, MQTT_V5);
}
END_TEST

/* 5.0: DISCONNECT may set Session Expiry 0, ending the session then. */
START_TEST(session_disconnect_expiry_to_zero_ends_session)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	bool present = true;
	int fd;

	fd = raw_persistent("s-sub", MQTT_V5, true, &present);
	ck_assert(!present);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "x/#", 1), 1);
	pkt.u.disconnect.props.session_expiry_interval = 0;
	mqtt_props_set(&pkt.u.disconnect.props,
		       MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	ck_assert_int_eq(raw_send_packet(fd, &pkt, MQTT_V5), 0);
	ck_assert(raw_wait_closed(fd, WAIT_MS));
	close(fd);

	fd = raw_persistent("s-sub", MQTT_V5, false, &present);
	ck_assert(!present);
	raw_disconnect(fd, MQTT_V5);
}
END_TEST

/*
 * A QoS 1 PUBLISH not acknowledged before the connection dropped is sent
 * again on reconnect with DUP 1 and the same packet id [MQTT-4.4.0-1,
 * MQTT-3.3.1-1], before what was queued meanwhile [MQTT-4.6.0-1], and
 * only once.
 */
START_TEST(session_qos1_inflight_redelivered_with_dup)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	uint16_t id, again;
	bool present;
	int fd;

	fd = raw_persistent("s-raw", v, true, &present);
	ck_assert(!present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "if/1", 1), 1);
	publish(pub, v, "if/1", "hello", 1);
	id = raw_expect_publish(fd, v, "if/1", "hello", 1, false);
	raw_drop(fd, "s-raw"); /* no PUBACK */
	publish(pub, v, "if/1", "while away", 1);

	/* The one in flight first, as it was, then the queued one. */
	fd = raw_persistent("s-raw", v, false, &present);
	ck_assert(present);
	again = raw_expect_publish(fd, v, "if/1", "hello", 1, true);
	ck_assert_int_eq(again, id);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK, id), 0);
	raw_take(fd, v, "if/1", "while away", 1);
	publish(pub, v, "if/1", "next", 1);
	(void)raw_expect_publish(fd, v, "if/1", "next", 1, false);
	close(fd);
	pc_close(&pub);
}
END_TEST

/*
 * QoS 2 exactly once across a reconnect: after PUBREC the broker owes
 * PUBREL; on reconnect it sends PUBREL again [MQTT-4.4.0-1], not the
 * PUBLISH (5.0 [MQTT-4.3.3-5]: not re-sent once PUBREL was sent).
 */
START_TEST(session_qos2_pubrel_resent_not_publish)
{
	uint8_t v = (uint8_t)_i, buf[256];
	MQTTClient pub = client("s-pub", v);
	struct mqtt_packet pkt;
	bool present;
	uint16_t id;
	int fd;

	fd = raw_persistent("s-raw", v, true, &present);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "if/2", 2), 2);
	publish(pub, v, "if/2", "once", 2);
	id = raw_expect_publish(fd, v, "if/2", "once", 2, false);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBREC, id), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBREL);
	ck_assert_int_eq(pkt.u.ack.packet_id, id);
	raw_drop(fd, "s-raw"); /* no PUBCOMP */

	fd = raw_persistent("s-raw", v, false, &present);
	ck_assert(present);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBREL);
	ck_assert_int_eq(pkt.u.ack.packet_id, id);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBCOMP, id), 0);
	/* The next thing is the next message, not "once" again. */
	publish(pub, v, "if/2", "next", 2);
	(void)raw_expect_publish(fd, v, "if/2", "next", 2, false);
	close(fd);
	pc_close(&pub);
}
END_TEST

/*
 * QoS 2 from a publisher, exactly once across its reconnect: PUBLISH,
 * PUBREC, connection lost; the resent PUBLISH (DUP 1, same id) is
 * acknowledged again but not delivered again until PUBREL (3.1.1
 * [MQTT-4.3.3-2], 5.0 [MQTT-4.3.3-10]: "MUST NOT cause duplicate messages
 * to be delivered to any onward recipients"), then PUBREL, PUBCOMP.
 */
START_TEST(session_qos2_inbound_exactly_once_across_reconnect)
{
	uint8_t v = (uint8_t)_i, buf[256];
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	MQTTClient pub;
	bool present;
	int sub, fd;

	sub = raw_session("s-sub", v, false, false, 0, &present);
	ck_assert_int_eq(raw_subscribe(sub, v, 1, "sentinel", 1), 1);
	ck_assert_int_eq(raw_subscribe(sub, v, 2, "x2/#", 2), 2);

	fd = raw_persistent("s-pub2", v, true, &present);
	pkt.u.publish.qos = 2;
	pkt.u.publish.packet_id = 42;
	pkt.u.publish.topic.data = (const uint8_t *)"x2/a";
	pkt.u.publish.topic.len = 4;
	pkt.u.publish.payload.data = (const uint8_t *)"only once";
	pkt.u.publish.payload.len = 9;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBREC);
	ck_assert_int_eq(pkt.u.ack.packet_id, 42);
	raw_drop(fd, "s-pub2");

	fd = raw_persistent("s-pub2", v, false, &present);
	ck_assert(present);
	pkt.type = MQTT_PUBLISH;
	memset(&pkt.u, 0, sizeof(pkt.u));
	pkt.u.publish.qos = 2;
	pkt.u.publish.dup = true;
	pkt.u.publish.packet_id = 42;
	pkt.u.publish.topic.data = (const uint8_t *)"x2/a";
	pkt.u.publish.topic.len = 4;
	pkt.u.publish.payload.data = (const uint8_t *)"only once";
	pkt.u.publish.payload.len = 9;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, v), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBREC);
	ck_assert_int_eq(pkt.u.ack.packet_id, 42);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBREL, 42), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, v,
					  &pkt), MQTT_PUBCOMP);
	ck_assert_int_eq(pkt.u.ack.packet_id, 42);
	raw_disconnect(fd, v);

	/* The subscriber got it once, then the sentinel. */
	raw_take(sub, v, "x2/a", "only once", 2);
	pub = client("s-pub", v);
	raw_expect_nothing(sub, v, pub);
	pc_close(&pub);
	raw_disconnect(sub, v);
}
END_TEST

/* max_inflight_messages 2: a third QoS 1 PUBLISH waits for a PUBACK. */
START_TEST(session_max_inflight_messages)
{
	uint8_t v = (uint8_t)_i;
	MQTTClient pub = client("s-pub", v);
	uint16_t id1, id2;
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, v, "s-raw"), 0);
	ck_assert_int_eq(raw_subscribe(fd, v, 1, "mi/#", 1), 1);
	publish(pub, v, "mi/a", "m1", 1);
	publish(pub, v, "mi/a", "m2", 1);
	publish(pub, v, "mi/a", "m3", 1);
	publish(pub, v, "mi/a", "m4", 1);
	id1 = raw_expect_publish(fd, v, "mi/a", "m1", 1, false);
	id2 = raw_expect_publish(fd, v, "mi/a", "m2", 1, false);
	raw_expect_silence(fd);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK, id1), 0);
	(void)raw_expect_publish(fd, v, "mi/a", "m3", 1, false);
	raw_expect_silence(fd);
	ck_assert_int_eq(raw_send_ack(fd, v, MQTT_PUBACK, id2), 0);
	(void)raw_expect_publish(fd, v, "mi/a", "m4", 1, false);
	close(fd);
	pc_close(&pub);
}
END_TEST

/*
 * 5.0 Receive Maximum 1 from the client: one QoS 1/2 PUBLISH in flight;
 * a QoS 2 one counts until PUBCOMP [MQTT-3.3.4-9, section 4.9].
 */
START_TEST(session_receive_maximum_1)
{
	MQTTClient pub = client("s-pub", 5);
	struct mqtt_connect con;
	struct mqtt_packet pkt;
	uint8_t buf[256];
	uint16_t id;
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&con, MQTT_V5, "s-raw");
	con.props.receive_maximum = 1;
	mqtt_props_set(&con.props, MQTT_PROP_RECEIVE_MAXIMUM);
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &con, buf, sizeof(buf), NULL),
			 0);
	ck_assert_int_eq(raw_subscribe(fd, MQTT_V5, 1, "rm/#", 2), 2);
	publish(pub, 5, "rm/a", "m1", 1);
	publish(pub, 5, "rm/a", "m2", 2);
	publish(pub, 5, "rm/a", "m3", 1);
	id = raw_expect_publish(fd, MQTT_V5, "rm/a", "m1", 1, false);
	raw_expect_silence(fd);
	ck_assert_int_eq(raw_send_ack(fd, MQTT_V5, MQTT_PUBACK, id), 0);
	id = raw_expect_publish(fd, MQTT_V5, "rm/a", "m2", 2, false);
	raw_expect_silence(fd);
	ck_assert_int_eq(raw_send_ack(fd, MQTT_V5, MQTT_PUBREC, id), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), MQTT_PUBREL);
	ck_assert_int_eq(pkt.u.ack.packet_id, id);
	raw_expect_silence(fd);
	ck_assert_int_eq(raw_send_ack(fd, MQTT_V5, MQTT_PUBCOMP, id), 0);
	(void)raw_expect_publish(fd, MQTT_V5, "rm/a", "m3", 1, false);
	close(fd);
	pc_close(&pub);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("05-session");
	TCase *tc = tcase_create("session");
	TCase *q0 = tcase_create("queue-qos0");
	TCase *mq = tcase_create("max-queued");
	TCase *mi = tcase_create("max-inflight");
	TCase *q0f = tcase_create("qos0-dropped-first");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, session_subscriptions_survive_reconnect, 4, 6);
	tcase_add_loop_test(tc, session_offline_messages_delivered_in_order,
			    4, 6);
	tcase_add_loop_test(tc, session_offline_qos0_not_queued, 4, 6);
	tcase_add_loop_test(tc, session_clean_start_discards, 4, 6);
	tcase_add_test(tc, session_expiry_elapsed);
	tcase_add_test(tc, session_queued_message_expiry);
	tcase_add_test(tc,
		       session_disconnect_expiry_from_zero_is_protocol_error);
	tcase_add_test(tc, session_disconnect_expiry_to_zero_ends_session);
	tcase_add_loop_test(tc, session_qos1_inflight_redelivered_with_dup,
			    4, 6);
	tcase_add_loop_test(tc, session_qos2_pubrel_resent_not_publish, 4, 6);
	tcase_add_loop_test(tc,
			    session_qos2_inbound_exactly_once_across_reconnect,
			    4, 6);
	tcase_add_test(tc, session_receive_maximum_1);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(q0, setup_queue_qos0, teardown);
	tcase_set_timeout(q0, 15);
	tcase_add_loop_test(q0, session_offline_qos0_queued_when_configured,
			    4, 6);
	suite_add_tcase(s, q0);

	tcase_add_checked_fixture(mq, setup_max_queued, teardown);
	tcase_set_timeout(mq, 15);
	tcase_add_loop_test(mq, session_max_queued_messages, 4, 6);
	suite_add_tcase(s, mq);

	tcase_add_checked_fixture(q0f, setup_qos0_first, teardown);
	tcase_set_timeout(q0f, 15);
	tcase_add_loop_test(q0f, session_queue_full_drops_qos0_first, 4, 6);
	suite_add_tcase(s, q0f);

	tcase_add_checked_fixture(mi, setup_max_inflight, teardown);
	tcase_set_timeout(mi, 15);
	tcase_add_loop_test(mi, session_max_inflight_messages, 4, 6);
	suite_add_tcase(s, mi);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(session_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
