/*
 * $SYS publication.  Values are retained so a dashboard that subscribes
 * between two intervals sees the latest at once, as with mosquitto.
 * Load averages are exponentially decayed per-minute rates, updated each
 * interval.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/shard.h"
#include "broker/subtree.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static void publish(struct shard *sh, const char *topic, const char *value)
{
	struct msg *m = msg_new(topic, strlen(topic), (const uint8_t *)value,
				strlen(value), NULL, 0, 0, true);

	if (!m)
		return;
	route_message(sh, m);
	msg_unref(m);
}

static void publish_u64(struct shard *sh, const char *topic, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	publish(sh, topic, buf);
}

struct load {
	uint64_t last;
	double per_min;
};

/* One-minute exponentially decayed rate of a counter. */
static double load_update(struct load *l, uint64_t now_count, double dt)
{
	double rate = dt > 0 ? (double)(now_count - l->last) * 60.0 / dt : 0;
	double alpha = 1.0 - exp(-dt / 60.0);

	l->per_min += alpha * (rate - l->per_min);
	l->last = now_count;
	return l->per_min;
}

/* Every shard's counters as it last copied them, added up. */
static void sum_shards(struct broker *b, struct broker_stats *sum,
		       size_t *sessions, size_t *subs)
{
	memset(sum, 0, sizeof(*sum));
	*sessions = *subs = 0;
	for (unsigned i = 0; i < b->shard_count; i++) {
		struct shard *sh = &b->shards[i];

		pthread_mutex_lock(&sh->snap_lock);
		sum->clients_total += sh->snap.clients_total;
		sum->msgs_received += sh->snap.msgs_received;
		sum->msgs_sent += sh->snap.msgs_sent;
		sum->publish_dropped += sh->snap.publish_dropped;
		sum->bytes_received += sh->snap.bytes_received;
		sum->bytes_sent += sh->snap.bytes_sent;
		sum->malformed += sh->snap.malformed;
		*sessions += sh->snap_sessions;
		*subs += sh->snap_subs;
		pthread_mutex_unlock(&sh->snap_lock);
	}
}

/* On shard 0, which publishes for the whole broker. */
void sys_tick(struct shard *sh, double now)
{
	static struct load recv_load, sent_load;
	struct broker *b = sh->broker;
	struct broker_stats sum;
	const struct broker_stats *st = &sum;
	size_t sessions, subs, retained;
	uint64_t connected;
	double dt = now - sh->last_sys;
	char buf[64];

	/* Half a tick of slack: the 1 s timer does not fire exactly on time. */
	if (!b->limits.sys_interval ||
	    (sh->last_sys > 0 && dt < b->limits.sys_interval - 0.5))
		return;
	if (sh->last_sys <= 0)
		dt = 0;
	sh->last_sys = now;
	sum_shards(b, &sum, &sessions, &subs);
	connected = (uint64_t)atomic_load(&b->clients_connected);
	pthread_rwlock_rdlock(&b->retain_lock);
	retained = retain_count(b->retain);
	pthread_rwlock_unlock(&b->retain_lock);
	publish(sh, "$SYS/broker/version", "cicada " PACKAGE_VERSION);
	snprintf(buf, sizeof(buf), "%.0f seconds", now - b->start_time);
	publish(sh, "$SYS/broker/uptime", buf);
	publish_u64(sh, "$SYS/broker/clients/connected", connected);
	publish_u64(sh, "$SYS/broker/clients/active", connected);
	publish_u64(sh, "$SYS/broker/clients/total", sessions);
	publish_u64(sh, "$SYS/broker/clients/maximum",
		    (uint64_t)atomic_load(&b->clients_maximum));
	publish_u64(sh, "$SYS/broker/messages/received", st->msgs_received);
	publish_u64(sh, "$SYS/broker/messages/sent", st->msgs_sent);
	publish_u64(sh, "$SYS/broker/publish/messages/dropped",
		    st->publish_dropped);
	publish_u64(sh, "$SYS/broker/bytes/received", st->bytes_received);
	publish_u64(sh, "$SYS/broker/bytes/sent", st->bytes_sent);
	publish_u64(sh, "$SYS/broker/subscriptions/count", subs);
	publish_u64(sh, "$SYS/broker/retained messages/count", retained);
	snprintf(buf, sizeof(buf), "%.2f",
		 load_update(&recv_load, st->msgs_received, dt));
	publish(sh, "$SYS/broker/load/messages/received/1min", buf);
	snprintf(buf, sizeof(buf), "%.2f",
		 load_update(&sent_load, st->msgs_sent, dt));
	publish(sh, "$SYS/broker/load/messages/sent/1min", buf);
}
