/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's state and the pieces of app/svcgw that share it: ports
 * (ports.c), the control thread and the workers' lcores (control.c), the
 * static service list turned into table entries (services.c), telemetry
 * (telemetry.c). main.c owns the process: arguments, EAL, exit codes.
 */
#ifndef SG_APP_H
#define SG_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rte_mempool.h>

#include "sg_log.h"
#include "conf.h"
#include "dp.h"

extern int sg_logtype_svcgw;

/* Exit codes: 2 for a configuration refused before anything started. */
#define SG_EXIT_RUNTIME 1
#define SG_EXIT_CONFIG 2

struct app_services;

struct sg_app {
	struct sg_conf *conf;			/* the running configuration */
	struct sg_dp_ctx ctx;			/* what the workers share */
	struct sg_dp_worker *workers[SG_DP_MAX_WORKERS];	/* ctx.n_workers of them */
	unsigned int worker_lcore[SG_DP_MAX_WORKERS];
	struct rte_mempool *pools[RTE_MAX_NUMA_NODES];
	struct sg_svc_table *svc;
	struct sg_neigh_table *neigh;
	struct app_services *services;
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
 * services.c: the services and addresses of a config into the tables.
 * app_services_apply() publishes what changed, removes what went away and
 * updates owned addresses; on error (reported in err, one line) the tables
 * may hold part of the new config, which the next apply fixes.
 */
struct app_services *app_services_create(void);
/* Whether every service of c can be compiled and forwarded; needs no EAL. */
int app_services_check(const struct sg_conf *c, char *err, size_t errlen);
void app_services_free(struct app_services *s);
int app_services_apply(struct sg_app *a, const struct sg_conf *c, char *err, size_t errlen);
/* The "namespace/name:port/proto" of a published service id, or NULL. */
const char *app_services_name(const struct app_services *s, uint32_t id);

/* telemetry.c */
int app_telemetry_init(void);

#endif /* SG_APP_H */
