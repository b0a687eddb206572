#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A Kubernetes API server stand-in for svcgw's control-plane tests.

There is no kube-apiserver in Debian, so the tests run this instead: one
module of standard-library Python that speaks the real protocol over HTTPS
(generated CA, bearer tokens and client certificates, HTTP/1.1 keep-alive)
for the objects svcgw reads and writes: Services (with their status
subresource), EndpointSlices, Nodes, Leases, Events (core/v1 and
events.k8s.io/v1, one store seen through both) and Namespaces. It lists with
selectors and limit/continue, watches with bookmarks over chunked streams,
keeps a resourceVersion history with a compaction window, allocates cluster
IPs and node ports, applies merge, strategic-merge and JSON patches with
optimistic concurrency, authorizes with RBAC-style rules, records every
request, and injects the faults a client must survive. README.md beside this
file lists each behaviour with the API reference page it follows, and what
is left out.

Use from a test (in-process; every thread is a daemon thread, so the server
ends with the test process):

    from apiserver import ApiServer, service, endpoint_slice
    srv = ApiServer().start()
    srv.create(service("web", [("http", "TCP", 80, 8080)]))
    srv.write_kubeconfig(path)              # or srv.write_in_cluster(dir)
    srv.drop_watches(); srv.fail_next(3); srv.compact()
    srv.requests(verb="patch", resource="services")
    srv.stop()

Or as a process (`apiserver.py --help`): it prints one JSON line with the
URL, CA and token, serves until its standard input closes (so it stops with
the process that started it), and exits.

What does not live here: any knowledge of svcgw itself.
"""
import argparse
import base64
import bisect
import ctypes
import gzip
import http.server
import ipaddress
import json
import os
import random
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

KUBE_VERSION = ("1", "30", "v1.30.0")
DEFAULT_USER = "system:serviceaccount:kube-system:svcgw"
CLIENT_CERT_USER = "svcgw-client"

# Go's net/http sends a response with Content-Length when the handler
# wrote at most this much before finishing, chunked otherwise
# (net/http bufferBeforeChunkingSize); clients meet both framings.
GO_CHUNKING_THRESHOLD = 2048
# kube-apiserver gzips non-watch responses above 128 KiB when the client
# accepts gzip (APIResponseCompression, on by default since 1.16).
GZIP_THRESHOLD = 128 * 1024
MAX_BODY = 3 * 1024 * 1024


def now_rfc3339(t=None):
    """metav1.Time: seconds precision, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def now_micro(t=None):
    """metav1.MicroTime: microseconds, UTC."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%06dZ" % int((t % 1) * 1e6)


def go_json(obj, pretty=False):
    """JSON as Go's encoding/json writes it: compact, a trailing newline
    (json.Encoder.Encode), and <, >, & and U+2028/9 escaped (Go escapes
    them by default). Those characters only ever occur inside strings in
    JSON text, so replacing them in the output is safe."""
    text = json.dumps(obj, ensure_ascii=False,
                      indent=2 if pretty else None,
                      separators=None if pretty else (",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026").replace("\u2028", "\\u2028") \
        .replace("\u2029", "\\u2029")
    return (text + "\n").encode()


def deep(obj):
    """A private copy of a JSON value (faster than copy.deepcopy)."""
    if isinstance(obj, dict):
        return {k: deep(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [deep(v) for v in obj]
    return obj


# -- errors: metav1.Status ----------------------------------------------------

class ApiError(Exception):
    """A failed request, answered with a metav1.Status of this code and
    reason (k8s.io/apimachinery/pkg/api/errors)."""

    def __init__(self, code, reason, message, details=None, headers=None,
                 list_meta=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.list_meta = list_meta

    def status(self):
        return status_object(self.code, self.reason, self.message,
                             self.details, self.list_meta)


def status_object(code, reason, message, details=None, list_meta=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": list_meta or {},
          "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                    res.details(name))


def conflict(res, name, why="the object has been modified; please apply "
             "your changes to the latest version and try again"):
    return ApiError(409, "Conflict", f"Operation cannot be fulfilled on "
                    f'{res.qualified} "{name}": {why}', res.details(name))


def expired(message, list_meta=None):
    return ApiError(410, "Expired", message, list_meta=list_meta)


def too_large_rv(rv, current):
    """storage.NewTooLargeResourceVersionError: the server waited for the
    requested version and gave up."""
    return ApiError(504, "Timeout",
                    f"Timeout: Too large resource version: {rv}, current: "
                    f"{current}",
                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1},
                    headers={"Retry-After": "1"})


class FieldErrors:
    """field.ErrorList: collects validation errors, then raises one 422
    Invalid Status whose message and causes read like the real server's."""

    def __init__(self):
        self.errs = []

    @staticmethod
    def _val(v):
        return json.dumps(v) if isinstance(v, str) else \
            json.dumps(v, separators=(",", ":"))

    def add(self, reason, field, body):
        self.errs.append((reason, field, body))

    def required(self, field, detail=""):
        self.add("FieldValueRequired", field,
                 "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, field, value, detail):
        self.add("FieldValueInvalid", field,
                 f"Invalid value: {self._val(value)}: {detail}")

    def not_supported(self, field, value, supported):
        sup = ", ".join(json.dumps(s) for s in supported)
        self.add("FieldValueNotSupported", field,
                 f"Unsupported value: {self._val(value)}: supported values: "
                 f"{sup}")

    def forbidden(self, field, detail):
        self.add("FieldValueForbidden", field, f"Forbidden: {detail}")

    def duplicate(self, field, value):
        self.add("FieldValueDuplicate", field,
                 f"Duplicate value: {self._val(value)}")

    def too_many(self, field, n, limit):
        self.add("FieldValueTooMany", field,
                 f"Too many: {n}: must have at most {limit} items")

    def raise_if_any(self, kind, name, group=""):
        if not self.errs:
            return
        msgs = [f"{f}: {b}" for _, f, b in self.errs]
        joined = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        details = {"name": name}
        if group:
            details["group"] = group
        details["kind"] = kind
        details["causes"] = [{"reason": r, "message": b, "field": f}
                             for r, f, b in self.errs]
        raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {joined}',
                       details)


# -- names and values ---------------------------------------------------------

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")


def is_dns_label(s):
    return isinstance(s, str) and len(s) <= 63 and bool(DNS1123_LABEL.match(s))


def is_dns1035_label(s):
    return isinstance(s, str) and len(s) <= 63 and bool(DNS1035_LABEL.match(s))


def is_dns_subdomain(s):
    return isinstance(s, str) and len(s) <= 253 and \
        bool(DNS1123_SUBDOMAIN.match(s))


def is_qualified_name(s):
    """k8s validation.IsQualifiedName: [prefix/]name, as label keys."""
    if not isinstance(s, str) or not s:
        return False
    prefix, _, name = s.rpartition("/")
    if "/" in s and not is_dns_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


def is_label_value(s):
    return isinstance(s, str) and len(s) <= 63 and bool(LABEL_VALUE.match(s))


def ip_of(s, family=None):
    """The address s as ipaddress object if it is a valid address (of
    family 4 or 6 when given), else None."""
    if not isinstance(s, str):
        return None
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    if family and a.version != family:
        return None
    return a


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_bool(s, name):
    """strconv.ParseBool, as the API server parses query booleans."""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False", ""):
        return False
    raise bad_request(f'invalid value for {name}: "{s}"')


def parse_time(s, micro=False):
    """True when s is an RFC 3339 time as metav1.Time / MicroTime decode."""
    if not isinstance(s, str):
        return False
    pat = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z"
    return bool(re.match(pat, s))


# -- label and field selectors ------------------------------------------------
# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors

class LabelSelector:
    """A parsed labelSelector: a conjunction of requirements
    (key, op, values) with op one of exists, !, =, !=, in, notin, gt, lt."""

    TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")

    def __init__(self, text):
        self.text = text or ""
        self.reqs = self._parse(self.text) if self.text.strip() else []

    def empty(self):
        return not self.reqs

    @classmethod
    def _tokens(cls, text):
        out, pos = [], 0
        while pos < len(text):
            m = cls.TOKEN.match(text, pos)
            if not m:
                if text[pos:].strip() == "":
                    break
                raise bad_request(f"unable to parse requirement: found "
                                  f"'{text[pos:]}', expected: identifier")
            out.append(m.group(1))
            pos = m.end()
        return out

    @staticmethod
    def _check_key(key):
        if not is_qualified_name(key):
            raise bad_request(
                f'unable to parse requirement: <nil>: Invalid value: "{key}"'
                ": name part must consist of alphanumeric characters, '-', "
                "'_' or '.', and must start and end with an alphanumeric "
                "character")

    @staticmethod
    def _check_value(v):
        if not is_label_value(v):
            raise bad_request(
                f'unable to parse requirement: values[0][]: Invalid value: '
                f'"{v}": a valid label must be an empty string or consist of '
                "alphanumeric characters, '-', '_' or '.'")

    def _parse(self, text):
        toks = self._tokens(text)
        reqs, i = [], 0

        def expect_ident(j, what):
            if j >= len(toks) or toks[j] in ("!=", "==", "=", "!", "(", ")",
                                             ",", ">", "<"):
                got = toks[j] if j < len(toks) else "end of string"
                raise bad_request(f"unable to parse requirement: found "
                                  f"'{got}', expected: {what}")
            return toks[j]

        while i < len(toks):
            if toks[i] == "!":
                key = expect_ident(i + 1, "identifier after '!'")
                self._check_key(key)
                reqs.append((key, "!", ()))
                i += 2
            else:
                key = expect_ident(i, "identifier")
                self._check_key(key)
                i += 1
                # Each branch leaves i just past what it consumed.
                op = toks[i] if i < len(toks) else ","
                if op == ",":
                    reqs.append((key, "exists", ()))
                elif op in ("=", "==", "!=", ">", "<"):
                    i += 1
                    # An empty value is allowed: "key=" selects key == "".
                    v = ""
                    if i < len(toks) and toks[i] != ",":
                        v = toks[i]
                        i += 1
                    if op in (">", "<"):
                        if not re.fullmatch(r"-?\d+", v):
                            raise bad_request(
                                "unable to parse requirement: for 'Gt', 'Lt'"
                                " operators, the value must be an integer")
                        reqs.append((key, "gt" if op == ">" else "lt", (v,)))
                    else:
                        self._check_value(v)
                        reqs.append((key, "!=" if op == "!=" else "=", (v,)))
                elif op in ("in", "notin"):
                    if i + 1 >= len(toks) or toks[i + 1] != "(":
                        raise bad_request("unable to parse requirement: "
                                          "found '" + (toks[i + 1] if i + 1 <
                                                       len(toks) else "") +
                                          "', expected: '('")
                    j, vals = i + 2, []
                    while j < len(toks) and toks[j] != ")":
                        if toks[j] != ",":
                            self._check_value(toks[j])
                            vals.append(toks[j])
                        j += 1
                    if j >= len(toks):
                        raise bad_request("unable to parse requirement: "
                                          "found '', expected: ')'")
                    reqs.append((key, op, tuple(vals) or ("",)))
                    i = j + 1
                else:
                    raise bad_request(f"unable to parse requirement: found "
                                      f"'{op}', expected: in, notin, =, ==, "
                                      "!=, gt, lt")
            if i < len(toks):
                if toks[i] != ",":
                    raise bad_request(f"unable to parse requirement: found "
                                      f"'{toks[i]}', expected: ','")
                i += 1
                if i >= len(toks):
                    raise bad_request("unable to parse requirement: found "
                                      "'', expected: identifier")
        return reqs

    def matches(self, labels):
        labels = labels or {}
        for key, op, vals in self.reqs:
            has = key in labels
            v = labels.get(key)
            if op == "exists" and not has:
                return False
            if op == "!" and has:
                return False
            if op == "=" and (not has or v != vals[0]):
                return False
            if op == "!=" and has and v == vals[0]:
                return False
            if op == "in" and (not has or v not in vals):
                return False
            if op == "notin" and has and v in vals:
                return False
            if op in ("gt", "lt"):
                if not has or not re.fullmatch(r"-?\d+", v or ""):
                    return False
                a, b = int(v), int(vals[0])
                if (op == "gt" and not a > b) or (op == "lt" and not a < b):
                    return False
        return True


class FieldSelector:
    """A parsed fieldSelector: field=value, field==value, field!=value,
    comma-separated; the fields a resource supports are its own."""

    def __init__(self, text, supported):
        self.text = text or ""
        self.reqs = []
        for part in self._split(self.text):
            m = re.fullmatch(r"\s*([^=!\s]+)\s*(!=|==|=)\s*(.*?)\s*", part)
            if not m:
                raise bad_request(f"invalid selector: '{self.text}'; can't "
                                  "understand '" + part + "'")
            field, op, value = m.groups()
            if field not in supported:
                raise bad_request(f'"{field}" is not a known field '
                                  f"selector: only "
                                  + ", ".join(f'"{s}"' for s in supported))
            self.reqs.append((supported[field], op == "!=",
                              value.replace("\\,", ",").replace("\\=", "=")
                              .replace("\\\\", "\\")))

    @staticmethod
    def _split(text):
        out, cur, esc = [], "", False
        for ch in text:
            if esc:
                cur += "\\" + ch
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == ",":
                out.append(cur)
                cur = ""
            else:
                cur += ch
        if cur.strip() or out:
            out.append(cur)
        return [p for p in out if p.strip()] if text.strip() else []

    def empty(self):
        return not self.reqs

    def matches(self, obj):
        for getter, negate, value in self.reqs:
            got = getter(obj)
            if (got == value) == negate:
                return False
        return True


def dotted(path):
    """A field getter for a dotted path, as the server's field sets give
    strings ("" for missing, "true"/"false" for booleans)."""
    keys = path.split(".")

    def get(obj):
        for k in keys:
            obj = obj.get(k) if isinstance(obj, dict) else None
        if obj is None:
            return ""
        if isinstance(obj, bool):
            return "true" if obj else "false"
        return str(obj)
    return get


# -- patches ------------------------------------------------------------------

