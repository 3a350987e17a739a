/*
 * Unit tests for broker/shard.c: the timeout wheel (insertion, re-arming,
 * lazy re-arming from last_activity, expiry, deadlines past one turn of
 * the wheel, catching up after a late tick, shard_forget), the flush pass
 * (each queued connection flushed once, broken ones closed, closed ones
 * freed), expiry of offline sessions, the libev wiring of
 * shard_init()/shard_fini() on a real loop, posting between shards (the
 * inbox, one wake-up per turn, what the woken shard does with each kind,
 * what shard_fini drops), shard_of_client(), and the subscription
 * bookkeeping of shard_sub_add()/shard_sub_remove() (the interest index:
 * exact filters by slot, wildcard filters by the slot of a literal first
 * level, those starting with a wildcard apart, $share ones as the filter
 * after the group; the $share registry), shard_interested(),
 * shard_interest_slot() and shard_interest_first_slot().
 *
 * shard.c is included so wheel_advance(), flush_cb(), tick_cb() and
 * expire_sessions() can be called with chosen times.  The inbox, the
 * $share registry, messages and the subscription tree are the real ones,
 * included too (subtree_new/subtree_free wrapped to fail on demand and
 * count live trees).  What it calls in other modules is faked here and
 * recorded: conn_flush, conn_close, conn_free, conn_timed_out, conn_adopt,
 * conn_headers_release,
 * conn_handoff_drop, listener_stop_shard, session_destroy, route_local,
 * route_confirm, persist_poll, persist_mark/persist_lost_since, sys_tick,
 * session_id_hash and log_write.  The fakes of
 * conn_close and conn_timed_out end in shard_forget() as the real
 * conn_close() does.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/shard.c"
#include "broker/inbox.c"
#include "broker/bufpool.c"
#include "broker/objcache.c"
#include "broker/msg.c"
#include "broker/share.c"
#include "broker/level_table.c"
#define subtree_new real_subtree_new
#define subtree_free real_subtree_free
#include "broker/subtree.c"
#undef subtree_new
#undef subtree_free

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- seams */

enum event_kind {
	REC_FLUSH,
	REC_CLOSE,
	REC_FREE,
	REC_TIMED_OUT,
	REC_DESTROY,
	REC_SYS,
	REC_ROUTE, /* route_local: obj the message, shard in sh */
	REC_ADOPT, /* conn_adopt: obj the handoff, shard in sh */
	REC_HANDOFF_DROP,
	REC_LISTENERS_STOP,
	REC_PERSIST_POLL,
	REC_LOG,
	REC_CONFIRM, /* route_confirm: obj the message, reason refused */
};

struct event {
	enum event_kind kind;
	const void *obj; /* conn or session */
	int reason; /* conn_close */
	double now; /* sys_tick */
	const struct shard *sh;
};

#define MAX_EVENTS 8192
static struct event events[MAX_EVENTS];
static size_t nevents;

/* Shard threads record too (test_threads_pause_stop). */
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;

static struct event *record(enum event_kind kind, const void *obj)
{
	struct event *e;

	pthread_mutex_lock(&record_lock);
	ck_assert_uint_lt(nevents, MAX_EVENTS);
	e = &events[nevents++];
	pthread_mutex_unlock(&record_lock);
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->obj = obj;
	return e;
}

/* What a fake conn_flush queues for flushing; NULL: nothing. */
static struct conn *flush_also;

void conn_flush(struct conn *c)
{
	record(REC_FLUSH, c);
	if (flush_also) {
		struct conn *other = flush_also;

		flush_also = NULL;
		shard_want_flush(c->shard, other);
	}
}

void conn_close(struct conn *c, int reason, const char *why)
{
	(void)why;
	if (c->state == CONN_CLOSING)
		return;
	record(REC_CLOSE, c)->reason = reason;
	c->state = CONN_CLOSING;
	shard_forget(c->shard, c);
}

void conn_free(struct conn *c)
{
	record(REC_FREE, c);
}

/* Turns that ended by dropping the PUBLISH headers cached in them. */
static unsigned headers_released;

void conn_headers_release(struct shard *sh)
{
	ck_assert_ptr_nonnull(sh);
	headers_released++;
}

void conn_timed_out(struct conn *c)
{
	record(REC_TIMED_OUT, c);
	c->state = CONN_CLOSING;
	shard_forget(c->shard, c);
}

static struct broker broker;

/* Unlinks from the registry as the real one does. */
void session_destroy(struct session *s)
{
	struct shard *sh = s->shard;
	struct session **pp = &sh->sessions[s->client_id_len %
					    sh->session_buckets];

	record(REC_DESTROY, s);
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	sh->session_count--;
}

/* A $share message from another shard reaches its member here. */
static unsigned shared_delivered;

void session_deliver(struct session *s, struct msg *msg, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint8_t sub_id_count,
		     const char *shared_group)
{
	(void)s;
	(void)msg;
	(void)qos;
	(void)retain;
	(void)sub_ids;
	(void)sub_id_count;
	ck_assert_ptr_nonnull(shared_group);
	shared_delivered++;
}

/* The tick sends parked wills that are due; here it only takes them. */
void session_send_will(struct session *s)
{
	s->will = NULL;
}

/* Storage as the output hold sees it. */
static uint64_t fake_submitted, fake_committed;
static bool fake_failed;

bool persist_is_committed(const struct broker *b, uint64_t seq)
{
	(void)b;
	return fake_committed >= seq;
}

bool persist_failed(const struct broker *b)
{
	(void)b;
	return fake_failed;
}

void sys_tick(struct shard *sh, double now)
{
	record(REC_SYS, sh)->now = now;
}

static bool subtree_fail;
static size_t subtrees_live;

struct subtree *subtree_new(void)
{
	struct subtree *t;

	if (subtree_fail)
		return NULL;
	t = real_subtree_new();
	ck_assert_ptr_nonnull(t);
	subtrees_live++;
	return t;
}

void subtree_free(struct subtree *t)
{
	if (t) {
		ck_assert_uint_gt(subtrees_live, 0);
		subtrees_live--;
	}
	real_subtree_free(t);
}

/* A message another shard posted: delivered here (recorded only). */
size_t route_local(struct shard *sh, struct msg *msg)
{
	struct event *e = record(REC_ROUTE, msg);

	e->sh = sh;
	/* take_post() drops the posted reference after this returns. */
	ck_assert_uint_ge(msg->refs, 1);
	return 1;
}

void route_confirm(struct shard *sh, struct msg *msg, bool refused)
{
	struct event *e = record(REC_CONFIRM, msg);

	e->sh = sh;
	e->reason = refused;
}

/* Whether storage lost something while a posted message was routed. */
static bool fake_lost;

struct persist_mark persist_mark(const struct broker *b)
{
	struct persist_mark m = { 0, 0 };

	(void)b;
	return m;
}

bool persist_lost_since(const struct broker *b, const struct persist_mark *m)
{
	(void)b;
	(void)m;
	return fake_lost;
}

void conn_adopt(struct shard *sh, struct conn_handoff *h)
{
	record(REC_ADOPT, h)->sh = sh;
}

void conn_handoff_drop(struct conn_handoff *h)
{
	record(REC_HANDOFF_DROP, h);
}

void listener_stop_shard(struct listener *list, struct shard *sh)
{
	record(REC_LISTENERS_STOP, list)->sh = sh;
}

void persist_poll(struct shard *sh)
{
	record(REC_PERSIST_POLL, NULL)->sh = sh;
}

/* shard_of_client() mixes the hash: the tests choose it. */
static uint64_t fake_hash;

uint64_t session_id_hash(const char *id, size_t len)
{
	(void)id;
	(void)len;
	return fake_hash;
}

unsigned log_mask = ~0u;

void log_write(unsigned level, const char *fmt, ...)
{
	(void)fmt;
	record(REC_LOG, NULL)->reason = (int)level;
}

/* -------------------------------------------------------------- fixture */

#define NCONN 8
static struct shard shard;
static struct conn conns[NCONN];

/* A second, with a fraction so ceil() and floor() differ. */
#define T0 1700000000.25

static void add_conn(struct conn *c)
{
	c->shard = &shard;
	c->state = CONN_ACTIVE;
	c->wheel_slot = -1;
	c->next = shard.conns;
	if (shard.conns)
		shard.conns->prev = c;
	shard.conns = c;
	shard.conn_count++;
}

static void setup(void)
{
	memset(&broker, 0, sizeof(broker));
	memset(&shard, 0, sizeof(shard));
	memset(conns, 0, sizeof(conns));
	shard.broker = &broker;
	broker.shards = &shard;
	broker.shard_count = 1;
	for (size_t i = 0; i < NCONN; i++)
		add_conn(&conns[i]);
	nevents = 0;
	flush_also = NULL;
	fake_submitted = fake_committed = 0;
	fake_failed = false;
	fake_lost = false;
	subtree_fail = false;
	subtrees_live = 0;
}

