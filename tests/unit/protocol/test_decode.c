/*
 * mqtt_decode() against byte-exact packets written from the MQTT 3.1,
 * 3.1.1 and 5.0 specifications: every control packet type in each version,
 * the examples the specifications give, and a table of malformed or refused
 * inputs, each expecting the specific enum mqtt_err of protocol/mqtt.h and
 * the reason code that error maps to.
 *
 * Every input here is a complete packet whose Remaining Length agrees with
 * its size (mqtt_decode() takes what mqtt_frame_peek() delimited); short
 * fields and trailing bytes are expressed inside a consistent frame.  The
 * malformed table checks that about itself before calling the decoder.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, \
	sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Building blocks for the vectors. */
#define NAME_MQTT 0x00, 0x04, 'M', 'Q', 'T', 'T'
#define NAME_MQISDP 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p'
/* CONNECT variable header up to the properties: 10 bytes, keep alive 60. */
#define VH(level, flags) NAME_MQTT, level, flags, 0x00, 0x3C
#define STR_A 0x00, 0x01, 'a'
#define STR_T 0x00, 0x01, 't'
#define TOPIC_AB 0x00, 0x03, 'a', '/', 'b'
#define UP_KV 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v' /* 7 bytes */

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

/* The test's own consistency: remaining length == bytes after it. */
static void check_frame_consistent(const char *name, const uint8_t *bytes,
				   size_t len)
{
	uint32_t rl = 0;
	size_t i = 1;
	unsigned shift = 0;

	ck_assert_msg(len >= 2, "%s: too short for a fixed header", name);
	do {
		ck_assert_msg(i < len && i <= 4, "%s: bad length field", name);
		rl |= (uint32_t)(bytes[i] & 0x7F) << shift;
		shift += 7;
	} while (bytes[i++] & 0x80);
	ck_assert_msg(len - i == rl,
		      "test bug in '%s': remaining length %u but %zu bytes",
		      name, rl, len - i);
}

static struct mqtt_packet pkt;
static const uint8_t *g_buf;
static size_t g_len;

static void decode_ok(int line, const uint8_t *buf, size_t len,
		      uint8_t version, uint8_t type)
{
	char name[32];
	int rc;

	snprintf(name, sizeof(name), "vector at line %d", line);
	check_frame_consistent(name, buf, len);
	memset(&pkt, 0, sizeof(pkt));
	g_buf = buf;
	g_len = len;
	rc = mqtt_decode(buf, len, version, &pkt);
	ck_assert_msg(rc == MQTT_OK, "line %d: mqtt_decode() = %d (%s)", line,
		      rc, mqtt_err_str(rc));
	ck_assert_msg(pkt.type == type, "line %d: type %u, expected %u", line,
		      pkt.type, type);
}

#define DECODE_OK(version, type, ...) do { \
	static const uint8_t in_[] = { __VA_ARGS__ }; \
	decode_ok(__LINE__, in_, sizeof(in_), version, type); \
} while (0)

/* A view must equal the expected bytes and point into the input buffer. */
static void check_view(int line, struct mqtt_bytes v, const uint8_t *exp,
		       size_t n)
{
	ck_assert_msg(v.len == n, "line %d: view length %zu, expected %zu",
		      line, v.len, n);
	if (!n)
		return;
	ck_assert_msg(v.data != NULL, "line %d: NULL view", line);
	ck_assert_msg(memcmp(v.data, exp, n) == 0, "line %d: view bytes differ",
		      line);
	ck_assert_msg(v.data >= g_buf && v.data + n <= g_buf + g_len,
		      "line %d: view does not point into the input", line);
}

#define CK_STR(v, lit) \
	check_view(__LINE__, (v), (const uint8_t *)(lit), sizeof(lit) - 1)
#define CK_BIN(v, ...) \
	check_view(__LINE__, (v), (const uint8_t[]){ __VA_ARGS__ }, \
		   sizeof((const uint8_t[]){ __VA_ARGS__ }))
#define CK_EMPTY(v) \
	ck_assert_msg((v).len == 0, "line %d: view not empty", __LINE__)

#define CK_HAS(p, id) \
	ck_assert_msg(mqtt_props_has(p, id), "line %d: property 0x%02x " \
		      "missing", __LINE__, (unsigned)(id))
#define CK_HASNT(p, id) \
	ck_assert_msg(!mqtt_props_has(p, id), "line %d: property 0x%02x " \
		      "present", __LINE__, (unsigned)(id))

/* Walk raw with mqtt_prop_next() and compare the user properties. */
static void check_users(int line, const struct mqtt_props *p, size_t n,
			const char *const *names, const char *const *values)
{
	struct mqtt_prop pr;
	size_t off = 0, i = 0;

	ck_assert_msg(p->user_count == n,
		      "line %d: user_count %u, expected %zu", line,
		      p->user_count, n);
	while (mqtt_prop_next(&p->raw, &off, &pr)) {
		if (pr.id != MQTT_PROP_USER_PROPERTY)
			continue;
		ck_assert_msg(i < n, "line %d: too many user properties", line);
		check_view(line, pr.str, (const uint8_t *)names[i],
			   strlen(names[i]));
		check_view(line, pr.value, (const uint8_t *)values[i],
			   strlen(values[i]));
		i++;
	}
	ck_assert_msg(i == n, "line %d: walked %zu user properties, "
		      "expected %zu", line, i, n);
}

/* Walk raw and compare the subscription identifiers in order. */
static void check_sub_ids(int line, const struct mqtt_props *p, size_t n,
			  const uint32_t *ids)
{
	struct mqtt_prop pr;
	size_t off = 0, i = 0;

	ck_assert_msg(p->subscription_id_count == n,
		      "line %d: subscription_id_count %u, expected %zu", line,
		      p->subscription_id_count, n);
	while (mqtt_prop_next(&p->raw, &off, &pr)) {
		if (pr.id != MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
			continue;
		ck_assert_msg(i < n, "line %d: too many subscription ids",
			      line);
		ck_assert_msg(pr.num == ids[i], "line %d: subscription id %u, "
			      "expected %u", line, pr.num, ids[i]);
		i++;
	}
	ck_assert_msg(i == n, "line %d: walked %zu subscription ids", line, i);
}

static void check_sub(int line, const struct mqtt_bytes *entries,
		      size_t *off, const char *filter, uint8_t qos,
		      bool no_local, bool rap, uint8_t rh)
{
	struct mqtt_sub_entry e;

	memset(&e, 0xA5, sizeof(e));
	ck_assert_msg(mqtt_sub_next(entries, off, &e),
		      "line %d: entry '%s' missing", line, filter);
	check_view(line, e.filter, (const uint8_t *)filter, strlen(filter));
	ck_assert_msg(e.qos == qos, "line %d: qos %u", line, e.qos);
	ck_assert_msg(e.no_local == no_local, "line %d: no_local", line);
	ck_assert_msg(e.retain_as_published == rap, "line %d: rap", line);
	ck_assert_msg(e.retain_handling == rh, "line %d: retain handling %u",
		      line, e.retain_handling);
}

static void check_unsub(int line, const struct mqtt_bytes *entries,
			size_t *off, const char *filter)
{
	struct mqtt_bytes f;

	ck_assert_msg(mqtt_unsub_next(entries, off, &f),
		      "line %d: filter '%s' missing", line, filter);
	check_view(line, f, (const uint8_t *)filter, strlen(filter));
}

/* ---------------------------------------------------------------------- */
/* CONNECT                                                                */

/*
 * MQTT 3.1.1 §3.1.2.10 variable header example: "MQTT", level 4, flags
 * 0xCE (user name, password, will QoS 1, will, clean session), keep alive
 * 10; payload in the order of [MQTT-3.1.3-1].
 */
START_TEST(connect_v311_spec_example)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT,
		  0x10, 0x20,
		  NAME_MQTT, 0x04, 0xCE, 0x00, 0x0A,
		  0x00, 0x03, 'c', 'i', 'd',
		  0x00, 0x03, 'w', '/', 't',
		  0x00, 0x03, 'b', 'y', 'e',
		  0x00, 0x01, 'u',
		  0x00, 0x02, 0x00, 0xFF);
	ck_assert_uint_eq(c->protocol_level, 4);
	ck_assert(!c->bridge);
	ck_assert(c->clean_start);
	ck_assert(c->will_flag);
	ck_assert_uint_eq(c->will_qos, 1);
	ck_assert(!c->will_retain);
	ck_assert(c->username_flag);
	ck_assert(c->password_flag);
	ck_assert_uint_eq(c->keep_alive, 10);
	CK_STR(c->client_id, "cid");
	CK_STR(c->will_topic, "w/t");
	CK_STR(c->will_payload, "bye");
	CK_STR(c->username, "u");
	/* Password is Binary Data, not a UTF-8 string [MQTT-3.1.3.5]. */
	CK_BIN(c->password, 0x00, 0xFF);
}
END_TEST

START_TEST(connect_v311_minimal)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x0D, VH(0x04, 0x02), STR_A);
	ck_assert_uint_eq(c->protocol_level, 4);
	ck_assert(c->clean_start);
	ck_assert(!c->will_flag);
	ck_assert(!c->will_retain);
	ck_assert_uint_eq(c->will_qos, 0);
	ck_assert(!c->username_flag);
	ck_assert(!c->password_flag);
	ck_assert_uint_eq(c->keep_alive, 60);
	CK_STR(c->client_id, "a");
}
END_TEST

/* A zero-byte ClientId with Clean Session 1 is legal [MQTT-3.1.3-7]. */
START_TEST(connect_v311_empty_client_id)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x0C, NAME_MQTT, 0x04, 0x02,
		  0xFF, 0xFF, 0x00, 0x00);
	ck_assert(c->clean_start);
	ck_assert_uint_eq(c->keep_alive, 65535);
	CK_EMPTY(c->client_id);
}
END_TEST

/* Will QoS 2, will retain, clean session 0, empty will message. */
START_TEST(connect_v311_will_qos2_retain)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x12,
		  NAME_MQTT, 0x04, 0x34, 0x00, 0x00,
		  0x00, 0x01, 'c', STR_T, 0x00, 0x00);
	ck_assert(!c->clean_start);
	ck_assert(c->will_flag);
	ck_assert_uint_eq(c->will_qos, 2);
	ck_assert(c->will_retain);
	ck_assert_uint_eq(c->keep_alive, 0);
	CK_STR(c->client_id, "c");
	CK_STR(c->will_topic, "t");
	CK_EMPTY(c->will_payload);
}
END_TEST

START_TEST(connect_v311_will_qos0_retain)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x13,
		  VH(0x04, 0x26), STR_A, STR_T, 0x00, 0x01, 'm');
	ck_assert(c->will_flag);
	ck_assert_uint_eq(c->will_qos, 0);
	ck_assert(c->will_retain);
	CK_STR(c->will_payload, "m");
}
END_TEST

START_TEST(connect_v311_username_only)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x13, VH(0x04, 0x82), STR_A,
		  0x00, 0x04, 'u', 's', 'e', 'r');
	ck_assert(c->username_flag);
	ck_assert(!c->password_flag);
	CK_STR(c->username, "user");
}
END_TEST

/* The UTF-8 example of [MQTT-1.5.3]/[MQTT-1.5.4]: "A" U+2A6D4. */
START_TEST(connect_v311_utf8_spec_example)
{
	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x11, VH(0x04, 0x02),
		  0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94);
	CK_BIN(pkt.u.connect.client_id, 0x41, 0xF0, 0xAA, 0x9B, 0x94);
}
END_TEST

/* U+FEFF is a character like any other [MQTT-1.5.4-3]: not stripped. */
START_TEST(connect_v311_bom_kept)
{
	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x10, VH(0x04, 0x02),
		  0x00, 0x04, 0xEF, 0xBB, 0xBF, 'a');
	CK_BIN(pkt.u.connect.client_id, 0xEF, 0xBB, 0xBF, 'a');
}
END_TEST

/* MQTT 3.1: protocol name "MQIsdp", level 3. */
START_TEST(connect_v31_minimal)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x0F,
		  NAME_MQISDP, 0x03, 0x02, 0x00, 0x3C, STR_A);
	ck_assert_uint_eq(c->protocol_level, 3);
	ck_assert(!c->bridge);
	ck_assert(c->clean_start);
	ck_assert_uint_eq(c->keep_alive, 60);
	CK_STR(c->client_id, "a");
}
END_TEST

/* MQTT 3.1 CONNECT example flags 0xCE with all payload fields. */
START_TEST(connect_v31_full)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V31, MQTT_CONNECT, 0x10, 0x1B,
		  NAME_MQISDP, 0x03, 0xCE, 0x00, 0x0A,
		  0x00, 0x01, 'x', STR_T, 0x00, 0x01, 'm',
		  0x00, 0x01, 'u', 0x00, 0x01, 'p');
	ck_assert_uint_eq(c->protocol_level, 3);
	ck_assert(c->will_flag);
	ck_assert_uint_eq(c->will_qos, 1);
	ck_assert(c->username_flag && c->password_flag);
	ck_assert_uint_eq(c->keep_alive, 10);
	CK_STR(c->client_id, "x");
	CK_STR(c->will_topic, "t");
	CK_STR(c->will_payload, "m");
	CK_STR(c->username, "u");
	CK_STR(c->password, "p");
}
END_TEST

/* The version argument is ignored for CONNECT: the level is in the packet. */
START_TEST(connect_version_argument_ignored)
{
	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x0D, VH(0x04, 0x02), STR_A);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 4);
	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x0E, VH(0x05, 0x02), 0x00,
		  STR_A);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 5);
}
END_TEST

/* Bridges: level 0x84 / 0x83 (mosquitto); the bit is reported apart. */
START_TEST(connect_bridge_levels)
{
	DECODE_OK(MQTT_V311, MQTT_CONNECT, 0x10, 0x0D, VH(0x84, 0x02), STR_A);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 4);
	ck_assert(pkt.u.connect.bridge);
	DECODE_OK(MQTT_V31, MQTT_CONNECT, 0x10, 0x0F,
		  NAME_MQISDP, 0x83, 0x02, 0x00, 0x3C, STR_A);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 3);
	ck_assert(pkt.u.connect.bridge);
}
END_TEST

