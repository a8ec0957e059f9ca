"""`planner deploy`: the launch command, SkyPilot task or Kubernetes objects a plan (or one replica) needs."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.cli._output import catalog, catalog_with_profile, float_arg, int_arg, print_json, scenario_inputs, text_arg
from planner.data.catalog import Catalog
from planner.data.safe_io import check_output_path, write_text_atomic
from planner.errors import InvalidInputError
from planner.handoff.deploy import ENGINES, MAX_GPUS, MAX_NUM_SEQS, MAX_REPLICAS, MAX_SEQUENCE_TOKENS, serve_command
from planner.handoff.deploy_targets import (
    Deployment,
    deployment_from_plan,
    placement_for,
    render_target,
    serve_config_from_estimate,
)
from planner.perf.estimate import EstimateRequest, estimate
from planner.perf.speculative import MAX_DRAFT_TOKENS, METHODS

TARGETS = ("vllm", "sglang", "llama.cpp", "trtllm", "skypilot", "kubernetes")


def _from_scenario(args: argparse.Namespace, cat: Catalog, engine: str | None) -> Deployment:
    from planner.plan import plan  # the planning stack is imported only for --scenario

    scenario, sizes = scenario_inputs(args.scenario, args.set)
    cat = catalog_with_profile(scenario.profile)
    result = plan(scenario, cat, request_sizes=sizes)
    deployment = deployment_from_plan(result, cat, engine=engine, max_model_len_tokens=args.max_model_len,
                                      port=args.port, model_repo=args.model_repo, accelerator=args.accelerator)
    if engine and engine != result.estimate.engine:
        note = (f"the plan was sized for {result.estimate.engine}; re-plan with --set engine={engine} for "
                f"{engine}'s own memory and speed figures")
        deployment = Deployment(deployment.config, deployment.placement, deployment.notes + (note,))
    return deployment


def _from_request(args: argparse.Namespace, cat: Catalog, engine: str | None) -> Deployment:
    if not (args.model and args.gpu):
        raise InvalidInputError("deploy needs --scenario FILE, or --model and --gpu for one replica")
    est = estimate(cat, EstimateRequest(
        model=args.model, gpu=args.gpu, num_gpus=args.num_gpus, precision=args.precision, kv_dtype=args.kv_dtype,
        input_tokens=args.input_tokens, output_tokens=args.output_tokens, concurrency=args.concurrency,
        engine=engine, expert_parallel=args.expert_parallel, speculative=args.speculative,
        speculative_draft_tokens=args.draft_tokens, speculative_acceptance_frac=args.acceptance_frac))
    cfg = serve_config_from_estimate(est, cat, expert_parallel=args.expert_parallel,
                                     max_model_len_tokens=args.max_model_len, port=args.port,
                                     model_repo=args.model_repo)
    needs_placement = args.target in ("skypilot", "kubernetes")
    placement = placement_for(est, cat, replicas=args.replicas, use_spot=args.spot,
                              accelerator=args.accelerator or (None if needs_placement else est.gpu_id))
    return Deployment(cfg, placement, (f"{args.replicas} replica(s) of {est.num_gpus} x {est.gpu_id}, "
                                       f"{cfg.max_num_seqs} concurrent sequences each",))


def _run(args: argparse.Namespace) -> int:
    output = check_output_path(Path(args.output).expanduser(), what="deploy output (-o)") if args.output else None
    cat = catalog()  # with the user's imported prices
    engine = args.target if args.target in ENGINES else args.engine
    deployment = _from_scenario(args, cat, engine) if args.scenario else _from_request(args, cat, engine)
    text = render_target(deployment, args.target, name=args.name, image=args.image)
    if output is not None:
        script = args.target in ENGINES
        write_text_atomic(output, text, what="deploy output (-o)", mode=0o755 if script else None)
    if args.json:
        cfg = deployment.config
        print_json({"target": args.target, "engine": cfg.engine, "argv": list(serve_command(cfg).argv),
                    "notes": list(deployment.notes + serve_command(cfg).notes), "text": text,
                    "output": args.output, "replicas": deployment.placement.replicas,
                    "gpus_per_replica": cfg.gpus, "use_spot": deployment.placement.use_spot})
    elif args.output:
        print(f"wrote {args.target} file to {args.output}")
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="launch command / SkyPilot task / Kubernetes YAML for a plan")
    p.add_argument("--target", required=True, choices=TARGETS, help="what to write")
    p.add_argument("--scenario", help="scenario file (.toml or .json): deploy its plan")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario field (repeatable)")
    p.add_argument("--model", help="without --scenario: model id or alias of one replica")
    p.add_argument("--gpu", help="without --scenario: GPU id or alias")
    tokens = int_arg(1, MAX_SEQUENCE_TOKENS)
    p.add_argument("--num-gpus", type=int_arg(1, MAX_GPUS), default=1,
                   help="without --scenario: GPUs per replica (default 1)")
    p.add_argument("--precision", help="without --scenario: weight precision")
    p.add_argument("--kv-dtype", help="without --scenario: KV cache dtype")
    p.add_argument("--input-tokens", type=tokens, default=1024,
                   help="without --scenario: prompt tokens (default 1024)")
    p.add_argument("--output-tokens", type=tokens, default=256,
                   help="without --scenario: output tokens (default 256)")
    p.add_argument("--concurrency", type=int_arg(1, MAX_NUM_SEQS),
                   help="without --scenario: sequences in flight (default: max that fit)")
    p.add_argument("--expert-parallel", action="store_true", help="without --scenario: MoE expert parallelism")
    p.add_argument("--speculative", choices=METHODS, default="off",
                   help="without --scenario: speculative decoding (the model's MTP layers or an EAGLE-3 head), "
                        "launched where the estimate says it helps")
    p.add_argument("--draft-tokens", type=int_arg(1, MAX_DRAFT_TOKENS),
                   help="with --speculative: draft tokens per step (default: data/speculative.csv)")
    p.add_argument("--acceptance-frac", type=float_arg(0, 1, low_open=True),
                   help="with --speculative: per-position acceptance (default: data/speculative.csv)")
    p.add_argument("--replicas", type=int_arg(1, MAX_REPLICAS), default=1,
                   help="without --scenario: replicas (default 1)")
    p.add_argument("--spot", action="store_true", help="without --scenario: SkyPilot spot instances")
    p.add_argument("--engine", help="engine for skypilot/kubernetes targets (default: the plan's)")
    p.add_argument("--model-repo", help="Hugging Face repo id (org/name) or local path to serve (e.g. a "
                                        "pre-quantized checkpoint)")
    p.add_argument("--max-model-len", type=tokens,
                   help="longest sequence, at most the model's context (default: context, capped by KV capacity)")
    p.add_argument("--port", type=int_arg(1, 65535), help="server port (default: the engine's)")
    p.add_argument("--accelerator", type=text_arg(64), help="SkyPilot accelerator name (default: from the GPU)")
    p.add_argument("--image", help="container image for kubernetes (default: the engine's published image)")
    p.add_argument("--name", help="SkyServe service / Kubernetes name: lower-case letters, digits and '-', "
                                  "starting with a letter, at most 63 (default: from the model and engine)")
    p.add_argument("-o", "--output", help="write the file here (atomically) instead of stdout")
    p.add_argument("--json", action="store_true", help="print one JSON object with the text and the argv")
    p.set_defaults(func=_run)