/* ------------------------------------------------------------- helpers */

/* The interest index of the fixture's shard. */
static unsigned wild_count(void)
{
	return atomic_load(&shard.interest_wild);
}

static unsigned slot_of_topic(const char *topic)
{
	unsigned slot = shard_interest_slot(topic, strlen(topic));

	ck_assert_uint_lt(slot, SHARD_INTEREST_SLOTS);
	return slot;
}

/* The exact count of filter's slot. */
static unsigned exact_count(const char *filter)
{
	return atomic_load(&shard.interest_exact[slot_of_topic(filter)]);
}

/* The exact counts of every slot, added up. */
static unsigned exact_total(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++)
		n += atomic_load(&shard.interest_exact[i]);
	return n;
}

static unsigned first_slot_of(const char *topic)
{
	unsigned slot = shard_interest_first_slot(topic, strlen(topic));

	ck_assert_uint_lt(slot, SHARD_INTEREST_SLOTS);
	return slot;
}

/* The first-level count of filter's first level. */
static unsigned first_count(const char *filter)
{
	return atomic_load(&shard.interest_first[first_slot_of(filter)]);
}

/* The first-level counts of every slot, added up. */
static unsigned first_total(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++)
		n += atomic_load(&shard.interest_first[i]);
	return n;
}

/* What another shard publishing topic asks of the fixture's shard. */
static bool interested(const char *topic)
{
	return shard_interested(&shard, slot_of_topic(topic),
				first_slot_of(topic));
}


static void arm(struct conn *c, double last_activity, double timeout)
{
	c->last_activity = last_activity;
	c->timeout = (float)timeout;
	shard_watch_timeout(&shard, c);
}

static int slot_of(double deadline)
{
	return (int)((unsigned long)ceil(deadline) % SHARD_WHEEL_SLOTS);
}

/* c is where its slot says, linked both ways; or in no slot at all. */
static bool in_slot(const struct conn *c, int slot)
{
	const struct conn *p, *prev = NULL;
	bool found = false;

	for (p = shard.wheel[slot]; p; prev = p, p = p->wheel_next) {
		ck_assert_ptr_eq(p->wheel_prev, prev);
		ck_assert_int_eq(p->wheel_slot, slot);
		if (p == c)
			found = true;
	}
	return found;
}

static size_t wheel_size(void)
{
	size_t n = 0;

	for (int i = 0; i < SHARD_WHEEL_SLOTS; i++) {
		const struct conn *p;

		for (p = shard.wheel[i]; p; p = p->wheel_next)
			n++;
	}
	return n;
}

static size_t count(enum event_kind kind, const void *obj)
{
	size_t n = 0;

	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == kind && (!obj || events[i].obj == obj))
			n++;
	return n;
}

/* -------------------------------------------------------- wheel: insert */

struct insert_row {
	double last;
	double timeout;
	bool in_wheel;
};

static const struct insert_row insert_rows[] = {
	{ T0, 0, false }, /* no timeout */
	{ T0, -1, false },
	{ T0, 0.5, true },
	{ T0, 1.5, true },
	{ T0, 90, true },
	{ T0, 511.75, true }, /* lands on an integer second */
	{ T0, 512, true }, /* one turn: the slot of now */
	{ T0, 65535 * 1.5, true },
	{ 1700000000.0, 10, true }, /* integer deadline */
};

START_TEST(test_watch_inserts)
{
	const struct insert_row *r = &insert_rows[_i];
	struct conn *c = &conns[0];

	arm(c, r->last, r->timeout);
	if (!r->in_wheel) {
		ck_assert_int_eq(c->wheel_slot, -1);
		ck_assert_uint_eq(wheel_size(), 0);
		return;
	}
	ck_assert_int_eq(c->wheel_slot, slot_of(r->last + r->timeout));
	ck_assert(in_slot(c, c->wheel_slot));
	ck_assert_uint_eq(wheel_size(), 1);
	/* Armed again unchanged: still once, same slot. */
	shard_watch_timeout(&shard, c);
	ck_assert_int_eq(c->wheel_slot, slot_of(r->last + r->timeout));
	ck_assert_uint_eq(wheel_size(), 1);
	/* Timeout off: out of the wheel. */
	c->timeout = 0;
	shard_watch_timeout(&shard, c);
	ck_assert_int_eq(c->wheel_slot, -1);
	ck_assert_ptr_null(c->wheel_next);
	ck_assert_ptr_null(c->wheel_prev);
	ck_assert_uint_eq(wheel_size(), 0);
}
END_TEST

/* Re-arming takes a connection out of any place in its slot's list. */
START_TEST(test_rearm_moves)
{
	int s10 = slot_of(T0 + 10), s20 = slot_of(T0 + 20);

	for (int i = 0; i < 4; i++)
		arm(&conns[i], T0, 10); /* list: 3 2 1 0 */
	for (int i = 0; i < 4; i++)
		ck_assert(in_slot(&conns[i], s10));

	arm(&conns[2], T0 + 10, 10); /* a middle one */
	ck_assert(!in_slot(&conns[2], s10));
	ck_assert(in_slot(&conns[2], s20));
	arm(&conns[3], T0 + 10, 10); /* the head */
	arm(&conns[0], T0 + 10, 10); /* the tail */
	ck_assert(in_slot(&conns[1], s10));
	ck_assert_ptr_eq(shard.wheel[s10], &conns[1]);
	ck_assert_ptr_null(conns[1].wheel_next);
	ck_assert_ptr_null(conns[1].wheel_prev);
	for (int i = 0; i < 4; i++)
		ck_assert(in_slot(&conns[i], i == 1 ? s10 : s20));
	ck_assert_uint_eq(wheel_size(), 4);
	arm(&conns[1], T0 + 10, 10); /* the last one leaves the slot */
	ck_assert_ptr_null(shard.wheel[s10]);
	ck_assert_uint_eq(wheel_size(), 4);
}
END_TEST

/* ------------------------------------------------------- wheel: expiry */

START_TEST(test_expires_at_deadline)
{
	struct conn *c = &conns[0];

	arm(c, T0, 10); /* deadline T0 + 10 = ...010.25 */
	wheel_advance(&shard, T0);
	wheel_advance(&shard, T0 + 9.9);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	ck_assert(in_slot(c, slot_of(T0 + 10)));
	wheel_advance(&shard, T0 + 10.5); /* past, but its second is not */
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	wheel_advance(&shard, T0 + 10.75);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 1);
	ck_assert_ptr_eq(events[0].obj, c);
	ck_assert_int_eq(c->wheel_slot, -1);
	ck_assert_uint_eq(wheel_size(), 0);
	/* Gone to the closing list, once. */
	ck_assert_ptr_eq(shard.closing, c);
	ck_assert_uint_eq(shard.conn_count, NCONN - 1);
	wheel_advance(&shard, T0 + 600);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 1);
}
END_TEST

/* A deadline on a whole second expires when that second comes. */
START_TEST(test_expires_integer_deadline)
{
	struct conn *c = &conns[0];

	arm(c, 1700000000.0, 10);
	wheel_advance(&shard, 1700000000.0);
	wheel_advance(&shard, 1700000009.999);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	wheel_advance(&shard, 1700000010.0);
	ck_assert_uint_eq(count(REC_TIMED_OUT, c), 1);
}
END_TEST

/* Activity since arming: re-armed for the new deadline, not expired. */
START_TEST(test_activity_rearms)
{
	struct conn *c = &conns[0];

	arm(c, T0, 10);
	wheel_advance(&shard, T0);
	c->last_activity = T0 + 6; /* what conn_read_cb does */
	wheel_advance(&shard, T0 + 11);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	ck_assert_int_eq(c->wheel_slot, slot_of(T0 + 16));
	ck_assert(in_slot(c, slot_of(T0 + 16)));
	ck_assert_uint_eq(wheel_size(), 1);
	c->last_activity = T0 + 15;
	wheel_advance(&shard, T0 + 17);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	ck_assert_int_eq(c->wheel_slot, slot_of(T0 + 25));
	wheel_advance(&shard, T0 + 25.5); /* the deadline's second is next */
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 0);
	wheel_advance(&shard, T0 + 26);
	ck_assert_uint_eq(count(REC_TIMED_OUT, c), 1);
}
END_TEST

/* Deadlines past one turn of the wheel come round, and wait. */
struct far_row {
	double timeout;
	double step; /* seconds between ticks */
};