/*
 * MQTT 5.0 §3.1.2.12 variable header example: flags 0xCE, keep alive 10,
 * properties: Session Expiry Interval 10.  Payload with will properties
 * (Will Delay Interval 5, Payload Format Indicator 1, a User Property).
 */
START_TEST(connect_v5_spec_example)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x35,
		  NAME_MQTT, 0x05, 0xCE, 0x00, 0x0A,
		  0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
		  0x00, 0x03, 'c', 'i', 'd',
		  0x0E, 0x18, 0x00, 0x00, 0x00, 0x05, 0x01, 0x01, UP_KV,
		  0x00, 0x03, 'w', '/', 't',
		  0x00, 0x03, 'b', 'y', 'e',
		  0x00, 0x01, 'u',
		  0x00, 0x02, 0x00, 0xFF);
	ck_assert_uint_eq(c->protocol_level, 5);
	ck_assert(c->clean_start && c->will_flag && c->username_flag &&
		  c->password_flag);
	ck_assert_uint_eq(c->will_qos, 1);
	ck_assert(!c->will_retain);
	ck_assert_uint_eq(c->keep_alive, 10);
	CK_HAS(&c->props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	ck_assert_uint_eq(c->props.session_expiry_interval, 10);
	ck_assert_uint_eq(c->props.present,
			  (uint64_t)1 << MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	CK_BIN(c->props.raw, 0x11, 0x00, 0x00, 0x00, 0x0A);
	ck_assert_uint_eq(c->props.user_count, 0);
	CK_STR(c->client_id, "cid");
	CK_HAS(&c->will_props, MQTT_PROP_WILL_DELAY_INTERVAL);
	ck_assert_uint_eq(c->will_props.will_delay_interval, 5);
	CK_HAS(&c->will_props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	ck_assert_uint_eq(c->will_props.payload_format_indicator, 1);
	CK_HAS(&c->will_props, MQTT_PROP_USER_PROPERTY);
	CK_HASNT(&c->will_props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	ck_assert_uint_eq(c->will_props.raw.len, 14);
	check_users(__LINE__, &c->will_props, 1, names, values);
	CK_STR(c->will_topic, "w/t");
	CK_STR(c->will_payload, "bye");
	CK_STR(c->username, "u");
	CK_BIN(c->password, 0x00, 0xFF);
}
END_TEST

/* Every CONNECT property, two User Properties kept in order. */
START_TEST(connect_v5_all_properties)
{
	static const char *const names[] = { "a", "b" };
	static const char *const values[] = { "1", "2" };
	const struct mqtt_props *p = &pkt.u.connect.props;

	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x3C,
		  NAME_MQTT, 0x05, 0x02, 0x00, 0x00,
		  0x2F,
		  0x11, 0xFF, 0xFF, 0xFF, 0xFF,
		  0x21, 0x00, 0x0A,
		  0x27, 0x00, 0x00, 0x10, 0x00,
		  0x22, 0x00, 0x05,
		  0x19, 0x01,
		  0x17, 0x00,
		  0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',
		  0x26, 0x00, 0x01, 'b', 0x00, 0x01, '2',
		  0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',
		  0x16, 0x00, 0x02, 0x01, 0x02,
		  0x00, 0x00);
	ck_assert_uint_eq(p->session_expiry_interval, 0xFFFFFFFFu);
	ck_assert_uint_eq(p->receive_maximum, 10);
	ck_assert_uint_eq(p->maximum_packet_size, 4096);
	ck_assert_uint_eq(p->topic_alias_maximum, 5);
	CK_HAS(p, MQTT_PROP_REQUEST_RESPONSE_INFORMATION);
	ck_assert_uint_eq(p->request_response_information, 1);
	CK_HAS(p, MQTT_PROP_REQUEST_PROBLEM_INFORMATION);
	ck_assert_uint_eq(p->request_problem_information, 0);
	CK_STR(p->authentication_method, "SCRAM");
	CK_BIN(p->authentication_data, 0x01, 0x02);
	ck_assert_uint_eq(p->raw.len, 0x2F);
	check_users(__LINE__, p, 2, names, values);
	CK_EMPTY(pkt.u.connect.client_id);
	ck_assert(!pkt.u.connect.will_flag);
}
END_TEST

/* MQTT 5 allows a Password without a User Name (§3.1.2.9). */
START_TEST(connect_v5_password_without_username)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x11, VH(0x05, 0x42), 0x00,
		  0x00, 0x01, 'c', 0x00, 0x01, 'p');
	ck_assert(!c->username_flag);
	ck_assert(c->password_flag);
	CK_STR(c->password, "p");
}
END_TEST

START_TEST(connect_v5_will_qos2_retain_no_props)
{
	const struct mqtt_connect *c = &pkt.u.connect;

	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x14, VH(0x05, 0x36), 0x00,
		  0x00, 0x01, 'c', 0x00, STR_T, 0x00, 0x00);
	ck_assert(c->will_flag && c->will_retain && c->clean_start);
	ck_assert_uint_eq(c->will_qos, 2);
	ck_assert_uint_eq(c->props.present, 0);
	ck_assert_uint_eq(c->will_props.present, 0);
	CK_EMPTY(c->will_props.raw);
	CK_STR(c->will_topic, "t");
	CK_EMPTY(c->will_payload);
}
END_TEST

/* Every will property (§3.1.3.2) in the will properties. */
START_TEST(connect_v5_all_will_properties)
{
	const struct mqtt_props *w = &pkt.u.connect.will_props;

	DECODE_OK(MQTT_V5, MQTT_CONNECT, 0x10, 0x42, VH(0x05, 0x06), 0x00,
		  STR_A,
		  0x2D,
		  0x18, 0x00, 0x00, 0x01, 0x00,
		  0x01, 0x00,
		  0x02, 0x00, 0x00, 0x00, 0x3C,
		  0x03, 0x00, 0x04, 't', 'e', 'x', 't',
		  0x08, 0x00, 0x03, 'r', '/', 's',
		  0x09, 0x00, 0x03, 0x00, 0x01, 0x02,
		  UP_KV, UP_KV,
		  STR_T, 0x00, 0x01, 'm');
	ck_assert_uint_eq(w->will_delay_interval, 256);
	CK_HAS(w, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	ck_assert_uint_eq(w->payload_format_indicator, 0);
	ck_assert_uint_eq(w->message_expiry_interval, 60);
	CK_STR(w->content_type, "text");
	CK_STR(w->response_topic, "r/s");
	CK_BIN(w->correlation_data, 0x00, 0x01, 0x02);
	ck_assert_uint_eq(w->user_count, 2);
	CK_STR(pkt.u.connect.will_payload, "m");
}
END_TEST

/* ---------------------------------------------------------------------- */
/* CONNACK                                                                */

START_TEST(connack_v311)
{
	DECODE_OK(MQTT_V311, MQTT_CONNACK, 0x20, 0x02, 0x00, 0x00);
	ck_assert(!pkt.u.connack.session_present);
	ck_assert_uint_eq(pkt.u.connack.reason, 0);
	DECODE_OK(MQTT_V311, MQTT_CONNACK, 0x20, 0x02, 0x01, 0x00);
	ck_assert(pkt.u.connack.session_present);
	DECODE_OK(MQTT_V311, MQTT_CONNACK, 0x20, 0x02, 0x00, 0x05);
	ck_assert_uint_eq(pkt.u.connack.reason,
			  MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED);
	DECODE_OK(MQTT_V31, MQTT_CONNACK, 0x20, 0x02, 0x00, 0x02);
	ck_assert_uint_eq(pkt.u.connack.reason,
			  MQTT_V3_CONNACK_REFUSED_IDENTIFIER_REJECTED);
}
END_TEST

START_TEST(connack_v5_minimal)
{
	DECODE_OK(MQTT_V5, MQTT_CONNACK, 0x20, 0x03, 0x01, 0x00, 0x00);
	ck_assert(pkt.u.connack.session_present);
	ck_assert_uint_eq(pkt.u.connack.reason, 0);
	ck_assert_uint_eq(pkt.u.connack.props.present, 0);
	DECODE_OK(MQTT_V5, MQTT_CONNACK, 0x20, 0x03, 0x00, 0x87, 0x00);
	ck_assert_uint_eq(pkt.u.connack.reason, MQTT_RC_NOT_AUTHORIZED);
}
END_TEST

/* Every CONNACK property (§3.2.2.3). */
START_TEST(connack_v5_all_properties)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	const struct mqtt_props *p = &pkt.u.connack.props;

	DECODE_OK(MQTT_V5, MQTT_CONNACK, 0x20, 0x3A, 0x00, 0x00,
		  0x37,
		  0x12, 0x00, 0x03, 'a', 'b', 'c',
		  0x13, 0x00, 0x1E,
		  0x24, 0x01,
		  0x25, 0x00,
		  0x27, 0x00, 0x01, 0x00, 0x00,
		  0x22, 0x00, 0x0A,
		  0x28, 0x01,
		  0x29, 0x00,
		  0x2A, 0x01,
		  0x21, 0x00, 0x14,
		  0x11, 0x00, 0x00, 0x0E, 0x10,
		  0x1A, 0x00, 0x01, 'r',
		  0x1C, 0x00, 0x01, 's',
		  0x1F, 0x00, 0x02, 'o', 'k',
		  UP_KV);
	CK_STR(p->assigned_client_identifier, "abc");
	ck_assert_uint_eq(p->server_keep_alive, 30);
	CK_HAS(p, MQTT_PROP_MAXIMUM_QOS);
	ck_assert_uint_eq(p->maximum_qos, 1);
	CK_HAS(p, MQTT_PROP_RETAIN_AVAILABLE);
	ck_assert_uint_eq(p->retain_available, 0);
	ck_assert_uint_eq(p->maximum_packet_size, 65536);
	ck_assert_uint_eq(p->topic_alias_maximum, 10);
	ck_assert_uint_eq(p->wildcard_subscription_available, 1);
	CK_HAS(p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE);
	ck_assert_uint_eq(p->subscription_identifier_available, 0);
	ck_assert_uint_eq(p->shared_subscription_available, 1);
	ck_assert_uint_eq(p->receive_maximum, 20);
	ck_assert_uint_eq(p->session_expiry_interval, 3600);
	CK_STR(p->response_information, "r");
	CK_STR(p->server_reference, "s");
	CK_STR(p->reason_string, "ok");
	check_users(__LINE__, p, 1, names, values);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* PUBLISH                                                                */

START_TEST(publish_v311_qos0)
{
	const struct mqtt_publish *p = &pkt.u.publish;

	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x30, 0x07, TOPIC_AB, 'h', 'i');
	ck_assert_uint_eq(p->qos, 0);
	ck_assert(!p->dup && !p->retain);
	ck_assert_uint_eq(p->packet_id, 0);
	CK_STR(p->topic, "a/b");
	CK_STR(p->payload, "hi");
}
END_TEST

/* MQTT 3.1.1 §3.3.2.3 example: topic "a/b", packet identifier 10. */
START_TEST(publish_v311_qos1_spec_example)
{
	const struct mqtt_publish *p = &pkt.u.publish;

	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x32, 0x08, TOPIC_AB, 0x00, 0x0A,
		  'x');
	ck_assert_uint_eq(p->qos, 1);
	ck_assert_uint_eq(p->packet_id, 10);
	CK_STR(p->topic, "a/b");
	CK_STR(p->payload, "x");
}
END_TEST

START_TEST(publish_v311_qos2_dup_retain_empty)
{
	const struct mqtt_publish *p = &pkt.u.publish;

	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x3D, 0x05, STR_T, 0xFF, 0xFF);
	ck_assert_uint_eq(p->qos, 2);
	ck_assert(p->dup);
	ck_assert(p->retain);
	ck_assert_uint_eq(p->packet_id, 65535);
	CK_STR(p->topic, "t");
	CK_EMPTY(p->payload);
}
END_TEST

/* A zero-length retained payload is valid [MQTT-3.3.1-6]. */
START_TEST(publish_v311_retain_empty_payload)
{
	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x31, 0x05, TOPIC_AB);
	ck_assert(pkt.u.publish.retain);
	ck_assert_uint_eq(pkt.u.publish.qos, 0);
	CK_EMPTY(pkt.u.publish.payload);
}
END_TEST

START_TEST(publish_v311_utf8_topic_example)
{
	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x30, 0x07,
		  0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94);
	CK_BIN(pkt.u.publish.topic, 0x41, 0xF0, 0xAA, 0x9B, 0x94);
	CK_EMPTY(pkt.u.publish.payload);
}
END_TEST

/* Topic names may have empty levels and a leading '$' or '/'. */
START_TEST(publish_v311_topic_shapes)
{
	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x30, 0x06, 0x00, 0x04, '/', 'a',
		  '/', '/');
	CK_STR(pkt.u.publish.topic, "/a//");
	DECODE_OK(MQTT_V311, MQTT_PUBLISH, 0x30, 0x06, 0x00, 0x04, '$', 'S',
		  'Y', 'S');
	CK_STR(pkt.u.publish.topic, "$SYS");
}
END_TEST

START_TEST(publish_v31)
{
	DECODE_OK(MQTT_V31, MQTT_PUBLISH, 0x32, 0x08, TOPIC_AB, 0x00, 0x0A,
		  'x');
	ck_assert_uint_eq(pkt.u.publish.packet_id, 10);
	CK_STR(pkt.u.publish.payload, "x");
}
END_TEST

/* MQTT 5.0 §3.3.2.3 example: "a/b", packet identifier 10, no properties. */
START_TEST(publish_v5_spec_example)
{
	const struct mqtt_publish *p = &pkt.u.publish;

	DECODE_OK(MQTT_V5, MQTT_PUBLISH, 0x32, 0x09, TOPIC_AB, 0x00, 0x0A,
		  0x00, 'x');
	ck_assert_uint_eq(p->packet_id, 10);
	ck_assert_uint_eq(p->props.present, 0);
	CK_EMPTY(p->props.raw);
	CK_STR(p->topic, "a/b");
	CK_STR(p->payload, "x");
}
END_TEST

