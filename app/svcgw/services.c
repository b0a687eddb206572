/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * From services to the tables: the one path by which both sources of
 * services -- the configuration file's static list and the Kubernetes
 * Services lib/k8s hands over -- reach lib/svc and lib/neigh.
 *
 * Each source describes a service the same way (struct desc), and one
 * compiler turns a description into entries: one lib/svc entry per service
 * port and address family (and, with source ranges, one more for the
 * NodePort). An entry's name ("namespace/name:port/PROTO[/v6][/nodeport]")
 * keeps its id stable, and a digest of its content means an unchanged
 * entry is never republished.
 *
 * A service is a unit: the entries it published, the VIPs it holds, and
 * for a Kubernetes one its latest snapshot. The file's units are applied
 * all at once (start, SIGHUP); a Kubernetes unit one at a time, as its
 * change arrives, touching that service's entries and nothing else:
 * indexes by name, id and key make every step independent of how many
 * services there are.
 *
 * The file wins every conflict. A Kubernetes service with the
 * namespace/name of a static one, or one that would serve an (address,
 * port, protocol) another service serves, is left out ("parked") and
 * logged once; between two Kubernetes services the first one served keeps
 * the key. So does a static service that finds the table full: Kubernetes
 * services are withdrawn to make room. Parked services are tried again
 * whenever something is withdrawn. A service that cannot be served as it
 * is (k8s_local_mode(), or beyond what an entry holds) is refused: an
 * error for the file, a log line and a skip for Kubernetes.
 *
 * Owned addresses are reference-counted by what needs them (node
 * addresses and SNAT addresses by the file, each VIP by every service
 * serving it), announced when they appear and dropped with their last
 * user. The SNAT address set the workers read is swapped under RCU.
 *
 * Control thread, under sg_app_lock; app_services_check() needs no EAL.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "k8s.h"
#include "maglev.h"
#include "neigh.h"
#include "svc.h"
#include "app.h"
#include "map.h"

/* Gratuitous ARP / unsolicited NA when an address appears: a few, as Linux's arp_notify. */
#define ANNOUNCE_COUNT 3
#define ANNOUNCE_INTERVAL_MS 1000
/* Why a Kubernetes service is skipped, as logged. */
#define WHY_MAX 320

enum unit_origin {
	ORIGIN_FILE = 0,
	ORIGIN_K8S,
};

enum unit_state {
	UNIT_SERVED = 0,
	UNIT_REFUSED,	/* cannot be served as it is: waits for its next change */
	UNIT_PARKED,	/* a conflict or a full table: tried again when something goes */
};

struct unit;

/* A published entry. Its name, id and keys are what the indexes point into. */
struct rec {
	struct unit *unit;
	char *name;
	struct sg_svc_key *keys;
	uint32_t n_keys;
	uint32_t id;
	uint64_t digest;
	uint32_t slot;		/* index in unit->recs */
};

/* One service of one source. */
struct unit {
	char key[SG_K8S_KEY_SIZE];	/* namespace/name */
	uint8_t origin;			/* enum unit_origin */
	uint8_t state;			/* enum unit_state */
	uint8_t parked;			/* on the parked list */
	struct rec **recs;
	uint32_t n_recs;
	uint32_t cap_recs;
	struct sg_conf_addr *vips;	/* held: one reference each */
	uint32_t n_vips;
	struct sg_k8s_service *k8s;	/* Kubernetes: the latest snapshot */
	char *why;			/* Kubernetes, not served: as logged */
	struct unit *park_next;
	struct unit *park_prev;
};

/* An owned address and how many users of each kind it has. */
enum owned_kind { OWN_NODE = 0, OWN_VIP, OWN_SNAT, OWN_KINDS };

static const uint8_t own_flag[OWN_KINDS] = {
	SG_NEIGH_ADDR_NODE, SG_NEIGH_ADDR_VIP, SG_NEIGH_ADDR_SNAT,
};

struct owned {
	struct sg_neigh_key key;
	uint32_t refs[OWN_KINDS];
};

/* An address the file makes us own: a node or SNAT address on one port. */
struct cfg_owned {
	struct sg_neigh_key key;
	uint8_t kind;
};

struct app_services {
	struct app_map names;		/* entry name -> rec */
	struct app_map ids;		/* id -> rec */
	struct app_map keys;		/* sg_svc_key -> rec */
	struct app_map file_units;	/* namespace/name -> unit */
	struct app_map k8s_units;
	struct app_map owned;		/* sg_neigh_key -> owned */
	struct cfg_owned *cfg_owned;	/* what the running file owns */
	uint32_t n_cfg_owned;
	uint8_t node_families;		/* SG_CONF_FAM_* of the node addresses */
	uint32_t next_id;
	struct unit *park_head;
	struct unit *park_tail;
	bool freed;			/* something went: parked units may fit now */
	struct sg_dp_snat *snat;
	struct app_k8s_counts counts;
	struct compiled_set *scratch;	/* one Kubernetes service's entries, reused */
};

/* ---- descriptions: what both sources say about a service ---------------- */

struct desc_port {
	const char *name;		/* "" for a single unnamed port */
	uint8_t proto;
	uint16_t port;
	uint16_t node_port;		/* 0: none */
	/* Endpoints: the file's are the service's, on target_port; the
	 * slices' are this port's own, each with its port number. */
	const struct sg_conf_endpoint *conf_eps;
	uint16_t target_port;
	const struct sg_k8s_endpoint *k8s_eps;
	uint32_t n_eps;
};

struct desc {
	const char *namespace;
	const char *name;
	uint8_t mode;			/* enum sg_conf_mode */
	uint8_t families;		/* SG_CONF_FAM_* to serve */
	uint8_t local;
	uint8_t affinity;
	uint32_t affinity_timeout;
	const struct sg_conf_addr *vips;
	uint32_t n_vips;
	const struct sg_conf_addr *source_ranges;
	uint32_t n_source_ranges;
	struct desc_port *ports;
	uint32_t n_ports;
};

static uint8_t
fam_bit(uint8_t family)
{
	return family == SG_CONF_V4 ? SG_CONF_FAM_V4 : SG_CONF_FAM_V6;
}

/* The file's service i; ports has room for SG_CONF_MAX_SVC_PORTS. */
static void
desc_of_conf(const struct sg_conf_service *s, struct desc *d, struct desc_port *ports)
{
	memset(d, 0, sizeof(*d));
	d->namespace = s->namespace;
	d->name = s->name;
	d->mode = s->mode;
	d->families = s->families;
	d->local = s->local;
	d->affinity = s->affinity;
	d->affinity_timeout = s->affinity_timeout;
	d->vips = s->vips;
	d->n_vips = s->n_vips;
	d->source_ranges = s->source_ranges;
	d->n_source_ranges = s->n_source_ranges;
	d->ports = ports;
	d->n_ports = s->n_ports;
	for (uint32_t p = 0; p < s->n_ports; p++) {
		const struct sg_conf_svc_port *sp = &s->ports[p];

		ports[p] = (struct desc_port){
			.name = sp->name, .proto = sp->proto, .port = (uint16_t)sp->port,
			.node_port = (uint16_t)sp->node_port, .conf_eps = s->endpoints,
			.target_port = (uint16_t)sp->target_port, .n_eps = s->n_endpoints,
		};
	}
}

