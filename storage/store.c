/*
 * The store object: open and close, and the store_*_put/del calls.
 *
 * Those calls run on the broker's threads, so they never touch SQLite:
 * each copies its arguments into one allocation (struct op), appends it
 * to the queue under st->lock and gives it the next sequence number.  The
 * writer thread (writer.c) takes the whole queue at once, which is what
 * makes commits group commits.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "storage/store_int.h"

/* ---------------------------------------------------------------- errors */

int store_sqlite_err(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int sys = db ? sqlite3_system_errno(db) : 0;
	const char *msg = db ? sqlite3_errmsg(db) : "out of memory";

	/* "unable to open database file" alone does not say why. */
	if (sys)
		snprintf(err, errlen, "%s: %s (%s)", path, msg, strerror(sys));
	else
		snprintf(err, errlen, "%s: %s", path, msg);
	return -EIO;
}

void store_set_failed(struct store *st, const char *fmt, ...)
{
	va_list ap;

	/* Only the writer (or the opener before it) gets here. */
	if (atomic_load(&st->failed))
		return;
	va_start(ap, fmt);
	vsnprintf(st->failed_msg, sizeof(st->failed_msg), fmt, ap);
	va_end(ap);
	atomic_store_explicit(&st->failed, st->failed_msg,
			      memory_order_release);
}

const char *store_failed(const struct store *st)
{
	return atomic_load_explicit(&((struct store *)st)->failed,
				    memory_order_acquire);
}

uint64_t store_submitted(const struct store *st)
{
	return atomic_load(&((struct store *)st)->submitted);
}

uint64_t store_committed(const struct store *st)
{
	return atomic_load(&((struct store *)st)->committed);
}

uint64_t store_max_id(const struct store *st)
{
	return st->max_id;
}

/* ------------------------------------------------------------- open/close */

