/*
 * libFuzzer target for the packet codec: framing (protocol/frame.c), the
 * decoder (decode.c) and, through round trips, the encoder (encode.c) for
 * MQTT 3.1, 3.1.1 and 5.0.
 *
 * Input: byte 0 picks the connection's protocol level (3, 4 or 5, modulo
 * 3), byte 1 the size limit given to mqtt_frame_peek() (its square, so 0
 * means no limit and small limits are as likely as large ones), and the
 * rest is the byte stream a peer sends.  The stream is cut into frames as
 * the connection layer does and each frame is decoded from its own heap
 * buffer of exactly its size, so ASan sees a read past the frame even when
 * more stream follows.
 *
 * For every packet that decodes, the invariants a broker relies on are
 * checked: every view lies inside its frame, the list and property walkers
 * cover exactly what the decoder accepted, and the packet re-encodes into
 * bytes that decode to the same fields and re-encode to the same bytes.
 * Any broken invariant aborts.
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

/*
 * SUBSCRIBE/UNSUBSCRIBE decode into an encoded list, but the encoder reads
 * arrays; round trips rebuild the arrays up to this many entries and skip
 * longer lists (a 4 KiB input holds at most ~1300 entries).
 */
#define MAX_ENTRIES 512

/* A region of memory a view must lie in: one frame, or one raw block. */
struct span {
	uintptr_t lo;
	uintptr_t hi; /* one past the end */
};

static struct span span_of(const uint8_t *p, size_t len)
{
	struct span s = { (uintptr_t)p, (uintptr_t)p + len };

	return s;
}

/*
 * An empty view may point anywhere in the span (the decoder leaves it
 * where the field was) or be NULL (a field that was never read).
 */
static void check_view(const struct mqtt_bytes *b, struct span s)
{
	uintptr_t d = (uintptr_t)b->data;

	if (b->len == 0) {
		CHECK(!b->data || (d >= s.lo && d <= s.hi));
		return;
	}
	CHECK(b->data && d >= s.lo && d <= s.hi && b->len <= s.hi - d);
}

/* Every error the codec returns has a name and the reason code it maps to. */
static void check_err(int rc)
{
	const char *s = mqtt_err_str(rc);
	uint8_t reason = mqtt_err_reason(rc);

	CHECK(rc < 0);
	CHECK(s && s[0] && strcmp(s, "unknown error") != 0);
	if (rc == MQTT_E_INCOMPLETE)
		CHECK(reason == MQTT_RC_SUCCESS);
	else
		CHECK(reason >= 0x80);
	CHECK(mqtt_rc_str(reason) != NULL);
}

/* A reason code the decoder accepted in MQTT 5 has a name. */
static void check_reason_known(uint8_t rc)
{
	CHECK(strcmp(mqtt_rc_str(rc), "Unknown reason code") != 0);
}

/* ---------------------------------------------------------------------- */
/* Properties                                                             */

/*
 * A decoded property block: raw lies in the frame, mqtt_prop_next() walks
 * it to exactly its end, and the walk agrees with the present bits, the
 * counts and every decoded field.  packet_type says which ids may appear.
 */
static void check_props(const struct mqtt_props *p, int packet_type,
			struct span frame)
{
	struct span raw = span_of(p->raw.data, p->raw.len);
	struct mqtt_prop v;
	uint64_t seen = 0;
	uint32_t users = 0, sub_ids = 0, num;
	struct mqtt_bytes str;
	size_t off = 0, prev;

	check_view(&p->raw, frame);
	CHECK(!p->users && !p->subscription_ids);
	for (;;) {
		prev = off;
		if (!mqtt_prop_next(&p->raw, &off, &v))
			break;
		CHECK(off > prev && off <= p->raw.len);
		CHECK(mqtt_props_has(p, v.id));
		CHECK(mqtt_prop_is_allowed(v.id, packet_type));
		check_view(&v.str, raw);
		check_view(&v.value, raw);
		seen |= (uint64_t)1 << v.id;
		if (v.id == MQTT_PROP_USER_PROPERTY) {
			users++;
		} else if (v.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			CHECK(v.num != 0 && v.num <= MQTT_SUBSCRIPTION_ID_MAX);
			if (sub_ids++ == 0)
				CHECK(v.num == p->subscription_id);
		} else {
			CHECK(prop_field(p, v.id, &num, &str));
			CHECK(num == v.num && bytes_same(&str, &v.str));
		}
	}
	CHECK(off == p->raw.len);
	CHECK(seen == p->present);
	CHECK(users == p->user_count && sub_ids == p->subscription_id_count);
}

