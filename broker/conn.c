/*
 * Connections: bytes in, packets out.  Input is framed with the codec's
 * peek, each complete packet decoded in place and handed to its handler;
 * a handler or decode error comes back here and this is the one place that
 * answers it (CONNACK refusal before CONNECT, DISCONNECT with a reason in
 * MQTT 5) and closes.  Output is appended to a per-connection buffer and
 * written once per loop turn by the shard's flush pass.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/bufpool.h"
#include "broker/conn.h"
#include "broker/handle.h"
#include "broker/listener.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/*
 * Before CONNECT is accepted, a packet may not be larger than a CONNECT
 * can usefully be (will payload, password and properties of up to 64 KiB
 * each), whatever max_packet_size allows.
 */
#define PRE_CONNECT_MAX (512u * 1024u)

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

/*
 * Buffers grow by doubling from a base, so a connection keeps only the
 * power of two (0: no buffer): 6 bytes fewer on each connection.  Both
 * come from and go back to the shard's pool (broker/bufpool.h).  Output
 * starts at 1 KiB, not 4: a connect storm's CONNACKs then park 1 KiB
 * each in the pool, and busy connections grow through the pool cheaply.
 */
#define IN_BASE 1024u
#define OUT_BASE 1024u

static uint8_t cap_log2(size_t cap, size_t base)
{
	uint8_t k = 1;

	while (base < cap) {
		base *= 2;
		k++;
	}
	return k;
}

static size_t in_cap(const struct conn *c)
{
	return c->in_cap_log2 ? (size_t)IN_BASE << (c->in_cap_log2 - 1) : 0;
}

static size_t out_cap(const struct conn *c)
{
	return c->out_cap_log2 ? (size_t)OUT_BASE << (c->out_cap_log2 - 1) :
				 0;
}

static bool in_reserve(struct conn *c, size_t need);
static void in_release(struct conn *c);

/*
 * A buffer of new_cap bytes holding the first keep bytes of old (of
 * old_cap bytes), from and to the shard's pool; NULL when out of memory,
 * old kept.  Past the pooled sizes realloc() may grow it in place.
 */
static uint8_t *buf_grow(struct shard *sh, uint8_t *old, size_t old_cap,
			 size_t keep, size_t new_cap)
{
	uint8_t *p;

	if (old_cap >= BUFPOOL_MAX_SIZE)
		return realloc(old, new_cap);
	p = bufpool_get(&sh->bufs, new_cap);
	if (!p)
		return NULL;
	if (keep)
		memcpy(p, old, keep);
	bufpool_put(&sh->bufs, old, old_cap);
	return p;
}

const char *conn_peer(const struct conn *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (c->peer_family == AF_INET6) {
		inet_ntop(AF_INET6, c->peer_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, c->peer_port);
	} else {
		if (c->peer_family == AF_INET)
			inet_ntop(AF_INET, c->peer_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, c->peer_port);
	}
	return buf;
}

/* The peer's address, kept in binary: 19 bytes instead of a string. */
static void set_peer(struct conn *c, const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		memcpy(c->peer_addr, &s6->sin6_addr, 16);
		c->peer_port = ntohs(s6->sin6_port);
		c->peer_family = AF_INET6;
	} else if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		memcpy(c->peer_addr, &s4->sin_addr, 4);
		c->peer_port = ntohs(s4->sin_port);
		c->peer_family = AF_INET;
	}
}

struct conn *conn_new(struct shard *sh, int fd, const struct sockaddr *peer)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->shard = sh;
		c->wheel_slot = -1;
	set_peer(c, peer);
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_io_start(sh->loop, &c->io);
	c->last_activity = shard_now(sh);
	c->timeout = (float)sh->broker->limits.connect_timeout;
	shard_watch_timeout(sh, c);

	c->next = sh->conns;
	if (sh->conns)
		sh->conns->prev = c;
	sh->conns = c;
	sh->conn_count++;
	atomic_fetch_add_explicit(&sh->broker->conn_total, 1,
				  memory_order_relaxed);
	return c;
}

/*
 * Make room for need more bytes after out_len; false when out of memory,
 * or past 4 GiB waiting for one client (the hard output limit).
 */
static bool out_reserve(struct conn *c, size_t need)
{
	size_t cap = out_cap(c), live = c->out_len - c->out_off, grown;
	uint8_t *p;

	if (cap - c->out_len >= need)
		return true;
	if (need > UINT32_MAX / 2 - live)
		return false;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, live);
		c->out_off = 0;
		c->out_len = (uint32_t)live;
		/*
		 * Enough when it freed half the buffer or more.  Past that it
		 * grows as well: a slow reader's unwritten megabytes are not
		 * moved again for every message appended behind them.
		 */
		if (live <= cap / 2 && cap - live >= need)
			return true;
	}
	grown = cap ? cap * 2 : OUT_BASE;
	while (grown - live < need)
		grown *= 2;
	p = buf_grow(c->shard, c->out, cap, live, grown);
	if (!p)
		return false;
	c->out = p;
	c->out_cap_log2 = cap_log2(grown, OUT_BASE);
	return true;
}

