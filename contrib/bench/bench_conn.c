/*
 * bench_conn.c: the workers of cicada-bench.  Each worker thread runs one
 * libev loop over its share of the connections: a non-blocking connect
 * (from a loopback source address when asked), CONNECT and SUBSCRIBE,
 * then publishers that write as many messages as their ack window and
 * backlog bound allow, and subscribers that check every sequence, time
 * every delivery and acknowledge it.
 *
 * Output is appended to a per-connection buffer and written once per loop
 * turn, in an ev_prepare (or at once when it grows large); input is read
 * into one large per-worker buffer and framed and decoded in place with
 * mqtt_frame_peek() and mqtt_decode(), only a trailing partial packet
 * being copied aside.  A PUBLISH header is encoded once per publisher and
 * acks once per worker, then patched with the packet id: nothing is
 * allocated or encoded from scratch per message.
 *
 * With --durable the subscribers' sessions outlive their connections, and
 * at the end each is removed (see enum cleanup_stage) before the worker
 * leaves, within CLEANUP_SECONDS.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contrib/bench/bench.h"

#define READ_CHUNK (256u * 1024)
/* A publisher stops adding messages while this much output is pending. */
#define OUT_HIGH (128u * 1024)
/* Write at once rather than at the end of the loop turn past this. */
#define OUT_FLUSH_NOW (256u * 1024)
#define TICK_SECONDS 0.1
#define PACE_SECONDS 0.001
/* QoS 0: a blocked publisher whose subscribers get nothing for this many
 * ticks writes its backlog off as dropped by the broker. */
#define WRITE_OFF_TICKS 3
#define ERROR_LINES 20

enum { ACK_PUBACK, ACK_PUBREC, ACK_PUBREL, ACK_PUBCOMP };

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "cicada-bench: out of memory\n");
		exit(3);
	}
	return p;
}

void run_error(struct run *run, const struct conn *c, const char *fmt, ...)
{
	uint32_t n = atomic_fetch_add(&run->logged, 1);
	char msg[256];
	va_list ap;

	if (n > ERROR_LINES)
		return;
	if (n == ERROR_LINES) {
		fprintf(stderr, "cicada-bench: further errors not shown\n");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c)
		fprintf(stderr, "cicada-bench: connection %u (%s %u): %s\n",
			c->id,
			c->role == ROLE_PUB ? "publisher" :
			c->role == ROLE_SUB ? "subscriber" : "idle",
			c->role == ROLE_PUB ? c->pub->id :
			c->role == ROLE_SUB ? (uint32_t)(c->sub - run->subs) :
			c->id, msg);
	else
		fprintf(stderr, "cicada-bench: %s\n", msg);
}

/* ------------------------------------------------------------ buffers */

/* Room for n more bytes at data + len. */
static void buf_reserve(struct buf *b, size_t n)
{
	size_t cap;

	if (b->cap - b->len >= n)
		return;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return;
	}
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

static size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

/* ---------------------------------------------------------- connections */

static void conn_mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->next_dirty = c->w->dirty;
	c->w->dirty = c;
}

static uint8_t *conn_append(struct conn *c, size_t n)
{
	uint8_t *p;

	buf_reserve(&c->out, n);
	p = c->out.data + c->out.len;
	c->out.len += n;
	conn_mark_dirty(c);
	return p;
}

static int conn_send_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	uint8_t version = c->w->run->o.version;
	size_t n = mqtt_encoded_size(pkt, version);
	int rc;

	if (!n)
		return MQTT_E_ENCODE;
	buf_reserve(&c->out, n);
	rc = mqtt_encode(pkt, version, c->out.data + c->out.len,
			 c->out.cap - c->out.len);
	if (rc < 0)
		return rc;
	c->out.len += (size_t)rc;
	conn_mark_dirty(c);
	return 0;
}

static void conn_ack(struct conn *c, int kind, uint16_t packet_id)
{
	struct worker *w = c->w;
	uint8_t *p = conn_append(c, w->ack_len);

	memcpy(p, w->ack[kind], w->ack_len);
	mqtt_publish_set_packet_id(p, w->ack_pid_off, packet_id);
}

static void worker_open_more(struct worker *w);
static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents);
static void cleanup_lost(struct conn *c, const char *why);

static void conn_close(struct conn *c)
{
	struct ev_loop *loop = c->w->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	c->writing = false;
	c->shut_wr = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CS_CLOSED;
	c->out.off = c->out.len = 0;
	c->in.len = 0;
}

/*
 * The connection is gone or unusable.  Before it was ready that is a
 * setup failure; after, an error of the run (unless the run is over).
 */
static void conn_lost(struct conn *c, const char *why)
{
	struct worker *w = c->w;
	struct run *run = w->run;
	uint8_t state = c->state;

	if (state == CS_CLOSED)
		return;
	conn_close(c);
	if (c->cleanup != CU_NONE) {
		cleanup_lost(c, why);
		return;
	}
	if (atomic_load(&run->phase) == PH_STOP)
		return;
	run_error(run, c, "%s", why);
	if (state != CS_READY) {
		atomic_fetch_add(&run->failed, 1);
		w->opening--;
		worker_open_more(w);
	} else {
		atomic_fetch_add(&run->closed, 1);
	}
}

