/*
 * The broker's side of persistence: which state is durable, the mapping of
 * sessions, deliveries and messages to storage records, the restore at
 * start-up, and the output hold of durability strict (see persist.h).
 *
 * Message rows: a struct msg gets a store id the first time a durable
 * record refers to it and counts those records (store_refs); when the
 * last goes, the id is dropped (storage deletes the row at its commit) and
 * a later reference stores the message afresh under a new id.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/subtree.h"
#include "conf/config.h"
#include "storage/store.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct persist {
	struct store *st;
	struct broker *broker;
	bool strict;
	atomic_bool failure_logged;
	atomic_uint_fast64_t next_id; /* messages and deliveries */
	/*
	 * A message is shared by shards: its store_id and store_refs change
	 * under this lock (taken only by durable records).
	 */
	pthread_mutex_t msg_lock;
	char path[4096];
};

/*
 * Records storage refused after its failure, counted per shard thread: a
 * handler's mark (persist_mark()) must see its own refusals, not those of
 * other shards.
 */
static _Thread_local uint64_t refused_here;

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_durable(const struct session *s)
{
	return s->expiry_interval != 0;
}

/*
 * The persistence to record a needed change with, or NULL: none
 * configured, or failed (the change is then counted as refused, so the
 * packet that caused it is not acknowledged as if it were stored).
 */
static struct persist *recording(const struct broker *b)
{
	struct persist *p = b->persist;

	if (!p)
		return NULL;
	if (store_failed(p->st)) {
		refused_here++;
		return NULL;
	}
	return p;
}

/* A change storage refused (it failed meanwhile) counts as refused. */
static int saved(struct persist *p, int rc)
{
	(void)p;
	if (rc < 0)
		refused_here++;
	return rc;
}

void persist_group_begin(struct broker *b)
{
	if (b->persist)
		store_group_begin(b->persist->st);
}

void persist_group_end(struct broker *b)
{
	if (b->persist)
		store_group_end(b->persist->st);
}

void persist_local_group_begin(struct broker *b)
{
	if (b->persist)
		store_local_group_begin(b->persist->st);
}

void persist_local_group_end(struct broker *b)
{
	if (b->persist)
		store_local_group_end(b->persist->st);
}

/* ------------------------------------------------------------ messages */

/* Monotonic ms of the shard <-> Unix ms, for expiry that survives restarts. */
static int64_t expiry_to_wall(struct broker *b, uint64_t expiry_at)
{
	if (!expiry_at)
		return 0;
	return wall_ms() + ((int64_t)expiry_at -
			    (int64_t)shard_now_ms(&b->shards[0]));
}

static uint64_t expiry_from_wall(struct broker *b, int64_t at_ms)
{
	int64_t left;

	if (!at_ms)
		return 0;
	left = at_ms - wall_ms();
	return shard_now_ms(&b->shards[0]) + (uint64_t)(left > 0 ? left : 1);
}

/* One more durable reference to m: its store id, storing it if need be. */
static uint64_t msg_hold_locked(struct persist *p, struct msg *m)
{
	if (!m->store_id) {
		struct store_msg sm = {
			.id = atomic_fetch_add(&p->next_id, 1) + 1,
			.topic = m->topic,
			.topic_len = m->topic_len,
			.payload = m->payload,
			.payload_len = m->payload_len,
			.props = m->props,
			.props_len = m->props_len,
			.qos = m->qos,
			.retain = m->retain,
			.expiry_at_ms = expiry_to_wall(p->broker, m->expiry_at),
		};

		if (saved(p, store_msg_put(p->st, &sm)) < 0)
			return 0;
		m->store_id = sm.id;
		m->store_refs = 0;
	}
	m->store_refs++;
	return m->store_id;
}

/*
 * One durable reference fewer.  With the last, the row is forgotten (a
 * later reference stores the message again) and, if its put is still
 * queued, never written.
 */
static void msg_release(struct broker *b, struct msg *m)
{
	struct persist *p = b->persist;

	if (!p)
		return;
	pthread_mutex_lock(&p->msg_lock);
	if (m->store_id && --m->store_refs == 0) {
		if (!store_failed(p->st))
			store_msg_drop(p->st, m->store_id);
		m->store_id = 0;
	}
	pthread_mutex_unlock(&p->msg_lock);
}

static uint64_t msg_hold(struct persist *p, struct msg *m)
{
	uint64_t id;

	pthread_mutex_lock(&p->msg_lock);
	id = msg_hold_locked(p, m);
	pthread_mutex_unlock(&p->msg_lock);
	return id;
}

