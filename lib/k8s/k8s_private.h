/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside lib/k8s: the pieces the client thread is built from, each testable
 * without a network: the YAML subset reader (k8s_yaml.c), credentials from
 * a kubeconfig or a pod (k8s_creds.c), the watch stream's line splitter,
 * event decoder and retry backoff (k8s_stream.c), the model of Services,
 * EndpointSlices and Nodes that builds the snapshots (k8s_model.c), a
 * string-keyed hash map (k8s_map.c), the thread with its HTTP transfers
 * (k8s_client.c), single requests (k8s_call.c: the only other way a request
 * is made) and the writer thread that makes them for sg_k8s_request()
 * and sg_k8s_post_event() (k8s_write.c). k8s.c holds the public API and
 * the queue through which the client thread hands changes to the control
 * thread.
 */
#ifndef SG_K8S_PRIVATE_H
#define SG_K8S_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sg_common.h"
#include "k8s.h"

/* ---- logging (k8s.c) ----------------------------------------------------- */

struct k8s_log {
	sg_k8s_log_fn fn;
	void *arg;
};

void k8s_logf(const struct k8s_log *l, unsigned int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* CLOCK_REALTIME in milliseconds (the monotonic clock: sg_mono_ms()). */
uint64_t k8s_real_ms(void);

/* ---- string-keyed hash map (k8s_map.c) ----------------------------------- */

/* Keys are copied; values are the caller's. */
struct k8s_map {
	struct k8s_map_slot *slots;
	uint32_t cap;		/* a power of two, or 0 */
	uint32_t n;
};

void k8s_map_init(struct k8s_map *m);
/* Free the map's own memory (not the values). */
void k8s_map_fini(struct k8s_map *m);
void *k8s_map_get(const struct k8s_map *m, const char *key);
/* Insert or replace. 0, or -ENOMEM. */
int k8s_map_put(struct k8s_map *m, const char *key, void *value);
/* The value removed, or NULL. */
void *k8s_map_del(struct k8s_map *m, const char *key);
/* Visit every entry in no particular order; fn must not change the map. */
void k8s_map_each(const struct k8s_map *m, void (*fn)(void *arg, const char *key, void *value),
		  void *arg);

/* ---- YAML subset (k8s_yaml.c) -------------------------------------------- */

enum k8s_yaml_kind {
	K8S_YAML_NULL = 0,	/* "", "~", "null" or nothing */
	K8S_YAML_SCALAR,
	K8S_YAML_MAP,
	K8S_YAML_SEQ,
};

struct k8s_yaml {
	uint8_t kind;
	uint32_t line;		/* 1-based: where it starts; a mapping value, its key's */
	char *str;		/* SCALAR: the value, unquoted */
	uint32_t n;		/* MAP: pairs; SEQ: items */
	char **keys;		/* MAP */
	struct k8s_yaml **vals;	/* MAP values, SEQ items */
};

/*
 * Parse the subset of YAML that kubeconfig files use: block mappings and
 * sequences (a sequence may sit at its key's indentation, as kubectl
 * writes it), plain, single- and double-quoted scalars, comments, flow
 * collections on one line ({}, [], [a, b], {a: b}). Anything else (block
 * scalars, anchors, tags, several documents, multi-line scalars) is an
 * error. name prefixes every error: "<name>:<line>: <why>". Returns the
 * root (a NULL node for an empty text), or NULL with errno EINVAL (err set)
 * or ENOMEM.
 */
struct k8s_yaml *k8s_yaml_parse(const char *text, size_t len, const char *name, char *err,
				size_t errlen);
void k8s_yaml_free(struct k8s_yaml *y);
/* The value of key in a mapping; NULL if y is not a mapping or lacks it. */
const struct k8s_yaml *k8s_yaml_get(const struct k8s_yaml *y, const char *key);

/* ---- credentials (k8s_creds.c) ------------------------------------------- */

struct k8s_blob {
	uint8_t *data;
	size_t len;
};

/* Where and how to reach the API server; every field is owned. */
struct k8s_creds {
	char *server;		/* scheme://host[:port][/path], no trailing '/' */
	char *ca_file;		/* one of ca_file, ca (or neither: the system's CAs) */
	struct k8s_blob ca;
	char *cert_file;	/* client certificate, PEM */
	struct k8s_blob cert;
	char *key_file;		/* its key, PEM */
	struct k8s_blob key;
	char *token;		/* bearer token, or NULL */
	char *token_file;	/* read again periodically; NULL: token is fixed */
	uint8_t insecure;	/* insecure-skip-tls-verify */
	char *origin;		/* for messages: "in-cluster", "kubeconfig /x context c" */
};

/* The default directory of the in-cluster service account. */
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * Fill out from the conf's source. Returns 0, or a negative errno with the
 * reason in err: -EINVAL (missing or malformed), -ENOENT/-EACCES/... (a
 * file), -ENOMEM.
 */
int k8s_creds_load(const struct sg_k8s_conf *c, struct k8s_creds *out, char *err, size_t errlen);
int k8s_creds_kubeconfig(const char *path, const char *context, struct k8s_creds *out,
			 char *err, size_t errlen);
int k8s_creds_in_cluster(const char *sa_dir, struct k8s_creds *out, char *err, size_t errlen);
void k8s_creds_clear(struct k8s_creds *c);
/*
 * Read a token file: its content without surrounding white space. Returns
 * 0 with *token malloc'ed, or a negative errno with err naming the file
 * (-EINVAL for an empty file).
 */
int k8s_creds_read_token(const char *path, char **token, char *err, size_t errlen);

/*
 * Using the credentials, the same way for the watches (k8s_client.c) and
 * single requests (k8s_call.c).
 *
 * The headers of every request: Accept (JSON), User-Agent, Content-Type if
 * content_type is not NULL, the bearer token if any. NULL: out of memory.
 */
struct curl_slist;
struct curl_slist *k8s_creds_headers(const struct k8s_creds *c, const char *content_type);
/*
 * kubelet rotates projected tokens: read the token file again (if there is
 * one) when force is set (after a 401, as client-go), when *read_ms is 0,
 * or every every_s seconds since *read_ms. A file that cannot be read
 * keeps the last token, with a warning; a changed token is logged.
 */
struct k8s_log;
void k8s_creds_refresh_token(struct k8s_creds *c, uint64_t *read_ms, uint32_t every_s,
			     int force, const struct k8s_log *log);
/* Decode standard base64 (white space ignored). 0, -EINVAL, or -ENOMEM. */
int k8s_base64_decode(const char *s, struct k8s_blob *out);

/* ---- watch stream, events, backoff (k8s_stream.c) ------------------------ */

/* Splits a byte stream into lines, whatever the chunks it arrives in. */
struct k8s_lines {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;		/* longest line, without its newline */
};

/* Called for each complete line (no '\n', no trailing '\r'); nonzero stops. */
typedef int (*k8s_line_fn)(void *arg, const char *line, size_t len);

void k8s_lines_init(struct k8s_lines *l, size_t max);
void k8s_lines_reset(struct k8s_lines *l);	/* a new stream: drop a partial line */
void k8s_lines_fini(struct k8s_lines *l);
/*
 * Feed n bytes; fn sees every line they complete, empty lines skipped.
 * Returns 0, -EMSGSIZE when a line grows beyond max, -ENOMEM, or the
 * first nonzero value fn returned.
 */
int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t n, k8s_line_fn fn, void *arg);