static int max_id(struct store *st, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT max(coalesce((SELECT max(id) FROM msg), 0),"
		" coalesce((SELECT max(id) FROM delivery), 0))";
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_err(st->db, st->path, err, errlen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		st->max_id = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return store_sqlite_err(st->db, st->path, err, errlen);
	return 0;
}

/* WAL, and how hard each commit syncs. */
static int set_pragmas(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	const char *mode;
	bool wal;
	int rc;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s,
				NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_err(st->db, st->path, err, errlen);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(s);
		return store_sqlite_err(st->db, st->path, err, errlen);
	}
	mode = (const char *)sqlite3_column_text(s, 0);
	wal = mode && !strcmp(mode, "wal");
	if (!wal)
		snprintf(err, errlen,
			 "%s: cannot use write-ahead logging (journal mode "
			 "stays %s)",
			 st->path, mode ? mode : "unknown");
	sqlite3_finalize(s);
	if (!wal)
		return -EIO;
	if (sqlite3_exec(st->db,
			 st->strict ? "PRAGMA synchronous = FULL" :
				      "PRAGMA synchronous = NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlite_err(st->db, st->path, err, errlen);
	return 0;
}

static int init_sync(struct store *st)
{
	pthread_condattr_t ca;
	int rc;

	rc = pthread_mutex_init(&st->lock, NULL);
	if (rc)
		return -rc;
	rc = pthread_condattr_init(&ca);
	if (rc)
		goto out_mutex;
	/* Batch deadlines must not move with the wall clock. */
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(&st->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		goto out_mutex;
	return 0;

out_mutex:
	pthread_mutex_destroy(&st->lock);
	return -rc;
}

/*
 * One cicada per database: a second broker started on the same file by
 * mistake is refused at once instead of interleaving its sessions with
 * ours.  flock() on a descriptor of our own, held until store_close(),
 * does not touch SQLite's fcntl() locks; closing it only after SQLite has
 * closed keeps POSIX from dropping those.  When the file cannot be opened
 * SQLite's own open says why.
 */
static int take_lock(struct store *st, char *err, size_t errlen)
{
	st->lock_fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (st->lock_fd < 0)
		return 0;
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		snprintf(err, errlen,
			 "%s: the database is in use by another process "
			 "(another cicada?)", st->path);
		return -EBUSY;
	}
	snprintf(err, errlen, "%s: cannot lock: %s", st->path,
		 strerror(errno));
	return -EIO;
}

int store_open(struct store **out, const struct store_options *opts,
	       char *err, size_t errlen)
{
	struct store *st;
	int64_t version;
	int rc;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		goto out_nomem;
	st->path = strdup(opts->path);
	if (!st->path) {
		free(st);
		goto out_nomem;
	}
	st->lock_fd = -1;
	st->strict = opts->strict;
	st->batch_interval_ms = opts->batch_interval_ms;
	st->notify = opts->notify;
	st->notify_arg = opts->notify_arg;
	rc = init_sync(st);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", st->path, strerror(-rc));
		free(st->path);
		free(st);
		return rc;
	}

	rc = take_lock(st, err, errlen);
	if (rc < 0)
		goto out_close;
	/* One thread at a time uses the connection: no SQLite mutexes. */
	rc = sqlite3_open_v2(st->path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = st->db ? store_sqlite_err(st->db, st->path, err, errlen) :
			      -ENOMEM;
		goto out_close;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/* Before anything writes: a newer cicada's file stays untouched. */
	rc = store_schema_read(st->db, st->path, &version, err, errlen);
	if (rc == 0)
		rc = store_schema_refuse_newer(st->path, version, err, errlen);
	if (rc < 0)
		goto out_close;
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		snprintf(err, errlen, "%s: the file is read-only", st->path);
		rc = -EIO;
		goto out_close;
	}
	rc = set_pragmas(st, err, errlen);
	if (rc == 0)
		rc = store_schema_migrate(st->db, st->path, version, err,
					  errlen);
	if (rc == 0)
		rc = max_id(st, err, errlen);
	if (rc == 0 && store_writer_prepare(st) != SQLITE_OK)
		rc = store_sqlite_err(st->db, st->path, err, errlen);
	if (rc < 0)
		goto out_close;
	*out = st;
	return 0;

out_close:
	store_writer_finalize(st);
	sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->wake);
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
	return rc;

out_nomem:
	snprintf(err, errlen, "%s: %s", opts->path, strerror(ENOMEM));
	return -ENOMEM;
}

int store_start(struct store *st)
{
	sigset_t all, old;
	int rc;

	if (st->started)
		return -EALREADY;
	/* The broker's signals go to the broker's threads, never to ours. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&st->thread, NULL, store_writer_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	st->started = true;
	return 0;
}

void store_ops_free(struct op *op)
{
	struct op *next;

	for (; op; op = next) {
		next = op->next;
		free(op);
	}
}

void store_close(struct store *st)
{
	struct op *batch;
	uint64_t seq;

	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	if (st->started) {
		pthread_join(st->thread, NULL);
	} else {
		/* Never started: what was recorded still gets committed. */
		batch = st->head;
		seq = atomic_load(&st->submitted);
		st->head = st->tail = NULL;
		if (batch)
			store_writer_batch(st, batch, seq);
	}
	store_ops_free(st->head);
	store_writer_finalize(st);
	sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->wake);
	pthread_mutex_destroy(&st->lock);
	free(st->gc);
	free(st->pending);
	free(st->path);
	free(st);
}

/* ------------------------------------------------------------------ queue */

/*
 * A new op of kind with room for blobs of len[0..2] bytes, copied from
 * src[i] unless src[i] is NULL (the caller fills that one).  NULL when
 * out of memory.
 */
static struct op *op_new(enum op_kind kind, const size_t len[3],
			 const void *const src[3])
{
	size_t total = 0;
	struct op *op;
	uint8_t *p;
	int i;

	for (i = 0; i < 3; i++) {
		if (len[i] > SIZE_MAX - sizeof(*op) - total)
			return NULL;
		total += len[i];
	}
	op = malloc(sizeof(*op) + total);
	if (!op)
		return NULL;
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	p = op->data;
	for (i = 0; i < 3; i++) {
		op->blob[i].p = p;
		op->blob[i].len = len[i];
		if (src[i] && len[i])
			memcpy(p, src[i], len[i]);
		p += len[i];
	}
	return op;
}