/* A Kubernetes service; d->ports is malloc'ed (desc_fini()). 0 or -ENOMEM. */
static int
desc_of_k8s(const struct sg_k8s_service *s, struct desc *d)
{
	memset(d, 0, sizeof(*d));
	d->namespace = s->namespace;
	d->name = s->name;
	d->mode = s->mode;
	d->families = s->families;
	d->local = (s->flags & SG_K8S_SVC_LOCAL) != 0;
	d->affinity = (s->flags & SG_K8S_SVC_AFFINITY) != 0;
	d->affinity_timeout = s->affinity_timeout;
	d->vips = s->vips;
	d->n_vips = s->n_vips;
	d->source_ranges = s->source_ranges;
	d->n_source_ranges = s->n_source_ranges;
	d->n_ports = s->n_ports;
	d->ports = calloc(s->n_ports ? s->n_ports : 1, sizeof(*d->ports));
	if (d->ports == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < s->n_ports; p++) {
		const struct sg_k8s_port *kp = &s->ports[p];

		d->ports[p] = (struct desc_port){
			.name = kp->name, .proto = kp->proto, .port = kp->port,
			.node_port = kp->node_port, .k8s_eps = kp->endpoints,
			.n_eps = kp->n_endpoints,
		};
	}
	return 0;
}

/*
 * externalTrafficPolicy Local keeps the client address, which nat cannot:
 * a Kubernetes service that takes nat from default_mode is forwarded as
 * dnat instead (the file's services are settled so by lib/conf). One whose
 * annotation asks for nat cannot be served; false then, with why written.
 */
static bool
k8s_local_mode(const struct sg_k8s_service *s, struct desc *d, char *why, size_t whylen)
{
	if (!d->local || d->mode != SG_CONF_MODE_NAT)
		return true;
	if (s->flags & SG_K8S_SVC_MODE_DEFAULT) {
		d->mode = SG_CONF_MODE_DNAT;
		return true;
	}
	snprintf(why, whylen, "externalTrafficPolicy Local keeps the client address, which "
		 "mode nat (annotation svcgw.io/mode) cannot");
	return false;
}

/* ---- compiling ---------------------------------------------------------- */

/* One compiled entry: a sg_svc_conf and the arrays it points to. */
struct compiled {
	char name[SG_SVC_NAME_MAX];
	struct sg_svc_conf conf;
	struct sg_svc_key keys[SG_SVC_MAX_KEYS];
	struct sg_svc_prefix ranges[2 * SG_SVC_MAX_SRC_RANGES];
	struct sg_svc_backend *backends;
	uint64_t digest;
	uint32_t svc;		/* index of its service in the file, or 0 */
	struct unit *unit;
	bool done;		/* published, or unchanged */
};

/* The entries of one apply: a file, or one Kubernetes service. */
struct compiled_set {
	struct compiled *v;
	uint32_t n;
	uint32_t cap;
	uint32_t n_keys;
};

static const uint8_t digest_key[16] = "svcgw-svc-digest";

static uint8_t
backend_state(uint8_t ready, uint8_t serving, uint8_t terminating)
{
	return (ready ? SG_SVC_BE_READY : 0) | (serving ? SG_SVC_BE_SERVING : 0) |
	       (terminating ? SG_SVC_BE_TERMINATING : 0);
}

/*
 * The set may have moved (realloc): point an entry's conf at its own
 * arrays before it is read.
 */
static struct sg_svc_conf *
entry_conf(struct compiled *e)
{
	e->conf.name = e->name;
	e->conf.keys = e->keys;
	e->conf.src_ranges = e->conf.n_src_ranges != 0 ? e->ranges : NULL;
	e->conf.backends = e->backends;
	return &e->conf;
}

/*
 * The entry of port p of d for one family: with_vips and with_nodeport
 * choose its keys, so that a service with source ranges can keep its
 * NodePort in an entry of its own (kube-proxy filters only the load
 * balancer's traffic). Returns 1 with *out filled, 0 when the entry would
 * have no key, or a negative errno with why written (-EINVAL: beyond what
 * an entry can hold).
 */
static int
compile(const struct sg_conf *c, const struct desc *d, uint32_t p, uint8_t family,
	bool with_vips, bool with_nodeport, struct compiled *out, char *why, size_t whylen)
{
	const struct desc_port *dp = &d->ports[p];
	struct sg_svc_conf *sc = &out->conf;
	rte_be16_t port = rte_cpu_to_be_16(dp->port);
	uint32_t nb = 0, weighted = 0, n_src[2] = { 0, 0 };
	char pname[SG_CONF_K8S_NAME_SIZE + 8];

	memset(sc, 0, sizeof(*sc));
	out->backends = NULL;
	if (with_vips)
		for (uint32_t v = 0; v < d->n_vips; v++) {
			const struct sg_conf_addr *a = &d->vips[v];
			struct sg_svc_key *k;

			if (a->family != family)
				continue;
			if (sc->n_keys == SG_SVC_MAX_KEYS - 1) {
				snprintf(why, whylen, "more than %u LoadBalancer addresses of one "
					 "family", SG_SVC_MAX_KEYS - 1);
				return -EINVAL;
			}
			k = &out->keys[sc->n_keys++];
			if (family == SG_CONF_V4) {
				rte_be32_t a4;

				memcpy(&a4, a->addr, 4);
				sg_svc_key4(k, a4, port, dp->proto);
			} else {
				sg_svc_key6(k, a->addr, port, dp->proto);
			}
		}
	if (with_nodeport && dp->node_port != 0) {
		bool node = false;

		for (uint32_t i = 0; i < c->n_node_addrs; i++)
			node |= c->node_addrs[i].family == family;
		if (node) {
			struct sg_svc_key *k = &out->keys[sc->n_keys++];
			rte_be16_t np = rte_cpu_to_be_16(dp->node_port);

			if (family == SG_CONF_V4)
				sg_svc_key4(k, 0, np, dp->proto);
			else
				sg_svc_key6(k, NULL, np, dp->proto);
		}
	}
	if (sc->n_keys == 0)
		return 0;

	if (dp->name[0] != '\0')
		snprintf(pname, sizeof(pname), "%s", dp->name);
	else
		snprintf(pname, sizeof(pname), "%u", dp->port);
	snprintf(out->name, sizeof(out->name), "%s/%s:%s/%s%s%s", d->namespace, d->name, pname,
		 sg_conf_proto_name(dp->proto), family == SG_CONF_V6 ? "/v6" : "",
		 with_vips ? "" : "/nodeport");
	sc->mode = (enum sg_svc_mode)d->mode;
	if (d->affinity) {
		sc->flags |= SG_SVC_F_AFFINITY;
		sc->affinity_timeout = d->affinity_timeout;
	}
	if (d->local)
		sc->flags |= SG_SVC_F_LOCAL;
	if (with_vips) {
		for (uint32_t r = 0; r < d->n_source_ranges; r++) {
			const struct sg_conf_addr *a = &d->source_ranges[r];
			struct sg_svc_prefix *pr;

			if (++n_src[a->family == SG_CONF_V6] > SG_SVC_MAX_SRC_RANGES) {
				snprintf(why, whylen, "more than %u loadBalancerSourceRanges "
					 "of one family", SG_SVC_MAX_SRC_RANGES);
				return -EINVAL;
			}
			pr = &out->ranges[sc->n_src_ranges++];
			pr->family = a->family;
			pr->len = a->len;
			memcpy(pr->addr, a->addr, 16);
		}
	}

	if (dp->n_eps > SG_SVC_MAX_BACKENDS) {
		snprintf(why, whylen, "port %s: %u endpoints, at most %u", pname, dp->n_eps,
			 SG_SVC_MAX_BACKENDS);
		return -EINVAL;
	}
	out->backends = calloc(dp->n_eps ? dp->n_eps : 1, sizeof(*out->backends));
	if (out->backends == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t e = 0; e < dp->n_eps; e++) {
		struct sg_svc_backend *b = &out->backends[nb];

		if (dp->conf_eps != NULL) {
			const struct sg_conf_endpoint *ep = &dp->conf_eps[e];

			if (ep->address.family != family)
				continue;
			memcpy(b->addr, ep->address.addr, 16);
			b->port = rte_cpu_to_be_16(dp->target_port);
			b->state = backend_state(ep->ready, ep->serving, ep->terminating);
			b->weight = ep->weight;
		} else {
			const struct sg_k8s_endpoint *ep = &dp->k8s_eps[e];

			if (ep->address.family != family)
				continue;
			memcpy(b->addr, ep->address.addr, 16);
			b->port = rte_cpu_to_be_16(ep->port);
			b->state = backend_state(ep->ready, ep->serving, ep->terminating);
			b->weight = 1;
		}
		b->family = family;
		weighted += b->weight != 0;
		nb++;
	}
	sc->n_backends = nb;
	/* lib/svc's limit, said here with the service's name rather than as EINVAL. */
	if (weighted > c->tables.maglev_max_size) {
		snprintf(why, whylen, "port %s: %u endpoints, more than tables.maglev_max_size "
			 "(%u)", pname, weighted, c->tables.maglev_max_size);
		free(out->backends);
		out->backends = NULL;
		return -EINVAL;
	}
	return 1;
}