enum k8s_event_type {
	K8S_EV_ADDED = 1,
	K8S_EV_MODIFIED,
	K8S_EV_DELETED,
	K8S_EV_BOOKMARK,
	K8S_EV_ERROR,
};

/* One decoded watch event. */
struct k8s_event {
	uint8_t type;			/* enum k8s_event_type */
	cJSON *root;			/* the whole line; k8s_event_clear() frees it */
	const cJSON *object;		/* inside root */
	char rv[SG_K8S_RV_SIZE];	/* object's resourceVersion, "" if none */
	int code;			/* ERROR: the Status code, 0 if none */
	char message[200];		/* ERROR: "<code> <reason>: <message>" */
};

/*
 * Decode one line of a watch stream. Returns 0, or -EBADMSG with why in err
 * (not JSON, no type or object, an unknown type, a bookmark without a
 * resourceVersion, a resourceVersion too long), or -ENOMEM. On error ev
 * holds nothing to free.
 */
int k8s_event_decode(const char *line, size_t len, struct k8s_event *ev, char *err,
		     size_t errlen);
void k8s_event_clear(struct k8s_event *ev);

/* Jittered exponential backoff, as client-go's reflector: 0.8 s doubling to 30 s. */
#define K8S_BACKOFF_MIN_MS 800u
#define K8S_BACKOFF_MAX_MS 30000u

