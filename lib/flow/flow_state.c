/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow states: the TCP transition table, default timeouts and state names.
 * Pure functions of their arguments; the table itself lives in flow.c.
 *
 * The gateway is an observer in the middle without sequence numbers, so the
 * machine is coarse on purpose: it only has to pick a timeout. It serves
 * flows that see both directions (NAT, DNAT) and DSR flows that only see the
 * client's segments; the latter never see a SYN-ACK, which is why a client
 * ACK completes the handshake from SYN_SENT.
 */
#include <stdint.h>

#include <rte_common.h>
#include <rte_tcp.h>

#include "flow.h"

#define MS(s) ((s) * 1000u)

static const uint32_t default_timeout_ms[SG_FLOW_STATE_MAX] = {
	/*
	 * Half-open states stay short: a SYN flood fills the table with
	 * them, and a real handshake completes in well under a second.
	 * This departs from RFC 5382 REQ-5's 4 minutes for transitory
	 * states, as conntrack does.
	 */
	[SG_FLOW_TCP_NEW] = MS(30),
	[SG_FLOW_TCP_SYN_SENT] = MS(30),
	[SG_FLOW_TCP_SYN_RECV] = MS(30),
	/*
	 * RFC 5382 REQ-5: a NAT must not drop an idle established TCP
	 * session in under 2 h 4 min (2 h of keepalive idle, plus probes).
	 * In NAT mode a lost entry loses the SNAT port, and the connection
	 * with it; a shorter timeout (cloud balancers use 300-350 s, kube-
	 * proxy 86400 s) is a deployment choice the conf can make, and
	 * costs nothing in DNAT and DSR modes, where Maglev sends the next
	 * packet to the same backend.
	 */
	[SG_FLOW_TCP_ESTABLISHED] = MS(7440),
	[SG_FLOW_TCP_FIN_WAIT] = MS(120),
	[SG_FLOW_TCP_CLOSE_WAIT] = MS(120),
	/* Both sides closed: only retransmissions are left. */
	[SG_FLOW_TCP_LAST_ACK] = MS(30),
	/* 2 MSL of RFC 793 §3.5 with the common 60 s MSL. */
	[SG_FLOW_TCP_TIME_WAIT] = MS(120),
	[SG_FLOW_TCP_CLOSE] = MS(10),
	/*
	 * RFC 4787 REQ-5 asks 2 min of a UDP mapping; an unanswered one
	 * (mostly scans and spoofed sources) gets conntrack's 30 s.
	 */
	[SG_FLOW_UDP] = MS(30),
	[SG_FLOW_UDP_ASSURED] = MS(120),
	[SG_FLOW_ICMP] = MS(30),
	/* conntrack's generic timeout; SCTP heartbeats come every 30 s. */
	[SG_FLOW_OTHER] = MS(600),
};