def merge_patch(target, patch):
    """JSON Merge Patch, RFC 7386 section 2."""
    if not isinstance(patch, dict):
        return deep(patch)
    out = deep(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path):
    """RFC 6901 section 3/4: the reference tokens of a JSON pointer."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~")
            for t in path[1:].split("/")]


def json_patch(doc, ops):
    """JSON Patch, RFC 6902 section 4 (add, remove, replace, move, copy,
    test); a failing operation raises ValueError."""
    doc = deep(doc)

    def parent(tokens):
        cur = doc
        for t in tokens[:-1]:
            if isinstance(cur, list):
                cur = cur[int(t)]
            elif isinstance(cur, dict) and t in cur:
                cur = cur[t]
            else:
                raise ValueError(f"missing path element {t!r}")
        return cur

    def get(tokens):
        cur = doc
        for t in tokens:
            if isinstance(cur, list):
                cur = cur[int(t)]
            elif isinstance(cur, dict) and t in cur:
                cur = cur[t]
            else:
                raise ValueError(f"missing path element {t!r}")
        return cur

    def add(tokens, value):
        nonlocal doc
        if not tokens:
            doc = value
            return
        p, last = parent(tokens), tokens[-1]
        if isinstance(p, list):
            idx = len(p) if last == "-" else int(last)
            if not 0 <= idx <= len(p):
                raise ValueError("index out of range")
            p.insert(idx, value)
        elif isinstance(p, dict):
            p[last] = value
        else:
            raise ValueError("add into a scalar")

    def remove(tokens):
        p, last = parent(tokens), tokens[-1]
        if isinstance(p, list):
            return p.pop(int(last))
        if isinstance(p, dict) and last in p:
            return p.pop(last)
        raise ValueError(f"remove: no {last!r}")

    if not isinstance(ops, list):
        raise ValueError("a JSON patch is an array of operations")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError(f"invalid operation {op!r}")
        kind, tokens = op["op"], _pointer(op["path"])
        if kind == "add":
            add(tokens, deep(op["value"]))
        elif kind == "remove":
            remove(tokens)
        elif kind == "replace":
            remove(tokens)
            add(tokens, deep(op["value"]))
        elif kind == "move":
            v = remove(_pointer(op["from"]))
            add(tokens, v)
        elif kind == "copy":
            add(tokens, deep(get(_pointer(op["from"]))))
        elif kind == "test":
            if get(tokens) != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        else:
            raise ValueError(f"unknown operation {kind!r}")
    return doc


def strategic_merge(target, patch, keys, path=()):
    """Strategic merge patch (k8s.io/apimachinery strategicpatch) for the
    lists these types declare: `keys` maps a path of field names to the
    list's patchMergeKey, or to "" for a merged list of scalars; other
    lists are replaced whole. Directives: $patch replace/delete in a map
    or list element, $deleteFromPrimitiveList/<field>; $setElementOrder and
    $retainKeys are accepted and ignored."""
    if not isinstance(patch, dict):
        return deep(patch)
    if patch.get("$patch") == "replace":
        return {k: deep(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = deep(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k == "$retainKeys" or \
                k == "$patch":
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(v, list):
                out[field] = [x for x in out[field] if x not in v]
            continue
        sub = path + (k,)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v, keys, sub)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list) and sub in keys and \
                isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, keys[sub], keys, sub)
        else:
            out[k] = deep(v)
    return out


def _merge_list(cur, patch, key, keys, path):
    if key == "":
        out = list(cur)
        for x in patch:
            if x not in out:
                out.append(deep(x))
        return out
    out = [deep(x) for x in cur]
    for el in patch:
        if not isinstance(el, dict) or key not in el:
            if isinstance(el, dict) and el.get("$patch") == "replace":
                return []
            raise ValueError(f"map in a list merged on {key!r} has no "
                             f"{key!r}")
        idx = next((i for i, x in enumerate(out)
                    if isinstance(x, dict) and x.get(key) == el[key]), None)
        if el.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append({k: deep(v) for k, v in el.items() if k != "$patch"})
        else:
            out[idx] = strategic_merge(out[idx], el, keys, path)
    return out


# -- resource types -----------------------------------------------------------

class Res:
    """One resource type as served at one group/version: its URL names,
    kind, scope, field selectors, strategic-merge keys and the
    defaulting/validation/update rules of its registry strategy. The store
    holds objects in storage form; `storage` names the store bucket, so
    two resources may share one (core/v1 and events.k8s.io/v1 events)."""

    group = ""
    version = "v1"
    plural = ""
    singular = ""
    kind = ""
    short = ()
    namespaced = True
    storage = None
    subresources = ()
    status_sub = False        # has a status subresource
    create_on_update = False  # PUT of a missing object creates it
    merge_keys = {("metadata", "ownerReferences"): "uid",
                  ("metadata", "finalizers"): ""}
    extra_fields = {}
    generation = False        # metadata.generation follows spec changes

    def __init__(self):
        self.storage = self.storage or self.plural
        self.qualified = self.plural + ("." + self.group if self.group
                                        else "")
        self.api_version = f"{self.group}/{self.version}" if self.group \
            else self.version
        self.fields = {"metadata.name": dotted("metadata.name")}
        if self.namespaced:
            self.fields["metadata.namespace"] = dotted("metadata.namespace")
        self.fields.update(self.extra_fields)

    def details(self, name):
        d = {"name": name}
        if self.group:
            d["group"] = self.group
        d["kind"] = self.plural
        return d

    # Conversions between what clients see and what the store holds.
    def to_storage(self, obj):
        return obj

    def from_storage(self, obj):
        return obj

    def skeleton(self):
        """The object of a BOOKMARK event: the kind's zero value as Go
        serializes it, only metadata.resourceVersion set."""
        return {}

    def default(self, obj):
        """Registry defaulting, applied to every object written."""

    def validate(self, obj, old, errs):
        """Registry validation (create when old is None)."""

    def prepare_create(self, obj):
        """Strategy PrepareForCreate: drop what a client may not set."""

    def prepare_update(self, new, old, subresource):
        """Strategy PrepareForUpdate: the main resource cannot change the
        status, the status subresource changes nothing else."""
        if self.status_sub:
            if subresource == "status":
                for k in list(new):
                    if k not in ("metadata", "status"):
                        del new[k]
                for k, v in old.items():
                    if k not in ("metadata", "status"):
                        new[k] = deep(v)
            elif "status" in old:
                new["status"] = deep(old["status"])
            else:
                new.pop("status", None)

    def allocate(self, store, new, old):
        """Claim what the object needs from shared allocators (raise
        ApiError on conflict). Called under the store lock."""

    def release(self, store, old, new=None):
        """Give back what `old` held and `new` does not."""


class ServiceRes(Res):
    plural, singular, kind, short = "services", "service", "Service", ("svc",)
    subresources = ("status",)
    status_sub = True
    merge_keys = dict(Res.merge_keys)
    merge_keys.update({("spec", "ports"): "port",
                       ("status", "conditions"): "type"})
    extra_fields = {"spec.clusterIP": dotted("spec.clusterIP"),
                    "spec.type": dotted("spec.type")}
    TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")

    def skeleton(self):
        return {"spec": {}, "status": {"loadBalancer": {}}}

    @staticmethod
    def needs_cluster_ip(spec):
        return spec.get("type") != "ExternalName" and \
            spec.get("clusterIP") != "None"

    @staticmethod
    def needs_node_ports(spec):
        t = spec.get("type")
        return t == "NodePort" or (t == "LoadBalancer" and
                                   spec.get("allocateLoadBalancerNodePorts",
                                            True) is not False)

    @staticmethod
    def needs_hc_node_port(spec):
        return spec.get("type") == "LoadBalancer" and \
            spec.get("externalTrafficPolicy") == "Local"

    def prepare_create(self, obj):
        # serviceStrategy.PrepareForCreate: status is the provider's.
        obj["status"] = {"loadBalancer": {}}

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        t = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "ClientIP":
            cfg = spec.setdefault("sessionAffinityConfig", {})
            cfg.setdefault("clientIP", {}).setdefault("timeoutSeconds", 10800)
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "targetPort" not in p or p["targetPort"] in (0, ""):
                    if "port" in p:
                        p["targetPort"] = p["port"]
        if t in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if t == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if t != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        st = obj.setdefault("status", {})
        if isinstance(st, dict):
            st.setdefault("loadBalancer", {})

    def prepare_update(self, new, old, subresource):
        super().prepare_update(new, old, subresource)
        if subresource == "status":
            return
        nspec, ospec = new.setdefault("spec", {}), old.get("spec", {})
        # patchAllocatedValues: an update that leaves allocated values out
        # keeps them (nodePorts matched by port name).
        if self.needs_cluster_ip(ospec) and self.needs_cluster_ip(nspec):
            if not nspec.get("clusterIP"):
                for k in ("clusterIP", "clusterIPs"):
                    if k in ospec:
                        nspec[k] = deep(ospec[k])
            elif not nspec.get("clusterIPs") and \
                    nspec.get("clusterIP") == ospec.get("clusterIP"):
                nspec["clusterIPs"] = deep(ospec.get("clusterIPs"))
            for k in ("ipFamilies", "ipFamilyPolicy"):
                if k not in nspec and k in ospec:
                    nspec[k] = deep(ospec[k])
        if self.needs_node_ports(ospec) and self.needs_node_ports(nspec):
            used = {p.get("nodePort") for p in nspec.get("ports") or []
                    if isinstance(p, dict) and p.get("nodePort")}
            by_name = {p.get("name", ""): p.get("nodePort")
                       for p in ospec.get("ports") or []
                       if isinstance(p, dict)}
            for p in nspec.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    old_np = by_name.get(p.get("name", ""))
                    if old_np and old_np not in used:
                        p["nodePort"] = old_np
        if self.needs_hc_node_port(ospec) and self.needs_hc_node_port(nspec) \
                and not nspec.get("healthCheckNodePort") and \
                ospec.get("healthCheckNodePort"):
            nspec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
        # dropTypeDependentFields: a type change that made a field
        # meaningless drops it, if the client left it unchanged.
        onps = [p.get("nodePort") for p in ospec.get("ports") or []
                if isinstance(p, dict)]
        nnps = [p.get("nodePort") for p in nspec.get("ports") or []
                if isinstance(p, dict)]
        if self.needs_node_ports(ospec) and \
                nspec.get("type") in ("ClusterIP", "ExternalName") and \
                (onps == nnps or all(n in onps for n in nnps if n)):
            for p in nspec.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
        if not self.needs_hc_node_port(nspec) and \
                nspec.get("healthCheckNodePort") == \
                ospec.get("healthCheckNodePort"):
            nspec.pop("healthCheckNodePort", None)
        if nspec.get("type") != "LoadBalancer":
            for k in ("allocateLoadBalancerNodePorts",):
                if nspec.get(k) == ospec.get(k):
                    nspec.pop(k, None)
            if nspec.get("loadBalancerClass") == \
                    ospec.get("loadBalancerClass"):
                nspec.pop("loadBalancerClass", None)
        if nspec.get("type") not in ("NodePort", "LoadBalancer") and \
                nspec.get("externalTrafficPolicy") == \
                ospec.get("externalTrafficPolicy"):
            nspec.pop("externalTrafficPolicy", None)
        if nspec.get("type") == "ExternalName" and \
                nspec.get("clusterIP") == ospec.get("clusterIP"):
            for k in ("clusterIP", "clusterIPs", "ipFamilies",
                      "ipFamilyPolicy"):
                nspec.pop(k, None)

    def validate(self, obj, old, errs):
        name = obj["metadata"].get("name", "")
        if not is_dns1035_label(name):
            errs.invalid("metadata.name", name,
                         "a DNS-1035 label must consist of lower case "
                         "alphanumeric characters or '-', start with an "
                         "alphabetic character, and end with an alphanumeric "
                         "character")
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            errs.required("spec")
            return
        t = spec.get("type")
        if t not in self.TYPES:
            errs.not_supported("spec.type", t, self.TYPES)
            return
        ports = spec.get("ports")
        headless = spec.get("clusterIP") == "None"
        if ports is None or ports == []:
            if t != "ExternalName" and not headless:
                errs.required("spec.ports")
            ports = []
        if not isinstance(ports, list):
            errs.invalid("spec.ports", ports, "must be a list")
            ports = []
        names, pairs = set(), set()
        for i, p in enumerate(ports):
            f = f"spec.ports[{i}]"
            if not isinstance(p, dict):
                errs.invalid(f, p, "must be an object")
                continue
            pname = p.get("name", "")
            if len(ports) > 1 and not pname:
                errs.required(f + ".name")
            elif pname and not is_dns_label(pname):
                errs.invalid(f + ".name", pname,
                             "a lowercase RFC 1123 label must consist of "
                             "lower case alphanumeric characters or '-'")
            if pname in names:
                errs.duplicate(f + ".name", pname)
            names.add(pname)
            port = p.get("port")
            if not is_int(port) or not 1 <= port <= 65535:
                errs.invalid(f + ".port", port,
                             "must be between 1 and 65535, inclusive")
            proto = p.get("protocol")
            if proto not in ("TCP", "UDP", "SCTP"):
                errs.not_supported(f + ".protocol", proto,
                                   ("SCTP", "TCP", "UDP"))
            if (port, proto) in pairs:
                errs.duplicate(f, {"port": port, "protocol": proto})
            pairs.add((port, proto))
            tp = p.get("targetPort")
            if is_int(tp):
                if not 1 <= tp <= 65535:
                    errs.invalid(f + ".targetPort", tp,
                                 "must be between 1 and 65535, inclusive")
            elif not (isinstance(tp, str) and len(tp) <= 15 and
                      IANA_SVC_NAME.match(tp) and re.search("[a-z]", tp)
                      and "--" not in tp):
                errs.invalid(f + ".targetPort", tp,
                             "must contain only alpha-numeric characters "
                             "(a-z, 0-9), and hyphens (-)")
            np = p.get("nodePort", 0)
            if np and t in ("ClusterIP", "ExternalName"):
                errs.forbidden(f + ".nodePort",
                               f"may not be used when `type` is '{t}'")
            elif np and not is_int(np):
                errs.invalid(f + ".nodePort", np, "must be an integer")
        if t == "ExternalName":
            en = spec.get("externalName", "")
            if not en:
                errs.required("spec.externalName")
            elif not is_dns_subdomain(en.rstrip(".")):
                errs.invalid("spec.externalName", en,
                             "must be a valid DNS name")
            if spec.get("clusterIP") not in (None, ""):
                errs.forbidden("spec.clusterIPs",
                               "may not be set for ExternalName services")
        else:
            ip = spec.get("clusterIP")
            if ip not in (None, "", "None") and ip_of(ip) is None:
                errs.invalid("spec.clusterIPs[0]", ip,
                             "must be a valid IP address, (e.g. 10.9.8.7 or "
                             "2001:db8::ffff)")
        etp = spec.get("externalTrafficPolicy")
        if t in ("NodePort", "LoadBalancer"):
            if etp not in ("Cluster", "Local"):
                errs.not_supported("spec.externalTrafficPolicy", etp,
                                   ("Cluster", "Local"))
        elif etp is not None:
            errs.invalid("spec.externalTrafficPolicy", etp,
                         "may only be set for externally-accessible services")
        itp = spec.get("internalTrafficPolicy")
        if itp is not None and itp not in ("Cluster", "Local"):
            errs.not_supported("spec.internalTrafficPolicy", itp,
                               ("Cluster", "Local"))
        sa = spec.get("sessionAffinity")
        if sa not in ("None", "ClientIP"):
            errs.not_supported("spec.sessionAffinity", sa,
                               ("ClientIP", "None"))
        elif sa == "ClientIP":
            to = ((spec.get("sessionAffinityConfig") or {})
                  .get("clientIP") or {}).get("timeoutSeconds")
            if not is_int(to) or not 0 < to <= 86400:
                errs.invalid("spec.sessionAffinityConfig.clientIP."
                             "timeoutSeconds", to,
                             "must be greater than 0 and less than 86400")
        for k in ("allocateLoadBalancerNodePorts", "loadBalancerClass",
                  "loadBalancerSourceRanges"):
            if k in spec and spec[k] is not None and t != "LoadBalancer":
                errs.forbidden("spec." + k,
                               "may only be used when `type` is "
                               "'LoadBalancer'")
        lbc = spec.get("loadBalancerClass")
        if lbc is not None and not is_qualified_name(lbc):
            errs.invalid("spec.loadBalancerClass", lbc,
                         "name part must consist of alphanumeric characters, "
                         "'-', '_' or '.'")
        if old is not None:
            ospec = old.get("spec", {})
            if ospec.get("type") == "LoadBalancer" and t == "LoadBalancer" \
                    and ospec.get("loadBalancerClass") != lbc:
                errs.invalid("spec.loadBalancerClass", lbc,
                             "may not change once set")
            if self.needs_cluster_ip(ospec) and self.needs_cluster_ip(spec) \
                    and ospec.get("clusterIP") and \
                    spec.get("clusterIP") != ospec.get("clusterIP"):
                errs.invalid("spec.clusterIPs[0]", spec.get("clusterIP"),
                             "may not change once set")
        for i, cidr in enumerate(spec.get("loadBalancerSourceRanges") or []):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except (ValueError, TypeError):
                errs.invalid(f"spec.loadBalancerSourceRanges[{i}]", cidr,
                             "must be a list of IP ranges. For example, "
                             "10.240.0.0/24,10.250.0.0/24 ")
        lbip = spec.get("loadBalancerIP")
        if lbip not in (None, "") and ip_of(lbip) is None:
            errs.invalid("spec.loadBalancerIP", lbip,
                         "must be a valid IP address")
        pol = spec.get("ipFamilyPolicy")
        if pol is not None and pol not in ("SingleStack", "PreferDualStack",
                                           "RequireDualStack"):
            errs.not_supported("spec.ipFamilyPolicy", pol,
                               ("PreferDualStack", "RequireDualStack",
                                "SingleStack"))
        fams = spec.get("ipFamilies")
        if fams is not None:
            if not isinstance(fams, list) or len(fams) > 2 or \
                    len(set(fams)) != len(fams) or \
                    any(f not in ("IPv4", "IPv6") for f in fams):
                errs.invalid("spec.ipFamilies", fams,
                             "must be one or two distinct values of IPv4, "
                             "IPv6")
            elif len(fams) == 2 and pol == "SingleStack":
                errs.invalid("spec.ipFamilies", fams,
                             "when spec.ipFamilyPolicy is SingleStack, only "
                             "one ip family is allowed")
        self.validate_status(obj.get("status"), errs)

    @staticmethod
    def validate_status(st, errs):
        if st is None:
            return
        ing = ((st or {}).get("loadBalancer") or {}).get("ingress")
        if ing is None:
            return
        if not isinstance(ing, list):
            errs.invalid("status.loadBalancer.ingress", ing, "must be a list")
            return
        for i, e in enumerate(ing):
            f = f"status.loadBalancer.ingress[{i}]"
            if not isinstance(e, dict):
                errs.invalid(f, e, "must be an object")
                continue
            ip = e.get("ip")
            if ip not in (None, "") and ip_of(ip) is None:
                errs.invalid(f + ".ip", ip, "must be a valid IP address")
            hn = e.get("hostname")
            if hn not in (None, "") and (ip_of(hn) is not None or
                                         not is_dns_subdomain(hn)):
                errs.invalid(f + ".hostname", hn,
                             "must be a DNS name, not an IP address")
            mode = e.get("ipMode")
            if mode is not None:
                if not ip:
                    errs.forbidden(f + ".ipMode",
                                   "may not be specified when `ip` is not")
                elif mode not in ("VIP", "Proxy"):
                    errs.not_supported(f + ".ipMode", mode,
                                       ("Proxy", "VIP"))

    # Allocation: ClusterIPs and NodePorts are claimed in the store's
    # allocators, owned by the service's key.
    def allocate(self, store, new, old):
        key = store.key_of(self, new)
        spec = new["spec"]
        alloc = store.alloc
        undo = []
        try:
            if self.needs_cluster_ip(spec):
                alloc.assign_cluster_ips(key, spec, old is not None and
                                         self.needs_cluster_ip(
                                             old.get("spec", {})), undo)
            elif spec.get("clusterIP") == "None":
                pol = spec.setdefault("ipFamilyPolicy", "SingleStack")
                fams = spec.setdefault("ipFamilies", [alloc.families[0]])
                if pol != "SingleStack" and len(fams) == 1 and \
                        len(alloc.families) == 2:
                    fams.append(alloc.other_family(fams[0]))
                spec["clusterIPs"] = ["None"]
            alloc.assign_node_ports(key, spec, self, undo)
        except ApiError:
            for fn in reversed(undo):
                fn()
            raise
        if old is not None:
            self.release(store, old, new)

    def release(self, store, old, new=None):
        ospec = old.get("spec")
        nspec = (new or {}).get("spec")
        try:
            store.alloc.release(store.key_of(self, old),
                                ospec if isinstance(ospec, dict) else {},
                                nspec if isinstance(nspec, dict) else {})
        except (TypeError, AttributeError):
            pass  # stored unvalidated: it never allocated anything


class EndpointSliceRes(Res):
    group = "discovery.k8s.io"
    plural, singular, kind = "endpointslices", "endpointslice", \
        "EndpointSlice"
    generation = True
    ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")

    def skeleton(self):
        return {"addressType": "", "endpoints": None, "ports": None}

    def default(self, obj):
        # Not omitempty in discovery/v1 and emptied by the protobuf round
        # trip through etcd: an empty or missing list reads back as null.
        for k in ("endpoints", "ports"):
            if not obj.get(k):
                obj[k] = None
        for p in obj.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("name", "")
                p.setdefault("protocol", "TCP")

    def validate(self, obj, old, errs):
        name = obj["metadata"].get("name", "")
        if not is_dns_subdomain(name):
            errs.invalid("metadata.name", name,
                         "a lowercase RFC 1123 subdomain must consist of "
                         "lower case alphanumeric characters, '-' or '.'")
        at = obj.get("addressType")
        if at is None or at == "":
            errs.required("addressType")
        elif at not in self.ADDRESS_TYPES:
            errs.not_supported("addressType", at, self.ADDRESS_TYPES)
        if old is not None and old.get("addressType") != at:
            errs.invalid("addressType", at, "field is immutable")
        eps = obj.get("endpoints") or []
        if not isinstance(eps, list):
            errs.invalid("endpoints", eps, "must be a list")
            eps = []
        if len(eps) > 1000:
            errs.too_many("endpoints", len(eps), 1000)
        fam = {"IPv4": 4, "IPv6": 6}.get(at)
        for i, ep in enumerate(eps):
            f = f"endpoints[{i}]"
            if not isinstance(ep, dict):
                errs.invalid(f, ep, "must be an object")
                continue
            addrs = ep.get("addresses")
            if not addrs:
                errs.required(f + ".addresses",
                              "must contain at least 1 address")
            elif not isinstance(addrs, list):
                errs.invalid(f + ".addresses", addrs, "must be a list")
            else:
                if len(addrs) > 100:
                    errs.too_many(f + ".addresses", len(addrs), 100)
                for j, a in enumerate(addrs):
                    if fam and ip_of(a, fam) is None:
                        errs.invalid(f"{f}.addresses[{j}]", a,
                                     f"must be a valid IPv{fam} address")
                    elif at == "FQDN" and not is_dns_subdomain(a):
                        errs.invalid(f"{f}.addresses[{j}]", a,
                                     "must be a valid DNS name")
            cond = ep.get("conditions")
            if cond is not None and not isinstance(cond, dict):
                errs.invalid(f + ".conditions", cond, "must be an object")
            for k, v in (cond or {}).items() if isinstance(cond, dict) \
                    else ():
                if v is not None and not isinstance(v, bool):
                    errs.invalid(f"{f}.conditions.{k}", v,
                                 "must be a boolean")
            nn = ep.get("nodeName")
            if nn is not None and not is_dns_subdomain(nn):
                errs.invalid(f + ".nodeName", nn,
                             "a lowercase RFC 1123 subdomain")
        ports = obj.get("ports") or []
        if not isinstance(ports, list):
            errs.invalid("ports", ports, "must be a list")
            ports = []
        if len(ports) > 100:
            errs.too_many("ports", len(ports), 100)
        names = set()
        for i, p in enumerate(ports):
            f = f"ports[{i}]"
            if not isinstance(p, dict):
                errs.invalid(f, p, "must be an object")
                continue
            n = p.get("name", "")
            if n and not is_dns_label(n):
                errs.invalid(f + ".name", n,
                             "a lowercase RFC 1123 label")
            if n in names:
                errs.duplicate(f + ".name", n)
            names.add(n)
            port = p.get("port")
            if port is not None and (not is_int(port) or
                                     not 1 <= port <= 65535):
                errs.invalid(f + ".port", port,
                             "must be between 1 and 65535, inclusive")
            proto = p.get("protocol")
            if proto not in ("TCP", "UDP", "SCTP"):
                errs.not_supported(f + ".protocol", proto,
                                   ("SCTP", "TCP", "UDP"))


class NodeRes(Res):
    plural, singular, kind, short = "nodes", "node", "Node", ("no",)
    namespaced = False
    subresources = ("status",)
    status_sub = True
    merge_keys = dict(Res.merge_keys)
    merge_keys.update({("status", "addresses"): "type",
                       ("status", "conditions"): "type",
                       ("spec", "podCIDRs"): ""})
    extra_fields = {"spec.unschedulable": dotted("spec.unschedulable")}

    def skeleton(self):
        return {"spec": {}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {k: "" for k in (
                "machineID", "systemUUID", "bootID", "kernelVersion",
                "osImage", "containerRuntimeVersion", "kubeletVersion",
                "kubeProxyVersion", "operatingSystem", "architecture")}}}

    def default(self, obj):
        obj.setdefault("spec", {})
        obj.setdefault("status", {})

    def validate(self, obj, old, errs):
        name = obj["metadata"].get("name", "")
        if not is_dns_subdomain(name):
            errs.invalid("metadata.name", name,
                         "a lowercase RFC 1123 subdomain")
        for i, a in enumerate((obj.get("status") or {})
                              .get("addresses") or []):
            if not isinstance(a, dict) or not a.get("type") or \
                    "address" not in a:
                errs.invalid(f"status.addresses[{i}]", a,
                             "must have a type and an address")


class LeaseRes(Res):
    group = "coordination.k8s.io"
    plural, singular, kind = "leases", "lease", "Lease"
    create_on_update = True

    def skeleton(self):
        return {"spec": {}}

    def default(self, obj):
        obj.setdefault("spec", {})

    def validate(self, obj, old, errs):
        name = obj["metadata"].get("name", "")
        if not is_dns_subdomain(name):
            errs.invalid("metadata.name", name,
                         "a lowercase RFC 1123 subdomain")
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            errs.invalid("spec", spec, "must be an object")
            return
        d = spec.get("leaseDurationSeconds")
        if d is not None and (not is_int(d) or d <= 0):
            errs.invalid("spec.leaseDurationSeconds", d, "must be greater "
                         "than 0")
        tr = spec.get("leaseTransitions")
        if tr is not None and (not is_int(tr) or tr < 0):
            errs.invalid("spec.leaseTransitions", tr, "must be greater than "
                         "or equal to 0")
        for k in ("acquireTime", "renewTime"):
            if spec.get(k) is not None and not parse_time(spec[k], True):
                raise bad_request(f"Lease in version \"v1\" cannot be handled"
                                  f" as a Lease: parsing time "
                                  f"{json.dumps(spec[k])} as RFC 3339")
        h = spec.get("holderIdentity")
        if h is not None and not isinstance(h, str):
            errs.invalid("spec.holderIdentity", h, "must be a string")


class NamespaceRes(Res):
    plural, singular, kind, short = "namespaces", "namespace", "Namespace", \
        ("ns",)
    namespaced = False
    subresources = ("status",)
    status_sub = True
    extra_fields = {"status.phase": dotted("status.phase")}

    def skeleton(self):
        return {"spec": {}, "status": {}}

    def prepare_create(self, obj):
        obj["status"] = {"phase": "Active"}

    def default(self, obj):
        name = obj["metadata"].get("name", "")
        obj["metadata"].setdefault("labels", {})[
            "kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")

    def validate(self, obj, old, errs):
        name = obj["metadata"].get("name", "")
        if not is_dns_label(name):
            errs.invalid("metadata.name", name,
                         "a lowercase RFC 1123 label must consist of lower "
                         "case alphanumeric characters or '-'")


# Events: one store, two views. core/v1 Event is the storage form;
# events.k8s.io/v1 renames fields (k8s.io/kubernetes pkg/apis/events/v1
# conversion): regarding<->involvedObject, note<->message,
# reportingController<->reportingComponent, deprecatedSource<->source,
# deprecatedFirstTimestamp/LastTimestamp/Count<->firstTimestamp/...
EVENT_RENAMES = (("regarding", "involvedObject"), ("note", "message"),
                 ("reportingController", "reportingComponent"),
                 ("deprecatedSource", "source"),
                 ("deprecatedFirstTimestamp", "firstTimestamp"),
                 ("deprecatedLastTimestamp", "lastTimestamp"),
                 ("deprecatedCount", "count"))
EVENT_CORE_FIELDS = {
    f"involvedObject.{k}": dotted(f"involvedObject.{k}")
    for k in ("kind", "namespace", "name", "uid", "apiVersion",
              "resourceVersion", "fieldPath")}
EVENT_CORE_FIELDS.update({
    "reason": dotted("reason"), "reportingComponent":
    dotted("reportingComponent"), "source": dotted("source.component"),
    "type": dotted("type")})


class CoreEventRes(Res):
    plural, singular, kind, short = "events", "event", "Event", ("ev",)
    storage = "events"
    create_on_update = True
    extra_fields = EVENT_CORE_FIELDS

    def skeleton(self):
        return {"involvedObject": {}, "reason": "", "message": "",
                "source": {}, "firstTimestamp": None, "lastTimestamp": None,
                "eventTime": None, "reportingComponent": "",
                "reportingInstance": ""}

    def from_storage(self, obj):
        # Fields that are not omitempty in core/v1 Event.
        out = dict(obj)
        for k in ("involvedObject", "source"):
            out.setdefault(k, {})
        for k in ("firstTimestamp", "lastTimestamp", "eventTime"):
            out.setdefault(k, None)
        for k in ("reportingComponent", "reportingInstance"):
            out.setdefault(k, "")
        return out

    def validate(self, obj, old, errs):
        validate_event(obj, errs, new_api=False)


class EventsV1Res(Res):
    group = "events.k8s.io"
    plural, singular, kind, short = "events", "event", "Event", ("ev",)
    storage = "events"
    create_on_update = True
    extra_fields = {
        "regarding." + k.split(".", 1)[1]: v
        for k, v in EVENT_CORE_FIELDS.items() if k.startswith("involved")}
    extra_fields.update({"reason": dotted("reason"),
                         "reportingController": dotted("reportingComponent"),
                         "type": dotted("type")})

    def skeleton(self):
        return {"eventTime": None}

    def to_storage(self, obj):
        out = {k: v for k, v in obj.items()}
        for new, core in EVENT_RENAMES:
            if new in out:
                out[core] = out.pop(new)
        return out

    def from_storage(self, obj):
        out = {k: v for k, v in obj.items()}
        for new, core in EVENT_RENAMES:
            if core in out:
                out[new] = out.pop(core)
        out.setdefault("eventTime", None)
        for k in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
            out.setdefault(k, None)
        return out

    def validate(self, obj, old, errs):
        validate_event(obj, errs, new_api=True)


def validate_event(obj, errs, new_api):
    """ValidateEventCreate: events written through events.k8s.io/v1 (or
    core events carrying eventTime) must name their reporter, action and
    reason; legacy core events only need a consistent namespace."""
    meta = obj["metadata"]
    if not is_dns_subdomain(meta.get("name", "")):
        errs.invalid("metadata.name", meta.get("name", ""),
                     "a lowercase RFC 1123 subdomain")
    inv = obj.get("involvedObject") or {}
    reg = "regarding" if new_api else "involvedObject"
    ns = meta.get("namespace", "")
    if new_api or obj.get("eventTime"):
        if not obj.get("eventTime"):
            errs.required("eventTime")
        elif not parse_time(obj["eventTime"], True):
            errs.invalid("eventTime", obj["eventTime"], "must be a time")
        if obj.get("type") not in ("Normal", "Warning"):
            errs.not_supported("type", obj.get("type"),
                               ("Normal", "Warning"))
        rc = obj.get("reportingComponent", "")
        if not rc:
            errs.required("reportingController")
        elif not is_qualified_name(rc):
            errs.invalid("reportingController", rc,
                         "must be a qualified name")
        if not obj.get("reportingInstance"):
            errs.required("reportingInstance")
        if not obj.get("action"):
            errs.required("action")
        if not obj.get("reason"):
            errs.required("reason")
        if len(obj.get("message", "") or "") > 1024:
            errs.add("FieldValueTooLong", "note",
                     "Too long: may not be longer than 1024")
        if inv.get("namespace") and inv.get("namespace") != ns:
            errs.invalid(f"{reg}.namespace", inv.get("namespace"),
                         "does not match event.namespace")
    else:
        ins = inv.get("namespace", "")
        if (ins == "" and ns not in ("", "default")) or \
                (ins != "" and ins != ns):
            errs.invalid("involvedObject.namespace", ins,
                         "does not match event.namespace")
        if obj.get("type") not in (None, "", "Normal", "Warning"):
            errs.not_supported("type", obj.get("type"),
                               ("Normal", "Warning"))


RESOURCES = [ServiceRes(), EndpointSliceRes(), NodeRes(), LeaseRes(),
             NamespaceRes(), CoreEventRes(), EventsV1Res()]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def resource_named(name):
    """The resource for a kind, plural or "plural.group" name (the
    in-process API's way to name a type)."""
    for r in RESOURCES:
        if name in (r.kind, r.plural, r.qualified, r.singular) and \
                (r.group != "events.k8s.io" or name == r.qualified):
            return r
    raise KeyError(f"unknown resource {name!r}")


# -- allocation: ClusterIPs and NodePorts -------------------------------------

class Allocators:
    """The service IP ranges and the node port range, with each address
    or port's owner (a service key). A service may reclaim what it owns;
    ports with the same number and different protocols in one service get
    one node port, as the real allocator hands out."""

    def __init__(self, cidrs, node_ports, rng):
        self.nets = [ipaddress.ip_network(c) for c in cidrs]
        self.families = ["IPv%d" % n.version for n in self.nets]
        self.lo, self.hi = node_ports
        self.rng = rng
        self.ips = {}
        self.ports = {}

    def other_family(self, fam):
        return "IPv6" if fam == "IPv4" else "IPv4"

    def net_of(self, fam):
        return self.nets[self.families.index(fam)]

    @staticmethod
    def _fail(name, errs):
        errs.raise_if_any("Service", name)

    def assign_cluster_ips(self, key, spec, had, undo):
        name = key.rsplit("/", 1)[-1]
        errs = FieldErrors()
        pol = spec.get("ipFamilyPolicy") or "SingleStack"
        ips = list(spec.get("clusterIPs") or [])
        if not ips and spec.get("clusterIP"):
            ips = [spec["clusterIP"]]
        fams = list(spec.get("ipFamilies") or [])
        if not fams:
            fams = ["IPv%d" % ip_of(i).version for i in ips if ip_of(i)] \
                or [self.families[0]]
        if pol == "RequireDualStack" and len(self.families) < 2:
            errs.invalid("spec.ipFamilyPolicy", pol,
                         "this cluster is not configured for dual-stack "
                         "services")
            self._fail(name, errs)
        if pol != "SingleStack" and len(fams) == 1 and \
                len(self.families) == 2:
            fams.append(self.other_family(fams[0]))
        for i, f in enumerate(fams):
            if f not in self.families:
                errs.invalid(f"spec.ipFamilies[{i}]", f,
                             "not configured on this cluster")
        self._fail(name, errs)
        out = []
        for i, fam in enumerate(fams):
            net = self.net_of(fam)
            want = ips[i] if i < len(ips) else None
            if want:
                a = ip_of(want)
                if a is None or "IPv%d" % a.version != fam:
                    errs.invalid(f"spec.clusterIPs[{i}]", want,
                                 f"expected an {fam} value as indicated by "
                                 "`ipFamilies`")
                elif a not in net:
                    errs.invalid("spec.clusterIPs", ips,
                                 f"failed to allocate IP {want}: the provided"
                                 f" IP ({want}) is not in the valid range. "
                                 f"The range of valid IPs is {net}")
                elif self.ips.get(str(a), key) != key:
                    errs.invalid("spec.clusterIPs", ips,
                                 f"failed to allocate IP {want}: provided IP"
                                 " is already allocated")
                else:
                    out.append(str(a))
            else:
                out.append(self._free_ip(net, name))
        self._fail(name, errs)
        for ip in out:
            if ip not in self.ips:
                self.ips[ip] = key
                undo.append(lambda ip=ip: self.ips.pop(ip, None))
        spec["clusterIP"] = out[0]
        spec["clusterIPs"] = out
        spec["ipFamilies"] = fams
        spec["ipFamilyPolicy"] = pol

    def _free_ip(self, net, name):
        # The first address is the network's, the second the
        # "kubernetes" service's; the last of an IPv4 range is broadcast.
        size = net.num_addresses
        for _ in range(64):
            a = str(net[self.rng.randrange(2, size - 1)])
            if a not in self.ips:
                return a
        for off in range(2, size - 1):
            a = str(net[off])
            if a not in self.ips:
                return a
        raise ApiError(500, "InternalError",
                       "Internal error occurred: failed to allocate a "
                       "serviceIP: range is full", {"name": name,
                                                     "kind": "services"})

    def _free_port(self, name, taken):
        span = self.hi - self.lo + 1
        for _ in range(64):
            p = self.lo + self.rng.randrange(span)
            if p not in self.ports and p not in taken:
                return p
        for p in range(self.lo, self.hi + 1):
            if p not in self.ports and p not in taken:
                return p
        raise ApiError(500, "InternalError",
                       "Internal error occurred: failed to allocate a "
                       "nodePort: range is full", {"name": name,
                                                   "kind": "services"})

    def assign_node_ports(self, key, spec, res, undo):
        name = key.rsplit("/", 1)[-1]
        errs = FieldErrors()
        need = res.needs_node_ports(spec)
        by_port = {}
        claim = {}
        for i, p in enumerate(spec.get("ports") or []):
            np = p.get("nodePort") or 0
            if np:
                if not self.lo <= np <= self.hi:
                    errs.invalid(f"spec.ports[{i}].nodePort", np,
                                 "provided port is not in the valid range. "
                                 f"The range of valid ports is "
                                 f"{self.lo}-{self.hi}")
                    continue
                if self.ports.get(np, key) != key or \
                        (np in claim and claim[np] == p.get("protocol")):
                    errs.invalid(f"spec.ports[{i}].nodePort", np,
                                 "provided port is already allocated")
                    continue
            elif need:
                np = by_port.get(p.get("port")) or \
                    self._free_port(name, claim)
                p["nodePort"] = np
            if np:
                claim[np] = p.get("protocol")
                by_port.setdefault(p.get("port"), np)
        hc = spec.get("healthCheckNodePort")
        if res.needs_hc_node_port(spec):
            if hc:
                if self.ports.get(hc, key) != key or hc in claim:
                    errs.invalid("spec.healthCheckNodePort", hc,
                                 "provided port is already allocated")
            else:
                hc = self._free_port(name, claim)
                spec["healthCheckNodePort"] = hc
            claim[hc] = "hc"
        elif hc:
            errs.invalid("spec.healthCheckNodePort", hc,
                         "may only be set when `type` is 'LoadBalancer' and "
                         "`externalTrafficPolicy` is 'Local'")
        self._fail(name, errs)
        for np in claim:
            if np not in self.ports:
                self.ports[np] = key
                undo.append(lambda np=np: self.ports.pop(np, None))

    def release(self, key, old_spec, new_spec):
        keep_ips = set(new_spec.get("clusterIPs") or [])
        keep_ports = {p.get("nodePort") for p in new_spec.get("ports") or []
                      if isinstance(p, dict)}
        keep_ports.add(new_spec.get("healthCheckNodePort"))
        for ip in old_spec.get("clusterIPs") or []:
            if ip not in keep_ips and self.ips.get(ip) == key:
                del self.ips[ip]
        olds = [p.get("nodePort") for p in old_spec.get("ports") or []
                if isinstance(p, dict)]
        olds.append(old_spec.get("healthCheckNodePort"))
        for np in olds:
            if np and np not in keep_ports and self.ports.get(np) == key:
                del self.ports[np]


# -- the registry: objects, history, watchers ---------------------------------

class Stored(dict):
    """A stored object version (never mutated once committed), with its
    serialized form cached per API version (without kind/apiVersion)."""
    __slots__ = ("bodies",)

    def __init__(self, *a):
        super().__init__(*a)
        self.bodies = {}


class Entry:
    """One committed change: the history a watch replays."""
    __slots__ = ("rv", "storage", "key", "type", "obj", "prev", "t")

    def __init__(self, rv, storage, key, etype, obj, prev):
        self.rv, self.storage, self.key = rv, storage, key
        self.type, self.obj, self.prev = etype, obj, prev
        self.t = time.monotonic()


META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid",
              "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields")


