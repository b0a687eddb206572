/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one way lib/k8s makes a single request with the credentials: one easy
 * handle, so one keep-alive connection reused from one request to the next,
 * TLS from k8s_curl_tls(), the answer buffered up to RESP_MAX, a token file
 * read again every token_refresh seconds and after a 401. Blocking, on the
 * caller's thread: the lease thread calls it directly (k8s.h, "single
 * requests"), the writer thread (k8s_write.c) for each queued write.
 *
 * Not here: lists and watches (k8s_client.c), queueing (k8s_write.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "k8s_private.h"

/* Far above any Lease or Service; a list of Leases of one namespace too. */
#define RESP_MAX (4u << 20)

struct sg_k8s_call {
	struct k8s_creds creds;
	struct k8s_log log;
	CURL *easy;
	uint32_t token_refresh;		/* seconds */
	uint64_t token_read_ms;
	char *body;
	size_t len;
	size_t cap;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_k8s_call *c = arg;
	size_t n = size * nmemb;

	if (c->len + n + 1 > RESP_MAX) {
		c->too_big = 1;
		return 0;
	}
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *b;

		while (cap < c->len + n + 1)
			cap *= 2;
		b = realloc(c->body, cap);
		if (b == NULL)
			return 0;
		c->body = b;
		c->cap = cap;
	}
	memcpy(c->body + c->len, data, n);
	c->len += n;
	c->body[c->len] = '\0';
	return n;
}

struct sg_k8s_call *
k8s_call_create(const struct sg_k8s_conf *conf, struct k8s_creds *creds, char *err,
		size_t errlen)
{
	struct sg_k8s_call *c;
	int rc = -ENOMEM;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	k8s_curl_init();
	c->token_refresh = conf->token_refresh != 0 ? conf->token_refresh : 60;
	c->log.fn = conf->log;
	c->log.arg = conf->log_arg;
	c->token_read_ms = sg_mono_ms();
	c->easy = curl_easy_init();
	if (c->easy == NULL)
		goto free_call;
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = k8s_curl_tls(creds, c->easy, err, errlen);
	if (rc < 0)
		goto cleanup_easy;
	c->creds = *creds;
	memset(creds, 0, sizeof(*creds));
	return c;
cleanup_easy:
	curl_easy_cleanup(c->easy);
free_call:
	free(c);
fail:
	errno = -rc;
	return NULL;
}

struct sg_k8s_call *
sg_k8s_call_create(const struct sg_k8s_conf *conf, char *err, size_t errlen)
{
	struct k8s_creds creds;
	struct sg_k8s_call *c;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (conf == NULL) {
		errno = EINVAL;
		return NULL;
	}
	rc = k8s_creds_load(conf, &creds, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	c = k8s_call_create(conf, &creds, err, errlen);
	if (c == NULL) {
		rc = errno;
		k8s_creds_clear(&creds);
		errno = rc;
	}
	return c;
}

void
sg_k8s_call_free(struct sg_k8s_call *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->easy);
	k8s_creds_clear(&c->creds);
	free(c->body);
	free(c);
}

const char *
sg_k8s_call_server(const struct sg_k8s_call *c)
{
	return c != NULL && c->creds.server != NULL ? c->creds.server : "";
}

int
k8s_call_do(struct sg_k8s_call *c, const char *method, const char *path,
	    const char *content_type, const char *body, uint32_t timeout_ms, char **resp,
	    char *err, size_t errlen)
{
	struct curl_slist *h;
	CURLcode cc;
	long code = 0;
	char *url;
	int rc;

	if (resp != NULL)
		*resp = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (c == NULL || method == NULL || path == NULL || path[0] != '/' || resp == NULL)
		return -EINVAL;
	k8s_creds_refresh_token(&c->creds, &c->token_read_ms, c->token_refresh, 0, &c->log);
	url = malloc(strlen(c->creds.server) + strlen(path) + 1);
	h = k8s_creds_headers(&c->creds, content_type);
	if (url == NULL || h == NULL) {
		free(url);
		curl_slist_free_all(h);
		goto nomem;
	}
	strcpy(url, c->creds.server);
	strcat(url, path);
	c->len = 0;
	c->too_big = 0;
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->easy, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
	if (body != NULL) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(c->easy, CURLOPT_HTTPGET, strcmp(method, "GET") == 0 ? 1L : 0L);
		curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	cc = curl_easy_perform(c->easy);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(url);
	if (cc != CURLE_OK) {
		rc = c->too_big ? -EMSGSIZE : cc == CURLE_WRITE_ERROR ? -ENOMEM : -EIO;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s %s: %s", method, path,
				 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		return rc;
	}
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code == 401)
		k8s_creds_refresh_token(&c->creds, &c->token_read_ms, c->token_refresh, 1,
					&c->log);
	*resp = malloc(c->len + 1);
	if (*resp == NULL)
		goto nomem;
	if (c->len > 0)
		memcpy(*resp, c->body, c->len);
	(*resp)[c->len] = '\0';
	return (int)code;
nomem:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s %s: out of memory", method, path);
	return -ENOMEM;
}

int
sg_k8s_call(struct sg_k8s_call *c, const char *method, const char *path, const char *body,
	    uint32_t timeout_ms, char **resp, char *err, size_t errlen)
{
	return k8s_call_do(c, method, path, body != NULL ? "application/json" : NULL, body,
			   timeout_ms, resp, err, errlen);
}
