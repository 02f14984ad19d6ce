"""A trained galaxy classifier (checkpoint + task metadata -> prediction rows), and ``galaxy predict``.

:class:`GalaxyPredictor` is the predictor that :mod:`deepscope.core.batch.runner`
runs: ``load_input(path)`` reads one cutout, ``rows(items)`` classifies a
batch. Evaluation, the explain figures and the demo use the same class, so
every command decides with the same threshold.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deepscope.core.distributed import set_torch_threads
from deepscope.core.batch.options import BatchOptions
from deepscope.core.batch.sources import InputStream
from deepscope.errors import InputError, ModelError
from deepscope.galaxy.apparent_size import bright_fraction, scale_flags
from deepscope.galaxy.bar_measure import BAR_COLUMNS, BarLengthModel, measure_bars
from deepscope.galaxy.classes import label_value, probability_column, readable_names
from deepscope.galaxy.io import GALAXY_SUFFIXES, read_galaxy_image
from deepscope.galaxy.orientation import apply_views, canonical_view_index, dihedral_view
from deepscope.galaxy.preprocess import input_to_pixels, pixels_to_input, to_model_input, to_model_pixels
from deepscope.galaxy.zoom import canonical_zooms, rescale_cutouts

log = logging.getLogger(__name__)

# Galaxies per partition: the unit of resuming and of Dask tasks (about a
# second of work on one core), small enough that a kill loses little.
PARTITION_SIZE = 1024
_META_KEYS = {"target", "class_names", "input_size", "threshold"}
# Test-time views: the first N of the 4 rotations, then the 4 rotations of the mirror image.
VIEW_COUNTS = (1, 2, 4, 8)


@dataclasses.dataclass(frozen=True)
class CutoutReader:
    """``paths -> model pixels``, each ``uint8 (3, S, S)`` or the exception that file raised.

    Decoding a cutout is Python around Pillow as much as Pillow itself, so
    on threads it holds the GIL against the network; reader processes, which
    get this picklable callable, decode beside it. They hand back 8-bit
    pixels, a quarter of the bytes of the float input, which
    :meth:`GalaxyPredictor.probabilities` scales a batch at a time.

    Parameters
    ----------
    input_size : int
        Side of the network's input.
    """

    input_size: int

    def __call__(self, paths: Sequence[str | Path]) -> list[np.ndarray | Exception]:
        items = []
        for path in paths:
            try:
                items.append(to_model_pixels(read_galaxy_image(path), self.input_size))
            except Exception as exc:  # noqa: BLE001 - each file's failure is its own; the caller names it
                items.append(exc)
        return items


class GalaxyPredictor:
    """A network with the class names, input size and threshold it was trained with.

    Parameters
    ----------
    model : torch.nn.Module
        Kept as trained in ``model`` (for feature maps and fine-tuning);
        predictions use ``network`` if given, else a BatchNorm-folded,
        channels-last copy.
    meta : dict
        ``target``, ``class_names``, ``input_size`` and ``threshold``; optionally
        ``field`` (:mod:`deepscope.galaxy.field`), ``orientation``
        (``canonical``: the network sees each cutout in its canonical view,
        :mod:`deepscope.galaxy.orientation`, so that turning or mirroring a
        cutout cannot change its answer), ``size_range`` (the apparent sizes
        it was trained on, :func:`~deepscope.galaxy.apparent_size.trained_size_range`),
        ``canonical_scale`` (the network sees each cutout zoomed to one apparent
        size, :func:`~deepscope.galaxy.zoom.canonical_zooms`, so that a field cut
        wider or tighter changes little) and ``bar_length`` (a bar-length
        network, :class:`~deepscope.galaxy.bar_measure.BarLengthModel`).
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``: where the networks and batches go;
        results always come back as CPU arrays.
    source : Path, optional
        The checkpoint or run directory it came from (identifies resumable jobs).
    network : OnnxNetwork, optional
        The ONNX export that runs predictions instead of torch
        (:func:`deepscope.core.onnx_engine.onnx_network`).
    length_network : OnnxNetwork, optional
        The same for the bar-length network (:func:`deepscope.core.onnx_engine.part_network`).

    Raises
    ------
    ModelError
        If ``meta`` lacks the galaxy task's entries (a checkpoint of another domain).
    """

    def __init__(self, model, meta: dict, device: str = "cpu", source: Path | None = None, network=None,
                 length_network=None):
        from deepscope.core.distributed import select_device
        from deepscope.core.speed import prepare_for_inference

        missing = _META_KEYS - set(meta)
        if missing:
            msg = f"checkpoint is not a galaxy classifier (no {', '.join(sorted(missing))} in its metadata)"
            raise ModelError(msg)
        self.device = select_device(device)
        self.model = model.eval().to(self.device)
        self.fast_model = network or prepare_for_inference(copy.deepcopy(model)).to(self.device)
        # What runs the network: "torch", "onnx" or "onnx-int8".
        self.engine = network.engine if network is not None else "torch"
        self.target = meta["target"]
        self.class_names = list(meta["class_names"])
        self.input_size = int(meta["input_size"])
        self.threshold = float(meta["threshold"])
        self.field = meta.get("field")  # the field convention it was trained on (deepscope.galaxy.field)
        self.canonical = meta.get("orientation") == "canonical"
        self.size_range = meta.get("size_range")
        self.canonical_scale = meta.get("canonical_scale")
        # Measures the bars of the galaxies called barred (deepscope.galaxy.bar_measure).
        self.bar_length = (BarLengthModel.from_record(meta["bar_length"], device, length_network)
                           if "bar_length" in meta else None)
        self.source = source
        self.augment = 1

    @classmethod
    def from_checkpoint(cls, name_or_path: str | Path | None = None, device: str = "cpu",
                        engine: str = "auto") -> GalaxyPredictor:
        """Load a shipped model, run directory or checkpoint file.

        Parameters
        ----------
        name_or_path : str or Path, optional
            A shipped name (``galaxy_bars``, the default, or
            ``galaxy_morphology``), a run directory or a ``.pt`` file.
        device : str
            ``cpu``, ``cuda`` or ``cuda:N``.
        engine : str
            What runs the network: ``auto`` (on the CPU a shipped model's
            int8 ONNX export, else torch), ``torch``, ``onnx`` or
            ``onnx-int8`` (:mod:`deepscope.core.onnx_engine`).

        Returns
        -------
        GalaxyPredictor

        Raises
        ------
        ModelError
            If the name is unknown, the file is not a checkpoint, it is not
            a galaxy classifier, or the engine cannot run it.
        """
        from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint
        from deepscope.core.onnx_engine import onnx_network, part_network
        from deepscope.registry import resolve_model, shipped_entry

        path = resolve_model(name_or_path, "galaxy")
        record = load_checkpoint(path)
        entry = shipped_entry(name_or_path, "galaxy")
        network = onnx_network(entry, device, engine, path)
        return cls(model_from_checkpoint(record), record.get("meta", {}), device, source=path, network=network,
                   length_network=part_network(entry, "bar_length", network))

    @property
    def augment(self) -> int:
        """Views of each cutout whose probabilities are averaged (1, 2, 4 or 8; see :func:`dihedral_view`),
        of its canonical view for a model that uses one.

        1, the default, keeps predict at full speed.
        """
        return self._augment

    @augment.setter
    def augment(self, views: int) -> None:
        if views not in VIEW_COUNTS:
            msg = f"--augment {views}: choose from {', '.join(map(str, VIEW_COUNTS))} views"
            raise InputError(msg)
        self._augment = int(views)

    @property
    def binary(self) -> bool:
        """Whether this is a two-class task with a tuned threshold."""
        return len(self.class_names) == 2

    @property
    def probability_column(self) -> str:
        """Name of the output column holding the positive-class probability (``p_bar`` for bars)."""
        return probability_column(self.target, self.class_names)

    @property
    def readable_names(self) -> list[str]:
        """Class names as a person reads them (``unbarred``, ``barred``)."""
        return readable_names(self.target, self.class_names)

    @property
    def output_columns(self) -> list[str]:
        """The columns of :meth:`rows`, in order (``p_bar``, ``barred``, ``threshold`` for bars), then
        ``scale_flag`` for a model with a trained size range, then :data:`~deepscope.galaxy.bar_measure.BAR_COLUMNS`
        for a model that carries a bar-length network."""
        if self.binary:
            columns = [self.probability_column, self.target, "threshold"]
        else:
            columns = [f"p_{name}" for name in self.class_names] + [self.target]
        columns += ["scale_flag"] if self.size_range is not None else []
        return columns + (list(BAR_COLUMNS) if self.bar_length is not None else [])

    def load_input(self, path: str | Path) -> np.ndarray:
        """Read one file and shape it for the network: ``float32 (3, S, S)``."""
        return to_model_input(read_galaxy_image(path), self.input_size)

    @property
    def load_many(self) -> CutoutReader:
        """Reads many files as :meth:`load_input` reads one, as uint8 pixels (:class:`CutoutReader`);
        plain data, so :mod:`deepscope.core.batch.reading` runs it in reader processes."""
        return CutoutReader(self.input_size)

    def zooms_of(self, batch: np.ndarray) -> np.ndarray:
        """The zoom at which the network sees each cutout of a batch ``(N, 3, S, S)``.

        The one that brings it to the model's canonical scale
        (:func:`~deepscope.galaxy.zoom.canonical_zooms`) for a model with a
        ``meta["canonical_scale"]``, else 1 (the cutout as given).
        """
        if self.canonical_scale is None:
            return np.ones(len(batch))
        return canonical_zooms(bright_fraction(batch), self.canonical_scale)

    def rescaled(self, batch: np.ndarray, zooms: np.ndarray | None = None) -> np.ndarray:
        """A batch at the model's canonical scale, as 8-bit pixels (:func:`~deepscope.galaxy.zoom.rescale_cutouts`);
        the batch itself for a model without one.

        Parameters
        ----------
        batch : numpy.ndarray
            ``(N, 3, S, S)``: ``uint8`` pixels or floats in [0, 1].
        zooms : numpy.ndarray, optional
            :meth:`zooms_of` of other cutouts (as ``views`` in :meth:`probabilities`).
        """
        if self.canonical_scale is None:
            return batch
        batch = input_to_pixels(batch)
        return rescale_cutouts(batch, self.zooms_of(batch) if zooms is None else np.asarray(zooms))

    def views_of(self, batch: np.ndarray) -> np.ndarray:
        """The view (:func:`dihedral_view`) in which the network sees each cutout of a batch ``(N, 3, S, S)``.

        The canonical one (:func:`~deepscope.galaxy.orientation.canonical_view_index`)
        for a model whose ``meta["orientation"]`` is ``canonical``, else 0 (the cutout as given).
        """
        return canonical_view_index(batch) if self.canonical else np.zeros(len(batch), int)

    def probabilities(self, batch: np.ndarray, views: np.ndarray | None = None,
                      zooms: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of a batch ``(N, 3, S, S)``: float32 in [0, 1], or the uint8 pixels of :meth:`load_many`.

        A model whose ``meta["orientation"]`` is ``canonical`` sees each cutout
        in its canonical view (:meth:`views_of`): the same pixels for every
        rotation and mirror image of it. One with a ``meta["canonical_scale"]``
        then sees that view zoomed to one apparent size (:meth:`rescaled`);
        turning first keeps the answer exactly the same for every view, as
        the sky noise drawn beyond a shrunk cutout's field has an orientation.

        Parameters
        ----------
        batch : numpy.ndarray
        views, zooms : numpy.ndarray, optional
            The view and zoom to show the network each cutout at instead
            (:meth:`views_of` and :meth:`zooms_of` of other cutouts): an
            explanation that covers part of a cutout passes those of the
            uncovered one, so that covering does not also turn or zoom it.

        Returns
        -------
        numpy.ndarray of shape (N, n_classes)
        """
        if views is not None or self.canonical:
            batch = apply_views(batch, self.views_of(batch) if views is None else np.asarray(views))
        return self._probabilities_shown(self.rescaled(batch, zooms))

    def covered_probabilities(self, uncovered: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`probabilities` for covered copies of cutouts, each shown at its uncovered cutout's view and zoom.

        An explanation that covers part of a cutout must not also turn or zoom
        it, as the covered copy's own light would (:meth:`views_of`, :meth:`zooms_of`).

        Parameters
        ----------
        uncovered : numpy.ndarray
            ``(N, 3, S, S)``.

        Returns
        -------
        callable
            ``covered (M, 3, S, S) -> (M, n_classes)``: ``M`` copies of the one
            cutout when ``N`` is 1, else one copy of each, in order.
        """
        views, zooms = self.views_of(uncovered), self.zooms_of(uncovered)

        def probabilities(covered: np.ndarray) -> np.ndarray:
            return self.probabilities(covered, np.broadcast_to(views, len(covered)),
                                      np.broadcast_to(zooms, len(covered)))

        return probabilities

    def _probabilities_shown(self, batch: np.ndarray) -> np.ndarray:
        """:meth:`probabilities` of a batch already turned and zoomed as the network sees it."""
        if batch.dtype == np.uint8 and self.device.type == "cpu":
            batch = pixels_to_input(batch)  # on a GPU the uint8 pixels travel, a quarter of the bytes
        # A bar has no preferred orientation: each rotated or mirrored cutout is an equally
        # valid input, and the mean of their probabilities varies less (Dieleman et al. 2015).
        views = [self._probabilities(dihedral_view(batch, view)) for view in range(self.augment)]
        return views[0] if len(views) == 1 else np.mean(views, axis=0)

    def _probabilities(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if not isinstance(self.fast_model, torch.nn.Module):
            # ONNX Runtime takes the float32 array as it is; a torch softmax here would wake
            # torch's thread pool against ONNX Runtime's, for two numbers per cutout.
            from scipy.special import softmax

            return softmax(self.fast_model.run(batch), axis=1)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            if x.dtype == torch.uint8:
                x = x.float().div_(255)  # pixels_to_input's values, computed where the network runs
            return torch.softmax(self.fast_model(x.contiguous(memory_format=torch.channels_last)), dim=1).cpu().numpy()

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Class indices from probabilities: ``p >= threshold`` for two classes, else the most probable."""
        if self.binary:
            return (probs[:, 1] >= self.threshold).astype(int)
        return probs.argmax(axis=1)

    def label_value(self, index: int) -> int | str:
        """The class of an index as users wrote it: an int for numeric classes, else the name."""
        return label_value(self.class_names[index])

    def rows(self, arrays: Sequence[np.ndarray]) -> list[dict]:
        """Prediction rows for a list of model inputs (see :meth:`load_input` and :meth:`load_many`).

        Returns
        -------
        list of dict
            For two classes: the positive probability column (``p_bar``
            for bars), the target column (``barred = p_bar >= threshold``)
            and the ``threshold``; otherwise one ``p_<class>`` column per
            class and the target column. A model with a trained size range
            (``meta["size_range"]``) adds ``scale_flag``: ``small`` or
            ``large`` where the galaxy's apparent size in the cutout
            (:func:`~deepscope.galaxy.apparent_size.bright_fraction`) lies
            outside it, else empty (:func:`~deepscope.galaxy.apparent_size.scale_flags`);
            for a model with a canonical scale, the size after its zoom against
            the sizes of its rescaled training cutouts: a galaxy the zoom limit
            leaves too small or too large.
            A model with a bar-length network (``meta["bar_length"]``) adds
            ``bar_length_arcsec`` and ``bar_pa_deg`` for the galaxies it calls
            barred (:func:`~deepscope.galaxy.bar_measure.measure_bars`), empty for the others.
        """
        batch = np.stack(arrays)
        # one size measure for both the zoom and the flag
        fractions = bright_fraction(batch) if self.size_range or self.canonical_scale else None
        zooms = canonical_zooms(fractions, self.canonical_scale) if self.canonical_scale is not None else None
        views = self.views_of(batch)
        shown = self.rescaled(apply_views(batch, views) if self.canonical else batch, zooms)
        probs = self._probabilities_shown(shown)
        decisions = self.decide(probs)
        if self.size_range is not None:  # the size the network sees against the sizes it was trained on
            flags = scale_flags(fractions if zooms is None else bright_fraction(shown), self.size_range)
        else:
            flags = None
        # bars are measured on the cutout as given, not zoomed: lengths in its own pixels
        bars = self.measure_bars(batch, decisions == 1, views) if self.bar_length is not None else None
        rows = []
        for i, (p, decision) in enumerate(zip(probs, decisions)):
            if self.binary:
                row = {self.probability_column: round(float(p[1]), 6)}
            else:
                row = {f"p_{name}": round(float(v), 6) for name, v in zip(self.class_names, p)}
            row[self.target] = self.label_value(decision)
            if self.binary:
                row["threshold"] = round(self.threshold, 6)
            if flags is not None:
                row["scale_flag"] = flags[i]
            if bars is not None:
                row.update(bars.get(i, dict.fromkeys(BAR_COLUMNS)))
            rows.append(row)
        return rows

    def measure_bars(self, batch: np.ndarray, barred: np.ndarray, views: np.ndarray | None = None) -> dict[int, dict]:
        """Bar length and position angle of the cutouts of a batch called barred
        (:func:`~deepscope.galaxy.bar_measure.measure_bars`).

        Only those pass through the length network, so unbarred galaxies cost nothing.

        Parameters
        ----------
        batch : numpy.ndarray
            ``(N, 3, S, S)``, as :meth:`probabilities` takes it.
        barred : numpy.ndarray of bool
        views : numpy.ndarray of int, optional
            The cutouts' canonical views, when the caller has them (:meth:`views_of`).

        Returns
        -------
        dict
            Index of each barred cutout -> ``{"bar_length_arcsec", "bar_pa_deg"}`` (rounded to 0.01 arcsec, 0.1 degree).
        """
        chosen = np.flatnonzero(barred)
        known = views[chosen] if views is not None and self.canonical else None
        lengths, angles = measure_bars(self.bar_length, batch[chosen], known)
        return {int(i): {"bar_length_arcsec": round(float(length), 2), "bar_pa_deg": round(float(angle), 1)}
                for i, length, angle in zip(chosen, lengths, angles)}


class CutoutInputs(InputStream):
    """``galaxy predict``'s inputs: catalogue rows without a cutout are skipped, with one warning counting them.

    ``galaxy cutout``'s table lists every catalogue row; a row it could not
    cut (off every frame, a band missing) has an empty ``file`` and its
    ``status`` says why. Such a row has nothing to predict on, and is not
    a failed input.
    """

    def _catalog_entries(self):
        skipped = 0
        for value, carried in super()._catalog_entries():
            if value is None or not str(value).strip():
                skipped += 1
                continue
            yield value, carried
        if skipped:
            log.warning("%s: skipped %d row(s) with no cutout (empty %s; a status column says why)",
                        self.catalog, skipped, self.path_column)


def predict_galaxies(inputs: Sequence[str | Path], out: str | Path, model: str | Path | None = None,
                     options: BatchOptions | None = None, keep_columns: bool | None = None,
                     augment: int = 1) -> int:
    """Classify cutouts and write the predictions.

    A run killed part-way and restarted with the same arguments skips the
    partitions it had finished (see :mod:`deepscope.core.batch.store`).
    Catalogue rows with an empty path, ``galaxy cutout``'s rows without a
    cutout, are skipped with a warning (:class:`CutoutInputs`).

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories searched for JPEG/PNG/FITS cutouts, and
        uncompressed ``.tar`` shards of cutouts.
    out : str or Path
        ``.csv`` or ``.parquet`` table, or a directory to receive Parquet
        parts (survey scale: nothing is merged in memory).
    model : str or Path, optional
        Shipped model name, run directory or checkpoint (default: the
        shipped bar model).
    options : BatchOptions, optional
        Inputs, batching, threads, device and cluster (default:
        :class:`BatchOptions` with :data:`PARTITION_SIZE`).
    keep_columns : bool, optional
        Append the catalogue's own columns after the prediction columns,
        a catalogue column named like one of them (its ``file`` ...) as
        ``catalog_<name>``; rows of other inputs get them empty. By default
        on when a catalogue is given and ``out`` is a table.
    augment : int
        Views of each cutout averaged (1, 2, 4 or 8; see :func:`dihedral_view`),
        at that many times the network time.

    Returns
    -------
    int
        Number of rows written (``file``, ``p_bar``, ``barred``,
        ``threshold`` and ``scale_flag`` for the bar model, then the catalogue's columns);
        nothing is written when no input could be read.

    Raises
    ------
    InputError
        Before any work, if ``keep_columns`` is asked for without a
        catalogue, or ``augment`` is not 1, 2, 4 or 8.
    BatchError
        After writing the good rows, if some inputs could not be read.
    """
    from deepscope.core.batch.runner import describe_job, predict_to_table
    from deepscope.galaxy.field import warn_on_field_mismatch

    options = options or BatchOptions(partition_size=PARTITION_SIZE)
    options.check()
    if keep_columns and options.catalog is None:
        msg = "--keep-columns needs --catalog"
        raise InputError(msg)
    if keep_columns is None:
        keep_columns = options.catalog is not None and Path(out).suffix.lower() in (".csv", ".parquet")
    set_torch_threads(options.threads)
    stream = CutoutInputs(inputs, GALAXY_SUFFIXES, options.catalog, options.path_column, keep_columns)
    predictor = GalaxyPredictor.from_checkpoint(model, options.device, options.engine)
    predictor.augment = augment
    warn_on_field_mismatch(inputs, options.catalog, options.path_column, predictor.field,
                           str(model or Path(predictor.source).stem))
    # Views change the rows, so they name the job.
    views = {"augment": augment} if augment != 1 else {}
    job = describe_job("galaxy predict", stream, predictor, predictor.source, options, **views)
    return predict_to_table(stream, predictor, out, job, options, desc="galaxy predict")
