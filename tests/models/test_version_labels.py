"""TF Serving's version labels: config.json `version_labels`, resolved by gRPC `model_spec.version_label` and
REST `/labels/{label}` for every method; unknown labels, labels of versions that are not AVAILABLE, and
relabelling on config reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from helpers import ServerProcess, output_array, predict_request, status_request, tensor_proto
from model_repo import AVAILABLE, tiny_model, tiny_repo, wait_for
from ovms_rs._proto.tensorflow_serving.apis import get_model_metadata_pb2
from ovms_rs.config.config_json import load_config_file
from ovms_rs.config.model import model_config
from ovms_rs.errors import ConfigError

POLL = ("--file_system_poll_wait_seconds", "0.3")
ALL_VERSIONS: dict[str, dict[str, object]] = {"all": {}}


def write_labels_config(path: Path, repo: Path, labels: dict[str, int], **top: Any) -> Path:
    config = {
        "name": "m",
        "base_path": str(repo),
        "model_version_policy": ALL_VERSIONS,
        "version_labels": labels,
    }
    path.write_text(json.dumps({"model_config_list": [{"config": config}], **top}))
    return path


def ask(server: ServerProcess, label: str) -> float:
    """Predict by label on gRPC; the scale that answers is the version that served it."""
    request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model="m")
    request.model_spec.version_label = label
    reply = server.prediction_stub().Predict(request, timeout=30)
    assert reply.model_spec.version.value == int(output_array(reply.outputs["y"]).ravel()[0])
    return float(output_array(reply.outputs["y"]).ravel()[0])


def ask_rest(server: ServerProcess, label: str) -> requests.Response:
    return requests.post(
        f"{server.rest_url}/v1/models/m/labels/{label}:predict",
        json={"instances": [[1.0, 1.0, 1.0, 1.0]]},
        timeout=30,
    )


def grpc_error(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_labels_resolve_on_every_method_and_move_on_reload(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "m", [1, 2])
    config = write_labels_config(tmp_path / "config.json", repo, {"stable": 1, "canary": 2})
    log = tmp_path / "server.log"
    with ServerProcess("--config_path", str(config), *POLL, rest=True, log_path=log) as server:
        # Predict, gRPC and REST.
        assert (ask(server, "stable"), ask(server, "canary")) == (1, 2)
        reply = ask_rest(server, "stable")
        assert reply.status_code == 200 and reply.json() == {"predictions": [[1.0, 1.0, 1.0, 1.0]]}
        assert ask_rest(server, "canary").json() == {"predictions": [[2.0, 2.0, 2.0, 2.0]]}

        # Metadata and status, gRPC and REST: the labelled version only.
        meta = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        meta.model_spec.name, meta.model_spec.version_label = "m", "stable"
        assert (
            server.prediction_stub().GetModelMetadata(meta, timeout=10).model_spec.version.value
            == 1
        )
        status = status_request("m")
        status.model_spec.version_label = "canary"
        got = server.model_stub().GetModelStatus(status, timeout=10).model_version_status
        assert [(s.version, s.state) for s in got] == [(2, AVAILABLE)]
        rest_status = requests.get(
            f"{server.rest_url}/v1/models/m/labels/stable", timeout=10
        ).json()
        assert [s["version"] for s in rest_status["model_version_status"]] == ["1"]
        rest_meta = requests.get(
            f"{server.rest_url}/v1/models/m/labels/canary/metadata", timeout=10
        ).json()
        assert rest_meta["modelSpec"]["version"] == "2"

        # An unknown label: TF Serving's INVALID_ARGUMENT, HTTP 400, on every method.
        unknown = (grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: nope")
        assert grpc_error(lambda: ask(server, "nope")) == unknown
        meta.model_spec.version_label = "nope"
        assert (
            grpc_error(lambda: server.prediction_stub().GetModelMetadata(meta, timeout=10))
            == unknown
        )
        status.model_spec.version_label = "nope"
        assert grpc_error(lambda: server.model_stub().GetModelStatus(status, timeout=10)) == unknown
        for reply in (
            ask_rest(server, "nope"),
            requests.get(f"{server.rest_url}/v1/models/m/labels/nope", timeout=10),
            requests.get(f"{server.rest_url}/v1/models/m/labels/nope/metadata", timeout=10),
        ):
            assert (reply.status_code, reply.json()) == (400, {"error": unknown[1]})
        # The model name is checked first.
        request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model="other")
        request.model_spec.version_label = "stable"
        assert grpc_error(lambda: server.prediction_stub().Predict(request, timeout=10)) == (
            grpc.StatusCode.NOT_FOUND,
            "Model with requested name is not found",
        )

        # Relabelling: canary moves to a version added with the same change, stable is dropped.
        tiny_model(repo / "3", 3.0)
        write_labels_config(config, repo, {"canary": 3, "prod": 2})
        wait_for(lambda: ask_rest(server, "prod").status_code == 200, what="the new labels")
        assert (ask(server, "canary"), ask(server, "prod")) == (3, 2)
        assert grpc_error(lambda: ask(server, "stable")) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: stable",
        )

        # A label for a version that is not AVAILABLE is refused; the labels in force stay.
        write_labels_config(config, repo, {"canary": 7})
        wait_for(lambda: "which is not currently available" in server.log(), what="the refusal")
        assert (
            "Request to assign label to version 7 of model m, which is not currently available"
            in server.log()
        )
        assert (ask(server, "canary"), ask(server, "prod")) == (3, 2)
        assert ask_tiny_default(server) == 3  # the versions themselves are unaffected


def ask_tiny_default(server: ServerProcess) -> float:
    request = predict_request({"x": tensor_proto(np.ones((1, 4), np.float32))}, model="m")
    reply = server.prediction_stub().Predict(request, timeout=30)
    return float(output_array(reply.outputs["y"]).ravel()[0])


def test_label_of_unavailable_version_is_refused_at_start_unless_allowed(tmp_path: Path) -> None:
    repo = tiny_repo(tmp_path / "m", [1])
    log = tmp_path / "server.log"
    config = write_labels_config(tmp_path / "config.json", repo, {"stable": 1, "next": 2})
    with ServerProcess("--config_path", str(config), log_path=log) as server:
        assert (
            "Request to assign label to version 2 of model m, which is not currently available"
            in server.log()
        )
        assert ask_tiny_default(server) == 1  # the model serves; its labels are not in force
        assert grpc_error(lambda: ask(server, "stable"))[0] == grpc.StatusCode.INVALID_ARGUMENT

    # TF Serving's flag, on the command line or at config.json's top level: the label is kept, and
    # asking for it is asking for a version that does not exist (yet).
    for args, top in (
        (["--allow_version_labels_for_unavailable_models"], {}),
        ([], {"allow_version_labels_for_unavailable_models": True}),
    ):
        write_labels_config(config, repo, {"stable": 1, "next": 2}, **top)
        with ServerProcess("--config_path", str(config), *args, log_path=log) as server:
            assert "not currently available" not in server.log()
            assert ask(server, "stable") == 1
            assert grpc_error(lambda: ask(server, "next")) == (
                grpc.StatusCode.NOT_FOUND,
                "Model with requested version is not found",
            )


def test_version_labels_are_validated(tmp_path: Path) -> None:
    assert model_config("m", "/x", version_labels={"a": 1, "b": 2}).version_labels == {
        "a": 1,
        "b": 2,
    }
    # Labels do not take part in the comparison that decides whether versions are reloaded.
    assert model_config("m", "/x", version_labels={"a": 1}) == model_config("m", "/x")
    for bad in ({"a": 0}, {"a": True}, {"a": "1"}, {"": 1}, ["a"]):
        with pytest.raises(ConfigError, match="Invalid version_labels"):
            model_config("m", "/x", version_labels=bad)
    config = write_labels_config(
        tmp_path / "c.json", tmp_path, {"a": 1}, allow_version_labels_for_unavailable_models="yes"
    )
    with pytest.raises(ConfigError, match="allow_version_labels_for_unavailable_models"):
        load_config_file(config)
    config = write_labels_config(
        tmp_path / "c.json", tmp_path, {"a": 1}, allow_version_labels_for_unavailable_models=True
    )
    (loaded,) = load_config_file(config)
    assert (loaded.version_labels, loaded.allow_unavailable_labels) == ({"a": 1}, True)
