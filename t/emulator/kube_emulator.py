#!/usr/bin/python3
"""A small Kubernetes API server for the test suites.

Serves coordination.k8s.io/v1 Leases and v1 ConfigMaps over HTTPS with the
real server's status bodies, resourceVersion rules, watch and discovery, plus
an admin API under /_emulator/ to inject faults and inspect what the server
holds.  See README.md next to this file.  Python 3 standard library only.

    kube_emulator.py --dir DIR [--port 0] [--host 127.0.0.1] [--token T ...]
"""

import argparse
import base64
import collections
import copy
import datetime
import http.client
import json
import logging
import os
import random
import re
import secrets
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger('kube_emulator')

DEFAULT_USER = 'system:serviceaccount:default:default'
CERT_USER = 'kle-client'
KUBE_VERSION = {'major': '1', 'minor': '32', 'gitVersion': 'v1.32.0-kle',
                'gitCommit': '0000000000000000000000000000000000000000',
                'gitTreeState': 'clean',
                'buildDate': '2025-01-01T00:00:00Z', 'goVersion': 'go1.23.0',
                'compiler': 'gc', 'platform': 'linux/amd64'}
MAX_BODY = 3 * 1024 * 1024
MICROTIME = re.compile(
    r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})'
    r'(Z|[+-]\d\d:\d\d)$')
DNS1123_SUBDOMAIN = re.compile(
    r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
CONFIG_KEY = re.compile(r'^[-._a-zA-Z0-9]+$')


class Resource:
    def __init__(self, plural, singular, kind, group, version, short,
                 spec_fields, create_on_update, unconditional_update):
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.group = group
        self.version = version
        self.short = short
        self.spec_fields = spec_fields
        self.create_on_update = create_on_update
        self.unconditional_update = unconditional_update

    @property
    def api_version(self):
        return self.group + '/' + self.version if self.group else self.version

    @property
    def qualified(self):
        """leases.coordination.k8s.io, configmaps: as messages name it."""
        return self.plural + '.' + self.group if self.group else self.plural

    @property
    def qualified_kind(self):
        return self.kind + '.' + self.group if self.group else self.kind

    @property
    def prefix(self):
        return '/apis/' + self.api_version if self.group else '/api/v1'


LEASES = Resource('leases', 'lease', 'Lease', 'coordination.k8s.io', 'v1',
                  [], ['spec'], True, False)
CONFIGMAPS = Resource('configmaps', 'configmap', 'ConfigMap', '', 'v1',
                      ['cm'], ['data', 'binaryData', 'immutable'],
                      False, True)
EVENT_FIELDS = ['involvedObject', 'reason', 'message', 'source',
                'firstTimestamp', 'lastTimestamp', 'count', 'type',
                'eventTime', 'series', 'action', 'related',
                'reportingComponent', 'reportingInstance']
EVENTS = Resource('events', 'event', 'Event', '', 'v1', ['ev'],
                  EVENT_FIELDS, False, True)
RESOURCES = {r.plural: r for r in (LEASES, CONFIGMAPS, EVENTS)}
LOCKS = (LEASES, CONFIGMAPS)        # what kubectl gets OpenAPI for
VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch',
         'update', 'watch']

REASONS = {400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden',
           404: 'NotFound', 405: 'MethodNotAllowed', 406: 'NotAcceptable',
           409: 'Conflict', 410: 'Expired', 413: 'RequestEntityTooLarge',
           415: 'UnsupportedMediaType', 422: 'Invalid',
           429: 'TooManyRequests', 500: 'InternalError',
           503: 'ServiceUnavailable', 504: 'Timeout'}
MESSAGES = {429: 'Too many requests, please try again later.',
            500: 'Internal error occurred: injected fault',
            503: 'the server is currently unable to handle the request',
            504: 'Timeout: request did not complete within the allotted '
                 'timeout'}
HTML_502 = (b'<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n'
            b'<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n'
            b'<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n')


def dumps(obj):
    """The API server's encoding: compact JSON and a newline."""
    return (json.dumps(obj, separators=(',', ':')) + '\n').encode()


def now_rfc3339():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


# --- Status bodies ----------------------------------------------------------

class ApiError(Exception):
    """An answer with a metav1.Status body."""

    def __init__(self, code, reason, message, details=None, headers=()):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = list(headers)

    def status(self):
        body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
                'status': 'Failure', 'message': self.message}
        if self.reason:
            body['reason'] = self.reason
        if self.details is not None:
            body['details'] = self.details
        body['code'] = self.code
        return body


def details(res, name, kind=None):
    """StatusDetails as the server fills them: empty fields are omitted."""
    d = {}
    if name:
        d['name'] = name
    if res.group:
        d['group'] = res.group
    d['kind'] = kind or res.plural
    return d


def not_found(res, name):
    return ApiError(404, 'NotFound', '%s "%s" not found'
                    % (res.qualified, name), details(res, name))


def already_exists(res, name):
    return ApiError(409, 'AlreadyExists', '%s "%s" already exists'
                    % (res.qualified, name), details(res, name))


def conflict(res, name, why='the object has been modified; please apply '
             'your changes to the latest version and try again'):
    return ApiError(409, 'Conflict', 'Operation cannot be fulfilled on '
                    '%s "%s": %s' % (res.qualified, name, why),
                    details(res, name))


def forbidden(res, name, user, verb, ns):
    what = '%s "%s"' % (res.qualified, name) if name else res.qualified
    where = ' in the namespace "%s"' % ns if ns else ' at the cluster scope'
    msg = ('%s is forbidden: User "%s" cannot %s resource "%s" in API group '
           '"%s"%s' % (what, user, verb, res.plural, res.group, where))
    return ApiError(403, 'Forbidden', msg, details(res, name))


def invalid(res, name, causes):
    """causes: (field, message) pairs, as field.ErrorList prints them."""
    parts = ['%s: %s' % (f, m) for f, m in causes]
    text = parts[0] if len(parts) == 1 else '[' + ', '.join(parts) + ']'
    d = details(res, name, res.kind)
    d['causes'] = [{'reason': 'FieldValueInvalid', 'message': m, 'field': f}
                   for f, m in causes]
    return ApiError(422, 'Invalid', '%s "%s" is invalid: %s'
                    % (res.qualified_kind, name, text), d)


def bad_request(message):
    return ApiError(400, 'BadRequest', message)


def decode_error(res, why):
    return bad_request('%s in version "%s" cannot be handled as a %s: %s'
                       % (res.kind, res.version, res.kind, why))


UNAUTHORIZED = ApiError(401, 'Unauthorized', 'Unauthorized')

MEDIA_TYPES = ('application/json', 'application/yaml',
               'application/vnd.kubernetes.protobuf')


def unsupported_media_type():
    return ApiError(415, 'UnsupportedMediaType', 'the body of the request '
                    'was in an unknown format - accepted media types '
                    'include: ' + ', '.join(MEDIA_TYPES))


def too_large_rv(want, have):
    """What the watch cache answers a watch from a future resourceVersion
    once it has waited for it."""
    return ApiError(504, 'Timeout', 'Timeout: Too large resource version: '
                    '%d, current: %d' % (want, have),
                    {'causes': [{'reason': 'ResourceVersionTooLarge',
                                 'message': 'Too large resource version'}],
                     'retryAfterSeconds': 1})


# --- Object validation and normalisation ------------------------------------

def type_error(res, field, got, want):
    names = {str: 'string', int: 'number', float: 'number', bool: 'bool',
             dict: 'object', list: 'array'}
    return decode_error(res, 'json: cannot unmarshal %s into Go struct field '
                        '%s of type %s' % (names.get(type(got), 'value'),
                                           field, want))


def check_string_map(res, value, field):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error(res, field, value, 'map[string]string')
    for v in value.values():
        if not isinstance(v, str):
            raise type_error(res, field, v, 'string')
    return value


def check_int(res, value, field):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(res, field, value, 'int32')
    if not -2 ** 31 <= value < 2 ** 31:
        raise decode_error(res, 'json: cannot unmarshal number %d into Go '
                           'struct field %s of type int32' % (value, field))
    return value


def check_string(res, value, field):
    if value is None or isinstance(value, str):
        return value
    raise type_error(res, field, value, 'string')


