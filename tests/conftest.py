"""Shared test set-up: hypothesis profiles and a pytree comparison helper.

Profiles: ``ci`` (quick, used by .ci/run), ``dev`` (the default), ``thorough`` (long local runs).
Select with HYPOTHESIS_PROFILE=thorough.
"""

import contextlib
import faulthandler
import os
import shutil
import tempfile

# One persistent compilation cache for the test session, in the temporary directory (never the
# user's home): many tests compile the same programs (the same network, epoch and evaluation),
# each under a fresh jit. The process that starts the session makes the directory before JAX is
# imported and removes it at the end. Each pytest-xdist worker caches in a folder of its own
# there, and every subprocess and notebook kernel it starts inherits that folder: JAX writes a
# cache file in place (not through a rename), so two processes must not write one folder at
# once, and within a worker the tests run one after the other. (One folder for all workers saved
# about 8% more wall time; the one CI run that hung, cause not found, had used one, with the two
# workers' notebook kernels writing it at once.) Programs that compile in under 0.1 s are not
# worth a cache file (measured on four of the modules: the same saving as caching everything,
# with a fifth of the files).
_CACHE_ENV = "JAXNN_TEST_COMPILATION_CACHE"
_OWN_CACHE = _CACHE_ENV not in os.environ
if _OWN_CACHE:
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="jaxnn-test-jax-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
    os.environ[_CACHE_ENV], os.environ.get("PYTEST_XDIST_WORKER", "main"))
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.1"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
# matplotlib's font cache and IPython's profile (the notebook kernels) go there too, not to the
# user's home directory
os.environ["MPLCONFIGDIR"] = os.path.join(os.environ[_CACHE_ENV], "matplotlib")
os.environ["IPYTHONDIR"] = os.path.join(os.environ[_CACHE_ENV], "ipython")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# The command line turns on JAX's persistent compilation cache (~/.cache/jaxnn by default);
# the test suite must not write to the user's home, so the command line's own cache is off
# (its runs use the session's cache above, through JAX's environment variables).
os.environ["JAXNN_CACHE_DIR"] = ""

# Tests compare gradients and compiled programs to float32 tolerances. On GPUs (A100, H100)
# JAX's default runs float32 matmuls and convolutions in TF32 (a 10-bit mantissa); full precision
# keeps the tolerances meaningful there. On the CPU this changes nothing.
jax.config.update("jax_default_matmul_precision", "highest")

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="module")
def float64():
    """Enable float64 for one test module (gradient comparisons), then restore the setting."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def host(x) -> np.ndarray:
    """``x`` as a NumPy array; a typed PRNG key (``jax.random.key``) as its uint32 key data,
    since NumPy cannot hold the key type itself."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def assert_trees_close(actual, expected, *, rtol=1e-7, atol=0.0, name="tree"):
    """Same tree structure, then ``assert_allclose`` leaf by leaf; a failure names the leaf."""
    s_actual = jax.tree_util.tree_structure(actual)
    s_expected = jax.tree_util.tree_structure(expected)
    assert s_actual == s_expected, f"{name}: structure {s_actual} != {s_expected}"
    paths = jax.tree_util.tree_flatten_with_path(expected)[0]
    for (path, e), a in zip(paths, jax.tree_util.tree_leaves(actual)):
        where = name + jax.tree_util.keystr(path)
        assert np.shape(a) == np.shape(e), f"{where}: shape {np.shape(a)} != {np.shape(e)}"
        np.testing.assert_allclose(host(a), host(e), rtol=rtol, atol=atol,
                                   err_msg=where)


def pytest_collection_finish(session):
    """Float32 is the default: a test module that turns float64 on at import would switch it on
    for the whole suite. Such modules use the ``float64`` fixture instead."""
    if jax.config.jax_enable_x64:
        raise pytest.UsageError("jax_enable_x64 is on after collection: a test module enabled "
                                "float64 at import; use the float64 fixture instead")


# A test that never ends must not hang the suite. pytest-timeout (pyproject.toml) stops it from
# a Python thread, which cannot run while the test holds the GIL inside a C call, and under
# pytest-xdist the stacks it prints are lost with the worker. So each test also arms
# faulthandler's watchdog, which needs no GIL: 10 s before that timeout it writes every thread's
# stack to the real standard error (a copy made before pytest captures it, which a worker shares
# with the session's output) and ends the process. xdist then reports the test as crashed, by
# name, and goes on with a new worker.
def pytest_configure(config):
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        config._jaxnn_stderr_fd = os.dup(2)


def _timeout_s(item) -> float:
    """The test's pytest-timeout limit: its timeout marker, else ``--timeout``, else the ini
    value; 0 is none (``--timeout 0`` turns both off, for a debugger session)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    if item.config.getoption("timeout", None) is not None:
        return float(item.config.getoption("timeout"))
    try:
        return float(item.config.getini("timeout") or 0)
    except ValueError:  # pytest-timeout is not installed
        return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    timeout = _timeout_s(item)
    if timeout > 0:
        faulthandler.dump_traceback_later(timeout - min(10.0, timeout / 10), exit=True,
                                          file=item.config._jaxnn_stderr_fd)
    try:
        yield
    finally:
        if timeout > 0:
            faulthandler.cancel_dump_traceback_later()


def pytest_unconfigure(config):
    """The session's compilation cache goes with the process that made it."""
    if _OWN_CACHE:
        shutil.rmtree(os.environ[_CACHE_ENV], ignore_errors=True)
