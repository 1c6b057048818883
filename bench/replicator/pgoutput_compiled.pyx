# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""A compiled decoder for pgoutput row changes: a measured prototype, not used by zetl.

Insert, Update and Delete (nearly every message) are decoded in C, one str per text value
straight from the bytes; every other message, and every class, comes from the pure-Python
``zetl_replicator.pgoutput``, which stays the reference and the fallback. Build it outside the
tree and compare it with the pure decoder on the same messages:

    pip install cython
    cp bench/replicator/pgoutput_compiled.pyx /tmp/ && (cd /tmp && cythonize -i -3 pgoutput_compiled.pyx)
    python bench/replicator/decode.py /tmp/pgoutput_compiled.*.so
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint32_t

import zetl_replicator.pgoutput as P

cdef object UNCHANGED = P.UNCHANGED_TOAST
cdef object Insert = P.Insert
cdef object Update = P.Update
cdef object Delete = P.Delete
cdef object DecodeError = P.DecodeError
cdef object pure_decode = P.decode


cdef inline uint32_t be32(const unsigned char* p) noexcept:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]


cdef tuple tuple_data(const unsigned char* buf, Py_ssize_t n, Py_ssize_t* pos):
    cdef Py_ssize_t p = pos[0]
    cdef Py_ssize_t i, count
    cdef uint32_t length
    cdef unsigned char k
    cdef object v
    if p + 2 > n:
        raise DecodeError(f"message truncated at byte {p}")
    count = (buf[p] << 8) | buf[p + 1]
    p += 2
    cdef tuple out = PyTuple_New(count)
    for i in range(count):
        if p >= n:
            raise DecodeError(f"message truncated at byte {p}")
        k = buf[p]
        if k == 116:
            if p + 5 > n:
                raise DecodeError(f"message truncated at byte {p}")
            length = be32(buf + p + 1)
            p += 5
            if length > <uint32_t>(n - p):
                raise DecodeError(f"message truncated at byte {p}")
            v = PyUnicode_DecodeUTF8(<const char*>(buf + p), length, NULL)
            p += length
        elif k == 110:
            v = None
            p += 1
        elif k == 117:
            v = UNCHANGED
            p += 1
        elif k == 98:
            raise DecodeError("binary column values are not supported (text mode only)")
        else:
            raise DecodeError(f"unknown column kind {chr(k)!r}")
        Py_INCREF(v)
        PyTuple_SET_ITEM(out, i, v)
    pos[0] = p
    return out


def decode(bytes data, *, bint in_stream=False, bint parallel_abort=False):
    cdef const unsigned char* buf = data
    cdef Py_ssize_t n = len(data)
    cdef Py_ssize_t pos
    cdef unsigned char first, marker
    cdef object xid = None
    cdef uint32_t rel
    if n == 0 or buf[0] not in (73, 85, 68):
        return pure_decode(data, in_stream=in_stream, parallel_abort=parallel_abort)
    first = buf[0]
    if in_stream:
        if n < 10:
            raise DecodeError("message truncated at byte 1")
        xid = be32(buf + 1)
        rel = be32(buf + 5)
        pos = 9
    else:
        if n < 6:
            raise DecodeError("message truncated at byte 1")
        rel = be32(buf + 1)
        pos = 5
    marker = buf[pos]
    pos += 1
    if first == 73:
        if marker != 78:
            raise DecodeError("Insert without a new tuple")
        return Insert(xid, rel, tuple_data(buf, n, &pos), n)
    if first == 68:
        if marker != 75 and marker != 79:
            raise DecodeError(f"Delete without an old key or row (got {chr(marker)!r})")
        return Delete(xid, rel, tuple_data(buf, n, &pos), chr(marker), n)
    old = None
    old_kind = None
    if marker == 75 or marker == 79:
        old_kind = chr(marker)
        old = tuple_data(buf, n, &pos)
        if pos >= n:
            raise DecodeError(f"message truncated at byte {pos}")
        marker = buf[pos]
        pos += 1
    if marker != 78:
        raise DecodeError(f"Update without a new tuple (got {chr(marker)!r})")
    return Update(xid, rel, old, old_kind, tuple_data(buf, n, &pos), n)
