/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's configuration file: loading a libconfig file, validating
 * every setting of it, and deciding whether a new file may replace the
 * running one on SIGHUP. config/svcgw.conf documents each setting.
 *
 * The result is a plain, DPDK-free struct sg_conf the daemon reads and never
 * writes: every value checked, every default filled in, addresses parsed,
 * names and choices turned into numbers. Nothing of libconfig is kept.
 *
 * Errors are one line, ready to print as they are:
 *   svcgw.conf:42: services.[3].ports.[0].port: 70000 is not a port (1-65535)
 * naming the file as given to sg_conf_load(), the line of the setting at
 * fault (of its enclosing group when the setting is missing; no line at all
 * when that group is the file itself) and the setting's path.
 *
 * Not here: logging (the daemon logs the error line), turning services into
 * data-path tables (the daemon, lib/svc), EAL and port set-up (the daemon).
 */
#ifndef SG_CONF_H
#define SG_CONF_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of the file's lists; the reference config explains each. */
#define SG_CONF_MAX_PORTS 8u
#define SG_CONF_MAX_LCORE 127u		/* highest worker lcore id */
#define SG_CONF_MAX_EAL_ARGS 64u
#define SG_CONF_MAX_NODE_ADDRS 16u
#define SG_CONF_MAX_SNAT_ADDRS 64u
#define SG_CONF_MAX_VIPS 8u
#define SG_CONF_MAX_SRC_RANGES 32u	/* per address family, as lib/svc */
#define SG_CONF_MAX_SVC_PORTS 64u	/* ports of one service */
#define SG_CONF_MAX_ENDPOINTS 65535u	/* endpoints of one service, as lib/svc */
#define SG_CONF_MAX_POOLS 64u		/* lb.pools */
#define SG_CONF_MAX_POOL_RANGES 32u	/* addresses of one pool */
#define SG_CONF_MAX_POOL_NAMESPACES 64u

/* Buffer sizes, terminating NUL included. */
#define SG_CONF_PORT_NAME_SIZE 16u	/* [a-z0-9_-]{1,15} */
#define SG_CONF_DEVICE_SIZE 256u	/* PCI address or vdev, with its arguments */
#define SG_CONF_K8S_NAME_SIZE 64u	/* DNS-1123 label, 1-63 characters */
#define SG_CONF_PATH_MAX 4096u		/* kubernetes.kubeconfig, NUL included */
#define SG_CONF_K8S_CONTEXT_MAX 254u	/* kubernetes.context, NUL included */
/* sg_conf_addr_str(): an IPv6 address and "/128". */
#define SG_CONF_ADDR_STRLEN 50u

/* Address families, as lib/svc and lib/flow number them. */
#define SG_CONF_V4 4u
#define SG_CONF_V6 6u
/* Sets of families (sg_conf_service.families). */
#define SG_CONF_FAM_V4 0x01u
#define SG_CONF_FAM_V6 0x02u

/*
 * An address, or a prefix: family SG_CONF_V4 or SG_CONF_V6, the address in
 * network order (IPv4 in the first 4 bytes, the other 12 zero) and a prefix
 * length, 32 or 128 for a plain address. Family 0 means "not set" where a
 * setting is optional.
 */
struct sg_conf_addr {
	uint8_t family;
	uint8_t len;
	uint8_t addr[16];
};

/* Port roles, a bit set: BOTH is a one-arm gateway. */
enum sg_conf_role {
	SG_CONF_ROLE_EXTERNAL = 1,	/* faces the clients */
	SG_CONF_ROLE_INTERNAL = 2,	/* faces the pods */
	SG_CONF_ROLE_BOTH = 3,
};

/* Forwarding modes; the same numbers as enum sg_svc_mode in lib/svc. */
enum sg_conf_mode {
	SG_CONF_MODE_NAT = 0,
	SG_CONF_MODE_DNAT,
	SG_CONF_MODE_DSR_IPIP,
	SG_CONF_MODE_DSR_GUE,
	SG_CONF_MODE_DSR_L2,
};
#define SG_CONF_MODE_COUNT 5

enum sg_conf_svc_type {
	SG_CONF_TYPE_LOADBALANCER = 0,
	SG_CONF_TYPE_NODEPORT,
};
#define SG_CONF_TYPE_COUNT 2

