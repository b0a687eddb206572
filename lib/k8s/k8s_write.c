/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer thread: requests the daemon makes (status patches, re-reads
 * after a conflict, Events), one at a time on one keep-alive connection,
 * with a copy of the client's credentials. It is apart from the client
 * thread so that a slow or stalled write never delays the watches, and
 * apart from the caller so that the control thread never waits on the
 * network. Requests and answers are two FIFOs under one mutex, held only
 * to link or unlink an entry.
 *
 * No retry here: the caller knows whether a failed write still matters
 * (the service may have changed since) and retries with its own backoff.
 *
 * Not here: the watches (k8s_client.c), what is written (the daemon).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "k8s_private.h"

/* An answer longer than this is cut: a Service or a Status is far smaller. */
#define BODY_MAX (4u << 20)

struct wreq {
	struct wreq *next;
	uint64_t tag;
	char *method;
	char *path;
	char *ctype;
	char *body;
	struct sg_k8s_response resp;
};

struct k8s_writer {
	struct k8s_log log;
	struct k8s_creds creds;
	uint32_t request_timeout;
	uint32_t token_refresh;
	uint64_t token_read_ms;
	CURL *easy;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct wreq *todo, *todo_tail;
	struct wreq *done, *done_tail;
	uint8_t started;
	uint8_t stop;			/* under lock */
	/* the response being received */
	char *buf;
	size_t len, cap;
	char errbuf[CURL_ERROR_SIZE];
};

static void
wreq_free(struct wreq *r)
{
	if (r == NULL)
		return;
	free(r->method);
	free(r->path);
	free(r->ctype);
	free(r->body);
	free(r->resp.body);
	free(r);
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct k8s_writer *w = arg;
	size_t n = size * nmemb;

	if (w->len + n + 1 > BODY_MAX)
		return 0;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap != 0 ? w->cap : 4096;
		char *b;

		while (cap < w->len + n + 1)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (b == NULL)
			return 0;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
	w->buf[w->len] = '\0';
	return n;
}

/* client-go re-reads a token file every minute, and after a 401. */
static void
refresh_token(struct k8s_writer *w, int force)
{
	uint64_t now = k8s_mono_ms();
	char err[400], *tok;

	if (w->creds.token_file == NULL ||
	    (!force && now - w->token_read_ms < w->token_refresh * 1000ull))
		return;
	w->token_read_ms = now;
	if (k8s_creds_read_token(w->creds.token_file, &tok, err, sizeof(err)) < 0)
		return;
	free(w->creds.token);
	w->creds.token = tok;
}

static void
perform(struct k8s_writer *w, struct wreq *r)
{
	static const char bearer[] = "Authorization: Bearer ";
	struct curl_slist *h = NULL, *n;
	char *url = NULL, hdr[256];
	CURLcode rc;
	long code = 0;

	r->resp.tag = r->tag;
	url = malloc(strlen(w->creds.server) + strlen(r->path) + 1);
	if (url == NULL)
		goto nomem;
	strcpy(url, w->creds.server);
	strcat(url, r->path);
	n = h = curl_slist_append(NULL, "Accept: application/json");
	if (n != NULL)
		n = curl_slist_append(h, "User-Agent: svcgw/0.1");
	if (n != NULL && r->ctype != NULL) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", r->ctype);
		n = curl_slist_append(h, hdr);
	}
	if (n != NULL && w->creds.token != NULL) {
		char *t = malloc(sizeof(bearer) + strlen(w->creds.token));

		n = NULL;
		if (t != NULL) {
			strcpy(t, bearer);
			strcat(t, w->creds.token);
			n = curl_slist_append(h, t);
			free(t);
		}
	}
	if (n == NULL)
		goto nomem;
	w->len = 0;
	w->errbuf[0] = '\0';
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(w->easy, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body != NULL) {
		curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(w->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	} else {
		curl_easy_setopt(w->easy, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(w->easy, CURLOPT_CUSTOMREQUEST, r->method);
	}
	rc = curl_easy_perform(w->easy);
	if (rc == CURLE_OK)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &code);
	r->resp.status = rc == CURLE_OK ? code : 0;
	if (rc != CURLE_OK)
		snprintf(r->resp.error, sizeof(r->resp.error), "%.8s %.120s: %.120s", r->method,
			 r->path, w->errbuf[0] != '\0' ? w->errbuf : curl_easy_strerror(rc));
	if (w->len > 0) {
		r->resp.body = malloc(w->len + 1);
		if (r->resp.body != NULL)
			memcpy(r->resp.body, w->buf, w->len + 1);
	}
	if (code == 401)
		refresh_token(w, 1);
	k8s_logf(&w->log, SG_K8S_LOG_DEBUG, "%s %s: %ld", r->method, r->path, r->resp.status);
	curl_slist_free_all(h);
	free(url);
	return;
nomem:
	curl_slist_free_all(h);
	free(url);
	r->resp.status = 0;
	snprintf(r->resp.error, sizeof(r->resp.error), "%.8s %.200s: out of memory", r->method,
		 r->path);
}

