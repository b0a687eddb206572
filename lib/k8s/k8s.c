/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The public face of lib/k8s: creating and stopping the client, and the
 * hand-over between the client thread and the daemon's control thread.
 *
 * The hand-over is a FIFO of pending changes with a map from service key
 * to its queue entry, so that a service changed again before the control
 * thread drained it keeps its place and only its newest snapshot (the
 * older one is freed). The queue has its lock, the nodes snapshot and the
 * copy of the sync state another; the client thread holds them only to
 * swap pointers or copy that struct, never across I/O or model work, so the
 * control thread never waits on the network. An atomic count lets an idle
 * drain return without touching the lock.
 *
 * Not here: the thread and its transfers (k8s_client.c), the model
 * (k8s_model.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "k8s_private.h"

#define DEFAULT_PAGE_SIZE 500u
#define DEFAULT_WATCH_TIMEOUT 300u
#define DEFAULT_REQUEST_TIMEOUT 30u
#define DEFAULT_TOKEN_REFRESH 60u	/* client-go re-reads token files every minute */

struct pending {
	struct pending *next;
	struct sg_k8s_service *svc;
	char key[SG_K8S_KEY_SIZE];
};

struct sg_k8s {
	struct k8s_log log;
	struct k8s_client *client;
	struct k8s_writer *writer;	/* sg_k8s_request(), sg_k8s_post_event() */
	struct k8s_queue queue;
	pthread_mutex_t lock;		/* nodes and sync */
	struct sg_k8s_nodes *nodes;	/* not taken yet */
	struct sg_k8s_sync sync;
	atomic_int mode;		/* asked for, not yet applied; -1: none */
	uint8_t started;
};

/* ---- small shared helpers ------------------------------------------------ */

void
k8s_logf(const struct k8s_log *l, unsigned int level, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	if (l == NULL || l->fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->fn(l->arg, level, msg);
}

uint64_t
k8s_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
sg_k8s_resource_name(unsigned int res)
{
	static const char *const names[SG_K8S_RESOURCE_COUNT] = {
		"services", "endpointslices", "nodes",
	};

	return res < SG_K8S_RESOURCE_COUNT ? names[res] : "?";
}

const char *
sg_k8s_stream_state_name(unsigned int state)
{
	static const char *const names[] = { "idle", "listing", "watching", "backoff" };

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

void
sg_k8s_conf_init(struct sg_k8s_conf *kc, const struct sg_conf *c)
{
	if (kc == NULL || c == NULL)
		return;
	memset(kc, 0, sizeof(*kc));
	kc->source = c->kubernetes.source;
	kc->kubeconfig = c->kubernetes.kubeconfig;
	kc->context = c->kubernetes.context;
	kc->page_size = c->kubernetes.page_size;
	kc->watch_timeout = c->kubernetes.watch_timeout;
	kc->request_timeout = c->kubernetes.request_timeout;
	kc->default_mode = c->default_mode;
}

/* ---- the queue of changes ------------------------------------------------ */

int
k8s_queue_init(struct k8s_queue *q)
{
	memset(q, 0, sizeof(*q));
	k8s_map_init(&q->by_key);
	atomic_init(&q->n, 0);
	return pthread_mutex_init(&q->lock, NULL) != 0 ? -ENOMEM : 0;
}

void
k8s_queue_fini(struct k8s_queue *q)
{
	while (q->head != NULL) {
		struct pending *p = q->head;

		q->head = p->next;
		sg_k8s_service_free(p->svc);
		free(p);
	}
	q->tail = NULL;
	k8s_map_fini(&q->by_key);
	pthread_mutex_destroy(&q->lock);
}

int
k8s_queue_put(struct k8s_queue *q, const char *key, struct sg_k8s_service *svc)
{
	struct pending *p;

	pthread_mutex_lock(&q->lock);
	p = k8s_map_get(&q->by_key, key);
	if (p != NULL) {
		sg_k8s_service_free(p->svc);
		p->svc = svc;
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	if (strlen(key) >= SG_K8S_KEY_SIZE) {
		pthread_mutex_unlock(&q->lock);
		sg_k8s_service_free(svc);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || k8s_map_put(&q->by_key, key, p) < 0) {
		pthread_mutex_unlock(&q->lock);
		free(p);
		sg_k8s_service_free(svc);
		return -ENOMEM;
	}
	strcpy(p->key, key);
	p->svc = svc;
	if (q->tail != NULL)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	atomic_fetch_add(&q->n, 1);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

unsigned int
k8s_queue_take(struct k8s_queue *q, struct sg_k8s_change *out, unsigned int n)
{
	unsigned int i = 0;

	if (n == 0 || atomic_load(&q->n) == 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (i < n && q->head != NULL) {
		struct pending *p = q->head;

		q->head = p->next;
		if (q->head == NULL)
			q->tail = NULL;
		k8s_map_del(&q->by_key, p->key);
		memcpy(out[i].key, p->key, sizeof(out[i].key));
		out[i++].svc = p->svc;
		free(p);
	}
	atomic_fetch_sub(&q->n, i);
	pthread_mutex_unlock(&q->lock);
	return i;
}

/* ---- what the client thread calls ---------------------------------------- */

static void
on_change(void *arg, const char *key, struct sg_k8s_service *svc)
{
	struct sg_k8s *k = arg;

	if (k8s_queue_put(&k->queue, key, svc) < 0)
		k8s_logf(&k->log, SG_K8S_LOG_ERR, "out of memory: a change of service %s is lost "
			 "until it changes again", key);
}

static void
on_nodes(void *arg, struct sg_k8s_nodes *n)
{
	struct sg_k8s *k = arg;
	struct sg_k8s_nodes *old;

	pthread_mutex_lock(&k->lock);
	old = k->nodes;
	k->nodes = n;
	pthread_mutex_unlock(&k->lock);
	sg_k8s_nodes_free(old);
}

static void
on_sync(void *arg, const struct sg_k8s_sync *st)
{
	struct sg_k8s *k = arg;

	pthread_mutex_lock(&k->lock);
	k->sync = *st;
	pthread_mutex_unlock(&k->lock);
}

static int
take_mode(void *arg)
{
	struct sg_k8s *k = arg;

	return atomic_exchange(&k->mode, -1);
}

/* ---- the API ------------------------------------------------------------- */

static void
curl_init_once(void)
{
	/* Not thread-safe in libcurl 7.88 unless done before any thread uses it. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
k8s_curl_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, curl_init_once);
}

static int
put_err(char *err, size_t errlen, int rc, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	errno = -rc;
	return rc;
}

static int
check_conf(const struct sg_k8s_conf *in, struct sg_k8s_conf *c, char *err, size_t errlen)
{
	*c = *in;
	if (c->page_size == 0)
		c->page_size = DEFAULT_PAGE_SIZE;
	if (c->watch_timeout == 0)
		c->watch_timeout = DEFAULT_WATCH_TIMEOUT;
	if (c->request_timeout == 0)
		c->request_timeout = DEFAULT_REQUEST_TIMEOUT;
	if (c->token_refresh == 0)
		c->token_refresh = DEFAULT_TOKEN_REFRESH;
	if (c->source != SG_CONF_K8S_IN_CLUSTER && c->source != SG_CONF_K8S_KUBECONFIG)
		return put_err(err, errlen, -EINVAL, "kubernetes: source is neither in-cluster "
			       "nor kubeconfig");
	if (c->default_mode >= SG_CONF_MODE_COUNT)
		return put_err(err, errlen, -EINVAL, "kubernetes: default_mode is out of range");
	/* The ranges of lib/conf. */
	if (c->page_size > 100000 || c->watch_timeout < 10 || c->watch_timeout > 86400 ||
	    c->request_timeout > 3600 || c->token_refresh > 86400)
		return put_err(err, errlen, -EINVAL, "kubernetes: page_size, watch_timeout, "
			       "request_timeout or token_refresh is out of range");
	return 0;
}

struct sg_k8s *
sg_k8s_create(const struct sg_k8s_conf *conf, char *err, size_t errlen)
{
	struct k8s_client_ops ops = {
		.change = on_change, .nodes = on_nodes, .sync = on_sync, .take_mode = take_mode,
	};
	struct k8s_creds creds, wcreds;
	struct sg_k8s_conf c;
	struct sg_k8s *k;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (conf == NULL) {
		put_err(err, errlen, -EINVAL, "kubernetes: no configuration");
		return NULL;
	}
	if (check_conf(conf, &c, err, errlen) < 0)
		return NULL;
	rc = k8s_creds_load(&c, &creds, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	k8s_curl_init();
	k = calloc(1, sizeof(*k));
	if (k == NULL || pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		k8s_creds_clear(&creds);
		put_err(err, errlen, -ENOMEM, "kubernetes: out of memory");
		return NULL;
	}
	if (k8s_queue_init(&k->queue) < 0) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		k8s_creds_clear(&creds);
		put_err(err, errlen, -ENOMEM, "kubernetes: out of memory");
		return NULL;
	}
	k->log.fn = c.log;
	k->log.arg = c.log_arg;
	atomic_init(&k->mode, -1);
	if (creds.insecure)
		k8s_logf(&k->log, SG_K8S_LOG_WARNING, "%s: insecure-skip-tls-verify: the API "
			 "server's certificate is not checked", creds.origin);
	k8s_logf(&k->log, SG_K8S_LOG_INFO, "API server %s (%s)", creds.server, creds.origin);
	snprintf(k->sync.server, sizeof(k->sync.server), "%s", creds.server);
	ops.arg = k;
	/* The writer's own copy: the two threads refresh their tokens apart. */
	if (k8s_creds_load(&c, &wcreds, err, errlen) == 0) {
		k->writer = k8s_writer_create(&c, &wcreds, &k->log);
		k8s_creds_clear(&wcreds);
	}
	if (k->writer == NULL) {
		k8s_creds_clear(&creds);
		if (err != NULL && errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "kubernetes: cannot set up the writer");
		sg_k8s_free(k);
		errno = ENOMEM;
		return NULL;
	}
	k->client = k8s_client_create(&c, &creds, &ops, &k->log, err, errlen);
	if (k->client == NULL) {
		rc = errno;
		k8s_creds_clear(&creds);
		if (err != NULL && errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "kubernetes: %s", strerror(rc));
		sg_k8s_free(k);
		errno = rc;
		return NULL;
	}
	return k;
}

int
sg_k8s_start(struct sg_k8s *k)
{
	int rc;

	if (k == NULL)
		return -EINVAL;
	if (k->started)
		return -EALREADY;
	rc = k8s_writer_start(k->writer);
	if (rc < 0)
		return rc;
	rc = k8s_client_start(k->client);
	if (rc == 0)
		k->started = 1;
	else
		k8s_writer_stop(k->writer);
	return rc;
}

void
sg_k8s_stop(struct sg_k8s *k)
{
	if (k != NULL) {
		k8s_client_stop(k->client);
		k8s_writer_stop(k->writer);
	}
}

void
sg_k8s_free(struct sg_k8s *k)
{
	if (k == NULL)
		return;
	k8s_client_free(k->client);
	k8s_writer_free(k->writer);
	k8s_queue_fini(&k->queue);
	sg_k8s_nodes_free(k->nodes);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

unsigned int
sg_k8s_drain(struct sg_k8s *k, struct sg_k8s_change *out, unsigned int n)
{
	if (k == NULL || out == NULL)
		return 0;
	return k8s_queue_take(&k->queue, out, n);
}

void
sg_k8s_service_free(struct sg_k8s_service *s)
{
	free(s);
}

struct sg_k8s_nodes *
sg_k8s_nodes_take(struct sg_k8s *k)
{
	struct sg_k8s_nodes *n;

	if (k == NULL)
		return NULL;
	pthread_mutex_lock(&k->lock);
	n = k->nodes;
	k->nodes = NULL;
	pthread_mutex_unlock(&k->lock);
	return n;
}

void
sg_k8s_nodes_free(struct sg_k8s_nodes *n)
{
	free(n);
}

int
sg_k8s_set_default_mode(struct sg_k8s *k, unsigned int mode)
{
	if (k == NULL || mode >= SG_CONF_MODE_COUNT)
		return -EINVAL;
	atomic_store(&k->mode, (int)mode);
	k8s_client_wake(k->client);
	return 0;
}

int
sg_k8s_sync_state(struct sg_k8s *k, struct sg_k8s_sync *out)
{
	if (k == NULL || out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	*out = k->sync;
	pthread_mutex_unlock(&k->lock);
	out->events_dropped = k8s_writer_dropped(k->writer);
	return 0;
}

/* ---- writes ------------------------------------------------------------------------ */

int
sg_k8s_request(struct sg_k8s *k, const char *method, const char *path, const char *content_type,
	       const char *body, uint64_t tag)
{
	if (k == NULL)
		return -EINVAL;
	return k8s_writer_submit(k->writer, method, path, content_type, body, tag);
}

int
sg_k8s_post_event(struct sg_k8s *k, const char *path, const char *body)
{
	if (k == NULL || body == NULL)
		return -EINVAL;
	return k8s_writer_submit_best(k->writer, "POST", path, "application/json", body);
}

unsigned int
sg_k8s_responses(struct sg_k8s *k, struct sg_k8s_response *out, unsigned int n)
{
	return k != NULL ? k8s_writer_take(k->writer, out, n) : 0;
}

void
sg_k8s_response_clear(struct sg_k8s_response *r)
{
	if (r == NULL)
		return;
	free(r->body);
	r->body = NULL;
}

char *
sg_k8s_escape(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (s == NULL || buf == NULL || size == 0)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (o + (plain ? 1 : 3) >= size)
			return NULL;
		if (plain) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}