/* Numbers are host order throughout, addresses network order. */

struct sg_conf_port {
	char name[SG_CONF_PORT_NAME_SIZE];
	char device[SG_CONF_DEVICE_SIZE];	/* as written: devargs for EAL */
	uint8_t role;				/* enum sg_conf_role */
	struct sg_conf_addr address;		/* IPv4 with its prefix */
	struct sg_conf_addr address6;		/* IPv6 with its prefix, or family 0 */
	struct sg_conf_addr gateway;		/* default router, or family 0 */
	struct sg_conf_addr gateway6;		/* or family 0 */
	uint32_t mtu;
	uint32_t rx_desc;
	uint32_t tx_desc;
	uint32_t line;				/* of the port's group in the file */
};

struct sg_conf_svc_port {
	char name[SG_CONF_K8S_NAME_SIZE];	/* "" if not given (single-port service) */
	uint8_t proto;				/* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	uint32_t port;				/* served on each VIP */
	uint32_t node_port;			/* served on each node address; 0: none */
	uint32_t target_port;			/* on the endpoints */
	uint32_t line;
};

struct sg_conf_endpoint {
	struct sg_conf_addr address;
	uint8_t ready;				/* EndpointConditions, 0 or 1 */
	uint8_t serving;
	uint8_t terminating;
	uint32_t weight;			/* Maglev share; 0 takes no new flows */
	uint32_t line;
};

struct sg_conf_service {
	char namespace[SG_CONF_K8S_NAME_SIZE];
	char name[SG_CONF_K8S_NAME_SIZE];
	uint8_t type;				/* enum sg_conf_svc_type */
	uint8_t mode;				/* enum sg_conf_mode, default_mode if not given */
	uint8_t affinity;			/* 1: session_affinity "ClientIP" */
	uint8_t local;				/* 1: external_traffic_policy "Local" */
	/*
	 * SG_CONF_FAM_* it serves: those of its VIPs for a LoadBalancer, of its
	 * endpoints (or, with none, of the node addresses) for a NodePort.
	 * Every endpoint belongs to one of them.
	 */
	uint8_t families;
	uint32_t affinity_timeout;		/* seconds; 0 without affinity */
	struct sg_conf_addr *vips;		/* none for a NodePort */
	uint32_t n_vips;
	struct sg_conf_addr *source_ranges;	/* host bits zero; none: every source */
	uint32_t n_source_ranges;
	struct sg_conf_svc_port *ports;
	uint32_t n_ports;
	struct sg_conf_endpoint *endpoints;
	uint32_t n_endpoints;
	uint32_t line;
};

struct sg_conf_tables {
	uint32_t flows;				/* per worker */
	uint32_t flows_v6;			/* of which IPv6 at most; 0: no separate cap */
	uint32_t services;			/* service ports */
	uint32_t service_keys;
	uint32_t maglev_max_size;		/* a prime */
	uint32_t neighbours;
	uint32_t mbufs;				/* per socket */
};

/* Inclusive, min < max. */
struct sg_conf_port_range {
	uint32_t min;
	uint32_t max;
};

/* Seconds. */
struct sg_conf_timeouts {
	uint32_t tcp_syn;			/* handshake not complete */
	uint32_t tcp_established;
	uint32_t tcp_fin;			/* closing: a FIN seen */
	uint32_t tcp_close;			/* after a RST */
	uint32_t udp;				/* seen one way */
	uint32_t udp_assured;			/* seen both ways */
	uint32_t icmp;
	uint32_t neighbour;			/* neighbour entry lifetime */
};

/* Where the Kubernetes credentials come from (kubernetes.source). */
enum sg_conf_k8s_source {
	SG_CONF_K8S_NONE = 0,		/* no kubernetes group: static services only */
	SG_CONF_K8S_IN_CLUSTER,		/* service account of the pod */
	SG_CONF_K8S_KUBECONFIG,		/* a kubeconfig file */
};