def ordered(obj):
    """Fields in Go's declaration order where it is known (metadata
    first in ObjectMeta's own order, status last), so output reads like
    the real one."""
    meta = obj.get("metadata") or {}
    m = {k: meta[k] for k in META_ORDER if k in meta}
    m.update((k, v) for k, v in meta.items() if k not in m)
    out = Stored()
    out["metadata"] = m
    for k, v in obj.items():
        if k not in ("metadata", "status"):
            out[k] = v
    if "status" in obj:
        out["status"] = obj["status"]
    return out


def compact_json(obj):
    return go_json(obj)[:-1]


def body_of(res, obj):
    """obj (storage form) as res serves it, JSON without kind/apiVersion."""
    if isinstance(obj, Stored):
        b = obj.bodies.get(res.api_version)
        if b is None:
            b = compact_json(res.from_storage(obj))
            obj.bodies[res.api_version] = b
        return b
    return compact_json(res.from_storage(obj))


def with_kind(res, body):
    """A serialized object with kind and apiVersion in front."""
    head = b'{"kind":"%s","apiVersion":"%s"' % (res.kind.encode(),
                                                res.api_version.encode())
    return head + (b"," + body[1:] if body != b"{}" else b"}")


def api_object(res, obj):
    """obj (storage form) as a client sees it, as a fresh dict."""
    out = {"kind": res.kind, "apiVersion": res.api_version}
    out.update(deep(res.from_storage(obj)))
    return out


