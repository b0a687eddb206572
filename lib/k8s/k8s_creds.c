/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where the API server is and how to prove who we are: from the pod's
 * service account (in-cluster) or from a kubeconfig file (YAML, or JSON),
 * read the way client-go's clientcmd reads it (the chosen context's cluster
 * and user; *-data fields before file paths; relative paths from the
 * file's directory). Every error names the source and what is missing or wrong:
 *   kubeconfig /etc/k: context "edge": no such context
 *   kubeconfig /etc/k:12: cluster "c": certificate-authority-data is not base64
 *
 * Credential plugins (exec, auth-provider) and basic authentication are
 * refused with a clear error: svcgw runs unattended and links no plugin
 * runtime. Here too, what every request does with them: the headers, and
 * the token file read again (k8s_creds_headers(), k8s_creds_refresh_token()).
 * Not here: the requests (k8s_client.c, k8s_call.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "k8s_private.h"

/* Far above any kubeconfig or token; stops a wrong path from being read whole. */
#define FILE_MAX (16u << 20)

static int
put_err(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
put_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* The whole file, NUL-terminated. 0 or a negative errno (-EFBIG above max). */
static int
read_all(const char *path, char **out, size_t *len)
{
	size_t n = 0, cap = 4096;
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	buf = malloc(cap);
	while (buf != NULL) {
		ssize_t r;

		if (n + 1 == cap) {
			char *nb = cap < FILE_MAX ? realloc(buf, cap * 2) : NULL;

			if (nb == NULL) {
				rc = cap < FILE_MAX ? -ENOMEM : -EFBIG;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf == NULL)
		return -ENOMEM;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	if (len != NULL)
		*len = n;
	return 0;
}

static const char *
read_why(int rc)
{
	return rc == -EFBIG ? "larger than 16 MiB" : strerror(-rc);
}

int
k8s_creds_read_token(const char *path, char **token, char *err, size_t errlen)
{
	char *buf, *s, *e;
	int rc = read_all(path, &buf, NULL);

	if (rc < 0)
		return put_err(err, errlen, rc, "token %s: %s", path, read_why(rc));
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	*e = '\0';
	if (*s == '\0') {
		free(buf);
		return put_err(err, errlen, -EINVAL, "token %s: empty", path);
	}
	/* A header value cannot hold these; a corrupt file, not a token. */
	for (const char *c = s; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			free(buf);
			return put_err(err, errlen, -EINVAL, "token %s: not a token (control "
				       "characters)", path);
		}
	}
	memmove(buf, s, (size_t)(e - s) + 1);
	*token = buf;
	return 0;
}

/* ---- base64 -------------------------------------------------------------- */

static int
b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* RFC 4648 §4, padding optional, white space (line breaks of pasted PEM) ignored. */
int
k8s_base64_decode(const char *s, struct k8s_blob *out)
{
	size_t n = strlen(s), o = 0, pad = 0;
	uint32_t acc = 0;
	unsigned int bits = 0;
	uint8_t *d = malloc(n / 4 * 3 + 3);

	if (d == NULL)
		return -ENOMEM;
	for (; *s != '\0'; s++) {
		int v;

		if (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		v = b64_val(*s);
		if (v < 0 || pad != 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* A lone 6-bit group, or padding that does not match, is not base64. */
	if (bits >= 6 || (pad != 0 && bits / 2 != pad))
		goto bad;
	out->data = d;
	out->len = o;
	return 0;
bad:
	free(d);
	return -EINVAL;
}

/* ---- the result ---------------------------------------------------------- */

static void
blob_clear(struct k8s_blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

void
k8s_creds_clear(struct k8s_creds *c)
{
	if (c == NULL)
		return;
	free(c->server);
	free(c->ca_file);
	blob_clear(&c->ca);
	free(c->cert_file);
	blob_clear(&c->cert);
	free(c->key_file);
	blob_clear(&c->key);
	free(c->token);
	free(c->token_file);
	free(c->origin);
	memset(c, 0, sizeof(*c));
}

/* ---- using them ---------------------------------------------------------- */

/* Append "name" "value" as one header; NULL (h freed) if out of memory. */
static struct curl_slist *
header_append(struct curl_slist *h, const char *name, const char *value)
{
	char *hdr = malloc(strlen(name) + strlen(value) + 1);
	struct curl_slist *n = NULL;

	if (hdr != NULL) {
		strcpy(hdr, name);
		strcat(hdr, value);
		n = curl_slist_append(h, hdr);
		free(hdr);
	}
	if (n == NULL)
		curl_slist_free_all(h);
	return n;
}

struct curl_slist *
k8s_creds_headers(const struct k8s_creds *c, const char *content_type)
{
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");

	if (h != NULL)
		h = header_append(h, "User-Agent: ", "svcgw/0.1");
	if (h != NULL && content_type != NULL)
		h = header_append(h, "Content-Type: ", content_type);
	if (h != NULL && c->token != NULL)
		h = header_append(h, "Authorization: Bearer ", c->token);
	return h;
}

void
k8s_creds_refresh_token(struct k8s_creds *c, uint64_t *read_ms, uint32_t every_s, int force,
			const struct k8s_log *log)
{
	uint64_t now = sg_mono_ms();
	char err[400], *tok;

	if (c->token_file == NULL ||
	    (!force && *read_ms != 0 && now - *read_ms < every_s * 1000ull))
		return;
	*read_ms = now;
	if (k8s_creds_read_token(c->token_file, &tok, err, sizeof(err)) < 0) {
		k8s_logf(log, SG_K8S_LOG_WARNING, "%s; the last token read is kept", err);
		return;
	}
	if (c->token != NULL && strcmp(tok, c->token) == 0) {
		free(tok);
		return;
	}
	free(c->token);
	c->token = tok;
	k8s_logf(log, SG_K8S_LOG_INFO, "token %s read again: it changed", c->token_file);
}

static char *
str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* ---- in-cluster ---------------------------------------------------------- */

int
k8s_creds_in_cluster(const char *sa_dir, struct k8s_creds *out, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *end, tok_err[400];
	unsigned long pn;
	int rc, fd;

	memset(out, 0, sizeof(*out));
	if (sa_dir == NULL)
		sa_dir = K8S_SA_DIR;
	if (host == NULL || host[0] == '\0')
		return put_err(err, errlen, -EINVAL, "in-cluster: KUBERNETES_SERVICE_HOST is not "
			       "set (not running in a pod?)");
	if (port == NULL || port[0] == '\0')
		return put_err(err, errlen, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT is not "
			       "set (not running in a pod?)");
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (errno != 0 || *end != '\0' || pn == 0 || pn > 65535 || port[0] < '0' || port[0] > '9')
		return put_err(err, errlen, -EINVAL,
			       "in-cluster: KUBERNETES_SERVICE_PORT \"%.32s\" is not a port", port);
	if (strpbrk(host, "/[]@ ?#") != NULL)
		return put_err(err, errlen, -EINVAL,
			       "in-cluster: KUBERNETES_SERVICE_HOST \"%.64s\" is not a host", host);
	/* An IPv6 address in a URL goes in brackets (RFC 3986 §3.2.2). */
	out->server = str_printf(strchr(host, ':') != NULL ? "https://[%s]:%lu" : "https://%s:%lu",
				 host, pn);
	out->token_file = str_printf("%s/token", sa_dir);
	out->ca_file = str_printf("%s/ca.crt", sa_dir);
	out->origin = strdup("in-cluster");
	if (out->server == NULL || out->token_file == NULL || out->ca_file == NULL ||
	    out->origin == NULL) {
		rc = put_err(err, errlen, -ENOMEM, "in-cluster: out of memory");
		goto fail;
	}
	rc = k8s_creds_read_token(out->token_file, &out->token, tok_err, sizeof(tok_err));
	if (rc < 0) {
		put_err(err, errlen, rc, "in-cluster: %s", tok_err);
		goto fail;
	}
	fd = open(out->ca_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		put_err(err, errlen, rc, "in-cluster: ca.crt %s: %s", out->ca_file, strerror(-rc));
		goto fail;
	}
	close(fd);
	return 0;
fail:
	k8s_creds_clear(out);
	return rc;
}

/* ---- kubeconfig ---------------------------------------------------------- */

struct kc {
	const char *path;
	char *dir;		/* of path, for relative paths in it */
	char *err;
	size_t errlen;
};

static int
kc_err(struct kc *k, uint32_t line, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
kc_err(struct kc *k, uint32_t line, int rc, const char *fmt, ...)
{
	char msg[400], at[16] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line != 0)
		snprintf(at, sizeof(at), ":%u", line);
	return put_err(k->err, k->errlen, rc, "kubeconfig %s%s: %s", k->path, at, msg);
}

/*
 * The string value of key in map m: *out NULL if absent or null. -EINVAL if
 * it is a mapping or a sequence.
 */
static int
kc_str(struct kc *k, const struct k8s_yaml *m, const char *key, const char *what,
       const char **out)
{
	const struct k8s_yaml *v = k8s_yaml_get(m, key);

	*out = NULL;
	if (v == NULL || v->kind == K8S_YAML_NULL)
		return 0;
	if (v->kind != K8S_YAML_SCALAR)
		return kc_err(k, v->line, -EINVAL, "%s%s%s is not a string", what,
			      what[0] != '\0' ? ": " : "", key);
	*out = v->str;
	return 0;
}

/*
 * The entry named name of the list at key of the root ("clusters"), as
 * kubectl writes them: "- name: x\n  cluster: {...}". *out is the inner
 * mapping (at field), NULL if there is no such entry.
 */
static int
kc_find(struct kc *k, const struct k8s_yaml *root, const char *list, const char *field,
	const char *name, const struct k8s_yaml **out)
{
	const struct k8s_yaml *l = k8s_yaml_get(root, list);

	*out = NULL;
	if (l == NULL || l->kind == K8S_YAML_NULL)
		return 0;
	if (l->kind != K8S_YAML_SEQ)
		return kc_err(k, l->line, -EINVAL, "%s is not a list", list);
	for (uint32_t i = 0; i < l->n; i++) {
		const struct k8s_yaml *e = l->vals[i], *inner;
		const char *n;
		int rc;

		if (e->kind != K8S_YAML_MAP)
			return kc_err(k, e->line, -EINVAL, "%s: an entry is not a mapping", list);
		rc = kc_str(k, e, "name", "", &n);
		if (rc < 0)
			return rc;
		if (n == NULL || strcmp(n, name) != 0)
			continue;
		inner = k8s_yaml_get(e, field);
		if (inner != NULL && inner->kind != K8S_YAML_MAP && inner->kind != K8S_YAML_NULL)
			return kc_err(k, inner->line, -EINVAL, "%s \"%s\": %s is not a mapping",
				      field, name, field);
		/* An entry with an empty body is still an entry: its fields are missing. */
		*out = inner != NULL ? inner : e;
		return 1;
	}
	return 0;
}

static char *
kc_path(struct kc *k, const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	return str_printf("%s/%s", k->dir, p);
}

/* A readable file, named in the error if not. *out is its absolute path. */
static int
kc_file(struct kc *k, const char *what, const char *field, const char *p, char **out)
{
	int fd, rc;

	*out = kc_path(k, p);
	if (*out == NULL)
		return kc_err(k, 0, -ENOMEM, "out of memory");
	fd = open(*out, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		return kc_err(k, 0, rc, "%s: %s %s: %s", what, field, *out, strerror(-rc));
	}
	close(fd);
	return 0;
}

/* field-data before field, as clientcmd. */
static int
kc_pem(struct kc *k, const struct k8s_yaml *m, const char *what, const char *field,
       char **file, struct k8s_blob *blob)
{
	char data_key[64];
	const char *data = NULL, *path = NULL;
	int rc;

	snprintf(data_key, sizeof(data_key), "%s-data", field);
	rc = kc_str(k, m, data_key, "", &data);
	if (rc == 0)
		rc = kc_str(k, m, field, "", &path);
	if (rc < 0)
		return rc;
	if (data != NULL) {
		rc = k8s_base64_decode(data, blob);
		if (rc == -ENOMEM)
			return kc_err(k, 0, rc, "out of memory");
		if (rc < 0 || blob->len == 0)
			return kc_err(k, k8s_yaml_get(m, data_key)->line, -EINVAL,
				      "%s: %s is not base64", what, data_key);
		return 1;
	}
	if (path != NULL) {
		rc = kc_file(k, what, field, path, file);
		return rc < 0 ? rc : 1;
	}
	return 0;
}

static int
kc_cluster(struct kc *k, const struct k8s_yaml *cl, const char *name, struct k8s_creds *out)
{
	char what[320];
	const char *server, *insecure;
	size_t n;
	int rc;

	snprintf(what, sizeof(what), "cluster \"%.200s\"", name);
	rc = kc_str(k, cl, "server", what, &server);
	if (rc < 0)
		return rc;
	if (server == NULL || server[0] == '\0')
		return kc_err(k, 0, -EINVAL, "%s: no server", what);
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return kc_err(k, k8s_yaml_get(cl, "server")->line, -EINVAL,
			      "%s: server \"%.100s\" is not an http:// or https:// URL", what,
			      server);
	n = strlen(server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	out->server = strndup(server, n);
	if (out->server == NULL)
		return kc_err(k, 0, -ENOMEM, "out of memory");
	rc = kc_str(k, cl, "insecure-skip-tls-verify", what, &insecure);
	if (rc < 0)
		return rc;
	if (insecure != NULL) {
		if (strcmp(insecure, "true") == 0 || strcmp(insecure, "True") == 0 ||
		    strcmp(insecure, "TRUE") == 0)
			out->insecure = 1;
		else if (strcmp(insecure, "false") != 0 && strcmp(insecure, "False") != 0 &&
			 strcmp(insecure, "FALSE") != 0)
			return kc_err(k, k8s_yaml_get(cl, "insecure-skip-tls-verify")->line,
				      -EINVAL, "%s: insecure-skip-tls-verify \"%.32s\" is not true "
				      "or false", what, insecure);
	}
	rc = kc_pem(k, cl, what, "certificate-authority", &out->ca_file, &out->ca);
	return rc < 0 ? rc : 0;
}

static int
kc_user(struct kc *k, const struct k8s_yaml *u, const char *name, struct k8s_creds *out)
{
	static const struct {
		const char *key;
		const char *why;
	} refused[] = {
		{ "exec", "exec credential plugins are not supported (use a token or a client "
			  "certificate)" },
		{ "auth-provider", "auth-provider plugins are not supported (use a token or a "
				   "client certificate)" },
		{ "username", "basic authentication is not supported (use a token or a client "
			      "certificate)" },
	};
	char what[320], tok_err[400];
	const char *token = NULL, *token_file = NULL;
	int rc, has_cert, has_key;

	snprintf(what, sizeof(what), "user \"%.200s\"", name);
	for (unsigned int i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const struct k8s_yaml *v = k8s_yaml_get(u, refused[i].key);

		if (v != NULL && v->kind != K8S_YAML_NULL)
			return kc_err(k, v->line, -EINVAL, "%s: %s", what, refused[i].why);
	}
	rc = kc_str(k, u, "token", what, &token);
	if (rc == 0)
		rc = kc_str(k, u, "tokenFile", what, &token_file);
	if (rc < 0)
		return rc;
	if (token != NULL && token[0] != '\0') {
		out->token = strdup(token);
		if (out->token == NULL)
			return kc_err(k, 0, -ENOMEM, "out of memory");
	}
	/* As client-go: the file, read again periodically, replaces the token. */
	if (token_file != NULL && token_file[0] != '\0') {
		out->token_file = kc_path(k, token_file);
		if (out->token_file == NULL)
			return kc_err(k, 0, -ENOMEM, "out of memory");
		free(out->token);
		out->token = NULL;
		rc = k8s_creds_read_token(out->token_file, &out->token, tok_err, sizeof(tok_err));
		if (rc < 0)
			return kc_err(k, 0, rc, "%s: tokenFile: %s", what, tok_err);
	}
	has_cert = kc_pem(k, u, what, "client-certificate", &out->cert_file, &out->cert);
	if (has_cert < 0)
		return has_cert;
	has_key = kc_pem(k, u, what, "client-key", &out->key_file, &out->key);
	if (has_key < 0)
		return has_key;
	if (has_cert != has_key)
		return kc_err(k, 0, -EINVAL, "%s: %s without %s", what,
			      has_cert ? "client-certificate" : "client-key",
			      has_cert ? "client-key" : "client-certificate");
	return 0;
}

static int
kc_load(struct kc *k, const struct k8s_yaml *root, const char *context, struct k8s_creds *out)
{
	const struct k8s_yaml *ctx, *cl, *u = NULL;
	const char *cluster = NULL, *user = NULL;
	char what[320];
	int rc;

	if (root->kind == K8S_YAML_NULL)
		return kc_err(k, 0, -EINVAL, "empty file");
	if (root->kind != K8S_YAML_MAP)
		return kc_err(k, root->line, -EINVAL, "not a mapping at the top (is it a "
			      "kubeconfig?)");
	if (context == NULL) {
		rc = kc_str(k, root, "current-context", "", &context);
		if (rc < 0)
			return rc;
		if (context == NULL || context[0] == '\0')
			return kc_err(k, 0, -EINVAL, "no current-context (name one with "
				      "kubernetes.context)");
	}
	snprintf(what, sizeof(what), "context \"%.200s\"", context);
	rc = kc_find(k, root, "contexts", "context", context, &ctx);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return kc_err(k, 0, -EINVAL, "%s: no such context", what);
	rc = kc_str(k, ctx, "cluster", what, &cluster);
	if (rc == 0)
		rc = kc_str(k, ctx, "user", what, &user);
	if (rc < 0)
		return rc;
	if (cluster == NULL || cluster[0] == '\0')
		return kc_err(k, 0, -EINVAL, "%s: no cluster", what);
	rc = kc_find(k, root, "clusters", "cluster", cluster, &cl);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return kc_err(k, 0, -EINVAL, "%s: cluster \"%.200s\": no such cluster", what,
			      cluster);
	rc = kc_cluster(k, cl, cluster, out);
	if (rc < 0)
		return rc;
	/* No user at all is anonymous access, which an API server may allow. */
	if (user != NULL && user[0] != '\0') {
		rc = kc_find(k, root, "users", "user", user, &u);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return kc_err(k, 0, -EINVAL, "%s: user \"%.200s\": no such user", what,
				      user);
		rc = kc_user(k, u, user, out);
		if (rc < 0)
			return rc;
	}
	out->origin = str_printf("kubeconfig %s context %s", k->path, context);
	if (out->origin == NULL)
		return kc_err(k, 0, -ENOMEM, "out of memory");
	return 0;
}

/* A JSON value as the tree the YAML reader builds; NULL for want of memory. */
static struct k8s_yaml *
from_json(const cJSON *j)
{
	struct k8s_yaml *y = calloc(1, sizeof(*y));
	const cJSON *c;
	size_t n;

	if (y == NULL)
		return NULL;
	if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
		n = (size_t)cJSON_GetArraySize(j);
		y->kind = cJSON_IsObject(j) ? K8S_YAML_MAP : K8S_YAML_SEQ;
		y->vals = calloc(n + 1, sizeof(*y->vals));
		y->keys = y->kind == K8S_YAML_MAP ? calloc(n + 1, sizeof(*y->keys)) : NULL;
		if (y->vals == NULL || (y->kind == K8S_YAML_MAP && y->keys == NULL))
			goto nomem;
		cJSON_ArrayForEach(c, j) {
			y->vals[y->n] = from_json(c);
			if (y->vals[y->n] == NULL)
				goto nomem;
			if (y->keys != NULL) {
				y->keys[y->n] = strdup(c->string);
				if (y->keys[y->n] == NULL) {
					y->n++;
					goto nomem;
				}
			}
			y->n++;
		}
		return y;
	}
	y->kind = K8S_YAML_SCALAR;
	if (cJSON_IsString(j))
		y->str = strdup(j->valuestring);
	else if (cJSON_IsBool(j))
		y->str = strdup(cJSON_IsTrue(j) ? "true" : "false");
	else if (cJSON_IsNumber(j))
		y->str = str_printf("%.17g", j->valuedouble);
	else
		y->kind = K8S_YAML_NULL;
	if (y->kind == K8S_YAML_SCALAR && y->str == NULL)
		goto nomem;
	return y;
nomem:
	k8s_yaml_free(y);
	return NULL;
}

/*
 * JSON is YAML too, and kubectl reads kubeconfig files written as JSON;
 * the YAML subset reader does not take flow collections over several lines,
 * so a file that starts with '{' is read with cJSON instead.
 */
static struct k8s_yaml *
parse_json(struct kc *k, const char *text, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(text, len);
	struct k8s_yaml *y;

	if (root == NULL) {
		const char *at = cJSON_GetErrorPtr();
		uint32_t line = 1;

		for (const char *c = text; at != NULL && c < at && c < text + len; c++)
			line += *c == '\n';
		kc_err(k, line, -EINVAL, "not valid JSON");
		errno = EINVAL;
		return NULL;
	}
	y = from_json(root);
	cJSON_Delete(root);
	if (y == NULL) {
		kc_err(k, 0, -ENOMEM, "out of memory");
		errno = ENOMEM;
	}
	return y;
}

int
k8s_creds_kubeconfig(const char *path, const char *context, struct k8s_creds *out, char *err,
		     size_t errlen)
{
	struct kc k = { .path = path, .err = err, .errlen = errlen };
	struct k8s_yaml *root;
	char *text, *name, *slash;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = read_all(path, &text, &len);
	if (rc < 0)
		return kc_err(&k, 0, rc, "cannot read: %s", read_why(rc));
	name = str_printf("kubeconfig %s", path);
	k.dir = strdup(path);
	if (name == NULL || k.dir == NULL) {
		rc = kc_err(&k, 0, -ENOMEM, "out of memory");
		goto free_text;
	}
	slash = strrchr(k.dir, '/');
	if (slash == NULL)
		strcpy(k.dir, ".");
	else if (slash == k.dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (text[strspn(text, " \t\r\n")] == '{')
		root = parse_json(&k, text, len);
	else
		root = k8s_yaml_parse(text, len, name, err, errlen);
	if (root == NULL) {
		rc = -errno;
		goto free_text;
	}
	rc = kc_load(&k, root, context, out);
	k8s_yaml_free(root);
	if (rc < 0)
		k8s_creds_clear(out);
free_text:
	free(name);
	free(k.dir);
	free(text);
	return rc;
}

int
k8s_creds_load(const struct sg_k8s_conf *c, struct k8s_creds *out, char *err, size_t errlen)
{
	if (c->source == SG_CONF_K8S_IN_CLUSTER)
		return k8s_creds_in_cluster(c->sa_dir, out, err, errlen);
	if (c->source == SG_CONF_K8S_KUBECONFIG && c->kubeconfig != NULL)
		return k8s_creds_kubeconfig(c->kubeconfig, c->context, out, err, errlen);
	memset(out, 0, sizeof(*out));
	if (c->source == SG_CONF_K8S_KUBECONFIG)
		return put_err(err, errlen, -EINVAL, "kubeconfig: no file given");
	return put_err(err, errlen, -EINVAL, "kubernetes: source %u is neither in-cluster nor "
		       "kubeconfig", c->source);
}
