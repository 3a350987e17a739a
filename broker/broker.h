/*
 * What the whole broker process shares across shards: the configuration
 * values in force, the session registry, the retained store and the
 * counters $SYS reports.  Connection state is never here: it belongs to the
 * shard that accepted the connection.
 */
#ifndef CICADA_BROKER_BROKER_H
#define CICADA_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct persist;
struct retain;
struct session;
struct shard;

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

/* Counters; with shards they become per-shard and summed on read. */
struct broker_stats {
	uint64_t clients_total; /* connections accepted */
	uint64_t clients_connected;
	uint64_t clients_maximum;
	uint64_t msgs_received;
	uint64_t msgs_sent;
	uint64_t publish_dropped;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t malformed;
};

struct broker {
	struct broker_limits limits;
	struct broker_stats stats;
	struct retain *retain;
	struct persist *persist; /* NULL: memory only */
	struct shard *shard; /* one for now */
	/* Session registry: client id -> session, chained hash. */
	struct session **sessions;
	size_t session_buckets;
	size_t session_count;
	double start_time; /* monotonic seconds */
	uint64_t next_client_number; /* for assigned client ids */
	char *response_information; /* NULL: none (cicada.conf(5)) */
};

#endif
