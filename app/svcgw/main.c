/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw: the process. Arguments, the configuration, EAL, then the control
 * thread until a signal says stop. Exit codes: 0 after a clean stop, 2 when
 * the configuration is refused before anything starts, 1 for anything else.
 *
 *   svcgw -c FILE [--check] [EAL arguments]
 *
 * What is refused before EAL, with exit code 2: the file (every setting,
 * every static service compiled, the mempool against the queues), and, when
 * starting with a kubernetes group, the credentials it names (the
 * kubeconfig or the pod's service account, read and parsed; no request is
 * made). --check validates the file alone: it is run where the file is
 * written, which is seldom where the credentials are. What only the API
 * server can tell (an unknown CA, a revoked token) is logged and retried
 * once running, while the file's services are served.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "app.h"

_Static_assert(SG_CONF_MAX_PORTS <= SG_DP_MAX_PORTS, "every configured port fits the data path");

/* Program name, the file's eal list, "-a DEV" or "--vdev=DEV" per port, the command line's. */
#define EAL_ARGS_MAX (1 + SG_CONF_MAX_EAL_ARGS + 2 * SG_CONF_MAX_PORTS + 64)

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s -c FILE [--check] [EAL arguments]\n"
		"  -c FILE   configuration (libconfig); see config/svcgw.conf\n"
		"  --check   validate FILE and exit: 0 if valid, 2 if not\n"
		"EAL arguments follow those of the file's `eal` setting.\n"
		"Signals: SIGTERM/SIGINT stop, SIGHUP re-reads FILE.\n", prog);
}

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		atomic_store(&sg_app_reload, true);
	else
		atomic_store(&sg_app_stop, true);
}

static int
signals_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGHUP, &sa, NULL) != 0)
		return -errno;
	return 0;
}

/*
 * A port's device for EAL. Virtual devices are created with --vdev; the
 * poll-mode drivers whose queue count is a device argument get one queue
 * pair per worker unless the file says otherwise, since every queue of
 * theirs receives packets and only the workers' queues are polled.
 */
static char *
device_arg(const char *device, unsigned int n_workers)
{
	static const struct {
		const char *driver;
		const char *queues;
	} per_queue[] = {
		{ "net_af_packet", "qpairs" },
		{ "net_af_xdp", "queue_count" },
	};
	char *s;

	if (strncmp(device, "net_", 4) != 0)
		return strdup(device);
	for (size_t i = 0; i < RTE_DIM(per_queue); i++) {
		size_t dl = strlen(per_queue[i].driver);
		char key[32];

		snprintf(key, sizeof(key), "%s=", per_queue[i].queues);
		if (strncmp(device, per_queue[i].driver, dl) != 0 || strstr(device, key) != NULL)
			continue;
		if (asprintf(&s, "--vdev=%s,%s%u", device, key, n_workers) < 0)
			return NULL;
		return s;
	}
	if (asprintf(&s, "--vdev=%s", device) < 0)
		return NULL;
	return s;
}

static void
eal_args_free(char **args, int n)
{
	for (int i = 0; i < n; i++)
		free(args[i]);
}

/* argv for rte_eal_init(): program, the file's eal list, devices, the command line's. */
static int
eal_args(const struct sg_conf *c, const char *prog, char **extra, int n_extra, char **out)
{
	int n = 0;

	out[n++] = strdup(prog);
	for (uint32_t i = 0; i < c->n_eal; i++)
		out[n++] = strdup(c->eal[i]);
	for (uint32_t i = 0; i < c->n_ports; i++) {
		if (strncmp(c->ports[i].device, "net_", 4) != 0)
			out[n++] = strdup("-a");
		out[n++] = device_arg(c->ports[i].device, c->n_workers);
	}
	for (int i = 0; i < n_extra && n < (int)EAL_ARGS_MAX - 1; i++)
		out[n++] = strdup(extra[i]);
	out[n] = NULL;
	for (int i = 0; i < n; i++)
		if (out[i] == NULL) {
			eal_args_free(out, n);
			return -ENOMEM;
		}
	return n;
}

