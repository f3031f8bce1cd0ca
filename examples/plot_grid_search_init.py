"""
Grid search over initialisation schemes
=======================================

:class:`~sklearn_bnn.BinaryNetClassifier` is an ordinary scikit-learn estimator, so it sits
in a :class:`~sklearn.pipeline.Pipeline` after a
:class:`~sklearn.preprocessing.StandardScaler` and its parameters can be searched with
:class:`~sklearn.model_selection.GridSearchCV`.  Here the search is over ``init``: the
second moment :math:`\\sigma_m^2` of the weight means (the default 0.05 and a large 0.5),
Glorot's rule applied to the means, and the mean-field solver's ``"critical"`` choice.

The network alone is searched (``linear=False``): with the default linear term under it,
logistic regression carries digits and every init scores alike.  The initial magnitude
:math:`\\sigma_m` of a mean is also its distance from a sign flip, so ``init`` decides how
freely the :math:`\\pm 1` weights learn in a short fit.  The grid is kept small (one hidden
layer of 64 units, batches of 128, 15 epochs, 3 folds) so that it runs in well under a
minute on two CPU cores; see the user guide for what each
scheme does.  Every candidate must fit: a candidate that raised would appear as a ``nan``
score with a ``FitFailedWarning``, which fails this gallery's build.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

pipe = make_pipeline(
    StandardScaler(),
    BinaryNetClassifier((64,), linear=False, batch_size=128, max_iter=15, random_state=0),
)
param_grid = {"binarynetclassifier__init": [0.05, 0.5, "glorot", "critical"]}
search = GridSearchCV(pipe, param_grid, cv=StratifiedKFold(3, shuffle=True, random_state=0))

# %%
# Fit the search.  Each candidate is scored by the 1-bit network (``inference="binary"``,
# the default), which is the model one would deploy.  The cosine schedule runs its 15
# epochs to the end, so no fit warns.
search.fit(X_train, y_train)
assert np.isfinite(search.cv_results_["mean_test_score"]).all()
# what this example shows, checked: the init scheme matters to the network alone
spread = np.ptp(search.cv_results_["mean_test_score"])
assert spread >= 0.02, search.cv_results_["mean_test_score"]

results = search.cv_results_
labels = [repr(p["binarynetclassifier__init"]) for p in results["params"]]
for label, mean, std, t in zip(
    labels, results["mean_test_score"], results["std_test_score"], results["mean_fit_time"]
):
    print(f"init={label:<10}  CV accuracy {mean:.3f} +- {std:.3f}   fit {t:.1f} s")
print("best:", search.best_params_, f"test accuracy {search.score(X_test, y_test):.3f}")

# %%
# Small means (``"glorot"``, the default 0.05) start close to a sign flip; 0.5 and the
# solver's choice for one layer (which maximises signal propagation at initialisation, not
# how far a short fit can move the signs) start far from one.
#
# What ``"critical"`` chose for this network (the default ``surrogate="binary"``, Gaussian
# noise of scale 1, one hidden layer) is the mean-field solver's answer, recorded in
# ``critical_init_`` of a fitted model.
critical = clone(pipe).set_params(binarynetclassifier__init="critical").fit(X_train, y_train)
print(critical[-1].critical_init_["message"])

# %%
# The same comparison as a plot, with the spread over folds.
fig, ax = plt.subplots(figsize=(6, 3.5))
order = np.arange(len(labels))
bars = ax.bar(order, results["mean_test_score"], yerr=results["std_test_score"], capsize=4)
ax.bar_label(bars, fmt="%.3f", label_type="center", color="white")
ax.set_xticks(order, labels)
ax.set(ylim=(0.5, 1.0), xlabel="init", ylabel="CV accuracy (1-bit network)")
ax.set_title("GridSearchCV over init schemes, digits, hidden (64,)")
fig.tight_layout()
plt.show()