/* A digest of everything an entry is made of, to skip republishing it unchanged. */
static uint64_t
digest(struct compiled *e)
{
	const struct sg_svc_conf *sc = entry_conf(e);
	uint64_t h[5];

	h[0] = sg_siphash24(digest_key, sc->keys, sc->n_keys * sizeof(*sc->keys));
	h[1] = sg_siphash24(digest_key, sc->backends, sc->n_backends * sizeof(*sc->backends));
	h[2] = sg_siphash24(digest_key, sc->src_ranges != NULL ? (const void *)sc->src_ranges : "",
			    sc->n_src_ranges * sizeof(*sc->src_ranges));
	h[3] = (uint64_t)sc->mode << 56 | (uint64_t)sc->flags << 32 | sc->affinity_timeout;
	h[4] = sg_siphash24(digest_key, e->name, (uint32_t)strlen(e->name));
	return sg_siphash24(digest_key, h, sizeof(h));
}

/* Empty, keeping the room: 10,000 services changing need no allocator churn. */
static void
compiled_set_clear(struct compiled_set *cs)
{
	for (uint32_t i = 0; i < cs->n; i++)
		free(cs->v[i].backends);
	cs->n = 0;
	cs->n_keys = 0;
}

static void
compiled_set_free(struct compiled_set *cs)
{
	compiled_set_clear(cs);
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/*
 * Append every entry of d to cs, in order: its ports, each in the
 * families d serves, each split in two with source ranges. Returns 0, or a
 * negative errno with why written.
 */
static int
compile_desc(const struct sg_conf *c, const struct desc *d, uint32_t svc, struct unit *u,
	     struct compiled_set *cs, char *why, size_t whylen)
{
	static const uint8_t families[] = { SG_CONF_V4, SG_CONF_V6 };
	/* Source ranges filter the load balancer only: the NodePort gets its own entry. */
	int parts = d->n_source_ranges > 0 ? 2 : 1;

	for (uint32_t p = 0; p < d->n_ports; p++)
		for (size_t f = 0; f < RTE_DIM(families); f++) {
			if (!(d->families & fam_bit(families[f])))
				continue;
			for (int part = 0; part < parts; part++) {
				bool vips = parts == 1 || part == 0, np = parts == 1 || part == 1;
				struct compiled *e;
				int rc;

				if (cs->n == cs->cap) {
					struct compiled *v = sg_array_grow(cs->v, &cs->cap,
									   sizeof(*v), 8);

					if (v == NULL) {
						snprintf(why, whylen, "out of memory");
						return -ENOMEM;
					}
					cs->v = v;
				}
				e = &cs->v[cs->n];
				rc = compile(c, d, p, families[f], vips, np, e, why, whylen);
				if (rc < 0)
					return rc;
				if (rc == 0)
					continue;
				e->svc = svc;
				e->unit = u;
				e->done = false;
				e->digest = digest(e);
				cs->n_keys += e->conf.n_keys;
				cs->n++;
			}
		}
	return 0;
}

/*
 * Compile every entry of the file, and check what the tables will take:
 * the entry and key counts against tables.services and
 * tables.service_keys, the SNAT addresses against what the workers hold.
 */
static int
compile_all(const struct sg_conf *c, struct compiled_set *cs, char *err, size_t errlen)
{
	struct desc_port ports[SG_CONF_MAX_SVC_PORTS];
	uint32_t n_snat[2] = { 0, 0 };
	struct desc d;
	int rc = 0;

	err[0] = '\0';
	memset(cs, 0, sizeof(*cs));
	for (uint32_t i = 0; i < c->n_services && rc == 0; i++) {
		const struct sg_conf_service *s = &c->services[i];
		char why[WHY_MAX];

		desc_of_conf(s, &d, ports);
		rc = compile_desc(c, &d, i, NULL, cs, why, sizeof(why));
		if (rc != 0)
			snprintf(err, errlen, "%s:%u: services.[%u]: %s", c->path, s->line, i, why);
	}
	if (rc != 0) {
		compiled_set_free(cs);
		return rc;
	}
	for (uint32_t i = 0; i < c->n_snat_addrs; i++)
		n_snat[c->snat_addrs[i].family == SG_CONF_V6]++;
	if (n_snat[0] > SG_DP_MAX_SNAT || n_snat[1] > SG_DP_MAX_SNAT)
		snprintf(err, errlen, "%s: snat_addresses: at most %u of each family are used",
			 c->path, SG_DP_MAX_SNAT);
	else if (cs->n > c->tables.services)
		snprintf(err, errlen,
			 "%s: tables.services: %u service entries (one per port, family and, with "
			 "source ranges, NodePort) do not fit %u", c->path, cs->n, c->tables.services);
	else if (cs->n_keys > c->tables.service_keys)
		snprintf(err, errlen, "%s: tables.service_keys: %u keys do not fit %u", c->path,
			 cs->n_keys, c->tables.service_keys);
	if (err[0] != '\0') {
		compiled_set_free(cs);
		return -ENOSPC;
	}
	return 0;
}

int
app_services_check(const struct sg_conf *c, char *err, size_t errlen)
{
	struct compiled_set cs;
	int rc = compile_all(c, &cs, err, errlen);

	compiled_set_free(&cs);
	return rc;
}

/* ---- the registry ------------------------------------------------------- */

struct app_services *
app_services_create(void)
{
	struct app_services *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	app_map_init(&s->names);
	app_map_init(&s->ids);
	app_map_init(&s->keys);
	app_map_init(&s->file_units);
	app_map_init(&s->k8s_units);
	app_map_init(&s->owned);
	s->scratch = calloc(1, sizeof(*s->scratch));
	if (s->scratch == NULL) {
		free(s);
		return NULL;
	}
	s->next_id = 1;
	return s;
}

static int
free_unit_cb(void *val, void *arg)
{
	struct unit *u = val;

	(void)arg;
	for (uint32_t i = 0; i < u->n_recs; i++) {
		free(u->recs[i]->name);
		free(u->recs[i]->keys);
		free(u->recs[i]);
	}
	free(u->recs);
	free(u->vips);
	sg_k8s_service_free(u->k8s);
	free(u->why);
	free(u);
	return 0;
}

static int
free_cb(void *val, void *arg)
{
	(void)arg;
	free(val);
	return 0;
}

/* The tables go with the daemon: nothing is withdrawn from them here. */
void
app_services_free(struct app_services *s)
{
	if (s == NULL)
		return;
	app_map_each(&s->file_units, free_unit_cb, NULL);
	app_map_each(&s->k8s_units, free_unit_cb, NULL);
	app_map_each(&s->owned, free_cb, NULL);
	app_map_fini(&s->names);
	app_map_fini(&s->ids);
	app_map_fini(&s->keys);
	app_map_fini(&s->file_units);
	app_map_fini(&s->k8s_units);
	app_map_fini(&s->owned);
	free(s->cfg_owned);
	rte_free(s->snat);
	compiled_set_free(s->scratch);
	free(s->scratch);
	free(s);
}

const char *
app_services_name(const struct app_services *s, uint32_t id)
{
	const struct rec *r = app_map_get(&s->ids, &id, sizeof(id));

	return r != NULL ? r->name : NULL;
}

const char *
app_services_source(const struct app_services *s, uint32_t id)
{
	const struct rec *r = app_map_get(&s->ids, &id, sizeof(id));

	if (r == NULL)
		return "?";
	return r->unit->origin == ORIGIN_FILE ? "file" : "kubernetes";
}

static struct unit *
unit_new(struct app_map *m, const char *key, uint8_t origin)
{
	struct unit *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	snprintf(u->key, sizeof(u->key), "%s", key);
	u->origin = origin;
	if (app_map_puts(m, u->key, u) < 0) {
		free(u);
		return NULL;
	}
	return u;
}

/* Keep the counters of Kubernetes units right across every change of state. */
static void
unit_set_state(struct app_services *s, struct unit *u, uint8_t state)
{
	if (u->origin != ORIGIN_K8S || u->state == state)
		return;
	s->counts.served -= u->state == UNIT_SERVED;
	s->counts.refused -= u->state == UNIT_REFUSED;
	s->counts.parked -= u->state == UNIT_PARKED;
	u->state = state;
	s->counts.served += state == UNIT_SERVED;
	s->counts.refused += state == UNIT_REFUSED;
	s->counts.parked += state == UNIT_PARKED;
}

static void
park(struct app_services *s, struct unit *u)
{
	if (u->parked)
		return;
	u->parked = 1;
	u->park_next = NULL;
	u->park_prev = s->park_tail;
	if (s->park_tail != NULL)
		s->park_tail->park_next = u;
	else
		s->park_head = u;
	s->park_tail = u;
}

static void
unpark(struct app_services *s, struct unit *u)
{
	if (!u->parked)
		return;
	if (u->park_prev != NULL)
		u->park_prev->park_next = u->park_next;
	else
		s->park_head = u->park_next;
	if (u->park_next != NULL)
		u->park_next->park_prev = u->park_prev;
	else
		s->park_tail = u->park_prev;
	u->parked = 0;
	u->park_next = u->park_prev = NULL;
}

/*
 * Point the key index at r's keys, dropping those it held before; a key
 * let go may be what a parked service waits for.
 */
static int
rec_set_keys(struct app_services *s, struct rec *r, const struct sg_svc_conf *sc)
{
	struct sg_svc_key *keys = malloc(sc->n_keys * sizeof(*keys));
	int rc = 0;

	for (uint32_t i = 0; i < r->n_keys; i++) {
		bool kept = false;

		if (app_map_get(&s->keys, &r->keys[i], sizeof(r->keys[i])) != r)
			continue;
		app_map_del(&s->keys, &r->keys[i], sizeof(r->keys[i]));
		for (uint32_t j = 0; j < sc->n_keys && !kept; j++)
			kept = memcmp(&sc->keys[j], &r->keys[i], sizeof(r->keys[i])) == 0;
		s->freed |= !kept;
	}
	free(r->keys);
	r->keys = keys;
	r->n_keys = keys != NULL ? sc->n_keys : 0;
	if (keys == NULL)
		return -ENOMEM;
	memcpy(keys, sc->keys, sc->n_keys * sizeof(*keys));
	for (uint32_t i = 0; i < r->n_keys && rc == 0; i++)
		rc = app_map_put(&s->keys, &r->keys[i], sizeof(r->keys[i]), r);
	return rc;
}

static struct rec *
rec_new(struct app_services *s, struct unit *u, const char *name, uint32_t id)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->name = strdup(name);
	if (r->name == NULL)
		goto free_rec;
	if (u->n_recs == u->cap_recs) {
		struct rec **v = sg_array_grow(u->recs, &u->cap_recs, sizeof(*v), 4);

		if (v == NULL)
			goto free_rec;
		u->recs = v;
	}
	r->unit = u;
	r->id = id;
	if (app_map_puts(&s->names, r->name, r) < 0)
		goto free_rec;
	if (app_map_put(&s->ids, &r->id, sizeof(r->id), r) < 0) {
		app_map_dels(&s->names, r->name);
		goto free_rec;
	}
	r->slot = u->n_recs;
	u->recs[u->n_recs++] = r;
	if (u->origin == ORIGIN_K8S)
		s->counts.entries++;
	return r;
free_rec:
	free(r->name);
	free(r);
	return NULL;
}

