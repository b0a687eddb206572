/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Kubernetes API client and its model: what svcgw knows of the
 * cluster's Services, EndpointSlices and Nodes, and how the daemon's
 * control thread learns what changed.
 *
 * A client thread of its own lists and then watches the three resources
 * over HTTPS (libcurl, one easy handle and one HTTP/1.1 keep-alive
 * connection per resource), with kube-proxy's label selector
 * (!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless).
 * Watches start from the list's resourceVersion and ask for bookmarks; an
 * ERROR event or HTTP 410 starts a fresh list whose result replaces the
 * model (what vanished becomes a deletion); other failures are retried
 * after a jittered exponential backoff from 0.8 s to 30 s. The blocking I/O
 * never runs on the caller's thread.
 *
 * The model follows kube-proxy: only Services of type NodePort and
 * LoadBalancer with a cluster IP are served (any other type, a headless
 * Service or one about to be, is "deleted" for us); ports are keyed by
 * service port name and protocol; the target port NUMBER of an endpoint is
 * that of the EndpointSlice port of the same name and protocol (named
 * targetPorts are never resolved here); every slice labelled
 * kubernetes.io/service-name with the Service's name is merged, slices of a
 * family the Service does not have (and FQDN slices) are dropped, an
 * address present in several slices counts once (the first ready one, in
 * slice name order). An object the model cannot use (garbage, an unknown
 * protocol, a port out of range, a missing field) is logged once, with its
 * namespace/name, and skipped; a Service that was served and turns bad is
 * withdrawn.
 *
 * How the daemon drives it:
 *
 *   struct sg_k8s_conf kc;
 *   sg_k8s_conf_init(&kc, conf);          // from the config's kubernetes group
 *   kc.log = my_log; kc.log_arg = ...;    // called from the client thread too
 *   k = sg_k8s_create(&kc, err, sizeof(err));   // reads the credentials: a
 *                                         // bad kubeconfig fails here, err says why
 *   sg_k8s_start(k);                      // the client thread starts
 *   each turn of the control loop:
 *       n = sg_k8s_drain(k, changes, 64); // never blocks on I/O
 *       for each change: changes[i].svc ? compile and publish it
 *                                       : withdraw changes[i].key;
 *                        sg_k8s_service_free(changes[i].svc);
 *       nodes = sg_k8s_nodes_take(k);     // NULL unless the nodes changed
 *   on a reload that changes default_mode: sg_k8s_set_default_mode(k, mode);
 *   telemetry: sg_k8s_sync_state(k, &st);
 *   at exit: sg_k8s_stop(k); sg_k8s_free(k);   // free also stops
 *
 * Changes are coalesced per service: a service changed ten times between
 * two drains is drained once, in its latest state. Nothing is handed out
 * before the first full list of both Services and EndpointSlices, so the
 * first drain after sg_k8s_sync.synced sees the whole cluster and no
 * service ever appears without its endpoints. When the API server cannot be
 * reached nothing is drained: the tables stay as they were.
 *
 * Writes go on a writer thread of their own: a status patch through
 * sg_k8s_request(), its answer back through sg_k8s_responses(); an Event
 * through sg_k8s_post_event(), best effort, after any waiting request and
 * never answered. A caller that must not wait behind them (Lease renewals)
 * makes its own requests with sg_k8s_call_*() (below), one at a time on its
 * own thread, with the same credentials.
 *
 * Not here: compiling a service into data-path tables (the daemon and
 * lib/svc), deciding LoadBalancer addresses (lib/ipam, the daemon), the
 * configuration file (lib/conf).
 */
#ifndef SG_K8S_H
#define SG_K8S_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* namespace/name, NUL included: both are at most 63 characters in Kubernetes. */
#define SG_K8S_KEY_SIZE 128u
/* A resourceVersion, NUL included; longer ones are an error of the server. */
#define SG_K8S_RV_SIZE 64u
/* sg_k8s_sync.last_error, NUL included. */
#define SG_K8S_ERR_SIZE 256u
/*
 * sg_k8s_post_event() writes that may wait; beyond, the oldest is dropped.
 * The daemon posts an Event when a Service's allocation changes, so this
 * covers a burst of allocations on a gateway of a hundred-odd LoadBalancer
 * Services while their status patches go first. It holds about 128 KiB;
 * against an API server that does not answer it is already an hour of
 * request_timeout (30 s) each: news too stale to be worth more memory.
 */
