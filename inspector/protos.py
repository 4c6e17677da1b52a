"""Protobuf messages TensorFlow stores on disk that tensorboard does not ship.

tensorboard.compat.proto carries most of TF's protos (object graphs, meta
graphs, shapes) but not tensor_bundle.proto, the SavedModel wrapper or
tf_keras's saved_metadata.proto.  Rather than commit generated *_pb2 files
(tied to one protoc version) we declare those few messages here, field for
field as in TensorFlow's .proto sources, and build classes at import time.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorboard.compat.proto import (  # noqa: F401  (registers dependencies in the default pool)
    meta_graph_pb2,
    tensor_shape_pb2,
    types_pb2,
    versions_pb2,
)

_F = descriptor_pb2.FieldDescriptorProto
# Our own package name: tensorboard registers its copies under "tensorboard",
# TensorFlow under "tensorflow"; ckit must coexist with both in one process.
_PACKAGE = "ckit.tf"
_TB = ".tensorboard."


def _field(name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None):
    field = _F(name=name, number=number, type=ftype, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _build() -> dict[str, type]:
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName("ckit.tf.BundleEntryProto")
        ours = True
    except KeyError:
        ours = False
    if not ours:
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
        pool.Add(bundle)

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
        pool.Add(saved_model)

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
        pool.Add(metadata)

    def cls(full_name: str) -> type:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))

    return {
        "BundleHeaderProto": cls("ckit.tf.BundleHeaderProto"),
        "BundleEntryProto": cls("ckit.tf.BundleEntryProto"),
        "SavedModel": cls("ckit.tf.SavedModel"),
        "TensorSliceProto": cls("ckit.tf.TensorSliceProto"),
        "SavedMetadata": cls("ckit.keras.SavedMetadata"),
    }


_CLASSES = _build()
BundleHeaderProto = _CLASSES["BundleHeaderProto"]
BundleEntryProto = _CLASSES["BundleEntryProto"]
SavedModel = _CLASSES["SavedModel"]
SavedMetadata = _CLASSES["SavedMetadata"]
TensorSliceProto = _CLASSES["TensorSliceProto"]

__all__ = ["BundleHeaderProto", "BundleEntryProto", "SavedModel", "SavedMetadata", "TensorSliceProto"]