/* Take entry r out of the tables and of every index. */
static void
rec_remove(struct sg_app *a, struct rec *r)
{
	struct app_services *s = a->services;
	struct unit *u = r->unit;

	sg_svc_remove(a->svc, r->id);
	for (uint32_t i = 0; i < r->n_keys; i++)
		if (app_map_get(&s->keys, &r->keys[i], sizeof(r->keys[i])) == r)
			app_map_del(&s->keys, &r->keys[i], sizeof(r->keys[i]));
	app_map_dels(&s->names, r->name);
	app_map_del(&s->ids, &r->id, sizeof(r->id));
	u->recs[r->slot] = u->recs[--u->n_recs];
	u->recs[r->slot]->slot = r->slot;
	if (u->origin == ORIGIN_K8S)
		s->counts.entries--;
	s->freed = true;
	free(r->name);
	free(r->keys);
	free(r);
}

/* ---- owned addresses ---------------------------------------------------- */

static void
neigh_key_of(struct sg_neigh_key *k, uint16_t port, const struct sg_conf_addr *a)
{
	if (a->family == SG_CONF_V4)
		sg_neigh_key4(k, port, a->addr);
	else
		sg_neigh_key6(k, port, a->addr);
}

static uint8_t
owned_flags(const struct owned *o)
{
	uint8_t f = 0;

	for (unsigned int i = 0; i < OWN_KINDS; i++)
		if (o->refs[i] != 0)
			f |= own_flag[i];
	return f;
}

/*
 * One more (delta 1) or one fewer (-1) user of kind for address k. lib/neigh
 * learns of a kind's first user and last; a new address is announced.
 * Returns 0, or a negative errno from lib/neigh (a new reference is then
 * not taken).
 */
