/*
 * MQTT 5 properties [MQTT-2.2.2]: the table of identifiers, their types and
 * the packets each may appear in, and the decoder, walker and encoder of a
 * property block.  The decoder validates everything once so the broker can
 * then trust the block it forwards.
 */
#include "mqtt_int.h"
#include "topic.h"

#define P(t) (1u << (t))
#define W P(MQTT_PROPS_WILL)
#define ACKS (P(MQTT_PUBACK) | P(MQTT_PUBREC) | P(MQTT_PUBREL) | P(MQTT_PUBCOMP))
#define ALL (W | P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_PUBLISH) | ACKS | \
	     P(MQTT_SUBSCRIBE) | P(MQTT_SUBACK) | P(MQTT_UNSUBSCRIBE) |     \
	     P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) | P(MQTT_AUTH))

struct prop_info {
	uint8_t type; /* enum mqtt_prop_type; 0: no such property */
	uint16_t packets; /* P(packet type) for each packet allowed in */
};

/* MQTT 5.0 section 2.2.2.2, Table 2-4. */
static const struct prop_info prop_table[] = {
	[MQTT_PROP_PAYLOAD_FORMAT_INDICATOR] = { MQTT_PT_BYTE, P(MQTT_PUBLISH) | W },
	[MQTT_PROP_MESSAGE_EXPIRY_INTERVAL] = { MQTT_PT_U32, P(MQTT_PUBLISH) | W },
	[MQTT_PROP_CONTENT_TYPE] = { MQTT_PT_STRING, P(MQTT_PUBLISH) | W },
	[MQTT_PROP_RESPONSE_TOPIC] = { MQTT_PT_STRING, P(MQTT_PUBLISH) | W },
	[MQTT_PROP_CORRELATION_DATA] = { MQTT_PT_BINARY, P(MQTT_PUBLISH) | W },
	[MQTT_PROP_SUBSCRIPTION_IDENTIFIER] = { MQTT_PT_VARINT, P(MQTT_PUBLISH) | P(MQTT_SUBSCRIBE) },
	[MQTT_PROP_SESSION_EXPIRY_INTERVAL] = { MQTT_PT_U32, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_DISCONNECT) },
	[MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER] = { MQTT_PT_STRING, P(MQTT_CONNACK) },
	[MQTT_PROP_SERVER_KEEP_ALIVE] = { MQTT_PT_U16, P(MQTT_CONNACK) },
	[MQTT_PROP_AUTHENTICATION_METHOD] = { MQTT_PT_STRING, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH) },
	[MQTT_PROP_AUTHENTICATION_DATA] = { MQTT_PT_BINARY, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH) },
	[MQTT_PROP_REQUEST_PROBLEM_INFORMATION] = { MQTT_PT_BYTE, P(MQTT_CONNECT) },
	[MQTT_PROP_WILL_DELAY_INTERVAL] = { MQTT_PT_U32, W },
	[MQTT_PROP_REQUEST_RESPONSE_INFORMATION] = { MQTT_PT_BYTE, P(MQTT_CONNECT) },
	[MQTT_PROP_RESPONSE_INFORMATION] = { MQTT_PT_STRING, P(MQTT_CONNACK) },
	[MQTT_PROP_SERVER_REFERENCE] = { MQTT_PT_STRING, P(MQTT_CONNACK) | P(MQTT_DISCONNECT) },
	[MQTT_PROP_REASON_STRING] = { MQTT_PT_STRING, P(MQTT_CONNACK) | ACKS | P(MQTT_SUBACK) | P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) | P(MQTT_AUTH) },
	[MQTT_PROP_RECEIVE_MAXIMUM] = { MQTT_PT_U16, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = { MQTT_PT_U16, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS] = { MQTT_PT_U16, P(MQTT_PUBLISH) },
	[MQTT_PROP_MAXIMUM_QOS] = { MQTT_PT_BYTE, P(MQTT_CONNACK) },
	[MQTT_PROP_RETAIN_AVAILABLE] = { MQTT_PT_BYTE, P(MQTT_CONNACK) },
	[MQTT_PROP_USER_PROPERTY] = { MQTT_PT_STRING_PAIR, ALL },
	[MQTT_PROP_MAXIMUM_PACKET_SIZE] = { MQTT_PT_U32, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	[MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE] = { MQTT_PT_BYTE, P(MQTT_CONNACK) },
	[MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE] = { MQTT_PT_BYTE, P(MQTT_CONNACK) },
	[MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE] = { MQTT_PT_BYTE, P(MQTT_CONNACK) },
};

#define PROP_COUNT (sizeof(prop_table) / sizeof(prop_table[0]))

enum mqtt_prop_type mqtt_prop_type_of(uint8_t id)
{
	return id < PROP_COUNT ? (enum mqtt_prop_type)prop_table[id].type : 0;
}

bool mqtt_prop_is_allowed(uint8_t id, int packet_type)
{
	if (id >= PROP_COUNT || packet_type < 0 || packet_type > MQTT_AUTH)
		return false;
	return (prop_table[id].packets >> packet_type) & 1u;
}

/* Read one property's value by its type; no semantic checks. */
static int read_value(struct rd *r, enum mqtt_prop_type type,
		      struct mqtt_prop *out)
{
	uint8_t b;
	uint16_t h;

	switch (type) {
	case MQTT_PT_BYTE:
		if (rd_u8(r, &b) < 0)
			return MQTT_E_SHORT;
		out->num = b;
		return 0;
	case MQTT_PT_U16:
		if (rd_u16(r, &h) < 0)
			return MQTT_E_SHORT;
		out->num = h;
		return 0;
	case MQTT_PT_U32:
		return rd_u32(r, &out->num);
	case MQTT_PT_VARINT:
		return rd_varint(r, &out->num);
	case MQTT_PT_STRING:
		return rd_string(r, &out->str);
	case MQTT_PT_BINARY:
		return rd_binary(r, &out->str);
	case MQTT_PT_STRING_PAIR: {
		int rc = rd_string(r, &out->str);

		return rc < 0 ? rc : rd_string(r, &out->value);
	}
	default:
		return MQTT_E_PROP_ID;
	}
}

bool mqtt_prop_next(const struct mqtt_bytes *raw, size_t *offset,
		    struct mqtt_prop *out)
{
	struct rd r;

	if (*offset >= raw->len)
		return false;
	r.p = raw->data + *offset;
	r.end = raw->data + raw->len;
	memset(out, 0, sizeof(*out));
	if (rd_u8(&r, &out->id) < 0)
		return false;
	if (read_value(&r, mqtt_prop_type_of(out->id), out) < 0)
		return false;
	*offset = (size_t)(r.p - raw->data);
	return true;
}

/* Properties whose value is a flag: 0 or 1 only. */
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

/* Range rules the spec makes a Protocol Error (or Topic Alias invalid). */
static int check_value(const struct mqtt_prop *v)
{
	if (is_boolean(v->id))
		return v->num <= 1 ? 0 : MQTT_E_PROP_VALUE;
	switch (v->id) {
	case MQTT_PROP_RECEIVE_MAXIMUM:
	case MQTT_PROP_MAXIMUM_PACKET_SIZE:
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
		return v->num ? 0 : MQTT_E_PROP_VALUE;
	case MQTT_PROP_TOPIC_ALIAS:
		return v->num ? 0 : MQTT_E_TOPIC_ALIAS;
	case MQTT_PROP_RESPONSE_TOPIC:
		/* A Topic Name: no wildcards [MQTT-3.3.2-14]. */
		return topic_name_is_valid((const char *)v->str.data,
					   v->str.len) ? 0 : MQTT_E_PROP_VALUE;
	default:
		return 0;
	}
}

static void store_value(struct mqtt_props *p, const struct mqtt_prop *v)
{
	switch (v->id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: p->payload_format_indicator = (uint8_t)v->num; break;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: p->message_expiry_interval = v->num; break;
	case MQTT_PROP_CONTENT_TYPE: p->content_type = v->str; break;
	case MQTT_PROP_RESPONSE_TOPIC: p->response_topic = v->str; break;
	case MQTT_PROP_CORRELATION_DATA: p->correlation_data = v->str; break;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
		if (p->subscription_id_count++ == 0)
			p->subscription_id = v->num;
		break;
	case MQTT_PROP_SESSION_EXPIRY_INTERVAL: p->session_expiry_interval = v->num; break;
	case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER: p->assigned_client_identifier = v->str; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: p->server_keep_alive = (uint16_t)v->num; break;
	case MQTT_PROP_AUTHENTICATION_METHOD: p->authentication_method = v->str; break;
	case MQTT_PROP_AUTHENTICATION_DATA: p->authentication_data = v->str; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION: p->request_problem_information = (uint8_t)v->num; break;
	case MQTT_PROP_WILL_DELAY_INTERVAL: p->will_delay_interval = v->num; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION: p->request_response_information = (uint8_t)v->num; break;
	case MQTT_PROP_RESPONSE_INFORMATION: p->response_information = v->str; break;
	case MQTT_PROP_SERVER_REFERENCE: p->server_reference = v->str; break;
	case MQTT_PROP_REASON_STRING: p->reason_string = v->str; break;
	case MQTT_PROP_RECEIVE_MAXIMUM: p->receive_maximum = (uint16_t)v->num; break;
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: p->topic_alias_maximum = (uint16_t)v->num; break;
	case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = (uint16_t)v->num; break;
	case MQTT_PROP_MAXIMUM_QOS: p->maximum_qos = (uint8_t)v->num; break;
	case MQTT_PROP_RETAIN_AVAILABLE: p->retain_available = (uint8_t)v->num; break;
	case MQTT_PROP_USER_PROPERTY: p->user_count++; break;
	case MQTT_PROP_MAXIMUM_PACKET_SIZE: p->maximum_packet_size = v->num; break;
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE: p->wildcard_subscription_available = (uint8_t)v->num; break;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE: p->subscription_identifier_available = (uint8_t)v->num; break;
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE: p->shared_subscription_available = (uint8_t)v->num; break;
	}
}

static bool may_repeat(uint8_t id, int packet_type)
{
	return id == MQTT_PROP_USER_PROPERTY ||
	       (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER &&
		packet_type == MQTT_PUBLISH);
}

int mqtt_props_decode(const uint8_t *buf, size_t len, int packet_type,
		      struct mqtt_props *out)
{
	struct rd r = { buf, buf + len };
	struct mqtt_prop v;
	int rc;

	memset(out, 0, sizeof(*out));
	out->raw.data = buf;
	out->raw.len = len;
	while (rd_left(&r)) {
		memset(&v, 0, sizeof(v));
		/*
		 * The identifier is a Variable Byte Integer, but every defined
		 * one fits in a single byte: a continuation bit means unknown.
		 */
		rd_u8(&r, &v.id);
		if (mqtt_prop_type_of(v.id) == 0)
			return MQTT_E_PROP_ID;
		if (!mqtt_prop_is_allowed(v.id, packet_type))
			return MQTT_E_PROP_NOT_ALLOWED;
		if (mqtt_props_has(out, v.id) && !may_repeat(v.id, packet_type))
			return MQTT_E_PROP_DUPLICATE;
		rc = read_value(&r, mqtt_prop_type_of(v.id), &v);
		if (rc < 0)
			return rc;
		rc = check_value(&v);
		if (rc < 0)
			return rc;
		/* Counts are 16 bits; no real packet repeats more than that. */
		if (out->user_count == UINT16_MAX ||
		    out->subscription_id_count == UINT16_MAX)
			return MQTT_E_PROP_VALUE;
		mqtt_props_set(out, v.id);
		store_value(out, &v);
	}
	return 0;
}

static const struct mqtt_bytes *string_field(uint8_t id,
					     const struct mqtt_props *p)
{
	switch (id) {
	case MQTT_PROP_CONTENT_TYPE: return &p->content_type;
	case MQTT_PROP_RESPONSE_TOPIC: return &p->response_topic;
	case MQTT_PROP_CORRELATION_DATA: return &p->correlation_data;
	case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER: return &p->assigned_client_identifier;
	case MQTT_PROP_AUTHENTICATION_METHOD: return &p->authentication_method;
	case MQTT_PROP_AUTHENTICATION_DATA: return &p->authentication_data;
	case MQTT_PROP_RESPONSE_INFORMATION: return &p->response_information;
	case MQTT_PROP_SERVER_REFERENCE: return &p->server_reference;
	case MQTT_PROP_REASON_STRING: return &p->reason_string;
	default: return NULL;
	}
}

static uint32_t number_field(uint8_t id, const struct mqtt_props *p)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: return p->payload_format_indicator;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: return p->message_expiry_interval;
	case MQTT_PROP_SESSION_EXPIRY_INTERVAL: return p->session_expiry_interval;
	case MQTT_PROP_SERVER_KEEP_ALIVE: return p->server_keep_alive;
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION: return p->request_problem_information;
	case MQTT_PROP_WILL_DELAY_INTERVAL: return p->will_delay_interval;
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION: return p->request_response_information;
	case MQTT_PROP_RECEIVE_MAXIMUM: return p->receive_maximum;
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: return p->topic_alias_maximum;
	case MQTT_PROP_TOPIC_ALIAS: return p->topic_alias;
	case MQTT_PROP_MAXIMUM_QOS: return p->maximum_qos;
	case MQTT_PROP_RETAIN_AVAILABLE: return p->retain_available;
	case MQTT_PROP_MAXIMUM_PACKET_SIZE: return p->maximum_packet_size;
	case MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE: return p->wildcard_subscription_available;
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE: return p->subscription_identifier_available;
	case MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE: return p->shared_subscription_available;
	default: return 0;
	}
}

