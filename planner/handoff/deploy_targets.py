"""Where a replica runs: a SkyPilot task with a SkyServe `service:` section, Kubernetes objects,
and the wiring from a plan (or one estimate) to every deployment file.

The launch command itself comes from `planner.handoff.deploy.serve_command`. References:
SkyPilot task YAML and service spec [1], Kubernetes apps/v1 Deployment and v1 Service [2].

[1] https://docs.skypilot.co/en/latest/reference/yaml-spec.html, https://docs.skypilot.co/en/v0.7.0/serving/service-yaml-spec.html
[2] https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner.data.catalog import Catalog, Model, model_from_config_file
from planner.errors import InvalidInputError
from planner.handoff.deploy import (
    HEALTH_PATH,
    IMAGES,
    K8S_GPU_RESOURCE,
    SKYPILOT_ACCELERATORS,
    Placement,
    ServeCommand,
    ServeConfig,
    serve_command,
)
from planner.handoff.names import check_image, check_object_name, comment_line, default_object_name
from planner.perf.estimate import Estimate


def _slug(text: str) -> str:
    return default_object_name(text)


def _name(name: str | None, cfg: ServeConfig, what: str) -> str:
    return _slug(f"{cfg.model_repo}-{cfg.engine}") if name is None else check_object_name(name, what=what)


def _multi_node(cfg: ServeConfig, placement: Placement, command: ServeCommand) -> str:
    """The run script of a replica spanning nodes (SGLang's documented --nnodes/--node-rank/--dist-init-addr)."""
    if cfg.engine != "sglang":
        raise InvalidInputError(f"the replica spans {placement.nodes_per_replica} nodes; multi-node launch is "
                                f"generated for SGLang only (use --engine sglang, or a GPU with more memory)")
    head = 'HEAD_IP=$(echo "$SKYPILOT_NODE_IPS" | head -n1)\n'
    extra = ' \\\n  --nnodes "$SKYPILOT_NUM_NODES" --node-rank "$SKYPILOT_NODE_RANK" --dist-init-addr "$HEAD_IP:50000"'
    return head + command.shell() + extra + "\n"


def skypilot_task(cfg: ServeConfig, placement: Placement, *, name: str | None = None) -> dict[str, Any]:
    """A SkyPilot task with a SkyServe `service:` section: accelerators, spot, the serve command, replicas."""
    command = serve_command(cfg)
    gpus_per_node = cfg.gpus // placement.nodes_per_replica
    run = command.shell() + "\n" if placement.nodes_per_replica == 1 else _multi_node(cfg, placement, command)
    run = command.preamble() + run
    task: dict[str, Any] = {
        "name": _name(name, cfg, "SkyServe service name (--name)"),
        "resources": {"accelerators": f"{placement.accelerator}:{gpus_per_node}",
                      "use_spot": placement.use_spot, "ports": cfg.serve_port},
        "envs": {"HF_TOKEN": ""},  # pass with `sky serve up --env HF_TOKEN` for gated models
    }
    if placement.nodes_per_replica > 1:
        task["num_nodes"] = placement.nodes_per_replica
    task["setup"] = _SETUP[cfg.engine]
    task["run"] = run
    service: dict[str, Any] = {"readiness_probe": {"path": HEALTH_PATH, "initial_delay_seconds": 1200}}
    if placement.autoscaled:
        service["replica_policy"] = {"min_replicas": placement.min_replicas, "max_replicas": placement.replicas,
                                     "target_qps_per_replica": round(placement.target_qps_per_replica, 4)}
    else:
        service["replicas"] = placement.replicas
    task["service"] = service
    return task


_SETUP = {
    "vllm": "pip install vllm\n", "sglang": 'pip install "sglang[all]"\n',
    "trtllm": "pip install tensorrt_llm\n",
    "llama.cpp": "# build llama.cpp with CUDA (cmake -B build -DGGML_CUDA=ON) and put the GGUF file under /models\n",
}


def kubernetes_manifests(cfg: ServeConfig, placement: Placement, *, name: str | None = None,
                         image: str | None = None, hf_token_secret: str = "hf-token") -> list[dict[str, Any]]:
    """A Deployment (GPU limits, replicas, readiness probe on /health) and a ClusterIP Service."""
    if placement.nodes_per_replica > 1:
        raise InvalidInputError(f"the replica spans {placement.nodes_per_replica} nodes; a Deployment runs one pod "
                                f"per replica on one node (multi-node replicas need LeaderWorkerSet, not generated)")
    resource = K8S_GPU_RESOURCE.get(cfg.gpu_vendor)
    if resource is None:
        raise InvalidInputError(f"no Kubernetes device-plugin resource for {cfg.gpu_vendor} GPUs")
    app = _name(name, cfg, "Kubernetes name (--name)")
    labels = {"app.kubernetes.io/name": app}
    command = serve_command(cfg)
    container: dict[str, Any] = {
        "name": "server", "image": IMAGES[cfg.engine] if image is None else check_image(image),
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": "token",
                                                                     "optional": True}}}],
        "ports": [{"name": "http", "containerPort": cfg.serve_port}],
        "resources": {"limits": {resource: cfg.gpus}, "requests": {resource: cfg.gpus}},
        "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "initialDelaySeconds": 60,
                           "periodSeconds": 10, "failureThreshold": 3},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if cfg.engine == "llama.cpp":  # the image's entrypoint is llama-server
        container["args"] = list(command.argv[1:])
    elif command.files:  # write the options files the command reads, then run it
        container["command"] = ["/bin/sh", "-c", command.preamble() + "exec " + command.shell() + "\n"]
    else:
        container["command"] = list(command.argv)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
        "spec": {"replicas": placement.replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container],
                                       "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
               "spec": {"type": "ClusterIP", "selector": labels,
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [deployment, service]


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (run scripts) as literal blocks, and no &anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def to_yaml(documents: dict[str, Any] | list[dict[str, Any]], *, comments: tuple[str, ...] = ()) -> str:
    """YAML text (several documents separated by ---), with `comments` as leading # lines."""
    docs = documents if isinstance(documents, list) else [documents]
    head = "".join(f"# {comment_line(line)}\n" for line in comments)
    return head + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                                explicit_start=len(docs) > 1)


