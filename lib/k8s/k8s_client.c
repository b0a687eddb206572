/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client thread: one libcurl multi handle driving three streams
 * (Services, EndpointSlices, Nodes), each with its own easy handle and so
 * its own HTTP/1.1 keep-alive connection, each cycling through
 *
 *   list (paged: limit/continue) -> watch from the list's resourceVersion
 *     -> watch again from the last resourceVersion seen (event or bookmark)
 *
 * An ERROR event or HTTP 410 (the resourceVersion is older than the
 * server's history) sends a stream back to a fresh list, at once unless it
 * just listed; any other failure (connection, TLS, HTTP status, a
 * malformed line) waits out the stream's backoff and then repeats what
 * failed: a list from its first page, a watch from the last
 * resourceVersion. One thread owns the model, so it needs no lock; after
 * each round of I/O the model's changes go to the owner (k8s.c) through
 * the ops callbacks, and only once both Services and EndpointSlices have
 * been listed.
 *
 * A service-account token file is read again every token_refresh seconds
 * (and after a 401), as client-go does, since kubelet rotates it.
 *
 * Not here: what the objects mean (k8s_model.c), the line splitter and
 * event decoding (k8s_stream.c), credentials (k8s_creds.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "k8s_private.h"

/* kube-proxy's selector: services another proxy owns, and headless ones, are not ours. */
#define SELECTOR "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
/* Slices without the label belong to no Service; kube-proxy drops them, the server can. */
#define SLICE_SELECTOR SELECTOR ",kubernetes.io/service-name"
/* A list page is parsed whole; an API server answering an unpaged list of a huge
 * cluster could send this much. */
#define LIST_MAX (1024u << 20)
/* Of an error response, enough for its Status message. */
#define ERR_BODY_MAX 65536u
/* A watch that ends this fast having delivered nothing is a failure, not a timeout;
 * a relist this soon after a list goes through the backoff. */
#define QUICK_MS 1000u
/* A watch that lasted this long worked: the next failure starts the backoff over. */
#define STABLE_MS 30000u
#define POLL_MAX_MS 1000

enum abort_kind {
	ABORT_NONE = 0,
	ABORT_FAIL,	/* retry after the backoff */
	ABORT_RELIST,	/* ERROR event: list afresh */
};

struct k8s_client;

struct stream {
	struct k8s_client *c;
	unsigned int res;
	CURL *easy;
	struct curl_slist *headers;	/* of the transfer in flight */
	uint8_t active;			/* in the multi handle */
	uint8_t watching;		/* the transfer is a watch */
	uint8_t need_list;		/* the next transfer lists */
	uint8_t abort;			/* enum abort_kind, set by the callbacks */
	uint64_t wake_ms;		/* not active: start again at */
	uint64_t started_ms;
	uint64_t listed_ms;		/* last completed list */
	uint32_t got;			/* events and bookmarks of this watch */
	char rv[SG_K8S_RV_SIZE];
	char *cont;			/* continue token of the next page */
	char *body;			/* list page, or error response */
	size_t len;
	size_t cap;
	struct k8s_lines lines;
	struct k8s_backoff bo;
	char why[SG_K8S_ERR_SIZE];
	char errbuf[CURL_ERROR_SIZE];
};

struct k8s_client {
	struct k8s_log log;
	struct k8s_client_ops ops;
	struct k8s_creds creds;
	uint32_t page_size;
	uint32_t watch_timeout;
	uint32_t request_timeout;
	uint32_t token_refresh;
	uint64_t token_read_ms;
	struct k8s_model *model;
	CURLM *multi;
	struct stream streams[SG_K8S_RESOURCE_COUNT];
	struct sg_k8s_sync st;
	uint8_t gate_open;		/* Services and EndpointSlices listed */
	uint8_t nodes_sent;		/* a nodes snapshot went out */
	pthread_t thread;
	uint8_t started;
	atomic_int stop;
};

static const char *const res_paths[SG_K8S_RESOURCE_COUNT] = {
	[SG_K8S_SERVICES] = "/api/v1/services",
	[SG_K8S_ENDPOINTSLICES] = "/apis/discovery.k8s.io/v1/endpointslices",
	[SG_K8S_NODES] = "/api/v1/nodes",
};

static const char *const res_selectors[SG_K8S_RESOURCE_COUNT] = {
	[SG_K8S_SERVICES] = SELECTOR,
	[SG_K8S_ENDPOINTSLICES] = SLICE_SELECTOR,
	[SG_K8S_NODES] = NULL,
};

/* ---- requests ------------------------------------------------------------ */

/* Percent-encode all but RFC 3986 §2.3 unreserved characters. */
static int
put_escaped(char **o, size_t *left, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (*left < 4)
			return -1;
		if (plain) {
			*(*o)++ = (char)c;
			(*left)--;
		} else {
			*(*o)++ = '%';
			*(*o)++ = hex[c >> 4];
			*(*o)++ = hex[c & 15];
			*left -= 3;
		}
	}
	**o = '\0';
	return 0;
}

char *
k8s_client_request_path(unsigned int res, int watch, const char *rv, const char *cont,
			uint32_t limit, uint32_t timeout)
{
	size_t size, left;
	char *buf, *o;
	int w;

	if (res >= SG_K8S_RESOURCE_COUNT) {
		errno = EINVAL;
		return NULL;
	}
	size = 512 + 3 * (strlen(rv != NULL ? rv : "") + strlen(cont != NULL ? cont : ""));
	buf = malloc(size);
	if (buf == NULL)
		return NULL;
	o = buf;
	left = size;
	w = snprintf(o, left, "%s?", res_paths[res]);
	o += w;
	left -= (size_t)w;
	if (res_selectors[res] != NULL) {
		w = snprintf(o, left, "labelSelector=");
		o += w;
		left -= (size_t)w;
		put_escaped(&o, &left, res_selectors[res]);
		*o++ = '&';
		left--;
	}
	if (watch) {
		w = snprintf(o, left, "watch=true&allowWatchBookmarks=true&timeoutSeconds=%u"
			     "&resourceVersion=", timeout);
		o += w;
		left -= (size_t)w;
		put_escaped(&o, &left, rv != NULL ? rv : "");
		return buf;
	}
	w = snprintf(o, left, "limit=%u", limit);
	o += w;
	left -= (size_t)w;
	if (cont != NULL) {
		w = snprintf(o, left, "&continue=");
		o += w;
		left -= (size_t)w;
		put_escaped(&o, &left, cont);
	}
	return buf;
}

/* ---- state --------------------------------------------------------------- */

static void
set_state(struct stream *s, unsigned int state)
{
	s->c->st.res[s->res].state = (uint8_t)state;
}

static void
record_error(struct k8s_client *c, const char *why)
{
	snprintf(c->st.last_error, sizeof(c->st.last_error), "%s", why);
	c->st.last_error_ms = k8s_real_ms();
}

/* Wait out the backoff, then repeat what failed. */
static void
fail(struct stream *s, const char *why)
{
	uint32_t delay;

	/* A watch that stood for a while was a success: its loss starts the
	 * backoff over, as client-go's reflector resets after a quiet spell. */
	if (s->watching && sg_mono_ms() - s->started_ms >= STABLE_MS)
		k8s_backoff_reset(&s->bo);
	delay = k8s_backoff_next(&s->bo);

	s->c->st.res[s->res].failures++;
	record_error(s->c, why);
	k8s_logf(&s->c->log, SG_K8S_LOG_ERR, "%s; retrying in %u.%u s", why, delay / 1000,
		 delay % 1000 / 100);
	free(s->cont);
	s->cont = NULL;
	s->wake_ms = sg_mono_ms() + delay;
	set_state(s, SG_K8S_STREAM_BACKOFF);
}

/* The watch cannot go on from its resourceVersion: list afresh. */
static void
relist(struct stream *s, const char *why)
{
	uint64_t now = sg_mono_ms();

	s->need_list = 1;
	free(s->cont);
	s->cont = NULL;
	record_error(s->c, why);
	if (s->listed_ms != 0 && now - s->listed_ms < QUICK_MS) {
		uint32_t delay = k8s_backoff_next(&s->bo);

		k8s_logf(&s->c->log, SG_K8S_LOG_WARNING, "%s; listing again in %u.%u s", why,
			 delay / 1000, delay % 1000 / 100);
		s->wake_ms = now + delay;
		set_state(s, SG_K8S_STREAM_BACKOFF);
		return;
	}
	k8s_logf(&s->c->log, SG_K8S_LOG_INFO, "%s; listing again", why);
	s->wake_ms = now;
}

static int
stream_start(struct stream *s)
{
	struct k8s_client *c = s->c;
	struct curl_slist *h;
	char *path, *url;
	int rc = -ENOMEM;

	if (s->need_list)
		path = k8s_client_request_path(s->res, 0, NULL, s->cont, c->page_size, 0);
	else
		path = k8s_client_request_path(s->res, 1, s->rv, NULL, 0, c->watch_timeout);
	if (path == NULL)
		return -ENOMEM;
	url = malloc(strlen(c->creds.server) + strlen(path) + 1);
	if (url == NULL)
		goto free_path;
	strcpy(url, c->creds.server);
	strcat(url, path);
	h = k8s_creds_headers(&c->creds, NULL);
	if (h == NULL)
		goto free_url;
	curl_slist_free_all(s->headers);
	s->headers = h;
	s->watching = !s->need_list;
	s->abort = ABORT_NONE;
	s->why[0] = '\0';
	s->errbuf[0] = '\0';
	s->len = 0;
	s->got = 0;
	k8s_lines_reset(&s->lines);
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	/* A watch the server does not end by itself in time is taken as dead. */
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS,
			 (long)(s->watching ? c->watch_timeout + c->request_timeout :
				c->request_timeout) * 1000L);
	if (curl_multi_add_handle(c->multi, s->easy) != CURLM_OK)
		goto free_url;
	s->active = 1;
	s->started_ms = sg_mono_ms();
	set_state(s, s->watching ? SG_K8S_STREAM_WATCHING : SG_K8S_STREAM_LISTING);
	k8s_logf(&c->log, SG_K8S_LOG_DEBUG, "%s %s", s->watching ? "watch" : "list", path);
	rc = 0;
free_url:
	free(url);
free_path:
	free(path);
	return rc;
}

