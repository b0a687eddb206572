/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw as the cluster's LoadBalancer provider, the Kubernetes side:
 * which Services are ours, what each asks for, and the writes that record
 * lib/ipam's decisions (PATCH services/status, Events).
 *
 * A Service is ours if it is of type LoadBalancer and of class
 * svcgw.io/lb, or of no class when lb.default_class says so. Nothing else
 * is ever read for allocation or written: the watches list every Service,
 * but no request names a Service that is not ours.
 *
 * Until lib/k8s has handed out the whole first list, statuses are only
 * claimed (sg_ipam_claim()): addresses are rebuilt from what the cluster
 * says before anything new is allocated. Then, if this gateway is the
 * writer (alone: lb.allocate; with a failover group: the leader, switched
 * by app_leader_changed() in announce.c), each change is assigned (sg_ipam_assign()); a gateway that is not the writer
 * follows the statuses the writer publishes. Either way the tables serve
 * what lib/ipam holds (app_ipam_vips()), so an allocation is forwarded at
 * once, before the status patch comes back through the watch, and the
 * echo changes nothing.
 *
 * Writes: one request in flight per Service, on lib/k8s's writer thread;
 * the control thread never waits. A status patch is a merge patch with the
 * resourceVersion last seen: 409 re-reads the Service (GET) and writes
 * again, if the GET still shows the same object (uid) and it is still
 * ours; 409, no answer, 401, 403, 429 and 5xx are retried after a backoff
 * (0.5 s doubling to 30 s, reset by a write that succeeds); other errors
 * are logged and wait for the next change. The pool
 * goes in the annotation svcgw.io/ip-allocated-from-pool, in the same
 * patch: a status write may change metadata for Services (unlike custom
 * resources), so svcgw needs only patch on services/status.
 *
 * Control thread, under sg_app_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_log.h>

#include <cjson/cJSON.h>

#include "sg_common.h"
#include "ipam.h"
#include "k8s.h"
#include "lease.h"
#include "app.h"
#include "map.h"

SG_LOG_REGISTER(ipam)

#define CLASS "svcgw.io/lb"
#define ANN_IPS "svcgw.io/loadBalancerIPs"
#define ANN_POOL "svcgw.io/address-pool"
#define ANN_SHARE "svcgw.io/allow-shared-ip"
#define ANN_FROM "svcgw.io/ip-allocated-from-pool"
#define BACKOFF_MIN_MS 500u
#define BACKOFF_MAX_MS 30000u
#define RESPONSES 16
#define NAME_SIZE 64

enum job { JOB_NONE = 0, JOB_PATCH, JOB_GET, JOB_EVENT };

/* One Service that is, or was, ours. */
struct rec {
	char key[SG_K8S_KEY_SIZE];
	char ns[NAME_SIZE];
	char name[NAME_SIZE];
	char uid[NAME_SIZE];
	char rv[SG_K8S_RV_SIZE];
	bool ours;
	bool gone;			/* deleted or not ours any more: status to clear */
	bool checked;			/* gone: a GET said it exists and may be cleared */
	bool stale;			/* a patch met a newer version (409): re-read first */
	/* what it asks for */
	uint8_t families, policy;
	struct sg_conf_addr want[2];
	uint32_t n_want;
	char pool[NAME_SIZE];
	char share[NAME_SIZE];
	struct sg_ipam_port *ports;
	uint32_t n_ports;
	char bad[200];			/* a request that cannot be read: why */
	/* what the cluster says */
	struct sg_conf_addr status[2];
	uint32_t n_status;
	char from[2 * NAME_SIZE];	/* ANN_FROM */
	/* what we hold (the served VIPs) and the writes */
	struct sg_ipam_alloc held;
	bool failed;			/* could not be assigned: retried on releases */
	bool dirty;			/* status differs from held: write */
	uint8_t inflight;		/* enum job */
	bool sent_clear;		/* the patch in flight clears the status */
	struct sg_conf_addr sent[2];	/* what the patch in flight writes, if not a clear */
	uint32_t n_sent;
	uint64_t tag;
	uint64_t retry_ms;
	uint32_t backoff_ms;
	char last_event[240];		/* reason: message of the last Event posted */
};

struct app_ipam {
	struct sg_ipam *ipam;
	struct sg_k8s *client;
	struct app_map recs;		/* key -> rec */
	struct app_map inflight;	/* rec.tag -> rec, for those with a request out */
	bool synced;			/* the first full list is in */
	bool writer;
	bool default_class;
	uint64_t seq;
	uint64_t releases;		/* sg_ipam_releases() when failed ones were last tried */
	char instance[64];
};

