/*
 * Unit tests for broker/shard.c: the timeout wheel (insertion, re-arming,
 * lazy re-arming from last_activity, expiry, deadlines past one turn of
 * the wheel, catching up after a late tick, shard_forget), the flush pass
 * (each queued connection flushed once, broken ones closed, closed ones
 * freed), expiry of offline sessions, and the libev wiring of
 * shard_init()/shard_fini() on a real loop.
 *
 * shard.c is included so wheel_advance(), flush_cb(), tick_cb() and
 * expire_sessions() can be called with chosen times.  What it calls in
 * other modules is faked here and recorded: conn_flush, conn_close,
 * conn_free, conn_timed_out, session_destroy, sys_tick, subtree_new and
 * subtree_free.  The fakes of conn_close and conn_timed_out end in
 * shard_forget() as the real conn_close() does.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/shard.c"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- seams */

enum event_kind {
	REC_FLUSH,
	REC_CLOSE,
	REC_FREE,
	REC_TIMED_OUT,
	REC_DESTROY,
	REC_SYS,
};

struct event {
	enum event_kind kind;
	const void *obj; /* conn or session */
	int reason; /* conn_close */
	double now; /* sys_tick */
};

#define MAX_EVENTS 2048
static struct event events[MAX_EVENTS];
static size_t nevents;

static struct event *record(enum event_kind kind, const void *obj)
{
	struct event *e;

	ck_assert_uint_lt(nevents, MAX_EVENTS);
	e = &events[nevents++];
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
	struct session **pp = &broker.sessions[s->client_id_len %
					       broker.session_buckets];

	record(REC_DESTROY, s);
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	broker.session_count--;
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

static int subtree_dummy;
static bool subtree_fail;
static size_t subtrees_live;

struct subtree *subtree_new(void)
{
	if (subtree_fail)
		return NULL;
	subtrees_live++;
	return (struct subtree *)(void *)&subtree_dummy;
}

void subtree_free(struct subtree *t)
{
	if (t) {
		ck_assert_ptr_eq(t, (void *)&subtree_dummy);
		subtrees_live--;
	}
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
	broker.shard = &shard;
	for (size_t i = 0; i < NCONN; i++)
		add_conn(&conns[i]);
	nevents = 0;
	flush_also = NULL;
	fake_submitted = fake_committed = 0;
	fake_failed = false;
	subtree_fail = false;
	subtrees_live = 0;
}

/* ------------------------------------------------------------- helpers */

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

	run_flush();
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
	/* After the failure, holding means closing. */
	shard_hold(&shard, b);
	ck_assert_uint_eq(count(REC_CLOSE, b), 1);
	ck_assert(!b->held);
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

	broker.sessions = buckets;
	broker.session_buckets = NELEM(buckets);
	/* All in one chain (length 0 -> bucket 0), and one elsewhere. */
	for (size_t i = 0; i < NELEM(s); i++) {
		size_t b;

		memset(&s[i], 0, sizeof(s[i]));
		s[i].client_id_len = i == 5 ? 1 : 0;
		s[i].conn = rows[i].online ? &conns[0] : NULL;
		s[i].expire_at = rows[i].expire_at;
		b = s[i].client_id_len % NELEM(buckets);
		s[i].hnext = buckets[b];
		buckets[b] = &s[i];
		broker.session_count++;
	}
	expire_sessions(&shard, T0);
	for (size_t i = 0; i < NELEM(s); i++)
		ck_assert_msg(count(REC_DESTROY, &s[i]) ==
			      (rows[i].destroyed ? 1u : 0u), "session %zu", i);
	ck_assert_uint_eq(broker.session_count, 3);
	nevents = 0;
	expire_sessions(&shard, T0);
	ck_assert_uint_eq(nevents, 0);
	expire_sessions(&shard, T0 + 1);
	ck_assert_uint_eq(count(REC_DESTROY, &s[2]), 1);
	ck_assert_uint_eq(nevents, 1);
	broker.sessions = NULL;
	broker.session_buckets = 0;
}
END_TEST

/* ------------------------------------------------------ libev wiring */

START_TEST(test_init_fini_on_loop)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	double now;

	ck_assert_ptr_nonnull(loop);
	memset(&shard, 0, sizeof(shard));
	ck_assert_int_eq(shard_init(&shard, &broker, loop), 0);
	ck_assert_ptr_eq(shard.broker, &broker);
	ck_assert_ptr_eq(shard.loop, loop);
	ck_assert_ptr_eq(shard.subs, (void *)&subtree_dummy);
	ck_assert(ev_is_active(&shard.flush_watcher));
	ck_assert(ev_is_active(&shard.tick));
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
	ck_assert_int_eq(shard_init(&shard, &broker, loop), -1);
	ck_assert(!ev_is_active(&shard.flush_watcher));
	ck_assert(!ev_is_active(&shard.tick));
	ev_loop_destroy(loop);
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
	tcase_add_test(tc, test_expire_sessions);
	tcase_add_test(tc, test_init_fini_on_loop);
	tcase_add_test(tc, test_init_fails_without_tree);
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
