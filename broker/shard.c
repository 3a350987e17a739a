/*
 * The shard's loop machinery: the flush pass that writes every
 * connection's output once per loop turn (ev_prepare runs just before the
 * loop blocks), freeing of closed connections at the same point, and a
 * one-second tick driving a timeout wheel: one timer for all connections,
 * re-armed lazily from last_activity (the libev manual's advice on
 * timeouts), so an idle connection costs nothing until its deadline.
 *
 * Between shards: what one posts to another during a loop turn wakes that
 * shard once, at the end of the turn (ev_async_send per turn, not per
 * message); the woken shard drains its inbox in its own ev_async callback.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/listener.h"
#include "broker/log.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/share.h"
#include "broker/subtree.h"
#include "broker/sys.h"
#include "protocol/mqtt.h"

static void drop_post(void *arg, const struct inbox_item *it);

/* Items one wake-up takes from the inbox before letting I/O run again. */
#define SHARD_DRAIN_BATCH 4096

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

double shard_now(struct shard *sh)
{
	struct timespec ts;

	(void)sh;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Slot of a second; seconds before the first tick may be negative. */
static int wheel_slot_of(long second)
{
	return (int)(((second % SHARD_WHEEL_SLOTS) + SHARD_WHEEL_SLOTS) %
		     SHARD_WHEEL_SLOTS);
}

void shard_want_flush(struct shard *sh, struct conn *c)
{
	if (c->flush_queued)
		return;
	c->flush_queued = true;
	c->flush_next = sh->flush_list;
	sh->flush_list = c;
}

static void wheel_remove(struct shard *sh, struct conn *c)
{
	if (c->wheel_slot < 0)
		return;
	if (c->wheel_prev)
		c->wheel_prev->wheel_next = c->wheel_next;
	else
		sh->wheel[c->wheel_slot] = c->wheel_next;
	if (c->wheel_next)
		c->wheel_next->wheel_prev = c->wheel_prev;
	c->wheel_prev = c->wheel_next = NULL;
	c->wheel_slot = -1;
}

void shard_watch_timeout(struct shard *sh, struct conn *c)
{
	double deadline;
	long second;
	int slot;

	wheel_remove(sh, c);
	if (c->timeout <= 0)
		return;
	deadline = c->last_activity + c->timeout;
	/* A deadline already behind the wheel is due at the next tick. */
	second = (long)ceil(deadline);
	if (second <= sh->wheel_pos)
		second = sh->wheel_pos + 1;
	slot = wheel_slot_of(second);
	c->wheel_slot = (int16_t)slot;
	c->wheel_prev = NULL;
	c->wheel_next = sh->wheel[slot];
	if (c->wheel_next)
		c->wheel_next->wheel_prev = c;
	sh->wheel[slot] = c;
}

void shard_hold(struct shard *sh, struct conn *c)
{
	/* Waiting only for other shards' answer (c->wait_msg) is no commit. */
	if (c->hold_seq && persist_failed(sh->broker)) {
		/* Its acknowledgements are not true: the client must resend. */
		c->out_off = c->out_len = 0;
		c->hold_seq = 0;
		conn_close(c, -1, "persistence failed before its state was saved");
		return;
	}
	if (c->held)
		return;
	c->held = true;
	c->held_next = sh->held;
	sh->held = c;
}

/* Take c off the held list. */
static void held_remove(struct shard *sh, struct conn *c)
{
	struct conn **pp = &sh->held;

	if (!c->held)
		return;
	while (*pp != c)
		pp = &(*pp)->held_next;
	*pp = c->held_next;
	c->held = false;
	c->held_next = NULL;
}

void shard_release_held(struct shard *sh)
{
	struct conn **pp = &sh->held;

	while (*pp) {
		struct conn *c = *pp;

		if (!persist_is_committed(sh->broker, c->hold_seq) ||
		    (c->wait_msg &&
		     atomic_load(&c->wait_msg->remote_pending))) {
			pp = &c->held_next;
			continue;
		}
		*pp = c->held_next;
		c->held = false;
		c->held_next = NULL;
		c->hold_seq = 0;
		shard_want_flush(sh, c);
	}
}

void shard_drop_held(struct shard *sh)
{
	struct conn *c = sh->held, *next;

	/* Those waiting for a commit are closed; the others wait on. */
	sh->held = NULL;
	for (; c; c = next) {
		next = c->held_next;
		c->held = false;
		c->held_next = NULL;
		shard_hold(sh, c);
	}
}

/* Off every list of the shard. */
static void detach(struct shard *sh, struct conn *c)
{
	held_remove(sh, c);
	wheel_remove(sh, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		sh->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	sh->conn_count--;
}

void shard_forget(struct shard *sh, struct conn *c)
{
	detach(sh, c);
	/* Freed after this loop turn: callers up the stack may still hold c. */
	c->wheel_next = sh->closing;
	sh->closing = c;
}

void shard_move(struct shard *sh, struct conn *c, unsigned to,
		struct conn_handoff *h)
{
	detach(sh, c);
	h->to = to;
	h->next = sh->moving;
	sh->moving = h;
}

void shard_attach(struct shard *sh, struct conn *c)
{
	c->shard = sh;
	c->next = sh->conns;
	if (sh->conns)
		sh->conns->prev = c;
	sh->conns = c;
	sh->conn_count++;
}

/* One wake-up per shard posted to during this turn. */
static void wake_posted(struct shard *sh)
{
	struct broker *b = sh->broker;
	uint64_t mask = sh->wake_mask;

	sh->wake_mask = 0;
	while (mask) {
		unsigned i = (unsigned)__builtin_ctzll(mask);

		mask &= mask - 1;
		ev_async_send(b->shards[i].loop, &b->shards[i].wake);
	}
}

void shard_post(struct shard *sh, unsigned to, const struct inbox_item *it)
{
	struct shard *dst = &sh->broker->shards[to];

	if (inbox_post(&dst->inbox, sh->index, it) < 0) {
		/* Out of memory for the overflow: the item is lost, say so. */
		log_at(LOGL_ERROR, "shard %u: out of memory posting to shard %u",
		       sh->index, to);
		drop_post(dst, it);
		return;
	}
	sh->wake_mask |= 1ull << to;
}

void shard_post_route(struct shard *sh, unsigned to, struct msg *msg)
{
	struct inbox_item it = { .kind = SHARD_POST_ROUTE, .ptr = msg };

	shard_post(sh, to, &it);
}

/* A message for some member of a group, moving between shards. */
struct shared_post {
	struct msg *msg;
	bool retain;
	size_t len;
	char filter[]; /* "$share/group/filter" */
};

void shard_post_shared(struct shard *sh, const char *shared_group,
		       struct msg *msg, bool retain)
{
	struct share_registry *reg = sh->broker->shares;
	struct share_group *g = reg ? subtree_group_tag(shared_group) : NULL;
	struct shared_post *sp;
	const char *filter;
	size_t len;
	int to;

	to = share_group_other_shard(reg, g, sh->index, ++sh->share_seq);
	if (to < 0)
		return;
	filter = share_group_filter(g, &len);
	sp = malloc(sizeof(*sp) + len);
	if (!sp)
		return;
	sp->msg = msg_ref(msg);
	sp->retain = retain;
	sp->len = len;
	memcpy(sp->filter, filter, len);
	shard_post(sh, (unsigned)to, &(struct inbox_item){
		.kind = SHARD_POST_SHARED, .ptr = sp });
}

static void take_shared(struct shard *sh, struct shared_post *sp)
{
	const char *group = subtree_group_of(sh->subs, sp->filter, sp->len);
	struct msg *m = sp->msg;
	struct sub_opts opts;
	void *member;

	/* Its last member here may have gone meanwhile: then it is lost. */
	if (group && subtree_group_pick(group, NULL, &member, &opts))
		session_deliver_sub(member, m, sp->retain, &opts, group);
	msg_unref(m);
	free(sp);
}

static void drop_shared(struct shared_post *sp)
{
	msg_unref(sp->msg);
	free(sp);
}

static void take_post(void *arg, const struct inbox_item *it)
{
	struct shard *sh = arg;

	switch (it->kind) {
	case SHARD_POST_ROUTE: {
		struct persist_mark mark = persist_mark(sh->broker);

		route_local(sh, it->ptr);
		route_confirm(sh, it->ptr,
			      persist_lost_since(sh->broker, &mark));
		msg_unref(it->ptr);
		break;
	}
	case SHARD_POST_CONN:
		conn_adopt(sh, it->ptr);
		break;
	case SHARD_POST_SHARED:
		take_shared(sh, it->ptr);
		break;
	}
}

/* What nobody will take any more (shutdown): dropped cleanly. */
static void drop_post(void *arg, const struct inbox_item *it)
{
	if (it->kind == SHARD_POST_ROUTE) {
		route_confirm(arg, it->ptr, true);
		msg_unref(it->ptr);
	} else if (it->kind == SHARD_POST_CONN) {
		conn_handoff_drop(it->ptr);
	} else if (it->kind == SHARD_POST_SHARED) {
		drop_shared(it->ptr);
	}
}

static void park(struct shard *sh)
{
	struct broker *b = sh->broker;

	pthread_mutex_lock(&b->pause_lock);
	b->paused++;
	pthread_cond_broadcast(&b->pause_cond);
	while (atomic_load(&b->pause_wanted))
		pthread_cond_wait(&b->pause_cond, &b->pause_lock);
	b->paused--;
	pthread_mutex_unlock(&b->pause_lock);
}

static void stop_self(struct shard *sh)
{
	struct conn *c, *next;

	for (c = sh->conns; c; c = next) {
		next = c->next;
		conn_close(c, MQTT_RC_SERVER_SHUTTING_DOWN,
			   "broker shutting down");
	}
	listener_stop_shard(sh->listeners, sh);
	ev_break(sh->loop, EVBREAK_ALL);
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct shard *sh = container_of(w, struct shard, wake);

	(void)loop;
	(void)revents;
	if (atomic_load(&sh->broker->pause_wanted) && sh->index != 0)
		park(sh);
	if (atomic_load(&sh->stop_wanted)) {
		stop_self(sh);
		return;
	}
	if (inbox_drain(&sh->inbox, take_post, sh, SHARD_DRAIN_BATCH) ==
	    SHARD_DRAIN_BATCH)
		ev_async_send(sh->loop, &sh->wake); /* more: after some I/O */
	persist_poll(sh);
}

void shard_pause_all(struct broker *b)
{
	if (b->shard_count < 2)
		return;
	atomic_store(&b->pause_wanted, true);
	for (unsigned i = 1; i < b->shard_count; i++)
		ev_async_send(b->shards[i].loop, &b->shards[i].wake);
	pthread_mutex_lock(&b->pause_lock);
	while (b->paused < b->shard_count - 1)
		pthread_cond_wait(&b->pause_cond, &b->pause_lock);
	pthread_mutex_unlock(&b->pause_lock);
}

void shard_resume_all(struct broker *b)
{
	if (b->shard_count < 2)
		return;
	pthread_mutex_lock(&b->pause_lock);
	atomic_store(&b->pause_wanted, false);
	pthread_cond_broadcast(&b->pause_cond);
	pthread_mutex_unlock(&b->pause_lock);
	/* Once more each: flush what was done to them while parked. */
	for (unsigned i = 1; i < b->shard_count; i++)
		ev_async_send(b->shards[i].loop, &b->shards[i].wake);
}

static void *shard_thread(void *arg)
{
	struct shard *sh = arg;

	msg_cache_bind(sh->msgs);
	ev_run(sh->loop, 0);
	/* One more turn flushes the DISCONNECTs and frees connections. */
	ev_run(sh->loop, EVRUN_NOWAIT);
	msg_cache_bind(NULL); /* its lists are finished on the main thread */
	return NULL;
}

int shard_start_threads(struct broker *b)
{
	sigset_t all, old;
	int rc = 0;

	/* Signals are the main thread's (its loop has the ev_signals). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 1; i < b->shard_count && !rc; i++) {
		rc = pthread_create(&b->shards[i].thread, NULL, shard_thread,
				    &b->shards[i]);
		if (rc == 0)
			b->shards[i].thread_started = true;
		else
			log_at(LOGL_ERROR, "cannot start shard %u: %s", i,
			       strerror(rc));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc ? -1 : 0;
}

void shard_stop_all(struct broker *b)
{
	for (unsigned i = 1; i < b->shard_count; i++) {
		atomic_store(&b->shards[i].stop_wanted, true);
		ev_async_send(b->shards[i].loop, &b->shards[i].wake);
	}
	stop_self(&b->shards[0]);
}

void shard_join_threads(struct broker *b)
{
	for (unsigned i = 1; i < b->shard_count; i++) {
		if (!b->shards[i].thread_started)
			continue;
		pthread_join(b->shards[i].thread, NULL);
		b->shards[i].thread_started = false;
	}
}

unsigned shard_of_client(const struct broker *b, const char *id, size_t len)
{
	uint64_t h = session_id_hash(id, len);

	/*
	 * FNV-1a alone barely moves its high bits on the last bytes, so a
	 * fleet named sensor0001, sensor0002... would land on one shard:
	 * mix every bit in first (splitmix64's finaliser).  Stored
	 * sessions are placed by this at start-up, so it is the same in
	 * every run.
	 */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned)(h % b->shard_count);
}

/* FNV-1a from basis h, folded into the interest index. */
static unsigned interest_hash(uint32_t h, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)p[i];
		h *= 16777619u;
	}
	return (h ^ (h >> 16)) & (SHARD_INTEREST_SLOTS - 1);
}