static const char *
ann(const struct sg_k8s_service *s, const char *key)
{
	for (uint32_t i = 0; i < s->n_annotations; i++)
		if (strcmp(s->annotations[i].key, key) == 0)
			return s->annotations[i].value;
	return NULL;
}

static bool
is_ours(const struct app_ipam *m, const struct sg_k8s_service *s)
{
	if (s == NULL || s->type != SG_CONF_TYPE_LOADBALANCER)
		return false;
	if (s->load_balancer_class == NULL)
		return m->default_class;
	return strcmp(s->load_balancer_class, CLASS) == 0;
}

/* The request of a Service, from its spec and annotations, into r. */
static void
read_request(struct rec *r, const struct sg_k8s_service *s)
{
	const char *ips = ann(s, ANN_IPS), *pool = ann(s, ANN_POOL), *share = ann(s, ANN_SHARE);
	const char *from = ann(s, ANN_FROM);
	struct sg_ipam_port *ports;

	r->bad[0] = '\0';
	r->n_want = 0;
	r->families = s->families;
	r->policy = s->family_policy;
	snprintf(r->pool, sizeof(r->pool), "%s", pool != NULL ? pool : "");
	snprintf(r->share, sizeof(r->share), "%s", share != NULL ? share : "");
	snprintf(r->from, sizeof(r->from), "%s", from != NULL ? from : "");
	snprintf(r->uid, sizeof(r->uid), "%s", s->uid);
	snprintf(r->rv, sizeof(r->rv), "%s", s->resource_version);
	if (s->load_balancer_ip != NULL && s->load_balancer_ip[0] != '\0' && ips != NULL) {
		snprintf(r->bad, sizeof(r->bad), "both spec.loadBalancerIP and the annotation "
			 ANN_IPS " are set: use one");
	} else if (s->load_balancer_ip != NULL && s->load_balancer_ip[0] != '\0') {
		if (sg_conf_ip_parse(s->load_balancer_ip, 0, &r->want[0]) == 0)
			r->n_want = 1;
		else
			snprintf(r->bad, sizeof(r->bad), "spec.loadBalancerIP %.64s is not an IP "
				 "address", s->load_balancer_ip);
	} else if (ips != NULL) {
		char buf[256], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", ips);
		for (char *t = strtok_r(buf, ", ", &save); t != NULL && r->bad[0] == '\0';
		     t = strtok_r(NULL, ", ", &save)) {
			if (r->n_want == 2 || sg_conf_ip_parse(t, 0, &r->want[r->n_want]) < 0)
				snprintf(r->bad, sizeof(r->bad), ANN_IPS " %.64s: at most one IP "
					 "address of each family", ips);
			else
				r->n_want++;
		}
	}
	r->n_status = 0;
	for (uint32_t i = 0; i < s->n_vips && r->n_status < 2; i++)
		r->status[r->n_status++] = s->vips[i];
	ports = calloc(s->n_ports != 0 ? s->n_ports : 1, sizeof(*ports));
	if (ports != NULL) {
		for (uint32_t i = 0; i < s->n_ports; i++)
			ports[i] = (struct sg_ipam_port){ s->ports[i].proto, s->ports[i].port };
		free(r->ports);
		r->ports = ports;
		r->n_ports = s->n_ports;
	}
}

static struct sg_ipam_req
request_of(const struct rec *r)
{
	struct sg_ipam_req q = {
		.key = r->key, .namespace = r->ns, .families = r->families, .policy = r->policy,
		.n_want = r->n_want, .pool = r->pool, .share = r->share, .ports = r->ports,
		.n_ports = r->n_ports,
	};

	memcpy(q.want, r->want, sizeof(q.want));
	return q;
}

/* The pool annotation for what is held: one name, or "v4pool,v6pool". */
static void
from_of(const struct sg_ipam_alloc *h, char *buf, size_t size)
{
	if (h->n == 0)
		buf[0] = '\0';
	else if (h->n == 1 || strcmp(h->pool[0], h->pool[1]) == 0)
		snprintf(buf, size, "%s", h->pool[0]);
	else
		snprintf(buf, size, "%s,%s", h->pool[0], h->pool[1]);
}

