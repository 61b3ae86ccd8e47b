"""The package's public surface: the names the Python API offers, and where errors live."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil

import importer
from importer import errors

PUBLIC = {
    "Call",
    "Cancellation",
    "Cancellations",
    "Exported",
    "ImporterError",
    "InputError",
    "NotSignedIn",
    "Outcome",
    "ProgressReport",
    "RowOutcome",
    "RowProblem",
    "Status",
    "StopSignal",
    "UsageError",
    "__version__",
    "cancel",
    "cancel_async",
    "check",
    "export",
    "export_async",
    "register",
    "register_async",
    "undo",
    "undo_async",
}


def test_the_python_api_offers_these_names_and_no_others() -> None:
    assert set(importer.__all__) == PUBLIC
    for name in importer.__all__:
        assert getattr(importer, name) is not None, name
    assert importer.__version__ == importlib.metadata.version("g2w-importer")


def test_every_error_of_the_package_is_in_errors_with_an_exit_code() -> None:
    codes = {code for code, _ in errors.EXIT_CODES}
    elsewhere = []
    for found in pkgutil.walk_packages(importer.__path__, "importer."):
        if found.name == "importer.__main__":
            continue  # running it runs the command
        module = importlib.import_module(found.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, errors.ImporterError)
                and value.__module__ == module.__name__
                and module is not errors
            ):
                elsewhere.append(f"{module.__name__}.{name}")
    assert elsewhere == []
    for value in vars(errors).values():
        if inspect.isclass(value) and issubclass(value, errors.ImporterError):
            assert value.exit_code in codes, value


def test_no_part_of_the_package_hides_a_name_of_the_python_api() -> None:
    for found in pkgutil.walk_packages(importer.__path__, "importer."):
        if found.name != "importer.__main__":
            importlib.import_module(found.name)  # a sub-package becomes an attribute
    for name in importer.__all__:
        value = getattr(importer, name)
        assert not inspect.ismodule(value), name