class Registry:
    """Every object, the global resourceVersion counter (one for all types,
    as etcd's revision is), the change history with its compaction point,
    and the allocators. One lock; watchers wait on its condition."""

    def __init__(self, seed=1, history_events=None, history_seconds=75.0,
                 service_cidrs=("10.96.0.0/16", "fd00:10:96::/112"),
                 node_ports=(30000, 32767), too_large_wait=3.0):
        self.cond = threading.Condition()
        self.rng = random.Random(seed)
        self.rv = 100
        self.data = {r.storage: {} for r in RESOURCES}
        self.sorted = {}
        self.log = []
        self.log_base = 0
        self.live = 0              # absolute index of the first live entry
        self.compacted = self.rv   # versions <= this are gone
        self.cursors = {}          # watcher id -> absolute log index
        self.history_events = history_events
        self.history_seconds = history_seconds
        self.too_large_wait = too_large_wait
        self.alloc = Allocators(service_cidrs, node_ports, self.rng)

    # -- keys and history

    @staticmethod
    def key_of(res, obj):
        m = obj["metadata"]
        return f"{m.get('namespace', '')}/{m['name']}" if res.namespaced \
            else m["name"]

    @staticmethod
    def key(res, ns, name):
        return f"{ns}/{name}" if res.namespaced else name

    def keys(self, storage):
        ks = self.sorted.get(storage)
        if ks is None:
            ks = sorted(self.data[storage])
            self.sorted[storage] = ks
        return ks

    def uid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def commit(self, res, key, etype, obj):
        """Record a change under the lock: bump the revision, stamp it on
        the object, keep the history, wake the watchers."""
        self.rv += 1
        bucket = self.data[res.storage]
        prev = bucket.get(key)
        if etype == "DELETED":
            # The last state (prev, or what the deleting write made of it)
            # at the deletion's version.
            obj = Stored(obj if obj is not None else prev)
            obj["metadata"] = dict(obj["metadata"])
            obj["metadata"]["resourceVersion"] = str(self.rv)
            del bucket[key]
            self.sorted.pop(res.storage, None)
        else:
            obj["metadata"]["resourceVersion"] = str(self.rv)
            obj = ordered(obj)
            if prev is None:
                self.sorted.pop(res.storage, None)
            bucket[key] = obj
        # Serialize now, in the writer's thread: lists and watches then
        # only join bytes.
        body_of(res, obj)
        self.log.append(Entry(self.rv, res.storage, key, etype, obj, prev))
        self.trim()
        self.cond.notify_all()
        return obj

    def trim(self, now=None):
        """Advance the compaction point by the history window (events
        and/or seconds), then forget entries nobody needs any more."""
        now = time.monotonic() if now is None else now
        end = self.log_base + len(self.log)
        live = self.live
        if self.history_events is not None and \
                end - live > self.history_events:
            live = end - self.history_events
        if self.history_seconds is not None:
            while live < end and \
                    now - self.log[live - self.log_base].t > \
                    self.history_seconds:
                live += 1
        if live > self.live:
            self.live = live
            self.compacted = self.log[live - 1 - self.log_base].rv \
                if live - 1 >= self.log_base else self.compacted
        keep_from = min([self.live] + list(self.cursors.values()))
        drop = keep_from - self.log_base
        if drop > 0:
            del self.log[:drop]
            self.log_base += drop

    def compact_now(self):
        """Forget every version but the current one (etcd compaction)."""
        with self.cond:
            self.live = self.log_base + len(self.log)
            self.compacted = self.rv
            self.trim()
            self.cond.notify_all()

    def index_after(self, rv):
        """Absolute log index of the first entry newer than rv."""
        lo, hi = max(self.live, self.log_base), self.log_base + len(self.log)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.log[mid - self.log_base].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def snapshot(self, storage, rv):
        """{key: object} of storage as it was at revision rv (rv must not
        be compacted): the current state with newer changes undone."""
        bucket = self.data[storage]
        changed = [e for e in self.log[max(0, self.live - self.log_base):]
                   if e.rv > rv and e.storage == storage]
        if not changed:
            return bucket, self.keys(storage)
        snap = dict(bucket)
        for e in reversed(changed):
            if e.prev is None:
                snap.pop(e.key, None)
            else:
                snap[e.key] = e.prev
        return snap, sorted(snap)

    def wait_rv(self, rv):
        """Wait (under the lock) for the store to reach rv, as the watch
        cache does for a "not older than" request from the future."""
        deadline = time.monotonic() + self.too_large_wait
        while self.rv < rv:
            left = deadline - time.monotonic()
            if left <= 0:
                raise too_large_rv(rv, self.rv)
            self.cond.wait(left)

    # -- writes

    def ensure_namespace(self, ns):
        """In-process writes create their namespace on the fly."""
        if ns and ns not in self.data["namespaces"]:
            nsres = resource_named("namespaces")
            self.create(nsres, "", {"metadata": {"name": ns}})

    def _check_namespace(self, res, ns):
        if res.namespaced and ns not in self.data["namespaces"]:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})

    @staticmethod
    def _check_type(res, body):
        if not isinstance(body, dict):
            raise bad_request(f"{res.kind} in version \"{res.version}\" "
                              f"cannot be handled as a {res.kind}: the body "
                              "is not a JSON object")
        kind, av = body.get("kind"), body.get("apiVersion")
        if kind not in (None, "", res.kind):
            raise bad_request(f"the kind in the data ({kind}) does not match"
                              f" the expected kind ({res.kind})")
        if av not in (None, "", res.api_version):
            raise bad_request(f"the API version in the data ({av}) does not "
                              "match the expected API version "
                              f"({res.api_version})")
        meta = body.get("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request(f"{res.kind} in version \"{res.version}\" "
                              f"cannot be handled as a {res.kind}: metadata "
                              "must be an object")
        for k in ("labels", "annotations"):
            v = meta.get(k)
            if v is not None and (not isinstance(v, dict) or not all(
                    isinstance(x, str) for x in v.values())):
                raise bad_request(f"{res.kind} in version \"{res.version}\" "
                                  f"cannot be handled as a {res.kind}: "
                                  f"metadata.{k} must map strings to strings")

    @staticmethod
    def _validate_meta(res, obj, errs):
        meta = obj["metadata"]
        for k, v in (meta.get("labels") or {}).items():
            if not is_qualified_name(k):
                errs.invalid("metadata.labels", k,
                             "name part must consist of alphanumeric "
                             "characters, '-', '_' or '.'")
            if not is_label_value(v):
                errs.invalid("metadata.labels", v,
                             "a valid label must be an empty string or "
                             "consist of alphanumeric characters, '-', '_' "
                             "or '.'")
        for k in (meta.get("annotations") or {}):
            if not is_qualified_name(k):
                errs.invalid("metadata.annotations", k,
                             "name part must consist of alphanumeric "
                             "characters, '-', '_' or '.'")

    @staticmethod
    def _clean_meta(meta):
        for k in ("labels", "annotations"):
            if k in meta and not meta[k]:
                del meta[k]
        for k in list(meta):
            if meta[k] is None:
                del meta[k]

    def create(self, res, ns, body, validate=True):
        """POST: returns the stored object (storage form)."""
        self._check_type(res, body)
        obj = res.to_storage({k: deep(v) for k, v in body.items()
                              if k not in ("kind", "apiVersion")})
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            bns = meta.get("namespace") or ns
            if ns and bns != ns:
                raise bad_request("the namespace of the provided object does "
                                  "not match the namespace sent on the "
                                  "request")
            ns = bns or "default"
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        with self.cond:
            self._check_namespace(res, ns)
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(100):
                    name = meta["generateName"] + "".join(
                        self.rng.choice("bcdfghjklmnpqrstvwxz2456789")
                        for _ in range(5))
                    if self.key(res, ns, name) not in self.data[res.storage]:
                        break
                meta["name"] = name
            if not meta.get("name"):
                errs = FieldErrors()
                errs.required("metadata.name",
                              "name or generateName is required")
                errs.raise_if_any(res.kind, "")
            name = meta["name"]
            key = self.key(res, ns, name)
            if key in self.data[res.storage]:
                raise ApiError(409, "AlreadyExists",
                               f'{res.qualified} "{name}" already exists',
                               res.details(name))
            for k in ("resourceVersion", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(k, None)
            meta["uid"] = self.uid()
            meta["creationTimestamp"] = now_rfc3339()
            if res.generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            self._clean_meta(meta)
            if validate:
                res.prepare_create(obj)
            self._default(res, obj, validate)
            if validate:
                errs = FieldErrors()
                self._validate_meta(res, obj, errs)
                res.validate(obj, None, errs)
                errs.raise_if_any(res.kind, name, res.group)
                res.allocate(self, obj, None)
            return self.commit(res, key, "ADDED", obj)

    @staticmethod
    def _default(res, obj, validate):
        try:
            res.default(obj)
        except (AttributeError, TypeError):
            # An object stored without validation may be any shape.
            if validate:
                raise

    def update(self, res, ns, name, body, sub=None, validate=True):
        """PUT: (stored object, created)."""
        self._check_type(res, body)
        obj = res.to_storage({k: deep(v) for k, v in body.items()
                              if k not in ("kind", "apiVersion")})
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) "
                              f"does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace", ns) != ns:
            raise bad_request("the namespace of the provided object does not"
                              " match the namespace sent on the request")
        with self.cond:
            old = self.data[res.storage].get(self.key(res, ns, name))
            if old is None:
                if res.create_on_update and sub is None:
                    meta["name"] = name
                    if meta.get("resourceVersion"):
                        raise not_found(res, name)
                    return self.create(res, ns, body | {"metadata": meta},
                                       validate), True
                raise not_found(res, name)
            return self._replace(res, old, obj, sub, validate), False

    def _replace(self, res, old, obj, sub, validate):
        meta = obj.setdefault("metadata", {})
        name = old["metadata"]["name"]
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise conflict(res, name, "Precondition failed: UID in "
                           f"precondition: {meta['uid']}, UID in object "
                           f"meta: {old['metadata']['uid']}")
        ometa = old["metadata"]
        for k in ("name", "namespace", "uid", "creationTimestamp",
                  "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation"):
            if k in ometa:
                meta[k] = ometa[k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = ometa["resourceVersion"]
        self._clean_meta(meta)
        if validate:
            res.prepare_update(obj, old, sub)
        self._default(res, obj, validate)
        if res.generation and {k: v for k, v in obj.items()
                               if k != "metadata"} != \
                {k: v for k, v in old.items() if k != "metadata"}:
            meta["generation"] = ometa.get("generation", 0) + 1
        if validate:
            errs = FieldErrors()
            self._validate_meta(res, obj, errs)
            res.validate(obj, old, errs)
            errs.raise_if_any(res.kind, name, res.group)
        if ordered(obj) == old:
            # The storage layer writes nothing when nothing changed: no new
            # resourceVersion, no watch event.
            return old
        if validate:
            res.allocate(self, obj, old)
        key = self.key_of(res, old)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone: the object goes, in one change
            # (the update itself is never stored).
            res.release(self, obj)
            return self.commit(res, key, "DELETED", ordered(obj))
        return self.commit(res, key, "MODIFIED", obj)

    def patch(self, res, ns, name, ptype, patch, sub=None, validate=True):
        with self.cond:
            old = self.data[res.storage].get(self.key(res, ns, name))
            if old is None:
                raise not_found(res, name)
            cur = api_object(res, old)
            try:
                if ptype == "json":
                    new = json_patch(cur, patch)
                elif ptype == "merge":
                    if not isinstance(patch, dict):
                        raise bad_request("a merge patch must be a JSON "
                                          "object")
                    new = merge_patch(cur, patch)
                elif ptype == "strategic":
                    if not isinstance(patch, dict):
                        raise bad_request("a strategic merge patch must be "
                                          "a JSON object")
                    new = strategic_merge(cur, patch, res.merge_keys)
                else:
                    raise ValueError(f"unknown patch type {ptype!r}")
            except (ValueError, IndexError, KeyError, TypeError) as e:
                raise ApiError(422, "Invalid",
                               f"the server rejected our request due to an "
                               f"error in our request: {e}",
                               res.details(name)) from None
            if not isinstance(new, dict) or \
                    not isinstance(new.get("metadata"), dict):
                raise bad_request("the patch removed the object's metadata")
            if new["metadata"].get("name") != name:
                raise bad_request("the name of the object "
                                  f"({new['metadata'].get('name')}) does not "
                                  f"match the name on the URL ({name})")
            self._check_type(res, new)
            obj = res.to_storage({k: v for k, v in new.items()
                                  if k not in ("kind", "apiVersion")})
            return self._replace(res, old, obj, sub, validate)

    def delete(self, res, ns, name, options=None):
        """DELETE: (stored object or None when gone, deleted now)."""
        options = options or {}
        with self.cond:
            key = self.key(res, ns, name)
            old = self.data[res.storage].get(key)
            if old is None:
                raise not_found(res, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(res, name, "Precondition failed: UID in "
                               f"precondition: {pre['uid']}, UID in object "
                               f"meta: {old['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != \
                    old["metadata"]["resourceVersion"]:
                raise conflict(res, name, "Precondition failed: "
                               "ResourceVersion in precondition: "
                               f"{pre['resourceVersion']}, ResourceVersion "
                               "in object meta: "
                               f"{old['metadata']['resourceVersion']}")
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old, False
                obj = deep(old)
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                return self.commit(res, key, "MODIFIED", obj), False
            if res.plural == "namespaces":
                # The namespace controller's work, done at once: everything
                # in the namespace goes first.
                for r in RESOURCES:
                    if r.namespaced and r.group != "events.k8s.io":
                        for k in [k for k in self.keys(r.storage)
                                  if k.startswith(name + "/")]:
                            res_obj = self.data[r.storage][k]
                            r.release(self, res_obj)
                            self.commit(r, k, "DELETED", None)
            res.release(self, old)
            return self.commit(res, key, "DELETED", None), True

    # -- reads

    def get(self, res, ns, name, rv=None):
        with self.cond:
            if rv not in (None, "", "0"):
                self.wait_rv(parse_rv(rv))
            obj = self.data[res.storage].get(self.key(res, ns, name))
            if obj is None:
                raise not_found(res, name)
            return obj

    @staticmethod
    def key_range(res, ns, keys, start=""):
        """[lo, hi) of the sorted keys at or after start and in ns."""
        lo = bisect.bisect_left(keys, start) if start else 0
        hi = len(keys)
        if res.namespaced and ns:
            # "ns/..." keys sort together; "0" is the character after "/".
            lo = max(lo, bisect.bisect_left(keys, ns + "/"))
            hi = bisect.bisect_left(keys, ns + "0")
        return lo, hi

    def matching(self, res, ns, label, field, snap, keys, start=""):
        """(index, key, object) of snap in key order from start, in ns,
        that match the selectors."""
        lo, hi = self.key_range(res, ns, keys, start)
        for i in range(lo, hi):
            k = keys[i]
            obj = snap[k]
            if (label.empty() or label.matches(
                    obj["metadata"].get("labels"))) and \
                    (field.empty() or field.matches(obj)):
                yield i, k, obj

    def list(self, res, ns, q, rv0_ignores_limit=True):
        """LIST: the serialized list (bytes). Resource version semantics:
        https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list"""
        label = LabelSelector(q.get("labelSelector"))
        field = FieldSelector(q.get("fieldSelector"), res.fields)
        limit = q.get("limit")
        try:
            limit = int(limit) if limit not in (None, "") else 0
        except ValueError:
            raise bad_request(f"limit: invalid value {limit!r}") from None
        rv = q.get("resourceVersion")
        match = q.get("resourceVersionMatch") or ""
        cont = q.get("continue") or ""
        errs = FieldErrors()
        if match and match not in ("NotOlderThan", "Exact"):
            errs.not_supported("resourceVersionMatch", match,
                               ("Exact", "NotOlderThan"))
        if match and not rv:
            errs.forbidden("resourceVersionMatch", "resourceVersionMatch is "
                           "forbidden unless resourceVersion is provided")
        if match == "Exact" and rv == "0":
            errs.forbidden("resourceVersionMatch", 'resourceVersionMatch '
                           '"exact" is forbidden for resourceVersion "0"')
        if match and cont:
            errs.forbidden("resourceVersionMatch", "resourceVersionMatch is "
                           "forbidden when continue is provided")
        errs.raise_if_any("ListOptions", "", "meta.k8s.io")
        if cont and rv:
            raise bad_request("specifying resource version is not allowed "
                              "when using continue")
        with self.cond:
            self.trim()
            start = ""
            if cont:
                crv, start = decode_continue(cont)
                if crv == -1:
                    snap_rv = self.rv
                elif crv < self.compacted:
                    items = list(self.matching(res, ns, label, field,
                                               self.data[res.storage],
                                               self.keys(res.storage), start))
                    meta = {"continue": encode_continue(-1, start)}
                    if label.empty() and field.empty():
                        meta["remainingItemCount"] = len(items)
                    raise expired(
                        "The provided continue parameter is too old to "
                        "display a consistent list result. You can start a "
                        "new list without the continue parameter, or use the "
                        "continue token in this response to retrieve the "
                        "remainder of the results. Continuing with the "
                        "provided token results in an inconsistent list - "
                        "objects that were created, modified, or deleted "
                        "between the time the first chunk was returned and "
                        "now may show up in the list.", meta)
                else:
                    snap_rv = crv
            elif rv in (None, ""):
                snap_rv = self.rv
            elif rv == "0":
                snap_rv = self.rv
                if rv0_ignores_limit:
                    # Served from the watch cache, which pages nothing.
                    limit = 0
            else:
                want = parse_rv(rv)
                exact = match == "Exact" or (not match and limit > 0)
                self.wait_rv(want)
                if exact:
                    if want < self.compacted:
                        raise expired("The resourceVersion for the provided "
                                      "list is too old.")
                    snap_rv = want
                else:
                    snap_rv = self.rv
            if snap_rv == self.rv:
                snap, keys = self.data[res.storage], self.keys(res.storage)
            else:
                snap, keys = self.snapshot(res.storage, snap_rv)
            it = self.matching(res, ns, label, field, snap, keys, start)
            bodies, last, more = [], None, None
            for i, k, obj in it:
                if limit and len(bodies) == limit:
                    more = i
                    break
                bodies.append(body_of(res, obj))
                last = k
            meta = b'{"resourceVersion":"%d"' % snap_rv
            if more is not None:
                meta += b',"continue":"%s"' % encode_continue(
                    snap_rv, last + "\x00").encode()
                if label.empty() and field.empty():
                    rest = self.key_range(res, ns, keys)[1] - more
                    meta += b',"remainingItemCount":%d' % rest
            meta += b"}"
        return b'{"kind":"%sList","apiVersion":"%s","metadata":%s,' \
            b'"items":[%s]}\n' % (res.kind.encode(),
                                  res.api_version.encode(), meta,
                                  b",".join(bodies))


def parse_rv(rv):
    try:
        v = int(rv)
        if v < 0:
            raise ValueError
        return v
    except (TypeError, ValueError):
        raise bad_request(f'Invalid value: "{rv}": resourceVersion: '
                          "Invalid value") from None


def encode_continue(rv, start):
    """The continue token: base64 of {"v","rv","start"} as the etcd3
    storage writes it (clients must treat it as opaque)."""
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        if d.get("v") != "meta.k8s.io/v1" or not is_int(d.get("rv")) or \
                not isinstance(d.get("start"), str):
            raise ValueError("bad fields")
        return d["rv"], d["start"]
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None


# -- certificates -------------------------------------------------------------

def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {p.stderr.strip()}")


def make_ca(directory, cn="svcgw-test-ca", stem="ca"):
    """A self-signed EC P-256 CA in directory: (cert path, key path).
    Also what a test uses to make a wrong CA."""
    os.makedirs(directory, exist_ok=True)
    cnf = os.path.join(directory, stem + ".cnf")
    with open(cnf, "w", encoding="ascii") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\n"
                "x509_extensions = v3\n[dn]\nCN = %s\n[v3]\n"
                "basicConstraints = critical,CA:TRUE\n"
                "keyUsage = critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid:always\n" % cn)
    crt, key = stem + ".crt", stem + ".key"
    _openssl(["req", "-x509", "-new", "-nodes", "-newkey", "ec",
              "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", key,
              "-out", crt, "-days", "7", "-config", cnf], directory)
    os.unlink(cnf)
    return os.path.join(directory, crt), os.path.join(directory, key)


def make_cert(directory, stem, ca, cn, org=None, sans=(), server=True):
    """A leaf certificate signed by ca=(cert, key): for a server (sans:
    "DNS:x" / "IP:y") or a client (cn = user name, org = group, as the
    API server's x509 authenticator reads them)."""
    cnf = os.path.join(directory, stem + ".cnf")
    ext = os.path.join(directory, stem + ".ext")
    dn = "CN = %s\n" % cn + ("O = %s\n" % org if org else "")
    with open(cnf, "w", encoding="ascii") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n" + dn)
    with open(ext, "w", encoding="ascii") as f:
        f.write("[v3]\nbasicConstraints = critical,CA:FALSE\n"
                "keyUsage = critical,digitalSignature\n"
                "extendedKeyUsage = %s\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid\n" %
                ("serverAuth" if server else "clientAuth"))
        if sans:
            f.write("subjectAltName = " + ",".join(sans) + "\n")
    key, csr, crt = stem + ".key", stem + ".csr", stem + ".crt"
    _openssl(["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", csr,
              "-config", cnf], directory)
    _openssl(["x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
              "-set_serial", str(random.SystemRandom().getrandbits(63)),
              "-days", "7", "-out", crt, "-extfile", ext,
              "-extensions", "v3"], directory)
    for p in (cnf, ext, os.path.join(directory, csr)):
        os.unlink(p)
    return os.path.join(directory, crt), os.path.join(directory, key)


# -- kubeconfig (YAML written by hand: the standard library has no YAML) ------

_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@=+-]*\Z")


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_int(v):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in ("true", "false", "yes", "no",
                                              "null", "on", "off", "~") \
            and not re.fullmatch(r"[-+.0-9eE]+", s):
        return s
    return json.dumps(s)


def to_yaml(v, indent=0):
    """Block-style YAML as `kubectl config view --raw` prints it."""
    pad = " " * indent
    out = []
    if isinstance(v, dict):
        if not v:
            return pad + "{}\n"
        for k, x in v.items():
            if isinstance(x, dict) and x:
                out.append(f"{pad}{k}:\n{to_yaml(x, indent + 2)}")
            elif isinstance(x, list) and x:
                out.append(f"{pad}{k}:\n{to_yaml(x, indent)}")
            elif isinstance(x, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(x, dict) else '[]'}"
                           "\n")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(x)}\n")
        return "".join(out)
    if isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                inner = to_yaml(x, indent + 2)
                out.append(f"{pad}- {inner[indent + 2:]}")
            else:
                out.append(f"{pad}- {_yaml_scalar(x)}\n")
        return "".join(out)
    return pad + _yaml_scalar(v) + "\n"


