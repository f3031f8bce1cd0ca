"""The packed 1-bit network: exact against torch and a brute-force numpy net, files, sizes."""

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, PackedBinaryNetwork, PackedFormatError
from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.deploy import packed as packed_module
from sklearn_bnn.nn.bridge import pack_module
from conftest import fit_quiet

pytestmark = pytest.mark.usefixtures("one_thread")

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS_STD = StandardScaler().fit_transform(X_DIGITS)


def torch_units(module, X, dtype=torch.float32):
    with torch.no_grad():
        device = next(module.parameters()).device  # the fit may have run on a GPU
        x = torch.as_tensor(X, dtype=dtype, device=device)
        return module.features(x, "binary").cpu().numpy()


def brute_force(coefs, intercepts, X):
    """The +-1 network written out in float64 from the weight means (independent of torch)."""
    x = np.asarray(X, dtype=np.float32).astype(np.float64)
    for m, b in zip(coefs[:-1], intercepts[:-1]):  # m: (n_in, n_out) means
        s = np.where(m >= 0, 1.0, -1.0)
        alpha = np.maximum(np.abs(m).mean(axis=0), 1e-12)
        x = np.where(x @ s / np.sqrt(m.shape[0]) + b / alpha >= 0, 1.0, -1.0)
    return x, x @ coefs[-1] + intercepts[-1]


