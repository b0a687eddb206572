/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/k8s, with no network and no API server: arguments
 * first, then the YAML reader (valid text, then one case per error with its
 * message), kubeconfig and in-cluster credentials (each error named),
 * base64, the hash map against a reference, the watch line splitter fed
 * one stream cut at every byte boundary, event decoding, the backoff's
 * bounds, the request paths, and the model as a table of fixtures (JSON
 * events in, rendered snapshots out, one cmocka case per row), relists,
 * the default mode and the nodes. JSON fixtures are written with ' for "
 * to stay readable. Files go to a private temporary directory, removed at
 * the end; every random choice comes from a fixed seed.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>

#include "sg_common.h"
#include "conf.h"
#include "k8s.h"
#include "k8s_private.h"

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------- */

/* ' becomes ": fixtures hold no other quote. Static storage, one at a time per slot. */
static char *
q(const char *s)
{
	char *r = strdup(s);

	assert_non_null(r);
	for (char *p = r; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

static void
write_file(char *path, size_t size, const char *name, const char *text)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* What the log callback saw. */
struct logbook {
	unsigned int n[SG_K8S_LOG_DEBUG + 1];
	char last[SG_K8S_LOG_DEBUG + 1][700];
};

static void
log_cb(void *arg, unsigned int level, const char *msg)
{
	struct logbook *b = arg;

	assert_true(level >= SG_K8S_LOG_ERR && level <= SG_K8S_LOG_DEBUG);
	b->n[level]++;
	snprintf(b->last[level], sizeof(b->last[level]), "%s", msg);
}

/* ---- YAML ---------------------------------------------------------------- */

static struct k8s_yaml *
yaml_ok(const char *text)
{
	char err[300];
	struct k8s_yaml *y = k8s_yaml_parse(text, strlen(text), "t", err, sizeof(err));

	if (y == NULL)
		fail_msg("unexpected YAML error: %s", err);
	assert_string_equal(err, "");
	return y;
}

static const char *
ystr(const struct k8s_yaml *y, const char *key)
{
	const struct k8s_yaml *v = k8s_yaml_get(y, key);

	assert_non_null(v);
	assert_int_equal(v->kind, K8S_YAML_SCALAR);
	return v->str;
}

static void
test_yaml_args(void **state)
{
	char err[64] = "x";
	struct k8s_yaml *y;

	(void)state;
	errno = 0;
	assert_null(k8s_yaml_parse(NULL, 0, "t", err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	/* Nothing but comments and blanks: a null document. */
	y = k8s_yaml_parse("# only\n\n   \n", 12, NULL, NULL, 0);
	assert_non_null(y);
	assert_int_equal(y->kind, K8S_YAML_NULL);
	assert_null(k8s_yaml_get(y, "a"));
	k8s_yaml_free(y);
	y = k8s_yaml_parse("", 0, "t", err, sizeof(err));
	assert_non_null(y);
	assert_int_equal(y->kind, K8S_YAML_NULL);
	k8s_yaml_free(y);
	k8s_yaml_free(NULL);
	/* The length is what counts, not a NUL after it. */
	y = yaml_ok("a: 1");
	k8s_yaml_free(y);
	y = k8s_yaml_parse("a: 1\nb: 2", 4, "t", err, sizeof(err));
	assert_non_null(y);
	assert_int_equal(y->n, 1);
	k8s_yaml_free(y);
}

/* A kubeconfig as kubectl writes it, and the other forms of the subset. */
static void
test_yaml_valid(void **state)
{
	static const char text[] =
		"---\n"
		"# written by kubectl\r\n"
		"apiVersion: v1\n"
		"clusters:\n"
		"- cluster:\n"
		"    certificate-authority-data: QUJD\n"
		"    server: https://127.0.0.1:6443   # a comment\n"
		"  name: kind-kind\n"
		"- name: \"two # not a comment\"\n"
		"  cluster: {}\n"
		"contexts:\n"
		"  - context:\n"
		"      cluster: kind-kind\n"
		"      user: 'it''s me'\n"
		"    name: kind-kind\n"
		"current-context: kind-kind\n"
		"kind: Config\n"
		"preferences: {}\n"
		"empty:\n"
		"tilde: ~\n"
		"flow: [a, \"b c\", [d], {e: f, g: [1, 2], h}, ]\n"
		"escapes: \"t\\tq\\\"b\\\\u\\u00e9x\\x41\"\n"
		"\"quoted key\": v\n"
		"colon: a:b\n"
		"hash: a#b\n"
		"nested:\n"
		"  - - x\n"
		"    - y\n"
		"  -\n"
		"    z: 1\n"
		"  - \n"
		"users: []\n"
		"...\n"
		"ignored: after the end\n";
	struct k8s_yaml *y = yaml_ok(text);
	const struct k8s_yaml *cl, *c0, *f, *n;

	(void)state;
	assert_int_equal(y->kind, K8S_YAML_MAP);
	assert_string_equal(ystr(y, "apiVersion"), "v1");
	cl = k8s_yaml_get(y, "clusters");
	assert_int_equal(cl->kind, K8S_YAML_SEQ);
	assert_int_equal(cl->n, 2);
	c0 = k8s_yaml_get(cl->vals[0], "cluster");
	assert_string_equal(ystr(c0, "server"), "https://127.0.0.1:6443");
	assert_string_equal(ystr(c0, "certificate-authority-data"), "QUJD");
	assert_string_equal(ystr(cl->vals[0], "name"), "kind-kind");
	assert_int_equal(cl->vals[0]->line, 5);
	assert_string_equal(ystr(cl->vals[1], "name"), "two # not a comment");
	assert_int_equal(k8s_yaml_get(cl->vals[1], "cluster")->kind, K8S_YAML_MAP);
	assert_int_equal(k8s_yaml_get(cl->vals[1], "cluster")->n, 0);
	n = k8s_yaml_get(y, "contexts");
	assert_int_equal(n->n, 1);
	assert_string_equal(ystr(k8s_yaml_get(n->vals[0], "context"), "user"), "it's me");
	assert_string_equal(ystr(n->vals[0], "name"), "kind-kind");
	assert_string_equal(ystr(y, "current-context"), "kind-kind");
	assert_int_equal(k8s_yaml_get(y, "empty")->kind, K8S_YAML_NULL);
	assert_int_equal(k8s_yaml_get(y, "tilde")->kind, K8S_YAML_NULL);
	f = k8s_yaml_get(y, "flow");
	assert_int_equal(f->kind, K8S_YAML_SEQ);
	assert_int_equal(f->n, 4);
	assert_string_equal(f->vals[0]->str, "a");
	assert_string_equal(f->vals[1]->str, "b c");
	assert_string_equal(f->vals[2]->vals[0]->str, "d");
	assert_string_equal(ystr(f->vals[3], "e"), "f");
	assert_int_equal(k8s_yaml_get(f->vals[3], "g")->n, 2);
	assert_int_equal(k8s_yaml_get(f->vals[3], "h")->kind, K8S_YAML_NULL);
	assert_string_equal(ystr(y, "escapes"), "t\tq\"b\\u\xc3\xa9x" "A");
	assert_string_equal(ystr(y, "quoted key"), "v");
	assert_string_equal(ystr(y, "colon"), "a:b");
	assert_string_equal(ystr(y, "hash"), "a#b");
	n = k8s_yaml_get(y, "nested");
	assert_int_equal(n->n, 3);
	assert_int_equal(n->vals[0]->kind, K8S_YAML_SEQ);
	assert_string_equal(n->vals[0]->vals[1]->str, "y");
	assert_string_equal(ystr(n->vals[1], "z"), "1");
	assert_int_equal(n->vals[2]->kind, K8S_YAML_NULL);
	assert_int_equal(k8s_yaml_get(y, "users")->kind, K8S_YAML_SEQ);
	assert_null(k8s_yaml_get(y, "ignored"));
	assert_null(k8s_yaml_get(y, "absent"));
	assert_null(k8s_yaml_get(cl, "name"));	/* not a mapping */
	k8s_yaml_free(y);

	/* A lone scalar, and a sequence at the top. */
	y = yaml_ok("  just text  \n");
	assert_int_equal(y->kind, K8S_YAML_SCALAR);
	assert_string_equal(y->str, "just text");
	k8s_yaml_free(y);
	y = yaml_ok("- 1\n- two\n");
	assert_int_equal(y->kind, K8S_YAML_SEQ);
	assert_int_equal(y->n, 2);
	k8s_yaml_free(y);
}

struct yaml_bad {
	const char *name;
	const char *text;
	const char *expect;	/* the whole error, file "f" */
};

static const struct yaml_bad yaml_bad_rows[] = {
	{ "tab", "a:\n\tb: 1\n", "f:2: tab in indentation (YAML indents with spaces)" },
	{ "indent_deeper", "a: 1\n  b: 2\n", "f:2: bad indentation" },
	{ "indent_between", "a:\n    b: 1\n  c: 2\n", "f:3: bad indentation" },
	{ "indent_seq", "- a: 1\n   b: 2\n", "f:2: bad indentation" },
	{ "indent_scalar", "- x\n    y\n", "f:2: bad indentation (a scalar over several lines? "
	  "write it on one)" },
	{ "dup_key", "a: 1\nb: 2\na: 3\n", "f:3: duplicate key \"a\"" },
	{ "dup_flow_key", "a: {x: 1, x: 2}\n", "f:1: duplicate key \"x\"" },
	{ "block_literal", "a: |\n  text\n", "f:1: block scalars (| and >) are not supported" },
	{ "block_folded", "a: >-\n  text\n", "f:1: block scalars (| and >) are not supported" },
	{ "anchor", "a: &x 1\n", "f:1: anchors and aliases (& and *) are not supported" },
	{ "alias", "a: *x\n", "f:1: anchors and aliases (& and *) are not supported" },
	{ "tag", "a: !!str 1\n", "f:1: tags (!) are not supported" },
	{ "reserved", "a: @x\n", "f:1: '@' cannot start a plain scalar (quote it)" },
	{ "unclosed_double", "a: \"x\n", "f:1: double-quoted scalar not closed on its line "
	  "(multi-line scalars are not supported)" },
	{ "unclosed_single", "- 'x\n", "f:1: single-quoted scalar not closed on its line "
	  "(multi-line scalars are not supported)" },
	{ "unclosed_flow", "a: [1, 2\n", "f:1: '[' not closed on its line (multi-line flow "
	  "collections are not supported)" },
	{ "unclosed_flow_map", "a: {b: 1\n", "f:1: '{' not closed on its line (multi-line flow "
	  "collections are not supported)" },
	{ "flow_junk", "a: [1 2] x\n", "f:1: text after the end of a flow collection" },
	{ "flow_sep", "a: {b: [1] c}\n", "f:1: expected ',' or '}' in a flow collection" },
	{ "after_quote", "a: \"x\" y\n", "f:1: text after the end of a quoted scalar" },
	{ "two_docs", "a: 1\n---\nb: 2\n", "f:2: several documents are not supported" },
	{ "doc_content", "--- a\n", "f:1: content after \"---\" is not supported" },
	{ "directive", "%YAML 1.2\n---\na: 1\n", "f:1: directives (%) are not supported" },
	{ "complex_key", "? a\n: b\n", "f:1: complex keys (?) are not supported" },
	{ "seq_in_map", "a: 1\n- b\n", "f:2: a sequence entry where a key was expected" },
	{ "not_key", "a: 1\nb\n", "f:2: expected \"key: value\"" },
	{ "colon_plain", "a: b: c\n", "f:1: \": \" inside a plain scalar (quote the value)" },
	{ "escape", "a: \"\\q\"\n", "f:1: unknown escape \"\\q\" in a double-quoted scalar" },
	{ "escape_hex", "a: \"\\x4\"\n", "f:1: \"\\x\" needs 2 hex digits" },
	{ "escape_surrogate", "a: \"\\ud800\"\n", "f:1: \"\\u\" escape is not a character" },
	{ "deep", "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	  "f:1: nested deeper than 64" },
};

static void
test_yaml_bad_row(void **state)
{
	const struct yaml_bad *b = *state;
	char err[300];

	errno = 0;
	assert_null(k8s_yaml_parse(b->text, strlen(b->text), "f", err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, b->expect);
}

static void
test_yaml_nul(void **state)
{
	static const char text[] = "a: 1\nb: \0 2\n";
	char err[100];

	(void)state;
	assert_null(k8s_yaml_parse(text, sizeof(text) - 1, "f", err, sizeof(err)));
	assert_string_equal(err, "f:2: contains a NUL byte");
	/* An error longer than the buffer is cut and terminated. */
	assert_null(k8s_yaml_parse("a: |\n", 5, "f", err, 8));
	assert_string_equal(err, "f:1: bl");
}

/* ---- base64 -------------------------------------------------------------- */

static void
test_base64(void **state)
{
	static const struct {
		const char *in;
		const char *out;	/* NULL: invalid */
	} rows[] = {
		{ "", "" }, { "QQ==", "A" }, { "QUI=", "AB" }, { "QUJD", "ABC" },
		{ "QQ", "A" }, { "QUI", "AB" }, { " QU\nJD\r\n", "ABC" },
		{ "Pz8/Pw==", "????" }, { "+/+/", "\xfb\xff\xbf" },
		{ "Q", NULL }, { "QQ=", NULL }, { "QUJD=", NULL }, { "QQ===", NULL },
		{ "Q=Q=", NULL }, { "QU!D", NULL }, { "QUJD-_", NULL },
	};

	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(rows); i++) {
		struct k8s_blob b = { NULL, 0 };
		int rc = k8s_base64_decode(rows[i].in, &b);

		if (rows[i].out == NULL) {
			if (rc != -EINVAL)
				fail_msg("\"%s\" decoded", rows[i].in);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(b.len, strlen(rows[i].out));
		assert_memory_equal(b.data, rows[i].out, b.len);
		free(b.data);
	}
}

/* ---- kubeconfig ---------------------------------------------------------- */

/* Lines 1-4: context "a" of cluster "c" and user "u". */
#define KC_HEAD "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
/* Lines 5-8, then extra from line 9. */
#define KC_CLUSTER(extra) "clusters:\n- name: c\n  cluster:\n    server: https://k:6443\n" extra
/* Three lines, then extra. */
#define KC_USER(extra) "users:\n- name: u\n  user:\n" extra

static void
test_kubeconfig_valid(void **state)
{
	char path[PATH_MAX], p[PATH_MAX], err[400], want[PATH_MAX + 64];
	struct k8s_creds c;
	const char *text =
		"apiVersion: v1\n"
		"kind: Config\n"
		"clusters:\n"
		"- name: c1\n"
		"  cluster:\n"
		"    server: https://[2001:db8::1]:6443/\n"
		"    certificate-authority-data: Q0EgUEVN\n"		/* "CA PEM" */
		"- name: c2\n"
		"  cluster:\n"
		"    server: http://127.0.0.1:8080\n"
		"    certificate-authority: ca.crt\n"
		"    insecure-skip-tls-verify: true\n"
		"contexts:\n"
		"- name: a\n"
		"  context: {cluster: c1, user: u1}\n"
		"- name: b\n"
		"  context:\n"
		"    cluster: c2\n"
		"    user: u2\n"
		"    namespace: ignored\n"
		"- name: anon\n"
		"  context:\n"
		"    cluster: c1\n"
		"current-context: a\n"
		"preferences: {}\n"
		"users:\n"
		"- name: u1\n"
		"  user:\n"
		"    token: tok-1\n"
		"    client-certificate-data: Q0VSVA==\n"		/* "CERT" */
		"    client-key-data: S0VZ\n"			/* "KEY" */
		"- name: u2\n"
		"  user:\n"
		"    token: overridden\n"
		"    tokenFile: tok.txt\n"
		"    client-certificate: %s/cert.pem\n"
		"    client-key: key.pem\n";
	char buf[2048];

	(void)state;
	write_file(p, sizeof(p), "ca.crt", "ca\n");
	write_file(p, sizeof(p), "cert.pem", "cert\n");
	write_file(p, sizeof(p), "key.pem", "key\n");
	write_file(p, sizeof(p), "tok.txt", "\n  tok-from-file \r\n");
	snprintf(buf, sizeof(buf), text, tmpdir);
	write_file(path, sizeof(path), "kc_valid", buf);

	assert_int_equal(k8s_creds_kubeconfig(path, NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.server, "https://[2001:db8::1]:6443");
	assert_int_equal(c.ca.len, 6);
	assert_memory_equal(c.ca.data, "CA PEM", 6);
	assert_null(c.ca_file);
	assert_string_equal(c.token, "tok-1");
	assert_null(c.token_file);
	assert_memory_equal(c.cert.data, "CERT", 4);
	assert_memory_equal(c.key.data, "KEY", 3);
	assert_int_equal(c.insecure, 0);
	snprintf(want, sizeof(want), "kubeconfig %s context a", path);
	assert_string_equal(c.origin, want);
	k8s_creds_clear(&c);

	assert_int_equal(k8s_creds_kubeconfig(path, "b", &c, err, sizeof(err)), 0);
	assert_string_equal(c.server, "http://127.0.0.1:8080");
	snprintf(want, sizeof(want), "%s/ca.crt", tmpdir);
	assert_string_equal(c.ca_file, want);
	assert_null(c.ca.data);
	assert_int_equal(c.insecure, 1);
	/* tokenFile wins over token, as in client-go, and is kept to be read again. */
	assert_string_equal(c.token, "tok-from-file");
	snprintf(want, sizeof(want), "%s/tok.txt", tmpdir);
	assert_string_equal(c.token_file, want);
	snprintf(want, sizeof(want), "%s/cert.pem", tmpdir);
	assert_string_equal(c.cert_file, want);
	snprintf(want, sizeof(want), "%s/key.pem", tmpdir);
	assert_string_equal(c.key_file, want);
	k8s_creds_clear(&c);

	/* A context with no user: anonymous. */
	assert_int_equal(k8s_creds_kubeconfig(path, "anon", &c, err, sizeof(err)), 0);
	assert_null(c.token);
	assert_null(c.cert.data);
	assert_null(c.cert_file);
	k8s_creds_clear(&c);

	/* The same file as JSON (which kubectl reads too). */
	write_file(path, sizeof(path), "kc_json",
		   "{\"apiVersion\": \"v1\", \"current-context\": \"a\",\n"
		   " \"clusters\": [{\"name\": \"c1\",\n"
		   "   \"cluster\": {\"server\": \"https://k:6443\",\n"
		   "   \"insecure-skip-tls-verify\": true}}],\n"
		   " \"contexts\": [{\"name\": \"a\", \"context\": {\"cluster\": \"c1\", "
		   "\"user\": \"u1\", \"namespace\": null}}],\n"
		   " \"users\": [{\"name\": \"u1\", \"user\": {\"token\": \"tok-j\", \"n\": 5}}],\n"
		   " \"preferences\": {}}\n");
	assert_int_equal(k8s_creds_kubeconfig(path, NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://k:6443");
	assert_int_equal(c.insecure, 1);
	assert_string_equal(c.token, "tok-j");
	k8s_creds_clear(&c);
	k8s_creds_clear(NULL);
}

struct kc_bad {
	const char *name;
	const char *context;
	const char *text;
	/* The error; '@' stands for the file's path, '#' for the test directory. */
	const char *expect;
	int rc;
};

static const struct kc_bad kc_bad_rows[] = {
	{ "empty", NULL, "", "kubeconfig @: empty file", -EINVAL },
	{ "not_map", NULL, "- a\n", "kubeconfig @:1: not a mapping at the top (is it a "
	  "kubeconfig?)", -EINVAL },
	{ "yaml", NULL, "apiVersion: v1\nkind: |\n", "kubeconfig @:2: block scalars (| and >) "
	  "are not supported", -EINVAL },
	{ "json", NULL, "{\n  \"current-context\": \"a\",\n  x\n}\n",
	  "kubeconfig @:3: not valid JSON", -EINVAL },
	{ "json_array", NULL, " [1]", "kubeconfig @:1: not a mapping at the top (is it a "
	  "kubeconfig?)", -EINVAL },
	{ "json_insecure", NULL, "{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", "
	  "\"context\": {\"cluster\": \"c\"}}], \"clusters\": [{\"name\": \"c\", \"cluster\": "
	  "{\"server\": \"https://k\", \"insecure-skip-tls-verify\": 1}}]}",
	  "kubeconfig @: cluster \"c\": insecure-skip-tls-verify \"1\" is not true or false",
	  -EINVAL },
	{ "no_current", NULL, "apiVersion: v1\n", "kubeconfig @: no current-context (name one "
	  "with kubernetes.context)", -EINVAL },
	{ "current_not_string", NULL, "current-context: [a]\n", "kubeconfig @:1: "
	  "current-context is not a string", -EINVAL },
	{ "no_context", NULL, "current-context: x\ncontexts: []\n",
	  "kubeconfig @: context \"x\": no such context", -EINVAL },
	{ "no_named_context", "edge", KC_HEAD KC_CLUSTER(""),
	  "kubeconfig @: context \"edge\": no such context", -EINVAL },
	{ "contexts_not_list", NULL, "current-context: a\ncontexts: {}\n",
	  "kubeconfig @:2: contexts is not a list", -EINVAL },
	{ "context_entry", NULL, "current-context: a\ncontexts:\n- a\n",
	  "kubeconfig @:3: contexts: an entry is not a mapping", -EINVAL },
	{ "context_body", NULL, "current-context: a\ncontexts:\n- name: a\n  context: [x]\n",
	  "kubeconfig @:4: context \"a\": context is not a mapping", -EINVAL },
	{ "no_cluster", NULL, "current-context: a\ncontexts:\n- name: a\n  context: {user: u}\n",
	  "kubeconfig @: context \"a\": no cluster", -EINVAL },
	{ "no_such_cluster", NULL, KC_HEAD "clusters:\n- name: d\n  cluster: {server: x}\n",
	  "kubeconfig @: context \"a\": cluster \"c\": no such cluster", -EINVAL },
	{ "no_server", NULL, KC_HEAD "clusters:\n- name: c\n  cluster: {}\n",
	  "kubeconfig @: cluster \"c\": no server", -EINVAL },
	{ "server_scheme", NULL, KC_HEAD "clusters:\n- name: c\n  cluster:\n"
	  "    server: ftp://k\n", "kubeconfig @:8: cluster \"c\": server \"ftp://k\" is not an "
	  "http:// or https:// URL", -EINVAL },
	{ "server_type", NULL, KC_HEAD "clusters:\n- name: c\n  cluster:\n    server: {a: 1}\n",
	  "kubeconfig @:8: cluster \"c\": server is not a string", -EINVAL },
	{ "insecure", NULL, KC_HEAD KC_CLUSTER("    insecure-skip-tls-verify: yes\n"),
	  "kubeconfig @:9: cluster \"c\": insecure-skip-tls-verify \"yes\" is not true or false",
	  -EINVAL },
	{ "ca_base64", NULL, KC_HEAD KC_CLUSTER("    certificate-authority-data: '!!'\n"),
	  "kubeconfig @:9: cluster \"c\": certificate-authority-data is not base64", -EINVAL },
	{ "ca_empty", NULL, KC_HEAD KC_CLUSTER("    certificate-authority-data: ''\n"),
	  "kubeconfig @:9: cluster \"c\": certificate-authority-data is not base64", -EINVAL },
	{ "ca_missing", NULL, KC_HEAD KC_CLUSTER("    certificate-authority: nope.crt\n"),
	  "kubeconfig @: cluster \"c\": certificate-authority #/nope.crt: No such file or "
	  "directory", -ENOENT },
	{ "no_such_user", NULL, KC_HEAD KC_CLUSTER("") "users: []\n",
	  "kubeconfig @: context \"a\": user \"u\": no such user", -EINVAL },
	{ "exec", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    exec:\n      command: aws\n"),
	  "kubeconfig @:12: user \"u\": exec credential plugins are not supported (use a token "
	  "or a client certificate)", -EINVAL },
	{ "auth_provider", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    auth-provider: {name: gcp}\n"),
	  "kubeconfig @:12: user \"u\": auth-provider plugins are not supported (use a token or "
	  "a client certificate)", -EINVAL },
	{ "basic", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    username: admin\n"
	  "    password: secret\n"),
	  "kubeconfig @:12: user \"u\": basic authentication is not supported (use a token or a "
	  "client certificate)", -EINVAL },
	{ "cert_no_key", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    client-certificate-data: "
	  "Q0VSVA==\n"),
	  "kubeconfig @: user \"u\": client-certificate without client-key", -EINVAL },
	{ "key_no_cert", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    client-key-data: S0VZ\n"),
	  "kubeconfig @: user \"u\": client-key without client-certificate", -EINVAL },
	{ "cert_base64", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    client-certificate-data: "
	  "Q0VSVA=x\n    client-key-data: S0VZ\n"),
	  "kubeconfig @:12: user \"u\": client-certificate-data is not base64", -EINVAL },
	{ "key_file", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    client-certificate-data: "
	  "Q0VSVA==\n    client-key: /nonexistent/key.pem\n"),
	  "kubeconfig @: user \"u\": client-key /nonexistent/key.pem: No such file or directory",
	  -ENOENT },
	{ "token_file", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    tokenFile: missing.tok\n"),
	  "kubeconfig @: user \"u\": tokenFile: token #/missing.tok: No such file or directory",
	  -ENOENT },
	{ "token_empty", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    tokenFile: empty.tok\n"),
	  "kubeconfig @: user \"u\": tokenFile: token #/empty.tok: empty", -EINVAL },
	{ "token_type", NULL, KC_HEAD KC_CLUSTER("") KC_USER("    token: [a]\n"),
	  "kubeconfig @:12: user \"u\": token is not a string", -EINVAL },
};

/* Expand '@' and '#' of a row's expected error. */
static void
expand(char *out, size_t size, const char *tmpl, const char *path)
{
	size_t o = 0;

	for (const char *t = tmpl; *t != '\0' && o + 1 < size; t++) {
		const char *sub = *t == '@' ? path : *t == '#' ? tmpdir : NULL;

		if (sub != NULL)
			o += (size_t)snprintf(out + o, size - o, "%s", sub);
		else
			out[o++] = *t;
	}
	out[o < size ? o : size - 1] = '\0';
}

static void
test_kubeconfig_bad_row(void **state)
{
	const struct kc_bad *b = *state;
	char path[PATH_MAX], name[96], err[600], want[PATH_MAX * 2 + 400], p[PATH_MAX];
	struct k8s_creds c;

	write_file(p, sizeof(p), "empty.tok", " \n");
	snprintf(name, sizeof(name), "kc_%s", b->name);
	write_file(path, sizeof(path), name, b->text);
	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(k8s_creds_kubeconfig(path, b->context, &c, err, sizeof(err)), b->rc);
	expand(want, sizeof(want), b->expect, path);
	assert_string_equal(err, want);
	/* Nothing is left to free after a failure. */
	assert_null(c.server);
	assert_null(c.token);
	assert_null(c.origin);
}

static void
test_kubeconfig_files(void **state)
{
	char err[300];
	struct k8s_creds c;

	(void)state;
	assert_int_equal(k8s_creds_kubeconfig("/nonexistent/kc", NULL, &c, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "kubeconfig /nonexistent/kc: cannot read: No such file or "
			    "directory");
	assert_int_equal(k8s_creds_kubeconfig(tmpdir, NULL, &c, err, sizeof(err)), -EISDIR);
	/* A relative kubeconfig path: its own paths are relative to the working directory. */
	assert_int_equal(k8s_creds_kubeconfig("nonexistent-kc", NULL, &c, NULL, 0), -ENOENT);
}

/* ---- in-cluster ---------------------------------------------------------- */

static void
sa_dir_make(char *dir, size_t size, const char *name, const char *token, int ca)
{
	char p[PATH_MAX + 16];

	snprintf(dir, size, "%s/%s", tmpdir, name);
	mkdir(dir, 0700);
	if (token != NULL) {
		snprintf(p, sizeof(p), "%s/token", dir);
		FILE *f = fopen(p, "w");

		assert_non_null(f);
		fputs(token, f);
		fclose(f);
	}
	if (ca) {
		snprintf(p, sizeof(p), "%s/ca.crt", dir);
		FILE *f = fopen(p, "w");

		assert_non_null(f);
		fputs("ca\n", f);
		fclose(f);
	}
}

static void
expect_in_cluster(const char *dir, int rc, const char *expect)
{
	char err[600], want[PATH_MAX + 300];
	struct k8s_creds c;

	assert_int_equal(k8s_creds_in_cluster(dir, &c, err, sizeof(err)), rc);
	expand(want, sizeof(want), expect, dir);
	assert_string_equal(err, want);
	assert_null(c.server);
}

static void
test_in_cluster(void **state)
{
	char dir[PATH_MAX], want[PATH_MAX + 32];
	struct k8s_creds c;

	(void)state;
	sa_dir_make(dir, sizeof(dir), "sa", "token-1\n", 1);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_HOST is not set (not "
			  "running in a pod?)");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT is not set (not "
			  "running in a pod?)");
	setenv("KUBERNETES_SERVICE_PORT", "", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT is not set (not "
			  "running in a pod?)");
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"https\" is not a "
			  "port");
	setenv("KUBERNETES_SERVICE_PORT", "65536", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"65536\" is not a "
			  "port");
	setenv("KUBERNETES_SERVICE_PORT", "-443", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"-443\" is not a "
			  "port");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "evil/path", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: KUBERNETES_SERVICE_HOST \"evil/path\" is not "
			  "a host");

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	assert_int_equal(k8s_creds_in_cluster(dir, &c, NULL, 0), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	assert_string_equal(c.token, "token-1");
	snprintf(want, sizeof(want), "%s/token", dir);
	assert_string_equal(c.token_file, want);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	assert_string_equal(c.ca_file, want);
	assert_string_equal(c.origin, "in-cluster");
	assert_int_equal(c.insecure, 0);
	k8s_creds_clear(&c);

	/* IPv6 in brackets (RFC 3986 §3.2.2). */
	setenv("KUBERNETES_SERVICE_HOST", "2001:db8::1", 1);
	assert_int_equal(k8s_creds_in_cluster(dir, &c, NULL, 0), 0);
	assert_string_equal(c.server, "https://[2001:db8::1]:443");
	k8s_creds_clear(&c);

	sa_dir_make(dir, sizeof(dir), "sa_no_token", NULL, 1);
	expect_in_cluster(dir, -ENOENT, "in-cluster: token @/token: No such file or directory");
	sa_dir_make(dir, sizeof(dir), "sa_empty_token", "\n\n", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: token @/token: empty");
	sa_dir_make(dir, sizeof(dir), "sa_bad_token", "a\x01z\n", 1);
	expect_in_cluster(dir, -EINVAL, "in-cluster: token @/token: not a token (control "
			  "characters)");
	sa_dir_make(dir, sizeof(dir), "sa_no_ca", "t\n", 0);
	expect_in_cluster(dir, -ENOENT, "in-cluster: ca.crt @/ca.crt: No such file or directory");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

/* Which source the configuration picks, through the public API (no request is made). */
static void
test_credential_selection(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], err[400], want[PATH_MAX + 160];
	struct logbook lb = { { 0 }, { "" } };
	struct sg_k8s_conf kc = { .source = SG_CONF_K8S_IN_CLUSTER, .log = log_cb,
				  .log_arg = &lb };
	struct sg_k8s_sync st;
	struct sg_k8s *k;

	(void)state;
	sa_dir_make(dir, sizeof(dir), "sa_sel", "tok\n", 1);
	kc.sa_dir = dir;
	unsetenv("KUBERNETES_SERVICE_HOST");
	errno = 0;
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_HOST is not set (not running "
			    "in a pod?)");
	setenv("KUBERNETES_SERVICE_HOST", "192.0.2.10", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	k = sg_k8s_create(&kc, err, sizeof(err));
	assert_non_null(k);
	assert_string_equal(err, "");
	assert_string_equal(lb.last[SG_K8S_LOG_INFO], "API server https://192.0.2.10:6443 "
			    "(in-cluster)");
	assert_int_equal(sg_k8s_sync_state(k, &st), 0);
	assert_string_equal(st.server, "https://192.0.2.10:6443");
	assert_int_equal(st.synced, 0);
	assert_int_equal(st.res[SG_K8S_SERVICES].state, SG_K8S_STREAM_IDLE);
	assert_string_equal(st.last_error, "");
	/* Stopped before it started, freed: nothing to wait for. */
	sg_k8s_stop(k);
	sg_k8s_free(k);

	/* The kubeconfig source ignores the environment. */
	write_file(path, sizeof(path), "kc_sel", KC_HEAD
		   "clusters:\n- name: c\n  cluster:\n    server: https://192.0.2.20:6443\n"
		   "    insecure-skip-tls-verify: true\n" KC_USER("    token: t\n"));
	kc.source = SG_CONF_K8S_KUBECONFIG;
	kc.kubeconfig = path;
	k = sg_k8s_create(&kc, err, sizeof(err));
	assert_non_null(k);
	snprintf(want, sizeof(want), "kubeconfig %s context a: insecure-skip-tls-verify: the API "
		 "server's certificate is not checked", path);
	assert_string_equal(lb.last[SG_K8S_LOG_WARNING], want);
	assert_int_equal(sg_k8s_sync_state(k, &st), 0);
	assert_string_equal(st.server, "https://192.0.2.20:6443");
	sg_k8s_free(k);

	kc.context = "other";
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	snprintf(want, sizeof(want), "kubeconfig %s: context \"other\": no such context", path);
	assert_string_equal(err, want);
	kc.context = NULL;
	kc.kubeconfig = NULL;
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	assert_string_equal(err, "kubeconfig: no file given");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}


/* ---- requests (k8s_call.c) and writes (k8s_write.c) ------------------------------------- */

/*
 * A one-connection HTTP server: reads requests, keeps the last and every
 * request line (in seen, while it fits), answers each with 201 (or status,
 * if set) and {"ok":true}, after hold is cleared. sg_k8s_start() also
 * starts the client thread, whose lists and watches (they have a query
 * string) reach this server too: their connections are closed unanswered,
 * and the one served is the writer's, however the two threads race.
 */
struct tiny_http {
	int lfd;
	int cfd;
	unsigned short port;
	char last[4096];
	char seen[32768];		/* "METHOD path\n" each, in order */
	_Atomic unsigned int served;	/* requests received; seen is written first */
	_Atomic int status;
	_Atomic int hold;		/* set: received requests wait for their answer */
	pthread_t th;
};

static void *
tiny_http_main(void *arg)
{
	struct tiny_http *t = arg;
	char buf[sizeof(t->last)], answer[200];
	int fd = accept(t->lfd, NULL, NULL);
	size_t len = 0;

	t->cfd = fd;
	while (fd >= 0) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		char *end, *cl, *eol;
		size_t want;

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL)
			continue;
		eol = strstr(buf, "\r\n");
		if (memchr(buf, '?', (size_t)(eol - buf)) != NULL) {
			close(fd);
			len = 0;
			fd = accept(t->lfd, NULL, NULL);
			t->cfd = fd;
			continue;
		}
		cl = strcasestr(buf, "Content-Length: ");
		want = (size_t)(end + 4 - buf) + (cl != NULL ? strtoul(cl + 16, NULL, 10) : 0);
		if (len < want)
			continue;
		memcpy(t->last, buf, len + 1);
		eol = strstr(buf, " HTTP/1.1\r\n");
		if (eol != NULL && strlen(t->seen) + (size_t)(eol - buf) + 2 <= sizeof(t->seen))
			snprintf(t->seen + strlen(t->seen), sizeof(t->seen) - strlen(t->seen),
				 "%.*s\n", (int)(eol - buf), buf);
		t->served++;
		while (t->hold)
			usleep(1000);
		len = 0;
		snprintf(answer, sizeof(answer), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: 11\r\n\r\n{\"ok\":true}", t->status != 0 ? t->status : 201);
		if (write(fd, answer, strlen(answer)) < 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void
tiny_http_start(struct tiny_http *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(t, 0, sizeof(*t));
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(t->lfd >= 0);
	assert_int_equal(bind(t->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(t->lfd, 1), 0);
	assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&a, &al), 0);
	t->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&t->th, NULL, tiny_http_main, t), 0);
}

/*
 * sg_k8s_call(): arguments, the request as sent (method, path, JSON body,
 * token), the token file read again after a 401, and a server that goes.
 */
static void
test_call(void **state)
{
	struct sg_k8s_conf kc = { .source = SG_CONF_K8S_KUBECONFIG, .token_refresh = 3600 };
	char path[400], tok[400], text[800], err[300], *resp = (char *)1;
	struct sg_k8s_call *c;
	struct tiny_http t;

	(void)state;
	errno = 0;
	assert_null(sg_k8s_call_create(NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	sg_k8s_call_free(NULL);
	assert_string_equal(sg_k8s_call_server(NULL), "");
	assert_int_equal(sg_k8s_call(NULL, "GET", "/", NULL, 100, &resp, err, sizeof(err)),
			 -EINVAL);
	assert_null(resp);

	tiny_http_start(&t);
	write_file(tok, sizeof(tok), "call_token", "old\n");
	snprintf(text, sizeof(text), KC_HEAD "clusters:\n- name: c\n  cluster:\n    server: "
		 "http://127.0.0.1:%u\n" KC_USER("    tokenFile: %s\n"), t.port, tok);
	write_file(path, sizeof(path), "kc_call", text);
	kc.kubeconfig = path;
	c = sg_k8s_call_create(&kc, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(strncmp(sg_k8s_call_server(c), "http://127.0.0.1:", 17), 0);
	assert_int_equal(sg_k8s_call(c, "GET", "no-slash", NULL, 100, &resp, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(sg_k8s_call(c, NULL, "/", NULL, 100, &resp, err, sizeof(err)), -EINVAL);

	/* A JSON body says so; the answer comes back whole. */
	assert_int_equal(sg_k8s_call(c, "PUT", "/apis/x/leases/a", "{\"a\":1}", 5000, &resp, err,
				     sizeof(err)), 201);
	assert_string_equal(resp, "{\"ok\":true}");
	free(resp);
	assert_non_null(strstr(t.last, "PUT /apis/x/leases/a HTTP/1.1\r\n"));
	assert_non_null(strstr(t.last, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(t.last, "Authorization: Bearer old\r\n"));
	assert_non_null(strstr(t.last, "\r\n\r\n{\"a\":1}"));

	/* A 401 makes the next request read the token file again, long before token_refresh. */
	write_file(tok, sizeof(tok), "call_token", "new\n");
	t.status = 401;
	assert_int_equal(sg_k8s_call(c, "GET", "/a", NULL, 5000, &resp, err, sizeof(err)), 401);
	free(resp);
	assert_non_null(strstr(t.last, "Authorization: Bearer old\r\n"));
	assert_null(strstr(t.last, "Content-Type"));
	t.status = 200;
	assert_int_equal(sg_k8s_call(c, "GET", "/b", NULL, 5000, &resp, err, sizeof(err)), 200);
	free(resp);
	assert_non_null(strstr(t.last, "GET /b HTTP/1.1\r\n"));
	assert_non_null(strstr(t.last, "Authorization: Bearer new\r\n"));
	assert_int_equal(t.served, 3);

	/* The server goes: -EIO and why, no answer. */
	shutdown(t.cfd, SHUT_RDWR);
	pthread_join(t.th, NULL);
	close(t.lfd);
	resp = (char *)1;
	assert_int_equal(sg_k8s_call(c, "GET", "/c", NULL, 2000, &resp, err, sizeof(err)), -EIO);
	assert_null(resp);
	assert_non_null(strstr(err, "GET /c: "));
	sg_k8s_call_free(c);
}

/* Wait (bounded) for n responses. */
static unsigned int
wait_responses(struct sg_k8s *k, struct sg_k8s_response *out, unsigned int n)
{
	unsigned int got = 0;

	for (unsigned int i = 0; i < 1000 && got < n; i++) {
		got += sg_k8s_responses(k, out + got, n - got);
		if (got < n)
			usleep(10000);
	}
	return got;
}

/*
 * A client of the API at a tiny_http server started in *t, through a
 * kubeconfig written as `name` (its path in path) with a bearer token.
 */
static struct sg_k8s *
writer_on_tiny(struct tiny_http *t, struct sg_k8s_conf *kc, const char *name, char *path,
	       size_t path_size)
{
	char text[600], err[300];
	struct sg_k8s *k;

	tiny_http_start(t);
	snprintf(text, sizeof(text), KC_HEAD "clusters:\n- name: c\n  cluster:\n    server: "
		 "http://127.0.0.1:%u\n" KC_USER("    token: tok\n"), t->port);
	write_file(path, path_size, name, text);
	kc->kubeconfig = path;
	k = sg_k8s_create(kc, err, sizeof(err));
	assert_non_null(k);
	return k;
}

static void
test_writes(void **state)
{
	struct sg_k8s_conf kc = { .source = SG_CONF_K8S_KUBECONFIG, .request_timeout = 5 };
	struct sg_k8s_response r[3];
	struct tiny_http t;
	char path[400], esc[64];
	struct sg_k8s *k;

	(void)state;
	assert_null(sg_k8s_escape("a b", esc, 3));
	assert_string_equal(sg_k8s_escape("svcgw.io/lb x", esc, sizeof(esc)), "svcgw.io%2Flb%20x");
	assert_int_equal(sg_k8s_request(NULL, "GET", "/", NULL, NULL, 1), -EINVAL);
	assert_int_equal(sg_k8s_responses(NULL, r, 1), 0);
	sg_k8s_response_clear(NULL);

	k = writer_on_tiny(&t, &kc, "kc_writes", path, sizeof(path));
	assert_int_equal(sg_k8s_request(k, NULL, "/", NULL, NULL, 1), -EINVAL);
	/* Queued before the start: done once it starts, in order, tags kept. */
	assert_int_equal(sg_k8s_request(k, "PATCH", "/api/v1/namespaces/a/services/b/status",
					"application/merge-patch+json", "{\"status\":{}}", 7), 0);
	assert_int_equal(sg_k8s_request(k, "GET", "/api/v1/namespaces/a/services/b", NULL, NULL,
					8), 0);
	assert_int_equal(sg_k8s_responses(k, r, 3), 0);
	assert_int_equal(sg_k8s_start(k), 0);
	assert_int_equal(wait_responses(k, r, 2), 2);
	assert_int_equal(r[0].tag, 7);
	assert_int_equal(r[0].status, 201);
	assert_string_equal(r[0].body, "{\"ok\":true}");
	assert_int_equal(r[1].tag, 8);
	assert_int_equal(r[1].status, 201);
	/* The last request the server saw: the GET, with the token. */
	assert_non_null(strstr(t.last, "GET /api/v1/namespaces/a/services/b HTTP/1.1\r\n"));
	assert_non_null(strstr(t.last, "Authorization: Bearer tok\r\n"));
	assert_null(strstr(t.last, "Content-Type"));
	sg_k8s_response_clear(&r[0]);
	sg_k8s_response_clear(&r[1]);
	assert_int_equal(t.served, 2);
	/* The server goes: an answer with status 0 and why, not a hang. */
	shutdown(t.cfd, SHUT_RDWR);
	pthread_join(t.th, NULL);
	close(t.lfd);
	assert_int_equal(sg_k8s_request(k, "POST", "/api/v1/namespaces/a/events",
					"application/json", "{}", 9), 0);
	assert_int_equal(wait_responses(k, r, 1), 1);
	assert_int_equal(r[0].tag, 9);
	assert_int_equal(r[0].status, 0);
	assert_non_null(strstr(r[0].error, "POST /api/v1/namespaces/a/events: "));
	sg_k8s_response_clear(&r[0]);
	/* Stopped: refused. */
	sg_k8s_stop(k);
	assert_int_equal(sg_k8s_request(k, "GET", "/", NULL, NULL, 10), -ESHUTDOWN);
	sg_k8s_free(k);
}

/* WARNING lines from every thread (the writer logs from its own), one per line. */
struct warnings {
	pthread_mutex_t lock;
	char text[8192];
};

static void
warn_keep(void *arg, unsigned int level, const char *msg)
{
	struct warnings *w = arg;
	size_t n;

	if (level != SG_K8S_LOG_WARNING)
		return;
	pthread_mutex_lock(&w->lock);
	n = strlen(w->text);
	snprintf(w->text + n, sizeof(w->text) - n, "%s\n", msg);
	pthread_mutex_unlock(&w->lock);
}

/* How many WARNING lines hold s. */
static unsigned int
warned(struct warnings *w, const char *s)
{
	unsigned int n = 0;

	pthread_mutex_lock(&w->lock);
	for (const char *p = w->text; (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Wait (bounded) until the server has received n requests; true if exactly n. */
static bool
wait_served(struct tiny_http *t, unsigned int n)
{
	for (unsigned int i = 0; i < 1000 && t->served < n; i++)
		usleep(10000);
	return t->served == n;
}

/* Post events "/api/v1/namespaces/<prefix><i>/events", i in [from, to). */
static void
post_events(struct sg_k8s *k, const char *prefix, unsigned int from, unsigned int to)
{
	char path[100];

	for (unsigned int i = from; i < to; i++) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s%u/events", prefix, i);
		assert_int_equal(sg_k8s_post_event(k, path, "{\"kind\":\"Event\"}"), 0);
	}
}

/* The request lines the server sees for post_events(prefix, from, to), after head. */
static void
events_seen(char *buf, size_t size, const char *head, const char *prefix, unsigned int from,
	    unsigned int to)
{
	snprintf(buf, size, "%s", head);
	for (unsigned int i = from; i < to; i++)
		snprintf(buf + strlen(buf), size - strlen(buf),
			 "POST /api/v1/namespaces/%s%u/events\n", prefix, i);
}

/*
 * sg_k8s_post_event(): arguments; sent after the tagged requests even when
 * queued before them; never answered; at most SG_K8S_EVENTS_WAITING wait,
 * the oldest dropped and counted, a warning once per overflow; a failure
 * logged, not retried; what waits at the stop dropped silently.
 */
static void
test_post_event(void **state)
{
	struct warnings wl = { PTHREAD_MUTEX_INITIALIZER, "" };
	struct sg_k8s_conf kc = { .source = SG_CONF_K8S_KUBECONFIG, .request_timeout = 5,
				  .log = warn_keep, .log_arg = &wl };
	const unsigned int max = SG_K8S_EVENTS_WAITING;
	static char want[sizeof(((struct tiny_http *)0)->seen)];
	char path[400], err[300];
	struct sg_k8s_response r[3];
	struct tiny_http t;
	struct sg_k8s_sync st;
	struct sg_k8s *k;
	size_t mark;

	(void)state;
	assert_int_equal(sg_k8s_post_event(NULL, "/api/v1/namespaces/a/events", "{}"), -EINVAL);
	k = writer_on_tiny(&t, &kc, "kc_events", path, sizeof(path));
	assert_int_equal(sg_k8s_post_event(k, NULL, "{}"), -EINVAL);
	assert_int_equal(sg_k8s_post_event(k, "/api/v1/namespaces/a/events", NULL), -EINVAL);

	/* Over the bound before the start: the three oldest go, counted, said once. */
	post_events(k, "e", 0, max + 3);
	assert_int_equal(sg_k8s_sync_state(k, &st), 0);
	assert_int_equal(st.events_dropped, 3);
	assert_int_equal(warned(&wl, "the oldest are dropped"), 1);
	assert_int_equal(warned(&wl, "(first POST /api/v1/namespaces/e0/events, 1 dropped"), 1);
	/* A tagged request queued after them goes first; they are never answered. */
	assert_int_equal(sg_k8s_request(k, "PATCH", "/api/v1/namespaces/a/services/b/status",
					"application/merge-patch+json", "{}", 7), 0);
	assert_int_equal(sg_k8s_start(k), 0);
	assert_int_equal(wait_responses(k, r, 1), 1);
	assert_int_equal(r[0].tag, 7);
	assert_int_equal(r[0].status, 201);
	sg_k8s_response_clear(&r[0]);
	assert_true(wait_served(&t, 1 + max));
	events_seen(want, sizeof(want), "PATCH /api/v1/namespaces/a/services/b/status\n", "e", 3,
		    max + 3);
	assert_string_equal(t.seen, want);
	assert_non_null(strstr(t.last, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(t.last, "\r\n\r\n{\"kind\":\"Event\"}"));
	usleep(100000);
	assert_int_equal(sg_k8s_responses(k, r, 3), 0);

	/* Drained, then over the bound again while one is in flight: said again. */
	mark = strlen(t.seen);
	t.hold = 1;
	post_events(k, "held", 0, 1);
	assert_true(wait_served(&t, 2 + max));
	post_events(k, "f", 0, max + 1);
	assert_int_equal(sg_k8s_sync_state(k, &st), 0);
	assert_int_equal(st.events_dropped, 4);
	assert_int_equal(warned(&wl, "the oldest are dropped"), 2);
	assert_int_equal(warned(&wl, "(first POST /api/v1/namespaces/f0/events, 4 dropped"), 1);
	t.hold = 0;
	assert_true(wait_served(&t, 2 + 2 * max));
	events_seen(want, sizeof(want), "POST /api/v1/namespaces/held0/events\n", "f", 1,
		    max + 1);
	assert_string_equal(t.seen + mark, want);

	/* A failure is logged with method, path and status, and forgotten. */
	t.status = 403;
	post_events(k, "denied", 0, 1);
	assert_true(wait_served(&t, 3 + 2 * max));
	for (unsigned int i = 0; i < 500 && warned(&wl, "HTTP 403") == 0; i++)
		usleep(10000);
	assert_int_equal(warned(&wl, "POST /api/v1/namespaces/denied0/events: HTTP 403 "
				"(not retried)"), 1);
	t.status = 0;
	usleep(200000);
	assert_int_equal(t.served, 3 + 2 * max);
	assert_int_equal(sg_k8s_responses(k, r, 3), 0);
	/* No answer at all: the same, with why. */
	shutdown(t.cfd, SHUT_RDWR);
	pthread_join(t.th, NULL);
	close(t.lfd);
	post_events(k, "gone", 0, 1);
	for (unsigned int i = 0; i < 500 && warned(&wl, "gone0") == 0; i++)
		usleep(10000);
	assert_int_equal(warned(&wl, "POST /api/v1/namespaces/gone0/events: "), 1);
	assert_int_equal(sg_k8s_responses(k, r, 3), 0);
	sg_k8s_stop(k);
	assert_int_equal(sg_k8s_post_event(k, "/api/v1/namespaces/a/events", "{}"), -ESHUTDOWN);
	sg_k8s_free(k);

	/* Stopped with writes waiting: the tagged one is answered, the Events go silently. */
	wl.text[0] = '\0';
	k = sg_k8s_create(&kc, err, sizeof(err));
	assert_non_null(k);
	post_events(k, "left", 0, 2);
	assert_int_equal(sg_k8s_request(k, "GET", "/api/v1/namespaces/a/services/b", NULL, NULL,
					8), 0);
	sg_k8s_stop(k);
	assert_int_equal(sg_k8s_responses(k, r, 3), 1);
	assert_int_equal(r[0].tag, 8);
	assert_int_equal(r[0].status, 0);
	assert_non_null(strstr(r[0].error, ": stopped"));
	sg_k8s_response_clear(&r[0]);
	assert_string_equal(wl.text, "");
	assert_int_equal(sg_k8s_post_event(k, "/api/v1/namespaces/a/events", "{}"), -ESHUTDOWN);
	sg_k8s_free(k);
}

/* Arguments of the public API, and values out of range. */
static void
test_api_args(void **state)
{
	struct sg_k8s_conf kc = { .source = SG_CONF_K8S_IN_CLUSTER };
	struct sg_k8s_change ch;
	struct sg_k8s_sync st;
	struct sg_conf conf;
	char err[200];

	(void)state;
	errno = 0;
	assert_null(sg_k8s_create(NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "kubernetes: no configuration");
	kc.source = SG_CONF_K8S_NONE;
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	assert_string_equal(err, "kubernetes: source is neither in-cluster nor kubeconfig");
	kc.source = SG_CONF_K8S_IN_CLUSTER;
	kc.default_mode = SG_CONF_MODE_COUNT;
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	assert_string_equal(err, "kubernetes: default_mode is out of range");
	kc.default_mode = 0;
	kc.watch_timeout = 9;
	assert_null(sg_k8s_create(&kc, NULL, 0));
	assert_int_equal(errno, EINVAL);
	kc.watch_timeout = 0;
	kc.page_size = 100001;
	assert_null(sg_k8s_create(&kc, err, sizeof(err)));
	assert_string_equal(err, "kubernetes: page_size, watch_timeout, request_timeout or "
			    "token_refresh is out of range");

	assert_int_equal(sg_k8s_start(NULL), -EINVAL);
	sg_k8s_stop(NULL);
	sg_k8s_free(NULL);
	assert_int_equal(sg_k8s_drain(NULL, &ch, 1), 0);
	sg_k8s_service_free(NULL);
	assert_null(sg_k8s_nodes_take(NULL));
	sg_k8s_nodes_free(NULL);
	assert_int_equal(sg_k8s_set_default_mode(NULL, 0), -EINVAL);
	assert_int_equal(sg_k8s_sync_state(NULL, &st), -EINVAL);
	assert_string_equal(sg_k8s_resource_name(SG_K8S_ENDPOINTSLICES), "endpointslices");
	assert_string_equal(sg_k8s_resource_name(SG_K8S_RESOURCE_COUNT), "?");
	assert_string_equal(sg_k8s_stream_state_name(SG_K8S_STREAM_BACKOFF), "backoff");
	assert_string_equal(sg_k8s_stream_state_name(9), "?");

	memset(&conf, 0, sizeof(conf));
	conf.kubernetes.source = SG_CONF_K8S_KUBECONFIG;
	conf.kubernetes.kubeconfig = (char *)"/k";
	conf.kubernetes.context = (char *)"c";
	conf.kubernetes.page_size = 7;
	conf.kubernetes.watch_timeout = 70;
	conf.kubernetes.request_timeout = 17;
	conf.default_mode = SG_CONF_MODE_DSR_L2;
	memset(&kc, 0xff, sizeof(kc));
	sg_k8s_conf_init(&kc, &conf);
	assert_int_equal(kc.source, SG_CONF_K8S_KUBECONFIG);
	assert_string_equal(kc.kubeconfig, "/k");
	assert_string_equal(kc.context, "c");
	assert_int_equal(kc.page_size, 7);
	assert_int_equal(kc.watch_timeout, 70);
	assert_int_equal(kc.request_timeout, 17);
	assert_int_equal(kc.default_mode, SG_CONF_MODE_DSR_L2);
	assert_null(kc.log);
	assert_null(kc.sa_dir);
	assert_int_equal(kc.seed, 0);
	sg_k8s_conf_init(NULL, &conf);
	sg_k8s_conf_init(&kc, NULL);
}

/* ---- the hash map -------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void
count_cb(void *arg, const char *key, void *value)
{
	(void)key;
	(void)value;
	(*(unsigned int *)arg)++;
}

/* Random puts and deletes against a plain array, so backward-shift deletion is exercised. */
static void
test_map(void **state)
{
	enum { N = 3000 };
	static uint8_t present[N];
	struct k8s_map m;
	uint64_t seed = 7;
	unsigned int n = 0, seen = 0;
	char key[32];

	(void)state;
	k8s_map_init(&m);
	assert_null(k8s_map_get(&m, "x"));
	assert_null(k8s_map_del(&m, "x"));
	memset(present, 0, sizeof(present));
	for (unsigned int round = 0; round < 40000; round++) {
		unsigned int i = (unsigned int)(rnd(&seed) % N);

		snprintf(key, sizeof(key), "ns-%u/svc", i);
		if (rnd(&seed) % 3 != 0) {
			assert_int_equal(k8s_map_put(&m, key, (void *)(uintptr_t)(i + 1)), 0);
			n += !present[i];
			present[i] = 1;
		} else {
			void *v = k8s_map_del(&m, key);

			assert_ptr_equal(v, present[i] ? (void *)(uintptr_t)(i + 1) : NULL);
			n -= present[i];
			present[i] = 0;
		}
	}
	assert_int_equal(m.n, n);
	for (unsigned int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns-%u/svc", i);
		assert_ptr_equal(k8s_map_get(&m, key),
				 present[i] ? (void *)(uintptr_t)(i + 1) : NULL);
	}
	k8s_map_each(&m, count_cb, &seen);
	assert_int_equal(seen, n);
	/* Replacing keeps one entry. */
	assert_int_equal(k8s_map_put(&m, "a/b", (void *)1), 0);
	assert_int_equal(k8s_map_put(&m, "a/b", (void *)2), 0);
	assert_int_equal(m.n, n + 1);
	assert_ptr_equal(k8s_map_get(&m, "a/b"), (void *)2);
	k8s_map_fini(&m);
	k8s_map_fini(&m);
}

/* ---- the queue of changes ------------------------------------------------ */

/* A snapshot that only carries a number (in affinity_timeout). */
static struct sg_k8s_service *
tagged(uint32_t tag)
{
	struct sg_k8s_service *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->affinity_timeout = tag;
	return s;
}

static void
test_queue(void **state)
{
	struct sg_k8s_change ch[8];
	struct k8s_queue q;
	char long_key[SG_K8S_KEY_SIZE + 1];

	(void)state;
	assert_int_equal(k8s_queue_init(&q), 0);
	assert_int_equal(k8s_queue_take(&q, ch, 8), 0);
	assert_int_equal(k8s_queue_put(&q, "ns/a", tagged(1)), 0);
	assert_int_equal(k8s_queue_put(&q, "ns/b", tagged(2)), 0);
	/* a again: its place, its newest state (the older one is freed). */
	assert_int_equal(k8s_queue_put(&q, "ns/a", tagged(3)), 0);
	assert_int_equal(k8s_queue_put(&q, "ns/c", NULL), 0);
	assert_int_equal(k8s_queue_take(&q, ch, 0), 0);
	assert_int_equal(k8s_queue_take(&q, ch, 2), 2);
	assert_string_equal(ch[0].key, "ns/a");
	assert_int_equal(ch[0].svc->affinity_timeout, 3);
	assert_string_equal(ch[1].key, "ns/b");
	assert_int_equal(ch[1].svc->affinity_timeout, 2);
	sg_k8s_service_free(ch[0].svc);
	sg_k8s_service_free(ch[1].svc);
	/* Taken keys queue anew. */
	assert_int_equal(k8s_queue_put(&q, "ns/a", tagged(4)), 0);
	assert_int_equal(k8s_queue_take(&q, ch, 8), 2);
	assert_string_equal(ch[0].key, "ns/c");
	assert_null(ch[0].svc);
	assert_string_equal(ch[1].key, "ns/a");
	assert_int_equal(ch[1].svc->affinity_timeout, 4);
	sg_k8s_service_free(ch[1].svc);
	memset(long_key, 'x', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	assert_int_equal(k8s_queue_put(&q, long_key, tagged(5)), -EINVAL);
	/* What is left is freed with the queue. */
	assert_int_equal(k8s_queue_put(&q, "ns/d", tagged(6)), 0);
	k8s_queue_fini(&q);
}

enum { QKEYS = 64, QPUTS = 20000 };

static void *
producer(void *arg)
{
	struct k8s_queue *q = arg;
	char key[32];

	for (uint32_t i = 1; i <= QPUTS; i++) {
		snprintf(key, sizeof(key), "ns/s%u", (i * 7u) % QKEYS);
		/* Every tenth change is a deletion. */
		assert_int_equal(k8s_queue_put(q, key, i % 10 == 0 ? NULL : tagged(i)), 0);
	}
	return NULL;
}

/* One thread puts, this one takes: each key ends in the state put last. */
static void
test_queue_threads(void **state)
{
	static uint32_t last[QKEYS];
	struct sg_k8s_change ch[16];
	struct k8s_queue q;
	pthread_t t;
	int done = 0;

	(void)state;
	memset(last, 0, sizeof(last));
	assert_int_equal(k8s_queue_init(&q), 0);
	assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
	for (;;) {
		unsigned int n = k8s_queue_take(&q, ch, SG_ARRAY_SIZE(ch));

		for (unsigned int i = 0; i < n; i++) {
			unsigned int k = (unsigned int)atoi(ch[i].key + 4);

			assert_true(k < QKEYS);
			last[k] = ch[i].svc != NULL ? ch[i].svc->affinity_timeout : UINT32_MAX;
			sg_k8s_service_free(ch[i].svc);
		}
		if (n == 0 && done)
			break;
		if (n == 0 && pthread_tryjoin_np(t, NULL) == 0)
			done = 1;
	}
	for (uint32_t i = QPUTS; i > QPUTS - QKEYS; i--) {
		unsigned int k = (i * 7u) % QKEYS;

		assert_int_equal(last[k], i % 10 == 0 ? UINT32_MAX : i);
	}
	k8s_queue_fini(&q);
}

/* ---- the line splitter --------------------------------------------------- */

struct lines_seen {
	char text[1024];
	unsigned int n;
	int stop_at;		/* return 7 at this line (1-based); 0: never */
};

static int
line_cb(void *arg, const char *line, size_t len)
{
	struct lines_seen *s = arg;
	size_t o = strlen(s->text);

	snprintf(s->text + o, sizeof(s->text) - o, "[%.*s]", (int)len, line);
	return ++s->n == (unsigned int)s->stop_at ? 7 : 0;
}

static const char stream_text[] =
	"line one\r\n\n{\"type\":\"ADDED\"}\nthird line with more text\n\r\n\n"
	"{\"a\":[1,2,3]}\r\n" "unterminated";
static const char stream_lines[] =
	"[line one][{\"type\":\"ADDED\"}][third line with more text][{\"a\":[1,2,3]}]";

/* The same stream cut into 1, 2 or 3 pieces at every pair of places, and byte by byte. */
static void
test_lines_split(void **state)
{
	const size_t len = sizeof(stream_text) - 1;
	struct k8s_lines l;

	(void)state;
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			struct lines_seen s = { "", 0, 0 };

			k8s_lines_init(&l, 25);
			assert_int_equal(k8s_lines_feed(&l, stream_text, i, line_cb, &s), 0);
			assert_int_equal(k8s_lines_feed(&l, stream_text + i, j - i, line_cb, &s),
					 0);
			assert_int_equal(k8s_lines_feed(&l, stream_text + j, len - j, line_cb, &s),
					 0);
			if (strcmp(s.text, stream_lines) != 0)
				fail_msg("cut at %zu and %zu: %s", i, j, s.text);
			/* The partial last line waits for its newline. */
			assert_int_equal(l.len, strlen("unterminated"));
			k8s_lines_fini(&l);
		}
	}
	{
		struct lines_seen s = { "", 0, 0 };

		k8s_lines_init(&l, 25);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(k8s_lines_feed(&l, stream_text + i, 1, line_cb, &s), 0);
		assert_string_equal(s.text, stream_lines);
		/* A new stream starts clean. */
		k8s_lines_reset(&l);
		assert_int_equal(k8s_lines_feed(&l, "x\n", 2, line_cb, &s), 0);
		assert_int_equal(s.n, 5);
		k8s_lines_fini(&l);
	}
}

static void
test_lines_limits(void **state)
{
	const size_t len = sizeof(stream_text) - 1;
	struct k8s_lines l;

	(void)state;
	/* 25 is the longest line: one less is too little, wherever the stream is cut. */
	for (size_t i = 0; i <= len; i++) {
		struct lines_seen s = { "", 0, 0 };
		int rc;

		k8s_lines_init(&l, 24);
		rc = k8s_lines_feed(&l, stream_text, i, line_cb, &s);
		if (rc == 0)
			rc = k8s_lines_feed(&l, stream_text + i, len - i, line_cb, &s);
		assert_int_equal(rc, -EMSGSIZE);
		assert_string_equal(s.text, "[line one][{\"type\":\"ADDED\"}]");
		k8s_lines_fini(&l);
	}
	/* A line growing without end is stopped at the limit, not when it ends. */
	{
		struct lines_seen s = { "", 0, 0 };
		char chunk[10];

		memset(chunk, 'x', sizeof(chunk));
		k8s_lines_init(&l, 25);
		assert_int_equal(k8s_lines_feed(&l, chunk, 10, line_cb, &s), 0);
		assert_int_equal(k8s_lines_feed(&l, chunk, 10, line_cb, &s), 0);
		assert_int_equal(k8s_lines_feed(&l, chunk, 10, line_cb, &s), -EMSGSIZE);
		k8s_lines_fini(&l);
	}
	/* The callback's stop value comes back, and feeding stops there. */
	{
		struct lines_seen s = { "", 0, 2 };

		k8s_lines_init(&l, 100);
		assert_int_equal(k8s_lines_feed(&l, stream_text, len, line_cb, &s), 7);
		assert_string_equal(s.text, "[line one][{\"type\":\"ADDED\"}]");
		k8s_lines_fini(&l);
	}
}

/* ---- events -------------------------------------------------------------- */

struct ev_row {
	const char *line;	/* ' for " */
	uint8_t type;		/* 0: an error */
	const char *rv;
	int code;
	const char *text;	/* the message of an ERROR, or the error */
};

static const struct ev_row ev_rows[] = {
	{ "{'type':'ADDED','object':{'kind':'Service','metadata':{'name':'a',"
	  "'resourceVersion':'12'}}}", K8S_EV_ADDED, "12", 0, "" },
	{ "{'type':'MODIFIED','object':{'metadata':{'resourceVersion':'13'}}}",
	  K8S_EV_MODIFIED, "13", 0, "" },
	{ "{'object':{'metadata':{'resourceVersion':'14'}},'type':'DELETED'}",
	  K8S_EV_DELETED, "14", 0, "" },
	{ "{'type':'ADDED','object':{'metadata':{}}}", K8S_EV_ADDED, "", 0, "" },
	{ "  {'type':'BOOKMARK','object':{'kind':'Service','metadata':{'resourceVersion':'99',"
	  "'annotations':{'k8s.io/initial-events-end':'true'}}}}  ",
	  K8S_EV_BOOKMARK, "99", 0, "" },
	{ "{'type':'ERROR','object':{'kind':'Status','apiVersion':'v1','metadata':{},"
	  "'status':'Failure','message':'too old resource version: 1 (5)','reason':'Expired',"
	  "'code':410}}", K8S_EV_ERROR, "", 410, "410 Expired: too old resource version: 1 (5)" },
	{ "{'type':'ERROR','object':{}}", K8S_EV_ERROR, "", 0, "0 ?: " },
	{ "not json", 0, "", 0, "not JSON: \"not json\"" },
	{ "{'type':'ADDED','object':{}", 0, "", 0,
	  "not JSON: \"{\"type\":\"ADDED\",\"object\":{}\"" },
	{ "[1,2]", 0, "", 0, "not a JSON object" },
	{ "{'object':{}}", 0, "", 0, "no \"type\"" },
	{ "{'type':7,'object':{}}", 0, "", 0, "no \"type\"" },
	{ "{'type':'SYNC','object':{}}", 0, "", 0, "unknown event type \"SYNC\"" },
	{ "{'type':'ADDED'}", 0, "", 0, "ADDED event without an \"object\"" },
	{ "{'type':'DELETED','object':[]}", 0, "", 0, "DELETED event without an \"object\"" },
	{ "{'type':'BOOKMARK','object':{'metadata':{}}}", 0, "", 0,
	  "BOOKMARK without a resourceVersion" },
	{ "{'type':'ADDED','object':{'metadata':{'resourceVersion':"
	  "'0123456789012345678901234567890123456789012345678901234567890123'}}}", 0, "", 0,
	  "resourceVersion longer than 63 characters" },
	{ "{'type':'ADDED','object':{'metadata':{'name':'0123456789012345678901234567890123456789'",
	  0, "", 0, "not JSON: \"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"n...\"" },
};

static void
test_events(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(ev_rows); i++) {
		const struct ev_row *r = &ev_rows[i];
		char *line = q(r->line), err[128] = "x";
		struct k8s_event ev;
		int rc = k8s_event_decode(line, strlen(line), &ev, err, sizeof(err));

		if (r->type == 0) {
			if (rc != -EBADMSG || strcmp(err, r->text) != 0)
				fail_msg("row %u: rc %d, \"%s\"", i, rc, err);
			assert_null(ev.root);
		} else {
			if (rc != 0)
				fail_msg("row %u: %s", i, err);
			assert_string_equal(err, "");
			assert_int_equal(ev.type, r->type);
			assert_string_equal(ev.rv, r->rv);
			assert_int_equal(ev.code, r->code);
			assert_string_equal(ev.message, r->text);
			assert_true(cJSON_IsObject(ev.object));
			k8s_event_clear(&ev);
		}
		free(line);
	}
}

/* ---- backoff ------------------------------------------------------------- */

static void
test_backoff(void **state)
{
	struct k8s_backoff a, b;
	uint32_t d[12], lo = UINT32_MAX, hi = 0;
	int differ = 0;

	(void)state;
	k8s_backoff_init(&a, 42);
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(d); i++) {
		uint64_t nominal = 800ull << (i < 6 ? i : 6);

		if (nominal > 30000)
			nominal = 30000;
		d[i] = k8s_backoff_next(&a);
		if (d[i] < nominal || d[i] > nominal + nominal / 4 || d[i] > 30000)
			fail_msg("attempt %u: %u ms, nominal %llu", i, d[i],
				 (unsigned long long)nominal);
	}
	/* The cap: 800 ms doubled six times is past 30 s. */
	assert_int_equal(d[6], 30000);
	assert_int_equal(d[11], 30000);
	/* The same seed, the same delays; another seed, others. */
	k8s_backoff_init(&b, 42);
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(d); i++)
		assert_int_equal(k8s_backoff_next(&b), d[i]);
	k8s_backoff_init(&b, 43);
	for (unsigned int i = 0; i < 6; i++)
		differ |= k8s_backoff_next(&b) != d[i];
	assert_true(differ);
	/* After a success it starts over. */
	k8s_backoff_reset(&a);
	d[0] = k8s_backoff_next(&a);
	assert_true(d[0] >= 800 && d[0] <= 1000);
	/* The jitter spreads first attempts over their whole range. */
	for (uint64_t seed = 0; seed < 2000; seed++) {
		k8s_backoff_init(&b, seed);
		d[0] = k8s_backoff_next(&b);
		lo = d[0] < lo ? d[0] : lo;
		hi = d[0] > hi ? d[0] : hi;
	}
	assert_true(lo < 810 && hi > 990 && hi <= 1000);
	/* Any number of failures stays within bounds. */
	for (unsigned int i = 0; i < 200; i++) {
		uint32_t v = k8s_backoff_next(&a);

		assert_true(v >= K8S_BACKOFF_MIN_MS && v <= K8S_BACKOFF_MAX_MS);
	}
}

/* ---- requests ------------------------------------------------------------ */

#define SEL "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C" \
	"%21service.kubernetes.io%2Fheadless"

static void
expect_path(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_request_paths(void **state)
{
	(void)state;
	expect_path(k8s_client_request_path(SG_K8S_SERVICES, 0, NULL, NULL, 500, 0),
		    "/api/v1/services?" SEL "&limit=500");
	expect_path(k8s_client_request_path(SG_K8S_ENDPOINTSLICES, 0, NULL, "eyJ2/+=", 50, 0),
		    "/apis/discovery.k8s.io/v1/endpointslices?" SEL
		    "%2Ckubernetes.io%2Fservice-name&limit=50&continue=eyJ2%2F%2B%3D");
	expect_path(k8s_client_request_path(SG_K8S_NODES, 0, NULL, NULL, 1, 0),
		    "/api/v1/nodes?limit=1");
	expect_path(k8s_client_request_path(SG_K8S_SERVICES, 1, "123", NULL, 0, 300),
		    "/api/v1/services?" SEL "&watch=true&allowWatchBookmarks=true"
		    "&timeoutSeconds=300&resourceVersion=123");
	expect_path(k8s_client_request_path(SG_K8S_NODES, 1, "a b", NULL, 0, 10),
		    "/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=10"
		    "&resourceVersion=a%20b");
	errno = 0;
	assert_null(k8s_client_request_path(SG_K8S_RESOURCE_COUNT, 0, NULL, NULL, 1, 0));
	assert_int_equal(errno, EINVAL);
}

/* ---- the model: rendering snapshots -------------------------------------- */

/*
 * One line per change:
 *   demo/web NodePort nat* fam=4 [policy=..] [local] [affinity=T] [no-node-ports]
 *     [vips=..] [ranges=..] [class=..] [lbip=..] [ann=k=v,..] rv=.. [uid=..]
 *     | <port name or -> <proto> <port> [np=N]: <addr>:<port>/<RST>[@node[/zone]] ...
 * with '*' after a mode that is default_mode's, and "<key> deleted" for NULL.
 */
struct out {
	char text[8192];
};

static void
outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
outf(struct out *o, const char *fmt, ...)
{
	size_t n = strlen(o->text);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->text + n, sizeof(o->text) - n, fmt, ap);
	va_end(ap);
}

static void
out_addrs(struct out *o, const char *what, const struct sg_conf_addr *a, uint32_t n)
{
	char buf[SG_CONF_ADDR_STRLEN];

	for (uint32_t i = 0; i < n; i++)
		outf(o, "%s%s", i == 0 ? what : ",", sg_conf_addr_str(&a[i], buf, sizeof(buf)));
}

static void
render(struct out *o, const char *key, const struct sg_k8s_service *s)
{
	static const char *const policies[] = { "", "Single", "Prefer", "Require" };
	char buf[SG_CONF_ADDR_STRLEN], k[SG_K8S_KEY_SIZE];

	if (s == NULL) {
		outf(o, "%s deleted\n", key);
		return;
	}
	snprintf(k, sizeof(k), "%s/%s", s->namespace, s->name);
	assert_string_equal(k, key);
	outf(o, "%s %s %s%s fam=%s%s", key, sg_conf_type_name(s->type), sg_conf_mode_name(s->mode),
	     s->flags & SG_K8S_SVC_MODE_DEFAULT ? "*" : "",
	     s->families & SG_CONF_FAM_V4 ? "4" : "", s->families & SG_CONF_FAM_V6 ? "6" : "");
	if (s->family_policy != SG_K8S_FAMILY_POLICY_UNSET)
		outf(o, " policy=%s", policies[s->family_policy]);
	if (s->flags & SG_K8S_SVC_LOCAL)
		outf(o, " local");
	if (s->flags & SG_K8S_SVC_AFFINITY)
		outf(o, " affinity=%u", s->affinity_timeout);
	else
		assert_int_equal(s->affinity_timeout, 0);
	if (s->flags & SG_K8S_SVC_NO_NODE_PORTS)
		outf(o, " no-node-ports");
	out_addrs(o, " vips=", s->vips, s->n_vips);
	out_addrs(o, " ranges=", s->source_ranges, s->n_source_ranges);
	if (s->load_balancer_class != NULL)
		outf(o, " class=%s", s->load_balancer_class);
	if (s->load_balancer_ip != NULL)
		outf(o, " lbip=%s", s->load_balancer_ip);
	for (uint32_t i = 0; i < s->n_annotations; i++)
		outf(o, "%s%s=%s", i == 0 ? " ann=" : ",", s->annotations[i].key,
		     s->annotations[i].value);
	outf(o, " rv=%s", s->resource_version);
	if (s->uid[0] != '\0')
		outf(o, " uid=%s", s->uid);
	for (uint32_t i = 0; i < s->n_ports; i++) {
		const struct sg_k8s_port *p = &s->ports[i];

		outf(o, " | %s %s %u", p->name[0] != '\0' ? p->name : "-",
		     sg_conf_proto_name(p->proto), p->port);
		if (p->node_port != 0)
			outf(o, " np=%u", p->node_port);
		outf(o, ":");
		for (uint32_t j = 0; j < p->n_endpoints; j++) {
			const struct sg_k8s_endpoint *e = &p->endpoints[j];

			outf(o, " %s:%u/%c%c%c", sg_conf_addr_str(&e->address, buf, sizeof(buf)),
			     e->port, e->ready ? 'R' : '-', e->serving ? 'S' : '-',
			     e->terminating ? 'T' : '-');
			if (e->node_name[0] != '\0' || e->zone[0] != '\0')
				outf(o, "@%s", e->node_name);
			if (e->zone[0] != '\0')
				outf(o, "/%s", e->zone);
		}
	}
	outf(o, "\n");
}

static void
render_cb(void *arg, const char *key, struct sg_k8s_service *svc)
{
	render(arg, key, svc);
	sg_k8s_service_free(svc);
}

static void
flush_into(struct k8s_model *m, struct out *o)
{
	assert_true(k8s_model_flush(m, render_cb, o) >= 0);
	outf(o, "--\n");
}

/* ---- the model: fixtures ------------------------------------------------- */

#define META(n, rv) "'metadata':{'namespace':'demo','name':'" n "','resourceVersion':'" rv \
	"','uid':'u-" n "'"
#define SVC(n, rv, spec) "{" META(n, rv) "},'spec':{" spec "}}"
#define SVC_ANN(n, rv, ann, spec) "{" META(n, rv) ",'annotations':{" ann "}},'spec':{" spec "}}"
#define SVC_ST(n, rv, spec, status) "{" META(n, rv) "},'spec':{" spec "},'status':{" status "}}"
#define NP(ports) "'type':'NodePort','clusterIP':'10.96.0.10','ipFamilies':['IPv4'],'ports':[" \
	ports "]"
#define LB(ports) "'type':'LoadBalancer','clusterIP':'10.96.0.11','ipFamilies':['IPv4']," \
	"'ports':[" ports "]"
#define CIP(ports) "'type':'ClusterIP','clusterIP':'10.96.0.12','ports':[" ports "]"
#define HTTP "{'name':'http','protocol':'TCP','port':80,'targetPort':'web','nodePort':30080}"
#define SLICE(n, rv, svc, fam, ports, eps) "{'metadata':{'namespace':'demo','name':'" n \
	"','resourceVersion':'" rv "','labels':{'kubernetes.io/service-name':'" svc "'}}," \
	"'addressType':'" fam "','ports':[" ports "],'endpoints':[" eps "]}"
#define SP(name, port) "{'name':'" name "','protocol':'TCP','port':" #port "}"
#define EP(a) "{'addresses':['" a "']}"
#define EPC(a, cond) "{'addresses':['" a "'],'conditions':{" cond "}}"
#define EPN(a, node, zone) "{'addresses':['" a "'],'nodeName':'" node "','zone':'" zone "'}"

#define FLUSH { -1, 0, NULL }
#define ADD_S(j) { SG_K8S_SERVICES, K8S_EV_ADDED, j }
#define MOD_S(j) { SG_K8S_SERVICES, K8S_EV_MODIFIED, j }
#define DEL_S(j) { SG_K8S_SERVICES, K8S_EV_DELETED, j }
#define ADD_E(j) { SG_K8S_ENDPOINTSLICES, K8S_EV_ADDED, j }
#define MOD_E(j) { SG_K8S_ENDPOINTSLICES, K8S_EV_MODIFIED, j }
#define DEL_E(j) { SG_K8S_ENDPOINTSLICES, K8S_EV_DELETED, j }

/* The usual pair: demo/web on port 80, and its slice with two endpoints. */
#define WEB_NP SVC("web", "1", NP(HTTP))
#define WEB_SLICE SLICE("web-a", "2", "web", "IPv4", SP("http", 8080), \
	EP("203.0.113.11") "," EP("203.0.113.12"))
#define WEB_OUT "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: " \
	"203.0.113.11:8080/RS- 203.0.113.12:8080/RS-\n"

struct mev {
	int res;		/* -1: flush */
	unsigned int type;
	const char *json;
};

struct model_row {
	const char *name;
	struct mev ev[10];
	const char *expect;	/* every flush's lines, each flush ended by "--" */
	unsigned int errors;	/* bad objects logged */
	const char *last_error;
	unsigned int warnings;
};

static const struct model_row model_rows[] = {
	{ "nodeport", { ADD_S(WEB_NP), ADD_E(WEB_SLICE) }, WEB_OUT "--\n", 0, NULL, 0 },
	{ "slice_first", { ADD_E(WEB_SLICE), FLUSH, ADD_S(WEB_NP) }, "--\n" WEB_OUT "--\n", 0, NULL,
	  0 },
	{ "clusterip", { ADD_S(SVC("web", "1", CIP(HTTP))), ADD_E(WEB_SLICE) }, "--\n", 0, NULL,
	  0 },
	{ "not_served", {
		ADD_S(SVC("a", "1", "'type':'ExternalName','externalName':'x.example.com'")),
		ADD_S(SVC("b", "1", "'type':'NodePort','clusterIP':'None','ports':[" HTTP "]")),
		ADD_S(SVC("c", "1", "'type':'LoadBalancer','clusterIP':'','ports':[" HTTP "]")),
		ADD_S(SVC("d", "1", "'type':'LoadBalancer','ports':[" HTTP "]")),
		ADD_S(SVC("e", "1", "'ports':[" HTTP "]")),
	  }, "--\n", 0, NULL, 0 },
	{ "type_changes", {
		ADD_S(WEB_NP), ADD_E(WEB_SLICE), FLUSH,
		MOD_S(SVC("web", "2", CIP(HTTP))), FLUSH,
		MOD_S(SVC("web", "3", LB(HTTP))), FLUSH,
		MOD_S(SVC("web", "4", "'type':'ExternalName','externalName':'x'")),
	  }, WEB_OUT "--\n"
	  "demo/web deleted\n--\n"
	  "demo/web LoadBalancer nat* fam=4 rv=3 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS- 203.0.113.12:8080/RS-\n--\n"
	  "demo/web deleted\n--\n", 0, NULL, 0 },
	{ "lb_ingress", {
		ADD_S(SVC_ST("web", "1", LB(HTTP), "'loadBalancer':{'ingress':["
			     "{'ip':'192.0.2.100'},{'ip':'192.0.2.101','ipMode':'VIP'},"
			     "{'ip':'192.0.2.102','ipMode':'Proxy'},{'hostname':'lb.example.com'},"
			     "{'ip':'2001:db8::100'},{'ip':'192.0.2.100','ports':[]}]}")),
	  }, "demo/web LoadBalancer nat* fam=4 vips=192.0.2.100,192.0.2.101 rv=1 uid=u-web"
	  " | http TCP 80 np=30080:\n--\n", 0, NULL, 0 },
	{ "dual_stack", {
		ADD_S(SVC_ST("web", "1", "'type':'LoadBalancer','clusterIP':'10.96.0.11',"
			     "'ipFamilies':['IPv6','IPv4'],'ipFamilyPolicy':'RequireDualStack',"
			     "'ports':[" HTTP "]",
			     "'loadBalancer':{'ingress':[{'ip':'2001:db8::100'},"
			     "{'ip':'192.0.2.100'}]}")),
		ADD_E(SLICE("web-v6", "2", "web", "IPv6", SP("http", 8080), EP("2001:db8:1::11"))),
		ADD_E(SLICE("web-v4", "3", "web", "IPv4", SP("http", 8080), EP("203.0.113.11"))),
	  }, "demo/web LoadBalancer nat* fam=46 policy=Require vips=2001:db8::100,192.0.2.100 "
	  "rv=1 uid=u-web | http TCP 80 np=30080: 203.0.113.11:8080/RS- 2001:db8:1::11:8080/RS-"
	  "\n--\n", 0, NULL, 0 },
	{ "family_from_cluster_ip", {
		ADD_S(SVC("web", "1", "'type':'NodePort','clusterIP':'fd00::10','ports':["
			  HTTP "]")),
		ADD_E(SLICE("web-v6", "2", "web", "IPv6", SP("http", 8080), EP("2001:db8:1::11"))),
		ADD_E(SLICE("web-v4", "3", "web", "IPv4", SP("http", 8080), EP("203.0.113.11"))),
	  }, "demo/web NodePort nat* fam=6 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "2001:db8:1::11:8080/RS-\n--\n", 0, NULL, 0 },
	{ "family_filter", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080), EP("203.0.113.11"))),
		ADD_E(SLICE("web-b", "3", "web", "IPv6", SP("http", 8080), EP("2001:db8:1::11"))),
		ADD_E(SLICE("web-c", "4", "web", "FQDN", SP("http", 8080), EP("pod.example.com"))),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS-\n--\n", 0, NULL, 0 },
	{ "merge_dedup", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-b", "3", "web", "IPv4", SP("http", 8080),
			    EPN("203.0.113.11", "n2", "") "," EP("203.0.113.13") ","
			    EPN("203.0.113.14", "n2", ""))),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080),
			    EPC("203.0.113.11", "'ready':false") "," EP("203.0.113.12") ","
			    EPN("203.0.113.14", "n1", ""))),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS-@n2 203.0.113.12:8080/RS- 203.0.113.13:8080/RS- "
	  "203.0.113.14:8080/RS-@n1\n--\n", 0, NULL, 0 },
	{ "dedup_none_ready", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-b", "3", "web", "IPv4", SP("http", 8080),
			    "{'addresses':['203.0.113.11'],'nodeName':'n2','conditions':"
			    "{'ready':false,'serving':true,'terminating':true}}")),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080),
			    "{'addresses':['203.0.113.11'],'nodeName':'n1','conditions':"
			    "{'ready':false,'serving':false}}")),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/---@n1\n--\n", 0, NULL, 0 },
	{ "named_ports", {
		ADD_S(SVC("web", "1", NP(HTTP ",{'name':'metrics','port':9100,'nodePort':30910,"
				       "'targetPort':'metrics'},{'name':'dns','protocol':'UDP',"
				       "'port':53}"))),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080) "," SP("metrics", 9100)
			    ",{'name':'dns','protocol':'TCP','port':5353}", EP("203.0.113.11"))),
		ADD_E(SLICE("web-b", "3", "web", "IPv4", SP("http", 8081), EP("203.0.113.12"))),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS- 203.0.113.12:8081/RS- | metrics TCP 9100 np=30910: "
	  "203.0.113.11:9100/RS- | dns UDP 53:\n--\n", 0, NULL, 0 },
	{ "unnamed_port", {
		ADD_S(SVC("dns", "1", NP("{'protocol':'UDP','port':53,'nodePort':30053}"))),
		ADD_E(SLICE("dns-a", "2", "dns", "IPv4", "{'protocol':'UDP','port':5353}",
			    EP("203.0.113.21"))),
		ADD_E(SLICE("dns-b", "3", "dns", "IPv4",
			    "{'name':null,'protocol':'UDP','port':5354}",
			    EP("203.0.113.22"))),
		ADD_E(SLICE("dns-c", "4", "dns", "IPv4", "{'name':'','protocol':'UDP'}",
			    EP("203.0.113.23"))),
		ADD_E(SLICE("dns-d", "5", "dns", "IPv4", "{'name':'','port':53}",
			    EP("203.0.113.24"))),
	  }, "demo/dns NodePort nat* fam=4 rv=1 uid=u-dns | - UDP 53 np=30053: "
	  "203.0.113.21:5353/RS- 203.0.113.22:5354/RS-\n--\n", 0, NULL, 0 },
	{ "conditions", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080),
			    EPC("203.0.113.11", "'ready':false") ","
			    EPC("203.0.113.12",
				"'ready':false,'serving':false,'terminating':true") ","
			    EPC("203.0.113.13", "") ","
			    EPC("203.0.113.14",
				"'ready':null,'serving':null,'terminating':null") ","
			    "{'addresses':['203.0.113.15'],'conditions':null}" ","
			    EPC("203.0.113.16", "'ready':true,'serving':true,'terminating':true"))),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/-S- 203.0.113.12:8080/--T 203.0.113.13:8080/RS- "
	  "203.0.113.14:8080/RS- 203.0.113.15:8080/RS- 203.0.113.16:8080/RST\n--\n", 0, NULL, 0 },
	{ "node_zone", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", SP("http", 8080),
			    EPN("203.0.113.11", "node-1", "zone-a") ","
			    "{'addresses':['203.0.113.12','203.0.113.99'],'zone':'zone-b',"
			    "'hostname':'pod-2'}," "{'addresses':[]},{'nodeName':'n3'}")),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS-@node-1/zone-a 203.0.113.12:8080/RS-@/zone-b\n--\n", 0, NULL, 0 },
	{ "affinity_local", {
		ADD_S(SVC_ANN("web", "1", "'svcgw.io/mode':'dnat'", LB(HTTP) ",'sessionAffinity':"
			      "'ClientIP','externalTrafficPolicy':'Local',"
			      "'allocateLoadBalancerNodePorts':false")),
	  }, "demo/web LoadBalancer dnat fam=4 local affinity=10800 no-node-ports "
	  "ann=svcgw.io/mode=dnat rv=1 uid=u-web"
	  " | http TCP 80:\n--\n", 0, NULL, 0 },
	{ "affinity_timeout", {
		ADD_S(SVC("web", "1", NP(HTTP) ",'sessionAffinity':'ClientIP',"
			  "'sessionAffinityConfig':"
			  "{'clientIP':{'timeoutSeconds':60}},'externalTrafficPolicy':'Cluster',"
			  "'allocateLoadBalancerNodePorts':false")),
		ADD_S(SVC("two", "1", NP(HTTP) ",'sessionAffinity':'None','sessionAffinityConfig':"
			  "{'clientIP':{'timeoutSeconds':60}}")),
	  }, "demo/web NodePort nat* fam=4 affinity=60 rv=1 uid=u-web | http TCP 80 np=30080:\n"
	  "demo/two NodePort nat* fam=4 rv=1 uid=u-two | http TCP 80 np=30080:\n--\n", 0, NULL,
	  0 },
	{ "source_ranges", {
		ADD_S(SVC_ANN("web", "1",
			      "'service.beta.kubernetes.io/load-balancer-source-ranges':"
			      "'192.0.2.0/24'", LB(HTTP) ",'loadBalancerSourceRanges':"
			      "['198.51.100.0/24',' 10.1.2.3/8 ','2001:db8::1/32',"
			      "'198.51.100.0/24']")),
		ADD_S(SVC_ANN("ann", "1",
			      "'service.beta.kubernetes.io/load-balancer-source-ranges':"
			      "' 198.51.100.0/25 ,, 2001:db8::/48'", LB(HTTP))),
		ADD_S(SVC_ANN("np", "1", "'service.beta.kubernetes.io/load-balancer-source-ranges':"
			      "'198.51.100.0/24'", NP(HTTP) ",'loadBalancerSourceRanges':"
			      "['198.51.100.0/24']")),
	  }, "demo/web LoadBalancer nat* fam=4 ranges=198.51.100.0/24,10.0.0.0/8,2001:db8::/32 "
	  "rv=1 uid=u-web | http TCP 80 np=30080:\n"
	  "demo/ann LoadBalancer nat* fam=4 ranges=198.51.100.0/25,2001:db8::/48 rv=1 uid=u-ann"
	  " | http TCP 80 np=30080:\n"
	  "demo/np NodePort nat* fam=4 rv=1 uid=u-np | http TCP 80 np=30080:\n--\n", 0, NULL, 0 },
	{ "mode_annotation", {
		ADD_S(SVC_ANN("web", "1", "'svcgw.io/mode':'dsr-gue'", NP(HTTP))),
		ADD_S(SVC_ANN("bad", "1", "'svcgw.io/mode':'DSR'", NP(HTTP))),
	  }, "demo/web NodePort dsr-gue fam=4 ann=svcgw.io/mode=dsr-gue rv=1 uid=u-web"
	  " | http TCP 80 np=30080:\n"
	  "demo/bad NodePort nat* fam=4 ann=svcgw.io/mode=DSR rv=1 uid=u-bad"
	  " | http TCP 80 np=30080:\n--\n", 0, NULL, 1 },
	{ "provider_fields", {
		ADD_S(SVC_ANN("web", "1", "'svcgw.io/loadBalancerIPs':'192.0.2.50',"
			      "'example.com/other':'x','svcgw.io/allow-shared-ip':'k',"
			      "'svcgw.io/address-pool':'pool-a','svcgw.io/number':7",
			      LB(HTTP) ",'loadBalancerClass':'svcgw.io/lb','loadBalancerIP':"
			      "'192.0.2.50','ipFamilyPolicy':'SingleStack'")),
	  }, "demo/web LoadBalancer nat* fam=4 policy=Single class=svcgw.io/lb lbip=192.0.2.50 "
	  "ann=svcgw.io/address-pool=pool-a,svcgw.io/allow-shared-ip=k,"
	  "svcgw.io/loadBalancerIPs=192.0.2.50 rv=1 uid=u-web | http TCP 80 np=30080:\n--\n", 0,
	  NULL, 0 },
	{ "bad_protocol", {
		ADD_S(SVC("web", "1", NP("{'name':'x','protocol':'ICMP','port':80}"))),
		ADD_S(SVC("ok", "1", NP(HTTP))),
	  }, "demo/ok NodePort nat* fam=4 rv=1 uid=u-ok | http TCP 80 np=30080:\n--\n", 1,
	  "service demo/web: spec.ports[0].protocol \"ICMP\" is not TCP, UDP or SCTP; skipped", 0 },
	{ "bad_port", { ADD_S(SVC("web", "1", NP("{'port':70000}"))) }, "--\n", 1,
	  "service demo/web: spec.ports[0].port 70000 is out of range (1-65535); skipped", 0 },
	{ "bad_node_port", { ADD_S(SVC("web", "1", NP("{'port':80,'nodePort':-1}"))) }, "--\n", 1,
	  "service demo/web: spec.ports[0].nodePort -1 is out of range (0-65535); skipped", 0 },
	{ "bad_port_fraction", { ADD_S(SVC("web", "1", NP("{'port':80.5}"))) }, "--\n", 1,
	  "service demo/web: spec.ports[0].port is not an integer; skipped", 0 },
	{ "bad_port_missing", { ADD_S(SVC("web", "1", NP("{'name':'x'}"))) }, "--\n", 1,
	  "service demo/web: spec.ports[0].port is missing; skipped", 0 },
	{ "bad_port_dup", { ADD_S(SVC("web", "1", NP("{'name':'x','port':80},"
						   "{'name':'x','port':81}"))) }, "--\n", 1,
	  "service demo/web: spec.ports[1] has the name and protocol of spec.ports[0]; skipped",
	  0 },
	{ "bad_spec", { ADD_S("{" META("web", "1") "},'spec':'x'}") }, "--\n", 1,
	  "service demo/web: no spec; skipped", 0 },
	{ "bad_types", {
		ADD_S(SVC("a", "1", "'type':'NodePort','clusterIP':7")),
		ADD_S(SVC("b", "1", "'type':'NodePort','clusterIP':'10.0.0.1','ports':{}")),
		ADD_S(SVC("c", "1", "'type':'Ingress'")),
		ADD_S(SVC("d", "1", NP(HTTP) ",'ipFamilyPolicy':'Both'")),
		ADD_S(SVC("e", "1", "'type':'NodePort','clusterIP':'x','ports':[]")),
		ADD_S(SVC("f", "1", NP(HTTP) ",'sessionAffinity':'ClientIP',"
			  "'sessionAffinityConfig':"
			  "{'clientIP':{'timeoutSeconds':86401}}")),
		ADD_S(SVC_ST("g", "1", LB(HTTP),
			     "'loadBalancer':{'ingress':[{'ip':'192.0.2.300'}]}")),
		ADD_S(SVC("h", "1", LB(HTTP) ",'loadBalancerSourceRanges':['192.0.2.0']")),
		ADD_S(SVC_ANN("i", "1", "'service.beta.kubernetes.io/load-balancer-source-ranges':"
			      "'192.0.2.0/33'", LB(HTTP))),
	  }, "--\n", 9, "service demo/i: annotation "
	  "service.beta.kubernetes.io/load-balancer-source-ranges \"192.0.2.0/33\" is not a CIDR; "
	  "skipped", 0 },
	{ "bad_no_name", {
		ADD_S("{'metadata':{'namespace':'demo'},'spec':{}}"),
		ADD_E("{'metadata':{'name':'x'},'addressType':'IPv4'}"),
		DEL_S("{'metadata':{}}"),
	  }, "--\n", 2, "endpointslice ?: no metadata.namespace; skipped", 0 },
	{ "bad_withdraws", {
		ADD_S(WEB_NP), ADD_E(WEB_SLICE), FLUSH,
		MOD_S(SVC("web", "2", NP("{'name':'http','protocol':'XTP','port':80}"))), FLUSH,
		MOD_S(SVC("web", "2", NP("{'name':'http','protocol':'XTP','port':80}"))), FLUSH,
		MOD_S(SVC("web", "3", NP(HTTP))),
	  }, WEB_OUT "--\ndemo/web deleted\n--\n--\n"
	  "demo/web NodePort nat* fam=4 rv=3 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.11:8080/RS- 203.0.113.12:8080/RS-\n--\n", 1,
	  "service demo/web: spec.ports[0].protocol \"XTP\" is not TCP, UDP or SCTP; skipped", 0 },
	{ "bad_slices", {
		ADD_S(WEB_NP),
		ADD_E(SLICE("web-a", "2", "web", "IPv4", "{'name':'http','protocol':'ICMP',"
			    "'port':8080}", EP("203.0.113.11"))),
		ADD_E(SLICE("web-b", "3", "web", "IPv4", SP("http", 8080), EP("2001:db8::1"))),
		ADD_E(SLICE("web-c", "4", "web", "IPX", SP("http", 8080), EP("203.0.113.13"))),
		ADD_E(SLICE("web-d", "5", "web", "IPv4", SP("http", 0), EP("203.0.113.14"))),
		ADD_E(SLICE("web-e", "6", "web", "IPv4", SP("http", 8080),
			    EPC("203.0.113.15", "'ready':'yes'"))),
		ADD_E(SLICE("web-f", "7", "web", "IPv4", SP("http", 8080), EP("203.0.113.16"))),
	  }, "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.16:8080/RS-\n--\n", 5,
	  "endpointslice demo/web-e: endpoints[0].conditions.ready is not a boolean; skipped", 0 },
	{ "slice_label", {
		ADD_S(WEB_NP), ADD_E(WEB_SLICE),
		ADD_E("{'metadata':{'namespace':'demo','name':'orphan','resourceVersion':'5'},"
		      "'addressType':'IPv4','ports':[" SP("http", 8080) "],'endpoints':["
		      EP("203.0.113.50") "]}"), FLUSH,
		MOD_E(SLICE("web-a", "3", "other", "IPv4", SP("http", 8080), EP("203.0.113.11"))),
		FLUSH,
		MOD_E(SLICE("web-a", "4", "web", "IPv4", SP("http", 8080), EP("203.0.113.12"))),
	  }, WEB_OUT "--\n"
	  "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080:\n--\n"
	  "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080: "
	  "203.0.113.12:8080/RS-\n--\n", 0, NULL, 0 },
	{ "deletions", {
		ADD_S(WEB_NP), ADD_E(WEB_SLICE), FLUSH,
		DEL_E(WEB_SLICE), FLUSH, DEL_S(WEB_NP), FLUSH, DEL_S(WEB_NP), DEL_E(WEB_SLICE),
	  }, WEB_OUT "--\n"
	  "demo/web NodePort nat* fam=4 rv=1 uid=u-web | http TCP 80 np=30080:\n--\n"
	  "demo/web deleted\n--\n--\n", 0, NULL, 0 },
	{ "coalesced", {
		ADD_S(SVC("web", "1", NP(HTTP))), ADD_E(WEB_SLICE),
		MOD_S(SVC("web", "2", NP(HTTP))),
		MOD_S(SVC("web", "3", NP("{'name':'http','port':81,'nodePort':30081}"))),
		MOD_E(SLICE("web-a", "4", "web", "IPv4", SP("http", 8080), EP("203.0.113.13"))),
		ADD_S(SVC("gone", "1", NP(HTTP))), DEL_S(SVC("gone", "1", NP(HTTP))),
	  }, "demo/web NodePort nat* fam=4 rv=3 uid=u-web | http TCP 81 np=30081: "
	  "203.0.113.13:8080/RS-\n--\n", 0, NULL, 0 },
};