def microtime(res, value, field):
    """metav1.MicroTime: exactly six fraction digits; stored as UTC 'Z'."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(res, field, value, 'string')
    m = MICROTIME.match(value)
    if not m:
        raise decode_error(res, 'parsing time "%s" as '
                           '"2006-01-02T15:04:05.000000Z07:00": cannot parse'
                           ' "%s" as "2006-01-02T15:04:05.000000Z07:00"'
                           % (value, value))
    y, mo, d, h, mi, s, us, tz = m.groups()
    try:
        t = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi),
                              int(s), int(us))
    except ValueError as e:
        raise decode_error(res, 'parsing time "%s": %s' % (value, e))
    if tz != 'Z':
        sign = 1 if tz[0] == '+' else -1
        t -= sign * datetime.timedelta(hours=int(tz[1:3]),
                                       minutes=int(tz[4:6]))
    return t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


META_FIELDS = ['name', 'generateName', 'namespace', 'selfLink', 'uid',
               'resourceVersion', 'generation', 'creationTimestamp',
               'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels',
               'annotations', 'ownerReferences', 'finalizers',
               'managedFields']
LEASE_SPEC = ['holderIdentity', 'leaseDurationSeconds', 'acquireTime',
              'renewTime', 'leaseTransitions', 'strategy', 'preferredHolder']


def normalise(res, body, unknown):
    """Decodes a request body the way the typed Go structs do.

    Returns a new object in the server's field order.  Unknown fields are
    dropped and their paths appended to unknown.
    """
    if not isinstance(body, dict):
        raise decode_error(res, 'json: cannot unmarshal %s into Go value of '
                           'type struct' % type(body).__name__)
    kind = body.get('kind')
    if kind not in (None, '', res.kind):
        raise bad_request('%s in version "%s" cannot be handled as a %s: '
                          'no kind "%s" is registered for version "%s"'
                          % (res.kind, res.version, res.kind, kind,
                             res.api_version))
    api_version = body.get('apiVersion')
    if api_version not in (None, '', res.api_version):
        raise bad_request('the API version in the data (%s) does not match '
                          'the expected API version (%s)'
                          % (api_version, res.api_version))
    for key in body:
        if key not in ('kind', 'apiVersion', 'metadata') + \
                tuple(res.spec_fields):
            unknown.append(key)
    meta_in = body.get('metadata') or {}
    if not isinstance(meta_in, dict):
        raise type_error(res, 'metadata', meta_in, 'v1.ObjectMeta')
    meta = {}
    for key in META_FIELDS:
        if meta_in.get(key) is not None:
            meta[key] = meta_in[key]
    for key in meta_in:
        if key not in META_FIELDS:
            unknown.append('metadata.' + key)
    for key in ('name', 'generateName', 'namespace', 'uid',
                'resourceVersion'):
        check_string(res, meta.get(key), 'ObjectMeta.metadata.' + key)
    check_string_map(res, meta.get('labels'), 'ObjectMeta.metadata.labels')
    check_string_map(res, meta.get('annotations'),
                     'ObjectMeta.metadata.annotations')
    meta.pop('managedFields', None)
    meta.pop('selfLink', None)
    obj = {'kind': res.kind, 'apiVersion': res.api_version, 'metadata': meta}
    if res is LEASES:
        spec_in = body.get('spec') or {}
        if not isinstance(spec_in, dict):
            raise type_error(res, 'Lease.spec', spec_in, 'v1.LeaseSpec')
        spec = {}
        for key in LEASE_SPEC:
            field = 'LeaseSpec.spec.' + key
            v = spec_in.get(key)
            if key in ('leaseDurationSeconds', 'leaseTransitions'):
                v = check_int(res, v, field)
            elif key in ('acquireTime', 'renewTime'):
                v = microtime(res, v, field)
            else:
                v = check_string(res, v, field)
            if v is not None:
                spec[key] = v
        for key in spec_in:
            if key not in LEASE_SPEC:
                unknown.append('spec.' + key)
        obj['spec'] = spec
    elif res is EVENTS:
        normalise_event(res, body, obj)
    else:
        data = check_string_map(res, body.get('data'), 'ConfigMap.data')
        if data:
            obj['data'] = data
        binary = check_string_map(res, body.get('binaryData'),
                                  'ConfigMap.binaryData')
        if binary:
            obj['binaryData'] = binary
        immutable = body.get('immutable')
        if immutable is not None:
            if not isinstance(immutable, bool):
                raise type_error(res, 'ConfigMap.immutable', immutable,
                                 'bool')
            obj['immutable'] = immutable
    return obj


RFC3339 = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?'
                     r'(Z|[+-]\d\d:\d\d)$')
OBJECT_REFERENCE = ['kind', 'namespace', 'name', 'uid', 'apiVersion',
                    'resourceVersion', 'fieldPath']


def normalise_event(res, body, obj):
    """core/v1 Event fields, typed as the Go struct has them."""
    for key in EVENT_FIELDS:
        v = body.get(key)
        if v is None:
            continue
        field = 'Event.' + key
        if key in ('involvedObject', 'related'):
            if not isinstance(v, dict):
                raise type_error(res, field, v, 'v1.ObjectReference')
            v = {k: check_string(res, v.get(k), field + '.' + k)
                 for k in OBJECT_REFERENCE if v.get(k) is not None}
        elif key in ('source', 'series'):
            if not isinstance(v, dict):
                raise type_error(res, field, v, 'object')
        elif key == 'count':
            v = check_int(res, v, field)
        elif key in ('firstTimestamp', 'lastTimestamp'):
            if not isinstance(v, str) or not RFC3339.match(v):
                raise decode_error(res, 'parsing time %s as RFC 3339: '
                                   'cannot parse' % json.dumps(v))
        elif key == 'eventTime':
            v = microtime(res, v, field)
        else:
            v = check_string(res, v, field)
        obj[key] = v
    if 'involvedObject' not in obj:
        obj['involvedObject'] = {}


def validate(res, obj):
    """The checks that give 422 Invalid on the real server."""
    meta = obj['metadata']
    name = meta.get('name', '')
    causes = []
    if not name:
        causes.append(('metadata.name', 'Required value: name or '
                       'generateName is required'))
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        causes.append(('metadata.name', 'Invalid value: "%s": a lowercase '
                       'RFC 1123 subdomain must consist of lower case '
                       'alphanumeric characters, \'-\' or \'.\', and must '
                       'start and end with an alphanumeric character' % name))
    size = sum(len(k) + len(v)
               for k, v in (meta.get('annotations') or {}).items())
    if size > 262144:
        causes.append(('metadata.annotations',
                       'Too long: must have at most 262144 bytes'))
    if res is LEASES:
        spec = obj['spec']
        d = spec.get('leaseDurationSeconds')
        if d is not None and d <= 0:
            causes.append(('spec.leaseDurationSeconds', 'Invalid value: %d: '
                           'must be greater than 0' % d))
        t = spec.get('leaseTransitions')
        if t is not None and t < 0:
            causes.append(('spec.leaseTransitions', 'Invalid value: %d: must '
                           'be greater than or equal to 0' % t))
    elif res is EVENTS:
        ins = obj['involvedObject'].get('namespace')
        if ins and meta.get('namespace') and ins != meta['namespace']:
            causes.append(('involvedObject.namespace', 'Invalid value: "%s":'
                           ' does not match event.namespace' % ins))
        if obj.get('type') not in (None, 'Normal', 'Warning'):
            causes.append(('type', 'Unsupported value: "%s": supported '
                           'values: "Normal", "Warning"' % obj['type']))
        if len(obj.get('reason') or '') > 128:
            causes.append(('reason', 'Too long: must have at most 128 '
                           'bytes'))
    else:
        total = 0
        for section in ('data', 'binaryData'):
            for key, v in (obj.get(section) or {}).items():
                total += len(v)
                if not CONFIG_KEY.match(key) or len(key) > 253:
                    causes.append(('%s[%s]' % (section, key),
                                   'Invalid value: "%s": a valid config key '
                                   'must consist of alphanumeric characters,'
                                   ' \'-\', \'_\' or \'.\'' % key))
        if total > 1024 * 1024:
            causes.append(('[]', 'Too long: must have at most 1048576 '
                           'bytes'))
    if causes:
        raise invalid(res, name, causes)


def ordered_meta(meta):
    """Field order of ObjectMeta; empty maps and lists are omitted."""
    return {k: meta[k] for k in META_FIELDS
            if k in meta and meta[k] not in ({}, [])}


# --- Patches ----------------------------------------------------------------

def merge_patch(target, patch, strategic=False):
    """RFC 7386; with strategic, the map directives of strategic merge."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if strategic and patch.get('$patch') == 'replace':
        return {k: copy.deepcopy(v) for k, v in patch.items()
                if not k.startswith('$')}
    if strategic and patch.get('$patch') == 'delete':
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith('$'):
            continue
        if value is None:
            result.pop(key, None)
        else:
            merged = merge_patch(result.get(key), value, strategic)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def json_pointer(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise ValueError('invalid JSON pointer %r' % path)
    return [p.replace('~1', '/').replace('~0', '~')
            for p in path[1:].split('/')]


def json_patch(doc, ops):
    """RFC 6902: add, remove, replace, test, move, copy."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError('a JSON patch must be a list of operations')

    def parent(parts):
        node = doc
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node

    def get(parts):
        node = doc
        for p in parts:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node

    def remove(parts):
        node = parent(parts)
        key = parts[-1]
        if isinstance(node, list):
            return node.pop(int(key))
        return node.pop(key)

    def add(parts, value):
        node = parent(parts)
        key = parts[-1]
        if isinstance(node, list):
            node.insert(len(node) if key == '-' else int(key), value)
        else:
            node[key] = value

    for op in ops:
        try:
            kind = op['op']
            parts = json_pointer(op['path'])
            if not parts:
                raise ValueError('cannot patch the whole document')
            if kind == 'add':
                add(parts, copy.deepcopy(op['value']))
            elif kind == 'remove':
                remove(parts)
            elif kind == 'replace':
                remove(parts)
                add(parts, copy.deepcopy(op['value']))
            elif kind == 'test':
                if get(parts) != op['value']:
                    raise ValueError('testing value %s failed' % op['path'])
            elif kind in ('move', 'copy'):
                src = json_pointer(op['from'])
                value = remove(src) if kind == 'move' else \
                    copy.deepcopy(get(src))
                add(parts, value)
            else:
                raise ValueError('unknown patch operation %r' % kind)
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError('cannot apply %r: %s' % (op, e))
    return doc


# --- Protobuf request bodies ------------------------------------------------
#
# Typed clients (kubectl create configmap, client-go) send
# application/vnd.kubernetes.protobuf: "k8s\0" and a runtime.Unknown holding
# the object.  Only what Leases, ConfigMaps and DeleteOptions need is decoded,
# into the JSON form; answers are always JSON.

PB_MAGIC = b'k8s\x00'


def pb_varint(buf, i):
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError('truncated varint')
        b = buf[i]
        i += 1
        value |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def pb_fields(buf):
    """(field number, value) pairs; length-delimited values as bytes."""
    i = 0
    while i < len(buf):
        key, i = pb_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = pb_varint(buf, i)
        elif wire == 2:
            n, i = pb_varint(buf, i)
            if i + n > len(buf):
                raise ValueError('truncated field %d' % num)
            value, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError('unsupported wire type %d' % wire)
        yield num, value


def pb_int(v):
    """Varints hold negative numbers in 64-bit two's complement."""
    return v - (1 << 64) if v >= 1 << 63 else v


def pb_time(buf, micro):
    f = dict(pb_fields(buf))
    sec, nsec = pb_int(f.get(1, 0)), pb_int(f.get(2, 0))
    if sec == 0 and nsec == 0:
        return None
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(
        seconds=sec, microseconds=nsec // 1000)
    return t.strftime('%Y-%m-%dT%H:%M:%S.%fZ' if micro
                      else '%Y-%m-%dT%H:%M:%SZ')


def pb_map(buf, as_bytes=False):
    f = dict(pb_fields(buf))
    value = f.get(2, b'')
    if as_bytes:
        return f.get(1, b'').decode(), base64.b64encode(value).decode()
    return f.get(1, b'').decode(), value.decode()


PB_META = {1: 'name', 2: 'generateName', 3: 'namespace', 5: 'uid',
           6: 'resourceVersion'}


def pb_meta(buf):
    meta = {}
    for num, v in pb_fields(buf):
        if num in PB_META and v:
            meta[PB_META[num]] = v.decode()
        elif num == 7 and v:
            meta['generation'] = pb_int(v)
        elif num == 8 and pb_time(v, False):
            meta['creationTimestamp'] = pb_time(v, False)
        elif num in (11, 12):
            k, val = pb_map(v)
            meta.setdefault('labels' if num == 11 else 'annotations',
                            {})[k] = val
        elif num == 14:
            meta.setdefault('finalizers', []).append(v.decode())
    return meta


def pb_object(kind, buf):
    obj = {}
    if kind == 'DeleteOptions':
        for num, v in pb_fields(buf):
            if num == 2:
                p = dict(pb_fields(v))
                obj['preconditions'] = {
                    k: p[n].decode() for n, k in ((1, 'uid'),
                                                  (2, 'resourceVersion'))
                    if n in p}
            elif num == 4:
                obj['propagationPolicy'] = v.decode()
        return obj
    for num, v in pb_fields(buf):
        if num == 1:
            obj['metadata'] = pb_meta(v)
        elif kind == 'ConfigMap' and num in (2, 3):
            k, val = pb_map(v, num == 3)
            obj.setdefault('data' if num == 2 else 'binaryData', {})[k] = val
        elif kind == 'ConfigMap' and num == 4:
            obj['immutable'] = bool(v)
        elif kind == 'Lease' and num == 2:
            spec = obj['spec'] = {}
            for n, sv in pb_fields(v):
                if n in (1, 6, 7):
                    spec[{1: 'holderIdentity', 6: 'strategy',
                          7: 'preferredHolder'}[n]] = sv.decode()
                elif n in (2, 5):
                    spec['leaseDurationSeconds' if n == 2
                         else 'leaseTransitions'] = pb_int(sv)
                elif n in (3, 4):
                    spec['acquireTime' if n == 3 else 'renewTime'] = \
                        pb_time(sv, True)
    return obj


def decode_protobuf(raw):
    """The object in a Kubernetes protobuf envelope, as JSON would hold it."""
    if not raw.startswith(PB_MAGIC):
        raise bad_request('protobuf body without the k8s magic prefix')
    try:
        unknown = dict(pb_fields(raw[len(PB_MAGIC):]))
        tm = dict(pb_fields(unknown.get(1, b'')))
        api_version = tm.get(1, b'').decode()
        kind = tm.get(2, b'').decode()
        if kind not in ('ConfigMap', 'Lease', 'DeleteOptions'):
            raise ApiError(415, 'UnsupportedMediaType', 'the emulator cannot'
                           ' decode protobuf %s' % (kind or 'objects'))
        obj = pb_object(kind, unknown.get(2, b''))
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as e:
        raise bad_request('cannot decode the protobuf body: %s' % e)
    obj['kind'] = kind
    obj['apiVersion'] = api_version
    return obj


# --- State ------------------------------------------------------------------

class State:
    """Objects, history, faults, tokens, forbidden verbs and the request log.

    One condition guards everything; watches and stalled requests wait on it.
    """

    FAULT_KINDS = ('latency', 'status', 'reset', 'malformed', 'html',
                   'oversized', 'stall')
    MAX_LOG = 100000

    def __init__(self, tokens, history=1000):
        self.cond = threading.Condition()
        self.initial_tokens = dict(tokens)
        self.rv = 100
        self.history_size = history
        self.watch_expired = 'event'
        self.bookmark_interval = 60.0     # kube-apiserver: a minute
        self.too_large_wait = 3.0         # the watch cache's wait
        self.min_request_timeout = 1800.0
        self.closing = False
        self.generation = 0
        self.watch_epoch = 0          # close-watches ends the open ones
        self.next_fault = 1
        self.next_seq = 1
        self._clear()

    def _clear(self):
        self.objects = {}
        self.events = collections.deque()
        self.compacted = self.rv
        self.faults = []
        self.held = {}          # fault id -> fault, until released
        self.forbid = []
        self.requests = []
        self.tokens = dict(self.initial_tokens)
        self.generation += 1

    def reset(self):
        with self.cond:
            for f in self.held.values():
                f['_released'] = True
            self._clear()
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    # resourceVersions and history

    def commit(self, res, ns, name, obj, event):
        """Stores obj (None deletes) under a new resourceVersion; the
        caller holds cond."""
        self.rv += 1
        key = (res.plural, ns, name)
        if obj is None:
            obj = copy.deepcopy(self.objects.pop(key))
        else:
            self.objects[key] = obj
        meta = obj['metadata']
        meta['resourceVersion'] = str(self.rv)
        order = {k: i for i, k in enumerate(META_FIELDS)}
        obj['metadata'] = {k: meta[k] for k in sorted(
            meta, key=lambda k: order.get(k, len(order)))}
        self.events.append((self.rv, event, res.plural, ns, name,
                            copy.deepcopy(obj)))
        while len(self.events) > self.history_size:
            self.compacted = self.events.popleft()[0]
        self.cond.notify_all()
        return obj

    def compact(self):
        with self.cond:
            self.events.clear()
            self.compacted = self.rv
            self.cond.notify_all()

    # faults

    def add_fault(self, spec):
        if not isinstance(spec, dict):
            raise ValueError('a fault is a JSON object')
        kind = spec.get('kind')
        if kind not in self.FAULT_KINDS:
            raise ValueError('fault kind must be one of %s'
                             % ', '.join(self.FAULT_KINDS))
        fault = dict(spec)
        fault.setdefault('after', kind == 'malformed')
        if 'count' in fault and fault['count'] is not None:
            if not isinstance(fault['count'], int) or fault['count'] < 1:
                raise ValueError('count must be a positive integer')
        with self.cond:
            fault['id'] = self.next_fault
            fault['hits'] = 0
            fault['_released'] = False
            self.next_fault += 1
            self.faults.append(fault)
            self.held[fault['id']] = fault
        return public_fault(fault)

    def remove_faults(self, fid=None):
        with self.cond:
            found = False
            for f in list(self.held.values()):
                if fid is None or f['id'] == fid:
                    f['_released'] = True
                    del self.held[f['id']]
                    found = True
            self.faults = [f for f in self.faults
                           if fid is not None and f['id'] != fid]
            self.cond.notify_all()
            return found

    def take_faults(self, method, path):
        """The matching latency faults and the first other matching fault."""
        delays, chosen = [], None
        with self.cond:
            for f in list(self.faults):
                if f.get('method') and f['method'].upper() != method:
                    continue
                if f.get('path') and f['path'] not in path:
                    continue
                if f['kind'] != 'latency' and chosen is not None:
                    continue
                f['hits'] += 1
                if f.get('count') is not None:
                    f['count'] -= 1
                    if f['count'] <= 0:
                        self.faults.remove(f)
                        if f['kind'] != 'stall':
                            self.held.pop(f['id'], None)
                if f['kind'] == 'latency':
                    # jitter_ms: a uniform extra delay, per request
                    delays.append((float(f.get('ms', 0)) + random.uniform(
                        0, float(f.get('jitter_ms', 0)))) / 1000.0)
                else:
                    chosen = f
        return sum(delays), chosen

    # request log

    def log_start(self, entry):
        with self.cond:
            entry['seq'] = self.next_seq
            self.next_seq += 1
            self.requests.append(entry)
            if len(self.requests) > self.MAX_LOG:
                del self.requests[:len(self.requests) // 10]

    def log_end(self, entry, code, fault=None):
        with self.cond:
            entry['code'] = code
            if fault:
                entry['fault'] = fault
            entry['duration_ms'] = round((time.time() - entry['time'])
                                         * 1000.0, 3)


def public_fault(f):
    return {k: v for k, v in f.items() if not k.startswith('_')}


# --- Certificates and files -------------------------------------------------

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = kle-emulator
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = %s
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

CERT_FILES = ('ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt',
              'client.key')


def make_certs(d, host):
    """CA, server and client certificates, made once per directory."""
    if all(os.path.exists(os.path.join(d, f)) for f in CERT_FILES):
        return
    sans = ['IP:127.0.0.1', 'IP:0:0:0:0:0:0:0:1', 'DNS:localhost']
    if host not in ('127.0.0.1', '::1', 'localhost', '0.0.0.0', '::', ''):
        sans.append(('IP:' if re.match(r'^[0-9.:]+$', host) else 'DNS:')
                    + host)
    cnf = os.path.join(d, 'openssl.cnf')
    with open(cnf, 'w') as f:
        f.write(OPENSSL_CNF % ','.join(sans))
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
           '-nodes']

    def run(*args):
        subprocess.run(('openssl',) + args, cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    old = os.umask(0o077)
    try:
        run('req', '-x509', *key, '-keyout', 'ca.key', '-out', 'ca.crt',
            '-days', '3650', '-subj', '/CN=kle-emulator-ca', '-config', cnf,
            '-extensions', 'ca_ext')
        for name, subj, ext in (('server', '/CN=localhost', 'server_ext'),
                                ('client', '/O=system:masters/CN='
                                 + CERT_USER, 'client_ext')):
            run('req', '-new', *key, '-keyout', name + '.key', '-out',
                name + '.csr', '-subj', subj, '-config', cnf)
            run('x509', '-req', '-in', name + '.csr', '-CA', 'ca.crt',
                '-CAkey', 'ca.key', '-set_serial',
                '0x' + secrets.token_hex(8), '-days', '3650', '-out',
                name + '.crt', '-extfile', cnf, '-extensions', ext)
            os.unlink(os.path.join(d, name + '.csr'))
    finally:
        os.umask(old)
    for f in ('ca.crt', 'server.crt', 'client.crt'):
        os.chmod(os.path.join(d, f), 0o644)


def write_file(path, text, mode=0o644):
    """Atomic: readers never see a half-written file."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def kubeconfig_text(server, token):
    q = json.dumps
    return '\n'.join([
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: kle-emulator',
        '  cluster:',
        '    server: ' + q(server),
        '    certificate-authority: ca.crt',
        'users:',
        '- name: kle-emulator',
        '  user:',
        '    token: ' + q(token),
        '- name: kle-emulator-cert',
        '  user:',
        '    client-certificate: client.crt',
        '    client-key: client.key',
        'contexts:',
        '- name: kle-emulator',
        '  context:',
        '    cluster: kle-emulator',
        '    user: kle-emulator',
        '    namespace: default',
        '- name: kle-emulator-cert',
        '  context:',
        '    cluster: kle-emulator',
        '    user: kle-emulator-cert',
        '    namespace: default',
        'current-context: kle-emulator',
        'preferences: {}',
        ''])


# --- Discovery --------------------------------------------------------------

def api_resource(res):
    r = {'name': res.plural, 'singularName': res.singular,
         'namespaced': True, 'kind': res.kind, 'verbs': VERBS,
         'storageVersionHash': res.kind.lower() + 'hash'}
    if res.short:
        r['shortNames'] = res.short
    return r


def discovery(path, host):
    if path == '/api':
        return {'kind': 'APIVersions', 'versions': ['v1'],
                'serverAddressByClientCIDRs': [
                    {'clientCIDR': '0.0.0.0/0', 'serverAddress': host}]}
    if path == '/api/v1':
        ns = {'name': 'namespaces', 'singularName': 'namespace',
              'namespaced': False, 'kind': 'Namespace',
              'verbs': ['get', 'list'], 'shortNames': ['ns'],
              'storageVersionHash': 'namespacehash'}
        return {'kind': 'APIResourceList', 'groupVersion': 'v1',
                'resources': [api_resource(CONFIGMAPS),
                              api_resource(EVENTS), ns]}
    group = {'name': LEASES.group,
             'versions': [{'groupVersion': LEASES.api_version,
                           'version': LEASES.version}],
             'preferredVersion': {'groupVersion': LEASES.api_version,
                                  'version': LEASES.version}}
    if path == '/apis':
        return {'kind': 'APIGroupList', 'apiVersion': 'v1',
                'groups': [group]}
    if path == '/apis/' + LEASES.group:
        return dict({'kind': 'APIGroup', 'apiVersion': 'v1'}, **group)
    if path == LEASES.prefix:
        return {'kind': 'APIResourceList', 'apiVersion': 'v1',
                'groupVersion': LEASES.api_version,
                'resources': [api_resource(LEASES)]}
    return None


def openapi_v3(path):
    """Just enough OpenAPI v3 for kubectl: it looks for the fieldValidation
    parameter on each kind's PATCH operation (server-side validation) and
    for the schemas that strategic merge patches (kubectl apply) need."""
    if path == '/openapi/v3':
        return {'paths': {
            r.prefix[1:]: {'serverRelativeURL': '/openapi/v3%s?hash=%s'
                           % (r.prefix, r.kind.upper())}
            for r in LOCKS}}
    res = next((r for r in LOCKS
                if path == '/openapi/v3' + r.prefix), None)
    if res is None:
        return None
    pkg = 'io.k8s.api.%s.v1.' % ('coordination' if res.group else 'core')
    meta = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'
    gvk = {'group': res.group, 'version': res.version, 'kind': res.kind}
    strmap = {'type': 'object', 'additionalProperties': {'type': 'string'}}
    schemas = {
        meta: {'type': 'object', 'properties': {
            'name': {'type': 'string'}, 'namespace': {'type': 'string'},
            'uid': {'type': 'string'}, 'resourceVersion': {'type': 'string'},
            'creationTimestamp': {'type': 'string', 'format': 'date-time'},
            'labels': strmap, 'annotations': strmap,
            'finalizers': {'type': 'array', 'items': {'type': 'string'},
                           'x-kubernetes-patch-strategy': 'merge'}}},
        pkg + res.kind: {
            'type': 'object',
            'properties': {'apiVersion': {'type': 'string'},
                           'kind': {'type': 'string'},
                           'metadata': {'allOf': [
                               {'$ref': '#/components/schemas/' + meta}],
                               'default': {}}},
            'x-kubernetes-group-version-kind': [gvk]}}
    props = schemas[pkg + res.kind]['properties']
    if res is LEASES:
        mt = {'type': 'string', 'format': 'date-time'}
        schemas[pkg + 'LeaseSpec'] = {'type': 'object', 'properties': {
            'holderIdentity': {'type': 'string'},
            'leaseDurationSeconds': {'type': 'integer', 'format': 'int32'},
            'acquireTime': mt, 'renewTime': mt,
            'leaseTransitions': {'type': 'integer', 'format': 'int32'},
            'strategy': {'type': 'string'},
            'preferredHolder': {'type': 'string'}}}
        props['spec'] = {'allOf': [
            {'$ref': '#/components/schemas/' + pkg + 'LeaseSpec'}],
            'default': {}}
    else:
        props['data'] = strmap
        props['binaryData'] = {'type': 'object', 'additionalProperties': {
            'type': 'string', 'format': 'byte'}}
        props['immutable'] = {'type': 'boolean'}
    item = '%s/namespaces/{namespace}/%s/{name}' % (res.prefix, res.plural)
    patch = {'operationId': 'patch%sNamespaced%s' % (
                 'CoordinationV1' if res.group else 'CoreV1', res.kind),
             'x-kubernetes-action': 'patch',
             'x-kubernetes-group-version-kind': gvk,
             'parameters': [{'name': n, 'in': 'query',
                             'schema': {'type': 'string'}}
                            for n in ('dryRun', 'fieldManager',
                                      'fieldValidation')],
             'responses': {'200': {'description': 'OK'}}}
    return {'openapi': '3.0.0',
            'info': {'title': 'Kubernetes', 'version': 'v1.32.0'},
            'paths': {item: {'patch': patch}},
            'components': {'schemas': schemas}}


def age(created):
    try:
        t = time.mktime(time.strptime(created, '%Y-%m-%dT%H:%M:%SZ'))
        s = max(0, int(time.time() - (t - time.timezone)))
    except (TypeError, ValueError):
        return '<unknown>'
    if s < 120:
        return '%ds' % s
    if s < 7200:
        return '%dm' % (s // 60)
    return '%dh' % (s // 3600)


def table(res, objs, rv, include):
    """meta.k8s.io/v1 Table, what `kubectl get` prints."""
    name_col = {'name': 'Name', 'type': 'string', 'format': 'name',
                'description': 'Name must be unique within a namespace.',
                'priority': 0}
    age_col = {'name': 'Age', 'type': 'string', 'format': '',
               'description': 'CreationTimestamp of the object.',
               'priority': 0}
    if res is EVENTS:
        return event_table(objs, rv, include)
    if res is LEASES:
        cols = [name_col, {'name': 'Holder', 'type': 'string', 'format': '',
                           'description': 'holderIdentity', 'priority': 0},
                age_col]
    else:
        cols = [name_col, {'name': 'Data', 'type': 'string', 'format': '',
                           'description': 'Number of keys', 'priority': 0},
                age_col]
    rows = []
    for o in objs:
        m = o['metadata']
        if res is LEASES:
            mid = (o.get('spec') or {}).get('holderIdentity', '')
        else:
            mid = len(o.get('data') or {}) + len(o.get('binaryData') or {})
        row = {'cells': [m.get('name'), mid,
                         age(m.get('creationTimestamp'))]}
        if include == 'Object':
            row['object'] = o
        elif include != 'None':
            row['object'] = {'kind': 'PartialObjectMetadata',
                             'apiVersion': 'meta.k8s.io/v1', 'metadata': m}
        rows.append(row)
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1',
            'metadata': {'resourceVersion': rv}, 'columnDefinitions': cols,
            'rows': rows}


def event_table(objs, rv, include):
    """kubectl get events: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE."""
    def col(name, desc):
        return {'name': name, 'type': 'string', 'format': '',
                'description': desc, 'priority': 0}
    cols = [col('Last Seen', 'lastTimestamp'), col('Type', 'type'),
            col('Reason', 'reason'), col('Object', 'involvedObject'),
            col('Message', 'message')]
    rows = []
    for o in objs:
        inv = o.get('involvedObject') or {}
        when = (o.get('lastTimestamp') or o.get('eventTime') or
                o['metadata'].get('creationTimestamp') or '')
        row = {'cells': [age(when[:19] + 'Z' if when else None),
                         o.get('type', ''), o.get('reason', ''),
                         '%s/%s' % ((inv.get('kind') or '').lower(),
                                    inv.get('name', '')),
                         o.get('message', '')]}
        if include == 'Object':
            row['object'] = o
        elif include != 'None':
            row['object'] = {'kind': 'PartialObjectMetadata',
                             'apiVersion': 'meta.k8s.io/v1',
                             'metadata': o['metadata']}
        rows.append(row)
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1',
            'metadata': {'resourceVersion': rv}, 'columnDefinitions': cols,
            'rows': rows}


# --- HTTP -------------------------------------------------------------------

class Response:
    def __init__(self, code, body, ctype='application/json', headers=()):
        self.code = code
        self.body = body if isinstance(body, bytes) else dumps(body)
        self.ctype = ctype
        self.headers = list(headers)


class Gone(Exception):
    """The connection is closed or reset; nothing more to send."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'kube-emulator'
    sys_version = ''
    timeout = 300           # idle keep-alive connections

    def log_message(self, fmt, *args):
        log.debug('%s %s', self.client_address[0], fmt % args)

    def log_request(self, code='-', size='-'):
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    @property
    def emu(self):
        return self.server.emulator

    @property
    def state(self):
        return self.server.emulator.state

    # low level

    def read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b'\r\n', b'\n',
                                                            b''):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, 'RequestEntityTooLarge',
                                   'Request entity too large')
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b''.join(parts)
        length = int(self.headers.get('Content-Length') or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, 'RequestEntityTooLarge',
                           'Request entity too large: limit is 3145728')
        return self.rfile.read(length) if length else b''

    def send(self, resp, length=None):
        self.send_response(resp.code)
        self.send_header('Content-Type', resp.ctype)
        self.send_header('Cache-Control', 'no-cache, private')
        self.send_header('Audit-Id', str(uuid.uuid4()))
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header('Content-Length',
                         str(len(resp.body) if length is None else length))
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(resp.body)

    def reset(self, note):
        """Closes the connection with a TCP RST: no answer at all."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            sock = socket.socket(fileno=self.connection.detach())
            sock.close()
        except OSError:
            pass
        self.close_connection = True
        raise Gone(note)

    def client_gone(self, timeout):
        """True when the peer closed (or sent something) while we wait."""
        try:
            r, _, _ = select.select([self.connection], [], [], timeout)
        except (OSError, ValueError):
            return True
        return bool(r)

    def pause(self, seconds):
        """Sleeps in this connection's thread; ends early on shutdown."""
        deadline = time.monotonic() + seconds
        with self.state.cond:
            while not self.state.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.state.cond.wait(left)
        raise Gone('shutdown')

    # entry point

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path.rstrip('/') or '/'
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if path.startswith('/_emulator'):
            return self.admin(path, query)
        if self.server.admin_only:
            return self.send(Response(404, {'error': 'admin port: only '
                                            '/_emulator/ is served'}))
        entry = {'time': time.time(), 'method': self.command, 'path': path,
                 'query': url.query, 'code': None,
                 'user_agent': self.headers.get('User-Agent', ''),
                 'content_type': self.headers.get('Content-Type', ''),
                 'accept': self.headers.get('Accept', '')}
        self.state.log_start(entry)
        code, note = 0, None
        try:
            code, note = self.serve(path, query, entry)
        except Gone as e:
            code = entry.get('code') or 0
            note = e.args[0] if e.args else 'client went away'
        except (OSError, ssl.SSLError) as e:
            self.close_connection = True
            note = 'connection error: %s' % e
        finally:
            self.state.log_end(entry, code, note)
            log.info('%s %s %s %s %s%s', self.client_address[0],
                     self.command, self.path, code or '-',
                     entry.get('user', '-'),
                     ' fault=' + note if note else '')

    def serve(self, path, query, entry):
        """Returns (HTTP code sent, fault note)."""
        try:
            raw = self.read_body()
        except (ApiError, ValueError) as e:
            self.close_connection = True
            err = e if isinstance(e, ApiError) else \
                bad_request('malformed chunked body')
            self.send(Response(err.code, err.status()))
            return err.code, None
        if raw:
            try:
                entry['body'] = parse_body(
                    raw, self.headers.get('Content-Type', ''))
            except ApiError:
                entry['body'] = raw[:65536].decode('utf-8', 'replace')
        delay, fault = self.state.take_faults(self.command, self.path)
        notes = []
        if delay:
            notes.append('latency %dms' % (delay * 1000))
            self.pause(delay)
        if fault:
            notes.append('%s#%d' % (fault['kind'], fault['id']))
        note = ' '.join(notes) or None
        if fault:
            if fault['kind'] == 'stall' and not fault['after']:
                self.stall(fault, note)
                fault = None
            elif not fault['after']:
                return self.inject(fault, None, entry), note
        try:
            resp = self.route(path, query, raw, entry)
        except ApiError as e:
            resp = Response(e.code, e.status(), headers=e.headers)
        except (Gone, OSError):
            raise
        except Exception as e:      # an emulator bug: say so, keep serving
            log.exception('%s %s', self.command, self.path)
            resp = Response(500, ApiError(500, 'InternalError', 'emulator '
                                          'error: %r' % e).status())
        if resp is None:            # a watch, already streamed
            return entry.get('code') or 200, note
        if fault and fault['kind'] == 'stall':
            self.stall(fault, note)
        elif fault:
            return self.inject(fault, resp, entry), note
        self.send(resp)
        return resp.code, note

    # faults

    def stall(self, fault, note):
        """Holds the request until the fault is cleared or the peer goes."""
        with self.state.cond:
            while not fault['_released']:
                if self.state.closing:
                    raise Gone(note + ' (shutdown)')
                self.state.cond.wait(0.1)
                if self.client_gone(0):
                    self.close_connection = True
                    raise Gone(note + ' (client went away)')

    def inject(self, fault, resp, entry):
        """Answers (or not) as the fault says; returns the code sent."""
        kind = fault['kind']
        note = '%s#%d' % (kind, fault['id'])
        if kind == 'reset':
            self.reset(note)
        if kind == 'status':
            code = int(fault.get('code', 500))
            headers = []
            d = {}
            if fault.get('retry_after') is not None:
                headers.append(('Retry-After', str(fault['retry_after'])))
                d['retryAfterSeconds'] = int(fault['retry_after'])
            if 'body' in fault:
                r = Response(code, str(fault['body']).encode(),
                             fault.get('content_type', 'text/plain'),
                             headers)
            elif code == 409 and 'reason' not in fault \
                    and 'message' not in fault:
                r = Response(code, self.conflict_status(entry).status(),
                             headers=headers)
            else:
                err = ApiError(code, fault.get('reason',
                                               REASONS.get(code, '')),
                               fault.get('message', MESSAGES.get(
                                   code, 'injected fault')),
                               d or None)
                r = Response(code, err.status(), headers=headers)
            self.send(r)
            return code
        if kind == 'html':
            code = int(fault.get('code', 502))
            self.send(Response(code, HTML_502, 'text/html'))
            return code
        if kind == 'malformed':
            if resp is None:
                resp = Response(200, {'kind': 'Status', 'apiVersion': 'v1',
                                      'metadata': {}, 'status': 'Success'})
            body = resp.body.rstrip(b'\n')
            cut = body[:max(1, len(body) // 2)]
            if fault.get('short'):
                self.close_connection = True
                self.send(Response(200, cut), length=len(body))
                self.reset(note)
            self.send(Response(200, cut))
            return 200
        if kind == 'oversized':
            self.send_oversized(float(fault.get('mib', 8)),
                                bool(fault.get('chunked')))
            return 200
        raise AssertionError(kind)

    def conflict_status(self, entry):
        """The 409 the real server would give this request: AlreadyExists
        for a create, Conflict (a stale resourceVersion) otherwise."""
        target = object_of(self.path)
        if target is None:
            return ApiError(409, 'Conflict', 'Operation cannot be fulfilled:'
                            ' the object has been modified; please apply '
                            'your changes to the latest version and try '
                            'again', {})
        res, _, name = target
        if self.command == 'POST':
            body = entry.get('body')
            meta = body.get('metadata') if isinstance(body, dict) else None
            return already_exists(res, (meta or {}).get('name'))
        if name is None:
            query = {k: v[-1] for k, v in
                     parse_qs(urlsplit(self.path).query).items()}
            name = selected_name(query)
        return conflict(res, name)

    def send_oversized(self, mib, chunked):
        size = max(64, int(mib * 1024 * 1024))
        head = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":' \
               b'{"name":"oversized"},"data":{"pad":"'
        tail = b'"}}\n'
        pad = size - len(head) - len(tail)
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Content-Length', str(size))
        self.end_headers()

        def out(data):
            if chunked:
                self.wfile.write(b'%x\r\n' % len(data) + data + b'\r\n')
            else:
                self.wfile.write(data)
        out(head)
        block = b'x' * 65536
        while pad > 0:
            out(block[:pad])
            pad -= len(block)
        out(tail)
        if chunked:
            self.wfile.write(b'0\r\n\r\n')

    # authentication and authorisation

    def authenticate(self):
        auth = self.headers.get('Authorization', '')
        if auth.startswith('Bearer '):
            with self.state.cond:
                user = self.state.tokens.get(auth[7:].strip())
            if user:
                return user
            raise UNAUTHORIZED
        if auth:
            raise UNAUTHORIZED
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        if cert:
            for rdn in cert.get('subject', ()):
                for k, v in rdn:
                    if k == 'commonName':
                        return v
        raise UNAUTHORIZED

    def authorise(self, user, verb, res, ns, name):
        with self.state.cond:
            for rule in self.state.forbid:
                if rule.get('resource', res.plural) != res.plural:
                    continue
                if rule.get('namespace') not in (None, ns):
                    continue
                if rule.get('name') not in (None, name):
                    continue
                if rule.get('user') not in (None, user):
                    continue
                if verb in rule.get('verbs', VERBS):
                    raise forbidden(res, None if verb == 'create' else name,
                                    user, verb, ns)

    # the Kubernetes API

    def route(self, path, query, raw, entry):
        if path in ('/healthz', '/livez', '/readyz'):
            return Response(200, b'ok', 'text/plain; charset=utf-8')
        if path == '/version':
            return Response(200, KUBE_VERSION)
        user = self.authenticate()
        entry['user'] = user
        method = self.command
        doc = discovery(path, '%s:%d' % self.server.server_address[:2]) \
            or openapi_v3(path)
        if doc is not None:
            if method != 'GET':
                raise method_not_allowed()
            return Response(200, doc)
        parts = [unquote(p) for p in path.split('/')[1:]]
        if parts[:2] == ['api', 'v1']:
            rest, prefix = parts[2:], CONFIGMAPS.prefix
        elif parts[:3] == ['apis', LEASES.group, LEASES.version]:
            rest, prefix = parts[3:], LEASES.prefix
        else:
            raise not_found_path()
        watch_path = bool(rest) and rest[0] == 'watch'
        if watch_path:
            rest = rest[1:]
        ns = None
        if prefix == CONFIGMAPS.prefix and rest[:1] == ['namespaces'] \
                and len(rest) <= 2:
            return self.namespaces(rest[1] if len(rest) == 2 else None)
        if len(rest) >= 3 and rest[0] == 'namespaces':
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            raise not_found_path()
        res = RESOURCES.get(rest[0])
        if res is None or res.prefix != prefix:
            raise not_found_path()
        name = rest[1] if len(rest) == 2 else None
        if name is not None and ns is None:
            raise not_found_path()
        watch = watch_path or query.get('watch') in ('1', 'true', 'True')
        if method == 'GET' and name is not None and watch:
            query['fieldSelector'] = 'metadata.name=' + name
        # RBAC sees a single-object list or watch as that object
        named = name or selected_name(query)
        if method == 'GET' and watch:
            self.authorise(user, 'watch', res, ns, named)
            return self.watch(res, ns, query, entry)
        if name is None:
            if method == 'GET':
                self.authorise(user, 'list', res, ns, named)
                return self.list(res, ns, query)
            if method == 'POST' and ns is not None:
                body = parse_body(raw, self.headers.get('Content-Type', ''))
                bname = (body.get('metadata') or {}).get('name') \
                    if isinstance(body, dict) else None
                self.authorise(user, 'create', res, ns, bname)
                return self.create(res, ns, body, query)
            raise method_not_allowed()
        verb = {'GET': 'get', 'PUT': 'update', 'PATCH': 'patch',
                'DELETE': 'delete'}.get(method)
        if verb is None:
            raise method_not_allowed()
        self.authorise(user, verb, res, ns, name)
        if method == 'GET':
            return self.get(res, ns, name, query)
        if method == 'PUT':
            return self.update(res, ns, name, parse_body(
                raw, self.headers.get('Content-Type', '')), query)
        if method == 'PATCH':
            return self.patch(res, ns, name, raw, query)
        return self.delete(res, ns, name, raw, query)

    def wants_table(self):
        return 'as=Table' in self.headers.get('Accept', '')

    def namespaces(self, name):
        if self.command != 'GET':
            raise method_not_allowed()

        def ns_obj(n):
            return {'kind': 'Namespace', 'apiVersion': 'v1',
                    'metadata': {'name': n, 'resourceVersion': '1',
                                 'creationTimestamp': self.emu.started},
                    'spec': {'finalizers': ['kubernetes']},
                    'status': {'phase': 'Active'}}
        if name is not None:
            return Response(200, ns_obj(name))
        with self.state.cond:
            names = sorted({'default'} | {k[1] for k in self.state.objects})
        return Response(200, {'kind': 'NamespaceList', 'apiVersion': 'v1',
                              'metadata': {'resourceVersion': '1'},
                              'items': [ns_obj(n) for n in names]})

    def get(self, res, ns, name, query):
        with self.state.cond:
            obj = copy.deepcopy(self.state.objects.get(
                (res.plural, ns, name)))
            rv = str(self.state.rv)
        if obj is None:
            raise not_found(res, name)
        if self.wants_table():
            return Response(200, table(res, [obj], rv,
                                       query.get('includeObject')))
        return Response(200, obj)

    def matching(self, res, ns, query):
        """Objects of res in ns (all if None) passing fieldSelector."""
        sel = parse_selector(query.get('fieldSelector', ''), 'field')
        labels = parse_selector(query.get('labelSelector', ''), 'label')
        out = []
        for (plural, ons, name), obj in sorted(self.state.objects.items()):
            if plural == res.plural and (ns is None or ons == ns) \
                    and selected(obj, sel, labels):
                out.append(obj)
        return out, sel, labels

    def list(self, res, ns, query):
        with self.state.cond:
            objs, _, _ = self.matching(res, ns, query)
            objs = copy.deepcopy(objs)
            rv = str(self.state.rv)
        if self.wants_table():
            return Response(200, table(res, objs, rv,
                                       query.get('includeObject')))
        return Response(200, {'kind': res.kind + 'List',
                              'apiVersion': res.api_version,
                              'metadata': {'resourceVersion': rv},
                              'items': objs})

    def decode(self, res, body, query):
        unknown = []
        obj = normalise(res, body, unknown)
        headers = []
        if unknown:
            if query.get('fieldValidation') == 'Strict':
                raise bad_request('strict decoding error: ' + ', '.join(
                    'unknown field "%s"' % u for u in unknown))
            if query.get('fieldValidation') != 'Ignore':
                headers = [('Warning', '299 - "unknown field \\"%s\\""' % u)
                           for u in unknown]
        return obj, headers

    def create(self, res, ns, body, query):
        obj, headers = self.decode(res, body, query)
        meta = obj['metadata']
        if (meta.get('namespace') or ns) != ns:
            raise bad_request('the namespace of the provided object does not'
                              ' match the namespace sent on the request')
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = meta['generateName'] + ''.join(
                secrets.choice('bcdfghjklmnpqrstvwxz2456789')
                for _ in range(5))
        meta['namespace'] = ns
        validate(res, obj)
        if meta.get('resourceVersion'):
            raise ApiError(500, '', 'resourceVersion should not be set on '
                           'objects to be created')
        name = meta['name']
        meta['namespace'] = ns
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now_rfc3339()
        meta.pop('generation', None)
        meta.pop('deletionTimestamp', None)
        obj['metadata'] = ordered_meta(meta)
        with self.state.cond:
            if (res.plural, ns, name) in self.state.objects:
                raise already_exists(res, name)
            if 'dryRun' in query:
                obj['metadata']['resourceVersion'] = str(self.state.rv)
            else:
                obj = self.state.commit(res, ns, name, obj, 'ADDED')
            obj = copy.deepcopy(obj)
        return Response(201, obj, headers=headers)

    def update(self, res, ns, name, body, query, patched=False):
        obj, headers = self.decode(res, body, query)
        meta = obj['metadata']
        if (meta.get('namespace') or ns) != ns:
            raise bad_request('the namespace of the provided object does not'
                              ' match the namespace sent on the request')
        if meta.get('name', '') != name:
            raise bad_request('the name of the object (%s) does not match '
                              'the name on the URL (%s)'
                              % (meta.get('name', ''), name))
        meta['namespace'] = ns
        validate(res, obj)
        with self.state.cond:
            old = self.state.objects.get((res.plural, ns, name))
            if old is None:
                if not res.create_on_update or patched:
                    raise not_found(res, name)
                if meta.get('uid'):
                    raise conflict(res, name, 'Precondition failed: UID in '
                                   'precondition: %s, UID in object meta: '
                                   % meta['uid'])
                meta.pop('resourceVersion', None)
                meta['uid'] = str(uuid.uuid4())
                meta['creationTimestamp'] = now_rfc3339()
                obj['metadata'] = ordered_meta(meta)
                if 'dryRun' not in query:
                    obj = self.state.commit(res, ns, name, obj, 'ADDED')
                return Response(201, copy.deepcopy(obj), headers=headers)
            old_meta = old['metadata']
            if meta.get('uid') and meta['uid'] != old_meta['uid']:
                raise conflict(res, name, 'Precondition failed: UID in '
                               'precondition: %s, UID in object meta: %s'
                               % (meta['uid'], old_meta['uid']))
            rv = meta.get('resourceVersion')
            if not rv:
                if not res.unconditional_update:
                    raise invalid(res, name, [(
                        'metadata.resourceVersion',
                        'Invalid value: 0x0: must be specified for an '
                        'update')])
            elif rv != old_meta['resourceVersion']:
                if not rv.isdigit():
                    raise bad_request('invalid resource version: %s' % rv)
                raise conflict(res, name)
            if old.get('immutable') and any(
                    obj.get(k) != old.get(k)
                    for k in ('data', 'binaryData', 'immutable')):
                raise invalid(res, name, [('data', 'Forbidden: field is '
                                           'immutable when `immutable` is '
                                           'set')])
            for key in ('uid', 'creationTimestamp', 'resourceVersion'):
                meta[key] = old_meta[key]
            obj['metadata'] = ordered_meta(meta)
            if obj == old or 'dryRun' in query:
                return Response(200, copy.deepcopy(old if obj == old
                                                   else obj),
                                headers=headers)
            obj = self.state.commit(res, ns, name, obj, 'MODIFIED')
            return Response(200, copy.deepcopy(obj), headers=headers)

    def patch(self, res, ns, name, raw, query):
        ctype = self.headers.get('Content-Type', '').split(';')[0].strip()
        patch = parse_json(raw)
        with self.state.cond:      # an RLock: update() takes it again
            return self.patch_locked(res, ns, name, ctype, patch, query)

    def patch_locked(self, res, ns, name, ctype, patch, query):
        old = copy.deepcopy(self.state.objects.get((res.plural, ns, name)))
        if old is None:
            raise not_found(res, name)
        try:
            if ctype == 'application/merge-patch+json':
                new = merge_patch(old, patch)
            elif ctype == 'application/strategic-merge-patch+json':
                new = merge_patch(old, patch, strategic=True)
            elif ctype == 'application/json-patch+json':
                new = json_patch(old, patch)
            else:
                raise ApiError(415, 'UnsupportedMediaType', 'the body of the'
                               ' request was in an unknown format - accepted'
                               ' media types include: application/json-patch'
                               '+json, application/merge-patch+json, '
                               'application/strategic-merge-patch+json')
        except ValueError as e:
            raise ApiError(422, 'Invalid', str(e))
        if not isinstance(new, dict):
            raise bad_request('the patch did not produce an object')
        meta = new.setdefault('metadata', {})
        if not isinstance(meta, dict):
            raise bad_request('metadata must be an object')
        # the patch may carry a resourceVersion precondition; else the
        # current one applies and the update is unconditional
        if not meta.get('resourceVersion'):
            meta['resourceVersion'] = old['metadata']['resourceVersion']
        return self.update(res, ns, name, new, query, patched=True)

    def delete(self, res, ns, name, raw, query):
        opts = parse_body(raw, self.headers.get('Content-Type', '')) \
            if raw.strip() else {}
        pre = (opts.get('preconditions') or {}) if isinstance(opts, dict) \
            else {}
        with self.state.cond:
            old = self.state.objects.get((res.plural, ns, name))
            if old is None:
                raise not_found(res, name)
            m = old['metadata']
            if pre.get('uid') and pre['uid'] != m['uid']:
                raise conflict(res, name, 'Precondition failed: UID in '
                               'precondition: %s, UID in object meta: %s'
                               % (pre['uid'], m['uid']))
            if pre.get('resourceVersion') and \
                    pre['resourceVersion'] != m['resourceVersion']:
                raise conflict(res, name, 'Precondition failed: '
                               'ResourceVersion in precondition: %s, '
                               'ResourceVersion in object meta: %s'
                               % (pre['resourceVersion'],
                                  m['resourceVersion']))
            uid = m['uid']
            if 'dryRun' not in query:
                self.state.commit(res, ns, name, None, 'DELETED')
        d = details(res, name)
        d['uid'] = uid
        return Response(200, {'kind': 'Status', 'apiVersion': 'v1',
                              'metadata': {}, 'status': 'Success',
                              'details': d})

    # watch

    def watch(self, res, ns, query, entry):
        """Streams watch events as the watch cache does: ADDED for the
        current objects when no resourceVersion is given; ERROR 410 for a
        compacted one; a 504 after waiting for one the store has not
        reached; BOOKMARKs when asked for; the end after timeoutSeconds
        (else a random 1 to 2 times min_request_timeout)."""
        state = self.state
        rv_param = query.get('resourceVersion', '')
        timeout = query.get('timeoutSeconds')
        bookmarks = query.get('allowWatchBookmarks') in ('1', 'true', 'True')
        try:
            start = int(rv_param) if rv_param not in ('', '0') else None
            timeout = float(timeout) if timeout else None
        except ValueError:
            raise bad_request('invalid value for watch parameters')
        log = entry['watch'] = {'resourceVersion': rv_param,
                                'allowWatchBookmarks': bookmarks,
                                'timeoutSeconds': timeout, 'events': [],
                                'end': None}
        with state.cond:
            if timeout is None:
                timeout = state.min_request_timeout * (1 + random.random())
            deadline = time.monotonic() + timeout
            if start is not None and start > state.rv:
                wait_until = time.monotonic() + state.too_large_wait
                while state.rv < start and not state.closing:
                    left = wait_until - time.monotonic()
                    if left <= 0:
                        break
                    state.cond.wait(min(left, 0.25))
                    if self.client_gone(0):
                        self.close_connection = True
                        log['end'] = 'client'
                        raise Gone('watch ended by client')
                if state.rv < start:
                    err = too_large_rv(start, state.rv)
                    log['end'] = 'too large'
                    entry['code'] = 504
                    resp = Response(504, err.status(),
                                    headers=[('Retry-After', '1')])
                    self.send(resp)
                    return None
            objs, sel, labels = self.matching(res, ns, query)
            generation = state.generation
            epoch = state.watch_epoch
            expired = None
            if start is None:
                initial = [('ADDED', copy.deepcopy(o)) for o in objs]
                cursor = state.rv
            else:
                initial = []
                cursor = start
                if start < state.compacted:
                    expired = 'too old resource version: %d (%d)' \
                        % (start, state.compacted + 1)
            mode = state.watch_expired
            interval = state.bookmark_interval
        if expired and mode == 'http':
            err = ApiError(410, 'Expired', expired)
            self.send(Response(410, err.status()))
            entry['code'] = 410
            log['end'] = 'expired'
            return None
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Cache-Control', 'no-cache, private')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        entry['code'] = 200

        as_table = self.wants_table()

        def emit(kind, obj):
            if len(log['events']) < 1000:
                log['events'].append('%s %s' % (kind, obj.get(
                    'metadata', {}).get('resourceVersion', '')))
            if as_table and kind not in ('ERROR', 'BOOKMARK'):
                obj = table(res, [obj], obj['metadata'].get(
                    'resourceVersion', ''), query.get('includeObject'))
            data = dumps({'type': kind, 'object': obj})
            self.wfile.write(b'%x\r\n' % len(data) + data + b'\r\n')

        # client-go's watch cache: every interval, and once 2 s before
        # the deadline
        pre_timeout = deadline - 2.0

        def next_bookmark(now):
            t = now + interval
            return pre_timeout if now < pre_timeout < t else t

        if expired:
            emit('ERROR', ApiError(410, 'Expired', expired).status())
            log['end'] = 'expired'
            self.wfile.write(b'0\r\n\r\n')
            return None
        for kind, obj in initial:
            emit(kind, obj)
        bookmark_at = next_bookmark(time.monotonic()) if bookmarks else None
        while True:
            batch, stop, mark = [], None, None
            with state.cond:
                while True:
                    if state.closing or state.generation != generation:
                        stop = 'closing'
                        break
                    if state.watch_epoch != epoch:
                        stop = 'closed'
                        break
                    if cursor < state.compacted:
                        stop = 'too old resource version: %d (%d)' \
                            % (cursor, state.compacted + 1)
                        break
                    if state.rv > cursor:
                        for ev in state.events:
                            if ev[0] > cursor and ev[2] == res.plural and \
                                    (ns is None or ev[3] == ns) and \
                                    selected(ev[5], sel, labels):
                                batch.append((ev[1], ev[5]))
                        cursor = state.rv
                        if batch:
                            break
                    now = time.monotonic()
                    if now >= deadline:
                        stop = 'timeout'
                        break
                    if bookmark_at is not None and now >= bookmark_at:
                        mark = {'kind': res.kind,
                                'apiVersion': res.api_version,
                                'metadata': {'resourceVersion': str(cursor)}}
                        bookmark_at = next_bookmark(now)
                        break
                    wake = min(deadline, bookmark_at or deadline)
                    state.cond.wait(min(0.25, max(0.0, wake - now)))
                    if self.client_gone(0):
                        self.close_connection = True
                        log['end'] = 'client'
                        raise Gone('watch ended by client')
            for kind, obj in batch:
                emit(kind, obj)
            if mark:
                emit('BOOKMARK', mark)
            if stop:
                log['end'] = 'expired' if stop.startswith('too old') \
                    else stop
                if stop.startswith('too old'):
                    emit('ERROR', ApiError(410, 'Expired', stop).status())
                if stop == 'closing':
                    self.close_connection = True
                self.wfile.write(b'0\r\n\r\n')
                return None

    # admin API

    def admin(self, path, query):
        try:
            raw = self.read_body()
            body = json.loads(raw) if raw.strip() else None
            code, out = self.emu.admin(self.command, path, query, body)
        except (ValueError, TypeError, KeyError) as e:
            code, out = 400, {'error': str(e)}
        except ApiError as e:
            code, out = e.code, {'error': e.message}
        log.info('admin %s %s %d', self.command, self.path, code)
        self.send(Response(code, out))


def object_of(target):
    """(resource, namespace, name) a request target names, or None."""
    parts = [unquote(p) for p in
             urlsplit(target).path.rstrip('/').split('/')[1:]]
    if parts[:2] == ['api', 'v1']:
        rest = parts[2:]
    elif parts[:3] == ['apis', LEASES.group, LEASES.version]:
        rest = parts[3:]
    else:
        return None
    if rest[:1] == ['watch']:
        rest = rest[1:]
    ns = None
    if len(rest) >= 3 and rest[0] == 'namespaces':
        ns, rest = rest[1], rest[2:]
    res = RESOURCES.get(rest[0]) if rest else None
    if res is None:
        return None
    return res, ns, rest[1] if len(rest) > 1 else None


def method_not_allowed():
    return ApiError(405, 'MethodNotAllowed', 'the server does not allow this'
                    ' method on the requested resource', {})


def not_found_path():
    return ApiError(404, 'NotFound', 'the server could not find the '
                    'requested resource', {})


def parse_body(raw, ctype):
    """JSON or Kubernetes protobuf, to a JSON value.  As the API server
    does: no Content-Type is JSON, one it does not serve is 415.  (YAML
    is read when it is JSON, the only YAML the emulator parses.)"""
    media = ctype.split(';')[0].strip().lower()
    if media == 'application/vnd.kubernetes.protobuf':
        return decode_protobuf(raw)
    if media == 'application/yaml':
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(415, 'UnsupportedMediaType', 'kube_emulator: '
                           'application/yaml bodies must be JSON here')
    if media not in ('', 'application/json'):
        raise unsupported_media_type()
    return parse_json(raw)


def parse_json(raw):
    try:
        return json.loads(raw)
    except ValueError as e:
        raise bad_request('the body of the request could not be decoded as '
                          'JSON: %s' % e)


def parse_selector(text, what):
    """Equality selectors only: a=b, a==b, a!=b."""
    out = []
    for term in filter(None, (t.strip() for t in text.split(','))):
        m = re.match(r'^([^=!]+?)\s*(==|=|!=)\s*(.*)$', term)
        if not m:
            raise bad_request('unable to parse requirement: %s selector '
                              '"%s"' % (what, term))
        out.append((m.group(1), m.group(2) != '!=', m.group(3)))
    return out


def selected_name(query):
    """NAME of a fieldSelector metadata.name=NAME, else None."""
    for key, eq, value in parse_selector(query.get('fieldSelector', ''),
                                         'field'):
        if key == 'metadata.name' and eq:
            return value
    return None


def selected(obj, fields, labels):
    meta = obj['metadata']
    for key, eq, value in fields:
        if key == 'metadata.name':
            have = meta.get('name')
        elif key == 'metadata.namespace':
            have = meta.get('namespace')
        else:
            raise bad_request('"%s" is not a known field selector: only '
                              '"metadata.name", "metadata.namespace"' % key)
        if (have == value) != eq:
            return False
    for key, eq, value in labels:
        if ((meta.get('labels') or {}).get(key) == value) != eq:
            return False
    return True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, emulator, ssl_ctx, admin_only=False):
        if ':' in addr[0]:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self.ssl_ctx = ssl_ctx
        self.admin_only = admin_only
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        """TLS handshake in the connection's own thread, not the acceptor."""
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log.info('%s TLS handshake failed: %s', client_address[0], e)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError) as e:
            log.debug('%s connection error: %s', client_address[0], e)
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --- The emulator -----------------------------------------------------------

class Emulator:
    """Import and drive in-process, or run as a command."""

    def __init__(self, directory, host='127.0.0.1', port=0, tokens=(),
                 admin_port=None, user=DEFAULT_USER, history=1000):
        self.dir = os.path.abspath(directory)
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.user = user
        self.extra_tokens = list(tokens)
        self.history = history
        self.started = now_rfc3339()
        self.server = None
        self.admin_server = None
        self.threads = []

    def setup(self):
        """Certificates, token, listening sockets, kubeconfig, port file."""
        os.makedirs(self.dir, exist_ok=True)
        for f in ('port', 'admin_port'):
            try:
                os.unlink(os.path.join(self.dir, f))
            except FileNotFoundError:
                pass
        make_certs(self.dir, self.host)
        token_file = os.path.join(self.dir, 'token')
        token = ''
        if os.path.exists(token_file):
            with open(token_file) as f:
                token = f.read().strip()
        if not token:
            token = 'kle-' + secrets.token_urlsafe(24)
            write_file(token_file, token + '\n', 0o600)
        self.token = token
        tokens = {token: self.user}
        for t in self.extra_tokens:
            tokens[t] = self.user
        self.state = State(tokens, self.history)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, 'server.crt'),
                            os.path.join(self.dir, 'server.key'))
        ctx.load_verify_locations(os.path.join(self.dir, 'ca.crt'))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(['http/1.1'])
        self.server = Server((self.host, self.port), self, ctx)
        self.port = self.server.server_address[1]
        if self.admin_port is not None:
            self.admin_server = Server((self.host, self.admin_port), self,
                                       None, admin_only=True)
            self.admin_port = self.admin_server.server_address[1]
        host = '[%s]' % self.host if ':' in self.host else self.host
        if host in ('0.0.0.0', '[::]'):
            host = '127.0.0.1'
        self.url = 'https://%s:%d' % (host, self.port)
        write_file(os.path.join(self.dir, 'kubeconfig'),
                   kubeconfig_text(self.url, token), 0o600)
        if self.admin_server:
            write_file(os.path.join(self.dir, 'admin_port'),
                       '%d\n' % self.admin_port)
        write_file(os.path.join(self.dir, 'port'), '%d\n' % self.port)
        log.info('listening on %s (admin %s)', self.url,
                 'port %d' % self.admin_port if self.admin_server
                 else 'under /_emulator/')

    def start(self):
        """Serves in background threads; for in-process use."""
        self.setup()
        for srv in filter(None, (self.server, self.admin_server)):
            t = threading.Thread(target=srv.serve_forever,
                                 kwargs={'poll_interval': 0.2}, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.state.close()
        for srv in filter(None, (self.server, self.admin_server)):
            srv.shutdown()
            srv.server_close()
        for f in ('port', 'admin_port'):
            try:
                os.unlink(os.path.join(self.dir, f))
            except FileNotFoundError:
                pass

    # admin API

    def admin(self, method, path, query, body):
        st = self.state
        parts = [unquote(p) for p in path.split('/')[2:]]
        what = parts[0] if parts else ''
        if what == 'reset' and method == 'POST':
            st.reset()
            return 200, {'reset': True}
        if what == 'compact' and method == 'POST':
            st.compact()
            return 200, {'compacted': st.rv}
        if what == 'close-watches' and method == 'POST':
            with st.cond:
                st.watch_epoch += 1
                st.cond.notify_all()
            return 200, {'closed': True}
        if what == 'config':
            if method == 'POST':
                body = body or {}
                with st.cond:
                    if 'history' in body:
                        st.history_size = max(1, int(body['history']))
                    if 'watch_expired' in body:
                        if body['watch_expired'] not in ('event', 'http'):
                            raise ValueError('watch_expired: event | http')
                        st.watch_expired = body['watch_expired']
                    for key, low in (('bookmark_interval', 0.05),
                                     ('too_large_wait', 0.0),
                                     ('min_request_timeout', 0.05)):
                        if key in body:
                            v = float(body[key])
                            if v < low:
                                raise ValueError('%s: at least %s'
                                                 % (key, low))
                            setattr(st, key, v)
            with st.cond:
                return 200, {'history': st.history_size,
                             'watch_expired': st.watch_expired,
                             'bookmark_interval': st.bookmark_interval,
                             'too_large_wait': st.too_large_wait,
                             'min_request_timeout': st.min_request_timeout,
                             'resourceVersion': str(st.rv),
                             'url': self.url, 'token': self.token}
        if what == 'faults':
            if method == 'GET':
                with st.cond:
                    return 200, {'faults': [public_fault(f)
                                            for f in st.faults]}
            if method == 'POST':
                specs = body if isinstance(body, list) else [body]
                return 200, {'faults': [st.add_fault(s) for s in specs]}
            if method == 'DELETE':
                if len(parts) == 2:
                    if not st.remove_faults(int(parts[1])):
                        return 404, {'error': 'no fault %s' % parts[1]}
                else:
                    st.remove_faults()
                return 200, {'cleared': True}
        if what == 'requests':
            if method == 'GET':
                since = int(query.get('since', 0))
                with st.cond:       # a watch's record grows meanwhile
                    return 200, {'requests': [copy.deepcopy(e)
                                              for e in st.requests
                                              if e['seq'] > since]}
            if method == 'DELETE':
                with st.cond:
                    st.requests = []
                return 200, {'cleared': True}
        if what == 'forbid':
            if method == 'GET':
                with st.cond:
                    return 200, {'forbid': list(st.forbid)}
            if method == 'POST':
                rules = body if isinstance(body, list) else [body]
                for r in rules:
                    if not isinstance(r, dict) or \
                            not set(r.get('verbs', VERBS)) <= set(VERBS):
                        raise ValueError('a rule is {resource, namespace, '
                                         'name, user, verbs: %s}' % VERBS)
                with st.cond:
                    st.forbid.extend(rules)
                return 200, {'forbid': st.forbid}
            if method == 'DELETE':
                with st.cond:
                    st.forbid = []
                return 200, {'cleared': True}
        if what == 'tokens':
            if method == 'GET':
                with st.cond:
                    return 200, {'tokens': dict(st.tokens)}
            if method == 'POST':
                if not isinstance(body, dict) or \
                        not isinstance(body.get('token'), str):
                    raise ValueError('expected {"token": T, "user": U}')
                with st.cond:
                    st.tokens[body['token']] = body.get('user', self.user)
                return 200, {'added': body['token']}
            if method == 'DELETE' and len(parts) == 2:
                with st.cond:
                    gone = st.tokens.pop(parts[1], None)
                return (200, {'revoked': parts[1]}) if gone else \
                    (404, {'error': 'unknown token'})
        if what == 'objects':
            return self.admin_objects(method, parts[1:], body)
        return 404, {'error': 'no admin endpoint %s %s' % (method, path)}

    def admin_objects(self, method, parts, body):
        st = self.state
        if not parts and method == 'GET':
            with st.cond:
                return 200, {'items': copy.deepcopy(list(
                    st.objects.values()))}
        if len(parts) != 3 or parts[0] not in RESOURCES:
            return 404, {'error': 'use /_emulator/objects/{leases|'
                         'configmaps}/NAMESPACE/NAME'}
        res, ns, name = RESOURCES[parts[0]], parts[1], parts[2]
        key = (res.plural, ns, name)
        with st.cond:
            old = st.objects.get(key)
            if method == 'GET':
                if old is None:
                    return 404, {'error': 'not found'}
                return 200, copy.deepcopy(old)
            if method == 'DELETE':
                if old is None:
                    return 404, {'error': 'not found'}
                st.commit(res, ns, name, None, 'DELETED')
                return 200, {'deleted': name}
            if method == 'PUT':
                # stored as given (no validation): seeds odd records
                if not isinstance(body, dict):
                    raise ValueError('expected an object')
                obj = copy.deepcopy(body)
                obj.setdefault('kind', res.kind)
                obj.setdefault('apiVersion', res.api_version)
                meta = obj.setdefault('metadata', {})
                meta['name'] = name
                meta['namespace'] = ns
                meta.setdefault('uid', old['metadata']['uid'] if old
                                else str(uuid.uuid4()))
                meta.setdefault('creationTimestamp', now_rfc3339())
                obj = st.commit(res, ns, name, obj,
                                 'MODIFIED' if old else 'ADDED')
                return 200, copy.deepcopy(obj)
        return 405, {'error': 'method not allowed'}


# --- A child-process driver for test scripts --------------------------------

class EmulatorProcess:
    """Starts the command in a child process and talks to it.

        with EmulatorProcess(tmpdir) as emu:
            emu.admin('POST', '/_emulator/faults', {...})
    """

    def __init__(self, directory, args=(), wait=20.0):
        self.dir = directory
        self.args = list(args)
        self.wait = wait
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        port_file = os.path.join(self.dir, 'port')
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--dir', self.dir,
             '--port', '0'] + self.args)
        deadline = time.monotonic() + self.wait
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('emulator did not start')
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        with open(os.path.join(self.dir, 'token')) as f:
            self.token = f.read().strip()
        self.url = 'https://127.0.0.1:%d' % self.port
        self.ca = os.path.join(self.dir, 'ca.crt')
        self.kubeconfig = os.path.join(self.dir, 'kubeconfig')
        self.ssl = ssl.create_default_context(cafile=self.ca)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def connection(self, timeout=10, context=None):
        return http.client.HTTPSConnection('127.0.0.1', self.port,
                                           timeout=timeout,
                                           context=context or self.ssl)

    def request(self, method, path, body=None, token=True, headers=None,
                timeout=10):
        """(status, response, parsed JSON or bytes) on a new connection.

        response.body holds the raw bytes."""
        h = dict(headers or {})
        if token is True:
            token = self.token
        if token:
            h['Authorization'] = 'Bearer ' + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else \
                json.dumps(body).encode()
            h.setdefault('Content-Type', 'application/json')
        conn = self.connection(timeout)
        try:
            conn.request(method, path, data, h)
            r = conn.getresponse()
            raw = r.body = r.read()
        finally:
            conn.close()
        try:
            out = json.loads(raw)
        except ValueError:
            out = raw
        return r.status, r, out

    def admin(self, method, path, body=None):
        code, _, out = self.request(method, path, body, token=None)
        return code, out

    def requests(self, since=0, method=None):
        """The request log after seq `since`, only `method`'s if given."""
        code, out = self.admin('GET', '/_emulator/requests?since=%d' % since)
        if code != 200:
            raise RuntimeError('request log: %d %s' % (code, out))
        return [r for r in out['requests']
                if not method or r['method'] == method]

    def last_seq(self):
        """The seq of the last logged request, 0 if none."""
        return max([r['seq'] for r in self.requests()] or [0])


