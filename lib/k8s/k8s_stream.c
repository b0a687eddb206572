/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a watch stream is made of, free of any I/O: the line splitter (the
 * API server writes one JSON event per line, and HTTP chunks and reads cut
 * them anywhere), the decoder of one event line, and the jittered
 * exponential backoff between failed requests.
 *
 * Not here: the objects inside the events (k8s_model.c), the transfers
 * (k8s_client.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_private.h"

/* ---- lines --------------------------------------------------------------- */

void
k8s_lines_init(struct k8s_lines *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
}

void
k8s_lines_reset(struct k8s_lines *l)
{
	l->len = 0;
}

void
k8s_lines_fini(struct k8s_lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

static int
emit(const char *s, size_t len, size_t max, k8s_line_fn fn, void *arg)
{
	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len > max)
		return -EMSGSIZE;
	return len > 0 ? fn(arg, s, len) : 0;
}

int
k8s_lines_feed(struct k8s_lines *l, const char *data, size_t n, k8s_line_fn fn, void *arg)
{
	size_t i = 0;
	int rc;

	while (i < n) {
		const char *nl = memchr(data + i, '\n', n - i);
		size_t take = nl != NULL ? (size_t)(nl - (data + i)) : n - i;

		if (l->len == 0 && nl != NULL) {
			/* A whole line in this chunk: no copy. */
			rc = emit(data + i, take, l->max, fn, arg);
			if (rc != 0)
				return rc;
			i += take + 1;
			continue;
		}
		/* One byte over max is allowed for a '\r' that emit() drops. */
		if (l->len + take > l->max + 1)
			return -EMSGSIZE;
		if (l->len + take > l->cap) {
			size_t cap = l->cap != 0 ? l->cap : 4096;
			char *nb;

			while (cap < l->len + take)
				cap *= 2;
			nb = realloc(l->buf, cap);
			if (nb == NULL)
				return -ENOMEM;
			l->buf = nb;
			l->cap = cap;
		}
		memcpy(l->buf + l->len, data + i, take);
		l->len += take;
		i += take;
		if (nl == NULL)
			break;
		i++;
		take = l->len;
		l->len = 0;
		rc = emit(l->buf, take, l->max, fn, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- events -------------------------------------------------------------- */

static int
bad_event(struct k8s_event *ev, char *err, size_t errlen, const char *fmt, const char *arg)
{
	k8s_event_clear(ev);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, arg);
	return -EBADMSG;
}

static const char *
str_item(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* WatchEvent: {"type": ..., "object": ...}; an ERROR's object is a Status. */
int
k8s_event_decode(const char *line, size_t len, struct k8s_event *ev, char *err, size_t errlen)
{
	static const char *const types[] = {
		[K8S_EV_ADDED] = "ADDED", [K8S_EV_MODIFIED] = "MODIFIED",
		[K8S_EV_DELETED] = "DELETED", [K8S_EV_BOOKMARK] = "BOOKMARK",
		[K8S_EV_ERROR] = "ERROR",
	};
	char shown[64];
	const char *type, *rv;
	const cJSON *code;

	memset(ev, 0, sizeof(*ev));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	ev->root = cJSON_ParseWithLength(line, len);
	if (ev->root == NULL) {
		size_t n = len < 40 ? len : 40;

		for (size_t i = 0; i < n; i++)
			shown[i] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
		snprintf(shown + n, sizeof(shown) - n, "%s", len > n ? "..." : "");
		return bad_event(ev, err, errlen, "not JSON: \"%s\"", shown);
	}
	if (!cJSON_IsObject(ev->root))
		return bad_event(ev, err, errlen, "%s", "not a JSON object");
	type = str_item(ev->root, "type");
	if (type == NULL)
		return bad_event(ev, err, errlen, "%s", "no \"type\"");
	for (unsigned int t = K8S_EV_ADDED; t <= K8S_EV_ERROR; t++)
		if (strcmp(type, types[t]) == 0)
			ev->type = (uint8_t)t;
	if (ev->type == 0) {
		snprintf(shown, sizeof(shown), "%.32s", type);
		return bad_event(ev, err, errlen, "unknown event type \"%s\"", shown);
	}
	ev->object = cJSON_GetObjectItemCaseSensitive(ev->root, "object");
	if (!cJSON_IsObject(ev->object))
		return bad_event(ev, err, errlen, "%s event without an \"object\"",
				 types[ev->type]);
	rv = str_item(cJSON_GetObjectItemCaseSensitive(ev->object, "metadata"), "resourceVersion");
	if (rv != NULL && strlen(rv) >= sizeof(ev->rv))
		return bad_event(ev, err, errlen, "%s",
				 "resourceVersion longer than 63 characters");
	if (rv != NULL)
		strcpy(ev->rv, rv);
	if (ev->type == K8S_EV_BOOKMARK && ev->rv[0] == '\0')
		return bad_event(ev, err, errlen, "%s", "BOOKMARK without a resourceVersion");
	if (ev->type == K8S_EV_ERROR) {
		const char *reason = str_item(ev->object, "reason");
		const char *msg = str_item(ev->object, "message");

		code = cJSON_GetObjectItemCaseSensitive(ev->object, "code");
		if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000)
			ev->code = (int)code->valuedouble;
		snprintf(ev->message, sizeof(ev->message), "%d %.40s: %.120s", ev->code,
			 reason != NULL ? reason : "?", msg != NULL ? msg : "");
	}
	return 0;
}

void
k8s_event_clear(struct k8s_event *ev)
{
	cJSON_Delete(ev->root);
	memset(ev, 0, sizeof(*ev));
}

/* ---- backoff ------------------------------------------------------------- */

/* splitmix64 (Steele, Lea, Flood, OOPSLA'14): any seed, 0 included, is fine. */
static uint64_t
next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
k8s_backoff_init(struct k8s_backoff *b, uint64_t seed)
{
	b->rng = seed;
	b->attempt = 0;
}

/*
 * The nominal delay doubles from the minimum up to the maximum; up to a
 * quarter more is added at random so that gateways restarted together do
 * not retry in step, and the result is capped at the maximum.
 */
uint32_t
k8s_backoff_next(struct k8s_backoff *b)
{
	uint64_t nominal = K8S_BACKOFF_MIN_MS, d;

	for (uint32_t i = 0; i < b->attempt && nominal < K8S_BACKOFF_MAX_MS; i++)
		nominal *= 2;
	if (nominal > K8S_BACKOFF_MAX_MS)
		nominal = K8S_BACKOFF_MAX_MS;
	d = nominal + (next_rand(&b->rng) >> 11) % (nominal / 4 + 1);
	if (b->attempt < 64)
		b->attempt++;
	return (uint32_t)(d < K8S_BACKOFF_MAX_MS ? d : K8S_BACKOFF_MAX_MS);
}

void
k8s_backoff_reset(struct k8s_backoff *b)
{
	b->attempt = 0;
}