/* ---- receiving ----------------------------------------------------------- */

static void
stop_with(struct stream *s, unsigned int kind, const char *fmt, const char *arg)
{
	if (s->abort != ABORT_NONE)
		return;
	s->abort = (uint8_t)kind;
	snprintf(s->why, sizeof(s->why), fmt, sg_k8s_resource_name(s->res), arg);
}

static int
on_line(void *arg, const char *line, size_t len)
{
	struct stream *s = arg;
	struct k8s_client *c = s->c;
	struct k8s_event ev;
	char why[160];
	int rc;

	rc = k8s_event_decode(line, len, &ev, why, sizeof(why));
	if (rc < 0) {
		stop_with(s, ABORT_FAIL, "watch %s: %s", why);
		return 1;
	}
	if (ev.type == K8S_EV_ERROR) {
		stop_with(s, ABORT_RELIST, "watch %s: ERROR event: %s", ev.message);
		k8s_event_clear(&ev);
		return 1;
	}
	if (ev.type != K8S_EV_BOOKMARK) {
		rc = k8s_model_apply(c->model, s->res, ev.type, ev.object);
		if (rc == -ENOMEM) {
			k8s_event_clear(&ev);
			stop_with(s, ABORT_FAIL, "watch %s: %s", "out of memory");
			return 1;
		}
		c->st.res[s->res].events++;
	}
	if (ev.rv[0] != '\0')
		memcpy(s->rv, ev.rv, sizeof(s->rv));
	c->st.res[s->res].last_event_ms = k8s_real_ms();
	/* The stream works: the next failure starts from the shortest delay. */
	if (s->got++ == 0)
		k8s_backoff_reset(&s->bo);
	k8s_event_clear(&ev);
	return 0;
}