#define SG_K8S_EVENTS_WAITING 128u

/* Levels of the log callback, most severe first. */
enum sg_k8s_log_level {
	SG_K8S_LOG_ERR = 1,	/* a failure svcgw retries, a bad object skipped */
	SG_K8S_LOG_WARNING,	/* a setting ignored, a fallback taken */
	SG_K8S_LOG_INFO,	/* synced, relisted, reconnected */
	SG_K8S_LOG_DEBUG,
};

/*
 * Receives one message, without a trailing newline. Called from the thread
 * of sg_k8s_create(), the client and writer threads and the caller of
 * sg_k8s_post_event(), maybe at once: it must be thread-safe (rte_log is).
 */
typedef void (*sg_k8s_log_fn)(void *arg, unsigned int level, const char *msg);

struct sg_k8s_conf {
	uint8_t source;			/* SG_CONF_K8S_IN_CLUSTER, SG_CONF_K8S_KUBECONFIG */
	const char *kubeconfig;		/* SG_CONF_K8S_KUBECONFIG: the file */
	const char *context;		/* NULL: the file's current-context */
	uint32_t page_size;		/* 0: 500 */
	uint32_t watch_timeout;		/* seconds; 0: 300 */
	uint32_t request_timeout;	/* seconds; 0: 30 */
	uint8_t default_mode;		/* enum sg_conf_mode, without svcgw.io/mode */
	sg_k8s_log_fn log;		/* NULL: nothing is logged */
	void *log_arg;
	/* For tests and unusual set-ups; zero for the defaults. */
	const char *sa_dir;		/* in-cluster token and ca.crt; default
					 * /var/run/secrets/kubernetes.io/serviceaccount */
	uint32_t token_refresh;		/* seconds between reads of a token file; 0: 60 */
	uint64_t seed;			/* backoff jitter; 0: from the clock */
};

/* Flags of a service (sg_k8s_service.flags). */
#define SG_K8S_SVC_LOCAL 0x01u		/* externalTrafficPolicy Local: never SNAT */
#define SG_K8S_SVC_AFFINITY 0x02u	/* sessionAffinity ClientIP */
#define SG_K8S_SVC_NO_NODE_PORTS 0x04u	/* allocateLoadBalancerNodePorts false */
#define SG_K8S_SVC_MODE_DEFAULT 0x08u	/* no valid svcgw.io/mode: mode is default_mode */

/* spec.ipFamilyPolicy. */
enum sg_k8s_family_policy {
	SG_K8S_FAMILY_POLICY_UNSET = 0,
	SG_K8S_FAMILY_SINGLE_STACK,
	SG_K8S_FAMILY_PREFER_DUAL_STACK,
	SG_K8S_FAMILY_REQUIRE_DUAL_STACK,
};

/*
 * One endpoint of one service port. Strings are "" when the slice leaves
 * them out.
 */
struct sg_k8s_endpoint {
	struct sg_conf_addr address;	/* full length (32 or 128) */
	uint16_t port;			/* target port number, host order */
	uint8_t ready;			/* EndpointConditions: missing ready and serving */
	uint8_t serving;		/* mean 1, missing terminating 0 */
	uint8_t terminating;
	const char *node_name;
	const char *zone;
};

/* One service port, with the endpoints its slices give it, sorted by address. */
struct sg_k8s_port {
	const char *name;		/* "" for a single unnamed port */
	uint8_t proto;			/* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	uint16_t port;			/* served on each VIP */
	uint16_t node_port;		/* served on node addresses; 0: none */
	struct sg_k8s_endpoint *endpoints;
	uint32_t n_endpoints;
};

