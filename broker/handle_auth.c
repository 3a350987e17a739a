/*
 * Who may connect, and AUTH [MQTT-4.12]: the CONNECT's user name and
 * password against the listener's password file, the enhanced
 * authentication exchange between CONNECT and CONNACK (state CONN_AUTH),
 * and re-authentication after CONNACK (AUTH 0x19).  The mechanisms
 * themselves are in auth.c.
 *
 * Reason codes: an unknown method is 0x8C Bad authentication method
 * [MQTT-4.12.0-1]; a failed exchange is 0x87 Not authorized (CONNACK
 * before, DISCONNECT after CONNACK [MQTT-4.12.0-4, MQTT-4.12.1-2]); an
 * AUTH with another method, a reason the client may not send, an AUTH
 * without enhanced authentication in CONNECT [MQTT-4.12.0-7] or any
 * packet but AUTH and DISCONNECT before CONNACK [MQTT-3.1.2-30] is 0x82
 * Protocol Error.  A wrong CONNECT password is 0x86 (3.1.1: 4), no user
 * name where one is needed 0x87 (3.1.1: 5).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/listener.h"
#include "broker/shard.h"

static struct auth_db *conn_db(const struct conn *c)
{
	return c->listener ? c->listener->passwd : NULL;
}

static struct auth_conn *auth_conn_get(struct conn *c)
{
	if (!c->auth)
		c->auth = calloc(1, sizeof(*c->auth));
	return c->auth;
}

/* AUTH with our method and, when there is one, the data. */
static void send_auth(struct conn *c, uint8_t reason,
		      const struct auth_mech *m, const uint8_t *data,
		      size_t len)
{
	struct mqtt_packet pkt = { .type = MQTT_AUTH };
	struct mqtt_props *pr = &pkt.u.disconnect.props;

	pkt.u.disconnect.reason = reason;
	pr->authentication_method.data = (const uint8_t *)m->name;
	pr->authentication_method.len = strlen(m->name);
	mqtt_props_set(pr, MQTT_PROP_AUTHENTICATION_METHOD);
	if (len) {
		pr->authentication_data.data = data;
		pr->authentication_data.len = len;
		mqtt_props_set(pr, MQTT_PROP_AUTHENTICATION_DATA);
	}
	conn_send(c, &pkt);
}

/* [MQTT-4.12.0-5, MQTT-4.12.1-1]: every AUTH names the CONNECT's method. */
static bool method_matches(const struct auth_conn *a,
			   const struct mqtt_props *props)
{
	const struct mqtt_bytes *m = &props->authentication_method;

	return mqtt_props_has(props, MQTT_PROP_AUTHENTICATION_METHOD) &&
	       m->len == strlen(a->mech->name) &&
	       memcmp(m->data, a->mech->name, m->len) == 0;
}

static int start_enhanced(struct conn *c, const struct mqtt_connect *p,
			  const uint8_t *raw, size_t raw_len,
			  struct mqtt_bytes *out, const char **why)
{
	const struct mqtt_bytes *name = &p->props.authentication_method;
	const struct mqtt_bytes *in = &p->props.authentication_data;
	const struct auth_mech *m = auth_mech_find(name->data, name->len);
	struct auth_db *db = conn_db(c);
	struct auth_conn *a;
	enum auth_step st;

	/* Without a password file there is nothing to check SCRAM against. */
	if (!m || !db) {
		*why = "unsupported authentication method";
		return MQTT_RC_BAD_AUTHENTICATION_METHOD; /* [MQTT-4.12.0-1] */
	}
	a = auth_conn_get(c);
	if (!a) {
		*why = "out of memory";
		return MQTT_RC_SERVER_UNAVAILABLE;
	}
	a->mech = m;
	st = m->start(&a->state, db, in->data, in->len, &out->data, &out->len,
		      why);
	if (st == AUTH_STEP_FAIL) {
		auth_conn_end_exchange(a);
		return MQTT_RC_NOT_AUTHORIZED; /* [MQTT-4.12.0-4] */
	}
	if (st == AUTH_STEP_DONE) {
		/* One round: CONNACK carries the data; state freed with c. */
		a->user = strdup(m->user(a->state));
		return 0;
	}
	/* Keep the CONNECT: it is accepted when the exchange succeeds. */
	a->connect = malloc(raw_len);
	if (!a->connect) {
		*why = "out of memory";
		return MQTT_RC_SERVER_UNAVAILABLE;
	}
	memcpy(a->connect, raw, raw_len);
	a->connect_len = raw_len;
	c->state = CONN_AUTH;
	send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, m, out->data,
		  out->len); /* [MQTT-4.12.0-2] */
	conn_log(LOGL_DEBUG, c, "%s authentication started", m->name);
	return MQTT_RC_CONTINUE_AUTHENTICATION;
}