static const struct far_row far_rows[] = {
	{ 512, 1 },
	{ 513, 1 },
	{ 1000, 1 },
	{ 1024, 1 },
	{ 65535 * 1.5, 7 },
	{ 2000, 100 }, /* late ticks */
	{ 2000, 511 },
};

START_TEST(test_far_deadline)
{
	const struct far_row *r = &far_rows[_i];
	struct conn *c = &conns[0];
	double deadline = T0 + r->timeout, t;

	arm(c, T0, r->timeout);
	wheel_advance(&shard, T0);
	for (t = T0 + r->step; floor(t) < ceil(deadline); t += r->step) {
		wheel_advance(&shard, t);
		ck_assert_msg(count(REC_TIMED_OUT, NULL) == 0,
			      "expired %.2f s early", deadline - t);
		ck_assert(in_slot(c, slot_of(deadline)));
	}
	wheel_advance(&shard, ceil(deadline) + 0.5);
	ck_assert_uint_eq(count(REC_TIMED_OUT, c), 1);
}
END_TEST

/* One late tick expires everything due since the last. */
START_TEST(test_catch_up)
{
	static const double timeouts[NCONN] = { 1, 2, 3, 5, 8, 13, 2000, 0 };

	for (size_t i = 0; i < NCONN; i++)
		arm(&conns[i], T0, timeouts[i]);
	wheel_advance(&shard, T0);
	wheel_advance(&shard, T0 + 9);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 5);
	/* In deadline order: slot by slot. */
	for (size_t i = 0; i < 5; i++)
		ck_assert_ptr_eq(events[i].obj, &conns[i]);
	ck_assert(in_slot(&conns[5], slot_of(T0 + 13)));
	ck_assert(in_slot(&conns[6], slot_of(T0 + 2000)));
	ck_assert_int_eq(conns[7].wheel_slot, -1);

	/* Over a turn late: every slot once; the far one is not due. */
	wheel_advance(&shard, T0 + 9 + 1000);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 6);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[5]), 1);
	ck_assert(in_slot(&conns[6], slot_of(T0 + 2000)));
	/* Over a turn late again, its slot swept just before it is due. */
	wheel_advance(&shard, T0 + 1999.5);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[6]), 0);
	ck_assert(in_slot(&conns[6], slot_of(T0 + 2000)));
	wheel_advance(&shard, T0 + 2001);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[6]), 1);
	ck_assert_uint_eq(wheel_size(), 0);
}
END_TEST

/* One slot: expired, re-armed and expired again, all in one pass. */
START_TEST(test_slot_mixed)
{
	for (int i = 0; i < 5; i++)
		arm(&conns[i], T0, 10);
	conns[1].last_activity = T0 + 3;
	conns[3].last_activity = T0 + 512; /* re-armed into the same slot */
	wheel_advance(&shard, T0);
	wheel_advance(&shard, T0 + 11);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 3);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[0]), 1);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[2]), 1);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[4]), 1);
	ck_assert(in_slot(&conns[1], slot_of(T0 + 13)));
	ck_assert(in_slot(&conns[3], slot_of(T0 + 10)));
	ck_assert_uint_eq(wheel_size(), 2);
	/* The closing list holds the three, wheel_next reused. */
	{
		size_t n = 0;

		for (struct conn *p = shard.closing; p; p = p->wheel_next)
			n++;
		ck_assert_uint_eq(n, 3);
	}
	wheel_advance(&shard, T0 + 14);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[1]), 1);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[3]), 0);
}
END_TEST

/* ------------------------------------------------------- shard_forget */

START_TEST(test_forget)
{
	struct conn *c = &conns[3];
	int slot = slot_of(T0 + 5);

	arm(&conns[2], T0, 5);
	arm(c, T0, 5);
	arm(&conns[4], T0, 5);
	shard_forget(&shard, c);
	ck_assert_int_eq(c->wheel_slot, -1);
	ck_assert(!in_slot(c, slot));
	ck_assert(in_slot(&conns[2], slot));
	ck_assert(in_slot(&conns[4], slot));
	ck_assert_uint_eq(shard.conn_count, NCONN - 1);
	ck_assert_ptr_null(c->prev);
	ck_assert_ptr_null(c->next);
	for (struct conn *p = shard.conns; p; p = p->next)
		ck_assert_ptr_ne(p, c);
	ck_assert_ptr_eq(conns[4].next, &conns[2]); /* list closed up */
	ck_assert_ptr_eq(conns[2].prev, &conns[4]);
	ck_assert_ptr_eq(shard.closing, c);
	ck_assert_ptr_null(c->wheel_next);

	/* Head and tail of the connection list, and one not in the wheel. */
	shard_forget(&shard, &conns[NCONN - 1]);
	ck_assert_ptr_eq(shard.conns, &conns[NCONN - 2]);
	ck_assert_ptr_null(conns[NCONN - 2].prev);
	shard_forget(&shard, &conns[0]);
	ck_assert_ptr_null(conns[1].next);
	ck_assert_uint_eq(shard.conn_count, NCONN - 3);
	ck_assert_ptr_eq(shard.closing, &conns[0]);
	ck_assert_ptr_eq(conns[0].wheel_next, &conns[NCONN - 1]);
	ck_assert_ptr_eq(conns[NCONN - 1].wheel_next, c);

	/* Past the deadline: only the two still watched time out. */
	wheel_advance(&shard, T0);
	wheel_advance(&shard, T0 + 6);
	ck_assert_uint_eq(count(REC_TIMED_OUT, NULL), 2);
	ck_assert_uint_eq(count(REC_TIMED_OUT, c), 0);
}
END_TEST

/* ---------------------------------------------------------- flush pass */

static void run_flush(void)
{
	flush_cb(NULL, &shard.flush_watcher, EV_PREPARE);
}

START_TEST(test_want_flush_once)
{
	shard_want_flush(&shard, &conns[0]);
	shard_want_flush(&shard, &conns[1]);
	shard_want_flush(&shard, &conns[0]);
	ck_assert(conns[0].flush_queued);
	ck_assert_ptr_eq(shard.flush_list, &conns[1]);
	ck_assert_ptr_eq(conns[1].flush_next, &conns[0]);
	run_flush();
	ck_assert_uint_eq(nevents, 2);
	ck_assert_uint_eq(count(REC_FLUSH, &conns[0]), 1);
	ck_assert_uint_eq(count(REC_FLUSH, &conns[1]), 1);
	ck_assert(!conns[0].flush_queued);
	ck_assert(!conns[1].flush_queued);
	ck_assert_ptr_null(shard.flush_list);
	/* Nothing queued: nothing done. */
	nevents = 0;
	run_flush();
	ck_assert_uint_eq(nevents, 0);
	/* Queued again after a pass: flushed again. */
	shard_want_flush(&shard, &conns[0]);
	run_flush();
	ck_assert_uint_eq(count(REC_FLUSH, &conns[0]), 1);
}
END_TEST

START_TEST(test_flush_pass)
{
	struct conn *ok = &conns[0], *broken = &conns[1], *closing = &conns[2],
		    *closed_before = &conns[3];

	broken->broken = true;
	shard_want_flush(&shard, ok);
	shard_want_flush(&shard, broken);
	shard_want_flush(&shard, closing);
	closing->state = CONN_CLOSING; /* closed after queueing */
	shard_forget(&shard, closing);
	conn_close(closed_before, -1, "test"); /* not queued, closing */
	nevents = 0;
	headers_released = 0;

	run_flush();
	ck_assert_uint_eq(headers_released, 1); /* once per turn */
	ck_assert_uint_eq(count(REC_FLUSH, ok), 1);
	ck_assert_uint_eq(count(REC_FLUSH, NULL), 1);
	ck_assert_uint_eq(count(REC_CLOSE, broken), 1);
	ck_assert_uint_eq(count(REC_CLOSE, NULL), 1);
	ck_assert_int_eq(events[0].kind == REC_CLOSE ? events[0].reason :
			 events[1].reason, -1);
	/* Every closed connection freed once, after the flushing. */
	ck_assert_uint_eq(count(REC_FREE, broken), 1);
	ck_assert_uint_eq(count(REC_FREE, closing), 1);
	ck_assert_uint_eq(count(REC_FREE, closed_before), 1);
	ck_assert_uint_eq(count(REC_FREE, NULL), 3);
	ck_assert_uint_eq(events[2].kind, REC_FREE);
	ck_assert_uint_eq(nevents, 5);
	ck_assert_ptr_null(shard.closing);
	ck_assert_ptr_null(shard.flush_list);
	ck_assert_uint_eq(shard.conn_count, NCONN - 3);
	for (int i = 0; i < 3; i++)
		ck_assert(!conns[i].flush_queued);

	nevents = 0;
	run_flush();
	ck_assert_uint_eq(nevents, 0);
}
END_TEST

