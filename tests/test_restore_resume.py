"""Estimator-level training checks that fail when the estimator is wrong.

* Every training path learns a problem that a network with frozen hidden layers cannot
  (the real head alone on random binary features of two concentric circles).
* Early stopping restores the best epoch's weights (compared with the weights recorded at
  every epoch, and re-evaluated on the held-out rows), for each surrogate.
* Resuming is exact for each training path: warm-started fits of a then b epochs, and
  a + b ``partial_fit`` calls, equal one fit of a + b epochs.
* ``warm_start`` / ``partial_fit`` refuse a changed architecture, noise or slope.

Every test passes the parameters it relies on explicitly, so changes of the defaults do
not change what it checks.
"""

import numpy as np
import pytest
import torch
from conftest import fit_quiet
from sklearn.datasets import load_iris, make_circles
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn import _base as classifier_module
from sklearn_bnn._training import EpochCheckpoint, SBNNet
from sklearn_bnn.nn.noise import GaussianNoise, LogisticNoise

pytestmark = pytest.mark.usefixtures("one_thread_module")

X_CIRCLES, Y_CIRCLES = make_circles(400, noise=0.08, factor=0.5, random_state=0)
X_CIRCLES = StandardScaler().fit_transform(X_CIRCLES)
X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_IRIS = StandardScaler().fit_transform(X_IRIS)

#: (surrogate, gradient_estimator, noise, inference scored): every training path
PATHS = [
    ("binary", "auto", GaussianNoise(0.3), "binary"),  # the default path first
    ("deterministic", "auto", GaussianNoise(0.3), "surrogate"),
    ("lrt", "auto", GaussianNoise(0.3), "surrogate"),
    ("lrt", "st", GaussianNoise(0.3), "surrogate"),
    ("sampled", "st", GaussianNoise(0.3), "mc"),
    ("sampled", "psa", LogisticNoise(0.3), "mc"),
    ("sampled", "reinforce", LogisticNoise(0.3), "mc"),
    ("sampled", "arm", LogisticNoise(0.3), "mc"),
]
PATH_IDS = [f"{s}+{e}" for s, e, _, _ in PATHS]


def _clf(surrogate, estimator, noise, inference, **kw):
    params = {
        "hidden_layer_sizes": (16,),
        "surrogate": surrogate,
        "gradient_estimator": estimator,
        "noise": noise,
        "inference": inference,
        "n_mc_samples": 16,
        "init": 0.05,
        "batch_size": 32,
        "linear": False,  # the network's training paths are the subject, not a linear term
        "max_iter": 40,
        "learning_rate_init": 2e-2,
        "early_stopping": False,
        "n_iter_no_change": 50,
        "tol": 0.0,
        "slope": 1.0,
        "shuffle": True,
        "alpha": 0.0,
        "device": "cpu",
        "random_state": 0,
        # the all-binary network on raw features at a constant rate (a cosine schedule
        # restarts with every fit, so a + b epochs would not be one fit of a + b)
        "first_layer": "binary",
        "encoding": "raw",
        "learning_rate": "constant",
    }
    return BinaryNetClassifier(**{**params, **kw})


@pytest.fixture
def frozen_hidden_layers(monkeypatch):
    """Zero every hidden-layer gradient before the optimiser step: only the head learns."""
    step = SBNNet.train_step_single

    def train_step_single(self, batch, **kw):
        out = step(self, batch, **kw)
        for layer in self.module_.layers:
            for p in layer.parameters():
                if p.grad is not None:
                    p.grad.zero_()
        return out

    monkeypatch.setattr(SBNNet, "train_step_single", train_step_single)


