/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Counters of one worker: plain uint64_t fields, incremented only by their
 * worker and summed by whoever reads them (telemetry, the benchmark). One
 * list, SG_DP_COUNTERS, gives the enum and the names, so the two cannot
 * drift apart. Packets refused by the parser are counted by lib/pkt reason
 * in `parse`; every other drop has its own counter here.
 */
#ifndef SG_DP_STATS_H
#define SG_DP_STATS_H

#include <stdint.h>

#include <rte_common.h>

#include "pkt.h"

/* X(name, what it counts); the drop_ counters come last, from drop_mac on. */
#define SG_DP_COUNTERS(X) \
	X(rx, "packets received on ports") \
	X(tx, "packets handed to ports") \
	X(polls_idle, "poll turns that found no packet on any port or ring") \
	X(busy_cycles, "TSC cycles spent in poll turns that found packets") \
	X(fwd, "packets translated toward a backend") \
	X(rev, "replies translated back toward a client") \
	X(flow_new, "flows created") \
	X(flow_evicted, "UDP flows replaced: their backend stopped serving") \
	X(handoff_out, "packets handed to the worker owning their flow") \
	X(handoff_in, "packets received from other workers") \
	X(ctl_tx, "frames sent for the control thread") \
	X(arp_reply, "ARP requests answered") \
	X(nd_reply, "neighbour solicitations answered") \
	X(echo_reply, "ICMP echo requests answered") \
	X(icmp_xlate, "ICMP errors about a flow passed on to its other end") \
	X(frag_in, "IPv4 fragments received for reassembly") \
	X(frag_reassembled, "IPv4 datagrams reassembled from fragments") \
	X(frag_out, "IPv4 fragments sent: datagrams cut to the egress MTU") \
	X(rst_sent, "TCP RSTs sent: service without usable endpoints") \
	X(unreach_sent, "ICMP port unreachables sent: service without usable endpoints") \
	X(too_big_sent, "ICMP fragmentation needed / packet too big sent: encapsulation over the MTU") \
	X(encap, "packets encapsulated to a backend (dsr-ipip, dsr-gue)") \
	X(l2_fwd, "packets sent to a backend's MAC unchanged (dsr-l2)") \
	X(stateless, "packets forwarded by Maglev alone: flow table full or rate-limited") \
	X(neigh_wait, "packets passed to the control thread to wait for a neighbour") \
	X(neigh_learn, "neighbour observations passed to the control thread") \
	X(neigh_learn_lost, "neighbour observations lost: the control thread's ring was full") \
	X(drop_mac, "dropped: unicast to another MAC") \
	X(drop_reply_limited, "dropped: no RST or unreachable sent (rate limit, bad source, RST)") \
	X(drop_not_ours, "dropped: to no address or service of ours") \
	X(drop_icmp_unknown, "dropped: ICMP errors about no flow of ours") \
	X(drop_frag_big, "dropped: reassembled datagrams too big for one buffer") \
	X(drop_frag_nomem, "dropped: no buffer to linearize or fragment a datagram") \
	X(drop_not_ip, "dropped: neither IP nor ARP") \
	X(drop_vlan, "dropped: 802.1Q tagged (no VLAN is configured)") \
	X(drop_multiseg, "dropped: chained mbuf that could not be made contiguous") \
	X(drop_neigh_ignored, "dropped: ARP or NDP with nothing to answer or learn") \
	X(drop_nodeport_addr, "dropped: NodePort on an address that is not a node address") \
	X(drop_src_range, "dropped: source outside the service's loadBalancerSourceRanges") \
	X(drop_wrong_side, "dropped: a flow's packet on a port of the wrong role") \
	X(drop_ttl, "dropped: TTL exhausted") \
	X(drop_no_route, "dropped: no port reaches the destination") \
	X(drop_l2_offlink, "dropped: dsr-l2 backend not on a link of ours") \
	X(drop_mtu, "dropped: over the MTU once encapsulated, and fragmentation allowed") \
	X(drop_neigh_failed, "dropped: the next hop did not answer ARP or NDP lately") \
	X(drop_frag, "dropped: IPv6 fragments, or IPv4 ones with reassembly off") \
	X(drop_flow_full, "dropped: NAT needs a flow and the flow table is full") \
	X(drop_flow_rate, "dropped: NAT needs a flow and the new-flow rate limit is reached") \
	X(drop_tcp_midstream, "dropped: TCP without SYN and without a flow: no NAT to resume") \
	X(drop_snat_ports, "dropped: no free SNAT port") \
	X(drop_tuple_taken, "dropped: dnat reply tuple already that of another flow") \
	X(drop_xlate, "dropped: rewrite refused (lib/pkt)") \
	X(drop_reply_fail, "dropped: no room to build a local reply") \
	X(drop_handoff_full, "dropped: the owner's handoff ring was full") \
	X(drop_ctl_full, "dropped: the control thread's ring was full") \
	X(drop_tx_full, "dropped: the port's tx queue was full") \
	X(drop_parse, "dropped: refused by the parser (see the parse counters)")

enum sg_dp_counter {
#define SG_DP_ENUM(name, help) SG_DP_C_##name,
	SG_DP_COUNTERS(SG_DP_ENUM)
#undef SG_DP_ENUM
	SG_DP_C_COUNT
};

struct sg_dp_stats {
	uint64_t c[SG_DP_C_COUNT];
	uint64_t parse[SG_PKT_REASON_COUNT];
} __rte_cache_aligned;

/* Name ("drop_not_ours") and help text of a counter; NULL when out of range. */
const char *sg_dp_counter_name(unsigned int c);
const char *sg_dp_counter_help(unsigned int c);

#endif /* SG_DP_STATS_H */