/*
 * Output that waits for a commit (conn.c sets hold_seq) goes back to the
 * flush list only once storage has committed that far.
 */
START_TEST(test_hold_until_committed)
{
	struct conn *b = &conns[1], *c = &conns[2];

	b->hold_seq = c->hold_seq = 9;
	shard_want_flush(&shard, b);
	shard_want_flush(&shard, c);
	run_flush();

	/* conn_flush (conn.c) puts them on hold; here the test does. */
	shard_hold(&shard, b);
	shard_hold(&shard, c);
	shard_hold(&shard, c);
	fake_committed = 8;
	nevents = 0;
	shard_release_held(&shard);
	run_flush();
	ck_assert_uint_eq(nevents, 0);
	ck_assert(b->held && c->held);

	/* A closed connection leaves the held list. */
	conn_close(c, -1, "test");
	ck_assert(!c->held);
	fake_committed = 9;
	nevents = 0;
	shard_release_held(&shard);
	ck_assert(!b->held);
	ck_assert_uint_eq(b->hold_seq, 0);
	ck_assert_ptr_null(shard.held);
	run_flush();
	ck_assert_uint_eq(count(REC_FLUSH, b), 1);
	ck_assert_uint_eq(count(REC_FLUSH, NULL), 1);
}
END_TEST

/* Storage failed: what waited for it is never written, the clients resend. */
START_TEST(test_drop_held_on_failure)
{
	struct conn *a = &conns[0], *b = &conns[1];

	fake_submitted = 3;
	a->hold_seq = 3;
	shard_want_flush(&shard, a);
	run_flush();
	shard_hold(&shard, a);
	fake_failed = true;
	nevents = 0;
	shard_drop_held(&shard);
	ck_assert_uint_eq(count(REC_CLOSE, a), 1);
	ck_assert_ptr_null(shard.held);
	/* After the failure, holding for a commit means closing. */
	b->hold_seq = 4;
	shard_hold(&shard, b);
	ck_assert_uint_eq(count(REC_CLOSE, b), 1);
	ck_assert(!b->held);
	ck_assert_uint_eq(b->hold_seq, 0);
}
END_TEST

/*
 * Output that waits only for other shards to confirm a message
 * (durability strict, c->wait_msg) is no commit: held until none is
 * pending, and a storage failure leaves it waiting.
 */
START_TEST(test_hold_for_other_shards)
{
	static struct msg wm;
	struct conn *c = &conns[2], *d = &conns[3];

	memset(&wm, 0, sizeof(wm));
	atomic_store(&wm.remote_pending, 2);
	c->wait_msg = &wm;
	shard_hold(&shard, c);
	ck_assert(c->held);
	shard_release_held(&shard);
	ck_assert(c->held);
	atomic_store(&wm.remote_pending, 1);
	shard_release_held(&shard);
	ck_assert(c->held);

	/* Storage fails: c waits on, d (waiting for a commit) is closed. */
	d->hold_seq = 5;
	shard_hold(&shard, d);
	fake_failed = true;
	nevents = 0;
	shard_drop_held(&shard);
	ck_assert_uint_eq(count(REC_CLOSE, d), 1);
	ck_assert_uint_eq(count(REC_CLOSE, c), 0);
	ck_assert(c->held);
	ck_assert_ptr_eq(shard.held, c);
	ck_assert_ptr_null(c->held_next);

	/* The last shard confirms: out it goes. */
	atomic_store(&wm.remote_pending, 0);
	shard_release_held(&shard);
	ck_assert(!c->held);
	ck_assert_ptr_null(shard.held);
	run_flush();
	ck_assert_uint_eq(count(REC_FLUSH, c), 1);
	c->wait_msg = NULL;
}
END_TEST

/* What a flush queues (output for another client) goes in the same pass. */
START_TEST(test_flush_queues_more)
{
	shard_want_flush(&shard, &conns[0]);
	flush_also = &conns[5];
	run_flush();
	ck_assert_uint_eq(nevents, 2);
	ck_assert_ptr_eq(events[0].obj, &conns[0]);
	ck_assert_ptr_eq(events[1].obj, &conns[5]);
	ck_assert_uint_eq(count(REC_FLUSH, NULL), 2);
	ck_assert_ptr_null(shard.flush_list);
	ck_assert(!conns[5].flush_queued);
}
END_TEST

/* ---------------------------------------------------- session expiry */

START_TEST(test_expire_sessions)
{
	static struct session *buckets[4];
	static struct session s[6];
	static const struct {
		bool online;
		double expire_at;
		bool destroyed;
	} rows[6] = {
		{ false, T0 - 1, true },
		{ false, T0, true }, /* at its time */
		{ false, T0 + 0.5, false },
		{ false, INFINITY, false },
		{ true, T0 - 100, false }, /* online: never */
		{ false, 0, true },
	};

	shard.sessions = buckets;
	shard.session_buckets = NELEM(buckets);
	/* All in one chain (length 0 -> bucket 0), and one elsewhere. */
	for (size_t i = 0; i < NELEM(s); i++) {
		size_t b;

		memset(&s[i], 0, sizeof(s[i]));
		s[i].client_id_len = i == 5 ? 1 : 0;
		s[i].conn = rows[i].online ? &conns[0] : NULL;
		s[i].expire_at = rows[i].expire_at;
		s[i].shard = &shard;
		b = s[i].client_id_len % NELEM(buckets);
		s[i].hnext = buckets[b];
		buckets[b] = &s[i];
		shard.session_count++;
	}
	expire_sessions(&shard, T0);
	for (size_t i = 0; i < NELEM(s); i++)
		ck_assert_msg(count(REC_DESTROY, &s[i]) ==
			      (rows[i].destroyed ? 1u : 0u), "session %zu", i);
	ck_assert_uint_eq(shard.session_count, 3);
	nevents = 0;
	expire_sessions(&shard, T0);
	ck_assert_uint_eq(nevents, 0);
	expire_sessions(&shard, T0 + 1);
	ck_assert_uint_eq(count(REC_DESTROY, &s[2]), 1);
	ck_assert_uint_eq(nevents, 1);
	shard.sessions = NULL;
	shard.session_buckets = 0;
}
END_TEST

/* ------------------------------------------------------ libev wiring */

START_TEST(test_init_fini_on_loop)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	double now;

	ck_assert_ptr_nonnull(loop);
	memset(&shard, 0, sizeof(shard));
	/* Counts left from before: shard_init() zeroes the index. */
	atomic_store(&shard.interest_wild, 7);
	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++) {
		atomic_store(&shard.interest_exact[i], 7);
		atomic_store(&shard.interest_first[i], 7);
	}
	ck_assert_int_eq(shard_init(&shard, &broker, 0, loop), 0);
	ck_assert_ptr_eq(shard.broker, &broker);
	ck_assert_ptr_eq(shard.loop, loop);
	ck_assert_ptr_nonnull(shard.subs);
	ck_assert(ev_is_active(&shard.flush_watcher));
	ck_assert(ev_is_active(&shard.tick));
	ck_assert(ev_is_active(&shard.wake));
	ck_assert_uint_eq(shard.inbox.producers, 1); /* broker.shard_count */
	ck_assert(inbox_empty(&shard.inbox));
	ck_assert_uint_eq(atomic_load(&shard.interest_wild), 0);
	ck_assert_uint_eq(exact_total(), 0);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert_uint_eq(subtrees_live, 1);

	/* The prepare watcher runs the flush pass before the loop blocks. */
	conns[0].shard = &shard;
	conns[0].state = CONN_ACTIVE;
	shard_want_flush(&shard, &conns[0]);
	ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(count(REC_FLUSH, &conns[0]), 1);
	ck_assert_ptr_null(shard.flush_list);

	/* The tick: the wheel at the loop's time, expiry, $SYS. */
	now = shard_now(&shard);
	conns[1].shard = &shard;
	conns[1].state = CONN_ACTIVE;
	conns[1].wheel_slot = -1;
	conns[1].prev = conns[1].next = NULL;
	shard.conns = &conns[1];
	shard.conn_count = 1;
	conns[1].last_activity = now - 30;
	conns[1].timeout = 10;
	shard_watch_timeout(&shard, &conns[1]);
	nevents = 0;
	tick_cb(loop, &shard.tick, EV_TIMER);
	ck_assert_uint_eq(count(REC_TIMED_OUT, &conns[1]), 1);
	ck_assert_uint_eq(count(REC_SYS, &shard), 1);
	ck_assert(events[nevents - 1].kind == REC_SYS);
	ck_assert(events[nevents - 1].now >= now); /* the tick reads the clock */
	ck_assert_ptr_eq(shard.closing, &conns[1]);
	ev_run(loop, EVRUN_NOWAIT); /* frees what the tick closed */
	ck_assert_uint_eq(count(REC_FREE, &conns[1]), 1);
	ck_assert_ptr_null(shard.closing);

	shard_fini(&shard);
	ck_assert(!ev_is_active(&shard.flush_watcher));
	ck_assert(!ev_is_active(&shard.tick));
	ck_assert(!ev_is_active(&shard.wake));
	ck_assert_ptr_null(shard.subs);
	ck_assert_uint_eq(subtrees_live, 0);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_init_fails_without_tree)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

	ck_assert_ptr_nonnull(loop);
	memset(&shard, 0, sizeof(shard));
	subtree_fail = true;
	ck_assert_int_eq(shard_init(&shard, &broker, 0, loop), -1);
	ck_assert(!ev_is_active(&shard.flush_watcher));
	ck_assert(!ev_is_active(&shard.tick));
	ev_loop_destroy(loop);
}
END_TEST

