/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/svc: the log type. Logging happens on the control thread
 * only; nothing on the lookup path logs.
 */
#ifndef SG_SVC_PRIVATE_H
#define SG_SVC_PRIVATE_H

#include "sg_log.h"

extern int sg_logtype_svc;

#endif /* SG_SVC_PRIVATE_H */
