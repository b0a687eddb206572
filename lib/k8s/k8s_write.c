/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer thread: requests the daemon makes (status patches, re-reads
 * after a conflict, Events), one at a time, each made by k8s_call.c on one
 * keep-alive connection with the writer's own copy of the credentials. It
 * is apart from the client thread so that a slow or stalled write never
 * delays the watches, apart from the caller so that the control thread
 * never waits on the network, and apart from the lease thread (which has a
 * connection of its own) so that a renewal never waits behind a patch. Requests and answers are two FIFOs under one mutex, held only
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

#include "k8s_private.h"

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
	struct sg_k8s_call *call;	/* k8s_call.c does each request */
	uint32_t timeout_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct wreq *todo, *todo_tail;
	struct wreq *done, *done_tail;
	uint8_t started;
	uint8_t stop;			/* under lock */
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

static void
perform(struct k8s_writer *w, struct wreq *r)
{
	int rc;

	r->resp.tag = r->tag;
	rc = k8s_call_do(w->call, r->method, r->path, r->ctype, r->body, w->timeout_ms,
			 &r->resp.body, r->resp.error, sizeof(r->resp.error));
	r->resp.status = rc > 0 ? rc : 0;
	k8s_logf(&w->log, SG_K8S_LOG_DEBUG, "%s %s: %ld", r->method, r->path, r->resp.status);
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
	char err[256] = "";
	int rc;

	if (w == NULL)
		return NULL;
	w->log = *log;
	w->timeout_ms = conf->request_timeout * 1000u;
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		rc = ENOMEM;
		goto free_writer;
	}
	if (pthread_cond_init(&w->cond, NULL) != 0) {
		rc = ENOMEM;
		goto destroy_lock;
	}
	w->call = k8s_call_create(conf, creds, err, sizeof(err));
	if (w->call == NULL) {
		rc = errno;
		k8s_logf(&w->log, SG_K8S_LOG_ERR, "writer: %s", err[0] != '\0' ? err :
			 "out of memory");
		goto destroy_cond;
	}
	return w;
destroy_cond:
	pthread_cond_destroy(&w->cond);
destroy_lock:
	pthread_mutex_destroy(&w->lock);
free_writer:
	free(w);
	errno = rc;
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
	sg_k8s_call_free(w->call);
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
