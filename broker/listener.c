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
	struct listener_socket *ls = container_of(w, struct listener_socket,
						  pause);

	(void)revents;
	ev_io_start(loop, &ls->io);
}

static bool over_limit(struct listener *l)
{
	long global = l->broker->limits.max_connections;

	if (global >= 0 && atomic_load(&l->broker->conn_total) >= global)
		return true;
	return l->max_connections >= 0 &&
	       (long)atomic_load(&l->conn_count) >= l->max_connections;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener_socket *ls = container_of(w, struct listener_socket,
						  io);
	struct listener *l = ls->listener;
	struct sockaddr_storage ss;
	char peer[64];
	int one = 1;

	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		socklen_t sl = sizeof(ss);
		int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/*
				 * Once while any socket of the listener is
				 * short of descriptors, not once per shard.
				 */
				if (!ls->warned_fds &&
				    atomic_fetch_add(&l->short_of_fds, 1) == 0)
					log_at(LOGL_ERROR,
					       "%s: cannot accept: %s; pausing accepts for 1 s",
					       l->name, strerror(errno));
				ls->warned_fds = true;
				ev_io_stop(loop, &ls->io);
				ev_timer_set(&ls->pause, 1.0, 0.0);
				ev_timer_start(loop, &ls->pause);
			}
			return; /* EAGAIN: drained */
		}
		if (ls->warned_fds) {
			ls->warned_fds = false;
			atomic_fetch_sub(&l->short_of_fds, 1);
		}
		format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
		if (over_limit(l)) {
			log_at(LOGL_NOTICE, "%s: refused %s: max_connections reached",
			       l->name, peer);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(ls->shard, fd, (struct sockaddr *)&ss);
		if (!c)
			continue;
		c->listener = l;
		atomic_fetch_add_explicit(&l->conn_count, 1,
					  memory_order_relaxed);
		ls->shard->stats.clients_total++;
		log_at(LOGL_DEBUG, "%s: new connection from %s", l->name, peer);
	}
}

/* A socket bound (and listening) on ai; -1 with errno set. */
static int bind_socket(const struct addrinfo *ai, bool reuseport,
		       bool do_listen)
{
	int one = 1, fd, saved;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto err;
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		goto err;
	/* The probe only binds: it must not take connections it drops. */
	if (do_listen && listen(fd, 1024) < 0)
		goto err;
	return fd;
err:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void free_listener(struct listener *l)
{
	for (unsigned i = 0; i < l->socket_count; i++)
		if (l->sockets[i].fd >= 0)
			close(l->sockets[i].fd);
	free(l->sockets);
	auth_db_unref(l->passwd);
	free(l->bind_address);
	free(l->server_reference);
	free(l);
}

static int open_one(struct broker *b, const struct config_listener *cl,
		    struct auth_db *db, const struct addrinfo *ai,
		    struct listener **list)
{
	struct listener *l = calloc(1, sizeof(*l));
	bool shared = b->shard_count > 1;

	if (!l)
		return -1;
	format_addr(ai->ai_addr, l->name, sizeof(l->name));
	l->broker = b;
	l->sockets = calloc(b->shard_count, sizeof(*l->sockets));
	if (!l->sockets)
		goto err;
	for (unsigned i = 0; i < b->shard_count; i++)
		l->sockets[i].fd = -1;
	l->socket_count = b->shard_count;
	/*
	 * SO_REUSEPORT lets a second cicada (or anything of the same user)
	 * bind the port too and silently take part of the clients.  So the
	 * port must first be free for a socket without it (decisions #9);
	 * only then do the shards' sockets share it.
	 */
	if (shared) {
		int probe = bind_socket(ai, false, false);

		if (probe < 0)
			goto err;
		close(probe);
	}
	for (unsigned i = 0; i < b->shard_count; i++) {
		struct listener_socket *ls = &l->sockets[i];

		ls->fd = bind_socket(ai, shared, true);
		if (ls->fd < 0)
			goto err;
		ls->listener = l;
		ls->shard = &b->shards[i];
		ev_io_init(&ls->io, accept_cb, ls->fd, EV_READ);
		ev_timer_init(&ls->pause, resume_cb, 1.0, 0.0);
	}
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
	/* Threads do not run yet: every loop may be touched from here. */
	for (unsigned i = 0; i < l->socket_count; i++)
		ev_io_start(b->shards[i].loop, &l->sockets[i].io);
	l->next = *list;
	*list = l;
	if (shared)
		log_at(LOGL_NOTICE, "listening on %s (MQTT, %u shards)",
		       l->name, b->shard_count);
	else
		log_at(LOGL_NOTICE, "listening on %s (MQTT)", l->name);
	return 0;
err:
	log_at(LOGL_ERROR, "cannot listen on %s: %s", l->name, strerror(errno));
	free_listener(l);
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

int listener_open_all(struct broker *b, const struct config *cfg,
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
			if (open_one(b, cl, db, ai, &list) == 0) {
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
	listener_close_all(list);
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
	struct broker *b = l->broker;
	struct conn *c, *next;

	for (unsigned i = 0; i < b->shard_count; i++)
	for (c = b->shards[i].conns; c; c = next) {
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

void listener_stop_shard(struct listener *list, struct shard *sh)
{
	for (; list; list = list->next) {
		struct listener_socket *ls = &list->sockets[sh->index];

		ev_io_stop(sh->loop, &ls->io);
		ev_timer_stop(sh->loop, &ls->pause);
	}
}

void listener_close_all(struct listener *list)
{
	struct listener *next;

	for (; list; list = next) {
		next = list->next;
		for (unsigned i = 0; i < list->socket_count; i++) {
			struct listener_socket *ls = &list->sockets[i];

			if (ls->shard) {
				ev_io_stop(ls->shard->loop, &ls->io);
				ev_timer_stop(ls->shard->loop, &ls->pause);
			}
		}
		free_listener(list);
	}
}