static bool props_empty(const struct mqtt_props *p)
{
	return p->present == 0 && p->raw.len == 0;
}

/* ---------------------------------------------------------------------- */
/* Packets                                                                */

/*
 * Walks a SUBSCRIBE or UNSUBSCRIBE list: exactly count entries covering
 * exactly the list, each filter inside it.  Stores up to MAX_ENTRIES of
 * them when the arrays are given.  Returns the number walked.
 */
static uint32_t walk_entries(const struct mqtt_subscribe *s, uint8_t type,
			     uint8_t version, struct mqtt_sub_entry *subs,
			     struct mqtt_bytes *filters)
{
	struct span list = span_of(s->entries.data, s->entries.len);
	struct mqtt_sub_entry e;
	size_t off = 0, prev;
	uint32_t n = 0;
	bool more;

	for (;;) {
		prev = off;
		memset(&e, 0, sizeof(e));
		if (type == MQTT_SUBSCRIBE)
			more = mqtt_sub_next(&s->entries, &off, &e);
		else
			more = mqtt_unsub_next(&s->entries, &off, &e.filter);
		if (!more)
			break;
		CHECK(off > prev && off <= s->entries.len);
		check_view(&e.filter, list);
		CHECK(mqtt_utf8_is_valid(e.filter.data, e.filter.len));
		CHECK(e.qos <= 2 && e.retain_handling <= 2);
		if (version < MQTT_V5)
			CHECK(!e.no_local && !e.retain_as_published &&
			      e.retain_handling == 0);
		if (n < MAX_ENTRIES && subs)
			subs[n] = e;
		if (n < MAX_ENTRIES && filters)
			filters[n] = e.filter;
		n++;
	}
	CHECK(off == s->entries.len);
	CHECK(n == s->count);
	return n;
}

static void check_connect(const struct mqtt_connect *c, struct span frame)
{
	CHECK(c->protocol_level == MQTT_V31 || c->protocol_level == MQTT_V311 ||
	      c->protocol_level == MQTT_V5);
	CHECK(c->will_qos <= 2);
	check_view(&c->client_id, frame);
	check_view(&c->will_topic, frame);
	check_view(&c->will_payload, frame);
	check_view(&c->username, frame);
	check_view(&c->password, frame);
	CHECK(mqtt_utf8_is_valid(c->client_id.data, c->client_id.len));
	if (c->protocol_level == MQTT_V5) {
		check_props(&c->props, MQTT_CONNECT, frame);
		check_props(&c->will_props, MQTT_PROPS_WILL, frame);
	} else {
		CHECK(props_empty(&c->props) && props_empty(&c->will_props));
		/* 3.1.1 [MQTT-3.1.2-22] */
		CHECK(!c->password_flag || c->username_flag);
	}
	if (c->will_flag) {
		CHECK(topic_name_is_valid((const char *)c->will_topic.data,
					  c->will_topic.len));
		CHECK(mqtt_utf8_is_valid(c->will_topic.data,
					 c->will_topic.len));
	} else {
		CHECK(c->will_qos == 0 && !c->will_retain);
		CHECK(!c->will_topic.len && !c->will_payload.len);
		CHECK(props_empty(&c->will_props));
	}
	if (c->username_flag)
		CHECK(mqtt_utf8_is_valid(c->username.data, c->username.len));
	else
		CHECK(c->username.len == 0);
	if (!c->password_flag)
		CHECK(c->password.len == 0);
}

static void check_publish(const struct mqtt_publish *p, uint8_t version,
			  struct span frame)
{
	CHECK(p->qos <= 2);
	CHECK(p->qos || (!p->dup && p->packet_id == 0));
	CHECK(!p->qos || p->packet_id != 0);
	check_view(&p->topic, frame);
	check_view(&p->payload, frame);
	/* The payload is the rest of the packet. */
	CHECK((uintptr_t)p->payload.data + p->payload.len == frame.hi);
	if (version == MQTT_V5)
		check_props(&p->props, MQTT_PUBLISH, frame);
	else
		CHECK(props_empty(&p->props));
	if (p->topic.len == 0)
		CHECK(mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS));
	else
		CHECK(topic_name_is_valid((const char *)p->topic.data,
					  p->topic.len) &&
		      mqtt_utf8_is_valid(p->topic.data, p->topic.len));
}

