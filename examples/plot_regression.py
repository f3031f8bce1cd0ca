"""
Regression with a 1-bit network
===============================

Fit :class:`~sklearn_bnn.BinaryNetRegressor` (its defaults: one hidden layer of 256
:math:`\\pm 1` weights per unit over the features and their thermometer code, a ridge term
under the network) next to :class:`~sklearn.neural_network.MLPRegressor` and
:class:`~sklearn.linear_model.Ridge` on two tables: scikit-learn's diabetes data, on which a
linear model is as good as any (Ridge scores best here), and Friedman's first function
(:func:`~sklearn.datasets.make_friedman1`), which is not linear.  Then check that the
bit-packed export predicts exactly what the estimator predicts.

The regressor standardises the target itself; the MLP is given a standardised target too
(:class:`~sklearn.compose.TransformedTargetRegressor`), as a practitioner would.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetRegressor

tables = {
    "diabetes": load_diabetes(return_X_y=True),
    "friedman1": make_friedman1(n_samples=1500, noise=1.0, random_state=0),
}


def models():
    mlp = TransformedTargetRegressor(MLPRegressor(random_state=0), transformer=StandardScaler())
    return {
        "BinaryNetRegressor": make_pipeline(StandardScaler(), BinaryNetRegressor(random_state=0)),
        "MLPRegressor": make_pipeline(StandardScaler(), mlp),
        "Ridge": make_pipeline(StandardScaler(), Ridge()),
    }


# %%
# Three models on the same standardised features, per table.
scores, fitted = {}, {}
for table, (X, y) in tables.items():
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    for name, model in models().items():
        with warnings.catch_warnings():
            # MLPRegressor's 200 epochs end before its loss stops improving here
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        scores[table, name] = model.score(X_test, y_test)
        fitted[table, name] = (model, X_test, y_test)
        print(f"{table:>9} {name:>18}: test R^2 = {scores[table, name]:.3f}")

# what this example shows, checked: on the non-linear table the 1-bit network is far above
# the linear model; on diabetes (442 rows, close to linear) Ridge is above both networks
assert scores["friedman1", "BinaryNetRegressor"] >= scores["friedman1", "Ridge"] + 0.1, scores

# %%
# The deployable artefact: the packed network's ``logits`` are the predictions (its head
# carries the target scaling), equal to the estimator's, bit for bit.
reg, X_test, y_test = fitted["friedman1", "BinaryNetRegressor"]
packed = reg[-1].export_binary()
exact = np.array_equal(packed.logits(reg[0].transform(X_test))[:, 0], reg.predict(X_test))
print("export predicts exactly as the estimator:", exact)
assert exact
print(reg[-1].summary())

# %%
# Test R^2 per table, and predicted against measured values on Friedman's function.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
names = ["BinaryNetRegressor", "MLPRegressor", "Ridge"]
for j, name in enumerate(names):
    values = [scores[t, name] for t in tables]
    bars = ax1.bar(np.arange(len(tables)) + (j - 1) * 0.27, values, 0.27, label=name)
    ax1.bar_label(bars, fmt="%.2f", fontsize=7)
ax1.set_xticks(range(len(tables)), list(tables))
ax1.set(ylabel="test $R^2$", ylim=(0, 1.1))
ax1.legend(fontsize=7)
for name, color in (("BinaryNetRegressor", "C0"), ("Ridge", "C2")):
    model, X_test, y_test = fitted["friedman1", name]
    ax2.scatter(y_test, model.predict(X_test), s=8, color=color, label=name, alpha=0.7)
lims = [y_test.min(), y_test.max()]
ax2.plot(lims, lims, color="gray", lw=1)
ax2.set(xlabel="measured", ylabel="predicted", title="friedman1")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()
