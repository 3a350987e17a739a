/*
 * codec-bench: micro-benchmark of the codec's hot path, the QoS 1 PUBLISH
 * of a 64-byte sensor reading on "sensors/building-1/floor-2/temp", in
 * MQTT 3.1.1 and in MQTT 5.0 with one user property.  Not a test: it times
 * fixed iteration counts and prints ns/op and Mops/s per case, to say what
 * one message costs the codec and to catch regressions in it.
 *
 *   contrib/bench/codec-bench [iterations]     (default 20000000)
 *
 * Cases: mqtt_decode() of one packet; mqtt_encode() of one packet;
 * mqtt_frame_peek() + mqtt_decode() walking a buffer of many packets back
 * to back, as a connection's read buffer is consumed; and
 * mqtt_encode_publish_header(), what the broker does once per (version,
 * QoS) before it writev()s the shared payload.  Every case folds what it
 * produced into a checksum that is printed, so the compiler cannot drop
 * the work, and every iteration changes its input (packet id) so nothing
 * can be hoisted out of the loop.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/mqtt.h"

#define DEFAULT_ITERATIONS 20000000ul
/* Packets in the back-to-back buffer: ~100 KiB, warm in L2 like a busy
 * connection's read buffer, not a single packet hot in L1. */
#define STREAM_PACKETS 1024

static const char topic[] = "sensors/building-1/floor-2/temp";

/* What every case works on, built once. */
struct bench {
	uint8_t version;
	struct mqtt_user_prop user;
	uint8_t payload[64];
	struct mqtt_packet pkt; /* the PUBLISH, encoder form */
	uint8_t wire[256]; /* pkt encoded */
	size_t wire_len;
	size_t pid_off; /* packet id offset in wire */
	uint8_t *stream; /* STREAM_PACKETS packets back to back */
	size_t stream_len;
	uint8_t out[256]; /* encoder output */
};

struct bench_case {
	const char *name;
	uint64_t (*run)(struct bench *b, unsigned long iters);
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "codec-bench: %s: %s\n", what, mqtt_err_str(rc));
	exit(1);
}

/* Packet ids 1..65535: 0 is not a valid packet id. */
static uint16_t packet_id(unsigned long i)
{
	return (uint16_t)(i % 65535u + 1u);
}