/* Every PUBLISH property, two User Properties, two Subscription Ids. */
START_TEST(publish_v5_all_properties)
{
	static const char *const names[] = { "k1", "k2" };
	static const char *const values[] = { "v1", "v2" };
	static const uint32_t ids[] = { 1, 128 };
	const struct mqtt_publish *p = &pkt.u.publish;
	const struct mqtt_props *pp = &p->props;

	DECODE_OK(MQTT_V5, MQTT_PUBLISH, 0x33, 0x3D, TOPIC_AB, 0x00, 0x01,
		  0x33,
		  0x01, 0x01,
		  0x02, 0x00, 0x00, 0x00, 0x3C,
		  0x03, 0x00, 0x04, 'j', 's', 'o', 'n',
		  0x08, 0x00, 0x03, 'r', '/', '1',
		  0x09, 0x00, 0x02, 0x00, 0xFF,
		  0x23, 0x00, 0x07,
		  0x26, 0x00, 0x02, 'k', '1', 0x00, 0x02, 'v', '1',
		  0x26, 0x00, 0x02, 'k', '2', 0x00, 0x02, 'v', '2',
		  0x0B, 0x01,
		  0x0B, 0x80, 0x01,
		  '{', '}');
	ck_assert_uint_eq(p->qos, 1);
	ck_assert(p->retain);
	ck_assert_uint_eq(p->packet_id, 1);
	CK_STR(p->topic, "a/b");
	CK_STR(p->payload, "{}");
	ck_assert_uint_eq(pp->payload_format_indicator, 1);
	ck_assert_uint_eq(pp->message_expiry_interval, 60);
	CK_STR(pp->content_type, "json");
	CK_STR(pp->response_topic, "r/1");
	CK_BIN(pp->correlation_data, 0x00, 0xFF);
	CK_HAS(pp, MQTT_PROP_TOPIC_ALIAS);
	ck_assert_uint_eq(pp->topic_alias, 7);
	CK_HAS(pp, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	ck_assert_uint_eq(pp->subscription_id, 1);
	CK_HAS(pp, MQTT_PROP_USER_PROPERTY);
	ck_assert_uint_eq(pp->raw.len, 0x33);
	ck_assert(pp->raw.data == g_buf + 10);
	check_users(__LINE__, pp, 2, names, values);
	check_sub_ids(__LINE__, pp, 2, ids);
}
END_TEST

/* Subscription Identifier at its maximum, 268,435,455 (§3.3.2.3.8). */
START_TEST(publish_v5_subscription_id_max)
{
	DECODE_OK(MQTT_V5, MQTT_PUBLISH, 0x30, 0x09, STR_T, 0x05, 0x0B, 0xFF,
		  0xFF, 0xFF, 0x7F);
	ck_assert_uint_eq(pkt.u.publish.props.subscription_id,
			  MQTT_SUBSCRIPTION_ID_MAX);
	ck_assert_uint_eq(pkt.u.publish.props.subscription_id_count, 1);
}
END_TEST

/* An empty Topic Name with a Topic Alias is how aliases are used. */
START_TEST(publish_v5_empty_topic_with_alias)
{
	DECODE_OK(MQTT_V5, MQTT_PUBLISH, 0x30, 0x07, 0x00, 0x00, 0x03, 0x23,
		  0x00, 0x01, 'p');
	CK_EMPTY(pkt.u.publish.topic);
	ck_assert_uint_eq(pkt.u.publish.props.topic_alias, 1);
	CK_STR(pkt.u.publish.payload, "p");
	DECODE_OK(MQTT_V5, MQTT_PUBLISH, 0x34, 0x08, 0x00, 0x00, 0x12, 0x34,
		  0x03, 0x23, 0xFF, 0xFF);
	ck_assert_uint_eq(pkt.u.publish.packet_id, 0x1234);
	ck_assert_uint_eq(pkt.u.publish.props.topic_alias, 65535);
	CK_EMPTY(pkt.u.publish.payload);
}
END_TEST

/* Absent properties leave no stale state behind. */
START_TEST(publish_v5_no_props_clears_output)
{
	static const uint8_t in[] = { 0x30, 0x04, STR_T, 0x00 };

	memset(&pkt, 0xA5, sizeof(pkt));
	g_buf = in;
	g_len = sizeof(in);
	ck_assert_int_eq(mqtt_decode(in, sizeof(in), MQTT_V5, &pkt), MQTT_OK);
	ck_assert_uint_eq(pkt.type, MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.qos, 0);
	ck_assert(!pkt.u.publish.dup && !pkt.u.publish.retain);
	ck_assert_uint_eq(pkt.u.publish.packet_id, 0);
	ck_assert_uint_eq(pkt.u.publish.props.present, 0);
	ck_assert_uint_eq(pkt.u.publish.props.user_count, 0);
	ck_assert_uint_eq(pkt.u.publish.props.subscription_id_count, 0);
	CK_EMPTY(pkt.u.publish.props.raw);
	CK_STR(pkt.u.publish.topic, "t");
	CK_EMPTY(pkt.u.publish.payload);
}
END_TEST

/*
 * Remaining Length boundaries of §2.2.3 (1..4 bytes): a QoS 0 PUBLISH with
 * topic "t" and a payload filling the rest.
 */
static const uint32_t rl_bounds[] = {
	3, 127, 128, 16383, 16384, 2097151, 2097152,
};

START_TEST(publish_remaining_length_boundaries)
{
	uint32_t rl = rl_bounds[_i];
	size_t hdr = 1 + mqtt_varint_size(rl);
	size_t len = hdr + rl;
	uint8_t *buf = malloc(len);
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(buf);
	buf[0] = 0x30;
	ck_assert_uint_eq(mqtt_varint_encode(rl, buf + 1), hdr - 1);
	buf[hdr] = 0x00;
	buf[hdr + 1] = 0x01;
	buf[hdr + 2] = 't';
	for (i = hdr + 3; i < len; i++)
		buf[i] = (uint8_t)i;
	memset(&pkt, 0, sizeof(pkt));
	rc = mqtt_decode(buf, len, MQTT_V311, &pkt);
	ck_assert_msg(rc == MQTT_OK, "rl %u: %d", rl, rc);
	ck_assert_uint_eq(pkt.u.publish.topic.len, 1);
	ck_assert_uint_eq(pkt.u.publish.payload.len, rl - 3);
	ck_assert(pkt.u.publish.payload.data == buf + hdr + 3);
	free(buf);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* PUBACK, PUBREC, PUBREL, PUBCOMP                                        */

static const struct {
	uint8_t first;
	uint8_t type;
	uint8_t reason; /* a valid non-zero reason code for the type */
} acks[] = {
	{ 0x40, MQTT_PUBACK, 0x10 },
	{ 0x50, MQTT_PUBREC, 0x80 },
	{ 0x62, MQTT_PUBREL, 0x92 },
	{ 0x70, MQTT_PUBCOMP, 0x92 },
};

static void decode_ack(int line, const uint8_t *in, size_t len,
		       uint8_t version, int i)
{
	decode_ok(line, in, len, version, acks[i].type);
}

START_TEST(ack_v311_two_bytes)
{
	uint8_t in[] = { acks[_i].first, 0x02, 0x00, 0x0A };

	decode_ack(__LINE__, in, sizeof(in), MQTT_V311, _i);
	ck_assert_uint_eq(pkt.u.ack.packet_id, 10);
	ck_assert_uint_eq(pkt.u.ack.reason, 0);
	decode_ack(__LINE__, in, sizeof(in), MQTT_V31, _i);
	ck_assert_uint_eq(pkt.u.ack.packet_id, 10);
}
END_TEST

/* MQTT 5: Remaining Length 2 means reason 0x00 and no properties. */
START_TEST(ack_v5_two_bytes)
{
	uint8_t in[] = { acks[_i].first, 0x02, 0xAB, 0xCD };

	decode_ack(__LINE__, in, sizeof(in), MQTT_V5, _i);
	ck_assert_uint_eq(pkt.u.ack.packet_id, 0xABCD);
	ck_assert_uint_eq(pkt.u.ack.reason, 0);
	ck_assert_uint_eq(pkt.u.ack.props.present, 0);
	CK_EMPTY(pkt.u.ack.props.raw);
}
END_TEST

/* Remaining Length 3: a reason code, Property Length 0 implied. */
START_TEST(ack_v5_reason_only)
{
	uint8_t in[] = { acks[_i].first, 0x03, 0x00, 0x01, acks[_i].reason };

	decode_ack(__LINE__, in, sizeof(in), MQTT_V5, _i);
	ck_assert_uint_eq(pkt.u.ack.packet_id, 1);
	ck_assert_uint_eq(pkt.u.ack.reason, acks[_i].reason);
	ck_assert_uint_eq(pkt.u.ack.props.present, 0);
}
END_TEST

START_TEST(ack_v5_reason_zero_props_zero)
{
	uint8_t in[] = { acks[_i].first, 0x04, 0x00, 0x01, 0x00, 0x00 };

	decode_ack(__LINE__, in, sizeof(in), MQTT_V5, _i);
	ck_assert_uint_eq(pkt.u.ack.reason, 0);
	ck_assert_uint_eq(pkt.u.ack.props.present, 0);
}
END_TEST

START_TEST(ack_v5_reason_and_properties)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	uint8_t in[] = {
		acks[_i].first, 0x13, 0x00, 0x01, acks[_i].reason,
		0x0F, 0x1F, 0x00, 0x05, 'q', 'u', 'o', 't', 'a', UP_KV,
	};

	decode_ack(__LINE__, in, sizeof(in), MQTT_V5, _i);
	ck_assert_uint_eq(pkt.u.ack.packet_id, 1);
	ck_assert_uint_eq(pkt.u.ack.reason, acks[_i].reason);
	CK_STR(pkt.u.ack.props.reason_string, "quota");
	check_users(__LINE__, &pkt.u.ack.props, 1, names, values);
}
END_TEST

/* The full reason code lists of §3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1. */
START_TEST(ack_v5_every_valid_reason)
{
	static const uint8_t puback[] = {
		0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99,
	};
	static const uint8_t pubrel[] = { 0x00, 0x92 };
	const uint8_t *rcs = _i < 2 ? puback : pubrel;
	size_t n = _i < 2 ? sizeof(puback) : sizeof(pubrel), k;

	for (k = 0; k < n; k++) {
		uint8_t in[] = { acks[_i].first, 0x03, 0x00, 0x07, rcs[k] };

		decode_ack(__LINE__, in, sizeof(in), MQTT_V5, _i);
		ck_assert_uint_eq(pkt.u.ack.reason, rcs[k]);
	}
}
END_TEST

/* ---------------------------------------------------------------------- */
/* SUBSCRIBE / SUBACK                                                     */

/* MQTT 3.1.1 §3.8.3 payload example: "a/b" QoS 1, "c/d" QoS 2, id 10. */
START_TEST(subscribe_v311_spec_example)
{
	const struct mqtt_subscribe *s = &pkt.u.subscribe;
	size_t off = 0;
	struct mqtt_sub_entry e;

	DECODE_OK(MQTT_V311, MQTT_SUBSCRIBE, 0x82, 0x0E, 0x00, 0x0A,
		  TOPIC_AB, 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02);
	ck_assert_uint_eq(s->packet_id, 10);
	ck_assert_uint_eq(s->count, 2);
	ck_assert_uint_eq(s->entries.len, 12);
	check_sub(__LINE__, &s->entries, &off, "a/b", 1, false, false, 0);
	check_sub(__LINE__, &s->entries, &off, "c/d", 2, false, false, 0);
	ck_assert(!mqtt_sub_next(&s->entries, &off, &e));
}
END_TEST

START_TEST(subscribe_v31)
{
	size_t off = 0;

	DECODE_OK(MQTT_V31, MQTT_SUBSCRIBE, 0x82, 0x06, 0x00, 0x01, STR_A,
		  0x00);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "a", 0, false,
		  false, 0);
}
END_TEST

/* MQTT 5.0 §3.8.2 example: packet identifier 10, Property Length 0. */
START_TEST(subscribe_v5_spec_example)
{
	const struct mqtt_subscribe *s = &pkt.u.subscribe;
	size_t off = 0;

	DECODE_OK(MQTT_V5, MQTT_SUBSCRIBE, 0x82, 0x0F, 0x00, 0x0A, 0x00,
		  TOPIC_AB, 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02);
	ck_assert_uint_eq(s->packet_id, 10);
	ck_assert_uint_eq(s->count, 2);
	ck_assert_uint_eq(s->props.present, 0);
	check_sub(__LINE__, &s->entries, &off, "a/b", 1, false, false, 0);
	check_sub(__LINE__, &s->entries, &off, "c/d", 2, false, false, 0);
}
END_TEST

/* All subscription option bits of §3.8.3.1 and both SUBSCRIBE properties. */
START_TEST(subscribe_v5_all_options)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	const struct mqtt_subscribe *s = &pkt.u.subscribe;
	struct mqtt_sub_entry e;
	size_t off = 0;

	DECODE_OK(MQTT_V5, MQTT_SUBSCRIBE, 0x82, 0x2C, 0x12, 0x34,
		  0x0C, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F, UP_KV,
		  0x00, 0x03, 'a', '/', '+', 0x2E,
		  0x00, 0x03, 'b', '/', '#', 0x11,
		  0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't',
		  0x08,
		  0x00, 0x01, 'c', 0x00);
	ck_assert_uint_eq(s->packet_id, 0x1234);
	ck_assert_uint_eq(s->count, 4);
	ck_assert_uint_eq(s->props.subscription_id, 268435455u);
	ck_assert_uint_eq(s->props.subscription_id_count, 1);
	check_users(__LINE__, &s->props, 1, names, values);
	check_sub(__LINE__, &s->entries, &off, "a/+", 2, true, true, 2);
	check_sub(__LINE__, &s->entries, &off, "b/#", 1, false, false, 1);
	check_sub(__LINE__, &s->entries, &off, "$share/g/t", 0, false, true,
		  0);
	check_sub(__LINE__, &s->entries, &off, "c", 0, false, false, 0);
	ck_assert(!mqtt_sub_next(&s->entries, &off, &e));
}
END_TEST

/*
 * Topic filter syntax is the broker's business: it answers 0x8F per filter
 * in SUBACK, so "a/#/b" or "+a" decode.  Only UTF-8 validity is checked.
 */