/* An annotation: only those whose key starts with "svcgw.io/" are kept. */
struct sg_k8s_annotation {
	const char *key;
	const char *value;
};

/*
 * The desired state of one served Service: plain data in one allocation,
 * owned by whoever drained it, freed with sg_k8s_service_free(). Numbers
 * are host order, addresses network order (struct sg_conf_addr).
 */
struct sg_k8s_service {
	const char *namespace;
	const char *name;
	const char *uid;			/* "" if the object had none */
	const char *resource_version;		/* of the Service object */
	uint8_t type;				/* enum sg_conf_svc_type */
	uint8_t mode;				/* enum sg_conf_mode */
	uint8_t flags;				/* SG_K8S_SVC_* */
	uint8_t families;			/* SG_CONF_FAM_* of spec.ipFamilies */
	uint8_t family_policy;			/* enum sg_k8s_family_policy */
	uint32_t affinity_timeout;		/* seconds; 0 without affinity */
	/* status.loadBalancer.ingress[].ip whose ipMode is unset or "VIP" and
	 * whose family the service has; "Proxy" ones are not ours to serve. */
	struct sg_conf_addr *vips;
	uint32_t n_vips;
	/* loadBalancerSourceRanges, else the annotation
	 * service.beta.kubernetes.io/load-balancer-source-ranges; host bits
	 * cleared; none: every source. */
	struct sg_conf_addr *source_ranges;
	uint32_t n_source_ranges;
	struct sg_k8s_port *ports;		/* in spec order */
	uint32_t n_ports;
	const char *load_balancer_class;	/* NULL: none */
	const char *load_balancer_ip;		/* spec.loadBalancerIP; NULL: none */
	struct sg_k8s_annotation *annotations;	/* sorted by key */
	uint32_t n_annotations;
};

/* One change: the service's new state, or NULL when it is no longer served. */
struct sg_k8s_change {
	char key[SG_K8S_KEY_SIZE];		/* namespace/name */
	struct sg_k8s_service *svc;
};

/* One Node, as far as svcgw cares. */
struct sg_k8s_node {
	const char *name;
	const char *zone;			/* label topology.kubernetes.io/zone, or "" */
	uint8_t ready;				/* condition Ready is "True" */
	uint8_t unschedulable;			/* spec.unschedulable */
	uint8_t exclude_lb;			/* label node.kubernetes.io/exclude-from-
						 * external-load-balancers present */
	struct sg_conf_addr *addresses;		/* InternalIP, then ExternalIP */
	uint32_t n_addresses;
};

/* Every node, sorted by name; one allocation, sg_k8s_nodes_free(). */
struct sg_k8s_nodes {
	struct sg_k8s_node *nodes;
	uint32_t n;
};

enum sg_k8s_resource {
	SG_K8S_SERVICES = 0,
	SG_K8S_ENDPOINTSLICES,
	SG_K8S_NODES,
};
#define SG_K8S_RESOURCE_COUNT 3

/* What the client is doing with one resource. */
enum sg_k8s_stream_state {
	SG_K8S_STREAM_IDLE = 0,		/* not started */
	SG_K8S_STREAM_LISTING,
	SG_K8S_STREAM_WATCHING,
	SG_K8S_STREAM_BACKOFF,		/* waiting to retry after a failure */
};

struct sg_k8s_resource_state {
	char resource_version[SG_K8S_RV_SIZE];	/* the last one seen; "" before a list */
	uint8_t state;				/* enum sg_k8s_stream_state */
	uint8_t listed;				/* a full list has completed */
	uint32_t objects;			/* in the model */
	uint64_t events;			/* watch events applied */
	uint64_t lists;				/* full lists completed */
	uint64_t failures;			/* requests that failed */
	uint64_t last_event_ms;			/* CLOCK_REALTIME ms of the last event,
						 * bookmark or list; 0: never */
};

