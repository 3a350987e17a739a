/*
 * Error codes and reason codes: the one place that says which MQTT 5 reason
 * code each codec error becomes, which reason codes each packet may carry,
 * and the names logs print for both.
 */
#include "mqtt_int.h"

struct err_info {
	uint8_t reason;
	const char *name;
};

/* Indexed by -err. */
static const struct err_info err_table[] = {
	[0] = { MQTT_RC_SUCCESS, "ok" },
	[-MQTT_E_INCOMPLETE] = { MQTT_RC_SUCCESS, "incomplete" },
	[-MQTT_E_VARINT] = { MQTT_RC_MALFORMED_PACKET, "malformed variable byte integer" },
	[-MQTT_E_PACKET_TYPE] = { MQTT_RC_MALFORMED_PACKET, "invalid packet type" },
	[-MQTT_E_HEADER_FLAGS] = { MQTT_RC_MALFORMED_PACKET, "reserved fixed header flags set" },
	[-MQTT_E_QOS] = { MQTT_RC_MALFORMED_PACKET, "invalid QoS 3" },
	[-MQTT_E_DUP_QOS0] = { MQTT_RC_MALFORMED_PACKET, "DUP set on QoS 0" },
	[-MQTT_E_SHORT] = { MQTT_RC_MALFORMED_PACKET, "field runs past packet end" },
	[-MQTT_E_TRAILING] = { MQTT_RC_MALFORMED_PACKET, "bytes after last field" },
	[-MQTT_E_TOO_LARGE] = { MQTT_RC_PACKET_TOO_LARGE, "packet too large" },
	[-MQTT_E_UTF8] = { MQTT_RC_MALFORMED_PACKET, "invalid UTF-8 string" },
	[-MQTT_E_PROTOCOL_NAME] = { MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "unknown protocol name" },
	[-MQTT_E_PROTOCOL_VERSION] = { MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol level" },
	[-MQTT_E_CONNECT_RESERVED] = { MQTT_RC_MALFORMED_PACKET, "reserved connect flag set" },
	[-MQTT_E_WILL_FLAGS] = { MQTT_RC_MALFORMED_PACKET, "will QoS or retain without will" },
	[-MQTT_E_PASSWORD_FLAG] = { MQTT_RC_MALFORMED_PACKET, "password without user name" },
	[-MQTT_E_PACKET_ID] = { MQTT_RC_PROTOCOL_ERROR, "packet identifier 0" },
	[-MQTT_E_PROP_ID] = { MQTT_RC_MALFORMED_PACKET, "unknown property" },
	[-MQTT_E_PROP_NOT_ALLOWED] = { MQTT_RC_MALFORMED_PACKET, "property not allowed in packet" },
	[-MQTT_E_PROP_DUPLICATE] = { MQTT_RC_PROTOCOL_ERROR, "duplicate property" },
	[-MQTT_E_PROP_VALUE] = { MQTT_RC_PROTOCOL_ERROR, "invalid property value" },
	[-MQTT_E_NO_TOPICS] = { MQTT_RC_PROTOCOL_ERROR, "no topic filters" },
	[-MQTT_E_SUB_OPTIONS] = { MQTT_RC_MALFORMED_PACKET, "reserved subscription option bits" },
	[-MQTT_E_RETAIN_HANDLING] = { MQTT_RC_PROTOCOL_ERROR, "retain handling 3" },
	[-MQTT_E_SHARED_NO_LOCAL] = { MQTT_RC_PROTOCOL_ERROR, "no local on shared subscription" },
	[-MQTT_E_TOPIC_NAME] = { MQTT_RC_TOPIC_NAME_INVALID, "invalid topic name" },
	[-MQTT_E_TOPIC_EMPTY] = { MQTT_RC_PROTOCOL_ERROR, "empty topic without topic alias" },
	[-MQTT_E_TOPIC_ALIAS] = { MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias 0" },
	[-MQTT_E_REASON_CODE] = { MQTT_RC_MALFORMED_PACKET, "invalid reason code" },
	[-MQTT_E_NO_SPACE] = { MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR, "encode buffer too small" },
	[-MQTT_E_ENCODE] = { MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR, "field too long to encode" },
};

#define ERR_COUNT (sizeof(err_table) / sizeof(err_table[0]))

/* Negate only in range: -INT_MIN would overflow. */
static bool err_is_known(int err)
{
	return err <= 0 && err > -(int)ERR_COUNT;
}

uint8_t mqtt_err_reason(int err)
{
	if (!err_is_known(err))
		return MQTT_RC_MALFORMED_PACKET;
	return err_table[-err].reason;
}

const char *mqtt_err_str(int err)
{
	if (!err_is_known(err))
		return "unknown error";
	return err_table[-err].name;
}

const char *mqtt_rc_str(uint8_t rc)
{
	switch (rc) {
	case 0x00: return "Success";
	case 0x01: return "Granted QoS 1";
	case 0x02: return "Granted QoS 2";
	case 0x04: return "Disconnect with Will Message";
	case 0x10: return "No matching subscribers";
	case 0x11: return "No subscription existed";
	case 0x18: return "Continue authentication";
	case 0x19: return "Re-authenticate";
	case 0x80: return "Unspecified error";
	case 0x81: return "Malformed Packet";
	case 0x82: return "Protocol Error";
	case 0x83: return "Implementation specific error";
	case 0x84: return "Unsupported Protocol Version";
	case 0x85: return "Client Identifier not valid";
	case 0x86: return "Bad User Name or Password";
	case 0x87: return "Not authorized";
	case 0x88: return "Server unavailable";
	case 0x89: return "Server busy";
	case 0x8A: return "Banned";
	case 0x8B: return "Server shutting down";
	case 0x8C: return "Bad authentication method";
	case 0x8D: return "Keep Alive timeout";
	case 0x8E: return "Session taken over";
	case 0x8F: return "Topic Filter invalid";
	case 0x90: return "Topic Name invalid";
	case 0x91: return "Packet Identifier in use";
	case 0x92: return "Packet Identifier not found";
	case 0x93: return "Receive Maximum exceeded";
	case 0x94: return "Topic Alias invalid";
	case 0x95: return "Packet too large";
	case 0x96: return "Message rate too high";
	case 0x97: return "Quota exceeded";
	case 0x98: return "Administrative action";
	case 0x99: return "Payload format invalid";
	case 0x9A: return "Retain not supported";
	case 0x9B: return "QoS not supported";
	case 0x9C: return "Use another server";
	case 0x9D: return "Server moved";
	case 0x9E: return "Shared Subscriptions not supported";
	case 0x9F: return "Connection rate exceeded";
	case 0xA0: return "Maximum connect time";
	case 0xA1: return "Subscription Identifiers not supported";
	case 0xA2: return "Wildcard Subscriptions not supported";
	default: return "Unknown reason code";
	}
}

/*
 * Reason codes each MQTT 5 packet may carry (MQTT 5.0 section 2.4 and each
 * packet's reason code table).  Only decoders of acks consult these.
 */
static bool rc_in(const uint8_t *list, size_t n, uint8_t rc)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == rc)
			return true;
	return false;
}

static const uint8_t rc_connack[] = {
	0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
};
static const uint8_t rc_puback[] = {
	0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99,
};
static const uint8_t rc_pubrel[] = { 0x00, 0x92 };
static const uint8_t rc_suback[] = {
	0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
};
static const uint8_t rc_unsuback[] = {
	0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91,
};
static const uint8_t rc_disconnect[] = {
	0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
	0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B,
	0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
};
static const uint8_t rc_auth[] = { 0x00, 0x18, 0x19 };

#define RC_IN(list, rc) rc_in(list, sizeof(list), rc)

bool mqtt_rc_is_valid_for(int packet_type, uint8_t rc)
{
	switch (packet_type) {
	case MQTT_CONNACK:
		return RC_IN(rc_connack, rc);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
		return RC_IN(rc_puback, rc);
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return RC_IN(rc_pubrel, rc);
	case MQTT_SUBACK:
		return RC_IN(rc_suback, rc);
	case MQTT_UNSUBACK:
		return RC_IN(rc_unsuback, rc);
	case MQTT_DISCONNECT:
		return RC_IN(rc_disconnect, rc);
	case MQTT_AUTH:
		return RC_IN(rc_auth, rc);
	default:
		return false;
	}
}
