"""
Quickstart: a 1-bit classifier on digits
========================================

Fit :class:`~sklearn_bnn.BinaryNetClassifier` in a pipeline and compare its three
inference modes: the deterministic 1-bit network (the deployable model), the
surrogate it was trained through, and the stochastic network averaged over samples.

To keep the gallery quick the network is smaller and trained for fewer epochs than
``make demo`` (hidden layers (256, 256), up to 200 epochs); the numbers of that run are on
the benchmarks page.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

# %%
# Standardise the features (the first layer sees them through +-1 weights) and fit.
# 30 epochs are enough for a demonstration; the classifier would say that the loss is
# still improving, hence the filter.
model = make_pipeline(StandardScaler(), BinaryNetClassifier((128, 128), max_iter=30, random_state=0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.fit(X_train, y_train)
clf = model[-1]

# %%
# ``inference`` is read at prediction time: one fitted model, three networks.
modes = ["binary", "surrogate", "mc"]
scores = [model.set_params(binarynetclassifier__inference=m).score(X_test, y_test) for m in modes]
for mode, score in zip(modes, scores):
    print(f"{mode:>9}: test accuracy {score:.3f}")

# %%
# Sizes: the binary layers bit-packed against float32.
print(clf.summary())

# %%
# The training loss, and the fraction of 1-bit weights sign(M) that flipped in each epoch:
# the 1-bit network settles as the flips die out.
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.5))
ax1.plot(clf.loss_curve_)
ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training")
ax2.plot(clf.flip_ratio_)
ax2.set(xlabel="epoch", ylabel="fraction flipped", yscale="log", title="Sign flips of M")
ax3.bar(modes, scores)
ax3.set(ylim=(0.8, 1.0), ylabel="test accuracy", title="Inference modes")
fig.tight_layout()
plt.show()
