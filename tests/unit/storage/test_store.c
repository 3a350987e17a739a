/*
 * Unit tests for storage/ (store.c, writer.c, schema.c, load.c, check.c):
 * real SQLite files in a fresh temporary directory per test.  Records go
 * in through the public API, come back through store_load() after a
 * close and reopen, and the tables are also read directly with SQLite to
 * see what the writer left (message rows stored once, swept when unused).
 * store_int.h gives access to the connection before store_start(), to
 * make the disk "full" and to read PRAGMAs.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/store.h"
#include "storage/store_int.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A fixed "now" for store_load(), Unix seconds. */
#define NOW INT64_C(1700000000)

static char dir[64];
static char db_path[128];

/* notify_cb() counts commits and failures here. */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;
static unsigned notified;

/* ------------------------------------------------------------- fixtures */

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cicada-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db_path, sizeof(db_path), "%s/cicada.db", dir);
	notified = 0; /* CK_FORK=no runs every test in one process */
}

static void teardown(void)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------- notify / waits */

static void notify_cb(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wait_lock);
	notified++;
	pthread_cond_broadcast(&wait_cond);
	pthread_mutex_unlock(&wait_lock);
}

static unsigned notify_count(void)
{
	unsigned n;

	pthread_mutex_lock(&wait_lock);
	n = notified;
	pthread_mutex_unlock(&wait_lock);
	return n;
}

static double now_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Wait (at most timeout_ms) for a notify after which everything submitted
 * is committed, or the store has failed.  true if that happened.
 */
static bool wait_settled(struct store *st, unsigned timeout_ms)
{
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&wait_lock);
	for (;;) {
		done = store_committed(st) == store_submitted(st) ||
		       store_failed(st);
		if (done ||
		    pthread_cond_timedwait(&wait_cond, &wait_lock, &until))
			break;
	}
	done = store_committed(st) == store_submitted(st) || store_failed(st);
	pthread_mutex_unlock(&wait_lock);
	return done;
}

/* -------------------------------------------------------------- helpers */

static struct store *open_mode(bool strict, unsigned interval_ms)
{
	struct store_options o = {
		.path = db_path,
		.strict = strict,
		.batch_interval_ms = interval_ms,
		.notify = notify_cb,
	};
	struct store *st;
	char err[256] = "";
	int rc;

	rc = store_open(&st, &o, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_open: %d %s", rc, err);
	return st;
}

static struct store *open_store(void)
{
	return open_mode(true, 0);
}

static struct store *open_started(void)
{
	struct store *st = open_store();

	ck_assert_int_eq(store_start(st), 0);
	return st;
}

static void commit_wait(struct store *st)
{
	ck_assert_msg(wait_settled(st, 10000), "no commit within 10 s");
	ck_assert_ptr_null(store_failed(st));
	ck_assert_uint_eq(store_committed(st), store_submitted(st));
}

/* One integer from sql, through a connection of our own. */
static int64_t sql_int(const char *sql)
{
	sqlite3_stmt *s;
	sqlite3 *db;
	int64_t v = -1;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
					 NULL),
			 SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *sql)
{
	sqlite3 *db;
	int rc;

	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static int64_t rows(const char *table)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return sql_int(sql);
}

static void put_msg(struct store *st, uint64_t id, const char *topic,
		    int64_t expiry_at_ms)
{
	struct store_msg m = {
		.id = id,
		.topic = topic,
		.topic_len = strlen(topic),
		.payload = (const uint8_t *)"payload",
		.payload_len = 7,
		.qos = 1,
		.expiry_at_ms = expiry_at_ms,
	};

	ck_assert_int_eq(store_msg_put(st, &m), 0);
}

static void put_session(struct store *st, const char *id,
			int64_t offline_since, uint32_t expiry,
			uint64_t will)
{
	struct store_session s = {
		.client_id = id,
		.client_id_len = strlen(id),
		.version = 5,
		.expiry_interval = expiry,
		.offline_since = offline_since,
		.will_msg_id = will,
		.will_delay = will ? 30 : 0,
	};

	ck_assert_int_eq(store_session_put(st, &s), 0);
}

static void put_delivery(struct store *st, uint64_t id, const char *client,
			 uint64_t msg_id, uint8_t state)
{
	struct store_delivery d = {
		.id = id,
		.client_id = client,
		.client_id_len = strlen(client),
		.msg_id = msg_id,
		.qos = 1,
		.state = state,
		.packet_id = state ? (uint16_t)id : 0,
	};

	ck_assert_int_eq(store_delivery_put(st, &d), 0);
}

static void put_sub(struct store *st, const char *client, const char *filter,
		    uint8_t options, uint32_t sub_id)
{
	struct store_sub s = {
		.client_id = client,
		.client_id_len = strlen(client),
		.filter = filter,
		.filter_len = strlen(filter),
		.options = options,
		.sub_id = sub_id,
	};

	ck_assert_int_eq(store_sub_put(st, &s), 0);
}

static void check_ok(void)
{
	char err[256] = "";
	int rc = store_check(db_path, err, sizeof(err));

	ck_assert_msg(rc == 0, "store_check: %d %s", rc, err);
}

/* ------------------------------------------------- what store_load() says */

enum kind { K_MSG, K_SESSION, K_SUB, K_DELIVERY, K_RETAINED, K_QOS2 };

#define MAX_SEEN 64
#define MAX_BYTES 64

struct bytes {
	size_t len;
	uint8_t b[MAX_BYTES];
	bool null; /* the callback got NULL */
};

struct seen_msg {
	uint64_t id;
	struct bytes topic, payload, props;
	uint8_t qos;
	bool retain;
	int64_t expiry_at_ms;
};

struct seen_session {
	struct bytes id;
	uint8_t version;
	uint32_t expiry_interval;
	int64_t offline_since;
	uint64_t will_msg_id;
	uint32_t will_delay;
	uint32_t will_expiry;
};

struct seen_sub {
	struct bytes client, filter;
	uint8_t options;
	uint32_t sub_id;
};

struct seen_delivery {
	uint64_t id, msg_id;
	struct bytes client;
	uint16_t packet_id;
	uint8_t qos, state;
	bool retain;
	uint8_t n_sub_ids;
	uint32_t sub_ids[4];
};

struct seen {
	enum kind order[6 * MAX_SEEN];
	size_t n_order;
	struct seen_msg msg[MAX_SEEN];
	size_t n_msg;
	struct seen_session session[MAX_SEEN];
	size_t n_session;
	struct seen_sub sub[MAX_SEEN];
	size_t n_sub;
	struct seen_delivery delivery[MAX_SEEN];
	size_t n_delivery;
	uint64_t retained[MAX_SEEN];
	size_t n_retained;
	struct bytes qos2_client[MAX_SEEN];
	uint16_t qos2_packet[MAX_SEEN];
	size_t n_qos2;
	int stop_at; /* return 7 from the stop_at-th callback (1-based) */
};

static struct seen seen;

static void keep(struct bytes *dst, const void *src, size_t len)
{
	ck_assert_uint_le(len, MAX_BYTES);
	dst->len = len;
	dst->null = src == NULL;
	if (len)
		memcpy(dst->b, src, len);
}

static bool bytes_eq(const struct bytes *b, const void *p, size_t len)
{
	return !b->null && b->len == len && !memcmp(b->b, p, len);
}