def random_network(n_features, sizes, n_outputs, seed, dtype=torch.float32):
    torch.manual_seed(seed)
    net = BinaryNetwork(n_features, sizes, n_outputs).to(dtype)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.5)
    return net


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_predictions_equal_torch_binary_inference(seed):
    clf = fit_quiet(
        BinaryNetClassifier(
            (256, 256),
            max_iter=3,
            first_layer="binary",
            encoding="raw",
            linear=False,  # the network alone: its logits against the brute-force net
            random_state=seed,
        ),
        X_DIGITS_STD,
        Y_DIGITS,
    )
    packed = clf.export_binary()
    np.testing.assert_array_equal(packed.predict(X_DIGITS_STD), clf.predict(X_DIGITS_STD))
    np.testing.assert_allclose(
        packed.predict_proba(X_DIGITS_STD), clf.predict_proba(X_DIGITS_STD), atol=1e-5
    )
    np.testing.assert_array_equal(
        packed.transform(X_DIGITS_STD), torch_units(clf.net_.module_, X_DIGITS_STD)
    )
    # and the brute-force numpy net built from the weight means
    units, logits = brute_force(clf.coefs_, clf.intercepts_, X_DIGITS_STD)
    np.testing.assert_array_equal(packed.transform(X_DIGITS_STD), units)
    np.testing.assert_allclose(packed.logits(X_DIGITS_STD), logits, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_classes", [2, 17])
def test_random_data_predictions_equal_torch_and_brute_force(seed, n_classes):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 13)) * rng.uniform(0.1, 10.0, size=13)
    y = np.arange(400) % n_classes
    clf = fit_quiet(
        BinaryNetClassifier(
            (37, 70, 9),
            max_iter=5,
            learning_rate_init=3e-2,
            first_layer="binary",
            encoding="raw",
            linear=False,  # the network alone: its logits against the brute-force net
            random_state=seed,
        ),
        X,
        y,
    )
    packed = clf.export_binary()
    X_test = rng.normal(size=(1000, 13)) * 3.0
    expected = clf.predict(X_test)
    for backend in packed_module.BACKENDS:
        packed.backend = backend
        np.testing.assert_array_equal(packed.predict(X_test), expected)
        units = torch_units(clf.net_.module_, X_test)
        np.testing.assert_array_equal(packed.transform(X_test), units)
    units, logits = brute_force(clf.coefs_, clf.intercepts_, X_test)
    np.testing.assert_array_equal(packed.transform(X_test), units)
    np.testing.assert_allclose(packed.logits(X_test), logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(packed.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_untrained_random_networks_and_odd_widths(seed):
    # uniform means in [-1, 1] and N(0, 0.5) biases: many units near their threshold
    net = random_network(7, (65, 1, 129, 8), 4, seed)
    packed = pack_module(net)
    X = np.random.default_rng(seed).normal(size=(2000, 7))
    for backend in packed_module.BACKENDS:
        packed.backend = backend
        np.testing.assert_array_equal(packed.transform(X), torch_units(net, X))
    with torch.no_grad():
        logits = net(torch.as_tensor(X, dtype=torch.float32), "binary").numpy()
    np.testing.assert_allclose(packed.logits(X), logits, atol=1e-5)


def test_float64_network():
    net = random_network(5, (40, 40), 3, seed=3, dtype=torch.float64)
    packed = pack_module(net)
    assert packed.layers[0].threshold.dtype == np.float64
    X = np.random.default_rng(0).normal(size=(1000, 5))
    np.testing.assert_array_equal(packed.transform(X), torch_units(net, X, torch.float64))


def _tie_network(first_bias, hidden_bias):
    """4 -> 16 -> 3 -> 2 with weights exactly +-1 (so alpha = 1 and offset = bias)."""
    net = BinaryNetwork(4, (16, 3), 2)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.as_tensor(rng.choice([-1.0, 1.0], size=layer.weight.shape)))
        net.layers[0].bias.copy_(torch.as_tensor(first_bias, dtype=torch.float32))
        net.layers[1].bias.copy_(torch.as_tensor(hidden_bias, dtype=torch.float32))
    return net


def test_exact_ties_give_plus_one():
    # scale 1/2 and 1/4 are exact: integer inputs hit fields of exactly 0
    first_bias = np.resize([0.0, 0.5, 1.0, -0.5], 16)  # field = d/2 + b, d in -4..4 (integer x)
    net = _tie_network(first_bias, [0.0, 0.5, -0.5])  # field = d/4 + b, d in {-16, ..., 16}
    X = np.array(np.meshgrid([-1, 0, 1], [-1, 1], [0, 1], [-1, 1])).reshape(4, -1).T
    with torch.no_grad():
        h0 = net.layers[0].binary_forward(torch.as_tensor(X, dtype=torch.float32))
        x1 = torch.where(h0 >= 0, 1.0, -1.0)
        h1 = net.layers[1].binary_forward(x1)
    assert (h0 == 0).any() and (h1 == 0).any()  # the test exercises ties in both layers
    packed = pack_module(net)
    for backend in packed_module.BACKENDS:
        packed.backend = backend
        np.testing.assert_array_equal(packed.transform(X), torch_units(net, X))


def test_ties_after_float_rounding():
    # offsets that cancel the rounded product exactly (field == 0.0 in float32) and their
    # next float below (field < 0): the threshold must follow torch's rounding, not the reals
    net = BinaryNetwork(3, (5, 6), 2)  # scales 1/sqrt(3), 1/sqrt(5): inexact
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.as_tensor(rng.choice([-1.0, 1.0], size=layer.weight.shape)))
        for layer, dots in zip(net.layers, ([1.0, -1.0, 3.0, 1.0, -3.0], [1, 3, -1, 5, 1, -3])):
            cancel = -(torch.tensor(dots, dtype=torch.float32) * layer.scale)
            below = torch.nextafter(cancel, torch.tensor(-np.inf))
            layer.bias.copy_(torch.where(torch.arange(len(dots)) % 2 == 0, cancel, below))
    X = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=float)
    packed = pack_module(net)
    for backend in packed_module.BACKENDS:
        packed.backend = backend
        np.testing.assert_array_equal(packed.transform(X), torch_units(net, X))


def test_zero_means_are_plus_one_weights():
    net = random_network(6, (9, 4), 2, seed=0)
    with torch.no_grad():
        net.layers[0].weight[:, :3] = 0.0
        net.layers[1].weight[:2] = 0.0
    packed = pack_module(net)
    assert packed.layers[0].signs()[:, :3].all() and packed.layers[1].signs()[:2].all()
    X = np.random.default_rng(0).normal(size=(500, 6))
    np.testing.assert_array_equal(packed.transform(X), torch_units(net, X))


