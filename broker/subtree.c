/*
 * The subscription tree of one shard: a trie with one node per topic
 * filter level, holding at each node the ordinary subscriptions and the
 * shared groups whose filter ends there.
 *
 * A node keeps its '+' and '#' children apart from its literal children,
 * so matching a topic level costs one hash lookup plus two pointer tests,
 * however many children the node has (one per device id is common).
 * Literal children sit in an open-addressing table keyed by a SipHash of
 * the level under a per-tree random key (level_table.c, shared with the
 * retained store): topic levels come from clients, and an unkeyed hash
 * would let one of them pile thousands of filters into one probe chain.
 *
 * Matching and freeing are iterative and use the parent pointers instead
 * of a stack: a 65535-byte filter of slashes is a trie 65536 levels deep,
 * too deep to recurse on a shard thread's stack, and matching must not
 * allocate.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_table.h"
#include "broker/subtree.h"
#include "protocol/topic.h"

/*
 * First capacity of a subscriber table; tables are powers of two, at most
 * 3/4 full, like the child tables of level_table.c.
 */
#define TABLE_MIN_CAP 4
/* First capacity of a group's member array. */
#define GROUP_MIN_CAP 4

/* One ordinary subscription, or one member of a shared group. */
struct sub {
	void *subscriber; /* NULL marks an empty slot of a struct subs */
	struct sub_opts opts;
};

/*
 * The ordinary subscriptions of a node, in an open-addressing table keyed
 * by subscriber: a filter such as "alerts/#" may have thousands of them,
 * and every add and remove looks its subscriber up.  Matching walks the
 * slots, which the 1/4 lower bound on the load keeps dense enough.
 */
struct subs {
	struct sub *slot;
	size_t cap;
	size_t used;
};

/* "$share/{name}/{filter}", hanging off the node of {filter}. */
struct group {
	struct group *next; /* next group on the same node */
	/*
	 * Members in arrival order.  Removal keeps the order (memmove), so
	 * the cursor can be fixed up exactly and every member gets one
	 * message per rotation.
	 */
	struct sub *member;
	size_t count;
	size_t cap;
	size_t cursor; /* index of the member that gets the next message */
	void *tag; /* the caller's (subtree_group_set_tag) */
	size_t name_len;
	char name[]; /* NUL-terminated: handed to the match callback */
};

struct node {
	/*
	 * First, so node_of() is free.  hash and slot mean something for
	 * literal children only (in parent->kids); len and level for all.
	 */
	struct level_entry entry;
	struct node *parent; /* NULL for the root */
	struct node *plus; /* the '+' child */
	struct node *multi; /* the '#' child; it never has children */
	struct level_table kids; /* literal children, by entry */
	struct subs subs;
	struct group *groups;
	char level[]; /* the level's bytes, not NUL-terminated */
};

struct subtree {
	struct node *root; /* the level before the first; never pruned */
	size_t count; /* subscriptions, one per shared member */
	size_t nodes; /* nodes besides the root (tests check pruning) */
	struct level_key key; /* of level_hash() */
};

/* ---------------------------------------------------------------- hash */

/* Subscriber pointers are ours, not a client's: a mixer is enough. */
static size_t ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

/* ------------------------------------------------------ literal children */

/* The node whose entry e is; NULL for NULL. */
static struct node *node_of(struct level_entry *e)
{
	return e ? (struct node *)(void *)((char *)e -
					   offsetof(struct node, entry)) :
		   NULL;
}

/* The literal child of level in k, whose level_hash() is hash, or NULL. */
static struct node *kids_find(const struct level_table *k, const char *level,
			      size_t len, uint64_t hash)
{
	return node_of(level_table_find(k, level, len, hash));
}

/* ----------------------------------------------- ordinary subscriptions */

static struct sub *subs_find(const struct subs *s, const void *subscriber)
{
	size_t mask, i;

