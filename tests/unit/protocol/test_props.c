/*
 * MQTT 5 properties: the table of MQTT 5.0 §2.2.2.2 (identifier, data type,
 * packets that may carry it) checked entry by entry through
 * mqtt_prop_type_of(), mqtt_prop_is_allowed() and mqtt_props_decode();
 * repeats, value ranges, UTF-8, truncation, mqtt_prop_next() and
 * mqtt_props_size().
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

#define T(t) (1u << (t))
#define W T(MQTT_PROPS_WILL)
#define P(id) ((uint64_t)1 << (id))
#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, \
	sizeof((const uint8_t[]){ __VA_ARGS__ })
#define BV(s) { (const uint8_t *)(s), sizeof(s) - 1 }

/* MQTT 5.0 Table 2-4 (§2.2.2.2), one row per property. */
static const struct {
	uint8_t id;
	enum mqtt_prop_type type;
	uint32_t packets; /* T(packet type), W for will properties */
} table[] = {
	{ 0x01, MQTT_PT_BYTE, T(MQTT_PUBLISH) | W },
	{ 0x02, MQTT_PT_U32, T(MQTT_PUBLISH) | W },
	{ 0x03, MQTT_PT_STRING, T(MQTT_PUBLISH) | W },
	{ 0x08, MQTT_PT_STRING, T(MQTT_PUBLISH) | W },
	{ 0x09, MQTT_PT_BINARY, T(MQTT_PUBLISH) | W },
	{ 0x0B, MQTT_PT_VARINT, T(MQTT_PUBLISH) | T(MQTT_SUBSCRIBE) },
	{ 0x11, MQTT_PT_U32, T(MQTT_CONNECT) | T(MQTT_CONNACK) |
			     T(MQTT_DISCONNECT) },
	{ 0x12, MQTT_PT_STRING, T(MQTT_CONNACK) },
	{ 0x13, MQTT_PT_U16, T(MQTT_CONNACK) },
	{ 0x15, MQTT_PT_STRING, T(MQTT_CONNECT) | T(MQTT_CONNACK) |
				T(MQTT_AUTH) },
	{ 0x16, MQTT_PT_BINARY, T(MQTT_CONNECT) | T(MQTT_CONNACK) |
				T(MQTT_AUTH) },
	{ 0x17, MQTT_PT_BYTE, T(MQTT_CONNECT) },
	{ 0x18, MQTT_PT_U32, W },
	{ 0x19, MQTT_PT_BYTE, T(MQTT_CONNECT) },
	{ 0x1A, MQTT_PT_STRING, T(MQTT_CONNACK) },
	{ 0x1C, MQTT_PT_STRING, T(MQTT_CONNACK) | T(MQTT_DISCONNECT) },
	{ 0x1F, MQTT_PT_STRING, T(MQTT_CONNACK) | T(MQTT_PUBACK) |
				T(MQTT_PUBREC) | T(MQTT_PUBREL) |
				T(MQTT_PUBCOMP) | T(MQTT_SUBACK) |
				T(MQTT_UNSUBACK) | T(MQTT_DISCONNECT) |
				T(MQTT_AUTH) },
	{ 0x21, MQTT_PT_U16, T(MQTT_CONNECT) | T(MQTT_CONNACK) },
	{ 0x22, MQTT_PT_U16, T(MQTT_CONNECT) | T(MQTT_CONNACK) },
	{ 0x23, MQTT_PT_U16, T(MQTT_PUBLISH) },
	{ 0x24, MQTT_PT_BYTE, T(MQTT_CONNACK) },
	{ 0x25, MQTT_PT_BYTE, T(MQTT_CONNACK) },
	{ 0x26, MQTT_PT_STRING_PAIR, T(MQTT_CONNECT) | T(MQTT_CONNACK) |
				     T(MQTT_PUBLISH) | W | T(MQTT_PUBACK) |
				     T(MQTT_PUBREC) | T(MQTT_PUBREL) |
				     T(MQTT_PUBCOMP) | T(MQTT_SUBSCRIBE) |
				     T(MQTT_SUBACK) | T(MQTT_UNSUBSCRIBE) |
				     T(MQTT_UNSUBACK) | T(MQTT_DISCONNECT) |
				     T(MQTT_AUTH) },
	{ 0x27, MQTT_PT_U32, T(MQTT_CONNECT) | T(MQTT_CONNACK) },
	{ 0x28, MQTT_PT_BYTE, T(MQTT_CONNACK) },
	{ 0x29, MQTT_PT_BYTE, T(MQTT_CONNACK) },
	{ 0x2A, MQTT_PT_BYTE, T(MQTT_CONNACK) },
};

