/*
 * Handlers of incoming packets, one file per packet family
 * (handle_connect.c, handle_auth.c, handle_publish.c, handle_subscribe.c,
 * handle_disconnect.c).  Each returns 0, or a reason code > 0 for which the
 * connection layer closes the connection (sending DISCONNECT in MQTT 5).
 */
#ifndef CICADA_BROKER_HANDLE_H
#define CICADA_BROKER_HANDLE_H

#include "protocol/mqtt.h"

#include <stdbool.h>

struct conn;
struct msg;
struct shard;

/*
 * CONNECT; raw[0..raw_len) is the whole packet, kept when an enhanced
 * authentication exchange delays the CONNACK.
 */
int handle_connect(struct conn *c, const struct mqtt_connect *p,
		   const uint8_t *raw, size_t raw_len);
/*
 * The second half of CONNECT once the client is authenticated: will,
 * session, CONNACK (with the Authentication Method and auth_data, which
 * may be empty, after enhanced authentication).
 */
int handle_connect_accept(struct conn *c, const struct mqtt_connect *p,
			  const struct mqtt_bytes *auth_data);
/*
 * Authenticate a CONNECT (handle_auth.c): 0 to accept it (*out: data for
 * the CONNACK), MQTT_RC_CONTINUE_AUTHENTICATION when an exchange has
 * started (AUTH sent, state CONN_AUTH), or the reason to refuse it with
 * (*why says why, for the log).
 */
int handle_auth_connect(struct conn *c, const struct mqtt_connect *p,
			const uint8_t *raw, size_t raw_len,
			struct mqtt_bytes *out, const char **why);
/* A packet during the exchange before CONNACK; closes on any error. */
void handle_auth_pending(struct conn *c, const uint8_t *buf, size_t len);
/* AUTH after CONNACK: re-authentication [MQTT-4.12.1]. */
int handle_auth(struct conn *c, const struct mqtt_disconnect *p);
int handle_publish(struct conn *c, struct mqtt_publish *p);
int handle_ack(struct conn *c, int type, const struct mqtt_ack *p);
int handle_subscribe(struct conn *c, const struct mqtt_subscribe *p);
int handle_unsubscribe(struct conn *c, const struct mqtt_subscribe *p);
int handle_pingreq(struct conn *c);
int handle_disconnect(struct conn *c, const struct mqtt_disconnect *p);

/* Whether a topic or filter is within max_topic_length / _levels. */
bool handle_topic_within_limits(const struct conn *c, const char *topic,
				size_t len);

/*
 * Build the shared message for a PUBLISH or a will: copies topic and
 * payload, keeps the properties that travel with the message, and turns
 * Message Expiry Interval into a deadline.  NULL when out of memory.
 */
struct msg *msg_from_publish(struct shard *sh, const struct mqtt_bytes *topic,
			     const struct mqtt_bytes *payload,
			     const struct mqtt_props *props, uint8_t qos,
			     bool retain, const void *origin);

#endif
