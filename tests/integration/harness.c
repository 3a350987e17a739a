/*
 * The integration test harness (see harness.h).  A free port is found by
 * binding port 0 and closing it; the tiny race with another process is
 * acceptable on a test machine and start-up fails loudly if it loses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

const char *cicada_bin(void)
{
	const char *env = getenv("CICADA_BIN");

	return env && *env ? env : "./cicada";
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

long harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int raw_connect(const struct broker_proc *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)b->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/*
 * Run cicada on b's configuration, its output in b's log (truncated or
 * appended to, by log_flag), and wait until its port accepts connections
 * (at most 10 s).  0, or -1 with no broker left running.
 */
static int spawn(struct broker_proc *b, int log_flag)
{
	long deadline;

	b->pid = fork();
	if (b->pid < 0) {
		b->pid = 0;
		return -1;
	}
	if (b->pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | log_flag, 0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		/* A test that dies (failed assertion) takes its broker along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(cicada_bin(), "cicada", "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	deadline = harness_now_ms() + 10000;
	while (harness_now_ms() < deadline) {
		int fd = raw_connect(b);
		int status;

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			return -1;
		}
		usleep(5000);
	}
	broker_kill(b);
	return -1;
}

int broker_start(struct broker_proc *b, const char *extra_config)
{
	FILE *f;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/cicada-test-XXXXXX");
	if (!mkdtemp(b->dir))
		return -1;
	snprintf(b->conf, sizeof(b->conf), "%s/cicada.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/cicada.log", b->dir);
	b->port = free_port();
	if (b->port < 0)
		return -1;
	snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d", b->port);
	f = fopen(b->conf, "w");
	if (!f)
		return -1;
	fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n"
		   "persistence false\nlog_type all\n%s\n",
		b->port, extra_config ? extra_config : "");
	fclose(f);
	return spawn(b, O_TRUNC);
}

void broker_start_checked(struct broker_proc *b, const char *extra_config)
{
	ck_assert_msg(broker_start(b, extra_config) == 0,
		      "cicada did not start (%s)", cicada_bin());
}

void broker_signal(struct broker_proc *b, int sig)
{
	if (b->pid > 0)
		kill(b->pid, sig);
}

int broker_stop(struct broker_proc *b)
{
	long deadline = harness_now_ms() + 10000;
	int status;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGTERM);
	while (harness_now_ms() < deadline) {
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) :
						   128 + WTERMSIG(status);
		}
		usleep(10000);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	b->pid = 0;
	return -1;
}

bool broker_log_contains(const struct broker_proc *b, const char *text)
{
	FILE *f = fopen(b->log, "r");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

int raw_send(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes before the deadline: 1, 0 on EOF, -1 otherwise. */
static int read_full(int fd, uint8_t *buf, size_t len, long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - harness_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = recv(fd, buf, len, 0);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? 0 : -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 1;
}

ssize_t raw_recv_packet(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;
	size_t len = 1, remaining = 0;
	int rc, shift = 0;

	if (cap < 5)
		return -1;
	rc = read_full(fd, buf, 1, deadline);
	if (rc <= 0)
		return rc;
	do {
		if (len == 5)
			return -1;
		rc = read_full(fd, buf + len, 1, deadline);
		if (rc <= 0)
			return rc < 0 ? -1 : 0;
		remaining |= (size_t)(buf[len] & 0x7F) << shift;
		shift += 7;
	} while (buf[len++] & 0x80);
	if (len + remaining > cap)
		return -1;
	rc = read_full(fd, buf + len, remaining, deadline);
	if (rc <= 0)
		return rc < 0 ? -1 : 0;
	return (ssize_t)(len + remaining);
}

bool raw_wait_closed(int fd, int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;
	uint8_t buf[4096];

	while (harness_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - harness_now_ms())) <= 0)
			return false;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return true;
	}
	return false;
}

