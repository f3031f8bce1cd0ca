"""
Deploying the 1-bit network: export, save, load, predict without torch
======================================================================

:meth:`~sklearn_bnn.BinaryNetClassifier.export_binary` turns a fitted classifier into a
:class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`: the weight signs bit-packed with
``np.packbits``, one integer popcount threshold per hidden unit (the biases folded in
exactly), a float threshold per first-layer unit and the real output layer.  Its
``predict`` needs numpy only (and runs the XNOR-popcount in a small C kernel where a C
compiler is available) and equals the classifier's ``inference="binary"`` predictions;
``save``/``load`` use one ``.npz`` file, no pickle.  Folding the
:class:`~sklearn.preprocessing.StandardScaler` into the artefact (``with_input_scaling``)
makes it take raw features.
"""

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn.deploy import _kernel
from sklearn_bnn.deploy.packed import PackedBinaryNetwork

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)

# %%
# Fit the all-binary network (every hidden layer +-1, the smallest artefact; the
# defaults keep the first layer real and add an input code, see the tabular page).
clf = BinaryNetClassifier((256, 256), first_layer="binary", encoding="raw", random_state=0)
clf.fit(scaler.transform(X_train), y_train)
print(f"1-bit test accuracy: {clf.score(scaler.transform(X_test), y_test):.4f}")

# %%
# Export, with the scaler folded into the artefact so that it takes raw pixels.
packed = clf.export_binary().with_input_scaling(scaler.mean_, scaler.scale_)
same = np.array_equal(packed.predict(X_test), clf.predict(scaler.transform(X_test)))
print(f"packed predictions equal the classifier's: {same}")
assert same, "the exported network must predict what the classifier predicts"

# %%
# Save to one file and load it back; compare its size with the float32 state dict.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "digits_1bit.npz"
    packed.save(path)
    loaded = PackedBinaryNetwork.load(path)
    size = path.stat().st_size
print(
    f"reloaded predictions equal: {np.array_equal(loaded.predict(X_test), packed.predict(X_test))}"
)
print(clf.summary())
print(f"packed file: {size} bytes")

# %%
# Inference time of the backends on the test set: the compiled XNOR + popcount kernel
# ("native", where a C compiler is present) and numpy's two.
times = {}
backends = ("native", "popcount", "matmul") if _kernel.available() else ("popcount", "matmul")
for backend in backends:
    packed.backend = backend
    packed.predict(X_test)  # warm-up
    start = time.perf_counter()
    for _ in range(20):
        packed.predict(X_test)
    times[backend] = (time.perf_counter() - start) / 20 / len(X_test) * 1e6
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.barh(list(times), list(times.values()))
ax.set_xlabel("microseconds per sample")
ax.set_title("1-bit inference")
fig.tight_layout()
