/*
 * Sessions: the registry by client id, subscriptions held, and the
 * delivery machinery: a queue of messages not yet sent, an in-flight list
 * in send order (so a reconnect resends in order [MQTT-4.6.0-1]), packet
 * identifiers, and the QoS 2 ids received and awaiting PUBREL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/msg.h"
#include "broker/objcache.h"
#include "broker/persist.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/subtree.h"

/*
 * QoS 0 messages to a connection with more than this waiting to be written
 * are dropped (and counted) rather than buffered without bound.
 */
#define QOS0_OUT_SOFT_LIMIT (4u * 1024u * 1024u)

uint64_t session_id_hash(const char *id, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)id[i];
		h *= 1099511628211ull;
	}
	return h;
}

static struct session **bucket_of(struct shard *b, const char *id,
				  size_t len)
{
	return &b->sessions[session_id_hash(id, len) &
			    (b->session_buckets - 1)];
}

struct session *session_find(struct shard *sh, const char *id, size_t len)
{
	struct session *s;

	if (!sh->sessions)
		return NULL;
	for (s = *bucket_of(sh, id, len); s; s = s->hnext)
		if (s->client_id_len == len && memcmp(s->client_id, id, len) == 0)
			return s;
	return NULL;
}

/*
 * Keep the load factor at most 2 (chains of 2 are as quick to walk as
 * one, and an idle connection's session costs 4-8 bytes of bucket instead
 * of 8-16); buckets are a power of two.
 */
static int registry_grow(struct shard *b)
{
	size_t n = b->session_buckets ? b->session_buckets * 2 : 1024;
	struct session **nb = calloc(n, sizeof(*nb));
	struct session **old = b->sessions;
	size_t old_n = b->session_buckets;

	if (!nb)
		return -ENOMEM;
	b->sessions = nb;
	b->session_buckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct session *s = old[i], *next;

		for (; s; s = next) {
			struct session **head;

			next = s->hnext;
			head = bucket_of(b, s->client_id, s->client_id_len);
			s->hnext = *head;
			*head = s;
		}
	}
	free(old);
	return 0;
}

struct session *session_new(struct shard *b, const char *id, size_t len)
{
	struct session *s;
	struct session **head;