static int
owned_ref(struct sg_app *a, const struct sg_neigh_key *k, unsigned int kind, int delta)
{
	struct app_services *s = a->services;
	struct owned *o = app_map_get(&s->owned, k, sizeof(*k));
	uint8_t before, after;
	int rc = 0;

	if (o == NULL) {
		if (delta < 0)
			return 0;
		o = calloc(1, sizeof(*o));
		if (o == NULL)
			return -ENOMEM;
		o->key = *k;
		if (app_map_put(&s->owned, &o->key, sizeof(o->key), o) < 0) {
			free(o);
			return -ENOMEM;
		}
	}
	before = owned_flags(o);
	if (delta > 0)
		o->refs[kind]++;
	else if (o->refs[kind] > 0)
		o->refs[kind]--;
	after = owned_flags(o);
	if (after & ~before) {
		uint8_t add = after & ~before;

		/* A VIP another gateway owns comes quiet, in the same store. */
		if (add & SG_NEIGH_ADDR_VIP)
			add |= app_announce_vip_flags(a, k) & SG_NEIGH_ADDR_QUIET;
		rc = sg_neigh_addr_add(a->neigh, k, add);
		if (rc != 0) {
			o->refs[kind]--;
		} else if (before == 0 && (after & SG_NEIGH_ADDR_NODE)) {
			if (sg_neigh_announce(a->neigh, k, ANNOUNCE_COUNT, ANNOUNCE_INTERVAL_MS,
					      app_now_ms(a)) != 0)
				SG_LOG(svcgw, WARNING,
				       "an address not announced: announcement queue full");
		} else if (before == 0 && (after & SG_NEIGH_ADDR_VIP)) {
			app_announce_vip_new(a, k);
		}
	}
	if (before & ~after)
		sg_neigh_addr_remove(a->neigh, k,
				     (before & ~after) | ((before & ~after & SG_NEIGH_ADDR_VIP) ?
							  SG_NEIGH_ADDR_QUIET : 0));
	if (owned_flags(o) == 0) {
		app_map_del(&s->owned, &o->key, sizeof(o->key));
		free(o);
	}
	return rc;
}

/* A VIP on every external port: one reference each. */
static int
vip_ref(struct sg_app *a, const struct sg_conf_addr *vip, int delta)
{
	int rc = 0;

	for (uint32_t p = 0; p < a->ctx.n_ports; p++) {
		const struct sg_dp_port *dp = &a->ctx.ports[p];
		struct sg_neigh_key k;

		if (!(dp->roles & SG_DP_ROLE_EXTERNAL))
			continue;
		neigh_key_of(&k, dp->port_id, vip);
		rc = owned_ref(a, &k, OWN_VIP, delta);
		if (rc != 0) {
			/* Undo the ports done: a VIP is owned on all of them or none. */
			for (uint32_t q = 0; q < p; q++)
				if (a->ctx.ports[q].roles & SG_DP_ROLE_EXTERNAL) {
					neigh_key_of(&k, a->ctx.ports[q].port_id, vip);
					owned_ref(a, &k, OWN_VIP, -1);
				}
			return rc;
		}
	}
	return 0;
}

/*
 * Make u hold exactly vips (those of the families it serves): new ones
 * referenced before old ones are let go, so a VIP that stays never flaps.
 * A VIP lib/neigh cannot take is logged and left out. 0 or -ENOMEM.
 */
static int
unit_set_vips(struct sg_app *a, struct unit *u, const struct sg_conf_addr *vips, uint32_t n,
	      uint8_t families)
{
	struct sg_conf_addr *held = calloc(n ? n : 1, sizeof(*held));
	uint32_t nh = 0;

	if (held == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		char buf[SG_CONF_ADDR_STRLEN];
		bool dup = false;
		int rc;

		if (!(families & fam_bit(vips[i].family)))
			continue;
		for (uint32_t j = 0; j < nh; j++)
			dup |= memcmp(&held[j], &vips[i], sizeof(vips[i])) == 0;
		if (dup)
			continue;
		rc = vip_ref(a, &vips[i], 1);
		if (rc != 0) {
			SG_LOG(svcgw, ERR, "service %s: address %s not owned: %s", u->key,
			       sg_conf_addr_str(&vips[i], buf, sizeof(buf)), strerror(-rc));
			continue;
		}
		held[nh++] = vips[i];
	}
	for (uint32_t i = 0; i < u->n_vips; i++)
		vip_ref(a, &u->vips[i], -1);
	free(u->vips);
	u->vips = held;
	u->n_vips = nh;
	return 0;
}

/* Everything u had in the tables goes: its entries and its VIPs. */
static void
unit_withdraw(struct sg_app *a, struct unit *u)
{
	while (u->n_recs > 0)
		rec_remove(a, u->recs[u->n_recs - 1]);
	for (uint32_t i = 0; i < u->n_vips; i++)
		vip_ref(a, &u->vips[i], -1);
	free(u->vips);
	u->vips = NULL;
	u->n_vips = 0;
}

/* ---- publishing --------------------------------------------------------- */

static int withdraw_k8s_for_room(struct sg_app *a);

/*
 * One pass over the entries not done yet. A key another entry still holds
 * (-EEXIST: a VIP or NodePort moving between entries) waits for a later
 * pass, once that entry has been republished without it. A full table
 * makes room for the file's entries by withdrawing a Kubernetes service;
 * for a Kubernetes entry it is an error (-ENOSPC). Returns how many were
 * published, or a negative errno with err written.
 */
static int
publish_pass(struct sg_app *a, struct compiled_set *cs, uint32_t *changed, char *err,
	     size_t errlen)
{
	struct app_services *s = a->services;
	int published = 0;

	for (uint32_t i = 0; i < cs->n; i++) {
		struct compiled *e = &cs->v[i];
		struct rec *r;
		int rc;

		if (e->done)
			continue;
		r = app_map_gets(&s->names, e->name);
		if (r != NULL && r->unit != e->unit) {
			/* The name belongs to another unit: conflicts are settled before. */
			snprintf(err, errlen, "service entry %s is another service's", e->name);
			return -EEXIST;
		}
		if (r != NULL && r->digest == e->digest) {
			e->done = true;
			continue;
		}
		entry_conf(e)->id = r != NULL ? r->id : s->next_id;
		do {
			rc = sg_svc_publish(a->svc, &e->conf);
		} while (rc == -ENOSPC && e->unit->origin == ORIGIN_FILE &&
			 withdraw_k8s_for_room(a) == 0);
		if (rc == -EEXIST)
			continue;
		if (rc != 0) {
			snprintf(err, errlen, "service %s: %s", e->name, strerror(-rc));
			return rc;
		}
		if (r == NULL) {
			r = rec_new(s, e->unit, e->name, s->next_id);
			if (r == NULL) {
				sg_svc_remove(a->svc, s->next_id);
				snprintf(err, errlen, "service %s: out of memory", e->name);
				return -ENOMEM;
			}
			s->next_id++;
		}
		if (rec_set_keys(s, r, &e->conf) != 0) {
			rec_remove(a, r);
			snprintf(err, errlen, "service %s: out of memory", e->name);
			return -ENOMEM;
		}
		r->digest = e->digest;
		e->done = true;
		(*changed)++;
		published++;
	}
	return published;
}

/*
 * Publish what changed. Keys moving between entries need their old holder
 * republished first, so passes repeat while they make progress; entries
 * that wait on each other (two services swapping a VIP) are removed and
 * published afresh, a moment without them rather than a refused change.
 */