int handle_auth_connect(struct conn *c, const struct mqtt_connect *p,
			const uint8_t *raw, size_t raw_len,
			struct mqtt_bytes *out, const char **why)
{
	struct auth_db *db = conn_db(c);
	bool anonymous = c->listener && c->listener->allow_anonymous;
	struct auth_conn *a;

	out->data = NULL;
	out->len = 0;
	if (mqtt_props_has(&p->props, MQTT_PROP_AUTHENTICATION_METHOD))
		return start_enhanced(c, p, raw, raw_len, out, why);
	if (!db) {
		if (anonymous)
			return 0;
		*why = "allow_anonymous is false and no password file";
		return MQTT_RC_NOT_AUTHORIZED;
	}
	if (!p->username_flag) {
		if (anonymous)
			return 0;
		*why = "no user name and allow_anonymous is false";
		return MQTT_RC_NOT_AUTHORIZED;
	}
	if (!p->password_flag ||
	    !auth_check_password(db, p->username.data, p->username.len,
				 p->password.data, p->password.len)) {
		*why = "unknown user name or wrong password";
		return MQTT_RC_BAD_USER_NAME_OR_PASSWORD;
	}
	a = auth_conn_get(c);
	if (!a || !(a->user = strndup((const char *)p->username.data,
				      p->username.len))) {
		*why = "out of memory";
		return MQTT_RC_SERVER_UNAVAILABLE;
	}
	return 0;
}

/*
 * Before CONNACK a refusal is a CONNACK with the reason (and why as its
 * Reason String), then close.
 */
static void refuse(struct conn *c, uint8_t reason, const char *why)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNACK };

	pkt.u.connack.reason = reason;
	conn_set_reason(&pkt.u.connack.props, why);
	conn_send(c, &pkt);
	conn_log(LOGL_NOTICE, c, "connection refused: %s", why);
	conn_close(c, -1, why);
}