#define TABLE_COUNT ((int)(sizeof(table) / sizeof(table[0])))

static int row_of(unsigned id)
{
	int i;

	for (i = 0; i < TABLE_COUNT; i++)
		if (table[i].id == id)
			return i;
	return -1;
}

/* One valid, non-zero instance of a property, by data type. */
static size_t put_valid(uint8_t *out, uint8_t id)
{
	size_t n = 0;

	out[n++] = id;
	switch (table[row_of(id)].type) {
	case MQTT_PT_BYTE:
		out[n++] = 0x01;
		break;
	case MQTT_PT_U16:
		out[n++] = 0x00;
		out[n++] = 0x01;
		break;
	case MQTT_PT_U32:
		memcpy(out + n, "\x00\x00\x00\x01", 4);
		n += 4;
		break;
	case MQTT_PT_VARINT:
		out[n++] = 0x01;
		break;
	case MQTT_PT_STRING:
		memcpy(out + n, "\x00\x01x", 3);
		n += 3;
		break;
	case MQTT_PT_BINARY:
		memcpy(out + n, "\x00\x02\x00\xFF", 4);
		n += 4;
		break;
	case MQTT_PT_STRING_PAIR:
		memcpy(out + n, "\x00\x01k\x00\x01v", 6);
		n += 6;
		break;
	}
	return n;
}

static void check_view(struct mqtt_bytes v, const char *exp, size_t n)
{
	ck_assert_uint_eq(v.len, n);
	ck_assert(n == 0 || memcmp(v.data, exp, n) == 0);
}

/* The decoded field of a put_valid() property. */
static void check_field(const struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case 0x01: ck_assert_uint_eq(p->payload_format_indicator, 1); break;
	case 0x02: ck_assert_uint_eq(p->message_expiry_interval, 1); break;
	case 0x03: check_view(p->content_type, "x", 1); break;
	case 0x08: check_view(p->response_topic, "x", 1); break;
	case 0x09: check_view(p->correlation_data, "\x00\xFF", 2); break;
	case 0x0B:
		ck_assert_uint_eq(p->subscription_id, 1);
		ck_assert_uint_eq(p->subscription_id_count, 1);
		break;
	case 0x11: ck_assert_uint_eq(p->session_expiry_interval, 1); break;
	case 0x12: check_view(p->assigned_client_identifier, "x", 1); break;
	case 0x13: ck_assert_uint_eq(p->server_keep_alive, 1); break;
	case 0x15: check_view(p->authentication_method, "x", 1); break;
	case 0x16: check_view(p->authentication_data, "\x00\xFF", 2); break;
	case 0x17: ck_assert_uint_eq(p->request_problem_information, 1); break;
	case 0x18: ck_assert_uint_eq(p->will_delay_interval, 1); break;
	case 0x19:
		ck_assert_uint_eq(p->request_response_information, 1);
		break;
	case 0x1A: check_view(p->response_information, "x", 1); break;
	case 0x1C: check_view(p->server_reference, "x", 1); break;
	case 0x1F: check_view(p->reason_string, "x", 1); break;
	case 0x21: ck_assert_uint_eq(p->receive_maximum, 1); break;
	case 0x22: ck_assert_uint_eq(p->topic_alias_maximum, 1); break;
	case 0x23: ck_assert_uint_eq(p->topic_alias, 1); break;
	case 0x24: ck_assert_uint_eq(p->maximum_qos, 1); break;
	case 0x25: ck_assert_uint_eq(p->retain_available, 1); break;
	case 0x26: ck_assert_uint_eq(p->user_count, 1); break;
	case 0x27: ck_assert_uint_eq(p->maximum_packet_size, 1); break;
	case 0x28:
		ck_assert_uint_eq(p->wildcard_subscription_available, 1);
		break;
	case 0x29:
		ck_assert_uint_eq(p->subscription_identifier_available, 1);
		break;
	case 0x2A:
		ck_assert_uint_eq(p->shared_subscription_available, 1);
		break;
	default:
		ck_abort_msg("no field for 0x%02x", id);
	}
}