/* Worker lcores must be EAL lcores other than the main one: checked once EAL knows them. */
static int
check_workers(const struct sg_conf *c)
{
	if (c->n_workers > SG_DP_MAX_WORKERS) {
		fprintf(stderr, "%s: workers: %u workers, at most %u\n", c->path, c->n_workers,
			SG_DP_MAX_WORKERS);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_workers; i++) {
		unsigned int l = c->workers[i];

		if (!rte_lcore_is_enabled(l) || l == rte_get_main_lcore()) {
			fprintf(stderr, "%s: workers: lcore %u is %s\n", c->path, l,
				l == rte_get_main_lcore() ?
					"EAL's main lcore, which runs the control thread" :
					"not one of EAL's lcores (-l / --lcores)");
			return -EINVAL;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false;
	char *extra[64], *eargv[EAL_ARGS_MAX], *eal_owned[EAL_ARGS_MAX];
	int n_extra = 0, eargc, rc;
	char err[1024];
	struct app_k8s *k8s = NULL;
	struct app_lease *lease = NULL;
	struct sg_conf *c;
	struct sg_app *a;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--check") == 0) {
			check = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout, argv[0]);
			return 0;
		} else if (n_extra < (int)RTE_DIM(extra)) {
			extra[n_extra++] = argv[i];
		} else {
			fprintf(stderr, "%s: too many arguments\n", argv[0]);
			return SG_EXIT_CONFIG;
		}
	}
	if (path == NULL) {
		usage(stderr, argv[0]);
		return SG_EXIT_CONFIG;
	}
	if (sg_conf_load(path, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return SG_EXIT_CONFIG;
	}
	if (app_services_check(c, err, sizeof(err)) != 0 ||
	    app_ports_check(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		sg_conf_free(c);
		return SG_EXIT_CONFIG;
	}
	if (check) {
		sg_conf_free(c);
		return 0;
	}
	rc = app_k8s_create(c, &k8s, err, sizeof(err));
	if (rc == 0) {
		rc = app_lease_create(c, &lease, err, sizeof(err));
		if (rc != 0)
			app_k8s_free(k8s);
	}
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		sg_conf_free(c);
		return rc == -ENOMEM ? SG_EXIT_RUNTIME : SG_EXIT_CONFIG;
	}

	eargc = eal_args(c, argv[0], extra, n_extra, eargv);
	if (eargc < 0) {
		fprintf(stderr, "svcgw: out of memory\n");
		app_k8s_free(k8s);
		app_lease_free(lease);
		sg_conf_free(c);
		return SG_EXIT_RUNTIME;
	}
	/* rte_eal_init() permutes and overwrites its argv: free from a copy. */
	memcpy(eal_owned, eargv, sizeof(eargv[0]) * (size_t)eargc);
	/* Logs go to stderr; stdout is left to whoever runs us. */
	rte_openlog_stream(stderr);
	rc = rte_eal_init(eargc, eargv);
	if (rc < 0) {
		fprintf(stderr, "svcgw: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
		rc = SG_EXIT_RUNTIME;
		goto free_args;
	}
	if (check_workers(c) != 0) {
		rc = SG_EXIT_CONFIG;
		goto eal_cleanup;
	}

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		rc = SG_EXIT_RUNTIME;
		goto eal_cleanup;
	}
	a->conf = c;
	a->k8s = k8s;
	k8s = NULL;	/* app_free() frees it */
	a->lease = lease;
	lease = NULL;
	app_announce_init(a);
	pthread_mutex_lock(&sg_app_lock);
	sg_app = a;
	pthread_mutex_unlock(&sg_app_lock);
	rc = signals_init();
	if (rc == 0)
		rc = app_ports_init(a);
	if (rc == 0)
		rc = app_tables_init(a);
	if (rc == 0) {
		rc = app_services_apply(a, c, err, sizeof(err));
		if (rc != 0)
			SG_LOG(svcgw, ERR, "%s", err);
	}
	if (rc == 0)
		rc = app_telemetry_init();
	if (rc == 0)
		rc = app_workers_start(a);
	if (rc == 0 && (app_k8s_start(a) != 0 || app_lease_start(a) != 0)) {
		atomic_store(&a->workers_stop, true);
		rte_eal_mp_wait_lcore();
		rc = -1;
	}
	if (rc == 0)
		app_control_run(a);

	app_unpublish();
	app_ports_stop(a);
	app_free(a);
	c = NULL;	/* app_free() freed the running config */
	rc = rc == 0 ? 0 : SG_EXIT_RUNTIME;
eal_cleanup:
	rte_eal_cleanup();
free_args:
	eal_args_free(eal_owned, eargc);
	app_k8s_free(k8s);
	app_lease_free(lease);
	sg_conf_free(c);
	return rc;
}