static bool
addr_in(const struct sg_conf_addr *a, const struct sg_conf_addr *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i].family == a->family && memcmp(v[i].addr, a->addr, 16) == 0)
			return true;
	return false;
}

/* Whether the cluster's status says what we hold. */
static bool
status_matches(const struct rec *r)
{
	char from[sizeof(r->from)];

	if (r->n_status != r->held.n)
		return false;
	for (uint32_t i = 0; i < r->held.n; i++)
		if (!addr_in(&r->held.addrs[i], r->status, r->n_status))
			return false;
	from_of(&r->held, from, sizeof(from));
	return strcmp(from, r->from) == 0;
}

/*
 * The path of r's namespace, then of r's Service with suffix. Names are DNS
 * names, so escaping changes nothing today; it keeps a path from being bent
 * by one that is not.
 */
static void
ns_path(const struct rec *r, char *buf, size_t size)
{
	char ns[3 * NAME_SIZE];

	snprintf(buf, size, "/api/v1/namespaces/%s",
		 sg_k8s_escape(r->ns, ns, sizeof(ns)) != NULL ? ns : "");
}

static void
svc_path(const struct rec *r, const char *suffix, char *buf, size_t size)
{
	char name[3 * NAME_SIZE];

	ns_path(r, buf, size);
	snprintf(buf + strlen(buf), size - strlen(buf), "/services/%s%s",
		 sg_k8s_escape(r->name, name, sizeof(name)) != NULL ? name : "", suffix);
}

/* ---- Events -------------------------------------------------------------------------- */

/*
 * A core/v1 Event about the Service, once per distinct reason and message
 * (a retry that fails the same way says nothing new). Fire and forget: an
 * Event that is lost costs nothing but the Event, so lib/k8s sends it after
 * the status patches, drops it under pressure and logs its failure.
 */
static void
post_event(struct app_ipam *m, struct rec *r, const char *type, const char *reason,
	   const char *msg)
{
	char path[600], now[SG_LEASE_TIME_SIZE], gen[NAME_SIZE + 2], last[sizeof(r->last_event)];
	cJSON *o, *meta, *inv, *src;
	char *body;

	snprintf(last, sizeof(last), "%s: %s", reason, msg);
	if (strcmp(last, r->last_event) == 0)
		return;
	snprintf(r->last_event, sizeof(r->last_event), "%s", last);
	/* MicroTime, whole seconds: metav1.Time accepts it (RFC 3339). */
	sg_lease_time_format((int64_t)time(NULL) * 1000000, now);
	snprintf(gen, sizeof(gen), "%s.", r->name);
	o = cJSON_CreateObject();
	meta = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(meta, "generateName", gen);
	cJSON_AddStringToObject(meta, "namespace", r->ns);
	inv = cJSON_AddObjectToObject(o, "involvedObject");
	cJSON_AddStringToObject(inv, "apiVersion", "v1");
	cJSON_AddStringToObject(inv, "kind", "Service");
	cJSON_AddStringToObject(inv, "namespace", r->ns);
	cJSON_AddStringToObject(inv, "name", r->name);
	if (r->uid[0] != '\0')
		cJSON_AddStringToObject(inv, "uid", r->uid);
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddStringToObject(o, "message", msg);
	cJSON_AddStringToObject(o, "type", type);
	src = cJSON_AddObjectToObject(o, "source");
	cJSON_AddStringToObject(src, "component", "svcgw");
	cJSON_AddStringToObject(o, "firstTimestamp", now);
	cJSON_AddStringToObject(o, "lastTimestamp", now);
	cJSON_AddNumberToObject(o, "count", 1);
	cJSON_AddStringToObject(o, "reportingComponent", "svcgw");
	cJSON_AddStringToObject(o, "reportingInstance", m->instance);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	ns_path(r, path, sizeof(path));
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/events");
	if (body != NULL && sg_k8s_post_event(m->client, path, body) == 0)
		SG_LOG(ipam, INFO, "service %s: %s: %s", r->key, reason, msg);
	free(body);
}

static void
held_str(const struct sg_ipam_alloc *h, char *buf, size_t size)
{
	char as[SG_CONF_ADDR_STRLEN];

	buf[0] = '\0';
	for (uint32_t i = 0; i < h->n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "",
			 sg_conf_ip_str(h->addrs[i].family, h->addrs[i].addr, as, sizeof(as)));
}

/* ---- deciding ------------------------------------------------------------------------- */

