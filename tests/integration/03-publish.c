/*
 * Integration: PUBLISH and its acknowledgements on the wire, and what a
 * real cicada does with malformed or forbidden packets after a good
 * CONNECT.  Raw sockets send the exact bytes and check the exact reply:
 * MQTT 5 gets a DISCONNECT with the reason code before the close, 3.1.1
 * just the close (5.0 section 4.13, 3.1.1 section 4.8).  The QoS 1 and 2
 * flows, the reason codes of PUBACK/PUBREC/PUBCOMP, Payload Format
 * Indicator and Topic Alias are checked end to end with a subscriber,
 * large payloads with fast and slow readers, and one client's bad packet
 * must leave the others untouched.  Each test
 * gets a fresh broker (checked fixture).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

/* Loop tests run index 0 as MQTT 3.1.1 and index 1 as MQTT 5.0. */
#define VERSION(i) ((uint8_t)((i) == 0 ? MQTT_V311 : MQTT_V5))
#define WAIT_MS 3000
/* How long "nothing arrives" is watched for. */
#define QUIET_MS 200

static struct broker_proc broker;

static void setup(void)
{
	broker_start_checked(&broker, NULL);
}

static void teardown(void)
{
	if (broker.pid > 0)
		ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker); /* kept when a test fails */
}

/* ------------------------------------------------------------ raw I/O */

/* A raw client connected (clean, keep alive 60) with the level given. */
static int raw_client(uint8_t version, const char *client_id)
{
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_mqtt_connect(fd, version, client_id), 0);
	return fd;
}

static void send_bytes(int fd, const uint8_t *bytes, size_t len)
{
	ck_assert_int_eq(raw_send(fd, bytes, len), 0);
}

static void expect_bytes(int fd, const uint8_t *want, size_t len)
{
	raw_expect_bytes(fd, want, len, WAIT_MS);
}

static void expect_closed(int fd)
{
	raw_expect_closed(fd, WAIT_MS);
}

static void expect_quiet(int fd)
{
	raw_expect_quiet(fd, QUIET_MS);
}

/*
 * MQTT 5: DISCONNECT with the reason (and no Session Expiry Interval
 * [MQTT-3.14.2-2]; a Reason String may explain it), then close; 3.1.1:
 * just close.
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

/* The connection is alive: PINGREQ gets PINGRESP. */
static void expect_alive(int fd)
{
	const uint8_t pingreq[] = { 0xC0, 0x00 };
	const uint8_t pingresp[] = { 0xD0, 0x00 };

	send_bytes(fd, pingreq, sizeof(pingreq));
	expect_bytes(fd, pingresp, sizeof(pingresp));
}

/*
 * Connect, send bytes, expect the reason (5.0) or the close (3.1.1).
 * For 5.0, v5_extra is inserted at offset v5_at (an empty property block
 * where 3.1.1 has none); v5_at 0 means the bytes are the same for both.
 */
static void check_refused(uint8_t version, const uint8_t *bytes, size_t len,
			  size_t v5_at, uint8_t reason)
{
	uint8_t pkt[64];
	size_t n = len;
	int fd = raw_client(version, "bad");

	ck_assert_uint_lt(len, sizeof(pkt));
	memcpy(pkt, bytes, len);
	if (version == MQTT_V5 && v5_at) {
		/* insert Property Length 0 and grow the remaining length */
		memmove(pkt + v5_at + 1, pkt + v5_at, len - v5_at);
		pkt[v5_at] = 0x00;
		pkt[1]++;
		n++;
	}
	send_bytes(fd, pkt, n);
	expect_disconnect(fd, version, reason);
	close(fd);
}

/* A PUBLISH through the codec; props may be NULL. */
static void send_publish(int fd, uint8_t version, const char *topic,
			 size_t topic_len, const void *payload,
			 size_t payload_len, uint8_t qos, bool dup,
			 uint16_t packet_id, const struct mqtt_props *props)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };

	pkt.u.publish.qos = qos;
	pkt.u.publish.dup = dup;
	pkt.u.publish.packet_id = packet_id;
	pkt.u.publish.topic.data = (const uint8_t *)topic;
	pkt.u.publish.topic.len = topic_len;
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = payload_len;
	if (props)
		pkt.u.publish.props = *props;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, version), 0);
}

static void send_publish_str(int fd, uint8_t version, const char *topic,
			     const char *payload, uint8_t qos,
			     uint16_t packet_id,
			     const struct mqtt_props *props)
{
	send_publish(fd, version, topic, strlen(topic), payload,
		     strlen(payload), qos, false, packet_id, props);
}

/*
 * An acknowledgement (PUBREL with flags 0010): 3.1.1 and 5.0 success are
 * 4 bytes [MQTT-3.4.2-1]; 5.0 with a reason has it, and a Reason String
 * saying why.
 */
static void expect_ack(int fd, uint8_t version, uint8_t type,
		       uint16_t packet_id, uint8_t reason)
{
	uint8_t want[4] = { (uint8_t)(type << 4 |
				      (type == MQTT_PUBREL ? 0x02 : 0)), 0x02,
			    (uint8_t)(packet_id >> 8), (uint8_t)packet_id };
	struct mqtt_packet pkt;
	uint8_t buf[512];

	if (version != MQTT_V5 || reason == 0) {
		expect_bytes(fd, want, 4);
		return;
	}
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS,
					  MQTT_V5, &pkt), type);
	ck_assert_uint_eq(pkt.u.ack.packet_id, packet_id);
	ck_assert_uint_eq(pkt.u.ack.reason, reason);
	ck_assert(mqtt_props_has(&pkt.u.ack.props, MQTT_PROP_REASON_STRING));
	ck_assert_uint_gt(pkt.u.ack.props.reason_string.len, 0);
}

static void send_ack(int fd, uint8_t type, uint16_t packet_id)
{
	const uint8_t pkt[] = { (uint8_t)(type << 4 |
					  (type == MQTT_PUBREL ? 0x02 : 0)),
				0x02, (uint8_t)(packet_id >> 8),
				(uint8_t)packet_id };

	send_bytes(fd, pkt, sizeof(pkt));
}