static const char *const state_names[SG_FLOW_STATE_MAX] = {
	[SG_FLOW_TCP_NEW] = "NEW",
	[SG_FLOW_TCP_SYN_SENT] = "SYN_SENT",
	[SG_FLOW_TCP_SYN_RECV] = "SYN_RECV",
	[SG_FLOW_TCP_ESTABLISHED] = "ESTABLISHED",
	[SG_FLOW_TCP_FIN_WAIT] = "FIN_WAIT",
	[SG_FLOW_TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[SG_FLOW_TCP_LAST_ACK] = "LAST_ACK",
	[SG_FLOW_TCP_TIME_WAIT] = "TIME_WAIT",
	[SG_FLOW_TCP_CLOSE] = "CLOSE",
	[SG_FLOW_UDP] = "UDP",
	[SG_FLOW_UDP_ASSURED] = "UDP_ASSURED",
	[SG_FLOW_ICMP] = "ICMP",
	[SG_FLOW_OTHER] = "OTHER",
};

uint32_t
sg_flow_default_timeout(unsigned int state)
{
	return state < SG_FLOW_STATE_MAX ? default_timeout_ms[state] : 0;
}

const char *
sg_flow_state_name(unsigned int state)
{
	return state < SG_FLOW_STATE_MAX ? state_names[state] : "?";
}

/* What a segment means to the machine, from its flags. */
enum tcp_event {
	EV_SYN,
	EV_SYNACK,
	EV_FIN,
	EV_ACK,
	EV_RST,
	EV_MAX,
	EV_IGNORE = EV_MAX,	/* SYN+FIN, or none of SYN/FIN/ACK/RST */
};

static enum tcp_event
tcp_event(uint8_t fl)
{
	/* A RST ends the connection whatever else it carries. */
	if (fl & RTE_TCP_RST_FLAG)
		return EV_RST;
	if (fl & RTE_TCP_SYN_FLAG) {
		if (fl & RTE_TCP_FIN_FLAG)
			return EV_IGNORE;
		return (fl & RTE_TCP_ACK_FLAG) ? EV_SYNACK : EV_SYN;
	}
	/* FIN+ACK is a FIN: the ACK is what every segment after the SYN carries. */
	if (fl & RTE_TCP_FIN_FLAG)
		return EV_FIN;
	if (fl & RTE_TCP_ACK_FLAG)
		return EV_ACK;
	return EV_IGNORE;
}

/* Short names so that each row of the table reads as one line. */
#define NW SG_FLOW_TCP_NEW
#define SS SG_FLOW_TCP_SYN_SENT
#define SR SG_FLOW_TCP_SYN_RECV
#define ES SG_FLOW_TCP_ESTABLISHED
#define FW SG_FLOW_TCP_FIN_WAIT
#define CW SG_FLOW_TCP_CLOSE_WAIT
#define LA SG_FLOW_TCP_LAST_ACK
#define TW SG_FLOW_TCP_TIME_WAIT
#define CL SG_FLOW_TCP_CLOSE
#define xx 0xff		/* no change */

#define N_TCP_STATES (SG_FLOW_TCP_CLOSE + 1)

/* tcp_next[state][direction][event] */
static const uint8_t tcp_next[N_TCP_STATES][2][EV_MAX] = {
	/*                     SYN  SYNACK  FIN  ACK  RST */
	/*
	 * A flow is created by the client's first segment; one that is
	 * not a SYN is picked up mid-stream (after a restart, or when ECMP
	 * moved it here), as conntrack does: Maglev gave it the backend it
	 * had.
	 */
	[NW] = { /* fwd */ { SS, xx, FW, ES, CL },
		 /* rev */ { xx, xx, xx, xx, CL } },
	/* A simultaneous open (RFC 793 §3.4 fig. 8) answers a SYN with a SYN. */
	[SS] = { /* fwd */ { xx, xx, xx, ES, CL },
		 /* rev */ { SR, SR, xx, xx, CL } },
	/* The client's SYN-ACK completes a simultaneous open. */
	[SR] = { /* fwd */ { xx, ES, FW, ES, CL },
		 /* rev */ { xx, xx, CW, xx, CL } },
	[ES] = { /* fwd */ { xx, xx, FW, xx, CL },
		 /* rev */ { xx, xx, CW, xx, CL } },
	/* Client closed first; the backend's FIN closes the other half. */
	[FW] = { /* fwd */ { xx, xx, xx, xx, CL },
		 /* rev */ { xx, xx, LA, xx, CL } },
	/* Backend closed first. */
	[CW] = { /* fwd */ { xx, xx, LA, xx, CL },
		 /* rev */ { xx, xx, xx, xx, CL } },
	/*
	 * Only the side that received the last FIN still sends, and its
	 * ACK is the last segment; FINs are retransmissions. Both ways are
	 * taken because which side closed last is not remembered.
	 */
	[LA] = { /* fwd */ { xx, xx, xx, TW, CL },
		 /* rev */ { xx, xx, xx, TW, CL } },
	/* A new SYN from the client re-opens (RFC 1122 §4.2.2.13). */
	[TW] = { /* fwd */ { SS, xx, xx, xx, CL },
		 /* rev */ { xx, xx, xx, xx, CL } },
	[CL] = { /* fwd */ { SS, xx, xx, xx, CL },
		 /* rev */ { xx, xx, xx, xx, CL } },
};

#undef NW
#undef SS
#undef SR
#undef ES
#undef FW
#undef CW
#undef LA
#undef TW
#undef CL

uint8_t
sg_flow_tcp_next(uint8_t state, unsigned int dir, uint8_t tcp_flags)
{
	enum tcp_event ev = tcp_event(tcp_flags);
	uint8_t next;

	if (state >= N_TCP_STATES || dir > SG_FLOW_DIR_REV || ev == EV_IGNORE)
		return state;
	next = tcp_next[state][dir][ev];
	return next == xx ? state : next;
}

#undef xx

uint8_t
sg_flow_tcp_update(struct sg_flow *f, unsigned int dir, uint8_t tcp_flags, uint64_t now)
{
	f->state = sg_flow_tcp_next(f->state, dir, tcp_flags);
	f->last_seen = now;
	return f->state;
}