static void conn_protocol_error(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_protocol_error(struct conn *c, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&c->w->run->errors, 1);
	conn_lost(c, msg);
}

/* Write what is pending; on EAGAIN wait for the socket to drain. */
static void conn_flush(struct conn *c)
{
	struct buf *b = &c->out;

	while (b->off < b->len) {
		ssize_t n = send(c->fd, b->data + b->off, b->len - b->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->writing) {
					ev_io_start(c->w->loop, &c->wio);
					c->writing = true;
				}
				return;
			}
			conn_lost(c, strerror(errno));
			return;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	c->last_tx = ev_now(c->w->loop);
	if (c->writing) {
		ev_io_stop(c->w->loop, &c->wio);
		c->writing = false;
	}
	if (c->shut_wr) {
		/* DISCONNECT is out: the broker closes, we read until then. */
		c->shut_wr = false;
		shutdown(c->fd, SHUT_WR);
	}
}

static void conn_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, wio);

	(void)loop;
	(void)revents;
	conn_flush(c);
}

static void conn_ready(struct conn *c)
{
	struct worker *w = c->w;
	struct run *run = w->run;
	uint64_t now = mono_ns();
	uint64_t last = atomic_load(&run->last_ready_ns);

	c->state = CS_READY;
	while (now > last &&
	       !atomic_compare_exchange_weak(&run->last_ready_ns, &last, now))
		;
	atomic_fetch_add(&run->ready, 1);
	w->opening--;
	worker_open_more(w);
}

static void conn_client_id(const struct conn *c, char *buf, size_t len)
{
	const struct run *run = c->w->run;
	char role = c->role == ROLE_PUB ? 'p' : c->role == ROLE_SUB ? 's' : 'c';
	uint32_t idx = c->role == ROLE_PUB ? c->pub->id :
		       c->role == ROLE_SUB ? (uint32_t)(c->sub - run->subs) :
		       c->id;

	snprintf(buf, len, "cb%s-%c%u", run->runid, role, idx);
}

/*
 * Connect c and queue its CONNECT with clean session (clean start) clean
 * and, in 5.0, Session Expiry Interval expiry unless 0.  Returns NULL, or
 * why it failed (c is then left for conn_lost()).
 */
