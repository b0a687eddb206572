/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the configuration file may say: the table of every setting (name,
 * type, range, default, whether a reload may change it), and the checks
 * that span several settings (a gateway inside its port's prefix, a NodePort
 * service with a node_port, one service per address and port, ...).
 * config/svcgw.conf documents the same settings for people; keep the two
 * in step.
 *
 * Each group's table is walked in order, so a check may rely on every
 * setting listed before it being decoded and defaulted: a service sees the
 * ports, node and SNAT addresses, default_mode and tables of the file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_common.h"

#include "conf.h"
#include "conf_private.h"

/* Kubernetes' own limit (sessionAffinityConfig.clientIP.timeoutSeconds). */
#define AFFINITY_TIMEOUT_MAX 86400
#define AFFINITY_TIMEOUT_DEFAULT 10800
/* lib/flow keeps timeouts in uint32_t milliseconds; a week is plenty. */
#define FLOW_TIMEOUT_MAX 604800
/* Enough SNAT ports per worker to be worth a worker's share. */
#define SNAT_PORTS_PER_WORKER_MIN 64u

#define LABEL_WHAT "a DNS-1123 label (a-z, 0-9 and '-', 1 to 63, starting and ending with a " \
	"letter or digit)"

static const struct enum_name affinities[] = {
	{ "None", 0 },
	{ "ClientIP", 1 },
	{ NULL, 0 },
};

static const struct enum_name policies[] = {
	{ "Cluster", 0 },
	{ "Local", 1 },
	{ NULL, 0 },
};

#define OFF(st, f) .off = offsetof(st, f)
#define ARR(st, f, n) .off = offsetof(st, f), .count_off = offsetof(st, n)
#define INT(lo, hi) .kind = SK_INT, .min = (lo), .max = (hi)
#define DEF(v) .def = (v)

/* ---- defaults that depend on other settings ----------------------------------- */

/* NodePorts are served, unless told otherwise, where clients reach us. */
static int
node_addrs_default(struct conf_ctx *ctx, const config_setting_t *gs, void *obj)
{
	struct sg_conf *c = obj;
	uint32_t n = 0;

	(void)gs;
	c->node_addrs = calloc(2 * SG_CONF_MAX_PORTS, sizeof(*c->node_addrs));
	if (c->node_addrs == NULL)
		return conf_err_nomem(ctx);
	for (uint32_t i = 0; i < c->n_ports; i++) {
		const struct sg_conf_port *p = &c->ports[i];

		if (!(p->role & SG_CONF_ROLE_EXTERNAL))
			continue;
		c->node_addrs[n] = p->address;
		c->node_addrs[n++].len = 32;
		if (p->address6.family != 0) {
			c->node_addrs[n] = p->address6;
			c->node_addrs[n++].len = 128;
		}
	}
	c->n_node_addrs = n;
	return 0;
}

static int
mode_default(struct conf_ctx *ctx, const config_setting_t *gs, void *obj)
{
	(void)gs;
	((struct sg_conf_service *)obj)->mode = ctx->conf->default_mode;
	return 0;
}

/* As Kubernetes: targetPort defaults to port. */
static int
target_port_default(struct conf_ctx *ctx, const config_setting_t *gs, void *obj)
{
	struct sg_conf_svc_port *p = obj;

	(void)ctx;
	(void)gs;
	p->target_port = p->port;
	return 0;
}

/* ---- endpoints ---------------------------------------------------------------------- */

/* Missing conditions mean what they mean in an EndpointSlice. */
static const struct setting endpoint_settings[] = {
	{ .name = "address", .kind = SK_ADDR, .flags = F_REQUIRED,
	  OFF(struct sg_conf_endpoint, address) },
	{ .name = "ready", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(1),
	  OFF(struct sg_conf_endpoint, ready) },
	{ .name = "serving", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(1),
	  OFF(struct sg_conf_endpoint, serving) },
	{ .name = "terminating", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_endpoint, terminating) },
	{ .name = "weight", INT(0, 65535), .flags = F_DEFAULT, DEF(1),
	  OFF(struct sg_conf_endpoint, weight) },
};

static const struct group endpoint_group = {
	.settings = endpoint_settings,
	.n = SG_ARRAY_SIZE(endpoint_settings),
	.size = sizeof(struct sg_conf_endpoint),
	.line_off = offsetof(struct sg_conf_endpoint, line),
};

/* ---- service ports -------------------------------------------------------------------- */

static const struct setting svc_port_settings[] = {
	{ .name = "name", .kind = SK_STR, .size = SG_CONF_K8S_NAME_SIZE,
	  .check = conf_is_dns_label, .what = LABEL_WHAT,
	  OFF(struct sg_conf_svc_port, name) },
	{ .name = "protocol", .kind = SK_ENUM, .names = sg_conf_protos, .what = "a protocol",
	  .flags = F_DEFAULT, DEF(IPPROTO_TCP), OFF(struct sg_conf_svc_port, proto) },
	{ .name = "port", INT(1, 65535), .what = "a port", .flags = F_REQUIRED,
	  OFF(struct sg_conf_svc_port, port) },
	{ .name = "node_port", INT(1, 65535), .what = "a port",
	  OFF(struct sg_conf_svc_port, node_port) },
	{ .name = "target_port", INT(1, 65535), .what = "a port", .dflt = target_port_default,
	  OFF(struct sg_conf_svc_port, target_port) },
};

static const struct group svc_port_group = {
	.settings = svc_port_settings,
	.n = SG_ARRAY_SIZE(svc_port_settings),
	.size = sizeof(struct sg_conf_svc_port),
	.line_off = offsetof(struct sg_conf_svc_port, line),
};

/* ---- services --------------------------------------------------------------------------- */

static const config_setting_t *
elem_member(const config_setting_t *gs, const char *list, unsigned int i, const char *name)
{
	const config_setting_t *l = conf_member(gs, list);
	const config_setting_t *el = l != NULL ? config_setting_get_elem(l, i) : NULL;
	const config_setting_t *m = el != NULL && name != NULL ? conf_member(el, name) : NULL;

	return m != NULL ? m : el;
}

