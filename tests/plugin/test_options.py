"""--rig, the rig ini setting, rig-file errors and the requires marker, as a user sees them."""

from __future__ import annotations

import pytest

LOOP_RIG = """\
name: loopback
description: a console with nothing on the other end but pyserial's loop
console:
  url: "loop://"
profile:
  name: loop
  prompt: "loop> "
  boot_done: "^READY"
"""


@pytest.fixture
def loop_rig(pytester: pytest.Pytester) -> str:
    pytester.makefile(".yaml", loop=LOOP_RIG)
    return "loop.yaml"


def test_unknown_rig_name_lists_the_available_ones(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rig", "nosuchrig")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rig: no rig named 'nosuchrig'; available: *twin*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("name: x\ntwin:\n  boot_time: 5 parsecs\n",
         "*bad.yaml:3:14: twin.boot_time: expected a duration such as '300ms'*got '5 parsecs'"),
        ("name: x\ntwin: {}\npower:\n  dialekt: rigol\n",
         "*bad.yaml:4:3: power.dialekt: unknown field 'dialekt'; did you mean 'dialect'?"),
        ("name: x\nconsole:\n  baudrate: 115200\n",
         "*bad.yaml:3:3: console.url: a board rig needs the console's pyserial URL"),
        ("name: x\ntwin: {}\nprofile: zephyr\n",
         "*bad.yaml:3:10: profile: unknown device profile 'zephyr'; built-in profiles: *"),
        ("twin: {}\n", "*bad.yaml:1:1: name: missing required field 'name'"),
        ("name: [x\n", "*bad.yaml:1:9: invalid YAML: expected *"),
        ("name: x\nname: y\n", "*bad.yaml:2:1: name: duplicate key 'name'"),
        ("name: x\npower:\n  resource: TCPIP::h::5025::SOCKET\n  channel: 0\n",
         "*bad.yaml:4:12: power.channel: expected a value >= 1, got 0"),
    ],
)
def test_invalid_rig_file_gives_one_line_with_file_line_and_field(
    pytester: pytest.Pytester, body: str, expected: str
) -> None:
    pytester.makefile(".yaml", bad=body)
    result = pytester.runpytest("--rig", "bad.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stderr.str()


def test_ini_rig_is_used_and_the_option_overrides_it(pytester: pytest.Pytester, loop_rig: str) -> None:
    pytester.makeini("[pytest]\nrig = loop.yaml\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("power")
        def test_needs_power():
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*rig 'loopback' lacks power*"])
    # --rig wins over the ini setting: the twin has power, so nothing is skipped (no rig is started:
    # the test uses no rig fixture).
    result = pytester.runpytest("--rig", "twin")
    result.assert_outcomes(passed=1)


def test_requires_marker_skips_only_what_the_rig_lacks(pytester: pytest.Pytester, loop_rig: str) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("console")
        def test_console_only():
            pass

        @pytest.mark.requires("console", "power")
        def test_console_and_power():
            pass

        def test_unmarked():
            pass
        """
    )
    result = pytester.runpytest("--rig", loop_rig, "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] *.py:7: rig 'loopback' lacks power (requires ('console', 'power'))"]
    )


def test_requires_with_an_unknown_capability_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("pwr")
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(
        ["ERROR: *::test_typo: requires(): unknown capability 'pwr'; expected some of console, power*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_marker_and_options_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.requires(*capabilities): skip unless the rig has*"])
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--rig=NAME|PATH*", "*--reports-dir=DIR*", "*--no-rig-health*"])
