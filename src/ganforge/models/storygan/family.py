"""The registration of ``storygan``: stories drawn with `ganforge story`, measured per story."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.models.storygan.networks import StoryganGenerator, StoryganModelConfig
from ganforge.models.storygan.recipe import StoryganRecipeConfig, build_recipe, check
from ganforge.registry import Drawing, EvaluateCommand, FamilySpec, Importer, register_family


def _evaluation(dataset: Any) -> Any:
    from ganforge.models.storygan.evaluate import StoryganEvaluation

    return StoryganEvaluation(dataset)


def _add_evaluate_arguments(group: Any) -> None:
    group.add_argument("--classifier", help="story metrics on Pororo-SV: a character classifier (TorchScript, or an "
                                            "Inception-v3 state dict with 9 outputs) for char_acc/char_f1")


def _evaluate(source: Any, args: argparse.Namespace) -> Any:
    from ganforge.metrics.command import evaluate_source

    family_eval = _evaluation(source.dataset)
    if args.classifier:
        from ganforge.models.storygan.characters import load_character_classifier

        family_eval.classifier = load_character_classifier(args.classifier, source.dataset.label_num)
    return evaluate_source(source, args, family_eval)


def _add_story_arguments(group: Any) -> None:
    src = group.add_mutually_exclusive_group(required=True)
    src.add_argument("--descriptions", help=".npy (vectors, or a CLEVR_dict.npy), .json (vectors or sentences) or "
                                            ".txt (sentences; stories separated by blank lines)")
    src.add_argument("--from-data", type=int, metavar="N",
                     help="the first N stories of the run's data (key=value overrides change it, e.g. the test "
                          "split data.story_range=[172,196]), with the ground truth beside")
    group.add_argument("--text-encoder", help="local sentence-transformers model folder, for sentences")
    group.add_argument("--frames", action="store_true", help="also write every frame as its own PNG")


def _story(opened: Any, args: argparse.Namespace) -> int:
    from ganforge.models.storygan.draw import story_command

    return story_command(opened, args)


def _add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--discriminator", help="the image discriminator (default: netD_im_epoch_N or _last beside "
                                                "the generator; the story discriminator is always found beside it)")


def _import(args: argparse.Namespace) -> Path:
    from ganforge.models.storygan.official import import_official

    return import_official(args.checkpoint, args.out, args.discriminator, None, args.preset or "storygan/clevr_sv",
                           args.overrides)


EXAMPLES = {
    "train": "ganforge train storygan/clevr_sv data.path=../shared/data/clevr_sv   # runs on CPU",
    "evaluate": """
        ganforge evaluate runs/storygan --metrics story --n 24 data.story_range=[172,196]   # SSIM on the test stories
        ganforge evaluate runs/pororo --metrics story --n 500 data.split=test --classifier classifier.pt""",
    "story": """
        ganforge story runs/storygan --from-data 8 data.story_range=[172,196]   # test stories, ground truth beside
        ganforge story runs/storygan --descriptions stories.npy --seed 3        # (N, 4, 75) attribute vectors
        ganforge story runs/pororo --descriptions story.txt --text-encoder ~/models/all-MiniLM-L6-v2""",
    "import": "ganforge import storygan output/clevr_StoryGAN/Model/netG_epoch_120.pth --out runs/storygan-official",
    "data": "ganforge data write shapes --format clevr_sv --view story --out shapes_stories --count 500",
}

def _story_helper(gen: Any, descriptions: Any, seed: int = 0, text_encoder: Any = None) -> Any:
    """``ganforge.load(run).story(descriptions)`` -> stories (N, T, 3, H, W); a .txt or .json file of
    sentences needs ``text_encoder``, a local sentence-transformers folder."""
    from ganforge.models.storygan.story import tell_stories

    return tell_stories(gen, descriptions, seed, text_encoder)


def _data_story_helper(gen: Any, index: int) -> Any:
    """``ganforge.load(run).data_story(3)`` -> (descriptions (1, T, D), ground-truth frames
    (1, T, 3, H, W)) of story ``index`` of the run's own data."""
    from ganforge.models.storygan.draw import stories_from_data

    if gen.opened is None or gen.opened.record is None:
        raise ValueError("an exported model carries no data to take stories from; give its run folder")
    descriptions, truth, _ = stories_from_data(str(gen.opened.run_dir), index + 1, [])
    if len(descriptions) <= index:
        raise ValueError(f"story {index}: the run's data has {len(descriptions)} stories (0..{len(descriptions) - 1})")
    return descriptions[index:index + 1], truth[index:index + 1]


register_family(FamilySpec(
    "storygan", StoryganModelConfig, StoryganRecipeConfig, build_recipe, StoryganGenerator, check, kind="story",
    evaluation=_evaluation, evaluate_command=EvaluateCommand(_evaluate, _add_evaluate_arguments),
    drawing=Drawing("story", "--descriptions FILE", _story, _add_story_arguments,
                    help="Draw stories with a story model: one strip row per story.", takes_overrides=True),
    importer=Importer(_import, _add_import_arguments,
                      help="netG_epoch_N.pth (netD_im/netD_st_epoch_N or _last are found beside it; default preset "
                           "storygan/clevr_sv)",
                      next_step="ganforge story {out} --descriptions FILE"),
    presets=Path(__file__).parent / "presets", examples=EXAMPLES,
    helpers={"story": _story_helper, "data_story": _data_story_helper},
    judges_images=("D_im",)))