/* ------------------------------------------------------ pending puts */

/* A put's key: message and delivery ids may coincide. */
static uint64_t pending_key(const struct op *op)
{
	return op->kind == OP_MSG_PUT ? op->u.msg.id * 2 + 1 :
					op->u.delivery.id * 2;
}

static size_t pending_slot(const struct store *st, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) &
	       (st->pending_cap - 1);
}

void store_pending_reset(struct store *st)
{
	if (st->pending_count)
		memset(st->pending, 0, st->pending_cap * sizeof(*st->pending));
	st->pending_count = 0;
}

/* The queued put of key, or NULL.  Under st->lock. */
static struct op *pending_find(const struct store *st, uint64_t key)
{
	if (!st->pending_count)
		return NULL;
	for (size_t i = pending_slot(st, key); st->pending[i];
	     i = (i + 1) & (st->pending_cap - 1))
		if (pending_key(st->pending[i]) == key)
			return st->pending[i];
	return NULL;
}

static void pending_insert(struct store *st, struct op *op)
{
	size_t i;

	for (i = pending_slot(st, pending_key(op)); st->pending[i];
	     i = (i + 1) & (st->pending_cap - 1))
		;
	st->pending[i] = op;
	st->pending_count++;
}

/*
 * Index a queued put, under st->lock.  Out of memory it stays unindexed:
 * it is then written and deleted like any other, only slower.
 */
static void pending_add(struct store *st, struct op *op)
{
	if ((st->pending_count + 1) * 2 > st->pending_cap) {
		size_t cap = st->pending_cap ? st->pending_cap * 2 : 1024;
		struct op **old = st->pending, **grown;
		size_t old_cap = st->pending_cap;

		grown = calloc(cap, sizeof(*grown));
		if (!grown)
			return;
		st->pending = grown;
		st->pending_cap = cap;
		st->pending_count = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i])
				pending_insert(st, old[i]);
		free(old);
	}
	pending_insert(st, op);
}

/*
 * Undo the queued put of key if the writer has not taken it: true when
 * it will not be written.  Under st->lock.
 */
static bool pending_cancel(struct store *st, uint64_t key)
{
	struct op *op = pending_find(st, key);

	if (!op || op->cancelled)
		return false;
	op->cancelled = true;
	return true;
}

/*
 * This thread's local groups (store_local_group_begin()): how deep it is
 * in them, and how many of those st->group_depth counts.  A local group
 * counts from its first change, so one that records nothing (a QoS 0
 * publish to clean sessions: nearly every publish) takes no lock.
 */
static _Thread_local struct {
	struct store *st;
	unsigned depth, counted;
} local;

/*
 * Count this thread's local groups that count nothing yet.  Under
 * st->lock.  From the first change in them on, or from a plain group
 * begun inside them: another thread may close that one (the last shard
 * to confirm a QoS 2 message), and what this thread records after must
 * still commit with what that thread recorded.
 */
static void count_local_groups(struct store *st)
{
	if (local.st == st && local.counted < local.depth) {
		st->group_depth += local.depth - local.counted;
		local.counted = local.depth;
	}
}

/* Queue op (taking it) and wake the writer if the queue was empty. */
static int op_submit(struct store *st, struct op *op)
{
	bool was_empty;

	if (!op)
		return -ENOMEM;
	pthread_mutex_lock(&st->lock);
	if (atomic_load(&st->failed)) {
		pthread_mutex_unlock(&st->lock);
		free(op);
		return -EIO;
	}
	if (op->kind == OP_DELIVERY_DEL &&
	    pending_cancel(st, op->u.delivery.id * 2)) {
		/* Put and deleted before the writer saw either. */
		pthread_mutex_unlock(&st->lock);
		free(op);
		return 0;
	}
	if (op->kind == OP_MSG_PUT || op->kind == OP_DELIVERY_PUT)
		pending_add(st, op);
	/* Under the lock with the op: the writer never sees one without it. */
	count_local_groups(st);
	was_empty = !st->head;
	if (st->tail)
		st->tail->next = op;
	else
		st->head = op;
	st->tail = op;
	atomic_store(&st->submitted, atomic_load(&st->submitted) + 1);
	/* A non-empty queue already has the writer's attention. */
	if (was_empty)
		pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	return 0;
}