/* ------------------------------------------------------------ sessions */

static void put_session_row(struct persist *p, struct session *s)
{
	struct store_session ss = {
		.client_id = s->client_id,
		.client_id_len = s->client_id_len,
		.version = s->version,
		.expiry_interval = s->expiry_interval,
		.offline_since = s->conn ? 0 : wall_ms() / 1000,
	};

	if (s->will) {
		double left = s->will_at - shard_now(s->shard);

		if (!s->will->store_id)
			msg_hold(p, s->will);
		ss.will_msg_id = s->will->store_id;
		ss.will_delay = left > 0 ? (uint32_t)ceil(left) : 0;
		ss.will_expiry = s->will_expiry;
	}
	saved(p, store_session_put(p->st, &ss));
}

static void put_delivery(struct persist *p, struct session *s,
			 struct delivery *d)
{
	struct store_delivery sd = {
		.client_id = s->client_id,
		.client_id_len = s->client_id_len,
		.packet_id = d->packet_id,
		.qos = d->qos,
		.state = d->state,
		.retain = d->retain,
		.sub_id_count = d->sub_id_count,
		.sub_ids = d->sub_ids,
	};

	sd.msg_id = msg_hold(p, d->msg);
	if (!sd.msg_id)
		return;
	sd.id = atomic_fetch_add(&p->next_id, 1) + 1;
	if (saved(p, store_delivery_put(p->st, &sd)) < 0) {
		msg_release(p->broker, d->msg);
		return;
	}
	d->store_id = sd.id;
}

static void put_sub(struct persist *p, struct session *s,
		    const struct session_sub *sub)
{
	struct store_sub ss = {
		.client_id = s->client_id,
		.client_id_len = s->client_id_len,
		.filter = sub->filter,
		.filter_len = sub->len,
		.options = sub->options,
		.sub_id = sub->sub_id,
	};

	saved(p, store_sub_put(p->st, &ss));
}

/* Everything a session holds, when it becomes durable. */
static void put_whole_session(struct persist *p, struct session *s)
{
	struct delivery *lists[2] = { s->inflight, s->queue };

	put_session_row(p, s);
	for (const struct session_sub *sub = s->subs; sub; sub = sub->next)
		put_sub(p, s, sub);
	for (int i = 0; i < 2; i++)
		for (struct delivery *d = lists[i]; d; d = d->next)
			if (d->qos && !d->store_id)
				put_delivery(p, s, d);
	for (uint32_t i = 0; i < s->qos2_in_count; i++)
		saved(p, store_qos2_in_put(p->st, s->client_id,
					   s->client_id_len, s->qos2_in[i]));
	s->persisted = true;
}

/* The rows go with the session row; the messages lose a reference. */
static void forget_session(struct session *s)
{
	struct delivery *lists[2] = { s->inflight, s->queue };

	for (int i = 0; i < 2; i++) {
		for (struct delivery *d = lists[i]; d; d = d->next) {
			if (d->store_id)
				msg_release(s->shard->broker, d->msg);
			d->store_id = 0;
		}
	}
	if (s->will)
		msg_release(s->shard->broker, s->will);
	s->persisted = false;
}

void persist_session(struct session *s)
{
	struct persist *p;

	if (!is_durable(s) && !s->persisted)
		return;
	p = recording(s->shard->broker);
	if (!p)
		return;
	if (!is_durable(s)) {
		if (s->persisted) {
			saved(p, store_session_del(p->st, s->client_id,
						   s->client_id_len));
			forget_session(s);
		}
		return;
	}
	if (!s->persisted) {
		put_whole_session(p, s);
		return;
	}
	put_session_row(p, s);
}

void persist_will_drop(struct session *s)
{
	if (s->will && s->will->store_id)
		msg_release(s->shard->broker, s->will);
}

void persist_session_end(struct session *s)
{
	struct persist *p = s->persisted ? recording(s->shard->broker) : NULL;

	if (!p)
		return;
	saved(p, store_session_del(p->st, s->client_id, s->client_id_len));
	forget_session(s);
}

void persist_sub(struct session *s, const struct session_sub *sub)
{
	struct persist *p = s->persisted ? recording(s->shard->broker) : NULL;

	if (p)
		put_sub(p, s, sub);
}

void persist_unsub(struct session *s, const char *filter, size_t len)
{
	struct persist *p = s->persisted ? recording(s->shard->broker) : NULL;

	if (p)
		saved(p, store_sub_del(p->st, s->client_id, s->client_id_len,
				       filter, len));
}

