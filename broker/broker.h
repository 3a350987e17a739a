/*
 * What the whole broker process shares across shards: the configuration
 * values in force, the session registry, the retained store and the
 * counters $SYS reports.  Connection state is never here: it belongs to the
 * shard that accepted the connection.
 */
#ifndef CICADA_BROKER_BROKER_H
#define CICADA_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct persist;
struct retain;
struct session;
struct shard;
struct share_registry;

/* Limits and switches the core consults; filled from struct config. */
struct broker_limits {
	bool retain_available;
	bool queue_qos0_messages;
	long max_connections; /* < 0: unlimited */
	uint32_t max_packet_size; /* 0: the protocol's */
	uint16_t max_inflight_messages; /* 0 means 65535 */
	uint32_t max_queued_messages; /* 0: unlimited */
	uint64_t max_queued_bytes; /* 0: unlimited */
	uint16_t max_keepalive;
	double connect_timeout; /* seconds */
	unsigned sys_interval; /* seconds, 0: off */
	uint16_t topic_alias_maximum; /* what we accept from clients */
	uint8_t max_qos; /* highest QoS served, 0..2 */
	uint16_t max_topic_length; /* bytes of a topic name or filter */
	uint16_t max_topic_levels;
	size_t max_client_id_length;
};

/* Counters: each shard counts its own; $SYS sums them (broker/sys.h). */
struct broker_stats {
	uint64_t clients_total; /* connections accepted */
	uint64_t msgs_received;
	uint64_t msgs_sent;
	uint64_t publish_dropped;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t malformed;
};

struct broker {
	/* Written only while every other shard is paused (shard_pause_all). */
	struct broker_limits limits;
	struct retain *retain;
	/* Retained store: written on publish, read on subscribe and $SYS. */
	pthread_rwlock_t retain_lock;
	struct persist *persist; /* NULL: memory only */
	struct shard *shards; /* shard_count; shards[0] runs on the main thread */
	unsigned shard_count;
	/* Connections on every shard, for max_connections. */
	atomic_long conn_total;
	/* Clients past CONNACK, and the most there have been, for $SYS. */
	atomic_long clients_connected;
	atomic_long clients_maximum;
	/* $share groups and the shards that have members (broker/share.h). */
	struct share_registry *shares;
	double start_time; /* monotonic seconds */
	atomic_uint_fast64_t next_client_number; /* for assigned client ids */
	char *response_information; /* NULL: none (cicada.conf(5)) */
	/* Stop-the-world for SIGHUP (shard_pause_all / shard_resume_all). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_wanted;
	unsigned paused;
};

/* A client got its CONNACK: count it and raise the maximum. */
static inline void broker_client_connected(struct broker *b)
{
	long n = atomic_fetch_add(&b->clients_connected, 1) + 1;
	long max = atomic_load(&b->clients_maximum);

	while (n > max &&
	       !atomic_compare_exchange_weak(&b->clients_maximum, &max, n))
		;
}

#endif