static const char *conn_connect(struct conn *c, bool clean, uint32_t expiry)
{
	struct worker *w = c->w;
	struct run *run = w->run;
	struct mqtt_packet pkt;
	struct mqtt_connect *cn = &pkt.u.connect;
	char client_id[32];
	int one = 1, fd;

	c->state = CS_CONNECTING;
	fd = socket(run->dst.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	if (fd < 0)
		return strerror(errno);
	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (run->nsrc) {
		const struct sockaddr_in *src = &run->src[c->id % run->nsrc];

		/* The port is chosen at connect() from the whole 4-tuple,
		 * so each source address has its own ephemeral range. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) < 0)
			return strerror(errno);
	}
	if (connect(fd, (const struct sockaddr *)&run->dst, run->dst_len) < 0 &&
	    errno != EINPROGRESS)
		return strerror(errno);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	cn->protocol_level = run->o.version;
	cn->clean_start = clean;
	cn->keep_alive = run->o.keepalive;
	if (expiry && run->o.version == MQTT_V5) {
		cn->props.session_expiry_interval = expiry;
		mqtt_props_set(&cn->props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	}
	conn_client_id(c, client_id, sizeof(client_id));
	cn->client_id.data = (const uint8_t *)client_id;
	cn->client_id.len = strlen(client_id);
	if (conn_send_packet(c, &pkt) < 0)
		return "cannot encode CONNECT";
	ev_io_start(w->loop, &c->rio);
	/* Writable once connected: the CONNECT goes out then. */
	ev_io_start(w->loop, &c->wio);
	c->writing = true;
	return NULL;
}

static void conn_open(struct conn *c)
{
	bool durable = c->w->run->o.durable && c->role == ROLE_SUB;
	const char *why;

	c->w->opening++;
	why = conn_connect(c, !durable, durable ? 3600 : 0);
	if (why)
		conn_lost(c, why);
}

/* Open connections up to the concurrency limit; a connection that fails
 * at once calls back in here, which the flag turns into the next turn of
 * this loop rather than a recursion as deep as the connection count. */
static void worker_open_more(struct worker *w)
{
	struct run *run = w->run;

	if (w->in_open_more)
		return;
	w->in_open_more = true;
	while (w->opening < run->o.concurrency && w->next_open < w->nconns &&
	       atomic_load(&run->phase) == PH_SETUP)
		conn_open(w->conns[w->next_open++]);
	w->in_open_more = false;
}

/* ----------------------------------------------------------- publishers */

int pub_prepare(struct run *run, struct pub *p)
{
	struct mqtt_publish m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.qos = run->o.qos;
	m.packet_id = 1;
	m.topic.data = (const uint8_t *)p->topic;
	m.topic.len = strlen(p->topic);
	m.payload.len = run->o.size;
	rc = mqtt_encode_publish_header(&m, run->o.version, p->hdr,
					sizeof(p->hdr), &p->pid_off);
	if (rc < 0)
		return rc;
	p->hdr_len = (size_t)rc;
	if (run->o.qos) {
		uint32_t space = run->o.window * 2;

		if (space < 16)
			space = 16;
		if (space > 65535)
			space = 65535;
		p->pid_space = (uint16_t)space;
		p->next_pid = 1;
		p->pid_state = calloc(space + 1u, 1);
		p->pid_ts = calloc(space + 1u, sizeof(*p->pid_ts));
		if (!p->pid_state || !p->pid_ts)
			return MQTT_E_NO_SPACE;
	}
	p->window = run->o.window;
	return 0;
}

static uint16_t pub_take_pid(struct pub *p)
{
	for (;;) {
		uint16_t pid = p->next_pid;

		p->next_pid = pid >= p->pid_space ? 1 : (uint16_t)(pid + 1);
		if (p->pid_state[pid] == PID_FREE) {
			p->pid_state[pid] = PID_WAIT_ACK;
			p->inflight++;
			return pid;
		}
	}
}

/* Deliveries published but not yet seen by the subscribers. */
static uint64_t pub_owed(const struct pub *p, uint64_t progress)
{
	uint64_t due = p->seq * p->fanout;

	return due > progress ? due - progress : 0;
}

static void pub_unblock(struct pub *p)
{
	p->blocked = false;
	atomic_store(&p->sh->paused, 0);
}

/*
 * Whether the publisher must wait for its subscribers; *owed gets its
 * backlog in deliveries.  It blocks at the backlog bound and resumes at
 * half of it, so that fills come in batches.
 */
static bool pub_backlog_full(struct pub *p, uint64_t *owed)
{
	struct run *run = p->c->w->run;
	uint64_t cap = (uint64_t)run->o.backlog * p->fanout;
	uint64_t prog = atomic_load(&p->sh->progress);

	*owed = pub_owed(p, prog);
	if (!p->blocked && *owed < cap)
		return false;
	if (p->blocked && *owed <= cap / 2) {
		pub_unblock(p);
		return false;
	}
	if (!p->blocked) {
		p->blocked = true;
		p->blocked_progress = prog;
		p->blocked_ticks = 0;
	}
	if (run->o.rate > 0 || atomic_load(&p->sh->paused))
		return true; /* the pace timer or a subscriber wakes us */
	/* Ask subscribers on other threads to wake us, then look again in
	 * case they made progress before they could see the flag. */
	atomic_store(&p->sh->paused, 1);
	prog = atomic_load(&p->sh->progress);
	*owed = pub_owed(p, prog);
	if (*owed > cap / 2)
		return true;
	pub_unblock(p);
	return false;
}

/* Publish up to max messages, as the window, backlog and buffer allow. */
static void pub_fill(struct pub *p, uint64_t max)
{
	struct conn *c = p->c;
	struct run *run = c->w->run;
	size_t pending = buf_pending(&c->out);
	size_t msg_len = p->hdr_len + run->o.size;
	uint64_t owed, n, room, now;
	uint8_t *dst;

	if (c->state != CS_READY || pending >= OUT_HIGH || !max)
		return;
	n = (OUT_HIGH - pending) / msg_len + 1;
	if (n > max)
		n = max;
	if (run->o.qos) {
		room = p->window > p->inflight ? p->window - p->inflight : 0;
		if (n > room)
			n = room;
		if (!n)
			return;
	}
	if (pub_backlog_full(p, &owed))
		return;
	room = ((uint64_t)run->o.backlog * p->fanout - owed + p->fanout - 1) /
	       p->fanout;
	if (n > room)
		n = room;
	if (!n)
		return;
	dst = conn_append(c, (size_t)n * msg_len);
	now = mono_ns();
	for (uint64_t i = 0; i < n; i++, dst += msg_len) {
		uint8_t *pl = dst + p->hdr_len;

		memcpy(dst, p->hdr, p->hdr_len);
		if (run->o.qos) {
			uint16_t pid = pub_take_pid(p);

			p->pid_ts[pid] = now;
			mqtt_publish_set_packet_id(dst, p->pid_off, pid);
		}
		memcpy(pl + PAYLOAD_TS_OFF, &now, 8);
		memcpy(pl + PAYLOAD_PUB_OFF, &p->id, 4);
		memcpy(pl + PAYLOAD_SEQ_OFF, &p->seq, 8);
		memcpy(pl + PAYLOAD_MIN, run->filler,
		       run->o.size - PAYLOAD_MIN);
		p->seq++;
	}
	atomic_store_explicit(&p->sh->sent, p->seq, memory_order_relaxed);
	if (!run->o.qos) {
		p->done = p->seq;
		atomic_store_explicit(&p->sh->done, p->done,
				      memory_order_relaxed);
	}
	if (buf_pending(&c->out) >= OUT_FLUSH_NOW)
		conn_flush(c);
}

static int pub_on_ack(struct conn *c, uint8_t type, const struct mqtt_ack *a,
		      uint64_t now)
{
	struct pub *p = c->pub;
	struct run *run = c->w->run;
	uint16_t pid = a->packet_id;
	uint8_t want = type == MQTT_PUBACK ? 1 : 2;
	uint8_t st;

	if (!p || run->o.qos != want || pid == 0 || pid > p->pid_space) {
		conn_protocol_error(c, "unexpected %s for packet id %u",
				    type == MQTT_PUBACK ? "PUBACK" :
				    type == MQTT_PUBREC ? "PUBREC" : "PUBCOMP",
				    pid);
		return -1;
	}
	st = p->pid_state[pid];
	if ((type == MQTT_PUBCOMP) != (st == PID_WAIT_COMP) ||
	    st == PID_FREE) {
		conn_protocol_error(c, "%s for packet id %u not in flight",
				    type == MQTT_PUBACK ? "PUBACK" :
				    type == MQTT_PUBREC ? "PUBREC" : "PUBCOMP",
				    pid);
		return -1;
	}
	if (a->reason >= 0x80) {
		/* Refused: the message is gone; it will show as lost. */
		atomic_fetch_add(&run->errors, 1);
		run_error(run, c, "publish refused: 0x%02x %s", a->reason,
			  mqtt_rc_str(a->reason));
		p->pid_state[pid] = PID_FREE;
		p->inflight--;
		return 0;
	}
	if (type == MQTT_PUBREC) {
		p->pid_state[pid] = PID_WAIT_COMP;
		conn_ack(c, ACK_PUBREL, pid);
		return 0;
	}
	p->pid_state[pid] = PID_FREE;
	p->inflight--;
	p->done++;
	if (c->w->measuring && now >= p->pid_ts[pid])
		hist_add(&c->w->ack_hist, now - p->pid_ts[pid]);
	atomic_store_explicit(&p->sh->done, p->done, memory_order_relaxed);
	return 0;
}

/* ---------------------------------------------------------- subscribers */

/* Subscriber progress on publisher id; wake it if it waits for that. */
static void sub_progress(struct worker *w, uint32_t id, uint64_t adv)
{
	struct run *run = w->run;
	struct pub_shared *sh = &run->pubsh[id];
	uint64_t prog = atomic_fetch_add(&sh->progress, adv) + adv;
	const struct pub *p;
	uint64_t due;

	if (!atomic_load(&sh->paused) || sh->owner == w)
		return;
	p = &run->pubs[id];
	due = atomic_load_explicit(&sh->sent, memory_order_relaxed) * p->fanout;
	if (due > prog && due - prog > (uint64_t)run->o.backlog * p->fanout / 2)
		return;
	if (atomic_exchange(&sh->paused, 0))
		ev_async_send(sh->owner->loop, &sh->owner->wake);
}

static void sub_on_publish(struct conn *c, const struct mqtt_publish *m,
			   uint64_t now)
{
	struct worker *w = c->w;
	struct run *run = w->run;
	struct sub *s = c->sub;
	const uint8_t *pl = m->payload.data;
	uint64_t ts, seq, adv;
	uint32_t id, slot;

	w->ndelivered++;
	if (m->qos != run->o.qos) {
		atomic_fetch_add(&run->errors, 1);
		run_error(run, c, "message delivered at QoS %u, expected %u",
			  m->qos, run->o.qos);
	}
	if (m->qos == 1)
		conn_ack(c, ACK_PUBACK, m->packet_id);
	else if (m->qos == 2)
		conn_ack(c, ACK_PUBREC, m->packet_id);
	if (m->payload.len != run->o.size) {
		s->unexpected++;
		return;
	}
	memcpy(&ts, pl + PAYLOAD_TS_OFF, 8);
	memcpy(&id, pl + PAYLOAD_PUB_OFF, 4);
	memcpy(&seq, pl + PAYLOAD_SEQ_OFF, 8);
	slot = id - s->pub_base;
	if (id < s->pub_base || slot >= s->ntracks || id >= run->npubs) {
		s->unexpected++;
		return;
	}
	if (w->measuring && now >= ts)
		hist_add(&w->hist, now - ts);
	adv = track_seq(&s->tracks[slot], seq);
	if (adv)
		sub_progress(w, id, adv);
}

/* ------------------------------------------------------------- packets */

static void conn_on_connack(struct conn *c, const struct mqtt_connack *ca)
{
	struct run *run = c->w->run;
	struct mqtt_packet pkt;
	struct mqtt_sub_entry e;

	if (c->state != CS_CONNECTING) {
		conn_protocol_error(c, "unexpected CONNACK");
		return;
	}
	if (ca->reason) {
		conn_protocol_error(c, "CONNACK refused: 0x%02x %s", ca->reason,
				    run->o.version == MQTT_V5 ?
				    mqtt_rc_str(ca->reason) : "");
		return;
	}
	if (run->o.version == MQTT_V5) {
		const struct mqtt_props *pr = &ca->props;

		if (mqtt_props_has(pr, MQTT_PROP_MAXIMUM_QOS) &&
		    pr->maximum_qos < run->o.qos) {
			conn_protocol_error(c, "broker's Maximum QoS is %u",
					    pr->maximum_qos);
			return;
		}
		if (c->pub && mqtt_props_has(pr, MQTT_PROP_RECEIVE_MAXIMUM) &&
		    pr->receive_maximum < c->pub->window)
			c->pub->window = pr->receive_maximum;
	}
	/* A new client id: a session from an earlier run would bring its
	 * messages along (they show as unexpected). */
	if (c->role == ROLE_SUB && ca->session_present)
		atomic_fetch_add(&run->resumed, 1);
	if (c->role != ROLE_SUB) {
		conn_ready(c);
		return;
	}
	memset(&pkt, 0, sizeof(pkt));
	memset(&e, 0, sizeof(e));
	e.filter.data = (const uint8_t *)c->sub->filter;
	e.filter.len = strlen(c->sub->filter);
	e.qos = run->o.qos;
	pkt.type = MQTT_SUBSCRIBE;
	pkt.u.subscribe.packet_id = 1;
	pkt.u.subscribe.count = 1;
	pkt.u.subscribe.subs = &e;
	if (conn_send_packet(c, &pkt) < 0) {
		conn_protocol_error(c, "cannot encode SUBSCRIBE");
		return;
	}
	c->state = CS_SUBSCRIBING;
}

static void conn_on_suback(struct conn *c, const struct mqtt_suback *sa)
{
	struct run *run = c->w->run;
	uint8_t rc;

	if (c->state != CS_SUBSCRIBING || sa->packet_id != 1 ||
	    sa->reasons.len != 1) {
		conn_protocol_error(c, "unexpected SUBACK");
		return;
	}
	rc = sa->reasons.data[0];
	if (rc >= 0x80) {
		conn_protocol_error(c, "subscription refused: 0x%02x", rc);
		return;
	}
	if (rc != run->o.qos) {
		conn_protocol_error(c, "subscription granted QoS %u, asked %u",
				    rc, run->o.qos);
		return;
	}
	conn_ready(c);
}

static void cleanup_on_packet(struct conn *c, const struct mqtt_packet *pkt);

static void conn_on_packet(struct conn *c, const struct mqtt_packet *pkt,
			   uint64_t now)
{
	if (c->cleanup != CU_NONE) {
		cleanup_on_packet(c, pkt);
		return;
	}
	switch (pkt->type) {
	case MQTT_CONNACK:
		conn_on_connack(c, &pkt->u.connack);
		break;
	case MQTT_SUBACK:
		conn_on_suback(c, &pkt->u.suback);
		break;
	case MQTT_PUBLISH:
		if (c->role != ROLE_SUB || c->state < CS_SUBSCRIBING) {
			conn_protocol_error(c, "unexpected PUBLISH");
			break;
		}
		sub_on_publish(c, &pkt->u.publish, now);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		pub_on_ack(c, pkt->type, &pkt->u.ack, now);
		break;
	case MQTT_PUBREL:
		if (c->role != ROLE_SUB || c->w->run->o.qos != 2) {
			conn_protocol_error(c, "unexpected PUBREL");
			break;
		}
		conn_ack(c, ACK_PUBCOMP, pkt->u.ack.packet_id);
		break;
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
		conn_protocol_error(c, "broker sent DISCONNECT 0x%02x %s",
				    pkt->u.disconnect.reason,
				    mqtt_rc_str(pkt->u.disconnect.reason));
		break;
	default:
		conn_protocol_error(c, "unexpected packet type %u", pkt->type);
		break;
	}
}

/* Handle the whole packets in buf; returns the bytes consumed. */
static size_t conn_process(struct conn *c, const uint8_t *buf, size_t len,
			   uint64_t now)
{
	struct run *run = c->w->run;
	struct mqtt_packet pkt;
	size_t pos = 0, plen;
	int rc;

	while (pos < len && c->state != CS_CLOSED) {
		rc = mqtt_frame_peek(buf + pos, len - pos, run->max_packet,
				     &plen);
		if (rc == MQTT_E_INCOMPLETE)
			break;
		if (rc == 0)
			rc = mqtt_decode(buf + pos, plen, run->o.version, &pkt);
		if (rc < 0) {
			conn_protocol_error(c, "bad packet from broker: %s",
					    mqtt_err_str(rc));
			break;
		}
		conn_on_packet(c, &pkt, now);
		pos += plen;
	}
	return pos;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, rio);
	struct worker *w = c->w;
	size_t have = c->in.len, used, left;
	uint64_t delivered = w->ndelivered;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (c->cleanup == CU_CLOSING || c->cleanup == CU_FINAL)
		have = 0; /* what comes now is only read to see the close */
	if (w->rbuf_cap < have + READ_CHUNK) {
		w->rbuf_cap = have + READ_CHUNK;
		w->rbuf = xrealloc(w->rbuf, w->rbuf_cap);
	}
	if (have)
		memcpy(w->rbuf, c->in.data, have);
	n = recv(c->fd, w->rbuf + have, w->rbuf_cap - have, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_lost(c, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_lost(c, "connection closed by the broker");
		return;
	}
	c->in.len = 0;
	if (c->cleanup == CU_CLOSING || c->cleanup == CU_FINAL)
		return;
	w->measuring = atomic_load_explicit(&w->run->phase,
					    memory_order_relaxed) == PH_MEASURE;
	used = conn_process(c, w->rbuf, have + (size_t)n, mono_ns());
	if (w->ndelivered != delivered)
		atomic_store_explicit(&w->delivered, w->ndelivered,
				      memory_order_relaxed);
	if (c->state == CS_CLOSED)
		return;
	left = have + (size_t)n - used;
	if (left) {
		buf_reserve(&c->in, left);
		memcpy(c->in.data, w->rbuf + used, left);
		c->in.len = left;
	}
	if (buf_pending(&c->out) >= OUT_FLUSH_NOW)
		conn_flush(c);
}

/* ------------------------------------------------- durable clean-up */

static void cleanup_finish(struct conn *c, uint8_t stage)
{
	struct worker *w = c->w;

	c->cleanup = stage;
	atomic_fetch_add(stage == CU_DONE ? &w->run->cleaned :
			 &w->run->cleanup_failed, 1);
	if (w->cleanup_pending && --w->cleanup_pending == 0) {
		ev_timer_stop(w->loop, &w->cleanup_timer);
		ev_break(w->loop, EVBREAK_ALL);
	}
}

/* DISCONNECT, then wait for the broker to close the connection. */
static void cleanup_disconnect(struct conn *c, uint8_t stage, bool expiry0)
{
	struct worker *w = c->w;
	const uint8_t *pkt = expiry0 ? w->disconnect_durable : w->disconnect;
	size_t len = expiry0 ? w->disconnect_durable_len :
		     sizeof(w->disconnect);

	memcpy(conn_append(c, len), pkt, len);
	c->cleanup = stage;
	c->shut_wr = true;
	if (!c->writing)
		conn_flush(c);
}

static void cleanup_enqueue(struct conn *c)
{
	struct worker *w = c->w;

	c->cleanup = CU_WAIT;
	c->next_cleanup = w->cleanup_queue;
	w->cleanup_queue = c;
}

/* Reconnect the sessions waiting for it, up to --concurrency at once:
 * 3.1.1 with clean session 1, 5.0 with clean start 0 and no expiry. */
static void cleanup_more(struct worker *w)
{
	struct run *run = w->run;

	if (w->in_cleanup_more)
		return;
	w->in_cleanup_more = true;
	while (w->cleanup_queue && w->cleanup_opening < run->o.concurrency) {
		struct conn *c = w->cleanup_queue;
		const char *why;

		w->cleanup_queue = c->next_cleanup;
		c->next_cleanup = NULL;
		c->cleanup = CU_CONNECTING;
		w->cleanup_opening++;
		why = conn_connect(c, run->o.version != MQTT_V5, 0);
		if (why)
			conn_lost(c, why);
	}
	w->in_cleanup_more = false;
}

/* A clean-up connection is closed (c is already). */
static void cleanup_lost(struct conn *c, const char *why)
{
	struct worker *w = c->w;

	switch (c->cleanup) {
	case CU_CLOSING:
		cleanup_enqueue(c);
		cleanup_more(w);
		break;
	case CU_CONNECTING:
		w->cleanup_opening--;
		run_error(w->run, c, "session clean-up: %s", why);
		cleanup_finish(c, CU_FAILED);
		cleanup_more(w);
		break;
	case CU_FINAL:
		cleanup_finish(c, CU_DONE);
		break;
	default:
		break;
	}
}

static void cleanup_on_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	struct worker *w = c->w;
	struct run *run = w->run;
	const struct mqtt_connack *ca = &pkt->u.connack;
	char why[64];

	/* A 5.0 session that is still there resends its messages: they are
	 * dropped with it. */
	if (c->cleanup != CU_CONNECTING || pkt->type != MQTT_CONNACK)
		return;
	if (ca->reason) {
		snprintf(why, sizeof(why), "CONNACK refused: 0x%02x",
			 ca->reason);
		conn_lost(c, why);
		return;
	}
	w->cleanup_opening--;
	if (run->o.version == MQTT_V5 && ca->session_present)
		atomic_fetch_add(&run->cleanup_present, 1);
	c->state = CS_READY;
	cleanup_disconnect(c, CU_FINAL, false);
	cleanup_more(w);
}

static void worker_cleanup_timeout_cb(struct ev_loop *loop, ev_timer *t,
				      int revents)
{
	struct worker *w = container_of(t, struct worker, cleanup_timer);
	uint32_t left = 0;

	(void)revents;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];

		if (c->cleanup == CU_NONE || c->cleanup == CU_DONE ||
		    c->cleanup == CU_FAILED)
			continue;
		c->cleanup = CU_FAILED;
		conn_close(c);
		left++;
	}
	atomic_fetch_add(&w->run->cleanup_failed, left);
	run_error(w->run, NULL, "session clean-up timed out after %.0f s: "
		  "%u sessions may remain in the broker", CLEANUP_SECONDS,
		  left);
	w->cleanup_pending = 0;
	w->cleanup_queue = NULL;
	ev_break(loop, EVBREAK_ALL);
}