START_TEST(subscribe_filter_syntax_not_checked)
{
	size_t off = 0;

	DECODE_OK(MQTT_V311, MQTT_SUBSCRIBE, 0x82, 0x0F, 0x00, 0x01,
		  0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00,
		  0x00, 0x02, '+', 'a', 0x01);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "a/#/b", 0, false,
		  false, 0);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "+a", 1, false,
		  false, 0);
	off = 0;
	DECODE_OK(MQTT_V5, MQTT_SUBSCRIBE, 0x82, 0x0B, 0x00, 0x01, 0x00,
		  0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "a/#/b", 0, false,
		  false, 0);
	off = 0;
	DECODE_OK(MQTT_V311, MQTT_UNSUBSCRIBE, 0xA2, 0x09, 0x00, 0x01,
		  0x00, 0x05, 'a', '/', '#', '/', 'b');
	check_unsub(__LINE__, &pkt.u.subscribe.entries, &off, "a/#/b");
}
END_TEST

/* No Local is refused only on "$share/"; look-alikes are ordinary. */
START_TEST(subscribe_v5_no_local_not_shared)
{
	size_t off = 0;

	DECODE_OK(MQTT_V5, MQTT_SUBSCRIBE, 0x82, 0x1E, 0x00, 0x01, 0x00,
		  0x00, 0x0A, '$', 'S', 'H', 'A', 'R', 'E', '/', 'g', '/', 't',
		  0x04,
		  0x00, 0x0B, '$', 's', 'h', 'a', 'r', 'e', 'x', '/', 'g', '/',
		  't', 0x05);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "$SHARE/g/t", 0,
		  true, false, 0);
	check_sub(__LINE__, &pkt.u.subscribe.entries, &off, "$sharex/g/t", 1,
		  true, false, 0);
}
END_TEST

/* An empty Will Topic is not a Topic Name [MQTT-4.7.3-1]. */
START_TEST(connect_empty_will_topic_refused)
{
	static const uint8_t v4[] = {
		0x10, 0x11, VH(0x04, 0x06), STR_A, 0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t v5[] = {
		0x10, 0x13, VH(0x05, 0x06), 0x00, STR_A, 0x00, 0x00, 0x00,
		0x00, 0x00,
	};
	struct mqtt_packet out;
	int rc;

	rc = mqtt_decode(v4, sizeof(v4), MQTT_V311, &out);
	ck_assert_msg(rc == MQTT_E_TOPIC_EMPTY || rc == MQTT_E_TOPIC_NAME,
		      "3.1.1: %d (%s)", rc, mqtt_err_str(rc));
	rc = mqtt_decode(v5, sizeof(v5), MQTT_V5, &out);
	ck_assert_msg(rc == MQTT_E_TOPIC_EMPTY || rc == MQTT_E_TOPIC_NAME,
		      "5.0: %d (%s)", rc, mqtt_err_str(rc));
}
END_TEST

/* MQTT 3.1.1 §3.9.3 example: 0x00, 0x02, 0x80. */
START_TEST(suback_v311_spec_example)
{
	DECODE_OK(MQTT_V311, MQTT_SUBACK, 0x90, 0x05, 0x00, 0x0A, 0x00, 0x02,
		  0x80);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 10);
	CK_BIN(pkt.u.suback.reasons, 0x00, 0x02, 0x80);
	DECODE_OK(MQTT_V311, MQTT_SUBACK, 0x90, 0x03, 0x00, 0x0A, 0x01);
	CK_BIN(pkt.u.suback.reasons, 0x01);
}
END_TEST

/* Every SUBACK reason code of §3.9.3. */
START_TEST(suback_v5_all_reasons)
{
	DECODE_OK(MQTT_V5, MQTT_SUBACK, 0x90, 0x13, 0x00, 0x0A,
		  0x04, 0x1F, 0x00, 0x01, 'x',
		  0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E,
		  0xA1, 0xA2);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 10);
	CK_STR(pkt.u.suback.props.reason_string, "x");
	CK_BIN(pkt.u.suback.reasons, 0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
	       0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* UNSUBSCRIBE / UNSUBACK                                                 */

START_TEST(unsubscribe_v311_spec_example)
{
	const struct mqtt_subscribe *s = &pkt.u.subscribe;
	struct mqtt_bytes f;
	size_t off = 0;

	DECODE_OK(MQTT_V311, MQTT_UNSUBSCRIBE, 0xA2, 0x0C, 0x00, 0x0A,
		  TOPIC_AB, 0x00, 0x03, 'c', '/', 'd');
	ck_assert_uint_eq(s->packet_id, 10);
	ck_assert_uint_eq(s->count, 2);
	check_unsub(__LINE__, &s->entries, &off, "a/b");
	check_unsub(__LINE__, &s->entries, &off, "c/d");
	ck_assert(!mqtt_unsub_next(&s->entries, &off, &f));
}
END_TEST

/* MQTT 5.0 §3.10.2 example: packet identifier 10, Property Length 0. */
START_TEST(unsubscribe_v5_spec_example)
{
	const struct mqtt_subscribe *s = &pkt.u.subscribe;
	size_t off = 0;

	DECODE_OK(MQTT_V5, MQTT_UNSUBSCRIBE, 0xA2, 0x0D, 0x00, 0x0A, 0x00,
		  TOPIC_AB, 0x00, 0x03, 'c', '/', 'd');
	ck_assert_uint_eq(s->packet_id, 10);
	ck_assert_uint_eq(s->count, 2);
	check_unsub(__LINE__, &s->entries, &off, "a/b");
	check_unsub(__LINE__, &s->entries, &off, "c/d");
}
END_TEST

START_TEST(unsubscribe_v5_user_property)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	size_t off = 0;

	DECODE_OK(MQTT_V5, MQTT_UNSUBSCRIBE, 0xA2, 0x0D, 0x00, 0x0B, 0x07,
		  UP_KV, 0x00, 0x01, 'x');
	ck_assert_uint_eq(pkt.u.subscribe.packet_id, 11);
	check_users(__LINE__, &pkt.u.subscribe.props, 1, names, values);
	check_unsub(__LINE__, &pkt.u.subscribe.entries, &off, "x");
}
END_TEST

START_TEST(unsuback_v311)
{
	DECODE_OK(MQTT_V311, MQTT_UNSUBACK, 0xB0, 0x02, 0x00, 0x0A);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 10);
	CK_EMPTY(pkt.u.suback.reasons);
}
END_TEST