static int
body_append(struct stream *s, const char *data, size_t n, size_t max)
{
	if (s->len + n > max)
		return -EMSGSIZE;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap != 0 ? s->cap : 65536;
		char *nb;

		while (cap < s->len + n + 1)
			cap *= 2;
		nb = realloc(s->body, cap);
		if (nb == NULL)
			return -ENOMEM;
		s->body = nb;
		s->cap = cap;
	}
	memcpy(s->body + s->len, data, n);
	s->len += n;
	s->body[s->len] = '\0';
	return 0;
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb;
	long code = 0;
	int rc;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		/* Only the start of an error body is kept: enough for its message. */
		(void)body_append(s, data, s->len + n > ERR_BODY_MAX ? ERR_BODY_MAX - s->len : n,
				  ERR_BODY_MAX);
		return n;
	}
	if (!s->watching) {
		rc = body_append(s, data, n, LIST_MAX);
		if (rc < 0)
			stop_with(s, ABORT_FAIL, "list %s: %s", rc == -ENOMEM ? "out of memory" :
				  "response larger than 1 GiB");
		return rc < 0 ? 0 : n;
	}
	rc = k8s_lines_feed(&s->lines, data, n, on_line, s);
	if (rc == -EMSGSIZE || rc == -ENOMEM)
		stop_with(s, ABORT_FAIL, "watch %s: %s", rc == -ENOMEM ? "out of memory" :
			  "a line longer than 16 MiB");
	return rc != 0 ? 0 : n;
}