static int seen_kind(struct seen *s, enum kind k)
{
	ck_assert_uint_lt(s->n_order, NELEM(s->order));
	s->order[s->n_order++] = k;
	return s->stop_at && (int)s->n_order == s->stop_at ? 7 : 0;
}

static int on_msg(void *arg, const struct store_msg *m)
{
	struct seen *s = arg;
	struct seen_msg *r = &s->msg[s->n_msg++];

	ck_assert_uint_le(s->n_msg, MAX_SEEN);
	r->id = m->id;
	keep(&r->topic, m->topic, m->topic_len);
	keep(&r->payload, m->payload, m->payload_len);
	keep(&r->props, m->props, m->props_len);
	r->qos = m->qos;
	r->retain = m->retain;
	r->expiry_at_ms = m->expiry_at_ms;
	return seen_kind(s, K_MSG);
}

static int on_session(void *arg, const struct store_session *ss)
{
	struct seen *s = arg;
	struct seen_session *r = &s->session[s->n_session++];

	ck_assert_uint_le(s->n_session, MAX_SEEN);
	keep(&r->id, ss->client_id, ss->client_id_len);
	r->version = ss->version;
	r->expiry_interval = ss->expiry_interval;
	r->offline_since = ss->offline_since;
	r->will_msg_id = ss->will_msg_id;
	r->will_delay = ss->will_delay;
	r->will_expiry = ss->will_expiry;
	return seen_kind(s, K_SESSION);
}

static int on_sub(void *arg, const struct store_sub *sub)
{
	struct seen *s = arg;
	struct seen_sub *r = &s->sub[s->n_sub++];

	ck_assert_uint_le(s->n_sub, MAX_SEEN);
	keep(&r->client, sub->client_id, sub->client_id_len);
	keep(&r->filter, sub->filter, sub->filter_len);
	r->options = sub->options;
	r->sub_id = sub->sub_id;
	return seen_kind(s, K_SUB);
}

static int on_delivery(void *arg, const struct store_delivery *d)
{
	struct seen *s = arg;
	struct seen_delivery *r = &s->delivery[s->n_delivery++];
	unsigned i;

	ck_assert_uint_le(s->n_delivery, MAX_SEEN);
	r->id = d->id;
	r->msg_id = d->msg_id;
	keep(&r->client, d->client_id, d->client_id_len);
	r->packet_id = d->packet_id;
	r->qos = d->qos;
	r->state = d->state;
	r->retain = d->retain;
	ck_assert_uint_le(d->sub_id_count, NELEM(r->sub_ids));
	r->n_sub_ids = d->sub_id_count;
	for (i = 0; i < d->sub_id_count; i++)
		r->sub_ids[i] = d->sub_ids[i];
	return seen_kind(s, K_DELIVERY);
}

static int on_retained(void *arg, uint64_t msg_id)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n_retained, MAX_SEEN);
	s->retained[s->n_retained++] = msg_id;
	return seen_kind(s, K_RETAINED);
}

static int on_qos2(void *arg, const char *client_id, size_t len,
		   uint16_t packet_id)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n_qos2, MAX_SEEN);
	keep(&s->qos2_client[s->n_qos2], client_id, len);
	s->qos2_packet[s->n_qos2++] = packet_id;
	return seen_kind(s, K_QOS2);
}

static const struct store_loader loader = {
	.msg = on_msg,
	.session = on_session,
	.sub = on_sub,
	.delivery = on_delivery,
	.retained = on_retained,
	.qos2_in = on_qos2,
};

/* Reopen db_path, load it at now_s into seen; returns the open store. */
static struct store *reload(int64_t now_s)
{
	struct store *st = open_store();

	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_load(st, &loader, &seen, now_s), 0);
	return st;
}

static const struct seen_msg *seen_msg_id(uint64_t id)
{
	size_t i;

	for (i = 0; i < seen.n_msg; i++)
		if (seen.msg[i].id == id)
			return &seen.msg[i];
	return NULL;
}

static const struct seen_session *seen_session_id(const char *id)
{
	size_t i;

	for (i = 0; i < seen.n_session; i++)
		if (bytes_eq(&seen.session[i].id, id, strlen(id)))
			return &seen.session[i];
	return NULL;
}

/* ------------------------------------------------------------ round trip */

/* Topic and client id hold U+0000 and non-ASCII UTF-8: lengths, not NULs. */
static const char topic_nul[] = "a/\0/\xc3\xa9t\xc3\xa9";
static const char client_nul[] = "cl\0i\xe2\x82\xac";
static const uint8_t props[] = { 0x01, 0x01, 0x26, 0x00, 0x01, 'k',
				 0x00, 0x01, 'v' };

static void put_everything(struct store *st)
{
	static const uint32_t sub_ids[] = { 1, 0x12345678u, 268435455u };
	struct store_msg m = {
		.id = 41,
		.topic = topic_nul,
		.topic_len = sizeof(topic_nul) - 1,
		.payload = (const uint8_t *)"\0\xff\x01",
		.payload_len = 3,
		.props = props,
		.props_len = sizeof(props),
		.qos = 2,
		.retain = true,
		.expiry_at_ms = NOW * 1000 + 60000,
	};
	struct store_session s = {
		.client_id = client_nul,
		.client_id_len = sizeof(client_nul) - 1,
		.version = 5,
		.expiry_interval = 3600,
		.offline_since = NOW - 100,
		.will_msg_id = 42,
		.will_delay = 17,
		.will_expiry = 600,
	};
	struct store_sub sub = {
		.client_id = client_nul,
		.client_id_len = sizeof(client_nul) - 1,
		.filter = "x/\0/#",
		.filter_len = 5,
		.options = 0x2e,
		.sub_id = 268435455u,
	};
	struct store_delivery d = {
		.id = 90,
		.client_id = client_nul,
		.client_id_len = sizeof(client_nul) - 1,
		.msg_id = 41,
		.packet_id = 65535,
		.qos = 2,
		.state = STORE_DLV_RELEASED,
		.retain = true,
		.sub_id_count = 3,
		.sub_ids = sub_ids,
	};

	ck_assert_int_eq(store_msg_put(st, &m), 0);
	m.id = 42;
	m.topic = "will/topic";
	m.topic_len = 10;
	m.payload_len = 0;
	m.props = NULL;
	m.props_len = 0;
	m.qos = 0;
	m.retain = false;
	m.expiry_at_ms = 0;
	ck_assert_int_eq(store_msg_put(st, &m), 0);
	ck_assert_int_eq(store_session_put(st, &s), 0);
	ck_assert_int_eq(store_sub_put(st, &sub), 0);
	sub.filter = "plain";
	sub.filter_len = 5;
	sub.options = 1;
	sub.sub_id = 0;
	ck_assert_int_eq(store_sub_put(st, &sub), 0);
	ck_assert_int_eq(store_delivery_put(st, &d), 0);
	ck_assert_int_eq(store_retain_put(st, 41), 0);
	ck_assert_int_eq(store_qos2_in_put(st, client_nul,
					   sizeof(client_nul) - 1, 7),
			 0);
	ck_assert_int_eq(store_qos2_in_put(st, client_nul,
					   sizeof(client_nul) - 1, 65535),
			 0);
}