static int
check_svc_ports(struct conf_ctx *ctx, const config_setting_t *gs, const struct sg_conf_service *s)
{
	int any_node_port = 0;

	for (uint32_t i = 0; i < s->n_ports; i++) {
		const struct sg_conf_svc_port *p = &s->ports[i];

		any_node_port |= p->node_port != 0;
		if (s->n_ports > 1 && p->name[0] == '\0')
			return conf_err_missing(ctx, elem_member(gs, "ports", i, NULL), "name",
						" (each port of a service with several is named)");
		for (uint32_t j = 0; j < i; j++) {
			const struct sg_conf_svc_port *o = &s->ports[j];

			if (p->name[0] != '\0' && strcmp(p->name, o->name) == 0)
				return conf_err(ctx, elem_member(gs, "ports", i, "name"),
						"\"%s\" is already the name of ports.[%u]",
						p->name, j);
			if (p->port == o->port && p->proto == o->proto)
				return conf_err(ctx, elem_member(gs, "ports", i, "port"),
						"%u/%s is already ports.[%u]", p->port,
						sg_conf_proto_name(p->proto), j);
		}
	}
	if (s->type == SG_CONF_TYPE_NODEPORT && !any_node_port)
		return conf_err(ctx, conf_member(gs, "ports"),
				"a NodePort service needs a node_port on at least one port");
	return 0;
}

static int
cmp_endpoint_idx(const void *a, const void *b, void *arg)
{
	const struct sg_conf_endpoint *eps = arg;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	int c = conf_addr_cmp(&eps[i].address, &eps[j].address);

	return c != 0 ? c : (i > j) - (i < j);
}

static int
check_endpoints(struct conf_ctx *ctx, const config_setting_t *gs, const struct sg_conf_service *s)
{
	uint32_t *order, weighted = 0, dup = UINT32_MAX, first = 0;
	const struct sg_conf_endpoint *eps = s->endpoints;
	char as[SG_CONF_ADDR_STRLEN];

	for (uint32_t i = 0; i < s->n_endpoints; i++) {
		unsigned int fam = eps[i].address.family;

		if (!(s->families & conf_fam_bit(fam)))
			return conf_err(ctx, elem_member(gs, "endpoints", i, "address"),
					"%s is %s but the service's VIPs are %s only",
					sg_conf_addr_str(&eps[i].address, as, sizeof(as)),
					conf_fam_name(fam),
					conf_fam_name(fam == SG_CONF_V4 ? SG_CONF_V6 : SG_CONF_V4));
		weighted += eps[i].weight != 0;
	}
	if (s->n_endpoints < 2)
		goto weights;
	/* Sorted, so a service of 65535 endpoints is not checked pair by pair. */
	order = malloc(s->n_endpoints * sizeof(*order));
	if (order == NULL)
		return conf_err_nomem(ctx);
	for (uint32_t i = 0; i < s->n_endpoints; i++)
		order[i] = i;
	qsort_r(order, s->n_endpoints, sizeof(*order), cmp_endpoint_idx, (void *)(uintptr_t)eps);
	for (uint32_t k = 1, run = order[0]; k < s->n_endpoints; k++) {
		if (!conf_addr_eq(&eps[order[k]].address, &eps[order[k - 1]].address)) {
			run = order[k];
			continue;
		}
		if (order[k] < dup) {
			dup = order[k];
			first = run;
		}
	}
	free(order);
	if (dup != UINT32_MAX)
		return conf_err(ctx, elem_member(gs, "endpoints", dup, "address"),
				"%s is already endpoints.[%u]",
				sg_conf_addr_str(&eps[dup].address, as, sizeof(as)), first);
weights:
	if (weighted > ctx->conf->tables.maglev_max_size)
		return conf_err(ctx, conf_member(gs, "endpoints"),
				"%u endpoints have a weight, more than tables.maglev_max_size (%u)",
				weighted, ctx->conf->tables.maglev_max_size);
	return 0;
}

static int
check_service(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	struct sg_conf_service *s = (struct sg_conf_service *)base + idx;
	const struct sg_conf *c = ctx->conf;
	const config_setting_t *m;
	unsigned int fam = 0, n_src[2] = { 0, 0 };
	int rc;

	if (s->type == SG_CONF_TYPE_LOADBALANCER) {
		if (s->n_vips == 0) {
			m = conf_member(gs, "vips");
			if (m == NULL)
				return conf_err_missing(ctx, gs, "vips", "");
			return conf_err(ctx, m, "a LoadBalancer needs 1 to %u addresses",
					SG_CONF_MAX_VIPS);
		}
		for (uint32_t i = 0; i < s->n_vips; i++)
			fam |= conf_fam_bit(s->vips[i].family);
	} else {
		if (s->n_vips != 0)
			return conf_err(ctx, conf_member(gs, "vips"), "a NodePort service has no "
					"VIPs (or make it a LoadBalancer)");
		if (s->n_source_ranges != 0)
			return conf_err(ctx, conf_member(gs, "source_ranges"),
					"only a LoadBalancer has source ranges");
		for (uint32_t i = 0; i < s->n_endpoints; i++)
			fam |= conf_fam_bit(s->endpoints[i].address.family);
		for (uint32_t i = 0; fam == 0 && i < c->n_node_addrs; i++)
			fam |= conf_fam_bit(c->node_addrs[i].family);
	}
	s->families = (uint8_t)fam;

	m = conf_member(gs, "affinity_timeout");
	if (m != NULL && !s->affinity)
		return conf_err(ctx, m, "only with session_affinity \"ClientIP\"");
	if (m == NULL)
		s->affinity_timeout = s->affinity ? AFFINITY_TIMEOUT_DEFAULT : 0;

	/*
	 * Local keeps the client's address (DESIGN.md, Modes): never SNAT. With
	 * nat only as the default, the service is forwarded as dnat, as
	 * Kubernetes users expect; a service that asks for nat is wrong.
	 */
	if (s->local && s->mode == SG_CONF_MODE_NAT) {
		if (conf_member(gs, "mode") != NULL)
			return conf_err(ctx, conf_member(gs, "external_traffic_policy"),
					"\"Local\" keeps the client address, which mode nat "
					"replaces (use dnat or a dsr mode)");
		s->mode = SG_CONF_MODE_DNAT;
	}

	for (uint32_t i = 0; i < s->n_source_ranges; i++)
		n_src[s->source_ranges[i].family == SG_CONF_V6]++;
	for (unsigned int f = 0; f < 2; f++)
		if (n_src[f] > SG_CONF_MAX_SRC_RANGES)
			return conf_err(ctx, conf_member(gs, "source_ranges"),
					"more than %u %s ranges", SG_CONF_MAX_SRC_RANGES,
					f != 0 ? "IPv6" : "IPv4");

	rc = check_svc_ports(ctx, gs, s);
	if (rc == 0)
		rc = check_endpoints(ctx, gs, s);
	if (rc < 0)
		return rc;

	if (s->mode != SG_CONF_MODE_NAT)
		return 0;
	for (unsigned int f = 0; f < 2; f++) {
		unsigned int family = f != 0 ? SG_CONF_V6 : SG_CONF_V4;
		uint32_t i;

		if (!(fam & conf_fam_bit(family)))
			continue;
		for (i = 0; i < c->n_snat_addrs; i++)
			if (c->snat_addrs[i].family == family)
				break;
		if (i < c->n_snat_addrs)
			continue;
		m = conf_member(gs, "mode");
		if (m != NULL)
			return conf_err(ctx, m, "nat needs an %s address in snat_addresses",
					conf_fam_name(family));
		return conf_err(ctx, gs, "nat (default_mode) needs an %s address in snat_addresses",
				conf_fam_name(family));
	}
	return 0;
}

