/*
 * MQTT 3.1, 3.1.1 and 5.0 codec: framing, decoding and encoding of every
 * control packet, MQTT 5 properties, variable byte integers and UTF-8 rules.
 *
 * Pure code: no I/O, no allocation, no logging.  Decoded strings, binary
 * fields and payloads are views into the caller's input buffer, valid as long
 * as that buffer is.  Every function that can fail returns 0 or a negative
 * enum mqtt_err; mqtt_err_reason() maps each error to the MQTT 5 reason code
 * the connection layer sends.
 */
#ifndef CICADA_PROTOCOL_MQTT_H
#define CICADA_PROTOCOL_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol levels as they appear in CONNECT. */
enum {
	MQTT_V31 = 3,
	MQTT_V311 = 4,
	MQTT_V5 = 5,
};

/* Bridges set the top bit of the protocol level (mosquitto's 0x83/0x84). */
#define MQTT_LEVEL_BRIDGE_BIT 0x80

/* Control packet types (high nibble of the first byte). */
enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,
};

/* MQTT 5 reason codes (and the 3.1.1 SUBACK failure 0x80). */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED_ERROR = 0x80,
	MQTT_RC_MALFORMED_PACKET = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
	MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85,
	MQTT_RC_BAD_USER_NAME_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_IDENTIFIER_IN_USE = 0x91,
	MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
	MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.1.1 CONNACK return codes. */
enum mqtt_connack_v3 {
	MQTT_V3_CONNACK_ACCEPTED = 0,
	MQTT_V3_CONNACK_REFUSED_PROTOCOL_VERSION = 1,
	MQTT_V3_CONNACK_REFUSED_IDENTIFIER_REJECTED = 2,
	MQTT_V3_CONNACK_REFUSED_SERVER_UNAVAILABLE = 3,
	MQTT_V3_CONNACK_REFUSED_BAD_USERNAME_PASSWORD = 4,
	MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED = 5,
};

/*
 * Errors.  One code per distinct failure so tests and logs can tell them
 * apart; mqtt_err_reason() gives the reason code each one maps to.
 */
enum mqtt_err {
	MQTT_OK = 0,
	MQTT_E_INCOMPLETE = -1,       /* need more bytes (not a failure) */
	MQTT_E_VARINT = -2,           /* 0x81 variable byte integer over 4 bytes */
	MQTT_E_PACKET_TYPE = -3,      /* 0x81 type 0, or AUTH before MQTT 5 */
	MQTT_E_HEADER_FLAGS = -4,     /* 0x81 reserved fixed-header flags */
	MQTT_E_QOS = -5,              /* 0x81 QoS 3 (PUBLISH, will, options) */
	MQTT_E_DUP_QOS0 = -6,         /* 0x81 DUP set on a QoS 0 PUBLISH */
	MQTT_E_SHORT = -7,            /* 0x81 a field runs past the packet end */
	MQTT_E_TRAILING = -8,         /* 0x81 bytes left after the last field */
	MQTT_E_TOO_LARGE = -9,        /* 0x95 packet over the size limit */
	MQTT_E_UTF8 = -10,            /* 0x81 ill-formed or disallowed UTF-8 */
	MQTT_E_PROTOCOL_NAME = -11,   /* 0x84 not "MQTT" / "MQIsdp" */
	MQTT_E_PROTOCOL_VERSION = -12,/* 0x84 protocol level not 3, 4 or 5 */
	MQTT_E_CONNECT_RESERVED = -13,/* 0x81 reserved CONNECT/CONNACK flag bits */
	MQTT_E_WILL_FLAGS = -14,      /* 0x81 will QoS/retain without will */
	MQTT_E_PASSWORD_FLAG = -15,   /* 0x81 password without user (3.1.1) */
	MQTT_E_PACKET_ID = -16,       /* 0x82 packet identifier 0 */
	MQTT_E_PROP_ID = -17,         /* 0x81 unknown property identifier */
	MQTT_E_PROP_NOT_ALLOWED = -18,/* 0x81 property not valid in packet */
	MQTT_E_PROP_DUPLICATE = -19,  /* 0x82 property that may not repeat */
	MQTT_E_PROP_VALUE = -20,      /* 0x82 value out of range, wildcard in
					 Response Topic [MQTT-3.3.2-14] */
	MQTT_E_NO_TOPICS = -21,       /* 0x82 SUBSCRIBE/UNSUBSCRIBE with none */
	MQTT_E_SUB_OPTIONS = -22,     /* 0x81 reserved subscription option bits */
	MQTT_E_RETAIN_HANDLING = -23, /* 0x82 retain handling 3 */
	MQTT_E_SHARED_NO_LOCAL = -24, /* 0x82 no local on a shared subscription */
	MQTT_E_TOPIC_NAME = -25,      /* 0x90 wildcard in a topic name */
	MQTT_E_TOPIC_EMPTY = -26,     /* 0x82 empty topic without a topic alias */
	MQTT_E_TOPIC_ALIAS = -27,     /* 0x94 topic alias 0 */
	MQTT_E_REASON_CODE = -28,     /* 0x81 reason code not valid here */
	MQTT_E_NO_SPACE = -29,        /* encoder: the caller's buffer is small */
	MQTT_E_ENCODE = -30,          /* encoder: field too long for MQTT */
};

