/*
 * Packet decoder: one complete control packet in, a struct of views out.
 * Every field is checked against the bytes that remain, every rule the
 * specifications make about a single packet is enforced here, and each
 * failure has its own error code (see mqtt.h) so the connection layer can
 * answer with the right reason code.  Rules that need session state (topic
 * alias ranges, receive maximum, filter syntax per entry) are the broker's.
 */
#include "mqtt_int.h"
#include "topic.h"

static const char name_mqtt[] = { 'M', 'Q', 'T', 'T' };
static const char name_mqisdp[] = { 'M', 'Q', 'I', 's', 'd', 'p' };

/* Property Length and block, present from MQTT 5 on. */
static int rd_props(struct rd *r, int packet_type, struct mqtt_props *p)
{
	uint32_t n;
	int rc = rd_varint(r, &n);

	if (rc < 0)
		return rc;
	if (rd_left(r) < n)
		return MQTT_E_SHORT;
	rc = mqtt_props_decode(r->p, n, packet_type, p);
	if (rc < 0)
		return rc;
	r->p += n;
	return 0;
}

static int rd_packet_id(struct rd *r, uint16_t *id)
{
	int rc = rd_u16(r, id);

	if (rc < 0)
		return rc;
	return *id ? 0 : MQTT_E_PACKET_ID;
}

static bool bytes_eq(const struct mqtt_bytes *b, const char *s, size_t n)
{
	return b->len == n && memcmp(b->data, s, n) == 0;
}

/* Protocol name and level; both decide which rules the rest follows. */
static int decode_protocol(struct rd *r, struct mqtt_connect *c)
{
	struct mqtt_bytes name;
	uint8_t level;
	int rc;

	rc = rd_binary(r, &name);
	if (rc < 0)
		return rc;
	rc = rd_u8(r, &level);
	if (rc < 0)
		return rc;
	c->bridge = (level & MQTT_LEVEL_BRIDGE_BIT) != 0;
	c->protocol_level = level & (uint8_t)~MQTT_LEVEL_BRIDGE_BIT;
	if (bytes_eq(&name, name_mqtt, sizeof(name_mqtt)))
		return c->protocol_level == MQTT_V311 ||
		       c->protocol_level == MQTT_V5 ?
			       0 : MQTT_E_PROTOCOL_VERSION;
	if (bytes_eq(&name, name_mqisdp, sizeof(name_mqisdp)))
		return c->protocol_level == MQTT_V31 ?
			       0 : MQTT_E_PROTOCOL_VERSION;
	return MQTT_E_PROTOCOL_NAME;
}

static int decode_connect_flags(uint8_t flags, struct mqtt_connect *c)
{
	if (flags & 0x01)
		return MQTT_E_CONNECT_RESERVED; /* [MQTT-3.1.2-3] */
	c->clean_start = (flags & 0x02) != 0;
	c->will_flag = (flags & 0x04) != 0;
	c->will_qos = (uint8_t)((flags >> 3) & 0x03);
	c->will_retain = (flags & 0x20) != 0;
	c->password_flag = (flags & 0x40) != 0;
	c->username_flag = (flags & 0x80) != 0;
	if (c->will_qos == 3)
		return MQTT_E_QOS; /* [MQTT-3.1.2-12] */
	if (!c->will_flag && (c->will_qos || c->will_retain))
		return MQTT_E_WILL_FLAGS; /* [MQTT-3.1.2-11], [MQTT-3.1.2-13] */
	if (c->protocol_level < MQTT_V5 && c->password_flag &&
	    !c->username_flag)
		return MQTT_E_PASSWORD_FLAG; /* 3.1.1 [MQTT-3.1.2-22] */
	return 0;
}