static const struct setting service_settings[] = {
	{ .name = "namespace", .kind = SK_STR, .size = SG_CONF_K8S_NAME_SIZE, .flags = F_REQUIRED,
	  .check = conf_is_dns_label, .what = LABEL_WHAT,
	  OFF(struct sg_conf_service, namespace) },
	{ .name = "name", .kind = SK_STR, .size = SG_CONF_K8S_NAME_SIZE, .flags = F_REQUIRED,
	  .check = conf_is_dns_label, .what = LABEL_WHAT,
	  OFF(struct sg_conf_service, name) },
	{ .name = "type", .kind = SK_ENUM, .names = sg_conf_types, .what = "a service type",
	  .flags = F_REQUIRED, OFF(struct sg_conf_service, type) },
	{ .name = "mode", .kind = SK_ENUM, .names = sg_conf_modes, .what = "a mode",
	  .dflt = mode_default, OFF(struct sg_conf_service, mode) },
	{ .name = "vips", .kind = SK_ARRAY, .elem = SK_ADDR, .flags = F_UNIQUE,
	  .cmin = 0, .cmax = SG_CONF_MAX_VIPS,
	  ARR(struct sg_conf_service, vips, n_vips) },
	{ .name = "session_affinity", .kind = SK_ENUM, .names = affinities,
	  .what = "a session affinity", .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_service, affinity) },
	{ .name = "affinity_timeout", INT(1, AFFINITY_TIMEOUT_MAX),
	  OFF(struct sg_conf_service, affinity_timeout) },
	{ .name = "external_traffic_policy", .kind = SK_ENUM, .names = policies,
	  .what = "a traffic policy", .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_service, local) },
	{ .name = "source_ranges", .kind = SK_ARRAY, .elem = SK_CIDR, .flags = F_UNIQUE,
	  .cmin = 0, .cmax = 2 * SG_CONF_MAX_SRC_RANGES,
	  ARR(struct sg_conf_service, source_ranges, n_source_ranges) },
	{ .name = "ports", .kind = SK_LIST, .group = &svc_port_group, .flags = F_REQUIRED,
	  .cmin = 1, .cmax = SG_CONF_MAX_SVC_PORTS,
	  ARR(struct sg_conf_service, ports, n_ports) },
	{ .name = "endpoints", .kind = SK_LIST, .group = &endpoint_group,
	  .cmin = 0, .cmax = SG_CONF_MAX_ENDPOINTS,
	  ARR(struct sg_conf_service, endpoints, n_endpoints) },
};

static const struct group service_group = {
	.settings = service_settings,
	.n = SG_ARRAY_SIZE(service_settings),
	.size = sizeof(struct sg_conf_service),
	.line_off = offsetof(struct sg_conf_service, line),
	.check = check_service,
};

/* ---- ports ------------------------------------------------------------------------------- */

static int
check_host(struct conf_ctx *ctx, const config_setting_t *gs, const char *name,
	   const struct sg_conf_addr *a)
{
	char as[SG_CONF_ADDR_STRLEN];

	if (a->family == 0 || !conf_addr_is_net_or_bcast(a))
		return 0;
	return conf_err(ctx, conf_member(gs, name),
			"%s is the network or broadcast address of its prefix",
			sg_conf_addr_str(a, as, sizeof(as)));
}

