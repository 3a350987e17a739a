/*
 * Handlers of incoming packets, one file per packet family
 * (handle_connect.c, handle_publish.c, handle_subscribe.c,
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

int handle_connect(struct conn *c, const struct mqtt_connect *p);
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