static void check_everything(void)
{
	const struct seen_msg *m;
	const struct seen_session *s;
	const struct seen_delivery *d;
	size_t i;

	/* The documented order: msgs, sessions, subs, deliveries, ... */
	for (i = 1; i < seen.n_order; i++)
		ck_assert_int_le(seen.order[i - 1], seen.order[i]);

	ck_assert_uint_eq(seen.n_msg, 2);
	m = seen_msg_id(41);
	ck_assert_ptr_nonnull(m);
	ck_assert(bytes_eq(&m->topic, topic_nul, sizeof(topic_nul) - 1));
	ck_assert(bytes_eq(&m->payload, "\0\xff\x01", 3));
	ck_assert(bytes_eq(&m->props, props, sizeof(props)));
	ck_assert_uint_eq(m->qos, 2);
	ck_assert(m->retain);
	ck_assert_int_eq(m->expiry_at_ms, NOW * 1000 + 60000);
	m = seen_msg_id(42);
	ck_assert_ptr_nonnull(m);
	ck_assert(bytes_eq(&m->topic, "will/topic", 10));
	/* Empty is empty, not NULL. */
	ck_assert(bytes_eq(&m->payload, "", 0));
	ck_assert(bytes_eq(&m->props, "", 0));
	ck_assert_uint_eq(m->qos, 0);
	ck_assert(!m->retain);
	ck_assert_int_eq(m->expiry_at_ms, 0);

	ck_assert_uint_eq(seen.n_session, 1);
	s = &seen.session[0];
	ck_assert(bytes_eq(&s->id, client_nul, sizeof(client_nul) - 1));
	ck_assert_uint_eq(s->version, 5);
	ck_assert_uint_eq(s->expiry_interval, 3600);
	ck_assert_int_eq(s->offline_since, NOW - 100);
	ck_assert_uint_eq(s->will_msg_id, 42);
	ck_assert_uint_eq(s->will_delay, 17);
	ck_assert_uint_eq(s->will_expiry, 600);

	ck_assert_uint_eq(seen.n_sub, 2);
	for (i = 0; i < 2; i++) {
		const struct seen_sub *sub = &seen.sub[i];

		ck_assert(bytes_eq(&sub->client, client_nul,
				   sizeof(client_nul) - 1));
		if (bytes_eq(&sub->filter, "x/\0/#", 5)) {
			ck_assert_uint_eq(sub->options, 0x2e);
			ck_assert_uint_eq(sub->sub_id, 268435455u);
		} else {
			ck_assert(bytes_eq(&sub->filter, "plain", 5));
			ck_assert_uint_eq(sub->options, 1);
			ck_assert_uint_eq(sub->sub_id, 0);
		}
	}

	ck_assert_uint_eq(seen.n_delivery, 1);
	d = &seen.delivery[0];
	ck_assert_uint_eq(d->id, 90);
	ck_assert(bytes_eq(&d->client, client_nul, sizeof(client_nul) - 1));
	ck_assert_uint_eq(d->msg_id, 41);
	ck_assert_uint_eq(d->packet_id, 65535);
	ck_assert_uint_eq(d->qos, 2);
	ck_assert_uint_eq(d->state, STORE_DLV_RELEASED);
	ck_assert(d->retain);
	ck_assert_uint_eq(d->n_sub_ids, 3);
	ck_assert_uint_eq(d->sub_ids[0], 1);
	ck_assert_uint_eq(d->sub_ids[1], 0x12345678u);
	ck_assert_uint_eq(d->sub_ids[2], 268435455u);

	ck_assert_uint_eq(seen.n_retained, 1);
	ck_assert_uint_eq(seen.retained[0], 41);

	ck_assert_uint_eq(seen.n_qos2, 2);
	for (i = 0; i < 2; i++) {
		ck_assert(bytes_eq(&seen.qos2_client[i], client_nul,
				   sizeof(client_nul) - 1));
		ck_assert(seen.qos2_packet[i] == 7 ||
			  seen.qos2_packet[i] == 65535);
	}
	ck_assert_uint_ne(seen.qos2_packet[0], seen.qos2_packet[1]);
}

START_TEST(test_roundtrip_started)
{
	struct store *st = open_started();

	put_everything(st);
	commit_wait(st);
	store_close(st);
	check_ok();

	st = reload(NOW);
	check_everything();
	ck_assert_uint_eq(store_max_id(st), 90);
	store_close(st);
}
END_TEST

/* Recorded before store_start() and never started: close commits them. */
START_TEST(test_roundtrip_never_started)
{
	struct store *st = open_store();

	put_everything(st);
	ck_assert_uint_eq(store_submitted(st), 9);
	ck_assert_uint_eq(store_committed(st), 0);
	store_close(st);
	check_ok();

	st = reload(NOW);
	check_everything();
	store_close(st);
	/* A second load finds the same: loading keeps what it reports. */
	st = reload(NOW);
	check_everything();
	store_close(st);
}
END_TEST

START_TEST(test_load_stops)
{
	struct store *st = open_store();

	put_everything(st);
	store_close(st);

	st = open_store();
	memset(&seen, 0, sizeof(seen));
	seen.stop_at = 3; /* the session, after the two messages */
	ck_assert_int_eq(store_load(st, &loader, &seen, NOW), 7);
	ck_assert_uint_eq(seen.n_order, 3);
	ck_assert_uint_eq(seen.n_sub, 0);
	store_close(st);

	/* NULL callbacks skip their table. */
	st = open_store();
	memset(&seen, 0, sizeof(seen));
	{
		struct store_loader only = { .delivery = on_delivery };

		ck_assert_int_eq(store_load(st, &only, &seen, NOW), 0);
	}
	ck_assert_uint_eq(seen.n_order, 1);
	ck_assert_uint_eq(seen.n_delivery, 1);
	store_close(st);
}
END_TEST

START_TEST(test_delivery_order)
{
	static const uint64_t a_ids[] = { 50, 7, 33, 8, 1000, 2 };
	struct store *st = open_started();
	size_t i, na = 0, changes = 0;
	uint64_t last = 0;

	put_msg(st, 1, "t", 0);
	put_session(st, "a", NOW, 60, 0);
	put_session(st, "b", NOW, 60, 0);
	for (i = 0; i < NELEM(a_ids); i++) {
		put_delivery(st, a_ids[i], "a", 1, 0);
		/* b's interleave with a's. */
		put_delivery(st, a_ids[i] + 10000, "b", 1, 0);
	}
	commit_wait(st);
	store_close(st);

	st = reload(NOW);
	ck_assert_uint_eq(seen.n_delivery, 2 * NELEM(a_ids));
	/* One session's deliveries together, each in id order. */
	for (i = 0; i < seen.n_delivery; i++) {
		const struct seen_delivery *d = &seen.delivery[i];

		const struct bytes *prev = &seen.delivery[i ? i - 1 : 0].client;

		if (!bytes_eq(&d->client, prev->b, prev->len)) {
			changes++;
			last = 0;
		}
		ck_assert_uint_gt(d->id, last);
		last = d->id;
		na += bytes_eq(&d->client, "a", 1);
	}
	ck_assert_uint_eq(changes, 1);
	ck_assert_uint_eq(na, NELEM(a_ids));
	ck_assert_uint_eq(store_max_id(st), 11000);
	store_close(st);
}
END_TEST

/* ------------------------------------------------------ message lifetime */