void store_group_begin(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	st->group_depth++;
	count_local_groups(st);
	pthread_mutex_unlock(&st->lock);
}

/* Close n groups; the writer may take the queue once none is open. */
static void groups_close(struct store *st, unsigned n)
{
	pthread_mutex_lock(&st->lock);
	st->group_depth -= n;
	if (st->group_depth == 0 && st->head)
		pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
}

void store_group_end(struct store *st)
{
	groups_close(st, 1);
}

void store_local_group_begin(struct store *st)
{
	assert(local.depth == 0 || local.st == st);
	local.st = st;
	local.depth++;
}

void store_local_group_end(struct store *st)
{
	assert(local.st == st && local.depth > 0);
	local.depth--;
	if (local.counted <= local.depth)
		return; /* it recorded nothing: nothing to release */
	groups_close(st, local.counted - local.depth);
	local.counted = local.depth;
}

/* An op with no bytes of its own, or NULL (out of memory, or failed). */
static struct op *op_fixed(const struct store *st, enum op_kind kind)
{
	static const size_t len[3];
	static const void *const src[3];

	return store_failed(st) ? NULL : op_new(kind, len, src);
}

/* An op holding one copied byte string (a client id, a topic). */
static struct op *op_one(const struct store *st, enum op_kind kind,
			 const void *p, size_t len)
{
	const size_t lens[3] = { len, 0, 0 };
	const void *const src[3] = { p, NULL, NULL };

	return store_failed(st) ? NULL : op_new(kind, lens, src);
}

/* op_submit() of those: -EIO rather than -ENOMEM once failed. */
static int fixed_submit(struct store *st, struct op *op)
{
	return !op && store_failed(st) ? -EIO : op_submit(st, op);
}

int store_msg_put(struct store *st, const struct store_msg *m)
{
	const size_t len[3] = { m->topic_len, m->payload_len, m->props_len };
	const void *const src[3] = { m->topic, m->payload, m->props };
	struct op *op;

	if (store_failed(st))
		return -EIO;
	op = op_new(OP_MSG_PUT, len, src);
	if (op) {
		op->u.msg.id = m->id;
		op->u.msg.expiry_at_ms = m->expiry_at_ms;
		op->u.msg.qos = m->qos;
		op->u.msg.retain = m->retain;
	}
	return op_submit(st, op);
}

int store_session_put(struct store *st, const struct store_session *s)
{
	const size_t len[3] = { s->client_id_len, 0, 0 };
	const void *const src[3] = { s->client_id, NULL, NULL };
	struct op *op;

	if (store_failed(st))
		return -EIO;
	op = op_new(OP_SESSION_PUT, len, src);
	if (op) {
		op->u.session.version = s->version;
		op->u.session.expiry_interval = s->expiry_interval;
		op->u.session.offline_since = s->offline_since;
		op->u.session.will_msg_id = s->will_msg_id;
		op->u.session.will_delay = s->will_delay;
		op->u.session.will_expiry = s->will_expiry;
	}
	return op_submit(st, op);
}

int store_session_del(struct store *st, const char *client_id, size_t len)
{
	return fixed_submit(st, op_one(st, OP_SESSION_DEL, client_id, len));
}

int store_sub_put(struct store *st, const struct store_sub *sub)
{
	const size_t len[3] = { sub->client_id_len, sub->filter_len, 0 };
	const void *const src[3] = { sub->client_id, sub->filter, NULL };
	struct op *op;

	if (store_failed(st))
		return -EIO;
	op = op_new(OP_SUB_PUT, len, src);
	if (op) {
		op->u.sub.options = sub->options;
		op->u.sub.sub_id = sub->sub_id;
	}
	return op_submit(st, op);
}

