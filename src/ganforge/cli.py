"""The ``ganforge`` command: parse, validate, call the API. Every verb's ``--help`` has examples."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # torch is imported lazily so that `ganforge --help` stays fast
    import torch

EXAMPLES = {
    "train": """
        ganforge train wgan_gp/demo                     # shipped preset: family/dataset
        ganforge train wgan_gp/shapes train.steps=2000 runtime.precision=bf16
        ganforge train configs/my.yaml data.path=/data/anime name=anime64
        ganforge train wgan_gp/shapes --dry-run         # build, one step per phase, report
        torchrun --nproc_per_node 2 -m ganforge train wgan_gp/shapes   # DDP, same command""",
    "bench": """
        ganforge bench wgan_gp/shapes runtime.precision=bf16      # s/step, images/s, FLOP/s vs peak, memory
        ganforge bench stargan/celeba data.name=shapes data.view=attributes data.selected_attrs=[Red,Green,Blue,Large,Light_Background] --steps 2
        ganforge bench starganv2/afhq data.name=shapes data.view=domains model.image_size=128 data.image_size=128
        ganforge bench biggan/cifar10 data.name=shapes data.view=class model.num_classes=18 --json bench.json   # built-in data""",
    "resume": """
        ganforge resume runs/demo                        # continue from the latest checkpoint
        ganforge resume runs/demo train.steps=5000       # ... and train for longer""",
    "sample": """
        ganforge sample runs/demo                        # 8x8 grid of the EMA generator
        ganforge sample runs/demo --n 16 --seed 3 --weights raw --out grid.png
        ganforge sample runs/demo --mode images --n 100 --out samples/
        ganforge sample runs/demo --mode interpolate --steps 10 --rows 4
        ganforge sample exported/ --n 16                 # an exported model works too
        ganforge sample runs/starganv2 --src afhq/src --ref afhq/ref --n 8   # reference grid, latent grid, video
        ganforge sample runs/biggan --mode sheet --classes 0-9 --truncation 0.5   # one row per class
        ganforge sample runs/biggan --mode interpolate --interp y   # BigGAN's interpZ/interpY/interpZY sheets
        ganforge sample runs/imagenet --standing-stats 16 --n 16   # BN statistics averaged over 16 batches""",
    "export": """
        ganforge export runs/demo --format safetensors   # -> runs/demo/export/model.safetensors + config.json
        ganforge export runs/demo --format torchscript --out gen_ts/
        ganforge export runs/demo --format onnx --weights raw""",
    "evaluate": """
        ganforge evaluate runs/demo                          # oracle metrics (shapes data), 1000 images
        ganforge evaluate runs/demo --metrics fid,is,kid,pr,dc,oracle --n 10000
        ganforge evaluate runs/x/checkpoints/step-00020000.pt --metrics fid --inception /w/pt_inception-2015-12-05-6726825d.pth
        ganforge evaluate runs/faces --metrics fid,kid data.path=/data/faces_test   # another real set
        ganforge evaluate runs/stargan-shapes --metrics translation,oracle --n 500   # target accuracy, preservation
        ganforge evaluate runs/stargan-celeba --metrics fid data.split=test          # translations of the test split
        ganforge evaluate runs/storygan --metrics story --n 24 data.story_range=[172,196]   # SSIM on the test stories
        ganforge evaluate runs/pororo --metrics story --n 500 data.split=test --classifier classifier.pt
        ganforge evaluate runs/starganv2-afhq --metrics fid,lpips --batch-size 32   # per domain pair, both guidances
        ganforge evaluate runs/starganv2-shapes --metrics oracle,lpips --n 100     # target shape, reference color""",
    "translate": """
        ganforge translate runs/stargan --input photos/            # one column per attribute, as the official test
        ganforge translate runs/stargan --input face.jpg --attrs Blond_Hair --attrs Male=0,Young=1
        ganforge translate runs/rafd --input faces/ --attrs happy --attrs angry --no-singles""",
    "story": """
        ganforge story runs/storygan --from-data 8 data.story_range=[172,196]   # test stories, ground truth beside
        ganforge story runs/storygan --descriptions stories.npy --seed 3        # (N, 4, 75) attribute vectors
        ganforge story runs/pororo --descriptions story.txt --text-encoder ~/models/all-MiniLM-L6-v2""",
    "import": """
        ganforge import stargan stargan_celeba_128/models/200000-G.ckpt --out runs/stargan-official
        ganforge import stargan 200000-G.ckpt --out runs/mine --labels Black_Hair,Blond_Hair,Male
        ganforge import biggan weights/BigGAN_I128_hdf5_seed0_..._ema --out runs/biggan-138k   # config from state_dict.pth
        ganforge import biggan G_ema.pth --out runs/biggan --preset biggan/imagenet128_ch64
        ganforge import storygan output/clevr_StoryGAN/Model/netG_epoch_120.pth --out runs/storygan-official
        ganforge import starganv2 expr/checkpoints/afhq/100000_nets_ema.ckpt --out runs/starganv2-afhq""",
    "weights": """
        ganforge weights list                                # registered files and where each was found
        ganforge weights import ~/Downloads/pt_inception-2015-12-05-6726825d.pth
        GANFORGE_WEIGHTS_DIR=/shared/weights ganforge weights import alexnet-owt-7be5be79.pth""",
    "oracle": """
        ganforge oracle                                      # the packaged oracle's file and held-out accuracy
        ganforge oracle --json
        ganforge oracle --retrain --out oracle.safetensors   # train it again from its recipe (~3-4 min)""",
    "info": """
        ganforge info                                     # versions, devices, working precisions
        ganforge info --json""",
    "data": """
        ganforge data inspect wgan_gp/image_folder data.path=/data/faces   # count, skipped files, a preview grid
        ganforge data write shapes --format image_folder --out shapes_png --count 2000 --image-size 64
        ganforge data write shapes --format cifar --out shapes_cifar --count 1000 --image-size 32 --view class
        ganforge data write shapes --format celeba --view attributes --out shapes_celeba --count 4000 --image-size 128
        ganforge data write shapes --format clevr_sv --view story --out shapes_stories --count 500
        ganforge data write shapes --format domains --view domains --out shapes_domains --count 3000 --image-size 32
        ganforge data pack wgan_gp/image_folder data.path=/data/faces --out faces64.h5""",
}