	if (len > UINT16_MAX) /* an MQTT string is never longer */
		return NULL;
	if (b->session_count >= 2 * b->session_buckets &&
	    registry_grow(b) < 0)
		return NULL;
	s = calloc(1, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	memcpy(s->client_id, id, len);
	s->client_id[len] = '\0';
	s->client_id_len = (uint16_t)len;
	s->shard = b;
	s->inflight_max = UINT16_MAX;
	head = bucket_of(b, id, len);
	s->hnext = *head;
	*head = s;
	b->session_count++;
	return s;
}

/* Nearly all deliveries come from the shard's list; the rest malloc. */
static struct delivery *delivery_alloc(struct session *s, uint8_t ids)
{
	if (ids <= DELIVERY_CACHED_IDS)
		return objcache_get(&s->shard->deliveries);
	return malloc(sizeof(struct delivery) + ids * sizeof(uint32_t));
}

static void delivery_free(struct session *s, struct delivery *d)
{
	persist_delivery_done(s, d);
	msg_unref(d->msg);
	if (d->sub_id_count <= DELIVERY_CACHED_IDS)
		objcache_put(&s->shard->deliveries, d);
	else
		free(d);
}

static void free_deliveries(struct session *s, struct delivery *d)
{
	struct delivery *next;

	for (; d; d = next) {
		next = d->next;
		delivery_free(s, d);
	}
}

/*
 * Messages this session got through a shared group and never completed go
 * to another member of that group [MQTT 5.0 section 4.8.2].  Runs while the
 * session is still a member, so every group it names still exists.
 */
static void hand_over_shared(struct session *s, struct delivery *d)
{
	for (; d; d = d->next) {
		struct sub_opts opts;
		void *other;

		/*
		 * A QoS 2 message already sent is never sent to another
		 * member [MQTT-4.8.2-5]; QoS 1 ones go, as 4.8.2 advises.
		 */
		if (!d->shared_group || (d->qos == 2 && d->state != DLV_QUEUED))
			continue;
		if (subtree_group_pick(d->shared_group, s, &other, &opts))
			session_deliver_sub(other, d->msg, d->retain, &opts,
					    d->shared_group);
		else /* No other member here: one on another shard. */
			shard_post_shared(s->shard, d->shared_group, d->msg,
					  d->retain);
	}
}

void session_forget_group(struct session *s, const char *shared_group)
{
	struct delivery *lists[2] = { s->inflight, s->queue };

	for (int i = 0; i < 2; i++)
		for (struct delivery *d = lists[i]; d; d = d->next)
			if (d->shared_group == shared_group)
				d->shared_group = NULL;
}

void session_destroy(struct session *s)
{
	struct shard *b = s->shard;
	struct session **pp = bucket_of(b, s->client_id, s->client_id_len);
	struct session_sub *sub, *next;

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	b->session_count--;
	persist_session_end(s);
	hand_over_shared(s, s->inflight);
	hand_over_shared(s, s->queue);
	/* The session ends before the will delay: the will goes now. */
	session_send_will(s);
	for (sub = s->subs; sub; sub = next) {
		next = sub->next;
		shard_sub_remove(b, sub->filter, sub->len, s);
		free(sub);
	}
	free_deliveries(s, s->inflight);
	free_deliveries(s, s->queue);
	free(s->qos2_in);
	free(s);
}

void session_park_will(struct session *s, struct msg *will, double will_at,
		       uint32_t expiry_interval)
{
	session_cancel_will(s);
	s->will = will;
	s->will_at = will_at;
	s->will_expiry = expiry_interval;
}

void session_cancel_will(struct session *s)
{
	if (!s->will)
		return;
	persist_will_drop(s);
	msg_unref(s->will);
	s->will = NULL;
}

void session_send_will(struct session *s)
{
	struct msg *will = s->will;

	if (!will)
		return;
	persist_will_drop(s);
	s->will = NULL;
	if (s->persisted)
		persist_session(s);
	route_will(s->shard, will, s->will_expiry);
}

void session_destroy_all(struct shard *b)
{
	for (size_t i = 0; i < b->session_buckets; i++)
		while (b->sessions[i])
			session_destroy(b->sessions[i]);
	free(b->sessions);
	b->sessions = NULL;
	b->session_buckets = 0;
}

/* The SUBSCRIBE options byte [MQTT-3.8.3.1]. */
static uint8_t options_byte(const struct sub_opts *o)
{
	return (uint8_t)(o->qos | (o->no_local << 2) |
			 (o->retain_as_published << 3) |
			 (o->retain_handling << 4));
}

int session_add_sub(struct session *s, const char *filter, size_t len,
		    const struct sub_opts *opts)
{
	struct session_sub *sub;

	for (sub = s->subs; sub; sub = sub->next)
		if (sub->len == len && memcmp(sub->filter, filter, len) == 0)
			break;
	if (!sub) {
		sub = malloc(sizeof(*sub) + len + 1);
		if (!sub)
			return -ENOMEM;
		sub->len = len;
		memcpy(sub->filter, filter, len);
		sub->filter[len] = '\0';
		sub->next = s->subs;
		s->subs = sub;
		s->sub_count++;
	}
	sub->qos = opts->qos;
	sub->options = options_byte(opts);
	sub->sub_id = opts->subscription_id;
	persist_sub(s, sub);
	return 0;
}

bool session_remove_sub(struct session *s, const char *filter, size_t len)
{
	struct session_sub **pp;

	for (pp = &s->subs; *pp; pp = &(*pp)->next) {
		struct session_sub *sub = *pp;

		if (sub->len == len && memcmp(sub->filter, filter, len) == 0) {
			*pp = sub->next;
			free(sub);
			s->sub_count--;
			persist_unsub(s, filter, len);
			return true;
		}
	}
	return false;
}

static bool is_online(const struct session *s)
{
	return s->conn && s->conn->state == CONN_ACTIVE;
}

static bool is_expired(const struct session *s, const struct msg *msg)
{
	return msg->expiry_at &&
	       msg->expiry_at <= shard_now_ms(s->shard);
}

static bool queue_is_full(const struct session *s, const struct msg *msg)
{
	const struct broker_limits *lim = &s->shard->broker->limits;

	if (lim->max_queued_messages &&
	    s->queued_count >= lim->max_queued_messages)
		return true;
	return lim->max_queued_bytes &&
	       s->queued_bytes + msg->payload_len > lim->max_queued_bytes;
}


/*
 * The queue is full and a QoS 1/2 message arrives: the oldest queued QoS 0
 * message makes room (DESIGN.md: QoS 0 is dropped first).  false: none.
 */
static bool drop_queued_qos0(struct session *s)
{
	struct delivery *prev = NULL, *d;

	/* Counted, so a queue of QoS 1/2 only is not walked per message. */
	if (!s->queued_qos0)
		return false;
	for (d = s->queue; d && d->qos != 0; d = d->next)
		prev = d;
	if (!d)
		return false;
	if (prev)
		prev->next = d->next;
	else
		s->queue = d->next;
	if (s->queue_tail == d)
		s->queue_tail = prev;
	s->queued_count--;
	s->queued_qos0--;
	s->queued_bytes -= d->msg->payload_len;
	s->shard->stats.publish_dropped++;
	delivery_free(s, d);
	return true;
}

void session_deliver(struct session *s, struct msg *msg, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint8_t sub_id_count,
		     const char *shared_group)
{
	struct shard *sh = s->shard;
	const struct broker *b = sh->broker;
	struct delivery *d;

	if (is_expired(s, msg))
		return;
	if (qos == 0 && is_online(s) && !s->queue) {
		if (conn_pending(s->conn) > QOS0_OUT_SOFT_LIMIT) {
			sh->stats.publish_dropped++;
			return;
		}
		conn_send_publish(s->conn, msg, 0, retain, false, 0, sub_ids,
				  sub_id_count);
		return;
	}
	if (qos == 0 && !is_online(s) && !b->limits.queue_qos0_messages)
		return;
	if (queue_is_full(s, msg) && (qos == 0 || !drop_queued_qos0(s))) {
		sh->stats.publish_dropped++;
		return;
	}
	d = delivery_alloc(s, sub_id_count);
	if (!d) {
		sh->stats.publish_dropped++;
		return;
	}
	d->next = NULL;
	d->msg = msg_ref(msg);
	d->store_id = 0;
	d->packet_id = 0;
	d->qos = qos;
	d->state = DLV_QUEUED;
	d->retain = retain;
	d->shared_group = qos ? shared_group : NULL;
	d->sub_id_count = sub_id_count;
	if (sub_id_count)
		memcpy(d->sub_ids, sub_ids, sub_id_count * sizeof(uint32_t));
	if (s->queue_tail)
		s->queue_tail->next = d;
	else
		s->queue = d;
	s->queue_tail = d;
	s->queued_count++;
	s->queued_qos0 += qos == 0;
	s->queued_bytes += msg->payload_len;
	persist_delivery_new(s, d);
	session_pump(s);
}

static bool packet_id_in_use(const struct session *s, uint16_t id)
{
	for (const struct delivery *d = s->inflight; d; d = d->next)
		if (d->packet_id == id)
			return true;
	return false;
}

static void advance_packet_id(struct session *s)
{
	s->last_packet_id++;
	if (s->last_packet_id == 0)
		s->last_packet_id = 1;
}

/*
 * The next free packet identifier; the window is far below 65535.
 *
 * Ids are taken in sequence and the in-flight list is in the order they
 * were taken, so its ids run forward (around 65535) from the oldest one
 * to last_packet_id: the next id can only be in use if it is the oldest
 * one's, and only that is checked.  Scanning every time cost a third of
 * the CPU at windows of 1,000.  Once ids were skipped (a wrap-around met
 * ids still in flight) or came from storage, the order no longer holds:
 * then the list is scanned until it empties.
 */
static uint16_t next_packet_id(struct session *s)
{
	if (!s->inflight)
		s->ids_unordered = false;
	advance_packet_id(s);
	if (!s->inflight || (!s->ids_unordered &&
			     s->last_packet_id != s->inflight->packet_id))
		return s->last_packet_id;
	if (packet_id_in_use(s, s->last_packet_id)) {
		s->ids_unordered = true;
		do
			advance_packet_id(s);
		while (packet_id_in_use(s, s->last_packet_id));
	}
	return s->last_packet_id;
}

static struct delivery *queue_pop(struct session *s)
{
	struct delivery *d = s->queue;