/* A raw subscriber of filter at QoS qos (SUBACK checked). */
static int raw_subscriber(uint8_t version, const char *id,
			  const char *filter, uint8_t qos)
{
	int fd = raw_client(version, id);

	ck_assert_int_eq(raw_subscribe(fd, version, 1, filter, qos), qos);
	return fd;
}

/*
 * The next packet on a raw subscriber is a PUBLISH of topic and payload
 * at the QoS given; *out (may be NULL) gets it, views into buf.
 */
static void expect_publish(int fd, uint8_t version, const char *topic,
			   const char *payload, uint8_t qos, uint8_t *buf,
			   size_t cap, struct mqtt_publish *out)
{
	struct mqtt_packet pkt;

	ck_assert_int_eq(raw_recv_decoded(fd, buf, cap, WAIT_MS, version,
					  &pkt), MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.topic.len, strlen(topic));
	ck_assert_mem_eq(pkt.u.publish.topic.data, topic, strlen(topic));
	ck_assert_uint_eq(pkt.u.publish.payload.len, strlen(payload));
	ck_assert_mem_eq(pkt.u.publish.payload.data, payload,
			 strlen(payload));
	ck_assert_uint_eq(pkt.u.publish.qos, qos);
	if (out)
		*out = pkt.u.publish;
}

/* ------------------------------------------------------------ Paho */

static MQTTClient paho_subscriber(uint8_t version, const char *id,
				  const char *filter, int qos)
{
	MQTTClient c = pc_connect(&broker, id, version, true, 0, NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pc_subscribe(c, version, filter, qos, NULL), qos);
	return c;
}

static void paho_expect(MQTTClient c, const char *topic, const char *payload,
			int qos)
{
	MQTTClient_message *msg = NULL;
	char *t = NULL;
	int len = (int)strlen(payload);

	ck_assert_int_eq(pc_receive(c, WAIT_MS, &t, &msg), 1);
	ck_assert_str_eq(t, topic);
	ck_assert_int_eq(msg->payloadlen, len);
	ck_assert_mem_eq(msg->payload, payload, (size_t)len);
	ck_assert_int_eq(msg->qos, qos);
	ck_assert_int_eq(msg->dup, 0);
	pc_free(&t, &msg);
}

static void paho_expect_none(MQTTClient c)
{
	MQTTClient_message *msg = NULL;
	char *t = NULL;
	int rc = pc_receive(c, QUIET_MS, &t, &msg);

	ck_assert_msg(rc == 0, "unexpected message on %s", t ? t : "?");
	pc_free(&t, &msg);
}

/* ------------------------------------------------- malformed packets */

/* PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4]. */
START_TEST(test_publish_qos3)
{
	const uint8_t pkt[] = { 0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01 };

	check_refused(VERSION(_i), pkt, sizeof(pkt), 7, 0x81);
}
END_TEST

/* DUP on a QoS 0 PUBLISH is malformed [MQTT-3.3.1-2]. */
START_TEST(test_publish_dup_qos0)
{
	const uint8_t pkt[] = { 0x38, 0x03, 0x00, 0x01, 'a' };

	check_refused(VERSION(_i), pkt, sizeof(pkt), 5, 0x81);
}
END_TEST

/*
 * Reserved fixed-header flags [MQTT-2.1.3-1 (3.1.1), 2.1.3 (5.0)]:
 * SUBSCRIBE, UNSUBSCRIBE and PUBREL must carry 0010, the others 0000.
 */
START_TEST(test_reserved_header_flags)
{
	uint8_t v = VERSION(_i);
	const uint8_t subscribe[] = { 0x80, 0x06, 0x00, 0x01, 0x00, 0x01,
				      'a', 0x00 };
	const uint8_t unsubscribe[] = { 0xA0, 0x05, 0x00, 0x01, 0x00, 0x01,
					'a' };
	const uint8_t pubrel[] = { 0x60, 0x02, 0x00, 0x01 };
	const uint8_t pingreq[] = { 0xC1, 0x00 };
	const uint8_t disconnect[] = { 0xE4, 0x00 };

	check_refused(v, subscribe, sizeof(subscribe), 4, 0x81);
	check_refused(v, unsubscribe, sizeof(unsubscribe), 4, 0x81);
	check_refused(v, pubrel, sizeof(pubrel), 0, 0x81);
	check_refused(v, pingreq, sizeof(pingreq), 0, 0x81);
	check_refused(v, disconnect, sizeof(disconnect), 0, 0x81);
}
END_TEST

/*
 * Wildcards in a topic name [MQTT-3.3.2-2]: 5.0 answers 0x90 Topic Name
 * invalid; nothing is delivered to a subscriber of '#'.
 */
START_TEST(test_wildcard_in_topic_name)
{
	uint8_t v = VERSION(_i);
	static const char *topics[] = { "a/+", "a/#", "#", "+", "a+b" };
	int sub = raw_subscriber(v, "sub", "#", 0);

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		int fd = raw_client(v, "bad");

		send_publish_str(fd, v, topics[i], "x", 0, 0, NULL);
		expect_disconnect(fd, v, MQTT_RC_TOPIC_NAME_INVALID);
		close(fd);
	}
	expect_quiet(sub);
	close(sub);
}
END_TEST

/*
 * An empty topic name without a Topic Alias: 3.1.1 [MQTT-4.7.3-1] closes,
 * 5.0 answers 0x82 Protocol Error [MQTT-3.3.2-1 ff.].
 */