static int
is_link_local6(const struct sg_conf_addr *a)
{
	return a->family == SG_CONF_V6 && a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

/* A gateway on the port's link: inside its prefix, not the port itself. */
static int
check_gateway(struct conf_ctx *ctx, const config_setting_t *gs, const char *name,
	      const struct sg_conf_addr *gw, const struct sg_conf_addr *own, const char *own_name)
{
	const config_setting_t *m = conf_member(gs, name);
	struct sg_conf_addr in = *gw;
	char gs_[SG_CONF_ADDR_STRLEN], os[SG_CONF_ADDR_STRLEN];

	if (gw->family == 0)
		return 0;
	if (own->family == 0)
		return conf_err(ctx, m, "needs %s", own_name);
	sg_conf_addr_str(gw, gs_, sizeof(gs_));
	sg_conf_addr_str(own, os, sizeof(os));
	if (conf_addr_eq(gw, own))
		return conf_err(ctx, m, "%s is the port's own address", gs_);
	/* IPv6 routers are usually known by their link-local address (RFC 4861 §4.2). */
	if (is_link_local6(gw))
		return 0;
	if (!conf_prefix_contains(own, gw))
		return conf_err(ctx, m, "%s is not inside %s %s", gs_, own_name, os);
	in.len = own->len;
	if (conf_addr_is_net_or_bcast(&in))
		return conf_err(ctx, m, "%s is the network or broadcast address of %s", gs_, os);
	return 0;
}

static int
check_port(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf_port *ports = base, *p = &ports[idx];
	char id[SG_CONF_DEVICE_SIZE], oid[SG_CONF_DEVICE_SIZE];
	char as[SG_CONF_ADDR_STRLEN], os[SG_CONF_ADDR_STRLEN];
	int rc;

	rc = check_host(ctx, gs, "address", &p->address);
	if (rc == 0)
		rc = check_host(ctx, gs, "address6", &p->address6);
	if (rc == 0)
		rc = check_gateway(ctx, gs, "gateway", &p->gateway, &p->address, "address");
	if (rc == 0)
		rc = check_gateway(ctx, gs, "gateway6", &p->gateway6, &p->address6, "address6");
	if (rc < 0)
		return rc;

	conf_device_id(p->device, id, sizeof(id));
	for (unsigned int j = 0; j < idx; j++) {
		const struct sg_conf_port *o = &ports[j];
		static const char *const fields[] = { "address", "address6" };

		if (strcmp(p->name, o->name) == 0)
			return conf_err(ctx, conf_member(gs, "name"),
					"\"%s\" is already the name of ports.[%u]", p->name, j);
		conf_device_id(o->device, oid, sizeof(oid));
		if (strcmp(id, oid) == 0)
			return conf_err(ctx, conf_member(gs, "device"),
					"%s is already the device of ports.[%u]", id, j);
		/* Overlapping prefixes would make the egress port of a next hop a guess. */
		for (unsigned int f = 0; f < 2; f++) {
			const struct sg_conf_addr *a = f != 0 ? &p->address6 : &p->address;
			const struct sg_conf_addr *b = f != 0 ? &o->address6 : &o->address;

			if (a->family == 0 || b->family == 0 || !conf_prefix_overlap(a, b))
				continue;
			return conf_err(ctx, conf_member(gs, fields[f]),
					"%s overlaps %s %s of ports.[%u]",
					sg_conf_addr_str(a, as, sizeof(as)), fields[f],
					sg_conf_addr_str(b, os, sizeof(os)), j);
		}
	}
	return 0;
}

static const struct setting port_settings[] = {
	{ .name = "name", .kind = SK_STR, .size = SG_CONF_PORT_NAME_SIZE, .flags = F_REQUIRED,
	  .check = conf_is_port_name, .what = "a port name (a-z, 0-9, '_' and '-', 1 to 15)",
	  OFF(struct sg_conf_port, name) },
	{ .name = "device", .kind = SK_STR, .size = SG_CONF_DEVICE_SIZE, .flags = F_REQUIRED,
	  .check = conf_is_device,
	  .what = "a PCI address (0000:01:00.0) or a virtual device (net_<driver><n>[,args])",
	  OFF(struct sg_conf_port, device) },
	{ .name = "role", .kind = SK_ENUM, .names = sg_conf_roles, .what = "a role",
	  .flags = F_REQUIRED, OFF(struct sg_conf_port, role) },
	{ .name = "address", .kind = SK_PREFIX, .family = SG_CONF_V4, .flags = F_REQUIRED,
	  OFF(struct sg_conf_port, address) },
	{ .name = "address6", .kind = SK_PREFIX, .family = SG_CONF_V6,
	  OFF(struct sg_conf_port, address6) },
	{ .name = "gateway", .kind = SK_ADDR, .family = SG_CONF_V4,
	  OFF(struct sg_conf_port, gateway) },
	{ .name = "gateway6", .kind = SK_ADDR, .family = SG_CONF_V6,
	  OFF(struct sg_conf_port, gateway6) },
	{ .name = "mtu", INT(576, 9216), .flags = F_DEFAULT, DEF(1500),
	  OFF(struct sg_conf_port, mtu) },
	{ .name = "rx_desc", INT(64, 16384), .flags = F_DEFAULT | F_POW2, DEF(1024),
	  OFF(struct sg_conf_port, rx_desc) },
	{ .name = "tx_desc", INT(64, 16384), .flags = F_DEFAULT | F_POW2, DEF(1024),
	  OFF(struct sg_conf_port, tx_desc) },
};

static const struct group port_group = {
	.settings = port_settings,
	.n = SG_ARRAY_SIZE(port_settings),
	.size = sizeof(struct sg_conf_port),
	.line_off = offsetof(struct sg_conf_port, line),
	.check = check_port,
};

/* ---- snat_ports, tables, timeouts --------------------------------------------------------- */

static int
check_snat_ports(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf_port_range *r = (const struct sg_conf_port_range *)base + idx;
	uint32_t n = ctx->conf->n_workers;

	if (r->min >= r->max)
		return conf_err(ctx, conf_member(gs, "max") != NULL ? conf_member(gs, "max") : gs,
				"%u is not above min (%u)", r->max, r->min);
	if ((r->max - r->min + 1) / n < SNAT_PORTS_PER_WORKER_MIN)
		return conf_err(ctx, gs, "%u ports are fewer than %u for each of %u workers",
				r->max - r->min + 1, SNAT_PORTS_PER_WORKER_MIN, n);
	return 0;
}

static const struct setting snat_ports_settings[] = {
	{ .name = "min", INT(1, 65535), .what = "a port", .flags = F_DEFAULT, DEF(1024),
	  OFF(struct sg_conf_port_range, min) },
	{ .name = "max", INT(1, 65535), .what = "a port", .flags = F_DEFAULT, DEF(65535),
	  OFF(struct sg_conf_port_range, max) },
};

static const struct group snat_ports_group = {
	.settings = snat_ports_settings,
	.n = SG_ARRAY_SIZE(snat_ports_settings),
	.size = sizeof(struct sg_conf_port_range),
	.line_off = NO_LINE,
	.check = check_snat_ports,
};

static int
check_tables(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf_tables *t = (const struct sg_conf_tables *)base + idx;

	if (t->flows_v6 > t->flows)
		return conf_err(ctx, conf_member(gs, "flows_v6"), "%u is above flows (%u)",
				t->flows_v6, t->flows);
	if (t->service_keys < t->services)
		return conf_err(ctx, conf_member(gs, "service_keys") != NULL ?
				conf_member(gs, "service_keys") : gs,
				"%u is below services (%u): each service port has a key",
				t->service_keys, t->services);
	return 0;
}

static const struct setting tables_settings[] = {
	{ .name = "flows", INT(1024, 1 << 28), .flags = F_DEFAULT, DEF(262144),
	  OFF(struct sg_conf_tables, flows) },
	{ .name = "flows_v6", INT(0, 1 << 28), .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_tables, flows_v6) },
	{ .name = "services", INT(1, 1 << 22), .flags = F_DEFAULT, DEF(4096),
	  OFF(struct sg_conf_tables, services) },
	{ .name = "service_keys", INT(1, 1 << 24), .flags = F_DEFAULT, DEF(16384),
	  OFF(struct sg_conf_tables, service_keys) },
	{ .name = "maglev_max_size", INT(101, 1638431), .flags = F_DEFAULT | F_PRIME, DEF(65537),
	  OFF(struct sg_conf_tables, maglev_max_size) },
	{ .name = "neighbours", INT(16, 1 << 20), .flags = F_DEFAULT, DEF(4096),
	  OFF(struct sg_conf_tables, neighbours) },
	{ .name = "mbufs", INT(1023, 1 << 24), .flags = F_DEFAULT, DEF(16383),
	  OFF(struct sg_conf_tables, mbufs) },
};

static const struct group tables_group = {
	.settings = tables_settings,
	.n = SG_ARRAY_SIZE(tables_settings),
	.size = sizeof(struct sg_conf_tables),
	.line_off = NO_LINE,
	.check = check_tables,
};

/* The defaults of lib/flow (sg_flow_default_timeout()). */
#define TIMEOUT(nm, dv) { .name = #nm, INT(1, FLOW_TIMEOUT_MAX), .flags = F_DEFAULT, DEF(dv), \
			  OFF(struct sg_conf_timeouts, nm) }