	if (!s->cap)
		return NULL;
	mask = s->cap - 1;
	for (i = ptr_hash(subscriber) & mask; s->slot[i].subscriber;
	     i = (i + 1) & mask)
		if (s->slot[i].subscriber == subscriber)
			return &s->slot[i];
	return NULL;
}

static void subs_place(struct sub *slot, size_t mask, const struct sub *e)
{
	size_t i = ptr_hash(e->subscriber) & mask;

	while (slot[i].subscriber)
		i = (i + 1) & mask;
	slot[i] = *e;
}

static int subs_resize(struct subs *s, size_t cap)
{
	struct sub *slot = calloc(cap, sizeof(*slot));
	size_t i;

	if (!slot)
		return -ENOMEM;
	for (i = 0; i < s->cap; i++)
		if (s->slot[i].subscriber)
			subs_place(slot, cap - 1, &s->slot[i]);
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return 0;
}

/* subscriber must not be in the table yet. */
static int subs_insert(struct subs *s, void *subscriber,
		       const struct sub_opts *opts)
{
	struct sub e = { subscriber, *opts };
	int rc;

	if ((s->used + 1) * 4 > s->cap * 3) {
		rc = subs_resize(s, s->cap ? s->cap * 2 : TABLE_MIN_CAP);
		if (rc)
			return rc;
	}
	subs_place(s->slot, s->cap - 1, &e);
	s->used++;
	return 0;
}

static void subs_delete(struct subs *s, struct sub *victim)
{
	size_t mask = s->cap - 1, i = (size_t)(victim - s->slot), j = i;
	size_t home;

	for (;;) { /* backward shift, as level_table_delete() */
		j = (j + 1) & mask;
		if (!s->slot[j].subscriber)
			break;
		home = ptr_hash(s->slot[j].subscriber) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->slot[i] = s->slot[j];
			i = j;
		}
	}
	s->slot[i].subscriber = NULL;
	s->used--;
	if (!s->used) {
		free(s->slot);
		s->slot = NULL;
		s->cap = 0;
	} else if (s->cap > TABLE_MIN_CAP && s->used * 4 < s->cap) {
		(void)subs_resize(s, s->cap / 2);
	}
}

/* --------------------------------------------------------- shared groups */

/* The link that points at the group called name, or the list's end. */
static struct group **group_link(struct node *n, const char *name,
				 size_t len)
{
	struct group **gp;

	for (gp = &n->groups; *gp; gp = &(*gp)->next)
		if ((*gp)->name_len == len &&
		    memcmp((*gp)->name, name, len) == 0)
			break;
	return gp;
}

static struct sub *group_find_member(struct group *g, const void *subscriber)
{
	size_t i;

	for (i = 0; i < g->count; i++)
		if (g->member[i].subscriber == subscriber)
			return &g->member[i];
	return NULL;
}

static int group_add(struct subtree *t, struct node *n, const char *name,
		     size_t len, void *subscriber, const struct sub_opts *opts,
		     bool *replaced)
{
	struct group **gp = group_link(n, name, len), *g = *gp;
	struct sub *m, *grown;
	size_t cap;
	int rc = 0;

	if (g) {
		m = group_find_member(g, subscriber);
		if (m) {
			m->opts = *opts;
			*replaced = true;
			goto out;
		}
	} else {
		g = calloc(1, sizeof(*g) + len + 1);
		if (!g) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(g->name, name, len);
		g->name[len] = '\0';
		g->name_len = len;
	}
	if (g->count == g->cap) {
		cap = g->cap ? g->cap * 2 : GROUP_MIN_CAP;
		grown = realloc(g->member, cap * sizeof(*grown));
		if (!grown) {
			rc = -ENOMEM;
			goto out_free_group;
		}
		g->member = grown;
		g->cap = cap;
	}
	/* Appended: it takes its turn when the rotation comes round. */
	g->member[g->count].subscriber = subscriber;
	g->member[g->count].opts = *opts;
	g->count++;
	*gp = g; /* a new group goes at the list's end, where gp points */
	t->count++;
	goto out;

out_free_group:
	if (!*gp) {
		free(g->member);
		free(g);
	}
out:
	return rc;
}