/* Everything a decoded packet promises; frame is the buffer it came from. */
static void check_packet(const struct mqtt_packet *pkt, uint8_t version,
			 struct span frame)
{
	const struct mqtt_subscribe *s = &pkt->u.subscribe;
	const struct mqtt_suback *sa = &pkt->u.suback;

	CHECK(pkt->type >= MQTT_CONNECT && pkt->type <= MQTT_AUTH);
	switch (pkt->type) {
	case MQTT_CONNECT:
		check_connect(&pkt->u.connect, frame);
		break;
	case MQTT_CONNACK:
		if (version == MQTT_V5) {
			check_reason_known(pkt->u.connack.reason);
			check_props(&pkt->u.connack.props, MQTT_CONNACK, frame);
		} else {
			CHECK(pkt->u.connack.reason <=
			      MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED);
			CHECK(props_empty(&pkt->u.connack.props));
		}
		break;
	case MQTT_PUBLISH:
		check_publish(&pkt->u.publish, version, frame);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		CHECK(pkt->u.ack.packet_id != 0);
		if (version == MQTT_V5) {
			check_reason_known(pkt->u.ack.reason);
			check_props(&pkt->u.ack.props, pkt->type, frame);
		} else {
			CHECK(pkt->u.ack.reason == 0);
			CHECK(props_empty(&pkt->u.ack.props));
		}
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		CHECK(s->packet_id != 0 && s->count >= 1);
		CHECK(!s->subs && !s->filters);
		check_view(&s->entries, frame);
		CHECK((uintptr_t)s->entries.data + s->entries.len == frame.hi);
		if (version == MQTT_V5)
			check_props(&s->props, pkt->type, frame);
		else
			CHECK(props_empty(&s->props));
		walk_entries(s, pkt->type, version, NULL, NULL);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		CHECK(sa->packet_id != 0);
		check_view(&sa->reasons, frame);
		if (version == MQTT_V5)
			check_props(&sa->props, pkt->type, frame);
		else
			CHECK(props_empty(&sa->props));
		if (version < MQTT_V5 && pkt->type == MQTT_UNSUBACK)
			CHECK(sa->reasons.len == 0);
		else
			CHECK(sa->reasons.len >= 1);
		for (size_t i = 0; i < sa->reasons.len; i++)
			if (version == MQTT_V5)
				check_reason_known(sa->reasons.data[i]);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		CHECK(frame.hi - frame.lo == 2);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		CHECK(version == MQTT_V5 || pkt->type == MQTT_DISCONNECT);
		if (version == MQTT_V5) {
			check_reason_known(pkt->u.disconnect.reason);
			check_props(&pkt->u.disconnect.props, pkt->type, frame);
		} else {
			CHECK(pkt->u.disconnect.reason == 0);
			CHECK(props_empty(&pkt->u.disconnect.props));
		}
		break;
	default:
		break;
	}
}