static void
run_events(struct k8s_model *m, const struct mev *ev, unsigned int n, struct out *o)
{
	for (unsigned int i = 0; i < n && (ev[i].json != NULL || ev[i].res == -1); i++) {
		char *j;
		int rc;

		if (ev[i].res == -1) {
			flush_into(m, o);
			continue;
		}
		j = q(ev[i].json);
		{
			cJSON *obj = cJSON_Parse(j);

			if (obj == NULL)
				fail_msg("event %u: fixture is not JSON: %s", i, j);
			rc = k8s_model_apply(m, (unsigned int)ev[i].res, ev[i].type, obj);
			assert_true(rc == 0 || rc == -EINVAL);
			cJSON_Delete(obj);
		}
		free(j);
	}
	flush_into(m, o);
}

static void
test_model_row(void **state)
{
	const struct model_row *r = *state;
	struct logbook lb;
	struct k8s_log log = { log_cb, &lb };
	struct k8s_model *m;
	struct out o;

	memset(&lb, 0, sizeof(lb));
	o.text[0] = '\0';
	m = k8s_model_create(SG_CONF_MODE_NAT, &log);
	assert_non_null(m);
	run_events(m, r->ev, SG_ARRAY_SIZE(r->ev), &o);
	if (strcmp(o.text, r->expect) != 0)
		fail_msg("got:\n%s\nwant:\n%s", o.text, r->expect);
	assert_int_equal(lb.n[SG_K8S_LOG_ERR], r->errors);
	assert_int_equal(k8s_model_bad(m), r->errors);
	if (r->last_error != NULL)
		assert_string_equal(lb.last[SG_K8S_LOG_ERR], r->last_error);
	assert_int_equal(lb.n[SG_K8S_LOG_WARNING], r->warnings);
	k8s_model_free(m);
}

