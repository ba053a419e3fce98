"""Site config validation and `run.py check-config`: every problem with file, line and reason."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queue_server.config import load_city
from queue_server.core.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def run_py(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def config_copy(tmp_path):
    dst = tmp_path / "config"
    shutil.copytree(ROOT / "config", dst)
    return dst


def test_shipped_config_loads_all_four_sites():
    city = load_city()
    assert set(city.sites) == {"honcho", "yawata", "matsuyama", "hirata"}
    honcho = city.sites["honcho"]
    assert honcho.department_names["shimin"]["ja"] == "市民課"
    assert city.sites["yawata"].department_names["shimin"]["ja"] != "市民課"  # branch override
    assert all(set(c.departments) <= set(honcho.departments) for c in honcho.counters)


def test_check_config_is_clean_on_the_shipped_config():
    r = run_py("check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_unknown_department_on_a_counter_names_file_line_and_key(config_copy):
    site = config_copy / "site.toml"
    _break(site, 'number = 5\ndepartments = ["hoken_nenkin"]', 'number = 5\ndepartments = ["hoken_nenkinn"]')
    line = next(i for i, t in enumerate(site.read_text(encoding="utf-8").splitlines(), 1) if "hoken_nenkinn" in t)
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 1
    assert f"site.toml:line {line} (sites.honcho.counters[4].departments): unknown department key 'hoken_nenkinn'" in r.stdout


def test_duplicate_counter_bad_time_and_missing_translation_are_all_reported(config_copy):
    site = config_copy / "site.toml"
    _break(site, "number = 2\n", "number = 1\n")
    _break(site, 'hours = { open = "08:30"', 'hours = { open = "8:30am"')
    _break(site, ', vi = "Phòng Thuế"', "")
    with pytest.raises(ConfigError) as e:
        load_city(site)
    text = str(e.value)
    assert "counter number 1 appears twice" in text
    assert "expected HH:MM, got '8:30am'" in text
    assert "departments.zeimu.name" in text and "missing translation: vi" in text
    assert "sites.honcho.lunch[1].counters): unknown counter 2" in text  # counter 2 is gone now
    assert len(e.value.problems) == 4


def test_toml_syntax_error_names_the_line(config_copy):
    site = config_copy / "site.toml"
    _break(site, "[policy]", "[policy")
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 1 and "TOML syntax error" in r.stdout and "site.toml" in r.stdout


def test_demo_prints_every_device_url(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "demo", "--port", "0", "--no-kiosk", "--db", f"sqlite:///{tmp_path / 'd.db'}",
         "--secrets", str(tmp_path / "s.toml")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl+C" in line:
                break
        out = "".join(lines)
        for what in ("Queue server", "Lobby board", "/counter/?site=honcho&counter=1&token=", "Kiosk token", "/status/"):
            assert what in out, out
    finally:
        proc.kill()
        proc.wait()


def test_loopback_public_base_url_is_a_warning_in_the_demo_and_refused_in_production(config_copy):
    # The shipped demo config: loopback, not production -> OK with a warning naming the key.
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "city.public_base_url: warning: a loopback address" in r.stdout
    site = config_copy / "site.toml"
    _break(site, "production = false", "production = true")
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 1
    assert "production = true but public_base_url is a loopback address" in r.stdout
    # A real address in production: no warning, no problem.
    _break(site, 'public_base_url = "http://127.0.0.1:8765/"', 'public_base_url = "https://madoguchi.city.sakata.lg.jp/"')
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 0 and "city.public_base_url" not in r.stdout, r.stdout


def test_is_loopback_url():
    from queue_server.config import is_loopback_url

    assert is_loopback_url("http://127.0.0.1:8765/") and is_loopback_url("http://localhost/")
    assert is_loopback_url("http://[::1]:8765/") and is_loopback_url("http://127.8.0.1/")
    assert not is_loopback_url("https://www.city.sakata.lg.jp/") and not is_loopback_url("http://10.0.0.5/")


def test_check_config_names_a_bad_consultation_file_by_key(config_copy):
    """config/consultation.toml is checked with the rest: a consultant of a department that does not
    exist and a booking desk for an unknown topic, both by file and key path."""
    consult = config_copy / "consultation.toml"
    _break(consult, 'departments = ["zeimu"]', 'departments = ["zeimuu"]')
    _break(consult, "[booking.desks]\n", "[booking.desks]\nastrology = \"kosodate\"\n")
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 1, r.stdout
    assert f"{consult}:staff[2].departments: 'zeimuu' is not a department in site.toml" in r.stdout
    # the rules' problems stop the check before [booking] (its consultants need valid [[staff]])
    _break(consult, 'departments = ["zeimuu"]', 'departments = ["zeimu"]')
    r = run_py("check-config", "--config-dir", str(config_copy))
    assert r.returncode == 1 and f"{consult}:booking.desks.astrology: 'astrology' is not a topic" in r.stdout


def test_the_server_refuses_to_start_on_a_bad_consultation_file(config_copy, tmp_path):
    """A bad consultation.toml stops the start with the problem named (before: a log line and
    consultations silently off); no consultation.toml at all is allowed (consultations off)."""
    consult = config_copy / "consultation.toml"
    _break(consult, 'general_department = "', 'general_department = "x')
    args = ("server", "--port", "0", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--secrets", str(tmp_path / "s.toml"),
            "--config-dir", str(config_copy))
    r = run_py(*args)
    assert r.returncode == 1
    assert f"{consult}:general_department:" in r.stdout and "is not a department in site.toml" in r.stdout
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "s.toml").exists()  # refused before writing anything
