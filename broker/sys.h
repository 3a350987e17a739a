/*
 * $SYS topics: the broker's own state published as retained messages every
 * sys_interval seconds, under mosquitto's names where it has them.
 */
#ifndef CICADA_BROKER_SYS_H
#define CICADA_BROKER_SYS_H

struct shard;

/* Called every second; publishes when sys_interval has passed. */
void sys_tick(struct shard *sh, double now);

#endif