struct sg_k8s_sync {
	uint8_t synced;				/* every resource listed at least once */
	struct sg_k8s_resource_state res[SG_K8S_RESOURCE_COUNT];
	uint32_t services;			/* served (NodePort, LoadBalancer) */
	uint64_t bad_objects;			/* skipped as unusable, since start */
	uint64_t events_dropped;		/* sg_k8s_post_event() writes dropped
						 * from a full queue, since start */
	char server[256];			/* the API server's URL */
	char last_error[SG_K8S_ERR_SIZE];	/* "" if none yet */
	uint64_t last_error_ms;			/* CLOCK_REALTIME ms; 0: none */
};

struct sg_k8s;

/*
 * Fill kc from the configuration: its kubernetes group (which must be
 * present: source not SG_CONF_K8S_NONE) and default_mode; the strings point
 * into c, which must live until sg_k8s_create() returns. log, log_arg and
 * the test fields are zero. Nothing happens if kc or c is NULL.
 */
void sg_k8s_conf_init(struct sg_k8s_conf *kc, const struct sg_conf *c);

/*
 * Read the credentials (in-cluster files and environment, or the
 * kubeconfig) and set the client up; no request is made before
 * sg_k8s_start(). On failure returns NULL, sets errno and writes the reason
 * to err (if errlen > 0), e.g.
 *   kubeconfig /etc/k: context "edge": no such context
 *   in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)
 * errno:
 *  EINVAL  conf NULL, a source or default_mode out of range, a value out of
 *          the ranges of lib/conf, or credentials that are missing or
 *          malformed (err says which);
 *  ENOENT, EACCES, ...  a credential file cannot be read (err names it);
 *  ENOMEM  out of memory.
 */
struct sg_k8s *sg_k8s_create(const struct sg_k8s_conf *conf, char *err, size_t errlen);

/*
 * Start the client thread. Returns 0, or:
 *  -EINVAL   k NULL;
 *  -EALREADY started before (a stopped client is not restarted: free it
 *            and create another);
 *  -ENOMEM, -EAGAIN  libcurl or the thread could not be set up.
 */
int sg_k8s_start(struct sg_k8s *k);

/*
 * Stop the client thread and wait for it (at most about a second: the
 * transfers are aborted). Harmless on NULL, twice, or if never started.
 * What was not drained yet can still be drained.
 */
void sg_k8s_stop(struct sg_k8s *k);

/* Stop, then free everything, undrained changes included; NULL is harmless. */
void sg_k8s_free(struct sg_k8s *k);

/*
 * Take up to n pending changes, oldest first, into out; the caller owns
 * each out[i].svc. Never waits for I/O: it takes a lock the client thread
 * holds only to swap a pointer. Returns how many were written (0 if k or
 * out is NULL).
 */
unsigned int sg_k8s_drain(struct sg_k8s *k, struct sg_k8s_change *out, unsigned int n);

/* Free a drained service; NULL is harmless. */
void sg_k8s_service_free(struct sg_k8s_service *s);

/*
 * The nodes, if they changed since the last call (the first call after the
 * nodes are listed returns them all); else NULL. The caller owns the result.
 */
struct sg_k8s_nodes *sg_k8s_nodes_take(struct sg_k8s *k);

/* Free a nodes snapshot; NULL is harmless. */
void sg_k8s_nodes_free(struct sg_k8s_nodes *n);

/*
 * A new default_mode, from a reload: every service without a valid
 * svcgw.io/mode is handed out again in that mode (by the client thread,
 * within a second). Returns 0, or -EINVAL for k NULL or a mode out of range.
 */
int sg_k8s_set_default_mode(struct sg_k8s *k, unsigned int mode);

/*
 * Copy the sync state into out; it never waits for I/O. Returns 0, or
 * -EINVAL if k or out is NULL.
 */
int sg_k8s_sync_state(struct sg_k8s *k, struct sg_k8s_sync *out);

/*
 * Writes: a request made for the caller on a thread of its own (one at a
 * time, in order, with the client's credentials), never on the caller's;
 * the answer comes back through sg_k8s_responses(). The caller decides
 * what a failure means and when to retry.
 */