/* -------------------------------------------------------------- workers */

static void worker_flush(struct worker *w)
{
	struct conn *c = w->dirty, *next;

	w->dirty = NULL;
	for (; c; c = next) {
		next = c->next_dirty;
		c->dirty = false;
		if (c->state != CS_CLOSED && !c->writing)
			conn_flush(c);
	}
}

/* Keep on the flush list only the connections still open. */
static void worker_prune_dirty(struct worker *w)
{
	struct conn *c = w->dirty, *next;

	w->dirty = NULL;
	for (; c; c = next) {
		next = c->next_dirty;
		c->dirty = false;
		if (c->state != CS_CLOSED)
			conn_mark_dirty(c);
	}
}

/* Whether c's session is to be removed at the end (--durable). */
static bool conn_needs_cleanup(const struct conn *c)
{
	return c->w->run->o.durable && c->role == ROLE_SUB &&
	       c->state != CS_NEW;
}

/*
 * Close every connection; with --durable, start removing the subscribers'
 * sessions, which the loop carries on with.
 */
static void worker_disconnect_all(struct worker *w)
{
	bool v5 = w->run->o.version == MQTT_V5;

	worker_prune_dirty(w);
	for (uint32_t i = 0; i < w->nconns; i++)
		if (conn_needs_cleanup(w->conns[i]))
			w->cleanup_pending++;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];

		if (conn_needs_cleanup(c)) {
			if (c->state == CS_READY ||
			    c->state == CS_SUBSCRIBING) {
				cleanup_disconnect(c, CU_CLOSING, v5);
			} else {
				/* Closed, or CONNECT sent: reconnect. */
				conn_close(c);
				cleanup_enqueue(c);
			}
			continue;
		}
		if (c->state == CS_NEW || c->state == CS_CLOSED)
			continue;
		if (c->state != CS_CONNECTING) {
			uint8_t *p = conn_append(c, sizeof(w->disconnect));

			memcpy(p, w->disconnect, sizeof(w->disconnect));
		}
		/* Best effort: one write, then close. */
		if (c->out.len > c->out.off)
			(void)!send(c->fd, c->out.data + c->out.off,
				    c->out.len - c->out.off,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		conn_close(c);
	}
	worker_prune_dirty(w);
	cleanup_more(w);
}