/* ---------------------------------------------------------------------- */

START_TEST(prop_type_of_known)
{
	ck_assert_msg(mqtt_prop_type_of(table[_i].id) == table[_i].type,
		      "0x%02x: type %d, expected %d", table[_i].id,
		      mqtt_prop_type_of(table[_i].id), table[_i].type);
}
END_TEST

START_TEST(prop_type_of_unknown)
{
	if (row_of((unsigned)_i) >= 0)
		return;
	ck_assert_msg(mqtt_prop_type_of((uint8_t)_i) == 0,
		      "unknown id 0x%02x has type %d", _i,
		      mqtt_prop_type_of((uint8_t)_i));
}
END_TEST

/* Every id 0..255 against every packet type and the will properties. */
START_TEST(prop_is_allowed_table)
{
	int row = row_of((unsigned)_i), t;

	for (t = 0; t <= MQTT_AUTH; t++) {
		bool exp = row >= 0 && (table[row].packets & T(t));

		ck_assert_msg(mqtt_prop_is_allowed((uint8_t)_i, t) == exp,
			      "id 0x%02x in packet type %d: expected %s", _i,
			      t, exp ? "allowed" : "refused");
	}
}
END_TEST

/*
 * mqtt_props_decode() agrees with the table: one valid instance of each
 * property decodes in every packet that allows it and is refused with
 * MQTT_E_PROP_NOT_ALLOWED everywhere else.
 */
