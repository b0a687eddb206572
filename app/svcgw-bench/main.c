/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench: how fast svcgw's workers forward, next to a MAC-swapping
 * baseline measured in the same run. Prints Mpps, TSC cycles per packet
 * and the ratio to the baseline per scenario (per worker with --workers),
 * or JSON with --json. Asserts nothing about time; exits non-zero only if
 * a scenario could not run or forwarded nothing.
 *
 *   svcgw-bench [--quick] [--json] [--workers N] [--seconds S] [--repeat N]
 *               [--scenario NAME]... [--hugepages] [--one-core] [--list]
 *               [-- EAL args]
 *   svcgw-bench --line-rate ...   (a real port toward a gateway: lr_main.c)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "svc.h"
#include "bench.h"
#include "linerate.h"
#include "runs.h"

#define NAT SG_SVC_MODE_NAT
#define DNAT SG_SVC_MODE_DNAT
#define DSR SG_SVC_MODE_DSR_IPIP
#define UNLIMITED 0	/* flow_rate */

static const struct bench_scenario scenarios[] = {
	{ "baseline", BENCH_BASELINE, 1000, 1, 10, NAT, 4, UNLIMITED,
	  "the same generator and sink, MAC swap only" },
	{ "est-1k", BENCH_ESTABLISHED, 1000, 1, 10, NAT, 4, UNLIMITED,
	  "established TCP, 1k flows, 1 service x 10 backends" },
	{ "est-100k", BENCH_ESTABLISHED, 100000, 100, 10, NAT, 4, UNLIMITED,
	  "established TCP, 100k flows, 100 services x 10 backends" },
	{ "est-1m", BENCH_ESTABLISHED, 1000000, 10000, 100, NAT, 4, UNLIMITED,
	  "established TCP, 1M flows, 10k services x 100 backends" },
	{ "mem-1m", BENCH_FLOOR, 1000000, 1, 10, NAT, 4, UNLIMITED,
	  "MAC swap and the two lines a flow lookup reads, at random in est-1m's table size" },
	{ "svc-1", BENCH_ESTABLISHED, 100000, 1, 10, NAT, 4, UNLIMITED,
	  "established TCP, 100k flows, 1 service x 10 backends" },
	{ "svc-100k", BENCH_ESTABLISHED, 100000, 100000, 10, NAT, 4, UNLIMITED,
	  "established TCP, 100k flows, 100k services x 10 backends" },
	{ "be-1000", BENCH_ESTABLISHED, 100000, 10, 1000, NAT, 4, UNLIMITED,
	  "established TCP, 100k flows, 10 services x 1000 backends" },
	{ "dnat", BENCH_ESTABLISHED, 100000, 100, 10, DNAT, 4, UNLIMITED,
	  "as est-100k in dnat mode" },
	{ "dsr-ipip", BENCH_ESTABLISHED, 100000, 100, 10, DSR, 4, UNLIMITED,
	  "as est-100k in dsr-ipip mode" },
	{ "est-100k-v6", BENCH_ESTABLISHED, 100000, 100, 10, NAT, 6, UNLIMITED,
	  "as est-100k over IPv6 (78-byte frames)" },
	{ "dnat-v6", BENCH_ESTABLISHED, 100000, 100, 10, DNAT, 6, UNLIMITED,
	  "as est-100k in dnat mode over IPv6" },
	{ "dsr-ipip-v6", BENCH_ESTABLISHED, 100000, 100, 10, DSR, 6, UNLIMITED,
	  "as est-100k in dsr-ipip mode over IPv6" },
	{ "syn-flood", BENCH_NEW, 0, 100, 10, NAT, 4, UNLIMITED,
	  "every packet a new flow (SYN), 100 services x 10 backends" },
	{ "syn-flood-dsr", BENCH_NEW, 0, 100, 10, DSR, 4, UNLIMITED,
	  "syn-flood in dsr-ipip mode" },
	{ "syn-guard", BENCH_NEW, 0, 100, 10, NAT, 4, 100000,
	  "syn-flood with flow_rate 100000: the new flows beyond it dropped" },
	{ "syn-guard-dsr", BENCH_NEW, 0, 100, 10, DSR, 4, 100000,
	  "syn-flood-dsr with flow_rate 100000: the rest sent by Maglev alone" },
	{ "syn-full", BENCH_FULL, 1000000, 100, 10, NAT, 4, UNLIMITED,
	  "syn-flood once it has filled a table of 1M flows: every SYN refused" },
	{ "mixed", BENCH_MIXED, 100000, 100, 10, NAT, 4, UNLIMITED,
	  "established TCP, 100k flows, and one packet in ten a new flow" },
};