# --- Command line -----------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dir', required=True,
                   help='certificates, token, kubeconfig, port, log')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--admin-port', type=int, default=None,
                   help='also serve /_emulator/ on plain HTTP here')
    p.add_argument('--token', action='extend', nargs='+', default=[],
                   help='more accepted bearer tokens')
    p.add_argument('--user', default=DEFAULT_USER,
                   help='user name of the tokens')
    p.add_argument('--history', type=int, default=1000,
                   help='watch events retained before 410 Expired')
    p.add_argument('--verbose', action='store_true')
    a = p.parse_args(argv)
    os.makedirs(a.dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(a.dir, 'emulator.log'),
        level=logging.DEBUG if a.verbose else logging.INFO,
        format='%(asctime)s.%(msecs)03d %(message)s',
        datefmt='%Y-%m-%dT%H:%M:%S')
    emu = Emulator(a.dir, a.host, a.port, a.token, a.admin_port, a.user,
                   a.history)
    try:
        emu.setup()
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, 'stderr', b'') or b''
        sys.stderr.write('kube_emulator: %s %s\n'
                         % (e, err.decode(errors='replace')))
        return 1

    def on_signal(signum, frame):
        log.info('signal %d: shutting down', signum)
        threading.Thread(target=emu.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if emu.admin_server:
        t = threading.Thread(target=emu.admin_server.serve_forever,
                             kwargs={'poll_interval': 0.2}, daemon=True)
        t.start()
    emu.server.serve_forever(poll_interval=0.2)
    emu.stop()
    log.info('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
