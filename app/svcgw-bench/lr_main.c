/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench --line-rate: options, EAL, the report (text or --json).
 * The run itself is linerate.c's.
 *
 *   svcgw-bench --line-rate --port DEV --addr A.B.C.D --gateway A.B.C.D
 *               --vip A.B.C.D:PORT [--gateway-mac MAC] [--rate PPS]
 *               [--duration S] [--count N] [--flows N] [--size BYTES]
 *               [--drain S] [--json] [-- EAL args]
 *
 * DEV is a virtual device as EAL's --vdev takes it ("net_af_packet0,
 * iface=eth0"), or the number of a port EAL finds itself (a PCI NIC
 * allowed with -a after --).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>

#include "frame.h"
#include "linerate.h"

static atomic_bool stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, true);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: svcgw-bench --line-rate --port DEV --addr A.B.C.D --gateway A.B.C.D\n"
		"                   --vip A.B.C.D:PORT [--gateway-mac MAC] [--rate PPS]\n"
		"                   [--duration S] [--count N] [--flows N] [--size BYTES]\n"
		"                   [--drain S] [--json] [-- EAL args]\n"
		"Sends UDP probes at a paced rate out of DEV (an EAL vdev such as\n"
		"net_af_packet0,iface=eth0, or a port number) to the VIP through the\n"
		"gateway, and counts the replies the backends echo: loss, achieved rate,\n"
		"per-backend spread, latency. --addr is ours: the mode answers ARP for it.\n"
		"Defaults: --rate 10000 --duration 2 --count rate x duration --flows 256\n"
		"--size 64 (with FCS) --drain 1.\n");
}

static int
parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "svcgw-bench: --%s: %s is not a number from %g to %g\n", opt, s,
			lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_ip4(const char *opt, const char *s, uint8_t out[4])
{
	if (inet_pton(AF_INET, s, out) != 1) {
		fprintf(stderr, "svcgw-bench: --%s: %s is not an IPv4 address\n", opt, s);
		return -1;
	}
	return 0;
}