/* --quick: each kind, mode and family once, small and short: it runs and it forwards. */
static const struct bench_scenario quick[] = {
	{ "baseline", BENCH_BASELINE, 1000, 1, 10, NAT, 4, UNLIMITED, "MAC swap only" },
	{ "est-1k", BENCH_ESTABLISHED, 1000, 4, 10, NAT, 4, UNLIMITED, "established TCP, 1k flows" },
	{ "mem-1k", BENCH_FLOOR, 1000, 1, 10, NAT, 4, UNLIMITED, "MAC swap and a lookup's memory" },
	{ "dnat", BENCH_ESTABLISHED, 1000, 4, 10, DNAT, 4, UNLIMITED, "dnat, 1k flows" },
	{ "dsr-ipip", BENCH_ESTABLISHED, 1000, 4, 10, DSR, 4, UNLIMITED, "dsr-ipip, 1k flows" },
	{ "est-1k-v6", BENCH_ESTABLISHED, 1000, 4, 10, NAT, 6, UNLIMITED, "IPv6, 1k flows" },
	{ "syn-flood", BENCH_NEW, 0, 4, 10, NAT, 4, UNLIMITED, "every packet a new flow" },
	{ "mixed", BENCH_MIXED, 1000, 4, 10, NAT, 4, UNLIMITED, "established and new" },
	{ "syn-guard", BENCH_NEW, 0, 4, 10, NAT, 4, 1000, "new flows beyond 1000/s dropped" },
	{ "syn-full", BENCH_FULL, 1024, 4, 10, NAT, 4, UNLIMITED, "new flows, the table full" },
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: svcgw-bench [--quick] [--json] [--workers N] [--seconds S] [--repeat N]\n"
		"                   [--scenario NAME]... [--hugepages] [--one-core] [--list]\n"
		"                   [-- EAL args]\n"
		"       svcgw-bench --line-rate --help   (a real port toward a gateway)\n"
		"Runs svcgw's worker on in-process traffic (ring port in, null port out)\n"
		"and reports Mpps, TSC cycles per packet and the ratio to a MAC-swap\n"
		"baseline measured in the same run. --repeat N runs every scenario N\n"
		"times, in rounds with a baseline each, and reports the medians and the\n"
		"range of cycles per packet: on a shared machine one run can be far off.\n"
		"The main lcore generates, lcores 1 to N are the workers; EAL args may\n"
		"place them (-l, -c, --lcores), as --lcores '(0-2)@0' for two workers\n"
		"sharing one core in a smoke run.\n");
}

/* Whether the EAL arguments place the lcores themselves (-l, -c, --lcores). */
static bool
eal_places_lcores(char *const *args, int n)
{
	for (int i = 0; i < n; i++)
		if (strncmp(args[i], "-l", 2) == 0 || strncmp(args[i], "-c", 2) == 0 ||
		    strncmp(args[i], "--lcores", 8) == 0)
			return true;
	return false;
}

/* The lcores the run takes, the main one and one per worker: 0 to N. */
static bool
lcores_enabled(unsigned int n)
{
	if (rte_get_main_lcore() != 0)
		return false;
	for (unsigned int i = 1; i <= n; i++)
		if (!rte_lcore_is_enabled(i))
			return false;
	return true;
}

