/*
 * Integration test harness: start a real cicada process on a free loopback
 * port with a generated configuration, talk to it over raw sockets (for
 * what Paho cannot send), and stop it, checking it exits cleanly.
 */
#ifndef CICADA_TESTS_HARNESS_H
#define CICADA_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker_proc {
	pid_t pid;
	int port;
	char dir[64]; /* scratch directory: config, log */
	char conf[128];
	char log[128];
	char uri[64]; /* "tcp://127.0.0.1:PORT" for Paho */
};

/*
 * Start cicada with "listener PORT 127.0.0.1", "allow_anonymous true",
 * "persistence false" and the extra config lines given (may be NULL).
 * Waits until the port accepts connections (at most 10 s).  Returns 0.
 */
int broker_start(struct broker_proc *b, const char *extra_config);
/*
 * broker_start() for a Check fixture: fails the test when cicada does not
 * start.  A test process that dies takes its broker along (the broker gets
 * SIGKILL when its parent exits), so no fixture needs an atexit handler.
 */
void broker_start_checked(struct broker_proc *b, const char *extra_config);
/* SIGTERM and wait (at most 10 s); returns the exit status, or -1. */
int broker_stop(struct broker_proc *b);
/* Send a signal (SIGHUP for reloads, SIGKILL for crash tests). */
void broker_signal(struct broker_proc *b, int sig);
/* Whether the broker's log contains the text. */
bool broker_log_contains(const struct broker_proc *b, const char *text);

/* Raw TCP client to the broker; -1 on failure. */
int raw_connect(const struct broker_proc *b);
/* Write all bytes; 0 or -1. */
int raw_send(int fd, const void *buf, size_t len);
/*
 * Read one whole MQTT packet (fixed header included) within timeout_ms.
 * Returns its length, 0 when the broker closed the connection, -1 on
 * timeout or error.
 */
