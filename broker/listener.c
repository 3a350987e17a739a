/*
 * Listeners and accept.  A listener without an address opens "::" with
 * IPV6_V6ONLY and "0.0.0.0" separately, so the two families behave the
 * same whatever net.ipv6.bindv6only says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/listener.h"
#include "broker/log.h"
#include "broker/shard.h"
#include "conf/config.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define ACCEPT_BATCH 64

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	}
	snprintf(buf, len, "%s:%u", host, port);
}

static void resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = container_of(w, struct listener, pause);

	(void)revents;
	ev_io_start(loop, &l->io);
}

static bool over_limit(struct listener *l)
{
	struct shard *sh = l->shard;
	long global = sh->broker->limits.max_connections;

	if (global >= 0 && (long)sh->conn_count >= global)
		return true;
	return l->max_connections >= 0 &&
	       (long)l->conn_count >= l->max_connections;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = container_of(w, struct listener, io);
	struct sockaddr_storage ss;
	char peer[64];
	int one = 1;

	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				if (!l->warned_fds)
					log_at(LOGL_ERROR,
					       "%s: cannot accept: %s; pausing accepts for 1 s",
					       l->name, strerror(errno));
				l->warned_fds = true;
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->pause, 1.0, 0.0);
				ev_timer_start(loop, &l->pause);
			}
			return; /* EAGAIN: drained */
		}
		l->warned_fds = false;
		format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
		if (over_limit(l)) {
			log_at(LOGL_NOTICE, "%s: refused %s: max_connections reached",
			       l->name, peer);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(l->shard, fd, (struct sockaddr *)&ss);
		if (!c)
			continue;
		c->listener = l;
		l->conn_count++;
		l->shard->broker->stats.clients_total++;
		log_at(LOGL_DEBUG, "%s: new connection from %s", l->name, peer);
	}
}

static int open_one(struct shard *sh, const struct config_listener *cl,
		    struct auth_db *db, const struct addrinfo *ai,
		    struct listener **list)
{
	struct listener *l = calloc(1, sizeof(*l));
	int one = 1;

	if (!l)
		return -1;
	format_addr(ai->ai_addr, l->name, sizeof(l->name));
	l->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		       SOCK_CLOEXEC, ai->ai_protocol);
	if (l->fd < 0)
		goto err;
	/*
	 * No SO_REUSEPORT yet: with it a second cicada (or anything of the
	 * same user) could bind the same port and silently take half the
	 * clients.  Shards will need it; see docs/decisions.md.
	 */
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(l->fd, 1024) < 0)
		goto err;
	l->shard = sh;
	l->allow_anonymous = cl->allow_anonymous == 1;
	l->passwd = db ? auth_db_ref(db) : NULL;
	l->max_connections = cl->max_connections;
	l->port = cl->port;
	l->socket_domain = cl->socket_domain;
	l->server_moved = cl->server_moved == 1;
	if ((cl->bind_address &&
	     !(l->bind_address = strdup(cl->bind_address))) ||
	    (cl->server_reference && *cl->server_reference &&
	     !(l->server_reference = strdup(cl->server_reference))))
		goto err;
	ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
	ev_timer_init(&l->pause, resume_cb, 1.0, 0.0);
	ev_io_start(sh->loop, &l->io);
	l->next = *list;
	*list = l;
	log_at(LOGL_NOTICE, "listening on %s (MQTT)", l->name);
	return 0;
err:
	log_at(LOGL_ERROR, "cannot listen on %s: %s", l->name, strerror(errno));
	if (l->fd >= 0)
		close(l->fd);
	auth_db_unref(l->passwd);
	free(l->bind_address);
	free(l->server_reference);
	free(l);
	return -1;
}

/*
 * The password file of a listener: loaded once, shared by every socket
 * and listener naming the same path.  A new reference, or NULL when the
 * file cannot be used (logged with FILE:LINE).
 */
static struct auth_db *passwd_for(struct listener *list, const char *path)
{
	for (; list; list = list->next)
		if (list->passwd &&
		    strcmp(auth_db_path(list->passwd), path) == 0)
			return auth_db_ref(list->passwd);
	return auth_db_load(path);
}

