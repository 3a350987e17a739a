/*
 * PUBLISH from a client, and the four acknowledgements of the QoS 1 and 2
 * flows in both directions [MQTT-4.3].  A message is built once here and
 * shared by every subscriber; a QoS 2 message is routed once, on its first
 * PUBLISH, and its packet id remembered until PUBREL [MQTT-4.3.3-2].
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "protocol/topic.h"

/* Properties forwarded with the message; the rest are per hop. */
static bool is_forwarded(uint8_t id)
{
	switch (id) {
	case MQTT_PROP_TOPIC_ALIAS:
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: /* recomputed on send */
	case MQTT_PROP_WILL_DELAY_INTERVAL:
		return false;
	default:
		return true;
	}
}

struct msg *msg_from_publish(struct shard *sh, const struct mqtt_bytes *topic,
			     const struct mqtt_bytes *payload,
			     const struct mqtt_props *props, uint8_t qos,
			     bool retain, const void *origin)
{
	uint8_t *kept = NULL;
	size_t kept_len = 0, off = 0, prev = 0;
	struct mqtt_prop v;
	struct msg *msg;

	if (props->raw.len) {
		kept = malloc(props->raw.len);
		if (!kept)
			return NULL;
		while (mqtt_prop_next(&props->raw, &off, &v)) {
			if (is_forwarded(v.id)) {
				memcpy(kept + kept_len, props->raw.data + prev,
				       off - prev);
				kept_len += off - prev;
			}
			prev = off;
		}
	}
	msg = msg_new((const char *)topic->data, topic->len, payload->data,
		      payload->len, kept, kept_len, qos, retain);
	free(kept);
	if (!msg)
		return NULL;
	msg->origin = origin;
	if (mqtt_props_has(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		msg->expiry_at = shard_now_ms(sh) +
				 (uint64_t)props->message_expiry_interval * 1000u;
	return msg;
}

bool handle_topic_within_limits(const struct conn *c, const char *topic,
				size_t len)
{
	const struct broker_limits *lim = &c->shard->broker->limits;

	if (lim->max_topic_length && len > lim->max_topic_length)
		return false;
	return !lim->max_topic_levels ||
	       topic_level_count(topic, len) <= lim->max_topic_levels;
}

/* An acknowledgement; why (may be NULL) is its MQTT 5 Reason String. */
static int send_ack_why(struct conn *c, uint8_t type, uint16_t packet_id,
			uint8_t reason, const char *why)
{
	struct mqtt_packet pkt = { .type = type };

	pkt.u.ack.packet_id = packet_id;
	pkt.u.ack.reason = c->version == MQTT_V5 ? reason : 0;
	if (reason)
		conn_set_reason(&pkt.u.ack.props, why);
	conn_send(c, &pkt);
	return 0;
}

static int send_ack(struct conn *c, uint8_t type, uint16_t packet_id,
		    uint8_t reason)
{
	return send_ack_why(c, type, packet_id, reason, NULL);
}

/*
 * Topic Alias [MQTT-3.3.2.3.4]: a name with an alias sets it, an empty
 * name with an alias uses it.  Returns 0 or a reason code.
 */
static int resolve_alias(struct conn *c, struct mqtt_publish *p)
{
	uint16_t alias = p->props.topic_alias;
	char *copy;

	if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return 0;
	if (alias > c->topic_alias_max_in) /* [MQTT-3.3.2-9] */
		return conn_why(c, MQTT_RC_TOPIC_ALIAS_INVALID,
				"topic alias %u is above the maximum %u", alias,
				c->topic_alias_max_in);
	if (!conn_alias_tables(c))
		return conn_why(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
	if (p->topic.len == 0) {
		const char *t = c->topic_aliases[alias];

		if (!t)
			return conn_why(c, MQTT_RC_PROTOCOL_ERROR,
					"topic alias %u is not set on this connection",
					alias);
		p->topic.data = (const uint8_t *)t;
		p->topic.len = strlen(t);
		return 0;
	}
	copy = strndup((const char *)p->topic.data, p->topic.len);
	if (!copy)
		return conn_why(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
	free(c->topic_aliases[alias]);
	c->topic_aliases[alias] = copy;
	return 0;
}

/*
 * Storage has failed and this message needed it (a durable subscriber, the
 * retained store): it was delivered from memory, but saying it is stored
 * would be a lie.  MQTT 5 says so in the ack (which ends a QoS 2 flow);
 * 3.1.1 has no way to, so the connection closes unacknowledged and the
 * client resends it later.
 */
static int refuse_unstored(struct conn *c, const struct mqtt_publish *p,
			   uint8_t ack)
{
	static const char why[] =
		"persistent storage failed: the message could not be saved";

	if (c->version != MQTT_V5)
		return conn_why(c, MQTT_RC_UNSPECIFIED_ERROR, "%s", why);
	if (p->qos == 2)
		session_qos2_remove(c->session, p->packet_id);
	return send_ack_why(c, ack, p->packet_id, MQTT_RC_UNSPECIFIED_ERROR,
			    why);
}

int handle_publish(struct conn *c, struct mqtt_publish *p)
{
	struct shard *sh = c->shard;
	struct broker *b = sh->broker;
	struct session *s = c->session;
	uint8_t ack = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC;
	struct msg *msg;
	struct persist_mark mark;
	bool qos2_failed;
	int rc;

	/* [MQTT-3.3.4-6]: identifiers are the server's to send. */
	if (mqtt_props_has(&p->props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER))
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR,
				"Subscription Identifier in a PUBLISH from a client");
	rc = resolve_alias(c, p);
	if (rc)
		return rc;
	if (!handle_topic_within_limits(c, (const char *)p->topic.data,
					p->topic.len))
		return conn_why(c, MQTT_RC_TOPIC_NAME_INVALID,
				"topic name above max_topic_length or max_topic_levels");
	sh->stats.msgs_received++;
	if (p->retain && !b->limits.retain_available) /* [MQTT-3.3.1-8] */
		return conn_why(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
				"retain is not available");
	if (p->qos > b->limits.max_qos) /* [MQTT-3.2.2-11] */
		return conn_why(c, MQTT_RC_QOS_NOT_SUPPORTED,
				"QoS %u is above max_qos %u", p->qos,
				b->limits.max_qos);
	if (p->qos == 2 && session_qos2_has(s, p->packet_id))
		return send_ack(c, MQTT_PUBREC, p->packet_id, 0); /* resent */
	/* [MQTT-3.3.4-7] */
	if (p->qos == 2 && s->qos2_in_count >= c->qos2_quota)
		return conn_why(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
				"more than %u QoS 2 messages unacknowledged",
				c->qos2_quota);
	if (mqtt_props_has(&p->props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) &&
	    p->props.payload_format_indicator == 1 &&
	    !mqtt_utf8_is_well_formed(p->payload.data, p->payload.len)) {
		static const char bad_utf8[] =
			"payload is not valid UTF-8 (Payload Format Indicator 1)";

		/* The spec lets us refuse it [MQTT-3.3.2-4 ff.]. */
		if (p->qos == 0)
			return conn_why(c, MQTT_RC_PAYLOAD_FORMAT_INVALID, "%s",
					bad_utf8);
		return send_ack_why(c, ack, p->packet_id,
				    MQTT_RC_PAYLOAD_FORMAT_INVALID, bad_utf8);
	}
	msg = msg_from_publish(sh, &p->topic, &p->payload, &p->props, p->qos,
			       p->retain, s);
	if (!msg) {
		sh->stats.publish_dropped++;
		if (p->qos == 0)
			return 0;
		return send_ack_why(c, ack, p->packet_id,
				    MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
	}
	mark = persist_mark(b);
	/*
	 * A QoS 2 packet id is stored with the message and its deliveries,
	 * in one transaction: a restart that knows the id (and so answers
	 * a resent PUBLISH with PUBREC alone) knows the message, and one
	 * that knows the message knows the id (no second copy).  A local
	 * group: a publish that stores nothing takes no storage lock.
	 */
	persist_local_group_begin(b);
	if (p->qos && b->shard_count > 1 && persist_is_strict(b)) {
		/* Acknowledged once every shard has recorded its part. */
		msg->confirm_from = (uint8_t)(sh->index + 1);
		if (p->qos == 2) {
			/* Closed by the last shard (route_confirm()). */
			msg->confirm_group = true;
			persist_group_begin(b);
		}
		conn_wait_confirm(c, msg);
	}
	rc = route_message(sh, msg) ? 0 : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	msg_unref(msg);
	qos2_failed = p->qos == 2 && session_qos2_add(s, p->packet_id) < 0;
	persist_local_group_end(b);
	if (qos2_failed)
		return send_ack_why(c, ack, p->packet_id,
				    MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
	if (p->qos && persist_lost_since(b, &mark))
		return refuse_unstored(c, p, ack);
	if (p->qos)
		send_ack_why(c, ack, p->packet_id, (uint8_t)rc,
			     "no subscription matches the topic");
	return 0;
}

int handle_ack(struct conn *c, int type, const struct mqtt_ack *p)
{
	struct session *s = c->session;

	switch (type) {
	case MQTT_PUBACK:
	case MQTT_PUBCOMP:
		/* An unknown id is a late duplicate: nothing to do. */
		session_ack(s, p->packet_id, type);
		return 0;
	case MQTT_PUBREC:
		if (p->reason >= 0x80) {
			/* Refused: the flow ends here [MQTT-4.3.3-4 ff.]. */
			session_ack(s, p->packet_id, SESSION_PUBREC_REFUSED);
			return 0;
		}
		if (!session_ack(s, p->packet_id, MQTT_PUBREC))
			send_ack_why(c, MQTT_PUBREL, p->packet_id,
				     MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND,
				     "no QoS 2 message in flight with this packet identifier");
		return 0;
	default: /* PUBREL */
		if (!session_qos2_remove(s, p->packet_id))
			return send_ack_why(c, MQTT_PUBCOMP, p->packet_id,
					    MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND,
					    "no QoS 2 message received with this packet identifier");
		return send_ack(c, MQTT_PUBCOMP, p->packet_id, 0);
	}
}