	s->queue = d->next;
	if (!s->queue)
		s->queue_tail = NULL;
	d->next = NULL;
	s->queued_count--;
	s->queued_qos0 -= d->qos == 0;
	s->queued_bytes -= d->msg->payload_len;
	return d;
}

static void inflight_append(struct session *s, struct delivery *d)
{
	if (s->inflight_tail)
		s->inflight_tail->next = d;
	else
		s->inflight = d;
	s->inflight_tail = d;
	s->inflight_count++;
}

void session_pump(struct session *s)
{
	while (s->queue && is_online(s) && s->inflight_count < s->inflight_max) {
		struct delivery *d = queue_pop(s);
		bool sent;

		if (is_expired(s, d->msg)) {
			delivery_free(s, d);
			continue;
		}
		if (d->qos == 0) {
			conn_send_publish(s->conn, d->msg, 0, d->retain, false,
					  0, d->sub_ids, d->sub_id_count);
			delivery_free(s, d);
			continue;
		}
		d->packet_id = next_packet_id(s);
		d->state = DLV_SENT;
		persist_delivery_state(s, d);
		sent = conn_send_publish(s->conn, d->msg, d->qos, d->retain,
					 false, d->packet_id, d->sub_ids,
					 d->sub_id_count);
		if (!sent) {
			/* Too large for this client: done, as if acknowledged. */
			delivery_free(s, d);
			continue;
		}
		inflight_append(s, d);
	}
}

int session_restore_delivery(struct session *s, struct msg *msg,
			     uint64_t store_id, uint8_t qos, uint8_t state,
			     uint16_t packet_id, bool retain,
			     const uint32_t *sub_ids, uint8_t sub_id_count)
{
	struct delivery *d = delivery_alloc(s, sub_id_count);

	if (!d)
		return -ENOMEM;
	d->next = NULL;
	d->msg = msg_ref(msg);
	d->store_id = store_id;
	d->packet_id = packet_id;
	d->qos = qos;
	d->state = state;
	d->retain = retain;
	d->shared_group = NULL;
	d->sub_id_count = sub_id_count;
	if (sub_id_count)
		memcpy(d->sub_ids, sub_ids, sub_id_count * sizeof(uint32_t));
	if (state == DLV_QUEUED) {
		if (s->queue_tail)
			s->queue_tail->next = d;
		else
			s->queue = d;
		s->queue_tail = d;
		s->queued_count++;
		s->queued_bytes += msg->payload_len;
		return 0;
	}
	inflight_append(s, d);
	s->ids_unordered = true; /* stored ids: next_packet_id() scans */
	if (packet_id > s->last_packet_id)
		s->last_packet_id = packet_id;
	return 0;
}

static void send_pubrel(struct session *s, uint16_t packet_id)
{
	struct mqtt_packet pkt = { .type = MQTT_PUBREL };

	pkt.u.ack.packet_id = packet_id;
	conn_send(s->conn, &pkt);
}

void session_resend_inflight(struct session *s)
{
	for (struct delivery *d = s->inflight; d; d = d->next) {
		if (d->state == DLV_RELEASED)
			send_pubrel(s, d->packet_id);
		else
			conn_send_publish(s->conn, d->msg, d->qos, d->retain,
					  true, d->packet_id, d->sub_ids,
					  d->sub_id_count);
	}
}

bool session_ack(struct session *s, uint16_t packet_id, int packet_type)
{
	struct delivery *prev = NULL, *d;

	for (d = s->inflight; d && d->packet_id != packet_id; d = d->next)
		prev = d;
	if (!d)
		return false;
	switch (packet_type) {
	case MQTT_PUBACK:
		if (d->qos != 1)
			return false;
		break;
	case MQTT_PUBREC:
		if (d->qos != 2)
			return false;
		d->state = DLV_RELEASED;
		persist_delivery_state(s, d);
		send_pubrel(s, packet_id);
		return true;
	case MQTT_PUBCOMP:
		if (d->qos != 2 || d->state != DLV_RELEASED)
			return false; /* [MQTT-4.3.3-3]: PUBREC comes first */
		break;
	default: /* a PUBREC refusing the message ends the exchange */
		if (d->qos != 2 || d->state != DLV_SENT)
			return false;
		break;
	}
	if (prev)
		prev->next = d->next;
	else
		s->inflight = d->next;
	if (s->inflight_tail == d)
		s->inflight_tail = prev;
	s->inflight_count--;
	delivery_free(s, d);
	session_pump(s);
	return true;
}

bool session_qos2_has(const struct session *s, uint16_t id)
{
	for (uint32_t i = 0; i < s->qos2_in_count; i++)
		if (s->qos2_in[i] == id)
			return true;
	return false;
}

int session_qos2_add(struct session *s, uint16_t id)
{
	if (s->qos2_in_count == s->qos2_in_cap) {
		uint32_t cap = s->qos2_in_cap ? s->qos2_in_cap * 2 : 8;
		uint16_t *p = realloc(s->qos2_in, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->qos2_in = p;
		s->qos2_in_cap = cap;
	}
	s->qos2_in[s->qos2_in_count++] = id;
	persist_qos2_in(s, id, true);
	return 0;
}

bool session_qos2_remove(struct session *s, uint16_t id)
{
	for (uint32_t i = 0; i < s->qos2_in_count; i++) {
		if (s->qos2_in[i] == id) {
			s->qos2_in[i] = s->qos2_in[--s->qos2_in_count];
			persist_qos2_in(s, id, false);
			return true;
		}
	}
	return false;
}
