/*
 * CONNECT: client identifier rules, authentication, keep alive, the will,
 * session take-over and resumption, and the CONNACK that tells the client
 * what it got [MQTT-3.1.4].  Refusals are answered here with the code the
 * client's protocol version has for them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/listener.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/redirect.h"
#include "broker/session.h"
#include "broker/shard.h"

/* MQTT 5 reason -> 3.1.1 return code, for the refusals we make. */
static uint8_t v3_code(uint8_t reason)
{
	switch (reason) {
	case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
		return MQTT_V3_CONNACK_REFUSED_PROTOCOL_VERSION;
	case MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
		return MQTT_V3_CONNACK_REFUSED_IDENTIFIER_REJECTED;
	case MQTT_RC_BAD_USER_NAME_OR_PASSWORD:
		return MQTT_V3_CONNACK_REFUSED_BAD_USERNAME_PASSWORD;
	case MQTT_RC_NOT_AUTHORIZED:
		return MQTT_V3_CONNACK_REFUSED_NOT_AUTHORIZED;
	default:
		return MQTT_V3_CONNACK_REFUSED_SERVER_UNAVAILABLE;
	}
}

/*
 * Refuse with a CONNACK, why as its Reason String in MQTT 5; returns the
 * reason so the caller closes.
 */
static int refuse(struct conn *c, uint8_t reason, const char *why)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNACK };

	pkt.u.connack.reason = c->version == MQTT_V5 ? reason : v3_code(reason);
	conn_set_reason(&pkt.u.connack.props, why);
	conn_send(c, &pkt);
	conn_log(LOGL_NOTICE, c, "connection refused: %s", why);
	return reason;
}

static bool client_id_is_acceptable(const struct conn *c,
				    const struct mqtt_connect *p)
{
	size_t max = c->shard->broker->limits.max_client_id_length;

	if (max && p->client_id.len > max)
		return false;
	/* 3.1 allowed 1 to 23 bytes [MQTT 3.1 section 3.1]. */
	if (p->protocol_level == MQTT_V31)
		return p->client_id.len >= 1 && p->client_id.len <= 23;
	/* 3.1.1: an empty id only with a clean session [MQTT-3.1.3-8]. */
	if (p->client_id.len == 0 && p->protocol_level == MQTT_V311)
		return p->clean_start;
	return true;
}

/* Build the will message now; it is sent if the connection is lost. */
static int prepare_will(struct conn *c, const struct mqtt_connect *p)
{
	const struct broker_limits *lim = &c->shard->broker->limits;

	if (!p->will_flag)
		return 0;
	if (p->will_retain && !lim->retain_available)
		return MQTT_RC_RETAIN_NOT_SUPPORTED; /* [MQTT-3.2.2-13] */
	if (p->will_qos > lim->max_qos)
		return MQTT_RC_QOS_NOT_SUPPORTED; /* [MQTT-3.2.2-12] */
	c->will = malloc(sizeof(*c->will));
	if (!c->will)
		return MQTT_RC_SERVER_UNAVAILABLE;
	c->will->msg = msg_from_publish(c->shard, &p->will_topic,
					&p->will_payload, &p->will_props,
					p->will_qos, p->will_retain, NULL);
	if (!c->will->msg) {
		free(c->will);
		c->will = NULL;
		return MQTT_RC_SERVER_UNAVAILABLE;
	}
	c->will->delay = p->will_props.will_delay_interval;
	c->will->expiry = p->will_props.message_expiry_interval;
	c->will->msg->expiry_at = 0; /* set when it is published */
	return 0;
}

/* Find, take over, or create the session; *present as CONNACK says. */
static struct session *attach_session(struct conn *c,
				      const struct mqtt_connect *p,
				      bool *present)
{
	struct session *s = session_find(c->shard, c->client_id,
					 strlen(c->client_id));

	*present = false;
	if (s && s->conn) {
		struct conn *old = s->conn;

		/* [MQTT-3.1.4-3]: the existing connection is closed. */
		old->session = NULL;
		s->conn = NULL;
		/* The session goes on: a delayed will is not due [MQTT-3.1.3-9]. */
		if (old->will && old->will->delay && !p->clean_start)
			old->will_suppressed = true;
		conn_close(old, MQTT_RC_SESSION_TAKEN_OVER,
			   "session taken over by a new connection");
	}
	if (s && p->clean_start) {
		session_destroy(s);
		s = NULL;
	}
	if (s) {
		*present = true;
		session_cancel_will(s);
	} else {
		s = session_new(c->shard, c->client_id, strlen(c->client_id));
		if (!s)
			return NULL;
	}
	s->conn = c;
	s->version = p->protocol_level;
	c->session = s;
	/* One copy of the id per client: the session's. */
	free(c->client_id);
	c->client_id = s->client_id;
	c->client_id_borrowed = true;
	if (p->protocol_level == MQTT_V5)
		s->expiry_interval = p->props.session_expiry_interval;
	else
		s->expiry_interval = p->clean_start ? 0 : UINT32_MAX;
	/* Before the CONNACK that reports it goes out. */
	persist_session(s);
	return s;
}