static int
publish_all(struct sg_app *a, struct compiled_set *cs, uint32_t *changed, char *err,
	    size_t errlen)
{
	bool removed = false;

	for (;;) {
		int rc = publish_pass(a, cs, changed, err, errlen);
		uint32_t left = 0;

		if (rc < 0)
			return rc;
		for (uint32_t i = 0; i < cs->n; i++)
			left += !cs->v[i].done;
		if (left == 0)
			return 0;
		if (rc > 0)
			continue;
		if (removed) {
			snprintf(err, errlen, "%u service entries claim keys held elsewhere", left);
			return -EEXIST;
		}
		for (uint32_t i = 0; i < cs->n; i++) {
			struct rec *r = cs->v[i].done ? NULL :
					app_map_gets(&a->services->names, cs->v[i].name);

			if (r != NULL) {
				rec_remove(a, r);
				(*changed)++;
			}
		}
		removed = true;
	}
}

/* Whether entry name is in cs; cs is short for one unit, indexed for a file. */
static bool
in_set(const struct compiled_set *cs, const struct app_map *index, const char *name)
{
	if (index != NULL)
		return app_map_gets(index, name) != NULL;
	for (uint32_t i = 0; i < cs->n; i++)
		if (strcmp(cs->v[i].name, name) == 0)
			return true;
	return false;
}

/* Remove u's entries that cs no longer has: their keys become free. */
static uint32_t
remove_gone(struct sg_app *a, struct unit *u, const struct compiled_set *cs,
	    const struct app_map *index)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < u->n_recs;) {
		if (in_set(cs, index, u->recs[i]->name)) {
			i++;
		} else {
			rec_remove(a, u->recs[i]);
			n++;
		}
	}
	return n;
}

/* ---- Kubernetes services ------------------------------------------------ */

static const char *
key_str(const struct sg_svc_key *k, char *buf, size_t size)
{
	char ip[SG_CONF_ADDR_STRLEN];

	if (sg_svc_key_is_any(k))
		snprintf(buf, size, "node port %u/%s", rte_be_to_cpu_16(k->port),
			 sg_conf_proto_name(k->proto));
	else
		snprintf(buf, size, k->family == SG_CONF_V6 ? "[%s]:%u/%s" : "%s:%u/%s",
			 sg_conf_ip_str(k->family, k->addr, ip, sizeof(ip)),
			 rte_be_to_cpu_16(k->port), sg_conf_proto_name(k->proto));
	return buf;
}

/*
 * A Kubernetes service that is not served: its entries and VIPs go, and
 * why is logged if it was not the last thing logged for it.
 */
static void
k8s_skip(struct sg_app *a, struct unit *u, uint8_t state, const char *why)
{
	struct app_services *s = a->services;

	unit_withdraw(a, u);
	unit_set_state(s, u, state);
	if (state == UNIT_PARKED)
		park(s, u);
	else
		unpark(s, u);
	if (u->why != NULL && strcmp(u->why, why) == 0)
		return;
	free(u->why);
	u->why = strdup(why);
	rte_log(state == UNIT_PARKED ? RTE_LOG_WARNING : RTE_LOG_ERR, sg_logtype_k8s,
		"k8s: service %s: %s; skipped%s\n", u->key, why,
		state == UNIT_PARKED ? " while that lasts" : "");
}

/*
 * Who else serves one of the keys of cs (or cs twice): why is written and
 * the holder returned (NULL: cs itself), or no conflict and false.
 */
static bool
k8s_conflict(const struct app_services *s, const struct unit *u, const struct compiled_set *cs,
	     const struct unit **holder, char *why, size_t whylen)
{
	char k[80];

	for (uint32_t i = 0; i < cs->n; i++)
		for (uint32_t j = 0; j < cs->v[i].conf.n_keys; j++) {
			const struct sg_svc_key *key = &cs->v[i].keys[j];
			const struct rec *r = app_map_get(&s->keys, key, sizeof(*key));

			if (r != NULL && r->unit != u) {
				*holder = r->unit;
				if (r->unit->origin == ORIGIN_FILE)
					snprintf(why, whylen, "%s is the file's, for its "
						 "service %s (the file wins)",
						 key_str(key, k, sizeof(k)), r->unit->key);
				else
					snprintf(why, whylen, "%s is served for service %s already",
						 key_str(key, k, sizeof(k)), r->unit->key);
				return true;
			}
			for (uint32_t i2 = 0; i2 <= i; i2++)
				for (uint32_t j2 = 0; j2 < cs->v[i2].conf.n_keys; j2++) {
					if (i2 == i && j2 >= j)
						break;
					if (memcmp(&cs->v[i2].keys[j2], key, sizeof(*key)) == 0) {
						*holder = NULL;
						snprintf(why, whylen, "%s is served by two of its "
							 "ports", key_str(key, k, sizeof(k)));
						return true;
					}
				}
		}
	return false;
}

/*
 * Bring u's entries in line with its snapshot (or take it out). Only u's
 * own entries are touched: unchanged ones are not even republished.
 */
static void
k8s_evaluate(struct sg_app *a, const struct sg_conf *c, struct unit *u)
{
	struct app_services *s = a->services;
	const struct sg_k8s_service *ks = u->k8s;
	struct compiled_set *cs = s->scratch;
	const struct unit *holder = NULL;
	uint32_t changed = 0;
	char why[WHY_MAX];
	struct desc d;
	int rc;

	if (app_map_gets(&s->file_units, u->key) != NULL) {
		snprintf(why, sizeof(why), "%s has a service of that name (the file wins)",
			 c->path);
		k8s_skip(a, u, UNIT_PARKED, why);
		return;
	}
	if (desc_of_k8s(ks, &d) < 0) {
		k8s_skip(a, u, UNIT_PARKED, "out of memory");
		return;
	}
	/* Ours to allocate: what lib/ipam holds, before the status says so. */
	app_ipam_vips(a, u->key, &d.vips, &d.n_vips);
	if (!k8s_local_mode(ks, &d, why, sizeof(why))) {
		k8s_skip(a, u, UNIT_REFUSED, why);
		goto out;
	}
	rc = compile_desc(c, &d, 0, u, cs, why, sizeof(why));
	if (rc < 0) {
		k8s_skip(a, u, rc == -ENOMEM ? UNIT_PARKED : UNIT_REFUSED, why);
		goto out;
	}
	if (k8s_conflict(s, u, cs, &holder, why, sizeof(why))) {
		k8s_skip(a, u, holder != NULL ? UNIT_PARKED : UNIT_REFUSED, why);
		goto out;
	}
	changed += remove_gone(a, u, cs, NULL);
	rc = publish_all(a, cs, &changed, why, sizeof(why));
	if (rc == -ENOSPC) {
		snprintf(why, sizeof(why), "no room in the service table (tables.services %u, "
			 "tables.service_keys %u)", c->tables.services, c->tables.service_keys);
		k8s_skip(a, u, UNIT_PARKED, why);
		goto out;
	}
	if (rc < 0) {
		k8s_skip(a, u, rc == -ENOMEM ? UNIT_PARKED : UNIT_REFUSED, why);
		goto out;
	}
	if (unit_set_vips(a, u, d.vips, d.n_vips, d.families) < 0) {
		k8s_skip(a, u, UNIT_PARKED, "out of memory");
		goto out;
	}
	unit_set_state(s, u, UNIT_SERVED);
	unpark(s, u);
	if (u->why != NULL) {
		SG_LOG(k8s, NOTICE, "service %s: served now", u->key);
		free(u->why);
		u->why = NULL;
	}
	if (changed > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s->counts.publications++;
		s->counts.last_publish_us = (uint64_t)ts.tv_sec * 1000000u +
					    (uint64_t)ts.tv_nsec / 1000u;
		snprintf(s->counts.last_publish, sizeof(s->counts.last_publish), "%s", u->key);
	}
out:
	compiled_set_clear(cs);
	free(d.ports);
}

