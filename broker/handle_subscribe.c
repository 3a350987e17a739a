/*
 * SUBSCRIBE and UNSUBSCRIBE: one reason code per filter, so a bad filter
 * is refused alone and the rest are served (3.1.1 [MQTT-3.8.4-5]); retained
 * messages are sent after the SUBACK as Retain Handling asks
 * [MQTT-3.3.1-9 ff.].
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/subtree.h"
#include "protocol/topic.h"

struct retained_ctx {
	struct session *s;
	uint8_t qos;
	uint32_t sub_id;
};

static void send_retained_cb(void *arg, struct msg *msg)
{
	struct retained_ctx *ctx = arg;
	uint8_t qos = msg->qos < ctx->qos ? msg->qos : ctx->qos;

	/* [MQTT-3.3.1-8]: retain flag set on messages sent on subscribe. */
	session_deliver(ctx->s, msg, qos, true, &ctx->sub_id,
			ctx->sub_id ? 1 : 0, NULL);
}

/* Reason code for one entry, subscribing when it is acceptable. */
static uint8_t subscribe_one(struct conn *c, const struct mqtt_sub_entry *e,
			     uint32_t sub_id, bool *send_retained)
{
	struct shard *sh = c->shard;
	const char *f = (const char *)e->filter.data;
	struct sub_opts opts = {
		.qos = e->qos,
		.no_local = e->no_local,
		.retain_as_published = e->retain_as_published,
		.retain_handling = e->retain_handling,
		.subscription_id = sub_id,
	};
	bool replaced = false;
	int shared;

	*send_retained = false;
	if (!topic_filter_is_valid(f, e->filter.len) ||
	    !handle_topic_within_limits(c, f, e->filter.len))
		return c->version == MQTT_V5 ? MQTT_RC_TOPIC_FILTER_INVALID :
					       MQTT_RC_UNSPECIFIED_ERROR;
	shared = topic_share_parse(f, e->filter.len, NULL, NULL, NULL, NULL);
	if (subtree_add(sh->subs, f, e->filter.len, c->session, &opts,
			&replaced) < 0)
		return MQTT_RC_UNSPECIFIED_ERROR;
	if (session_add_sub(c->session, f, e->filter.len, &opts) < 0) {
		subtree_remove(sh->subs, f, e->filter.len, c->session);
		return MQTT_RC_UNSPECIFIED_ERROR;
	}
	/* 5.0 section 3.3.1.3: retained messages go to new non-shared ones only. */
	*send_retained = shared != 1 &&
			 (e->retain_handling == 0 ||
			  (e->retain_handling == 1 && !replaced));
	return e->qos; /* Granted QoS: we support all three */
}

int handle_subscribe(struct conn *c, const struct mqtt_subscribe *p)
{
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	uint32_t sub_id = p->props.subscription_id;
	uint8_t small[64], *reasons = small;
	bool *want = NULL, want_small[64];
	struct mqtt_sub_entry e;
	size_t off = 0, i = 0;

	if (p->count > sizeof(small)) {
		reasons = malloc(p->count);
		want = malloc(p->count * sizeof(bool));
		if (!reasons || !want) {
			free(reasons);
			free(want);
			return MQTT_RC_UNSPECIFIED_ERROR;
		}
	} else {
		want = want_small;
	}
	while (mqtt_sub_next(&p->entries, &off, &e))
		reasons[i] = subscribe_one(c, &e, sub_id, &want[i]), i++;

	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.reasons.data = reasons;
	ack.u.suback.reasons.len = i;
	conn_send(c, &ack);

	off = i = 0;
	while (mqtt_sub_next(&p->entries, &off, &e)) {
		struct retained_ctx ctx = { c->session, e.qos, sub_id };

		if (want[i++])
			retain_match(c->shard->broker->retain,
				     (const char *)e.filter.data, e.filter.len,
				     shard_now_ms(c->shard), send_retained_cb,
				     &ctx);
	}
	if (reasons != small) {
		free(reasons);
		free(want);
	}
	return 0;
}

int handle_unsubscribe(struct conn *c, const struct mqtt_subscribe *p)
{
	struct mqtt_packet ack = { .type = MQTT_UNSUBACK };
	uint8_t small[64], *reasons = small;
	struct mqtt_bytes f;
	size_t off = 0, i = 0;

	if (p->count > sizeof(small)) {
		reasons = malloc(p->count);
		if (!reasons)
			return MQTT_RC_UNSPECIFIED_ERROR;
	}
	while (mqtt_unsub_next(&p->entries, &off, &f)) {
		const char *s = (const char *)f.data;
		bool held = session_remove_sub(c->session, s, f.len);
		const char *group = held ?
			subtree_group_of(c->shard->subs, s, f.len) : NULL;

		if (group)
			session_forget_group(c->session, group);
		if (held)
			subtree_remove(c->shard->subs, s, f.len, c->session);
		reasons[i++] = held ? MQTT_RC_SUCCESS :
				      MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	}
	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.reasons.data = reasons;
	ack.u.suback.reasons.len = i;
	conn_send(c, &ack);
	if (reasons != small)
		free(reasons);
	return 0;
}
