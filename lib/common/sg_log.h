/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging for the libraries that use DPDK: one rte_log type per library,
 * named "svcgw.<lib>", so levels can be set per library with
 * --log-level=svcgw.svc:debug. Nothing here may be called per packet;
 * SG_DP_LOG is the only data-path form and compiles to nothing unless the
 * build enables datapath_debug.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <rte_log.h>

/*
 * Defines the log type variable of one library; use once per library in one
 * of its .c files: SG_LOG_REGISTER(svc).
 */
#define SG_LOG_REGISTER(lib) RTE_LOG_REGISTER(sg_logtype_##lib, svcgw.lib, INFO)

/* SG_LOG(svc, ERR, "service %s: %s", name, why): newline added. */
#define SG_LOG(lib, level, ...) \
	rte_log(RTE_LOG_##level, sg_logtype_##lib, \
		RTE_FMT(#lib ": " RTE_FMT_HEAD(__VA_ARGS__, ) "\n", RTE_FMT_TAIL(__VA_ARGS__, )))

#ifdef SG_DATAPATH_DEBUG
#define SG_DP_LOG(lib, level, ...) SG_LOG(lib, level, __VA_ARGS__)
#else
#define SG_DP_LOG(lib, level, ...) do { } while (0)
#endif

#endif /* SG_LOG_H */