/* Output could not be buffered: the connection cannot go on. */
static void conn_fail(struct conn *c)
{
	c->broken = true;
	shard_want_flush(c->shard, c);
}

void conn_set_reason(struct mqtt_props *p, const char *s)
{
	size_t len = s ? strlen(s) : 0, lead = len;

	/* Back over a last character snprintf() may have cut short. */
	while (lead > 0 && ((uint8_t)s[lead - 1] & 0xC0) == 0x80)
		lead--;
	if (lead > 0 && ((uint8_t)s[lead - 1] & 0x80)) {
		uint8_t b = (uint8_t)s[lead - 1];
		size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;

		if (len - (lead - 1) < need)
			len = lead - 1;
	}
	if (len == 0)
		return;
	p->reason_string.data = (const uint8_t *)s;
	p->reason_string.len = len;
	mqtt_props_set(p, MQTT_PROP_REASON_STRING);
}

/* Where a packet we send keeps the Reason String and User Properties. */
static const struct mqtt_props *problem_props(const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNACK:
		return &pkt->u.connack.props;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return &pkt->u.ack.props;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return &pkt->u.suback.props;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return &pkt->u.disconnect.props;
	default:
		return NULL; /* PUBLISH: the publisher's, forwarded as is */
	}
}

#define PROBLEM_INFO ((UINT64_C(1) << MQTT_PROP_REASON_STRING) | \
		      (UINT64_C(1) << MQTT_PROP_USER_PROPERTY))
#define SERVER_REFERENCE (UINT64_C(1) << MQTT_PROP_SERVER_REFERENCE)

/*
 * The packet as it may go to this client: without Reason String and User
 * Properties when it asked for no problem information (CONNACK and
 * DISCONNECT may still have them [MQTT-3.1.2-29]), or when they would take
 * the packet past its Maximum Packet Size (then only they are dropped, not
 * the packet [MQTT-3.2.2-19, MQTT-3.4.2-2 ...]), and then without its
 * Server Reference if that is still too large.  A changed packet is
 * built in *copy; *size is the encoded size of the one returned.
 */
static const struct mqtt_packet *conn_trim(const struct conn *c,
					   const struct mqtt_packet *pkt,
					   struct mqtt_packet *copy,
					   size_t *size)
{
	const struct mqtt_props *p = problem_props(pkt);
	struct mqtt_props *w;
	bool allowed;

	if (c->version != MQTT_V5 || !p ||
	    !(p->present & (PROBLEM_INFO | SERVER_REFERENCE)))
		return pkt;
	allowed = c->request_problem_info || pkt->type == MQTT_CONNACK ||
		  pkt->type == MQTT_DISCONNECT ||
		  !(p->present & PROBLEM_INFO);
	if (allowed && (!c->max_packet_out || *size <= c->max_packet_out))
		return pkt;
	*copy = *pkt;
	w = (struct mqtt_props *)problem_props(copy); /* copy is ours */
	w->present &= ~PROBLEM_INFO;
	w->users = NULL;
	w->user_count = 0;
	*size = mqtt_encoded_size(copy, c->version);
	/*
	 * Still too large: a redirection's Server Reference is optional
	 * ("MAY", section 4.11), the packet limit is not [MQTT-3.1.2-24].
	 */
	if (c->max_packet_out && *size > c->max_packet_out &&
	    (w->present & SERVER_REFERENCE)) {
		w->present &= ~SERVER_REFERENCE;
		*size = mqtt_encoded_size(copy, c->version);
	}
	return copy;
}

/*
 * What was just written reports stored state (an acknowledgement, a QoS 2
 * PUBLISH or PUBREL): it waits for every change recorded so far to be
 * committed (decisions #10).  A QoS 0 or 1 PUBLISH does not: should the
 * broker crash before the commit, the publisher, not yet acknowledged,
 * sends it again, and a second copy is what QoS 1 allows.
 */
static void conn_depends_on_storage(struct conn *c)
{
	uint64_t seq = persist_hold_seq(c->shard->broker);

	if (seq > c->hold_seq)
		c->hold_seq = seq;
}

int conn_send(struct conn *c, const struct mqtt_packet *pkt)
{
	struct mqtt_packet copy;
	size_t size;
	int n;

	if (c->state == CONN_CLOSING || c->broken)
		return 0;
	size = mqtt_encoded_size(pkt, c->version);
	pkt = conn_trim(c, pkt, &copy, &size);
	if (size == 0)
		return MQTT_E_ENCODE;
	if (!out_reserve(c, size)) {
		conn_fail(c);
		return -ENOMEM;
	}
	n = mqtt_encode(pkt, c->version, c->out + c->out_len,
			out_cap(c) - c->out_len);
	if (n < 0)
		return n;
	c->out_len += (uint32_t)n;
	conn_depends_on_storage(c);
	shard_want_flush(c->shard, c);
	return 0;
}

/* Seconds left before expiry, rounded up, for Message Expiry Interval. */
static uint32_t expiry_left(struct conn *c, const struct msg *msg)
{
	uint64_t now = shard_now_ms(c->shard);

	if (msg->expiry_at <= now)
		return 1; /* due now; the sender checked it was still alive */
	return (uint32_t)((msg->expiry_at - now + 999) / 1000);
}

