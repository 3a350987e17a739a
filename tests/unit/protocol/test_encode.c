/*
 * mqtt_encode() and mqtt_encoded_size() against byte-exact packets from the
 * MQTT 3.1.1 and 5.0 specifications (the vectors of test_decode.c where
 * they fit), MQTT_E_NO_SPACE one byte short of every vector, round trips
 * through mqtt_frame_peek() and mqtt_decode(), the writev PUBLISH header,
 * and fields too long for MQTT.
 *
 * Where the specification lets a sender choose (MQTT 5 acknowledgements may
 * omit a 0x00 reason code and an empty property block: §3.4.2.1, §3.14.2.1,
 * §3.15.2.1), a vector lists every allowed form.  The order in which the
 * encoder writes several ordinary properties is not part of the contract,
 * so byte-exact vectors carry at most one of them (plus the repeated
 * Subscription Identifiers and User Properties, whose place mqtt.h fixes);
 * packets with many properties are checked by round trip.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, \
	sizeof((const uint8_t[]){ __VA_ARGS__ })
#define NONE NULL, 0
#define BV(s) { (const uint8_t *)(s), sizeof(s) - 1 }
#define P(id) ((uint64_t)1 << (id))

#define NAME_MQTT 0x00, 0x04, 'M', 'Q', 'T', 'T'
#define NAME_MQISDP 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p'
#define TOPIC_AB 0x00, 0x03, 'a', '/', 'b'
#define UP_KV 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'

static const uint8_t pw_00ff[] = { 0x00, 0xFF };
static const struct mqtt_user_prop up_kv[] = { { BV("k"), BV("v") } };
static const struct mqtt_user_prop up_k12[] = {
	{ BV("k1"), BV("v1") },
	{ BV("k2"), BV("v2") },
};
static const uint32_t ids_1_128[] = { 1, 128 };
static const struct mqtt_sub_entry subs_spec[] = {
	{ .filter = BV("a/b"), .qos = 1 },
	{ .filter = BV("c/d"), .qos = 2 },
};
static const struct mqtt_sub_entry subs_all_options[] = {
	{ .filter = BV("a/+"), .qos = 2, .no_local = true,
	  .retain_as_published = true, .retain_handling = 2 },
	{ .filter = BV("b/#"), .qos = 1, .retain_handling = 1 },
	{ .filter = BV("$share/g/t"), .qos = 0, .retain_as_published = true },
	{ .filter = BV("c") },
};
static const struct mqtt_bytes filters_spec[] = { BV("a/b"), BV("c/d") };
static const uint8_t suback_v311[] = { 0x00, 0x02, 0x80 };
static const uint8_t suback_v5[] = {
	0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
};
static const uint8_t unsuback_v5[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F,
				       0x91 };

struct vec {
	const char *name;
	uint8_t version;
	struct mqtt_packet pkt;
	/* The expected encoding, then up to two other allowed forms. */
	const uint8_t *exp;
	size_t len;
	const uint8_t *alt1;
	size_t alt1_len;
	const uint8_t *alt2;
	size_t alt2_len;
};

