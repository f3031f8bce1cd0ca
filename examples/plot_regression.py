"""
Regression with a 1-bit network
===============================

Fit :class:`~sklearn_bnn.BinaryNetRegressor` on scikit-learn's diabetes data next to
:class:`~sklearn.neural_network.MLPRegressor` and :class:`~sklearn.linear_model.Ridge`,
then check that the bit-packed export predicts exactly what the estimator predicts.

The regressor standardises the target itself; the MLP is given a standardised target too
(:class:`~sklearn.compose.TransformedTargetRegressor`), as a practitioner would.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Three models on the same standardised features.  The 1-bit network uses its defaults.
mlp = TransformedTargetRegressor(MLPRegressor(random_state=0), transformer=StandardScaler())
models = {
    "BinaryNetRegressor": make_pipeline(StandardScaler(), BinaryNetRegressor(random_state=0)),
    "MLPRegressor": make_pipeline(StandardScaler(), mlp),
    "Ridge": make_pipeline(StandardScaler(), Ridge()),
}
scores = {}
for name, model in models.items():
    with warnings.catch_warnings():
        # MLPRegressor's 200 epochs end before its loss stops improving on this table
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    scores[name] = model.score(X_test, y_test)
    print(f"{name:>18}: test R^2 = {scores[name]:.3f}")

# %%
# The deployable artefact: the packed network's ``logits`` are the predictions (its head
# carries the target scaling), equal to the estimator's, bit for bit.
reg = models["BinaryNetRegressor"]
packed = reg[-1].export_binary()
exact = np.array_equal(packed.logits(reg[0].transform(X_test))[:, 0], reg.predict(X_test))
print("export predicts exactly as the estimator:", exact)
print(reg[-1].summary())

# %%
# Predicted against measured progression on the test rows.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
ax1.bar(list(scores), list(scores.values()), color=["C0", "C1", "C2"])
ax1.set_ylabel("test $R^2$")
ax1.set_ylim(0, max(scores.values()) * 1.2)
ax1.tick_params(axis="x", labelsize=8)
for name, color in (("BinaryNetRegressor", "C0"), ("MLPRegressor", "C1")):
    ax2.scatter(y_test, models[name].predict(X_test), s=8, color=color, label=name, alpha=0.7)
lims = [y.min(), y.max()]
ax2.plot(lims, lims, color="gray", lw=1)
ax2.set_xlabel("measured")
ax2.set_ylabel("predicted")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()