def _parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    p = argparse.ArgumentParser(prog="ganforge", description="Train, sample, evaluate and export GANs on any machine.",
                                epilog="Run `ganforge VERB --help` for each verb's examples.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text,
                              epilog="examples:" + textwrap.dedent(EXAMPLES[name]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    t = verb("train", "Train a new run from a preset (file or shipped family/dataset name).")
    t.add_argument("preset", help="YAML file or shipped preset such as wgan_gp/shapes")
    t.add_argument("overrides", nargs="*", help="key=value with dotted keys, e.g. train.steps=500")
    t.add_argument("--dry-run", action="store_true", help="build, run one step of every phase, report, write nothing")

    b = verb("bench", "Measure training speed: s/step and s/iteration (as the official loop counts them), images/s, "
                      "counted FLOP/s against the device's measured peak, peak memory. Writes nothing.")
    b.add_argument("preset", help="YAML file or shipped preset such as stargan/celeba")
    b.add_argument("overrides", nargs="*", help="key=value, e.g. data.name=shapes runtime.precision=bf16")
    b.add_argument("--steps", type=int, default=3, help="timed training steps (the median is reported)")
    b.add_argument("--warmup", type=int, default=1, help="untimed steps first (the first also counts FLOPs)")
    b.add_argument("--no-peak", action="store_true", help="skip the device-peak matrix product")
    b.add_argument("--json", help="also write the numbers to this JSON file")

    r = verb("resume", "Continue a run from its latest checkpoint.")
    r.add_argument("run", help="run folder (runs/NAME)")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=20000")

    s = verb("sample", "Generate images from a run, checkpoint or exported model.")
    s.add_argument("source", help="run folder, checkpoint .pt, or export folder")
    s.add_argument("--mode", choices=["grid", "images", "interpolate", "sheet"], default="grid",
                   help="sheet: one row per class (class-conditional models)")
    s.add_argument("--n", type=int, default=64, help="images (grid/images)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weights", choices=["ema", "raw"], default="ema")
    s.add_argument("--steps", type=int, default=8, help="interpolation steps per row")
    s.add_argument("--rows", type=int, default=4, help="interpolation rows")
    s.add_argument("--interp", choices=["zy", "z", "y"], default=None,
                   help="BigGAN: what varies along each row (default zy); y interpolates class embeddings")
    s.add_argument("--classes", help="sheet: class indices, e.g. 0-9 or 3,7,11 (default: every class, at most 20)")
    s.add_argument("--per-class", type=int, default=10, help="sheet: samples per class")
    s.add_argument("--truncation", type=float, help="truncation trick: redraw z values beyond +-T (BigGAN)")
    s.add_argument("--standing-stats", type=int, default=0, metavar="N",
                   help="BigGAN: normalize with BN statistics averaged over N batches of samples")
    s.add_argument("--src", help="StarGAN v2: folder of source images (sub-folders allowed)")
    s.add_argument("--ref", help="StarGAN v2: folder of reference images, one sub-folder per domain")
    s.add_argument("--per-domain", type=int, default=10, help="StarGAN v2: latent codes per domain")
    s.add_argument("--no-video", action="store_true", help="StarGAN v2: skip the interpolation video")
    s.add_argument("--out", help="output file (grid, interpolate, sheet) or folder (images; StarGAN v2)")
    s.add_argument("--device", default="cpu")

    e = verb("export", "Export the generator as safetensors, TorchScript or ONNX.")
    e.add_argument("source", help="run folder or checkpoint .pt")
    e.add_argument("--format", choices=["safetensors", "torchscript", "onnx"], default="safetensors")
    e.add_argument("--weights", choices=["ema", "raw"], default="ema")
    e.add_argument("--out", help="output folder (default: RUN/export/FORMAT)")

    v = verb("evaluate", "Measure a run or checkpoint: FID, IS, KID, precision/recall, density/coverage, oracle.")
    v.add_argument("source", help="run folder or checkpoint .pt")
    v.add_argument("overrides", nargs="*", help="key=value applied to the run's config, e.g. data.path=/data/test")
    v.add_argument("--metrics", default=None,
                   help="comma-separated: fid,is,kid,pr,dc,oracle,class,translation,story (default: oracle; class: "
                        "class-conditional models on the shapes class view; translation: StarGAN on the "
                        "shapes attributes view; story: StoryGAN, --n stories, its default). StarGAN v2: "
                        "fid,lpips,oracle per domain pair (default fid,lpips; oracle on the shapes domains view)")
    v.add_argument("--classifier", help="story metrics on Pororo-SV: a character classifier (TorchScript, or an "
                                        "Inception-v3 state dict with 9 outputs) for char_acc/char_f1")
    v.add_argument("--n", type=int, default=None,
                   help="generated images (and real images per real set), default 1000; stories: default every "
                        "story of the data up to 1000; StarGAN v2: source images "
                        "per domain (default: every validation image, as the official evaluation)")
    v.add_argument("--outs", type=int, default=10, help="StarGAN v2: outputs per source image (official 10)")
    v.add_argument("--modes", default="latent,reference", help="StarGAN v2: guidance modes to evaluate")
    v.add_argument("--fid-net", choices=["standard", "imagenet"], default="standard",
                   help="StarGAN v2: standard FID Inception (default), or torchvision's ImageNet Inception-v3 as the "
                        "official script (inception_v3_google-0cc3c7bd.pth; --inception gives its path)")
    v.add_argument("--lpips-backbone", help="StarGAN v2: AlexNet weights alexnet-owt-7be5be79.pth for LPIPS "
                                            "(default: registry lookup)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--weights", choices=["ema", "raw"], default="ema")
    v.add_argument("--batch-size", type=int, default=100)
    v.add_argument("--device", default="cpu")
    v.add_argument("--inception", help="InceptionV3 weights file (default: registry lookup)")
    v.add_argument("--allow-nonstandard-weights", action="store_true",
                   help="use an Inception file whose hash is not the standard one (numbers will not compare)")
    v.add_argument("--out", help="JSON result path (default: RUN/eval/CHECKPOINT-WEIGHTS.json)")
    v.add_argument("--json", action="store_true", help="print the JSON result instead of a table")

    sv = verb("story", "Draw stories with a story model (StoryGAN): one strip row per story.")
    sv.add_argument("source", help="run folder, checkpoint or exported folder")
    src = sv.add_mutually_exclusive_group(required=True)
    src.add_argument("--descriptions", help=".npy (vectors, or a CLEVR_dict.npy), .json (vectors or sentences) or "
                                            ".txt (sentences; stories separated by blank lines)")
    src.add_argument("--from-data", type=int, metavar="N",
                     help="the first N stories of the run's data (key=value overrides change it, e.g. the test "
                          "split data.story_range=[172,196]), with the ground truth beside")
    sv.add_argument("--text-encoder", help="local sentence-transformers model folder, for sentences")
    sv.add_argument("--out", help="PNG path (default: RUN/samples/story-<name>-seed<S>.png)")
    sv.add_argument("--seed", type=int, default=0)
    sv.add_argument("--weights", choices=["ema", "raw"], default="ema")
    sv.add_argument("--device", default="cpu")
    sv.add_argument("--frames", action="store_true", help="also write every frame as its own PNG")
    sv.add_argument("overrides", nargs="*", help="key=value for the run's data config (with --from-data)")

    tl = verb("translate", "Translate images with an image-to-image model (StarGAN): grids and single images.")
    tl.add_argument("source", help="run folder, checkpoint .pt, or export folder")
    tl.add_argument("--input", required=True, help="an image file or a folder of images")
    tl.add_argument("--attrs", action="append", default=[],
                    help="one target column: attribute names or name=0/1, comma-separated (repeat for more "
                         "columns); default: one column per attribute, as the official test")
    tl.add_argument("--out", help="output folder (default: RUN/translate)")
    tl.add_argument("--weights", choices=["ema", "raw"], default="ema")
    tl.add_argument("--batch-size", type=int, default=16, help="input images per grid")
    tl.add_argument("--no-singles", action="store_true", help="write only the grids")
    tl.add_argument("--device", default="cpu")

    im = verb("import", "Import an official checkpoint into a ganforge run folder.")
    im.add_argument("family", choices=["stargan", "starganv2", "biggan", "storygan"])
    im.add_argument("checkpoint", help="stargan: 200000-G.ckpt (D is found beside it); biggan: the weights "
                                       "folder or G_ema.pth/G.pth (D, optimizers, state_dict.pth found beside it); "
                                       "storygan: netG_epoch_N.pth (netD_im/netD_st_epoch_N or _last found beside it); "
                                       "starganv2: 100000_nets_ema.ckpt (_nets, _optims and wing.ckpt found beside it)")
    im.add_argument("--discriminator", help="the D checkpoint (default: {iter}-D.ckpt beside the generator)")
    im.add_argument("--out", required=True, help="run folder to create")
    im.add_argument("--labels", help="comma-separated attribute names (default: the official five when c_dim is 5)")
    im.add_argument("--preset", help="preset for the rest of the config (default: stargan/celeba, biggan/imagenet128, "
                                     "storygan/clevr_sv)")
    im.add_argument("--image-size", type=int, default=128, help="used only without a discriminator checkpoint")
    im.add_argument("--fan", help="starganv2: the FAN weights wing.ckpt, when the checkpoint has no 'fan' entry")
    im.add_argument("overrides", nargs="*", help="key=value for the run's config, e.g. data.path=/data/celeba")

    w = verb("weights", "List or import the pretrained weights that metrics use (never downloaded).")
    wsub = w.add_subparsers(dest="action", metavar="ACTION", required=True)
    wsub.add_parser("list", help="registered weights, their size, and where each was found")
    wi = wsub.add_parser("import", help="validate a weights file (keys, shapes, hash) and install it")
    wi.add_argument("file")
    wi.add_argument("--name", help="registry name, when the file name does not say (inception-fid, alexnet, vgg16)")
    wi.add_argument("--to", help="install folder (default: $GANFORGE_WEIGHTS_DIR, else the torch hub cache)")
    wi.add_argument("--allow-nonstandard-weights", action="store_true")

    o = verb("oracle", "Show the shapes oracle's held-out accuracy, or train it again from its recipe.")
    o.add_argument("--json", action="store_true")
    o.add_argument("--retrain", action="store_true",
                   help="train the default recipe from scratch on this machine (~3-4 min on 2 cores) and print "
                        "its held-out accuracy; the packaged weights stay in use")
    o.add_argument("--out", help="with --retrain: save the new weights here (.safetensors, the packaged format)")

    i = verb("info", "Show versions, devices and the precisions that work on this machine.")
    i.add_argument("--json", action="store_true")

    d = verb("data", "Inspect a dataset, write the built-in shapes in a real format, or pack to HDF5.")
    dsub = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    di = dsub.add_parser("inspect", help="count images, list skipped files, save a preview grid")
    di.add_argument("preset")
    di.add_argument("overrides", nargs="*")
    di.add_argument("--preview", help="PNG path for a grid of the first 64 images")
    dw = dsub.add_parser("write", help="write the built-in shapes as image_folder, cifar, hdf5, celeba, clevr_sv or "
                                       "domains")
    dw.add_argument("dataset", choices=["shapes"])
    dw.add_argument("--format", choices=["image_folder", "cifar", "hdf5", "celeba", "clevr_sv", "domains"], required=True)
    dw.add_argument("--out", required=True)
    dw.add_argument("--count", type=int, default=1000)
    dw.add_argument("--image-size", type=int, default=64)
    dw.add_argument("--view", choices=["unconditional", "class", "attributes", "story", "domains"],
                    default="unconditional",
                    help="attributes: CelebA-style binary labels (write with --format celeba); story: 4-frame "
                         "stories, --count of them (write with --format clevr_sv); domains: StarGAN v2's "
                         "train/<shape>/ and val/<shape>/ folders (write with --format domains)")
    dp = dsub.add_parser("pack", help="decode a configured dataset into one HDF5 file")
    dp.add_argument("preset")
    dp.add_argument("overrides", nargs="*")
    dp.add_argument("--out", required=True)
    return p


# ----------------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from ganforge.config import load_config
    from ganforge.train.trainer import Trainer, train

    cfg = load_config(args.preset, args.overrides)
    if args.dry_run:
        report = Trainer(cfg, run_dir=None).dry_run()
        _print_dry_run(report)
        return 0
    result = train(cfg)
    return _report(result)


def _bench(args: argparse.Namespace) -> int:
    from ganforge.config import load_config
    from ganforge.train.bench import bench
    from ganforge.train.trainer import Trainer

    cfg = load_config(args.preset, args.overrides)
    report = bench(Trainer(cfg, run_dir=None), steps=args.steps, warmup=args.warmup, measure_peak=not args.no_peak)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from ganforge.train.trainer import resume

    return _report(resume(args.run, args.overrides))


def _report(result) -> int:
    from ganforge.runtime.distributed import env_info, shutdown

    shutdown()
    if not env_info().is_main:
        return 0
    samples = sorted((result.run_dir / "samples").glob("*.png")) if result.run_dir else []
    print(f"{result.status} at step {result.step}: run folder {result.run_dir}")
    if result.checkpoint:
        print(f"  checkpoint: {result.checkpoint}")
    if samples:
        print(f"  samples:    {samples[-1]}")
    if result.status == "interrupted":
        print(f"  continue with: ganforge resume {result.run_dir}")
        return 130
    return 0


def _print_dry_run(report: dict) -> None:
    mib = report["peak_memory_bytes"]
    print(f"dry run on {report['device']} ({report['precision']}), {report['world_size']} process(es), "
          f"micro-batch {report['local_batch']} x accumulation {report['grad_accum']}")
    for name, count in report["parameters"].items():
        print(f"  {name}: {count:,} parameters" + (" (compiled)" if name in report["compiled"] else ""))
    print("  phases: " + ", ".join(f"{n} (updates {net}, x{rep}, every {ev})" for n, net, rep, ev in report["phases"]))
    for net, rows in report["shapes"].items():
        print(f"  {net} module outputs:")
        for mod, kind, shape in rows:
            print(f"    {mod:<14} {kind:<22} {shape}")
    print("  losses: " + ", ".join(f"{k}={v:.4g}" for k, v in report["losses"].items()))
    print(f"  step time: {report['step_s']:.3f} s (first step, with warm-up: {report['first_step_s']:.3f} s)")
    print(f"  peak memory: {mib / 2**20:.0f} MiB" if mib else "  peak memory: not measurable here")


def _sample_starganv2(args: argparse.Namespace, gen: Any) -> int:
    from ganforge.models.starganv2.sampling import sample_from_folders

    if not args.src or not args.ref:
        raise ValueError(f"'{args.source}' is a StarGAN v2 model: it translates images. Give --src IMAGES and --ref "
                         f"DOMAIN_FOLDERS (one sub-folder per domain), as the official sample mode")
    src = Path(args.source)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / "translations"
    written = sample_from_folders(gen.net, args.src, args.ref, out, limit=args.n, per_domain=args.per_domain,
                                  seed=args.seed, device=args.device, video=not args.no_video)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import torch

    from ganforge.load import drawing_command, load
    from ganforge.sample import generate, interpolate_inputs, save_grid, save_images

    gen = load(args.source, weights=args.weights, device=args.device)
    if gen.family == "starganv2":
        return _sample_starganv2(args, gen)
    if getattr(gen.net, "needs_input_image", False):
        raise ValueError(f"'{args.source}' is a {gen.family} model: it translates images rather than sampling "
                         f"from noise. Use `{drawing_command(gen.family, args.source)}`.")
    if getattr(gen.net, "needs_descriptions", False):
        raise ValueError(f"'{args.source}' is a {gen.family} model: it draws stories from descriptions. Use "
                         f"`{drawing_command(gen.family, args.source)}` (or --from-data N).")
    src = Path(args.source)
    base = src if src.is_dir() else src.parent
    biggan = gen.family == "biggan"
    if (args.truncation or args.standing_stats or args.interp) and not biggan:
        raise ValueError("--truncation, --standing-stats and --interp are BigGAN options; "
                         f"'{args.source}' is a {gen.family} model")
    if biggan:
        from ganforge.models.biggan import sampling

        if args.standing_stats:
            sampling.accumulate_standing_stats(gen, args.standing_stats, seed=args.seed, truncation=args.truncation)

        def inputs_for(n: int, seed: int) -> tuple[torch.Tensor, ...]:
            z, y = gen.make_inputs(n, seed)
            if args.truncation:
                z = sampling.truncated_normal(tuple(z.shape), args.truncation, torch.Generator().manual_seed(seed))
            return z, y
    else:
        inputs_for = gen.make_inputs
    tag = f"-trunc{args.truncation}" if args.truncation else ""
    if args.mode == "sheet":
        classes = _parse_classes(args.classes, gen)
        images, nrow = sampling.class_sheet(gen, classes, args.per_class, args.seed, args.truncation)
        out = Path(args.out or base / "samples" / f"sheet-seed{args.seed}{tag}.png")
        save_grid(images, out, nrow=nrow)
    elif args.mode == "interpolate" and biggan:
        kind = args.interp or "zy"
        images, nrow = sampling.interpolation_sheet(gen, args.rows, args.steps - 2, kind, args.seed, args.truncation)
        out = Path(args.out or base / "samples" / f"interp{kind.upper()}-seed{args.seed}{tag}.png")
        save_grid(images, out, nrow=nrow)
    elif args.mode == "interpolate":
        rows = []
        for r in range(args.rows):
            a, b = gen.make_inputs(1, args.seed * 1000 + 2 * r), gen.make_inputs(1, args.seed * 1000 + 2 * r + 1)
            rows.append(interpolate_inputs(a, b, args.steps))
        inputs = [torch.cat(parts) for parts in zip(*rows)]
        out = Path(args.out or base / "samples" / f"interpolate-seed{args.seed}.png")
        save_grid(generate(gen, inputs, gen_device(gen)), out, nrow=args.steps)
    elif args.mode == "images":
        out = Path(args.out or base / "samples" / f"images-seed{args.seed}{tag}")
        save_images(generate(gen, inputs_for(args.n, args.seed), gen_device(gen)), out)
    else:
        out = Path(args.out or base / "samples" / f"grid-seed{args.seed}{tag}.png")
        save_grid(generate(gen, inputs_for(args.n, args.seed), gen_device(gen)), out)
    print(f"wrote {out}")
    return 0


def _parse_classes(text: str | None, gen) -> list[int]:  # noqa: ANN001
    """``0-9`` or ``3,7,11`` -> class indices, checked against the model's class count."""
    num = int(getattr(gen.model_config, "num_classes", 0) or 0)
    if gen.family != "biggan" or num < 1:
        raise ValueError(f"--mode sheet needs a class-conditional model (biggan); this is a {gen.family} model")
    if not text:
        return list(range(min(num, 20)))
    classes: list[int] = []
    for part in text.split(","):
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                classes += list(range(lo, hi + 1))
            else:
                classes.append(int(part))
        except ValueError:
            raise ValueError(f"--classes: '{part}' is not an index or a range like 0-9") from None
    bad = [c for c in classes if not 0 <= c < num]
    if bad:
        raise ValueError(f"--classes: {bad} outside 0..{num - 1} (the model has {num} classes)")
    return classes


def gen_device(gen: "torch.nn.Module") -> "torch.device":
    """The device the generator's parameters live on."""
    return next(gen.parameters()).device


def _export(args: argparse.Namespace) -> int:
    from ganforge.export import export_generator
    from ganforge.load import load

    gen = load(args.source, weights=args.weights)
    src = Path(args.source)
    run = src if src.is_dir() else src.parent.parent
    out = Path(args.out) if args.out else run / "export" / args.format
    path = export_generator(gen, out, args.format)
    print(f"wrote {path} (+ {path.parent / 'config.json'})")
    return 0


def _info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from ganforge import __version__
    from ganforge.registry import dataset_names, family_names
    from ganforge.runtime.device import accelerator_type
    from ganforge.runtime.precision import supported_precisions

    acc = accelerator_type()
    devices = ["cpu"]
    if acc is not None:
        count = torch.accelerator.device_count() if hasattr(torch, "accelerator") else 1
        devices += [f"{acc}:{i}" for i in range(count)]
    info = {
        "ganforge": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "accelerator": acc or "none",
        "devices": devices,
        "precisions": {d: supported_precisions(torch.device(d)) for d in devices},
        "distributed_backends": [b for b in ("gloo", "nccl", "mpi") if getattr(torch.distributed, f"is_{b}_available", lambda: False)()],
        "families": family_names(), "datasets": dataset_names(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "precisions":
            for dev, res in value.items():
                print(f"precision on {dev}: " + ", ".join(f"{k} {v}" for k, v in res.items()))
        else:
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def _data(args: argparse.Namespace) -> int:
    from ganforge.config import load_config
    from ganforge.data import build_dataset, write_dataset
    from ganforge.data.hdf5 import pack_hdf5
    from ganforge.data.shapes import ShapesDataset
    from ganforge.data.shapes_domains import ShapesDomainDataset
    from ganforge.data.story import ShapesStoryDataset

    if args.action == "write":
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


def _evaluate(args: argparse.Namespace) -> int:
    from ganforge.metrics.evaluate import Evaluator
    from ganforge.metrics.source import open_source
    from ganforge.registry import get_family

    source = open_source(args.source, args.weights, args.overrides, args.device)
    if source.generator.family == "starganv2":
        return _evaluate_starganv2(args, source)
    family_eval = get_family(source.generator.family).evaluation_for(source.dataset)
    # Stories have one metric group; by default every story of the data, up to 1000.
    stories = getattr(family_eval, "task_group", None) == "story"
    args.metrics = args.metrics or ("story" if stories else "oracle")
    if args.n is None:
        args.n = min(1000, len(source.dataset)) if stories else 1000
    if args.classifier:
        if not hasattr(family_eval, "classifier"):
            raise ValueError("--classifier is for story models (storygan) on Pororo-SV")
        from ganforge.models.storygan.characters import load_character_classifier

        family_eval.classifier = load_character_classifier(args.classifier, source.dataset.label_num)
    evaluator = Evaluator(source.dataset, args.metrics, args.n, seed=args.seed, batch_size=args.batch_size,
                          device=args.device, inception_path=args.inception,
                          allow_nonstandard=args.allow_nonstandard_weights, progress=True, family_eval=family_eval)
    print(f"evaluating {source.checkpoint} ({source.generator.weights} weights, step {source.step}) "
          f"on {args.n} images against {type(source.dataset).__name__} ...", file=sys.stderr)
    return _report_evaluation(args, source, evaluator.evaluate_generator(source.generator.net))


def _evaluate_starganv2(args: argparse.Namespace, source: Any) -> int:
    from ganforge.models.starganv2.evaluate import (Starganv2EvalConfig, Starganv2Evaluation, evaluation_data,
                                                     parse_starganv2_metrics)

    metrics = parse_starganv2_metrics(args.metrics or "fid,lpips")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    train, val = evaluation_data(source.config.data, source.config.runtime.seed)
    cfg = Starganv2EvalConfig(metrics=tuple(metrics), modes=modes, num_outs=args.outs,
                              sources=args.n, batch_size=args.batch_size, seed=args.seed,
                              fid_net=args.fid_net)
    evaluation = Starganv2Evaluation(train, val, cfg, args.device, inception_path=args.inception,
                                     lpips_path=args.lpips_backbone, allow_nonstandard=args.allow_nonstandard_weights,
                                     progress=True)
    print(f"evaluating {source.checkpoint} ({source.generator.weights} weights, step {source.step}): "
          f"{', '.join(metrics)}, {', '.join(modes)}-guided, {args.outs} outputs per source, "
          f"domains {', '.join(val.domains)} ...", file=sys.stderr)
    return _report_evaluation(args, source, evaluation.run(source.generator.net))


def _report_evaluation(args: argparse.Namespace, source: Any, result: Any) -> int:
    """Write ``result`` as JSON (``--out`` or RUN/eval/) and print it as a table (or the JSON)."""
    from ganforge.metrics.evaluate import write_result

    # The weights actually evaluated: a run without EMA is evaluated raw whatever --weights asked.
    weights = source.generator.weights
    out = Path(args.out) if args.out else source.run_dir / "eval" / f"{source.checkpoint.stem}-{weights}.json"
    write_result(result, out, {"source": str(args.source), "checkpoint": source.checkpoint.name,
                               "step": source.step, "weights": weights})
    if args.json:
        print(out.read_text(encoding="utf-8"))
    else:
        print(result.table())
        print(f"wrote {out}")
    return 0


def _weights(args: argparse.Namespace) -> int:
    from ganforge.metrics.weights import import_weights, weights_status

    if args.action == "import":
        path = import_weights(args.file, args.name, args.to, args.allow_nonstandard_weights)
        print(f"verified and installed: {path}")
        return 0
    for row in weights_status():
        print(f"{row['name']:<14} {row['file']:<44} {row['size']:<14} {row['found']}")
        print(f"{'':<14} used by: {row['used_by']}")
    return 0


def _oracle(args: argparse.Namespace) -> int:
    from ganforge.config import ConfigError
    from ganforge.metrics.oracle import (OracleRecipe, load_oracle, oracle_path, packaged_oracle_path, train_oracle,
                                         write_packaged_oracle)

    if args.out and not args.retrain:
        raise ConfigError("--out saves a retrained oracle; add --retrain")
    recipe = OracleRecipe()
    if args.retrain:
        oracle = train_oracle(recipe, progress=not args.json)
        path = Path(args.out) if args.out else None
        if path is not None:
            write_packaged_oracle(oracle, path)
    else:
        oracle = load_oracle(recipe)
        packaged = packaged_oracle_path(recipe)
        path = packaged if packaged.is_file() else oracle_path(recipe)
    info = {"path": str(path) if path else None, "recipe": recipe.digest(), "held_out_accuracy": oracle.accuracy}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"shapes oracle {info['recipe']}: {info['path'] or 'retrained, not saved (add --out FILE)'}")
    print("held-out accuracy on the shapes dataset (worst of the class, attributes and unconditional views at 32 and 64 px):")
    for k, v in oracle.accuracy.items():
        print(f"  {k:<9} {v:.4f}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    from ganforge.models.stargan.labels import LabelError
    from ganforge.models.stargan.translate import open_translator, translate_files

    translator = open_translator(args.source, args.weights, args.device)
    src = Path(args.source)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / "translate"
    try:
        grids = translate_files(translator, args.input, out, args.attrs, args.batch_size, not args.no_singles)
    except LabelError as err:
        raise ValueError(str(err)) from None
    source = "its discriminator" if translator.discriminator is not None else "none (all zero: an exported model)"
    print(f"translated to {out} ({len(grids)} grid(s); columns in {out / 'columns.txt'}; input labels from {source})")
    return 0


def _story(args: argparse.Namespace) -> int:
    import torch

    from ganforge.load import drawing_command, load
    from ganforge.models.storygan.story import draw_stories, read_descriptions
    from ganforge.sample import save_grid, save_images
    from ganforge.sample.story import story_strips

    gen = load(args.source, weights=args.weights, device=args.device)
    if not getattr(gen.net, "needs_descriptions", False):
        raise ValueError(f"'{args.source}' is a {gen.family} model; `ganforge story` draws with StoryGAN runs "
                         f"(this one: `{drawing_command(gen.family, args.source)}`)")
    m = gen.model_config
    src = Path(args.source)
    base = src if src.is_dir() else src.parent
    truth = None
    if args.from_data is not None:
        from ganforge.config import apply_overrides, load_yaml, resolve
        from ganforge.data import build_dataset

        cfg_path = base / "config.yaml" if (base / "config.yaml").is_file() else base.parent / "config.yaml"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"--from-data reads the run's config.yaml; none beside '{args.source}'")
        cfg = resolve(apply_overrides(load_yaml(cfg_path.read_text(encoding="utf-8")), args.overrides))
        data = build_dataset(cfg.data, cfg.runtime.seed)
        items = [data.get(i) for i in range(min(args.from_data, len(data)))]
        descriptions = torch.stack([it["descriptions"] for it in items])
        truth = torch.stack([it["images"] for it in items])
        # The name says which stories, so drawing another range or split does not overwrite this strip.
        name = f"{cfg.data.name}{len(items)}"
        if cfg.data.story_range:
            name += f"-stories{cfg.data.story_range[0]}-{cfg.data.story_range[1]}"
        if cfg.data.split != "train":
            name += f"-{cfg.data.split}"
    else:
        if args.overrides:
            raise ValueError(f"key=value overrides ({', '.join(args.overrides)}) only apply with --from-data")
        descriptions = torch.from_numpy(read_descriptions(args.descriptions, m.video_len, m.text_dim, args.text_encoder))
        name = Path(args.descriptions).stem
    stories = draw_stories(gen, descriptions, args.seed, args.device)
    images, per_row = story_strips(stories, truth)
    out = Path(args.out or base / "samples" / f"story-{name}-seed{args.seed}.png")
    save_grid(images, out, nrow=per_row)
    if args.frames:
        save_images(stories.flatten(0, 1), out.with_suffix(""), prefix="frame")
    beside = " (generated | ground truth)" if truth is not None else ""
    print(f"drew {len(stories)} stories of {m.video_len} frames: {out}{beside}")
    return 0


def _import(args: argparse.Namespace) -> int:
    if args.family != "starganv2" and args.fan:
        raise ValueError("--fan is a StarGAN v2 option")
    if args.family == "starganv2":
        from ganforge.models.starganv2.official import import_official as import_starganv2

        if args.discriminator or args.labels:
            raise ValueError("--discriminator and --labels are StarGAN options; StarGAN v2's _nets.ckpt and "
                             "_optims.ckpt are found beside the given file")
        path = import_starganv2(args.checkpoint, args.out, args.preset, args.overrides, args.fan)
        print(f"imported into {path}; try `ganforge export {args.out} --format onnx`")
        return 0
    if args.family == "storygan":
        from ganforge.models.storygan.official import import_official as import_storygan

        if args.labels:
            raise ValueError("--labels is a StarGAN option")
        d_im = args.discriminator  # the image D; the story D is always found beside the generator
        path = import_storygan(args.checkpoint, args.out, d_im, None, args.preset or "storygan/clevr_sv",
                               args.overrides)
        print(f"imported into {path}; try `ganforge story {args.out} --descriptions FILE`")
        return 0
    if args.family == "biggan":
        from ganforge.models.biggan.official import import_official as import_biggan

        if args.discriminator or args.labels:
            raise ValueError("--discriminator and --labels are StarGAN options; BigGAN's D.pth, optimizers and "
                             "state_dict.pth are found beside the generator file")
        path = import_biggan(args.checkpoint, args.out, args.preset or "biggan/imagenet128", args.overrides)
        print(f"imported into {path}; try `ganforge sample {args.out} --mode sheet`")
        return 0
    from ganforge.models.stargan.official import import_official

    labels = [t.strip() for t in args.labels.split(",") if t.strip()] if args.labels else []
    path = import_official(args.checkpoint, args.out, args.discriminator, labels, args.preset or "stargan/celeba",
                           args.image_size, args.overrides)
    print(f"imported into {path}; try `ganforge translate {args.out} --input IMAGES`")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train, "bench": _bench, "resume": _resume, "sample": _sample, "export": _export, "evaluate": _evaluate,
    "weights": _weights, "oracle": _oracle, "info": _info, "data": _data, "translate": _translate, "import": _import,
    "story": _story,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ganforge`` console script; returns the exit code."""
    parser = _parser()
    # key=value overrides may come after options (`train P --dry-run a=1`): argparse's subparsers
    # leave such trailing positionals unparsed, so collect them here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verb is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from ganforge.config import ConfigError
    from ganforge.data.images import DataError
    from ganforge.metrics.evaluate import EvalError
    from ganforge.metrics.weights import WeightsError
    from ganforge.registry import RegistryError
    from ganforge.train.checkpoint import CheckpointError
    from ganforge.train.memory import DeviceMemoryError
    from ganforge.train.trainer import TrainingDiverged

    try:
        return HANDLERS[args.verb](args)
    except (ConfigError, DataError, RegistryError, CheckpointError, FileExistsError, FileNotFoundError,
            EvalError, WeightsError, DeviceMemoryError) as err:
        print(f"ganforge {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"ganforge {args.verb}: training diverged: {err}", file=sys.stderr)
        return 3
    except ValueError as err:  # device, batch split and other validation errors raised before work
        if args.verbose:
            raise
        print(f"ganforge {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