/* "HTTP 403: <Status.message>" from an error response. */
static void
http_error(const struct stream *s, long code, char *buf, size_t size)
{
	cJSON *root = s->len != 0 ? cJSON_ParseWithLength(s->body, s->len) : NULL;
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
	char text[120];
	size_t n = 0;

	if (cJSON_IsString(msg)) {
		snprintf(text, sizeof(text), "%s", msg->valuestring);
	} else {
		for (; n < s->len && n + 1 < sizeof(text) && s->body[n] != '\n'; n++)
			text[n] = s->body[n] >= 0x20 && s->body[n] < 0x7f ? s->body[n] : '?';
		text[n] = '\0';
	}
	cJSON_Delete(root);
	snprintf(buf, size, "%s %s: HTTP %ld%s%s", s->watching ? "watch" : "list",
		 sg_k8s_resource_name(s->res), code, text[0] != '\0' ? ": " : "", text);
}

static void
list_page_done(struct stream *s)
{
	struct k8s_client *c = s->c;
	cJSON *root = cJSON_ParseWithLength(s->body, s->len);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items"), *it;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
	const cJSON *cont = cJSON_GetObjectItemCaseSensitive(meta, "continue");
	const char *name = sg_k8s_resource_name(s->res);
	char why[200];

	if (!cJSON_IsObject(root) || (!cJSON_IsArray(items) && !cJSON_IsNull(items) &&
				      items != NULL)) {
		snprintf(why, sizeof(why), "list %s: the response is not a list", name);
		goto fail;
	}
	if (!cJSON_IsString(rv) || rv->valuestring[0] == '\0' ||
	    strlen(rv->valuestring) >= sizeof(s->rv)) {
		snprintf(why, sizeof(why), "list %s: no usable metadata.resourceVersion", name);
		goto fail;
	}
	if (s->cont == NULL)
		k8s_model_relist_begin(c->model, s->res);
	cJSON_ArrayForEach(it, items) {
		if (k8s_model_relist_add(c->model, s->res, it) == -ENOMEM) {
			snprintf(why, sizeof(why), "list %s: out of memory", name);
			goto fail;
		}
	}
	free(s->cont);
	s->cont = NULL;
	if (cJSON_IsString(cont) && cont->valuestring[0] != '\0') {
		s->cont = strdup(cont->valuestring);
		if (s->cont == NULL) {
			snprintf(why, sizeof(why), "list %s: out of memory", name);
			goto fail;
		}
		cJSON_Delete(root);
		s->wake_ms = sg_mono_ms();	/* the next page, at once */
		return;
	}
	k8s_model_relist_end(c->model, s->res);
	snprintf(s->rv, sizeof(s->rv), "%s", rv->valuestring);
	cJSON_Delete(root);
	s->need_list = 0;
	s->listed_ms = sg_mono_ms();
	s->wake_ms = s->listed_ms;
	k8s_backoff_reset(&s->bo);
	c->st.res[s->res].listed = 1;
	c->st.res[s->res].lists++;
	c->st.res[s->res].last_event_ms = k8s_real_ms();
	k8s_logf(&c->log, SG_K8S_LOG_INFO, "listed %s: %u at resourceVersion %s", name,
		 k8s_model_count(c->model, s->res), s->rv);
	return;
fail:
	cJSON_Delete(root);
	fail(s, why);
}

