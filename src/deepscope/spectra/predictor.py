"""A trained spectral classifier as one predictor: checkpoint in, MK-type rows out.

:class:`SpectraPredictor` is what ``spectra predict`` hands to
:mod:`deepscope.core.batch.runner` (``load_input`` reads one file onto the
model's grid, ``load_many`` many files, which reader processes can run,
``rows`` finishes and classifies a batch: the smoothing and
continuum division run on the whole batch at once) and what ``evaluate``,
``crossval`` and the demo use on arrays already prepared. The network's
outputs become ``G2V``-style rows in :mod:`deepscope.spectra.decoding`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from deepscope.core.speed import fold_batchnorm
from deepscope.spectra.flags import SpectrumFeatures, flag_reasons, spectrum_features, typed
from deepscope.spectra.calibration import main_class_confidence, say_if_uncalibrated, temperatures_at_snr
from deepscope.spectra.preparation.staged import GriddedReader, GriddedSpectrum
from deepscope.spectra.preparation.velocity import VelocityTemplates
from deepscope.spectra.decoding import OUTPUT_COLUMNS, outputs_to_rows
from deepscope.spectra.mktype import MAIN_CLASSES, N_LUM, N_T_BINS

log = logging.getLogger(__name__)

CLASSIFIER_MODELS = ("spectra_ann", "spectra_cnn", "spectra_cnn_small", "spectra_ae_classifier", "spectra_ensemble")
# What every prediction adds to its type: how sure it is, and why it should not be trusted
# (deepscope.spectra.calibration, deepscope.spectra.flags).
ASSESSMENT_COLUMNS = ("confidence", "flag")
# The radial velocity undone before typing and its error, km/s (deepscope.spectra.preparation.velocity).
VELOCITY_COLUMNS = ("rv_kms", "rv_err_kms")
# The type columns of a spectrum that gets no type (flags.typed): empty text, no numbers.
NO_TYPE = {"sptype": "", "main_class": "", "subclass": float("nan"), "lum_class": "", "code": float("nan"),
           "temperature_index": float("nan"), "confidence": float("nan")}
# Spectra per partition: the unit of resuming and of Dask tasks.
PARTITION_SIZE = 1024


class SpectraPredictor:
    """A trained classifier, its grid and its metadata, on one device.

    Parameters
    ----------
    model : torch.nn.Module
    meta : dict
        The checkpoint's metadata, with ``grid`` (a
        :class:`~deepscope.spectra.preparation.grid.Grid`), ``min_coverage`` and,
        for models trained here, ``templates`` and ``train_sha256``.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: the model and each batch go
        there, the outputs come back to the CPU.
    columns : ColumnNames, optional
        Named columns of FITS tables and text files with a header line.
    default_medium : str
        ``"air"``, or ``"vacuum"`` for input files that do not say.
    network : OnnxNetwork, optional
        The ONNX export that runs the network instead of torch
        (:func:`deepscope.core.onnx_engine.onnx_network`).
    """

    output_columns = (*OUTPUT_COLUMNS, *ASSESSMENT_COLUMNS, *VELOCITY_COLUMNS)  # of every row of rows()

    def __init__(self, model, meta: dict, device: str = "cpu", columns=None, default_medium: str = "air",
                 network=None):
        from deepscope.spectra.io.spectrum import ColumnNames

        self.device = device
        self.columns = columns or ColumnNames()
        self.default_medium = default_medium
        # BatchNorm folded into the convolutions: the same rows, one pass over the activations less per block.
        self.model = fold_batchnorm(model.eval()).to(self._torch_device())
        self.network = network or self.model
        # What runs the network: "torch", "onnx" or "onnx-int8".
        self.engine = network.engine if network is not None else "torch"
        self.meta = meta
        self.grid = meta["grid"]
        self.min_coverage = meta["min_coverage"]
        from deepscope.spectra.templates import TemplateMatcher  # it decodes with this module's decode

        # The training spectra, kept in the checkpoint: out_of_distribution means none resembles the input.
        self.matcher = TemplateMatcher.from_meta(meta) if "templates" in meta else None
        # Their class means at rest on a finer grid, against which radial velocities are measured (None: not).
        self.velocity = VelocityTemplates.from_meta(meta, self.grid)

    def _torch_device(self):
        from deepscope.core.distributed import select_device

        return select_device(self.device)

    @classmethod
    def from_checkpoint(cls, name_or_path: str | Path | None = None, device: str = "cpu", engine: str = "auto",
                        **reading) -> SpectraPredictor:
        """Load a shipped name, run directory or ``.pt`` file; the shipped classifier by default.

        Parameters
        ----------
        name_or_path : str or Path, optional
            Resolved by :func:`deepscope.registry.resolve_model`.
        device : str
        engine : str
            What runs the network: ``auto`` (on the CPU a shipped model's
            fp32 ONNX export, else torch), ``torch``, ``onnx`` or
            ``onnx-int8`` (:mod:`deepscope.core.onnx_engine`).
        **reading
            ``columns`` and ``default_medium``, see the class.

        Returns
        -------
        SpectraPredictor

        Raises
        ------
        ModelError
            If the name is unknown, the path missing, the checkpoint is not
            a spectral classifier, or the engine cannot run it.
        InputError
            If ``device`` asks for CUDA where there is none.
        """
        from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint
        from deepscope.core.onnx_engine import onnx_network
        from deepscope.errors import ModelError
        from deepscope.registry import resolve_model, shipped_entry
        from deepscope.spectra.models import trained_model_kwargs
        from deepscope.spectra.preparation.grid import Grid

        path = resolve_model(name_or_path, "spectra")
        record = load_checkpoint(path)
        meta = dict(record.get("meta", {}))
        if "grid" not in meta or record["model"] not in CLASSIFIER_MODELS:
            msg = f"{path}: not a spectral classifier checkpoint (model {record['model']!r})"
            raise ModelError(msg)
        model = model_from_checkpoint({**record, "model_kwargs": trained_model_kwargs(record.get("model_kwargs", {}))})
        meta["grid"] = Grid(**meta["grid"])
        say_if_uncalibrated(meta, path)
        network = onnx_network(shipped_entry(name_or_path, "spectra"), device, engine, path)
        return cls(model, meta, device, **reading, network=network)

    def load_input(self, path: str | Path) -> GriddedSpectrum:
        """Read one spectrum: on the model's grid, with the raw scores its flag needs.

        Raises
        ------
        FormatError
            If the file is unreadable or covers too little of the grid.
        """
        (item,) = self.load_many([path])
        if isinstance(item, Exception):
            raise item
        return item

    @property
    def load_many(self) -> GriddedReader:
        """Reads many files as :meth:`load_input` reads one (those sharing wavelengths gridded as one block);
        plain data, so :mod:`deepscope.core.batch.reading` runs it in reader processes."""
        return GriddedReader(self.grid, self.min_coverage, self.default_medium, self.columns, self.velocity)

    def prepare(self, spectrum, name: str) -> GriddedSpectrum:
        """Put a :class:`~deepscope.spectra.io.spectrum.Spectrum` on the model's grid and score it as read.

        :meth:`prepare_many` on one spectrum, so a file gives the numbers
        the same spectrum gives in a table.

        Raises
        ------
        FormatError
            If the spectrum covers too little of the grid.
        """
        from deepscope.errors import FormatError

        _, items, failures = self.prepare_many([spectrum], [name])
        if failures:
            raise FormatError(failures[0][1])
        return items[0]

    def prepare_many(self, spectra, names) -> tuple[list, list, list]:
        """Put many spectra on the model's grid: ``(good, items, failures)`` as
        :func:`~deepscope.spectra.preparation.staged.gridded_spectra` returns them, with this model's grid and coverage."""
        from deepscope.spectra.preparation.staged import gridded_spectra

        return gridded_spectra(spectra, names, self.grid, self.min_coverage, self.velocity)

    def outputs(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Raw classifier outputs ``(N, N_T_BINS + N_LUM)`` for prepared spectra ``(N, 2, n)``."""
        import torch

        device = self._torch_device()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
                outputs.append(self.network(batch).cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, N_T_BINS + N_LUM), np.float32)

    def classify(self, x: np.ndarray, batch_size: int = 512) -> list[dict]:
        """One row (:data:`~deepscope.spectra.decoding.OUTPUT_COLUMNS`) per prepared spectrum of ``x``."""
        return outputs_to_rows(self.outputs(x, batch_size))

    def assess(self, items: list[GriddedSpectrum], batch_size: int = 512) -> list[dict]:
        """Type, ``confidence`` and ``flag`` of each spectrum of :meth:`prepare` or :meth:`load_input`.

        ``confidence`` is the probability of the reported main class, scaled
        by the checkpoint's own temperature (:mod:`deepscope.spectra.calibration`);
        ``flag`` lists, ``;``-separated, why a prediction should not be
        trusted: ``low_snr``, ``short_coverage``, ``missing_mk_lines`` (most
        of the blue classification window is missing: no type, below),
        ``negative_flux``, ``out_of_distribution`` (no training template
        resembles the spectrum), ``no_rv`` (no radial velocity could be
        measured: typed as read), or is empty. Thresholds: :mod:`deepscope.spectra.flags`.
        A spectrum flagged ``missing_mk_lines`` keeps its row with the type
        columns empty (:data:`NO_TYPE`) and no ``confidence``.
        ``rv_kms`` is the radial velocity undone before typing (known or
        measured; empty where there is none) and ``rv_err_kms`` the error of
        a measured one.
        """
        return self.assess_features(self.features(items), batch_size)

    def features(self, items: list[GriddedSpectrum]) -> SpectrumFeatures:
        """The first step of :meth:`assess`, no network: see :func:`~deepscope.spectra.flags.spectrum_features`."""
        return spectrum_features(items, self.grid, self.matcher)

    def assess_features(self, features: SpectrumFeatures, batch_size: int = 512) -> list[dict]:
        """The second step of :meth:`assess`: the network, then the confidence and flag of each row."""
        outputs = self.outputs(features.x, batch_size)
        rows = outputs_to_rows(outputs)
        predicted_main = [MAIN_CLASSES.index(row["main_class"]) for row in rows]
        # The checkpoint's own temperature, fitted on its validation split (none: the raw probability), raised
        # for noisy spectra where the checkpoint carries an S/N term.
        temperature = temperatures_at_snr(self.meta.get("temperature", 1.0), features.snr,
                                          self.meta.get("temperature_snr_term", 0.0))
        confidence = main_class_confidence(outputs[:, :N_T_BINS], predicted_main, temperature)
        no_rv = np.isnan(features.rv) if self.velocity is not None else None
        flags = flag_reasons(features.snr, features.blue_cover, features.median_flux, features.mismatch, no_rv)
        for row, sure, flag, rv, rv_err, has_type in zip(rows, confidence, flags, features.rv, features.rv_err,
                                                          typed(features.blue_cover)):
            row.update(confidence=round(float(sure), 4), flag=flag, rv_kms=round(float(rv), 1),
                       rv_err_kms=round(float(rv_err), 1))
            if not has_type:
                row.update(NO_TYPE)
        return rows

    def rows(self, items: list[GriddedSpectrum] | SpectrumFeatures) -> list[dict]:
        """One row per item of :meth:`load_input` (or per spectrum of their :meth:`features`), in one forward pass."""
        features = items if isinstance(items, SpectrumFeatures) else self.features(items)
        return self.assess_features(features, len(features.x))


def predict_spectra(inputs, out: str | Path, model: str | Path | None = None, options=None, columns=None,
                    default_medium: str = "air", id_column: str | None = None, drop_flagged: bool = False,
                    rv_column: str | None = None) -> int:
    """Classify spectrum files, or every row of bulk tables, and write one row per good spectrum.

    A run killed part-way and restarted with the same arguments skips the
    partitions it had finished (see :mod:`deepscope.core.batch.store`).

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories and uncompressed ``.tar`` shards; or bulk tables
        (Parquet, FITS binary tables of many rows with array columns, see
        :func:`deepscope.spectra.io.tables.is_bulk_table`), read in slices
        of rows (:class:`~deepscope.spectra.table_source.TableSource`).
    out : str or Path
        ``.csv`` or ``.parquet``, or a directory to receive Parquet parts.
    model : str or Path, optional
        Shipped name, checkpoint or run directory; the shipped model by default.
    options : BatchOptions, optional
        Inputs, batching, threads, device and cluster (default:
        :class:`~deepscope.core.batch.options.BatchOptions` with :data:`PARTITION_SIZE`).
    columns : ColumnNames, optional
        Named columns; for bulk tables the unnamed ones default to
        ``wavelength`` and ``flux``.
    default_medium : str
        ``"vacuum"`` when wavelengths that no header describes are vacuum.
    id_column : str, optional
        Bulk tables: the column that names each row in ``file``.
    drop_flagged : bool
        Leave out every row whose ``flag`` is not empty, as rows are
        written (only a ``.csv``/``.parquet`` output).
    rv_column : str, optional
        Bulk tables: the column of each row's known radial velocity (km/s),
        undone instead of a measured one (an empty value: measured).

    Returns
    -------
    int
        Number of rows written.

    Raises
    ------
    BatchError
        After writing the good rows, if some inputs could not be read.
    InputError
        If bulk tables are mixed with other inputs or a catalogue, or
        ``rv_column`` is given for other inputs.
    ModelError
        If ``model`` names no spectral classifier.
    """
    from deepscope.core.batch.options import BatchOptions
    from deepscope.core.batch.runner import describe_job, predict_to_table
    from deepscope.core.batch.sources import InputStream
    from deepscope.core.distributed import set_torch_threads
    from deepscope.errors import InputError
    from deepscope.registry import resolve_model
    from deepscope.spectra.io.spectrum import ColumnNames
    from deepscope.spectra.io.table_rows import TableLayout
    from deepscope.spectra.io.tables import is_bulk_table
    from deepscope.spectra.io.files import DIRECTORY_SUFFIXES, is_spectrum_file
    from deepscope.spectra.table_source import TableSource

    options = options or BatchOptions(partition_size=PARTITION_SIZE)
    columns = columns or ColumnNames()
    if drop_flagged and Path(out).suffix.lower() not in (".csv", ".parquet"):
        msg = f"--drop-flagged needs a .csv or .parquet --out (got {out}); filter the parts on their flag column"
        raise InputError(msg)
    bulk = [path for path in inputs if is_bulk_table(path)]
    if bulk and (len(bulk) < len(inputs) or options.catalog is not None):
        msg = f"{bulk[0]}: a bulk table of spectra cannot be mixed with other inputs or --catalog; run it alone"
        raise InputError(msg)
    if rv_column is not None and not bulk:
        msg = f"--rv-column {rv_column}: only bulk tables (Parquet, FITS or HDF5 tables of many rows) have one"
        raise InputError(msg)
    options.check()
    if bulk:
        layout = TableLayout(ColumnNames(columns.wave or "wavelength", columns.flux or "flux", columns.ivar),
                             default_medium, id_column, rv_column)
        source, settings = TableSource(bulk, layout), {}
    else:
        source = InputStream(inputs, DIRECTORY_SUFFIXES, options.catalog, options.path_column, accept=is_spectrum_file)
        settings = {} if columns == ColumnNames() and default_medium == "air" else \
            {"columns": [columns.wave, columns.flux, columns.ivar], "medium": default_medium}
    try:
        set_torch_threads(options.threads)
        model_path = resolve_model(model, "spectra")
        predictor = SpectraPredictor.from_checkpoint(model_path, options.device, options.engine, columns=columns,
                                                     default_medium=default_medium)
        if drop_flagged:
            settings["drop_flagged"] = True
        job = describe_job("spectra predict", source, predictor, model_path, options, **settings)
        return predict_to_table(source, predictor, out, job, options, desc="classify",
                                keep=_unflagged if drop_flagged else None)
    finally:
        if bulk:
            source.close()


def _unflagged(row: dict) -> bool:
    """Whether a prediction row has no flag (the row filter of ``--drop-flagged``)."""
    return not row["flag"]