int listener_open_all(struct shard *sh, const struct config *cfg,
		      struct listener **out)
{
	struct listener *list = NULL;
	struct auth_db *db = NULL;

	for (size_t i = 0; i < cfg->listener_count; i++) {
		const struct config_listener *cl = &cfg->listeners[i];
		struct addrinfo hints = {
			.ai_socktype = SOCK_STREAM,
			.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
			.ai_family = cl->socket_domain == 4 ? AF_INET :
				     cl->socket_domain == 6 ? AF_INET6 :
							      AF_UNSPEC,
		};
		struct addrinfo *res, *ai;
		char port[8];
		int rc, opened = 0;

		if (cl->password_file) {
			db = passwd_for(list, cl->password_file);
			if (!db)
				goto err;
		}
		snprintf(port, sizeof(port), "%u", cl->port);
		rc = getaddrinfo(cl->bind_address, port, &hints, &res);
		if (rc) {
			log_at(LOGL_ERROR, "listener %s port %u: %s",
			       cl->bind_address ? cl->bind_address : "*",
			       cl->port, gai_strerror(rc));
			goto err;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			if (open_one(sh, cl, db, ai, &list) == 0) {
				opened++;
			} else if (cl->bind_address || ai->ai_family == AF_INET) {
				freeaddrinfo(res);
				goto err;
			}
			/* IPv6 missing on an any-address listener: go on. */
		}
		freeaddrinfo(res);
		if (!opened)
			goto err;
		auth_db_unref(db); /* the listeners hold their references */
		db = NULL;
	}
	*out = list;
	return 0;
err:
	auth_db_unref(db);
	listener_close_all(sh, list);
	return -1;
}

/* Whether a listener before l in list shares its password file. */
static bool passwd_seen_before(struct listener *list, struct listener *l)
{
	for (; list != l; list = list->next)
		if (list->passwd &&
		    strcmp(auth_db_path(list->passwd),
			   auth_db_path(l->passwd)) == 0)
			return true;
	return false;
}

/*
 * After a reload, a connected client whose user is no longer in its
 * listener's password file goes: removing a user is how an operator
 * revokes access, so it should not wait for the client's next CONNECT.
 * MQTT 5 clients are told 0x98 Administrative action.
 */
static void kick_removed_users(struct listener *l)
{
	struct conn *c, *next;

	for (c = l->shard->conns; c; c = next) {
		char why[160];

		next = c->next;
		if (c->listener != l || c->state != CONN_ACTIVE || !c->auth ||
		    !c->auth->user || auth_db_has_user(l->passwd, c->auth->user))
			continue;
		snprintf(why, sizeof(why),
			 "user '%s' is no longer in the password file",
			 c->auth->user);
		conn_close(c, MQTT_RC_ADMINISTRATIVE_ACTION, why);
	}
}

int listener_reload_passwd(struct listener *list)
{
	int rc = 0;

	for (struct listener *l = list; l; l = l->next) {
		struct auth_db *old = l->passwd, *db;

		if (!old || passwd_seen_before(list, l))
			continue;
		db = auth_db_load(auth_db_path(old));
		if (!db) {
			log_at(LOGL_ERROR, "%s: keeping the password file "
			       "loaded before", l->name);
			rc = -1;
			continue;
		}
		/* Exchanges in progress copied what they need: swap now. */
		for (struct listener *m = l; m; m = m->next) {
			if (m->passwd != old)
				continue;
			m->passwd = auth_db_ref(db);
			auth_db_unref(old);
			kick_removed_users(m);
		}
		auth_db_unref(db);
	}
	return rc;
}

void listener_close_all(struct shard *sh, struct listener *list)
{
	struct listener *next;

	for (; list; list = next) {
		next = list->next;
		ev_io_stop(sh->loop, &list->io);
		ev_timer_stop(sh->loop, &list->pause);
		auth_db_unref(list->passwd);
		close(list->fd);
		free(list->bind_address);
		free(list->server_reference);
		free(list);
	}
}