/* Every UNSUBACK reason code of §3.11.3. */
START_TEST(unsuback_v5_all_reasons)
{
	DECODE_OK(MQTT_V5, MQTT_UNSUBACK, 0xB0, 0x0A, 0x00, 0x0A, 0x00,
		  0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91);
	ck_assert_uint_eq(pkt.u.suback.packet_id, 10);
	CK_BIN(pkt.u.suback.reasons, 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91);
	DECODE_OK(MQTT_V5, MQTT_UNSUBACK, 0xB0, 0x0B, 0x00, 0x0A,
		  0x07, UP_KV, 0x11);
	ck_assert_uint_eq(pkt.u.suback.props.user_count, 1);
	CK_BIN(pkt.u.suback.reasons, 0x11);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* PINGREQ, PINGRESP, DISCONNECT, AUTH                                    */

START_TEST(ping_all_versions)
{
	static const uint8_t versions[] = { MQTT_V31, MQTT_V311, MQTT_V5 };
	static const uint8_t req[] = { 0xC0, 0x00 }, resp[] = { 0xD0, 0x00 };
	size_t i;

	for (i = 0; i < sizeof(versions); i++) {
		decode_ok(__LINE__, req, sizeof(req), versions[i],
			  MQTT_PINGREQ);
		decode_ok(__LINE__, resp, sizeof(resp), versions[i],
			  MQTT_PINGRESP);
	}
}
END_TEST

START_TEST(disconnect_v311)
{
	DECODE_OK(MQTT_V311, MQTT_DISCONNECT, 0xE0, 0x00);
	ck_assert_uint_eq(pkt.u.disconnect.reason, 0);
	DECODE_OK(MQTT_V31, MQTT_DISCONNECT, 0xE0, 0x00);
}
END_TEST

START_TEST(disconnect_v5_forms)
{
	/* Remaining Length 0: Normal disconnection, no properties. */
	DECODE_OK(MQTT_V5, MQTT_DISCONNECT, 0xE0, 0x00);
	ck_assert_uint_eq(pkt.u.disconnect.reason, 0);
	ck_assert_uint_eq(pkt.u.disconnect.props.present, 0);
	/* Remaining Length 1: a reason, Property Length 0 implied. */
	DECODE_OK(MQTT_V5, MQTT_DISCONNECT, 0xE0, 0x01, 0x04);
	ck_assert_uint_eq(pkt.u.disconnect.reason,
			  MQTT_RC_DISCONNECT_WITH_WILL);
	ck_assert_uint_eq(pkt.u.disconnect.props.present, 0);
	DECODE_OK(MQTT_V5, MQTT_DISCONNECT, 0xE0, 0x02, 0x8E, 0x00);
	ck_assert_uint_eq(pkt.u.disconnect.reason,
			  MQTT_RC_SESSION_TAKEN_OVER);
}
END_TEST

START_TEST(disconnect_v5_properties)
{
	static const char *const names[] = { "k" };
	static const char *const values[] = { "v" };
	const struct mqtt_props *p = &pkt.u.disconnect.props;

	DECODE_OK(MQTT_V5, MQTT_DISCONNECT, 0xE0, 0x1B, 0x9C, 0x19,
		  0x11, 0x00, 0x00, 0x00, 0x00,
		  0x1F, 0x00, 0x03, 'b', 'y', 'e',
		  0x1C, 0x00, 0x04, 'h', 'o', 's', 't',
		  UP_KV);
	ck_assert_uint_eq(pkt.u.disconnect.reason, MQTT_RC_USE_ANOTHER_SERVER);
	CK_HAS(p, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	ck_assert_uint_eq(p->session_expiry_interval, 0);
	CK_STR(p->reason_string, "bye");
	CK_STR(p->server_reference, "host");
	check_users(__LINE__, p, 1, names, values);
}
END_TEST

/* Every DISCONNECT reason code of §3.14.2.1. */
START_TEST(disconnect_v5_every_valid_reason)
{
	static const uint8_t rcs[] = {
		0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
		0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
		0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
	};
	size_t i;

	for (i = 0; i < sizeof(rcs); i++) {
		uint8_t in[] = { 0xE0, 0x02, rcs[i], 0x00 };

		decode_ok(__LINE__, in, sizeof(in), MQTT_V5, MQTT_DISCONNECT);
		ck_assert_uint_eq(pkt.u.disconnect.reason, rcs[i]);
	}
}
END_TEST

/* Every CONNACK reason code of §3.2.2.2. */
START_TEST(connack_v5_every_valid_reason)
{
	static const uint8_t rcs[] = {
		0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
		0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C,
		0x9D, 0x9F,
	};
	size_t i;

	for (i = 0; i < sizeof(rcs); i++) {
		uint8_t in[] = { 0x20, 0x03, 0x00, rcs[i], 0x00 };

		decode_ok(__LINE__, in, sizeof(in), MQTT_V5, MQTT_CONNACK);
		ck_assert_uint_eq(pkt.u.connack.reason, rcs[i]);
	}
}
END_TEST

START_TEST(auth_v5)
{
	const struct mqtt_props *p = &pkt.u.disconnect.props;

	/* Remaining Length 0: reason 0x00 Success, no properties. */
	DECODE_OK(MQTT_V5, MQTT_AUTH, 0xF0, 0x00);
	ck_assert_uint_eq(pkt.u.disconnect.reason, 0);
	ck_assert_uint_eq(p->present, 0);
	DECODE_OK(MQTT_V5, MQTT_AUTH, 0xF0, 0x14, 0x18, 0x12,
		  0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',
		  0x16, 0x00, 0x03, 0x01, 0x02, 0x03,
		  0x1F, 0x00, 0x01, 'r');
	ck_assert_uint_eq(pkt.u.disconnect.reason,
			  MQTT_RC_CONTINUE_AUTHENTICATION);
	CK_STR(p->authentication_method, "SCRAM");
	CK_BIN(p->authentication_data, 0x01, 0x02, 0x03);
	CK_STR(p->reason_string, "r");
	DECODE_OK(MQTT_V5, MQTT_AUTH, 0xF0, 0x02, 0x19, 0x00);
	ck_assert_uint_eq(pkt.u.disconnect.reason, MQTT_RC_REAUTHENTICATE);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* CONNECT refused with the level kept for the CONNACK                    */

START_TEST(connect_refused_keeps_level)
{
	static const uint8_t bad_name[] = {
		0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02,
		0x00, 0x3C, STR_A,
	};
	static const uint8_t bad_level[] = {
		0x10, 0x0D, VH(0x06, 0x02), STR_A,
	};
	static const uint8_t bad_bridge_level[] = {
		0x10, 0x0D, VH(0x86, 0x02), STR_A,
	};

	memset(&pkt, 0, sizeof(pkt));
	ck_assert_int_eq(mqtt_decode(bad_name, sizeof(bad_name), MQTT_V311,
				     &pkt), MQTT_E_PROTOCOL_NAME);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 4);
	memset(&pkt, 0, sizeof(pkt));
	ck_assert_int_eq(mqtt_decode(bad_level, sizeof(bad_level), MQTT_V311,
				     &pkt), MQTT_E_PROTOCOL_VERSION);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 6);
	memset(&pkt, 0, sizeof(pkt));
	ck_assert_int_eq(mqtt_decode(bad_bridge_level,
				     sizeof(bad_bridge_level), MQTT_V311, &pkt),
			 MQTT_E_PROTOCOL_VERSION);
	ck_assert_uint_eq(pkt.u.connect.protocol_level, 6);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Malformed and refused packets                                          */

struct bad {
	const char *name;
	uint8_t version;
	const uint8_t *bytes;
	size_t len;
	int err;
};

static const struct bad bad[] = {
	/* Reserved fixed-header flags [MQTT-2.1.3-1], Table 2.2. */
	{ "CONNECT flags 0x1", MQTT_V311,
	  BYTES(0x11, 0x0D, VH(0x04, 0x02), STR_A), MQTT_E_HEADER_FLAGS },
	{ "CONNECT flags 0x8 (v5)", MQTT_V5,
	  BYTES(0x18, 0x0E, VH(0x05, 0x02), 0x00, STR_A), MQTT_E_HEADER_FLAGS },
	{ "CONNACK flags 0x1", MQTT_V311, BYTES(0x21, 0x02, 0x00, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBACK flags 0x2", MQTT_V311, BYTES(0x42, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBACK flags 0xF (v5)", MQTT_V5, BYTES(0x4F, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBREC flags 0x1", MQTT_V311, BYTES(0x51, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBREL flags 0x0 [MQTT-3.6.1-1]", MQTT_V311,
	  BYTES(0x60, 0x02, 0x00, 0x01), MQTT_E_HEADER_FLAGS },
	{ "PUBREL flags 0x3", MQTT_V311, BYTES(0x63, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBREL flags 0xA (v5)", MQTT_V5, BYTES(0x6A, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PUBCOMP flags 0x8", MQTT_V311, BYTES(0x78, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "SUBSCRIBE flags 0x0 [MQTT-3.8.1-1]", MQTT_V311,
	  BYTES(0x80, 0x06, 0x00, 0x01, STR_A, 0x00), MQTT_E_HEADER_FLAGS },
	{ "SUBSCRIBE flags 0x3", MQTT_V311,
	  BYTES(0x83, 0x06, 0x00, 0x01, STR_A, 0x00), MQTT_E_HEADER_FLAGS },
	{ "SUBSCRIBE flags 0xA (v5)", MQTT_V5,
	  BYTES(0x8A, 0x07, 0x00, 0x01, 0x00, STR_A, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "SUBACK flags 0x2", MQTT_V311, BYTES(0x92, 0x03, 0x00, 0x01, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "UNSUBSCRIBE flags 0x0 [MQTT-3.10.1-1]", MQTT_V311,
	  BYTES(0xA0, 0x05, 0x00, 0x01, STR_A), MQTT_E_HEADER_FLAGS },
	{ "UNSUBSCRIBE flags 0xA", MQTT_V311,
	  BYTES(0xAA, 0x05, 0x00, 0x01, STR_A), MQTT_E_HEADER_FLAGS },
	{ "UNSUBACK flags 0x1", MQTT_V311, BYTES(0xB1, 0x02, 0x00, 0x01),
	  MQTT_E_HEADER_FLAGS },
	{ "PINGREQ flags 0x1", MQTT_V311, BYTES(0xC1, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "PINGRESP flags 0x8", MQTT_V311, BYTES(0xD8, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "DISCONNECT flags 0x2 [MQTT-3.14.1-1]", MQTT_V5, BYTES(0xE2, 0x00),
	  MQTT_E_HEADER_FLAGS },
	{ "AUTH flags 0x1 [MQTT-3.15.1-1]", MQTT_V5, BYTES(0xF1, 0x00),
	  MQTT_E_HEADER_FLAGS },

	/* Packet types. */
	{ "type 0 (3.1.1)", MQTT_V311, BYTES(0x00, 0x00), MQTT_E_PACKET_TYPE },
	{ "type 0 (5.0)", MQTT_V5, BYTES(0x00, 0x00), MQTT_E_PACKET_TYPE },
	{ "AUTH under 3.1.1", MQTT_V311, BYTES(0xF0, 0x00),
	  MQTT_E_PACKET_TYPE },
	{ "AUTH under 3.1", MQTT_V31, BYTES(0xF0, 0x00), MQTT_E_PACKET_TYPE },

	/* PUBLISH fixed header [MQTT-3.3.1-4], [MQTT-3.3.1-2]. */
	{ "PUBLISH QoS 3", MQTT_V311,
	  BYTES(0x36, 0x07, TOPIC_AB, 0x00, 0x01), MQTT_E_QOS },
	{ "PUBLISH QoS 3 (v5)", MQTT_V5,
	  BYTES(0x36, 0x08, TOPIC_AB, 0x00, 0x01, 0x00), MQTT_E_QOS },
	{ "PUBLISH DUP on QoS 0", MQTT_V311, BYTES(0x38, 0x05, TOPIC_AB),
	  MQTT_E_DUP_QOS0 },
	{ "PUBLISH DUP on QoS 0 (v5)", MQTT_V5,
	  BYTES(0x39, 0x06, TOPIC_AB, 0x00), MQTT_E_DUP_QOS0 },

	/* CONNECT variable header [MQTT-3.1.2-1..3]. */
	{ "CONNECT protocol name MQTX", MQTT_V311,
	  BYTES(0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00,
		0x3C, STR_A), MQTT_E_PROTOCOL_NAME },
	{ "CONNECT protocol name mqtt", MQTT_V311,
	  BYTES(0x10, 0x0D, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, 0x00,
		0x3C, STR_A), MQTT_E_PROTOCOL_NAME },
	{ "CONNECT protocol name empty", MQTT_V311,
	  BYTES(0x10, 0x09, 0x00, 0x00, 0x04, 0x02, 0x00, 0x3C, STR_A),
	  MQTT_E_PROTOCOL_NAME },
	{ "CONNECT level 6", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x06, 0x02), STR_A), MQTT_E_PROTOCOL_VERSION },
	{ "CONNECT level 2", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x02, 0x02), STR_A), MQTT_E_PROTOCOL_VERSION },
	{ "CONNECT level 0", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x00, 0x02), STR_A), MQTT_E_PROTOCOL_VERSION },
	{ "CONNECT reserved flag [MQTT-3.1.2-3]", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x03), STR_A), MQTT_E_CONNECT_RESERVED },
	{ "CONNECT reserved flag (v5)", MQTT_V5,
	  BYTES(0x10, 0x0E, VH(0x05, 0x01), 0x00, STR_A),
	  MQTT_E_CONNECT_RESERVED },
	{ "CONNECT will QoS 1 without will [MQTT-3.1.2-13]", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x0A), STR_A), MQTT_E_WILL_FLAGS },
	{ "CONNECT will QoS 2 without will (v5)", MQTT_V5,
	  BYTES(0x10, 0x0E, VH(0x05, 0x12), 0x00, STR_A), MQTT_E_WILL_FLAGS },
	{ "CONNECT will retain without will [MQTT-3.1.2-15]", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x22), STR_A), MQTT_E_WILL_FLAGS },
	{ "CONNECT will QoS 3 [MQTT-3.1.2-14]", MQTT_V311,
	  BYTES(0x10, 0x13, VH(0x04, 0x1E), STR_A, STR_T, 0x00, 0x01, 'm'),
	  MQTT_E_QOS },
	{ "CONNECT will QoS 3 (v5)", MQTT_V5,
	  BYTES(0x10, 0x15, VH(0x05, 0x1E), 0x00, STR_A, 0x00, STR_T, 0x00,
		0x01, 'm'), MQTT_E_QOS },
	{ "CONNECT password without user name (3.1.1) [MQTT-3.1.2-22]",
	  MQTT_V311,
	  BYTES(0x10, 0x10, VH(0x04, 0x42), STR_A, 0x00, 0x01, 'p'),
	  MQTT_E_PASSWORD_FLAG },

	/* CONNECT fields running past the end. */
	{ "CONNECT protocol name past end", MQTT_V311,
	  BYTES(0x10, 0x04, 0x00, 0x06, 'M', 'Q'), MQTT_E_SHORT },
	{ "CONNECT protocol name length cut", MQTT_V311,
	  BYTES(0x10, 0x01, 0x00), MQTT_E_SHORT },
	{ "CONNECT no protocol level", MQTT_V311,
	  BYTES(0x10, 0x06, NAME_MQTT), MQTT_E_SHORT },
	{ "CONNECT no connect flags", MQTT_V311,
	  BYTES(0x10, 0x07, NAME_MQTT, 0x04), MQTT_E_SHORT },
	{ "CONNECT keep alive cut", MQTT_V311,
	  BYTES(0x10, 0x09, NAME_MQTT, 0x04, 0x02, 0x00), MQTT_E_SHORT },
	{ "CONNECT no client id", MQTT_V311,
	  BYTES(0x10, 0x0A, VH(0x04, 0x02)), MQTT_E_SHORT },
	{ "CONNECT client id past end", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x02), 0x00, 0x05, 'a'), MQTT_E_SHORT },
	{ "CONNECT no will topic", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x06), STR_A), MQTT_E_SHORT },
	{ "CONNECT no will message", MQTT_V311,
	  BYTES(0x10, 0x10, VH(0x04, 0x06), STR_A, STR_T), MQTT_E_SHORT },
	{ "CONNECT will message past end", MQTT_V311,
	  BYTES(0x10, 0x13, VH(0x04, 0x06), STR_A, STR_T, 0x00, 0x04, 'm'),
	  MQTT_E_SHORT },
	{ "CONNECT no user name", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x82), STR_A), MQTT_E_SHORT },
	{ "CONNECT no password", MQTT_V311,
	  BYTES(0x10, 0x10, VH(0x04, 0xC2), STR_A, 0x00, 0x01, 'u'),
	  MQTT_E_SHORT },
	{ "CONNECT password past end", MQTT_V311,
	  BYTES(0x10, 0x13, VH(0x04, 0xC2), STR_A, 0x00, 0x01, 'u', 0x00,
		0x02, 'p'), MQTT_E_SHORT },
	{ "CONNECT no property length (v5)", MQTT_V5,
	  BYTES(0x10, 0x0A, VH(0x05, 0x02)), MQTT_E_SHORT },
	{ "CONNECT properties past end (v5)", MQTT_V5,
	  BYTES(0x10, 0x0D, VH(0x05, 0x02), 0x05, 0x11, 0x00), MQTT_E_SHORT },
	{ "CONNECT property length cut (v5)", MQTT_V5,
	  BYTES(0x10, 0x0B, VH(0x05, 0x02), 0x80), MQTT_E_SHORT },
	{ "CONNECT property length 5 bytes (v5)", MQTT_V5,
	  BYTES(0x10, 0x0F, VH(0x05, 0x02), 0xFF, 0xFF, 0xFF, 0xFF, 0x7F),
	  MQTT_E_VARINT },
	{ "CONNECT property value past block end (v5)", MQTT_V5,
	  BYTES(0x10, 0x11, VH(0x05, 0x02), 0x03, 0x11, 0x00, 0x00, STR_A),
	  MQTT_E_SHORT },
	{ "CONNECT will properties past end (v5)", MQTT_V5,
	  BYTES(0x10, 0x12, VH(0x05, 0x06), 0x00, STR_A, 0x0A, STR_T),
	  MQTT_E_SHORT },
	{ "CONNECT no will properties length (v5)", MQTT_V5,
	  BYTES(0x10, 0x0E, VH(0x05, 0x06), 0x00, STR_A), MQTT_E_SHORT },
	{ "CONNECT trailing byte", MQTT_V311,
	  BYTES(0x10, 0x0E, VH(0x04, 0x02), STR_A, 0x00), MQTT_E_TRAILING },
	{ "CONNECT trailing byte (v5)", MQTT_V5,
	  BYTES(0x10, 0x0F, VH(0x05, 0x02), 0x00, STR_A, 'x'),
	  MQTT_E_TRAILING },
	{ "CONNECT user name without flag is trailing", MQTT_V311,
	  BYTES(0x10, 0x10, VH(0x04, 0x02), STR_A, 0x00, 0x01, 'u'),
	  MQTT_E_TRAILING },

	/* CONNECT strings [MQTT-1.5.4-1], [MQTT-1.5.4-2], [MQTT-3.1.3-4]. */
	{ "CONNECT client id overlong NUL", MQTT_V311,
	  BYTES(0x10, 0x0E, VH(0x04, 0x02), 0x00, 0x02, 0xC0, 0x80),
	  MQTT_E_UTF8 },
	{ "CONNECT client id U+0000", MQTT_V311,
	  BYTES(0x10, 0x0D, VH(0x04, 0x02), 0x00, 0x01, 0x00), MQTT_E_UTF8 },
	{ "CONNECT client id surrogate", MQTT_V311,
	  BYTES(0x10, 0x0F, VH(0x04, 0x02), 0x00, 0x03, 0xED, 0xA0, 0x80),
	  MQTT_E_UTF8 },
	{ "CONNECT client id above U+10FFFF (v5)", MQTT_V5,
	  BYTES(0x10, 0x11, VH(0x05, 0x02), 0x00, 0x00, 0x04, 0xF4, 0x90,
		0x80, 0x80), MQTT_E_UTF8 },
	{ "CONNECT will topic 0xFF [MQTT-3.1.3-10]", MQTT_V311,
	  BYTES(0x10, 0x12, VH(0x04, 0x06), STR_A, 0x00, 0x01, 0xFF, 0x00,
		0x00), MQTT_E_UTF8 },
	{ "CONNECT user name 0xFE [MQTT-3.1.3-11]", MQTT_V311,
	  BYTES(0x10, 0x10, VH(0x04, 0x82), STR_A, 0x00, 0x01, 0xFE),
	  MQTT_E_UTF8 },
	{ "CONNECT user property name 0xFF (v5)", MQTT_V5,
	  BYTES(0x10, 0x15, VH(0x05, 0x02), 0x07, 0x26, 0x00, 0x01, 0xFF,
		0x00, 0x01, 'v', STR_A), MQTT_E_UTF8 },
	{ "CONNECT authentication method C3 28 (v5)", MQTT_V5,
	  BYTES(0x10, 0x13, VH(0x05, 0x02), 0x05, 0x15, 0x00, 0x02, 0xC3,
		0x28, STR_A), MQTT_E_UTF8 },
	{ "CONNECT will content type cut sequence (v5)", MQTT_V5,
	  BYTES(0x10, 0x19, VH(0x05, 0x06), 0x00, STR_A, 0x05, 0x03, 0x00,
		0x02, 'a', 0xC3, STR_T, 0x00, 0x00), MQTT_E_UTF8 },

	/* CONNECT properties (§2.2.2.2, §3.1.2.11, §3.1.3.2). */
	{ "CONNECT Topic Alias", MQTT_V5,
	  BYTES(0x10, 0x11, VH(0x05, 0x02), 0x03, 0x23, 0x00, 0x01, STR_A),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "CONNECT Will Delay Interval outside will", MQTT_V5,
	  BYTES(0x10, 0x13, VH(0x05, 0x02), 0x05, 0x18, 0x00, 0x00, 0x00,
		0x05, STR_A), MQTT_E_PROP_NOT_ALLOWED },
	{ "CONNECT Maximum QoS", MQTT_V5,
	  BYTES(0x10, 0x10, VH(0x05, 0x02), 0x02, 0x24, 0x01, STR_A),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "will properties Session Expiry Interval", MQTT_V5,
	  BYTES(0x10, 0x19, VH(0x05, 0x06), 0x00, STR_A, 0x05, 0x11, 0x00,
		0x00, 0x00, 0x0A, STR_T, 0x00, 0x00),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "will properties Topic Alias", MQTT_V5,
	  BYTES(0x10, 0x17, VH(0x05, 0x06), 0x00, STR_A, 0x03, 0x23, 0x00,
		0x01, STR_T, 0x00, 0x00), MQTT_E_PROP_NOT_ALLOWED },
	{ "CONNECT unknown property 0x04", MQTT_V5,
	  BYTES(0x10, 0x10, VH(0x05, 0x02), 0x02, 0x04, 0x00, STR_A),
	  MQTT_E_PROP_ID },
	{ "will properties unknown property 0x2B", MQTT_V5,
	  BYTES(0x10, 0x16, VH(0x05, 0x06), 0x00, STR_A, 0x02, 0x2B, 0x00,
		STR_T, 0x00, 0x00), MQTT_E_PROP_ID },
	{ "CONNECT two Session Expiry Intervals", MQTT_V5,
	  BYTES(0x10, 0x18, VH(0x05, 0x02), 0x0A, 0x11, 0x00, 0x00, 0x00,
		0x01, 0x11, 0x00, 0x00, 0x00, 0x02, STR_A),
	  MQTT_E_PROP_DUPLICATE },
	{ "CONNECT two Authentication Methods", MQTT_V5,
	  BYTES(0x10, 0x16, VH(0x05, 0x02), 0x08, 0x15, 0x00, 0x01, 'a',
		0x15, 0x00, 0x01, 'b', STR_A), MQTT_E_PROP_DUPLICATE },
	{ "will properties two Content Types", MQTT_V5,
	  BYTES(0x10, 0x1C, VH(0x05, 0x06), 0x00, STR_A, 0x08, 0x03, 0x00,
		0x01, 'x', 0x03, 0x00, 0x01, 'y', STR_T, 0x00, 0x00),
	  MQTT_E_PROP_DUPLICATE },
	{ "CONNECT Receive Maximum 0", MQTT_V5,
	  BYTES(0x10, 0x11, VH(0x05, 0x02), 0x03, 0x21, 0x00, 0x00, STR_A),
	  MQTT_E_PROP_VALUE },
	{ "CONNECT Maximum Packet Size 0", MQTT_V5,
	  BYTES(0x10, 0x13, VH(0x05, 0x02), 0x05, 0x27, 0x00, 0x00, 0x00,
		0x00, STR_A), MQTT_E_PROP_VALUE },
	{ "CONNECT Request Problem Information 2", MQTT_V5,
	  BYTES(0x10, 0x10, VH(0x05, 0x02), 0x02, 0x17, 0x02, STR_A),
	  MQTT_E_PROP_VALUE },
	{ "CONNECT Request Response Information 2", MQTT_V5,
	  BYTES(0x10, 0x10, VH(0x05, 0x02), 0x02, 0x19, 0x02, STR_A),
	  MQTT_E_PROP_VALUE },
	{ "will Payload Format Indicator 2", MQTT_V5,
	  BYTES(0x10, 0x16, VH(0x05, 0x06), 0x00, STR_A, 0x02, 0x01, 0x02,
		STR_T, 0x00, 0x00), MQTT_E_PROP_VALUE },

	/* CONNACK [MQTT-3.2.2-1], [MQTT-3.2.2-8]. */
	{ "CONNACK reserved flag 0x02", MQTT_V311,
	  BYTES(0x20, 0x02, 0x02, 0x00), MQTT_E_CONNECT_RESERVED },
	{ "CONNACK reserved flag 0x80 (v5)", MQTT_V5,
	  BYTES(0x20, 0x03, 0x80, 0x00, 0x00), MQTT_E_CONNECT_RESERVED },
	{ "CONNACK return code 6 (3.1.1)", MQTT_V311,
	  BYTES(0x20, 0x02, 0x00, 0x06), MQTT_E_REASON_CODE },
	{ "CONNACK reason 0x01 (v5)", MQTT_V5,
	  BYTES(0x20, 0x03, 0x00, 0x01, 0x00), MQTT_E_REASON_CODE },
	{ "CONNACK reason 0x8E (v5)", MQTT_V5,
	  BYTES(0x20, 0x03, 0x00, 0x8E, 0x00), MQTT_E_REASON_CODE },
	{ "CONNACK cut", MQTT_V311, BYTES(0x20, 0x01, 0x00), MQTT_E_SHORT },
	{ "CONNACK trailing byte", MQTT_V311,
	  BYTES(0x20, 0x03, 0x00, 0x00, 0x00), MQTT_E_TRAILING },
	{ "CONNACK no property length (v5)", MQTT_V5,
	  BYTES(0x20, 0x02, 0x00, 0x00), MQTT_E_SHORT },
	{ "CONNACK Maximum QoS 2", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02), MQTT_E_PROP_VALUE },
	{ "CONNACK Retain Available 2", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02), MQTT_E_PROP_VALUE },
	{ "CONNACK Wildcard Subscription Available 2", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x28, 0x02), MQTT_E_PROP_VALUE },
	{ "CONNACK Subscription Identifiers Available 2", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x29, 0x02), MQTT_E_PROP_VALUE },
	{ "CONNACK Shared Subscription Available 2", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x2A, 0x02), MQTT_E_PROP_VALUE },
	{ "CONNACK Receive Maximum 0", MQTT_V5,
	  BYTES(0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00),
	  MQTT_E_PROP_VALUE },
	{ "CONNACK Maximum Packet Size 0", MQTT_V5,
	  BYTES(0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00),
	  MQTT_E_PROP_VALUE },
	{ "CONNACK Topic Alias", MQTT_V5,
	  BYTES(0x20, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "CONNACK Request Problem Information", MQTT_V5,
	  BYTES(0x20, 0x05, 0x00, 0x00, 0x02, 0x17, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "CONNACK two Server Keep Alives", MQTT_V5,
	  BYTES(0x20, 0x09, 0x00, 0x00, 0x06, 0x13, 0x00, 0x01, 0x13, 0x00,
		0x02), MQTT_E_PROP_DUPLICATE },
	{ "CONNACK Assigned Client Identifier 0xFF", MQTT_V5,
	  BYTES(0x20, 0x07, 0x00, 0x00, 0x04, 0x12, 0x00, 0x01, 0xFF),
	  MQTT_E_UTF8 },
	{ "CONNACK Reason String U+0000", MQTT_V5,
	  BYTES(0x20, 0x07, 0x00, 0x00, 0x04, 0x1F, 0x00, 0x01, 0x00),
	  MQTT_E_UTF8 },

	/* PUBLISH variable header. */
	{ "PUBLISH topic past end", MQTT_V311, BYTES(0x30, 0x03, 0x00, 0x05,
						     'a'), MQTT_E_SHORT },
	{ "PUBLISH topic length cut", MQTT_V311, BYTES(0x30, 0x01, 0x00),
	  MQTT_E_SHORT },
	{ "PUBLISH QoS 1 no packet id", MQTT_V311,
	  BYTES(0x32, 0x05, TOPIC_AB), MQTT_E_SHORT },
	{ "PUBLISH QoS 2 packet id cut", MQTT_V311,
	  BYTES(0x34, 0x06, TOPIC_AB, 0x00), MQTT_E_SHORT },
	{ "PUBLISH QoS 1 packet id 0 [MQTT-2.3.1-1]", MQTT_V311,
	  BYTES(0x32, 0x07, TOPIC_AB, 0x00, 0x00), MQTT_E_PACKET_ID },
	{ "PUBLISH QoS 2 packet id 0 (v5) [MQTT-2.2.1-3]", MQTT_V5,
	  BYTES(0x34, 0x08, TOPIC_AB, 0x00, 0x00, 0x00), MQTT_E_PACKET_ID },
	{ "PUBLISH no property length (v5)", MQTT_V5,
	  BYTES(0x30, 0x05, TOPIC_AB), MQTT_E_SHORT },
	{ "PUBLISH QoS 1 no property length (v5)", MQTT_V5,
	  BYTES(0x32, 0x07, TOPIC_AB, 0x00, 0x01), MQTT_E_SHORT },
	{ "PUBLISH properties past end (v5)", MQTT_V5,
	  BYTES(0x30, 0x07, TOPIC_AB, 0x05, 0x02), MQTT_E_SHORT },
	{ "PUBLISH property length 5 bytes (v5)", MQTT_V5,
	  BYTES(0x30, 0x0A, TOPIC_AB, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F),
	  MQTT_E_VARINT },
	{ "PUBLISH topic C0 AF", MQTT_V311,
	  BYTES(0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF), MQTT_E_UTF8 },
	{ "PUBLISH topic U+0000 [MQTT-1.5.4-2]", MQTT_V311,
	  BYTES(0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b'), MQTT_E_UTF8 },
	{ "PUBLISH topic surrogate (v5) [MQTT-1.5.4-1]", MQTT_V5,
	  BYTES(0x30, 0x06, 0x00, 0x03, 0xED, 0xBF, 0xBF, 0x00), MQTT_E_UTF8 },
	{ "PUBLISH topic lone continuation byte", MQTT_V311,
	  BYTES(0x30, 0x04, 0x00, 0x02, 'a', 0x80), MQTT_E_UTF8 },
	{ "PUBLISH topic overlong E0 80 AF", MQTT_V311,
	  BYTES(0x30, 0x05, 0x00, 0x03, 0xE0, 0x80, 0xAF), MQTT_E_UTF8 },
	{ "PUBLISH topic cut sequence", MQTT_V311,
	  BYTES(0x30, 0x05, 0x00, 0x02, 'a', 0xE2, 0x82), MQTT_E_UTF8 },
	/* Code points mqtt_utf8_is_valid() rejects by policy (mqtt.h). */
	{ "PUBLISH topic control U+0001", MQTT_V311,
	  BYTES(0x30, 0x04, 0x00, 0x02, 'a', 0x01), MQTT_E_UTF8 },
	{ "PUBLISH topic non-character U+FFFF", MQTT_V311,
	  BYTES(0x30, 0x05, 0x00, 0x03, 0xEF, 0xBF, 0xBF), MQTT_E_UTF8 },
	{ "PUBLISH topic 'a/+' [MQTT-3.3.2-2]", MQTT_V311,
	  BYTES(0x30, 0x05, 0x00, 0x03, 'a', '/', '+'), MQTT_E_TOPIC_NAME },
	{ "PUBLISH topic '#' (v5)", MQTT_V5,
	  BYTES(0x30, 0x06, 0x00, 0x03, 'a', '/', '#', 0x00),
	  MQTT_E_TOPIC_NAME },
	{ "PUBLISH topic '+'", MQTT_V311, BYTES(0x30, 0x03, 0x00, 0x01, '+'),
	  MQTT_E_TOPIC_NAME },
	{ "PUBLISH topic 'a+b' (v5)", MQTT_V5,
	  BYTES(0x32, 0x08, 0x00, 0x03, 'a', '+', 'b', 0x00, 0x01, 0x00),
	  MQTT_E_TOPIC_NAME },
	{ "PUBLISH empty topic [MQTT-4.7.3-1]", MQTT_V311,
	  BYTES(0x30, 0x02, 0x00, 0x00), MQTT_E_TOPIC_EMPTY },
	{ "PUBLISH empty topic QoS 1", MQTT_V311,
	  BYTES(0x32, 0x04, 0x00, 0x00, 0x00, 0x01), MQTT_E_TOPIC_EMPTY },
	{ "PUBLISH empty topic, no alias (v5)", MQTT_V5,
	  BYTES(0x30, 0x03, 0x00, 0x00, 0x00), MQTT_E_TOPIC_EMPTY },
	{ "PUBLISH empty topic, other properties (v5)", MQTT_V5,
	  BYTES(0x32, 0x07, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x01),
	  MQTT_E_TOPIC_EMPTY },
	{ "PUBLISH Topic Alias 0 [MQTT-3.3.2-8]", MQTT_V5,
	  BYTES(0x30, 0x07, STR_T, 0x03, 0x23, 0x00, 0x00),
	  MQTT_E_TOPIC_ALIAS },

	/* PUBLISH properties (§3.3.2.3). */
	{ "PUBLISH Session Expiry Interval", MQTT_V5,
	  BYTES(0x30, 0x09, STR_T, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBLISH Will Delay Interval", MQTT_V5,
	  BYTES(0x30, 0x09, STR_T, 0x05, 0x18, 0x00, 0x00, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBLISH Maximum QoS", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x24, 0x01), MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBLISH Reason String", MQTT_V5,
	  BYTES(0x30, 0x08, STR_T, 0x04, 0x1F, 0x00, 0x01, 'x'),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBLISH unknown property 0x7F", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x7F, 0x00), MQTT_E_PROP_ID },
	{ "PUBLISH property id 0x00", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x00, 0x00), MQTT_E_PROP_ID },
	{ "PUBLISH two Message Expiry Intervals", MQTT_V5,
	  BYTES(0x30, 0x0E, STR_T, 0x0A, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02,
		0x00, 0x00, 0x00, 0x02), MQTT_E_PROP_DUPLICATE },
	{ "PUBLISH two Topic Aliases", MQTT_V5,
	  BYTES(0x30, 0x0A, STR_T, 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02),
	  MQTT_E_PROP_DUPLICATE },
	{ "PUBLISH two Payload Format Indicators", MQTT_V5,
	  BYTES(0x30, 0x08, STR_T, 0x04, 0x01, 0x00, 0x01, 0x01),
	  MQTT_E_PROP_DUPLICATE },
	{ "PUBLISH two Response Topics", MQTT_V5,
	  BYTES(0x30, 0x0C, STR_T, 0x08, 0x08, 0x00, 0x01, 'r', 0x08, 0x00,
		0x01, 's'), MQTT_E_PROP_DUPLICATE },
	{ "PUBLISH two Correlation Data", MQTT_V5,
	  BYTES(0x30, 0x0C, STR_T, 0x08, 0x09, 0x00, 0x01, 0x01, 0x09, 0x00,
		0x01, 0x02), MQTT_E_PROP_DUPLICATE },
	{ "PUBLISH Payload Format Indicator 2", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x01, 0x02), MQTT_E_PROP_VALUE },
	{ "PUBLISH Subscription Identifier 0", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x0B, 0x00), MQTT_E_PROP_VALUE },
	{ "PUBLISH Subscription Identifier 5 bytes", MQTT_V5,
	  BYTES(0x30, 0x0A, STR_T, 0x06, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F),
	  MQTT_E_VARINT },
	{ "PUBLISH Subscription Identifier cut", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x0B, 0x80), MQTT_E_SHORT },
	{ "PUBLISH Message Expiry Interval cut", MQTT_V5,
	  BYTES(0x30, 0x07, STR_T, 0x03, 0x02, 0x00, 0x00), MQTT_E_SHORT },
	{ "PUBLISH Topic Alias cut", MQTT_V5,
	  BYTES(0x30, 0x06, STR_T, 0x02, 0x23, 0x00), MQTT_E_SHORT },
	{ "PUBLISH User Property name past block", MQTT_V5,
	  BYTES(0x30, 0x08, STR_T, 0x04, 0x26, 0x00, 0x05, 'k'),
	  MQTT_E_SHORT },
	{ "PUBLISH User Property value missing", MQTT_V5,
	  BYTES(0x30, 0x09, STR_T, 0x05, 0x26, 0x00, 0x01, 'k', 0x00),
	  MQTT_E_SHORT },
	{ "PUBLISH Content Type 0xFF [MQTT-3.3.2-19]", MQTT_V5,
	  BYTES(0x30, 0x08, STR_T, 0x04, 0x03, 0x00, 0x01, 0xFF),
	  MQTT_E_UTF8 },
	{ "PUBLISH Response Topic 0xC0 [MQTT-3.3.2-13]", MQTT_V5,
	  BYTES(0x30, 0x08, STR_T, 0x04, 0x08, 0x00, 0x01, 0xC0),
	  MQTT_E_UTF8 },
	{ "PUBLISH User Property value 0xFF [MQTT-1.5.7-1]", MQTT_V5,
	  BYTES(0x30, 0x0B, STR_T, 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01,
		0xFF), MQTT_E_UTF8 },

	/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
	{ "PUBACK packet id 0", MQTT_V311, BYTES(0x40, 0x02, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "PUBREC packet id 0", MQTT_V311, BYTES(0x50, 0x02, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "PUBREL packet id 0", MQTT_V311, BYTES(0x62, 0x02, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "PUBCOMP packet id 0 (v5)", MQTT_V5, BYTES(0x70, 0x02, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "PUBACK cut", MQTT_V311, BYTES(0x40, 0x01, 0x00), MQTT_E_SHORT },
	{ "PUBACK empty (v5)", MQTT_V5, BYTES(0x40, 0x00), MQTT_E_SHORT },
	{ "PUBACK trailing (3.1.1)", MQTT_V311,
	  BYTES(0x40, 0x03, 0x00, 0x01, 0x00), MQTT_E_TRAILING },
	{ "PUBREL trailing (3.1.1)", MQTT_V311,
	  BYTES(0x62, 0x03, 0x00, 0x01, 0x00), MQTT_E_TRAILING },
	{ "PUBACK reason 0x05 [MQTT-3.4.2-1]", MQTT_V5,
	  BYTES(0x40, 0x03, 0x00, 0x01, 0x05), MQTT_E_REASON_CODE },
	{ "PUBREC reason 0x92 [MQTT-3.5.2-1]", MQTT_V5,
	  BYTES(0x50, 0x03, 0x00, 0x01, 0x92), MQTT_E_REASON_CODE },
	{ "PUBREL reason 0x10 [MQTT-3.6.2-1]", MQTT_V5,
	  BYTES(0x62, 0x03, 0x00, 0x01, 0x10), MQTT_E_REASON_CODE },
	{ "PUBCOMP reason 0x80 [MQTT-3.7.2-1]", MQTT_V5,
	  BYTES(0x70, 0x03, 0x00, 0x01, 0x80), MQTT_E_REASON_CODE },
	{ "PUBACK properties past end", MQTT_V5,
	  BYTES(0x40, 0x05, 0x00, 0x01, 0x00, 0x05, 0x1F), MQTT_E_SHORT },
	{ "PUBACK Topic Alias", MQTT_V5,
	  BYTES(0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBREL Subscription Identifier", MQTT_V5,
	  BYTES(0x62, 0x06, 0x00, 0x01, 0x00, 0x02, 0x0B, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "PUBACK two Reason Strings", MQTT_V5,
	  BYTES(0x40, 0x0C, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, 'a',
		0x1F, 0x00, 0x01, 'b'), MQTT_E_PROP_DUPLICATE },
	{ "PUBCOMP Reason String 0xFF", MQTT_V5,
	  BYTES(0x70, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00, 0x01, 0xFF),
	  MQTT_E_UTF8 },
	{ "PUBACK trailing after properties", MQTT_V5,
	  BYTES(0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00), MQTT_E_TRAILING },

	/* SUBSCRIBE (§3.8). */
	{ "SUBSCRIBE no filters [MQTT-3.8.3-3 3.1.1]", MQTT_V311,
	  BYTES(0x82, 0x02, 0x00, 0x01), MQTT_E_NO_TOPICS },
	{ "SUBSCRIBE no filters (v5) [MQTT-3.8.3-2]", MQTT_V5,
	  BYTES(0x82, 0x03, 0x00, 0x01, 0x00), MQTT_E_NO_TOPICS },
	{ "SUBSCRIBE packet id 0", MQTT_V311,
	  BYTES(0x82, 0x06, 0x00, 0x00, STR_A, 0x00), MQTT_E_PACKET_ID },
	{ "SUBSCRIBE packet id 0 (v5)", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x00, 0x00, STR_A, 0x00), MQTT_E_PACKET_ID },
	{ "SUBSCRIBE packet id cut", MQTT_V311, BYTES(0x82, 0x01, 0x00),
	  MQTT_E_SHORT },
	{ "SUBSCRIBE filter past end", MQTT_V311,
	  BYTES(0x82, 0x05, 0x00, 0x01, 0x00, 0x05, 'a'), MQTT_E_SHORT },
	{ "SUBSCRIBE no options byte", MQTT_V311,
	  BYTES(0x82, 0x05, 0x00, 0x01, STR_A), MQTT_E_SHORT },
	{ "SUBSCRIBE second filter cut (v5)", MQTT_V5,
	  BYTES(0x82, 0x0A, 0x00, 0x01, 0x00, STR_A, 0x00, 0x00, 0x02, 'b'),
	  MQTT_E_SHORT },
	{ "SUBSCRIBE no property length (v5)", MQTT_V5,
	  BYTES(0x82, 0x02, 0x00, 0x01), MQTT_E_SHORT },
	{ "SUBSCRIBE options bit 2 (3.1.1) [MQTT-3-8.3-4]", MQTT_V311,
	  BYTES(0x82, 0x06, 0x00, 0x01, STR_A, 0x04), MQTT_E_SUB_OPTIONS },
	{ "SUBSCRIBE options bit 7 (3.1.1)", MQTT_V311,
	  BYTES(0x82, 0x06, 0x00, 0x01, STR_A, 0x80), MQTT_E_SUB_OPTIONS },
	{ "SUBSCRIBE options bit 6 (v5) [MQTT-3.8.3-5]", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x01, 0x00, STR_A, 0x40),
	  MQTT_E_SUB_OPTIONS },
	{ "SUBSCRIBE options bit 7 (v5)", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x01, 0x00, STR_A, 0x81),
	  MQTT_E_SUB_OPTIONS },
	{ "SUBSCRIBE QoS 3 (3.1.1)", MQTT_V311,
	  BYTES(0x82, 0x06, 0x00, 0x01, STR_A, 0x03), MQTT_E_QOS },
	{ "SUBSCRIBE QoS 3 (v5)", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x01, 0x00, STR_A, 0x03), MQTT_E_QOS },
	{ "SUBSCRIBE second entry QoS 3 (v5)", MQTT_V5,
	  BYTES(0x82, 0x0B, 0x00, 0x01, 0x00, STR_A, 0x01, STR_T, 0x0B),
	  MQTT_E_QOS },
	{ "SUBSCRIBE Retain Handling 3", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x01, 0x00, STR_A, 0x30),
	  MQTT_E_RETAIN_HANDLING },
	{ "SUBSCRIBE No Local on $share [MQTT-3.8.3-4]", MQTT_V5,
	  BYTES(0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's', 'h', 'a',
		'r', 'e', '/', 'g', '/', 't', 0x04), MQTT_E_SHARED_NO_LOCAL },
	{ "SUBSCRIBE filter 0xFF [MQTT-3.8.3-1]", MQTT_V5,
	  BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0xFF, 0x00),
	  MQTT_E_UTF8 },
	{ "SUBSCRIBE filter U+0000", MQTT_V311,
	  BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00), MQTT_E_UTF8 },
	{ "SUBSCRIBE two Subscription Identifiers", MQTT_V5,
	  BYTES(0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, STR_A,
		0x00), MQTT_E_PROP_DUPLICATE },
	{ "SUBSCRIBE Subscription Identifier 0", MQTT_V5,
	  BYTES(0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, STR_A, 0x00),
	  MQTT_E_PROP_VALUE },
	{ "SUBSCRIBE Message Expiry Interval", MQTT_V5,
	  BYTES(0x82, 0x0C, 0x00, 0x01, 0x05, 0x02, 0x00, 0x00, 0x00, 0x01,
		STR_A, 0x00), MQTT_E_PROP_NOT_ALLOWED },

	/* SUBACK (§3.9). */
	{ "SUBACK return code 0x03 (3.1.1)", MQTT_V311,
	  BYTES(0x90, 0x03, 0x00, 0x01, 0x03), MQTT_E_REASON_CODE },
	{ "SUBACK return code 0x87 (3.1.1)", MQTT_V311,
	  BYTES(0x90, 0x03, 0x00, 0x01, 0x87), MQTT_E_REASON_CODE },
	{ "SUBACK reason 0x03 (v5) [MQTT-3.9.3-2]", MQTT_V5,
	  BYTES(0x90, 0x04, 0x00, 0x01, 0x00, 0x03), MQTT_E_REASON_CODE },
	{ "SUBACK reason 0x11 (v5)", MQTT_V5,
	  BYTES(0x90, 0x05, 0x00, 0x01, 0x00, 0x00, 0x11),
	  MQTT_E_REASON_CODE },
	{ "SUBACK packet id 0", MQTT_V311, BYTES(0x90, 0x03, 0x00, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "SUBACK no property length (v5)", MQTT_V5,
	  BYTES(0x90, 0x02, 0x00, 0x01), MQTT_E_SHORT },
	{ "SUBACK Session Expiry Interval", MQTT_V5,
	  BYTES(0x90, 0x09, 0x00, 0x01, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
		0x00), MQTT_E_PROP_NOT_ALLOWED },

	/* UNSUBSCRIBE (§3.10). */
	{ "UNSUBSCRIBE no filters [MQTT-3.10.3-2]", MQTT_V311,
	  BYTES(0xA2, 0x02, 0x00, 0x01), MQTT_E_NO_TOPICS },
	{ "UNSUBSCRIBE no filters (v5)", MQTT_V5,
	  BYTES(0xA2, 0x03, 0x00, 0x01, 0x00), MQTT_E_NO_TOPICS },
	{ "UNSUBSCRIBE packet id 0", MQTT_V311,
	  BYTES(0xA2, 0x05, 0x00, 0x00, STR_A), MQTT_E_PACKET_ID },
	{ "UNSUBSCRIBE packet id cut", MQTT_V311, BYTES(0xA2, 0x01, 0x00),
	  MQTT_E_SHORT },
	{ "UNSUBSCRIBE filter past end", MQTT_V311,
	  BYTES(0xA2, 0x05, 0x00, 0x01, 0x00, 0x05, 'a'), MQTT_E_SHORT },
	{ "UNSUBSCRIBE filter length cut", MQTT_V311,
	  BYTES(0xA2, 0x03, 0x00, 0x01, 0x00), MQTT_E_SHORT },
	{ "UNSUBSCRIBE filter 0xFF [MQTT-3.10.3-1]", MQTT_V5,
	  BYTES(0xA2, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0xFF), MQTT_E_UTF8 },
	{ "UNSUBSCRIBE Subscription Identifier", MQTT_V5,
	  BYTES(0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, STR_A),
	  MQTT_E_PROP_NOT_ALLOWED },

	/* UNSUBACK (§3.11). */
	{ "UNSUBACK trailing (3.1.1)", MQTT_V311,
	  BYTES(0xB0, 0x03, 0x00, 0x01, 0x00), MQTT_E_TRAILING },
	{ "UNSUBACK reason 0x01 (v5) [MQTT-3.11.3-2]", MQTT_V5,
	  BYTES(0xB0, 0x04, 0x00, 0x01, 0x00, 0x01), MQTT_E_REASON_CODE },
	{ "UNSUBACK reason 0x90 (v5)", MQTT_V5,
	  BYTES(0xB0, 0x05, 0x00, 0x01, 0x00, 0x00, 0x90),
	  MQTT_E_REASON_CODE },
	{ "UNSUBACK packet id 0", MQTT_V311, BYTES(0xB0, 0x02, 0x00, 0x00),
	  MQTT_E_PACKET_ID },
	{ "UNSUBACK no property length (v5)", MQTT_V5,
	  BYTES(0xB0, 0x02, 0x00, 0x01), MQTT_E_SHORT },

	/* PINGREQ, PINGRESP: no variable header, no payload. */
	{ "PINGREQ remaining length 1", MQTT_V311, BYTES(0xC0, 0x01, 0x00),
	  MQTT_E_TRAILING },
	{ "PINGREQ remaining length 1 (v5)", MQTT_V5, BYTES(0xC0, 0x01, 0x00),
	  MQTT_E_TRAILING },
	{ "PINGRESP remaining length 2", MQTT_V311,
	  BYTES(0xD0, 0x02, 0x00, 0x00), MQTT_E_TRAILING },

	/* DISCONNECT (§3.14). */
	{ "DISCONNECT remaining length 1 (3.1.1)", MQTT_V311,
	  BYTES(0xE0, 0x01, 0x00), MQTT_E_TRAILING },
	{ "DISCONNECT reason 0x03 [MQTT-3.14.2-1]", MQTT_V5,
	  BYTES(0xE0, 0x01, 0x03), MQTT_E_REASON_CODE },
	{ "DISCONNECT reason 0x01", MQTT_V5, BYTES(0xE0, 0x02, 0x01, 0x00),
	  MQTT_E_REASON_CODE },
	{ "DISCONNECT reason 0x84", MQTT_V5, BYTES(0xE0, 0x02, 0x84, 0x00),
	  MQTT_E_REASON_CODE },
	{ "DISCONNECT properties past end", MQTT_V5,
	  BYTES(0xE0, 0x03, 0x00, 0x05, 0x11), MQTT_E_SHORT },
	{ "DISCONNECT Topic Alias", MQTT_V5,
	  BYTES(0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "DISCONNECT two Session Expiry Intervals", MQTT_V5,
	  BYTES(0xE0, 0x0C, 0x00, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x01, 0x11,
		0x00, 0x00, 0x00, 0x02), MQTT_E_PROP_DUPLICATE },
	{ "DISCONNECT Server Reference 0xFF", MQTT_V5,
	  BYTES(0xE0, 0x06, 0x9C, 0x04, 0x1C, 0x00, 0x01, 0xFF), MQTT_E_UTF8 },
	{ "DISCONNECT trailing", MQTT_V5, BYTES(0xE0, 0x03, 0x00, 0x00, 0x00),
	  MQTT_E_TRAILING },

	/* AUTH (§3.15). */
	{ "AUTH reason 0x01 [MQTT-3.15.2-1]", MQTT_V5,
	  BYTES(0xF0, 0x02, 0x01, 0x00), MQTT_E_REASON_CODE },
	{ "AUTH reason 0x87", MQTT_V5, BYTES(0xF0, 0x02, 0x87, 0x00),
	  MQTT_E_REASON_CODE },
	{ "AUTH Session Expiry Interval", MQTT_V5,
	  BYTES(0xF0, 0x07, 0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01),
	  MQTT_E_PROP_NOT_ALLOWED },
	{ "AUTH two Authentication Methods", MQTT_V5,
	  BYTES(0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x01, 'a', 0x15, 0x00,
		0x01, 'b'), MQTT_E_PROP_DUPLICATE },
	{ "AUTH properties past end", MQTT_V5,
	  BYTES(0xF0, 0x03, 0x18, 0x05, 0x15), MQTT_E_SHORT },
	{ "AUTH trailing", MQTT_V5, BYTES(0xF0, 0x03, 0x18, 0x00, 0x00),
	  MQTT_E_TRAILING },
	/*
	 * §3.15.2.1 lets AUTH omit reason and Property Length together
	 * (Remaining Length 0) only; unlike PUBACK (§3.4.2.2.1) and
	 * DISCONNECT (§3.14.2.2.1) it has no "less than 2" rule.
	 */
	{ "AUTH reason without property length", MQTT_V5,
	  BYTES(0xF0, 0x01, 0x18), MQTT_E_SHORT },

	/*
	 * Will Topic and Response Topic are Topic Names [MQTT-3.3.2-14].
	 * The spec names no reason code for a wildcard in a Response Topic;
	 * the codec reports it as a bad property value (0x82).
	 */
	{ "CONNECT will topic with '#'", MQTT_V311,
	  BYTES(0x10, 0x14, VH(0x04, 0x06), STR_A, 0x00, 0x03, 'a', '/',
		'#', 0x00, 0x00), MQTT_E_TOPIC_NAME },
	{ "CONNECT will topic with '+' (v5)", MQTT_V5,
	  BYTES(0x10, 0x14, VH(0x05, 0x06), 0x00, STR_A, 0x00, 0x00, 0x01,
		'+', 0x00, 0x00), MQTT_E_TOPIC_NAME },
	{ "PUBLISH Response Topic with '#'", MQTT_V5,
	  BYTES(0x30, 0x0A, STR_T, 0x06, 0x08, 0x00, 0x03, 'r', '/', '#'),
	  MQTT_E_PROP_VALUE },
	{ "will Response Topic with '+'", MQTT_V5,
	  BYTES(0x10, 0x19, VH(0x05, 0x06), 0x00, STR_A, 0x05, 0x08, 0x00,
		0x02, '+', 'x', STR_T, 0x00, 0x00), MQTT_E_PROP_VALUE },
};

#define BAD_COUNT ((int)(sizeof(bad) / sizeof(bad[0])))

/* The reason code each error maps to, from the comments in mqtt.h. */
static uint8_t header_reason(int err)
{
	switch (err) {
	case MQTT_E_TOO_LARGE:
		return MQTT_RC_PACKET_TOO_LARGE;
	case MQTT_E_PROTOCOL_NAME:
	case MQTT_E_PROTOCOL_VERSION:
		return MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
	case MQTT_E_PACKET_ID:
	case MQTT_E_PROP_DUPLICATE:
	case MQTT_E_PROP_VALUE:
	case MQTT_E_NO_TOPICS:
	case MQTT_E_RETAIN_HANDLING:
	case MQTT_E_SHARED_NO_LOCAL:
	case MQTT_E_TOPIC_EMPTY:
		return MQTT_RC_PROTOCOL_ERROR;
	case MQTT_E_TOPIC_NAME:
		return MQTT_RC_TOPIC_NAME_INVALID;
	case MQTT_E_TOPIC_ALIAS:
		return MQTT_RC_TOPIC_ALIAS_INVALID;
	default:
		return MQTT_RC_MALFORMED_PACKET;
	}
}

START_TEST(decode_malformed)
{
	const struct bad *b = &bad[_i];
	struct mqtt_packet out;
	size_t n;
	int rc;

	uint8_t *copy;

	check_frame_consistent(b->name, b->bytes, b->len);
	ck_assert_int_eq(mqtt_frame_peek(b->bytes, b->len, 0, &n),
			 b->bytes[0] >> 4 ? MQTT_OK : MQTT_E_PACKET_TYPE);
	/* An exact-size heap copy, so a sanitizer sees any over-read. */
	copy = malloc(b->len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, b->bytes, b->len);
	memset(&out, 0, sizeof(out));
	rc = mqtt_decode(copy, b->len, b->version, &out);
	free(copy);
	ck_assert_msg(rc == b->err, "'%s': mqtt_decode() = %d (%s), "
		      "expected %d (%s)", b->name, rc, mqtt_err_str(rc),
		      b->err, mqtt_err_str(b->err));
	ck_assert_msg(mqtt_err_reason(rc) == header_reason(b->err),
		      "'%s': reason 0x%02x, expected 0x%02x", b->name,
		      mqtt_err_reason(rc), header_reason(b->err));
}
END_TEST

/* Every strict prefix of a valid packet, re-framed, fails as SHORT. */
START_TEST(decode_every_truncation_is_short)
{
	static const uint8_t full[] = {
		0x10, 0x35,
		NAME_MQTT, 0x05, 0xCE, 0x00, 0x0A,
		0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
		0x00, 0x03, 'c', 'i', 'd',
		0x0E, 0x18, 0x00, 0x00, 0x00, 0x05, 0x01, 0x01, UP_KV,
		0x00, 0x03, 'w', '/', 't',
		0x00, 0x03, 'b', 'y', 'e',
		0x00, 0x01, 'u',
		0x00, 0x02, 0x00, 0xFF,
	};
	struct mqtt_packet out;
	size_t cut;

	ck_assert_int_eq(mqtt_decode(full, sizeof(full), MQTT_V5, &out),
			 MQTT_OK);
	for (cut = 0; cut < sizeof(full) - 2; cut++) {
		uint8_t *buf = malloc(cut + 2);
		int rc;

		ck_assert_ptr_nonnull(buf);
		buf[0] = 0x10;
		buf[1] = (uint8_t)cut;
		memcpy(buf + 2, full + 2, cut);
		rc = mqtt_decode(buf, cut + 2, MQTT_V5, &out);
		free(buf);
		ck_assert_msg(rc == MQTT_E_SHORT, "cut at %zu: %d (%s)", cut,
			      rc, mqtt_err_str(rc));
	}
}
END_TEST

/* The same for a PUBLISH with properties, below the payload. */
START_TEST(decode_publish_truncations)
{
	static const uint8_t full[] = {
		0x32, 0x12, TOPIC_AB, 0x00, 0x01, 0x0A,
		0x02, 0x00, 0x00, 0x00, 0x3C, 0x03, 0x00, 0x02, 'x', 'y',
	};
	struct mqtt_packet out;
	size_t cut;

	ck_assert_int_eq(mqtt_decode(full, sizeof(full), MQTT_V5, &out),
			 MQTT_OK);
	ck_assert_uint_eq(out.u.publish.payload.len, 0);
	for (cut = 0; cut < sizeof(full) - 2; cut++) {
		uint8_t *buf = malloc(cut + 2);
		int rc;

		ck_assert_ptr_nonnull(buf);
		buf[0] = full[0];
		buf[1] = (uint8_t)cut;
		memcpy(buf + 2, full + 2, cut);
		rc = mqtt_decode(buf, cut + 2, MQTT_V5, &out);
		free(buf);
		ck_assert_msg(rc == MQTT_E_SHORT, "cut at %zu: %d (%s)", cut,
			      rc, mqtt_err_str(rc));
	}
}
END_TEST

static Suite *decode_suite(void)
{
	Suite *s = suite_create("protocol/decode");
	TCase *tc = tcase_create("connect");

	tcase_add_test(tc, connect_v311_spec_example);
	tcase_add_test(tc, connect_v311_minimal);
	tcase_add_test(tc, connect_v311_empty_client_id);
	tcase_add_test(tc, connect_v311_will_qos2_retain);
	tcase_add_test(tc, connect_v311_will_qos0_retain);
	tcase_add_test(tc, connect_v311_username_only);
	tcase_add_test(tc, connect_v311_utf8_spec_example);
	tcase_add_test(tc, connect_v311_bom_kept);
	tcase_add_test(tc, connect_v31_minimal);
	tcase_add_test(tc, connect_v31_full);
	tcase_add_test(tc, connect_version_argument_ignored);
	tcase_add_test(tc, connect_bridge_levels);
	tcase_add_test(tc, connect_v5_spec_example);
	tcase_add_test(tc, connect_v5_all_properties);
	tcase_add_test(tc, connect_v5_password_without_username);
	tcase_add_test(tc, connect_v5_will_qos2_retain_no_props);
	tcase_add_test(tc, connect_v5_all_will_properties);
	tcase_add_test(tc, connect_refused_keeps_level);
	tcase_add_test(tc, connect_empty_will_topic_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("connack");
	tcase_add_test(tc, connack_v311);
	tcase_add_test(tc, connack_v5_minimal);
	tcase_add_test(tc, connack_v5_all_properties);
	tcase_add_test(tc, connack_v5_every_valid_reason);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish");
	tcase_add_test(tc, publish_v311_qos0);
	tcase_add_test(tc, publish_v311_qos1_spec_example);
	tcase_add_test(tc, publish_v311_qos2_dup_retain_empty);
	tcase_add_test(tc, publish_v311_retain_empty_payload);
	tcase_add_test(tc, publish_v311_utf8_topic_example);
	tcase_add_test(tc, publish_v311_topic_shapes);
	tcase_add_test(tc, publish_v31);
	tcase_add_test(tc, publish_v5_spec_example);
	tcase_add_test(tc, publish_v5_all_properties);
	tcase_add_test(tc, publish_v5_subscription_id_max);
	tcase_add_test(tc, publish_v5_empty_topic_with_alias);
	tcase_add_test(tc, publish_v5_no_props_clears_output);
	tcase_add_loop_test(tc, publish_remaining_length_boundaries, 0,
			    (int)(sizeof(rl_bounds) / sizeof(rl_bounds[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("acks");
	tcase_add_loop_test(tc, ack_v311_two_bytes, 0, 4);
	tcase_add_loop_test(tc, ack_v5_two_bytes, 0, 4);
	tcase_add_loop_test(tc, ack_v5_reason_only, 0, 4);
	tcase_add_loop_test(tc, ack_v5_reason_zero_props_zero, 0, 4);
	tcase_add_loop_test(tc, ack_v5_reason_and_properties, 0, 4);
	tcase_add_loop_test(tc, ack_v5_every_valid_reason, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("subscribe");
	tcase_add_test(tc, subscribe_v311_spec_example);
	tcase_add_test(tc, subscribe_v31);
	tcase_add_test(tc, subscribe_v5_spec_example);
	tcase_add_test(tc, subscribe_v5_all_options);
	tcase_add_test(tc, subscribe_filter_syntax_not_checked);
	tcase_add_test(tc, subscribe_v5_no_local_not_shared);
	tcase_add_test(tc, suback_v311_spec_example);
	tcase_add_test(tc, suback_v5_all_reasons);
	tcase_add_test(tc, unsubscribe_v311_spec_example);
	tcase_add_test(tc, unsubscribe_v5_spec_example);
	tcase_add_test(tc, unsubscribe_v5_user_property);
	tcase_add_test(tc, unsuback_v311);
	tcase_add_test(tc, unsuback_v5_all_reasons);
	suite_add_tcase(s, tc);

	tc = tcase_create("control");
	tcase_add_test(tc, ping_all_versions);
	tcase_add_test(tc, disconnect_v311);
	tcase_add_test(tc, disconnect_v5_forms);
	tcase_add_test(tc, disconnect_v5_properties);
	tcase_add_test(tc, disconnect_v5_every_valid_reason);
	tcase_add_test(tc, auth_v5);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_loop_test(tc, decode_malformed, 0, BAD_COUNT);
	tcase_add_test(tc, decode_every_truncation_is_short);
	tcase_add_test(tc, decode_publish_truncations);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(decode_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