/* Act on each phase the run entered since this worker last looked. */
static void worker_enter_phases(struct worker *w, int phase)
{
	struct run *run = w->run;

	while (w->phase < phase) {
		w->phase++;
		switch (w->phase) {
		case PH_WARMUP:
		case PH_MEASURE:
			if (run->o.rate > 0 && w->npubs &&
			    !ev_is_active(&w->pace)) {
				w->rate_t0 = run->rate_t0;
				ev_timer_start(w->loop, &w->pace);
			}
			break;
		case PH_DRAIN:
			ev_timer_stop(w->loop, &w->pace);
			break;
		case PH_STOP:
			ev_timer_stop(w->loop, &w->pace);
			worker_disconnect_all(w);
			if (w->cleanup_pending)
				ev_timer_start(w->loop, &w->cleanup_timer);
			else
				ev_break(w->loop, EVBREAK_ALL);
			break;
		default:
			break;
		}
	}
}

static bool phase_publishes(int phase)
{
	return phase == PH_WARMUP || phase == PH_MEASURE;
}

static void worker_prepare_cb(struct ev_loop *loop, ev_prepare *pw,
			      int revents)
{
	struct worker *w = container_of(pw, struct worker, prep);
	struct run *run = w->run;
	int phase = atomic_load(&run->phase);

	(void)loop;
	(void)revents;
	if (phase != w->phase)
		worker_enter_phases(w, phase);
	if (phase == PH_STOP) {
		worker_flush(w); /* session clean-up */
		return;
	}
	if (phase_publishes(phase) && run->o.rate <= 0)
		for (uint32_t i = 0; i < w->npubs; i++)
			pub_fill(w->pubs[i], UINT64_MAX);
	worker_flush(w);
}