/* The reason code an error maps to (0x81 for unknown errors). */
uint8_t mqtt_err_reason(int err);
/* A short constant name for logs, e.g. "malformed varint". */
const char *mqtt_err_str(int err);
/* A short constant name for a reason code, e.g. "Protocol Error". */
const char *mqtt_rc_str(uint8_t rc);

/* A view into a buffer: strings, binary data, payloads. */
struct mqtt_bytes {
	const uint8_t *data;
	size_t len;
};

/* ---------------------------------------------------------------------- */
/* Primitives                                                             */

/* Largest value a variable byte integer holds (4 bytes). */
#define MQTT_VARINT_MAX 268435455u

/*
 * Decode a variable byte integer from buf[0..len).  On success store the
 * value and the number of bytes used.  MQTT_E_INCOMPLETE when more bytes are
 * needed, MQTT_E_VARINT past four bytes.
 */
int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value,
		       size_t *used);
/* Bytes needed to encode v (1..4); v must be <= MQTT_VARINT_MAX. */
size_t mqtt_varint_size(uint32_t v);
/* Encode v into out (room for mqtt_varint_size(v)); returns bytes written. */
size_t mqtt_varint_encode(uint32_t v, uint8_t *out);

/*
 * UTF-8 Encoded String rules [MQTT-1.5.4]: well-formed UTF-8 (no overlong
 * forms, no surrogates, nothing above U+10FFFF), no U+0000, and none of the
 * code points the spec says a receiver may reject (controls U+0001..U+001F,
 * U+007F..U+009F, non-characters).
 */
bool mqtt_utf8_is_valid(const uint8_t *s, size_t len);
/* Well-formed UTF-8 only: what Payload Format Indicator 1 promises. */
bool mqtt_utf8_is_well_formed(const uint8_t *s, size_t len);

/* ---------------------------------------------------------------------- */
/* Framing                                                                */

/*
 * Look at the start of an input buffer without consuming it.  When a whole
 * packet is present, return MQTT_OK and its total length (fixed header
 * included) in *packet_len.  MQTT_E_INCOMPLETE: not yet; *packet_len is then
 * the total length if the length field is already complete, else 0, so the
 * caller can size its buffer.  MQTT_E_VARINT, MQTT_E_PACKET_TYPE, or
 * MQTT_E_TOO_LARGE when the announced total exceeds max_size (0: no limit
 * but the protocol's), reported as soon as the length field is known.
 */
int mqtt_frame_peek(const uint8_t *buf, size_t len, uint32_t max_size,
		    size_t *packet_len);

/* ---------------------------------------------------------------------- */
/* Properties                                                             */

enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT_INDICATOR = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY_INTERVAL = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_IDENTIFIER = 0x0B,
	MQTT_PROP_SESSION_EXPIRY_INTERVAL = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTHENTICATION_METHOD = 0x15,
	MQTT_PROP_AUTHENTICATION_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFORMATION = 0x17,
	MQTT_PROP_WILL_DELAY_INTERVAL = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFORMATION = 0x19,
	MQTT_PROP_RESPONSE_INFORMATION = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER_PROPERTY = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28,
	MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE = 0x2A,
};

/* Largest Subscription Identifier (a variable byte integer, not 0). */
#define MQTT_SUBSCRIPTION_ID_MAX MQTT_VARINT_MAX

enum mqtt_prop_type {
	MQTT_PT_BYTE = 1,
	MQTT_PT_U16,
	MQTT_PT_U32,
	MQTT_PT_VARINT,
	MQTT_PT_STRING,
	MQTT_PT_BINARY,
	MQTT_PT_STRING_PAIR,
};

/* The data type of a property id, or 0 for an unknown id. */
enum mqtt_prop_type mqtt_prop_type_of(uint8_t id);
/*
 * Whether property id may appear in a packet of the given type; pass
 * MQTT_PROPS_WILL for the will properties of CONNECT.
 */