static const struct setting timeouts_settings[] = {
	TIMEOUT(tcp_syn, 30),
	TIMEOUT(tcp_established, 7440),
	TIMEOUT(tcp_fin, 120),
	TIMEOUT(tcp_close, 10),
	TIMEOUT(udp, 30),
	TIMEOUT(udp_assured, 120),
	TIMEOUT(icmp, 30),
	{ .name = "neighbour", INT(1, 86400), .flags = F_DEFAULT, DEF(300),
	  OFF(struct sg_conf_timeouts, neighbour) },
};

static const struct group timeouts_group = {
	.settings = timeouts_settings,
	.n = SG_ARRAY_SIZE(timeouts_settings),
	.size = sizeof(struct sg_conf_timeouts),
	.line_off = NO_LINE,
};

/* ---- kubernetes ----------------------------------------------------------------------------- */

/*
 * Read only when the group is in the file: a left-out group keeps source
 * SG_CONF_K8S_NONE, which is how the daemon knows to run on the static
 * services alone.
 */
static int
check_kubernetes(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf_kubernetes *k = (const struct sg_conf_kubernetes *)base + idx;
	static const char *const file_only[] = { "kubeconfig", "context" };

	if (k->source == SG_CONF_K8S_KUBECONFIG) {
		if (k->kubeconfig == NULL)
			return conf_err_missing(ctx, gs, "kubeconfig",
						" (source \"kubeconfig\" reads that file)");
		if (conf_member(gs, "service_account") != NULL)
			return conf_err(ctx, conf_member(gs, "service_account"),
					"only with source \"in-cluster\"");
		return 0;
	}
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(file_only); i++)
		if (conf_member(gs, file_only[i]) != NULL)
			return conf_err(ctx, conf_member(gs, file_only[i]),
					"only with source \"kubeconfig\"");
	return 0;
}

static const struct setting kubernetes_settings[] = {
	{ .name = "source", .kind = SK_ENUM, .names = sg_conf_k8s_sources,
	  .what = "a credential source", .flags = F_REQUIRED,
	  OFF(struct sg_conf_kubernetes, source) },
	{ .name = "kubeconfig", .kind = SK_STR, .size = 0, .check = conf_is_path,
	  .what = "a path (1 to 4095 characters, none of them control characters)",
	  OFF(struct sg_conf_kubernetes, kubeconfig) },
	{ .name = "context", .kind = SK_STR, .size = 0, .check = conf_is_context,
	  .what = "a context name (1 to 253 characters, none of them control characters)",
	  OFF(struct sg_conf_kubernetes, context) },
	{ .name = "service_account", .kind = SK_STR, .size = 0, .check = conf_is_path,
	  .what = "a path (1 to 4095 characters, none of them control characters)",
	  OFF(struct sg_conf_kubernetes, service_account) },
	/* client-go's reflector lists 500 at a time. */
	{ .name = "page_size", INT(1, 100000), .flags = F_DEFAULT, DEF(500),
	  OFF(struct sg_conf_kubernetes, page_size) },
	{ .name = "watch_timeout", INT(10, 86400), .flags = F_DEFAULT, DEF(300),
	  OFF(struct sg_conf_kubernetes, watch_timeout) },
	{ .name = "request_timeout", INT(1, 3600), .flags = F_DEFAULT, DEF(30),
	  OFF(struct sg_conf_kubernetes, request_timeout) },
};

static const struct group kubernetes_group = {
	.settings = kubernetes_settings,
	.n = SG_ARRAY_SIZE(kubernetes_settings),
	.size = sizeof(struct sg_conf_kubernetes),
	.line_off = offsetof(struct sg_conf_kubernetes, line),
	.check = check_kubernetes,
};

/* ---- failover ------------------------------------------------------------------------------- */

/*
 * Leases need the API; and a renewal must fit in a lease several times
 * over, or one slow answer from the API server makes a live gateway look
 * dead to the others.
 */
static int
check_failover(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf_failover *f = (const struct sg_conf_failover *)base + idx;

	if (ctx->conf->kubernetes.source == SG_CONF_K8S_NONE)
		return conf_err(ctx, gs, "needs the kubernetes group (the Leases are in the API)");
	if ((uint64_t)f->renew_interval_ms * 3 > (uint64_t)f->lease_duration * 1000)
		return conf_err(ctx, conf_member(gs, "renew_interval_ms"),
				"%u ms: at most a third of lease_duration (%u s)",
				f->renew_interval_ms, f->lease_duration);
	if (strncmp(f->leader_lease, "svcgw-", 6) == 0 && strcmp(f->leader_lease + 6, f->name) == 0)
		return conf_err(ctx, conf_member(gs, "leader_lease"),
				"\"%s\" is the heartbeat Lease of this gateway", f->leader_lease);
	return 0;
}

/* ---- lb: address pools ------------------------------------------------------------------ */

static int
is_range_text(const char *s)
{
	return s[0] != '\0' && strlen(s) < 2 * INET6_ADDRSTRLEN + 2;
}

/* a + delta (+1 or -1) over the family's bytes, in place. */
static void
addr_step(struct sg_conf_addr *a, int delta)
{
	for (int i = a->family == SG_CONF_V4 ? 3 : 15; i >= 0; i--) {
		unsigned int old = a->addr[i];

		a->addr[i] = (uint8_t)(old + (unsigned int)delta);
		if ((delta > 0 && old != 0xff) || (delta < 0 && old != 0))
			break;
	}
}

/* Network and broadcast addresses: RFC 919, RFC 3021 (/31), RFC 4291 §2.6.1. */
int
sg_conf_range_parse(const char *s, unsigned int all, struct sg_conf_addr_range *r, char *why,
		    size_t whylen)
{
	const char *dash = strchr(s, '-');
	char buf[2 * INET6_ADDRSTRLEN + 2], q[80];

	memset(r, 0, sizeof(*r));
	if (dash != NULL) {
		size_t n = (size_t)(dash - s);

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (conf_parse_addr(buf, SK_ADDR, 0, &r->first, why, whylen) < 0 ||
		    conf_parse_addr(dash + 1, SK_ADDR, r->first.family, &r->last, why, whylen) < 0)
			return -1;
		if (conf_addr_cmp(&r->first, &r->last) > 0) {
			snprintf(why, whylen, "%s: the first address is above the last",
				 conf_quote(s, q, sizeof(q)));
			return -1;
		}
		return 0;
	}
	if (strchr(s, '/') == NULL) {
		/* One address: a range of one. */
		if (conf_parse_addr(s, SK_ADDR, 0, &r->first, why, whylen) < 0)
			return -1;
		r->last = r->first;
		return 0;
	}
	if (conf_parse_addr(s, SK_CIDR, 0, &r->first, why, whylen) < 0)
		return -1;
	{
		unsigned int full = r->first.family == SG_CONF_V4 ? 32 : 128, len = r->first.len;

		r->last = r->first;
		for (unsigned int b = len; b < full; b++)
			r->last.addr[b / 8] |= (uint8_t)(0x80u >> (b % 8));
		r->first.len = r->last.len = (uint8_t)full;
		if (!all && r->first.family == SG_CONF_V4 && len <= 30) {
			addr_step(&r->first, 1);
			addr_step(&r->last, -1);
		} else if (!all && r->first.family == SG_CONF_V6 && len <= 126) {
			addr_step(&r->first, 1);
		}
	}
	return 0;
}