void
app_services_k8s_change(struct sg_app *a, const char *key, struct sg_k8s_service *svc)
{
	struct app_services *s = a->services;
	struct unit *u = app_map_gets(&s->k8s_units, key);

	s->counts.changes++;
	if (svc == NULL) {
		if (u == NULL)
			return;
		unit_withdraw(a, u);
		unpark(s, u);
		/* Out of the counts: by way of served, which the deletion then takes away. */
		unit_set_state(s, u, UNIT_SERVED);
		s->counts.served--;
		app_map_dels(&s->k8s_units, u->key);
		if (u->why == NULL) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			s->counts.publications++;
			s->counts.last_publish_us = (uint64_t)ts.tv_sec * 1000000u +
						    (uint64_t)ts.tv_nsec / 1000u;
			snprintf(s->counts.last_publish, sizeof(s->counts.last_publish), "%s",
				 key);
		}
		free_unit_cb(u, NULL);
		return;
	}
	if (u == NULL) {
		u = unit_new(&s->k8s_units, key, ORIGIN_K8S);
		if (u == NULL) {
			SG_LOG(k8s, ERR, "service %s: out of memory; skipped until it changes",
			       key);
			sg_k8s_service_free(svc);
			return;
		}
		u->state = UNIT_SERVED;
		s->counts.served++;
	}
	sg_k8s_service_free(u->k8s);
	u->k8s = svc;
	k8s_evaluate(a, a->conf, u);
}

void
app_services_k8s_refresh(struct sg_app *a, const char *key)
{
	struct unit *u = app_map_gets(&a->services->k8s_units, key);

	if (u != NULL && u->k8s != NULL)
		k8s_evaluate(a, a->conf, u);
}

static int
reobserve_cb(void *val, void *arg)
{
	struct unit *u = val;
	struct sg_app *a = arg;

	if (u->k8s != NULL) {
		app_ipam_observe(a, u->key, u->k8s);
		k8s_evaluate(a, a->conf, u);
	}
	return 0;
}

void
app_services_k8s_reobserve(struct sg_app *a)
{
	app_map_each(&a->services->k8s_units, reobserve_cb, a);
}

/* Parked services, oldest first, once something went that may let them in. */
static void
retry_parked(struct sg_app *a, const struct sg_conf *c)
{
	struct app_services *s = a->services;
	struct unit *u = s->park_head;

	if (!s->freed || u == NULL)
		return;
	s->freed = false;
	/* Taken off the list whole: those that stay parked join a new one, in order. */
	s->park_head = s->park_tail = NULL;
	while (u != NULL) {
		struct unit *next = u->park_next;

		u->parked = 0;
		u->park_next = u->park_prev = NULL;
		k8s_evaluate(a, c, u);
		u = next;
	}
}

void
app_services_k8s_retry(struct sg_app *a)
{
	retry_parked(a, a->conf);
}

/* Any Kubernetes service with entries: which one matters less than making room. */
static int
pick_served(void *val, void *arg)
{
	struct unit *u = val;

	if (u->state == UNIT_SERVED && u->n_recs > 0) {
		*(struct unit **)arg = u;
		return 1;
	}
	return 0;
}

/*
 * The file's entries come first: withdraw one Kubernetes service that has
 * entries, parked until there is room again. 0, or -ENOSPC if none is left.
 */
static int
withdraw_k8s_for_room(struct sg_app *a)
{
	struct app_services *s = a->services;
	struct unit *u = NULL;

	app_map_each(&s->k8s_units, pick_served, &u);
	if (u == NULL)
		return -ENOSPC;
	k8s_skip(a, u, UNIT_PARKED, "no room in the service table once the file's services "
		 "are in (the file wins)");
	return 0;
}

/* Visit every Kubernetes unit (for a change of node addresses): collect, then evaluate. */
static int
collect_unit(void *val, void *arg)
{
	struct unit ***p = arg;

	*(*p)++ = val;
	return 0;
}

static void
reevaluate_k8s(struct sg_app *a, const struct sg_conf *c)
{
	struct app_services *s = a->services;
	struct unit **v = malloc((s->k8s_units.n + 1) * sizeof(*v)), **end = v;
	uint32_t n;

	if (v == NULL) {
		SG_LOG(k8s, ERR, "out of memory: Kubernetes services keep their old node ports");
		return;
	}
	app_map_each(&s->k8s_units, collect_unit, &end);
	n = (uint32_t)(end - v);
	for (uint32_t i = 0; i < n; i++) {
		unpark(s, v[i]);
		k8s_evaluate(a, c, v[i]);
	}
	free(v);
}

void
app_services_k8s_counts(const struct app_services *s, struct app_k8s_counts *out)
{
	*out = s->counts;
	out->services = s->k8s_units.n;
}

struct skipped_walk {
	app_services_skipped_fn fn;
	void *arg;
};

static int
skipped_cb(void *val, void *arg)
{
	const struct unit *u = val;
	struct skipped_walk *w = arg;

	if (u->state == UNIT_SERVED)
		return 0;
	return w->fn(u->key, u->state == UNIT_PARKED ? "parked" : "refused",
		     u->why != NULL ? u->why : "", w->arg);
}

int
app_services_k8s_skipped(const struct app_services *s, app_services_skipped_fn fn, void *arg)
{
	struct skipped_walk w = { fn, arg };

	return app_map_each(&s->k8s_units, skipped_cb, &w);
}

/* ---- the file ----------------------------------------------------------- */

/*
 * Kubernetes services the file's new list conflicts with step aside: a
 * namespace/name the file has, a key one of its entries serves.
 */
static void
evict_for_file(struct sg_app *a, const struct sg_conf *c, const struct compiled_set *cs)
{
	struct app_services *s = a->services;
	char why[WHY_MAX], k[80];

	for (uint32_t i = 0; i < c->n_services; i++) {
		char key[SG_K8S_KEY_SIZE];
		struct unit *u;

		snprintf(key, sizeof(key), "%s/%s", c->services[i].namespace, c->services[i].name);
		u = app_map_gets(&s->k8s_units, key);
		if (u != NULL && u->state != UNIT_PARKED) {
			snprintf(why, sizeof(why), "%s has a service of that name (the file wins)",
				 c->path);
			k8s_skip(a, u, UNIT_PARKED, why);
		}
	}
	for (uint32_t i = 0; i < cs->n; i++)
		for (uint32_t j = 0; j < cs->v[i].conf.n_keys; j++) {
			const struct sg_svc_key *key = &cs->v[i].keys[j];
			struct rec *r = app_map_get(&s->keys, key, sizeof(*key));

			if (r == NULL || r->unit->origin != ORIGIN_K8S)
				continue;
			snprintf(why, sizeof(why), "%s is the file's, for its service %.*s "
				 "(the file wins)", key_str(key, k, sizeof(k)),
				 (int)strcspn(cs->v[i].name, ":"), cs->v[i].name);
			k8s_skip(a, r->unit, UNIT_PARKED, why);
		}
}

