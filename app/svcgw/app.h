/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's state and the pieces of app/svcgw that share it: ports
 * (ports.c), the control thread and the workers' lcores (control.c), the
 * services of the file and of the cluster turned into table entries
 * (services.c), the Kubernetes client feeding them (kube.c), telemetry
 * (telemetry.c), a hash map for the control thread's indexes (map.c),
 * the LoadBalancer provider (ipam.c).
 * main.c owns the process: arguments, EAL, exit codes.
 */
#ifndef SG_APP_H
#define SG_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_mempool.h>

#include "sg_log.h"
#include "conf.h"
#include "dp.h"
#include "k8s.h"
#include "lease.h"

extern int sg_logtype_svcgw;
extern int sg_logtype_k8s;	/* "svcgw.k8s": lib/k8s's messages and the cluster's services */
extern int sg_logtype_ipam;	/* "svcgw.ipam": allocations, status writes, Events */

/* Exit codes: 2 for a configuration refused before anything started. */
#define SG_EXIT_RUNTIME 1
#define SG_EXIT_CONFIG 2

struct app_services;
struct app_k8s;
struct app_lease;
struct app_ipam;

/*
 * What the lease thread concluded (lease.c), as the control thread copies
 * it: the live gateways, sorted, and whether this one leads.
 */
struct app_membership {
	uint64_t generation;		/* bumped on every change; 0: nothing yet */
	bool valid;
	bool me_live;			/* we hold our heartbeat */
	bool leader;
	uint32_t n_live;
	char live[SG_LEASE_MAX_PEERS][SG_LEASE_NAME_SIZE];
};

/* Which gateway answers for the VIPs, as the control thread applied it (announce.c). */
struct app_announce {
	bool failover;			/* the failover group is configured */
	bool leader;			/* see app_leader_changed() */
	uint64_t generation;		/* of the membership applied */
	struct app_membership m;
	uint64_t takeovers;		/* VIPs taken since start */
	uint64_t handovers;		/* VIPs given up since start */
	uint64_t changes;		/* memberships applied */
	uint64_t last_change_us;	/* CLOCK_REALTIME of the last one */
};

struct sg_app {
	struct sg_conf *conf;			/* the running configuration */
	struct sg_dp_ctx ctx;			/* what the workers share */
	struct sg_dp_worker *workers[SG_DP_MAX_WORKERS];	/* ctx.n_workers of them */
	unsigned int worker_lcore[SG_DP_MAX_WORKERS];
	struct rte_mempool *pools[RTE_MAX_NUMA_NODES];
	struct sg_svc_table *svc;
	struct sg_neigh_table *neigh;
	struct app_services *services;
	struct app_k8s *k8s;			/* NULL without a kubernetes group */
	struct app_lease *lease;		/* NULL without a failover group */
	struct app_announce announce;
	struct app_ipam *ipam;			/* NULL without an lb group; kube.c owns it */
	uint64_t tsc_per_ms;
	atomic_bool workers_stop;
};

/* Set by the signal handlers, which touch nothing else. */
extern atomic_bool sg_app_stop;		/* SIGTERM, SIGINT: leave */
extern atomic_bool sg_app_reload;	/* SIGHUP: re-read the config */

/*
 * The one daemon state: telemetry callbacks take no argument. sg_app_lock
 * is held by the control thread while it changes the tables, by the
 * telemetry thread while it reads them, and when sg_app goes away; never by
 * a worker.
 */
extern struct sg_app *sg_app;
extern pthread_mutex_t sg_app_lock;

/* Milliseconds of the TSC clock every worker and the control thread share. */
uint64_t app_now_ms(const struct sg_app *a);

/* ports.c: configure and start every port of the config; stop them. */
/* Whether the config's mempool holds what its queues need; needs no EAL. */
int app_ports_check(const struct sg_conf *c, char *err, size_t errlen);
int app_ports_init(struct sg_app *a);
void app_ports_stop(struct sg_app *a);

/* control.c */
int app_tables_init(struct sg_app *a);
int app_workers_start(struct sg_app *a);
/* Run the control thread until SIGTERM or SIGINT; then stop the workers. */
void app_control_run(struct sg_app *a);
/* Take sg_app away from telemetry; then the ports may stop and app_free() run. */
void app_unpublish(void);
void app_free(struct sg_app *a);