static int
parse_vip(const char *s, uint8_t vip[4], uint16_t *port)
{
	char buf[64], *colon;
	double p;

	if (strlen(s) >= sizeof(buf) || (colon = strrchr(strcpy(buf, s), ':')) == NULL) {
		fprintf(stderr, "svcgw-bench: --vip: ADDRESS:PORT, not %s\n", s);
		return -1;
	}
	*colon = '\0';
	if (parse_ip4("vip", buf, vip) != 0 || parse_num("vip", colon + 1, 1, 65535, &p) != 0 ||
	    p != (double)(uint16_t)p)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static void
fmt_mac(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static double
lat_us(const struct bench_lr_result *r, double q)
{
	return (double)bench_lat_quantile(&r->lat, q) / r->tsc_hz * 1e6;
}

static double
mean_us(const struct bench_lr_result *r)
{
	return r->lat.n ? (double)r->lat.sum / (double)r->lat.n / r->tsc_hz * 1e6 : 0;
}

static void
print_text(const struct bench_lr_conf *c, const struct bench_lr_result *r)
{
	char vip[INET_ADDRSTRLEN], gmac[18];

	inet_ntop(AF_INET, c->vip, vip, sizeof(vip));
	fmt_mac(r->gateway_mac, gmac);
	printf("svcgw-bench line rate: %s -> %s:%u/udp via %s, %u flows, %u-byte frames\n",
	       c->port_name, vip, c->vport, gmac, c->flows, c->frame_len + BENCH_FCS_LEN);
	printf("warm-up   %" PRIu64 " sent, %" PRIu64 " answered (not counted below)\n",
	       r->warm_sent, r->warm_replies);
	printf("sent      %" PRIu64 " in %.3f s: %.1f kpps (%.4f Mpps; asked %.1f kpps)%s\n",
	       r->sent, r->send_seconds, r->rate_pps / 1e3, r->rate_pps / 1e6,
	       (double)c->rate / 1e3, r->tx_full ? ", port full for some" : "");
	printf("received  %" PRIu64 ", loss %.3f %%; duplicates %" PRIu64 ", reordered %" PRIu64
	       ", bad %" PRIu64 ", port refused %" PRIu64 "\n",
	       r->received, r->loss_pct, r->duplicates, r->reordered, r->bad, r->tx_full);
	if (r->lat.n)
		printf("latency   p50 %.1f us, p99 %.1f us, max %.1f us (min %.1f, mean %.1f)\n",
		       lat_us(r, 0.5), lat_us(r, 0.99), lat_us(r, 1), lat_us(r, 0), mean_us(r));
	else
		printf("latency   no replies\n");
	printf("backends  %u:", r->backends);
	for (unsigned int i = 0; i < r->backends; i++)
		printf("%s %s %" PRIu64 " (%.1f %%)", i ? "," : "", r->backend[i].id,
		       r->backend[i].replies,
		       r->received ? 100.0 * (double)r->backend[i].replies / (double)r->received : 0);
	if (r->backend_unknown)
		printf(", unnamed %" PRIu64, r->backend_unknown);
	printf("\n");
}

static void
print_json(const struct bench_lr_conf *c, const struct bench_lr_result *r, bool ok)
{
	char vip[INET_ADDRSTRLEN], gmac[18], pmac[18];

	inet_ntop(AF_INET, c->vip, vip, sizeof(vip));
	fmt_mac(r->gateway_mac, gmac);
	fmt_mac(r->port_mac, pmac);
	printf("{\"mode\": \"line-rate\", \"ok\": %s, \"port\": \"%s\", \"port_mac\": \"%s\", "
	       "\"gateway_mac\": \"%s\", \"vip\": \"%s\", \"vport\": %u, \"flows\": %u, "
	       "\"frame_size\": %u, \"rate_asked_pps\": %" PRIu64 ",\n",
	       ok ? "true" : "false", c->port_name, pmac, gmac, vip, c->vport, c->flows,
	       c->frame_len + BENCH_FCS_LEN, c->rate);
	printf(" \"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"loss_pct\": %.4f, "
	       "\"duplicates\": %" PRIu64 ", \"reordered\": %" PRIu64 ", \"bad\": %" PRIu64
	       ", \"port_refused\": %" PRIu64 ", \"other_frames\": %" PRIu64
	       ", \"arp_answered\": %" PRIu64 ", \"warm_sent\": %" PRIu64
	       ", \"warm_replies\": %" PRIu64 ",\n",
	       r->sent, r->received, r->loss_pct, r->duplicates, r->reordered, r->bad, r->tx_full,
	       r->other, r->arp_answered, r->warm_sent, r->warm_replies);
	printf(" \"send_seconds\": %.4f, \"rate_pps\": %.1f, \"mpps\": %.6f,\n", r->send_seconds,
	       r->rate_pps, r->rate_pps / 1e6);
	printf(" \"latency_us\": {\"samples\": %" PRIu64 ", \"min\": %.2f, \"mean\": %.2f, "
	       "\"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, \"p999\": %.2f, \"max\": %.2f},\n",
	       r->lat.n, lat_us(r, 0), mean_us(r), lat_us(r, 0.5), lat_us(r, 0.9),
	       lat_us(r, 0.99), lat_us(r, 0.999), lat_us(r, 1));
	printf(" \"backends\": {");
	for (unsigned int i = 0; i < r->backends; i++)
		printf("%s\"%s\": %" PRIu64, i ? ", " : "", r->backend[i].id, r->backend[i].replies);
	printf("}, \"backend_unnamed\": %" PRIu64, r->backend_unknown);
	if (!ok)
		printf(",\n \"error\": \"%s\"", r->error);
	printf("}\n");
}

/* A port name for rte_eth_dev_get_port_by_name(): the vdev's, without its arguments. */
static int
find_port(const char *dev, uint16_t *port_id)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	size_t n = strcspn(dev, ",");
	double id;

	if (strncmp(dev, "net_", 4) != 0) {
		if (parse_num("port", dev, 0, RTE_MAX_ETHPORTS - 1, &id) != 0)
			return -1;
		*port_id = (uint16_t)id;
		return rte_eth_dev_is_valid_port(*port_id) ? 0 : -1;
	}
	if (n >= sizeof(name))
		return -1;
	memcpy(name, dev, n);
	name[n] = '\0';
	return rte_eth_dev_get_port_by_name(name, port_id);
}

int
bench_lr_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "line-rate", no_argument, NULL, 'L' },
		{ "port", required_argument, NULL, 'p' },
		{ "addr", required_argument, NULL, 'a' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "gateway-mac", required_argument, NULL, 'm' },
		{ "vip", required_argument, NULL, 'v' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'c' },
		{ "flows", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "drain", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench_lr_result r;
	struct bench_lr_conf c = {
		.rate = 10000, .duration = 2, .flows = 256, .frame_len = 60, .drain = 1,
		.warmup = 3, .stop = &stop_flag,
	};
	bool json = false, have_addr = false, have_gw = false, have_vip = false;
	char vdev[256], *eal[64];
	int opt, eargc = 0, rc;
	double v;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'L':
			break;
		case 'p':
			c.port_name = optarg;
			break;
		case 'a':
			if (parse_ip4("addr", optarg, c.addr) != 0)
				return 2;
			have_addr = true;
			break;
		case 'g':
			if (parse_ip4("gateway", optarg, c.gateway) != 0)
				return 2;
			have_gw = true;
			break;
		case 'm': {
			struct rte_ether_addr mac;

			/* Before EAL: rte_ether_unformat_addr needs none of it. */
			if (rte_ether_unformat_addr(optarg, &mac) != 0) {
				fprintf(stderr, "svcgw-bench: --gateway-mac: %s is not a MAC\n",
					optarg);
				return 2;
			}
			memcpy(c.gateway_mac, mac.addr_bytes, 6);
			c.have_gateway_mac = true;
			break;
		}
		case 'v':
			if (parse_vip(optarg, c.vip, &c.vport) != 0)
				return 2;
			have_vip = true;
			break;
		case 'r':
			if (parse_num("rate", optarg, 1, 1e9, &v) != 0)
				return 2;
			c.rate = (uint64_t)v;
			break;
		case 'd':
			if (parse_num("duration", optarg, 0.001, 3600, &c.duration) != 0)
				return 2;
			break;
		case 'c':
			if (parse_num("count", optarg, 1, (double)BENCH_LR_MAX_COUNT, &v) != 0)
				return 2;
			c.count = (uint64_t)v;
			break;
		case 'f':
			if (parse_num("flows", optarg, 1, BENCH_LR_MAX_FLOWS, &v) != 0)
				return 2;
			c.flows = (uint32_t)v;
			break;
		case 's':
			if (parse_num("size", optarg, 64, 1518, &v) != 0)
				return 2;
			c.frame_len = (uint32_t)v - BENCH_FCS_LEN;
			break;
		case 'D':
			if (parse_num("drain", optarg, 0, 60, &c.drain) != 0)
				return 2;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (c.port_name == NULL || !have_addr || (!have_gw && !c.have_gateway_mac) || !have_vip) {
		fprintf(stderr, "svcgw-bench: --line-rate needs --port, --addr, --vip and "
				"--gateway or --gateway-mac\n");
		usage(stderr);
		return 2;
	}
	if (c.count == 0) {
		v = (double)c.rate * c.duration;
		if (v > (double)BENCH_LR_MAX_COUNT) {
			fprintf(stderr, "svcgw-bench: rate x duration above %llu packets\n",
				BENCH_LR_MAX_COUNT);
			return 2;
		}
		c.count = v < 1 ? 1 : (uint64_t)v;
	}

	/* One lcore sends and receives; nothing on disk, no hugepages needed. */
	eal[eargc++] = argv[0];
	eal[eargc++] = "-l";
	eal[eargc++] = "0";
	eal[eargc++] = "--no-telemetry";
	eal[eargc++] = "--no-shconf";
	eal[eargc++] = "--no-huge";
	eal[eargc++] = "-m";
	eal[eargc++] = "256";
	eal[eargc++] = "--log-level=lib.eal:error";
	if (strncmp(c.port_name, "net_", 4) == 0) {
		snprintf(vdev, sizeof(vdev), "--vdev=%s", c.port_name);
		eal[eargc++] = "--no-pci";
		eal[eargc++] = vdev;
	}
	for (int i = optind; i < argc && eargc < (int)RTE_DIM(eal) - 1; i++)
		eal[eargc++] = argv[i];
	eal[eargc] = NULL;
	rte_openlog_stream(stderr);
	if (rte_eal_init(eargc, eal) < 0) {
		fprintf(stderr, "svcgw-bench: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (find_port(c.port_name, &c.port_id) != 0) {
		fprintf(stderr, "svcgw-bench: no port %s\n", c.port_name);
		rte_eal_cleanup();
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	rc = bench_lr_run(&c, &r);
	if (rc == 0 && r.received == 0) {
		snprintf(r.error, sizeof(r.error), "no replies");
		rc = -1;
	}
	if (json)
		print_json(&c, &r, rc == 0);
	else {
		print_text(&c, &r);
		if (rc != 0)
			printf("FAILED: %s\n", r.error);
	}
	fflush(stdout);
	rte_eal_cleanup();
	return rc == 0 ? 0 : 1;
}