static void
stream_done(struct stream *s, CURLcode result)
{
	struct k8s_client *c = s->c;
	const char *verb = s->watching ? "watch" : "list", *name = sg_k8s_resource_name(s->res);
	uint64_t now = sg_mono_ms();
	char why[SG_K8S_ERR_SIZE];
	long code = 0;

	curl_multi_remove_handle(c->multi, s->easy);
	s->active = 0;
	s->wake_ms = now;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	if (s->abort == ABORT_RELIST) {
		relist(s, s->why);
		return;
	}
	if (s->abort == ABORT_FAIL) {
		fail(s, s->why);
		return;
	}
	if (result == CURLE_PARTIAL_FILE) {
		/* libcurl's words for a stream cut short ("Transferred a partial file"). */
		snprintf(why, sizeof(why), "%s %s: the connection closed in mid-response", verb,
			 name);
		fail(s, why);
		return;
	}
	if (result != CURLE_OK) {
		snprintf(why, sizeof(why), "%s %s: %s%s%.160s", verb, name,
			 curl_easy_strerror(result), s->errbuf[0] != '\0' ? ": " : "", s->errbuf);
		fail(s, why);
		return;
	}
	/* 410 Gone: the resourceVersion (or the continue token) is too old. */
	if (code == 410) {
		http_error(s, code, why, sizeof(why));
		relist(s, why);
		return;
	}
	if (code != 200) {
		http_error(s, code, why, sizeof(why));
		if (code == 401)
			c->token_read_ms = 0;	/* a rotated token, perhaps: read it now */
		fail(s, why);
		return;
	}
	if (!s->watching) {
		list_page_done(s);
		return;
	}
	if (s->got == 0 && now - s->started_ms < QUICK_MS) {
		snprintf(why, sizeof(why), "watch %s: the server ended it at once", name);
		fail(s, why);
		return;
	}
	/* timeoutSeconds ran out: go on from the last resourceVersion at once. */
	k8s_backoff_reset(&s->bo);
}

/* ---- the thread ---------------------------------------------------------- */