struct conn_alias {
	uint32_t hash;
	char *topic; /* NUL-terminated copy */
};

static uint32_t topic_hash(const char *t, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)t[i]) * 16777619u;
	return h;
}

bool conn_alias_tables(struct conn *c)
{
	size_t in = (size_t)c->topic_alias_max_in + 1;

	if (!c->topic_aliases)
		c->topic_aliases = calloc(1, in * sizeof(char *) +
					  c->topic_alias_max_out *
						  sizeof(struct conn_alias));
	return c->topic_aliases != NULL;
}

static struct conn_alias *aliases_out(const struct conn *c)
{
	return (struct conn_alias *)(void *)(c->topic_aliases +
					     c->topic_alias_max_in + 1);
}

/*
 * The alias for msg's topic: found (*is_new false), or the next one to
 * assign (*is_new true), or 0 when there is none to use.
 */
static uint16_t alias_for(struct conn *c, const struct msg *msg,
			  uint32_t hash, bool *is_new)
{
	*is_new = false;
	for (uint16_t i = 0; i < c->topic_alias_out_count; i++) {
		const struct conn_alias *a = &aliases_out(c)[i];

		if (a->hash == hash && strcmp(a->topic, msg->topic) == 0)
			return (uint16_t)(i + 1);
	}
	if (c->topic_alias_out_count == c->topic_alias_max_out)
		return 0;
	*is_new = true;
	return (uint16_t)(c->topic_alias_out_count + 1);
}

/* The client now knows alias for msg's topic. */
static void alias_learned(struct conn *c, const struct msg *msg,
			  uint32_t hash)
{
	struct conn_alias *a =
		&aliases_out(c)[c->topic_alias_out_count];

	a->topic = strdup(msg->topic);
	if (!a->topic)
		return; /* the alias stays unused: the client ignores it */
	a->hash = hash;
	c->topic_alias_out_count++;
}

/*
 * PUBLISH headers encoded this loop turn, for the next subscriber of the
 * same message in the same variant: a fanout encodes its header once per
 * (protocol, QoS, retain) and copies it, with the packet id patched in,
 * for every other subscriber [issue #5].  Only headers that are the same
 * for every subscriber are kept: no topic alias, no Subscription
 * Identifier, no Message Expiry Interval (it counts down), not a resend.
 * Each entry holds a reference to its message, so that address cannot
 * be a new message's while cached; conn_headers_release() drops them at
 * the end of the turn.
 */
#define HEADER_CACHE_SLOTS 4
#define HEADER_CACHE_MAX 256 /* longer headers (long topics) are not kept */

struct pub_header {
	struct msg *msg; /* NULL: empty */
	uint8_t variant; /* header_variant() */
	uint16_t len; /* up to HEADER_CACHE_MAX */
	uint16_t id_offset; /* of the packet id; 0: QoS 0 */
	uint8_t bytes[HEADER_CACHE_MAX];
};

struct header_cache {
	unsigned next; /* the slot replaced on a miss */
	struct pub_header slot[HEADER_CACHE_SLOTS];
};

static uint8_t header_variant(const struct conn *c, uint8_t qos, bool retain)
{
	return (uint8_t)(c->version << 3 | qos << 1 | retain);
}

static struct pub_header *header_find(struct shard *sh, const struct msg *msg,
				      uint8_t variant)
{
	struct header_cache *hc = sh->headers;

	if (!hc)
		return NULL;
	for (unsigned i = 0; i < HEADER_CACHE_SLOTS; i++)
		if (hc->slot[i].msg == msg && hc->slot[i].variant == variant)
			return &hc->slot[i];
	return NULL;
}

/*
 * Encode pub (len bytes of header for msg, in this variant) into a slot;
 * NULL when out of memory or it cannot be encoded.
 */
static struct pub_header *header_store(struct shard *sh, struct msg *msg,
				       uint8_t variant,
				       const struct mqtt_publish *pub,
				       uint8_t version, size_t len)
{
	struct header_cache *hc = sh->headers;
	struct pub_header *h;
	size_t id_offset = 0;

	if (!hc) {
		hc = sh->headers = calloc(1, sizeof(*hc));
		if (!hc)
			return NULL;
	}
	h = &hc->slot[hc->next];
	hc->next = (hc->next + 1) % HEADER_CACHE_SLOTS;
	msg_unref(h->msg);
	h->msg = NULL;
	if (mqtt_encode_publish_header(pub, version, h->bytes, len,
				       &id_offset) != (int)len)
		return NULL;
	h->msg = msg_ref(msg);
	h->variant = variant;
	h->len = (uint16_t)len;
	h->id_offset = (uint16_t)id_offset;
	return h;
}

void conn_headers_release(struct shard *sh)
{
	struct header_cache *hc = sh->headers;

	if (!hc)
		return;
	for (unsigned i = 0; i < HEADER_CACHE_SLOTS; i++) {
		msg_unref(hc->slot[i].msg);
		hc->slot[i].msg = NULL;
	}
}