static int
leader_lease_default(struct conf_ctx *ctx, const config_setting_t *gs, void *obj)
{
	(void)gs;
	((struct sg_conf_failover *)obj)->leader_lease = strdup("svcgw-leader");
	return ((struct sg_conf_failover *)obj)->leader_lease != NULL ? 0 : conf_err_nomem(ctx);
}

static const struct setting failover_settings[] = {
	{ .name = "name", .kind = SK_STR, .size = 0, .flags = F_REQUIRED,
	  .check = conf_is_dns_label, .what = LABEL_WHAT, OFF(struct sg_conf_failover, name) },
	{ .name = "namespace", .kind = SK_STR, .size = 0, .flags = F_REQUIRED,
	  .check = conf_is_dns_label, .what = LABEL_WHAT,
	  OFF(struct sg_conf_failover, namespace) },
	{ .name = "leader_lease", .kind = SK_STR, .size = 0, .check = conf_is_dns_label,
	  .what = LABEL_WHAT, .dflt = leader_lease_default,
	  OFF(struct sg_conf_failover, leader_lease) },
	/* 2 s and 0.5 s: a dead gateway's VIPs move within about 2.5 s. */
	{ .name = "lease_duration", INT(1, 3600), .flags = F_DEFAULT, DEF(2),
	  OFF(struct sg_conf_failover, lease_duration) },
	{ .name = "renew_interval_ms", INT(50, 1200000), .flags = F_DEFAULT, DEF(500),
	  OFF(struct sg_conf_failover, renew_interval_ms) },
	{ .name = "announce_count", INT(1, 16), .flags = F_DEFAULT, DEF(3),
	  OFF(struct sg_conf_failover, announce_count) },
	{ .name = "announce_interval_ms", INT(10, 10000), .flags = F_DEFAULT, DEF(100),
	  OFF(struct sg_conf_failover, announce_interval_ms) },
	{ .name = "announce_refresh", INT(0, 3600), .flags = F_DEFAULT, DEF(10),
	  OFF(struct sg_conf_failover, announce_refresh) },
};

static const struct group failover_group = {
	.settings = failover_settings,
	.n = SG_ARRAY_SIZE(failover_settings),
	.size = sizeof(struct sg_conf_failover),
	.line_off = offsetof(struct sg_conf_failover, line),
	.check = check_failover,
};

static int
ranges_overlap(const struct sg_conf_addr_range *a, const struct sg_conf_addr_range *b)
{
	return a->first.family == b->first.family && conf_addr_cmp(&a->first, &b->last) <= 0 &&
	       conf_addr_cmp(&b->first, &a->last) <= 0;
}

static int
check_pool(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	struct sg_conf_pool *p = (struct sg_conf_pool *)base + idx;
	const config_setting_t *list = conf_member(gs, "addresses");
	char why[200];

	for (uint32_t i = 0; i < p->n_addresses; i++) {
		const config_setting_t *el = config_setting_get_elem(list, i);

		if (sg_conf_range_parse(p->addresses[i], p->all_addresses, &p->ranges[i], why,
				sizeof(why)) < 0)
			return conf_err(ctx, el, "%s", why);
		for (uint32_t j = 0; j < i; j++)
			if (ranges_overlap(&p->ranges[i], &p->ranges[j]))
				return conf_err(ctx, el, "overlaps addresses.[%u] of this pool", j);
	}
	/* Earlier pools: no name twice, no address in two pools. */
	for (unsigned int k = 0; k < idx; k++) {
		const struct sg_conf_pool *o = (const struct sg_conf_pool *)base + k;

		if (strcmp(o->name, p->name) == 0)
			return conf_err(ctx, conf_member(gs, "name"), "pool \"%s\" is already "
					"defined at line %u", p->name, o->line);
		for (uint32_t i = 0; i < p->n_addresses; i++)
			for (uint32_t j = 0; j < o->n_addresses; j++)
				if (ranges_overlap(&p->ranges[i], &o->ranges[j]))
					return conf_err(ctx, config_setting_get_elem(list, i),
							"overlaps pool \"%s\" (line %u)", o->name,
							o->line);
	}
	return 0;
}

static const struct setting pool_settings[] = {
	{ .name = "name", .kind = SK_STR, .size = SG_CONF_K8S_NAME_SIZE,
	  .check = conf_is_dns_label, .what = LABEL_WHAT, .flags = F_REQUIRED,
	  OFF(struct sg_conf_pool, name) },
	/* Decoded before addresses: the ranges depend on it. */
	{ .name = "all_addresses", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_pool, all_addresses) },
	{ .name = "addresses", .kind = SK_ARRAY, .elem = SK_STR, .size = 0, .check = is_range_text,
	  .what = "an address, a range (\"first-last\") or a CIDR (\"network/length\")",
	  .flags = F_REQUIRED | F_UNIQUE, .cmin = 1, .cmax = SG_CONF_MAX_POOL_RANGES,
	  ARR(struct sg_conf_pool, addresses, n_addresses) },
	{ .name = "auto_assign", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(1),
	  OFF(struct sg_conf_pool, auto_assign) },
	{ .name = "namespaces", .kind = SK_ARRAY, .elem = SK_STR, .size = 0,
	  .check = conf_is_dns_label, .what = LABEL_WHAT, .flags = F_UNIQUE,
	  .cmin = 0, .cmax = SG_CONF_MAX_POOL_NAMESPACES,
	  ARR(struct sg_conf_pool, namespaces, n_namespaces) },
	{ .name = "priority", INT(0, 1000000), .flags = F_DEFAULT, DEF(100),
	  OFF(struct sg_conf_pool, priority) },
};

static const struct group pool_group = {
	.settings = pool_settings,
	.n = SG_ARRAY_SIZE(pool_settings),
	.size = sizeof(struct sg_conf_pool),
	.line_off = offsetof(struct sg_conf_pool, line),
	.check = check_pool,
};

