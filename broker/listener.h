/*
 * Listeners: one per configured address and family, with one non-blocking
 * socket per shard (SO_REUSEPORT: the kernel spreads new connections over
 * the shards), and an accept loop that survives running out of file
 * descriptors (it pauses accepting for a second and says so once, instead
 * of spinning).
 */
#ifndef CICADA_BROKER_LISTENER_H
#define CICADA_BROKER_LISTENER_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_db;
struct broker;
struct config;
struct listener;
struct shard;

/* A listener's socket on one shard, accepting on that shard's loop. */
struct listener_socket {
	struct listener *listener;
	struct shard *shard;
	int fd;
	ev_io io;
	ev_timer pause; /* accept paused after EMFILE */
	bool warned_fds; /* counted in short_of_fds */
};

/*
 * Shared by the shards; what a SIGHUP changes is changed while the other
 * shards are paused (shard_pause_all).
 */
struct listener {
	struct listener *next;
	struct broker *broker;
	struct listener_socket *sockets; /* one per shard */
	unsigned socket_count;
	/* Sockets whose last accept failed for want of descriptors. */
	atomic_uint short_of_fds;
	bool allow_anonymous;
	struct auth_db *passwd; /* password_file (a reference); NULL: none */
	long max_connections; /* < 0: only the broker-wide limit */
	atomic_size_t conn_count; /* on every shard */
	char name[80]; /* "[::]:1883" for logs */
	/* Its listener block, found again by these in a reloaded file. */
	uint16_t port;
	int socket_domain; /* 0, 4 or 6 */
	char *bind_address; /* NULL: every address */
	/* Server redirection (broker/redirect.h); NULL: none. */
	char *server_reference;
	bool server_moved; /* 0x9D Server moved, else 0x9C Use another server */
};

/*
 * Open every listener of cfg, a socket on each shard's loop.  With more
 * than one shard the sockets share the port with SO_REUSEPORT, but only
 * after a bind without it succeeded: a port another process holds is
 * refused, as with one shard (docs/decisions.md #9).  Returns 0, or -1
 * after logging which address could not be opened and why (nothing stays
 * open).
 */
int listener_open_all(struct broker *b, const struct config *cfg,
		      struct listener **out);
/* On sh's thread: its sockets stop accepting (shutdown). */
void listener_stop_shard(struct listener *list, struct shard *sh);
/* Close and free; the shards' loops must not run (or be the caller's). */
void listener_close_all(struct listener *list);
/*
 * SIGHUP: read every listener's password file again.  A file that no
 * longer loads is logged and the listener keeps the one it had.  Returns
 * 0, or -1 when a file could not be reloaded.
 */
int listener_reload_passwd(struct listener *list);

#endif
