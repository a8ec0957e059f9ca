"""Deployment files under hostile names, repos, images and accelerators: an InvalidInputError, or a file in which
every value is one shell word / one YAML scalar that reads back unchanged (no injection, no broken comment)."""

from __future__ import annotations

import shlex

import yaml
from _hostile import NASTY_TEXT, NUMBERS, SETTINGS
from hypothesis import given
from hypothesis import strategies as st

from planner.errors import InvalidInputError
from planner.handoff.deploy import Placement, ServeConfig, serve_command
from planner.handoff.deploy_targets import Deployment, render_target

# valid values first: hypothesis draws early branches more often, so most examples reach a rendered file
REPOS = st.one_of(st.sampled_from(["meta-llama/Llama-3.1-8B", "/models/my model", "~/ckpt", "./a b/$(x)",
                                   "/m/'quote'", "gpt2", "/m/a\tb"]), NASTY_TEXT)


def _deployment(repo: str, engine: str, accelerator: str, replicas, port) -> Deployment:
    cfg = ServeConfig(model_repo=repo, engine=engine, precision="bf16", kv_dtype="bf16", tensor_parallel_size=1,
                      pipeline_parallel_size=1, max_model_len_tokens=8192, gpu_memory_utilization_frac=0.9,
                      max_num_seqs=8, port=port)
    return Deployment(cfg, Placement(accelerator=accelerator, gpus_per_node=1, replicas=replicas), ())


def _script_words(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    body = [line for line in lines[1:] if not line.startswith("#")]
    assert body[0].startswith("exec "), body[0]
    assert all(line.startswith("  ") for line in body[1:]), body  # continuations only: no new command
    return shlex.split("\n".join(body).replace("\\\n", " "))  # backslash-newline continues the line (POSIX)


@SETTINGS
@given(REPOS, st.sampled_from(["vllm", "sglang", "trtllm"]), st.one_of(st.just("H100"), NASTY_TEXT),
       st.one_of(st.just(2), NUMBERS), st.one_of(st.none(), NUMBERS))
def test_engine_script_keeps_every_value_one_word(repo, engine, accelerator, replicas, port):
    try:
        deployment = _deployment(repo, engine, accelerator, replicas, port)
        text = render_target(deployment, engine)
    except InvalidInputError as err:
        assert len(str(err)) < 600
        return
    words = _script_words(text)
    assert words[0] == "exec"
    assert list(serve_command(deployment.config).argv) == words[1:]
    assert repo in words


@SETTINGS
@given(REPOS, st.one_of(st.none(), st.just("my-svc"), NASTY_TEXT),
       st.one_of(st.none(), st.just("ghcr.io/o/i:v1"), NASTY_TEXT))
def test_yaml_targets_read_back_the_values(repo, name, image):
    try:
        deployment = _deployment(repo, "vllm", "H100", 1, None)
        sky = render_target(deployment, "skypilot", name=name)
        k8s = render_target(deployment, "kubernetes", name=name, image=image)
    except InvalidInputError as err:
        assert len(str(err)) < 600
        return
    task = yaml.safe_load(sky)
    docs = list(yaml.safe_load_all(k8s))
    if name is not None:
        assert task["name"] == name and docs[0]["metadata"]["name"] == name and docs[1]["metadata"]["name"] == name
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert repo in container["command"]
    if image is not None:
        assert container["image"] == image
    assert shlex.split(task["run"])[:3] == ["vllm", "serve", repo]