int raw_mqtt_connect(int fd, uint8_t version, const char *client_id)
{
	uint8_t pkt[300], ack[64];
	size_t id_len = strlen(client_id), n = 0;
	ssize_t got;

	if (id_len > 200)
		return -1;
	pkt[n++] = 0x10;
	pkt[n++] = (uint8_t)(12u + (version == 5 ? 1u : 0u) + id_len);
	memcpy(pkt + n, "\0\4MQTT", 6);
	n += 6;
	pkt[n++] = version;
	pkt[n++] = 0x02; /* clean start */
	pkt[n++] = 0;
	pkt[n++] = 60;
	if (version == 5)
		pkt[n++] = 0; /* no properties */
	pkt[n++] = (uint8_t)(id_len >> 8);
	pkt[n++] = (uint8_t)id_len;
	memcpy(pkt + n, client_id, id_len);
	n += id_len;
	if (raw_send(fd, pkt, n) < 0)
		return -1;
	got = raw_recv_packet(fd, ack, sizeof(ack), 5000);
	if (got < 4 || ack[0] != 0x20)
		return -1;
	return ack[3];
}

/* ------------------------------------------------------------------ */
/* Helpers added for 04-retain, 05-session, 07-will and 08-ops.        */

int harness_free_port(void)
{
	return free_port();
}

bool broker_wait_log(const struct broker_proc *b, const char *text,
		     int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		if (broker_log_contains(b, text))
			return true;
		if (harness_now_ms() >= deadline)
			return false;
		usleep(10000);
	}
}

int broker_log_count(const struct broker_proc *b, const char *text,
		     const char *also)
{
	FILE *f = fopen(b->log, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, text) && (!also || strstr(line, also));
	fclose(f);
	return n;
}

bool broker_wait_log_count(const struct broker_proc *b, const char *text,
			   const char *also, int n, int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		if (broker_log_count(b, text, also) >= n)
			return true;
		if (harness_now_ms() >= deadline)
			return false;
		usleep(5000);
	}
}

void raw_local_addr(int fd, char *buf, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char host[INET_ADDRSTRLEN] = "?";

	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
	snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
}

int raw_send_packet(int fd, const struct mqtt_packet *pkt, uint8_t version)
{
	uint8_t small[1024], *buf = small;
	size_t size = mqtt_encoded_size(pkt, version);
	int n, rc = -1;

	if (size == 0)
		return -1;
	if (size > sizeof(small)) {
		buf = malloc(size);
		if (!buf)
			return -1;
	}
	n = mqtt_encode(pkt, version, buf, size);
	if (n > 0)
		rc = raw_send(fd, buf, (size_t)n);
	if (buf != small)
		free(buf);
	return rc;
}

int raw_recv_decoded(int fd, uint8_t *buf, size_t cap, int timeout_ms,
		     uint8_t version, struct mqtt_packet *out)
{
	ssize_t n = raw_recv_packet(fd, buf, cap, timeout_ms);

	if (n <= 0)
		return (int)n;
	if (mqtt_decode(buf, (size_t)n, version, out) < 0)
		return -2;
	return out->type;
}

void raw_connect_init(struct mqtt_connect *c, uint8_t version,
		      const char *client_id)
{
	memset(c, 0, sizeof(*c));
	c->protocol_level = version;
	c->clean_start = true;
	c->keep_alive = 60;
	c->client_id.data = (const uint8_t *)client_id;
	c->client_id.len = strlen(client_id);
}

int raw_mqtt_connect_ex(int fd, const struct mqtt_connect *c, uint8_t *buf,
			size_t cap, struct mqtt_connack *ack)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };

	pkt.u.connect = *c;
	if (raw_send_packet(fd, &pkt, c->protocol_level) < 0)
		return -1;
	if (raw_recv_decoded(fd, buf, cap, 5000, c->protocol_level, &pkt) !=
	    MQTT_CONNACK)
		return -1;
	if (ack)
		*ack = pkt.u.connack;
	return pkt.u.connack.reason;
}