unsigned shard_interest_slot(const char *topic, size_t len)
{
	return interest_hash(2166136261u, topic, len); /* FNV's own basis */
}

unsigned shard_interest_first_slot(const char *topic, size_t len)
{
	const char *slash = memchr(topic, '/', len);

	if (slash)
		len = (size_t)(slash - topic);
	return interest_hash(0x9e3779b9u, topic, len);
}

/* The count of the interest index a filter is kept in. */
static atomic_uint *interest_count(struct shard *sh, const char *filter,
				   size_t len)
{
	const char *slash;
	size_t first;

	/* A shared filter matches topics as the filter after its group. */
	if (len >= 7 && memcmp(filter, "$share/", 7) == 0) {
		slash = memchr(filter + 7, '/', len - 7);
		if (!slash) /* the tree refuses it; nothing to narrow */
			return &sh->interest_wild;
		len -= (size_t)(slash + 1 - filter);
		filter = slash + 1;
	}
	if (!memchr(filter, '+', len) && !memchr(filter, '#', len))
		return &sh->interest_exact[shard_interest_slot(filter, len)];
	slash = memchr(filter, '/', len);
	first = slash ? (size_t)(slash - filter) : len;
	if (memchr(filter, '+', first) || memchr(filter, '#', first))
		return &sh->interest_wild;
	return &sh->interest_first[shard_interest_first_slot(filter, len)];
}