/*
 * services.c: services of the file and of the cluster into the tables, by
 * one compiler and one publication path. Control thread, under
 * sg_app_lock.
 *
 * app_services_apply() makes the tables hold the file's services and
 * addresses: it publishes what changed, removes what went away, updates
 * owned addresses, and moves Kubernetes services out of the file's way;
 * on error (reported in err, one line) the tables may hold part of the new
 * config, which the next apply fixes.
 */
struct app_services *app_services_create(void);
/* Whether every service of c can be compiled and forwarded; needs no EAL. */
int app_services_check(const struct sg_conf *c, char *err, size_t errlen);
void app_services_free(struct app_services *s);
int app_services_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen);
/* The "namespace/name:port/proto" of a published service id, or NULL. */
const char *app_services_name(const struct app_services *s, uint32_t id);
/* Where a published service id comes from: "file", "kubernetes", or "?". */
const char *app_services_source(const struct app_services *s, uint32_t id);

/*
 * One change drained from lib/k8s: the service key ("namespace/name") in
 * its new state, owned from here on, or NULL when it is no longer served.
 * Only that service's entries are recompiled and republished. A service
 * that cannot be served is logged once and skipped.
 */
void app_services_k8s_change(struct sg_app *a, const char *key, struct sg_k8s_service *svc);
/* Try the services parked behind a conflict or a full table, if anything left. */
void app_services_k8s_retry(struct sg_app *a);
/* Evaluate key's latest snapshot again: its VIPs (app_ipam_vips()) changed. */
void app_services_k8s_refresh(struct sg_app *a, const char *key);
/*
 * Show every Kubernetes Service held to the LoadBalancer provider again
 * (app_ipam_observe()), then evaluate it: which Services are ours changed.
 */
void app_services_k8s_reobserve(struct sg_app *a);

/* Where the cluster's services stand in the tables. */
struct app_k8s_counts {
	uint32_t services;		/* known: served or skipped */
	uint32_t served;
	uint32_t refused;		/* cannot be forwarded as they are */
	uint32_t parked;		/* behind a conflict or a full table */
	uint32_t entries;		/* service entries of the served ones */
	uint64_t changes;		/* changes applied since start */
	uint64_t publications;		/* changes that changed the tables */
	uint64_t last_publish_us;	/* CLOCK_REALTIME of the last one; 0: none */
	char last_publish[SG_K8S_KEY_SIZE];	/* its service */
};

void app_services_k8s_counts(const struct app_services *s, struct app_k8s_counts *out);
/* state "refused" or "parked"; non-zero stops the walk and is returned. */
typedef int (*app_services_skipped_fn)(const char *key, const char *state, const char *why,
				       void *arg);
int app_services_k8s_skipped(const struct app_services *s, app_services_skipped_fn fn,
			     void *arg);

/*
 * kube.c: the Kubernetes client. app_k8s_create() runs before EAL: it
 * reads the credentials the file names (and nothing else: no request is
 * made), so a missing or malformed one is refused like a config error,
 * "FILE:LINE: kubernetes: why" in err; *out is NULL without a kubernetes
 * group. app_k8s_start() starts the client thread once the tables exist;
 * app_k8s_poll(), each turn of the control loop, applies what it drained
 * (taking sg_app_lock itself) and never waits for the network.
 */
int app_k8s_create(const struct sg_conf *c, struct app_k8s **out, char *err, size_t errlen);
int app_k8s_start(struct sg_app *a);
void app_k8s_poll(struct sg_app *a);
/* SIGHUP: what the client must know of the new file (default_mode). */
void app_k8s_reload(struct sg_app *a, const struct sg_conf *oc, const struct sg_conf *nc);
/* lib/k8s's log callback (sg_k8s_conf.log), for every client the daemon makes. */
void app_k8s_log(void *arg, unsigned int level, const char *msg);
/* Stop the client thread; harmless on NULL and twice. */
void app_k8s_stop(struct app_k8s *k);
void app_k8s_free(struct app_k8s *k);