/* The PUBLISH c is sent for msg, but for its payload. */
static void publish_for(struct conn *c, struct msg *msg, uint8_t qos,
			bool retain, bool dup, uint16_t packet_id,
			const uint32_t *sub_ids, uint8_t sub_id_count,
			uint16_t alias, bool new_alias, struct mqtt_publish *pub)
{
	*pub = (struct mqtt_publish){
		.qos = qos,
		.dup = dup,
		.retain = retain,
		.packet_id = packet_id,
		.topic = { (const uint8_t *)msg->topic, msg->topic_len },
		.payload = { msg->payload, msg->payload_len },
	};
	if (c->version != MQTT_V5)
		return;
	/* Stored properties were validated when the message came in. */
	if (msg->props_len)
		mqtt_props_decode(msg->props, msg->props_len, MQTT_PUBLISH,
				  &pub->props);
	if (msg->expiry_at) {
		pub->props.message_expiry_interval = expiry_left(c, msg);
		mqtt_props_set(&pub->props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	}
	if (sub_id_count) {
		pub->props.subscription_ids = sub_ids;
		pub->props.subscription_id_count = sub_id_count;
		mqtt_props_set(&pub->props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER);
	}
	if (alias) {
		pub->props.topic_alias = alias;
		mqtt_props_set(&pub->props, MQTT_PROP_TOPIC_ALIAS);
		/* A known alias goes without its name. */
		if (!new_alias)
			pub->topic.len = 0;
	}
}

/*
 * A payload this large is written straight from the shared message with
 * writev() when nothing holds the connection's output back, instead of
 * being copied into its buffer; smaller ones are copied and go with the
 * rest of the turn's output (a copy of a few KiB costs less than a
 * system call of its own).  A 1 -> 1,000 fanout of a 1 MiB message so
 * writes from one copy instead of making a thousand.
 */
#define PAYLOAD_WRITEV_MIN (16u * 1024u)

/*
 * Whether output may go to the socket now rather than at the end of the
 * turn: not waiting for storage or for other shards, and the socket not
 * pushing back.
 */
static bool can_write_now(const struct conn *c)
{
	return c->state == CONN_ACTIVE && !c->hold_seq && !c->wait_msg &&
	       !c->want_write && !c->broken;
}

/*
 * Write what is buffered, then len bytes of payload, in one writev();
 * what the socket does not take is buffered for the flush.  false when
 * that is out of memory.
 */
static bool write_through(struct conn *c, const uint8_t *payload, size_t len)
{
	struct iovec iov[2] = {
		{ c->out + c->out_off, c->out_len - c->out_off },
		{ (void *)payload, len },
	};
	size_t buffered = iov[0].iov_len;
	ssize_t n;

	do
		n = writev(c->io.fd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* The peer is gone; reading will notice and close. */
		c->out_off = c->out_len = 0;
		return true;
	}
	if (n < 0)
		n = 0;
	c->shard->stats.bytes_sent += (uint64_t)n;
	if ((size_t)n < buffered) {
		c->out_off += (uint32_t)n;
	} else {
		c->out_off = c->out_len = 0;
		payload += (size_t)n - buffered;
		len -= (size_t)n - buffered;
	}
	if (len == 0)
		return true;
	if (!out_reserve(c, len))
		return false;
	memcpy(c->out + c->out_len, payload, len);
	c->out_len += (uint32_t)len; /* out_reserve() checked it */
	return true;
}

bool conn_send_publish(struct conn *c, struct msg *msg, uint8_t qos,
		       bool retain, bool dup, uint16_t packet_id,
		       const uint32_t *sub_ids, uint8_t sub_id_count)
{
	struct mqtt_publish pub;
	struct pub_header *cached = NULL;
	uint32_t hash = 0;
	uint16_t alias = 0;
	bool new_alias = false, same_for_all, direct;
	uint8_t variant = header_variant(c, qos, retain);
	size_t hdr;
	int n;

	if (c->state == CONN_CLOSING || c->broken)
		return false;
	if (c->topic_alias_max_out && msg->topic_len > 2 &&
	    conn_alias_tables(c)) {
		hash = topic_hash(msg->topic, msg->topic_len);
		alias = alias_for(c, msg, hash, &new_alias);
	}
	same_for_all = !alias && !sub_id_count && !msg->expiry_at && !dup;
	if (same_for_all)
		cached = header_find(c->shard, msg, variant);
	if (cached) {
		hdr = cached->len;
	} else {
		publish_for(c, msg, qos, retain, dup, packet_id, sub_ids,
			    sub_id_count, alias, new_alias, &pub);
		hdr = mqtt_publish_header_size(&pub, c->version);
		if (hdr == 0)
			return false;
	}
	/* [MQTT-3.1.2-25]: never send a client more than it accepts. */
	if (c->max_packet_out && hdr + msg->payload_len > c->max_packet_out) {
		c->shard->stats.publish_dropped++;
		return false;
	}
	/* Before writing it: QoS 2 output waits for its records' commit. */
	if (qos == 2)
		conn_depends_on_storage(c);
	direct = msg->payload_len >= PAYLOAD_WRITEV_MIN && can_write_now(c);
	if (!out_reserve(c, hdr + (direct ? 0 : msg->payload_len))) {
		conn_fail(c);
		return false;
	}
	if (!cached && same_for_all && hdr <= HEADER_CACHE_MAX)
		cached = header_store(c->shard, msg, variant, &pub, c->version,
				      hdr);
	if (cached) {
		memcpy(c->out + c->out_len, cached->bytes, hdr);
		if (cached->id_offset)
			mqtt_publish_set_packet_id(c->out + c->out_len,
						   cached->id_offset,
						   packet_id);
		n = (int)hdr;
	} else {
		n = mqtt_encode_publish_header(&pub, c->version,
					       c->out + c->out_len,
					       out_cap(c) - c->out_len, NULL);
		if (n < 0)
			return false;
	}
	c->out_len += (uint32_t)n;
	if (new_alias)
		alias_learned(c, msg, hash);
	if (!direct) {
		memcpy(c->out + c->out_len, msg->payload, msg->payload_len);
		c->out_len += msg->payload_len; /* out_reserve() checked it */
	} else if (!write_through(c, msg->payload, msg->payload_len)) {
		conn_fail(c);
		return false;
	}
	c->shard->stats.msgs_sent++;
	shard_want_flush(c->shard, c);
	return true;
}

/*
 * One watcher per connection, for reading always and for writing only
 * while the socket pushes back: half the memory of two watchers.
 */
static void want_write(struct conn *c, bool on)
{
	if (c->want_write == on)
		return;
	c->want_write = on;
	ev_io_stop(c->shard->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, on ? EV_READ | EV_WRITE : EV_READ);
	ev_io_start(c->shard->loop, &c->io);
}

void conn_wait_confirm(struct conn *c, struct msg *msg)
{
	msg_unref(c->wait_msg);
	c->wait_msg = msg_ref(msg);
}

/*
 * Whether the other shards confirmed c->wait_msg; their storage sequence
 * number then joins hold_seq.  false when c was closed instead.
 */
static bool remote_confirmed(struct conn *c)
{
	struct msg *m = c->wait_msg;
	uint64_t seq;

	if (atomic_load(&m->remote_pending)) {
		if (c->state != CONN_CLOSING)
			shard_hold(c->shard, c);
		return false;
	}
	seq = atomic_load(&m->remote_seq);
	if (seq > c->hold_seq)
		c->hold_seq = seq;
	c->wait_msg = NULL;
	if (atomic_load(&m->remote_refused)) {
		msg_unref(m);
		c->out_off = c->out_len = 0;
		c->hold_seq = 0;
		conn_close(c, -1, "persistence failed before its state was saved");
		return false;
	}
	msg_unref(m);
	return true;
}

void conn_flush(struct conn *c)
{
	if (c->wait_msg && !remote_confirmed(c))
		return;
	if (c->hold_seq) {
		if (!persist_is_committed(c->shard->broker, c->hold_seq)) {
			/* A closing connection's output is dropped instead. */
			if (c->state != CONN_CLOSING)
				shard_hold(c->shard, c);
			return;
		}
		c->hold_seq = 0;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->io.fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (uint32_t)n;
			c->shard->stats.bytes_sent += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->state != CONN_CLOSING)
				want_write(c, true);
			return;
		}
		/* The peer is gone; reading will notice and close. */
		c->out_off = c->out_len = 0;
		return;
	}
	/* Written out: an idle connection keeps no output buffer either. */
	c->out_off = c->out_len = 0;
	want_write(c, false);
	bufpool_put(&c->shard->bufs, c->out, out_cap(c));
	c->out = NULL;
	c->out_cap_log2 = 0;
}

