"""Configuration: the CLI flags and config.json, validated against OVMS's schema, as plain values.

A layer below the model side: nothing here imports OpenVINO (a test checks), so the CLI parses its
flags and answers --help before the model side loads. `models/` imports this package, never the other
way round.

- `server`: ServerConfig, everything `serve` needs.
- `model`: ModelConfig, one served model, and the parsers of its values (plugin_config with OVMS's
  legacy keys, version labels, warmup).
- `config_json`: config.json read and checked against OVMS's schema.
- `shapes`, `layout`, `policy`, `batching`: --shape/--batch_size (and `Dim`), --layout,
  model_version_policy, TF Serving's BatchingParameters.
"""
