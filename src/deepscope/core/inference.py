"""Batched inference over files: parallel decoding, bad files kept aside.

The model runs in batches while a thread pool decodes the next files (image
and FITS decoders release the GIL). A file that fails to load is recorded with
its reason and the batch goes on, so one bad file never costs the good ones.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

from deepscope.errors import DeepscopeError

log = logging.getLogger(__name__)


def _safe_load(load_fn, path):
    try:
        return load_fn(path), None
    except DeepscopeError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected decoder failure still only costs this file
        return None, f"{path}: cannot read ({type(exc).__name__}: {exc})"


def run_batched(paths, load_fn, predict_fn, batch_size=256, workers=2, progress=True, desc="predict"):
    """Load files and predict on them in batches.

    Parameters
    ----------
    paths : sequence of Path
        Inputs, in output order.
    load_fn : callable
        ``load_fn(path) -> numpy.ndarray`` (one item); raises
        :class:`~deepscope.errors.DeepscopeError` for a bad file.
    predict_fn : callable
        ``predict_fn(list of arrays) -> list of dict`` (one row per item).
    batch_size : int
    workers : int
        Decoding threads.
    progress : bool
        Show a progress bar on stderr.
    desc : str
        Progress bar label.

    Returns
    -------
    rows : list of dict
        One row per good file, with ``file`` first, in input order.
    failures : list of (str, str)
        ``(path, reason)`` for every bad file.
    """
    from tqdm import tqdm

    rows, failures = [], []
    chunks = [paths[start:start + batch_size] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(paths), desc=desc, unit="file", disable=not progress) as bar:

        def submit(chunk):
            return [pool.submit(_safe_load, load_fn, p) for p in chunk]

        # Decode the next chunk while the network runs on this one.
        pending = submit(chunks[0]) if chunks else []
        for index, chunk in enumerate(chunks):
            loaded = [future.result() for future in pending]
            pending = submit(chunks[index + 1]) if index + 1 < len(chunks) else []
            good_paths, arrays = [], []
            for path, (array, error) in zip(chunk, loaded):
                if error is None:
                    good_paths.append(path)
                    arrays.append(array)
                else:
                    failures.append((str(path), error))
            if arrays:
                for path, row in zip(good_paths, predict_fn(arrays)):
                    rows.append({"file": str(path), **row})
            bar.update(len(chunk))
    return rows, failures
