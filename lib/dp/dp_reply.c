/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Answers the gateway sends itself, built in the mbuf that provoked them:
 * ICMP echo replies for owned addresses, the TCP RST and the ICMP port
 * unreachable that refuse a service with no usable endpoint (kube-proxy's
 * REJECT), and "fragmentation needed" / "packet too big" for a packet that
 * encapsulation would take over the MTU. They go back out of the port they
 * came in on, to the MAC they came from, so they need no route and no
 * neighbour lookup.
 *
 * Not here: ARP and NDP answers (lib/neigh), forwarding (dp_worker.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "pkt.h"
#include "dp_private.h"

/* Hop limit of what we originate, as Linux's default. */
#define REPLY_TTL 64
/* RFC 1812 §4.3.2.3: an ICMP error should not exceed 576 bytes. */
#define ICMP4_ERROR_MAX 576
/* RFC 4443 §2.4 (c): an ICMPv6 error should not exceed the minimum MTU. */
#define ICMP6_ERROR_MAX 1280
#define ICMP4_DEST_UNREACH 3
#define ICMP4_PORT_UNREACH 3
#define ICMP4_FRAG_NEEDED 4
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_DEST_UNREACH 1
#define ICMP6_PORT_UNREACH 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129

/*
 * Back to where the frame came from, from our own MAC: not from the
 * frame's destination, which may have been a broadcast or someone else's.
 */
static void
reply_macs(uint8_t *frame, const struct rte_ether_addr *port_mac)
{
	memcpy(frame, frame + RTE_ETHER_ADDR_LEN, RTE_ETHER_ADDR_LEN);
	memcpy(frame + RTE_ETHER_ADDR_LEN, port_mac->addr_bytes, RTE_ETHER_ADDR_LEN);
}

static void
swap_bytes(uint8_t *a, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t t = a[i];

		a[i] = b[i];
		b[i] = t;
	}
}

/* Trim the mbuf to its first `len` bytes (it only ever shrinks). */
static void
set_frame_len(struct rte_mbuf *m, uint32_t len)
{
	rte_pktmbuf_trim(m, rte_pktmbuf_pkt_len(m) - len);
}

int
sg_dp_reply_echo(struct rte_mbuf *m, const struct sg_pkt_info *pi,
		 const struct rte_ether_addr *port_mac)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);

	reply_macs(frame, port_mac);
	if (pi->l3 == SG_PKT_L3_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + pi->l3_off);
		struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(frame + pi->l4_off);
		uint16_t old = *(uint16_t *)icmp, new;

		swap_bytes((uint8_t *)&ip->src_addr, (uint8_t *)&ip->dst_addr, 4);
		ip->time_to_live = REPLY_TTL;
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
		new = *(uint16_t *)icmp;
		icmp->icmp_cksum = sg_csum_update16(icmp->icmp_cksum, old, new);
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(frame + pi->l3_off);
		struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(frame + pi->l4_off);
		uint16_t old = *(uint16_t *)icmp, new;

		/* The pseudo-header sum does not change when the addresses swap. */
		swap_bytes(ip->src_addr, ip->dst_addr, 16);
		ip->hop_limits = REPLY_TTL;
		icmp->icmp_type = ICMP6_ECHO_REPLY;
		new = *(uint16_t *)icmp;
		icmp->icmp_cksum = sg_csum_update16(icmp->icmp_cksum, old, new);
	}
	return 0;
}

/*
 * RFC 793 §3.4, "Reset Generation", for a segment to a closed port: with
 * ACK, <SEQ=SEG.ACK><CTL=RST>; without, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
 * <CTL=RST,ACK>, where SYN and FIN count in SEG.LEN. The answer is a bare
 * 20-byte TCP header after a fresh IP header: options and payload go.
 */