static int decode_connect(struct rd *r, struct mqtt_connect *c)
{
	uint8_t flags;
	int rc;

	rc = decode_protocol(r, c);
	if (rc < 0)
		return rc;
	rc = rd_u8(r, &flags);
	if (rc < 0)
		return rc;
	rc = decode_connect_flags(flags, c);
	if (rc < 0)
		return rc;
	rc = rd_u16(r, &c->keep_alive);
	if (rc < 0)
		return rc;
	if (c->protocol_level == MQTT_V5) {
		rc = rd_props(r, MQTT_CONNECT, &c->props);
		if (rc < 0)
			return rc;
	}
	rc = rd_string(r, &c->client_id);
	if (rc < 0)
		return rc;
	if (c->will_flag) {
		if (c->protocol_level == MQTT_V5) {
			rc = rd_props(r, MQTT_PROPS_WILL, &c->will_props);
			if (rc < 0)
				return rc;
		}
		rc = rd_string(r, &c->will_topic);
		if (rc < 0)
			return rc;
		if (!topic_name_is_valid((const char *)c->will_topic.data,
					 c->will_topic.len))
			return MQTT_E_TOPIC_NAME; /* [MQTT-3.1.3-11] */
		rc = rd_binary(r, &c->will_payload);
		if (rc < 0)
			return rc;
	}
	if (c->username_flag) {
		rc = rd_string(r, &c->username);
		if (rc < 0)
			return rc;
	}
	if (c->password_flag) {
		rc = rd_binary(r, &c->password);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int decode_connack(struct rd *r, uint8_t version,
			  struct mqtt_connack *c)
{
	uint8_t flags;
	int rc;

	rc = rd_u8(r, &flags);
	if (rc < 0)
		return rc;
	if (flags & 0xFE)
		return MQTT_E_CONNECT_RESERVED; /* [MQTT-3.2.2-1] */
	c->session_present = flags & 0x01;
	rc = rd_u8(r, &c->reason);
	if (rc < 0)
		return rc;
	if (version < MQTT_V5)
		return c->reason <= MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED ?
			       0 : MQTT_E_REASON_CODE;
	if (!mqtt_rc_is_valid_for(MQTT_CONNACK, c->reason))
		return MQTT_E_REASON_CODE;
	return rd_props(r, MQTT_CONNACK, &c->props);
}

static int decode_publish(struct rd *r, uint8_t version, uint8_t flags,
			  struct mqtt_publish *p)
{
	int rc;

	p->retain = flags & 0x01;
	p->qos = (uint8_t)((flags >> 1) & 0x03);
	p->dup = (flags & 0x08) != 0;
	if (p->qos == 3)
		return MQTT_E_QOS; /* [MQTT-3.3.1-4] */
	if (p->dup && p->qos == 0)
		return MQTT_E_DUP_QOS0; /* [MQTT-3.3.1-2] */
	rc = rd_string(r, &p->topic);
	if (rc < 0)
		return rc;
	if (p->qos) {
		rc = rd_packet_id(r, &p->packet_id);
		if (rc < 0)
			return rc;
	}
	if (version == MQTT_V5) {
		rc = rd_props(r, MQTT_PUBLISH, &p->props);
		if (rc < 0)
			return rc;
	}
	if (p->topic.len == 0) {
		/* Only a Topic Alias may stand in for the name [MQTT-3.3.2-1]. */
		if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
			return MQTT_E_TOPIC_EMPTY;
	} else if (!topic_name_is_valid((const char *)p->topic.data,
					p->topic.len)) {
		return MQTT_E_TOPIC_NAME; /* [MQTT-3.3.2-2] */
	}
	p->payload.data = r->p;
	p->payload.len = rd_left(r);
	r->p = r->end;
	return 0;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static int decode_ack(struct rd *r, uint8_t version, uint8_t type,
		      struct mqtt_ack *a)
{
	int rc = rd_packet_id(r, &a->packet_id);

	if (rc < 0 || version < MQTT_V5)
		return rc;
	/* Reason 0 and no properties may be left out [MQTT-3.4.2-1]. */
	if (rd_left(r) == 0)
		return 0;
	rd_u8(r, &a->reason);
	if (!mqtt_rc_is_valid_for(type, a->reason))
		return MQTT_E_REASON_CODE;
	if (rd_left(r) == 0)
		return 0;
	return rd_props(r, type, &a->props);
}

static int check_sub_options(uint8_t version, uint8_t opts,
			     const struct mqtt_bytes *filter)
{
	const char share[] = "$share/";

	/* Reserved bits: 2-7 in 3.1.1 [MQTT-3.8.3-4], 6-7 in 5.0 [MQTT-3.8.3-5]. */
	if (opts & (version < MQTT_V5 ? 0xFC : 0xC0))
		return MQTT_E_SUB_OPTIONS;
	if ((opts & MQTT_SUBOPT_QOS_MASK) == 3)
		return MQTT_E_QOS;
	if (version < MQTT_V5)
		return 0;
	if ((opts & MQTT_SUBOPT_RETAIN_HANDLING_MASK) ==
	    MQTT_SUBOPT_RETAIN_HANDLING_MASK)
		return MQTT_E_RETAIN_HANDLING;
	if ((opts & MQTT_SUBOPT_NO_LOCAL) && filter->len >= sizeof(share) - 1 &&
	    memcmp(filter->data, share, sizeof(share) - 1) == 0)
		return MQTT_E_SHARED_NO_LOCAL; /* [MQTT-3.8.3-4] (5.0) */
	return 0;
}

/* SUBSCRIBE (with options) and UNSUBSCRIBE (without). */
static int decode_subscribe(struct rd *r, uint8_t version, uint8_t type,
			    struct mqtt_subscribe *s)
{
	struct mqtt_bytes filter;
	uint8_t opts;
	int rc;

	rc = rd_packet_id(r, &s->packet_id);
	if (rc < 0)
		return rc;
	if (version == MQTT_V5) {
		rc = rd_props(r, type, &s->props);
		if (rc < 0)
			return rc;
	}
	s->entries.data = r->p;
	s->entries.len = rd_left(r);
	while (rd_left(r)) {
		rc = rd_string(r, &filter);
		if (rc < 0)
			return rc;
		if (type == MQTT_SUBSCRIBE) {
			rc = rd_u8(r, &opts);
			if (rc < 0)
				return rc;
			rc = check_sub_options(version, opts, &filter);
			if (rc < 0)
				return rc;
		}
		s->count++;
	}
	/* [MQTT-3.8.3-2], [MQTT-3.10.3-2] */
	return s->count ? 0 : MQTT_E_NO_TOPICS;
}

/* SUBACK and UNSUBACK. */
static int decode_suback(struct rd *r, uint8_t version, uint8_t type,
			 struct mqtt_suback *s)
{
	int rc = rd_packet_id(r, &s->packet_id);

	if (rc < 0)
		return rc;
	if (version == MQTT_V5) {
		rc = rd_props(r, type, &s->props);
		if (rc < 0)
			return rc;
	} else if (type == MQTT_UNSUBACK) {
		return 0; /* 3.1.1 UNSUBACK is the packet id alone */
	}
	s->reasons.data = r->p;
	s->reasons.len = rd_left(r);
	r->p = r->end;
	if (s->reasons.len == 0)
		return MQTT_E_NO_TOPICS;
	for (size_t i = 0; i < s->reasons.len; i++) {
		uint8_t rcode = s->reasons.data[i];
		bool ok = version == MQTT_V5 ?
			mqtt_rc_is_valid_for(type, rcode) :
			rcode <= MQTT_RC_GRANTED_QOS2 ||
			rcode == MQTT_RC_UNSPECIFIED_ERROR;

		if (!ok)
			return MQTT_E_REASON_CODE;
	}
	return 0;
}

/* DISCONNECT and AUTH: reason and properties may both be left out. */
static int decode_disconnect(struct rd *r, uint8_t version, uint8_t type,
			     struct mqtt_disconnect *d)
{
	if (version < MQTT_V5 || rd_left(r) == 0)
		return 0;
	rd_u8(r, &d->reason);
	if (!mqtt_rc_is_valid_for(type, d->reason))
		return MQTT_E_REASON_CODE;
	/*
	 * DISCONNECT may stop after the reason (section 3.14.2.2: no Property
	 * Length means 0); AUTH may only leave out both (section 3.15.2.1).
	 */
	if (rd_left(r) == 0 && type == MQTT_DISCONNECT)
		return 0;
	return rd_props(r, type, &d->props);
}

/* The fixed-header flags each type must carry [MQTT-2.1.3-1]. */
static bool flags_are_valid(uint8_t type, uint8_t flags)
{
	switch (type) {
	case MQTT_PUBLISH:
		return true; /* checked with the packet */
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return flags == 0x02;
	default:
		return flags == 0;
	}
}

int mqtt_decode(const uint8_t *buf, size_t len, uint8_t version,
		struct mqtt_packet *out)
{
	uint8_t type, flags;
	uint32_t remaining;
	size_t used;
	struct rd r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len < 2)
		return MQTT_E_SHORT;
	type = buf[0] >> 4;
	flags = buf[0] & 0x0F;
	if (type == 0 || (type == MQTT_AUTH && version < MQTT_V5))
		return MQTT_E_PACKET_TYPE;
	if (!flags_are_valid(type, flags))
		return MQTT_E_HEADER_FLAGS;
	rc = mqtt_varint_decode(buf + 1, len - 1, &remaining, &used);
	if (rc == MQTT_E_INCOMPLETE)
		return MQTT_E_SHORT;
	if (rc < 0)
		return rc;
	if (len - 1 - used < remaining)
		return MQTT_E_SHORT;
	if (len - 1 - used > remaining)
		return MQTT_E_TRAILING;
	r.p = buf + 1 + used;
	r.end = r.p + remaining;
	out->type = type;

	switch (type) {
	case MQTT_CONNECT:
		rc = decode_connect(&r, &out->u.connect);
		break;
	case MQTT_CONNACK:
		rc = decode_connack(&r, version, &out->u.connack);
		break;
	case MQTT_PUBLISH:
		rc = decode_publish(&r, version, flags, &out->u.publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		rc = decode_ack(&r, version, type, &out->u.ack);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		rc = decode_subscribe(&r, version, type, &out->u.subscribe);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		rc = decode_suback(&r, version, type, &out->u.suback);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		rc = 0;
		break;
	default: /* DISCONNECT, AUTH */
		rc = decode_disconnect(&r, version, type, &out->u.disconnect);
		break;
	}
	if (rc < 0)
		return rc;
	return rd_left(&r) ? MQTT_E_TRAILING : 0;
}

bool mqtt_sub_next(const struct mqtt_bytes *entries, size_t *offset,
		   struct mqtt_sub_entry *out)
{
	struct rd r;
	uint8_t opts;

	if (*offset >= entries->len)
		return false;
	r.p = entries->data + *offset;
	r.end = entries->data + entries->len;
	if (rd_binary(&r, &out->filter) < 0 || rd_u8(&r, &opts) < 0)
		return false;
	out->qos = opts & MQTT_SUBOPT_QOS_MASK;
	out->no_local = (opts & MQTT_SUBOPT_NO_LOCAL) != 0;
	out->retain_as_published = (opts & MQTT_SUBOPT_RETAIN_AS_PUBLISHED) != 0;
	out->retain_handling = (uint8_t)((opts & MQTT_SUBOPT_RETAIN_HANDLING_MASK) >>
					 MQTT_SUBOPT_RETAIN_HANDLING_SHIFT);
	*offset = (size_t)(r.p - entries->data);
	return true;
}

bool mqtt_unsub_next(const struct mqtt_bytes *entries, size_t *offset,
		     struct mqtt_bytes *filter)
{
	struct rd r;

	if (*offset >= entries->len)
		return false;
	r.p = entries->data + *offset;
	r.end = entries->data + entries->len;
	if (rd_binary(&r, filter) < 0)
		return false;
	*offset = (size_t)(r.p - entries->data);
	return true;
}