/* Only this shard writes its counts; others only read them. */
static void interest_add(struct shard *sh, const char *filter, size_t len,
			 int delta)
{
	atomic_fetch_add_explicit(interest_count(sh, filter, len),
				  (unsigned)delta, memory_order_release);
}

int shard_sub_add(struct shard *sh, const char *filter, size_t len,
		  struct session *s, const struct sub_opts *opts,
		  bool *replaced)
{
	struct share_registry *reg = sh->broker->shares;
	const char *group;
	bool was_there;
	int rc = subtree_add(sh->subs, filter, len, s, opts, &was_there);

	if (rc < 0)
		return rc;
	group = reg ? subtree_group_of(sh->subs, filter, len) : NULL;
	if (group) {
		struct share_group *g = subtree_group_tag(group);

		if (!g) {
			g = share_group_get(reg, filter, len);
			if (!g) {
				subtree_remove(sh->subs, filter, len, s);
				return -ENOMEM;
			}
			subtree_group_set_tag(group, g);
		}
		if (!was_there)
			share_group_member(reg, g, sh->index, 1);
	}
	if (!was_there)
		interest_add(sh, filter, len, 1);
	if (replaced)
		*replaced = was_there;
	return 0;
}

int shard_sub_remove(struct shard *sh, const char *filter, size_t len,
		     struct session *s)
{
	struct share_registry *reg = sh->broker->shares;
	const char *group = reg ? subtree_group_of(sh->subs, filter, len) : NULL;
	struct share_group *g = group ? subtree_group_tag(group) : NULL;
	int rc = subtree_remove(sh->subs, filter, len, s);