static void
publish(struct k8s_client *c)
{
	int mode = c->ops.take_mode(c->ops.arg), rc;
	struct sg_k8s_sync *st = &c->st;
	uint8_t synced = 1;

	if (mode >= 0)
		k8s_model_set_default_mode(c->model, (unsigned int)mode);
	if (!c->gate_open && st->res[SG_K8S_SERVICES].listed &&
	    st->res[SG_K8S_ENDPOINTSLICES].listed)
		c->gate_open = 1;
	if (c->gate_open) {
		rc = k8s_model_flush(c->model, c->ops.change, c->ops.arg);
		if (rc < 0)
			k8s_logf(&c->log, SG_K8S_LOG_ERR, "out of memory building services; "
				 "retrying");
	}
	/* The first list is handed out even if it found no node at all. */
	if (st->res[SG_K8S_NODES].listed && (!c->nodes_sent || k8s_model_nodes_changed(c->model))) {
		struct sg_k8s_nodes *n = k8s_model_nodes(c->model);

		if (n != NULL) {
			c->ops.nodes(c->ops.arg, n);
			c->nodes_sent = 1;
		}
	}
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		st->res[r].objects = k8s_model_count(c->model, r);
		snprintf(st->res[r].resource_version, sizeof(st->res[r].resource_version), "%s",
			 c->streams[r].rv);
		synced &= st->res[r].listed;
	}
	if (synced && !st->synced)
		k8s_logf(&c->log, SG_K8S_LOG_INFO, "synced: %u services served, %u endpointslices, "
			 "%u nodes", k8s_model_served(c->model),
			 k8s_model_count(c->model, SG_K8S_ENDPOINTSLICES),
			 k8s_model_count(c->model, SG_K8S_NODES));
	st->synced = synced;
	st->services = k8s_model_served(c->model);
	st->bad_objects = k8s_model_bad(c->model);
	c->ops.sync(c->ops.arg, st);
}

static void *
client_main(void *arg)
{
	struct k8s_client *c = arg;

	while (!atomic_load(&c->stop)) {
		uint64_t now = sg_mono_ms();
		int running, left, timeout = POLL_MAX_MS;
		CURLMsg *msg;

		k8s_creds_refresh_token(&c->creds, &c->token_read_ms, c->token_refresh, 0, &c->log);
		for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
			struct stream *s = &c->streams[r];

			if (s->active || now < s->wake_ms)
				continue;
			if (stream_start(s) < 0) {
				/* Out of memory: try again in a moment. */
				s->wake_ms = now + K8S_BACKOFF_MIN_MS;
				record_error(c, "out of memory starting a request");
			}
		}
		curl_multi_perform(c->multi, &running);
		while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
			char *priv = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			if (priv != NULL)
				stream_done((struct stream *)(void *)priv, msg->data.result);
		}
		publish(c);
		now = sg_mono_ms();
		for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
			const struct stream *s = &c->streams[r];

			if (s->active)
				continue;
			if (s->wake_ms <= now)
				timeout = 0;
			else if (s->wake_ms - now < (uint64_t)timeout)
				timeout = (int)(s->wake_ms - now);
		}
		if (timeout > 0)
			curl_multi_poll(c->multi, NULL, 0, timeout, NULL);
	}
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		struct stream *s = &c->streams[r];

		if (s->active)
			curl_multi_remove_handle(c->multi, s->easy);
		s->active = 0;
		c->st.res[r].state = SG_K8S_STREAM_IDLE;
	}
	c->ops.sync(c->ops.arg, &c->st);
	return NULL;
}

/* ---- set-up -------------------------------------------------------------- */

int
k8s_curl_tls(const struct k8s_creds *cr, CURL *e, char *err, size_t errlen)
{
	struct curl_blob b;
	CURLcode rc = CURLE_OK;
	const char *what = "";

	if (cr->ca.data != NULL) {
		b = (struct curl_blob){ cr->ca.data, cr->ca.len, CURL_BLOB_COPY };
		what = "certificate-authority-data (CURLOPT_CAINFO_BLOB)";
		rc = curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (cr->ca_file != NULL) {
		what = "a CA file";
		rc = curl_easy_setopt(e, CURLOPT_CAINFO, cr->ca_file);
	}
	if (rc == CURLE_OK && cr->cert.data != NULL) {
		b = (struct curl_blob){ cr->cert.data, cr->cert.len, CURL_BLOB_COPY };
		what = "client-certificate-data (CURLOPT_SSLCERT_BLOB)";
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
	} else if (rc == CURLE_OK && cr->cert_file != NULL) {
		what = "a client certificate file";
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT, cr->cert_file);
	}
	if (rc == CURLE_OK && (cr->cert.data != NULL || cr->cert_file != NULL))
		rc = curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	if (rc == CURLE_OK && cr->key.data != NULL) {
		b = (struct curl_blob){ cr->key.data, cr->key.len, CURL_BLOB_COPY };
		what = "client-key-data (CURLOPT_SSLKEY_BLOB)";
		rc = curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
	} else if (rc == CURLE_OK && cr->key_file != NULL) {
		what = "a client key file";
		rc = curl_easy_setopt(e, CURLOPT_SSLKEY, cr->key_file);
	}
	if (rc == CURLE_OK && (cr->key.data != NULL || cr->key_file != NULL))
		rc = curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	if (rc == CURLE_OK && cr->insecure) {
		rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (rc == CURLE_OK)
		return 0;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: libcurl cannot use %s: %s", cr->origin, what,
			 curl_easy_strerror(rc));
	return -EINVAL;
}