# ------------------------------------------------------------- frozen hidden layers
#: Training accuracy on the circles (400 rows, hidden (16,), 40 epochs, batch 32, lr 2e-2),
#: measured for random_state 0, 1, 2 (single thread):
#:   trained:  binary+auto 0.975-0.983, deterministic 0.998-1.0, lrt 1.0, lrt+st 0.995-1.0,
#:             sampled+st 0.995-1.0, psa 0.995, reinforce 0.988-1.0, arm 0.953-0.993
#:   frozen hidden layers (head only): 0.46-0.512 on every path.
#: The bar 0.9 sits 0.05 below the worst trained run and 0.39 above the best frozen one.
TRAINED_BAR = 0.9
FROZEN_CEILING = 0.65


@pytest.mark.parametrize("surrogate, estimator, noise, inference", PATHS, ids=PATH_IDS)
def test_every_training_path_learns_what_the_head_alone_cannot(
    surrogate, estimator, noise, inference
):
    clf = fit_quiet(_clf(surrogate, estimator, noise, inference), X_CIRCLES, Y_CIRCLES)
    assert clf.score(X_CIRCLES, Y_CIRCLES) > TRAINED_BAR


def test_the_accuracy_bar_rejects_frozen_hidden_layers(frozen_hidden_layers):
    """The control: the default path with its hidden layers frozen stays at chance."""
    clf = fit_quiet(_clf(*PATHS[0]), X_CIRCLES, Y_CIRCLES)
    assert clf.score(X_CIRCLES, Y_CIRCLES) < FROZEN_CEILING < TRAINED_BAR


# ------------------------------------------------------------------ early stopping
@pytest.fixture
def recorded(monkeypatch):
    """Record every epoch's weights and the validation split the classifier draws."""
    log = {"states": [], "split": None}
    on_epoch_end = EpochCheckpoint.on_epoch_end

    def record_epoch(self, net, **kw):
        on_epoch_end(self, net, **kw)
        log["states"].append({k: v.detach().clone() for k, v in net.module_.state_dict().items()})

    split = classifier_module.train_test_split

    def record_split(*args, **kw):
        log["split"] = split(*args, **kw)
        return log["split"]

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", record_epoch)
    monkeypatch.setattr(classifier_module, "train_test_split", record_split)
    return log


ES_PATHS = [p for p in PATHS if p[1] in ("auto",)] + [PATHS[4]]  # each surrogate once


@pytest.mark.parametrize(
    "surrogate, estimator, noise, inference", ES_PATHS, ids=[f"{p[0]}+{p[1]}" for p in ES_PATHS]
)
def test_early_stopping_restores_the_best_epochs_weights(
    recorded, surrogate, estimator, noise, inference
):
    clf = _clf(
        surrogate,
        estimator,
        noise,
        inference,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=60,
        validation_fraction=0.25,
        learning_rate_init=5e-2,
    )
    fit_quiet(clf, X_CIRCLES, Y_CIRCLES)
    scores = clf.validation_scores_
    assert clf.n_iter_ < 60 and len(recorded["states"]) == clf.n_iter_ == len(scores)
    best = int(np.argmax(scores))  # the first epoch reaching the maximum (tol=0)
    assert best == clf.n_iter_ - 4, "stopped 3 epochs without improvement"
    final = clf.net_.module_.state_dict()
    for k, v in recorded["states"][best].items():
        torch.testing.assert_close(final[k], v, rtol=0, atol=0, msg=k)
    # the last epoch's weights differ, so restoring is what made them equal
    assert any(not torch.equal(final[k], v) for k, v in recorded["states"][-1].items())
    # evaluated: the restored model scores the best validation accuracy on the held-out rows
    _, valid = recorded["split"]
    acc = np.mean(clf.predict(X_CIRCLES[valid]) == Y_CIRCLES[valid])
    assert acc == pytest.approx(clf.best_validation_score_, abs=1e-12)


# --------------------------------------------------------------------- exact resume
RESUME = {
    "hidden_layer_sizes": (8,),
    "batch_size": 32,
    "learning_rate_init": 1e-2,
    "n_mc_samples": 4,
}


def _resume_clf(path, **kw):
    return _clf(*path, **{**RESUME, **kw})