static bool is_repeated(uint8_t id)
{
	return id == MQTT_PROP_USER_PROPERTY ||
	       id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
}

/*
 * The repeatable properties (user properties, subscription identifiers)
 * come from the caller's arrays, or else from the decoded raw block.
 */
static void write_repeated(struct wr *w, const struct mqtt_props *p,
			   uint8_t id)
{
	struct mqtt_prop v;
	size_t off = 0;

	if (id == MQTT_PROP_USER_PROPERTY && p->users) {
		for (size_t i = 0; i < p->user_count; i++) {
			wr_u8(w, id);
			wr_binary(w, &p->users[i].name);
			wr_binary(w, &p->users[i].value);
		}
		return;
	}
	if (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && p->subscription_ids) {
		for (size_t i = 0; i < p->subscription_id_count; i++) {
			wr_u8(w, id);
			wr_varint(w, p->subscription_ids[i]);
		}
		return;
	}
	if (!mqtt_props_has(p, id))
		return;
	if (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER && p->raw.len == 0) {
		wr_u8(w, id);
		wr_varint(w, p->subscription_id);
		return;
	}
	while (mqtt_prop_next(&p->raw, &off, &v)) {
		if (v.id != id)
			continue;
		wr_u8(w, id);
		if (id == MQTT_PROP_USER_PROPERTY) {
			wr_binary(w, &v.str);
			wr_binary(w, &v.value);
		} else {
			wr_varint(w, v.num);
		}
	}
}

void mqtt_props_write(struct wr *w, const struct mqtt_props *p)
{
	/* Visit only the properties present: most blocks hold one or two. */
	for (uint64_t bits = p->present; bits; bits &= bits - 1) {
		uint8_t id = (uint8_t)__builtin_ctzll(bits);
		const struct mqtt_bytes *s;

		if (id >= PROP_COUNT || is_repeated(id))
			continue;
		wr_u8(w, id);
		s = string_field(id, p);
		if (s) {
			wr_binary(w, s);
			continue;
		}
		switch (mqtt_prop_type_of(id)) {
		case MQTT_PT_BYTE:
			wr_u8(w, (uint8_t)number_field(id, p));
			break;
		case MQTT_PT_U16:
			wr_u16(w, (uint16_t)number_field(id, p));
			break;
		default:
			wr_u32(w, number_field(id, p));
			break;
		}
	}
	write_repeated(w, p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	write_repeated(w, p, MQTT_PROP_USER_PROPERTY);
}

size_t mqtt_props_size(const struct mqtt_props *p)
{
	struct wr w = { 0 };

	mqtt_props_write(&w, p);
	return w.bad ? SIZE_MAX : w.pos;
}