START_TEST(props_decode_allowed_matrix)
{
	uint8_t id = table[_i].id, block[16];
	size_t n = put_valid(block, id);
	int t;

	for (t = 0; t <= MQTT_AUTH; t++) {
		struct mqtt_props p;
		int rc;

		memset(&p, 0xA5, sizeof(p));
		rc = mqtt_props_decode(block, n, t, &p);
		if (!(table[_i].packets & T(t))) {
			ck_assert_msg(rc == MQTT_E_PROP_NOT_ALLOWED,
				      "0x%02x in type %d: %d", id, t, rc);
			continue;
		}
		ck_assert_msg(rc == MQTT_OK, "0x%02x in type %d: %d (%s)", id,
			      t, rc, mqtt_err_str(rc));
		ck_assert_msg(p.present == P(id), "0x%02x in type %d: present "
			      "0x%llx", id, t, (unsigned long long)p.present);
		ck_assert(p.raw.data == block);
		ck_assert_uint_eq(p.raw.len, n);
		check_field(&p, id);
		if (id != MQTT_PROP_USER_PROPERTY)
			ck_assert_uint_eq(p.user_count, 0);
		if (id != MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
			ck_assert_uint_eq(p.subscription_id_count, 0);
	}
}
END_TEST

/*
 * Only User Property may repeat, and Subscription Identifier in PUBLISH;
 * any other property twice is a Protocol Error (§2.2.2.2 and each
 * packet's property list).
 */
START_TEST(props_decode_repeats)
{
	uint8_t id = table[_i].id, block[32];
	size_t n = put_valid(block, id);
	int t;

	n += put_valid(block + n, id);
	for (t = 0; t <= MQTT_AUTH; t++) {
		struct mqtt_props p;
		int rc, exp;

		if (!(table[_i].packets & T(t)))
			continue;
		if (id == MQTT_PROP_USER_PROPERTY ||
		    (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER &&
		     t == MQTT_PUBLISH))
			exp = MQTT_OK;
		else
			exp = MQTT_E_PROP_DUPLICATE;
		memset(&p, 0, sizeof(p));
		rc = mqtt_props_decode(block, n, t, &p);
		ck_assert_msg(rc == exp, "0x%02x twice in type %d: %d, "
			      "expected %d", id, t, rc, exp);
		if (id == MQTT_PROP_USER_PROPERTY)
			ck_assert_uint_eq(p.user_count, 2);
		if (exp == MQTT_OK &&
		    id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
			ck_assert_uint_eq(p.subscription_id_count, 2);
	}
}
END_TEST

START_TEST(props_decode_empty_block)
{
	struct mqtt_props p;
	int t;

	for (t = 0; t <= MQTT_AUTH; t++) {
		memset(&p, 0xA5, sizeof(p));
		ck_assert_int_eq(mqtt_props_decode((const uint8_t *)"", 0, t,
						   &p), MQTT_OK);
		ck_assert_uint_eq(p.present, 0);
		ck_assert_uint_eq(p.user_count, 0);
		ck_assert_uint_eq(p.subscription_id_count, 0);
		ck_assert_uint_eq(p.raw.len, 0);
	}
}
END_TEST

/* Unknown identifiers are malformed. */
START_TEST(props_decode_unknown_ids)
{
	uint8_t block[2] = { (uint8_t)_i, 0x00 };
	struct mqtt_props p;

	if (row_of((unsigned)_i) >= 0)
		return;
	ck_assert_int_eq(mqtt_props_decode(block, sizeof(block), MQTT_PUBLISH,
					   &p), MQTT_E_PROP_ID);
	ck_assert_int_eq(mqtt_props_decode(block, sizeof(block), MQTT_CONNECT,
					   &p), MQTT_E_PROP_ID);
}
END_TEST

/* Values, strings and lengths. */
static const struct {
	const char *name;
	int type;
	const uint8_t *block;
	size_t len;
	int err;
} values[] = {
	/* Out of range (the "It is a Protocol Error" of each property). */
	{ "Payload Format Indicator 2", MQTT_PUBLISH, BYTES(0x01, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Payload Format Indicator 0xFF (will)", MQTT_PROPS_WILL,
	  BYTES(0x01, 0xFF), MQTT_E_PROP_VALUE },
	{ "Request Problem Information 2", MQTT_CONNECT, BYTES(0x17, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Request Response Information 2", MQTT_CONNECT, BYTES(0x19, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Maximum QoS 2", MQTT_CONNACK, BYTES(0x24, 0x02), MQTT_E_PROP_VALUE },
	{ "Retain Available 2", MQTT_CONNACK, BYTES(0x25, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Wildcard Subscription Available 2", MQTT_CONNACK, BYTES(0x28, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Subscription Identifier Available 2", MQTT_CONNACK,
	  BYTES(0x29, 0x02), MQTT_E_PROP_VALUE },
	{ "Shared Subscription Available 2", MQTT_CONNACK, BYTES(0x2A, 0x02),
	  MQTT_E_PROP_VALUE },
	{ "Receive Maximum 0 (CONNECT)", MQTT_CONNECT, BYTES(0x21, 0x00, 0x00),
	  MQTT_E_PROP_VALUE },
	{ "Receive Maximum 0 (CONNACK)", MQTT_CONNACK, BYTES(0x21, 0x00, 0x00),
	  MQTT_E_PROP_VALUE },
	{ "Maximum Packet Size 0 (CONNECT)", MQTT_CONNECT,
	  BYTES(0x27, 0x00, 0x00, 0x00, 0x00), MQTT_E_PROP_VALUE },
	{ "Maximum Packet Size 0 (CONNACK)", MQTT_CONNACK,
	  BYTES(0x27, 0x00, 0x00, 0x00, 0x00), MQTT_E_PROP_VALUE },
	{ "Subscription Identifier 0 (PUBLISH)", MQTT_PUBLISH,
	  BYTES(0x0B, 0x00), MQTT_E_PROP_VALUE },
	{ "Subscription Identifier 0 (SUBSCRIBE)", MQTT_SUBSCRIBE,
	  BYTES(0x0B, 0x00), MQTT_E_PROP_VALUE },
	{ "Topic Alias 0", MQTT_PUBLISH, BYTES(0x23, 0x00, 0x00),
	  MQTT_E_TOPIC_ALIAS },
	/* In range at the edges. */
	{ "Payload Format Indicator 0", MQTT_PUBLISH, BYTES(0x01, 0x00),
	  MQTT_OK },
	{ "Maximum QoS 0", MQTT_CONNACK, BYTES(0x24, 0x00), MQTT_OK },
	{ "Retain Available 0", MQTT_CONNACK, BYTES(0x25, 0x00), MQTT_OK },
	{ "Topic Alias Maximum 0", MQTT_CONNECT, BYTES(0x22, 0x00, 0x00),
	  MQTT_OK },
	{ "Server Keep Alive 0", MQTT_CONNACK, BYTES(0x13, 0x00, 0x00),
	  MQTT_OK },
	{ "Session Expiry Interval 0", MQTT_DISCONNECT,
	  BYTES(0x11, 0x00, 0x00, 0x00, 0x00), MQTT_OK },
	{ "Message Expiry Interval 0", MQTT_PUBLISH,
	  BYTES(0x02, 0x00, 0x00, 0x00, 0x00), MQTT_OK },
	{ "Receive Maximum 65535", MQTT_CONNECT, BYTES(0x21, 0xFF, 0xFF),
	  MQTT_OK },
	{ "Maximum Packet Size 0xFFFFFFFF", MQTT_CONNACK,
	  BYTES(0x27, 0xFF, 0xFF, 0xFF, 0xFF), MQTT_OK },
	{ "Topic Alias 65535", MQTT_PUBLISH, BYTES(0x23, 0xFF, 0xFF), MQTT_OK },
	{ "Subscription Identifier 268435455", MQTT_SUBSCRIBE,
	  BYTES(0x0B, 0xFF, 0xFF, 0xFF, 0x7F), MQTT_OK },
	{ "empty strings and binary", MQTT_PUBLISH,
	  BYTES(0x03, 0x00, 0x00, 0x09, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00,
		0x00), MQTT_OK },
	{ "binary may hold any byte", MQTT_CONNECT,
	  BYTES(0x16, 0x00, 0x03, 0x00, 0xC0, 0xFF), MQTT_OK },
	/* UTF-8 Encoded Strings [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
	{ "Content Type 0xFF", MQTT_PUBLISH, BYTES(0x03, 0x00, 0x01, 0xFF),
	  MQTT_E_UTF8 },
	{ "Response Topic U+0000", MQTT_PUBLISH, BYTES(0x08, 0x00, 0x01, 0x00),
	  MQTT_E_UTF8 },
	{ "Assigned Client Identifier surrogate", MQTT_CONNACK,
	  BYTES(0x12, 0x00, 0x03, 0xED, 0xA0, 0x80), MQTT_E_UTF8 },
	{ "Authentication Method overlong", MQTT_AUTH,
	  BYTES(0x15, 0x00, 0x02, 0xC1, 0x81), MQTT_E_UTF8 },
	{ "Response Information cut", MQTT_CONNACK,
	  BYTES(0x1A, 0x00, 0x01, 0xE2), MQTT_E_UTF8 },
	{ "Server Reference 0xFE", MQTT_DISCONNECT,
	  BYTES(0x1C, 0x00, 0x01, 0xFE), MQTT_E_UTF8 },
	{ "Reason String above U+10FFFF", MQTT_PUBACK,
	  BYTES(0x1F, 0x00, 0x04, 0xF5, 0x80, 0x80, 0x80), MQTT_E_UTF8 },
	{ "User Property name 0xFF", MQTT_PUBLISH,
	  BYTES(0x26, 0x00, 0x01, 0xFF, 0x00, 0x01, 'v'), MQTT_E_UTF8 },
	{ "User Property value U+0000 [MQTT-1.5.7-1]", MQTT_PUBLISH,
	  BYTES(0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0x00), MQTT_E_UTF8 },
	/* A property running past the block. */
	{ "byte missing", MQTT_PUBLISH, BYTES(0x01), MQTT_E_SHORT },
	{ "two-byte integer cut", MQTT_PUBLISH, BYTES(0x23, 0x00),
	  MQTT_E_SHORT },
	{ "four-byte integer cut", MQTT_PUBLISH, BYTES(0x02, 0x00, 0x00, 0x00),
	  MQTT_E_SHORT },
	{ "variable byte integer cut", MQTT_PUBLISH, BYTES(0x0B, 0x80, 0x80),
	  MQTT_E_SHORT },
	{ "variable byte integer of 5 bytes", MQTT_PUBLISH,
	  BYTES(0x0B, 0x81, 0x81, 0x81, 0x81, 0x01), MQTT_E_VARINT },
	{ "string length cut", MQTT_PUBLISH, BYTES(0x03, 0x00), MQTT_E_SHORT },
	{ "string past block", MQTT_PUBLISH, BYTES(0x03, 0x00, 0x03, 'a', 'b'),
	  MQTT_E_SHORT },
	{ "binary past block", MQTT_PUBLISH, BYTES(0x09, 0x00, 0x02, 0x00),
	  MQTT_E_SHORT },
	{ "pair value missing", MQTT_PUBLISH, BYTES(0x26, 0x00, 0x01, 'k'),
	  MQTT_E_SHORT },
	{ "pair value cut", MQTT_PUBLISH,
	  BYTES(0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v'), MQTT_E_SHORT },
	{ "good then cut", MQTT_PUBLISH, BYTES(0x23, 0x00, 0x01, 0x02, 0x00),
	  MQTT_E_SHORT },
	/* A multi-byte identifier (128) is not a known property. */
	{ "identifier 0x80 0x01", MQTT_PUBLISH, BYTES(0x80, 0x01, 0x00),
	  MQTT_E_PROP_ID },
	/* Not allowed beats nothing: Will Delay in CONNECT, not in will. */
	{ "Will Delay Interval in CONNECT", MQTT_CONNECT,
	  BYTES(0x18, 0x00, 0x00, 0x00, 0x05), MQTT_E_PROP_NOT_ALLOWED },
	{ "Will Delay Interval in will", MQTT_PROPS_WILL,
	  BYTES(0x18, 0x00, 0x00, 0x00, 0x05), MQTT_OK },
	{ "Session Expiry Interval in will", MQTT_PROPS_WILL,
	  BYTES(0x11, 0x00, 0x00, 0x00, 0x05), MQTT_E_PROP_NOT_ALLOWED },
	{ "User Property in PINGREQ", MQTT_PINGREQ,
	  BYTES(0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'),
	  MQTT_E_PROP_NOT_ALLOWED },
};

#define VALUES_COUNT ((int)(sizeof(values) / sizeof(values[0])))

START_TEST(props_decode_values)
{
	struct mqtt_props p;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = mqtt_props_decode(values[_i].block, values[_i].len,
			       values[_i].type, &p);
	ck_assert_msg(rc == values[_i].err, "%s: %d (%s), expected %d (%s)",
		      values[_i].name, rc, mqtt_err_str(rc), values[_i].err,
		      mqtt_err_str(values[_i].err));
}
END_TEST

/* mqtt_prop_next() yields every property in order with its value. */
START_TEST(prop_next_walk)
{
	static const uint8_t block[] = {
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',
		0x02, 0x00, 0x00, 0x01, 0x2C,
		0x26, 0x00, 0x01, 'b', 0x00, 0x02, '2', '2',
		0x0B, 0x82, 0x02,
		0x03, 0x00, 0x04, 'j', 's', 'o', 'n',
		0x09, 0x00, 0x02, 0x00, 0xFF,
		0x23, 0x00, 0x07,
		0x01, 0x01,
		0x26, 0x00, 0x00, 0x00, 0x00,
		0x0B, 0x05,
	};
	struct mqtt_props p;
	struct mqtt_prop pr;
	size_t off = 0;

	ck_assert_int_eq(mqtt_props_decode(block, sizeof(block), MQTT_PUBLISH,
					   &p), MQTT_OK);
	ck_assert_uint_eq(p.user_count, 3);
	ck_assert_uint_eq(p.subscription_id_count, 2);
	ck_assert_uint_eq(p.subscription_id, 258);

	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x26);
	check_view(pr.str, "a", 1);
	check_view(pr.value, "1", 1);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x02);
	ck_assert_uint_eq(pr.num, 300);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x26);
	check_view(pr.str, "b", 1);
	check_view(pr.value, "22", 2);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x0B);
	ck_assert_uint_eq(pr.num, 258);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x03);
	check_view(pr.str, "json", 4);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x09);
	check_view(pr.str, "\x00\xFF", 2);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x23);
	ck_assert_uint_eq(pr.num, 7);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x01);
	ck_assert_uint_eq(pr.num, 1);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x26);
	check_view(pr.str, "", 0);
	check_view(pr.value, "", 0);
	ck_assert(mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(pr.id, 0x0B);
	ck_assert_uint_eq(pr.num, 5);
	ck_assert(!mqtt_prop_next(&p.raw, &off, &pr));
	ck_assert_uint_eq(off, sizeof(block));
	/* An empty block yields nothing. */
	off = 0;
	memset(&p, 0, sizeof(p));
	ck_assert(!mqtt_prop_next(&p.raw, &off, &pr));
}
END_TEST