#define MQTT_PROPS_WILL 0
bool mqtt_prop_is_allowed(uint8_t id, int packet_type);

struct mqtt_user_prop {
	struct mqtt_bytes name;
	struct mqtt_bytes value;
};

/*
 * The properties of one packet.  The decoder fills the fields of the
 * properties present (the "present" bit is set for each), counts user
 * properties and subscription identifiers, and keeps the whole encoded block
 * in raw so the broker can walk the repeated ones with mqtt_prop_next() or
 * forward the block unchanged.  The encoder writes every present field, then
 * subscription_ids[0..subscription_id_count) when subscription_ids is set,
 * then users[0..user_count) when users is set.  When an array is not set
 * but its property is present, the encoder copies those properties from raw
 * (or writes the single subscription_id when raw is empty): a decoded block
 * re-encodes with its user properties, and a broker forwarding a message can
 * clear or replace single fields and keep the rest.
 */
struct mqtt_props {
	uint64_t present; /* bit (1 << id) for each property present */
	struct mqtt_bytes raw; /* encoded block, without its length field */

	uint32_t message_expiry_interval;
	uint32_t session_expiry_interval;
	uint32_t will_delay_interval;
	uint32_t maximum_packet_size;
	uint32_t subscription_id; /* the first one when several */
	uint16_t subscription_id_count;
	uint16_t server_keep_alive;
	uint16_t receive_maximum;
	uint16_t topic_alias_maximum;
	uint16_t topic_alias;
	uint16_t user_count;
	uint8_t payload_format_indicator;
	uint8_t request_problem_information;
	uint8_t request_response_information;
	uint8_t maximum_qos;
	uint8_t retain_available;
	uint8_t wildcard_subscription_available;
	uint8_t subscription_identifier_available;
	uint8_t shared_subscription_available;
	struct mqtt_bytes content_type;
	struct mqtt_bytes response_topic;
	struct mqtt_bytes correlation_data;
	struct mqtt_bytes assigned_client_identifier;
	struct mqtt_bytes authentication_method;
	struct mqtt_bytes authentication_data;
	struct mqtt_bytes response_information;
	struct mqtt_bytes server_reference;
	struct mqtt_bytes reason_string;

	const uint32_t *subscription_ids; /* encoder only */
	const struct mqtt_user_prop *users; /* encoder only */
};

static inline bool mqtt_props_has(const struct mqtt_props *p, uint8_t id)
{
	return (p->present >> id) & 1u;
}

static inline void mqtt_props_set(struct mqtt_props *p, uint8_t id)
{
	p->present |= (uint64_t)1 << id;
}

/* One decoded property, as mqtt_prop_next() yields it. */
struct mqtt_prop {
	uint8_t id;
	uint32_t num; /* byte, u16, u32, varint values */
	struct mqtt_bytes str; /* string or binary; pair: the name */
	struct mqtt_bytes value; /* pair: the value */
};

/*
 * Walk a property block that the decoder has already validated:
 * *offset starts at 0; returns true and fills *out while properties remain.
 */
bool mqtt_prop_next(const struct mqtt_bytes *raw, size_t *offset,
		    struct mqtt_prop *out);

/*
 * Decode and validate a property block (the bytes after its length) for a
 * packet type (MQTT_PROPS_WILL for will properties): known ids, allowed in
 * that packet, no forbidden repeats, values in range, UTF-8 valid.
 */
int mqtt_props_decode(const uint8_t *buf, size_t len, int packet_type,
		      struct mqtt_props *out);
/* Bytes the encoded block takes, without its length field. */
size_t mqtt_props_size(const struct mqtt_props *p);

/* ---------------------------------------------------------------------- */
/* Packets                                                                */

struct mqtt_connect {
	uint8_t protocol_level; /* 3, 4 or 5, bridge bit removed */
	bool bridge; /* level had MQTT_LEVEL_BRIDGE_BIT set */
	bool clean_start; /* Clean Session in 3.1.1 */
	bool will_flag;
	uint8_t will_qos;
	bool will_retain;
	bool username_flag;
	bool password_flag;
	uint16_t keep_alive;
	struct mqtt_props props;
	struct mqtt_bytes client_id;
	struct mqtt_props will_props;
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	struct mqtt_bytes username;
	struct mqtt_bytes password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t reason; /* 3.1.1 return code or MQTT 5 reason code */
	struct mqtt_props props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id; /* 0 for QoS 0 */
	struct mqtt_bytes topic;
	struct mqtt_props props;
	struct mqtt_bytes payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason;
	struct mqtt_props props;
};

