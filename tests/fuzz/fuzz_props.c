/*
 * libFuzzer target for the MQTT 5 property codec (protocol/props.c):
 * mqtt_props_decode(), the walker mqtt_prop_next(), mqtt_props_size() and,
 * through a packet carrying the block, the property encoder.
 *
 * Input: byte 0 picks the packet type the block belongs to (modulo 16;
 * 0 is MQTT_PROPS_WILL, the will properties of CONNECT), the rest is a
 * property block without its length field.
 *
 * A block that decodes must walk to exactly its end with every property
 * known, allowed, in range and matching the decoded fields; it must
 * re-encode in exactly raw.len bytes and decode again to the same fields,
 * whether the encoder copies its repeated properties from raw or from the
 * arrays a broker fills; and it must decode for any other packet type
 * exactly when the table of allowed properties says so.  Any broken
 * invariant aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"
#include "protocol/topic.h"
#include "tests/fuzz/fuzz_check.h"

/* The line says which invariant broke, before libFuzzer's stack trace. */

static bool in_block(const struct mqtt_bytes *b, const uint8_t *blk,
		     size_t len)
{
	uintptr_t lo = (uintptr_t)blk, hi = lo + len, d = (uintptr_t)b->data;

	return b->data && d >= lo && d <= hi && b->len <= hi - d;
}

static void check_err(int rc)
{
	const char *s = mqtt_err_str(rc);

	CHECK(rc < 0 && rc != MQTT_E_INCOMPLETE);
	CHECK(s && s[0] && strcmp(s, "unknown error") != 0);
	CHECK(mqtt_err_reason(rc) >= 0x80);
}

/* Flags: 0 or 1 only (MQTT 5.0 section 3.1.2.11, 3.2.2.3). */
static bool is_boolean(uint8_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
	case MQTT_PROP_MAXIMUM_QOS:
	case MQTT_PROP_RETAIN_AVAILABLE:
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE:
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE:
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE:
		return true;
	default:
		return false;
	}
}

/*
 * Bytes one property takes when encoded as the spec requires: its id byte,
 * then a fixed-width number, a minimal varint [MQTT-1.5.5-1], or two-byte
 * lengths and the bytes.
 */
static size_t prop_size(const struct mqtt_prop *v)
{
	switch (mqtt_prop_type_of(v->id)) {
	case MQTT_PT_BYTE: return 1 + 1;
	case MQTT_PT_U16: return 1 + 2;
	case MQTT_PT_U32: return 1 + 4;
	case MQTT_PT_VARINT: return 1 + mqtt_varint_size(v->num);
	case MQTT_PT_STRING:
	case MQTT_PT_BINARY: return 1 + 2 + v->str.len;
	case MQTT_PT_STRING_PAIR: return 1 + 2 + v->str.len + 2 + v->value.len;
	default: CHECK(mqtt_prop_type_of(v->id) != 0); return 0;
	}
}

/* The ids present, as decoding for packet_type sees them. */
struct walk {
	uint64_t ids; /* bit per id seen */
	bool sub_id_repeats; /* more than one Subscription Identifier */
};

/*
 * Walk a decoded block: to exactly its end, each property known, allowed in
 * packet_type, in range, valid UTF-8 where a string, equal to its decoded
 * field, repeated only where the spec allows.  Returns what was seen.
 */
static struct walk check_walk(const struct mqtt_props *p, int packet_type)
{
	struct walk w = { 0, false };
	struct mqtt_prop v;
	struct mqtt_bytes str;
	uint32_t users = 0, sub_ids = 0, num;
	size_t off = 0, prev, canonical = 0;