static void conn_write_ready(struct conn *c)
{
	conn_flush(c);
	/* The window may have been waiting on a slow reader. */
	if (c->session && conn_pending(c) == 0)
		session_pump(c->session);
}

/* Send the will now (delay handling comes with the MQTT 5 issue). */
/*
 * The will of a connection that ends abnormally: sent now, or with a Will
 * Delay Interval and a session that outlives the connection, kept by the
 * session until the delay passes [MQTT-3.1.3-9].
 */
static void conn_handle_will(struct conn *c)
{
	struct session *s = c->session;
	struct conn_will *w = c->will;
	struct msg *will;

	c->will = NULL;
	if (!w)
		return;
	will = w->msg;
	if (c->will_suppressed)
		msg_unref(will);
	else if (w->delay && s && s->conn == c && s->expiry_interval)
		session_park_will(s, will, shard_now(c->shard) + w->delay,
				  w->expiry);
	else
		route_will(c->shard, will, w->expiry);
	free(w);
}

/* Leave the session: gone with the connection, or kept to expire later. */
static void conn_detach_session(struct conn *c)
{
	struct session *s = c->session;

	/* The session may go now: nothing logs this connection after. */
	if (c->client_id_borrowed) {
		c->client_id = NULL;
		c->client_id_borrowed = false;
	}

	c->session = NULL;
	if (!s || s->conn != c)
		return;
	s->conn = NULL;
	if (s->expiry_interval == 0) {
		session_destroy(s);
		return;
	}
	s->expire_at = s->expiry_interval == UINT32_MAX ?
		INFINITY : shard_now(c->shard) + s->expiry_interval;
	persist_session(s);
}

