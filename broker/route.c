/*
 * Routing of a message to its subscribers.  Matching may find several
 * subscriptions of one session (overlapping filters): they are folded into
 * one delivery [MQTT-3.3.4-2] carrying every subscription identifier
 * [MQTT-3.3.4-3].  The fold is kept in the shard's route scratch, not in
 * the sessions: a table keyed by session (open addressing), whose entries
 * carry the stamp of the route that wrote them, so a new route (a new
 * stamp) finds it empty without clearing it.  It grows with the largest
 * route and is kept: no allocation per message once it has.  Shared
 * groups are delivered separately.
 */
#include <stdlib.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/share.h"
#include "broker/subtree.h"

/* Slots of a shard's first table (a power of two). */
#define ROUTE_SCRATCH_MIN 64u

/* One session's folded delivery while one message is routed. */
struct route_hit {
	struct session *s;
	uint64_t stamp; /* the route that wrote it; any other: a free slot */
	uint8_t qos; /* the highest granted */
	bool retain_as_published; /* by any of the subscriptions */
	uint8_t sub_id_count;
	uint32_t sub_ids[SESSION_MATCH_IDS];
};

/*
 * sh->route_scratch, one allocation (shard_fini() frees it): cap slots,
 * then the order array, the slots taken by the current route in the order
 * of their first match.  At most half the slots are taken (the table
 * grows first), so the array holds cap / 2.
 */
struct route_scratch {
	uint32_t cap; /* a power of two */
	struct route_hit slot[];
};

static uint32_t *scratch_order(struct route_scratch *t)
{
	return (uint32_t *)(void *)(t->slot + t->cap);
}

/*
 * The slot of s in t for the route stamped stamp: its entry, or the free
 * slot where it goes (whose stamp is not stamp).  There is always one, the
 * table being at most half full.
 */
