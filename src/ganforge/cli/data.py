"""`ganforge data`: inspect a configured dataset, write the built-in shapes in a real format, pack to HDF5."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge data write shapes --format image_folder --out shapes_png --count 2000 --image-size 64
    ganforge data write shapes --format cifar --out shapes_cifar --count 1000 --image-size 32 --view class
    ganforge data write shapes --format celeba --view attributes --out shapes_celeba --count 4000 --image-size 128
    ganforge data write shapes --format domains --view domains --out shapes_domains --count 3000 --image-size 32
    ganforge data write fashion_mnist --format image_folder --out fmnist_png         # every image, a folder per class
    ganforge data write emoji --format image_folder --out emoji_png --image-size 64  # a folder per emoji group"""


def add_parser(sub: Any) -> None:
    d = add_verb(sub, "data", "Inspect a dataset, write the built-in shapes in a real format, or pack to HDF5.",
                 EXAMPLES, run)
    dsub = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    di = dsub.add_parser("inspect", help="count images, list skipped files, save a preview grid")
    di.add_argument("preset", help="YAML file or shipped preset whose data section to read")
    di.add_argument("overrides", nargs="*", help="key=value, e.g. data.path=/data/faces")
    di.add_argument("--preview", help="PNG path for a grid of the first 64 images")
    dw = dsub.add_parser("write", help="write the built-in shapes as image_folder, cifar, hdf5, celeba, clevr_sv or "
                                       "domains; Fashion-MNIST or the emoji as image_folder or hdf5")
    dw.add_argument("dataset", choices=["shapes", "fashion_mnist", "emoji"],
                    help="the built-in procedural shapes, or a real set installed from Debian packages")
    dw.add_argument("overrides", nargs="*", help="real sets: data.KEY=VALUE for the dataset, e.g. "
                                                 "data.path=/data/fmnist or data.groups=[Flags]")
    dw.add_argument("--format", choices=["image_folder", "cifar", "hdf5", "celeba", "clevr_sv", "domains"],
                    required=True, help="the real format to write it in (what that format's loader reads)")
    dw.add_argument("--out", required=True, help="folder (or .h5 file for hdf5) to write")
    dw.add_argument("--count", type=int, default=None,
                    help="images (stories for --view story) to write; default: 1000 shapes, every real image")
    dw.add_argument("--image-size", type=int, default=64, help="side of the square images, in pixels")
    dw.add_argument("--view", choices=["unconditional", "class", "attributes", "story", "domains"],
                    default="unconditional",
                    help="attributes: CelebA-style binary labels (write with --format celeba); story: 4-frame "
                         "stories, --count of them (write with --format clevr_sv); domains: train/<shape>/ and "
                         "val/<shape>/ folders of domains (write with --format domains)")
    dp = dsub.add_parser("pack", help="decode a configured dataset into one HDF5 file")
    dp.add_argument("preset", help="YAML file or shipped preset whose data section to pack")
    dp.add_argument("overrides", nargs="*", help="key=value, e.g. data.path=/data/faces")
    dp.add_argument("--out", required=True, help="the .h5 file to write")


def run(args: argparse.Namespace) -> int:
    from ganforge.presets import load_config
    from ganforge.data import build_dataset, write_dataset
    from ganforge.data.hdf5 import pack_hdf5
    from ganforge.data.shapes import ShapesDataset
    from ganforge.data.shapes_domains import ShapesDomainDataset
    from ganforge.data.story import ShapesStoryDataset

    if args.action == "write" and args.dataset != "shapes":
        return _write_real(args)
    if args.action == "write":
        if args.overrides:
            raise ValueError(f"data.KEY=VALUE overrides ({', '.join(args.overrides)}) are for fashion_mnist and emoji; "
                             f"the shapes take --view, --count and --image-size")
        args.count = args.count or 1000
        if args.view == "story":
            ds = ShapesStoryDataset(args.count, args.image_size)
        elif args.view == "domains":
            ds = ShapesDomainDataset(args.count, args.image_size, augment=False)
        else:
            ds = ShapesDataset(length=args.count, image_size=args.image_size, view=args.view)
        out = Path(args.out)
        if args.format == "hdf5" and out.suffix not in (".h5", ".hdf5"):
            out = out / "shapes.h5"
        out = write_dataset(ds, args.format, out)
        print(f"wrote {args.count} shapes images ({args.view}) as {args.format}: {out}")
        return 0
    cfg = load_config(args.preset, args.overrides)
    ds = build_dataset(cfg.data, cfg.runtime.seed)
    if args.action == "pack":
        print(f"packed {len(ds)} images: {pack_hdf5(ds, Path(args.out))}")
        return 0
    if hasattr(ds, "video_len"):
        return _inspect_stories(ds, cfg.data.name, args.preview)
    print(f"dataset {cfg.data.name}: {len(ds)} images at {cfg.data.image_size}px, {ds.num_classes} classes")
    skipped = getattr(ds, "skipped", {})
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s):")
        for rel, reason in list(skipped.items())[:20]:
            print(f"  {rel}: {reason}")
    if args.preview:
        import torch

        from ganforge.sample import save_grid

        images = torch.stack([ds.get(i)["image"] for i in range(min(64, len(ds)))])
        print(f"preview: {save_grid(images, Path(args.preview))}")
    return 0


def _write_real(args: argparse.Namespace) -> int:
    """`data write fashion_mnist|emoji`: the training split, labelled, as an image folder or HDF5."""
    import yaml

    from ganforge.data import build_dataset, data_config, write_dataset

    if args.format not in ("image_folder", "hdf5"):
        raise ValueError(f"--format {args.format}: {args.dataset} is written as image_folder or hdf5")
    values: dict[str, Any] = {"classes": True, "channels": 3} if args.dataset == "fashion_mnist" else {}
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.startswith("data."):
            raise ValueError(f"'{item}': give data.KEY=VALUE, e.g. data.path=/data/fmnist")
        values[key.removeprefix("data.")] = yaml.safe_load(text)
    ds = build_dataset(data_config(args.dataset, image_size=args.image_size, **values))
    out = Path(args.out)
    if args.format == "hdf5" and out.suffix not in (".h5", ".hdf5"):
        out = out / f"{args.dataset}.h5"
    out = write_dataset(ds, args.format, out, limit=args.count)
    written = len(ds) if args.format == "hdf5" else min(args.count or len(ds), len(ds))  # a pack holds them all
    print(f"wrote {written} {args.dataset} images as {args.format}: {out}")
    return 0


def _inspect_stories(ds: Any, name: str, preview: str | None) -> int:
    print(f"dataset {name}: {len(ds)} stories of {ds.video_len} frames at {ds.image_size}px, descriptions of "
          f"{ds.text_dim} values, {ds.label_num} labels")
    for reason, items in getattr(ds, "skipped", {}).items():
        if items:
            print(f"skipped ({reason.replace('_', ' ')}): {', '.join(map(str, items[:20]))}")
    if preview:
        import torch

        from ganforge.sample import save_grid

        stories = torch.stack([ds.get(i)["images"] for i in range(min(8, len(ds)))])
        print(f"preview: {save_grid(stories.flatten(0, 1), Path(preview), ds.video_len)}")
    return 0
