/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ports: one mempool per NUMA socket, and every port of the config
 * configured with one rx and one tx queue per worker (queue i belongs to
 * worker i), RSS on the 5-tuple where the port offers it, started, and
 * described to the workers (struct sg_dp_port).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "app.h"

#define MEMPOOL_CACHE 256
/* Mbufs held outside the queues: rings, packets waiting for a neighbour, tx buffers. */
#define MBUF_SLACK 2048

/* The device name EAL gave the port: the devargs up to the first comma. */
static void
device_name(const char *device, char *name, size_t size)
{
	size_t n = strcspn(device, ",");

	snprintf(name, size, "%.*s", (int)n, device);
}

static struct rte_mempool *
pool_for_socket(struct sg_app *a, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	if (socket < 0 || socket >= RTE_MAX_NUMA_NODES)
		socket = 0;
	if (a->pools[socket] != NULL)
		return a->pools[socket];
	snprintf(name, sizeof(name), "sg_mbuf_%d", socket);
	a->pools[socket] = rte_pktmbuf_pool_create(name, a->conf->tables.mbufs, MEMPOOL_CACHE, 0,
						   RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (a->pools[socket] == NULL)
		SG_LOG(svcgw, ERR, "mempool of %u mbufs on socket %d: %s",
		       a->conf->tables.mbufs, socket, rte_strerror(rte_errno));
	return a->pools[socket];
}

static rte_be32_t
prefix_mask(unsigned int len)
{
	return len == 0 ? 0 : rte_cpu_to_be_32(~0u << (32 - len));
}

static void
prefix_mask6(unsigned int len, uint8_t mask[16])
{
	for (unsigned int i = 0; i < 16; i++, len = len > 8 ? len - 8 : 0)
		mask[i] = len >= 8 ? 0xff : (uint8_t)(0xff00 >> len);
}

static int
port_init(struct sg_app *a, unsigned int idx)
{
	const struct sg_conf_port *cp = &a->conf->ports[idx];
	struct sg_dp_port *dp = &a->ctx.ports[idx];
	uint16_t nq = a->ctx.n_workers, rxd = (uint16_t)cp->rx_desc, txd = (uint16_t)cp->tx_desc;
	struct rte_eth_dev_info info;
	struct rte_eth_conf ec;
	struct rte_mempool *pool;
	char name[RTE_ETH_NAME_MAX_LEN];
	uint16_t pid;
	int socket, rc;

	device_name(cp->device, name, sizeof(name));
	if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
		SG_LOG(svcgw, ERR, "port %s: no device %s (did EAL probe it?)", cp->name, name);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc != 0)
		return rc;
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		SG_LOG(svcgw, ERR, "port %s: %u rx / %u tx queues, %u workers need %u of each",
		       cp->name, info.max_rx_queues, info.max_tx_queues, nq, nq);
		return -EINVAL;
	}
	socket = rte_eth_dev_socket_id(pid);
	pool = pool_for_socket(a, socket);
	if (pool == NULL)
		return -ENOMEM;

	memset(&ec, 0, sizeof(ec));
	ec.rxmode.mtu = cp->mtu;
	ec.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP |
					  RTE_ETH_RSS_SCTP) & info.flow_type_rss_offloads;
	if (nq > 1 && ec.rx_adv_conf.rss_conf.rss_hf != 0)
		ec.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
	else
		ec.rx_adv_conf.rss_conf.rss_hf = 0;
	if (info.max_mtu < cp->mtu || info.min_mtu > cp->mtu) {
		SG_LOG(svcgw, ERR, "port %s: mtu %u outside what the device takes (%u-%u)",
		       cp->name, cp->mtu, info.min_mtu, info.max_mtu);
		return -EINVAL;
	}
	rc = rte_eth_dev_configure(pid, nq, nq, &ec);
	if (rc != 0) {
		SG_LOG(svcgw, ERR, "port %s: configure: %s", cp->name, rte_strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
	if (rc != 0)
		return rc;
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, rxd, socket, NULL, pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pid, q, txd, socket, NULL);
		if (rc != 0) {
			SG_LOG(svcgw, ERR, "port %s: queue %u: %s", cp->name, q, rte_strerror(-rc));
			return rc;
		}
	}
	/*
	 * Not promiscuous: every address we own is answered with the port's
	 * own MAC. Multicast, though: NDP solicits the solicited-node group.
	 */
	rc = rte_eth_allmulticast_enable(pid);
	if (rc != 0 && rc != -ENOTSUP)
		return rc;
	rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		SG_LOG(svcgw, ERR, "port %s: start: %s", cp->name, rte_strerror(-rc));
		return rc;
	}
	rc = rte_eth_macaddr_get(pid, &dp->mac);
	if (rc != 0)
		return rc;

	dp->port_id = pid;
	dp->roles = cp->role;
	dp->mtu = (uint16_t)cp->mtu;
	memcpy(&dp->addr4, cp->address.addr, 4);
	dp->mask4 = prefix_mask(cp->address.len);
	if (cp->gateway.family == SG_CONF_V4)
		memcpy(&dp->gw4, cp->gateway.addr, 4);
	if (cp->address6.family == SG_CONF_V6) {
		dp->has6 = 1;
		memcpy(dp->addr6, cp->address6.addr, 16);
		prefix_mask6(cp->address6.len, dp->mask6);
	}
	if (cp->gateway6.family == SG_CONF_V6)
		memcpy(dp->gw6, cp->gateway6.addr, 16);
	a->ctx.port_index[pid] = (uint8_t)idx;
	SG_LOG(svcgw, INFO, "port %s: %s, " RTE_ETHER_ADDR_PRT_FMT ", %u queue pair(s)%s",
	       cp->name, name, RTE_ETHER_ADDR_BYTES(&dp->mac), nq,
	       ec.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? ", RSS" : "");
	return 0;
}