static int
check_lb(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	(void)base;
	(void)idx;
	if (ctx->conf->kubernetes.source == SG_CONF_K8S_NONE)
		return conf_err(ctx, gs, "needs a kubernetes group (the pools serve its Services)");
	return 0;
}

static const struct setting lb_settings[] = {
	{ .name = "allocate", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(1),
	  OFF(struct sg_conf_lb, allocate) },
	{ .name = "default_class", .kind = SK_BOOL, .flags = F_DEFAULT, DEF(0),
	  OFF(struct sg_conf_lb, default_class) },
	{ .name = "pools", .kind = SK_LIST, .group = &pool_group,
	  .cmin = 0, .cmax = SG_CONF_MAX_POOLS, ARR(struct sg_conf_lb, pools, n_pools) },
};

static const struct group lb_group = {
	.settings = lb_settings,
	.n = SG_ARRAY_SIZE(lb_settings),
	.size = sizeof(struct sg_conf_lb),
	.line_off = offsetof(struct sg_conf_lb, line),
	.check = check_lb,
};

/* ---- the whole file -------------------------------------------------------------------------- */

/* A key a service is served on: a VIP and port, or a node address and node_port. */
struct served {
	uint8_t family;
	uint8_t proto;
	uint16_t port;
	uint8_t addr[16];
	uint8_t node;		/* 1: from a node_port */
	uint32_t svc;
	uint32_t sport;
};

/* By key, then by position in the file, so the first of equal keys is the earliest. */
static int
cmp_served(const void *pa, const void *pb)
{
	const struct served *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = memcmp(a->addr, b->addr, 16);
	if (c != 0)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->svc != b->svc)
		return a->svc < b->svc ? -1 : 1;
	if (a->sport != b->sport)
		return a->sport < b->sport ? -1 : 1;
	return (a->node > b->node) - (a->node < b->node);
}

static int
same_key(const struct served *a, const struct served *b)
{
	return a->family == b->family && a->proto == b->proto && a->port == b->port &&
	       memcmp(a->addr, b->addr, 16) == 0;
}

/* 1 if a comes after b in the file. */
static int
later(const struct served *a, const struct served *b)
{
	if (a->svc != b->svc)
		return a->svc > b->svc;
	if (a->sport != b->sport)
		return a->sport > b->sport;
	return a->node > b->node;
}

static int
report_served(struct conf_ctx *ctx, const config_setting_t *root, const struct served *dup,
	      const struct served *first)
{
	const struct sg_conf_service *fs = &ctx->conf->services[first->svc];
	const config_setting_t *svcs = conf_member(root, "services");
	const config_setting_t *at =
		elem_member(config_setting_get_elem(svcs, dup->svc), "ports", dup->sport,
			    dup->node ? "node_port" : "port");
	const char *proto = sg_conf_proto_name(dup->proto);
	char as[SG_CONF_ADDR_STRLEN];

	if (dup->node && first->node)
		return conf_err(ctx, at, "%u/%s is already the node_port of %s/%s "
				"(services.[%u].ports.[%u])", dup->port, proto, fs->namespace,
				fs->name, first->svc, first->sport);
	sg_conf_ip_str(dup->family, dup->addr, as, sizeof(as));
	return conf_err(ctx, at,
			"%s%s%s:%u/%s is already served by %s/%s (services.[%u].ports.[%u])",
			dup->family == SG_CONF_V6 ? "[" : "", as,
			dup->family == SG_CONF_V6 ? "]" : "", dup->port, proto,
			fs->namespace, fs->name, first->svc, first->sport);
}

static void
served_add(struct served *v, size_t *n, const struct sg_conf_addr *a, uint32_t port,
	   uint8_t proto, int node, uint32_t svc, uint32_t sport)
{
	struct served *k = &v[(*n)++];

	memset(k, 0, sizeof(*k));
	k->family = a->family;
	memcpy(k->addr, a->addr, 16);
	k->port = (uint16_t)port;
	k->proto = proto;
	k->node = (uint8_t)node;
	k->svc = svc;
	k->sport = sport;
}

/* No two services, or ports, on one address, port and protocol. */
static int
check_served(struct conf_ctx *ctx, const config_setting_t *root)
{
	const struct sg_conf *c = ctx->conf;
	const struct served *dup = NULL, *first = NULL;
	struct served *v;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (uint32_t i = 0; i < c->n_services; i++)
		for (uint32_t j = 0; j < c->services[i].n_ports; j++)
			cap += c->services[i].n_vips +
			       (c->services[i].ports[j].node_port != 0 ? c->n_node_addrs : 0);
	if (cap == 0)
		return 0;
	v = malloc(cap * sizeof(*v));
	if (v == NULL)
		return conf_err_nomem(ctx);
	for (uint32_t i = 0; i < c->n_services; i++) {
		const struct sg_conf_service *s = &c->services[i];

		for (uint32_t j = 0; j < s->n_ports; j++) {
			const struct sg_conf_svc_port *p = &s->ports[j];

			for (uint32_t k = 0; k < s->n_vips; k++)
				served_add(v, &n, &s->vips[k], p->port, p->proto, 0, i, j);
			/* Node ports are unique per protocol whatever the family, as in
			 * Kubernetes, so every node address counts. */
			for (uint32_t k = 0; p->node_port != 0 && k < c->n_node_addrs; k++)
				served_add(v, &n, &c->node_addrs[k], p->node_port, p->proto,
					   1, i, j);
		}
	}
	qsort(v, n, sizeof(*v), cmp_served);
	for (size_t k = 1, run = 0; k < n; k++) {
		if (!same_key(&v[k], &v[k - 1])) {
			run = k;
			continue;
		}
		if (dup == NULL || later(dup, &v[k])) {
			dup = &v[k];
			first = &v[run];
		}
	}
	if (dup != NULL)
		rc = report_served(ctx, root, dup, first);
	free(v);
	return rc;
}

static int
cmp_svc_name(const void *pa, const void *pb, void *arg)
{
	const struct sg_conf_service *s = arg;
	uint32_t i = *(const uint32_t *)pa, j = *(const uint32_t *)pb;
	int c = strcmp(s[i].namespace, s[j].namespace);

	if (c == 0)
		c = strcmp(s[i].name, s[j].name);
	return c != 0 ? c : (i > j) - (i < j);
}

