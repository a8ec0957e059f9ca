"""Deployment value rules and injection: hostile repos, names, images and accelerators never reach a file."""

from __future__ import annotations

import dataclasses
import shlex

import pytest
import yaml

from planner.cli import main
from planner.errors import InvalidInputError
from planner.handoff.deploy import Placement, ServeConfig
from planner.handoff.deploy_targets import Deployment, render_target
from planner.handoff.names import (
    check_accelerator,
    check_image,
    check_model_repo,
    check_object_name,
    comment_line,
    default_object_name,
)


def _cfg(**changes) -> ServeConfig:
    base = ServeConfig(model_repo="meta-llama/Llama-3.1-8B", engine="vllm", precision="bf16", kv_dtype="bf16",
                       tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len_tokens=8192,
                       gpu_memory_utilization_frac=0.9, max_num_seqs=8)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("repo", ["meta-llama/Llama-3.1-8B", "gpt2", "Qwen/Qwen3-0.6B", "org/name.v2_x",
                                  "/models/my model", "./ckpt", "../up/ckpt", "~/ckpt", "/m/$(not-run)"])
def test_accepted_repos(repo):
    assert check_model_repo(repo) == repo


@pytest.mark.parametrize("repo", ["$(touch x)", "`id`", "org/m\ntouch x", "a b", "org/name/extra", "", "-rf",
                                  "org/" + "n" * 97, "/m/a\nb", "/m/\x00", "a;b"])
def test_rejected_repos(repo):
    with pytest.raises(InvalidInputError, match="model repo"):
        check_model_repo(repo)


@pytest.mark.parametrize("name", ["llm", "my-svc-2", "a" * 63])
def test_rfc1035_names_accepted(name):
    assert check_object_name(name) == name


@pytest.mark.parametrize("name", ["Bad Name!", "a" * 64, "9lives", "-a", "a-", "UPPER", "a_b", "a.b", "", "a\nb"])
def test_rfc1035_names_rejected(name):
    with pytest.raises(InvalidInputError, match="RFC 1035"):
        check_object_name(name)


def test_default_names_are_rfc1035():
    for text in ("01-ai/Yi-34B-vllm", "meta-llama/Llama-3.1-8B-sglang", "///", "x" * 200):
        assert check_object_name(default_object_name(text))


@pytest.mark.parametrize("image", ["vllm/vllm-openai:latest", "ghcr.io/ggml-org/llama.cpp:server-cuda",
                                   "nvcr.io/nvidia/tensorrt-llm/release:1.2.1", "localhost:5000/a/b:v1",
                                   "busybox", "a/b@sha256:" + "0" * 64])
def test_images_accepted(image):
    assert check_image(image) == image


@pytest.mark.parametrize("image", ["vllm/vllm openai:latest", "vllm/vllm\n- evil", "UPPER/case", "a:b:c", "",
                                   "a/b:" + "t" * 129, "a" * 256])
def test_images_rejected(image):
    with pytest.raises(InvalidInputError, match="image"):
        check_image(image)


@pytest.mark.parametrize("value", ["H100\nrun: x", "H 100", "", "x" * 65])
def test_accelerators_rejected(value):
    with pytest.raises(InvalidInputError, match="accelerator"):
        check_accelerator(value)


def test_comment_line_cannot_end_the_comment():
    assert comment_line("a\nexec rm -rf /\rb\x00") == "a exec rm -rf / b "


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_local_path_with_shell_syntax_is_one_quoted_word(engine):
    repo = "/models/my $(model)"
    text = render_target(Deployment(_cfg(engine=engine, model_repo=repo), Placement("H100", 1), ()), engine)
    body = "\n".join(line for line in text.splitlines()[1:] if not line.startswith("#")).replace("\\\n", " ")
    assert shlex.quote(repo) in text and repo in shlex.split(body)


def test_notes_cannot_break_out_of_comments():
    # a pre-quantized precision adds a note naming the repo; a repo cannot hold a newline, but a note could
    deployment = Deployment(_cfg(), Placement("H100", 1), ("line one\ntouch pwned",))
    script = render_target(deployment, "vllm")
    assert "\ntouch pwned" not in script and "# line one touch pwned" in script
    assert not any(line.startswith("touch") for line in render_target(deployment, "skypilot").splitlines())


def test_yaml_values_read_back():
    deployment = Deployment(_cfg(model_repo="/m/a: b"), Placement("H100", 1), ())
    docs = list(yaml.safe_load_all(render_target(deployment, "kubernetes", name="svc", image="ghcr.io/o/i:v1")))
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][2] == "/m/a: b" and container["image"] == "ghcr.io/o/i:v1"


@pytest.mark.parametrize("field, value", [("tensor_parallel_size", 10**400), ("max_num_seqs", 0),
                                          ("max_model_len_tokens", 10**10), ("port", 70000), ("port", True),
                                          ("gguf_file", "/m/a\nb")])
def test_serve_config_bounds(field, value):
    with pytest.raises(InvalidInputError, match=field.split("_")[0]):
        _cfg(**{field: value})


@pytest.mark.parametrize("field, value", [("replicas", 10**400), ("replicas", 0), ("gpus_per_node", 5000)])
def test_placement_bounds(field, value):
    with pytest.raises(InvalidInputError, match=field):
        Placement(**{"accelerator": "H100", "gpus_per_node": 1, field: value})


@pytest.mark.parametrize("argv, message", [
    (["--target", "vllm", "--max-model-len", "10000000"], "exceeds meta-llama/Llama-3.1-8B's context of 131,072"),
    (["--target", "vllm", "--expert-parallel"], "mixture-of-experts"),
    (["--target", "kubernetes", "--name", "Bad Name!"], "RFC 1035"),
    (["--target", "kubernetes", "--image", "vllm/vllm openai"], "image must be"),
    (["--target", "sglang", "--model-repo", "$(touch pwned)"], "model repo must be"),
    (["--target", "vllm", "--model-repo", "org/m\ntouch pwned"], "control characters"),
    (["--target", "skypilot", "--replicas", "0"], "--replicas"),
    (["--target", "vllm", "--port", "70000"], "--port"),
    (["--target", "vllm", "--concurrency", "1" + "0" * 400], "--concurrency"),
    (["--target", "vllm", "-o", "."], "is a directory"),
    (["--target", "vllm", "-o", "missing/serve.sh"], "does not exist"),
])
def test_cli_deploy_rejects_with_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    try:
        code = main(["deploy", "--model", "llama-3.1-8b", "--gpu", "h100", *argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert not (tmp_path / "pwned").exists()


def test_cli_deploy_writes_an_executable_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    out = tmp_path / "serve.sh"
    assert main(["deploy", "--model", "llama-3.1-8b", "--gpu", "h100", "--target", "vllm", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("#!/bin/sh\n") and out.stat().st_mode & 0o111