def load_yaml_subset(text):
    """The YAML that Kubernetes manifests use, enough to read an RBAC
    manifest: documents split by ---, block maps and lists, flow lists of
    scalars, quoted and plain scalars, comments. Returns [documents]."""
    docs = []
    for chunk in re.split(r"^---\s*$", text, flags=re.M):
        lines = []
        for raw in chunk.splitlines():
            line = _strip_comment(raw).rstrip()
            if line.strip():
                lines.append((len(line) - len(line.lstrip(" ")),
                              line.strip()))
        if lines:
            val, _ = _yaml_block(lines, 0, lines[0][0])
            docs.append(val)
    return docs


def _strip_comment(line):
    q = None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _yaml_value(s):
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        return [_yaml_value(x) for x in _split_flow(inner)] if inner else []
    if s.startswith("{") and s.endswith("}") and s[1:-1].strip() == "":
        return {}
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return json.loads(s) if s[0] == '"' else s[1:-1].replace("''", "'")
    if s in ("true", "True"):
        return True
    if s in ("false", "False"):
        return False
    if s in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return s


def _split_flow(s):
    out, cur, q = [], "", None
    for ch in s:
        if q:
            cur += ch
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
            cur += ch
        elif ch == ",":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [x for x in out if x.strip()]


def _yaml_block(lines, i, indent):
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        out = []
        while i < len(lines) and lines[i][0] == indent and \
                (lines[i][1].startswith("- ") or lines[i][1] == "-"):
            rest = lines[i][1][2:].strip()
            if not rest:
                val, i = _yaml_block(lines, i + 1, lines[i + 1][0])
            elif re.match(r"[^'\"\[{][^:]*:(\s|$)", rest):
                # "- key: value" opens a map at the item's column + 2.
                sub = [(indent + 2, rest)]
                j = i + 1
                while j < len(lines) and lines[j][0] > indent:
                    sub.append(lines[j])
                    j += 1
                val, _ = _yaml_block(sub, 0, indent + 2)
                i = j
            else:
                val, i = _yaml_value(rest), i + 1
            out.append(val)
        return out, i
    out = {}
    while i < len(lines) and lines[i][0] == indent:
        m = re.match(r"([^:]+?|\"[^\"]*\"|'[^']*'):(\s+(.*))?$", lines[i][1])
        if not m:
            raise ValueError(f"cannot read YAML line {lines[i][1]!r}")
        key = _yaml_value(m.group(1))
        rest = (m.group(3) or "").strip()
        if rest:
            out[key], i = _yaml_value(rest), i + 1
        elif i + 1 < len(lines) and (lines[i + 1][0] > indent or (
                lines[i + 1][0] == indent and
                lines[i + 1][1].startswith("- "))):
            out[key], i = _yaml_block(lines, i + 1, lines[i + 1][0])
        else:
            out[key], i = None, i + 1
    return out, i


# -- authorization: RBAC-style rules ------------------------------------------

def rule(verbs, resources, groups=("",), names=None, namespaces=None):
    """One PolicyRule: verbs on resources ("services", "services/status",
    "*") in API groups; names limits it to resourceNames; namespaces
    limits it to those namespaces (a RoleBinding's reach)."""
    r = {"verbs": list(verbs), "apiGroups": list(groups),
         "resources": list(resources)}
    if names:
        r["resourceNames"] = list(names)
    if namespaces:
        r["namespaces"] = list(namespaces)
    return r


