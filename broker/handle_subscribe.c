/*
 * SUBSCRIBE and UNSUBSCRIBE: one reason code per filter, so a bad filter
 * is refused alone and the rest are served (3.1.1 [MQTT-3.8.4-5]); retained
 * messages are sent after the SUBACK as Retain Handling asks
 * [MQTT-3.3.1-9 ff.].
 */
#include <stdio.h>
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

/*
 * The Reason String of a SUBACK or UNSUBACK: the first filter refused and
 * why, and how many more were.
 */
static void explain_refused(struct mqtt_props *props, char *buf, size_t cap,
			    const struct mqtt_bytes *filter, const char *why,
			    size_t refused)
{
	size_t len = filter->len > 64 ? 64 : filter->len;

	if (!refused)
		return;
	/* Cut a long filter between two characters: it stays UTF-8. */
	while (len < filter->len && (filter->data[len] & 0xC0) == 0x80)
		len--;
	if (refused > 1)
		snprintf(buf, cap, "%s: '%.*s%s' and %zu more", why, (int)len,
			 (const char *)filter->data,
			 filter->len > 64 ? "..." : "", refused - 1);
	else
		snprintf(buf, cap, "%s: '%.*s%s'", why, (int)len,
			 (const char *)filter->data,
			 filter->len > 64 ? "..." : "");
	conn_set_reason(props, buf);
}

/*
 * Reason code for one entry, subscribing when it is acceptable; *why says
 * why when it is not.
 */
static uint8_t subscribe_one(struct conn *c, const struct mqtt_sub_entry *e,
			     uint32_t sub_id, bool *send_retained,
			     const char **why)
{
	struct shard *sh = c->shard;
	const char *f = (const char *)e->filter.data;
	uint8_t max_qos = sh->broker->limits.max_qos;
	/* Granted at most max_qos, never refused for it [MQTT-3.2.2-10]. */
	struct sub_opts opts = {
		.qos = e->qos < max_qos ? e->qos : max_qos,
		.no_local = e->no_local,
		.retain_as_published = e->retain_as_published,
		.retain_handling = e->retain_handling,
		.subscription_id = sub_id,
	};
	bool replaced = false;
	int shared;

	*send_retained = false;
	if (!topic_filter_is_valid(f, e->filter.len))
		*why = "invalid topic filter";
	else if (!handle_topic_within_limits(c, f, e->filter.len))
		*why = "topic filter above max_topic_length or max_topic_levels";
	else
		*why = NULL;
	if (*why)
		return c->version == MQTT_V5 ? MQTT_RC_TOPIC_FILTER_INVALID :
					       MQTT_RC_UNSPECIFIED_ERROR;
	*why = "out of memory";
	shared = topic_share_parse(f, e->filter.len, NULL, NULL, NULL, NULL);
	if (shard_sub_add(sh, f, e->filter.len, c->session, &opts,
			  &replaced) < 0)
		return MQTT_RC_UNSPECIFIED_ERROR;
	if (session_add_sub(c->session, f, e->filter.len, &opts) < 0) {
		shard_sub_remove(sh, f, e->filter.len, c->session);
		return MQTT_RC_UNSPECIFIED_ERROR;
	}
	/* 5.0 section 3.3.1.3: retained messages go to new non-shared ones only. */
	*send_retained = shared != 1 &&
			 (e->retain_handling == 0 ||
			  (e->retain_handling == 1 && !replaced));
	return opts.qos; /* the QoS granted */
}

int handle_subscribe(struct conn *c, const struct mqtt_subscribe *p)
{
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	uint32_t sub_id = p->props.subscription_id;
	uint8_t small[64], *reasons = small;
	bool *want = NULL, want_small[64];
	struct mqtt_sub_entry e, first = { 0 };
	const char *why, *first_why = NULL;
	size_t off = 0, i = 0, refused = 0;
	char explain[160];

	if (p->count > sizeof(small)) {
		reasons = malloc(p->count);
		want = malloc(p->count * sizeof(bool));
		if (!reasons || !want) {
			free(reasons);
			free(want);
			return conn_why(c, MQTT_RC_UNSPECIFIED_ERROR,
					"out of memory");
		}
	} else {
		want = want_small;
	}
	while (mqtt_sub_next(&p->entries, &off, &e)) {
		reasons[i] = subscribe_one(c, &e, sub_id, &want[i], &why);
		if (reasons[i++] >= 0x80 && !refused++) {
			first = e;
			first_why = why;
		}
	}

	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.reasons.data = reasons;
	ack.u.suback.reasons.len = i;
	explain_refused(&ack.u.suback.props, explain, sizeof(explain),
			&first.filter, first_why, refused);
	conn_send(c, &ack);

	off = i = 0;
	while (mqtt_sub_next(&p->entries, &off, &e)) {
		uint8_t max_qos = c->shard->broker->limits.max_qos;
		struct retained_ctx ctx = { c->session,
					    e.qos < max_qos ? e.qos : max_qos,
					    sub_id };

		struct broker *b = c->shard->broker;

		if (!want[i++])
			continue;
		/* Exclusive: the match drops expired entries on its way. */
		pthread_rwlock_wrlock(&b->retain_lock);
		retain_match(b->retain, (const char *)e.filter.data,
			     e.filter.len, shard_now_ms(c->shard),
			     send_retained_cb, &ctx);
		pthread_rwlock_unlock(&b->retain_lock);
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
	struct mqtt_bytes f, first = { NULL, 0 };
	size_t off = 0, i = 0, missing = 0;
	char explain[160];

	if (p->count > sizeof(small)) {
		reasons = malloc(p->count);
		if (!reasons)
			return conn_why(c, MQTT_RC_UNSPECIFIED_ERROR,
					"out of memory");
	}
	while (mqtt_unsub_next(&p->entries, &off, &f)) {
		const char *s = (const char *)f.data;
		bool held = session_remove_sub(c->session, s, f.len);
		const char *group = held ?
			subtree_group_of(c->shard->subs, s, f.len) : NULL;

		if (group)
			session_forget_group(c->session, group);
		if (held)
			shard_sub_remove(c->shard, s, f.len, c->session);
		reasons[i++] = held ? MQTT_RC_SUCCESS :
				      MQTT_RC_NO_SUBSCRIPTION_EXISTED;
		if (!held && !missing++)
			first = f;
	}
	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.reasons.data = reasons;
	ack.u.suback.reasons.len = i;
	explain_refused(&ack.u.suback.props, explain, sizeof(explain), &first,
			"no such subscription", missing);
	conn_send(c, &ack);
	if (reasons != small)
		free(reasons);
	return 0;
}