static const struct bench_scenario *
find(const char *name)
{
	for (size_t i = 0; i < RTE_DIM(scenarios); i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	return NULL;
}

static void
finish(struct bench_result *r, double base_capacity)
{
	uint64_t cycles = 0;

	r->mpps = r->seconds > 0 ? (double)r->packets / r->seconds / 1e6 : 0;
	for (unsigned int w = 0; w < r->workers; w++)
		cycles += r->worker[w].cycles;
	r->cycles_per_packet = r->packets ? (double)cycles / (double)r->packets : 0;
	r->capacity_mpps = r->cycles_per_packet > 0 ?
		r->workers * (double)rte_get_tsc_hz() / r->cycles_per_packet / 1e6 : 0;
	r->ratio = base_capacity > 0 ? r->capacity_mpps / base_capacity : 0;
	r->cycles_min = r->cycles_max = r->cycles_per_packet;
}

/*
 * One scenario over the rounds (runs[k * stride], k < n): the figures of
 * its median run by cycles per packet (runs.h), with the median measured
 * rate and ratio to the baseline, and the range of cycles per packet.
 * Failed runs do not count; if every run failed, the first failure is the
 * summary.
 */
static void
summarize(const struct bench_result *runs, size_t stride, unsigned int n, struct bench_result *s)
{
	double cyc[BENCH_MAX_REPEAT], mpps[BENCH_MAX_REPEAT], ratio[BENCH_MAX_REPEAT];
	bool ok[BENCH_MAX_REPEAT];
	unsigned int good = 0;
	int mid;

	for (unsigned int k = 0; k < n; k++) {
		const struct bench_result *r = &runs[k * stride];

		ok[k] = r->ok;
		cyc[k] = r->cycles_per_packet;
		if (r->ok) {
			mpps[good] = r->mpps;
			ratio[good++] = r->ratio;
		}
	}
	mid = bench_median_run(cyc, ok, n);
	if (mid < 0) {
		*s = runs[0];
		return;
	}
	*s = runs[(size_t)mid * stride];
	s->mpps = bench_median(mpps, good);
	s->ratio = bench_median(ratio, good);
	s->cycles_min = s->cycles_max = s->cycles_per_packet;
	for (unsigned int k = 0; k < n; k++) {
		if (!ok[k])
			continue;
		s->cycles_min = RTE_MIN(s->cycles_min, cyc[k]);
		s->cycles_max = RTE_MAX(s->cycles_max, cyc[k]);
	}
	if (good < n) {
		s->ok = false;
		snprintf(s->error, sizeof(s->error), "%u of %u runs failed", n - good, n);
	}
}

static void
print_text_header(const struct bench_opts *o)
{
	printf("svcgw-bench: %u worker(s), TSC %.2f GHz, %s, %.1f s per scenario\n",
	       o->workers, (double)rte_get_tsc_hz() / 1e9,
	       o->hugepages ? "hugepages" : "4 KiB pages (--no-huge)", o->seconds);
	printf("Mpps: what the workers forward when busy all the time (TSC rate / cycles);\n"
	       "measured: what they forwarded in the window, which the generator may limit.\n");
	printf("%-13s %8s %14s %8s %9s %9s %7s %9s  %s\n", "scenario", "flows", "svc x backends",
	       "Mpps", "measured", "cyc/pkt", "x base", "drops", "notes");
}

static void
print_text(const struct bench_result *r, unsigned int runs)
{
	char svc[32], notes[128] = "";
	size_t off = 0;

	snprintf(svc, sizeof(svc), "%u x %u", r->sc->services, r->sc->backends);
	if (!r->ok) {
		printf("%-13s  FAILED: %s\n", r->sc->name, r->error);
		return;
	}
	if (r->flows_created > 0)
		off += (size_t)snprintf(notes + off, sizeof(notes) - off, "%.2f M new flows/s ",
					(double)r->flows_created / r->seconds / 1e6);
	if (r->idle_polls > r->packets / 1000)
		off += (size_t)snprintf(notes + off, sizeof(notes) - off, "generator-bound ");
	if (runs > 1)
		off += (size_t)snprintf(notes + off, sizeof(notes) - off, "cycles %.0f-%.0f ",
					r->cycles_min, r->cycles_max);
	printf("%-13s %8u %14s %8.2f %9.2f %9.1f %7.2f %9" PRIu64 "  %s\n", r->sc->name,
	       r->sc->kind == BENCH_NEW ? 0 : r->sc->flows,
	       bench_kind_is_base(r->sc->kind) ? "-" : svc, r->capacity_mpps, r->mpps,
	       r->cycles_per_packet, r->ratio, r->dropped, notes);
	if (r->workers > 1)
		for (unsigned int w = 0; w < r->workers; w++)
			printf("%-13s   worker %u: %.2f Mpps measured, %.1f cycles/packet\n", "",
			       w, (double)r->worker[w].packets / r->seconds / 1e6,
			       r->worker[w].packets ?
				       (double)r->worker[w].cycles / r->worker[w].packets : 0);
}

static void
print_json(const struct bench_opts *o, const struct bench_result *res, size_t n)
{
	printf("{\"tsc_hz\": %" PRIu64 ", \"workers\": %u, \"hugepages\": %s, "
	       "\"seconds\": %.3f, \"runs\": %u, \"scenarios\": [",
	       rte_get_tsc_hz(), o->workers, o->hugepages ? "true" : "false", o->seconds,
	       o->repeat);
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];

		printf("%s\n  {\"name\": \"%s\", \"what\": \"%s\", \"ok\": %s, \"flows\": %u, "
		       "\"services\": %u, \"backends\": %u, \"flow_rate\": %u, \"mpps\": %.4f, "
		       "\"measured_mpps\": %.4f, "
		       "\"cycles_per_packet\": %.2f, \"cycles_per_packet_min\": %.2f, "
		       "\"cycles_per_packet_max\": %.2f, \"ratio_to_baseline\": %.4f, "
		       "\"packets\": %" PRIu64 ", \"packets_total\": %" PRIu64
		       ", \"forwarded\": %" PRIu64 ", \"dropped\": %" PRIu64
		       ", \"new_flows\": %" PRIu64 ", \"idle_polls\": %" PRIu64
		       ", \"seconds\": %.4f, \"setup_seconds\": %.3f, \"per_worker\": [",
		       i ? "," : "", r->sc->name, r->sc->what, r->ok ? "true" : "false",
		       r->sc->flows, r->sc->services, r->sc->backends, r->sc->flow_rate,
		       r->capacity_mpps, r->mpps,
		       r->cycles_per_packet, r->cycles_min, r->cycles_max, r->ratio, r->packets,
		       r->packets_total, r->forwarded,
		       r->dropped,
		       r->flows_created, r->idle_polls, r->seconds, r->setup_seconds);
		for (unsigned int w = 0; w < r->workers; w++)
			printf("%s{\"mpps\": %.4f, \"cycles_per_packet\": %.2f}", w ? ", " : "",
			       r->seconds > 0 ? (double)r->worker[w].packets / r->seconds / 1e6 : 0,
			       r->worker[w].packets ?
				       (double)r->worker[w].cycles / r->worker[w].packets : 0);
		printf("]");
		if (!r->ok)
			printf(", \"error\": \"%s\"", r->error);
		printf("}");
	}
	printf("\n]}\n");
}