	for (;;) {
		prev = off;
		if (!mqtt_prop_next(&p->raw, &off, &v))
			break;
		CHECK(off > prev && off <= p->raw.len);
		CHECK(mqtt_prop_type_of(v.id) != 0);
		CHECK(mqtt_prop_is_allowed(v.id, packet_type));
		CHECK(mqtt_props_has(p, v.id));
		CHECK(off - prev == prop_size(&v));
		canonical += prop_size(&v);
		if (v.str.len || v.str.data)
			CHECK(in_block(&v.str, p->raw.data, p->raw.len));
		if (v.value.len || v.value.data)
			CHECK(in_block(&v.value, p->raw.data, p->raw.len));
		switch (mqtt_prop_type_of(v.id)) {
		case MQTT_PT_STRING_PAIR:
			CHECK(mqtt_utf8_is_valid(v.value.data, v.value.len));
			/* fall through */
		case MQTT_PT_STRING:
			CHECK(mqtt_utf8_is_valid(v.str.data, v.str.len));
			break;
		case MQTT_PT_BYTE:
			CHECK(v.num <= UINT8_MAX);
			break;
		case MQTT_PT_U16:
			CHECK(v.num <= UINT16_MAX);
			break;
		default:
			break;
		}
		if (is_boolean(v.id))
			CHECK(v.num <= 1);
		if (v.id == MQTT_PROP_RECEIVE_MAXIMUM ||
		    v.id == MQTT_PROP_MAXIMUM_PACKET_SIZE ||
		    v.id == MQTT_PROP_TOPIC_ALIAS)
			CHECK(v.num != 0);
		if (v.id == MQTT_PROP_RESPONSE_TOPIC)
			CHECK(topic_name_is_valid((const char *)v.str.data,
						  v.str.len));
		if (!is_repeated(v.id))
			CHECK(!((w.ids >> v.id) & 1u));
		w.ids |= (uint64_t)1 << v.id;

		if (v.id == MQTT_PROP_USER_PROPERTY) {
			users++;
		} else if (v.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			CHECK(v.num != 0 && v.num <= MQTT_SUBSCRIPTION_ID_MAX);
			if (sub_ids++ == 0)
				CHECK(v.num == p->subscription_id);
			else
				w.sub_id_repeats = true;
		} else {
			CHECK(prop_field(p, v.id, &num, &str));
			CHECK(num == v.num && bytes_same(&str, &v.str));
		}
	}
	CHECK(off == p->raw.len);
	CHECK(w.ids == p->present);
	CHECK(users == p->user_count && sub_ids == p->subscription_id_count);
	CHECK(!w.sub_id_repeats || packet_type == MQTT_PUBLISH);
	CHECK(canonical == p->raw.len);
	/*
	 * The encoder writes the once-only properties from the fields in id
	 * order, then the repeated ones copied from raw in raw order: the
	 * same properties, reordered.  A property's size depends only on its
	 * value (and varints are minimal), so the sizes must agree.
	 */
	CHECK(mqtt_props_size(p) == p->raw.len);
	return w;
}

static const struct mqtt_bytes name_a = { (const uint8_t *)"a", 1 };
static const uint8_t reason_ok[] = { MQTT_RC_SUCCESS };

/*
 * The smallest MQTT 5 packet of packet_type that carries block p, so the
 * block can go through the public encoder and decoder.  False for PINGREQ
 * and PINGRESP, which carry none.
 */
static bool wrap(int packet_type, const struct mqtt_props *p,
		 struct mqtt_packet *pkt, struct mqtt_sub_entry *sub)
{
	memset(pkt, 0, sizeof(*pkt));
	memset(sub, 0, sizeof(*sub));
	sub->filter = name_a;
	switch (packet_type) {
	case MQTT_PROPS_WILL:
	case MQTT_CONNECT:
		pkt->type = MQTT_CONNECT;
		pkt->u.connect.protocol_level = MQTT_V5;
		pkt->u.connect.client_id = name_a;
		if (packet_type == MQTT_CONNECT) {
			pkt->u.connect.props = *p;
			break;
		}
		pkt->u.connect.will_flag = true;
		pkt->u.connect.will_topic = name_a;
		pkt->u.connect.will_props = *p;
		break;
	case MQTT_CONNACK:
		pkt->u.connack.props = *p;
		break;
	case MQTT_PUBLISH:
		pkt->u.publish.qos = 1;
		pkt->u.publish.packet_id = 1;
		pkt->u.publish.topic = name_a;
		pkt->u.publish.props = *p;
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		pkt->u.ack.packet_id = 1;
		pkt->u.ack.props = *p;
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		pkt->u.subscribe.packet_id = 1;
		pkt->u.subscribe.count = 1;
		pkt->u.subscribe.subs = sub;
		pkt->u.subscribe.filters = &sub->filter;
		pkt->u.subscribe.props = *p;
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		pkt->u.suback.packet_id = 1;
		pkt->u.suback.reasons.data = reason_ok;
		pkt->u.suback.reasons.len = sizeof(reason_ok);
		pkt->u.suback.props = *p;
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		pkt->u.disconnect.props = *p;
		break;
	default: /* PINGREQ, PINGRESP */
		return false;
	}
	if (packet_type != MQTT_PROPS_WILL)
		pkt->type = (uint8_t)packet_type;
	return true;
}