int store_sub_del(struct store *st, const char *client_id, size_t id_len,
		  const char *filter, size_t filter_len)
{
	const size_t len[3] = { id_len, filter_len, 0 };
	const void *const src[3] = { client_id, filter, NULL };

	if (store_failed(st))
		return -EIO;
	return op_submit(st, op_new(OP_SUB_DEL, len, src));
}

int store_delivery_put(struct store *st, const struct store_delivery *d)
{
	const size_t len[3] = { d->client_id_len,
				(size_t)d->sub_id_count * 4, 0 };
	const void *const src[3] = { d->client_id, NULL, NULL };
	struct op *op;
	uint8_t *p;
	unsigned i;

	if (store_failed(st))
		return -EIO;
	op = op_new(OP_DELIVERY_PUT, len, src);
	if (op) {
		op->u.delivery.id = d->id;
		op->u.delivery.msg_id = d->msg_id;
		op->u.delivery.packet_id = d->packet_id;
		op->u.delivery.qos = d->qos;
		op->u.delivery.state = d->state;
		op->u.delivery.retain = d->retain;
		/* Little-endian whatever the host, so the file moves. */
		p = (uint8_t *)op->blob[1].p;
		for (i = 0; i < d->sub_id_count; i++) {
			p[4 * i] = (uint8_t)d->sub_ids[i];
			p[4 * i + 1] = (uint8_t)(d->sub_ids[i] >> 8);
			p[4 * i + 2] = (uint8_t)(d->sub_ids[i] >> 16);
			p[4 * i + 3] = (uint8_t)(d->sub_ids[i] >> 24);
		}
	}
	return op_submit(st, op);
}

int store_msg_drop(struct store *st, uint64_t msg_id)
{
	struct op *op;
	bool undone;

	pthread_mutex_lock(&st->lock);
	undone = pending_cancel(st, msg_id * 2 + 1);
	pthread_mutex_unlock(&st->lock);
	if (undone)
		return 0;
	/*
	 * Taken by the writer already, maybe in the very batch that took a
	 * put of its last reference just undone: have the next batch
	 * delete it if nothing refers to it.
	 */
	op = op_fixed(st, OP_MSG_DROP);
	if (op)
		op->u.msg.id = msg_id;
	return fixed_submit(st, op);
}

int store_delivery_update(struct store *st, uint64_t delivery_id,
			  uint16_t packet_id, uint8_t state)
{
	struct op *op = op_fixed(st, OP_DELIVERY_UPDATE);

	if (op) {
		op->u.delivery.id = delivery_id;
		op->u.delivery.packet_id = packet_id;
		op->u.delivery.state = state;
	}
	return fixed_submit(st, op);
}

int store_delivery_del(struct store *st, uint64_t delivery_id)
{
	struct op *op = op_fixed(st, OP_DELIVERY_DEL);

	if (op)
		op->u.delivery.id = delivery_id;
	return fixed_submit(st, op);
}

int store_retain_put(struct store *st, uint64_t msg_id)
{
	struct op *op = op_fixed(st, OP_RETAIN_PUT);

	if (op)
		op->u.retain_msg_id = msg_id;
	return fixed_submit(st, op);
}

int store_retain_del(struct store *st, const char *topic, size_t len)
{
	return fixed_submit(st, op_one(st, OP_RETAIN_DEL, topic, len));
}

static int qos2_op(struct store *st, enum op_kind kind,
		   const char *client_id, size_t len, uint16_t packet_id)
{
	struct op *op = op_one(st, kind, client_id, len);

	if (op)
		op->u.packet_id = packet_id;
	return fixed_submit(st, op);
}

int store_qos2_in_put(struct store *st, const char *client_id, size_t len,
		      uint16_t packet_id)
{
	return qos2_op(st, OP_QOS2_PUT, client_id, len, packet_id);
}

int store_qos2_in_del(struct store *st, const char *client_id, size_t len,
		      uint16_t packet_id)
{
	return qos2_op(st, OP_QOS2_DEL, client_id, len, packet_id);
}
