/*
 * bench.h: private header of cicada-bench, the MQTT load generator.  The
 * run's options and shared state, the workers (one libev loop per thread),
 * connections, publishers and subscribers, per-(publisher, subscriber)
 * sequence tracking and the latency histogram.  Only the bench's own
 * sources include it.
 *
 * Threads: the main thread runs the control loop (phases, measurement,
 * report); each worker thread owns its loop and its connections.  What one
 * thread writes and another reads is _Atomic: per-worker delivery counts,
 * per-publisher counters (struct pub_shared) and the run's phase.
 */
#ifndef CICADA_BENCH_H
#define CICADA_BENCH_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "protocol/mqtt.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define CACHELINE 64

/* Payload: send time (CLOCK_MONOTONIC ns), publisher id, sequence. */
#define PAYLOAD_TS_OFF 0
#define PAYLOAD_PUB_OFF 8
#define PAYLOAD_SEQ_OFF 12
#define PAYLOAD_MIN 20
#define PAYLOAD_MAX (1u << 20)

#define TOPIC_MAX 96
#define PUB_HDR_MAX (TOPIC_MAX + 16)

enum scenario {
	SC_PAIRS,
	SC_FANOUT,
	SC_FANIN,
	SC_LATENCY,
	SC_CONNS,
};

/* The run goes through these in order; PH_STOP may come early (abort). */
enum phase {
	PH_SETUP,   /* connecting and subscribing */
	PH_WARMUP,  /* publishing, not measured */
	PH_MEASURE, /* publishing, measured; conns: holding idle */
	PH_DRAIN,   /* publishers stopped, waiting for what is in flight */
	PH_STOP,    /* disconnect and leave */
};

struct opts {
	enum scenario scenario;
	const char *scenario_name;
	const char *host;
	uint16_t port;
	uint32_t n;          /* pairs, fanout subscribers, conns connections */
	uint32_t pubs;       /* fanin publishers */
	uint32_t subs;       /* fanin subscribers */
	uint8_t qos;
	uint8_t version;     /* MQTT_V311 or MQTT_V5 */
	uint32_t size;       /* payload bytes */
	uint32_t window;     /* QoS 1/2 messages in flight per publisher */
	uint32_t backlog;    /* undelivered messages per publisher */
	double rate;         /* total msg/s; 0: as fast as the backlog allows */
	double duration;     /* measured seconds (conns: idle hold) */
	double warmup;
	double drain;        /* longest wait for what is in flight at the end */
	double connect_timeout;
	uint32_t threads;
	uint32_t sources;    /* source addresses 127.0.0.2.. (0: none) */
	bool sources_set;
	uint32_t concurrency; /* connections being opened at once, per thread */
	uint16_t keepalive;
	long pid;            /* broker pid for RSS, 0: none */
	const char *prefix;  /* topic prefix; default cicada-bench/RUNID */
	bool quiet;          /* no per-second lines */
	bool durable;        /* subscribers keep sessions the broker persists */
};

/* Durable sessions are removed at the end within this many seconds. */
#define CLEANUP_SECONDS 10.0

/* Latency histogram: log-linear, 2^(HIST_SUB_BITS-1) buckets per octave. */
#define HIST_SUB_BITS 7
#define HIST_BUCKETS ((66 - HIST_SUB_BITS) << (HIST_SUB_BITS - 1))

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1), in the unit recorded; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/*
 * What one subscriber saw of one publisher.  next is one past the highest
 * sequence received; bit i of recent says whether next - 1 - i arrived, so
 * a late arrival inside the last 64 tells a duplicate from a reordering.
 */
struct track {
	uint64_t next;
	uint64_t recent;
	uint64_t received; /* distinct sequences */
	uint64_t dup;
	uint64_t reorder;
};

/*
 * Account sequence seq on t.  Returns how far t->next moved, which is
 * this subscriber's contribution to the publisher's progress.
 */
uint64_t track_seq(struct track *t, uint64_t seq);

/* VmRSS of a process in kB, or -1. */
long proc_rss_kb(long pid);
uint64_t mono_ns(void);

/*
 * A publisher's counters that other threads read or write; one cache
 * line each.  progress is the sum over the publisher's subscribers of
 * how far each has got (track.next): sent * fanout - progress is the
 * publisher's backlog in deliveries.
 */
struct pub_shared {
	_Alignas(CACHELINE) _Atomic uint64_t progress;
	_Atomic uint64_t sent;   /* written by the owner only */
	_Atomic uint64_t done;   /* acknowledged; QoS 0: = sent */
	_Atomic int paused;      /* owner waits for progress to wake it */
	struct worker *owner;
};

struct buf {
	uint8_t *data;
	size_t off; /* first byte not yet written (output) */
	size_t len;
	size_t cap;
};

enum role {
	ROLE_SUB,
	ROLE_PUB,
	ROLE_IDLE,
};

/*
 * --durable: a subscriber's session is removed at the end.  Its connection
 * sends DISCONNECT (MQTT 5: Session Expiry Interval 0) and waits for the
 * broker to close; then a new connection with the same client id sends
 * CONNECT (3.1.1: clean session 1; 5.0: clean start 0, no expiry, which
 * also tells whether the session outlived that DISCONNECT) and DISCONNECT.
 */
enum cleanup_stage {
	CU_NONE,
	CU_CLOSING,    /* DISCONNECT sent, waiting for the broker's close */
	CU_WAIT,       /* to reconnect */
	CU_CONNECTING, /* clean CONNECT sent, waiting for CONNACK */
	CU_FINAL,      /* DISCONNECT sent on it, waiting for the close */
	CU_DONE,
	CU_FAILED,
};