/* ---------------------------------------------------- between shards */

/* Two shards of the broker, each on a loop of its own. */
static struct shard pair[2];
static struct ev_loop *pair_loop[2];

static void pair_init(void)
{
	broker.shards = pair;
	broker.shard_count = 2;
	memset(pair, 0, sizeof(pair));
	for (unsigned i = 0; i < 2; i++) {
		pair_loop[i] = ev_loop_new(EVFLAG_AUTO);
		ck_assert_ptr_nonnull(pair_loop[i]);
		ck_assert_int_eq(shard_init(&pair[i], &broker, i, pair_loop[i]),
				 0);
		ck_assert_uint_eq(pair[i].index, i);
		ck_assert_uint_eq(pair[i].inbox.producers, 2);
	}
}

static void pair_fini(void)
{
	for (unsigned i = 0; i < 2; i++) {
		shard_fini(&pair[i]);
		ev_loop_destroy(pair_loop[i]);
	}
	ck_assert_uint_eq(subtrees_live, 0);
	broker.shards = &shard;
	broker.shard_count = 1;
}

static struct msg *mkmsg(const char *topic)
{
	struct msg *m = msg_new(topic, strlen(topic), (const uint8_t *)"x", 1,
				NULL, 0, 1, false);

	ck_assert_ptr_nonnull(m);
	return m;
}

static void run_turn(unsigned i)
{
	ev_run(pair_loop[i], EVRUN_NOWAIT);
}

/*
 * What one shard posts goes to the other's inbox at once, and wakes it
 * once at the end of the turn; the woken shard routes the messages in
 * the order they were posted, adopts the connection, and gives the
 * posted references back.
 */
START_TEST(test_post_and_wake)
{
	struct msg *m[3];
	struct conn_handoff h;
	struct inbox_item it = { .kind = SHARD_POST_CONN, .ptr = &h };
	size_t first;

	pair_init();
	for (size_t i = 0; i < NELEM(m); i++) {
		m[i] = mkmsg("t");
		shard_post_route(&pair[0], 1, msg_ref(m[i]));
		ck_assert_uint_eq(m[i]->refs, 2);
	}
	shard_post(&pair[0], 1, &it);
	ck_assert_uint_eq(pair[0].wake_mask, 1u << 1);
	ck_assert(!inbox_empty(&pair[1].inbox));
	ck_assert(inbox_empty(&pair[0].inbox));

	/* Not woken yet: shard 1's loop has nothing to do. */
	nevents = 0;
	run_turn(1);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 0);
	ck_assert(!inbox_empty(&pair[1].inbox));

	/* Shard 0's turn ends: one wake-up. */
	run_turn(0);
	ck_assert_uint_eq(pair[0].wake_mask, 0);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 0);
	first = nevents;
	run_turn(1);
	ck_assert(inbox_empty(&pair[1].inbox));
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 3);
	ck_assert_uint_eq(count(REC_ADOPT, &h), 1);
	ck_assert_uint_eq(count(REC_PERSIST_POLL, NULL), 1); /* one wake */
	/* Each message routed, then confirmed (storage lost nothing). */
	for (size_t i = 0; i < NELEM(m); i++) {
		const struct event *e = &events[first + 2 * i];

		ck_assert_uint_eq(e[0].kind, REC_ROUTE);
		ck_assert_ptr_eq(e[0].obj, m[i]);
		ck_assert_ptr_eq(e[0].sh, &pair[1]);
		ck_assert_uint_eq(e[1].kind, REC_CONFIRM);
		ck_assert_ptr_eq(e[1].obj, m[i]);
		ck_assert_ptr_eq(e[1].sh, &pair[1]);
		ck_assert_int_eq(e[1].reason, false);
		ck_assert_uint_eq(m[i]->refs, 1); /* the post's went */
	}
	ck_assert_uint_eq(events[first + 6].kind, REC_ADOPT);
	ck_assert_ptr_eq(events[first + 6].sh, &pair[1]);

	/* Nothing more: another turn does nothing. */
	nevents = 0;
	run_turn(0);
	run_turn(1);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 0);
	ck_assert_uint_eq(count(REC_PERSIST_POLL, NULL), 0);

	/* The other way round; storage lost a record meanwhile: refused. */
	shard_post_route(&pair[1], 0, msg_ref(m[0]));
	ck_assert_uint_eq(pair[1].wake_mask, 1u << 0);
	fake_lost = true;
	run_turn(1);
	run_turn(0);
	ck_assert_uint_eq(count(REC_ROUTE, m[0]), 1);
	ck_assert_ptr_eq(events[0].sh, &pair[0]);
	ck_assert_uint_eq(count(REC_CONFIRM, m[0]), 1);
	ck_assert_uint_eq(events[1].kind, REC_CONFIRM);
	ck_assert_int_eq(events[1].reason, true);
	ck_assert_uint_eq(m[0]->refs, 1);

	for (size_t i = 0; i < NELEM(m); i++)
		msg_unref(m[i]);
	pair_fini();
}
END_TEST

/* Past the ring's 1024 items, posts spill over and still come in order. */
START_TEST(test_post_overflow_in_order)
{
	enum { N = 3000 };
	static struct msg *m[N];
	size_t i, j;

	pair_init();
	for (i = 0; i < N; i++) {
		m[i] = mkmsg("t");
		shard_post_route(&pair[0], 1, msg_ref(m[i]));
	}
	run_turn(0);
	nevents = 0;
	/* One wake drains what a batch holds; the rest on the next turns. */
	for (j = 0; j < 4 && count(REC_ROUTE, NULL) < N; j++)
		run_turn(1);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), N);
	for (i = 0, j = 0; i < nevents; i++) {
		if (events[i].kind != REC_ROUTE)
			continue;
		ck_assert_ptr_eq(events[i].obj, m[j]);
		j++;
	}
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(m[i]->refs, 1);
		msg_unref(m[i]);
	}
	pair_fini();
}
END_TEST

/* What nobody took is dropped by shard_fini: references and handoffs. */
START_TEST(test_fini_drops_posts)
{
	struct msg *m = mkmsg("t");
	struct conn_handoff h;
	struct inbox_item it = { .kind = SHARD_POST_CONN, .ptr = &h };

	pair_init();
	shard_post_route(&pair[0], 1, msg_ref(m));
	shard_post(&pair[0], 1, &it);
	shard_post_route(&pair[1], 0, msg_ref(m));
	ck_assert_uint_eq(m->refs, 3);
	nevents = 0;
	pair_fini();
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_uint_eq(count(REC_HANDOFF_DROP, &h), 1);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 0);
	ck_assert_uint_eq(count(REC_ADOPT, NULL), 0);
	/* A publisher waiting on them hears they were refused. */
	ck_assert_uint_eq(count(REC_CONFIRM, m), 2);
	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == REC_CONFIRM)
			ck_assert_int_eq(events[i].reason, true);
	msg_unref(m);
}
END_TEST

/*
 * shard_stop_all: shard 0 stops at once, the others when their wake-up
 * runs, closing their connections (Server shutting down) and listeners;
 * a stopping shard takes nothing more from its inbox.
 */