int
app_ports_check(const struct sg_conf *c, char *err, size_t errlen)
{
	uint64_t need = MBUF_SLACK + (uint64_t)MEMPOOL_CACHE * (c->n_workers + 1);

	/* One pool per socket: on one socket every queue draws from it. */
	for (uint32_t i = 0; i < c->n_ports; i++)
		need += (uint64_t)c->n_workers * (c->ports[i].rx_desc + c->ports[i].tx_desc);
	if (c->tables.mbufs < need) {
		snprintf(err, errlen,
			 "%s: tables.mbufs: %u mbufs, the ports' queues and rings need %" PRIu64,
			 c->path, c->tables.mbufs, need);
		return -EINVAL;
	}
	return 0;
}

int
app_ports_init(struct sg_app *a)
{
	memset(a->ctx.port_index, UINT8_MAX, sizeof(a->ctx.port_index));
	a->ctx.n_workers = (uint16_t)a->conf->n_workers;
	for (unsigned int i = 0; i < a->conf->n_ports; i++) {
		int rc = port_init(a, i);

		if (rc != 0) {
			char name[RTE_ETH_NAME_MAX_LEN];
			uint16_t pid;

			/* Half set up: close it here, app_ports_stop() knows only the others. */
			device_name(a->conf->ports[i].device, name, sizeof(name));
			if (rte_eth_dev_get_port_by_name(name, &pid) == 0)
				rte_eth_dev_close(pid);
			return rc;
		}
		a->ctx.n_ports = (uint8_t)(i + 1);
	}
	return 0;
}

void
app_ports_stop(struct sg_app *a)
{
	for (unsigned int i = 0; i < a->ctx.n_ports; i++) {
		uint16_t pid = a->ctx.ports[i].port_id;

		rte_eth_dev_stop(pid);
		rte_eth_dev_close(pid);
	}
	a->ctx.n_ports = 0;
}
