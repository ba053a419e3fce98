"""Read the configuration files whose text the pure core parses: the catalogue, message tables,
forms and the consultation rules. The shell half of queue_server.core's parsers — the only place
these files are opened, so the core stays free of I/O."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .core.booking import ConsultConfig, load_consult
from .core.catalogue import Catalogue, build_catalogue
from .core.consultation import Rules, RulesError, parse_rules
from .core.forms import Form, FormError, form_problems, parse_form
from .core.i18n import Messages
from .core.problems import ConfigError, Problem


# ------------------------------------------------------------------ the catalogue
def _catalogue_files(directory: Path) -> list[tuple[str, str | Problem]]:
    """(name, text) per catalogue file in name order, or (name, Problem) when it cannot be read."""
    out: list[tuple[str, str | Problem]] = []
    for path in sorted(directory.glob("*.toml")):
        name = str(path)
        try:
            out.append((name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            out.append((name, Problem(name, "-", f"cannot read: {e}")))
    return out


def validate_catalogue(directory: Path | str, site_config: Mapping | None = None) -> list[Problem]:
    """Every problem of the catalogue in ``directory`` (file + line + reason); [] when clean.

    ``site_config`` is the parsed site.toml: with it, department keys are checked against the
    site's departments. Never raises for a bad catalogue; check-config prints the list.
    """
    _, problems = build_catalogue(str(directory), _catalogue_files(Path(directory)), site_config)
    return problems


def load_catalogue(directory: Path | str, site: Mapping | None = None) -> Catalogue:
    """Read and validate the catalogue; raise ConfigError carrying every problem found.

    ``site`` is the parsed site.toml (for department keys and names and ``online_base_url``).
    """
    catalogue, problems = build_catalogue(str(directory), _catalogue_files(Path(directory)), site)
    if problems or catalogue is None:
        raise ConfigError(problems)
    return catalogue


# ------------------------------------------------------------------ message tables
def load_messages(path: str | Path) -> Messages:
    """Read a message table from a TOML file."""
    path = Path(path)
    with path.open("rb") as f:
        return Messages(tomllib.load(f), source=str(path))


# ------------------------------------------------------------------ forms
def load_forms(directory: Path) -> dict[str, Form]:
    """Every form of ``directory`` (one TOML file per form), by id."""
    forms: dict[str, Form] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        with path.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as e:
                raise FormError(f"{path.name}: {e}") from None
        form = parse_form(data, path.name)
        if form.id in forms:
            raise FormError(f"{path.name}: form id {form.id!r} is used twice")
        forms[form.id] = form
    return forms


def check_forms(directory: Path, procedures: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """Problems of config/forms/ as (file, message): unreadable forms, unknown procedure ids, and a
    form whose department is not its procedures' (``procedures``: id -> department)."""
    out: list[tuple[str, str]] = []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            with path.open("rb") as fh:
                form = parse_form(tomllib.load(fh), path.name)
        except (FormError, tomllib.TOMLDecodeError) as e:
            out.append((str(path), str(e)))
            continue
        out.extend((str(path), problem) for problem in form_problems(form, procedures))
    return out


# ------------------------------------------------------------------ consultation rules
@dataclass(frozen=True, slots=True)
class ConsultationConfig:
    """config/consultation.toml, read once at server start and shared by its two users: the staff
    role (consultation_api.py: ``rules``) and consultation booking (planner_api.py: ``booking``)."""

    rules: Rules
    booking: ConsultConfig


def load_consultation(path: Path, departments: set[str]) -> ConsultationConfig | None:
    """Read and check config/consultation.toml against the site's departments: None when there is
    no such file (consultations are then off), ConfigError naming every problem when it is bad."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(file, "-", f"cannot read: {e}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem(file, "-", f"TOML syntax error: {e}")]) from None
    try:
        rules = parse_rules(raw, departments, file)
    except RulesError:
        raise
    except (AttributeError, TypeError, ValueError) as e:  # a table or number where another type belongs
        raise ConfigError([Problem(file, "-", f"a value of the wrong type: {e}")]) from None
    return ConsultationConfig(rules, load_consult(raw, rules.staff, departments, rules.topics, file))


def load_rules(path: Path, departments: set[str]) -> Rules:
    """The consultation rules of config/consultation.toml (FileNotFoundError when there is none)."""
    config = load_consultation(path, departments)
    if config is None:
        raise FileNotFoundError(path)
    return config.rules
