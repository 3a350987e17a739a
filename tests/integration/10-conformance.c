/*
 * Integration: MQTT 5.0 normative statements that no other integration
 * test checks yet, one test per statement, named after it
 * (test_mqtt_3_3_2_7 checks [MQTT-3.3.2-7]).  docs/conformance.md maps
 * every statement of the specification to the test that checks it; this
 * file closes gaps in that table.  Raw sockets send exact bytes and read
 * exact replies (decoded where a Reason String may explain a refusal);
 * each test gets a fresh broker (checked fixture).
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocol/mqtt.h"
#include "tests/integration/harness.h"

#define V5 ((uint8_t)MQTT_V5)
#define WAIT_MS 3000
/* How long "nothing arrives" is watched for. */
#define QUIET_MS 300

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

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ raw I/O */

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
 * The next packet is of this type; *pkt views buf.  Returns the Reason
 * String's length, -1 when there is none.
 */
static int expect_decoded(int fd, int type, uint8_t *buf, size_t cap,
			  struct mqtt_packet *pkt)
{
	const struct mqtt_props *p;

	ck_assert_int_eq(raw_recv_decoded(fd, buf, cap, WAIT_MS, V5, pkt),
			 type);
	switch (type) {
	case MQTT_CONNACK:
		p = &pkt->u.connack.props;
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		p = &pkt->u.ack.props;
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		p = &pkt->u.suback.props;
		break;
	default:
		p = &pkt->u.disconnect.props;
		break;
	}
	if (!mqtt_props_has(p, MQTT_PROP_REASON_STRING))
		return -1;
	return (int)p->reason_string.len;
}

/*
 * DISCONNECT with this reason (< 0: any error, >= 0x80), then the close.
 * A Reason String may say why; nothing else is sent [MQTT-3.14.2-2].
 */
static void expect_disconnect_reason(int fd, int reason)
{
	struct mqtt_packet pkt;
	uint8_t buf[512];

	expect_decoded(fd, MQTT_DISCONNECT, buf, sizeof(buf), &pkt);
	if (reason < 0)
		ck_assert_uint_ge(pkt.u.disconnect.reason, 0x80);
	else
		ck_assert_uint_eq(pkt.u.disconnect.reason, (unsigned)reason);
	ck_assert(!mqtt_props_has(&pkt.u.disconnect.props,
				  MQTT_PROP_SESSION_EXPIRY_INTERVAL));
	expect_closed(fd);
}

/* DISCONNECT with exactly this reason, then the close. */
static void expect_disconnect(int fd, uint8_t reason)
{
	expect_disconnect_reason(fd, reason);
}

/* DISCONNECT with some error reason (>= 0x80), then the close. */
static void expect_disconnect_error(int fd)
{
	expect_disconnect_reason(fd, -1);
}

/* An UNSUBACK for packet_id with these reason codes. */
static void expect_unsuback(int fd, uint16_t packet_id,
			    const uint8_t *reasons, size_t n)
{
	struct mqtt_packet pkt;
	uint8_t buf[512];

	expect_decoded(fd, MQTT_UNSUBACK, buf, sizeof(buf), &pkt);
	ck_assert_uint_eq(pkt.u.suback.packet_id, packet_id);
	ck_assert_uint_eq(pkt.u.suback.reasons.len, n);
	ck_assert_mem_eq(pkt.u.suback.reasons.data, reasons, n);
}

/* The connection is alive: PINGREQ gets PINGRESP. */
static void expect_alive(int fd)
{
	const uint8_t pingreq[] = { 0xC0, 0x00 };
	const uint8_t pingresp[] = { 0xD0, 0x00 };

	send_bytes(fd, pingreq, sizeof(pingreq));
	expect_bytes(fd, pingresp, sizeof(pingresp));
}

/* A 5.0 client: Clean Start, Session Expiry (0: none sent), Receive
 * Maximum (0: none sent); *present (may be NULL) gets Session Present. */
static int client_ex(const char *id, bool clean, uint32_t expiry,
		     uint16_t receive_max, bool *present)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&c, V5, id);
	c.clean_start = clean;
	if (expiry) {
		mqtt_props_set(&c.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
		c.props.session_expiry_interval = expiry;
	}
	if (receive_max) {
		mqtt_props_set(&c.props, MQTT_PROP_RECEIVE_MAXIMUM);
		c.props.receive_maximum = receive_max;
	}
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 0);
	if (present)
		*present = ack.session_present;
	return fd;
}

static int client(const char *id)
{
	return client_ex(id, true, 0, 0, NULL);
}

static int subscriber(const char *id, const char *filter, uint8_t options)
{
	int fd = client(id);

	ck_assert_int_eq(raw_subscribe(fd, V5, 1, filter, options),
			 options & MQTT_SUBOPT_QOS_MASK);
	return fd;
}

/* A PUBLISH through the codec; props may be NULL. */
static void send_publish(int fd, const char *topic, const void *payload,
			 size_t payload_len, uint8_t qos, bool dup,
			 bool retain, uint16_t packet_id,
			 const struct mqtt_props *props)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };

	pkt.u.publish.qos = qos;
	pkt.u.publish.dup = dup;
	pkt.u.publish.retain = retain;
	pkt.u.publish.packet_id = packet_id;
	pkt.u.publish.topic.data = (const uint8_t *)topic;
	pkt.u.publish.topic.len = strlen(topic);
	pkt.u.publish.payload.data = payload;
	pkt.u.publish.payload.len = payload_len;
	if (props)
		pkt.u.publish.props = *props;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
}

static void publish_str(int fd, const char *topic, const char *payload,
			uint8_t qos, uint16_t packet_id)
{
	send_publish(fd, topic, payload, strlen(payload), qos, false, false,
		     packet_id, NULL);
}

/* PUBACK/PUBREC/PUBREL/PUBCOMP: short form for 0, else with the reason. */
static void expect_ack(int fd, uint8_t type, uint16_t packet_id,
		       uint8_t reason)
{
	uint8_t want[4] = { (uint8_t)(type << 4 |
				      (type == MQTT_PUBREL ? 0x02 : 0)), 0x02,
			    (uint8_t)(packet_id >> 8), (uint8_t)packet_id };
	struct mqtt_packet pkt;
	uint8_t buf[512];

	if (reason == 0) {
		expect_bytes(fd, want, 4);
		return;
	}
	/* with a reason: a Reason String may follow */
	expect_decoded(fd, type, buf, sizeof(buf), &pkt);
	ck_assert_uint_eq(pkt.u.ack.packet_id, packet_id);
	ck_assert_uint_eq(pkt.u.ack.reason, reason);
}

/* A success acknowledgement for a PUBLISH to a topic with a subscriber
 * (0x00) or without (0x10 No matching subscribers is a success too). */
static void expect_ack_ok(int fd, uint8_t type, uint16_t packet_id)
{
	uint8_t buf[64];
	ssize_t n = raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS);

	ck_assert_int_ge(n, 4);
	ck_assert_uint_eq(buf[0] >> 4, type);
	ck_assert_uint_eq((unsigned)(buf[2] << 8 | buf[3]), packet_id);
	if (n > 4)
		ck_assert_uint_lt(buf[4], 0x80);
}

/* PUBACK/PUBREC with a reason (the 5-byte form). */
static void send_ack_reason(int fd, uint8_t type, uint16_t packet_id,
			    uint8_t reason)
{
	const uint8_t pkt[] = { (uint8_t)(type << 4), 0x03,
				(uint8_t)(packet_id >> 8),
				(uint8_t)packet_id, reason };

	send_bytes(fd, pkt, sizeof(pkt));
}

static void send_ack(int fd, uint8_t type, uint16_t packet_id)
{
	const uint8_t pkt[] = { (uint8_t)(type << 4 |
					  (type == MQTT_PUBREL ? 0x02 : 0)),
				0x02, (uint8_t)(packet_id >> 8),
				(uint8_t)packet_id };

	send_bytes(fd, pkt, sizeof(pkt));
}

/* The next packet is a PUBLISH of topic and payload at qos; *out (may be
 * NULL) gets it, views into buf. */
static void expect_publish(int fd, const char *topic, const char *payload,
			   uint8_t qos, uint8_t *buf, size_t cap,
			   struct mqtt_publish *out)
{
	struct mqtt_packet pkt;

	ck_assert_int_eq(raw_recv_decoded(fd, buf, cap, WAIT_MS, V5, &pkt),
			 MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.topic.len, strlen(topic));
	ck_assert_mem_eq(pkt.u.publish.topic.data, topic, strlen(topic));
	ck_assert_uint_eq(pkt.u.publish.payload.len, strlen(payload));
	ck_assert_mem_eq(pkt.u.publish.payload.data, payload,
			 strlen(payload));
	ck_assert_uint_eq(pkt.u.publish.qos, qos);
	if (out)
		*out = pkt.u.publish;
}

/*
 * A 5.0 CONNECT (keep alive 60, no properties) with the flags given and
 * the payload bytes after them, written into out; returns its length.
 */
static size_t connect_bytes(uint8_t flags, const uint8_t *payload,
			    size_t payload_len, uint8_t *out)
{
	static const uint8_t head[] = { 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05 };
	size_t n = 0;

	ck_assert_uint_lt(11 + payload_len, 128);
	out[n++] = 0x10;
	out[n++] = (uint8_t)(11 + payload_len);
	memcpy(out + n, head, sizeof(head));
	n += sizeof(head);
	out[n++] = flags;
	out[n++] = 0x00;
	out[n++] = 0x3C;
	out[n++] = 0x00; /* Property Length */
	if (payload_len) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(out + n, payload, payload_len);
	return n + payload_len;
}

/* The CONNECT is refused: CONNACK with a reason >= 0x80 and Session
 * Present 0, then the close; or just the close. */
static void expect_connect_refused(const uint8_t *bytes, size_t len)
{
	uint8_t buf[256];
	int fd = raw_connect(&broker);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	send_bytes(fd, bytes, len);
	n = raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS);
	ck_assert_int_ge(n, 0);
	if (n > 0) {
		ck_assert_uint_eq(buf[0], 0x20);
		ck_assert_int_ge(n, 4);
		ck_assert_uint_eq(buf[2], 0x00);
		ck_assert_uint_ge(buf[3], 0x80);
		expect_closed(fd);
	}
	close(fd);
}

/* The CONNECT is accepted: CONNACK 0x00. */
static void expect_connect_accepted(const uint8_t *bytes, size_t len)
{
	uint8_t buf[256];
	int fd = raw_connect(&broker);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	send_bytes(fd, bytes, len);
	n = raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS);
	ck_assert_int_ge(n, 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x00);
	expect_alive(fd);
	close(fd);
}

/* ------------------------------------------------------- chapter 1 */

/*
 * [MQTT-1.5.4-3] U+FEFF (EF BB BF) in a topic is a character like any
 * other: not stripped by the receiver.  A subscriber of the topic with
 * the BOM gets the message on exactly those bytes; one of the topic
 * without it gets nothing.
 */