struct k8s_backoff {
	uint64_t rng;
	uint32_t attempt;
};

/* The same seed gives the same delays; seed 0 is a valid seed. */
void k8s_backoff_init(struct k8s_backoff *b, uint64_t seed);
/* The delay before the next attempt, in [K8S_BACKOFF_MIN_MS, K8S_BACKOFF_MAX_MS]. */
uint32_t k8s_backoff_next(struct k8s_backoff *b);
/* After a success: the next delay starts from the minimum again. */
void k8s_backoff_reset(struct k8s_backoff *b);

/* ---- model (k8s_model.c) ------------------------------------------------- */

struct k8s_model;

/*
 * Receives one change, owning svc (NULL: the service is not served any
 * more). key is only valid during the call.
 */
typedef void (*k8s_change_fn)(void *arg, const char *key, struct sg_k8s_service *svc);

struct k8s_model *k8s_model_create(unsigned int default_mode, const struct k8s_log *log);
void k8s_model_free(struct k8s_model *m);

/*
 * Apply one watch event's object of resource res (enum sg_k8s_resource):
 * K8S_EV_ADDED and K8S_EV_MODIFIED store it, K8S_EV_DELETED removes it.
 * Returns 0; -EINVAL for an object the model cannot use (logged once per
 * object version, counted; a stored object of that name is removed, so a
 * Service that turns bad is withdrawn), or -ENOMEM.
 */
int k8s_model_apply(struct k8s_model *m, unsigned int res, unsigned int type, const cJSON *obj);

/*
 * A fresh list of res replaces the model's objects of res: begin, add each
 * listed object (as k8s_model_apply() with K8S_EV_ADDED; an unchanged
 * resourceVersion costs nothing), end. end() removes the objects no add()
 * has seen since begin(), as deletions. A list that fails half way is
 * simply begun again: nothing is removed before an end().
 */
void k8s_model_relist_begin(struct k8s_model *m, unsigned int res);
int k8s_model_relist_add(struct k8s_model *m, unsigned int res, const cJSON *obj);
void k8s_model_relist_end(struct k8s_model *m, unsigned int res);

/* Services without a valid svcgw.io/mode are rebuilt in the new mode. */
void k8s_model_set_default_mode(struct k8s_model *m, unsigned int mode);

/*
 * Build the snapshot of every service changed since the last flush and
 * hand it to fn. A service never handed out is not reported deleted.
 * Returns the number of changes handed, or -ENOMEM (the rest stay
 * pending).
 */
int k8s_model_flush(struct k8s_model *m, k8s_change_fn fn, void *arg);

/* 1 if the nodes changed since the last k8s_model_nodes(). */
int k8s_model_nodes_changed(const struct k8s_model *m);
/* Every node, as a new snapshot; clears the changed flag. NULL: ENOMEM. */
struct sg_k8s_nodes *k8s_model_nodes(struct k8s_model *m);

/* Objects of res in the model (bad ones excluded). */
uint32_t k8s_model_count(const struct k8s_model *m, unsigned int res);
/* Services served at the last flush. */
uint32_t k8s_model_served(const struct k8s_model *m);
/* Bad objects met since creation. */
uint64_t k8s_model_bad(const struct k8s_model *m);

/* ---- the queue of changes for the control thread (k8s.c) ----------------- */

/*
 * A FIFO of services changed, at most one entry per key: putting a key
 * already queued replaces its snapshot (freeing the older) in place. Safe
 * between one producer and any consumers.
 */
struct k8s_queue {
	pthread_mutex_t lock;
	struct k8s_map by_key;		/* key -> its entry */
	struct pending *head;
	struct pending *tail;
	atomic_uint n;			/* entries, read without the lock */
};

/* 0, or -ENOMEM. */
int k8s_queue_init(struct k8s_queue *q);
/* Frees what was not taken. */
void k8s_queue_fini(struct k8s_queue *q);
/*
 * Takes svc (NULL: deleted) in every case. 0, or (svc freed, change lost)
 * -EINVAL for a key of SG_K8S_KEY_SIZE or more, -ENOMEM.
 */
int k8s_queue_put(struct k8s_queue *q, const char *key, struct sg_k8s_service *svc);
/* Up to n entries, oldest first, into out. */
unsigned int k8s_queue_take(struct k8s_queue *q, struct sg_k8s_change *out, unsigned int n);