/* Rate mode: each publisher sends what its schedule says is due. */
static void worker_pace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, pace);
	double elapsed;

	(void)loop;
	(void)revents;
	if (!phase_publishes(atomic_load(&w->run->phase)))
		return;
	elapsed = (double)(mono_ns() - w->rate_t0) / 1e9;
	for (uint32_t i = 0; i < w->npubs; i++) {
		struct pub *p = w->pubs[i];
		uint64_t target = (uint64_t)(elapsed * p->rate + p->phase_frac);
		uint64_t catchup = (uint64_t)(p->rate * 0.005) + 1;
		uint64_t due;

		if (target <= p->rate_skip + p->seq)
			continue;
		due = target - p->rate_skip - p->seq;
		/* Behind by more than 5 ms (window or backlog full): drop
		 * that part of the schedule rather than burst later. */
		if (due > catchup) {
			p->rate_skip += due - catchup;
			due = catchup;
		}
		pub_fill(p, due);
	}
}

/*
 * Keep alive, and the QoS 0 stall breaker: a publisher blocked on its
 * backlog whose subscribers got nothing more from it for a few ticks
 * writes that backlog off (the broker dropped it) so that it goes on.
 */
static void worker_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, tick);
	struct run *run = w->run;
	ev_tstamp now = ev_now(loop);
	double idle = run->o.keepalive / 2.0;

	(void)revents;
	w->ticks++;
	if (run->o.qos == 0 && phase_publishes(atomic_load(&run->phase))) {
		for (uint32_t i = 0; i < w->npubs; i++) {
			struct pub *p = w->pubs[i];
			uint64_t prog = atomic_load(&p->sh->progress), owed;

			if (!p->blocked)
				continue;
			if (prog != p->blocked_progress) {
				p->blocked_progress = prog;
				p->blocked_ticks = 0;
				continue;
			}
			if (++p->blocked_ticks < WRITE_OFF_TICKS)
				continue;
			owed = pub_owed(p, prog);
			p->written_off += owed;
			p->blocked_ticks = 0;
			atomic_fetch_add(&p->sh->progress, owed);
		}
	}
	if (w->ticks % 10 || !run->o.keepalive)
		return;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];

		if (c->state == CS_NEW || c->state == CS_CLOSED ||
		    c->cleanup != CU_NONE || now - c->last_tx < idle)
			continue;
		memcpy(conn_append(c, sizeof(w->ping)), w->ping,
		       sizeof(w->ping));
		c->last_tx = now;
	}
}

