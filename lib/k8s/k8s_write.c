/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer thread: requests the daemon makes (status patches, re-reads
 * after a conflict, Events), one at a time, each made by k8s_call.c on one
 * keep-alive connection with the writer's own copy of the credentials. It
 * is apart from the client thread so that a slow or stalled write never
 * delays the watches, apart from the caller so that the control thread
 * never waits on the network, and apart from the lease thread (which has a
 * connection of its own) so that a renewal never waits behind a patch.
 *
 * Two kinds of request, in two FIFOs. Tagged ones (sg_k8s_request()) are
 * answered through a third FIFO, and always go first: a status patch
 * publishes a VIP, and its caller has at most one in flight per Service, so
 * that queue is bounded by the number of Services. Best-effort ones
 * (sg_k8s_post_event()) are never answered and go only when no tagged one
 * waits; their queue is bounded, dropping the oldest, as client-go's event
 * recorder drops Events under pressure: against a slow or unreachable API
 * server each costs up to request_timeout, and nothing waits for them.
 * A failed one is logged and forgotten. The FIFOs are under one mutex,
 * held only to link or unlink an entry.
 *
 * No retry here: the caller knows whether a failed write still matters
 * (the service may have changed since) and retries with its own backoff.
 *
 * Not here: the watches (k8s_client.c), what is written (the daemon).
 */
#include <errno.h>
#include <inttypes.h>
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

struct wfifo {
	struct wreq *head, *tail;
	unsigned int n;
};

struct k8s_writer {
	struct k8s_log log;
	struct sg_k8s_call *call;	/* k8s_call.c does each request */
	uint32_t timeout_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct wfifo todo;		/* tagged: answered, go first */
	struct wfifo best;		/* best effort: never answered */
	struct wfifo done;		/* answers not taken yet */
	uint64_t dropped;		/* best effort dropped, since create */
	uint8_t dropping;		/* dropped since best last drained: said so */
	uint8_t started;
	uint8_t stop;			/* under lock */
};

static void
fifo_push(struct wfifo *f, struct wreq *r)
{
	r->next = NULL;
	if (f->tail != NULL)
		f->tail->next = r;
	else
		f->head = r;
	f->tail = r;
	f->n++;
}

static struct wreq *
fifo_pop(struct wfifo *f)
{
	struct wreq *r = f->head;

	if (r == NULL)
		return NULL;
	f->head = r->next;
	if (f->head == NULL)
		f->tail = NULL;
	f->n--;
	return r;
}

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