def _same_model(a, b):
    assert a.n_iter_ == b.n_iter_ and a.loss_curve_ == b.loss_curve_
    sa, sb = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
    np.testing.assert_array_equal(a.predict_proba(X_IRIS), b.predict_proba(X_IRIS))


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_warm_start_and_partial_fit_resume_exactly(path):
    full = fit_quiet(_resume_clf(path, max_iter=5), X_IRIS, Y_IRIS)
    warm = fit_quiet(_resume_clf(path, max_iter=2, warm_start=True), X_IRIS, Y_IRIS)
    fit_quiet(warm.set_params(max_iter=3), X_IRIS, Y_IRIS)
    _same_model(warm, full)
    part = _resume_clf(path)
    for _ in range(5):
        part.partial_fit(X_IRIS, Y_IRIS, classes=[0, 1, 2])
    _same_model(part, full)
    # and the check can fail: one epoch more is another model
    more = fit_quiet(_resume_clf(path, max_iter=6), X_IRIS, Y_IRIS)
    assert more.loss_curve_[:5] == full.loss_curve_
    assert not np.array_equal(more.coefs_[0], full.coefs_[0])


# ------------------------------------------------------------ warm start, changed net
CHANGES = [
    ({"hidden_layer_sizes": (20, 20)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (9,)}, "hidden_layer_sizes"),
    ({"noise": "logistic"}, "noise"),
    ({"noise": GaussianNoise(0.5)}, "noise"),
    ({"surrogate": "deterministic", "slope": "unit"}, "slope"),
]


def _warm(**kw):
    params = {
        "hidden_layer_sizes": (8,),
        "surrogate": "deterministic",
        "noise": "gaussian",
        "batch_size": 32,
        "max_iter": 2,
        "learning_rate_init": 1e-2,
        "early_stopping": False,
        "init": 0.05,
        "random_state": 0,
        # the all-binary network on raw features at a constant rate (a cosine schedule
        # restarts with every fit, so a + b epochs would not be one fit of a + b)
        "first_layer": "binary",
        "encoding": "raw",
        "learning_rate": "constant",
        "warm_start": True,
    }
    return fit_quiet(BinaryNetClassifier(**{**params, **kw}), X_IRIS, Y_IRIS)


@pytest.mark.parametrize(
    "change, name", CHANGES, ids=[c[1] + str(i) for i, c in enumerate(CHANGES)]
)
@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_warm_start_with_a_changed_network_raises(change, name, how):
    clf = _warm()
    before = clf.predict_proba(X_IRIS)
    clf.set_params(**change)
    with pytest.raises(ValueError, match=f"{name} changed since it was fitted"):
        if how == "fit":
            clf.fit(X_IRIS, Y_IRIS)
        else:
            clf.partial_fit(X_IRIS, Y_IRIS)
    assert clf.n_iter_ == 2 and len(clf.net_.module_.layers) == 1
    np.testing.assert_array_equal(clf.predict_proba(X_IRIS), before)
    # set back (an equal value, not the same object): the warm start continues
    clf.set_params(hidden_layer_sizes=[8], noise=GaussianNoise(1.0), slope=1.0)
    fit_quiet(clf, X_IRIS, Y_IRIS)
    assert clf.n_iter_ == 4


def test_warm_start_accepts_changes_that_keep_the_network():
    clf = _warm()
    clf.set_params(learning_rate_init=3e-3, batch_size=16, surrogate="binary")
    fit_quiet(clf, X_IRIS, Y_IRIS)
    assert clf.n_iter_ == 4
    # and a cold start builds the new network
    clf.set_params(warm_start=False, hidden_layer_sizes=(20, 20), noise="logistic")
    fit_quiet(clf, X_IRIS, Y_IRIS)
    assert [c.shape for c in clf.coefs_] == [(4, 20), (20, 20), (20, 3)]
    assert clf.net_.module_.noise == LogisticNoise()
