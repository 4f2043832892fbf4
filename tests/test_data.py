import numpy as np
import pytest

from jaxnn import data
from jaxnn.data import mnist as mnist_mod

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_embedded_mnist_is_the_real_one():
    ds = data.load_mnist()
    assert ds.train.images.shape == (60_000, 28, 28) and ds.train.images.dtype == np.uint8
    assert ds.test.images.shape == (10_000, 28, 28)
    assert ds.train.labels[0] == 5 and ds.test.labels[0] == 7
    np.testing.assert_array_equal(np.bincount(ds.train.labels), TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(ds.test.labels), TEST_COUNTS)


def test_book_split():
    full = data.load_mnist()
    book = data.load_mnist("book")
    assert (len(book.train), len(book.validation), len(book.test)) == (50_000, 10_000, 10_000)
    np.testing.assert_array_equal(book.validation.images, full.train.images[50_000:])
    np.testing.assert_array_equal(book.train.labels, full.train.labels[:50_000])
    assert data.load("mnist").validation is not None


@pytest.mark.parametrize("split", ["original", "book"])
def test_the_shared_arrays_are_read_only(split):
    """load_mnist returns the same arrays to every caller (one read of the file per process):
    an in-place change by one test or caller must fail instead of reaching the next."""
    ds = data.load_mnist(split)
    parts = [ds.train, ds.test] + ([ds.validation] if ds.validation is not None else [])
    for part in parts:
        for array in (part.images, part.labels):
            with pytest.raises(ValueError, match="read-only"):
                array[0] = 0


def test_inputs_are_pixels_over_256():
    ds = data.load_mnist()
    x = data.to_inputs(ds.test.images[:3])
    assert x.shape == (3, 784) and x.dtype == np.float32
    assert x.max() == 255 / 256 and x.min() == 0.0
    assert data.to_inputs(ds.test.images[:3], flatten=False).shape == (3, 28, 28, 1)
    with pytest.raises(TypeError, match="images: expected uint8"):
        data.to_inputs(x.reshape(3, 28, 28))


def test_one_hot_and_out_of_range_labels():
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 10\)"):
        data.one_hot(np.array([3, 10]))


def test_expand_shifts_without_wrapping():
    img = np.zeros((1, 4, 4), np.uint8)
    img[0, 0, 0] = 9  # top-left corner: shifting up or left drops it
    img[0, 2, 1] = 7
    images, labels = data.expand(img, np.array([3]))
    assert images.shape == (5, 4, 4) and list(labels) == [3] * 5
    orig, up, down, left, right = images
    np.testing.assert_array_equal(orig, img[0])
    assert up[1, 1] == 7 and up.sum() == 7  # the corner pixel fell off, nothing wrapped
    assert down[3, 1] == 7 and down[1, 0] == 9 and down.sum() == 16
    assert left[2, 0] == 7 and left.sum() == 7
    assert right[2, 2] == 7 and right[0, 1] == 9


def test_expand_on_mnist_quintuples():
    ds = data.load_mnist()
    images, labels = data.expand(ds.test.images[:100], ds.test.labels[:100])
    assert images.shape == (500, 28, 28) and labels.shape == (500,)
    np.testing.assert_array_equal(images[100:200, :-1], ds.test.images[:100, 1:])  # up


def test_corrupted_file_fails_checksum(tmp_path):
    bad = tmp_path / "mnist.npz"
    raw = bytearray(mnist_mod.MNIST_PATH.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_mnist(path=bad)


def test_unknown_split_and_dataset():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")
    with pytest.raises(ValueError, match="dataset"):
        data.load("")