START_TEST(test_mqtt_1_5_4_3)
{
	static const char bom_topic[] = "bom/\xEF\xBB\xBF"
					"x";
	int with = subscriber("with", bom_topic, 0);
	int without = subscriber("without", "bom/x", 0);
	int pub = client("pub");
	uint8_t buf[256];

	publish_str(pub, bom_topic, "1", 0, 0);
	expect_publish(with, bom_topic, "1", 0, buf, sizeof(buf), NULL);
	expect_quiet(without);
	close(pub);
	close(without);
	close(with);
}
END_TEST

/*
 * [MQTT-1.5.5-1] The Remaining Length of what the broker sends uses the
 * fewest bytes: forwarded PUBLISH packets with remaining lengths 127,
 * 128, 16383 and 16384 carry a 1, 2, 2 and 3 byte Variable Byte Integer.
 */
START_TEST(test_mqtt_1_5_5_1)
{
	/* "vb/t" QoS 0, no properties: 2 + 4 + 1 bytes before the payload */
	static const size_t remaining[] = { 127, 128, 16383, 16384 };
	static const size_t width[] = { 1, 2, 2, 3 };
	static uint8_t payload[16384], buf[16400];
	int sub = subscriber("sub", "vb/t", 0);
	int pub = client("pub");

	memset(payload, 'p', sizeof(payload));
	for (size_t i = 0; i < 4; i++) {
		size_t value = 0, shift = 0, k = 1;
		ssize_t n;

		send_publish(pub, "vb/t", payload, remaining[i] - 7, 0, false,
			     false, 0, NULL);
		n = raw_recv_packet(sub, buf, sizeof(buf), WAIT_MS);
		ck_assert_int_gt(n, 0);
		ck_assert_uint_eq(buf[0], 0x30);
		do {
			value += (size_t)(buf[k] & 0x7F) << shift;
			shift += 7;
		} while (buf[k++] & 0x80);
		ck_assert_uint_eq(value, remaining[i]);
		ck_assert_uint_eq(k - 1, width[i]);
		ck_assert_uint_eq((size_t)n, 1 + width[i] + remaining[i]);
	}
	close(pub);
	close(sub);
}
END_TEST

/* ------------------------------------------------------- chapter 2 */

/*
 * [MQTT-2.2.1-4] Each new QoS 1 or 2 PUBLISH the broker sends gets a
 * non-zero Packet Identifier not in use: three unacknowledged messages
 * to a subscriber carry three different ones, DUP 0 on first sending
 * ([MQTT-4.3.2-1], [MQTT-4.3.2-2] at QoS 1; [MQTT-4.3.3-1],
 * [MQTT-4.3.3-2] at QoS 2).
 */
START_TEST(test_mqtt_2_2_1_4)
{
	for (uint8_t qos = 1; qos <= 2; qos++) {
		int sub = subscriber("sub", "pid/t", qos);
		int pub = client("pub");
		uint16_t ids[3];

		for (uint16_t i = 0; i < 3; i++) {
			publish_str(pub, "pid/t", "m", qos, (uint16_t)(i + 1));
			expect_ack(pub, qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
				   (uint16_t)(i + 1), 0);
		}
		for (int i = 0; i < 3; i++) {
			struct mqtt_publish got;
			uint8_t buf[256];

			expect_publish(sub, "pid/t", "m", qos, buf,
				       sizeof(buf), &got);
			ck_assert_uint_ne(got.packet_id, 0);
			ck_assert(!got.dup);
			ids[i] = got.packet_id;
		}
		ck_assert_uint_ne(ids[0], ids[1]);
		ck_assert_uint_ne(ids[0], ids[2]);
		ck_assert_uint_ne(ids[1], ids[2]);
		close(pub);
		close(sub);
	}
}
END_TEST

/*
 * [MQTT-2.2.1-6] SUBACK and UNSUBACK carry the Packet Identifier of the
 * SUBSCRIBE / UNSUBSCRIBE; with no properties, Property Length 0
 * [MQTT-2.2.2-1].  An UNSUBSCRIBE that deletes nothing is answered too
 * [MQTT-3.10.4-5].  Exact bytes.
 */
START_TEST(test_mqtt_2_2_1_6)
{
	static const uint8_t subscribe[] = { 0x82, 0x0A, 0x12, 0x34, 0x00,
					     0x00, 0x04, 's', '/', 'i', 'd',
					     0x01 };
	static const uint8_t suback[] = { 0x90, 0x04, 0x12, 0x34, 0x00,
					  0x01 };
	static const uint8_t unsubscribe[] = { 0xA2, 0x09, 0xBE, 0xEF, 0x00,
					       0x00, 0x04, 's', '/', 'i',
					       'd' };
	static const uint8_t unsuback[] = { 0xB0, 0x04, 0xBE, 0xEF, 0x00,
					    0x00 };
	static const uint8_t none[] = { MQTT_RC_NO_SUBSCRIPTION_EXISTED };
	int fd = client("ids");

	send_bytes(fd, subscribe, sizeof(subscribe));
	expect_bytes(fd, suback, sizeof(suback));
	send_bytes(fd, unsubscribe, sizeof(unsubscribe));
	expect_bytes(fd, unsuback, sizeof(unsuback));
	send_bytes(fd, unsubscribe, sizeof(unsubscribe));
	expect_unsuback(fd, 0xBEEF, none, sizeof(none));
	close(fd);
}
END_TEST

/*
 * [MQTT-2.2.2-1] A PUBLISH forwarded without properties carries Property
 * Length 0, and QoS 0 has no Packet Identifier [MQTT-2.2.1-2]: exact
 * bytes.
 */
START_TEST(test_mqtt_2_2_2_1)
{
	static const uint8_t want[] = { 0x30, 0x08, 0x00, 0x04, 'p', 'l',
					'/', 't', 0x00, 'x' };
	int sub = subscriber("sub", "pl/t", 0);
	int pub = client("pub");

	publish_str(pub, "pl/t", "x", 0, 0);
	expect_bytes(sub, want, sizeof(want));
	close(pub);
	close(sub);
}
END_TEST

/* ---------------------------------------------------- 3.1 CONNECT */

/* [MQTT-3.1.2-9] Will Flag 1 but no Will Properties, Topic, Payload. */
START_TEST(test_mqtt_3_1_2_9)
{
	static const uint8_t id[] = { 0x00, 0x01, 'c' };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x06, id, sizeof(id), pkt));
}
END_TEST

/* [MQTT-3.1.2-12] Will QoS 3 is malformed; Will QoS 2 is accepted. */
START_TEST(test_mqtt_3_1_2_12)
{
	static const uint8_t will[] = { 0x00, 0x01, 'c', 0x00, 0x00, 0x01,
					'w', 0x00, 0x01, 'x' };
	uint8_t pkt[64];

	expect_connect_refused(pkt,
			       connect_bytes(0x1E, will, sizeof(will), pkt));
	expect_connect_accepted(pkt,
				connect_bytes(0x16, will, sizeof(will), pkt));
}
END_TEST

/*
 * max_qos 1 [MQTT-3.2.2-9 .. -12]: CONNACK says Maximum QoS 1; SUBSCRIBE
 * at QoS 2 is accepted and granted 1, and a QoS 1 message reaches it; a
 * PUBLISH at QoS 2 gets DISCONNECT 0x9B; a will at QoS 2 is
 * refused with CONNACK 0x9B.  3.1.1 clients get SUBACK 1 and are closed
 * for a QoS 2 PUBLISH.
 */
START_TEST(test_mqtt_3_2_2_9_max_qos)
{
	/* client id "c", no will properties, will topic "w", payload "x" */
	static const uint8_t will[] = { 0x00, 0x01, 'c', 0x00, 0x00, 0x01,
					'w', 0x00, 0x01, 'x' };
	struct mqtt_connect cn;
	struct mqtt_connack ack;
	struct mqtt_publish got;
	uint8_t buf[256], pkt[64];
	int sub, pub, fd3;

	broker_stop(&broker);
	broker_start_checked(&broker, "max_qos 1");
	sub = raw_connect(&broker);
	raw_connect_init(&cn, V5, "mq-sub");
	ck_assert_int_eq(raw_mqtt_connect_ex(sub, &cn, buf, sizeof(buf), &ack),
			 0);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_MAXIMUM_QOS));
	ck_assert_uint_eq(ack.props.maximum_qos, 1);
	ck_assert_int_eq(raw_subscribe(sub, V5, 1, "mq/t", 2), 1);

	pub = client("mq-pub");
	publish_str(pub, "mq/t", "one", 1, 1);
	ck_assert_int_eq(raw_recv_decoded(pub, buf, sizeof(buf), WAIT_MS, V5,
					  &(struct mqtt_packet){ 0 }),
			 MQTT_PUBACK);
	expect_publish(sub, "mq/t", "one", 1, buf, sizeof(buf), &got);
	publish_str(pub, "mq/t", "two", 2, 2);
	expect_disconnect(pub, MQTT_RC_QOS_NOT_SUPPORTED);
	close(pub);
	expect_quiet(sub);
	close(sub);

	/* Will QoS 2 (flags: will, will QoS 2, clean start): 0x9B. */
	fd3 = raw_connect(&broker);
	send_bytes(fd3, pkt, connect_bytes(0x16, will, sizeof(will), pkt));
	ck_assert_int_ge(raw_recv_packet(fd3, buf, sizeof(buf), WAIT_MS), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], MQTT_RC_QOS_NOT_SUPPORTED);
	expect_closed(fd3);
	close(fd3);
	/* Will QoS 1 is fine. */
	expect_connect_accepted(pkt,
				connect_bytes(0x0E, will, sizeof(will), pkt));

	fd3 = raw_connect(&broker);
	ck_assert_int_eq(raw_mqtt_connect(fd3, MQTT_V311, "mq-v3"), 0);
	ck_assert_int_eq(raw_subscribe(fd3, MQTT_V311, 1, "mq/t", 2), 1);
	{
		struct mqtt_packet p3 = { .type = MQTT_PUBLISH };

		p3.u.publish.qos = 2;
		p3.u.publish.packet_id = 3;
		p3.u.publish.topic.data = (const uint8_t *)"mq/t";
		p3.u.publish.topic.len = 4;
		ck_assert_int_eq(raw_send_packet(fd3, &p3, MQTT_V311), 0);
	}
	expect_closed(fd3);
	close(fd3);
}
END_TEST

/*
 * [MQTT-3.1.2-14] Will Flag 1, Will Retain 0: the will is published as a
 * non-retained message: a live subscriber gets it with RETAIN 0, a later
 * subscriber gets nothing.
 */