def rules_from_manifest(path):
    """The rules of every ClusterRole and Role in a manifest (YAML or
    JSON; Roles' rules limited to their namespace)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs = load_yaml_subset(text)
    out = []
    for d in docs:
        items = d.get("items", [d]) if isinstance(d, dict) else []
        for doc in items:
            if not isinstance(doc, dict) or \
                    doc.get("kind") not in ("ClusterRole", "Role"):
                continue
            ns = (doc.get("metadata") or {}).get("namespace") \
                if doc["kind"] == "Role" else None
            for r in doc.get("rules") or []:
                r = dict(r)
                if ns:
                    r["namespaces"] = [ns]
                out.append(r)
    return out


def rule_allows(r, verb, group, resource, ns, name):
    def has(key, v):
        vals = r.get(key) or []
        return "*" in vals or v in vals
    if not has("verbs", verb) or not has("apiGroups", group):
        return False
    base = resource.split("/")[0]
    res_ok = has("resources", resource) or (
        "/" in resource and f"{base}/*" in (r.get("resources") or [])) or (
        "/" not in resource and "*" in (r.get("resources") or []))
    if "/" in resource and "*" in (r.get("resources") or []):
        res_ok = True
    if not res_ok:
        return False
    if r.get("resourceNames") and (not name or
                                   name not in r["resourceNames"]):
        return False
    if r.get("namespaces") and ns not in r["namespaces"]:
        return False
    return True


def forbidden(user, verb, res, resource, ns, name):
    what = f'{res.qualified} "{name}"' if name else res.qualified
    where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return ApiError(403, "Forbidden",
                    f'{what} is forbidden: User "{user}" cannot {verb} '
                    f'resource "{resource}" in API group "{res.group}" '
                    f"{where}", d)


# -- fault injection ----------------------------------------------------------

def matches_request(match, info):
    """match: None (every request), a dict of request-log fields that must
    be equal (a tuple/list/set value: any of), or a callable(info)."""
    if match is None:
        return True
    if callable(match):
        return bool(match(info))
    for k, v in match.items():
        got = info.get(k)
        if isinstance(v, (tuple, list, set, frozenset)):
            if got not in v:
                return False
        elif got != v:
            return False
    return True


class Faults:
    """What the test asked to go wrong, consumed by requests as they come."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fails = []    # [remaining, code, retry_after, match, message]
        self.stalls = []   # [remaining, seconds, match, where]
        self.split = None  # (max chunk size, gap seconds, rng)
        self.delay = 0.0

    def take_fail(self, info):
        with self.lock:
            for f in self.fails:
                if f[0] > 0 and matches_request(f[3], info):
                    f[0] -= 1
                    return f
            self.fails = [f for f in self.fails if f[0] > 0]
        return None

    def take_stall(self, info):
        with self.lock:
            for s in self.stalls:
                if s[0] > 0 and matches_request(s[2], info):
                    s[0] -= 1
                    return s[1], s[3]
            self.stalls = [s for s in self.stalls if s[0] > 0]
        return None


def injected_error(code, retry_after, message):
    """The Status the real server sends for code (a 429 like API Priority
    and Fairness's, a 5xx like an etcd or apiserver failure)."""
    if code == 429:
        ra = retry_after or 1
        return ApiError(429, "TooManyRequests", message or
                        "Too many requests, please try again later.",
                        {"retryAfterSeconds": ra},
                        headers={"Retry-After": str(ra)})
    reason = {500: "InternalError", 503: "ServiceUnavailable",
              504: "Timeout", 502: "InternalError"}.get(code, "InternalError")
    msg = message or ("Internal error occurred: injected fault"
                      if code == 500 else "injected fault")
    details = {"causes": [{"message": "injected fault"}]} if code == 500 \
        else None
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return ApiError(code, reason, msg, details, headers=headers)


# -- watch --------------------------------------------------------------------

class Dropped(Exception):
    """The test dropped this connection: end the handler without a word."""


def event_line(etype, res, body):
    return b'{"type":"%s","object":%s}\n' % (etype.encode(),
                                              with_kind(res, body))


def error_line(err):
    return b'{"type":"ERROR","object":%s}\n' % compact_json(err.status())


class Watch:
    """One watch stream's position in the history and what it wants.
    Event filtering follows the watch cache (cacher.go
    convertToWatchEvent): an object that starts matching the selectors is
    ADDED, one that stops matching is DELETED (its previous state, at the
    new resourceVersion)."""

    ids = iter(range(1, 1 << 62))

    def __init__(self, srv, res, ns, label, field, bookmarks, timeout, info):
        self.srv, self.reg = srv, srv.registry
        self.id = next(Watch.ids)
        self.res, self.ns = res, ns
        self.label, self.field = label, field
        self.bookmarks = bookmarks
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        self.next_bookmark = self._bookmark_after(self.start)
        self.info = info
        self.cursor = None
        self.lines = []        # injected raw lines, written as they are
        self.dropped = None    # "fin" or "rst" once the test drops us
        self.conn = None
        self.min_rv = 0

    def _bookmark_after(self, now):
        """When the next bookmark goes out: every bookmark_interval, and
        once shortly before the timeout (cacher nextBookmarkTime)."""
        t = now + self.srv.bookmark_interval
        pre = self.deadline - 2.0
        if now < pre < t:
            t = pre
        return t

    def _passes(self, obj, key):
        if obj is None:
            return False
        if self.ns and self.res.namespaced and \
                not key.startswith(self.ns + "/"):
            return False
        return (self.label.empty() or
                self.label.matches(obj["metadata"].get("labels"))) and \
            (self.field.empty() or self.field.matches(obj))

    def begin(self, rv, send_initial):
        """The first lines of the stream: initial ADDED events (watch
        without a version, or sendInitialEvents), or an ERROR when the
        version is compacted. Returns (lines, finished)."""
        reg = self.reg
        with reg.cond:
            reg.trim()
            lines = []
            if send_initial or rv in (None, "", "0"):
                if rv not in (None, "", "0"):
                    try:
                        reg.wait_rv(parse_rv(rv))
                    except ApiError as e:
                        return [error_line(e)], True
                for k in reg.keys(self.res.storage):
                    obj = reg.data[self.res.storage][k]
                    if self._passes(obj, k):
                        lines.append(event_line("ADDED", self.res,
                                                body_of(self.res, obj)))
                self.cursor = reg.log_base + len(reg.log)
                if send_initial and self.bookmarks:
                    lines.append(self._bookmark(reg.rv, initial_end=True))
            else:
                want = parse_rv(rv)
                if want < reg.compacted:
                    return [error_line(expired(
                        f"too old resource version: {want} "
                        f"({reg.compacted})"))], True
                self.cursor = reg.index_after(want)
                # From a version not reached yet: changes up to it are not
                # the client's to see.
                self.min_rv = want
            reg.cursors[self.id] = self.cursor
            self.srv.watches_open[self.id] = self
            reg.cond.notify_all()
        return lines, False

    def _bookmark(self, rv, initial_end=False):
        obj = {"kind": self.res.kind, "apiVersion": self.res.api_version,
               "metadata": {"resourceVersion": str(rv),
                            "creationTimestamp": None}}
        if initial_end:
            obj["metadata"]["annotations"] = {
                "k8s.io/initial-events-end": "true"}
        obj.update(self.res.skeleton())
        return b'{"type":"BOOKMARK","object":%s}\n' % compact_json(obj)

    def _convert(self, e):
        cur = e.type != "DELETED" and self._passes(e.obj, e.key)
        old = e.prev is not None and self._passes(e.prev, e.key)
        if cur and not old:
            return event_line("ADDED", self.res, body_of(self.res, e.obj))
        if cur and old:
            return event_line("MODIFIED", self.res, body_of(self.res, e.obj))
        if old:
            if e.type == "DELETED":
                body = body_of(self.res, e.obj)
            else:
                gone = dict(e.prev)
                gone["metadata"] = dict(e.prev["metadata"])
                gone["metadata"]["resourceVersion"] = str(e.rv)
                body = body_of(self.res, gone)
            return event_line("DELETED", self.res, body)
        return None

    def wait(self):
        """Block until there is something to write: (lines, state) with
        state None (go on), "timeout" or "dropped"."""
        reg = self.reg
        with reg.cond:
            while True:
                if self.dropped:
                    return [], "dropped"
                if self.lines:
                    out, self.lines = self.lines, []
                    return out, None
                now = time.monotonic()
                end = reg.log_base + len(reg.log)
                delay = self.srv.faults.delay
                out, wake = [], None
                while self.cursor < end:
                    e = reg.log[self.cursor - reg.log_base]
                    if delay and e.t + delay > now:
                        wake = e.t + delay
                        break
                    self.cursor += 1
                    if e.storage == self.res.storage and e.rv > self.min_rv:
                        line = self._convert(e)
                        if line:
                            out.append(line)
                reg.cursors[self.id] = self.cursor
                if out:
                    return out, None
                if now >= self.deadline:
                    return [], "timeout"
                if self.bookmarks and now >= self.next_bookmark:
                    self.next_bookmark = self._bookmark_after(now)
                    if self.cursor == end:
                        return [self._bookmark(reg.rv)], None
                t = min(self.deadline, self.next_bookmark if self.bookmarks
                        else self.deadline)
                if wake:
                    t = min(t, wake)
                reg.cond.wait(max(0.0, t - now))

    def bookmark_now(self):
        self.next_bookmark = 0.0

    def close(self):
        with self.reg.cond:
            self.reg.cursors.pop(self.id, None)
            self.srv.watches_open.pop(self.id, None)
            self.reg.trim()


# -- HTTP ---------------------------------------------------------------------

