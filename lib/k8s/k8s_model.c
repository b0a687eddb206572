/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The model: every Service, EndpointSlice and Node the client has seen,
 * decoded from JSON into compact structs, and the snapshots built from
 * them for the control thread.
 *
 * Objects live in one map per resource (namespace/name, or name for
 * nodes). A Service and the slices labelled kubernetes.io/service-name with
 * its name meet in a service entry, keyed namespace/name, which is what
 * gets marked dirty: any change to the Service or to one of its slices
 * marks the entry, and k8s_model_flush() rebuilds the snapshot of each
 * marked entry once, however many events touched it. A Service that is not
 * served (ClusterIP, ExternalName, headless) still has its entry, so its
 * slices are kept and a type change to NodePort serves them at once.
 *
 * Decoding follows what kube-proxy accepts (pkg/proxy/servicechangetracker.go,
 * endpointslicecache.go): an object it would reject, or that the API server
 * would never have admitted (a port out of range, an unknown protocol, an
 * address that does not parse), is "bad": logged once per resourceVersion,
 * counted, and stored as bad so a relist does not log it again. A bad
 * Service is not served; a bad slice gives no endpoints.
 *
 * Relists mark objects with a generation: what a completed relist did not
 * see is removed, as a deletion.
 *
 * Not here: the transfers and their JSON envelopes (k8s_client.c,
 * k8s_stream.c). Only the client thread (or a test) touches a model.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_private.h"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_ZONE "topology.kubernetes.io/zone"
#define LABEL_EXCLUDE_LB "node.kubernetes.io/exclude-from-external-load-balancers"
#define ANN_MODE "svcgw.io/mode"
#define ANN_PREFIX "svcgw.io/"
#define ANN_SOURCE_RANGES "service.beta.kubernetes.io/load-balancer-source-ranges"
/* Kubernetes' defaults and limits for sessionAffinityConfig.clientIP.timeoutSeconds. */
#define AFFINITY_DEFAULT 10800
#define AFFINITY_MAX 86400
/* Namespace and Service names are DNS labels. */
#define NAME_MAX_LEN 63

static const char *const res_nouns[SG_K8S_RESOURCE_COUNT] = {
	[SG_K8S_SERVICES] = "service",
	[SG_K8S_ENDPOINTSLICES] = "endpointslice",
	[SG_K8S_NODES] = "node",
};

/* ---- a bump allocator per object: one free for all its pieces ------------ */

struct chunk {
	struct chunk *next;
	size_t used;
	size_t cap;
	_Alignas(16) uint8_t data[];
};

struct arena {
	struct chunk *head;
};