START_TEST(test_mqtt_3_1_2_14)
{
	/* client id "c", will properties none, will topic "w14", payload "x" */
	static const uint8_t will[] = { 0x00, 0x01, 'c', 0x00, 0x00, 0x03,
					'w', '1', '4', 0x00, 0x01, 'x' };
	int obs = subscriber("obs", "w14", 0);
	struct mqtt_publish got;
	uint8_t pkt[64], buf[256];
	int fd = raw_connect(&broker), later;

	ck_assert_int_ge(fd, 0);
	send_bytes(fd, pkt, connect_bytes(0x06, will, sizeof(will), pkt));
	ck_assert_int_ge(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x00);
	close(fd); /* no DISCONNECT: the will goes */
	expect_publish(obs, "w14", "x", 0, buf, sizeof(buf), &got);
	ck_assert(!got.retain);
	later = subscriber("later", "w14", 0);
	expect_quiet(later);
	close(later);
	close(obs);
}
END_TEST

/* [MQTT-3.1.2-16] User Name Flag 0 but a User Name in the payload. */
START_TEST(test_mqtt_3_1_2_16)
{
	static const uint8_t payload[] = { 0x00, 0x01, 'c', 0x00, 0x01, 'u' };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x02, payload,
						  sizeof(payload), pkt));
}
END_TEST

/* [MQTT-3.1.2-17] User Name Flag 1 without a User Name; with one it is
 * accepted. */
START_TEST(test_mqtt_3_1_2_17)
{
	static const uint8_t payload[] = { 0x00, 0x01, 'c', 0x00, 0x01, 'u' };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x82, payload, 3, pkt));
	expect_connect_accepted(pkt, connect_bytes(0x82, payload,
						   sizeof(payload), pkt));
}
END_TEST

/* [MQTT-3.1.2-18] Password Flag 0 but a Password after the User Name. */
START_TEST(test_mqtt_3_1_2_18)
{
	static const uint8_t payload[] = { 0x00, 0x01, 'c', 0x00, 0x01, 'u',
					   0x00, 0x01, 'p' };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x82, payload,
						  sizeof(payload), pkt));
	expect_connect_accepted(pkt, connect_bytes(0xC2, payload,
						   sizeof(payload), pkt));
}
END_TEST

/* [MQTT-3.1.2-19] Password Flag 1 without a Password; 5.0 allows a
 * password without a user name. */
START_TEST(test_mqtt_3_1_2_19)
{
	static const uint8_t payload[] = { 0x00, 0x01, 'c', 0x00, 0x01, 'p' };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x42, payload, 3, pkt));
	expect_connect_accepted(pkt, connect_bytes(0x42, payload,
						   sizeof(payload), pkt));
}
END_TEST

/*
 * [MQTT-3.1.2-28] Request Response Information 0 (sent, or absent and so
 * 0): no Response Information in CONNACK.
 */
START_TEST(test_mqtt_3_1_2_28)
{
	for (int sent = 0; sent < 2; sent++) {
		struct mqtt_connect c;
		struct mqtt_connack ack;
		uint8_t buf[256];
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		raw_connect_init(&c, V5, "rri");
		if (sent) {
			mqtt_props_set(&c.props,
				       MQTT_PROP_REQUEST_RESPONSE_INFORMATION);
			c.props.request_response_information = 0;
		}
		ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf),
						     &ack), 0);
		ck_assert(!mqtt_props_has(&ack.props,
					  MQTT_PROP_RESPONSE_INFORMATION));
		close(fd);
	}
}
END_TEST

/* [MQTT-3.1.3-3] No Client Identifier at all: malformed. */
START_TEST(test_mqtt_3_1_3_3)
{
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x02, NULL, 0, pkt));
}
END_TEST

/* [MQTT-3.1.3-4] A Client Identifier that is not UTF-8 (0xFF). */
START_TEST(test_mqtt_3_1_3_4)
{
	static const uint8_t id[] = { 0x00, 0x01, 0xFF };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x02, id, sizeof(id), pkt));
}
END_TEST

/*
 * [MQTT-3.1.3-5] Client Identifiers of 1 to 23 bytes of [0-9a-zA-Z] are
 * allowed, as given (no Assigned Client Identifier).
 */
START_TEST(test_mqtt_3_1_3_5)
{
	static const char *const ids[] = {
		"0",
		"Z",
		"abcdefghijklmnopqrstuvw",
		"ABCDEFGHIJKLMNOPQRSTUVW",
		"01234567890123456789012",
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct mqtt_connect c;
		struct mqtt_connack ack;
		uint8_t buf[256];
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		raw_connect_init(&c, V5, ids[i]);
		ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf),
						     &ack), 0);
		ck_assert(!mqtt_props_has(
			&ack.props, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER));
		expect_alive(fd);
		close(fd);
	}
}
END_TEST

/*
 * [MQTT-3.1.3-8] A Client Identifier the server does not accept (longer
 * than max_client_id_length 23): CONNACK 0x85, then the close.
 */
START_TEST(test_mqtt_3_1_3_8)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int fd;

	ck_assert_int_eq(broker_stop(&broker), 0);
	broker_remove_files(&broker);
	broker_start_checked(&broker, "max_client_id_length 23");
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	raw_connect_init(&c, V5, "abcdefghijklmnopqrstuvwx"); /* 24 */
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID);
	ck_assert(!ack.session_present);
	expect_closed(fd);
	close(fd);
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	raw_connect_init(&c, V5, "abcdefghijklmnopqrstuvw"); /* 23 */
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 0);
	close(fd);
}
END_TEST

/* [MQTT-3.1.3-11] A Will Topic that is not UTF-8 (0xFF). */
START_TEST(test_mqtt_3_1_3_11)
{
	static const uint8_t will[] = { 0x00, 0x01, 'c', 0x00, 0x00, 0x01,
					0xFF, 0x00, 0x01, 'x' };
	uint8_t pkt[64];

	expect_connect_refused(pkt,
			       connect_bytes(0x06, will, sizeof(will), pkt));
}
END_TEST

/* [MQTT-3.1.3-12] A User Name that is not UTF-8 (0xFE). */
START_TEST(test_mqtt_3_1_3_12)
{
	static const uint8_t payload[] = { 0x00, 0x01, 'c', 0x00, 0x01,
					   0xFE };
	uint8_t pkt[64];

	expect_connect_refused(pkt, connect_bytes(0x82, payload,
						  sizeof(payload), pkt));
}
END_TEST

/*
 * [MQTT-3.1.4-6] A refused CONNECT (Request Problem Information 2, a
 * Protocol Error) with a retained PUBLISH right behind it in the same
 * write: the PUBLISH is not processed, no retained message appears.  The
 * same bytes behind an accepted CONNECT do store one.
 */
START_TEST(test_mqtt_3_1_4_6)
{
	/* CONNECT 5.0, properties { 0x17: 2 }, client id "c" */
	static const uint8_t bad_connect[] = { 0x10, 0x10, 0x00, 0x04, 'M',
					       'Q', 'T', 'T', 0x05, 0x02,
					       0x00, 0x3C, 0x02, 0x17, 0x02,
					       0x00, 0x01, 'c' };
	static const uint8_t good_connect[] = { 0x10, 0x0E, 0x00, 0x04, 'M',
						'Q', 'T', 'T', 0x05, 0x02,
						0x00, 0x3C, 0x00, 0x00, 0x01,
						'd' };
	/* PUBLISH QoS 0 RETAIN "r46/t" "x" */
	static const uint8_t publish[] = { 0x31, 0x09, 0x00, 0x05, 'r', '4',
					   '6', '/', 't', 0x00, 'x' };
	uint8_t pkt[64], buf[256];
	int fd, sub;

	memcpy(pkt, bad_connect, sizeof(bad_connect));
	memcpy(pkt + sizeof(bad_connect), publish, sizeof(publish));
	expect_connect_refused(pkt, sizeof(bad_connect) + sizeof(publish));
	sub = subscriber("sub", "r46/t", 0);
	expect_quiet(sub);
	close(sub);

	/* control: behind an accepted CONNECT the PUBLISH is processed */
	memcpy(pkt, good_connect, sizeof(good_connect));
	memcpy(pkt + sizeof(good_connect), publish, sizeof(publish));
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	send_bytes(fd, pkt, sizeof(good_connect) + sizeof(publish));
	ck_assert_int_ge(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	expect_alive(fd);
	sub = subscriber("sub", "r46/t", 0);
	expect_publish(sub, "r46/t", "x", 0, buf, sizeof(buf), NULL);
	close(sub);
	close(fd);
}
END_TEST

/* ---------------------------------------------------- 3.2 CONNACK */

/*
 * [MQTT-3.2.0-1] CONNECT and SUBSCRIBE in one write, with a retained
 * message waiting: CONNACK comes first, before SUBACK and the PUBLISH.
 */
START_TEST(test_mqtt_3_2_0_1)
{
	static const uint8_t connect[] = { 0x10, 0x0E, 0x00, 0x04, 'M', 'Q',
					   'T', 'T', 0x05, 0x02, 0x00, 0x3C,
					   0x00, 0x00, 0x01, 'c' };
	static const uint8_t subscribe[] = { 0x82, 0x0C, 0x00, 0x01, 0x00,
					     0x00, 0x06, 'r', '2', '0', '1',
					     '/', 't', 0x00 };
	int pub = client("pub");
	uint8_t pkt[64], buf[256];
	int fd, types = 0;

	send_publish(pub, "r201/t", "x", 1, 1, false, true, 1, NULL);
	expect_ack_ok(pub, MQTT_PUBACK, 1);
	memcpy(pkt, connect, sizeof(connect));
	memcpy(pkt + sizeof(connect), subscribe, sizeof(subscribe));
	fd = raw_connect(&broker);
	ck_assert_int_ge(fd, 0);
	send_bytes(fd, pkt, sizeof(connect) + sizeof(subscribe));
	ck_assert_int_ge(raw_recv_packet(fd, buf, sizeof(buf), WAIT_MS), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x00);
	/* then SUBACK and the retained PUBLISH, in either order */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_gt(raw_recv_packet(fd, buf, sizeof(buf),
						 WAIT_MS), 0);
		types |= 1 << (buf[0] >> 4);
	}
	ck_assert_int_eq(types, 1 << MQTT_SUBACK | 1 << MQTT_PUBLISH);
	close(fd);
	close(pub);
}
END_TEST

/*
 * [MQTT-3.2.2-1] Bits 7-1 of the Connect Acknowledge Flags are 0, both
 * for a new session and for a resumed one (Session Present 1).
 */
