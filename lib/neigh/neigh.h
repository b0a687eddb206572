/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861): answering for the
 * addresses the gateway owns, and finding the MAC address of the next hops
 * it forwards to.
 *
 * Three kinds of callers:
 *
 *  - Workers, per packet, lock-free: sg_neigh_owned*() says whether an
 *    address is ours on a port; sg_neigh_lookup*() gives a next hop's MAC;
 *    sg_neigh_input() turns an ARP request or a neighbour solicitation for
 *    an owned address into its answer in place, and tells what the packet
 *    taught about its sender. Workers never change a table: what they learn
 *    (struct sg_neigh_learn) and the packets whose next hop is unknown
 *    (struct sg_neigh_miss) go to the control thread through rings the
 *    daemon owns.
 *  - The control thread (one writer): ports and owned addresses,
 *    sg_neigh_learn() and sg_neigh_hold() for what the workers handed over,
 *    sg_neigh_tick() for retries, refreshes, expiry and announcements, and
 *    telemetry. It sends through the daemon's transmit callback and never
 *    waits for the workers.
 *  - Anyone, without DPDK: the frame builders and the NDP parser
 *    (sg_neigh_arp_answer() to sg_neigh_link_local()), which work on byte
 *    buffers like lib/pkt and are what the unit tests check byte by byte.
 *
 * Both tables are rte_hash tables made for lock-free readers. A neighbour's
 * value is not a pointer but a 64-bit word, its MAC and state bits (see
 * SG_NEIGH_W_*), so every change of MAC or state is one atomic store and
 * there is nothing to free; only the key slots of deleted entries wait for
 * the readers, through the hash's own rte_rcu_qsbr defer queue. Workers must
 * therefore be registered on the daemon's QSBR variable and report quiescent
 * states, as for lib/svc.
 *
 * The neighbour states (enum sg_neigh_state): an entry created because a
 * worker needed it is INCOMPLETE while requests go out (RFC 4861 §7.2.2:
 * a few, retry_ms apart), REACHABLE once answered, PROBE when, at 3/4 of
 * reachable_ms after its last confirmation, unicast requests check that it
 * is still there (removed if it stays silent), FAILED for failed_ms after
 * its requests went unanswered (workers drop instead of asking again).
 * An entry created only by learning (RFC 826: someone asked us) is STALE:
 * usable, never refreshed, removed after reachable_ms, and the first to go
 * when the table is full and a next hop needs room.
 *
 * Byte order: addresses as they sit in packets (network order), 4 bytes for
 * IPv4 and 16 for IPv6; MACs as 6 bytes in wire order.
 *
 * Not here: the choice of next hop (on-link or the port's router: the
 * daemon's), routing, ICMP echo (lib/dp), the rings between workers and the
 * control thread (the daemon's).
 */
#ifndef SG_NEIGH_H
#define SG_NEIGH_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pkt.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_rcu_qsbr;

/* Port ids accepted: 0 .. SG_NEIGH_MAX_PORTS - 1. */
#define SG_NEIGH_MAX_PORTS 64u
/* Keys per bulk lookup (that of rte_hash_lookup_bulk_data). */
#define SG_NEIGH_LOOKUP_MAX 64u
/* Packets held per unresolved neighbour, at most. */
#define SG_NEIGH_HOLD_MAX 16u
/* Limits accepted by sg_neigh_create(). */
#define SG_NEIGH_MAX_ENTRIES_LIMIT (1u << 20)
#define SG_NEIGH_MAX_ADDRS_LIMIT (1u << 20)
#define SG_NEIGH_MAX_TRIES_LIMIT 16u

/* Frame lengths the builders produce (untagged). */
#define SG_NEIGH_ARP_FRAME_LEN 60u /* 42 bytes of ARP, zero-padded to ETH_ZLEN */
#define SG_NEIGH_ND_FRAME_LEN 86u  /* Ethernet + IPv6 + NS/NA with one LLA option */

/*
 * A (port, family, address) key, for both tables. 20 bytes with no padding,
 * hashed and compared as raw bytes: build keys with sg_neigh_key4() and
 * sg_neigh_key6(), which clear what must be zero.
 */
struct sg_neigh_key {
	uint16_t port;
	uint8_t family;	  /* 4 or 6 */
	uint8_t zero;	  /* always 0 */
	uint8_t addr[16]; /* IPv4 in addr[0..3], the rest zero */
};

static inline void
sg_neigh_key4(struct sg_neigh_key *k, uint16_t port, const void *addr4)
{
	memset(k, 0, sizeof(*k));
	k->port = port;
	k->family = 4;
	memcpy(k->addr, addr4, 4);
}

static inline void
sg_neigh_key6(struct sg_neigh_key *k, uint16_t port, const void *addr6)
{
	k->port = port;
	k->family = 6;
	k->zero = 0;
	memcpy(k->addr, addr6, 16);
}

/*
 * What a neighbour's entry holds: the MAC in bits 0..47 (mac[0] in bits
 * 40..47) and the state bits above. A word with neither bit set (an
 * INCOMPLETE entry) means the same as a miss: hand the packet to the control
 * thread.
 */
#define SG_NEIGH_W_VALID (1ull << 48)  /* the MAC may be used */
#define SG_NEIGH_W_FAILED (1ull << 49) /* resolution failed: drop, do not ask */
#define SG_NEIGH_W_MAC_MASK ((1ull << 48) - 1)

static inline bool
sg_neigh_word_usable(uint64_t w)
{
	return (w & SG_NEIGH_W_VALID) != 0;
}

static inline bool
sg_neigh_word_failed(uint64_t w)
{
	return (w & SG_NEIGH_W_FAILED) != 0;
}

static inline void
sg_neigh_word_mac(uint64_t w, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(w >> (40 - 8 * i));
}

static inline uint64_t
sg_neigh_mac_word(const uint8_t mac[6])
{
	uint64_t w = 0;

	for (int i = 0; i < 6; i++)
		w = w << 8 | mac[i];
	return w;
}

/* ---- DPDK-free frame builders and parsers ------------------------------ */

/* NA flags, as in byte 4 of the message (RFC 4861 §4.4). */
#define SG_NEIGH_NA_ROUTER 0x80
#define SG_NEIGH_NA_SOLICITED 0x40
#define SG_NEIGH_NA_OVERRIDE 0x20

/*
 * Why a neighbour solicitation or advertisement is not acted upon: the
 * checks of RFC 4861 §7.1.1 (NS) and §7.1.2 (NA). 0 is "valid".
 */
enum sg_neigh_nd_reason {
	SG_NEIGH_ND_OK = 0,
	SG_NEIGH_ND_NOT_ND,	    /* not an unfragmented ICMPv6 NS or NA */
	SG_NEIGH_ND_HOP_LIMIT,	    /* hop limit not 255: came through a router */
	SG_NEIGH_ND_CODE,	    /* ICMP code not 0 */
	SG_NEIGH_ND_SHORT,	    /* fewer than 24 bytes of ICMPv6 */
	SG_NEIGH_ND_CSUM,	    /* ICMPv6 checksum wrong */
	SG_NEIGH_ND_TARGET,	    /* target address multicast */
	SG_NEIGH_ND_OPTION,	    /* option of length 0, past the end, or an LLA
				     * option that is not 8 bytes (RFC 4861 §4.6.1) */
	SG_NEIGH_ND_SOURCE,	    /* source address multicast */
	SG_NEIGH_ND_DAD_DST,	    /* unspecified source, destination not the
				     * target's solicited-node address */
	SG_NEIGH_ND_DAD_SLLA,	    /* unspecified source with a source LLA option */
	SG_NEIGH_ND_SOLICITED_MCAST, /* NA to a multicast address with S set */
	SG_NEIGH_ND_REASON_COUNT
};

/* Stable snake_case name of a reason, for counters. */
const char *sg_neigh_nd_reason_name(unsigned int reason);

/* A parsed NS or NA. */
struct sg_neigh_nd {
	uint8_t target[16];
	uint8_t lla[6];	 /* source (NS) or target (NA) link-layer address */
	uint8_t has_lla; /* 1 if the option was there */
	uint8_t type;	 /* 135 (NS) or 136 (NA) */
	uint8_t flags;	 /* NA: SG_NEIGH_NA_* as received; NS: 0 */
};

/*
 * Check an NS or NA (pi from sg_pkt_parse() of buf, IPv6 with an ICMPv6
 * type 135 or 136) as RFC 4861 §7.1.1 / §7.1.2 require, and fill *nd.
 * Options other than the link-layer address are skipped (§4.6: unknown
 * options are ignored). Returns SG_NEIGH_ND_OK or the first check that
 * failed (*nd is then only partly filled).
 */
enum sg_neigh_nd_reason sg_neigh_nd_parse(const uint8_t *buf, const struct sg_pkt_info *pi,
					  struct sg_neigh_nd *nd);

/*
 * Turn the ARP request at buf (pi from sg_pkt_parse(); len bytes of frame)
 * into its reply in place, answering from mac (RFC 826): opcode 2, target
 * = the requester, sender = mac and the address asked for, Ethernet
 * destination = the requester's hardware address, source = mac. A VLAN tag
 * stays; padding after the ARP body is zeroed; the length does not change.
 * The caller has checked that the target address is ours. Returns len, or
 * -EINVAL if pi is not an ARP request inside len.
 */
int sg_neigh_arp_answer(uint8_t *buf, uint32_t len, const struct sg_pkt_info *pi,
			const uint8_t mac[6]);

/*
 * Turn the neighbour solicitation at buf (pi from sg_pkt_parse(), ns from
 * a successful sg_neigh_nd_parse()) into the advertisement answering it, in
 * place, from mac (RFC 4861 §7.2.4): source = the target, destination = the
 * solicitation's source, flags solicited and override, one target
 * link-layer address option (mac), hop limit 255, checksum computed; the
 * Ethernet destination is the source link-layer address if the NS had one,
 * else the frame's source. A solicitation from the unspecified address
 * (duplicate address detection) gets an advertisement to all-nodes
 * (ff02::1) without the solicited flag. Extension headers are dropped and
 * a VLAN tag stays. cap is the room at buf (the answer is
 * pi->l3_off + 72 bytes, which may be more than the solicitation).
 * Returns the new frame length, or:
 *  -EINVAL  pi or ns do not describe a valid NS;
 *  -ENOSPC  cap is too small (the frame is untouched).
 */
int sg_neigh_na_answer(uint8_t *buf, uint32_t cap, const struct sg_pkt_info *pi,
		       const struct sg_neigh_nd *ns, const uint8_t mac[6]);

/*
 * Build an untagged ARP frame (RFC 826) of SG_NEIGH_ARP_FRAME_LEN bytes:
 * Ethernet eth_dst <- sha, opcode op (1 request, 2 reply), sender sha/spa,
 * target tha/tpa (tha NULL: zeroes). A request (RFC 826) has tha zero; a
 * gratuitous ARP announcement (RFC 5227 §3) has spa == tpa and a broadcast
 * eth_dst. Returns the length, or -ENOSPC if cap is too small, -EINVAL for
 * an unknown opcode.
 */
int sg_neigh_arp_build(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t eth_dst[6],
		       const uint8_t sha[6], const uint8_t spa[4], const uint8_t tha[6],
		       const uint8_t tpa[4]);

/*
 * Build an untagged neighbour solicitation (RFC 4861 §4.3, §7.2.2) from
 * src_mac / src for target, to dst at eth_dst, hop limit 255, with a
 * source link-layer address option (src_mac) unless src is the unspecified
 * address (§4.3). For address resolution dst is the target's solicited-node
 * address (sg_neigh_solicited_node()) and eth_dst its multicast MAC
 * (sg_neigh_mcast_mac()); a reachability probe is unicast to the target.
 * Returns the length (SG_NEIGH_ND_FRAME_LEN, or 8 less without the option),
 * or -ENOSPC.
 */
int sg_neigh_ns_build(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		      const uint8_t eth_dst[6], const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16]);

/*
 * Build an untagged neighbour advertisement (RFC 4861 §4.4) for target from
 * src_mac / src to dst at eth_dst, hop limit 255, flags SG_NEIGH_NA_*, with
 * a target link-layer address option (src_mac). An unsolicited
 * advertisement (§7.2.6) goes from the address itself to all-nodes
 * (ff02::1, 33:33:00:00:00:01) with only the override flag. Returns
 * SG_NEIGH_ND_FRAME_LEN, or -ENOSPC, or -EINVAL for unknown flag bits.
 */
int sg_neigh_na_build(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		      const uint8_t eth_dst[6], const uint8_t src[16], const uint8_t dst[16],
		      const uint8_t target[16], uint8_t flags);

/* The solicited-node multicast address of addr: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1). */
void sg_neigh_solicited_node(const uint8_t addr[16], uint8_t out[16]);

/* The Ethernet address of IPv6 multicast address addr: 33:33 + its last 4 bytes (RFC 2464 §7). */
void sg_neigh_mcast_mac(const uint8_t addr[16], uint8_t mac[6]);

/*
 * The link-local address fe80::/64 of an interface with MAC mac: the
 * modified EUI-64 interface identifier, universal/local bit inverted
 * (RFC 4291 §2.5.1 and appendix A, RFC 2464 §4, §5).
 */
void sg_neigh_link_local(const uint8_t mac[6], uint8_t out[16]);

/* ---- tables ------------------------------------------------------------ */

/* What an owned address is (sg_neigh_addr_add()); any non-zero mix. */
#define SG_NEIGH_ADDR_PORT 0x01	     /* the port's own address (sg_neigh_port_set) */
#define SG_NEIGH_ADDR_LINK_LOCAL 0x02 /* the port's IPv6 link-local (sg_neigh_port_set) */
#define SG_NEIGH_ADDR_NODE 0x04	     /* a node address: NodePorts are served on it */
#define SG_NEIGH_ADDR_VIP 0x08	     /* a LoadBalancer VIP */
#define SG_NEIGH_ADDR_SNAT 0x10	     /* a SNAT source address: replies come to it */
/*
 * Forwarded but not claimed: another gateway owns this VIP on the link, so
 * ARP and NDP for it go unanswered here, it is never announced (setting the
 * flag cancels queued announcements), and the owner's announcements of it
 * are no conflict. Only silences an address that is nothing but a VIP: a
 * port, node or SNAT address is answered for whatever else it is.
 */
#define SG_NEIGH_ADDR_QUIET 0x20
#define SG_NEIGH_ADDR_ALL 0x3f

/* Whether ARP/NDP for an address of these flags is answered here. */
static inline bool
sg_neigh_flags_answered(uint8_t flags)
{
	return flags != 0 &&
	       (!(flags & SG_NEIGH_ADDR_QUIET) ||
		(flags & (SG_NEIGH_ADDR_PORT | SG_NEIGH_ADDR_LINK_LOCAL | SG_NEIGH_ADDR_NODE |
			  SG_NEIGH_ADDR_SNAT)) != 0);
}

/* A port as the control thread registers it. */
#define SG_NEIGH_PORT_IPV4 0x01 /* ip4 / ip4_prefix are set: ARP on this port */
#define SG_NEIGH_PORT_IPV6 0x02 /* NDP on this port, from its link-local address;
				 * ip6 / ip6_prefix if ip6 is not all zero */

struct sg_neigh_port_conf {
	uint16_t port;	   /* < SG_NEIGH_MAX_PORTS */
	uint8_t flags;	   /* SG_NEIGH_PORT_* */
	uint8_t mac[6];	   /* unicast, not zero */
	uint8_t ip4[4];	   /* unicast, with IPV4 */
	uint8_t ip4_prefix; /* 1..32, with IPV4 */
	uint8_t ip6[16];   /* global unicast or all zero, with IPV6 */
	uint8_t ip6_prefix; /* 1..128 when ip6 is set */
};

/*
 * The daemon's transmit path for frames the control thread sends: requests,
 * announcements and released packets, on DPDK port `port`. Returns 0 when
 * it took m (it frees or sends it), or a negative errno when it did not
 * (the table then frees m and counts a tx error).
 */
typedef int (*sg_neigh_tx_fn)(void *arg, uint16_t port, struct rte_mbuf *m);

/* Options of a table. A 0 takes the default given. */
struct sg_neigh_conf {
	/* The daemon's QSBR variable; not owned by the table. */
	struct rte_rcu_qsbr *qsbr;
	/* Where requests and announcements are allocated from. */
	struct rte_mempool *pool;
	sg_neigh_tx_fn tx;
	void *tx_arg;
	uint32_t max_neighbours; /* 1..SG_NEIGH_MAX_ENTRIES_LIMIT */
	uint32_t max_addrs;	 /* owned addresses, 1..SG_NEIGH_MAX_ADDRS_LIMIT */
	uint32_t max_announce;	 /* announcements queued at once; 256 */
	uint32_t reachable_ms;	 /* life of a confirmed entry (timeouts.neighbour); 300000 */
	uint32_t retry_ms;	 /* between two requests; 1000 */
	uint32_t failed_ms;	 /* how long a failed entry makes workers drop; 5000 */
	uint32_t max_tries;	 /* requests per resolution or probe; 3, at most
				  * SG_NEIGH_MAX_TRIES_LIMIT */
	uint32_t hold_per_neigh; /* packets held per neighbour; 4, at most
				  * SG_NEIGH_HOLD_MAX */
	uint32_t hold_total;	 /* packets held in all; 1024 */
	uint32_t tick_budget;	 /* timer events and announcements per tick; 256 */
	int socket_id;		 /* NUMA socket of the hashes, or SOCKET_ID_ANY (-1) */
};

enum sg_neigh_state {
	SG_NEIGH_FREE = 0, /* not an entry; never reported */
	SG_NEIGH_INCOMPLETE,
	SG_NEIGH_REACHABLE,
	SG_NEIGH_STALE,
	SG_NEIGH_PROBE,
	SG_NEIGH_FAILED,
	SG_NEIGH_STATE_COUNT
};

/* "incomplete", "reachable", "stale", "probe", "failed", or "?" */
const char *sg_neigh_state_name(unsigned int state);

/* Per-table counters and gauges; control thread. */
struct sg_neigh_stats {
	uint32_t neighbours;			/* entries, all states */
	uint32_t by_state[SG_NEIGH_STATE_COUNT];
	uint32_t addrs;				/* owned addresses */
	uint32_t held;				/* packets waiting for a neighbour */
	uint32_t announcements;			/* queued */
	uint64_t requests;	  /* broadcast ARP requests and multicast NS sent */
	uint64_t probes;	  /* unicast refresh requests sent */
	uint64_t announces;	  /* gratuitous ARP and unsolicited NA sent */
	uint64_t resolved;	  /* INCOMPLETE or FAILED entries that got a MAC */
	uint64_t failed;	  /* resolutions that got no answer */
	uint64_t expired;	  /* entries removed after unanswered probes */
	uint64_t stale_expired;	  /* learned entries that aged out */
	uint64_t evicted;	  /* learned entries removed to make room */
	uint64_t held_sent;	  /* held packets sent once resolved */
	uint64_t held_dropped_oldest; /* dropped for a newer one (per-neighbour limit) */
	uint64_t held_dropped_limit;  /* not held: hold_total reached */
	uint64_t held_dropped_failed; /* freed when their resolution failed */
	uint64_t held_dropped_other;  /* freed with their port, entry or a short frame */
	uint64_t dropped_failed;      /* handed over for a FAILED neighbour */
	uint64_t table_full;	  /* entries that could not be created */
	uint64_t learn_created;
	uint64_t learn_updated;	  /* existing entries confirmed or changed */
	uint64_t learn_ignored;	  /* nothing to update and nothing to create */
	uint64_t mac_changes;
	uint64_t conflicts;	  /* someone else claims an owned address */
	uint64_t invalid;	  /* records or keys rejected */
	uint64_t sync_waits;	  /* times deleted slots made the thread wait
				   * for the workers (a grace period) */
	uint64_t tx_errors;	  /* frames the transmit callback refused */
	uint64_t alloc_errors;	  /* mbufs that could not be allocated */
};

struct sg_neigh_table;

/*
 * Create an empty table. Control thread.
 * Returns the table, or NULL with errno:
 *  EINVAL  conf, qsbr, pool or tx NULL; max_neighbours or max_addrs 0 or
 *          above its limit; max_tries or hold_per_neigh above its limit;
 *          hold_per_neigh above hold_total;
 *  ENOMEM  out of memory;
 *  other   as rte_hash_create() or rte_hash_rcu_qsbr_add() set rte_errno.
 */
struct sg_neigh_table *sg_neigh_create(const struct sg_neigh_conf *conf);

/*
 * Free the table with the packets it holds, after a grace period (every
 * registered reader must keep reporting or be offline). NULL is harmless.
 * Control thread.
 */
void sg_neigh_free(struct sg_neigh_table *t);

/*
 * Register port pc->port, or change it. Its addresses become owned
 * (SG_NEIGH_ADDR_PORT, and the link-local with SG_NEIGH_ADDR_LINK_LOCAL
 * too); on a change the old ones lose those flags. Control thread.
 * Returns 0, or:
 *  -EINVAL  t or pc NULL, port out of range, unknown flags, MAC multicast
 *           or zero, IPv4 address not unicast or prefix not 1..32, IPv6
 *           address multicast or link-local or prefix not 1..128;
 *  -ENOSPC  max_addrs would be exceeded (nothing changed).
 */
int sg_neigh_port_set(struct sg_neigh_table *t, const struct sg_neigh_port_conf *pc);

/*
 * Forget port: its owned addresses, neighbours (held packets freed) and
 * announcements. Control thread. Returns 0, or -EINVAL (t NULL, port out
 * of range), -ENOENT (not registered).
 */
int sg_neigh_port_remove(struct sg_neigh_table *t, uint16_t port);

/* Copy the registration of port. Returns 0, -EINVAL, or -ENOENT. */
int sg_neigh_port_get(const struct sg_neigh_table *t, uint16_t port,
		      struct sg_neigh_port_conf *pc);

/*
 * Own an address on a port, or add flags to one owned. Control thread.
 * Returns 0, or:
 *  -EINVAL  t or key NULL, bad key (family, zero byte, IPv4 tail),
 *           address not unicast, flags 0 or unknown;
 *  -ENOENT  port not registered;
 *  -ENOSPC  max_addrs reached.
 */
int sg_neigh_addr_add(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint8_t flags);

/*
 * Take flags away from an owned address; with none left it is no longer
 * owned (its announcements stop). Returns 0, or -EINVAL (as for add),
 * -ENOENT (not owned).
 */
int sg_neigh_addr_remove(struct sg_neigh_table *t, const struct sg_neigh_key *key,
			 uint8_t flags);

/* Return non-zero to stop a walk; that value is then returned. */
typedef int (*sg_neigh_addr_fn)(const struct sg_neigh_key *key, uint8_t flags, void *arg);

/*
 * Call fn for every owned address, in no order; fn must not change the
 * table. Returns 0, fn's non-zero value, or -EINVAL. Control thread.
 */
int sg_neigh_addr_foreach(const struct sg_neigh_table *t, sg_neigh_addr_fn fn, void *arg);

/* ---- workers ----------------------------------------------------------- */

/*
 * Flags of an owned address on its port (SG_NEIGH_ADDR_*), 0 if not ours.
 * Fast path: lock-free.
 */
uint8_t sg_neigh_owned(const struct sg_neigh_table *t, const struct sg_neigh_key *key);

/*
 * sg_neigh_owned() of n keys (1..SG_NEIGH_LOOKUP_MAX) into flags[]. Returns
 * how many are owned; n out of range yields none.
 */
unsigned int sg_neigh_owned_bulk(const struct sg_neigh_table *t, const struct sg_neigh_key *keys,
				 unsigned int n, uint8_t flags[]);

/*
 * The entry word of a next hop (SG_NEIGH_W_*), 0 on a miss. Fast path:
 * lock-free.
 */
uint64_t sg_neigh_lookup(const struct sg_neigh_table *t, const struct sg_neigh_key *key);

/*
 * sg_neigh_lookup() of n keys (1..SG_NEIGH_LOOKUP_MAX) into words[].
 * Returns how many are usable (SG_NEIGH_W_VALID); n out of range yields
 * none.
 */
unsigned int sg_neigh_lookup_bulk(const struct sg_neigh_table *t,
				  const struct sg_neigh_key *keys, unsigned int n,
				  uint64_t words[]);

/*
 * A number that changes whenever a neighbour's word changes or an entry
 * goes away. A worker may cache what sg_neigh_lookup() told it and trust
 * the cache while the generation it read at the start of its burst stays
 * the same. Fast path: one load.
 */
uint64_t sg_neigh_generation(const struct sg_neigh_table *t);

/* sg_neigh_learn.flags */
#define SG_NEIGH_L_MAC 0x01	  /* mac is known (always but for an NA without option) */
#define SG_NEIGH_L_TO_US 0x02	  /* addressed to us: may create an entry */
#define SG_NEIGH_L_REPLY 0x04	  /* an ARP reply or an NA */
#define SG_NEIGH_L_SOLICITED 0x08 /* NA with the solicited flag */
#define SG_NEIGH_L_OVERRIDE 0x10  /* NA with the override flag */
#define SG_NEIGH_L_CONFLICT 0x20  /* key is ours and mac claims it */
#define SG_NEIGH_L_ALL 0x3f

/*
 * What a worker learned from an ARP or NDP packet, for sg_neigh_learn():
 * the sender (ARP sender, NS source, NA target) and its MAC. 28 bytes, a
 * multiple of 4, so it fits an rte_ring of elements as it is.
 */
struct sg_neigh_learn {
	struct sg_neigh_key key;
	uint8_t mac[6];
	uint8_t flags; /* SG_NEIGH_L_* */
	uint8_t pad;
};

/*
 * A packet waiting for its next hop, for sg_neigh_hold(): the frame is
 * complete but for the destination MAC. 32 bytes.
 */
struct sg_neigh_miss {
	struct rte_mbuf *m;
	struct sg_neigh_key key;
	uint32_t pad;
};

/* What sg_neigh_input() did, to be counted by the worker (plain fields). */
struct sg_neigh_rx_stats {
	uint64_t arp_answered;	 /* ARP requests for owned addresses answered */
	uint64_t ns_answered;	 /* NS for owned addresses answered */
	uint64_t arp_not_ours;	 /* requests for addresses we do not own */
	uint64_t ns_not_ours;
	uint64_t arp_replies;	 /* ARP replies received */
	uint64_t na_received;
	uint64_t learned;	 /* learn records produced */
	uint64_t conflicts;	 /* our address claimed by another MAC */
	uint64_t quiet_seen;	 /* a quiet VIP announced or used by its owner */
	uint64_t own;		 /* our own frames coming back */
	uint64_t arp_invalid;	 /* bad opcode, sender MAC or sender address */
	uint64_t nd_invalid[SG_NEIGH_ND_REASON_COUNT]; /* by reason; [0] unused */
	uint64_t no_room;	 /* no room in the buffer for the NA */
	uint64_t unknown_port;	 /* port not registered */
};

/* sg_neigh_input() results */
#define SG_NEIGH_RX_REPLY 0x01 /* buf holds the answer (*len bytes): send it out the same port */
#define SG_NEIGH_RX_LEARN 0x02 /* *learn is filled: hand it to the control thread */

/*
 * Handle an ARP packet or an ICMPv6 NS/NA (pi from sg_pkt_parse() of buf,
 * *len bytes of frame, cap bytes of room at buf) received on port.
 *
 * An ARP request or a valid NS (RFC 4861 §7.1.1) for an address owned on
 * the port is answered in place (SG_NEIGH_RX_REPLY); one for another
 * address is only counted. A DAD solicitation for an owned address is
 * answered to all-nodes, which tells the newcomer the address is taken.
 * The sender is reported (SG_NEIGH_RX_LEARN) when RFC 826's rule may need
 * it: the packet was addressed to us, or the sender has an entry whose word
 * differs from what the packet says. An NA is reported only for an existing
 * entry (RFC 4861 §7.2.5), when addressed to us or bringing a different
 * word; one without a link-layer option only when solicited and addressed
 * to us (it answers our unicast probe). Someone else claiming an owned
 * address is counted and reported with SG_NEIGH_L_CONFLICT, never answered.
 * Anything else (other opcodes and ICMPv6 types, fragments) is counted
 * and left alone (returns 0).
 *
 * Fast path: no lock, no allocation; st is the worker's own. Returns
 * SG_NEIGH_RX_* flags; 0 means the packet can be freed.
 */
unsigned int sg_neigh_input(const struct sg_neigh_table *t, uint16_t port, uint8_t *buf,
			    uint32_t *len, uint32_t cap, const struct sg_pkt_info *pi,
			    struct sg_neigh_learn *learn, struct sg_neigh_rx_stats *st);

/* ---- control thread ---------------------------------------------------- */

/*
 * Apply what a worker learned (RFC 826 merge; RFC 4861 §7.2.3, §7.2.5):
 * an existing entry gets the MAC and is confirmed (an NA without the
 * override flag does not change a known MAC; one without a MAC only
 * confirms, and only if solicited); an INCOMPLETE or FAILED entry becomes
 * REACHABLE and its held packets leave. Without an entry, one is created
 * (STALE) only for an ARP packet or NS addressed to us. now in ms.
 * Returns 0, or:
 *  -EINVAL  t or l NULL, bad key or flags, or port not registered;
 *  -ENOENT  nothing to update and nothing to create (counted as ignored);
 *  -ENOSPC  the table is full.
 */
int sg_neigh_learn(struct sg_neigh_table *t, const struct sg_neigh_learn *l, uint64_t now);

/*
 * Take a packet whose next hop has no usable entry; the table owns m from
 * here on, in every case. If the entry became usable meanwhile, m leaves
 * at once; if it is being resolved, m waits (at most hold_per_neigh per
 * neighbour, the oldest dropped, and hold_total in all); with no entry,
 * one is created and the first request goes out now. m may be NULL: just
 * resolve (e.g. the default router at start). now in ms.
 * Returns 0 (sent, held, or resolution started), or with m freed:
 *  -EINVAL        t or key NULL, bad key, address not unicast;
 *  -EADDRNOTAVAIL port not registered, or its family not enabled on it;
 *  -EHOSTUNREACH  the neighbour is FAILED;
 *  -ENOBUFS       hold_total reached;
 *  -ENOSPC        no room for a new entry.
 */
int sg_neigh_hold(struct sg_neigh_table *t, const struct sg_neigh_key *key, struct rte_mbuf *m,
		  uint64_t now);

/*
 * Announce an owned address count times, interval_ms apart, the first at
 * the next tick: a gratuitous ARP request (RFC 5227 §3 announcement) or an
 * unsolicited NA to all-nodes with the override flag (RFC 4861 §7.2.6).
 * Replaces a queued announcement of the same key; count 0 cancels it;
 * SG_NEIGH_ANNOUNCE_FOREVER repeats until cancelled or the address goes.
 * Returns 0, or:
 *  -EINVAL        t or key NULL, bad key, interval_ms 0 with count > 1;
 *  -EADDRNOTAVAIL not owned on that port, or family not enabled on it;
 *  -ENOENT        count 0 and nothing queued;
 *  -ENOSPC        max_announce queued already.
 */
#define SG_NEIGH_ANNOUNCE_FOREVER UINT32_MAX
int sg_neigh_announce(struct sg_neigh_table *t, const struct sg_neigh_key *key, uint32_t count,
		      uint32_t interval_ms, uint64_t now);

/*
 * As sg_neigh_announce(), then one more every refresh_ms (0: none) until
 * cancelled or the address goes: switches keep the owner's MAC for the
 * address in their tables, and a client that missed the burst learns it.
 * Returns as sg_neigh_announce(), and -EADDRNOTAVAIL for a quiet address.
 */
int sg_neigh_announce_refresh(struct sg_neigh_table *t, const struct sg_neigh_key *key,
			      uint32_t count, uint32_t interval_ms, uint32_t refresh_ms,
			      uint64_t now);

/*
 * Run the timers due at now (ms, never going back): request retries and
 * failures, refresh probes, expiry, announcements; at most tick_budget of
 * them per call, the rest at the next call. Returns how many were handled,
 * or -EINVAL (t NULL).
 */
int sg_neigh_tick(struct sg_neigh_table *t, uint64_t now);

/*
 * Change reachable_ms (a reloaded timeouts.neighbour). Entries take it up
 * at their next confirmation. Returns 0 or -EINVAL (t NULL, ms 0).
 */
int sg_neigh_set_reachable(struct sg_neigh_table *t, uint32_t ms);

/* Fill *st. Returns 0 or -EINVAL. Control thread. */
int sg_neigh_stats_get(const struct sg_neigh_table *t, struct sg_neigh_stats *st);

/* One neighbour, for telemetry (/svcgw/neighbours). */
struct sg_neigh_info {
	struct sg_neigh_key key;
	uint8_t mac[6];	  /* zero while unknown */
	uint8_t state;	  /* enum sg_neigh_state */
	uint8_t held;	  /* packets waiting */
	uint8_t tries;	  /* requests sent in the current round */
	uint64_t age_ms;  /* since confirmed, or since created or failed */
};

typedef int (*sg_neigh_info_fn)(const struct sg_neigh_info *info, void *arg);

/*
 * Call fn for every neighbour, in no order; fn must not change the table.
 * now (ms) gives the ages. Returns 0, fn's non-zero value, or -EINVAL.
 * Control thread.
 */
int sg_neigh_foreach(const struct sg_neigh_table *t, uint64_t now, sg_neigh_info_fn fn,
		     void *arg);

#endif /* SG_NEIGH_H */