static int
setup_easy(struct k8s_client *c, struct stream *s, char *err, size_t errlen)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return -ENOMEM;
	s->easy = e;
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
	/* Threads: no signals for timeouts. */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->request_timeout * 1000L);
	/* A watch is quiet for minutes: keepalives notice a peer that vanished. */
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	/* API servers compress large lists when asked. */
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	return k8s_curl_tls(&c->creds, e, err, errlen);
}

struct k8s_client *
k8s_client_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds,
		  const struct k8s_client_ops *ops, const struct k8s_log *log, char *err,
		  size_t errlen)
{
	struct k8s_client *c = calloc(1, sizeof(*c));
	uint64_t seed = conf->seed != 0 ? conf->seed : sg_mono_ms() ^ (uint64_t)(uintptr_t)c;
	int rc = -ENOMEM;

	if (c == NULL)
		return NULL;
	c->log = *log;
	c->ops = *ops;
	c->page_size = conf->page_size;
	c->watch_timeout = conf->watch_timeout;
	c->request_timeout = conf->request_timeout;
	c->token_refresh = conf->token_refresh;
	c->model = k8s_model_create(conf->default_mode, log);
	c->multi = curl_multi_init();
	if (c->model == NULL || c->multi == NULL)
		goto fail;
	/* What the client uses is its own from here on. */
	c->creds = *creds;
	memset(creds, 0, sizeof(*creds));
	c->token_read_ms = sg_mono_ms();
	snprintf(c->st.server, sizeof(c->st.server), "%s", c->creds.server);
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		struct stream *s = &c->streams[r];

		s->c = c;
		s->res = r;
		s->need_list = 1;
		/* Three streams, three sequences, all from the one seed. */
		k8s_backoff_init(&s->bo, seed + r * 0x9e3779b97f4a7c15ull);
		k8s_lines_init(&s->lines, K8S_LINE_MAX);
		rc = setup_easy(c, s, err, errlen);
		if (rc < 0) {
			*creds = c->creds;
			memset(&c->creds, 0, sizeof(c->creds));
			goto fail;
		}
	}
	return c;
fail:
	k8s_client_free(c);
	errno = -rc;
	return NULL;
}

int
k8s_client_start(struct k8s_client *c)
{
	int rc;

	atomic_store(&c->stop, 0);
	rc = pthread_create(&c->thread, NULL, client_main, c);
	if (rc != 0)
		return -rc;
	c->started = 1;
	return 0;
}

void
k8s_client_wake(struct k8s_client *c)
{
	if (c != NULL && c->multi != NULL)
		curl_multi_wakeup(c->multi);
}

void
k8s_client_stop(struct k8s_client *c)
{
	if (c == NULL || !c->started)
		return;
	atomic_store(&c->stop, 1);
	curl_multi_wakeup(c->multi);
	pthread_join(c->thread, NULL);
	c->started = 0;
}

void
k8s_client_free(struct k8s_client *c)
{
	if (c == NULL)
		return;
	k8s_client_stop(c);
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		struct stream *s = &c->streams[r];

		if (s->easy != NULL)
			curl_easy_cleanup(s->easy);
		curl_slist_free_all(s->headers);
		free(s->cont);
		free(s->body);
		k8s_lines_fini(&s->lines);
	}
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	k8s_model_free(c->model);
	k8s_creds_clear(&c->creds);
	free(c);
}