static void fill_connack_props(struct conn *c, const struct mqtt_connect *p,
			       bool assigned, uint16_t server_keep_alive,
			       struct mqtt_props *out)
{
	const struct broker_limits *lim = &c->shard->broker->limits;

	if (assigned) {
		out->assigned_client_identifier.data =
			(const uint8_t *)c->client_id;
		out->assigned_client_identifier.len = strlen(c->client_id);
		mqtt_props_set(out, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
	}
	if (server_keep_alive != p->keep_alive) {
		out->server_keep_alive = server_keep_alive;
		mqtt_props_set(out, MQTT_PROP_SERVER_KEEP_ALIVE);
	}
	if (lim->topic_alias_maximum) {
		out->topic_alias_maximum = lim->topic_alias_maximum;
		mqtt_props_set(out, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	}
	if (lim->max_packet_size) {
		out->maximum_packet_size = lim->max_packet_size;
		mqtt_props_set(out, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	}
	if (!lim->retain_available) {
		out->retain_available = 0;
		mqtt_props_set(out, MQTT_PROP_RETAIN_AVAILABLE);
	}
	if (lim->max_qos < 2) { /* [MQTT-3.2.2-9] */
		out->maximum_qos = lim->max_qos;
		mqtt_props_set(out, MQTT_PROP_MAXIMUM_QOS);
	}
	/* Only when asked for [MQTT-3.1.2-28]. */
	if (p->props.request_response_information == 1 &&
	    c->shard->broker->response_information) {
		const char *ri = c->shard->broker->response_information;

		out->response_information.data = (const uint8_t *)ri;
		out->response_information.len = strlen(ri);
		mqtt_props_set(out, MQTT_PROP_RESPONSE_INFORMATION);
	}
}

int handle_connect(struct conn *c, const struct mqtt_connect *p,
		   const uint8_t *raw, size_t raw_len)
{
	struct broker *b = c->shard->broker;
	const struct broker_limits *lim = &b->limits;
	struct mqtt_bytes auth_data;
	const char *why = "not authorized";
	int rc;

	c->version = p->protocol_level;
	/* Known before any answer, a refusal included [MQTT-3.2.2-19]. */
	c->max_packet_out = p->props.maximum_packet_size;
	c->request_problem_info = !mqtt_props_has(&p->props,
				MQTT_PROP_REQUEST_PROBLEM_INFORMATION) ||
		p->props.request_problem_information;
	if (!client_id_is_acceptable(c, p))
		return refuse(c, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
			      "client identifier not valid");
	if (p->client_id.len == 0) {
		/* [MQTT-3.1.3-6]: we pick a unique one. */
		char id[40];
		int len;

		/*
		 * Never one a session already has: a client may have chosen
		 * it, or a restart restored it while the count began again.
		 */
		do
			len = snprintf(id, sizeof(id), "cicada-%016" PRIx64,
				       (uint64_t)atomic_fetch_add(
					       &b->next_client_number, 1) + 1);
		while (shard_of_client(b, id, (size_t)len) != c->shard->index ||
		       session_find(c->shard, id, (size_t)len));
		c->client_id = strdup(id);
	} else {
		c->client_id = strndup((const char *)p->client_id.data,
				       p->client_id.len);
	}
	if (!c->client_id)
		return refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	if (p->protocol_level != MQTT_V5 && lim->max_keepalive &&
	    p->keep_alive > lim->max_keepalive)
		return refuse(c, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
			      "keep alive above max_keepalive");
	/* Password file, or an enhanced authentication exchange [4.12]. */
	rc = handle_auth_connect(c, p, raw, raw_len, &auth_data, &why);
	if (rc == MQTT_RC_CONTINUE_AUTHENTICATION)
		return 0; /* CONNACK when the exchange ends (handle_auth.c) */
	if (rc)
		return refuse(c, (uint8_t)rc, why);
	rc = handle_connect_accept(c, p, &auth_data);
	if (c->auth)
		auth_conn_end_exchange(c->auth);
	return rc;
}

int handle_connect_accept(struct conn *c, const struct mqtt_connect *p,
			  const struct mqtt_bytes *auth_data)
{
	struct broker *b = c->shard->broker;
	const struct broker_limits *lim = &b->limits;
	struct mqtt_packet ack = { .type = MQTT_CONNACK };
	uint16_t keep_alive = p->keep_alive;
	bool assigned = p->client_id.len == 0 &&
			p->protocol_level == MQTT_V5;
	bool present;
	struct session *s;
	int rc;

	/* [4.11] Sent elsewhere before any session is touched. */
	rc = redirect_connect(c);
	if (rc)
		return rc;
	if (lim->max_keepalive && keep_alive > lim->max_keepalive)
		keep_alive = lim->max_keepalive; /* [MQTT-3.2.2-21] */
	rc = prepare_will(c, p);
	if (rc)
		return refuse(c, (uint8_t)rc,
			      rc == MQTT_RC_RETAIN_NOT_SUPPORTED ?
			      "will retain is set but retain is not available" :
			      "out of memory");

	/* Storage failed: no new durable state rather than a false promise. */
	if (persist_failed(b) &&
	    (p->protocol_level == MQTT_V5 ?
		     p->props.session_expiry_interval != 0 : !p->clean_start))
		return refuse(c, MQTT_RC_QUOTA_EXCEEDED,
			      "persistent storage failed: no durable sessions");
	s = attach_session(c, p, &present);
	if (!s)
		return refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	s->inflight_max = lim->max_inflight_messages ?
		lim->max_inflight_messages : UINT16_MAX;
	if (mqtt_props_has(&p->props, MQTT_PROP_RECEIVE_MAXIMUM) &&
	    p->props.receive_maximum < s->inflight_max)
		s->inflight_max = p->props.receive_maximum;
	/* [MQTT-3.1.2-26, MQTT-3.3.2-11]: never an alias above the client's maximum. */
	c->topic_alias_max_out = 0;
	if (p->protocol_level == MQTT_V5)
		c->topic_alias_max_out =
			p->props.topic_alias_maximum < CONN_TOPIC_ALIASES_OUT ?
			p->props.topic_alias_maximum : CONN_TOPIC_ALIASES_OUT;
	c->topic_alias_max_in = p->protocol_level == MQTT_V5 ?
		lim->topic_alias_maximum : 0;
	c->qos2_quota = UINT16_MAX;
	/* [MQTT-3.1.2-24]: one and a half times the keep alive. */
	c->timeout = keep_alive ? (float)keep_alive * 1.5f : 0;
	c->last_activity = shard_now(c->shard);
	shard_watch_timeout(c->shard, c);

	c->state = CONN_ACTIVE;
	broker_client_connected(b);
	ack.u.connack.session_present = present;
	if (p->protocol_level == MQTT_V5)
		fill_connack_props(c, p, assigned, keep_alive,
				   &ack.u.connack.props);
	if (c->auth && c->auth->mech) {
		/* [MQTT-4.12.0-5]: the method again, and the final data. */
		struct mqtt_props *pr = &ack.u.connack.props;

		pr->authentication_method.data =
			(const uint8_t *)c->auth->mech->name;
		pr->authentication_method.len = strlen(c->auth->mech->name);
		mqtt_props_set(pr, MQTT_PROP_AUTHENTICATION_METHOD);
		if (auth_data && auth_data->len) {
			pr->authentication_data = *auth_data;
			mqtt_props_set(pr, MQTT_PROP_AUTHENTICATION_DATA);
		}
	}
	conn_send(c, &ack);
	conn_log(LOGL_NOTICE, c,
		 "connected: protocol %s, clean %s, keep alive %u, session %s%s%s%s",
		 p->protocol_level == MQTT_V5 ? "5.0" :
		 p->protocol_level == MQTT_V311 ? "3.1.1" : "3.1",
		 p->clean_start ? "yes" : "no", keep_alive,
		 present ? "resumed" : "new", p->will_flag ? ", will" : "",
		 c->auth && c->auth->user ? ", user " : "",
		 c->auth && c->auth->user ? c->auth->user : "");
	if (present)
		session_resend_inflight(s);
	session_pump(s);
	return 0;
}