static void *
arena_alloc(struct arena *a, size_t size)
{
	struct chunk *c = a->head;

	size = (size + 15) & ~(size_t)15;
	if (c == NULL || c->used + size > c->cap) {
		size_t cap = c != NULL ? c->cap * 2 : 512;

		if (cap > 65536)
			cap = 65536;
		if (cap < size)
			cap = size;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	c->used += size;
	return c->data + c->used - size;
}

static void *
arena_calloc(struct arena *a, size_t n, size_t size)
{
	void *p;

	if (n != 0 && size > SIZE_MAX / n)
		return NULL;
	p = arena_alloc(a, n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

static char *
arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->head != NULL) {
		struct chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
}

/* ---- decoded objects ----------------------------------------------------- */

struct svc_port {
	const char *name;
	uint8_t proto;
	uint16_t port;
	uint16_t node_port;
};

struct annotation {
	const char *key;
	const char *value;
};

struct svc_obj {
	uint8_t served;		/* NodePort or LoadBalancer with a cluster IP */
	uint8_t type;		/* SG_CONF_TYPE_* when served */
	int8_t mode;		/* from svcgw.io/mode; -1: none or invalid */
	uint8_t flags;		/* SG_K8S_SVC_* but MODE_DEFAULT */
	uint8_t families;
	uint8_t family_policy;
	uint32_t affinity_timeout;
	const char *uid;
	struct sg_conf_addr *vips;
	uint32_t n_vips;
	struct sg_conf_addr *ranges;
	uint32_t n_ranges;
	struct svc_port *ports;
	uint32_t n_ports;
	const char *lb_class;
	const char *lb_ip;
	struct annotation *ann;
	uint32_t n_ann;
};

struct slice_port {
	const char *name;
	uint8_t proto;
	uint16_t port;		/* 0: the slice gave none, the port is skipped */
};

struct slice_ep {
	struct sg_conf_addr addr;
	uint8_t ready;
	uint8_t serving;
	uint8_t terminating;
	const char *node;
	const char *zone;
};

struct slice_obj {
	uint8_t family;		/* SG_CONF_V4, SG_CONF_V6, 0 for FQDN (ignored) */
	struct slice_port *ports;
	uint32_t n_ports;
	struct slice_ep *eps;
	uint32_t n_eps;
};

struct node_obj {
	const char *zone;
	uint8_t ready;
	uint8_t unschedulable;
	uint8_t exclude_lb;
	struct sg_conf_addr *addrs;
	uint32_t n_addrs;
};

struct svc_entry;

/* One stored object of any resource. */
struct obj {
	uint8_t res;
	uint8_t bad;		/* unusable: nothing decoded */
	uint32_t gen;		/* of the relist (or event) that last stored or saw it */
	const char *key;	/* namespace/name, or name */
	const char *name;	/* metadata.name */
	const char *rv;		/* its resourceVersion */
	const char *svc_key;	/* slices: namespace/<service-name label>, or NULL */
	struct svc_entry *entry;
	struct arena arena;	/* everything above and below */
	union {
		struct svc_obj *svc;
		struct slice_obj *slice;
		struct node_obj *node;
	} u;
};

struct svc_entry {
	char key[SG_K8S_KEY_SIZE];
	struct obj *svc;	/* the Service, good or bad; NULL if none */
	struct obj **slices;
	uint32_t n_slices;
	uint32_t cap_slices;
	uint8_t dirty;
	uint8_t published;	/* the last change handed out was a snapshot */
};

struct k8s_model {
	struct k8s_log log;
	uint8_t default_mode;
	uint8_t nodes_changed;
	struct k8s_map objs[SG_K8S_RESOURCE_COUNT];
	uint32_t good[SG_K8S_RESOURCE_COUNT];
	uint32_t gen[SG_K8S_RESOURCE_COUNT];
	struct k8s_map entries;
	struct svc_entry **dirty;
	uint32_t n_dirty;
	uint32_t cap_dirty;
	uint32_t served;
	uint64_t bad;
};

/* ---- JSON access --------------------------------------------------------- */

struct dec {
	struct arena *a;
	char why[240];
};

static int
dec_bad(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
dec_bad(struct dec *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
dec_nomem(struct dec *d)
{
	snprintf(d->why, sizeof(d->why), "out of memory");
	return -ENOMEM;
}

static const cJSON *
jget(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static int
is_absent(const cJSON *v)
{
	return v == NULL || cJSON_IsNull(v);
}

/* A string member: *out NULL when absent or null; not a string is bad. */
static int
get_str(struct dec *d, const cJSON *o, const char *key, const char *path, const char **out)
{
	const cJSON *v = jget(o, key);

	*out = NULL;
	if (is_absent(v))
		return 0;
	if (!cJSON_IsString(v))
		return dec_bad(d, "%s%s is not a string", path, key);
	*out = v->valuestring;
	return 0;
}

/* A boolean member, dflt when absent or null. */
static int
get_bool(struct dec *d, const cJSON *o, const char *key, const char *path, int dflt,
	 uint8_t *out)
{
	const cJSON *v = jget(o, key);

	*out = (uint8_t)dflt;
	if (is_absent(v))
		return 0;
	if (!cJSON_IsBool(v))
		return dec_bad(d, "%s%s is not a boolean", path, key);
	*out = cJSON_IsTrue(v) ? 1 : 0;
	return 0;
}

/* An integer member in [min, max]; *present 0 when absent or null. */
static int
get_int(struct dec *d, const cJSON *o, const char *key, const char *path, long min, long max,
	long *out, int *present)
{
	const cJSON *v = jget(o, key);

	*present = 0;
	if (is_absent(v))
		return 0;
	if (!cJSON_IsNumber(v))
		return dec_bad(d, "%s%s is not an integer", path, key);
	/* Range first: converting a huge double to long is undefined. */
	if (v->valuedouble < (double)min || v->valuedouble > (double)max)
		return dec_bad(d, "%s%s %.0f is out of range (%ld-%ld)", path, key,
			       v->valuedouble, min, max);
	if (v->valuedouble != (double)(long)v->valuedouble)
		return dec_bad(d, "%s%s is not an integer", path, key);
	*out = (long)v->valuedouble;
	*present = 1;
	return 0;
}

/* An array member: NULL when absent or null; not an array is bad. */
static int
get_array(struct dec *d, const cJSON *o, const char *key, const char *path, const cJSON **out)
{
	const cJSON *v = jget(o, key);

	*out = NULL;
	if (is_absent(v))
		return 0;
	if (!cJSON_IsArray(v))
		return dec_bad(d, "%s%s is not an array", path, key);
	*out = v;
	return 0;
}

static const char *
label(const cJSON *meta, const char *group, const char *key)
{
	const cJSON *v = jget(jget(meta, group), key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
parse_proto(struct dec *d, const char *s, const char *path, uint8_t *out)
{
	if (s == NULL || strcmp(s, "TCP") == 0)
		*out = IPPROTO_TCP;
	else if (strcmp(s, "UDP") == 0)
		*out = IPPROTO_UDP;
	else if (strcmp(s, "SCTP") == 0)
		*out = IPPROTO_SCTP;
	else
		return dec_bad(d, "%sprotocol \"%.32s\" is not TCP, UDP or SCTP", path, s);
	return 0;
}

/* "network/len", white space around it ignored, host bits cleared (as ParseCIDRSloppy). */
static int
parse_cidr(const char *s, struct sg_conf_addr *a)
{
	char ip[64], *end;
	const char *slash;
	unsigned long len;
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	slash = strchr(s, '/');
	if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
		return -1;
	n = (size_t)(slash - s);
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (sg_conf_ip_parse(ip, 0, a) < 0 || slash[1] < '0' || slash[1] > '9')
		return -1;
	len = strtoul(slash + 1, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0' || len > (a->family == SG_CONF_V4 ? 32u : 128u))
		return -1;
	a->len = (uint8_t)len;
	for (unsigned int bit = (unsigned int)len; bit < 128; bit++)
		a->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	return 0;
}

static unsigned int
fam_bit(unsigned int family)
{
	return family == SG_CONF_V4 ? SG_CONF_FAM_V4 : family == SG_CONF_V6 ? SG_CONF_FAM_V6 : 0;
}

/* ---- decoding a Service -------------------------------------------------- */

static int
svc_ports(struct dec *d, const cJSON *spec, struct svc_obj *s, int node_ports)
{
	const cJSON *ports, *p;
	uint32_t i = 0;
	int rc = get_array(d, spec, "ports", "spec.", &ports);

	if (rc < 0 || ports == NULL)
		return rc;
	s->n_ports = (uint32_t)cJSON_GetArraySize(ports);
	s->ports = arena_calloc(d->a, s->n_ports, sizeof(*s->ports));
	if (s->ports == NULL && s->n_ports != 0)
		return dec_nomem(d);
	cJSON_ArrayForEach(p, ports) {
		struct svc_port *sp = &s->ports[i];
		const char *name = NULL, *proto = NULL;
		char path[40];
		long v;
		int has;

		snprintf(path, sizeof(path), "spec.ports[%u].", i);
		if (!cJSON_IsObject(p))
			return dec_bad(d, "spec.ports[%u] is not an object", i);
		rc = get_str(d, p, "name", path, &name);
		if (rc == 0)
			rc = get_str(d, p, "protocol", path, &proto);
		if (rc == 0)
			rc = parse_proto(d, proto, path, &sp->proto);
		if (rc == 0)
			rc = get_int(d, p, "port", path, 1, 65535, &v, &has);
		if (rc < 0)
			return rc;
		if (!has)
			return dec_bad(d, "%sport is missing", path);
		sp->port = (uint16_t)v;
		rc = get_int(d, p, "nodePort", path, 0, 65535, &v, &has);
		if (rc < 0)
			return rc;
		sp->node_port = has && node_ports ? (uint16_t)v : 0;
		sp->name = arena_strdup(d->a, name != NULL ? name : "");
		if (sp->name == NULL)
			return dec_nomem(d);
		/* kube-proxy keys ports by name and protocol: two alike cannot both be served. */
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(s->ports[j].name, sp->name) == 0 &&
			    s->ports[j].proto == sp->proto)
				return dec_bad(d, "spec.ports[%u] has the name and protocol of "
					       "spec.ports[%u]", i, j);
		i++;
	}
	return 0;
}

static int
svc_families(struct dec *d, const cJSON *spec, const char *cluster_ip, struct svc_obj *s)
{
	const cJSON *fams, *f;
	struct sg_conf_addr a;
	const char *pol;
	int rc = get_array(d, spec, "ipFamilies", "spec.", &fams);

	if (rc < 0)
		return rc;
	cJSON_ArrayForEach(f, fams) {
		if (cJSON_IsString(f) && strcmp(f->valuestring, "IPv4") == 0)
			s->families |= SG_CONF_FAM_V4;
		else if (cJSON_IsString(f) && strcmp(f->valuestring, "IPv6") == 0)
			s->families |= SG_CONF_FAM_V6;
		else
			return dec_bad(d, "spec.ipFamilies holds something other than IPv4 "
				       "and IPv6");
	}
	/* Objects older than dual-stack have no ipFamilies: the cluster IP tells. */
	if (s->families == 0) {
		if (sg_conf_ip_parse(cluster_ip, 0, &a) < 0)
			return dec_bad(d, "spec.clusterIP \"%.64s\" is not an IP address",
				       cluster_ip);
		s->families = (uint8_t)fam_bit(a.family);
	}
	rc = get_str(d, spec, "ipFamilyPolicy", "spec.", &pol);
	if (rc < 0)
		return rc;
	if (pol == NULL)
		s->family_policy = SG_K8S_FAMILY_POLICY_UNSET;
	else if (strcmp(pol, "SingleStack") == 0)
		s->family_policy = SG_K8S_FAMILY_SINGLE_STACK;
	else if (strcmp(pol, "PreferDualStack") == 0)
		s->family_policy = SG_K8S_FAMILY_PREFER_DUAL_STACK;
	else if (strcmp(pol, "RequireDualStack") == 0)
		s->family_policy = SG_K8S_FAMILY_REQUIRE_DUAL_STACK;
	else
		return dec_bad(d, "spec.ipFamilyPolicy \"%.32s\" is not a policy", pol);
	return 0;
}

/* status.loadBalancer.ingress[].ip with ipMode unset or VIP, of the service's families. */
static int
svc_vips(struct dec *d, const cJSON *o, struct svc_obj *s)
{
	const cJSON *ing = jget(jget(jget(o, "status"), "loadBalancer"), "ingress"), *e;
	uint32_t i = 0;

	if (is_absent(ing))
		return 0;
	if (!cJSON_IsArray(ing))
		return dec_bad(d, "status.loadBalancer.ingress is not an array");
	s->vips = arena_calloc(d->a, (size_t)cJSON_GetArraySize(ing), sizeof(*s->vips));
	if (s->vips == NULL && cJSON_GetArraySize(ing) != 0)
		return dec_nomem(d);
	cJSON_ArrayForEach(e, ing) {
		const char *ip = NULL, *mode = NULL;
		char path[48];
		struct sg_conf_addr a;
		int rc, dup = 0;

		snprintf(path, sizeof(path), "status.loadBalancer.ingress[%u].", i++);
		rc = get_str(d, e, "ip", path, &ip);
		if (rc == 0)
			rc = get_str(d, e, "ipMode", path, &mode);
		if (rc < 0)
			return rc;
		/* Hostname-only entries are for DNS-based balancers, not us. */
		if (ip == NULL || (mode != NULL && strcmp(mode, "VIP") != 0))
			continue;
		if (sg_conf_ip_parse(ip, 0, &a) < 0)
			return dec_bad(d, "%sip \"%.64s\" is not an IP address", path, ip);
		if (!(s->families & fam_bit(a.family)))
			continue;
		for (uint32_t j = 0; j < s->n_vips; j++)
			dup |= memcmp(&s->vips[j], &a, sizeof(a)) == 0;
		if (!dup)
			s->vips[s->n_vips++] = a;
	}
	return 0;
}

static int
add_range(struct dec *d, struct svc_obj *s, uint32_t cap, const char *text, const char *where)
{
	struct sg_conf_addr a;

	if (parse_cidr(text, &a) < 0)
		return dec_bad(d, "%s \"%.64s\" is not a CIDR", where, text);
	for (uint32_t j = 0; j < s->n_ranges; j++)
		if (memcmp(&s->ranges[j], &a, sizeof(a)) == 0)
			return 0;
	if (s->n_ranges < cap)
		s->ranges[s->n_ranges++] = a;
	return 0;
}

/*
 * spec.loadBalancerSourceRanges, else the older annotation (comma list),
 * as kube-proxy takes them. A range that does not parse makes the Service
 * bad rather than open to everyone.
 */
static int
svc_ranges(struct dec *d, const cJSON *meta, const cJSON *spec, struct svc_obj *s)
{
	const cJSON *list, *r;
	const char *ann;
	uint32_t i = 0, cap;
	int rc = get_array(d, spec, "loadBalancerSourceRanges", "spec.", &list);

	if (rc < 0)
		return rc;
	if (list != NULL && cJSON_GetArraySize(list) > 0) {
		cap = (uint32_t)cJSON_GetArraySize(list);
		s->ranges = arena_calloc(d->a, cap, sizeof(*s->ranges));
		if (s->ranges == NULL)
			return dec_nomem(d);
		cJSON_ArrayForEach(r, list) {
			char where[64];

			snprintf(where, sizeof(where), "spec.loadBalancerSourceRanges[%u]", i++);
			if (!cJSON_IsString(r))
				return dec_bad(d, "%s is not a string", where);
			rc = add_range(d, s, cap, r->valuestring, where);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	ann = label(meta, "annotations", ANN_SOURCE_RANGES);
	if (ann == NULL || ann[strspn(ann, " \t")] == '\0')
		return 0;
	cap = 1;
	for (const char *c = ann; *c != '\0'; c++)
		cap += *c == ',';
	s->ranges = arena_calloc(d->a, cap, sizeof(*s->ranges));
	if (s->ranges == NULL)
		return dec_nomem(d);
	for (const char *c = ann; *c != '\0';) {
		size_t n = strcspn(c, ",");
		char item[128];

		snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1),
			 c);
		if (item[strspn(item, " \t")] != '\0') {
			rc = add_range(d, s, cap, item, "annotation " ANN_SOURCE_RANGES);
			if (rc < 0)
				return rc;
		}
		c += n + (c[n] == ',');
	}
	return 0;
}

static int
cmp_annotation(const void *a, const void *b)
{
	return strcmp(((const struct annotation *)a)->key, ((const struct annotation *)b)->key);
}

/* The svcgw.io/ annotations (issue 7 reads its requests from them). */
static int
svc_annotations(struct dec *d, const cJSON *meta, struct svc_obj *s)
{
	const cJSON *ann = jget(meta, "annotations"), *a;
	uint32_t n = 0;

	if (!cJSON_IsObject(ann))
		return 0;
	cJSON_ArrayForEach(a, ann)
		n += cJSON_IsString(a) && strncmp(a->string, ANN_PREFIX, strlen(ANN_PREFIX)) == 0;
	if (n == 0)
		return 0;
	s->ann = arena_calloc(d->a, n, sizeof(*s->ann));
	if (s->ann == NULL)
		return dec_nomem(d);
	cJSON_ArrayForEach(a, ann) {
		if (!cJSON_IsString(a) || strncmp(a->string, ANN_PREFIX, strlen(ANN_PREFIX)) != 0)
			continue;
		s->ann[s->n_ann].key = arena_strdup(d->a, a->string);
		s->ann[s->n_ann].value = arena_strdup(d->a, a->valuestring);
		if (s->ann[s->n_ann].key == NULL || s->ann[s->n_ann].value == NULL)
			return dec_nomem(d);
		s->n_ann++;
	}
	qsort(s->ann, s->n_ann, sizeof(*s->ann), cmp_annotation);
	return 0;
}

/* What kube-proxy skips (ShouldSkipService) and what we do not serve. */
static int
svc_type(struct dec *d, const cJSON *spec, struct svc_obj *s, const char **cluster_ip)
{
	const char *type = NULL;
	int rc = get_str(d, spec, "type", "spec.", &type);

	if (rc == 0)
		rc = get_str(d, spec, "clusterIP", "spec.", cluster_ip);
	if (rc < 0)
		return rc;
	if (type == NULL || strcmp(type, "ClusterIP") == 0 || strcmp(type, "ExternalName") == 0)
		return 0;
	if (strcmp(type, "NodePort") == 0)
		s->type = SG_CONF_TYPE_NODEPORT;
	else if (strcmp(type, "LoadBalancer") == 0)
		s->type = SG_CONF_TYPE_LOADBALANCER;
	else
		return dec_bad(d, "spec.type \"%.32s\" is not a Service type", type);
	s->served = *cluster_ip != NULL && (*cluster_ip)[0] != '\0' &&
		    strcmp(*cluster_ip, "None") != 0;
	return 0;
}

static int
decode_service(struct dec *d, const struct k8s_log *log, const char *key, const cJSON *o,
	       struct svc_obj *s)
{
	const cJSON *meta = jget(o, "metadata"), *spec = jget(o, "spec");
	const char *cluster_ip = NULL, *uid = NULL, *affinity = NULL, *policy = NULL, *mode;
	const char *cls = NULL, *lb_ip = NULL;
	uint8_t alloc = 1;
	long v;
	int rc, has;

	if (!cJSON_IsObject(spec))
		return dec_bad(d, "no spec");
	rc = svc_type(d, spec, s, &cluster_ip);
	if (rc < 0 || !s->served)
		return rc;
	rc = get_str(d, meta, "uid", "metadata.", &uid);
	if (rc == 0)
		rc = svc_families(d, spec, cluster_ip, s);
	if (rc == 0)
		rc = get_bool(d, spec, "allocateLoadBalancerNodePorts", "spec.", 1, &alloc);
	if (rc < 0)
		return rc;
	if (s->type == SG_CONF_TYPE_LOADBALANCER && !alloc)
		s->flags |= SG_K8S_SVC_NO_NODE_PORTS;
	rc = svc_ports(d, spec, s, !(s->flags & SG_K8S_SVC_NO_NODE_PORTS));
	if (rc == 0)
		rc = get_str(d, spec, "sessionAffinity", "spec.", &affinity);
	if (rc == 0)
		rc = get_str(d, spec, "externalTrafficPolicy", "spec.", &policy);
	if (rc < 0)
		return rc;
	if (affinity != NULL && strcmp(affinity, "ClientIP") == 0) {
		s->flags |= SG_K8S_SVC_AFFINITY;
		rc = get_int(d, jget(jget(spec, "sessionAffinityConfig"), "clientIP"),
			     "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.", 1,
			     AFFINITY_MAX, &v, &has);
		if (rc < 0)
			return rc;
		s->affinity_timeout = has ? (uint32_t)v : AFFINITY_DEFAULT;
	}
	if (policy != NULL && strcmp(policy, "Local") == 0)
		s->flags |= SG_K8S_SVC_LOCAL;
	if (s->type == SG_CONF_TYPE_LOADBALANCER) {
		rc = svc_vips(d, o, s);
		if (rc == 0)
			rc = svc_ranges(d, meta, spec, s);
		if (rc < 0)
			return rc;
	}
	rc = get_str(d, spec, "loadBalancerClass", "spec.", &cls);
	if (rc == 0)
		rc = get_str(d, spec, "loadBalancerIP", "spec.", &lb_ip);
	if (rc == 0)
		rc = svc_annotations(d, meta, s);
	if (rc < 0)
		return rc;
	s->uid = arena_strdup(d->a, uid != NULL ? uid : "");
	s->lb_class = cls != NULL ? arena_strdup(d->a, cls) : NULL;
	s->lb_ip = lb_ip != NULL && lb_ip[0] != '\0' ? arena_strdup(d->a, lb_ip) : NULL;
	if (s->uid == NULL || (cls != NULL && s->lb_class == NULL) ||
	    (s->lb_ip == NULL && lb_ip != NULL && lb_ip[0] != '\0'))
		return dec_nomem(d);
	s->mode = -1;
	mode = label(meta, "annotations", ANN_MODE);
	if (mode != NULL) {
		int m = sg_conf_mode_parse(mode);

		if (m >= 0)
			s->mode = (int8_t)m;
		else
			k8s_logf(log, SG_K8S_LOG_WARNING, "service %s: annotation " ANN_MODE
				 " \"%.32s\" is not a mode (nat, dnat, dsr-ipip, dsr-gue, dsr-l2); "
				 "default_mode is used", key, mode);
	}
	return 0;
}

/* ---- decoding an EndpointSlice ------------------------------------------- */

static int
slice_ports(struct dec *d, const cJSON *o, struct slice_obj *s)
{
	const cJSON *ports, *p;
	uint32_t i = 0;
	int rc = get_array(d, o, "ports", "", &ports);

	if (rc < 0 || ports == NULL)
		return rc;
	s->n_ports = (uint32_t)cJSON_GetArraySize(ports);
	s->ports = arena_calloc(d->a, s->n_ports, sizeof(*s->ports));
	if (s->ports == NULL && s->n_ports != 0)
		return dec_nomem(d);
	cJSON_ArrayForEach(p, ports) {
		struct slice_port *sp = &s->ports[i];
		const char *name = NULL, *proto = NULL;
		char path[32];
		long v;
		int has;

		snprintf(path, sizeof(path), "ports[%u].", i++);
		if (!cJSON_IsObject(p))
			return dec_bad(d, "ports[%u] is not an object", i - 1);
		rc = get_str(d, p, "name", path, &name);
		if (rc == 0)
			rc = get_str(d, p, "protocol", path, &proto);
		if (rc == 0)
			rc = parse_proto(d, proto, path, &sp->proto);
		if (rc == 0)
			rc = get_int(d, p, "port", path, 1, 65535, &v, &has);
		if (rc < 0)
			return rc;
		/* No number: kube-proxy ignores the port, so do we. */
		sp->port = has ? (uint16_t)v : 0;
		sp->name = arena_strdup(d->a, name != NULL ? name : "");
		if (sp->name == NULL)
			return dec_nomem(d);
	}
	return 0;
}

static int
slice_endpoints(struct dec *d, const cJSON *o, struct slice_obj *s)
{
	const cJSON *eps, *e;
	uint32_t i = 0;
	int rc = get_array(d, o, "endpoints", "", &eps);

	if (rc < 0 || eps == NULL)
		return rc;
	s->eps = arena_calloc(d->a, (size_t)cJSON_GetArraySize(eps), sizeof(*s->eps));
	if (s->eps == NULL && cJSON_GetArraySize(eps) != 0)
		return dec_nomem(d);
	cJSON_ArrayForEach(e, eps) {
		struct slice_ep *ep = &s->eps[s->n_eps];
		const cJSON *addrs, *cond;
		const char *node = NULL, *zone = NULL;
		char path[40], cpath[56];

		snprintf(path, sizeof(path), "endpoints[%u].", i++);
		if (!cJSON_IsObject(e))
			return dec_bad(d, "endpoints[%u] is not an object", i - 1);
		rc = get_array(d, e, "addresses", path, &addrs);
		if (rc < 0)
			return rc;
		/* kube-proxy uses the first address; an endpoint without one is skipped. */
		if (addrs == NULL || cJSON_GetArraySize(addrs) == 0)
			continue;
		if (!cJSON_IsString(cJSON_GetArrayItem(addrs, 0)))
			return dec_bad(d, "%saddresses[0] is not a string", path);
		if (sg_conf_ip_parse(cJSON_GetArrayItem(addrs, 0)->valuestring, s->family,
				     &ep->addr) < 0)
			return dec_bad(d, "%saddresses[0] \"%.64s\" is not an %s address", path,
				       cJSON_GetArrayItem(addrs, 0)->valuestring,
				       s->family == SG_CONF_V4 ? "IPv4" : "IPv6");
		cond = jget(e, "conditions");
		if (!is_absent(cond) && !cJSON_IsObject(cond))
			return dec_bad(d, "%sconditions is not an object", path);
		/* EndpointConditions: nil ready and serving mean true, nil terminating false. */
		snprintf(cpath, sizeof(cpath), "%sconditions.", path);
		rc = get_bool(d, cond, "ready", cpath, 1, &ep->ready);
		if (rc == 0)
			rc = get_bool(d, cond, "serving", cpath, 1, &ep->serving);
		if (rc == 0)
			rc = get_bool(d, cond, "terminating", cpath, 0, &ep->terminating);
		if (rc == 0)
			rc = get_str(d, e, "nodeName", path, &node);
		if (rc == 0)
			rc = get_str(d, e, "zone", path, &zone);
		if (rc < 0)
			return rc;
		ep->node = arena_strdup(d->a, node != NULL ? node : "");
		ep->zone = arena_strdup(d->a, zone != NULL ? zone : "");
		if (ep->node == NULL || ep->zone == NULL)
			return dec_nomem(d);
		s->n_eps++;
	}
	return 0;
}

static int
decode_slice(struct dec *d, const cJSON *o, struct slice_obj *s)
{
	const char *type;
	int rc = get_str(d, o, "addressType", "", &type);

	if (rc < 0)
		return rc;
	if (type == NULL)
		return dec_bad(d, "no addressType");
	if (strcmp(type, "IPv4") == 0)
		s->family = SG_CONF_V4;
	else if (strcmp(type, "IPv6") == 0)
		s->family = SG_CONF_V6;
	else if (strcmp(type, "FQDN") == 0)
		return 0;	/* kube-proxy ignores these */
	else
		return dec_bad(d, "addressType \"%.32s\" is not IPv4, IPv6 or FQDN", type);
	rc = slice_ports(d, o, s);
	return rc < 0 ? rc : slice_endpoints(d, o, s);
}

/* ---- decoding a Node ----------------------------------------------------- */

static int
decode_node(struct dec *d, const cJSON *o, struct node_obj *n)
{
	const cJSON *meta = jget(o, "metadata"), *status = jget(o, "status"), *conds, *addrs, *e;
	const char *zone = label(meta, "labels", LABEL_ZONE);
	int rc = get_bool(d, jget(o, "spec"), "unschedulable", "spec.", 0, &n->unschedulable);

	if (rc == 0)
		rc = get_array(d, status, "conditions", "status.", &conds);
	if (rc == 0)
		rc = get_array(d, status, "addresses", "status.", &addrs);
	if (rc < 0)
		return rc;
	n->exclude_lb = jget(jget(meta, "labels"), LABEL_EXCLUDE_LB) != NULL;
	n->zone = arena_strdup(d->a, zone != NULL ? zone : "");
	if (n->zone == NULL)
		return dec_nomem(d);
	cJSON_ArrayForEach(e, conds) {
		const cJSON *t = jget(e, "type"), *st = jget(e, "status");

		if (cJSON_IsString(t) && strcmp(t->valuestring, "Ready") == 0)
			n->ready = cJSON_IsString(st) && strcmp(st->valuestring, "True") == 0;
	}
	if (addrs == NULL)
		return 0;
	n->addrs = arena_calloc(d->a, (size_t)cJSON_GetArraySize(addrs), sizeof(*n->addrs));
	if (n->addrs == NULL && cJSON_GetArraySize(addrs) != 0)
		return dec_nomem(d);
	/* InternalIP first, then ExternalIP; other types name hosts, not addresses. */
	for (int pass = 0; pass < 2; pass++) {
		cJSON_ArrayForEach(e, addrs) {
			const cJSON *t = jget(e, "type"), *a = jget(e, "address");
			struct sg_conf_addr ad;

			if (!cJSON_IsString(t) || !cJSON_IsString(a) ||
			    strcmp(t->valuestring, pass == 0 ? "InternalIP" : "ExternalIP") != 0 ||
			    sg_conf_ip_parse(a->valuestring, 0, &ad) < 0)
				continue;
			n->addrs[n->n_addrs++] = ad;
		}
	}
	return 0;
}

static int
node_equal(const struct node_obj *a, const struct node_obj *b)
{
	return strcmp(a->zone, b->zone) == 0 && a->ready == b->ready &&
	       a->unschedulable == b->unschedulable && a->exclude_lb == b->exclude_lb &&
	       a->n_addrs == b->n_addrs &&
	       (a->n_addrs == 0 || memcmp(a->addrs, b->addrs, a->n_addrs * sizeof(*a->addrs)) == 0);
}

/* ---- objects ------------------------------------------------------------- */

static void
obj_free(struct obj *o)
{
	if (o != NULL) {
		struct arena a = o->arena;

		arena_free(&a);
	}
}

static int
mark(struct k8s_model *m, struct svc_entry *e)
{
	if (e->dirty)
		return 0;
	if (m->n_dirty == m->cap_dirty) {
		uint32_t cap = m->cap_dirty != 0 ? m->cap_dirty * 2 : 64;
		struct svc_entry **v = realloc(m->dirty, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		m->dirty = v;
		m->cap_dirty = cap;
	}
	m->dirty[m->n_dirty++] = e;
	e->dirty = 1;
	return 0;
}

static struct svc_entry *
entry_get(struct k8s_model *m, const char *key)
{
	struct svc_entry *e = k8s_map_get(&m->entries, key);

	if (e != NULL)
		return e;
	if (strlen(key) >= sizeof(e->key))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	strcpy(e->key, key);
	if (k8s_map_put(&m->entries, key, e) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

static void
unlink_obj(struct k8s_model *m, struct obj *o)
{
	struct svc_entry *e = o->entry;

	if (e == NULL)
		return;
	if (o->res == SG_K8S_SERVICES) {
		e->svc = NULL;
	} else {
		for (uint32_t i = 0; i < e->n_slices; i++) {
			if (e->slices[i] != o)
				continue;
			e->slices[i] = e->slices[--e->n_slices];
			break;
		}
	}
	o->entry = NULL;
	/* An entry is only freed by a flush, so it is always there to mark; if the
	 * mark fails for want of memory the entry is rebuilt with the next change. */
	(void)mark(m, e);
}

static int
link_obj(struct k8s_model *m, struct obj *o)
{
	const char *key = o->res == SG_K8S_SERVICES ? o->key : o->svc_key;
	struct svc_entry *e;

	if (key == NULL || o->res == SG_K8S_NODES)
		return 0;
	e = entry_get(m, key);
	if (e == NULL)
		return -ENOMEM;
	if (o->res == SG_K8S_SERVICES) {
		e->svc = o;
	} else {
		if (e->n_slices == e->cap_slices) {
			uint32_t cap = e->cap_slices != 0 ? e->cap_slices * 2 : 4;
			struct obj **v = realloc(e->slices, cap * sizeof(*v));

			if (v == NULL)
				return -ENOMEM;
			e->slices = v;
			e->cap_slices = cap;
		}
		e->slices[e->n_slices++] = o;
	}
	o->entry = e;
	return mark(m, e);
}

static void
remove_obj(struct k8s_model *m, struct obj *o)
{
	unlink_obj(m, o);
	if (o->res == SG_K8S_NODES && !o->bad)
		m->nodes_changed = 1;
	if (!o->bad)
		m->good[o->res]--;
	k8s_map_del(&m->objs[o->res], o->key);
	obj_free(o);
}

/* metadata.namespace/name (name alone for nodes), checked. */
static int
obj_key(struct dec *d, unsigned int res, const cJSON *meta, char *key, size_t size)
{
	const char *ns = NULL, *name = NULL;
	int rc = get_str(d, meta, "name", "metadata.", &name);

	if (rc == 0 && res != SG_K8S_NODES)
		rc = get_str(d, meta, "namespace", "metadata.", &ns);
	if (rc < 0)
		return rc;
	if (name == NULL || name[0] == '\0')
		return dec_bad(d, "no metadata.name");
	if (res == SG_K8S_NODES) {
		if (strlen(name) >= size)
			return dec_bad(d, "metadata.name is longer than %zu characters", size - 1);
		strcpy(key, name);
		return 0;
	}
	if (ns == NULL || ns[0] == '\0')
		return dec_bad(d, "no metadata.namespace");
	if (strlen(ns) > NAME_MAX_LEN ||
	    (res == SG_K8S_SERVICES && strlen(name) > NAME_MAX_LEN) ||
	    strlen(ns) + 1 + strlen(name) >= size)
		return dec_bad(d, "metadata.namespace or name is too long");
	memcpy(key, ns, strlen(ns));
	key[strlen(ns)] = '/';
	strcpy(key + strlen(ns) + 1, name);
	return 0;
}

/*
 * Decode o into a new object (bad if it cannot be used: the reason in
 * d->why). Returns the object, or NULL for want of memory.
 */
static struct obj *
obj_decode(struct k8s_model *m, unsigned int res, const char *key, const char *rv,
	   const cJSON *o, struct dec *d)
{
	struct arena a = { NULL };
	struct obj *ob = arena_calloc(&a, 1, sizeof(*ob));
	const cJSON *meta = jget(o, "metadata");
	const char *svc_name, *name = jget(meta, "name")->valuestring;
	int rc = 0;

	d->a = &a;
	d->why[0] = '\0';
	if (ob == NULL)
		goto nomem;
	ob->res = (uint8_t)res;
	ob->gen = m->gen[res];
	ob->key = arena_strdup(&a, key);
	ob->rv = arena_strdup(&a, rv);
	ob->name = arena_strdup(&a, name);
	if (ob->key == NULL || ob->rv == NULL || ob->name == NULL)
		goto nomem;
	switch (res) {
	case SG_K8S_SERVICES:
		ob->u.svc = arena_calloc(&a, 1, sizeof(*ob->u.svc));
		rc = ob->u.svc != NULL ? decode_service(d, &m->log, key, o, ob->u.svc) : -ENOMEM;
		break;
	case SG_K8S_ENDPOINTSLICES:
		svc_name = label(meta, "labels", LABEL_SERVICE_NAME);
		/* kube-proxy ignores slices without the label; they belong to no one. */
		if (svc_name != NULL && svc_name[0] != '\0') {
			char sk[SG_K8S_KEY_SIZE];
			const char *ns = jget(meta, "namespace")->valuestring;

			if (strlen(svc_name) > NAME_MAX_LEN) {
				rc = dec_bad(d, "label " LABEL_SERVICE_NAME " is longer than %d "
					     "characters", NAME_MAX_LEN);
				break;
			}
			snprintf(sk, sizeof(sk), "%s/%s", ns, svc_name);
			ob->svc_key = arena_strdup(&a, sk);
			if (ob->svc_key == NULL)
				goto nomem;
		}
		ob->u.slice = arena_calloc(&a, 1, sizeof(*ob->u.slice));
		rc = ob->u.slice != NULL ? decode_slice(d, o, ob->u.slice) : -ENOMEM;
		break;
	default:
		ob->u.node = arena_calloc(&a, 1, sizeof(*ob->u.node));
		rc = ob->u.node != NULL ? decode_node(d, o, ob->u.node) : -ENOMEM;
		break;
	}
	if (rc == -ENOMEM)
		goto nomem;
	if (rc < 0) {
		ob->bad = 1;
		memset(&ob->u, 0, sizeof(ob->u));
	}
	ob->arena = a;
	return ob;
nomem:
	arena_free(&a);
	return NULL;
}

/* 1 if replacing old (NULL: none) by new changes what sg_k8s_nodes_take() gives. */
static int
node_changed(const struct obj *old, const struct obj *new)
{
	if (old == NULL || old->bad || new->bad)
		return (old == NULL || old->bad) != new->bad;
	return !node_equal(old->u.node, new->u.node);
}

/* Replace (or add) the object at key with o's new version. */
static int
store(struct k8s_model *m, unsigned int res, const cJSON *o, int relist)
{
	const cJSON *meta = jget(o, "metadata");
	char key[320];
	const char *rv;
	struct obj *old, *ob;
	struct dec d;
	int rc = obj_key(&d, res, meta, key, sizeof(key));

	if (rc < 0) {
		/* Without a name the object cannot be tracked, so it cannot be logged once
		 * either: it is logged each time, which an API server never causes. */
		m->bad++;
		k8s_logf(&m->log, SG_K8S_LOG_ERR, "%s ?: %s; skipped", res_nouns[res], d.why);
		return -EINVAL;
	}
	rv = cJSON_IsString(jget(meta, "resourceVersion")) ?
	     jget(meta, "resourceVersion")->valuestring : "";
	old = k8s_map_get(&m->objs[res], key);
	/* A relist hands back every object: one we hold at this version costs nothing. */
	if (relist && old != NULL && rv[0] != '\0' && strcmp(old->rv, rv) == 0) {
		old->gen = m->gen[res];
		return old->bad ? -EINVAL : 0;
	}
	ob = obj_decode(m, res, key, rv, o, &d);
	if (ob == NULL)
		return -ENOMEM;
	/* Once per version: a relist or a repeated event does not log it again. */
	if (ob->bad && (old == NULL || !old->bad || strcmp(old->rv, rv) != 0 || rv[0] == '\0')) {
		m->bad++;
		k8s_logf(&m->log, SG_K8S_LOG_ERR, "%s %s: %s; skipped", res_nouns[res], key, d.why);
	}
	if (res == SG_K8S_NODES && node_changed(old, ob))
		m->nodes_changed = 1;
	if (old != NULL) {
		unlink_obj(m, old);
		if (!old->bad)
			m->good[res]--;
		obj_free(old);
	}
	if (k8s_map_put(&m->objs[res], key, ob) < 0) {
		k8s_map_del(&m->objs[res], key);
		obj_free(ob);
		return -ENOMEM;
	}
	if (ob->bad)
		return -EINVAL;	/* it holds its place, to log once, but links to nothing */
	m->good[res]++;
	return link_obj(m, ob);
}

/* ---- the public side of the model ---------------------------------------- */

struct k8s_model *
k8s_model_create(unsigned int default_mode, const struct k8s_log *log)
{
	struct k8s_model *m;

	if (default_mode >= SG_CONF_MODE_COUNT) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->default_mode = (uint8_t)default_mode;
	if (log != NULL)
		m->log = *log;
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++)
		k8s_map_init(&m->objs[r]);
	k8s_map_init(&m->entries);
	return m;
}

static void
free_obj_cb(void *arg, const char *key, void *value)
{
	(void)arg;
	(void)key;
	obj_free(value);
}

static void
free_entry_cb(void *arg, const char *key, void *value)
{
	struct svc_entry *e = value;

	(void)arg;
	(void)key;
	free(e->slices);
	free(e);
}

void
k8s_model_free(struct k8s_model *m)
{
	if (m == NULL)
		return;
	for (unsigned int r = 0; r < SG_K8S_RESOURCE_COUNT; r++) {
		k8s_map_each(&m->objs[r], free_obj_cb, NULL);
		k8s_map_fini(&m->objs[r]);
	}
	k8s_map_each(&m->entries, free_entry_cb, NULL);
	k8s_map_fini(&m->entries);
	free(m->dirty);
	free(m);
}

int
k8s_model_apply(struct k8s_model *m, unsigned int res, unsigned int type, const cJSON *obj)
{
	char key[320];
	struct obj *old;
	struct dec d;

	if (m == NULL || res >= SG_K8S_RESOURCE_COUNT || !cJSON_IsObject(obj))
		return -EINVAL;
	if (type == K8S_EV_ADDED || type == K8S_EV_MODIFIED)
		return store(m, res, obj, 0);
	if (type != K8S_EV_DELETED)
		return -EINVAL;
	if (obj_key(&d, res, jget(obj, "metadata"), key, sizeof(key)) < 0)
		return 0;	/* never stored, so nothing to delete */
	old = k8s_map_get(&m->objs[res], key);
	if (old != NULL)
		remove_obj(m, old);
	return 0;
}

void
k8s_model_relist_begin(struct k8s_model *m, unsigned int res)
{
	if (m != NULL && res < SG_K8S_RESOURCE_COUNT)
		m->gen[res]++;
}

int
k8s_model_relist_add(struct k8s_model *m, unsigned int res, const cJSON *obj)
{
	if (m == NULL || res >= SG_K8S_RESOURCE_COUNT || !cJSON_IsObject(obj))
		return -EINVAL;
	return store(m, res, obj, 1);
}

struct stale {
	struct obj **v;
	uint32_t n;
	uint32_t gen;
};

static int
cmp_obj_key(const void *a, const void *b)
{
	return strcmp((*(struct obj *const *)a)->key, (*(struct obj *const *)b)->key);
}

static void
stale_cb(void *arg, const char *key, void *value)
{
	struct stale *s = arg;
	struct obj *o = value;

	(void)key;
	if (o->gen != s->gen)
		s->v[s->n++] = o;
}

void
k8s_model_relist_end(struct k8s_model *m, unsigned int res)
{
	struct stale s;

	if (m == NULL || res >= SG_K8S_RESOURCE_COUNT || m->objs[res].n == 0)
		return;
	s.v = malloc(m->objs[res].n * sizeof(*s.v));
	s.n = 0;
	s.gen = m->gen[res];
	/* Without memory the stale objects stay until the next relist. */
	if (s.v == NULL)
		return;
	k8s_map_each(&m->objs[res], stale_cb, &s);
	/* In key order, so the deletions come out the same on every gateway. */
	qsort(s.v, s.n, sizeof(*s.v), cmp_obj_key);
	for (uint32_t i = 0; i < s.n; i++)
		remove_obj(m, s.v[i]);
	free(s.v);
}

static void
mode_cb(void *arg, const char *key, void *value)
{
	struct svc_entry *e = value;

	(void)key;
	if (e->svc != NULL && !e->svc->bad && e->svc->u.svc->served && e->svc->u.svc->mode < 0)
		(void)mark(arg, e);
}

void
k8s_model_set_default_mode(struct k8s_model *m, unsigned int mode)
{
	if (m == NULL || mode >= SG_CONF_MODE_COUNT || mode == m->default_mode)
		return;
	m->default_mode = (uint8_t)mode;
	k8s_map_each(&m->entries, mode_cb, m);
}

uint32_t
k8s_model_count(const struct k8s_model *m, unsigned int res)
{
	return m != NULL && res < SG_K8S_RESOURCE_COUNT ? m->good[res] : 0;
}

uint32_t
k8s_model_served(const struct k8s_model *m)
{
	return m != NULL ? m->served : 0;
}

uint64_t
k8s_model_bad(const struct k8s_model *m)
{
	return m != NULL ? m->bad : 0;
}

/* ---- snapshots ----------------------------------------------------------- */

/* An endpoint of one service port before de-duplication. */
struct cand {
	const struct slice_ep *ep;
	uint64_t order;		/* slice rank, then place in the slice */
	uint16_t port;
};

static int
cmp_addr(const struct sg_conf_addr *a, const struct sg_conf_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, 16);
}

static int
cmp_cand(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	int c = cmp_addr(&a->ep->addr, &b->ep->addr);

	if (c != 0)
		return c;
	return (a->order > b->order) - (a->order < b->order);
}

static int
cmp_slice_name(const void *a, const void *b)
{
	return strcmp((*(struct obj *const *)a)->name, (*(struct obj *const *)b)->name);
}

static size_t
align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static char *
put_str(char **cur, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = *cur;

	memcpy(p, s, n);
	*cur += n;
	return p;
}

/*
 * Endpoints of each service port, de-duplicated by address with the first
 * ready one winning (slices in name order, so the result does not depend
 * on the order events came in). cands is sized for every endpoint of every
 * slice; picked[p] and n_picked[p] point into it.
 */
static uint32_t
pick_endpoints(const struct svc_obj *s, struct obj **slices, uint32_t n_slices,
	       struct cand *cands, struct cand **picked, uint32_t *n_picked)
{
	struct cand *next = cands;
	uint32_t total = 0;

	for (uint32_t p = 0; p < s->n_ports; p++) {
		const struct svc_port *sp = &s->ports[p];
		struct cand *base = next;
		uint32_t n = 0, out = 0;

		for (uint32_t i = 0; i < n_slices; i++) {
			const struct slice_obj *sl = slices[i]->u.slice;
			uint16_t tport = 0;

			for (uint32_t j = 0; j < sl->n_ports && tport == 0; j++)
				if (sl->ports[j].port != 0 && sl->ports[j].proto == sp->proto &&
				    strcmp(sl->ports[j].name, sp->name) == 0)
					tport = sl->ports[j].port;
			if (tport == 0)
				continue;
			for (uint32_t j = 0; j < sl->n_eps; j++)
				base[n++] = (struct cand){ .ep = &sl->eps[j], .port = tport,
							   .order = (uint64_t)i << 32 | j };
		}
		qsort(base, n, sizeof(*base), cmp_cand);
		for (uint32_t i = 0; i < n;) {
			uint32_t run = i, best = i;

			while (run < n && cmp_addr(&base[run].ep->addr, &base[i].ep->addr) == 0)
				run++;
			for (uint32_t k = i; k < run; k++) {
				if (base[k].ep->ready) {
					best = k;
					break;
				}
			}
			base[out++] = base[best];
			i = run;
		}
		picked[p] = base;
		n_picked[p] = out;
		next = base + n;
		total += out;
	}
	return total;
}

/*
 * The snapshot of a served service: one allocation laid out as the struct,
 * its arrays (8-byte aligned), then every string.
 */
static int
build_service(struct k8s_model *m, const struct svc_entry *e, struct sg_k8s_service **out)
{
	const struct obj *so = e->svc;
	const struct svc_obj *s = so->u.svc;
	struct obj **slices = NULL;
	struct cand *cands = NULL, **picked = NULL;
	uint32_t n_slices = 0, n_cands = 0, total, *n_picked = NULL;
	size_t size, strs;
	struct sg_k8s_service *r;
	char *cur, *p;
	int rc = -ENOMEM;

	slices = malloc((e->n_slices + 1) * sizeof(*slices));
	picked = calloc(s->n_ports + 1, sizeof(*picked));
	n_picked = calloc(s->n_ports + 1, sizeof(*n_picked));
	if (slices == NULL || picked == NULL || n_picked == NULL)
		goto out;
	/* Slices of another family (or FQDN) are not this service's endpoints. */
	for (uint32_t i = 0; i < e->n_slices; i++) {
		struct obj *sl = e->slices[i];

		if (!sl->bad && (s->families & fam_bit(sl->u.slice->family))) {
			slices[n_slices++] = sl;
			n_cands += sl->u.slice->n_eps;
		}
	}
	qsort(slices, n_slices, sizeof(*slices), cmp_slice_name);
	cands = malloc(((size_t)n_cands * s->n_ports + 1) * sizeof(*cands));
	if (cands == NULL)
		goto out;
	total = pick_endpoints(s, slices, n_slices, cands, picked, n_picked);

	strs = strlen(so->key) + 1 + strlen(s->uid) + 1 + strlen(so->rv) + 1;
	strs += s->lb_class != NULL ? strlen(s->lb_class) + 1 : 0;
	strs += s->lb_ip != NULL ? strlen(s->lb_ip) + 1 : 0;
	for (uint32_t i = 0; i < s->n_ann; i++)
		strs += strlen(s->ann[i].key) + strlen(s->ann[i].value) + 2;
	for (uint32_t i = 0; i < s->n_ports; i++) {
		strs += strlen(s->ports[i].name) + 1;
		for (uint32_t j = 0; j < n_picked[i]; j++)
			strs += strlen(picked[i][j].ep->node) + strlen(picked[i][j].ep->zone) + 2;
	}
	size = align8(sizeof(*r)) + align8(s->n_ports * sizeof(struct sg_k8s_port)) +
	       align8(total * sizeof(struct sg_k8s_endpoint)) +
	       align8((s->n_vips + s->n_ranges) * sizeof(struct sg_conf_addr)) +
	       align8(s->n_ann * sizeof(struct sg_k8s_annotation)) + strs;
	r = calloc(1, size);
	if (r == NULL)
		goto out;
	cur = (char *)r + align8(sizeof(*r));
	r->ports = (struct sg_k8s_port *)(void *)cur;
	cur += align8(s->n_ports * sizeof(struct sg_k8s_port));
	{
		struct sg_k8s_endpoint *eps = (struct sg_k8s_endpoint *)(void *)cur;

		cur += align8(total * sizeof(struct sg_k8s_endpoint));
		for (uint32_t i = 0; i < s->n_ports; i++) {
			r->ports[i].endpoints = n_picked[i] != 0 ? eps : NULL;
			r->ports[i].n_endpoints = n_picked[i];
			eps += n_picked[i];
		}
	}
	r->vips = s->n_vips != 0 ? (struct sg_conf_addr *)(void *)cur : NULL;
	r->source_ranges = s->n_ranges != 0 ?
			   (struct sg_conf_addr *)(void *)cur + s->n_vips : NULL;
	cur += align8((s->n_vips + s->n_ranges) * sizeof(struct sg_conf_addr));
	r->annotations = s->n_ann != 0 ? (struct sg_k8s_annotation *)(void *)cur : NULL;
	cur += align8(s->n_ann * sizeof(struct sg_k8s_annotation));

	/* key is "namespace/name": the two strings come from it. */
	p = put_str(&cur, so->key);
	r->namespace = p;
	r->name = strchr(p, '/') + 1;
	*strchr(p, '/') = '\0';
	r->uid = put_str(&cur, s->uid);
	r->resource_version = put_str(&cur, so->rv);
	r->load_balancer_class = s->lb_class != NULL ? put_str(&cur, s->lb_class) : NULL;
	r->load_balancer_ip = s->lb_ip != NULL ? put_str(&cur, s->lb_ip) : NULL;
	r->type = s->type;
	r->mode = s->mode >= 0 ? (uint8_t)s->mode : m->default_mode;
	r->flags = (uint8_t)(s->flags | (s->mode < 0 ? SG_K8S_SVC_MODE_DEFAULT : 0));
	r->families = s->families;
	r->family_policy = s->family_policy;
	r->affinity_timeout = s->affinity_timeout;
	r->n_vips = s->n_vips;
	if (s->n_vips != 0)
		memcpy(r->vips, s->vips, s->n_vips * sizeof(*s->vips));
	r->n_source_ranges = s->n_ranges;
	if (s->n_ranges != 0)
		memcpy(r->source_ranges, s->ranges, s->n_ranges * sizeof(*s->ranges));
	r->n_annotations = s->n_ann;
	for (uint32_t i = 0; i < s->n_ann; i++) {
		r->annotations[i].key = put_str(&cur, s->ann[i].key);
		r->annotations[i].value = put_str(&cur, s->ann[i].value);
	}
	r->n_ports = s->n_ports;
	for (uint32_t i = 0; i < s->n_ports; i++) {
		struct sg_k8s_port *rp = &r->ports[i];

		rp->name = put_str(&cur, s->ports[i].name);
		rp->proto = s->ports[i].proto;
		rp->port = s->ports[i].port;
		rp->node_port = s->ports[i].node_port;
		for (uint32_t j = 0; j < n_picked[i]; j++) {
			const struct cand *c = &picked[i][j];
			struct sg_k8s_endpoint *ep = &rp->endpoints[j];

			ep->address = c->ep->addr;
			ep->port = c->port;
			ep->ready = c->ep->ready;
			ep->serving = c->ep->serving;
			ep->terminating = c->ep->terminating;
			ep->node_name = put_str(&cur, c->ep->node);
			ep->zone = put_str(&cur, c->ep->zone);
		}
	}
	*out = r;
	rc = 0;
out:
	free(slices);
	free(cands);
	free(picked);
	free(n_picked);
	return rc;
}

int
k8s_model_flush(struct k8s_model *m, k8s_change_fn fn, void *arg)
{
	int count = 0;
	uint32_t i;

	if (m == NULL || fn == NULL)
		return -EINVAL;
	for (i = 0; i < m->n_dirty; i++) {
		struct svc_entry *e = m->dirty[i];
		struct sg_k8s_service *snap = NULL;

		if (e->svc != NULL && !e->svc->bad && e->svc->u.svc->served &&
		    build_service(m, e, &snap) < 0)
			break;
		e->dirty = 0;
		if (snap != NULL) {
			m->served += !e->published;
			e->published = 1;
			fn(arg, e->key, snap);
			count++;
		} else if (e->published) {
			m->served--;
			e->published = 0;
			fn(arg, e->key, NULL);
			count++;
		}
		if (e->svc == NULL && e->n_slices == 0) {
			k8s_map_del(&m->entries, e->key);
			free(e->slices);
			free(e);
		}
	}
	if (i < m->n_dirty) {
		memmove(m->dirty, m->dirty + i, (m->n_dirty - i) * sizeof(*m->dirty));
		m->n_dirty -= i;
		return -ENOMEM;
	}
	m->n_dirty = 0;
	return count;
}

int
k8s_model_nodes_changed(const struct k8s_model *m)
{
	return m != NULL && m->nodes_changed;
}

struct node_list {
	const struct obj **v;
	uint32_t n;
	size_t strs;
	uint32_t addrs;
};

static void
node_cb(void *arg, const char *key, void *value)
{
	struct node_list *l = arg;
	const struct obj *o = value;

	(void)key;
	if (o->bad)
		return;
	l->v[l->n++] = o;
	l->strs += strlen(o->key) + strlen(o->u.node->zone) + 2;
	l->addrs += o->u.node->n_addrs;
}

static int
cmp_node(const void *a, const void *b)
{
	return strcmp((*(const struct obj *const *)a)->key, (*(const struct obj *const *)b)->key);
}

struct sg_k8s_nodes *
k8s_model_nodes(struct k8s_model *m)
{
	struct node_list l = { NULL, 0, 0, 0 };
	struct sg_k8s_nodes *r;
	struct sg_conf_addr *addrs;
	size_t size;
	char *cur;

	if (m == NULL) {
		errno = EINVAL;
		return NULL;
	}
	l.v = malloc((m->objs[SG_K8S_NODES].n + 1) * sizeof(*l.v));
	if (l.v == NULL)
		return NULL;
	k8s_map_each(&m->objs[SG_K8S_NODES], node_cb, &l);
	qsort(l.v, l.n, sizeof(*l.v), cmp_node);
	size = align8(sizeof(*r)) + align8(l.n * sizeof(struct sg_k8s_node)) +
	       align8(l.addrs * sizeof(struct sg_conf_addr)) + l.strs;
	r = calloc(1, size);
	if (r == NULL) {
		free(l.v);
		return NULL;
	}
	cur = (char *)r + align8(sizeof(*r));
	r->nodes = l.n != 0 ? (struct sg_k8s_node *)(void *)cur : NULL;
	r->n = l.n;
	cur += align8(l.n * sizeof(struct sg_k8s_node));
	addrs = (struct sg_conf_addr *)(void *)cur;
	cur += align8(l.addrs * sizeof(struct sg_conf_addr));
	for (uint32_t i = 0; i < l.n; i++) {
		const struct node_obj *n = l.v[i]->u.node;
		struct sg_k8s_node *rn = &r->nodes[i];

		rn->name = put_str(&cur, l.v[i]->key);
		rn->zone = put_str(&cur, n->zone);
		rn->ready = n->ready;
		rn->unschedulable = n->unschedulable;
		rn->exclude_lb = n->exclude_lb;
		rn->n_addresses = n->n_addrs;
		rn->addresses = n->n_addrs != 0 ? addrs : NULL;
		if (n->n_addrs != 0)
			memcpy(addrs, n->addrs, n->n_addrs * sizeof(*addrs));
		addrs += n->n_addrs;
	}
	free(l.v);
	m->nodes_changed = 0;
	return r;
}