/* The kubernetes group; absent, source is SG_CONF_K8S_NONE. */
struct sg_conf_kubernetes {
	uint8_t source;				/* enum sg_conf_k8s_source */
	char *kubeconfig;			/* path as written; NULL unless KUBECONFIG */
	char *context;				/* NULL: the file's current-context */
	char *service_account;			/* in-cluster token and ca.crt directory;
						 * NULL: the pod's default */
	uint32_t page_size;			/* objects per list request (limit) */
	uint32_t watch_timeout;			/* seconds of a watch (timeoutSeconds) */
	uint32_t request_timeout;		/* seconds for a connection or a list page */
	uint32_t line;				/* of the group; 0 when absent */
};

/*
 * The failover group: several gateways agreeing through Leases in one
 * namespace. Absent (line 0): this gateway answers for every VIP, as
 * before, and is the leader.
 */
struct sg_conf_failover {
	char *name;				/* this gateway: Lease svcgw-<name> */
	char *namespace;			/* where the Leases live */
	char *leader_lease;			/* the shared Lease of the leader */
	uint32_t lease_duration;		/* seconds (leaseDurationSeconds) */
	uint32_t renew_interval_ms;		/* between renewals of our Leases */
	uint32_t announce_count;		/* gratuitous ARP / NA on taking a VIP */
	uint32_t announce_interval_ms;		/* between those */
	uint32_t announce_refresh;		/* seconds between refreshes; 0: none */
	uint32_t line;				/* of the group; 0 when absent */
};

/* An inclusive range of addresses of one family, first <= last; len full. */
struct sg_conf_addr_range {
	struct sg_conf_addr first;
	struct sg_conf_addr last;
};

/* One address pool of lb.pools (lib/ipam hands its addresses out). */
struct sg_conf_pool {
	char name[SG_CONF_K8S_NAME_SIZE];
	char **addresses;			/* as written: CIDR, "first-last" or one address */
	uint32_t n_addresses;
	/* addresses[i] as a range: a CIDR without its network address and,
	 * for IPv4, its broadcast address unless all_addresses (/31, /32,
	 * /127 and /128 keep every address). */
	struct sg_conf_addr_range ranges[SG_CONF_MAX_POOL_RANGES];
	uint8_t auto_assign;			/* 0: only services that ask for it */
	uint8_t all_addresses;
	char **namespaces;			/* none: every namespace */
	uint32_t n_namespaces;
	uint32_t priority;			/* lower is tried first */
	uint32_t line;
};

/* The lb group: svcgw as the cluster's LoadBalancer provider; line 0 when absent. */
struct sg_conf_lb {
	uint8_t allocate;			/* this gateway writes allocations */
	uint8_t default_class;			/* class-less LoadBalancers are ours too */
	struct sg_conf_pool *pools;
	uint32_t n_pools;
	uint32_t line;
};

struct sg_conf {
	char *path;				/* the file, as given to sg_conf_load() */
	char **eal;				/* extra EAL arguments */
	uint32_t n_eal;
	uint32_t *workers;			/* worker lcore ids, distinct, as listed */
	uint32_t n_workers;
	struct sg_conf_port *ports;		/* the index is the port's number */
	uint32_t n_ports;
	/* Where NodePorts are served; by default the addresses (IPv4 and IPv6)
	 * of the external and one-arm ports. */
	struct sg_conf_addr *node_addrs;
	uint32_t n_node_addrs;
	struct sg_conf_addr *snat_addrs;
	uint32_t n_snat_addrs;
	struct sg_conf_port_range snat_ports;	/* SNAT source ports, split among workers */
	uint8_t default_mode;			/* enum sg_conf_mode */
	uint32_t gue_port;
	struct sg_conf_tables tables;
	struct sg_conf_timeouts timeouts;
	uint32_t flow_rate;			/* new flows/s per worker; 0: no limit */
	struct sg_conf_kubernetes kubernetes;	/* the Kubernetes API, if used */
	struct sg_conf_failover failover;	/* several gateways, if used */
	struct sg_conf_lb lb;			/* address pools, if any */
	struct sg_conf_service *services;	/* the static service list, may be empty */
	uint32_t n_services;
	struct sg_conf_lines *lines;		/* private: for sg_conf_reload_check() */
};