static uint32_t scratch_find(const struct route_scratch *t,
			     const struct session *s, uint64_t stamp)
{
	uint32_t mask = t->cap - 1;
	uint64_t h = (uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull;
	uint32_t i = (uint32_t)(h >> 32) & mask;

	while (t->slot[i].stamp == stamp && t->slot[i].s != s)
		i = (i + 1) & mask;
	return i;
}

struct route_ctx {
	struct shard *sh;
	struct msg *msg;
	uint64_t stamp;
	uint32_t hits; /* slots of sh->route_scratch taken by this route */
	bool grow_failed; /* out of memory: new sessions delivered apart */
	size_t reached;
};

static uint8_t min_qos(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

/*
 * A table twice as large (the first: ROUTE_SCRATCH_MIN slots) with the
 * current route's entries, in the same order; false when out of memory,
 * the old one kept.
 */
static bool scratch_grow(struct route_ctx *ctx)
{
	struct route_scratch *old = ctx->sh->route_scratch, *t;
	uint32_t cap = old ? old->cap * 2 : ROUTE_SCRATCH_MIN;
	const size_t per_slot = sizeof(struct route_hit) + sizeof(uint32_t);

	if (old && (old->cap >= 1u << 30 ||
		    cap > (SIZE_MAX - sizeof(*t)) / per_slot))
		return false;
	t = calloc(1, sizeof(*t) + cap * sizeof(struct route_hit) +
			      cap / 2 * sizeof(uint32_t));
	if (!t)
		return false;
	t->cap = cap;
	for (uint32_t k = 0; k < ctx->hits; k++) {
		const struct route_hit *h = &old->slot[scratch_order(old)[k]];
		uint32_t i = scratch_find(t, h->s, ctx->stamp);

		t->slot[i] = *h;
		scratch_order(t)[k] = i;
	}
	free(old);
	ctx->sh->route_scratch = t;
	return true;
}

/*
 * One subscription's copy of its own, not folded: past the identifiers
 * one delivery carries, or for want of memory to fold it.
 */
static void route_apart(struct route_ctx *ctx, struct session *s,
			const struct sub_opts *opts, const char *shared_group)
{
	session_deliver_sub(s, ctx->msg,
			    opts->retain_as_published && ctx->msg->retain,
			    opts, shared_group);
	ctx->reached++;
}

static void route_match_cb(void *arg, void *subscriber,
			   const struct sub_opts *opts,
			   const char *shared_group)
{
	struct route_ctx *ctx = arg;
	struct session *s = subscriber;
	struct route_scratch *t = ctx->sh->route_scratch;
	struct route_hit *h;
	uint32_t i = 0;

	/* [MQTT-3.8.3-3]: not back to the publisher's own session. */
	if (opts->no_local && ctx->msg->origin == s)
		return;
	if (shared_group) {
		/* The group may have members on other shards: one delivers. */
		if (share_group_mine(ctx->sh->broker->shares,
				     subtree_group_tag(shared_group),
				     ctx->sh->index, ctx->msg->share_key))
			route_apart(ctx, s, opts, shared_group);
		return;
	}
	if (t)
		i = scratch_find(t, s, ctx->stamp);
	if (t && t->slot[i].stamp == ctx->stamp) {
		h = &t->slot[i];
		if (opts->qos > h->qos)
			h->qos = opts->qos;
		h->retain_as_published |= opts->retain_as_published;
	} else {
		/* First match of s: a slot, the table kept at most half full. */
		if (!t || ctx->hits >= t->cap / 2) {
			if (ctx->grow_failed || !scratch_grow(ctx)) {
				ctx->grow_failed = true;
				route_apart(ctx, s, opts, NULL);
				return;
			}
			t = ctx->sh->route_scratch;
			i = scratch_find(t, s, ctx->stamp);
		}
		h = &t->slot[i];
		h->s = s;
		h->stamp = ctx->stamp;
		h->qos = opts->qos;
		h->retain_as_published = opts->retain_as_published;
		h->sub_id_count = 0;
		scratch_order(t)[ctx->hits++] = i;
	}
	if (!opts->subscription_id)
		return;
	if (h->sub_id_count < SESSION_MATCH_IDS) {
		h->sub_ids[h->sub_id_count++] = opts->subscription_id;
		return;
	}
	/*
	 * More identifiers than one delivery carries: this subscription gets
	 * a copy of its own, which [MQTT-3.3.4-5] allows.
	 */
	route_apart(ctx, s, opts, NULL);
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
	struct route_scratch *t;

	subtree_match(sh->subs, msg->topic, msg->topic_len, route_match_cb,
		      &ctx);
	/*
	 * The folded deliveries, last session met first.  session_deliver()
	 * does not route (a connection that fails is closed later, see
	 * conn_fail()), so the table stays as it is meanwhile.
	 */
	t = sh->route_scratch;
	for (uint32_t k = ctx.hits; k-- > 0;) {
		const struct route_hit *h = &t->slot[scratch_order(t)[k]];

		/*
		 * [MQTT-3.3.1-9]: the retain flag is cleared on delivery to an
		 * established subscription unless Retain As Published.
		 */
		session_deliver(h->s, msg, min_qos(msg->qos, h->qos),
				h->retain_as_published && msg->retain,
				h->sub_ids, h->sub_id_count, NULL);
		ctx.reached++;
	}
	return ctx.reached;
}

size_t route_message(struct shard *sh, struct msg *msg)
{
	struct broker *b = sh->broker;
	size_t posted = 0;
	unsigned slot = 0, first = 0;

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
		first = shard_interest_first_slot(msg->topic, msg->topic_len);
		/* Consecutive messages spread over the groups' shards. */
		msg->share_key = ++sh->share_seq;
	}
	if (msg->confirm_from)
		atomic_store(&msg->remote_pending, b->shard_count - 1);
	for (unsigned i = 0; i < b->shard_count; i++)
		if (i != sh->index &&
		    (msg->confirm_from ||
		     shard_interested(&b->shards[i], slot, first))) {
			shard_post_route(sh, i, msg_ref(msg));
			posted++;
		}
	return route_local(sh, msg) + posted;
}

void route_confirm(struct shard *sh, struct msg *msg, bool refused)
{
	struct broker *b = sh->broker;
	uint64_t seq, old;

	if (!msg->confirm_from)
		return;
	seq = persist_hold_seq(b);
	old = atomic_load(&msg->remote_seq);
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