/* ---- the model: relists, the default mode, nodes ------------------------- */

static void
relist_add(struct k8s_model *m, unsigned int res, const char *json, int rc_want)
{
	char *j = q(json);
	cJSON *o = cJSON_Parse(j);

	assert_non_null(o);
	assert_int_equal(k8s_model_relist_add(m, res, o), rc_want);
	cJSON_Delete(o);
	free(j);
}

#define SVC_A(rv) SVC("a", rv, NP("{'name':'http','port':80,'nodePort':30001}"))
#define SVC_B(rv) SVC("b", rv, NP("{'name':'http','port':80,'nodePort':30002}"))
#define SVC_C(rv) SVC("c", rv, NP("{'name':'http','protocol':'QUIC','port':80}"))
#define SVC_D(rv) SVC("d", rv, NP("{'name':'http','port':80,'nodePort':30004}"))
#define SLICE_OF(s, rv, ip) SLICE(s "-1", rv, s, "IPv4", SP("http", 8080), EP(ip))

/* A fresh list replaces the model: what it does not hold any more is deleted. */
static void
test_model_relist(void **state)
{
	struct logbook lb;
	struct k8s_log log = { log_cb, &lb };
	struct k8s_model *m = k8s_model_create(SG_CONF_MODE_NAT, &log);
	struct out o = { "" };

	(void)state;
	memset(&lb, 0, sizeof(lb));
	k8s_model_relist_begin(m, SG_K8S_SERVICES);
	relist_add(m, SG_K8S_SERVICES, SVC_A("1"), 0);
	relist_add(m, SG_K8S_SERVICES, SVC_B("1"), 0);
	relist_add(m, SG_K8S_SERVICES, SVC_C("1"), -EINVAL);
	k8s_model_relist_end(m, SG_K8S_SERVICES);
	k8s_model_relist_begin(m, SG_K8S_ENDPOINTSLICES);
	relist_add(m, SG_K8S_ENDPOINTSLICES, SLICE_OF("a", "2", "203.0.113.1"), 0);
	relist_add(m, SG_K8S_ENDPOINTSLICES, SLICE_OF("b", "2", "203.0.113.2"), 0);
	k8s_model_relist_end(m, SG_K8S_ENDPOINTSLICES);
	flush_into(m, &o);
	assert_string_equal(o.text,
		"demo/a NodePort nat* fam=4 rv=1 uid=u-a | http TCP 80 np=30001: "
		"203.0.113.1:8080/RS-\n"
		"demo/b NodePort nat* fam=4 rv=1 uid=u-b | http TCP 80 np=30002: "
		"203.0.113.2:8080/RS-\n--\n");
	assert_int_equal(lb.n[SG_K8S_LOG_ERR], 1);
	assert_int_equal(k8s_model_count(m, SG_K8S_SERVICES), 2);
	assert_int_equal(k8s_model_count(m, SG_K8S_ENDPOINTSLICES), 2);
	assert_int_equal(k8s_model_served(m), 2);

	/* A list that fails half way removes nothing; the next one, complete, does. */
	k8s_model_relist_begin(m, SG_K8S_SERVICES);
	relist_add(m, SG_K8S_SERVICES, SVC_A("1"), 0);
	o.text[0] = '\0';
	flush_into(m, &o);
	assert_string_equal(o.text, "--\n");
	k8s_model_relist_begin(m, SG_K8S_SERVICES);
	relist_add(m, SG_K8S_SERVICES, SVC_A("1"), 0);		/* unchanged: no change */
	relist_add(m, SG_K8S_SERVICES, SVC_C("1"), -EINVAL);	/* still bad, not logged */
	relist_add(m, SG_K8S_SERVICES, SVC_D("1"), 0);
	k8s_model_relist_end(m, SG_K8S_SERVICES);
	flush_into(m, &o);
	assert_string_equal(o.text, "--\n"
		"demo/d NodePort nat* fam=4 rv=1 uid=u-d | http TCP 80 np=30004:\n"
		"demo/b deleted\n--\n");
	assert_int_equal(lb.n[SG_K8S_LOG_ERR], 1);
	assert_int_equal(k8s_model_bad(m), 1);
	assert_int_equal(k8s_model_count(m, SG_K8S_SERVICES), 2);
	assert_int_equal(k8s_model_served(m), 2);

	/* The slices' turn: one changed, b's gone, d's new. */
	k8s_model_relist_begin(m, SG_K8S_ENDPOINTSLICES);
	relist_add(m, SG_K8S_ENDPOINTSLICES, SLICE_OF("a", "3", "203.0.113.9"), 0);
	relist_add(m, SG_K8S_ENDPOINTSLICES, SLICE_OF("d", "3", "203.0.113.4"), 0);
	k8s_model_relist_end(m, SG_K8S_ENDPOINTSLICES);
	o.text[0] = '\0';
	flush_into(m, &o);
	assert_string_equal(o.text,
		"demo/a NodePort nat* fam=4 rv=1 uid=u-a | http TCP 80 np=30001: "
		"203.0.113.9:8080/RS-\n"
		"demo/d NodePort nat* fam=4 rv=1 uid=u-d | http TCP 80 np=30004: "
		"203.0.113.4:8080/RS-\n--\n");
	assert_int_equal(k8s_model_count(m, SG_K8S_ENDPOINTSLICES), 2);

	/* An empty list empties the model. */
	k8s_model_relist_begin(m, SG_K8S_SERVICES);
	k8s_model_relist_end(m, SG_K8S_SERVICES);
	o.text[0] = '\0';
	flush_into(m, &o);
	assert_string_equal(o.text, "demo/a deleted\ndemo/d deleted\n--\n");
	assert_int_equal(k8s_model_count(m, SG_K8S_SERVICES), 0);
	assert_int_equal(k8s_model_served(m), 0);
	assert_int_equal(k8s_model_relist_add(NULL, 0, NULL), -EINVAL);
	k8s_model_relist_begin(NULL, 0);
	k8s_model_relist_end(NULL, 0);
	k8s_model_relist_end(m, SG_K8S_RESOURCE_COUNT);
	k8s_model_free(m);
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* got and want hold the same lines, in any order. */
static void
assert_same_lines(const char *got, const char *want)
{
	char *g = strdup(got), *w = strdup(want), *gl[64], *wl[64], *save;
	unsigned int ng = 0, nw = 0;

	assert_non_null(g);
	assert_non_null(w);
	for (char *t = strtok_r(g, "\n", &save); t != NULL && ng < 64;
	     t = strtok_r(NULL, "\n", &save))
		gl[ng++] = t;
	for (char *t = strtok_r(w, "\n", &save); t != NULL && nw < 64;
	     t = strtok_r(NULL, "\n", &save))
		wl[nw++] = t;
	if (ng != nw)
		fail_msg("got:\n%s\nwant:\n%s", got, want);
	qsort(gl, ng, sizeof(*gl), cmp_line);
	qsort(wl, nw, sizeof(*wl), cmp_line);
	for (unsigned int i = 0; i < ng; i++)
		if (strcmp(gl[i], wl[i]) != 0)
			fail_msg("got:\n%s\nwant:\n%s", got, want);
	free(g);
	free(w);
}

/* A reload's new default_mode reaches exactly the services without a valid annotation. */
static void
test_model_default_mode(void **state)
{
	struct k8s_model *m = k8s_model_create(SG_CONF_MODE_NAT, NULL);
	static const struct mev ev[] = {
		ADD_S(SVC("a", "1", NP(HTTP))),
		ADD_S(SVC_ANN("b", "1", "'svcgw.io/mode':'dnat'", NP(HTTP))),
		ADD_S(SVC_ANN("c", "1", "'svcgw.io/mode':'bogus'", NP(HTTP))),
		ADD_S(SVC("d", "1", CIP(HTTP))),
	};
	struct out o = { "" };

	(void)state;
	run_events(m, ev, SG_ARRAY_SIZE(ev), &o);
	o.text[0] = '\0';
	k8s_model_set_default_mode(m, SG_CONF_MODE_DSR_L2);
	k8s_model_set_default_mode(m, SG_CONF_MODE_COUNT);	/* ignored */
	flush_into(m, &o);
	/* Marked in map order: compare as sets of lines. */
	assert_same_lines(o.text,
		"demo/a NodePort dsr-l2* fam=4 rv=1 uid=u-a | http TCP 80 np=30080:\n"
		"demo/c NodePort dsr-l2* fam=4 ann=svcgw.io/mode=bogus rv=1 uid=u-c"
		" | http TCP 80 np=30080:\n--\n");
	o.text[0] = '\0';
	k8s_model_set_default_mode(m, SG_CONF_MODE_DSR_L2);	/* the same: nothing */
	flush_into(m, &o);
	assert_string_equal(o.text, "--\n");
	k8s_model_set_default_mode(NULL, 0);
	k8s_model_free(m);
}

#define NODE(n, rv, body) "{'metadata':{'name':'" n "','resourceVersion':'" rv "'" body "}"

static void
node_event(struct k8s_model *m, unsigned int type, const char *json)
{
	char *j = q(json);
	cJSON *o = cJSON_Parse(j);

	assert_non_null(o);
	k8s_model_apply(m, SG_K8S_NODES, type, o);
	cJSON_Delete(o);
	free(j);
}

static void
test_model_nodes(void **state)
{
	struct k8s_model *m = k8s_model_create(SG_CONF_MODE_NAT, NULL);
	struct sg_k8s_nodes *n;
	char buf[SG_CONF_ADDR_STRLEN];
	const char *n2 = NODE("n2", "1", ",'labels':{'topology.kubernetes.io/zone':'z2'}},"
		"'status':{'conditions':[{'type':'MemoryPressure','status':'False'},"
		"{'type':'Ready','status':'True'}],'addresses':[{'type':'Hostname','address':'n2'},"
		"{'type':'ExternalIP','address':'198.51.100.2'},"
		"{'type':'InternalIP','address':'192.0.2.2'},"
		"{'type':'InternalIP','address':'2001:db8::2'}]") "}";
	const char *n2_same = NODE("n2", "2", ",'labels':{'topology.kubernetes.io/zone':'z2',"
		"'other':'x'}},'status':{'conditions':[{'type':'Ready','status':'True'}],"
		"'addresses':[{'type':'InternalIP','address':'192.0.2.2'},"
		"{'type':'InternalIP','address':'2001:db8::2'},"
		"{'type':'ExternalIP','address':'198.51.100.2'}]") "}";
	const char *n2_down = NODE("n2", "3", ",'labels':{'topology.kubernetes.io/zone':'z2'}},"
		"'status':{'conditions':[{'type':'Ready','status':'Unknown'}],"
		"'addresses':[{'type':'InternalIP','address':'192.0.2.2'},"
		"{'type':'InternalIP','address':'2001:db8::2'},"
		"{'type':'ExternalIP','address':'198.51.100.2'}]") "}";

	(void)state;
	assert_false(k8s_model_nodes_changed(m));
	node_event(m, K8S_EV_ADDED, n2);
	node_event(m, K8S_EV_ADDED, NODE("n1", "1", ",'labels':{'node.kubernetes.io/"
		   "exclude-from-external-load-balancers':''}},'spec':{'unschedulable':true},"
		   "'status':{'conditions':[{'type':'Ready','status':'False'}]") "}");
	assert_true(k8s_model_nodes_changed(m));
	n = k8s_model_nodes(m);
	assert_non_null(n);
	assert_false(k8s_model_nodes_changed(m));
	assert_int_equal(n->n, 2);
	assert_string_equal(n->nodes[0].name, "n1");
	assert_int_equal(n->nodes[0].ready, 0);
	assert_int_equal(n->nodes[0].unschedulable, 1);
	assert_int_equal(n->nodes[0].exclude_lb, 1);
	assert_string_equal(n->nodes[0].zone, "");
	assert_int_equal(n->nodes[0].n_addresses, 0);
	assert_string_equal(n->nodes[1].name, "n2");
	assert_int_equal(n->nodes[1].ready, 1);
	assert_int_equal(n->nodes[1].unschedulable, 0);
	assert_int_equal(n->nodes[1].exclude_lb, 0);
	assert_string_equal(n->nodes[1].zone, "z2");
	assert_int_equal(n->nodes[1].n_addresses, 3);
	/* InternalIP first, then ExternalIP; host names are not addresses. */
	assert_string_equal(sg_conf_addr_str(&n->nodes[1].addresses[0], buf, sizeof(buf)),
			    "192.0.2.2");
	assert_string_equal(sg_conf_addr_str(&n->nodes[1].addresses[1], buf, sizeof(buf)),
			    "2001:db8::2");
	assert_string_equal(sg_conf_addr_str(&n->nodes[1].addresses[2], buf, sizeof(buf)),
			    "198.51.100.2");
	sg_k8s_nodes_free(n);

	/* A heartbeat that changes nothing svcgw reads is no change. */
	node_event(m, K8S_EV_MODIFIED, n2_same);
	assert_false(k8s_model_nodes_changed(m));
	node_event(m, K8S_EV_MODIFIED, n2_down);
	assert_true(k8s_model_nodes_changed(m));
	n = k8s_model_nodes(m);
	assert_int_equal(n->nodes[1].ready, 0);
	sg_k8s_nodes_free(n);
	node_event(m, K8S_EV_DELETED, NODE("n1", "4", "}"));
	assert_true(k8s_model_nodes_changed(m));
	n = k8s_model_nodes(m);
	assert_int_equal(n->n, 1);
	sg_k8s_nodes_free(n);
	/* A bad node is skipped; deleting the last leaves an empty list. */
	node_event(m, K8S_EV_ADDED, NODE("n3", "1", "},'spec':{'unschedulable':'no'") "}");
	assert_false(k8s_model_nodes_changed(m));
	assert_int_equal(k8s_model_count(m, SG_K8S_NODES), 1);
	assert_int_equal(k8s_model_bad(m), 1);
	node_event(m, K8S_EV_DELETED, NODE("n2", "5", "}"));
	n = k8s_model_nodes(m);
	assert_int_equal(n->n, 0);
	assert_null(n->nodes);
	sg_k8s_nodes_free(n);
	k8s_model_free(m);
}

static void
test_model_args(void **state)
{
	struct k8s_model *m;
	cJSON *o = cJSON_CreateObject();
	struct out out = { "" };

	(void)state;
	errno = 0;
	assert_null(k8s_model_create(SG_CONF_MODE_COUNT, NULL));
	assert_int_equal(errno, EINVAL);
	k8s_model_free(NULL);
	m = k8s_model_create(SG_CONF_MODE_DNAT, NULL);
	assert_non_null(m);
	assert_int_equal(k8s_model_apply(NULL, 0, K8S_EV_ADDED, o), -EINVAL);
	assert_int_equal(k8s_model_apply(m, SG_K8S_RESOURCE_COUNT, K8S_EV_ADDED, o), -EINVAL);
	assert_int_equal(k8s_model_apply(m, 0, K8S_EV_BOOKMARK, o), -EINVAL);
	assert_int_equal(k8s_model_apply(m, 0, K8S_EV_ADDED, NULL), -EINVAL);
	assert_int_equal(k8s_model_flush(NULL, render_cb, &out), -EINVAL);
	assert_int_equal(k8s_model_flush(m, NULL, NULL), -EINVAL);
	assert_int_equal(k8s_model_count(NULL, 0), 0);
	assert_int_equal(k8s_model_count(m, SG_K8S_RESOURCE_COUNT), 0);
	assert_int_equal(k8s_model_served(NULL), 0);
	assert_int_equal(k8s_model_bad(NULL), 0);
	assert_false(k8s_model_nodes_changed(NULL));
	assert_null(k8s_model_nodes(NULL));
	k8s_model_free(m);
	cJSON_Delete(o);
}

/* ---- main ---------------------------------------------------------------- */

/* ---- using the credentials: headers, token re-read ---------------------------- */

struct logged {
	unsigned int level;
	char msg[512];
	unsigned int n;
};

static void
log_keep(void *arg, unsigned int level, const char *msg)
{
	struct logged *l = arg;

	l->level = level;
	snprintf(l->msg, sizeof(l->msg), "%s", msg);
	l->n++;
}

/* The headers, one string, "|" between them. */
static void
headers_str(struct curl_slist *h, char *buf, size_t size)
{
	buf[0] = '\0';
	for (struct curl_slist *n = h; n != NULL; n = n->next)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "|" : "", n->data);
	curl_slist_free_all(h);
}