def test_lookup_table_popcount_matches_bitwise_count(monkeypatch):
    words = np.random.default_rng(0).integers(0, 2**63, size=(7, 5), dtype=np.uint64)
    expected = np.array([[bin(int(w)).count("1") for w in row] for row in words])
    out = np.empty(words.shape, np.uint8)
    np.testing.assert_array_equal(packed_module._bitwise_count_table(words, out=out), expected)
    net = random_network(8, (100, 70), 3, seed=1)
    X = np.random.default_rng(1).normal(size=(300, 8))
    monkeypatch.setattr(packed_module, "_bitwise_count", packed_module._bitwise_count_table)
    packed = pack_module(net)
    np.testing.assert_array_equal(packed.transform(X), torch_units(net, X))


def test_two_classes_decision_function_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no").astype(object)
    clf = fit_quiet(
        BinaryNetClassifier(
            (16,), max_iter=10, first_layer="binary", encoding="raw", random_state=0
        ),
        X,
        y,
    )
    packed = clf.export_binary()
    scores = packed.decision_function(X)
    assert scores.shape == (300,)
    np.testing.assert_array_equal(packed.predict(X), np.where(scores > 0, "yes", "no"))
    np.testing.assert_array_equal(packed.predict(X), clf.predict(X))


def test_input_scaling_reproduces_a_standard_scaler_pipeline():
    X = X_DIGITS[:600]
    pipe = make_pipeline(
        StandardScaler(),
        BinaryNetClassifier(
            (64,), max_iter=3, first_layer="binary", encoding="raw", linear=False, random_state=0
        ),
    )  # linear=False: the export below is built from the module alone
    fit_quiet(pipe, X, Y_DIGITS[:600])
    scaler, clf = pipe[0], pipe[-1]
    net = clf.net_.module_
    packed = pack_module(
        net, clf.classes_, input_offset=scaler.mean_, input_scale=scaler.scale_
    )
    np.testing.assert_array_equal(packed.predict(X_DIGITS), pipe.predict(X_DIGITS))
    f = io.BytesIO()
    packed.save(f)
    loaded = PackedBinaryNetwork.load(io.BytesIO(f.getvalue()))
    np.testing.assert_array_equal(loaded.input_scale, scaler.scale_)
    np.testing.assert_array_equal(loaded.predict(X_DIGITS), pipe.predict(X_DIGITS))