int
sg_dp_reply_tcp_rst(struct rte_mbuf *m, const struct sg_pkt_info *pi,
		    const struct rte_ether_addr *port_mac)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	const struct rte_tcp_hdr *in = (const struct rte_tcp_hdr *)(frame + pi->l4_off);
	uint32_t seg_len = pi->ip_end - pi->l4_off - ((in->data_off >> 4) * 4u);
	rte_be16_t sport = in->src_port, dport = in->dst_port;
	uint32_t seq = rte_be_to_cpu_32(in->sent_seq), ack = rte_be_to_cpu_32(in->recv_ack);
	uint8_t flags = in->tcp_flags;
	struct rte_tcp_hdr *tcp;

	if (flags & RTE_TCP_RST_FLAG)
		return -EINVAL; /* never answer a RST (RFC 793 §3.4) */
	seg_len += !!(flags & RTE_TCP_SYN_FLAG) + !!(flags & RTE_TCP_FIN_FLAG);

	reply_macs(frame, port_mac);
	if (pi->l3 == SG_PKT_L3_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + pi->l3_off);
		rte_be32_t src = ip->src_addr, dst = ip->dst_addr;

		memset(ip, 0, sizeof(*ip));
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*tcp));
		ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
		ip->time_to_live = REPLY_TTL;
		ip->next_proto_id = IPPROTO_TCP;
		ip->src_addr = dst;
		ip->dst_addr = src;
		tcp = (struct rte_tcp_hdr *)(ip + 1);
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(frame + pi->l3_off);
		uint8_t src[16], dst[16];

		memcpy(src, ip->src_addr, 16);
		memcpy(dst, ip->dst_addr, 16);
		memset(ip, 0, sizeof(*ip));
		ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip->payload_len = rte_cpu_to_be_16(sizeof(*tcp));
		ip->proto = IPPROTO_TCP;
		ip->hop_limits = REPLY_TTL;
		memcpy(ip->src_addr, dst, 16);
		memcpy(ip->dst_addr, src, 16);
		tcp = (struct rte_tcp_hdr *)(ip + 1);
	}

	memset(tcp, 0, sizeof(*tcp));
	tcp->src_port = dport;
	tcp->dst_port = sport;
	tcp->data_off = (sizeof(*tcp) / 4) << 4;
	if (flags & RTE_TCP_ACK_FLAG) {
		tcp->sent_seq = rte_cpu_to_be_32(ack);
		tcp->tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		tcp->recv_ack = rte_cpu_to_be_32(seq + seg_len);
		tcp->tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}

	if (pi->l3 == SG_PKT_L3_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + pi->l3_off);

		ip->hdr_checksum = rte_ipv4_cksum(ip);
		tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
	} else {
		tcp->cksum = rte_ipv6_udptcp_cksum((struct rte_ipv6_hdr *)(frame + pi->l3_off), tcp);
	}
	set_frame_len(m, pi->l3_off + (uint32_t)((uint8_t *)(tcp + 1) - (frame + pi->l3_off)));
	return 0;
}

/*
 * An ICMP or ICMPv6 error about the packet in m, from its destination back
 * to its source, quoting as much of it as fits the size limits:
 *  - port unreachable: ICMP type 3 code 3 (RFC 792), ICMPv6 type 1 code 4
 *    (RFC 4443 §3.1);
 *  - too big: "fragmentation needed and DF set", type 3 code 4 with the
 *    next-hop MTU in bytes 6-7 (RFC 1191 §4), or ICMPv6 "packet too big",
 *    type 2 with the MTU in bytes 4-7 (RFC 4443 §3.2).
 * The new IP and ICMP headers go in front of the quote, so the frame grows
 * into the mbuf's headroom.
 */
int
sg_dp_reply_icmp_error(struct rte_mbuf *m, const struct sg_pkt_info *pi,
		       const struct rte_ether_addr *port_mac, enum dp_icmp_error kind,
		       uint32_t mtu)
{
	bool v4 = pi->l3 == SG_PKT_L3_IPV4;
	uint32_t hdrs = v4 ? sizeof(struct rte_ipv4_hdr) + 8 : sizeof(struct rte_ipv6_hdr) + 8;
	uint32_t limit = (v4 ? ICMP4_ERROR_MAX : ICMP6_ERROR_MAX) - hdrs;
	uint32_t quote = RTE_MIN(pi->ip_end - pi->l3_off, limit);
	uint8_t *frame, *l3, *icmp;
	uint8_t src[16], dst[16];
	uint16_t icmp_len = (uint16_t)(8 + quote);

	frame = rte_pktmbuf_mtod(m, uint8_t *);
	if (v4) {
		const struct rte_ipv4_hdr *ip = (const void *)(frame + pi->l3_off);

		memcpy(src, &ip->src_addr, 4);
		memcpy(dst, &ip->dst_addr, 4);
	} else {
		const struct rte_ipv6_hdr *ip = (const void *)(frame + pi->l3_off);

		memcpy(src, ip->src_addr, 16);
		memcpy(dst, ip->dst_addr, 16);
	}
	/* Drop what will not be quoted, then open room for the new headers. */
	set_frame_len(m, pi->l3_off + quote);
	if (rte_pktmbuf_prepend(m, (uint16_t)hdrs) == NULL)
		return -ENOSPC;
	frame = rte_pktmbuf_mtod(m, uint8_t *);
	memmove(frame, frame + hdrs, pi->l3_off);
	reply_macs(frame, port_mac);
	l3 = frame + pi->l3_off;
	icmp = l3 + hdrs - 8;
	memset(l3, 0, hdrs);

	if (v4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;

		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + icmp_len));
		ip->time_to_live = REPLY_TTL;
		ip->next_proto_id = IPPROTO_ICMP;
		memcpy(&ip->src_addr, dst, 4);
		memcpy(&ip->dst_addr, src, 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		icmp[0] = ICMP4_DEST_UNREACH;
		if (kind == DP_ICMP_TOO_BIG) {
			icmp[1] = ICMP4_FRAG_NEEDED;
			icmp[6] = (uint8_t)(mtu >> 8);
			icmp[7] = (uint8_t)mtu;
		} else {
			icmp[1] = ICMP4_PORT_UNREACH;
		}
		((struct rte_icmp_hdr *)icmp)->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, icmp_len);
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)l3;

		ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
		ip->payload_len = rte_cpu_to_be_16(icmp_len);
		ip->proto = IPPROTO_ICMPV6;
		ip->hop_limits = REPLY_TTL;
		memcpy(ip->src_addr, dst, 16);
		memcpy(ip->dst_addr, src, 16);
		if (kind == DP_ICMP_TOO_BIG) {
			icmp[0] = ICMP6_PACKET_TOO_BIG;
			icmp[4] = (uint8_t)(mtu >> 24);
			icmp[5] = (uint8_t)(mtu >> 16);
			icmp[6] = (uint8_t)(mtu >> 8);
			icmp[7] = (uint8_t)mtu;
		} else {
			icmp[0] = ICMP6_DEST_UNREACH;
			icmp[1] = ICMP6_PORT_UNREACH;
		}
		((struct rte_icmp_hdr *)icmp)->icmp_cksum = rte_ipv6_udptcp_cksum(ip, icmp);
	}
	return 0;
}

