"""A Predict request on its way to the model, for both APIs: the parse result (`_native.RequestInput`s,
from the gRPC or the JSON codec) -> `validation` (OVMS's checks, in OVMS's order, against one compiled-
model snapshot; binary inputs through `binary_input`, layouts transposed) -> `Validated`, what
`ModelVersion.submit` runs. The model's lifecycle lives in `ovms_rs.models`."""