START_TEST(test_msg_shared_gc)
{
	struct store *st = open_started();

	put_msg(st, 1, "t", 0);
	put_session(st, "a", 0, 60, 0);
	put_session(st, "b", 0, 60, 0);
	put_delivery(st, 10, "a", 1, 0);
	put_delivery(st, 11, "b", 1, 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(rows("delivery"), 2);
	check_ok();

	ck_assert_int_eq(store_delivery_del(st, 10), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(rows("delivery"), 1);
	check_ok();

	ck_assert_int_eq(store_delivery_del(st, 11), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 0);
	ck_assert_int_eq(rows("delivery"), 0);
	check_ok();
	store_close(st);
}
END_TEST

/*
 * Queued before start: one batch, in which the message comes and goes.
 * The delivery deleted while its put was queued is never written, and
 * nor is the message dropped while its put was; what was recorded still
 * counts as committed.
 */
START_TEST(test_put_del_one_batch)
{
	struct store *st = open_store();
	uint64_t seq;

	put_session(st, "a", 0, 60, 0);
	put_msg(st, 1, "t", 0);
	put_delivery(st, 10, "a", 1, 0);
	ck_assert_int_eq(store_delivery_update(st, 10, 5, STORE_DLV_SENT), 0);
	ck_assert_int_eq(store_delivery_del(st, 10), 0);
	ck_assert_int_eq(store_msg_drop(st, 1), 0);
	seq = store_submitted(st);
	ck_assert_int_eq(store_start(st), 0);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), seq);
	ck_assert_int_eq(notify_count(), 1);
	ck_assert_int_eq(rows("msg"), 0);
	ck_assert_int_eq(rows("delivery"), 0);
	ck_assert_int_eq(rows("session"), 1);
	check_ok();
	store_close(st);
}
END_TEST

/*
 * The writer may commit a message before the delivery that refers to it
 * is even queued; the message must still be there for it.
 */
START_TEST(test_msg_then_reference_next_batch)
{
	struct store *st = open_started();

	put_session(st, "a", 0, 60, 0);
	put_msg(st, 1, "t", 0);
	put_msg(st, 2, "r", 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 2);
	put_delivery(st, 10, "a", 1, 0);
	ck_assert_int_eq(store_retain_put(st, 2), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 2);
	check_ok();
	store_close(st);
}
END_TEST

/* A message nothing ever referred to is swept at the next load. */
START_TEST(test_unreferenced_msg_swept_at_load)
{
	struct store *st = open_started();
	char err[256] = "";

	put_msg(st, 1, "t", 0);
	commit_wait(st);
	store_close(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -EIO);
	st = reload(NOW);
	ck_assert_uint_eq(seen.n_msg, 0);
	store_close(st);
	ck_assert_int_eq(rows("msg"), 0);
	check_ok();
}
END_TEST

START_TEST(test_delivery_update)
{
	struct store *st = open_started();

	put_session(st, "a", 0, 60, 0);
	put_msg(st, 1, "t", 0);
	put_delivery(st, 10, "a", 1, 0);
	commit_wait(st);
	ck_assert_int_eq(store_delivery_update(st, 10, 321, STORE_DLV_SENT), 0);
	commit_wait(st);
	ck_assert_int_eq(sql_int("SELECT packet_id FROM delivery"), 321);
	ck_assert_int_eq(store_delivery_update(st, 10, 321,
					       STORE_DLV_RELEASED),
			 0);
	store_close(st);
	st = reload(NOW);
	ck_assert_uint_eq(seen.n_delivery, 1);
	ck_assert_uint_eq(seen.delivery[0].packet_id, 321);
	ck_assert_uint_eq(seen.delivery[0].state, STORE_DLV_RELEASED);
	store_close(st);
}
END_TEST

START_TEST(test_session_del_cascade)
{
	struct store *st = open_started();

	put_msg(st, 1, "t", 0);
	put_msg(st, 2, "will", 0);
	put_msg(st, 3, "only/a", 0);
	put_session(st, "a", 0, 60, 2);
	put_session(st, "b", 0, 60, 0);
	put_sub(st, "a", "t/#", 1, 0);
	put_sub(st, "a", "u", 1, 0);
	put_sub(st, "b", "t/#", 1, 0);
	put_delivery(st, 10, "a", 1, 1);
	put_delivery(st, 11, "a", 3, 0);
	put_delivery(st, 12, "b", 1, 0);
	ck_assert_int_eq(store_qos2_in_put(st, "a", 1, 9), 0);
	ck_assert_int_eq(store_qos2_in_put(st, "b", 1, 9), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 3);

	ck_assert_int_eq(store_session_del(st, "a", 1), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("session"), 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM sub"
				 " WHERE client_id = X'61'"),
			 0);
	ck_assert_int_eq(rows("sub"), 1);
	ck_assert_int_eq(rows("delivery"), 1);
	ck_assert_int_eq(rows("qos2_in"), 1);
	/* The will and a's own message went; b's stays. */
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(sql_int("SELECT id FROM msg"), 1);
	check_ok();
	store_close(st);
}
END_TEST

START_TEST(test_will_replace)
{
	struct store *st = open_started();

	put_msg(st, 2, "will", 0);
	put_session(st, "a", 0, 60, 2);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	/* The client came back without a will. */
	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 0);
	ck_assert_int_eq(sql_int("SELECT will_msg_id IS NULL FROM session"), 1);
	check_ok();
	store_close(st);
}
END_TEST

START_TEST(test_sub_replace)
{
	struct store *st = open_started();

	put_session(st, "a", 0, 60, 0);
	put_sub(st, "a", "x/#", 1, 5);
	put_sub(st, "a", "y", 0, 0);
	commit_wait(st);
	put_sub(st, "a", "x/#", 2, 7);
	commit_wait(st);
	ck_assert_int_eq(rows("sub"), 2);
	ck_assert_int_eq(store_sub_del(st, "a", 1, "y", 1), 0);
	ck_assert_int_eq(store_sub_del(st, "a", 1, "nope", 4), 0);
	store_close(st);

	st = reload(NOW);
	ck_assert_uint_eq(seen.n_sub, 1);
	ck_assert(bytes_eq(&seen.sub[0].filter, "x/#", 3));
	ck_assert_uint_eq(seen.sub[0].options, 2);
	ck_assert_uint_eq(seen.sub[0].sub_id, 7);
	store_close(st);
}
END_TEST

START_TEST(test_retain_replace)
{
	struct store *st = open_started();

	put_msg(st, 1, "t", 0);
	ck_assert_int_eq(store_retain_put(st, 1), 0);
	put_msg(st, 5, "other", 0);
	ck_assert_int_eq(store_retain_put(st, 5), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 2);

	put_msg(st, 2, "t", 0);
	ck_assert_int_eq(store_retain_put(st, 2), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("retained"), 2);
	ck_assert_int_eq(sql_int("SELECT msg_id FROM retained"
				 " WHERE topic = X'74'"),
			 2);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM msg WHERE id = 1"), 0);
	check_ok();

	ck_assert_int_eq(store_retain_del(st, "t", 1), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("retained"), 1);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(sql_int("SELECT id FROM msg"), 5);
	check_ok();
	store_close(st);
}
END_TEST