/* A request with copies of its strings, for either queue; NULL: out of memory. */
static struct wreq *
wreq_new(const char *method, const char *path, const char *content_type, const char *body,
	 uint64_t tag)
{
	struct wreq *r = calloc(1, sizeof(*r));
	int bad = 0;

	if (r == NULL)
		return NULL;
	r->tag = tag;
	r->method = dup_or_null(method, &bad);
	r->path = dup_or_null(path, &bad);
	r->ctype = dup_or_null(content_type, &bad);
	r->body = dup_or_null(body, &bad);
	if (bad) {
		wreq_free(r);
		return NULL;
	}
	return r;
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

/* Nobody hears of a best-effort write: a failure is said here, once. */
static void
log_failed(const struct k8s_writer *w, const struct wreq *r)
{
	cJSON *o;
	const cJSON *msg;

	if (r->resp.status == 0) {	/* error is "METHOD path: why" */
		k8s_logf(&w->log, SG_K8S_LOG_WARNING, "%s (not retried)", r->resp.error);
		return;
	}
	o = r->resp.body != NULL ? cJSON_Parse(r->resp.body) : NULL;
	msg = cJSON_GetObjectItemCaseSensitive(o, "message");
	k8s_logf(&w->log, SG_K8S_LOG_WARNING, "%s %s: HTTP %ld%s%.200s (not retried)", r->method,
		 r->path, r->resp.status, cJSON_IsString(msg) ? ": " : "",
		 cJSON_IsString(msg) ? msg->valuestring : "");
	cJSON_Delete(o);
}

static void *
writer_main(void *arg)
{
	struct k8s_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct wreq *r;
		int best;

		while (!w->stop && w->todo.head == NULL && w->best.head == NULL)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		r = fifo_pop(&w->todo);
		best = r == NULL;
		if (best) {
			r = fifo_pop(&w->best);
			if (w->best.n == 0)
				w->dropping = 0;	/* drained: the next drop is news */
		}
		pthread_mutex_unlock(&w->lock);
		perform(w, r);
		if (best) {
			if (r->resp.status == 0 || r->resp.status >= 300)
				log_failed(w, r);
			wreq_free(r);
		}
		pthread_mutex_lock(&w->lock);
		if (!best)
			fifo_push(&w->done, r);
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
	for (struct wreq *r; (r = fifo_pop(&w->todo)) != NULL;) {
		r->resp.tag = r->tag;
		snprintf(r->resp.error, sizeof(r->resp.error), "%.8s %.200s: stopped", r->method,
			 r->path);
		fifo_push(&w->done, r);
	}
	/* Nobody waits for a best-effort write. */
	for (struct wreq *r; (r = fifo_pop(&w->best)) != NULL;)
		wreq_free(r);
	pthread_mutex_unlock(&w->lock);
}

void
k8s_writer_free(struct k8s_writer *w)
{
	if (w == NULL)
		return;
	k8s_writer_stop(w);
	for (struct wreq *r; (r = fifo_pop(&w->done)) != NULL;)
		wreq_free(r);
	sg_k8s_call_free(w->call);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/*
 * The start of queueing a request of either kind: the arguments checked,
 * a copy made, the lock taken. Returns 0 with *out and the lock held, or
 * -EINVAL, -ENOMEM, -ESHUTDOWN (stopped), without the lock.
 */
static int
queue_open(struct k8s_writer *w, const char *method, const char *path,
	   const char *content_type, const char *body, uint64_t tag, struct wreq **out)
{
	struct wreq *r;

	if (w == NULL || method == NULL || path == NULL)
		return -EINVAL;
	r = wreq_new(method, path, content_type, body, tag);
	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		wreq_free(r);
		return -ESHUTDOWN;
	}
	*out = r;
	return 0;
}

int
k8s_writer_submit(struct k8s_writer *w, const char *method, const char *path,
		  const char *content_type, const char *body, uint64_t tag)
{
	struct wreq *r;
	int rc = queue_open(w, method, path, content_type, body, tag, &r);

	if (rc != 0)
		return rc;
	fifo_push(&w->todo, r);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int
k8s_writer_submit_best(struct k8s_writer *w, const char *method, const char *path,
		       const char *content_type, const char *body)
{
	struct wreq *r, *old = NULL;
	uint64_t dropped = 0;
	int news = 0, rc = queue_open(w, method, path, content_type, body, 0, &r);

	if (rc != 0)
		return rc;
	/* The oldest goes: the newest says most about the state of things now. */
	if (w->best.n >= SG_K8S_EVENTS_WAITING) {
		old = fifo_pop(&w->best);
		dropped = ++w->dropped;
		news = !w->dropping;
		w->dropping = 1;
	}
	fifo_push(&w->best, r);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* Once per overflow, not per drop: under pressure a line per Event is noise. */
	if (news)
		k8s_logf(&w->log, SG_K8S_LOG_WARNING, "best-effort writes (Events): %u wait for "
			 "the API server; the oldest are dropped until they drain (first %s %s, "
			 "%" PRIu64 " dropped since start)", SG_K8S_EVENTS_WAITING, old->method,
			 old->path, dropped);
	wreq_free(old);
	return 0;
}

uint64_t
k8s_writer_dropped(struct k8s_writer *w)
{
	uint64_t n;

	if (w == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	n = w->dropped;
	pthread_mutex_unlock(&w->lock);
	return n;
}

unsigned int
k8s_writer_take(struct k8s_writer *w, struct sg_k8s_response *out, unsigned int n)
{
	unsigned int got = 0;
	struct wreq *r;

	if (w == NULL || out == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	while (got < n && (r = fifo_pop(&w->done)) != NULL) {
		out[got++] = r->resp;
		r->resp.body = NULL;
		wreq_free(r);
	}
	pthread_mutex_unlock(&w->lock);
	return got;
}