static const struct vec vecs[] = {
	/* ---------------------------------------------------- MQTT 3.1.1 */
	{ "CONNECT 3.1.1 spec example", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .clean_start = true, .will_flag = true,
		.will_qos = 1, .username_flag = true, .password_flag = true,
		.keep_alive = 10, .client_id = BV("cid"),
		.will_topic = BV("w/t"), .will_payload = BV("bye"),
		.username = BV("u"), .password = { pw_00ff, 2 } } },
	  BYTES(0x10, 0x20, NAME_MQTT, 0x04, 0xCE, 0x00, 0x0A,
		0x00, 0x03, 'c', 'i', 'd', 0x00, 0x03, 'w', '/', 't',
		0x00, 0x03, 'b', 'y', 'e', 0x00, 0x01, 'u',
		0x00, 0x02, 0x00, 0xFF), NONE, NONE },
	{ "CONNECT 3.1.1 minimal", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .clean_start = true, .keep_alive = 60,
		.client_id = BV("a") } },
	  BYTES(0x10, 0x0D, NAME_MQTT, 0x04, 0x02, 0x00, 0x3C,
		0x00, 0x01, 'a'), NONE, NONE },
	{ "CONNECT 3.1.1 empty client id", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .clean_start = true,
		.keep_alive = 65535 } },
	  BYTES(0x10, 0x0C, NAME_MQTT, 0x04, 0x02, 0xFF, 0xFF, 0x00, 0x00),
	  NONE, NONE },
	{ "CONNECT 3.1.1 will QoS 2 retain", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .will_flag = true, .will_qos = 2,
		.will_retain = true, .client_id = BV("c"),
		.will_topic = BV("t") } },
	  BYTES(0x10, 0x12, NAME_MQTT, 0x04, 0x34, 0x00, 0x00,
		0x00, 0x01, 'c', 0x00, 0x01, 't', 0x00, 0x00), NONE, NONE },
	{ "CONNECT 3.1.1 user name only", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .clean_start = true, .keep_alive = 60,
		.username_flag = true, .client_id = BV("a"),
		.username = BV("user") } },
	  BYTES(0x10, 0x13, NAME_MQTT, 0x04, 0x82, 0x00, 0x3C,
		0x00, 0x01, 'a', 0x00, 0x04, 'u', 's', 'e', 'r'), NONE, NONE },
	{ "CONNECT 3.1 MQIsdp", MQTT_V31,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 3, .clean_start = true, .keep_alive = 60,
		.client_id = BV("a") } },
	  BYTES(0x10, 0x0F, NAME_MQISDP, 0x03, 0x02, 0x00, 0x3C,
		0x00, 0x01, 'a'), NONE, NONE },
	{ "CONNECT 3.1.1 bridge", MQTT_V311,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 4, .bridge = true, .clean_start = true,
		.keep_alive = 60, .client_id = BV("a") } },
	  BYTES(0x10, 0x0D, NAME_MQTT, 0x84, 0x02, 0x00, 0x3C,
		0x00, 0x01, 'a'), NONE, NONE },
	{ "CONNACK 3.1.1 session present", MQTT_V311,
	  { .type = MQTT_CONNACK, .u.connack = { .session_present = true } },
	  BYTES(0x20, 0x02, 0x01, 0x00), NONE, NONE },
	{ "CONNACK 3.1.1 not authorized", MQTT_V311,
	  { .type = MQTT_CONNACK, .u.connack = {
		.reason = MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED } },
	  BYTES(0x20, 0x02, 0x00, 0x05), NONE, NONE },
	{ "PUBLISH 3.1.1 QoS 0", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.topic = BV("a/b"), .payload = BV("hi") } },
	  BYTES(0x30, 0x07, TOPIC_AB, 'h', 'i'), NONE, NONE },
	{ "PUBLISH 3.1.1 QoS 1 spec example", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 1, .packet_id = 10, .topic = BV("a/b"),
		.payload = BV("x") } },
	  BYTES(0x32, 0x08, TOPIC_AB, 0x00, 0x0A, 'x'), NONE, NONE },
	{ "PUBLISH 3.1.1 QoS 2 dup retain empty", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 2, .dup = true, .retain = true, .packet_id = 0xFFFF,
		.topic = BV("t") } },
	  BYTES(0x3D, 0x05, 0x00, 0x01, 't', 0xFF, 0xFF), NONE, NONE },
	{ "PUBLISH 3.1.1 UTF-8 example topic", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.topic = BV("A\xF0\xAA\x9B\x94") } },
	  BYTES(0x30, 0x07, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94),
	  NONE, NONE },
	{ "PUBACK 3.1.1", MQTT_V311,
	  { .type = MQTT_PUBACK, .u.ack = { .packet_id = 10 } },
	  BYTES(0x40, 0x02, 0x00, 0x0A), NONE, NONE },
	{ "PUBREC 3.1.1", MQTT_V311,
	  { .type = MQTT_PUBREC, .u.ack = { .packet_id = 11 } },
	  BYTES(0x50, 0x02, 0x00, 0x0B), NONE, NONE },
	{ "PUBREL 3.1.1", MQTT_V311,
	  { .type = MQTT_PUBREL, .u.ack = { .packet_id = 12 } },
	  BYTES(0x62, 0x02, 0x00, 0x0C), NONE, NONE },
	{ "PUBCOMP 3.1.1", MQTT_V311,
	  { .type = MQTT_PUBCOMP, .u.ack = { .packet_id = 13 } },
	  BYTES(0x70, 0x02, 0x00, 0x0D), NONE, NONE },
	{ "SUBSCRIBE 3.1.1 spec example", MQTT_V311,
	  { .type = MQTT_SUBSCRIBE, .u.subscribe = {
		.packet_id = 10, .count = 2, .subs = subs_spec } },
	  BYTES(0x82, 0x0E, 0x00, 0x0A, TOPIC_AB, 0x01,
		0x00, 0x03, 'c', '/', 'd', 0x02), NONE, NONE },
	{ "SUBACK 3.1.1 spec example", MQTT_V311,
	  { .type = MQTT_SUBACK, .u.suback = {
		.packet_id = 10, .reasons = { suback_v311, 3 } } },
	  BYTES(0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80), NONE, NONE },
	{ "UNSUBSCRIBE 3.1.1 spec example", MQTT_V311,
	  { .type = MQTT_UNSUBSCRIBE, .u.subscribe = {
		.packet_id = 10, .count = 2, .filters = filters_spec } },
	  BYTES(0xA2, 0x0C, 0x00, 0x0A, TOPIC_AB, 0x00, 0x03, 'c', '/', 'd'),
	  NONE, NONE },
	{ "UNSUBACK 3.1.1", MQTT_V311,
	  { .type = MQTT_UNSUBACK, .u.suback = { .packet_id = 10 } },
	  BYTES(0xB0, 0x02, 0x00, 0x0A), NONE, NONE },
	{ "PINGREQ 3.1.1", MQTT_V311, { .type = MQTT_PINGREQ },
	  BYTES(0xC0, 0x00), NONE, NONE },
	{ "PINGRESP 3.1.1", MQTT_V311, { .type = MQTT_PINGRESP },
	  BYTES(0xD0, 0x00), NONE, NONE },
	{ "DISCONNECT 3.1.1", MQTT_V311, { .type = MQTT_DISCONNECT },
	  BYTES(0xE0, 0x00), NONE, NONE },
	{ "PUBLISH 3.1 QoS 1", MQTT_V31,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 1, .packet_id = 10, .topic = BV("a/b"),
		.payload = BV("x") } },
	  BYTES(0x32, 0x08, TOPIC_AB, 0x00, 0x0A, 'x'), NONE, NONE },

	/*
	 * MQTT 5-only data must not leak into 3.1.1 bytes: a broker fans one
	 * message (with its properties) out to clients of both versions.
	 */
	{ "PUBLISH QoS 0 never carries a packet id [MQTT-2.2.1-2]", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.packet_id = 5, .topic = BV("a/b"), .payload = BV("hi") } },
	  BYTES(0x30, 0x07, TOPIC_AB, 'h', 'i'), NONE, NONE },
	{ "PUBLISH 3.1.1 drops MQTT 5 properties", MQTT_V311,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 1, .packet_id = 10, .topic = BV("a/b"),
		.payload = BV("x"),
		.props = { .present = P(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
				      P(MQTT_PROP_USER_PROPERTY),
			   .message_expiry_interval = 60,
			   .users = up_kv, .user_count = 1 } } },
	  BYTES(0x32, 0x08, TOPIC_AB, 0x00, 0x0A, 'x'), NONE, NONE },
	{ "SUBSCRIBE 3.1.1 writes only the QoS bits [MQTT-3-8.3-4]",
	  MQTT_V311,
	  { .type = MQTT_SUBSCRIBE, .u.subscribe = {
		.packet_id = 0x1234, .count = 4, .subs = subs_all_options } },
	  BYTES(0x82, 0x1F, 0x12, 0x34,
		0x00, 0x03, 'a', '/', '+', 0x02,
		0x00, 0x03, 'b', '/', '#', 0x01,
		0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't',
		0x00, 0x00, 0x01, 'c', 0x00), NONE, NONE },
	{ "PUBACK 3.1.1 has no reason code", MQTT_V311,
	  { .type = MQTT_PUBACK, .u.ack = { .packet_id = 10, .reason = 0x10 } },
	  BYTES(0x40, 0x02, 0x00, 0x0A), NONE, NONE },
	{ "UNSUBACK 3.1.1 has no reason codes", MQTT_V311,
	  { .type = MQTT_UNSUBACK, .u.suback = {
		.packet_id = 10,
		.reasons = { unsuback_v5, sizeof(unsuback_v5) } } },
	  BYTES(0xB0, 0x02, 0x00, 0x0A), NONE, NONE },
	{ "DISCONNECT 3.1.1 has no reason code", MQTT_V311,
	  { .type = MQTT_DISCONNECT, .u.disconnect = { .reason = 0x8E } },
	  BYTES(0xE0, 0x00), NONE, NONE },
	{ "CONNACK 3.1.1 drops MQTT 5 properties", MQTT_V311,
	  { .type = MQTT_CONNACK, .u.connack = {
		.props = { .present =
			   P(MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER),
			   .assigned_client_identifier = BV("abc") } } },
	  BYTES(0x20, 0x02, 0x00, 0x00), NONE, NONE },

	/* -------------------------------------------------------- MQTT 5 */
	{ "CONNECT 5.0 spec example with will properties", MQTT_V5,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 5, .clean_start = true, .will_flag = true,
		.will_qos = 1, .username_flag = true, .password_flag = true,
		.keep_alive = 10,
		.props = { .present = P(MQTT_PROP_SESSION_EXPIRY_INTERVAL),
			   .session_expiry_interval = 10 },
		.client_id = BV("cid"),
		.will_props = { .present = P(MQTT_PROP_WILL_DELAY_INTERVAL) |
					   P(MQTT_PROP_USER_PROPERTY),
				.will_delay_interval = 5,
				.users = up_kv, .user_count = 1 },
		.will_topic = BV("w/t"), .will_payload = BV("bye"),
		.username = BV("u"), .password = { pw_00ff, 2 } } },
	  BYTES(0x10, 0x33, NAME_MQTT, 0x05, 0xCE, 0x00, 0x0A,
		0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
		0x00, 0x03, 'c', 'i', 'd',
		0x0C, 0x18, 0x00, 0x00, 0x00, 0x05, UP_KV,
		0x00, 0x03, 'w', '/', 't', 0x00, 0x03, 'b', 'y', 'e',
		0x00, 0x01, 'u', 0x00, 0x02, 0x00, 0xFF), NONE, NONE },
	{ "CONNECT 5.0 minimal", MQTT_V5,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 5, .clean_start = true, .keep_alive = 60,
		.client_id = BV("a") } },
	  BYTES(0x10, 0x0E, NAME_MQTT, 0x05, 0x02, 0x00, 0x3C, 0x00,
		0x00, 0x01, 'a'), NONE, NONE },
	{ "CONNECT 5.0 password without user name", MQTT_V5,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 5, .clean_start = true, .keep_alive = 60,
		.password_flag = true, .client_id = BV("c"),
		.password = BV("p") } },
	  BYTES(0x10, 0x11, NAME_MQTT, 0x05, 0x42, 0x00, 0x3C, 0x00,
		0x00, 0x01, 'c', 0x00, 0x01, 'p'), NONE, NONE },
	{ "CONNACK 5.0 minimal", MQTT_V5,
	  { .type = MQTT_CONNACK, .u.connack = { .reason = 0 } },
	  BYTES(0x20, 0x03, 0x00, 0x00, 0x00), NONE, NONE },
	{ "CONNACK 5.0 Assigned Client Identifier", MQTT_V5,
	  { .type = MQTT_CONNACK, .u.connack = {
		.props = { .present =
			   P(MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER),
			   .assigned_client_identifier = BV("abc") } } },
	  BYTES(0x20, 0x09, 0x00, 0x00, 0x06, 0x12, 0x00, 0x03, 'a', 'b', 'c'),
	  NONE, NONE },
	{ "CONNACK 5.0 refused", MQTT_V5,
	  { .type = MQTT_CONNACK, .u.connack = {
		.reason = MQTT_RC_BAD_USER_NAME_OR_PASSWORD } },
	  BYTES(0x20, 0x03, 0x00, 0x86, 0x00), NONE, NONE },
	{ "PUBLISH 5.0 spec example", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 1, .packet_id = 10, .topic = BV("a/b"),
		.payload = BV("x") } },
	  BYTES(0x32, 0x09, TOPIC_AB, 0x00, 0x0A, 0x00, 'x'), NONE, NONE },
	{ "PUBLISH 5.0 alias, subscription ids, user properties", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 1, .packet_id = 1, .topic = BV("a/b"),
		.payload = BV("{}"),
		.props = { .present = P(MQTT_PROP_TOPIC_ALIAS) |
				      P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
				      P(MQTT_PROP_USER_PROPERTY),
			   .topic_alias = 7, .subscription_id = 1,
			   .subscription_ids = ids_1_128,
			   .subscription_id_count = 2,
			   .users = up_k12, .user_count = 2 } } },
	  BYTES(0x32, 0x24, TOPIC_AB, 0x00, 0x01, 0x1A,
		0x23, 0x00, 0x07, 0x0B, 0x01, 0x0B, 0x80, 0x01,
		0x26, 0x00, 0x02, 'k', '1', 0x00, 0x02, 'v', '1',
		0x26, 0x00, 0x02, 'k', '2', 0x00, 0x02, 'v', '2', '{', '}'),
	  NONE, NONE },
	{ "PUBLISH 5.0 arrays without present bits", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.topic = BV("t"),
		.props = { .subscription_ids = ids_1_128,
			   .subscription_id_count = 2,
			   .users = up_kv, .user_count = 1 } } },
	  BYTES(0x30, 0x10, 0x00, 0x01, 't', 0x0C, 0x0B, 0x01, 0x0B, 0x80,
		0x01, UP_KV), NONE, NONE },
	{ "PUBLISH 5.0 single subscription id", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.topic = BV("t"),
		.props = { .present = P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER),
			   .subscription_id = 5,
			   .subscription_id_count = 1 } } },
	  BYTES(0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x0B, 0x05), NONE, NONE },
	{ "PUBLISH 5.0 empty topic with alias", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.payload = BV("p"),
		.props = { .present = P(MQTT_PROP_TOPIC_ALIAS),
			   .topic_alias = 1 } } },
	  BYTES(0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'p'),
	  NONE, NONE },
	{ "PUBACK 5.0 success", MQTT_V5,
	  { .type = MQTT_PUBACK, .u.ack = { .packet_id = 1 } },
	  BYTES(0x40, 0x02, 0x00, 0x01), BYTES(0x40, 0x03, 0x00, 0x01, 0x00),
	  BYTES(0x40, 0x04, 0x00, 0x01, 0x00, 0x00) },
	{ "PUBREC 5.0 no matching subscribers", MQTT_V5,
	  { .type = MQTT_PUBREC, .u.ack = { .packet_id = 1, .reason = 0x10 } },
	  BYTES(0x50, 0x03, 0x00, 0x01, 0x10),
	  BYTES(0x50, 0x04, 0x00, 0x01, 0x10, 0x00), NONE },
	{ "PUBREL 5.0 packet identifier not found", MQTT_V5,
	  { .type = MQTT_PUBREL, .u.ack = { .packet_id = 1, .reason = 0x92 } },
	  BYTES(0x62, 0x03, 0x00, 0x01, 0x92),
	  BYTES(0x62, 0x04, 0x00, 0x01, 0x92, 0x00), NONE },
	{ "PUBCOMP 5.0 success", MQTT_V5,
	  { .type = MQTT_PUBCOMP, .u.ack = { .packet_id = 0x1234 } },
	  BYTES(0x70, 0x02, 0x12, 0x34), BYTES(0x70, 0x03, 0x12, 0x34, 0x00),
	  BYTES(0x70, 0x04, 0x12, 0x34, 0x00, 0x00) },
	{ "PUBACK 5.0 quota exceeded with reason string", MQTT_V5,
	  { .type = MQTT_PUBACK, .u.ack = {
		.packet_id = 1, .reason = 0x97,
		.props = { .present = P(MQTT_PROP_REASON_STRING),
			   .reason_string = BV("quota") } } },
	  BYTES(0x40, 0x0C, 0x00, 0x01, 0x97, 0x08, 0x1F, 0x00, 0x05,
		'q', 'u', 'o', 't', 'a'), NONE, NONE },
	{ "PUBACK 5.0 success with user property", MQTT_V5,
	  { .type = MQTT_PUBACK, .u.ack = {
		.packet_id = 1,
		.props = { .users = up_kv, .user_count = 1 } } },
	  BYTES(0x40, 0x0B, 0x00, 0x01, 0x00, 0x07, UP_KV), NONE, NONE },
	{ "SUBSCRIBE 5.0 spec example", MQTT_V5,
	  { .type = MQTT_SUBSCRIBE, .u.subscribe = {
		.packet_id = 10, .count = 2, .subs = subs_spec } },
	  BYTES(0x82, 0x0F, 0x00, 0x0A, 0x00, TOPIC_AB, 0x01,
		0x00, 0x03, 'c', '/', 'd', 0x02), NONE, NONE },
	{ "SUBSCRIBE 5.0 all options", MQTT_V5,
	  { .type = MQTT_SUBSCRIBE, .u.subscribe = {
		.packet_id = 0x1234, .count = 4, .subs = subs_all_options,
		.props = { .present = P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
				      P(MQTT_PROP_USER_PROPERTY),
			   .subscription_id = MQTT_SUBSCRIPTION_ID_MAX,
			   .subscription_id_count = 1,
			   .users = up_kv, .user_count = 1 } } },
	  BYTES(0x82, 0x2C, 0x12, 0x34,
		0x0C, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F, UP_KV,
		0x00, 0x03, 'a', '/', '+', 0x2E,
		0x00, 0x03, 'b', '/', '#', 0x11,
		0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't',
		0x08, 0x00, 0x01, 'c', 0x00), NONE, NONE },
	{ "SUBACK 5.0 every reason code", MQTT_V5,
	  { .type = MQTT_SUBACK, .u.suback = {
		.packet_id = 10, .reasons = { suback_v5, sizeof(suback_v5) },
		.props = { .present = P(MQTT_PROP_REASON_STRING),
			   .reason_string = BV("x") } } },
	  BYTES(0x90, 0x13, 0x00, 0x0A, 0x04, 0x1F, 0x00, 0x01, 'x',
		0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E,
		0xA1, 0xA2), NONE, NONE },
	{ "UNSUBSCRIBE 5.0 spec example", MQTT_V5,
	  { .type = MQTT_UNSUBSCRIBE, .u.subscribe = {
		.packet_id = 10, .count = 2, .filters = filters_spec } },
	  BYTES(0xA2, 0x0D, 0x00, 0x0A, 0x00, TOPIC_AB,
		0x00, 0x03, 'c', '/', 'd'), NONE, NONE },
	{ "UNSUBACK 5.0 every reason code", MQTT_V5,
	  { .type = MQTT_UNSUBACK, .u.suback = {
		.packet_id = 10,
		.reasons = { unsuback_v5, sizeof(unsuback_v5) } } },
	  BYTES(0xB0, 0x0A, 0x00, 0x0A, 0x00, 0x00, 0x11, 0x80, 0x83, 0x87,
		0x8F, 0x91), NONE, NONE },
	{ "PINGREQ 5.0", MQTT_V5, { .type = MQTT_PINGREQ },
	  BYTES(0xC0, 0x00), NONE, NONE },
	{ "PINGRESP 5.0", MQTT_V5, { .type = MQTT_PINGRESP },
	  BYTES(0xD0, 0x00), NONE, NONE },
	{ "DISCONNECT 5.0 normal", MQTT_V5, { .type = MQTT_DISCONNECT },
	  BYTES(0xE0, 0x00), BYTES(0xE0, 0x01, 0x00),
	  BYTES(0xE0, 0x02, 0x00, 0x00) },
	{ "DISCONNECT 5.0 session taken over", MQTT_V5,
	  { .type = MQTT_DISCONNECT, .u.disconnect = { .reason = 0x8E } },
	  BYTES(0xE0, 0x01, 0x8E), BYTES(0xE0, 0x02, 0x8E, 0x00), NONE },
	{ "DISCONNECT 5.0 with reason string", MQTT_V5,
	  { .type = MQTT_DISCONNECT, .u.disconnect = {
		.reason = 0x9C,
		.props = { .present = P(MQTT_PROP_REASON_STRING),
			   .reason_string = BV("bye") } } },
	  BYTES(0xE0, 0x08, 0x9C, 0x06, 0x1F, 0x00, 0x03, 'b', 'y', 'e'),
	  NONE, NONE },
	{ "AUTH 5.0 success", MQTT_V5, { .type = MQTT_AUTH },
	  BYTES(0xF0, 0x00), BYTES(0xF0, 0x02, 0x00, 0x00), NONE },
	{ "AUTH 5.0 continue", MQTT_V5,
	  { .type = MQTT_AUTH, .u.disconnect = {
		.reason = 0x18,
		.props = { .present = P(MQTT_PROP_AUTHENTICATION_METHOD),
			   .authentication_method = BV("SCRAM") } } },
	  BYTES(0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x05,
		'S', 'C', 'R', 'A', 'M'), NONE, NONE },
};