/* Bring r's holding in line with its request (writer) or its status (follower). */
static void
decide(struct app_ipam *m, struct rec *r)
{
	struct sg_ipam_req q = request_of(r);
	char why[240];
	int rc;

	if (!m->synced || !m->writer) {
		sg_ipam_claim(m->ipam, &q, r->status, r->n_status);
		sg_ipam_get(m->ipam, r->key, &r->held);
		r->dirty = false;
		return;
	}
	if (r->bad[0] != '\0') {
		/* What it holds stays (a typo never renumbers a Service). */
		sg_ipam_get(m->ipam, r->key, &r->held);
		post_event(m, r, "Warning", "AllocationFailed", r->bad);
	} else {
		rc = sg_ipam_assign(m->ipam, &q, &r->held, why, sizeof(why));
		r->failed = rc == -ENOSPC;
		if (rc < 0)
			post_event(m, r, "Warning", "AllocationFailed", why);
	}
	r->dirty = !status_matches(r);
}

static void
rec_free(struct rec *r)
{
	free(r->ports);
	free(r);
}

/* Forget r (under key, a copy: r->key goes with r), its request in flight with it. */
static void
rec_drop(struct app_ipam *m, const char *key, struct rec *r)
{
	if (r->inflight != JOB_NONE)
		app_map_del(&m->inflight, &r->tag, sizeof(r->tag));
	app_map_dels(&m->recs, key);
	rec_free(r);
}

/*
 * Queue a request for r, which has none in flight (callers check
 * r->inflight: the tag is the key of r's entry in m->inflight and must not
 * change under it). Its answer comes back with the tag and finds r there
 * at once, however many Services there are.
 */
static int
request(struct app_ipam *m, struct rec *r, uint8_t job, const char *method, const char *path,
	const char *content_type, const char *body)
{
	int rc;

	r->tag = ++m->seq;
	rc = app_map_put(&m->inflight, &r->tag, sizeof(r->tag), r);
	if (rc != 0)
		return rc;
	rc = sg_k8s_request(m->client, method, path, content_type, body, r->tag);
	if (rc != 0) {
		app_map_del(&m->inflight, &r->tag, sizeof(r->tag));
		return rc;
	}
	r->inflight = job;
	return 0;
}

/* ---- writes --------------------------------------------------------------------------- */

static int
patch_status(struct app_ipam *m, struct rec *r)
{
	char path[600], from[sizeof(r->from)], as[SG_CONF_ADDR_STRLEN];
	cJSON *o = cJSON_CreateObject(), *meta, *anns, *lb, *ing;
	char *body;
	int rc;

	meta = cJSON_AddObjectToObject(o, "metadata");
	/* The write is about the object we saw: a concurrent change is a 409, not lost. */
	if (r->rv[0] != '\0')
		cJSON_AddStringToObject(meta, "resourceVersion", r->rv);
	anns = cJSON_AddObjectToObject(meta, "annotations");
	lb = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "status"), "loadBalancer");
	/*
	 * Remembered for the answer: the Service may leave us while a patch
	 * that writes addresses is in flight, and then its 200 is no release.
	 */
	r->sent_clear = r->gone || r->held.n == 0;
	r->n_sent = r->sent_clear ? 0 : r->held.n;
	memcpy(r->sent, r->held.addrs, sizeof(r->sent));
	if (r->sent_clear) {
		cJSON_AddNullToObject(anns, ANN_FROM);
		cJSON_AddNullToObject(lb, "ingress");
	} else {
		from_of(&r->held, from, sizeof(from));
		cJSON_AddStringToObject(anns, ANN_FROM, from);
		ing = cJSON_AddArrayToObject(lb, "ingress");
		for (uint32_t i = 0; i < r->held.n; i++) {
			cJSON *e = cJSON_CreateObject();

			cJSON_AddStringToObject(e, "ip", sg_conf_ip_str(r->held.addrs[i].family,
									r->held.addrs[i].addr, as,
									sizeof(as)));
			cJSON_AddStringToObject(e, "ipMode", "VIP");
			cJSON_AddItemToArray(ing, e);
		}
	}
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (body == NULL)
		return -ENOMEM;
	svc_path(r, "/status", path, sizeof(path));
	rc = request(m, r, JOB_PATCH, "PATCH", path, "application/merge-patch+json", body);
	free(body);
	return rc;
}