/* conn_close() with a Reason String other than the log's why. */
static void conn_close_explained(struct conn *c, int reason, const char *why,
				 const char *explain)
{
	struct shard *sh = c->shard;

	if (c->state == CONN_CLOSING)
		return;
	/* [MQTT-3.14.0-1]: DISCONNECT only after CONNACK, and only in 5. */
	if (reason >= 0 && c->version == MQTT_V5 && c->state == CONN_ACTIVE) {
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		pkt.u.disconnect.reason = (uint8_t)reason;
		conn_set_reason(&pkt.u.disconnect.props, explain);
		conn_send(c, &pkt);
	}
	if (c->state == CONN_ACTIVE) {
		atomic_fetch_sub(&sh->broker->clients_connected, 1);
		conn_log(LOGL_NOTICE, c, "disconnected: %s", why);
	} else {
		conn_log(LOGL_INFO, c, "closed before CONNECT: %s", why);
	}
	c->state = CONN_CLOSING;
	ev_io_stop(sh->loop, &c->io);
	conn_flush(c);
	shutdown(c->io.fd, SHUT_RDWR);
	conn_handle_will(c);
	conn_detach_session(c);
	shard_forget(sh, c);
}

void conn_close(struct conn *c, int reason, const char *why)
{
	conn_close_explained(c, reason, why, why);
}

/*
 * What the last handler said with conn_why(): one per shard thread, read
 * right after the handler returns, so no connection carries a buffer.
 */
static _Thread_local struct {
	const struct conn *c; /* NULL: nothing said */
	char text[160];
} conn_last_why;

int conn_why(struct conn *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(conn_last_why.text, sizeof(conn_last_why.text), fmt, ap);
	va_end(ap);
	conn_last_why.c = c;
	return rc;
}

void conn_free(struct conn *c)
{
	atomic_fetch_sub_explicit(&c->shard->broker->conn_total, 1,
				  memory_order_relaxed);
	if (c->listener)
		atomic_fetch_sub_explicit(&c->listener->conn_count, 1,
					  memory_order_relaxed);
	if (c->topic_aliases) {
		for (size_t i = 0; i <= c->topic_alias_max_in; i++)
			free(c->topic_aliases[i]);
		for (size_t i = 0; i < c->topic_alias_out_count; i++)
			free(aliases_out(c)[i].topic);
		free(c->topic_aliases);
	}
	if (c->will) {
		msg_unref(c->will->msg);
		free(c->will);
	}
	msg_unref(c->wait_msg);
	if (c->io.fd >= 0)
		close(c->io.fd);
	auth_conn_free(c->auth);
	if (!c->client_id_borrowed)
		free(c->client_id);
	bufpool_put(&c->shard->bufs, c->in, in_cap(c));
	bufpool_put(&c->shard->bufs, c->out, out_cap(c));
	free(c);
}

void conn_timed_out(struct conn *c)
{
	if (c->state == CONN_NEW)
		conn_close(c, -1, "no CONNECT within connect_timeout");
	else if (c->state == CONN_AUTH)
		conn_close(c, -1, "authentication not done within connect_timeout");
	else
		conn_close(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
}

/*
 * A decode or handler failure: answer as the protocol version allows.  The
 * Reason String is what the handler said with conn_why(), or the decode
 * error.
 */
static void conn_protocol_error(struct conn *c, int err, const char *what)
{
	uint8_t reason = err < 0 ? mqtt_err_reason(err) : (uint8_t)err;
	const char *explain = err < 0 ? mqtt_err_str(err) : NULL;
	char why[256];

	if (err > 0 && conn_last_why.c == c)
		explain = what = conn_last_why.text;
	conn_last_why.c = NULL;
	c->shard->stats.malformed += reason == MQTT_RC_MALFORMED_PACKET;
	snprintf(why, sizeof(why), "%s (%s)",
		 err < 0 ? mqtt_err_str(err) : what, mqtt_rc_str(reason));
	conn_close_explained(c, reason, why, explain);
}

/* CONNECT that could not be decoded: a CONNACK the client can read. */
static void conn_refuse_connect(struct conn *c, int err,
				const struct mqtt_connect *partial)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNACK };
	uint8_t level = partial->protocol_level;

	if (err == MQTT_E_PROTOCOL_NAME) {
		/* [MQTT-3.1.2-1]: not MQTT at all; just close. */
		conn_close(c, -1, "not an MQTT CONNECT");
		return;
	}
	if (level == MQTT_V5) {
		c->version = MQTT_V5;
		pkt.u.connack.reason = mqtt_err_reason(err);
	} else {
		c->version = MQTT_V311;
		if (err != MQTT_E_PROTOCOL_VERSION) {
			/* 3.1.1 has no code for a malformed CONNECT. */
			conn_close(c, -1, mqtt_err_str(err));
			return;
		}
		pkt.u.connack.reason = MQTT_V3_CONNACK_REFUSED_PROTOCOL_VERSION;
	}
	conn_send(c, &pkt);
	conn_close(c, -1, mqtt_err_str(err));
}