/* Decoded a from the input, b from its re-encoding: same meaning. */
static void check_same(const struct mqtt_packet *a,
		       const struct mqtt_packet *b)
{
	CHECK(a->type == b->type);
	switch (a->type) {
	case MQTT_CONNECT: {
		const struct mqtt_connect *x = &a->u.connect, *y = &b->u.connect;

		CHECK(x->protocol_level == y->protocol_level);
		CHECK(x->bridge == y->bridge);
		CHECK(x->clean_start == y->clean_start);
		CHECK(x->will_flag == y->will_flag);
		CHECK(x->will_qos == y->will_qos);
		CHECK(x->will_retain == y->will_retain);
		CHECK(x->username_flag == y->username_flag);
		CHECK(x->password_flag == y->password_flag);
		CHECK(x->keep_alive == y->keep_alive);
		check_props_same(&x->props, &y->props);
		CHECK(bytes_same(&x->client_id, &y->client_id));
		check_props_same(&x->will_props, &y->will_props);
		CHECK(bytes_same(&x->will_topic, &y->will_topic));
		CHECK(bytes_same(&x->will_payload, &y->will_payload));
		CHECK(bytes_same(&x->username, &y->username));
		CHECK(bytes_same(&x->password, &y->password));
		break;
	}
	case MQTT_CONNACK:
		CHECK(a->u.connack.session_present == b->u.connack.session_present);
		CHECK(a->u.connack.reason == b->u.connack.reason);
		check_props_same(&a->u.connack.props, &b->u.connack.props);
		break;
	case MQTT_PUBLISH: {
		const struct mqtt_publish *x = &a->u.publish, *y = &b->u.publish;

		CHECK(x->qos == y->qos && x->dup == y->dup &&
		      x->retain == y->retain && x->packet_id == y->packet_id);
		CHECK(bytes_same(&x->topic, &y->topic));
		check_props_same(&x->props, &y->props);
		CHECK(bytes_same(&x->payload, &y->payload));
		break;
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		CHECK(a->u.ack.packet_id == b->u.ack.packet_id);
		CHECK(a->u.ack.reason == b->u.ack.reason);
		check_props_same(&a->u.ack.props, &b->u.ack.props);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE: {
		const struct mqtt_subscribe *x = &a->u.subscribe;
		const struct mqtt_subscribe *y = &b->u.subscribe;
		struct mqtt_sub_entry ex, ey;
		size_t ox = 0, oy = 0;

		CHECK(x->packet_id == y->packet_id && x->count == y->count);
		check_props_same(&x->props, &y->props);
		for (uint32_t i = 0; i < x->count; i++) {
			memset(&ex, 0, sizeof(ex));
			memset(&ey, 0, sizeof(ey));
			if (a->type == MQTT_SUBSCRIBE) {
				CHECK(mqtt_sub_next(&x->entries, &ox, &ex));
				CHECK(mqtt_sub_next(&y->entries, &oy, &ey));
			} else {
				CHECK(mqtt_unsub_next(&x->entries, &ox, &ex.filter));
				CHECK(mqtt_unsub_next(&y->entries, &oy, &ey.filter));
			}
			CHECK(bytes_same(&ex.filter, &ey.filter));
			CHECK(ex.qos == ey.qos && ex.no_local == ey.no_local &&
			      ex.retain_as_published == ey.retain_as_published &&
			      ex.retain_handling == ey.retain_handling);
		}
		break;
	}
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		CHECK(a->u.suback.packet_id == b->u.suback.packet_id);
		check_props_same(&a->u.suback.props, &b->u.suback.props);
		CHECK(bytes_same(&a->u.suback.reasons, &b->u.suback.reasons));
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		break;
	default: /* DISCONNECT, AUTH */
		CHECK(a->u.disconnect.reason == b->u.disconnect.reason);
		check_props_same(&a->u.disconnect.props, &b->u.disconnect.props);
		break;
	}
}

/* Arrays a decoded SUBSCRIBE/UNSUBSCRIBE needs to be encoded as-is. */
struct entry_arrays {
	struct mqtt_sub_entry subs[MAX_ENTRIES];
	struct mqtt_bytes filters[MAX_ENTRIES];
};

/*
 * Makes a decoded packet encodable: point subs/filters at arrays rebuilt
 * from the encoded list.  False when the list is longer than the arrays.
 */
static bool make_encodable(struct mqtt_packet *pkt, uint8_t version,
			   struct entry_arrays *arr)
{
	struct mqtt_subscribe *s = &pkt->u.subscribe;

	if (pkt->type != MQTT_SUBSCRIBE && pkt->type != MQTT_UNSUBSCRIBE)
		return true;
	if (s->count > MAX_ENTRIES)
		return false;
	walk_entries(s, pkt->type, version, arr->subs, arr->filters);
	if (pkt->type == MQTT_SUBSCRIBE)
		s->subs = arr->subs;
	else
		s->filters = arr->filters;
	return true;
}

/* Encodes pkt into a new buffer of exactly the size the encoder announces. */
static uint8_t *encode_exact(const struct mqtt_packet *pkt, uint8_t version,
			     size_t *len)
{
	size_t size = mqtt_encoded_size(pkt, version);
	uint8_t *buf;
	int rc;

	/* A decoded packet always fits MQTT: nothing in it grew. */
	CHECK(size >= 2);
	buf = malloc(size);
	CHECK(buf);
	rc = mqtt_encode(pkt, version, buf, size - 1);
	check_err(rc);
	CHECK(rc == MQTT_E_NO_SPACE);
	rc = mqtt_encode(pkt, version, buf, size);
	CHECK(rc > 0 && (size_t)rc == size);
	*len = size;
	return buf;
}

/*
 * The PUBLISH header encoder writes exactly the bytes mqtt_encode() wrote
 * before the payload, and its packet id offset points at the packet id.
 */
static void check_publish_header(const struct mqtt_publish *pub,
				 uint8_t version, const uint8_t *whole,
				 size_t whole_len)
{
	size_t hlen = mqtt_publish_header_size(pub, version);
	size_t pid_off = SIZE_MAX;
	uint8_t *hdr;
	int rc;

	CHECK(hlen >= 2 && hlen + pub->payload.len == whole_len);
	hdr = malloc(hlen);
	CHECK(hdr);
	rc = mqtt_encode_publish_header(pub, version, hdr, hlen - 1, NULL);
	check_err(rc);
	CHECK(rc == MQTT_E_NO_SPACE);
	rc = mqtt_encode_publish_header(pub, version, hdr, hlen, &pid_off);
	CHECK(rc > 0 && (size_t)rc == hlen);
	CHECK(memcmp(hdr, whole, hlen) == 0);
	CHECK(pub->payload.len == 0 ||
	      memcmp(whole + hlen, pub->payload.data, pub->payload.len) == 0);
	if (pub->qos) {
		uint16_t other = (uint16_t)(pub->packet_id ^ 0xA5C3);

		CHECK(pid_off >= 2 && pid_off <= hlen - 2);
		CHECK((hdr[pid_off] << 8 | hdr[pid_off + 1]) == pub->packet_id);
		mqtt_publish_set_packet_id(hdr, pid_off, other);
		CHECK((hdr[pid_off] << 8 | hdr[pid_off + 1]) == other);
		CHECK(memcmp(hdr, whole, pid_off) == 0);
		CHECK(memcmp(hdr + pid_off + 2, whole + pid_off + 2,
			     hlen - pid_off - 2) == 0);
	}
	free(hdr);
}

/*
 * Re-encode a decoded packet; the bytes must frame and decode again to the
 * same fields, and encoding that decoded copy must give the same bytes (the
 * encoder's output is canonical: property order and ack forms settle after
 * one round).
 */
static void check_round_trip(const struct mqtt_packet *orig, uint8_t version,
			     size_t frame_len)
{
	static struct entry_arrays arr1, arr2;
	struct mqtt_packet enc = *orig, back;
	uint8_t *buf, *buf2;
	size_t len, len2, plen;
	int rc;

	if (!make_encodable(&enc, version, &arr1))
		return;
	buf = encode_exact(&enc, version, &len);
	/* Re-encoding only drops optional bytes and shortens varints. */
	CHECK(len <= frame_len);
	CHECK(mqtt_frame_peek(buf, len, 0, &plen) == MQTT_OK && plen == len);
	CHECK(mqtt_frame_peek(buf, len, (uint32_t)len, &plen) == MQTT_OK);
	rc = mqtt_decode(buf, len, version, &back);
	CHECK(rc == MQTT_OK);
	check_packet(&back, version, span_of(buf, len));
	check_same(orig, &back);
	if (orig->type == MQTT_PUBLISH)
		check_publish_header(&enc.u.publish, version, buf, len);

	CHECK(make_encodable(&back, version, &arr2));
	buf2 = encode_exact(&back, version, &len2);
	CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
	free(buf2);
	free(buf);
}

/*
 * On a protocol name or level error the decoder still reports the level
 * byte (bridge bit removed) so the broker can answer in the client's
 * version.  Find that byte the obvious way and compare.
 */
static void check_connect_level(const uint8_t *f, size_t len,
				const struct mqtt_packet *pkt, int rc)
{
	uint32_t rl;
	size_t used, at, nlen;

	CHECK(pkt->type == MQTT_CONNECT);
	CHECK(mqtt_varint_decode(f + 1, len - 1, &rl, &used) == MQTT_OK);
	at = 1 + used;
	CHECK(len - at >= 3);
	nlen = (size_t)f[at] << 8 | f[at + 1];
	CHECK(len - at - 2 > nlen);
	CHECK(pkt->u.connect.protocol_level == (f[at + 2 + nlen] & 0x7F));
	if (rc == MQTT_E_PROTOCOL_VERSION)
		CHECK((nlen == 4 && memcmp(f + at + 2, "MQTT", 4) == 0) ||
		      (nlen == 6 && memcmp(f + at + 2, "MQIsdp", 6) == 0));
}

/* One complete frame, f[0..len) in a buffer of exactly that size. */
static void fuzz_frame(const uint8_t *f, size_t len, uint8_t version)
{
	struct mqtt_packet pkt, other;
	uint8_t *cut;
	int rc;

	rc = mqtt_decode(f, len, version, &pkt);
	if (rc < 0) {
		check_err(rc);
		CHECK(rc != MQTT_E_INCOMPLETE && rc != MQTT_E_NO_SPACE &&
		      rc != MQTT_E_ENCODE && rc != MQTT_E_TOO_LARGE);
		if (rc == MQTT_E_PROTOCOL_NAME || rc == MQTT_E_PROTOCOL_VERSION)
			check_connect_level(f, len, &pkt, rc);
		return;
	}
	CHECK(rc == MQTT_OK);
	CHECK(pkt.type == f[0] >> 4);
	check_packet(&pkt, version, span_of(f, len));

	/* One byte less is short; one byte more is trailing. */
	cut = malloc(len + 1);
	CHECK(cut);
	memcpy(cut, f, len);
	CHECK(mqtt_decode(cut, len - 1, version, &other) == MQTT_E_SHORT);
	cut[len] = 0;
	CHECK(mqtt_decode(cut, len + 1, version, &other) == MQTT_E_TRAILING);
	free(cut);

	check_round_trip(&pkt, version, len);
}

/*
 * mqtt_frame_peek() on the stream s[0..left): the limit only ever turns a
 * result into MQTT_E_TOO_LARGE, and every proper prefix of a complete frame
 * is incomplete, with the total known once the length field is.
 */
static int peek(const uint8_t *s, size_t left, uint32_t max_size,
		size_t *frame_len)
{
	size_t plen, plen_nolimit, hdr;
	uint32_t rl;
	int rc = mqtt_frame_peek(s, left, max_size, &plen);
	int rc_nolimit = mqtt_frame_peek(s, left, 0, &plen_nolimit);

	if (rc < 0)
		check_err(rc);
	if (rc == MQTT_E_TOO_LARGE) {
		CHECK(max_size != 0);
		CHECK(rc_nolimit == MQTT_OK || rc_nolimit == MQTT_E_INCOMPLETE);
		CHECK(plen_nolimit > max_size);
		return rc;
	}
	CHECK(rc == rc_nolimit);
	if (rc == MQTT_E_INCOMPLETE) {
		CHECK(plen == plen_nolimit && (plen == 0 || plen > left));
		return rc;
	}
	if (rc < 0) {
		CHECK(rc == MQTT_E_VARINT || rc == MQTT_E_PACKET_TYPE);
		return rc;
	}
	CHECK(plen == plen_nolimit && plen >= 2 && plen <= left);
	CHECK(max_size == 0 || plen <= max_size);
	CHECK(mqtt_varint_decode(s + 1, left - 1, &rl, &hdr) == MQTT_OK);
	hdr += 1;
	CHECK(plen == hdr + rl);
	/* Remaining Length uses the fewest bytes [MQTT-1.5.5-1]. */
	CHECK(hdr == 1 + mqtt_varint_size(rl));
	for (size_t k = 0; k < plen; k++) {
		size_t part;

		CHECK(mqtt_frame_peek(s, k, max_size, &part) ==
		      MQTT_E_INCOMPLETE);
		CHECK(part == (k >= hdr ? plen : 0));
	}
	*frame_len = plen;
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t versions[] = { MQTT_V31, MQTT_V311, MQTT_V5 };
	const uint8_t *s;
	size_t left, flen;
	uint8_t version;
	uint32_t max_size;

	if (size < 2)
		return 0;
	version = versions[data[0] % 3];
	max_size = (uint32_t)data[1] * data[1];
	s = data + 2;
	left = size - 2;
	/* As the connection layer does: stop at the first bad or partial frame. */
	while (left && peek(s, left, max_size, &flen) == MQTT_OK) {
		uint8_t *f = malloc(flen);

		CHECK(f);
		memcpy(f, s, flen);
		fuzz_frame(f, flen, version);
		free(f);
		s += flen;
		left -= flen;
	}
	return 0;
}
