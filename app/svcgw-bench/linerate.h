/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench --line-rate: UDP request frames paced by the TSC out of a
 * real DPDK port toward a load balancer under test, and the replies its
 * backends echo counted on the same port: loss, achieved rate, per-backend
 * spread and latency from a TSC timestamp carried in the payload.
 *
 * The probe (the start of each request's UDP payload, BENCH_LR_PROBE_LEN
 * bytes): "SGLR", a 32-bit sequence number, a 64-bit TSC timestamp; both
 * numbers in the sender's byte order, since only the sender reads them.
 * Zero padding up to the frame size follows, inside the datagram. The
 * backend's echo (tests/integration/pod.py) sends the datagram back
 * unchanged followed by the address it received it on, as text: that
 * names the backend whatever the reply's source is (the VIP in every mode).
 *
 * IPv4 only: the mode answers ARP for its own address and resolves the
 * next hop's MAC with ARP (or takes it from the command line).
 *
 * linerate.c runs it; lr_main.c parses options and prints the report.
 */
#ifndef SG_BENCH_LINERATE_H
#define SG_BENCH_LINERATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lat.h"

#define BENCH_LR_MAGIC "SGLR"
#define BENCH_LR_PROBE_LEN 16u
/* The sequence number of warm-up probes: answered, never counted. */
#define BENCH_LR_WARM_SEQ UINT32_MAX
#define BENCH_LR_MAX_FLOWS 50000u
/* Source ports: BENCH_LR_SPORT + flow index. */
#define BENCH_LR_SPORT 10000u
/* Every packet sent has a bit in a bitmap, allocated before the run. */
#define BENCH_LR_MAX_COUNT 1000000000ull
#define BENCH_LR_MAX_BACKENDS 64u
#define BENCH_LR_BACKEND_ID 48u

struct bench_lr_conf {
	uint16_t port_id;	/* a started-by-us ethdev: EAL made it */
	const char *port_name;	/* for the report */
	uint8_t addr[4];	/* ours, network order */
	uint8_t gateway[4];	/* the next hop toward the VIP */
	uint8_t gateway_mac[6];
	bool have_gateway_mac;	/* given: no ARP for the gateway */
	uint8_t vip[4];
	uint16_t vport;		/* host order */
	uint64_t rate;		/* packets per second */
	double duration;	/* seconds of sending, at most */
	uint64_t count;		/* packets, at most */
	uint32_t flows;		/* distinct source ports */
	uint32_t frame_len;	/* without FCS, 60 or more */
	double drain;		/* seconds to wait for late replies */
	double warmup;		/* seconds at most for the warm-up round */
	const atomic_bool *stop;	/* set by SIGINT / SIGTERM */
};

struct bench_lr_backend {
	char id[BENCH_LR_BACKEND_ID];	/* what the echo appended */
	uint64_t replies;
};

struct bench_lr_result {
	uint8_t port_mac[6];
	uint8_t gateway_mac[6];
	uint64_t sent;		/* accepted by the port */
	uint64_t tx_full;	/* the port refused them: not sent, not counted as loss */
	uint64_t received;	/* distinct probes answered */
	uint64_t duplicates;
	uint64_t reordered;	/* arrived after the reply to a later probe of its flow */
	uint64_t bad;		/* replies with a wrong checksum, length or sequence */
	uint64_t other;		/* frames not for us or not replies */
	uint64_t arp_answered;
	uint64_t warm_sent;
	uint64_t warm_replies;
	double send_seconds;	/* first to last send */
	double rate_pps;	/* achieved: sent / send_seconds */
	double loss_pct;	/* (sent - received) / sent */
	struct bench_lat lat;	/* TSC cycles, request sent to reply received */
	double tsc_hz;
	struct bench_lr_backend backend[BENCH_LR_MAX_BACKENDS];
	unsigned int backends;
	uint64_t backend_unknown;	/* replies beyond the table, or with no name */
	char error[256];
};

/*
 * Set up the port (one rx and one tx queue), find the gateway's MAC, warm
 * the path up (one probe per flow, not counted), send and count. Returns 0
 * with *r filled, or -1 with r->error saying why (r may be partly filled).
 */
int bench_lr_run(const struct bench_lr_conf *c, struct bench_lr_result *r);

/* The whole line-rate mode, from main() when "--line-rate" is an argument. */
int bench_lr_main(int argc, char **argv);

#endif /* SG_BENCH_LINERATE_H */