static int conn_dispatch(struct conn *c, struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNECT: /* a second one [MQTT-3.1.0-2] */
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
	case MQTT_PUBLISH:
		return handle_publish(c, &pkt->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return handle_ack(c, pkt->type, &pkt->u.ack);
	case MQTT_SUBSCRIBE:
		return handle_subscribe(c, &pkt->u.subscribe);
	case MQTT_UNSUBSCRIBE:
		return handle_unsubscribe(c, &pkt->u.subscribe);
	case MQTT_PINGREQ:
		return handle_pingreq(c);
	case MQTT_DISCONNECT:
		return handle_disconnect(c, &pkt->u.disconnect);
	case MQTT_AUTH:
		return handle_auth(c, &pkt->u.disconnect);
	default:
		return conn_why(c, MQTT_RC_PROTOCOL_ERROR,
				"%s is sent by servers only",
				pkt->type == MQTT_CONNACK ? "CONNACK" :
				pkt->type == MQTT_SUBACK ? "SUBACK" :
				pkt->type == MQTT_UNSUBACK ? "UNSUBACK" :
				"PINGRESP");
	}
}

/* One complete packet after the first. */
static void conn_handle_packet(struct conn *c, const uint8_t *buf, size_t len)
{
	struct mqtt_packet pkt;
	int rc;

	if (c->state == CONN_AUTH) {
		handle_auth_pending(c, buf, len);
		return;
	}
	rc = mqtt_decode(buf, len, c->version, &pkt);
	if (rc < 0) {
		conn_protocol_error(c, rc, NULL);
		return;
	}
	conn_last_why.c = NULL;
	rc = conn_dispatch(c, &pkt);
	if (rc > 0)
		conn_protocol_error(c, rc, mqtt_rc_str((uint8_t)rc));
}

/*
 * A decoded CONNECT whose client id belongs to another shard: the
 * connection moves there with everything read from the CONNECT on (n
 * bytes at buf).  It is taken off this shard's lists now and posted at the
 * end of the loop turn (shard_move()), once nothing up this shard's stack
 * touches it any more.  true when it moves.  A CONNECT without a client
 * id stays: it gets an id of this shard.
 */
static bool hand_over(struct conn *c, const struct mqtt_connect *cn,
		      const uint8_t *buf, size_t n)
{
	struct shard *sh = c->shard;
	struct conn_handoff *h;
	unsigned to;

	if (sh->broker->shard_count < 2 || cn->client_id.len == 0)
		return false;
	to = shard_of_client(sh->broker, (const char *)cn->client_id.data,
			     cn->client_id.len);
	if (to == sh->index)
		return false;
	h = malloc(sizeof(*h) + n);
	if (!h) {
		conn_close(c, -1, "out of memory");
		return true;
	}
	h->conn = c;
	h->len = (uint32_t)n;
	memcpy(h->bytes, buf, n); /* buf may be c->in */
	in_release(c);
	c->state = CONN_MOVING;
	/*
	 * libev takes a stopped descriptor out of epoll lazily: the first
	 * event the socket gets after this wakes this shard once, and libev
	 * then removes it (by number, from this shard's own epoll set; its
	 * generation count covers a number reused meanwhile).
	 */
	ev_io_stop(sh->loop, &c->io);
	shard_move(sh, c, to, h);
	return true;
}

void conn_handoff_drop(struct conn_handoff *h)
{
	struct conn *c = h->conn;

	/* Never attached anywhere again: counted out as conn_free does. */
	free(h);
	conn_free(c);
}

/*
 * The first packet (len bytes at buf, n read from there on), decoded once
 * both to pick the client's shard and to connect it.  true when the
 * connection moved to another shard with the n bytes.
 */
static bool conn_handle_first(struct conn *c, const uint8_t *buf, size_t len,
			      size_t n)
{
	struct mqtt_packet pkt;
	int rc;

	/* [MQTT-3.1.0-1]: the first packet must be CONNECT. */
	if ((buf[0] >> 4) != MQTT_CONNECT) {
		conn_close(c, -1, "first packet is not CONNECT");
		return false;
	}
	rc = mqtt_decode(buf, len, MQTT_V5, &pkt);
	if (rc < 0) {
		c->shard->stats.malformed++;
		conn_refuse_connect(c, rc, &pkt.u.connect);
		return false;
	}
	if (hand_over(c, &pkt.u.connect, buf, n))
		return true;
	rc = handle_connect(c, &pkt.u.connect, buf, len);
	if (rc > 0)
		conn_close(c, -1, mqtt_rc_str((uint8_t)rc));
	return false;
}

/*
 * Frame and handle every complete packet in buf[0..len); returns the bytes
 * consumed (the rest is the start of a packet still arriving).  Stops early
 * when the connection closes.
 */