static void
finish(struct k8s_writer *w, struct wreq *r)
{
	r->next = NULL;
	if (w->done_tail != NULL)
		w->done_tail->next = r;
	else
		w->done = r;
	w->done_tail = r;
}

static void *
writer_main(void *arg)
{
	struct k8s_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct wreq *r;

		while (!w->stop && w->todo == NULL)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		r = w->todo;
		w->todo = r->next;
		if (w->todo == NULL)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->lock);
		refresh_token(w, 0);
		perform(w, r);
		pthread_mutex_lock(&w->lock);
		finish(w, r);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct k8s_writer *
k8s_writer_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds,
		  const struct k8s_log *log)
{
	struct k8s_writer *w = calloc(1, sizeof(*w));
	char err[256];

	if (w == NULL)
		return NULL;
	w->log = *log;
	w->request_timeout = conf->request_timeout;
	w->token_refresh = conf->token_refresh;
	w->token_read_ms = k8s_mono_ms();
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	pthread_cond_init(&w->cond, NULL);
	w->easy = curl_easy_init();
	if (w->easy == NULL)
		goto fail;
	w->creds = *creds;
	memset(creds, 0, sizeof(*creds));
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(w->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)w->request_timeout * 1000L);
	curl_easy_setopt(w->easy, CURLOPT_TIMEOUT_MS, (long)w->request_timeout * 1000L);
	if (k8s_curl_tls(&w->creds, w->easy, err, sizeof(err)) < 0) {
		*creds = w->creds;
		memset(&w->creds, 0, sizeof(w->creds));
		goto fail;
	}
	return w;
fail:
	k8s_writer_free(w);
	errno = EINVAL;
	return NULL;
}

int
k8s_writer_start(struct k8s_writer *w)
{
	int rc = pthread_create(&w->thread, NULL, writer_main, w);

	if (rc != 0)
		return -rc;
	w->started = 1;
	return 0;
}

void
k8s_writer_stop(struct k8s_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = 0;
	/* What was never sent is answered: the caller does not wait for it forever. */
	pthread_mutex_lock(&w->lock);
	while (w->todo != NULL) {
		struct wreq *r = w->todo;

		w->todo = r->next;
		r->resp.tag = r->tag;
		snprintf(r->resp.error, sizeof(r->resp.error), "%.8s %.200s: stopped", r->method,
			 r->path);
		finish(w, r);
	}
	w->todo_tail = NULL;
	pthread_mutex_unlock(&w->lock);
}

void
k8s_writer_free(struct k8s_writer *w)
{
	if (w == NULL)
		return;
	k8s_writer_stop(w);
	while (w->done != NULL) {
		struct wreq *r = w->done;

		w->done = r->next;
		wreq_free(r);
	}
	if (w->easy != NULL)
		curl_easy_cleanup(w->easy);
	free(w->buf);
	k8s_creds_clear(&w->creds);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static char *
dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*bad = 1;
	return d;
}

int
k8s_writer_submit(struct k8s_writer *w, const char *method, const char *path,
		  const char *content_type, const char *body, uint64_t tag)
{
	struct wreq *r;
	int bad = 0;

	if (w == NULL || method == NULL || path == NULL)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->tag = tag;
	r->method = dup_or_null(method, &bad);
	r->path = dup_or_null(path, &bad);
	r->ctype = dup_or_null(content_type, &bad);
	r->body = dup_or_null(body, &bad);
	if (bad) {
		wreq_free(r);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		wreq_free(r);
		return -ESHUTDOWN;
	}
	if (w->todo_tail != NULL)
		w->todo_tail->next = r;
	else
		w->todo = r;
	w->todo_tail = r;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

unsigned int
k8s_writer_take(struct k8s_writer *w, struct sg_k8s_response *out, unsigned int n)
{
	unsigned int got = 0;

	if (w == NULL || out == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	while (got < n && w->done != NULL) {
		struct wreq *r = w->done;

		w->done = r->next;
		if (w->done == NULL)
			w->done_tail = NULL;
		out[got++] = r->resp;
		r->resp.body = NULL;
		wreq_free(r);
	}
	pthread_mutex_unlock(&w->lock);
	return got;
}