void persist_delivery_new(struct session *s, struct delivery *d)
{
	struct persist *p = s->persisted && d->qos ? recording(s->shard->broker) :
						      NULL;

	if (p)
		put_delivery(p, s, d);
}

void persist_delivery_state(struct session *s, const struct delivery *d)
{
	struct persist *p = d->store_id ? recording(s->shard->broker) : NULL;

	if (p)
		saved(p, store_delivery_update(p->st, d->store_id,
					       d->packet_id, d->state));
}

void persist_delivery_done(struct session *s, struct delivery *d)
{
	struct persist *p = s->shard->broker->persist;

	if (!d->store_id)
		return;
	if (p && !store_failed(p->st))
		store_delivery_del(p->st, d->store_id);
	msg_release(s->shard->broker, d->msg);
	d->store_id = 0;
}

void persist_retain(struct broker *b, struct msg *old, struct msg *msg)
{
	struct persist *p;

	/* The broker's own $SYS topics are made afresh by each run. */
	if (strncmp(msg->topic, "$SYS/", 5) == 0)
		return;
	p = recording(b);
	if (!p)
		return;
	if (old && old->store_id) {
		msg_release(b, old);
		if (msg->payload_len == 0)
			saved(p, store_retain_del(p->st, msg->topic,
						  msg->topic_len));
	}
	if (msg->payload_len && msg_hold(p, msg))
		saved(p, store_retain_put(p->st, msg->store_id));
}

void persist_qos2_in(struct session *s, uint16_t packet_id, bool add)
{
	struct persist *p = s->persisted ? recording(s->shard->broker) : NULL;

	if (!p)
		return;
	if (add)
		saved(p, store_qos2_in_put(p->st, s->client_id,
					   s->client_id_len, packet_id));
	else
		saved(p, store_qos2_in_del(p->st, s->client_id,
					   s->client_id_len, packet_id));
}

/* --------------------------------------------------------- output hold */

uint64_t persist_hold_seq(const struct broker *b)
{
	const struct persist *p = b->persist;
	uint64_t seq;

	if (!p || !p->strict || store_failed(p->st))
		return 0;
	seq = store_submitted(p->st);
	return seq > store_committed(p->st) ? seq : 0;
}

bool persist_is_committed(const struct broker *b, uint64_t seq)
{
	const struct persist *p = b->persist;

	return !p || store_committed(p->st) >= seq;
}

bool persist_is_strict(const struct broker *b)
{
	return b->persist && b->persist->strict;
}

bool persist_failed(const struct broker *b)
{
	return b->persist && store_failed(b->persist->st);
}

struct persist_mark persist_mark(const struct broker *b)
{
	const struct persist *p = b->persist;
	struct persist_mark m = { 0, 0 };

	if (p) {
		m.refused = refused_here;
		m.submitted = store_submitted(p->st);
	}
	return m;
}

bool persist_lost_since(const struct broker *b, const struct persist_mark *m)
{
	const struct persist *p = b->persist;
	uint64_t submitted;

	if (!p)
		return false;
	if (refused_here != m->refused)
		return true;
	/* Recorded, then lost with a batch that failed meanwhile. */
	submitted = store_submitted(p->st);
	return submitted != m->submitted && store_failed(p->st) &&
	       store_committed(p->st) < submitted;
}

/*
 * The writer committed (or failed): on every shard's wake-up.  On failure,
 * output waiting for a commit that will not come is dropped with its
 * connection: the clients resend what was not acknowledged, and nothing
 * is acknowledged that is not stored.
 */
void persist_poll(struct shard *sh)
{
	struct persist *p = sh->broker->persist;
	const char *failed;

	if (!p)
		return;
	failed = store_failed(p->st);
	if (failed) {
		if (!atomic_exchange(&p->failure_logged, true))
			log_at(LOGL_ERROR, "persistence failed: %s; serving from "
			       "memory, refusing new durable sessions and the "
			       "QoS 1/2 messages that would need storage",
			       failed);
		shard_drop_held(sh);
	}
	shard_release_held(sh);
}

/* On the writer thread: wake every shard, which then polls. */
static void notify_cb(void *arg)
{
	struct persist *p = arg;
	struct broker *b = p->broker;

	for (unsigned i = 0; i < b->shard_count; i++)
		ev_async_send(b->shards[i].loop, &b->shards[i].wake);
}

