/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Declarations shared by the files of lib/flow and nobody else.
 */
#ifndef SG_FLOW_PRIVATE_H
#define SG_FLOW_PRIVATE_H

/* rte_log type "svcgw.flow", defined by SG_LOG_REGISTER(flow) in flow.c. */
extern int sg_logtype_flow;

#endif /* SG_FLOW_PRIVATE_H */
