"""Protobuf messages TensorFlow stores on disk that tensorboard does not ship.

tensorboard.compat.proto carries most of TF's protos (object graphs, meta
graphs, shapes) but not tensor_bundle.proto, the SavedModel wrapper or
tf_keras's saved_metadata.proto.  Rather than commit generated *_pb2 files
(tied to one protoc version) we declare those few messages here, field for
field as in TensorFlow's .proto sources, and build classes at import time.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool, message_factory
from tensorboard.compat.proto import (  # noqa: F401  (registers dependencies in the default pool)
    tensor_shape_pb2,
    types_pb2,
    versions_pb2,
)

# Our own package name: tensorboard registers its copies under "tensorboard",
# TensorFlow under "tensorflow"; ckit must coexist with both in one process.
_PACKAGE = "ckit.tf"
_TB = ".tensorboard."


def _field(name, number, ftype, label=None, type_name=None):
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto

    field = FieldDescriptorProto(name=name, number=number, type=ftype, label=label or FieldDescriptorProto.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name
    return field


def bundle_file():
    """tensor_bundle.proto (with TensorSliceProto) as a FileDescriptorProto."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F

    # tensorflow/core/protobuf/tensor_bundle.proto
    bundle = descriptor_pb2.FileDescriptorProto(
        name="ckit/tensor_bundle.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[
            tensor_shape_pb2.DESCRIPTOR.name,
            types_pb2.DESCRIPTOR.name,
            versions_pb2.DESCRIPTOR.name,
        ],
    )
    # tensorflow/core/framework/tensor_slice.proto
    tensor_slice = bundle.message_type.add(name="TensorSliceProto")
    extent = tensor_slice.nested_type.add(name="Extent")
    extent.oneof_decl.add(name="has_length")
    extent.field.extend([_field("start", 1, _F.TYPE_INT64), _field("length", 2, _F.TYPE_INT64)])
    extent.field[1].oneof_index = 0
    tensor_slice.field.extend(
        [_field("extent", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".ckit.tf.TensorSliceProto.Extent")]
    )
    header = bundle.message_type.add(name="BundleHeaderProto")
    header.enum_type.add(name="Endianness").value.add(name="LITTLE", number=0)
    header.enum_type[0].value.add(name="BIG", number=1)
    header.field.extend(
        [
            _field("num_shards", 1, _F.TYPE_INT32),
            _field("endianness", 2, _F.TYPE_ENUM, type_name=".ckit.tf.BundleHeaderProto.Endianness"),
            _field("version", 3, _F.TYPE_MESSAGE, type_name=_TB + "VersionDef"),
        ]
    )
    entry = bundle.message_type.add(name="BundleEntryProto")
    entry.field.extend(
        [
            _field("dtype", 1, _F.TYPE_ENUM, type_name=_TB + "DataType"),
            _field("shape", 2, _F.TYPE_MESSAGE, type_name=_TB + "TensorShapeProto"),
            _field("shard_id", 3, _F.TYPE_INT32),
            _field("offset", 4, _F.TYPE_INT64),
            _field("size", 5, _F.TYPE_INT64),
            _field("crc32c", 6, _F.TYPE_FIXED32),
            _field("slices", 7, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".ckit.tf.TensorSliceProto"),
        ]
    )
    return bundle


def saved_model_file():
    """The SavedModel wrapper of saved_model.proto as a FileDescriptorProto."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F
    from tensorboard.compat.proto import meta_graph_pb2

    # tensorflow/core/protobuf/saved_model.proto
    saved_model = descriptor_pb2.FileDescriptorProto(
        name="ckit/saved_model.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[meta_graph_pb2.DESCRIPTOR.name],
    )
    wrapper = saved_model.message_type.add(name="SavedModel")
    wrapper.field.extend(
        [
            _field("saved_model_schema_version", 1, _F.TYPE_INT64),
            _field("meta_graphs", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, _TB + "MetaGraphDef"),
        ]
    )
    return saved_model


def saved_metadata_file():
    """tf_keras's saved_metadata.proto as a FileDescriptorProto."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F

    # tf_keras/protobuf/saved_metadata.proto (package third_party.tensorflow.python.keras.protobuf)
    metadata = descriptor_pb2.FileDescriptorProto(
        name="ckit/saved_metadata.proto",
        package="ckit.keras",
        syntax="proto3",
        dependency=[versions_pb2.DESCRIPTOR.name],
    )
    saved_object = metadata.message_type.add(name="SavedObject")
    saved_object.field.extend(
        [
            _field("node_id", 2, _F.TYPE_INT32),
            _field("node_path", 3, _F.TYPE_STRING),
            _field("identifier", 4, _F.TYPE_STRING),
            _field("metadata", 5, _F.TYPE_STRING),
            _field("version", 6, _F.TYPE_MESSAGE, type_name=_TB + "VersionDef"),
        ]
    )
    saved_metadata = metadata.message_type.add(name="SavedMetadata")
    saved_metadata.field.extend(
        [
            _field(
                "nodes",
                1,
                _F.TYPE_MESSAGE,
                _F.LABEL_REPEATED,
                ".ckit.keras.SavedObject",
            )
        ]
    )
    return metadata


