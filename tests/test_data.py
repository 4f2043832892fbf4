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


def _toy(n_train, name="toy"):
    images = np.arange(n_train * 4, dtype=np.uint8).reshape(n_train, 2, 2)
    split = data.Split(images, np.arange(n_train, dtype=np.int32) % 3)
    return data.DataSet(name, split, data.Split(images[:2], split.labels[:2]), None, 3)


@pytest.mark.parametrize("num_train, size", [(60_000, 10_000), (50_000, 10_000), (1_034, 206),
                                             (30, 6), (5, 1), (4, 0)])
def test_default_validation_size_is_a_fifth_at_most_10000(num_train, size):
    assert data.default_validation_size(num_train) == size


def test_a_small_set_holds_out_a_fifth_by_default():
    ds = _toy(30).with_validation()
    assert (len(ds.train), len(ds.validation)) == (24, 6)
    np.testing.assert_array_equal(ds.validation.labels, np.arange(24, 30) % 3)  # the last ones
    assert len(data.load("mnist").validation) == 10_000  # the book's split is unchanged


def test_a_set_too_small_to_hold_out_says_how_many_images_it_has():
    with pytest.raises(ValueError, match=r"'toy' has 4 training images; jaxnn holds out the "
                                         r"last fifth of them \(at most 10,000\)"):
        _toy(4).with_validation()
    with pytest.raises(ValueError, match="fewer than the 30 training examples of 'toy'; got 30"):
        _toy(30).with_validation(30)


def test_an_existing_validation_split_is_kept_or_a_different_size_refused():
    book = data.load_mnist("book")
    assert book.with_validation() is book and book.with_validation(10_000) is book
    with pytest.raises(ValueError, match="already holds out 10000 validation examples; got 5000"):
        book.with_validation(5000)
    assert len(data.load("mnist", validation_size=5000).validation) == 5000


def test_load_refuses_a_bad_validation_size():
    with pytest.raises(ValueError, match="expected a positive integer, 'auto' or None; got 'bo"):
        data.load("mnist", validation_size="book")
    # with_validation takes no None: its message does not offer it
    full = data.load("mnist", validation_size=None)
    with pytest.raises(ValueError) as e:
        full.with_validation("book")
    assert str(e.value) == "validation_size: expected a positive integer or 'auto'; got 'book'"
    with pytest.raises(ValueError, match="validation_size"):
        data.load("mnist", validation_size=0)


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), "float32",
                                   np.float64, np.dtype("float64"), "float64"])
def test_to_inputs_takes_any_dtype_like(dtype):
    images = data.load_mnist().test.images[:3]
    want = np.dtype(dtype).type
    x = data.to_inputs(images, dtype=dtype)
    assert type(x) is np.ndarray and x.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(x, images.reshape(3, 784).astype(want) / want(256.0))


def test_to_inputs_refuses_an_integer_dtype():
    with pytest.raises(TypeError, match="dtype: expected a floating dtype"):
        data.to_inputs(np.zeros((1, 2, 2), np.uint8), dtype="int32")