/* ---- the client thread (k8s_client.c) ------------------------------------ */

/* curl_global_init(), once per process, before any thread uses libcurl (k8s.c). */
void k8s_curl_init(void);

/*
 * Make easy handle e (a CURL *) trust and present what cr says: CA, client
 * certificate and key, insecure-skip-tls-verify. 0, or -EINVAL with err
 * naming what libcurl refused.
 */
int k8s_curl_tls(const struct k8s_creds *cr, void *e, char *err, size_t errlen);

struct k8s_client;

/* Longest watch line: far above the 1.5 MiB etcd allows for an object. */
#define K8S_LINE_MAX (16u << 20)

/* What the client thread needs of its owner (k8s.c). */
struct k8s_client_ops {
	/* A change from the model, as k8s_change_fn. */
	k8s_change_fn change;
	/* A new nodes snapshot (owned by the callee). */
	void (*nodes)(void *arg, struct sg_k8s_nodes *n);
	/* The client's sync state, to be copied under the owner's lock. */
	void (*sync)(void *arg, const struct sg_k8s_sync *st);
	/* The default mode asked for by sg_k8s_set_default_mode(), or -1. */
	int (*take_mode)(void *arg);
	void *arg;
};

/*
 * conf's numbers are taken as they are (0 is not a default here). creds is
 * taken over on success (the caller's struct is cleared). NULL on failure,
 * errno set and the reason in err.
 */
struct k8s_client *k8s_client_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds,
				     const struct k8s_client_ops *ops, const struct k8s_log *log,
				     char *err, size_t errlen);
/* 0, -ENOMEM, -EAGAIN. */
int k8s_client_start(struct k8s_client *c);
/* Wake the thread (a new default mode). */
void k8s_client_wake(struct k8s_client *c);
void k8s_client_stop(struct k8s_client *c);
void k8s_client_free(struct k8s_client *c);

/*
 * The path and query of one request, for tests: a list page (cont NULL or
 * the continue token) or, with watch set, a watch from rv. Returns a
 * malloc'ed string, or NULL (ENOMEM).
 */
char *k8s_client_request_path(unsigned int res, int watch, const char *rv, const char *cont,
			      uint32_t limit, uint32_t timeout);

/* ---- single requests (k8s_call.c) --------------------------------------- */

/*
 * sg_k8s_call_create() with credentials already loaded (conf gives the
 * token refresh and the log): creds is taken over on success (and zeroed),
 * left to the caller on failure. NULL with errno: ENOMEM, or EINVAL with
 * err naming what libcurl refused (TLS).
 */
struct sg_k8s_call *k8s_call_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds,
				    char *err, size_t errlen);

/*
 * sg_k8s_call() with the Content-Type of body given (NULL: no header): the
 * writer sends merge patches. Same returns; err is set on every failure.
 */
int k8s_call_do(struct sg_k8s_call *c, const char *method, const char *path,
		const char *content_type, const char *body, uint32_t timeout_ms, char **resp,
		char *err, size_t errlen);

/* ---- writes: the writer thread (k8s_write.c) ----------------------------- */

struct k8s_writer;

/*
 * A thread of its own doing one request at a time, so that a slow write
 * never holds the watches up nor the caller. creds is taken over on
 * success. NULL on failure, errno set.
 */
struct k8s_writer *k8s_writer_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds,
				     const struct k8s_log *log);
/* 0, -ENOMEM, -EAGAIN. */
int k8s_writer_start(struct k8s_writer *w);
/*
 * Stops the thread; tagged requests not done are answered with status 0,
 * best-effort ones are freed.
 */
void k8s_writer_stop(struct k8s_writer *w);
void k8s_writer_free(struct k8s_writer *w);
/* sg_k8s_request(): same returns. */
int k8s_writer_submit(struct k8s_writer *w, const char *method, const char *path,
		      const char *content_type, const char *body, uint64_t tag);
/* A request never answered, sent when no tagged one waits; sg_k8s_post_event(). */
int k8s_writer_submit_best(struct k8s_writer *w, const char *method, const char *path,
			   const char *content_type, const char *body);
/* Best-effort requests dropped from a full queue since create; 0 if w is NULL. */
uint64_t k8s_writer_dropped(struct k8s_writer *w);
unsigned int k8s_writer_take(struct k8s_writer *w, struct sg_k8s_response *out, unsigned int n);

#endif /* SG_K8S_PRIVATE_H */
