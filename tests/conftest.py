"""Shared fixtures: the real data in ../shared/data, named once here."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Root of the team's real data; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bars_dir(shared_data):
    """SDSS/GZ2 barred vs unbarred cutouts with labels.csv."""
    return shared_data / "galaxy" / "sdss_gz2_bars"


@pytest.fixture(scope="session")
def morphology_dir(shared_data):
    """SDSS/GZ elliptical vs spiral cutouts with labels.csv."""
    return shared_data / "galaxy" / "sdss_gz_ellip_spiral"


@pytest.fixture(scope="session")
def spectra_dir(shared_data):
    """Stellar spectral libraries with MK types."""
    return shared_data / "spectra"


@pytest.fixture(scope="session")
def cryoem_dir(shared_data):
    """EMPIAR-10017 micrographs, particle positions and peer picks."""
    return shared_data / "cryoem"


# Left out of the fast tier (``-m "not heavy and not slow"``; docs/development.md): whole commands run in
# subprocesses or reader processes, real trainings, the shipped models over the shared data. Node-id
# prefixes, chosen from ``python -m pytest --durations=60`` (each took 2 s or more on 2 cores).
HEAVY = (
    "tests/test_demo.py",
    "tests/test_distributed_training.py",
    "tests/cryoem/test_cryoem_shipped.py",
    "tests/cryoem/test_cryoem_selftrain.py::test_selftrain_writes_its_rounds_and_a_picker_that_pick_uses",
    "tests/cryoem/test_cryoem_selftrain.py::test_round_one_fine_tunes_from_the_init_weights",
    "tests/cryoem/test_cryoem_selftrain.py::test_init_blob_picks_round_zero_with_a_blob_detector_and_tunes_the_general_weights",
    "tests/spectra/test_spectra_shipped.py",
    "tests/spectra/test_spectra_tables.py",
    "tests/core/test_batch_runner.py",
    "tests/core/test_batch_store.py",
    "tests/test_reruns.py",
    "tests/core/test_lock.py::test_two_real_runs_at_once_never_mix",
    "tests/core/test_trainer.py::test_fit_learns_and_writes_checkpoints",
    "tests/cryoem/test_cryoem_io.py::test_cassper_labels_are_flipped_relative_to_jpeg",
    "tests/cryoem/test_cryoem_recentre.py::test_pick_command_recentres_on_request",
    "tests/cryoem/test_cryoem_size_limit.py::test_pick_lists_the_giant_and_keeps_the_rest",
    "tests/galaxy/test_galaxy_cli.py::test_evaluate_measures_external_bar_catalogues",
    "tests/galaxy/test_galaxy_cli.py::test_evaluate_writes_table_and_report",
    "tests/galaxy/test_galaxy_cli.py::test_explain_layers_writes_one_png_per_conv_layer_and_says_so",
    "tests/galaxy/test_galaxy_cli.py::test_layers_alias_writes_what_explain_layers_writes",
    "tests/galaxy/test_galaxy_cli.py::test_occlusion_writes_png",
    "tests/galaxy/test_galaxy_cli.py::test_train_records_the_field_of_its_cutouts",
    "tests/galaxy/test_galaxy_cli.py::test_train_writes_run_dir",
    "tests/galaxy/test_galaxy_cutout.py::test_bad_input_stops_before_anything_is_written",
    "tests/galaxy/test_galaxy_cutout.py::test_predict_warns_once_about_cutouts_of_another_field",
    "tests/galaxy/test_galaxy_predictor.py::test_accuracy_floor_on_the_test_split",
    "tests/galaxy/test_galaxy_predictor.py::test_keep_columns_off_asked_for_in_parts_or_refused",
    "tests/galaxy/test_galaxy_predictor.py::test_reader_processes_give_the_rows_threads_give",
    "tests/spectra/test_spectra_autoencoder.py::test_embed_map_beats_chance",
    "tests/spectra/test_spectra_cli.py::test_crossval_table",
    "tests/spectra/test_spectra_cli.py::test_evaluate_beats_chance_and_reports_baseline",
    "tests/spectra/test_spectra_cli.py::test_evaluate_flags_training_files_even_renamed",
    "tests/spectra/test_spectra_cli.py::test_talks_1900_point_grid_end_to_end",
    "tests/spectra/test_spectra_cli.py::test_teacher_distils_into_one_network_and_is_refused_when_it_cannot_teach",
    "tests/spectra/test_spectra_cli.py::test_train_writes_checkpoint_and_config",
    "tests/spectra/test_spectra_distil.py::test_student_follows_the_teacher_over_the_labels",
    "tests/spectra/test_spectra_models.py::test_template_matcher_recovers_toy_types",
    "tests/spectra/test_spectra_staged.py::test_predict_in_reader_processes_writes_the_rows_threads_write",
    "tests/test_cli_main.py::test_help_does_not_import_torch",
    "tests/test_fuzz_readers.py::test_random_bytes",
    "tests/test_hostile_inputs.py::test_output_in_read_only_directory_is_refused_first",
    "tests/test_cli_consistency.py::test_shipped_names_work_as_model_in_every_domain",
    "tests/cryoem/test_cryoem_polarity.py::test_pick_command_reads_polarity_and_obeys_an_explicit_one",
    "tests/cryoem/test_cryoem_particle_size.py",
    "src/deepscope/cryoem/particle_size.py::deepscope.cryoem.particle_size.estimate_micrograph_size",
    "tests/core/test_batch_sources.py::test_pick_overlays_inside_the_input_directory_are_never_read_back",
    "tests/core/test_trainer.py::test_resume_reproduces_uninterrupted_run",
    "tests/test_hostile_inputs.py::test_output_under_a_file_is_refused_first[cryoem-pick]",
    "tests/spectra/test_spectra_cli.py::test_one_member_trains_straight_into_the_run_directory",
    "tests/test_fuzz_readers.py::test_mutated_files",
    "tests/test_cli_frictions.py::test_predict_skips_the_rows_galaxy_cutout_could_not_cut",
    "tests/test_cli_frictions.py::test_pick_out_named_like_a_coordinate_file_is_refused_before_picking",
    "tests/cryoem/test_cryoem_polarity.py::test_an_inverted_micrograph_gives_the_same_picks",
    "tests/cryoem/test_cryoem_init.py::test_init_starts_from_the_given_weights_and_counts_what_they_saw",
    "tests/cryoem/test_cryoem_init.py::test_shipped_joint_picker_fine_tunes_without_region_labels",
)
# Tests that use a fixture training a model for them (the fixture is paid once, by the first test that asks).
HEAVY_FIXTURES = (("tests/spectra/test_spectra_cli.py", "trained"),)


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in :data:`HEAVY`, or using a fixture of :data:`HEAVY_FIXTURES`, ``heavy``."""
    for item in items:
        uses_heavy_fixture = any(item.nodeid.startswith(path) and fixture in getattr(item, "fixturenames", ())
                                 for path, fixture in HEAVY_FIXTURES)
        if item.nodeid.startswith(HEAVY) or uses_heavy_fixture:
            item.add_marker(pytest.mark.heavy)
