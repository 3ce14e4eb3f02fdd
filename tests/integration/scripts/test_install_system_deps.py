"""scripts/install-system-deps.sh run by bash against stand-in `id`, `apt-get` and `systemctl`.

Packages cannot be installed from a test, so small scripts play those commands: `id -u` says
the uid the test chooses, `apt-get` records its arguments (and whether services were barred
from starting) and "installs" clamd by creating the file ENCLOSE_CLAMD_BINARY names. PATH holds
only the stand-ins and the few real tools the script uses, so the machine's own clamd and
apt-get cannot mask a case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"
REAL_TOOLS = ("rm", "chmod", "cat")
SENTENCE = "Enclose needs ClamAV to scan uploads: run `sudo apt-get install clamav-daemon` and try again.\n"

FAKE_APT_GET = """#!/bin/sh
# Records each call; `install` creates the fake clamd (unless FAKE_APT_FAIL or FAKE_APT_NO_CLAMD is set).
policy=absent
if [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" clamav-daemon start; policy="exit $?"; fi
echo "$DEBIAN_FRONTEND|$policy|$*" >> "$FAKE_LOG"
if [ -n "${FAKE_APT_FAIL:-}" ]; then echo "E: Unable to locate package" >&2; exit 100; fi
[ -n "${FAKE_APT_NO_CLAMD:-}" ] && exit 0
case "$1" in install) printf '#!/bin/sh\\n' > "$ENCLOSE_CLAMD_BINARY"; chmod 755 "$ENCLOSE_CLAMD_BINARY";; esac
"""


class Machine:
    """A PATH of stand-ins: a uid, with or without apt-get, with or without clamd."""

    def __init__(self, tmp_path: Path, *, uid: int, apt: bool = True, clamd: bool = False) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.clamd = tmp_path / "sbin" / "clamd"
        self.clamd.parent.mkdir()
        self.policy = tmp_path / "policy-rc.d"
        self._script("id", f"#!/bin/sh\necho {uid}\n")
        self._script("systemctl", '#!/bin/sh\necho "systemctl|$*" >> "$FAKE_LOG"\n')
        if apt:
            self._script("apt-get", FAKE_APT_GET)
        if clamd:
            self.clamd.write_text("#!/bin/sh\n")
            self.clamd.chmod(0o755)
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            assert real, tool
            (self.bin / tool).symlink_to(real)

    def _script(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {
            "PATH": str(self.bin),
            "HOME": str(self.tmp),
            "FAKE_LOG": str(self.log),
            "ENCLOSE_CLAMD_BINARY": str(self.clamd),
            "POLICY_RC_D": str(self.policy),
        }
        return subprocess.run(
            [BASH, str(SCRIPT), *args], env={**base, **env}, capture_output=True, text=True, timeout=30, check=False
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def test_run_mode_not_root_stops_with_one_sentence(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1000)
    result = machine.run("run")
    assert result.returncode == 1
    assert result.stderr == SENTENCE
    assert result.stdout == ""
    assert machine.calls() == []


def test_run_mode_without_apt_get_stops_with_one_sentence(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0, apt=False)
    result = machine.run("run")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Enclose needs ClamAV to scan uploads: install its clamd")
    assert "clamav-daemon" in result.stderr


def test_run_mode_as_root_installs_clamd_only_with_services_kept_down(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0)
    result = machine.run("run")
    assert result.returncode == 0, result.stderr
    assert machine.calls() == [
        "noninteractive|exit 101|update -qq",
        "noninteractive|exit 101|install -y -qq --no-install-recommends clamav-daemon",
        "systemctl|disable --now clamav-daemon clamav-freshclam",
    ]
    assert machine.clamd.exists()
    assert not machine.policy.exists()  # the script's own policy file is gone afterwards


def test_a_policy_file_already_there_is_left_alone(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0)
    machine.policy.write_text("#!/bin/sh\nexit 101\n# the machine's own\n")
    machine.policy.chmod(0o755)
    assert machine.run("run").returncode == 0
    assert machine.policy.read_text().endswith("# the machine's own\n")


def test_run_mode_apt_failure_stops_with_a_sentence(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0)
    result = machine.run("run", FAKE_APT_FAIL="1")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("Enclose needs ClamAV to scan uploads, and apt-get could not")
    assert not machine.policy.exists()


def test_run_mode_apt_installing_no_clamd_stops_with_the_sentence(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0)
    result = machine.run("run", FAKE_APT_NO_CLAMD="1")
    assert len(machine.calls()) == 3  # it did try
    assert result.returncode == 1
    assert result.stderr == SENTENCE


@pytest.mark.parametrize("uid", [0, 1000])
@pytest.mark.parametrize("mode", ["run", "test", None])
def test_nothing_happens_when_everything_is_there(tmp_path: Path, uid: int, mode: str | None) -> None:
    machine = Machine(tmp_path, uid=uid, clamd=True)
    for name in ("chromium", "soffice"):
        machine._script(name, "#!/bin/sh\n")
    result = machine.run(*([mode] if mode else []))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert machine.calls() == []


def test_run_mode_needs_only_clamd(tmp_path: Path) -> None:
    # No Chromium or LibreOffice here, and no root: `make run` does not need them.
    machine = Machine(tmp_path, uid=1000, clamd=True)
    result = machine.run("run")
    assert (result.returncode, result.stderr) == (0, "")


def test_test_mode_not_root_only_notes_what_is_missing(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1000)
    result = machine.run()
    assert result.returncode == 0
    assert result.stderr.startswith("note: missing clamav-daemon clamav chromium libreoffice-writer-nogui")
    assert machine.calls() == []


def test_test_mode_as_root_installs_the_whole_set(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=0)
    result = machine.run("test")
    assert result.returncode == 0, result.stderr
    assert machine.calls()[1] == (
        "noninteractive|exit 101|install -y -qq --no-install-recommends "
        "clamav-daemon clamav chromium libreoffice-writer-nogui"
    )


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    result = Machine(tmp_path, uid=0).run("everything")
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_the_makefile_runs_it_in_run_mode_for_make_run() -> None:
    def dry(*goals: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
        out = subprocess.run(
            ["make", "-n", "-C", str(ROOT), *goals], env=env, capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return next(line for line in out.splitlines() if "install-system-deps.sh" in line)

    assert dry("run").endswith("install-system-deps.sh run")
    assert dry("test").endswith("install-system-deps.sh test")
    assert dry("system-deps").endswith("install-system-deps.sh test")  # as before: the tests' set
