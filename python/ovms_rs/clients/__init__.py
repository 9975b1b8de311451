"""OVMS's example clients, speaking the TensorFlow Serving gRPC API through the package's stubs.

Run them as `python -m ovms_rs.clients.<name>`:

- `get_model_status`: the state of each version of a model.
- `get_serving_meta`: a model's inputs and outputs (names, shapes, dtypes).
- `grpc_serving_client`: classifies a numpy batch (`imgs.npy`), with timings and accuracy.
- `jpeg_classification`: classifies a list of labeled JPEG files, preprocessed here or (`--binary`)
  sent as encoded bytes for the server to decode.
- `make_demo_data`: writes the demo photos, `imgs.npy`, `lbs.npy` and `input_images.txt` into a folder.

Flags, defaults and output lines are those of OVMS's `example_client/` scripts.
"""