static void worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	/* Nothing to do here: the prepare watcher runs next. */
	(void)loop;
	(void)a;
	(void)revents;
}

/* Encode the fixed small packets once. */
static int worker_templates(struct worker *w, uint8_t version)
{
	static const uint8_t types[4] = { MQTT_PUBACK, MQTT_PUBREC,
					  MQTT_PUBREL, MQTT_PUBCOMP };
	struct mqtt_packet pkt;
	int rc;

	for (int i = 0; i < 4; i++) {
		memset(&pkt, 0, sizeof(pkt));
		pkt.type = types[i];
		pkt.u.ack.packet_id = 0x1234;
		rc = mqtt_encode(&pkt, version, w->ack[i], sizeof(w->ack[i]));
		/* The short form: type, length 2, packet id. */
		if (rc != 4 || w->ack[i][2] != 0x12 || w->ack[i][3] != 0x34)
			return -1;
	}
	w->ack_len = 4;
	w->ack_pid_off = 2;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PINGREQ;
	if (mqtt_encode(&pkt, version, w->ping, sizeof(w->ping)) != 2)
		return -1;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_DISCONNECT;
	if (mqtt_encode(&pkt, version, w->disconnect,
			sizeof(w->disconnect)) != 2)
		return -1;
	if (version == MQTT_V5) {
		pkt.u.disconnect.props.session_expiry_interval = 0;
		mqtt_props_set(&pkt.u.disconnect.props,
			       MQTT_PROP_SESSION_EXPIRY_INTERVAL);
		rc = mqtt_encode(&pkt, version, w->disconnect_durable,
				 sizeof(w->disconnect_durable));
		if (rc <= 0)
			return -1;
		w->disconnect_durable_len = (uint8_t)rc;
	}
	return 0;
}

