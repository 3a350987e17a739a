/*
 * Server redirection [MQTT 5.0 section 4.11]: the refusing CONNACK on a
 * redirecting listener, and on SIGHUP the listeners' new settings and the
 * DISCONNECTs that drain them.
 *
 * The Server Reference is optional with 0x9C and 0x9D (the Server "MAY
 * also include" it, section 4.11), so when it would take the packet past
 * the client's Maximum Packet Size, conn_send() sends the packet without
 * it (after dropping the Reason String) rather than break [MQTT-3.1.2-24].
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/conn.h"
#include "broker/listener.h"
#include "broker/log.h"
#include "broker/redirect.h"
#include "broker/shard.h"
#include "conf/config.h"
#include "protocol/mqtt.h"

static uint8_t redirect_reason(const struct listener *l)
{
	return l->server_moved ? MQTT_RC_SERVER_MOVED :
				 MQTT_RC_USE_ANOTHER_SERVER;
}

/* CONNACK or DISCONNECT properties: Server Reference and Reason String. */
static void redirect_props(struct mqtt_props *p, const struct listener *l)
{
	p->server_reference.data = (const uint8_t *)l->server_reference;
	p->server_reference.len = strlen(l->server_reference);
	mqtt_props_set(p, MQTT_PROP_SERVER_REFERENCE);
	conn_set_reason(p, l->server_moved ?
			"server moved: use the Server Reference" :
			"use another server: see the Server Reference");
}

int redirect_connect(struct conn *c)
{
	const struct listener *l = c->listener;
	struct mqtt_packet pkt = { .type = MQTT_CONNACK };
	uint8_t reason;

	if (!l || !l->server_reference)
		return 0;
	if (c->version != MQTT_V5) {
		pkt.u.connack.reason = MQTT_V3_CONNACK_REFUSED_SERVER_UNAVAILABLE;
		conn_send(c, &pkt);
		conn_log(LOGL_NOTICE, c, "connection refused: server_reference "
			 "is set and MQTT %s cannot be redirected (Server "
			 "unavailable)", c->version == MQTT_V311 ? "3.1.1" :
			 "3.1");
		return MQTT_RC_SERVER_UNAVAILABLE;
	}
	reason = redirect_reason(l);
	pkt.u.connack.reason = reason;
	redirect_props(&pkt.u.connack.props, l);
	conn_send(c, &pkt);
	conn_log(LOGL_NOTICE, c, "connection refused: redirected to %s (%s)",
		 l->server_reference, mqtt_rc_str(reason));
	return reason;
}

/* DISCONNECT with the redirection, then close. */
static void redirect_disconnect(struct conn *c, const struct listener *l)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };
	uint8_t reason = redirect_reason(l);
	char why[256];

	pkt.u.disconnect.reason = reason;
	redirect_props(&pkt.u.disconnect.props, l);
	conn_send(c, &pkt);
	snprintf(why, sizeof(why), "redirected to %s (%s)",
		 l->server_reference, mqtt_rc_str(reason));
	conn_close(c, -1, why); /* the DISCONNECT is sent */
}

/*
 * Every client of l that is past CONNACK: MQTT 5 ones are redirected,
 * 3.1.x ones stay.  Those still connecting are refused by
 * redirect_connect() when they get there.
 */
static void redirect_drain(struct broker *b, const struct listener *l)
{
	size_t moved = 0, kept = 0;
	struct conn *c, *next;

	for (unsigned i = 0; i < b->shard_count; i++)
	for (c = b->shards[i].conns; c; c = next) {
		next = c->next;
		if (c->listener != l || c->state != CONN_ACTIVE)
			continue;
		if (c->version == MQTT_V5) {
			redirect_disconnect(c, l);
			moved++;
			continue;
		}
		conn_log(LOGL_INFO, c, "stays connected: MQTT %s cannot be "
			 "redirected", c->version == MQTT_V311 ? "3.1.1" :
			 "3.1");
		kept++;
	}
	log_at(LOGL_NOTICE, "%s: server_reference %s: redirected %zu MQTT 5 "
	       "client(s) (%s); %zu MQTT 3.1.x client(s) stay connected, "
	       "they cannot be redirected", l->name, l->server_reference,
	       moved, mqtt_rc_str(redirect_reason(l)), kept);
}

/* l's block in cfg: same port, bind address and socket_domain. */
static const struct config_listener *block_of(const struct listener *l,
					      const struct config *cfg)
{
	for (size_t i = 0; i < cfg->listener_count; i++) {
		const struct config_listener *cl = &cfg->listeners[i];

		if (cl->port != l->port ||
		    cl->socket_domain != l->socket_domain ||
		    !cl->bind_address != !l->bind_address)
			continue;
		if (!cl->bind_address ||
		    strcmp(cl->bind_address, l->bind_address) == 0)
			return cl;
	}
	return NULL;
}

int redirect_reload(struct broker *b, struct listener *list,
		    const struct config *cfg)
{
	int rc = 0;

	for (struct listener *l = list; l; l = l->next) {
		const struct config_listener *cl = block_of(l, cfg);
		const char *ref = cl ? cl->server_reference :
				       cfg->server_reference;
		int moved = cl ? cl->server_moved : cfg->server_moved;
		char *copy;

		if (ref && !*ref)
			ref = NULL;
		if (!ref) {
			if (l->server_reference)
				log_at(LOGL_NOTICE, "%s: server_reference "
				       "removed: accepting clients again",
				       l->name);
			free(l->server_reference);
			l->server_reference = NULL;
			l->server_moved = moved == 1;
			continue;
		}
		if (l->server_reference &&
		    strcmp(l->server_reference, ref) == 0) {
			/* Nothing to drain: 0x9C <-> 0x9D for new clients. */
			l->server_moved = moved == 1;
			continue;
		}
		copy = strdup(ref);
		if (!copy) {
			log_at(LOGL_ERROR, "%s: out of memory: server_reference "
			       "not changed", l->name);
			rc = -ENOMEM;
			continue;
		}
		free(l->server_reference);
		l->server_reference = copy;
		l->server_moved = moved == 1;
		redirect_drain(b, l);
	}
	return rc;
}
