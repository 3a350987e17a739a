/*
 * The integration test harness (see harness.h).  A free port is found by
 * binding port 0 and closing it; the tiny race with another process is
 * acceptable on a test machine and start-up fails loudly if it loses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static long now_ms(void)
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

int broker_start(struct broker_proc *b, const char *extra_config)
{
	FILE *f;
	long deadline;

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

	b->pid = fork();
	if (b->pid < 0)
		return -1;
	if (b->pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		execl(cicada_bin(), "cicada", "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	deadline = now_ms() + 10000;
	while (now_ms() < deadline) {
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
		usleep(10000);
	}
	broker_stop(b);
	return -1;
}

void broker_signal(struct broker_proc *b, int sig)
{
	if (b->pid > 0)
		kill(b->pid, sig);
}

int broker_stop(struct broker_proc *b)
{
	long deadline = now_ms() + 10000;
	int status;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGTERM);
	while (now_ms() < deadline) {
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
		long left = deadline - now_ms();
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
	long deadline = now_ms() + timeout_ms;
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
	long deadline = now_ms() + timeout_ms;
	uint8_t buf[4096];

	while (now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
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