/*
 * Read and validate the file at path. On success *out is a new sg_conf
 * (free it with sg_conf_free()) and err holds "". On failure *out is NULL
 * and err holds the one-line reason (truncated to errlen, always
 * NUL-terminated if errlen > 0; err may be NULL if errlen is 0).
 * Returns 0, or:
 *  -EINVAL  path or out NULL; err NULL with errlen > 0 (err not written);
 *           or the file is not a valid configuration (err says why);
 *  -ENOENT, -EACCES, -EISDIR, ...  the file cannot be opened or read
 *           (err: "<path>: cannot open: <strerror>", or "cannot read");
 *  -EFBIG   the file is larger than 64 MiB;
 *  -ENOMEM  out of memory.
 */
int sg_conf_load(const char *path, struct sg_conf **out, char *err, size_t errlen);

/* Free a configuration; NULL is harmless. */
void sg_conf_free(struct sg_conf *c);

/*
 * May nc replace oc without a restart? A reload may change the services and
 * their endpoints, node_addresses, snat_addresses, default_mode and
 * gue_port; everything else (eal, workers, ports, snat_ports, tables,
 * timeouts, flow_rate) is fixed when EAL, ports and tables are set up, and
 * kubernetes when the API client starts.
 * Values are compared after defaults, so spelling out a default is no
 * change. err is written as for sg_conf_load(), naming the first fixed
 * setting that differs, with its line in nc's file:
 *   svcgw.conf:9: workers: cannot change on reload (restart svcgw)
 * Returns 0 if nc may replace oc, or:
 *  -EINVAL  oc or nc NULL, err NULL with errlen > 0;
 *  -EPERM   a fixed setting differs.
 */
int sg_conf_reload_check(const struct sg_conf *oc, const struct sg_conf *nc,
			 char *err, size_t errlen);

/*
 * Names as the file spells them, and back. *_name() returns "?" for a value
 * out of range; *_parse() returns the value (>= 0), or -EINVAL for an
 * unknown or NULL name. Names are case-sensitive, as in Kubernetes.
 */
const char *sg_conf_mode_name(unsigned int mode);	/* "nat", "dsr-gue", ... */
int sg_conf_mode_parse(const char *name);
const char *sg_conf_type_name(unsigned int type);	/* "LoadBalancer", "NodePort" */
int sg_conf_type_parse(const char *name);
const char *sg_conf_proto_name(unsigned int proto);	/* IPPROTO_TCP: "TCP", ... */
int sg_conf_proto_parse(const char *name);		/* "TCP": IPPROTO_TCP, ... */
const char *sg_conf_role_name(unsigned int role);	/* "external", "internal", "both" */
int sg_conf_role_parse(const char *name);
const char *sg_conf_k8s_source_name(unsigned int source);	/* "in-cluster", "kubeconfig" */
int sg_conf_k8s_source_parse(const char *name);

/*
 * One entry of a pool's addresses into r: one address, "first-last" (one
 * family, first not above last) or a CIDR ("network/length", host bits zero). A CIDR
 * leaves out its network address and, in IPv4, its broadcast address,
 * which hosts and routers on a segment treat specially, unless all is
 * non-zero; /31, /32, /127 and /128 keep every address. Returns 0, or -1
 * with the reason in why ("\"x\" is not an IP address").
 */
int sg_conf_range_parse(const char *s, unsigned int all, struct sg_conf_addr_range *r,
			char *why, size_t whylen);

/*
 * Format a raw address (family SG_CONF_V4 with 4 bytes or SG_CONF_V6 with 16,
 * network order) into buf, for logs: the result can go straight into a
 * "%s". Returns buf, holding "?" for an unknown family or a NULL address,
 * cut short if size is below SG_CONF_ADDR_STRLEN; "" (not buf) if buf is
 * NULL or size 0.
 */
const char *sg_conf_ip_str(unsigned int family, const void *addr, char *buf, size_t size);

/*
 * Parse one IP address as inet_pton() writes them (no length, no white
 * space) into a, with its full length. family: SG_CONF_V4, SG_CONF_V6, or 0
 * for either. 0, or -EINVAL (a zeroed) if s is not one of that family or
 * an argument is NULL.
 */
int sg_conf_ip_parse(const char *s, unsigned int family, struct sg_conf_addr *a);

/* As sg_conf_ip_str(), with "/len" when a->len is not the full length. */
const char *sg_conf_addr_str(const struct sg_conf_addr *a, char *buf, size_t size);

#endif /* SG_CONF_H */