static int
get_service(struct app_ipam *m, struct rec *r)
{
	char path[600];

	svc_path(r, "", path, sizeof(path));
	return request(m, r, JOB_GET, "GET", path, NULL, NULL);
}

static void
backoff(struct rec *r, uint64_t now)
{
	r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS :
			RTE_MIN(2 * r->backoff_ms, BACKOFF_MAX_MS);
	/* Jitter: gateways restarted together do not retry in step. */
	r->retry_ms = now + r->backoff_ms + (uint64_t)rand() % (r->backoff_ms / 4 + 1);
}

static const char *
status_message(const char *body, char *buf, size_t size)
{
	cJSON *o = body != NULL ? cJSON_Parse(body) : NULL;
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");

	snprintf(buf, size, "%s", cJSON_IsString(msg) ? msg->valuestring : "");
	cJSON_Delete(o);
	return buf;
}

/* The resourceVersion of a Service in a response body, into r. */
static void
take_rv(struct rec *r, const char *body)
{
	cJSON *o = body != NULL ? cJSON_Parse(body) : NULL;
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "metadata"), "resourceVersion");

	if (cJSON_IsString(rv))
		snprintf(r->rv, sizeof(r->rv), "%s", rv->valuestring);
	cJSON_Delete(o);
}

/* What a GET found of a Service, for deciding whether to write on it. */
struct seen {
	char uid[NAME_SIZE];
	bool lb;			/* of type LoadBalancer */
	bool classless;
	bool ours;
	bool from;			/* has the annotation ANN_FROM */
	int n_ingress;
	struct sg_conf_addr ingress[2];	/* the first two ingress IPs */
};

static void
read_seen(const struct app_ipam *m, const char *body, struct seen *v)
{
	cJSON *o = body != NULL ? cJSON_Parse(body) : NULL;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(meta, "uid");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(spec, "type");
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(spec, "loadBalancerClass");
	const cJSON *ing = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "status"), "loadBalancer"), "ingress");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(meta, "annotations"), ANN_FROM);
	const cJSON *e;
	int i = 0;

	memset(v, 0, sizeof(*v));
	v->from = cJSON_IsString(from);
	cJSON_ArrayForEach(e, ing) {
		const cJSON *ip = cJSON_GetObjectItemCaseSensitive(e, "ip");

		if (i < 2 && cJSON_IsString(ip) &&
		    sg_conf_ip_parse(ip->valuestring, 0, &v->ingress[i]) == 0)
			i++;
	}
	snprintf(v->uid, sizeof(v->uid), "%s", cJSON_IsString(uid) ? uid->valuestring : "");
	v->lb = cJSON_IsString(type) && strcmp(type->valuestring, "LoadBalancer") == 0;
	v->classless = cls == NULL || cJSON_IsNull(cls);
	if (!v->lb)
		v->ours = false;
	else if (cJSON_IsString(cls))
		v->ours = strcmp(cls->valuestring, CLASS) == 0;
	else
		v->ours = cls == NULL || cJSON_IsNull(cls) ? m->default_class : false;
	v->n_ingress = cJSON_GetArraySize(ing);
	cJSON_Delete(o);
}

/*
 * Forget a record: what it holds goes back to lib/ipam (whatever path led
 * here: a record freed with its addresses would hold them until a restart,
 * since nothing names the key again) and the tables stop serving it.
 */
static void
forget(struct sg_app *a, struct app_ipam *m, struct rec *r)
{
	char key[SG_K8S_KEY_SIZE];
	bool held = r->held.n > 0;

	snprintf(key, sizeof(key), "%s", r->key);
	sg_ipam_release(m->ipam, key);
	rec_drop(m, key, r);
	if (held)
		app_services_k8s_refresh(a, key);
}

/* r left us (as app_ipam_observe() learns it from the watch): the address goes back. */
static void
leave(struct app_ipam *m, struct rec *r)
{
	char held[120];

	if (r->held.n > 0) {
		held_str(&r->held, held, sizeof(held));
		SG_LOG(ipam, INFO, "service %s: %s released", r->key, held);
	}
	sg_ipam_release(m->ipam, r->key);
	memset(&r->held, 0, sizeof(r->held));
	r->ours = false;
	r->gone = true;
	r->checked = false;
}

/*
 * Whether the status of a Service that left us (deleted, or no longer a
 * LoadBalancer: lib/k8s cannot tell which; or class-less after
 * lb.default_class was turned off), as the GET found it, is ours to clear.
 * Not a LoadBalancer: a class is only allowed on those, so it cannot be
 * another provider's. A class-less LoadBalancer: only if it still shows
 * exactly what we wrote, with our pool annotation; another provider may
 * have taken it since.
 */