START_TEST(test_stop_all)
{
	struct msg *m = mkmsg("t");

	pair_init();
	conns[0].shard = &pair[0];
	conns[1].shard = &pair[1];
	conns[0].prev = conns[0].next = NULL;
	conns[1].prev = conns[1].next = NULL;
	pair[0].conns = &conns[0];
	pair[0].conn_count = 1;
	pair[1].conns = &conns[1];
	pair[1].conn_count = 1;
	shard_post_route(&pair[0], 1, msg_ref(m));
	nevents = 0;
	shard_stop_all(&broker);
	ck_assert_uint_eq(count(REC_CLOSE, &conns[0]), 1);
	ck_assert_uint_eq(count(REC_CLOSE, &conns[1]), 0);
	ck_assert_uint_eq(count(REC_LISTENERS_STOP, NULL), 1);
	ck_assert_ptr_eq(events[nevents - 1].sh, &pair[0]);
	ck_assert(atomic_load(&pair[1].stop_wanted));
	ck_assert(!atomic_load(&pair[0].stop_wanted));

	run_turn(0); /* its wake_posted: shard 1 woken for the post too */
	run_turn(1);
	/* As shard_thread() does: one more turn frees what was closed. */
	ck_assert_uint_eq(count(REC_FREE, &conns[1]), 0);
	run_turn(1);
	ck_assert_uint_eq(count(REC_CLOSE, &conns[1]), 1);
	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == REC_CLOSE)
			ck_assert_int_eq(events[i].reason,
					 MQTT_RC_SERVER_SHUTTING_DOWN);
	ck_assert_uint_eq(count(REC_LISTENERS_STOP, NULL), 2);
	ck_assert_uint_eq(count(REC_ROUTE, NULL), 0);
	ck_assert_uint_eq(count(REC_FREE, NULL), 2); /* both flushed out */
	ck_assert_uint_eq(m->refs, 2);
	pair_fini();
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
}
END_TEST

/*
 * A real shard thread: shard_pause_all parks it (and returns only then),
 * shard_resume_all lets it go, shard_stop_all ends its loop, and
 * shard_join_threads waits for it.
 */
START_TEST(test_threads_pause_stop)
{
	unsigned paused, stops[2] = { 0, 0 };

	ck_assert_int_eq(pthread_mutex_init(&broker.pause_lock, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&broker.pause_cond, NULL), 0);
	pair_init();
	ck_assert_int_eq(shard_start_threads(&broker), 0);
	ck_assert(pair[1].thread_started);
	ck_assert(!pair[0].thread_started);

	shard_pause_all(&broker);
	pthread_mutex_lock(&broker.pause_lock);
	paused = broker.paused;
	pthread_mutex_unlock(&broker.pause_lock);
	ck_assert_uint_eq(paused, 1);
	shard_resume_all(&broker);

	shard_stop_all(&broker);
	shard_join_threads(&broker);
	ck_assert(!pair[1].thread_started);
	ck_assert_uint_eq(broker.paused, 0);
	/*
	 * Shard 0 stopped once; shard 1 at least once (a wake-up still
	 * pending at the stop runs stop_self again in the last turn).
	 */
	for (size_t i = 0; i < nevents; i++)
		if (events[i].kind == REC_LISTENERS_STOP)
			stops[events[i].sh == &pair[1]]++;
	ck_assert_uint_eq(stops[0], 1);
	ck_assert_uint_ge(stops[1], 1);
	pair_fini();
	pthread_cond_destroy(&broker.pause_cond);
	pthread_mutex_destroy(&broker.pause_lock);
}
END_TEST

/* One shard: pausing and resuming do nothing. */
START_TEST(test_pause_one_shard)
{
	shard_pause_all(&broker);
	shard_resume_all(&broker);
	ck_assert(!atomic_load(&broker.pause_wanted));
	ck_assert_uint_eq(broker.paused, 0);
}
END_TEST

/* ------------------------------------------------------ shard_of_client */

struct client_row {
	unsigned shards;
	uint64_t hash;
	unsigned shard;
};

/* Expected shards computed with splitmix64's finaliser, then modulo. */
static const struct client_row client_rows[] = {
	{ 1, 0x123456789abcdefull, 0 },
	{ 4, 7ull << 32, 3 },
	{ 4, (7ull << 32) | 0xffffffffull, 0 }, /* the low half counts */
	{ 4, 0xffffffffull, 0 },
	{ 3, 0xffffffffull << 32, 1 },
	{ 64, 130ull << 32, 8 },
};

START_TEST(test_shard_of_client)
{
	const struct client_row *r = &client_rows[_i];

	broker.shard_count = r->shards;
	fake_hash = r->hash;
	ck_assert_uint_eq(shard_of_client(&broker, "id", 2), r->shard);
}
END_TEST

/* ------------------------------------------- subscription bookkeeping */

static int sub_add(struct session *s, const char *filter, bool *replaced)
{
	struct sub_opts o = { .qos = 1 };

	return shard_sub_add(&shard, filter, strlen(filter), s, &o, replaced);
}

static int sub_remove(struct session *s, const char *filter)
{
	return shard_sub_remove(&shard, filter, strlen(filter), s);
}

static struct share_group *group_of(const char *filter)
{
	const char *g = subtree_group_of(shard.subs, filter, strlen(filter));

	return g ? subtree_group_tag(g) : NULL;
}

/*
 * The interest index follows the tree: a filter without wildcards counts
 * in the slot of the one topic it matches, a filter with '+' or '#' in the
 * slot of its first level when that is literal, in the wild count when
 * not; a $share filter counts as the filter after its group.  A replaced
 * subscription is not counted twice, a removed one is taken off.  No
 * registry: shared filters are plain in the tree.
 */