#define VEC_COUNT ((int)(sizeof(vecs) / sizeof(vecs[0])))

/* Packets with many properties: checked by round trip only. */
static const uint8_t corr[] = { 0x00, 0x01, 0xFF };

static const struct vec rts[] = {
	{ "CONNECT 5.0 every property", MQTT_V5,
	  { .type = MQTT_CONNECT, .u.connect = {
		.protocol_level = 5, .will_flag = true, .will_qos = 2,
		.will_retain = true, .username_flag = true,
		.password_flag = true, .keep_alive = 300,
		.props = { .present = P(MQTT_PROP_SESSION_EXPIRY_INTERVAL) |
			   P(MQTT_PROP_RECEIVE_MAXIMUM) |
			   P(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
			   P(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
			   P(MQTT_PROP_REQUEST_RESPONSE_INFORMATION) |
			   P(MQTT_PROP_REQUEST_PROBLEM_INFORMATION) |
			   P(MQTT_PROP_AUTHENTICATION_METHOD) |
			   P(MQTT_PROP_AUTHENTICATION_DATA) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .session_expiry_interval = 0xFFFFFFFF,
			   .receive_maximum = 10,
			   .maximum_packet_size = 1048576,
			   .topic_alias_maximum = 5,
			   .request_response_information = 1,
			   .request_problem_information = 0,
			   .authentication_method = BV("SCRAM-SHA-1"),
			   .authentication_data = { corr, 3 },
			   .users = up_k12, .user_count = 2 },
		.client_id = BV("client-1"),
		.will_props = { .present =
				P(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |
				P(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
				P(MQTT_PROP_CONTENT_TYPE) |
				P(MQTT_PROP_RESPONSE_TOPIC) |
				P(MQTT_PROP_CORRELATION_DATA) |
				P(MQTT_PROP_WILL_DELAY_INTERVAL) |
				P(MQTT_PROP_USER_PROPERTY),
				.payload_format_indicator = 1,
				.message_expiry_interval = 3600,
				.content_type = BV("text/plain"),
				.response_topic = BV("resp/1"),
				.correlation_data = { corr, 3 },
				.will_delay_interval = 30,
				.users = up_kv, .user_count = 1 },
		.will_topic = BV("dead/client-1"),
		.will_payload = BV("gone"),
		.username = BV("alice"), .password = { pw_00ff, 2 } } },
	  NONE, NONE, NONE },
	{ "CONNACK 5.0 every property", MQTT_V5,
	  { .type = MQTT_CONNACK, .u.connack = {
		.session_present = true,
		.props = { .present = P(MQTT_PROP_SESSION_EXPIRY_INTERVAL) |
			   P(MQTT_PROP_RECEIVE_MAXIMUM) |
			   P(MQTT_PROP_MAXIMUM_QOS) |
			   P(MQTT_PROP_RETAIN_AVAILABLE) |
			   P(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
			   P(MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER) |
			   P(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
			   P(MQTT_PROP_REASON_STRING) |
			   P(MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE) |
			   P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE) |
			   P(MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE) |
			   P(MQTT_PROP_SERVER_KEEP_ALIVE) |
			   P(MQTT_PROP_RESPONSE_INFORMATION) |
			   P(MQTT_PROP_SERVER_REFERENCE) |
			   P(MQTT_PROP_AUTHENTICATION_METHOD) |
			   P(MQTT_PROP_AUTHENTICATION_DATA) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .session_expiry_interval = 7200,
			   .receive_maximum = 65535,
			   .maximum_qos = 1,
			   .retain_available = 0,
			   .maximum_packet_size = 268435460,
			   .assigned_client_identifier = BV("auto-42"),
			   .topic_alias_maximum = 100,
			   .reason_string = BV("welcome"),
			   .wildcard_subscription_available = 1,
			   .subscription_identifier_available = 0,
			   .shared_subscription_available = 1,
			   .server_keep_alive = 120,
			   .response_information = BV("resp/"),
			   .server_reference = BV("other:1883"),
			   .authentication_method = BV("SCRAM-SHA-1"),
			   .authentication_data = { corr, 3 },
			   .users = up_k12, .user_count = 2 } } },
	  NONE, NONE, NONE },
	{ "PUBLISH 5.0 every property", MQTT_V5,
	  { .type = MQTT_PUBLISH, .u.publish = {
		.qos = 2, .dup = true, .retain = true, .packet_id = 65535,
		.topic = BV("sensors/t1"), .payload = BV("{\"t\":21.5}"),
		.props = { .present = P(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |
			   P(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
			   P(MQTT_PROP_CONTENT_TYPE) |
			   P(MQTT_PROP_RESPONSE_TOPIC) |
			   P(MQTT_PROP_CORRELATION_DATA) |
			   P(MQTT_PROP_TOPIC_ALIAS) |
			   P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .payload_format_indicator = 1,
			   .message_expiry_interval = 0,
			   .content_type = BV("application/json"),
			   .response_topic = BV("reply/t1"),
			   .correlation_data = { corr, 3 },
			   .topic_alias = 65535,
			   .subscription_id = 1,
			   .subscription_ids = ids_1_128,
			   .subscription_id_count = 2,
			   .users = up_k12, .user_count = 2 } } },
	  NONE, NONE, NONE },
	{ "PUBREC 5.0 reason string and user properties", MQTT_V5,
	  { .type = MQTT_PUBREC, .u.ack = {
		.packet_id = 77, .reason = 0x91,
		.props = { .present = P(MQTT_PROP_REASON_STRING) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .reason_string = BV("in use"),
			   .users = up_k12, .user_count = 2 } } },
	  NONE, NONE, NONE },
	{ "UNSUBSCRIBE 5.0 user property", MQTT_V5,
	  { .type = MQTT_UNSUBSCRIBE, .u.subscribe = {
		.packet_id = 9, .count = 2, .filters = filters_spec,
		.props = { .present = P(MQTT_PROP_USER_PROPERTY),
			   .users = up_kv, .user_count = 1 } } },
	  NONE, NONE, NONE },
	{ "DISCONNECT 5.0 every property", MQTT_V5,
	  { .type = MQTT_DISCONNECT, .u.disconnect = {
		.reason = 0x9D,
		.props = { .present = P(MQTT_PROP_SESSION_EXPIRY_INTERVAL) |
			   P(MQTT_PROP_REASON_STRING) |
			   P(MQTT_PROP_SERVER_REFERENCE) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .session_expiry_interval = 60,
			   .reason_string = BV("moved"),
			   .server_reference = BV("b:1883"),
			   .users = up_kv, .user_count = 1 } } },
	  NONE, NONE, NONE },
	{ "AUTH 5.0 every property", MQTT_V5,
	  { .type = MQTT_AUTH, .u.disconnect = {
		.reason = 0x19,
		.props = { .present = P(MQTT_PROP_AUTHENTICATION_METHOD) |
			   P(MQTT_PROP_AUTHENTICATION_DATA) |
			   P(MQTT_PROP_REASON_STRING) |
			   P(MQTT_PROP_USER_PROPERTY),
			   .authentication_method = BV("SCRAM-SHA-1"),
			   .authentication_data = { corr, 3 },
			   .reason_string = BV("again"),
			   .users = up_k12, .user_count = 2 } } },
	  NONE, NONE, NONE },
	{ "SUBACK 5.0 user properties", MQTT_V5,
	  { .type = MQTT_SUBACK, .u.suback = {
		.packet_id = 3, .reasons = { suback_v311, 3 },
		.props = { .present = P(MQTT_PROP_USER_PROPERTY),
			   .users = up_k12, .user_count = 2 } } },
	  NONE, NONE, NONE },
};

#define RT_COUNT ((int)(sizeof(rts) / sizeof(rts[0])))

/* ---------------------------------------------------------------------- */
/* Comparison of a packet with its decoded copy                           */

static void check_bytes(const char *what, struct mqtt_bytes got,
			struct mqtt_bytes exp)
{
	ck_assert_msg(got.len == exp.len, "%s: length %zu, expected %zu",
		      what, got.len, exp.len);
	if (exp.len)
		ck_assert_msg(memcmp(got.data, exp.data, exp.len) == 0,
			      "%s: bytes differ", what);
}

static void check_props(const char *what, const struct mqtt_props *got,
			const struct mqtt_props *exp)
{
	uint64_t present = exp->present;
	struct mqtt_prop pr;
	size_t off = 0, users = 0, ids = 0;

	if (exp->subscription_ids && exp->subscription_id_count)
		present |= P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	if (exp->users && exp->user_count)
		present |= P(MQTT_PROP_USER_PROPERTY);
	ck_assert_msg(got->present == present,
		      "%s: present 0x%llx, expected 0x%llx", what,
		      (unsigned long long)got->present,
		      (unsigned long long)present);
#define SAME(field, id) \
	if (present & P(id)) \
		ck_assert_msg(got->field == exp->field, "%s: " #field " %lu, " \
			      "expected %lu", what, (unsigned long)got->field, \
			      (unsigned long)exp->field)
#define SAME_B(field, id) \
	if (present & P(id)) \
		check_bytes(#field, got->field, exp->field)
	SAME(payload_format_indicator, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
	SAME(message_expiry_interval, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	SAME_B(content_type, MQTT_PROP_CONTENT_TYPE);
	SAME_B(response_topic, MQTT_PROP_RESPONSE_TOPIC);
	SAME_B(correlation_data, MQTT_PROP_CORRELATION_DATA);
	SAME(session_expiry_interval, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	SAME_B(assigned_client_identifier,
	       MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
	SAME(server_keep_alive, MQTT_PROP_SERVER_KEEP_ALIVE);
	SAME_B(authentication_method, MQTT_PROP_AUTHENTICATION_METHOD);
	SAME_B(authentication_data, MQTT_PROP_AUTHENTICATION_DATA);
	SAME(request_problem_information,
	     MQTT_PROP_REQUEST_PROBLEM_INFORMATION);
	SAME(will_delay_interval, MQTT_PROP_WILL_DELAY_INTERVAL);
	SAME(request_response_information,
	     MQTT_PROP_REQUEST_RESPONSE_INFORMATION);
	SAME_B(response_information, MQTT_PROP_RESPONSE_INFORMATION);
	SAME_B(server_reference, MQTT_PROP_SERVER_REFERENCE);
	SAME_B(reason_string, MQTT_PROP_REASON_STRING);
	SAME(receive_maximum, MQTT_PROP_RECEIVE_MAXIMUM);
	SAME(topic_alias_maximum, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	SAME(topic_alias, MQTT_PROP_TOPIC_ALIAS);
	SAME(maximum_qos, MQTT_PROP_MAXIMUM_QOS);
	SAME(retain_available, MQTT_PROP_RETAIN_AVAILABLE);
	SAME(maximum_packet_size, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	SAME(wildcard_subscription_available,
	     MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE);
	SAME(subscription_identifier_available,
	     MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE);
	SAME(shared_subscription_available,
	     MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE);
#undef SAME
#undef SAME_B
	/* User Properties in order; Subscription Identifiers in order. */
	while (mqtt_prop_next(&got->raw, &off, &pr)) {
		if (pr.id == MQTT_PROP_USER_PROPERTY) {
			ck_assert_msg(exp->users && users < exp->user_count,
				      "%s: extra user property", what);
			check_bytes("user name", pr.str,
				    exp->users[users].name);
			check_bytes("user value", pr.value,
				    exp->users[users].value);
			users++;
		} else if (pr.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			uint32_t id = exp->subscription_ids ?
				exp->subscription_ids[ids] :
				exp->subscription_id;

			ck_assert_msg(pr.num == id, "%s: subscription id %u, "
				      "expected %u", what, pr.num, id);
			ids++;
		}
	}
	ck_assert_msg(users == (exp->users ? exp->user_count : 0),
		      "%s: %zu user properties", what, users);
	ck_assert_uint_eq(got->user_count, users);
	ck_assert_uint_eq(got->subscription_id_count, ids);
	if (exp->subscription_ids)
		ck_assert_uint_eq(ids, exp->subscription_id_count);
	else if (present & P(MQTT_PROP_SUBSCRIPTION_IDENTIFIER))
		ck_assert_uint_eq(ids, 1);
}

static void check_same_packet(const struct mqtt_packet *got,
			      const struct mqtt_packet *exp, uint8_t version)
{
	bool v5 = version == MQTT_V5;

	ck_assert_uint_eq(got->type, exp->type);
	switch (exp->type) {
	case MQTT_CONNECT: {
		const struct mqtt_connect *g = &got->u.connect;
		const struct mqtt_connect *e = &exp->u.connect;

		ck_assert_uint_eq(g->protocol_level, e->protocol_level);
		ck_assert(g->bridge == e->bridge);
		ck_assert(g->clean_start == e->clean_start);
		ck_assert(g->will_flag == e->will_flag);
		ck_assert_uint_eq(g->will_qos, e->will_qos);
		ck_assert(g->will_retain == e->will_retain);
		ck_assert(g->username_flag == e->username_flag);
		ck_assert(g->password_flag == e->password_flag);
		ck_assert_uint_eq(g->keep_alive, e->keep_alive);
		check_bytes("client id", g->client_id, e->client_id);
		if (e->will_flag) {
			check_bytes("will topic", g->will_topic, e->will_topic);
			check_bytes("will payload", g->will_payload,
				    e->will_payload);
		}
		if (e->username_flag)
			check_bytes("user name", g->username, e->username);
		if (e->password_flag)
			check_bytes("password", g->password, e->password);
		if (e->protocol_level == MQTT_V5) {
			check_props("connect", &g->props, &e->props);
			if (e->will_flag)
				check_props("will", &g->will_props,
					    &e->will_props);
		}
		break;
	}
	case MQTT_CONNACK:
		ck_assert(got->u.connack.session_present ==
			  exp->u.connack.session_present);
		ck_assert_uint_eq(got->u.connack.reason, exp->u.connack.reason);
		if (v5)
			check_props("connack", &got->u.connack.props,
				    &exp->u.connack.props);
		break;
	case MQTT_PUBLISH: {
		const struct mqtt_publish *g = &got->u.publish;
		const struct mqtt_publish *e = &exp->u.publish;

		ck_assert_uint_eq(g->qos, e->qos);
		ck_assert(g->dup == e->dup);
		ck_assert(g->retain == e->retain);
		if (e->qos)
			ck_assert_uint_eq(g->packet_id, e->packet_id);
		check_bytes("topic", g->topic, e->topic);
		check_bytes("payload", g->payload, e->payload);
		if (v5)
			check_props("publish", &g->props, &e->props);
		break;
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		ck_assert_uint_eq(got->u.ack.packet_id, exp->u.ack.packet_id);
		ck_assert_uint_eq(got->u.ack.reason,
				  v5 ? exp->u.ack.reason : 0);
		if (v5)
			check_props("ack", &got->u.ack.props,
				    &exp->u.ack.props);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE: {
		const struct mqtt_subscribe *g = &got->u.subscribe;
		const struct mqtt_subscribe *e = &exp->u.subscribe;
		size_t off = 0, i;

		ck_assert_uint_eq(g->packet_id, e->packet_id);
		ck_assert_uint_eq(g->count, e->count);
		for (i = 0; i < e->count; i++) {
			if (exp->type == MQTT_SUBSCRIBE) {
				struct mqtt_sub_entry s;

				ck_assert(mqtt_sub_next(&g->entries, &off, &s));
				check_bytes("filter", s.filter,
					    e->subs[i].filter);
				ck_assert_uint_eq(s.qos, e->subs[i].qos);
				/* 3.1.1 options carry the QoS only. */
				ck_assert(s.no_local ==
					  (v5 && e->subs[i].no_local));
				ck_assert(s.retain_as_published ==
					  (v5 &&
					   e->subs[i].retain_as_published));
				ck_assert_uint_eq(s.retain_handling, v5 ?
						  e->subs[i].retain_handling : 0);
			} else {
				struct mqtt_bytes f;

				ck_assert(mqtt_unsub_next(&g->entries, &off,
							  &f));
				check_bytes("filter", f, e->filters[i]);
			}
		}
		ck_assert_uint_eq(off, g->entries.len);
		if (v5)
			check_props("subscribe", &g->props, &e->props);
		break;
	}
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		ck_assert_uint_eq(got->u.suback.packet_id,
				  exp->u.suback.packet_id);
		if (v5 || exp->type == MQTT_SUBACK)
			check_bytes("reasons", got->u.suback.reasons,
				    exp->u.suback.reasons);
		else
			ck_assert_uint_eq(got->u.suback.reasons.len, 0);
		if (v5)
			check_props("suback", &got->u.suback.props,
				    &exp->u.suback.props);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		ck_assert_uint_eq(got->u.disconnect.reason,
				  v5 ? exp->u.disconnect.reason : 0);
		if (v5)
			check_props("disconnect", &got->u.disconnect.props,
				    &exp->u.disconnect.props);
		break;
	default:
		break;
	}
}

/* encode -> mqtt_frame_peek -> mqtt_decode -> same fields. */
static void round_trip(const struct vec *v)
{
	static uint8_t buf[4096];
	struct mqtt_packet out;
	size_t size = mqtt_encoded_size(&v->pkt, v->version), plen = 0;
	int n;

	ck_assert_msg(size > 0 && size <= sizeof(buf), "%s: size %zu",
		      v->name, size);
	n = mqtt_encode(&v->pkt, v->version, buf, sizeof(buf));
	ck_assert_msg(n > 0 && (size_t)n == size, "%s: encode %d, size %zu",
		      v->name, n, size);
	ck_assert_int_eq(mqtt_frame_peek(buf, size, 0, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, size);
	memset(&out, 0xA5, sizeof(out));
	n = mqtt_decode(buf, size, v->version, &out);
	ck_assert_msg(n == MQTT_OK, "%s: decode %d (%s)", v->name, n,
		      mqtt_err_str(n));
	check_same_packet(&out, &v->pkt, v->version);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return b && alen == blen && memcmp(a, b, alen) == 0;
}

static void dump(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < n && o + 4 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02X ", b[i]);
}

/* The test's own consistency: remaining length == bytes after it. */
static void check_frame_consistent(const char *name, const uint8_t *b,
				   size_t len)
{
	uint32_t rl = 0;
	size_t i = 1;
	unsigned shift = 0;

	if (!b)
		return;
	do {
		ck_assert_msg(i < len && i <= 4, "%s: bad length field", name);
		rl |= (uint32_t)(b[i] & 0x7F) << shift;
		shift += 7;
	} while (b[i++] & 0x80);
	ck_assert_msg(len - i == rl, "test bug in '%s': remaining length %u "
		      "but %zu bytes", name, rl, len - i);
}

START_TEST(encode_vector)
{
	const struct vec *v = &vecs[_i];
	uint8_t buf[512];
	char hex[3 * sizeof(buf) + 1];
	size_t size = mqtt_encoded_size(&v->pkt, v->version);
	int n;

	check_frame_consistent(v->name, v->exp, v->len);
	check_frame_consistent(v->name, v->alt1, v->alt1_len);
	check_frame_consistent(v->name, v->alt2, v->alt2_len);
	memset(buf, 0xEE, sizeof(buf));
	n = mqtt_encode(&v->pkt, v->version, buf, sizeof(buf));
	ck_assert_msg(n > 0, "%s: mqtt_encode() = %d (%s)", v->name, n,
		      mqtt_err_str(n));
	ck_assert_msg((size_t)n == size, "%s: wrote %d, encoded_size %zu",
		      v->name, n, size);
	dump(hex, sizeof(hex), buf, (size_t)n);
	ck_assert_msg(same(buf, (size_t)n, v->exp, v->len) ||
		      same(buf, (size_t)n, v->alt1, v->alt1_len) ||
		      same(buf, (size_t)n, v->alt2, v->alt2_len),
		      "%s: unexpected bytes %s", v->name, hex);
	ck_assert_msg(buf[n] == 0xEE, "%s: wrote past its size", v->name);
}
END_TEST

/* Exactly the size is enough; one byte less is MQTT_E_NO_SPACE. */
START_TEST(encode_no_space)
{
	const struct vec *v = &vecs[_i];
	uint8_t buf[512];
	size_t size = mqtt_encoded_size(&v->pkt, v->version);

	ck_assert_msg(size > 0, "%s: size 0", v->name);
	memset(buf, 0xEE, sizeof(buf));
	ck_assert_int_eq(mqtt_encode(&v->pkt, v->version, buf, size),
			 (int)size);
	ck_assert_msg(mqtt_encode(&v->pkt, v->version, buf, size - 1) ==
		      MQTT_E_NO_SPACE, "%s: cap %zu", v->name, size - 1);
	ck_assert_int_eq(mqtt_encode(&v->pkt, v->version, buf, 0),
			 MQTT_E_NO_SPACE);
}
END_TEST

START_TEST(encode_round_trip_vectors)
{
	round_trip(&vecs[_i]);
}
END_TEST

START_TEST(encode_round_trip_properties)
{
	const struct vec *v = &rts[_i];
	uint8_t buf[1024];
	size_t size = mqtt_encoded_size(&v->pkt, v->version);

	round_trip(v);
	ck_assert_int_eq(mqtt_encode(&v->pkt, v->version, buf, size - 1),
			 MQTT_E_NO_SPACE);
}
END_TEST

/* The same packets, in 3.1.1, without their properties. */
START_TEST(encode_round_trip_v311)
{
	struct vec v = rts[_i];
	uint8_t level = MQTT_V311;

	v.version = MQTT_V311;
	switch (v.pkt.type) {
	case MQTT_CONNECT:
		v.pkt.u.connect.protocol_level = level;
		memset(&v.pkt.u.connect.will_props, 0,
		       sizeof(struct mqtt_props));
		break;
	case MQTT_CONNACK:
		memset(&v.pkt.u.connack.props, 0, sizeof(struct mqtt_props));
		break;
	case MQTT_PUBLISH:
		memset(&v.pkt.u.publish.props, 0, sizeof(struct mqtt_props));
		break;
	case MQTT_PUBREC:
		v.pkt.u.ack.reason = 0;
		memset(&v.pkt.u.ack.props, 0, sizeof(struct mqtt_props));
		break;
	case MQTT_UNSUBSCRIBE:
		memset(&v.pkt.u.subscribe.props, 0, sizeof(struct mqtt_props));
		break;
	case MQTT_SUBACK:
		memset(&v.pkt.u.suback.props, 0, sizeof(struct mqtt_props));
		break;
	case MQTT_DISCONNECT:
		v.pkt.u.disconnect.reason = 0;
		memset(&v.pkt.u.disconnect.props, 0,
		       sizeof(struct mqtt_props));
		break;
	default:
		return; /* AUTH does not exist before MQTT 5 */
	}
	round_trip(&v);
}
END_TEST

/*
 * The writev path: a PUBLISH header encoded once, its packet id patched per
 * subscriber, followed by the shared payload, equals a full encode.
 */
static void check_publish_header(struct mqtt_publish pub, uint8_t version)
{
	static uint8_t hdr[512], full[300000], joined[300000];
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH };
	size_t hsize = mqtt_publish_header_size(&pub, version);
	size_t off = (size_t)-1;
	int n, f;

	ck_assert_msg(hsize > 0 && hsize < sizeof(hdr), "header size %zu",
		      hsize);
	pub.packet_id = pub.qos ? 1 : 0;
	n = mqtt_encode_publish_header(&pub, version, hdr, sizeof(hdr), &off);
	ck_assert_msg(n > 0 && (size_t)n == hsize, "header %d, size %zu", n,
		      hsize);
	ck_assert_int_eq(mqtt_encode_publish_header(&pub, version, hdr,
						    hsize - 1, NULL),
			 MQTT_E_NO_SPACE);
	n = mqtt_encode_publish_header(&pub, version, hdr, hsize, &off);
	ck_assert_int_eq(n, (int)hsize);
	if (pub.qos) {
		ck_assert_msg(off + 2 <= hsize, "packet id offset %zu", off);
		ck_assert_uint_eq(hdr[off], 0x00);
		ck_assert_uint_eq(hdr[off + 1], 0x01);
		mqtt_publish_set_packet_id(hdr, off, 0xBEEF);
		pub.packet_id = 0xBEEF;
	}
	memcpy(joined, hdr, hsize);
	if (pub.payload.len)
		memcpy(joined + hsize, pub.payload.data, pub.payload.len);
	pkt.u.publish = pub;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, version),
			  hsize + pub.payload.len);
	f = mqtt_encode(&pkt, version, full, sizeof(full));
	ck_assert_int_eq(f, (int)(hsize + pub.payload.len));
	ck_assert_msg(memcmp(full, joined, (size_t)f) == 0,
		      "header + payload differs from a full encode");
}

START_TEST(publish_header_matches_full_encode)
{
	static uint8_t big[200000];
	static const uint8_t versions[] = { MQTT_V311, MQTT_V5 };
	struct mqtt_publish pub;
	size_t v;

	memset(big, 'z', sizeof(big));
	for (v = 0; v < sizeof(versions); v++) {
		memset(&pub, 0, sizeof(pub));
		pub.topic = (struct mqtt_bytes)BV("a/b");
		pub.payload = (struct mqtt_bytes)BV("hello");
		check_publish_header(pub, versions[v]);
		pub.qos = 1;
		check_publish_header(pub, versions[v]);
		pub.qos = 2;
		pub.retain = true;
		pub.payload = (struct mqtt_bytes){ big, sizeof(big) };
		check_publish_header(pub, versions[v]);
		pub.payload = (struct mqtt_bytes){ big, 0 };
		check_publish_header(pub, versions[v]);
	}
	/* Properties are left out of a 3.1.1 header. */
	memset(&pub, 0, sizeof(pub));
	pub.qos = 1;
	pub.topic = (struct mqtt_bytes)BV("a/b");
	pub.payload = (struct mqtt_bytes)BV("x");
	mqtt_props_set(&pub.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	pub.props.message_expiry_interval = 60;
	ck_assert_uint_eq(mqtt_publish_header_size(&pub, MQTT_V311), 9);
	check_publish_header(pub, MQTT_V311);
	/* MQTT 5 with properties: aliases, subscription ids, users. */
	memset(&pub, 0, sizeof(pub));
	pub.qos = 1;
	pub.topic = (struct mqtt_bytes)BV("a/b");
	pub.payload = (struct mqtt_bytes){ big, 1000 };
	mqtt_props_set(&pub.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	pub.props.message_expiry_interval = 60;
	pub.props.subscription_ids = ids_1_128;
	pub.props.subscription_id_count = 2;
	pub.props.users = up_k12;
	pub.props.user_count = 2;
	check_publish_header(pub, MQTT_V5);
}
END_TEST

/* The header alone, byte-exact: 5.0 spec example without its payload. */
START_TEST(publish_header_bytes)
{
	static const uint8_t exp[] = { 0x32, 0x09, TOPIC_AB, 0x00, 0x0A,
				       0x00 };
	struct mqtt_publish pub = {
		.qos = 1, .packet_id = 10, .topic = BV("a/b"),
		.payload = BV("x"),
	};
	uint8_t hdr[64];
	size_t off = 0;

	ck_assert_uint_eq(mqtt_publish_header_size(&pub, MQTT_V5),
			  sizeof(exp));
	ck_assert_int_eq(mqtt_encode_publish_header(&pub, MQTT_V5, hdr,
						    sizeof(hdr), &off),
			 (int)sizeof(exp));
	ck_assert_mem_eq(hdr, exp, sizeof(exp));
	ck_assert_uint_eq(off, 7);
}
END_TEST

/* Fields MQTT cannot carry: size 0 and MQTT_E_ENCODE. */
START_TEST(encode_oversize_fields)
{
	static uint8_t huge[70000];
	static uint8_t buf[80000];
	struct mqtt_packet pkt;
	struct mqtt_user_prop up = { BV("k"), { huge, sizeof(huge) } };
	struct mqtt_sub_entry sub = { .filter = { huge, sizeof(huge) } };

	memset(huge, 'a', sizeof(huge));

	/* A 70000-byte topic. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.topic = (struct mqtt_bytes){ huge, sizeof(huge) };
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311), 0);
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V5), 0);
	ck_assert_int_eq(mqtt_encode(&pkt, MQTT_V311, buf, sizeof(buf)),
			 MQTT_E_ENCODE);
	ck_assert_uint_eq(mqtt_publish_header_size(&pkt.u.publish, MQTT_V5),
			  0);
	ck_assert_int_eq(mqtt_encode_publish_header(&pkt.u.publish, MQTT_V5,
						    buf, sizeof(buf), NULL),
			 MQTT_E_ENCODE);

	/* 65535 bytes is the longest string: it fits. */
	pkt.u.publish.topic.len = 65535;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311),
			  1 + 3 + 2 + 65535);
	ck_assert_int_eq(mqtt_encode(&pkt, MQTT_V311, buf, sizeof(buf)),
			 1 + 3 + 2 + 65535);
	pkt.u.publish.topic.len = 65536;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311), 0);

	/* A user property value of 70000 bytes. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.topic = (struct mqtt_bytes)BV("t");
	pkt.u.publish.props.users = &up;
	pkt.u.publish.props.user_count = 1;
	mqtt_props_set(&pkt.u.publish.props, MQTT_PROP_USER_PROPERTY);
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V5), 0);
	ck_assert_int_eq(mqtt_encode(&pkt, MQTT_V5, buf, sizeof(buf)),
			 MQTT_E_ENCODE);

	/* A Subscription Identifier above 268,435,455. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.topic = (struct mqtt_bytes)BV("t");
	mqtt_props_set(&pkt.u.publish.props,
		       MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	pkt.u.publish.props.subscription_id = MQTT_VARINT_MAX + 1;
	pkt.u.publish.props.subscription_id_count = 1;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V5), 0);

	/* A client id of 70000 bytes. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	pkt.u.connect.protocol_level = 4;
	pkt.u.connect.client_id = (struct mqtt_bytes){ huge, sizeof(huge) };
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311), 0);
	ck_assert_int_eq(mqtt_encode(&pkt, MQTT_V311, buf, sizeof(buf)),
			 MQTT_E_ENCODE);

	/* A topic filter of 70000 bytes. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBSCRIBE;
	pkt.u.subscribe.packet_id = 1;
	pkt.u.subscribe.count = 1;
	pkt.u.subscribe.subs = &sub;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311), 0);
	ck_assert_int_eq(mqtt_encode(&pkt, MQTT_V311, buf, sizeof(buf)),
			 MQTT_E_ENCODE);
}
END_TEST

/* Remaining Length at the varint limit; one byte over cannot be sent. */
START_TEST(encode_remaining_length_limit)
{
	static const uint8_t one = 0;
	struct mqtt_packet pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.topic = (struct mqtt_bytes)BV("t");
	/* Sizes only: the payload bytes are never read. */
	pkt.u.publish.payload.data = &one;
	pkt.u.publish.payload.len = MQTT_VARINT_MAX - 3;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311),
			  (size_t)1 + 4 + MQTT_VARINT_MAX);
	ck_assert_uint_eq(mqtt_publish_header_size(&pkt.u.publish, MQTT_V311),
			  1 + 4 + 3);
	pkt.u.publish.payload.len = MQTT_VARINT_MAX - 2;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_V311), 0);
	ck_assert_uint_eq(mqtt_publish_header_size(&pkt.u.publish, MQTT_V311),
			  0);
}
END_TEST

static Suite *encode_suite(void)
{
	Suite *s = suite_create("protocol/encode");
	TCase *tc = tcase_create("vectors");

	tcase_add_loop_test(tc, encode_vector, 0, VEC_COUNT);
	tcase_add_loop_test(tc, encode_no_space, 0, VEC_COUNT);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trip");
	tcase_add_loop_test(tc, encode_round_trip_vectors, 0, VEC_COUNT);
	tcase_add_loop_test(tc, encode_round_trip_properties, 0, RT_COUNT);
	tcase_add_loop_test(tc, encode_round_trip_v311, 0, RT_COUNT);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish header");
	tcase_add_test(tc, publish_header_matches_full_encode);
	tcase_add_test(tc, publish_header_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, encode_oversize_fields);
	tcase_add_test(tc, encode_remaining_length_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(encode_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