static bool
may_clear(const struct app_ipam *m, const struct rec *r, const struct seen *v)
{
	if (v->n_ingress == 0)
		return false;
	if (!v->lb)
		return true;
	if (!v->classless || m->default_class || !v->from || (uint32_t)v->n_ingress != r->n_status)
		return false;
	for (uint32_t i = 0; i < r->n_status; i++)
		if (!addr_in(&r->status[i], v->ingress, 2))
			return false;
	return true;
}

/*
 * The answer to a re-read. Only the object we decided on is written: a
 * Service deleted and created again under the same name (another uid) may
 * be another provider's, and one that is no longer ours is only ever
 * cleared (may_clear()), never given addresses. The watch may not have
 * said so yet.
 */
static void
reread(struct sg_app *a, struct app_ipam *m, struct rec *r, struct sg_k8s_response *resp)
{
	struct seen v;

	if (resp->status != 200) {
		/* Deleted (404), or refused for good: nothing to write on. */
		forget(a, m, r);
		return;
	}
	read_seen(m, resp->body, &v);
	if (strcmp(v.uid, r->uid) != 0) {
		SG_LOG(ipam, INFO, "service %s: replaced by another object (uid %s, was %s); "
		       "not written", r->key, v.uid, r->uid);
		forget(a, m, r);
		return;
	}
	if (!r->gone && !v.ours) {
		bool held = r->held.n > 0;

		leave(m, r);
		if (held)
			app_services_k8s_refresh(a, r->key);
	}
	if (r->gone && !may_clear(m, r, &v)) {
		forget(a, m, r);
		return;
	}
	/* The newer version is the one to write on. */
	take_rv(r, resp->body);
	r->stale = false;
	r->checked = r->gone;
	r->dirty = true;
}

static void
answered(struct sg_app *a, struct app_ipam *m, struct sg_k8s_response *resp, uint64_t now)
{
	struct rec *r = app_map_del(&m->inflight, &resp->tag, sizeof(resp->tag));
	char msg[200], held[120];
	uint8_t job;

	if (r == NULL)
		return;
	job = r->inflight;
	r->inflight = JOB_NONE;
	/*
	 * 401 and 403 are retried too: a token being rotated, or RBAC applied
	 * after the gateway started, heal by themselves; dropping the write
	 * would leave the Service without its status until its next change.
	 */
	if (resp->status == 0 || resp->status == 401 || resp->status == 403 ||
	    resp->status == 429 || resp->status >= 500) {
		SG_LOG(ipam, WARNING, "service %s: %s: %s; retrying", r->key,
		       job == JOB_GET ? "re-read" : "status patch",
		       resp->status == 0 ? resp->error : status_message(resp->body, msg,
									 sizeof(msg)));
		backoff(r, now);
		r->dirty = true;
		return;
	}
	if (job == JOB_GET) {
		reread(a, m, r, resp);
		return;
	}
	if (resp->status == 409) {
		/*
		 * Backed off like any failure: two writers (an old leader that
		 * has not heard yet) would otherwise fight at the speed of the
		 * API server. Said once per streak.
		 */
		if (r->backoff_ms == 0)
			SG_LOG(ipam, INFO, "service %s: changed under the status patch (409); "
			       "re-reading", r->key);
		else
			SG_LOG(ipam, DEBUG, "service %s: 409 again", r->key);
		backoff(r, now);
		r->stale = true;
		r->dirty = true;
		return;
	}
	if (resp->status == 404) {
		/* Deleted: what it held goes back now, not when the watch says so. */
		forget(a, m, r);
		return;
	}
	if (resp->status != 200) {
		SG_LOG(ipam, ERR, "service %s: status patch refused: %ld %s", r->key,
		       resp->status, status_message(resp->body, msg, sizeof(msg)));
		r->dirty = false;
		return;
	}
	r->backoff_ms = 0;
	take_rv(r, resp->body);
	if (r->gone && !r->sent_clear) {
		/*
		 * Addresses written after the Service left us: they are on it
		 * now, and only a clearing patch (after a GET) takes them off.
		 */
		r->n_status = r->n_sent;
		memcpy(r->status, r->sent, sizeof(r->status));
		r->checked = false;
		r->dirty = true;
		return;
	}
	r->dirty = false;
	if (!r->gone) {
		/* What the cluster says now (the watch will say it too). */
		r->n_status = r->held.n;
		memcpy(r->status, r->held.addrs, sizeof(r->status));
		from_of(&r->held, r->from, sizeof(r->from));
		if (r->held.n > 0) {
			held_str(&r->held, held, sizeof(held));
			snprintf(msg, sizeof(msg), "%s from pool %s", held, r->from);
			post_event(m, r, "Normal", "IPAllocated", msg);
		}
		return;
	}
	held_str(&(struct sg_ipam_alloc){ .addrs = { r->status[0], r->status[1] },
					  .n = r->n_status }, held, sizeof(held));
	snprintf(msg, sizeof(msg), "%s released: no longer a LoadBalancer of " CLASS, held);
	post_event(m, r, "Normal", "IPReleased", msg);
	forget(a, m, r);
}