static void
test_creds_use(void **state)
{
	struct k8s_creds c;
	struct logged seen = { 0 };
	struct k8s_log log = { log_keep, &seen };
	char path[PATH_MAX], buf[PATH_MAX + 64];
	uint64_t read_ms;

	(void)state;
	memset(&c, 0, sizeof(c));
	headers_str(k8s_creds_headers(&c, NULL), buf, sizeof(buf));
	assert_string_equal(buf, "Accept: application/json|User-Agent: svcgw/0.1");
	c.token = strdup("tok-a");
	headers_str(k8s_creds_headers(&c, "application/merge-patch+json"), buf, sizeof(buf));
	assert_string_equal(buf, "Accept: application/json|User-Agent: svcgw/0.1|"
			    "Content-Type: application/merge-patch+json|Authorization: Bearer tok-a");

	/* No token file: nothing to read again, whatever is asked. */
	read_ms = 0;
	k8s_creds_refresh_token(&c, &read_ms, 60, 1, &log);
	assert_string_equal(c.token, "tok-a");
	assert_int_equal(read_ms, 0);

	write_file(path, sizeof(path), "rot.tok", "tok-a\n");
	c.token_file = strdup(path);
	/* Not due: not read, though the file changed. */
	read_ms = sg_mono_ms();
	write_file(path, sizeof(path), "rot.tok", "tok-b\n");
	k8s_creds_refresh_token(&c, &read_ms, 60, 0, &log);
	assert_string_equal(c.token, "tok-a");
	assert_int_equal(seen.n, 0);
	/* After a 401 (force): read, and said. */
	k8s_creds_refresh_token(&c, &read_ms, 60, 1, &log);
	assert_string_equal(c.token, "tok-b");
	assert_int_equal(seen.level, SG_K8S_LOG_INFO);
	snprintf(buf, sizeof(buf), "token %s read again: it changed", path);
	assert_string_equal(seen.msg, buf);
	/* read_ms 0 is due too; the same token says nothing. */
	read_ms = 0;
	k8s_creds_refresh_token(&c, &read_ms, 60, 0, &log);
	assert_int_equal(seen.n, 1);
	assert_true(read_ms != 0);
	/* Gone: the last token stays, with a warning. */
	assert_int_equal(unlink(path), 0);
	k8s_creds_refresh_token(&c, &read_ms, 60, 1, &log);
	assert_string_equal(c.token, "tok-b");
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.level, SG_K8S_LOG_WARNING);
	assert_non_null(strstr(seen.msg, "the last token read is kept"));
	/* Without a log, the same, silently. */
	k8s_creds_refresh_token(&c, &read_ms, 60, 1, NULL);
	assert_string_equal(c.token, "tok-b");
	k8s_creds_clear(&c);
}