static void bench_init(struct bench *b, uint8_t version)
{
	struct mqtt_publish *pub = &b->pkt.u.publish;
	int rc;

	memset(b, 0, sizeof(*b));
	b->version = version;
	for (size_t i = 0; i < sizeof(b->payload); i++)
		b->payload[i] = (uint8_t)('0' + i % 10);
	b->pkt.type = MQTT_PUBLISH;
	pub->qos = 1;
	pub->packet_id = 1;
	pub->topic.data = (const uint8_t *)topic;
	pub->topic.len = sizeof(topic) - 1;
	pub->payload.data = b->payload;
	pub->payload.len = sizeof(b->payload);
	if (version == MQTT_V5) {
		b->user.name.data = (const uint8_t *)"unit";
		b->user.name.len = 4;
		b->user.value.data = (const uint8_t *)"celsius";
		b->user.value.len = 7;
		mqtt_props_set(&pub->props, MQTT_PROP_USER_PROPERTY);
		pub->props.users = &b->user;
		pub->props.user_count = 1;
	}

	rc = mqtt_encode_publish_header(pub, version, b->wire, sizeof(b->wire),
					&b->pid_off);
	if (rc < 0)
		die("publish header", rc);
	rc = mqtt_encode(&b->pkt, version, b->wire, sizeof(b->wire));
	if (rc < 0)
		die("encode", rc);
	b->wire_len = (size_t)rc;

	b->stream_len = b->wire_len * STREAM_PACKETS;
	b->stream = malloc(b->stream_len);
	if (!b->stream) {
		fprintf(stderr, "codec-bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < STREAM_PACKETS; i++) {
		uint8_t *p = b->stream + i * b->wire_len;

		memcpy(p, b->wire, b->wire_len);
		mqtt_publish_set_packet_id(p, b->pid_off, packet_id(i));
	}
}

static uint64_t fold(const struct mqtt_packet *pkt)
{
	const struct mqtt_publish *pub = &pkt->u.publish;

	return pub->packet_id + pub->topic.len + pub->payload.len +
	       pub->payload.data[pub->payload.len - 1] + pub->props.user_count;
}

static uint64_t run_decode(struct bench *b, unsigned long iters)
{
	struct mqtt_packet pkt;
	uint64_t sum = 0;

	for (unsigned long i = 0; i < iters; i++) {
		int rc;

		mqtt_publish_set_packet_id(b->wire, b->pid_off, packet_id(i));
		rc = mqtt_decode(b->wire, b->wire_len, b->version, &pkt);
		if (rc < 0)
			die("decode", rc);
		sum += fold(&pkt);
	}
	return sum;
}

/* Encode from the encoder's form (users array), as a publisher would. */
static uint64_t run_encode(struct bench *b, unsigned long iters)
{
	struct mqtt_packet pkt = b->pkt;
	uint64_t sum = 0;

	for (unsigned long i = 0; i < iters; i++) {
		int rc;

		pkt.u.publish.packet_id = packet_id(i);
		rc = mqtt_encode(&pkt, b->version, b->out, sizeof(b->out));
		if (rc < 0)
			die("encode", rc);
		sum += (uint64_t)rc + b->out[b->pid_off + 1];
	}
	return sum;
}

/*
 * Encode a decoded packet, as the broker forwards one: the user property
 * is copied from the received block (raw), not from an array.
 */
static uint64_t run_reencode(struct bench *b, unsigned long iters)
{
	struct mqtt_packet pkt;
	uint64_t sum = 0;
	int rc = mqtt_decode(b->wire, b->wire_len, b->version, &pkt);

	if (rc < 0)
		die("decode", rc);
	for (unsigned long i = 0; i < iters; i++) {
		pkt.u.publish.packet_id = packet_id(i);
		rc = mqtt_encode(&pkt, b->version, b->out, sizeof(b->out));
		if (rc < 0)
			die("encode", rc);
		sum += (uint64_t)rc + b->out[b->pid_off + 1];
	}
	return sum;
}

static uint64_t run_stream(struct bench *b, unsigned long iters)
{
	struct mqtt_packet pkt;
	uint64_t sum = 0;
	size_t off = 0, plen;

	for (unsigned long i = 0; i < iters; i++) {
		int rc = mqtt_frame_peek(b->stream + off, b->stream_len - off,
					 0, &plen);

		if (rc < 0)
			die("frame peek", rc);
		rc = mqtt_decode(b->stream + off, plen, b->version, &pkt);
		if (rc < 0)
			die("decode", rc);
		sum += fold(&pkt);
		off += plen;
		if (off == b->stream_len)
			off = 0;
	}
	return sum;
}

static uint64_t run_header(struct bench *b, unsigned long iters)
{
	struct mqtt_publish pub = b->pkt.u.publish;
	uint64_t sum = 0;
	size_t pid_off = 0;

	for (unsigned long i = 0; i < iters; i++) {
		int rc;

		pub.packet_id = packet_id(i);
		rc = mqtt_encode_publish_header(&pub, b->version, b->out,
						sizeof(b->out), &pid_off);
		if (rc < 0)
			die("publish header", rc);
		sum += (uint64_t)rc + pid_off + b->out[pid_off + 1];
	}
	return sum;
}

static const struct bench_case cases[] = {
	{ "decode", run_decode },
	{ "encode", run_encode },
	{ "encode decoded (forward)", run_reencode },
	{ "frame_peek+decode stream", run_stream },
	{ "encode_publish_header", run_header },
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static unsigned long parse_iterations(int argc, char **argv)
{
	unsigned long n;
	char *end;

	if (argc < 2)
		return DEFAULT_ITERATIONS;
	errno = 0;
	n = strtoul(argv[1], &end, 10);
	if (argc > 2 || errno || end == argv[1] || *end || n == 0 ||
	    argv[1][0] == '-') {
		fprintf(stderr, "usage: codec-bench [iterations]\n");
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	static const uint8_t versions[] = { MQTT_V311, MQTT_V5 };
	unsigned long iters = parse_iterations(argc, argv);
	uint64_t checksum = 0;
	struct bench b;

	printf("codec-bench: %lu iterations per case, QoS 1 PUBLISH, "
	       "topic \"%s\", 64-byte payload\n", iters, topic);
	printf("%-8s %-26s %8s %10s %9s\n", "version", "case", "pkt B",
	       "ns/op", "Mops/s");
	for (size_t v = 0; v < sizeof(versions); v++) {
		bench_init(&b, versions[v]);
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			unsigned long warm = iters / 20 ? iters / 20 : 1;
			double t0, ns;

			/* Warm caches and branch predictors, untimed. */
			checksum += cases[c].run(&b, warm);
			t0 = now_ns();
			checksum += cases[c].run(&b, iters);
			ns = now_ns() - t0;
			printf("%-8s %-26s %8zu %10.2f %9.2f\n",
			       versions[v] == MQTT_V5 ? "5.0" : "3.1.1",
			       cases[c].name, b.wire_len, ns / (double)iters,
			       (double)iters / ns * 1e3);
		}
		free(b.stream);
	}
	printf("checksum %llu\n", (unsigned long long)checksum);
	return 0;
}
