"""The protobuf messages ckit declares itself: registered bytes match the declarations, wire format matches TF."""

from __future__ import annotations

from inspector import protos


def test_serialized_files_match_their_declarations():
    assert protos._BUNDLE_FILE == protos.bundle_file().SerializeToString()
    assert protos._SAVED_MODEL_FILE == protos.saved_model_file().SerializeToString()
    assert protos._SAVED_METADATA_FILE == protos.saved_metadata_file().SerializeToString()


def test_bundle_entry_matches_tensorflows_own_message():
    from tensorflow.core.protobuf import tensor_bundle_pb2

    ours = protos.BundleEntryProto(dtype=14, shard_id=2, offset=1 << 40, size=12, crc32c=0xDEADBEEF)
    ours.shape.dim.add(size=3)
    piece = ours.slices.add()
    piece.extent.add(start=1, length=2)
    piece.extent.add()
    theirs = tensor_bundle_pb2.BundleEntryProto.FromString(ours.SerializeToString())
    assert theirs.dtype == 14 and theirs.offset == 1 << 40 and theirs.crc32c == 0xDEADBEEF
    assert theirs.slices[0].extent[0].length == 2 and not theirs.slices[0].extent[1].HasField("length")
    assert protos.BundleEntryProto.FromString(theirs.SerializeToString()) == ours


def test_saved_model_wrapper_reads_a_real_saved_model():
    from tests.conftest import FIXTURES

    model = protos.SavedModel.FromString((FIXTURES / "seed/tf_keras/saved_model/saved_model.pb").read_bytes())
    assert model.meta_graphs[0].signature_def["serving_default"].outputs