/* ---- API -------------------------------------------------------------------------------- */

/*
 * Who writes allocations: with a failover group the leader, as the
 * control thread last applied it (app_leader_changed() in announce.c keeps
 * it so afterwards); alone, lb.allocate.
 */
static bool
wants_writer(const struct sg_app *a, const struct sg_conf *c)
{
	return a->announce.failover ? a->announce.leader : c->lb.allocate;
}

int
app_ipam_create(struct sg_app *a, struct sg_k8s *client, struct app_ipam **out)
{
	const struct sg_conf *c = a->conf;
	struct app_ipam *m;

	*out = NULL;
	if (c->lb.line == 0)
		return 0;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->ipam = sg_ipam_create(c->lb.pools, c->lb.n_pools);
	if (m->ipam == NULL) {
		free(m);
		return -ENOMEM;
	}
	m->client = client;
	m->writer = wants_writer(a, c);
	m->default_class = c->lb.default_class;
	app_map_init(&m->recs);
	app_map_init(&m->inflight);
	if (gethostname(m->instance, sizeof(m->instance)) != 0)
		snprintf(m->instance, sizeof(m->instance), "svcgw");
	srand((unsigned int)sg_mono_ms());
	SG_LOG(ipam, NOTICE, "LoadBalancer provider for class " CLASS "%s: %u pools, %s",
	       m->default_class ? " and class-less Services" : "", c->lb.n_pools,
	       m->writer ? "writing allocations" : "following the statuses");
	*out = m;
	return 0;
}

static int
free_rec_cb(void *val, void *arg)
{
	(void)arg;
	rec_free(val);
	return 0;
}

void
app_ipam_free(struct app_ipam *m)
{
	if (m == NULL)
		return;
	app_map_each(&m->recs, free_rec_cb, NULL);
	app_map_fini(&m->recs);
	app_map_fini(&m->inflight);
	sg_ipam_free(m->ipam);
	free(m);
}

void
app_ipam_observe(struct sg_app *a, const char *key, const struct sg_k8s_service *svc)
{
	struct app_ipam *m = a->ipam;
	struct rec *r;

	if (m == NULL)
		return;
	r = app_map_gets(&m->recs, key);
	if (!is_ours(m, svc)) {
		if (r == NULL)
			return;
		/* Deleted, or not a LoadBalancer any more: the address goes back. */
		leave(m, r);
		/*
		 * Deleted, or turned ClusterIP: lib/k8s says the same for both.
		 * The status goes if the Service still exists (a GET tells).
		 */
		r->dirty = m->writer && r->n_status > 0;
		if (!r->dirty && r->inflight == JOB_NONE)
			rec_drop(m, key, r);
		return;
	}
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL || app_map_puts(&m->recs, strcpy(r->key, key), r) < 0) {
			free(r);
			SG_LOG(ipam, ERR, "service %s: out of memory", key);
			return;
		}
		snprintf(r->ns, sizeof(r->ns), "%s", svc->namespace);
		snprintf(r->name, sizeof(r->name), "%s", svc->name);
	}
	r->ours = true;
	r->gone = false;
	r->checked = false;
	/* The watch brings the newest version: no re-read needed to write on it. */
	r->stale = false;
	read_request(r, svc);
	decide(m, r);
}

bool
app_ipam_vips(const struct sg_app *a, const char *key, const struct sg_conf_addr **vips,
	      uint32_t *n)
{
	const struct app_ipam *m = a->ipam;
	const struct rec *r = m != NULL ? app_map_gets(&m->recs, key) : NULL;

	if (r == NULL || !r->ours)
		return false;
	*vips = r->held.addrs;
	*n = r->held.n;
	return true;
}