START_TEST(test_empty_topic_name)
{
	uint8_t v = VERSION(_i);
	const uint8_t pkt[] = { 0x30, 0x03, 0x00, 0x00, 'x' };

	check_refused(v, pkt, sizeof(pkt), 4, MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

/*
 * Ill-formed UTF-8 in a topic name, or U+0000, is malformed
 * [MQTT-1.5.3-1, -2 (3.1.1); MQTT-1.5.4-1, -2 (5.0)].
 */
START_TEST(test_invalid_utf8_topic)
{
	uint8_t v = VERSION(_i);
	static const struct {
		const char *bytes;
		size_t len;
	} topics[] = {
		{ "a\xff", 2 },		/* never valid */
		{ "a\xc0\xaf", 3 },	/* overlong '/' */
		{ "\xed\xa0\x80", 3 },	/* surrogate U+D800 */
		{ "a\x00" "b", 3 },	/* U+0000 */
		{ "a\xe2\x82", 3 },	/* truncated sequence */
	};

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		int fd = raw_client(v, "bad");

		send_publish(fd, v, topics[i].bytes, topics[i].len, "x", 1, 1,
			     false, 1, NULL);
		expect_disconnect(fd, v, MQTT_RC_MALFORMED_PACKET);
		close(fd);
	}
}
END_TEST

/*
 * A remaining length with a fifth byte is malformed (section 2.2.3 / 1.5.5);
 * so are a field running past the packet end and bytes after the last
 * field.
 */
START_TEST(test_bad_lengths)
{
	uint8_t v = VERSION(_i);
	const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	const uint8_t short_topic[] = { 0x30, 0x03, 0x00, 0x05, 'a' };
	const uint8_t ping_body[] = { 0xC0, 0x01, 0x00 };
	const uint8_t subscribe_no_options[] = { 0x82, 0x05, 0x00, 0x01,
						 0x00, 0x01, 'a' };

	check_refused(v, five, sizeof(five), 0, MQTT_RC_MALFORMED_PACKET);
	check_refused(v, short_topic, sizeof(short_topic), 0,
		      MQTT_RC_MALFORMED_PACKET);
	check_refused(v, ping_body, sizeof(ping_body), 0,
		      MQTT_RC_MALFORMED_PACKET);
	check_refused(v, subscribe_no_options, sizeof(subscribe_no_options),
		      4, MQTT_RC_MALFORMED_PACKET);
}
END_TEST

/*
 * SUBSCRIBE or UNSUBSCRIBE without any filter is a Protocol Error
 * [MQTT-3.8.3-3, MQTT-3.10.3-2]: 5.0 DISCONNECT 0x82, 3.1.1 closed.
 */
START_TEST(test_empty_subscribe)
{
	uint8_t v = VERSION(_i);
	const uint8_t subscribe[] = { 0x82, 0x02, 0x00, 0x01 };
	const uint8_t unsubscribe[] = { 0xA2, 0x02, 0x00, 0x01 };

	check_refused(v, subscribe, sizeof(subscribe), 4,
		      MQTT_RC_PROTOCOL_ERROR);
	check_refused(v, unsubscribe, sizeof(unsubscribe), 4,
		      MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

/*
 * Packet identifier 0 on a QoS 1 PUBLISH or a SUBSCRIBE [MQTT-2.3.1-1
 * (3.1.1), MQTT-2.2.1-3 (5.0)]: parsed but not allowed, a Protocol Error.
 */
START_TEST(test_packet_id_zero)
{
	uint8_t v = VERSION(_i);
	const uint8_t publish[] = { 0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x00,
				    'x' };
	const uint8_t subscribe[] = { 0x82, 0x06, 0x00, 0x00, 0x00, 0x01,
				      'a', 0x00 };

	check_refused(v, publish, sizeof(publish), 7, MQTT_RC_PROTOCOL_ERROR);
	check_refused(v, subscribe, sizeof(subscribe), 4,
		      MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

/*
 * Packets only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP) are
 * a Protocol Error from a client.
 */
START_TEST(test_server_packets_from_client)
{
	uint8_t v = VERSION(_i);
	const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };
	const uint8_t suback[] = { 0x90, 0x03, 0x00, 0x01, 0x00 };
	const uint8_t pingresp[] = { 0xD0, 0x00 };

	if (v == MQTT_V5) {
		const uint8_t connack5[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };
		const uint8_t suback5[] = { 0x90, 0x04, 0x00, 0x01, 0x00,
					    0x00 };

		check_refused(v, connack5, sizeof(connack5), 0,
			      MQTT_RC_PROTOCOL_ERROR);
		check_refused(v, suback5, sizeof(suback5), 0,
			      MQTT_RC_PROTOCOL_ERROR);
	} else {
		check_refused(v, connack, sizeof(connack), 0,
			      MQTT_RC_PROTOCOL_ERROR);
		check_refused(v, suback, sizeof(suback), 0,
			      MQTT_RC_PROTOCOL_ERROR);
	}
	check_refused(v, pingresp, sizeof(pingresp), 0, MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

/*
 * Subscription options: reserved bits (2-7 in 3.1.1 [MQTT-3.8.3-4], 6-7
 * in 5.0 [MQTT-3.8.3-5]) and QoS 3 are malformed; in 5.0 Retain Handling
 * 3 [MQTT-3.8.3-6 ff.], No Local on a shared subscription
 * [MQTT-3.8.3-4] and Subscription Identifier 0 [MQTT-3.8.2-? (5.0
 * section 3.8.2.1.2)] are Protocol Errors.
 */
START_TEST(test_bad_subscription_options)
{
	uint8_t v = VERSION(_i);
	const uint8_t qos3[] = { 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a',
				 0x03 };
	uint8_t reserved[] = { 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a',
			       0xC0 };

	check_refused(v, qos3, sizeof(qos3), 4, MQTT_RC_MALFORMED_PACKET);
	check_refused(v, reserved, sizeof(reserved), 4,
		      MQTT_RC_MALFORMED_PACKET);
	if (v == MQTT_V311) {
		reserved[7] = 0x04; /* No Local: reserved in 3.1.1 */
		check_refused(v, reserved, sizeof(reserved), 0, 0);
		return;
	}
	{
		const uint8_t rh3[] = { 0x82, 0x07, 0x00, 0x01, 0x00, 0x00,
					0x01, 'a', 0x30 };
		const uint8_t shared_nl[] = { 0x82, 0x10, 0x00, 0x01, 0x00,
					      0x00, 0x0A, '$', 's', 'h', 'a',
					      'r', 'e', '/', 'g', '/', 'a',
					      0x04 };
		const uint8_t sub_id0[] = { 0x82, 0x09, 0x00, 0x01, 0x02, 0x0B,
					    0x00, 0x00, 0x01, 'a', 0x00 };

		check_refused(v, rh3, sizeof(rh3), 0, MQTT_RC_PROTOCOL_ERROR);
		check_refused(v, shared_nl, sizeof(shared_nl), 0,
			      MQTT_RC_PROTOCOL_ERROR);
		check_refused(v, sub_id0, sizeof(sub_id0), 0,
			      MQTT_RC_PROTOCOL_ERROR);
	}
}
END_TEST

/*
 * AUTH: a reserved packet type in 3.1.1 (malformed, closed); in 5.0 a
 * Protocol Error when CONNECT had no Authentication Method
 * (5.0 section 4.12).
 */
START_TEST(test_auth_packet)
{
	uint8_t v = VERSION(_i);
	const uint8_t auth[] = { 0xF0, 0x00 };

	check_refused(v, auth, sizeof(auth), 0, MQTT_RC_PROTOCOL_ERROR);
}
END_TEST

/* ------------------------------------------------- MQTT 5 properties */

/*
 * Topic Alias 0 [MQTT-3.3.2-8] and one above the Topic Alias Maximum the
 * broker announced (10) [MQTT-3.3.2-9]: DISCONNECT 0x94; 10 itself is
 * accepted.
 */
START_TEST(test_topic_alias_invalid)
{
	struct mqtt_props props = { 0 };
	int fd;

	mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
	props.topic_alias = 0;
	fd = raw_client(MQTT_V5, "alias");
	send_publish_str(fd, MQTT_V5, "ta/t", "x", 1, 1, &props);
	expect_disconnect(fd, MQTT_V5, MQTT_RC_TOPIC_ALIAS_INVALID);
	close(fd);

	props.topic_alias = 11;
	fd = raw_client(MQTT_V5, "alias");
	send_publish_str(fd, MQTT_V5, "ta/t", "x", 1, 1, &props);
	expect_disconnect(fd, MQTT_V5, MQTT_RC_TOPIC_ALIAS_INVALID);
	close(fd);

	props.topic_alias = 10;
	fd = raw_client(MQTT_V5, "alias");
	send_publish_str(fd, MQTT_V5, "ta/t", "x", 1, 1, &props);
	expect_ack(fd, MQTT_V5, MQTT_PUBACK, 1,
		   MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	close(fd);
}
END_TEST

/*
 * Topic Alias round trip: a PUBLISH with a topic and alias 3 sets the
 * alias; one with an empty topic and alias 3 is delivered on the full
 * topic; a new topic with alias 3 remaps it.  The subscriber set no Topic
 * Alias Maximum, so it never gets an alias [MQTT-3.3.2-17 (5.0)].
 */
START_TEST(test_topic_alias_round_trip)
{
	static const struct {
		const char *topic, *payload, *delivered_on;
	} steps[] = {
		{ "ta/x", "one", "ta/x" },
		{ "", "two", "ta/x" },
		{ "", "three", "ta/x" },
		{ "ta/y", "four", "ta/y" },
		{ "", "five", "ta/y" },
	};
	int sub = raw_subscriber(MQTT_V5, "sub", "ta/#", 1);
	int pub = raw_client(MQTT_V5, "pub");
	struct mqtt_props props = { 0 };
	uint8_t buf[256];

	mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
	props.topic_alias = 3;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct mqtt_publish got;

		send_publish_str(pub, MQTT_V5, steps[i].topic,
				 steps[i].payload, 1, (uint16_t)(i + 1),
				 &props);
		expect_ack(pub, MQTT_V5, MQTT_PUBACK, (uint16_t)(i + 1), 0);
		expect_publish(sub, MQTT_V5, steps[i].delivered_on,
			       steps[i].payload, 1, buf, sizeof(buf), &got);
		ck_assert(!mqtt_props_has(&got.props, MQTT_PROP_TOPIC_ALIAS));
		send_ack(sub, MQTT_PUBACK, got.packet_id);
	}
	/* the alias is per connection: another client cannot use it */
	{
		int other = raw_client(MQTT_V5, "other");

		send_publish_str(other, MQTT_V5, "", "six", 1, 1, &props);
		expect_disconnect(other, MQTT_V5, MQTT_RC_PROTOCOL_ERROR);
		close(other);
	}
	expect_quiet(sub);
	expect_alive(pub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * Topic aliases from the broker [MQTT-3.1.2-26, MQTT-3.3.2-11]: a subscriber announcing
 * Topic Alias Maximum 2 gets its first two topics with aliases 1 and 2,
 * then those topics as an empty name plus the alias, and a third topic in
 * full without one; never an alias above 2.  A Paho MQTT 5 subscriber
 * with a maximum resolves them back to the topic names.
 */
START_TEST(test_topic_alias_to_client)
{
	static const struct {
		const char *topic, *sent_name;
		uint16_t alias;
	} steps[] = {
		{ "tc/aaa", "tc/aaa", 1 },
		{ "tc/bbb", "tc/bbb", 2 },
		{ "tc/aaa", "", 1 },
		{ "tc/ccc", "tc/ccc", 0 },
		{ "tc/bbb", "", 2 },
		{ "tc/ccc", "tc/ccc", 0 },
	};
	struct mqtt_connect conn;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int sub = raw_connect(&broker), pub = raw_client(MQTT_V5, "pub");

	raw_connect_init(&conn, MQTT_V5, "aliased");
	mqtt_props_set(&conn.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	conn.props.topic_alias_maximum = 2;
	ck_assert_int_eq(raw_mqtt_connect_ex(sub, &conn, buf, sizeof(buf),
					     &ack), 0);
	ck_assert_int_eq(raw_subscribe(sub, MQTT_V5, 1, "tc/#", 0), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct mqtt_publish got;

		send_publish_str(pub, MQTT_V5, steps[i].topic, "p", 0, 0,
				 NULL);
		expect_publish(sub, MQTT_V5, steps[i].sent_name, "p", 0, buf,
			       sizeof(buf), &got);
		ck_assert_msg(mqtt_props_has(&got.props,
					     MQTT_PROP_TOPIC_ALIAS) ==
			      (steps[i].alias != 0), "step %zu", i);
		if (steps[i].alias)
			ck_assert_uint_eq(got.props.topic_alias,
					  steps[i].alias);
	}
	close(sub);
	close(pub);
}
END_TEST

/*
 * An empty topic with an alias never set is a Protocol Error
 * (5.0 section 3.3.2.3.4).
 */
START_TEST(test_topic_alias_unknown)
{
	struct mqtt_props props = { 0 };
	int fd = raw_client(MQTT_V5, "alias");

	mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
	props.topic_alias = 4;
	send_publish_str(fd, MQTT_V5, "", "x", 0, 0, &props);
	expect_disconnect(fd, MQTT_V5, MQTT_RC_PROTOCOL_ERROR);
	close(fd);
}
END_TEST

/*
 * A Subscription Identifier in a PUBLISH from a client is a Protocol
 * Error [MQTT-3.3.4-6].
 */
START_TEST(test_publish_with_subscription_id)
{
	struct mqtt_props props = { 0 };
	int sub = raw_subscriber(MQTT_V5, "sub", "sid/t", 0);
	int fd = raw_client(MQTT_V5, "sid");

	mqtt_props_set(&props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	props.subscription_id = 5;
	send_publish_str(fd, MQTT_V5, "sid/t", "x", 1, 1, &props);
	expect_disconnect(fd, MQTT_V5, MQTT_RC_PROTOCOL_ERROR);
	close(fd);
	expect_quiet(sub);
	close(sub);
}
END_TEST

/*
 * Payload Format Indicator 1 promises UTF-8; a payload that is not may be
 * refused with 0x99 Payload format invalid (5.0 section 3.3.2.3.2): PUBACK
 * or PUBREC 0x99 for QoS 1 and 2, DISCONNECT 0x99 for QoS 0.  It is not
 * delivered.  A valid one is, with the indicator forwarded
 * [MQTT-3.3.2-4].
 */
START_TEST(test_payload_format_invalid)
{
	const char bad[] = { 'o', 'k', (char)0xFF, (char)0xFE };
	struct mqtt_props props = { 0 };
	int sub = raw_subscriber(MQTT_V5, "sub", "pf/t", 1);
	int pub = raw_client(MQTT_V5, "pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	mqtt_props_set(&props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	props.payload_format_indicator = 1;
	send_publish(pub, MQTT_V5, "pf/t", 4, bad, sizeof(bad), 1, false, 9,
		     &props);
	expect_ack(pub, MQTT_V5, MQTT_PUBACK, 9,
		   MQTT_RC_PAYLOAD_FORMAT_INVALID);
	send_publish(pub, MQTT_V5, "pf/t", 4, bad, sizeof(bad), 2, false, 10,
		     &props);
	expect_ack(pub, MQTT_V5, MQTT_PUBREC, 10,
		   MQTT_RC_PAYLOAD_FORMAT_INVALID);

	send_publish_str(pub, MQTT_V5, "pf/t", "h\xc3\xa9llo", 1, 11, &props);
	expect_ack(pub, MQTT_V5, MQTT_PUBACK, 11, 0);
	expect_publish(sub, MQTT_V5, "pf/t", "h\xc3\xa9llo", 1, buf,
		       sizeof(buf), &got);
	ck_assert(mqtt_props_has(&got.props,
				 MQTT_PROP_PAYLOAD_FORMAT_INDICATOR));
	ck_assert_uint_eq(got.props.payload_format_indicator, 1);
	send_ack(sub, MQTT_PUBACK, got.packet_id);

	send_publish(pub, MQTT_V5, "pf/t", 4, bad, sizeof(bad), 0, false, 0,
		     &props);
	expect_disconnect(pub, MQTT_V5, MQTT_RC_PAYLOAD_FORMAT_INVALID);
	close(pub);
	expect_quiet(sub);
	close(sub);
}
END_TEST

/* ------------------------------------------------- QoS flows */

/*
 * QoS 1: PUBACK with the packet id, in 5.0 the short form for Success
 * [MQTT-3.4.2-1]; the message reaches the subscriber once.
 */
START_TEST(test_qos1_puback)
{
	uint8_t v = VERSION(_i);
	MQTTClient sub = paho_subscriber(v, "sub", "q1/t", 1);
	int pub = raw_client(v, "pub");

	send_publish_str(pub, v, "q1/t", "one", 1, 0x1234, NULL);
	expect_ack(pub, v, MQTT_PUBACK, 0x1234, 0);
	paho_expect(sub, "q1/t", "one", 1);
	paho_expect_none(sub);
	expect_alive(pub);
	close(pub);
	pc_close(&sub);
}
END_TEST

/*
 * With no subscriber, 5.0 may say 0x10 No matching subscribers in PUBACK
 * and PUBREC (a success code: the QoS 2 flow goes on to PUBCOMP); 3.1.1
 * has no reason codes.
 */
START_TEST(test_no_matching_subscribers)
{
	uint8_t v = VERSION(_i);
	uint8_t rc = v == MQTT_V5 ? MQTT_RC_NO_MATCHING_SUBSCRIBERS : 0;
	int pub = raw_client(v, "pub");

	send_publish_str(pub, v, "nobody/t", "x", 1, 5, NULL);
	expect_ack(pub, v, MQTT_PUBACK, 5, rc);
	send_publish_str(pub, v, "nobody/t", "x", 2, 6, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 6, rc);
	send_ack(pub, MQTT_PUBREL, 6);
	expect_ack(pub, v, MQTT_PUBCOMP, 6, 0);
	expect_alive(pub);
	close(pub);
}
END_TEST

/*
 * The QoS 2 flow with exact packets: PUBLISH -> PUBREC, a DUP resend of
 * the PUBLISH before PUBREL -> PUBREC again but no second delivery
 * [MQTT-4.3.3-9 (5.0), MQTT-4.3.3-2 (3.1.1) method B], PUBREL -> PUBCOMP.
 * After PUBCOMP the id is free: a new PUBLISH with it is a new message.
 */
START_TEST(test_qos2_flow)
{
	uint8_t v = VERSION(_i);
	MQTTClient sub = paho_subscriber(v, "sub", "q2/t", 2);
	int pub = raw_client(v, "pub");

	send_publish_str(pub, v, "q2/t", "first", 2, 7, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 7, 0);
	send_publish(pub, v, "q2/t", 4, "first", 5, 2, true, 7, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 7, 0);
	send_ack(pub, MQTT_PUBREL, 7);
	expect_ack(pub, v, MQTT_PUBCOMP, 7, 0);
	paho_expect(sub, "q2/t", "first", 2);
	paho_expect_none(sub);

	send_publish_str(pub, v, "q2/t", "second", 2, 7, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 7, 0);
	send_ack(pub, MQTT_PUBREL, 7);
	expect_ack(pub, v, MQTT_PUBCOMP, 7, 0);
	paho_expect(sub, "q2/t", "second", 2);
	paho_expect_none(sub);
	close(pub);
	pc_close(&sub);
}
END_TEST

/*
 * PUBREL for an id never received: PUBCOMP all the same
 * [MQTT-4.3.3-11 (5.0)], in 5.0 with 0x92 Packet Identifier not found;
 * the connection stays up.
 */
START_TEST(test_pubrel_unknown_id)
{
	uint8_t v = VERSION(_i);
	int fd = raw_client(v, "rel");

	send_ack(fd, MQTT_PUBREL, 0x1234);
	expect_ack(fd, v, MQTT_PUBCOMP, 0x1234,
		   v == MQTT_V5 ? MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND : 0);
	expect_alive(fd);
	close(fd);
}
END_TEST

/*
 * The QoS 2 flow towards a subscriber, exact packets: PUBLISH (DUP 0),
 * PUBREC from the client -> PUBREL from the broker, PUBCOMP ends it.  In
 * 5.0 a PUBREC with a failure reason ends the flow with no PUBREL
 * (section 4.3.3), and the next message flows normally.
 */
START_TEST(test_qos2_outbound_flow)
{
	uint8_t v = VERSION(_i);
	int sub = raw_subscriber(v, "sub", "out/t", 2);
	int pub = raw_client(v, "pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	send_publish_str(pub, v, "out/t", "one", 2, 1, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 1, 0);
	send_ack(pub, MQTT_PUBREL, 1);
	expect_ack(pub, v, MQTT_PUBCOMP, 1, 0);
	expect_publish(sub, v, "out/t", "one", 2, buf, sizeof(buf), &got);
	ck_assert(!got.dup);
	ck_assert(!got.retain);
	ck_assert_uint_ne(got.packet_id, 0);
	send_ack(sub, MQTT_PUBREC, got.packet_id);
	expect_ack(sub, v, MQTT_PUBREL, got.packet_id, 0);
	send_ack(sub, MQTT_PUBCOMP, got.packet_id);
	expect_quiet(sub);

	if (v == MQTT_V5) {
		const uint8_t refuse[] = { 0x50, 0x03, 0, 0, 0x80 };
		uint8_t pkt[sizeof(refuse)];

		send_publish_str(pub, v, "out/t", "two", 1, 2, NULL);
		expect_ack(pub, v, MQTT_PUBACK, 2, 0);
		expect_publish(sub, v, "out/t", "two", 1, buf, sizeof(buf),
			       &got);
		send_ack(sub, MQTT_PUBACK, got.packet_id);
		send_publish_str(pub, v, "out/t", "three", 2, 3, NULL);
		expect_ack(pub, v, MQTT_PUBREC, 3, 0);
		send_ack(pub, MQTT_PUBREL, 3);
		expect_ack(pub, v, MQTT_PUBCOMP, 3, 0);
		expect_publish(sub, v, "out/t", "three", 2, buf, sizeof(buf),
			       &got);
		memcpy(pkt, refuse, sizeof(pkt));
		pkt[2] = (uint8_t)(got.packet_id >> 8);
		pkt[3] = (uint8_t)got.packet_id;
		send_bytes(sub, pkt, sizeof(pkt));
		expect_quiet(sub);
	}
	send_publish_str(pub, v, "out/t", "four", 2, 4, NULL);
	expect_ack(pub, v, MQTT_PUBREC, 4, 0);
	send_ack(pub, MQTT_PUBREL, 4);
	expect_ack(pub, v, MQTT_PUBCOMP, 4, 0);
	expect_publish(sub, v, "out/t", "four", 2, buf, sizeof(buf), &got);
	send_ack(sub, MQTT_PUBREC, got.packet_id);
	expect_ack(sub, v, MQTT_PUBREL, got.packet_id, 0);
	send_ack(sub, MQTT_PUBCOMP, got.packet_id);
	expect_alive(sub);
	close(sub);
	close(pub);
}
END_TEST

/*
 * PUBREC for an id the broker never sent: 5.0 answers PUBREL 0x92
 * Packet Identifier not found; 3.1.1 a plain PUBREL.  PUBACK and PUBCOMP
 * for unknown ids are ignored.  The connection stays up.
 */
START_TEST(test_unknown_acks_from_client)
{
	uint8_t v = VERSION(_i);
	int fd = raw_client(v, "acks");

	send_ack(fd, MQTT_PUBREC, 0x0203);
	expect_ack(fd, v, MQTT_PUBREL, 0x0203,
		   v == MQTT_V5 ? MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND : 0);
	send_ack(fd, MQTT_PUBACK, 0x0304);
	send_ack(fd, MQTT_PUBCOMP, 0x0405);
	expect_quiet(fd);
	expect_alive(fd);
	close(fd);
}
END_TEST

/*
 * A 5.0 client's Maximum Packet Size: a message too large for it is not
 * sent to it [MQTT-3.1.2-24] but discarded as if sent [MQTT-3.1.2-25];
 * smaller ones around it arrive in order.
 */
START_TEST(test_client_maximum_packet_size)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	char big[200];
	uint8_t buf[256];
	int sub = raw_connect(&broker), pub;

	ck_assert_int_ge(sub, 0);
	raw_connect_init(&c, MQTT_V5, "small");
	mqtt_props_set(&c.props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	c.props.maximum_packet_size = 64;
	ck_assert_int_eq(raw_mqtt_connect_ex(sub, &c, buf, sizeof(buf), &ack),
			 0);
	ck_assert_int_eq(raw_subscribe(sub, MQTT_V5, 1, "mp/t", 0), 0);
	pub = raw_client(MQTT_V5, "pub");
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_publish_str(pub, MQTT_V5, "mp/t", "small", 0, 0, NULL);
	send_publish_str(pub, MQTT_V5, "mp/t", big, 0, 0, NULL);
	send_publish_str(pub, MQTT_V5, "mp/t", "end", 0, 0, NULL);
	expect_publish(sub, MQTT_V5, "mp/t", "small", 0, buf, sizeof(buf),
		       NULL);
	expect_publish(sub, MQTT_V5, "mp/t", "end", 0, buf, sizeof(buf),
		       NULL);
	expect_quiet(sub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * Properties forwarded unaltered (5.0 section 3.3.2.3): Content Type,
 * Response Topic, Correlation Data, User Properties in their order
 * [MQTT-3.3.2-18]; Message Expiry Interval counted down
 * [MQTT-3.3.2-6].
 */
START_TEST(test_properties_forwarded)
{
	const struct mqtt_user_prop users[] = {
		{ { (const uint8_t *)"zeta", 4 }, { (const uint8_t *)"1", 1 } },
		{ { (const uint8_t *)"alpha", 5 }, { (const uint8_t *)"2", 1 } },
		{ { (const uint8_t *)"zeta", 4 }, { (const uint8_t *)"3", 1 } },
	};
	static const char *const want_users[][2] = {
		{ "zeta", "1" }, { "alpha", "2" }, { "zeta", "3" },
	};
	const uint8_t corr[] = { 0x00, 0x01, 0xFF };
	struct mqtt_props props = { 0 };
	struct mqtt_publish got;
	struct mqtt_prop prop;
	size_t off = 0, nusers = 0;
	uint8_t buf[512];
	int sub = raw_subscriber(MQTT_V5, "sub", "fw/t", 1);
	int pub = raw_client(MQTT_V5, "pub");

	mqtt_props_set(&props, MQTT_PROP_CONTENT_TYPE);
	props.content_type.data = (const uint8_t *)"text/plain";
	props.content_type.len = 10;
	mqtt_props_set(&props, MQTT_PROP_RESPONSE_TOPIC);
	props.response_topic.data = (const uint8_t *)"fw/reply";
	props.response_topic.len = 8;
	mqtt_props_set(&props, MQTT_PROP_CORRELATION_DATA);
	props.correlation_data.data = corr;
	props.correlation_data.len = sizeof(corr);
	mqtt_props_set(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	props.message_expiry_interval = 60;
	mqtt_props_set(&props, MQTT_PROP_USER_PROPERTY);
	props.users = users;
	props.user_count = 3;
	send_publish_str(pub, MQTT_V5, "fw/t", "body", 1, 1, &props);
	expect_ack(pub, MQTT_V5, MQTT_PUBACK, 1, 0);
	expect_publish(sub, MQTT_V5, "fw/t", "body", 1, buf, sizeof(buf),
		       &got);
	ck_assert(mqtt_props_has(&got.props, MQTT_PROP_CONTENT_TYPE));
	ck_assert_uint_eq(got.props.content_type.len, 10);
	ck_assert_mem_eq(got.props.content_type.data, "text/plain", 10);
	ck_assert(mqtt_props_has(&got.props, MQTT_PROP_RESPONSE_TOPIC));
	ck_assert_uint_eq(got.props.response_topic.len, 8);
	ck_assert_mem_eq(got.props.response_topic.data, "fw/reply", 8);
	ck_assert(mqtt_props_has(&got.props, MQTT_PROP_CORRELATION_DATA));
	ck_assert_uint_eq(got.props.correlation_data.len, sizeof(corr));
	ck_assert_mem_eq(got.props.correlation_data.data, corr, sizeof(corr));
	ck_assert(mqtt_props_has(&got.props,
				 MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
	ck_assert_uint_le(got.props.message_expiry_interval, 60);
	ck_assert_uint_ge(got.props.message_expiry_interval, 58);
	ck_assert(!mqtt_props_has(&got.props,
				  MQTT_PROP_PAYLOAD_FORMAT_INDICATOR));
	ck_assert_uint_eq(got.props.user_count, 3);
	while (mqtt_prop_next(&got.props.raw, &off, &prop)) {
		if (prop.id != MQTT_PROP_USER_PROPERTY)
			continue;
		ck_assert_uint_lt(nusers, 3);
		ck_assert_uint_eq(prop.str.len, strlen(want_users[nusers][0]));
		ck_assert_mem_eq(prop.str.data, want_users[nusers][0],
				 prop.str.len);
		ck_assert_uint_eq(prop.value.len, 1);
		ck_assert_mem_eq(prop.value.data, want_users[nusers][1], 1);
		nusers++;
	}
	ck_assert_uint_eq(nusers, 3);
	send_ack(sub, MQTT_PUBACK, got.packet_id);
	close(pub);
	close(sub);
}
END_TEST

/* A 300 KiB payload goes through intact at QoS 1, between Paho clients. */
START_TEST(test_large_payload)
{
	uint8_t v = VERSION(_i);
	MQTTClient sub = paho_subscriber(v, "sub", "big/t", 1);
	MQTTClient pub = pc_connect(&broker, "pub", v, true, 0, NULL);
	size_t len = 300 * 1024;
	uint8_t *payload = malloc(len);
	MQTTClient_message *msg = NULL;
	char *t = NULL;

	ck_assert_ptr_nonnull(pub);
	ck_assert_ptr_nonnull(payload);
	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7 + i / 251);
	ck_assert_int_eq(pc_publish(pub, v, "big/t", payload, (int)len, 1,
				    false, NULL), 0);
	ck_assert_int_eq(pc_receive(sub, WAIT_MS, &t, &msg), 1);
	ck_assert_str_eq(t, "big/t");
	ck_assert_int_eq(msg->payloadlen, (int)len);
	ck_assert(memcmp(msg->payload, payload, len) == 0);
	pc_free(&t, &msg);
	free(payload);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

static void big_payload(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + i / 251 + seed * 31);
}

/*
 * Payloads of 16 KiB and more are written straight from the shared
 * message (writev) while the socket takes them, and buffered from where
 * it stopped when it does not.  Eight 512 KiB messages to a subscriber
 * that reads at once and to two that read only after the last one was
 * published (a 4 KiB receive buffer: the broker's writes stop part way):
 * every subscriber gets every byte, in order.
 */
START_TEST(test_large_payload_slow_readers)
{
	uint8_t v = VERSION(_i);
	enum { N = 8 };
	size_t len = 512 * 1024, cap = len + 1024;
	MQTTClient fast = paho_subscriber(v, "fast", "wv/#", 1);
	MQTTClient pub = pc_connect(&broker, "pub", v, true, 0, NULL);
	int slow[2] = { raw_subscriber(MQTT_V5, "slow5", "wv/#", 1),
			raw_subscriber(MQTT_V311, "slow4", "wv/#", 1) };
	uint8_t *payload = malloc(len), *buf = malloc(cap);
	int small = 65536;

	ck_assert_ptr_nonnull(pub);
	ck_assert_ptr_nonnull(payload);
	ck_assert_ptr_nonnull(buf);
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(setsockopt(slow[k], SOL_SOCKET, SO_RCVBUF,
					    &small, sizeof(small)), 0);
	for (unsigned i = 0; i < N; i++) {
		MQTTClient_message *msg = NULL;
		char *t = NULL;

		big_payload(payload, len, i);
		ck_assert_int_eq(pc_publish(pub, v, "wv/t", payload, (int)len,
					    1, false, NULL), 0);
		ck_assert_int_eq(pc_receive(fast, WAIT_MS, &t, &msg), 1);
		ck_assert_int_eq(msg->payloadlen, (int)len);
		ck_assert(memcmp(msg->payload, payload, len) == 0);
		pc_free(&t, &msg);
	}
	for (int k = 0; k < 2; k++) {
		uint8_t sv = k == 0 ? MQTT_V5 : MQTT_V311;

		for (unsigned i = 0; i < N; i++) {
			struct mqtt_packet pkt;

			int type = raw_recv_decoded(slow[k], buf, cap,
						    WAIT_MS, sv, &pkt);

			ck_assert_msg(type == MQTT_PUBLISH,
				      "slow reader %d: message %u: %d", k, i,
				      type);
			ck_assert_uint_eq(pkt.u.publish.qos, 1);
			ck_assert_uint_eq(pkt.u.publish.payload.len, len);
			big_payload(payload, len, i);
			ck_assert_msg(memcmp(pkt.u.publish.payload.data,
					     payload, len) == 0,
				      "slow reader %d: message %u differs", k,
				      i);
			send_ack(slow[k], MQTT_PUBACK, pkt.u.publish.packet_id);
		}
		raw_expect_quiet(slow[k], 100);
		close(slow[k]);
	}
	free(payload);
	free(buf);
	pc_close(&fast);
	pc_close(&pub);
}
END_TEST

/*
 * One client's malformed packets close that client only: a Paho
 * subscriber and publisher and a raw client carry on, before and after.
 */
START_TEST(test_others_unaffected)
{
	uint8_t v = VERSION(_i);
	static const uint8_t qos3[] = { 0x36, 0x05, 0x00, 0x01, 'a', 0x00,
					0x01 };
	static const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	static const uint8_t garbage[] = { 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t half[] = { 0x30, 0x7F, 0x00, 0x05, 'a', 'b' };
	static const struct {
		const uint8_t *bytes;
		size_t len;
	} bad[] = {
		{ qos3, sizeof(qos3) },
		{ five, sizeof(five) },
		{ garbage, sizeof(garbage) },
		{ half, sizeof(half) }, /* then the client goes away */
	};
	MQTTClient sub = paho_subscriber(v, "sub", "ok/#", 1);
	MQTTClient pub = pc_connect(&broker, "pub", v, true, 0, NULL);
	int bystander = raw_client(v, "bystander");

	ck_assert_ptr_nonnull(pub);
	ck_assert_int_eq(pc_publish_str(pub, v, "ok/before", "1", 0, false),
			 0);
	paho_expect(sub, "ok/before", "1", 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = raw_client(v, "bad");

		send_bytes(fd, bad[i].bytes, bad[i].len);
		if (bad[i].bytes != half)
			ck_assert(raw_wait_closed(fd, WAIT_MS));
		close(fd);
	}
	ck_assert_int_eq(pc_publish_str(pub, v, "ok/after", "2", 0, false),
			 0);
	paho_expect(sub, "ok/after", "2", 0);
	ck_assert(MQTTClient_isConnected(sub));
	ck_assert(MQTTClient_isConnected(pub));
	expect_alive(bystander);
	close(bystander);
	pc_close(&sub);
	pc_close(&pub);
}
END_TEST

static Suite *publish_suite(void)
{
	Suite *s = suite_create("03-publish");
	TCase *tc = tcase_create("malformed");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, test_publish_qos3, 0, 2);
	tcase_add_loop_test(tc, test_publish_dup_qos0, 0, 2);
	tcase_add_loop_test(tc, test_reserved_header_flags, 0, 2);
	tcase_add_loop_test(tc, test_wildcard_in_topic_name, 0, 2);
	tcase_add_loop_test(tc, test_empty_topic_name, 0, 2);
	tcase_add_loop_test(tc, test_invalid_utf8_topic, 0, 2);
	tcase_add_loop_test(tc, test_bad_lengths, 0, 2);
	tcase_add_loop_test(tc, test_empty_subscribe, 0, 2);
	tcase_add_loop_test(tc, test_packet_id_zero, 0, 2);
	tcase_add_loop_test(tc, test_server_packets_from_client, 0, 2);
	tcase_add_loop_test(tc, test_bad_subscription_options, 0, 2);
	tcase_add_loop_test(tc, test_auth_packet, 0, 2);
	tcase_add_loop_test(tc, test_others_unaffected, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("properties");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_topic_alias_invalid);
	tcase_add_test(tc, test_topic_alias_round_trip);
	tcase_add_test(tc, test_topic_alias_unknown);
	tcase_add_test(tc, test_topic_alias_to_client);
	tcase_add_test(tc, test_publish_with_subscription_id);
	tcase_add_test(tc, test_payload_format_invalid);
	tcase_add_test(tc, test_client_maximum_packet_size);
	tcase_add_test(tc, test_properties_forwarded);
	suite_add_tcase(s, tc);

	tc = tcase_create("flows");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, test_qos1_puback, 0, 2);
	tcase_add_loop_test(tc, test_no_matching_subscribers, 0, 2);
	tcase_add_loop_test(tc, test_qos2_flow, 0, 2);
	tcase_add_loop_test(tc, test_pubrel_unknown_id, 0, 2);
	tcase_add_loop_test(tc, test_qos2_outbound_flow, 0, 2);
	tcase_add_loop_test(tc, test_unknown_acks_from_client, 0, 2);
	tcase_add_loop_test(tc, test_large_payload, 0, 2);
	tcase_add_loop_test(tc, test_large_payload_slow_readers, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(publish_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
