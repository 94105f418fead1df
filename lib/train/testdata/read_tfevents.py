#!/usr/bin/env python3
"""Independent reader for TensorBoard event files, for lib/train's tests.

Reads TFRecord framing (u64 length, masked CRC32C of the length, data,
masked CRC32C of the data), checks both CRCs with a CRC32C implemented here,
and decodes each record as tensorflow.Event with google.protobuf, from
message definitions transcribed from TensorFlow's public
tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto
(only the fields used: Event.wall_time=1 double, step=2 int64,
file_version=3 string, summary=5 Summary; Summary.value=1 repeated Value;
Value.tag=1 string, simple_value=2 float). When protoc is available the
same definitions are compiled from .proto text instead (set by --protoc).
Prints JSON: a list of {wall_time, step, file_version, values: {tag: v}}.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool

try:
    from google.protobuf import message_factory
    def make_class(desc):
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory().GetPrototype(desc)
except ImportError:  # pragma: no cover
    raise

PROTO = """
syntax = "proto3";
package tensorflow;
message SummaryValue { string tag = 1; float simple_value = 2; }
message Summary { repeated SummaryValue value = 1; }
message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
"""


def by_hand():
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="tb_event.proto", package="tensorflow", syntax="proto3")
    v = fd.message_type.add(name="SummaryValue")
    v.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    v.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    s = fd.message_type.add(name="Summary")
    s.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".tensorflow.SummaryValue", label=F.LABEL_REPEATED)
    e = fd.message_type.add(name="Event")
    e.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    e.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    e.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    e.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".tensorflow.Summary", label=F.LABEL_OPTIONAL)
    return fd


def with_protoc():
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "tb_event.proto"), "w") as f:
        f.write(PROTO)
    out = os.path.join(d, "set.pb")
    subprocess.check_call(["protoc", "-I", d, "--descriptor_set_out=" + out, "tb_event.proto"])
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return fds.file[0]


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def main():
    args = sys.argv[1:]
    use_protoc = "--protoc" in args
    path = [a for a in args if not a.startswith("--")][0]
    fd = with_protoc() if use_protoc else by_hand()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    Event = make_class(pool.FindMessageTypeByName("tensorflow.Event"))
    out = []
    with open(path, "rb") as f:
        buf = f.read()
    i = 0
    while i < len(buf):
        if len(buf) - i < 12:
            sys.exit("truncated header at %d" % i)
        hdr = buf[i:i + 8]
        (n,) = struct.unpack("<Q", hdr)
        (hcrc,) = struct.unpack("<I", buf[i + 8:i + 12])
        if hcrc != masked(hdr):
            sys.exit("bad length crc at %d" % i)
        data = buf[i + 12:i + 12 + n]
        (dcrc,) = struct.unpack("<I", buf[i + 12 + n:i + 16 + n])
        if len(data) != n or dcrc != masked(data):
            sys.exit("bad data crc at %d" % i)
        i += 16 + n
        ev = Event()
        ev.ParseFromString(data)
        out.append({"wall_time": ev.wall_time, "step": ev.step, "file_version": ev.file_version,
                    "values": {v.tag: v.simple_value for v in ev.summary.value}})
    json.dump(out, sys.stdout)


main()