/*
 * Whether the packet may get an answer: never an ICMP error, nor one from a
 * source that cannot have sent it (RFC 1122 §3.2.2 and RFC 4443 §2.4 (e):
 * unspecified, loopback, multicast, broadcast), and at most DP_REPLY_RATE a
 * second.
 */
static bool
reply_allowed(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	      uint64_t now)
{
	const uint8_t *src = dp_ip_src(m, pi);
	uint64_t refill;

	/* RFC 1122 §3.2.2 and RFC 4443 §2.4 (e): no error about an error. */
	if (pi->flags & SG_PKT_F_ICMP_ERROR)
		return false;
	if (pi->l3 == SG_PKT_L3_IPV4) {
		if (src[0] == 0 || src[0] == 127 || src[0] >= 224)
			return false;
	} else {
		static const uint8_t unspec[16], loop[16] = { [15] = 1 };

		if (src[0] == 0xff || memcmp(src, unspec, 16) == 0 || memcmp(src, loop, 16) == 0)
			return false;
	}
	refill = (now - w->reply_last_ms) * DP_REPLY_RATE / 1000;
	if (refill > 0) {
		w->reply_tokens = (uint32_t)RTE_MIN(w->reply_tokens + refill, DP_REPLY_BURST);
		w->reply_last_ms = now;
	}
	if (w->reply_tokens == 0)
		return false;
	w->reply_tokens--;
	return true;
}

void
dp_refuse(struct sg_dp_worker *w, struct rte_mbuf *m, const struct sg_pkt_info *pi,
	  enum dp_icmp_error kind, uint32_t mtu, uint64_t now)
{
	uint8_t in_port = dp_in_port(w, m);
	const struct rte_ether_addr *mac = &w->ctx->ports[in_port].mac;
	enum sg_dp_counter sent;
	int rc;

	/*
	 * RFC 793 §3.4: a RST is never answered. Refused before the rate
	 * limit takes a token: else a flood of RSTs to a service without
	 * endpoints spends the RSTs and unreachables owed to everyone else.
	 */
	if (kind == DP_ICMP_PORT_UNREACH && pi->l4_proto == IPPROTO_TCP &&
	    (dp_frame(m)[pi->l4_off + 13] & RTE_TCP_RST_FLAG)) {
		dp_drop(w, m, SG_DP_C_drop_reply_limited);
		return;
	}
	if (!reply_allowed(w, m, pi, now)) {
		dp_drop(w, m, SG_DP_C_drop_reply_limited);
		return;
	}
	if (kind == DP_ICMP_PORT_UNREACH && pi->l4_proto == IPPROTO_TCP) {
		rc = sg_dp_reply_tcp_rst(m, pi, mac);
		sent = SG_DP_C_rst_sent;
	} else {
		rc = sg_dp_reply_icmp_error(m, pi, mac, kind, mtu);
		sent = kind == DP_ICMP_TOO_BIG ? SG_DP_C_too_big_sent : SG_DP_C_unreach_sent;
	}
	if (rc != 0) {
		dp_drop(w, m, SG_DP_C_drop_reply_fail);
		return;
	}
	w->stats.c[sent]++;
	dp_tx(w, in_port, m);
}