/* The block a decoded wrapper packet carries. */
static const struct mqtt_props *unwrap(int packet_type,
				       const struct mqtt_packet *pkt)
{
	switch (packet_type) {
	case MQTT_PROPS_WILL: return &pkt->u.connect.will_props;
	case MQTT_CONNECT: return &pkt->u.connect.props;
	case MQTT_CONNACK: return &pkt->u.connack.props;
	case MQTT_PUBLISH: return &pkt->u.publish.props;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE: return &pkt->u.subscribe.props;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK: return &pkt->u.suback.props;
	case MQTT_DISCONNECT:
	case MQTT_AUTH: return &pkt->u.disconnect.props;
	default: return &pkt->u.ack.props;
	}
}

/* Encodes pkt as MQTT 5 into a new buffer of exactly its size. */
static uint8_t *encode_exact(const struct mqtt_packet *pkt, size_t *len)
{
	size_t size = mqtt_encoded_size(pkt, MQTT_V5);
	uint8_t *buf;
	int rc;

	CHECK(size >= 2);
	buf = malloc(size);
	CHECK(buf);
	rc = mqtt_encode(pkt, MQTT_V5, buf, size);
	CHECK(rc > 0 && (size_t)rc == size);
	*len = size;
	return buf;
}

/*
 * Encode the block inside a packet, decode that packet: the block comes
 * back with the same fields, in mqtt_props_size() bytes, and encoding it
 * again gives the same bytes.  Returns the packet (NULL for PINGREQ and
 * PINGRESP) for check_forms() to compare with; the caller frees it.
 */
static uint8_t *check_round_trip(const struct mqtt_props *p, int packet_type,
				 size_t *len)
{
	struct mqtt_packet pkt, back, again;
	struct mqtt_sub_entry sub, sub2;
	const struct mqtt_props *q;
	uint8_t *buf, *buf2;
	size_t len2;

	if (!wrap(packet_type, p, &pkt, &sub))
		return NULL;
	buf = encode_exact(&pkt, len);
	CHECK(mqtt_decode(buf, *len, MQTT_V5, &back) == MQTT_OK);
	q = unwrap(packet_type, &back);
	CHECK(q->raw.len == p->raw.len);
	check_props_same(p, q);

	CHECK(wrap(packet_type, q, &again, &sub2));
	buf2 = encode_exact(&again, &len2);
	CHECK(len2 == *len && memcmp(buf, buf2, *len) == 0);
	free(buf2);
	return buf;
}

/* Bounds of the arrays check_forms() rebuilds; a 4 KiB input has fewer. */
#define MAX_REPEATS 1024

/* Encodes form inside a packet: the same bytes as the decoded form gave. */
static void check_form(const struct mqtt_props *form, size_t raw_len,
		       int packet_type, const uint8_t *want, size_t want_len)
{
	struct mqtt_packet pkt;
	struct mqtt_sub_entry sub;
	uint8_t *buf;
	size_t len;

	CHECK(mqtt_props_size(form) == raw_len);
	CHECK(wrap(packet_type, form, &pkt, &sub));
	buf = encode_exact(&pkt, &len);
	CHECK(len == want_len && memcmp(buf, want, len) == 0);
	free(buf);
}