/* A retained message that also has a delivery outlives its retained entry. */
START_TEST(test_retain_del_keeps_delivered)
{
	struct store *st = open_started();

	put_session(st, "a", 0, 60, 0);
	put_msg(st, 1, "t", 0);
	ck_assert_int_eq(store_retain_put(st, 1), 0);
	put_delivery(st, 3, "a", 1, 0);
	commit_wait(st);
	ck_assert_int_eq(store_retain_del(st, "t", 1), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(store_delivery_del(st, 3), 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 0);
	store_close(st);
}
END_TEST

/* ------------------------------------------------------------ load sweep */

START_TEST(test_load_expiry)
{
	struct store *st = open_store();
	const int64_t past = NOW * 1000 - 1, future = NOW * 1000 + 1;

	put_session(st, "live", NOW - 10, 100, 0);
	put_session(st, "edge", NOW - 100, 100, 0); /* expires after now */
	put_session(st, "gone", NOW - 101, 100, 7);
	put_session(st, "forever", 1, UINT32_MAX, 0);
	put_sub(st, "gone", "t", 1, 0);
	ck_assert_int_eq(store_qos2_in_put(st, "gone", 4, 3), 0);
	put_msg(st, 7, "will-of-gone", 0);

	put_msg(st, 1, "retained/expired", past);
	ck_assert_int_eq(store_retain_put(st, 1), 0);
	put_msg(st, 2, "queued/expired", past);
	put_delivery(st, 20, "live", 2, STORE_DLV_QUEUED);
	put_msg(st, 3, "sent/expired", past);
	put_delivery(st, 21, "live", 3, STORE_DLV_SENT);
	put_msg(st, 4, "retained/forever", 0);
	ck_assert_int_eq(store_retain_put(st, 4), 0);
	put_msg(st, 5, "queued/future", future);
	put_delivery(st, 22, "live", 5, STORE_DLV_QUEUED);
	put_msg(st, 6, "queued/gone", 0);
	put_delivery(st, 23, "gone", 6, STORE_DLV_QUEUED);
	store_close(st);
	ck_assert_int_eq(rows("msg"), 7);

	st = reload(NOW);
	ck_assert_uint_eq(seen.n_session, 3);
	ck_assert_ptr_nonnull(seen_session_id("live"));
	ck_assert_ptr_nonnull(seen_session_id("edge"));
	ck_assert_ptr_nonnull(seen_session_id("forever"));
	ck_assert_uint_eq(seen.n_sub, 0);
	ck_assert_uint_eq(seen.n_qos2, 0);

	ck_assert_uint_eq(seen.n_msg, 3);
	ck_assert_ptr_null(seen_msg_id(1));
	ck_assert_ptr_null(seen_msg_id(2));
	/* Delivery started: it continues with its message. */
	ck_assert_ptr_nonnull(seen_msg_id(3));
	ck_assert_ptr_nonnull(seen_msg_id(4));
	ck_assert_ptr_nonnull(seen_msg_id(5));
	ck_assert_uint_eq(seen.n_retained, 1);
	ck_assert_uint_eq(seen.retained[0], 4);
	ck_assert_uint_eq(seen.n_delivery, 2);
	ck_assert_uint_eq(seen.delivery[0].id, 21);
	ck_assert_uint_eq(seen.delivery[1].id, 22);
	store_close(st);
	/* What was swept is gone from the file, not just unreported. */
	ck_assert_int_eq(rows("msg"), 3);
	ck_assert_int_eq(rows("session"), 3);
	check_ok();
}
END_TEST

START_TEST(test_load_online_at_crash)
{
	struct store *st = open_store();
	const struct seen_session *s;

	/* Connected when cicada died; a 5 s expiry would be long past. */
	put_session(st, "on", 0, 5, 0);
	store_close(st);

	st = reload(NOW);
	s = seen_session_id("on");
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->offline_since, NOW);
	store_close(st);
	ck_assert_int_eq(sql_int("SELECT offline_since FROM session"), NOW);

	/* Offline from that restart: 6 s later it is gone. */
	st = reload(NOW + 6);
	ck_assert_uint_eq(seen.n_session, 0);
	store_close(st);
}
END_TEST

/* ---------------------------------------------------------------- schema */

START_TEST(test_schema_reopen)
{
	struct store *st = open_store();

	ck_assert_int_eq(sql_int("SELECT version FROM schema_version"),
			 STORE_SCHEMA_VERSION);
	put_msg(st, 3, "t", 0);
	ck_assert_int_eq(store_retain_put(st, 3), 0);
	store_close(st);

	st = reload(NOW);
	ck_assert_uint_eq(seen.n_retained, 1);
	ck_assert_uint_eq(store_max_id(st), 3);
	store_close(st);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM schema_version"), 1);
	ck_assert_int_eq(sql_int("SELECT version FROM schema_version"),
			 STORE_SCHEMA_VERSION);
	check_ok();
}
END_TEST