ssize_t raw_recv_packet(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* Whether the broker closes the connection within timeout_ms (any
 * packets before the close are skipped). */
bool raw_wait_closed(int fd, int timeout_ms);
/* Send a minimal CONNECT (clean start, keep alive 60) and read CONNACK;
 * returns the CONNACK reason/return code or -1. */
int raw_mqtt_connect(int fd, uint8_t version, const char *client_id);

/* Path of the cicada binary under test (CICADA_BIN or ../../cicada). */
const char *cicada_bin(void);

/* ------------------------------------------------------------------ */
/* Helpers added for 04-retain, 05-session, 07-will and 08-ops.        */

#include <MQTTClient.h>

#include "protocol/mqtt.h"

/* A free loopback TCP port (bound to port 0, then released), or -1. */
int harness_free_port(void);
/* Wait (at most timeout_ms) until the broker's log contains text. */
bool broker_wait_log(const struct broker_proc *b, const char *text,
		     int timeout_ms);

/* Lines of the broker's log containing text and also (also may be NULL). */
int broker_log_count(const struct broker_proc *b, const char *text,
		     const char *also);
/* Wait (at most timeout_ms) until broker_log_count() reaches n. */
bool broker_wait_log_count(const struct broker_proc *b, const char *text,
			   const char *also, int n, int timeout_ms);
/* "127.0.0.1:PORT" of a raw connection's own end (the broker's peer). */
void raw_local_addr(int fd, char *buf, size_t len);

/* Encode pkt for the protocol level and send it; 0 or -1. */
int raw_send_packet(int fd, const struct mqtt_packet *pkt, uint8_t version);
/*
 * Read one packet within timeout_ms and decode it for the protocol level
 * (*out points into buf).  Returns the packet type (> 0), 0 when the
 * broker closed the connection, -1 on timeout or error, -2 when the bytes
 * do not decode.
 */
int raw_recv_decoded(int fd, uint8_t *buf, size_t cap, int timeout_ms,
		     uint8_t version, struct mqtt_packet *out);
/* A CONNECT for raw_mqtt_connect_ex: clean start, keep alive 60. */
void raw_connect_init(struct mqtt_connect *c, uint8_t version,
		      const char *client_id);
/*
 * Send the CONNECT and read the CONNACK into *ack (views into buf).
 * Returns the CONNACK reason / return code, or -1.
 */
int raw_mqtt_connect_ex(int fd, const struct mqtt_connect *c, uint8_t *buf,
			size_t cap, struct mqtt_connack *ack);
/* SUBSCRIBE one filter with the options byte; returns the SUBACK code or -1. */
int raw_subscribe(int fd, uint8_t version, uint16_t packet_id,
		  const char *filter, uint8_t options);
/* Send PUBACK, PUBREC, PUBREL or PUBCOMP (reason 0); 0 or -1. */
int raw_send_ack(int fd, uint8_t version, uint8_t type, uint16_t packet_id);

/* Check assertions on a raw connection. */
/* The next packet (within timeout_ms) is exactly these bytes. */
void raw_expect_bytes(int fd, const uint8_t *want, size_t len,
		      int timeout_ms);
/* The broker closes the connection without sending anything more. */
void raw_expect_closed(int fd, int timeout_ms);
/* Nothing arrives within quiet_ms and the connection stays open. */
void raw_expect_quiet(int fd, int quiet_ms);

/*
 * Paho synchronous client connected to b with protocol level 4 or 5.
 * clean: Clean Session (3.1.1) / Clean Start (5.0); session_expiry: 5.0
 * Session Expiry Interval (0: none sent).  *present (may be NULL) gets
 * Session Present.  NULL when the connection fails.
 */
MQTTClient pc_connect(const struct broker_proc *b, const char *client_id,
		      int version, bool clean, uint32_t session_expiry,
		      bool *present);
/* Subscribe (5.0: with the options given, may be NULL); returns the
 * SUBACK code (granted QoS or reason), or -1 on a client error. */
int pc_subscribe(MQTTClient c, int version, const char *filter, int qos,
		 const MQTTSubscribe_options *opts);
/* Publish (5.0: with props, may be NULL) and wait for completion; 0 or -1. */
int pc_publish(MQTTClient c, int version, const char *topic,
	       const void *payload, int len, int qos, bool retain,
	       MQTTProperties *props);
/* Publish a NUL-terminated string payload. */
int pc_publish_str(MQTTClient c, int version, const char *topic,
		   const char *payload, int qos, bool retain);
/*
 * Receive one message within timeout_ms: 1 and *topic, *msg set (free
 * with pc_free), 0 on timeout, -1 on error (connection lost).
 */
int pc_receive(MQTTClient c, int timeout_ms, char **topic,
	       MQTTClient_message **msg);
void pc_free(char **topic, MQTTClient_message **msg);
/* Normal DISCONNECT (if connected) and destroy; *c becomes NULL. */
void pc_close(MQTTClient *c);
/* After a clean broker_stop(): remove the scratch directory's config and
 * log (kept when a test fails, for reading). */
void broker_remove_files(const struct broker_proc *b);

/* ------------------------------------------------------------------ */
/* Helpers added for the restart and crash tests of tests/system/.     */

/*
 * Start cicada again after broker_stop() or broker_kill(): the same
 * configuration file, port and scratch directory, its output appended to
 * the same log.  Waits until the port accepts connections (at most
 * 10 s).  Returns 0, or -1 (the broker is then not running).
 */
int broker_restart(struct broker_proc *b);
/* SIGKILL and reap: returns 0 when cicada died of the SIGKILL, 1 when it
 * had already exited by itself, -1 when no broker was running. */
int broker_kill(struct broker_proc *b);

/* Monotonic milliseconds, for the tests' deadlines. */
long harness_now_ms(void);

/* What harness_run_cicada() saw. */
struct cicada_run {
	int status; /* exit status, 128 + signal, or -1: killed after 5 s */
	char out[8192], err[8192];
};

/*
 * Run cicada with args (NULL-terminated, without argv[0]) for at most 5 s,
 * capturing its standard output and error.
 */
void harness_run_cicada(struct cicada_run *r, const char *const *args);

#endif
