"""
Quickstart: a 1-bit classifier on digits
========================================

Fit :class:`~sklearn_bnn.BinaryNetClassifier` in a pipeline and compare its three
inference modes: the deterministic 1-bit network (the deployable model), the
surrogate it was trained through, and the stochastic network averaged over samples.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

model = make_pipeline(StandardScaler(), BinaryNetClassifier((128, 128), random_state=0))
model.fit(X_train, y_train)
clf = model[-1]

modes = ["binary", "surrogate", "mc"]
scores = [model.set_params(binarynetclassifier__inference=m).score(X_test, y_test) for m in modes]
for mode, score in zip(modes, scores):
    print(f"{mode:>9}: test accuracy {score:.3f}")
print(clf.summary())

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.plot(clf.loss_curve_)
ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training")
ax2.bar(modes, scores)
ax2.set(ylim=(0.8, 1.0), ylabel="test accuracy", title="Inference modes")
fig.tight_layout()
plt.show()