static int group_remove(struct subtree *t, struct node *n, const char *name,
			size_t len, const void *subscriber)
{
	struct group **gp = group_link(n, name, len), *g = *gp;
	struct sub *m, *shrunk;
	size_t i;

	if (!g)
		return -ENOENT;
	m = group_find_member(g, subscriber);
	if (!m)
		return -ENOENT;
	i = (size_t)(m - g->member);
	memmove(m, m + 1, (g->count - i - 1) * sizeof(*m));
	g->count--;
	t->count--;
	/*
	 * Keep the rotation: members before the cursor moved down one; if
	 * the cursor's own member left, its successor slid into its place
	 * and is next, as it would have been.
	 */
	if (i < g->cursor)
		g->cursor--;
	if (g->cursor >= g->count)
		g->cursor = 0;
	if (!g->count) {
		*gp = g->next;
		free(g->member);
		free(g);
	} else if (g->cap > GROUP_MIN_CAP && g->count * 4 < g->cap) {
		shrunk = realloc(g->member, g->cap / 2 * sizeof(*shrunk));
		if (shrunk) {
			g->member = shrunk;
			g->cap /= 2;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ nodes */

static struct node *node_new(struct subtree *t, struct node *parent,
			     const char *level, size_t len, uint64_t hash)
{
	struct node *n = calloc(1, sizeof(*n) + len);

	if (!n)
		return NULL;
	n->parent = parent;
	level_entry_init(&n->entry, n->level, level, len, hash);
	t->nodes++;
	return n;
}

/* Frees n and what it holds, not its children. */
static void node_free(struct subtree *t, struct node *n)
{
	struct group *g, *next;

	for (g = n->groups; g; g = next) {
		next = g->next;
		free(g->member);
		free(g);
	}
	free(n->subs.slot);
	free(n->kids.slot);
	if (n != t->root)
		t->nodes--;
	free(n);
}

static bool node_is_unused(const struct node *n)
{
	return !n->kids.used && !n->plus && !n->multi && !n->subs.used &&
	       !n->groups;
}

/* Free n and its ancestors for as long as they hold nothing. */
static void node_prune(struct subtree *t, struct node *n)
{
	struct node *p;

	while (n->parent && node_is_unused(n)) {
		p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->multi == n)
			p->multi = NULL;
		else
			level_table_delete(&p->kids, &n->entry);
		node_free(t, n);
		n = p;
	}
}

static bool level_is(const char *level, size_t len, char c)
{
	return len == 1 && level[0] == c;
}

/*
 * The node of filter f (without any "$share/group/" prefix), made when
 * create is set; NULL when absent, or out of memory (nothing made stays).
 */
static struct node *node_walk(struct subtree *t, const char *f, size_t len,
			      bool create)
{
	struct node *n = t->root, *c, **wild;
	size_t p = 0, e, llen;
	const char *level;
	uint64_t hash = 0;

	for (;;) {
		e = level_end(f, len, p);
		level = f + p;
		llen = e - p;
		wild = level_is(level, llen, '+') ? &n->plus :
		       level_is(level, llen, '#') ? &n->multi : NULL;
		if (wild) {
			hash = 0; /* wildcard children are in no table */
			c = *wild;
		} else {
			hash = level_hash(&t->key, level, llen);
			c = kids_find(&n->kids, level, llen, hash);
		}
		if (!c) {
			if (!create)
				goto out;
			c = node_new(t, n, level, llen, hash);
			if (!c)
				goto out_prune;
			if (wild) {
				*wild = c;
			} else if (level_table_insert(&n->kids, &c->entry)) {
				node_free(t, c);
				c = NULL;
				goto out_prune;
			}
		}
		n = c;
		if (e == len)
			goto out;
		p = e + 1;
	}

out_prune:
	node_prune(t, n);
out:
	return c;
}

/*
 * Split "$share/{group}/{f}" [MQTT-4.8.2]; an ordinary filter gives a NULL
 * group and f the whole filter.
 */
static void filter_split(const char *filter, size_t len, const char **group,
			 size_t *group_len, const char **f, size_t *flen)
{
	if (topic_share_parse(filter, len, group, group_len, f, flen) == 1)
		return;
	*f = filter; /* the outputs were cleared, group to NULL */
	*flen = len;
}

/* ------------------------------------------------------------ interface */

struct subtree *subtree_new(void)
{
	struct subtree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->root = calloc(1, sizeof(*t->root));
	if (!t->root) {
		free(t);
		return NULL;
	}
	level_key_init(&t->key);
	return t;
}

void subtree_free(struct subtree *t)
{
	struct node *n, *p, *c;
	size_t i = 0; /* where the scan of n's literal children resumes */

	if (!t)
		return;
	/*
	 * Post-order without a stack: wildcard children first (unlinked as
	 * we go down), then literal children by slot.  A freed child's slot
	 * tells where its parent's scan resumes; the table itself is left
	 * alone until its owner goes.
	 */
	n = t->root;
	for (;;) {
		if (n->plus) {
			c = n->plus;
			n->plus = NULL;
		} else if (n->multi) {
			c = n->multi;
			n->multi = NULL;
		} else {
			while (i < n->kids.cap && !n->kids.slot[i])
				i++;
			c = i < n->kids.cap ? node_of(n->kids.slot[i]) : NULL;
		}
		if (c) {
			n = c;
			i = 0;
			continue;
		}
		p = n->parent;
		if (level_is(n->level, n->entry.len, '+') ||
		    level_is(n->level, n->entry.len, '#'))
			i = 0; /* wildcards went before the parent's scan */
		else
			i = n->entry.slot + 1;
		node_free(t, n);
		if (!p)
			break;
		n = p;
	}
	free(t);
}

int subtree_add(struct subtree *t, const char *filter, size_t len,
		void *subscriber, const struct sub_opts *opts, bool *replaced)
{
	const char *group, *f;
	size_t group_len, flen;
	bool dummy;
	struct node *n;
	struct sub *s;
	int rc = 0;

	if (!replaced)
		replaced = &dummy;
	*replaced = false;
	/* Callers check filters; this keeps a bad one from shaping the tree. */
	if (!subscriber || !topic_filter_is_valid(filter, len)) {
		rc = -EINVAL;
		goto out;
	}
	filter_split(filter, len, &group, &group_len, &f, &flen);

	n = node_walk(t, f, flen, true);
	if (!n) {
		rc = -ENOMEM;
		goto out;
	}
	if (group) {
		rc = group_add(t, n, group, group_len, subscriber, opts,
			       replaced);
		goto out_prune;
	}
	s = subs_find(&n->subs, subscriber);
	if (s) {
		s->opts = *opts;
		*replaced = true;
		goto out;
	}
	rc = subs_insert(&n->subs, subscriber, opts);
	if (!rc)
		t->count++;

out_prune:
	if (rc)
		node_prune(t, n); /* a node made for nothing goes again */
out:
	return rc;
}

int subtree_remove(struct subtree *t, const char *filter, size_t len,
		   void *subscriber)
{
	const char *group, *f;
	size_t group_len, flen;
	struct node *n;
	struct sub *s;
	int rc;

	if (len == 0)
		return -ENOENT;
	filter_split(filter, len, &group, &group_len, &f, &flen);
	n = node_walk(t, f, flen, false);
	if (!n)
		return -ENOENT;
	if (group) {
		rc = group_remove(t, n, group, group_len, subscriber);
	} else {
		s = subs_find(&n->subs, subscriber);
		rc = s ? 0 : -ENOENT;
		if (s) {
			subs_delete(&n->subs, s);
			t->count--;
		}
	}
	if (!rc)
		node_prune(t, n);
	return rc;
}

/* Every subscription held at n: each ordinary one, one member per group. */
static void node_report(struct node *n, subtree_match_cb cb, void *arg)
{
	struct group *g;
	struct sub *m;
	size_t i;

	for (i = 0; i < n->subs.cap; i++)
		if (n->subs.slot[i].subscriber)
			cb(arg, n->subs.slot[i].subscriber,
			   &n->subs.slot[i].opts, NULL);
	for (g = n->groups; g; g = g->next) {
		m = &g->member[g->cursor];
		if (++g->cursor == g->count)
			g->cursor = 0;
		cb(arg, m->subscriber, &m->opts, g->name);
	}
}

/*
 * Depth-first over the nodes whose filter prefix matches the topic's
 * first levels: at each node, the '#' child matches whatever is left, and
 * the literal child and then the '+' child take the next level.  p is the
 * start of the topic level that n's children consume, len + 1 once every
 * level is consumed; going back up recomputes it from the topic, so the
 * walk needs no stack.
 */
void subtree_match(struct subtree *t, const char *topic, size_t len,
		   subtree_match_cb cb, void *arg)
{
	struct node *root = t->root, *n = root, *c;
	size_t p = 0, e = 0;
	bool dollar;

	if (len == 0)
		return;
	/* "$SYS/x" is not matched by "#" or "+/x" [MQTT-4.7.2-1]. */
	dollar = topic[0] == '$';

enter:
	/* "a/#" matches "a/b/c" and "a" itself [MQTT-4.7.1-2]. */
	if (n->multi && !(n == root && dollar))
		node_report(n->multi, cb, arg);
	if (p > len) {
		node_report(n, cb, arg);
		goto up;
	}
	e = level_end(topic, len, p);
	c = kids_find(&n->kids, topic + p, e - p,
		      level_hash(&t->key, topic + p, e - p));
	if (c) {
		n = c;
		p = e + 1;
		goto enter;
	}
try_plus:
	/* '+' takes exactly one level, an empty one too. */
	if (n->plus && !(n == root && dollar)) {
		n = n->plus;
		p = e + 1;
		goto enter;
	}
up:
	if (n == root)
		return;
	e = p - 1; /* where the level n consumed ends */
	p = level_start(topic, e);
	c = n;
	n = n->parent;
	if (c == n->plus)
		goto up; /* both ways down from n are done */
	goto try_plus;
}

const char *subtree_group_of(struct subtree *t, const char *filter,
			     size_t len)
{
	const char *group, *f;
	size_t group_len, f_len;
	struct node *n;
	struct group *g;

	if (topic_share_parse(filter, len, &group, &group_len, &f, &f_len) != 1)
		return NULL;
	n = node_walk(t, f, f_len, false);
	g = n ? *group_link(n, group, group_len) : NULL;
	return g ? g->name : NULL;
}

bool subtree_group_pick(const char *shared_group, const void *exclude,
			void **subscriber, struct sub_opts *opts)
{
	struct group *g = (struct group *)(void *)(shared_group -
						   offsetof(struct group, name));

	for (size_t tries = 0; tries < g->count; tries++) {
		struct sub *m = &g->member[g->cursor];

		if (++g->cursor == g->count)
			g->cursor = 0;
		if (m->subscriber != exclude) {
			*subscriber = m->subscriber;
			*opts = m->opts;
			return true;
		}
	}
	return false;
}

static struct group *group_of_name(const char *shared_group)
{
	return (struct group *)(void *)(shared_group -
					offsetof(struct group, name));
}

void *subtree_group_tag(const char *shared_group)
{
	return group_of_name(shared_group)->tag;
}

void subtree_group_set_tag(const char *shared_group, void *tag)
{
	group_of_name(shared_group)->tag = tag;
}

size_t subtree_count(const struct subtree *t)
{
	return t->count;
}
