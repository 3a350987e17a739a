/*
 * Listening sockets: one per configured address and family, non-blocking,
 * with an accept loop that survives running out of file descriptors (it
 * pauses accepting for a second and says so once, instead of spinning).
 */
#ifndef CICADA_BROKER_LISTENER_H
#define CICADA_BROKER_LISTENER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_db;
struct config;
struct shard;

struct listener {
	struct listener *next;
	struct shard *shard;
	int fd;
	ev_io io;
	ev_timer pause; /* accept paused after EMFILE */
	bool warned_fds; /* EMFILE logged since the last success */
	bool allow_anonymous;
	struct auth_db *passwd; /* password_file (a reference); NULL: none */
	long max_connections; /* < 0: only the broker-wide limit */
	size_t conn_count;
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
 * Open every listener of cfg on the shard's loop.  Returns 0, or -1 after
 * logging which address could not be opened and why (nothing stays open).
 */
int listener_open_all(struct shard *sh, const struct config *cfg,
		      struct listener **out);
void listener_close_all(struct shard *sh, struct listener *list);
/*
 * SIGHUP: read every listener's password file again.  A file that no
 * longer loads is logged and the listener keeps the one it had.  Returns
 * 0, or -1 when a file could not be reloaded.
 */
int listener_reload_passwd(struct listener *list);

#endif