# The three files above, serialized.  Registering bytes avoids importing descriptor_pb2 (a fifth
# of `ckinspect dump`'s start-up); tests/inspector/test_protos.py checks these equal the code.
_BUNDLE_FILE = (
    b'\n\x18ckit/tensor_bundle.proto\x12\x07ckit.tf\x1a+tensorboard/compat/proto/tensor_shape.'
    b'proto\x1a$tensorboard/compat/proto/types.proto\x1a\'tensorboard/compat/proto/versions.pr'
    b'oto"}\n\x10TensorSliceProto\x120\n\x06extent\x18\x01 \x03(\x0b2 .ckit.tf.TensorSliceProt'
    b'o.Extent\x1a7\n\x06Extent\x12\r\n\x05start\x18\x01 \x01(\x03\x12\x10\n\x06length\x18\x02'
    b' \x01(\x03H\x00B\x0c\n\nhas_length"\xaf\x01\n\x11BundleHeaderProto\x12\x12\n\nnum_shards'
    b'\x18\x01 \x01(\x05\x129\n\nendianness\x18\x02 \x01(\x0e2%.ckit.tf.BundleHeaderProto.Endi'
    b'anness\x12(\n\x07version\x18\x03 \x01(\x0b2\x17.tensorboard.VersionDef"!\n\nEndianness'
    b'\x12\n\n\x06LITTLE\x10\x00\x12\x07\n\x03BIG\x10\x01"\xd1\x01\n\x10BundleEntryProto\x12$'
    b'\n\x05dtype\x18\x01 \x01(\x0e2\x15.tensorboard.DataType\x12,\n\x05shape\x18\x02 \x01('
    b'\x0b2\x1d.tensorboard.TensorShapeProto\x12\x10\n\x08shard_id\x18\x03 \x01(\x05\x12\x0e\n'
    b'\x06offset\x18\x04 \x01(\x03\x12\x0c\n\x04size\x18\x05 \x01(\x03\x12\x0e\n\x06crc32c\x18'
    b'\x06 \x01(\x07\x12)\n\x06slices\x18\x07 \x03(\x0b2\x19.ckit.tf.TensorSliceProtob\x06prot'
    b'o3'
)
_SAVED_MODEL_FILE = (
    b'\n\x16ckit/saved_model.proto\x12\x07ckit.tf\x1a)tensorboard/compat/proto/meta_graph.prot'
    b'o"`\n\nSavedModel\x12"\n\x1asaved_model_schema_version\x18\x01 \x01(\x03\x12.\n\x0bmeta_'
    b'graphs\x18\x02 \x03(\x0b2\x19.tensorboard.MetaGraphDefb\x06proto3'
)
_SAVED_METADATA_FILE = (
    b'\n\x19ckit/saved_metadata.proto\x12\nckit.keras\x1a\'tensorboard/compat/proto/versions.p'
    b'roto"\x81\x01\n\x0bSavedObject\x12\x0f\n\x07node_id\x18\x02 \x01(\x05\x12\x11\n\tnode_pa'
    b'th\x18\x03 \x01(\t\x12\x12\n\nidentifier\x18\x04 \x01(\t\x12\x10\n\x08metadata\x18\x05 '
    b'\x01(\t\x12(\n\x07version\x18\x06 \x01(\x0b2\x17.tensorboard.VersionDef"7\n\rSavedMetada'
    b'ta\x12&\n\x05nodes\x18\x01 \x03(\x0b2\x17.ckit.keras.SavedObjectb\x06proto3'
)


def _message(serialized: bytes, file_name: str, full_name: str) -> type:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(file_name)
    except KeyError:
        pool.AddSerializedFile(serialized)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


BundleHeaderProto = _message(_BUNDLE_FILE, "ckit/tensor_bundle.proto", "ckit.tf.BundleHeaderProto")
BundleEntryProto = _message(_BUNDLE_FILE, "ckit/tensor_bundle.proto", "ckit.tf.BundleEntryProto")
TensorSliceProto = _message(_BUNDLE_FILE, "ckit/tensor_bundle.proto", "ckit.tf.TensorSliceProto")


def __getattr__(name: str) -> type:
    # SavedModel messages pull in meta_graph_pb2 and its many dependencies: build them on first use.
    if name == "SavedModel":
        from tensorboard.compat.proto import meta_graph_pb2  # noqa: F401  (a dependency of the file)

        value = _message(_SAVED_MODEL_FILE, "ckit/saved_model.proto", "ckit.tf.SavedModel")
    elif name == "SavedMetadata":
        value = _message(_SAVED_METADATA_FILE, "ckit/saved_metadata.proto", "ckit.keras.SavedMetadata")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["BundleHeaderProto", "BundleEntryProto", "SavedModel", "SavedMetadata", "TensorSliceProto"]