	if (rc == 0 && g) {
		share_group_member(reg, g, sh->index, -1);
		if (!subtree_group_of(sh->subs, filter, len))
			share_group_put(reg, g);
	}
	if (rc == 0)
		interest_add(sh, filter, len, -1);
	return rc;
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct shard *sh = container_of(w, struct shard, flush_watcher);
	struct conn_handoff *h;
	struct conn *c, *next;

	(void)loop;
	(void)revents;
	/* Other shards first: they deliver while this one writes. */
	wake_posted(sh);
	while ((c = sh->flush_list)) {
		sh->flush_list = NULL;
		for (; c; c = next) {
			next = c->flush_next;
			c->flush_queued = false;
			if (c->state == CONN_CLOSING)
				continue;
			if (c->broken)
				conn_close(c, -1, "out of memory for output");
			else
				conn_flush(c);
		}
	}
	for (c = sh->closing; c; c = next) {
		next = c->wheel_next;
		conn_free(c);
	}
	sh->closing = NULL;
	conn_headers_release(sh);
	while ((h = sh->moving)) {
		sh->moving = h->next;
		shard_post(sh, h->to, &(struct inbox_item){
			.kind = SHARD_POST_CONN, .ptr = h });
	}
	wake_posted(sh);
}

/* Process every wheel slot whose second has passed. */
static void wheel_advance(struct shard *sh, double now)
{
	long target = (long)floor(now);
	unsigned steps = 0;

	/* Late by more than a turn: every slot is due once. */
	if (target - sh->wheel_pos > SHARD_WHEEL_SLOTS)
		sh->wheel_pos = target - SHARD_WHEEL_SLOTS;
	while (sh->wheel_pos < target && steps++ < SHARD_WHEEL_SLOTS) {
		int slot = wheel_slot_of(++sh->wheel_pos);
		struct conn *c = sh->wheel[slot], *next;

		/* Detach the slot: re-armed connections may land in it again. */
		sh->wheel[slot] = NULL;
		for (; c; c = next) {
			next = c->wheel_next;
			c->wheel_prev = c->wheel_next = NULL;
			c->wheel_slot = -1;
			if (c->last_activity + c->timeout <= now)
				conn_timed_out(c);
			else
				shard_watch_timeout(sh, c);
		}
	}
}