/*
 * A NAT flood against a full table: every SYN is dropped, as a flow
 * without state could not be translated. DSR forwards them without state.
 */
static bool
refuses_all(const struct bench_scenario *sc)
{
	return sc->kind == BENCH_FULL && sc->mode != DSR;
}

/*
 * Every chosen scenario once, the baseline first: each figure is a ratio
 * to the baseline of its own round. Returns the number of failed runs.
 */
static int
run_round(const struct bench_scenario *const *chosen, size_t n, const struct bench_opts *o,
	  struct bench_result *res)
{
	double base_capacity = 0;
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		struct bench_result *r = &res[i];

		if (bench_run(chosen[i], o, r) != 0 || !r->ok) {
			r->ok = false;
			if (r->error[0] == '\0')
				snprintf(r->error, sizeof(r->error), "set-up failed");
			failed++;
		}
		finish(r, base_capacity);
		if (chosen[i]->kind == BENCH_BASELINE && r->ok) {
			base_capacity = r->capacity_mpps;
			r->ratio = 1.0;
		}
		if (r->ok && refuses_all(r->sc) && (r->flows_created != 0 || r->forwarded != 0)) {
			r->ok = false;
			snprintf(r->error, sizeof(r->error),
				 "the table was not full: %" PRIu64 " flows made, %" PRIu64
				 " packets forwarded", r->flows_created, r->forwarded);
			failed++;
		} else if (r->ok && !refuses_all(r->sc) && r->sc->kind != BENCH_BASELINE &&
			   r->forwarded == 0) {
			r->ok = false;
			snprintf(r->error, sizeof(r->error), "nothing forwarded (%" PRIu64 " dropped)",
				 r->dropped);
			failed++;
		}
		if (!o->json)
			print_text(r, 1);
		fflush(stdout);
	}
	return failed;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "workers", required_argument, NULL, 'w' },
		{ "seconds", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "scenario", required_argument, NULL, 'n' },
		{ "hugepages", no_argument, NULL, 'H' },
		{ "one-core", no_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = { .seconds = 2.0, .workers = 1, .repeat = 1 };
	const struct bench_scenario *chosen[RTE_DIM(scenarios) + 1];
	struct bench_result summary[RTE_DIM(scenarios) + 1], *res;
	size_t n_chosen = 0;
	char lcores[32], *eal[64], *end;
	int opt, eargc = 0, failed = 0;

	/* The other mode has options of its own. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--line-rate") == 0)
			return bench_lr_main(argc, argv);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'w':
			o.workers = (unsigned int)strtoul(optarg, NULL, 10);
			if (o.workers < 1 || o.workers >= RTE_MAX_LCORE || o.workers > SG_DP_MAX_WORKERS) {
				fprintf(stderr, "svcgw-bench: --workers: 1 to %u\n", SG_DP_MAX_WORKERS);
				return 2;
			}
			break;
		case 's':
			o.seconds = strtod(optarg, NULL);
			if (!(o.seconds > 0 && o.seconds <= 600)) {
				fprintf(stderr, "svcgw-bench: --seconds: above 0, at most 600\n");
				return 2;
			}
			break;
		case 'r':
			o.repeat = (unsigned int)strtoul(optarg, &end, 10);
			if (*end != '\0' || o.repeat < 1 || o.repeat > BENCH_MAX_REPEAT) {
				fprintf(stderr, "svcgw-bench: --repeat: 1 to %u\n", BENCH_MAX_REPEAT);
				return 2;
			}
			break;
		case 'n':
			chosen[n_chosen] = find(optarg);
			if (chosen[n_chosen] == NULL || n_chosen + 1 >= RTE_DIM(chosen)) {
				fprintf(stderr, "svcgw-bench: no scenario %s (see --list)\n", optarg);
				return 2;
			}
			n_chosen++;
			break;
		case 'H':
			o.hugepages = true;
			break;
		case 'o':
			o.one_core = true;
			break;
		case 'l':
			for (size_t i = 0; i < RTE_DIM(scenarios); i++)
				printf("%-13s %s\n", scenarios[i].name, scenarios[i].what);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	if (o.one_core && o.workers != 1) {
		fprintf(stderr, "svcgw-bench: --one-core runs one worker\n");
		return 2;
	}
	/* EAL: the main lcore generates, lcores 1..N are the workers. */
	snprintf(lcores, sizeof(lcores), "0-%u", o.one_core ? 0 : o.workers);
	eal[eargc++] = argv[0];
	if (!eal_places_lcores(&argv[optind], argc - optind)) {
		eal[eargc++] = "-l";
		eal[eargc++] = lcores;
	}
	eal[eargc++] = "--no-pci";
	eal[eargc++] = "--no-telemetry";
	/* Nothing on disk: --in-memory on hugepages, --no-shconf without. */
	eal[eargc++] = o.hugepages ? "--in-memory" : "--no-shconf";
	if (!o.hugepages)
		eal[eargc++] = "--no-huge";
	eal[eargc++] = "-m";
	eal[eargc++] = o.quick ? "1024" : "4096";
	eal[eargc++] = "--log-level=lib.eal:error";
	/* The daemon's set-up is told once per scenario: only its warnings. */
	eal[eargc++] = "--log-level=svcgw.*:warning";
	for (int i = optind; i < argc && eargc < (int)RTE_DIM(eal) - 1; i++)
		eal[eargc++] = argv[i];
	eal[eargc] = NULL;
	rte_openlog_stream(stderr);
	if (rte_eal_init(eargc, eal) < 0) {
		fprintf(stderr, "svcgw-bench: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (!lcores_enabled(o.one_core ? 0 : o.workers)) {
		fprintf(stderr, "svcgw-bench: the EAL lcores must include %s, the main one 0\n", lcores);
		rte_eal_cleanup();
		return 2;
	}

	if (o.quick) {
		o.seconds = 0.05;
		for (size_t i = 0; i < RTE_DIM(quick); i++)
			chosen[i] = &quick[i];
		n_chosen = RTE_DIM(quick);
	} else if (n_chosen == 0) {
		for (size_t i = 0; i < RTE_DIM(scenarios); i++)
			chosen[i] = &scenarios[i];
		n_chosen = RTE_DIM(scenarios);
	} else if (chosen[0]->kind != BENCH_BASELINE) {
		/* Every figure is a ratio to the baseline: it always runs first. */
		memmove(&chosen[1], &chosen[0], n_chosen * sizeof(chosen[0]));
		chosen[0] = &scenarios[0];
		n_chosen++;
	}

	res = calloc(o.repeat * n_chosen, sizeof(*res));
	if (res == NULL) {
		fprintf(stderr, "svcgw-bench: out of memory\n");
		rte_eal_cleanup();
		return 1;
	}
	if (!o.json)
		print_text_header(&o);
	for (unsigned int round = 0; round < o.repeat; round++) {
		if (!o.json && o.repeat > 1)
			printf("run %u of %u\n", round + 1, o.repeat);
		failed += run_round(chosen, n_chosen, &o, &res[round * n_chosen]);
	}
	for (size_t i = 0; i < n_chosen; i++)
		summarize(&res[i], n_chosen, o.repeat, &summary[i]);
	if (!o.json && o.repeat > 1) {
		printf("median of %u runs, with the range of cycles per packet:\n", o.repeat);
		for (size_t i = 0; i < n_chosen; i++)
			print_text(&summary[i], o.repeat);
	}
	if (o.json)
		print_json(&o, summary, n_chosen);
	free(res);
	rte_eal_cleanup();
	return failed ? 1 : 0;
}