def test_rejects_bad_inputs():
    packed = pack_module(random_network(3, (8,), 2, seed=0))
    with pytest.raises(ValueError, match="4 features, but this network expects 3"):
        packed.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        packed.predict(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        packed.predict(np.full((1, 3), np.nan))
    with pytest.raises(ValueError, match="Valid backends: 'popcount', 'matmul'"):
        packed.backend = "gpu"


# ------------------------------------------------------------------ files
@pytest.mark.parametrize(
    "classes",
    [
        np.array([3, 7, 11]),
        np.array([-1.5, 0.0, 2.5]),
        np.array(["cat", "dog", "emu"]),
        np.array(["cat", "dog", "emu"], dtype=object),
    ],
)
def test_save_load_round_trip(tmp_path, classes):
    net = random_network(6, (30, 20), 3, seed=0)
    packed = pack_module(net, classes)
    path = tmp_path / "net.bnn"
    packed.save(path)
    assert path.exists() and not (tmp_path / "net.bnn.npz").exists()
    loaded = PackedBinaryNetwork.load(path, backend="matmul")
    assert loaded.backend == "matmul"
    assert loaded.classes_.dtype == classes.dtype
    X = np.random.default_rng(0).normal(size=(200, 6))
    np.testing.assert_array_equal(loaded.predict(X), packed.predict(X))
    np.testing.assert_array_equal(loaded.logits(X), packed.logits(X))
    for a, b in zip(loaded.layers, packed.layers):
        np.testing.assert_array_equal(a.bits, b.bits)
        np.testing.assert_array_equal(a.threshold, b.threshold)
        assert a.threshold.dtype == b.threshold.dtype
    with open(path, "rb") as f:  # the archive holds no pickle
        np.load(f, allow_pickle=False)["classes"]


def test_unsaveable_labels_are_refused():
    labels = np.array([(1,), "a"], dtype=object)
    packed = pack_module(random_network(2, (4,), 2, seed=0), labels)
    with pytest.raises(ValueError, match="without pickle"):
        packed.save(io.BytesIO())


def _saved(packed) -> bytes:
    f = io.BytesIO()
    packed.save(f)
    return f.getvalue()


def _rewrite(data: bytes, **changes) -> bytes:
    arrays = dict(np.load(io.BytesIO(data)))
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


def test_load_refuses_wrong_corrupted_and_newer_files(tmp_path):
    data = _saved(pack_module(random_network(6, (300, 40), 3, seed=0)))
    state_dict = io.BytesIO()
    torch.save(random_network(6, (30,), 3, seed=0).state_dict(), state_dict)
    npy = io.BytesIO()
    np.save(npy, np.arange(3))
    middle = len(data) // 2
    flipped = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    cases = {
        "empty": (b"", "not a readable"),
        "text": (b"hello, world\n" * 10, "not a readable"),
        "pickle": (pickle.dumps({"a": 1}), "not a readable"),
        "npy": (npy.getvalue(), "not an .npz"),
        "torch": (state_dict.getvalue(), "no header"),
        "truncated": (data[: len(data) - 100], "not a readable"),
        "flipped byte": (flipped, "not a readable"),
        "newer": (_rewrite(data, version=packed_module.FORMAT_VERSION + 1), "newer than this"),
        "other format": (_rewrite(data, format="something-else"), "does not name the format"),
        "inconsistent": (_rewrite(data, layer_sizes=[300, 41]), "not a readable"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.bnn"
        path.write_bytes(content)
        with pytest.raises(PackedFormatError, match=message):
            PackedBinaryNetwork.load(path)
    with pytest.raises(FileNotFoundError):
        PackedBinaryNetwork.load(tmp_path / "missing.bnn")


def test_inference_needs_numpy_only(tmp_path):
    # packed.py loaded on its own file path, with torch made unimportable
    net = random_network(5, (40, 24), 3, seed=0)
    packed = pack_module(net, np.array(["a", "b", "c"]))
    packed.save(tmp_path / "net.bnn")
    X = np.random.default_rng(0).normal(size=(50, 5))
    np.save(tmp_path / "X.npy", X)
    script = f"""
import importlib.util, sys
sys.modules["torch"] = None
import numpy as np
spec = importlib.util.spec_from_file_location("packed", {str(Path(packed_module.__file__))!r})
mod = sys.modules["packed"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
net = mod.PackedBinaryNetwork.load({str(tmp_path / "net.bnn")!r})
print(",".join(net.predict(np.load({str(tmp_path / "X.npy")!r}))))
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == list(packed.predict(X))


# ------------------------------------------------------------------ sizes
def test_file_size_against_float32_state_dict_digits(tmp_path):
    clf = BinaryNetClassifier(
        (256, 256), max_iter=1, first_layer="binary", encoding="raw", linear=False, random_state=0
    )  # linear=False: the sizes of the network alone against its module's state dict
    fit_quiet(clf, X_DIGITS_STD, Y_DIGITS)
    packed = clf.export_binary()
    packed.save(tmp_path / "net.bnn")
    torch.save(clf.net_.module_.state_dict(), tmp_path / "state.pt")
    packed_size = (tmp_path / "net.bnn").stat().st_size
    float_size = (tmp_path / "state.pt").stat().st_size
    factor = float_size / packed_size
    print(f"packed file {packed_size} B, float32 state dict {float_size} B: {factor:.1f}x smaller")
    # payload: 10,240 B of signs, 1,536 B of thresholds, 10,280 B of float32 head; the
    # exact float32 head alone caps the factor at 342,677 / 20,520 = 16.7x
    assert packed.nbytes == 10240 + 1024 + 512 + 10280
    assert factor >= 14.0
    summary = clf.summary()
    assert summary.total["packed_bytes"] == packed.nbytes
    assert [r["packed_bytes"] for r in summary.rows] == packed.layer_nbytes()
    # torch.save names the archive after the file, so its size moves by a few bytes
    assert summary.files["packed_file"] == packed_size
    assert abs(summary.files["float32_state_dict"] - float_size) < 100
    assert "on disk" in str(summary)
