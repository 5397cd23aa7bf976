"""The registration of ``stargan``: multi-attribute translation, drawn with `ganforge translate`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.models.stargan.networks import StarganGenerator, StarganModelConfig
from ganforge.models.stargan.recipe import StarganRecipeConfig, build_recipe, check
from ganforge.registry import Drawing, FamilySpec, Importer, register_family


def _evaluation(dataset: Any) -> Any:
    from ganforge.models.stargan.evaluate import StarganEvaluation

    return StarganEvaluation(dataset)


def _add_translate_arguments(group: Any) -> None:
    group.add_argument("--input", required=True, help="an image file or a folder of images")
    group.add_argument("--attrs", action="append", default=[],
                       help="one target column: attribute names or name=0/1, comma-separated (repeat for more "
                            "columns); default: one column per attribute, as the official test")
    group.add_argument("--batch-size", type=int, default=16, help="input images per grid")
    group.add_argument("--no-singles", action="store_true", help="write only the grids")


def _translate(opened: Any, args: argparse.Namespace) -> int:
    from ganforge.models.stargan.labels import LabelError
    from ganforge.models.stargan.translate import open_translator, translate_files
    from ganforge.sample.noise import output_base

    translator = open_translator(opened, args.weights, args.device)
    out = Path(args.out) if args.out else output_base(args.source) / "translate"
    try:
        grids = translate_files(translator, args.input, out, args.attrs, args.batch_size, not args.no_singles)
    except LabelError as err:
        raise ValueError(str(err)) from None
    source = "its discriminator" if translator.discriminator is not None else "none (all zero: an exported model)"
    print(f"translated to {out} ({len(grids)} grid(s); columns in {out / 'columns.txt'}; input labels from {source})")
    return 0


def _add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--discriminator", help="the D checkpoint (default: {iter}-D.ckpt beside the generator)")
    parser.add_argument("--labels", help="comma-separated attribute names (default: the official five when c_dim "
                                         "is 5)")
    parser.add_argument("--image-size", type=int, default=128, help="used only without a discriminator checkpoint")


def _import(args: argparse.Namespace) -> Path:
    from ganforge.models.stargan.official import import_official

    labels = [t.strip() for t in args.labels.split(",") if t.strip()] if args.labels else []
    return import_official(args.checkpoint, args.out, args.discriminator, labels, args.preset or "stargan/celeba",
                           args.image_size, args.overrides)


EXAMPLES = {
    "bench": "ganforge bench stargan/shapes --steps 2",
    "evaluate": """
        ganforge evaluate runs/stargan-shapes --metrics translation,oracle --n 500   # target accuracy, preservation
        ganforge evaluate runs/stargan-celeba --metrics fid data.split=test          # translations of the test split""",
    "translate": """
        ganforge translate runs/stargan --input photos/            # one column per attribute, as the official test
        ganforge translate runs/stargan --input face.jpg --attrs Blond_Hair --attrs Male=0,Young=1
        ganforge translate runs/rafd --input faces/ --attrs happy --attrs angry --no-singles""",
    "import": """
        ganforge import stargan stargan_celeba_128/models/200000-G.ckpt --out runs/stargan-official
        ganforge import stargan 200000-G.ckpt --out runs/mine --labels Black_Hair,Blond_Hair,Male""",
}

def _translate_helper(gen: Any, images: Any, targets: Any = ()) -> Any:
    """``ganforge.load(run).translate(images, ["Blond_Hair", "Male=0"])`` -> {target: images}."""
    from ganforge.models.stargan.translate import translate_images

    return translate_images(gen, images, [targets] if isinstance(targets, str) else list(targets))


def _targets_helper(gen: Any) -> list[str]:
    """``ganforge.load(run).targets()`` -> the label names ``translate`` takes, in the model's order."""
    from ganforge.models.stargan.labels import conditioning_for_model

    return list(conditioning_for_model(gen.model_config).all_names)


register_family(FamilySpec(
    "stargan", StarganModelConfig, StarganRecipeConfig, build_recipe, StarganGenerator, check, kind="translation",
    evaluation=_evaluation, official_iterations=lambda cfg: cfg.recipe.n_critic,
    drawing=Drawing("translate", "--input IMAGES", _translate, _add_translate_arguments,
                    help="Translate images with an image-to-image model: grids and single images."),
    importer=Importer(_import, _add_import_arguments,
                      help="200000-G.ckpt ({iter}-D.ckpt is found beside it; default preset stargan/celeba)",
                      next_step="ganforge translate {out} --input IMAGES"),
    presets=Path(__file__).parent / "presets", examples=EXAMPLES,
    helpers={"translate": _translate_helper, "targets": _targets_helper},
    judges_images=("D",)))