int raw_subscribe(int fd, uint8_t version, uint16_t packet_id,
		  const char *filter, uint8_t options)
{
	struct mqtt_sub_entry e = {
		.filter = { (const uint8_t *)filter, strlen(filter) },
		.qos = options & MQTT_SUBOPT_QOS_MASK,
		.no_local = (options & MQTT_SUBOPT_NO_LOCAL) != 0,
		.retain_as_published =
			(options & MQTT_SUBOPT_RETAIN_AS_PUBLISHED) != 0,
		.retain_handling = (uint8_t)((options &
			MQTT_SUBOPT_RETAIN_HANDLING_MASK) >>
			MQTT_SUBOPT_RETAIN_HANDLING_SHIFT),
	};
	struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
	uint8_t buf[256];

	pkt.u.subscribe.packet_id = packet_id;
	pkt.u.subscribe.count = 1;
	pkt.u.subscribe.subs = &e;
	if (raw_send_packet(fd, &pkt, version) < 0)
		return -1;
	if (raw_recv_decoded(fd, buf, sizeof(buf), 5000, version, &pkt) !=
		    MQTT_SUBACK ||
	    pkt.u.suback.packet_id != packet_id ||
	    pkt.u.suback.reasons.len != 1)
		return -1;
	return pkt.u.suback.reasons.data[0];
}

int raw_send_ack(int fd, uint8_t version, uint8_t type, uint16_t packet_id)
{
	struct mqtt_packet pkt = { .type = type };

	pkt.u.ack.packet_id = packet_id;
	return raw_send_packet(fd, &pkt, version);
}

MQTTClient pc_connect(const struct broker_proc *b, const char *client_id,
		      int version, bool clean, uint32_t session_expiry,
		      bool *present)
{
	MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
	MQTTClient_connectOptions v3 = MQTTClient_connectOptions_initializer;
	MQTTClient_connectOptions v5 = MQTTClient_connectOptions_initializer5;
	MQTTClient_connectOptions *opts = version == 5 ? &v5 : &v3;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTClient c;
	int rc;

	co.MQTTVersion = version;
	if (MQTTClient_createWithOptions(&c, b->uri, client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL,
					 &co) != MQTTCLIENT_SUCCESS)
		return NULL;
	opts->MQTTVersion = version;
	opts->keepAliveInterval = 60;
	opts->connectTimeout = 5;
	if (version == 5) {
		MQTTResponse r;

		opts->cleanstart = clean;
		if (session_expiry) {
			MQTTProperty p = {
				.identifier =
				MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
			};

			p.value.integer4 = session_expiry;
			MQTTProperties_add(&props, &p);
		}
		r = MQTTClient_connect5(c, opts, &props, NULL);
		rc = (int)r.reasonCode;
		MQTTResponse_free(r);
		MQTTProperties_free(&props);
	} else {
		opts->cleansession = clean;
		rc = MQTTClient_connect(c, opts);
	}
	if (rc != MQTTCLIENT_SUCCESS) {
		MQTTClient_destroy(&c);
		return NULL;
	}
	if (present)
		*present = opts->returned.sessionPresent != 0;
	return c;
}

int pc_subscribe(MQTTClient c, int version, const char *filter, int qos,
		 const MQTTSubscribe_options *opts)
{
	MQTTSubscribe_options o = MQTTSubscribe_options_initializer;
	MQTTResponse r;
	int rc;

	if (version != 5) {
		char *f = (char *)filter;
		int granted = qos;

		/* Paho writes the granted QoS (or 0x80) back into the array. */
		rc = MQTTClient_subscribeMany(c, 1, &f, &granted);
		if (rc == 0x80)
			return 0x80;
		return rc == MQTTCLIENT_SUCCESS ? granted : -1;
	}
	if (opts)
		o = *opts;
	r = MQTTClient_subscribe5(c, filter, qos, &o, NULL);
	rc = (int)r.reasonCode;
	MQTTResponse_free(r);
	return rc;
}

int pc_publish(MQTTClient c, int version, const char *topic,
	       const void *payload, int len, int qos, bool retain,
	       MQTTProperties *props)
{
	MQTTClient_message m = MQTTClient_message_initializer;
	MQTTClient_deliveryToken tok = 0;
	int rc;

	m.payload = (void *)payload;
	m.payloadlen = len;
	m.qos = qos;
	m.retained = retain;
	if (version == 5) {
		MQTTResponse r;

		if (props)
			m.properties = *props;
		r = MQTTClient_publishMessage5(c, topic, &m, &tok);
		/* A client error (< 0) or a refusal (>= 0x80). */
		rc = r.reasonCode < 0 || r.reasonCode >= 0x80 ? -1 : 0;
		MQTTResponse_free(r);
	} else {
		rc = MQTTClient_publishMessage(c, topic, &m, &tok);
	}
	if (rc != MQTTCLIENT_SUCCESS)
		return -1;
	if (qos > 0 && MQTTClient_waitForCompletion(c, tok, 5000) !=
		       MQTTCLIENT_SUCCESS)
		return -1;
	return 0;
}

