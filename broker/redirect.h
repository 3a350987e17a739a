/*
 * Server redirection [MQTT 5.0 section 4.11].  While a listener has a
 * server_reference (cicada.conf(5)), an MQTT 5 CONNECT on it is answered
 * with CONNACK 0x9C Use another server (0x9D Server moved with
 * server_moved true) carrying the Server Reference, and an MQTT 3.1.x
 * CONNECT, which has no way to be redirected, with return code 3 Server
 * unavailable.  A SIGHUP that sets it drains the listener: its MQTT 5
 * clients get a DISCONNECT with the same reason and Server Reference;
 * 3.1.x clients stay, since closing them would only bring them back here.
 */
#ifndef CICADA_BROKER_REDIRECT_H
#define CICADA_BROKER_REDIRECT_H

struct config;
struct conn;
struct broker;
struct listener;
struct shard;

/*
 * A CONNECT that passed authentication, before anything of its session is
 * touched: on a redirecting listener, send the refusing CONNACK and return
 * its reason (> 0) for the caller to close; otherwise 0.
 */
int redirect_connect(struct conn *c);

/*
 * SIGHUP: give every listener of list the server_reference and
 * server_moved of its block in cfg (the general section's when the block
 * is gone from the file), and drain the connections of every shard (all
 * paused by the caller) on each listener whose server_reference was set or changed.  Returns 0, or
 * -ENOMEM when a listener could not take its new server_reference (it
 * keeps the old one; logged).
 */
int redirect_reload(struct broker *b, struct listener *list,
		    const struct config *cfg);

#endif
