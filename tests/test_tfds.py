"""The tensorflow-datasets path, offline: tfds's mock data, and a data set that is not there."""

import logging
import time

import numpy as np
import pytest

from jaxnn import data

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name, shape", [("fashion_mnist", (28, 28)), ("kmnist", (28, 28)),
                                         ("cifar10", (32, 32, 3))])
def test_mock_tfds_has_the_mnist_shape(name, shape):
    with tfds.testing.mock_data(num_examples=30):
        ds = data.load(name, validation_size=10)
    assert ds.name == name and ds.num_classes == 10
    assert ds.train.images.shape == (20, *shape) and ds.train.images.dtype == np.uint8
    assert ds.validation.images.shape == (10, *shape)
    assert ds.test.labels.dtype == np.int32 and len(ds.test) == 30
    assert ds.train.labels.min() >= 0 and ds.train.labels.max() < 10


def test_missing_dataset_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ValueError, match="not prepared"):
        data.load("fashion_mnist", data_dir=tmp_path)
    assert time.perf_counter() - start < 10


def test_a_missing_dataset_says_so_once_without_tfds_warnings(tmp_path, caplog):
    """tfds logs an absl warning each time it looks at the unprepared folder; the one
    ValueError says it, and the absl logger's level is left as it was."""
    absl = logging.getLogger("absl")
    before = absl.level
    with caplog.at_level(logging.INFO), pytest.raises(ValueError, match="not prepared"):
        data.load("fashion_mnist", data_dir=tmp_path)
    assert [r.getMessage() for r in caplog.records if r.name == "absl"] == []
    assert absl.level == before


def test_unknown_tfds_name(tmp_path):
    with pytest.raises(ValueError,
                       match="dataset: 'not_a_dataset' is not a tensorflow-datasets data set"):
        data.load("not_a_dataset", data_dir=tmp_path)


def test_import_jaxnn_does_not_import_tfds():
    import subprocess
    import sys

    code = ("import jaxnn, jaxnn.data, jaxnn.experiment, sys; "
            "print('tensorflow_datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "False"


def test_a_misspelled_dataset_is_one_line_with_a_suggestion(tmp_path):
    with pytest.raises(ValueError) as e:
        data.load("mnsit", data_dir=tmp_path)
    message = str(e.value)
    assert "\n" not in message and len(message) < 300, message
    assert "'mnsit' is not a tensorflow-datasets data set" in message
    assert "built in: 'mnist'" in message and "did you mean 'mnist'" in message


def test_a_misspelled_dataset_on_the_command_line(tmp_path, capsys, monkeypatch):
    from jaxnn.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "fashion_mnsit", "--data-dir", str(tmp_path),
                 "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'fashion_mnist'" in err, err
    assert not list(tmp_path.glob("runs/*"))


class JaxnnToyTrainOnly(tfds.core.GeneratorBasedBuilder):
    """A data set with a 'train' split only (as eurosat and tf_flowers have), prepared
    offline in array_record; Tensor features, since tfds's Image encoder needs TensorFlow."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(4, 4), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=3)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"image": np.full((4, 4), i, np.uint8), "label": i % 3}


def test_a_prepared_set_without_a_test_split_names_its_splits(tmp_path):
    JaxnnToyTrainOnly(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    with pytest.raises(ValueError) as e:
        data.load("jaxnn_toy_train_only", data_dir=tmp_path)
    message = str(e.value)
    assert "'jaxnn_toy_train_only' has no 'test' split (its splits: 'train')" in message
    assert "jaxnn needs a 'train' and a 'test' split" in message
    assert "array_record" not in message  # it is prepared in array_record


def test_a_small_tfds_set_holds_out_a_fifth():
    with tfds.testing.mock_data(num_examples=30):
        ds = data.load("beans")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (24, 6, 30)
    assert ds.num_classes == 3
    with tfds.testing.mock_data(num_examples=4), pytest.raises(
            ValueError, match="'beans' has 4 training images; jaxnn holds out the last fifth"):
        data.load("beans")


def test_a_small_tfds_set_trains_from_the_command_line(tmp_path):
    """beans has 1,034 training images: the 10,000 held out from MNIST-sized sets do not fit."""
    import json

    from jaxnn.cli import main

    with tfds.testing.mock_data(num_examples=30):
        assert main(["train", "--dataset", "beans", "--sizes", "750000,10,3", "--epochs", "1",
                     "--no-progress", "--out", str(tmp_path / "run")]) == 0
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(metrics) == 1 and "validation_accuracy" in metrics[0], metrics


class JaxnnToyTwoSplits(JaxnnToyTrainOnly):
    """A 'train' and a 'test' split, prepared offline in array_record."""

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12), "test": self._generate_examples(6)}


def _prepare_two_splits(tmp_path):
    JaxnnToyTwoSplits(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    return next(tmp_path.glob("jaxnn_toy_two_splits/*"))  # the version's directory


def test_a_prepared_set_that_cannot_be_read_says_why(tmp_path):
    """An array_record set that fails to read is not told to be prepared in array_record; one
    prepared in another format (tfrecord needs TensorFlow, so it is written into its info) is."""
    import json

    version_dir = _prepare_two_splits(tmp_path)
    assert len(data.load("jaxnn_toy_two_splits", data_dir=tmp_path).train) == 10
    for f in version_dir.glob("*-test.array_record-*"):
        f.write_bytes(b"")  # a truncated file
    with pytest.raises(ValueError) as e:
        data.load("jaxnn_toy_two_splits", data_dir=tmp_path)
    message = str(e.value)
    assert message.startswith("dataset: could not read the prepared 'jaxnn_toy_two_splits' ("), \
        message
    assert "array_record'" not in message and "\n" not in message

    info = version_dir / "dataset_info.json"
    fields = json.loads(info.read_text())
    fields["fileFormat"] = "tfrecord"
    info.write_text(json.dumps(fields))
    with pytest.raises(ValueError) as e:
        data.load("jaxnn_toy_two_splits", data_dir=tmp_path)
    message = str(e.value)
    assert "could not read 'jaxnn_toy_two_splits' without TensorFlow" in message, message
    assert message.endswith("it is prepared in tfrecord: prepare it again with "
                            "file_format='array_record'"), message
