"""Where protocol tasks run: in this process, in joblib worker processes, or on Dask.

:func:`execute` yields ``(index, result)`` as tasks finish (in any order), so the
caller can store each result at once.  Every task seeds itself, so the results do
not depend on the backend or the number of workers.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import ConfigError

BACKENDS = ("joblib", "dask")
CONNECT_TIMEOUT = "10s"    # to reach a Dask scheduler


def _indexed(i: int, fn: Callable, args: tuple, shared: dict) -> tuple[int, Any]:
    return i, fn(*args, **shared)


def joblib_backend(n_threads: int) -> str:
    """Forked workers where the platform has fork and workers use one torch thread
    (no re-import of torch: ~3 s saved per task on 2 cores); loky's fresh
    interpreters otherwise.  A forked child must not start an OpenMP pool the parent
    already used, so every torch op of a task runs under ``set_threads(1)``."""
    if n_threads == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "multiprocessing"
    return "loky"


def execute(fn: Callable, arg_list: Sequence[tuple], shared: dict | None = None, *,
            n_jobs: int = 1,
            backend: str = "joblib", scheduler: str | None = None,
            n_threads: int = 1) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*args, **shared)`` for every args of ``arg_list``; yield ``(index, result)``.

    Parameters
    ----------
    shared
        Keyword arguments common to every task (the data); Dask sends them to every
        worker once.
    backend
        ``"joblib"``: ``n_jobs`` local processes (sequential in this process when
        ``n_jobs == 1``).  ``"dask"``: the Dask cluster whose scheduler listens at
        ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``); start its workers with one
        thread each (``dask worker ADDRESS --nthreads 1``), since torch's thread
        count is per process.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose joblib or dask.")
    shared = shared or {}
    if backend == "dask":
        if not scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (e.g. "
                              "tcp://127.0.0.1:8786) of a running Dask scheduler.")
        yield from _dask(fn, arg_list, shared, scheduler)
        return
    if scheduler:
        raise ConfigError("--scheduler belongs to --backend dask.")
    if n_jobs == 1 or len(arg_list) <= 1:
        for i, args in enumerate(arg_list):
            yield i, fn(*args, **shared)
        return
    n_jobs = min(n_jobs, len(arg_list))
    if joblib_backend(n_threads) == "multiprocessing":
        yield from _forked(fn, arg_list, shared, n_jobs)
        return
    from joblib import Parallel, delayed
    par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from par(delayed(_indexed)(i, fn, args, shared) for i, args in enumerate(arg_list))


_SHARED: tuple[Callable, Sequence[tuple], dict] | None = None


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which stops them (no worker tracebacks);
    the tasks already stored are resumed by the same command."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_shared(i: int) -> tuple[int, Any]:
    fn, arg_list, shared = _SHARED
    return i, fn(*arg_list[i], **shared)


def _forked(fn: Callable, arg_list: Sequence[tuple], shared: dict,
            n_jobs: int) -> Iterator[tuple[int, Any]]:
    """Forked workers that inherit the data (nothing is pickled but the results).

    joblib's own fork backend ("multiprocessing") cannot hand results back as they
    finish, which the results store needs, so the fork path uses the standard
    library's pool (the same processes joblib would start)."""
    global _SHARED
    _SHARED = (fn, arg_list, shared)
    try:
        with multiprocessing.get_context("fork").Pool(n_jobs, initializer=_ignore_sigint) as pool:
            yield from pool.imap_unordered(_run_shared, range(len(arg_list)))
    finally:
        _SHARED = None


def _dask(fn: Callable, arg_list: Sequence[tuple], shared: dict,
          scheduler: str) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--backend dask needs the distributed package: "
                          "pip install 'dask[distributed]'.") from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start "
                          "one with `dask scheduler` or check --scheduler.") from None
    try:
        sent = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
        # At most one task per worker thread in flight, longest (first) tasks first: the
        # scheduler would otherwise queue two tasks on one single-thread worker while
        # another sits idle at the end.
        slots = max(1, sum(w.get("nthreads", 1) for w in
                           client.scheduler_info()["workers"].values()))
        pending = iter(enumerate(arg_list))
        index: dict[str, int] = {}

        def submit() -> Any:
            for i, args in pending:
                fut = client.submit(fn, *args, **sent, pure=False)
                index[fut.key] = i
                return fut
            return None

        running = as_completed([f for f in (submit() for _ in range(slots)) if f is not None])
        for fut in running:
            yield index[fut.key], fut.result()
            nxt = submit()
            if nxt is not None:
                running.add(nxt)
    finally:
        client.close()