struct app_k8s_status {
	uint8_t source;			/* enum sg_conf_k8s_source; NONE: no client */
	struct sg_k8s_sync sync;
	uint64_t first_sync_ms;		/* client start to the tables holding the first
					 * full list; 0: not yet */
	uint32_t nodes;			/* in the last Nodes list */
	struct app_k8s_counts counts;
};

/* Under sg_app_lock. Returns 0 (source NONE without a client). */
int app_k8s_status(const struct sg_app *a, struct app_k8s_status *st);

/*
 * lease.c: the lease thread. app_lease_create() runs before EAL, as
 * app_k8s_create() (credentials read, nothing sent); *out is NULL without
 * a failover group. app_lease_membership() copies the membership into
 * *out if its generation is not *gen any more (and updates *gen); it never
 * waits for the network.
 */
struct app_lease_status {
	char name[SG_LEASE_NAME_SIZE];
	char ns[SG_LEASE_NAME_SIZE];
	struct sg_lease_elector hb;
	struct sg_lease_elector leader;
	char leader_holder[SG_LEASE_NAME_SIZE];
	struct sg_lease_peers peers;
	uint64_t now_ms;		/* CLOCK_MONOTONIC of this copy */
	uint64_t listed_ms;		/* of the last successful list; 0 none */
	uint64_t errors;
	char last_error[256];
};

int app_lease_create(const struct sg_conf *c, struct app_lease **out, char *err, size_t errlen);
int app_lease_start(struct sg_app *a);
/* Stop the thread and release our Leases; harmless on NULL and twice. */
void app_lease_stop(struct app_lease *l);
void app_lease_free(struct app_lease *l);
bool app_lease_membership(struct app_lease *l, uint64_t *gen, struct app_membership *out);
void app_lease_status(struct app_lease *l, struct app_lease_status *st);

/*
 * announce.c: which VIPs this gateway answers ARP/NDP for. Control thread,
 * under sg_app_lock. app_announce_vip_flags() is what services.c adds
 * with a VIP it starts to own (SG_NEIGH_ADDR_VIP, with SG_NEIGH_ADDR_QUIET
 * if another gateway owns it), app_announce_vip_new() announces it if it is
 * ours. app_announce_poll() applies a new membership.
 */
void app_announce_init(struct sg_app *a);
uint8_t app_announce_vip_flags(const struct sg_app *a, const struct sg_neigh_key *k);
void app_announce_vip_new(struct sg_app *a, const struct sg_neigh_key *k);
void app_announce_poll(struct sg_app *a);
/* The owner of a VIP by the membership applied: "" if none, NULL without failover. */
const char *app_announce_owner(const struct sg_app *a, uint8_t family, const uint8_t *addr);

/*
 * ipam.c: svcgw as the LoadBalancer provider (lb group): which Services
 * are ours, allocation through lib/ipam, status patches and Events through
 * lib/k8s's writer. Control thread, under sg_app_lock. kube.c creates it
 * (*out NULL without an lb group), feeds it every change before
 * services.c sees it, says when the first full list is in, polls it each
 * turn and passes reloads on.
 */
int app_ipam_create(struct sg_app *a, struct sg_k8s *client, struct app_ipam **out);
void app_ipam_free(struct app_ipam *m);
void app_ipam_observe(struct sg_app *a, const char *key, const struct sg_k8s_service *svc);
void app_ipam_synced(struct sg_app *a);
void app_ipam_poll(struct sg_app *a);
void app_ipam_reload(struct sg_app *a, const struct sg_conf *nc);
/*
 * The seam for leader election: true, this gateway writes allocations
 * (assigns, patches status, posts Events); false, it follows the statuses
 * the writer publishes and serves them. Alone, lb.allocate decides (and a
 * reload that changes it sets it again); with a failover group only the
 * leader writes: announce.c calls this when leadership changes.
 * Becoming the writer re-reads every status first, then fills the gaps.
 */
void app_ipam_set_writer(struct sg_app *a, bool writer);
/*
 * The VIPs to serve for key, if it is ours: what lib/ipam holds for it
 * (true, *vips and *n set); false for a Service that is not ours (its
 * status is served as it is).
 */
bool app_ipam_vips(const struct sg_app *a, const char *key, const struct sg_conf_addr **vips,
		   uint32_t *n);

/* telemetry.c */
int app_telemetry_init(void);

#endif /* SG_APP_H */