/* What the file says we own: node addresses outside, SNAT addresses inside. */
static int
cfg_owned_wanted(const struct sg_app *a, const struct sg_conf *c, struct cfg_owned **out,
		 uint32_t *n_out)
{
	uint32_t cap = (c->n_node_addrs + c->n_snat_addrs) * a->ctx.n_ports + 1, n = 0;
	struct cfg_owned *v = calloc(cap, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < a->ctx.n_ports; p++) {
		const struct sg_dp_port *dp = &a->ctx.ports[p];

		if (dp->roles & SG_DP_ROLE_EXTERNAL)
			for (uint32_t i = 0; i < c->n_node_addrs; i++) {
				neigh_key_of(&v[n].key, dp->port_id, &c->node_addrs[i]);
				v[n++].kind = OWN_NODE;
			}
		if (dp->roles & SG_DP_ROLE_INTERNAL)
			for (uint32_t i = 0; i < c->n_snat_addrs; i++) {
				neigh_key_of(&v[n].key, dp->port_id, &c->snat_addrs[i]);
				v[n++].kind = OWN_SNAT;
			}
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* The file's node and SNAT addresses: the new ones taken, then the old let go. */
static int
cfg_owned_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen)
{
	struct app_services *s = a->services;
	struct cfg_owned *want;
	uint32_t n;
	int rc = cfg_owned_wanted(a, c, &want, &n);

	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		rc = owned_ref(a, &want[i].key, want[i].kind, 1);
		if (rc != 0) {
			snprintf(err, errlen, "%s: owned addresses: %s", c->path, strerror(-rc));
			while (i-- > 0)
				owned_ref(a, &want[i].key, want[i].kind, -1);
			free(want);
			return rc;
		}
	}
	for (uint32_t i = 0; i < s->n_cfg_owned; i++)
		owned_ref(a, &s->cfg_owned[i].key, s->cfg_owned[i].kind, -1);
	free(s->cfg_owned);
	s->cfg_owned = want;
	s->n_cfg_owned = n;
	return 0;
}

/* Publish the SNAT addresses if they changed; the old set goes after a grace period. */
static int
snat_apply(struct sg_app *a, const struct sg_conf *c)
{
	struct app_services *s = a->services;
	struct sg_dp_snat *n = rte_zmalloc("sg_snat", sizeof(*n), 0), *old = s->snat;

	if (n == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n_snat_addrs; i++) {
		const struct sg_conf_addr *sa = &c->snat_addrs[i];

		if (sa->family == SG_CONF_V4 && n->n4 < SG_DP_MAX_SNAT)
			memcpy(&n->addr4[n->n4++], sa->addr, 4);
		else if (sa->family == SG_CONF_V6 && n->n6 < SG_DP_MAX_SNAT)
			memcpy(n->addr6[n->n6++], sa->addr, 16);
	}
	if (old != NULL && memcmp(old, n, sizeof(*n)) == 0) {
		rte_free(n);
		return 0;
	}
	atomic_store_explicit(&a->ctx.snat, n, memory_order_release);
	s->snat = n;
	if (old != NULL) {
		rte_rcu_qsbr_synchronize(a->ctx.qsbr, RTE_QSBR_THRID_INVALID);
		rte_free(old);
	}
	return 0;
}

static uint8_t
node_families(const struct sg_conf *c)
{
	uint8_t f = 0;

	for (uint32_t i = 0; i < c->n_node_addrs; i++)
		f |= fam_bit(c->node_addrs[i].family);
	return f;
}

/* The file's units for c: those it keeps, new ones made; each entry told its unit. */
static int
file_units_for(struct app_services *s, const struct sg_conf *c, struct compiled_set *cs,
	       struct unit **units)
{
	for (uint32_t i = 0; i < c->n_services; i++) {
		char key[SG_K8S_KEY_SIZE];

		snprintf(key, sizeof(key), "%s/%s", c->services[i].namespace, c->services[i].name);
		units[i] = app_map_gets(&s->file_units, key);
		if (units[i] == NULL && (units[i] = unit_new(&s->file_units, key,
							     ORIGIN_FILE)) == NULL)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < cs->n; i++)
		cs->v[i].unit = units[cs->v[i].svc];
	return 0;
}

struct file_gone {
	struct app_map *keep;		/* namespace/name -> unit the file keeps */
	struct unit **v;
	uint32_t n;
};

static int
collect_gone(void *val, void *arg)
{
	struct unit *u = val;
	struct file_gone *g = arg;

	if (app_map_gets(g->keep, u->key) != u)
		g->v[g->n++] = u;
	return 0;
}

int
app_services_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen)
{
	struct app_services *s = a->services;
	struct app_map names, keep;
	struct compiled_set cs;
	struct file_gone gone = { 0 };
	struct unit **units = NULL;
	uint32_t changed = 0;
	uint8_t families = node_families(c);
	bool nodes_moved = families != s->node_families;
	int rc;

	rc = compile_all(c, &cs, err, errlen);
	if (rc != 0)
		return rc;
	app_map_init(&names);
	app_map_init(&keep);
	units = calloc(c->n_services + 1, sizeof(*units));
	gone.v = calloc(s->file_units.n + 1, sizeof(*gone.v));
	rc = units == NULL || gone.v == NULL ? -ENOMEM : 0;
	if (rc == 0)
		rc = file_units_for(s, c, &cs, units);
	for (uint32_t i = 0; i < cs.n && rc == 0; i++)
		rc = app_map_puts(&names, cs.v[i].name, &cs.v[i]);
	for (uint32_t i = 0; i < c->n_services && rc == 0; i++)
		rc = app_map_puts(&keep, units[i]->key, units[i]);
	if (rc != 0) {
		snprintf(err, errlen, "%s: out of memory", c->path);
		goto out;
	}
	gone.keep = &keep;
	app_map_each(&s->file_units, collect_gone, &gone);

	/* The file wins: Kubernetes services in its way step aside first. */
	evict_for_file(a, c, &cs);
	for (uint32_t i = 0; i < gone.n; i++)
		changed += remove_gone(a, gone.v[i], &cs, &names);
	for (uint32_t i = 0; i < c->n_services; i++)
		changed += remove_gone(a, units[i], &cs, &names);
	rc = snat_apply(a, c);
	if (rc == 0)
		rc = cfg_owned_apply(a, c, err, errlen);
	for (uint32_t i = 0; i < c->n_services && rc == 0; i++)
		rc = unit_set_vips(a, units[i], c->services[i].vips, c->services[i].n_vips,
				   c->services[i].families);
	if (rc == 0)
		rc = publish_all(a, &cs, &changed, err, errlen);
	for (uint32_t i = 0; i < gone.n; i++) {
		unit_withdraw(a, gone.v[i]);
		app_map_dels(&s->file_units, gone.v[i]->key);
		free_unit_cb(gone.v[i], NULL);
	}
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen, "%s: %s", c->path, strerror(-rc));
	else if (rc == 0)
		SG_LOG(svcgw, INFO, "services: %u entries from the file, %u (re)published or "
		       "removed", cs.n, changed);
	if (rc == 0) {
		/* Names or keys the file let go may be what parked services wait for. */
		s->freed = true;
		s->node_families = families;
		if (nodes_moved && s->k8s_units.n > 0)
			reevaluate_k8s(a, c);
		else
			retry_parked(a, c);
	}
out:
	free(units);
	free(gone.v);
	app_map_fini(&names);
	app_map_fini(&keep);
	compiled_set_free(&cs);
	return rc;
}