/* The exchange succeeded: accept the CONNECT it started with. */
static void finish_connect(struct conn *c, const struct mqtt_bytes *data)
{
	struct auth_conn *a = c->auth;
	struct mqtt_packet pkt;
	int rc;

	a->user = strdup(a->mech->user(a->state));
	if (!a->user ||
	    mqtt_decode(a->connect, a->connect_len, MQTT_V5, &pkt) < 0) {
		refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	c->state = CONN_NEW;
	rc = handle_connect_accept(c, &pkt.u.connect, data);
	/* data points into the exchange state, the CONNECT into the copy. */
	auth_conn_end_exchange(a);
	free(a->connect);
	a->connect = NULL;
	a->connect_len = 0;
	if (rc > 0)
		conn_close(c, -1, mqtt_rc_str((uint8_t)rc));
}

void handle_auth_pending(struct conn *c, const uint8_t *buf, size_t len)
{
	struct auth_conn *a = c->auth;
	struct mqtt_packet pkt;
	const struct mqtt_disconnect *p = &pkt.u.disconnect;
	struct mqtt_bytes out = { NULL, 0 };
	const char *why = "authentication failed";
	enum auth_step st;
	int rc;

	rc = mqtt_decode(buf, len, MQTT_V5, &pkt);
	if (rc < 0) {
		c->shard->stats.malformed +=
			mqtt_err_reason(rc) == MQTT_RC_MALFORMED_PACKET;
		refuse(c, mqtt_err_reason(rc), mqtt_err_str(rc));
		return;
	}
	if (pkt.type == MQTT_DISCONNECT) {
		conn_close(c, -1, "DISCONNECT during authentication");
		return;
	}
	/* [MQTT-3.1.2-30]: only AUTH (and DISCONNECT) until CONNACK. */
	if (pkt.type != MQTT_AUTH) {
		refuse(c, MQTT_RC_PROTOCOL_ERROR,
		       "packet other than AUTH during authentication");
		return;
	}
	/* [MQTT-4.12.0-3] reason 0x18; [MQTT-4.12.0-5] the same method. */
	if (p->reason != MQTT_RC_CONTINUE_AUTHENTICATION) {
		refuse(c, MQTT_RC_PROTOCOL_ERROR,
		       "AUTH reason other than Continue authentication");
		return;
	}
	if (!method_matches(a, &p->props)) {
		refuse(c, MQTT_RC_PROTOCOL_ERROR,
		       "AUTH with another authentication method");
		return;
	}
	st = a->mech->step(a->state, p->props.authentication_data.data,
			   p->props.authentication_data.len, &out.data,
			   &out.len, &why);
	switch (st) {
	case AUTH_STEP_CONTINUE:
		send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, a->mech,
			  out.data, out.len);
		return;
	case AUTH_STEP_DONE:
		finish_connect(c, &out);
		return;
	case AUTH_STEP_FAIL:
		break;
	}
	auth_conn_end_exchange(a);
	refuse(c, MQTT_RC_NOT_AUTHORIZED, why); /* [MQTT-4.12.0-4] */
}

int handle_auth(struct conn *c, const struct mqtt_disconnect *p)
{
	struct auth_conn *a = c->auth;
	struct mqtt_bytes out = { NULL, 0 };
	const char *why = "re-authentication failed";
	const struct mqtt_bytes *in = &p->props.authentication_data;
	enum auth_step st;

	if (!a || !a->mech) {
		conn_log(LOGL_NOTICE, c,
			 "AUTH without an Authentication Method in CONNECT");
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR, /* [MQTT-4.12.0-7] */
				"AUTH without an Authentication Method in CONNECT");
	}
	if (!method_matches(a, &p->props)) {
		conn_log(LOGL_NOTICE, c, "AUTH with another method");
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR, /* [MQTT-4.12.1-1] */
				"AUTH with another authentication method");
	}
	if (p->reason == MQTT_RC_REAUTHENTICATE && !a->state) {
		st = a->mech->start(&a->state, conn_db(c), in->data, in->len,
				    &out.data, &out.len, &why);
	} else if (p->reason == MQTT_RC_CONTINUE_AUTHENTICATION && a->state) {
		st = a->mech->step(a->state, in->data, in->len, &out.data,
				   &out.len, &why);
	} else {
		conn_log(LOGL_NOTICE, c, "AUTH reason 0x%02x out of turn",
			 p->reason);
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR,
				"AUTH reason 0x%02x out of turn", p->reason);
	}
	if (st == AUTH_STEP_CONTINUE) {
		send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, a->mech,
			  out.data, out.len);
		return 0;
	}
	/* A connection keeps its identity: no switching users. */
	if (st == AUTH_STEP_DONE && a->user &&
	    strcmp(a->mech->user(a->state), a->user) != 0) {
		st = AUTH_STEP_FAIL;
		why = "re-authentication as another user";
	}
	if (st == AUTH_STEP_FAIL) {
		auth_conn_end_exchange(a);
		conn_log(LOGL_NOTICE, c, "re-authentication failed: %s", why);
		return conn_why(c, MQTT_RC_NOT_AUTHORIZED, /* [MQTT-4.12.1-2] */
				"re-authentication failed");
	}
	send_auth(c, MQTT_RC_SUCCESS, a->mech, out.data, out.len);
	auth_conn_end_exchange(a);
	conn_log(LOGL_INFO, c, "re-authenticated with %s", a->mech->name);
	return 0;
}
