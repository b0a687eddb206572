/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svcgw-bench's memory floor (app/svcgw-bench/floor.c): its arrays take
 * the sizes of a flow table, and each frame reads a bucket picked by its
 * addresses and ports, then writes the entry that bucket names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "sg_test_eal.h"
#include "floor.h"
#include "frame.h"

#define LINE RTE_CACHE_LINE_SIZE

static struct rte_mempool *pool;

/* Frame i: a TCP ACK from client i, IPv4 or IPv6. */
static struct rte_mbuf *
frame_of(uint32_t i, uint8_t family)
{
	uint8_t src[16] = { 0 }, dst[16] = { 0 };
	struct bench_frame f = {
		.family = family,
		.proto = IPPROTO_TCP,
		.tcp_flags = 0x10,
		.src = src,
		.dst = dst,
		.sport = htons((uint16_t)(1024 + i % 60000)),
		.dport = htons(80),
	};
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	int len;

	assert_non_null(m);
	if (family == 4) {
		memcpy(src, (uint8_t[]){ 198, 51, 100, (uint8_t)(1 + i / 60000) }, 4);
		memcpy(dst, (uint8_t[]){ 192, 0, 2, 1 }, 4);
	} else {
		memcpy(src, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c }, 6);
		src[15] = (uint8_t)(1 + i / 60000);
		memcpy(dst, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0, 0x0a }, 6);
		dst[15] = 1;
	}
	len = bench_frame_write(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m), &f);
	assert_true(len > 0);
	assert_non_null(rte_pktmbuf_append(m, (uint16_t)len));
	return m;
}

static struct bench_floor *
floor_of(uint64_t index_lines, uint64_t entries)
{
	struct sg_flow_memory mem = { .index = index_lines * LINE, .entries = entries * LINE };
	struct bench_floor *f = bench_floor_create(&mem, SOCKET_ID_ANY);

	assert_non_null(f);
	return f;
}

static uint64_t
touches(const struct bench_floor *f)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < f->n_entries; i++)
		n += f->entries[i].w[0];
	return n;
}

static void
test_sizes(void **state)
{
	struct sg_flow_memory no_index = { .entries = 8 * LINE };
	struct sg_flow_memory empty = { .index = 4 * LINE };
	struct bench_floor *f = floor_of(1000, 100);

	(void)state;
	assert_int_equal(f->n_index, 1000);
	assert_int_equal(f->n_entries, 100);
	bench_floor_free(f);
	errno = 0;
	assert_null(bench_floor_create(&no_index, SOCKET_ID_ANY));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(bench_floor_create(&empty, SOCKET_ID_ANY));
	assert_int_equal(errno, EINVAL);
	bench_floor_free(NULL);
}

/* One write a frame; a flow's frames always the same entry; flows spread. */
static void
test_touch(void **state)
{
	struct bench_floor *f = floor_of(4000, 256);
	struct rte_mbuf *m[SG_MAX_BURST];
	uint32_t used = 0;

	(void)state;
	for (uint32_t base = 0; base < 1024; base += SG_MAX_BURST) {
		for (uint32_t i = 0; i < SG_MAX_BURST; i++)
			m[i] = frame_of(base + i, i % 4 == 0 ? 6 : 4);
		bench_floor_touch(f, m, SG_MAX_BURST);
		rte_pktmbuf_free_bulk(m, SG_MAX_BURST);
	}
	assert_int_equal(touches(f), 1024);
	for (uint32_t e = 0; e < f->n_entries; e++)
		used += f->entries[e].w[0] != 0;
	/* 1,024 flows over 256 entries at random leave few of them unused. */
	assert_true(used > 200);

	memset(f->entries, 0, (size_t)f->n_entries * LINE);
	for (uint32_t i = 0; i < 3; i++)
		m[i] = frame_of(7, 4);
	bench_floor_touch(f, m, 3);
	rte_pktmbuf_free_bulk(m, 3);
	for (uint32_t e = 0; e < f->n_entries; e++)
		assert_true(f->entries[e].w[0] == 0 || f->entries[e].w[0] == 3);
	assert_int_equal(touches(f), 3);
	bench_floor_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_touch),
	};

	sg_test_eal_init("test_bench_floor", "128");
	pool = rte_pktmbuf_pool_create("floor_test", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	if (pool == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
