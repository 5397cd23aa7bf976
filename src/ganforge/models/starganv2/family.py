"""The registration of ``starganv2``: reference- and latent-guided translation, with its own
`sample` (source and reference folders) and its own `evaluate` (per domain pair, both guidances)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ganforge.models.starganv2.metric_names import VOCABULARY
from ganforge.models.starganv2.networks import Starganv2ModelConfig
from ganforge.models.starganv2.recipe import Starganv2RecipeConfig, build_recipe, check
from ganforge.models.starganv2.translator import Starganv2Translator
from ganforge.registry import Drawing, EvaluateCommand, FamilySpec, Importer, register_family


def _add_sample_arguments(group: Any) -> None:
    group.add_argument("--src", help="folder of source images (sub-folders allowed)")
    group.add_argument("--ref", help="folder of reference images, one sub-folder per domain")
    group.add_argument("--per-domain", type=int, default=10, help="latent codes per domain")
    group.add_argument("--no-video", action="store_true", help="skip the interpolation video")


def _sample(opened: Any, args: argparse.Namespace) -> int:
    from ganforge.load import generator_from_opened
    from ganforge.models.starganv2.sampling import sample_from_folders
    from ganforge.sample.noise import output_base

    if not args.src or not args.ref:
        raise ValueError(f"'{args.source}' is a StarGAN v2 model: it translates images. Give --src IMAGES and --ref "
                         f"DOMAIN_FOLDERS (one sub-folder per domain), as the official sample mode")
    gen = generator_from_opened(opened, args.weights, args.device)
    out = Path(args.out) if args.out else output_base(args.source) / "translations"
    written = sample_from_folders(gen.net, args.src, args.ref, out, limit=args.n, per_domain=args.per_domain,
                                  seed=args.seed, device=args.device, video=not args.no_video)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _add_evaluate_arguments(group: Any) -> None:
    group.add_argument("--outs", type=int, default=10, help="outputs per source image (official 10)")
    group.add_argument("--modes", default="latent,reference", help="guidance modes to evaluate")
    group.add_argument("--fid-net", choices=["standard", "imagenet"], default="standard",
                       help="standard FID Inception (default), or torchvision's ImageNet Inception-v3 as the official "
                            "script (inception_v3_google-0cc3c7bd.pth; --inception gives its path)")
    group.add_argument("--lpips-backbone", help="AlexNet weights alexnet-owt-7be5be79.pth for LPIPS (default: "
                                                "registry lookup)")


def _evaluate(source: Any, args: argparse.Namespace) -> Any:
    from ganforge.models.starganv2.evaluate import Starganv2EvalConfig, build_evaluation, parse_starganv2_metrics

    metrics = parse_starganv2_metrics(args.metrics or "fid,lpips")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    cfg = Starganv2EvalConfig(metrics=tuple(metrics), modes=modes, num_outs=args.outs, sources=args.n,
                              batch_size=args.batch_size, seed=args.seed, fid_net=args.fid_net)
    evaluation = build_evaluation(source.config.data, source.config.runtime.seed, cfg, args.device, args.inception,
                                  args.lpips_backbone, args.allow_nonstandard_weights, progress=True)
    print(f"evaluating {source.checkpoint} ({source.generator.weights} weights, step {source.step}): "
          f"{', '.join(metrics)}, {', '.join(modes)}-guided, {args.outs} outputs per source, "
          f"domains {', '.join(evaluation.val.domains)} ...", file=sys.stderr)
    return evaluation.run(source.generator.net)


def _training_evaluation(cfg: Any, dataset: Any, device: Any) -> Any:
    from ganforge.models.starganv2.evaluate import TrainingEvaluation

    return TrainingEvaluation(cfg, dataset, device)


def _add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fan", help="the FAN weights wing.ckpt, when the checkpoint has no 'fan' entry")


def _import(args: argparse.Namespace) -> Path:
    from ganforge.models.starganv2.official import import_official

    return import_official(args.checkpoint, args.out, args.preset, args.overrides, args.fan)


EXAMPLES = {
    "bench": "ganforge bench starganv2/afhq data.name=shapes data.view=domains model.image_size=128 "
             "data.image_size=128",
    "sample": "ganforge sample runs/starganv2 --src afhq/src --ref afhq/ref --n 8   # reference grid, latent grid, "
              "video",
    "evaluate": """
        ganforge evaluate runs/starganv2-afhq --metrics fid,lpips --batch-size 32   # per domain pair, both guidances
        ganforge evaluate runs/starganv2-shapes --metrics oracle,lpips --n 100     # target shape, reference color""",
    "import": "ganforge import starganv2 expr/checkpoints/afhq/100000_nets_ema.ckpt --out runs/starganv2-afhq",
}

def _translate_helper(gen: Any, images: Any, domain: int, reference: Any = None, seed: int = 0) -> Any:
    """``ganforge.load(run).translate(images, domain=1, reference=ref)`` -> translated images."""
    from ganforge.models.starganv2.sampling import translate_images

    return translate_images(gen, images, domain, reference, seed)

def _morph_helper(gen: Any, source: Any, references: Any, domain: int, path: Any) -> Any:
    """``ganforge.load(run).morph(image, refs, domain=1, path="morph.mp4")`` -> the file written: the
    official reference video, ``source`` (1, 3, H, W) morphing through the styles of ``references``
    (K >= 2, (K, 3, H, W), all of ``domain``), as H.264 (a GIF where no encoder is available)."""
    from pathlib import Path

    import torch

    from ganforge.models.starganv2.sampling import reference_video, write_video

    if len(references) < 2:
        raise ValueError(f"a morph needs at least two references; got {len(references)}")
    if not 0 <= int(domain) < gen.model_config.num_domains:
        raise ValueError(f"domain={domain}: this model has domains 0..{gen.model_config.num_domains - 1}")
    device = next(gen.parameters()).device
    domains = torch.full((len(references),), int(domain), dtype=torch.long)
    return write_video(reference_video(gen.net, source, references, domains, device), Path(path))


register_family(FamilySpec(
    "starganv2", Starganv2ModelConfig, Starganv2RecipeConfig, build_recipe, Starganv2Translator, check,
    kind="reference",
    drawing=Drawing("sample", "--src IMAGES --ref DOMAIN_FOLDERS", _sample, _add_sample_arguments),
    evaluate_command=EvaluateCommand(_evaluate, _add_evaluate_arguments), training_evaluator=_training_evaluation,
    metrics=VOCABULARY,
    importer=Importer(_import, _add_import_arguments,
                      help="100000_nets_ema.ckpt (_nets, _optims and wing.ckpt are found beside it; default preset "
                           "starganv2/celeba_hq with the high-pass path, or starganv2/afhq without)",
                      next_step="ganforge export {out} --format onnx"),
    presets=Path(__file__).parent / "presets", examples=EXAMPLES,
    helpers={"translate": _translate_helper, "morph": _morph_helper},
    judges_images=("D",)))
