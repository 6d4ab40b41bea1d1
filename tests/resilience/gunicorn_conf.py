"""gunicorn configuration of the resilience suite's web server: sync workers as the README recommends, with the
application and its heavy libraries (scikit-learn, SciPy, the pseudonymizer) loaded once in the master before the
workers fork, so that a worker's first request does not spend the request timeout importing them (on a busy CI
machine four workers importing SciPy at once took longer than the timeout, and were killed over and over)."""

preload_app = True


def when_ready(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    import scoring.engine  # noqa: F401
    import scoring.ml.explain  # noqa: F401
    import scoring.ml.models  # noqa: F401
    from profiles.pseudonymizer.engine import get_pseudonymizer

    get_pseudonymizer()