/* An existing empty file is an empty database: migrated from nothing. */
START_TEST(test_schema_empty_file)
{
	struct store *st;
	int fd;

	fd = open(db_path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	st = open_store();
	ck_assert_uint_eq(store_max_id(st), 0);
	store_close(st);
	ck_assert_int_eq(sql_int("SELECT version FROM schema_version"),
			 STORE_SCHEMA_VERSION);
}
END_TEST

#define CICADA_STR2(x) #x
#define CICADA_STR(x) CICADA_STR2(x)

/*
 * A version 1 database (as cicada 0.1 wrote it, with a session and its
 * parked will) opens migrated to the current version and keeps its rows;
 * the will's expiry, which version 1 did not keep, reads as none.
 */
START_TEST(test_schema_migrate_v1)
{
	struct store *st;

	sql_exec("CREATE TABLE schema_version(one INTEGER PRIMARY KEY"
		 " CHECK (one = 1), version INTEGER NOT NULL);"
		 "INSERT INTO schema_version VALUES (1, 1);"
		 "CREATE TABLE msg(id INTEGER PRIMARY KEY, topic BLOB NOT NULL,"
		 " payload BLOB NOT NULL, props BLOB NOT NULL,"
		 " qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
		 " expiry_at_ms INTEGER NOT NULL);"
		 "CREATE TABLE session(client_id BLOB PRIMARY KEY,"
		 " version INTEGER NOT NULL, expiry_interval INTEGER NOT NULL,"
		 " offline_since INTEGER NOT NULL, will_msg_id INTEGER,"
		 " will_delay INTEGER NOT NULL) WITHOUT ROWID;"
		 "CREATE INDEX session_will ON session(will_msg_id)"
		 " WHERE will_msg_id IS NOT NULL;"
		 "CREATE TABLE sub(client_id BLOB NOT NULL,"
		 " filter BLOB NOT NULL, options INTEGER NOT NULL,"
		 " sub_id INTEGER NOT NULL, PRIMARY KEY (client_id, filter))"
		 " WITHOUT ROWID;"
		 "CREATE TABLE delivery(id INTEGER PRIMARY KEY,"
		 " client_id BLOB NOT NULL, msg_id INTEGER NOT NULL,"
		 " packet_id INTEGER NOT NULL, qos INTEGER NOT NULL,"
		 " state INTEGER NOT NULL, retain INTEGER NOT NULL,"
		 " sub_ids BLOB NOT NULL);"
		 "CREATE INDEX delivery_client ON delivery(client_id, id);"
		 "CREATE INDEX delivery_msg ON delivery(msg_id);"
		 "CREATE TABLE retained(topic BLOB PRIMARY KEY,"
		 " msg_id INTEGER NOT NULL) WITHOUT ROWID;"
		 "CREATE INDEX retained_msg ON retained(msg_id);"
		 "CREATE TABLE qos2_in(client_id BLOB NOT NULL,"
		 " packet_id INTEGER NOT NULL,"
		 " PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID;"
		 "INSERT INTO msg VALUES (5, X'77', X'21', X'', 1, 0, 0);"
		 "INSERT INTO session VALUES (X'61', 5, 4294967295, 1000, 5, 30);");
	st = reload(NOW);
	ck_assert_uint_eq(seen.n_session, 1);
	ck_assert_uint_eq(seen.session[0].will_msg_id, 5);
	ck_assert_uint_eq(seen.session[0].will_delay, 30);
	ck_assert_uint_eq(seen.session[0].will_expiry, 0);
	store_close(st);
	ck_assert_int_eq(sql_int("SELECT version FROM schema_version"),
			 STORE_SCHEMA_VERSION);
	check_ok();
}
END_TEST

START_TEST(test_schema_newer)
{
	struct store_options o = { .path = db_path, .strict = true };
	struct store *st = open_store();
	char err[256] = "", want[256];

	store_close(st);
	sql_exec("UPDATE schema_version SET version = "
		 CICADA_STR(STORE_SCHEMA_VERSION) " + 1");
	st = (struct store *)1;
	ck_assert_int_eq(store_open(&st, &o, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_null(st);
	snprintf(want, sizeof(want),
		 "database %s has schema version %d; this cicada reads up to "
		 "%d: use a newer cicada",
		 db_path, STORE_SCHEMA_VERSION + 1, STORE_SCHEMA_VERSION);
	ck_assert_str_eq(err, want);
	/* Untouched: still the newer version. */
	ck_assert_int_eq(sql_int("SELECT version FROM schema_version"),
			 STORE_SCHEMA_VERSION + 1);
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -EPROTO);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_open_garbage)
{
	struct store_options o = { .path = db_path, .strict = true };
	char err[256] = "", buf[4096];
	struct store *st;
	FILE *f;

	memset(buf, 'x', sizeof(buf));
	f = fopen(db_path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
	fclose(f);
	ck_assert_int_eq(store_open(&st, &o, err, sizeof(err)), -EIO);
	ck_assert_ptr_null(st);
	ck_assert_msg(!strncmp(err, db_path, strlen(db_path)) &&
			      strstr(err, ": file is not a database"),
		      "%s", err);
	err[0] = '\0';
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "file is not a database"), "%s", err);
}
END_TEST

START_TEST(test_open_unwritable)
{
	struct store_options o = { .strict = true };
	char err[256] = "", path[256];
	struct store *st;

	snprintf(path, sizeof(path), "%s/no/such/dir/cicada.db", dir);
	o.path = path;
	ck_assert_int_eq(store_open(&st, &o, err, sizeof(err)), -EIO);
	ck_assert_msg(!strncmp(err, path, strlen(path)) &&
			      strstr(err, "unable to open database file"),
		      "%s", err);
	ck_assert_int_eq(store_check(path, err, sizeof(err)), -ENOENT);
}
END_TEST

START_TEST(test_open_foreign_db)
{
	struct store_options o = { .path = db_path, .strict = true };
	char err[256] = "";
	struct store *st;

	sql_exec("CREATE TABLE notes(x)");
	ck_assert_int_eq(store_open(&st, &o, err, sizeof(err)), -EPROTO);
	ck_assert_msg(strstr(err, "not a cicada database"), "%s", err);
}
END_TEST

/*
 * A second store (another cicada) on a file in use is refused at once;
 * a check may still read it; once the first closes, a store opens.
 */
START_TEST(test_open_in_use)
{
	struct store_options o = { .path = db_path, .strict = true };
	struct store *st = open_started(), *second;
	char err[256] = "";

	ck_assert_int_eq(store_open(&second, &o, err, sizeof(err)), -EBUSY);
	ck_assert_ptr_null(second);
	ck_assert_msg(!strncmp(err, db_path, strlen(db_path)) &&
			      strstr(err, "in use by another process"),
		      "%s", err);
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), 0);
	store_close(st);
	ck_assert_int_eq(store_open(&second, &o, err, sizeof(err)), 0);
	store_close(second);
	check_ok();
}
END_TEST

/* ------------------------------------------------- commits and threads */

START_TEST(test_notify_committed)
{
	struct store *st = open_started();
	uint64_t sub;
	int i;

	ck_assert_uint_eq(store_submitted(st), 0);
	ck_assert_uint_eq(store_committed(st), 0);
	for (i = 1; i <= 50; i++) {
		put_session(st, "a", 0, 60, 0);
		ck_assert_uint_eq(store_submitted(st), (uint64_t)i);
		ck_assert_uint_le(store_committed(st), store_submitted(st));
	}
	sub = store_submitted(st);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), sub);
	ck_assert_uint_ge(notify_count(), 1);
	store_close(st);
}
END_TEST

/* The text of PRAGMA name on st's connection. */
static void pragma_is(struct store *st, const char *name, const char *want)
{
	char sql[64];
	sqlite3_stmt *s;

	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	ck_assert_int_eq(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), want);
	sqlite3_finalize(s);
}

START_TEST(test_pragmas)
{
	struct store *st = open_mode(true, 0);

	pragma_is(st, "journal_mode", "wal");
	pragma_is(st, "synchronous", "2"); /* FULL */
	store_close(st);
	st = open_mode(false, 100);
	pragma_is(st, "journal_mode", "wal");
	pragma_is(st, "synchronous", "1"); /* NORMAL */
	store_close(st);
}
END_TEST

/* Strict ignores the interval: a commit comes long before 10 s. */
/*
 * What is recorded inside a group waits for the group's end, and then
 * commits with it; what came before the group is not held up forever.
 */
START_TEST(test_group_commits_whole)
{
	struct store *st = open_started();
	uint64_t before;

	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	before = store_committed(st);
	store_group_begin(st);
	put_msg(st, 1, "t", 0);
	usleep(200000); /* the writer would have committed by now */
	put_session(st, "b", 0, 60, 0);
	ck_assert_uint_eq(store_committed(st), before);
	store_group_begin(st); /* nested */
	store_group_end(st);
	usleep(100000);
	ck_assert_uint_eq(store_committed(st), before);
	store_group_end(st);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), before + 2);
	store_close(st);
}
END_TEST

static void *put_session_b(void *arg)
{
	put_session(arg, "b", 0, 60, 0);
	return NULL;
}

/*
 * A local group holds the writer back only from this thread's first
 * change in it: an empty one counts nothing and lets another thread's
 * change commit; one with a change commits whole at its end; nested
 * local groups and a group inside one count as groups do.
 */
START_TEST(test_local_group)
{
	struct store *st = open_started();
	pthread_t other;
	uint64_t before;

	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	before = store_committed(st);

	/* Open and empty: another thread's change is not held up. */
	store_local_group_begin(st);
	ck_assert_int_eq(pthread_create(&other, NULL, put_session_b, st), 0);
	ck_assert_int_eq(pthread_join(other, NULL), 0);
	ck_assert_uint_eq(st->group_depth, 0);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), before + 1);
	store_local_group_end(st);
	ck_assert_uint_eq(st->group_depth, 0);

	/* Nested, with changes: counted from the first, held to the end. */
	before = store_committed(st);
	store_local_group_begin(st);
	store_local_group_begin(st);
	put_session(st, "c", 0, 60, 0);
	ck_assert_uint_eq(st->group_depth, 2);
	store_local_group_end(st);
	ck_assert_uint_eq(st->group_depth, 1);
	put_msg(st, 1, "t", 0);
	usleep(200000); /* the writer would have committed by now */
	ck_assert_uint_eq(store_committed(st), before);
	store_local_group_end(st);
	ck_assert_uint_eq(st->group_depth, 0);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), before + 2);

	/*
	 * A group inside a local one counts the local one at once (another
	 * thread may close it before this one records anything), outlives
	 * it, and holds the writer.
	 */
	before = store_committed(st);
	store_local_group_begin(st);
	store_group_begin(st);
	ck_assert_uint_eq(st->group_depth, 2);
	put_msg(st, 2, "u", 0);
	store_local_group_end(st);
	ck_assert_uint_eq(st->group_depth, 1);
	usleep(100000);
	ck_assert_uint_eq(store_committed(st), before);
	store_group_end(st);
	commit_wait(st);
	ck_assert_uint_eq(store_committed(st), before + 1);
	store_close(st);
}
END_TEST

