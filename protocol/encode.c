/*
 * Packet encoder.  Each packet's layout is written once (write_body), run
 * first as a count to get the exact size, then into the caller's buffer.
 * Nothing allocates; a PUBLISH header can be encoded on its own so the
 * broker can writev it with a payload shared by every subscriber.
 */
#include "mqtt_int.h"

static const uint8_t name_mqtt[] = { 0, 4, 'M', 'Q', 'T', 'T' };
static const uint8_t name_mqisdp[] = { 0, 6, 'M', 'Q', 'I', 's', 'd', 'p' };

/* Property Length, then the block; a counting run sizes it only once. */
static void write_props(struct wr *w, const struct mqtt_props *p)
{
	size_t n = mqtt_props_size(p);

	if (n > MQTT_VARINT_MAX) {
		w->bad = true;
		return;
	}
	wr_varint(w, (uint32_t)n);
	if (w->buf)
		mqtt_props_write(w, p);
	else
		w->pos += n;
}

static bool props_are_empty(const struct mqtt_props *p)
{
	return mqtt_props_size(p) == 0;
}

static void write_connect(struct wr *w, const struct mqtt_connect *c)
{
	uint8_t level = c->protocol_level;
	uint8_t flags = 0;

	if (level == MQTT_V31)
		wr_raw(w, name_mqisdp, sizeof(name_mqisdp));
	else
		wr_raw(w, name_mqtt, sizeof(name_mqtt));
	if (c->bridge)
		level |= MQTT_LEVEL_BRIDGE_BIT;
	wr_u8(w, level);
	if (c->clean_start)
		flags |= 0x02;
	if (c->will_flag) {
		flags |= 0x04 | (uint8_t)((c->will_qos & 0x03) << 3);
		if (c->will_retain)
			flags |= 0x20;
	}
	if (c->password_flag)
		flags |= 0x40;
	if (c->username_flag)
		flags |= 0x80;
	wr_u8(w, flags);
	wr_u16(w, c->keep_alive);
	if (c->protocol_level == MQTT_V5)
		write_props(w, &c->props);
	wr_binary(w, &c->client_id);
	if (c->will_flag) {
		if (c->protocol_level == MQTT_V5)
			write_props(w, &c->will_props);
		wr_binary(w, &c->will_topic);
		wr_binary(w, &c->will_payload);
	}
	if (c->username_flag)
		wr_binary(w, &c->username);
	if (c->password_flag)
		wr_binary(w, &c->password);
}

/* Topic, packet id and properties: the PUBLISH header after its length. */
static void write_publish_vhdr(struct wr *w, const struct mqtt_publish *p,
			       uint8_t version, size_t *packet_id_pos)
{
	wr_binary(w, &p->topic);
	if (p->qos) {
		if (packet_id_pos)
			*packet_id_pos = w->pos;
		wr_u16(w, p->packet_id);
	}
	if (version == MQTT_V5)
		write_props(w, &p->props);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP: shortest form that says everything. */
static void write_ack(struct wr *w, const struct mqtt_ack *a, uint8_t version)
{
	wr_u16(w, a->packet_id);
	if (version < MQTT_V5)
		return;
	if (props_are_empty(&a->props)) {
		if (a->reason != MQTT_RC_SUCCESS)
			wr_u8(w, a->reason);
		return;
	}
	wr_u8(w, a->reason);
	write_props(w, &a->props);
}

static void write_subscribe(struct wr *w, const struct mqtt_subscribe *s,
			    uint8_t version, bool with_options)
{
	wr_u16(w, s->packet_id);
	if (version == MQTT_V5)
		write_props(w, &s->props);
	for (size_t i = 0; i < s->count; i++) {
		const struct mqtt_sub_entry *e = with_options ? &s->subs[i] : NULL;
		uint8_t opts;

		if (!e) {
			wr_binary(w, &s->filters[i]);
			continue;
		}
		opts = e->qos & MQTT_SUBOPT_QOS_MASK;
		if (version == MQTT_V5) {
			if (e->no_local)
				opts |= MQTT_SUBOPT_NO_LOCAL;
			if (e->retain_as_published)
				opts |= MQTT_SUBOPT_RETAIN_AS_PUBLISHED;
			opts |= (uint8_t)((e->retain_handling & 0x03)
					  << MQTT_SUBOPT_RETAIN_HANDLING_SHIFT);
		}
		wr_binary(w, &e->filter);
		wr_u8(w, opts);
	}
}

static void write_suback(struct wr *w, const struct mqtt_suback *s,
			 uint8_t version, bool unsuback)
{
	wr_u16(w, s->packet_id);
	if (version == MQTT_V5)
		write_props(w, &s->props);
	else if (unsuback)
		return; /* 3.1.1 UNSUBACK has no reason codes */
	wr_raw(w, s->reasons.data, s->reasons.len);
}

/*
 * DISCONNECT and AUTH: nothing at all when reason 0 and no properties;
 * DISCONNECT may also stop after its reason, AUTH may not (5.0 section
 * 3.15.2.1).
 */
static void write_disconnect(struct wr *w, const struct mqtt_disconnect *d,
			     uint8_t version, bool is_auth)
{
	if (version < MQTT_V5)
		return;
	if (props_are_empty(&d->props)) {
		if (d->reason == MQTT_RC_SUCCESS)
			return;
		wr_u8(w, d->reason);
		if (is_auth)
			wr_u8(w, 0); /* Property Length 0 */
		return;
	}
	wr_u8(w, d->reason);
	write_props(w, &d->props);
}

/* Everything after the fixed header. */
static void write_body(struct wr *w, const struct mqtt_packet *pkt,
		       uint8_t version)
{
	switch (pkt->type) {
	case MQTT_CONNECT:
		write_connect(w, &pkt->u.connect);
		break;
	case MQTT_CONNACK:
		wr_u8(w, pkt->u.connack.session_present ? 1 : 0);
		wr_u8(w, pkt->u.connack.reason);
		if (version == MQTT_V5)
			write_props(w, &pkt->u.connack.props);
		break;
	case MQTT_PUBLISH:
		write_publish_vhdr(w, &pkt->u.publish, version, NULL);
		wr_raw(w, pkt->u.publish.payload.data,
		       pkt->u.publish.payload.len);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		write_ack(w, &pkt->u.ack, version);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		write_subscribe(w, &pkt->u.subscribe, version,
				pkt->type == MQTT_SUBSCRIBE);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		write_suback(w, &pkt->u.suback, version,
			     pkt->type == MQTT_UNSUBACK);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
		write_disconnect(w, &pkt->u.disconnect, version, false);
		break;
	case MQTT_AUTH:
		if (version < MQTT_V5)
			w->bad = true;
		write_disconnect(w, &pkt->u.disconnect, version, true);
		break;
	default:
		w->bad = true;
		break;
	}
}

static uint8_t publish_first_byte(const struct mqtt_publish *p)
{
	return (uint8_t)(MQTT_PUBLISH << 4 | (p->dup ? 0x08 : 0) |
			 (p->qos & 0x03) << 1 | (p->retain ? 0x01 : 0));
}

static uint8_t first_byte(const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_PUBLISH:
		return publish_first_byte(&pkt->u.publish);
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return (uint8_t)(pkt->type << 4 | 0x02);
	default:
		return (uint8_t)(pkt->type << 4);
	}
}