def skypilot_accelerator(catalog: Catalog, gpu_id: str) -> str:
    """SkyPilot's name for a catalog GPU; InvalidInputError when SkyPilot has none."""
    for name in SKYPILOT_ACCELERATORS:
        if catalog.names["gpu"].get(name.lower()) == gpu_id:
            return name
    raise InvalidInputError(f"SkyPilot has no accelerator name for {gpu_id}; pass --accelerator NAME")


def serve_config_from_estimate(est: Estimate, catalog: Catalog, *, engine: str | None = None,
                               expert_parallel: bool = False, max_model_len_tokens: int | None = None,
                               port: int | None = None, model_repo: str | None = None) -> ServeConfig:
    """The replica an estimate describes, for its engine or another one (`engine`).

    --max-num-seqs is the plan's operating concurrency (the batch that meets the latency
    targets); the memory fraction is the engine's catalog value the memory plan used.
    max model length: the model's context, capped at the KV capacity the plan found
    (max_concurrency x KV tokens held per sequence) so the engine can hold one full-length
    sequence; llama.cpp preallocates -c = length x slots, so its length is capacity / slots.
    Speculative decoding is launched when the estimate applied it (it helps at its concurrency).
    An attention-DP estimate (MoE) launches attention data-parallel with expert-parallel experts; its batch
    limit and KV capacity are then each rank's share (1/tp) of the estimate's.
    """
    target = catalog.engine(engine).engine_id if engine else est.engine
    prec, kv = catalog.precision(est.precision), catalog.kv_dtype(est.kv_dtype)
    for what, item, engines in (("precision", prec.precision_id, prec.engines), ("KV cache dtype", kv.kv_dtype_id,
                                                                                 kv.engines)):
        if target not in engines:
            raise InvalidInputError(f"the plan's {what} {item} is not served by {target} (engines: "
                                    f"{', '.join(engines)}); re-plan with engine={target} or pick another target")
    model = _model_of(est, catalog)
    if expert_parallel and model is not None and not model.arch.is_moe:
        raise InvalidInputError(f"expert parallelism needs a mixture-of-experts model; {est.model_id} is dense")
    gpu = catalog.gpu(est.gpu_id)
    eng = catalog.engine(target)
    # under attention DP each of the tp ranks schedules its own sequences: the engine's limits are per rank
    ranks = est.tp if est.attn_dp else 1
    concurrency = min(-(-est.concurrency // ranks), eng.max_num_seqs)
    held = est.kv_context_tokens_per_sequence or est.input_tokens + est.output_tokens
    capacity = int(est.max_concurrency * held / ranks)
    context = model.context_length_tokens if model else est.input_tokens + est.output_tokens
    if max_model_len_tokens is not None and model is not None and max_model_len_tokens > context:
        raise InvalidInputError(f"--max-model-len {max_model_len_tokens:,} exceeds {est.model_id}'s context of "
                                f"{context:,} tokens")
    if max_model_len_tokens is None:
        per_sequence = capacity // concurrency if target == "llama.cpp" else capacity
        max_model_len_tokens = max(min(context, per_sequence), est.input_tokens + est.output_tokens)
    spec = est.speculative if est.speculative and est.speculative.get("applied") else None
    return ServeConfig(
        speculative=spec["method"] if spec else "off",
        speculative_draft_tokens=spec["draft_tokens"] if spec else None,
        speculative_draft_model=spec["draft_model"] if spec and spec["method"] == "eagle3" else None,
        model_repo=model_repo or est.model_id, engine=target, precision=prec.precision_id, kv_dtype=kv.kv_dtype_id,
        tensor_parallel_size=est.tp, pipeline_parallel_size=est.pp, max_model_len_tokens=max_model_len_tokens,
        gpu_memory_utilization_frac=eng.memory_utilization_frac, max_num_seqs=concurrency,
        expert_parallel=expert_parallel or est.expert_parallel and est.attn_dp,
        attn_dp=est.attn_dp and target in ("vllm", "sglang", "trtllm"),
        native_precision=model.native_precision if model else "bf16", gpu_vendor=gpu.vendor.lower(), port=port,
    )


def _model_of(est: Estimate, catalog: Catalog) -> Model | None:
    """The estimate's model: from the catalog, or the user's config.json it was estimated from."""
    if est.model_id in catalog.models:
        return catalog.models[est.model_id]
    if est.model_id.endswith(".json") and Path(est.model_id).is_file():
        return model_from_config_file(est.model_id)
    return None


def placement_for(est: Estimate, catalog: Catalog, *, replicas: int = 1, use_spot: bool = False,
                  accelerator: str | None = None) -> Placement:
    """Where the estimate's replica runs: tensor parallelism inside a node, pipeline stages across nodes. A
    data-parallel layout (est.dp instances of tp x pp GPUs) is deployed as est.dp independent engine replicas
    behind the load balancer, which every engine and target supports."""
    gpu = catalog.gpu(est.gpu_id)
    instance = est.num_gpus // max(est.dp, 1)
    nodes = est.pp if instance > gpu.max_gpus_per_node else 1
    return Placement(accelerator=accelerator or skypilot_accelerator(catalog, gpu.gpu_id),
                     gpus_per_node=instance // nodes, nodes_per_replica=nodes, replicas=replicas * max(est.dp, 1),
                     use_spot=use_spot)


@dataclass(frozen=True)
class Deployment:
    """A plan ready to hand off: what each replica runs, where, and what to check by hand."""

    config: ServeConfig
    placement: Placement
    notes: tuple[str, ...] = field(default=())


def deployment_from_plan(plan: Any, catalog: Catalog, *, engine: str | None = None,
                         max_model_len_tokens: int | None = None, port: int | None = None,
                         model_repo: str | None = None, accelerator: str | None = None) -> Deployment:
    """The replica and fleet of a `planner.plan.Plan`'s headline tier (spot when the tier is spot).

    A fixed fleet runs `total_replicas`; an autoscaled one becomes a replica policy from
    1 + N+k spares up to the peak-hour count, targeting the plan's per-replica capacity in
    requests per second.
    """
    est, tier = plan.estimate, plan.headline_tier
    cost = plan.costs.get(tier)
    fleet = cost.fleet if cost is not None else None
    if fleet is None:
        why = f" ({cost.note})" if cost is not None and cost.note else ""
        raise InvalidInputError(f"the plan's headline tier {tier} has no fleet{why}; set another rental_tier, "
                                f"provider or mode")
    cfg = serve_config_from_estimate(est, catalog, engine=engine, expert_parallel=plan.scenario.expert_parallel,
                                     max_model_len_tokens=max_model_len_tokens, port=port, model_repo=model_repo)
    base = placement_for(est, catalog, replicas=fleet.total_replicas, use_spot=tier == "spot",
                         accelerator=accelerator)
    notes = [f"{fleet.total_replicas} replica(s) of {est.num_gpus} x {est.gpu_id} ({tier}), "
             f"{cfg.max_num_seqs} concurrent sequences each, from the plan"]
    if fleet.autoscaled:
        base = Placement(base.accelerator, base.gpus_per_node, base.nodes_per_replica, fleet.total_replicas,
                         base.use_spot, min(fleet.redundancy_replicas + 1, fleet.total_replicas),
                         plan.capacity_requests_per_s_per_replica)
    if tier == "owned":
        notes.append("the plan is for owned hardware: the SkyPilot task would rent it; use the Kubernetes target")
    return Deployment(cfg, base, tuple(notes))


TARGET_FILES = {"skypilot": "skypilot-service.yaml", "kubernetes": "kubernetes.yaml"}


def render_target(deployment: Deployment, target: str, *, name: str | None = None, image: str | None = None) -> str:
    """The file for `target`: a shell script for the deployment's engine, YAML for skypilot and kubernetes."""
    cfg, placement = deployment.config, deployment.placement
    command = serve_command(cfg)
    notes = deployment.notes + command.notes
    if target == "skypilot":
        return to_yaml(skypilot_task(cfg, placement, name=name),
                       comments=("SkyPilot task with a SkyServe service: sky serve up THIS_FILE",) + notes)
    if target == "kubernetes":
        return to_yaml(kubernetes_manifests(cfg, placement, name=name, image=image),
                       comments=("Kubernetes Deployment + Service: kubectl apply -f THIS_FILE",
                                 "gated models: kubectl create secret generic hf-token --from-literal=token=...")
                       + notes)
    if target != cfg.engine:
        raise InvalidInputError(f"target {target!r} is neither the deployment's engine ({cfg.engine}) nor "
                                f"skypilot/kubernetes")
    return ("#!/bin/sh\n" + "".join(f"# {comment_line(line)}\n" for line in notes)
            + command.preamble() + "exec " + command.shell() + "\n")


def deployment_files(deployment: Deployment, *, name: str | None = None,
                     image: str | None = None) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """({target: (file name, text)}, {target: why not}) for the engine script, SkyPilot and Kubernetes.

    For download buttons: a target that cannot be generated (a multi-node replica on Kubernetes,
    an Apple GPU on SkyPilot) is reported with its reason instead of raising.
    """
    files: dict[str, tuple[str, str]] = {}
    unavailable: dict[str, str] = {}
    engine = deployment.config.engine
    for target, filename in ((engine, f"serve-{_slug(engine)}.sh"), *TARGET_FILES.items()):
        try:
            files[target] = (filename, render_target(deployment, target, name=name, image=image))
        except InvalidInputError as err:
            unavailable[target] = str(err)
    return files, unavailable