/*
 * Two deliveries of one message queued; one is deleted before the writer
 * takes them: the message and the other are written.  A batch in which
 * everything was undone still reports its commit.
 */
START_TEST(test_undo_some_and_all)
{
	struct store *st = open_started();

	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	store_group_begin(st); /* keeps the writer off the queue */
	put_msg(st, 1, "t", 0);
	put_delivery(st, 10, "a", 1, 0);
	put_delivery(st, 11, "a", 1, 0);
	ck_assert_int_eq(store_delivery_del(st, 10), 0);
	store_group_end(st);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(rows("delivery"), 1);
	check_ok();

	store_group_begin(st);
	put_msg(st, 2, "u", 0);
	put_delivery(st, 12, "a", 2, 0);
	ck_assert_int_eq(store_delivery_del(st, 12), 0);
	ck_assert_int_eq(store_msg_drop(st, 2), 0);
	store_group_end(st);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(rows("delivery"), 1);
	check_ok();

	/*
	 * Dropped after the writer wrote it (the put of its last reference
	 * undone in between): the next batch deletes it, and only if
	 * nothing refers to it.
	 */
	put_msg(st, 3, "v", 0);
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 2);
	ck_assert_int_eq(store_msg_drop(st, 3), 0);
	ck_assert_int_eq(store_msg_drop(st, 1), 0); /* delivery 11 holds it */
	commit_wait(st);
	ck_assert_int_eq(rows("msg"), 1);
	ck_assert_int_eq(rows("delivery"), 1);
	check_ok();
	store_close(st);
}
END_TEST

START_TEST(test_strict_commits_at_once)
{
	struct store *st = open_mode(true, 10000);
	double t0;
	int i;

	ck_assert_int_eq(store_start(st), 0);
	t0 = now_mono();
	for (i = 0; i < 3; i++) {
		put_session(st, "a", 0, 60, 0);
		ck_assert(wait_settled(st, 9000));
	}
	ck_assert_ptr_null(store_failed(st));
	ck_assert(now_mono() - t0 < 9.0);
	ck_assert_uint_eq(notify_count(), 3);
	store_close(st);
}
END_TEST

START_TEST(test_batch_interval)
{
	struct store *st = open_mode(false, 300);
	double t_first, t_second;
	unsigned n;

	ck_assert_int_eq(store_start(st), 0);
	/* Idle until now: the first change commits at once. */
	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	t_first = now_mono();
	ck_assert_uint_eq(notify_count(), 1);

	put_session(st, "b", 0, 60, 0);
	usleep(50 * 1000);
	/* Within the interval: not committed yet. */
	ck_assert_uint_eq(notify_count(), 1);
	ck_assert_uint_lt(store_committed(st), store_submitted(st));
	commit_wait(st);
	t_second = now_mono();
	ck_assert_msg(t_second - t_first >= 0.2, "second commit after %.3f s",
		      t_second - t_first);
	ck_assert_uint_eq(notify_count(), 2);

	/* A stream of changes over ~0.6 s: about one commit per interval. */
	n = notify_count();
	t_first = now_mono();
	while (now_mono() - t_first < 0.6) {
		put_session(st, "c", 0, 60, 0);
		usleep(1000);
	}
	commit_wait(st);
	ck_assert_msg(notify_count() - n <= 4, "%u commits",
		      notify_count() - n);
	store_close(st);
}
END_TEST

/* store_close() commits what waits for the interval. */
START_TEST(test_batch_close_commits)
{
	struct store *st = open_mode(false, 60000);

	ck_assert_int_eq(store_start(st), 0);
	put_session(st, "a", 0, 60, 0);
	commit_wait(st);
	put_session(st, "b", 0, 60, 0);
	store_close(st);
	ck_assert_int_eq(rows("session"), 2);
}
END_TEST

#define PER_THREAD 2000

struct worker {
	struct store *st;
	uint64_t base;
	char client[8];
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct store_msg m = { .topic = "t", .topic_len = 1, .qos = 1 };
	struct store_delivery d = { .qos = 1 };
	uint64_t i;

	d.client_id = w->client;
	d.client_id_len = strlen(w->client);
	for (i = 0; i < PER_THREAD; i++) {
		m.id = w->base + 2 * i;
		d.id = m.id + 1;
		d.msg_id = m.id;
		w->failures += store_msg_put(w->st, &m) != 0;
		w->failures += store_delivery_put(w->st, &d) != 0;
	}
	return NULL;
}

START_TEST(test_two_threads)
{
	struct worker w[2] = { { .base = 1, .client = "w0" },
			       { .base = 1000001, .client = "w1" } };
	pthread_t t[2];
	struct store *st = open_started();
	int i;

	put_session(st, "w0", 0, 60, 0);
	put_session(st, "w1", 0, 60, 0);
	for (i = 0; i < 2; i++) {
		w[i].st = st;
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main,
						&w[i]),
				 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	ck_assert_uint_eq(store_submitted(st), 2 + 2 * 2 * PER_THREAD);
	commit_wait(st);
	store_close(st);
	ck_assert_int_eq(rows("msg"), 2 * PER_THREAD);
	ck_assert_int_eq(rows("delivery"), 2 * PER_THREAD);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM delivery d JOIN msg m"
				 " ON m.id = d.msg_id"),
			 2 * PER_THREAD);
	check_ok();
}
END_TEST

/* --------------------------------------------------------------- failure */

START_TEST(test_disk_full)
{
	static uint8_t big[256 * 1024];
	struct store *st = open_store();
	struct store_msg m = {
		.id = 1,
		.topic = "big",
		.topic_len = 3,
		.payload = big,
		.payload_len = sizeof(big),
		.qos = 1,
	};
	uint64_t sub;
	const char *why;
	char sql[64];

	/* The file may not grow: the next batch that needs a page fails. */
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		 (long long)sql_int("PRAGMA page_count"));
	ck_assert_int_eq(sqlite3_exec(st->db, sql, NULL, NULL, NULL),
			 SQLITE_OK);
	put_session(st, "a", 0, 60, 0);
	ck_assert_int_eq(store_start(st), 0);
	commit_wait(st);
	sub = store_committed(st);
	ck_assert_uint_eq(sub, 1);

	ck_assert_int_eq(store_msg_put(st, &m), 0);
	ck_assert(wait_settled(st, 10000));
	why = store_failed(st);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, "database or disk is full") &&
			      strstr(why, db_path) &&
			      strstr(why, "no longer saved"),
		      "%s", why);
	ck_assert_uint_eq(store_committed(st), sub);
	ck_assert_uint_eq(store_submitted(st), sub + 1);
	ck_assert_uint_eq(notify_count(), 2);
	ck_assert_int_eq(store_msg_put(st, &m), -EIO);
	ck_assert_int_eq(store_session_del(st, "a", 1), -EIO);
	ck_assert_int_eq(store_delivery_del(st, 2), -EIO);
	ck_assert_uint_eq(store_submitted(st), sub + 1);
	ck_assert_ptr_eq(store_failed(st), why);
	store_close(st);

	/* Nothing of the failed batch reached the file. */
	ck_assert_int_eq(rows("msg"), 0);
	ck_assert_int_eq(rows("delivery"), 0);
	ck_assert_int_eq(rows("session"), 1);
	check_ok();
}
END_TEST