int worker_init(struct worker *w, struct run *run, uint32_t idx)
{
	w->run = run;
	w->idx = idx;
	w->phase = PH_SETUP;
	if (worker_templates(w, run->o.version) < 0)
		return -1;
	w->loop = ev_loop_new(EVFLAG_AUTO);
	if (!w->loop)
		return -1;
	ev_async_init(&w->wake, worker_wake_cb);
	ev_async_start(w->loop, &w->wake);
	ev_prepare_init(&w->prep, worker_prepare_cb);
	ev_prepare_start(w->loop, &w->prep);
	ev_timer_init(&w->tick, worker_tick_cb, TICK_SECONDS, TICK_SECONDS);
	ev_timer_start(w->loop, &w->tick);
	ev_timer_init(&w->pace, worker_pace_cb, PACE_SECONDS, PACE_SECONDS);
	ev_timer_init(&w->cleanup_timer, worker_cleanup_timeout_cb,
		      CLEANUP_SECONDS, 0.);
	for (uint32_t i = 0; i < w->nconns; i++) {
		w->conns[i]->w = w;
		w->conns[i]->fd = -1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	worker_open_more(w);
	ev_run(w->loop, 0);
	return NULL;
}

int worker_start(struct worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

void worker_wake(struct worker *w)
{
	ev_async_send(w->loop, &w->wake);
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
	if (w->loop)
		ev_loop_destroy(w->loop);
	free(w->rbuf);
}