struct each_ctx {
	struct sg_app *a;
	struct app_ipam *m;
	uint64_t now;
	int phase;		/* 0: claim, 1: decide, 2: retry failed, 3: writes */
};

static int
each_cb(void *val, void *arg)
{
	struct each_ctx *c = arg;
	struct rec *r = val;
	struct sg_ipam_alloc before = r->held;

	if (!r->ours && c->phase != 3)
		return 0;
	switch (c->phase) {
	case 0: {
		struct sg_ipam_req q = request_of(r);

		sg_ipam_claim(c->m->ipam, &q, r->status, r->n_status);
		break;
	}
	case 1:
		decide(c->m, r);
		break;
	case 2:
		if (r->failed)
			decide(c->m, r);
		break;
	case 3:
		if (!r->dirty || r->inflight != JOB_NONE || c->now < r->retry_ms || !c->m->writer)
			return 0;
		if ((r->stale || (r->gone && !r->checked) ? get_service(c->m, r) :
		     patch_status(c->m, r)) < 0)
			backoff(r, c->now);
		return 0;
	}
	if (memcmp(&before, &r->held, sizeof(before)) != 0)
		app_services_k8s_refresh(c->a, r->key);
	return 0;
}

static void
all(struct sg_app *a, int phase)
{
	struct each_ctx c = { a, a->ipam, sg_mono_ms(), phase };

	app_map_each(&a->ipam->recs, each_cb, &c);
}

void
app_ipam_synced(struct sg_app *a)
{
	struct app_ipam *m = a->ipam;

	if (m == NULL || m->synced)
		return;
	m->synced = true;
	/* Every status is claimed by now: only then is anything new handed out. */
	SG_LOG(ipam, NOTICE, "%u addresses rebuilt from %u Services' statuses",
	       sg_ipam_used(m->ipam), sg_ipam_services(m->ipam));
	all(a, 1);
	m->releases = sg_ipam_releases(m->ipam);
}

void
app_ipam_set_writer(struct sg_app *a, bool writer)
{
	struct app_ipam *m = a->ipam;

	if (m == NULL || m->writer == writer)
		return;
	m->writer = writer;
	SG_LOG(ipam, NOTICE, "%s", writer ? "writing allocations" : "following the statuses");
	if (!m->synced)
		return;
	/* A new writer starts from what the last one published, then fills the gaps. */
	all(a, 0);
	all(a, 1);
}

void
app_ipam_reload(struct sg_app *a, const struct sg_conf *nc)
{
	struct app_ipam *m = a->ipam;
	int rc;

	if (m == NULL)
		return;
	rc = sg_ipam_set_pools(m->ipam, nc->lb.pools, nc->lb.n_pools);
	if (rc < 0) {
		SG_LOG(ipam, ERR, "the new pools could not be set up: %s; the old ones stay",
		       strerror(-rc));
		return;
	}
	if (rc > 0)
		SG_LOG(ipam, NOTICE, "%d addresses are outside the new pools: their Services get "
		       "new ones", rc);
	if (m->default_class != nc->lb.default_class) {
		/*
		 * Class-less Services come or go: every Service is looked at
		 * again, not only those with a record (the new ones have none).
		 */
		m->default_class = nc->lb.default_class;
		app_services_k8s_reobserve(a);
	}
	if (wants_writer(a, nc) != m->writer)
		app_ipam_set_writer(a, wants_writer(a, nc));
	else if (m->synced)
		all(a, 1);
}

void
app_ipam_poll(struct sg_app *a)
{
	struct app_ipam *m = a->ipam;
	struct sg_k8s_response resp[RESPONSES];
	unsigned int n;
	uint64_t now = sg_mono_ms();

	if (m == NULL)
		return;
	n = sg_k8s_responses(m->client, resp, RESPONSES);
	for (unsigned int i = 0; i < n; i++) {
		answered(a, m, &resp[i], now);
		sg_k8s_response_clear(&resp[i]);
	}
	if (!m->synced)
		return;
	/* Addresses came back: those that found their pools full try again. */
	if (sg_ipam_releases(m->ipam) != m->releases) {
		m->releases = sg_ipam_releases(m->ipam);
		all(a, 2);
	}
	all(a, 3);
}