/* --------------------------------------------------------- store_check */

struct damage {
	const char *sql; /* run on a sound database */
	int rc;
	const char *err; /* substring of store_check's message */
};

static const struct damage damages[] = {
	{ "INSERT INTO delivery VALUES (77, X'61', 999, 0, 1, 0, 0, X'')",
	  -EIO,
	  "1 delivery refers to a missing message (first: delivery 77, "
	  "message 999)" },
	{ "INSERT INTO delivery VALUES (77, X'61', 998, 0, 1, 0, 0, X'');"
	  "INSERT INTO delivery VALUES (76, X'61', 999, 0, 1, 0, 0, X'')",
	  -EIO,
	  "2 deliveries refer to a missing message (first: delivery 76, "
	  "message 999)" },
	{ "UPDATE retained SET msg_id = 55", -EIO,
	  "1 retained entry refers to a missing message (first: topic r, "
	  "message 55)" },
	{ "UPDATE session SET will_msg_id = 66", -EIO,
	  "1 session's will refers to a missing message (first: client a, "
	  "message 66)" },
	{ "INSERT INTO msg VALUES (12, X'74', X'', X'', 1, 0, 0);"
	  "INSERT INTO delivery VALUES (78, X'7a00', 12, 0, 1, 0, 0, X'')",
	  -EIO,
	  "1 delivery belongs to no session (first: delivery 78, client z?)" },
	{ "INSERT INTO sub VALUES (X'7a', X'23', 0, 0)", -EIO,
	  "1 subscription belongs to no session (first: client z, filter #)" },
	{ "INSERT INTO qos2_in VALUES (X'7a', 4)", -EIO,
	  "1 QoS 2 packet id belongs to no session (first: client z, packet "
	  "id 4)" },
	{ "INSERT INTO msg VALUES (13, X'74', X'', X'', 1, 0, 0)", -EIO,
	  "1 message is referred to by nothing (first: message 13)" },
	{ "DELETE FROM schema_version", -EPROTO,
	  "table schema_version is damaged" },
	{ "DROP TABLE schema_version", -EPROTO,
	  "not a cicada database (it has tables but no schema_version)" },
};

START_TEST(test_check_damage)
{
	const struct damage *dm = &damages[_i];
	struct store *st = open_started();
	char err[256] = "";
	int rc;

	put_session(st, "a", 0, 60, 0);
	put_msg(st, 1, "r", 0);
	ck_assert_int_eq(store_retain_put(st, 1), 0);
	commit_wait(st);
	store_close(st);
	check_ok();

	sql_exec(dm->sql);
	rc = store_check(db_path, err, sizeof(err));
	ck_assert_msg(rc == dm->rc && strstr(err, dm->err) &&
			      !strncmp(err, db_path, strlen(db_path)),
		      "got %d '%s', want %d '%s'", rc, err, dm->rc, dm->err);
	if (dm->rc != -EIO)
		return;
	/* store_load() sweeps what store_check() finds. */
	st = reload(NOW);
	store_close(st);
	check_ok();
}
END_TEST

START_TEST(test_check_missing_and_empty)
{
	char err[256] = "";
	int fd;

	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, db_path), "%s", err);
	fd = open(db_path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -EPROTO);
	ck_assert_msg(strstr(err, "not a cicada database"), "%s", err);
}
END_TEST

/* Corrupt a page under SQLite's feet: its own integrity check speaks. */
START_TEST(test_check_integrity)
{
	struct store *st = open_started();
	char err[256] = "";
	int64_t page, root;
	char topic[32];
	FILE *f;
	int i;

	for (i = 1; i <= 200; i++) {
		snprintf(topic, sizeof(topic), "some/topic/%d", i);
		put_msg(st, (uint64_t)i, topic, 0);
		ck_assert_int_eq(store_retain_put(st, (uint64_t)i), 0);
	}
	commit_wait(st);
	store_close(st);
	sql_exec("PRAGMA journal_mode = DELETE");
	check_ok();
	page = sql_int("PRAGMA page_size");
	root = sql_int("SELECT rootpage FROM sqlite_master"
		       " WHERE name = 'retained_msg'");
	ck_assert_int_gt(root, 1);
	/* Scribble over the header of the index's root page. */
	f = fopen(db_path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, (long)((root - 1) * page), SEEK_SET), 0);
	for (i = 0; i < 12; i++)
		fputc(0xff, f);
	fclose(f);
	ck_assert_int_eq(store_check(db_path, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "integrity check failed") ||
			      strstr(err, "malformed"),
		      "%s", err);
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_started);
	tcase_add_test(tc, test_roundtrip_never_started);
	tcase_add_test(tc, test_load_stops);
	tcase_add_test(tc, test_delivery_order);
	tcase_add_test(tc, test_msg_shared_gc);
	tcase_add_test(tc, test_put_del_one_batch);
	tcase_add_test(tc, test_msg_then_reference_next_batch);
	tcase_add_test(tc, test_unreferenced_msg_swept_at_load);
	tcase_add_test(tc, test_delivery_update);
	tcase_add_test(tc, test_session_del_cascade);
	tcase_add_test(tc, test_will_replace);
	tcase_add_test(tc, test_sub_replace);
	tcase_add_test(tc, test_retain_replace);
	tcase_add_test(tc, test_retain_del_keeps_delivered);
	tcase_add_test(tc, test_load_expiry);
	tcase_add_test(tc, test_load_online_at_crash);
	tcase_add_test(tc, test_schema_reopen);
	tcase_add_test(tc, test_schema_empty_file);
	tcase_add_test(tc, test_schema_newer);
	tcase_add_test(tc, test_schema_migrate_v1);
	tcase_add_test(tc, test_open_garbage);
	tcase_add_test(tc, test_open_unwritable);
	tcase_add_test(tc, test_open_foreign_db);
	tcase_add_test(tc, test_open_in_use);
	tcase_add_test(tc, test_group_commits_whole);
	tcase_add_test(tc, test_local_group);
	tcase_add_test(tc, test_undo_some_and_all);
	tcase_add_test(tc, test_notify_committed);
	tcase_add_test(tc, test_pragmas);
	tcase_add_test(tc, test_strict_commits_at_once);
	tcase_add_test(tc, test_batch_interval);
	tcase_add_test(tc, test_batch_close_commits);
	tcase_add_test(tc, test_two_threads);
	tcase_add_test(tc, test_disk_full);
	tcase_add_loop_test(tc, test_check_damage, 0, (int)NELEM(damages));
	tcase_add_test(tc, test_check_missing_and_empty);
	tcase_add_test(tc, test_check_integrity);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