static size_t conn_process(struct conn *c, const uint8_t *buf, size_t len)
{
	const struct broker_limits *lim = &c->shard->broker->limits;
	size_t off = 0, plen;

	while (c->state != CONN_CLOSING && c->state != CONN_MOVING &&
	       !c->broken) {
		uint32_t max = c->state != CONN_ACTIVE ? PRE_CONNECT_MAX :
			       lim->max_packet_size;
		int rc = mqtt_frame_peek(buf + off, len - off, max, &plen);

		if (rc == MQTT_E_INCOMPLETE)
			break;
		if (rc < 0) {
			if (c->state == CONN_NEW)
				conn_close(c, -1, mqtt_err_str(rc));
			else
				conn_protocol_error(c, rc, NULL);
			break;
		}
		if (c->state == CONN_NEW) {
			if (conn_handle_first(c, buf + off, plen, len - off))
				return len;
		} else {
			conn_handle_packet(c, buf + off, plen);
		}
		off += plen;
	}
	return off;
}

/* Room for need more bytes after in_len in the connection's own buffer. */
static bool in_reserve(struct conn *c, size_t need)
{
	size_t cap;
	uint8_t *p;

	if (in_cap(c) - c->in_len >= need)
		return true;
	cap = c->in_cap_log2 ? in_cap(c) : IN_BASE;
	while (cap - c->in_len < need)
		cap *= 2;
	/* The framer refuses packets far below this. */
	if (cap > UINT32_MAX)
		return false;
	p = buf_grow(c->shard, c->in, in_cap(c), c->in_len, cap);
	if (!p)
		return false;
	c->in = p;
	c->in_cap_log2 = cap_log2(cap, IN_BASE);
	return true;
}

static void in_release(struct conn *c)
{
	bufpool_put(&c->shard->bufs, c->in, in_cap(c));
	c->in = NULL;
	c->in_len = 0;
	c->in_cap_log2 = 0;
}

/* recv() into buf; false when the connection was closed. */
static bool conn_recv(struct conn *c, uint8_t *buf, size_t room, size_t *got)
{
	ssize_t n = recv(c->io.fd, buf, room, 0);

	*got = 0;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return true;
		conn_close(c, -1, strerror(errno));
		return false;
	}
	if (n == 0) {
		conn_close(c, -1, "connection closed by peer");
		return false;
	}
	*got = (size_t)n;
	c->shard->stats.bytes_received += (uint64_t)n;
	/*
	 * Keep alive counts from the last packet; connect_timeout from accept,
	 * so a client dripping bytes of a CONNECT cannot hold a slot forever.
	 */
	if (c->state == CONN_ACTIVE)
		c->last_activity = shard_now(c->shard);
	return true;
}

/*
 * Reads go into the shard's buffer and are decoded there; only the tail of
 * a packet still arriving is copied into the connection's own buffer, and
 * that buffer is released as soon as the packet completes.  So an idle
 * connection holds no input buffer at all.
 */
static void conn_read_ready(struct conn *c)
{
	struct shard *sh = c->shard;
	size_t got, used;

	if (c->in_len) {
		/* A packet is arriving in pieces: continue it in place. */
		size_t plen = 0, need;

		/*
		 * Grow with what arrives, not with what the header announces:
		 * a peer that promises 256 MB must send it first.
		 */
		mqtt_frame_peek(c->in, c->in_len, 0, &plen);
		need = plen > c->in_len ? plen - c->in_len : 1024;
		if (need > SHARD_RBUF_SIZE)
			need = SHARD_RBUF_SIZE;
		if (!in_reserve(c, need)) {
			conn_close(c, -1, "out of memory");
			return;
		}
		if (!conn_recv(c, c->in + c->in_len, in_cap(c) - c->in_len, &got) ||
		    !got)
			return;
		c->in_len += (uint32_t)got; /* at most in_cap(c) */
		used = conn_process(c, c->in, c->in_len);
		if (c->state == CONN_CLOSING || c->state == CONN_MOVING)
			return;
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= (uint32_t)used;
		if (c->in_len == 0)
			in_release(c);
		return;
	}
	if (!conn_recv(c, sh->rbuf, SHARD_RBUF_SIZE, &got) || !got)
		return;
	used = conn_process(c, sh->rbuf, got);
	if (c->state == CONN_CLOSING || c->state == CONN_MOVING || used == got)
		return;
	if (!in_reserve(c, got - used)) {
		conn_close(c, -1, "out of memory");
		return;
	}
	memcpy(c->in, sh->rbuf + used, got - used);
	c->in_len = (uint32_t)(got - used);
}

void conn_adopt(struct shard *sh, struct conn_handoff *h)
{
	struct conn *c = h->conn;
	size_t used;

	c->state = CONN_NEW;
	shard_attach(sh, c);
	ev_io_init(&c->io, conn_io_cb, c->io.fd, EV_READ);
	ev_io_start(sh->loop, &c->io);
	/* connect_timeout still counts from the accept (last_activity). */
	shard_watch_timeout(sh, c);
	used = conn_process(c, h->bytes, h->len);
	if (c->state != CONN_CLOSING && c->state != CONN_MOVING &&
	    used < h->len) {
		if (in_reserve(c, h->len - used)) {
			memcpy(c->in, h->bytes + used, h->len - used);
			c->in_len = (uint32_t)(h->len - used);
		} else {
			conn_close(c, -1, "out of memory");
		}
	}
	free(h);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, io);

	(void)loop;
	if (revents & EV_WRITE)
		conn_write_ready(c);
	if ((revents & EV_READ) && c->state != CONN_CLOSING)
		conn_read_ready(c);
}