static int
setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_k8s.XXXXXX", t != NULL && t[0] ? t : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#define ROWS(rows, fn, prefix) \
	for (unsigned int i = 0; i < SG_ARRAY_SIZE(rows); i++, n++) { \
		snprintf(names[n], sizeof(names[n]), prefix "%s", rows[i].name); \
		tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(fn, (void *)&rows[i]); \
		tests[n].name = names[n]; \
	}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_api_args),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_post_event),
		cmocka_unit_test(test_yaml_args),
		cmocka_unit_test(test_yaml_nul),
		cmocka_unit_test(test_yaml_valid),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_kubeconfig_files),
		cmocka_unit_test(test_kubeconfig_valid),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_creds_use),
		cmocka_unit_test(test_credential_selection),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_queue_threads),
		cmocka_unit_test(test_lines_split),
		cmocka_unit_test(test_lines_limits),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_request_paths),
		cmocka_unit_test(test_model_args),
		cmocka_unit_test(test_model_relist),
		cmocka_unit_test(test_model_default_mode),
		cmocka_unit_test(test_model_nodes),
	};
	enum {
		N_TESTS = SG_ARRAY_SIZE(fixed) + SG_ARRAY_SIZE(yaml_bad_rows) +
			  SG_ARRAY_SIZE(kc_bad_rows) + SG_ARRAY_SIZE(model_rows),
	};
	static char names[N_TESTS][64];
	static struct CMUnitTest tests[N_TESTS];
	unsigned int n = SG_ARRAY_SIZE(fixed);

	memcpy(tests, fixed, sizeof(fixed));
	ROWS(yaml_bad_rows, test_yaml_bad_row, "yaml_error_")
	ROWS(kc_bad_rows, test_kubeconfig_bad_row, "kubeconfig_error_")
	ROWS(model_rows, test_model_row, "model_")
	return cmocka_run_group_tests_name("k8s", tests, setup, teardown);
}