enum conn_state {
	CS_NEW,
	CS_CONNECTING,  /* CONNECT sent, waiting for CONNACK */
	CS_SUBSCRIBING, /* SUBSCRIBE sent, waiting for SUBACK */
	CS_READY,
	CS_CLOSED,
};

struct conn {
	ev_io rio;
	ev_io wio;
	struct worker *w;
	struct conn *next_dirty; /* worker's flush list */
	struct buf out;
	struct buf in;           /* a partial packet between reads */
	ev_tstamp last_tx;       /* for keep alive */
	int fd;
	uint32_t id;             /* index in run->conns */
	uint8_t role;
	uint8_t state;
	bool dirty;
	bool writing;            /* wio started */
	bool shut_wr;            /* shut the write side once out is written */
	uint8_t cleanup;         /* enum cleanup_stage */
	struct conn *next_cleanup; /* worker's queue of CU_WAIT */
	struct pub *pub;
	struct sub *sub;
};

/* Publisher slot states. */
enum {
	PID_FREE = 0,
	PID_WAIT_ACK,  /* PUBACK or PUBREC */
	PID_WAIT_COMP, /* PUBCOMP */
};

struct pub {
	struct conn *c;
	struct pub_shared *sh;
	uint32_t id;
	uint32_t fanout;       /* subscribers that receive each message */
	uint64_t seq;          /* messages published = next sequence */
	uint64_t done;         /* acknowledged */
	uint32_t window;       /* QoS 1/2: min(--window, Receive Maximum) */
	uint32_t inflight;
	uint16_t pid_space;    /* packet ids 1..pid_space */
	uint16_t next_pid;
	uint8_t *pid_state;    /* [pid_space + 1] */
	uint64_t *pid_ts;      /* [pid_space + 1]: send time, for ack latency */
	bool blocked;          /* paused on the backlog */
	uint64_t blocked_progress; /* progress when last seen blocked */
	unsigned blocked_ticks;
	uint64_t written_off;  /* QoS 0 deliveries given up on */
	double rate;           /* msg/s, rate mode */
	double phase_frac;     /* spreads publishers' sends in time */
	uint64_t rate_skip;    /* sends dropped from the schedule */
	size_t hdr_len;
	size_t pid_off;
	uint8_t hdr[PUB_HDR_MAX];
	char topic[TOPIC_MAX];
};

struct sub {
	struct conn *c;
	struct track *tracks;  /* one per publisher it hears */
	uint32_t ntracks;
	uint32_t pub_base;     /* publisher id of tracks[0] */
	uint64_t unexpected;   /* messages not from our publishers */
	char filter[TOPIC_MAX];
};

struct run;

struct worker {
	struct run *run;
	struct ev_loop *loop;
	pthread_t thread;
	uint32_t idx;
	ev_async wake;
	ev_prepare prep;
	ev_timer tick;           /* 0.1 s: keep alive, QoS 0 stall breaker */
	ev_timer pace;           /* rate mode */
	struct conn **conns;
	uint32_t nconns;
	uint32_t next_open;
	uint32_t opening;        /* connecting, not yet ready */
	bool in_open_more;
	struct pub **pubs;
	uint32_t npubs;
	struct conn *dirty;
	uint8_t *rbuf;
	size_t rbuf_cap;
	int phase;               /* the phase this worker last acted on */
	bool measuring;
	unsigned ticks;
	uint64_t rate_t0;
	uint64_t ndelivered;     /* owner's copy of delivered */
	uint8_t ack[4][8];       /* PUBACK PUBREC PUBREL PUBCOMP templates */
	uint8_t ack_len;
	uint8_t ack_pid_off;
	uint8_t ping[2];
	uint8_t disconnect[2];
	uint8_t disconnect_durable[16]; /* 5.0: Session Expiry Interval 0 */
	uint8_t disconnect_durable_len;
	ev_timer cleanup_timer;
	uint32_t cleanup_pending;  /* subscriber sessions not yet removed */
	uint32_t cleanup_opening;  /* clean reconnects awaiting CONNACK */
	struct conn *cleanup_queue; /* CU_WAIT, to reconnect */
	bool in_cleanup_more;
	struct hist hist;
	struct hist ack_hist;      /* publish to PUBACK / PUBCOMP, ns */
	_Alignas(CACHELINE) _Atomic uint64_t delivered;
};

struct run {
	struct opts o;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct sockaddr_in *src;
	uint32_t nsrc;
	char runid[16];
	char prefix[64];
	uint32_t npubs;
	uint32_t nsubs;
	uint32_t nconns;
	uint32_t max_packet;
	uint8_t *filler;          /* payload bytes after the header */
	struct pub *pubs;
	struct pub_shared *pubsh;
	struct sub *subs;
	struct track *tracks;
	struct conn *conns;
	struct worker *workers;
	uint64_t rate_t0;         /* publishers' time zero, rate mode */
	_Atomic int phase;
	_Atomic uint32_t ready;
	_Atomic uint32_t failed;  /* during setup */
	_Atomic uint32_t closed;  /* by the broker, after setup */
	_Atomic uint64_t errors;  /* protocol errors, refusals */
	_Atomic uint64_t first_connack_ns;
	_Atomic uint64_t last_ready_ns;
	_Atomic uint32_t logged;  /* error lines printed (rate limit) */
	_Atomic uint32_t resumed; /* --durable: session present at setup */
	_Atomic uint32_t cleaned; /* --durable: sessions removed at the end */
	_Atomic uint32_t cleanup_failed;
	_Atomic uint32_t cleanup_present; /* 5.0: outlived DISCONNECT */
};

/* bench_conn.c */
int worker_init(struct worker *w, struct run *run, uint32_t idx);
int worker_start(struct worker *w);
void worker_wake(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);
int pub_prepare(struct run *run, struct pub *p);
void run_error(struct run *run, const struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