/* ------------------------------------------------------------- restore */

/* Messages by store id while loading: open addressing, power of two. */
struct msg_map {
	struct msg **slots;
	size_t cap, count;
};

static size_t map_index(const struct msg_map *mm, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (mm->cap - 1);
}

static int map_put(struct msg_map *mm, struct msg *m)
{
	size_t i;

	if ((mm->count + 1) * 2 > mm->cap) {
		struct msg_map bigger = { .cap = mm->cap ? mm->cap * 2 : 1024 };

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t j = 0; j < mm->cap; j++)
			if (mm->slots[j])
				map_put(&bigger, mm->slots[j]);
		free(mm->slots);
		*mm = bigger;
	}
	for (i = map_index(mm, m->store_id); mm->slots[i];
	     i = (i + 1) & (mm->cap - 1))
		;
	mm->slots[i] = m;
	mm->count++;
	return 0;
}

static struct msg *map_get(const struct msg_map *mm, uint64_t id)
{
	if (!mm->cap)
		return NULL;
	for (size_t i = map_index(mm, id); mm->slots[i];
	     i = (i + 1) & (mm->cap - 1))
		if (mm->slots[i]->store_id == id)
			return mm->slots[i];
	return NULL;
}

struct restore {
	struct persist *p;
	struct msg_map msgs;
	size_t sessions, subs, deliveries, retained;
	int64_t now_s;
};

static int restore_msg(void *arg, const struct store_msg *sm)
{
	struct restore *r = arg;
	struct msg *m = msg_new(sm->topic, sm->topic_len, sm->payload,
				sm->payload_len, sm->props, sm->props_len,
				sm->qos, sm->retain);

	if (!m)
		return -ENOMEM;
	m->store_id = sm->id;
	m->expiry_at = expiry_from_wall(r->p->broker, sm->expiry_at_ms);
	if (map_put(&r->msgs, m) < 0) {
		msg_unref(m);
		return -ENOMEM;
	}
	return 0;
}

static struct session *find_session(struct restore *r, const char *id,
				    size_t len)
{
	struct broker *b = r->p->broker;

	return session_find(&b->shards[shard_of_client(b, id, len)], id, len);
}

static int restore_session(void *arg, const struct store_session *ss)
{
	struct restore *r = arg;
	struct broker *b = r->p->broker;
	struct shard *sh = &b->shards[shard_of_client(b, ss->client_id,
						      ss->client_id_len)];
	struct session *s = session_new(sh, ss->client_id, ss->client_id_len);
	double now = shard_now(sh);
	int64_t left;

	if (!s)
		return -ENOMEM;
	s->version = ss->version;
	s->expiry_interval = ss->expiry_interval;
	s->persisted = true;
	if (ss->expiry_interval == UINT32_MAX) {
		s->expire_at = INFINITY;
	} else {
		left = ss->offline_since + ss->expiry_interval - r->now_s;
		s->expire_at = now + (double)(left > 0 ? left : 0);
	}
	if (ss->will_msg_id) {
		struct msg *will = map_get(&r->msgs, ss->will_msg_id);

		if (will) {
			left = ss->offline_since + ss->will_delay - r->now_s;
			s->will = msg_ref(will);
			s->will->store_refs++;
			s->will_at = now + (double)(left > 0 ? left : 0);
			s->will_expiry = ss->will_expiry;
		}
	}
	r->sessions++;
	return 0;
}

static int restore_sub(void *arg, const struct store_sub *ss)
{
	struct restore *r = arg;
	struct session *s = find_session(r, ss->client_id, ss->client_id_len);
	struct sub_opts opts = {
		.qos = ss->options & 3,
		.no_local = (ss->options >> 2) & 1,
		.retain_as_published = (ss->options >> 3) & 1,
		.retain_handling = (ss->options >> 4) & 3,
		.subscription_id = ss->sub_id,
	};
	bool replaced;

	if (!s)
		return 0;
	if (shard_sub_add(s->shard, ss->filter, ss->filter_len, s, &opts,
			  &replaced) < 0 ||
	    session_add_sub(s, ss->filter, ss->filter_len, &opts) < 0)
		return -ENOMEM;
	r->subs++;
	return 0;
}

static int restore_delivery(void *arg, const struct store_delivery *sd)
{
	struct restore *r = arg;
	struct session *s = find_session(r, sd->client_id, sd->client_id_len);
	struct msg *m = map_get(&r->msgs, sd->msg_id);

	if (!s || !m)
		return 0;
	if (session_restore_delivery(s, m, sd->id, sd->qos, sd->state,
				     sd->packet_id, sd->retain, sd->sub_ids,
				     sd->sub_id_count) < 0)
		return -ENOMEM;
	m->store_refs++;
	r->deliveries++;
	return 0;
}

