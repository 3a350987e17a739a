/*
 * Topic names and topic filters: syntax rules, shared subscription parsing
 * and matching [MQTT-4.7].  Pure functions over (pointer, length); the
 * strings need not be NUL-terminated.  UTF-8 validity is the codec's job
 * (mqtt_utf8_is_valid); these functions check only the topic syntax, but
 * reject an embedded NUL byte so they are safe on their own.
 */
#ifndef CICADA_PROTOCOL_TOPIC_H
#define CICADA_PROTOCOL_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* An MQTT string holds at most 65535 bytes. */
#define TOPIC_MAX_LEN 65535u

/*
 * A topic name as a PUBLISH carries it: 1..TOPIC_MAX_LEN bytes, no '+' or
 * '#' anywhere, no NUL.  Empty levels ("a//b", "/a") are allowed.
 */
bool topic_name_is_valid(const char *name, size_t len);

/*
 * A topic filter: 1..TOPIC_MAX_LEN bytes, no NUL, '+' only as a whole
 * level, '#' only as the whole last level.  A "$share/..." filter must be a
 * valid shared subscription (topic_share_parse() returns 1).
 */
bool topic_filter_is_valid(const char *filter, size_t len);

/*
 * Split a shared subscription "$share/{group}/{filter}".  Returns 1 and the
 * two parts when filter is one; 0 when it does not start with "$share/"
 * (an ordinary filter, left unchecked); -1 when it starts with "$share/" but
 * breaks the rules: empty group, '+' or '#' in the group, no '/' after the
 * group, or an empty or invalid filter part [MQTT-4.8.2-1, MQTT-4.8.2-2],
 * or a whole string over TOPIC_MAX_LEN.  The parts are views into filter.
 * Any output pointer may be NULL; on 0 and -1 the outputs are cleared.  The
 * filter part is checked as an ordinary filter, so "$share/g/$share/h/x"
 * is group "g" with the literal filter "$share/h/x".
 */
int topic_share_parse(const char *filter, size_t len, const char **group,
		      size_t *group_len, const char **sub_filter,
		      size_t *sub_filter_len);

/*
 * Whether a (valid) topic filter matches a (valid) topic name.  '+' matches
 * one level, '#' the rest including the parent ("a/#" matches "a"); a filter
 * starting with '+' or '#' does not match a name starting with '$'
 * [MQTT-4.7.2-1].  Pass the filter part of a shared subscription, not the
 * "$share/group/" prefix.
 */
bool topic_match(const char *filter, size_t filter_len, const char *name,
		 size_t name_len);

/*
 * Number of levels: one more than the number of '/' separators ("/" has
 * two empty levels; len 0 gives 1).
 */
size_t topic_level_count(const char *topic, size_t len);

#endif