class Conn:
    """A client connection the test may cut: the handler and the
    test's thread both touch the socket only under `lock`."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False

    def cut(self, reset=False):
        with self.lock:
            if self.closed:
                return
            try:
                if reset:
                    # SO_LINGER 0: close() sends RST rather than FIN.
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass


class TLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Accepts on a socket made by ApiServer (maybe in another network
    namespace); the TLS handshake happens on the connection's own thread
    so a slow client holds up nobody."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sock, handler, api):
        self.api = api
        super().__init__(sock.getsockname(), handler,
                         bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family

    def finish_request(self, request, client_address):
        api = self.api
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request.settimeout(10)
            tls = api.ssl_ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError) as e:
            api.tls_failures.append({"client": client_address[0],
                                     "error": str(e), "time": time.time()})
            request.close()
            return
        self.RequestHandlerClass(tls, client_address, self)


class Handler(http.server.BaseHTTPRequestHandler):
    """One client connection (HTTP/1.1, keep-alive); every method goes
    through dispatch()."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        if self.server.api.verbose:
            super().log_message(*args)

    def send_response(self, code, message=None):
        # Go's server sends Date but no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def setup(self):
        super().setup()
        self.conn = Conn(self.connection)
        self.server.api.conns.add(self.conn)

    def handle(self):
        try:
            super().handle()
        except (OSError, ssl.SSLError, Dropped, ValueError):
            self.close_connection = True

    def finish(self):
        api = self.server.api
        api.conns.discard(self.conn)
        with self.conn.lock:
            self.conn.closed = True
            try:
                super().finish()
            except (OSError, ssl.SSLError, ValueError):
                pass
            try:
                self.connection.close()
            except (OSError, ssl.SSLError):
                pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- request parsing

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge",
                                   "the request body is too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge",
                           "Request entity too large: limit is 3145728")
        return self.rfile.read(n) if n else b""

    def route(self, method, path, q):
        """Request info: what the API server's RequestInfoResolver makes of
        the URL (k8s.io/apiserver/pkg/endpoints/request)."""
        info = {"method": method, "path": path, "query": q,
                "api": False, "verb": method.lower(), "resource": None,
                "group": None, "namespace": "", "name": "",
                "subresource": "", "watch": False}
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            return info
        if parts[0] == "api":
            if len(parts) < 2:
                info["discovery"] = ("api",)
                return info
            gv, rest = ("", parts[1]), parts[2:]
        else:
            if len(parts) < 3:
                info["discovery"] = ("apis",) + tuple(parts[1:2])
                return info
            gv, rest = (parts[1], parts[2]), parts[3:]
        if not any((r.group, r.version) == gv for r in RESOURCES):
            info["notfound"] = True
            return info
        if not rest:
            info["discovery"] = ("resources",) + gv
            return info
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and \
                (gv[0], gv[1], rest[2]) in BY_PATH and \
                BY_PATH[(gv[0], gv[1], rest[2])].namespaced:
            ns, rest = rest[1], rest[2:]
        res = BY_PATH.get((gv[0], gv[1], rest[0])) if rest else None
        if res is None or len(rest) > 3 or \
                (res.namespaced and not ns and len(rest) > 1):
            info["notfound"] = True
            return info
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in res.subresources:
            info["notfound"] = True
            return info
        try:
            watch = watch_path or parse_bool(q.get("watch", ""), "watch")
        except ApiError as e:
            # Answered once the request is authenticated.
            info["bad_query"] = e
            watch = False
        verb = {"GET": "get" if name else "list", "POST": "create",
                "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(
                    method, method.lower())
        if method == "GET" and watch:
            verb = "watch"
        info.update(api=True, res=res, verb=verb, resource=res.plural,
                    group=res.group, namespace=ns, name=name,
                    subresource=sub, watch=(verb == "watch"))
        return info

    def authenticate(self):
        """The user: a verified client certificate's CN, else a bearer
        token's owner; a bad token or no credentials is 401."""
        api = self.server.api
        cert = self.connection.getpeercert()
        if cert:
            subj = {k: v for rdn in cert.get("subject", ()) for k, v in rdn}
            return subj.get("commonName", ""), "x509"
        auth = self.headers.get("Authorization", "")
        if auth:
            scheme, _, tok = auth.partition(" ")
            user = api.tokens.get(tok.strip()) if scheme.lower() == \
                "bearer" else None
            if user:
                return user, "token"
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if api.anonymous:
            return "system:anonymous", "anonymous"
        raise ApiError(401, "Unauthorized", "Unauthorized")

    # -- responses

    def send_bytes(self, code, body, ctype="application/json", headers=None,
                   stall=None):
        api = self.server.api
        self.entry["status"] = code
        gz = len(body) > GZIP_THRESHOLD and "gzip" in \
            self.headers.get("Accept-Encoding", "") and self.command != "HEAD"
        if gz:
            body = gzip.compress(body, 5)
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        if gz:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", api.pf_uid)
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", api.pf_uid)
        chunked = len(body) > GO_CHUNKING_THRESHOLD
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        half = len(body) // 2 if stall else len(body)
        pieces = [body[:half], body[half:]] if stall else [body]
        for i, piece in enumerate(pieces):
            if i == 1:
                self.wfile.flush()
                self.sleep(stall)
            if chunked:
                for off in range(0, len(piece), 4096):
                    self.write_chunk(piece[off:off + 4096])
            else:
                self.wfile.write(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def sleep(self, seconds):
        """A stall the test's drop or stop can cut short."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.conn.closed or self.server.api.stopping:
                raise Dropped()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send_json(self, code, obj, headers=None, stall=None):
        pretty = self.query.get("pretty") in ("true", "1")
        self.send_bytes(code, go_json(obj, pretty), headers=headers,
                        stall=stall)

    def send_error_status(self, err, stall=None):
        self.entry["reason"] = err.reason
        self.send_json(err.code, err.status(), err.headers, stall)

    # -- the request

    def dispatch(self):
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(
            url.query, keep_blank_values=True).items()}
        self.query = q
        info = self.route(self.command, url.path, q)
        self.entry = entry = api.log_request(self, info)
        stall = None
        try:
            body = self.read_body()
            entry["body"] = body.decode("utf-8", "replace") if body else None
            if body and self.headers.get("Content-Type", "").startswith(
                    "application/") and "json" in \
                    self.headers.get("Content-Type", ""):
                try:
                    entry["body"] = json.loads(body)
                except ValueError:
                    pass
            user, how = self.authenticate()
            entry["user"], entry["auth"] = user, how
            f = api.faults.take_fail(entry)
            if f:
                entry["fault"] = f"fail {f[1]}"
                raise injected_error(f[1], f[2], f[4])
            s = api.faults.take_stall(entry)
            if s:
                entry["fault"] = f"stall {s[0]}s {s[1]}"
                if s[1] == "headers":
                    self.sleep(s[0])
                else:
                    stall = s[0]
            self.serve(info, q, body, user, stall)
        except ApiError as e:
            if e.code == 413:
                self.close_connection = True
            self.send_error_status(e, stall)
        except (Dropped, OSError, ssl.SSLError):
            self.close_connection = True
            raise Dropped() from None
        except Exception as e:  # a bug here: answer like the real 500
            import traceback
            traceback.print_exc(file=sys.stderr)
            self.send_error_status(ApiError(
                500, "InternalError", f"Internal error occurred: {e}"))
        finally:
            entry["done"] = time.time()

    def serve(self, info, q, body, user, stall):
        api = self.server.api
        path = info["path"]
        accept = self.headers.get("Accept", "")
        if accept and not any(
                a.split(";")[0].strip() in ("application/json", "*/*",
                                            "application/*", "")
                for a in accept.split(",")):
            raise ApiError(406, "NotAcceptable",
                           "only the following media types are accepted: "
                           "application/json, application/yaml, "
                           "application/vnd.kubernetes.protobuf")
        if not info["api"]:
            if self.command != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on "
                               "the requested resource")
            if path in ("/healthz", "/livez", "/readyz"):
                return self.send_bytes(200, b"ok", "text/plain; "
                                       "charset=utf-8", stall=stall)
            if path == "/version":
                return self.send_json(200, api.version_info(), stall=stall)
            if "discovery" in info:
                doc = api.discovery(info["discovery"])
                if doc is not None:
                    return self.send_json(200, doc, stall=stall)
            if info.get("notfound") or path.startswith(("/api/", "/apis/")):
                raise ApiError(404, "NotFound", "the server could not find "
                               "the requested resource", {})
            self.entry["status"] = 404
            return self.send_bytes(404, b"404 page not found\n",
                                   "text/plain; charset=utf-8", stall=stall)
        if info.get("bad_query"):
            raise info["bad_query"]
        res, ns, name, sub = info["res"], info["namespace"], info["name"], \
            info["subresource"]
        verb = info["verb"]
        resource = res.plural + ("/" + sub if sub else "")
        if not api.authorize(user, verb, res, resource, ns, name):
            raise forbidden(user, verb, res, resource, ns, name)
        reg = api.registry
        if verb == "watch":
            return self.serve_watch(res, ns, name, q, stall)
        if verb == "list":
            return self.send_bytes(200, reg.list(res, ns, q,
                                                 api.rv0_ignores_limit),
                                   stall=stall)
        if verb == "get":
            obj = reg.get(res, ns, name, q.get("resourceVersion"))
            return self.send_json(200, api_object(res, obj), stall=stall)
        if verb in ("create", "update", "patch"):
            ctype = self.headers.get("Content-Type", "").split(";")[0] \
                .strip().lower()
            if verb == "patch":
                ptype = {"application/merge-patch+json": "merge",
                         "application/strategic-merge-patch+json":
                         "strategic",
                         "application/json-patch+json": "json"}.get(ctype)
                if ptype is None:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an "
                                   "unknown format - accepted media types "
                                   "include: application/json-patch+json, "
                                   "application/merge-patch+json, "
                                   "application/apply-patch+yaml, "
                                   "application/strategic-merge-patch+json")
            elif ctype not in ("application/json", ""):
                raise ApiError(415, "UnsupportedMediaType",
                               'the body of the request was in an unknown '
                               'format - accepted media types include: '
                               'application/json, application/yaml, '
                               'application/vnd.kubernetes.protobuf')
            try:
                doc = json.loads(body) if body else None
            except ValueError as e:
                raise bad_request(f"{res.kind} in version \"{res.version}\" "
                                  f"cannot be handled as a {res.kind}: "
                                  f"json: {e}") from None
            if doc is None:
                raise bad_request("the body of the request was empty")
            if verb == "create":
                if name or sub:
                    raise ApiError(405, "MethodNotAllowed",
                                   "the server does not allow this method "
                                   "on the requested resource")
                obj = reg.create(res, ns, doc)
                return self.send_json(201, api_object(res, obj), stall=stall)
            if not name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on "
                               "the requested resource")
            if verb == "update":
                obj, created = reg.update(res, ns, name, doc, sub or None)
                return self.send_json(201 if created else 200,
                                      api_object(res, obj), stall=stall)
            obj = reg.patch(res, ns, name, ptype, doc, sub or None)
            return self.send_json(200, api_object(res, obj), stall=stall)
        if verb == "delete":
            opts = {}
            if body:
                try:
                    opts = json.loads(body)
                except ValueError:
                    raise bad_request("DeleteOptions: invalid JSON") \
                        from None
            obj, gone = reg.delete(res, ns, name, opts)
            if not gone:
                return self.send_json(200, api_object(res, obj), stall=stall)
            details = {"name": name}
            if res.group:
                details["group"] = res.group
            details["kind"] = res.plural
            details["uid"] = obj["metadata"]["uid"]
            return self.send_json(200, {
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success", "details": details}, stall=stall)
        if verb == "deletecollection":
            label = LabelSelector(q.get("labelSelector"))
            field = FieldSelector(q.get("fieldSelector"), res.fields)
            with reg.cond:
                keys = [k for _, k, _ in reg.matching(
                    res, ns, label, field, reg.data[res.storage],
                    reg.keys(res.storage))]
                for k in keys:
                    kns, _, kname = k.rpartition("/")
                    reg.delete(res, kns, kname)
            return self.send_json(200, {
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success"}, stall=stall)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow "
                       "this method on the requested resource")

    def serve_watch(self, res, ns, name, q, stall):
        api = self.server.api
        label = LabelSelector(q.get("labelSelector"))
        fsel = q.get("fieldSelector") or ""
        if name:
            # /watch/.../NAME (deprecated) is a watch on that one name.
            fsel = ",".join(x for x in (fsel, f"metadata.name={name}") if x)
        field = FieldSelector(fsel, res.fields)
        rv = q.get("resourceVersion")
        match = q.get("resourceVersionMatch") or ""
        initial = q.get("sendInitialEvents")
        bookmarks = parse_bool(q.get("allowWatchBookmarks", ""),
                               "allowWatchBookmarks")
        send_initial = parse_bool(initial, "sendInitialEvents") \
            if initial is not None else False
        errs = FieldErrors()
        if initial is not None:
            if match != "NotOlderThan":
                errs.forbidden("resourceVersionMatch", "sendInitialEvents "
                               "requires setting resourceVersionMatch to "
                               "NotOlderThan")
            if send_initial and not bookmarks:
                errs.forbidden("allowWatchBookmarks", "allowWatchBookmarks "
                               "must be set to true when sendInitialEvents "
                               "is true")
        elif match:
            errs.forbidden("resourceVersionMatch", "resourceVersionMatch is "
                           "forbidden for watch")
        errs.raise_if_any("ListOptions", "", "meta.k8s.io")
        ts = q.get("timeoutSeconds")
        try:
            timeout = float(int(ts)) if ts not in (None, "") else \
                api.rng.uniform(*api.watch_default_timeout)
        except ValueError:
            raise bad_request(f"timeoutSeconds: invalid value {ts!r}") \
                from None
        if rv not in (None, "", "0"):
            parse_rv(rv)
        accept = self.headers.get("Accept", "")
        ctype = "application/json;stream=watch" if "stream=watch" in accept \
            else "application/json"
        w = Watch(api, res, ns, label, field, bookmarks, timeout,
                  self.entry)
        w.conn = self.conn
        lines, finished = w.begin(rv, send_initial)
        try:
            self.entry["status"] = 200
            self.send_response(200)
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Kubernetes-Pf-Flowschema-Uid", api.pf_uid)
            self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", api.pf_uid)
            self.end_headers()
            self.wfile.flush()
            if stall:
                self.sleep(stall)
            state = None
            while True:
                self.write_lines(lines)
                if finished or state == "timeout":
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if state == "dropped":
                    self.close_connection = True
                    with self.conn.lock:
                        self.conn.closed = True
                        try:
                            if w.dropped == "rst":
                                self.connection.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01" + b"\x00" * 7)
                            socket.socket.close(self.connection)
                        except OSError:
                            pass
                    raise Dropped()
                lines, state = w.wait()
        finally:
            w.close()

    def write_lines(self, lines):
        """Watch events: one chunk each, as the real server flushes them,
        or, when the test asked, cut at random byte positions that never
        fall on an event boundary."""
        if not lines:
            return
        split = self.server.api.faults.split
        if not split:
            for line in lines:
                self.write_chunk(line)
            return
        max_size, gap, rng = split
        data = b"".join(lines)
        bounds, off = set(), 0
        for line in lines:
            off += len(line)
            bounds.add(off)
        pos = 0
        while pos < len(data):
            n = rng.randint(1, max_size)
            end = min(len(data), pos + n)
            if end in bounds and end < len(data):
                # Step off the boundary, backwards while that leaves a
                # non-empty chunk.
                end = end - 1 if end - 1 > pos else end + 1
            self.write_chunk(data[pos:end])
            pos = end
            if gap:
                time.sleep(gap)


# -- the server ---------------------------------------------------------------

def _socket_in_netns(netns, family):
    """A TCP socket created inside network namespace netns: setns(2) moves
    only the calling thread, so a short-lived thread makes the socket,
    which stays in that namespace for good."""
    out = {}

    def run():
        fd = None
        try:
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                err = ctypes.get_errno()
                raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            out["sock"] = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            out["err"] = e
        finally:
            if fd is not None:
                os.close(fd)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


class ApiServer:
    """The stand-in. Construct, start(), drive, stop(); see the module
    docstring and README.md. Every public method is safe to call from any
    thread while clients are connected."""

    def __init__(self, host="127.0.0.1", port=0, netns=None, token=None,
                 seed=1, history_events=None, history_seconds=75.0,
                 bookmark_interval=60.0, watch_default_timeout=(1800, 3600),
                 service_cidrs=("10.96.0.0/16", "fd00:10:96::/112"),
                 node_ports=(30000, 32767), anonymous=False, rbac=None,
                 default_objects=True, rv0_ignores_limit=True,
                 too_large_wait=3.0, workdir=None, verbose=False):
        addr = ipaddress.ip_address(host)
        if netns is None and not addr.is_loopback:
            # Tests never listen where another machine could reach them.
            raise ValueError("host must be a loopback address unless netns "
                             "names the test's network namespace")
        self.host, self.port, self.netns = str(addr), port, netns
        self.rng = random.Random(seed)
        self.token = token or "svcgw-" + "%032x" % self.rng.getrandbits(128)
        self.tokens = {self.token: DEFAULT_USER}
        self.registry = Registry(seed, history_events, history_seconds,
                                 service_cidrs, node_ports, too_large_wait)
        self.faults = Faults()
        self.bookmark_interval = bookmark_interval
        self.watch_default_timeout = watch_default_timeout
        self.anonymous = anonymous
        self.rbac = None
        self.set_rbac(rbac)
        self.rv0_ignores_limit = rv0_ignores_limit
        self.verbose = verbose
        self.pf_uid = str(uuid.UUID(int=self.rng.getrandbits(128),
                                    version=4))
        self.conns = set()
        self.watches_open = {}
        self.tls_failures = []
        self._log = []
        self._log_lock = threading.Lock()
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="apiserver-")
        self.ca_path = self.ca_key_path = None
        self.client_cert_path = self.client_key_path = None
        self.server = None
        self.stopping = False
        self._defaults = default_objects
        self._closed = False
        import atexit
        atexit.register(self.close)

    # -- life

    @property
    def url(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{h}:{self.port}"

    def _certs(self):
        if self.ca_path:
            return
        ca = make_ca(self.workdir)
        self.ca_path, self.ca_key_path = ca
        sans = ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP:127.0.0.1", "IP:::1"]
        if self.host not in ("127.0.0.1", "::1"):
            sans.append("IP:" + self.host)
        self.server_cert = make_cert(self.workdir, "server", ca,
                                     "kube-apiserver", sans=sans)
        self.client_cert_path, self.client_key_path = make_cert(
            self.workdir, "client", ca, CLIENT_CERT_USER, org="svcgw",
            server=False)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self.server_cert)
        # Ask for a client certificate, accept its absence (token users).
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(self.ca_path)
        # HTTP/1.1 only: a client offering h2 falls back to it.
        ctx.set_alpn_protocols(["http/1.1"])
        self.ssl_ctx = ctx

    def start(self):
        """Listen and serve; again after stop() on the same port, with the
        same objects, CA and tokens (an API server restart)."""
        if self.server:
            return self
        self._certs()
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = _socket_in_netns(self.netns, fam) if self.netns else \
            socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.stopping = False
        self.server = TLSServer(sock, Handler, self)
        threading.Thread(target=self.server.serve_forever, args=(0.05,),
                         daemon=True, name="apiserver").start()
        if self._defaults:
            self._defaults = False
            self._seed_defaults()
        return self

    def _seed_defaults(self):
        """What every cluster has: its namespaces, and the "kubernetes"
        Service (ClusterIP, the API itself) with its EndpointSlice."""
        reg = self.registry
        nsres = resource_named("namespaces")
        for ns in ("default", "kube-system", "kube-public",
                   "kube-node-lease"):
            if ns not in reg.data["namespaces"]:
                reg.create(nsres, "", {"metadata": {"name": ns}})
        net = reg.alloc.nets[0]
        self.create({"kind": "Service", "apiVersion": "v1", "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": str(net[1]),
                     "ports": [{"name": "https", "protocol": "TCP",
                                "port": 443, "targetPort": self.port}]}})
        fam = "IPv6" if ":" in self.host else "IPv4"
        self.create(endpoint_slice("kubernetes", "kubernetes", [self.host],
                                   [("https", "TCP", self.port)],
                                   address_type=fam, managed_by=None))

    def stop(self):
        """Stop listening and cut every connection (clients see the server
        go away); state is kept for start()."""
        srv, self.server = self.server, None
        if not srv:
            return
        self.stopping = True
        srv.shutdown()
        srv.server_close()
        with self.registry.cond:
            for w in list(self.watches_open.values()):
                w.dropped = "fin"
            self.registry.cond.notify_all()
        for c in list(self.conns):
            c.cut()

    def close(self):
        """stop() and delete the working directory (also at exit)."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- objects (in-process; the same rules as the HTTP verbs unless
    # validate=False, which stores what a real server would refuse, for
    # tests of a client's handling of bad objects)

    @staticmethod
    def _res_of(obj):
        kind, av = obj.get("kind"), obj.get("apiVersion")
        for r in RESOURCES:
            if r.kind == kind and av in (None, r.api_version):
                return r
        raise KeyError(f"no resource for kind {kind!r} apiVersion {av!r}")

    @staticmethod
    def _ns(res, namespace):
        return (namespace or "default") if res.namespaced else ""

    def create(self, obj, validate=True):
        """Create obj (kind and apiVersion required). A status given with
        it is written after the create, as a controller would (two
        resourceVersions, ADDED then MODIFIED), since a create drops it."""
        res = self._res_of(obj)
        ns = self._ns(res, obj.get("metadata", {}).get("namespace"))
        with self.registry.cond:
            self.registry.ensure_namespace(ns)
            stored = self.registry.create(res, ns, obj, validate)
            if res.status_sub and obj.get("status") and validate and \
                    res.plural != "namespaces":
                st = api_object(res, stored)
                st["status"] = deep(obj["status"])
                stored = self.registry._replace(
                    res, stored, res.to_storage(
                        {k: v for k, v in st.items()
                         if k not in ("kind", "apiVersion")}),
                    "status", validate)
        return api_object(res, stored)

    def replace(self, obj, subresource=None, validate=True):
        """PUT semantics: metadata.resourceVersion, when given, must be
        current (else ApiError 409)."""
        res = self._res_of(obj)
        meta = obj.get("metadata", {})
        ns = self._ns(res, meta.get("namespace"))
        stored, _ = self.registry.update(res, ns, meta.get("name"), obj,
                                         subresource, validate)
        return api_object(res, stored)

    def apply(self, obj):
        """Create, or replace whatever is there (no version check)."""
        res = self._res_of(obj)
        meta = obj.get("metadata", {})
        if self.get(res.qualified, meta.get("name"),
                    meta.get("namespace")) is None:
            return self.create(obj)
        o = deep(obj)
        o["metadata"].pop("resourceVersion", None)
        return self.replace(o)

    def patch(self, kind, name, patch, namespace=None, type="merge",
              subresource=None, validate=True):
        """type: "merge" (RFC 7386), "strategic", or "json" (RFC 6902)."""
        res = resource_named(kind)
        obj = self.registry.patch(res, self._ns(res, namespace), name, type,
                                  patch, subresource, validate)
        return api_object(res, obj)

    def delete(self, kind, name, namespace=None, preconditions=None):
        res = resource_named(kind)
        opts = {"preconditions": preconditions} if preconditions else None
        self.registry.delete(res, self._ns(res, namespace), name, opts)

    def get(self, kind, name, namespace=None):
        """The object as a client would get it, or None."""
        res = resource_named(kind)
        try:
            return api_object(res, self.registry.get(
                res, self._ns(res, namespace), name))
        except ApiError:
            return None

    def list(self, kind, namespace=None, label_selector=None,
             field_selector=None):
        res = resource_named(kind)
        q = {"labelSelector": label_selector or "",
             "fieldSelector": field_selector or ""}
        doc = json.loads(self.registry.list(res, namespace or "", q))
        for item in doc["items"]:
            item["kind"], item["apiVersion"] = res.kind, res.api_version
        return doc["items"]

    @property
    def resource_version(self):
        with self.registry.cond:
            return str(self.registry.rv)

    # -- faults

    def fail_next(self, n=1, code=500, retry_after=None, match=None,
                  message=None):
        """The next n requests matching `match` (see matches_request) get
        HTTP `code` with the Status the real server would send (429 with
        Retry-After; 500 InternalError; 503; 504)."""
        with self.faults.lock:
            self.faults.fails.append([n, code, retry_after, match, message])

    def stall(self, seconds, n=1, match=None, where="headers"):
        """Hold the next n matching responses for `seconds`: before the
        status line ("headers"), or halfway through the body / before the
        first watch event ("body")."""
        if where not in ("headers", "body"):
            raise ValueError("where: headers or body")
        with self.faults.lock:
            self.faults.stalls.append([n, seconds, match, where])

    def _watches(self, match):
        return [w for w in list(self.watches_open.values())
                if matches_request(match, w.info)]

    def drop_watches(self, reset=False, match=None):
        """Close every open watch (matching `match`) mid-stream, without
        the final chunk: FIN, or RST with reset=True. Returns how many."""
        with self.registry.cond:
            ws = self._watches(match)
            for w in ws:
                w.dropped = "rst" if reset else "fin"
            self.registry.cond.notify_all()
        if not reset:
            for w in ws:
                if w.conn:
                    w.conn.cut()
        return len(ws)

    def inject_watch_line(self, data=b'{"type":"MODIFIED","object":{"kind'
                          b'":"Service","metadata":{\n', match=None):
        """Write raw bytes (by default a truncated, malformed event line)
        into every open matching watch stream. Returns how many."""
        with self.registry.cond:
            ws = self._watches(match)
            for w in ws:
                w.lines.append(data)
            self.registry.cond.notify_all()
        return len(ws)

    def send_bookmarks(self, match=None):
        """A BOOKMARK now on every open watch that allows them."""
        with self.registry.cond:
            ws = [w for w in self._watches(match) if w.bookmarks]
            for w in ws:
                w.bookmark_now()
            self.registry.cond.notify_all()
        return len(ws)

    def compact(self):
        """Forget all history: older versions get 410 Expired from now on
        (watches from them, Exact lists, continue tokens)."""
        self.registry.compact_now()

    def split_chunks(self, enabled=True, max_size=97, gap=0.001, seed=1):
        """Cut watch streams into chunks of 1..max_size bytes at positions
        that never fall on an event boundary, `gap` seconds apart."""
        self.faults.split = (max_size, gap, random.Random(seed)) \
            if enabled else None

    def delay_events(self, seconds):
        """Deliver each watch event no sooner than `seconds` after it
        happened (0: at once)."""
        with self.registry.cond:
            self.faults.delay = seconds
            self.registry.cond.notify_all()

    def clear_faults(self):
        with self.faults.lock:
            self.faults.fails, self.faults.stalls = [], []
        self.faults.split = None
        self.delay_events(0)

    # -- authentication and authorization

    def add_token(self, token, user=DEFAULT_USER):
        self.tokens[token] = user

    def revoke_token(self, token):
        self.tokens.pop(token, None)

    def set_rbac(self, rules):
        """None: everyone may do everything. A list of rules (see rule(),
        rules_from_manifest()): every user gets exactly those. A dict:
        user name -> rules ("*" for anyone)."""
        if rules is None or isinstance(rules, dict):
            self.rbac = rules
        else:
            self.rbac = {"*": list(rules)}

    def authorize(self, user, verb, res, resource, ns, name):
        if self.rbac is None:
            return True
        rules = self.rbac.get(user, []) + self.rbac.get("*", [])
        return any(rule_allows(r, verb, res.group, resource, ns, name)
                   for r in rules)

    # -- what the clients did

    def log_request(self, handler, info):
        h = handler.headers
        auth = h.get("Authorization")
        entry = {k: info.get(k) for k in (
            "method", "path", "query", "verb", "resource", "group",
            "namespace", "name", "subresource", "watch")}
        entry.update({
            "time": time.time(), "client": handler.client_address[0],
            "headers": {
                "content-type": h.get("Content-Type"),
                "accept": h.get("Accept"),
                "accept-encoding": h.get("Accept-Encoding"),
                "user-agent": h.get("User-Agent"),
                "authorization": (auth.split(" ")[0] + " ...") if auth
                else None},
            "user": None, "auth": None, "body": None, "status": None,
            "reason": None, "fault": None, "done": None})
        with self._log_lock:
            entry["seq"] = len(self._log) + 1
            self._log.append(entry)
        return entry

    def requests(self, **filters):
        """Copies of the logged requests whose fields equal the filters
        (a tuple value: any of; a callable: a predicate on the field)."""
        with self._log_lock:
            log = list(self._log)
        out = []
        for e in log:
            ok = True
            for k, v in filters.items():
                got = e.get(k)
                if callable(v):
                    ok = v(got)
                elif isinstance(v, (tuple, list, set)):
                    ok = got in v
                else:
                    ok = got == v
                if not ok:
                    break
            if ok:
                out.append(deep(e))
        return out

    def clear_requests(self):
        with self._log_lock:
            self._log = []

    def watches(self, **filters):
        """The request-log entries of the watches open now."""
        with self.registry.cond:
            ws = list(self.watches_open.values())
        return [deep(w.info) for w in ws
                if matches_request(filters or None, w.info)]

    def wait_until(self, predicate, timeout=10.0, step=0.02):
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)

    def wait_watches(self, n=1, timeout=10.0, **filters):
        return self.wait_until(lambda: len(self.watches(**filters)) >= n,
                               timeout)

    def wait_requests(self, n=1, timeout=10.0, **filters):
        return self.wait_until(lambda: len(self.requests(**filters)) >= n,
                               timeout)

    # -- discovery documents

    def version_info(self):
        return {"major": KUBE_VERSION[0], "minor": KUBE_VERSION[1],
                "gitVersion": KUBE_VERSION[2],
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2024-04-17T00:00:00Z",
                "goVersion": "go1.22.2", "compiler": "gc",
                "platform": "linux/amd64"}

    def discovery(self, key):
        groups = {}
        for r in RESOURCES:
            groups.setdefault(r.group, set()).add(r.version)
        if key == ("api",):
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{
                        "clientCIDR": "0.0.0.0/0",
                        "serverAddress": self.url[len("https://"):]}]}

        def group_doc(g):
            gv = {"groupVersion": f"{g}/v1", "version": "v1"}
            return {"name": g, "versions": [gv], "preferredVersion": gv}
        if key == ("apis",):
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [group_doc(g) for g in sorted(groups) if g]}
        if key[0] == "apis" and len(key) == 2:
            if key[1] not in groups or not key[1]:
                return None
            d = group_doc(key[1])
            d.update({"kind": "APIGroup", "apiVersion": "v1"})
            return d
        if key[0] == "resources":
            g, v = key[1], key[2]
            out = []
            for r in RESOURCES:
                if (r.group, r.version) != (g, v):
                    continue
                doc = {"name": r.plural, "singularName": r.singular,
                       "namespaced": r.namespaced, "kind": r.kind,
                       "verbs": ["create", "delete", "deletecollection",
                                 "get", "list", "patch", "update",
                                 "watch"]}
                if r.short:
                    doc["shortNames"] = list(r.short)
                out.append(doc)
                for sub in r.subresources:
                    out.append({"name": f"{r.plural}/{sub}",
                                "singularName": "", "namespaced":
                                r.namespaced, "kind": r.kind,
                                "verbs": ["get", "patch", "update"]})
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{g}/{v}" if g else v,
                    "resources": out}
        return None

    # -- credentials for clients

    def write_kubeconfig(self, path, auth="token", embed=True, server=None,
                         ca_path=None, token=None, insecure=False,
                         namespace="default", decoy=True, fmt="yaml"):
        """A kubeconfig for this server. auth: "token", "token-file",
        "client-cert" or "none"; embed: *-data fields rather than file
        paths; ca_path: another CA (a wrong one, for a failing test);
        insecure: insecure-skip-tls-verify and no CA; decoy: a first,
        non-current context pointing at a closed port with a wrong token,
        so a client that ignores current-context fails. fmt "json" writes
        the same document as JSON (also valid YAML)."""
        def b64(p):
            with open(p, "rb") as f:
                return base64.b64encode(f.read()).decode()
        ca = ca_path or self.ca_path
        cluster = {"server": server or self.url}
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        elif embed:
            cluster["certificate-authority-data"] = b64(ca)
        else:
            cluster["certificate-authority"] = ca
        user = {}
        tok = token or self.token
        if auth == "token":
            user["token"] = tok
        elif auth == "token-file":
            tpath = path + ".token"
            with open(tpath, "w", encoding="ascii") as f:
                f.write(tok)
            user["tokenFile"] = tpath
        elif auth == "client-cert":
            if embed:
                user["client-certificate-data"] = b64(self.client_cert_path)
                user["client-key-data"] = b64(self.client_key_path)
            else:
                user["client-certificate"] = self.client_cert_path
                user["client-key"] = self.client_key_path
        elif auth != "none":
            raise ValueError(f"auth: {auth!r}")
        clusters, contexts, users = [], [], []
        if decoy:
            clusters.append({"cluster": {"server": "https://127.0.0.1:1",
                                         "insecure-skip-tls-verify": True},
                             "name": "decoy"})
            contexts.append({"context": {"cluster": "decoy",
                                         "user": "decoy"}, "name": "decoy"})
            users.append({"name": "decoy", "user": {"token": "wrong"}})
        clusters.append({"cluster": cluster, "name": "standin"})
        contexts.append({"context": {"cluster": "standin",
                                     "namespace": namespace,
                                     "user": "standin-user"},
                         "name": "standin"})
        users.append({"name": "standin-user", "user": user})
        doc = {"apiVersion": "v1", "clusters": clusters,
               "contexts": contexts, "current-context": "standin",
               "kind": "Config", "preferences": {}, "users": users}
        text = json.dumps(doc, indent=2) + "\n" if fmt == "json" \
            else to_yaml(doc)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def in_cluster_env(self):
        """The variables the kubelet sets in a pod (IPv6 unbracketed)."""
        return {"KUBERNETES_SERVICE_HOST": self.host,
                "KUBERNETES_SERVICE_PORT": str(self.port),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(self.port)}

    def write_in_cluster(self, directory, token=None, namespace="default"):
        """A service-account directory as the kubelet projects it
        (/var/run/secrets/kubernetes.io/serviceaccount): token, ca.crt and
        namespace behind the atomic-writer symlinks (..data ->
        ..<timestamp>/). Returns in_cluster_env()."""
        tok = token or self.token
        self.tokens.setdefault(tok, DEFAULT_USER)
        with open(self.ca_path, "rb") as f:
            ca = f.read()
        self._atomic_write(directory, {"token": tok.encode(), "ca.crt": ca,
                                       "namespace": namespace.encode()})
        return self.in_cluster_env()

    def rotate_in_cluster_token(self, directory, token=None,
                                revoke_old=False):
        """Swap in a new token as the kubelet does when it refreshes a
        projected token; the old one stays valid unless revoke_old."""
        with open(os.path.join(directory, "token"), encoding="ascii") as f:
            old = f.read()
        new = token or "svcgw-" + "%032x" % self.rng.getrandbits(128)
        self.tokens[new] = DEFAULT_USER
        with open(os.path.join(directory, "ca.crt"), "rb") as f:
            ca = f.read()
        with open(os.path.join(directory, "namespace"), "rb") as f:
            ns = f.read()
        self._atomic_write(directory, {"token": new.encode(), "ca.crt": ca,
                                       "namespace": ns})
        if revoke_old:
            self.revoke_token(old)
        return new

    @staticmethod
    def _atomic_write(directory, files):
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + \
            "%09d" % (time.time_ns() % 1_000_000_000)
        ts_dir = os.path.join(directory, stamp)
        os.mkdir(ts_dir)
        for name, data in files.items():
            with open(os.path.join(ts_dir, name), "wb") as f:
                f.write(data)
        data_link = os.path.join(directory, "..data")
        old = os.readlink(data_link) if os.path.islink(data_link) else None
        tmp = os.path.join(directory, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(stamp, tmp)
        os.replace(tmp, data_link)
        for name in files:
            link = os.path.join(directory, name)
            if not os.path.islink(link):
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(os.path.join("..data", name), link)
        if old and old != stamp:
            shutil.rmtree(os.path.join(directory, old), ignore_errors=True)


# -- object builders: the shapes the real controllers write -------------------

def service(name, ports, type="LoadBalancer", namespace="default",
            labels=None, annotations=None, selector=None, status=None,
            **spec):
    """A Service. ports: dicts, or tuples (name, protocol, port,
    targetPort[, nodePort]). Extra spec fields as keyword arguments
    (loadBalancerClass=..., externalTrafficPolicy=..., ...)."""
    ps = []
    for p in ports:
        if isinstance(p, dict):
            ps.append(dict(p))
            continue
        d = {}
        if p[0]:
            d["name"] = p[0]
        d.update({"protocol": p[1], "port": p[2], "targetPort": p[3]})
        if len(p) > 4 and p[4]:
            d["nodePort"] = p[4]
        ps.append(d)
    meta = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    s = {"ports": ps, "type": type}
    s["selector"] = dict(selector) if selector is not None else {"app": name}
    s.update(spec)
    obj = {"kind": "Service", "apiVersion": "v1", "metadata": meta,
           "spec": s}
    if status is not None:
        obj["status"] = status
    return obj


def endpoint_slice(name, service_name, endpoints, ports, namespace="default",
                   address_type="IPv4", labels=None,
                   managed_by="endpointslice-controller.k8s.io"):
    """An EndpointSlice of service_name. endpoints: addresses (ready,
    serving, not terminating) or Endpoint dicts; ports: dicts or tuples
    (name, protocol, port)."""
    eps = []
    for e in endpoints:
        if isinstance(e, dict):
            eps.append(dict(e))
        else:
            eps.append({"addresses": [e], "conditions": {
                "ready": True, "serving": True, "terminating": False}})
    ps = [dict(p) if isinstance(p, dict) else
          {"name": p[0], "protocol": p[1], "port": p[2]} for p in ports]
    lab = {"kubernetes.io/service-name": service_name}
    if managed_by:
        lab["endpointslice.kubernetes.io/managed-by"] = managed_by
    lab.update(labels or {})
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": lab},
            "addressType": address_type, "endpoints": eps, "ports": ps}


