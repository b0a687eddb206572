/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/neigh, free of DPDK: ARP and NDP field offsets and
 * constants, and small address tests shared by the frame code and the
 * tables. The table internals are in neigh_table.h.
 */
#ifndef NEIGH_PRIVATE_H
#define NEIGH_PRIVATE_H

#include <stdint.h>
#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_IPV6 0x86dd
#define IPV6_HLEN 40

/* ARP for Ethernet and IPv4 (RFC 826): field offsets in its 28 bytes. */
#define ARP_LEN 28
#define ARP_OP 6
#define ARP_SHA 8
#define ARP_SPA 14
#define ARP_THA 18
#define ARP_TPA 24
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

/* NS and NA (RFC 4861 §4.3, §4.4): fixed part, types, options. */
#define ND_HLEN 24
#define ND_TYPE_NS 135
#define ND_TYPE_NA 136
#define ND_OPT_SLLA 1
#define ND_OPT_TLLA 2

static inline int
neigh_addr_unspecified(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

/* 1 if dst is the solicited-node multicast address of target. */
int neigh_is_solicited_node(const uint8_t dst[16], const uint8_t target[16]);

/* A MAC that can be a sender: not multicast or broadcast, not zero. */
static inline int
neigh_mac_unicast(const uint8_t mac[6])
{
	return !(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0;
}

#endif /* NEIGH_PRIVATE_H */