/* Remaining Length of pkt, or SIZE_MAX when it cannot be encoded. */
static size_t remaining_length(const struct mqtt_packet *pkt, uint8_t version)
{
	struct wr w = { 0 };

	write_body(&w, pkt, version);
	if (w.bad || w.pos > MQTT_VARINT_MAX)
		return SIZE_MAX;
	return w.pos;
}

size_t mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version)
{
	size_t rl = remaining_length(pkt, version);

	if (rl == SIZE_MAX)
		return 0;
	return 1 + mqtt_varint_size((uint32_t)rl) + rl;
}

int mqtt_encode(const struct mqtt_packet *pkt, uint8_t version, uint8_t *buf,
		size_t cap)
{
	size_t rl = remaining_length(pkt, version);
	struct wr w = { buf, 0, cap, false };

	if (rl == SIZE_MAX)
		return MQTT_E_ENCODE;
	if (1 + mqtt_varint_size((uint32_t)rl) + rl > cap)
		return MQTT_E_NO_SPACE;
	wr_u8(&w, first_byte(pkt));
	wr_varint(&w, (uint32_t)rl);
	write_body(&w, pkt, version);
	assert(!w.bad);
	return (int)w.pos;
}

/* Header length (without payload) and Remaining Length of a PUBLISH. */
static int publish_header_layout(const struct mqtt_publish *pub,
				 uint8_t version, size_t *hdr_len, size_t *rl)
{
	struct wr w = { 0 };

	write_publish_vhdr(&w, pub, version, NULL);
	if (w.bad || pub->payload.len > MQTT_VARINT_MAX ||
	    w.pos > MQTT_VARINT_MAX - pub->payload.len)
		return MQTT_E_ENCODE;
	*rl = w.pos + pub->payload.len;
	*hdr_len = 1 + mqtt_varint_size((uint32_t)*rl) + w.pos;
	return 0;
}

size_t mqtt_publish_header_size(const struct mqtt_publish *pub,
				uint8_t version)
{
	size_t hdr_len, rl;

	if (publish_header_layout(pub, version, &hdr_len, &rl) < 0)
		return 0;
	return hdr_len;
}

int mqtt_encode_publish_header(const struct mqtt_publish *pub, uint8_t version,
			       uint8_t *buf, size_t cap,
			       size_t *packet_id_offset)
{
	struct wr w = { buf, 0, cap, false };
	size_t hdr_len, rl;
	int rc = publish_header_layout(pub, version, &hdr_len, &rl);

	if (rc < 0)
		return rc;
	if (hdr_len > cap)
		return MQTT_E_NO_SPACE;
	wr_u8(&w, publish_first_byte(pub));
	wr_varint(&w, (uint32_t)rl);
	write_publish_vhdr(&w, pub, version, packet_id_offset);
	assert(w.pos == hdr_len);
	return (int)w.pos;
}