/* Subscription options byte. */
#define MQTT_SUBOPT_QOS_MASK 0x03
#define MQTT_SUBOPT_NO_LOCAL 0x04
#define MQTT_SUBOPT_RETAIN_AS_PUBLISHED 0x08
#define MQTT_SUBOPT_RETAIN_HANDLING_SHIFT 4
#define MQTT_SUBOPT_RETAIN_HANDLING_MASK 0x30

struct mqtt_sub_entry {
	struct mqtt_bytes filter;
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE.  The decoder checks every entry and leaves the
 * list in entries; walk it with mqtt_sub_next() / mqtt_unsub_next().  The
 * encoder writes subs[0..count) (SUBSCRIBE) or filters[0..count)
 * (UNSUBSCRIBE).
 */
struct mqtt_subscribe {
	uint16_t packet_id;
	uint32_t count; /* entries: decoder counts them, encoder writes them */
	struct mqtt_props props;
	struct mqtt_bytes entries; /* decoder: the encoded list */
	const struct mqtt_sub_entry *subs; /* encoder only */
	const struct mqtt_bytes *filters; /* encoder only (UNSUBSCRIBE) */
};

bool mqtt_sub_next(const struct mqtt_bytes *entries, size_t *offset,
		   struct mqtt_sub_entry *out);
bool mqtt_unsub_next(const struct mqtt_bytes *entries, size_t *offset,
		     struct mqtt_bytes *filter);

/* SUBACK and UNSUBACK: one reason code per entry (none in 3.1.1 UNSUBACK). */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct mqtt_bytes reasons;
};

/* DISCONNECT and AUTH. */
struct mqtt_disconnect {
	uint8_t reason;
	struct mqtt_props props;
};

struct mqtt_packet {
	uint8_t type; /* enum mqtt_type */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack; /* PUBACK PUBREC PUBREL PUBCOMP */
		struct mqtt_subscribe subscribe; /* and UNSUBSCRIBE */
		struct mqtt_suback suback; /* and UNSUBACK */
		struct mqtt_disconnect disconnect; /* and AUTH */
	} u;
};

/*
 * Decode one complete packet buf[0..len), as mqtt_frame_peek() delimited it.
 * version is the connection's protocol level (ignored for CONNECT, whose
 * level is in the packet).  Every field is checked against the bytes that
 * remain; *out points into buf.  On MQTT_E_PROTOCOL_NAME and
 * MQTT_E_PROTOCOL_VERSION, out->u.connect.protocol_level still holds the
 * level byte received (bridge bit removed), so the caller can answer with a
 * CONNACK the client understands.  Topic filter syntax is not checked here:
 * the broker answers each bad filter in SUBACK/UNSUBACK.
 */
int mqtt_decode(const uint8_t *buf, size_t len, uint8_t version,
		struct mqtt_packet *out);

/*
 * Total encoded size of pkt for protocol level version, or 0 when a field
 * cannot be encoded (too long, a remaining length over MQTT_VARINT_MAX).
 */
size_t mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version);
/*
 * Encode pkt into buf[0..cap).  Returns the bytes written, or MQTT_E_NO_SPACE
 * / MQTT_E_ENCODE.  Does not allocate.
 */
int mqtt_encode(const struct mqtt_packet *pkt, uint8_t version, uint8_t *buf,
		size_t cap);

/*
 * PUBLISH without its payload, for writev with a shared payload: write the
 * fixed header, topic, packet id (when qos > 0) and properties of pub into
 * buf, sized for pub->payload.len bytes to follow.  Returns the header
 * length or a negative error.  When qos > 0, *packet_id_offset (if not
 * NULL) gets the offset of the packet id so a header encoded once can be
 * reused with mqtt_publish_set_packet_id() for each subscriber.
 */
int mqtt_encode_publish_header(const struct mqtt_publish *pub, uint8_t version,
			       uint8_t *buf, size_t cap,
			       size_t *packet_id_offset);
/* Size mqtt_encode_publish_header() needs, or 0 if it cannot be encoded. */
size_t mqtt_publish_header_size(const struct mqtt_publish *pub,
				uint8_t version);

static inline void mqtt_publish_set_packet_id(uint8_t *hdr, size_t offset,
					      uint16_t packet_id)
{
	hdr[offset] = (uint8_t)(packet_id >> 8);
	hdr[offset + 1] = (uint8_t)packet_id;
}

#endif