def node(name, addresses=(), labels=None):
    """A Node; addresses: "a.b.c.d" (InternalIP) or (type, address)."""
    addrs = [{"type": "InternalIP", "address": a} if isinstance(a, str)
             else {"type": a[0], "address": a[1]} for a in addresses]
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": dict(labels or {
                "kubernetes.io/hostname": name})},
            "spec": {}, "status": {"addresses": addrs, "conditions": [
                {"type": "Ready", "status": "True", "reason":
                 "KubeletReady", "message": "kubelet is posting ready "
                 "status"}]}}


def lease(name, holder, namespace="kube-system", duration=15):
    t = now_micro()
    return {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"holderIdentity": holder,
                     "leaseDurationSeconds": duration, "acquireTime": t,
                     "renewTime": t, "leaseTransitions": 0}}


# -- as a process -------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Kubernetes API server stand-in for svcgw's tests. "
        "Prints one JSON line (url, ca, token, kubeconfig, in-cluster "
        "directory and environment) and serves until its standard input "
        "closes.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--netns", help="listen inside this network namespace")
    ap.add_argument("--dir", help="write kubeconfig and serviceaccount/ "
                    "here (default: the working directory it makes)")
    ap.add_argument("--token")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--history-events", type=int)
    ap.add_argument("--history-seconds", type=float, default=75.0)
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    a = ap.parse_args(argv)
    # SIGTERM leaves through sys.exit, so the working directory goes too.
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = ApiServer(host=a.host, port=a.port, netns=a.netns, token=a.token,
                    seed=a.seed, history_events=a.history_events,
                    history_seconds=a.history_seconds,
                    bookmark_interval=a.bookmark_interval).start()
    out = a.dir or srv.workdir
    os.makedirs(out, exist_ok=True)
    kc = srv.write_kubeconfig(os.path.join(out, "kubeconfig"))
    sa = os.path.join(out, "serviceaccount")
    env = srv.write_in_cluster(sa)
    print(json.dumps({"url": srv.url, "ca": srv.ca_path, "token": srv.token,
                      "kubeconfig": kc, "in_cluster_dir": sa, "env": env}),
          flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
