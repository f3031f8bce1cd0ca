"""
Quickstart: a 1-bit classifier on digits
========================================

Fit :class:`~sklearn_bnn.BinaryNetClassifier` with its defaults in a pipeline and score one
fitted model with its three inference modes: the deterministic 1-bit network (the
deployable model, and what the default ``surrogate="binary"`` trains), the
mean-propagation network S1 evaluated on the trained weight means
(``inference="surrogate"``), and the stochastic network averaged over samples
(``inference="mc"``).

The defaults here are hidden layers (128, 128) and 20 epochs on a table of this size;
``make demo`` fits (256, 256) and its table is on the benchmarks page.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

# %%
# Standardise the features (the first layer expects inputs of unit scale) and fit.  The
# default cosine schedule runs its epochs to the end, so the fit does not warn.
model = make_pipeline(StandardScaler(), BinaryNetClassifier(random_state=0))
model.fit(X_train, y_train)
clf = model[-1]
print(f"{clf.n_iter_} epochs")

# %%
# ``inference`` is read at prediction time: one fitted model, three networks.  Trained as
# itself, the 1-bit network is the one to deploy; the other two are read off the same
# weight means but were not what the loss was minimised on.
modes = ["binary", "surrogate", "mc"]
scores = [model.set_params(binarynetclassifier__inference=m).score(X_test, y_test) for m in modes]
for mode, score in zip(modes, scores):
    print(f"{mode:>9}: test accuracy {score:.3f}")

# %%
# Sizes: the binary layers bit-packed against float32.  With the defaults the first layer
# is real (float32) and reads the features and their thermometer code.
print(clf.summary())

# %%
# The training loss, and the fraction of 1-bit weights sign(M) that flipped in each epoch.
# With the defaults (a linear term under the network, Adam at 1e-3 annealed over 20 epochs)
# the weight means move less than their initial magnitude, so no sign flips: the hidden
# binary layer keeps its initial signs and the network learns through the real first layer,
# the thresholds and the head, on top of the linear term.  (At learning_rate_init=3e-3 with
# batches of 64 the signs flip early and the flips die out as the rate anneals.)
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.5))
ax1.plot(clf.loss_curve_)
ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training")
ax2.plot(clf.flip_ratio_)
ax2.set(xlabel="epoch", ylabel="fraction flipped", title="Sign flips of M")
bars = ax3.bar(modes, scores)
ax3.bar_label(bars, fmt="%.3f")
ax3.set(ylim=(0.0, 1.05), ylabel="test accuracy", title="Inference modes")
fig.tight_layout()
plt.show()
