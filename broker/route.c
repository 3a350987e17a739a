/*
 * Routing of a message to its subscribers.  Matching may find several
 * subscriptions of one session (overlapping filters): they are folded into
 * one delivery [MQTT-3.3.4-2] carrying every subscription identifier
 * [MQTT-3.3.4-3]; a generation stamp marks the sessions already seen, so
 * folding needs no allocation.  Shared groups are delivered separately.
 */
#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/share.h"
#include "broker/subtree.h"

struct route_ctx {
	struct shard *sh;
	struct msg *msg;
	uint64_t stamp;
	struct session *hit; /* sessions with a folded delivery pending */
	size_t reached;
};

static uint8_t min_qos(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

static void route_match_cb(void *arg, void *subscriber,
			   const struct sub_opts *opts,
			   const char *shared_group)
{
	struct route_ctx *ctx = arg;
	struct session *s = subscriber;
	struct msg *msg = ctx->msg;

	/* [MQTT-3.8.3-3]: not back to the publisher's own session. */
	if (opts->no_local && msg->origin == s)
		return;
	if (shared_group) {
		uint32_t id = opts->subscription_id;

		/* The group may have members on other shards: one delivers. */
		if (!share_group_mine(ctx->sh->broker->shares,
				      subtree_group_tag(shared_group),
				      ctx->sh->index, msg->share_key))
			return;

		session_deliver(s, msg, min_qos(msg->qos, opts->qos),
				opts->retain_as_published && msg->retain,
				&id, id ? 1 : 0, shared_group);
		ctx->reached++;
		return;
	}
	if (s->match_stamp != ctx->stamp) {
		s->match_stamp = ctx->stamp;
		s->match_qos = opts->qos;
		s->match_retain_as_published = opts->retain_as_published;
		s->match_sub_id_count = 0;
		s->match_next = ctx->hit;
		ctx->hit = s;
	} else {
		if (opts->qos > s->match_qos)
			s->match_qos = opts->qos;
		s->match_retain_as_published |= opts->retain_as_published;
	}
	if (!opts->subscription_id)
		return;
	if (s->match_sub_id_count < sizeof(s->match_sub_ids) / sizeof(uint32_t)) {
		s->match_sub_ids[s->match_sub_id_count++] =
			opts->subscription_id;
		return;
	}
	/*
	 * More identifiers than one delivery carries: this subscription gets
	 * a copy of its own, which [MQTT-3.3.4-5] allows.
	 */
	session_deliver(s, msg, min_qos(msg->qos, opts->qos),
			opts->retain_as_published && msg->retain,
			&opts->subscription_id, 1, NULL);
	ctx->reached++;
}

void route_will(struct shard *sh, struct msg *will, uint32_t expiry_interval)
{
	if (expiry_interval)
		will->expiry_at = shard_now_ms(sh) +
				  (uint64_t)expiry_interval * 1000u;
	route_message(sh, will);
	msg_unref(will);
}

size_t route_local(struct shard *sh, struct msg *msg)
{
	struct route_ctx ctx = {
		.sh = sh, .msg = msg, .stamp = ++sh->match_stamp,
	};
	struct session *s, *next;

	subtree_match(sh->subs, msg->topic, msg->topic_len, route_match_cb,
		      &ctx);
	for (s = ctx.hit; s; s = next) {
		next = s->match_next;
		s->match_next = NULL;
		/*
		 * [MQTT-3.3.1-9]: the retain flag is cleared on delivery to an
		 * established subscription unless Retain As Published.
		 */
		session_deliver(s, msg, min_qos(msg->qos, s->match_qos),
				s->match_retain_as_published && msg->retain,
				s->match_sub_ids, s->match_sub_id_count, NULL);
		ctx.reached++;
	}
	return ctx.reached;
}

size_t route_message(struct shard *sh, struct msg *msg)
{
	struct broker *b = sh->broker;
	size_t posted = 0;
	unsigned slot = 0;

	if (msg->retain) {
		struct retain *r = b->retain;
		struct msg *old;

		pthread_rwlock_wrlock(&b->retain_lock);
		old = retain_find(r, msg->topic, msg->topic_len);
		/* old stays alive until storage has been told it went. */
		if (old)
			msg_ref(old);
		if (retain_set(r, msg) == 0)
			persist_retain(b, old, msg);
		pthread_rwlock_unlock(&b->retain_lock);
		msg_unref(old);
	}
	/*
	 * Other shards first, so they work on it while this one delivers;
	 * only shards that may have a subscriber get it (the interest
	 * index), except that a publisher waiting for
	 * confirmation posts to every shard: each shard's inbox is FIFO, so
	 * the confirmation of its latest message covers its earlier ones.
	 */
	if (b->shard_count > 1) {
		slot = shard_interest_slot(msg->topic, msg->topic_len);
		/* Consecutive messages spread over the groups' shards. */
		msg->share_key = ++sh->share_seq;
	}
	if (msg->confirm_from)
		atomic_store(&msg->remote_pending, b->shard_count - 1);
	for (unsigned i = 0; i < b->shard_count; i++)
		if (i != sh->index &&
		    (msg->confirm_from ||
		     shard_interested(&b->shards[i], slot))) {
			shard_post_route(sh, i, msg_ref(msg));
			posted++;
		}
	return route_local(sh, msg) + posted;
}

void route_confirm(struct shard *sh, struct msg *msg, bool refused)
{
	struct broker *b = sh->broker;
	uint64_t seq = persist_hold_seq(b);
	uint64_t old = atomic_load(&msg->remote_seq);

	if (!msg->confirm_from)
		return;
	while (seq > old &&
	       !atomic_compare_exchange_weak(&msg->remote_seq, &old, seq))
		;
	if (refused)
		atomic_store(&msg->remote_refused, true);
	if (atomic_fetch_sub(&msg->remote_pending, 1) != 1)
		return;
	/* The last one: the publisher's shard may now acknowledge. */
	if (msg->confirm_group)
		persist_group_end(b);
	ev_async_send(b->shards[msg->confirm_from - 1].loop,
		      &b->shards[msg->confirm_from - 1].wake);
}
