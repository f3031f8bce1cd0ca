"""Scaling out: a grid search on a dask.distributed cluster equals the one-process search.

A real ``LocalCluster`` (two worker processes, one thread each, loopback only, no
dashboard) runs ``GridSearchCV`` under ``joblib.parallel_config(backend="dask")``.
Worker processes are spawned by dask's nanny with ``OMP_NUM_THREADS=1`` (its
``distributed.nanny.pre-spawn-environ`` default), which torch reads for its intra-op
thread pool; the reference search runs in this process on one torch thread too, so
both do the same float32 arithmetic and must agree exactly.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")  # the "dask" extra (also in "test")
import joblib  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_bnn import BinaryNetClassifier  # noqa: E402

X, Y = load_iris(return_X_y=True)
GRID = {
    "binarynetclassifier__init": ["glorot", 0.05],
    "binarynetclassifier__inference": ["binary", "surrogate"],
}


def pipeline():
    return make_pipeline(
        StandardScaler(),
        BinaryNetClassifier(
            (8,), max_iter=8, batch_size=32, learning_rate_init=1e-2, device="cpu", random_state=0
        ),
    )


def search(n_jobs=None):
    return GridSearchCV(
        pipeline(),
        GRID,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=n_jobs,
        error_score="raise",
    )


pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def _torch_threads_after_import():
    import torch

    import sklearn_bnn  # noqa: F401

    return torch.get_num_threads()


def test_workers_run_torch_on_one_thread_and_import_touches_nothing(client):
    assert set(client.run(_torch_threads_after_import).values()) == {1}
    # what is shipped to the workers carries parameters only, no torch state
    assert b"torch" not in pickle.dumps(search())


def test_grid_search_on_dask_equals_the_local_search(client):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = search().fit(X, Y)
        with joblib.parallel_config(backend="dask"):
            remote = search(n_jobs=-1).fit(X, Y)
    assert remote.best_params_ == local.best_params_
    for key in ("params", "mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    for i in range(3):
        key = f"split{i}_test_score"
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert local.best_score_ > 0.7
    np.testing.assert_array_equal(remote.predict_proba(X), local.predict_proba(X))
    # the fits did run on the workers, and left them at one torch thread
    assert set(client.run(torch.get_num_threads).values()) == {1}


def test_models_fitted_on_workers_come_back_on_cpu_and_predict_identically(client):
    cv = StratifiedKFold(2, shuffle=True, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_config(backend="dask"):
            remote = cross_validate(pipeline(), X, Y, cv=cv, return_estimator=True, n_jobs=-1)
        local = cross_validate(pipeline(), X, Y, cv=cv, return_estimator=True)
    np.testing.assert_array_equal(remote["test_score"], local["test_score"])
    for r, lo in zip(remote["estimator"], local["estimator"]):
        clf = r[-1]
        assert clf.device_.type == "cpu"
        assert all(t.device.type == "cpu" for t in clf.net_.module_.state_dict().values())
        np.testing.assert_array_equal(r.predict_proba(X), lo.predict_proba(X))