START_TEST(test_sub_interest)
{
	const unsigned ab = slot_of_topic("a/b"), ac = slot_of_topic("a/c");
	struct session a, b;
	bool replaced;

	/* The topics below must fall in different slots to tell them apart. */
	ck_assert_uint_ne(ab, ac);
	ck_assert_uint_ne(slot_of_topic("a"), ab);
	ck_assert_uint_ne(slot_of_topic("$share/g/a"), slot_of_topic("a"));
	ck_assert_uint_ne(first_slot_of("a"), first_slot_of("z"));
	shard.subs = subtree_new();
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_total(), 0);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert(!interested("a/b"));
	ck_assert(!interested("a/c"));

	/* Exact: a/b's slot, nothing else. */
	ck_assert_int_eq(sub_add(&a, "a/b", &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(exact_count("a/b"), 1);
	ck_assert_uint_eq(exact_total(), 1);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert(interested("a/b"));
	ck_assert(!interested("a/c"));
	/* The same subscription again (replaced == NULL too): one count. */
	ck_assert_int_eq(sub_add(&a, "a/b", &replaced), 0);
	ck_assert(replaced);
	ck_assert_int_eq(sub_add(&a, "a/b", NULL), 0);
	ck_assert_uint_eq(exact_count("a/b"), 1);
	ck_assert_uint_eq(exact_total(), 1);
	ck_assert_uint_eq(wild_count(), 0);
	/* Another session on the same filter: one more. */
	ck_assert_int_eq(sub_add(&b, "a/b", &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(exact_count("a/b"), 2);
	ck_assert_uint_eq(exact_total(), 2);
	ck_assert_uint_eq(wild_count(), 0);

	/* A wildcard after a literal first level: that level's slot. */
	ck_assert_int_eq(sub_add(&a, "a/+", &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(first_count("a"), 1);
	ck_assert_uint_eq(first_total(), 1);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_count("a/+"), 0);
	ck_assert_uint_eq(exact_total(), 2);
	ck_assert(interested("a/c")); /* now a/anything */
	ck_assert(!interested("z"));
	/* $share: as the filter after the group, here exact. */
	ck_assert_int_eq(sub_add(&a, "$share/g/a", &replaced), 0);
	ck_assert(!replaced);
	ck_assert_uint_eq(exact_count("a"), 1);
	ck_assert_uint_eq(exact_count("$share/g/a"), 0);
	ck_assert_uint_eq(exact_total(), 3);
	ck_assert_uint_eq(first_total(), 1);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_ptr_null(group_of("$share/g/a")); /* no registry: no tag */
	/* A wildcard first level: anything. */
	ck_assert_int_eq(sub_add(&b, "#", NULL), 0);
	ck_assert_uint_eq(wild_count(), 1);
	ck_assert_uint_eq(first_total(), 1);
	ck_assert(interested("z"));
	ck_assert_int_eq(sub_add(&a, "a/+", &replaced), 0);
	ck_assert(replaced);
	ck_assert_int_eq(sub_add(&a, "$share/g/a", &replaced), 0);
	ck_assert(replaced);
	ck_assert_uint_eq(wild_count(), 1);
	ck_assert_uint_eq(exact_total(), 3);
	ck_assert_uint_eq(first_total(), 1);
	/* Refused by the tree: nothing counted. */
	ck_assert_int_eq(sub_add(&a, "bad/#/x", &replaced), -EINVAL);
	ck_assert_uint_eq(wild_count(), 1);
	ck_assert_uint_eq(exact_total(), 3);
	ck_assert_uint_eq(first_total(), 1);

	ck_assert_int_eq(sub_remove(&a, "a/b"), 0);
	ck_assert_uint_eq(exact_count("a/b"), 1);
	ck_assert_int_eq(sub_remove(&a, "a/b"), -ENOENT);
	ck_assert_uint_eq(exact_count("a/b"), 1);
	ck_assert_int_eq(sub_remove(&b, "a/b"), 0);
	ck_assert_uint_eq(exact_count("a/b"), 0);
	ck_assert_uint_eq(exact_total(), 1);
	ck_assert_uint_eq(wild_count(), 1);
	ck_assert(interested("a/b")); /* the wildcards still */
	ck_assert_int_eq(sub_remove(&b, "#"), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert(!interested("z"));
	ck_assert(interested("a/b")); /* a/+ still */
	ck_assert_int_eq(sub_remove(&a, "a/+"), 0);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert_int_eq(sub_remove(&a, "a/+"), -ENOENT);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert(!interested("a/b"));
	ck_assert(interested("a")); /* $share/g/a still */
	ck_assert_int_eq(sub_remove(&a, "$share/g/a"), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_total(), 0);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert(!interested("a"));
	ck_assert(!interested("a/b"));
	ck_assert(!interested("a/c"));
	subtree_free(shard.subs);
}
END_TEST

/*
 * One filter alone on the shard: where it is counted, topics it matches
 * (another shard must post them here) and topics it cannot match (none
 * need be).  A filter in the wild count takes any topic.  A topic of the
 * "no" list must not share the filter's slot, or the index could not
 * tell them apart; the test checks that first.
 */
enum interest_kind { IN_EXACT, IN_FIRST, IN_WILD };

static const struct interest_row {
	const char *filter;
	enum interest_kind kind;
	const char *yes[4];
	const char *no[4];
} interest_rows[] = {
	{ "sensors/+/temp", IN_FIRST,
	  { "sensors/a/temp", "sensors/b/temp" }, { "other/x", "x/a/temp" } },
	/* a/# matches its parent level a too. */
	{ "a/#", IN_FIRST, { "a", "a/b", "a/b/c" }, { "b", "b/a", "ab" } },
	{ "a/+", IN_FIRST, { "a/b" }, { "b/a", "c" } },
	{ "+/x", IN_WILD, { "other/x", "a/x", "/x" }, { NULL } },
	{ "+", IN_WILD, { "a", "z" }, { NULL } },
	{ "#", IN_WILD, { "a", "sensors/1", "/x" }, { NULL } },
	/* $share: the filter after the group decides. */
	{ "$share/g/sensors/#", IN_FIRST,
	  { "sensors/1", "sensors" }, { "other/1", "g/sensors/1", "x" } },
	{ "$share/g/+/x", IN_WILD, { "a/x" }, { NULL } },
	{ "$share/g/#", IN_WILD, { "a", "q/r" }, { NULL } },
	{ "$share/g/a/b", IN_EXACT, { "a/b" }, { "a/c", "g/a/b" } },
	/* An empty first level is a level: the empty string. */
	{ "/+", IN_FIRST, { "/x", "/y" }, { "x", "x/" } },
	{ "/#", IN_FIRST, { "/", "/x/y" }, { "x", "a/b" } },
	{ "x/", IN_EXACT, { "x/" }, { "x", "/x" } },
	{ "/", IN_EXACT, { "/" }, { "x", "/x" } },
};

START_TEST(test_sub_interest_one)
{
	const struct interest_row *r = &interest_rows[_i];
	const char *rest = r->filter;
	struct session a;

	if (strncmp(rest, "$share/", 7) == 0)
		rest = strchr(rest + 7, '/') + 1;
	for (size_t i = 0; i < NELEM(r->no) && r->no[i]; i++) {
		const char *t = r->no[i];

		if (r->kind == IN_EXACT)
			ck_assert_uint_ne(slot_of_topic(t),
					  slot_of_topic(rest));
		else
			ck_assert_uint_ne(first_slot_of(t),
					  first_slot_of(rest));
	}
	shard.subs = subtree_new();
	ck_assert_int_eq(sub_add(&a, r->filter, NULL), 0);
	ck_assert_uint_eq(wild_count(), r->kind == IN_WILD);
	ck_assert_uint_eq(exact_total(), r->kind == IN_EXACT);
	ck_assert_uint_eq(first_total(), r->kind == IN_FIRST);
	if (r->kind == IN_EXACT)
		ck_assert_uint_eq(exact_count(rest), 1);
	if (r->kind == IN_FIRST)
		ck_assert_uint_eq(first_count(rest), 1);
	for (size_t i = 0; i < NELEM(r->yes) && r->yes[i]; i++)
		ck_assert_msg(interested(r->yes[i]), "%s: %s", r->filter,
			      r->yes[i]);
	for (size_t i = 0; i < NELEM(r->no) && r->no[i]; i++)
		ck_assert_msg(!interested(r->no[i]), "%s: %s", r->filter,
			      r->no[i]);
	if (r->kind == IN_WILD) {
		ck_assert(interested("other/y"));
		ck_assert(interested("z"));
		ck_assert(interested("/"));
	}

	/* Unsubscribed: counted nowhere, interested in none. */
	ck_assert_int_eq(sub_remove(&a, r->filter), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_total(), 0);
	ck_assert_uint_eq(first_total(), 0);
	for (size_t i = 0; i < NELEM(r->yes) && r->yes[i]; i++)
		ck_assert(!interested(r->yes[i]));
	subtree_free(shard.subs);
}
END_TEST

/*
 * Filters starting with a wildcard next to ones with a literal first
 * level: each is taken off its own count, the wild count going back to
 * zero with its last filter while the first-level ones stay.
 */
START_TEST(test_sub_interest_mixed)
{
	struct session a, b;

	ck_assert_uint_ne(first_slot_of("sensors"), first_slot_of("other"));
	shard.subs = subtree_new();
	ck_assert_int_eq(sub_add(&a, "sensors/+/temp", NULL), 0);
	ck_assert_int_eq(sub_add(&b, "sensors/+/temp", NULL), 0);
	ck_assert_int_eq(sub_add(&a, "+/x", NULL), 0);
	ck_assert_int_eq(sub_add(&b, "#", NULL), 0);
	ck_assert_uint_eq(wild_count(), 2);
	ck_assert_uint_eq(first_count("sensors"), 2);
	ck_assert(interested("other/x"));
	ck_assert(interested("other/y"));

	ck_assert_int_eq(sub_remove(&b, "#"), 0);
	ck_assert_uint_eq(wild_count(), 1);
	ck_assert(interested("other/y")); /* +/x is still wild */
	ck_assert_int_eq(sub_remove(&a, "+/x"), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(first_count("sensors"), 2);
	ck_assert(!interested("other/x"));
	ck_assert(interested("sensors/a/temp"));

	ck_assert_int_eq(sub_remove(&a, "sensors/+/temp"), 0);
	ck_assert_uint_eq(first_count("sensors"), 1);
	ck_assert(interested("sensors/a/temp"));
	ck_assert_int_eq(sub_remove(&b, "sensors/+/temp"), 0);
	ck_assert_uint_eq(first_total(), 0);
	ck_assert(!interested("sensors/a/temp"));
	subtree_free(shard.subs);
}
END_TEST

/*
 * shard_interested() reads all three: the topic's exact slot, its first
 * level's slot, or the wild count for every slot.  Set by hand, as
 * another shard would see them.
 */
START_TEST(test_interested)
{
	const unsigned last = SHARD_INTEREST_SLOTS - 1;

	ck_assert(!shard_interested(&shard, 0, 0));
	ck_assert(!shard_interested(&shard, last, last));
	atomic_store(&shard.interest_exact[5], 1);
	ck_assert(shard_interested(&shard, 5, 0));
	ck_assert(!shard_interested(&shard, 4, 5));
	ck_assert(!shard_interested(&shard, 6, 5));
	atomic_store(&shard.interest_exact[5], 0);
	atomic_store(&shard.interest_first[9], 1);
	ck_assert(shard_interested(&shard, 0, 9));
	ck_assert(!shard_interested(&shard, 9, 8));
	ck_assert(!shard_interested(&shard, 9, 10));
	atomic_store(&shard.interest_first[9], 0);
	atomic_store(&shard.interest_wild, 1);
	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++)
		ck_assert(shard_interested(&shard, i, last - i));
	atomic_store(&shard.interest_wild, 0);
	ck_assert(!shard_interested(&shard, 5, 9));
}
END_TEST

/* The slot of a topic: FNV-1a of its bytes, folded into the index. */
START_TEST(test_interest_slot)
{
	static const char *const topics[] = {
		"", "a", "a/b", "a/c", "$SYS/x", "sensors/17/temperature",
	};

	for (size_t i = 0; i < NELEM(topics); i++) {
		const char *t = topics[i];
		uint32_t h = 2166136261u;

		for (size_t j = 0; t[j]; j++)
			h = (h ^ (uint8_t)t[j]) * 16777619u;
		ck_assert_uint_eq(shard_interest_slot(t, strlen(t)),
				  (h ^ (h >> 16)) & (SHARD_INTEREST_SLOTS - 1));
	}
	/* Only len bytes count: a filter within a longer buffer. */
	ck_assert_uint_eq(shard_interest_slot("a/bc", 3),
			  shard_interest_slot("a/b", 3));
	/* Every slot is reached by some topic of two letters. */
	{
		static bool hit[SHARD_INTEREST_SLOTS];
		char t[2];
		unsigned n = 0;

		for (unsigned x = 0; x < 256 * 256; x++) {
			t[0] = (char)(x >> 8);
			t[1] = (char)x;
			hit[shard_interest_slot(t, 2)] = true;
		}
		for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++)
			n += hit[i];
		ck_assert_uint_eq(n, SHARD_INTEREST_SLOTS);
	}
}
END_TEST

/*
 * The slot of a first level: FNV-1a from another basis of the bytes
 * before the first '/' (all of them without one), folded the same way.
 */
static const struct first_row {
	const char *topic;
	const char *level;
} first_rows[] = {
	{ "a", "a" },
	{ "a/b", "a" },
	{ "a/b/c", "a" },
	{ "a/", "a" },
	{ "/x", "" },
	{ "/", "" },
	{ "//", "" },
	{ "sensors/17/temperature", "sensors" },
	{ "sensors/+/temp", "sensors" },
	{ "$SYS/broker/uptime", "$SYS" },
	{ "#", "#" },
	{ "+/x", "+" },
};

START_TEST(test_interest_first_slot)
{
	const struct first_row *r = &first_rows[_i];
	uint32_t h = 0x9e3779b9u;

	for (size_t j = 0; r->level[j]; j++)
		h = (h ^ (uint8_t)r->level[j]) * 16777619u;
	ck_assert_uint_eq(shard_interest_first_slot(r->topic,
						    strlen(r->topic)),
			  (h ^ (h >> 16)) & (SHARD_INTEREST_SLOTS - 1));
	ck_assert_uint_eq(first_slot_of(r->topic), first_slot_of(r->level));
	/* Only len bytes count: the first level may end with the buffer. */
	ck_assert_uint_eq(shard_interest_first_slot("ab/c", 1),
			  first_slot_of("a"));
}
END_TEST

/*
 * With a registry: a shared filter's group is taken from it once per
 * tree, counts this shard's members (not replacements), and is given
 * back when its last member here leaves.
 */
START_TEST(test_sub_share_registry)
{
	struct session a, b;
	struct share_group *g, *h, *again;
	bool replaced;

	broker.shares = share_registry_new(2);
	ck_assert_ptr_nonnull(broker.shares);
	shard.index = 1;
	shard.subs = subtree_new();

	ck_assert_int_eq(sub_add(&a, "$share/g/t", &replaced), 0);
	g = group_of("$share/g/t");
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->refs, 1);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 1);
	ck_assert_uint_eq(atomic_load(&g->members[0]), 0);
	/* A shared filter counts as the one after its group: t, exact. */
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_count("t"), 1);
	ck_assert_uint_eq(exact_total(), 1);
	/* The registry knows it by its filter. */
	again = share_group_get(broker.shares, "$share/g/t", 10);
	ck_assert_ptr_eq(again, g);
	ck_assert_uint_eq(g->refs, 2);
	share_group_put(broker.shares, again);

	ck_assert_int_eq(sub_add(&b, "$share/g/t", &replaced), 0);
	ck_assert(!replaced);
	ck_assert_ptr_eq(group_of("$share/g/t"), g);
	ck_assert_uint_eq(g->refs, 1); /* one tree, one reference */
	ck_assert_uint_eq(atomic_load(&g->members[1]), 2);
	ck_assert_int_eq(sub_add(&a, "$share/g/t", &replaced), 0);
	ck_assert(replaced);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 2);
	ck_assert_uint_eq(exact_count("t"), 2); /* not the replacement */

	/* Another group, and a plain filter: apart. */
	ck_assert_int_eq(sub_add(&a, "$share/h/t", &replaced), 0);
	h = group_of("$share/h/t");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_ne(h, g);
	ck_assert_uint_eq(atomic_load(&h->members[1]), 1);
	ck_assert_int_eq(sub_add(&a, "t", &replaced), 0);
	ck_assert_ptr_null(group_of("t"));
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_count("t"), 4);
	ck_assert_uint_eq(exact_total(), 4);

	ck_assert_int_eq(sub_remove(&a, "$share/g/t"), 0);
	ck_assert_ptr_eq(group_of("$share/g/t"), g);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 1);
	ck_assert_uint_eq(g->refs, 1);
	ck_assert_int_eq(sub_remove(&a, "$share/g/t"), -ENOENT);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 1);
	ck_assert_uint_eq(exact_count("t"), 3);
	/* The last member: the group goes from the tree and the registry. */
	ck_assert_int_eq(sub_remove(&b, "$share/g/t"), 0);
	ck_assert_ptr_null(group_of("$share/g/t"));
	again = share_group_get(broker.shares, "$share/g/t", 10);
	ck_assert_ptr_nonnull(again);
	ck_assert_uint_eq(again->refs, 1); /* a new one */
	ck_assert_uint_eq(atomic_load(&again->members[1]), 0);
	share_group_put(broker.shares, again);
	/* Joining again makes a fresh group with one member. */
	ck_assert_int_eq(sub_add(&b, "$share/g/t", &replaced), 0);
	g = group_of("$share/g/t");
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->refs, 1);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 1);

	ck_assert_int_eq(sub_remove(&b, "$share/g/t"), 0);
	ck_assert_int_eq(sub_remove(&a, "$share/h/t"), 0);
	ck_assert_int_eq(sub_remove(&a, "t"), 0);
	ck_assert_uint_eq(wild_count(), 0);
	ck_assert_uint_eq(exact_total(), 0);
	for (size_t i = 0; i < SHARE_BUCKETS; i++)
		ck_assert_ptr_null(broker.shares->bucket[i]);
	subtree_free(shard.subs);
	share_registry_free(broker.shares);
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *shard_suite(void)
{
	Suite *s = suite_create("shard");
	TCase *tc = tcase_create("shard");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_watch_inserts, 0, NELEM(insert_rows));
	tcase_add_test(tc, test_rearm_moves);
	tcase_add_test(tc, test_expires_at_deadline);
	tcase_add_test(tc, test_expires_integer_deadline);
	tcase_add_test(tc, test_activity_rearms);
	tcase_add_loop_test(tc, test_far_deadline, 0, NELEM(far_rows));
	tcase_add_test(tc, test_catch_up);
	tcase_add_test(tc, test_slot_mixed);
	tcase_add_test(tc, test_forget);
	tcase_add_test(tc, test_want_flush_once);
	tcase_add_test(tc, test_flush_pass);
	tcase_add_test(tc, test_flush_queues_more);
	tcase_add_test(tc, test_hold_until_committed);
	tcase_add_test(tc, test_drop_held_on_failure);
	tcase_add_test(tc, test_hold_for_other_shards);
	tcase_add_test(tc, test_expire_sessions);
	tcase_add_test(tc, test_init_fini_on_loop);
	tcase_add_test(tc, test_init_fails_without_tree);
	tcase_add_test(tc, test_post_and_wake);
	tcase_add_test(tc, test_post_overflow_in_order);
	tcase_add_test(tc, test_fini_drops_posts);
	tcase_add_test(tc, test_stop_all);
	tcase_add_test(tc, test_threads_pause_stop);
	tcase_add_test(tc, test_pause_one_shard);
	tcase_add_loop_test(tc, test_shard_of_client, 0, NELEM(client_rows));
	tcase_add_test(tc, test_sub_interest);
	tcase_add_loop_test(tc, test_sub_interest_one, 0,
			    NELEM(interest_rows));
	tcase_add_test(tc, test_sub_interest_mixed);
	tcase_add_test(tc, test_interested);
	tcase_add_test(tc, test_interest_slot);
	tcase_add_loop_test(tc, test_interest_first_slot, 0,
			    NELEM(first_rows));
	tcase_add_test(tc, test_sub_share_registry);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shard_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
