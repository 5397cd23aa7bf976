"""Run the WGAN-GP authors' DCGAN pair (igul222/improved_wgan_training, gan_64x64.py) on fixed inputs
and write its outputs for the tests.

Not part of the package, and not run by the tests: it needs TensorFlow 2.x (the code runs under
``tf.compat.v1``), NumPy, Python 3.12 or older (``lib2to3`` converts the Python 2 code) and a copy of the
official repository, which ganforge does not ship:

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu numpy
    /tmp/tf/bin/python scripts/wgan_gp_official_reference.py --official /tmp/improved_wgan_training \\
        --out tests/data/wgan_gp_official.npz

The official code saves no checkpoints, so there is nothing to import: this checks the architecture.
``DCGANGenerator`` and ``DCGANDiscriminator`` are taken from gan_64x64.py as written (MODE wgan-gp, so
the critic's norm is tflib's layer norm), built at DIM 4 (the networks scale by DIM), and every variable
is filled by ``tests/gfhelpers.fill_tflib_params`` (seeded, by name; batch-norm moving averages are not
used in training mode and keep their initial values). Written (fp32, CPU): the variables' shapes, the
generator's output on seeded z (batch statistics, as the official graph always uses), the critic's
output on seeded images and on the generated ones, and the critic's gradient with respect to its
input (the quantity the gradient penalty is built on).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gfhelpers import fill_tflib_params  # noqa: E402

DIM, BATCH, SEED = 4, 2, 0


def load_official(official: Path, work: Path) -> tuple[dict, object]:
    """The official network functions (namespace) and the ``tflib`` module, converted to Python 3."""
    shutil.copytree(official / "tflib", work / "tflib")
    shutil.copy(official / "gan_64x64.py", work / "gan_64x64.py")
    subprocess.run([sys.executable, "-m", "lib2to3", "-w", "-n", "-j", "1", str(work)], check=True,
                   capture_output=True)
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf  # tflib says `import tensorflow as tf` and uses the TF1 API
    sys.path.insert(0, str(work))
    import tflib
    import tflib.ops.batchnorm  # noqa: F401
    import tflib.ops.conv2d  # noqa: F401
    import tflib.ops.deconv2d  # noqa: F401
    import tflib.ops.layernorm  # noqa: F401
    import tflib.ops.linear  # noqa: F401

    source = (work / "gan_64x64.py").read_text()
    # The network definitions only: the file's top raises without a data folder and its bottom trains.
    defs = source[source.index("def LeakyReLU"):source.index("Generator, Discriminator = GeneratorAndDiscriminator()")]
    namespace = {"tf": tf, "lib": tflib, "np": np, "functools": __import__("functools"),
                 "MODE": "wgan-gp", "DIM": DIM, "OUTPUT_DIM": 64 * 64 * 3}
    exec(compile(defs, "gan_64x64.py", "exec"), namespace)
    return namespace, tflib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="the official repository folder (gan_64x64.py, tflib/)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ns, lib = load_official(Path(args.official), Path(tmp))
        tf = sys.modules["tensorflow"]
        rng = np.random.default_rng(SEED + 1)
        z_value = rng.standard_normal((BATCH, 128)).astype(np.float32)
        x_value = rng.standard_normal((BATCH, 3, 64, 64)).astype(np.float32)
        z = tf.placeholder(tf.float32, [BATCH, 128])
        x = tf.placeholder(tf.float32, [BATCH, 3, 64, 64])
        fake = ns["DCGANGenerator"](BATCH, noise=z)
        critic_real = ns["DCGANDiscriminator"](tf.reshape(x, [BATCH, -1]))
        critic_fake = ns["DCGANDiscriminator"](fake)
        (input_grad,) = tf.gradients(tf.reduce_sum(critic_real), [x])
        trained = {name: p for name, p in lib._params.items() if "moving_" not in name}
        shapes = {name: tuple(p.shape.as_list()) for name, p in trained.items()}
        values = fill_tflib_params(shapes, SEED)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for name, p in trained.items():
                session.run(p.assign(values[name]))
            out = session.run({"G": fake, "D": critic_real, "D_fake": critic_fake, "D_input_grad": input_grad},
                              {z: z_value, x: x_value})
    out["G"] = out["G"].reshape(BATCH, 3, 64, 64)
    names = sorted(shapes)
    np.savez(args.out, z=z_value, x=x_value, names=np.array(names),
             shapes=np.array([",".join(map(str, shapes[n])) for n in names]), **out)
    print(f"wrote {args.out}: {len(names)} variables, " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))


if __name__ == "__main__":
    main()