/* Offline sessions past their expiry [MQTT-4.1.0-?] are discarded. */
static void expire_sessions(struct shard *sh, double now)
{
	for (size_t i = 0; i < sh->session_buckets; i++) {
		struct session *s = sh->sessions[i], *next;

		for (; s; s = next) {
			next = s->hnext;
			if (s->will && !s->conn && s->will_at <= now)
				session_send_will(s);
			if (!s->conn && s->expire_at <= now)
				session_destroy(s);
		}
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct shard *sh = container_of(w, struct shard, tick);
	double now = shard_now(sh);

	(void)loop;
	(void)revents;
	wheel_advance(sh, now);
	expire_sessions(sh, now);
	bufpool_trim(&sh->bufs);
	objcache_trim(&sh->deliveries);
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		objcache_trim(&sh->msgs[k]);
	pthread_mutex_lock(&sh->snap_lock);
	sh->snap = sh->stats;
	sh->snap_sessions = sh->session_count;
	sh->snap_subs = subtree_count(sh->subs);
	pthread_mutex_unlock(&sh->snap_lock);
	if (sh->index == 0)
		sys_tick(sh, now);
}

int shard_init(struct shard *sh, struct broker *b, unsigned index,
	       struct ev_loop *loop)
{
	sh->broker = b;
	sh->loop = loop;
	sh->index = index;
	sh->wheel_pos = (long)floor(shard_now(sh)) - 1;
	sh->subs = subtree_new();
	sh->route_scratch = NULL; /* route.c makes it on first use */
	sh->headers = NULL; /* and conn.c its header cache */
	bufpool_init(&sh->bufs);
	session_delivery_cache_init(&sh->deliveries);
	msg_cache_init(sh->msgs);
	sh->rbuf = malloc(SHARD_RBUF_SIZE);
	if (!sh->subs || !sh->rbuf ||
	    inbox_init(&sh->inbox, b->shard_count, 1024) < 0) {
		subtree_free(sh->subs);
		free(sh->rbuf);
		sh->subs = NULL;
		sh->rbuf = NULL;
		return -1;
	}
	pthread_mutex_init(&sh->snap_lock, NULL);
	atomic_init(&sh->interest_wild, 0);
	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++) {
		atomic_init(&sh->interest_exact[i], 0);
		atomic_init(&sh->interest_first[i], 0);
	}
	atomic_init(&sh->stop_wanted, false);
	ev_async_init(&sh->wake, wake_cb);
	ev_async_start(loop, &sh->wake);
	ev_prepare_init(&sh->flush_watcher, flush_cb);
	ev_prepare_start(loop, &sh->flush_watcher);
	ev_timer_init(&sh->tick, tick_cb, 1.0, 1.0);
	ev_timer_start(loop, &sh->tick);
	return 0;
}

void shard_fini(struct shard *sh)
{
	if (!sh->subs)
		return;
	while (inbox_drain(&sh->inbox, drop_post, sh, SIZE_MAX))
		;
	inbox_fini(&sh->inbox);
	ev_async_stop(sh->loop, &sh->wake);
	ev_prepare_stop(sh->loop, &sh->flush_watcher);
	ev_timer_stop(sh->loop, &sh->tick);
	subtree_free(sh->subs);
	sh->subs = NULL;
	free(sh->rbuf);
	sh->rbuf = NULL;
	/* The cached headers hold messages: before the message lists. */
	conn_headers_release(sh);
	free(sh->headers);
	sh->headers = NULL;
	bufpool_fini(&sh->bufs);
	objcache_fini(&sh->deliveries);
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		objcache_fini(&sh->msgs[k]);
	free(sh->route_scratch);
	sh->route_scratch = NULL;
	pthread_mutex_destroy(&sh->snap_lock);
}