int pc_publish_str(MQTTClient c, int version, const char *topic,
		   const char *payload, int qos, bool retain)
{
	return pc_publish(c, version, topic, payload, (int)strlen(payload),
			  qos, retain, NULL);
}

int pc_receive(MQTTClient c, int timeout_ms, char **topic,
	       MQTTClient_message **msg)
{
	long deadline = harness_now_ms() + timeout_ms;

	*topic = NULL;
	*msg = NULL;
	for (;;) {
		long left = deadline - harness_now_ms();
		int len = 0, rc;

		rc = MQTTClient_receive(c, topic, &len, msg,
					(unsigned long)(left > 0 ? left : 0));
		if (rc != MQTTCLIENT_SUCCESS &&
		    rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
			return -1;
		if (*msg)
			return 1;
		if (!MQTTClient_isConnected(c))
			return -1;
		if (harness_now_ms() >= deadline)
			return 0;
	}
}

void pc_free(char **topic, MQTTClient_message **msg)
{
	if (*msg)
		MQTTClient_freeMessage(msg);
	if (*topic)
		MQTTClient_free(*topic);
	*topic = NULL;
	*msg = NULL;
}

void pc_close(MQTTClient *c)
{
	if (!*c)
		return;
	if (MQTTClient_isConnected(*c))
		MQTTClient_disconnect(*c, 1000);
	MQTTClient_destroy(c);
	*c = NULL;
}

void broker_remove_files(const struct broker_proc *b)
{
	if (!b->dir[0])
		return;
	unlink(b->conf);
	unlink(b->log);
	rmdir(b->dir);
}

/* ------------------------------------------------------------------ */
/* Helpers added for the restart and crash tests of tests/system/.     */

int broker_restart(struct broker_proc *b)
{
	if (b->pid > 0 || !b->conf[0] || b->port <= 0)
		return -1;
	return spawn(b, O_APPEND);
}

int broker_kill(struct broker_proc *b)
{
	int status;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGKILL);
	while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
		;
	b->pid = 0;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 1;
}

void raw_expect_bytes(int fd, const uint8_t *want, size_t len,
		      int timeout_ms)
{
	uint8_t buf[512];
	ssize_t n = raw_recv_packet(fd, buf, sizeof(buf), timeout_ms);

	ck_assert_int_eq(n, (ssize_t)len);
	ck_assert_mem_eq(buf, want, len);
}

void raw_expect_closed(int fd, int timeout_ms)
{
	uint8_t buf[512];

	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), timeout_ms), 0);
}

void raw_expect_quiet(int fd, int quiet_ms)
{
	uint8_t buf[512];

	ck_assert_int_eq(raw_recv_packet(fd, buf, sizeof(buf), quiet_ms), -1);
}

void harness_run_cicada(struct cicada_run *r, const char *const *args)
{
	const char *argv[16] = { "cicada" };
	int out[2], err[2], status, n = 1;
	size_t out_len = 0, err_len = 0;
	long deadline = harness_now_ms() + 5000;
	pid_t pid;

	while (args[n - 1] && n < 15) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(pipe(out), 0);
	ck_assert_int_eq(pipe(err), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		close(out[0]);
		close(err[0]);
		execv(cicada_bin(), (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd p[2] = { { .fd = out[0], .events = POLLIN },
				       { .fd = err[0], .events = POLLIN } };
		long left = deadline - harness_now_ms();

		if (left <= 0 || poll(p, 2, (int)left) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t *len = i ? &err_len : &out_len;
			int *fd = i ? &err[0] : &out[0];
			ssize_t got;

			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			got = read(*fd, buf + *len, sizeof(r->out) - 1 - *len);
			if (got <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			*len += (size_t)got;
		}
	}
	if (out[0] >= 0)
		close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 || harness_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			r->status = -1;
			return;
		}
		usleep(5000);
	}
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
					128 + WTERMSIG(status);
}
