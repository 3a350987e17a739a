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

#endif