START_TEST(test_mqtt_3_2_2_1)
{
	for (int round = 0; round < 2; round++) {
		struct mqtt_connect c;
		struct mqtt_packet pkt = { .type = MQTT_CONNECT };
		uint8_t buf[256];
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		raw_connect_init(&c, V5, "flags");
		c.clean_start = round == 0;
		mqtt_props_set(&c.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
		c.props.session_expiry_interval = 60;
		pkt.u.connect = c;
		ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
		ck_assert_int_ge(raw_recv_packet(fd, buf, sizeof(buf),
						 WAIT_MS), 4);
		ck_assert_uint_eq(buf[0], 0x20);
		ck_assert_uint_lt(buf[1], 0x80); /* one-byte length */
		ck_assert_uint_eq(buf[2] & 0xFE, 0);
		ck_assert_uint_eq(buf[2], round == 0 ? 0x00 : 0x01);
		ck_assert_uint_eq(buf[3], 0x00);
		close(fd); /* no DISCONNECT: the session stays */
		sleep_ms(100);
	}
}
END_TEST

/* ---------------------------------------------------- 3.3 PUBLISH */

/*
 * [MQTT-3.3.1-3] A PUBLISH received with DUP 1 (QoS 1, first time the
 * broker sees it) goes out with DUP 0: the outgoing DUP says only whether
 * the outgoing packet is a resend.  To a QoS 0 subscription it goes out
 * as QoS 0 with DUP 0 [MQTT-3.3.1-2], [MQTT-4.3.1-1] and no Packet
 * Identifier [MQTT-2.2.1-2] (exact bytes).
 */
START_TEST(test_mqtt_3_3_1_3)
{
	static const uint8_t want0[] = { 0x30, 0x09, 0x00, 0x05, 'd', 'u',
					 'p', '/', 't', 0x00, 'x' };
	int sub0 = subscriber("sub0", "dup/t", 0);
	int sub1 = subscriber("sub1", "dup/t", 1);
	int pub = client("pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	send_publish(pub, "dup/t", "x", 1, 1, true, false, 3, NULL);
	expect_ack(pub, MQTT_PUBACK, 3, 0);
	expect_bytes(sub0, want0, sizeof(want0));
	expect_publish(sub1, "dup/t", "x", 1, buf, sizeof(buf), &got);
	ck_assert(!got.dup);
	send_ack(sub1, MQTT_PUBACK, got.packet_id);
	close(pub);
	close(sub1);
	close(sub0);
}
END_TEST

/*
 * [MQTT-3.3.1-8] RETAIN 0 neither stores nor removes: after a retained
 * "old", a non-retained "new" and a non-retained empty payload, a new
 * subscriber still gets "old" with RETAIN 1.
 */
START_TEST(test_mqtt_3_3_1_8)
{
	int pub = client("pub");
	struct mqtt_publish got;
	uint8_t buf[256];
	int sub;

	send_publish(pub, "k/t", "old", 3, 0, false, true, 0, NULL);
	send_publish(pub, "k/t", "new", 3, 0, false, false, 0, NULL);
	send_publish(pub, "k/t", "", 0, 0, false, false, 0, NULL);
	expect_alive(pub);
	sub = subscriber("sub", "k/t", 0);
	expect_publish(sub, "k/t", "old", 0, buf, sizeof(buf), &got);
	ck_assert(got.retain);
	expect_quiet(sub);
	close(sub);
	close(pub);
}
END_TEST

/*
 * [MQTT-3.3.2-7] Topic Alias mappings do not outlive the Network
 * Connection, even when the session does: alias 3 set, connection
 * dropped, session resumed; an empty topic with alias 3 is then a
 * Protocol Error.
 */
START_TEST(test_mqtt_3_3_2_7)
{
	struct mqtt_props props = { 0 };
	bool present;
	int fd;

	mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
	props.topic_alias = 3;
	fd = client_ex("alias", true, 60, 0, NULL);
	send_publish(fd, "a7/t", "1", 1, 1, false, false, 1, &props);
	expect_ack_ok(fd, MQTT_PUBACK, 1);
	close(fd);
	sleep_ms(100);
	fd = client_ex("alias", false, 60, 0, &present);
	ck_assert(present);
	send_publish(fd, "", "2", 1, 1, false, false, 2, &props);
	expect_disconnect(fd, MQTT_RC_PROTOCOL_ERROR);
	close(fd);
}
END_TEST

/*
 * [MQTT-3.3.2-12] Every Topic Alias from 1 to the Topic Alias Maximum the
 * broker announced is accepted: each is set with a topic, then used with
 * an empty one, and the message arrives on the right topic.
 */
START_TEST(test_mqtt_3_3_2_12)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int sub = subscriber("sub", "al/#", 0);
	int pub = raw_connect(&broker);
	uint16_t max;

	ck_assert_int_ge(pub, 0);
	raw_connect_init(&c, V5, "pub");
	ck_assert_int_eq(raw_mqtt_connect_ex(pub, &c, buf, sizeof(buf), &ack),
			 0);
	ck_assert(mqtt_props_has(&ack.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM));
	max = ack.props.topic_alias_maximum;
	ck_assert_uint_ge(max, 1);
	for (uint16_t a = 1; a <= max; a++) {
		struct mqtt_props props = { 0 };
		char topic[16];

		snprintf(topic, sizeof(topic), "al/%u", (unsigned)a);
		mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
		props.topic_alias = a;
		send_publish(pub, topic, "set", 3, 0, false, false, 0, &props);
		send_publish(pub, "", "use", 3, 0, false, false, 0, &props);
		expect_publish(sub, topic, "set", 0, buf, sizeof(buf), NULL);
		expect_publish(sub, topic, "use", 0, buf, sizeof(buf), NULL);
	}
	expect_alive(pub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-3.3.2-14] A Response Topic with a wildcard is refused
 * (DISCONNECT with an error reason) and not delivered.
 */
START_TEST(test_mqtt_3_3_2_14)
{
	static const char rt[] = "rt/#";
	struct mqtt_props props = { 0 };
	int sub = subscriber("sub", "rt/#", 0);
	int pub = client("pub");

	mqtt_props_set(&props, MQTT_PROP_RESPONSE_TOPIC);
	props.response_topic.data = (const uint8_t *)rt;
	props.response_topic.len = strlen(rt);
	send_publish(pub, "rt/t", "x", 1, 0, false, false, 0, &props);
	expect_disconnect_error(pub);
	expect_quiet(sub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-3.3.4-10] With the client's Receive Maximum 1 used up by an
 * unacknowledged QoS 1 PUBLISH, the next PUBLISH waits, but PINGRESP,
 * SUBACK and UNSUBACK do not ([MQTT-4.9.0-3]); the PUBACK lets the
 * waiting PUBLISH go.
 */
START_TEST(test_mqtt_3_3_4_10)
{
	static const uint8_t unsubscribe[] = { 0xA2, 0x0B, 0x00, 0x07, 0x00,
					       0x00, 0x06, 'r', 'm', '/',
					       'o', 't', 'h' };
	static const uint8_t unsuback[] = { 0xB0, 0x04, 0x00, 0x07, 0x00,
					    0x00 };
	int sub = client_ex("sub", true, 0, 1, NULL);
	int pub = client("pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	ck_assert_int_eq(raw_subscribe(sub, V5, 1, "rm/t", 1), 1);
	publish_str(pub, "rm/t", "1", 1, 1);
	expect_ack(pub, MQTT_PUBACK, 1, 0);
	publish_str(pub, "rm/t", "2", 1, 2);
	expect_ack(pub, MQTT_PUBACK, 2, 0);
	expect_publish(sub, "rm/t", "1", 1, buf, sizeof(buf), &got);
	expect_quiet(sub);
	expect_alive(sub);
	ck_assert_int_eq(raw_subscribe(sub, V5, 6, "rm/oth", 0), 0);
	send_bytes(sub, unsubscribe, sizeof(unsubscribe));
	expect_bytes(sub, unsuback, sizeof(unsuback));
	send_ack(sub, MQTT_PUBACK, got.packet_id);
	expect_publish(sub, "rm/t", "2", 1, buf, sizeof(buf), &got);
	send_ack(sub, MQTT_PUBACK, got.packet_id);
	close(pub);
	close(sub);
}
END_TEST

/* ------------------------------------------- 3.8 - 3.11 SUBSCRIBE */

/* [MQTT-3.8.3-1] A Topic Filter that is not UTF-8 in SUBSCRIBE. */
START_TEST(test_mqtt_3_8_3_1)
{
	static const uint8_t subscribe[] = { 0x82, 0x07, 0x00, 0x01, 0x00,
					     0x00, 0x01, 0xFF, 0x00 };
	int fd = client("bad");

	send_bytes(fd, subscribe, sizeof(subscribe));
	expect_disconnect_error(fd);
	close(fd);
}
END_TEST

/* [MQTT-3.10.3-1] A Topic Filter that is not UTF-8 in UNSUBSCRIBE. */
START_TEST(test_mqtt_3_10_3_1)
{
	static const uint8_t unsubscribe[] = { 0xA2, 0x06, 0x00, 0x01, 0x00,
					       0x00, 0x01, 0xFF };
	int fd = client("bad");

	send_bytes(fd, unsubscribe, sizeof(unsubscribe));
	expect_disconnect_error(fd);
	close(fd);
}
END_TEST

/*
 * [MQTT-3.10.4-1] UNSUBSCRIBE compares filters character by character,
 * not by matching: "u/a" does not remove "u/+" (0x11, still delivered);
 * "u/+" does (0x00, no longer delivered [MQTT-3.10.4-2]).
 */
START_TEST(test_mqtt_3_10_4_1)
{
	static const uint8_t unsub_a[] = { 0xA2, 0x08, 0x00, 0x02, 0x00, 0x00,
					   0x03, 'u', '/', 'a' };
	static const uint8_t none[] = { MQTT_RC_NO_SUBSCRIPTION_EXISTED };
	static const uint8_t unsub_plus[] = { 0xA2, 0x08, 0x00, 0x03, 0x00,
					      0x00, 0x03, 'u', '/', '+' };
	static const uint8_t unsuback_plus[] = { 0xB0, 0x04, 0x00, 0x03, 0x00,
						 0x00 };
	int sub = subscriber("sub", "u/+", 0);
	int pub = client("pub");
	uint8_t buf[256];

	send_bytes(sub, unsub_a, sizeof(unsub_a));
	expect_unsuback(sub, 2, none, sizeof(none));
	publish_str(pub, "u/a", "1", 0, 0);
	expect_publish(sub, "u/a", "1", 0, buf, sizeof(buf), NULL);
	send_bytes(sub, unsub_plus, sizeof(unsub_plus));
	expect_bytes(sub, unsuback_plus, sizeof(unsuback_plus));
	publish_str(pub, "u/a", "2", 0, 0);
	expect_quiet(sub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-3.10.4-3] A QoS 2 delivery under way when the subscription is
 * removed is completed: PUBREC after the UNSUBACK still gets PUBREL.
 */
START_TEST(test_mqtt_3_10_4_3)
{
	static const uint8_t unsubscribe[] = { 0xA2, 0x08, 0x00, 0x02, 0x00,
					       0x00, 0x03, 'q', '/', 't' };
	static const uint8_t unsuback[] = { 0xB0, 0x04, 0x00, 0x02, 0x00,
					    0x00 };
	int sub = subscriber("sub", "q/t", 2);
	int pub = client("pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	publish_str(pub, "q/t", "x", 2, 1);
	expect_ack(pub, MQTT_PUBREC, 1, 0);
	send_ack(pub, MQTT_PUBREL, 1);
	expect_ack(pub, MQTT_PUBCOMP, 1, 0);
	expect_publish(sub, "q/t", "x", 2, buf, sizeof(buf), &got);
	send_bytes(sub, unsubscribe, sizeof(unsubscribe));
	expect_bytes(sub, unsuback, sizeof(unsuback));
	send_ack(sub, MQTT_PUBREC, got.packet_id);
	expect_ack(sub, MQTT_PUBREL, got.packet_id, 0);
	send_ack(sub, MQTT_PUBCOMP, got.packet_id);
	expect_quiet(sub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-3.11.3-1] UNSUBACK reason codes in the order of the filters:
 * held, not held, held -> 0x00 0x11 0x00 ([MQTT-3.10.4-6]: one UNSUBACK).
 */
START_TEST(test_mqtt_3_11_3_1)
{
	static const uint8_t unsubscribe[] = { 0xA2, 0x12, 0x00, 0x07, 0x00,
					       0x00, 0x03, 'o', '/', 'a',
					       0x00, 0x03, 'o', '/', 'b',
					       0x00, 0x03, 'o', '/', 'c' };
	static const uint8_t reasons[] = { 0x00, 0x11, 0x00 };
	int fd = subscriber("sub", "o/a", 0);

	ck_assert_int_eq(raw_subscribe(fd, V5, 2, "o/c", 1), 1);
	send_bytes(fd, unsubscribe, sizeof(unsubscribe));
	expect_unsuback(fd, 7, reasons, sizeof(reasons));
	expect_alive(fd);
	close(fd);
}
END_TEST

/* ------------------------------- Reason Strings and their limits */

/* Answers cicada explains with a Reason String, one of each packet. */
enum problem {
	P_CONNACK, /* an unknown Authentication Method: 0x8C */
	P_PUBACK, /* Payload Format Indicator 1, not UTF-8: 0x99 */
	P_PUBREC, /* the same at QoS 2 */
	P_PUBREL, /* PUBREC for an unknown packet id: 0x92 */
	P_PUBCOMP, /* PUBREL for an unknown packet id: 0x92 */
	P_SUBACK, /* an invalid filter: 0x8F */
	P_UNSUBACK, /* a filter not subscribed: 0x11 */
	P_DISCONNECT, /* Topic Alias above the maximum (10): 0x94 */
	P_COUNT
};

static const struct {
	int type;
	uint8_t reason;
} problems[P_COUNT] = {
	[P_CONNACK] = { MQTT_CONNACK, MQTT_RC_BAD_AUTHENTICATION_METHOD },
	[P_PUBACK] = { MQTT_PUBACK, MQTT_RC_PAYLOAD_FORMAT_INVALID },
	[P_PUBREC] = { MQTT_PUBREC, MQTT_RC_PAYLOAD_FORMAT_INVALID },
	[P_PUBREL] = { MQTT_PUBREL, MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND },
	[P_PUBCOMP] = { MQTT_PUBCOMP, MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND },
	[P_SUBACK] = { MQTT_SUBACK, MQTT_RC_TOPIC_FILTER_INVALID },
	[P_UNSUBACK] = { MQTT_UNSUBACK, MQTT_RC_NO_SUBSCRIPTION_EXISTED },
	[P_DISCONNECT] = { MQTT_DISCONNECT, MQTT_RC_TOPIC_ALIAS_INVALID },
};

static uint8_t packet_reason(const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNACK:
		return pkt->u.connack.reason;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		ck_assert_uint_eq(pkt->u.suback.reasons.len, 1);
		return pkt->u.suback.reasons.data[0];
	case MQTT_DISCONNECT:
		return pkt->u.disconnect.reason;
	default:
		return pkt->u.ack.reason;
	}
}

/* Send what makes the broker answer with problem p. */
static void send_problem(int fd, enum problem p)
{
	static const uint8_t bad_utf8[] = { 0xFF, 0xFE };
	struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
	struct mqtt_sub_entry sub = {
		.filter = { (const uint8_t *)"rs/#/x", 6 },
	};
	struct mqtt_bytes unsub = { (const uint8_t *)"rs/none", 7 };
	struct mqtt_props props;

	memset(&props, 0, sizeof(props));
	switch (p) {
	case P_PUBACK:
	case P_PUBREC:
		mqtt_props_set(&props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
		props.payload_format_indicator = 1;
		send_publish(fd, "rs/t", bad_utf8, sizeof(bad_utf8),
			     p == P_PUBACK ? 1 : 2, false, false, 1, &props);
		break;
	case P_PUBREL:
		send_ack(fd, MQTT_PUBREC, 77);
		break;
	case P_PUBCOMP:
		send_ack(fd, MQTT_PUBREL, 78);
		break;
	case P_SUBACK:
		pkt.u.subscribe.packet_id = 5;
		pkt.u.subscribe.count = 1;
		pkt.u.subscribe.subs = &sub;
		ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
		break;
	case P_UNSUBACK:
		pkt.type = MQTT_UNSUBSCRIBE;
		pkt.u.subscribe.packet_id = 6;
		pkt.u.subscribe.count = 1;
		pkt.u.subscribe.filters = &unsub;
		ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
		break;
	default: /* P_DISCONNECT */
		mqtt_props_set(&props, MQTT_PROP_TOPIC_ALIAS);
		props.topic_alias = 11;
		send_publish(fd, "rs/t", "x", 1, 0, false, false, 0, &props);
		break;
	}
}

/*
 * Connect with Request Problem Information rpi (-1: not sent) and Maximum
 * Packet Size max (0: not sent), get the broker to answer with problem p,
 * and check that answer's reason code.  Returns the length of its Reason
 * String (-1: none); *size gets the whole packet's.
 */
static int provoke(enum problem p, int rpi, uint32_t max, size_t *size)
{
	static int serial;
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	struct mqtt_connect *c = &pkt.u.connect;
	uint8_t buf[512];
	char id[32];
	int fd = raw_connect(&broker), len;

	ck_assert_int_ge(fd, 0);
	snprintf(id, sizeof(id), "problem-%d", ++serial);
	raw_connect_init(c, V5, id);
	if (rpi >= 0) {
		mqtt_props_set(&c->props, MQTT_PROP_REQUEST_PROBLEM_INFORMATION);
		c->props.request_problem_information = (uint8_t)rpi;
	}
	if (max) {
		mqtt_props_set(&c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
		c->props.maximum_packet_size = max;
	}
	if (p == P_CONNACK) {
		mqtt_props_set(&c->props, MQTT_PROP_AUTHENTICATION_METHOD);
		c->props.authentication_method.data = (const uint8_t *)"X-NONE";
		c->props.authentication_method.len = 6;
	}
	ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
	if (p != P_CONNACK) {
		expect_decoded(fd, MQTT_CONNACK, buf, sizeof(buf), &pkt);
		ck_assert_uint_eq(pkt.u.connack.reason, 0);
		send_problem(fd, p);
	}
	len = expect_decoded(fd, problems[p].type, buf, sizeof(buf), &pkt);
	ck_assert_uint_eq(packet_reason(&pkt), problems[p].reason);
	ck_assert_int_eq(mqtt_frame_peek(buf, sizeof(buf), 0, size), 0);
	if (p == P_CONNACK || p == P_DISCONNECT)
		expect_closed(fd);
	else
		expect_alive(fd);
	close(fd);
	return len;
}

/*
 * [MQTT-3.1.2-29] Request Problem Information 0: no Reason String on
 * anything but PUBLISH, CONNACK and DISCONNECT.  Absent or 1, every
 * refusal here says why (issue #4: Reason Strings on acks); 0, the
 * acknowledgements come bare, CONNACK and DISCONNECT still explain.
 */
START_TEST(test_mqtt_3_1_2_29)
{
	size_t size;

	for (int i = 0; i < P_COUNT; i++) {
		enum problem p = (enum problem)i;
		bool allowed = p == P_CONNACK || p == P_DISCONNECT;

		ck_assert_int_gt(provoke(p, -1, 0, &size), 0);
		ck_assert_int_gt(provoke(p, 1, 0, &size), 0);
		if (allowed)
			ck_assert_int_gt(provoke(p, 0, 0, &size), 0);
		else
			ck_assert_int_eq(provoke(p, 0, 0, &size), -1);
	}
}
END_TEST

/*
 * A Reason String goes only when the whole packet stays within the
 * client's Maximum Packet Size: with the size of the packet with it as
 * the maximum it is sent; one byte less, the packet goes without it.
 */
static void check_reason_fits(enum problem p)
{
	size_t full, size;
	int len = provoke(p, -1, 0, &full);

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(provoke(p, -1, (uint32_t)full, &size), len);
	ck_assert_uint_eq(size, full);
	ck_assert_int_eq(provoke(p, -1, (uint32_t)full - 1, &size), -1);
	ck_assert_uint_lt(size, full);
}

/* [MQTT-3.2.2-19] CONNACK (a refusal: 0x8C). */
START_TEST(test_mqtt_3_2_2_19)
{
	check_reason_fits(P_CONNACK);
}
END_TEST

/* [MQTT-3.4.2-2] PUBACK 0x99. */
START_TEST(test_mqtt_3_4_2_2)
{
	check_reason_fits(P_PUBACK);
}
END_TEST

/* [MQTT-3.5.2-2] PUBREC 0x99. */
START_TEST(test_mqtt_3_5_2_2)
{
	check_reason_fits(P_PUBREC);
}
END_TEST

/* [MQTT-3.6.2-2] PUBREL 0x92. */
START_TEST(test_mqtt_3_6_2_2)
{
	check_reason_fits(P_PUBREL);
}
END_TEST

/* [MQTT-3.7.2-2] PUBCOMP 0x92. */
START_TEST(test_mqtt_3_7_2_2)
{
	check_reason_fits(P_PUBCOMP);
}
END_TEST

/* [MQTT-3.9.2-1] SUBACK 0x8F. */
START_TEST(test_mqtt_3_9_2_1)
{
	check_reason_fits(P_SUBACK);
}
END_TEST

/* [MQTT-3.11.2-1] UNSUBACK 0x11. */
START_TEST(test_mqtt_3_11_2_1)
{
	check_reason_fits(P_UNSUBACK);
}
END_TEST

/* [MQTT-3.14.2-3] DISCONNECT 0x94 from the server. */
START_TEST(test_mqtt_3_14_2_3)
{
	check_reason_fits(P_DISCONNECT);
}
END_TEST

/* ---------------------------------------------------- chapter 4 */

/*
 * [MQTT-4.1.0-1] Session State is kept while the connection is open,
 * even past the Session Expiry Interval: Session Expiry 1, 2.5 s
 * connected, the subscription still delivers.
 */
START_TEST(test_mqtt_4_1_0_1)
{
	int sub = client_ex("sub", true, 1, 0, NULL);
	int pub;
	uint8_t buf[256];

	ck_assert_int_eq(raw_subscribe(sub, V5, 1, "s/t", 0), 0);
	sleep_ms(2500);
	pub = client("pub");
	publish_str(pub, "s/t", "x", 0, 0);
	expect_publish(sub, "s/t", "x", 0, buf, sizeof(buf), NULL);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-4.3.2-5] After PUBACK, a PUBLISH with the same Packet Identifier
 * is a new message, DUP 1 or not: both are delivered.
 */
START_TEST(test_mqtt_4_3_2_5)
{
	int sub = subscriber("sub", "n/t", 0);
	int pub = client("pub");
	uint8_t buf[256];

	send_publish(pub, "n/t", "a", 1, 1, false, false, 7, NULL);
	expect_ack(pub, MQTT_PUBACK, 7, 0);
	send_publish(pub, "n/t", "b", 1, 1, true, false, 7, NULL);
	expect_ack(pub, MQTT_PUBACK, 7, 0);
	expect_publish(sub, "n/t", "a", 0, buf, sizeof(buf), NULL);
	expect_publish(sub, "n/t", "b", 0, buf, sizeof(buf), NULL);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-4.3.3-9] After a PUBREC with a failure reason (0x99 for a payload
 * that is not the UTF-8 its Payload Format Indicator promises), a PUBLISH
 * with the same Packet Identifier is a new message: accepted, delivered.
 */
START_TEST(test_mqtt_4_3_3_9)
{
	static const uint8_t bad[] = { 0xFF, 0xFE };
	struct mqtt_props props = { 0 };
	int sub = subscriber("sub", "f/t", 0);
	int pub = client("pub");
	uint8_t buf[256];

	mqtt_props_set(&props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	props.payload_format_indicator = 1;
	send_publish(pub, "f/t", bad, sizeof(bad), 2, false, false, 9,
		     &props);
	expect_ack(pub, MQTT_PUBREC, 9, MQTT_RC_PAYLOAD_FORMAT_INVALID);
	expect_quiet(sub);
	send_publish(pub, "f/t", "ok", 2, 2, false, false, 9, &props);
	expect_ack(pub, MQTT_PUBREC, 9, 0);
	expect_publish(sub, "f/t", "ok", 0, buf, sizeof(buf), NULL);
	send_ack(pub, MQTT_PUBREL, 9);
	expect_ack(pub, MQTT_PUBCOMP, 9, 0);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-4.3.3-13] The QoS 2 exchange goes on after the message expired:
 * PUBLISH with Message Expiry 1, PUBREC, 2.2 s, PUBREL -> PUBCOMP 0x00.
 */
START_TEST(test_mqtt_4_3_3_13)
{
	struct mqtt_props props = { 0 };
	int pub = client("pub");

	mqtt_props_set(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	props.message_expiry_interval = 1;
	send_publish(pub, "e/t", "x", 1, 2, false, false, 5, &props);
	expect_ack_ok(pub, MQTT_PUBREC, 5);
	sleep_ms(2200);
	send_ack(pub, MQTT_PUBREL, 5);
	expect_ack(pub, MQTT_PUBCOMP, 5, 0);
	close(pub);
}
END_TEST

/*
 * [MQTT-4.4.0-2] A PUBACK (QoS 1) or PUBREC (QoS 2) with a failure
 * reason acknowledges the PUBLISH: it is not sent again, not even on a
 * session resumed later (the only time a resend is allowed,
 * [MQTT-4.4.0-1]).
 */
START_TEST(test_mqtt_4_4_0_2)
{
	for (uint8_t qos = 1; qos <= 2; qos++) {
		int sub = client_ex("sub", true, 60, 0, NULL);
		int pub = client("pub");
		struct mqtt_publish got;
		uint8_t buf[256];
		bool present;

		ck_assert_int_eq(raw_subscribe(sub, V5, 1, "r/t", qos), qos);
		publish_str(pub, "r/t", "x", qos, 1);
		expect_ack(pub, qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, 1, 0);
		if (qos == 2) {
			send_ack(pub, MQTT_PUBREL, 1);
			expect_ack(pub, MQTT_PUBCOMP, 1, 0);
		}
		expect_publish(sub, "r/t", "x", qos, buf, sizeof(buf), &got);
		send_ack_reason(sub, qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
				got.packet_id, MQTT_RC_UNSPECIFIED_ERROR);
		expect_quiet(sub); /* no PUBREL after a failed PUBREC */
		close(sub);
		sleep_ms(100);
		sub = client_ex("sub", false, 60, 0, &present);
		ck_assert(present);
		expect_quiet(sub);
		close(sub);
		close(pub);
		/* end the session for the next round */
		sub = client_ex("sub", true, 0, 0, NULL);
		close(sub);
	}
}
END_TEST

/*
 * [MQTT-4.7.3-1] A Topic Filter is at least one character long: an empty
 * filter is refused (SUBACK failure code, or DISCONNECT with an error);
 * it matches nothing either way.
 */
START_TEST(test_mqtt_4_7_3_1)
{
	static const uint8_t subscribe[] = { 0x82, 0x06, 0x00, 0x05, 0x00,
					     0x00, 0x00, 0x00 };
	struct mqtt_packet pkt;
	uint8_t buf[256];
	int fd = client("empty");
	int type;

	send_bytes(fd, subscribe, sizeof(subscribe));
	type = raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, V5, &pkt);
	if (type == MQTT_SUBACK) {
		ck_assert_uint_eq(pkt.u.suback.packet_id, 5);
		ck_assert_uint_eq(pkt.u.suback.reasons.len, 1);
		ck_assert_uint_ge(pkt.u.suback.reasons.data[0], 0x80);
		expect_alive(fd);
	} else {
		ck_assert_int_eq(type, MQTT_DISCONNECT);
		ck_assert_uint_ge(pkt.u.disconnect.reason, 0x80);
		expect_closed(fd);
	}
	close(fd);
}
END_TEST

/*
 * [MQTT-4.7.3-4] No normalization when matching: "n/caf\u00e9" does not
 * match "n/cafe\u0301" (the same text, decomposed) nor "n/CAF\u00c9";
 * only the exact bytes do.
 */
START_TEST(test_mqtt_4_7_3_4)
{
	static const char composed[] = "n/caf\xC3\xA9";
	int sub = subscriber("sub", composed, 0);
	int pub = client("pub");
	uint8_t buf[256];

	publish_str(pub, "n/cafe\xCC\x81", "decomposed", 0, 0);
	publish_str(pub, "n/CAF\xC3\x89", "upper", 0, 0);
	publish_str(pub, composed, "exact", 0, 0);
	expect_publish(sub, composed, "exact", 0, buf, sizeof(buf), NULL);
	expect_quiet(sub);
	close(pub);
	close(sub);
}
END_TEST

/*
 * [MQTT-4.8.2-1], [MQTT-4.8.2-2] Shared Subscription filters: an empty
 * ShareName, no '/' after it, no filter after the '/', '+' or '#' in the
 * ShareName are refused one by one (0x8F Topic Filter invalid); a good
 * one in the same SUBSCRIBE is granted.
 */
START_TEST(test_mqtt_4_8_2_1)
{
	static const char *const filters[] = {
		"$share//t", "$share/g", "$share/g/", "$share/a+/t",
		"$share/a#/t", "$share/g/t",
	};
	struct mqtt_sub_entry e[6];
	struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
	uint8_t buf[256];
	int fd = client("share");

	memset(e, 0, sizeof(e));
	for (size_t i = 0; i < 6; i++) {
		e[i].filter.data = (const uint8_t *)filters[i];
		e[i].filter.len = strlen(filters[i]);
		e[i].qos = 1;
	}
	pkt.u.subscribe.packet_id = 4;
	pkt.u.subscribe.count = 6;
	pkt.u.subscribe.subs = e;
	ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
	ck_assert_int_eq(raw_recv_decoded(fd, buf, sizeof(buf), WAIT_MS, V5,
					  &pkt), MQTT_SUBACK);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 4);
	ck_assert_uint_eq(pkt.u.suback.reasons.len, 6);
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(pkt.u.suback.reasons.data[i],
				  MQTT_RC_TOPIC_FILTER_INVALID);
	ck_assert_uint_eq(pkt.u.suback.reasons.data[5], 1);
	expect_alive(fd);
	close(fd);
}
END_TEST

/*
 * [MQTT-4.8.2-3] A shared subscription's granted QoS is respected: QoS 1
 * and 2 messages reach a QoS 0 member at QoS 0, a QoS 2 message a QoS 1
 * member at QoS 1.
 */
START_TEST(test_mqtt_4_8_2_3)
{
	int m0 = subscriber("m0", "$share/g0/sq/t", 0);
	int m1 = subscriber("m1", "$share/g1/sq/t", 1);
	int pub = client("pub");
	struct mqtt_publish got;
	uint8_t buf[256];

	publish_str(pub, "sq/t", "x", 2, 1);
	expect_ack(pub, MQTT_PUBREC, 1, 0);
	send_ack(pub, MQTT_PUBREL, 1);
	expect_ack(pub, MQTT_PUBCOMP, 1, 0);
	expect_publish(m0, "sq/t", "x", 0, buf, sizeof(buf), NULL);
	expect_publish(m1, "sq/t", "x", 1, buf, sizeof(buf), &got);
	send_ack(m1, MQTT_PUBACK, got.packet_id);
	close(pub);
	close(m1);
	close(m0);
}
END_TEST

/*
 * Two members of "$share/g/<topic>" at QoS 2, sessions kept for expiry
 * seconds (0: none); a QoS 2 message is published.  Returns the index
 * (0 or 1) of the member that got it; *got and buf hold the PUBLISH.
 */
static int shared_pair(int fds[2], const char *topic, uint32_t expiry,
		       uint8_t qos, struct mqtt_publish *got, uint8_t *buf,
		       size_t cap)
{
	static const char *const ids[2] = { "m0", "m1" };
	char filter[64];
	struct mqtt_packet pkt;
	int pub, who = -1;

	snprintf(filter, sizeof(filter), "$share/g/%s", topic);
	for (int i = 0; i < 2; i++) {
		fds[i] = client_ex(ids[i], true, expiry, 0, NULL);
		ck_assert_int_eq(raw_subscribe(fds[i], V5, 1, filter, qos),
				 qos);
	}
	pub = client("pub");
	publish_str(pub, topic, "x", qos, 1);
	expect_ack(pub, qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, 1, 0);
	if (qos == 2) {
		send_ack(pub, MQTT_PUBREL, 1);
		expect_ack(pub, MQTT_PUBCOMP, 1, 0);
	}
	close(pub);
	for (int i = 0; i < 2 && who < 0; i++)
		if (raw_recv_decoded(fds[i], buf, cap, 500, V5, &pkt) ==
		    MQTT_PUBLISH)
			who = i;
	ck_assert_int_ge(who, 0);
	*got = pkt.u.publish;
	ck_assert_uint_eq(got->qos, qos);
	return who;
}

/*
 * [MQTT-4.8.2-4] A QoS 2 message to a shared member whose connection
 * breaks before PUBREC is completed with that member when it comes back
 * (resent with DUP 1), not given to the other member.
 */
START_TEST(test_mqtt_4_8_2_4)
{
	static const char *const ids[2] = { "m0", "m1" };
	struct mqtt_publish got;
	uint8_t buf[256];
	int fds[2], who;
	bool present;

	who = shared_pair(fds, "s4/t", 60, 2, &got, buf, sizeof(buf));
	close(fds[who]);
	expect_quiet(fds[1 - who]);
	fds[who] = client_ex(ids[who], false, 60, 0, &present);
	ck_assert(present);
	expect_publish(fds[who], "s4/t", "x", 2, buf, sizeof(buf), &got);
	ck_assert(got.dup);
	send_ack(fds[who], MQTT_PUBREC, got.packet_id);
	expect_ack(fds[who], MQTT_PUBREL, got.packet_id, 0);
	send_ack(fds[who], MQTT_PUBCOMP, got.packet_id);
	expect_quiet(fds[1 - who]);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/*
 * [MQTT-4.8.2-5] A QoS 2 message to a shared member whose session ends
 * (Session Expiry 0, connection dropped before PUBREC) is not sent to
 * any other member.
 */
START_TEST(test_mqtt_4_8_2_5)
{
	struct mqtt_publish got;
	uint8_t buf[256];
	int fds[2], who;

	who = shared_pair(fds, "s5/t", 0, 2, &got, buf, sizeof(buf));
	close(fds[who]);
	expect_quiet(fds[1 - who]);
	close(fds[1 - who]);
}
END_TEST

/*
 * [MQTT-4.8.2-6] A shared member answering PUBACK 0x80: the message is
 * discarded, not offered to the other member.
 */
START_TEST(test_mqtt_4_8_2_6)
{
	struct mqtt_publish got;
	uint8_t buf[256];
	int fds[2], who;

	who = shared_pair(fds, "s6/t", 0, 1, &got, buf, sizeof(buf));
	send_ack_reason(fds[who], MQTT_PUBACK, got.packet_id,
			MQTT_RC_UNSPECIFIED_ERROR);
	expect_quiet(fds[1 - who]);
	expect_alive(fds[who]);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* ------------------------------------------ server redirection (4.11) */

/*
 * Each test starts its own broker with a server_reference (cicada-only
 * options; see cicada.conf(5)).  A Server Reference is a space-separated
 * list [MQTT 5.0 section 4.11]; the broker passes it on as written.
 */
#define REF "mqtt2.example.com:1883 [::1]:1884"

/* What a redirected 5.0 CONNECT got. */
struct redirect_ack {
	uint8_t reason;
	bool session_present;
	int reason_len; /* Reason String's length; -1: none */
	bool has_ref;
	char ref[128]; /* the Server Reference, NUL-terminated */
	size_t size; /* the CONNACK's */
};

/* Keep the Server Reference of props (if any) in *out. */
static void take_ref(const struct mqtt_props *props, struct redirect_ack *out)
{
	out->has_ref = mqtt_props_has(props, MQTT_PROP_SERVER_REFERENCE);
	out->ref[0] = '\0';
	if (!out->has_ref)
		return;
	ck_assert_uint_lt(props->server_reference.len, sizeof(out->ref));
	memcpy(out->ref, props->server_reference.data,
	       props->server_reference.len);
	out->ref[props->server_reference.len] = '\0';
}

/*
 * A 5.0 CONNECT with Maximum Packet Size max (0: none sent) to port:
 * refused, the CONNACK read into *out, then the connection is closed
 * [MQTT-3.2.2-7].
 */
static void connect_redirected(int port, uint32_t max,
			       struct redirect_ack *out)
{
	struct broker_proc b = broker;
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	uint8_t buf[512];
	int fd;

	b.port = port;
	fd = raw_connect(&b);
	ck_assert_int_ge(fd, 0);
	raw_connect_init(&pkt.u.connect, V5, "redirect-me");
	if (max) {
		mqtt_props_set(&pkt.u.connect.props,
			       MQTT_PROP_MAXIMUM_PACKET_SIZE);
		pkt.u.connect.props.maximum_packet_size = max;
	}
	ck_assert_int_eq(raw_send_packet(fd, &pkt, V5), 0);
	out->reason_len = expect_decoded(fd, MQTT_CONNACK, buf, sizeof(buf),
					 &pkt);
	out->reason = pkt.u.connack.reason;
	out->session_present = pkt.u.connack.session_present;
	take_ref(&pkt.u.connack.props, out);
	ck_assert_int_eq(mqtt_frame_peek(buf, sizeof(buf), 0, &out->size), 0);
	expect_closed(fd);
	close(fd);
}

/* A 5.0 client with Maximum Packet Size max (0: none sent), connected. */
static int client_max(const char *id, uint32_t max)
{
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int fd = raw_connect(&broker);

	ck_assert_int_ge(fd, 0);
	raw_connect_init(&c, V5, id);
	if (max) {
		mqtt_props_set(&c.props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
		c.props.maximum_packet_size = max;
	}
	ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf), &ack),
			 0);
	return fd;
}

/* Rewrite the configuration (extra after the first listener's lines),
 * SIGHUP, and wait for the n-th reload. */
static void reload_with(const char *extra, int n)
{
	FILE *f = fopen(broker.conf, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n"
		   "persistence false\nlog_type all\n%s\n", broker.port, extra);
	ck_assert_int_eq(fclose(f), 0);
	broker_signal(&broker, SIGHUP);
	ck_assert_msg(broker_wait_log_count(&broker, "configuration reloaded",
					    NULL, n, WAIT_MS),
		      "no reload %d in the log", n);
}

/*
 * response_information set: a client sending Request Response Information
 * 1 gets it in CONNACK; one sending 0, or nothing, does not
 * [MQTT-3.1.2-28]; 3.1.1 clients never do.  A SIGHUP changes it.
 */
START_TEST(test_response_information)
{
	static const struct {
		int rri; /* -1: the property left out */
		bool want;
	} rows[] = { { -1, false }, { 0, false }, { 1, true } };
	const char *want = "replies/";

	broker_stop(&broker);
	broker_start_checked(&broker, "response_information replies/");
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			struct mqtt_connect c;
			struct mqtt_connack ack;
			uint8_t buf[256];
			int fd = raw_connect(&broker);

			ck_assert_int_ge(fd, 0);
			raw_connect_init(&c, V5, "rri");
			if (rows[i].rri >= 0) {
				mqtt_props_set(&c.props,
				  MQTT_PROP_REQUEST_RESPONSE_INFORMATION);
				c.props.request_response_information =
					(uint8_t)rows[i].rri;
			}
			ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf,
							     sizeof(buf),
							     &ack), 0);
			ck_assert_msg(mqtt_props_has(&ack.props,
				      MQTT_PROP_RESPONSE_INFORMATION) ==
				      rows[i].want, "round %d row %zu", round,
				      i);
			if (rows[i].want) {
				ck_assert_uint_eq(ack.props.response_information.len,
						  strlen(want));
				ck_assert_mem_eq(ack.props.response_information.data,
						 want, strlen(want));
			}
			close(fd);
		}
		/* Reloaded with another value. */
		if (round == 0)
			reload_with("response_information other/", 1);
		want = "other/";
	}
}
END_TEST

/*
 * The server DISCONNECT that drains a 5.0 client: reason, Server
 * Reference (ref NULL: none), no Session Expiry [MQTT-3.14.2-2], then
 * the close.  Returns the Reason String's length (-1: none).
 */
static int expect_redirect_disconnect(int fd, uint8_t reason,
				      const char *ref)
{
	struct redirect_ack got;
	struct mqtt_packet pkt;
	uint8_t buf[512];
	int len = expect_decoded(fd, MQTT_DISCONNECT, buf, sizeof(buf), &pkt);

	ck_assert_uint_eq(pkt.u.disconnect.reason, reason);
	ck_assert(!mqtt_props_has(&pkt.u.disconnect.props,
				  MQTT_PROP_SESSION_EXPIRY_INTERVAL));
	take_ref(&pkt.u.disconnect.props, &got);
	ck_assert(got.has_ref == (ref != NULL));
	if (ref)
		ck_assert_str_eq(got.ref, ref);
	expect_closed(fd);
	close(fd);
	return len;
}

/*
 * server_reference set: a 5.0 CONNECT gets CONNACK 0x9C Use another
 * server with the Server Reference and a Reason String, Session Present
 * 0 [MQTT-3.2.2-6], and the connection closes [MQTT-3.2.2-7].
 */
START_TEST(test_redirect_connack_use_another_server)
{
	struct redirect_ack ack;

	broker_start_checked(&broker, "server_reference " REF);
	connect_redirected(broker.port, 0, &ack);
	ck_assert_uint_eq(ack.reason, MQTT_RC_USE_ANOTHER_SERVER);
	ck_assert(!ack.session_present);
	ck_assert(ack.has_ref);
	ck_assert_str_eq(ack.ref, REF);
	ck_assert_int_gt(ack.reason_len, 0);
	ck_assert(broker_wait_log(&broker, "redirect-me " /* client id */,
				  WAIT_MS));
	ck_assert(broker_log_contains(&broker, "connection refused: redirected "
				      "to " REF " (Use another server)"));
}
END_TEST

/* server_moved true: 0x9D Server moved, with the Server Reference. */
START_TEST(test_redirect_connack_server_moved)
{
	struct redirect_ack ack;

	broker_start_checked(&broker, "server_reference " REF
			     "\nserver_moved true");
	connect_redirected(broker.port, 0, &ack);
	ck_assert_uint_eq(ack.reason, MQTT_RC_SERVER_MOVED);
	ck_assert(ack.has_ref);
	ck_assert_str_eq(ack.ref, REF);
	ck_assert_int_gt(ack.reason_len, 0);
}
END_TEST

/*
 * 3.1.1 and 3.1 have no redirection: CONNACK 3 Server unavailable, then
 * the close.
 */
START_TEST(test_redirect_connack_v3_server_unavailable)
{
	static const uint8_t levels[] = { MQTT_V311, MQTT_V31 };
	struct mqtt_connack ack;
	struct mqtt_connect c;
	uint8_t buf[256];

	broker_start_checked(&broker, "server_reference " REF);
	for (size_t i = 0; i < sizeof(levels); i++) {
		int fd = raw_connect(&broker);

		ck_assert_int_ge(fd, 0);
		raw_connect_init(&c, levels[i], "old-client");
		ck_assert_int_eq(raw_mqtt_connect_ex(fd, &c, buf, sizeof(buf),
						     &ack),
				 MQTT_V3_CONNACK_REFUSED_SERVER_UNAVAILABLE);
		ck_assert(!ack.session_present);
		expect_closed(fd);
		close(fd);
	}
	ck_assert(broker_log_contains(&broker, "MQTT 3.1.1 cannot be "
				      "redirected (Server unavailable)"));
	ck_assert(broker_log_contains(&broker, "MQTT 3.1 cannot be "
				      "redirected (Server unavailable)"));
}
END_TEST

/*
 * [MQTT-3.1.2-24] The client's Maximum Packet Size holds for a
 * redirection too: one byte short of the whole CONNACK, the Reason String
 * goes [MQTT-3.2.2-19] and the Server Reference stays; one byte short of
 * that, the Server Reference goes too (the server "MAY" send it, section
 * 4.11) and the client still learns 0x9C.
 */
START_TEST(test_mqtt_3_1_2_24_server_reference)
{
	struct redirect_ack full, no_reason, bare;

	broker_start_checked(&broker, "server_reference " REF);
	connect_redirected(broker.port, 0, &full);
	ck_assert_int_gt(full.reason_len, 0);
	ck_assert(full.has_ref);

	connect_redirected(broker.port, (uint32_t)full.size, &no_reason);
	ck_assert_uint_eq(no_reason.size, full.size);
	connect_redirected(broker.port, (uint32_t)full.size - 1, &no_reason);
	ck_assert_uint_eq(no_reason.reason, MQTT_RC_USE_ANOTHER_SERVER);
	ck_assert_int_eq(no_reason.reason_len, -1);
	ck_assert(no_reason.has_ref);
	ck_assert_str_eq(no_reason.ref, REF);
	ck_assert_uint_lt(no_reason.size, full.size);

	connect_redirected(broker.port, (uint32_t)no_reason.size - 1, &bare);
	ck_assert_uint_eq(bare.reason, MQTT_RC_USE_ANOTHER_SERVER);
	ck_assert_int_eq(bare.reason_len, -1);
	ck_assert(!bare.has_ref);
	ck_assert_uint_lt(bare.size, no_reason.size);
}
END_TEST

/*
 * A listener block's server_reference is that listener's: the other
 * listener accepts clients.
 */
START_TEST(test_redirect_per_listener)
{
	struct redirect_ack ack;
	char extra[128], line[64];
	int port2 = harness_free_port(), fd;

	ck_assert_int_gt(port2, 0);
	snprintf(extra, sizeof(extra),
		 "listener %d 127.0.0.1\nserver_reference " REF, port2);
	broker_start_checked(&broker, extra);
	snprintf(line, sizeof(line), "listening on 127.0.0.1:%d", port2);
	ck_assert(broker_wait_log(&broker, line, WAIT_MS));
	connect_redirected(port2, 0, &ack);
	ck_assert_uint_eq(ack.reason, MQTT_RC_USE_ANOTHER_SERVER);
	ck_assert_str_eq(ack.ref, REF);
	fd = client("first-listener");
	expect_alive(fd);
	close(fd);
}
END_TEST

/*
 * SIGHUP that sets server_reference drains the listener: each connected
 * 5.0 client gets DISCONNECT 0x9C with the Server Reference and a Reason
 * String (one whose Maximum Packet Size is too small gets the bare
 * DISCONNECT 0x9C [MQTT-3.1.2-24]) and is closed; a 3.1.1 client, which
 * cannot be redirected, stays connected; new 5.0 clients are redirected.
 */
START_TEST(test_redirect_sighup_drain)
{
	struct redirect_ack ack;
	int v5, v5_small, v3;

	broker_start_checked(&broker, NULL);
	v5 = client("drain-v5");
	v5_small = client_max("drain-v5-small", 32);
	v3 = raw_connect(&broker);
	ck_assert_int_ge(v3, 0);
	ck_assert_int_eq(raw_mqtt_connect(v3, MQTT_V311, "drain-v3"), 0);

	reload_with("server_reference " REF, 1);
	ck_assert_int_gt(expect_redirect_disconnect(
				 v5, MQTT_RC_USE_ANOTHER_SERVER, REF), 0);
	ck_assert_int_eq(expect_redirect_disconnect(
				 v5_small, MQTT_RC_USE_ANOTHER_SERVER, NULL),
			 -1);
	expect_alive(v3);
	ck_assert(broker_log_contains(&broker, "server_reference " REF
				      ": redirected 2 MQTT 5 client(s) (Use "
				      "another server); 1 MQTT 3.1.x "
				      "client(s) stay connected"));
	ck_assert_int_eq(broker_log_count(&broker, "drain-v3",
					  "stays connected"), 1);
	ck_assert_int_eq(broker_log_count(&broker, "drain-v5 ",
					  "disconnected: redirected to " REF),
			 1);

	connect_redirected(broker.port, 0, &ack);
	ck_assert_uint_eq(ack.reason, MQTT_RC_USE_ANOTHER_SERVER);
	/* The same reference again: nothing more to drain. */
	reload_with("server_reference " REF, 2);
	expect_alive(v3);
	ck_assert_int_eq(broker_log_count(&broker, "redirected 2 MQTT 5",
					  NULL), 1);
	close(v3);
}
END_TEST

/*
 * Per listener on reload too: setting server_reference in the second
 * listener's block drains that listener's 5.0 clients only, with 0x9D
 * when server_moved is true there.
 */
START_TEST(test_redirect_sighup_drain_one_listener)
{
	struct broker_proc b2;
	char extra[160], line[64];
	struct mqtt_connect c;
	struct mqtt_connack ack;
	uint8_t buf[256];
	int port2 = harness_free_port(), fd1, fd2;

	ck_assert_int_gt(port2, 0);
	snprintf(extra, sizeof(extra), "listener %d 127.0.0.1", port2);
	broker_start_checked(&broker, extra);
	snprintf(line, sizeof(line), "listening on 127.0.0.1:%d", port2);
	ck_assert(broker_wait_log(&broker, line, WAIT_MS));
	fd1 = client("on-first");
	b2 = broker;
	b2.port = port2;
	fd2 = raw_connect(&b2);
	ck_assert_int_ge(fd2, 0);
	raw_connect_init(&c, V5, "on-second");
	ck_assert_int_eq(raw_mqtt_connect_ex(fd2, &c, buf, sizeof(buf), &ack),
			 0);

	snprintf(extra, sizeof(extra), "listener %d 127.0.0.1\n"
		 "server_reference " REF "\nserver_moved true", port2);
	reload_with(extra, 1);
	ck_assert_int_gt(expect_redirect_disconnect(
				 fd2, MQTT_RC_SERVER_MOVED, REF), 0);
	expect_alive(fd1);
	close(fd1);
}
END_TEST

/* Removing server_reference with another SIGHUP accepts clients again. */
START_TEST(test_redirect_sighup_removed)
{
	struct redirect_ack ack;
	int fd;

	broker_start_checked(&broker, "server_reference " REF
			     "\nserver_moved true");
	connect_redirected(broker.port, 0, &ack);
	ck_assert_uint_eq(ack.reason, MQTT_RC_SERVER_MOVED);
	reload_with("", 1);
	ck_assert(broker_log_contains(&broker, "server_reference removed: "
				      "accepting clients again"));
	fd = client("back-again");
	expect_alive(fd);
	close(fd);
}
END_TEST

static Suite *conformance_suite(void)
{
	Suite *s = suite_create("10-conformance");
	TCase *tc = tcase_create("conformance");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_mqtt_1_5_4_3);
	tcase_add_test(tc, test_mqtt_1_5_5_1);
	tcase_add_test(tc, test_mqtt_2_2_1_4);
	tcase_add_test(tc, test_mqtt_2_2_1_6);
	tcase_add_test(tc, test_mqtt_2_2_2_1);
	tcase_add_test(tc, test_mqtt_3_1_2_9);
	tcase_add_test(tc, test_mqtt_3_1_2_12);
	tcase_add_test(tc, test_mqtt_3_1_2_14);
	tcase_add_test(tc, test_mqtt_3_1_2_16);
	tcase_add_test(tc, test_mqtt_3_1_2_17);
	tcase_add_test(tc, test_mqtt_3_1_2_18);
	tcase_add_test(tc, test_mqtt_3_1_2_19);
	tcase_add_test(tc, test_mqtt_3_1_2_28);
	tcase_add_test(tc, test_mqtt_3_2_2_9_max_qos);
	tcase_add_test(tc, test_response_information);
	tcase_add_test(tc, test_mqtt_3_1_3_3);
	tcase_add_test(tc, test_mqtt_3_1_3_4);
	tcase_add_test(tc, test_mqtt_3_1_3_5);
	tcase_add_test(tc, test_mqtt_3_1_3_8);
	tcase_add_test(tc, test_mqtt_3_1_3_11);
	tcase_add_test(tc, test_mqtt_3_1_3_12);
	tcase_add_test(tc, test_mqtt_3_1_4_6);
	tcase_add_test(tc, test_mqtt_3_2_0_1);
	tcase_add_test(tc, test_mqtt_3_2_2_1);
	tcase_add_test(tc, test_mqtt_3_3_1_3);
	tcase_add_test(tc, test_mqtt_3_3_1_8);
	tcase_add_test(tc, test_mqtt_3_3_2_7);
	tcase_add_test(tc, test_mqtt_3_3_2_12);
	tcase_add_test(tc, test_mqtt_3_3_2_14);
	tcase_add_test(tc, test_mqtt_3_3_4_10);
	tcase_add_test(tc, test_mqtt_3_8_3_1);
	tcase_add_test(tc, test_mqtt_3_10_3_1);
	tcase_add_test(tc, test_mqtt_3_10_4_1);
	tcase_add_test(tc, test_mqtt_3_10_4_3);
	tcase_add_test(tc, test_mqtt_3_11_3_1);
	tcase_add_test(tc, test_mqtt_3_1_2_29);
	tcase_add_test(tc, test_mqtt_3_2_2_19);
	tcase_add_test(tc, test_mqtt_3_4_2_2);
	tcase_add_test(tc, test_mqtt_3_5_2_2);
	tcase_add_test(tc, test_mqtt_3_6_2_2);
	tcase_add_test(tc, test_mqtt_3_7_2_2);
	tcase_add_test(tc, test_mqtt_3_9_2_1);
	tcase_add_test(tc, test_mqtt_3_11_2_1);
	tcase_add_test(tc, test_mqtt_3_14_2_3);
	tcase_add_test(tc, test_mqtt_4_1_0_1);
	tcase_add_test(tc, test_mqtt_4_3_2_5);
	tcase_add_test(tc, test_mqtt_4_3_3_9);
	tcase_add_test(tc, test_mqtt_4_3_3_13);
	tcase_add_test(tc, test_mqtt_4_4_0_2);
	tcase_add_test(tc, test_mqtt_4_7_3_1);
	tcase_add_test(tc, test_mqtt_4_7_3_4);
	tcase_add_test(tc, test_mqtt_4_8_2_1);
	tcase_add_test(tc, test_mqtt_4_8_2_3);
	tcase_add_test(tc, test_mqtt_4_8_2_4);
	tcase_add_test(tc, test_mqtt_4_8_2_5);
	tcase_add_test(tc, test_mqtt_4_8_2_6);
	suite_add_tcase(s, tc);

	/* Server redirection: each test starts the broker it needs. */
	tc = tcase_create("redirect");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_redirect_connack_use_another_server);
	tcase_add_test(tc, test_redirect_connack_server_moved);
	tcase_add_test(tc, test_redirect_connack_v3_server_unavailable);
	tcase_add_test(tc, test_mqtt_3_1_2_24_server_reference);
	tcase_add_test(tc, test_redirect_per_listener);
	tcase_add_test(tc, test_redirect_sighup_drain);
	tcase_add_test(tc, test_redirect_sighup_drain_one_listener);
	tcase_add_test(tc, test_redirect_sighup_removed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conformance_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