static int
check_svc_names(struct conf_ctx *ctx, const config_setting_t *root)
{
	const struct sg_conf *c = ctx->conf;
	uint32_t *order, dup = UINT32_MAX, first = 0;

	if (c->n_services < 2)
		return 0;
	order = malloc(c->n_services * sizeof(*order));
	if (order == NULL)
		return conf_err_nomem(ctx);
	for (uint32_t i = 0; i < c->n_services; i++)
		order[i] = i;
	qsort_r(order, c->n_services, sizeof(*order), cmp_svc_name,
		(void *)(uintptr_t)c->services);
	for (uint32_t k = 1, run = order[0]; k < c->n_services; k++) {
		const struct sg_conf_service *a = &c->services[order[k]];
		const struct sg_conf_service *b = &c->services[order[k - 1]];

		if (strcmp(a->namespace, b->namespace) != 0 || strcmp(a->name, b->name) != 0) {
			run = order[k];
			continue;
		}
		if (order[k] < dup) {
			dup = order[k];
			first = run;
		}
	}
	free(order);
	if (dup == UINT32_MAX)
		return 0;
	return conf_err(ctx, elem_member(root, "services", dup, "name"),
			"%s/%s is already services.[%u]", c->services[dup].namespace,
			c->services[dup].name, first);
}

static unsigned int
popcount8(unsigned int v)
{
	return (v & 1u) + ((v >> 1) & 1u);
}

static int
check_root(struct conf_ctx *ctx, const config_setting_t *gs, void *base, unsigned int idx)
{
	const struct sg_conf *c = (const struct sg_conf *)base + idx;
	uint64_t svc_ports = 0, keys = 0;
	unsigned int roles = 0;
	int rc;

	for (uint32_t i = 0; i < c->n_ports; i++)
		roles |= c->ports[i].role;
	if (!(roles & SG_CONF_ROLE_EXTERNAL))
		return conf_err(ctx, conf_member(gs, "ports"),
				"no port has role \"external\" or \"both\"");
	if (!(roles & SG_CONF_ROLE_INTERNAL))
		return conf_err(ctx, conf_member(gs, "ports"),
				"no port has role \"internal\" or \"both\"");

	for (uint32_t i = 0; i < c->n_services; i++) {
		const struct sg_conf_service *s = &c->services[i];

		svc_ports += s->n_ports;
		for (uint32_t j = 0; j < s->n_ports; j++)
			keys += s->n_vips +
				(s->ports[j].node_port != 0 ? popcount8(s->families) : 0);
	}
	if (svc_ports > c->tables.services)
		return conf_err(ctx, conf_member(gs, "services"),
				"%llu service ports, more than tables.services (%u)",
				(unsigned long long)svc_ports, c->tables.services);
	if (keys > c->tables.service_keys)
		return conf_err(ctx, conf_member(gs, "services"),
				"%llu service keys, more than tables.service_keys (%u)",
				(unsigned long long)keys, c->tables.service_keys);
	rc = check_svc_names(ctx, gs);
	if (rc == 0)
		rc = check_served(ctx, gs);
	return rc;
}

/* Order matters: services come last, so their checks see everything else. */
static const struct setting root_settings[] = {
	{ .name = "eal", .kind = SK_ARRAY, .elem = SK_STR, .size = 0, .flags = F_NORELOAD,
	  .check = conf_is_eal_arg, .what = "an EAL argument (1 to 1023 characters)",
	  .cmin = 0, .cmax = SG_CONF_MAX_EAL_ARGS, ARR(struct sg_conf, eal, n_eal) },
	{ .name = "workers", .kind = SK_ARRAY, .elem = SK_INT, .min = 0, .max = SG_CONF_MAX_LCORE,
	  .what = "an lcore id", .flags = F_REQUIRED | F_NORELOAD | F_UNIQUE,
	  .cmin = 1, .cmax = SG_CONF_MAX_LCORE + 1, ARR(struct sg_conf, workers, n_workers) },
	{ .name = "ports", .kind = SK_LIST, .group = &port_group, .flags = F_REQUIRED | F_NORELOAD,
	  .cmin = 1, .cmax = SG_CONF_MAX_PORTS, ARR(struct sg_conf, ports, n_ports) },
	{ .name = "node_addresses", .kind = SK_ARRAY, .elem = SK_ADDR, .flags = F_UNIQUE,
	  .cmin = 1, .cmax = SG_CONF_MAX_NODE_ADDRS, .dflt = node_addrs_default,
	  ARR(struct sg_conf, node_addrs, n_node_addrs) },
	{ .name = "snat_addresses", .kind = SK_ARRAY, .elem = SK_ADDR, .flags = F_UNIQUE,
	  .cmin = 0, .cmax = SG_CONF_MAX_SNAT_ADDRS,
	  ARR(struct sg_conf, snat_addrs, n_snat_addrs) },
	{ .name = "snat_ports", .kind = SK_GROUP, .group = &snat_ports_group,
	  .flags = F_NORELOAD, OFF(struct sg_conf, snat_ports) },
	{ .name = "default_mode", .kind = SK_ENUM, .names = sg_conf_modes, .what = "a mode",
	  .flags = F_DEFAULT, DEF(SG_CONF_MODE_NAT), OFF(struct sg_conf, default_mode) },
	{ .name = "gue_port", INT(1, 65535), .what = "a port", .flags = F_DEFAULT, DEF(6080),
	  OFF(struct sg_conf, gue_port) },
	{ .name = "tables", .kind = SK_GROUP, .group = &tables_group, .flags = F_NORELOAD,
	  OFF(struct sg_conf, tables) },
	{ .name = "timeouts", .kind = SK_GROUP, .group = &timeouts_group, .flags = F_NORELOAD,
	  OFF(struct sg_conf, timeouts) },
	{ .name = "flow_rate", INT(0, 100000000), .flags = F_DEFAULT | F_NORELOAD, DEF(0),
	  OFF(struct sg_conf, flow_rate) },
	{ .name = "kubernetes", .kind = SK_GROUP, .group = &kubernetes_group, .flags = F_NORELOAD,
	  OFF(struct sg_conf, kubernetes) },
	{ .name = "failover", .kind = SK_GROUP, .group = &failover_group, .flags = F_NORELOAD,
	  OFF(struct sg_conf, failover) },
	/*
	 * After kubernetes: its check needs the group. A reload may change
	 * what is inside, not add or remove it: the provider is set up at
	 * start, with the watches that feed it.
	 */
	{ .name = "lb", .kind = SK_GROUP, .group = &lb_group, .flags = F_NOADD,
	  OFF(struct sg_conf, lb) },
	{ .name = "services", .kind = SK_LIST, .group = &service_group,
	  .cmin = 0, .cmax = 1u << 22, ARR(struct sg_conf, services, n_services) },
};

const struct group sg_conf_root_group = {
	.settings = root_settings,
	.n = SG_ARRAY_SIZE(root_settings),
	.size = sizeof(struct sg_conf),
	.line_off = NO_LINE,
	.check = check_root,
};
