/*
 * The shard's loop machinery: the flush pass that writes every
 * connection's output once per loop turn (ev_prepare runs just before the
 * loop blocks), freeing of closed connections at the same point, and a
 * one-second tick driving a timeout wheel: one timer for all connections,
 * re-armed lazily from last_activity (the libev manual's advice on
 * timeouts), so an idle connection costs nothing until its deadline.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/persist.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/subtree.h"
#include "broker/sys.h"

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
	c->wheel_slot = slot;
	c->wheel_prev = NULL;
	c->wheel_next = sh->wheel[slot];
	if (c->wheel_next)
		c->wheel_next->wheel_prev = c;
	sh->wheel[slot] = c;
}

void shard_hold(struct shard *sh, struct conn *c)
{
	if (persist_failed(sh->broker)) {
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

		if (!persist_is_committed(sh->broker, c->hold_seq)) {
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
	struct conn *c;

	while ((c = sh->held)) {
		held_remove(sh, c);
		shard_hold(sh, c);
	}
}

void shard_forget(struct shard *sh, struct conn *c)
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
	/* Freed after this loop turn: callers up the stack may still hold c. */
	c->wheel_next = sh->closing;
	sh->closing = c;
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct shard *sh = container_of(w, struct shard, flush_watcher);
	struct conn *c, *next;

	(void)loop;
	(void)revents;
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
	struct broker *b = sh->broker;

	for (size_t i = 0; i < b->session_buckets; i++) {
		struct session *s = b->sessions[i], *next;

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
	sys_tick(sh, now);
}

int shard_init(struct shard *sh, struct broker *b, struct ev_loop *loop)
{
	sh->broker = b;
	sh->loop = loop;
	sh->wheel_pos = (long)floor(shard_now(sh)) - 1;
	sh->subs = subtree_new();
	sh->rbuf = malloc(SHARD_RBUF_SIZE);
	if (!sh->subs || !sh->rbuf) {
		subtree_free(sh->subs);
		free(sh->rbuf);
		sh->subs = NULL;
		sh->rbuf = NULL;
		return -1;
	}
	ev_prepare_init(&sh->flush_watcher, flush_cb);
	ev_prepare_start(loop, &sh->flush_watcher);
	ev_timer_init(&sh->tick, tick_cb, 1.0, 1.0);
	ev_timer_start(loop, &sh->tick);
	return 0;
}

void shard_fini(struct shard *sh)
{
	ev_prepare_stop(sh->loop, &sh->flush_watcher);
	ev_timer_stop(sh->loop, &sh->tick);
	subtree_free(sh->subs);
	sh->subs = NULL;
	free(sh->rbuf);
	sh->rbuf = NULL;
}