static int restore_retained(void *arg, uint64_t msg_id)
{
	struct restore *r = arg;
	struct msg *m = map_get(&r->msgs, msg_id);

	if (!m)
		return 0;
	if (retain_set(r->p->broker->retain, m) < 0)
		return -ENOMEM;
	m->store_refs++;
	r->retained++;
	return 0;
}

static int restore_qos2_in(void *arg, const char *client_id, size_t len,
			   uint16_t packet_id)
{
	struct restore *r = arg;
	struct session *s = find_session(r, client_id, len);

	if (!s)
		return 0;
	return session_qos2_add(s, packet_id);
}

static const struct store_loader loader = {
	.msg = restore_msg,
	.session = restore_session,
	.sub = restore_sub,
	.delivery = restore_delivery,
	.retained = restore_retained,
	.qos2_in = restore_qos2_in,
};

static int restore(struct persist *p)
{
	struct restore r = { .p = p, .now_s = wall_ms() / 1000 };
	int rc = store_load(p->st, &loader, &r, r.now_s);

	/* The map's references go; what sessions and retain hold stays. */
	for (size_t i = 0; i < r.msgs.cap; i++) {
		struct msg *m = r.msgs.slots[i];

		if (!m)
			continue;
		if (!m->store_refs)
			m->store_id = 0;
		msg_unref(m);
	}
	free(r.msgs.slots);
	if (rc) {
		log_at(LOGL_ERROR, "%s: cannot restore the stored state: %s",
		       p->path, rc < 0 ? strerror(-rc) : "load failed");
		return -1;
	}
	log_at(LOGL_NOTICE,
	       "restored from %s: %zu sessions, %zu subscriptions, "
	       "%zu queued or in-flight messages, %zu retained messages",
	       p->path, r.sessions, r.subs, r.deliveries, r.retained);
	return 0;
}

/* ------------------------------------------------------ open and close */

int persist_open(struct broker *b, const struct config *cfg)
{
	struct store_options opts = { 0 };
	struct persist *p;
	char err[512];

	if (!cfg->persistence)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p) {
		log_at(LOGL_ERROR, "out of memory at start-up");
		return -1;
	}
	p->broker = b;
	if (pthread_mutex_init(&p->msg_lock, NULL) != 0) {
		free(p);
		log_at(LOGL_ERROR, "out of memory at start-up");
		return -1;
	}
	if (config_persistence_path(cfg, p->path, sizeof(p->path)) < 0) {
		log_at(LOGL_ERROR, "persistence_file: path too long");
		goto fail;
	}
	p->strict = cfg->durability == CONFIG_DURABILITY_STRICT;
	opts.path = p->path;
	opts.strict = p->strict;
	opts.batch_interval_ms = cfg->autosave_interval * 1000u;
	opts.notify = notify_cb;
	opts.notify_arg = p;
	if (store_open(&p->st, &opts, err, sizeof(err)) < 0) {
		log_at(LOGL_ERROR, "persistence: %s", err);
		goto fail;
	}
	atomic_init(&p->next_id, store_max_id(p->st));
	if (restore(p) < 0)
		goto fail_store;
	if (store_start(p->st) < 0) {
		log_at(LOGL_ERROR, "persistence: cannot start the writer thread");
		goto fail_store;
	}
	b->persist = p;
	if (p->strict)
		log_at(LOGL_NOTICE, "persistence: %s, durability strict "
		       "(acknowledged after commit)", p->path);
	else
		log_at(LOGL_WARNING, "persistence: %s, durability batch: a "
		       "crash loses up to %u s of changes", p->path,
		       cfg->autosave_interval);
	return 0;

fail_store:
	store_close(p->st);
fail:
	pthread_mutex_destroy(&p->msg_lock);
	free(p);
	return -1;
}

void persist_close(struct broker *b)
{
	struct persist *p = b->persist;

	if (!p)
		return;
	b->persist = NULL;
	store_close(p->st);
	pthread_mutex_destroy(&p->msg_lock);
	free(p);
}

int persist_check_db(const char *path)
{
	char err[512];

	if (store_check(path, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		return EXIT_FAILURE;
	}
	printf("%s: database OK\n", path);
	return EXIT_SUCCESS;
}