struct sg_k8s_response {
	uint64_t tag;				/* as given to sg_k8s_request() */
	long status;				/* HTTP status; 0: no answer */
	char *body;				/* the response, NUL-terminated; may be NULL */
	char error[SG_K8S_ERR_SIZE];		/* status 0: why (connection, TLS, timeout) */
};

/*
 * Queue a request: method "GET", "POST", "PATCH", "PUT" or "DELETE"; path
 * from the server's root ("/api/v1/namespaces/a/services/b/status");
 * content_type and body NULL for none. Everything is copied. Works before
 * sg_k8s_start() (the request waits for it). Returns 0, or -EINVAL (k,
 * method or path NULL), -ENOMEM, -ESHUTDOWN (stopped).
 */
int sg_k8s_request(struct sg_k8s *k, const char *method, const char *path,
		   const char *content_type, const char *body, uint64_t tag);

/*
 * Queue an Event (a core/v1 Event in JSON, body) to be POSTed to path
 * ("/api/v1/namespaces/a/events"), best effort: it is sent only when no
 * sg_k8s_request() waits, never answered (nothing comes back through
 * sg_k8s_responses()), and a failure is logged, never retried. At most
 * SG_K8S_EVENTS_WAITING wait; beyond, the oldest is dropped and counted in
 * sg_k8s_sync.events_dropped. Everything is copied; works before
 * sg_k8s_start(); whatever waits at sg_k8s_stop() is dropped unsent.
 * Returns 0, or -EINVAL (k, path or body NULL), -ENOMEM, -ESHUTDOWN
 * (stopped).
 */
int sg_k8s_post_event(struct sg_k8s *k, const char *path, const char *body);

/*
 * Take up to n answers, in the order of the requests; never waits. The
 * caller frees each with sg_k8s_response_clear().
 */
unsigned int sg_k8s_responses(struct sg_k8s *k, struct sg_k8s_response *out, unsigned int n);
void sg_k8s_response_clear(struct sg_k8s_response *r);

/*
 * Percent-encode s for a path segment or a query value (RFC 3986 §2.3:
 * all but unreserved characters) into buf. Returns buf, or NULL if it
 * does not fit.
 */
char *sg_k8s_escape(const char *s, char *buf, size_t size);

/* "services", "endpointslices", "nodes"; "?" out of range. */
const char *sg_k8s_resource_name(unsigned int res);
/* "idle", "listing", "watching", "backoff"; "?" out of range. */
const char *sg_k8s_stream_state_name(unsigned int state);

/* ---- single requests ---------------------------------------------------- */

/*
 * One HTTP/1.1 request at a time, blocking, on the caller's thread, over one
 * keep-alive connection: for the daemon's own writes (Leases), which must
 * never wait behind the watches nor behind sg_k8s_request()'s queue (whose
 * thread makes its requests the same way, on a connection of its own). The
 * credentials are read as for sg_k8s_create() (a token file again every
 * token_refresh seconds, and after a 401).
 * Create returns NULL with errno and err as sg_k8s_create().
 */
struct sg_k8s_call;

struct sg_k8s_call *sg_k8s_call_create(const struct sg_k8s_conf *conf, char *err,
				       size_t errlen);
void sg_k8s_call_free(struct sg_k8s_call *c);

/*
 * method ("GET", "POST", "PUT"...) on path (with its query, starting with
 * '/'), with a JSON body or NULL, within timeout_ms. Returns the HTTP
 * status (the body, NUL-terminated, in *resp, to free(); may be "") or a
 * negative errno with *resp NULL and the reason in err:
 *  -EINVAL   c, method or path NULL, path not starting with '/';
 *  -EIO      no answer: connection, TLS or timeout (err says which);
 *  -EMSGSIZE the answer is over 4 MiB;
 *  -ENOMEM.
 */
int sg_k8s_call(struct sg_k8s_call *c, const char *method, const char *path, const char *body,
		uint32_t timeout_ms, char **resp, char *err, size_t errlen);

/* The server's URL ("" if c is NULL). */
const char *sg_k8s_call_server(const struct sg_k8s_call *c);

#endif /* SG_K8S_H */