/*
 * The encoder takes repeated properties from three places: the raw block
 * of a decoded struct, the users / subscription_ids arrays a broker fills,
 * or (no raw, no array) the single subscription_id field.  All three must
 * write the same canonical bytes for the same properties.
 */
static void check_forms(const struct mqtt_props *p, int packet_type,
			const uint8_t *want, size_t want_len)
{
	static struct mqtt_user_prop users[MAX_REPEATS];
	static uint32_t sub_ids[MAX_REPEATS];
	struct mqtt_props form = *p;
	struct mqtt_prop v;
	size_t off = 0, nu = 0, ns = 0;

	if (p->user_count > MAX_REPEATS || p->subscription_id_count > MAX_REPEATS)
		return;
	while (mqtt_prop_next(&p->raw, &off, &v)) {
		if (v.id == MQTT_PROP_USER_PROPERTY) {
			users[nu].name = v.str;
			users[nu++].value = v.value;
		} else if (v.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			sub_ids[ns++] = v.num;
		}
	}
	/* Arrays, and a raw block that must no longer be read. */
	form.raw.data = NULL;
	form.raw.len = 0;
	form.users = nu ? users : NULL;
	form.subscription_ids = ns ? sub_ids : NULL;
	if (nu || ns)
		check_form(&form, p->raw.len, packet_type, want, want_len);
	/* Fields only: possible without user properties and repeats. */
	if (nu == 0 && ns <= 1) {
		form.users = NULL;
		form.subscription_ids = NULL;
		check_form(&form, p->raw.len, packet_type, want, want_len);
	}
}

/* Whether a block with these ids decodes for packet_type. */
static bool allowed_in(const struct walk *w, int packet_type)
{
	for (uint8_t id = 1; id < 64; id++)
		if (((w->ids >> id) & 1u) &&
		    !mqtt_prop_is_allowed(id, packet_type))
			return false;
	return !w->sub_id_repeats || packet_type == MQTT_PUBLISH;
}

/*
 * Packet type only decides which ids may appear and whether Subscription
 * Identifier may repeat: the same block decodes for another type exactly
 * when those rules allow, and then to the same fields.
 */
static void check_other_types(const uint8_t *blk, size_t len,
			      const struct mqtt_props *p, const struct walk *w)
{
	struct mqtt_props o;

	for (int t = 0; t <= MQTT_AUTH; t++) {
		int rc = mqtt_props_decode(blk, len, t, &o);

		if (allowed_in(w, t)) {
			CHECK(rc == MQTT_OK);
			check_props_same(p, &o);
		} else {
			CHECK(rc == MQTT_E_PROP_NOT_ALLOWED ||
			      rc == MQTT_E_PROP_DUPLICATE);
		}
	}
	/* Outside 0..15 nothing is allowed. */
	for (uint8_t id = 0; id < 64; id++)
		CHECK(!mqtt_prop_is_allowed(id, -1) &&
		      !mqtt_prop_is_allowed(id, MQTT_AUTH + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_props p;
	struct walk w;
	uint8_t *buf;
	size_t len;
	int type, rc;

	if (size < 1)
		return 0;
	type = data[0] % 16;
	rc = mqtt_props_decode(data + 1, size - 1, type, &p);
	if (rc < 0) {
		check_err(rc);
		CHECK(rc == MQTT_E_SHORT || rc == MQTT_E_VARINT ||
		      rc == MQTT_E_UTF8 || rc == MQTT_E_PROP_ID ||
		      rc == MQTT_E_PROP_NOT_ALLOWED ||
		      rc == MQTT_E_PROP_DUPLICATE ||
		      rc == MQTT_E_PROP_VALUE || rc == MQTT_E_TOPIC_ALIAS);
		return 0;
	}
	CHECK(rc == MQTT_OK);
	CHECK(p.raw.data == data + 1 && p.raw.len == size - 1);
	CHECK(!p.users && !p.subscription_ids);
	w = check_walk(&p, type);
	buf = check_round_trip(&p, type, &len);
	if (buf) {
		check_forms(&p, type, buf, len);
		free(buf);
	}
	check_other_types(data + 1, size - 1, &p, &w);
	return 0;
}
