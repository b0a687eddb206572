/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lease objects (coordination.k8s.io/v1) to and from JSON: only the fields
 * svcgw uses. Times are MicroTime, RFC 3339 with microseconds, as the API
 * server writes them.
 */
#define _DEFAULT_SOURCE	/* timegm */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease.h"

static int
copy_str(char *dst, size_t size, const cJSON *v)
{
	if (v == NULL || cJSON_IsNull(v)) {
		dst[0] = '\0';
		return 0;
	}
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
		return -EINVAL;
	memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
	return 0;
}

static int
digits(const char *s, unsigned int n, int *out)
{
	int v = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm). */
int
sg_lease_time_parse(const char *s, int64_t *us)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = 1000000;
	time_t t;

	if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' ||
	    digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
		return -EINVAL;
	s += 19;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++)
			if (scale > 1) {
				scale /= 10;
				frac += (*s - '0') * scale;
			}
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '+' ? 1 : -1;
		if (digits(s + 1, 2, &oh) || s[3] != ':' || digits(s + 4, 2, &om))
			return -EINVAL;
		s += 6;
	} else {
		return -EINVAL;
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*us = ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000000 + frac;
	return 0;
}

void
sg_lease_time_format(int64_t us, char buf[SG_LEASE_TIME_SIZE])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, SG_LEASE_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, SG_LEASE_TIME_SIZE - n, ".%06uZ", (unsigned int)(us % 1000000));
}

static int
get_time(const cJSON *spec, const char *key, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);

	*out = 0;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return -EINVAL;
	return sg_lease_time_parse(v->valuestring, out);
}

static int
get_uint(const cJSON *spec, const char *key, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);

	*out = 0;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v->valuedouble;
	return 0;
}

int
sg_lease_decode(const cJSON *obj, struct sg_lease *out)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(md) || !cJSON_IsString(name) || name->valuestring[0] == '\0')
		return -EINVAL;
	if (copy_str(out->name, sizeof(out->name), name) ||
	    copy_str(out->rv, sizeof(out->rv),
		     cJSON_GetObjectItemCaseSensitive(md, "resourceVersion")) ||
	    copy_str(out->gateway, sizeof(out->gateway),
		     cJSON_GetObjectItemCaseSensitive(labels, SG_LEASE_GATEWAY_LABEL)))
		return -EINVAL;
	if (spec == NULL || cJSON_IsNull(spec))
		return 0;
	if (!cJSON_IsObject(spec))
		return -EINVAL;
	if (copy_str(out->holder, sizeof(out->holder),
		     cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity")) ||
	    get_uint(spec, "leaseDurationSeconds", &out->duration_s) ||
	    get_uint(spec, "leaseTransitions", &out->transitions) ||
	    get_time(spec, "acquireTime", &out->acquire_us) ||
	    get_time(spec, "renewTime", &out->renew_us))
		return -EINVAL;
	return 0;
}

static int
add_time(cJSON *spec, const char *key, int64_t us)
{
	char buf[SG_LEASE_TIME_SIZE];

	if (us == 0)
		return 0;
	sg_lease_time_format(us, buf);
	return cJSON_AddStringToObject(spec, key, buf) != NULL ? 0 : -ENOMEM;
}

char *
sg_lease_encode(const struct sg_lease *l, const char *ns)
{
	cJSON *root = cJSON_CreateObject(), *md, *spec, *labels;
	char *out = NULL;
	int bad = root == NULL;

	if (bad)
		return NULL;
	bad |= cJSON_AddStringToObject(root, "apiVersion", "coordination.k8s.io/v1") == NULL;
	bad |= cJSON_AddStringToObject(root, "kind", "Lease") == NULL;
	md = cJSON_AddObjectToObject(root, "metadata");
	bad |= md == NULL;
	if (md != NULL) {
		bad |= cJSON_AddStringToObject(md, "name", l->name) == NULL;
		bad |= cJSON_AddStringToObject(md, "namespace", ns) == NULL;
		if (l->rv[0] != '\0')
			bad |= cJSON_AddStringToObject(md, "resourceVersion", l->rv) == NULL;
		if (l->gateway[0] != '\0') {
			labels = cJSON_AddObjectToObject(md, "labels");
			bad |= labels == NULL ||
			       cJSON_AddStringToObject(labels, SG_LEASE_GATEWAY_LABEL,
						       l->gateway) == NULL;
		}
	}
	spec = cJSON_AddObjectToObject(root, "spec");
	bad |= spec == NULL;
	if (spec != NULL) {
		bad |= cJSON_AddStringToObject(spec, "holderIdentity", l->holder) == NULL;
		if (l->duration_s != 0)
			bad |= cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
						       l->duration_s) == NULL;
		bad |= add_time(spec, "acquireTime", l->acquire_us) != 0;
		bad |= add_time(spec, "renewTime", l->renew_us) != 0;
		bad |= cJSON_AddNumberToObject(spec, "leaseTransitions", l->transitions) == NULL;
	}
	if (!bad)
		out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out == NULL)
		errno = ENOMEM;
	return out;
}