/* mqtt_props_size(): the encoded block without its length field. */
START_TEST(props_size_each_type)
{
	static const struct mqtt_user_prop users[] = {
		{ BV("k"), BV("v") }, { BV("name"), BV("value") },
	};
	static const uint32_t ids[] = { 1, 128, 16384, 2097152 };
	struct mqtt_props p;

	memset(&p, 0, sizeof(p));
	ck_assert_uint_eq(mqtt_props_size(&p), 0);

	mqtt_props_set(&p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	ck_assert_uint_eq(mqtt_props_size(&p), 2);
	mqtt_props_set(&p, MQTT_PROP_TOPIC_ALIAS);
	p.topic_alias = 1;
	ck_assert_uint_eq(mqtt_props_size(&p), 2 + 3);
	mqtt_props_set(&p, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	ck_assert_uint_eq(mqtt_props_size(&p), 2 + 3 + 5);
	mqtt_props_set(&p, MQTT_PROP_CONTENT_TYPE);
	p.content_type = (struct mqtt_bytes)BV("json");
	ck_assert_uint_eq(mqtt_props_size(&p), 2 + 3 + 5 + 7);
	mqtt_props_set(&p, MQTT_PROP_CORRELATION_DATA);
	p.correlation_data = (struct mqtt_bytes)BV("\x00\x01\x02");
	ck_assert_uint_eq(mqtt_props_size(&p), 2 + 3 + 5 + 7 + 6);
	p.users = users;
	p.user_count = 2;
	mqtt_props_set(&p, MQTT_PROP_USER_PROPERTY);
	ck_assert_uint_eq(mqtt_props_size(&p), 23 + 7 + 14);
	p.subscription_ids = ids;
	p.subscription_id_count = 4;
	mqtt_props_set(&p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	ck_assert_uint_eq(mqtt_props_size(&p), 44 + 2 + 3 + 4 + 5);

	/* The single subscription_id when there is no array. */
	memset(&p, 0, sizeof(p));
	mqtt_props_set(&p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	p.subscription_id = 268435455;
	p.subscription_id_count = 1;
	ck_assert_uint_eq(mqtt_props_size(&p), 5);
}
END_TEST

/*
 * A decoded block re-encodes with its repeated properties copied from raw
 * (mqtt.h, struct mqtt_props): its size is the block's.
 */
START_TEST(props_size_decoded_block)
{
	static const uint8_t block[] = {
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',
		0x02, 0x00, 0x00, 0x01, 0x2C,
		0x26, 0x00, 0x01, 'b', 0x00, 0x02, '2', '2',
		0x0B, 0x82, 0x02,
		0x0B, 0x05,
		0x03, 0x00, 0x04, 'j', 's', 'o', 'n',
	};
	struct mqtt_props p;

	ck_assert_int_eq(mqtt_props_decode(block, sizeof(block), MQTT_PUBLISH,
					   &p), MQTT_OK);
	ck_assert_uint_eq(mqtt_props_size(&p), sizeof(block));
}
END_TEST

static Suite *props_suite(void)
{
	Suite *s = suite_create("protocol/props");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, prop_type_of_known, 0, TABLE_COUNT);
	tcase_add_loop_test(tc, prop_type_of_unknown, 0, 256);
	tcase_add_loop_test(tc, prop_is_allowed_table, 0, 256);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_loop_test(tc, props_decode_allowed_matrix, 0, TABLE_COUNT);
	tcase_add_loop_test(tc, props_decode_repeats, 0, TABLE_COUNT);
	tcase_add_test(tc, props_decode_empty_block);
	tcase_add_loop_test(tc, props_decode_unknown_ids, 0, 128);
	tcase_add_loop_test(tc, props_decode_values, 0, VALUES_COUNT);
	suite_add_tcase(s, tc);

	tc = tcase_create("walk and size");
	tcase_add_test(tc, prop_next_walk);
	tcase_add_test(tc, props_size_each_type);
	tcase_add_test(tc, props_size_decoded_block);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(props_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
